/* The job of a sandbox and of a one-shot run (internal.h). Pure: a state and a connection
 * in, the Job object of PUT /v1/jobs ({"Job": THIS}) out.
 *
 * The job: ID and Name the sandbox's job id ("agentcell-NAME") or the run's, Type "batch"
 * (a sandbox is not a service Nomad should keep up: when it dies it stays dead), Namespace
 * and Region when set, Datacenters (["*"] by default), NodePool when set, Meta
 * agentcell-sandbox=NAME, agentcell-managed=true, agentcell-owner (this home's id, when the
 * state has one) and, for a run, agentcell-creator (the process, so that gc spares a
 * live run's job). One group and one task, both "sandbox", Count 1.
 *
 * Hardening, for every driver:
 *   - RestartPolicy Attempts 0 Mode "fail" and ReschedulePolicy Attempts 0 Unlimited false:
 *     a sandbox that dies is not started again behind the user's back (on another node,
 *     with a fresh file system, commands half-done): start fails or the sandbox is stopped.
 *   - while the state's network is off, the group's network mode is "none": Nomad gives the
 *     group a network namespace with only loopback (the exec driver's isolation), and the
 *     docker/podman task's own network_mode is "none" too (its own namespace, no
 *     interface), so neither a driver default nor a client's configuration opens a path.
 *     With the network on, no network block: the driver's default (docker's bridge).
 *   - Resources: CPU in MHz = cpus * cpu_mhz_per_core (1000 by default, as the seed's
 *     vcpus * 1000), or Cores = ceil(cpus) with cores = true (whole reserved cores);
 *     MemoryMB = memory_mb (a hard limit for docker, podman and exec). 0 leaves Nomad's
 *     default (100 MHz, 300 MB): Nomad has no "unlimited".
 *   - KillSignal SIGTERM with KillTimeout 2 s: the idle shell exits at once on TERM (a
 *     private PID namespace's PID 1 ignores signals it has no handler for), and what does
 *     not is killed 2 s later.
 *   - LogConfig 2 files of at most 10 MB (less when the disk is small): a run's output is
 *     read from these logs while it runs; a sandbox's idle task writes nothing.
 *   - EphemeralDisk SizeMB = disk_mb when the state has a limit (scheduling only: Nomad
 *     does not enforce it on docker's writable layer).
 *   - Env: the state's "env" (KEY=VALUE), then a run's own on top.
 *   - No volumes, no host mounts, no artifacts, templates, services or ports: nothing of a
 *     node or of Consul/Vault reaches the sandbox. The state's mount_cwd (a directory of
 *     agentcell's host) cannot exist on a Nomad node and is ignored.
 *   - User: [nomad] user when set (the Task's user), a run's -u over it; else the driver's
 *     default (docker/podman: the image's; exec: nobody; raw_exec: the agent's own user).
 *
 * docker (Nomad's built-in driver, drivers/docker/config.go):
 *   image (the state's image reference; "host" -> [nomad] image, default alpine:3.20);
 *   entrypoint [argv0] + args: the image's ENTRYPOINT does not wrap the command and its CMD
 *   is not appended (Docker drops CMD when the entrypoint is given), as the Kubernetes
 *   backend's "command"; cap_drop ["ALL"] (nothing added: the client's allow_caps cannot
 *   hand a sandbox more); privileged false; security_opt ["no-new-privileges"] (setuid
 *   binaries gain nothing); readonly_rootfs for --read-only, with a tmpfs /tmp (mode 1777,
 *   size min(memory, 1 GiB), in memory: it counts against the limit) because the exec
 *   wrapper keeps its handles there; network_mode "none" while the network is off; pids_limit from
 *   the state (the client's own docker pids_limit caps it); work_dir for a run's -w.
 *   The runtime's default seccomp profile stays (nothing turns it off).
 * podman (the external nomad-driver-podman): the same fields where the plugin has them:
 *   image, entrypoint (a list) + args, cap_drop ["ALL"], privileged false, security_opt
 *   ["no-new-privileges"] (the plugin takes it since 0.6.2: an older one fails the task
 *   with "Failed Validation"), readonly_rootfs with tmpfs ["/tmp:rw,nosuid,nodev,
 *   mode=1777,size=Nm"], network_mode "none", pids_limit, working_dir.
 * exec (Nomad's chroot + namespaces + cgroups): command "/bin/sh" (or a run's argv[0]) +
 *   args; cap_drop ["ALL"] (an empty bounding set: a setuid binary of the chroot gains no
 *   capability), pid_mode and ipc_mode "private" (over a client's default_pid_mode =
 *   "host"), work_dir. No image (the chroot is the node's chroot_env), no read-only root,
 *   no pids limit: ac_nm_job_warnings says so.
 * raw_exec: command + args, work_dir. No isolation at all: the command runs as the Nomad
 *   agent's user on the node (often root). Only with [nomad] allow_raw_exec = true.
 *
 * What to check on a real cluster: the docker plugin's allow_privileged stays false (its
 * volumes.enabled does not matter: no volume is asked for; cap_drop ALL works whatever the
 * client's allow_caps); the client's docker pids_limit is at least the sandboxes' --pids;
 * the group network "none" makes the docker driver start its pause container
 * (infra_image) on the node, which must be pullable there; nomad-driver-podman 0.6.2 or
 * later for podman; the ACL token needs submit-job, read-job and alloc-exec (read-logs and
 * read-fs for runs and files) in the namespace; the datacenters and node pool hold nodes
 * with the driver; the images are pullable from the nodes; exec's chroot_env holds /bin/sh
 * and sleep. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/agents.h"
#include "agentcell/store.h"
#include "base/parse.h"
#include "base/util.h"
#include "backends/nomad/internal.h"
#include "backends/owner.h"

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

#define KILL_TIMEOUT_NS (2LL * 1000 * 1000 * 1000)
#define LOG_FILES	2
#define LOG_FILE_MB	10
#define ID_MAX		128

enum { D_DOCKER, D_PODMAN, D_EXEC, D_RAW };

static int driver_of(const char *d)
{
	return !strcmp(d, "docker")	? D_DOCKER
	       : !strcmp(d, "podman")	? D_PODMAN
	       : !strcmp(d, "exec")	? D_EXEC
	       : !strcmp(d, "raw_exec") ? D_RAW
					: -1;
}

static bool id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > ID_MAX)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
			return false;
	return true;
}

/* ---- the state's values, strictly ---- */

typedef struct limits {
	long long memory_mb, pids, disk_mb; /* 0: none */
	double cpus;			    /* 0: none */
	bool read_only, network;
} limits_t;

static int state_int(const json_t *st, const char *key, long long max, long long *out,
		     ac_error_t **err)
{
	json_t *v = json_object_get(st, key);
	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's state has an invalid %s (an integer from 0 to "
				    "%lld)",
				    key, max);
	*out = json_integer_value(v);
	return 0;
}

static int state_bool(const json_t *st, const char *key, bool *out, ac_error_t **err)
{
	json_t *v = json_object_get(st, key);
	*out = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's state has an invalid %s (true or false)", key);
	*out = json_is_true(v);
	return 0;
}

static int limits_of(const json_t *st, limits_t *l, ac_error_t **err)
{
	memset(l, 0, sizeof(*l));
	if (state_int(st, "memory_mb", (long long)AC_MEMORY_MAX_MB, &l->memory_mb, err) < 0 ||
	    state_int(st, "pids_limit", (long long)AC_PIDS_MAX, &l->pids, err) < 0 ||
	    state_int(st, "disk_mb", (long long)AC_DISK_MAX_MB, &l->disk_mb, err) < 0 ||
	    state_bool(st, "read_only", &l->read_only, err) < 0 ||
	    state_bool(st, "network", &l->network, err) < 0)
		return -1;
	json_t *c = json_object_get(st, "cpus");
	if (!c || json_is_null(c))
		c = json_object_get(st, "vcpus");
	if (c && !json_is_null(c)) {
		if (!json_is_number(c) || !(json_number_value(c) >= 0) ||
		    json_number_value(c) > 1024)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "the sandbox's state has an invalid cpus (a number "
					    "from 0 to 1024)");
		l->cpus = json_number_value(c);
	}
	if (l->memory_mb > 0 && l->memory_mb < 10) /* Nomad's minimum */
		l->memory_mb = 10;
	return 0;
}

/* "KEY=VALUE" entries into env (a later one wins). */
static int add_env(json_t *env, const json_t *list, char *const *more, ac_error_t **err)
{
	if (list && !json_is_null(list) && !json_is_array(list))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's state has an invalid env "
				    "(an array of KEY=VALUE)");
	size_t n = json_array_size(list);
	for (size_t i = 0;; i++) {
		const char *kv;
		if (i < n) {
			kv = json_string_value(json_array_get(list, i));
			if (!kv)
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "the sandbox's state has an env entry that is "
						    "not a string");
		} else if (more && more[i - n]) {
			kv = more[i - n];
		} else {
			break;
		}
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "environment entry '%.100s' is not KEY=VALUE", kv);
		json_t *v = json_string(eq + 1);
		if (!v || json_object_setn_new(env, kv, (size_t)(eq - kv), v) < 0)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "environment entry '%.100s' is not valid UTF-8", kv);
	}
	return 0;
}

static json_t *strings(char *const *v, size_t from, ac_error_t **err)
{
	json_t *a = json_array();
	for (size_t i = 0; v && a && v[i]; i++) {
		if (i < from)
			continue;
		json_t *s = json_string(v[i]);
		if (!s) {
			json_decref(a);
			ac_error_set(err, AC_ERR_INVALID, 0, "the command is not valid UTF-8");
			return NULL;
		}
		json_array_append_new(a, s);
	}
	if (!a)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return a;
}

/* The image of a docker/podman task: the state's reference, "host" -> the configured one. */
static int image_of(const json_t *st, const json_t *cfg, const char **out, ac_error_t **err)
{
	const char *img = ac_state_str(st, "image", "host");
	if (!strcmp(img, "host")) {
		img = json_string_value(json_object_get(cfg, "image"));
		if (!img || !*img)
			img = AC_NM_DEFAULT_IMAGE;
	}
	if (!ac_image_ref_valid(img))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%.200s' is not an image reference: a Nomad sandbox runs an "
				    "image the node pulls (a directory of this host is not one)",
				    img);
	*out = img;
	return 0;
}

/* The task's config for its driver. argv: what it runs. */
static json_t *driver_config(int drv, const json_t *st, const json_t *cfg, const limits_t *l,
			     char *const *argv, const char *cwd, ac_error_t **err)
{
	_cleanup_json_ json_t *args = strings(argv, 1, err);
	if (!args)
		return NULL;
	json_t *c = json_object();
	if (!c) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		return NULL;
	}
	long long tmp_mb = l->memory_mb > 0 && l->memory_mb < 1024 ? l->memory_mb : 1024;
	if (drv == D_DOCKER || drv == D_PODMAN) {
		const char *img = NULL;
		if (image_of(st, cfg, &img, err) < 0) {
			json_decref(c);
			return NULL;
		}
		json_object_set_new(c, "image", json_string(img));
		json_object_set_new(c, "entrypoint", json_pack("[s]", argv[0]));
		json_object_set(c, "args", args);
		json_object_set_new(c, "cap_drop", json_pack("[s]", "ALL"));
		json_object_set_new(c, "privileged", json_false());
		json_object_set_new(c, "security_opt", json_pack("[s]", "no-new-privileges"));
		json_object_set_new(c, "readonly_rootfs", json_boolean(l->read_only));
		if (!l->network)
			json_object_set_new(c, "network_mode", json_string("none"));
		if (l->pids > 0)
			json_object_set_new(c, "pids_limit", json_integer(l->pids));
		if (l->read_only && drv == D_DOCKER)
			json_object_set_new(c, "mount",
					    json_pack("[{s:s, s:s, s:b, s:[{s:I, s:i}]}]", "type",
						      "tmpfs", "target", "/tmp", "readonly", 0,
						      "tmpfs_options", "size",
						      (json_int_t)(tmp_mb << 20), "mode", 01777));
		if (l->read_only && drv == D_PODMAN)
			json_object_set_new(
			    c, "tmpfs",
			    json_pack(
				"[o]",
				json_sprintf("/tmp:rw,nosuid,nodev,mode=1777,size=%lldm", tmp_mb)));
		if (cwd)
			json_object_set_new(c, drv == D_DOCKER ? "work_dir" : "working_dir",
					    json_string(cwd));
		return c;
	}
	json_object_set_new(c, "command", json_string(argv[0]));
	json_object_set(c, "args", args);
	if (drv == D_EXEC) {
		json_object_set_new(c, "cap_drop", json_pack("[s]", "ALL"));
		json_object_set_new(c, "pid_mode", json_string("private"));
		json_object_set_new(c, "ipc_mode", json_string("private"));
	}
	if (cwd)
		json_object_set_new(c, "work_dir", json_string(cwd));
	return c;
}

static json_t *resources(const json_t *cfg, const limits_t *l)
{
	json_t *r = json_object();
	if (l->cpus > 0) {
		if (json_is_true(json_object_get(cfg, "cores"))) {
			json_object_set_new(r, "Cores", json_integer((json_int_t)ceil(l->cpus)));
		} else {
			json_t *m = json_object_get(cfg, "cpu_mhz_per_core");
			long long per = json_is_integer(m) && json_integer_value(m) > 0 &&
						json_integer_value(m) <= 1000000
					    ? json_integer_value(m)
					    : AC_NM_MHZ_PER_CORE;
			long long mhz = llround(l->cpus * (double)per);
			json_object_set_new(r, "CPU", json_integer(mhz < 1 ? 1 : mhz));
		}
	}
	if (l->memory_mb > 0)
		json_object_set_new(r, "MemoryMB", json_integer(l->memory_mb));
	return r;
}

static json_t *build(const json_t *st, const ac_nm_t *n, const char *id, const ac_cmd_t *cmd,
		     ac_error_t **err)
{
	if (!json_is_object(st)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no sandbox state for the Nomad job");
		return NULL;
	}
	const json_t *cfg = json_object_get(st, "nomad");
	const char *job = id && *id ? id : n->job;
	if (!id_ok(job)) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "'%.160s' is not a Nomad job id agentcell makes (1-%d of A-Z a-z 0-9 "
			     "- _ .)",
			     job, ID_MAX);
		return NULL;
	}
	int drv = driver_of(n->driver);
	if (drv < 0) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "'%.20s' is not a Nomad driver agentcell uses (docker, podman, exec, "
			     "raw_exec)",
			     n->driver);
		return NULL;
	}
	if (drv == D_RAW && !json_is_true(json_object_get(cfg, "allow_raw_exec"))) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "the raw_exec driver runs without isolation: it needs [nomad] "
			     "allow_raw_exec = true");
		return NULL;
	}
	const char *name = json_string_value(json_object_get(st, "name"));
	if (!cmd && (!name || !*name)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "the sandbox's state has no name");
		return NULL;
	}
	limits_t l;
	if (limits_of(st, &l, err) < 0)
		return NULL;
	if (cmd && (!cmd->argv || !cmd->argv[0] || !cmd->argv[0][0])) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	if (cmd && cmd->cwd && cmd->cwd[0] != '/') {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "the working directory '%.200s' is not absolute", cmd->cwd);
		return NULL;
	}
	const char *user = json_string_value(json_object_get(cfg, "user"));
	if (cmd && cmd->user)
		user = cmd->user;
	if (user && (!*user || strlen(user) > 64 || strpbrk(user, " \t\r\n"))) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%.64s' is not a user for a Nomad task",
			     user);
		return NULL;
	}
	char *idle[] = {"/bin/sh", "-c", AC_NM_IDLE_SCRIPT, NULL};
	_cleanup_json_ json_t *env = json_object();
	if (!env || add_env(env, json_object_get(st, "env"), cmd ? cmd->env : NULL, err) < 0)
		return NULL;
	_cleanup_json_ json_t *config =
	    driver_config(drv, st, cfg, &l, cmd ? cmd->argv : idle, cmd ? cmd->cwd : NULL, err);
	if (!config)
		return NULL;

	long long log_mb = LOG_FILE_MB;
	if (l.disk_mb > 0 && l.disk_mb < 4 * LOG_FILE_MB + 1) /* the logs fit in the disk */
		log_mb =
		    (l.disk_mb - 1) / (2 * LOG_FILES) > 0 ? (l.disk_mb - 1) / (2 * LOG_FILES) : 1;
	json_t *task = json_pack("{s:s, s:s, s:O, s:O, s:o, s:I, s:s, s:{s:i, s:I}}", "Name",
				 AC_NM_TASK, "Driver", n->driver, "Config", config, "Env", env,
				 "Resources", resources(cfg, &l), "KillTimeout",
				 (json_int_t)KILL_TIMEOUT_NS, "KillSignal", "SIGTERM", "LogConfig",
				 "MaxFiles", LOG_FILES, "MaxFileSizeMB", (json_int_t)log_mb);
	if (task && user)
		json_object_set_new(task, "User", json_string(user));
	json_t *group =
	    json_pack("{s:s, s:i, s:{s:i, s:s}, s:{s:i, s:b}, s:[o]}", "Name", AC_NM_TASK, "Count",
		      1, "RestartPolicy", "Attempts", 0, "Mode", "fail", "ReschedulePolicy",
		      "Attempts", 0, "Unlimited", 0, "Tasks", task);
	if (group && !l.network)
		json_object_set_new(group, "Networks", json_pack("[{s:s}]", "Mode", "none"));
	if (group && l.disk_mb > 0)
		json_object_set_new(group, "EphemeralDisk",
				    json_pack("{s:I}", "SizeMB", (json_int_t)l.disk_mb));

	json_t *meta = json_pack("{s:s}", AC_NM_META_MANAGED, "true");
	if (meta && name && *name)
		json_object_set_new(meta, AC_NM_META_SANDBOX, json_string(name));
	const char *owner = json_string_value(json_object_get(cfg, "owner"));
	if (meta && owner && *owner)
		json_object_set_new(meta, AC_NM_META_OWNER, json_string(owner));
	if (meta && cmd) {
		char creator[96];
		ac_owner_creator(creator, sizeof(creator));
		json_object_set_new(meta, AC_NM_META_CREATOR, json_string(creator));
	}
	json_t *dcs = json_object_get(cfg, "datacenters");
	json_t *dc = json_is_array(dcs) && json_array_size(dcs) ? json_deep_copy(dcs)
								: json_pack("[s]", "*");
	json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:[o]}", "ID", job, "Name", job, "Type",
			      "batch", "Datacenters", dc, "Meta", meta, "TaskGroups", group);
	if (!j) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the Nomad job '%s'", job);
		return NULL;
	}
	if (n->ns[0])
		json_object_set_new(j, "Namespace", json_string(n->ns));
	if (n->region[0])
		json_object_set_new(j, "Region", json_string(n->region));
	const char *pool = json_string_value(json_object_get(cfg, "node_pool"));
	if (pool && *pool)
		json_object_set_new(j, "NodePool", json_string(pool));
	return j;
}

json_t *ac_nm_job_spec(const json_t *st, const ac_nm_t *n, const char *id, char *const *argv,
		       ac_error_t **err)
{
	if (!argv)
		return build(st, n, id, NULL, err);
	ac_cmd_t cmd = {.argv = (char **)argv};
	return build(st, n, id, &cmd, err);
}

json_t *ac_nm_run_job_spec(const json_t *st, const ac_nm_t *n, const char *id, const ac_cmd_t *cmd,
			   ac_error_t **err)
{
	if (!cmd) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	return build(st, n, id, cmd, err);
}

size_t ac_nm_job_warnings(const json_t *st, const ac_nm_t *n, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	int drv = driver_of(n->driver);
#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (len < cap)                                                                     \
			len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);                \
	} while (0)
	if (drv == D_RAW)
		ADD("the raw_exec driver does not isolate the sandbox: it runs as the Nomad "
		    "agent's user on the node");
	if (drv == D_EXEC || drv == D_RAW) {
		const char *img = ac_state_str(st, "image", "host");
		if (strcmp(img, "host"))
			ADD("%sthe %s driver takes no image: '%.100s' is ignored (the node's "
			    "file system is used)",
			    len ? "; " : "", n->driver, img);
		if (ac_state_bool(st, "read_only", false))
			ADD("%sthe %s driver has no read-only root: --read-only is not applied",
			    len ? "; " : "", n->driver);
		if (ac_state_int(st, "pids_limit", 0) > 0)
			ADD("%sthe %s driver has no pids limit: --pids is not applied",
			    len ? "; " : "", n->driver);
	}
#undef ADD
	return len < cap ? len : cap - 1;
}
