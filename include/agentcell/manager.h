/* The sandbox manager: the one API that the CLI, the HTTP API and MCP call. It owns the
 * state store and lifecycle rules and drives a backend (native by default) through
 * struct ac_backend_ops. */
#ifndef AGENTCELL_MANAGER_H
#define AGENTCELL_MANAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "agentcell/store.h"
#include "agentcell/types.h"

typedef struct ac_manager ac_manager_t;

/* Options of create and run, as given by a user; *_set says which were given
 * explicitly (a profile fills the others). */
typedef struct ac_sandbox_opts {
	const char *image;   /* "host" (default) or a directory */
	const char *profile; /* permissive | moderate (default) | restrictive */
	uint64_t memory_mb;
	double cpus;
	uint64_t pids;
	bool mount_cwd, read_only;
	bool memory_set, cpus_set, pids_set, mount_cwd_set, read_only_set;
	const char *cwd;  /* the caller's working directory (for mount_cwd) */
	char **env;	  /* KEY=VALUE, NULL-terminated or NULL */
	const char *name; /* run --keep: optional name */
} ac_sandbox_opts_t;

#define AC_MEMORY_MIN_MB 16ull
#define AC_MEMORY_MAX_MB (1024ull * 1024)
#define AC_CPUS_MIN	 0.01
#define AC_CPUS_MAX	 1024.0
#define AC_PIDS_MIN	 8ull
#define AC_PIDS_MAX	 4194304ull

int ac_manager_open(const char *home, ac_manager_t **out, ac_error_t **err);
void ac_manager_free(ac_manager_t *m);
ac_store_t *ac_manager_store(ac_manager_t *m);

/* Applies the profile and validates: the resulting state object (not saved). */
int ac_manager_build_state(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o,
			   json_t **out, ac_error_t **err);
/* Creates a stopped sandbox. *out (optional) receives its state. */
int ac_manager_create(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o, json_t **out,
		      ac_error_t **err);
/* Starts a sandbox; a running one is left as it is (returns 1). */
int ac_manager_start(ac_manager_t *m, const char *name, ac_error_t **err);
/* Stops a sandbox: every process of it is gone on return; a stopped one is left (returns 1). */
int ac_manager_stop(ac_manager_t *m, const char *name, ac_error_t **err);
/* Stops (if needed) and deletes a sandbox with its files. */
int ac_manager_remove(ac_manager_t *m, const char *name, ac_error_t **err);
/* Every sandbox's state with "status" added, sorted by name. */
int ac_manager_list(ac_manager_t *m, json_t **out, ac_error_t **err);
/* One sandbox's state with "status" (and "pid" when running). */
int ac_manager_info(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err);
/* Runs cmd in a running sandbox, streaming through fds (stdin, stdout, stderr). */
int ac_manager_exec(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int fds[3],
		    ac_result_t *res, ac_error_t **err);
/* Runs cmd in a fresh sandbox. keep: the sandbox is created persistent and left running,
 * its name in *kept_name (to free). */
int ac_manager_run(ac_manager_t *m, const ac_sandbox_opts_t *o, const ac_cmd_t *cmd, int fds[3],
		   bool keep, char **kept_name, ac_result_t *res, ac_error_t **err);

/* "running" or "stopped". */
const char *ac_manager_status(ac_manager_t *m, const json_t *state);

#endif
