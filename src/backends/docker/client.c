/* The Engine API transport: libcurl (loaded with dlopen, see src/base/dl.h) over a
 * unix socket or plain TCP. Requests reuse one handle (and so one connection); an exec or
 * attach stream gets its own connection, which curl opens and we then use as a raw socket
 * (Debian's curl cannot hand an upgraded HTTP/1.1 connection over). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/curl.h"
#include "base/io.h"
#include "base/util.h"
#include "backends/docker/docker.h"

struct ac_docker {
	ac_docker_host_t host;
	CURL *curl;
};

int ac_docker_open(const ac_docker_host_t *h, ac_docker_t **out, ac_error_t **err)
{
	if (ac_curl_load(err) < 0)
		return -1;
	ac_docker_t *d = calloc(1, sizeof(*d));
	if (!d)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	d->host = *h;
	d->curl = ac_curl.curl_easy_init();
	if (!d->curl) {
		free(d);
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_easy_init failed");
	}
	*out = d;
	return 0;
}

void ac_docker_free(ac_docker_t *d)
{
	if (!d)
		return;
	ac_curl.curl_easy_cleanup(d->curl);
	free(d);
}

const ac_docker_host_t *ac_docker_host(const ac_docker_t *d)
{
	return &d->host;
}

void ac_docker_resp_free(ac_docker_resp_t *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

typedef struct sink {
	char *buf;
	size_t len, cap;
	size_t max;
	int fd;
	uint64_t written, fd_max;
	bool over;
	long *status;
	CURL *curl;
} sink_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	sink_t *s = arg;
	size_t len = size * n;
	long status = 0;
	ac_curl.curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (s->fd >= 0 && status >= 200 && status < 300) {
		if (s->written + len > s->fd_max) {
			s->over = true;
			return 0;
		}
		if (ac_write_all(s->fd, p, len) < 0)
			return 0;
		s->written += len;
		return len;
	}
	if (s->len + len > s->max) {
		s->over = true;
		return 0;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
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

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	ac_docker_resp_t *r = arg;
	size_t len = size * n;
	static const char name[] = "x-docker-container-path-stat:";
	if (len > sizeof(name) - 1 && !strncasecmp(p, name, sizeof(name) - 1)) {
		const char *v = p + sizeof(name) - 1;
		size_t vl = len - (sizeof(name) - 1);
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(r->path_stat))
			snprintf(r->path_stat, sizeof(r->path_stat), "%.*s", (int)vl, v);
	}
	return len;
}

typedef struct source {
	int fd;
	uint64_t off, len;
} source_t;

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	source_t *s = arg;
	size_t want = size * n;
	if (s->off >= s->len)
		return 0;
	if (want > s->len - s->off)
		want = (size_t)(s->len - s->off);
	ssize_t r;
	do
		r = pread(s->fd, p, want, (off_t)s->off);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return CURL_READFUNC_ABORT;
	s->off += (uint64_t)r;
	return (size_t)r;
}

static void set_target(CURL *c, const ac_docker_host_t *h, const char *path)
{
	char url[4400];
	snprintf(url, sizeof(url), "%s%s", h->base, path);
	ac_curl.curl_easy_setopt(c, CURLOPT_URL, url);
	if (h->is_unix)
		ac_curl.curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->path);
	/* Only http: a redirect or another protocol from an engine is not followed. */
	ac_curl.curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	ac_curl.curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	ac_curl.curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
}

static int unreachable(const ac_docker_host_t *h, CURLcode cc, ac_error_t **err)
{
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "cannot reach the container engine at %s (is it running?)",
				    h->spec);
	return ac_error_set(err, AC_ERR_BACKEND, 0, "the container engine at %s: %s", h->spec,
			    ac_curl.curl_easy_strerror(cc));
}

int ac_docker_call(ac_docker_t *d, const ac_docker_req_t *req, ac_docker_resp_t *resp,
		   ac_error_t **err)
{
	CURL *c = d->curl;
	memset(resp, 0, sizeof(*resp));
	ac_curl.curl_easy_reset(c);
	set_target(c, &d->host, req->path);
	struct curl_slist *hdrs = ac_curl.curl_slist_append(NULL, "Expect:");
	_cleanup_free_ char *json = NULL;
	source_t src = {req->upload_fd, 0, req->upload_len};
	if (req->json) {
		json = json_dumps(req->json, JSON_COMPACT);
		if (!json) {
			ac_curl.curl_slist_free_all(hdrs);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
					    "cannot encode a request");
		}
		hdrs = ac_curl.curl_slist_append(hdrs, "Content-Type: application/json");
		ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
		ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	} else if (req->upload_fd > 0) {
		hdrs = ac_curl.curl_slist_append(hdrs, "Content-Type: application/x-tar");
		ac_curl.curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		ac_curl.curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		ac_curl.curl_easy_setopt(c, CURLOPT_READDATA, &src);
		ac_curl.curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->upload_len);
	} else if (!strcmp(req->method, "POST")) {
		ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (!strcmp(req->method, "HEAD"))
		ac_curl.curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		ac_curl.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	ac_curl.curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	sink_t s = {.max = AC_DOCKER_ANSWER_MAX,
		    .fd = req->download_fd > 0 ? req->download_fd : -1,
		    .fd_max = req->download_max,
		    .curl = c};
	ac_curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	ac_curl.curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	ac_curl.curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	ac_curl.curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	if (req->timeout_ms > 0)
		ac_curl.curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	CURLcode cc = ac_curl.curl_easy_perform(c);
	ac_curl.curl_slist_free_all(hdrs);
	if (s.over) {
		free(s.buf);
		return ac_error_set(
		    err, AC_ERR_BACKEND, 0,
		    "the container engine's answer to %s %s is larger than %llu bytes", req->method,
		    req->path, (unsigned long long)(s.fd >= 0 ? s.fd_max : s.max));
	}
	if (cc != CURLE_OK) {
		free(s.buf);
		return unreachable(&d->host, cc, err);
	}
	ac_curl.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = s.buf ? s.buf : strdup("");
	resp->len = s.len;
	return 0;
}

int ac_docker_fail(const ac_docker_resp_t *r, const char *what, ac_error_t **err)
{
	char msg[600];
	ac_docker_error_text(r->body, r->len, msg, sizeof(msg));
	ac_error_kind_t kind = AC_ERR_BACKEND;
	if (r->status == 404)
		kind = AC_ERR_NOT_FOUND;
	else if (r->status == 409)
		kind = strstr(msg, "already in use") || strstr(msg, "already exists")
			   ? AC_ERR_EXISTS
			   : AC_ERR_STATE;
	else if (r->status == 400)
		kind = AC_ERR_INVALID;
	else if (r->status == 401 || r->status == 403)
		kind = AC_ERR_PERMISSION;
	return ac_error_set(err, kind, 0, "%s: %s (engine answered HTTP %ld)", what,
			    msg[0] ? msg : "no message", r->status);
}

int ac_docker_simple(ac_docker_t *d, const char *method, const char *path, json_t *json, long also,
		     ac_docker_resp_t *resp, const char *what, ac_error_t **err)
{
	ac_docker_resp_t local;
	ac_docker_resp_t *r = resp ? resp : &local;
	ac_docker_req_t req = {.method = method, .path = path, .json = json};
	if (ac_docker_call(d, &req, r, err) < 0) {
		ac_error_prefix(err, "%s", what);
		return -1;
	}
	int rc = 0;
	if (!((r->status >= 200 && r->status < 300) || (also && r->status == also)))
		rc = ac_docker_fail(r, what, err);
	if (!resp)
		ac_docker_resp_free(&local);
	return rc;
}

/* ---- hijacked connections ---- */

int ac_docker_send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {fd, POLLOUT, 0};
			poll(&pf, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads from fd into buf (len so far) until want bytes or EOF, 30 s at most per read. */
static ssize_t recv_some(int fd, char *buf, size_t room)
{
	for (;;) {
		struct pollfd pf = {fd, POLLIN, 0};
		int n = poll(&pf, 1, 30000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t r = recv(fd, buf, room, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return r;
	}
}

int ac_docker_hijack(ac_docker_t *d, const char *path, json_t *json, ac_docker_conn_t *c,
		     const char *what, ac_error_t **err)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	CURL *cu = ac_curl.curl_easy_init();
	if (!cu)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_easy_init failed");
	c->curl = cu;
	set_target(cu, &d->host, path);
	ac_curl.curl_easy_setopt(cu, CURLOPT_CONNECT_ONLY, 1L);
	CURLcode cc = ac_curl.curl_easy_perform(cu);
	curl_socket_t sock = CURL_SOCKET_BAD;
	if (cc == CURLE_OK)
		cc = ac_curl.curl_easy_getinfo(cu, CURLINFO_ACTIVESOCKET, &sock);
	if (cc != CURLE_OK || sock == CURL_SOCKET_BAD) {
		ac_docker_conn_close(c);
		unreachable(&d->host, cc != CURLE_OK ? cc : CURLE_COULDNT_CONNECT, err);
		ac_error_prefix(err, "%s", what);
		return -1;
	}
	c->fd = (int)sock;
	_cleanup_free_ char *body = json ? json_dumps(json, JSON_COMPACT) : strdup("{}");
	AC_ANALYZER_OWNED(body);
	char head[4600];
	const char *hostname = d->host.is_unix ? "localhost" : d->host.host;
	int hn = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: agentcell\r\n"
			  "Content-Type: application/json\r\nConnection: Upgrade\r\n"
			  "Upgrade: tcp\r\nContent-Length: %zu\r\n\r\n",
			  path, hostname, body ? strlen(body) : 0);
	if (!body || hn >= (int)sizeof(head) || ac_docker_send_all(c->fd, head, (size_t)hn) < 0 ||
	    ac_docker_send_all(c->fd, body, strlen(body)) < 0) {
		int e = errno;
		ac_docker_conn_close(c);
		return ac_error_set(err, AC_ERR_BACKEND, e, "%s: cannot send the request", what);
	}
	/* The head, then whatever stream bytes came with it. */
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	ac_http_head_t h;
	int pr = 1;
	while (buf && pr == 1) {
		if (len == cap) {
			if (cap >= AC_DOCKER_HEAD_MAX * 2)
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv_some(c->fd, buf + len, cap - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		pr = ac_docker_parse_head(buf, len, &h);
	}
	if (!buf || pr != 0) {
		free(buf);
		ac_docker_conn_close(c);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the container engine's answer is %s", what,
				    pr == 1 ? "incomplete" : "malformed");
	}
	if (h.status == 101 || h.status == 200) {
		c->npending = len - h.head_len;
		memmove(buf, buf + h.head_len, c->npending);
		c->pending = buf;
		return 0;
	}
	/* An error: its body (Content-Length, else until the engine closes). */
	size_t want = h.content_length >= 0 && h.content_length < AC_DOCKER_ERRBODY_MAX
			  ? h.head_len + (size_t)h.content_length
			  : h.head_len + AC_DOCKER_ERRBODY_MAX;
	while (len < want && !h.chunked) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv_some(c->fd, buf + len,
				      (want - len) < (cap - len) ? want - len : cap - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	ac_docker_resp_t resp = {
	    .status = h.status, .body = buf + h.head_len, .len = len - h.head_len};
	if (h.chunked) {
		/* A short JSON error in one chunk: skip the chunk-size line. */
		char *nl = memchr(resp.body, '\n', resp.len);
		if (nl) {
			resp.len -= (size_t)(nl + 1 - resp.body);
			resp.body = nl + 1;
		}
	}
	ac_docker_fail(&resp, what, err);
	free(buf);
	ac_docker_conn_close(c);
	return -1;
}

void ac_docker_conn_close(ac_docker_conn_t *c)
{
	if (c->curl)
		ac_curl.curl_easy_cleanup(c->curl); /* closes the socket */
	c->curl = NULL;
	c->fd = -1;
	free(c->pending);
	c->pending = NULL;
	c->npending = 0;
}
