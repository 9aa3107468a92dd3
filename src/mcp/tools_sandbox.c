/* The MCP tools that manage sandboxes: sandbox_create, sandbox_list, sandbox_start,
 * sandbox_stop, sandbox_remove and sandbox_extend_ttl; thin calls into the manager. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/config.h"
#include "base/json.h"
#include "base/util.h"
#include "mcp/tool.h"

/* agentcell.toml's defaults and command policy, as for the CLI: *cfg owns what o points
 * to after this; release with opts_release. */
int ac_mcp_apply_config(tool_ctx_t *c, ac_sandbox_opts_t *o, json_t **cfg, ac_error_t **e)
{
	*cfg = NULL;
	if (ac_config_load(c->env->config_path, ac_store_home(ac_manager_store(c->m)), cfg, e) < 0)
		return -1;
	ac_config_print_warnings(*cfg); /* stderr (stdout is the protocol's), once each */
	if (!*cfg)
		*cfg = json_object(); /* the mark that o owns its arrays (ac_mcp_opts_release) */
	/* o owns every array ac_mcp_opts_release frees: the tool's own lists are copied. */
	char ***lists[] = {&o->allow_hosts, &o->block_hosts};
	for (size_t i = 0; i < AC_ARRAY_SIZE(lists); i++) {
		size_t n = 0;
		while (*lists[i] && (*lists[i])[n])
			n++;
		char **copy = *lists[i] ? calloc(n + 1, sizeof(char *)) : NULL;
		if (*lists[i] && !copy) {
			*lists[i] = NULL;
			return ac_error_set(e, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		if (copy)
			memcpy(copy, *lists[i], n * sizeof(char *));
		*lists[i] = copy;
	}
	return ac_config_apply(*cfg, o, e);
}

void ac_mcp_opts_release(ac_sandbox_opts_t *o, json_t *cfg)
{
	/* The arrays ac_config_apply made (the tools never set these themselves). */
	free(o->allow);
	free(o->block);
	free(o->files);
	o->allow = o->block = o->files = NULL;
	if (cfg) { /* copies (ac_mcp_apply_config) or the config's */
		free(o->allow_hosts);
		free(o->block_hosts);
		o->allow_hosts = o->block_hosts = NULL;
	}
	json_decref(cfg);
}

/* ------------------------------------------------------------------ sandbox info */

static json_t *info_summary(const json_t *st)
{
	static const char *const keys[] = {"name",
					   "status",
					   "uuid",
					   "backend",
					   "image",
					   "profile",
					   "memory_mb",
					   "disk_mb",
					   "cpus",
					   "pids_limit",
					   "created_at",
					   "last_activity_at",
					   "expires_at",
					   "ttl_seconds",
					   "labels",
					   "description",
					   "agent",
					   "archived_at",
					   "created_from_template",
					   "template_help_text"};
	json_t *out = json_object();
	for (size_t i = 0; out && i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		json_object_set(out, keys[i], v ? v : json_null());
	}
	return out;
}

void ac_mcp_sandbox_info_result(tool_ctx_t *c, const char *name, const char *line)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_info(c->m, name, &st, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *info = info_summary(st);
	json_decref(st);
	ac_mcp_info_result(c, line, info);
}

/* ------------------------------------------------------------------ lifecycle */

void ac_mcp_tool_create(tool_ctx_t *c, req_t *r)
{
	json_t *cfg = NULL, *made = NULL;
	ac_error_t *e = NULL;
	/* "Created and started, or nothing": marked until the start (see the API's create). */
	r->o.creating_mark = r->start;
	if (ac_mcp_apply_config(c, &r->o, &cfg, &e) < 0 ||
	    ac_manager_create(c->m, r->name, &r->o, &made, &e) < 0) {
		ac_mcp_failed(c, e);
		goto out;
	}
	/* A half-made sandbox is taken back: the call creates all it was asked or nothing
	 * (and never removes a sandbox that took the name since). */
	const char *uuid = ac_state_str(made, "uuid", "");
	if (r->description && r->description[0] &&
	    ac_manager_describe(c->m, r->name, r->description, &e) < 0) {
		ac_manager_remove_created(c->m, r->name, uuid, NULL);
		ac_mcp_failed(c, e);
		goto out;
	}
	if (r->start && ac_manager_start(c->m, r->name, &e) < 0) {
		ac_manager_remove_created(c->m, r->name, uuid, NULL);
		ac_mcp_tool_error(c, "sandbox '%s' could not start (it was removed again): %s",
				  r->name, e ? e->msg : "failed");
		goto out;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s sandbox '%s'",
		 r->start ? "created and started" : "created", r->name);
	ac_mcp_sandbox_info_result(c, r->name, line);
out:
	json_decref(made);
	ac_mcp_opts_release(&r->o, cfg);
	ac_error_free(e);
}

void ac_mcp_tool_list(tool_ctx_t *c, req_t *r)
{
	json_t *all = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_list_labeled(c->m, r->selectors.v, &all, &e) < 0) {
		ac_mcp_failed(c, e);
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
	ac_mcp_result(c, false, text ? ac_json_text(text, text_len) : NULL,
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
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s sandbox '%s'", rc == 1 ? nothing : done, r->name);
	ac_mcp_sandbox_info_result(c, r->name, line);
}

void ac_mcp_tool_start(tool_ctx_t *c, req_t *r)
{
	lifecycle(c, r, ac_manager_start, "started", "already running:");
}

void ac_mcp_tool_stop(tool_ctx_t *c, req_t *r)
{
	lifecycle(c, r, ac_manager_stop, "stopped", "not running:");
}

void ac_mcp_tool_remove(tool_ctx_t *c, req_t *r)
{
	ac_error_t *e = NULL;
	if (ac_manager_remove(c->m, r->name, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *text = json_sprintf("removed sandbox '%s' and its files", r->name);
	ac_mcp_result(c, false, text, json_pack("{ss sb}", "name", r->name, "removed", 1));
}

void ac_mcp_tool_extend(tool_ctx_t *c, req_t *r)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (!r->by)
		r->by = 3600; /* agentkernel's default: 1h */
	if (ac_manager_extend(c->m, r->name, r->by, &st, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	json_t *out = json_pack("{ss sO* sO*}", "name", r->name, "expires_at",
				json_object_get(st, "expires_at"), "ttl_seconds",
				json_object_get(st, "ttl_seconds"));
	json_decref(st);
	json_t *text = json_sprintf("sandbox '%s' now expires at %s", r->name,
				    json_string_value(json_object_get(out, "expires_at")));
	ac_mcp_result(c, false, text, out);
}
