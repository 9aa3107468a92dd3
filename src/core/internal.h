/* Declarations shared inside libagentcell (not part of the public API). */
#ifndef AGENTCELL_CORE_INTERNAL_H
#define AGENTCELL_CORE_INTERNAL_H

#include "agentcell/manager.h"

const char *ac_manager_home(ac_manager_t *m);
/* The prologue of every operation on one sandbox: a valid, existing name (no lock file is
 * made for one that does not exist), its lock (*lock, to close) and its state (*st). On
 * failure nothing is held. */
int ac_manager_lock_and_load(ac_manager_t *m, const char *name, int *lock, json_t **st,
			     ac_error_t **err);

/* An exec that failed because fork/clone in the sandbox said EAGAIN: e's message names
 * the sandbox's process limit (--pids) instead of "cannot start the command". */
void ac_manager_explain_exec_error(ac_manager_t *m, const char *name, ac_error_t *e);

/* Deletes run/<name>.exec/ (the sandbox's detached command records); backends call it
 * from destroy. */
int ac_detach_remove_records(ac_manager_t *m, const char *name, ac_error_t **err);
/* Detached command records a kill -9 or a removed sandbox left (see detach.c): appended to
 * found as {kind, path, why} and, with remove, deleted. Returns how many. */
int ac_detach_sweep(ac_manager_t *m, bool remove, json_t *found);

#endif
