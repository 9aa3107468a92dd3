/* The WebSocket transport of remote engines (Kubernetes pods/exec, Nomad allocation exec).
 *
 * Debian 12's libcurl has no WebSocket support, so curl only makes the connection
 * (CURLOPT_CONNECT_ONLY: TCP, proxy tunnel, TLS with the conf's CA and client certificate)
 * and everything above it is ours: the Upgrade request goes out with curl_easy_send, the
 * answer and then the frames come in with curl_easy_recv on the non-blocking socket, and
 * src/base/ws.c encodes and decodes. Frames are read into one buffer that the decoder
 * consumes in place, and written from a stack buffer in pieces (masking needs a copy),
 * so a running stream allocates nothing.
 *
 * The TLS and authentication set-up (CA/cert/key as file or PEM bytes, insecure,
 * tls_server_name through CURLOPT_CONNECT_TO, bearer token and token file, extra headers)
 * is conn.c's, as for ac_remote_request; basic auth is a header we write ourselves, since
 * the request does not go through curl's HTTP layer. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backends/remote/conn.h"
#include "backends/remote/remote.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/ws.h"

/* Read buffer: larger than a TLS record (16 KiB), so one read takes a whole record. */
#define IN_CAP (128u * 1024)
/* A refusal's body (a metav1.Status, a Nomad error line) is short; more is cut. */
#define ERRBODY_MAX (64u * 1024)

struct ac_ws_conn {
	CURL *curl;
	int fd;
	ac_ws_decoder_t dec;
	unsigned char *in; /* IN_CAP bytes; in[in_off..in_len) not decoded yet */
	size_t in_off, in_len;
	bool need_read;	 /* the last read returned data: curl or TLS may hold more */
	bool close_sent; /* no frame may follow ours */
	bool close_got;
	bool broken; /* a send failed or the decoder refused: nothing more goes out */
	unsigned close_code;
	char close_reason[AC_WS_CONTROL_MAX + 1]; /* the peer's, as sent (UTF-8, checked) */
	long io_timeout_ms;			  /* longest wait for the socket to take a frame */
	char errbuf[CURL_ERROR_SIZE];
	char who[200]; /* "cluster 'kind-dev'" or the server URL, for errors */
};

/* ---- socket I/O through curl ---- */

static long remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t now = ac_time_now_ms();
	return now >= deadline ? 0 : (long)(deadline - now);
}

/* Waits for events on the socket until deadline (-1: none): 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		long ms = remaining_ms(deadline);
		struct pollfd pf = {fd, events, 0};
		int n = poll(&pf, 1, ms > INT32_MAX ? INT32_MAX : (int)ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && ms != 0 && deadline >= 0 && remaining_ms(deadline) > 0)
			continue;
		return n != 0;
	}
}

static int send_raw(ac_ws_conn_t *c, const void *buf, size_t len, ac_error_t **err)
{
	const char *p = buf;
	int64_t deadline = ac_time_now_ms() + c->io_timeout_ms;
	while (len) {
		size_t sent = 0;
		CURLcode cc = ac_curl.curl_easy_send(c->curl, p, len, &sent);
		if (cc == CURLE_AGAIN) {
			if (!wait_fd(c->fd, POLLOUT, deadline)) {
				c->broken = true;
				return ac_error_set(err, AC_ERR_BACKEND, 0,
						    "%s: the server took no data for %ld ms",
						    c->who, c->io_timeout_ms);
			}
			continue;
		}
		if (cc != CURLE_OK) {
			c->broken = true;
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: cannot send on the WebSocket: %s", c->who,
					    ac_curl.curl_easy_strerror(cc));
		}
		p += sent;
		len -= sent;
	}
	return 0;
}

/* Reads what is there into buf: > 0 bytes, 0 at end of stream, -2 timed out, -1 error. */
static ssize_t recv_some(ac_ws_conn_t *c, void *buf, size_t room, int64_t deadline,
			 ac_error_t **err)
{
	for (;;) {
		size_t got = 0;
		CURLcode cc = ac_curl.curl_easy_recv(c->curl, buf, room, &got);
		if (cc == CURLE_OK) {
			c->need_read = got > 0;
			return (ssize_t)got;
		}
		if (cc == CURLE_AGAIN) {
			c->need_read = false;
			if (!wait_fd(c->fd, POLLIN, deadline))
				return -2;
			continue;
		}
		c->broken = true;
		ac_error_set(err, AC_ERR_BACKEND, 0, "%s: cannot read from the WebSocket: %s",
			     c->who, ac_curl.curl_easy_strerror(cc));
		return -1;
	}
}

/* One frame, masked with a fresh key, written in pieces through a stack buffer. */
static int send_frame(ac_ws_conn_t *c, int opcode, const void *data, size_t len, ac_error_t **err)
{
	if (c->broken)
		return ac_error_set(err, AC_ERR_STATE, 0, "%s: the WebSocket is broken", c->who);
	unsigned char mask[4];
	if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "getrandom");
	unsigned char buf[16384];
	size_t n = ac_ws_frame_head(buf, opcode, true, len, mask);
	const unsigned char *p = data;
	uint64_t off = 0;
	do {
		size_t take = sizeof(buf) - n < len - off ? sizeof(buf) - n : (size_t)(len - off);
		if (take)
			memcpy(buf + n, p + off, take);
		ac_ws_mask(buf + n, take, mask, off);
		off += take;
		if (send_raw(c, buf, n + take, err) < 0)
			return -1;
		n = 0;
	} while (off < len);
	return 0;
}

/* ---- the opening handshake ---- */

/* Decodes a chunked body in place as far as it is there. */
static size_t dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;
	while (in < len) {
		char *nl = memchr(b + in, '\n', len - in);
		if (!nl)
			break;
		unsigned long n = strtoul(b + in, NULL, 16);
		in = (size_t)(nl - b) + 1;
		if (n == 0)
			break;
		size_t take = n < len - in ? n : len - in;
		memmove(b + out, b + in, take);
		out += take;
		in += take;
		if (in < len && b[in] == '\r')
			in++;
		if (in < len && b[in] == '\n')
			in++;
	}
	return out;
}

/* The refusal as one line: "HTTP 403 Forbidden: <Status.message or the body's first
 * line>". */
static int refused(ac_ws_conn_t *c, const char *target, const ac_ws_answer_t *a, char *body,
		   size_t blen, ac_error_t **err)
{
	char msg[600] = "";
	json_t *j = json_loadb(body, blen, 0, NULL);
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (!m && j)
		m = json_string_value(json_object_get(j, "error"));
	if (m) {
		snprintf(msg, sizeof(msg), "%s", m);
	} else {
		size_t l = 0;
		while (l < blen && body[l] != '\n' && l < sizeof(msg) - 1)
			l++;
		memcpy(msg, body, l);
		msg[l] = 0;
		while (l && (msg[l - 1] == '\r' || msg[l - 1] == ' '))
			msg[--l] = 0;
	}
	json_decref(j);
	ac_error_kind_t kind = AC_ERR_BACKEND;
	if (a->status == 401 || a->status == 403)
		kind = AC_ERR_PERMISSION;
	else if (a->status == 404)
		kind = AC_ERR_NOT_FOUND;
	else if (a->status == 400 || a->status == 422)
		kind = AC_ERR_INVALID;
	/* The path without its query: it may carry a command line. */
	int tl = (int)strcspn(target, "?");
	return ac_error_set(err, kind, 0, "%s: WebSocket to %.*s refused: HTTP %d%s%s%s%s", c->who,
			    tl, target, a->status, a->reason[0] ? " " : "", a->reason,
			    msg[0] ? ": " : "", msg);
}

static int handshake(ac_ws_conn_t *c, const char *target, const char *host,
		     const char *const *protocols, const char *const *headers, const char **chosen,
		     int64_t deadline, ac_error_t **err)
{
	unsigned char nonce[16];
	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "getrandom");
	char key[AC_WS_KEY_LEN + 1];
	ac_ws_make_key(nonce, key);
	char *req = ac_ws_request(target, host, key, protocols, headers);
	if (!req)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: cannot form the WebSocket request for %s (bad path, "
				    "subprotocol or header)",
				    c->who, target);
	int rc = send_raw(c, req, strlen(req), err);
	explicit_bzero(req, strlen(req)); /* it carries the token */
	free(req);
	if (rc < 0)
		return -1;

	ac_ws_answer_t a;
	int pr = 1;
	char *buf = (char *)c->in;
	while (pr == 1) {
		if (c->in_len >= AC_WS_RESP_HEAD_MAX)
			break;
		ssize_t r = recv_some(c, buf + c->in_len, IN_CAP - c->in_len, deadline, err);
		if (r == -1)
			return -1;
		if (r <= 0)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: no answer to the WebSocket request for %.*s (%s)",
					    c->who, (int)strcspn(target, "?"), target,
					    r == 0 ? "connection closed" : "timed out");
		c->in_len += (size_t)r;
		pr = ac_ws_parse_answer(buf, c->in_len, key, protocols, &a);
	}
	if (pr != 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: malformed answer to the WebSocket request", c->who);
	if (a.status != 101) {
		/* The body explains: read it (Content-Length, chunked or until closed). */
		size_t want = a.content_length >= 0 && a.content_length < ERRBODY_MAX
				  ? a.head_len + (size_t)a.content_length
				  : a.head_len + ERRBODY_MAX;
		while (c->in_len < want && c->in_len < IN_CAP) {
			size_t got = c->in_len - a.head_len;
			if (a.chunked && ((got >= 3 && !memcmp(buf + a.head_len, "0\r\n", 3)) ||
					  memmem(buf + a.head_len, got, "\r\n0\r\n", 5)))
				break;
			ssize_t r =
			    recv_some(c, buf + c->in_len, IN_CAP - c->in_len, deadline, NULL);
			if (r <= 0)
				break;
			c->in_len += (size_t)r;
		}
		size_t blen = (c->in_len < want ? c->in_len : want) - a.head_len;
		char *body = buf + a.head_len;
		if (a.chunked)
			blen = dechunk(body, blen);
		return refused(c, target, &a, body, blen, err);
	}
	const char *why = ac_ws_answer_problem(&a);
	if (why)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: WebSocket to %.*s: %s", c->who,
				    (int)strcspn(target, "?"), target, why);
	if (chosen)
		*chosen = a.protocol >= 0 ? protocols[a.protocol] : NULL;
	/* Frames may have come right behind the head. */
	c->in_off = a.head_len;
	return 0;
}

int ac_ws_connect(const ac_remote_conf_t *conf, const char *path, const char *const *protocols,
		  const char **chosen, ac_ws_conn_t **out, ac_error_t **err)
{
	*out = NULL;
	if (chosen)
		*chosen = NULL;
	const char *who = conf->name ? conf->name : conf->server ? conf->server : "remote";
	if (ac_remote_conf_check(conf, who, err) < 0)
		return -1;
	if (!path || path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: bad WebSocket path '%s'", who,
				    path ? path : "");
	if (ac_curl_load(err) < 0)
		return -1;
	ac_remote_endpoint_t ep;
	if (ac_remote_endpoint_init(&ep, conf, who, err) < 0)
		return -1;

	ac_ws_conn_t *c = calloc(1, sizeof(*c));
	if (!c || !(c->in = malloc(IN_CAP))) {
		free(c);
		ac_remote_endpoint_free(&ep);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	c->fd = -1;
	snprintf(c->who, sizeof(c->who), "%s", who);
	ac_ws_decoder_init(&c->dec, 0);
	long timeout = conf->timeout_ms > 0 ? conf->timeout_ms : AC_REMOTE_DEFAULT_TIMEOUT_MS;
	c->io_timeout_ms = timeout;
	int64_t deadline = ac_time_now_ms() + timeout;

	/* URL for curl: only scheme and authority matter (it connects, no more). */
	_cleanup_free_ char *url = NULL, *target = NULL, *auth = NULL;
	char *last_token = NULL;
	const char **hdrs = NULL;
	int rc = -1;
	if (asprintf(&url, "%s://%s:%s/", ep.scheme, ep.name, ep.port) < 0 ||
	    asprintf(&target, "%s%s", ep.prefix, path) < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}

	/* Headers: authorization, then the conf's extra ones. */
	const char *token = NULL;
	if (ac_remote_token(conf, who, &last_token, &token, err) < 0 ||
	    ac_remote_auth_header(conf, token, true, &auth, err) < 0)
		goto out;
	size_t nh = 0;
	for (char **x = conf->headers; x && *x; x++)
		nh++;
	hdrs = calloc(nh + 2, sizeof(char *));
	if (!hdrs) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	if (auth)
		hdrs[k++] = auth;
	for (size_t i = 0; i < nh; i++)
		hdrs[k++] = conf->headers[i];

	c->curl = ac_curl.curl_easy_init();
	if (!c->curl) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_easy_init failed");
		goto out;
	}
	CURL *h = c->curl;
	ac_remote_set_connection(h, conf, url, &ep, timeout, c->errbuf);
	ac_curl.curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	/* ALPN must not pick h2: the Upgrade request we write is HTTP/1.1. */
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* Through a proxy (curl's *_proxy environment), plain http is tunnelled too: the
	 * request we write is for the origin, not for a proxy. */
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	CURLcode cc = ac_curl.curl_easy_perform(h);
	curl_socket_t sock = CURL_SOCKET_BAD;
	if (cc == CURLE_OK)
		cc = ac_curl.curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &sock);
	if (cc != CURLE_OK || sock == CURL_SOCKET_BAD) {
		ac_remote_curl_fail(c->who, conf->server,
				    cc != CURLE_OK ? cc : CURLE_COULDNT_CONNECT, c->errbuf,
				    "cannot connect", err);
		goto out;
	}
	c->fd = (int)sock;
	if (handshake(c, target, ep.authority, protocols, hdrs, chosen, deadline, err) < 0)
		goto out;
	*out = steal_ptr(c);
	rc = 0;
out:
	if (auth)
		explicit_bzero(auth, strlen(auth));
	ac_remote_free_secret(last_token);
	free(hdrs);
	if (c && c->curl)
		ac_curl.curl_easy_setopt(c->curl, CURLOPT_CONNECT_TO, NULL);
	ac_remote_endpoint_free(&ep);
	if (c) {
		c->broken = true; /* no close frame from a half-made connection */
		ac_ws_free(c);
	}
	return rc;
}

void ac_ws_set_max_message(ac_ws_conn_t *c, size_t max)
{
	c->dec.max = max ? max : AC_WS_MAX_DEFAULT;
}

/* ---- frames ---- */

int ac_ws_send(ac_ws_conn_t *c, int opcode, const void *data, size_t len, ac_error_t **err)
{
	if (opcode != AC_WS_TEXT && opcode != AC_WS_BINARY)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: WebSocket opcode %d is not data",
				    c->who, opcode);
	if (c->close_sent)
		return ac_error_set(err, AC_ERR_STATE, 0, "%s: the WebSocket is closing", c->who);
	if (opcode == AC_WS_TEXT && !ac_utf8_valid(data, len))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: a WebSocket text message must be UTF-8", c->who);
	return send_frame(c, opcode, data, len, err);
}

int ac_ws_send_close(ac_ws_conn_t *c, unsigned code, const char *reason, ac_error_t **err)
{
	if (code && !ac_ws_close_code_valid(code))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: %u is not a WebSocket close code",
				    c->who, code);
	if (c->close_sent)
		return 0;
	unsigned char pl[AC_WS_CONTROL_MAX];
	size_t n = ac_ws_close_payload(pl, code, reason);
	c->close_sent = true;
	return send_frame(c, AC_WS_CLOSE, pl, n, err);
}

int ac_ws_recv(ac_ws_conn_t *c, int timeout_ms, int *opcode, const unsigned char **data,
	       size_t *len, unsigned *close_code, ac_error_t **err)
{
	if (c->close_got) {
		if (close_code)
			*close_code = c->close_code;
		return 0;
	}
	if (c->dec.fail_code)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: WebSocket protocol error from the server: %s", c->who,
				    c->dec.fail_why);
	int64_t deadline = timeout_ms < 0 ? -1 : ac_time_now_ms() + timeout_ms;
	for (;;) {
		while (c->in_off < c->in_len) {
			size_t used = 0;
			ac_ws_msg_t m;
			int r = ac_ws_feed(&c->dec, c->in + c->in_off, c->in_len - c->in_off, &used,
					   &m);
			c->in_off += used;
			if (r < 0) {
				/* Tell the server why (best effort), then fail. */
				if (!c->close_sent && !c->broken) {
					unsigned char pl[AC_WS_CONTROL_MAX];
					size_t n = ac_ws_close_payload(pl, c->dec.fail_code,
								       c->dec.fail_why);
					c->close_sent = true;
					send_frame(c, AC_WS_CLOSE, pl, n, NULL);
				}
				c->broken = true;
				return ac_error_set(
				    err, AC_ERR_BACKEND, 0,
				    "%s: WebSocket protocol error from the server: %s (closed "
				    "with %u)",
				    c->who, c->dec.fail_why, c->dec.fail_code);
			}
			if (r == 0)
				break;
			switch (m.opcode) {
			case AC_WS_PING:
				if (!c->close_sent &&
				    send_frame(c, AC_WS_PONG, m.data, m.len, err) < 0)
					return -1;
				continue;
			case AC_WS_PONG:
				continue;
			case AC_WS_CLOSE:
				c->close_got = true;
				c->close_code = m.close_code;
				memcpy(c->close_reason, m.data, m.len); /* at most 123 bytes */
				c->close_reason[m.len] = 0;
				if (close_code)
					*close_code = m.close_code;
				if (!c->close_sent && !c->broken) {
					/* Echo the code, as RFC 6455 5.5.1 suggests. */
					unsigned char pl[AC_WS_CONTROL_MAX];
					size_t n = ac_ws_close_payload(
					    pl,
					    m.close_code == AC_WS_CLOSE_NO_STATUS ? 0
										  : m.close_code,
					    NULL);
					c->close_sent = true;
					send_frame(c, AC_WS_CLOSE, pl, n, NULL);
				}
				return 0;
			default:
				*opcode = m.opcode;
				*data = m.data;
				*len = m.len;
				return 1;
			}
		}
		c->in_off = c->in_len = 0;
		ssize_t r = recv_some(c, c->in, IN_CAP, deadline, err);
		if (r == -2)
			return 2;
		if (r < 0)
			return -1;
		if (r == 0) {
			c->broken = true;
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: the server closed the connection without a "
					    "WebSocket close frame",
					    c->who);
		}
		c->in_len = (size_t)r;
	}
}

const char *ac_ws_close_reason(const ac_ws_conn_t *c)
{
	return c->close_reason;
}

int ac_ws_fd(ac_ws_conn_t *c)
{
	return c->fd;
}

bool ac_ws_pending(ac_ws_conn_t *c)
{
	/* Whether ac_ws_recv may return without the socket becoming readable: bytes held here,
	 * or in curl / the TLS layer after a read that returned data, or a close or failure
	 * that it reports at once. */
	return c->close_got || c->dec.fail_code || c->in_off < c->in_len || c->need_read;
}

void ac_ws_free(ac_ws_conn_t *c)
{
	if (!c)
		return;
	if (c->curl && !c->close_sent && !c->broken) {
		/* Going away: say so, without waiting long for a peer that does not read. */
		unsigned char pl[AC_WS_CONTROL_MAX];
		size_t n = ac_ws_close_payload(pl, AC_WS_CLOSE_GOING_AWAY, NULL);
		c->io_timeout_ms = 200;
		c->close_sent = true;
		send_frame(c, AC_WS_CLOSE, pl, n, NULL);
	}
	if (c->curl)
		ac_curl.curl_easy_cleanup(c->curl); /* closes the socket */
	ac_ws_decoder_free(&c->dec);
	free(c->in);
	free(c);
}
