/* The sandbox root file system.
 *
 * Builder side (host root, private mount namespace): the lower layers are idmapped
 * (host uid 0 appears as sandbox root) read-only clones of the host base skeleton and of
 * the host's /usr (or of an image directory), with an image's layers above them, or the
 * layers alone for an OCI image (layers.c); each gets a writable overlay whose upper
 * layer is the sandbox's own (on disk for persistent sandboxes, on an ext4 image of their
 * own when they have a disk limit, on a tmpfs for runs: disk.c). Named volumes are bound
 * last (layers.c).
 * Init side (inside the new namespaces): /proc with masks, /dev/pts, hostname, lo,
 * pivot_root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/disk.h"
#include "runtime/layers.h"
#include "runtime/rootfs.h"
#include "base/walk.h"

#define BASE_VERSION 2

/* Top-level host directories that are either symlinks into /usr (merged /usr) or real
 * directories that get an overlay of their own. */
static const char *host_top_dirs[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

/* Never copied into a sandbox, whatever their mode. */
static const char *etc_denied[] = {"shadow",
				   "shadow-",
				   "gshadow",
				   "gshadow-",
				   "sudoers",
				   "ssh_host_rsa_key",
				   "ssh_host_ecdsa_key",
				   "ssh_host_ed25519_key",
				   "ssh_host_dsa_key",
				   "opasswd",
				   "machine-id"};

static bool denied_name(const char *n)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(etc_denied); i++)
		if (strcmp(n, etc_denied[i]) == 0)
			return true;
	return false;
}

/* Deeper host directories than this fail the copy (/etc is a few levels deep). */
#define COPY_MAX_DEPTH 32

struct copy_ctx {
	int dst[COPY_MAX_DEPTH + 1]; /* dst[k]: the copy of the directory at depth k */
};

/* Copies what any host user could read (world-readable files, world-searchable
 * directories, symlinks), keeping modes and owners. Anything private to a host user or
 * group (shadow, ssh host keys, ssl/private, ...) stays out. */
static int copy_pre(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct copy_ctx *c = arg;
	const struct stat *st = e->st;
	const char *n = e->name;
	if (e->depth == 0)
		return 0; /* the root's copy is dst[0], made by the caller */
	if (denied_name(n))
		return AC_WALK_SKIP;
	int dfd = c->dst[e->depth - 1];
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t l = readlinkat(e->dirfd, n, target, sizeof(target) - 1);
		if (l < 0)
			return 0;
		target[l] = 0;
		if (symlinkat(target, dfd, n) == 0)
			(void)!fchownat(dfd, n, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	} else if (S_ISDIR(st->st_mode)) {
		if ((st->st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH))
			return AC_WALK_SKIP;
		if (mkdirat(dfd, n, 0700) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s", n);
		int d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d2 < 0)
			return AC_WALK_SKIP;
		c->dst[e->depth] = d2;
	} else if (S_ISREG(st->st_mode)) {
		if (!(st->st_mode & S_IROTH))
			return 0;
		_cleanup_close_ int in = openat(e->dirfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0)
			return 0;
		_cleanup_close_ int out =
		    openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "create %s", n);
		char buf[65536];
		ssize_t r;
		while ((r = read(in, buf, sizeof(buf))) > 0)
			if (ac_write_all(out, buf, (size_t)r) < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno, "write %s", n);
		(void)!fchown(out, st->st_uid, st->st_gid);
		fchmod(out, st->st_mode & 07777);
	}
	return 0;
}

/* After a directory's contents: its copy gets the owner and mode (not before: 0700 until
 * it is filled). */
static int copy_post(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct copy_ctx *c = arg;
	if (e->depth == 0)
		return 0;
	int d2 = c->dst[e->depth];
	c->dst[e->depth] = -1;
	(void)!fchown(d2, e->st->st_uid, e->st->st_gid);
	fchmod(d2, e->st->st_mode & 07777);
	close(d2);
	return 0;
}

static int copy_host_dir(const char *src, int dstroot, const char *dst, ac_error_t **err)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return 0;
	if (ac_mkdir_p_at(dstroot, dst, 0755, err) < 0)
		return -1;
	_cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int d = openat(dstroot, dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s < 0 || d < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", src);
	fchmod(d, st.st_mode & 07777);
	struct copy_ctx c;
	c.dst[0] = d;
	for (int i = 1; i <= COPY_MAX_DEPTH; i++)
		c.dst[i] = -1;
	ac_walk_t w = {.pre = copy_pre,
		       .post = copy_post,
		       .arg = &c,
		       .max_depth = COPY_MAX_DEPTH,
		       .lenient = true};
	int rc = ac_walk_at(s, "", &w, err);
	/* A failed walk leaves the copies of the directories it was in open. */
	for (int i = 1; i <= COPY_MAX_DEPTH; i++)
		if (c.dst[i] >= 0)
			close(c.dst[i]);
	return rc;
}

static int build_base(const char *dir, ac_error_t **err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", dir);
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {
	    {"dev", 0755},	 {"proc", 0555},    {"sys", 0555},	 {"tmp", 01777},
	    {"root", 0700},	 {"home", 0755},    {"workspace", 0755}, {"run", 0755},
	    {"mnt", 0755},	 {"opt", 0755},	    {"srv", 0755},	 {"media", 0755},
	    {"usr", 0755},	 {"var", 0755},	    {"var/tmp", 01777},	 {"var/log", 0755},
	    {"var/cache", 0755}, {"var/lib", 0755}, {"var/spool", 0755}, {"var/mail", 02775}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(dirs); i++) {
		if (mkdirat(fd, dirs[i].path, dirs[i].mode) < 0 && errno != EEXIST)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s", dirs[i].path);
		(void)!fchmodat(fd, dirs[i].path, dirs[i].mode, 0);
	}
	for (size_t i = 0; i < AC_ARRAY_SIZE(host_top_dirs); i++) {
		char hp[32], target[256];
		struct stat st;
		snprintf(hp, sizeof(hp), "/%s", host_top_dirs[i]);
		if (lstat(hp, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t l = readlink(hp, target, sizeof(target) - 1);
			if (l < 0)
				continue;
			target[l] = 0;
			if (symlinkat(target, fd, host_top_dirs[i]) < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno, "symlink %s", hp);
		} else if (S_ISDIR(st.st_mode)) {
			mkdirat(fd, host_top_dirs[i], 0755);
		}
	}
	if (copy_host_dir("/etc", fd, "etc", err) < 0 ||
	    ac_mkdir_p_at(fd, "var/lib/dpkg", 0755, err) < 0)
		return -1;
	/* A sandbox has its own identity. */
	unlinkat(fd, "etc/hostname", 0);
	return 0;
}

/* What the host base was copied from: /etc and every entry directly in it (name, size,
 * mtime; a directory's mtime changes when its entries do). About 150 stat calls. An
 * in-place edit deeper down (/etc/ssl/x) is not seen until something else changes. */
static uint64_t etc_fingerprint(void)
{
	uint64_t h = 1469598103934665603ull;
#define MIX(v)                                                                                     \
	do {                                                                                       \
		uint64_t _v = (uint64_t)(v);                                                       \
		for (int _i = 0; _i < 8; _i++, _v >>= 8)                                           \
			h = (h ^ (_v & 0xff)) * 1099511628211ull;                                  \
	} while (0)
	DIR *d = opendir("/etc");
	if (!d)
		return 0;
	struct stat st;
	if (fstat(dirfd(d), &st) == 0) {
		MIX(st.st_mtim.tv_sec);
		MIX(st.st_mtim.tv_nsec);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		/* readdir order is stable for an unchanged directory; names are mixed in too. */
		for (const char *c = de->d_name; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			MIX(st.st_mtim.tv_sec);
			MIX(st.st_mtim.tv_nsec);
			MIX(st.st_size);
		}
	}
#undef MIX
	closedir(d);
	return h;
}

/* Every sandbox that uses a base (running, starting, or having its files worked on)
 * holds a shared flock on <base>.lock through its init; a base nobody holds and that is
 * not the current one is deleted when a new one is built. */
static void gc_bases(const char *home, const char *current)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/base", home);
	DIR *d = opendir(dir);
	if (!d)
		return;
	const char *cur = strrchr(current, '/') + 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "host-", 5) || !strcmp(de->d_name, cur) ||
		    strchr(de->d_name, '.'))
			continue;
		char lock[300];
		snprintf(lock, sizeof(lock), "%s.lock", de->d_name);
		int fd = openat(dirfd(d), lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			ac_rm_rf_at(dirfd(d), de->d_name, NULL);
			unlinkat(dirfd(d), lock, 0);
		}
		close(fd);
	}
	closedir(d);
}

int ac_rootfs_host_base_pinned(const char *home, char **path_out, int *pin_fd, ac_error_t **err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		char *path = NULL;
		if (ac_rootfs_host_base(home, &path, err) < 0)
			return -1;
		char lock[4300];
		snprintf(lock, sizeof(lock), "%s.lock", path);
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			free(path);
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", lock);
		}
		while (flock(fd, LOCK_SH) < 0 && errno == EINTR)
			;
		/* Deleted between its lookup and our lock: look again. */
		if (access(path, F_OK) == 0) {
			*path_out = path;
			*pin_fd = fd;
			return 0;
		}
		close(fd);
		free(path);
	}
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "the host base keeps disappearing");
}

int ac_rootfs_host_base(const char *home, char **path_out, ac_error_t **err)
{
	char *path = NULL;
	/* Named after what it was copied from: a change to the host's /etc gives a new base;
	 * sandboxes keep their own upper layers either way. */
	if (asprintf(&path, "%s/base/host-%d-%016llx", home, BASE_VERSION,
		     (unsigned long long)etc_fingerprint()) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (access(path, F_OK) == 0) {
		*path_out = path;
		return 0;
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/base", home);
	if (ac_mkdir_p_at(AT_FDCWD, tmp, 0700, err) < 0)
		goto fail;
	snprintf(tmp, sizeof(tmp), "%s/base/.tmp-XXXXXX", home);
	if (!mkdtemp(tmp)) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdtemp %s", tmp);
		goto fail;
	}
	chmod(tmp, 0755);
	if (build_base(tmp, err) < 0) {
		ac_error_prefix(err, "cannot build the host base in %s", tmp);
		ac_rm_rf_at(AT_FDCWD, tmp, NULL);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		int e2 = errno;
		ac_rm_rf_at(AT_FDCWD, tmp, NULL);
		if (e2 != EEXIST && e2 != ENOTEMPTY) { /* else: a concurrent caller won */
			ac_error_set(err, AC_ERR_INTERNAL, e2, "rename %s", path);
			goto fail;
		}
	} else {
		gc_bases(home, path);
	}
	*path_out = path;
	return 0;
fail:
	free(path);
	return -1;
}

/* Clones src (recursively) as a detached mount, idmapped through userns_fd, and
 * attaches it at dst. */
static int idmap_mount(const char *src, const char *dst, int userns_fd, uint64_t attrs,
		       ac_error_t **err)
{
	_cleanup_close_ int fd = ac_idmap_clone(src, userns_fd, attrs, err);
	if (fd < 0)
		return -1;
	if (move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "move_mount %s", dst);
	return 0;
}

int ac_rootfs_lo_up(void)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* The sandbox's CA bundle over the image's own, read-only, when the image has one (an image
 * without a CA store gets nothing: its programs have no bundle to read anyway). The target
 * is resolved inside the new root (RESOLVE_IN_ROOT): an image's symlink cannot send the
 * bind anywhere else. */
static int bind_ca_bundle(const char *bundle, const char *root, ac_error_t **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = {.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	_cleanup_close_ int dst =
	    rootfd < 0 ? -1
		       : (int)syscall(SYS_openat2, rootfd, "etc/ssl/certs/ca-certificates.crt",
				      &how, sizeof(how));
	struct stat st;
	if (dst < 0 || fstat(dst, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	_cleanup_close_ int src = open_tree(AT_FDCWD, bundle, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (src < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "open_tree %s", bundle);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					   MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
	if (mount_setattr(src, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0 ||
	    move_mount(src, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot mount the CA bundle");
	return 0;
}

/* An overlay of lower (a lowerdir list: relative to cwd when cwd is given, which keeps a
 * list of many layers short) under the sandbox's own upper layer <layers>/upper/<layer>. */
static int mount_overlay(const char *lower, const char *layers, const char *layer, const char *dst,
			 uid_t uid, const char *cwd, ac_error_t **err)
{
	char upper[4200], work[4200], opts[16384];
	snprintf(upper, sizeof(upper), "%s/upper/%s", layers, layer);
	snprintf(work, sizeof(work), "%s/work/%s", layers, layer);
	if (ac_mkdir_p_at(AT_FDCWD, work, 0700, err) < 0 ||
	    ac_mkdir_p_at(AT_FDCWD, upper, 0755, err) < 0)
		return -1;
	struct stat st;
	if (stat(upper, &st) == 0 && st.st_uid != uid && chown(upper, uid, uid) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "chown %s", upper);
	int n =
	    snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	/* mount(2) copies one page of options: a longer list would be cut short. */
	if (n < 0 || (size_t)n >= sizeof(opts) || n >= sysconf(_SC_PAGESIZE))
		return ac_error_set(err, AC_ERR_INVALID, E2BIG,
				    "the overlay at %s has too many layers (%d bytes of options; "
				    "the kernel takes %ld)",
				    dst, n, sysconf(_SC_PAGESIZE) - 1);
	_cleanup_close_ int here = -1;
	if (cwd && ((here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 || chdir(cwd) < 0))
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "chdir %s", cwd);
	int rc = mount("overlay", dst, "overlay", MS_NOSUID | MS_NODEV, opts);
	int e = errno;
	if (here >= 0 && fchdir(here) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fchdir back");
	if (rc < 0)
		return ac_error_set(err, AC_ERR_BACKEND, e, "cannot mount the overlay at %s", dst);
	return 0;
}

/* Whether path (relative) is a directory inside root reached through no symlink. */
static bool real_dir_in(const char *root, const char *path)
{
	_cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
	_cleanup_close_ int fd =
	    rfd < 0 ? -1 : (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
	return fd >= 0;
}

/* An image's root needs real directories at the mount points: one that lacks them gets
 * them, and anything else there (a symlink would send the mount elsewhere; a file) is
 * replaced in the sandbox's own layer. */
static int mount_points(const char *root, uid_t uid, ac_error_t **err)
{
	static const char *mps[] = {"dev", "proc", "tmp", "workspace"};
	_cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", root);
	for (size_t i = 0; i < AC_ARRAY_SIZE(mps); i++) {
		struct stat st;
		mode_t mode = strcmp(mps[i], "tmp") ? 0755 : 01777;
		if (fstatat(rfd, mps[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				continue;
			if (unlinkat(rfd, mps[i], 0) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, errno,
						    "cannot replace the image's /%s", mps[i]);
		}
		if (mkdirat(rfd, mps[i], mode) < 0 || fchownat(rfd, mps[i], uid, uid, 0) < 0 ||
		    fchmodat(rfd, mps[i], mode, 0) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir /%s", mps[i]);
	}
	return 0;
}

static int make_dev(const char *root, uid_t uid, uint64_t shm_mb, ac_error_t **err)
{
	char p[4200], opts[128];
	snprintf(p, sizeof(p), "%s/dev", root);
	snprintf(opts, sizeof(opts), "mode=0755,size=64k,uid=%u,gid=%u", uid, uid);
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, opts) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount /dev");
	_cleanup_close_ int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "open /dev");
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},	  {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(nodes); i++) {
		if (mknodat(dfd, nodes[i].name, S_IFCHR | 0666,
			    makedev(nodes[i].maj, nodes[i].min)) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "mknod /dev/%s",
					    nodes[i].name);
		(void)!fchmodat(dfd, nodes[i].name, 0666, 0);
		(void)!fchownat(dfd, nodes[i].name, uid, uid, 0);
	}
	static const struct {
		const char *name, *target;
	} links[] = {{"fd", "/proc/self/fd"},
		     {"stdin", "/proc/self/fd/0"},
		     {"stdout", "/proc/self/fd/1"},
		     {"stderr", "/proc/self/fd/2"},
		     {"ptmx", "pts/ptmx"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(links); i++) {
		if (symlinkat(links[i].target, dfd, links[i].name) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "symlink /dev/%s",
					    links[i].name);
		(void)!fchownat(dfd, links[i].name, uid, uid, AT_SYMLINK_NOFOLLOW);
	}
	if (mkdirat(dfd, "pts", 0755) < 0 || mkdirat(dfd, "shm", 01777) < 0 ||
	    mkdirat(dfd, "mqueue", 01777) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mkdir /dev/pts");
	(void)!fchownat(dfd, "pts", uid, uid, 0);
	snprintf(p, sizeof(p), "%s/dev/shm", root);
	snprintf(opts, sizeof(opts), "mode=1777,size=%llum,uid=%u,gid=%u",
		 (unsigned long long)shm_mb, uid, uid);
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount /dev/shm");
	return 0;
}

int ac_rootfs_build(const ac_rt_spec_t *spec, int userns_fd, const char *staging, ac_error_t **err)
{
	char p[4200], q[4200], layers[4200], opts[256], lower[4200];
	uid_t uid = spec->uid_base;
	const bool host = strcmp(spec->image, "host") == 0;
	const bool oci = strcmp(spec->image, "oci") == 0;
	_cleanup_free_ char *base = NULL;

	if (ac_layers_check(spec, err) < 0)
		return -1;
	const size_t nlayers = ac_layers_count(spec);
	/* lowerdir lists of image layers (relative to lower/: L<i> names), or NULL. */
	_cleanup_free_ char *lowers = nlayers ? malloc(8192) : NULL;
	AC_ANALYZER_OWNED(lowers);
	if (nlayers && !lowers)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");

	/* The pin stays open for the life of this process and its children (the init). */
	int pin = -1;
	if (host && ac_rootfs_host_base_pinned(spec->home, &base, &pin, err) < 0)
		return -1;
	/* Nothing done here may reach the host's mount table. */
	if (ac_mkdir_p_at(AT_FDCWD, staging, 0700, err) < 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "make / private");
	if (mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=50%") < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount the staging tmpfs at %s",
				    staging);
	if (spec->data_dir && spec->disk_mb) {
		/* The sandbox's own ext4: its writes never fill the host's file system. */
		snprintf(layers, sizeof(layers), "%s/disk", staging);
		if (mkdir(layers, 0700) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s", layers);
		if (ac_disk_mount(spec->data_dir, layers, err) < 0)
			return -1;
		ac_disk_reserve_release(layers);
	} else if (spec->data_dir) {
		snprintf(layers, sizeof(layers), "%s", spec->data_dir);
	} else {
		snprintf(layers, sizeof(layers), "%s/layers", staging);
		if (spec->disk_mb && ac_disk_tmpfs(layers, spec->disk_mb, err) < 0)
			return -1;
	}
	snprintf(lower, sizeof(lower), "%s/lower", staging);
	if (ac_mkdir_p_at(AT_FDCWD, lower, 0700, err) < 0)
		return -1;
	/* Image layers: each idmapped read-only at lower/L<i>. */
	if (nlayers && ac_layers_mount(spec, userns_fd, lower, err) < 0)
		return -1;

	/* The root overlay: the layers (top first) above the host base or image directory. */
	snprintf(p, sizeof(p), "%s/lower/root", staging);
	snprintf(q, sizeof(q), "%s/root", staging);
	if ((!oci && mkdir(p, 0700) < 0) || mkdir(q, 0755) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir in %s", staging);
	if (!oci && idmap_mount(host ? base : spec->image, p, userns_fd,
				MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err) < 0)
		return -1;
	if (nlayers ? ac_layers_lowerdir(nlayers, lower, NULL, oci ? NULL : "root", lowers, 8192,
					 err) < 0 ||
			  mount_overlay(lowers, layers, "root", q, uid, lower, err) < 0
		    : mount_overlay(p, layers, "root", q, uid, NULL, err) < 0)
		return -1;
	const char *root = q;
	bool usr_overlay = host;

	if (host) {
		/* The host's /usr (and any top-level lib/bin directory that is not a symlink
		 * into it) as overlays of their own, so root inside can install into them. */
		/* The package database too (mounted, not copied: it is tens of MB), so that
		 * dpkg and apt inside know what the host's /usr holds. */
		struct {
			const char *path, *layer;
		} extra[2 + AC_ARRAY_SIZE(host_top_dirs)];
		size_t n = 0;
		extra[n].path = "usr", extra[n++].layer = "usr";
		for (size_t i = 0; i < AC_ARRAY_SIZE(host_top_dirs); i++) {
			struct stat st;
			snprintf(p, sizeof(p), "/%s", host_top_dirs[i]);
			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
				extra[n].path = extra[n].layer = host_top_dirs[i], n++;
		}
		struct stat dst_st;
		if (stat("/var/lib/dpkg", &dst_st) == 0 && S_ISDIR(dst_st.st_mode))
			extra[n].path = "var/lib/dpkg", extra[n++].layer = "dpkg";
		for (size_t i = 0; i < n; i++) {
			char host_path[64], dst[4300];
			snprintf(host_path, sizeof(host_path), "/%s", extra[i].path);
			snprintf(p, sizeof(p), "%s/lower/%s", staging, extra[i].layer);
			snprintf(dst, sizeof(dst), "%s/%s", root, extra[i].path);
			if (mkdir(p, 0700) < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s", p);
			if (idmap_mount(host_path, p, userns_fd,
					MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
					err) < 0)
				return -1;
			if (!nlayers) {
				if (mount_overlay(p, layers, extra[i].layer, dst, uid, NULL, err) <
				    0)
					return -1;
				continue;
			}
			/* A host template's layers: those where the path is a directory, above
			 * the host's own; nothing when a layer replaced the directory (a
			 * symlink there is never followed: the mount would land elsewhere). */
			if (ac_layers_lowerdir(nlayers, lower, extra[i].path, extra[i].layer,
					       lowers, 8192, err) < 0)
				return -1;
			if (!lowers[0] || !real_dir_in(root, extra[i].path)) {
				if (i == 0)
					usr_overlay = false;
				continue;
			}
			if (mount_overlay(lowers, layers, extra[i].layer, dst, uid, lower, err) < 0)
				return -1;
		}
	}
	if ((!host || nlayers) && mount_points(root, uid, err) < 0)
		return -1;

	if (spec->data_dir && spec->disk_mb)
		ac_disk_reserve_make(layers);
	snprintf(p, sizeof(p), "%s/tmp", root);
	snprintf(opts, sizeof(opts), "mode=1777,size=%llum,uid=%u,gid=%u",
		 (unsigned long long)spec->tmp_mb, uid, uid);
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount /tmp");
	if (make_dev(root, uid, spec->tmp_mb, err) < 0)
		return -1;
	if (spec->mount_cwd) {
		snprintf(p, sizeof(p), "%s/workspace", root);
		if (idmap_mount(spec->mount_cwd, p, userns_fd, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
				err) < 0)
			return -1;
	}
	if (spec->nvolumes && ac_volumes_mount(spec, userns_fd, root, uid, err) < 0)
		return -1;
	if (spec->ca_bundle && bind_ca_bundle(spec->ca_bundle, root, err) < 0)
		return -1;
	if (spec->read_only) {
		/* Only the overlays: /tmp, /dev/shm and /workspace stay writable. */
		if (mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
			  NULL) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "read-only root");
		if (usr_overlay) {
			snprintf(p, sizeof(p), "%s/usr", root);
			if (mount(NULL, p, NULL,
				  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
				  NULL) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, errno, "read-only /usr");
		}
	}
	return 0;
}

/* --- init side --- */

static const char *proc_masked[] = {"kcore",	     "keys",	  "timer_list",	 "sched_debug",
				    "latency_stats", "kmsg",	  "kpagecount",	 "kpageflags",
				    "kpagecgroup",   "config.gz", "vmallocinfo", "slabinfo",
				    "pagetypeinfo"};
static const char *proc_masked_dirs[] = {"acpi", "scsi", "asound", "driver", "tty/driver"};
static const char *proc_readonly[] = {"sys", "sysrq-trigger", "bus", "fs", "irq"};

int ac_rootfs_enter(const char *hostname, ac_error_t **err)
{
	char p[256];
	const char *null = "dev/null";
	const unsigned long pflags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mount("proc", "proc", "proc", pflags, NULL) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount /proc");
	for (size_t i = 0; i < AC_ARRAY_SIZE(proc_masked); i++) {
		snprintf(p, sizeof(p), "proc/%s", proc_masked[i]);
		if (access(p, F_OK) == 0 && mount(null, p, NULL, MS_BIND, NULL) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "mask /proc/%s",
					    proc_masked[i]);
	}
	for (size_t i = 0; i < AC_ARRAY_SIZE(proc_masked_dirs); i++) {
		snprintf(p, sizeof(p), "proc/%s", proc_masked_dirs[i]);
		if (access(p, F_OK) == 0 &&
		    mount("tmpfs", p, "tmpfs", MS_RDONLY | pflags, "size=0,mode=0555") < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "mask /proc/%s",
					    proc_masked_dirs[i]);
	}
	for (size_t i = 0; i < AC_ARRAY_SIZE(proc_readonly); i++) {
		snprintf(p, sizeof(p), "proc/%s", proc_readonly[i]);
		if (access(p, F_OK) < 0)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | pflags, NULL) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "read-only /proc/%s",
					    proc_readonly[i]);
	}
	if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
	    mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount /dev/pts");
	mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	      NULL); /* optional */

	if (sethostname(hostname, strlen(hostname)) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "sethostname");
	ac_rootfs_lo_up();
	/* The new root came from the builder's (more privileged) mount namespace, so it is
	 * locked, and pivot_root refuses locked mounts: stack an unlocked recursive bind of
	 * it on itself and step into that. */
	_cleanup_close_ int rfd =
	    open_tree(AT_FDCWD, ".", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (rfd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "clone the root");
	if (move_mount(rfd, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "attach the root");
	if (fchdir(rfd) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "enter the root");
	/* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only
	 * the sandbox's tree, with no path back to the host's. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "detach the old root");
	if (chdir("/") < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "chdir /");
	return 0;
}
