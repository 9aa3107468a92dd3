/* `image import` and `image export` (image.h): images in and out of the store as files.
 *
 * Import reads a `docker save`/`podman save` tar (manifest.json [{Config, RepoTags,
 * Layers}], possibly with an OCI index.json beside it: docker 25+, podman's oci-archive),
 * compressed or not, or an OCI image layout directory (oci-layout, index.json,
 * blobs/sha256/). A tar is read once, streaming, with libarchive (dlopen): every regular
 * member is hashed while it is copied to images/blobs/tmp/ (a member named
 * blobs/sha256/<hex> must hash to <hex>; one the store already holds is only hashed), the
 * few metadata files are kept in memory, and member names are never used as paths on
 * disk: names with ".." or absolute ones are refused, links are aliases that must stay
 * inside the archive, and whatever the metadata names is looked up among the members.
 * Then each image is checked whole (sizes and digests against the descriptors, plain
 * layers against the config's diff_ids) before anything is stored: the blobs it needs are
 * installed, a Docker schema 2 (or, with zstd layers, an OCI) manifest is made when the
 * archive has none, layers are unpacked (ac_image_layer_ensure) and the image committed
 * under its tags (or the ref the caller gives, for an archive of one image).
 *
 * Export writes one tar that `docker load`, `podman load` and OCI tools all read:
 * oci-layout, index.json (one entry per tag: io.containerd.image.name and
 * org.opencontainers.image.ref.name), manifest.json (docker load's) and the original blobs,
 * so an export imported elsewhere has the same manifest, config and layer digests.
 *
 * Longer than 800 lines on purpose: the tar reader, the layout-directory reader and the
 * checks of manifest.json, index.json and the manifests all work on one table of members
 * (names, aliases, digests, copies), which the export's writer shares; split, these would become cross-file names nothing else may call. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/libarchive.h"
#include "base/io.h"
#include "base/sha256.h"
#include "base/util.h"
#include "image/image.h"
#include "image/internal.h"

#define MEMBERS_MAX 100000
#define BLOB_MAX    (64ull << 30) /* one layer or config */
#define IMAGES_MAX  256
#define LAYERS_MAX  512
#define PATH_MAX_   4096
#define LINK_DEPTH  16

#define MT_DOCKER_PLAIN_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define ANN_CONTAINERD	      "io.containerd.image.name"
#define ANN_REF		      "org.opencontainers.image.ref.name"

enum { K_PLAIN, K_GZIP, K_ZSTD };

typedef struct member {
	char *name;
	char *link; /* an alias (symlink, hard link): the member it stands for */
	char hex[AC_SHA256_HEX_LEN];
	uint64_t size;
	int kind;
	bool copied, installed; /* tmp holds its bytes / they are in blobs/sha256 now */
	char tmp[96];		/* relative to images/ */
	char *data;		/* a metadata file's content */
	size_t len;
} member_t;

typedef struct src {
	const char *home, *path;
	int storefd;
	int dirfd; /* an OCI layout directory; -1 for a tar */
	member_t **m;
	size_t n, cap;
	json_t *names; /* name -> index in m */
	unsigned seq;
} src_t;

/* ------------------------------------------------------------------ names */

/* base (a directory, "" for the top) joined with p, as a clean relative path: no "", "."
 * or ".." components (a ".." goes up, only with dotdot and never above the top).
 * 0, or -1 for "..", -2 for an absolute p, -3 too long. Empty out: the top itself. */
static int clean(const char *base, const char *p, bool dotdot, char *out, size_t len)
{
	if (p[0] == '/')
		return -2;
	char buf[2 * PATH_MAX_ + 2];
	if (strlen(base) + strlen(p) + 2 > sizeof(buf) || strlen(p) > PATH_MAX_)
		return -3;
	snprintf(buf, sizeof(buf), "%s%s%s", base, *base ? "/" : "", p);
	size_t o = 0;
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (!dotdot || o == 0)
				return -1;
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		size_t cl = strlen(c);
		if (o + cl + 2 > len)
			return -3;
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, cl);
		o += cl;
	}
	out[o] = 0;
	return 0;
}

/* A path the archive's metadata names (manifest.json's Config and Layers). */
static int meta_path(const char *what, const char *p, char *out, size_t len, ac_error_t **err)
{
	if (!p || clean("", p, false, out, len) < 0 || !*out)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "manifest.json names '%.300s' as %s: not a path inside the "
				    "archive",
				    p ? p : "(nothing)", what);
	return 0;
}

static bool meta_name(const char *n)
{
	return !strcmp(n, "manifest.json") || !strcmp(n, "index.json") || !strcmp(n, "oci-layout");
}

/* The hex of "blobs/sha256/<hex>", or NULL. */
static const char *blob_name_hex(const char *n)
{
	if (strncmp(n, "blobs/sha256/", 13) || strlen(n) != 13 + 64)
		return NULL;
	char d[80];
	snprintf(d, sizeof(d), "sha256:%s", n + 13);
	return ac_image_digest_valid(d) ? n + 13 : NULL;
}

/* ------------------------------------------------------------------ members */

static void member_free(src_t *s, member_t *mb)
{
	if (!mb)
		return;
	if (mb->copied && !mb->installed && mb->tmp[0])
		unlinkat(s->storefd, mb->tmp, 0);
	free(mb->name);
	free(mb->link);
	free(mb->data);
	free(mb);
}

static member_t *member_add(src_t *s, const char *name, ac_error_t **err)
{
	if (s->n >= MEMBERS_MAX) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' has more than %d members", s->path,
			     MEMBERS_MAX);
		return NULL;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		member_t **m = realloc(s->m, cap * sizeof(*m));
		if (!m) {
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			return NULL;
		}
		s->m = m;
		s->cap = cap;
	}
	member_t *mb = calloc(1, sizeof(*mb));
	if (!mb || !(mb->name = strdup(name))) {
		free(mb);
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		return NULL;
	}
	json_t *old = json_object_get(s->names, name);
	if (old) { /* a later member of the same name replaces the earlier one */
		size_t i = (size_t)json_integer_value(old);
		member_free(s, s->m[i]);
		s->m[i] = mb;
		return mb;
	}
	json_object_set_new(s->names, name, json_integer((json_int_t)s->n));
	s->m[s->n++] = mb;
	return mb;
}

typedef ssize_t (*reader_fn)(void *ctx, void *buf, size_t n);

static ssize_t tar_read(void *ctx, void *buf, size_t n)
{
	return (ssize_t)ac_ar.archive_read_data(ctx, buf, n);
}

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	ssize_t r;
	while ((r = read(*(int *)ctx, buf, n)) < 0 && errno == EINTR)
		;
	return r;
}

/* Hashes a member's bytes and (unless the store has that blob) copies them to blobs/tmp. */
static int take(src_t *s, member_t *mb, reader_fn rd, void *ctx, ac_error_t **err)
{
	const char *want = blob_name_hex(mb->name);
	char rel[128];
	_cleanup_close_ int fd = -1;
	if (want)
		ac_image_blob_path(want, rel, sizeof(rel));
	if (!want || faccessat(s->storefd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(mb->tmp, sizeof(mb->tmp), "blobs/tmp/import.%d.%u.partial", (int)getpid(),
			 s->seq++);
		fd = openat(s->storefd, mb->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create images/%s",
					    mb->tmp);
		mb->copied = true;
	}
	_cleanup_free_ unsigned char *buf = malloc(1 << 20);
	if (!buf)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	ac_sha256_t c;
	ac_sha256_init(&c);
	unsigned char head[512];
	size_t headn = 0;
	uint64_t total = 0;
	for (;;) {
		ssize_t n = rd(ctx, buf, 1 << 20);
		if (n < 0)
			return ac_error_set(err, AC_ERR_INVALID, errno, "cannot read '%s' in %s",
					    mb->name, s->path);
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > BLOB_MAX)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "'%s' in %s is larger than %llu GiB", mb->name, s->path,
					    BLOB_MAX >> 30);
		if (headn < sizeof(head)) {
			size_t k =
			    (size_t)n < sizeof(head) - headn ? (size_t)n : sizeof(head) - headn;
			memcpy(head + headn, buf, k);
			headn += k;
		}
		ac_sha256_update(&c, buf, (size_t)n);
		if (fd >= 0 && ac_write_all(fd, buf, (size_t)n) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write images/%s",
					    mb->tmp);
	}
	ac_sha256_final_hex(&c, mb->hex);
	mb->size = total;
	mb->kind =
	    headn >= 2 && head[0] == 0x1f && head[1] == 0x8b ? K_GZIP
	    : headn >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd
		? K_ZSTD
		: K_PLAIN;
	if (want && strcmp(want, mb->hex))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' in %s does not match its digest (its content is "
				    "sha256:%s)",
				    mb->name, s->path, mb->hex);
	return 0;
}

static int take_meta(src_t *s, member_t *mb, reader_fn rd, void *ctx, ac_error_t **err)
{
	size_t cap = AC_IMAGE_MANIFEST_MAX;
	mb->data = malloc(cap + 1);
	if (!mb->data)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = rd(ctx, mb->data + mb->len, cap + 1 - mb->len);
		if (n < 0)
			return ac_error_set(err, AC_ERR_INVALID, errno, "cannot read '%s' in %s",
					    mb->name, s->path);
		if (n == 0)
			break;
		mb->len += (size_t)n;
		if (mb->len > cap)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "'%s' in %s is larger than %u MiB", mb->name, s->path,
					    AC_IMAGE_MANIFEST_MAX >> 20);
	}
	mb->data[mb->len] = 0;
	return 0;
}

/* Opens name (clean, relative) beneath the layout directory, never through a symlink. */
static int dir_open(src_t *s, const char *name, ac_error_t **err)
{
	struct open_how how = {.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, s->dirfd, name, &how, sizeof(how));
	if (fd < 0)
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INVALID, errno,
				    "cannot open '%s' in %s", name, s->path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' in %s is not a regular file",
				    name, s->path);
	}
	return fd;
}

/* The member called name (clean), its links followed; in a layout directory, read on first
 * use. NULL with AC_ERR_INVALID (or NOT_FOUND, when the archive lacks it). */
static member_t *get(src_t *s, const char *name, ac_error_t **err)
{
	const char *n = name;
	for (int depth = 0; depth < LINK_DEPTH; depth++) {
		json_t *ix = json_object_get(s->names, n);
		if (!ix && s->dirfd >= 0) {
			_cleanup_close_ int fd = dir_open(s, n, err);
			if (fd < 0)
				return NULL;
			member_t *mb = member_add(s, n, err);
			if (!mb)
				return NULL;
			int rc = meta_name(n) ? take_meta(s, mb, fd_read, &fd, err)
					      : take(s, mb, fd_read, &fd, err);
			return rc < 0 ? NULL : mb;
		}
		/* names only holds indexes of m: the bounds check keeps that visible */
		json_int_t i = json_integer_value(ix);
		if (!ix || i < 0 || (size_t)i >= s->n) {
			ac_error_set(err, AC_ERR_NOT_FOUND, 0, "%s has no member '%s'", s->path,
				     name);
			return NULL;
		}
		member_t *mb = s->m[i];
		if (!mb->link)
			return mb;
		n = mb->link;
	}
	ac_error_set(err, AC_ERR_INVALID, 0, "'%s' in %s: too many levels of links", name, s->path);
	return NULL;
}

static const char *tar_error(struct archive *a)
{
	const char *e = ac_ar.archive_error_string(a);
	return e ? e : "unknown error";
}

static int read_tar(src_t *s, int fd, ac_error_t **err)
{
	if (ac_ar_load(err) < 0)
		return -1;
	struct archive *a = ac_ar.archive_read_new();
	if (!a)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	int rc = -1;
	/* gzip and zstd only: filter_all would run external programs (lrzip, lzop, ...) for
	 * the formats this libarchive was built without. */
	if (ac_ar.archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    ac_ar.archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    ac_ar.archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    ac_ar.archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		ac_error_set(err, AC_ERR_INVALID, 0, "%s is not a tar archive: %s", s->path,
			     tar_error(a));
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = ac_ar.archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			ac_error_set(err, AC_ERR_INVALID, 0, "%s is not a readable tar archive: %s",
				     s->path, tar_error(a));
			goto out;
		}
		const char *raw = ac_ar.archive_entry_pathname(e);
		char name[PATH_MAX_ + 1], target[PATH_MAX_ + 1], dir[PATH_MAX_ + 1];
		int c = raw ? clean("", raw, false, name, sizeof(name)) : -3;
		if (c < 0) {
			ac_error_set(err, AC_ERR_INVALID, 0, "%s: member '%.300s' %s", s->path,
				     raw ? raw : "?",
				     c == -1   ? "has a '..' component"
				     : c == -2 ? "is an absolute path"
					       : "has no usable name");
			goto out;
		}
		if (!*name)
			continue;
		const char *hl = ac_ar.archive_entry_hardlink(e);
		unsigned type = ac_ar.archive_entry_filetype(e);
		if (hl || type == AE_IFLNK) {
			snprintf(dir, sizeof(dir), "%s", name);
			char *slash = strrchr(dir, '/');
			*(slash ? slash : dir) = 0;
			const char *t = hl ? hl : ac_ar.archive_entry_symlink(e);
			if (!t || clean(hl ? "" : dir, t, !hl, target, sizeof(target)) < 0 ||
			    !*target) {
				ac_error_set(err, AC_ERR_INVALID, 0,
					     "%s: member '%s' links outside the archive ('%.300s')",
					     s->path, name, t ? t : "?");
				goto out;
			}
			member_t *mb = member_add(s, name, err);
			if (!mb || !(mb->link = strdup(target))) {
				if (mb)
					ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
				goto out;
			}
			continue;
		}
		if (type == AE_IFDIR)
			continue;
		if (type != AE_IFREG) {
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: member '%s' is not a file, directory or link", s->path,
				     name);
			goto out;
		}
		if ((uint64_t)ac_ar.archive_entry_size(e) > BLOB_MAX) {
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: member '%s' is larger than %llu GiB", s->path, name,
				     BLOB_MAX >> 30);
			goto out;
		}
		member_t *mb = member_add(s, name, err);
		if (!mb || (meta_name(name) ? take_meta(s, mb, tar_read, a, err)
					    : take(s, mb, tar_read, a, err)) < 0)
			goto out;
	}
	rc = 0;
out:
	ac_ar.archive_read_free(a);
	return rc;
}

/* ------------------------------------------------------------------ reading images */

/* A member's JSON (a manifest, an index, a config): from memory, its copy or the store. */
static int member_json(src_t *s, member_t *mb, json_t **out, ac_error_t **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	const char *data = mb->data;
	if (!data) {
		if (mb->size > AC_IMAGE_MANIFEST_MAX)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "'%s' in %s is too large for a manifest or config",
					    mb->name, s->path);
		char d[80];
		snprintf(d, sizeof(d), "sha256:%s", mb->hex);
		int rc = mb->copied ? ac_read_file_at(s->storefd, mb->tmp, AC_IMAGE_MANIFEST_MAX,
						      &buf, &len, err)
				    : ac_image_blob_read(s->storefd, d, AC_IMAGE_MANIFEST_MAX, &buf,
							 &len, err);
		if (rc < 0)
			return -1;
		data = buf;
	} else {
		len = mb->len;
	}
	json_error_t je;
	*out = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' in %s is not a JSON object%s%s",
				    mb->name, s->path, je.text[0] ? ": " : "", je.text);
	}
	return 0;
}

/* The member a descriptor {digest, size} names, its size checked. */
static member_t *desc_member(src_t *s, const json_t *desc, ac_error_t **err)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	char name[96];
	if (!d || !ac_image_digest_valid(d)) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "%s: a descriptor has no valid digest ('%.80s')", s->path, d ? d : "");
		return NULL;
	}
	snprintf(name, sizeof(name), "blobs/sha256/%s", d + 7);
	member_t *mb = get(s, name, err);
	if (!mb)
		return NULL;
	json_t *size = json_object_get(desc, "size");
	if (size && (!json_is_integer(size) || (uint64_t)json_integer_value(size) != mb->size)) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "%s: %s is %llu bytes, but its descriptor says %lld", s->path, d,
			     (unsigned long long)mb->size, (long long)json_integer_value(size));
		return NULL;
	}
	return mb;
}

/* This machine's architecture, as OCI (GOARCH) names it. */
static const char *goarch(void)
{
	static const char *const map[][2] = {
	    {"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},
	    {"armv6l", "arm"},	    {"i686", "386"},	  {"i386", "386"},
	    {"ppc64le", "ppc64le"}, {"s390x", "s390x"},	  {"riscv64", "riscv64"}};
	static struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	for (size_t i = 0; i < AC_ARRAY_SIZE(map); i++)
		if (!strcmp(u.machine, map[i][0]))
			return map[i][1];
	return u.machine;
}

static bool is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, AC_MT_OCI_INDEX) || !strcmp(mt, AC_MT_DOCKER_LIST));
}

/* Adds the canonical form of r to refs (once); false when r is not a reference. */
static bool add_ref(json_t *refs, const char *r)
{
	ac_image_ref_t p;
	ac_error_t *e = NULL;
	if (!r || ac_image_ref_parse(r, &p, &e) < 0) {
		ac_error_free(e);
		return false;
	}
	char buf[700];
	ac_image_ref_format(&p, buf, sizeof(buf));
	size_t i;
	json_t *x;
	json_array_foreach(refs, i, x)
	{
		if (!strcmp(json_string_value(x), buf))
			return true;
	}
	json_array_append_new(refs, json_string(buf));
	return true;
}

/* The image entry of images whose "manifest" is name (merging entries of one manifest). */
static json_t *image_entry(json_t *images, const char *key)
{
	size_t i;
	json_t *x;
	json_array_foreach(images, i, x)
	{
		if (!strcmp(json_string_value(json_object_get(x, "key")), key))
			return x;
	}
	x = json_pack("{ss s[] s[] s[]}", "key", key, "blobs", "layers", "refs");
	json_array_append_new(images, x);
	return x;
}

/* Checks an image manifest (OCI or Docker schema 2) member: its config and layers must be
 * members of the right sizes. Adds an entry to images. */
static json_t *from_manifest_blob(src_t *s, member_t *man, json_t *images, ac_error_t **err)
{
	json_t *m = NULL;
	if (member_json(s, man, &m, err) < 0)
		return NULL;
	json_t *layers = json_object_get(m, "layers"), *l;
	member_t *cfg = desc_member(s, json_object_get(m, "config"), err);
	if (!cfg || !json_is_array(layers) || json_array_size(layers) > LAYERS_MAX) {
		if (cfg)
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: manifest sha256:%s has no layers array (or more than "
				     "%d layers)",
				     s->path, man->hex, LAYERS_MAX);
		json_decref(m);
		return NULL;
	}
	json_t *img = image_entry(images, man->name);
	json_object_set_new(img, "manifest", json_string(man->name));
	json_object_set_new(img, "config", json_string(cfg->hex));
	json_t *blobs = json_object_get(img, "blobs"), *lv = json_object_get(img, "layers");
	json_array_clear(blobs);
	json_array_clear(lv);
	json_array_append_new(blobs, json_string(cfg->name));
	size_t i;
	json_array_foreach(layers, i, l)
	{
		member_t *mb = desc_member(s, l, err);
		if (!mb) {
			json_decref(m);
			return NULL;
		}
		json_array_append_new(blobs, json_string(mb->name));
		json_array_append_new(lv, json_sprintf("sha256:%s", mb->hex));
	}
	json_array_append_new(blobs, json_string(man->name));
	json_decref(m);
	return img;
}

/* The manifest for this platform in an image index member (only those the archive holds). */
static member_t *pick_platform(src_t *s, member_t *ix, ac_error_t **err)
{
	json_t *idx = NULL;
	if (member_json(s, ix, &idx, err) < 0)
		return NULL;
	const char *arch = goarch();
	json_t *list = json_object_get(idx, "manifests"), *d;
	size_t i;
	member_t *found = NULL;
	json_array_foreach(list, i, d)
	{
		json_t *p = json_object_get(d, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *a = json_string_value(json_object_get(p, "architecture"));
		if (is_index_type(json_string_value(json_object_get(d, "mediaType"))) ||
		    (os && strcmp(os, "linux")) || (a && strcmp(a, arch)))
			continue;
		ac_error_t *e = NULL;
		found = desc_member(s, d, &e);
		if (!found && !(e && e->kind == AC_ERR_NOT_FOUND)) {
			*err = e;
			json_decref(idx);
			return NULL;
		}
		ac_error_free(e);
		if (found)
			break;
	}
	json_decref(idx);
	if (!found)
		ac_error_set(err, AC_ERR_NOT_FOUND, 0,
			     "%s: the image index sha256:%s has no linux/%s image in the archive",
			     s->path, ix->hex, arch);
	return found;
}

/* Images from an OCI index.json (tags: RepoTags of manifest.json by config hex). */
static int from_index(src_t *s, member_t *index, json_t *tags, json_t *images, ac_error_t **err)
{
	json_t *idx = NULL;
	if (member_json(s, index, &idx, err) < 0)
		return -1;
	json_t *list = json_object_get(idx, "manifests"), *d;
	int rc = 0;
	if (!json_is_array(list)) {
		json_decref(idx);
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: index.json has no manifests",
				    s->path);
	}
	size_t i;
	json_array_foreach(list, i, d)
	{
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		json_t *p = json_object_get(d, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		if (os && strcmp(os, "linux")) /* attestations: "unknown" */
			continue;
		member_t *man = desc_member(s, d, err);
		if (man && is_index_type(mt))
			man = pick_platform(s, man, err);
		json_t *img = man ? from_manifest_blob(s, man, images, err) : NULL;
		if (!img) {
			rc = -1;
			break;
		}
		json_t *ann = json_object_get(d, "annotations"),
		       *refs = json_object_get(img, "refs");
		const char *full = json_string_value(json_object_get(ann, ANN_CONTAINERD));
		const char *rn = json_string_value(json_object_get(ann, ANN_REF));
		if (!add_ref(refs, full) && rn && (strchr(rn, '/') || strchr(rn, ':')))
			add_ref(refs, rn);
		json_t *t =
			   json_object_get(tags, json_string_value(json_object_get(img, "config"))),
		       *x;
		size_t k;
		json_array_foreach(t, k, x)
		{
			add_ref(refs, json_string_value(x));
		}
	}
	json_decref(idx);
	return rc;
}

static const char *layer_type(int kind, bool oci)
{
	if (oci)
		return kind == K_GZIP	? AC_MT_OCI_LAYER_GZIP
		       : kind == K_ZSTD ? AC_MT_OCI_LAYER_ZSTD
					: AC_MT_OCI_LAYER;
	return kind == K_GZIP ? AC_MT_DOCKER_LAYER : MT_DOCKER_PLAIN_LAYER;
}

/* One entry of manifest.json: checks the config and layers and builds the manifest the
 * archive does not carry (Docker schema 2; OCI when a layer is zstd, which it cannot say). */
static int from_docker_entry(src_t *s, const json_t *ent, json_t *images, ac_error_t **err)
{
	char name[PATH_MAX_ + 1];
	const json_t *layers = json_object_get(ent, "Layers"), *l;
	if (!json_is_array(layers) || json_array_size(layers) > LAYERS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: a manifest.json entry has no Layers array (or more than "
				    "%d layers)",
				    s->path, LAYERS_MAX);
	if (meta_path("Config", json_string_value(json_object_get(ent, "Config")), name,
		      sizeof(name), err) < 0)
		return -1;
	member_t *cfg = get(s, name, err);
	json_t *config = NULL;
	if (!cfg || member_json(s, cfg, &config, err) < 0)
		return -1;
	/* "<hex>.json" (docker before 25) names its digest too. */
	const char *base = strrchr(cfg->name, '/') ? strrchr(cfg->name, '/') + 1 : cfg->name;
	if (strlen(base) == 69 && !strcmp(base + 64, ".json") && strncmp(base, cfg->hex, 64)) {
		json_decref(config);
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: config '%s' does not match its digest (its content is "
				    "sha256:%s)",
				    s->path, cfg->name, cfg->hex);
	}
	const json_t *diff_ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	member_t *lm[LAYERS_MAX];
	bool oci = false;
	size_t i;
	json_array_foreach(layers, i, l)
	{
		if (meta_path("a layer", json_string_value(l), name, sizeof(name), err) < 0 ||
		    !(lm[i] = get(s, name, err))) {
			json_decref(config);
			return -1;
		}
		const char *want = json_string_value(json_array_get(diff_ids, i));
		char have[80];
		snprintf(have, sizeof(have), "sha256:%s", lm[i]->hex);
		if (lm[i]->kind == K_PLAIN && want && strcmp(want, have)) {
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: layer '%s' does not match its digest in the image config "
				     "(%.80s, its content is %s)",
				     s->path, lm[i]->name, want, have);
			json_decref(config);
			return -1;
		}
		oci = oci || lm[i]->kind == K_ZSTD;
	}
	json_decref(config);
	json_t *ml = json_array();
	json_t *man = json_pack("{si ss s{ss sI ss*} so}", "schemaVersion", 2, "mediaType",
				oci ? AC_MT_OCI_MANIFEST : AC_MT_DOCKER_MANIFEST, "config",
				"mediaType", oci ? AC_MT_OCI_CONFIG : AC_MT_DOCKER_CONFIG, "size",
				(json_int_t)cfg->size, "digest", NULL, "layers", ml);
	json_object_set_new(json_object_get(man, "config"), "digest",
			    json_sprintf("sha256:%s", cfg->hex));
	char key[40];
	snprintf(key, sizeof(key), "built.%zu", json_array_size(images));
	json_t *img = image_entry(images, key);
	json_t *blobs = json_object_get(img, "blobs"), *lv = json_object_get(img, "layers");
	json_array_append_new(blobs, json_string(cfg->name));
	json_object_set_new(img, "config", json_string(cfg->hex));
	json_array_foreach(layers, i, l)
	{
		json_array_append_new(ml, json_pack("{ss sI so}", "mediaType",
						    layer_type(lm[i]->kind, oci), "size",
						    (json_int_t)lm[i]->size, "digest",
						    json_sprintf("sha256:%s", lm[i]->hex)));
		json_array_append_new(blobs, json_string(lm[i]->name));
		json_array_append_new(lv, json_sprintf("sha256:%s", lm[i]->hex));
	}
	char *text = json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(man);
	if (!text)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	json_object_set_new(img, "built", json_string(text));
	free(text);
	json_t *tags = json_object_get(ent, "RepoTags"), *t;
	json_array_foreach(tags, i, t)
	{
		if (!add_ref(json_object_get(img, "refs"), json_string_value(t)))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: RepoTags '%.300s' is not an image reference",
					    s->path,
					    json_string_value(t) ? json_string_value(t) : "?");
	}
	return 0;
}

/* The images of the archive: [{key, manifest | built, config, blobs, layers, refs}]. */
static int find_images(src_t *s, json_t *images, ac_error_t **err)
{
	ac_error_t *e = NULL;
	member_t *index = get(s, "index.json", &e), *dm;
	if (!index && !(e && e->kind == AC_ERR_NOT_FOUND)) {
		*err = e;
		return -1;
	}
	ac_error_free(e);
	e = NULL;
	dm = get(s, "manifest.json", &e);
	if (!dm && !(e && e->kind == AC_ERR_NOT_FOUND)) {
		*err = e;
		return -1;
	}
	ac_error_free(e);
	if (!index && !dm)
		return ac_error_set(
		    err, AC_ERR_INVALID, 0,
		    "%s is neither a docker save archive (manifest.json) nor an OCI "
		    "image layout (index.json)",
		    s->path);
	json_t *docker = NULL;
	if (dm) {
		json_error_t je;
		docker = json_loadb(dm->data, dm->len, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_array(docker) || json_array_size(docker) > IMAGES_MAX) {
			json_decref(docker);
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "%s: manifest.json is not an array of at most %d images", s->path,
			    IMAGES_MAX);
		}
	}
	int rc = 0;
	if (index) {
		/* Tags by config hex, from manifest.json when both are there (docker 25+). */
		json_t *tags = json_object(), *ent;
		size_t i;
		json_array_foreach(docker, i, ent)
		{
			char name[PATH_MAX_ + 1];
			const char *c = json_string_value(json_object_get(ent, "Config"));
			member_t *cfg = NULL;
			ac_error_t *e2 = NULL;
			/* Not read for the layers (index.json says them), but refused all the
			 * same when it names paths outside the archive. */
			json_t *l;
			size_t k;
			json_array_foreach(json_object_get(ent, "Layers"), k, l)
			{
				if (rc == 0 && meta_path("a layer", json_string_value(l), name,
							 sizeof(name), err) < 0)
					rc = -1;
			}
			if (rc == 0 && meta_path("Config", c, name, sizeof(name), err) < 0)
				rc = -1;
			if (rc == 0 && (cfg = get(s, name, &e2)) &&
			    json_is_array(json_object_get(ent, "RepoTags")))
				json_object_set(tags, cfg->hex, json_object_get(ent, "RepoTags"));
			ac_error_free(e2);
		}
		if (rc == 0)
			rc = from_index(s, index, tags, images, err);
		json_decref(tags);
	} else {
		size_t i;
		json_t *ent;
		json_array_foreach(docker, i, ent)
		{
			if ((rc = from_docker_entry(s, ent, images, err)) < 0)
				break;
		}
	}
	json_decref(docker);
	if (rc == 0 && !json_array_size(images))
		rc = ac_error_set(err, AC_ERR_INVALID, 0, "%s holds no image", s->path);
	if (rc == 0 && json_array_size(images) > IMAGES_MAX)
		rc = ac_error_set(err, AC_ERR_INVALID, 0, "%s holds more than %d images", s->path,
				  IMAGES_MAX);
	return rc;
}

/* Stores one image found by find_images and commits it under refs. */
static int store_image(src_t *s, json_t *img, const char *ref, json_t **record, ac_error_t **err)
{
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(img, "blobs"), i, b)
	{
		member_t *mb = get(s, json_string_value(b), err);
		if (!mb)
			return -1;
		if (mb->copied && !mb->installed) {
			if (ac_image_blob_install(s->storefd, mb->tmp, mb->hex, err) < 0)
				return -1;
			mb->installed = true;
		}
	}
	char md[80];
	const char *built = json_string_value(json_object_get(img, "built"));
	if (built) {
		if (ac_image_blob_put(s->home, built, strlen(built), NULL, md, err) < 0)
			return -1;
	} else {
		member_t *man = get(s, json_string_value(json_object_get(img, "manifest")), err);
		if (!man)
			return -1;
		snprintf(md, sizeof(md), "sha256:%s", man->hex);
	}
	json_array_foreach(json_object_get(img, "layers"), i, b)
	{
		uint64_t size = 0;
		if (ac_image_layer_ensure(s->home, json_string_value(b), &size, err) < 0)
			return -1;
	}
	json_t *refs = json_object_get(img, "refs");
	if (ref || !json_array_size(refs))
		return ac_image_commit(s->home, md, ref, "oci", NULL, record, err);
	json_array_foreach(refs, i, b)
	{
		json_t *rec = NULL;
		if (ac_image_commit(s->home, md, json_string_value(b), "oci", NULL, &rec, err) < 0)
			return -1;
		json_decref(*record);
		*record = rec;
	}
	return 0;
}

int ac_image_import(const char *home, const char *path, const char *ref, json_t **records,
		    ac_error_t **err)
{
	char canon[700];
	if (ref) {
		ac_image_ref_t r;
		if (ac_image_ref_parse(ref, &r, err) < 0)
			return -1;
		ac_image_ref_format(&r, canon, sizeof(canon));
		ref = canon;
	}
	bool std_in = !strcmp(path, "-");
	_cleanup_close_ int fd = std_in ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INVALID, errno,
				    "cannot open %s", std_in ? "standard input" : path);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s is not a tar file or an OCI image layout directory", path);
	if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	_cleanup_close_ int storefd = ac_image_open_store(home, err);
	if (storefd < 0)
		return -1;
	src_t s = {.home = home,
		   .path = std_in ? "standard input" : path,
		   .storefd = storefd,
		   .dirfd = S_ISDIR(st.st_mode) ? fd : -1,
		   .names = json_object()};
	json_t *images = json_array(), *out = json_array();
	int rc = 0;
	if (s.dirfd >= 0) {
		ac_error_t *e = NULL;
		member_t *lay = get(&s, "oci-layout", &e);
		if (!lay && !(e && e->kind == AC_ERR_NOT_FOUND)) {
			*err = e;
			rc = -1;
		} else {
			ac_error_free(e);
		}
	} else {
		rc = read_tar(&s, fd, err);
	}
	if (rc == 0)
		rc = find_images(&s, images, err);
	if (rc == 0 && ref && json_array_size(images) > 1)
		rc = ac_error_set(err, AC_ERR_INVALID, 0,
				  "%s holds %zu images: import it without a reference (each "
				  "keeps its own tags)",
				  s.path, json_array_size(images));
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
	{
		json_t *rec = NULL;
		if (rc < 0)
			break;
		rc = store_image(&s, img, ref, &rec, err);
		if (rec)
			json_array_append_new(out, rec);
	}
	for (size_t k = 0; k < s.n; k++)
		member_free(&s, s.m[k]);
	free(s.m);
	json_decref(s.names);
	json_decref(images);
	if (rc < 0) {
		json_decref(out);
		return -1;
	}
	*records = out;
	return 0;
}

/* ------------------------------------------------------------------ export */

typedef struct tarw {
	struct archive *a;
	struct archive_entry *e;
	const char *path;
} tarw_t;

static int put_header(tarw_t *t, const char *name, uint64_t size, ac_error_t **err)
{
	ac_ar.archive_entry_clear(t->e);
	ac_ar.archive_entry_set_pathname(t->e, name);
	ac_ar.archive_entry_set_filetype(t->e, AE_IFREG);
	ac_ar.archive_entry_set_perm(t->e, 0644);
	ac_ar.archive_entry_set_size(t->e, (la_int64_t)size);
	ac_ar.archive_entry_set_mtime(t->e, 0, 0);
	if (ac_ar.archive_write_header(t->a, t->e) != ARCHIVE_OK)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot write %s: %s", t->path,
				    tar_error(t->a));
	return 0;
}

static int put_data(tarw_t *t, const void *buf, size_t len, ac_error_t **err)
{
	while (len) {
		la_ssize_t n = ac_ar.archive_write_data(t->a, buf, len);
		if (n <= 0)
			return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot write %s: %s", t->path,
					    tar_error(t->a));
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

static int put_json(tarw_t *t, const char *name, json_t *j, ac_error_t **err)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	int rc =
	    put_header(t, name, strlen(text), err) < 0 || put_data(t, text, strlen(text), err) < 0
		? -1
		: 0;
	free(text);
	return rc;
}

/* Copies blobs/sha256/<hex of digest> into the tar as the same name, checking that the
 * store still holds what it said (the size). */
static int put_blob(tarw_t *t, int storefd, const char *digest, ac_error_t **err)
{
	const char *hex = ac_image_digest_hex(digest);
	if (!hex)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad digest '%s' in a record", digest);
	char rel[128];
	ac_image_blob_path(hex, rel, sizeof(rel));
	_cleanup_close_ int fd = openat(storefd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "blob %s is not in the store (pull the image again)", digest);
	if (put_header(t, rel, (uint64_t)st.st_size, err) < 0)
		return -1;
	_cleanup_free_ char *buf = malloc(1 << 20);
	AC_ANALYZER_OWNED(buf);
	if (!buf)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	uint64_t left = (uint64_t)st.st_size;
	while (left) {
		ssize_t n = read(fd, buf, left < (1 << 20) ? left : (1 << 20));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ac_error_set(err, AC_ERR_INTERNAL, n < 0 ? errno : EIO,
					    "cannot read blob %s", digest);
		if (put_data(t, buf, (size_t)n, err) < 0)
			return -1;
		left -= (uint64_t)n;
	}
	return 0;
}

/* index.json and manifest.json of the export. */
static void export_meta(const json_t *rec, uint64_t msize, json_t **index, json_t **docker)
{
	const char *md = json_string_value(json_object_get(rec, "manifest_digest"));
	const char *mt = json_string_value(json_object_get(rec, "manifest_media_type"));
	json_t *ms = json_array(), *tags = json_array(), *layers = json_array(), *r;
	size_t i;
	json_array_foreach(json_object_get(rec, "refs"), i, r)
	{
		ac_image_ref_t p;
		ac_error_t *e = NULL;
		if (ac_image_ref_parse(json_string_value(r), &p, &e) < 0 || !p.tag[0]) {
			ac_error_free(e);
			continue;
		}
		p.digest[0] = 0;
		char name[700];
		ac_image_ref_format(&p, name, sizeof(name));
		json_array_append_new(tags, json_string(name));
		json_array_append_new(ms, json_pack("{ss ss sI s{ss ss}}", "mediaType",
						    mt ? mt : AC_MT_OCI_MANIFEST, "digest", md,
						    "size", (json_int_t)msize, "annotations",
						    ANN_CONTAINERD, name, ANN_REF, p.tag));
	}
	if (!json_array_size(ms))
		json_array_append_new(ms, json_pack("{ss ss sI}", "mediaType",
						    mt ? mt : AC_MT_OCI_MANIFEST, "digest", md,
						    "size", (json_int_t)msize));
	json_array_foreach(json_object_get(rec, "layers"), i, r)
	{
		const char *hex =
		    ac_image_digest_hex(json_string_value(json_object_get(r, "digest")));
		json_array_append_new(layers, json_sprintf("blobs/sha256/%s", hex ? hex : "?"));
	}
	const char *id = ac_image_digest_hex(json_string_value(json_object_get(rec, "id")));
	*index = json_pack("{si ss so}", "schemaVersion", 2, "mediaType", AC_MT_OCI_INDEX,
			   "manifests", ms);
	*docker =
	    json_pack("[{so so so}]", "Config", json_sprintf("blobs/sha256/%s", id ? id : "?"),
		      "RepoTags", tags, "Layers", layers);
}

static int write_export(int storefd, const json_t *rec, int out, const char *path, ac_error_t **err)
{
	const char *md = json_string_value(json_object_get(rec, "manifest_digest"));
	const char *id = json_string_value(json_object_get(rec, "id"));
	char rel[128];
	struct stat st;
	if (!ac_image_digest_hex(md) || !ac_image_digest_hex(id))
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the image's record is incomplete");
	ac_image_blob_path(ac_image_digest_hex(md), rel, sizeof(rel));
	if (fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "manifest %s is not in the store (pull the image again)", md);
	json_t *index = NULL, *docker = NULL;
	export_meta(rec, (uint64_t)st.st_size, &index, &docker);
	tarw_t t = {.a = ac_ar.archive_write_new(), .e = ac_ar.archive_entry_new(), .path = path};
	int rc = -1;
	/* No padding to a 10 KiB block whatever out is: the same bytes to a file or a pipe. */
	if (!t.a || !t.e || ac_ar.archive_write_set_format_pax_restricted(t.a) != ARCHIVE_OK ||
	    ac_ar.archive_write_set_bytes_in_last_block(t.a, 1) != ARCHIVE_OK ||
	    ac_ar.archive_write_open_fd(t.a, out) != ARCHIVE_OK) {
		json_decref(index);
		json_decref(docker);
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot write %s", path);
		goto out;
	}
	if (put_json(&t, "oci-layout", json_pack("{ss}", "imageLayoutVersion", "1.0.0"), err) < 0 ||
	    put_json(&t, "index.json", index, err) < 0 ||
	    put_json(&t, "manifest.json", docker, err) < 0 || put_blob(&t, storefd, md, err) < 0 ||
	    put_blob(&t, storefd, id, err) < 0)
		goto out;
	json_t *layers = json_object_get(rec, "layers"), *l;
	size_t i;
	json_array_foreach(layers, i, l)
	{
		const char *d = json_string_value(json_object_get(l, "digest"));
		bool dup = !strcmp(d ? d : "", id);
		for (size_t k = 0; k < i && !dup; k++)
			dup = !strcmp(d, json_string_value(
					     json_object_get(json_array_get(layers, k), "digest")));
		if (!dup && put_blob(&t, storefd, d ? d : "", err) < 0)
			goto out;
	}
	if (ac_ar.archive_write_close(t.a) != ARCHIVE_OK) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot write %s: %s", path, tar_error(t.a));
		goto out;
	}
	rc = 0;
out:
	if (t.a)
		ac_ar.archive_write_free(t.a);
	if (t.e)
		ac_ar.archive_entry_free(t.e);
	return rc;
}

int ac_image_export(const char *home, const char *name, const char *path, ac_error_t **err)
{
	json_t *rec = NULL;
	if (ac_ar_load(err) < 0 || ac_image_lookup(home, name, false, &rec, err) < 0)
		return -1;
	_cleanup_close_ int storefd = ac_image_open_store(home, err);
	if (storefd < 0) {
		json_decref(rec);
		return -1;
	}
	int rc;
	if (!strcmp(path, "-")) {
		if (isatty(1)) {
			json_decref(rec);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "refusing to write a tar archive to a terminal "
					    "(redirect standard output or give a file)");
		}
		rc = write_export(storefd, rec, 1, "standard output", err);
		json_decref(rec);
		return rc;
	}
	/* A regular file appears whole or not at all: written beside it, then renamed. */
	struct stat st;
	bool special = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
	char tmp[PATH_MAX_ + 64];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	const char *target = special ? path : tmp;
	_cleanup_close_ int fd = open(
	    target, O_WRONLY | O_CLOEXEC | O_NOCTTY | (special ? 0 : O_CREAT | O_EXCL | O_TRUNC),
	    0644);
	if (fd < 0) {
		json_decref(rec);
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INVALID, errno,
				    "cannot create %s", path);
	}
	rc = write_export(storefd, rec, fd, path, err);
	json_decref(rec);
	if (rc == 0 && !special && (fsync(fd) < 0 || rename(tmp, path) < 0))
		rc = ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write %s", path);
	if (rc < 0 && !special)
		unlink(tmp);
	return rc;
}
