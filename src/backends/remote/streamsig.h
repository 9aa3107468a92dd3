/* The signals and the terminal of a remote exec stream (streamsig.c), shared by the
 * Kubernetes (pods/exec) and Nomad (allocation exec) streams: SIGWINCH to send the
 * terminal's size again, and the signals that stop the command (the caller runs the exec
 * wrapper's killer). How the size goes out and how the command is killed is the engine's.
 *
 * The signals are blocked outside ac_stream_sigs_poll and let in only inside it (ppoll), so
 * that none arrives between the check of its flag and the wait: a resize is always sent on
 * before the input that followed it (a user resizes, then types). While messages keep
 * arriving the stream never waits: each turn then lets pending signals in on its own
 * (ac_stream_sigs_take). One stream per process takes signals at a time (the CLI's; a
 * threaded server takes none). */
#ifndef AGENTCELL_BACKENDS_REMOTE_STREAMSIG_H
#define AGENTCELL_BACKENDS_REMOTE_STREAMSIG_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <termios.h>

#include "agentcell/error.h"
#include "agentcell/types.h"

/* After a stop ran the killer: how long the command's status may take to arrive. */
#define AC_STREAM_STOP_GRACE_MS 10000

typedef struct ac_stream_sigs {
	int n, sig[8];
	struct sigaction old[8];
	sigset_t saved, wait;
	bool on;
	int stop; /* the signal that stopped the command, 0 while none */
} ac_stream_sigs_t;

/* Takes the signals of stop (0-terminated, at most 7; NULL: none) and, with winch,
 * SIGWINCH: handlers set, blocked but inside ac_stream_sigs_poll. g is zeroed first. */
void ac_stream_sigs_begin(ac_stream_sigs_t *g, const int *stop, bool winch);
/* At the top of each turn: lets pending signals in; *winch tells whether a SIGWINCH came
 * since the last call. Returns the first stop signal once (g->stop keeps it), else 0. */
int ac_stream_sigs_take(ac_stream_sigs_t *g, bool *winch);
/* poll, letting g's signals in meanwhile. */
int ac_stream_sigs_poll(const ac_stream_sigs_t *g, struct pollfd *p, nfds_t n, int timeout_ms);
/* Gives the signals back (idempotent; g zeroed or begun). */
void ac_stream_sigs_end(ac_stream_sigs_t *g);

/* The size of the first terminal among fds[0..3) (-1 skipped), else cols x rows, else
 * 80 x 24. */
void ac_stream_term_size(const int fds[3], unsigned short rows, unsigned short cols,
			 unsigned *width, unsigned *height);

/* exec -t with a terminal as stdin: keys go to the sandbox's terminal as typed (^C
 * included). Returns whether fd was made raw (*saved then holds its mode for
 * ac_stream_unraw). */
bool ac_stream_raw(int fd, bool tty, struct termios *saved);
void ac_stream_unraw(int fd, bool raw, const struct termios *saved);
/* The end of an exec stream run through the exec wrapper, as the remote streams return it
 * (rc: 0 with code, 1 the deadline passed, -1 an error in *err; stopped: the stop signal
 * that already ran the killer, 0 none). needs_kill: whether the caller must now run the
 * command's killer (a passed deadline or a caller that gave up). result: fills res (the
 * command's code; 124 and timed_out for a deadline; 128+N for a stop without a status)
 * and returns 0, or -1 for an error. */
bool ac_stream_needs_kill(int rc, int stopped, ac_error_t *const *err);
int ac_stream_result(int rc, int code, int stopped, ac_result_t *res);

#endif
