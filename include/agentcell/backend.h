/* The isolation backend interface. A backend turns a sandbox state into something that
 * runs (native namespaces, a container, a pod, a job) and runs commands in it. */
#ifndef AGENTCELL_BACKEND_H
#define AGENTCELL_BACKEND_H

#include <jansson.h>
#include <stdbool.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/types.h"

typedef struct ac_backend_ops {
	const char *name;
	/* Reserves what a new sandbox needs (e.g. its uid range) and records it in state;
	 * undone by destroy. */
	int (*create)(ac_manager_t *m, json_t *state, ac_error_t **err);
	/* Starts the sandbox described by state (caller holds the sandbox lock). */
	int (*start)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Stops it; every process is gone on return. Idempotent. */
	int (*stop)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Deletes what the backend keeps for the sandbox (files, layers, reservations). */
	int (*destroy)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Whether it runs; *pid receives a host pid when one exists (may be NULL). */
	bool (*is_running)(ac_manager_t *m, const json_t *state, long *pid);
	/* Runs a command in a running sandbox. */
	int (*exec)(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int fds[3],
		    ac_result_t *res, ac_error_t **err);
	/* Runs a command in a fresh sandbox described by state, gone afterwards. */
	int (*run)(ac_manager_t *m, const json_t *state, const ac_cmd_t *cmd, int fds[3],
		   ac_result_t *res, ac_error_t **err);
	/* Removes what killed callers of ephemeral runs left behind (best effort). */
	void (*gc)(ac_manager_t *m);
	/* Applies the limits in state (memory_mb, cpus, pids_limit) to the running sandbox.
	 * AC_ERR_STATE when the kernel refuses (memory below current use). */
	int (*resize)(ac_manager_t *m, const json_t *state, ac_error_t **err);
} ac_backend_ops_t;

extern const ac_backend_ops_t ac_backend_native;

#endif
