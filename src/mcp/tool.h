/* What the files of the MCP tools share (src/mcp/tools.c: the table, args.c: arguments and
 * results, tools_exec.c and tools_sandbox.c: the handlers). Private to src/mcp. */
#ifndef AGENTCELL_MCP_TOOL_H
#define AGENTCELL_MCP_TOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentcell/manager.h"
#include "mcp/internal.h"

/* One tools/call in progress. */
typedef struct tool_ctx {
	const ac_mcp_tool_env_t *env;
	ac_manager_t *m; /* env->manager */
	bool structured; /* the protocol version has structuredContent */
	ac_mcp_call_t *call;
} tool_ctx_t;

/* A NULL-terminated vector of owned strings. */
typedef struct strv {
	char **v;
	size_t n;
} strv_t;

/* Every argument of every tool, parsed. The schema has checked types and ranges, so one
 * parser serves all tools: each reads only the keys its schema allows. */
typedef struct req {
	const char *name, *path, *description;
	ac_cmd_t cmd;
	strv_t argv, env, labels, selectors;
	strv_t allow_hosts, block_hosts, secrets, publish; /* the network's lists */
	strv_t volumes;					   /* "NAME:/path[:ro]" */
	ac_sandbox_opts_t o;
	bool start;
	uint64_t by;
	mode_t mode;
	const void *data; /* file content to write, len bytes */
	size_t len;
	unsigned char *decoded; /* base64-decoded content (owned) */
	/* agentkernel's arguments (src/mcp/compat.c maps the rest onto the fields above) */
	bool sudo;		 /* sandbox_exec, sandbox_exec_detach: as root, if allowed */
	json_t *files;		 /* sandbox_write_files: {path: content} (borrowed) */
	const char *id, *stream; /* the sandbox_exec_* tools: command id, log stream */
	const char *source_url;	 /* sandbox_create: refused with a tool error */
} req_t;

typedef void (*tool_fn)(tool_ctx_t *c, req_t *r);

/* ---- args.c ---- */

/* Parses args into r (false: c->call says why: -32602, or internal). */
bool ac_mcp_parse_args(tool_ctx_t *c, json_t *args, req_t *r);
void ac_mcp_req_free(req_t *r);
/* Appends owned (freed on failure) to s; false when out of memory. */
bool ac_mcp_strv_add(strv_t *s, char *owned);
/* Sets the call's result: text (UTF-8) and, where the version has it, structured (both
 * consumed; structured may be NULL). */
void ac_mcp_result(tool_ctx_t *c, bool is_error, json_t *text, json_t *structured);
/* An isError result with a formatted text. */
void ac_mcp_tool_error(tool_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Invalid arguments: a -32602 error with this message. */
void ac_mcp_invalid(tool_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An isError result with e's message (e is not consumed). */
void ac_mcp_failed(tool_ctx_t *c, ac_error_t *e);
/* Text result with the structured value also pretty-printed under a first line. */
void ac_mcp_info_result(tool_ctx_t *c, const char *line, json_t *structured);
/* Marks the call as failed inside (-32603); returns false. */
bool ac_mcp_out_of_memory(tool_ctx_t *c);

/* ---- compat.c: agentkernel's argument names ---- */

/* Maps workdir, timeout_ms, ports, compatibility_mode, fast, sudo and source_url onto r
 * (after the rest of the arguments). False: c->call says why (-32602, or a tool error for a
 * value that asks for what agentcell cannot do). */
bool ac_mcp_parse_compat(tool_ctx_t *c, json_t *args, req_t *r);
/* sudo: true only where the operator allowed it ([api] allow_sudo_exec); false: c->call
 * holds the tool error. */
bool ac_mcp_sudo_allowed(tool_ctx_t *c, req_t *r);

/* ---- tools_sandbox.c ---- */

/* agentcell.toml's defaults and command policy, as for the CLI: *cfg owns what o points
 * to after this; release with ac_mcp_opts_release. */
int ac_mcp_apply_config(tool_ctx_t *c, ac_sandbox_opts_t *o, json_t **cfg, ac_error_t **e);
void ac_mcp_opts_release(ac_sandbox_opts_t *o, json_t *cfg);
/* The sandbox's info as the result, under a first line. */
void ac_mcp_sandbox_info_result(tool_ctx_t *c, const char *name, const char *line);

void ac_mcp_tool_create(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_list(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_start(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_stop(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_remove(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_extend(tool_ctx_t *c, req_t *r);

/* ---- tools_exec.c ---- */

void ac_mcp_tool_run(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_file_read(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_file_write(tool_ctx_t *c, req_t *r);

/* ---- tools_detach.c ---- */

void ac_mcp_tool_write_files(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec_detach(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec_status(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec_logs(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec_kill(tool_ctx_t *c, req_t *r);
void ac_mcp_tool_exec_list(tool_ctx_t *c, req_t *r);

#endif
