/* agentcell doctor: what the native backend needs, checked for real on this host. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "agentcell/store.h"
#include "agentcell/util.h"
#include "backends/docker/docker.h"
#include "cli/cli.h"
#include "runtime/runtime.h"

static int failures;

static void report(bool ok, const char *what, const char *detail, const char *fix)
{
	printf("%-5s %-28s %s\n", ok ? "ok" : "FAIL", what, detail ? detail : "");
	if (!ok) {
		failures++;
		if (fix)
			printf("      fix: %s\n", fix);
	}
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
	bool ok = false;
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
	waitpid(pid, &st, 0);
	ac_reap_helpers();
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok)
		snprintf(detail, len, "mount_setattr(MOUNT_ATTR_IDMAP) failed");
	else
		snprintf(detail, len, "mount_setattr(MOUNT_ATTR_IDMAP) works");
	close(ufd);
	rmdir(dir);
	return ok;
}

/* The Docker/Podman backend: never a failure of doctor (native is the default), but
 * containers of agentcell's that no state file knows are shown, never deleted. */
static void docker_report(void)
{
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return;
	json_t *p = ac_docker_probe(m);
	const char *err = json_string_value(json_object_get(p, "error"));
	const char *engine = json_string_value(json_object_get(p, "engine"));
	char detail[600];
	if (engine && !err)
		snprintf(detail, sizeof(detail), "%s at %s (from %s)",
			 json_string_value(json_object_get(p, "version")), engine,
			 json_string_value(json_object_get(p, "source")));
	else
		snprintf(detail, sizeof(detail), "%s%s%s", engine ? engine : "", engine ? ": " : "",
			 err ? err : "?");
	printf("%-5s %-28s %s\n", engine && !err ? "ok" : "info", "docker/podman engine", detail);
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(p, "orphans"), i, o)
	{
		const char *name = json_string_value(json_object_get(o, "name"));
		printf("WARN  %-28s %s (%s, sandbox '%s'%s) has no state file here; not deleted. "
		       "Remove it with: docker rm -f %s\n",
		       "unknown agentcell container", name ? name : "?",
		       json_string_value(json_object_get(o, "state"))
			   ? json_string_value(json_object_get(o, "state"))
			   : "?",
		       json_string_value(json_object_get(o, "sandbox"))
			   ? json_string_value(json_object_get(o, "sandbox"))
			   : "?",
		       json_is_true(json_object_get(o, "run")) ? ", an interrupted run" : "",
		       name ? name : "CONTAINER");
	}
	json_decref(p);
	ac_manager_free(m);
}

/* $AGENTCELL_HOME: writable, records lost, and what killed processes left (gc removes
 * it). Warnings, never failures: the backend still works. */
static void home_report(void)
{
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return;
	const char *home = ac_store_home(ac_manager_store(m));
	char probe[1300];
	snprintf(probe, sizeof(probe), "%s/.doctor-probe.%ld", home, (long)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int en = fd < 0 ? errno : 0;
	if (fd >= 0) {
		/* A byte, not only an inode: a full file system takes the create. */
		if (write(fd, "x", 1) != 1 || fsync(fd) < 0)
			en = errno ? errno : ENOSPC;
		close(fd);
		unlink(probe);
	}
	struct statvfs vfs;
	unsigned long long free_mb =
	    statvfs(home, &vfs) == 0 ? (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20 : 0;
	if (en)
		printf("WARN  %-28s %s: %s: detached command output and audit records are lost\n",
		       "state directory", home, strerror(en));
	else
		printf("ok    %-28s %s is writable, %llu MB free\n", "state directory", home,
		       free_mb);
	json_t *ae = ac_audit_errors(m);
	if (ae)
		printf("WARN  %-28s %lld records could not be written since %s (last at %s: %s)\n",
		       "audit log", (long long)json_integer_value(json_object_get(ae, "count")),
		       json_string_value(json_object_get(ae, "since")),
		       json_string_value(json_object_get(ae, "last")),
		       json_string_value(json_object_get(ae, "error")));
	json_decref(ae);
	json_t *found = NULL;
	if (ac_manager_sweep(m, false, &found, NULL) >= 0) {
		size_t i;
		json_t *f;
		json_array_foreach(found, i, f)
		    printf("WARN  %-28s %s: %s (agentcell gc removes it)\n",
			   json_string_value(json_object_get(f, "kind")),
			   json_string_value(json_object_get(f, "path")),
			   json_string_value(json_object_get(f, "why")));
		if (json_array_size(found) == 0)
			printf("ok    %-28s none\n", "leftovers of killed runs");
	}
	json_decref(found);
	ac_manager_free(m);
}

int cmd_doctor(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cli_help("doctor");
		return cli_usage("doctor", "unexpected argument '%s'", argv[i]);
	}
	char detail[256];
	bool root = geteuid() == 0;
	report(
	    root, "running as root", root ? "euid 0" : "not root",
	    "the native backend needs root for now (rootless mode is a later release): use sudo");

	uint64_t max_userns = 0;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, "/proc/sys/user/max_user_namespaces", 64, &buf, &len, NULL) ==
	    0)
		max_userns = strtoull(buf, NULL, 10);
	snprintf(detail, sizeof(detail), "max_user_namespaces=%llu",
		 (unsigned long long)max_userns);
	report(max_userns > 0, "user namespaces", detail,
	       "sysctl -w user.max_user_namespaces=15000");

	report(fs_supported("overlay"), "overlayfs",
	       fs_supported("overlay") ? "in /proc/filesystems" : "missing", "modprobe overlay");
	report(fs_supported("tmpfs") && fs_supported("proc") && fs_supported("devpts"),
	       "tmpfs, proc, devpts", "", NULL);

	if (root) {
		bool ok = idmap_works(detail, sizeof(detail));
		report(ok, "idmapped mounts", detail,
		       "needs Linux >= 5.19 with idmapped mount support in the file system holding "
		       "/usr and $AGENTCELL_HOME (ext4, xfs, btrfs, tmpfs ...)");
	} else {
		report(false, "idmapped mounts", "not checked (needs root)",
		       "run 'agentcell doctor' as root");
	}

	bool sec = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
	ac_error_t *e = NULL;
	bool filter = ac_seccomp_prepare(&e) == 0;
	ac_error_free(e);
	report(sec && filter, "seccomp filters",
	       sec && filter ? "libseccomp builds the filter" : "unavailable",
	       "a kernel with CONFIG_SECCOMP_FILTER");

	const char *cgroot;
	int v = ac_cgroup_mode(&cgroot);
	if (v == 2) {
		_cleanup_free_ char *ctl = NULL;
		char p[300];
		snprintf(p, sizeof(p), "%s/cgroup.controllers", cgroot);
		ac_read_file_at(AT_FDCWD, p, 4096, &ctl, &len, NULL);
		bool ok = ctl && strstr(ctl, "memory") && strstr(ctl, "cpu") && strstr(ctl, "pids");
		snprintf(detail, sizeof(detail), "v2 at %s: %s", cgroot,
			 ctl ? strtok(ctl, "\n") : "?");
		report(ok, "cgroup controllers", detail,
		       "enable memory, cpu and pids in cgroup.subtree_control");
	} else if (v == 1) {
		const char *ctrls[] = {"memory", "cpu", "pids"};
		bool ok = true;
		for (int i = 0; i < 3; i++) {
			char p[300];
			snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroot, ctrls[i]);
			ok = ok && access(p, F_OK) == 0;
		}
		snprintf(detail, sizeof(detail), "v1 memory, cpu, pids under %s", cgroot);
		report(ok, "cgroup controllers", detail,
		       "mount the v1 memory, cpu and pids controllers");
	} else {
		report(false, "cgroup controllers", "no cgroup v2 or v1 hierarchy",
		       "mount cgroup2 on /sys/fs/cgroup");
	}
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	report(pfd >= 0, "pidfd_open", pfd >= 0 ? "available" : strerror(errno), "Linux >= 5.3");
	if (pfd >= 0)
		close(pfd);
	printf("%s\n", failures ? "some checks failed: the native backend will not work here"
				: "the native backend can run here");
	home_report();
	docker_report();
	return failures ? 1 : 0;
}
