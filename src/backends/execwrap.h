/* The exec wrapper (execwrap.c) that gives a command what a remote engine's exec API lacks
 * (environment, working directory, a kill handle). Pure: no I/O, it builds argvs. Used by
 * the Kubernetes (pods/exec) and Nomad (allocation exec) backends; "the pod" below is
 * also a Nomad task's container.
 *
 * The exec wrapper (ac_execwrap_argv). The exec API runs argv as the pod's user, in the
 * image's working directory, and cannot signal what it started. So the command runs as
 *   sh -c WRAPPER agentcell-exec ID CWD N K=V... -- ARGV...
 * which exports the N variables (names must be shell names), changes to CWD, exports
 * AGENTCELL_EXEC_ID=ID, records in /tmp/.agentcell-exec/ID the id of a process group and
 * session that holds the command, and execs it:
 *   - already a session leader (the runtime made the exec'd process one, as runc does with a
 *     terminal): the shell's own pid, exec ARGV in place;
 *   - not a process group leader and setsid(1) exists: exec setsid ARGV (setsid(2) then
 *     succeeds in place, no fork: the pid stays);
 *   - else (a group leader outside its own session, or no setsid): ARGV runs as a
 *     background child, under setsid when present, its stdin handed over on descriptor 3,
 *     and the shell waits for it and exits with its status (a background child starts with
 *     SIGINT and SIGQUIT ignored, as with `&`).
 * ac_execwrap_kill_argv's killer (a second exec) stops, then kills, until none is left: the
 * recorded process group, every process whose session or group is the recorded id, and
 * every process whose environment holds AGENTCELL_EXEC_ID=ID (this needs a grep with -z,
 * as GNU's and busybox's have; without one only the session and group are swept), then removes the record.
 * The image needs sh (and for the first exec after a read-only root: a writable /tmp, which
 * the pod has). What escapes: a process that both leaves the session (setsid, a daemon's
 * double fork) and clears or replaces its environment (env -i), and anything the pod's
 * /proc does not show (hidepid). The host side always ends its own connection at the
 * deadline: the killer is the clean-up of the pod, not the deadline. */
#ifndef AGENTCELL_BACKENDS_EXECWRAP_H
#define AGENTCELL_BACKENDS_EXECWRAP_H

#include "agentcell/error.h"
#include "agentcell/types.h"

#define AC_EXECWRAP_DIR	   "/tmp/.agentcell-exec"
#define AC_EXECWRAP_ID_ENV "AGENTCELL_EXEC_ID"
#define AC_EXECWRAP_ID_MAX 64

/* The argv that runs cmd through the wrapper (see the head comment), NULL-terminated, to
 * ac_strv_free. id: the kill handle (1-64 of [A-Za-z0-9_-]; NULL: none); cmd->env names
 * must be shell names; cmd->user is refused (AC_ERR_UNSUPPORTED) unless it equals run_user
 * (the user the exec API runs every command as, NULL: the image's, which exec cannot
 * change), the refusal ending with "(hint)" when hint is given. */
char **ac_execwrap_argv(const ac_cmd_t *cmd, const char *id, const char *run_user, const char *hint,
			ac_error_t **err);
/* The argv of the killer of the command started with handle id (to ac_strv_free). */
char **ac_execwrap_kill_argv(const char *id, ac_error_t **err);
/* The argv of a probe that prints "alive" while the killer of handle id would find a
 * process of the command (same sweep: group, session, environment marker). */
char **ac_execwrap_alive_argv(const char *id, ac_error_t **err);

#endif
