/* Process identity that survives pid reuse (procid.c). */
#ifndef AGENTCELL_BASE_PROCID_H
#define AGENTCELL_BASE_PROCID_H

#include <sys/types.h>

/* Start time (clock ticks since boot) of pid; 0 if it does not exist or is a zombie. */
unsigned long long ac_proc_starttime(pid_t pid);
/* Inode of pid's PID namespace (identifies it); 0 if pid is gone. */
unsigned long long ac_proc_pidns(pid_t pid);
/* The kernel's boot id (36 chars); all zeros and -1 if unreadable. */
int ac_boot_id(char out[37]);

#endif
