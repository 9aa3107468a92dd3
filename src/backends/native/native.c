/* The native backend: Linux namespaces, cgroups, seccomp and overlayfs (src/runtime/).
 * Layout under $AGENTCELL_HOME: run/<name>.sock (supervisor), run/<name>.pid (its host
 * pid, start time and boot id), run/<name>.sock.log, data/<name>/disk.img (the ext4 image
 * that holds {upper,work} when the sandbox has a disk limit; older sandboxes and those made
 * with an unlimited disk have data/<name>/{upper,work} on the host's file system). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "agentcell/agents.h"
#include "agentcell/backend.h"
#include "base/io.h"
#include "base/proctitle.h"
#include "base/util.h"
#include "backends/native/native.h"
#include "net/net.h"
#include "runtime/runtime.h"

typedef struct native_paths {
	char sock[1200], pidfile[1200], log[1200], data[1200];
} native_paths_t;

static void paths(const ac_backend_ctx_t *ctx, const char *name, native_paths_t *p)
{
	const char *h = ctx->home;
	snprintf(p->sock, sizeof(p->sock), "%s/run/%s.sock", h, name);
	snprintf(p->pidfile, sizeof(p->pidfile), "%s/run/%s.pid", h, name);
	snprintf(p->log, sizeof(p->log), "%s/run/%s.sock.log", h, name);
	snprintf(p->data, sizeof(p->data), "%s/data/%s", h, name);
}

/* Fills spec from a state; env points into a NULL-terminated array to free. */
/* "KEY=VALUE" of the caller's environment, copied once per process and kept: a sandbox's
 * init wipes the environment area it inherited (ac_proctitle_wipe_environ), so the spec must
 * not point into it. NULL when the variable is not set. */
static char *env_entry(const char *key)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char *cache[32];
	extern char **environ;
	size_t kl = strlen(key);
	char *found = NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < AC_ARRAY_SIZE(cache) && cache[i] && !found; i++)
		if (!strncmp(cache[i], key, kl) && cache[i][kl] == '=')
			found = cache[i];
	for (char **ev = environ; !found && ev && *ev; ev++) {
		if (strncmp(*ev, key, kl) || (*ev)[kl] != '=')
			continue;
		for (size_t i = 0; i < AC_ARRAY_SIZE(cache); i++)
			if (!cache[i]) {
				found = cache[i] = strdup(*ev);
				break;
			}
		break;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

static int spec_from_state(const ac_backend_ctx_t *ctx, const json_t *st, ac_rt_spec_t *spec,
			   ac_native_mem_t *owned, ac_error_t **err)
{
	json_t *env = json_object_get(st, "env");
	size_t n = json_array_size(env);
	char **e = calloc(n + 1, sizeof(char *));
	if (!e)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(env, i));
		if (s && strchr(s, '='))
			e[k++] = (char *)s;
	}
	/* The agent's API keys come from the caller's environment, here and now: they are
	 * never stored. getenv gives "KEY=VALUE" back from environ's own entry. */
	const char *const *keys = ac_agent_keys(ac_state_str(st, "agent", NULL));
	for (size_t j = 0; keys && keys[j]; j++) {
		/* With the network on, the proxy carries the key: the sandbox has a placeholder. */
		if (ac_net_carries_key(json_object_get(st, "net"), keys[j]))
			continue;
		char *kv = env_entry(keys[j]);
		if (!kv)
			continue;
		char **grown = realloc(e, (k + 2) * sizeof(char *));
		if (!grown)
			break;
		e = grown;
		e[k++] = kv;
		e[k] = NULL;
	}
	/* The command policy's lists go in the same allocation, after the environment. */
	json_t *pol = json_object_get(st, "command_policy");
	json_t *lists[2] = {json_object_get(pol, "block"), json_object_get(pol, "allow")};
	size_t at[2];
	for (int l = 0; l < 2; l++) {
		size_t cnt = json_array_size(lists[l]);
		char **grown = realloc(e, (k + 1 + cnt + 1) * sizeof(char *));
		if (!grown) {
			free(e);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		e = grown;
		e[k++] = NULL; /* ends the previous list */
		at[l] = k;
		for (size_t i = 0; i < cnt; i++) {
			const char *v = json_string_value(json_array_get(lists[l], i));
			if (v && *v)
				e[k++] = (char *)v;
		}
		e[k] = NULL;
	}
	long long slot = ac_state_int(st, "uid_slot", -1);
	uint64_t mem = (uint64_t)ac_state_int(st, "memory_mb", 512);
	*spec = (ac_rt_spec_t){
	    .home = ctx->home,
	    .name = ac_state_str(st, "name", "sandbox"),
	    .image = ac_state_str(st, "image", "host"),
	    .mount_cwd = ac_state_str(st, "mount_cwd", NULL),
	    .uid_base = slot >= 0 ? ac_slot_uid_base((uint32_t)slot) : 0,
	    .limits = {.memory_mb = mem,
		       .cpus = ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1)),
		       .pids = (uint64_t)ac_state_int(st, "pids_limit", 512)},
	    .tmp_mb = mem ? (mem < 1024 ? mem : 1024) : 1024,
	    .read_only = ac_state_bool(st, "read_only", false),
	    /* A state without it predates disk limits: its layers are on the host as before. */
	    .disk_mb = (uint64_t)ac_state_int(st, "disk_mb", 0),
	    .env = e,
	    .block = e + at[0],
	    .allow = e + at[1],
	    .allowlist_only = ac_state_bool(pol, "allowlist_only", false),
	};
	owned->env = e;
	/* The state file is outside input too: limits out of range mean it was edited. */
	if (!(spec->limits.cpus >= 0.01 && spec->limits.cpus <= 1024) ||
	    spec->limits.memory_mb > (1ull << 20) || spec->limits.pids > 4194304ull ||
	    (spec->disk_mb && (spec->disk_mb < AC_DISK_MIN_MB || spec->disk_mb > AC_DISK_MAX_MB))) {
		ac_native_mem_free(owned);
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "sandbox '%s' has out-of-range limits in its state file",
				    spec->name);
	}
	if (ac_native_image_spec(ctx, st, spec, owned, err) < 0) {
		ac_native_mem_free(owned);
		return -1;
	}
	return 0;
}

static void owner_of(const ac_backend_ctx_t *ctx, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/sandboxes/%s.json", ctx->home, name);
}

/* The native backend works as root only, for now (rootless mode is a later release);
 * the container backends do not need it. */
static int need_root(ac_error_t **err)
{
	if (geteuid() == 0)
		return 0;
	return ac_error_set(err, AC_ERR_PERMISSION, 0,
			    "the native backend needs root for now (rootless mode is not available "
			    "yet); run agentcell as root, e.g. with sudo, or use --backend podman");
}

/* Space the host's file system keeps beyond what a sandbox's image may still grow by: the
 * state store and the audit log must always be writable. */
#define DISK_HOST_RESERVE_MB 256

/* The image of a sandbox with a disk limit: made at its first mount (under the sandbox's
 * lock), and refused when its growth could fill the host's file system. */
static int disk_prepare(const char *name, const char *data, uint64_t mb, ac_error_t **err)
{
	if (!mb)
		return 0;
	if (ac_mkdir_p_at(AT_FDCWD, data, 0700, err) < 0 || ac_disk_image_ensure(data, mb, err) < 0)
		return -1;
	uint64_t growth, free_mb;
	if (ac_disk_headroom(data, &growth, &free_mb, err) < 0)
		return -1;
	if (free_mb < growth + DISK_HOST_RESERVE_MB)
		return ac_error_set(
		    err, AC_ERR_STATE, 0,
		    "sandbox '%s' could write %llu MB more into its disk image, but "
		    "the file system holding it has %llu MB free (%d MB stay for "
		    "agentcell's own files): free space or use a smaller --disk",
		    name, (unsigned long long)growth, (unsigned long long)free_mb,
		    DISK_HOST_RESERVE_MB);
	return 0;
}

static int native_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err)
{
	if (need_root(err) < 0)
		return -1;
	/* The image itself is made at the first start: here the name is not ours yet. */
	if (ac_state_int(st, "disk_mb", 0) > 0 && ac_disk_check(err) < 0)
		return -1;
	char owner[1200];
	uint32_t slot;
	owner_of(ctx, ac_state_str(st, "name", ""), owner, sizeof(owner));
	if (ac_slot_claim(owner, &slot, err) < 0)
		return -1;
	json_object_set_new(st, "uid_slot", json_integer(slot));
	return 0;
}

static bool cgroup_leaf(const json_t *st, char *buf, size_t len)
{
	long long slot = ac_state_int(st, "uid_slot", -1);
	if (slot < 0 || slot >= AC_SLOTS_PERSISTENT)
		return false;
	ac_sandbox_cgroup_leaf(buf, len, ac_state_str(st, "name", ""), (uint32_t)slot);
	return true;
}

static bool read_pidfile(const char *path, long *pid, unsigned long long *start, char boot[37])
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 4096, &buf, &len, NULL) < 0)
		return false;
	json_t *j = json_loads(buf, 0, NULL);
	if (!j)
		return false;
	*pid = (long)ac_state_int(j, "pid", 0);
	*start = (unsigned long long)ac_state_int(j, "starttime", 0);
	snprintf(boot, 37, "%s", ac_state_str(j, "boot_id", ""));
	json_decref(j);
	return *pid > 0;
}

/* Alive means: same boot, same pid, same start time (no pid reuse). */
static bool supervisor_alive(const char *pidfile, long *pid_out, unsigned long long *start_out)
{
	long pid;
	unsigned long long start;
	char boot[37], now_boot[37];
	if (!read_pidfile(pidfile, &pid, &start, boot))
		return false;
	ac_boot_id(now_boot);
	if (strcmp(boot, now_boot) != 0 || ac_proc_starttime((pid_t)pid) != start)
		return false;
	if (pid_out)
		*pid_out = pid;
	if (start_out)
		*start_out = start;
	return true;
}

static bool native_is_running(const ac_backend_ctx_t *ctx, const json_t *st, long *pid)
{
	native_paths_t p;
	paths(ctx, ac_state_str(st, "name", ""), &p);
	return supervisor_alive(p.pidfile, pid, NULL);
}

/* Atomic (rename) but not durable: the file means nothing after a reboot (boot_id), so
 * it does not pay for an fsync on the start path. A torn or empty file reads as stopped. */
static int write_pidfile(const char *path, const char *buf, size_t len, ac_error_t **err)
{
	char tmp[1300];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	_cleanup_close_ int fd =
	    open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || ac_write_all(fd, buf, len) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot write %s", path);
	}
	return 0;
}

/* A start's or a run's network (src/net/net.h): the builder hands over a socket of the
 * sandbox's namespace (on_net), and the proxy is started with it. A persistent sandbox's
 * proxy lives as long as its init (a pidfd); a run's as long as the run (a pipe). */
typedef struct native_net {
	const ac_backend_ctx_t *ctx;
	json_t *orders;
	char *bundle;
	int life[2];
	bool on;
	char pidfile[4200];
} native_net_t;

static int native_on_net(void *arg, int fd, pid_t init, ac_error_t **err)
{
	native_net_t *nn = arg;
	_cleanup_close_ int pfd = init > 0 ? pidfd_open(init, 0) : -1;
	if (init > 0 && pfd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "pidfd_open");
	ac_net_proxy_req_t req = {.orders = nn->orders,
				  .listen_fd = fd,
				  .life_fd = init > 0 ? pfd : nn->life[0],
				  .pidfile = nn->pidfile};
	pid_t pid;
	return ac_net_proxy_spawn(&req, &pid, err);
}

static int net_begin(const ac_backend_ctx_t *ctx, const json_t *st, ac_rt_spec_t *spec,
		     native_net_t *nn, ac_error_t **err)
{
	*nn = (native_net_t){.ctx = ctx, .life = {-1, -1}};
	const json_t *net = json_object_get(st, "net");
	if (!json_is_object(net))
		return 0;
	const char *name = ac_state_str(st, "name", "");
	ac_net_pidfile(ctx->home, name, nn->pidfile, sizeof(nn->pidfile));
	/* A proxy of an earlier start whose sandbox died without a stop. */
	ac_net_proxy_stop(nn->pidfile);
	if (ac_net_prepare(ctx->home, name, net, &nn->orders, &nn->bundle, err) < 0)
		return -1;
	if (pipe2(nn->life, O_CLOEXEC) < 0) {
		json_decref(nn->orders);
		free(nn->bundle);
		nn->orders = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	}
	nn->on = spec->net_fd = true;
	spec->net_proxy_port = json_is_true(json_object_get(net, "proxy")) ? AC_NET_PROXY_PORT : 0;
	spec->ca_bundle = nn->bundle;
	spec->on_net = native_on_net;
	spec->on_net_arg = nn;
	return 0;
}

/* After the start or the run: a run's proxy goes now (its pipe closes). */
static void net_end(native_net_t *nn)
{
	for (int i = 0; i < 2; i++)
		if (nn->life[i] >= 0)
			close(nn->life[i]);
	json_decref(nn->orders);
	free(nn->bundle);
	nn->orders = NULL;
	nn->bundle = NULL;
}

static int native_start(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	if (need_root(err) < 0)
		return -1;
	native_paths_t p;
	ac_rt_spec_t spec;
	_cleanup_mem_ ac_native_mem_t mem = {0};
	const char *name = ac_state_str(st, "name", "");
	paths(ctx, name, &p);
	if (spec_from_state(ctx, st, &spec, &mem, err) < 0)
		return -1;
	if (ac_state_int(st, "uid_slot", -1) < 0 ||
	    ac_state_int(st, "uid_slot", -1) >= AC_SLOTS_PERSISTENT)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "sandbox '%s' has no uid range in its state", name);
	spec.data_dir = p.data;
	spec.socket_path = p.sock;
	spec.cancel_fd = ctx->cancel_fd;
	if (spec.mount_cwd && access(spec.mount_cwd, F_OK) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "the mounted directory %s is gone", spec.mount_cwd);
	if (strcmp(spec.image, "host") != 0 && strcmp(spec.image, "oci") != 0 &&
	    access(spec.image, F_OK) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "image directory '%s' does not exist", spec.image);
	if (ac_mkdir_p_at(AT_FDCWD, p.data, 0700, err) < 0 ||
	    disk_prepare(name, p.data, spec.disk_mb, err) < 0)
		return -1;
	pid_t pid;
	_cleanup_close_ int ack = -1;
	native_net_t nn;
	if (net_begin(ctx, st, &spec, &nn, err) < 0)
		return -1;
	int rc = ac_rt_start(&spec, &pid, &ack, err);
	net_end(&nn);
	if (rc < 0) {
		ac_net_teardown(ctx->home, name, false);
		return -1;
	}
	char boot[37], buf[256];
	ac_boot_id(boot);
	int n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"starttime\":%llu,\"boot_id\":\"%s\"}\n",
			 (int)pid, ac_proc_starttime(pid), boot);
	if (write_pidfile(p.pidfile, buf, (size_t)n, err) < 0) {
		kill(pid, SIGKILL);
		return -1;
	}
	if (ac_write_all(ack, "y", 1) < 0) {
		unlink(p.pidfile);
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "the supervisor of '%s' exited during start-up", name);
	}
	return 0;
}

static int native_stop(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	native_paths_t p;
	const char *name = ac_state_str(st, "name", "");
	paths(ctx, name, &p);
	/* A start's builder whose caller died (we hold the sandbox's lock: no live start). */
	ac_rt_end_left_builder(p.sock);
	long pid;
	if (supervisor_alive(p.pidfile, &pid, NULL)) {
		/* pidfd, then the identity check again: the kill cannot hit a reused pid. */
		int pfd = pidfd_open((pid_t)pid, 0);
		if (pfd >= 0) {
			long again;
			if (supervisor_alive(p.pidfile, &again, NULL) && again == pid) {
				pidfd_send_signal(pfd, SIGKILL, NULL, 0);
				/* init's exit waits for the whole PID namespace to be gone. */
				struct pollfd pf = {pfd, POLLIN, 0};
				while (poll(&pf, 1, 10000) < 0 && errno == EINTR)
					;
			}
			close(pfd);
		}
	}
	ac_cgroup_t *cg = NULL;
	int rc = 0;
	char leaf[128];
	if (cgroup_leaf(st, leaf, sizeof(leaf)) && ac_cgroup_open(leaf, &cg, NULL) == 0) {
		rc = ac_cgroup_destroy(cg, err);
		ac_cgroup_free(cg);
	}
	unlink(p.sock);
	unlink(p.pidfile);
	ac_net_teardown(ctx->home, name, false);
	/* The disk's loop device goes with the last mount of it; a stop returns after that
	 * (a host process still holding a file of the sandbox open may delay it). */
	if (ac_state_int(st, "disk_mb", 0) > 0)
		(void)ac_disk_wait_released(p.data, 5000);
	return rc;
}

static void release_slot(const ac_backend_ctx_t *ctx, const json_t *st)
{
	long long slot = ac_state_int(st, "uid_slot", -1);
	if (slot >= 0 && slot < AC_SLOTS_PERSISTENT) {
		char owner[1200];
		owner_of(ctx, ac_state_str(st, "name", ""), owner, sizeof(owner));
		ac_slot_release((uint32_t)slot, owner);
	}
}

/* create reserved a uid slot and nothing else (data, records and logs come with the
 * first start): only that slot goes back. */
static void native_uncreate(const ac_backend_ctx_t *ctx, const json_t *st)
{
	release_slot(ctx, st);
}

static int native_destroy(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	native_paths_t p;
	paths(ctx, ac_state_str(st, "name", ""), &p);
	unlink(p.log);
	ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
	if (ac_rm_rf_at(AT_FDCWD, p.data, err) < 0) {
		ac_error_prefix(err, "cannot delete the sandbox's files");
		return -1;
	}
	release_slot(ctx, st);
	return 0;
}

static int native_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		       const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	(void)st; /* by name: the supervisor's socket (AC_CAP_EXEC_BY_NAME) */
	native_paths_t p;
	paths(ctx, name, &p);
	return ac_rt_exec(p.sock, cmd, fds, res, err);
}

static int native_run(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
		      int fds[3], ac_result_t *res, ac_error_t **err)
{
	if (need_root(err) < 0)
		return -1;
	ac_rt_spec_t spec;
	_cleanup_mem_ ac_native_mem_t mem = {0};
	if (spec_from_state(ctx, st, &spec, &mem, err) < 0)
		return -1;
	native_net_t nn;
	if (net_begin(ctx, st, &spec, &nn, err) < 0)
		return -1;
	int rc = ac_rt_run(&spec, cmd, fds, res, err);
	net_end(&nn);
	if (nn.on)
		ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
	return rc;
}

static void native_gc(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	ac_cgroup_gc_runs();
}

/* Reads a cgroup file holding one number; -1 if unreadable (or "max"). */
static long long cg_read_num(const char *dir, const char *knob)
{
	char p[512];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(p, sizeof(p), "%s/%s", dir, knob);
	if (ac_read_file_at(AT_FDCWD, p, 64, &buf, &len, NULL) < 0)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	return v;
}

static int cg_write_num(const char *dir, const char *knob, unsigned long long v, ac_error_t **err)
{
	char p[512], val[32];
	snprintf(p, sizeof(p), "%s/%s", dir, knob);
	snprintf(val, sizeof(val), "%llu", v);
	return ac_write_string_at(AT_FDCWD, p, val, err);
}

static int refuse_shrink(const char *name, uint64_t mb, long long used, int errnum,
			 ac_error_t **err)
{
	if (used >= 0)
		return ac_error_set(err, AC_ERR_STATE, errnum,
				    "cannot lower the memory limit of '%s' to %llu MB: it uses "
				    "%lld MB now (free memory in it first, or stop it)",
				    name, (unsigned long long)mb, (used + (1 << 20) - 1) >> 20);
	return ac_error_set(err, AC_ERR_STATE, errnum,
			    "cannot lower the memory limit of '%s' to %llu MB: it uses more now",
			    name, (unsigned long long)mb);
}

/* The memory limit first, on its own, so that a refusal is reported as what it is. On v1
 * the kernel refuses (EBUSY) a limit below what it cannot reclaim; v2 would OOM-kill
 * instead, so there we refuse ourselves. */
static int resize_memory(const char *leaf, const char *name, uint64_t mb, ac_error_t **err)
{
	const char *root;
	int v = ac_cgroup_mode(&root);
	char dir[400];
	unsigned long long bytes = (unsigned long long)mb << 20;
	if (v == 2) {
		snprintf(dir, sizeof(dir), "%s/agentcell/%s", root, leaf);
		long long cur = cg_read_num(dir, "memory.current");
		if (cur >= 0 && (unsigned long long)cur > bytes)
			return refuse_shrink(name, mb, cur, EBUSY, err);
		return 0; /* ac_cgroup_set_limits writes memory.max */
	}
	if (v != 1)
		return 0;
	snprintf(dir, sizeof(dir), "%s/memory/agentcell/%s", root, leaf);
	long long cur = cg_read_num(dir, "memory.limit_in_bytes");
	bool memsw = cg_read_num(dir, "memory.memsw.limit_in_bytes") >= 0;
	/* memsw must stay >= the limit: lower the limit first, raise memsw first. */
	bool shrink = cur < 0 || bytes < (unsigned long long)cur;
	_cleanup_error_ ac_error_t *e = NULL;
	if (shrink) {
		if (cg_write_num(dir, "memory.limit_in_bytes", bytes, &e) < 0) {
			if (e->errnum == EBUSY)
				return refuse_shrink(name, mb,
						     cg_read_num(dir, "memory.usage_in_bytes"),
						     EBUSY, err);
			return ac_error_set(err, AC_ERR_BACKEND, 0, "%s", e->msg);
		}
		if (memsw && cg_write_num(dir, "memory.memsw.limit_in_bytes", bytes, &e) < 0) {
			/* Keeps the old limit if memory+swap use is above the new one. */
			if (cur >= 0)
				cg_write_num(dir, "memory.limit_in_bytes", (unsigned long long)cur,
					     NULL);
			if (e->errnum == EBUSY)
				return refuse_shrink(
				    name, mb, cg_read_num(dir, "memory.memsw.usage_in_bytes"),
				    EBUSY, err);
			return ac_error_set(err, AC_ERR_BACKEND, 0, "%s", e->msg);
		}
		return 0;
	}
	if (memsw && cg_write_num(dir, "memory.memsw.limit_in_bytes", bytes, err) < 0)
		return -1;
	return cg_write_num(dir, "memory.limit_in_bytes", bytes, err);
}

static int native_resize(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	ac_rt_spec_t spec;
	_cleanup_mem_ ac_native_mem_t mem = {0};
	char leaf[128];
	const char *name = ac_state_str(st, "name", "");
	if (spec_from_state(ctx, st, &spec, &mem, err) < 0)
		return -1;
	if (!cgroup_leaf(st, leaf, sizeof(leaf)))
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "sandbox '%s' has no uid range in its state", name);
	if (spec.limits.memory_mb && resize_memory(leaf, name, spec.limits.memory_mb, err) < 0)
		return -1;
	ac_cgroup_t *cg = NULL;
	if (ac_cgroup_open(leaf, &cg, err) < 0)
		return -1;
	int rc = ac_cgroup_set_limits(cg, &spec.limits, err);
	ac_cgroup_free(cg);
	if (rc < 0)
		ac_error_prefix(err, "cannot change the limits of '%s'", name);
	return rc;
}

static int native_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
			      int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			      ac_error_t **err)
{
	native_paths_t p;
	paths(ctx, ac_state_str(st, "name", ""), &p);
	ac_rt_detach_id_t id;
	int rc = ac_rt_exec_detach(p.sock, cmd, out_fd, err_fd, status_fd, &id, err);
	if (rc < 0)
		return rc;
	*pid = id.pid;
	*shim = id.shim;
	/* The host's own record, after the shim's (which never writes past its 512 bytes):
	 * the identities that let the host tell and end what the sandbox did to the shim. */
	json_t *h = json_pack("{s{sIsIsIsIsI}}", "host", "pid", (json_int_t)id.pid, "pid_start",
			      (json_int_t)id.pid_start, "shim", (json_int_t)id.shim, "shim_start",
			      (json_int_t)id.shim_start, "pidns", (json_int_t)id.pidns);
	char *j = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	char buf[AC_DETACH_STATUS_SIZE];
	if (j && strlen(j) < sizeof(buf) - 1) {
		memset(buf, ' ', sizeof(buf));
		memcpy(buf, j, strlen(j));
		buf[sizeof(buf) - 1] = '\n';
		(void)!pwrite(status_fd, buf, sizeof(buf), AC_DETACH_STATUS_SIZE);
	}
	free(j);
	return 0;
}

static void host_id(const json_t *status, ac_rt_detach_id_t *id)
{
	const json_t *h = json_object_get(status, "host");
	id->pid = (pid_t)ac_state_int(h, "pid", 0);
	id->shim = (pid_t)ac_state_int(h, "shim", 0);
	id->pid_start = (unsigned long long)ac_state_int(h, "pid_start", 0);
	id->shim_start = (unsigned long long)ac_state_int(h, "shim_start", 0);
	id->pidns = (unsigned long long)ac_state_int(h, "pidns", 0);
}

static int native_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
				ac_error_t **err)
{
	(void)ctx;
	(void)st;
	ac_rt_detach_id_t id;
	host_id(status, &id);
	return ac_rt_kill_detached(&id, err);
}

static int native_detached_state(const ac_backend_ctx_t *ctx, const json_t *st,
				 const json_t *status)
{
	(void)ctx;
	(void)st;
	if (!json_is_object(json_object_get(status, "host")))
		return 2; /* no host record (older agentcell): trust the shim's */
	ac_rt_detach_id_t id;
	host_id(status, &id);
	return ac_rt_detached_state(&id);
}

/* uid-slot claims of this home's sandboxes that no create holds (a create killed between
 * its claim and its state file). */
static void native_sweep(const ac_backend_ctx_t *ctx, bool remove, json_t *found)
{
	char owners[1300];
	snprintf(owners, sizeof(owners), "%s/sandboxes/", ctx->home);
	ac_slot_sweep(owners, remove, found);
}

static bool native_available(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	return geteuid() == 0;
}

int ac_native_in_root(const ac_backend_ctx_t *ctx, const json_t *st, const ac_rt_root_ctl_t *ctl,
		      ac_rt_root_fn fn, void *arg, ac_error_t **err)
{
	/* A stopped sandbox's layers get mounted here: no start may mount them meanwhile, so
	 * the lock (ctx->lock, taken by the manager) is held throughout. A running sandbox's
	 * root is reached through its init, whose identity is all the lock must give: the
	 * lock goes before any I/O, so a stop or a remove never waits for a file operation
	 * (the operation then fails, see ac_rt_in_root). */
	const char *name = ac_state_str(st, "name", "");
	native_paths_t p;
	paths(ctx, name, &p);
	ac_rt_spec_t spec;
	_cleanup_mem_ ac_native_mem_t mem = {0};
	long pid = 0;
	if (spec_from_state(ctx, st, &spec, &mem, err) < 0)
		return -1;
	spec.data_dir = p.data;
	unsigned long long start = 0;
	if (!supervisor_alive(p.pidfile, &pid, &start))
		pid = 0;
	if (pid > 0)
		ac_backend_unlock(ctx);
	else if (disk_prepare(name, p.data, spec.disk_mb, err) < 0)
		return -1;
	return ac_rt_in_root(&spec, (pid_t)pid, start, ctl, fn, arg, err);
}

static int native_snapshot(const ac_backend_ctx_t *ctx, const json_t *st, int out_fd,
			   char *digest_out, char *diff_id_out, ac_error_t **err)
{
	native_paths_t p;
	const char *name = ac_state_str(st, "name", "");
	paths(ctx, name, &p);
	if (supervisor_alive(p.pidfile, NULL, NULL))
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "sandbox '%s' is running: stop it before taking a snapshot",
				    name);
	/* A start's builder whose caller died (we hold the sandbox's lock: no live start). */
	ac_rt_end_left_builder(p.sock);
	return ac_native_snapshot(ctx, st, p.data, out_fd, digest_out, diff_id_out, err);
}

const ac_backend_ops_t ac_native_ops = {
    .create = native_create,
    .uncreate = native_uncreate,
    .start = native_start,
    .stop = native_stop,
    .destroy = native_destroy,
    .is_running = native_is_running,
    .exec = native_exec,
    .run = native_run,
    .gc = native_gc,
    .resize = native_resize,
    .files = ac_native_files,
    .exec_detach = native_exec_detach,
    .kill_detached = native_kill_detached,
    .detached_state = native_detached_state,
    .snapshot = native_snapshot,
    .available = native_available,
    .probe = ac_native_probe,
    .sweep = native_sweep,
};
