/* Robust file I/O helpers: whole-file read/write, atomic replace, mkdir -p, rm -rf. */
#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "base/walk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int ac_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t ac_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int ac_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
		    ac_error_t **err)
{
	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below anyway. */
	_cleanup_close_ int fd =
	    TEMP_FAILURE_RETRY(openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
	if (fd < 0)
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
				    errno, "cannot open '%s'", path);

	struct stat st;
	if (fstat(fd, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_INVALID, 0, "cannot read '%s': not a regular file",
				    path);
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2;
	if ((uint64_t)st.st_size > max)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is too large (%" PRIu64 " bytes, the limit is %zu)", path,
				    (uint64_t)st.st_size, max);

	/* st_size is only a hint (procfs/sysfs report 0, files may grow): read until EOF,
	 * growing the buffer, and stop one byte past the cap to detect oversized input. */
	size_t cap = 4096;
	if (st.st_size > 0 && (uint64_t)st.st_size < max)
		cap = (size_t)st.st_size + 1;
	if (cap > max + 1)
		cap = max + 1;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (buf == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot read '%s'", path);
	size_t used = 0;
	for (;;) {
		if (used == cap) {
			if (cap > max)
				break;
			size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
			char *nbuf = realloc(buf, ncap + 1);
			if (nbuf == NULL)
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
						    "cannot read '%s'", path);
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read '%s'", path);
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > max)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is too large (more than %zu bytes, the limit)", path,
				    max);
	buf[used] = '\0';
	if (len != NULL)
		*len = used;
	*out = steal_ptr(buf);
	return 0;
}

/* Splits path into a directory part (opened as an fd relative to dirfd) and the final
 * component. Trailing slashes are ignored; "", ".", ".." and "/" have no usable final
 * component and are refused. */
static int open_parent(int dirfd, const char *path, int *parent_fd, char **base, ac_error_t **err)
{
	_cleanup_free_ char *copy = strdup(path);
	AC_ANALYZER_OWNED(copy);
	if (copy == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "'%s'", path);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';

	char *slash = strrchr(copy, '/');
	const char *dir = ".";
	char *name = copy;
	if (slash != NULL) {
		*slash = '\0';
		name = slash + 1;
		dir = slash == copy ? "/" : copy;
	}
	if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid path '%s'", path);

	int fd = TEMP_FAILURE_RETRY(openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
				    errno, "cannot open directory of '%s'", path);
	char *b = strdup(name);
	if (b == NULL) {
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "'%s'", path);
	}
	*parent_fd = fd;
	*base = b;
	return 0;
}

static int fsync_retry(int fd)
{
	int r;
	do
		r = fsync(fd);
	while (r < 0 && errno == EINTR);
	return r;
}

int ac_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
			    ac_error_t **err)
{
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ char *base = NULL;
	if (open_parent(dirfd, path, &pfd, &base, err) < 0)
		return -1;

	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint64_t)ac_time_now_ms() ^ ((uint64_t)(uintptr_t)&rnd << 16);
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp.%ld.%016" PRIx64, base, (long)getpid(), rnd) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write '%s'", path);
	_cleanup_free_ char *tmpname = tmp;

	_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
	    openat(pfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot create temporary file for '%s'", path);

	const char *what;
	if (ac_write_all(fd, data, len) < 0) {
		what = "write";
		goto fail;
	}
	if (fchmod(fd, mode) < 0) {
		what = "chmod";
		goto fail;
	}
	if (fsync_retry(fd) < 0) {
		what = "fsync";
		goto fail;
	}
	if (close(steal_fd(fd)) < 0 && errno != EINTR) {
		what = "close";
		goto fail;
	}
	if (renameat(pfd, tmpname, pfd, base) < 0) {
		what = "rename";
		goto fail;
	}
	/* The rename is only durable once the directory entry itself is on disk. */
	if (fsync_retry(pfd) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot fsync directory of '%s'",
				    path);
	return 0;

fail:;
	int saved = errno;
	unlinkat(pfd, tmpname, 0);
	return ac_error_set(err, AC_ERR_INTERNAL, saved, "cannot write '%s' (%s)", path, what);
}

int ac_write_string_at(int dirfd, const char *path, const char *s, ac_error_t **err)
{
	_cleanup_close_ int fd =
	    TEMP_FAILURE_RETRY(openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY));
	if (fd < 0)
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
				    errno, "cannot open '%s'", path);
	if (ac_write_all(fd, s, strlen(s)) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write '%s' to '%s'", s,
				    path);
	if (close(steal_fd(fd)) < 0 && errno != EINTR)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write '%s' to '%s'", s,
				    path);
	return 0;
}

int ac_mkdir_p_at(int dirfd, const char *path, mode_t mode, ac_error_t **err)
{
	if (path == NULL || *path == '\0')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "cannot create a directory with an empty path");
	_cleanup_free_ char *copy = strdup(path);
	AC_ANALYZER_OWNED(copy);
	if (copy == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot create '%s'", path);

	/* Walk component by component with fds so each step is relative to the last one. */
	_cleanup_close_ int cur = -1;
	int base_fd = dirfd;
	char *p = copy;
	if (*p == '/') {
		cur = TEMP_FAILURE_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
		if (cur < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '/'");
		base_fd = cur;
		while (*p == '/')
			p++;
	}
	while (*p != '\0') {
		char *end = strchr(p, '/');
		if (end != NULL)
			*end = '\0';
		if (mkdirat(base_fd, p, mode) < 0 && errno != EEXIST)
			return ac_error_set(
			    err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL, errno,
			    "cannot create directory '%s' (at '%s')", path, p);
		int next = TEMP_FAILURE_RETRY(openat(base_fd, p, O_PATH | O_DIRECTORY | O_CLOEXEC));
		if (next < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot create directory '%s' (at '%s')", path, p);
		if (cur >= 0)
			close(cur);
		cur = next;
		base_fd = cur;
		if (end == NULL)
			break;
		p = end + 1;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* Identity of the mount a file lives on: st_dev catches separate filesystems, the mount id
 * (when the kernel reports it) also catches bind mounts of the same filesystem. */
struct mount_ident {
	dev_t dev;
	uint64_t mnt_id;
	bool has_mnt_id;
	mode_t mode;
	ino_t ino;
};

static int ident_at(int dirfd, const char *name, int flags, struct mount_ident *id)
{
	struct statx stx;
	if (statx(dirfd, name, flags | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_MNT_ID,
		  &stx) < 0)
		return -1;
	id->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	id->mnt_id = stx.stx_mnt_id;
	id->has_mnt_id = (stx.stx_mask & STATX_MNT_ID) != 0;
	id->mode = stx.stx_mode;
	id->ino = stx.stx_ino;
	return 0;
}

static bool same_mount(const struct mount_ident *a, const struct mount_ident *b)
{
	if (a->dev != b->dev)
		return false;
	if (a->has_mnt_id && b->has_mnt_id && a->mnt_id != b->mnt_id)
		return false;
	return true;
}

/* Each level holds one descriptor open: deeper trees than this are refused rather than
 * running out of descriptors halfway through. */
#define AC_RM_MAX_DEPTH 512

struct rm_ctx {
	struct mount_ident parent; /* of the directory holding the tree's root */
	const char *top;	   /* the path given, for messages */
};

/* Before a directory's contents: never cross into another mount (the walk itself checks
 * that what was opened is what was stat'ed). Anything else is unlinked right away. */
static int rm_pre(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct rm_ctx *c = arg;
	if (e->fd < 0) {
		if (unlinkat(e->dirfd, e->name, 0) < 0 && errno != ENOENT)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot remove '%s' under '%s'", e->path, c->top);
		return 0;
	}
	struct mount_ident id;
	if (ident_at(e->fd, "", AT_EMPTY_PATH, &id) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat '%s'", c->top);
	if (same_mount(&id, &c->parent))
		return 0;
	/* A directory that is itself a mount point (say, a still-mounted overlay) must not
	 * be emptied: its contents belong to another file system. */
	if (e->depth == 0)
		return ac_error_set(err, AC_ERR_STATE, EXDEV,
				    "refusing to remove '%s': it is a mount point", c->top);
	return ac_error_set(err, AC_ERR_INTERNAL, EXDEV,
			    "refusing to remove '%s' under '%s': another mount", e->path, c->top);
}

static int rm_post(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct rm_ctx *c = arg;
	if (unlinkat(e->dirfd, e->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove '%s'",
				    e->depth ? e->path : c->top);
	return 0;
}

int ac_rm_rf_at(int dirfd, const char *path, ac_error_t **err)
{
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ char *base = NULL;
	ac_error_t *perr = NULL;
	if (open_parent(dirfd, path, &pfd, &base, &perr) < 0) {
		if (perr != NULL && perr->kind == AC_ERR_NOT_FOUND) {
			ac_error_free(perr);
			return 0;
		}
		if (err != NULL && *err == NULL)
			*err = perr;
		else
			ac_error_free(perr);
		return -1;
	}

	AC_ANALYZER_OWNED(base);
	struct mount_ident parent, id;
	if (ident_at(pfd, "", AT_EMPTY_PATH, &parent) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat parent of '%s'",
				    path);
	if (ident_at(pfd, base, AT_SYMLINK_NOFOLLOW, &id) < 0) {
		if (errno == ENOENT)
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat '%s'", path);
	}
	if (!S_ISDIR(id.mode)) {
		if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove '%s'",
					    path);
		return 0;
	}
	struct rm_ctx c = {.parent = parent, .top = path};
	ac_walk_t w = {.pre = rm_pre, .post = rm_post, .arg = &c, .max_depth = AC_RM_MAX_DEPTH};
	return ac_walk_at(pfd, base, &w, err);
}

int ac_fd_send(int sock, unsigned char byte, int fd)
{
	struct iovec iov = {&byte, 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

int ac_fd_recv(int sock, unsigned char *byte, int *fd, int flags)
{
	struct iovec iov = {byte, 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	*fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(h), sizeof(int));
	return 1;
}
