/* The HTTP API's sandbox handlers: list, get, create, delete, start, stop, recover, extend,
 * resize, patch, logs, audit, gc and reconcile. They call the manager
 * (include/agentcell/manager.h) and nothing below it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/parse.h"
#include "base/util.h"
#include "api/handlers.h"
#include "api/request.h"

/* ?label=k:v or k=v, repeatable; all must match. */
static int label_selectors(ac_api_req_t *req, char ***out, ac_api_resp_t *resp)
{
	const char *vals[AC_LABELS_MAX + 1];
	size_t n = req->query_all ? req->query_all(req, "label", vals, AC_LABELS_MAX + 1) : 0;
	*out = NULL;
	if (!n)
		return 0;
	if (n > AC_LABELS_MAX) {
		ac_api_fail(resp, 400, "at most %d label selectors", AC_LABELS_MAX);
		return -1;
	}
	char **sel = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; sel && i < n; i++) {
		sel[i] = strdup(vals[i] ? vals[i] : "");
		char *c = sel[i] ? strpbrk(sel[i], ":=") : NULL;
		char key[AC_LABEL_KEY_MAX + 1];
		const char *value;
		if (c)
			*c = '=';
		if (!c || ac_label_parse(sel[i], key, sizeof(key), &value, NULL) < 0) {
			ac_api_fail(resp, 400, "invalid label selector '%s': use key:value",
				    vals[i] ? vals[i] : "");
			ac_strv_free(sel);
			return -1;
		}
	}
	*out = sel;
	return 0;
}

void ac_h_list(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	char **sel = NULL;
	if (label_selectors(req, &sel, resp) < 0)
		return;
	json_t *all = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_list_labeled(api->m, sel, &all, &e);
	ac_strv_free(sel);
	if (rc < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	    json_array_append_new(out, ac_api_sandbox_info(json_incref(st)));
	json_decref(all);
	ac_api_ok(resp, 200, out);
}

static void reply_info(ac_api_t *api, const char *name, int status, ac_api_resp_t *resp)
{
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_info(api->m, name, &st, &e) < 0)
		ac_api_fail_error(resp, e);
	else
		ac_api_ok(resp, status, ac_api_sandbox_info(st));
}

void ac_h_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	reply_info(api, req->params[0], 200, resp);
}

void ac_h_by_uuid(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	const char *uuid = req->params[0];
	bool shape = strlen(uuid) == 36;
	for (int i = 0; shape && i < 36; i++)
		shape = (i == 8 || i == 13 || i == 18 || i == 23)
			    ? uuid[i] == '-'
			    : !!strchr("0123456789abcdefABCDEF", uuid[i]);
	if (!shape) {
		ac_api_fail(resp, 400, "invalid sandbox UUID '%s'", uuid);
		return;
	}
	json_t *all = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_list(api->m, &all, &e) < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		const char *u = json_string_value(json_object_get(st, "uuid"));
		if (u && !strcasecmp(u, uuid)) {
			ac_api_ok(resp, 200, ac_api_sandbox_info(json_incref(st)));
			json_decref(all);
			return;
		}
	}
	json_decref(all);
	ac_api_fail(resp, 404, "no sandbox with uuid '%s'", uuid);
}

/* lifecycle: {auto_stop_after, auto_archive_after, auto_delete_after} as durations, or the
 * state's own *_seconds names. */
static int lifecycle_opts(json_t *body, ac_sandbox_opts_t *o, ac_api_resp_t *resp)
{
	json_t *l = json_object_get(body, "lifecycle");
	if (!l || json_is_null(l))
		return 0;
	if (!json_is_object(l)) {
		ac_api_fail(resp, 400, "'lifecycle' must be an object");
		return -1;
	}
	static const char *const names[][2] = {{"auto_stop_after", "auto_stop_after_seconds"},
					       {"auto_archive_after", "auto_archive_after_seconds"},
					       {"auto_delete_after", "auto_delete_after_seconds"}};
	static const char *const known[] = {"auto_stop_after",
					    "auto_stop_after_seconds",
					    "auto_archive_after",
					    "auto_archive_after_seconds",
					    "auto_delete_after",
					    "auto_delete_after_seconds",
					    NULL};
	if (ac_body_known(l, known, NULL, resp) < 0)
		return -1;
	uint64_t *dst[] = {&o->auto_stop_after, &o->auto_archive_after, &o->auto_delete_after};
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 2; j++) {
			bool set;
			uint64_t secs;
			if (ac_body_duration(l, names[i][j], &secs, &set, resp) < 0)
				return -1;
			if (set)
				*dst[i] = secs;
		}
	return 0;
}

int ac_api_sandbox_opts(json_t *body, ac_sandbox_opts_t *o, char ***env, char ***labels,
			ac_api_resp_t *resp)
{
	double d;
	bool set, b;
	*env = *labels = NULL;
	if (ac_body_str(body, "image", false, 4096, &o->image, resp) < 0 ||
	    ac_body_str(body, "template", false, 64, &o->template, resp) < 0 ||
	    ac_body_str(body, "profile", false, 64, &o->profile, resp) < 0 ||
	    ac_body_str(body, "backend", false, 64, &o->backend, resp) < 0)
		return -1;
	/* agentkernel's clients send "template": "" for none. */
	if (o->template && !*o->template)
		o->template = NULL;
	if (ac_body_num(body, "vcpus", AC_CPUS_MIN, AC_CPUS_MAX, false, &d, &set, resp) < 0)
		return -1;
	if (set) {
		o->cpus = d;
		o->cpus_set = true;
	}
	if (ac_body_num(body, "cpus", AC_CPUS_MIN, AC_CPUS_MAX, false, &d, &set, resp) < 0)
		return -1;
	if (set) {
		o->cpus = d;
		o->cpus_set = true;
	}
	if (ac_body_num(body, "memory_mb", AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB, true, &d, &set,
			resp) < 0)
		return -1;
	if (set) {
		o->memory_mb = (uint64_t)d;
		o->memory_set = true;
	}
	if (ac_body_num(body, "pids", AC_PIDS_MIN, AC_PIDS_MAX, true, &d, &set, resp) < 0)
		return -1;
	if (set) {
		o->pids = (uint64_t)d;
		o->pids_set = true;
	}
	/* In range only: "unlimited" (0) is the operator's to give, never a request's. */
	if (ac_body_num(body, "disk_mb", AC_DISK_MIN_MB, AC_DISK_MAX_MB, true, &d, &set, resp) < 0)
		return -1;
	if (set) {
		o->disk_mb = (uint64_t)d;
		o->disk_set = true;
	}
	if (ac_body_bool(body, "read_only", &b, &set, resp) < 0)
		return -1;
	if (set) {
		o->read_only = b;
		o->read_only_set = true;
	}
	if (ac_body_bool(body, "network", &b, &set, resp) < 0)
		return -1;
	if (set) {
		o->network = b;
		o->network_set = true;
	}
	if (ac_body_env(body, "env", env, resp) < 0)
		return -1;
	o->env = *env;
	json_t *l = json_object_get(body, "labels");
	if (l && !json_is_null(l)) {
		if (!json_is_object(l)) {
			ac_api_fail(resp, 400, "'labels' must be an object of strings");
			return -1;
		}
		if (json_object_size(l) > AC_LABELS_MAX) {
			ac_api_fail(resp, 400, "at most %d labels", AC_LABELS_MAX);
			return -1;
		}
		json_t *arr = json_array();
		const char *k;
		json_t *v;
		json_object_foreach(l, k, v)
		{
			char *kv = NULL;
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v) ||
			    asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0) {
				json_decref(arr);
				ac_api_fail(resp, 400, "label '%s' must be a string", k);
				return -1;
			}
			json_array_append_new(arr, json_string(kv));
			free(kv);
		}
		/* The manager validates keys and values and says which one is wrong. */
		json_object_set_new(body, "labels", arr);
		if (ac_body_strv(body, "labels", AC_LABELS_MAX, true, labels, resp) < 0)
			return -1;
		o->labels = *labels;
	}
	uint64_t secs;
	if (ac_body_duration(body, "ttl", &secs, &set, resp) < 0)
		return -1;
	if (set)
		o->ttl_seconds = secs;
	if (lifecycle_opts(body, o, resp) < 0)
		return -1;
	if (ac_body_str(body, "init_script", false, AC_INIT_SCRIPT_MAX, &o->init_script, resp) <
		0 ||
	    ac_body_str(body, "agent", false, 64, &o->agent, resp) < 0)
		return -1;
	if (o->agent && !ac_agent_keys(o->agent)) {
		ac_api_fail(resp, 400, "unknown agent '%s'", o->agent);
		return -1;
	}
	return 0;
}

/* The network's lists (src/net/net.h) and the named volumes ("NAME:/path[:ro]"); the
 * manager checks every item and names the bad one. ac_api_net_opts_free releases them. */
int ac_api_net_opts(json_t *body, ac_sandbox_opts_t *o, ac_api_resp_t *resp)
{
	bool set, b;
	if (ac_body_strv(body, "allow_hosts", 256, false, &o->allow_hosts, resp) < 0 ||
	    ac_body_strv(body, "block_hosts", 256, false, &o->block_hosts, resp) < 0 ||
	    ac_body_strv(body, "secret_bindings", 64, false, &o->secrets, resp) < 0 ||
	    ac_body_strv(body, "publish", 64, false, &o->publish, resp) < 0 ||
	    ac_body_strv(body, "volumes", AC_VOLUMES_MAX, false, &o->volumes, resp) < 0 ||
	    ac_body_bool(body, "allowlist_only", &b, &set, resp) < 0)
		return -1;
	o->allowlist_only_hosts = set && b;
	return 0;
}

void ac_api_net_opts_free(ac_sandbox_opts_t *o)
{
	free(o->allow_hosts);
	free(o->block_hosts);
	free(o->secrets);
	free(o->publish);
	free(o->volumes);
	o->allow_hosts = o->block_hosts = o->secrets = o->publish = o->volumes = NULL;
}

const ac_body_unsupported_t ac_api_unsupported_fields[] = {
    {"source_url", "cloning a git repository into a new sandbox is not available; clone it "
		   "with an exec (git clone URL /workspace) once the sandbox runs"},
    {"source_ref", "cloning a git repository into a new sandbox is not available; check the "
		   "ref out with an exec once the sandbox runs"},
    {"secret_files", "secrets are never written into a sandbox; bind them with 'secrets' "
		     "(KEY:HOST): the sandbox sees a placeholder the proxy replaces"},
    {NULL, NULL}};

/* agentkernel's port mapping "[ADDR:]HOST:CONTAINER[/tcp]" as our publish spec (new
 * string); NULL after a 400/501 naming the entry. */
static char *port_as_publish(const char *p, ac_api_resp_t *resp)
{
	const char *slash = strchr(p, '/');
	size_t len = slash ? (size_t)(slash - p) : strlen(p);
	if (slash && strcmp(slash, "/tcp")) {
		ac_api_fail(resp, 501,
			    "'ports' entry '%s': only TCP ports can be published (agentcell has no "
			    "UDP forwarding)",
			    p);
		return NULL;
	}
	if (!memchr(p, ':', len)) {
		ac_api_fail(
		    resp, 400,
		    "'ports' entry '%s' needs a host port: use \"HOSTPORT:PORT\" (agentcell "
		    "does not pick a host port for you)",
		    p);
		return NULL;
	}
	return strndup(p, len);
}

/* agentkernel's secret binding "KEY:HOST[:HEADER]" as ours "KEY@HOST[:HEADER]"; ours pass
 * unchanged. NULL after a 400/501 naming the entry. */
static char *secret_as_binding(const char *s, ac_api_resp_t *resp)
{
	const char *colon = strchr(s, ':'), *eq = strchr(s, '=');
	if (strchr(s, '@') && (!colon || strchr(s, '@') < colon))
		return strdup(s);
	if (eq && (!colon || eq < colon)) {
		ac_api_fail(resp, 501,
			    "'secrets' entry '%.*s=...': a value in the request is not supported; "
			    "store it with 'agentcell secret set %.*s' and bind \"%.*s:HOST\"",
			    (int)(eq - s), s, (int)(eq - s), s, (int)(eq - s), s);
		return NULL;
	}
	if (!colon || colon == s || !colon[1]) {
		ac_api_fail(resp, 400,
			    "invalid 'secrets' entry '%s': use KEY:HOST or KEY:HOST:HEADER", s);
		return NULL;
	}
	char *out = NULL;
	if (asprintf(&out, "%.*s@%s", (int)(colon - s), s, colon + 1) < 0)
		return NULL;
	return out;
}

/* Appends the strings of body[from], each rewritten by fn, to body[to] (an array of
 * strings, created if absent), then removes body[from]. */
static int append_rewritten(json_t *body, const char *from, const char *to,
			    char *(*fn)(const char *, ac_api_resp_t *), ac_api_resp_t *resp)
{
	json_t *src = json_object_get(body, from);
	if (ac_body_empty(src)) {
		json_object_del(body, from);
		return 0;
	}
	if (!json_is_array(src)) {
		ac_api_fail(resp, 400, "'%s' must be an array of strings", from);
		return -1;
	}
	json_t *dst = json_object_get(body, to);
	if (dst && !json_is_null(dst) && !json_is_array(dst)) {
		ac_api_fail(resp, 400, "'%s' must be an array of strings", to);
		return -1;
	}
	json_t *out = json_is_array(dst) ? json_copy(dst) : json_array();
	size_t i;
	json_t *v;
	json_array_foreach(src, i, v)
	{
		const char *str = json_string_value(v);
		if (!str || strlen(str) != json_string_length(v)) {
			json_decref(out);
			ac_api_fail(resp, 400, "'%s' must be an array of strings", from);
			return -1;
		}
		char *conv = fn(str, resp);
		if (!conv) {
			json_decref(out);
			if (resp->status < 400)
				ac_api_fail(resp, 500, "out of memory");
			return -1;
		}
		json_array_append_new(out, json_string(conv));
		free(conv);
	}
	json_object_set_new(body, to, out);
	json_object_del(body, from);
	return 0;
}

int ac_api_compat_fields(json_t *body, ac_api_resp_t *resp)
{
	/* "automatic" (agentkernel's UI) and "" mean the server's default backend. */
	const char *be = json_string_value(json_object_get(body, "backend"));
	if (be && (!*be || !strcmp(be, "automatic")))
		json_object_del(body, "backend");
	/* agentkernel's network is an optional Docker/Podman bridge configuration (an
	 * object); ours a switch. An empty object asks for nothing. */
	json_t *net = json_object_get(body, "network");
	if (json_is_object(net)) {
		const char *k;
		json_t *v;
		json_object_foreach(net, k, v) if (!ac_body_empty(v))
		{
			ac_api_fail(resp, 501,
				    "'network.%s' is not supported by agentcell: a managed bridge "
				    "configuration is not available; use \"network\": true with "
				    "allow_hosts/block_hosts",
				    k);
			return -1;
		}
		json_object_del(body, "network");
	}
	json_t *ph = json_object_get(body, "placeholder_secrets");
	if (ph && !json_is_null(ph) && !json_is_boolean(ph)) {
		ac_api_fail(resp, 400, "'placeholder_secrets' must be true or false");
		return -1;
	}
	if (append_rewritten(body, "ports", "publish", port_as_publish, resp) < 0 ||
	    append_rewritten(body, "secrets", "secret_bindings", secret_as_binding, resp) < 0)
		return -1;
	return 0;
}

/* agentkernel's provenance fields (its UI's): what the request said, checked. */
static int provenance_fields(json_t *body, json_t **out, ac_api_resp_t *resp)
{
	const char *tmpl, *help;
	*out = NULL;
	if (ac_body_str(body, "created_from_template", false, 256, &tmpl, resp) < 0 ||
	    ac_body_str(body, "template_help_text", false, 4096, &help, resp) < 0)
		return -1;
	json_t *map = json_object_get(body, "secret_mappings");
	if (map && !json_is_null(map)) {
		const char *k;
		json_t *v;
		if (!json_is_object(map) || json_object_size(map) > 64) {
			ac_api_fail(resp, 400,
				    "'secret_mappings' must be an object of at most 64 ENV_VAR: "
				    "\"host\" pairs");
			return -1;
		}
		json_object_foreach(map, k, v)
		{
			if (!json_is_string(v) || !*k || strlen(k) > 128 ||
			    json_string_length(v) > 253 ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				ac_api_fail(
				    resp, 400,
				    "'secret_mappings' entry '%.128s' must map a variable name "
				    "to a host name",
				    k);
				return -1;
			}
		}
	}
	json_t *ph = json_object_get(body, "placeholder_secrets");
	json_t *p = json_object();
	if (tmpl && *tmpl)
		json_object_set_new(p, "created_from_template", json_string(tmpl));
	if (help && *help)
		json_object_set_new(p, "template_help_text", json_string(help));
	if (json_is_object(map) && json_object_size(map))
		json_object_set(p, "secret_mappings", map);
	if (json_is_true(ph))
		json_object_set_new(p, "placeholder_secrets", json_true());
	if (!json_object_size(p)) {
		json_decref(p);
		return 0;
	}
	*out = p;
	return 0;
}

/* Records them in the new sandbox's state (under its lock, before its start); a value
 * the image store already set (created_from_template of a template) stays. */
static int record_provenance(ac_api_t *api, const char *name, json_t *prov, ac_error_t **e)
{
	ac_store_t *s = ac_manager_store(api->m);
	_cleanup_close_ int fd = ac_store_lock_sandbox(s, name, e);
	if (fd < 0)
		return -1;
	json_t *st = NULL;
	if (ac_store_load(s, name, &st, e) < 0)
		return -1;
	const char *k;
	json_t *v;
	json_object_foreach(prov, k, v)
	{
		json_t *cur = json_object_get(st, k);
		if (!cur || json_is_null(cur))
			json_object_set(st, k, v);
	}
	int rc = ac_store_save(s, st, e);
	json_decref(st);
	return rc;
}

void ac_h_create(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"name",
					    "image",
					    "template",
					    "vcpus",
					    "cpus",
					    "memory_mb",
					    "pids",
					    "profile",
					    "labels",
					    "description",
					    "lifecycle",
					    "ttl",
					    "init_script",
					    "agent",
					    "env",
					    "read_only",
					    "network",
					    "disk_mb",
					    "backend",
					    "allow_hosts",
					    "block_hosts",
					    "allowlist_only",
					    "secret_bindings",
					    "publish",
					    "volumes",
					    "ports",
					    "secrets",
					    "placeholder_secrets",
					    "created_from_template",
					    "template_help_text",
					    "secret_mappings",
					    NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	ac_sandbox_opts_t o = {0};
	json_t *prov = NULL;
	char **env = NULL, **labels = NULL;
	const char *name = NULL, *desc = NULL;
	json_t *made = NULL;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, ac_api_unsupported_fields, resp) < 0 ||
	    provenance_fields(body, &prov, resp) < 0 || ac_api_compat_fields(body, resp) < 0 ||
	    ac_body_str(body, "name", true, 0, &name, resp) < 0 ||
	    ac_body_str(body, "description", false, 0, &desc, resp) < 0 ||
	    ac_api_sandbox_opts(body, &o, &env, &labels, resp) < 0 ||
	    ac_api_net_opts(body, &o, resp) < 0)
		goto out;
	if (!ac_name_valid(name)) {
		ac_api_fail(resp, 400,
			    "invalid sandbox name '%s': 1-63 of a-z A-Z 0-9 _ -, starting and "
			    "ending with a letter or digit",
			    name);
		goto out;
	}
	/* Created and started, or not there at all: the state carries a "creating" mark
	 * naming this process until the start succeeds, so that what a crash leaves is
	 * undone by the next serve or gc (ac_manager_undo_abandoned). */
	o.creating_mark = true;
	if (ac_manager_create(api->m, name, &o, &made, &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	/* The undo removes the sandbox this request made, never one that took the name
	 * since. A client that hangs up cancels the start. */
	int old_cancel = ac_manager_set_cancel_fd(req->client_fd);
	int rc = (prov && record_provenance(api, name, prov, &e) < 0) ||
			 (desc && *desc && ac_manager_describe(api->m, name, desc, &e) < 0) ||
			 ac_manager_start(api->m, name, &e) < 0
		     ? -1
		     : 0;
	ac_manager_set_cancel_fd(old_cancel);
	if (rc < 0) {
		ac_manager_remove_created(api->m, name, ac_state_str(made, "uuid", ""), NULL);
		ac_api_fail_error(resp, e);
		goto out;
	}
	reply_info(api, name, 201, resp);
out:
	json_decref(prov);
	json_decref(made);
	free(env);
	free(labels);
	ac_api_net_opts_free(&o);
	json_decref(body);
}

void ac_h_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	ac_error_t *e = NULL;
	if (ac_manager_remove(api->m, req->params[0], &e) < 0)
		ac_api_fail_error(resp, e);
	else
		ac_api_ok(resp, 200, json_string("Sandbox removed"));
}

/* start, stop, recover: the operation, then the sandbox as it is now. */
static void sandbox_op(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp,
		       int (*op)(ac_manager_t *, const char *, ac_error_t **))
{
	ac_error_t *e = NULL;
	if (op(api->m, req->params[0], &e) < 0)
		ac_api_fail_error(resp, e);
	else
		reply_info(api, req->params[0], 200, resp);
}

void ac_h_start(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	int old = ac_manager_set_cancel_fd(req->client_fd);
	sandbox_op(api, req, resp, ac_manager_start);
	ac_manager_set_cancel_fd(old);
}

void ac_h_stop(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	sandbox_op(api, req, resp, ac_manager_stop);
}

void ac_h_recover(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	sandbox_op(api, req, resp, ac_manager_recover);
}

void ac_h_extend(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"by", NULL};
	json_t *body = ac_body_object(req, resp, false);
	if (!body)
		return;
	uint64_t by;
	bool set;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, NULL, resp) < 0 ||
	    ac_body_duration(body, "by", &by, &set, resp) < 0)
		goto out;
	/* agentkernel's default: an hour. */
	if (!set)
		by = 3600;
	if (ac_manager_extend(api->m, req->params[0], by, &st, &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	json_t *exp = json_object_get(st, "expires_at");
	ac_api_ok(resp, 200, json_pack("{sO}", "expires_at", exp ? exp : json_null()));
	json_decref(st);
out:
	json_decref(body);
}

void ac_h_resize(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"memory_mb", "vcpus", "cpus", "pids", NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	ac_resize_t r = {0};
	double d = 0;
	bool set, applied = false;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, NULL, resp) < 0)
		goto out;
	if (ac_body_num(body, "memory_mb", AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB, true, &d,
			&r.memory_set, resp) < 0)
		goto out;
	if (r.memory_set)
		r.memory_mb = (uint64_t)d;
	for (int i = 0; i < 2; i++) {
		if (ac_body_num(body, i ? "cpus" : "vcpus", AC_CPUS_MIN, AC_CPUS_MAX, false, &d,
				&set, resp) < 0)
			goto out;
		if (set) {
			r.cpus = d;
			r.cpus_set = true;
		}
	}
	if (ac_body_num(body, "pids", AC_PIDS_MIN, AC_PIDS_MAX, true, &d, &r.pids_set, resp) < 0)
		goto out;
	if (r.pids_set)
		r.pids = (uint64_t)d;
	if (!r.memory_set && !r.cpus_set && !r.pids_set) {
		ac_api_fail(resp, 400, "nothing to change: give memory_mb, vcpus or pids");
		goto out;
	}
	if (ac_manager_resize(api->m, req->params[0], &r, &applied, &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	reply_info(api, req->params[0], 200, resp);
	if (resp->status == 200) {
		/* Say whether the running sandbox changed or only its state. */
		json_t *j = json_loads(resp->body, 0, NULL);
		json_t *data = json_object_get(j, "data");
		json_object_set_new(data, "applied", json_boolean(applied));
		ac_api_ok(resp, 200, json_incref(data));
		json_decref(j);
	}
out:
	json_decref(body);
}

/* PATCH: labels {k: v | null}, description (string | null), lifecycle (object | null). */
void ac_h_patch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"labels", "description", "lifecycle", NULL};
	const char *name = req->params[0];
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	char **set = NULL, **del = NULL;
	ac_error_t *e = NULL;
	json_t *l = json_object_get(body, "labels");
	json_t *desc = json_object_get(body, "description");
	json_t *lc = json_object_get(body, "lifecycle");
	if (ac_body_known(body, known, NULL, resp) < 0)
		goto out;
	if (desc && !json_is_null(desc) &&
	    (!json_is_string(desc) ||
	     strlen(json_string_value(desc)) != json_string_length(desc))) {
		ac_api_fail(resp, 400,
			    "'description' must be a string without NUL characters, or null");
		goto out;
	}
	ac_policy_change_t pc = {
	    .auto_stop_after = -1, .auto_archive_after = -1, .auto_delete_after = -1};
	if (lc) {
		if (json_is_null(lc))
			pc.clear = true;
		else if (!json_is_object(lc)) {
			ac_api_fail(resp, 400, "'lifecycle' must be an object or null");
			goto out;
		} else {
			static const char *const fields[] = {
			    "auto_stop_after", "auto_archive_after", "auto_delete_after", NULL};
			int64_t *dst[] = {&pc.auto_stop_after, &pc.auto_archive_after,
					  &pc.auto_delete_after};
			if (ac_body_known(lc, fields, NULL, resp) < 0)
				goto out;
			for (int i = 0; i < 3; i++) {
				json_t *v = json_object_get(lc, fields[i]);
				uint64_t secs;
				bool s;
				if (v && json_is_null(v)) {
					*dst[i] = 0;
					continue;
				}
				if (ac_body_duration(lc, fields[i], &secs, &s, resp) < 0)
					goto out;
				if (s)
					*dst[i] = (int64_t)secs;
			}
		}
	}
	if (l && !json_is_null(l)) {
		if (!json_is_object(l) || json_object_size(l) > AC_LABELS_MAX) {
			ac_api_fail(resp, 400, "'labels' must be an object of at most %d labels",
				    AC_LABELS_MAX);
			goto out;
		}
		size_t n = json_object_size(l), ns = 0, nd = 0;
		set = calloc(n + 1, sizeof(char *));
		del = calloc(n + 1, sizeof(char *));
		const char *k;
		json_t *v;
		json_object_foreach(l, k, v)
		{
			if (json_is_null(v)) {
				del[nd++] = strdup(k);
				continue;
			}
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v) ||
			    asprintf(&set[ns], "%s=%s", k, json_string_value(v)) < 0) {
				set[ns] = NULL;
				ac_api_fail(resp, 400, "label '%s' must be a string or null", k);
				goto out;
			}
			ns++;
		}
	}
	/* Validate everything first: a change is applied as a whole or not at all. */
	if (!ac_store_exists(ac_manager_store(api->m), name) && ac_name_valid(name)) {
		ac_api_fail(resp, 404, "no such sandbox: '%s'", name);
		goto out;
	}
	if ((set || del) && ac_manager_set_labels(api->m, name, set, del, NULL, &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	if (desc && ac_manager_describe(api->m, name, json_string_value(desc), &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	if (lc && ac_manager_set_policy(api->m, name, &pc, NULL, &e) < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	reply_info(api, name, 200, resp);
out:
	ac_strv_free(set);
	ac_strv_free(del);
	json_decref(body);
}

static size_t query_limit(ac_api_req_t *req, ac_api_resp_t *resp, bool *bad)
{
	const char *l = ac_api_query(req, "limit");
	uint64_t n = 0;
	*bad = false;
	if (l && ac_parse_u64(l, 0, 1000000, &n) < 0) {
		ac_api_fail(resp, 400, "'limit' must be a whole number up to 1000000");
		*bad = true;
	}
	return (size_t)n;
}

/* Audit records of one sandbox (or all: NULL), the last `limit` (0: all). */
static void reply_audit(ac_api_t *api, const char *name, size_t limit, ac_api_resp_t *resp)
{
	json_t *out = NULL;
	ac_error_t *e = NULL;
	if (ac_audit_read(api->m, name, limit, &out, &e) < 0)
		ac_api_fail_error(resp, e);
	else
		ac_api_ok(resp, 200, out);
}

void ac_h_logs(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	const char *name = req->params[0];
	bool bad;
	size_t limit = query_limit(req, resp, &bad);
	if (bad)
		return;
	if (!ac_name_valid(name)) {
		ac_api_fail(resp, 400, "invalid sandbox name '%s'", name);
		return;
	}
	if (!ac_store_exists(ac_manager_store(api->m), name)) {
		ac_api_fail(resp, 404, "no such sandbox: '%s'", name);
		return;
	}
	reply_audit(api, name, limit, resp);
}

void ac_h_audit(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	bool bad;
	size_t limit = query_limit(req, resp, &bad);
	if (bad)
		return;
	const char *name = ac_api_query(req, "sandbox");
	if (name && !ac_name_valid(name)) {
		ac_api_fail(resp, 400, "invalid sandbox name '%s'", name);
		return;
	}
	reply_audit(api, name, limit, resp);
}

void ac_h_gc(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	json_t *removed = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_gc(api->m, &removed, &e);
	if (rc < 0) {
		json_decref(removed);
		ac_api_fail_error(resp, e);
		return;
	}
	/* And what a kill -9 left behind, as `agentcell gc` does (best effort). */
	json_t *swept = NULL;
	if (ac_manager_sweep(api->m, true, &swept, NULL) < 0) {
		json_decref(swept);
		swept = NULL;
	}
	ac_api_ok(resp, 200,
		  json_pack("{so so}", "removed", removed ? removed : json_array(), "swept",
			    swept ? swept : json_array()));
}

void ac_h_reconcile(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"dry_run", NULL};
	json_t *body = ac_body_object(req, resp, false);
	if (!body)
		return;
	bool dry = false, set;
	json_t *dec = NULL;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, NULL, resp) < 0 ||
	    ac_body_bool(body, "dry_run", &dry, &set, resp) < 0)
		goto out;
	if (ac_manager_reconcile(api->m, dry, &dec, &e) < 0) {
		json_decref(dec);
		ac_api_fail_error(resp, e);
		goto out;
	}
	ac_api_ok(resp, 200,
		  json_pack("{so sb}", "decisions", dec ? dec : json_array(), "dry_run", dry));
out:
	json_decref(body);
}
