/* Host-wide uid ranges. Every sandbox on the host, whatever its $AGENTCELL_HOME, gets
 * its own 65536-uid range, so two sandboxes never share host uids (files, signals,
 * per-user kernel limits).
 *   persistent: /var/lib/agentcell/slots/<N> claimed with O_EXCL, holding the path of the
 *               owner's state file; a claim whose owner is gone is taken over.
 *   ephemeral:  a non-blocking flock on /run/agentcell/leases/<N>, held for the run;
 *               searched from the first slot up, so the files are as many as the most
 *               runs that were ever at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/proc.h"
#include "runtime/slots.h"

static const char *system_dir(void)
{
	const char *d = getenv("AGENTCELL_SYSTEM_DIR"); /* tests only */
	return d && *d ? d : "/var/lib/agentcell";
}

static const char *runtime_dir(void)
{
	const char *d = getenv("AGENTCELL_RUNTIME_DIR"); /* tests only */
	return d && *d ? d : "/run/agentcell";
}

static int open_dir(const char *base, const char *sub, ac_error_t **err)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", base, sub);
	if (ac_mkdir_p_at(AT_FDCWD, p, 0700, err) < 0)
		return -1;
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", p);
	return fd;
}

#define CLAIM_GRACE_SECONDS 60

/* A claim is "<owner state path>\n<claimer pid> <claimer start time>\n" (older ones have
 * the first line only). Whether the create that made it still runs: -1 unknown. */
static int claimer_alive(const char *claim)
{
	const char *nl = strchr(claim, '\n');
	long pid = 0;
	unsigned long long start = 0;
	if (!nl || sscanf(nl + 1, "%ld %llu", &pid, &start) != 2 || pid <= 1 || !start)
		return -1;
	return ac_proc_starttime((pid_t)pid) == start;
}

/* A claim is stale when its owner's state file is gone or names another slot, and the
 * create that claimed it is over: its claimer is dead, or (a claim without one) it is
 * older than a create could take (the state is written just after the claim). */
static bool claim_stale(int dfd, const char *slotname, uint32_t slot)
{
	struct stat cst;
	_cleanup_free_ char *owner = NULL, *state = NULL;
	size_t len;
	if (fstatat(dfd, slotname, &cst, 0) < 0 ||
	    ac_read_file_at(dfd, slotname, 4096, &owner, &len, NULL) < 0)
		return false;
	int alive = claimer_alive(owner);
	if (alive == 1 || (alive < 0 && time(NULL) - cst.st_mtime < CLAIM_GRACE_SECONDS))
		return false;
	owner[strcspn(owner, "\n")] = 0;
	if (owner[0] != '/')
		return false;
	if (ac_read_file_at(AT_FDCWD, owner, 4 << 20, &state, &len, NULL) < 0)
		return errno == ENOENT || access(owner, F_OK) < 0;
	/* The owner's state names its slot; the store writes it as "uid_slot": N. */
	char needle[64];
	snprintf(needle, sizeof(needle), "\"uid_slot\": %u", slot);
	char compact[64];
	snprintf(compact, sizeof(compact), "\"uid_slot\":%u", slot);
	const char *hit = strstr(state, needle);
	size_t nl = strlen(needle);
	if (!hit) {
		hit = strstr(state, compact);
		nl = strlen(compact);
	}
	return !hit || (hit[nl] >= '0' && hit[nl] <= '9');
}

static int lock_slots(int dfd, ac_error_t **err)
{
	int lock = openat(dfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open the uid slot lock");
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(lock);
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot lock the uid slots");
		}
	return lock;
}

int ac_slot_sweep(const char *owner_prefix, bool remove, json_t *found)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/slots", system_dir());
	_cleanup_close_ int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	_cleanup_close_ int lock = lock_slots(dfd, NULL);
	if (lock < 0)
		return -1;
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return -1;
	}
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long s = strtoul(de->d_name, &end, 10);
		if (*end || end == de->d_name || s >= AC_SLOTS_PERSISTENT)
			continue;
		_cleanup_free_ char *claim = NULL;
		size_t len;
		if (ac_read_file_at(dfd, de->d_name, 4096, &claim, &len, NULL) < 0 ||
		    strncmp(claim, owner_prefix, strlen(owner_prefix)) != 0 ||
		    !claim_stale(dfd, de->d_name, (uint32_t)s))
			continue;
		claim[strcspn(claim, "\n")] = 0;
		if (remove && unlinkat(dfd, de->d_name, 0) < 0)
			continue;
		n++;
		char path[700], why[1300];
		snprintf(path, sizeof(path), "%s/%s", p, de->d_name);
		snprintf(why, sizeof(why), "no create holds it and its sandbox %s does not exist",
			 claim);
		if (found)
			json_array_append_new(found,
					      json_pack("{ss ss ss}", "kind", "uid slot claim",
							"path", path, "why", why));
	}
	closedir(d);
	return n;
}

int ac_slot_claim(const char *owner, uint32_t *slot, ac_error_t **err)
{
	_cleanup_close_ int dfd = open_dir(system_dir(), "slots", err);
	if (dfd < 0)
		return -1;
	/* One claimer at a time host-wide, so a stale claim is taken over only once. */
	_cleanup_close_ int lock = lock_slots(dfd, err);
	if (lock < 0)
		return -1;
	for (uint32_t s = 0; s < AC_SLOTS_PERSISTENT; s++) {
		char name[16];
		snprintf(name, sizeof(name), "%u", s);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST) {
			/* (claim_stale's look-ups clobber errno: a live claim is skipped here.) */
			if (!claim_stale(dfd, name, s))
				continue;
			unlinkat(dfd, name, 0);
			fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		}
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot claim uid slot %u",
					    s);
		}
		char claim[1400];
		snprintf(claim, sizeof(claim), "%s\n%ld %llu\n", owner, (long)getpid(),
			 ac_proc_starttime(getpid()));
		int rc = ac_write_all(fd, claim, strlen(claim));
		close(fd);
		if (rc < 0) {
			unlinkat(dfd, name, 0);
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot claim uid slot %u",
					    s);
		}
		*slot = s;
		return 0;
	}
	return ac_error_set(err, AC_ERR_STATE, 0,
			    "no free uid range: %u sandboxes exist on this host",
			    AC_SLOTS_PERSISTENT);
}

void ac_slot_release(uint32_t slot, const char *owner)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/slots/%u", system_dir(), slot);
	_cleanup_free_ char *cur = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 4096, &cur, &len, NULL) == 0 &&
	    strlen(cur) >= strlen(owner) && strncmp(cur, owner, strlen(owner)) == 0 &&
	    (cur[strlen(owner)] == 0 || cur[strlen(owner)] == '\n'))
		unlink(path);
}

int ac_slot_lease(uint32_t *slot, ac_error_t **err)
{
	_cleanup_close_ int dfd = open_dir(runtime_dir(), "leases", err);
	if (dfd < 0)
		return -1;
	for (uint32_t s = AC_SLOTS_PERSISTENT; s < AC_SLOTS_TOTAL; s++) {
		char name[16];
		snprintf(name, sizeof(name), "%u", s);
		int fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open lease %u", s);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*slot = s;
			return fd;
		}
		close(fd);
	}
	return ac_error_set(err, AC_ERR_BACKEND, 0, "no free uid range for another run");
}
