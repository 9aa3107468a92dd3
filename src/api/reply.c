/* The HTTP API's response envelope ({"success":..., "data"|"error":...}), the helpers every
 * handler answers with, and agentkernel's SandboxInfo shape. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "api/handlers.h"

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

/* ------------------------------------------------------------------ SandboxInfo */

json_t *ac_api_sandbox_info(json_t *st)
{
	static const char *const copy[] = {"name",
					   "uuid",
					   "backend",
					   "image",
					   "vcpus",
					   "memory_mb",
					   "created_at",
					   "labels",
					   "description",
					   "last_activity_at",
					   "archived_at",
					   "archived_reason",
					   "expires_at",
					   "ttl_seconds",
					   "cpus",
					   "pids_limit",
					   "profile",
					   "agent",
					   "disk_mb",
					   "created_from_template",
					   "template_help_text",
					   "secret_mappings"};
	json_t *info = json_object();
	for (size_t i = 0; i < AC_ARRAY_SIZE(copy); i++) {
		json_t *v = json_object_get(st, copy[i]);
		json_object_set(info, copy[i], v ? v : json_null());
	}
	json_t *labels = json_object_get(info, "labels");
	if (!json_is_object(labels))
		json_object_set_new(info, "labels", json_object());
	if (!json_is_object(json_object_get(info, "secret_mappings")))
		json_object_set_new(info, "secret_mappings", json_object());
	json_object_set_new(info, "placeholder_secrets",
			    json_boolean(json_is_true(json_object_get(st, "placeholder_secrets"))));
	json_t *pol = json_object_get(st, "lifecycle_policy");
	json_object_set(info, "lifecycle", pol ? pol : json_null());
	/* The network: on or off, and (native) the proxy's policy, secret bindings by key and
	 * published ports; never a placeholder or a value. */
	json_object_set_new(info, "network",
			    json_boolean(json_is_true(json_object_get(st, "network"))));
	json_t *net = json_object_get(st, "net");
	if (json_is_object(net)) {
		json_t *n = json_pack("{sO* sO* sO* sb}", "allow_hosts",
				      json_object_get(net, "allow_hosts"), "block_hosts",
				      json_object_get(net, "block_hosts"), "publish",
				      json_object_get(net, "publish"), "allowlist_only",
				      json_is_true(json_object_get(net, "allowlist_only")));
		json_t *keys = json_array();
		size_t i;
		json_t *b;
		json_array_foreach(json_object_get(net, "secrets"), i, b) json_array_append_new(
		    keys, json_pack("{sO* sO*}", "key", json_object_get(b, "key"), "host",
				    json_object_get(b, "host")));
		if (n)
			json_object_set_new(n, "secrets", keys);
		else
			json_decref(keys);
		json_object_set_new(info, "net", n ? n : json_null());
	}
	const char *archived = json_string_value(json_object_get(st, "archived_at"));
	const char *status = archived ? "archived" : ac_state_str(st, "status", "stopped");
	json_object_set_new(info, "status", json_string(status));
	json_decref(st);
	return info;
}
