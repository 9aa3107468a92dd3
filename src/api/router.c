/* The HTTP API's router: the route table, the checks made on the headers alone (Origin,
 * Host, API key, body type) and the dispatch to the handlers of each area (sandboxes.c,
 * exec.c, files.c, mcp_http.c); the server-level endpoints live here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/metrics.h"
#include "agentcell/pool.h"
#include "base/parse.h"
#include "base/util.h"
#include "api/handlers.h"
#include "api/reqstats.h"

bool ac_api_key_ok(char *const *keys, const char *presented)
{
	/* Every key is compared in full, whatever matched: the time depends on the lengths
	 * only, never on how much of a key was guessed right. */
	size_t plen = strlen(presented);
	unsigned ok = 0;
	for (char *const *k = keys; k && *k; k++) {
		size_t klen = strlen(*k);
		unsigned diff = klen != plen;
		for (size_t i = 0; i < klen; i++)
			diff |=
			    (unsigned char)(*k)[i] ^ (unsigned char)(i < plen ? presented[i] : 0);
		ok |= diff == 0;
	}
	return ok;
}

/* ------------------------------------------------------------------ service endpoints */

static void h_health(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	ac_api_ok(resp, 200, json_string("ok"));
	if (!api->pool)
		return;
	/* The envelope keeps "data": "ok" (agentkernel's); the pool's figures go beside it. */
	json_t *j = json_pack("{sb ss so}", "success", 1, "data", "ok", "pool",
			      ac_pool_stats_json(api->pool));
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (body) {
		free(resp->body);
		resp->body = body;
		resp->len = strlen(body);
	}
}

static void h_pool(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	if (!api->pool)
		ac_api_fail(resp, 404, "no warm pool: the server was started without --pool");
	else
		ac_api_ok(resp, 200, ac_pool_stats_json(api->pool));
}

static void h_openapi(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "application/json";
	resp->body = malloc(ac_openapi_json_len + 1);
	if (!resp->body) {
		ac_api_fail(resp, 500, "out of memory");
		return;
	}
	memcpy(resp->body, ac_openapi_json, ac_openapi_json_len);
	resp->body[ac_openapi_json_len] = '\0';
	resp->len = ac_openapi_json_len;
}

static void h_metrics(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	char *text = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_metrics(api->m, &text, &e) < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_reqstats_append(&text); /* agentkernel_http_*: this server's requests */
	if (api->pool)
		ac_pool_metrics_append(api->pool, &text);
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
	resp->body = text;
	resp->len = strlen(text);
}

/* agentkernel's GET /stats (include/agentcell/metrics.h), CPU use sampled over 200 ms as
 * agentkernel does. */
static void h_stats(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	json_t *data = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_stats(api->m, ac_reqstats_uptime(), 200, &data, &e) < 0)
		ac_api_fail_error(resp, e);
	else
		ac_api_ok(resp, 200, data);
}

/* ------------------------------------------------------------------ routing */

typedef struct route {
	const char *method;
	const char *pattern; /* segments; ":x" is one parameter, "*" the rest of the path */
	ac_api_handler_t fn;
	bool open; /* no API key needed */
} route_t;

static const route_t routes[] = {
    {"GET", "/health", h_health, true},
    {"GET", "/metrics", h_metrics, true},
    {"GET", "/stats", h_stats, false},
    {"GET", "/openapi.json", h_openapi, true},
    {"GET", "/pool", h_pool, false},
    {"POST", "/run", ac_h_run, false},
    {"POST", "/run/stream", ac_h_run_stream, false},
    {"POST", "/batch/run", ac_h_batch_run, false},
    {"GET", "/sandboxes", ac_h_list, false},
    {"POST", "/sandboxes", ac_h_create, false},
    {"GET", "/sandboxes/by-uuid/:uuid", ac_h_by_uuid, false},
    {"GET", "/sandboxes/:name", ac_h_get, false},
    {"PATCH", "/sandboxes/:name", ac_h_patch, false},
    {"DELETE", "/sandboxes/:name", ac_h_delete, false},
    {"POST", "/sandboxes/:name/start", ac_h_start, false},
    {"POST", "/sandboxes/:name/stop", ac_h_stop, false},
    {"POST", "/sandboxes/:name/recover", ac_h_recover, false},
    {"POST", "/sandboxes/:name/resize", ac_h_resize, false},
    {"POST", "/sandboxes/:name/extend", ac_h_extend, false},
    {"POST", "/sandboxes/:name/exec", ac_h_exec, false},
    {"POST", "/sandboxes/:name/exec/stream", ac_h_exec_stream, false},
    {"POST", "/sandboxes/:name/exec/detach", ac_h_detach_start, false},
    {"GET", "/sandboxes/:name/exec/detached", ac_h_detach_list, false},
    {"GET", "/sandboxes/:name/exec/detached/:id", ac_h_detach_get, false},
    {"DELETE", "/sandboxes/:name/exec/detached/:id", ac_h_detach_kill, false},
    {"GET", "/sandboxes/:name/exec/detached/:id/logs", ac_h_detach_logs, false},
    {"POST", "/sandboxes/:name/files", ac_h_files_batch, false},
    {"GET", "/sandboxes/:name/files/*", ac_h_file_get, false},
    {"PUT", "/sandboxes/:name/files/*", ac_h_file_put, false},
    {"DELETE", "/sandboxes/:name/files/*", ac_h_file_delete, false},
    {"GET", "/sandboxes/:name/logs", ac_h_logs, false},
    {"POST", "/gc", ac_h_gc, false},
    {"POST", "/lifecycle/reconcile", ac_h_reconcile, false},
    {"GET", "/audit", ac_h_audit, false},
    {"POST", "/mcp", ac_h_mcp, false},
    {"GET", "/mcp", ac_h_mcp, false},
    {"DELETE", "/mcp", ac_h_mcp, false},
};

bool ac_api_route_at(size_t i, const char **method, const char **pattern, bool *open)
{
	if (i >= AC_ARRAY_SIZE(routes))
		return false;
	*method = routes[i].method;
	*pattern = routes[i].pattern;
	*open = routes[i].open;
	return true;
}

/* Matches path (a writable copy: parameters are cut out of it in place) against pattern. */
static bool match(const char *pattern, char *path, const char **params)
{
	int np = 0;
	const char *p = pattern;
	char *s = path;
	while (*p) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		if (*p == '*') {
			if (!*s)
				return false;
			params[np++] = s;
			return true;
		}
		const char *pend = strchrnul(p, '/');
		char *send = strchrnul(s, '/');
		if (send == s)
			return false;
		if (*p == ':') {
			if (np >= AC_API_PARAMS_MAX)
				return false;
			params[np++] = s;
		} else if ((size_t)(pend - p) != (size_t)(send - s) ||
			   memcmp(p, s, (size_t)(pend - p))) {
			return false;
		}
		p = pend;
		s = send;
	}
	return !*s;
}

/* Cuts the parameters: each ':' parameter ends at the next '/'. */
static void terminate_params(const char *pattern, const char **params)
{
	int np = 0;
	for (const char *p = pattern; *p; p++) {
		if (p[0] == '/' && p[1] == ':') {
			char *end = strchr((char *)params[np], '/');
			if (end)
				*end = '\0';
			np++;
		}
	}
}

static bool method_is(const char *m, const char *want)
{
	return !strcmp(m, want) || (!strcmp(want, "GET") && !strcmp(m, "HEAD"));
}

/* The path as routed, in a malloc'd copy: one trailing slash is forgiven ("/sandboxes/",
 * "/sandboxes/x/exec/"), except in a file path, where it is part of the path. */
static char *route_path(const char *raw)
{
	size_t plen = strlen(raw);
	char *path = malloc(plen + 1);
	if (!path)
		return NULL;
	memcpy(path, raw, plen + 1);
	if (plen > 1 && path[plen - 1] == '/' &&
	    !(strncmp(path, "/sandboxes/", 11) == 0 && strstr(path + 11, "/files/")))
		path[plen - 1] = '\0';
	return path;
}

static bool methods_with_body(const char *m)
{
	return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* ac_api_admit on a routed path; *found: the route. work: a buffer of strlen(path) + 1. */
static bool admit(ac_api_t *api, const ac_api_req_t *req, bool has_body, const char *path,
		  char *work, const route_t **found, ac_api_resp_t *resp)
{
	const char *(*hdr)(const ac_api_req_t *, const char *) = req->header;
	/* Pages of other sites: refused on every route, keys or not (a browser sends Origin
	 * with every cross-site request but a plain GET; no CORS header is ever sent, so a
	 * page can send a simple request, never read the answer). */
	const char *origin = hdr ? hdr(req, "Origin") : NULL;
	if (origin && !ac_api_origin_local(origin)) {
		ac_api_fail(
		    resp, 403,
		    "origin '%.200s' is not allowed: only pages of this machine (localhost, "
		    "127.0.0.1, [::1]) may call this API",
		    origin);
		return false;
	}
	/* DNS rebinding: a page whose name was made to point at 127.0.0.1 sends its own name
	 * as Host. Without a key nothing else stops it; with one it has no key. */
	bool keyed = api->keys && api->keys[0];
	if (!keyed && !api->any_host) {
		const char *host = hdr ? hdr(req, "Host") : NULL;
		if (!ac_api_host_local(host, api->bound_host)) {
			const char *b = api->bound_host;
			bool extra = b && !ac_api_host_local(b, NULL) && strcmp(b, "::1");
			ac_api_fail(
			    resp, 403,
			    "host '%.200s' is not allowed: a server without an API key "
			    "answers only requests for localhost, 127.0.0.1%s%.100s or [::1]",
			    host ? host : "", extra ? ", " : "", extra ? b : "");
			return false;
		}
	}
	char allow[128] = "";
	*found = NULL;
	for (size_t i = 0; i < AC_ARRAY_SIZE(routes); i++) {
		const char *params[AC_API_PARAMS_MAX] = {0};
		memcpy(work, path, strlen(path) + 1);
		if (!match(routes[i].pattern, work, params))
			continue;
		if (!method_is(req->method, routes[i].method)) {
			if (!strstr(allow, routes[i].method)) {
				size_t al = strlen(allow);
				snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "",
					 routes[i].method);
			}
			continue;
		}
		*found = &routes[i];
		break;
	}
	if (!*found) {
		if (*allow) {
			ac_api_fail(resp, 405, "method %s is not allowed on %s", req->method,
				    req->path);
			snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
		} else {
			ac_api_fail(resp, 404, "no such endpoint: %s %s", req->method, req->path);
		}
		return false;
	}
	if (keyed && !(*found)->open) {
		const char *h = hdr ? hdr(req, "Authorization") : NULL;
		if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
			ac_api_fail(resp, 401,
				    h ? "Invalid authorization format. Use: Bearer <api_key>"
				      : "Missing Authorization header");
			return false;
		}
		if (!ac_api_key_ok(api->keys, h + 7)) {
			ac_api_fail(resp, 401, "Invalid API key");
			return false;
		}
	}
	/* A page may send text/plain, form data or multipart without asking; JSON only after
	 * a CORS preflight, which this server never grants. */
	if (has_body && methods_with_body(req->method)) {
		const char *type = hdr ? hdr(req, "Content-Type") : NULL;
		if (!ac_api_type_json(type)) {
			ac_api_fail(resp, 415,
				    "Content-Type must be application/json, not '%.200s'",
				    type ? type : "(none)");
			return false;
		}
	}
	return true;
}

int ac_api_route_index(const char *method, const char *raw)
{
	char *path = route_path(raw);
	char *work = path ? malloc(strlen(path) + 1) : NULL;
	int first = -1, found = -1;
	for (size_t i = 0; work && i < AC_ARRAY_SIZE(routes); i++) {
		const char *params[AC_API_PARAMS_MAX] = {0};
		memcpy(work, path, strlen(path) + 1);
		if (!match(routes[i].pattern, work, params))
			continue;
		if (first < 0)
			first = (int)i;
		if (method_is(method, routes[i].method)) {
			found = (int)i;
			break;
		}
	}
	free(work);
	free(path);
	return found >= 0 ? found : first;
}

bool ac_api_admit(ac_api_t *api, const ac_api_req_t *req, bool has_body, ac_api_resp_t *resp)
{
	char *path = route_path(req->path);
	char *work = path ? malloc(strlen(path) + 1) : NULL;
	const route_t *found;
	bool ok = false;
	if (!work)
		ac_api_fail(resp, 500, "out of memory");
	else
		ok = admit(api, req, has_body, path, work, &found, resp);
	free(work);
	free(path);
	return ok;
}

void ac_api_handle(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	char *path = route_path(req->path);
	char *work = path ? malloc(strlen(path) + 1) : NULL;
	const route_t *found = NULL;
	if (!work) {
		ac_api_fail(resp, 500, "out of memory");
		goto out;
	}
	if (!admit(api, req, req->body_len > 0, path, work, &found, resp))
		goto out;
	memcpy(work, path, strlen(path) + 1);
	for (int i = 0; i < AC_API_PARAMS_MAX; i++)
		req->params[i] = NULL;
	match(found->pattern, work, req->params);
	terminate_params(found->pattern, req->params);
	/* A sandbox name comes first in every pattern that has one. */
	if (req->params[0] && strstr(found->pattern, "/:name") && !ac_name_valid(req->params[0])) {
		ac_api_fail(resp, 400, "invalid sandbox name '%s'", req->params[0]);
		goto out;
	}
	/* The warm pool's sandboxes are the server's own: no request reaches one by name. */
	if (req->params[0] && strstr(found->pattern, "/:name") &&
	    ac_pool_member(api->m, req->params[0])) {
		ac_api_fail(resp, 404, "no such sandbox: '%s'", req->params[0]);
		goto out;
	}
	found->fn(api, req, resp);
out:
	free(work);
	free(path);
}
