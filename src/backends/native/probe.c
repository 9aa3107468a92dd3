/* ops.probe of the native backend: what it needs from the host, checked for real (doctor
 * prints the checks; "available" is whether they all pass). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "backends/native/native.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/slots.h"
#include "runtime/userns.h"

static void check(json_t *checks, bool ok, const char *name, const char *detail, const char *fix)
{
	json_t *c = json_pack("{ss sb ss}", "name", name, "ok", ok, "detail", detail ? detail : "");
	if (c && !ok && fix)
		json_object_set_new(c, "fix", json_string(fix));
	json_array_append_new(checks, c);
}

static bool fs_supported(const char *fs)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, "/proc/filesystems", 1 << 16, &buf, &len, NULL) < 0)
		return false;
	char needle[64];
	snprintf(needle, sizeof(needle), "\t%s\n", fs);
	return strstr(buf, needle) != NULL;
}

/* A real idmapped mount of a temporary directory, in a throw-away mount namespace. */
static bool idmap_works(char *detail, size_t len)
{
	char dir[] = "/tmp/agentcell-doctor-XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(detail, len, "mkdtemp: %s", strerror(errno));
		return false;
	}
	ac_error_t *e = NULL;
	int ufd = ac_userns_fd(ac_slot_uid_base(AC_SLOTS_TOTAL - 1), &e);
	if (ufd < 0) {
		snprintf(detail, len, "%s", e ? e->msg : "user namespace failed");
		ac_error_free(e);
		rmdir(dir);
		return false;
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(2);
		int fd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ufd};
		if (fd < 0 || mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			_exit(3);
		_exit(0);
	}
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, 0);
	ac_reap_helpers();
	bool ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	snprintf(detail, len,
		 ok ? "mount_setattr(MOUNT_ATTR_IDMAP) works"
		    : "mount_setattr(MOUNT_ATTR_IDMAP) failed");
	close(ufd);
	rmdir(dir);
	return ok;
}

static void cgroup_check(json_t *checks)
{
	char detail[256];
	const char *cgroot;
	int v = ac_cgroup_mode(&cgroot);
	if (v == 2) {
		_cleanup_free_ char *ctl = NULL;
		size_t len;
		char p[300];
		snprintf(p, sizeof(p), "%s/cgroup.controllers", cgroot);
		ac_read_file_at(AT_FDCWD, p, 4096, &ctl, &len, NULL);
		bool ok = ctl && strstr(ctl, "memory") && strstr(ctl, "cpu") && strstr(ctl, "pids");
		snprintf(detail, sizeof(detail), "v2 at %s: %s", cgroot,
			 ctl ? strtok(ctl, "\n") : "?");
		check(checks, ok, "cgroup controllers", detail,
		      "enable memory, cpu and pids in cgroup.subtree_control");
	} else if (v == 1) {
		static const char *const ctrls[] = {"memory", "cpu", "pids"};
		bool ok = true;
		for (size_t i = 0; i < AC_ARRAY_SIZE(ctrls); i++) {
			char p[300];
			snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroot, ctrls[i]);
			ok = ok && access(p, F_OK) == 0;
		}
		snprintf(detail, sizeof(detail), "v1 memory, cpu, pids under %s", cgroot);
		check(checks, ok, "cgroup controllers", detail,
		      "mount the v1 memory, cpu and pids controllers");
	} else {
		check(checks, false, "cgroup controllers", "no cgroup v2 or v1 hierarchy",
		      "mount cgroup2 on /sys/fs/cgroup");
	}
}

json_t *ac_native_probe(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	json_t *checks = json_array();
	char detail[256];
	bool root = geteuid() == 0;
	check(checks, root, "running as root", root ? "euid 0" : "not root",
	      "the native backend needs root for now (rootless mode is a later release): use "
	      "sudo");

	uint64_t max_userns = 0;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, "/proc/sys/user/max_user_namespaces", 64, &buf, &len, NULL) ==
	    0)
		max_userns = strtoull(buf, NULL, 10);
	snprintf(detail, sizeof(detail), "max_user_namespaces=%llu",
		 (unsigned long long)max_userns);
	check(checks, max_userns > 0, "user namespaces", detail,
	      "sysctl -w user.max_user_namespaces=15000");

	bool overlay = fs_supported("overlay");
	check(checks, overlay, "overlayfs", overlay ? "in /proc/filesystems" : "missing",
	      "modprobe overlay");
	check(checks, fs_supported("tmpfs") && fs_supported("proc") && fs_supported("devpts"),
	      "tmpfs, proc, devpts", "", NULL);

	if (root) {
		bool ok = idmap_works(detail, sizeof(detail));
		check(checks, ok, "idmapped mounts", detail,
		      "needs Linux >= 5.19 with idmapped mount support in the file system holding "
		      "/usr and $AGENTCELL_HOME (ext4, xfs, btrfs, tmpfs ...)");
	} else {
		check(checks, false, "idmapped mounts", "not checked (needs root)",
		      "run 'agentcell doctor' as root");
	}

	bool sec = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
	ac_error_t *e = NULL;
	bool filter = ac_seccomp_prepare(&e) == 0;
	ac_error_free(e);
	check(checks, sec && filter, "seccomp filters",
	      sec && filter ? "libseccomp builds the filter" : "unavailable",
	      "a kernel with CONFIG_SECCOMP_FILTER");

	cgroup_check(checks);
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	check(checks, pfd >= 0, "pidfd_open", pfd >= 0 ? "available" : strerror(errno),
	      "Linux >= 5.3");
	if (pfd >= 0)
		close(pfd);

	bool all = true;
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c) all = all && json_is_true(json_object_get(c, "ok"));
	json_t *out = json_pack("{sb so ss}", "available", all, "checks", checks, "summary",
				all ? "the native backend can run here"
				    : "some checks failed: the native backend will not work here");
	return out;
}
