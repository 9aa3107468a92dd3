/* File operations through tar streams (tarfiles.h), shared by the backends that move a
 * sandbox's files only as tars: libarchive (loaded with dlopen), the tar writer from a host
 * tree, the untrusted-tar reader and extractor, the path rules and the operations; the
 * backend's ac_tarfiles_io_t moves the tars.
 *
 * Longer than 800 lines on purpose: the tar writer, the untrusted-tar reader and the file
 * operations share the path rules and helpers; split, a dozen of them would
 * become cross-file names that nothing else may call. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/libarchive.h"
#include "base/json.h"
#include "base/io.h"
#include "base/util.h"
#include "base/walk.h"
#include "backends/tarfiles.h"

#define MAX_DEPTH 256

/* ---- building a tar (host -> sandbox) ---- */

typedef struct tarw {
	struct archive *a;
	struct archive_entry *e;
	size_t entries;
} tarw_t;

static int tar_fail(tarw_t *t, const char *what, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the tar (%s): %s", what,
			    ac_ar.archive_error_string(t->a) ? ac_ar.archive_error_string(t->a)
							     : "unknown error");
}

static int tar_header(tarw_t *t, const char *name, mode_t type, mode_t perm, int64_t size,
		      time_t mtime, const char *link, ac_error_t **err)
{
	if (++t->entries > AC_TARFILES_ENTRIES_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "more than %u entries",
				    AC_TARFILES_ENTRIES_MAX);
	ac_ar.archive_entry_clear(t->e);
	ac_ar.archive_entry_set_pathname(t->e, name);
	ac_ar.archive_entry_set_filetype(t->e, type);
	ac_ar.archive_entry_set_perm(t->e, perm & 0777);
	ac_ar.archive_entry_set_uid(t->e, 0);
	ac_ar.archive_entry_set_gid(t->e, 0);
	ac_ar.archive_entry_set_size(t->e, size);
	ac_ar.archive_entry_set_mtime(t->e, mtime, 0);
	if (link)
		ac_ar.archive_entry_set_symlink(t->e, link);
	if (ac_ar.archive_write_header(t->a, t->e) != ARCHIVE_OK)
		return tar_fail(t, name, err);
	return 0;
}

struct tar_walk {
	tarw_t *t;
	const char *as; /* the tar name of the walk's root */
};

/* Adds one entry of the walk (see tar_add) to the tar. */
static int tar_entry(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct tar_walk *tw = arg;
	tarw_t *t = tw->t;
	_cleanup_free_ char *as_buf = NULL;
	const char *as = tw->as;
	if (*e->path) {
		if (asprintf(&as_buf, "%s/%s", tw->as, e->path) < 0) {
			as_buf = NULL;
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		as = as_buf;
	}
	const char *name = e->name;
	struct stat st = *e->st;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t l = readlinkat(e->dirfd, name, target, sizeof(target) - 1);
		if (l < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "readlink '%s'", name);
		target[l] = 0;
		return tar_header(t, as, AE_IFLNK, 0777, 0, st.st_mtime, target, err);
	}
	if (S_ISDIR(st.st_mode))
		return tar_header(t, as, AE_IFDIR, st.st_mode, 0, st.st_mtime, NULL, err);
	if (!S_ISREG(st.st_mode))
		return 0; /* devices, fifos, sockets: not copied (as the native backend) */
	/* Swapped for a FIFO since the fstatat: O_NONBLOCK keeps the open from waiting for a
	 * writer, and it is skipped like one. */
	_cleanup_close_ int in =
	    openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '%s'", name);
	if (!S_ISREG(st.st_mode))
		return 0;
	if (tar_header(t, as, AE_IFREG, st.st_mode, st.st_size, st.st_mtime, NULL, err) < 0)
		return -1;
	char buf[65536];
	int64_t left = st.st_size;
	while (left > 0) {
		ssize_t n =
		    read(in, buf, sizeof(buf) < (uint64_t)left ? sizeof(buf) : (size_t)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "'%s' changed while it was copied", name);
		if (ac_ar.archive_write_data(t->a, buf, (size_t)n) != n)
			return tar_fail(t, name, err);
		left -= n;
	}
	return 0;
}

/* Adds the entry `name` of directory sfd, and what is below it, to the tar as `as`. */
static int tar_add(tarw_t *t, int sfd, const char *name, const char *as, ac_error_t **err)
{
	struct tar_walk tw = {.t = t, .as = as};
	ac_walk_t w = {.pre = tar_entry, .arg = &tw, .max_depth = MAX_DEPTH};
	return ac_walk_at(sfd, name, &w, err);
}

static int tar_begin(tarw_t *t, int fd, ac_error_t **err)
{
	t->a = ac_ar.archive_write_new();
	t->e = ac_ar.archive_entry_new();
	t->entries = 0;
	if (!t->a || !t->e || ac_ar.archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
	    ac_ar.archive_write_open_fd(t->a, fd) != ARCHIVE_OK)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot start a tar");
	return 0;
}

static int tar_end(tarw_t *t, int rc, ac_error_t **err)
{
	if (t->a) {
		if (ac_ar.archive_write_close(t->a) != ARCHIVE_OK && rc == 0)
			rc = tar_fail(t, "close", err);
		ac_ar.archive_write_free(t->a);
	}
	if (t->e)
		ac_ar.archive_entry_free(t->e);
	t->a = NULL;
	t->e = NULL;
	return rc;
}

/* ---- putting a tar into the sandbox ---- */

int ac_tarfiles_name(const char *name, char *out, size_t outlen)
{
	if (!name || strlen(name) >= 4096 || outlen < 2)
		return -1;
	size_t o = 0;
	const char *p = name;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (!(n == 1 && p[0] == '.')) {
			if (o + n + 2 > outlen)
				return -1;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	out[o] = 0;
	return 0;
}

/* Normalised absolute path: "//a/./b/" -> "/a/b"; ".." refused. */
static int clean_path(const char *in, char *out, size_t len, ac_error_t **err)
{
	if (!in || in[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not an absolute path in the sandbox", in ? in : "");
	char rel[4096];
	if (strlen(in) >= sizeof(rel))
		return ac_error_set(err, AC_ERR_INVALID, 0, "path too long");
	if (ac_tarfiles_name(in, rel, sizeof(rel)) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "'..' is not allowed in '%s'", in);
	snprintf(out, len, "/%s", rel);
	return 0;
}

/* Puts a tar that fill makes (entries named relative to dir) into dir; when dir does not
 * exist, the tar is rebuilt under the deepest existing ancestor with the missing
 * directories (the archive endpoint needs the directory to exist). */
typedef int (*fill_fn)(tarw_t *t, const char *prefix, void *arg, ac_error_t **err);

static int put_into(const ac_tarfiles_io_t *io, const char *dir, fill_fn fill, void *arg,
		    ac_error_t **err)
{
	char at[4096], prefix[4096] = "";
	snprintf(at, sizeof(at), "%s", dir);
	for (int attempt = 0; attempt < 2; attempt++) {
		_cleanup_close_ int fd = memfd_create("agentcell-tar", MFD_CLOEXEC);
		tarw_t t = {0};
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
		int rc = tar_begin(&t, fd, err);
		if (rc == 0 && prefix[0]) {
			/* The missing directories, from the top. */
			char walk[4096];
			snprintf(walk, sizeof(walk), "%s", prefix);
			for (char *s = walk; rc == 0 && s;) {
				s = strchr(s + 1, '/');
				if (s)
					*s = 0;
				rc = tar_header(&t, walk, AE_IFDIR, 0755, 0, time(NULL), NULL, err);
				if (s)
					*s = '/';
			}
		}
		if (rc == 0)
			rc = fill(&t, prefix, arg, err);
		if (tar_end(&t, rc, err) < 0)
			return -1;
		int put = io->put(io->arg, at, fd, err);
		if (put <= 0)
			return put;
		if (attempt == 1)
			break;
		/* The directory must exist: find the deepest one that does. */
		char probe[4096];
		snprintf(probe, sizeof(probe), "%s", dir);
		for (;;) {
			char *slash = strrchr(probe, '/');
			if (!slash || slash == probe) {
				snprintf(probe, sizeof(probe), "/");
				break;
			}
			*slash = 0;
			bool is_dir = false;
			int ex = io->stat(io->arg, probe, &is_dir, err);
			if (ex < 0)
				return -1;
			if (ex == 1 && !is_dir)
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "'%s' is not a directory in the sandbox",
						    probe);
			if (ex == 1)
				break;
		}
		snprintf(at, sizeof(at), "%s", probe);
		size_t pl = strcmp(probe, "/") ? strlen(probe) : 0;
		snprintf(prefix, sizeof(prefix), "%s", dir + pl + 1);
	}
	return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no directory '%s' in the sandbox", dir);
}

static void split(const char *path, char *dir, size_t dlen, char *base, size_t blen)
{
	const char *slash = strrchr(path, '/');
	if (slash == path)
		snprintf(dir, dlen, "/");
	else
		snprintf(dir, dlen, "%.*s", (int)(slash - path), path);
	snprintf(base, blen, "%s", slash + 1);
}

static void join(char *out, size_t len, const char *prefix, const char *name)
{
	if (prefix[0])
		snprintf(out, len, "%s/%s", prefix, name);
	else
		snprintf(out, len, "%s", name);
}

typedef struct put_arg {
	const ac_files_req_t *req;
	const char *name; /* entry name below the put directory */
	int hdir;	  /* host: directory of the source */
	const char *hbase;
} put_arg_t;

static int fill_host(tarw_t *t, const char *prefix, void *arg, ac_error_t **err)
{
	put_arg_t *a = arg;
	char as[8300];
	join(as, sizeof(as), prefix, a->name);
	return tar_add(t, a->hdir, a->hbase, as, err);
}

static int fill_data(tarw_t *t, const char *prefix, void *arg, ac_error_t **err)
{
	put_arg_t *a = arg;
	char as[8300];
	join(as, sizeof(as), prefix, a->name);
	if (tar_header(t, as, AE_IFREG, a->req->mode, (int64_t)a->req->len, time(NULL), NULL, err) <
	    0)
		return -1;
	if (a->req->len &&
	    ac_ar.archive_write_data(t->a, a->req->data, a->req->len) != (la_ssize_t)a->req->len)
		return tar_fail(t, as, err);
	return 0;
}

static int fill_nothing(tarw_t *t, const char *prefix, void *arg, ac_error_t **err)
{
	(void)t;
	(void)prefix;
	(void)arg;
	(void)err;
	return 0;
}

/* ---- reading a tar from the sandbox ---- */

typedef struct tarr {
	const ac_tarfiles_io_t *io;
	struct archive *a;
	size_t entries;
	bool whole; /* the tar of "/": no top component to strip */
} tarr_t;

static int tarr_open(tarr_t *t, int fd, ac_error_t **err)
{
	t->a = ac_ar.archive_read_new();
	t->entries = 0;
	if (!t->a || ac_ar.archive_read_support_format_tar(t->a) != ARCHIVE_OK ||
	    ac_ar.archive_read_open_fd(t->a, fd, 65536) != ARCHIVE_OK)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s sent an unreadable tar",
				    t->io->sender);
	return 0;
}

/* The next entry with its path below the top component ("" for the top itself). 1: an
 * entry, 0: end, -1: error. */
static int tarr_next(tarr_t *t, struct archive_entry **e, char *rest, size_t len, ac_error_t **err)
{
	int r = ac_ar.archive_read_next_header(t->a, e);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return ac_error_set(
		    err, AC_ERR_BACKEND, 0, "%s is malformed: %s", t->io->tar_of,
		    ac_ar.archive_error_string(t->a) ? ac_ar.archive_error_string(t->a) : "?");
	if (++t->entries > AC_TARFILES_ENTRIES_MAX)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s has more than %u entries",
				    t->io->tar_of, AC_TARFILES_ENTRIES_MAX);
	char clean[4096];
	const char *name = ac_ar.archive_entry_pathname(*e);
	if (ac_tarfiles_name(name, clean, sizeof(clean)) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s has an unsafe name '%s'",
				    t->io->tar_of, name ? name : "");
	const char *slash = strchr(clean, '/');
	snprintf(rest, len, "%s", t->whole ? clean : slash ? slash + 1 : "");
	return 1;
}

static int read_data_to(tarr_t *t, int fd, ac_error_t **err)
{
	char buf[65536];
	la_ssize_t n;
	while ((n = ac_ar.archive_read_data(t->a, buf, sizeof(buf))) > 0)
		if (ac_write_all(fd, buf, (size_t)n) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write a file");
	if (n < 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s is truncated", t->io->tar_of);
	return 0;
}

/* Opens (creating directories) the parent of rel below root; *last gets its last name. */
static int walk_to_parent(int root, const char *rel, const char **last, ac_error_t **err)
{
	int dfd = fcntl(root, F_DUPFD_CLOEXEC, 3);
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash) {
			*last = p;
			return dfd;
		}
		char comp[256];
		if ((size_t)(slash - p) >= sizeof(comp)) {
			close(dfd);
			return ac_error_set(err, AC_ERR_BACKEND, 0, "name too long in the tar");
		}
		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - p), p);
		if (mkdirat(dfd, comp, 0700) < 0 && errno != EEXIST) {
			close(dfd);
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create '%s'",
					    comp);
		}
		int next = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (next < 0)
			return ac_error_set(err, AC_ERR_INVALID, errno,
					    "'%s' is not a directory on the host", comp);
		dfd = next;
		p = slash + 1;
	}
}

/* Extracts the tar below host directory hfd, its top component renamed to top. */
static int extract(tarr_t *t, int hfd, const char *top, ac_error_t **err)
{
	struct archive_entry *e;
	char rest[4096], rel[4400];
	int r;
	while ((r = tarr_next(t, &e, rest, sizeof(rest), err)) == 1) {
		if (rest[0])
			snprintf(rel, sizeof(rel), "%s/%s", top, rest);
		else
			snprintf(rel, sizeof(rel), "%s", top);
		const char *last = rel;
		_cleanup_close_ int dfd = walk_to_parent(hfd, rel, &last, err);
		if (dfd < 0)
			return -1;
		mode_t perm = (mode_t)ac_ar.archive_entry_perm(e) & 0777;
		switch (ac_ar.archive_entry_filetype(e)) {
		case AE_IFDIR: {
			if (mkdirat(dfd, last, 0700) < 0 && errno != EEXIST)
				return ac_error_set(err, AC_ERR_INTERNAL, errno,
						    "cannot create directory '%s'", rel);
			_cleanup_close_ int d2 =
			    openat(dfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (d2 < 0)
				return ac_error_set(err, AC_ERR_INVALID, errno,
						    "'%s' is not a directory on the host", rel);
			(void)!fchmod(d2, perm | 0700);
			break;
		}
		case AE_IFLNK: {
			const char *target = ac_ar.archive_entry_symlink(e);
			unlinkat(dfd, last, 0);
			if (!target || symlinkat(target, dfd, last) < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno,
						    "cannot create symlink '%s'", rel);
			break;
		}
		case AE_IFREG: {
			_cleanup_close_ int out = openat(
			    dfd, last, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (out < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno,
						    "cannot create '%s'", rel);
			if (read_data_to(t, out, err) < 0)
				return -1;
			(void)!fchmod(out, perm);
			break;
		}
		default:
			break; /* devices, fifos, hard links: not copied */
		}
	}
	return r;
}

/* ---- the operations ---- */

static int op_copy_in(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		      ac_error_t **err)
{
	char hb[4096], hostdir[4096];
	snprintf(hb, sizeof(hb), "%s", req->host);
	size_t n = strlen(hb);
	while (n > 1 && hb[n - 1] == '/')
		hb[--n] = 0;
	const char *hbase = strrchr(hb, '/') ? strrchr(hb, '/') + 1 : hb;
	snprintf(hostdir, sizeof(hostdir), "%s", hb);
	_cleanup_close_ int hdir = open(dirname(hostdir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat hs;
	if (hdir < 0 || fstatat(hdir, hbase, &hs, 0) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno, "no such file on the host: '%s'",
				    req->host);
	bool is_dir = false;
	int ex = io->stat(io->arg, cpath, &is_dir, err);
	if (ex < 0)
		return -1;
	char dir[4096], base[4096];
	put_arg_t a = {.req = req, .hdir = hdir, .hbase = hbase};
	if (ex == 1 && is_dir) {
		/* Into an existing directory: as its child, like cp. */
		a.name = hbase;
		return put_into(io, cpath, fill_host, &a, err);
	}
	if (!strcmp(cpath, "/"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'/' does not name a file");
	split(cpath, dir, sizeof(dir), base, sizeof(base));
	a.name = base;
	return put_into(io, dir, fill_host, &a, err);
}

static int op_write(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		    ac_error_t **err)
{
	char dir[4096], base[4096];
	if (!strcmp(cpath, "/"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'/' does not name a file");
	bool is_dir = false;
	int ex = io->stat(io->arg, cpath, &is_dir, err);
	if (ex < 0)
		return -1;
	if (ex == 1 && is_dir)
		return ac_error_set(err, AC_ERR_INVALID, EISDIR, "cannot write '%s' in the sandbox",
				    cpath);
	split(cpath, dir, sizeof(dir), base, sizeof(base));
	put_arg_t a = {.req = req, .name = base};
	return put_into(io, dir, fill_data, &a, err);
}

static int op_mkdir(const ac_tarfiles_io_t *io, const char *cpath, ac_error_t **err)
{
	bool is_dir = false;
	int ex = io->stat(io->arg, cpath, &is_dir, err);
	if (ex < 0)
		return -1;
	if (ex == 1)
		return is_dir ? 0
			      : ac_error_set(err, AC_ERR_INVALID, 0,
					     "'%s' is not a directory in the sandbox", cpath);
	return put_into(io, cpath, fill_nothing, NULL, err);
}

static int op_read(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		   ac_error_t **err)
{
	_cleanup_close_ int fd = -1;
	if (io->get(io->arg, cpath, AC_FILES_READ_MAX + (1u << 20), false, &fd, err) < 0)
		return -1;
	tarr_t t = {.io = io};
	int rc = tarr_open(&t, fd, err);
	struct archive_entry *e;
	char rest[4096];
	if (rc == 0 && (rc = tarr_next(&t, &e, rest, sizeof(rest), err)) == 0)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0, "%s is empty", io->tar_of);
	if (rc == 1 && ac_ar.archive_entry_filetype(e) != AE_IFREG)
		rc = ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not a regular file", cpath);
	if (rc == 1 && ac_ar.archive_entry_size(e) > (la_int64_t)AC_FILES_READ_MAX)
		rc = ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is larger than %u bytes", cpath,
				  AC_FILES_READ_MAX);
	if (rc == 1) {
		size_t size = (size_t)ac_ar.archive_entry_size(e);
		char *buf = malloc(size + 1);
		size_t got = 0;
		la_ssize_t n = 1;
		while (buf && got < size &&
		       (n = ac_ar.archive_read_data(t.a, buf + got, size - got)) > 0)
			got += (size_t)n;
		if (!buf || got != size) {
			free(buf);
			rc = ac_error_set(err, AC_ERR_BACKEND, 0, "%s is truncated", io->tar_of);
		} else {
			buf[size] = 0;
			*req->result = buf;
			*req->result_len = size;
			rc = 0;
		}
	}
	if (t.a)
		ac_ar.archive_read_free(t.a);
	return rc;
}

static int op_copy_out(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		       ac_error_t **err)
{
	char hb[4096], hostdir[4096], cb[4096], dir[4096];
	snprintf(hb, sizeof(hb), "%s", req->host);
	size_t n = strlen(hb);
	while (n > 1 && hb[n - 1] == '/')
		hb[--n] = 0;
	if (!strcmp(cpath, "/"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'/' does not name a file");
	split(cpath, dir, sizeof(dir), cb, sizeof(cb));
	_cleanup_close_ int hfd = -1;
	const char *top;
	struct stat hs;
	if (stat(hb, &hs) == 0 && S_ISDIR(hs.st_mode)) {
		hfd = open(hb, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		top = cb;
	} else {
		snprintf(hostdir, sizeof(hostdir), "%s", hb);
		hfd = open(dirname(hostdir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		top = strrchr(hb, '/') ? strrchr(hb, '/') + 1 : hb;
	}
	if (hfd < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "no such directory on the host for '%s'", req->host);
	_cleanup_close_ int fd = -1;
	if (io->get(io->arg, cpath, AC_TARFILES_TREE_MAX, false, &fd, err) < 0)
		return -1;
	tarr_t t = {.io = io};
	int rc = tarr_open(&t, fd, err);
	if (rc == 0)
		rc = extract(&t, hfd, top, err);
	if (t.a)
		ac_ar.archive_read_free(t.a);
	return rc < 0 ? -1 : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

static int op_list(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		   ac_error_t **err)
{
	_cleanup_close_ int fd = -1;
	if (io->get(io->arg, cpath, AC_TARFILES_LIST_MAX, true, &fd, err) < 0) {
		if (err && *err && (*err)->kind == AC_ERR_NOT_FOUND) {
			ac_error_free(*err);
			*err = NULL;
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "no directory '%s' in the sandbox", cpath);
		}
		return -1;
	}
	tarr_t t = {.io = io, .whole = !strcmp(cpath, "/")};
	int rc = tarr_open(&t, fd, err);
	json_t *arr = json_array();
	struct archive_entry *e;
	char rest[4096];
	bool top_dir = t.whole;
	while (rc == 0 && (rc = tarr_next(&t, &e, rest, sizeof(rest), err)) == 1) {
		rc = 0;
		unsigned type = ac_ar.archive_entry_filetype(e);
		if (!rest[0]) {
			top_dir = top_dir || type == AE_IFDIR;
			continue;
		}
		if (strchr(rest, '/'))
			continue;
		json_t *name = json_string(rest);
		if (!name)
			continue;
		const char *tn = type == AE_IFREG   ? "file"
				 : type == AE_IFDIR ? "dir"
				 : type == AE_IFLNK ? "symlink"
						    : "other";
		json_array_append_new(arr,
				      json_pack("{so ss sI si}", "name", name, "type", tn, "size",
						(json_int_t)ac_ar.archive_entry_size(e), "mode",
						(int)(ac_ar.archive_entry_perm(e) & 07777)));
	}
	if (t.a)
		ac_ar.archive_read_free(t.a);
	if (rc == 0 && !top_dir)
		rc = ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no directory '%s' in the sandbox",
				  cpath);
	if (rc < 0) {
		json_decref(arr);
		return -1;
	}
	ac_json_array_sort(arr, by_name);
	char *s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!s)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	*req->result = s;
	*req->result_len = strlen(s);
	return 0;
}

/* No tar deletes: the sandbox's own rm does (it needs to run). */
static int op_delete(const ac_tarfiles_io_t *io, const ac_files_req_t *req, const char *cpath,
		     ac_error_t **err)
{
	if (!strcmp(cpath, "/"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'/' does not name a file");
	bool is_dir = false;
	int ex = io->stat(io->arg, cpath, &is_dir, err);
	if (ex < 0)
		return -1;
	if (ex == 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such file in the sandbox: '%s'",
				    cpath);
	char *argv_rm[] = {"rm", req->recursive ? "-rf" : "-f", "--", (char *)cpath, NULL};
	char *argv_rmdir[] = {"rmdir", "--", (char *)cpath, NULL};
	char msg[300] = "";
	int code = -1;
	if (io->run(io->arg, is_dir && !req->recursive ? argv_rmdir : argv_rm, &code, msg,
		    sizeof(msg), err) < 0)
		return -1;
	if (code != 0) {
		for (char *c = msg; *c; c++)
			if (*c == '\n')
				*c = ' ';
		return ac_error_set(err, is_dir && !req->recursive ? AC_ERR_STATE : AC_ERR_INTERNAL,
				    0, "cannot delete '%s': %s", cpath, msg[0] ? msg : "rm failed");
	}
	return 0;
}

int ac_tarfiles_op(const ac_tarfiles_io_t *io, const ac_files_req_t *req, ac_error_t **err)
{
	char cpath[4096];
	if (clean_path(req->path, cpath, sizeof(cpath), err) < 0 || ac_ar_load(err) < 0)
		return -1;
	switch (req->op) {
	case AC_FILES_COPY_IN:
		return op_copy_in(io, req, cpath, err);
	case AC_FILES_COPY_OUT:
		return op_copy_out(io, req, cpath, err);
	case AC_FILES_READ:
		return op_read(io, req, cpath, err);
	case AC_FILES_WRITE:
		return op_write(io, req, cpath, err);
	case AC_FILES_MKDIR:
		return op_mkdir(io, cpath, err);
	case AC_FILES_LIST:
		return op_list(io, req, cpath, err);
	case AC_FILES_DELETE:
		return op_delete(io, req, cpath, err);
	}
	return ac_error_set(err, AC_ERR_INVALID, 0, "unknown file operation");
}
