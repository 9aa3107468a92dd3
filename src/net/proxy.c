/* The per-sandbox egress proxy and port publisher: `agentcell __netproxy`, a process of
 * this binary in the host's namespaces (net.h: the data path, the orders, the audit line).
 *
 * Names are resolved here, never by the sandbox: getaddrinfo(AF_UNSPEC, SOCK_STREAM) in
 * the proxy's own namespaces, so nsswitch applies (/etc/hosts first, then DNS; the tests
 * rely on /etc/hosts). Every address is checked by the policy before a connect, in the
 * resolver's order; the first allowed address that answers is used.
 *
 * HTTP (RFC 9110/9112), strictly parsed (CRLF line ends, no obs-fold, one Content-Length,
 * Transfer-Encoding only with a final chunked and never with Content-Length):
 *   - plain HTTP (absolute-form "GET http://host/..."): one request per client
 *     connection, rewritten to origin-form with Host set from the target, the
 *     hop-by-hop and Proxy-* headers dropped and "Connection: close" upstream; the
 *     request body is forwarded by its framing, then the response as it comes.
 *   - CONNECT host:port: a raw tunnel; or, for a host a secret is bound to when the
 *     orders carry a CA, TLS is terminated here (a leaf of the sandbox's CA), a verified
 *     TLS connection is made upstream and the requests are relayed one at a time (the
 *     request, then its response by the response's framing; keep-alive works; after a
 *     101 the connection becomes a raw relay).
 *   - "Expect: 100-continue" is answered here and not forwarded: the body follows.
 * Secrets: for a request to a bound host (exact, case-insensitive) inside intercepted TLS,
 * the binding's header is replaced by PREFIX+VALUE and its placeholder replaced by the
 * value anywhere in the request head. Plain HTTP to a bound host never gets the value (it
 * would travel in clear): it goes as the sandbox wrote it. A placeholder in a head (request line or any header, CONNECT's own head
 * and Proxy-Authorization included) sent to a host it is not bound to is refused. Only
 * request heads are searched: request bodies go through unchanged and unsearched.
 *
 * One detached thread per connection (at most CONN_MAX). Published ports: a host
 * listener per entry; for each connection the thread enters the sandbox's network
 * namespace only to create its socket, and comes back before anything else (or aborts).
 *
 * Over 800 lines on purpose: a connection's whole life (egress, interception, publishing)
 * and the process's start share the process state P; the HTTP machinery is http.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/procid.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "net/net.h"
#include "net/http.h"
#include "net/pattern.h"

#define FD_ORDERS	  3
#define FD_LISTEN	  4
#define FD_LIFE		  5
#define FD_READY	  6
#define ORDERS_MAX	  (16u << 20)
#define CONN_MAX	  512
#define HEAD_TIMEOUT_S	  30
#define CONNECT_TIMEOUT_S 10
#define AUDIT_HOST_MAX	  255
#define AUDIT_REASON_MAX  300

typedef struct {
	char *key, *host, *header, *prefix, *placeholder, *value;
} binding_t;

typedef struct {
	int fd;
	char address[INET6_ADDRSTRLEN];
	int host_port, port;
} publish_t;

static struct {
	char *sandbox, *home;
	ac_net_policy_t *policy;
	binding_t *bind;
	size_t nbind;
	ac_tls_ca_t *ca;
	int audit_fd, sandbox_ns, own_ns, egress_fd;
	publish_t *pub;
	size_t npub;
	atomic_int live;
} P = {.audit_fd = -1, .sandbox_ns = -1, .own_ns = -1, .egress_fd = -1};

/* ---- connections ------------------------------------------------------------------------ */

typedef struct {
	int pub; /* -1: egress; else the index in P.pub */
	stream_t cl, up;
	char peer[INET6_ADDRSTRLEN + 8];
	struct timespec t0;
	/* what the audit line says */
	char host[AUDIT_HOST_MAX + 1];
	int port;
	char method[32];
	char address[INET6_ADDRSTRLEN + 8];
	char reason[AUDIT_REASON_MAX];
	bool refused, intercepted;
	const binding_t *injected[16];
	size_t ninjected;
	char *buf; /* RELAY_BUF */
} conn_t;

static void conn_free(conn_t *c)
{
	if (c->cl.ssl)
		ac_tls_close(c->cl.ssl);
	if (c->up.ssl)
		ac_tls_close(c->up.ssl);
	if (c->cl.fd >= 0 && c->refused) {
		/* A lingering close: closing with unread request bytes would reset the
		 * connection and lose the answer (a 431 to a client still sending). */
		shutdown(c->cl.fd, SHUT_WR);
		struct timeval tv = {.tv_sec = 2};
		setsockopt(c->cl.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		size_t total = 0;
		ssize_t r;
		while (total < (1u << 20) && (r = recv(c->cl.fd, c->cl.buf, HEAD_MAX, 0)) > 0)
			total += (size_t)r;
	}
	if (c->cl.fd >= 0)
		close(c->cl.fd);
	if (c->up.fd >= 0)
		close(c->up.fd);
	free(c->cl.buf);
	free(c->up.buf);
	free(c->buf);
	free(c);
}

static void audit(conn_t *c)
{
	if (P.audit_fd < 0)
		return;
	char ts[32], host[AUDIT_HOST_MAX + 1], reason[AUDIT_REASON_MAX];
	ac_time_now_rfc3339(ts);
	host[ac_utf8_sanitize(c->host, strlen(c->host), host, AUDIT_HOST_MAX, '?')] = 0;
	reason[ac_utf8_sanitize(c->reason, strlen(c->reason), reason, sizeof(reason) - 1, '?')] = 0;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms =
	    (double)(t1.tv_sec - c->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - c->t0.tv_nsec) / 1e6;
	json_t *d = json_pack("{s:s, s:i, s:s, s:s}", "host", host, "port", c->port, "method",
			      c->method, "verdict", c->refused ? "refused" : "allowed");
	if (!d)
		return;
	if (c->refused)
		json_object_set_new(d, "reason", json_string(reason));
	if (c->address[0])
		json_object_set_new(d, "address", json_string(c->address));
	json_object_set_new(d, "bytes_out", json_integer((json_int_t)c->up.wr));
	json_object_set_new(d, "bytes_in", json_integer((json_int_t)c->up.rd));
	if (c->pub < 0)
		json_object_set_new(d, "intercepted", json_boolean(c->intercepted));
	if (c->ninjected) {
		json_t *keys = json_array();
		for (size_t i = 0; i < c->ninjected; i++)
			json_array_append_new(keys, json_string(c->injected[i]->key));
		json_object_set_new(d, "injected", keys);
	}
	if (c->peer[0])
		json_object_set_new(d, "peer", json_string(c->peer));
	json_object_set_new(d, "duration_ms", json_real((double)(long long)(ms * 1000) / 1000));
	json_t *line = json_pack("{s:s, s:s, s:s, s:o}", "timestamp", ts, "event", "net", "sandbox",
				 P.sandbox, "details", d);
	char *text = line ? json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
	/* One write(2) of less than PIPE_BUF bytes is never interleaved with another. */
	while (text && strlen(text) + 1 >= PIPE_BUF) {
		json_t *keys = json_object_get(d, "injected");
		free(text);
		text = NULL;
		if (json_array_size(keys) == 0)
			break;
		json_array_remove(keys, json_array_size(keys) - 1);
		text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(10));
	}
	json_decref(line);
	if (!text)
		return;
	size_t n = strlen(text);
	text[n] = '\n';
	ssize_t w;
	do
		w = write(P.audit_fd, text, n + 1);
	while (w < 0 && errno == EINTR);
	free(text);
}

/* The reason goes into a header line and the audit: no control bytes. */
static void vset_reason(conn_t *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void vset_reason(conn_t *c, const char *fmt, va_list ap)
{
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	for (char *p = c->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	c->refused = true;
}

static void set_reason(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(conn_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_reason(c, fmt, ap);
	va_end(ap);
}

static void authority(const conn_t *c, char *out, size_t cap)
{
	snprintf(out, cap, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
}

/* An answer of the proxy's own (status >= 400: "Connection: close"). */
static void reply(conn_t *c, int status, const char *text, const char *hname, const char *body)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 status, text, hname ? hname : "", hname ? ": " : "",
			 hname ? c->reason : "", hname ? "\r\n" : "", strlen(body), body);
	if (n > 0)
		ac_px_stream_write(&c->cl, buf,
				   (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void refuse(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(conn_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_reason(c, fmt, ap);
	va_end(ap);
	char auth[300], body[700];
	authority(c, auth, sizeof(auth));
	snprintf(body, sizeof(body), "agentcell: %s refused: %s\n", auth, c->reason);
	reply(c, 403, "Forbidden", "X-Agentcell-Refused", body);
}

/* 400, 431, 502 ...: audited as refused with the reason; no X-Agentcell-Refused. */
static void fail_status(conn_t *c, int status, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_status(conn_t *c, int status, const char *text, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_reason(c, fmt, ap);
	va_end(ap);
	char body[700];
	if (c->host[0]) {
		char auth[300];
		authority(c, auth, sizeof(auth));
		snprintf(body, sizeof(body), "agentcell: %s: %s\n", auth, c->reason);
	} else {
		snprintf(body, sizeof(body), "agentcell: %s\n", c->reason);
	}
	reply(c, status, text, "X-Agentcell-Error", body);
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
		snprintf(out, cap, "%s:%d", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		snprintf(out, cap, "[%s]:%d", ip, port);
	} else {
		snprintf(out, cap, "?");
	}
}

/* A connected socket to sa within CONNECT_TIMEOUT_S, blocking again; -1 with errno. */
static int connect_to(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int e = 0;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS) {
			e = errno;
		} else {
			struct pollfd p = {fd, POLLOUT, 0};
			int r;
			do
				r = poll(&p, 1, CONNECT_TIMEOUT_S * 1000);
			while (r < 0 && errno == EINTR);
			socklen_t el = sizeof(e);
			if (r == 0)
				e = ETIMEDOUT;
			else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
		}
	}
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Policy, resolution, policy again on each address, connect: the upstream socket in
 * c->up.fd (0), or the client answered and the reason recorded (-1). */
static int open_upstream(conn_t *c)
{
	const char *why = ac_net_policy_check_name(P.policy, c->host);
	if (why) {
		refuse(c, "%s", why);
		return -1;
	}
	char port[8];
	snprintf(port, sizeof(port), "%d", c->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(c->host, port, &hints, &res);
	if (g != 0 || !res) {
		fail_status(c, 502, "Bad Gateway", "cannot resolve: %s",
			    g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		return -1;
	}
	const char *first = NULL;
	int err = 0;
	char tried[sizeof(c->address)] = "";
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		why = ac_net_policy_check_addr(P.policy, ai->ai_addr);
		if (why) {
			if (!first) {
				first = why;
				format_addr(ai->ai_addr, c->address, sizeof(c->address));
			}
			continue;
		}
		format_addr(ai->ai_addr, tried, sizeof(tried));
		int fd = connect_to(ai->ai_addr, ai->ai_addrlen);
		if (fd >= 0) {
			memcpy(c->address, tried, sizeof(tried));
			c->up.fd = fd;
			freeaddrinfo(res);
			return 0;
		}
		err = errno;
	}
	freeaddrinfo(res);
	if (!err) {
		refuse(c, "%s", first ? first : "no address");
		return -1;
	}
	memcpy(c->address, tried, sizeof(tried));
	fail_status(c, 502, "Bad Gateway", "cannot connect: %s", strerror(err));
	return -1;
}

/* ---- secrets ---------------------------------------------------------------------------- */

static bool host_bound(const binding_t *b, const char *host)
{
	return !strcasecmp(b->host, host);
}

/* The binding whose placeholder text carries while going to a host it is not bound to. */
static const binding_t *foreign_placeholder(const char *text, size_t len, const char *host)
{
	for (size_t i = 0; i < P.nbind; i++)
		if (!host_bound(&P.bind[i], host) &&
		    memmem(text, len, P.bind[i].placeholder, strlen(P.bind[i].placeholder)))
			return &P.bind[i];
	return NULL;
}

/* s with the placeholders of the bindings of host replaced by their values. */
static void sb_subst(sb_t *b, const char *s, const char *host)
{
	while (*s) {
		const char *best = NULL;
		const binding_t *bb = NULL;
		for (size_t i = 0; i < P.nbind; i++) {
			if (!host_bound(&P.bind[i], host))
				continue;
			const char *at = strstr(s, P.bind[i].placeholder);
			if (at && (!best || at < best)) {
				best = at;
				bb = &P.bind[i];
			}
		}
		if (!best) {
			ac_px_sb_str(b, s);
			return;
		}
		ac_px_sb_add(b, s, (size_t)(best - s));
		ac_px_sb_str(b, bb->value);
		s = best + strlen(bb->placeholder);
	}
}

static bool header_is_injected(const char *name, const char *host)
{
	for (size_t i = 0; i < P.nbind; i++)
		if (host_bound(&P.bind[i], host) && !strcasecmp(P.bind[i].header, name))
			return true;
	return false;
}

static bool hop_by_hop(const head_t *h, const char *name)
{
	static const char *const hop[] = {
	    "Connection",	  "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
	    "Proxy-Authenticate", "TE",		"Trailer",	    "Upgrade"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(hop); i++)
		if (!strcasecmp(name, hop[i]))
			return true;
	return ac_px_hdr_has_token(h, "Connection", name);
}

/* The head to send upstream. plain: origin-form target given, Host from the target,
 * hop-by-hop headers dropped, "Connection: close". */
static void build_head(conn_t *c, const head_t *h, const char *target, bool plain, sb_t *b)
{
	/* A secret never travels in clear: plain HTTP to a bound host goes as the sandbox
	 * wrote it (its placeholder, no value); only intercepted TLS gets the value. An empty
	 * host is bound to nothing. */
	const char *ih = plain ? "" : c->host;
	sb_subst(b, h->start[0], ih);
	ac_px_sb_str(b, " ");
	sb_subst(b, target, ih);
	ac_px_sb_str(b, " ");
	ac_px_sb_str(b, h->start[2]);
	ac_px_sb_str(b, "\r\n");
	if (plain) {
		char auth[300];
		if (c->port == 80)
			snprintf(auth, sizeof(auth), strchr(c->host, ':') ? "[%s]" : "%s", c->host);
		else
			authority(c, auth, sizeof(auth));
		ac_px_sb_str(b, "Host: ");
		ac_px_sb_str(b, auth);
		ac_px_sb_str(b, "\r\n");
	}
	for (size_t i = 0; i < h->nh; i++) {
		const char *n = h->h[i].name;
		if ((plain && (hop_by_hop(h, n) || !strcasecmp(n, "Host"))) ||
		    !strcasecmp(n, "Proxy-Connection") || !strcasecmp(n, "Proxy-Authorization") ||
		    (!strcasecmp(n, "Expect") &&
		     ac_px_hdr_has_token(h, "Expect", "100-continue")) ||
		    header_is_injected(n, ih))
			continue;
		ac_px_sb_str(b, n);
		ac_px_sb_str(b, ": ");
		sb_subst(b, h->h[i].value, ih);
		ac_px_sb_str(b, "\r\n");
	}
	for (size_t i = 0; i < P.nbind; i++) {
		const binding_t *bd = &P.bind[i];
		if (!host_bound(bd, ih))
			continue;
		ac_px_sb_str(b, bd->header);
		ac_px_sb_str(b, ": ");
		ac_px_sb_str(b, bd->prefix);
		ac_px_sb_str(b, bd->value);
		ac_px_sb_str(b, "\r\n");
		bool seen = false;
		for (size_t k = 0; k < c->ninjected; k++)
			seen = seen || c->injected[k] == bd;
		if (!seen && c->ninjected < AC_ARRAY_SIZE(c->injected))
			c->injected[c->ninjected++] = bd;
	}
	if (plain)
		ac_px_sb_str(b, "Connection: close\r\n");
	ac_px_sb_str(b, "\r\n");
}

/* ---- egress ----------------------------------------------------------------------------- */

/* "host:port" / "[v6]:port" (port required unless def > 0) into c->host, c->port. */
static bool parse_authority(conn_t *c, const char *a, size_t n, int def)
{
	char buf[300];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, a, n);
	buf[n] = 0;
	char *host = buf, *port = NULL;
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		*end = 0;
		host = buf + 1;
		port = end[1] ? end + 2 : NULL;
		if (!strchr(host, ':'))
			return false;
	} else {
		port = strrchr(buf, ':');
		if (port)
			*port++ = 0;
	}
	if (port) {
		if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
			return false;
		c->port = atoi(port);
	} else {
		c->port = def;
	}
	snprintf(c->host, sizeof(c->host), "%s", host); /* as given, for the audit */
	char norm[AC_NET_HOST_MAX];
	if (ac_net_host_normalize(host, norm) || c->port < 1 || c->port > 65535)
		return false;
	snprintf(c->host, sizeof(c->host), "%s", norm);
	return true;
}

static void plain_request(conn_t *c, const head_t *h, const char *head, size_t hlen)
{
	const char *t = h->start[1];
	if (!strncasecmp(t, "https://", 8)) {
		fail_status(c, 400, "Bad Request", "bad request: use CONNECT for https");
		return;
	}
	if (strncasecmp(t, "http://", 7)) {
		fail_status(c, 400, "Bad Request", "bad request: not a proxy request");
		return;
	}
	const char *a = t + 7, *path = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(path - a)) || *path == '#' ||
	    !parse_authority(c, a, (size_t)(path - a), 80)) {
		fail_status(c, 400, "Bad Request", "bad request: malformed URL");
		return;
	}
	const binding_t *fb = foreign_placeholder(head, hlen, c->host);
	if (fb) {
		refuse(c, "placeholder of secret %s sent to a host it is not bound to", fb->key);
		return;
	}
	uint64_t blen = 0;
	int kind = ac_px_body_framing(h, false, &blen);
	if (kind < 0) {
		fail_status(c, 400, "Bad Request", "bad request: ambiguous message framing");
		return;
	}
	if (open_upstream(c) < 0)
		return;
	char target[LINE_MAX_ + 2];
	snprintf(target, sizeof(target), "%s%s", *path == '?' ? "/" : "", *path ? path : "/");
	sb_t b = {0};
	build_head(c, h, target, true, &b);
	if (b.oom) {
		ac_px_sb_free(&b);
		fail_status(c, 500, "Internal Server Error", "out of memory");
		return;
	}
	if (ac_px_hdr_has_token(h, "Expect", "100-continue") && kind != BODY_NONE)
		ac_px_stream_write(&c->cl, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	int rc = ac_px_stream_write(&c->up, b.p, b.len);
	ac_px_sb_free(&b);
	if (rc < 0 || ac_px_forward_body(&c->cl, &c->up, kind, blen, c->buf) < 0)
		return;
	/* "Connection: close": the response ends with the upstream connection. The client
	 * is watched only for hanging up. */
	set_timeout(c->cl.fd, 0);
	for (;;) {
		struct pollfd p[2] = {{c->up.fd, POLLIN, 0}, {c->cl.fd, POLLRDHUP, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents)
			return;
		ssize_t r = ac_px_stream_read(&c->up, c->buf, RELAY_BUF);
		if (r <= 0 || ac_px_stream_write(&c->cl, c->buf, (size_t)r) < 0)
			return;
	}
}

/* Requests of an intercepted connection, one at a time: each request, then its response. */
static void intercepted(conn_t *c)
{
	for (;;) {
		char *head = NULL;
		size_t hlen = 0;
		set_timeout(c->cl.fd, HEAD_TIMEOUT_S);
		int r = ac_px_stream_head(&c->cl, &head, &hlen);
		if (r == HEAD_BIG)
			fail_status(c, 431, "Request Header Fields Too Large",
				    "request head too large");
		if (r != HEAD_OK)
			return;
		head_t h;
		const char *bad = ac_px_head_parse(head, hlen, false, &h);
		const binding_t *fb = bad ? NULL : foreign_placeholder(head, hlen, c->host);
		uint64_t blen = 0;
		int kind = bad ? -1 : ac_px_body_framing(&h, false, &blen);
		sb_t b = {0};
		if (bad) {
			fail_status(c, 400, "Bad Request", "bad request: %s", bad);
		} else if (strcmp(h.start[0], "CONNECT") == 0 ||
			   (h.start[1][0] != '/' && strcmp(h.start[1], "*"))) {
			fail_status(c, 400, "Bad Request", "bad request: expected origin-form");
		} else if (fb) {
			refuse(c, "placeholder of secret %s sent to a host it is not bound to",
			       fb->key);
		} else if (kind < 0) {
			fail_status(c, 400, "Bad Request",
				    "bad request: ambiguous message framing");
		} else {
			build_head(c, &h, h.start[1], false, &b);
		}
		explicit_bzero(head, hlen);
		free(head);
		if (!b.p || b.oom) {
			ac_px_sb_free(&b);
			ac_px_head_clear(&h);
			return;
		}
		bool is_head = !strcmp(h.start[0], "HEAD");
		bool close_after = ac_px_hdr_has_token(&h, "Connection", "close") ||
				   (!strcmp(h.start[2], "HTTP/1.0") &&
				    !ac_px_hdr_has_token(&h, "Connection", "keep-alive"));
		if (ac_px_hdr_has_token(&h, "Expect", "100-continue") && kind != BODY_NONE)
			ac_px_stream_write(&c->cl, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		ac_px_head_clear(&h);
		int rc = ac_px_stream_write(&c->up, b.p, b.len);
		ac_px_sb_free(&b);
		if (rc < 0 || ac_px_forward_body(&c->cl, &c->up, kind, blen, c->buf) < 0)
			return;
		int status = 0;
		for (;;) { /* the response, after any 1xx */
			if (ac_px_stream_head(&c->up, &head, &hlen) != HEAD_OK)
				return;
			bad = ac_px_head_parse(head, hlen, true, &h);
			rc = bad ? -1 : ac_px_stream_write(&c->cl, head, hlen);
			free(head);
			status = bad ? 0 : atoi(h.start[1]);
			kind = bad ? -1 : ac_px_body_framing(&h, true, &blen);
			if (!bad && (ac_px_hdr_has_token(&h, "Connection", "close") ||
				     (!strcmp(h.start[0], "HTTP/1.0") &&
				      !ac_px_hdr_has_token(&h, "Connection", "keep-alive"))))
				close_after = true;
			ac_px_head_clear(&h);
			if (rc < 0 || kind < 0)
				return;
			if (status == 101) {
				set_timeout(c->cl.fd, 0);
				ac_px_relay(&c->cl, &c->up, c->buf);
				return;
			}
			if (status >= 200)
				break;
		}
		if (is_head || status == 204 || status == 304)
			kind = BODY_NONE;
		if (ac_px_forward_body(&c->up, &c->cl, kind, blen, c->buf) < 0 ||
		    kind == BODY_CLOSE || close_after)
			return;
	}
}

static void connect_request(conn_t *c, const char *head, size_t hlen, const head_t *h)
{
	if (!parse_authority(c, h->start[1], strlen(h->start[1]), 0)) {
		fail_status(c, 400, "Bad Request", "bad request: CONNECT needs host:port");
		return;
	}
	const binding_t *fb = foreign_placeholder(head, hlen, c->host);
	if (fb) {
		refuse(c, "placeholder of secret %s sent to a host it is not bound to", fb->key);
		return;
	}
	if (open_upstream(c) < 0)
		return;
	bool bound = false;
	for (size_t i = 0; i < P.nbind; i++)
		bound = bound || host_bound(&P.bind[i], c->host);
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	if (ac_px_stream_write(&c->cl, ok, sizeof(ok) - 1) < 0)
		return;
	if (!bound || !P.ca) {
		set_timeout(c->cl.fd, 0);
		ac_px_relay(&c->cl, &c->up, c->buf);
		return;
	}
	c->intercepted = true;
	if (c->cl.len > c->cl.off) {
		set_reason(c, "client sent data before the tunnel was established");
		c->refused = true;
		return;
	}
	ac_error_t *e = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(P.ca, c->host, &e);
	set_timeout(c->cl.fd, HEAD_TIMEOUT_S);
	c->cl.ssl = ctx ? ac_tls_accept(ctx, c->cl.fd, &e) : NULL;
	if (ctx)
		ac_tls_ctx_free(ctx);
	if (!c->cl.ssl) {
		set_reason(c, "client TLS: %s", e ? e->msg : "handshake failed");
		c->refused = true;
		ac_error_free(e);
		return;
	}
	c->up.ssl = ac_tls_connect(c->up.fd, c->host, &e);
	if (!c->up.ssl) {
		set_reason(c, "upstream TLS: %s", e ? e->msg : "handshake failed");
		c->refused = true;
		ac_error_free(e);
		return;
	}
	intercepted(c);
}

static void serve_egress(conn_t *c)
{
	snprintf(c->method, sizeof(c->method), "?");
	set_timeout(c->cl.fd, HEAD_TIMEOUT_S);
	char *head = NULL;
	size_t hlen = 0;
	int r = ac_px_stream_head(&c->cl, &head, &hlen);
	if (r == HEAD_EOF)
		return; /* nothing asked: nothing to audit */
	if (r == HEAD_BIG)
		fail_status(c, 431, "Request Header Fields Too Large", "request head too large");
	else if (r != HEAD_OK)
		fail_status(c, 400, "Bad Request", "bad request: incomplete request head");
	if (r != HEAD_OK) {
		audit(c);
		return;
	}
	head_t h;
	const char *bad = ac_px_head_parse(head, hlen, false, &h);
	if (bad) {
		fail_status(c, 400, "Bad Request", "bad request: %s", bad);
	} else {
		snprintf(c->method, sizeof(c->method), "%s", h.start[0]);
		if (!strcmp(h.start[0], "CONNECT"))
			connect_request(c, head, hlen, &h);
		else
			plain_request(c, &h, head, hlen);
	}
	ac_px_head_clear(&h);
	explicit_bzero(head, hlen);
	free(head);
	audit(c);
}

/* A socket made in the sandbox's network namespace; the thread is back in the proxy's
 * own before it returns (or the process is gone: it must never work from the sandbox's). */
static int sandbox_socket(void)
{
	return ac_net_sandbox_socket(P.sandbox_ns, P.own_ns);
}

static void serve_publish(conn_t *c)
{
	const publish_t *pb = &P.pub[c->pub];
	snprintf(c->method, sizeof(c->method), "publish");
	snprintf(c->host, sizeof(c->host), "%s", pb->address);
	c->port = pb->host_port;
	snprintf(c->address, sizeof(c->address), "127.0.0.1:%d", pb->port);
	int fd = sandbox_socket();
	if (fd < 0) {
		set_reason(c, "cannot make a socket in the sandbox: %s", strerror(errno));
		c->refused = true;
		audit(c);
		return;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)pb->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int e = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = {fd, POLLOUT, 0};
			socklen_t el = sizeof(e);
			if (poll(&p, 1, CONNECT_TIMEOUT_S * 1000) <= 0)
				e = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
		}
	}
	if (e) {
		close(fd);
		set_reason(c, "cannot connect in the sandbox: %s", strerror(e));
		c->refused = true;
		audit(c);
		return;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	c->up.fd = fd;
	/* bytes_out: toward the sandbox, bytes_in: from it (the up stream's counters). */
	ac_px_relay(&c->cl, &c->up, c->buf);
	audit(c);
}

static void *conn_thread(void *arg)
{
	conn_t *c = arg;
	if (c->pub >= 0)
		serve_publish(c);
	else
		serve_egress(c);
	conn_free(c);
	atomic_fetch_sub(&P.live, 1);
	return NULL;
}

static conn_t *conn_new(int fd, int pub)
{
	conn_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pub = pub;
	c->cl.fd = fd;
	c->up.fd = -1;
	c->cl.buf = malloc(HEAD_MAX);
	c->up.buf = malloc(HEAD_MAX);
	c->buf = malloc(RELAY_BUF);
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	if (!c->cl.buf || !c->up.buf || !c->buf) {
		c->cl.fd = -1;
		conn_free(c);
		return NULL;
	}
	return c;
}

static void accept_one(int lfd, int pub)
{
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timespec ts = {0, 100 * 1000 * 1000}; /* let connections end */
			nanosleep(&ts, NULL);
		}
		return;
	}
	conn_t *c = conn_new(fd, pub);
	if (!c) {
		close(fd);
		return;
	}
	if (pub >= 0)
		format_addr((struct sockaddr *)&peer, c->peer, sizeof(c->peer));
	if (atomic_fetch_add(&P.live, 1) >= CONN_MAX) {
		atomic_fetch_sub(&P.live, 1);
		snprintf(c->method, sizeof(c->method), pub >= 0 ? "publish" : "?");
		set_reason(c, "too many connections");
		audit(c);
		c->refused = false; /* no lingering close in the accepting thread */
		conn_free(c);
		return;
	}
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &at, conn_thread, c) != 0) {
		atomic_fetch_sub(&P.live, 1);
		conn_free(c);
	}
	pthread_attr_destroy(&at);
}

/* ---- start -------------------------------------------------------------------------------- */

static void ready_fail(ac_error_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void ready_fail(ac_error_kind_t kind, const char *fmt, ...)
{
	char msg[1024], line[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char esc[1024];
	ac_escape_controls(msg, esc, sizeof(esc));
	int n = snprintf(line, sizeof(line), "E%d %s\n", (int)kind, esc);
	if (n > 0)
		ac_write_all(FD_READY, line,
			     (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	_exit(1);
}

static void ready_fail_err(ac_error_t *e, const char *what)
{
	if (e)
		ready_fail(e->kind, "%s", e->msg);
	ready_fail(AC_ERR_INTERNAL, "%s", what);
}

static char *dup_field(const json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));
	return strdup(s ? s : def);
}

static void load_secrets(const json_t *arr)
{
	size_t n = json_array_size(arr);
	P.bind = calloc(n ? n : 1, sizeof(binding_t));
	if (!P.bind)
		ready_fail(AC_ERR_INTERNAL, "out of memory");
	size_t i;
	json_t *s;
	json_array_foreach(arr, i, s)
	{
		binding_t *b = &P.bind[P.nbind];
		const char *ph = json_string_value(json_object_get(s, "placeholder"));
		const char *val = json_string_value(json_object_get(s, "value"));
		const char *host = json_string_value(json_object_get(s, "host"));
		const char *key = json_string_value(json_object_get(s, "key"));
		if (!ph || strlen(ph) < 16 || !val || !*val || !host || !key)
			ready_fail(AC_ERR_INVALID,
				   "malformed secret binding in the proxy's orders");
		*b = (binding_t){strdup(key),
				 strdup(host),
				 dup_field(s, "header", "Authorization"),
				 dup_field(s, "prefix", ""),
				 strdup(ph),
				 strdup(val)};
		if (!b->key || !b->header || !b->prefix || !b->placeholder || !b->value)
			ready_fail(AC_ERR_INTERNAL, "out of memory");
		if (strpbrk(b->value, "\r\n") || strpbrk(b->prefix, "\r\n") ||
		    !ac_px_is_token(b->header))
			ready_fail(AC_ERR_INVALID, "secret %s cannot go into a header", b->key);
		char norm[AC_NET_HOST_MAX];
		if (!ac_net_host_normalize(host, norm)) {
			free(b->host);
			b->host = strdup(norm);
		}
		/* The orders' copy of the value goes away with them: not a byte left behind. */
		explicit_bzero((char *)val, strlen(val));
		if (!b->host)
			ready_fail(AC_ERR_INTERNAL, "out of memory");
		P.nbind++;
	}
}

static void wipe_secrets(void)
{
	for (size_t i = 0; i < P.nbind; i++)
		if (P.bind[i].value)
			explicit_bzero(P.bind[i].value, strlen(P.bind[i].value));
}

static void listen_publish(const json_t *arr)
{
	P.npub = json_array_size(arr);
	P.pub = calloc(P.npub ? P.npub : 1, sizeof(publish_t));
	if (!P.pub)
		ready_fail(AC_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < P.npub; i++) {
		const json_t *e = json_array_get(arr, i);
		publish_t *pb = &P.pub[i];
		const char *addr = json_string_value(json_object_get(e, "address"));
		pb->host_port = (int)json_integer_value(json_object_get(e, "host_port"));
		pb->port = (int)json_integer_value(json_object_get(e, "port"));
		pb->fd = -1;
		char a[INET6_ADDRSTRLEN + 2];
		snprintf(a, sizeof(a), "%s", addr ? addr : "127.0.0.1");
		if (a[0] == '[' && a[strlen(a) - 1] == ']') {
			a[strlen(a) - 1] = 0;
			memmove(a, a + 1, strlen(a));
		}
		snprintf(pb->address, sizeof(pb->address), "%s", a);
		struct sockaddr_storage ss = {0};
		socklen_t sl;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)pb->host_port);
			sl = sizeof(*s4);
		} else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)pb->host_port);
			sl = sizeof(*s6);
		} else {
			ready_fail(AC_ERR_INVALID, "invalid publish address '%s'", a);
		}
		char shown[INET6_ADDRSTRLEN + 8];
		format_addr((struct sockaddr *)&ss, shown, sizeof(shown));
		if (pb->host_port < 1 || pb->host_port > 65535 || pb->port < 1 || pb->port > 65535)
			ready_fail(AC_ERR_INVALID, "invalid published port %s -> %d", shown,
				   pb->port);
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int one = 1;
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ss.ss_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		}
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
			int en = errno;
			if (en == EADDRINUSE)
				ready_fail(AC_ERR_EXISTS, "port %s is in use", shown);
			if (en == EACCES || en == EPERM)
				ready_fail(AC_ERR_PERMISSION, "cannot listen on %s: %s", shown,
					   strerror(en));
			if (en == EADDRNOTAVAIL)
				ready_fail(AC_ERR_INVALID, "cannot listen on %s: %s", shown,
					   strerror(en));
			ready_fail(AC_ERR_BACKEND, "cannot listen on %s: %s", shown, strerror(en));
		}
		pb->fd = fd;
	}
}

static json_t *read_orders(void)
{
	struct stat st;
	if (fstat(FD_ORDERS, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > ORDERS_MAX)
		ready_fail(AC_ERR_INTERNAL, "the network proxy got no orders");
	size_t n = (size_t)st.st_size;
	char *text = malloc(n);
	if (!text || pread(FD_ORDERS, text, n, 0) != (ssize_t)n)
		ready_fail(AC_ERR_INTERNAL, "cannot read the network proxy's orders");
	close(FD_ORDERS);
	json_error_t je;
	json_t *o = json_loadb(text, n, 0, &je);
	explicit_bzero(text, n);
	free(text);
	if (!json_is_object(o))
		ready_fail(AC_ERR_INTERNAL, "malformed network proxy orders: %s", je.text);
	return o;
}

static void write_pidfile(const char *path)
{
	pid_t me = getpid();
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"starttime\":%llu}\n", (int)me,
			 ac_proc_starttime(me));
	ac_error_t *e = NULL;
	if (ac_write_file_atomic_at(AT_FDCWD, path, buf, (size_t)n, 0644, &e) < 0)
		ready_fail_err(e, "cannot write the proxy's pid file");
}

int ac_net_proxy_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	prctl(PR_SET_NAME, "agentcell-net", 0, 0, 0);
	ac_proctitle_set("agentcell-net");
	signal(SIGPIPE, SIG_IGN);
	close_range(FD_READY + 1, ~0U, 0);

	json_t *orders = read_orders();
	const char *sandbox = json_string_value(json_object_get(orders, "sandbox"));
	const char *home = json_string_value(json_object_get(orders, "home"));
	if (!sandbox || !home)
		ready_fail(AC_ERR_INTERNAL, "the network proxy's orders lack sandbox or home");
	P.sandbox = strdup(sandbox);
	P.home = strdup(home);
	ac_error_t *e = NULL;
	P.policy = ac_net_policy_new(json_object_get(orders, "policy"), &e);
	if (!P.policy)
		ready_fail_err(e, "invalid network policy");
	if (ac_net_policy_add_local(P.policy) < 0)
		ready_fail(AC_ERR_INTERNAL, "cannot list the host's addresses: %s",
			   strerror(errno));
	load_secrets(json_object_get(orders, "secrets"));
	const json_t *ca = json_object_get(orders, "ca");
	if (json_is_object(ca)) {
		const char *cert = json_string_value(json_object_get(ca, "cert"));
		const char *key = json_string_value(json_object_get(ca, "key"));
		P.ca = cert && key ? ac_tls_ca_load(cert, key, &e) : NULL;
		if (!P.ca)
			ready_fail_err(e, "cannot load the interception CA");
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/audit.jsonl", P.home);
	P.audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (P.audit_fd < 0)
		ready_fail(AC_ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	P.sandbox_ns = ioctl(FD_LISTEN, SIOCGSKNS);
	P.own_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (P.sandbox_ns < 0 || P.own_ns < 0)
		ready_fail(AC_ERR_INTERNAL, "cannot find the network namespaces: %s",
			   strerror(errno));
	fcntl(P.sandbox_ns, F_SETFD, FD_CLOEXEC);
	if (json_is_true(json_object_get(orders, "proxy"))) {
		P.egress_fd = FD_LISTEN;
		fcntl(FD_LISTEN, F_SETFL, fcntl(FD_LISTEN, F_GETFL) | O_NONBLOCK);
	}
	listen_publish(json_object_get(orders, "publish"));
	const char *pf = json_string_value(json_object_get(orders, "pidfile"));
	char *pidfile = pf ? strdup(pf) : NULL;
	json_decref(orders);

	/* Ready: the caller reaps this process at once; the proxy goes on in its child,
	 * reparented, so a long-lived caller (serve) never keeps a zombie of it. */
	pid_t child = fork();
	if (child < 0)
		ready_fail(AC_ERR_INTERNAL, "fork: %s", strerror(errno));
	if (child > 0)
		_exit(0);
	if (pidfile)
		write_pidfile(pidfile);
	free(pidfile);
	/* The upstream verify store is read now, while every file is still readable. */
	if (P.ca && !ac_tls_client_ctx(&e))
		ready_fail_err(e, "cannot set up upstream TLS");
	if (ac_net_confine(P.sandbox_ns, P.own_ns, P.npub > 0, &e) < 0)
		ready_fail_err(e, "cannot confine the network proxy");
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "ok %d\n", (int)getpid());
	ac_write_all(FD_READY, ok, (size_t)n);
	close(FD_READY);

	size_t nfd = 1 + (P.egress_fd >= 0) + P.npub;
	struct pollfd *pfd = calloc(nfd, sizeof(*pfd));
	int *which = calloc(nfd, sizeof(int));
	if (!pfd || !which)
		_exit(1);
	size_t k = 0;
	pfd[k++] = (struct pollfd){FD_LIFE, POLLIN, 0};
	if (P.egress_fd >= 0) {
		which[k] = -1;
		pfd[k++] = (struct pollfd){P.egress_fd, POLLIN, 0};
	}
	for (size_t i = 0; i < P.npub; i++) {
		which[k] = (int)i;
		pfd[k++] = (struct pollfd){P.pub[i].fd, POLLIN, 0};
	}
	for (;;) {
		if (poll(pfd, nfd, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		for (size_t i = 1; i < nfd; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(pfd[i].fd, which[i]);
	}
	wipe_secrets();
	_exit(0);
}
