/* User namespaces: sandbox uid 0 is host uid <uid_base>, never host root. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/caps.h"
#include "runtime/userns.h"

static int write_map(pid_t pid, const char *file, uint32_t inside, uint32_t outside,
		     ac_error_t **err)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	snprintf(line, sizeof(line), "%u %u %u\n", inside, outside, AC_UID_RANGE);
	return ac_write_string_at(AT_FDCWD, path, line, err);
}

/* The helpers this thread forked and has not reaped yet. Only those: in `serve`, other
 * threads' children (their builders) must never be reaped from under them. */
static __thread pid_t helpers[8];
static __thread unsigned nhelpers;

int ac_userns_fd(uint32_t uid_base, ac_error_t **err)
{
	return ac_userns_fd_map(0, uid_base, err);
}

int ac_userns_fd_map(uint32_t inside, uint32_t outside, ac_error_t **err)
{
	int pfd[2], hold[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	if (pipe2(hold, O_CLOEXEC) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	}
	/* A throw-away child holds the namespace just long enough to write its maps and
	 * take an fd; the fd keeps the namespace alive after the child is gone. */
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		close(hold[0]);
		close(hold[1]);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		/* Holds nothing of the caller's (its locks), and ends when the caller does:
		 * the read returns at the caller's kill or at its exit. */
		int keep_w = pfd[1], keep_r = hold[0];
		int lo = keep_w < keep_r ? keep_w : keep_r, hi = keep_w < keep_r ? keep_r : keep_w;
		if (lo > 3)
			close_range(3, (unsigned)lo - 1, 0);
		if (hi > lo + 1)
			close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
		close_range((unsigned)hi + 1, ~0u, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
		(void)!write(keep_w, &c, 1);
		(void)!read(keep_r, &c, 1);
		_exit(0);
	}
	close(pfd[1]);
	close(hold[0]);
	char c = 'n';
	int fd = -1;
	if (ac_read_all(pfd[0], &c, 1) != 1 || c != 'y') {
		ac_error_set(err, AC_ERR_BACKEND, 0, "cannot create a user namespace");
		goto out;
	}
	if (write_map(pid, "uid_map", inside, outside, err) < 0 ||
	    write_map(pid, "gid_map", inside, outside, err) < 0)
		goto out;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ac_error_set(err, AC_ERR_BACKEND, errno, "cannot open %s", path);
out:
	close(pfd[0]);
	close(hold[1]);
	kill(pid, SIGKILL);
	/* Reaped later by ac_reap_helpers(): waiting here for the exit costs ~1 ms. */
	if (nhelpers == AC_ARRAY_SIZE(helpers))
		waitpid(helpers[--nhelpers], NULL, 0);
	helpers[nhelpers++] = pid;
	return fd;
}

int ac_userns_enter(int userns_fd, ac_error_t **err)
{
	if (setns(userns_fd, CLONE_NEWUSER) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot enter the user namespace");
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot become root of the sandbox");
	return 0;
}

void ac_reap_helpers(void)
{
	unsigned keep = 0;
	for (unsigned i = 0; i < nhelpers; i++)
		if (waitpid(helpers[i], NULL, WNOHANG) == 0)
			helpers[keep++] = helpers[i];
	nhelpers = keep;
}

/* Run by the sandbox's init once it is the supervisor's uid (ac_caps_become_supervisor)
 * and before its seccomp filter: the namespace is created by a child of ours with that
 * euid, so it is owned by the supervisor's uid, which gives the supervisor's processes
 * every capability in it (enough to join it) and commands none over the supervisor. */
int ac_userns_nested(ac_error_t **err)
{
	int pfd[2], hold[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	if (pipe2(hold, O_CLOEXEC) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		close(hold[1]);
		/* Dumpable, so that its parent (same uid) may open its ns and map files. */
		char c = unshare(CLONE_NEWUSER) == 0 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0
			     ? 'y'
			     : 'n';
		(void)!write(pfd[1], &c, 1);
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	close(pfd[1]);
	close(hold[0]);
	int fd = -1;
	char c = 'n', path[64], line[64];
	if (pid < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
		goto out;
	}
	if (ac_read_all(pfd[0], &c, 1) != 1 || c != 'y') {
		ac_error_set(err, AC_ERR_BACKEND, 0, "cannot create the commands' user namespace");
		goto out;
	}
	/* Every id of the sandbox but the supervisor's own. */
	snprintf(line, sizeof(line), "0 0 %u\n", AC_SUPERVISOR_UID);
	static const char *maps[] = {"uid_map", "gid_map"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(maps); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, maps[i]);
		if (ac_write_string_at(AT_FDCWD, path, line, err) < 0)
			goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ac_error_set(err, AC_ERR_BACKEND, errno, "cannot open %s", path);
out:
	close(pfd[0]);
	close(hold[1]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return fd;
}
