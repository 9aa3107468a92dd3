/* Types shared by the manager, the backends and the front ends. */
#ifndef AGENTCELL_TYPES_H
#define AGENTCELL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

/* One command to run inside a sandbox. */
typedef struct ac_cmd {
	char **argv;	 /* NULL-terminated, argv[0] non-empty */
	char **env;	 /* extra KEY=VALUE on top of the sandbox's, NULL-terminated or NULL */
	const char *cwd; /* NULL: the sandbox's default (/workspace with --mount-cwd, else /) */
	const char *
	    user; /* NULL: the sandbox's default user (the image's User, else root); a uid or a name from its /etc/passwd */
	double timeout;	 /* seconds; 0: none. The whole command tree is killed at expiry. */
	bool tty;	 /* run on a pseudo-terminal */
	bool stdin_open; /* pass stdin through; otherwise /dev/null */
	unsigned short rows, cols;
	/* > 0: the caller's connected socket (an HTTP client's): when its peer hangs up
	 * (POLLRDHUP), the command is no longer wanted, the native backend kills the whole
	 * command tree (or one-shot sandbox) and the call fails with AC_ERR_STATE. Data the peer
	 * sends meanwhile does not count. <= 0: none. */
	int cancel_fd;
} ac_cmd_t;

/* How a command ended, as a shell reports it. */
typedef struct ac_result {
	int exit_code; /* 0-255; 128+N when killed by signal N; 124 on timeout */
	int signal;    /* terminating signal or 0 */
	bool timed_out;
} ac_result_t;

#endif
