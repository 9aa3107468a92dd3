/* The Nomad backend's ops, for the table in src/backends/registry.c. */
#ifndef AGENTCELL_BACKENDS_NOMAD_H
#define AGENTCELL_BACKENDS_NOMAD_H

#include "agentcell/backend.h"

extern const ac_backend_ops_t ac_nomad_ops;

/* detach.c: the watcher of a detached command is this binary with argv[1] ==
 * AC_NM_WATCH_ARG; a main() calls this first (through ac_backends_helper_main): it does not
 * return for that argv. */
#define AC_NM_WATCH_ARG "__nomad-watch"
void ac_nomad_watch_main(int argc, char **argv);

#endif
