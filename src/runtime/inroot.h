/* Host-side work on a sandbox's files, running or stopped (inroot.c). */
#ifndef AGENTCELL_RT_INROOT_H
#define AGENTCELL_RT_INROOT_H

#include <sys/types.h>

#include "agentcell/error.h"
#include "runtime/spec.h"

/* fn runs in a child with a descriptor of the sandbox's root (init_pid > 0: the running
 * sandbox's; else its root file system is built, as for a start, in a private mount
 * namespace) and the host uid of the sandbox's root. Whatever fn must hand back goes
 * through descriptors it was given (it runs in a child). */
typedef int (*ac_rt_root_fn)(int rootfd, uid_t root_uid, void *arg, ac_error_t **err);
/* Bounds on that child: it is killed (and reaped) when cancel_fd (> 0) reports its peer
 * gone, when it moved no byte for timeout_ms (> 0), or when the running sandbox's init
 * exits (a stop). */
typedef struct ac_rt_root_ctl {
	int cancel_fd;
	int timeout_ms;
} ac_rt_root_ctl_t;
int ac_rt_in_root(const ac_rt_spec_t *spec, pid_t init_pid, unsigned long long init_start,
		  const ac_rt_root_ctl_t *ctl, ac_rt_root_fn fn, void *arg, ac_error_t **err);

#endif
