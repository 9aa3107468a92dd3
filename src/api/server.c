/* `agentcell serve`: the HTTP API over libmicrohttpd (loaded with dlopen, see
 * src/base/dl.h).
 *
 * One thread per connection: a request blocks only its own connection, requests on
 * different sandboxes run in parallel, and a long exec or an open event stream never holds
 * up anyone else. There is no global lock: the manager serialises what must be (one
 * sandbox's state) with its per-sandbox file locks, which also order us against the CLI and
 * other servers on the same $AGENTCELL_HOME.
 *
 * What a client costs is bounded before it has proved anything: at most CONNECTION_MAX
 * connections (threads), a per-address share of them, an idle deadline while headers or a
 * body trickle in, and every request is admitted on its headers (Origin, Host, route, key,
 * content type) before a byte of its body is kept. Kept bodies share one budget
 * (BUFFERED_MAX): past it a request is answered 503 instead of growing the process. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/dl.h"
#include "agentcell/server.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/util.h"
#include "api/http.h"
#include "api/reqstats.h"

#define MHD_FNS(X)                                                                                 \
	X(MHD_start_daemon)                                                                        \
	X(MHD_stop_daemon)                                                                         \
	X(MHD_get_daemon_info)                                                                     \
	X(MHD_create_response_from_buffer)                                                         \
	X(MHD_create_response_from_callback)                                                       \
	X(MHD_add_response_header)                                                                 \
	X(MHD_queue_response)                                                                      \
	X(MHD_destroy_response)                                                                    \
	X(MHD_lookup_connection_value)                                                             \
	X(MHD_get_connection_info)                                                                 \
	X(MHD_get_connection_values)
AC_DL_TABLE(mhd, MHD_FNS)

/* An event stream with nothing to say for this long gets an SSE comment: proxies and the
 * connection timeout see a live connection. Never more than half the idle timeout, which
 * libmicrohttpd checks right after each piece of a body. */
#define STREAM_KEEPALIVE_MS 15000
#define CONNECTION_MAX	    256
/* Body bytes kept in memory across all connections (each at most AC_API_BODY_MAX). */
#define BUFFERED_MAX (64u << 20)
/* A refused request with a body up to this size is answered after its body has been read
 * (and dropped): a client that sends its body at once and reads the answer afterwards would
 * otherwise see its connection reset. Larger ones, chunked ones and those that wait for
 * "100 Continue" are answered at once, and the connection closes. */
#define DRAIN_MAX (64u << 10)

struct ac_server {
	ac_api_t *api;
	struct MHD_Daemon *d;
	int listen_fd;
	char *socket_path;
	unsigned port;
	unsigned keepalive_ms;
	atomic_size_t buffered; /* body bytes reserved by all connections */
};

typedef struct conn_ctx {
	char *body;
	size_t len, cap;
	size_t reserved; /* this connection's share of srv->buffered */
	bool too_big;
	ac_api_resp_t *early; /* decided on the headers, sent once the body is dropped */
	/* agentkernel_http_* (reqstats.h): the route, the method's slot, the first byte. */
	int route, method;
	struct timespec t0;
} conn_ctx_t;

typedef struct mhd_req {
	ac_api_req_t r;
	struct MHD_Connection *c;
} mhd_req_t;

static const char *req_header(const ac_api_req_t *r, const char *name)
{
	const mhd_req_t *m = (const mhd_req_t *)r;
	return mhd_fn.MHD_lookup_connection_value(m->c, MHD_HEADER_KIND, name);
}

typedef struct query_iter {
	const char *key;
	const char **vals;
	size_t max, n;
} query_iter_t;

static enum MHD_Result query_each(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	query_iter_t *q = cls;
	if (key && !strcmp(key, q->key)) {
		if (q->n < q->max)
			q->vals[q->n] = value ? value : "";
		q->n++;
	}
	return MHD_YES;
}

static size_t req_query_all(const ac_api_req_t *r, const char *key, const char **vals, size_t max)
{
	const mhd_req_t *m = (const mhd_req_t *)r;
	query_iter_t q = {.key = key, .vals = vals, .max = max};
	mhd_fn.MHD_get_connection_values(m->c, MHD_GET_ARGUMENT_KIND, query_each, &q);
	return q.n;
}

/* ------------------------------------------------------------------ streamed bodies */

typedef struct stream {
	int rfd, wfd;
	ac_api_stream_t st;
} stream_t;

static void *stream_main(void *arg)
{
	stream_t *s = arg;
	s->st.fn(s->st.ctx, s->wfd);
	close(s->wfd);
	if (s->st.free_fn)
		s->st.free_fn(s->st.ctx);
	free(s);
	return NULL;
}

typedef struct stream_src {
	int fd;
	int keepalive_ms;
} stream_src_t;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	stream_src_t *src = cls;
	int *rfd = &src->fd;
	for (;;) {
		struct pollfd p = {*rfd, POLLIN, 0};
		int n = poll(&p, 1, src->keepalive_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			static const char ka[] = ": keep-alive\n\n";
			if (max < sizeof(ka) - 1)
				continue;
			memcpy(buf, ka, sizeof(ka) - 1);
			return (ssize_t)(sizeof(ka) - 1);
		}
		ssize_t r = read(*rfd, buf, max);
		if (r > 0)
			return r;
		if (r == 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (errno != EINTR && errno != EAGAIN)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

static void stream_close(void *cls)
{
	stream_src_t *src = cls;
	/* The writer's next write fails with EPIPE: it stops sending, its command goes on. */
	close(src->fd);
	free(src);
}

static struct MHD_Response *stream_response(ac_api_resp_t *resp, unsigned keepalive_ms)
{
	int p[2];
	stream_src_t *rfd = malloc(sizeof(*rfd));
	stream_t *s = malloc(sizeof(*s));
	if (!rfd || !s || pipe2(p, O_CLOEXEC) < 0) {
		free(rfd);
		free(s);
		return NULL;
	}
	*rfd = (stream_src_t){.fd = p[0], .keepalive_ms = (int)keepalive_ms};
	*s = (stream_t){.rfd = p[0], .wfd = p[1], .st = resp->stream};
	struct MHD_Response *mr = mhd_fn.MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 16384, stream_read, rfd, stream_close);
	if (!mr) {
		close(p[0]);
		close(p[1]);
		free(rfd);
		free(s);
		return NULL;
	}
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	if (pthread_create(&th, &a, stream_main, s) != 0) {
		pthread_attr_destroy(&a);
		close(p[1]);
		free(s);
		/* The response reads EOF at once. */
		return mr;
	}
	pthread_attr_destroy(&a);
	/* The stream thread owns the context now. */
	resp->stream = (ac_api_stream_t){0};
	return mr;
}

static enum MHD_Result send_response(ac_server_t *srv, struct MHD_Connection *c, conn_ctx_t *cx,
				     ac_api_resp_t *resp)
{
	int status = resp->status;
	struct MHD_Response *mr;
	if (resp->stream.fn) {
		mr = stream_response(resp, srv->keepalive_ms);
	} else if (resp->body) {
		mr = mhd_fn.MHD_create_response_from_buffer(resp->len, resp->body,
							    MHD_RESPMEM_MUST_FREE);
		if (mr)
			resp->body = NULL;
	} else {
		mr = mhd_fn.MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	ac_api_resp_clear(resp);
	if (!mr) {
		free(resp->session_id);
		return MHD_NO;
	}
	if (resp->content_type)
		mhd_fn.MHD_add_response_header(mr, "Content-Type", resp->content_type);
	if (resp->content_type && !strcmp(resp->content_type, "text/event-stream")) {
		mhd_fn.MHD_add_response_header(mr, "Cache-Control", "no-cache");
		mhd_fn.MHD_add_response_header(mr, "X-Accel-Buffering", "no");
	}
	if (resp->allow[0])
		mhd_fn.MHD_add_response_header(mr, "Allow", resp->allow);
	if (resp->retry_after) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", resp->retry_after);
		mhd_fn.MHD_add_response_header(mr, "Retry-After", ra);
	}
	if (resp->session_id) {
		mhd_fn.MHD_add_response_header(mr, "Mcp-Session-Id", resp->session_id);
		free(resp->session_id);
		resp->session_id = NULL;
	}
	enum MHD_Result r = mhd_fn.MHD_queue_response(c, (unsigned)status, mr);
	mhd_fn.MHD_destroy_response(mr);
	if (r == MHD_YES && cx)
		ac_reqstats_record(cx->route, cx->method, status, ac_time_since(&cx->t0));
	return r;
}

static mhd_req_t request_of(struct MHD_Connection *c, const char *method, const char *url)
{
	mhd_req_t m = {.c = c};
	const union MHD_ConnectionInfo *ci =
	    mhd_fn.MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	m.r = (ac_api_req_t){.method = method,
			     .client_fd = ci ? ci->connect_fd : -1,
			     .path = url,
			     .body = "",
			     .header = req_header,
			     .query_all = req_query_all};
	return m;
}

/* Makes this connection's share of the body budget at least want bytes. */
static bool reserve(ac_server_t *srv, conn_ctx_t *cx, size_t want)
{
	if (want <= cx->reserved)
		return true;
	size_t add = want - cx->reserved;
	size_t cur = atomic_load(&srv->buffered);
	do {
		if (cur + add > BUFFERED_MAX || cur + add < cur)
			return false;
	} while (!atomic_compare_exchange_weak(&srv->buffered, &cur, cur + add));
	cx->reserved = want;
	return true;
}

static void drop_body(ac_server_t *srv, conn_ctx_t *cx)
{
	free(cx->body);
	cx->body = NULL;
	cx->len = cx->cap = 0;
	atomic_fetch_sub(&srv->buffered, cx->reserved);
	cx->reserved = 0;
}

static void busy(ac_api_resp_t *resp)
{
	ac_api_fail(resp, 503,
		    "the server is holding too many request bodies (%u MiB); try again shortly",
		    BUFFERED_MAX >> 20);
	resp->retry_after = 1;
}

/* A refusal decided before the body: now, or (drain) once the body has been read and
 * dropped. */
static enum MHD_Result refuse(ac_server_t *srv, struct MHD_Connection *c, conn_ctx_t *cx,
			      ac_api_resp_t *resp, bool drain)
{
	if (drain) {
		cx->early = malloc(sizeof(*resp));
		if (cx->early) {
			*cx->early = *resp;
			return MHD_YES;
		}
	}
	return send_response(srv, c, cx, resp);
}

static enum MHD_Result on_headers(ac_server_t *srv, conn_ctx_t *cx, struct MHD_Connection *c,
				  const char *url, const char *method)
{
	const char *cl = mhd_fn.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	const char *te =
	    mhd_fn.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
	const char *expect = mhd_fn.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
	uint64_t n = 0;
	bool has_cl = cl && ac_parse_u64(cl, 0, UINT64_MAX, &n) == 0;
	bool chunked = te != NULL;
	bool has_body = (has_cl && n > 0) || chunked;
	bool waits = expect && !strcasecmp(expect, "100-continue");
	/* Drained: a small body a client sends at once. */
	bool drain = has_body && !waits && !chunked && n <= DRAIN_MAX;
	ac_api_resp_t resp = {0};
	mhd_req_t m = request_of(c, method, url);
	if (!ac_api_admit(srv->api, &m.r, has_body, &resp))
		return refuse(srv, c, cx, &resp, drain);
	if (has_cl && n > AC_API_BODY_MAX) {
		if (!waits && n <= 4ull * AC_API_BODY_MAX) {
			/* A client that sends the body at once reads the answer only after it:
			 * answering first would reset its connection. The body is read and
			 * dropped; past 64 MiB it is not worth reading. */
			cx->too_big = true;
			return MHD_YES;
		}
		/* Answered before the body is read (a client that asked with
		 * "Expect: 100-continue" sends nothing more); the connection closes. */
		ac_api_fail(&resp, 413, "Request body exceeds the maximum size of %u bytes",
			    AC_API_BODY_MAX);
		return send_response(srv, c, cx, &resp);
	}
	if (has_cl && n > 0) {
		/* The whole body's room, once: no doubling, no copy. */
		if (!reserve(srv, cx, (size_t)n + 1) || !(cx->body = malloc((size_t)n + 1))) {
			drop_body(srv, cx);
			busy(&resp);
			return refuse(srv, c, cx, &resp, drain);
		}
		cx->cap = (size_t)n + 1;
	}
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	ac_server_t *srv = cls;
	conn_ctx_t *cx = *con_cls;
	if (!cx) {
		cx = calloc(1, sizeof(*cx));
		if (!cx)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &cx->t0);
		cx->route = ac_api_route_index(method, url);
		cx->method = ac_reqstats_method(method);
		*con_cls = cx;
		return on_headers(srv, cx, c, url, method);
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (cx->too_big || cx->early)
			return MHD_YES;
		if (cx->len + n > AC_API_BODY_MAX) {
			cx->too_big = true;
			drop_body(srv, cx);
			return MHD_YES;
		}
		if (cx->len + n + 1 > cx->cap) {
			/* A chunked body: it grows, within the budget. */
			size_t cap = cx->cap ? cx->cap : 4096;
			while (cap < cx->len + n + 1)
				cap *= 2;
			if (cap > AC_API_BODY_MAX + 1)
				cap = AC_API_BODY_MAX + 1;
			char *b = reserve(srv, cx, cap) ? realloc(cx->body, cap) : NULL;
			if (!b) {
				drop_body(srv, cx);
				ac_api_resp_t resp = {0};
				busy(&resp);
				cx->early = malloc(sizeof(resp));
				if (!cx->early)
					return MHD_NO;
				*cx->early = resp;
				return MHD_YES;
			}
			cx->body = b;
			cx->cap = cap;
		}
		memcpy(cx->body + cx->len, upload, n);
		cx->len += n;
		cx->body[cx->len] = '\0';
		return MHD_YES;
	}
	ac_api_resp_t resp = {0};
	if (cx->early) {
		resp = *cx->early;
		free(cx->early);
		cx->early = NULL;
	} else if (cx->too_big) {
		ac_api_fail(&resp, 413, "Request body exceeds the maximum size of %u bytes",
			    AC_API_BODY_MAX);
	} else {
		mhd_req_t m = request_of(c, method, url);
		m.r.body = cx->body ? cx->body : "";
		m.r.body_len = cx->len;
		ac_api_handle(srv->api, &m.r, &resp);
	}
	return send_response(srv, c, cx, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	ac_server_t *srv = cls;
	conn_ctx_t *cx = *con_cls;
	if (cx) {
		drop_body(srv, cx);
		if (cx->early) {
			ac_api_resp_clear(cx->early);
			free(cx->early);
		}
		free(cx);
		*con_cls = NULL;
	}
}

/* ------------------------------------------------------------------ listening */

static bool addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

static int unix_listener(const char *path, ac_error_t **err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path))
		return ac_error_set(err, AC_ERR_INVALID, 0, "socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	struct stat st;
	/* A stale socket of an earlier server goes; anything else at that path stays. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return ac_error_set(err, AC_ERR_EXISTS, 0, "%s exists and is not a socket",
					    path);
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "socket");
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		return ac_error_set(err, AC_ERR_INVALID, e, "cannot listen on %s", path);
	}
	return fd;
}

static int inet_listener(const char *host, unsigned port, bool *loopback, ac_error_t **err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char ps[16];
	snprintf(ps, sizeof(ps), "%u", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g != 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "cannot resolve host '%s': %s", host,
				    gai_strerror(g));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "socket");
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	*loopback = addr_loopback(ai->ai_addr);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		freeaddrinfo(ai);
		return ac_error_set(err, e == EADDRINUSE ? AC_ERR_EXISTS : AC_ERR_INVALID, e,
				    "cannot listen on %s port %u", host, port);
	}
	freeaddrinfo(ai);
	return fd;
}

int ac_server_start(const ac_server_opts_t *o, ac_api_t *api, ac_server_t **out, ac_error_t **err)
{
	if (mhd_load("libmicrohttpd.so.12", "libmicrohttpd12", err) < 0)
		return -1;
	bool loopback = true;
	int fd;
	if (o->socket_path)
		fd = unix_listener(o->socket_path, err);
	else
		fd = inet_listener(o->host ? o->host : "127.0.0.1", o->port, &loopback, err);
	if (fd < 0)
		return -1;
	if (!loopback && !(api->keys && api->keys[0])) {
		close(fd);
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "refusing to listen on %s without an API key: anyone who can "
				    "reach it could run commands; set AGENTCELL_API_KEY (or [api] "
				    "api_key in agentcell.toml), or listen on 127.0.0.1",
				    o->host);
	}
	ac_reqstats_start();
	ac_server_t *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	srv->api = api;
	srv->listen_fd = fd;
	srv->socket_path = o->socket_path ? strdup(o->socket_path) : NULL;
	/* A browser reaches no unix socket; over TCP a Host naming the address served is as
	 * good as "localhost". */
	api->any_host = o->socket_path != NULL;
	api->bound_host = o->socket_path ? NULL : (o->host ? o->host : "127.0.0.1");
	unsigned idle = o->idle_timeout ? o->idle_timeout : AC_SERVER_IDLE_TIMEOUT_S;
	unsigned per_ip = o->per_ip_limit ? o->per_ip_limit : AC_SERVER_PER_IP_LIMIT;
	srv->keepalive_ms = idle * 500u < STREAM_KEEPALIVE_MS ? idle * 500u : STREAM_KEEPALIVE_MS;
	/* Idle: no byte in or out for that long (a half-sent header or body, a client that
	 * reads nothing) closes the connection; a request whose handler runs (an exec) is not
	 * idle, and an event stream sends a comment at least every half of it. */
	srv->d = mhd_fn.MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
		(o->verbose ? MHD_USE_ERROR_LOG : 0),
	    0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, idle,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(256 * 1024), MHD_OPTION_END);
	if (!srv->d) {
		ac_server_stop(srv);
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the HTTP server did not start");
	}
	/* Ours no more: MHD_stop_daemon closes it. */
	srv->listen_fd = -1;
	if (!o->socket_path) {
		const union MHD_DaemonInfo *di =
		    mhd_fn.MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
		srv->port = di ? di->port : o->port;
	}
	*out = srv;
	return 0;
}

unsigned ac_server_port(const ac_server_t *srv)
{
	return srv->port;
}

void ac_server_stop(ac_server_t *srv)
{
	if (!srv)
		return;
	if (srv->d)
		mhd_fn.MHD_stop_daemon(srv->d);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->socket_path)
		unlink(srv->socket_path);
	free(srv->socket_path);
	free(srv);
}
