/* Image layers and named volumes in the sandbox's root, builder side (host root, private
 * mount namespace).
 *
 * Layers (src/image/ unpacked them in overlay form: whiteouts as 0/0 character devices,
 * opaque directories by trusted.overlay.opaque) are mounted idmapped and read-only at short
 * names (lower/L0, L1, ...) so that one overlay's lowerdir list of up to AC_RT_LAYERS_MAX of
 * them fits the page that mount(2) copies its options into. For a host template, each
 * layer is a whole root tree and its usr/, lib*, var/lib/dpkg go above the host's own:
 * ac_layers_lowerdir lists only the layers where such a path is a real directory, in the
 * order overlayfs would see them (a whiteout or an opaque directory hides what lies below).
 *
 * Volumes are bound after the root is complete, each at a path resolved inside the new
 * root (openat2 RESOLVE_IN_ROOT): an image's symlink cannot send a bind outside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "base/util.h"
#include "runtime/layers.h"

/* Absolute, at most PATH_MAX, no "." or ".." component. */
static bool clean_abs(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *c = p; *c;) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
	}
	return true;
}

/* "/", or /proc, /sys, /dev or anything under them; rel: a path in the sandbox, absolute
 * or relative to its root. */
static bool forbidden_dst(const char *rel)
{
	while (*rel == '/')
		rel++;
	if (!*rel)
		return true;
	static const char *const under[] = {"proc", "sys", "dev"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(under); i++) {
		size_t n = strlen(under[i]);
		if (!strncmp(rel, under[i], n) && (rel[n] == 0 || rel[n] == '/'))
			return true;
	}
	return false;
}

size_t ac_layers_count(const ac_rt_spec_t *spec)
{
	size_t n = 0;
	while (spec->layers && spec->layers[n])
		n++;
	return n;
}

int ac_layers_check(const ac_rt_spec_t *spec, ac_error_t **err)
{
	size_t n = 0;
	for (; spec->layers && spec->layers[n]; n++) {
		if (n >= AC_RT_LAYERS_MAX)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "an image may have at most %d layers",
					    AC_RT_LAYERS_MAX);
		if (!clean_abs(spec->layers[n]))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "layer directory '%.200s' is not a clean absolute path",
					    spec->layers[n]);
	}
	if (!strcmp(spec->image, "oci") && n == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "an image without layers has no root");
	if (spec->nvolumes > AC_RT_VOLUMES_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "a sandbox may have at most %d volumes",
				    AC_RT_VOLUMES_MAX);
	if (spec->nvolumes && !spec->volumes)
		return ac_error_set(err, AC_ERR_INVALID, 0, "volumes missing");
	for (size_t i = 0; i < spec->nvolumes; i++) {
		const ac_rt_volume_t *v = &spec->volumes[i];
		if (!clean_abs(v->src))
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "volume directory '%.200s' is not a clean absolute path",
			    v->src ? v->src : "");
		if (!clean_abs(v->dst))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "volume path '%.200s' must be absolute, without '..'",
					    v->dst ? v->dst : "");
		if (forbidden_dst(v->dst))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "a volume cannot be mounted at '%.200s' (not at /, nor "
					    "under /proc, /sys or /dev)",
					    v->dst);
	}
	if (spec->workdir && !clean_abs(spec->workdir))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "working directory '%.200s' must be absolute, without '..'",
				    spec->workdir);
	if (spec->user && (!spec->user[0] || strlen(spec->user) > 255 || strchr(spec->user, '\n')))
		return ac_error_set(err, AC_ERR_INVALID, 0, "bad default user '%.200s'",
				    spec->user);
	return 0;
}

int ac_idmap_clone(const char *src, int userns_fd, uint64_t attrs, ac_error_t **err)
{
	_cleanup_close_ int fd =
	    open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "open_tree %s", src);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP | attrs,
			       .userns_fd = (uint64_t)userns_fd};
	if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot make an idmapped mount of %s (the kernel and the file "
				    "system must support idmapped mounts)",
				    src);
	return steal_fd(fd);
}

int ac_layers_mount(const ac_rt_spec_t *spec, int userns_fd, const char *lowerdir, ac_error_t **err)
{
	_cleanup_close_ int dfd = open(lowerdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", lowerdir);
	for (size_t i = 0; spec->layers && spec->layers[i]; i++) {
		char name[16];
		snprintf(name, sizeof(name), "L%zu", i);
		if (mkdirat(dfd, name, 0700) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s/%s", lowerdir,
					    name);
		struct stat st;
		if (stat(spec->layers[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
					    "image layer %s is missing from the image store",
					    spec->layers[i]);
		_cleanup_close_ int fd =
		    ac_idmap_clone(spec->layers[i], userns_fd,
				   MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err);
		if (fd < 0)
			return -1;
		if (move_mount(fd, "", dfd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "move_mount %s/%s",
					    lowerdir, name);
	}
	return 0;
}

typedef enum { P_ABSENT, P_DIR, P_DIR_OPAQUE, P_HIDES } probe_t;

static bool opaque(int fd)
{
	char v[2];
	return fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

/* What layer layerfd has at sub, as overlayfs sees it: nothing (the layers below show
 * through), a directory (opaque when it or an ancestor hides the layers below), or a
 * whiteout or non-directory at some component (nothing below shows). Symlinks are never
 * followed: a layer's symlink at usr would otherwise send the lower list anywhere. */
static int probe(int layerfd, const char *sub, ac_error_t **err)
{
	char path[256];
	if (snprintf(path, sizeof(path), "%s", sub) >= (int)sizeof(path))
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "path too long");
	_cleanup_close_ int fd = openat(layerfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "open a layer");
	bool hidden = false;
	char *save = NULL;
	for (char *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct stat st;
		if (fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				return ac_error_set(err, AC_ERR_BACKEND, errno,
						    "stat %s in a layer", sub);
			return hidden ? P_HIDES : P_ABSENT;
		}
		if (!S_ISDIR(st.st_mode))
			return P_HIDES; /* a whiteout (0/0 device), a file or a symlink */
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "open %s in a layer", sub);
		close(fd);
		fd = next;
		hidden = hidden || opaque(fd);
	}
	return hidden ? P_DIR_OPAQUE : P_DIR;
}

static int append(char *buf, size_t len, size_t *at, const char *a, const char *b, ac_error_t **err)
{
	int n =
	    snprintf(buf + *at, len - *at, "%s%s%s%s", *at ? ":" : "", a, b ? "/" : "", b ? b : "");
	if (n < 0 || (size_t)n >= len - *at)
		return ac_error_set(err, AC_ERR_INVALID, E2BIG,
				    "too many layers: their list does not fit the overlay's "
				    "options");
	*at += (size_t)n;
	return 0;
}

int ac_layers_lowerdir(size_t nlayers, const char *lowerdir, const char *sub, const char *base,
		       char *buf, size_t len, ac_error_t **err)
{
	size_t at = 0;
	buf[0] = 0;
	if (sub && !*sub)
		sub = NULL;
	_cleanup_close_ int dfd = -1;
	if (sub && (dfd = open(lowerdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", lowerdir);
	for (size_t i = nlayers; i-- > 0;) {
		char name[16];
		snprintf(name, sizeof(name), "L%zu", i);
		int p = P_DIR;
		if (sub) {
			_cleanup_close_ int lfd =
			    openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (lfd < 0)
				return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s/%s",
						    lowerdir, name);
			if ((p = probe(lfd, sub, err)) < 0)
				return -1;
		}
		if ((p == P_DIR || p == P_DIR_OPAQUE) && append(buf, len, &at, name, sub, err) < 0)
			return -1;
		if (p == P_DIR_OPAQUE || p == P_HIDES)
			return 0;
	}
	return base ? append(buf, len, &at, base, NULL, err) : 0;
}

/* The directory at dst inside the root rootfd (resolved there: ".." and symlinks stay
 * inside), made with its missing parents (mode 0755, owned by uid). O_PATH descriptor. */
static int open_dst(int rootfd, const char *dst, uid_t uid, ac_error_t **err)
{
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	char path[4096];
	snprintf(path, sizeof(path), "%s", dst + strspn(dst, "/"));
	size_t len = strlen(path);
	while (len && path[len - 1] == '/')
		path[--len] = 0;
	/* From the top down: each prefix resolved from the root, made when missing. */
	for (size_t end = 0; end <= len; end++) {
		if (end < len && path[end] != '/')
			continue;
		char saved = path[end];
		path[end] = 0;
		int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd < 0 && errno == ENOENT) {
			char *slash = strrchr(path, '/');
			const char *leaf = slash ? slash + 1 : path;
			if (slash)
				*slash = 0;
			_cleanup_close_ int parent = (int)syscall(
			    SYS_openat2, rootfd, slash ? path : ".", &how, sizeof(how));
			if (slash)
				*slash = '/';
			if (parent < 0 || (mkdirat(parent, leaf, 0755) < 0 && errno != EEXIST))
				return ac_error_set(err, AC_ERR_BACKEND, errno,
						    "cannot create the volume path %.200s in the "
						    "sandbox",
						    dst);
			(void)!fchownat(parent, leaf, uid, uid, AT_SYMLINK_NOFOLLOW);
			fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		}
		if (fd < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno,
					    "cannot open the volume path %.200s in the sandbox (a "
					    "symlink there to a missing directory?)",
					    dst);
		path[end] = saved;
		if (end == len)
			return fd;
		close(fd);
	}
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "volume path %.200s", dst);
}

int ac_volumes_mount(const ac_rt_spec_t *spec, int userns_fd, const char *root, uid_t uid,
		     ac_error_t **err)
{
	if (!spec->nvolumes)
		return 0;
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", root);
	size_t rlen = strlen(root);
	for (size_t i = 0; i < spec->nvolumes; i++) {
		const ac_rt_volume_t *v = &spec->volumes[i];
		_cleanup_close_ int dfd = open_dst(rootfd, v->dst, uid, err);
		if (dfd < 0)
			return -1;
		/* Where the path really is (an image's symlink may have moved it): never the
		 * root itself, /proc, /sys or /dev. */
		char self[64], real[4200];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", dfd);
		ssize_t n = readlink(self, real, sizeof(real) - 1);
		if (n < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "readlink %s", self);
		real[n] = 0;
		if ((size_t)n < rlen || strncmp(real, root, rlen) ||
		    (real[rlen] && real[rlen] != '/') || forbidden_dst(real + rlen))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "volume path %.200s leads to %.200s in the sandbox: "
					    "not a place for a volume",
					    v->dst, (size_t)n > rlen ? real + rlen : "/");
		struct stat st;
		if (stat(v->src, &st) < 0 || !S_ISDIR(st.st_mode))
			return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
					    "volume directory %.200s is missing", v->src);
		_cleanup_close_ int src = ac_idmap_clone(v->src, userns_fd,
							 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
							     (v->read_only ? MOUNT_ATTR_RDONLY : 0),
							 err);
		if (src < 0)
			return -1;
		if (move_mount(src, "", dfd, "",
			       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno,
					    "cannot mount the volume at %.200s", v->dst);
	}
	return 0;
}
