/* Detached commands on the Kubernetes backend (ops.exec_detach, kill_detached,
 * detached_state; the contract is backend.h's, the records src/core/detach.c's).
 *
 * As with the Docker backend, a watcher process on the host holds the command's exec stream
 * for as long as it runs (src/backends/watcher.h: the process, its orders, the logs and the
 * status record), with the exit code from the status channel. The command runs under the
 * exec wrapper (execwrap.h) with a kill handle, which the status record keeps ("handle"), so
 * that the command can be killed and looked for in the pod even when the watcher is gone.
 * The watcher is this binary with argv[1] AC_K8S_WATCH_ARG; its orders: the sandbox's state
 * (for the connection), the pods/exec request, the handle, the timeout.
 *
 *   - kill_detached: a live watcher gets SIGTERM; it runs the killer (a second exec with
 *     the handle), waits for the command's own status and records the end (killed). A
 *     watcher that is gone (killed, the host restarted) or stopped cannot: the killer runs
 *     from here and the caller records the kill.
 *   - detached_state: 2 while the watcher lives; else the pod is asked (an exec of the
 *     handle's probe, the killer's sweep without the kill) whether the command runs on. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/backend.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/watcher.h"

/* ---- the watcher (backends/watcher.h) ---- */

static void on_connected(void *arg)
{
	ac_watch_connected(arg);
}

static void on_output(void *arg, int channel, const unsigned char *data, size_t len)
{
	ac_watch_output(arg, channel == AC_K8S_CH_STDERR, data, len);
}

static void k8s_watch(const json_t *orders)
{
	const json_t *st = json_object_get(orders, "state");
	const char *path = json_string_value(json_object_get(orders, "path"));
	const char *id = json_string_value(json_object_get(orders, "handle"));
	double timeout = json_number_value(json_object_get(orders, "timeout"));
	ac_error_t *e = NULL;
	if (!json_is_object(st) || !path || !id)
		ac_watch_fail(NULL);
	ac_kc_t k;
	if (ac_kc_open(st, &k, &e) < 0)
		ac_watch_fail(e);
	ac_watch_t w;
	ac_watch_init(&w, id, "pod", k.pod);
	static const int stop[] = {SIGTERM, 0};
	int stopped = 0, code = -1;
	ac_kc_stream_t s = {.path = path,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms =
				timeout > 0 ? ac_kc_now_ms() + (int64_t)(timeout * 1000) : -1,
			    .connected = on_connected,
			    .sink = on_output,
			    .arg = &w,
			    .stop_signals = stop,
			    .kill_id = id,
			    .stopped = &stopped};
	int rc = ac_kc_stream(&k, &s, &code, &e);
	if (!w.ready)
		ac_watch_fail(e);
	bool timed_out = false;
	if (rc == 1 && !stopped) {
		/* --timeout: the host ended the stream; the killer ends the command. */
		ac_kc_run_killer(&k, id);
		timed_out = true;
	} else if (rc < 0) {
		/* The stream broke (the pod went, the API server failed): the command must
		 * not run on unwatched. */
		ac_kc_run_killer(&k, id);
	}
	ac_watch_end(&w, rc == 0, code, timed_out, stopped, rc < 0, e);
}

void ac_k8s_watch_main(int argc, char **argv)
{
	ac_watch_main(argc, argv, AC_K8S_WATCH_ARG, "agentcell-k8s-watch", k8s_watch);
}

/* ---- the caller's side ---- */

int ac_k8s_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
		       int out_fd, int err_fd, int status_fd, long *pid, long *shim,
		       ac_error_t **err)
{
	(void)ctx;
	if (cmd->tty || cmd->stdin_open)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "a detached command has no terminal and no input (-t, -i)");
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	int rc = -1;
	char uuid[37];
	ac_uuid_v7(uuid);
	char **argv = NULL;
	char *path = NULL;
	json_t *orders = NULL;
	ac_k8s_pod_state_t ps;
	int g = ac_kc_pod_get(&k, k.pod, &ps, err);
	if (g < 0)
		goto out;
	if (g == 0 || ps.verdict != AC_K8S_POD_RUNNING || ps.deleting) {
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running",
			     ac_state_str(st, "name", ""));
		goto out;
	}
	argv = ac_execwrap_argv(cmd, uuid, k.uid[0] ? k.uid : NULL, AC_KC_USER_HINT, err);
	path = argv ? ac_k8s_exec_path(k.conn.namespace, k.pod, AC_K8S_CONTAINER, argv, false,
				       false, err)
		    : NULL;
	if (!path)
		goto out;
	orders = json_pack("{sO ss ss sf}", "state", st, "path", path, "handle", uuid, "timeout",
			   cmd->timeout > 0 ? cmd->timeout : 0.0);
	if (!orders) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	const int fds[3] = {out_fd, err_fd, status_fd};
	rc = ac_watch_spawn(AC_K8S_WATCH_ARG, orders, fds, shim, err);
	if (rc == 0)
		*pid = 0; /* the command's pid is the pod's, not this host's */
out:
	json_decref(orders);
	free(path);
	ac_strv_free(argv);
	ac_kc_close(&k);
	return rc;
}

/* One exec of argv in the pod of the record, its stdout into out. */
typedef struct capture {
	char buf[256];
	size_t len;
} capture_t;

static void capture(void *arg, int channel, const unsigned char *data, size_t len)
{
	capture_t *c = arg;
	if (channel != AC_K8S_CH_STDOUT)
		return;
	size_t room = sizeof(c->buf) - 1 - c->len;
	size_t n = len < room ? len : room;
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	c->buf[c->len] = 0;
}

static int run_script(ac_kc_t *k, char **argv, capture_t *out, ac_error_t **err)
{
	_cleanup_free_ char *path =
	    ac_k8s_exec_path(k->conn.namespace, k->pod, AC_K8S_CONTAINER, argv, false, false, err);
	if (!path)
		return -1;
	ac_kc_stream_t s = {.path = path,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = ac_kc_now_ms() + 30000,
			    .sink = capture,
			    .arg = out};
	int code = -1;
	int rc = ac_kc_stream(k, &s, &code, err);
	if (rc == 1)
		return ac_error_set(err, AC_ERR_BACKEND, ETIMEDOUT,
				    "%s: the command's probe took longer than 30 s",
				    k->conn.remote.name);
	return rc < 0 ? -1 : code;
}

int ac_k8s_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
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
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	char **argv = ac_execwrap_kill_argv(id, err);
	capture_t out = {.len = 0};
	int rc = argv ? run_script(&k, argv, &out, err) : -1;
	ac_strv_free(argv);
	ac_kc_close(&k);
	if (rc < 0) {
		ac_error_prefix(err, "cannot kill the command in its pod");
		return -1;
	}
	return 1;
}

int ac_k8s_detached_state(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status)
{
	(void)ctx;
	if (ac_watch_state(status))
		return 2;
	const char *id = ac_state_str(status, "handle", NULL);
	if (!id)
		return 0;
	ac_kc_t k;
	if (ac_kc_open(st, &k, NULL) < 0)
		return 1; /* cannot tell: it may run on (a kill still reaches it) */
	int alive = 1;
	ac_k8s_pod_state_t ps;
	int g = ac_kc_pod_get(&k, k.pod, &ps, NULL);
	if (g == 0 || (g == 1 && (ps.verdict != AC_K8S_POD_RUNNING || ps.deleting))) {
		alive = 0; /* the command's pod is gone: so is the command */
	} else if (g == 1) {
		char **argv = ac_execwrap_alive_argv(id, NULL);
		capture_t out = {.len = 0};
		if (argv && run_script(&k, argv, &out, NULL) == 0)
			alive = strstr(out.buf, "alive") ? 1 : 0;
		ac_strv_free(argv);
	}
	ac_kc_close(&k);
	return alive;
}
