/* Declarations shared by the files of src/mcp (not part of the public API; the unit tests
 * use them). */
#ifndef AGENTCELL_MCP_INTERNAL_H
#define AGENTCELL_MCP_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mcp/mcp.h"

static inline void ac_mcp_json_decrefp(json_t **j)
{
	json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(ac_mcp_json_decrefp)))

/* ---- schema.c: the subset of JSON Schema that the tools' schemas use ---- */

/* Whether value satisfies schema. On failure msg receives a one-line reason naming the
 * offending place ("timeout: expected a number, got a string"). */
bool ac_mcp_schema_check(const json_t *schema, const json_t *value, char *msg, size_t msglen);
/* Whether schema uses only keywords and shapes that ac_mcp_schema_check enforces (so a
 * published schema never promises what is not checked). msg says what is wrong. */
bool ac_mcp_schema_supported(const json_t *schema, char *msg, size_t msglen);

/* ---- text.c ---- */

/* ---- tools.c (the table; the handlers are in tools_*.c, see mcp/tool.h) ---- */

/* What a tool call produced: a JSON-RPC result, or (invalid arguments) a message for a
 * -32602 error. */
typedef struct ac_mcp_call {
	json_t *result; /* the CallToolResult object */
	char invalid[512];
	bool internal; /* result NULL, not the caller's fault: -32603 */
} ac_mcp_call_t;

/* The tools/list result for a protocol version (newer fields only where they exist). */
json_t *ac_mcp_tools_list(const char *version);
/* What a tool call may use of its server: no tool reaches back into struct ac_mcp. */
typedef struct ac_mcp_tool_env {
	ac_manager_t *manager;
	/* agentcell.toml for sandbox_run and sandbox_create (NULL: the CLI's default). */
	const char *config_path;
	bool validate_only; /* check and parse the arguments, run nothing (fuzzing) */
	int cancel_fd;	    /* > 0: the client's connection; its commands end when it hangs up */
} ac_mcp_tool_env_t;

/* Runs tool `name` with `args` (an object, or NULL for none). Returns false when there
 * is no such tool. */
bool ac_mcp_tools_call(const ac_mcp_tool_env_t *env, const char *version, const char *name,
		       json_t *args, ac_mcp_call_t *call);
/* Parses and checks every schema of the tool table once (called by ac_mcp_new). */
int ac_mcp_tools_init(ac_error_t **err);
/* The tool table's schemas, for tests: input (or output) schema of tool i, NULL past the
 * end (or when the tool has no output schema). */
const char *ac_mcp_tool_name(size_t i);
json_t *ac_mcp_tool_schema(size_t i, bool output);

/* ---- mcp.c ---- */

/* For the fuzz target: tools/call checks and parses the arguments but runs nothing. */
void ac_mcp_set_validate_only(ac_mcp_t *srv, bool on);

#endif
