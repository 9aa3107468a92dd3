/* The isolation backend interface. A backend turns a sandbox state into something that
 * runs (native namespaces, a container, a pod, a job) and runs commands in it. */
#ifndef AGENTCELL_BACKEND_H
#define AGENTCELL_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/types.h"

/* One file operation of src/core/files.c, for a backend that does files itself. */
typedef enum {
	AC_FILES_COPY_IN,  /* host -> path (into path/basename if path is a directory) */
	AC_FILES_COPY_OUT, /* path -> host */
	AC_FILES_READ,	   /* *result: the file (at most AC_FILES_READ_MAX bytes) */
	AC_FILES_WRITE,	   /* data/len/mode -> path, parents created */
	AC_FILES_DELETE,   /* recursive: a tree */
	AC_FILES_MKDIR,	   /* mkdir -p */
	AC_FILES_LIST,	   /* *result: JSON [{name, type, size, mode}] */
} ac_files_op_t;

typedef struct ac_files_req {
	ac_files_op_t op;
	const char *path; /* in the sandbox, absolute */
	const char *host; /* on the host */
	const void *data;
	size_t len;
	mode_t mode;
	bool recursive;
	char **result; /* READ, LIST: NUL-terminated, to free */
	size_t *result_len;
} ac_files_req_t;

typedef struct ac_backend_ops {
	const char *name;
	/* Reserves what a new sandbox needs (e.g. its uid range) and records it in state;
	 * undone by destroy, or by uncreate while the name is not yet the sandbox's. */
	int (*create)(ac_manager_t *m, json_t *state, ac_error_t **err);
	/* Takes back exactly what create recorded in state (its uid slot, its container),
	 * nothing found by name: a create that lost its name to another must not touch
	 * the winner's files, records or logs. Best effort. */
	void (*uncreate)(ac_manager_t *m, const json_t *state);
	/* Starts the sandbox described by state (caller holds the sandbox lock). */
	int (*start)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Stops it; every process is gone on return. Idempotent. */
	int (*stop)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Deletes what the backend keeps for the sandbox (files, layers, reservations). */
	int (*destroy)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* Whether it runs; *pid receives a host pid when one exists (may be NULL). */
	bool (*is_running)(ac_manager_t *m, const json_t *state, long *pid);
	/* Runs a command in a running sandbox. */
	int (*exec)(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int fds[3],
		    ac_result_t *res, ac_error_t **err);
	/* Runs a command in a fresh sandbox described by state, gone afterwards. */
	int (*run)(ac_manager_t *m, const json_t *state, const ac_cmd_t *cmd, int fds[3],
		   ac_result_t *res, ac_error_t **err);
	/* Removes what killed callers of ephemeral runs left behind (best effort). */
	void (*gc)(ac_manager_t *m);
	/* Applies the limits in state (memory_mb, cpus, pids_limit) to the running sandbox.
	 * AC_ERR_STATE when the kernel refuses (memory below current use). */
	int (*resize)(ac_manager_t *m, const json_t *state, ac_error_t **err);
	/* A file operation on a running or stopped sandbox. NULL: the native runtime's
	 * in-root path (src/core/files.c). */
	int (*files)(ac_manager_t *m, const json_t *state, const ac_files_req_t *req,
		     ac_error_t **err);
	/* Starts cmd in the background in a running sandbox (src/core/detach.c): its stdout
	 * and stderr go to out_fd and err_fd (each kept under 8 MiB), and a status record
	 * (AC_DETACH_STATUS_SIZE bytes of JSON at offset 0: state, pid, shim, exit_code, ...)
	 * to status_fd, kept up to date by whoever watches the command (*shim, a host pid). */
	int (*exec_detach)(ac_manager_t *m, const json_t *state, const ac_cmd_t *cmd, int out_fd,
			   int err_fd, int status_fd, long *pid, long *shim, ac_error_t **err);
	/* Kills a detached command's tree; shim and status as recorded. Returns 0 when the
	 * watcher records the end, 1 when it could not (it was gone or stopped: the caller
	 * records the kill). */
	int (*kill_detached)(ac_manager_t *m, const json_t *state, const json_t *status,
			     ac_error_t **err);
	/* For a record that says running: 2 its watcher is alive, 1 the watcher is gone but
	 * the command runs on, 0 both are gone. NULL: the record is trusted. */
	int (*detached_state)(ac_manager_t *m, const json_t *state, const json_t *status);
} ac_backend_ops_t;

extern const ac_backend_ops_t ac_backend_native;
/* The Docker Engine API (Docker, or Podman's compatible API); "docker" and "podman" differ
 * only in where they look for the engine first. */
extern const ac_backend_ops_t ac_backend_docker;
extern const ac_backend_ops_t ac_backend_podman;

#endif
