/* The isolation backend interface. A backend turns a sandbox state into something that
 * runs (native namespaces, a container, a pod, a job) and runs commands in it.
 *
 * A backend never sees the manager. Every op gets a narrow context (where agentcell keeps
 * its files, the state store for read-only lookups, the caller's cancel descriptor) and
 * the sandbox's state; it never takes a lock and never writes the store. The manager
 * (src/core/) takes the sandbox's lock around every op that changes a sandbox, and does the
 * bookkeeping around it: the state file, detached-command records, the audit log, activity
 * marks. docs/ARCHITECTURE.md ("Adding a backend") walks through the contract with the
 * native and the Docker backends as examples. */
#ifndef AGENTCELL_BACKEND_H
#define AGENTCELL_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentcell/error.h"
#include "agentcell/store.h"
#include "agentcell/types.h"

/* What a backend call may use, built by the manager for each call. */
typedef struct ac_backend_ctx {
	const char *home; /* $AGENTCELL_HOME, absolute: run/ and data/ are under it */
	/* Read-only lookups (which sandboxes exist, e.g. to tell an orphaned container
	 * from a sandbox's); never written and never locked by a backend. */
	ac_store_t *store;
	/* > 0: readable or hung up when the caller has given up (a client gone during a
	 * start or a file operation); the op then ends early with AC_ERR_STATE. */
	int cancel_fd;
	/* files only: the sandbox's lock, held on entry. A backend that no longer needs
	 * the sandbox to stay as it is (its I/O reaches a running sandbox by another
	 * identity) releases it early with ac_backend_unlock, so that a stop or a remove
	 * never waits for a file transfer. NULL elsewhere. */
	int *lock;
} ac_backend_ctx_t;

/* For a front end that runs commands on several threads (serve, mcp), before its first
 * thread: no backend relays the process's signals to a command, and what every start
 * reads (the cgroup layout) is read now. */
void ac_backends_prepare_threads(void);
/* The process entry points of backends (the native backend's builder re-exec): a main()
 * calls this first; it does not return when argv names one. */
void ac_backends_helper_main(int argc, char **argv);

/* Releases ctx->lock early (see above); idempotent. */
void ac_backend_unlock(const ac_backend_ctx_t *ctx);

/* The most a file read returns (AC_FILES_READ), whatever the backend. */
#define AC_FILES_READ_MAX (64u << 20)

/* One file operation (src/core/files.c checks the arguments and does the bookkeeping). */
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
	/* Reserves what a new sandbox needs (e.g. its uid range) and records it in state;
	 * undone by destroy, or by uncreate while the name is not yet the sandbox's. */
	int (*create)(const ac_backend_ctx_t *ctx, json_t *state, ac_error_t **err);
	/* Takes back exactly what create recorded in state (its uid slot, its container),
	 * nothing found by name: a create that lost its name to another must not touch
	 * the winner's files, records or logs. Best effort. */
	void (*uncreate)(const ac_backend_ctx_t *ctx, const json_t *state);
	/* Starts the sandbox described by state. */
	int (*start)(const ac_backend_ctx_t *ctx, const json_t *state, ac_error_t **err);
	/* Stops it; every process is gone on return. Idempotent. */
	int (*stop)(const ac_backend_ctx_t *ctx, const json_t *state, ac_error_t **err);
	/* Deletes what the backend keeps for the sandbox (files, layers, reservations); the
	 * manager deletes the state and the detached-command records. */
	int (*destroy)(const ac_backend_ctx_t *ctx, const json_t *state, ac_error_t **err);
	/* Whether it runs; *pid receives a host pid when one exists (may be NULL). */
	bool (*is_running)(const ac_backend_ctx_t *ctx, const json_t *state, long *pid);
	/* Runs a command in a running sandbox; AC_ERR_NOT_RUNNING when it is not. state may
	 * be NULL only for a backend declaring AC_CAP_EXEC_BY_NAME, which finds the
	 * sandbox by name alone (the native backend: its supervisor's socket), so the hot
	 * path reads no state file. */
	int (*exec)(const ac_backend_ctx_t *ctx, const char *name, const json_t *state,
		    const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err);
	/* Runs a command in a fresh sandbox described by state, gone afterwards. */
	int (*run)(const ac_backend_ctx_t *ctx, const json_t *state, const ac_cmd_t *cmd,
		   int fds[3], ac_result_t *res, ac_error_t **err);
	/* Removes what killed callers of ephemeral runs left behind on this machine: cheap,
	 * local and best effort (called by list and after runs; never contacts an engine:
	 * remote leftovers are probe's). May be NULL. */
	void (*gc)(const ac_backend_ctx_t *ctx);
	/* AC_CAP_RESIZE: applies the limits in state (memory_mb, cpus, pids_limit) to the
	 * running sandbox; AC_ERR_STATE when refused (memory below current use). */
	int (*resize)(const ac_backend_ctx_t *ctx, const json_t *state, ac_error_t **err);
	/* AC_CAP_FILES: a file operation on a running or stopped sandbox (see ctx->lock). */
	int (*files)(const ac_backend_ctx_t *ctx, const json_t *state, const ac_files_req_t *req,
		     ac_error_t **err);
	/* AC_CAP_DETACH: starts cmd in the background in a running sandbox: its stdout and
	 * stderr go to out_fd and err_fd (each kept under 8 MiB), and a status record
	 * (AC_DETACH_STATUS_SIZE bytes of JSON at offset 0: state, pid, shim, exit_code, ...)
	 * to status_fd, kept up to date by whoever watches the command (*shim, a host pid). */
	int (*exec_detach)(const ac_backend_ctx_t *ctx, const json_t *state, const ac_cmd_t *cmd,
			   int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			   ac_error_t **err);
	/* Kills a detached command's tree; shim and status as recorded. Returns 0 when the
	 * watcher records the end, 1 when it could not (it was gone or stopped: the caller
	 * records the kill). */
	int (*kill_detached)(const ac_backend_ctx_t *ctx, const json_t *state, const json_t *status,
			     ac_error_t **err);
	/* For a record that says running: 2 its watcher is alive, 1 the watcher is gone but
	 * the command runs on, 0 both are gone. NULL: the record is trusted. */
	int (*detached_state)(const ac_backend_ctx_t *ctx, const json_t *state,
			      const json_t *status);
	/* AC_CAP_SNAPSHOT: writes a stopped sandbox's changes (its overlay upper layers: the
	 * root's and, on the host base, those of /usr, /lib*, /var/lib/dpkg under their paths)
	 * as one OCI layer (src/image/ ac_image_diff_*: a gzip tar with .wh. whiteouts) to
	 * out_fd; digest_out and diff_id_out (72 bytes each) receive its digests. */
	int (*snapshot)(const ac_backend_ctx_t *ctx, const json_t *state, int out_fd,
			char *digest_out, char *diff_id_out, ac_error_t **err);
	/* Cheap: whether this backend can be used here now (for --backend auto). */
	bool (*available)(const ac_backend_ctx_t *ctx);
	/* For doctor: what the backend needs, checked for real, as a JSON object: either
	 * {"available", "checks": [{name, ok, detail, fix?}], "summary"} (each failed check
	 * fails doctor) or an engine's report {"engine", "version", "source", "error"?,
	 * "orphans"?: [...]} (information only). May be NULL. */
	json_t *(*probe)(const ac_backend_ctx_t *ctx);
	/* What killed processes left of this backend's on this machine and no sandbox owns
	 * (reservations, claims): appended to found as {kind, path, why}; with remove, each
	 * is deleted (gc). Cheap and local. May be NULL. A remote backend's sweep may ask the
	 * engines this home used; one it could not ask (down, 403) is an entry with
	 * "error" (a one-line message): reported, never removed, never a failure of gc. */
	void (*sweep)(const ac_backend_ctx_t *ctx, bool remove, json_t *found);
} ac_backend_ops_t;

/* What a backend can do beyond the required ops (create, start, stop, destroy, is_running,
 * exec, run); front ends ask ac_backend_require instead of knowing backends by name. */
enum {
	AC_CAP_FILES = 1u << 0,	       /* cp, files, --file */
	AC_CAP_RESIZE = 1u << 1,       /* resize while running */
	AC_CAP_DETACH = 1u << 2,       /* exec --detach */
	AC_CAP_TTY = 1u << 3,	       /* exec -t */
	AC_CAP_NETWORK = 1u << 4,      /* network access beyond loopback */
	AC_CAP_IMAGES = 1u << 5,       /* container image references (else host/directories) */
	AC_CAP_DISK = 1u << 6,	       /* --disk limits */
	AC_CAP_EXEC_BY_NAME = 1u << 7, /* exec without the state (see ops.exec) */
	/* The network only through agentcell's egress proxy (src/net/): host policy, secrets,
	 * published ports. */
	AC_CAP_EGRESS = 1u << 8,
	/* Image references resolved in agentcell's own image store (src/image/), pulled
	 * there when missing; templates (create --template). */
	AC_CAP_IMAGE_STORE = 1u << 9,
	/* ops.snapshot: a sandbox's changes as an image layer (agentcell snapshot). */
	AC_CAP_SNAPSHOT = 1u << 10,
	/* Named volumes (--volume NAME:/path), kept under $AGENTCELL_HOME/volumes. */
	AC_CAP_VOLUMES = 1u << 11,
};

typedef struct ac_backend {
	const char *name;
	const char *const *aliases; /* NULL-terminated or NULL */
	const char *summary;	    /* one line, for doctor and help */
	unsigned caps;
	const ac_backend_ops_t *ops;
} ac_backend_t;

/* The table (src/backends/registry.c), in order of preference for "auto". */
const ac_backend_t *ac_backends(size_t *n);
/* By name or alias; NULL if none. */
const ac_backend_t *ac_backend_find(const char *name);
/* The backend a state names ("backend", default native); AC_ERR_UNSUPPORTED if unknown. */
const ac_backend_t *ac_backend_of(const json_t *state, ac_error_t **err);
/* A user's choice: a name, an alias or "auto" (the first backend whose available() says
 * yes); NULL or "": native. AC_ERR_INVALID naming the choices if unknown. */
const ac_backend_t *ac_backend_resolve(const char *want, const ac_backend_ctx_t *ctx,
				       ac_error_t **err);
/* "native, docker, podman, ... or auto": for messages and help. */
const char *ac_backend_names(void);
/* 0 if b has every capability in caps; else AC_ERR_UNSUPPORTED "WHAT is not supported by
 * the B backend" (what: "resize", "file operations", ...). */
int ac_backend_require(const ac_backend_t *b, unsigned caps, const char *what, ac_error_t **err);

#endif
