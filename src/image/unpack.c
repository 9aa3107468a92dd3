/* Unpacking one image layer (a tar, plain, gzip or zstd) into a directory in overlay form,
 * for ac_image_unpack and ac_image_layer_ensure (image.h, internal.h).
 *
 * A layer is hostile input written by host root: every write is an *at() call below the
 * layer's directory descriptor, and each entry's parent is resolved with openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so a path through any
 * symlink (the layer's own included) is refused instead of followed; the last component
 * is created with O_EXCL|O_NOFOLLOW (or mkdirat/symlinkat/mknodat/linkat, which never
 * follow it). Names are normalized ("/" and "./" prefixes dropped); a ".." component is
 * refused. Hard links must name a regular file this layer already unpacked.
 *
 * Two libarchive readers are chained so that one pass yields everything: the first
 * ("raw" format, gzip/zstd filters) decompresses the bytes read from fd, hashing them (the
 * blob's digest); the second (tar format only, no filter) reads its input from the first
 * through a callback that hashes the uncompressed stream (the diff_id). Only the gzip and
 * zstd filters are enabled, never archive_read_support_filter_all: that one would run
 * external programs (lrzip, lzop, grzip...) on a hostile blob's say-so. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/libarchive.h"
#include "base/io.h"
#include "base/sha256.h"
#include "base/util.h"
#include "image/image.h"
#include "image/internal.h"

#define NAME_MAX_BYTES 4096
#define ENTRIES_MAX    (1u << 20)
#define CHUNK	       (64u * 1024)

/* The chained readers' state (see the head comment). */
typedef struct chain {
	int fd;
	struct archive *raw, *tar;
	ac_sha256_t blob_hash, tar_hash;
	int io_errno; /* a read(2) failure on fd */
	/* outbuf: a file's data; never inbuf, which the decompressor may still be reading. */
	unsigned char inbuf[CHUNK], midbuf[CHUNK], outbuf[CHUNK];
} chain_t;

typedef struct dirfix {
	char *path;
	struct timespec mtime;
} dirfix_t;

typedef struct unpack {
	int root;
	uint64_t entries, size, devices;
	/* The last parent opened (most entries share their parent with the one before). */
	char *cache_path;
	int cache_fd;
	/* Directories' mtimes, set at the end (their entries change them meanwhile). */
	dirfix_t *dirs;
	size_t ndirs, capdirs;
	const char *name; /* the entry being unpacked, for messages */
} unpack_t;

static ssize_t raw_read_cb(struct archive *a, void *arg, const void **buf)
{
	chain_t *c = arg;
	ssize_t n;
	do
		n = read(c->fd, c->inbuf, sizeof(c->inbuf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		c->io_errno = errno;
		ac_ar.archive_set_error(a, errno, "cannot read the layer");
		return -1;
	}
	ac_sha256_update(&c->blob_hash, c->inbuf, (size_t)n);
	*buf = c->inbuf;
	return n;
}

static ssize_t tar_read_cb(struct archive *a, void *arg, const void **buf)
{
	chain_t *c = arg;
	la_ssize_t n = ac_ar.archive_read_data(c->raw, c->midbuf, sizeof(c->midbuf));
	if (n < 0) {
		const char *s = ac_ar.archive_error_string(c->raw);
		ac_ar.archive_set_error(a, EIO, "%s", s ? s : "cannot decompress the layer");
		return -1;
	}
	ac_sha256_update(&c->tar_hash, c->midbuf, (size_t)n);
	*buf = c->midbuf;
	return n;
}

static int reader_fail(chain_t *c, struct archive *a, ac_error_t **err)
{
	if (c->io_errno)
		return ac_error_set(err, AC_ERR_INTERNAL, c->io_errno, "cannot read the layer");
	const char *s = ac_ar.archive_error_string(a);
	return ac_error_set(err, AC_ERR_INVALID, 0, "bad layer archive: %s",
			    s ? s : "unreadable tar stream");
}

static int chain_open(chain_t *c, ac_error_t **err)
{
	c->raw = ac_ar.archive_read_new();
	c->tar = ac_ar.archive_read_new();
	if (c->raw == NULL || c->tar == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot read the layer");
	/* ARCHIVE_WARN would mean an external program: refuse that. */
	if (ac_ar.archive_read_support_filter_gzip(c->raw) != ARCHIVE_OK ||
	    ac_ar.archive_read_support_filter_zstd(c->raw) != ARCHIVE_OK)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "libarchive lacks built-in gzip or zstd support");
	if (ac_ar.archive_read_support_format_raw(c->raw) != ARCHIVE_OK ||
	    ac_ar.archive_read_support_format_tar(c->tar) != ARCHIVE_OK)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, "libarchive lacks tar support");
	if (ac_ar.archive_read_open(c->raw, c, NULL, raw_read_cb, NULL) != ARCHIVE_OK)
		return reader_fail(c, c->raw, err);
	struct archive_entry *e;
	int r = ac_ar.archive_read_next_header(c->raw, &e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return reader_fail(c, c->raw, err);
	if (ac_ar.archive_read_open(c->tar, c, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
		return reader_fail(c, c->tar, err);
	return 0;
}

/* Reads what the tar reader left (end-of-archive padding, trailing bytes) so that both
 * digests cover the whole stream. */
static int chain_drain(chain_t *c, ac_error_t **err)
{
	for (;;) {
		la_ssize_t n = ac_ar.archive_read_data(c->raw, c->midbuf, sizeof(c->midbuf));
		if (n < 0)
			return reader_fail(c, c->raw, err);
		if (n == 0)
			break;
		ac_sha256_update(&c->tar_hash, c->midbuf, (size_t)n);
	}
	for (;;) {
		ssize_t n = read(c->fd, c->inbuf, sizeof(c->inbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read the layer");
		if (n == 0)
			return 0;
		ac_sha256_update(&c->blob_hash, c->inbuf, (size_t)n);
	}
}

/* ---- names ---- */

/* Normalizes an entry name into out (NAME_MAX_BYTES + 1): components joined by one '/',
 * without "", "." or a leading '/'. NULL or the reason it is refused. */
static const char *normalize(const char *in, char *out)
{
	if (strlen(in) > NAME_MAX_BYTES)
		return "name longer than 4096 bytes";
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return "'..' component";
		if (o)
			out[o++] = '/';
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = 0;
	return NULL;
}

static int refuse(unpack_t *u, const char *why, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_INVALID, 0, "layer entry '%.300s': %s", u->name, why);
}

/* ---- resolving parents beneath the root ---- */

static int openat2_beneath(int dirfd, const char *path)
{
	struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0 && errno == ENOSYS && strchr(path, '/') == NULL) {
		/* Kernels before 5.6: one component, never a symlink (O_NOFOLLOW), no "..". */
		fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOTDIR) {
			struct stat st;
			if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				errno = ELOOP;
		}
	}
	return fd;
}

static int resolve_fail(unpack_t *u, int e, ac_error_t **err)
{
	if (e == ELOOP)
		return refuse(u, "a path through a symlink", err);
	if (e == EXDEV)
		return refuse(u, "a path outside the layer", err);
	if (e == ENOTDIR)
		return refuse(u, "a parent is not a directory", err);
	if (e == ENOENT)
		return refuse(u, "a parent does not exist", err);
	return ac_error_set(err, AC_ERR_INTERNAL, e, "layer entry '%.300s': cannot open its parent",
			    u->name);
}

static void cache_drop(unpack_t *u)
{
	if (u->cache_fd >= 0)
		close(u->cache_fd);
	u->cache_fd = -1;
	free(u->cache_path);
	u->cache_path = NULL;
}

/* Opens the directory path (relative to the root, normalized; "" is the root) without
 * following any symlink, creating missing directories (0755, root) when create. Returns a
 * borrowed descriptor (the cache's or the root) or -1 with *err set. */
static int open_dir(unpack_t *u, const char *path, bool create, ac_error_t **err)
{
	if (*path == 0)
		return u->root;
	if (u->cache_path && strcmp(u->cache_path, path) == 0)
		return u->cache_fd;
	cache_drop(u);
	int fd = openat2_beneath(u->root, path);
	if (fd < 0 && (errno == ENOENT || errno == ENOSYS)) {
		if (errno == ENOENT && !create)
			return resolve_fail(u, ENOENT, err);
		/* One component at a time, creating what is missing. */
		char buf[NAME_MAX_BYTES + 1];
		snprintf(buf, sizeof(buf), "%s", path);
		int cur = -1;
		char *save = NULL;
		for (char *comp = strtok_r(buf, "/", &save); comp;
		     comp = strtok_r(NULL, "/", &save)) {
			int base = cur >= 0 ? cur : u->root;
			int next = openat2_beneath(base, comp);
			if (next < 0 && errno == ENOENT && create) {
				if (mkdirat(base, comp, 0755) < 0 && errno != EEXIST) {
					int e = errno;
					if (cur >= 0)
						close(cur);
					return ac_error_set(
					    err, AC_ERR_INTERNAL, e,
					    "layer entry '%.300s': cannot create '%s'", u->name,
					    comp);
				}
				next = openat2_beneath(base, comp);
			}
			int e = errno;
			if (cur >= 0)
				close(cur);
			if (next < 0)
				return resolve_fail(u, e, err);
			cur = next;
		}
		fd = cur;
	} else if (fd < 0) {
		return resolve_fail(u, errno, err);
	}
	u->cache_path = strdup(path);
	if (u->cache_path == NULL) {
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot unpack the layer");
	}
	u->cache_fd = fd;
	return fd;
}

/* Splits a normalized name into its parent (in buf) and its last component. */
static const char *split(const char *name, char *buf)
{
	const char *slash = strrchr(name, '/');
	if (slash == NULL) {
		buf[0] = 0;
		return name;
	}
	memcpy(buf, name, (size_t)(slash - name));
	buf[slash - name] = 0;
	return slash + 1;
}

/* Removes what base names in pfd, keeping a directory when keep_dir. 1: a directory was
 * kept, 0: nothing there (now), -1: error. */
static int clear(unpack_t *u, int pfd, const char *base, bool keep_dir, ac_error_t **err)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "layer entry '%.300s': cannot stat", u->name);
	}
	if (S_ISDIR(st.st_mode)) {
		if (keep_dir)
			return 1;
		/* The cached directory may lie inside what goes, unless it is pfd itself. */
		if (pfd != u->cache_fd)
			cache_drop(u);
		return ac_rm_rf_at(pfd, base, err) < 0 ? -1 : 0;
	}
	if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "layer entry '%.300s': cannot replace it", u->name);
	return 0;
}

/* ---- metadata ---- */

static bool xattr_kept(const char *name)
{
	/* trusted.* (overlay's own: opaque, redirect, metacopy) and security.* (SELinux,
	 * IMA...) would be interpreted by the host; file capabilities are part of the image. */
	return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

/* Owner, mode (setuid included: after the chown, which clears it) and xattrs (after the
 * chown too: it clears security.capability) of an open file or directory. */
static int apply_meta(unpack_t *u, int fd, struct archive_entry *e, ac_error_t **err)
{
	int64_t uid = ac_ar.archive_entry_uid(e), gid = ac_ar.archive_entry_gid(e);
	if (uid < 0 || uid >= 0xFFFFFFFFll || gid < 0 || gid >= 0xFFFFFFFFll)
		return refuse(u, "owner out of range", err);
	if (fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': chown",
				    u->name);
	if (fchmod(fd, ac_ar.archive_entry_mode(e) & 07777) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': chmod",
				    u->name);
	ac_ar.archive_entry_xattr_reset(e);
	const char *name;
	const void *value;
	size_t size;
	while (ac_ar.archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (name == NULL || !xattr_kept(name))
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP) {
			char why[160];
			snprintf(why, sizeof(why), "cannot set xattr %.64s: %s", name,
				 strerror(errno));
			return refuse(u, why, err);
		}
	}
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	if (ac_ar.archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = (time_t)ac_ar.archive_entry_mtime(e);
		long ns = ac_ar.archive_entry_mtime_nsec(e);
		ts[1].tv_nsec = ns >= 0 && ns < 1000000000 ? ns : 0;
	} else {
		ts[1].tv_sec = 0;
		ts[1].tv_nsec = UTIME_NOW;
	}
	ts[0] = ts[1];
}

static int own_at(unpack_t *u, int pfd, const char *base, struct archive_entry *e, ac_error_t **err)
{
	int64_t uid = ac_ar.archive_entry_uid(e), gid = ac_ar.archive_entry_gid(e);
	if (uid < 0 || uid >= 0xFFFFFFFFll || gid < 0 || gid >= 0xFFFFFFFFll)
		return refuse(u, "owner out of range", err);
	if (fchownat(pfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': chown",
				    u->name);
	struct timespec ts[2];
	entry_times(e, ts);
	utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* ---- entries ---- */

static int put_file(unpack_t *u, chain_t *c, int pfd, const char *base, struct archive_entry *e,
		    ac_error_t **err)
{
	if (clear(u, pfd, base, false, err) < 0)
		return -1;
	_cleanup_close_ int fd =
	    openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': create",
				    u->name);
	for (;;) {
		la_ssize_t n = ac_ar.archive_read_data(c->tar, c->outbuf, sizeof(c->outbuf));
		if (n < 0)
			return reader_fail(c, c->tar, err);
		if (n == 0)
			break;
		if (ac_write_all(fd, c->outbuf, (size_t)n) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "layer entry '%.300s': write", u->name);
		u->size += (uint64_t)n;
	}
	if (apply_meta(u, fd, e, err) < 0)
		return -1;
	struct timespec ts[2];
	entry_times(e, ts);
	futimens(fd, ts);
	return 0;
}

static int put_dir(unpack_t *u, int pfd, const char *base, const char *path,
		   struct archive_entry *e, ac_error_t **err)
{
	/* The dir may be the cached parent's ancestor: clear() keeps directories. */
	int r = clear(u, pfd, base, true, err);
	if (r < 0)
		return -1;
	if (r == 0 && mkdirat(pfd, base, 0700) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': mkdir",
				    u->name);
	_cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': open",
				    u->name);
	if (apply_meta(u, fd, e, err) < 0)
		return -1;
	if (u->ndirs == u->capdirs) {
		size_t cap = u->capdirs ? u->capdirs * 2 : 64;
		dirfix_t *d = realloc(u->dirs, cap * sizeof(*d));
		if (d == NULL)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
					    "cannot unpack the layer");
		u->dirs = d;
		u->capdirs = cap;
	}
	struct timespec ts[2];
	entry_times(e, ts);
	u->dirs[u->ndirs].path = strdup(path);
	if (u->dirs[u->ndirs].path == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot unpack the layer");
	u->dirs[u->ndirs++].mtime = ts[1];
	return 0;
}

static int put_hardlink(unpack_t *u, const char *parent, const char *base, const char *target,
			ac_error_t **err)
{
	char tnorm[NAME_MAX_BYTES + 1], tparent[NAME_MAX_BYTES + 1];
	const char *why = normalize(target, tnorm);
	if (why) {
		char msg[64];
		snprintf(msg, sizeof(msg), "hard link target: %s", why);
		return refuse(u, msg, err);
	}
	if (*tnorm == 0)
		return refuse(u, "hard link to the layer's root", err);
	const char *tbase = split(tnorm, tparent);
	ac_error_t *terr = NULL;
	int tpfd = open_dir(u, tparent, false, &terr);
	if (tpfd < 0) {
		int kind = terr ? (int)terr->kind : AC_ERR_INTERNAL;
		ac_error_free(terr);
		return kind == AC_ERR_INVALID
			   ? refuse(u, "hard link target outside the layer or not unpacked", err)
			   : ac_error_set(err, AC_ERR_INTERNAL, 0,
					  "layer entry '%.300s': cannot open its link target",
					  u->name);
	}
	/* Keep the target's parent open: opening the link's parent replaces the cache. */
	_cleanup_close_ int tfd = fcntl(tpfd, F_DUPFD_CLOEXEC, 0);
	if (tfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot unpack the layer");
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return refuse(u, "hard link to a file the layer has not unpacked", err);
	if (!S_ISREG(st.st_mode))
		return refuse(u, "hard link to something other than a regular file", err);
	int pfd = open_dir(u, parent, true, err);
	if (pfd < 0)
		return -1;
	struct stat cur;
	if (fstatat(pfd, base, &cur, AT_SYMLINK_NOFOLLOW) == 0 && cur.st_ino == st.st_ino &&
	    cur.st_dev == st.st_dev)
		return 0;
	if (clear(u, pfd, base, false, err) < 0)
		return -1;
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "layer entry '%.300s': link",
				    u->name);
	return 0;
}

static int put_whiteout(unpack_t *u, int pfd, const char *base, ac_error_t **err)
{
	if (strcmp(base, ".wh..wh..opq") == 0) {
		if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return ac_error_set(
			    err, AC_ERR_INTERNAL, errno,
			    "layer entry '%.300s': cannot mark the directory opaque", u->name);
		return 0;
	}
	if (strncmp(base, ".wh..wh.", 8) == 0)
		return 0; /* aufs bookkeeping (.wh..wh.plnk, ...): not part of the image */
	const char *name = base + 4;
	if (*name == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return refuse(u, "whiteout of an invalid name", err);
	struct stat pst;
	if (fstat(pfd, &pst) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot unpack the layer");
	if (clear(u, pfd, name, false, err) < 0)
		return -1;
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "layer entry '%.300s': cannot make the whiteout", u->name);
	if (fchownat(pfd, name, pst.st_uid, pst.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "layer entry '%.300s': cannot chown the whiteout", u->name);
	return 0;
}

static int put_entry(unpack_t *u, chain_t *c, struct archive_entry *e, ac_error_t **err)
{
	const char *raw = ac_ar.archive_entry_pathname(e);
	u->name = raw ? raw : "";
	if (raw == NULL)
		return refuse(u, "no name", err);
	char name[NAME_MAX_BYTES + 1], parent[NAME_MAX_BYTES + 1];
	const char *why = normalize(raw, name);
	if (why)
		return refuse(u, why, err);
	if (*name == 0)
		return 0; /* the root ("./"): the layer directory's own metadata is the store's */
	const char *base = split(name, parent);

	const char *hard = ac_ar.archive_entry_hardlink(e);
	if (hard && strncmp(base, ".wh.", 4) != 0)
		return put_hardlink(u, parent, base, hard, err);

	int pfd = open_dir(u, parent, true, err);
	if (pfd < 0)
		return -1;
	if (strncmp(base, ".wh.", 4) == 0)
		return put_whiteout(u, pfd, base, err);

	mode_t type = (mode_t)ac_ar.archive_entry_filetype(e);
	switch (type) {
	case AE_IFREG:
		return put_file(u, c, pfd, base, e, err);
	case AE_IFDIR:
		return put_dir(u, pfd, base, name, e, err);
	case AE_IFLNK: {
		const char *target = ac_ar.archive_entry_symlink(e);
		if (target == NULL || *target == 0)
			return refuse(u, "symlink without a target", err);
		if (strlen(target) > NAME_MAX_BYTES)
			return refuse(u, "symlink target longer than 4096 bytes", err);
		if (clear(u, pfd, base, false, err) < 0)
			return -1;
		if (symlinkat(target, pfd, base) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "layer entry '%.300s': symlink", u->name);
		return own_at(u, pfd, base, e, err);
	}
	case AE_IFIFO:
		if (clear(u, pfd, base, false, err) < 0)
			return -1;
		if (mknodat(pfd, base, S_IFIFO | 0600, 0) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "layer entry '%.300s': mkfifo", u->name);
		if (own_at(u, pfd, base, e, err) < 0)
			return -1;
		/* Just made by us beneath the root, and a fifo: fchmodat cannot be misled. */
		if (fchmodat(pfd, base, ac_ar.archive_entry_mode(e) & 07777, 0) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "layer entry '%.300s': chmod", u->name);
		return 0;
	case AE_IFCHR:
	case AE_IFBLK:
		u->devices++;
		return 0;
	default:
		return 0; /* sockets and unknown types carry nothing */
	}
}

static void fix_dirs(unpack_t *u)
{
	for (size_t i = u->ndirs; i-- > 0;) {
		ac_error_t *e = NULL;
		cache_drop(u);
		u->name = u->dirs[i].path; /* libarchive's entry names are gone by now */
		int fd = open_dir(u, u->dirs[i].path, false, &e);
		ac_error_free(e);
		if (fd >= 0 && fd != u->root) {
			struct timespec ts[2] = {u->dirs[i].mtime, u->dirs[i].mtime};
			futimens(fd, ts);
		}
	}
	cache_drop(u);
}

static void unpack_free(unpack_t *u)
{
	cache_drop(u);
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
}

int ac_image_unpack_layer(int fd, int dirfd, const char *expect_hex, uint64_t *size,
			  char *diff_id_out, const char **media_type_out, uint64_t *devices,
			  ac_error_t **err)
{
	if (ac_ar_load(err) < 0)
		return -1;
	chain_t *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot unpack the layer");
	c->fd = fd;
	ac_sha256_init(&c->blob_hash);
	ac_sha256_init(&c->tar_hash);
	unpack_t u = {.root = dirfd, .cache_fd = -1};
	int rc = -1;
	if (chain_open(c, err) < 0)
		goto out;
	for (;;) {
		struct archive_entry *e;
		int r = ac_ar.archive_read_next_header(c->tar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			reader_fail(c, c->tar, err);
			goto out;
		}
		if (++u.entries > ENTRIES_MAX) {
			ac_error_set(err, AC_ERR_INVALID, 0, "layer has more than %u entries",
				     ENTRIES_MAX);
			goto out;
		}
		if (put_entry(&u, c, e, err) < 0)
			goto out;
	}
	if (chain_drain(c, err) < 0)
		goto out;
	fix_dirs(&u);
	char hex[AC_SHA256_HEX_LEN];
	ac_sha256_final_hex(&c->blob_hash, hex);
	if (expect_hex && strcmp(hex, expect_hex) != 0) {
		ac_error_set(err, AC_ERR_BACKEND, 0, "layer sha256:%s does not match its digest",
			     expect_hex);
		goto out;
	}
	if (diff_id_out) {
		ac_sha256_final_hex(&c->tar_hash, hex);
		snprintf(diff_id_out, 72, "sha256:%s", hex);
	}
	if (media_type_out) {
		int code = ac_ar.archive_filter_code(c->raw, 0);
		*media_type_out = code == ARCHIVE_FILTER_GZIP	? AC_MT_OCI_LAYER_GZIP
				  : code == ARCHIVE_FILTER_ZSTD ? AC_MT_OCI_LAYER_ZSTD
								: AC_MT_OCI_LAYER;
	}
	if (size)
		*size = u.size;
	if (devices)
		*devices = u.devices;
	rc = 0;
out:
	unpack_free(&u);
	if (c->tar)
		ac_ar.archive_read_free(c->tar);
	if (c->raw)
		ac_ar.archive_read_free(c->raw);
	free(c);
	return rc;
}

int ac_image_unpack(int fd, int dirfd, uint64_t *size, ac_error_t **err)
{
	return ac_image_unpack_layer(fd, dirfd, NULL, size, NULL, NULL, NULL, err);
}
