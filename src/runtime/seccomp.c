/* The sandbox's seccomp filter: default allow, with the calls that administer the kernel,
 * create namespaces, or widen the attack surface (bpf, io_uring, userfaultfd, perf, keys,
 * ptrace, raw sockets, ...) refused with EPERM. Compiled once per process with libseccomp
 * into a BPF program; loading it in a child is a single prctl. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/seccomp.h"

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

static const char *denied[] = {
    "mount", "umount", "umount2", "pivot_root", "swapon", "swapoff", "reboot", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key", "userfaultfd", "ptrace", "process_vm_readv",
    "process_vm_writev", "open_by_handle_at", "name_to_handle_at", "setns", "acct", "quotactl",
    "quotactl_fd", "lookup_dcookie", "syslog", "uselib", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "vm86", "vm86old", "nfsservctl", "settimeofday", "stime", "clock_settime",
    "clock_adjtime", "adjtimex", "iopl", "ioperm", "kcmp", "fanotify_init", "pidfd_getfd",
    "sethostname", "setdomainname",
    /* Beyond Docker's default profile's refusals, or matching them: */
    "modify_ldt", /* 16-bit segments: old kernel bugs */
    "mbind",	  /* NUMA policy: CAP_SYS_NICE in Docker */
    "set_mempolicy", "set_mempolicy_home_node", "move_pages", "migrate_pages",
    "memfd_secret", /* memory the kernel itself cannot read */
    "sysfs",	    /* obsolete file system type queries */
    "ustat", "unshare"};

/* Calls newer than some libseccomp builds know by name: the same number on every ABI
 * filtered here (the numbers above 423 were unified across architectures). */
static const struct {
	const char *name;
	int nr;
} late[] = {{"fchmodat2", 452}, {"memfd_secret", 447}, {"set_mempolicy_home_node", 450}};

static int resolve(const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	for (size_t i = 0; nr == __NR_SCMP_ERROR && i < AC_ARRAY_SIZE(late); i++)
		if (strcmp(late[i].name, name) == 0)
			nr = late[i].nr;
	return nr;
}

static const unsigned long ns_flags[] = {CLONE_NEWNS,	  CLONE_NEWUTS, CLONE_NEWIPC,
					 CLONE_NEWUSER,	  CLONE_NEWPID, CLONE_NEWNET,
					 CLONE_NEWCGROUP, CLONE_NEWTIME};

static struct scmp_arg_cmp arg_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t val)
{
	return (struct scmp_arg_cmp){
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = val};
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
		int nr = resolve(opaque[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	return 0;
}

/* Socket families: only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK. Every other family
 * (AF_PACKET, AF_VSOCK, AF_KEY, AF_ALG, TIPC, RDS, ...) is refused before the kernel can
 * even load its module. The kernel reads the family as an int, so a value with any of the
 * upper 32 bits set would pass an exact 64-bit comparison yet name a family: everything
 * above 63 is refused as a whole, and 0..63 by masked groups (AF_MAX is 46 in 6.x).
 * socketcall, i386's multiplexer, passes its arguments in memory out of seccomp's sight:
 * ENOSYS, and libc uses the direct calls. */
static int build_socket_families(scmp_filter_ctx ctx)
{
	static const struct {
		scmp_datum_t mask, val; /* refused when (family & mask) == val */
	} groups[] = {
	    {~0ull, 0},	 {~0ull, 3},  {~3ull, 4},  {~1ull, 8},	{~0ull, 11},  {~3ull, 12},
	    {~0ull, 17}, {~1ull, 18}, {~3ull, 20}, {~7ull, 24}, {~31ull, 32},
	};
	static const char *calls[] = {"socket", "socketpair"};
	int rc;
	for (size_t c = 0; c < AC_ARRAY_SIZE(calls); c++) {
		int nr = resolve(calls[c]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		rc =
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
				     (struct scmp_arg_cmp){
					 .arg = 0, .op = SCMP_CMP_GT, .datum_a = 63, .datum_b = 0});
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < AC_ARRAY_SIZE(groups); i++) {
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					      arg_masked(0, groups[i].mask, groups[i].val));
			if (rc < 0)
				return rc;
		}
	}
	int nr = resolve("socketcall");
	if (nr != __NR_SCMP_ERROR &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0 && rc != -EEXIST)
		return rc;
	return 0;
}

/* personality: Docker's values only -- PER_LINUX (0), PER_LINUX32 (8), each with
 * UNAME26 (0x20000), and the query 0xffffffff. READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE,
 * MMAP_PAGE_ZERO and the rest are refused. libseccomp takes one comparison per argument
 * and rule, so "not one of five" is spelled with masks over the low 32 bits (the kernel
 * reads an unsigned int): with M = every bit but 3 and 17, x & M is 0 for the four
 * personas and M for the query; any other x has two neighbouring bits of M that differ
 * (one rule per ordered pair), or all of M with bit 3 or 17 clear. Values with upper bits
 * set are refused whole. */
static int build_personality(scmp_filter_ctx ctx)
{
	const scmp_datum_t keep = (1u << 3) | (1u << 17), m = 0xffffffffu & ~keep;
	int nr = resolve("personality"), rc;
	if (nr == __NR_SCMP_ERROR)
		return 0;
	rc = seccomp_rule_add(
	    ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
	    (struct scmp_arg_cmp){
		.arg = 0, .op = SCMP_CMP_GT, .datum_a = 0xffffffffu, .datum_b = 0});
	if (rc < 0)
		return rc;
	for (unsigned b = 0; b < 32; b++) {
		if (!(m & (1ull << b)))
			continue;
		unsigned n = b + 1;
		while (n < 32 && !(m & (1ull << n)))
			n++;
		if (n == 32)
			break;
		const scmp_datum_t pair = (1ull << b) | (1ull << n);
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					   arg_masked(0, pair, 1ull << b))) < 0 ||
		    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					   arg_masked(0, pair, 1ull << n))) < 0)
			return rc;
	}
	for (unsigned b = 3; b <= 17; b += 14)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					   arg_masked(0, m | (1ull << b), m))) < 0)
			return rc;
	return 0;
}

static int build(scmp_filter_ctx ctx)
{
	const int eperm = SCMP_ACT_ERRNO(EPERM);
	int rc = 0;
	for (size_t i = 0; i < AC_ARRAY_SIZE(denied); i++) {
		int nr = resolve(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (strcmp(denied[i], "unshare") == 0)
			continue; /* handled below: plain unshare(CLONE_FILES) etc. stays allowed */
		if (strcmp(denied[i], "setns") == 0) {
			/* Only joining a user namespace passes: the shims' children join the
			 * commands' namespace (userns.c, ac_userns_nested). It needs
			 * CAP_SYS_ADMIN over the target, which only the supervisor's uid has
			 * over that namespace; commands stack a filter that refuses setns
			 * outright (ac_seccomp_load_commands). */
			rc = seccomp_rule_add(ctx, eperm, nr, 1,
					      (struct scmp_arg_cmp){.arg = 1,
								    .op = SCMP_CMP_NE,
								    .datum_a = CLONE_NEWUSER});
			if (rc < 0)
				return rc;
			continue;
		}
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
	if ((rc = build_socket_families(ctx)) < 0 || (rc = build_personality(ctx)) < 0)
		return rc;
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
	static const char revision[] = "no_setid.v1;families.v2;personality.v1;setns_user.v1";
	MIX(revision, sizeof(revision));
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

/* The commands' extra filter: setns refused on every ABI. Stacked filters all run and the
 * strictest answer wins, so this small program (a few instructions per system call) is all
 * a command pays for it. Written by hand: no compile on the start or run path. */
#define DENY_NR(nr)                                                                                \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                           \
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
static const struct sock_filter commands_prog[] = {
#if defined(__x86_64__)
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    DENY_NR(__NR_setns),
    DENY_NR(0x40000000 | __NR_setns), /* x32 */
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    DENY_NR(346), /* i386 setns */
#else
    /* One ABI: the number alone. */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    DENY_NR(__NR_setns),
#endif
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};
#undef DENY_NR

int ac_seccomp_load_commands(void)
{
	struct sock_fprog p = {.len = AC_ARRAY_SIZE(commands_prog),
			       .filter = (struct sock_filter *)commands_prog};
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p, 0, 0);
}
