/* agentcell error contract (crun style): functions return >= 0 on success; on
 * failure they return < 0 and, when err is non-NULL, store a heap-allocated
 * ac_error_t describing the failure. The library never prints or exits. */
#ifndef AGENTCELL_ERROR_H
#define AGENTCELL_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
	AC_ERR_INTERNAL = 1, /* bug or unexpected system failure        -> 500, exit 1 */
	AC_ERR_INVALID,	     /* bad input from the user                 -> 400, exit 2 */
	AC_ERR_NOT_FOUND,    /* unknown sandbox, file, ...              -> 404, exit 1 */
	AC_ERR_EXISTS,	     /* name taken                              -> 409, exit 1 */
	AC_ERR_STATE,	     /* wrong state (not running, archived ...) -> 409, exit 1 */
	AC_ERR_BACKEND,	     /* the isolation backend failed            -> 502, exit 1 */
	AC_ERR_UNSUPPORTED,  /* feature not available here              -> 501, exit 1 */
	AC_ERR_PERMISSION,   /* policy or privilege refusal             -> 403, exit 1 */
	/* The sandbox (or the command's backend) is not running: distinct from AC_ERR_STATE
	 * so that "not running" is never confused with "the caller went away" (a cancel
	 * is AC_ERR_STATE).                                                -> 409, exit 1 */
	AC_ERR_NOT_RUNNING,
} ac_error_kind_t;

typedef struct ac_error {
	ac_error_kind_t kind;
	int errnum;	/* errno at the failure, 0 if none */
	char msg[1024]; /* one line, no trailing newline */
	int exit_code;	/* non-zero: the CLI exit status to use (e.g. a failed init script's) */
} ac_error_t;

/* Sets *err (if err != NULL and *err == NULL) and returns -1. A non-zero errnum
 * is appended as ": strerror(errnum)". */
int ac_error_set(ac_error_t **err, ac_error_kind_t kind, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#ifdef __clang_analyzer__
/* `make analyze` sees one file at a time: without this it follows paths on which a failed
 * call returned >= 0 without filling its out-parameters. src/base/error.c #undefs it. */
#define ac_error_set(...) (ac_error_set(__VA_ARGS__), -1)
#endif
/* Prepends context ("context: original") to an existing error; no-op if none. */
void ac_error_prefix(ac_error_t **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ac_error_free(ac_error_t *err);
/* Copies in to out (cap bytes, NUL included) with control bytes escaped (\n \t \r \xNN,
 * C1 controls too), cut before an escape that would not fit; every error message goes
 * through it. Returns the length written. */
size_t ac_escape_controls(const char *in, char *out, size_t cap);
/* Maps an error kind to the CLI exit code (2 for usage errors, 1 otherwise). */
int ac_error_exit_code(const ac_error_t *err);
/* Maps an error kind to an HTTP status code. */
int ac_error_http_status(const ac_error_t *err);

#endif
