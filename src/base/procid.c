/* Process identity that survives pid reuse: a pid with its start time (and the boot it
 * belongs to). Used by every layer that records a process (the creating mark, detached
 * commands, supervisors' pid files). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/procid.h"
#include "base/util.h"

unsigned long long ac_proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p += 2; /* field 3 (state) */
	if (*p == 'Z' || *p == 'X')
		return 0; /* dead, not yet reaped by its parent */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

int ac_boot_id(char out[37])
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, out, 36) != 36) {
		memset(out, '0', 36);
		out[36] = 0;
		return -1;
	}
	out[36] = 0;
	return 0;
}

unsigned long long ac_proc_pidns(pid_t pid)
{
	char path[64];
	struct stat sb;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &sb) == 0 ? (unsigned long long)sb.st_ino : 0;
}
