/* The HTTP API, inside src/api: the server (server.c, libmicrohttpd) hands each request to
 * the router (router.c), which knows nothing of libmicrohttpd, so unit tests and the fuzz
 * target drive it with plain structs. */
#ifndef AGENTCELL_API_HTTP_H
#define AGENTCELL_API_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentcell/manager.h"

#define AC_API_BODY_MAX	  (16u << 20)
#define AC_API_PARAMS_MAX 4

struct ac_mcp;

/* Server-wide, read-only once serving starts (every request thread shares it). */
typedef struct ac_api {
	ac_manager_t *m;
	char **keys; /* accepted API keys, NULL-terminated; none: no authentication */
	struct ac_mcp *mcp;
	unsigned batch_parallel; /* concurrent commands of one /batch/run */
	double exec_timeout;	 /* seconds, for commands a request gives none (0: none) */
	const json_t *languages; /* agentcell.toml [languages]: code runs' images (or NULL) */
	struct ac_pool *pool;	 /* serve --pool: the warm pool of POST /run (or NULL) */
	bool allow_sudo_exec;	 /* [api] allow_sudo_exec: a request's "sudo": true runs */
	/* Without keys, the Host header must name this machine (DNS rebinding): localhost,
	 * 127.0.0.1, [::1] or bound_host (the address served, NULL: none more), any port.
	 * any_host: a unix socket, which no browser reaches. */
	const char *bound_host;
	bool any_host;
} ac_api_t;

typedef struct ac_api_req {
	const char *method;
	const char *path; /* decoded, without the query */
	const char *body;
	size_t body_len;
	/* Query arguments and headers, from the server (or a test). query_all returns how many
	 * values of key exist, filling at most max of them. */
	const char *(*header)(const struct ac_api_req *r, const char *name);
	size_t (*query_all)(const struct ac_api_req *r, const char *key, const char **vals,
			    size_t max);
	void *conn;
	int client_fd; /* the client's socket (cancels its commands when it hangs up); -1: none */
	/* Filled by the router: the path's parameters ({name}, {id}, the file path). */
	const char *params[AC_API_PARAMS_MAX];
} ac_api_req_t;

/* A body produced while it is sent: fn runs on its own thread and writes to fd (a pipe to
 * the client; writes fail with EPIPE once the client is gone), then returns; free_fn(ctx)
 * follows. */
typedef struct ac_api_stream {
	void (*fn)(void *ctx, int fd);
	void (*free_fn)(void *ctx);
	void *ctx;
} ac_api_stream_t;

typedef struct ac_api_resp {
	int status;
	char *body; /* malloc'd; NULL with stream.fn set for a streamed body */
	size_t len;
	const char *content_type;
	char allow[64];		/* 405: the Allow header */
	char *session_id;	/* /mcp: the Mcp-Session-Id header (malloc'd) */
	unsigned retry_after;	/* 503: the Retry-After header, seconds (0: none) */
	ac_api_stream_t stream; /* text/event-stream and the like */
} ac_api_resp_t;

/* Answers one request (ac_api_admit's checks included). Never fails: every error is a
 * response. */
void ac_api_handle(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* What can be decided on the headers alone, before any body byte is read, in this order:
 * Origin (403 unless a page of this machine), Host (403; without keys only), route and
 * method (404, 405), the API key (401), the body's type (415: a request with a body must
 * say application/json). has_body: the request has or announces one. true: admitted;
 * false: the answer is in resp. */
bool ac_api_admit(ac_api_t *api, const ac_api_req_t *req, bool has_body, ac_api_resp_t *resp);

/* The pure checks behind it (src/api/guard.c). host: a Host header value ("name[:port]",
 * "[v6][:port]"), local when it names localhost, 127.0.0.1, [::1] or bound (may be NULL;
 * an IPv6 literal without brackets). origin: an Origin header value, local when exactly
 * http(s)://localhost|127.0.0.1|[::1] with an optional port ("null" is not). type: a
 * Content-Type value, JSON when application/json with optional parameters. */
bool ac_api_host_local(const char *host, const char *bound);
bool ac_api_origin_local(const char *origin);
bool ac_api_type_json(const char *type);
void ac_api_resp_clear(ac_api_resp_t *resp);

/* Envelopes: {"success":true,"data":data} (data consumed) and {"success":false,"error":msg}. */
void ac_api_ok(ac_api_resp_t *resp, int status, json_t *data);
void ac_api_fail(ac_api_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Constant-time comparison of a presented key with the accepted ones. */
bool ac_api_key_ok(char *const *keys, const char *presented);

/* The route table, read-only (tests, documentation): false past the last route. pattern
 * uses ":x" for one parameter and "*" for the rest of the path; open: no API key needed. */
bool ac_api_route_at(size_t i, const char **method, const char **pattern, bool *open);

/* The OpenAPI document served at /openapi.json (docs/openapi.json, built in). */
extern const char ac_openapi_json[];
extern const size_t ac_openapi_json_len;

#endif
