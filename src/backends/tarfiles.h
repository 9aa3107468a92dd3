/* File operations through tar streams, for the backends that reach a sandbox's files only
 * as tars (Docker/Podman: the archive endpoint; Kubernetes: tar over pods/exec). tarfiles.c
 * does every operation of ac_files_req_t (copy in and out, read, write, mkdir, list,
 * delete) with libarchive: the tars it builds hold what the host tree holds (regular files,
 * directories, symbolic links; owner root, setuid/setgid dropped); the tars it reads come
 * from the sandbox and are untrusted: every entry is placed below the destination one
 * component at a time with O_NOFOLLOW, ".." and absolute names refused, only files,
 * directories and links created, sizes and entry counts capped.
 *
 * A backend supplies the transport (ac_tarfiles_io_t): four small calls that move tars and
 * run one command; it never parses a tar itself. */
#ifndef AGENTCELL_BACKENDS_TARFILES_H
#define AGENTCELL_BACKENDS_TARFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/backend.h"
#include "agentcell/error.h"

#define AC_TARFILES_TREE_MAX	(4ull << 30)   /* a tar copied out of a sandbox */
#define AC_TARFILES_LIST_MAX	(256ull << 20) /* the tar a list reads */
#define AC_TARFILES_ENTRIES_MAX 1000000u       /* entries of one tar */

typedef struct ac_tarfiles_io {
	void *arg; /* the transport's, passed to every call */
	/* For messages: who sends the tars ("the container engine", ...), and what a tar
	 * of the sandbox is called ("the container's tar", ...). */
	const char *sender;
	const char *tar_of;
	/* 1 when path exists (*is_dir: it is a directory, following a last symlink), 0 when
	 * it does not, -1 on error. */
	int (*stat)(void *arg, const char *path, bool *is_dir, ac_error_t **err);
	/* Unpacks the tar in fd (the whole file; any offset) into the directory dir: 0 done,
	 * 1 when dir does not exist (nothing done), -1 on error. */
	int (*put)(void *arg, const char *dir, int fd, ac_error_t **err);
	/* A tar of path in *fd (a new descriptor at offset 0): its top entry is path's last
	 * name (for "/": the tree's entries, no top); more than max bytes fails. shallow:
	 * only path and its direct entries are needed (a list; a transport may send more).
	 * AC_ERR_NOT_FOUND "no such file in the sandbox: 'PATH'" when path does not exist. */
	int (*get)(void *arg, const char *path, uint64_t max, bool shallow, int *fd,
		   ac_error_t **err);
	/* Runs argv in the sandbox (only rm and rmdir): 0 with *code and the start of its
	 * stderr in msg (NUL-terminated), -1 when it could not run. */
	int (*run)(void *arg, char **argv, int *code, char *msg, size_t msglen, ac_error_t **err);
} ac_tarfiles_io_t;

/* The transport over a command runner in the sandbox (tarexec.c: tar, sh, rm in the
 * sandbox through the exec wrapper), for backends that reach a sandbox only by exec. */
typedef struct ac_tarexec {
	void *arg;	     /* the backend's, passed to stream and kill */
	const char *name;    /* the sandbox's, for messages */
	const char *backend; /* "kubernetes", "nomad": for messages */
	/* ac_execwrap_argv's run_user and hint (-u is never asked here). */
	const char *run_user, *user_hint;
	int cancel_fd; /* > 0: the caller's (ctx->cancel_fd) */
	/* One exec of argv: stdin from in_fd (-1: none), stdout to out_fd (-1: dropped; more
	 * than out_max bytes (0: no cap) fails with errnum EFBIG), stderr to err_fd. 0 with
	 * *code, 1 when deadline_ms passed first, -1 on error (AC_ERR_STATE when cancel_fd
	 * hung up). */
	int (*stream)(void *arg, char **argv, int in_fd, int out_fd, int err_fd,
		      int64_t deadline_ms, int cancel_fd, uint64_t out_max, int *code,
		      ac_error_t **err);
	/* The killer of the command with exec-wrapper handle id (bounded, best effort). */
	void (*kill)(void *arg, const char *id);
} ac_tarexec_t;

/* io for t (sender, tar_of: see ac_tarfiles_io_t); t must outlive io. */
void ac_tarexec_io(ac_tarexec_t *t, const char *sender, const char *tar_of, ac_tarfiles_io_t *io);
/* One command in the sandbox through the exec wrapper, with the files' deadline (10 min)
 * and the killer after a deadline, cancel or cap: 0 with *code and the start of its stderr
 * in msg, -1 on error. */
int ac_tarexec_run(ac_tarexec_t *t, char **argv, int in_fd, int out_fd, uint64_t out_max, int *code,
		   char *msg, size_t msglen, ac_error_t **err);

/* Does req (see backend.h) through io; the paths are checked here (absolute, no ".."). */
int ac_tarfiles_op(const ac_tarfiles_io_t *io, const ac_files_req_t *req, ac_error_t **err);

/* A tar entry name from a sandbox, relative to the copied tree: strips "." components
 * and extra slashes ("" for the top itself); -1 for "..", or longer than 4095 bytes. */
int ac_tarfiles_name(const char *name, char *out, size_t outlen);

#endif
