/* Running host-side code against a sandbox's root file system, running or stopped.
 *
 * A running sandbox's root is /proc/<init>/root. A stopped one has no mounts at all: a
 * child builds its root file system (the same ac_rootfs_build as a start, in a private
 * mount namespace that dies with the child). Either way the work runs in a forked child
 * holding a descriptor of that root, and every path is resolved with openat2
 * RESOLVE_IN_ROOT, so "..", absolute symlinks and symlinks the sandbox planted stay inside.
 * The caller holds no lock of a running sandbox meanwhile: the child is bounded by a
 * deadline, the caller's cancel descriptor and the life of the sandbox's init (watch). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/inroot.h"
#include "runtime/proc.h"
#include "runtime/report.h"
#include "runtime/rootfs.h"
#include "runtime/userns.h"

typedef enum { DONE, TIMED_OUT, STOPPED, CANCELLED } ending_t;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes the process has read and written (rchar + wchar): its progress. */
static unsigned long long io_bytes(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long r = 0, w = 0;
	const char *p = strstr(buf, "rchar: "), *q = strstr(buf, "wchar: ");
	if (p)
		r = strtoull(p + 7, NULL, 10);
	if (q)
		w = strtoull(q + 7, NULL, 10);
	return r + w;
}

/* Waits until the child ends, and kills it first when the deadline passes, the caller's
 * client hangs up or the sandbox's init exits: the child may be blocked in I/O that only
 * the sandbox controls, and nothing else would end it. The deadline is one of progress: a
 * child that moved bytes since the last one gets another (copying a large tree may take
 * longer than any fixed limit), one that moved none is killed. The caller reaps it. */
static ending_t watch(pid_t child, pid_t init_pid, unsigned long long init_start,
		      const ac_rt_root_ctl_t *ctl)
{
	int cfd = pidfd_open(child, 0);
	if (cfd < 0)
		return DONE; /* no pidfd: an unbounded wait, as before */
	int ifd = init_pid > 0 ? pidfd_open(init_pid, 0) : -1;
	if (ifd >= 0 && ac_proc_starttime(init_pid) != init_start) {
		close(ifd); /* not the sandbox's init any more: the child finds out itself */
		ifd = -1;
	}
	int cancel = ctl && ctl->cancel_fd > 0 ? ctl->cancel_fd : -1;
	long long deadline = ctl && ctl->timeout_ms > 0 ? now_ms() + ctl->timeout_ms : -1;
	struct pollfd p[3] = {{cfd, POLLIN, 0}, {ifd, POLLIN, 0}, {cancel, POLLRDHUP, 0}};
	ending_t why = DONE;
	unsigned long long moved = io_bytes(child);
	for (;;) {
		int wait = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			wait = left > 0 ? (int)(left < 60000 ? left : 60000) : 0;
		}
		int n = poll(p, 3, wait);
		if (n < 0 && errno != EINTR)
			break;
		if (n < 0)
			continue;
		if (p[0].revents)
			break;
		if (p[1].revents)
			why = STOPPED;
		else if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
			why = CANCELLED;
		else if (deadline >= 0 && now_ms() >= deadline) {
			unsigned long long now_moved = io_bytes(child);
			if (now_moved != moved) {
				moved = now_moved;
				deadline = now_ms() + ctl->timeout_ms;
				continue;
			}
			why = TIMED_OUT;
		}
		if (why != DONE) {
			pidfd_send_signal(cfd, SIGKILL, NULL, 0);
			break;
		}
	}
	if (ifd >= 0)
		close(ifd);
	close(cfd);
	return why;
}

int ac_rt_in_root(const ac_rt_spec_t *spec, pid_t init_pid, unsigned long long init_start,
		  const ac_rt_root_ctl_t *ctl, ac_rt_root_fn fn, void *arg, ac_error_t **err)
{
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	int userns_fd = -1;
	if (init_pid <= 0) {
		userns_fd = ac_userns_fd(spec->uid_base, err);
		if (userns_fd < 0) {
			close(rep[0]);
			close(rep[1]);
			return -1;
		}
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(rep[0]);
		close(rep[1]);
		if (userns_fd >= 0)
			close(userns_fd);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		ac_error_t *e = NULL;
		int rootfd = -1;
		close(rep[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* A server blocks SIGTERM in every thread (it takes it with sigwait) and the
		 * child inherits that mask: unblocked here, so a SIGTERM ends the helper as it
		 * ends any process. A closed pipe or socket is an error to report, not a
		 * signal. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		sigaction(SIGPIPE, &ign, NULL);
		if (init_pid > 0) {
			/* The root of exactly that process: a pidfd pins the pid, the start time
			 * says it is still the sandbox's init, and the pidfd is checked again
			 * after the open (a reused pid could otherwise hand us the host's /). */
			char p[64];
			snprintf(p, sizeof(p), "/proc/%d/root", (int)init_pid);
			int pfd = pidfd_open(init_pid, 0);
			if (pfd < 0 || ac_proc_starttime(init_pid) != init_start)
				ac_error_set(&e, AC_ERR_STATE, errno, "the sandbox stopped");
			else if ((rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
				ac_error_set(&e, AC_ERR_STATE, errno,
					     "cannot reach the sandbox's root");
			else if (pidfd_send_signal(pfd, 0, NULL, 0) < 0) {
				close(rootfd);
				rootfd = -1;
				ac_error_set(&e, AC_ERR_STATE, 0, "the sandbox stopped");
			}
			if (pfd >= 0)
				close(pfd);
		} else {
			char staging[4200], root[4300];
			snprintf(staging, sizeof(staging), "%s/base/mnt", spec->home);
			snprintf(root, sizeof(root), "%s/root", staging);
			if (unshare(CLONE_NEWNS) < 0)
				ac_error_set(&e, AC_ERR_BACKEND, errno,
					     "cannot create a mount namespace");
			else if (ac_rootfs_build(spec, userns_fd, staging, &e) == 0 &&
				 (rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
				ac_error_set(&e, AC_ERR_BACKEND, errno, "open %s", root);
		}
		if (rootfd >= 0 && fn(rootfd, spec->uid_base, arg, &e) == 0)
			_exit(0);
		ac_report(rep[1], AC_REPORT_ERROR, e ? (int)e->kind : AC_ERR_INTERNAL,
			  e ? e->errnum : 0, "%s", e ? e->msg : "failed");
		_exit(1);
	}
	close(rep[1]);
	if (userns_fd >= 0)
		close(userns_fd);
	ending_t why = watch(pid, init_pid, init_start, ctl);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ac_reap_helpers();
	ac_report_t m;
	int rc = 0;
	if (why == TIMED_OUT) {
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "the file operation moved no data for %d s and was stopped",
				  (ctl->timeout_ms + 999) / 1000);
	} else if (why == STOPPED) {
		rc = ac_error_set(err, AC_ERR_STATE, 0,
				  "the sandbox stopped during the file operation");
	} else if (why == CANCELLED) {
		rc = ac_error_set(err, AC_ERR_STATE, 0, "cancelled: the caller went away");
	} else if (ac_read_all(rep[0], &m, sizeof(m)) == sizeof(m)) {
		m.text[sizeof(m.text) - 1] = 0;
		rc = ac_error_set(err, (ac_error_kind_t)m.a, 0, "%s", m.text);
	} else if (WIFSIGNALED(status)) {
		rc = ac_error_set(err, AC_ERR_INTERNAL, 0, "the file operation was killed (%s)",
				  strsignal(WTERMSIG(status)));
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = ac_error_set(err, AC_ERR_INTERNAL, 0, "the file operation died");
	}
	close(rep[0]);
	return rc;
}
