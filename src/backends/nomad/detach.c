/* Detached commands on the Nomad backend (ops.exec_detach, kill_detached, detached_state;
 * the contract is backend.h's, the records src/core/detach.c's), as the Kubernetes backend
 * does them: a watcher process on the host (src/backends/watcher.h: the process, its
 * orders, the logs and the status record) holds the command's allocation exec stream for as
 * long as it runs, with the exit code from the exited frame. The command runs under the exec
 * wrapper (execwrap.h) with a kill handle, which the status record keeps ("handle") with the
 * allocation ("alloc"), so that the command can be killed and looked for in the task even
 * when the watcher is gone. The watcher is this binary with argv[1] AC_NM_WATCH_ARG; its
 * orders: the sandbox's state (for the connection), the allocation, the argv, the handle,
 * the timeout.
 *
 * Nomad checks an exec request only after the WebSocket upgrade (ACL, the allocation, the
 * task: frames.h), and says nothing when the command starts. So the wrapper is started by
 * a shell that first prints one byte (READY) on stdout: the watcher tells its caller the
 * command runs when output comes, and a request the agent refuses fails exec_detach with the
 * agent's reason. The byte is not logged.
 *
 *   - kill_detached: a live watcher gets SIGTERM; the stream runs the killer (a second exec
 *     with the handle), waits for the command's own exit and the watcher records the end
 *     (killed). A watcher that is gone (killed, the host restarted) or stopped cannot: the
 *     killer runs from here and the caller records the kill. When the record's allocation
 *     no longer runs, neither does the command: nothing is left to kill.
 *   - detached_state: 2 while the watcher lives; else 0 when the record's allocation no
 *     longer runs, else the task is asked (the handle's probe, the killer's sweep without
 *     the kill) whether the command runs on. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentcell/backend.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/nomad/internal.h"
#include "backends/nomad/nomad.h"
#include "backends/watcher.h"

#define READY	   '\036' /* the first byte of stdout: the command was started */
#define SCRIPT_MS  30000
#define ARGV_MAX   4096 /* arguments of a detached command, the wrapper's included */
#define ALLOC_MAX  128
#define USER_HINT  "Nomad's allocation exec runs every command as the task's user"
#define READY_STEP "printf '\\036' && exec \"$@\""

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the watcher ---- */

typedef struct nm_watch {
	ac_watch_t w;
	bool marker; /* stdout's READY byte was seen */
} nm_watch_t;

static void on_output(void *arg, int fd, const unsigned char *data, size_t len)
{
	nm_watch_t *nw = arg;
	if (fd == 1 && !nw->marker && len > 0) {
		nw->marker = true;
		if (data[0] == READY) {
			data++;
			len--;
		}
	}
	/* Any output means the shell ran, so the command has started. */
	ac_watch_connected(&nw->w);
	if (len > 0)
		ac_watch_output(&nw->w, fd == 2, data, len);
}

/* Runs argv (NULL-terminated) in alloc's task, stdout into out (may be NULL). */
typedef struct capture {
	char buf[256];
	size_t len;
} capture_t;

static void capture(void *arg, int fd, const unsigned char *data, size_t len)
{
	capture_t *c = arg;
	if (fd != 1 || !c)
		return;
	size_t room = sizeof(c->buf) - 1 - c->len;
	size_t n = len < room ? len : room;
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	c->buf[c->len] = 0;
}

static int run_script(ac_nm_t *n, const char *alloc, char **argv, capture_t *out, ac_error_t **err)
{
	ac_nm_stream_t s = {.alloc = alloc,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = now_ms() + SCRIPT_MS,
			    .cancel_fd = -1,
			    .sink = capture,
			    .arg = out};
	int code = -1;
	int rc = ac_nm_exec_stream(n, &s, &code, err);
	if (rc == 1)
		return ac_error_set(err, AC_ERR_BACKEND, ETIMEDOUT,
				    "%s: the command's probe took longer than %d s",
				    n->conf.name ? n->conf.name : "nomad", SCRIPT_MS / 1000);
	return rc < 0 ? -1 : code;
}

static void run_killer(ac_nm_t *n, const char *alloc, const char *id)
{
	char **argv = ac_execwrap_kill_argv(id, NULL);
	if (argv)
		run_script(n, alloc, argv, NULL, NULL);
	ac_strv_free(argv);
}

static void nomad_watch(const json_t *orders)
{
	const json_t *st = json_object_get(orders, "state");
	const char *alloc = json_string_value(json_object_get(orders, "alloc"));
	const char *id = json_string_value(json_object_get(orders, "handle"));
	const json_t *args = json_object_get(orders, "argv");
	double timeout = json_number_value(json_object_get(orders, "timeout"));
	size_t argc = json_array_size(args);
	if (!json_is_object(st) || !alloc || !id || argc == 0 || argc > ARGV_MAX)
		ac_watch_fail(NULL);
	char **argv = calloc(argc + 1, sizeof(*argv));
	for (size_t i = 0; argv && i < argc; i++)
		if (!(argv[i] = (char *)json_string_value(json_array_get(args, i))))
			ac_watch_fail(NULL);
	if (!argv)
		ac_watch_fail(NULL);
	ac_error_t *e = NULL;
	ac_nm_t n;
	if (ac_nm_open(st, &n, &e) < 0)
		ac_watch_fail(e);
	nm_watch_t nw = {.marker = false};
	ac_watch_init(&nw.w, id, "alloc", alloc);
	static const int stop[] = {SIGTERM, 0};
	int stopped = 0, code = -1;
	ac_nm_stream_t s = {.alloc = alloc,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = timeout > 0 ? now_ms() + (int64_t)(timeout * 1000) : -1,
			    .cancel_fd = -1,
			    .sink = on_output,
			    .arg = &nw,
			    .stop_signals = stop,
			    .kill_id = id,
			    .stopped = &stopped};
	int rc = ac_nm_exec_stream(&n, &s, &code, &e);
	/* The deadline before READY: the command may have started (READY in flight); it
	 * times out as any other (the killer below). */
	if (rc == 1 && !nw.w.ready)
		ac_watch_connected(&nw.w);
	if (!nw.w.ready) {
		/* No output, not even READY: the shell never ran (the agent refused the
		 * request; an exit without output is a driver that could not run sh, a
		 * missing sh comes as a shell's 127 with its message, like any command's). */
		if (rc == 0) {
			ac_error_free(e);
			e = NULL;
			ac_error_set(&e, AC_ERR_BACKEND, 0,
				     "%s: exec: the command could not be started in the task (exit "
				     "status %d)",
				     n.conf.name ? n.conf.name : "nomad", code);
		}
		ac_watch_fail(e);
	}
	bool timed_out = false;
	if (rc == 1 && !stopped) {
		/* --timeout: the host ended the stream; the killer ends the command. */
		run_killer(&n, alloc, id);
		timed_out = true;
	} else if (rc < 0) {
		/* The stream broke (the allocation went, the agent failed): the command must
		 * not run on unwatched. */
		run_killer(&n, alloc, id);
	}
	ac_watch_end(&nw.w, rc == 0, code, timed_out, stopped, rc < 0, e);
}

void ac_nomad_watch_main(int argc, char **argv)
{
	ac_watch_main(argc, argv, AC_NM_WATCH_ARG, "agentcell-nomad-watch", nomad_watch);
}

/* ---- the caller's side ---- */

int ac_nomad_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
			 int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			 ac_error_t **err)
{
	(void)ctx;
	if (cmd->tty || cmd->stdin_open)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "a detached command has no terminal and no input (-t, -i)");
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	int rc = -1;
	char uuid[37], alloc[ALLOC_MAX];
	ac_uuid_v7(uuid);
	char **argv = NULL;
	json_t *orders = NULL, *args = NULL;
	int g = ac_nm_running_alloc(&n, n.job, alloc, sizeof(alloc), err);
	if (g < 0)
		goto out;
	if (g == 0) {
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running",
			     ac_state_str(st, "name", ""));
		goto out;
	}
	argv = ac_execwrap_argv(cmd, uuid, NULL, USER_HINT, err);
	if (!argv)
		goto out;
	/* sh -c READY_STEP agentcell-detach WRAPPER-ARGV... */
	args = json_pack("[ss ss]", "sh", "-c", READY_STEP, "agentcell-detach");
	for (char **a = argv; args && *a; a++)
		if (json_array_append_new(args, json_string(*a)) < 0) {
			json_decref(args);
			args = NULL;
		}
	orders = args ? json_pack("{sO ss sO ss sf}", "state", st, "alloc", alloc, "argv", args,
				  "handle", uuid, "timeout", cmd->timeout > 0 ? cmd->timeout : 0.0)
		      : NULL;
	if (!orders) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "the command is not valid UTF-8 (Nomad's exec takes JSON strings)");
		goto out;
	}
	const int fds[3] = {out_fd, err_fd, status_fd};
	rc = ac_watch_spawn(AC_NM_WATCH_ARG, orders, fds, shim, err);
	if (rc == 0)
		*pid = 0; /* the command's pid is the task's, not this host's */
out:
	json_decref(orders);
	json_decref(args);
	ac_strv_free(argv);
	ac_nm_close(&n);
	return rc;
}

/* 1 with the running allocation of the sandbox when it is the record's, 0 when the
 * record's allocation no longer runs, -1 when the agent cannot tell. */
static int record_alloc(ac_nm_t *n, const json_t *status, const char **alloc, ac_error_t **err)
{
	char now[ALLOC_MAX];
	*alloc = ac_state_str(status, "alloc", NULL);
	int g = ac_nm_running_alloc(n, n->job, now, sizeof(now), err);
	if (g <= 0)
		return g;
	return *alloc && !strcmp(*alloc, now);
}

int ac_nomad_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
			   ac_error_t **err)
{
	(void)ctx;
	int ws = ac_watch_signal(status, err);
	if (ws <= 0)
		return ws;
	const char *id = ac_state_str(status, "handle", NULL);
	if (!id)
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "the command's record has no kill handle");
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	const char *alloc;
	int rc = record_alloc(&n, status, &alloc, err);
	if (rc == 1) {
		char **argv = ac_execwrap_kill_argv(id, err);
		rc = argv ? run_script(&n, alloc, argv, NULL, err) : -1;
		ac_strv_free(argv);
	}
	ac_nm_close(&n);
	if (rc < 0) {
		ac_error_prefix(err, "cannot kill the command in its task");
		return -1;
	}
	return 1;
}

int ac_nomad_detached_state(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status)
{
	(void)ctx;
	if (ac_watch_state(status))
		return 2;
	const char *id = ac_state_str(status, "handle", NULL);
	if (!id)
		return 0;
	ac_nm_t n;
	if (ac_nm_open(st, &n, NULL) < 0)
		return 1; /* cannot tell: it may run on (a kill still reaches it) */
	const char *alloc;
	int alive = record_alloc(&n, status, &alloc, NULL);
	if (alive < 0) {
		alive = 1;
	} else if (alive == 1) {
		char **argv = ac_execwrap_alive_argv(id, NULL);
		capture_t out = {.len = 0};
		if (argv && run_script(&n, alloc, argv, &out, NULL) == 0)
			alive = strstr(out.buf, "alive") ? 1 : 0;
		ac_strv_free(argv);
	}
	ac_nm_close(&n);
	return alive;
}
