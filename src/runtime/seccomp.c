/* The sandbox's seccomp filter: default allow, with the calls that administer the kernel,
 * create namespaces, or widen the attack surface (bpf, io_uring, userfaultfd, perf, keys,
 * ptrace, raw sockets, ...) refused with EPERM. Compiled once per process with libseccomp
 * into a BPF program; loading it in a child is a single prctl. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

#include "agentcell/util.h"
#include "runtime/runtime.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* [0]: the default program, [1]: with build_no_setid's rules. */
static struct sock_filter *progs[2];
static unsigned short prog_lens[2];
/* Which program the next launch from this thread installs. Per thread: in `serve` two
 * requests may prepare different programs at once, and a forked child keeps the TLS of the
 * thread that forked it. */
static __thread int active = -1;
/* Guards progs[] and prog_lens[] (filled once per variant, then read-only). */
static pthread_mutex_t progs_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *denied[] = {"mount",
			       "umount",
			       "umount2",
			       "pivot_root",
			       "swapon",
			       "swapoff",
			       "reboot",
			       "kexec_load",
			       "kexec_file_load",
			       "init_module",
			       "finit_module",
			       "delete_module",
			       "bpf",
			       "perf_event_open",
			       "keyctl",
			       "add_key",
			       "request_key",
			       "userfaultfd",
			       "ptrace",
			       "process_vm_readv",
			       "process_vm_writev",
			       "open_by_handle_at",
			       "name_to_handle_at",
			       "setns",
			       "acct",
			       "quotactl",
			       "quotactl_fd",
			       "lookup_dcookie",
			       "syslog",
			       "uselib",
			       "fsopen",
			       "fsconfig",
			       "fsmount",
			       "fspick",
			       "move_mount",
			       "open_tree",
			       "mount_setattr",
			       "io_uring_setup",
			       "io_uring_enter",
			       "io_uring_register",
			       "vm86",
			       "vm86old",
			       "nfsservctl",
			       "settimeofday",
			       "stime",
			       "clock_settime",
			       "clock_adjtime",
			       "adjtimex",
			       "iopl",
			       "ioperm",
			       "kcmp",
			       "fanotify_init",
			       "pidfd_getfd",
			       "sethostname",
			       "setdomainname",
			       "unshare"};

static const unsigned long ns_flags[] = {CLONE_NEWNS,	  CLONE_NEWUTS, CLONE_NEWIPC,
					 CLONE_NEWUSER,	  CLONE_NEWPID, CLONE_NEWNET,
					 CLONE_NEWCGROUP, CLONE_NEWTIME};

static struct scmp_arg_cmp arg_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t val)
{
	return (struct scmp_arg_cmp){
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = val};
}

static struct scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t val)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = val, .datum_b = 0};
}

/* With the caller's directory mounted at /workspace (idmapped: sandbox root writes as the
 * directory's host owner), a setuid or setgid file made there would be a setuid-root file
 * on the host. So such sandboxes may not set those bits on any file: chmod family,
 * creation with those bits (open/openat/creat/mknod/O_TMPFILE), and openat2/fchmodat2,
 * whose arguments seccomp cannot see in full, answer ENOSYS (libc falls back). */
static int build_no_setid(scmp_filter_ctx ctx)
{
	const int eperm = SCMP_ACT_ERRNO(EPERM);
	static const struct {
		const char *name;
		unsigned mode_arg;
		int flags_arg; /* -1: none */
	} calls[] = {{"chmod", 1, -1}, {"fchmod", 1, -1},  {"fchmodat", 2, -1}, {"creat", 1, -1},
		     {"mknod", 1, -1}, {"mknodat", 2, -1}, {"open", 2, 1},	{"openat", 3, 2}};
	static const scmp_datum_t bits[] = {S_ISUID, S_ISGID};
	static const scmp_datum_t creating[] = {O_CREAT, 020000000 /* __O_TMPFILE */};
	int rc;
	for (size_t i = 0; i < AC_ARRAY_SIZE(calls); i++) {
		int nr = seccomp_syscall_resolve_name(calls[i].name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		for (size_t b = 0; b < AC_ARRAY_SIZE(bits); b++) {
			if (calls[i].flags_arg < 0) {
				rc = seccomp_rule_add(
				    ctx, eperm, nr, 1,
				    arg_masked(calls[i].mode_arg, bits[b], bits[b]));
				if (rc < 0)
					return rc;
				continue;
			}
			for (size_t c = 0; c < AC_ARRAY_SIZE(creating); c++) {
				rc = seccomp_rule_add(
				    ctx, eperm, nr, 2,
				    arg_masked((unsigned)calls[i].flags_arg, creating[c],
					       creating[c]),
				    arg_masked(calls[i].mode_arg, bits[b], bits[b]));
				if (rc < 0)
					return rc;
			}
		}
	}
	static const char *opaque[] = {"openat2", "fchmodat2"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(opaque); i++) {
		int nr = seccomp_syscall_resolve_name(opaque[i]);
		if (nr == __NR_SCMP_ERROR && strcmp(opaque[i], "fchmodat2") == 0)
			nr =
			    452; /* newer than this libseccomp: the same number on every ABI here */
		if (nr == __NR_SCMP_ERROR)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	return 0;
}

static int build(scmp_filter_ctx ctx)
{
	const int eperm = SCMP_ACT_ERRNO(EPERM);
	int rc = 0;
	for (size_t i = 0; i < AC_ARRAY_SIZE(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (strcmp(denied[i], "unshare") == 0)
			continue; /* handled below: plain unshare(CLONE_FILES) etc. stays allowed */
		rc = seccomp_rule_add(ctx, eperm, nr, 0);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	/* Namespace creation, through unshare or clone. */
	for (size_t i = 0; i < AC_ARRAY_SIZE(ns_flags); i++) {
		rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(unshare), 1,
				      arg_masked(0, ns_flags[i], ns_flags[i]));
		if (rc < 0)
			return rc;
		rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
				      arg_masked(0, ns_flags[i], ns_flags[i]));
		if (rc < 0)
			return rc;
	}
	/* clone3 passes its flags in memory, out of seccomp's sight: ENOSYS makes libc fall
	 * back to clone, which is checked above. */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc < 0)
		return rc;
	static const int families[] = {AF_PACKET, AF_VSOCK, AF_KEY};
	for (size_t i = 0; i < AC_ARRAY_SIZE(families); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
				      arg_eq(0, (scmp_datum_t)families[i]));
		if (rc < 0)
			return rc;
	}
	/* Typing into the caller's terminal (the sandbox may hold the caller's tty). */
	static const unsigned long ioctls[] = {TIOCSTI, TIOCLINUX};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ioctls); i++) {
		rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
				      arg_masked(1, 0xffffffffu, (scmp_datum_t)ioctls[i]));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Compiling with libseccomp costs about a millisecond, so the program is cached in
 * $AGENTCELL_HOME/base under a name derived from the rule tables: a new agentcell with
 * other rules gets a new file. */
#define STR2(x)		   #x
#define STR(x)		   STR2(x)
#define SCMP_VER_MAJOR_STR STR(SCMP_VER_MAJOR) "." STR(SCMP_VER_MINOR) ".v2"

static uint32_t rules_hash(int variant)
{
	uint32_t h = 2166136261u ^ (uint32_t)variant;
#define MIX(p, n)                                                                                  \
	for (size_t _i = 0; _i < (n); _i++)                                                        \
		h = (h ^ ((const unsigned char *)(p))[_i]) * 16777619u;
	for (size_t i = 0; i < AC_ARRAY_SIZE(denied); i++)
		MIX(denied[i], strlen(denied[i]) + 1);
	MIX(ns_flags, sizeof(ns_flags));
	MIX("no_setid.v1", 12);
	MIX(SCMP_VER_MAJOR_STR, sizeof(SCMP_VER_MAJOR_STR));
#undef MIX
	return h;
}

static int load_cached(const char *path, int v)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 ||
	    st.st_size % sizeof(struct sock_filter) ||
	    st.st_size / sizeof(struct sock_filter) > 4096 || st.st_uid != geteuid())
		return -1;
	struct sock_filter *p = malloc((size_t)st.st_size);
	if (!p || pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		free(p);
		return -1;
	}
	prog_lens[v] = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	/* Published last: readers outside the lock test progs[v] only. */
	__atomic_store_n(&progs[v], p, __ATOMIC_RELEASE);
	return 0;
}

static int compile(int v, ac_error_t **err);

int ac_seccomp_prepare_cached(const char *home, bool no_setid, ac_error_t **err)
{
	int v = no_setid ? 1 : 0;
	active = v;
	if (__atomic_load_n(&progs[v], __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&progs_lock);
	int rc = 0;
	if (progs[v])
		goto out;
	char path[4200];
	snprintf(path, sizeof(path), "%s/base/seccomp-%08x.bpf", home, rules_hash(v));
	if (load_cached(path, v) == 0)
		goto out;
	rc = compile(v, err);
	if (rc < 0)
		goto out;
	/* Best effort: a failure to cache only costs the next caller a compile. */
	ac_write_file_atomic_at(AT_FDCWD, path, progs[v], prog_lens[v] * sizeof(struct sock_filter),
				0600, NULL);
out:
	pthread_mutex_unlock(&progs_lock);
	return rc;
}

int ac_seccomp_prepare(ac_error_t **err)
{
	active = 0;
	pthread_mutex_lock(&progs_lock);
	int rc = progs[0] ? 0 : compile(0, err);
	pthread_mutex_unlock(&progs_lock);
	return rc;
}

static int compile(int v, ac_error_t **err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "seccomp_init failed");
	int rc = 0;
#if defined(__x86_64__)
	/* 32-bit and x32 entry points get the same rules instead of a blanket kill. */
	if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && rc != -EEXIST)
		goto out;
	if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && rc != -EEXIST)
		goto out;
#endif
	if ((rc = build(ctx)) < 0 || (v == 1 && (rc = build_no_setid(ctx)) < 0))
		goto out;
	int fd = memfd_create("seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
		close(fd);
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size / sizeof(struct sock_filter) > 4096) {
		close(fd);
		rc = -EINVAL;
		goto out;
	}
	struct sock_filter *p = malloc((size_t)size);
	if (!p || pread(fd, p, (size_t)size, 0) != size) {
		free(p);
		close(fd);
		rc = -EIO;
		goto out;
	}
	prog_lens[v] = (unsigned short)(size / sizeof(struct sock_filter));
	__atomic_store_n(&progs[v], p, __ATOMIC_RELEASE);
	close(fd);
out:
	seccomp_release(ctx);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, -rc, "cannot build the seccomp filter");
	return 0;
}

int ac_seccomp_load(void)
{
	if (active < 0 || !progs[active]) {
		errno = EINVAL;
		return -1;
	}
	struct sock_fprog p = {.len = prog_lens[active], .filter = progs[active]};
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p, 0, 0);
}
