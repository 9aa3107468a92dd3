/* The sandbox's cgroup (cgroup.c): v2, or the v1 memory, cpu and pids hierarchies. */
#ifndef AGENTCELL_RT_CGROUP_H
#define AGENTCELL_RT_CGROUP_H

#include <sys/types.h>

#include "agentcell/error.h"
#include "runtime/spec.h"

typedef struct ac_cgroup ac_cgroup_t;
/* Creates the sandbox's cgroup(s) (v2, or v1 memory/cpu/pids) and applies limits. */
int ac_cgroup_create(const char *leaf, const ac_rt_limits_t *lim, ac_cgroup_t **out,
		     ac_error_t **err);
/* Opens an existing sandbox cgroup without creating it (for stop/resize/cleanup). */
int ac_cgroup_open(const char *leaf, ac_cgroup_t **out, ac_error_t **err);
int ac_cgroup_set_limits(ac_cgroup_t *cg, const ac_rt_limits_t *lim, ac_error_t **err);
/* Moves pid into the cgroup(s). */
int ac_cgroup_attach(ac_cgroup_t *cg, pid_t pid, ac_error_t **err);
/* Moves the calling single-threaded process into the cgroup(s), cheaply (see cgroup.c). */
int ac_cgroup_attach_self(ac_cgroup_t *cg, ac_error_t **err);
/* Kills whatever is left inside, waits for it to be empty and removes the directories. */
int ac_cgroup_destroy(ac_cgroup_t *cg, ac_error_t **err);
void ac_cgroup_free(ac_cgroup_t *cg);
/* Removes empty leftover cgroups of ephemeral runs (prefix "run-"); best effort. */
void ac_cgroup_gc_runs(void);
/* Which cgroup version drives the limits: 1 or 2; 0 if none usable. Root path in *root. */
int ac_cgroup_mode(const char **root);
/* For tests: point the runtime at a different cgroup root and version. */
void ac_cgroup_set_root_for_tests(const char *root, int version);

#endif
