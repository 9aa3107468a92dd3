/* Commands whose output comes back to a program instead of a terminal: the HTTP API
 * (src/api/exec.c) and the MCP tools (src/mcp/) share them (src/core/capture.c). */
#ifndef AGENTCELL_CAPTURE_H
#define AGENTCELL_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/types.h"

/* Receives output as it arrives: stream 1 (stdout) or 2 (stderr). Called from a helper
 * thread, one call at a time. */
typedef void (*ac_output_fn)(void *ctx, int stream, const char *data, size_t len);

/* Runs cmd (stdin: /dev/null) in the running sandbox `sandbox`, or, when sandbox is NULL, in
 * a fresh one-shot sandbox built from opts, and hands its output to fn live. Returns once
 * the command has exited and its output has been delivered; output that processes it left
 * in the background write later is not waited for. */
int ac_exec_pumped(ac_manager_t *m, const char *sandbox, const ac_sandbox_opts_t *opts,
		   const ac_cmd_t *cmd, ac_output_fn fn, void *ctx, ac_result_t *res,
		   ac_error_t **err);

/* A command's output in memory: each stream keeps its first `max` bytes (NUL-terminated),
 * the rest is counted in *_dropped. */
typedef struct ac_capture {
	char *out, *err;
	size_t out_len, err_len;
	size_t out_dropped, err_dropped;
	size_t max;
	ac_result_t res;
} ac_capture_t;

#define AC_CAPTURE_MAX (16u << 20)

/* ac_exec_pumped into c (zeroed first; c->max = max, 0: AC_CAPTURE_MAX). */
int ac_exec_capture(ac_manager_t *m, const char *sandbox, const ac_sandbox_opts_t *opts,
		    const ac_cmd_t *cmd, size_t max, ac_capture_t *c, ac_error_t **err);
void ac_capture_free(ac_capture_t *c);

#endif
