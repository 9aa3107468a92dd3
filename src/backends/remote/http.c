/* The HTTPS transport of remote engines: libcurl (loaded with dlopen, see
 * src/base/curl.h), one easy handle per ac_remote_t so that consecutive requests reuse the
 * connection (keep-alive) and the TLS session. tls_server_name: see ac_remote_endpoint_t;
 * the Host header keeps the real authority. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/remote/conn.h"
#include "backends/remote/remote.h"
#include "base/util.h"

/* An API server's list of every pod of a big namespace stays far below this. */
#define AC_REMOTE_BODY_MAX (64u * 1024 * 1024)

struct ac_remote {
	ac_remote_conf_t conf; /* a private copy: the caller's may go away */
	CURL *curl;
	ac_remote_endpoint_t ep;
	char *base;	  /* the URL prefix requests are appended to (host maybe rewritten) */
	char *host_hdr;	  /* "Host: real-authority" when the URL carries tls_server_name */
	char *last_token; /* the last token read from token_file (kept if a re-read fails) */
	char errbuf[CURL_ERROR_SIZE];
};

void ac_remote_conf_free(ac_remote_conf_t *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->name);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->cert_data);
	free(c->key_file);
	if (c->key_data) {
		explicit_bzero(c->key_data, strlen(c->key_data));
		free(c->key_data);
	}
	free(c->tls_server_name);
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->token_file);
	free(c->username);
	if (c->password) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	ac_strv_free(c->headers);
	memset(c, 0, sizeof(*c));
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int conf_copy(ac_remote_conf_t *d, const ac_remote_conf_t *s)
{
	memset(d, 0, sizeof(*d));
	d->insecure = s->insecure;
	d->timeout_ms = s->timeout_ms;
	if (dup_str(&d->server, s->server) < 0 || dup_str(&d->name, s->name) < 0 ||
	    dup_str(&d->ca_file, s->ca_file) < 0 || dup_str(&d->ca_data, s->ca_data) < 0 ||
	    dup_str(&d->cert_file, s->cert_file) < 0 || dup_str(&d->cert_data, s->cert_data) < 0 ||
	    dup_str(&d->key_file, s->key_file) < 0 || dup_str(&d->key_data, s->key_data) < 0 ||
	    dup_str(&d->tls_server_name, s->tls_server_name) < 0 ||
	    dup_str(&d->token, s->token) < 0 || dup_str(&d->token_file, s->token_file) < 0 ||
	    dup_str(&d->username, s->username) < 0 || dup_str(&d->password, s->password) < 0)
		return -1;
	if (s->headers) {
		size_t n = 0;
		while (s->headers[n])
			n++;
		d->headers = calloc(n + 1, sizeof(char *));
		if (!d->headers)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (dup_str(&d->headers[i], s->headers[i]) < 0)
				return -1;
	}
	return 0;
}

/* The URL prefix: the server's URL as written, or renamed to tls_server_name. */
static int setup_base(ac_remote_t *r)
{
	const ac_remote_endpoint_t *e = &r->ep;
	if (!e->connect_list) {
		r->base = strdup(r->conf.server);
		if (!r->base)
			return -1;
		/* No trailing slash: paths start with one. */
		size_t bl = strlen(r->base);
		while (bl && r->base[bl - 1] == '/')
			r->base[--bl] = 0;
		return 0;
	}
	if (asprintf(&r->base, "%s://%s:%s%s", e->scheme, e->name, e->port, e->prefix) < 0) {
		r->base = NULL;
		return -1;
	}
	if (asprintf(&r->host_hdr, "Host: %s", e->authority) < 0) {
		r->host_hdr = NULL;
		return -1;
	}
	return 0;
}

int ac_remote_open(const ac_remote_conf_t *conf, ac_remote_t **out, ac_error_t **err)
{
	*out = NULL;
	const char *who = conf->name ? conf->name : conf->server ? conf->server : "remote";
	if (ac_remote_conf_check(conf, who, err) < 0 || ac_curl_load(err) < 0)
		return -1;
	ac_remote_t *r = calloc(1, sizeof(*r));
	if (!r)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (conf_copy(&r->conf, conf) < 0) {
		ac_remote_close(r);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	if (ac_remote_endpoint_init(&r->ep, conf, who, err) < 0) {
		ac_remote_close(r);
		return -1;
	}
	if (setup_base(r) < 0) {
		ac_remote_close(r);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	r->curl = ac_curl.curl_easy_init();
	if (!r->curl) {
		ac_remote_close(r);
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_easy_init failed");
	}
	*out = r;
	return 0;
}

void ac_remote_close(ac_remote_t *r)
{
	if (!r)
		return;
	if (r->curl)
		ac_curl.curl_easy_cleanup(r->curl);
	ac_remote_conf_free(&r->conf);
	ac_remote_endpoint_free(&r->ep);
	free(r->base);
	free(r->host_hdr);
	ac_remote_free_secret(r->last_token);
	free(r);
}

void ac_remote_resp_free(ac_remote_resp_t *r)
{
	if (!r)
		return;
	json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

typedef struct sink {
	char *buf;
	size_t len, cap;
	bool over;
	ac_remote_resp_t *resp;
	bool json_type;
} sink_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	sink_t *s = arg;
	size_t len = size * n;
	if (len > AC_REMOTE_BODY_MAX - s->len) {
		s->over = true;
		return 0;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 8192;
		while (cap < s->len + len + 1)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (!nb)
			return 0;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->buf[s->len] = 0;
	return len;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3); -1 when neither. */
static long parse_retry_after(const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	if (isdigit((unsigned char)*v)) {
		char *end;
		errno = 0;
		long long s = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || *end)
			return errno == ERANGE ? 86400L * 365 : -1;
		return s > 86400LL * 365 ? 86400L * 365 : (long)s;
	}
	struct tm tm = {0};
	const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!e || *e)
		return -1;
	time_t when = timegm(&tm);
	time_t now = time(NULL);
	return when > now ? (long)(when - now) : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	sink_t *s = arg;
	size_t len = size * n;
	/* A new status line (an interim 1xx answer came first): start over. */
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		s->resp->retry_after = -1;
		s->resp->index = 0;
		s->json_type = false;
		return len;
	}
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return len;
	size_t nl = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vl = len - nl - 1;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	char val[256];
	if (vl >= sizeof(val))
		return len;
	memcpy(val, v, vl);
	val[vl] = 0;
	if (nl == 11 && !strncasecmp(p, "retry-after", 11))
		s->resp->retry_after = parse_retry_after(val);
	else if (nl == 12 && !strncasecmp(p, "content-type", 12))
		s->json_type = strcasestr(val, "json") != NULL;
	else if (nl == 13 && !strncasecmp(p, "x-nomad-index", 13)) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(val + strspn(val, " "), &end, 10);
		s->resp->index = errno || *end || end == val ? 0 : x;
	}
	return len;
}

/* One line naming the remote and why no HTTP answer came. */
static int no_answer(ac_remote_t *r, const char *method, const char *path, CURLcode cc,
		     long timeout_ms, ac_error_t **err)
{
	const ac_remote_conf_t *c = &r->conf;
	const char *who = c->name ? c->name : "remote server";
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s at %s: %s %s: timed out after %ld ms (%s)", who, c->server,
				    method, path, timeout_ms, ac_remote_curl_detail(cc, r->errbuf));
	return ac_remote_curl_fail(who, c->server, cc, r->errbuf, "request failed", err);
}

/* The header lines of a request (NULL when out of memory); *auth receives the
 * Authorization line (to wipe and free) when there is a token. */
static struct curl_slist *request_headers(ac_remote_t *r, const char *accept, const char *ctype,
					  const char *tok, char **auth)
{
	const ac_remote_conf_t *c = &r->conf;
	struct curl_slist *hdrs = NULL, *t;
	*auth = NULL;
#define ADD_HDR(s)                                                                                 \
	do {                                                                                       \
		t = ac_curl.curl_slist_append(hdrs, (s));                                          \
		if (!t)                                                                            \
			goto oom;                                                                  \
		hdrs = t;                                                                          \
	} while (0)
	ADD_HDR(accept);
	ADD_HDR("Expect:");
	if (ctype)
		ADD_HDR(ctype);
	if (tok) {
		if (ac_remote_auth_header(c, tok, false, auth, NULL) < 0)
			goto oom;
		ADD_HDR(*auth);
	}
	if (r->host_hdr)
		ADD_HDR(r->host_hdr);
	for (char **x = c->headers; x && *x; x++)
		ADD_HDR(*x);
#undef ADD_HDR
	return hdrs;
oom:
	ac_curl.curl_slist_free_all(hdrs);
	return NULL;
}

/* After a request: h forgets the request's headers, connect-to list, sinks and credentials
 * (they live in the caller's frame); the headers are freed, the authorization wiped. */
static void release_request(CURL *h, struct curl_slist *hdrs, char *auth)
{
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
	ac_curl.curl_slist_free_all(hdrs);
	if (auth)
		explicit_bzero(auth, strlen(auth));
}

int ac_remote_request(ac_remote_t *r, const char *method, const char *path, const json_t *body,
		      const char *content_type, ac_remote_resp_t *resp, ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	const ac_remote_conf_t *c = &r->conf;
	const char *who = c->name ? c->name : c->server;
	if (!path || path[0] != '/' || !ac_remote_header_safe(path) || strchr(path, ' '))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: bad request path '%s'", who,
				    path ? path : "");
	if (!method || !*method || strpbrk(method, " \r\n"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: bad method", who);
	if (content_type && !ac_remote_header_safe(content_type))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: bad content type", who);

	const char *tok = NULL;
	if (ac_remote_token(c, who, &r->last_token, &tok, err) < 0)
		return -1;

	CURL *h = r->curl;
	/* Settings only, never the connection: curl_easy_reset keeps the connection cache
	 * and the TLS session cache of the handle. */
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", r->base, path) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	_cleanup_free_ char *json = NULL;
	if (body) {
		json = json_dumps(body, JSON_COMPACT);
		if (!json)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
					    "cannot encode a request");
	}

	char ctype[300] = "";
	if (body)
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 content_type ? content_type : "application/json");
	_cleanup_free_ char *auth = NULL;
	struct curl_slist *hdrs =
	    request_headers(r, "Accept: application/json", body ? ctype : NULL, tok, &auth);
	if (!hdrs)
		goto oom;

	/* Proxies: an https:// server is tunnelled, the proxy sees no token. */
	long timeout = c->timeout_ms > 0 ? c->timeout_ms : AC_REMOTE_DEFAULT_TIMEOUT_MS;
	ac_remote_set_connection(h, c, url, &r->ep, timeout, r->errbuf);
	ac_curl.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	ac_curl.curl_easy_setopt(h, CURLOPT_USERAGENT, "agentcell");
	ac_curl.curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	if (!tok && c->username) {
		ac_curl.curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		ac_curl.curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
		ac_curl.curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
	} else {
		ac_curl.curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
		ac_curl.curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
	}

	/* Method and body. */
	ac_curl.curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (json) {
		ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
		ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	} else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (!strcmp(method, "HEAD")) {
		ac_curl.curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		ac_curl.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	} else {
		ac_curl.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	sink_t s = {.resp = resp};
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
	CURLcode cc = ac_curl.curl_easy_perform(h);

	/* Nothing the handle keeps may point at this frame's memory. */
	ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	release_request(h, hdrs, auth);

	if (s.over) {
		free(s.buf);
		resp->retry_after = -1;
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the answer to %s %s is larger than %u MiB", who, method,
				    path, AC_REMOTE_BODY_MAX >> 20);
	}
	if (cc != CURLE_OK) {
		free(s.buf);
		resp->retry_after = -1;
		if (cc == CURLE_WRITE_ERROR)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "%s: out of memory", who);
		return no_answer(r, method, path, cc, timeout, err);
	}
	ac_curl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!s.buf && !(s.buf = strdup("")))
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	resp->body = s.buf;
	resp->len = s.len;
	const char *b = s.buf;
	while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
		b++;
	if (s.json_type || *b == '{' || *b == '[')
		resp->json = json_loadb(s.buf, s.len, JSON_DECODE_ANY, NULL);
	return 0;
oom:
	ac_curl.curl_slist_free_all(hdrs);
	return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

bool ac_remote_query_escape(const char *s, char *out, size_t cap, size_t *used)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = *used;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
			     *c == '~';
		if (o + (plain ? 1 : 3) >= cap)
			return false;
		if (plain) {
			out[o++] = (char)*c;
		} else {
			out[o++] = '%';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		}
	}
	out[o] = 0;
	*used = o;
	return true;
}

/* ---- streamed answers (ac_remote_stream) ---- */

#define STREAM_ERR_BODY_MAX (64u * 1024) /* a non-2xx answer's body, kept for the message */
#define STREAM_CHECK_MS	    100		 /* how often stop() is asked while nothing happens */

typedef struct stream_sink {
	sink_t s; /* headers, and the body of a non-2xx answer */
	const ac_remote_stream_t *q;
	CURL *h;
	int ok;	      /* -1 not known yet, 0 a non-2xx answer, 1 a 2xx one */
	bool stopped; /* q->on_data asked to stop */
} stream_sink_t;

static size_t on_stream_data(char *p, size_t size, size_t n, void *arg)
{
	stream_sink_t *ss = arg;
	size_t len = size * n;
	if (ss->ok < 0) {
		long st = 0;
		ac_curl.curl_easy_getinfo(ss->h, CURLINFO_RESPONSE_CODE, &st);
		ss->ok = st >= 200 && st < 300;
	}
	if (!ss->ok) {
		size_t room = STREAM_ERR_BODY_MAX - ss->s.len;
		if (len && room && on_data(p, 1, len < room ? len : room, &ss->s) == 0)
			return 0; /* out of memory */
		return len;
	}
	if (ss->q->on_data && ss->q->on_data(ss->q->arg, p, len)) {
		ss->stopped = true;
		return 0; /* CURLE_WRITE_ERROR ends the transfer */
	}
	return len;
}

/* Whether the caller wants the stream to end now: a wake descriptor readable or hung up,
 * or its stop(). */
static bool stream_woken(const ac_remote_stream_t *q)
{
	struct pollfd p[8];
	nfds_t n = 0;
	for (size_t i = 0; i < q->nwake && n < AC_ARRAY_SIZE(p); i++)
		if (q->wake[i] >= 0)
			p[n++] = (struct pollfd){.fd = q->wake[i], .events = POLLIN};
	if (n && poll(p, n, 0) > 0)
		for (nfds_t i = 0; i < n; i++)
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				return true;
	return q->stop && q->stop(q->arg);
}

int ac_remote_stream(ac_remote_t *r, const ac_remote_stream_t *q, ac_remote_resp_t *resp,
		     ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	const ac_remote_conf_t *c = &r->conf;
	const char *who = c->name ? c->name : c->server;
	const char *path = q->path;
	if (!path || path[0] != '/' || !ac_remote_header_safe(path) || strchr(path, ' '))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: bad request path '%s'", who,
				    path ? path : "");
	if (q->nwake > 8)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: more than 8 wake descriptors",
				    who);
	const char *tok = NULL;
	if (ac_remote_token(c, who, &r->last_token, &tok, err) < 0)
		return -1;
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", r->base, path) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	_cleanup_free_ char *auth = NULL;
	struct curl_slist *hdrs = request_headers(r, "Accept: */*", NULL, tok, &auth);
	if (!hdrs)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	CURLM *m = ac_curl.curl_multi_init();
	if (!m) {
		ac_curl.curl_slist_free_all(hdrs);
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_multi_init failed");
	}

	CURL *h = r->curl;
	long timeout = c->timeout_ms > 0 ? c->timeout_ms : AC_REMOTE_DEFAULT_TIMEOUT_MS;
	ac_remote_set_connection(h, c, url, &r->ep, timeout, r->errbuf); /* connect timeout */
	ac_curl.curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);		 /* none overall */
	ac_curl.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	ac_curl.curl_easy_setopt(h, CURLOPT_USERAGENT, "agentcell");
	if (!tok && c->username) {
		ac_curl.curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		ac_curl.curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
		ac_curl.curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
	} else {
		ac_curl.curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
		ac_curl.curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
	}
	ac_curl.curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
	ac_curl.curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	stream_sink_t ss = {.s = {.resp = resp}, .q = q, .h = h, .ok = -1};
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_data);
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEDATA, &ss);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERDATA, &ss.s);

	/* The multi interface, so that the wait also watches the caller's descriptors. */
	CURLcode cc = CURLE_OK;
	bool woke = false, failed = false;
	if (ac_curl.curl_multi_add_handle(m, h) != CURLM_OK) {
		failed = true;
	} else {
		struct curl_waitfd w[8];
		unsigned nw = 0;
		for (size_t i = 0; i < q->nwake; i++)
			if (q->wake[i] >= 0)
				w[nw++] = (struct curl_waitfd){.fd = q->wake[i],
							       .events = CURL_WAIT_POLLIN};
		for (;;) {
			int running = 0;
			if (ac_curl.curl_multi_perform(m, &running) != CURLM_OK) {
				failed = true;
				break;
			}
			if (!running)
				break;
			if (stream_woken(q)) {
				woke = true;
				break;
			}
			if (ac_curl.curl_multi_poll(m, nw ? w : NULL, nw, STREAM_CHECK_MS, NULL) !=
			    CURLM_OK) {
				failed = true;
				break;
			}
		}
		int left;
		CURLMsg *msg;
		while ((msg = ac_curl.curl_multi_info_read(m, &left)))
			if (msg->msg == CURLMSG_DONE)
				cc = msg->data.result;
		ac_curl.curl_multi_remove_handle(m, h);
	}
	/* Closes the connection with the multi handle: a stream stopped halfway cannot be
	 * reused, and the next request of r opens its own. */
	ac_curl.curl_multi_cleanup(m);
	release_request(h, hdrs, auth);
	ac_curl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);

	if (woke || ss.stopped) {
		free(ss.s.buf);
		return 1;
	}
	if (failed) {
		free(ss.s.buf);
		resp->status = 0;
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "%s: the curl multi interface failed",
				    who);
	}
	if (cc != CURLE_OK) {
		free(ss.s.buf);
		resp->status = 0;
		resp->retry_after = -1;
		if (cc == CURLE_WRITE_ERROR)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "%s: out of memory", who);
		return no_answer(r, "GET", path, cc, timeout, err);
	}
	if (ss.s.buf) {
		resp->body = ss.s.buf;
		resp->len = ss.s.len;
		resp->json = json_loadb(ss.s.buf, ss.s.len, JSON_DECODE_ANY, NULL);
	}
	return 0;
}
