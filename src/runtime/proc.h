/* Host-side views of processes through /proc (proc.c): identities that survive pid reuse,
 * and the kills that deadlines need. */
#ifndef AGENTCELL_RT_PROC_H
#define AGENTCELL_RT_PROC_H

#include <sys/types.h>

#include "base/procid.h"

/* Host pid of the child of parent whose pid in its own namespace is nspid; 0 if none. */
pid_t ac_proc_find_child_nspid(pid_t parent, pid_t nspid);
/* Sends sig to every descendant of root (host /proc parent links; root itself excepted)
 * and, when sid > 1, to every process of session sid in the PID namespace pidns. Returns
 * how many were signalled. For the host side of deadlines: the sandbox can stop or kill
 * the shims that would otherwise do this. */
int ac_proc_signal_tree(pid_t root, pid_t sid, unsigned long long pidns, int sig);
/* SIGKILLs those until none is left (bounded: about a second of passes). */
void ac_proc_kill_tree(pid_t root, pid_t sid, unsigned long long pidns);

#endif
