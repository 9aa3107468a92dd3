/* RFC 6455 client codec (see ws.h). The decoder is a byte-driven state machine: a frame
 * head is collected byte by byte (it may arrive cut anywhere), checked as soon as its first
 * two bytes are there, and its payload is then either handed over in place (a whole
 * unfragmented frame inside the fed chunk: the common case costs no copy) or appended to
 * a message buffer that is kept for the next message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentcell/error.h"
#include "base/sha1.h"
#include "base/utf8.h"
#include "base/ws.h"

bool ac_ws_close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/* ---- encoding ---- */

size_t ac_ws_frame_head(unsigned char out[AC_WS_HEAD_MAX], int opcode, bool fin, uint64_t len,
			const unsigned char mask[4])
{
	size_t n = 0;
	out[n++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
	unsigned char m = mask ? 0x80 : 0;
	if (len < 126) {
		out[n++] = (unsigned char)(m | len);
	} else if (len <= 0xffff) {
		out[n++] = m | 126;
		out[n++] = (unsigned char)(len >> 8);
		out[n++] = (unsigned char)len;
	} else {
		out[n++] = m | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (unsigned char)(len >> (8 * i));
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void ac_ws_mask(unsigned char *data, size_t len, const unsigned char mask[4], uint64_t offset)
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[(offset + i) & 3];
}

size_t ac_ws_frame_size(size_t len, bool masked)
{
	size_t head = 2 + (len < 126 ? 0 : len <= 0xffff ? 2 : 8) + (masked ? 4 : 0);
	return head + len;
}

size_t ac_ws_encode(unsigned char *out, size_t cap, int opcode, bool fin, const void *payload,
		    size_t len, const unsigned char mask[4])
{
	if (len > SIZE_MAX - AC_WS_HEAD_MAX || ac_ws_frame_size(len, mask != NULL) > cap)
		return 0;
	size_t h = ac_ws_frame_head(out, opcode, fin, len, mask);
	if (len)
		memcpy(out + h, payload, len);
	if (mask)
		ac_ws_mask(out + h, len, mask, 0);
	return h + len;
}

size_t ac_ws_close_payload(unsigned char out[AC_WS_CONTROL_MAX], unsigned code, const char *reason)
{
	if (code == 0)
		return 0;
	out[0] = (unsigned char)(code >> 8);
	out[1] = (unsigned char)code;
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > AC_WS_CONTROL_MAX - 2)
		rl = ac_utf8_complete_prefix(reason, AC_WS_CONTROL_MAX - 2);
	if (!ac_utf8_valid(reason, rl))
		rl = 0;
	if (rl)
		memcpy(out + 2, reason, rl);
	return 2 + rl;
}

/* ---- decoding ---- */

void ac_ws_decoder_init(ac_ws_decoder_t *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max ? max : AC_WS_MAX_DEFAULT;
}

void ac_ws_decoder_free(ac_ws_decoder_t *d)
{
	free(d->buf);
	d->buf = NULL;
	d->buf_cap = 0;
}

static int fail(ac_ws_decoder_t *d, unsigned code, const char *why)
{
	d->fail_code = code;
	d->fail_why = why;
	return -1;
}

static bool is_control(int op)
{
	return op >= 0x8;
}

/* Bytes of head needed, known once the first two are in. */
static size_t head_need(const ac_ws_decoder_t *d)
{
	if (d->head_got < 2)
		return 2;
	unsigned l7 = d->head[1] & 0x7f;
	return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((d->head[1] & 0x80) ? 4 : 0);
}

/* The first two bytes: everything that can be refused before the length. */
static int check_start(ac_ws_decoder_t *d)
{
	unsigned b0 = d->head[0], b1 = d->head[1];
	int op = (int)(b0 & 0x0f);
	if (b0 & 0x70)
		return fail(d, AC_WS_CLOSE_PROTOCOL, "reserved bits set (no extension was agreed)");
	if (b1 & 0x80)
		return fail(d, AC_WS_CLOSE_PROTOCOL, "masked frame from the server");
	switch (op) {
	case AC_WS_CONT:
		if (!d->m_op)
			return fail(d, AC_WS_CLOSE_PROTOCOL,
				    "continuation frame outside a message");
		break;
	case AC_WS_TEXT:
	case AC_WS_BINARY:
		if (d->m_op)
			return fail(d, AC_WS_CLOSE_PROTOCOL,
				    "new message before the fragmented one ended");
		break;
	case AC_WS_CLOSE:
	case AC_WS_PING:
	case AC_WS_PONG:
		if (!(b0 & 0x80))
			return fail(d, AC_WS_CLOSE_PROTOCOL, "fragmented control frame");
		if ((b1 & 0x7f) > AC_WS_CONTROL_MAX)
			return fail(d, AC_WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
		break;
	default:
		return fail(d, AC_WS_CLOSE_PROTOCOL, "unknown opcode");
	}
	return 0;
}

/* The whole head is in: length and size caps. */
static int start_frame(ac_ws_decoder_t *d)
{
	unsigned l7 = d->head[1] & 0x7f;
	uint64_t len = l7;
	if (l7 == 126) {
		len = (uint64_t)d->head[2] << 8 | d->head[3];
	} else if (l7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | d->head[2 + i];
		if (len >> 63)
			return fail(d, AC_WS_CLOSE_PROTOCOL, "frame length with the top bit set");
	}
	d->f_op = d->head[0] & 0x0f;
	d->f_fin = d->head[0] & 0x80;
	d->f_len = len;
	d->f_got = 0;
	if (!is_control(d->f_op)) {
		if (d->f_op != AC_WS_CONT) {
			d->m_op = d->f_op;
			d->m_len = 0;
			d->utf8_ok = 0;
		}
		if (len > d->max)
			return fail(d, AC_WS_CLOSE_TOO_BIG, "frame larger than the size cap");
		if (len > d->max - d->m_len)
			return fail(d, AC_WS_CLOSE_TOO_BIG, "message larger than the size cap");
	}
	d->in_payload = true;
	return 0;
}

static int reserve(ac_ws_decoder_t *d, size_t need)
{
	if (need <= d->buf_cap)
		return 0;
	size_t cap = d->buf_cap ? d->buf_cap : 4096;
	while (cap < need)
		cap = cap > d->max / 2 ? d->max : cap * 2;
	if (cap < need)
		cap = need;
	unsigned char *nb = realloc(d->buf, cap);
	if (!nb)
		return fail(d, AC_WS_CLOSE_INTERNAL, "out of memory");
	d->buf = nb;
	d->buf_cap = cap;
	return 0;
}

/* Checks the text message's bytes so far, up to a sequence the next fragment may finish:
 * a bad byte fails the connection at once rather than after the whole message. */
static int check_text(ac_ws_decoder_t *d, bool final)
{
	size_t n = d->m_len - d->utf8_ok;
	if (n == 0)
		return 0; /* nothing new (and maybe no buffer yet) */
	const char *s = (const char *)d->buf + d->utf8_ok;
	size_t ok = final ? n : ac_utf8_complete_prefix(s, n);
	if (!ac_utf8_valid(s, ok))
		return fail(d, AC_WS_CLOSE_INVALID_DATA, "text message that is not UTF-8");
	d->utf8_ok += ok;
	if (final && d->utf8_ok != d->m_len)
		return fail(d, AC_WS_CLOSE_INVALID_DATA, "text message that is not UTF-8");
	return 0;
}

static int control_done(ac_ws_decoder_t *d, ac_ws_msg_t *msg)
{
	msg->opcode = d->f_op;
	msg->data = d->ctl;
	msg->len = (size_t)d->f_len;
	msg->close_code = 0;
	if (d->f_op != AC_WS_CLOSE)
		return 1;
	if (d->f_len == 0) {
		msg->close_code = AC_WS_CLOSE_NO_STATUS;
	} else if (d->f_len == 1) {
		return fail(d, AC_WS_CLOSE_PROTOCOL, "close frame with a one-byte payload");
	} else {
		msg->close_code = (unsigned)d->ctl[0] << 8 | d->ctl[1];
		if (!ac_ws_close_code_valid(msg->close_code))
			return fail(d, AC_WS_CLOSE_PROTOCOL, "close frame with an invalid code");
		msg->data = d->ctl + 2;
		msg->len -= 2;
		if (!ac_utf8_valid((const char *)msg->data, msg->len))
			return fail(d, AC_WS_CLOSE_INVALID_DATA, "close reason that is not UTF-8");
	}
	d->closed = true;
	return 1;
}

int ac_ws_feed(ac_ws_decoder_t *d, const void *data, size_t len, size_t *used, ac_ws_msg_t *msg)
{
	const unsigned char *p = data;
	size_t n = len;
	*used = 0;
	if (d->fail_code)
		return -1;
	if (d->closed) {
		*used = len;
		return 0;
	}
	for (;;) {
		if (!d->in_payload) {
			size_t need = head_need(d);
			while (d->head_got < need && n) {
				d->head[d->head_got++] = *p++;
				n--;
				if (d->head_got == 2) {
					if (check_start(d) < 0)
						goto out_fail;
					need = head_need(d);
				}
			}
			if (d->head_got < need)
				break;
			if (start_frame(d) < 0)
				goto out_fail;
		}
		uint64_t left = d->f_len - d->f_got;
		size_t take = left < n ? (size_t)left : n;
		if (is_control(d->f_op)) {
			memcpy(d->ctl + d->f_got, p, take);
		} else if (d->f_got == 0 && d->f_fin && d->f_op != AC_WS_CONT && take == left) {
			/* A whole message in the chunk: hand it over where it lies. */
			d->in_payload = false;
			d->head_got = 0;
			d->m_op = 0;
			if (d->f_op == AC_WS_TEXT && !ac_utf8_valid((const char *)p, take)) {
				fail(d, AC_WS_CLOSE_INVALID_DATA, "text message that is not UTF-8");
				goto out_fail;
			}
			msg->opcode = d->f_op;
			msg->data = p;
			msg->len = take;
			msg->close_code = 0;
			*used = (size_t)(p + take - (const unsigned char *)data);
			return 1;
		} else if (take) {
			if (reserve(d, d->m_len + (size_t)left) < 0)
				goto out_fail;
			memcpy(d->buf + d->m_len, p, take);
			d->m_len += take;
		}
		p += take;
		n -= take;
		d->f_got += take;
		if (d->f_got < d->f_len)
			break;
		/* The frame is complete. */
		d->in_payload = false;
		d->head_got = 0;
		if (is_control(d->f_op)) {
			if (control_done(d, msg) < 0)
				goto out_fail;
			*used = (size_t)(p - (const unsigned char *)data);
			if (d->closed)
				*used = len;
			return 1;
		}
		if (d->m_op == AC_WS_TEXT && check_text(d, d->f_fin) < 0)
			goto out_fail;
		if (d->f_fin) {
			msg->opcode = d->m_op;
			msg->data = d->buf ? d->buf : (const unsigned char *)"";
			msg->len = d->m_len;
			msg->close_code = 0;
			d->m_op = 0;
			*used = (size_t)(p - (const unsigned char *)data);
			return 1;
		}
	}
	*used = len;
	return 0;
out_fail:
	*used = (size_t)(p - (const unsigned char *)data);
	return -1;
}

/* ---- opening handshake ---- */

void ac_ws_make_key(const unsigned char nonce[16], char out[AC_WS_KEY_LEN + 1])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < 16; i += 3) {
		uint32_t v = (uint32_t)nonce[i] << 16;
		if (i + 1 < 16)
			v |= (uint32_t)nonce[i + 1] << 8;
		if (i + 2 < 16)
			v |= nonce[i + 2];
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < 16 ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < 16 ? b64[v & 63] : '=';
	}
	out[o] = 0;
}

void ac_ws_accept_for(const char *key, char out[AC_WS_ACCEPT_LEN + 1])
{
	ac_sha1_t c;
	unsigned char dig[AC_SHA1_LEN];
	ac_sha1_init(&c);
	ac_sha1_update(&c, key, strlen(key));
	ac_sha1_update(&c, AC_WS_GUID, sizeof(AC_WS_GUID) - 1);
	ac_sha1_final(&c, dig);
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < AC_SHA1_LEN; i += 3) {
		uint32_t v = (uint32_t)dig[i] << 16;
		if (i + 1 < AC_SHA1_LEN)
			v |= (uint32_t)dig[i + 1] << 8;
		if (i + 2 < AC_SHA1_LEN)
			v |= dig[i + 2];
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < AC_SHA1_LEN ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < AC_SHA1_LEN ? b64[v & 63] : '=';
	}
	out[o] = 0;
}

/* RFC 7230 tchar. */
static bool is_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("!#$%&'*+-.^_`|~", c)) ||
		    c == 0)
			return false;
	}
	return true;
}

/* No byte that ends a line or splits a request line. */
static bool is_visible(const char *s, bool space_ok)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (*p == ' ' && !space_ok))
			return false;
	return *s != 0;
}

char *ac_ws_request(const char *target, const char *host, const char *key,
		    const char *const *protocols, const char *const *headers)
{
	if (!target || target[0] != '/' || !is_visible(target, false) || !host ||
	    !is_visible(host, false) || !key || !is_visible(key, false))
		return NULL;
	size_t cap = strlen(target) + strlen(host) + strlen(key) + 256;
	for (size_t i = 0; protocols && protocols[i]; i++) {
		if (!is_token(protocols[i], strlen(protocols[i])))
			return NULL;
		cap += strlen(protocols[i]) + 2;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		const char *colon = strchr(headers[i], ':');
		if (!colon || !is_token(headers[i], (size_t)(colon - headers[i])) ||
		    (colon[1] && !is_visible(colon + 1, true)))
			return NULL;
		cap += strlen(headers[i]) + 2;
	}
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t o = (size_t)snprintf(out, cap,
				    "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
				    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
				    "Sec-WebSocket-Version: 13\r\nUser-Agent: agentcell\r\n",
				    target, host, key);
	if (protocols && protocols[0]) {
		o += (size_t)snprintf(out + o, cap - o, "Sec-WebSocket-Protocol: ");
		for (size_t i = 0; protocols[i]; i++)
			o +=
			    (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", protocols[i]);
		o += (size_t)snprintf(out + o, cap - o, "\r\n");
	}
	for (size_t i = 0; headers && headers[i]; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s\r\n", headers[i]);
	snprintf(out + o, cap - o, "\r\n");
	return out;
}

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Whether the comma-separated list v[0..n) has the element want (case-insensitive). */
static bool list_has(const char *v, size_t n, const char *want)
{
	size_t wl = strlen(want);
	while (n) {
		const char *comma = memchr(v, ',', n);
		size_t el = comma ? (size_t)(comma - v) : n;
		const char *e = v;
		size_t en = el;
		trim(&e, &en);
		if (en == wl && !strncasecmp(e, want, wl))
			return true;
		if (!comma)
			break;
		v = comma + 1;
		n -= el + 1;
	}
	return false;
}

static bool name_is(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(s, name, n);
}

int ac_ws_parse_answer(const char *buf, size_t len, const char *key, const char *const *protocols,
		       ac_ws_answer_t *a)
{
	memset(a, 0, sizeof(*a));
	a->content_length = -1;
	a->protocol = -1;
	/* The end of the head: an empty line (CRLF, or a bare LF as lenient parsers allow). */
	size_t end = 0;
	for (size_t i = 0; i < len && i < AC_WS_RESP_HEAD_MAX; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			break;
		}
	}
	if (!end)
		return len >= AC_WS_RESP_HEAD_MAX ? -1 : 1;
	a->head_len = end;
	/* Status line: HTTP/1.x SP 3DIGIT [SP reason] */
	const char *p = buf;
	const char *nl = memchr(p, '\n', end);
	size_t ll = (size_t)(nl - p);
	if (ll && p[ll - 1] == '\r')
		ll--;
	if (ll < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (ll > 12 && p[12] != ' '))
		return -1;
	a->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (ll > 13) {
		char raw[sizeof(a->reason)];
		size_t rl = ll - 13 < sizeof(raw) - 1 ? ll - 13 : sizeof(raw) - 1;
		memcpy(raw, p + 13, rl);
		raw[rl] = 0;
		ac_escape_controls(raw, a->reason, sizeof(a->reason));
	}
	char want_accept[AC_WS_ACCEPT_LEN + 1] = "";
	if (key)
		ac_ws_accept_for(key, want_accept);
	bool seen_protocol = false;
	for (p = nl + 1; p < buf + end;) {
		nl = memchr(p, '\n', (size_t)(buf + end - p));
		size_t n = (size_t)(nl - p);
		const char *next = nl + 1;
		if (n && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break; /* the blank line */
		if (p[0] == ' ' || p[0] == '\t')
			return -1; /* obsolete line folding */
		const char *colon = memchr(p, ':', n);
		if (!colon || !is_token(p, (size_t)(colon - p)))
			return -1;
		size_t nn = (size_t)(colon - p);
		const char *v = colon + 1;
		size_t vn = n - nn - 1;
		trim(&v, &vn);
		if (name_is(p, nn, "upgrade")) {
			a->upgrade_ok = list_has(v, vn, "websocket");
		} else if (name_is(p, nn, "connection")) {
			a->connection_ok = a->connection_ok || list_has(v, vn, "upgrade");
		} else if (name_is(p, nn, "sec-websocket-accept")) {
			a->accept_ok = key && vn == AC_WS_ACCEPT_LEN &&
				       !memcmp(v, want_accept, AC_WS_ACCEPT_LEN);
		} else if (name_is(p, nn, "sec-websocket-protocol")) {
			a->protocol = -2;
			for (size_t i = 0; !seen_protocol && protocols && protocols[i]; i++)
				if (strlen(protocols[i]) == vn && !memcmp(protocols[i], v, vn))
					a->protocol = (int)i;
			seen_protocol = true; /* a second one is not a choice */
		} else if (name_is(p, nn, "sec-websocket-extensions")) {
			a->extensions = true;
		} else if (name_is(p, nn, "content-length")) {
			if (!vn || vn > 15 || a->content_length >= 0)
				return -1;
			int64_t cl = 0;
			for (size_t i = 0; i < vn; i++) {
				if (v[i] < '0' || v[i] > '9')
					return -1;
				cl = cl * 10 + (v[i] - '0');
			}
			a->content_length = cl;
		} else if (name_is(p, nn, "transfer-encoding")) {
			a->chunked = list_has(v, vn, "chunked");
		}
		p = next;
	}
	return 0;
}

const char *ac_ws_answer_problem(const ac_ws_answer_t *a)
{
	if (a->status != 101)
		return "the server did not switch protocols";
	if (!a->upgrade_ok)
		return "the answer lacks 'Upgrade: websocket'";
	if (!a->connection_ok)
		return "the answer lacks 'Connection: Upgrade'";
	if (!a->accept_ok)
		return "the answer's Sec-WebSocket-Accept does not match the key";
	if (a->protocol == -2)
		return "the server chose a subprotocol that was not offered";
	if (a->extensions)
		return "the server chose an extension that was not offered";
	return NULL;
}
