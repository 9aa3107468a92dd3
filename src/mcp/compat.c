/* agentkernel's MCP argument names (its src/mcp.rs, ~0.18) mapped onto agentcell's:
 * workdir (cwd), timeout_ms (timeout), ports (publish), compatibility_mode (a profile and
 * network), fast (sandbox_run), sudo (sandbox_exec, sandbox_exec_detach) and source_url
 * (sandbox_create). A value that asks for what agentcell cannot do is refused by name
 * (a tool error), never dropped. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentcell/config.h"
#include "base/util.h"
#include "mcp/tool.h"

static const char *arg_str(json_t *args, const char *k)
{
	return json_string_value(json_object_get(args, k));
}

static bool map_workdir(tool_ctx_t *c, json_t *args, req_t *r)
{
	const char *wd = arg_str(args, "workdir");
	if (!wd)
		return true;
	if (wd[0] != '/') {
		ac_mcp_invalid(c, "workdir: must be an absolute path");
		return false;
	}
	if (r->cmd.cwd && strcmp(r->cmd.cwd, wd) != 0) {
		ac_mcp_invalid(c, "arguments: 'cwd' and 'workdir' name different directories "
				  "(give one of the two)");
		return false;
	}
	r->cmd.cwd = wd;
	return true;
}

static bool map_timeout_ms(tool_ctx_t *c, json_t *args, req_t *r)
{
	json_t *ms = json_object_get(args, "timeout_ms");
	if (!ms)
		return true;
	if (json_object_get(args, "timeout")) {
		ac_mcp_invalid(c, "arguments: give 'timeout' (seconds) or 'timeout_ms', not both");
		return false;
	}
	r->cmd.timeout = json_number_value(ms) / 1000.0;
	return true;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* One of agentkernel's port mappings ("8080:80", "3000", "5353:53/udp") as a publish entry
 * ([ADDR:]HOSTPORT:PORT; the manager checks the numbers and the address). */
static bool map_port(tool_ctx_t *c, size_t i, const char *p, strv_t *publish)
{
	const char *slash = strchr(p, '/');
	size_t len = slash ? (size_t)(slash - p) : strlen(p);
	if (slash && !strcasecmp(slash, "/udp")) {
		ac_mcp_tool_error(c,
				  "ports[%zu]: '%.80s': UDP port mappings are not supported "
				  "(agentcell publishes TCP ports only)",
				  i, p);
		return false;
	}
	if ((slash && strcasecmp(slash, "/tcp") != 0) || len == 0) {
		ac_mcp_invalid(c,
			       "ports[%zu]: '%.80s' is not PORT, HOSTPORT:PORT or "
			       "ADDR:HOSTPORT:PORT (optionally with /tcp)",
			       i, p);
		return false;
	}
	char *entry = NULL;
	int n = memchr(p, ':', len)  ? asprintf(&entry, "%.*s", (int)len, p)
		: all_digits(p, len) ? asprintf(&entry, "%.*s:%.*s", (int)len, p, (int)len, p)
				     : -2;
	if (n == -2) {
		ac_mcp_invalid(c, "ports[%zu]: '%.80s': a single port must be a number", i, p);
		return false;
	}
	if (n < 0)
		entry = NULL;
	return ac_mcp_strv_add(publish, entry) || ac_mcp_out_of_memory(c);
}

static bool map_ports(tool_ctx_t *c, json_t *args, req_t *r)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(args, "ports"), i, v)
	{
		if (r->publish.n >= 64) {
			ac_mcp_invalid(c, "ports: with publish, at most 64 entries");
			return false;
		}
		if (!map_port(c, i, json_string_value(v), &r->publish))
			return false;
	}
	r->o.publish = r->publish.v;
	return true;
}

/* agentkernel's CompatibilityMode presets, as far as its sandbox_run uses them: their
 * permissions (the profile they start from, network on). */
static const struct {
	const char *mode, *profile;
} modes[] = {
    {"native", "moderate"},
    {"claude", "moderate"},
    {"codex", "restrictive"},
    {"gemini", "moderate"},
};

static bool map_compatibility_mode(tool_ctx_t *c, json_t *args, req_t *r)
{
	const char *mode = arg_str(args, "compatibility_mode");
	if (!mode)
		return true;
	size_t i;
	for (i = 0; i < AC_ARRAY_SIZE(modes) && strcmp(modes[i].mode, mode) != 0; i++)
		;
	if (i == AC_ARRAY_SIZE(modes)) { /* the schema's enum has let it through */
		ac_mcp_invalid(c,
			       "compatibility_mode: must be one of: native, claude, codex, gemini");
		return false;
	}
	if (r->o.profile && strcmp(r->o.profile, modes[i].profile) != 0) {
		ac_mcp_invalid(c,
			       "arguments: compatibility_mode '%s' runs under the %s profile; "
			       "profile '%s' contradicts it (give one of the two)",
			       mode, modes[i].profile, r->o.profile);
		return false;
	}
	r->o.profile = modes[i].profile;
	if (!r->o.network_set) {
		r->o.network = true;
		r->o.network_set = true;
	}
	return true;
}

static bool map_sudo(tool_ctx_t *c, json_t *args, req_t *r)
{
	r->sudo = json_is_true(json_object_get(args, "sudo"));
	if (r->sudo && r->cmd.user && strcmp(r->cmd.user, "root") != 0 &&
	    strcmp(r->cmd.user, "0") != 0) {
		ac_mcp_invalid(c, "arguments: 'sudo' and 'user' contradict each other");
		return false;
	}
	return true;
}

static bool map_source(tool_ctx_t *c, json_t *args, req_t *r)
{
	r->source_url = arg_str(args, "source_url");
	if (!r->source_url && json_object_get(args, "source_ref")) {
		ac_mcp_invalid(c, "arguments: 'source_ref' needs 'source_url'");
		return false;
	}
	if (r->source_url) {
		ac_mcp_tool_error(c,
				  "source_url: cloning a git repository at create is not "
				  "supported by agentcell; create the sandbox with network true, "
				  "then run git clone with sandbox_exec");
		return false;
	}
	return true;
}

bool ac_mcp_parse_compat(tool_ctx_t *c, json_t *args, req_t *r)
{
	/* fast (agentkernel's warm pool) changes nothing here: every run is a fresh sandbox
	 * that honours all its arguments; the schema documents it. */
	return map_workdir(c, args, r) && map_timeout_ms(c, args, r) && map_ports(c, args, r) &&
	       map_compatibility_mode(c, args, r) && map_sudo(c, args, r) && map_source(c, args, r);
}

bool ac_mcp_sudo_allowed(tool_ctx_t *c, req_t *r)
{
	if (!r->sudo)
		return true;
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	if (ac_config_load(c->env->config_path, ac_store_home(ac_manager_store(c->m)), &cfg, &e) <
	    0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return false;
	}
	bool allowed =
	    json_is_true(json_object_get(json_object_get(cfg, "api"), "allow_sudo_exec"));
	json_decref(cfg);
	if (!allowed) {
		ac_mcp_tool_error(c,
				  "sudo: refused: the operator has not allowed commands with sudo "
				  "([api] allow_sudo_exec = true in agentcell.toml)");
		return false;
	}
	r->cmd.user = "0"; /* uid 0 of the sandbox, whatever its image's User */
	return true;
}
