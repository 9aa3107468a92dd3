/* The builder's side of starting a sandbox (see launch.h): host root in a private mount
 * namespace, it builds the root file system, enters the sandbox's user namespace, creates
 * the other namespaces and forks the sandbox's init, which locks itself down and then runs
 * one command (a run: init_run) or becomes the supervisor (a start). Everything here runs
 * in a child of the caller; it reports back through the report pipe (report.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "base/io.h"
#include "base/proctitle.h"
#include "base/util.h"
#include "runtime/buildreq.h"
#include "runtime/caps.h"
#include "runtime/launch.h"
#include "runtime/policy.h"
#include "runtime/report.h"
#include "runtime/rootfs.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/spawn.h"
#include "runtime/supervisor.h"
#include "runtime/userns.h"

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

static volatile sig_atomic_t init_got_signal;
static void init_note_signal(int sig)
{
	init_got_signal = sig;
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
	ac_cmd_t c = *cmd; /* with the image's defaults */
	ac_spawn_t sp = {.cmd = &c,
			 .base_env = spec->env,
			 .default_cwd = ac_cmd_defaults(spec, &c),
			 .hostname = spec->name,
			 .fds = {cmd->stdin_open ? 0 : -1, 1, 2},
			 .tty_slave = -1,
			 .errpipe = ep[1],
			 .spec = spec};
	int pr = ac_spawn_prepare(&sp);
	if (pr < 0) {
		ac_report(report, AC_REPORT_EXEC_FAILED,
			  pr == -EPERM	  ? AC_STAGE_POLICY
			  : pr == -ENOENT ? AC_STAGE_USER
					  : AC_STAGE_SETUP,
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

	int64_t deadline =
	    cmd->timeout > 0 ? ac_launch_now_ns() + (int64_t)(cmd->timeout * 1e9) : 0;
	for (;;) {
		struct timespec ts, *tsp = NULL;
		if (deadline) {
			int64_t left = deadline - ac_launch_now_ns();
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

/* With the network on, the sandbox's side of the data path exists before any of its
 * processes: lo up, the proxy's listener bound and listening (connections queue until the
 * proxy accepts them), handed to the caller. Without, a datagram socket stands for the
 * namespace (published ports). */
static int send_net_fd(const ac_rt_spec_t *spec, int to, ac_error_t **err)
{
	if (ac_rootfs_lo_up() < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot bring lo up");
	_cleanup_close_ int s =
	    socket(AF_INET, (spec->net_proxy_port ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "socket");
	if (spec->net_proxy_port) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(spec->net_proxy_port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 512) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno,
					    "cannot listen for the proxy in the sandbox");
	}
	if (ac_fd_send(to, 'n', s) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot hand the sandbox's network to the caller");
	close(to);
	return 0;
}

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

__attribute__((noreturn)) void ac_launch_builder(launch_t *l)
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
	const int keep[] = {rep, l->userns_fd, l->listen_fd, l->log_fd, l->ack[0], l->net[1]};
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
	if (l->net[1] >= 0 && send_net_fd(spec, l->net[1], &err) < 0)
		goto fail;
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
	ac_launch_relay(init, NULL, NULL);
	int status;
	while (waitpid(init, &status, 0) < 0)
		if (errno != EINTR)
			_exit(125);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
fail:
	ac_report_error(rep, err);
	_exit(125);
}

int ac_rt_builder_main(int argc, char **argv)
{
	static launch_t l;
	static ac_rt_spec_t spec;
	ac_error_t *err = NULL;
	ac_cmd_t *cmd = NULL;
	const char *leaf = NULL;
	if (argc < 3 || strlen(argv[2]) != 4)
		_exit(125);
	l = (launch_t){.spec = &spec,
		       .userns_fd = FD_USERNS,
		       .listen_fd = argv[2][0] == '1' ? FD_LISTEN : -1,
		       .log_fd = argv[2][1] == '1' ? FD_LOG : -1,
		       .report = {-1, FD_REPORT},
		       .ack = {argv[2][2] == '1' ? FD_ACK : -1, -1},
		       .net = {-1, argv[2][3] == '1' ? FD_NET : -1}};
	if (ac_buildreq_decode(FD_REQ, &spec, &cmd, &leaf, &l.caller, &err) < 0 ||
	    ac_cgroup_open(leaf, &l.cg, &err) < 0 ||
	    ac_seccomp_prepare_cached(spec.home, spec.mount_cwd != NULL, &err) < 0) {
		ac_report_error(FD_REPORT, err);
		_exit(125);
	}
	close(FD_REQ);
	l.cmd = cmd;
	/* Tests: a builder of this sandbox that hangs (stopped until killed). */
	const char *hold = getenv("AGENTCELL_TEST_HOLD_BUILDER");
	if (hold && spec.name && !strcmp(hold, spec.name))
		raise(SIGSTOP);
	ac_launch_builder(&l);
}
