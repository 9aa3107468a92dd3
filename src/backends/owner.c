/* Owner ids and creator marks of what remote backends make (see owner.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/owner.h"
#include "base/io.h"
#include "base/procid.h"
#include "base/util.h"
#include "base/uuid.h"

int ac_owner_id(const char *home, const char *dir, bool make, char out[AC_OWNER_LEN + 1],
		ac_error_t **err)
{
	_cleanup_close_ int hfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", home);
	for (int attempt = 0; attempt < 2; attempt++) {
		char *text = NULL;
		size_t len = 0;
		ac_error_t *e = NULL;
		char file[64];
		snprintf(file, sizeof(file), "%s/owner", dir);
		if (ac_read_file_at(hfd, file, 64, &text, &len, &e) == 0) {
			bool ok = len >= AC_OWNER_LEN;
			for (size_t i = 0; ok && i < AC_OWNER_LEN; i++)
				ok = strchr("0123456789abcdef", text[i]) && text[i];
			if (ok)
				snprintf(out, AC_OWNER_LEN + 1, "%s", text);
			free(text);
			if (!ok)
				return ac_error_set(err, AC_ERR_INTERNAL, 0,
						    "%s/%s is not an owner id", home, file);
			return 1;
		}
		int errnum = e ? e->errnum : 0;
		ac_error_free(e);
		if (errnum != ENOENT)
			return ac_error_set(err, AC_ERR_INTERNAL, errnum, "cannot read %s/%s", home,
					    file);
		if (!make)
			return 0;
		/* Made under a temporary name and linked: of two homes' first creates, one
		 * link wins and both read the winner's id. */
		char uuid[37], id[AC_OWNER_LEN + 2], tmp[64];
		ac_uuid_v7(uuid);
		snprintf(id, sizeof(id), "%.12s%.4s\n", uuid + 24, uuid + 19);
		snprintf(tmp, sizeof(tmp), "%s/owner.tmp.%ld", dir, (long)getpid());
		if (ac_mkdir_p_at(hfd, dir, 0700, err) < 0 ||
		    ac_write_file_atomic_at(hfd, tmp, id, strlen(id), 0600, err) < 0)
			return -1;
		int rc = linkat(hfd, tmp, hfd, file, 0);
		int saved = errno;
		unlinkat(hfd, tmp, 0);
		if (rc < 0 && saved != EEXIST)
			return ac_error_set(err, AC_ERR_INTERNAL, saved, "cannot write %s/%s", home,
					    file);
	}
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot make %s/%s/owner", home, dir);
}

bool ac_owner_creator_alive(const char *creator)
{
	long pid;
	unsigned long long start;
	char boot[37], mine[37];
	if (!creator || sscanf(creator, "%ld:%llu:%36s", &pid, &start, boot) != 3 || pid <= 0)
		return false;
	ac_boot_id(mine);
	return !strcmp(boot, mine) && ac_proc_starttime((pid_t)pid) == start;
}

void ac_owner_creator(char *out, size_t cap)
{
	char boot[37] = "";
	ac_boot_id(boot);
	snprintf(out, cap, "%ld:%llu:%s", (long)getpid(), ac_proc_starttime(getpid()), boot);
}
