/* Unit tests for the HTTP API's router (src/api/router.c and the handlers behind it), driven
 * through ac_api_handle with fake requests: routing, 405/Allow, authentication, envelopes,
 * body validation, 404 for unknown sandboxes on every per-sandbox route, the OpenAPI
 * document against the route table.
 *
 * Nothing here starts a sandbox or runs a command: the manager works on a temporary home,
 * the only sandbox is a state file (stopped, never started), and every body sent to a route
 * that would create or run something is invalid, so the request ends in validation.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agentcell/manager.h"
#include "base/io.h"
#include "base/utf8.h"
#include "base/util.h"
#include "api/http.h"
#include "mcp/mcp.h"

/* ------------------------------------------------------------------ fakes */

#define FAKE_MAX 80

typedef struct fake_req {
	ac_api_req_t r; /* first: the callbacks get &r */
	const char *hname[8], *hval[8];
	size_t nh;
	bool bare; /* no default Host and Content-Type */
	const char *qkey[FAKE_MAX], *qval[FAKE_MAX];
	size_t nq;
} fake_req_t;

static const char *fake_header(const ac_api_req_t *r, const char *name)
{
	const fake_req_t *f = (const fake_req_t *)r;
	for (size_t i = 0; i < f->nh; i++)
		if (!strcasecmp(f->hname[i], name))
			return f->hval[i];
	/* What every client of a key-less loopback server sends (see test_admit). */
	if (!f->bare && !strcasecmp(name, "Host"))
		return "127.0.0.1:18888";
	if (!f->bare && !strcasecmp(name, "Content-Type"))
		return "application/json";
	return NULL;
}

static size_t fake_query_all(const ac_api_req_t *r, const char *key, const char **vals, size_t max)
{
	const fake_req_t *f = (const fake_req_t *)r;
	size_t n = 0;
	for (size_t i = 0; i < f->nq; i++) {
		if (strcmp(f->qkey[i], key))
			continue;
		if (n < max)
			vals[n] = f->qval[i];
		n++;
	}
	return n;
}

static void fake_init(fake_req_t *f, const char *method, const char *path, const char *body)
{
	memset(f, 0, sizeof(*f));
	f->r.method = method;
	f->r.path = path;
	f->r.body = body ? body : "";
	f->r.body_len = body ? strlen(body) : 0;
	f->r.header = fake_header;
	f->r.query_all = fake_query_all;
}

static void fake_header_add(fake_req_t *f, const char *name, const char *value)
{
	assert_true(f->nh < 8);
	f->hname[f->nh] = name;
	f->hval[f->nh++] = value;
}

static void fake_query_add(fake_req_t *f, const char *key, const char *value)
{
	assert_true(f->nq < FAKE_MAX);
	f->qkey[f->nq] = key;
	f->qval[f->nq++] = value;
}

/* ------------------------------------------------------------------ fixture */

typedef struct fixture {
	char home[64];
	ac_manager_t *m;
	ac_api_t api;
	char box_uuid[40];
	/* the last answer */
	ac_api_resp_t resp;
	json_t *j;
} fixture_t;

static fixture_t *F;

/* A sandbox that exists only as a state file: stopped, never started. */
static void make_box(fixture_t *f, const char *name)
{
	ac_sandbox_opts_t o = {0};
	json_t *st = NULL;
	ac_error_t *e = NULL;
	char *labels[] = {"team=ml", "tier=dev", NULL};
	o.labels = labels;
	if (ac_manager_build_state(f->m, name, &o, &st, &e) < 0 ||
	    ac_store_create(ac_manager_store(f->m), st, &e) < 0)
		fail_msg("cannot make sandbox %s: %s", name, e ? e->msg : "?");
	json_decref(st);
	json_t *info = NULL;
	assert_int_equal(ac_manager_info(f->m, name, &info, &e), 0);
	snprintf(f->box_uuid, sizeof(f->box_uuid), "%s", ac_state_str(info, "uuid", ""));
	assert_int_equal(strlen(f->box_uuid), 36);
	json_decref(info);
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/agentcell-test-api.XXXXXX");
	if (!f || !mkdtemp(f->home))
		return -1;
	ac_error_t *e = NULL;
	if (ac_manager_open(f->home, &f->m, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e ? e->msg : "?");
		ac_error_free(e);
		return -1;
	}
	f->api.m = f->m;
	f->api.batch_parallel = 2;
	make_box(f, "box");
	F = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	ac_api_resp_clear(&f->resp);
	free(f->resp.session_id);
	json_decref(f->j);
	/* Whatever a test made by mistake goes too (only state files are expected). */
	json_t *all = NULL;
	if (ac_manager_list(f->m, &all, NULL) == 0) {
		size_t i;
		json_t *st;
		json_array_foreach(all, i, st)
		{
			const char *n = ac_state_str(st, "name", "");
			if (strcmp(n, "box"))
				fprintf(stderr, "teardown: unexpected sandbox '%s' removed\n", n);
			if (strcmp(n, "box") && ac_manager_remove(f->m, n, NULL) < 0)
				fprintf(stderr, "teardown: cannot remove '%s'\n", n);
		}
	}
	json_decref(all);
	ac_manager_free(f->m);
	ac_rm_rf_at(AT_FDCWD, f->home, NULL);
	free(f);
	F = NULL;
	return 0;
}

/* Checks the envelope of the last answer (the parsed body goes to F->j). */
static void check_envelope(const char *method, const char *path)
{
	ac_api_resp_t *r = &F->resp;
	json_decref(F->j);
	F->j = NULL;
	assert_true(r->status >= 200 && r->status <= 599);
	if (r->stream.fn) {
		assert_null(r->body);
		assert_string_equal(r->content_type, "text/event-stream");
		assert_int_equal(r->status, 200);
		return;
	}
	if (r->status == 200 && !strcmp(path, "/openapi.json"))
		return;
	if (r->status == 200 && !strcmp(path, "/metrics")) {
		assert_non_null(strstr(r->content_type, "text/plain"));
		return;
	}
	assert_non_null(r->body);
	assert_int_equal(strlen(r->body), r->len);
	assert_string_equal(r->content_type, "application/json");
	json_error_t je;
	F->j = json_loadb(r->body, r->len, 0, &je);
	if (!F->j)
		fail_msg("%s %s: %d: body is not JSON (%s): %s", method, path, r->status, je.text,
			 r->body);
	assert_true(json_is_object(F->j));
	json_t *succ = json_object_get(F->j, "success");
	assert_true(json_is_boolean(succ));
	if (r->status < 300) {
		assert_true(json_is_true(succ));
		assert_non_null(json_object_get(F->j, "data"));
		assert_int_equal(json_object_size(F->j), 2);
	} else {
		assert_true(json_is_false(succ));
		assert_true(json_is_string(json_object_get(F->j, "error")));
		assert_true(ac_utf8_valid(json_string_value(json_object_get(F->j, "error")),
					  json_string_length(json_object_get(F->j, "error"))));
		/* Only a command failure (409) carries more than the message. */
		if (json_object_size(F->j) != 2) {
			assert_int_equal(r->status, 409);
			assert_true(json_is_integer(json_object_get(F->j, "exit_code")));
			assert_true(json_is_string(json_object_get(F->j, "output")));
		}
	}
	if (r->status == 405)
		assert_true(r->allow[0] != '\0');
}

static ac_api_resp_t *call_req(fake_req_t *q)
{
	ac_api_resp_clear(&F->resp);
	free(F->resp.session_id);
	memset(&F->resp, 0, sizeof(F->resp));
	ac_api_handle(&F->api, &q->r, &F->resp);
	check_envelope(q->r.method, q->r.path);
	return &F->resp;
}

static ac_api_resp_t *call(const char *method, const char *path, const char *body)
{
	fake_req_t q;
	fake_init(&q, method, path, body);
	return call_req(&q);
}

static const char *err_msg(void)
{
	return json_string_value(json_object_get(F->j, "error"));
}

static json_t *data(void)
{
	return json_object_get(F->j, "data");
}

/* The answer has this status and, for an error, a message containing want (NULL: any). */
static void expect_at(int line, int st, const char *want)
{
	const char *m = err_msg();
	if (F->resp.status != st || (want && (!m || !strstr(m, want))))
		fail_msg("line %d: expected %d '%s', got %d: %s", line, st, want ? want : "",
			 F->resp.status, F->resp.body ? F->resp.body : "(stream)");
}
#define expect(st, want) expect_at(__LINE__, (st), (want))

#define EXPECT_CALL(st, want, method, path, body)                                                  \
	do {                                                                                       \
		call((method), (path), (body));                                                    \
		expect((st), (want));                                                              \
	} while (0)

/* A concrete path for a route pattern: ":name" -> name, ":uuid" -> a uuid, ":id" -> a
 * command id, "*" -> a file path. */
static void concrete(const char *pattern, const char *name, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = pattern; *p && o + 64 < len;) {
		if (p[0] == '/' && p[1] == ':') {
			const char *end = strchrnul(p + 1, '/');
			const char *v = !strncmp(p + 2, "name", 4) ? name
					: !strncmp(p + 2, "uuid", 4)
					    ? "0190e3a4-7b5c-7d2e-9f10-123456789abc"
					    : "0123456789ab";
			o += (size_t)snprintf(out + o, len - o, "/%s", v);
			p = end;
		} else if (p[0] == '/' && p[1] == '*') {
			o += (size_t)snprintf(out + o, len - o, "/workspace/src/main.c");
			p += 2;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

/* ------------------------------------------------------------------ routing */

static void test_every_route_reaches_its_handler(void **state)
{
	const char *method, *pattern;
	bool open;
	size_t n = 0;
	for (size_t i = 0; ac_api_route_at(i, &method, &pattern, &open); i++, n++) {
		char path[256];
		concrete(pattern, "ghost", path, sizeof(path));
		call(method, path, NULL);
		if (F->resp.status == 405 ||
		    (F->resp.status == 404 && strstr(err_msg(), "no such endpoint")))
			fail_msg("%s %s (%s) did not reach its handler: %d %s", method, path,
				 pattern, F->resp.status, F->resp.body);
		/* Nothing ran: an empty body is refused, an unknown sandbox is a 404. */
		assert_true(F->resp.status != 201);
		/* GET routes answer HEAD too. */
		if (!strcmp(method, "GET")) {
			call("HEAD", path, NULL);
			assert_int_not_equal(F->resp.status, 405);
			if (F->resp.status == 404)
				assert_null(strstr(err_msg(), "no such endpoint"));
		}
	}
	assert_true(n >= 35);
}

static void test_route_parameters(void **state)
{
	/* ":name" is one segment, validated by the router. */
	EXPECT_CALL(400, "invalid sandbox name 'bad.name'", "GET", "/sandboxes/bad.name", NULL);
	EXPECT_CALL(400, "invalid sandbox name '-x'", "POST", "/sandboxes/-x/stop", NULL);
	EXPECT_CALL(400, "invalid sandbox name", "GET",
		    "/sandboxes/a234567890123456789012345678901234567890123456789012345678901234",
		    NULL);
	EXPECT_CALL(404, "ghost", "GET", "/sandboxes/ghost", NULL);
	/* "*" keeps the rest of the path, slashes included. */
	EXPECT_CALL(400, "path traversal not allowed: a/b/../../c", "GET",
		    "/sandboxes/ghost/files/a/b/../../c", NULL);
	EXPECT_CALL(403, "cannot access system path: /proc/1/environ", "GET",
		    "/sandboxes/ghost/files//proc/./1//environ", NULL);
	EXPECT_CALL(403, "/sys/kernel", "DELETE", "/sandboxes/ghost/files/sys/kernel/", NULL);
	/* A trailing slash of a file path is the file path's. */
	EXPECT_CALL(404, "ghost", "GET", "/sandboxes/ghost/files/etc/", NULL);
	/* ":id" of a detached command, checked by the handler. */
	EXPECT_CALL(400, "invalid command id 'nothex'", "GET",
		    "/sandboxes/box/exec/detached/nothex", NULL);
	EXPECT_CALL(404, "0123456789ab", "GET", "/sandboxes/box/exec/detached/0123456789ab", NULL);
	EXPECT_CALL(400, "invalid sandbox UUID 'nope'", "GET", "/sandboxes/by-uuid/nope", NULL);
	/* by-uuid is a route of its own, not a sandbox named by-uuid */
	call("GET", "/sandboxes/by-uuid/0190e3a4-7b5c-7d2e-9f10-123456789abc", NULL);
	expect(404, "0190e3a4-7b5c-7d2e-9f10-123456789abc");
}

static void test_unknown_paths_404(void **state)
{
	static const char *const paths[] = {"/",
					    "",
					    "nothing",
					    "/nope",
					    "/healthz",
					    "/health/x",
					    "//health",
					    "/sandboxes/x/nope",
					    "/sandboxes/x/exec/detached/0123456789ab/logs/more",
					    "/sandboxes/x/files",
					    "/run/x",
					    "/sandboxes//start",
					    "/sandboxes/x//exec",
					    "/SANDBOXES",
					    "/mcp/x",
					    "/openapi",
					    "/audit/x/y",
					    "/gc//"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(paths); i++) {
		call("GET", paths[i], NULL);
		if (!strcmp(paths[i], "/sandboxes/x/files")) {
			expect(405, NULL); /* POST only */
			assert_string_equal(F->resp.allow, "POST");
		} else {
			expect(404, "no such endpoint");
			assert_string_equal(F->resp.allow, "");
		}
	}
}

static void test_trailing_slash(void **state)
{
	EXPECT_CALL(200, NULL, "GET", "/health/", NULL);
	assert_string_equal(json_string_value(data()), "ok");
	EXPECT_CALL(200, NULL, "GET", "/sandboxes/", NULL);
	assert_true(json_is_array(data()));
	EXPECT_CALL(400, "request body required", "POST", "/run/", NULL);
	EXPECT_CALL(200, NULL, "POST", "/gc/", NULL);
	EXPECT_CALL(200, NULL, "GET", "/audit/", NULL);
	/* Only one slash is forgiven. */
	EXPECT_CALL(404, "no such endpoint", "GET", "/health//", NULL);
}

/* The methods the table has for a pattern, as the router's Allow header lists them. */
static void allow_of(const char *pattern, char *out, size_t len)
{
	const char *method, *pat;
	bool open;
	out[0] = '\0';
	for (size_t i = 0; ac_api_route_at(i, &method, &pat, &open); i++) {
		if (strcmp(pat, pattern) || strstr(out, method))
			continue;
		size_t l = strlen(out);
		snprintf(out + l, len - l, "%s%s", l ? ", " : "", method);
	}
}

static void test_method_not_allowed(void **state)
{
	const char *method, *pattern;
	bool open;
	for (size_t i = 0; ac_api_route_at(i, &method, &pattern, &open); i++) {
		char path[256], want[128];
		concrete(pattern, "ghost", path, sizeof(path));
		allow_of(pattern, want, sizeof(want));
		call("PROPFIND", path, NULL);
		expect(405, "method PROPFIND is not allowed");
		assert_string_equal(F->resp.allow, want);
	}
	EXPECT_CALL(405, NULL, "GET", "/run", NULL);
	assert_string_equal(F->resp.allow, "POST");
	EXPECT_CALL(405, NULL, "HEAD", "/batch/run", NULL);
	assert_string_equal(F->resp.allow, "POST");
	EXPECT_CALL(405, NULL, "PUT", "/sandboxes", NULL);
	assert_string_equal(F->resp.allow, "GET, POST");
	EXPECT_CALL(405, NULL, "POST", "/sandboxes/box", NULL);
	assert_string_equal(F->resp.allow, "GET, PATCH, DELETE");
	EXPECT_CALL(405, NULL, "POST", "/sandboxes/box/files/etc/hosts", NULL);
	assert_string_equal(F->resp.allow, "GET, PUT, DELETE");
	EXPECT_CALL(405, NULL, "GET", "/sandboxes/box/exec", NULL);
	assert_string_equal(F->resp.allow, "POST");
	EXPECT_CALL(405, NULL, "PUT", "/mcp", NULL);
	assert_string_equal(F->resp.allow, "POST, GET, DELETE");
	EXPECT_CALL(405, NULL, "DELETE", "/health", NULL);
	assert_string_equal(F->resp.allow, "GET");
	/* Method names are case-sensitive (RFC 9110). */
	EXPECT_CALL(405, NULL, "get", "/health", NULL);
}

/* ------------------------------------------------------------------ authentication */

static void test_auth(void **state)
{
	char *keys[] = {"k1-secret", "second-key", NULL};
	F->api.keys = keys;
	fake_req_t q;

	/* Open routes need no key. */
	EXPECT_CALL(200, NULL, "GET", "/health", NULL);
	call("GET", "/openapi.json", NULL);
	assert_int_equal(F->resp.status, 200);
	call("GET", "/metrics", NULL);
	assert_int_equal(F->resp.status, 200);
	/* ... but every other route does, whatever it would answer. */
	const char *method, *pattern;
	bool open;
	for (size_t i = 0; ac_api_route_at(i, &method, &pattern, &open); i++) {
		char path[256];
		concrete(pattern, "ghost", path, sizeof(path));
		call(method, path, "{not json");
		if (open)
			assert_int_not_equal(F->resp.status, 401);
		else
			expect(401, "Missing Authorization header");
	}
	static const char *const bad_format[] = {
	    "k1-secret", "Basic azEtc2VjcmV0", "Bearer", "Bearerk1-secret", "", "Token k1-secret"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad_format); i++) {
		fake_init(&q, "GET", "/sandboxes", NULL);
		fake_header_add(&q, "Authorization", bad_format[i]);
		call_req(&q);
		expect(401, "Invalid authorization format. Use: Bearer <api_key>");
	}
	static const char *const bad_key[] = {
	    "Bearer ",		 "Bearer k1-secre",   "Bearer k1-secretX",   "Bearer K1-SECRET",
	    "Bearer  k1-secret", "Bearer k1-secret ", "Bearer second-key\n", "Bearer x"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad_key); i++) {
		fake_init(&q, "GET", "/sandboxes", NULL);
		fake_header_add(&q, "Authorization", bad_key[i]);
		call_req(&q);
		expect(401, "Invalid API key");
		assert_string_equal(err_msg(), "Invalid API key");
	}
	static const char *const good[] = {"Bearer k1-secret", "Bearer second-key",
					   "bearer second-key", "BEARER k1-secret"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(good); i++) {
		fake_init(&q, "GET", "/sandboxes", NULL);
		fake_header_add(&q, "Authorization", good[i]);
		call_req(&q);
		expect(200, NULL);
	}
	/* The exact messages of agentkernel. */
	call("GET", "/sandboxes", NULL);
	assert_string_equal(err_msg(), "Missing Authorization header");
	fake_init(&q, "GET", "/sandboxes", NULL);
	fake_header_add(&q, "authorization", "Basic x");
	call_req(&q);
	assert_string_equal(err_msg(), "Invalid authorization format. Use: Bearer <api_key>");
	/* Authentication comes before validation: nothing about the body leaks. */
	EXPECT_CALL(401, "Missing Authorization header", "POST", "/sandboxes", "{\"name\":1}");
	/* With a key, the request goes on to validation. */
	fake_init(&q, "POST", "/sandboxes", "{\"name\":1}");
	fake_header_add(&q, "Authorization", "Bearer k1-secret");
	call_req(&q);
	expect(400, "'name' must be a string");
	/* No keys: no authentication. */
	char *none[] = {NULL};
	F->api.keys = none;
	EXPECT_CALL(200, NULL, "GET", "/sandboxes", NULL);
	F->api.keys = NULL;
	EXPECT_CALL(200, NULL, "GET", "/sandboxes", NULL);
}

static void test_key_compare(void **state)
{
	char *one[] = {"abc", NULL};
	char *two[] = {"abc", "0123456789abcdef", NULL};
	char *none[] = {NULL};
	assert_true(ac_api_key_ok(one, "abc"));
	assert_false(ac_api_key_ok(one, "ab"));
	assert_false(ac_api_key_ok(one, "a"));
	assert_false(ac_api_key_ok(one, ""));
	assert_false(ac_api_key_ok(one, "abcd"));
	assert_false(ac_api_key_ok(one, "abC"));
	assert_false(ac_api_key_ok(one, "xbc"));
	assert_false(ac_api_key_ok(one, "abc\n"));
	assert_true(ac_api_key_ok(two, "abc"));
	assert_true(ac_api_key_ok(two, "0123456789abcdef"));
	assert_false(ac_api_key_ok(two, "0123456789abcde"));
	assert_false(ac_api_key_ok(two, "0123456789abcdefabc"));
	assert_false(ac_api_key_ok(two, "abc0123456789abcdef"));
	assert_false(ac_api_key_ok(none, ""));
	assert_false(ac_api_key_ok(none, "abc"));
	assert_false(ac_api_key_ok(NULL, ""));
	assert_false(ac_api_key_ok(NULL, "abc"));
	/* Bytes above 0x7f compare as bytes. */
	char *hi[] = {"k\xc3\xa9y", NULL};
	assert_true(ac_api_key_ok(hi, "k\xc3\xa9y"));
	assert_false(ac_api_key_ok(hi, "k\xc3\xa8y"));
}

/* ------------------------------------------------------------------ envelopes */

static void test_envelopes(void **state)
{
	EXPECT_CALL(200, NULL, "GET", "/health", NULL);
	assert_string_equal(F->resp.body, "{\"success\":true,\"data\":\"ok\"}");
	EXPECT_CALL(404, NULL, "GET", "/nope", NULL);
	assert_int_equal(json_object_size(F->j), 2);

	ac_api_resp_t r = {0};
	ac_api_ok(&r, 201, json_pack("{si}", "a", 1));
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, "{\"success\":true,\"data\":{\"a\":1}}");
	assert_int_equal(r.len, strlen(r.body));
	ac_api_ok(&r, 200, NULL);
	assert_string_equal(r.body, "{\"success\":true,\"data\":null}");
	ac_api_fail(&r, 418, "teapot %d", 7);
	assert_int_equal(r.status, 418);
	assert_string_equal(r.body, "{\"success\":false,\"error\":\"teapot 7\"}");
	/* Invalid UTF-8 in a message is replaced, never an invalid JSON document. */
	ac_api_fail(&r, 400, "bad \xff\xfe byte");
	assert_string_equal(r.body,
			    "{\"success\":false,\"error\":\"bad \xef\xbf\xbd\xef\xbf\xbd byte\"}");
	/* A very long message is clipped, still JSON. */
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ac_api_fail(&r, 400, "%s", big);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	json_decref(j);
	ac_api_resp_clear(&r);
	assert_null(r.body);
	assert_int_equal(r.len, 0);
}

/* ------------------------------------------------------------------ validation */

static void test_body_parsing(void **state)
{
	EXPECT_CALL(400, "request body required: a JSON object", "POST", "/sandboxes", NULL);
	EXPECT_CALL(400, "request body required", "POST", "/sandboxes", " \r\n\t ");
	EXPECT_CALL(400, "invalid JSON in request body", "POST", "/sandboxes", "{");
	EXPECT_CALL(400, "invalid JSON in request body", "POST", "/sandboxes", "{\"name\":}");
	EXPECT_CALL(400, "invalid JSON in request body", "POST", "/sandboxes", "{} {}");
	EXPECT_CALL(400, "invalid JSON in request body", "POST", "/sandboxes",
		    "{\"name\":\"a\",\"name\":\"b\"}");
	EXPECT_CALL(400, "invalid JSON in request body", "POST", "/sandboxes", "\xff\xfe{}");
	EXPECT_CALL(400, "must be a JSON object", "POST", "/sandboxes", "[]");
	EXPECT_CALL(400, "must be a JSON object", "POST", "/sandboxes", "[{\"name\":\"x\"}]");
	/* A scalar is not even a JSON text to the parser (no JSON_DECODE_ANY). */
	EXPECT_CALL(400, NULL, "POST", "/sandboxes", "\"x\"");
	EXPECT_CALL(400, NULL, "POST", "/sandboxes", "null");
	EXPECT_CALL(400, NULL, "POST", "/sandboxes", "42");
	/* An embedded NUL in the body is malformed JSON, not a shorter body. */
	fake_req_t q;
	fake_init(&q, "POST", "/sandboxes", "{\"name\":\"a\"}\0{");
	q.r.body_len = 14;
	call_req(&q);
	expect(400, "invalid JSON");
	/* A deep nesting is refused by the parser, without a crash. */
	char deep[4200];
	memset(deep, '[', 2100);
	memset(deep + 2100, ']', 2099);
	deep[4199] = '\0';
	char body[4300];
	snprintf(body, sizeof(body), "{\"name\":%s}", deep);
	call("POST", "/sandboxes", body);
	assert_int_equal(F->resp.status, 400);
	/* An optional body may be empty. */
	EXPECT_CALL(200, NULL, "POST", "/lifecycle/reconcile", NULL);
	assert_true(json_is_array(json_object_get(data(), "decisions")));
	assert_true(json_is_false(json_object_get(data(), "dry_run")));
	EXPECT_CALL(200, NULL, "POST", "/lifecycle/reconcile", "{\"dry_run\":true}");
	assert_true(json_is_true(json_object_get(data(), "dry_run")));
	EXPECT_CALL(400, "'dry_run' must be true or false", "POST", "/lifecycle/reconcile",
		    "{\"dry_run\":1}");
	EXPECT_CALL(400, "unknown field 'dry'", "POST", "/lifecycle/reconcile", "{\"dry\":true}");
	EXPECT_CALL(400, "invalid JSON", "POST", "/lifecycle/reconcile", "{");
}

/* Bodies of POST /sandboxes. Each is invalid somewhere: nothing is ever created. */
static void test_create_validation(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
	    {"{}", "'name' is required"},
	    {"{\"name\":null}", "'name' is required"},
	    {"{\"name\":5}", "'name' must be a string"},
	    {"{\"name\":\"x y\"}", "invalid sandbox name 'x y'"},
	    {"{\"name\":\"\"}", "invalid sandbox name"},
	    {"{\"name\":\"-a\"}", "invalid sandbox name"},
	    {"{\"name\":\"a.b\"}", "invalid sandbox name"},
	    {"{\"name\":\"ok\",\"bogus\":1}", "unknown field 'bogus'"},
	    {"{\"name\":\"ok\",\"Name\":\"x\"}", "unknown field 'Name'"},
	    {"{\"name\":\"ok\",\"volumes\":[\"/a:/b\"]}", "invalid volume '/a:/b'"},
	    {"{\"name\":\"ok\",\"volumes\":[\"v:rel\"]}", "must be an absolute path"},
	    {"{\"name\":\"ok\",\"volumes\":\"v:/a\"}", "'volumes'"},
	    {"{\"name\":\"ok\",\"ports\":[8080]}", "'ports' must be an array of strings"},
	    {"{\"name\":\"ok\",\"secrets\":{\"a\":\"b\"}}",
	     "'secrets' must be an array of strings"},
	    {"{\"name\":\"ok\",\"secrets\":[\"K\"]}", "invalid 'secrets' entry 'K'"},
	    {"{\"name\":\"ok\",\"ports\":[\"3000\"]}", "needs a host port"},
	    {"{\"name\":\"ok\",\"secret_mappings\":[]}", "'secret_mappings' must be an object"},
	    {"{\"name\":\"ok\",\"secret_mappings\":{\"K\":1}}", "'secret_mappings' entry 'K'"},
	    {"{\"name\":\"ok\",\"created_from_template\":1}", "'created_from_template' must be"},
	    {"{\"name\":\"ok\",\"placeholder_secrets\":\"yes\"}", "'placeholder_secrets' must be"},
	    {"{\"name\":\"ok\",\"backend\":\"nope\"}", "unknown backend 'nope'"},
	    {"{\"name\":\"ok\",\"template\":0}", "'template' must be a string"},
	    {"{\"name\":\"ok\",\"template\":false}", "'template' must be a string"},
	    {"{\"name\":\"ok\",\"template\":\"Bad!\"}", "invalid template name 'Bad!'"},
	    /* unsupported but empty: accepted (the name then fails) */
	    {"{\"name\":\"bad!\",\"volumes\":[],\"ports\":null,\"template\":\"\",\"secrets\":{},"
	     "\"secret_files\":[],\"source_url\":null,\"source_ref\":\"\"}",
	     "invalid sandbox name 'bad!'"},
	    {"{\"name\":\"ok\",\"image\":5}", "'image' must be a string"},
	    {"{\"name\":\"ok\",\"profile\":"
	     "\"0123456789012345678901234567890123456789012345678901234567"
	     "89012345\"}",
	     "'profile' is longer than 64 bytes"},
	    {"{\"name\":\"ok\",\"vcpus\":\"2\"}", "'vcpus' must be a number"},
	    {"{\"name\":\"ok\",\"vcpus\":0}", "'vcpus' must be between 0.01 and 1024"},
	    {"{\"name\":\"ok\",\"cpus\":1025}", "'cpus' must be between"},
	    {"{\"name\":\"ok\",\"memory_mb\":15}",
	     "'memory_mb' must be between 16 and 1.04858e+06"},
	    {"{\"name\":\"ok\",\"memory_mb\":16.5}", "'memory_mb' must be an integer"},
	    {"{\"name\":\"ok\",\"memory_mb\":1e300}", "'memory_mb' must be between"},
	    {"{\"name\":\"ok\",\"memory_mb\":-1}", "'memory_mb' must be between"},
	    {"{\"name\":\"ok\",\"memory_mb\":true}", "'memory_mb' must be an integer"},
	    {"{\"name\":\"ok\",\"pids\":7}", "'pids' must be between"},
	    {"{\"name\":\"ok\",\"disk_mb\":0}", "'disk_mb' must be between 16 and"},
	    {"{\"name\":\"ok\",\"disk_mb\":-5}", "'disk_mb' must be between"},
	    {"{\"name\":\"ok\",\"disk_mb\":1e300}", "'disk_mb' must be between"},
	    {"{\"name\":\"ok\",\"disk_mb\":64.5}", "'disk_mb' must be an integer"},
	    {"{\"name\":\"ok\",\"disk_mb\":\"unlimited\"}", "'disk_mb' must be"},
	    {"{\"name\":\"ok\",\"read_only\":\"yes\"}", "'read_only' must be true or false"},
	    {"{\"name\":\"ok\",\"network\":1}", "'network' must be true or false"},
	    {"{\"name\":\"ok\",\"env\":\"A=1\"}", "'env' must be an array of strings"},
	    {"{\"name\":\"ok\",\"env\":[\"NOEQ\"]}", "'env'[0] must look like KEY=VALUE"},
	    {"{\"name\":\"ok\",\"env\":[\"=v\"]}", "'env'[0] must look like KEY=VALUE"},
	    {"{\"name\":\"ok\",\"env\":[1]}", "'env'[0] must be a string"},
	    {"{\"name\":\"ok\",\"env\":{\"K\":1}}", "'env': 'K' must be a string"},
	    {"{\"name\":\"ok\",\"env\":{\"\":\"v\"}}", "'env'"},
	    {"{\"name\":\"ok\",\"env\":{\"A=B\":\"v\"}}", "'env': 'A=B'"},
	    {"{\"name\":\"ok\",\"labels\":[]}", "'labels' must be an object of strings"},
	    {"{\"name\":\"ok\",\"labels\":{\"k\":1}}", "label 'k' must be a string"},
	    {"{\"name\":\"ok\",\"ttl\":0}", "'ttl' must be a positive number of seconds"},
	    {"{\"name\":\"ok\",\"ttl\":-5}", "'ttl' must be a positive number of seconds"},
	    {"{\"name\":\"ok\",\"ttl\":\"1w\"}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":\"\"}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":\"-1h\"}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":\"h\"}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":\"99999999999d\"}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":1.5}", "'ttl' must be a duration"},
	    {"{\"name\":\"ok\",\"ttl\":3153600001}", "'ttl' must be a positive number"},
	    {"{\"name\":\"ok\",\"lifecycle\":5}", "'lifecycle' must be an object"},
	    {"{\"name\":\"ok\",\"lifecycle\":{\"auto_stop\":\"1h\"}}", "unknown field 'auto_stop'"},
	    {"{\"name\":\"ok\",\"lifecycle\":{\"auto_stop_after\":\"5q\"}}",
	     "'auto_stop_after' must be a duration"},
	    {"{\"name\":\"ok\",\"lifecycle\":{\"auto_delete_after_seconds\":0}}",
	     "'auto_delete_after_seconds' must be a positive"},
	    {"{\"name\":\"ok\",\"init_script\":7}", "'init_script' must be a string"},
	    {"{\"name\":\"ok\",\"agent\":\"nope\"}", "unknown agent 'nope'"},
	    {"{\"name\":\"ok\",\"agent\":3}", "'agent' must be a string"},
	    {"{\"name\":\"ok\",\"description\":[]}", "'description' must be a string"},
	    /* every field valid but the name: the options all passed */
	    {"{\"name\":\"no way\",\"image\":\"host\",\"profile\":\"moderate\",\"vcpus\":1.5,"
	     "\"cpus\":2,\"memory_mb\":256,\"pids\":64,\"disk_mb\":64,\"labels\":{\"team\":\"ml\"},"
	     "\"description\":\"d\",\"lifecycle\":{\"auto_stop_after\":\"30m\","
	     "\"auto_archive_after_seconds\":7200,\"auto_delete_after\":null},\"ttl\":\"1h\","
	     "\"init_script\":\"true\",\"agent\":\"claude\",\"env\":{\"A\":\"1\"},"
	     "\"read_only\":true,\"network\":false}",
	     "invalid sandbox name 'no way'"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		call("POST", "/sandboxes", cases[i].body);
		if (F->resp.status != 400 || !strstr(err_msg(), cases[i].want))
			fail_msg("case %zu %s: expected 400 '%s', got %d %s", i, cases[i].body,
				 cases[i].want, F->resp.status, F->resp.body);
	}
	/* agentkernel's fields asking for what agentcell cannot do: 501 naming them. */
	static const struct {
		const char *body, *want;
	} no[] = {
	    {"{\"name\":\"ok\",\"source_url\":\"https://x\"}", "'source_url' is not supported"},
	    {"{\"name\":\"ok\",\"source_ref\":\"main\"}", "'source_ref' is not supported"},
	    {"{\"name\":\"ok\",\"secret_files\":[\"K\"]}", "'secret_files' is not supported"},
	    {"{\"name\":\"ok\",\"secrets\":[\"K=v:h.com\"]}", "a value in the request"},
	    {"{\"name\":\"ok\",\"ports\":[\"53:53/udp\"]}", "only TCP ports"},
	    {"{\"name\":\"ok\",\"network\":{\"subnet\":\"10.0.0.0/8\"}}", "'network.subnet'"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(no); i++) {
		call("POST", "/sandboxes", no[i].body);
		if (F->resp.status != 501 || !strstr(err_msg(), no[i].want))
			fail_msg("case %s: expected 501 '%s', got %d %s", no[i].body, no[i].want,
				 F->resp.status, F->resp.body);
	}
	/* Limits: 65 labels, 257 environment entries. */
	char body[32768];
	size_t o = (size_t)snprintf(body, sizeof(body), "{\"name\":\"ok\",\"labels\":{");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"k%d\":\"v\"", i ? "," : "",
				      i);
	snprintf(body + o, sizeof(body) - o, "}}");
	EXPECT_CALL(400, "at most 64 labels", "POST", "/sandboxes", body);
	o = (size_t)snprintf(body, sizeof(body), "{\"name\":\"ok\",\"env\":[");
	for (int i = 0; i < 257; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"K%d=v\"", i ? "," : "", i);
	snprintf(body + o, sizeof(body) - o, "]}");
	EXPECT_CALL(400, "'env' has more than 256 items", "POST", "/sandboxes", body);
	/* Nothing was created by any of these. */
	json_t *all = NULL;
	assert_int_equal(ac_manager_list(F->m, &all, NULL), 0);
	assert_int_equal(json_array_size(all), 1);
	json_decref(all);
}

/* Bodies of /run, /run/stream, /batch/run and exec: each invalid, nothing runs. */
static void test_command_validation(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
	    {"{}", "'command' is required"},
	    {"{\"command\":null}", "'command' is required"},
	    {"{\"command\":\"ls\"}", "'command' must be an array of strings"},
	    {"{\"command\":[]}", "'command' must be a non-empty array"},
	    {"{\"command\":[\"\"]}", "'command' must be a non-empty array"},
	    {"{\"command\":[\"\",\"x\"]}", "names a program"},
	    {"{\"command\":[\"ls\",1]}", "'command'[1] must be a string"},
	    {"{\"command\":[\"ls\"],\"timeout\":0}", "'timeout' must be between"},
	    {"{\"command\":[\"ls\"],\"timeout\":604801}", "'timeout' must be between"},
	    {"{\"command\":[\"ls\"],\"timeout\":\"5\"}", "'timeout' must be a number"},
	    {"{\"command\":[\"ls\"],\"workdir\":\"rel\"}", "'workdir' must be an absolute path"},
	    {"{\"command\":[\"ls\"],\"cwd\":\"\"}", "'workdir' must be an absolute path"},
	    {"{\"command\":[\"ls\"],\"workdir\":7}", "'workdir' must be a string"},
	    {"{\"command\":[\"ls\"],\"full\":\"yes\"}", "'full' must be true or false"},
	    {"{\"command\":[\"ls\"],\"env\":[\"X\"]}", "'env'[0] must look like KEY=VALUE"},
	    {"{\"command\":[\"ls\"],\"whatever\":1}", "unknown field 'whatever'"},
	    {"{\"command\":[\"ls\"],\"timeout_ms\":0}", "'timeout_ms' must be between"},
	    {"{\"command\":[\"ls\"],\"timeout_ms\":1.5}", "'timeout_ms' must be"},
	    {"{\"command\":[\"ls\"],\"timeout_ms\":5,\"timeout\":1}", "not both"},
	};
	static const char *const paths[] = {"/run", "/run/stream", "/sandboxes/ghost/exec",
					    "/sandboxes/ghost/exec/stream",
					    "/sandboxes/ghost/exec/detach"};
	for (size_t p = 0; p < AC_ARRAY_SIZE(paths); p++)
		for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
			/* agentkernel's /run/stream answers that one with an error event. */
			if (!strcmp(paths[p], "/run/stream") &&
			    !strcmp(cases[i].body, "{\"command\":[]}"))
				continue;
			call("POST", paths[p], cases[i].body);
			if (F->resp.status != 400 || !strstr(err_msg(), cases[i].want))
				fail_msg("%s %s: expected 400 '%s', got %d %s", paths[p],
					 cases[i].body, cases[i].want, F->resp.status,
					 F->resp.body ? F->resp.body : "(stream)");
		}
	/* Fields of one kind only. */
	EXPECT_CALL(400, "unknown field 'sudo'", "POST", "/run",
		    "{\"command\":[\"ls\"],\"sudo\":true}");
	EXPECT_CALL(400, "unknown field 'labels'", "POST", "/run",
		    "{\"command\":[\"ls\"],\"labels\":{}}");
	EXPECT_CALL(400, "unknown field 'image'", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"image\":\"host\"}");
	EXPECT_CALL(400, "invalid volume '/a'", "POST", "/run",
		    "{\"command\":[\"ls\"],\"volumes\":[\"/a\"]}");
	EXPECT_CALL(400, "'memory_mb' must be between", "POST", "/run",
		    "{\"command\":[\"ls\"],\"volumes\":[],\"memory_mb\":1}");
	EXPECT_CALL(400, "'disk_mb' must be between", "POST", "/run",
		    "{\"command\":[\"ls\"],\"disk_mb\":0}");
	EXPECT_CALL(400, "'sudo' and 'user' contradict each other", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"sudo\":true,\"user\":\"bob\"}");
	EXPECT_CALL(400, "'user' must be a string", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"user\":0}");
	/* sudo: 403 unless the operator allowed it ([api] allow_sudo_exec), before anything. */
	EXPECT_CALL(403, "allow_sudo_exec", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"sudo\":true}");
	EXPECT_CALL(403, "allow_sudo_exec", "POST", "/sandboxes/ghost/exec/stream",
		    "{\"command\":[\"ls\"],\"sudo\":true}");
	EXPECT_CALL(403, "allow_sudo_exec", "POST", "/sandboxes/ghost/exec/detach",
		    "{\"command\":[\"ls\"],\"sudo\":true}");
	F->api.allow_sudo_exec = true;
	/* Valid bodies on an unknown sandbox: 404, before anything runs or streams. */
	static const char *const ok[] = {
	    "{\"command\":[\"ls\"]}",
	    ("{\"command\":[\"ls\",\"-l\"],\"env\":[\"A=1\"],\"workdir\":\"/tmp\",\"sudo\":true,"
	     "\"user\":\"root\",\"timeout\":1.5,\"full\":true}"),
	    "{\"command\":[\"ls\"],\"env\":{\"A\":\"1\"},\"cwd\":\"/\",\"user\":\"1000\"}"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++) {
		EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/exec", ok[i]);
		EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/exec/stream", ok[i]);
		EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/exec/detach", ok[i]);
	}
	F->api.allow_sudo_exec = false;
	/* /run/stream with an empty command: 200 and one SSE error event (agentkernel's). */
	call("POST", "/run/stream", "{\"command\":[]}");
	assert_int_equal(F->resp.status, 200);
	assert_string_equal(F->resp.content_type, "text/event-stream");
	assert_non_null(F->resp.stream.fn);
	{
		int pfd[2];
		char buf[256] = "";
		assert_int_equal(pipe(pfd), 0);
		F->resp.stream.fn(F->resp.stream.ctx, pfd[1]);
		close(pfd[1]);
		ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
		close(pfd[0]);
		assert_true(n > 0);
		assert_string_equal(
		    buf, "event: error\ndata: {\"message\":\"command is required\"}\n\n");
	}
	ac_api_resp_clear(&F->resp);
	/* A stopped sandbox: 409 before a stream starts or a record is made. */
	EXPECT_CALL(409, "not running", "POST", "/sandboxes/box/exec", ok[0]);
	EXPECT_CALL(409, "not running", "POST", "/sandboxes/box/exec/stream", ok[0]);
	EXPECT_CALL(409, "not running", "POST", "/sandboxes/box/exec/detach", ok[0]);
	EXPECT_CALL(200, NULL, "GET", "/sandboxes/box/exec/detached", NULL);
	assert_int_equal(json_array_size(data()), 0);
	/* A valid /run/stream becomes a stream (not started here: its function is never
	 * called, and clearing the answer frees it). */
	call("POST", "/run/stream", "{\"command\":[\"true\"],\"fast\":true}");
	assert_int_equal(F->resp.status, 200);
	assert_non_null(F->resp.stream.fn);
	assert_non_null(F->resp.stream.free_fn);
	ac_api_resp_clear(&F->resp);
	assert_null(F->resp.stream.fn);

	/* /batch/run */
	EXPECT_CALL(400, "'commands' must be a non-empty array", "POST", "/batch/run", "{}");
	EXPECT_CALL(400, "'commands' must be a non-empty array", "POST", "/batch/run",
		    "{\"commands\":[]}");
	EXPECT_CALL(400, "'commands' must be a non-empty array", "POST", "/batch/run",
		    "{\"commands\":{}}");
	EXPECT_CALL(400, "'commands'[0] must be an object", "POST", "/batch/run",
		    "{\"commands\":[[\"ls\"]]}");
	EXPECT_CALL(400, "unknown field 'command'", "POST", "/batch/run", "{\"command\":[\"ls\"]}");
	/* One bad item fails the batch before any runs. */
	EXPECT_CALL(400, "'commands'[1]: 'command' must be a non-empty array", "POST", "/batch/run",
		    "{\"commands\":[{\"command\":[\"true\"]},{\"command\":[]}]}");
	EXPECT_CALL(400, "'commands'[0]: unknown field 'sudo'", "POST", "/batch/run",
		    "{\"commands\":[{\"command\":[\"true\"],\"sudo\":true}]}");
	char body[8192];
	size_t o = (size_t)snprintf(body, sizeof(body), "{\"commands\":[");
	for (int i = 0; i < 257; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{}", i ? "," : "");
	snprintf(body + o, sizeof(body) - o, "]}");
	EXPECT_CALL(400, "at most 256 commands", "POST", "/batch/run", body);
}

static void test_sandbox_routes(void **state)
{
	/* SandboxInfo */
	EXPECT_CALL(200, NULL, "GET", "/sandboxes/box", NULL);
	static const char *const fields[] = {"name",
					     "uuid",
					     "status",
					     "backend",
					     "image",
					     "vcpus",
					     "memory_mb",
					     "created_at",
					     "labels",
					     "description",
					     "last_activity_at",
					     "archived_at",
					     "archived_reason",
					     "lifecycle",
					     "expires_at"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(fields); i++)
		if (!json_object_get(data(), fields[i]))
			fail_msg("SandboxInfo lacks %s: %s", fields[i], F->resp.body);
	assert_string_equal(ac_state_str(data(), "name", ""), "box");
	assert_string_equal(ac_state_str(data(), "status", ""), "stopped");
	assert_string_equal(ac_state_str(data(), "backend", ""), "native");
	assert_string_equal(ac_state_str(json_object_get(data(), "labels"), "team", ""), "ml");
	/* by uuid, in any case */
	char path[128];
	snprintf(path, sizeof(path), "/sandboxes/by-uuid/%s", F->box_uuid);
	EXPECT_CALL(200, NULL, "GET", path, NULL);
	assert_string_equal(ac_state_str(data(), "name", ""), "box");
	for (char *c = path + 19; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	EXPECT_CALL(200, NULL, "GET", path, NULL);
	/* list and label selectors */
	fake_req_t q;
	static const struct {
		const char *sel[3];
		int status;
		size_t n;
	} sels[] = {
	    {{"team:ml"}, 200, 1},
	    {{"team=ml"}, 200, 1},
	    {{"team:ml", "tier:dev"}, 200, 1},
	    {{"team:ml", "tier:prod"}, 200, 0},
	    {{"team:"}, 200, 0},
	    {{"other:x"}, 200, 0},
	    {{"team"}, 400, 0},
	    {{":ml"}, 400, 0},
	    {{""}, 400, 0},
	    {{"bad key:v"}, 400, 0},
	    {{"k:\x01"}, 400, 0},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(sels); i++) {
		fake_init(&q, "GET", "/sandboxes", NULL);
		for (int k = 0; k < 3 && sels[i].sel[k]; k++)
			fake_query_add(&q, "label", sels[i].sel[k]);
		call_req(&q);
		if (F->resp.status != sels[i].status)
			fail_msg("selector %zu: %d %s", i, F->resp.status, F->resp.body);
		if (sels[i].status == 200)
			assert_int_equal(json_array_size(data()), sels[i].n);
		else
			expect(400, "invalid label selector");
	}
	fake_init(&q, "GET", "/sandboxes", NULL);
	for (int k = 0; k < 65; k++)
		fake_query_add(&q, "label", "a:b");
	call_req(&q);
	expect(400, "at most 64 label selectors");
	/* PATCH: validated as a whole, then applied */
	EXPECT_CALL(400, "request body required", "PATCH", "/sandboxes/box", NULL);
	EXPECT_CALL(400, "unknown field 'name'", "PATCH", "/sandboxes/box", "{\"name\":\"x\"}");
	EXPECT_CALL(400, "'description' must be a string", "PATCH", "/sandboxes/box",
		    "{\"description\":1}");
	EXPECT_CALL(400, "'lifecycle' must be an object or null", "PATCH", "/sandboxes/box",
		    "{\"lifecycle\":[]}");
	EXPECT_CALL(400, "unknown field 'auto_stop_after_seconds'", "PATCH", "/sandboxes/box",
		    "{\"lifecycle\":{\"auto_stop_after_seconds\":5}}");
	EXPECT_CALL(400, "'auto_stop_after' must be a duration", "PATCH", "/sandboxes/box",
		    "{\"lifecycle\":{\"auto_stop_after\":\"x\"}}");
	EXPECT_CALL(400, "label 'k' must be a string or null", "PATCH", "/sandboxes/box",
		    "{\"labels\":{\"k\":1}}");
	EXPECT_CALL(400, "'labels' must be an object", "PATCH", "/sandboxes/box", "{\"labels\":1}");
	EXPECT_CALL(400, NULL, "PATCH", "/sandboxes/box", "{\"labels\":{\"bad key\":\"v\"}}");
	EXPECT_CALL(404, "ghost", "PATCH", "/sandboxes/ghost", "{\"labels\":{\"k\":\"v\"}}");
	EXPECT_CALL(200, NULL, "PATCH", "/sandboxes/box",
		    "{\"labels\":{\"tier\":null,\"new\":\"yes\"},\"description\":\"hello\","
		    "\"lifecycle\":{\"auto_stop_after\":\"30m\"}}");
	json_t *labels = json_object_get(data(), "labels");
	assert_null(json_object_get(labels, "tier"));
	assert_string_equal(ac_state_str(labels, "new", ""), "yes");
	assert_string_equal(ac_state_str(data(), "description", ""), "hello");
	assert_int_equal(
	    ac_state_int(json_object_get(data(), "lifecycle"), "auto_stop_after_seconds", 0), 1800);
	EXPECT_CALL(200, NULL, "PATCH", "/sandboxes/box",
		    "{\"lifecycle\":null,\"description\":null}");
	assert_true(json_is_null(json_object_get(data(), "lifecycle")));
	assert_true(json_is_null(json_object_get(data(), "description")));
	/* extend */
	/* No body, or no 'by': an hour, agentkernel's default. */
	EXPECT_CALL(200, NULL, "POST", "/sandboxes/box/extend", NULL);
	EXPECT_CALL(200, NULL, "POST", "/sandboxes/box/extend", "{}");
	EXPECT_CALL(400, "'by' must be a duration", "POST", "/sandboxes/box/extend",
		    "{\"by\":\"1w\"}");
	EXPECT_CALL(400, "'by' must be a positive", "POST", "/sandboxes/box/extend", "{\"by\":0}");
	EXPECT_CALL(400, "unknown field 'ttl'", "POST", "/sandboxes/box/extend",
		    "{\"ttl\":\"1h\"}");
	EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/extend", "{\"by\":\"1h\"}");
	EXPECT_CALL(200, NULL, "POST", "/sandboxes/box/extend", "{\"by\":\"1h\"}");
	assert_true(json_is_string(json_object_get(data(), "expires_at")));
	assert_int_equal(json_object_size(data()), 1);
	/* resize */
	EXPECT_CALL(400, "nothing to change", "POST", "/sandboxes/box/resize", "{}");
	EXPECT_CALL(400, "'memory_mb' must be between", "POST", "/sandboxes/box/resize",
		    "{\"memory_mb\":8}");
	EXPECT_CALL(400, "'pids' must be an integer", "POST", "/sandboxes/box/resize",
		    "{\"pids\":8.5}");
	EXPECT_CALL(400, "unknown field 'swap'", "POST", "/sandboxes/box/resize", "{\"swap\":1}");
	EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/resize", "{\"pids\":100}");
	EXPECT_CALL(200, NULL, "POST", "/sandboxes/box/resize", "{\"memory_mb\":256}");
	assert_int_equal(ac_state_int(data(), "memory_mb", 0), 256);
	assert_true(json_is_false(json_object_get(data(), "applied")));
	EXPECT_CALL(200, NULL, "POST", "/sandboxes/box/resize", "{\"pids\":100}");
	assert_int_equal(ac_state_int(data(), "pids_limit", 0), 100);
	assert_int_equal(ac_state_int(data(), "memory_mb", 0), 256);
	/* logs and audit */
	EXPECT_CALL(200, NULL, "GET", "/sandboxes/box/logs", NULL);
	assert_true(json_is_array(data()));
	fake_init(&q, "GET", "/sandboxes/box/logs", NULL);
	fake_query_add(&q, "limit", "abc");
	call_req(&q);
	expect(400, "'limit' must be a whole number");
	fake_init(&q, "GET", "/audit", NULL);
	fake_query_add(&q, "limit", "1000001");
	call_req(&q);
	expect(400, "'limit'");
	fake_init(&q, "GET", "/audit", NULL);
	fake_query_add(&q, "sandbox", "bad name");
	call_req(&q);
	expect(400, "invalid sandbox name 'bad name'");
	fake_init(&q, "GET", "/audit", NULL);
	fake_query_add(&q, "limit", "1");
	fake_query_add(&q, "sandbox", "box");
	call_req(&q);
	expect(200, NULL);
	assert_true(json_array_size(data()) <= 1);
	/* gc: nothing expired (box's expiry is an hour away) */
	EXPECT_CALL(200, NULL, "POST", "/gc", NULL);
	assert_int_equal(json_array_size(json_object_get(data(), "removed")), 0);
	/* detached command ids */
	fake_init(&q, "GET", "/sandboxes/box/exec/detached/0123456789ab/logs", NULL);
	fake_query_add(&q, "stream", "both");
	call_req(&q);
	expect(400, "'stream' must be stdout or stderr");
	EXPECT_CALL(404, NULL, "GET", "/sandboxes/box/exec/detached/0123456789ab/logs", NULL);
	EXPECT_CALL(400, "invalid command id", "DELETE",
		    "/sandboxes/box/exec/detached/ABCDEF012345", NULL);
	EXPECT_CALL(400, "invalid command id", "GET", "/sandboxes/box/exec/detached/..", NULL);
	/* still there, unchanged by all of the above but for what succeeded */
	EXPECT_CALL(200, NULL, "GET", "/sandboxes/box", NULL);
}

/* Every per-sandbox route answers 404 for a sandbox that does not exist (given a body that
 * passes validation). */
static void test_unknown_sandbox_404(void **state)
{
	static const struct {
		const char *method, *sub, *body;
	} r[] = {
	    {"GET", "", NULL},
	    {"PATCH", "", "{\"description\":\"x\"}"},
	    {"DELETE", "", NULL},
	    {"POST", "/start", NULL},
	    {"POST", "/stop", NULL},
	    {"POST", "/recover", NULL},
	    {"POST", "/resize", "{\"memory_mb\":64}"},
	    {"POST", "/extend", "{\"by\":60}"},
	    {"POST", "/exec", "{\"command\":[\"true\"]}"},
	    {"POST", "/exec/stream", "{\"command\":[\"true\"]}"},
	    {"POST", "/exec/detach", "{\"command\":[\"true\"]}"},
	    {"GET", "/exec/detached", NULL},
	    {"GET", "/exec/detached/0123456789ab", NULL},
	    {"DELETE", "/exec/detached/0123456789ab", NULL},
	    {"GET", "/exec/detached/0123456789ab/logs", NULL},
	    {"POST", "/files", "{\"files\":{\"/tmp/a\":\"x\"}}"},
	    {"GET", "/files/etc/hosts", NULL},
	    {"PUT", "/files/tmp/a", "{\"content\":\"x\"}"},
	    {"PUT", "/files/tmp/b", "{\"content\":\"AAEC\",\"encoding\":\"base64\",\"mode\":384}"},
	    {"DELETE", "/files/tmp/a", NULL},
	    {"GET", "/logs", NULL},
	};
	const char *method, *pattern;
	bool open;
	size_t per_sandbox = 0;
	for (size_t i = 0; ac_api_route_at(i, &method, &pattern, &open); i++)
		per_sandbox += strstr(pattern, "/:name") != NULL;
	/* Every such route is in the list above. */
	assert_int_equal(per_sandbox, 21 - 1); /* PUT of a file: twice */
	for (size_t i = 0; i < AC_ARRAY_SIZE(r); i++) {
		char path[256];
		snprintf(path, sizeof(path), "/sandboxes/ghost%s", r[i].sub);
		call(r[i].method, path, r[i].body);
		if (F->resp.status != 404 || strstr(err_msg(), "no such endpoint"))
			fail_msg("%s %s: expected 404, got %d %s", r[i].method, path,
				 F->resp.status, F->resp.body);
	}
	/* by uuid */
	EXPECT_CALL(404, NULL, "GET", "/sandboxes/by-uuid/0190e3a4-7b5c-7d2e-9f10-123456789abc",
		    NULL);
	/* Nothing was made for the unknown sandbox. */
	assert_false(ac_store_exists(ac_manager_store(F->m), "ghost"));
	char p[256];
	snprintf(p, sizeof(p), "%s/run/ghost.exec", F->home);
	assert_int_not_equal(access(p, F_OK), 0);
}

static void test_file_paths(void **state)
{
	static const struct {
		const char *method, *sub;
		int status;
		const char *want;
	} c[] = {
	    {"GET", "..", 400, "path traversal not allowed"},
	    {"GET", "a/..", 400, "path traversal"},
	    {"GET", "a/../b", 400, "path traversal"},
	    {"GET", "/../etc/passwd", 400, "path traversal"},
	    {"GET", "a/b/..", 400, "path traversal"},
	    {"PUT", "../x", 400, "path traversal"},
	    {"DELETE", "x/../../y", 400, "path traversal"},
	    {"GET", "proc", 403, "cannot access system path: /proc"},
	    {"GET", "proc/self/environ", 403, "/proc/self/environ"},
	    {"GET", "./proc/1/root", 403, "/proc/1/root"},
	    {"GET", "//proc//", 403, "/proc"},
	    {"PUT", "sys/fs/cgroup/x", 403, "/sys/fs/cgroup/x"},
	    {"DELETE", "dev/null", 403, "/dev/null"},
	    {"GET", "dev", 403, "/dev"},
	    /* Not system paths: a name that only starts like one. */
	    {"GET", "procfs", 404, NULL},
	    {"GET", "proc.txt", 404, NULL},
	    {"GET", "devices/x", 404, NULL},
	    {"GET", "tmp/proc", 404, NULL},
	    {"GET", "...", 404, NULL},
	    {"GET", "a/.../b", 404, NULL},
	    {"GET", "..a", 404, NULL},
	    {"GET", ".", 404, NULL},
	    {"DELETE", ".", 400, "refusing to delete the sandbox's root"},
	    {"DELETE", "./", 400, "refusing to delete the sandbox's root"},
	    {"DELETE", "//", 400, "refusing to delete the sandbox's root"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(c); i++) {
		char path[256];
		snprintf(path, sizeof(path), "/sandboxes/ghost/files/%s", c[i].sub);
		call(c[i].method, path, !strcmp(c[i].method, "PUT") ? "{\"content\":\"x\"}" : NULL);
		if (F->resp.status != c[i].status || (c[i].want && !strstr(err_msg(), c[i].want)))
			fail_msg("%s %s: expected %d '%s', got %d %s", c[i].method, path,
				 c[i].status, c[i].want ? c[i].want : "", F->resp.status,
				 F->resp.body);
	}
	/* Longest path: 4096 bytes. */
	char path[4200] = "/sandboxes/ghost/files/";
	size_t o = strlen(path);
	memset(path + o, 'a', 4096);
	path[o + 4096] = '\0';
	EXPECT_CALL(404, "ghost", "GET", path, NULL);
	path[o + 4096] = 'a';
	path[o + 4097] = '\0';
	EXPECT_CALL(400, "path is longer than 4096 bytes", "GET", path, NULL);
	/* PUT bodies */
	static const struct {
		const char *body, *want;
	} put[] = {
	    {NULL, "request body required"},
	    {"{}", "'content' is required"},
	    {"{\"content\":5}", "'content' is required: a string"},
	    {"{\"content\":null}", "'content' is required"},
	    {"{\"content\":\"x\",\"encoding\":\"hex\"}", "'encoding' must be utf8 or base64"},
	    {"{\"content\":\"x\",\"encoding\":5}", "'encoding' must be a string"},
	    {"{\"content\":\"!!!\",\"encoding\":\"base64\"}", "invalid base64"},
	    {"{\"content\":\"x\",\"mode\":4096}", "'mode' must be between 0 and 4095"},
	    {"{\"content\":\"x\",\"mode\":-1}", "'mode' must be between"},
	    {"{\"content\":\"x\",\"mode\":\"644\"}", "'mode' must be an integer"},
	    {"{\"content\":\"x\",\"path\":\"/a\"}", "unknown field 'path'"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(put); i++) {
		call("PUT", "/sandboxes/ghost/files/tmp/a", put[i].body);
		if (F->resp.status != 400 || !strstr(err_msg(), put[i].want))
			fail_msg("PUT %s: expected 400 '%s', got %d %s", put[i].body, put[i].want,
				 F->resp.status, F->resp.body);
	}
	EXPECT_CALL(404, "ghost", "PUT", "/sandboxes/ghost/files/tmp/a",
		    "{\"content\":\"bin\\u00ff\",\"encoding\":\"utf-8\",\"mode\":493}");
	/* Batch writes: every path checked before anything is written. */
	static const struct {
		const char *body;
		int status;
		const char *want;
	} batch[] = {
	    {NULL, 400, "request body required"},
	    {"{}", 400, "'files' must be a non-empty object"},
	    {"{\"files\":{}}", 400, "'files' must be a non-empty object"},
	    {"{\"files\":[\"/a\"]}", 400, "'files' must be a non-empty object"},
	    {"{\"files\":{\"rel/a\":\"x\"}}", 400, "rel/a: sandbox path must be absolute"},
	    {"{\"files\":{\"\":\"x\"}}", 400, "sandbox path must be absolute"},
	    {"{\"files\":{\"/a\":1}}", 400, "'files'.'/a' must be a string"},
	    {"{\"files\":{\"/ok\":\"x\",\"/a/../b\":\"x\"}}", 400, "path traversal"},
	    {"{\"files\":{\"/ok\":\"x\",\"/proc/1/mem\":\"x\"}}", 403, "/proc/1/mem"},
	    {"{\"files\":{\"/a\":\"x\"},\"mode\":420}", 400, "unknown field 'mode'"},
	    {"{\"files\":{\"/a\":\"x\",\"//b/./c\":\"y\"}}", 404, "ghost"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(batch); i++) {
		call("POST", "/sandboxes/ghost/files", batch[i].body);
		if (F->resp.status != batch[i].status || !strstr(err_msg(), batch[i].want))
			fail_msg("POST files %s: expected %d '%s', got %d %s", batch[i].body,
				 batch[i].status, batch[i].want, F->resp.status, F->resp.body);
	}
	char body[40000];
	o = (size_t)snprintf(body, sizeof(body), "{\"files\":{");
	for (int i = 0; i < 1025; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"/f%d\":\"\"", i ? "," : "",
				      i);
	snprintf(body + o, sizeof(body) - o, "}}");
	EXPECT_CALL(400, "at most 1024 files", "POST", "/sandboxes/ghost/files", body);
}

/* NUL characters in strings. JSON allows "\u0000" (RFC 8259, and agentkernel's serde_json
 * takes it): a field that cannot hold one is refused with a 400 naming the field (the typed
 * accessors of src/api/request.c check for it), and a file's content may hold one. */
static void test_nul_in_strings(void **state)
{
	/* Never a crash or a truncated value, whatever the message. */
	EXPECT_CALL(400, NULL, "POST", "/sandboxes", "{\"name\":\"a\\u0000b\"}");
	EXPECT_CALL(400, NULL, "POST", "/run", "{\"command\":[\"ls\",\"a\\u0000b\"]}");
	EXPECT_CALL(400, NULL, "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"env\":[\"A=\\u0000\"]}");
	/* The field is named (fails while ac_body_object parses without JSON_ALLOW_NUL: the
	 * parser's own "\u0000 is not allowed without JSON_ALLOW_NUL" comes back instead). */
	EXPECT_CALL(400, "'name' must not contain NUL characters", "POST", "/sandboxes",
		    "{\"name\":\"a\\u0000b\"}");
	EXPECT_CALL(400, "'command'[1] must be a string without NUL", "POST", "/run",
		    "{\"command\":[\"ls\",\"a\\u0000b\"]}");
	EXPECT_CALL(400, "'env'[0] must be a string without NUL", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"env\":[\"A=\\u0000\"]}");
	EXPECT_CALL(400, "'workdir' must not contain NUL", "POST", "/sandboxes/ghost/exec",
		    "{\"command\":[\"ls\"],\"workdir\":\"/tmp\\u0000/x\"}");
	/* A text file may contain NUL: the write goes on (here: to the missing sandbox). */
	EXPECT_CALL(404, "ghost", "PUT", "/sandboxes/ghost/files/tmp/a",
		    "{\"content\":\"a\\u0000b\",\"encoding\":\"utf8\"}");
	EXPECT_CALL(404, "ghost", "POST", "/sandboxes/ghost/files",
		    "{\"files\":{\"/tmp/a\":\"a\\u0000b\"}}");
}

/* ------------------------------------------------------------------ /mcp */

static void test_mcp_route(void **state)
{
	/* Not enabled: 501 whatever the method. */
	EXPECT_CALL(501, "MCP over HTTP is not enabled", "POST", "/mcp", "{}");
	EXPECT_CALL(501, NULL, "GET", "/mcp", NULL);
	EXPECT_CALL(501, NULL, "DELETE", "/mcp", NULL);
	EXPECT_CALL(501, NULL, "POST", "/mcp/", "{}");

	ac_mcp_t *srv = NULL;
	ac_error_t *e = NULL;
	if (ac_mcp_new(F->m, "9.8.7", "/nonexistent/agentcell.toml", &srv, &e) < 0)
		fail_msg("ac_mcp_new: %s", e ? e->msg : "?");
	F->api.mcp = srv;
	fake_req_t q;
	/* A page of another site is refused (DNS rebinding). */
	fake_init(&q, "POST", "/mcp", "{}");
	fake_header_add(&q, "Origin", "http://evil.example");
	call_req(&q);
	expect(403, "origin 'http://evil.example' is not allowed");
	/* ... and any other route (one check for all, routes.c admit). */
	fake_init(&q, "POST", "/mcp", "{}");
	fake_header_add(&q, "Origin", "http://localhost.evil.example");
	call_req(&q);
	expect(403, "is not allowed");
	/* No server-initiated stream. */
	fake_init(&q, "GET", "/mcp", NULL);
	fake_header_add(&q, "Origin", "http://localhost:3000");
	ac_api_resp_clear(&F->resp);
	ac_api_handle(&F->api, &q.r, &F->resp);
	assert_int_equal(F->resp.status, 405);
	assert_string_equal(F->resp.allow, "POST, DELETE");
	/* initialize: a JSON-RPC answer and a session. */
	fake_init(&q, "POST", "/mcp",
		  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
		  "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{"
		  "\"name\":\"t\",\"version\":\"1\"}}}");
	fake_header_add(&q, "Accept", "application/json, text/event-stream");
	ac_api_resp_clear(&F->resp);
	ac_api_handle(&F->api, &q.r, &F->resp);
	assert_int_equal(F->resp.status, 200);
	assert_non_null(F->resp.session_id);
	json_t *j = json_loadb(F->resp.body, F->resp.len, 0, NULL);
	assert_non_null(j);
	assert_non_null(json_object_get(j, "result"));
	json_decref(j);
	free(F->resp.session_id);
	F->resp.session_id = NULL;
	F->api.mcp = NULL;
	ac_mcp_free(srv);
}

/* ------------------------------------------------------------------ web pages */

static void test_host_local(void **state)
{
	static const char *const local[] = {"localhost", "localhost:8080",  "LOCALHOST:1",
					    "127.0.0.1", "127.0.0.1:18888", "[::1]",
					    "[::1]:1",	 "[::1]:65535"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(local); i++)
		if (!ac_api_host_local(local[i], NULL))
			fail_msg("Host '%s' should be local", local[i]);
	static const char *const evil[] = {"localhost.evil.com",
					   "localhost.evil.com:80",
					   "127.0.0.1.nip.io",
					   "127.0.0.1.nip.io:18888",
					   "evil.example",
					   "evil.example:18888",
					   "",
					   "localhost:",
					   "localhost:99999",
					   "localhost:123456",
					   "localhost:80x",
					   "localhost:-1",
					   "localhost.",
					   "user@localhost",
					   "localhost@evil.example",
					   "127.0.0.2",
					   "0.0.0.0",
					   "::1",
					   "[::1",
					   "[::1]x",
					   "[::2]",
					   "[::1]:",
					   "[]",
					   "127.1",
					   "2130706433",
					   "localhost:80:80",
					   " localhost",
					   "localhost/"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(evil); i++)
		if (ac_api_host_local(evil[i], NULL))
			fail_msg("Host '%s' should not be local", evil[i]);
	assert_false(ac_api_host_local(NULL, NULL));
	/* The address served counts too, however --host spelt it. */
	assert_true(ac_api_host_local("127.0.0.5:9000", "127.0.0.5"));
	assert_true(ac_api_host_local("127.0.0.5", "127.0.0.5"));
	assert_false(ac_api_host_local("127.0.0.50", "127.0.0.5"));
	assert_false(ac_api_host_local("127.0.0.5.nip.io", "127.0.0.5"));
	assert_true(ac_api_host_local("[::ffff:127.0.0.9]:80", "::ffff:127.0.0.9"));
	assert_true(ac_api_host_local("[::ffff:127.0.0.9]", "[::ffff:127.0.0.9]"));
	assert_false(ac_api_host_local("::ffff:127.0.0.9", "::ffff:127.0.0.9"));
	assert_true(ac_api_host_local("MyBox:80", "mybox"));
	assert_false(ac_api_host_local("evil.example", ""));
}

static void test_origin_local(void **state)
{
	static const char *const local[] = {"http://localhost",	 "http://localhost:3000",
					    "https://localhost", "http://127.0.0.1:8080",
					    "https://127.0.0.1", "http://[::1]",
					    "http://[::1]:1",	 "HTTP://LOCALHOST:5173"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(local); i++)
		if (!ac_api_origin_local(local[i]))
			fail_msg("Origin '%s' should be local", local[i]);
	static const char *const evil[] = {"null",
					   "",
					   "http://evil.example",
					   "https://evil.example:443",
					   "http://localhost.evil.com",
					   "http://127.0.0.1.nip.io",
					   "http://127.0.0.1.nip.io:18888",
					   "http://localhost:evil",
					   "http://localhost:3000/",
					   "http://localhost/path",
					   "http://user@localhost",
					   "http://localhost@evil.example",
					   "ftp://localhost",
					   "file://",
					   "localhost",
					   "localhost:3000",
					   "http://",
					   "http://[::1",
					   "http://[::2]",
					   "chrome-extension://abcdef",
					   "http://127.0.0.2",
					   "http://0.0.0.0:18888"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(evil); i++)
		if (ac_api_origin_local(evil[i]))
			fail_msg("Origin '%s' should not be local", evil[i]);
	assert_false(ac_api_origin_local(NULL));
}

static void test_type_json(void **state)
{
	static const char *const json[] = {
	    "application/json",	  "application/json; charset=utf-8",
	    "Application/JSON",	  "application/json;charset=UTF-8",
	    " application/json ", "application/json ; charset=utf-8"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(json); i++)
		if (!ac_api_type_json(json[i]))
			fail_msg("'%s' should be JSON", json[i]);
	static const char *const other[] = {"text/plain",
					    "text/plain; charset=utf-8",
					    "application/x-www-form-urlencoded",
					    "multipart/form-data; boundary=x",
					    "application/jsonx",
					    "application/json-patch+json",
					    "application/jso",
					    "text/json",
					    "",
					    "application/json,text/plain",
					    "xapplication/json"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(other); i++)
		if (ac_api_type_json(other[i]))
			fail_msg("'%s' should not be JSON", other[i]);
	assert_false(ac_api_type_json(NULL));
}

/* The checks on the headers, through the router and through ac_api_admit alone. */
static void test_admit(void **state)
{
	fake_req_t q;
	/* Key-less: a Host other than this machine is refused on every route, open ones too. */
	static const char *const evil_hosts[] = {"evil.example:18888", "localhost.evil.com",
						 "127.0.0.1.nip.io"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(evil_hosts); i++) {
		const char *method, *pattern;
		bool open;
		for (size_t r = 0; ac_api_route_at(r, &method, &pattern, &open); r++) {
			char path[256];
			concrete(pattern, "box", path, sizeof(path));
			fake_init(&q, method, path, NULL);
			fake_header_add(&q, "Host", evil_hosts[i]);
			call_req(&q);
			expect(403, "is not allowed");
		}
	}
	fake_init(&q, "GET", "/sandboxes", NULL);
	q.bare = true;
	call_req(&q);
	expect(403, "host '' is not allowed");
	/* The address served, and a unix socket (any Host). */
	F->api.bound_host = "127.0.0.5";
	fake_init(&q, "GET", "/sandboxes", NULL);
	fake_header_add(&q, "Host", "127.0.0.5:8000");
	call_req(&q);
	expect(200, NULL);
	F->api.bound_host = NULL;
	F->api.any_host = true;
	fake_init(&q, "GET", "/sandboxes", NULL);
	fake_header_add(&q, "Host", "evil.example");
	call_req(&q);
	expect(200, NULL);
	F->api.any_host = false;
	/* With a key the Host is free (a rebound page has no key), the key is not. */
	char *keys[] = {"k1-secret", NULL};
	F->api.keys = keys;
	fake_init(&q, "GET", "/health", NULL);
	fake_header_add(&q, "Host", "evil.example");
	call_req(&q);
	expect(200, NULL);
	fake_init(&q, "GET", "/sandboxes", NULL);
	fake_header_add(&q, "Host", "evil.example");
	call_req(&q);
	expect(401, "Missing Authorization header");
	/* Origin: refused on every route, with a key or without, before anything else. */
	static const char *const evil_origins[] = {"null", "http://evil.example",
						   "http://localhost.evil.com"};
	for (int keyed = 0; keyed < 2; keyed++) {
		F->api.keys = keyed ? keys : NULL;
		for (size_t i = 0; i < AC_ARRAY_SIZE(evil_origins); i++) {
			const char *method, *pattern;
			bool open;
			for (size_t r = 0; ac_api_route_at(r, &method, &pattern, &open); r++) {
				char path[256];
				concrete(pattern, "box", path, sizeof(path));
				fake_init(&q, method, path, "{}");
				fake_header_add(&q, "Origin", evil_origins[i]);
				fake_header_add(&q, "Authorization", "Bearer k1-secret");
				call_req(&q);
				expect(403, "is not allowed");
			}
		}
		fake_init(&q, "GET", "/nowhere", NULL);
		fake_header_add(&q, "Origin", "null");
		call_req(&q);
		expect(403, "origin 'null' is not allowed");
		fake_init(&q, "GET", "/health", NULL);
		fake_header_add(&q, "Origin", "http://localhost:5173");
		call_req(&q);
		expect(200, NULL);
	}
	F->api.keys = NULL;
	/* A body must be JSON: text/plain, forms and none at all are 415. */
	static const char *const types[] = {"text/plain", "application/x-www-form-urlencoded",
					    "multipart/form-data; boundary=x", NULL};
	static const char *const posts[][2] = {
	    {"POST", "/sandboxes"},	     {"POST", "/run"},
	    {"POST", "/sandboxes/box/exec"}, {"PUT", "/sandboxes/box/files/x"},
	    {"PATCH", "/sandboxes/box"},     {"POST", "/mcp"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(types); i++)
		for (size_t p = 0; p < AC_ARRAY_SIZE(posts); p++) {
			fake_init(&q, posts[p][0], posts[p][1], "{\"name\":\"x\"}");
			fake_header_add(&q, "Host", "localhost");
			if (types[i])
				fake_header_add(&q, "Content-Type", types[i]);
			else
				q.bare = true;
			call_req(&q);
			expect(415, "Content-Type must be application/json");
		}
	/* No body, no type needed. */
	fake_init(&q, "POST", "/sandboxes/box/stop", NULL);
	fake_header_add(&q, "Content-Type", "text/plain");
	call_req(&q);
	assert_int_not_equal(F->resp.status, 415);
	fake_init(&q, "POST", "/sandboxes", "{\"name\":1}");
	fake_header_add(&q, "Content-Type", "application/json; charset=utf-8");
	call_req(&q);
	expect(400, "'name' must be a string");
	/* A key is checked before the type: nothing is said to a client without one. */
	F->api.keys = keys;
	fake_init(&q, "POST", "/sandboxes", "x=1");
	fake_header_add(&q, "Content-Type", "text/plain");
	call_req(&q);
	expect(401, "Missing Authorization header");
	F->api.keys = NULL;

	/* ac_api_admit on the headers alone: has_body stands for Content-Length. */
	ac_api_resp_t r = {0};
	fake_init(&q, "POST", "/sandboxes", NULL);
	fake_header_add(&q, "Content-Type", "text/plain");
	assert_false(ac_api_admit(&F->api, &q.r, true, &r));
	assert_int_equal(r.status, 415);
	ac_api_resp_clear(&r);
	assert_true(ac_api_admit(&F->api, &q.r, false, &r));
	fake_init(&q, "POST", "/no/such/route", NULL);
	assert_false(ac_api_admit(&F->api, &q.r, true, &r));
	assert_int_equal(r.status, 404);
	ac_api_resp_clear(&r);
	fake_init(&q, "DELETE", "/run", NULL);
	assert_false(ac_api_admit(&F->api, &q.r, false, &r));
	assert_int_equal(r.status, 405);
	ac_api_resp_clear(&r);
	F->api.keys = keys;
	fake_init(&q, "PUT", "/sandboxes/box/files/big", NULL);
	assert_false(ac_api_admit(&F->api, &q.r, true, &r));
	assert_int_equal(r.status, 401);
	ac_api_resp_clear(&r);
	fake_header_add(&q, "Authorization", "Bearer k1-secret");
	assert_true(ac_api_admit(&F->api, &q.r, true, &r));
	F->api.keys = NULL;
	ac_api_resp_clear(&r);
}

/* ------------------------------------------------------------------ OpenAPI */

/* "/sandboxes/:name/files/(star)" -> "/sandboxes/{name}/files/{path}" */
static void openapi_path(const char *pattern, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = pattern; *p && o + 16 < len;) {
		if (*p == ':') {
			const char *end = strchrnul(p, '/');
			o +=
			    (size_t)snprintf(out + o, len - o, "{%.*s}", (int)(end - p - 1), p + 1);
			p = end;
		} else if (*p == '*') {
			o += (size_t)snprintf(out + o, len - o, "{path}");
			p++;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

static void test_openapi(void **state)
{
	char *keys[] = {"k", NULL};
	F->api.keys = keys; /* served without a key */
	call("GET", "/openapi.json", NULL);
	F->api.keys = NULL;
	assert_int_equal(F->resp.status, 200);
	assert_string_equal(F->resp.content_type, "application/json");
	assert_int_equal(F->resp.len, ac_openapi_json_len);
	assert_memory_equal(F->resp.body, ac_openapi_json, ac_openapi_json_len);
	json_error_t je;
	json_t *doc = json_loadb(F->resp.body, F->resp.len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		fail_msg("docs/openapi.json is not JSON: %s line %d", je.text, je.line);
	assert_string_equal(ac_state_str(doc, "openapi", ""), "3.0.3");
	assert_non_null(json_object_get(json_object_get(doc, "info"), "title"));
	json_t *schemes = json_object_get(json_object_get(doc, "components"), "securitySchemes");
	json_t *bearer = json_object_get(schemes, "bearerAuth");
	assert_string_equal(ac_state_str(bearer, "type", ""), "http");
	assert_string_equal(ac_state_str(bearer, "scheme", ""), "bearer");
	json_t *global = json_object_get(doc, "security");
	assert_true(json_is_array(global) && json_array_size(global) == 1);
	assert_non_null(json_object_get(json_array_get(global, 0), "bearerAuth"));
	json_t *paths = json_object_get(doc, "paths");
	assert_true(json_is_object(paths));

	/* Every route of the table is documented, with its method and authentication. */
	const char *method, *pattern;
	bool open;
	size_t n = 0;
	for (size_t i = 0; ac_api_route_at(i, &method, &pattern, &open); i++, n++) {
		char p[256], m[16];
		openapi_path(pattern, p, sizeof(p));
		size_t k;
		for (k = 0; method[k] && k < sizeof(m) - 1; k++)
			m[k] = (char)(method[k] | 0x20);
		m[k] = '\0';
		json_t *o = json_object_get(json_object_get(paths, p), m);
		if (!json_is_object(o))
			fail_msg("docs/openapi.json lacks %s %s", method, p);
		json_t *sec = json_object_get(o, "security");
		if (open && !(json_is_array(sec) && json_array_size(sec) == 0))
			fail_msg("%s %s is open: its operation needs \"security\": []", method, p);
		if (!open && sec)
			fail_msg("%s %s needs the key: no security override", method, p);
		json_t *responses = json_object_get(o, "responses");
		assert_true(json_object_size(responses) > 0);
		if (!open && strcmp(p, "/mcp") && !json_object_get(responses, "401"))
			fail_msg("%s %s: no 401 response documented", method, p);
		/* Path parameters are declared (at path or operation level). */
		for (const char *b = strchr(p, '{'); b; b = strchr(b + 1, '{')) {
			const char *e = strchr(b, '}');
			char pname[32];
			snprintf(pname, sizeof(pname), "%.*s", (int)(e - b - 1), b + 1);
			bool found = false;
			json_t *lists[] = {json_object_get(json_object_get(paths, p), "parameters"),
					   json_object_get(o, "parameters")};
			for (int l = 0; l < 2 && !found; l++) {
				size_t x;
				json_t *prm;
				json_array_foreach(lists[l], x, prm)
				{
					const char *ref = ac_state_str(prm, "$ref", NULL);
					const char *nm = ac_state_str(prm, "name", "");
					if ((ref && !strcmp(strrchr(ref, '/') + 1, pname)) ||
					    !strcmp(nm, pname))
						found = true;
				}
			}
			if (!found)
				fail_msg("%s %s: path parameter %s is not declared", method, p,
					 pname);
		}
	}
	/* ... and nothing else: each documented operation is a route. */
	const char *p;
	json_t *item;
	size_t ops = 0;
	json_object_foreach(paths, p, item)
	{
		const char *m;
		json_t *o;
		json_object_foreach(item, m, o)
		{
			if (!strcmp(m, "parameters") || !strcmp(m, "summary") ||
			    !strcmp(m, "description"))
				continue;
			ops++;
			bool found = false;
			for (size_t i = 0; !found && ac_api_route_at(i, &method, &pattern, &open);
			     i++) {
				char pp[256];
				openapi_path(pattern, pp, sizeof(pp));
				found = !strcmp(pp, p) && !strcasecmp(method, m);
			}
			if (!found)
				fail_msg("docs/openapi.json documents %s %s, which is no route", m,
					 p);
		}
	}
	assert_int_equal(ops, n);
	/* Every $ref resolves. */
	json_t *components = json_object_get(doc, "components");
	json_t *stack[4096];
	size_t sp = 0;
	stack[sp++] = doc;
	size_t refs = 0;
	while (sp) {
		json_t *v = stack[--sp];
		if (json_is_object(v)) {
			const char *k;
			json_t *c;
			json_object_foreach(v, k, c)
			{
				if (!strcmp(k, "$ref")) {
					const char *r = json_string_value(c);
					char kind[32], name[64];
					assert_non_null(r);
					if (sscanf(r, "#/components/%31[^/]/%63s", kind, name) !=
						2 ||
					    !json_object_get(json_object_get(components, kind),
							     name))
						fail_msg("unresolved $ref %s", r);
					refs++;
				} else if (json_is_object(c) || json_is_array(c)) {
					assert_true(sp < AC_ARRAY_SIZE(stack));
					stack[sp++] = c;
				}
			}
		} else if (json_is_array(v)) {
			size_t x;
			json_t *c;
			json_array_foreach(v, x, c) if (json_is_object(c) || json_is_array(c))
			{
				assert_true(sp < AC_ARRAY_SIZE(stack));
				stack[sp++] = c;
			}
		}
	}
	assert_true(refs > 50);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_route_reaches_its_handler, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_parameters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_paths_404, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trailing_slash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
	    cmocka_unit_test(test_key_compare),
	    cmocka_unit_test_setup_teardown(test_envelopes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_parsing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_command_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_sandbox_404, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul_in_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mcp_route, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_openapi, setup, teardown),
	    cmocka_unit_test(test_host_local),
	    cmocka_unit_test(test_origin_local),
	    cmocka_unit_test(test_type_json),
	    cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
