/* The command policy ([security.commands] allow / block / allowlist_only), enforced where
 * programs are executed, not by looking at argv[0]: `sh -c blocked`, `/usr/bin/env
 * blocked`, a symlink or a hard link to it all meet the same wall.
 *   block: the builder bind-mounts an empty mode-0000 file owned by host root (which the
 *          sandbox cannot chmod, execute, or unmount) over every path of the sandbox's
 *          PATH directories that reaches a blocked program, hard links included.
 *   allowlist_only: init restricts execution with Landlock (LANDLOCK_ACCESS_FS_EXECUTE)
 *          to the allowed programs and the ELF loader; every other execve fails EACCES.
 * ac_policy_check gives a clear error for a command that names a refused program. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agentcell/util.h"
#include "runtime/runtime.h"

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

int ac_policy_check(const ac_rt_spec_t *spec, const char *argv0)
{
	if (!spec || !argv0)
		return 0;
	if (listed(spec->block, argv0))
		return -EPERM;
	if (spec->allowlist_only && !listed(spec->allow, argv0))
		return -EPERM;
	return 0;
}

static int open_in(int rootfd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
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

int ac_policy_mask(const ac_rt_spec_t *spec, const char *root, const char *staging,
		   ac_error_t **err)
{
	if (!spec->block || !spec->block[0])
		return 0;
	char mask[4200];
	snprintf(mask, sizeof(mask), "%s/blocked-program", staging);
	_cleanup_close_ int mfd = open(mask, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0);
	if (mfd < 0 || fchmod(mfd, 0) < 0)
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
			if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
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
	/* Other names of the same files (hard links) in the PATH directories. */
	for (size_t d = 0; d < AC_ARRAY_SIZE(path_dirs) && nids; d++) {
		int dfd = open_in(rootfd, path_dirs[d], O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			continue;
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
			    !S_ISREG(st.st_mode) || st.st_nlink < 2)
				continue;
			for (size_t i = 0; i < nids; i++)
				if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino) {
					_cleanup_close_ int fd =
					    openat(dirfd(dir), de->d_name,
						   O_PATH | O_NOFOLLOW | O_CLOEXEC);
					if (fd >= 0 && mask_fd(fd, mask, err) < 0) {
						closedir(dir);
						return -1;
					}
				}
		}
		closedir(dir);
	}
	return 0;
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
