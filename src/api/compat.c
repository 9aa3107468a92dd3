/* agentkernel's names in create and run bodies (issue 17): ports -> publish, secrets
 * (KEY:HOST[:HEADER]) -> secret_bindings, backend "automatic" -> the default, network as
 * agentkernel's (empty) bridge object, and the provenance fields its UI keeps
 * (created_from_template, template_help_text, secret_mappings, placeholder_secrets),
 * checked and recorded in the new state. Declared in handlers.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/parse.h"
#include "base/util.h"
#include "api/handlers.h"
#include "api/request.h"

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
int ac_api_provenance_fields(json_t *body, json_t **out, ac_api_resp_t *resp)
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
int ac_api_record_provenance(ac_api_t *api, const char *name, json_t *prov, ac_error_t **e)
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
