/* Activity marks: an exec, a file operation or an attach touches run/<name>.activity
 * (its mtime) instead of rewriting the state; readers merge it into last_activity_at. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

/* ------------------------------------------------------------------ activity marks */

static void activity_file(const char *name, char buf[96])
{
	snprintf(buf, 96, "run/%s.activity", name);
}

void ac_manager_touch_activity(ac_manager_t *m, const char *name)
{
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	int home = ac_store_home_fd(ac_manager_store(m));
	if (utimensat(home, f, NULL, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return;
	int fd = openat(home, f, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return;
	close(fd);
	/* An exec runs without the sandbox's lock, so a remove may have deleted the state
	 * and forgotten the mark while it ran. Made after that forget, the mark would outlive
	 * its sandbox; a remove checks state-then-mark in the other order, so either the
	 * remove's forget or this check takes the mark away. */
	if (!ac_store_exists(ac_manager_store(m), name))
		unlinkat(home, f, 0);
}

void ac_lifecycle_merge_activity(ac_manager_t *m, json_t *st)
{
	const char *name = ac_state_str(st, "name", NULL);
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	struct stat sb;
	if (fstatat(ac_store_home_fd(ac_manager_store(m)), f, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	int64_t mark = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	int64_t last;
	if (ac_time_parse_rfc3339(ac_state_str(st, "last_activity_at", NULL), &last) == 0 &&
	    last >= mark)
		return;
	char buf[32];
	ac_time_format_rfc3339(mark, buf);
	json_object_set_new(st, "last_activity_at", json_string(buf));
}

void ac_lifecycle_forget_activity(ac_manager_t *m, const char *name)
{
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	unlinkat(ac_store_home_fd(ac_manager_store(m)), f, 0);
}
