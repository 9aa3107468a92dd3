/* Reading request bodies: strict, typed field access with one-line 400 messages that name
 * the field. Everything here returns 0 on success and -1 after filling a 400 response. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "api/request.h"

json_t *ac_body_object(const ac_api_req_t *req, ac_api_resp_t *resp, bool required)
{
	size_t n = req->body_len;
	const char *b = req->body;
	while (n && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')) {
		b++;
		n--;
	}
	if (!n) {
		if (required) {
			ac_api_fail(resp, 400, "request body required: a JSON object");
			return NULL;
		}
		return json_object();
	}
	json_error_t je;
	json_t *j = json_loadb(b, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!j) {
		ac_api_fail(resp, 400, "invalid JSON in request body: %s (line %d, column %d)",
			    je.text, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		ac_api_fail(resp, 400, "request body must be a JSON object");
		return NULL;
	}
	return j;
}

bool ac_body_empty(const json_t *v)
{
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_array(v) && !json_array_size(v)) ||
	       (json_is_object(v) && !json_object_size(v)) ||
	       (json_is_string(v) && !json_string_length(v));
}

int ac_body_known(json_t *body, const char *const *known, const ac_body_unsupported_t *unsupported,
		  ac_api_resp_t *resp)
{
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		bool ok = false;
		for (const char *const *n = known; n && *n && !ok; n++)
			ok = !strcmp(*n, k);
		if (ok)
			continue;
		for (const ac_body_unsupported_t *u = unsupported; u && u->field; u++) {
			if (strcmp(u->field, k))
				continue;
			/* Clients send every field of their options type; only a value counts. */
			if (ac_body_empty(v)) {
				ok = true;
				break;
			}
			ac_api_fail(resp, 501, "'%s' is not supported by agentcell: %s", k, u->why);
			return -1;
		}
		if (!ok) {
			ac_api_fail(resp, 400, "unknown field '%s'", k);
			return -1;
		}
	}
	return 0;
}

int ac_body_str(json_t *body, const char *key, bool required, size_t max, const char **out,
		ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required) {
			ac_api_fail(resp, 400, "'%s' is required", key);
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		ac_api_fail(resp, 400, "'%s' must be a string", key);
		return -1;
	}
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		ac_api_fail(resp, 400, "'%s' must not contain NUL characters", key);
		return -1;
	}
	if (max && json_string_length(v) > max) {
		ac_api_fail(resp, 400, "'%s' is longer than %zu bytes", key, max);
		return -1;
	}
	*out = s;
	return 0;
}

int ac_body_bool(json_t *body, const char *key, bool *out, bool *set, ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	if (set)
		*set = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		ac_api_fail(resp, 400, "'%s' must be true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	if (set)
		*set = true;
	return 0;
}

int ac_body_num(json_t *body, const char *key, double min, double max, bool integer, double *out,
		bool *set, ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	*set = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) ||
	    (integer && !json_is_integer(v) && json_real_value(v) != floor(json_real_value(v)))) {
		ac_api_fail(resp, 400, "'%s' must be %s", key, integer ? "an integer" : "a number");
		return -1;
	}
	double d = json_number_value(v);
	if (!isfinite(d) || d < min || d > max) {
		ac_api_fail(resp, 400, "'%s' must be between %g and %g", key, min, max);
		return -1;
	}
	*out = d;
	*set = true;
	return 0;
}

int ac_body_strv(json_t *body, const char *key, size_t max_items, bool need_eq, char ***out,
		 ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		ac_api_fail(resp, 400, "'%s' must be an array of strings", key);
		return -1;
	}
	size_t n = json_array_size(v);
	if (n > max_items) {
		ac_api_fail(resp, 400, "'%s' has more than %zu items", key, max_items);
		return -1;
	}
	char **a = calloc(n + 1, sizeof(char *));
	if (!a) {
		ac_api_fail(resp, 500, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		const char *s = json_string_value(e);
		if (!s || strlen(s) != json_string_length(e)) {
			free(a);
			ac_api_fail(resp, 400, "'%s'[%zu] must be a string without NUL characters",
				    key, i);
			return -1;
		}
		if (need_eq && (!strchr(s, '=') || s[0] == '=')) {
			free(a);
			ac_api_fail(resp, 400, "'%s'[%zu] must look like KEY=VALUE", key, i);
			return -1;
		}
		a[i] = (char *)s;
	}
	*out = a;
	return 0;
}

int ac_body_env(json_t *body, const char *key, char ***out, ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	if (!json_is_object(v))
		return ac_body_strv(body, key, 256, true, out, resp);
	/* {"K": "V"}: the form an MCP client or a hand-written call tends to use. */
	*out = NULL;
	if (json_object_size(v) > 256) {
		ac_api_fail(resp, 400, "'%s' has more than 256 variables", key);
		return -1;
	}
	json_t *arr = json_array();
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val)
	{
		if (!json_is_string(val) || !*k || strchr(k, '=') ||
		    strlen(json_string_value(val)) != json_string_length(val)) {
			json_decref(arr);
			ac_api_fail(resp, 400, "'%s': '%s' must be a string", key, k);
			return -1;
		}
		char *kv = NULL;
		if (asprintf(&kv, "%s=%s", k, json_string_value(val)) < 0) {
			json_decref(arr);
			ac_api_fail(resp, 500, "out of memory");
			return -1;
		}
		json_array_append_new(arr, json_string(kv));
		free(kv);
	}
	/* The strings must outlive this call: keep them in the body. */
	json_object_set_new(body, key, arr);
	return ac_body_strv(body, key, 256, true, out, resp);
}

int ac_body_command(json_t *body, char ***argv, ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, "command");
	if (!v || json_is_null(v)) {
		ac_api_fail(resp, 400, "'command' is required: an array of strings");
		return -1;
	}
	if (ac_body_strv(body, "command", 65536, false, argv, resp) < 0)
		return -1;
	if (!*argv || !(*argv)[0] || !(*argv)[0][0]) {
		free(*argv);
		*argv = NULL;
		ac_api_fail(resp, 400,
			    "'command' must be a non-empty array whose first item names "
			    "a program");
		return -1;
	}
	return 0;
}

int ac_body_duration(json_t *body, const char *key, uint64_t *secs, bool *set, ac_api_resp_t *resp)
{
	json_t *v = json_object_get(body, key);
	*set = false;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i <= 0 || (uint64_t)i > AC_DURATION_MAX) {
			ac_api_fail(resp, 400, "'%s' must be a positive number of seconds", key);
			return -1;
		}
		*secs = (uint64_t)i;
	} else if (!json_is_string(v) || ac_duration_parse(json_string_value(v), secs) < 0) {
		ac_api_fail(resp, 400,
			    "'%s' must be a duration such as \"90s\", \"30m\", \"2h\" or \"1d\"",
			    key);
		return -1;
	}
	*set = true;
	return 0;
}
