/* Coding agents a sandbox can be made for, and the limits every layer checks: data shared
 * by the manager, the backends and the front ends (src/base/agents.c). */
#ifndef AGENTCELL_AGENTS_H
#define AGENTCELL_AGENTS_H

#include <jansson.h>

/* The API key variables passed for an agent, NULL-terminated; NULL for an unknown agent. */
const char *const *ac_agent_keys(const char *name);
/* [{name, cli, env: [...]}] */
json_t *ac_agents_table(void);

#define AC_MEMORY_MIN_MB   16ull
#define AC_MEMORY_MAX_MB   (1024ull * 1024)
#define AC_CPUS_MIN	   0.01
#define AC_CPUS_MAX	   1024.0
#define AC_PIDS_MIN	   8ull
#define AC_DISK_MIN_MB	   16ull
#define AC_DISK_MAX_MB	   (1024ull * 1024)
#define AC_DISK_DEFAULT_MB 10240ull
#define AC_PIDS_MAX	   4194304ull

#endif
