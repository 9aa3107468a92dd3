/* A new sandbox's state, built from what a user asked (ac_manager_build_state): the profile
 * applied, every value validated, the backend chosen from the table, images and host
 * directories checked against what this manager allows. Nothing is written here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "agentcell/backend.h"
#include "agentcell/config.h"
#include "agentcell/files.h"
#include "agentcell/languages.h"
#include "agentcell/manager.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"
#include "core/internal.h"
#include "image/image.h"
#include "net/net.h"
#include "base/procid.h"

static bool below_a_root(char *const *roots, const char *path)
{
	for (char *const *r = roots; r && *r; r++) {
		size_t l = strlen(*r);
		if (!strncmp(path, *r, l) && (path[l] == '/' || path[l] == '\0'))
			return true;
	}
	return false;
}

/* agentkernel's three profiles (profiles.c). Explicit options win over the profile's. */
static int apply_profile(const ac_sandbox_opts_t *o, ac_sandbox_opts_t *r,
			 const char *const **pass_env, ac_error_t **err)
{
	*r = *o;
	*pass_env = NULL;
	const char *p = o->profile ? o->profile : "moderate";
	const ac_profile_t *prof = ac_profile_find(p);
	if (!prof)
		return ac_error_set(err, AC_ERR_INVALID, 0, "unknown profile '%s' (use %s)", p,
				    ac_profile_names());
	*pass_env = prof->pass_env;
	uint64_t mem = prof->memory_mb;
	double cpus = prof->cpus;
	bool mount_cwd = prof->mount_cwd, read_only = prof->read_only;
	r->profile = p;
	if (!o->memory_set)
		r->memory_mb = mem;
	if (!o->cpus_set)
		r->cpus = cpus;
	if (!o->pids_set)
		r->pids = 512;
	if (!o->disk_set)
		r->disk_mb = AC_DISK_DEFAULT_MB;
	if (!o->mount_cwd_set)
		r->mount_cwd = mount_cwd;
	if (!o->read_only_set)
		r->read_only = read_only;
	if (!o->network_set)
		r->network = prof->network;
	return 0;
}

/* The sandbox's "net" (src/net/net.h): egress policy, secrets and published ports, all
 * checked here, before anything exists. */
static int net_state(ac_manager_t *m, const ac_backend_t *be, const ac_sandbox_opts_t *r,
		     json_t *st, ac_error_t **err)
{
	bool lists = (r->allow_hosts && *r->allow_hosts) || (r->block_hosts && *r->block_hosts) ||
		     (r->secrets && *r->secrets) || (r->publish && *r->publish) ||
		     r->allowlist_only_hosts;
	if (!r->network && !lists)
		return 0;
	if (lists && ac_backend_require(be, AC_CAP_EGRESS,
					"egress policy, secrets and published ports", err) < 0)
		return -1;
	if (!(be->caps & AC_CAP_EGRESS))
		return 0; /* network as the engine gives it (README: what is enforced where) */
	const ac_net_opts_t no = {.network = r->network,
				  .allow_hosts = r->allow_hosts,
				  .block_hosts = r->block_hosts,
				  .allowlist_only = r->allowlist_only_hosts,
				  .secrets = r->secrets,
				  .publish = r->publish,
				  .agent = r->agent};
	json_t *net = NULL;
	if (ac_net_state_new(ac_manager_home(m), &no, &net, err) < 0)
		return -1;
	if (!net)
		return 0;
	/* The proxy variables, placeholders and CA bundle variables go after the caller's
	 * own: the sandbox sees them whatever it was given. */
	json_t *add = ac_net_sandbox_env(net);
	json_array_extend(json_object_get(st, "env"), add);
	json_decref(add);
	json_object_set_new(st, "net", net);
	return 0;
}

/* An image reference from the store (src/image/), pulled when missing. A name that is an
 * image id (or its prefix) is only looked up. */
static int store_image(ac_manager_t *m, const ac_sandbox_opts_t *r, const char *ref, json_t **rec,
		       ac_error_t **err)
{
	ac_error_t *e = NULL;
	if (ac_image_lookup(ac_manager_home(m), ref, false, rec, &e) == 0)
		return 0;
	ac_image_ref_t parsed;
	if (!e || e->kind != AC_ERR_NOT_FOUND || !strncmp(ref, "sha256:", 7) ||
	    ac_image_ref_parse(ref, &parsed, NULL) < 0) {
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	ac_error_free(e);
	const ac_image_req_t req = {.config = r->backend_config,
				    .progress_fd = r->pull_progress_fd,
				    .cancel_fd = ac_manager_cancel_fd()};
	return ac_manager_image_pull(m, ref, &req, rec, err);
}

/* The image's Env first, then the state's own entries (the caller's), which win a KEY
 * that both have. */
static void merge_image_env(json_t *st, const json_t *image_env)
{
	json_t *own = json_object_get(st, "env");
	json_t *merged = json_array();
	size_t i, j;
	json_t *e, *o;
	json_array_foreach(image_env, i, e)
	{
		const char *kv = json_string_value(e);
		const char *eq = kv ? strchr(kv, '=') : NULL;
		if (!eq || eq == kv)
			continue;
		bool overridden = false;
		json_array_foreach(own, j, o)
		{
			const char *okv = json_string_value(o);
			if (okv && !strncmp(okv, kv, (size_t)(eq - kv) + 1))
				overridden = true;
		}
		if (!overridden)
			json_array_append(merged, e);
	}
	json_array_extend(merged, own);
	json_object_set_new(st, "env", merged);
}

/* The state fields of a sandbox made from an image record (src/image/image.h). */
static void image_fields(json_t *st, const json_t *rec, const char *image, const char *tmpl)
{
	const json_t *cfg = json_object_get(rec, "config");
	json_t *layers = json_array();
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(rec, "layers"), i, l)
	{
		const char *d = ac_state_str(l, "digest", "");
		if (ac_image_digest_valid(d))
			json_array_append_new(layers, json_string(d + 7));
	}
	json_t *tpl = json_object_get(rec, "template");
	json_t *help = json_object_get(tpl, "description");
	json_object_set_new(st, "image", json_string(image));
	json_object_set_new(st, "image_id", json_string(ac_state_str(rec, "id", "")));
	json_object_set_new(st, "image_base", json_string(ac_state_str(rec, "base", "oci")));
	json_object_set_new(st, "image_layers", layers);
	json_t *wd = json_object_get(cfg, "workdir"), *user = json_object_get(cfg, "user");
	bool has_wd = json_is_string(wd) && json_string_value(wd)[0];
	bool has_user = json_is_string(user) && json_string_value(user)[0];
	json_object_set_new(st, "workdir", has_wd ? json_incref(wd) : json_null());
	json_object_set_new(st, "user", has_user ? json_incref(user) : json_null());
	json_object_set_new(st, "created_from_template", tmpl ? json_string(tmpl) : json_null());
	json_object_set_new(st, "template_help_text",
			    tmpl && json_is_string(help) ? json_incref(help) : json_null());
	json_t *ep = json_object_get(cfg, "entrypoint"), *cmd = json_object_get(cfg, "cmd");
	json_object_set_new(st, "image_config",
			    json_pack("{sO sO}", "entrypoint", json_is_array(ep) ? ep : json_null(),
				      "cmd", json_is_array(cmd) ? cmd : json_null()));
	merge_image_env(st, json_object_get(cfg, "env"));
}

/* --image REF or --template NAME on a backend with an image store: the record, and the
 * state's fields from it. */
static int image_state(ac_manager_t *m, const ac_sandbox_opts_t *r, const char *ref, json_t *st,
		       ac_error_t **err)
{
	json_t *rec = NULL;
	char canon[700];
	if (r->template) {
		if (ac_image_lookup(ac_manager_home(m), r->template, true, &rec, err) < 0)
			return -1;
		snprintf(canon, sizeof(canon), "template:%s", r->template);
	} else {
		if (store_image(m, r, ref, &rec, err) < 0)
			return -1;
		/* The canonical form when the record carries it (a reference), else the id (a
		 * name given as an id or a prefix of one). */
		ac_image_ref_t parsed;
		snprintf(canon, sizeof(canon), "%s", ac_state_str(rec, "id", ref));
		if (ac_image_ref_parse(ref, &parsed, NULL) == 0) {
			char f[700];
			ac_image_ref_format(&parsed, f, sizeof(f));
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(rec, "refs"), i, v)
			{
				if (json_is_string(v) && !strcmp(json_string_value(v), f))
					snprintf(canon, sizeof(canon), "%s", f);
			}
		}
	}
	image_fields(st, rec, canon, r->template);
	json_decref(rec);
	return 0;
}

int ac_manager_image_argv(const json_t *state, char ***argv, ac_error_t **err)
{
	const json_t *ic = json_object_get(state, "image_config");
	const json_t *parts[2] = {json_object_get(ic, "entrypoint"), json_object_get(ic, "cmd")};
	size_t n = json_array_size(parts[0]) + json_array_size(parts[1]);
	*argv = NULL;
	if (!n || n > 4096)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "no command given and image '%s' has no Entrypoint or Cmd",
				    ac_state_str(state, "image", "host"));
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t k = 0;
	for (int p = 0; p < 2; p++) {
		size_t i;
		json_t *a;
		json_array_foreach(parts[p], i, a)
		{
			if (!json_is_string(a) || !(v[k++] = strdup(json_string_value(a)))) {
				ac_strv_free(v);
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "image '%s' has an invalid Entrypoint or Cmd",
						    ac_state_str(state, "image", "host"));
			}
		}
	}
	if (!k || !v[0][0]) {
		ac_strv_free(v);
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "image '%s' has an empty program name in its Entrypoint or Cmd",
				    ac_state_str(state, "image", "host"));
	}
	*argv = v;
	return 0;
}

int ac_manager_build_state(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o,
			   json_t **out, ac_error_t **err)
{
	ac_sandbox_opts_t r;
	const char *const *pass_env;
	if (!ac_name_valid(name))
		return ac_error_set(
		    err, AC_ERR_INVALID, 0,
		    "invalid sandbox name '%s': use 1-63 characters of A-Z a-z 0-9 _ -, "
		    "starting and ending with a letter or digit",
		    name);
	if (apply_profile(o, &r, &pass_env, err) < 0)
		return -1;
	if (r.memory_set && (r.memory_mb < AC_MEMORY_MIN_MB || r.memory_mb > AC_MEMORY_MAX_MB))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "memory must be between %llu and %llu MB", AC_MEMORY_MIN_MB,
				    AC_MEMORY_MAX_MB);
	if (!(r.cpus >= AC_CPUS_MIN && r.cpus <= AC_CPUS_MAX))
		return ac_error_set(err, AC_ERR_INVALID, 0, "cpus must be between 0.01 and 1024");
	if (r.pids < AC_PIDS_MIN || r.pids > AC_PIDS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "pids must be between %llu and %llu",
				    AC_PIDS_MIN, AC_PIDS_MAX);
	if (r.disk_mb && (r.disk_mb < AC_DISK_MIN_MB || r.disk_mb > AC_DISK_MAX_MB))
		return ac_error_set(err, AC_ERR_INVALID, 0, "disk must be between %llu and %llu MB",
				    AC_DISK_MIN_MB, AC_DISK_MAX_MB);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	const ac_backend_t *be = ac_backend_resolve(r.backend, &ctx, err);
	if (!be)
		return -1;
	const char *backend = be->name;
	bool engine = be->caps & AC_CAP_IMAGES;
	if (r.network && ac_backend_require(be, AC_CAP_NETWORK, "network access", err) < 0)
		return -1;
	char image[PATH_MAX];
	/* A code run on an engine takes its language's image unless the caller gave one. */
	const char *img = ac_language_pick_image(&r, engine);
	/* The image store (native): a reference (pulled when missing) or a template. An image
	 * from agentcell.toml gives way to --template. */
	bool explicit_image = r.image && !r.image_from_config;
	if (r.template && explicit_image)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "--image and --template exclude each other: give one");
	if (r.template && !ac_template_name_valid(r.template))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid template name '%s': use 1-63 of a-z 0-9 _ . -, "
				    "starting with a letter or digit",
				    r.template);
	if (r.template && !(be->caps & AC_CAP_IMAGE_STORE))
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "templates are not supported by the %s backend (it uses its "
				    "engine's images: give --image)",
				    backend);
	if (r.template)
		img = NULL;
	bool from_store =
	    r.template || ((be->caps & AC_CAP_IMAGE_STORE) && img && !ac_image_is_directory(img));
	if (!img)
		img = "host";
	if (engine && !ac_image_ref_valid(img))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s' for the %s backend", img,
				    backend);
	if (!engine && !from_store && strcmp(img, "host") != 0) {
		struct stat st;
		if (!realpath(img, image) || stat(image, &st) < 0)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "image directory '%s' does not exist", img);
		if (!S_ISDIR(st.st_mode))
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "image directory '%s' is not a directory", img);
		if (strcmp(image, "/") == 0)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "the host's / cannot be an image: use --image host");
		if (m->restricted && !below_a_root(m->image_roots, image))
			return ac_error_set(err, AC_ERR_PERMISSION, 0,
					    "image directory '%s' is not allowed here: only 'host' "
					    "or a directory below an image root of the server "
					    "(serve --image-root DIR)",
					    img);
		img = image;
	}
	/* Requests from other users mount nothing of the host (permissive's /workspace would
	 * be the server's working directory, writable). */
	if (m->restricted && r.mount_cwd && !m->allow_mount_cwd) {
		if (o->mount_cwd_set && o->mount_cwd)
			return ac_error_set(err, AC_ERR_PERMISSION, 0,
					    "mounting a host directory at /workspace is not "
					    "allowed here (the operator allows it with "
					    "'agentcell mcp --mount-cwd')");
		r.mount_cwd = false;
	}
	char cwd[PATH_MAX];
	if (r.mount_cwd) {
		if (r.cwd)
			snprintf(cwd, sizeof(cwd), "%s", r.cwd);
		else if (!getcwd(cwd, sizeof(cwd)))
			return ac_error_set(err, AC_ERR_INVALID, errno,
					    "cannot determine the working directory");
		if (strcmp(cwd, "/") == 0)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "refusing to mount the host's / at /workspace");
	}
	json_t *env = json_array();
	for (const char *const *k = pass_env; k && *k; k++) {
		const char *v = getenv(*k);
		if (v)
			json_array_append_new(env, json_sprintf("%s=%s", *k, v));
	}
	for (char **e = r.env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e) {
			json_decref(env);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid environment entry '%s': use KEY=VALUE", *e);
		}
		json_array_append_new(env, json_string(*e));
	}
	json_t *st = json_pack(
	    "{ss ss si sI sI ss so so so so so so so ss sI sb so so}", "name", name, "image", img,
	    "vcpus", (int)ceil(r.cpus), "memory_mb", (json_int_t)r.memory_mb, "vsock_cid",
	    (json_int_t)0, "backend", backend, "ttl_seconds", json_null(), "expires_at",
	    json_null(), "ports", json_array(), "labels", json_object(), "description", json_null(),
	    "archived_at", json_null(), "archived_reason", json_null(), "profile", r.profile,
	    "pids_limit", (json_int_t)r.pids, "read_only", r.read_only, "env", env, "mount_cwd",
	    r.mount_cwd ? json_string(cwd) : json_null());
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the sandbox state");
	json_object_set_new(st, "cpus", json_real(r.cpus));
	json_object_set_new(st, "network", json_boolean(r.network));
	json_t *table = json_object_get(r.backend_config, be->name);
	if (json_is_object(table)) {
		json_t *copy = json_deep_copy(table);
		json_t *file = json_object_get(r.backend_config, AC_CONFIG_FILE_KEY);
		if (copy && json_is_string(file))
			json_object_set(copy, AC_CONFIG_FILE_KEY, file);
		json_object_set_new(st, be->name, copy);
	}
	/* Enforced by the backends that can (0: unlimited, the operator's choice). */
	if (be->caps & AC_CAP_DISK)
		json_object_set_new(st, "disk_mb", json_integer((json_int_t)r.disk_mb));
	if (r.agent && !ac_agent_keys(r.agent)) {
		json_decref(st);
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "unknown agent '%s' (see 'agentcell agents')", r.agent);
	}
	if (r.init_script && (strlen(r.init_script) > AC_INIT_SCRIPT_MAX || !r.init_script[0])) {
		json_decref(st);
		return ac_error_set(err, AC_ERR_INVALID, 0, "the init script must be 1 to %d bytes",
				    AC_INIT_SCRIPT_MAX);
	}
	json_object_set_new(st, "agent", r.agent ? json_string(r.agent) : json_null());
	json_object_set_new(st, "init_script",
			    r.init_script ? json_string(r.init_script) : json_null());
	if (r.init_script && !json_is_string(json_object_get(st, "init_script"))) {
		json_decref(st);
		return ac_error_set(err, AC_ERR_INVALID, 0, "the init script is not valid UTF-8");
	}
	for (char **f = r.files; f && *f; f++) {
		const char *colon = strrchr(*f, ':');
		if (!colon || colon == *f || colon[1] != '/') {
			json_decref(st);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid --file '%s': use HOST_PATH:/path/in/sandbox",
					    *f);
		}
	}
	if (r.allow || r.block || r.allowlist_only) {
		json_t *allow = json_array(), *block = json_array();
		for (char **a = r.allow; a && *a; a++)
			json_array_append_new(allow, json_string(*a));
		for (char **b = r.block; b && *b; b++)
			json_array_append_new(block, json_string(*b));
		json_object_set_new(st, "command_policy",
				    json_pack("{so so sb}", "allow", allow, "block", block,
					      "allowlist_only", r.allowlist_only));
	}
	/* Last of the checks (a pull may take a while), before the network's variables, which
	 * go after the image's. */
	if (ac_lifecycle_apply_opts(st, &r, err) < 0 ||
	    (from_store && image_state(m, &r, img, st, err) < 0) ||
	    net_state(m, be, &r, st, err) < 0 || ac_volumes_state(m, be, r.volumes, st, err) < 0) {
		json_decref(st);
		return -1;
	}
	*out = st;
	return 0;
}
