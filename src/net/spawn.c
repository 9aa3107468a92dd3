/* The start and the end of a sandbox's network proxy (proxy.c).
 *
 * Start: posix_spawn of /proc/self/exe (safe in a threaded caller such as serve) with the
 * orders in a memfd at fd 3, the listener at 4, the life descriptor at 5 and a ready pipe
 * at 6; stdio is /dev/null (a proxy that outlives the CLI must not hold the caller's
 * terminal or a pipe a shell waits on). The spawned process forks once when it is ready
 * and exits: it is reaped here, and the proxy itself is reparented, never a zombie of a
 * long-lived caller. Its ready line is "ok PID" (the final proxy's pid) or
 * "E<kind> <message>".
 *
 * Stop: the pid file's process, if its start time still matches, gets SIGKILL through a
 * pidfd (no signal can reach a recycled pid). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/procid.h"
#include "base/util.h"
#include "net/net.h"

#define FD_COUNT	 7 /* 0..2 /dev/null, 3 orders, 4 listener, 5 life, 6 ready */
#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS	 5000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The orders (with the pid file) in a sealed-off memfd; the text is wiped: it holds the
 * secret values. */
static int orders_memfd(const ac_net_proxy_req_t *req, ac_error_t **err)
{
	json_t *o = json_copy(req->orders);
	if (!o)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (req->pidfile)
		json_object_set_new(o, "pidfile", json_string(req->pidfile));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t len = strlen(text);
	int fd = memfd_create("agentcell-net", MFD_CLOEXEC);
	int rc = fd < 0 || ac_write_all(fd, text, len) < 0 ? -1 : 0;
	int e = errno;
	explicit_bzero(text, len);
	free(text);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, e,
				    "cannot write the network proxy's orders");
	}
	return fd;
}

/* Reads the ready line (up to cap-1 bytes, no newline) before the deadline. 0, or -1 at
 * EOF or timeout. */
static int read_ready(int fd, char *line, size_t cap)
{
	size_t n = 0;
	int64_t deadline = now_ms() + READY_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t k = read(fd, line + n, cap - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		n += (size_t)k;
		line[n] = 0;
		char *nl = strchr(line, '\n');
		if (nl) {
			*nl = 0;
			return 0;
		}
		if (n == cap - 1)
			return 0;
	}
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int ac_net_proxy_spawn(const ac_net_proxy_req_t *req, pid_t *pid, ac_error_t **err)
{
	_cleanup_close_ int mfd = orders_memfd(req, err);
	if (mfd < 0)
		return -1;
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	const int src[FD_COUNT] = {-1, -1, -1, mfd, req->listen_fd, req->life_fd, ready[1]};
	int hi[FD_COUNT];
	char *argv[] = {"agentcell", AC_NET_PROXY_ARG, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	/* Every source is first copied above every target, so no dup2 clobbers a source
	 * still to come. */
	int rc = 0;
	for (int i = 0; i < FD_COUNT; i++) {
		hi[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, FD_COUNT + 1) : -1;
		if (src[i] >= 0 && hi[i] < 0)
			rc = -errno;
		else if (hi[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, hi[i], i);
		else if (i <= 2)
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
							 i ? O_WRONLY : O_RDONLY, 0);
	}
	if (req->listen_fd < 0 || req->life_fd < 0)
		rc = -EBADF;
	pid_t child = -1;
	if (rc == 0)
		rc = -posix_spawn(&child, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	for (int i = 0; i < FD_COUNT; i++)
		if (hi[i] >= 0)
			close(hi[i]);
	close(ready[1]);
	if (rc < 0) {
		close(ready[0]);
		return ac_error_set(err, AC_ERR_INTERNAL, -rc, "cannot start the network proxy");
	}
	char line[1200];
	int got = read_ready(ready[0], line, sizeof(line));
	close(ready[0]);
	if (got < 0) {
		kill(child, SIGKILL);
		reap(child);
		return ac_error_set(err, AC_ERR_BACKEND, 0, "the network proxy failed to start");
	}
	reap(child);
	if (line[0] == 'E') {
		char *end = NULL;
		long kind = strtol(line + 1, &end, 10);
		if (kind < AC_ERR_INTERNAL || kind > AC_ERR_NOT_RUNNING || !end || *end != ' ')
			kind = AC_ERR_BACKEND;
		return ac_error_set(err, (ac_error_kind_t)kind, 0, "%s",
				    end && *end == ' ' ? end + 1 : line);
	}
	long p = strncmp(line, "ok ", 3) ? 0 : strtol(line + 3, NULL, 10);
	if (p <= 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "the network proxy failed to start");
	if (pid)
		*pid = (pid_t)p;
	return 0;
}

void ac_net_proxy_stop(const char *pidfile)
{
	char *text = NULL;
	size_t len = 0;
	if (ac_read_file_at(AT_FDCWD, pidfile, 4096, &text, &len, NULL) < 0)
		return;
	json_t *o = json_loadb(text, len, 0, NULL);
	free(text);
	pid_t pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
	unsigned long long start =
	    (unsigned long long)json_integer_value(json_object_get(o, "starttime"));
	json_decref(o);
	int pfd = pid > 1 ? (int)pidfd_open(pid, 0) : -1;
	/* Checked after the pidfd exists: from here on, pid cannot be another process. */
	if (pfd >= 0 && start && ac_proc_starttime(pid) == start &&
	    pidfd_send_signal(pfd, SIGKILL, NULL, 0) == 0) {
		int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
		for (;;) {
			int64_t left = deadline - now_ms();
			struct pollfd p = {pfd, POLLIN, 0};
			if (left <= 0 || poll(&p, 1, (int)left) >= 0 || errno != EINTR)
				break;
		}
	}
	if (pfd >= 0)
		close(pfd);
	unlink(pidfile);
}
