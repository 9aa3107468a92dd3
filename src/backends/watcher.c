/* The watcher of a detached command on a remote engine: see watcher.h. */
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

#include "agentcell/store.h"
#include "agentcell/types.h"
#include "backends/watcher.h"
#include "base/io.h"
#include "base/procid.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/util.h"
#include "runtime/proto.h"

#define LOG_CAP	   AC_DETACH_LOG_CAP
#define ORDERS_MAX (4u << 20)
#define REPORT_MAX 1100

/* The watcher's descriptors. */
enum { FD_OUT = 3, FD_ERR, FD_STATUS, FD_ORDERS, FD_READY, FD_COUNT };

/* ---- the watcher ---- */

/* Appends under LOG_CAP: past it, the newest LOG_CAP / 2 bytes are kept and the rest
 * counted as dropped. */
static void log_append(ac_watch_log_t *l, const unsigned char *d, size_t n)
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

/* The record, padded to its fixed size and written in place (one pwrite: a reader sees
 * the old or the new one); st is consumed. */
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

/* The record's fields that never change. */
static json_t *record(const ac_watch_t *w, const char *state)
{
	return json_pack("{ss si sI ss ss ss}", "state", state, "shim", (int)getpid(), "shim_start",
			 (json_int_t)w->me_start, "started_at", w->started_at, "handle", w->handle,
			 w->where_key, w->where);
}

static void report(const char *msg)
{
	(void)ac_write_all(FD_READY, msg, strlen(msg));
	close(FD_READY);
}

void ac_watch_fail(const ac_error_t *e)
{
	char msg[REPORT_MAX];
	snprintf(msg, sizeof(msg), "E%d %d %s", e ? (int)e->kind : (int)AC_ERR_INTERNAL,
		 e ? e->errnum : 0, e ? e->msg : "the command's watcher failed");
	report(msg);
	_exit(1);
}

void ac_watch_init(ac_watch_t *w, const char *handle, const char *where_key, const char *where)
{
	*w = (ac_watch_t){.out = {.fd = FD_OUT},
			  .err = {.fd = FD_ERR},
			  .handle = handle,
			  .where_key = where_key,
			  .where = where,
			  .me_start = ac_proc_starttime(getpid())};
}

void ac_watch_connected(ac_watch_t *w)
{
	if (w->ready)
		return;
	ac_time_now_rfc3339(w->started_at);
	write_status(record(w, "running"));
	char msg[32];
	snprintf(msg, sizeof(msg), "OK %d", (int)getpid());
	report(msg);
	w->ready = true;
}

void ac_watch_output(ac_watch_t *w, bool to_err, const unsigned char *data, size_t len)
{
	log_append(to_err ? &w->err : &w->out, data, len);
}

void ac_watch_end(ac_watch_t *w, bool known, int code, bool timed_out, int stopped, bool broke,
		  const ac_error_t *why)
{
	int exit_code = known ? code : timed_out ? 124 : 128 + SIGKILL;
	int sig = exit_code > 128 && exit_code < 128 + 65 ? exit_code - 128 : 0;
	json_t *end = record(w, known && code == 0 ? "completed" : "failed");
	char finished_at[32];
	ac_time_now_rfc3339(finished_at);
	json_object_set_new(end, "finished_at", json_string(finished_at));
	json_object_set_new(end, "exit_code", json_integer(exit_code));
	json_object_set_new(end, "signal", json_integer(timed_out ? SIGKILL : sig));
	json_object_set_new(end, "timed_out", json_boolean(timed_out));
	json_object_set_new(end, "killed", json_boolean(stopped != 0));
	json_object_set_new(end, "dropped_stdout", json_integer((json_int_t)w->out.dropped));
	json_object_set_new(end, "dropped_stderr", json_integer((json_int_t)w->err.dropped));
	if (broke) {
		char msg[300];
		snprintf(msg, sizeof(msg), "the exec stream broke: %.200s; the command was killed",
			 why ? why->msg : "no reason");
		json_object_set_new(end, "error", json_string(msg));
	}
	write_status(end);
	_exit(0);
}

static json_t *read_orders(void)
{
	_cleanup_free_ char *buf = malloc(ORDERS_MAX);
	if (!buf || lseek(FD_ORDERS, 0, SEEK_SET) < 0)
		return NULL;
	ssize_t n = ac_read_all(FD_ORDERS, buf, ORDERS_MAX);
	close(FD_ORDERS);
	return n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
}

void ac_watch_main(int argc, char **argv, const char *arg, const char *title, ac_watch_body_t body)
{
	if (argc < 2 || strcmp(argv[1], arg) != 0)
		return;
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
	ac_proctitle_set(title);
	json_t *orders = read_orders();
	if (!json_is_object(orders)) {
		report("E5 0 the command's watcher got no orders");
		_exit(1);
	}
	body(orders);
	_exit(1);
}

/* ---- the caller's side ---- */

int ac_watch_spawn(const char *arg, const json_t *orders, const int fds[3], long *shim,
		   ac_error_t **err)
{
	_cleanup_free_ char *spec = json_dumps(orders, JSON_COMPACT);
	if (!spec)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	_cleanup_close_ int mfd = memfd_create("agentcell-watch", MFD_CLOEXEC);
	if (mfd < 0 || ac_write_all(mfd, spec, strlen(spec)) < 0)
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
	char *argv[] = {"agentcell", (char *)arg, NULL};
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

int ac_watch_state(const json_t *status)
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

int ac_watch_signal(const json_t *status, ac_error_t **err)
{
	int ws = ac_watch_state(status);
	pid_t shim = (pid_t)ac_state_int(status, "shim", 0);
	if (ws == 2) {
		if (kill(shim, SIGTERM) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot signal the command's watcher");
		return 0;
	}
	if (ws == 1)
		kill(shim, SIGKILL); /* stopped: it would record nothing; its stream goes */
	return 1;
}
