/* Directory tree walk over descriptors (see walk.h). */
#include "base/walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the directory open as fd (not . and ..), sorted, NULL-terminated. Reading
 * them all first means callbacks may change the directory without making readdir skip
 * names. The caller keeps fd. */
static int list_names(int fd, const char *path, char ***out, ac_error_t **err)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read '%s'", path);
	DIR *d = fdopendir(dup_fd);
	if (d == NULL) {
		int saved = errno;
		close(dup_fd);
		return ac_error_set(err, AC_ERR_INTERNAL, saved, "cannot read '%s'", path);
	}
	size_t n = 0, cap = 16;
	char **v = calloc(cap, sizeof(*v));
	if (v == NULL) {
		closedir(d);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				rc = ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read '%s'",
						  path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n + 2 > cap) {
			size_t ncap = cap * 2;
			char **nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		if ((v[n] = strdup(de->d_name)) == NULL) {
			rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			break;
		}
		v[++n] = NULL;
	}
	closedir(d);
	if (rc < 0) {
		v[n] = NULL;
		ac_strv_free(v);
		return -1;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return 0;
}

static bool vanished(int e)
{
	return e == ENOENT || e == ENOTDIR;
}

static int walk(int dirfd, const char *name, const char *path, int depth, const ac_walk_t *w,
		ac_error_t **err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0) {
		if (depth > 0 && (vanished(errno) || w->lenient))
			return 0;
		return ac_error_set(err, errno == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INTERNAL,
				    errno, "cannot read '%s'", *path ? path : name);
	}
	ac_walk_entry_t e = {
	    .dirfd = dirfd, .name = name, .path = path, .st = &st, .depth = depth, .fd = -1};
	if (!S_ISDIR(st.st_mode))
		return w->pre && w->pre(&e, w->arg, err) < 0 ? -1 : 0;

	if (depth > w->max_depth)
		return ac_error_set(err, AC_ERR_INVALID, 0, "directory tree deeper than %d levels",
				    w->max_depth);
	_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
	    openat(dirfd, *name ? name : ".",
		   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
	if (fd < 0) {
		if (depth > 0 && (vanished(errno) || w->lenient))
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '%s'",
				    *path ? path : name);
	}
	/* Swapped (for a symlink, another directory, a mount) between the stat and the open:
	 * what was checked is not what would be entered. */
	struct stat opened;
	if (fstat(fd, &opened) < 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "'%s' changed during the walk",
				    *path ? path : name);
	e.fd = fd;
	if (w->pre) {
		int rc = w->pre(&e, w->arg, err);
		if (rc < 0)
			return -1;
		if (rc == AC_WALK_SKIP)
			return 0;
	}
	char **names = NULL;
	if (list_names(fd, *path ? path : name, &names, err) < 0)
		return -1;
	int rc = 0;
	for (char **n = names; rc == 0 && *n; n++) {
		_cleanup_free_ char *sub = NULL;
		if (asprintf(&sub, "%s%s%s", path, *path ? "/" : "", *n) < 0) {
			sub = NULL;
			rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			break;
		}
		rc = walk(fd, *n, sub, depth + 1, w, err);
	}
	ac_strv_free(names);
	if (rc < 0)
		return -1;
	return w->post && w->post(&e, w->arg, err) < 0 ? -1 : 0;
}

int ac_walk_at(int dirfd, const char *name, const ac_walk_t *w, ac_error_t **err)
{
	return walk(dirfd, name, "", 0, w, err) < 0 ? -1 : 0;
}
