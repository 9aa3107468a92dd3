/* Commands in a sandbox's pod over pods/exec on a WebSocket (cluster.h): the stream
 * (v5, else v4), the exec wrapper and its killer for --timeout and cancels. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"
#include "runtime/runtime.h"
/* One stream over pods/exec or pods/attach (cluster.h). */
int ac_kc_stream(ac_kc_t *k, const ac_kc_stream_t *s, int *code, ac_error_t **err)
{
	int in_fd = s->in_fd, out_fd = s->out_fd, err_fd = s->err_fd, cancel_fd = s->cancel_fd;
	int64_t deadline_ms = s->deadline_ms;
	const char *chosen = NULL;
	ac_ws_conn_t *ws = NULL;
	if (ac_ws_connect(&k->conn.remote, s->path, ac_k8s_exec_protocols, &chosen, &ws, err) < 0)
		return -1;
	int version = ac_k8s_proto_version(chosen);
	int rc = -1;
	bool have_status = false;
	ac_stream_sigs_t g = {0};
	if (version < 0) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "%s: the exec answer chose no remotecommand subprotocol (%s)",
			     k->conn.remote.name, chosen ? chosen : "none");
		goto out;
	}
	if (s->connected)
		s->connected(s->arg);
	unsigned char *frame = malloc(32769);
	if (!frame) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	if (ac_kc_stream_begin(ws, s, &g, err) < 0) {
		free(frame);
		goto out;
	}
	for (;;) {
		int sr = ac_kc_stream_signals(k, ws, s, &g, &deadline_ms, err);
		if (sr != 0) {
			rc = sr == 2 ? 2 : -1;
			break;
		}
		/* Here too, not only when poll waits: a stream that never pauses must not
		 * outlive its deadline. */
		if (deadline_ms >= 0 && ac_kc_now_ms() >= deadline_ms) {
			rc = 1;
			break;
		}
		if (!ac_ws_pending(ws)) {
			struct pollfd p[4];
			int n = 0, iw = -1, ic = -1, iv = -1;
			p[n++] = (struct pollfd){.fd = ac_ws_fd(ws), .events = POLLIN};
			if (in_fd >= 0) {
				iw = n;
				p[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
			}
			if (cancel_fd > 0) {
				ic = n;
				p[n++] = (struct pollfd){.fd = cancel_fd, .events = POLLRDHUP};
			}
			if (s->wake_fd > 0) {
				iv = n;
				p[n++] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
			}
			int wait = -1;
			if (deadline_ms >= 0) {
				int64_t left = deadline_ms - ac_kc_now_ms();
				if (left <= 0) {
					rc = 1;
					break;
				}
				wait = left > 1000000 ? 1000000 : (int)left;
			}
			int got = ac_stream_sigs_poll(&g, p, (nfds_t)n, wait);
			if (got < 0 && errno == EINTR)
				continue;
			if (got == 0)
				continue;
			if (ic >= 0 && (p[ic].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				ac_error_set(err, AC_ERR_STATE, 0, "the caller went away");
				break;
			}
			if (iv >= 0 && p[iv].revents) {
				rc = 2;
				break;
			}
			if (iw >= 0 && p[iw].revents) {
				ssize_t r = read(in_fd, frame + 1, 32768);
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (r > 0) {
					frame[0] = AC_K8S_CH_STDIN;
					if (ac_ws_send(ws, AC_WS_BINARY, frame, (size_t)r + 1,
						       err) < 0)
						break;
				} else {
					/* A terminal's end of input is a ^D, as typed. */
					unsigned char cl[2] = {AC_K8S_CH_STDIN, 4};
					size_t cn =
					    s->tty
						? 2
						: ac_k8s_frame_close(version, AC_K8S_CH_STDIN, cl);
					if (cn && ac_ws_send(ws, AC_WS_BINARY, cl, cn, err) < 0)
						break;
					in_fd = -1;
				}
			}
			if (!(p[0].revents))
				continue;
		}
		int op;
		const unsigned char *data;
		size_t len;
		unsigned close_code = 0;
		int got = ac_ws_recv(ws, 0, &op, &data, &len, &close_code, err);
		if (got == 2)
			continue;
		if (got < 0)
			break;
		if (got == 0) {
			if (have_status || s->status_optional)
				rc = 0;
			else if (g.stop)
				rc = 1; /* killed: no status came */
			else
				ac_error_set(err, AC_ERR_BACKEND, 0,
					     "%s: the exec stream ended without an exit status "
					     "(close code %u)",
					     k->conn.remote.name, close_code);
			break;
		}
		int ch;
		const unsigned char *pl;
		size_t plen;
		int d = ac_k8s_frame_decode(data, len, &ch, &pl, &plen);
		if (d == 0)
			continue;
		if (d < 0) {
			ac_error_set(err, AC_ERR_BACKEND, 0,
				     "%s: the exec stream used an unknown channel",
				     k->conn.remote.name);
			break;
		}
		if (ch == AC_K8S_CH_STDOUT && k->out_max && (k->out_len += plen) > k->out_max) {
			ac_error_set(err, AC_ERR_BACKEND, EFBIG,
				     "%s: the command's output is larger than %llu bytes",
				     k->conn.remote.name, (unsigned long long)k->out_max);
			break;
		}
		if ((ch == AC_K8S_CH_STDOUT || ch == AC_K8S_CH_STDERR) && s->sink && plen)
			s->sink(s->arg, ch, pl, plen);
		else if (ch == AC_K8S_CH_STDOUT && out_fd >= 0 && plen)
			(void)ac_write_all(out_fd, pl, plen);
		else if (ch == AC_K8S_CH_STDERR && err_fd >= 0 && plen)
			(void)ac_write_all(err_fd, pl, plen);
		else if (ch == AC_K8S_CH_ERROR) {
			ac_error_t *e = NULL;
			if (ac_k8s_exec_status(pl, plen, code, &e) < 0) {
				if (e && (e->exit_code == 126 || e->exit_code == 127)) {
					/* As a shell: the message on stderr, its status. */
					if (err_fd >= 0) {
						(void)ac_write_all(err_fd, e->msg, strlen(e->msg));
						(void)ac_write_all(err_fd, "\n", 1);
					}
					*code = e->exit_code;
					ac_error_free(e);
				} else {
					if (err)
						*err = e;
					else
						ac_error_free(e);
					break;
				}
			}
			have_status = true;
		}
	}
	free(frame);
out:
	ac_stream_sigs_end(&g);
	ac_ws_free(ws);
	return rc;
}

/* One exec stream: argv over pods/exec (see cluster.h). */
int ac_kc_exec_stream(ac_kc_t *k, char **argv, int in_fd, int out_fd, int err_fd,
		      int64_t deadline_ms, int cancel_fd, int *code, ac_error_t **err)
{
	_cleanup_free_ char *path = ac_k8s_exec_path(k->conn.namespace, k->pod, AC_K8S_CONTAINER,
						     argv, in_fd >= 0, false, err);
	if (!path)
		return -1;
	ac_kc_stream_t s = {.path = path,
			    .in_fd = in_fd,
			    .out_fd = out_fd,
			    .err_fd = err_fd,
			    .deadline_ms = deadline_ms,
			    .cancel_fd = cancel_fd};
	return ac_kc_stream(k, &s, code, err);
}

/* The killer of the command with handle id: a second exec, bounded to 30 s. */
void ac_kc_run_killer(ac_kc_t *k, const char *id)
{
	char **argv = ac_execwrap_kill_argv(id, NULL);
	if (!argv)
		return;
	int code;
	ac_kc_exec_stream(k, argv, -1, -1, -1, ac_kc_now_ms() + 30000, -1, &code, NULL);
	ac_strv_free(argv);
}

/* Signals that reach the CLI end the command in the pod (a threaded server takes none). */
static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, 0};

int ac_kc_exec_in(ac_kc_t *k, const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	char uuid[37], id[AC_EXECWRAP_ID_MAX + 1];
	ac_uuid_v7(uuid);
	snprintf(id, sizeof(id), "%s", uuid);
	char **argv = ac_execwrap_argv(cmd, id, k->uid[0] ? k->uid : NULL, AC_KC_USER_HINT, err);
	if (!argv)
		return -1;
	int in_fd = cmd->stdin_open ? fds[0] : -1;
	_cleanup_free_ char *path = ac_k8s_exec_path(k->conn.namespace, k->pod, AC_K8S_CONTAINER,
						     argv, in_fd >= 0, cmd->tty, err);
	ac_strv_free(argv);
	if (!path)
		return -1;
	int stopped = 0;
	ac_kc_stream_t s = {
	    .path = path,
	    .in_fd = in_fd,
	    .out_fd = fds[1],
	    .err_fd = fds[2], /* with a tty only for a shell's 126/127 message */
	    .deadline_ms = cmd->timeout > 0 ? ac_kc_now_ms() + (int64_t)(cmd->timeout * 1000) : -1,
	    .cancel_fd = cmd->cancel_fd,
	    .tty = cmd->tty,
	    .winch = ac_rt_relay_signals,
	    .rows = cmd->rows,
	    .cols = cmd->cols,
	    .stop_signals = ac_rt_relay_signals ? relayed : NULL,
	    .kill_id = id,
	    .stopped = &stopped};
	/* Keys go to the pod's terminal as typed (^C included), as kubectl does with -it. */
	struct termios saved;
	bool raw = ac_stream_raw(in_fd, cmd->tty, &saved);
	int code = -1;
	int rc = ac_kc_stream(k, &s, &code, err);
	ac_stream_unraw(in_fd, raw, &saved);
	if (ac_stream_needs_kill(rc, stopped, err))
		ac_kc_run_killer(k, id);
	return ac_stream_result(rc, code, stopped, res);
}

int ac_k8s_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	(void)ctx;
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	ac_k8s_pod_state_t ps;
	int g = ac_kc_pod_get(&k, k.pod, &ps, err);
	int rc = -1;
	if (g == 1 && ps.verdict == AC_K8S_POD_RUNNING && !ps.deleting)
		rc = ac_kc_exec_in(&k, cmd, fds, res, err);
	else if (g >= 0)
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running", name);
	ac_kc_close(&k);
	return rc;
}
