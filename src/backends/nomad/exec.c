/* Commands in a sandbox's allocation over Nomad's allocation exec WebSocket (internal.h,
 * frames.h): the stream, and the exec wrapper (src/backends/execwrap.h) with its killer for
 * --timeout, cancels and signals, as the Kubernetes stream does it.
 *
 *   - The command always runs as `sh -c WRAPPER ...` (env, cwd, a kill handle); Nomad's exec
 *     has no options for those, nor a user: -u is refused unless it is the task's.
 *   - stdin goes out in data frames; its end is the close frame. With a tty it is a ^D, as
 *     typed: the agent's executor answers a stdin close by closing the terminal, whose
 *     output would be lost. stdout and stderr frames are written as they come; the exit
 *     code is the exited frame's.
 *   - A tty's size goes out right after the upgrade and on every SIGWINCH; the signals and
 *     their blocking are src/backends/remote/streamsig.h's, shared with Kubernetes.
 *   - A heartbeat frame goes out after 10 s without one, as Nomad's own client does, so
 *     that proxies between here and the agent keep an idle stream.
 *   - At the deadline (or a cancel) the host ends its stream and runs the killer (a second
 *     exec): the deadline never waits for the allocation. */
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
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/nomad/frames.h"
#include "backends/nomad/internal.h"
#include "backends/remote/remote.h"
#include "backends/remote/streamsig.h"
#include "runtime/runtime.h"

#define STDIN_CHUNK  (32u * 1024)
#define HEARTBEAT_MS 10000
#define KILLER_MS    30000
/* The refusal of -u (ac_execwrap_argv). */
#define USER_HINT "Nomad's allocation exec runs every command as the task's user"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *who(const ac_nm_t *n)
{
	return n->conf.name ? n->conf.name : "nomad";
}

static int send_text(ac_ws_conn_t *ws, const char *text, int64_t *last_send, ac_error_t **err)
{
	*last_send = now_ms();
	return ac_ws_send(ws, AC_WS_TEXT, text, strlen(text), err);
}

static int send_size(ac_ws_conn_t *ws, const ac_nm_stream_t *s, int64_t *last_send,
		     ac_error_t **err)
{
	const int fds[3] = {s->in_fd, s->out_fd, s->err_fd};
	unsigned w, h;
	ac_stream_term_size(fds, s->rows, s->cols, &w, &h);
	char m[64];
	return ac_nm_frame_tty_size(m, sizeof(m), h, w) ? send_text(ws, m, last_send, err) : 0;
}

/* Output of the command: to s's sink, else to out_fd (fd 1) or err_fd (fd 2). */
static void output(const ac_nm_stream_t *s, int fd, const unsigned char *data, size_t len)
{
	if (s->sink) {
		s->sink(s->arg, fd, data, len);
		return;
	}
	int to = fd == 1 ? s->out_fd : s->err_fd;
	if (to >= 0)
		(void)ac_write_all(to, data, len);
}

/* The killer of the command with handle id in alloc's task: a second exec, bounded. */
void ac_nm_run_killer(ac_nm_t *n, const char *alloc, const char *task, const char *id)
{
	char **argv = ac_execwrap_kill_argv(id, NULL);
	if (!argv)
		return;
	ac_nm_stream_t s = {.alloc = alloc,
			    .task = task,
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = now_ms() + KILLER_MS,
			    .cancel_fd = -1};
	int code;
	ac_nm_exec_stream(n, &s, &code, NULL);
	ac_strv_free(argv);
}

/* The stream's loop after the upgrade: returns as ac_nm_exec_stream does. */
static int pump(ac_nm_t *n, ac_ws_conn_t *ws, const ac_nm_stream_t *s, ac_stream_sigs_t *g,
		unsigned char *buf, int *code, ac_error_t **err)
{
	int in_fd = s->in_fd;
	int64_t deadline_ms = s->deadline_ms, last_send = now_ms();
	uint64_t out_len = 0;
	if (s->tty && send_size(ws, s, &last_send, err) < 0)
		return -1;
	/* No input: stdin ends at once. Never with a tty: the agent's executor closes the
	 * terminal itself on a stdin close, and the output with it. */
	if (in_fd < 0 && !s->tty && send_text(ws, ac_nm_frame_stdin_close(), &last_send, err) < 0)
		return -1;
	ac_stream_sigs_begin(g, s->stop_signals, s->tty && s->winch);
	for (;;) {
		bool winch;
		int sig = ac_stream_sigs_take(g, &winch);
		if (winch && send_size(ws, s, &last_send, err) < 0)
			return -1;
		if (sig) {
			if (s->stopped)
				*s->stopped = sig;
			if (!s->kill_id)
				return 1;
			/* The killer ends everything the command started; the stream then ends
			 * with the command's own status. */
			ac_nm_run_killer(n, s->alloc, s->task, s->kill_id);
			deadline_ms = now_ms() + AC_STREAM_STOP_GRACE_MS;
		}
		/* Here too, not only when poll waits: a stream that never pauses must not
		 * outlive its deadline. */
		int64_t now = now_ms();
		if (deadline_ms >= 0 && now >= deadline_ms)
			return 1;
		if (now - last_send >= HEARTBEAT_MS &&
		    send_text(ws, ac_nm_frame_heartbeat(), &last_send, err) < 0)
			return -1;
		if (!ac_ws_pending(ws)) {
			struct pollfd p[3];
			int k = 0, iw = -1, ic = -1;
			p[k++] = (struct pollfd){.fd = ac_ws_fd(ws), .events = POLLIN};
			if (in_fd >= 0) {
				iw = k;
				p[k++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
			}
			if (s->cancel_fd > 0) {
				ic = k;
				p[k++] = (struct pollfd){.fd = s->cancel_fd, .events = POLLRDHUP};
			}
			int64_t wait = last_send + HEARTBEAT_MS - now;
			if (deadline_ms >= 0 && deadline_ms - now < wait)
				wait = deadline_ms - now;
			int got = ac_stream_sigs_poll(g, p, (nfds_t)k, wait < 0 ? 0 : (int)wait);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				continue;
			if (ic >= 0 && (p[ic].revents & (POLLRDHUP | POLLHUP | POLLERR)))
				return ac_error_set(err, AC_ERR_STATE, 0, "the caller went away");
			if (iw >= 0 && p[iw].revents) {
				ssize_t r = read(in_fd, buf, STDIN_CHUNK);
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (r > 0) {
					char *f = ac_nm_frame_stdin(buf, (size_t)r);
					if (!f)
						return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
								    "out of memory");
					int sr = send_text(ws, f, &last_send, err);
					free(f);
					if (sr < 0)
						return -1;
				} else {
					/* A terminal's end of input is a ^D, as typed. */
					int sr =
					    s->tty
						? send_text(ws, "{\"stdin\":{\"data\":\"BA==\"}}",
							    &last_send, err)
						: send_text(ws, ac_nm_frame_stdin_close(),
							    &last_send, err);
					if (sr < 0)
						return -1;
					in_fd = -1;
				}
			}
			if (!p[0].revents)
				continue;
		}
		int op;
		const unsigned char *data;
		size_t len;
		unsigned close_code = 0;
		ac_error_t *e = NULL;
		int got = ac_ws_recv(ws, 0, &op, &data, &len, &close_code, &e);
		if (got == 2)
			continue;
		if (got < 0 || got == 0) {
			if (g->stop) { /* killed: no status came, or the agent dropped us */
				ac_error_free(e);
				return 1;
			}
			if (got < 0) {
				if (err)
					*err = e;
				else
					ac_error_free(e);
				return -1;
			}
			ac_nm_exec_close_error(who(n), close_code, ac_ws_close_reason(ws), &e);
			if (e && (e->exit_code == 126 || e->exit_code == 127)) {
				/* As a shell: the message on stderr, its status. */
				output(s, 2, (const unsigned char *)e->msg, strlen(e->msg));
				output(s, 2, (const unsigned char *)"\n", 1);
				*code = e->exit_code;
				ac_error_free(e);
				return 0;
			}
			if (err)
				*err = e;
			else
				ac_error_free(e);
			return -1;
		}
		if (op != AC_WS_TEXT)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: the exec stream sent a binary message", who(n));
		ac_nm_frame_t f;
		if (ac_nm_frame_decode((const char *)data, len, who(n), &f, err) < 0)
			return -1;
		if (f.kind == AC_NM_FRAME_EXITED) {
			*code = f.exit_code;
			return 0;
		}
		if (f.kind == AC_NM_FRAME_STDOUT && s->out_max && (out_len += f.len) > s->out_max) {
			ac_nm_frame_clear(&f);
			return ac_error_set(err, AC_ERR_BACKEND, EFBIG,
					    "%s: the command's output is larger than %llu bytes",
					    who(n), (unsigned long long)s->out_max);
		}
		if (f.len && (f.kind == AC_NM_FRAME_STDOUT || f.kind == AC_NM_FRAME_STDERR))
			output(s, f.kind == AC_NM_FRAME_STDOUT ? 1 : 2, f.data, f.len);
		ac_nm_frame_clear(&f);
	}
}

int ac_nm_exec_stream(ac_nm_t *n, const ac_nm_stream_t *s, int *code, ac_error_t **err)
{
	if (s->stopped)
		*s->stopped = 0;
	_cleanup_free_ char *path =
	    ac_nm_exec_path(s->alloc, s->task, s->argv, s->tty, n->ns, n->region, err);
	if (!path)
		return -1;
	unsigned char *buf = malloc(STDIN_CHUNK);
	if (!buf)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	ac_ws_conn_t *ws = NULL;
	if (ac_ws_connect(&n->conf, path, NULL, NULL, &ws, err) < 0) {
		free(buf);
		return -1;
	}
	ac_stream_sigs_t g;
	memset(&g, 0, sizeof(g));
	int rc = pump(n, ws, s, &g, buf, code, err);
	ac_stream_sigs_end(&g);
	ac_ws_free(ws);
	free(buf);
	return rc;
}

/* Signals that reach the CLI end the command in the allocation (a threaded server takes
 * none). */
static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, 0};

int ac_nm_exec_in(ac_nm_t *n, const char *alloc, const ac_cmd_t *cmd, int fds[3], ac_result_t *res,
		  ac_error_t **err)
{
	char uuid[37], id[AC_EXECWRAP_ID_MAX + 1];
	ac_uuid_v7(uuid);
	snprintf(id, sizeof(id), "%s", uuid);
	char **argv = ac_execwrap_argv(cmd, id, NULL, USER_HINT, err);
	if (!argv)
		return -1;
	int in_fd = cmd->stdin_open ? fds[0] : -1;
	int stopped = 0;
	ac_nm_stream_t s = {.alloc = alloc,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .tty = cmd->tty,
			    .winch = ac_rt_relay_signals,
			    .rows = cmd->rows,
			    .cols = cmd->cols,
			    .in_fd = in_fd,
			    .out_fd = fds[1],
			    .err_fd = fds[2], /* with a tty only for a shell's 126/127 message */
			    .deadline_ms =
				cmd->timeout > 0 ? now_ms() + (int64_t)(cmd->timeout * 1000) : -1,
			    .cancel_fd = cmd->cancel_fd,
			    .stop_signals = ac_rt_relay_signals ? relayed : NULL,
			    .kill_id = id,
			    .stopped = &stopped};
	/* Keys go to the task's terminal as typed (^C included), as `nomad alloc exec -t`
	 * does. */
	struct termios saved;
	bool raw = ac_stream_raw(in_fd, cmd->tty, &saved);
	int code = -1;
	int rc = ac_nm_exec_stream(n, &s, &code, err);
	ac_strv_free(argv);
	ac_stream_unraw(in_fd, raw, &saved);
	if (ac_stream_needs_kill(rc, stopped, err))
		ac_nm_run_killer(n, alloc, AC_NM_TASK, id);
	return ac_stream_result(rc, code, stopped, res);
}

int ac_nomad_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		  const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	(void)ctx;
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	char alloc[128];
	int g = ac_nm_running_alloc(&n, n.job, alloc, sizeof(alloc), err);
	int rc = -1;
	if (g == 1)
		rc = ac_nm_exec_in(&n, alloc, cmd, fds, res, err);
	else if (g == 0)
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running", name);
	ac_nm_close(&n);
	return rc;
}
