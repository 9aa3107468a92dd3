/* Robust file I/O: whole-file read and atomic write, mkdir -p, rm -rf (io.c). */
#ifndef AGENTCELL_BASE_IO_H
#define AGENTCELL_BASE_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "agentcell/error.h"

/* write(2)/read(2) until done, retrying EINTR. Return 0 / bytes read, or -1 with errno. */
int ac_write_all(int fd, const void *buf, size_t len);
ssize_t ac_read_all(int fd, void *buf, size_t len);
/* Reads a whole file relative to dirfd (AT_FDCWD ok), refusing more than max bytes.
 * *out is NUL-terminated and must be freed. */
int ac_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
		    ac_error_t **err);
/* Writes data to dirfd/path: temp file, fsync, rename, fsync(dir). Readers see the old or
 * the new content, never a torn file. */
int ac_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
			    ac_error_t **err);
/* Writes a short string to an existing file (cgroup knobs, /proc files). */
int ac_write_string_at(int dirfd, const char *path, const char *s, ac_error_t **err);
/* mkdir -p relative to dirfd; existing directories are fine. */
int ac_mkdir_p_at(int dirfd, const char *path, mode_t mode, ac_error_t **err);
/* rm -rf of dirfd/path without following symlinks and without crossing into other mounts. */
int ac_rm_rf_at(int dirfd, const char *path, ac_error_t **err);
/* One byte and, with fd >= 0, one descriptor (SCM_RIGHTS) over a unix socket: 0 or -1. */
int ac_fd_send(int sock, unsigned char byte, int fd);
/* The other end: 1 (the byte in *byte; *fd the descriptor, close-on-exec, or -1 if none
 * came), 0 at the peer's end, -1 on error. flags: recvmsg's (MSG_DONTWAIT, ...). */
int ac_fd_recv(int sock, unsigned char *byte, int *fd, int flags);

#endif
