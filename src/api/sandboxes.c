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
	    ac_api_provenance_fields(body, &prov, resp) < 0 ||
	    ac_api_compat_fields(body, resp) < 0 ||
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
	int rc = (prov && ac_api_record_provenance(api, name, prov, &e) < 0) ||
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
