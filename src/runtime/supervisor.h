/* A persistent sandbox's init (supervisor.c): serves exec requests on its socket. */
#ifndef AGENTCELL_RT_SUPERVISOR_H
#define AGENTCELL_RT_SUPERVISOR_H

#include "runtime/spec.h"

/* The persistent sandbox's PID 1 loop. Never returns. */
__attribute__((noreturn)) void ac_supervisor_main(int listen_fd, const ac_rt_spec_t *spec);

#endif
