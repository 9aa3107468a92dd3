/* Commands in the background (agentkernel's detached exec). Each one has a directory
 * $AGENTCELL_HOME/run/<sandbox>.exec/<id>/ holding meta.json (command, sandbox, start),
 * stdout and stderr (each capped at 8 MiB, oldest bytes dropped and counted) and status
 * (written by the command's shim inside the sandbox: running, completed or failed, with
 * the real exit code). It all survives a restart of agentcell; a command whose sandbox
 * stopped under it is reported failed. */
#ifndef AGENTCELL_DETACH_H
#define AGENTCELL_DETACH_H

#include <jansson.h>
#include <stdbool.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/types.h"

#define AC_DETACH_ID_LEN 12

/* Starts cmd in the running sandbox name; id receives the new command's id. */
int ac_detach_start(ac_manager_t *m, const char *name, const ac_cmd_t *cmd,
		    char id[AC_DETACH_ID_LEN + 1], ac_error_t **err);
/* Every detached command (of one sandbox, or all when name is NULL), oldest first:
 * [{id, sandbox, command, state, pid, exit_code, started_at, finished_at, ...}]. */
int ac_detach_list(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err);
/* One command's status object (as in the list). */
int ac_detach_status(ac_manager_t *m, const char *id, json_t **out, ac_error_t **err);
/* Path of a command's stdout or stderr log (to free). */
int ac_detach_log_path(ac_manager_t *m, const char *id, bool stderr_log, char **path,
		       ac_error_t **err);
/* A command's stdout or stderr log as a JSON string (invalid UTF-8 bytes as U+FFFD; ""
 * while it has written nothing yet). */
int ac_detach_read_log(ac_manager_t *m, const char *id, bool stderr_log, json_t **out,
		       ac_error_t **err);
/* Adds agentkernel's DetachedCommand fields to a status object (in place; returns st):
 * "status" running (our starting or running), completed or failed (anything else), and
 * "exit_code" null while there is none. */
json_t *ac_detach_agentkernel_view(json_t *st);
/* Kills a running detached command and everything it started. */
int ac_detach_kill(ac_manager_t *m, const char *id, ac_error_t **err);

#endif
