/* The HTTP API's router, envelope, authentication and the sandbox handlers. Handlers call
 * the manager (include/agentcell/manager.h) and nothing below it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/json.h"
#include "agentcell/util.h"
#include "api/handlers.h"
#include "api/request.h"
#include "mcp/mcp.h"

/* ------------------------------------------------------------------ envelope */

static void set_json(ac_api_resp_t *resp, int status, json_t *j)
{
	ac_api_resp_clear(resp);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!resp->body) {
		resp->status = 500;
		resp->body = strdup("{\"success\":false,\"error\":\"out of memory\"}");
	}
	resp->len = resp->body ? strlen(resp->body) : 0;
}

void ac_api_ok(ac_api_resp_t *resp, int status, json_t *data)
{
	set_json(resp, status,
		 json_pack("{sbso}", "success", 1, "data", data ? data : json_null()));
}

void ac_api_fail(ac_api_resp_t *resp, int status, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *m = ac_json_text(msg, strlen(msg));
	set_json(resp, status, json_pack("{sbso}", "success", 0, "error", m));
}

void ac_api_fail_error(ac_api_resp_t *resp, ac_error_t *e)
{
	if (!e) {
		ac_api_fail(resp, 500, "internal error");
		return;
	}
	ac_api_fail(resp, ac_error_http_status(e), "%s", e->msg);
	ac_error_free(e);
}

void ac_api_resp_clear(ac_api_resp_t *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	if (resp->stream.free_fn)
		resp->stream.free_fn(resp->stream.ctx);
	resp->stream = (ac_api_stream_t){0};
}

const char *ac_api_query(const ac_api_req_t *req, const char *key)
{
	const char *v = NULL;
	if (req->query_all && req->query_all(req, key, &v, 1) > 0)
		return v;
	return NULL;
}

bool ac_api_key_ok(char *const *keys, const char *presented)
{
	/* Every key is compared in full, whatever matched: the time depends on the lengths
	 * only, never on how much of a key was guessed right. */
	size_t plen = strlen(presented);
	unsigned ok = 0;
	for (char *const *k = keys; k && *k; k++) {
		size_t klen = strlen(*k);
		unsigned diff = klen != plen;
		for (size_t i = 0; i < klen; i++)
			diff |=
			    (unsigned char)(*k)[i] ^ (unsigned char)(i < plen ? presented[i] : 0);
		ok |= diff == 0;
	}
	return ok;
}

/* ------------------------------------------------------------------ SandboxInfo */

json_t *ac_api_sandbox_info(json_t *st)
{
	static const char *const copy[] = {"name",	  "uuid",
					   "backend",	  "image",
					   "vcpus",	  "memory_mb",
					   "created_at",  "labels",
					   "description", "last_activity_at",
					   "archived_at", "archived_reason",
					   "expires_at",  "ttl_seconds",
					   "cpus",	  "pids_limit",
					   "profile",	  "agent",
					   "disk_mb"};
	json_t *info = json_object();
	for (size_t i = 0; i < AC_ARRAY_SIZE(copy); i++) {
		json_t *v = json_object_get(st, copy[i]);
		json_object_set(info, copy[i], v ? v : json_null());
	}
	json_t *labels = json_object_get(info, "labels");
	if (!json_is_object(labels))
		json_object_set_new(info, "labels", json_object());
	json_t *pol = json_object_get(st, "lifecycle_policy");
	json_object_set(info, "lifecycle", pol ? pol : json_null());
	const char *archived = json_string_value(json_object_get(st, "archived_at"));
	const char *status = archived ? "archived" : ac_state_str(st, "status", "stopped");
	json_object_set_new(info, "status", json_string(status));
	json_decref(st);
	return info;
}

/* ------------------------------------------------------------------ sandbox handlers */

static void h_health(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	ac_api_ok(resp, 200, json_string("ok"));
}

static void h_openapi(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "application/json";
	resp->body = malloc(ac_openapi_json_len + 1);
	if (!resp->body) {
		ac_api_fail(resp, 500, "out of memory");
		return;
	}
	memcpy(resp->body, ac_openapi_json, ac_openapi_json_len);
	resp->body[ac_openapi_json_len] = '\0';
	resp->len = ac_openapi_json_len;
}

static void h_metrics(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	char *text = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_metrics(api->m, &text, &e) < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_api_resp_clear(resp);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
	resp->body = text;
	resp->len = strlen(text);
}

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

static void h_list(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	reply_info(api, req->params[0], 200, resp);
}

static void h_by_uuid(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

/* The options a body gives for a new sandbox (create, run). Pointers into body. */
int ac_api_sandbox_opts(json_t *body, ac_sandbox_opts_t *o, char ***env, char ***labels,
			ac_api_resp_t *resp)
{
	double d;
	bool set, b;
	*env = *labels = NULL;
	if (ac_body_str(body, "image", false, 4096, &o->image, resp) < 0 ||
	    ac_body_str(body, "profile", false, 64, &o->profile, resp) < 0)
		return -1;
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

/* Fields clients send that only agentkernel's other backends or services implement. */
const char *const ac_api_unsupported_fields[] = {
    "source_url", "source_ref", "volumes", "secrets", "secret_files", "ports", "template", NULL};

static void h_create(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {
	    "name",    "image",	 "vcpus",	"cpus",	     "memory_mb", "pids",
	    "profile", "labels", "description", "lifecycle", "ttl",	  "init_script",
	    "agent",   "env",	 "read_only",	"network",   "disk_mb",	  NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	ac_sandbox_opts_t o = {0};
	char **env = NULL, **labels = NULL;
	const char *name = NULL, *desc = NULL;
	json_t *made = NULL;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, ac_api_unsupported_fields, resp) < 0 ||
	    ac_body_str(body, "name", true, 0, &name, resp) < 0 ||
	    ac_body_str(body, "description", false, 0, &desc, resp) < 0 ||
	    ac_api_sandbox_opts(body, &o, &env, &labels, resp) < 0)
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
	int rc = (desc && *desc && ac_manager_describe(api->m, name, desc, &e) < 0) ||
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
	json_decref(made);
	free(env);
	free(labels);
	json_decref(body);
}

static void h_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_start(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	int old = ac_manager_set_cancel_fd(req->client_fd);
	sandbox_op(api, req, resp, ac_manager_start);
	ac_manager_set_cancel_fd(old);
}

static void h_stop(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	sandbox_op(api, req, resp, ac_manager_stop);
}

static void h_recover(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	sandbox_op(api, req, resp, ac_manager_recover);
}

static void h_extend(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"by", NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	uint64_t by;
	bool set;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, NULL, resp) < 0 ||
	    ac_body_duration(body, "by", &by, &set, resp) < 0)
		goto out;
	if (!set) {
		ac_api_fail(resp, 400, "'by' is required: a duration such as \"1h\"");
		goto out;
	}
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

static void h_resize(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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
static void h_patch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_logs(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_audit(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_gc(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_reconcile(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
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

static void h_mcp(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* ------------------------------------------------------------------ routing */

typedef struct route {
	const char *method;
	const char *pattern; /* segments; ":x" is one parameter, "*" the rest of the path */
	ac_api_handler_t fn;
	bool open; /* no API key needed */
} route_t;

static const route_t routes[] = {
    {"GET", "/health", h_health, true},
    {"GET", "/metrics", h_metrics, true},
    {"GET", "/openapi.json", h_openapi, true},
    {"POST", "/run", ac_h_run, false},
    {"POST", "/run/stream", ac_h_run_stream, false},
    {"POST", "/batch/run", ac_h_batch_run, false},
    {"GET", "/sandboxes", h_list, false},
    {"POST", "/sandboxes", h_create, false},
    {"GET", "/sandboxes/by-uuid/:uuid", h_by_uuid, false},
    {"GET", "/sandboxes/:name", h_get, false},
    {"PATCH", "/sandboxes/:name", h_patch, false},
    {"DELETE", "/sandboxes/:name", h_delete, false},
    {"POST", "/sandboxes/:name/start", h_start, false},
    {"POST", "/sandboxes/:name/stop", h_stop, false},
    {"POST", "/sandboxes/:name/recover", h_recover, false},
    {"POST", "/sandboxes/:name/resize", h_resize, false},
    {"POST", "/sandboxes/:name/extend", h_extend, false},
    {"POST", "/sandboxes/:name/exec", ac_h_exec, false},
    {"POST", "/sandboxes/:name/exec/stream", ac_h_exec_stream, false},
    {"POST", "/sandboxes/:name/exec/detach", ac_h_detach_start, false},
    {"GET", "/sandboxes/:name/exec/detached", ac_h_detach_list, false},
    {"GET", "/sandboxes/:name/exec/detached/:id", ac_h_detach_get, false},
    {"DELETE", "/sandboxes/:name/exec/detached/:id", ac_h_detach_kill, false},
    {"GET", "/sandboxes/:name/exec/detached/:id/logs", ac_h_detach_logs, false},
    {"POST", "/sandboxes/:name/files", ac_h_files_batch, false},
    {"GET", "/sandboxes/:name/files/*", ac_h_file_get, false},
    {"PUT", "/sandboxes/:name/files/*", ac_h_file_put, false},
    {"DELETE", "/sandboxes/:name/files/*", ac_h_file_delete, false},
    {"GET", "/sandboxes/:name/logs", h_logs, false},
    {"POST", "/gc", h_gc, false},
    {"POST", "/lifecycle/reconcile", h_reconcile, false},
    {"GET", "/audit", h_audit, false},
    {"POST", "/mcp", h_mcp, false},
    {"GET", "/mcp", h_mcp, false},
    {"DELETE", "/mcp", h_mcp, false},
};

bool ac_api_route_at(size_t i, const char **method, const char **pattern, bool *open)
{
	if (i >= AC_ARRAY_SIZE(routes))
		return false;
	*method = routes[i].method;
	*pattern = routes[i].pattern;
	*open = routes[i].open;
	return true;
}

/* Matches path (a writable copy: parameters are cut out of it in place) against pattern. */
static bool match(const char *pattern, char *path, const char **params)
{
	int np = 0;
	const char *p = pattern;
	char *s = path;
	while (*p) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		if (*p == '*') {
			if (!*s)
				return false;
			params[np++] = s;
			return true;
		}
		const char *pend = strchrnul(p, '/');
		char *send = strchrnul(s, '/');
		if (send == s)
			return false;
		if (*p == ':') {
			if (np >= AC_API_PARAMS_MAX)
				return false;
			params[np++] = s;
		} else if ((size_t)(pend - p) != (size_t)(send - s) ||
			   memcmp(p, s, (size_t)(pend - p))) {
			return false;
		}
		p = pend;
		s = send;
	}
	return !*s;
}

/* Cuts the parameters: each ':' parameter ends at the next '/'. */
static void terminate_params(const char *pattern, const char **params)
{
	int np = 0;
	for (const char *p = pattern; *p; p++) {
		if (p[0] == '/' && p[1] == ':') {
			char *end = strchr((char *)params[np], '/');
			if (end)
				*end = '\0';
			np++;
		}
	}
}

static bool method_is(const char *m, const char *want)
{
	return !strcmp(m, want) || (!strcmp(want, "GET") && !strcmp(m, "HEAD"));
}

/* The path as routed, in a malloc'd copy: one trailing slash is forgiven ("/sandboxes/",
 * "/sandboxes/x/exec/"), except in a file path, where it is part of the path. */
static char *route_path(const char *raw)
{
	size_t plen = strlen(raw);
	char *path = malloc(plen + 1);
	if (!path)
		return NULL;
	memcpy(path, raw, plen + 1);
	if (plen > 1 && path[plen - 1] == '/' &&
	    !(strncmp(path, "/sandboxes/", 11) == 0 && strstr(path + 11, "/files/")))
		path[plen - 1] = '\0';
	return path;
}

static bool methods_with_body(const char *m)
{
	return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* ac_api_admit on a routed path; *found: the route. work: a buffer of strlen(path) + 1. */
static bool admit(ac_api_t *api, const ac_api_req_t *req, bool has_body, const char *path,
		  char *work, const route_t **found, ac_api_resp_t *resp)
{
	const char *(*hdr)(const ac_api_req_t *, const char *) = req->header;
	/* Pages of other sites: refused on every route, keys or not (a browser sends Origin
	 * with every cross-site request but a plain GET; no CORS header is ever sent, so a
	 * page can send a simple request, never read the answer). */
	const char *origin = hdr ? hdr(req, "Origin") : NULL;
	if (origin && !ac_api_origin_local(origin)) {
		ac_api_fail(
		    resp, 403,
		    "origin '%.200s' is not allowed: only pages of this machine (localhost, "
		    "127.0.0.1, [::1]) may call this API",
		    origin);
		return false;
	}
	/* DNS rebinding: a page whose name was made to point at 127.0.0.1 sends its own name
	 * as Host. Without a key nothing else stops it; with one it has no key. */
	bool keyed = api->keys && api->keys[0];
	if (!keyed && !api->any_host) {
		const char *host = hdr ? hdr(req, "Host") : NULL;
		if (!ac_api_host_local(host, api->bound_host)) {
			const char *b = api->bound_host;
			bool extra = b && !ac_api_host_local(b, NULL) && strcmp(b, "::1");
			ac_api_fail(
			    resp, 403,
			    "host '%.200s' is not allowed: a server without an API key "
			    "answers only requests for localhost, 127.0.0.1%s%.100s or [::1]",
			    host ? host : "", extra ? ", " : "", extra ? b : "");
			return false;
		}
	}
	char allow[128] = "";
	*found = NULL;
	for (size_t i = 0; i < AC_ARRAY_SIZE(routes); i++) {
		const char *params[AC_API_PARAMS_MAX] = {0};
		memcpy(work, path, strlen(path) + 1);
		if (!match(routes[i].pattern, work, params))
			continue;
		if (!method_is(req->method, routes[i].method)) {
			if (!strstr(allow, routes[i].method)) {
				size_t al = strlen(allow);
				snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "",
					 routes[i].method);
			}
			continue;
		}
		*found = &routes[i];
		break;
	}
	if (!*found) {
		if (*allow) {
			ac_api_fail(resp, 405, "method %s is not allowed on %s", req->method,
				    req->path);
			snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
		} else {
			ac_api_fail(resp, 404, "no such endpoint: %s %s", req->method, req->path);
		}
		return false;
	}
	if (keyed && !(*found)->open) {
		const char *h = hdr ? hdr(req, "Authorization") : NULL;
		if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
			ac_api_fail(resp, 401,
				    h ? "Invalid authorization format. Use: Bearer <api_key>"
				      : "Missing Authorization header");
			return false;
		}
		if (!ac_api_key_ok(api->keys, h + 7)) {
			ac_api_fail(resp, 401, "Invalid API key");
			return false;
		}
	}
	/* A page may send text/plain, form data or multipart without asking; JSON only after
	 * a CORS preflight, which this server never grants. */
	if (has_body && methods_with_body(req->method)) {
		const char *type = hdr ? hdr(req, "Content-Type") : NULL;
		if (!ac_api_type_json(type)) {
			ac_api_fail(resp, 415,
				    "Content-Type must be application/json, not '%.200s'",
				    type ? type : "(none)");
			return false;
		}
	}
	return true;
}

bool ac_api_admit(ac_api_t *api, const ac_api_req_t *req, bool has_body, ac_api_resp_t *resp)
{
	char *path = route_path(req->path);
	char *work = path ? malloc(strlen(path) + 1) : NULL;
	const route_t *found;
	bool ok = false;
	if (!work)
		ac_api_fail(resp, 500, "out of memory");
	else
		ok = admit(api, req, has_body, path, work, &found, resp);
	free(work);
	free(path);
	return ok;
}

void ac_api_handle(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	char *path = route_path(req->path);
	char *work = path ? malloc(strlen(path) + 1) : NULL;
	const route_t *found = NULL;
	if (!work) {
		ac_api_fail(resp, 500, "out of memory");
		goto out;
	}
	if (!admit(api, req, req->body_len > 0, path, work, &found, resp))
		goto out;
	memcpy(work, path, strlen(path) + 1);
	for (int i = 0; i < AC_API_PARAMS_MAX; i++)
		req->params[i] = NULL;
	match(found->pattern, work, req->params);
	terminate_params(found->pattern, req->params);
	/* A sandbox name comes first in every pattern that has one. */
	if (req->params[0] && strstr(found->pattern, "/:name") && !ac_name_valid(req->params[0])) {
		ac_api_fail(resp, 400, "invalid sandbox name '%s'", req->params[0]);
		goto out;
	}
	found->fn(api, req, resp);
out:
	free(work);
	free(path);
}

/* ------------------------------------------------------------------ /mcp */

static void h_mcp(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	if (!api->mcp) {
		ac_api_fail(resp, 501, "MCP over HTTP is not enabled on this server");
		return;
	}
	ac_mcp_http_reply_t r = {0};
	ac_error_t *e = NULL;
	/* Origin and Host were checked for every route (admit). */
	const char *sid = req->header ? req->header(req, "Mcp-Session-Id") : NULL;
	const char *proto = req->header ? req->header(req, "MCP-Protocol-Version") : NULL;
	const char *accept = req->header ? req->header(req, "Accept") : NULL;
	if (ac_mcp_http(api->mcp, req->method, sid, proto, accept, req->body, req->body_len, &r,
			&e) < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_api_resp_clear(resp);
	resp->status = r.status;
	resp->body = steal_ptr(r.body);
	resp->len = resp->body ? r.body_len : 0;
	resp->content_type =
	    resp->body ? (r.content_type ? r.content_type : "application/json") : NULL;
	if (r.session_id[0])
		resp->session_id = strdup(r.session_id);
	if (r.allow)
		snprintf(resp->allow, sizeof(resp->allow), "%s", r.allow);
	ac_mcp_http_reply_free(&r);
}
