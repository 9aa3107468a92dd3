/* The proxy's confinement once it is set up (net.h, ac_net_confine).
 *
 * The proxy parses what a hostile sandbox sends, so after its start (orders read, secrets,
 * CA and verify store in memory, listeners bound, audit log open, pid file written) it
 * keeps nothing it does not need:
 *   - it becomes uid/gid 65534 (nobody/nogroup) with no supplementary groups, which
 *     empties its capability sets: it can no longer open a root-only file, signal a
 *     root process or enter a namespace;
 *   - PR_SET_DUMPABLE 0 (set again after the uid change, which resets it): no other
 *     process of uid 65534 can ptrace it or read its memory and the secrets in it;
 *   - no_new_privs and a seccomp filter that refuses (EPERM) what it never does:
 *     execve, ptrace and process_vm_*, namespaces (setns, unshare), mounts, modules,
 *     kexec, bpf, perf, keyrings, userfaultfd, io_uring (which would bypass the filter),
 *     open_by_handle_at.
 * Published ports need sockets made inside the sandbox's namespace, which takes
 * CAP_SYS_ADMIN: a small helper forked before the drop keeps it and does only that. It
 * reads one byte per socket from the proxy over a SOCK_SEQPACKET pair and answers with
 * the socket (SCM_RIGHTS) or an errno byte; it dies with the proxy (PR_SET_PDEATHSIG) and
 * takes nothing else from it. Not running as root (a docker/podman sandbox of a user): the
 * uid stays, the rest applies. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/io.h"
#include "base/proctitle.h"
#include "base/util.h"
#include "net/net.h"

#define NOBODY 65534

/* The socket factory: one stream socket made in the sandbox's namespace per request. */
__attribute__((noreturn)) static void factory(int chan, int sandbox_ns, int own_ns, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "agentcell-netns");
	ac_proctitle_set("agentcell-netns");
	prctl(PR_SET_DUMPABLE, 0);
	for (;;) {
		unsigned char req;
		ssize_t r = recv(chan, &req, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			_exit(0);
		int fd = -1, e = 0;
		if (setns(sandbox_ns, CLONE_NEWNET) < 0) {
			e = errno;
		} else {
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			e = errno;
			if (setns(own_ns, CLONE_NEWNET) < 0)
				abort(); /* never go on inside the sandbox's namespace */
		}
		if (ac_fd_send(chan, fd >= 0 ? 0 : (unsigned char)(e ? e : EIO), fd) < 0)
			_exit(0);
		if (fd >= 0)
			close(fd);
	}
}

static int factory_fd = -1;
static pthread_mutex_t factory_lock = PTHREAD_MUTEX_INITIALIZER;

int ac_net_sandbox_socket(int sandbox_ns, int own_ns)
{
	if (factory_fd < 0) { /* not confined (yet): make it here */
		if (setns(sandbox_ns, CLONE_NEWNET) < 0)
			return -1;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int e = errno;
		if (setns(own_ns, CLONE_NEWNET) < 0)
			abort();
		errno = e;
		return fd;
	}
	unsigned char err = 0;
	int fd = -1;
	pthread_mutex_lock(&factory_lock);
	int r = ac_fd_send(factory_fd, 's', -1) == 0 ? ac_fd_recv(factory_fd, &err, &fd, 0) : -1;
	pthread_mutex_unlock(&factory_lock);
	if (r != 1 || err || fd < 0) {
		if (fd >= 0)
			close(fd);
		errno = r == 1 && err ? err : EIO;
		return -1;
	}
	return fd;
}

static int filter(ac_error_t **err)
{
	static const char *const denied[] = {"execve",
					     "execveat",
					     "ptrace",
					     "process_vm_readv",
					     "process_vm_writev",
					     "setns",
					     "unshare",
					     "mount",
					     "umount2",
					     "pivot_root",
					     "chroot",
					     "open_tree",
					     "move_mount",
					     "fsopen",
					     "fsmount",
					     "fsconfig",
					     "mount_setattr",
					     "init_module",
					     "finit_module",
					     "delete_module",
					     "kexec_load",
					     "kexec_file_load",
					     "bpf",
					     "perf_event_open",
					     "keyctl",
					     "add_key",
					     "request_key",
					     "userfaultfd",
					     "io_uring_setup",
					     "io_uring_enter",
					     "io_uring_register",
					     "open_by_handle_at",
					     "name_to_handle_at",
					     "personality",
					     "acct",
					     "swapon",
					     "swapoff",
					     "reboot",
					     "settimeofday",
					     "clock_settime"};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = ctx ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < AC_ARRAY_SIZE(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr != __NR_SCMP_ERROR)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, -rc,
				    "cannot load the proxy's seccomp filter");
	return 0;
}

int ac_net_confine(int sandbox_ns, int own_ns, bool publish, ac_error_t **err)
{
	if (publish) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "socketpair");
		pid_t parent = getpid(), pid = fork();
		if (pid < 0) {
			close(sv[0]);
			close(sv[1]);
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
		}
		if (pid == 0) {
			/* Nothing of the proxy's but the two namespaces and its end of the pair. */
			int keep[] = {sv[1], sandbox_ns, own_ns};
			for (int fd = 0; fd < 1024; fd++) {
				bool k = false;
				for (size_t i = 0; i < AC_ARRAY_SIZE(keep); i++)
					k = k || keep[i] == fd;
				if (!k && fd > 2)
					close(fd);
			}
			close_range(1024, ~0U, 0);
			factory(sv[1], sandbox_ns, own_ns, parent);
		}
		close(sv[1]);
		factory_fd = sv[0];
	}
	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
			       setresuid(NOBODY, NOBODY, NOBODY) < 0))
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot drop the proxy's privileges");
	if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "prctl");
	return filter(err);
}
