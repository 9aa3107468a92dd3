/* Caller side of starting a sandbox: cgroup, user namespace, the builder process (host
 * root, private mount namespace) and the sandbox's init, with one report pipe back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "agentcell/util.h"
#include "runtime/buildreq.h"
#include "runtime/runtime.h"
#include "runtime/report.h"

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

void ac_report(int fd, int type, int a, int b, const char *fmt, ...)
{
	ac_report_t m = {.type = type, .a = a, .b = b};
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m.text, sizeof(m.text), fmt, ap);
		va_end(ap);
	}
	if (fd >= 0)
		(void)!write(fd, &m, sizeof(m));
}

static void report_error(int fd, ac_error_t *e)
{
	ac_report(fd, AC_REPORT_ERROR, e ? (int)e->kind : AC_ERR_BACKEND, e ? e->errnum : 0, "%s",
		  e ? e->msg : "sandbox set-up failed");
}

bool ac_rt_relay_signals = true;

static volatile sig_atomic_t forward_to = 0;
static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

static void forward_signals(pid_t to)
{
	struct sigaction sa = {.sa_handler = forward_signal};
	sigemptyset(&sa.sa_mask);
	forward_to = to;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static volatile sig_atomic_t init_got_signal;
static void init_note_signal(int sig)
{
	init_got_signal = sig;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Ephemeral init (PID 1): run the command, relay signals, enforce the timeout. When
 * init exits the kernel kills everything left in the namespace. */
__attribute__((noreturn)) static void init_run(const ac_rt_spec_t *spec, const ac_cmd_t *cmd,
					       int report)
{
	static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	struct sigaction sa = {.sa_handler = init_note_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < AC_ARRAY_SIZE(relayed); i++) {
		/* PID 1 only receives signals it has a handler for. */
		sigaction(relayed[i], &sa, NULL);
		sigaddset(&set, relayed[i]);
	}
	sigaction(SIGCHLD, &sa, NULL);
	sigprocmask(SIG_BLOCK, &set, NULL);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		ac_report(report, AC_REPORT_ERROR, AC_ERR_INTERNAL, errno, "pipe");
		_exit(125);
	}
	ac_spawn_t sp = {.cmd = cmd,
			 .base_env = spec->env,
			 .default_cwd = spec->mount_cwd ? "/workspace" : "/",
			 .hostname = spec->name,
			 .fds = {cmd->stdin_open ? 0 : -1, 1, 2},
			 .tty_slave = -1,
			 .errpipe = ep[1],
			 .spec = spec};
	int pr = ac_spawn_prepare(&sp);
	if (pr < 0) {
		ac_report(report, AC_REPORT_EXEC_FAILED,
			  pr == -EPERM	  ? 5
			  : pr == -ENOENT ? 2
					  : 4,
			  -pr, "%s", cmd->argv[0]);
		_exit(126);
	}
	pid_t child = ac_spawn_start(&sp);
	if (child < 0) {
		ac_report(report, AC_REPORT_ERROR, AC_ERR_BACKEND, errno, "clone");
		_exit(125);
	}
	close(ep[1]);
	int msg[2];
	if (ac_read_all(ep[0], msg, sizeof(msg)) == sizeof(msg)) {
		ac_report(report, AC_REPORT_EXEC_FAILED, msg[0], msg[1], "%s", cmd->argv[0]);
		_exit(msg[1] == ENOENT ? 127 : 126);
	}
	close(ep[0]);

	int64_t deadline = cmd->timeout > 0 ? now_ns() + (int64_t)(cmd->timeout * 1e9) : 0;
	for (;;) {
		struct timespec ts, *tsp = NULL;
		if (deadline) {
			int64_t left = deadline - now_ns();
			if (left <= 0) {
				ac_report(report, AC_REPORT_TIMEOUT, 0, 0, NULL);
				_exit(124);
			}
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			tsp = &ts;
		}
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, tsp);
		if (sig < 0)
			continue; /* EAGAIN (deadline) or EINTR */
		if (sig != SIGCHLD) {
			kill(-child, sig); /* the command leads its own session */
			continue;
		}
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			if (WIFSIGNALED(status)) {
				ac_report(report, AC_REPORT_EXIT, 128 + WTERMSIG(status),
					  WTERMSIG(status), NULL);
				_exit(128 + WTERMSIG(status));
			}
			ac_report(report, AC_REPORT_EXIT, WEXITSTATUS(status), 0, NULL);
			_exit(WEXITSTATUS(status));
		}
	}
}

typedef struct launch {
	const ac_rt_spec_t *spec;
	const ac_cmd_t *cmd; /* NULL: persistent supervisor */
	int userns_fd;
	int listen_fd;
	int log_fd;
	ac_cgroup_t *cg;
	int report[2];
	int ack[2]; /* persistent: the caller confirms it recorded the supervisor */
	pid_t caller;
	const int *stdio; /* run: the command's stdin/stdout/stderr (NULL: the caller's 0/1/2) */
	char cg_leaf[128];
} launch_t;

/* Closes every descriptor but 0, 1, 2 and keep[]: the caller's descriptors (its lock
 * on the sandbox, the state directory) must not live on in a long-lived supervisor. */
static void close_fds_except(const int *keep, int n)
{
	unsigned from = 3;
	for (;;) {
		int next = -1;
		for (int i = 0; i < n; i++)
			if (keep[i] >= (int)from && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0) {
			close_range(from, ~0u, 0);
			return;
		}
		if ((unsigned)next > from)
			close_range(from, (unsigned)next - 1, 0);
		from = (unsigned)next + 1;
	}
}

/* The builder: host root in a private mount namespace. */
__attribute__((noreturn)) static void builder(launch_t *l)
{
	const ac_rt_spec_t *spec = l->spec;
	int rep = l->report[1];
	ac_error_t *err = NULL;
	char staging[4200];

	close(l->report[0]);
	if (l->stdio) {
		/* The descriptors a front end gave (pipes of `serve`) become the command's 0/1/2;
		 * a missing stdin reads /dev/null. */
		for (int i = 0; i < 3; i++) {
			int fd = l->stdio[i];
			if (fd < 0 && i == 0)
				fd = open("/dev/null", O_RDONLY);
			if (fd >= 0 && fd != i && dup2(fd, i) < 0)
				_exit(125);
		}
	}
	const int keep[] = {rep, l->userns_fd, l->listen_fd, l->log_fd, l->ack[0]};
	close_fds_except(keep, (int)AC_ARRAY_SIZE(keep));
	if (l->cmd)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	else
		setsid();
	snprintf(staging, sizeof(staging), "%s/base/mnt", spec->home);
	if (ac_cgroup_attach_self(l->cg, &err) < 0)
		goto fail;
	if (unshare(CLONE_NEWNS) < 0) {
		ac_error_set(&err, AC_ERR_BACKEND, errno, "cannot create a mount namespace");
		goto fail;
	}
	if (ac_rootfs_build(spec, l->userns_fd, staging, &err) < 0)
		goto fail;
	char root[4300];
	snprintf(root, sizeof(root), "%s/root", staging);
	if (ac_policy_mask(spec, root, staging, &err) < 0)
		goto fail;
	if (chdir(root) < 0) {
		ac_error_set(&err, AC_ERR_BACKEND, errno, "chdir %s", root);
		goto fail;
	}
	if (ac_userns_enter(l->userns_fd, &err) < 0)
		goto fail;
	/* A credential change clears the parent-death signal: set it (again) now. A run
	 * whose caller dies takes its sandbox along. */
	if (l->cmd && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != l->caller)) {
		ac_error_set(&err, AC_ERR_BACKEND, 0, "the caller went away");
		goto fail;
	}
	if (unshare(NS_FLAGS) < 0) {
		ac_error_set(&err, AC_ERR_BACKEND, errno, "cannot create the sandbox namespaces");
		goto fail;
	}
	/* A lifeline only the builder holds: a run's init checks it after arming its
	 * parent-death signal, closing the window in which the builder died first. */
	int life[2];
	if (pipe2(life, O_CLOEXEC) < 0) {
		ac_error_set(&err, AC_ERR_BACKEND, errno, "pipe");
		goto fail;
	}
	pid_t init = fork();
	if (init < 0) {
		ac_error_set(&err, AC_ERR_BACKEND, errno, "fork");
		goto fail;
	}
	if (init == 0) {
		close(life[1]);
		if (l->cmd) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			struct pollfd lp = {life[0], POLLIN, 0};
			if (poll(&lp, 1, 0) > 0 && (lp.revents & (POLLHUP | POLLERR)))
				_exit(125);
		}
		close(life[0]);
		/* Ports below 1024 for every uid of the sandbox, as in Docker: commands of a
		 * persistent sandbox have no capability in the namespace that owns the network
		 * namespace. Through the host's /proc (it shows our network namespace): the
		 * sandbox's own /proc/sys is read-only from ac_rootfs_enter on. */
		ac_write_string_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_unprivileged_port_start", "0\n",
				   NULL);
		if (ac_rootfs_enter(spec->name, &err) < 0 ||
		    ac_caps_limit_bounding(spec->mount_cwd != NULL, &err) < 0)
			goto fail;
		/* init, its shims and every command share one lockdown, applied once here:
		 * the sandbox's capability set, no_new_privs and the seccomp filter. */
		if (ac_caps_drop_to_sandbox_set() < 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
			ac_error_set(&err, AC_ERR_BACKEND, errno, "cannot lock the sandbox down");
			goto fail;
		}
		/* A persistent sandbox's supervisor and shims move out of the commands' reach:
		 * they become the sandbox's uid 65535, and commands run in a nested user
		 * namespace that does not map it (docs/ARCHITECTURE.md, "Commands in a nested
		 * user namespace"). A run has no process but init, which the kernel protects. */
		ac_error_t *nested_err = NULL;
		if (!l->cmd) {
			if (ac_caps_become_supervisor() < 0) {
				ac_error_set(&err, AC_ERR_BACKEND, errno,
					     "cannot become the supervisor's user");
				goto fail;
			}
			/* Without it (a kernel or policy that refuses nested user namespaces)
			 * commands share the supervisor's namespace, as before: logged. */
			ac_spawn_set_nested(ac_userns_nested(&nested_err));
		}
		if (ac_policy_landlock(spec, &err) < 0)
			goto fail;
		if (ac_seccomp_load() < 0) {
			ac_error_set(&err, AC_ERR_BACKEND, errno, "cannot lock the sandbox down");
			goto fail;
		}
		if (l->cmd) {
			/* The command's argv lives in the caller's argv memory, which the
			 * title overwrites: copy it first. */
			static ac_cmd_t own;
			own = *l->cmd;
			size_t n = 0;
			while (l->cmd->argv[n])
				n++;
			own.argv = calloc(n + 1, sizeof(char *));
			for (size_t i = 0; own.argv && i < n; i++)
				own.argv[i] = strdup(l->cmd->argv[i]);
			if (!own.argv) {
				ac_error_set(&err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
				goto fail;
			}
			l->cmd = &own;
			prctl(PR_SET_NAME, "agentcell-init");
			ac_proctitle_set("agentcell-init");
			ac_proctitle_wipe_environ();
		}
		/* Keeps /proc/1/{exe,fd,mem,...} out of the sandbox's reach. */
		prctl(PR_SET_DUMPABLE, 0);
		if (l->cmd)
			init_run(spec, l->cmd, rep);
		prctl(PR_SET_NAME, "agentcell-init");
		ac_proctitle_set("agentcell-init");
		ac_proctitle_wipe_environ();
		ac_report(rep, AC_REPORT_READY, 0, 0, NULL);
		close(rep);
		/* A caller killed before it recorded us would leave an unknown supervisor
		 * running: wait for its word, and go away if it dies first. */
		char ok = 0;
		if (ac_read_all(l->ack[0], &ok, 1) != 1 || ok != 'y')
			_exit(1);
		close(l->ack[0]);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			close(null);
		}
		if (l->log_fd >= 0) {
			dup2(l->log_fd, 2);
			close(l->log_fd);
		}
		if (nested_err)
			fprintf(stderr,
				"agentcell-init: warning: commands share the supervisor's user "
				"namespace (they can signal the shims): %s\n",
				nested_err->msg);
		ac_error_free(nested_err);
		ac_supervisor_main(l->listen_fd, spec);
	}
	close(life[0]);
	if (!l->cmd) {
		close(life[1]);
		ac_report(rep, AC_REPORT_PID, init, 0, NULL);
		_exit(0);
	}
	/* Ephemeral: wait for init, relaying SIGTERM/SIGHUP; SIGINT/SIGQUIT from the
	 * terminal reach init directly (same process group). */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	forward_signals(init);
	int status;
	while (waitpid(init, &status, 0) < 0)
		if (errno != EINTR)
			_exit(125);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
fail:
	report_error(rep, err);
	_exit(125);
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

/* Builder descriptors of a spawned builder: the request, then the launch's own. */
enum { FD_REQ = 3, FD_REPORT, FD_USERNS, FD_LISTEN, FD_LOG, FD_ACK, FD_COUNT };

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
				   l->ack[0]};
	int hi[FD_COUNT];
	char have[4] = {l->listen_fd >= 0 ? '1' : '0', l->log_fd >= 0 ? '1' : '0',
			l->ack[0] >= 0 ? '1' : '0', 0};
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

int ac_rt_builder_main(int argc, char **argv)
{
	static launch_t l;
	static ac_rt_spec_t spec;
	ac_error_t *err = NULL;
	ac_cmd_t *cmd = NULL;
	const char *leaf = NULL;
	if (argc < 3 || strlen(argv[2]) != 3)
		_exit(125);
	l = (launch_t){.spec = &spec,
		       .userns_fd = FD_USERNS,
		       .listen_fd = argv[2][0] == '1' ? FD_LISTEN : -1,
		       .log_fd = argv[2][1] == '1' ? FD_LOG : -1,
		       .report = {-1, FD_REPORT},
		       .ack = {argv[2][2] == '1' ? FD_ACK : -1, -1}};
	if (ac_buildreq_decode(FD_REQ, &spec, &cmd, &leaf, &l.caller, &err) < 0 ||
	    ac_cgroup_open(leaf, &l.cg, &err) < 0 ||
	    ac_seccomp_prepare_cached(spec.home, spec.mount_cwd != NULL, &err) < 0) {
		report_error(FD_REPORT, err);
		_exit(125);
	}
	close(FD_REQ);
	l.cmd = cmd;
	/* Tests: a builder of this sandbox that hangs (stopped until killed). */
	const char *hold = getenv("AGENTCELL_TEST_HOLD_BUILDER");
	if (hold && spec.name && !strcmp(hold, spec.name))
		raise(SIGSTOP);
	builder(&l);
}

static int launch(launch_t *l, pid_t *builder_pid, ac_error_t **err)
{
	if (ac_seccomp_prepare_cached(l->spec->home, l->spec->mount_cwd != NULL, err) < 0)
		return -1;
	if (pipe2(l->report, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	l->caller = getpid();
	if (thread_count() > 1) {
		if (spawn_builder(l, builder_pid, err) < 0) {
			close(l->report[0]);
			close(l->report[1]);
			return -1;
		}
		close(l->report[1]);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(l->report[0]);
		close(l->report[1]);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0)
		builder(l);
	close(l->report[1]);
	*builder_pid = pid;
	return 0;
}

static int read_reports(int fd, ac_result_t *res, pid_t *init_pid, bool *ready, ac_error_t **err)
{
	ac_report_t m;
	ssize_t n;
	int rc = 0;
	while ((n = ac_read_all(fd, &m, sizeof(m))) == sizeof(m)) {
		m.text[sizeof(m.text) - 1] = 0;
		switch (m.type) {
		case AC_REPORT_ERROR:
			rc = ac_error_set(err, (ac_error_kind_t)m.a, 0, "%s", m.text);
			if (*err)
				(*err)->errnum = m.b;
			break;
		case AC_REPORT_EXEC_FAILED:
			if (m.a == 5)
				rc = ac_error_set(err, AC_ERR_PERMISSION, 0,
						  "'%s' is blocked by the command policy", m.text);
			else if (m.a == 2)
				rc = ac_error_set(err, AC_ERR_INVALID, 0, "unknown user: %s",
						  strerror(m.b));
			else if (m.a == 1)
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
	int64_t deadline = timeout_ms > 0 ? now_ns() + (int64_t)timeout_ms * 1000000 : 0;
	int why = 0;
	for (;;) {
		int wait_ms = -1;
		if (deadline) {
			int64_t left = deadline - now_ns();
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
	struct sigaction fwd = {.sa_handler = forward_signal};
	sigemptyset(&fwd.sa_mask);
	if (relay) {
		forward_to = b;
		sigaction(SIGTERM, &fwd, &old_term);
		sigaction(SIGHUP, &fwd, &old_hup);
	}
	int status;
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
	launch_t l = {.spec = spec, .cmd = NULL, .listen_fd = -1, .log_fd = -1, .ack = {-1, -1}};
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
	l.listen_fd = ac_proto_listen(spec->socket_path, err);
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
	if (rc < 0 && init > 0)
		kill(init, SIGKILL);
	if (rc == 0) {
		*pid_out = init;
		*ack_fd = l.ack[1];
		l.ack[1] = -1;
	}
out:
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
