/* agentkernel's MCP tools on features agentcell has: sandbox_write_files (several files at
 * once, src/core/files.c) and the background commands of include/agentcell/detach.h:
 * sandbox_exec_detach, sandbox_exec_status, sandbox_exec_logs, sandbox_exec_kill and
 * sandbox_exec_list. Results carry agentkernel's DetachedCommand fields (id, sandbox,
 * command, pid, status running|completed|failed, exit_code, started_at) beside ours. */
#include <stdlib.h>
#include <string.h>

#include "agentcell/detach.h"
#include "agentcell/files.h"
#include "mcp/tool.h"

/* ------------------------------------------------------------------ files */

void ac_mcp_tool_write_files(tool_ctx_t *c, req_t *r)
{
	if (json_object_size(r->files) == 0) {
		ac_mcp_invalid(c, "files: give at least one {path: content}");
		return;
	}
	json_t *done = json_array();
	if (!done) {
		ac_mcp_out_of_memory(c);
		return;
	}
	const char *path;
	json_t *v;
	json_object_foreach(r->files, path, v)
	{
		ac_error_t *e = NULL;
		size_t len = json_string_length(v);
		if (ac_files_write(c->m, r->name, path, json_string_value(v), len, 0644, &e) < 0) {
			size_t n = json_array_size(done);
			ac_mcp_tool_error(c, "%s (%zu file%s written before it)",
					  e ? e->msg : "cannot write", n, n == 1 ? "" : "s");
			ac_error_free(e);
			json_decref(done);
			return;
		}
		json_array_append_new(done,
				      json_pack("{ss sI}", "path", path, "size", (json_int_t)len));
	}
	size_t n = json_array_size(done);
	json_t *text =
	    json_sprintf("wrote %zu file%s to sandbox '%s'", n, n == 1 ? "" : "s", r->name);
	ac_mcp_result(
	    c, false, text,
	    json_pack("{ss sI so}", "name", r->name, "count", (json_int_t)n, "files", done));
}

/* ------------------------------------------------------------------ detached commands */

/* j pretty-printed (as agentkernel's text results are), NULL when out of memory. */
static json_t *pretty(const json_t *j)
{
	char *dump = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_t *text = dump ? json_string(dump) : NULL;
	free(dump);
	return text;
}

/* The status object as the result, as text and structured. st is consumed. */
static void detached_result(tool_ctx_t *c, json_t *st)
{
	json_t *text = pretty(ac_detach_agentkernel_view(st));
	ac_mcp_result(c, false, text, st);
}

void ac_mcp_tool_exec_detach(tool_ctx_t *c, req_t *r)
{
	if (!ac_mcp_sudo_allowed(c, r))
		return;
	char id[AC_DETACH_ID_LEN + 1];
	json_t *st = NULL;
	ac_error_t *e = NULL;
	r->cmd.cancel_fd = 0; /* outlives the call by design */
	if (ac_detach_start(c->m, r->name, &r->cmd, id, &e) < 0 ||
	    ac_detach_status(c->m, id, &st, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	detached_result(c, st);
}

void ac_mcp_tool_exec_status(tool_ctx_t *c, req_t *r)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_detach_status(c->m, r->id, &st, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	detached_result(c, st);
}

void ac_mcp_tool_exec_logs(tool_ctx_t *c, req_t *r)
{
	bool err_log = r->stream && !strcmp(r->stream, "stderr");
	json_t *content = NULL;
	ac_error_t *e = NULL;
	if (ac_detach_read_log(c->m, r->id, err_log, &content, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	ac_mcp_result(c, false, json_incref(content),
		      json_pack("{ss ss so}", "id", r->id, "stream", err_log ? "stderr" : "stdout",
				"content", content));
}

void ac_mcp_tool_exec_kill(tool_ctx_t *c, req_t *r)
{
	ac_error_t *e = NULL;
	if (ac_detach_kill(c->m, r->id, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	ac_mcp_result(c, false, json_sprintf("Command %s killed.", r->id),
		      json_pack("{ss sb}", "id", r->id, "killed", 1));
}

void ac_mcp_tool_exec_list(tool_ctx_t *c, req_t *r)
{
	json_t *list = NULL;
	ac_error_t *e = NULL;
	if (r->name && !ac_store_exists(ac_manager_store(c->m), r->name)) {
		ac_mcp_tool_error(c, "no such sandbox: '%s'", r->name);
		return;
	}
	if (ac_detach_list(c->m, r->name, &list, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	size_t i;
	json_t *st;
	json_array_foreach(list, i, st) ac_detach_agentkernel_view(st);
	json_t *text = pretty(list);
	ac_mcp_result(c, false, text, json_pack("{so}", "commands", list));
}
