/* The Docker/Podman backend's command engine: the stream pump shared by exec, one-shot runs
 * and detached commands (a watcher process on the host holds a detached command's stream),
 * timeouts and signals by host pid. backend.c has the container lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/agents.h"
#include "agentcell/backend.h"
#include "base/io.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "net/net.h"
#include "runtime/runtime.h"

/* ---- killing by host pid (timeouts, exec-kill, signals) ---- */

int ac_docker_kill_tree(long pid)
{
	if (pid <= 1)
		return 0;
	/* Children first found through /proc parent links, then all at once: SIGKILL leaves
	 * nothing to re-parent that matters (the container's init reaps). */
	pid_t tree[4096];
	size_t n = 0;
	tree[n++] = (pid_t)pid;
	for (size_t i = 0; i < n && n < AC_ARRAY_SIZE(tree); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", tree[i], tree[i]);
		_cleanup_free_ char *buf = NULL;
		size_t len;
		if (ac_read_file_at(AT_FDCWD, path, 65536, &buf, &len, NULL) < 0)
			continue;
		for (char *save = NULL, *t = strtok_r(buf, " \n", &save);
		     t && n < AC_ARRAY_SIZE(tree); t = strtok_r(NULL, " \n", &save))
			tree[n++] = (pid_t)atoi(t);
	}
	int killed = 0;
	for (size_t i = 0; i < n; i++)
		if (tree[i] > 1 && kill(tree[i], SIGKILL) == 0)
			killed++;
	return killed;
}

/* ---- the stream pump shared by exec, run and detached commands ---- */

static volatile sig_atomic_t pending_signal;
static void note_signal(int sig)
{
	pending_signal = sig;
}

typedef struct pump {
	ac_docker_t *d;
	ac_docker_conn_t *conn;
	const ac_cmd_t *cmd;
	int in_fd, out_fd, err_fd;
	const char *exec_id;   /* exec: resize and pid come from here */
	const char *container; /* run: resize and kill go here */
	bool timed_out;
	int write_error;
	/* detached logs: a sink other than plain writes */
	void (*sink)(int stream, const char *data, size_t len, void *arg);
	void *sink_arg;
	volatile sig_atomic_t *stop_flag; /* detached: exec-kill */
	bool killed;
} pump_t;

static void write_sink(int stream, const char *data, size_t len, void *arg)
{
	pump_t *p = arg;
	int fd = stream == 2 ? p->err_fd : p->out_fd;
	if (ac_write_all(fd, data, len) < 0)
		p->write_error = errno;
}

static long exec_pid(ac_docker_t *d, const char *exec_id)
{
	char path[300];
	snprintf(path, sizeof(path), "/exec/%s/json", exec_id);
	ac_docker_resp_t r;
	ac_docker_req_t req = {.method = "GET", .path = path};
	if (ac_docker_call(d, &req, &r, NULL) < 0)
		return 0;
	ac_docker_inspect_t in;
	long pid =
	    r.status == 200 && ac_docker_parse_exec_inspect(r.body, r.len, &in) == 0 && in.running
		? (long)in.pid
		: 0;
	ac_docker_resp_free(&r);
	return pid;
}

/* Kills what the stream belongs to: the exec's process tree (by its host pid, so only on
 * an engine of this host), or the one-shot container. */
static void kill_target(pump_t *p, int sig)
{
	if (p->container) {
		char path[512];
		snprintf(path, sizeof(path), "/containers/%s/kill?signal=%d", p->container, sig);
		ac_docker_simple(p->d, "POST", path, NULL, 0, NULL, "kill", NULL);
		return;
	}
	long pid = exec_pid(p->d, p->exec_id);
	if (pid <= 0)
		return;
	if (sig == SIGKILL)
		ac_docker_kill_tree(pid);
	else
		kill((pid_t)pid, sig);
}

static void resize_tty(pump_t *p)
{
	struct winsize ws;
	if (ioctl(p->in_fd, TIOCGWINSZ, &ws) < 0 && ioctl(p->out_fd, TIOCGWINSZ, &ws) < 0)
		return;
	char path[512];
	if (p->container)
		snprintf(path, sizeof(path), "/containers/%s/resize?h=%u&w=%u", p->container,
			 ws.ws_row, ws.ws_col);
	else
		snprintf(path, sizeof(path), "/exec/%s/resize?h=%u&w=%u", p->exec_id, ws.ws_row,
			 ws.ws_col);
	ac_docker_simple(p->d, "POST", path, NULL, 0, NULL, "resize", NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies the stream until the engine closes it: demultiplexed into out/err (or raw with a
 * tty), stdin to the engine, signals and the timeout turned into kills. */
static int pump_stream(pump_t *p, ac_error_t **err)
{
	ac_demux_t dm = {0};
	bool tty = p->cmd->tty;
	void (*sink)(int, const char *, size_t, void *) = p->sink ? p->sink : write_sink;
	void *sink_arg = p->sink ? p->sink_arg : p;
	if (p->conn->npending) {
		if (tty)
			sink(1, p->conn->pending, p->conn->npending, sink_arg);
		else if (ac_demux_feed(&dm, p->conn->pending, p->conn->npending, sink, sink_arg) <
			 0)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "the container engine sent a malformed stream");
	}
	bool in_open = p->cmd->stdin_open && p->in_fd >= 0;
	double deadline = p->cmd->timeout > 0 ? now_s() + p->cmd->timeout : 0;
	double grace_end = 0;
	char buf[65536], inbuf[65536];
	size_t in_off = 0, in_len = 0;
	for (;;) {
		int sig = pending_signal;
		if (sig) {
			pending_signal = 0;
			if (sig == SIGWINCH && tty)
				resize_tty(p);
			else if (sig != SIGWINCH)
				kill_target(p, sig);
		}
		if (p->stop_flag && *p->stop_flag && !p->killed) {
			p->killed = true;
			kill_target(p, SIGKILL);
			grace_end = now_s() + 5;
		}
		int wait_ms = -1;
		if (deadline > 0 && !p->timed_out) {
			double left = deadline - now_s();
			if (left <= 0) {
				p->timed_out = true;
				kill_target(p, SIGKILL);
				grace_end = now_s() + 5;
				continue;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		if (grace_end > 0) {
			double left = grace_end - now_s();
			if (left <= 0)
				break; /* something still holds the stream open: stop reading */
			wait_ms = (int)(left * 1000) + 1;
		}
		/* Input is forwarded only as fast as the engine takes it (never blocking on a
		 * send while the engine waits for us to read its output). */
		struct pollfd pf[2] = {
		    {p->conn->fd, (short)(POLLIN | (in_len > in_off ? POLLOUT : 0)), 0},
		    {in_open && in_len == in_off ? p->in_fd : -1, POLLIN, 0}};
		int n = poll(pf, 2, wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "poll");
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(p->in_fd, inbuf, sizeof(inbuf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				in_open = false;
				if (tty) {
					char eot = 4; /* ^D: a pty's end of input */
					(void)!send(p->conn->fd, &eot, 1, MSG_NOSIGNAL);
				} else {
					shutdown(p->conn->fd, SHUT_WR);
				}
			} else {
				in_off = 0;
				in_len = (size_t)r;
			}
		}
		if ((pf[0].revents & POLLOUT) && in_len > in_off) {
			ssize_t w =
			    send(p->conn->fd, inbuf + in_off, in_len - in_off, MSG_NOSIGNAL);
			if (w > 0)
				in_off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				in_open = false, in_off = in_len = 0;
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(p->conn->fd, buf, sizeof(buf), 0);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0)
				break;
			if (tty)
				sink(1, buf, (size_t)r, sink_arg);
			else if (ac_demux_feed(&dm, buf, (size_t)r, sink, sink_arg) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, 0,
						    "the container engine sent a malformed stream");
		}
	}
	return 0;
}

static void fill_result(ac_result_t *res, long long code, bool timed_out)
{
	res->exit_code = (int)(code < 0 || code > 255 ? 255 : code);
	res->signal = res->exit_code > 128 && res->exit_code <= 128 + 64 ? res->exit_code - 128 : 0;
	res->timed_out = timed_out;
	if (timed_out) {
		res->exit_code = 124;
		res->signal = SIGKILL;
	}
}

/* The exit code of a finished exec: from exec inspect, never guessed. The engine may
 * record it a moment after the stream ends. */
static int exec_exit_code(ac_docker_t *d, const char *exec_id, long long *code, ac_error_t **err)
{
	char path[300];
	snprintf(path, sizeof(path), "/exec/%s/json", exec_id);
	for (int attempt = 0; attempt < 400; attempt++) {
		ac_docker_resp_t r;
		ac_docker_req_t req = {.method = "GET", .path = path};
		if (ac_docker_call(d, &req, &r, err) < 0)
			return -1;
		ac_docker_inspect_t in;
		int ok = r.status == 200 ? ac_docker_parse_exec_inspect(r.body, r.len, &in) : -1;
		if (r.status != 200) {
			ac_docker_fail(&r, "cannot read the command's exit code", err);
			ac_docker_resp_free(&r);
			return -1;
		}
		ac_docker_resp_free(&r);
		if (ok < 0)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "the container engine's exec answer is malformed");
		if (!in.running) {
			*code = in.exit_code;
			return 0;
		}
		struct timespec ts = {0, attempt < 20 ? 1000000 : 10000000};
		nanosleep(&ts, NULL);
	}
	return ac_error_set(err, AC_ERR_BACKEND, 0,
			    "the command's stream ended but the engine still reports it running");
}

/* The agent's API keys come from the caller's environment at each command: never stored
 * (not even in the container's settings). With the network on, the proxy carries a key
 * bound as a secret: the sandbox has its placeholder (in the state's env), never the value. */
static char **agent_env(const json_t *st)
{
	extern char **environ;
	const char *const *keys = ac_agent_keys(ac_state_str(st, "agent", NULL));
	const json_t *net = json_object_get(st, "net");
	size_t n = 0;
	for (size_t j = 0; keys && keys[j]; j++)
		n++;
	char **e = calloc(n + 1, sizeof(char *));
	size_t k = 0;
	for (size_t j = 0; e && keys && keys[j]; j++) {
		if (ac_net_carries_key(net, keys[j]))
			continue;
		size_t kl = strlen(keys[j]);
		for (char **ev = environ; *ev; ev++)
			if (!strncmp(*ev, keys[j], kl) && (*ev)[kl] == '=') {
				e[k++] = *ev;
				break;
			}
	}
	return e;
}

/* Creates an exec and attaches to it. */
static int exec_begin(ac_docker_t *d, const json_t *st, const ac_cmd_t *cmd, char *exec_id,
		      size_t idlen, ac_docker_conn_t *conn, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	char path[512];
	_cleanup_free_ char **extra = agent_env(st);
	json_t *body = ac_docker_exec_body(
	    cmd, extra, ac_state_str(st, "mount_cwd", NULL) ? "/workspace" : "/");
	if (!body)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the command or its environment is not valid UTF-8");
	ac_docker_resp_t r;
	int rc = ac_docker_container_call(d, st, "POST", "/exec", body, &r, err);
	json_decref(body);
	if (rc < 0)
		return -1;
	char msg[300] = "";
	if (r.status >= 300)
		ac_docker_error_text(r.body, r.len, msg, sizeof(msg));
	if (r.status == 409 || r.status == 404 || strstr(msg, "state improper") ||
	    strstr(msg, "not running")) {
		ac_docker_resp_free(&r);
		return ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running",
				    name);
	}
	if (r.status < 200 || r.status >= 300) {
		ac_docker_fail(&r, "cannot create the command in the container", err);
		ac_docker_resp_free(&r);
		return -1;
	}
	rc = ac_docker_parse_id(r.body, r.len, exec_id, idlen);
	ac_docker_resp_free(&r);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the container engine's answer to exec has no id");
	snprintf(path, sizeof(path), "/exec/%s/start", exec_id);
	body = json_pack("{sb sb}", "Detach", 0, "Tty", cmd->tty);
	rc = ac_docker_hijack(d, path, body, conn, "cannot start the command", err);
	json_decref(body);
	return rc;
}

/* Signals that reach the CLI go to the command (as the native backend's shim relays). */
typedef struct relay {
	struct sigaction old[5];
	bool on;
	struct termios saved;
	bool raw;
	int tty_fd;
} relay_t;
static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};

static void relay_begin(relay_t *rl, const ac_cmd_t *cmd, int in_fd)
{
	memset(rl, 0, sizeof(*rl));
	pending_signal = 0;
	rl->on = ac_rt_relay_signals;
	struct sigaction sa = {.sa_handler = note_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; rl->on && i < AC_ARRAY_SIZE(relayed); i++)
		sigaction(relayed[i], &sa, &rl->old[i]);
	rl->tty_fd = in_fd;
	if (cmd->tty && in_fd >= 0 && isatty(in_fd) && tcgetattr(in_fd, &rl->saved) == 0) {
		struct termios t = rl->saved;
		cfmakeraw(&t);
		rl->raw = tcsetattr(in_fd, TCSANOW, &t) == 0;
	}
}

static void relay_end(relay_t *rl)
{
	if (rl->raw)
		tcsetattr(rl->tty_fd, TCSANOW, &rl->saved);
	for (size_t i = 0; rl->on && i < AC_ARRAY_SIZE(relayed); i++)
		sigaction(relayed[i], &rl->old[i], NULL);
}

int ac_docker_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		   const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	(void)ctx;
	(void)name;
	_cleanup_docker_ ac_docker_t *d = NULL;
	int rc = ac_docker_for_state(st, &d, err);
	char exec_id[129];
	ac_docker_conn_t conn = {.fd = -1};
	if (rc == 0)
		rc = exec_begin(d, st, cmd, exec_id, sizeof(exec_id), &conn, err);
	if (rc < 0)
		return -1;
	relay_t rl;
	relay_begin(&rl, cmd, fds[0]);
	pump_t p = {.d = d,
		    .conn = &conn,
		    .cmd = cmd,
		    .in_fd = fds[0],
		    .out_fd = fds[1],
		    .err_fd = fds[2],
		    .exec_id = exec_id};
	if (cmd->tty)
		resize_tty(&p);
	rc = pump_stream(&p, err);
	relay_end(&rl);
	ac_docker_conn_close(&conn);
	long long code = 0;
	if (rc == 0 && !p.timed_out && exec_exit_code(d, exec_id, &code, err) < 0)
		rc = -1;
	if (rc == 0)
		fill_result(res, code, p.timed_out);
	return rc;
}

/* ---- one-shot runs: the command is the container's, removed afterwards ---- */

/* A run with agentcell's network (net.c): its command must not run before the proxy
 * listens, so the container is an idle one, started, given its proxy, and the command is
 * an exec in it. Container, proxy and the network's directory go afterwards. */
static int run_with_net(const ac_backend_ctx_t *ctx, ac_docker_t *d, const json_t *st,
			const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	ac_docker_net_t net;
	char id[129];
	json_t *own = NULL;
	bool created = false;
	int rc = ac_docker_net_begin(ctx, d, st, &net, err);
	if (rc == 0) {
		ac_docker_create_opts_t o = {.bundle = net.bundle, .one_shot = true};
		rc = ac_docker_create_container(d, st, &o, id, sizeof(id), err);
		created = rc == 0;
	}
	if (rc == 0) {
		own = json_copy((json_t *)st);
		rc = own && !json_object_set_new(own, "container_id", json_string(id))
			 ? ac_docker_start_container(d, own, &net, err)
			 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	ac_docker_net_end(&net);
	if (rc == 0)
		rc = ac_docker_exec(ctx, name, own, cmd, fds, res, err);
	if (created)
		ac_docker_remove_container(d, id, NULL);
	json_decref(own);
	ac_net_teardown(ctx->home, name, true);
	return rc;
}

int ac_docker_run(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd, int fds[3],
		  ac_result_t *res, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	if (ac_docker_has_net(st))
		return run_with_net(ctx, d, st, cmd, fds, res, err);
	_cleanup_free_ char **extra = agent_env(st);
	char id[129], path[700];
	ac_docker_create_opts_t o = {.run = cmd, .extra_env = extra};
	if (ac_docker_create_container(d, st, &o, id, sizeof(id), err) < 0)
		return -1;
	int rc = -1;
	ac_docker_conn_t conn = {.fd = -1};
	snprintf(path, sizeof(path), "/containers/%s/attach?stream=1&stdin=%d&stdout=1&stderr=1",
		 id, cmd->stdin_open ? 1 : 0);
	if (ac_docker_hijack(d, path, NULL, &conn, "cannot attach to the container", err) < 0) {
		/* Podman starts the container to attach: a missing program shows here. */
		if (err && *err && strstr((*err)->msg, "executable file not found")) {
			res->exit_code = 127;
			(*err)->kind = AC_ERR_NOT_FOUND;
		}
		goto out;
	}
	snprintf(path, sizeof(path), "/containers/%s/start", id);
	ac_docker_resp_t r;
	ac_docker_req_t req = {.method = "POST", .path = path};
	if (ac_docker_call(d, &req, &r, err) < 0)
		goto out;
	if (r.status < 200 || r.status >= 300) {
		char msg[600];
		ac_docker_error_text(r.body, r.len, msg, sizeof(msg));
		/* The runtime could not execute the command: as a shell says it. */
		bool missing =
		    strstr(msg, "executable file not found") || strstr(msg, "no such file");
		res->exit_code = missing ? 127 : 126;
		ac_error_set(err, missing ? AC_ERR_NOT_FOUND : AC_ERR_INVALID, 0,
			     "cannot run '%s': %s", cmd->argv[0], msg);
		ac_docker_resp_free(&r);
		goto out;
	}
	ac_docker_resp_free(&r);
	relay_t rl;
	relay_begin(&rl, cmd, fds[0]);
	pump_t p = {.d = d,
		    .conn = &conn,
		    .cmd = cmd,
		    .in_fd = fds[0],
		    .out_fd = fds[1],
		    .err_fd = fds[2],
		    .container = id};
	rc = pump_stream(&p, err);
	relay_end(&rl);
	ac_docker_conn_close(&conn);
	if (rc == 0) {
		/* wait gives the exit status once the engine has seen the exit. Podman's
		 * compatible route polls for it every 250 ms (~190 ms of a one-shot run here);
		 * its own route takes an interval. */
		if (ac_docker_is_podman(st))
			snprintf(path, sizeof(path),
				 LIBPOD_PREFIX
				 "/containers/%s/wait?condition=stopped&condition=exited"
				 "&interval=10ms",
				 id);
		else
			snprintf(path, sizeof(path), "/containers/%s/wait", id);
		ac_docker_resp_t w;
		rc = ac_docker_simple(d, "POST", path, NULL, 0, &w, "cannot wait for the container",
				      err);
		if (rc == 0) {
			/* Docker: {"StatusCode": N}; libpod: N. */
			json_t *j = json_loadb(w.body, w.len,
					       JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, NULL);
			json_t *code = json_is_integer(j) ? j : json_object_get(j, "StatusCode");
			if (json_is_integer(code))
				fill_result(res, (long long)json_integer_value(code), p.timed_out);
			else
				rc =
				    ac_error_set(err, AC_ERR_BACKEND, 0,
						 "the container engine's wait answer is malformed");
			json_decref(j);
			ac_docker_resp_free(&w);
		}
	}
out:
	ac_docker_conn_close(&conn);
	ac_docker_remove_container(d, id, NULL);
	return rc;
}

/* ---- detached commands: a watcher process on the host holds the stream ---- */

#define LOG_CAP (8u << 20)

typedef struct logs {
	int fd[3]; /* -, stdout, stderr */
	uint64_t size[3], dropped[3];
} logs_t;

/* Appends to a log under LOG_CAP: past it, the newer half is kept and the rest counted. */
static void log_sink(int stream, const char *data, size_t len, void *arg)
{
	logs_t *l = arg;
	int s = stream == 2 ? 2 : 1;
	while (len) {
		if (l->size[s] + len > LOG_CAP) {
			uint64_t keep = LOG_CAP / 2;
			if (len >= keep) {
				l->dropped[s] += l->size[s] + (len - keep);
				data += len - keep;
				len = keep;
				l->size[s] = 0;
				(void)!ftruncate(l->fd[s], 0);
			} else {
				uint64_t from = l->size[s] - (keep - len);
				static char buf[1 << 16];
				uint64_t moved = 0;
				while (moved < keep - len) {
					size_t chunk = keep - len - moved < sizeof(buf)
							   ? (size_t)(keep - len - moved)
							   : sizeof(buf);
					ssize_t r =
					    pread(l->fd[s], buf, chunk, (off_t)(from + moved));
					if (r <= 0)
						break;
					(void)!pwrite(l->fd[s], buf, (size_t)r, (off_t)moved);
					moved += (uint64_t)r;
				}
				l->dropped[s] += from;
				l->size[s] = moved;
				(void)!ftruncate(l->fd[s], (off_t)moved);
			}
		}
		if (pwrite(l->fd[s], data, len, (off_t)l->size[s]) < 0)
			return;
		l->size[s] += len;
		len = 0;
	}
}

static void write_status(int fd, json_t *st)
{
	char buf[AC_DETACH_STATUS_SIZE];
	char *j = st ? json_dumps(st, JSON_COMPACT) : NULL;
	if (j && strlen(j) < sizeof(buf) - 1) {
		memset(buf, ' ', sizeof(buf));
		memcpy(buf, j, strlen(j));
		buf[sizeof(buf) - 1] = '\n';
		(void)!pwrite(fd, buf, sizeof(buf), 0);
	}
	free(j);
	json_decref(st);
}

static volatile sig_atomic_t watch_stop;
static void on_term(int sig)
{
	(void)sig;
	watch_stop = 1;
}

__attribute__((noreturn)) static void watcher(ac_docker_t *d, ac_docker_conn_t *conn,
					      const ac_cmd_t *cmd, const char *exec_id, long pid,
					      int fds[3], int ready)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	ac_proctitle_set("agentcell-docker-watch");
	char started_at[32];
	ac_time_now_rfc3339(started_at);
	unsigned long long me = ac_proc_starttime(getpid());
	write_status(fds[2], json_pack("{ss sI si sI ss}", "state", "running", "pid",
				       (json_int_t)pid, "shim", (int)getpid(), "shim_start",
				       (json_int_t)me, "started_at", started_at));
	(void)!write(ready, "y", 1);
	close(ready);
	logs_t l = {.fd = {-1, fds[0], fds[1]}};
	ac_cmd_t c = *cmd;
	c.stdin_open = false;
	c.tty = false;
	pump_t p = {.d = d,
		    .conn = conn,
		    .cmd = &c,
		    .in_fd = -1,
		    .exec_id = exec_id,
		    .sink = log_sink,
		    .sink_arg = &l,
		    .stop_flag = &watch_stop};
	int rc = pump_stream(&p, NULL);
	ac_docker_conn_close(conn);
	long long code = -1;
	bool known = !p.timed_out && exec_exit_code(d, exec_id, &code, NULL) == 0;
	ac_result_t res = {0};
	fill_result(&res, known ? code : 137, p.timed_out);
	if (p.killed && !known)
		res.exit_code = 137;
	char finished_at[32];
	ac_time_now_rfc3339(finished_at);
	json_t *st = json_pack("{ss sI si sI ss ss si si sb sb sI sI}", "state",
			       rc == 0 && res.exit_code == 0 ? "completed" : "failed", "pid",
			       (json_int_t)pid, "shim", (int)getpid(), "shim_start", (json_int_t)me,
			       "started_at", started_at, "finished_at", finished_at, "exit_code",
			       res.exit_code, "signal", res.signal, "timed_out", p.timed_out,
			       "killed", p.killed, "dropped_stdout", (json_int_t)l.dropped[1],
			       "dropped_stderr", (json_int_t)l.dropped[2]);
	if (st && (rc < 0 || (!known && !p.timed_out && !p.killed)))
		json_object_set_new(
		    st, "error", json_string("the command's end was not reported by the engine"));
	write_status(fds[2], st);
	_exit(0);
}

int ac_docker_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
			  int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			  ac_error_t **err)
{
	(void)ctx;
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	char exec_id[129];
	ac_docker_conn_t conn = {.fd = -1};
	if (exec_begin(d, st, cmd, exec_id, sizeof(exec_id), &conn, err) < 0)
		return -1;
	long cpid = exec_pid(d, exec_id);
	int ready[2], who[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(who, O_CLOEXEC) < 0) {
		ac_docker_conn_close(&conn);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	}
	pid_t first = fork();
	if (first < 0) {
		ac_docker_conn_close(&conn);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (first == 0) {
		/* A session of its own, re-parented to init: it outlives the caller. */
		setsid();
		close(ready[0]);
		close(who[0]);
		pid_t w = fork();
		if (w == 0) {
			int null = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
			}
			(void)!chdir("/");
			int fds[3] = {out_fd, err_fd, status_fd};
			close(who[1]);
			watcher(d, &conn, cmd, exec_id, cpid, fds, ready[1]);
		}
		pid_t wp = w;
		(void)!write(who[1], &wp, sizeof(wp));
		_exit(w < 0 ? 1 : 0);
	}
	close(ready[1]);
	close(who[1]);
	pid_t w = -1;
	if (read(who[0], &w, sizeof(w)) != sizeof(w))
		w = -1;
	close(who[0]);
	int ws;
	while (waitpid(first, &ws, 0) < 0 && errno == EINTR)
		;
	/* Our copy of the stream goes: the watcher holds its own. */
	close(conn.fd);
	conn.fd = -1;
	ac_docker_conn_close(&conn);
	char c = 0;
	ssize_t n = read(ready[0], &c, 1);
	close(ready[0]);
	if (w <= 0 || n != 1)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the command's watcher did not start");
	*pid = cpid;
	*shim = w;
	return 0;
}

int ac_docker_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
			    ac_error_t **err)
{
	long long shim = ac_state_int(status, "shim", 0);
	long long start = ac_state_int(status, "shim_start", -1);
	if (shim <= 1 || ac_proc_starttime((pid_t)shim) != (unsigned long long)start)
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "the command's watcher is gone (was the host restarted?)");
	if (kill((pid_t)shim, SIGTERM) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot signal the watcher");
	(void)ctx;
	(void)st;
	return 0;
}
