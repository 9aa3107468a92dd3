/* A persistent sandbox's init (supervisor.c): serves exec requests on its socket. */
#ifndef AGENTCELL_RT_SUPERVISOR_H
#define AGENTCELL_RT_SUPERVISOR_H

#include "agentcell/types.h"
#include "runtime/spec.h"

/* A command's defaults from the sandbox (an image's config): its user when it names none
 * (set in *cmd), and the working directory it gets when it names none (returned):
 * spec->workdir, else /workspace with mount_cwd, else /. Exec and run alike. */
const char *ac_cmd_defaults(const ac_rt_spec_t *spec, ac_cmd_t *cmd);

/* The persistent sandbox's PID 1 loop. Never returns. */
__attribute__((noreturn)) void ac_supervisor_main(int listen_fd, const ac_rt_spec_t *spec);

#endif
