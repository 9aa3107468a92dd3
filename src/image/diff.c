/* Writing an overlay upper directory as an OCI layer (image.h: ac_image_diff_*), for
 * snapshots: the reverse of unpack.c. Whiteouts (0/0 character devices) become
 * ".wh.NAME" entries, opaque directories (trusted.overlay.opaque=y, or user.overlay.opaque
 * for an overlay mounted with userxattr) a "DIR/.wh..wh..opq" entry; hard links inside the
 * tree stay hard links; xattrs as unpack keeps them (user.*, security.capability).
 *
 * Two digests are needed in one pass: the blob's (the gzip stream) and the diff_id (the
 * plain tar). libarchive writes the tar (pax, no filter) to a callback that hashes it and
 * feeds it as the data of the one entry of a second libarchive writer ("raw" format,
 * gzip filter), whose callback hashes the compressed bytes and writes them to out_fd. No
 * temporary file, no second read, no zlib of our own. The walk never follows symlinks
 * (base/walk.h) and each file is opened O_NOFOLLOW and checked to be what was stat'ed. */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/libarchive.h"
#include "base/io.h"
#include "base/sha256.h"
#include "base/util.h"
#include "base/walk.h"
#include "image/image.h"
#include "image/internal.h"

#define CHUNK	   (64u * 1024)
#define MAX_DEPTH  1024
#define XATTRS_MAX (64u * 1024)

typedef struct link_seen {
	dev_t dev;
	ino_t ino;
	char *name;
} link_seen_t;

struct ac_image_diff {
	int out_fd;
	struct archive *tar, *gz;
	struct archive_entry *e;
	ac_sha256_t tar_hash, gz_hash;
	int io_errno;
	bool failed, gz_open, tar_open;
	void *links; /* tsearch tree of link_seen_t */
	const char *prefix;
	unsigned char buf[CHUNK];
};

static la_ssize_t gz_write_cb(struct archive *a, void *arg, const void *buf, size_t n)
{
	ac_image_diff_t *d = arg;
	ac_sha256_update(&d->gz_hash, buf, n);
	if (ac_write_all(d->out_fd, buf, n) < 0) {
		d->io_errno = errno;
		ac_ar.archive_set_error(a, errno, "cannot write the layer");
		return -1;
	}
	return (la_ssize_t)n;
}

static la_ssize_t tar_write_cb(struct archive *a, void *arg, const void *buf, size_t n)
{
	ac_image_diff_t *d = arg;
	ac_sha256_update(&d->tar_hash, buf, n);
	const char *p = buf;
	size_t left = n;
	while (left > 0) {
		la_ssize_t w = ac_ar.archive_write_data(d->gz, p, left);
		if (w <= 0) {
			const char *s = ac_ar.archive_error_string(d->gz);
			ac_ar.archive_set_error(a, EIO, "%s", s ? s : "cannot compress the layer");
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	return (la_ssize_t)n;
}

static int diff_fail(ac_image_diff_t *d, struct archive *a, const char *what, ac_error_t **err)
{
	d->failed = true;
	if (d->io_errno)
		return ac_error_set(err, AC_ERR_INTERNAL, d->io_errno,
				    "cannot write the layer (%s)", what);
	const char *s = a ? ac_ar.archive_error_string(a) : NULL;
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot write the layer (%s): %s", what,
			    s ? s : "unknown error");
}

static void link_free(void *p)
{
	link_seen_t *l = p;
	free(l->name);
	free(l);
}

static void diff_free(ac_image_diff_t *d)
{
	if (d->tar)
		ac_ar.archive_write_free(d->tar);
	if (d->gz)
		ac_ar.archive_write_free(d->gz);
	if (d->e)
		ac_ar.archive_entry_free(d->e);
	if (d->links)
		tdestroy(d->links, link_free);
	free(d);
}

static int link_cmp(const void *a, const void *b)
{
	const link_seen_t *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

int ac_image_diff_begin(int out_fd, ac_image_diff_t **dp, ac_error_t **err)
{
	*dp = NULL;
	if (ac_ar_load(err) < 0)
		return -1;
	ac_image_diff_t *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
	d->out_fd = out_fd;
	ac_sha256_init(&d->tar_hash);
	ac_sha256_init(&d->gz_hash);
	d->gz = ac_ar.archive_write_new();
	d->tar = ac_ar.archive_write_new();
	d->e = ac_ar.archive_entry_new();
	if (d->gz == NULL || d->tar == NULL || d->e == NULL) {
		diff_free(d);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
	}
	/* The compressed stream: one raw entry, gzip, unblocked (no padding after gzip). */
	if (ac_ar.archive_write_set_format_raw(d->gz) != ARCHIVE_OK ||
	    ac_ar.archive_write_add_filter_gzip(d->gz) != ARCHIVE_OK ||
	    ac_ar.archive_write_set_bytes_per_block(d->gz, 0) != ARCHIVE_OK ||
	    ac_ar.archive_write_open(d->gz, d, NULL, gz_write_cb, NULL) != ARCHIVE_OK) {
		int r = diff_fail(d, d->gz, "gzip", err);
		diff_free(d);
		return r;
	}
	d->gz_open = true;
	ac_ar.archive_entry_set_pathname(d->e, "layer.tar");
	ac_ar.archive_entry_set_filetype(d->e, AE_IFREG);
	ac_ar.archive_entry_set_perm(d->e, 0644);
	if (ac_ar.archive_write_header(d->gz, d->e) != ARCHIVE_OK) {
		int r = diff_fail(d, d->gz, "gzip", err);
		diff_free(d);
		return r;
	}
	if (ac_ar.archive_write_set_format_pax_restricted(d->tar) != ARCHIVE_OK ||
	    ac_ar.archive_write_open(d->tar, d, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
		int r = diff_fail(d, d->tar, "tar", err);
		diff_free(d);
		return r;
	}
	d->tar_open = true;
	*dp = d;
	return 0;
}

static bool xattr_kept(const char *name)
{
	return (strncmp(name, "user.", 5) == 0 && strncmp(name, "user.overlay.", 13) != 0) ||
	       strcmp(name, "security.capability") == 0;
}

static void add_xattrs(ac_image_diff_t *d, int fd)
{
	char names[XATTRS_MAX];
	ssize_t n = flistxattr(fd, names, sizeof(names));
	for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
		const char *name = names + off;
		if (!xattr_kept(name))
			continue;
		ssize_t vl = fgetxattr(fd, name, d->buf, sizeof(d->buf));
		if (vl >= 0)
			ac_ar.archive_entry_xattr_add_entry(d->e, name, d->buf, (size_t)vl);
	}
}

static bool is_opaque(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
	if (n < 0)
		n = fgetxattr(fd, "user.overlay.opaque", v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static void header(ac_image_diff_t *d, const char *name, mode_t type, const struct stat *st,
		   int64_t size)
{
	ac_ar.archive_entry_clear(d->e);
	ac_ar.archive_entry_set_pathname(d->e, name);
	ac_ar.archive_entry_set_filetype(d->e, type);
	ac_ar.archive_entry_set_perm(d->e, st->st_mode & 07777);
	ac_ar.archive_entry_set_uid(d->e, st->st_uid);
	ac_ar.archive_entry_set_gid(d->e, st->st_gid);
	ac_ar.archive_entry_set_size(d->e, size);
	ac_ar.archive_entry_set_mtime(d->e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static int write_header(ac_image_diff_t *d, const char *name, ac_error_t **err)
{
	int r = ac_ar.archive_write_header(d->tar, d->e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return diff_fail(d, d->tar, name, err);
	return 0;
}

/* An empty marker entry (whiteout, opaque) owned like st. */
static int marker(ac_image_diff_t *d, const char *name, const struct stat *st, ac_error_t **err)
{
	struct stat m = *st;
	m.st_mode = S_IFREG | 0;
	header(d, name, AE_IFREG, &m, 0);
	return write_header(d, name, err);
}

static int copy_file(ac_image_diff_t *d, const ac_walk_entry_t *e, const char *name,
		     ac_error_t **err)
{
	_cleanup_close_ int fd =
	    openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read '%.300s'", e->path);
	if (!S_ISREG(st.st_mode) || st.st_ino != e->st->st_ino || st.st_dev != e->st->st_dev)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "'%.300s' changed while being read",
				    e->path);
	if (st.st_nlink > 1) {
		link_seen_t key = {.dev = st.st_dev, .ino = st.st_ino};
		link_seen_t **found = tfind(&key, &d->links, link_cmp);
		if (found) {
			header(d, name, AE_IFREG, &st, 0);
			ac_ar.archive_entry_set_hardlink(d->e, (*found)->name);
			return write_header(d, name, err);
		}
		link_seen_t *l = calloc(1, sizeof(*l));
		if (l == NULL || (l->name = strdup(name)) == NULL) {
			free(l);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
		}
		l->dev = st.st_dev;
		l->ino = st.st_ino;
		if (tsearch(l, &d->links, link_cmp) == NULL) {
			free(l->name);
			free(l);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
		}
	}
	header(d, name, AE_IFREG, &st, st.st_size);
	add_xattrs(d, fd);
	if (write_header(d, name, err) < 0)
		return -1;
	/* A file that shrinks meanwhile is padded by libarchive, one that grows is cut. */
	uint64_t left = (uint64_t)st.st_size;
	while (left > 0) {
		ssize_t n = read(fd, d->buf, left < sizeof(d->buf) ? (size_t)left : sizeof(d->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read '%.300s'",
					    e->path);
		if (n == 0)
			break;
		if (ac_ar.archive_write_data(d->tar, d->buf, (size_t)n) < 0)
			return diff_fail(d, d->tar, name, err);
		left -= (uint64_t)n;
	}
	return 0;
}

static int diff_entry(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	ac_image_diff_t *d = arg;
	const struct stat *st = e->st;
	_cleanup_free_ char *name = NULL;
	_cleanup_free_ char *wh = NULL;
	const char *slash = strrchr(e->path, '/');
	size_t dirlen = slash ? (size_t)(slash - e->path) + 1 : 0;
	if (*e->path == 0) {
		/* The root: an entry only under a prefix ("usr/" for a host template). */
		if (*d->prefix == 0 && !(S_ISDIR(st->st_mode) && is_opaque(e->fd)))
			return 0;
		if (*d->prefix) {
			size_t pl = strlen(d->prefix);
			if (asprintf(&name, "%.*s", (int)(pl - 1), d->prefix) < 0)
				name = NULL;
		} else if ((name = strdup(".")) == NULL) {
			name = NULL;
		}
	} else if (asprintf(&name, "%s%s", d->prefix, e->path) < 0) {
		name = NULL;
	}
	if (name == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
	AC_ANALYZER_OWNED(name);

	if (S_ISDIR(st->st_mode)) {
		if (*e->path || *d->prefix) {
			header(d, name, AE_IFDIR, st, 0);
			add_xattrs(d, e->fd);
			if (write_header(d, name, err) < 0)
				return -1;
		}
		if (is_opaque(e->fd)) {
			const char *dir = *e->path || *d->prefix ? name : "";
			if (asprintf(&wh, "%s%s.wh..wh..opq", dir, *dir ? "/" : "") < 0) {
				wh = NULL;
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
						    "cannot write the layer");
			}
			return marker(d, wh, st, err);
		}
		return 0;
	}
	if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
		if (asprintf(&wh, "%s%.*s.wh.%s", d->prefix, (int)dirlen, e->path, e->name) < 0) {
			wh = NULL;
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
		}
		return marker(d, wh, st, err);
	}
	if (S_ISREG(st->st_mode))
		return copy_file(d, e, name, err);
	if (S_ISLNK(st->st_mode)) {
		char target[4097];
		ssize_t n = readlinkat(e->dirfd, e->name, target, sizeof(target) - 1);
		if (n < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot read link '%.300s'", e->path);
		target[n] = 0;
		header(d, name, AE_IFLNK, st, 0);
		ac_ar.archive_entry_set_symlink(d->e, target);
		return write_header(d, name, err);
	}
	if (S_ISFIFO(st->st_mode)) {
		header(d, name, AE_IFIFO, st, 0);
		return write_header(d, name, err);
	}
	return 0; /* devices and sockets: not part of an image (unpack skips them too) */
}

int ac_image_diff_add(ac_image_diff_t *d, int upper_dirfd, const char *prefix, ac_error_t **err)
{
	if (d == NULL || d->failed)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the layer writer failed before");
	_cleanup_free_ char *p = NULL;
	if (prefix == NULL)
		prefix = "";
	while (*prefix == '/')
		prefix++;
	size_t pl = strlen(prefix);
	if (asprintf(&p, "%s%s", prefix, pl && prefix[pl - 1] != '/' ? "/" : "") < 0) {
		p = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write the layer");
	}
	d->prefix = p;
	ac_walk_t w = {.pre = diff_entry, .arg = d, .max_depth = MAX_DEPTH};
	int r = ac_walk_at(upper_dirfd, "", &w, err);
	d->prefix = NULL;
	if (r < 0)
		d->failed = true;
	return r;
}

int ac_image_diff_end(ac_image_diff_t *d, char *digest_out, char *diff_id_out, ac_error_t **err)
{
	if (d == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "no layer writer");
	int rc = 0;
	if (d->failed)
		rc = ac_error_set(err, AC_ERR_INTERNAL, 0, "the layer writer failed before");
	if (rc == 0 && ac_ar.archive_write_close(d->tar) != ARCHIVE_OK)
		rc = diff_fail(d, d->tar, "tar", err);
	if (rc == 0 && ac_ar.archive_write_close(d->gz) != ARCHIVE_OK)
		rc = diff_fail(d, d->gz, "gzip", err);
	if (rc == 0) {
		char hex[AC_SHA256_HEX_LEN];
		ac_sha256_final_hex(&d->gz_hash, hex);
		if (digest_out)
			snprintf(digest_out, 72, "sha256:%s", hex);
		ac_sha256_final_hex(&d->tar_hash, hex);
		if (diff_id_out)
			snprintf(diff_id_out, 72, "sha256:%s", hex);
	}
	diff_free(d);
	return rc;
}
