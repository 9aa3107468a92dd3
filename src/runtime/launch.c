/* The caller's side of starting a sandbox: cgroup, user namespace, the builder process
 * (builder.c: host root, private mount namespace, then the sandbox's init), the reports
 * it sends back on one pipe, and the deadlines and cancellation of a start. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/buildreq.h"
#include "runtime/launch.h"
#include "runtime/report.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/sock.h"
#include "runtime/userns.h"

bool ac_rt_relay_signals = true;

static volatile sig_atomic_t forward_to = 0;
static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

void ac_launch_relay(pid_t to, struct sigaction *old_term, struct sigaction *old_hup)
{
	struct sigaction sa = {.sa_handler = forward_signal};
	sigemptyset(&sa.sa_mask);
	forward_to = to;
	sigaction(SIGTERM, &sa, old_term);
	sigaction(SIGHUP, &sa, old_hup);
}

/* The calling process's number of threads (1 when /proc cannot tell). */
static int thread_count(void)
{
	char buf[1024];
	_cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 1;
	buf[n] = 0;
	/* num_threads is the 18th field after the command's closing parenthesis. */
	char *p = strrchr(buf, ')');
	for (int i = 0; p && i < 18; i++)
		p = strchr(p + 1, ' ');
	return p ? atoi(p + 1) : 1;
}

extern char **environ;

/* A threaded caller (serve, mcp) must not fork a child that then allocates, takes locks
 * or calls into libraries: another thread may have held the allocator's (or stdio's, or
 * the dynamic loader's) lock at the fork, and the child would wait for it for ever. So
 * the builder is this very binary started afresh (posix_spawn: a vfork-style child that
 * only makes system calls until execve), with its orders in a memfd and its descriptors
 * at fixed numbers. It is still the caller's child, as with fork. */
static int spawn_builder(launch_t *l, pid_t *pid_out, ac_error_t **err)
{
	json_t *req = ac_buildreq_encode(l->spec, l->cmd, l->cg_leaf, l->caller);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	_cleanup_close_ int mfd = memfd_create("agentcell-builder", MFD_CLOEXEC);
	int rc = mfd < 0 || ac_write_all(mfd, text, strlen(text)) < 0 ? -1 : 0;
	free(text);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot write the builder's orders");
	const int src[FD_COUNT] = {l->stdio ? l->stdio[0] : -1,
				   l->stdio ? l->stdio[1] : -1,
				   l->stdio ? l->stdio[2] : -1,
				   mfd,
				   l->report[1],
				   l->userns_fd,
				   l->listen_fd,
				   l->log_fd,
				   l->ack[0],
				   l->net[1]};
	int hi[FD_COUNT];
	char have[5] = {l->listen_fd >= 0 ? '1' : '0', l->log_fd >= 0 ? '1' : '0',
			l->ack[0] >= 0 ? '1' : '0', l->net[1] >= 0 ? '1' : '0', 0};
	char *argv[] = {"agentcell", AC_RT_BUILDER_ARG, have, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* Every source is first copied above every target, so no dup2 clobbers a source
	 * still to come. */
	for (int i = 0; i < FD_COUNT; i++) {
		hi[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, FD_COUNT + 1) : -1;
		if (src[i] >= 0 && hi[i] < 0)
			rc = -errno;
		else if (hi[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, hi[i], i);
		else if (i == 0 && l->stdio)
			posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	}
	if (rc == 0)
		rc = -posix_spawn(pid_out, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < FD_COUNT; i++)
		if (hi[i] >= 0)
			close(hi[i]);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, -rc, "cannot start the builder");
	return 0;
}

static void close_net(launch_t *l)
{
	for (int i = 0; i < 2; i++)
		if (l->net[i] >= 0)
			close(l->net[i]);
	l->net[0] = l->net[1] = -1;
}

/* The socket of the sandbox's network namespace the builder sends (send_net_fd), or -1:
 * the builder failed before (its report says why) or, waiting (wait_ms < 0: for ever),
 * cancel_fd's peer went away. */
static int recv_net_fd(int from, int cancel_fd, int wait_ms)
{
	struct pollfd p[2] = {{from, POLLIN, 0}, {cancel_fd, POLLRDHUP, 0}};
	for (;;) {
		int n = poll(p, cancel_fd > 0 ? 2 : 1, wait_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -1;
		if (p[0].revents)
			break;
	}
	unsigned char c;
	int fd;
	if (ac_fd_recv(from, &c, &fd, MSG_DONTWAIT) != 1)
		return -1;
	return fd;
}

static int launch(launch_t *l, pid_t *builder_pid, ac_error_t **err)
{
	if (ac_seccomp_prepare_cached(l->spec->home, l->spec->mount_cwd != NULL, err) < 0)
		return -1;
	l->net[0] = l->net[1] = -1;
	if (l->spec->net_fd && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, l->net) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "socketpair");
	if (pipe2(l->report, O_CLOEXEC) < 0) {
		close_net(l);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	}
	l->caller = getpid();
	if (thread_count() > 1) {
		if (spawn_builder(l, builder_pid, err) < 0) {
			close(l->report[0]);
			close(l->report[1]);
			close_net(l);
			return -1;
		}
		close(l->report[1]);
		if (l->net[1] >= 0)
			close(l->net[1]);
		l->net[1] = -1;
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(l->report[0]);
		close(l->report[1]);
		close_net(l);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0)
		ac_launch_builder(l);
	close(l->report[1]);
	if (l->net[1] >= 0)
		close(l->net[1]);
	l->net[1] = -1;
	*builder_pid = pid;
	return 0;
}

static int read_reports(int fd, ac_result_t *res, pid_t *init_pid, bool *ready, ac_error_t **err)
{
	ac_report_t m;
	int rc = 0;
	while (ac_read_all(fd, &m, sizeof(m)) == sizeof(m)) {
		m.text[sizeof(m.text) - 1] = 0;
		switch (m.type) {
		case AC_REPORT_ERROR:
			rc = ac_error_set(err, (ac_error_kind_t)m.a, 0, "%s", m.text);
			if (*err)
				(*err)->errnum = m.b;
			break;
		case AC_REPORT_EXEC_FAILED:
			if (m.a == AC_STAGE_POLICY)
				rc = ac_error_set(err, AC_ERR_PERMISSION, 0,
						  "'%s' is blocked by the command policy", m.text);
			else if (m.a == AC_STAGE_USER)
				rc = ac_error_set(err, AC_ERR_INVALID, 0, "unknown user: %s",
						  strerror(m.b));
			else if (m.a == AC_STAGE_CWD)
				rc = ac_error_set(err, AC_ERR_INVALID, m.b,
						  "cannot enter the working directory");
			else
				rc = ac_error_set(err, AC_ERR_NOT_FOUND, m.b, "cannot execute '%s'",
						  m.text);
			if (res)
				res->exit_code = m.b == ENOENT ? 127 : 126;
			break;
		case AC_REPORT_EXIT:
			if (res) {
				res->exit_code = m.a;
				res->signal = m.b;
			}
			break;
		case AC_REPORT_TIMEOUT:
			if (res) {
				res->exit_code = 124;
				res->timed_out = true;
			}
			break;
		case AC_REPORT_PID:
			if (init_pid)
				*init_pid = m.a;
			if (ready && *ready)
				return rc;
			break;
		case AC_REPORT_READY:
			/* The builder's PID report and init's READY come from two processes
			 * on one pipe, in either order: init may well be faster than its
			 * parent. A start needs both. */
			if (ready)
				*ready = true;
			if (!init_pid || *init_pid > 0)
				return rc;
			break;
		}
	}
	return rc;
}

/* Waits until the builder b exits (0), cancel_fd (> 0) reports its peer gone (1) or
 * timeout_ms (> 0) passes (2): then the builder is killed, and with it the sandbox (a
 * run's init dies with its parent; a start's never gets its ack). The caller reaps b. */
static int wait_or_cancel(pid_t b, int cancel_fd, int timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, b, 0);
	if (pfd < 0)
		return 0;
	struct pollfd p[2] = {{pfd, POLLIN, 0}, {cancel_fd, POLLRDHUP, 0}};
	int64_t deadline = timeout_ms > 0 ? ac_launch_now_ns() + (int64_t)timeout_ms * 1000000 : 0;
	int why = 0;
	for (;;) {
		int wait_ms = -1;
		if (deadline) {
			int64_t left = deadline - ac_launch_now_ns();
			if (left <= 0) {
				why = 2;
				break;
			}
			wait_ms = (int)(left / 1000000) + 1;
		}
		if (poll(p, cancel_fd > 0 ? 2 : 1, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
			why = 1;
			break;
		}
	}
	if (why)
		kill(b, SIGKILL);
	close(pfd);
	return why;
}

int ac_rt_run(const ac_rt_spec_t *spec_in, const ac_cmd_t *cmd, const int fds[3], ac_result_t *res,
	      ac_error_t **err)
{
	ac_rt_spec_t spec = *spec_in;
	uint32_t slot = 0;
	char leaf[64];
	static unsigned counter;
	_cleanup_close_ int lease = ac_slot_lease(&slot, err);
	if (lease < 0)
		return -1;
	spec.uid_base = ac_slot_uid_base(slot);
	snprintf(leaf, sizeof(leaf), "run-%d-%u", (int)getpid(),
		 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
	launch_t l = {.spec = &spec,
		      .cmd = cmd,
		      .listen_fd = -1,
		      .log_fd = -1,
		      .ack = {-1, -1},
		      .net = {-1, -1},
		      .stdio = fds};
	snprintf(l.cg_leaf, sizeof(l.cg_leaf), "%s", leaf);
	if (ac_cgroup_create(leaf, &spec.limits, &l.cg, err) < 0)
		return -1;
	int rc = -1;
	l.userns_fd = ac_userns_fd(spec.uid_base, err);
	if (l.userns_fd < 0)
		goto out;
	pid_t b;
	/* The terminal's SIGINT reaches the sandbox's init directly; SIGTERM/SIGHUP sent to
	 * us are relayed. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit, old_term, old_hup;
	sigemptyset(&ign.sa_mask);
	bool relay = ac_rt_relay_signals;
	if (relay) {
		sigaction(SIGINT, &ign, &old_int);
		sigaction(SIGQUIT, &ign, &old_quit);
	}
	if (launch(&l, &b, err) < 0)
		goto restore;
	if (relay)
		ac_launch_relay(b, &old_term, &old_hup);
	int status, net_rc = 0;
	ac_error_t *net_err = NULL;
	if (l.net[0] >= 0) {
		/* The command starts once the builder forked init, which it does after sending:
		 * the proxy's listener already queues its connections. */
		int nfd = recv_net_fd(l.net[0], cmd->cancel_fd, -1);
		if (nfd >= 0 && spec.on_net)
			net_rc = spec.on_net(spec.on_net_arg, nfd, 0, &net_err);
		if (nfd >= 0)
			close(nfd);
		close_net(&l);
		if (net_rc < 0)
			kill(b, SIGKILL);
	}
	bool cancelled = cmd->cancel_fd > 0 && wait_or_cancel(b, cmd->cancel_fd, 0) == 1;
	while (waitpid(b, &status, 0) < 0 && errno == EINTR)
		;
	ac_reap_helpers();
	if (relay) {
		forward_to = 0;
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
	}
	*res = (ac_result_t){.exit_code =
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
	rc = read_reports(l.report[0], res, NULL, NULL, err);
	close(l.report[0]);
	if (net_rc < 0) {
		if (rc < 0 && err) {
			ac_error_free(*err);
			*err = NULL;
		}
		rc = -1;
		if (err)
			*err = net_err;
		else
			ac_error_free(net_err);
		net_err = NULL;
	}
	ac_error_free(net_err);
	if (cancelled && rc == 0)
		rc = ac_error_set(err, AC_ERR_STATE, 0, "cancelled: the caller went away");
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 125 && !res->signal &&
	    res->exit_code == 125)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0, "the sandbox failed to start");
restore:
	if (relay) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
	}
	close(l.userns_fd);
out:
	if (ac_cgroup_destroy(l.cg, rc < 0 ? NULL : err) < 0)
		rc = -1;
	ac_cgroup_free(l.cg);
	return rc;
}

/* A start's builder is recorded (pid and start time) beside the sandbox's socket while it
 * works: a caller killed meanwhile (a serve) leaves it behind, possibly stuck, holding the
 * sandbox's disk; the next start of the sandbox ends it first. */
static void end_left_builder(const char *record)
{
	char buf[64] = "";
	int pid = 0;
	unsigned long long start = 0;
	_cleanup_close_ int fd = open(record, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (sscanf(buf, "%d %llu", &pid, &start) == 2 && pid > 1 && start &&
	    ac_proc_starttime(pid) == start) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		/* Checked again through the pidfd: the kill cannot hit a reused pid. */
		if (pfd >= 0 && ac_proc_starttime(pid) == start) {
			syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
			struct pollfd p = {pfd, POLLIN, 0};
			while (poll(&p, 1, 5000) < 0 && errno == EINTR)
				;
		}
		if (pfd >= 0)
			close(pfd);
	}
	unlink(record);
}

void ac_rt_end_left_builder(const char *socket_path)
{
	char record[4200];
	snprintf(record, sizeof(record), "%s.builder", socket_path);
	end_left_builder(record);
}

static void record_builder(const char *record, pid_t b)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%d %llu\n", (int)b, ac_proc_starttime(b));
	_cleanup_close_ int fd =
	    open(record, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		(void)!ac_write_all(fd, buf, (size_t)n);
}

/* How long a start may take before its builder is killed (tests shorten it). */
static int start_deadline_ms(void)
{
	const char *v = getenv("AGENTCELL_TEST_START_DEADLINE_MS");
	int ms = v ? atoi(v) : 0;
	return ms > 0 ? ms : AC_RT_START_DEADLINE_MS;
}

int ac_rt_start(const ac_rt_spec_t *spec, pid_t *pid_out, int *ack_fd, ac_error_t **err)
{
	launch_t l = {.spec = spec,
		      .cmd = NULL,
		      .listen_fd = -1,
		      .log_fd = -1,
		      .ack = {-1, -1},
		      .net = {-1, -1}};
	int rc = -1;
	char path[4200], record[4200];
	char leaf[128];
	snprintf(record, sizeof(record), "%s.builder", spec->socket_path);
	end_left_builder(record);
	ac_sandbox_cgroup_leaf(leaf, sizeof(leaf), spec->name,
			       (spec->uid_base - AC_UID_BASE_FIRST) / AC_UID_RANGE);
	snprintf(l.cg_leaf, sizeof(l.cg_leaf), "%s", leaf);
	if (ac_cgroup_create(leaf, &spec->limits, &l.cg, err) < 0)
		return -1;
	l.userns_fd = ac_userns_fd(spec->uid_base, err);
	if (l.userns_fd < 0)
		goto out;
	l.listen_fd = ac_sock_listen(spec->socket_path, err);
	if (l.listen_fd < 0)
		goto out;
	snprintf(path, sizeof(path), "%s.log", spec->socket_path);
	l.log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
	pid_t b, init = 0;
	if (pipe2(l.ack, O_CLOEXEC) < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
		goto out;
	}
	if (launch(&l, &b, err) < 0)
		goto out;
	close(l.ack[0]);
	l.ack[0] = -1;
	record_builder(record, b);
	int why = wait_or_cancel(b, spec->cancel_fd, start_deadline_ms());
	int status;
	while (waitpid(b, &status, 0) < 0 && errno == EINTR)
		;
	unlink(record);
	ac_reap_helpers();
	bool ready = false;
	rc = read_reports(l.report[0], NULL, &init, &ready, err);
	close(l.report[0]);
	if (why && err && *err) {
		ac_error_free(*err);
		*err = NULL;
	}
	if (why == 1)
		rc = ac_error_set(err, AC_ERR_STATE, 0, "cancelled: the caller went away");
	else if (why == 2)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0, "the sandbox did not start within %d ms",
				  start_deadline_ms());
	else if (rc == 0 && (!ready || init <= 0))
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "the sandbox's supervisor exited during start-up");
	if (rc == 0 && l.net[0] >= 0) {
		/* Sent before init was forked: waiting in the socket. */
		int nfd = recv_net_fd(l.net[0], -1, 0);
		if (nfd < 0)
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "the sandbox's network namespace was not handed over");
		else if (spec->on_net)
			rc = spec->on_net(spec->on_net_arg, nfd, init, err);
		if (nfd >= 0)
			close(nfd);
	}
	if (rc < 0 && init > 0)
		kill(init, SIGKILL);
	if (rc == 0) {
		*pid_out = init;
		*ack_fd = l.ack[1];
		l.ack[1] = -1;
	}
out:
	close_net(&l);
	for (int i = 0; i < 2; i++)
		if (l.ack[i] >= 0)
			close(l.ack[i]);
	if (l.userns_fd >= 0)
		close(l.userns_fd);
	if (l.listen_fd >= 0)
		close(l.listen_fd);
	if (l.log_fd >= 0)
		close(l.log_fd);
	if (rc < 0) {
		unlink(spec->socket_path);
		ac_cgroup_destroy(l.cg, NULL);
	}
	ac_cgroup_free(l.cg);
	return rc;
}
