/* Commands over HTTP: /run, /run/stream, /batch/run, /sandboxes/{name}/exec[/stream] and the
 * detached commands. Output goes through pipes to a pump thread (src/core/capture.c); streamed
 * answers (Server-Sent Events) are written as the output arrives. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/capture.h"
#include "agentcell/detach.h"
#include "agentcell/languages.h"
#include "agentcell/pool.h"
#include "base/json.h"
#include "base/io.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "api/handlers.h"
#include "api/request.h"

/* Longest command a request may set (seconds). */
#define TIMEOUT_MAX (7.0 * 86400)
#define BATCH_MAX   256

typedef struct exec_req {
	json_t *body;
	bool run; /* a fresh one-shot sandbox (else: sandbox) */
	char *sandbox;
	char **argv, **env;
	ac_cmd_t cmd;
	bool full; /* answer exit code, stdout and stderr, whatever the exit */
	ac_sandbox_opts_t o;
	char **o_env, **o_labels;
	bool sudo; /* asked for root (allowed or not: sudo_gate) */
} exec_req_t;

static void exec_req_free(exec_req_t *x)
{
	free(x->argv);
	free(x->env);
	free(x->o_env);
	free(x->o_labels);
	ac_api_net_opts_free(&x->o);
	free(x->sandbox);
	json_decref(x->body);
	*x = (exec_req_t){0};
}

/* A run's command: "command", or "language" and "code" (a code run: the interpreter's
 * command line from the language table, the code one argument of it, in the body). */
static int run_command(json_t *body, exec_req_t *x, ac_api_resp_t *resp)
{
	json_t *cmd = json_object_get(body, "command");
	json_t *lang = json_object_get(body, "language"), *code = json_object_get(body, "code");
	bool has_cmd = cmd && !json_is_null(cmd);
	bool has_lang = lang && !json_is_null(lang), has_code = code && !json_is_null(code);
	if (!has_lang && !has_code) {
		if (has_cmd)
			return ac_body_command(body, &x->argv, resp);
		ac_api_fail(resp, 400,
			    "'command' is required: an array of strings (or 'language' and "
			    "'code' for a code run)");
		return -1;
	}
	if (has_cmd) {
		ac_api_fail(resp, 400, "give either 'command' or 'language' and 'code', not both");
		return -1;
	}
	if (!has_lang || !has_code) {
		ac_api_fail(resp, 400,
			    has_code ? "'code' needs 'language' (python, node, ruby, perl, php; "
				       "sh or any other name: shell code)"
				     : "'language' needs 'code': the code to run");
		return -1;
	}
	const char *l, *c;
	if (ac_body_str(body, "language", true, 0, &l, resp) < 0 ||
	    ac_body_str(body, "code", true, 0, &c, resp) < 0)
		return -1;
	char *argv[4];
	ac_error_t *e = NULL;
	if (!ac_language_name_valid(l)) {
		ac_api_fail(resp, 400,
			    "'language' must be a language name: 1-%d characters of A-Z a-z 0-9 "
			    "+ # . _ -, starting with a letter (known: %s)",
			    AC_LANGUAGE_NAME_MAX, ac_language_names());
		return -1;
	}
	if (ac_code_check(c, strlen(c), "'code'", &e) < 0 ||
	    ac_language_argv(l, c, strlen(c), argv, &e) < 0) {
		ac_api_fail(resp, 400, "%s", e ? e->msg : "invalid 'code'");
		ac_error_free(e);
		return -1;
	}
	if (!(x->argv = calloc(4, sizeof(char *)))) {
		ac_api_fail(resp, 500, "out of memory");
		return -1;
	}
	memcpy(x->argv, argv, sizeof(argv));
	x->o.language = l;
	return 0;
}

/* Fields of the body of an exec (sandbox != NULL) or a run, from json object body (a new
 * reference is taken). */
static int parse_exec(json_t *body, const char *sandbox, exec_req_t *x, ac_api_resp_t *resp)
{
	static const char *const exec_known[] = {"command", "env",     "workdir",    "cwd",  "sudo",
						 "user",    "timeout", "timeout_ms", "full", NULL};
	static const char *const run_known[] = {
	    "command",	   "image",	     "template",
	    "profile",	   "fast",	     "timeout",
	    "env",	   "memory_mb",	     "vcpus",
	    "cpus",	   "pids",	     "network",
	    "read_only",   "full",	     "workdir",
	    "cwd",	   "disk_mb",	     "language",
	    "code",	   "backend",	     "allow_hosts",
	    "block_hosts", "allowlist_only", "secret_bindings",
	    "publish",	   "volumes",	     "timeout_ms",
	    "ports",	   "secrets",	     "placeholder_secrets",
	    NULL};
	*x = (exec_req_t){.body = json_incref(body), .run = sandbox == NULL};
	if (sandbox && !(x->sandbox = strdup(sandbox))) {
		ac_api_fail(resp, 500, "out of memory");
		return -1;
	}
	if (ac_body_known(body, sandbox ? exec_known : run_known,
			  sandbox ? NULL : ac_api_unsupported_fields, resp) < 0 ||
	    (sandbox ? ac_body_command(body, &x->argv, resp) : run_command(body, x, resp)) < 0)
		return -1;
	x->cmd.argv = x->argv;
	bool set, b;
	double d;
	if (ac_body_num(body, "timeout", 0.001, TIMEOUT_MAX, false, &d, &set, resp) < 0)
		return -1;
	if (set)
		x->cmd.timeout = d;
	/* agentkernel's name, in milliseconds. */
	if (ac_body_num(body, "timeout_ms", 1, TIMEOUT_MAX * 1000, true, &d, &set, resp) < 0)
		return -1;
	if (set && json_object_get(body, "timeout") &&
	    !json_is_null(json_object_get(body, "timeout"))) {
		ac_api_fail(resp, 400, "give either 'timeout' (seconds) or 'timeout_ms', not both");
		return -1;
	}
	if (set)
		x->cmd.timeout = d / 1000.0;
	if (ac_body_bool(body, "full", &x->full, &set, resp) < 0 ||
	    ac_body_bool(body, "fast", &b, &set, resp) < 0)
		return -1;
	const char *wd = NULL, *cwd = NULL;
	if (ac_body_str(body, "workdir", false, 4096, &wd, resp) < 0 ||
	    ac_body_str(body, "cwd", false, 4096, &cwd, resp) < 0)
		return -1;
	x->cmd.cwd = wd ? wd : cwd;
	if (x->cmd.cwd && x->cmd.cwd[0] != '/') {
		ac_api_fail(resp, 400, "'workdir' must be an absolute path");
		return -1;
	}
	if (sandbox) {
		if (ac_body_env(body, "env", &x->env, resp) < 0)
			return -1;
		x->cmd.env = x->env;
		bool sudo = false;
		if (ac_body_bool(body, "sudo", &sudo, &set, resp) < 0 ||
		    ac_body_str(body, "user", false, 256, &x->cmd.user, resp) < 0)
			return -1;
		/* Commands run as the sandbox's default user (its image's User, else root) unless
		 * a user is named; sudo says uid 0, whatever the image's User. */
		if (sudo && x->cmd.user && strcmp(x->cmd.user, "root") &&
		    strcmp(x->cmd.user, "0")) {
			ac_api_fail(resp, 400, "'sudo' and 'user' contradict each other");
			return -1;
		}
		if (sudo)
			x->cmd.user = "0";
		x->sudo = sudo;
	} else if (ac_api_compat_fields(body, resp) < 0 ||
		   ac_api_sandbox_opts(body, &x->o, &x->o_env, &x->o_labels, resp) < 0 ||
		   ac_api_net_opts(body, &x->o, resp) < 0) {
		return -1;
	}
	return 0;
}

/* agentkernel's rule: a request's sudo needs the operator's [api] allow_sudo_exec. */
static int sudo_gate(const ac_api_t *api, const exec_req_t *x, ac_api_resp_t *resp)
{
	if (!x->sudo || api->allow_sudo_exec)
		return 0;
	ac_api_fail(resp, 403,
		    "'sudo' is not allowed on this server: its operator enables it with [api] "
		    "allow_sudo_exec = true in the config file");
	return -1;
}

static int parse_exec_request(const ac_api_t *api, ac_api_req_t *req, const char *sandbox,
			      exec_req_t *x, ac_api_resp_t *resp)
{
	json_t *body = ac_body_object(req, resp, true);
	if (!body) {
		*x = (exec_req_t){0};
		return -1;
	}
	int rc = parse_exec(body, sandbox, x, resp);
	json_decref(body);
	if (rc == 0)
		rc = sudo_gate(api, x, resp);
	/* A client that hangs up takes its command with it (not a detached one: see there). */
	x->cmd.cancel_fd = req->client_fd > 0 ? req->client_fd : 0;
	return rc;
}

/* A failure that is the command's own (it could not be executed: 126/127) rather than the
 * request's (no such sandbox, backend down). */
static bool command_failure(int rc, const ac_error_t *e, const ac_result_t *res)
{
	return rc < 0 && e && e->kind != AC_ERR_PERMISSION && res->exit_code >= 126;
}

/* agentkernel's "output": stdout, then stderr, a newline between them when both have
 * text and stdout did not end one. */
static json_t *combined(const ac_capture_t *c)
{
	if (!c->err_len)
		return ac_json_text(c->out, c->out_len);
	if (!c->out_len)
		return ac_json_text(c->err, c->err_len);
	bool nl = c->out[c->out_len - 1] != '\n';
	size_t n = c->out_len + nl + c->err_len;
	char *b = malloc(n);
	if (!b)
		return json_string("");
	memcpy(b, c->out, c->out_len);
	if (nl)
		b[c->out_len] = '\n';
	memcpy(b + c->out_len + nl, c->err, c->err_len);
	json_t *j = ac_json_text(b, n);
	free(b);
	return j;
}

static json_t *result_json(const ac_capture_t *c, const ac_error_t *e)
{
	json_t *j = json_pack("{si so so so sb}", "exit_code", c->res.exit_code, "output",
			      combined(c), "stdout", ac_json_text(c->out, c->out_len), "stderr",
			      ac_json_text(c->err, c->err_len), "timed_out", c->res.timed_out);
	if (c->res.signal)
		json_object_set_new(j, "signal", json_integer(c->res.signal));
	if (c->out_dropped || c->err_dropped)
		json_object_set_new(j, "truncated",
				    json_pack("{sI sI}", "stdout", (json_int_t)c->out_dropped,
					      "stderr", (json_int_t)c->err_dropped));
	if (e)
		json_object_set_new(j, "error", json_string(e->msg));
	return j;
}

static void exit_message(const ac_capture_t *c, const ac_error_t *e, const exec_req_t *x, char *buf,
			 size_t len)
{
	if (e)
		snprintf(buf, len, "%s", e->msg);
	else if (c->res.timed_out)
		snprintf(buf, len, "command timed out after %gs", x->cmd.timeout);
	else if (c->res.signal)
		snprintf(buf, len, "command killed by signal %d", c->res.signal);
	else
		snprintf(buf, len, "Command exited with code %d", c->res.exit_code);
}

/* {output} on success; 409 with exit_code and output when the command failed; with full:
 * 200 and everything. */
static void reply_capture(exec_req_t *x, int rc, ac_error_t *e, ac_capture_t *c,
			  ac_api_resp_t *resp)
{
	if (rc < 0 && !command_failure(rc, e, &c->res)) {
		ac_api_fail_error(resp, e);
		return;
	}
	if (x->full) {
		ac_api_ok(resp, 200, result_json(c, e));
	} else if (rc == 0 && c->res.exit_code == 0) {
		ac_api_ok(resp, 200, json_pack("{so}", "output", combined(c)));
	} else {
		char msg[1200];
		exit_message(c, e, x, msg, sizeof(msg));
		json_t *j = result_json(c, NULL);
		/* agentkernel's text: the message, then the output (clipped here). */
		const char *out = json_string_value(json_object_get(j, "output"));
		char *full = NULL;
		if (asprintf(&full, "%s%s%.4000s", msg, out && *out ? ": " : "", out ? out : "") <
		    0)
			full = NULL;
		json_object_set_new(j, "success", json_false());
		json_object_set_new(j, "error",
				    full ? ac_json_text(full, strlen(full)) : json_string(msg));
		free(full);
		ac_api_resp_clear(resp);
		resp->status = 409;
		resp->content_type = "application/json";
		resp->body = json_dumps(j, JSON_COMPACT);
		resp->len = resp->body ? strlen(resp->body) : 0;
		json_decref(j);
	}
	ac_error_free(e);
}

/* What the server's operator set for requests: serve --exec-timeout for commands whose
 * request sets none (detached ones excepted), agentcell.toml [languages] for code runs. */
static void server_defaults(ac_api_t *api, exec_req_t *x)
{
	if (x->cmd.timeout <= 0 && api->exec_timeout > 0)
		x->cmd.timeout = api->exec_timeout;
	if (x->o.language && !x->o.language_image)
		x->o.language_image = ac_language_configured_image(api->languages, x->o.language);
}

/* A run in a ready sandbox of the warm pool (serve --pool): one exec, then the sandbox is
 * handed back to be removed (never reused). *served false: the pool could not serve it
 * (empty, other options, or the sandbox was gone before the command ran): the caller makes
 * its own. */
static int pool_capture(ac_api_t *api, exec_req_t *x, ac_capture_t *c, bool *served, ac_error_t **e)
{
	char name[AC_POOL_NAME_LEN];
	*served = false;
	if (!api->pool || !x->run)
		return 0;
	if (!ac_pool_fits(api->pool, x->body)) {
		ac_pool_miss(api->pool);
		return 0;
	}
	if (!ac_pool_take(api->pool, name))
		return 0;
	/* A run's env is its sandbox's; here it goes with the command. */
	ac_cmd_t cmd = x->cmd;
	cmd.env = x->o.env;
	ac_error_t *pe = NULL;
	int rc = ac_exec_capture(api->m, name, NULL, &cmd, 0, c, &pe);
	ac_pool_release(api->pool, name);
	if (rc < 0 && pe && (pe->kind == AC_ERR_NOT_RUNNING || pe->kind == AC_ERR_NOT_FOUND)) {
		ac_error_free(pe);
		ac_capture_free(c);
		return 0;
	}
	*served = true;
	*e = pe;
	return rc;
}

static int run_capture(ac_api_t *api, exec_req_t *x, ac_capture_t *c, ac_error_t **e)
{
	server_defaults(api, x);
	bool served;
	int rc = pool_capture(api, x, c, &served, e);
	if (!served)
		rc = ac_exec_capture(api->m, x->run ? NULL : x->sandbox, &x->o, &x->cmd, 0, c, e);
	if (rc < 0 && x->run && x->o.language)
		ac_language_explain(api->m, &x->o, rc, &c->res, *e);
	return rc;
}

/* /run (sandbox NULL) and /sandboxes/{name}/exec: run, capture, answer. */
static void capture_request(ac_api_t *api, ac_api_req_t *req, const char *sandbox,
			    ac_api_resp_t *resp)
{
	exec_req_t x;
	if (parse_exec_request(api, req, sandbox, &x, resp) == 0) {
		ac_capture_t c;
		ac_error_t *e = NULL;
		int rc = run_capture(api, &x, &c, &e);
		reply_capture(&x, rc, e, &c, resp);
		ac_capture_free(&c);
	}
	exec_req_free(&x);
}

void ac_h_run(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	capture_request(api, req, NULL, resp);
}

void ac_h_exec(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	capture_request(api, req, req->params[0], resp);
}

/* ------------------------------------------------------------------ /batch/run */

typedef struct batch {
	ac_api_t *api;
	exec_req_t *x;
	json_t **results;
	size_t n;
	size_t next; /* atomic */
} batch_t;

static void *batch_worker(void *arg)
{
	batch_t *b = arg;
	for (;;) {
		size_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
		if (i >= b->n)
			return NULL;
		ac_capture_t c;
		ac_error_t *e = NULL;
		int rc = run_capture(b->api, &b->x[i], &c, &e);
		json_t *r;
		if (rc == 0 && c.res.exit_code == 0) {
			r = json_pack("{so sn}", "output", combined(&c), "error");
		} else if (rc < 0 && !command_failure(rc, e, &c.res)) {
			r = json_pack("{sn ss}", "output", "error", e ? e->msg : "failed");
		} else {
			char msg[1200];
			exit_message(&c, e, &b->x[i], msg, sizeof(msg));
			r = json_pack("{so ss si}", "output", combined(&c), "error", msg,
				      "exit_code", c.res.exit_code);
		}
		b->results[i] = r;
		ac_error_free(e);
		ac_capture_free(&c);
	}
}

void ac_h_batch_run(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"commands", NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	json_t *cmds = json_object_get(body, "commands");
	batch_t b = {.api = api};
	if (ac_body_known(body, known, NULL, resp) < 0)
		goto out;
	if (!json_is_array(cmds) || !json_array_size(cmds)) {
		ac_api_fail(resp, 400,
			    "'commands' must be a non-empty array of {\"command\": [...]}");
		goto out;
	}
	b.n = json_array_size(cmds);
	if (b.n > BATCH_MAX) {
		ac_api_fail(resp, 400, "at most %d commands in one batch", BATCH_MAX);
		goto out;
	}
	b.x = calloc(b.n, sizeof(*b.x));
	b.results = calloc(b.n, sizeof(*b.results));
	if (!b.x || !b.results) {
		ac_api_fail(resp, 500, "out of memory");
		goto out;
	}
	/* Every command is checked before any runs: a bad one fails the whole batch. */
	for (size_t i = 0; i < b.n; i++) {
		json_t *item = json_array_get(cmds, i);
		if (!json_is_object(item)) {
			ac_api_fail(resp, 400, "'commands'[%zu] must be an object", i);
			goto out;
		}
		if (parse_exec(item, NULL, &b.x[i], resp) < 0) {
			char inner[1100];
			json_t *j = json_loads(resp->body, 0, NULL);
			snprintf(inner, sizeof(inner), "%s",
				 ac_state_str(j, "error", "invalid command"));
			json_decref(j);
			ac_api_fail(resp, 400, "'commands'[%zu]: %s", i, inner);
			goto out;
		}
		b.x[i].cmd.cancel_fd = req->client_fd > 0 ? req->client_fd : 0;
	}
	unsigned par = api->batch_parallel ? api->batch_parallel : 4;
	if (par > b.n)
		par = (unsigned)b.n;
	pthread_t th[BATCH_MAX];
	unsigned started = 0;
	for (unsigned i = 1; i < par; i++)
		if (pthread_create(&th[started], NULL, batch_worker, &b) == 0)
			started++;
	batch_worker(&b);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	json_t *results = json_array();
	for (size_t i = 0; i < b.n; i++)
		json_array_append_new(results, b.results[i] ? b.results[i] : json_null());
	ac_api_ok(resp, 200, json_pack("{so}", "results", results));
out:
	for (size_t i = 0; b.x && i < b.n; i++)
		exec_req_free(&b.x[i]);
	free(b.x);
	free(b.results);
	json_decref(body);
}

/* ------------------------------------------------------------------ Server-Sent Events */

typedef struct sse {
	ac_api_t *api;
	exec_req_t x;
	int fd;
	bool gone;	  /* the client left: output is dropped, the command goes on */
	char carry[2][4]; /* an unfinished UTF-8 sequence per stream */
	size_t ncarry[2];
} sse_t;

static void sse_event(sse_t *s, const char *event, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (!d || s->gone) {
		free(d);
		return;
	}
	char *frame = NULL;
	int n = asprintf(&frame, "event: %s\ndata: %s\n\n", event, d);
	free(d);
	if (n < 0)
		return;
	if (ac_write_all(s->fd, frame, (size_t)n) < 0)
		s->gone = true;
	free(frame);
}

static void sse_text(sse_t *s, int stream, const char *data, size_t len)
{
	json_t *t = ac_json_text(data, len);
	sse_event(s, "output",
		  json_pack("{so ss}", "data", t, "stream", stream == 1 ? "stdout" : "stderr"));
}

static void sse_output(void *ctx, int stream, const char *data, size_t len)
{
	sse_t *s = ctx;
	int i = stream - 1;
	if (s->gone)
		return;
	/* A chunk ends anywhere, possibly inside a character: its tail waits for the next. */
	char *buf = malloc(s->ncarry[i] + len);
	if (!buf)
		return;
	memcpy(buf, s->carry[i], s->ncarry[i]);
	memcpy(buf + s->ncarry[i], data, len);
	size_t total = s->ncarry[i] + len;
	size_t ok = ac_utf8_complete_prefix(buf, total);
	s->ncarry[i] = total - ok;
	memcpy(s->carry[i], buf + ok, s->ncarry[i]);
	if (ok)
		sse_text(s, stream, buf, ok);
	free(buf);
}

static void sse_main(void *ctx, int fd)
{
	sse_t *s = ctx;
	s->fd = fd;
	json_t *argv = json_array();
	for (char **a = s->x.argv; *a; a++)
		json_array_append_new(argv, ac_json_text(*a, strlen(*a)));
	char now[32];
	ac_time_now_rfc3339(now);
	sse_event(s, "started",
		  json_pack("{ss? so sb ss}", "sandbox", s->x.sandbox, "command", argv, "fast",
			    s->x.run, "timestamp", now));
	sse_event(s, "progress",
		  json_pack("{ss ss?}", "stage", "executing", "sandbox", s->x.sandbox));
	ac_result_t res = {0};
	ac_error_t *e = NULL;
	server_defaults(s->api, &s->x);
	int rc = ac_exec_pumped(s->api->m, s->x.run ? NULL : s->x.sandbox, &s->x.o, &s->x.cmd,
				sse_output, s, &res, &e);
	if (rc < 0 && s->x.run && s->x.o.language)
		ac_language_explain(s->api->m, &s->x.o, rc, &res, e);
	for (int i = 0; i < 2; i++)
		if (s->ncarry[i])
			sse_text(s, i + 1, s->carry[i], s->ncarry[i]);
	if (rc < 0 && !command_failure(rc, e, &res)) {
		sse_event(s, "error",
			  json_pack("{ss si}", "message", e ? e->msg : "failed", "status",
				    e ? ac_error_http_status(e) : 500));
	} else {
		json_t *done = json_pack("{si sb sb}", "exit_code", res.exit_code, "success",
					 rc == 0 && res.exit_code == 0, "timed_out", res.timed_out);
		if (e)
			json_object_set_new(done, "error", json_string(e->msg));
		sse_event(s, "done", done);
	}
	ac_error_free(e);
}

static void sse_free(void *ctx)
{
	sse_t *s = ctx;
	if (s->x.cmd.cancel_fd > 0)
		close(s->x.cmd.cancel_fd);
	exec_req_free(&s->x);
	free(s);
}

/* agentkernel answers /run/stream with an empty command by a stream of one "error" event. */
static void sse_no_command(void *ctx, int fd)
{
	static const char ev[] = "event: error\ndata: {\"message\":\"command is required\"}\n\n";
	(void)ctx;
	(void)ac_write_all(fd, ev, sizeof(ev) - 1);
}

static void sse_no_command_free(void *ctx)
{
	(void)ctx;
}

static bool empty_run_command(const ac_api_req_t *req, ac_api_resp_t *resp)
{
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len,
				  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	json_t *cmd = json_object_get(body, "command");
	bool empty = json_is_array(cmd) && !json_array_size(cmd) &&
		     ac_body_empty(json_object_get(body, "language")) &&
		     ac_body_empty(json_object_get(body, "code"));
	json_decref(body);
	if (!empty)
		return false;
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "text/event-stream";
	resp->stream = (ac_api_stream_t){.fn = sse_no_command, .free_fn = sse_no_command_free};
	return true;
}

static void start_stream(ac_api_t *api, ac_api_req_t *req, const char *sandbox, ac_api_resp_t *resp)
{
	if (!sandbox && empty_run_command(req, resp))
		return;
	sse_t *s = calloc(1, sizeof(*s));
	if (!s) {
		ac_api_fail(resp, 500, "out of memory");
		return;
	}
	s->api = api;
	if (parse_exec_request(api, req, sandbox, &s->x, resp) < 0) {
		s->x.cmd.cancel_fd = 0;
		sse_free(s);
		return;
	}
	/* The stream's thread may outlive the server's descriptor of the connection: it
	 * watches a duplicate of its own. */
	s->x.cmd.cancel_fd =
	    s->x.cmd.cancel_fd > 0 ? fcntl(s->x.cmd.cancel_fd, F_DUPFD_CLOEXEC, 3) : 0;
	if (s->x.cmd.cancel_fd < 0)
		s->x.cmd.cancel_fd = 0;
	if (sandbox) {
		/* Answer a missing or stopped sandbox with a status, before the stream starts. */
		json_t *st = NULL;
		ac_error_t *e = NULL;
		if (ac_manager_info(api->m, sandbox, &st, &e) < 0) {
			ac_api_fail_error(resp, e);
			sse_free(s);
			return;
		}
		bool running = !strcmp(ac_state_str(st, "status", ""), "running");
		json_decref(st);
		if (!running) {
			ac_api_fail(resp, 409, "sandbox '%s' is not running", sandbox);
			sse_free(s);
			return;
		}
	}
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "text/event-stream";
	resp->stream = (ac_api_stream_t){.fn = sse_main, .free_fn = sse_free, .ctx = s};
}

void ac_h_run_stream(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	start_stream(api, req, NULL, resp);
}

void ac_h_exec_stream(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	start_stream(api, req, req->params[0], resp);
}

/* ------------------------------------------------------------------ detached commands */

void ac_h_detach_start(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	exec_req_t x;
	if (parse_exec_request(api, req, req->params[0], &x, resp) == 0) {
		char id[AC_DETACH_ID_LEN + 1];
		json_t *st = NULL;
		ac_error_t *e = NULL;
		x.cmd.cancel_fd = 0; /* outlives its request by design */
		if (ac_detach_start(api->m, x.sandbox, &x.cmd, id, &e) < 0 ||
		    ac_detach_status(api->m, id, &st, &e) < 0)
			ac_api_fail_error(resp, e);
		else
			ac_api_ok(resp, 200, ac_detach_agentkernel_view(st));
	}
	exec_req_free(&x);
}

static bool sandbox_exists(ac_api_t *api, const char *name, ac_api_resp_t *resp)
{
	if (ac_store_exists(ac_manager_store(api->m), name))
		return true;
	ac_api_fail(resp, 404, "no such sandbox: '%s'", name);
	return false;
}

void ac_h_detach_list(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	if (!sandbox_exists(api, req->params[0], resp))
		return;
	json_t *list = NULL;
	ac_error_t *e = NULL;
	if (ac_detach_list(api->m, req->params[0], &list, &e) < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *st;
	json_array_foreach(list, i, st)
	    json_array_append_new(out, ac_detach_agentkernel_view(json_incref(st)));
	json_decref(list);
	ac_api_ok(resp, 200, out);
}

/* The command's status, if it belongs to the sandbox of the path. */
static json_t *detached_of(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	if (!sandbox_exists(api, req->params[0], resp))
		return NULL;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_detach_status(api->m, req->params[1], &st, &e) < 0) {
		ac_api_fail_error(resp, e);
		return NULL;
	}
	if (strcmp(ac_state_str(st, "sandbox", ""), req->params[0])) {
		json_decref(st);
		ac_api_fail(resp, 404, "no detached command '%s' in sandbox '%s'", req->params[1],
			    req->params[0]);
		return NULL;
	}
	return st;
}

void ac_h_detach_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	json_t *st = detached_of(api, req, resp);
	if (st)
		ac_api_ok(resp, 200, ac_detach_agentkernel_view(st));
}

void ac_h_detach_logs(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	const char *stream = ac_api_query(req, "stream");
	if (stream && strcmp(stream, "stdout") && strcmp(stream, "stderr")) {
		ac_api_fail(resp, 400, "'stream' must be stdout or stderr");
		return;
	}
	json_t *st = detached_of(api, req, resp);
	if (!st)
		return;
	json_decref(st);
	json_t *out = json_object();
	for (int i = 0; i < 2; i++) {
		const char *which = i ? "stderr" : "stdout";
		if (stream && strcmp(stream, which))
			continue;
		json_t *text = NULL;
		ac_error_t *e = NULL;
		if (ac_detach_read_log(api->m, req->params[1], i == 1, &text, &e) < 0) {
			json_decref(out);
			ac_api_fail_error(resp, e);
			return;
		}
		json_object_set_new(out, which, text);
	}
	ac_api_ok(resp, 200, out);
}

void ac_h_detach_kill(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	json_t *st = detached_of(api, req, resp);
	if (!st)
		return;
	json_decref(st);
	ac_error_t *e = NULL;
	if (ac_detach_kill(api->m, req->params[1], &e) < 0)
		ac_api_fail_error(resp, e);
	else
		ac_api_ok(resp, 200, json_pack("{ss sb}", "id", req->params[1], "killed", 1));
}
