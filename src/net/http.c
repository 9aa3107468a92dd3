/* HTTP/1.1 for the egress proxy: streams, heads, framing, relays (http.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "net/http.h"

/* ---- streams: a socket, plain or TLS, with a read buffer -------------------------------- */

static ssize_t stream_recv(stream_t *s, void *dst, size_t n)
{
	ssize_t r;
	if (s->ssl)
		r = ac_tls_read(s->ssl, dst, n);
	else
		do
			r = recv(s->fd, dst, n, 0);
		while (r < 0 && errno == EINTR);
	if (r > 0)
		s->rd += (uint64_t)r;
	return r;
}

/* Bytes buffered or already decrypted: readable without touching the socket. */
static bool stream_has_data(stream_t *s)
{
	return s->len > s->off || (s->ssl && ac_tls_pending(s->ssl) > 0);
}

ssize_t ac_px_stream_read(stream_t *s, void *dst, size_t n)
{
	if (s->len > s->off) {
		size_t k = s->len - s->off < n ? s->len - s->off : n;
		memcpy(dst, s->buf + s->off, k);
		s->off += k;
		return (ssize_t)k;
	}
	return stream_recv(s, dst, n);
}

int ac_px_stream_write(stream_t *s, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (s->ssl) {
		if (ac_tls_write_all(s->ssl, data, n) < 0)
			return -1;
	} else {
		const char *p = data;
		size_t left = n;
		while (left) {
			ssize_t w = send(s->fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			p += w;
			left -= (size_t)w;
		}
	}
	s->wr += n;
	return 0;
}

/* Makes room and reads more into the buffer: >0 bytes added, 0 EOF, -1 error, -2 full. */
static ssize_t stream_fill(stream_t *s)
{
	if (s->off && s->off == s->len)
		s->off = s->len = 0;
	if (s->len == HEAD_MAX && s->off) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	if (s->len == HEAD_MAX)
		return -2;
	ssize_t r = stream_recv(s, s->buf + s->len, HEAD_MAX - s->len);
	if (r > 0)
		s->len += (size_t)r;
	return r;
}

/* A head (up to and including its empty line) into *head (NUL-terminated, to free). */
int ac_px_stream_head(stream_t *s, char **head, size_t *hlen)
{
	size_t scanned = 0;
	for (;;) {
		char *start = s->buf + s->off;
		size_t avail = s->len - s->off;
		size_t from = scanned > 3 ? scanned - 3 : 0;
		char *end = avail >= 4 ? memmem(start + from, avail - from, "\r\n\r\n", 4) : NULL;
		if (end) {
			size_t n = (size_t)(end - start) + 4;
			*head = malloc(n + 1);
			if (!*head)
				return HEAD_ERR;
			memcpy(*head, start, n);
			(*head)[n] = 0;
			*hlen = n;
			s->off += n;
			return HEAD_OK;
		}
		scanned = avail; /* relative to s->off, which a fill keeps pointing at it */
		ssize_t r = stream_fill(s);
		if (r == -2)
			return HEAD_BIG;
		if (r == 0)
			return s->len > s->off ? HEAD_ERR : HEAD_EOF;
		if (r < 0)
			return HEAD_ERR;
	}
}

/* One CRLF-terminated line (at most LINE_MAX_ bytes with its CRLF) into line[]. */
static int stream_line(stream_t *s, char *line, size_t *n)
{
	for (;;) {
		char *start = s->buf + s->off;
		size_t avail = s->len - s->off;
		char *nl = memchr(start, '\n', avail);
		if (nl) {
			size_t k = (size_t)(nl - start) + 1;
			if (k > LINE_MAX_ || k < 2 || nl[-1] != '\r')
				return -1;
			memcpy(line, start, k);
			*n = k;
			s->off += k;
			return 0;
		}
		if (avail >= LINE_MAX_ || stream_fill(s) <= 0)
			return -1;
	}
}

/* Copies exactly n bytes (n = UINT64_MAX: until EOF) from a to b. */
static int copy_bytes(stream_t *a, stream_t *b, uint64_t n, char *buf)
{
	while (n) {
		size_t want = n < RELAY_BUF ? (size_t)n : RELAY_BUF;
		ssize_t r = ac_px_stream_read(a, buf, want);
		if (r == 0 && n == UINT64_MAX)
			return 0;
		if (r <= 0 || ac_px_stream_write(b, buf, (size_t)r) < 0)
			return -1;
		if (n != UINT64_MAX)
			n -= (uint64_t)r;
	}
	return 0;
}

/* One direction of a plain relay, from's socket to to's through a pipe (splice: the bytes
 * stay in the kernel). >0 moved, 0 from's EOF, -1 error. */
static ssize_t splice_once(stream_t *from, stream_t *to, int pipefd[2])
{
	ssize_t n;
	do
		n = splice(from->fd, NULL, pipefd[1], NULL, RELAY_BUF, SPLICE_F_MOVE);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	from->rd += (uint64_t)n;
	for (ssize_t left = n; left > 0;) {
		ssize_t w = splice(pipefd[0], NULL, to->fd, NULL, (size_t)left, SPLICE_F_MOVE);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		left -= w;
		to->wr += (uint64_t)w;
	}
	return n;
}

/* One direction by copy: >0, 0 EOF, -1 error. */
static ssize_t copy_once(stream_t *from, stream_t *to, char *buf)
{
	ssize_t r = ac_px_stream_read(from, buf, RELAY_BUF);
	if (r > 0 && ac_px_stream_write(to, buf, (size_t)r) < 0)
		return -1;
	return r;
}

/* Relays both ways until both sides are done. Between two plain sockets the bytes are
 * spliced and a side's end of data is passed on as a half-close (shutdown SHUT_WR), so a
 * client that shuts its writing side still gets its answer; with TLS on either side the
 * relay ends with the first side that ends. */
void ac_px_relay(stream_t *a, stream_t *b, char *buf)
{
	bool plain = !a->ssl && !b->ssl;
	int pa[2] = {-1, -1}, pb[2] = {-1, -1};
	if (plain && (pipe2(pa, O_CLOEXEC) < 0 || pipe2(pb, O_CLOEXEC) < 0))
		plain = false;
	bool a_open = true, b_open = true; /* each side's reading half */
	while (a_open || b_open) {
		bool ra = a_open && stream_has_data(a), rb = b_open && stream_has_data(b);
		if (!ra && !rb) {
			struct pollfd p[2] = {{a_open ? a->fd : -1, POLLIN, 0},
					      {b_open ? b->fd : -1, POLLIN, 0}};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			ra = p[0].revents != 0;
			rb = p[1].revents != 0;
		}
		for (int d = 0; d < 2; d++) {
			stream_t *from = d ? b : a, *to = d ? a : b;
			if (!(d ? rb : ra))
				continue;
			/* Buffered bytes (a head read ahead) go by copy first. */
			ssize_t r = plain && from->len == from->off
					? splice_once(from, to, d ? pb : pa)
					: copy_once(from, to, buf);
			if (r > 0)
				continue;
			if (r < 0 || !plain)
				goto out;
			shutdown(to->fd, SHUT_WR);
			*(d ? &b_open : &a_open) = false;
		}
	}
out:
	for (int i = 0; i < 2; i++) {
		if (pa[i] >= 0)
			close(pa[i]);
		if (pb[i] >= 0)
			close(pb[i]);
	}
}

/* ---- HTTP heads ------------------------------------------------------------------------- */

void ac_px_head_clear(head_t *h)
{
	free(h->copy);
	memset(h, 0, sizeof(*h));
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool ac_px_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* Parses text (a whole head, CRLF CRLF included). NULL, or why it is malformed. */
const char *ac_px_head_parse(const char *text, size_t len, bool response, head_t *h)
{
	memset(h, 0, sizeof(*h));
	if (memchr(text, 0, len))
		return "NUL byte in the head";
	h->copy = strndup(text, len - 2); /* keeps the last header's CRLF */
	if (!h->copy)
		return "out of memory";
	char *p = h->copy;
	char *eol = strstr(p, "\r\n");
	*eol = 0;
	for (char *c = p; *c; c++)
		if (*c == '\r' || *c == '\n')
			return "bare CR or LF";
	char *sp1 = strchr(p, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || (!sp2 && !response))
		return "malformed start line";
	*sp1 = 0;
	if (sp2)
		*sp2 = 0;
	h->start[0] = p;
	h->start[1] = sp1 + 1;
	h->start[2] = sp2 ? sp2 + 1 : sp1 + strlen(sp1 + 1) + 1;
	if (!response) {
		if (!ac_px_is_token(h->start[0]) || !*h->start[1] || strchr(h->start[2], ' '))
			return "malformed request line";
		for (const unsigned char *t = (const unsigned char *)h->start[1]; *t; t++)
			if (*t <= 0x20 || *t == 0x7f)
				return "malformed request target";
		if (strcmp(h->start[2], "HTTP/1.1") && strcmp(h->start[2], "HTTP/1.0"))
			return "unsupported HTTP version";
	} else if (strncmp(h->start[0], "HTTP/1.", 7) || strlen(h->start[1]) != 3 ||
		   strspn(h->start[1], "0123456789") != 3) {
		return "malformed status line";
	}
	p = eol + 2;
	while (*p) {
		eol = strstr(p, "\r\n");
		if (!eol)
			return "malformed header";
		*eol = 0;
		if (h->nh == HDR_MAX)
			return "too many headers";
		char *colon = strchr(p, ':');
		if (!colon)
			return "header without ':'";
		*colon = 0;
		if (!ac_px_is_token(p))
			return "malformed header name";
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char *e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		for (const unsigned char *t = (const unsigned char *)v; *t; t++)
			if ((*t < 0x20 && *t != '\t') || *t == 0x7f)
				return "control byte in a header value";
		h->h[h->nh++] = (hdr_t){p, v};
		p = eol + 2;
	}
	return NULL;
}

/* Whether a comma-separated list header (every instance) holds token. */
bool ac_px_hdr_has_token(const head_t *h, const char *name, const char *token)
{
	size_t tl = strlen(token);
	for (size_t i = 0; i < h->nh; i++) {
		if (strcasecmp(h->h[i].name, name))
			continue;
		for (const char *v = h->h[i].value; *v;) {
			v += strspn(v, " \t,");
			size_t n = strcspn(v, ",");
			size_t k = n;
			while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
				k--;
			if (k == tl && !strncasecmp(v, token, tl))
				return true;
			v += n;
		}
	}
	return false;
}

/* The framing of a message (RFC 9112 6.3). -1: a request that cannot be framed safely. */
int ac_px_body_framing(const head_t *h, bool response, uint64_t *len)
{
	const char *te = NULL, *cl = NULL;
	for (size_t i = 0; i < h->nh; i++) {
		if (!strcasecmp(h->h[i].name, "Transfer-Encoding"))
			te = h->h[i].value; /* the last one holds the final coding */
		else if (!strcasecmp(h->h[i].name, "Content-Length")) {
			if (cl && strcmp(cl, h->h[i].value))
				return -1;
			cl = h->h[i].value;
		}
	}
	if (te) {
		const char *last = strrchr(te, ',');
		last = last ? last + 1 : te;
		last += strspn(last, " \t");
		if (strcasecmp(last, "chunked"))
			return response ? BODY_CLOSE : -1;
		return cl && !response ? -1 : BODY_CHUNKED;
	}
	if (cl) {
		if (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18)
			return -1;
		*len = strtoull(cl, NULL, 10);
		return *len ? BODY_LENGTH : BODY_NONE;
	}
	return response ? BODY_CLOSE : BODY_NONE;
}

/* Forwards a body of the given framing from a to b (chunked: parsed, passed as it is). */
int ac_px_forward_body(stream_t *a, stream_t *b, int kind, uint64_t len, char *buf)
{
	if (kind == BODY_NONE)
		return 0;
	if (kind == BODY_LENGTH)
		return copy_bytes(a, b, len, buf);
	if (kind == BODY_CLOSE)
		return copy_bytes(a, b, UINT64_MAX, buf);
	char line[LINE_MAX_ + 1];
	size_t n;
	for (;;) {
		if (stream_line(a, line, &n) < 0)
			return -1;
		line[n] = 0;
		size_t digits = strspn(line, "0123456789abcdefABCDEF");
		if (digits == 0 || digits > 15 || !strchr(";\r \t", line[digits]))
			return -1;
		uint64_t size = strtoull(line, NULL, 16);
		if (ac_px_stream_write(b, line, n) < 0)
			return -1;
		if (size == 0)
			break;
		if (copy_bytes(a, b, size, buf) < 0 || stream_line(a, line, &n) < 0 || n != 2 ||
		    ac_px_stream_write(b, line, n) < 0)
			return -1;
	}
	do { /* trailer section, then its empty line */
		if (stream_line(a, line, &n) < 0 || ac_px_stream_write(b, line, n) < 0)
			return -1;
	} while (n != 2);
	return 0;
}

/* ---- a growable string ------------------------------------------------------------------ */

void ac_px_sb_add(sb_t *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void ac_px_sb_str(sb_t *b, const char *s)
{
	ac_px_sb_add(b, s, strlen(s));
}

void ac_px_sb_free(sb_t *b)
{
	if (b->p)
		explicit_bzero(b->p, b->cap);
	free(b->p);
	b->p = NULL;
}
