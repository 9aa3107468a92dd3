/* The host-side watcher of a detached command on a remote engine (watcher.c), shared by the
 * Kubernetes (pods/exec) and Nomad (allocation exec) backends. What is engine-specific (the
 * connection, the exec stream, the killer's exec) stays in each backend's detach.c.
 *
 * A watcher holds the command's exec stream for as long as it runs: it appends stdout and
 * stderr to the record's logs (each under 8 MiB, the newest half kept) and keeps the status
 * record (AC_DETACH_STATUS_SIZE bytes of JSON at offset 0) up to date. The command runs under
 * the exec wrapper (execwrap.h) with a kill handle, which the record keeps ("handle"), so that
 * it can be killed and looked for even when the watcher is gone.
 *
 * The watcher is this binary started afresh (argv[1] is the backend's watcher argument, a
 * main() reaching ac_watch_main through ac_backends_helper_main), not a fork of the caller:
 * the caller may be a threaded server (after fork only async-signal-safe calls), and its TLS
 * connection must not be shared by two processes. It gets its orders (a JSON object: the
 * backend's choice) in a memfd, starts in a session of its own, forks once more so that it
 * is nobody's child, connects, and only then tells the caller it runs (or why it could not)
 * on a pipe: a command that could not be started fails exec_detach. */
#ifndef AGENTCELL_BACKENDS_WATCHER_H
#define AGENTCELL_BACKENDS_WATCHER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"

/* ---- in the watcher ---- */

typedef struct ac_watch_log {
	int fd;
	uint64_t size, dropped;
} ac_watch_log_t;

typedef struct ac_watch {
	ac_watch_log_t out, err;
	const char *handle;	       /* the exec wrapper's kill handle */
	const char *where_key, *where; /* the record's "pod": NAME, "alloc": ID */
	char started_at[32];
	unsigned long long me_start; /* this process's start time (the record's shim_start) */
	bool ready;		     /* the caller was told it runs */
} ac_watch_t;

/* The watcher's body, given the orders of ac_watch_spawn: it reports a failure before
 * ac_watch_connected with ac_watch_fail, and ends with ac_watch_end (neither returns). */
typedef void (*ac_watch_body_t)(const json_t *orders);
/* When argv[1] is arg: becomes the watcher (forks once more, closes what is not its own,
 * ignores SIGTERM, SIGINT, SIGHUP and SIGPIPE, takes title as its process title, reads its
 * orders) and runs body; does not return then. Else returns at once. */
void ac_watch_main(int argc, char **argv, const char *arg, const char *title, ac_watch_body_t body);
/* A watcher over the record's descriptors, for handle, the record naming where_key:
 * where (both kept by pointer). */
void ac_watch_init(ac_watch_t *w, const char *handle, const char *where_key, const char *where);
/* The stream is up: the record says running, the caller is told (its exec_detach returns). */
void ac_watch_connected(ac_watch_t *w);
/* Output of the command (to_err: stderr) into its log. */
void ac_watch_output(ac_watch_t *w, bool to_err, const unsigned char *data, size_t len);
/* Before ac_watch_connected: the caller's exec_detach fails with e (NULL: a generic
 * error); exits. */
__attribute__((noreturn)) void ac_watch_fail(const ac_error_t *e);
/* The end, recorded: known (the command's exit code is code), else timed_out (124) or
 * killed from the host (137); stopped: the signal of an exec-kill, 0 if none; broke: the
 * stream broke (the caller ran the killer then), why (may be NULL) says why. Exits. */
__attribute__((noreturn)) void ac_watch_end(ac_watch_t *w, bool known, int code, bool timed_out,
					    int stopped, bool broke, const ac_error_t *why);

/* ---- the caller's side ---- */

/* Starts this binary as the watcher (argv[1] arg) with orders and fds (out, err, status)
 * and waits for its report: 0 with *shim (its pid) once it runs, else -1 with its error. */
int ac_watch_spawn(const char *arg, const json_t *orders, const int fds[3], long *shim,
		   ac_error_t **err);
/* For a record: 2 its watcher (shim, shim_start) runs, 1 it exists but is stopped, 0 it is
 * gone. */
int ac_watch_state(const json_t *status);
/* kill_detached's first half: a live watcher gets SIGTERM (0: it stops the command and
 * records the end); a stopped one is killed (it would record nothing) and, as for one that
 * is gone, 1 says the caller runs the killer and records the kill. -1 when the signal
 * could not be sent. */
int ac_watch_signal(const json_t *status, ac_error_t **err);

#endif
