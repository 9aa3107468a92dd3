/* The caller's side of a persistent sandbox's supervisor (client.c): exec, detached
 * commands, and ending them from the host. */
#ifndef AGENTCELL_RT_CLIENT_H
#define AGENTCELL_RT_CLIENT_H

#include <sys/types.h>

#include "agentcell/error.h"
#include "agentcell/types.h"
#include "runtime/proto.h"

/* Runs cmd in the sandbox whose supervisor listens on socket_path, streaming through the
 * given descriptors (or a pty when cmd->tty). AC_ERR_NOT_RUNNING: nobody listens on
 * socket_path; AC_ERR_STATE: cmd->cancel_fd reported its peer gone. */
int ac_rt_exec(const char *socket_path, const ac_cmd_t *cmd, int fds[3], ac_result_t *res,
	       ac_error_t **err);

/* Host identities of a detached command and its shim (pid + start time: no pid reuse
 * fools them), so that the host can tell and end what the sandbox's code did to them. */
typedef struct ac_rt_detach_id {
	pid_t pid, shim;
	unsigned long long pid_start, shim_start;
	unsigned long long pidns; /* the sandbox's PID namespace (ac_proc_pidns) */
} ac_rt_detach_id_t;
/* Starts cmd detached in the sandbox; its output goes to the log descriptors and its
 * status record (JSON, AC_DETACH_STATUS_SIZE bytes at offset 0) to status_fd. */
int ac_rt_exec_detach(const char *socket_path, const ac_cmd_t *cmd, int out_fd, int err_fd,
		      int status_fd, ac_rt_detach_id_t *id, ac_error_t **err);
/* 2: the shim is alive; 1: the shim is gone but the command still runs; 0: both gone. */
int ac_rt_detached_state(const ac_rt_detach_id_t *id);
/* Ends a detached command from the host: SIGTERM to its shim, which kills the tree and
 * records the end (returns 0); if the shim was stopped or is gone, the host kills the
 * tree and the command's session itself (returns 1: nobody recorded the end). */
int ac_rt_kill_detached(const ac_rt_detach_id_t *id, ac_error_t **err);

#endif
