/* Fuzz target: arbitrary bytes as an HTTP request to the API router (ac_api_handle), on a
 * manager with an empty temporary home: no sandbox exists, so every per-sandbox route ends
 * in a 4xx and nothing runs.
 *
 * Input convention, lines split at '\n':
 *   1: the method
 *   2: the path, optionally "?k=v&k2&..." (query arguments, not decoded)
 *   3: empty: a server without API keys; else the Authorization header, and the server
 *      has the keys "fuzz-key" and "second-key"
 *   the rest: the body (any bytes)
 *
 * Every answer must be a status the API uses with a JSON envelope body
 * ({"success":true,"data":...} or {"success":false,"error":"..."}, the 409 of a command
 * failure with its result beside), or an event stream (never started here), or the
 * document of /openapi.json, or the text of /metrics.
 *
 * Nothing may be spawned: /run, /batch/run and POST /sandboxes with a valid body would
 * reach the runtime, so the process gives up root first (the runtime then fails at its
 * first privileged step: slot leases, cgroups) and installs a seccomp filter that makes
 * execve, fork and every clone but a thread's fail with EPERM (and clone3 with ENOSYS).
 * CLONE_UNTRACED clones stay allowed: LeakSanitizer stops the world with one; nothing in
 * src/ uses the flag. Without execve the sanitizers cannot start a symbolizer: replay a
 * crashing input with the replay build and symbolize its addresses (addr2line), or run it
 * under gdb. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/manager.h"
#include "base/io.h"
#include "base/util.h"
#include "api/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char home[] = "/tmp/ac-fuzz-api-XXXXXX";
static ac_manager_t *mgr;
static char *keys[] = {"fuzz-key", "second-key", NULL};

static void cleanup(void)
{
	ac_manager_free(mgr);
	ac_rm_rf_at(AT_FDCWD, home, NULL);
}

static void no_spawn(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		abort();
	int rc = 0;
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fork), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(vfork), 0);
	/* glibc falls back to clone when clone3 is missing */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_UNTRACED, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mount), 0);
	if (rc || seccomp_load(ctx) < 0)
		abort();
	seccomp_release(ctx);
}

static void init_once(void)
{
	if (mgr)
		return;
	if (geteuid() == 0) {
		/* nobody: not root on the host, so the runtime stops at its first step */
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0) {
			perror("fuzz_api: cannot give up root");
			abort();
		}
	}
	no_spawn();
	ac_error_t *err = NULL;
	if (!mkdtemp(home) || ac_manager_open(home, &mgr, &err) < 0) {
		fprintf(stderr, "fuzz_api: cannot set up %s: %s\n", home,
			err ? err->msg : "mkdtemp");
		abort();
	}
	atexit(cleanup);
}

typedef struct fuzz_req {
	ac_api_req_t r;
	const char *auth;
	char *query; /* "k=v&k2" (a copy, not decoded) */
} fuzz_req_t;

static const char *fz_header(const ac_api_req_t *r, const char *name)
{
	const fuzz_req_t *f = (const fuzz_req_t *)r;
	if (f->auth && !strcasecmp(name, "Authorization"))
		return f->auth;
	/* A well-behaved local client: the router's Host and content type checks let it in
	 * (tests/unit/test_api.c covers them). */
	if (!strcasecmp(name, "Host"))
		return "127.0.0.1:18888";
	if (!strcasecmp(name, "Content-Type"))
		return "application/json";
	return NULL;
}

static size_t fz_query_all(const ac_api_req_t *r, const char *key, const char **vals, size_t max)
{
	const fuzz_req_t *f = (const fuzz_req_t *)r;
	size_t n = 0, klen = strlen(key);
	/* Values point into the copy: "k=v" -> "v", "k" -> "" (a static empty string). */
	for (const char *p = f->query; p && *p;) {
		const char *end = strchrnul(p, '&');
		const char *eq = memchr(p, '=', (size_t)(end - p));
		size_t kl = eq ? (size_t)(eq - p) : (size_t)(end - p);
		if (kl == klen && !memcmp(p, key, klen)) {
			if (n < max)
				vals[n] = eq ? eq + 1 : "";
			n++;
		}
		p = *end ? end + 1 : end;
	}
	return n;
}

static char *line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	const uint8_t *stop = nl ? nl : end;
	char *s = strndup((const char *)*p, (size_t)(stop - *p));
	if (!s)
		abort();
	*p = nl ? nl + 1 : end;
	return s;
}

static bool status_known(int st)
{
	static const int ok[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 500, 501, 502};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (st == ok[i])
			return true;
	return false;
}

static void check(const char *path, const ac_api_resp_t *r)
{
	if (!status_known(r->status)) {
		fprintf(stderr, "fuzz_api: status %d\n", r->status);
		abort();
	}
	if (r->stream.fn) {
		if (r->status != 200 || r->body || !r->content_type ||
		    strcmp(r->content_type, "text/event-stream"))
			abort();
		return;
	}
	if (!r->body || strlen(r->body) != r->len || !r->content_type)
		abort();
	if (r->status == 200 && !strcmp(r->content_type, "text/plain; version=0.0.4"))
		return; /* /metrics */
	if (strcmp(r->content_type, "application/json"))
		abort();
	json_error_t je;
	json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		fprintf(stderr, "fuzz_api: not a JSON object (%s): %.300s\n", je.text, r->body);
		abort();
	}
	if (r->status == 200 && json_object_get(j, "openapi")) {
		json_decref(j); /* /openapi.json */
		return;
	}
	json_t *succ = json_object_get(j, "success");
	if (r->status < 300) {
		if (!json_is_true(succ) || !json_object_get(j, "data") || json_object_size(j) != 2)
			abort();
	} else {
		const char *msg = json_string_value(json_object_get(j, "error"));
		if (!json_is_false(succ) || !msg || !*msg)
			abort();
		if (json_object_size(j) != 2 &&
		    !(r->status == 409 && json_is_integer(json_object_get(j, "exit_code"))))
			abort();
		if (r->status == 405 && !r->allow[0])
			abort();
	}
	/* The envelope names no sandbox into existence. */
	json_decref(j);
	(void)path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	const uint8_t *p = data, *end = data + size;
	char *method = line(&p, end);
	char *target = line(&p, end);
	char *auth = line(&p, end);
	fuzz_req_t f = {0};
	char *q = strchr(target, '?');
	if (q) {
		*q = '\0';
		f.query = q + 1;
	}
	f.auth = *auth ? auth : NULL;
	f.r.method = method;
	f.r.path = target;
	/* The body: an exact-size copy, so that ASan sees reads past it (a server's body is
	 * NUL-terminated; the router must not rely on it). */
	size_t blen = (size_t)(end - p);
	char *body = malloc(blen ? blen : 1);
	if (!body)
		abort();
	memcpy(body, p, blen);
	f.r.body = body;
	f.r.body_len = blen;
	f.r.header = fz_header;
	f.r.query_all = fz_query_all;

	ac_api_t api = {.m = mgr, .keys = *auth ? keys : NULL, .batch_parallel = 2};
	ac_api_resp_t resp = {0};
	ac_api_handle(&api, &f.r, &resp);
	check(target, &resp);
	/* A stream is never started: clearing frees its context. */
	ac_api_resp_clear(&resp);
	free(resp.session_id);

	/* Still no sandbox: nothing was created. */
	json_t *all = NULL;
	if (ac_manager_list(mgr, &all, NULL) < 0 || json_array_size(all) != 0) {
		fprintf(stderr, "fuzz_api: a sandbox was created\n");
		abort();
	}
	json_decref(all);
	free(body);
	free(method);
	free(target);
	free(auth);
	return 0;
}
