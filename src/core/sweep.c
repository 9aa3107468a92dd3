/* Leftovers of killed processes: found for doctor, removed by gc (see
 * docs/ARCHITECTURE.md, "What a kill -9 leaves"). Nothing in use is ever touched: a temp
 * file's writer is alive (its pid is in the name) or wrote it within the last minutes, a
 * lock file is held, a record is being made, a slot's claimer runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/store.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "core/internal.h"
#include "base/procid.h"

/* A write (temp + fsync + rename) takes well under a second: a temp file this old is
 * dead whoever has its pid now. */
#define TMP_MAX_AGE_SECONDS 600

static void add(json_t *found, const char *kind, const char *path, const char *why)
{
	json_array_append_new(found,
			      json_pack("{ss ss ss}", "kind", kind, "path", path, "why", why));
}

/* NAME.tmp.PID.HEX (ac_write_file_atomic_at) or NAME.tmp.PID (the native backend's pid
 * file): the writer's pid, 0 if not such a name. */
static long tmp_writer(const char *name)
{
	const char *t = strstr(name, ".tmp.");
	if (!t)
		return 0;
	char *end;
	long pid = strtol(t + 5, &end, 10);
	if (pid <= 0 || (*end && (*end != '.' || strlen(end + 1) != 16)))
		return 0;
	return pid;
}

static int sweep_tmp(ac_manager_t *m, const char *sub, bool remove, json_t *found)
{
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s/%s", ac_manager_home(m), sub);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		long pid = tmp_writer(de->d_name);
		struct stat sb;
		if (!pid || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		bool dead = kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		bool old = time(NULL) - sb.st_mtime >= TMP_MAX_AGE_SECONDS;
		if (!dead && !old)
			continue; /* a write in progress */
		if (remove && unlinkat(dirfd(d), de->d_name, 0) < 0)
			continue;
		char path[1600];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		add(found, "temporary file", path,
		    dead ? "its writer is gone" : "older than any write in progress");
		n++;
	}
	closedir(d);
	return n;
}

static int sweep_locks(ac_manager_t *m, bool remove, json_t *found)
{
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s/locks", ac_manager_home(m));
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char name[64];
		if (!ac_name_from_entry(de->d_name, ".lock", name) ||
		    ac_store_sweep_lock(ac_manager_store(m), name, remove) != 1)
			continue;
		char path[1600];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		add(found, "lock file", path, "no sandbox has this name");
		n++;
	}
	closedir(d);
	return n;
}

/* Activity marks of sandboxes that no longer exist (a remove killed between its state
 * unlink and its mark unlink). */
static int sweep_marks(ac_manager_t *m, bool remove, json_t *found)
{
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s/run", ac_manager_home(m));
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char name[64];
		if (!ac_name_from_entry(de->d_name, ".activity", name) ||
		    ac_store_exists(ac_manager_store(m), name) ||
		    (remove && unlinkat(dirfd(d), de->d_name, 0) < 0))
			continue;
		char path[1600];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		add(found, "activity mark", path, "no sandbox has this name");
		n++;
	}
	closedir(d);
	return n;
}

int ac_manager_sweep(ac_manager_t *m, bool remove, json_t **found, ac_error_t **err)
{
	json_t *all = json_array();
	if (!all)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	sweep_tmp(m, "sandboxes", remove, all);
	sweep_tmp(m, "run", remove, all);
	sweep_locks(m, remove, all);
	sweep_marks(m, remove, all);
	ac_detach_sweep(m, remove, all);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	size_t n;
	const ac_backend_t *bs = ac_backends(&n);
	for (size_t i = 0; i < n; i++)
		if (bs[i].ops->sweep)
			bs[i].ops->sweep(&ctx, remove, all);
	if (remove) {
		size_t i;
		json_t *f;
		json_array_foreach(all, i, f)
		{
			if (!json_object_get(f, "error")) /* not removed: could not be asked */
				ac_audit_log(m, "leftover_removed", NULL, json_deep_copy(f));
		}
	}
	*found = all;
	return (int)json_array_size(all);
}
