/* Detached commands on the Kubernetes backend (ops.exec_detach, kill_detached,
 * detached_state; the contract is backend.h's, the records src/core/detach.c's).
 *
 * As with the Docker backend, a watcher process on the host holds the command's exec stream
 * for as long as it runs: it writes stdout and stderr to the record's logs (each under
 * 8 MiB, the newest half kept) and the status record, with the exit code from the status
 * channel. The command runs under the exec wrapper (channel.h) with a kill handle, which
 * the status record keeps ("handle"), so that the command can be killed and looked for in
 * the pod even when the watcher is gone.
 *
 * The watcher is this binary started afresh (argv[1] AC_K8S_WATCH_ARG, through
 * ac_backends_helper_main), not a fork of the caller: the caller may be a threaded server
 * (after fork only async-signal-safe calls), and the caller's TLS connection must not be
 * shared by two processes. It gets its orders (the sandbox's state for the connection, the
 * request, the handle, the timeout) in a memfd, starts in a session of its own, forks once
 * more so that it is nobody's child, connects, and only then tells the caller it runs (or
 * why it could not) on a pipe: a command that could not be started fails exec_detach.
 *
 *   - kill_detached: a live watcher gets SIGTERM; it runs the killer (a second exec with
 *     the handle), waits for the command's own status and records the end (killed). A
 *     watcher that is gone (killed, the host restarted) or stopped cannot: the killer runs
 *     from here and the caller records the kill.
 *   - detached_state: 2 while the watcher lives; else the pod is asked (an exec of the
 *     handle's probe, the killer's sweep without the kill) whether the command runs on. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/procid.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/kubernetes.h"
#include "runtime/runtime.h"

#define LOG_CAP	   (8u << 20)
#define SPEC_MAX   (4u << 20)
#define REPORT_MAX 1100

/* The watcher's descriptors. */
enum { FD_OUT = 3, FD_ERR, FD_STATUS, FD_SPEC, FD_READY, FD_COUNT };

/* ---- the watcher ---- */

typedef struct wlog {
	int fd;
	uint64_t size, dropped;
} wlog_t;

/* Appends under LOG_CAP: past it, the newest LOG_CAP / 2 bytes are kept and the rest
 * counted as dropped. */
static void log_append(wlog_t *l, const unsigned char *d, size_t n)
{
	if (l->size + n > LOG_CAP) {
		const uint64_t keep = LOG_CAP / 2;
		if (n >= keep) {
			l->dropped += l->size + (n - keep);
			d += n - keep;
			n = keep;
			l->size = 0;
		} else {
			uint64_t from = l->size - (keep - n), moved = 0;
			static unsigned char buf[1 << 16];
			while (moved < keep - n) {
				size_t want = keep - n - moved < sizeof(buf)
						  ? (size_t)(keep - n - moved)
						  : sizeof(buf);
				ssize_t r = pread(l->fd, buf, want, (off_t)(from + moved));
				if (r <= 0 || pwrite(l->fd, buf, (size_t)r, (off_t)moved) != r)
					break;
				moved += (uint64_t)r;
			}
			l->dropped += l->size - moved;
			l->size = moved;
		}
		(void)!ftruncate(l->fd, (off_t)l->size);
	}
	if (pwrite(l->fd, d, n, (off_t)l->size) == (ssize_t)n)
		l->size += n;
}

static void write_status(json_t *st)
{
	char buf[AC_DETACH_STATUS_SIZE];
	char *j = st ? json_dumps(st, JSON_COMPACT) : NULL;
	if (j && strlen(j) < sizeof(buf) - 1) {
		memset(buf, ' ', sizeof(buf));
		memcpy(buf, j, strlen(j));
		buf[sizeof(buf) - 1] = '\n';
		(void)!pwrite(FD_STATUS, buf, sizeof(buf), 0);
	}
	free(j);
	json_decref(st);
}

typedef struct watch {
	wlog_t out, err;
	const char *id, *pod;
	char started_at[32];
	unsigned long long me_start;
	bool ready;
} watch_t;

/* The record's fields that never change. */
static json_t *record(const watch_t *w, const char *state)
{
	return json_pack("{ss si sI ss ss ss}", "state", state, "shim", (int)getpid(), "shim_start",
			 (json_int_t)w->me_start, "started_at", w->started_at, "handle", w->id,
			 "pod", w->pod);
}

static void report(const char *msg)
{
	(void)ac_write_all(FD_READY, msg, strlen(msg));
	close(FD_READY);
}

static void report_error(const ac_error_t *e)
{
	char msg[REPORT_MAX];
	snprintf(msg, sizeof(msg), "E%d %d %s", e ? (int)e->kind : (int)AC_ERR_INTERNAL,
		 e ? e->errnum : 0, e ? e->msg : "the command's watcher failed");
	report(msg);
}

static void on_connected(void *arg)
{
	watch_t *w = arg;
	ac_time_now_rfc3339(w->started_at);
	write_status(record(w, "running"));
	char msg[32];
	snprintf(msg, sizeof(msg), "OK %d", (int)getpid());
	report(msg);
	w->ready = true;
}

static void on_output(void *arg, int channel, const unsigned char *data, size_t len)
{
	watch_t *w = arg;
	log_append(channel == AC_K8S_CH_STDERR ? &w->err : &w->out, data, len);
}

static json_t *read_spec(void)
{
	_cleanup_free_ char *buf = malloc(SPEC_MAX);
	if (!buf || lseek(FD_SPEC, 0, SEEK_SET) < 0)
		return NULL;
	ssize_t n = ac_read_all(FD_SPEC, buf, SPEC_MAX);
	close(FD_SPEC);
	return n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
}

__attribute__((noreturn)) static void watch_main(void)
{
	/* Once more, so that the watcher is nobody's child (its starter reaps this one). */
	pid_t child = fork();
	if (child < 0) {
		report("E5 0 cannot fork the command's watcher");
		_exit(1);
	}
	if (child > 0)
		_exit(0);
	/* Nothing of the caller's but the orders' descriptors (its sockets would stay open
	 * for as long as the command runs), and no directory of its held. */
	close_range(FD_COUNT, ~0U, 0);
	(void)!chdir("/");
	/* SIGTERM (exec-kill) counts only while the stream runs (it then stops the command):
	 * one that comes as the command ends must not kill the watcher before its record. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	ac_proctitle_set("agentcell-k8s-watch");
	json_t *spec = read_spec();
	const json_t *st = json_object_get(spec, "state");
	const char *path = json_string_value(json_object_get(spec, "path"));
	const char *id = json_string_value(json_object_get(spec, "handle"));
	double timeout = json_number_value(json_object_get(spec, "timeout"));
	ac_error_t *e = NULL;
	if (!json_is_object(st) || !path || !id) {
		report("E5 0 the command's watcher got no orders");
		_exit(1);
	}
	ac_kc_t k;
	if (ac_kc_open(st, &k, &e) < 0) {
		report_error(e);
		_exit(1);
	}
	watch_t w = {.out = {.fd = FD_OUT},
		     .err = {.fd = FD_ERR},
		     .id = id,
		     .pod = k.pod,
		     .me_start = ac_proc_starttime(getpid())};
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
	if (!w.ready) {
		report_error(e);
		_exit(1);
	}
	bool timed_out = false, known = rc == 0;
	if (rc == 1 && !stopped) {
		/* --timeout: the host ended the stream; the killer ends the command. */
		ac_kc_run_killer(&k, id);
		timed_out = true;
	} else if (rc < 0) {
		/* The stream broke (the pod went, the API server failed): the command must
		 * not run on unwatched. */
		ac_kc_run_killer(&k, id);
	}
	int exit_code = known ? code : timed_out ? 124 : 128 + SIGKILL;
	int sig = exit_code > 128 && exit_code < 128 + 65 ? exit_code - 128 : 0;
	json_t *end = record(&w, known && code == 0 ? "completed" : "failed");
	char finished_at[32];
	ac_time_now_rfc3339(finished_at);
	json_object_set_new(end, "finished_at", json_string(finished_at));
	json_object_set_new(end, "exit_code", json_integer(exit_code));
	json_object_set_new(end, "signal", json_integer(timed_out ? SIGKILL : sig));
	json_object_set_new(end, "timed_out", json_boolean(timed_out));
	json_object_set_new(end, "killed", json_boolean(stopped != 0));
	json_object_set_new(end, "dropped_stdout", json_integer((json_int_t)w.out.dropped));
	json_object_set_new(end, "dropped_stderr", json_integer((json_int_t)w.err.dropped));
	if (rc < 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "the exec stream broke: %.200s; the command was killed",
			 e ? e->msg : "no reason");
		json_object_set_new(end, "error", json_string(msg));
	}
	write_status(end);
	_exit(0);
}

void ac_k8s_watch_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], AC_K8S_WATCH_ARG))
		watch_main();
}

/* ---- the caller's side ---- */

/* Starts the watcher with its orders; waits for its report. *shim: its pid. */
static int spawn_watcher(const char *spec, size_t len, const int fds[3], long *shim,
			 ac_error_t **err)
{
	_cleanup_close_ int mfd = memfd_create("agentcell-k8s-watch", MFD_CLOEXEC);
	if (mfd < 0 || ac_write_all(mfd, spec, len) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot write the command watcher's orders");
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	const int src[FD_COUNT] = {-1, -1, -1, fds[0], fds[1], fds[2], mfd, ready[1]};
	int hi[FD_COUNT];
	int rc = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
	/* Every source first above every target, so that no dup2 clobbers one to come. */
	for (int i = 0; i < FD_COUNT; i++) {
		hi[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, FD_COUNT + 1) : -1;
		if (src[i] >= 0 && hi[i] < 0)
			rc = -errno;
		else if (hi[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, hi[i], i);
	}
	/* A session of its own (no terminal, no caller's signals), default signals. */
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	const int reset[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGWINCH, SIGCHLD};
	for (size_t i = 0; i < AC_ARRAY_SIZE(reset); i++)
		sigaddset(&dfl, reset[i]);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	char *argv[] = {"agentcell", AC_K8S_WATCH_ARG, NULL};
	extern char **environ;
	pid_t pid = -1;
	if (rc == 0)
		rc = -posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	for (int i = 0; i < FD_COUNT; i++)
		if (hi[i] >= 0)
			close(hi[i]);
	close(ready[1]);
	if (rc < 0) {
		close(ready[0]);
		return ac_error_set(err, AC_ERR_INTERNAL, -rc,
				    "cannot start the command's watcher");
	}
	char msg[REPORT_MAX + 1];
	ssize_t n = ac_read_all(ready[0], msg, REPORT_MAX);
	close(ready[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	msg[n > 0 ? n : 0] = 0;
	long w = 0;
	if (sscanf(msg, "OK %ld", &w) == 1 && w > 1) {
		*shim = w;
		return 0;
	}
	int kind = 0, errnum = 0, off = 0;
	if (msg[0] == 'E' && sscanf(msg + 1, "%d %d %n", &kind, &errnum, &off) == 2 && off > 0)
		return ac_error_set(err, (ac_error_kind_t)kind, errnum, "%s", msg + 1 + off);
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "the command's watcher did not start");
}

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
	char *path = NULL, *spec = NULL;
	ac_k8s_pod_state_t ps;
	int g = ac_kc_pod_get(&k, k.pod, &ps, err);
	if (g < 0)
		goto out;
	if (g == 0 || ps.verdict != AC_K8S_POD_RUNNING || ps.deleting) {
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running",
			     ac_state_str(st, "name", ""));
		goto out;
	}
	argv = ac_k8s_exec_argv(cmd, uuid, k.uid[0] ? k.uid : NULL, err);
	path = argv ? ac_k8s_exec_path(k.conn.namespace, k.pod, AC_K8S_CONTAINER, argv, false,
				       false, err)
		    : NULL;
	if (!path)
		goto out;
	json_t *sj = json_pack("{sO ss ss sf}", "state", st, "path", path, "handle", uuid,
			       "timeout", cmd->timeout > 0 ? cmd->timeout : 0.0);
	spec = sj ? json_dumps(sj, JSON_COMPACT) : NULL;
	json_decref(sj);
	if (!spec) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	const int fds[3] = {out_fd, err_fd, status_fd};
	rc = spawn_watcher(spec, strlen(spec), fds, shim, err);
	if (rc == 0)
		*pid = 0; /* the command's pid is the pod's, not this host's */
out:
	free(spec);
	free(path);
	ac_strv_free(argv);
	ac_kc_close(&k);
	return rc;
}

/* 2 the recorded watcher runs, 1 it exists but is stopped, 0 it is gone. */
static int watcher_state(const json_t *status)
{
	long long shim = ac_state_int(status, "shim", 0);
	long long start = ac_state_int(status, "shim_start", -1);
	if (shim <= 1 || ac_proc_starttime((pid_t)shim) != (unsigned long long)start)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%lld/stat", shim);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 4096, &buf, &len, NULL) < 0)
		return 0;
	const char *rp = strrchr(buf, ')');
	if (rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't'))
		return 1;
	if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
		return 0;
	return 2;
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
	int ws = watcher_state(status);
	pid_t shim = (pid_t)ac_state_int(status, "shim", 0);
	if (ws == 2) {
		if (kill(shim, SIGTERM) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot signal the command's watcher");
		return 0;
	}
	if (ws == 1)
		kill(shim, SIGKILL); /* stopped: it would record nothing; its stream goes */
	const char *id = ac_state_str(status, "handle", NULL);
	if (!id)
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "the command's record has no kill handle");
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	char **argv = ac_k8s_kill_argv(id, err);
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
	if (watcher_state(status))
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
		char **argv = ac_k8s_alive_argv(id, NULL);
		capture_t out = {.len = 0};
		if (argv && run_script(&k, argv, &out, NULL) == 0)
			alive = strstr(out.buf, "alive") ? 1 : 0;
		ac_strv_free(argv);
	}
	ac_kc_close(&k);
	return alive;
}
