/* The command policy ([security.commands] allow / block / allowlist_only), enforced where
 * programs are executed, not by looking at argv[0]: `sh -c blocked`, `/usr/bin/env
 * blocked`, a symlink or a hard link to it all meet the same wall.
 *   block: the builder bind-mounts an empty mode-0000 file owned by host root (which the
 *          sandbox cannot chmod, execute, or unmount) over
 *          - every path of the sandbox's PATH directories that reaches a blocked program,
 *            hard links included, and every versioned name of it there (perl5.36-...,
 *            python3.11: wrappers that are not the same bytes);
 *          - every regular file of the read-only layers (the host's /usr and top-level
 *            lib/bin directories, or the image directory, and every image layer above
 *            them or alone: see "Sources" below) with the same content as a blocked
 *            program, wherever it lives (/usr/lib/git-core/git is a copy of
 *            /usr/bin/git). Finding those means reading the whole tree (~1 s for the
 *            host's /usr), so the list is cached: see "Copies" below.
 *          What block cannot reach: programs the sandbox writes or downloads itself, an
 *          interpreter under an unrelated name, a library that embeds it.
 *   allowlist_only: init restricts execution with Landlock (LANDLOCK_ACCESS_FS_EXECUTE)
 *          to the allowed programs and the ELF loader; every other execve fails EACCES.
 *          This is the only mode that guarantees nothing else executes.
 * ac_policy_check gives a clear error for a command that names a refused program.
 * Over ~800 lines: the copy finder (sources, their union, the scan and its cache) shares
 * this file's private types and is only ever used by ac_policy_mask. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "runtime/layers.h"
#include "runtime/policy.h"

static const char *path_dirs[] = {AC_PATH_DIRS};

static const char *base_of(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

static bool listed(char **list, const char *argv0)
{
	for (char **l = list; l && *l; l++)
		if (!strcmp(*l, argv0) || (!strchr(*l, '/') && !strcmp(*l, base_of(argv0))))
			return true;
	return false;
}

/* name is the blocked name followed by a version: perl5.36, perl5.36-x86_64-linux-gnu,
 * python3.11, gcc-12, node18. A name followed by a letter (perldoc, gitk) is another
 * program. */
static bool versioned(const char *blocked, const char *name)
{
	size_t n = strlen(blocked);
	if (!n || strchr(blocked, '/') || strncmp(name, blocked, n))
		return false;
	const char *v = name + n;
	if (*v == '.' || *v == '-')
		v++;
	return *v >= '0' && *v <= '9';
}

static bool blocked(char **list, const char *argv0)
{
	if (listed(list, argv0))
		return true;
	for (char **l = list; l && *l; l++)
		if (versioned(*l, base_of(argv0)))
			return true;
	return false;
}

int ac_policy_check(const ac_rt_spec_t *spec, const char *argv0)
{
	if (!spec || !argv0)
		return 0;
	if (blocked(spec->block, argv0))
		return -EPERM;
	if (spec->allowlist_only && !listed(spec->allow, argv0))
		return -EPERM;
	return 0;
}

static int open_how_in(int rootfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd;
}

static int open_in(int rootfd, const char *path, int flags)
{
	return open_how_in(rootfd, path, flags, 0);
}

typedef struct id {
	dev_t dev;
	ino_t ino;
} id_t_;

static int mask_fd(int fd, const char *mask, ac_error_t **err)
{
	char self[64], real[4096];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(self, real, sizeof(real) - 1);
	if (n < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot locate a blocked program");
	real[n] = 0;
	if (mount(mask, real, NULL, MS_BIND, NULL) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot mask %s", real);
	return 0;
}

/* --- Copies: files of the read-only layers with a blocked program's content ---
 *
 * The list is computed by walking the layers (never following a symlink, never entering
 * another file system, /proc, /sys or /dev; a regular file is read only when its size is
 * a blocked program's) and cached, one list per source (see "Sources" below), in
 * $AGENTCELL_HOME/base/commands-<config>-<key>.masks: <config> hashes the image (or the
 * layer's path) and the block list (and the targets found in layers), <key> also hashes
 * what the source's content is made of:
 *   - each blocked program as found in the layers: device, inode, size, mtime, ctime;
 *   - the package databases (var/lib/dpkg/status, lib/apk/db/installed, var/lib/rpm):
 *     device, inode, size, mtime, ctime. Every package install, upgrade or removal
 *     rewrites one of them;
 *   - the layer's root and the usual program and library directories (usr, usr/bin,
 *     usr/lib, usr/libexec, usr/local/..., opt, ...): their mtime changes when an entry
 *     is added or removed there, which catches most installs that bypass the package
 *     manager (pip, make install into /usr/local).
 * That is enough for what the layers are: the host's /usr changes through its package
 * manager, an image directory is an unpacked image that is not edited in place. A copy
 * put deep into an existing directory by hand, without touching any of the above, is not
 * seen until the key changes (the sandbox itself cannot write to these layers).
 * A cache entry is trusted only when the file is still there with the listed size, the
 * file's checksum matches and it belongs to us; otherwise the list is computed again:
 * a stale or damaged cache never masks less. The cache of an older key for the same
 * image and block list is deleted when a new one is written. */

#define MASKS_MAGIC    "agentcell-command-masks 1"
#define MASKS_MAX      4096
#define TARGETS_MAX    256
#define SCAN_MAX_FILES (8u << 20)
#define SCAN_MAX_DEPTH 256
#define CACHE_MAX      (16u << 20)
#define CMP_CHUNK      65536

/* The host directories rootfs.c mounts as the sandbox's read-only layers (the base
 * skeleton itself holds only the filtered /etc and mount points); those that are
 * symlinks into /usr are skipped. */
static const char *host_layers[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static const char *key_paths[] = {".",
				  "var/lib/dpkg/status",
				  "lib/apk/db/installed",
				  "var/lib/rpm",
				  "usr",
				  "usr/bin",
				  "usr/sbin",
				  "usr/lib",
				  "usr/lib64",
				  "usr/libexec",
				  "usr/local",
				  "usr/local/bin",
				  "usr/local/sbin",
				  "usr/local/lib",
				  "opt",
				  "bin",
				  "sbin"};

typedef struct target {
	dev_t dev;
	ino_t ino;
	off_t size;
	int fd;	    /* open for reading */
	bool layer; /* found in an image layer (not the base) */
} target_t;

typedef struct entry {
	char *path; /* relative to the sandbox root */
	off_t size;
} entry_t;

typedef struct masks {
	entry_t *e;
	size_t n, cap;
} masks_t;

static void masks_clear(masks_t *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].path);
	free(m->e);
	m->e = NULL;
	m->n = m->cap = 0;
}

static int masks_add(masks_t *m, const char *path, off_t size, ac_error_t **err)
{
	if (m->n >= MASKS_MAX)
		return ac_error_set(err, AC_ERR_BACKEND, E2BIG,
				    "the command policy found more than %d copies of blocked "
				    "programs",
				    MASKS_MAX);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		entry_t *e = realloc(m->e, cap * sizeof(*e));
		if (!e)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		m->e = e;
		m->cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	m->e[m->n++] = (entry_t){p, size};
	return 0;
}

static void mix(uint64_t *h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
}

static void mix_u64(uint64_t *h, uint64_t v)
{
	mix(h, &v, sizeof(v));
}

static void mix_stat(uint64_t *h, const struct stat *st)
{
	mix_u64(h, (uint64_t)st->st_dev);
	mix_u64(h, (uint64_t)st->st_ino);
	mix_u64(h, (uint64_t)st->st_mode);
	mix_u64(h, (uint64_t)st->st_size);
	mix_u64(h, (uint64_t)st->st_mtim.tv_sec);
	mix_u64(h, (uint64_t)st->st_mtim.tv_nsec);
	mix_u64(h, (uint64_t)st->st_ctim.tv_sec);
	mix_u64(h, (uint64_t)st->st_ctim.tv_nsec);
}

/* --- Sources: the read-only trees the sandbox's root is made of ---
 *
 * Top first: the image layers (spec->layers, the top layer first), then the base: the
 * host's "/" for "host" (its usr, bin, sbin and lib* are scanned), an image directory,
 * or none for "oci" (layers alone). A blocked program as the sandbox sees it (a target)
 * is resolved in their union the way overlayfs stacks them: in each directory the
 * topmost entry wins, a whiteout (a 0/0 character device) hides the name below it, a
 * layer's opaque directory (trusted.overlay.opaque=y) hides the directories below it,
 * symlinks are followed in the union. Only these trees are consulted, never the merged
 * root: the sandbox's own writable layer cannot redirect a target. Each source is scanned
 * and cached on its own (a layer's paths are paths in the sandbox's root; a layer is
 * content-addressed and never edited, so its list is made once per block list and set
 * of targets) and the lists are joined; the mask loop skips a path the merged root does
 * not show as a regular file (a whiteout above deleted it). */

#define SOURCES_MAX (AC_RT_LAYERS_MAX + 1)
#define LINKS_MAX   40

typedef struct source {
	const char *name; /* in the cache's config: a layer's path, or spec->image */
	int fd;		  /* O_PATH directory */
	bool layer, host;
} source_t;

typedef struct sources {
	source_t s[SOURCES_MAX];
	size_t n;
} sources_t;

static void sources_close(sources_t *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		close(ss->s[i].fd);
	ss->n = 0;
}

static int sources_open(const ac_rt_spec_t *spec, sources_t *ss, ac_error_t **err)
{
	ss->n = 0;
	const size_t nl = ac_layers_count(spec);
	if (nl > AC_RT_LAYERS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "an image may have at most %d layers",
				    AC_RT_LAYERS_MAX);
	for (size_t i = nl; i-- > 0;) {
		int fd = open(spec->layers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			sources_close(ss);
			return ac_error_set(err, AC_ERR_NOT_FOUND, e,
					    "image layer %s is missing from the image store",
					    spec->layers[i]);
		}
		ss->s[ss->n++] = (source_t){spec->layers[i], fd, true, false};
	}
	if (strcmp(spec->image, "oci")) {
		const bool host = !strcmp(spec->image, "host");
		const char *dir = host ? "/" : spec->image;
		int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			sources_close(ss);
			return ac_error_set(err, AC_ERR_BACKEND, e, "open %s", dir);
		}
		ss->s[ss->n++] = (source_t){spec->image, fd, false, host};
	}
	return 0;
}

static bool opaque_dir(int fd)
{
	char v[2];
	return fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

static void close_dirs(const sources_t *ss, int *d)
{
	for (size_t i = 0; i < ss->n; i++)
		if (d[i] >= 0 && d[i] != ss->s[i].fd)
			close(d[i]);
}

/* path (absolute in the sandbox) resolved in the union of ss as overlayfs shows it: an
 * O_PATH descriptor of the regular file it reaches (*which: its source), or -1. Never
 * enters /proc, /sys or /dev (the sandbox has its own). */
static int union_open(const sources_t *ss, const char *path, size_t *which)
{
	char buf[4096], canon[4096], next[8192], c[256];
	int dirs[SOURCES_MAX], links = 0, found = -1;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
restart:
	for (size_t i = 0; i < ss->n; i++)
		dirs[i] = ss->s[i].fd;
	canon[0] = 0;
	for (const char *p = buf;;) {
		p += strspn(p, "/");
		if (!*p)
			break; /* a directory */
		const char *after = strchrnul(p, '/');
		const size_t cl = (size_t)(after - p);
		if (cl >= sizeof(c))
			break;
		memcpy(c, p, cl);
		c[cl] = 0;
		p = after;
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			/* canon holds no symlink: its parent is textual. */
			char *slash = strrchr(canon, '/');
			*(slash ? slash : canon) = 0;
			if (snprintf(next, sizeof(next), "%s%s", canon, after) >= (int)sizeof(buf))
				break;
			goto again;
		}
		if (!canon[0] && (!strcmp(c, "proc") || !strcmp(c, "sys") || !strcmp(c, "dev")))
			break;
		size_t top = ss->n;
		struct stat st;
		for (size_t i = 0; i < ss->n && top == ss->n; i++)
			if (dirs[i] >= 0 && fstatat(dirs[i], c, &st, AT_SYMLINK_NOFOLLOW) == 0)
				top = i;
		if (top == ss->n || (S_ISCHR(st.st_mode) && st.st_rdev == 0))
			break; /* absent, or a whiteout */
		if (S_ISLNK(st.st_mode)) {
			char tgt[4096];
			ssize_t n = readlinkat(dirs[top], c, tgt, sizeof(tgt) - 1);
			if (n <= 0 || ++links > LINKS_MAX)
				break;
			tgt[n] = 0;
			int w = tgt[0] == '/'
				    ? snprintf(next, sizeof(next), "%s%s", tgt, after)
				    : snprintf(next, sizeof(next), "%s/%s%s", canon, tgt, after);
			if (w < 0 || w >= (int)sizeof(buf))
				break;
			goto again;
		}
		if (S_ISREG(st.st_mode)) {
			if (!*after &&
			    (found = openat(dirs[top], c, O_PATH | O_NOFOLLOW | O_CLOEXEC)) >= 0)
				*which = top;
			break;
		}
		if (!S_ISDIR(st.st_mode))
			break;
		/* The directory here: the topmost one merged with those below it, down to an
		 * opaque directory or a non-directory (a whiteout, a file) that hides the rest. */
		int nd[SOURCES_MAX];
		for (size_t i = 0; i < ss->n; i++)
			nd[i] = -1;
		for (size_t i = top; i < ss->n; i++) {
			struct stat ls;
			if (dirs[i] < 0)
				continue;
			if (i > top && fstatat(dirs[i], c, &ls, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (i > top && !S_ISDIR(ls.st_mode))
				break;
			nd[i] = openat(dirs[i], c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nd[i] < 0 || (ss->s[i].layer && opaque_dir(nd[i])))
				break;
		}
		close_dirs(ss, dirs);
		memcpy(dirs, nd, sizeof(dirs[0]) * ss->n);
		const size_t at = strlen(canon);
		if (dirs[top] < 0 || at + 1 + cl >= sizeof(canon))
			break;
		canon[at] = '/';
		memcpy(canon + at + 1, c, cl + 1);
	}
	close_dirs(ss, dirs);
	return found;
again:
	close_dirs(ss, dirs);
	memmove(buf, next, strlen(next) + 1);
	goto restart;
}

/* The blocked programs as the read-only sources hold them (the union's topmost file),
 * open for reading. */
static size_t find_targets(const ac_rt_spec_t *spec, const sources_t *ss, target_t *t)
{
	size_t n = 0;
	for (char **b = spec->block; *b; b++) {
		for (size_t d = 0; d < AC_ARRAY_SIZE(path_dirs) && n < TARGETS_MAX; d++) {
			char p[4200];
			if ((*b)[0] == '/') {
				if (d > 0)
					break;
				snprintf(p, sizeof(p), "%s", *b);
			} else {
				snprintf(p, sizeof(p), "%s/%s", path_dirs[d], *b);
			}
			/* One source (no layers): resolved in it as before. */
			size_t which = 0;
			_cleanup_close_ int pfd = ss->n == 1 ? open_in(ss->s[0].fd, p, O_PATH)
							     : union_open(ss, p, &which);
			struct stat st;
			if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode) || !st.st_size)
				continue;
			bool seen = false;
			for (size_t i = 0; i < n; i++)
				seen = seen || (t[i].dev == st.st_dev && t[i].ino == st.st_ino);
			if (seen)
				continue;
			char self[64];
			snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
			int fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0)
				continue;
			t[n++] =
			    (target_t){st.st_dev, st.st_ino, st.st_size, fd, ss->s[which].layer};
		}
	}
	return n;
}

/* config: the source, the block list and the targets that live in layers (immutable:
 * another set of them is another list, kept next to this one, so that images sharing a
 * layer do not evict each other's); key: config, the source's key paths and every
 * target's state. Without layers, the same names as before layers existed. */
static void cache_names(const ac_rt_spec_t *spec, const source_t *src, const target_t *t, size_t nt,
			uint64_t *config, uint64_t *key)
{
	uint64_t h = 1469598103934665603ull;
	mix(&h, MASKS_MAGIC, sizeof(MASKS_MAGIC));
	mix(&h, src->name, strlen(src->name) + 1);
	for (char **b = spec->block; *b; b++)
		mix(&h, *b, strlen(*b) + 1);
	for (size_t i = 0; i < nt; i++) {
		struct stat st;
		if (t[i].layer && fstat(t[i].fd, &st) == 0)
			mix_stat(&h, &st);
	}
	*config = h;
	for (size_t i = 0; i < AC_ARRAY_SIZE(key_paths); i++) {
		_cleanup_close_ int fd = open_in(src->fd, key_paths[i], O_PATH | O_NOFOLLOW);
		struct stat st;
		mix(&h, key_paths[i], strlen(key_paths[i]) + 1);
		if (fd >= 0 && fstat(fd, &st) == 0)
			mix_stat(&h, &st);
	}
	for (size_t i = 0; i < nt; i++) {
		struct stat st;
		if (fstat(t[i].fd, &st) == 0)
			mix_stat(&h, &st);
	}
	*key = h;
}

/* Paths are stored one a line: '%' and newline are escaped. */
static void put_escaped(char *out, const char *p)
{
	for (; *p; p++) {
		if (*p == '%' || *p == '\n') {
			sprintf(out, "%%%02X", (unsigned char)*p);
			out += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
}

static bool unescape(char *p)
{
	char *o = p;
	for (; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		if (!strncmp(p, "%25", 3))
			*o++ = '%';
		else if (!strncmp(p, "%0A", 3))
			*o++ = '\n';
		else
			return false;
		p += 2;
	}
	*o = 0;
	return true;
}

static int write_cache(const char *home, uint64_t config, uint64_t key, const masks_t *m)
{
	size_t cap = 128;
	for (size_t i = 0; i < m->n; i++)
		cap += 24 + 3 * strlen(m->e[i].path) + 1;
	_cleanup_free_ char *buf = malloc(cap);
	AC_ANALYZER_OWNED(buf);
	if (!buf)
		return -1;
	/* The body first, then the header (with the body's checksum) in front of it. */
	size_t hdr = 96, len = hdr;
	for (size_t i = 0; i < m->n; i++) {
		len += (size_t)sprintf(buf + len, "%lld ", (long long)m->e[i].size);
		put_escaped(buf + len, m->e[i].path);
		len += strlen(buf + len);
		buf[len++] = '\n';
	}
	uint64_t sum = key;
	mix(&sum, buf + hdr, len - hdr);
	char head[96];
	int hl = snprintf(head, sizeof(head), MASKS_MAGIC "\n%016llx %zu %016llx\n",
			  (unsigned long long)key, m->n, (unsigned long long)sum);
	memcpy(buf + hdr - (size_t)hl, head, (size_t)hl);
	char path[4300];
	snprintf(path, sizeof(path), "%s/base/commands-%016llx-%016llx.masks", home,
		 (unsigned long long)config, (unsigned long long)key);
	if (ac_write_file_atomic_at(AT_FDCWD, path, buf + hdr - hl, len - hdr + (size_t)hl, 0600,
				    NULL) < 0)
		return -1;
	/* Older lists of the same image and block list. */
	char dir[4200], prefix[64];
	snprintf(dir, sizeof(dir), "%s/base", home);
	snprintf(prefix, sizeof(prefix), "commands-%016llx-", (unsigned long long)config);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	const char *mine = strrchr(path, '/') + 1;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && strcmp(de->d_name, mine))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

/* 0 with the cached list when it is there, intact and still true of the layers; -1
 * otherwise (the caller scans). */
static int read_cache(const char *home, uint64_t config, uint64_t key, int srcfd, masks_t *m)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/base/commands-%016llx-%016llx.masks", home,
		 (unsigned long long)config, (unsigned long long)key);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_size <= 0 || st.st_size > CACHE_MAX)
		return -1;
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf || ac_read_all(fd, buf, (size_t)st.st_size) != st.st_size)
		return -1;
	buf[st.st_size] = 0;
	if (strlen(buf) != (size_t)st.st_size)
		return -1;
	char *body = strchr(buf, '\n');
	if (!body || (size_t)(body - buf) != strlen(MASKS_MAGIC) ||
	    strncmp(buf, MASKS_MAGIC, strlen(MASKS_MAGIC)))
		return -1;
	unsigned long long k, sum;
	size_t count;
	int used = 0;
	if (sscanf(body + 1, "%16llx %zu %16llx\n%n", &k, &count, &sum, &used) != 3 || !used ||
	    k != key || count > MASKS_MAX)
		return -1;
	body += 1 + used;
	uint64_t h = key;
	mix(&h, body, strlen(body));
	if (h != sum)
		return -1;
	for (char *line = body, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			goto stale;
		*nl = 0;
		char *sp = strchr(line, ' ');
		uint64_t size;
		if (!sp)
			goto stale;
		*sp = 0;
		if (ac_parse_u64(line, 1, INT64_MAX, &size) < 0 || !unescape(sp + 1) ||
		    sp[1] == '/' || !sp[1])
			goto stale;
		/* Still there with the listed size: else the layers changed under the key. */
		_cleanup_close_ int f =
		    open_how_in(srcfd, sp + 1, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
		struct stat fst;
		if (f < 0 || fstat(f, &fst) < 0 || !S_ISREG(fst.st_mode) ||
		    (uint64_t)fst.st_size != size || masks_add(m, sp + 1, (off_t)size, NULL) < 0)
			goto stale;
	}
	if (m->n != count)
		goto stale;
	return 0;
stale:
	masks_clear(m);
	return -1;
}

typedef struct scan {
	const target_t *t;
	size_t nt;
	masks_t *m;
	size_t files;
	dev_t dev;
	bool image;
	unsigned char *buf; /* 2 * CMP_CHUNK */
	char path[4096];
	ac_error_t **err;
} scan_t;

static bool same_content(scan_t *s, int fd, const target_t *t)
{
	unsigned char *a = s->buf, *b = s->buf + CMP_CHUNK;
	for (off_t off = 0; off < t->size;) {
		size_t want =
		    (size_t)(t->size - off) < CMP_CHUNK ? (size_t)(t->size - off) : CMP_CHUNK;
		ssize_t ra = pread(fd, a, want, off), rb = pread(t->fd, b, want, off);
		if (ra != (ssize_t)want || rb != (ssize_t)want || memcmp(a, b, want))
			return false;
		off += (off_t)want;
	}
	return true;
}

static int scan_file(scan_t *s, int dfd, const char *name, const struct stat *st)
{
	if (++s->files > SCAN_MAX_FILES)
		return ac_error_set(s->err, AC_ERR_BACKEND, E2BIG,
				    "the command policy cannot scan more than %u files",
				    SCAN_MAX_FILES);
	_cleanup_close_ int fd = -1;
	for (size_t i = 0; i < s->nt; i++) {
		const target_t *t = &s->t[i];
		if (st->st_dev == t->dev && st->st_ino == t->ino)
			return masks_add(s->m, s->path, st->st_size, s->err);
		if (st->st_size != t->size)
			continue;
		if (fd < 0) {
			fd = openat(dfd, name,
				    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
			struct stat fst;
			if (fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode))
				return 0;
		}
		if (same_content(s, fd, t))
			return masks_add(s->m, s->path, st->st_size, s->err);
	}
	return 0;
}

/* Walks dfd (which it closes), whose path relative to the sandbox root is s->path[0,len).
 * Not src/base/walk.c on purpose: this scan reads the whole of /usr at a policy's first
 * start and stays on one file system; it decides from the directory entry's type which
 * entries need a stat and builds the relative path in place, where the generic walker
 * stats and sorts every entry: tens of thousands of needless calls on a /usr. */
static int scan_dir(scan_t *s, int dfd, size_t len, int depth)
{
	if (depth > SCAN_MAX_DEPTH) {
		close(dfd);
		return ac_error_set(s->err, AC_ERR_BACKEND, ELOOP,
				    "the command policy cannot scan %s: nested too deeply",
				    s->path);
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (len == 0 && s->image &&
		    (!strcmp(n, "proc") || !strcmp(n, "sys") || !strcmp(n, "dev")))
			continue;
		size_t nl = strlen(n), at = len ? len + 1 : 0;
		if (at + nl + 1 > sizeof(s->path)) {
			rc = ac_error_set(s->err, AC_ERR_BACKEND, ENAMETOOLONG,
					  "the command policy cannot scan %s/%s: path too long",
					  s->path, n);
			break;
		}
		struct stat st;
		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (len)
			s->path[len] = '/';
		memcpy(s->path + at, n, nl + 1);
		if (S_ISDIR(st.st_mode) && st.st_dev == s->dev) {
			int sub =
			    openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				rc = scan_dir(s, sub, at + nl, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			rc = scan_file(s, dirfd(d), n, &st);
		}
		s->path[len] = 0;
	}
	closedir(d);
	return rc;
}

/* The copies in one source: the host's program and library directories, or the whole
 * tree of an image directory or layer. */
static int scan_source(const source_t *src, const target_t *t, size_t nt, masks_t *m,
		       ac_error_t **err)
{
	_cleanup_free_ unsigned char *buf = malloc(2 * CMP_CHUNK);
	AC_ANALYZER_OWNED(buf);
	if (!buf)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	scan_t s = {.t = t, .nt = nt, .m = m, .buf = buf, .err = err};
	const bool host = src->host;
	s.image = !host;
	const size_t nroots = host ? AC_ARRAY_SIZE(host_layers) : 1;
	for (size_t i = 0; i < nroots; i++) {
		const char *r = host ? host_layers[i] : ".";
		int fd = open_how_in(src->fd, r, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
				     RESOLVE_NO_SYMLINKS);
		struct stat st;
		if (fd < 0)
			continue; /* absent, or a symlink into /usr */
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		s.dev = st.st_dev;
		size_t len = host ? strlen(r) : 0;
		memcpy(s.path, host ? r : "", len + 1);
		if (scan_dir(&s, fd, len, 0) < 0) {
			ac_error_prefix(err, "cannot list the copies of blocked programs");
			return -1;
		}
	}
	return 0;
}

/* The copies of the blocked programs in the sandbox's read-only sources: each source's
 * list from its cache, or by a scan (then cached); joined. */
static int find_copies(const ac_rt_spec_t *spec, masks_t *m, ac_error_t **err)
{
	sources_t ss;
	if (sources_open(spec, &ss, err) < 0)
		return -1;
	target_t t[TARGETS_MAX];
	size_t nt = find_targets(spec, &ss, t);
	int rc = 0;
	for (size_t i = 0; nt && i < ss.n && rc == 0; i++) {
		masks_t one = {0};
		uint64_t config, key;
		cache_names(spec, &ss.s[i], t, nt, &config, &key);
		if (read_cache(spec->home, config, key, ss.s[i].fd, &one) < 0) {
			rc = scan_source(&ss.s[i], t, nt, &one, err);
			/* Best effort: a failure to cache only costs the next start a scan. */
			if (rc == 0)
				write_cache(spec->home, config, key, &one);
		}
		for (size_t j = 0; j < one.n && rc == 0; j++)
			rc = masks_add(m, one.e[j].path, one.e[j].size, err);
		masks_clear(&one);
	}
	for (size_t i = 0; i < nt; i++)
		close(t[i].fd);
	sources_close(&ss);
	if (rc < 0)
		masks_clear(m);
	return rc;
}

int ac_policy_mask(const ac_rt_spec_t *spec, const char *root, const char *staging,
		   ac_error_t **err)
{
	if (!spec->block || !spec->block[0])
		return 0;
	char mask[4200];
	snprintf(mask, sizeof(mask), "%s/blocked-program", staging);
	_cleanup_close_ int mfd = open(mask, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0);
	struct stat mst;
	if (mfd < 0 || fchmod(mfd, 0) < 0 || fstat(mfd, &mst) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot create the program mask");
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "open %s", root);
	id_t_ ids[256];
	size_t nids = 0;
	for (char **b = spec->block; *b && nids < AC_ARRAY_SIZE(ids); b++) {
		const char *cands[AC_ARRAY_SIZE(path_dirs)];
		char paths[AC_ARRAY_SIZE(path_dirs)][512];
		size_t nc = 0;
		if ((*b)[0] == '/') {
			cands[nc++] = *b;
		} else {
			for (size_t d = 0; d < AC_ARRAY_SIZE(path_dirs); d++) {
				snprintf(paths[d], sizeof(paths[d]), "%s/%s", path_dirs[d], *b);
				cands[nc++] = paths[d];
			}
		}
		for (size_t c = 0; c < nc; c++) {
			_cleanup_close_ int fd = open_in(rootfd, cands[c], O_PATH);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
			    (st.st_dev == mst.st_dev && st.st_ino == mst.st_ino))
				continue; /* masked through another name (/bin -> usr/bin) */
			bool seen = false;
			for (size_t i = 0; i < nids; i++)
				seen = seen || (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino);
			if (seen)
				continue; /* already masked through another name */
			ids[nids++] = (id_t_){st.st_dev, st.st_ino};
			if (mask_fd(fd, mask, err) < 0)
				return -1;
		}
	}
	/* Other names of the same files (hard links) and versioned names in the PATH
	 * directories. */
	id_t_ dirs[AC_ARRAY_SIZE(path_dirs)];
	for (size_t d = 0; d < AC_ARRAY_SIZE(path_dirs); d++) {
		int dfd = open_in(rootfd, path_dirs[d], O_RDONLY | O_DIRECTORY);
		struct stat dst;
		if (dfd < 0 || fstat(dfd, &dst) < 0) {
			if (dfd >= 0)
				close(dfd);
			dirs[d] = (id_t_){0, 0};
			continue;
		}
		/* /bin and /sbin are usually /usr/bin and /usr/sbin: read each once. */
		dirs[d] = (id_t_){dst.st_dev, dst.st_ino};
		bool again = false;
		for (size_t i = 0; i < d && !again; i++)
			again = dirs[i].dev == dst.st_dev && dirs[i].ino == dst.st_ino;
		if (again) {
			close(dfd);
			continue;
		}
		DIR *dir = fdopendir(dfd);
		if (!dir) {
			close(dfd);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(dir))) {
			struct stat st;
			if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
				continue;
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) ||
			    (st.st_dev == mst.st_dev && st.st_ino == mst.st_ino))
				continue;
			bool hit = false;
			for (size_t i = 0; i < nids && !hit; i++)
				hit = ids[i].dev == st.st_dev && ids[i].ino == st.st_ino;
			for (char **b = spec->block; *b && !hit; b++)
				hit = versioned(*b, de->d_name);
			if (!hit)
				continue;
			_cleanup_close_ int fd =
			    openat(dirfd(dir), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && mask_fd(fd, mask, err) < 0) {
				closedir(dir);
				return -1;
			}
		}
		closedir(dir);
	}
	/* Copies anywhere in the read-only layers, at their paths in the sandbox's root. A
	 * path the sandbox's own layer removed or replaced by a symlink is left alone. */
	masks_t m = {0};
	if (find_copies(spec, &m, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < m.n && rc == 0; i++) {
		_cleanup_close_ int fd =
		    open_how_in(rootfd, m.e[i].path, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (st.st_dev == mst.st_dev && st.st_ino == mst.st_ino))
			continue;
		rc = mask_fd(fd, mask, err);
	}
	masks_clear(&m);
	return rc;
}

static int add_exec_rule(int ruleset, const char *path)
{
	_cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	struct landlock_path_beneath_attr pb = {.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE,
						.parent_fd = fd};
	return (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
}

int ac_policy_landlock(const ac_rt_spec_t *spec, ac_error_t **err)
{
	if (!spec->allowlist_only)
		return 0;
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE};
	_cleanup_close_ int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return ac_error_set(
		    err, AC_ERR_UNSUPPORTED, errno,
		    "allowlist_only needs Landlock (Linux >= 5.13 with the landlock LSM enabled)");
	/* The ELF loaders: every dynamically linked program is executed through one. */
	static const char *loaders[] = {
	    "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
	    "/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(loaders); i++)
		if (add_exec_rule(rs, loaders[i]) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "landlock rule for %s",
					    loaders[i]);
	for (char **a = spec->allow; a && *a; a++) {
		if (listed(spec->block, *a))
			continue;
		if ((*a)[0] == '/') {
			if (add_exec_rule(rs, *a) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, errno,
						    "landlock rule for %s", *a);
			continue;
		}
		for (size_t d = 0; d < AC_ARRAY_SIZE(path_dirs); d++) {
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", path_dirs[d], *a);
			if (add_exec_rule(rs, p) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, errno,
						    "landlock rule for %s", p);
		}
	}
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot apply the command allowlist");
	return 0;
}
