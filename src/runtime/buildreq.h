/* A builder's orders, for a builder started as a fresh process (see launch.c). */
#ifndef AGENTCELL_RT_BUILDREQ_H
#define AGENTCELL_RT_BUILDREQ_H

#include <jansson.h>
#include <sys/types.h>

#include "agentcell/error.h"
#include "agentcell/types.h"
#include "runtime/spec.h"

/* Every field of spec and c (NULL: a persistent start), the cgroup leaf and the caller's
 * pid. NULL when out of memory. */
json_t *ac_buildreq_encode(const ac_rt_spec_t *spec, const ac_cmd_t *c, const char *cg_leaf,
			   pid_t caller);
/* Reads fd (a memfd) back into *spec and *cmd (NULL for a start): they point into memory
 * that is never freed. */
int ac_buildreq_decode(int fd, ac_rt_spec_t *spec, ac_cmd_t **cmd, const char **cg_leaf,
		       pid_t *caller, ac_error_t **err);

#endif
