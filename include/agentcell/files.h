/* Files of a sandbox, running or stopped. Every path inside a sandbox is resolved inside
 * its root (openat2 RESOLVE_IN_ROOT): "..", absolute symlinks and symlinks the sandbox
 * planted can never reach the host. Files written in get the sandbox root as owner; modes
 * are kept except setuid/setgid bits, which are dropped. */
#ifndef AGENTCELL_FILES_H
#define AGENTCELL_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentcell/backend.h"
#include "agentcell/error.h"
#include "agentcell/manager.h"

/* Only regular files, directories and (in copies) symbolic links are read or written:
 * FIFOs, sockets and devices are refused (AC_ERR_INVALID), or skipped inside a copied
 * tree. A native sandbox's file operation is killed when it moved no byte for 60 s (or
 * $AGENTCELL_FILES_TIMEOUT seconds; 0: never) and when the sandbox stops meanwhile. */

/* The calling thread's file operations end when fd's peer hangs up (a request's client
 * socket; 0: none). Returns the previous descriptor, to restore. */
int ac_files_set_cancel_fd(int fd);

/* cp HOST_PATH NAME:PATH (files and trees; into PATH/basename if PATH is a directory). */
int ac_files_copy_in(ac_manager_t *m, const char *name, const char *host_src, const char *path,
		     ac_error_t **err);
/* cp NAME:PATH HOST_PATH. */
int ac_files_copy_out(ac_manager_t *m, const char *name, const char *path, const char *host_dst,
		      ac_error_t **err);
/* Reads a regular file (at most AC_FILES_READ_MAX bytes); *data is NUL-terminated. */
int ac_files_read(ac_manager_t *m, const char *name, const char *path, char **data, size_t *len,
		  ac_error_t **err);
/* Writes a regular file, creating missing parent directories. */
int ac_files_write(ac_manager_t *m, const char *name, const char *path, const void *data,
		   size_t len, mode_t mode, ac_error_t **err);
/* Deletes a file, a symlink or (recursive) a tree. */
int ac_files_delete(ac_manager_t *m, const char *name, const char *path, bool recursive,
		    ac_error_t **err);
/* mkdir -p inside the sandbox. */
int ac_files_mkdir(ac_manager_t *m, const char *name, const char *path, ac_error_t **err);
/* Entries of a directory: [{name, type: file|dir|symlink|other, size, mode}], sorted. */
int ac_files_list(ac_manager_t *m, const char *name, const char *path, json_t **out,
		  ac_error_t **err);

#endif
