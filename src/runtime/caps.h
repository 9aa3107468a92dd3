/* Capabilities (caps.c): the bounding set and the sandbox's set. */
#ifndef AGENTCELL_RT_CAPS_H
#define AGENTCELL_RT_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "agentcell/error.h"

/* Limits the bounding set to the sandbox's capabilities; host_mount (a writable host
 * directory is mounted) also drops CAP_SETFCAP. */
int ac_caps_limit_bounding(bool host_mount, ac_error_t **err);
/* Drops effective/permitted/inheritable to the sandbox set that is still in the bounding
 * set (and clears ambient). */
int ac_caps_drop_to_sandbox_set(void);
/* The bounding set as a bit mask, and its restoration after joining a user namespace
 * (async-signal-safe). */
uint64_t ac_caps_bounding(void);
int ac_caps_bounding_restore(uint64_t set);
/* Becomes AC_SUPERVISOR_UID keeping the sandbox's capabilities; -1 with errno. */
int ac_caps_become_supervisor(void);

#endif
