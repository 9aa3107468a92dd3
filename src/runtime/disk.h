/* Disk limits of the writable layer (disk.c): an ext4 image on a loop device for a
 * persistent sandbox, a tmpfs for a run. */
#ifndef AGENTCELL_RT_DISK_H
#define AGENTCELL_RT_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "agentcell/error.h"

#define AC_DISK_INODE_RATIO 16384 /* bytes per inode, the ext4 default */
/* The inode budget of a disk of mb MB. */
uint64_t ac_disk_inodes(uint64_t mb);
/* 0 if disk images can be made and mounted here (loop devices, mke2fs), else an
 * AC_ERR_UNSUPPORTED error saying what to do. */
int ac_disk_check(ac_error_t **err);
/* Makes data_dir/disk.img (sparse ext4 of mb MB) unless it exists. Caller holds the
 * sandbox's lock. */
int ac_disk_image_ensure(const char *data_dir, uint64_t mb, ac_error_t **err);
/* How much the image may still grow on the host and how much the host file system has
 * free, in MB. */
int ac_disk_headroom(const char *data_dir, uint64_t *growth_mb, uint64_t *free_mb,
		     ac_error_t **err);
/* Builder side: loop-mounts data_dir/disk.img at target (autoclear; one user at a time). */
int ac_disk_mount(const char *data_dir, const char *target, ac_error_t **err);
/* Builder side, around the overlay mounts on a disk image mounted at root: frees the
 * image's reserve of inodes and blocks (so that a full disk still mounts), and makes it
 * again (best effort). */
void ac_disk_reserve_release(const char *root);
void ac_disk_reserve_make(const char *root);
/* Builder side: a tmpfs of mb MB and ac_disk_inodes(mb) inodes at dir (made if missing). */
int ac_disk_tmpfs(const char *dir, uint64_t mb, ac_error_t **err);
/* Waits until no loop device holds data_dir's image (true), at most timeout_ms. */
bool ac_disk_wait_released(const char *data_dir, long timeout_ms);

#endif
