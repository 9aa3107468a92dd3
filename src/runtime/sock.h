/* Unix stream sockets at paths of any length (sock.c): sun_path holds 108 bytes, so a
 * longer path (a long $AGENTCELL_HOME) is reached through /proc/self/fd/N of its
 * directory. */
#ifndef AGENTCELL_RT_SOCK_H
#define AGENTCELL_RT_SOCK_H

#include <sys/un.h>

#include "agentcell/error.h"

/* Fills *sa for path; *dirfd_out is -1 or the descriptor sa goes through (keep it open
 * until bind or connect has returned, then close it). */
int ac_sock_addr(const char *path, struct sockaddr_un *sa, int *dirfd_out, ac_error_t **err);
/* A listening socket at path, mode 0600 (whatever was at path is replaced); its fd. */
int ac_sock_listen(const char *path, ac_error_t **err);

#endif
