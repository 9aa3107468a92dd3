/* Running host-side code against a sandbox's root file system, running or stopped.
 *
 * A running sandbox's root is /proc/<init>/root. A stopped one has no mounts at all: a
 * child builds its root file system (the same ac_rootfs_build as a start, in a private
 * mount namespace that dies with the child). Either way the work runs in a forked child
 * holding a descriptor of that root, and every path is resolved with openat2
 * RESOLVE_IN_ROOT, so "..", absolute symlinks and symlinks the sandbox planted stay inside. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "agentcell/util.h"
#include "runtime/report.h"
#include "runtime/runtime.h"

int ac_rt_in_root(const ac_rt_spec_t *spec, pid_t init_pid, unsigned long long init_start,
		  ac_rt_root_fn fn, void *arg, ac_error_t **err)
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
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ac_reap_helpers();
	ac_report_t m;
	int rc = 0;
	if (ac_read_all(rep[0], &m, sizeof(m)) == sizeof(m)) {
		m.text[sizeof(m.text) - 1] = 0;
		rc = ac_error_set(err, (ac_error_kind_t)m.a, 0, "%s", m.text);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = ac_error_set(err, AC_ERR_INTERNAL, 0, "the file operation died");
	}
	close(rep[0]);
	return rc;
}
