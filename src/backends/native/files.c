/* The native backend's file operations (ops.files): each runs in a child that holds a
 * descriptor of the sandbox's root (ac_native_in_root) and resolves every path inside it
 * (openat2 RESOLVE_IN_ROOT); results travel back through a memfd the parent made. The
 * checks every backend shares, the sandbox's lock and the bookkeeping are
 * src/core/files.c's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/json.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "base/walk.h"
#include "backends/native/native.h"

#define MAX_DEPTH 256
/* Deadline of progress of a file operation (it is killed when it moved no byte for that
 * long) unless AGENTCELL_FILES_TIMEOUT (seconds) says otherwise. */
#define TIMEOUT_DEFAULT_S 60
#define TIMEOUT_MAX_S	  86400

static int timeout_ms(void)
{
	const char *v = getenv("AGENTCELL_FILES_TIMEOUT");
	uint64_t s;
	if (!v || ac_parse_u64(v, 0, TIMEOUT_MAX_S, &s) < 0)
		s = TIMEOUT_DEFAULT_S;
	return (int)s * 1000; /* 0: no deadline */
}

static int open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .mode = (flags & O_CREAT) ? mode : 0,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* Splits a sandbox path into its parent directory (opened inside the root) and its last
 * component. */
static int open_parent(int rootfd, const char *path, char *last, size_t lastlen, ac_error_t **err)
{
	char buf[4096];
	if (!path || path[0] != '/' || strlen(path) >= sizeof(buf))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not an absolute path in the sandbox",
				    path ? path : "");
	snprintf(buf, sizeof(buf), "%s", path);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	char *slash = strrchr(buf, '/');
	const char *base = slash + 1;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' does not name a file", path);
	snprintf(last, lastlen, "%s", base);
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	int fd = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return ac_error_set(
		    err, errno == ENOENT || errno == ENOTDIR ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
		    errno, "no directory '%s' in the sandbox", buf);
	return fd;
}

/* mkdir -p below the root, one component at a time (a symlink on the way is refused). */
static int mkdir_in_root(int rootfd, const char *path, uid_t uid, ac_error_t **err)
{
	char buf[4096];
	if (!path || path[0] != '/' || strlen(path) >= sizeof(buf))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not an absolute path in the sandbox",
				    path ? path : "");
	snprintf(buf, sizeof(buf), "%s", path);
	int dfd = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY, 0);
	if (dfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open the sandbox's root");
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			close(dfd);
			return ac_error_set(err, AC_ERR_INVALID, 0, "'..' is not allowed in '%s'",
					    path);
		}
		if (mkdirat(dfd, c, 0755) == 0)
			(void)!fchownat(dfd, c, uid, uid, AT_SYMLINK_NOFOLLOW);
		else if (errno != EEXIST) {
			close(dfd);
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot create directory '%s' in '%s'", c, path);
		}
		int next = openat(dfd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (next < 0)
			return ac_error_set(err, AC_ERR_INVALID, errno,
					    "'%s' in '%s' is not a directory", c, path);
		dfd = next;
	}
	return dfd;
}

/* Files of the kernel's pseudo file systems (/proc, /sys, cgroupfs, ...) as a sandbox's root
 * reaches them. They are not the sandbox's files: read as host root, /proc/1/environ shows
 * the environment of whoever started the sandbox; written, /proc/sys/kernel/core_pattern
 * reconfigures the host. A sandbox can plant a symlink that leads there from any path, so
 * every descriptor the file operations read or write through is checked. */
static bool pseudo_fs(int fd)
{
	static const unsigned long magic[] = {PROC_SUPER_MAGIC,
					      SYSFS_MAGIC,
					      DEVPTS_SUPER_MAGIC,
					      CGROUP_SUPER_MAGIC,
					      CGROUP2_SUPER_MAGIC,
					      SECURITYFS_MAGIC,
					      DEBUGFS_MAGIC,
					      TRACEFS_MAGIC,
					      BPF_FS_MAGIC,
					      SELINUX_MAGIC,
					      SMACK_MAGIC,
					      EFIVARFS_MAGIC,
					      PSTOREFS_MAGIC,
					      NSFS_MAGIC,
					      BINFMTFS_MAGIC,
					      0x62656570 /* configfs */,
					      0x65735543 /* fusectl */,
					      0x19800202 /* mqueue */};
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return true;
	for (size_t i = 0; i < AC_ARRAY_SIZE(magic); i++)
		if ((unsigned long)sf.f_type == magic[i])
			return true;
	return false;
}

static int refuse_pseudo_fs(int fd, const char *path, ac_error_t **err)
{
	if (!pseudo_fs(fd))
		return 0;
	return ac_error_set(err, AC_ERR_PERMISSION, 0,
			    "'%s' leads into a kernel file system (/proc, /sys, ...), not the "
			    "sandbox's files",
			    path);
}

/* "a FIFO", "a socket", ...: what a file that is not regular is, for a refusal. */
static const char *type_name(mode_t mode)
{
	return S_ISFIFO(mode)	? "a FIFO"
	       : S_ISSOCK(mode) ? "a socket"
	       : S_ISCHR(mode)	? "a character device"
	       : S_ISBLK(mode)	? "a block device"
	       : S_ISLNK(mode)	? "a symbolic link"
	       : S_ISDIR(mode)	? "a directory"
				: "not a regular file";
}

static int refuse_type(mode_t mode, const char *shown, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_INVALID, 0,
			    "'%s' is %s: file operations take only regular files and "
			    "directories",
			    shown, type_name(mode));
}

/* lstat of name below dirfd; in_root: name is a sandbox path resolved inside the root
 * dirfd (never fstatat there: an absolute name would be a host path). */
static int lstat_below(int dirfd, const char *name, bool in_root, struct stat *st)
{
	if (!in_root)
		return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
	int fd = open_in_root(dirfd, name, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return -1;
	int rc = fstat(fd, st);
	close(fd);
	return rc;
}

/* Opens a regular file of a sandbox (flags: O_RDONLY, or O_WRONLY|O_CREAT|O_TRUNC with
 * mode) and refuses anything else, naming it `shown`. A FIFO opened for reading waits for
 * a writer for ever (for writing, for a reader), a socket or a device does whatever its
 * other end wants, and /dev/tty in a sandbox's /dev is the terminal of whoever opens it:
 * the caller's. So the type is looked at first without opening (O_PATH), and then the
 * open itself can neither block (O_NONBLOCK), follow a link (O_NOFOLLOW) nor take a
 * terminal (O_NOCTTY), and its descriptor is checked with fstat before any byte moves:
 * a sandbox that swaps the regular file for a FIFO between the look and the open gets a
 * refusal, not a hang. O_NONBLOCK is cleared once the file is known to be regular. */
static int open_regular(int dirfd, const char *name, bool in_root, int flags, mode_t mode,
			const char *shown, ac_error_t **err)
{
	struct stat st;
	if (lstat_below(dirfd, name, in_root, &st) == 0 && !S_ISREG(st.st_mode))
		return refuse_type(st.st_mode, shown, err);
	int all = flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = in_root ? open_in_root(dirfd, name, all, mode) : openat(dirfd, name, all, mode);
	if (fd < 0) {
		int e = errno;
		if (lstat_below(dirfd, name, in_root, &st) == 0 && !S_ISREG(st.st_mode))
			return refuse_type(st.st_mode, shown, err); /* swapped meanwhile */
		return ac_error_set(err,
				    e == ENOENT || e == ENOTDIR		      ? AC_ERR_NOT_FOUND
				    : e == ELOOP || e == EISDIR || e == ENXIO ? AC_ERR_INVALID
									      : AC_ERR_INTERNAL,
				    e, "cannot open '%s'", shown);
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "fstat '%s'", shown);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return refuse_type(st.st_mode, shown, err);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "fcntl '%s'", shown);
	}
	return fd;
}

static int copy_data(int in, int out)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (ac_write_all(out, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

/* One copy (copy_entry): where each directory of the walk goes, and how. */
typedef struct copy {
	int dst[MAX_DEPTH + 2]; /* dst[d]: the copy of the directory at depth d - 1's parent */
	const char *dname;	/* the root entry's name at its destination */
	long long chown_to;
	const char *top;
} copy_t;

static int copy_file(const ac_walk_entry_t *e, copy_t *c, int dfd, const char *dname,
		     ac_error_t **err)
{
	int depth = e->depth;
	mode_t mode = e->st->st_mode & 0777;
	ac_error_t *oe = NULL;
	_cleanup_close_ int in = open_regular(e->dirfd, e->name, false, O_RDONLY, 0, c->top, &oe);
	if (in < 0) {
		bool skip = depth && oe && oe->kind == AC_ERR_INVALID; /* became a FIFO... */
		if (!skip && err && !*err)
			*err = steal_ptr(oe);
		ac_error_free(oe);
		return skip ? 0 : -1;
	}
	if (pseudo_fs(in))
		return depth ? 0 : refuse_pseudo_fs(in, c->top, err);
	/* A host destination is the caller's choice, a FIFO or a device included (as cp
	 * does); the deadline bounds a wait on it. Only a regular file gets the mode. */
	_cleanup_close_ int out =
	    c->chown_to >= 0
		? open_regular(dfd, dname, false, O_WRONLY | O_CREAT | O_TRUNC, 0600,
			       depth ? dname : c->top, err)
		: openat(dfd, dname,
			 O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (out < 0)
		return c->chown_to >= 0
			   ? -1
			   : ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create '%s'", dname);
	if (copy_data(in, out) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot copy '%s'", e->name);
	struct stat ost;
	if (fstat(out, &ost) < 0 || !S_ISREG(ost.st_mode))
		return 0;
	if (c->chown_to >= 0)
		(void)!fchown(out, (uid_t)c->chown_to, (gid_t)c->chown_to);
	(void)!fchmod(out, mode);
	return 0;
}

static int copy_pre(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	copy_t *c = arg;
	const struct stat *st = e->st;
	int dfd = c->dst[e->depth];
	const char *dname = e->depth ? e->name : c->dname;
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t l = readlinkat(e->dirfd, e->name, target, sizeof(target) - 1);
		if (l < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "readlink '%s'", e->name);
		target[l] = 0;
		unlinkat(dfd, dname, 0);
		if (symlinkat(target, dfd, dname) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot create symlink '%s'", dname);
		if (c->chown_to >= 0)
			(void)!fchownat(dfd, dname, (uid_t)c->chown_to, (gid_t)c->chown_to,
					AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (S_ISDIR(st->st_mode)) {
		if (pseudo_fs(e->fd))
			/* A tree copy skips kernel file systems; naming one is an error. */
			return e->depth ? AC_WALK_SKIP : refuse_pseudo_fs(-1, e->name, err);
		if (mkdirat(dfd, dname, 0700) < 0 && errno != EEXIST)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot create directory '%s'", dname);
		int d2 = openat(dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d2 < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot open directory '%s'", dname);
		c->dst[e->depth + 1] = d2;
		return 0;
	}
	if (!S_ISREG(st->st_mode)) /* FIFOs, sockets, devices: see open_regular */
		return e->depth ? 0 : refuse_type(st->st_mode, c->top, err);
	return copy_file(e, c, dfd, dname, err);
}

/* A directory's owner and mode once its contents are in (a read-only mode must not stop
 * its own copy). setuid/setgid bits are dropped. */
static int copy_post(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	copy_t *c = arg;
	int d2 = c->dst[e->depth + 1];
	c->dst[e->depth + 1] = -1;
	if (c->chown_to >= 0)
		(void)!fchown(d2, (uid_t)c->chown_to, (gid_t)c->chown_to);
	(void)!fchmod(d2, e->st->st_mode & 0777);
	close(d2);
	return 0;
}

/* Copies the entry `name` of directory sfd into directory dfd as `dname`, a tree through
 * the walker (src/base/walk.c: *at() calls only, links never followed). `chown_to` >= 0
 * gives every created entry that owner (into a sandbox: dfd is the sandbox's); else sfd is
 * the sandbox's. setuid/setgid bits are dropped. `top` names the entry at depth 0 in
 * errors. FIFOs, sockets and devices are refused at depth 0 and skipped below. */
static int copy_entry(int sfd, const char *name, int dfd, const char *dname, long long chown_to,
		      const char *top, ac_error_t **err)
{
	copy_t *c = malloc(sizeof(*c));
	if (!c)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	*c = (copy_t){.dname = dname, .chown_to = chown_to, .top = top};
	c->dst[0] = dfd;
	for (size_t i = 1; i < AC_ARRAY_SIZE(c->dst); i++)
		c->dst[i] = -1;
	ac_walk_t w = {.pre = copy_pre, .post = copy_post, .arg = c, .max_depth = MAX_DEPTH};
	int rc = ac_walk_at(sfd, name, &w, err);
	/* A failed walk leaves the copies of the directories it was in open. */
	for (size_t i = 1; i < AC_ARRAY_SIZE(c->dst); i++)
		if (c->dst[i] >= 0)
			close(c->dst[i]);
	free(c);
	return rc;
}

/* --- operations (run in the child) --- */

typedef struct op {
	const char *path; /* in the sandbox */
	const char *host; /* on the host */
	const void *data;
	size_t len;
	mode_t mode;
	bool recursive;
	int outfd; /* memfd for results */
	ac_files_op_t kind;
} op_t;

static const char *basename_of(const char *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s", p);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	const char *b = strrchr(buf, '/');
	return b ? b + 1 : buf;
}

static int do_copy_in(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	char hb[4096], last[256];
	const char *hbase = basename_of(o->host, hb, sizeof(hb));
	char hostdir[4096];
	snprintf(hostdir, sizeof(hostdir), "%s", o->host);
	_cleanup_close_ int hdir = open(dirname(hostdir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hdir < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno, "no such file on the host: '%s'",
				    o->host);
	struct stat st;
	if (fstatat(hdir, hbase, &st, 0) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno, "no such file on the host: '%s'",
				    o->host);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return refuse_type(st.st_mode, o->host, err);
	/* Into an existing directory: as its child, like cp. */
	_cleanup_close_ int target = open_in_root(rootfd, o->path, O_PATH | O_DIRECTORY, 0);
	if (target >= 0)
		return refuse_pseudo_fs(target, o->path, err) < 0
			   ? -1
			   : copy_entry(hdir, hbase, target, hbase, uid, o->path, err);
	_cleanup_close_ int parent = open_parent(rootfd, o->path, last, sizeof(last), err);
	if (parent < 0 || refuse_pseudo_fs(parent, o->path, err) < 0)
		return -1;
	return copy_entry(hdir, hbase, parent, last, uid, o->path, err);
}

static int do_copy_out(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	char last[256], hb[4096];
	_cleanup_close_ int parent = open_parent(rootfd, o->path, last, sizeof(last), err);
	if (parent < 0 || refuse_pseudo_fs(parent, o->path, err) < 0)
		return -1;
	struct stat st;
	if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "no such file in the sandbox: '%s'", o->path);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return refuse_type(st.st_mode, o->path, err);
	struct stat hst;
	if (stat(o->host, &hst) == 0 && S_ISDIR(hst.st_mode)) {
		_cleanup_close_ int hd = open(o->host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (hd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", o->host);
		return copy_entry(parent, last, hd, last, -1, o->path, err);
	}
	char hostdir[4096];
	snprintf(hostdir, sizeof(hostdir), "%s", o->host);
	const char *hbase = basename_of(o->host, hb, sizeof(hb));
	_cleanup_close_ int hd = open(dirname(hostdir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hd < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "no such directory on the host for '%s'", o->host);
	(void)uid;
	return copy_entry(parent, last, hd, hbase, -1, o->path, err);
}

static int do_read(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	if (!o->path || o->path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not an absolute path in the sandbox",
				    o->path ? o->path : "");
	_cleanup_close_ int fd = open_regular(rootfd, o->path, true, O_RDONLY, 0, o->path, err);
	struct stat st;
	if (fd < 0 || refuse_pseudo_fs(fd, o->path, err) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fstat '%s'", o->path);
	if ((uint64_t)st.st_size > AC_FILES_READ_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is larger than %u bytes", o->path,
				    AC_FILES_READ_MAX);
	(void)uid;
	return copy_data(fd, o->outfd) < 0
		   ? ac_error_set(err, AC_ERR_INTERNAL, errno, "read '%s'", o->path)
		   : 0;
}

/* Whether parent/last is the root of a mount: /usr, /tmp, /proc, a bind-mounted file. They
 * are the sandbox's set-up, not its files. Seen from our mount namespace (through
 * /proc/<init>/root) the kernel would not answer EBUSY as it does inside: an unlink or a
 * rename there detaches the mount silently, and the sandbox loses it for good. */
static bool is_mount_root(int parent, const char *last)
{
	struct statx sx;
	if (statx(parent, last, AT_SYMLINK_NOFOLLOW, 0, &sx) < 0)
		return false;
	return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static int refuse_mount_root(int parent, const char *last, const char *path, ac_error_t **err)
{
	if (!is_mount_root(parent, last))
		return 0;
	return ac_error_set(err, AC_ERR_STATE, 0,
			    "'%s' is a mount point of the sandbox: it cannot be deleted or "
			    "replaced",
			    path);
}

static int do_write(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	char last[256], dir[4096];
	snprintf(dir, sizeof(dir), "%s", o->path);
	if (o->path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not an absolute path in the sandbox", o->path);
	_cleanup_close_ int made = mkdir_in_root(rootfd, dirname(dir), uid, err);
	if (made < 0)
		return -1;
	_cleanup_close_ int parent = open_parent(rootfd, o->path, last, sizeof(last), err);
	if (parent < 0)
		return -1;
	if (refuse_pseudo_fs(parent, o->path, err) < 0 ||
	    refuse_mount_root(parent, last, o->path, err) < 0)
		return -1;
	_cleanup_close_ int fd =
	    open_regular(parent, last, false, O_WRONLY | O_CREAT | O_TRUNC, 0600, o->path, err);
	if (fd < 0)
		return -1;
	if (ac_write_all(fd, o->data, o->len) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "write '%s'", o->path);
	(void)!fchown(fd, uid, uid);
	(void)!fchmod(fd, o->mode & 0777);
	return 0;
}

static int do_mkdir(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	int fd = mkdir_in_root(rootfd, o->path, uid, err);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int do_delete(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	char last[256];
	(void)uid;
	_cleanup_close_ int parent = open_parent(rootfd, o->path, last, sizeof(last), err);
	if (parent < 0)
		return -1;
	struct stat st;
	if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "no such file in the sandbox: '%s'", o->path);
	if (refuse_pseudo_fs(parent, o->path, err) < 0 ||
	    refuse_mount_root(parent, last, o->path, err) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		if (!o->recursive && unlinkat(parent, last, AT_REMOVEDIR) < 0)
			return ac_error_set(err,
					    errno == ENOTEMPTY ? AC_ERR_STATE : AC_ERR_INTERNAL,
					    errno, "cannot delete directory '%s'", o->path);
		/* ac_rm_rf_at never follows a symlink and never leaves the file system. */
		if (o->recursive && ac_rm_rf_at(parent, last, err) < 0)
			return -1;
		return 0;
	}
	if (unlinkat(parent, last, 0) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot delete '%s'", o->path);
	return 0;
}

static int do_list(int rootfd, uid_t uid, void *arg, ac_error_t **err)
{
	op_t *o = arg;
	(void)uid;
	int fd = open_in_root(rootfd, o->path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return ac_error_set(
		    err, errno == ENOENT || errno == ENOTDIR ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
		    errno, "no directory '%s' in the sandbox", o->path);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fdopendir");
	}
	json_t *arr = json_array();
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		const char *type = S_ISREG(st.st_mode)	 ? "file"
				   : S_ISDIR(st.st_mode) ? "dir"
				   : S_ISLNK(st.st_mode) ? "symlink"
							 : "other";
		json_t *name = json_string(de->d_name);
		if (!name)
			continue; /* not UTF-8: not representable in the listing */
		json_array_append_new(arr, json_pack("{so ss sI si}", "name", name, "type", type,
						     "size", (json_int_t)st.st_size, "mode",
						     (int)(st.st_mode & 07777)));
	}
	closedir(d);
	char *s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	int rc = s && ac_write_all(o->outfd, s, strlen(s)) == 0
		     ? 0
		     : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "list");
	free(s);
	return rc;
}

static const ac_rt_root_fn op_fns[] = {
    [AC_FILES_COPY_IN] = do_copy_in, [AC_FILES_COPY_OUT] = do_copy_out, [AC_FILES_READ] = do_read,
    [AC_FILES_WRITE] = do_write,     [AC_FILES_DELETE] = do_delete,	[AC_FILES_MKDIR] = do_mkdir,
    [AC_FILES_LIST] = do_list,
};

int ac_native_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		    ac_error_t **err)
{
	if ((size_t)req->op >= AC_ARRAY_SIZE(op_fns) || !op_fns[req->op])
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "unknown file operation %d",
				    (int)req->op);
	op_t o = {.path = req->path,
		  .host = req->host,
		  .data = req->data,
		  .len = req->len,
		  .mode = req->mode,
		  .recursive = req->recursive,
		  .kind = req->op,
		  .outfd = -1};
	if (req->result) {
		o.outfd = memfd_create("agentcell-files", MFD_CLOEXEC);
		if (o.outfd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	}
	ac_rt_root_ctl_t ctl = {.cancel_fd = ctx->cancel_fd, .timeout_ms = timeout_ms()};
	int rc = ac_native_in_root(ctx, st, &ctl, op_fns[req->op], &o, err);
	if (rc == 0 && req->result) {
		off_t size = lseek(o.outfd, 0, SEEK_END);
		char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
		if (!buf || pread(o.outfd, buf, (size_t)size, 0) != size) {
			free(buf);
			rc = ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read the result");
		} else {
			buf[size] = 0;
			*req->result = buf;
			*req->result_len = (size_t)size;
		}
	}
	if (o.outfd >= 0)
		close(o.outfd);
	return rc;
}
