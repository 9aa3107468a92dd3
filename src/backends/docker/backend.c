/* The Docker/Podman backend behind struct ac_backend_ops. A persistent sandbox is a
 * container named agentcell-<name> (labels agentcell.sandbox, agentcell.managed), created
 * stopped by `create`, kept alive by the engine's init and an idle loop; its id, the engine
 * it lives on and the limits it was created with are recorded in the state. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/parse.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "net/net.h"
#include "runtime/runtime.h"

bool ac_docker_is_podman(const json_t *st)
{
	return strcmp(ac_state_str(st, "backend", "docker"), "podman") == 0;
}

int ac_docker_for_state(const json_t *st, ac_docker_t **out, ac_error_t **err)
{
	ac_docker_host_t h;
	if (ac_docker_host_find(ac_state_str(st, "docker_host", NULL), ac_docker_is_podman(st), &h,
				NULL, err) < 0)
		return -1;
	return ac_docker_open(&h, out, err);
}

/* The container of a state, escaped for a URL path: its id, else its name. */
static void container_ref(const json_t *st, char *buf, size_t len)
{
	const char *id = ac_state_str(st, "container_id", NULL);
	char name[128];
	ac_docker_container_name(ac_state_str(st, "name", ""), name, sizeof(name));
	if (ac_docker_escape(id ? id : name, buf, len) < 0)
		snprintf(buf, len, "invalid");
}

/* One request about the sandbox's container: /containers/<id><suffix>. */
int ac_docker_container_call(ac_docker_t *d, const json_t *st, const char *method,
			     const char *suffix, json_t *json, ac_docker_resp_t *r,
			     ac_error_t **err)
{
	char ref[400], path[700];
	container_ref(st, ref, sizeof(ref));
	snprintf(path, sizeof(path), "/containers/%s%s", ref, suffix);
	ac_docker_req_t req = {.method = method, .path = path, .json = json};
	return ac_docker_call(d, &req, r, err);
}

/* ---- create, start, stop, destroy ---- */

int ac_docker_create_container(ac_docker_t *d, const json_t *st, const ac_docker_create_opts_t *o,
			       char *id, size_t idlen, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	json_t *body = ac_docker_create_body(st, o->run, o->extra_env, err);
	if (!body)
		return -1;
	if (ac_docker_body_extend(body, o->bundle, o->one_shot, err) < 0) {
		json_decref(body);
		return -1;
	}
	char cname[128], esc[400], path[512];
	ac_docker_container_name(name, cname, sizeof(cname));
	ac_docker_escape(cname, esc, sizeof(esc));
	snprintf(path, sizeof(path), "/containers/create?name=%s", esc);
	ac_docker_resp_t r;
	ac_docker_req_t req = {.method = "POST", .path = path, .json = body};
	int rc = ac_docker_call(d, &req, &r, err);
	json_decref(body);
	if (rc < 0)
		return -1;
	const char *image = ac_docker_image_of(st);
	const char *tool = ac_docker_is_podman(st) ? "podman" : "docker";
	if (r.status == 404)
		rc = ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				  "image '%s' is not available to the container engine at %s "
				  "(pull or build it first: %s pull %s)",
				  image, ac_docker_host(d)->spec, tool, image);
	else if (r.status == 409 || (r.status >= 400 && r.len < AC_DOCKER_ANSWER_MAX &&
				     strstr(r.body, "already in use")))
		rc = ac_error_set(err, AC_ERR_EXISTS, 0,
				  "a container named '%s' already exists on %s (left by another "
				  "agentcell home? remove it with: %s rm -f %s)",
				  cname, ac_docker_host(d)->spec, tool, cname);
	else if (r.status < 200 || r.status >= 300)
		rc = ac_docker_fail(&r, "cannot create the container", err);
	else if (ac_docker_parse_id(r.body, r.len, id, idlen) < 0)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "the container engine's answer to create has no container id");
	ac_docker_resp_free(&r);
	return rc;
}

int ac_docker_remove_container(ac_docker_t *d, const char *ref, ac_error_t **err)
{
	char path[512];
	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", ref);
	ac_docker_resp_t r;
	ac_docker_req_t req = {.method = "DELETE", .path = path};
	if (ac_docker_call(d, &req, &r, err) < 0)
		return -1;
	int rc = 0;
	if (r.status != 404 && (r.status < 200 || r.status >= 300))
		rc = ac_docker_fail(&r, "cannot remove the container", err);
	ac_docker_resp_free(&r);
	return rc;
}

static int docker_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	char id[129];
	_cleanup_free_ char *bundle = NULL;
	if (ac_docker_net_bundle(ctx, d, st, &bundle, err) < 0) {
		ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
		return -1;
	}
	ac_docker_create_opts_t o = {.bundle = bundle};
	if (ac_docker_create_container(d, st, &o, id, sizeof(id), err) < 0) {
		if (ac_docker_has_net(st))
			ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
		return -1;
	}
	json_object_set_new(st, "docker_host", json_string(ac_docker_host(d)->spec));
	json_object_set_new(st, "container_id", json_string(id));
	json_t *lim =
	    json_pack("{sO sO sO}", "memory_mb", json_object_get(st, "memory_mb"), "cpus",
		      json_object_get(st, "cpus"), "pids_limit", json_object_get(st, "pids_limit"));
	json_object_set_new(st, "container_limits", lim ? lim : json_null());
	return 0;
}

static int inspect(ac_docker_t *d, const json_t *st, ac_docker_inspect_t *out, long *status,
		   ac_error_t **err)
{
	memset(out, 0, sizeof(*out)); /* defined on failure too: "not running" */
	ac_docker_resp_t r;
	if (ac_docker_container_call(d, st, "GET", "/json", NULL, &r, err) < 0)
		return -1;
	*status = r.status;
	int rc = 0;
	if (r.status != 200)
		rc = ac_docker_fail(&r, "cannot inspect the container", err);
	else if (ac_docker_parse_inspect(r.body, r.len, out) < 0)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "the container engine's inspect answer is malformed");
	ac_docker_resp_free(&r);
	return rc;
}

static bool limits_equal(const json_t *st)
{
	const json_t *c = json_object_get(st, "container_limits");
	static const char *keys[] = {"memory_mb", "cpus", "pids_limit"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++)
		if (!json_equal(json_object_get(c, keys[i]), json_object_get(st, keys[i])))
			return false;
	return c != NULL;
}

static int update_limits(ac_docker_t *d, const json_t *st, ac_error_t **err)
{
	char ref[400], path[512];
	container_ref(st, ref, sizeof(ref));
	uint64_t mem = (uint64_t)ac_state_int(st, "memory_mb", 512);
	double cpus = ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1));
	uint64_t pids = (uint64_t)ac_state_int(st, "pids_limit", 512);
	json_t *body = ac_docker_update_body(mem, cpus, pids);
	ac_docker_resp_t r;
	int rc = ac_docker_container_call(d, st, "POST", "/update", body, &r, err);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (r.status == 404 && r.len && r.body[0] != '{') {
		/* No such route (Podman 4): its own API has it. */
		ac_docker_resp_free(&r);
		body = ac_docker_update_body_libpod(mem, cpus, pids);
		snprintf(path, sizeof(path), LIBPOD_PREFIX "/containers/%s/update", ref);
		ac_docker_req_t req = {.method = "POST", .path = path, .json = body};
		rc = ac_docker_call(d, &req, &r, err);
		json_decref(body);
		if (rc < 0)
			return -1;
	}
	if (r.status < 200 || r.status >= 300) {
		ac_docker_fail(&r, "the container engine refused the new limits", err);
		rc = -1;
		if (err && *err && (*err)->kind == AC_ERR_BACKEND)
			(*err)->kind = AC_ERR_STATE;
	}
	ac_docker_resp_free(&r);
	return rc;
}

static int stop_container(ac_docker_t *d, const json_t *st, ac_error_t **err)
{
	ac_docker_resp_t r;
	if (ac_docker_container_call(d, st, "POST", "/stop?t=0", NULL, &r, err) < 0)
		return -1;
	int rc = 0;
	/* 304: already stopped; 404: the container is gone, so nothing runs. */
	if (r.status != 304 && r.status != 404 && (r.status < 200 || r.status >= 300))
		rc = ac_docker_fail(&r, "cannot stop the container", err);
	ac_docker_resp_free(&r);
	return rc;
}

int ac_docker_start_container(ac_docker_t *d, const json_t *st, ac_docker_net_t *net,
			      ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	ac_docker_resp_t r;
	if (ac_docker_container_call(d, st, "POST", "/start", NULL, &r, err) < 0)
		return -1;
	if (r.status != 304 && (r.status < 200 || r.status >= 300)) {
		char what[200];
		snprintf(what, sizeof(what), "cannot start the container of '%s'", name);
		ac_docker_fail(&r, what, err);
		ac_docker_resp_free(&r);
		return -1;
	}
	ac_docker_resp_free(&r);
	ac_docker_inspect_t in;
	long status;
	if (inspect(d, st, &in, &status, err) < 0)
		return -1;
	if (!in.running)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the container of '%s' exited at once (exit code %lld): its "
				    "image needs 'sh' and 'sleep'",
				    name, in.exit_code);
	/* Nothing runs without its proxy: a container whose proxy could not start is
	 * stopped again. */
	if (ac_docker_net_attach(net, name, (long)in.pid, in.id, err) < 0) {
		stop_container(d, st, NULL);
		return -1;
	}
	return 0;
}

static int docker_start(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	const char *name = ac_state_str(st, "name", "");
	const char *cwd = ac_state_str(st, "mount_cwd", NULL);
	if (cwd && access(cwd, F_OK) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno,
				    "the mounted directory %s is gone", cwd);
	ac_docker_net_t net;
	if (ac_docker_net_begin(ctx, d, st, &net, err) < 0)
		return -1;
	int rc = ac_docker_start_container(d, st, &net, err);
	ac_docker_net_end(&net);
	if (rc < 0) {
		if (net.on)
			ac_net_teardown(ctx->home, name, false);
		return -1;
	}
	/* A resize while stopped (or one the engine forgot over a restart) applies now. */
	if (!limits_equal(st) && update_limits(d, st, err) < 0) {
		ac_error_prefix(err, "sandbox '%s'", name);
		return -1;
	}
	return 0;
}

static int docker_stop(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	int rc = stop_container(d, st, err);
	/* The proxy ends with the container's init anyway (its pidfd): this also removes
	 * its record. */
	if (rc == 0 && ac_docker_has_net(st))
		ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), false);
	return rc;
}

/* The container create made, by the id it recorded (never by name). */
static void docker_uncreate(const ac_backend_ctx_t *ctx, const json_t *st)
{
	const char *id = ac_state_str(st, "container_id", NULL);
	_cleanup_docker_ ac_docker_t *d = NULL;
	char ref[400];
	/* create made the network's directory (the CA bundle) before the container. */
	if (ac_docker_has_net(st))
		ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
	if (!id || ac_docker_for_state(st, &d, NULL) < 0 ||
	    ac_docker_escape(id, ref, sizeof(ref)) < 0)
		return;
	ac_docker_remove_container(d, ref, NULL);
}

static int docker_destroy(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	char ref[400];
	container_ref(st, ref, sizeof(ref));
	if (ac_docker_remove_container(d, ref, err) < 0)
		return -1;
	if (ac_docker_has_net(st))
		ac_net_teardown(ctx->home, ac_state_str(st, "name", ""), true);
	return 0;
}

static bool docker_is_running(const ac_backend_ctx_t *ctx, const json_t *st, long *pid)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, NULL) < 0)
		return false;
	ac_docker_inspect_t in;
	long status;
	if (inspect(d, st, &in, &status, NULL) < 0)
		return false;
	if (pid)
		*pid = in.running ? (long)in.pid : 0;
	(void)ctx;
	return in.running;
}

static int docker_resize(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	_cleanup_docker_ ac_docker_t *d = NULL;
	if (ac_docker_for_state(st, &d, err) < 0)
		return -1;
	(void)ctx;
	return update_limits(d, st, err);
}

int ac_docker_orphans(const ac_backend_ctx_t *ctx, ac_docker_t *d, json_t **out, ac_error_t **err)
{
	char filt[300], path[400];
	ac_docker_escape("{\"label\":[\"" AC_DOCKER_LABEL_MANAGED "=true\"]}", filt, sizeof(filt));
	snprintf(path, sizeof(path), "/containers/json?all=1&filters=%s", filt);
	ac_docker_resp_t r;
	if (ac_docker_simple(d, "GET", path, NULL, 0, &r, "cannot list containers", err) < 0)
		return -1;
	json_t *all = NULL;
	int rc = ac_docker_parse_list(r.body, r.len, &all);
	ac_docker_resp_free(&r);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the container engine's list answer is malformed");
	json_t *orphans = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(all, i, c)
	{
		const char *sb = ac_state_str(c, "sandbox", NULL);
		json_t *st = NULL;
		bool known = false;
		if (sb && ac_name_valid(sb) && ac_store_load(ctx->store, sb, &st, NULL) == 0) {
			const char *cid = ac_state_str(st, "container_id", "");
			known = !strcmp(cid, ac_state_str(c, "id", ""));
			json_decref(st);
		}
		if (!known)
			json_array_append(orphans, c);
	}
	json_decref(all);
	*out = orphans;
	return 0;
}

/* ops.probe: the engine, its version and agentcell's containers that no state file knows
 * (shown, never deleted: they may belong to another agentcell home on the same engine). */
static json_t *docker_probe(const ac_backend_ctx_t *ctx)
{
	ac_docker_host_t h;
	const char *source = NULL;
	ac_error_t *e = NULL;
	json_t *out = json_object();
	if (ac_docker_host_find(NULL, false, &h, &source, &e) < 0) {
		json_object_set_new(out, "error", json_string(e ? e->msg : "no engine"));
		ac_error_free(e);
		return out;
	}
	json_object_set_new(out, "engine", json_string(h.spec));
	json_object_set_new(out, "source", json_string(source));
	_cleanup_docker_ ac_docker_t *d = NULL;
	ac_docker_resp_t r = {0};
	char version[200];
	if (ac_docker_open(&h, &d, &e) < 0 ||
	    ac_docker_simple(d, "GET", "/version", NULL, 0, &r, "version", &e) < 0 ||
	    ac_docker_parse_version(r.body, r.len, version, sizeof(version)) < 0) {
		json_object_set_new(out, "error",
				    json_string(e ? e->msg : "malformed /version answer"));
		ac_error_free(e);
		ac_docker_resp_free(&r);
		return out;
	}
	ac_docker_resp_free(&r);
	json_object_set_new(out, "version", json_string(version));
	json_t *orphans = NULL;
	if (ac_docker_orphans(ctx, d, &orphans, &e) == 0)
		json_object_set_new(out, "orphans", orphans);
	else
		json_object_set_new(out, "error", json_string(e ? e->msg : "list failed"));
	ac_error_free(e);
	return out;
}

/* The stream of a file operation reaches the container by its id: a stop or a remove
 * need not wait for it (the operation then fails). */
static int docker_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
			ac_error_t **err)
{
	ac_backend_unlock(ctx);
	return ac_docker_files(ctx, st, req, err);
}

/* For --backend auto: an engine answers where the CLI would look for it. */
static bool engine_available(bool podman)
{
	ac_docker_host_t h;
	if (ac_docker_host_find(NULL, podman, &h, NULL, NULL) < 0)
		return false;
	return podman || !strstr(h.spec, "podman");
}

static bool docker_available(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	return engine_available(false);
}

static bool podman_available(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	return engine_available(true);
}

/* The two differ only in where they look for the engine first (the state's "backend"
 * says which at every op) and in doctor: one probe reports the engine for both. */
#define DOCKER_OPS                                                                                 \
	.create = docker_create, .uncreate = docker_uncreate, .start = docker_start,               \
	.stop = docker_stop, .destroy = docker_destroy, .is_running = docker_is_running,           \
	.exec = ac_docker_exec, .run = ac_docker_run, .resize = docker_resize,                     \
	.files = docker_files, .exec_detach = ac_docker_exec_detach,                               \
	.kill_detached = ac_docker_kill_detached
const ac_backend_ops_t ac_docker_ops = {DOCKER_OPS, .available = docker_available,
					.probe = docker_probe};
const ac_backend_ops_t ac_podman_ops = {DOCKER_OPS, .available = podman_available};
