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

/* Deletes run/<name>.exec/ (the sandbox's detached command records); backends call it
 * from destroy. */
int ac_detach_remove_records(ac_manager_t *m, const char *name, ac_error_t **err);

#endif
