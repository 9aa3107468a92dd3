/* The sandbox's root file system (rootfs.c): built by the builder (host root, private
 * mount namespace), entered by init. */
#ifndef AGENTCELL_RT_ROOTFS_H
#define AGENTCELL_RT_ROOTFS_H

#include "agentcell/error.h"
#include "runtime/spec.h"

/* Host base skeleton (filtered /etc, dpkg db, mount points), built once and reused. */
int ac_rootfs_host_base(const char *home, char **path_out, ac_error_t **err);
/* The same, plus a shared lock (*pin_fd, keep it open while the base is in use) that keeps
 * the base from being collected. */
int ac_rootfs_host_base_pinned(const char *home, char **path_out, int *pin_fd, ac_error_t **err);
/* Builds the sandbox root at <staging>/root. */
int ac_rootfs_build(const ac_rt_spec_t *spec, int userns_fd, const char *staging, ac_error_t **err);
/* Inside the new namespaces (init), with the new root as the working directory (the
 * path to it is not searchable by the sandbox's uids): /proc, /dev/pts, masks, hostname,
 * lo, pivot_root. */
int ac_rootfs_enter(const char *hostname, ac_error_t **err);
/* Brings lo up in the caller's network namespace: 0, or -1 with errno. */
int ac_rootfs_lo_up(void);

#endif
