/* Shared inside libagentcell between manager.c, lifecycle.c and audit.c (not public). */
#ifndef AGENTCELL_CORE_LIFECYCLE_H
#define AGENTCELL_CORE_LIFECYCLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"

/* --- manager.c --- */
const ac_backend_ops_t *ac_manager_backend_of(const json_t *state, ac_error_t **err);
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

/* --- lifecycle.c --- */
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
/* RFC 3339 UTC with milliseconds, as ac_time_format_rfc3339 but without gmtime_r. */
void ac_audit_timestamp(int64_t unix_ms, char buf[32]);
/* A JSON string of at most max bytes of s, invalid UTF-8 bytes replaced by '?'. */
json_t *ac_audit_string(const char *s, size_t max);

#endif
