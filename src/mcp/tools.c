/* The MCP tools: their schemas (published by tools/list and enforced on tools/call) and
 * their handlers, thin calls into the manager, files and capture APIs.
 *
 * Error split (MCP spec, "Error Handling" of tools): arguments that break the schema, or
 * whose syntax is wrong in a way a schema pattern would catch (a duration, an environment
 * entry, base64), are JSON-RPC -32602 errors; everything the manager refuses or that goes
 * wrong while the tool runs (unknown sandbox, command not found, non-zero exit, timeout)
 * is a result with isError true and a text saying what happened. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/api.h"
#include "agentcell/config.h"
#include "agentcell/files.h"
#include "agentcell/util.h"
#include "agentcell/json.h"
#include "mcp/internal.h"

#define TIMEOUT_MAX 604800 /* a week, in seconds */
#define ENV_MAX	    256
#define ARGV_MAX    4096

/* ------------------------------------------------------------------ schemas
 * Written with ' for " (converted once at start-up) to keep them readable; no description
 * may therefore contain an apostrophe. */

#define P_NAME                                                                                     \
	"'name':{'type':'string','minLength':1,'maxLength':63,'description':'Sandbox name: 1-63 "  \
	"characters of A-Z a-z 0-9 _ -, starting and ending with a letter or digit'}"
#define P_COMMAND                                                                                  \
	"'command':{'description':'The command: an array of strings is executed directly "         \
	"(argv, first element the program, looked up in PATH); a string is run with /bin/sh "      \
	"-c','anyOf':[{'type':'array','items':{'type':'string'},'minItems':1,'maxItems':4096},"    \
	"{'type':'string','minLength':1,'maxLength':1048576}]}"
#define P_TIMEOUT                                                                                  \
	"'timeout':{'type':'number','exclusiveMinimum':0,'maximum':604800,'description':'Seconds " \
	"(fractions allowed): the command and everything it started are killed after this long "   \
	"and the exit code is 124. Default: no limit'}"
#define P_ENV                                                                                      \
	"'env':{'description':'Extra environment variables: an object {KEY: value} or an array "   \
	"of KEY=VALUE strings','anyOf':[{'type':'object','additionalProperties':{'type':'string'}" \
	",'maxProperties':256},{'type':'array','items':{'type':'string','minLength':2},"           \
	"'maxItems':256}]}"
#define P_CWD                                                                                      \
	"'cwd':{'type':'string','minLength':1,'maxLength':4096,'description':'Absolute working "   \
	"directory inside the sandbox (default: /, or /workspace with the permissive profile)'}"
#define P_SANDBOX                                                                                  \
	"'backend':{'type':'string','enum':['native','docker','podman','auto'],'description':"     \
	"'Isolation backend: native (default; Linux namespaces, no daemon), docker or podman "     \
	"(their Engine API), auto (native where it can run, else an engine that answers)'},"       \
	"'image':{'type':'string','minLength':1,'maxLength':4096,'description':'native: host "     \
	"(default; the host /usr, /bin, /lib and a filtered /etc under a private writable layer) " \
	"or the absolute path of a root directory below an --image-root directory of the "         \
	"server; docker/podman: an image reference'},"                                             \
	"'profile':{'type':'string','enum':['permissive','moderate','restrictive'],"               \
	"'description':'moderate (default): 512 MB, 1 CPU; restrictive: read-only root, 256 MB, "  \
	"0.5 CPU; permissive: no memory limit, and the server working directory mounted at "       \
	"/workspace if the operator allowed it (mcp --mount-cwd)'},"                               \
	"'memory_mb':{'type':'integer','minimum':16,'maximum':1048576,'description':'Memory "      \
	"limit in MB'},"                                                                           \
	"'disk_mb':{'type':'integer','minimum':16,'maximum':1048576,'description':'Disk limit "    \
	"of the sandbox writable layer in MB, blocks and inodes (default 10240)'},"                \
	"'cpus':{'type':'number','minimum':0.01,'maximum':1024,'description':'CPU limit, "         \
	"fractions allowed'},"                                                                     \
	"'network':{'type':'boolean','description':'Network access. false (default): only "        \
	"loopback. true needs a backend that has it (docker, podman); native refuses it'}"

#define O_EXEC                                                                                     \
	"{'type':'object','properties':{'exit_code':{'type':'integer','description':'0-255; 124 "  \
	"on timeout; 128+N when killed by signal N; 127 command not found'},"                      \
	"'stdout':{'type':'string'},'stderr':{'type':'string'},'timed_out':{'type':'boolean'},"    \
	"'signal':{'type':'integer'},'stdout_truncated_bytes':{'type':'integer'},"                 \
	"'stderr_truncated_bytes':{'type':'integer'}},"                                            \
	"'required':['exit_code','stdout','stderr','timed_out']}"
#define O_INFO                                                                                     \
	"{'type':'object','properties':{'name':{'type':'string'},'status':{'type':'string',"       \
	"'description':'running, stopped or archived'},'uuid':{'type':['string','null']},"         \
	"'backend':{'type':['string','null']},'image':{'type':['string','null']},"                 \
	"'profile':{'type':['string','null']},'memory_mb':{'type':['integer','null']},"            \
	"'disk_mb':{'type':['integer','null'],'description':'null: no disk limit'},"               \
	"'cpus':{'type':['number','null']},'pids_limit':{'type':['integer','null']},"              \
	"'created_at':{'type':['string','null']},'last_activity_at':{'type':['string','null']},"   \
	"'expires_at':{'type':['string','null']},'ttl_seconds':{'type':['integer','null']},"       \
	"'labels':{'type':['object','null'],'additionalProperties':{'type':'string'}},"            \
	"'description':{'type':['string','null']},'agent':{'type':['string','null']},"             \
	"'archived_at':{'type':['string','null']}},'required':['name','status']}"

typedef struct tool_ctx {
	ac_mcp_t *srv;
	ac_manager_t *m;
	bool structured;    /* the protocol version has structuredContent */
	bool validate_only; /* parse the arguments, run nothing (fuzzing) */
	ac_mcp_call_t *call;
} tool_ctx_t;

typedef struct req req_t;
typedef void (*tool_fn)(tool_ctx_t *c, req_t *r);

typedef struct tool {
	const char *name, *title, *description;
	const char *input, *output;
	bool read_only, destructive, idempotent;
	tool_fn fn;
} tool_t;

/* ------------------------------------------------------------------ results */

/* Sets the call's result: text (UTF-8) and, where the version has it, structured (both
 * consumed; structured may be NULL). */
static void set_result(tool_ctx_t *c, bool is_error, json_t *text, json_t *structured)
{
	json_t *r = json_pack("{s[{ss so}]}", "content", "type", "text", "text",
			      text ? text : json_string(""));
	if (r && is_error)
		json_object_set_new(r, "isError", json_true());
	if (r && structured && c->structured)
		json_object_set_new(r, "structuredContent", structured);
	else
		json_decref(structured);
	c->call->result = r;
	c->call->internal = r == NULL;
}

static void tool_error(tool_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tool_error(tool_ctx_t *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	set_result(c, true, ac_json_text(buf, strlen(buf)), NULL);
}

static void invalid(tool_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void invalid(tool_ctx_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->call->invalid, sizeof(c->call->invalid), fmt, ap);
	va_end(ap);
}

static void failed(tool_ctx_t *c, ac_error_t *e)
{
	tool_error(c, "%s", e ? e->msg : "failed");
}

/* Text result with the structured value also pretty-printed under a first line. */
static void info_result(tool_ctx_t *c, const char *line, json_t *structured)
{
	char *dump = structured ? json_dumps(structured, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_t *text = json_sprintf("%s%s%s", line, dump ? "\n" : "", dump ? dump : "");
	free(dump);
	set_result(c, false, text, structured);
}

/* ------------------------------------------------------------------ arguments */

/* A NULL-terminated vector of owned strings. */
typedef struct strv {
	char **v;
	size_t n;
} strv_t;

static void strv_free(strv_t *s)
{
	ac_strv_free(s->v);
	*s = (strv_t){0};
}

static bool strv_add(strv_t *s, char *owned)
{
	char **nv = owned ? realloc(s->v, (s->n + 2) * sizeof(char *)) : NULL;
	if (!nv) {
		free(owned);
		return false;
	}
	s->v = nv;
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
	return true;
}

/* Every argument of every tool, parsed. The schema has checked types and ranges, so one
 * parser serves all tools: each reads only the keys its schema allows. */
struct req {
	const char *name, *path, *description;
	ac_cmd_t cmd;
	strv_t argv, env, labels, selectors;
	ac_sandbox_opts_t o;
	bool start;
	uint64_t by;
	mode_t mode;
	const void *data; /* file content to write, len bytes */
	size_t len;
	unsigned char *decoded; /* base64-decoded content (owned) */
};

static void req_free(req_t *r)
{
	strv_free(&r->argv);
	strv_free(&r->env);
	strv_free(&r->labels);
	strv_free(&r->selectors);
	free(r->decoded);
}

static const char *arg_str(json_t *args, const char *k)
{
	return json_string_value(json_object_get(args, k));
}

/* Numbers the schema has checked (an "integer" may arrive as 3.0). */
static bool arg_num(json_t *args, const char *k, double *out)
{
	json_t *v = json_object_get(args, k);
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

static bool out_of_memory(tool_ctx_t *c)
{
	c->call->internal = true;
	snprintf(c->call->invalid, sizeof(c->call->invalid), "out of memory");
	return false;
}

/* command: an array (argv) or a string for sh -c. */
static bool parse_command(tool_ctx_t *c, json_t *cmd, strv_t *argv)
{
	if (json_is_string(cmd)) {
		if (!strv_add(argv, strdup("/bin/sh")) || !strv_add(argv, strdup("-c")) ||
		    !strv_add(argv, strdup(json_string_value(cmd))))
			return out_of_memory(c);
		return true;
	}
	size_t i;
	json_t *a;
	json_array_foreach(cmd, i, a)
	{
		if (!strv_add(argv, strdup(json_string_value(a))))
			return out_of_memory(c);
	}
	if (!argv->v[0][0]) {
		invalid(c, "command[0]: the program name must not be empty");
		return false;
	}
	return true;
}

static bool env_key_ok(const char *k, size_t len)
{
	return len > 0 && !memchr(k, '=', len);
}

/* env: {KEY: value} or ["KEY=VALUE"]. */
static bool parse_env(tool_ctx_t *c, json_t *env, strv_t *out)
{
	size_t i;
	json_t *v;
	const char *k;
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		const char *eq = strchr(s, '=');
		if (!eq || !env_key_ok(s, (size_t)(eq - s))) {
			invalid(c, "env[%zu]: '%.64s' is not KEY=VALUE", i, s);
			return false;
		}
		if (!strv_add(out, strdup(s)))
			return out_of_memory(c);
	}
	json_object_foreach(env, k, v)
	{
		if (!env_key_ok(k, strlen(k))) {
			invalid(c, "env: '%.64s' is not a variable name", k);
			return false;
		}
		char *kv = NULL;
		if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
			kv = NULL;
		if (!strv_add(out, kv))
			return out_of_memory(c);
	}
	return true;
}

/* A duration: "90s", "30m", "2h", "1d", "3600" or a number of seconds. */
static bool parse_duration(tool_ctx_t *c, json_t *v, const char *k, uint64_t *secs)
{
	if (json_is_string(v)) {
		if (ac_duration_parse(json_string_value(v), secs) == 0)
			return true;
	} else {
		double d = json_number_value(v);
		if (d >= 1 && d <= (double)AC_DURATION_MAX) {
			*secs = (uint64_t)d;
			return true;
		}
	}
	invalid(c,
		"%s: use a whole number with s, m, h or d (90s, 30m, 2h, 1d) or seconds, "
		"at most 100 years",
		k);
	return false;
}

/* mode: an integer (420) or a string of octal digits ("0644"). */
static bool parse_mode(tool_ctx_t *c, json_t *v, mode_t *mode)
{
	*mode = 0644;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		unsigned long m = strtoul(s, &end, 8);
		if (s[0] < '0' || s[0] > '7' || *end || errno || m > 07777) {
			invalid(c, "mode: '%.16s' is not an octal mode such as 0644", s);
			return false;
		}
		*mode = (mode_t)m;
	} else if (v) {
		*mode = (mode_t)json_number_value(v);
	}
	return true;
}

/* A string or an array of strings into sv. */
static bool parse_strings(tool_ctx_t *c, json_t *v, strv_t *sv)
{
	if (json_is_string(v) && !strv_add(sv, strdup(json_string_value(v))))
		return out_of_memory(c);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (!strv_add(sv, strdup(json_string_value(e))))
			return out_of_memory(c);
	}
	return true;
}

static bool parse_content(tool_ctx_t *c, json_t *args, req_t *r)
{
	json_t *content = json_object_get(args, "content");
	r->data = json_string_value(content);
	r->len = json_string_length(content);
	const char *enc = arg_str(args, "encoding");
	if (content && enc && !strcmp(enc, "base64")) {
		if (ac_base64_decode(json_string_value(content), json_string_length(content),
				     &r->decoded, &r->len) < 0) {
			invalid(c, "content: not valid base64 (RFC 4648, padded)");
			return false;
		}
		r->data = r->decoded;
	}
	return true;
}

static bool parse_args(tool_ctx_t *c, json_t *args, req_t *r)
{
	double d;
	json_t *v;
	const char *k;
	r->name = arg_str(args, "name");
	r->path = arg_str(args, "path");
	r->description = arg_str(args, "description");
	r->start = !json_is_false(json_object_get(args, "start"));
	if ((v = json_object_get(args, "command")) && !parse_command(c, v, &r->argv))
		return false;
	if ((v = json_object_get(args, "env")) && !parse_env(c, v, &r->env))
		return false;
	r->cmd.argv = r->argv.v;
	r->cmd.env = r->env.v;
	r->cmd.cwd = arg_str(args, "cwd");
	if (r->cmd.cwd && r->cmd.cwd[0] != '/') {
		invalid(c, "cwd: must be an absolute path");
		return false;
	}
	r->cmd.user = arg_str(args, "user");
	arg_num(args, "timeout", &r->cmd.timeout);
	r->o.image = arg_str(args, "image");
	r->o.profile = arg_str(args, "profile");
	r->o.backend = arg_str(args, "backend");
	if (arg_num(args, "memory_mb", &d)) {
		r->o.memory_mb = (uint64_t)d;
		r->o.memory_set = true;
	}
	if (arg_num(args, "disk_mb", &d)) { /* the schema's range: never 0 (unlimited) */
		r->o.disk_mb = (uint64_t)d;
		r->o.disk_set = true;
	}
	if (arg_num(args, "cpus", &d)) {
		r->o.cpus = d;
		r->o.cpus_set = true;
	}
	if ((v = json_object_get(args, "network"))) {
		r->o.network = json_is_true(v);
		r->o.network_set = true;
	}
	json_object_foreach(json_object_get(args, "labels"), k, v)
	{
		char *kv = NULL;
		if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
			kv = NULL;
		if (!strv_add(&r->labels, kv))
			return out_of_memory(c);
	}
	r->o.labels = r->labels.v;
	if ((v = json_object_get(args, "ttl")) && !parse_duration(c, v, "ttl", &r->o.ttl_seconds))
		return false;
	r->o.init_script = arg_str(args, "init_script");
	r->o.agent = arg_str(args, "agent");
	if (!parse_strings(c, json_object_get(args, "label"), &r->selectors))
		return false;
	if ((v = json_object_get(args, "by")) && !parse_duration(c, v, "by", &r->by))
		return false;
	if (!parse_mode(c, json_object_get(args, "mode"), &r->mode))
		return false;
	return parse_content(c, args, r);
}

/* agentcell.toml's defaults and command policy, as for the CLI: *cfg owns what o points
 * to after this; release with opts_release. */
static int apply_config(tool_ctx_t *c, ac_sandbox_opts_t *o, json_t **cfg, ac_error_t **e)
{
	*cfg = NULL;
	if (ac_config_load(ac_mcp_config_path(c->srv), ac_store_home(ac_manager_store(c->m)), cfg,
			   e) < 0)
		return -1;
	return ac_config_apply(*cfg, o, e);
}

static void opts_release(ac_sandbox_opts_t *o, json_t *cfg)
{
	/* The arrays ac_config_apply made (the tools never set these themselves). */
	free(o->allow);
	free(o->block);
	free(o->files);
	o->allow = o->block = o->files = NULL;
	json_decref(cfg);
}

/* ------------------------------------------------------------------ sandbox info */

static json_t *info_summary(const json_t *st)
{
	static const char *const keys[] = {
	    "name",	  "status",	 "uuid",   "backend",	  "image",	"profile",
	    "memory_mb",  "disk_mb",	 "cpus",   "pids_limit",  "created_at", "last_activity_at",
	    "expires_at", "ttl_seconds", "labels", "description", "agent",	"archived_at"};
	json_t *out = json_object();
	for (size_t i = 0; out && i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		json_object_set(out, keys[i], v ? v : json_null());
	}
	return out;
}

static void sandbox_info_result(tool_ctx_t *c, const char *name, const char *line)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_info(c->m, name, &st, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *info = info_summary(st);
	json_decref(st);
	info_result(c, line, info);
}

/* ------------------------------------------------------------------ commands */

static void put_stream(FILE *f, const char *label, const char *data, size_t len, size_t dropped)
{
	fprintf(f, "--- %s ---\n", label);
	if (len == 0 && dropped == 0) {
		fputs("(empty)\n", f);
		return;
	}
	json_t *t = ac_json_text(data, len);
	if (t)
		fwrite(json_string_value(t), 1, json_string_length(t), f);
	json_decref(t);
	if (len && data[len - 1] != '\n')
		fputc('\n', f);
	if (dropped)
		fprintf(f, "[... %zu more bytes not shown]\n", dropped);
}

/* The result of ac_exec_capture (rc, e) for run and exec. */
static void exec_result(tool_ctx_t *c, int rc, ac_error_t *e, ac_capture_t *cap, double timeout)
{
	ac_result_t *r = &cap->res;
	bool not_run = rc < 0 && (r->exit_code == 126 || r->exit_code == 127);
	if (rc < 0 && !not_run) {
		failed(c, e);
		return;
	}
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	if (!f) {
		out_of_memory(c);
		return;
	}
	fprintf(f, "exit_code: %d", r->exit_code);
	if (r->timed_out)
		fprintf(f,
			" (timed out after %gs: the command and everything it started were "
			"killed)",
			timeout);
	else if (r->signal)
		fprintf(f, " (killed by signal %d)", r->signal);
	fputc('\n', f);
	if (not_run)
		fprintf(f, "error: %s\n", e ? e->msg : "the command could not be run");
	put_stream(f, "stdout", cap->out, cap->out_len, cap->out_dropped);
	put_stream(f, "stderr", cap->err, cap->err_len, cap->err_dropped);
	fclose(f);
	json_t *st =
	    json_pack("{si so so sb}", "exit_code", r->exit_code, "stdout",
		      ac_json_text(cap->out, cap->out_len), "stderr",
		      not_run && cap->err_len == 0 && e ? ac_json_text(e->msg, strlen(e->msg))
							: ac_json_text(cap->err, cap->err_len),
		      "timed_out", r->timed_out);
	if (st && r->signal)
		json_object_set_new(st, "signal", json_integer(r->signal));
	if (st && cap->out_dropped)
		json_object_set_new(st, "stdout_truncated_bytes",
				    json_integer((json_int_t)cap->out_dropped));
	if (st && cap->err_dropped)
		json_object_set_new(st, "stderr_truncated_bytes",
				    json_integer((json_int_t)cap->err_dropped));
	set_result(c, r->exit_code != 0 || rc < 0, text ? json_stringn(text, text_len) : NULL, st);
	free(text);
}

/* sandbox_run (sandbox NULL: a fresh one-shot sandbox) and sandbox_exec. */
static void run_command(tool_ctx_t *c, req_t *r, const char *sandbox)
{
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	if (!sandbox && apply_config(c, &r->o, &cfg, &e) < 0) {
		failed(c, e);
		goto out;
	}
	ac_capture_t cap;
	int rc = ac_exec_capture(c->m, sandbox, sandbox ? NULL : &r->o, &r->cmd, AC_MCP_OUTPUT_MAX,
				 &cap, &e);
	exec_result(c, rc, e, &cap, r->cmd.timeout);
	ac_capture_free(&cap);
out:
	opts_release(&r->o, cfg);
	ac_error_free(e);
}

static void tool_run(tool_ctx_t *c, req_t *r)
{
	run_command(c, r, NULL);
}

static void tool_exec(tool_ctx_t *c, req_t *r)
{
	run_command(c, r, r->name);
}

/* ------------------------------------------------------------------ lifecycle */

static void tool_create(tool_ctx_t *c, req_t *r)
{
	json_t *cfg = NULL, *made = NULL;
	ac_error_t *e = NULL;
	/* "Created and started, or nothing": marked until the start (see the API's create). */
	r->o.creating_mark = r->start;
	if (apply_config(c, &r->o, &cfg, &e) < 0 ||
	    ac_manager_create(c->m, r->name, &r->o, &made, &e) < 0) {
		failed(c, e);
		goto out;
	}
	/* A half-made sandbox is taken back: the call creates all it was asked or nothing
	 * (and never removes a sandbox that took the name since). */
	const char *uuid = ac_state_str(made, "uuid", "");
	if (r->description && r->description[0] &&
	    ac_manager_describe(c->m, r->name, r->description, &e) < 0) {
		ac_manager_remove_created(c->m, r->name, uuid, NULL);
		failed(c, e);
		goto out;
	}
	if (r->start && ac_manager_start(c->m, r->name, &e) < 0) {
		ac_manager_remove_created(c->m, r->name, uuid, NULL);
		tool_error(c, "sandbox '%s' could not start (it was removed again): %s", r->name,
			   e ? e->msg : "failed");
		goto out;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s sandbox '%s'",
		 r->start ? "created and started" : "created", r->name);
	sandbox_info_result(c, r->name, line);
out:
	json_decref(made);
	opts_release(&r->o, cfg);
	ac_error_free(e);
}

static void tool_list(tool_ctx_t *c, req_t *r)
{
	json_t *all = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_list_labeled(c->m, r->selectors.v, &all, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *list = json_array();
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	if (f && json_array_size(all) == 0)
		fputs("no sandboxes\n", f);
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		json_array_append_new(list, info_summary(st));
		json_t *exp = json_object_get(st, "expires_at");
		if (f)
			fprintf(f, "%s\t%s\texpires %s\n",
				json_string_value(json_object_get(st, "name")),
				json_string_value(json_object_get(st, "status")),
				json_is_string(exp) ? json_string_value(exp) : "never");
	}
	if (f)
		fclose(f);
	json_decref(all);
	set_result(c, false, text ? ac_json_text(text, text_len) : NULL,
		   json_pack("{so}", "sandboxes", list));
	free(text);
}

/* start and stop: rc 1 means there was nothing to do. */
static void lifecycle(tool_ctx_t *c, req_t *r,
		      int (*op)(ac_manager_t *, const char *, ac_error_t **), const char *done,
		      const char *nothing)
{
	ac_error_t *e = NULL;
	int rc = op(c->m, r->name, &e);
	if (rc < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s sandbox '%s'", rc == 1 ? nothing : done, r->name);
	sandbox_info_result(c, r->name, line);
}

static void tool_start(tool_ctx_t *c, req_t *r)
{
	lifecycle(c, r, ac_manager_start, "started", "already running:");
}

static void tool_stop(tool_ctx_t *c, req_t *r)
{
	lifecycle(c, r, ac_manager_stop, "stopped", "not running:");
}

static void tool_remove(tool_ctx_t *c, req_t *r)
{
	ac_error_t *e = NULL;
	if (ac_manager_remove(c->m, r->name, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *text = json_sprintf("removed sandbox '%s' and its files", r->name);
	set_result(c, false, text, json_pack("{ss sb}", "name", r->name, "removed", 1));
}

static void tool_extend(tool_ctx_t *c, req_t *r)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_extend(c->m, r->name, r->by, &st, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *out = json_pack("{ss sO* sO*}", "name", r->name, "expires_at",
				json_object_get(st, "expires_at"), "ttl_seconds",
				json_object_get(st, "ttl_seconds"));
	json_decref(st);
	json_t *text = json_sprintf("sandbox '%s' now expires at %s", r->name,
				    json_string_value(json_object_get(out, "expires_at")));
	set_result(c, false, text, out);
}

/* ------------------------------------------------------------------ files */

static void tool_file_read(tool_ctx_t *c, req_t *r)
{
	char *data = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_files_read(c->m, r->name, r->path, &data, &len, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	if (len > AC_MCP_FILE_MAX) {
		free(data);
		tool_error(c, "%s is %zu bytes; sandbox_file_read returns files up to %u bytes",
			   r->path, len, AC_MCP_FILE_MAX);
		return;
	}
	bool text = ac_mcp_utf8_text(data, len);
	char *b64 = text ? NULL : ac_base64_encode(data, len);
	json_t *content = text ? json_stringn(data, len) : b64 ? json_string(b64) : NULL;
	free(data);
	free(b64);
	if (!content) {
		out_of_memory(c);
		return;
	}
	json_t *shown = text ? json_incref(content)
			     : json_sprintf("(%s is binary: %zu bytes, base64-encoded below)\n%s",
					    r->path, len, json_string_value(content));
	set_result(c, false, shown,
		   json_pack("{ss so ss sI}", "path", r->path, "content", content, "encoding",
			     text ? "utf8" : "base64", "size", (json_int_t)len));
}

static void tool_file_write(tool_ctx_t *c, req_t *r)
{
	ac_error_t *e = NULL;
	if (ac_files_write(c->m, r->name, r->path, r->data, r->len, r->mode, &e) < 0) {
		failed(c, e);
		ac_error_free(e);
		return;
	}
	char mode[8];
	/* What the file gets: setuid and setgid are dropped. */
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(r->mode & 01777));
	json_t *text = json_sprintf("wrote %zu bytes to %s in sandbox '%s' (mode %s)", r->len,
				    r->path, r->name, mode);
	set_result(
	    c, false, text,
	    json_pack("{ss sI ss}", "path", r->path, "size", (json_int_t)r->len, "mode", mode));
}

/* ------------------------------------------------------------------ the table */

static const tool_t tools[] = {
    {"sandbox_run", "Run a command in a fresh sandbox",
     "Runs one command in a new, isolated sandbox that is removed when the command ends, and "
     "returns its exit code, stdout and stderr. Nothing persists: use sandbox_create and "
     "sandbox_exec to keep files between commands.",
     "{'type':'object','properties':{" P_COMMAND "," P_SANDBOX "," P_TIMEOUT "," P_ENV "," P_CWD
     "},'required':['command'],'additionalProperties':false}",
     O_EXEC, false, false, false, tool_run},
    {"sandbox_create", "Create a persistent sandbox",
     "Creates a named sandbox whose files persist across commands, stop and start, and "
     "starts it (unless start is false). Run commands in it with sandbox_exec; remove it "
     "with sandbox_remove.",
     "{'type':'object','properties':{" P_NAME "," P_SANDBOX
     ",'labels':{'type':'object','additionalProperties':{'type':'string','maxLength':255},"
     "'maxProperties':64,'description':'Labels {key: value}; keys 1-63 of A-Z a-z 0-9 . _ / "
     "-, values up to 255 printable characters'},"
     "'ttl':{'anyOf':[{'type':'string','minLength':1,'maxLength':32},{'type':'integer',"
     "'minimum':1}],'description':'Time to live: 90s, 30m, 2h, 1d or seconds; the sandbox "
     "is removed by agentcell gc once it has passed'},"
     "'description':{'type':'string','maxLength':1024,'description':'Free text, at most 1024 "
     "bytes'},"
     "'init_script':{'type':'string','minLength':1,'maxLength':65536,'description':'Shell "
     "commands run with sh -c at every start; if they fail, the start fails'},"
     "'agent':{'type':'string','enum':['claude','codex','gemini','opencode','amp','pi',"
     "'copilot'],'description':'Pass this coding agent API key variables from the server "
     "environment at every start (never stored)'},"
     "'start':{'type':'boolean','description':'Start the sandbox (default true)'}},"
     "'required':['name'],'additionalProperties':false}",
     O_INFO, false, false, false, tool_create},
    {"sandbox_exec", "Run a command in a sandbox",
     "Runs a command in a running sandbox made with sandbox_create and returns its exit "
     "code, stdout and stderr.",
     "{'type':'object','properties':{" P_NAME "," P_COMMAND "," P_TIMEOUT "," P_ENV "," P_CWD
     ",'user':{'type':'string','minLength':1,'maxLength':256,'description':'Run as this user: "
     "a uid or a name from the sandbox /etc/passwd (default root of the sandbox)'}},"
     "'required':['name','command'],'additionalProperties':false}",
     O_EXEC, false, true, false, tool_exec},
    {"sandbox_list", "List sandboxes",
     "Lists the persistent sandboxes with their status, settings, labels and expiry.",
     "{'type':'object','properties':{'label':{'description':'Only sandboxes with this label "
     "(KEY=VALUE), or with all of these labels','anyOf':[{'type':'string','minLength':1},"
     "{'type':'array','items':{'type':'string','minLength':1},'maxItems':64}]}},"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'sandboxes':{'type':'array','items':" O_INFO "}},"
     "'required':['sandboxes']}",
     true, false, true, tool_list},
    {"sandbox_start", "Start a sandbox",
     "Starts a stopped sandbox (a running one is left as it is).",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     O_INFO, false, false, true, tool_start},
    {"sandbox_stop", "Stop a sandbox",
     "Stops a sandbox: every process in it is killed; its files are kept.",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     O_INFO, false, true, true, tool_stop},
    {"sandbox_remove", "Remove a sandbox",
     "Stops a sandbox if it runs and deletes it with all its files.",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'name':{'type':'string'},'removed':{'type':'boolean'}},"
     "'required':['name','removed']}",
     false, true, true, tool_remove},
    {"sandbox_file_read", "Read a file from a sandbox",
     "Reads a regular file of a sandbox (running or stopped), up to 8 MiB. UTF-8 text comes "
     "back as it is, anything else base64-encoded (see encoding).",
     "{'type':'object','properties':{" P_NAME ",'path':{'type':'string','minLength':1,"
     "'maxLength':4096,'description':'Absolute path inside the sandbox'}},"
     "'required':['name','path'],'additionalProperties':false}",
     "{'type':'object','properties':{'path':{'type':'string'},'content':{'type':'string'},"
     "'encoding':{'type':'string','enum':['utf8','base64']},'size':{'type':'integer'}},"
     "'required':['path','content','encoding','size']}",
     true, false, true, tool_file_read},
    {"sandbox_file_write", "Write a file into a sandbox",
     "Writes a file into a sandbox (running or stopped), creating missing parent directories "
     "and replacing an existing file.",
     "{'type':'object','properties':{" P_NAME ",'path':{'type':'string','minLength':1,"
     "'maxLength':4096,'description':'Absolute path inside the sandbox'},"
     "'content':{'type':'string','description':'The file content, as text or (encoding "
     "base64) base64-encoded bytes'},"
     "'encoding':{'type':'string','enum':['utf8','base64'],'description':'utf8 (default) or "
     "base64'},"
     "'mode':{'anyOf':[{'type':'integer','minimum':0,'maximum':4095},{'type':'string',"
     "'minLength':1,'maxLength':5}],'description':'Permission bits: an octal string such as "
     "0755 or an integer (default 0644); setuid and setgid are dropped'}},"
     "'required':['name','path','content'],'additionalProperties':false}",
     "{'type':'object','properties':{'path':{'type':'string'},'size':{'type':'integer'},"
     "'mode':{'type':'string'}},'required':['path','size','mode']}",
     false, true, true, tool_file_write},
    {"sandbox_extend_ttl", "Extend a sandbox time to live",
     "Pushes a sandbox expiry further out: the new expiry is the later of now and the "
     "current expiry, plus by. A sandbox without a TTL gets one.",
     "{'type':'object','properties':{" P_NAME ",'by':{'anyOf':[{'type':'string','minLength':1,"
     "'maxLength':32},{'type':'integer','minimum':1}],'description':'How much longer: 90s, "
     "30m, 2h, 1d or seconds'}},'required':['name','by'],'additionalProperties':false}",
     "{'type':'object','properties':{'name':{'type':'string'},'expires_at':{'type':'string'},"
     "'ttl_seconds':{'type':['integer','null']}},'required':['name','expires_at']}",
     false, false, false, tool_extend},
};

#define NTOOLS AC_ARRAY_SIZE(tools)

static json_t *schemas[NTOOLS][2];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;
static char schemas_error[512];

static json_t *load_schema(const char *text)
{
	char *s = strdup(text);
	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t jerr;
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	free(s);
	if (!j)
		snprintf(schemas_error, sizeof(schemas_error), "%s at %d", jerr.text,
			 jerr.position);
	return j;
}

static void load_schemas(void)
{
	for (size_t i = 0; i < NTOOLS; i++) {
		for (int o = 0; o < 2; o++) {
			const char *text = o ? tools[i].output : tools[i].input;
			if (!text)
				continue;
			char msg[256];
			schemas[i][o] = load_schema(text);
			if (!schemas[i][o] ||
			    !ac_mcp_schema_supported(schemas[i][o], msg, sizeof(msg))) {
				if (schemas[i][o])
					snprintf(schemas_error, sizeof(schemas_error), "%s", msg);
				char tmp[512];
				snprintf(tmp, sizeof(tmp), "%s %s schema: %s", tools[i].name,
					 o ? "output" : "input", schemas_error);
				memcpy(schemas_error, tmp, sizeof(tmp));
				return;
			}
		}
	}
}

int ac_mcp_tools_init(ac_error_t **err)
{
	pthread_once(&schemas_once, load_schemas);
	if (schemas_error[0])
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "MCP tool table: %s", schemas_error);
	return 0;
}

const char *ac_mcp_tool_name(size_t i)
{
	return i < NTOOLS ? tools[i].name : NULL;
}

json_t *ac_mcp_tool_schema(size_t i, bool output)
{
	return i < NTOOLS ? schemas[i][output] : NULL;
}

json_t *ac_mcp_tools_list(const char *version)
{
	bool annotations = strcmp(version, "2025-03-26") >= 0;
	bool newest = strcmp(version, "2025-06-18") >= 0;
	json_t *list = json_array();
	for (size_t i = 0; list && i < NTOOLS; i++) {
		const tool_t *t = &tools[i];
		json_t *o = json_pack("{ss ss sO}", "name", t->name, "description", t->description,
				      "inputSchema", schemas[i][0]);
		if (!o) {
			json_decref(list);
			return NULL;
		}
		if (newest) {
			json_object_set_new(o, "title", json_string(t->title));
			if (schemas[i][1])
				json_object_set(o, "outputSchema", schemas[i][1]);
		}
		if (annotations)
			json_object_set_new(
			    o, "annotations",
			    json_pack("{ss sb sb sb sb}", "title", t->title, "readOnlyHint",
				      t->read_only, "destructiveHint", t->destructive,
				      "idempotentHint", t->idempotent, "openWorldHint", 0));
		json_array_append_new(list, o);
	}
	return list ? json_pack("{so}", "tools", list) : NULL;
}

bool ac_mcp_tools_call(ac_mcp_t *srv, const char *version, const char *name, json_t *args,
		       ac_mcp_call_t *call)
{
	*call = (ac_mcp_call_t){0};
	size_t i;
	for (i = 0; i < NTOOLS && strcmp(tools[i].name, name) != 0; i++)
		;
	if (i == NTOOLS)
		return false;
	json_t *empty = NULL;
	if (!args)
		args = empty = json_object();
	if (!ac_mcp_schema_check(schemas[i][0], args, call->invalid, sizeof(call->invalid))) {
		json_decref(empty);
		return true;
	}
	tool_ctx_t c = {.srv = srv,
			.m = ac_mcp_manager(srv),
			.structured = strcmp(version, "2025-06-18") >= 0,
			.validate_only = ac_mcp_validate_only(srv),
			.call = call};
	req_t r = {0};
	if (parse_args(&c, args, &r)) {
		if (c.validate_only)
			tool_error(&c, "%s: arguments valid; not run (validate-only server)", name);
		else
			tools[i].fn(&c, &r);
	}
	req_free(&r);
	json_decref(empty);
	if (!call->result && !call->invalid[0]) {
		call->internal = true;
		snprintf(call->invalid, sizeof(call->invalid), "the tool gave no result");
	}
	return true;
}
