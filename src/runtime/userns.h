/* User namespaces (userns.c): the sandbox's, mapped onto its slot's host uids, and the
 * commands' nested one. */
#ifndef AGENTCELL_RT_USERNS_H
#define AGENTCELL_RT_USERNS_H

#include <stdint.h>

#include "agentcell/error.h"
#include "runtime/slots.h"

/* A persistent sandbox's supervisor and shims run as this sandbox uid, which the commands'
 * nested user namespace leaves unmapped (docs/ARCHITECTURE.md, "Commands in a nested user
 * namespace"). */
#define AC_SUPERVISOR_UID (AC_UID_RANGE - 1)

/* A user namespace mapping [0, 65536) to [uid_base, uid_base+65536), as an fd. */
int ac_userns_fd(uint32_t uid_base, ac_error_t **err);
/* The same for [inside, inside+65536) -> [outside, outside+65536): with inside = uid_base
 * and outside 0, an idmapped mount of a sandbox's upper layer shows sandbox ids. */
int ac_userns_fd_map(uint32_t inside, uint32_t outside, ac_error_t **err);
/* Reaps the short-lived helpers left by ac_userns_fd (non-blocking). */
void ac_reap_helpers(void);
/* Enter userns_fd and become its root. */
int ac_userns_enter(int userns_fd, ac_error_t **err);
/* Inside a sandbox (init, as AC_SUPERVISOR_UID, before seccomp): the commands' user
 * namespace, a child of the sandbox's owned by that uid, mapping [0, 65535) onto the same
 * ids; an fd. */
int ac_userns_nested(ac_error_t **err);

#endif
