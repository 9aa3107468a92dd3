/* The MCP tools that run commands and move files: sandbox_run, sandbox_exec,
 * sandbox_file_read and sandbox_file_write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/capture.h"
#include "agentcell/files.h"
#include "agentcell/languages.h"
#include "base/json.h"
#include "base/base64.h"
#include "base/utf8.h"
#include "base/util.h"
#include "mcp/tool.h"

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
		ac_mcp_failed(c, e);
		return;
	}
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	if (!f) {
		ac_mcp_out_of_memory(c);
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
	ac_mcp_result(c, r->exit_code != 0 || rc < 0, text ? json_stringn(text, text_len) : NULL,
		      st);
	free(text);
}

/* sandbox_run (sandbox NULL: a fresh one-shot sandbox) and sandbox_exec. */
static void run_command(tool_ctx_t *c, req_t *r, const char *sandbox)
{
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	if (!sandbox && ac_mcp_apply_config(c, &r->o, &cfg, &e) < 0) {
		ac_mcp_failed(c, e);
		goto out;
	}
	/* A client that hangs up takes its command with it (over HTTP: see ac_mcp_set_cancel_fd).
	 */
	r->cmd.cancel_fd = c->env->cancel_fd;
	ac_capture_t cap;
	int rc = ac_exec_capture(c->m, sandbox, sandbox ? NULL : &r->o, &r->cmd, AC_MCP_OUTPUT_MAX,
				 &cap, &e);
	/* A code run whose interpreter is missing says so, naming the image. */
	if (rc < 0 && !sandbox && r->o.language)
		ac_language_explain(c->m, &r->o, rc, &cap.res, e);
	exec_result(c, rc, e, &cap, r->cmd.timeout);
	ac_capture_free(&cap);
out:
	ac_mcp_opts_release(&r->o, cfg);
	ac_error_free(e);
}

void ac_mcp_tool_run(tool_ctx_t *c, req_t *r)
{
	run_command(c, r, NULL);
}

void ac_mcp_tool_exec(tool_ctx_t *c, req_t *r)
{
	if (ac_mcp_sudo_allowed(c, r))
		run_command(c, r, r->name);
}

/* ------------------------------------------------------------------ files */

void ac_mcp_tool_file_read(tool_ctx_t *c, req_t *r)
{
	char *data = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_files_read(c->m, r->name, r->path, &data, &len, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	if (len > AC_MCP_FILE_MAX) {
		free(data);
		ac_mcp_tool_error(c,
				  "%s is %zu bytes; sandbox_file_read returns files up to %u bytes",
				  r->path, len, AC_MCP_FILE_MAX);
		return;
	}
	bool text = ac_utf8_is_text(data, len);
	char *b64 = text ? NULL : ac_base64_encode(data, len);
	json_t *content = text ? json_stringn(data, len) : b64 ? json_string(b64) : NULL;
	free(data);
	free(b64);
	if (!content) {
		ac_mcp_out_of_memory(c);
		return;
	}
	json_t *shown = text ? json_incref(content)
			     : json_sprintf("(%s is binary: %zu bytes, base64-encoded below)\n%s",
					    r->path, len, json_string_value(content));
	ac_mcp_result(c, false, shown,
		      json_pack("{ss so ss sI}", "path", r->path, "content", content, "encoding",
				text ? "utf8" : "base64", "size", (json_int_t)len));
}

void ac_mcp_tool_file_write(tool_ctx_t *c, req_t *r)
{
	ac_error_t *e = NULL;
	if (ac_files_write(c->m, r->name, r->path, r->data, r->len, r->mode, &e) < 0) {
		ac_mcp_failed(c, e);
		ac_error_free(e);
		return;
	}
	char mode[8];
	/* What the file gets: setuid and setgid are dropped. */
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(r->mode & 01777));
	json_t *text = json_sprintf("wrote %zu bytes to %s in sandbox '%s' (mode %s)", r->len,
				    r->path, r->name, mode);
	ac_mcp_result(
	    c, false, text,
	    json_pack("{ss sI ss}", "path", r->path, "size", (json_int_t)r->len, "mode", mode));
}
