/* The native isolation runtime, as the native backend and the front ends see it: the
 * sandbox's specification, run and start (launch.c), exec and detached commands
 * (client.h), work on a sandbox's files (inroot.h), and the facilities the backend drives
 * itself (slots, cgroup, disk, proc). Every kernel facility has its own header next to its
 * file (nsjail style); code inside the runtime includes those, not this one.
 *
 * Process tree of a sandbox (see docs/ARCHITECTURE.md):
 *   caller (host root) --fork--> builder (host root, private mount ns: builds the root fs)
 *   builder --setns(userns) + unshare(pid,net,ipc,uts,cgroup,mnt) + fork--> init (PID 1)
 *   init: /proc, /dev/pts, masks, pivot_root, then either runs one command (ephemeral run)
 *   or serves exec requests on a unix socket (supervisor). */
#ifndef AGENTCELL_RUNTIME_H
#define AGENTCELL_RUNTIME_H

#include <stdbool.h>
#include <sys/types.h>

#include "agentcell/error.h"
#include "agentcell/types.h"
#include "runtime/cgroup.h"
#include "runtime/client.h"
#include "runtime/disk.h"
#include "runtime/inroot.h"
#include "runtime/proc.h"
#include "runtime/slots.h"
#include "runtime/spec.h"

/* Whether run and exec own the process's signals: relay SIGINT/SIGTERM/... to the sandbox
 * (the CLI, default true). A multi-threaded front end (serve) sets it false before its
 * first thread: dispositions are process-wide, and a request must never change them. */
extern bool ac_rt_relay_signals;

/* --- launch.c (the caller's side) and builder.c (ac_rt_builder_main) --- */
/* Runs one command in a fresh ephemeral sandbox and waits for it. */
int ac_rt_run(const ac_rt_spec_t *spec, const ac_cmd_t *cmd, const int fds[3], ac_result_t *res,
	      ac_error_t **err);
/* Starts a persistent sandbox's supervisor; returns its host pid once it serves requests.
 * The supervisor exits unless "y" is written to *ack_fd (then closed) by the caller once
 * it has recorded the pid; closing without writing makes it exit. */
int ac_rt_start(const ac_rt_spec_t *spec, pid_t *pid_out, int *ack_fd, ac_error_t **err);
/* A start that takes longer than this (ms) is given up and its builder killed. */
#define AC_RT_START_DEADLINE_MS 60000
/* Ends the builder of a start whose caller died (recorded at socket_path.builder). */
void ac_rt_end_left_builder(const char *socket_path);
/* A threaded caller starts its builders as its own binary afresh with argv[1] ==
 * AC_RT_BUILDER_ARG: a main() that links the runtime calls ac_rt_builder_main first for
 * that argv (it never returns). */
#define AC_RT_BUILDER_ARG "__builder"
int ac_rt_builder_main(int argc, char **argv) __attribute__((noreturn));

#endif
