/* Between the two halves of starting a sandbox: the caller's side (launch.c) and the
 * builder's (builder.c), which runs in a forked child or, for a threaded caller, in a
 * fresh process of the same binary (ac_rt_builder_main). Private to those two files. */
#ifndef AGENTCELL_RT_LAUNCH_H
#define AGENTCELL_RT_LAUNCH_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "agentcell/types.h"
#include "runtime/cgroup.h"
#include "runtime/spec.h"

typedef struct launch {
	const ac_rt_spec_t *spec;
	const ac_cmd_t *cmd; /* NULL: persistent supervisor */
	int userns_fd;
	int listen_fd;
	int log_fd;
	ac_cgroup_t *cg;
	int report[2];
	int ack[2]; /* persistent: the caller confirms it recorded the supervisor */
	int net[2]; /* spec->net_fd: the builder sends a socket of the sandbox's netns */
	pid_t caller;
	const int *stdio; /* run: the command's stdin/stdout/stderr (NULL: the caller's 0/1/2) */
	char cg_leaf[128];
} launch_t;

/* Builder descriptors of a spawned builder: the request, then the launch's own. */
enum { FD_REQ = 3, FD_REPORT, FD_USERNS, FD_LISTEN, FD_LOG, FD_ACK, FD_NET, FD_COUNT };

/* The builder: host root in a private mount namespace; builds the sandbox, forks its init
 * and reports on l->report[1]. */
__attribute__((noreturn)) void ac_launch_builder(launch_t *l);

/* From now on SIGTERM and SIGHUP are relayed to `to`; the dispositions they replace go to
 * old_term and old_hup (either may be NULL). */
void ac_launch_relay(pid_t to, struct sigaction *old_term, struct sigaction *old_hup);

static inline int64_t ac_launch_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
