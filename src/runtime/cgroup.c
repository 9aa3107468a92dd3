/* Sandbox cgroups: cgroup v2 when /sys/fs/cgroup is a cgroup2 mount, else the v1
 * memory, cpu and pids controllers. Each sandbox gets agentcell/<leaf> in each. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <linux/magic.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/cgroup.h"

#define CG_ROOT_DEFAULT "/sys/fs/cgroup"
#define CG_PARENT	"agentcell"

static const char *v1_controllers[] = {"memory", "cpu", "pids"};

static char cg_root[256] = CG_ROOT_DEFAULT;
static int cg_version = -1; /* -1 unknown */

struct ac_cgroup {
	int version;
	int ndirs;
	char dirs[3][320];
};

void ac_cgroup_set_root_for_tests(const char *root, int version)
{
	snprintf(cg_root, sizeof(cg_root), "%s", root);
	cg_version = version;
}

int ac_cgroup_mode(const char **root)
{
	if (cg_version < 0) {
		struct statfs sfs;
		char p[300];
		cg_version = 0;
		if (statfs(cg_root, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
			cg_version = 2;
		} else {
			snprintf(p, sizeof(p), "%s/memory", cg_root);
			if (access(p, F_OK) == 0)
				cg_version = 1;
		}
	}
	if (root)
		*root = cg_root;
	return cg_version;
}

static int cg_paths(ac_cgroup_t *cg, const char *leaf, ac_error_t **err)
{
	int v = ac_cgroup_mode(NULL);
	cg->version = v;
	cg->ndirs = 0;
	if (v == 2) {
		snprintf(cg->dirs[0], sizeof(cg->dirs[0]), "%s/%s/%s", cg_root, CG_PARENT, leaf);
		cg->ndirs = 1;
	} else if (v == 1) {
		for (size_t i = 0; i < AC_ARRAY_SIZE(v1_controllers); i++)
			snprintf(cg->dirs[cg->ndirs++], sizeof(cg->dirs[0]), "%s/%s/%s/%s", cg_root,
				 v1_controllers[i], CG_PARENT, leaf);
	} else {
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "no usable cgroup hierarchy under %s (need cgroup v2 or the v1 "
				    "memory, cpu and pids controllers)",
				    cg_root);
	}
	return 0;
}

static int write_knob(const char *dir, const char *knob, const char *val, ac_error_t **err)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", dir, knob);
	return ac_write_string_at(AT_FDCWD, p, val, err);
}

static bool knob_exists(const char *dir, const char *knob)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", dir, knob);
	return access(p, F_OK) == 0;
}

/* v2 needs the controllers enabled in every ancestor's subtree_control. */
static int v2_enable_controllers(ac_error_t **err)
{
	char p[320];
	const char *ctrls[] = {"+memory", "+cpu", "+pids"};
	const char *dirs[2] = {cg_root, NULL};
	snprintf(p, sizeof(p), "%s/%s", cg_root, CG_PARENT);
	dirs[1] = p;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot create cgroup %s", p);
	for (int d = 0; d < 2; d++)
		for (size_t i = 0; i < AC_ARRAY_SIZE(ctrls); i++) {
			_cleanup_error_ ac_error_t *e = NULL;
			if (write_knob(dirs[d], "cgroup.subtree_control", ctrls[i], &e) < 0)
				return ac_error_set(err, AC_ERR_BACKEND, 0,
						    "cannot enable cgroup controller %s in %s: %s",
						    ctrls[i] + 1, dirs[d], e->msg);
		}
	return 0;
}

int ac_cgroup_set_limits(ac_cgroup_t *cg, const ac_rt_limits_t *lim, ac_error_t **err)
{
	char mem[32], cpu[64], pids[32];
	if (lim->memory_mb)
		snprintf(mem, sizeof(mem), "%llu",
			 (unsigned long long)lim->memory_mb * 1024 * 1024);
	else
		snprintf(mem, sizeof(mem), cg->version == 2 ? "max" : "-1");
	if (lim->pids)
		snprintf(pids, sizeof(pids), "%llu", (unsigned long long)lim->pids);
	else
		snprintf(pids, sizeof(pids), "max");
	long long quota = lim->cpus > 0 ? (long long)(lim->cpus * 100000.0 + 0.5) : -1;
	if (quota >= 0 && quota < 1000)
		quota = 1000; /* the kernel's minimum quota is 1 ms */

	if (cg->version == 2) {
		const char *d = cg->dirs[0];
		if (write_knob(d, "memory.max", mem, err) < 0)
			return -1;
		if (knob_exists(d, "memory.swap.max") &&
		    write_knob(d, "memory.swap.max", "0", err) < 0)
			return -1;
		if (quota >= 0)
			snprintf(cpu, sizeof(cpu), "%lld 100000", quota);
		else
			snprintf(cpu, sizeof(cpu), "max 100000");
		if (write_knob(d, "cpu.max", cpu, err) < 0 ||
		    write_knob(d, "pids.max", pids, err) < 0)
			return -1;
		return 0;
	}
	/* v1: memory, cpu, pids in that order. memsw must stay >= limit, so the order of the
	 * two writes depends on whether the limit grows or shrinks: try one, then the other. */
	const char *md = cg->dirs[0], *cd = cg->dirs[1], *pd = cg->dirs[2];
	if (knob_exists(md, "memory.memsw.limit_in_bytes")) {
		_cleanup_error_ ac_error_t *e = NULL;
		if (write_knob(md, "memory.limit_in_bytes", mem, &e) < 0 ||
		    write_knob(md, "memory.memsw.limit_in_bytes", mem, &e) < 0) {
			if (write_knob(md, "memory.memsw.limit_in_bytes", mem, err) < 0 ||
			    write_knob(md, "memory.limit_in_bytes", mem, err) < 0)
				return -1;
		}
	} else if (write_knob(md, "memory.limit_in_bytes", mem, err) < 0) {
		return -1;
	}
	snprintf(cpu, sizeof(cpu), "%lld", quota);
	if (write_knob(cd, "cpu.cfs_period_us", "100000", err) < 0 ||
	    write_knob(cd, "cpu.cfs_quota_us", cpu, err) < 0)
		return -1;
	return write_knob(pd, "pids.max", pids, err);
}

int ac_cgroup_open(const char *leaf, ac_cgroup_t **out, ac_error_t **err)
{
	ac_cgroup_t *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (cg_paths(cg, leaf, err) < 0) {
		free(cg);
		return -1;
	}
	*out = cg;
	return 0;
}

int ac_cgroup_create(const char *leaf, const ac_rt_limits_t *lim, ac_cgroup_t **out,
		     ac_error_t **err)
{
	ac_cgroup_t *cg = NULL;
	if (ac_cgroup_open(leaf, &cg, err) < 0)
		return -1;
	if (cg->version == 2 && v2_enable_controllers(err) < 0)
		goto fail;
	for (int i = 0; i < cg->ndirs; i++) {
		char parent[320];
		snprintf(parent, sizeof(parent), "%s", cg->dirs[i]);
		*strrchr(parent, '/') = '\0';
		if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
			ac_error_set(err, AC_ERR_BACKEND, errno, "cannot create cgroup %s", parent);
			goto fail;
		}
		if (mkdir(cg->dirs[i], 0755) < 0 && errno != EEXIST) {
			ac_error_set(err, AC_ERR_BACKEND, errno, "cannot create cgroup %s",
				     cg->dirs[i]);
			goto fail;
		}
	}
	if (ac_cgroup_set_limits(cg, lim, err) < 0) {
		ac_error_prefix(err, "cannot set limits");
		goto fail;
	}
	*out = cg;
	return 0;
fail:
	ac_cgroup_destroy(cg, NULL);
	ac_cgroup_free(cg);
	return -1;
}

int ac_cgroup_attach(ac_cgroup_t *cg, pid_t pid, ac_error_t **err)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int i = 0; i < cg->ndirs; i++)
		if (write_knob(cg->dirs[i], "cgroup.procs", buf, err) < 0)
			return -1;
	return 0;
}

int ac_cgroup_attach_self(ac_cgroup_t *cg, ac_error_t **err)
{
	/* v1: a single-threaded process writing "0" to the thread-level "tasks" file moves
	 * itself without taking the kernel's global threadgroup rwsem, whose write side
	 * costs an RCU grace period (about 10 ms here) on every cgroup.procs write. */
	const char *knob = cg->version == 1 ? "tasks" : "cgroup.procs";
	for (int i = 0; i < cg->ndirs; i++)
		if (write_knob(cg->dirs[i], knob, "0", err) < 0)
			return -1;
	return 0;
}

static int kill_members(const char *dir)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	int n = 0, pid;
	while (fscanf(f, "%d", &pid) == 1) {
		kill(pid, SIGKILL);
		n++;
	}
	fclose(f);
	return n;
}

int ac_cgroup_destroy(ac_cgroup_t *cg, ac_error_t **err)
{
	if (!cg)
		return 0;
	int rc = 0;
	for (int i = cg->ndirs - 1; i >= 0; i--) {
		const char *d = cg->dirs[i];
		/* The members are normally gone already (the PID namespace dies with its init);
		 * whatever is left is killed, and rmdir is retried while the kernel reaps. */
		for (int tries = 0;; tries++) {
			if (rmdir(d) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY || tries > 5000) {
				rc = ac_error_set(err, AC_ERR_BACKEND, errno,
						  "cannot remove cgroup %s", d);
				break;
			}
			if (cg->version == 2 && knob_exists(d, "cgroup.kill"))
				write_knob(d, "cgroup.kill", "1", NULL);
			else
				kill_members(d);
			struct timespec ts = {0, tries < 100 ? 100000 : 1000000};
			nanosleep(&ts, NULL);
		}
	}
	return rc;
}

void ac_cgroup_free(ac_cgroup_t *cg)
{
	free(cg);
}

void ac_cgroup_gc_runs(void)
{
	ac_cgroup_t cg;
	if (cg_paths(&cg, "x", NULL) < 0)
		return;
	for (int i = 0; i < cg.ndirs; i++) {
		char parent[320];
		snprintf(parent, sizeof(parent), "%s", cg.dirs[i]);
		*strrchr(parent, '/') = '\0';
		DIR *d = opendir(parent);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			/* run-<pid>-<n>: only once the run's caller is gone (an empty cgroup may be
			 * one that its caller has just made and not yet joined). */
			int owner;
			if (de->d_type != DT_DIR || sscanf(de->d_name, "run-%d-", &owner) != 1)
				continue;
			if (kill(owner, 0) == 0 || errno != ESRCH)
				continue;
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR); /* fails while populated */
		}
		closedir(d);
	}
}
