/* /proc helpers: process trees, and the kills that host-side deadlines need (identities
 * that survive pid reuse are src/base/procid.c's). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/proc.h"

/* ppid and session of pid as this /proc sees them; false if it is gone. */
static bool stat_links(int dfd, const char *name, pid_t *ppid, pid_t *sid)
{
	/* A zombie is dead already: it only waits for its (maybe stopped) parent. */
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "%s/stat", name);
	_cleanup_close_ int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	int pp, pg, s;
	char state;
	if (!p || sscanf(p + 2, "%c %d %d %d", &state, &pp, &pg, &s) != 4 || state == 'Z' ||
	    state == 'X')
		return false;
	*ppid = pp;
	*sid = s;
	return true;
}

/* The innermost pid of pid (the last field of NSpid); 0 if unknown. */
static pid_t inner_pid(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (ac_read_file_at(AT_FDCWD, path, 64 * 1024, &buf, &len, NULL) < 0)
		return 0;
	char *l = strstr(buf, "\nNSpid:");
	if (!l)
		return 0;
	char *end = strchr(l + 1, '\n');
	if (end)
		*end = 0;
	char *last = strrchr(l, '\t');
	return last ? (pid_t)atoi(last + 1) : 0;
}

typedef struct proc_link {
	pid_t pid, ppid, sid;
} proc_link_t;

#define PROC_SCAN_MAX 65536

/* Every process of the host: pid, parent, session. */
static size_t scan(proc_link_t **out)
{
	*out = NULL;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	size_t n = 0, cap = 0;
	proc_link_t *v = NULL;
	struct dirent *de;
	while ((de = readdir(d)) && n < PROC_SCAN_MAX) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		proc_link_t l = {.pid = atoi(de->d_name)};
		if (!stat_links(dirfd(d), de->d_name, &l.ppid, &l.sid))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			proc_link_t *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = l;
	}
	closedir(d);
	*out = v;
	return n;
}

pid_t ac_proc_find_child_nspid(pid_t parent, pid_t nspid)
{
	proc_link_t *v;
	size_t n = scan(&v);
	pid_t found = 0;
	for (size_t i = 0; i < n && !found; i++)
		if (v[i].ppid == parent && inner_pid(v[i].pid) == nspid)
			found = v[i].pid;
	free(v);
	return found;
}

int ac_proc_signal_tree(pid_t root, pid_t sid, unsigned long long pidns, int sig)
{
	proc_link_t *v;
	size_t n = scan(&v);
	if (!n)
		return 0;
	bool *mark = calloc(n, sizeof(bool));
	if (!mark) {
		free(v);
		return 0;
	}
	int hit = 0;
	/* Sessions first: a member of the command's session whose parent died is no longer
	 * below root. The namespace check keeps a reused session id elsewhere out of reach. */
	for (size_t i = 0; sid > 1 && pidns && i < n; i++)
		if (v[i].sid == sid && v[i].pid != root && ac_proc_pidns(v[i].pid) == pidns)
			mark[i] = true;
	for (bool changed = true; changed && root > 1;) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			if (mark[i])
				continue;
			bool below = v[i].ppid == root;
			for (size_t j = 0; !below && j < n; j++)
				below = mark[j] && v[j].pid == v[i].ppid;
			if (below)
				mark[i] = changed = true;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (mark[i] && kill(v[i].pid, sig) == 0)
			hit++;
	free(mark);
	free(v);
	return hit;
}

void ac_proc_kill_tree(pid_t root, pid_t sid, unsigned long long pidns)
{
	/* Killed processes cannot fork any more; what forked during a pass goes in the next.
	 * Bounded: a fork storm is the sandbox's cgroup's business, not a reason to hang. */
	for (int pass = 0; pass < 200; pass++) {
		if (ac_proc_signal_tree(root, sid, pidns, SIGKILL) == 0)
			return;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}
