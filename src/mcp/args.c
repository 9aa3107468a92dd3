/* The MCP tools' shared half: parsing the arguments of a tools/call (their schema already
 * checked) into one request, and building the CallToolResult. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/languages.h"
#include "base/json.h"
#include "base/base64.h"
#include "base/util.h"
#include "mcp/tool.h"

/* ------------------------------------------------------------------ results */

/* Sets the call's result: text (UTF-8) and, where the version has it, structured (both
 * consumed; structured may be NULL). */
void ac_mcp_result(tool_ctx_t *c, bool is_error, json_t *text, json_t *structured)
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

void ac_mcp_tool_error(tool_ctx_t *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ac_mcp_result(c, true, ac_json_text(buf, strlen(buf)), NULL);
}

void ac_mcp_invalid(tool_ctx_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->call->invalid, sizeof(c->call->invalid), fmt, ap);
	va_end(ap);
}

void ac_mcp_failed(tool_ctx_t *c, ac_error_t *e)
{
	ac_mcp_tool_error(c, "%s", e ? e->msg : "failed");
}

/* Text result with the structured value also pretty-printed under a first line. */
void ac_mcp_info_result(tool_ctx_t *c, const char *line, json_t *structured)
{
	char *dump = structured ? json_dumps(structured, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_t *text = json_sprintf("%s%s%s", line, dump ? "\n" : "", dump ? dump : "");
	free(dump);
	ac_mcp_result(c, false, text, structured);
}

/* ------------------------------------------------------------------ arguments */

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

bool ac_mcp_strv_add(strv_t *s, char *owned)
{
	return strv_add(s, owned);
}

void ac_mcp_req_free(req_t *r)
{
	strv_free(&r->argv);
	strv_free(&r->env);
	strv_free(&r->labels);
	strv_free(&r->selectors);
	strv_free(&r->allow_hosts);
	strv_free(&r->block_hosts);
	strv_free(&r->secrets);
	strv_free(&r->publish);
	strv_free(&r->volumes);
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

bool ac_mcp_out_of_memory(tool_ctx_t *c)
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
			return ac_mcp_out_of_memory(c);
		return true;
	}
	size_t i;
	json_t *a;
	json_array_foreach(cmd, i, a)
	{
		if (!strv_add(argv, strdup(json_string_value(a))))
			return ac_mcp_out_of_memory(c);
	}
	if (!argv->v[0][0]) {
		ac_mcp_invalid(c, "command[0]: the program name must not be empty");
		return false;
	}
	return true;
}

/* language and code (sandbox_run): the interpreter's command line, the code one argument
 * of it; never together with command. */
static bool parse_code(tool_ctx_t *c, json_t *args, req_t *r)
{
	json_t *lang = json_object_get(args, "language"), *code = json_object_get(args, "code");
	if (!lang && !code)
		return true;
	if (r->argv.v) {
		ac_mcp_invalid(c, "arguments: give either 'command' or 'language' and 'code', "
				  "not both");
		return false;
	}
	if (!lang || !code) {
		ac_mcp_invalid(c, lang ? "arguments: 'language' needs 'code'"
				       : "arguments: 'code' needs 'language'");
		return false;
	}
	const char *l = json_string_value(lang), *text = json_string_value(code);
	size_t len = json_string_length(code);
	char *argv[4];
	ac_error_t *e = NULL;
	if (!ac_language_name_valid(l)) {
		ac_mcp_invalid(c,
			       "language: use 1-%d characters of A-Z a-z 0-9 + # . _ -, starting "
			       "with a letter (known: %s)",
			       AC_LANGUAGE_NAME_MAX, ac_language_names());
		return false;
	}
	if (ac_code_check(text, len, "code", &e) < 0 ||
	    ac_language_argv(l, text, len, argv, &e) < 0) {
		ac_mcp_invalid(c, "%s", e ? e->msg : "code: invalid");
		ac_error_free(e);
		return false;
	}
	for (int i = 0; i < 3; i++)
		if (!strv_add(&r->argv, strdup(argv[i])))
			return ac_mcp_out_of_memory(c);
	r->o.language = l;
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
			ac_mcp_invalid(c, "env[%zu]: '%.64s' is not KEY=VALUE", i, s);
			return false;
		}
		if (!strv_add(out, strdup(s)))
			return ac_mcp_out_of_memory(c);
	}
	json_object_foreach(env, k, v)
	{
		if (!env_key_ok(k, strlen(k))) {
			ac_mcp_invalid(c, "env: '%.64s' is not a variable name", k);
			return false;
		}
		char *kv = NULL;
		if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
			kv = NULL;
		if (!strv_add(out, kv))
			return ac_mcp_out_of_memory(c);
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
	ac_mcp_invalid(c,
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
			ac_mcp_invalid(c, "mode: '%.16s' is not an octal mode such as 0644", s);
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
		return ac_mcp_out_of_memory(c);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (!strv_add(sv, strdup(json_string_value(e))))
			return ac_mcp_out_of_memory(c);
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
			ac_mcp_invalid(c, "content: not valid base64 (RFC 4648, padded)");
			return false;
		}
		r->data = r->decoded;
	}
	return true;
}

bool ac_mcp_parse_args(tool_ctx_t *c, json_t *args, req_t *r)
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
	if (!parse_code(c, args, r))
		return false;
	if ((v = json_object_get(args, "env")) && !parse_env(c, v, &r->env))
		return false;
	r->cmd.argv = r->argv.v;
	r->cmd.env = r->env.v;
	r->cmd.cwd = arg_str(args, "cwd");
	if (r->cmd.cwd && r->cmd.cwd[0] != '/') {
		ac_mcp_invalid(c, "cwd: must be an absolute path");
		return false;
	}
	r->cmd.user = arg_str(args, "user");
	arg_num(args, "timeout", &r->cmd.timeout);
	r->o.image = arg_str(args, "image");
	r->o.template = arg_str(args, "template");
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
	if (!parse_strings(c, json_object_get(args, "allow_hosts"), &r->allow_hosts) ||
	    !parse_strings(c, json_object_get(args, "block_hosts"), &r->block_hosts) ||
	    !parse_strings(c, json_object_get(args, "secret_bindings"), &r->secrets) ||
	    !parse_strings(c, json_object_get(args, "publish"), &r->publish) ||
	    !parse_strings(c, json_object_get(args, "volumes"), &r->volumes))
		return false;
	r->o.volumes = r->volumes.v;
	r->o.allow_hosts = r->allow_hosts.v;
	r->o.block_hosts = r->block_hosts.v;
	r->o.secrets = r->secrets.v;
	r->o.publish = r->publish.v;
	r->o.allowlist_only_hosts = json_is_true(json_object_get(args, "allowlist_only"));
	json_object_foreach(json_object_get(args, "labels"), k, v)
	{
		char *kv = NULL;
		if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
			kv = NULL;
		if (!strv_add(&r->labels, kv))
			return ac_mcp_out_of_memory(c);
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
	r->id = arg_str(args, "id");
	r->stream = arg_str(args, "stream");
	r->files = json_object_get(args, "files");
	return parse_content(c, args, r) && ac_mcp_parse_compat(c, args, r);
}
