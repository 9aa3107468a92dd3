/* What the native backend offers beyond struct ac_backend_ops. */
#ifndef AGENTCELL_NATIVE_H
#define AGENTCELL_NATIVE_H

#include "agentcell/manager.h"
#include "runtime/runtime.h"

/* Runs fn against sandbox name's root (running or stopped; see ac_rt_in_root), bounded
 * by ctl (may be NULL). The sandbox's lock is held throughout only for a stopped sandbox;
 * for a running one, only while its init is identified. */
int ac_native_in_root(ac_manager_t *m, const char *name, const ac_rt_root_ctl_t *ctl,
		      ac_rt_root_fn fn, void *arg, ac_error_t **err);

#endif
