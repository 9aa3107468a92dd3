/* Declarations shared inside libagentcell (not part of the public API). */
#ifndef AGENTCELL_CORE_INTERNAL_H
#define AGENTCELL_CORE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"

/* The manager (manager.c; build.c reads the host restrictions). */
struct ac_manager {
	ac_store_t *store;
	bool restricted;      /* see ac_manager_restrict_host */
	bool allow_mount_cwd; /* restricted, but the operator allows /workspace */
	char **image_roots;   /* realpaths, NULL-terminated */
};

const char *ac_manager_home(ac_manager_t *m);
/* The context of a backend call made for m by the calling thread (its start cancel
 * descriptor included; files set their own). */
ac_backend_ctx_t ac_manager_ctx(ac_manager_t *m);
/* The prologue of every operation on one sandbox: a valid, existing name (no lock file is
 * made for one that does not exist), its lock (*lock, to close) and its state (*st). On
 * failure nothing is held. */
int ac_manager_lock_and_load(ac_manager_t *m, const char *name, int *lock, json_t **st,
			     ac_error_t **err);

/* An exec that failed because fork/clone in the sandbox said EAGAIN: e's message names
 * the sandbox's process limit (--pids) instead of "cannot start the command". */
void ac_manager_explain_exec_error(ac_manager_t *m, const char *name, ac_error_t *e);

/* Deletes run/<name>.exec/ (the sandbox's detached command records); the manager calls it
 * after a backend's destroy. */
int ac_detach_remove_records(ac_manager_t *m, const char *name, ac_error_t **err);
/* Detached command records a kill -9 or a removed sandbox left (see detach.c): appended to
 * found as {kind, path, why} and, with remove, deleted. Returns how many. */
int ac_detach_sweep(ac_manager_t *m, bool remove, json_t *found);

/* --- manager.c --- */
/* Re-checks a decision under the sandbox's lock: st is the state just loaded (mutable, not
 * saved), running whether it runs. */
typedef bool (*ac_state_pred_t)(ac_manager_t *m, json_t *st, bool running, void *arg);
/* ac_manager_stop, but only when pred (if any) holds: returns 2 when it did not. details
 * (consumed, may be NULL) go into the audit record. */
int ac_manager_stop_if(ac_manager_t *m, const char *name, ac_state_pred_t pred, void *arg,
		       json_t *details, ac_error_t **err);
/* ac_manager_remove, but only when pred (if any) holds: returns 1 when it did not. */
int ac_manager_remove_if(ac_manager_t *m, const char *name, ac_state_pred_t pred, void *arg,
			 json_t *details, ac_error_t **err);

/* --- images.c --- */
/* The images sandboxes use: every state's "image_id" and, beside it, the sandbox's name
 * (both NULL-terminated, to free with ac_strv_free): ac_image_remove/prune's in_use. */
int ac_manager_image_users(ac_manager_t *m, char ***ids, char ***names, ac_error_t **err);

/* --- volumes.c --- */
/* A new state's "volumes": [{name, path, read_only}] from specs ("NAME:/path[:ro]",
 * NULL-terminated or NULL): the backend must have AC_CAP_VOLUMES, each volume exist, at
 * most AC_VOLUMES_MAX, no mount point twice. Nothing is set without specs. */
int ac_volumes_state(ac_manager_t *m, const ac_backend_t *be, char *const *specs, json_t *st,
		     ac_error_t **err);

/* --- rules.c, activity.c --- */
/* Puts the lifetime, policy and labels of o into a new state (created_at, expires_at,
 * ttl_seconds, lifecycle_policy, labels). */
int ac_lifecycle_apply_opts(json_t *st, const ac_sandbox_opts_t *o, ac_error_t **err);
/* last_activity_at = the later of itself and the sandbox's activity mark (in memory). */
void ac_lifecycle_merge_activity(ac_manager_t *m, json_t *st);
/* Deletes the activity mark (on create and remove). */
void ac_lifecycle_forget_activity(ac_manager_t *m, const char *name);

/* --- audit.c --- */
/* Milliseconds since t0 (CLOCK_MONOTONIC), for "duration_ms" details. */
double ac_audit_since_ms(const struct timespec *t0);
void ac_audit_clock(struct timespec *t0);
/* A details object with "duration_ms" set (details may be NULL: a new object). */
json_t *ac_audit_with_duration(json_t *details, const struct timespec *t0);
/* Records an exec (or an ephemeral run): its command (capped), exit code or error. */
void ac_audit_exec(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, const ac_result_t *res,
		   const char *error, const struct timespec *t0);
/* A JSON string of at most max bytes of s, invalid UTF-8 bytes replaced by '?'. */
json_t *ac_audit_string(const char *s, size_t max);

/* Calls fn for every record of the audit log, oldest first (lines that do not parse are
 * skipped). */
int ac_audit_each(ac_manager_t *m, void (*fn)(json_t *rec, void *arg), void *arg, ac_error_t **err);

#endif
