/* The subset of JSON Schema (2020-12 vocabulary) that the tools' inputSchema use, enforced
 * on tools/call arguments. The published schema is the one checked, so what an MCP client
 * reads in tools/list is exactly what is refused with -32602. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "base/util.h"
#include "mcp/internal.h"

#define PATH_MAX_LEN 256
#define DEPTH_MAX    16

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static const char *const known_types[] = {"object", "array",   "string", "integer",
					  "number", "boolean", "null"};
static const char *const type_names[] = {"an object", "an array",  "a string", "an integer",
					 "a number",  "a boolean", "null"};

static bool is_type(const json_t *v, const char *t)
{
	if (!strcmp(t, "object"))
		return json_is_object(v);
	if (!strcmp(t, "array"))
		return json_is_array(v);
	if (!strcmp(t, "string"))
		return json_is_string(v);
	if (!strcmp(t, "number"))
		return json_is_number(v);
	if (!strcmp(t, "integer")) {
		/* JSON Schema: 3.0 is an integer too. */
		if (json_is_integer(v))
			return true;
		double d = json_real_value(v);
		return json_is_real(v) && isfinite(d) && d == floor(d) &&
		       fabs(d) < 9007199254740992.0;
	}
	if (!strcmp(t, "boolean"))
		return json_is_boolean(v);
	if (!strcmp(t, "null"))
		return json_is_null(v);
	return false;
}

static const char *article(const char *t)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(known_types); i++)
		if (!strcmp(known_types[i], t))
			return type_names[i];
	return t;
}

/* "a string or an array" for a schema's "type". */
static void describe_types(const json_t *type, char *buf, size_t len)
{
	buf[0] = '\0';
	if (json_is_string(type)) {
		snprintf(buf, len, "%s", article(json_string_value(type)));
		return;
	}
	size_t i;
	json_t *t;
	json_array_foreach(type, i, t)
	{
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", i ? " or " : "",
			 article(json_string_value(t)));
	}
}

static bool type_matches(const json_t *type, const json_t *v)
{
	if (!type)
		return true;
	if (json_is_string(type))
		return is_type(v, json_string_value(type));
	size_t i;
	json_t *t;
	json_array_foreach(type, i, t) if (is_type(v, json_string_value(t))) return true;
	return false;
}

static const char *where(const char *path)
{
	return path[0] ? path : "arguments";
}

static bool fail(char *msg, size_t msglen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(char *msg, size_t msglen, const char *path, const char *fmt, ...)
{
	int n = snprintf(msg, msglen, "%s: ", where(path));
	if (n < 0 || (size_t)n >= msglen)
		return false;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, msglen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static bool check(const json_t *schema, const json_t *v, const char *path, char *msg,
		  size_t msglen);

static bool check_any_of(const json_t *any, const json_t *v, const char *path, char *msg,
			 size_t msglen)
{
	size_t i, typed = 0, last = 0;
	json_t *branch;
	json_array_foreach(any, i, branch)
	{
		if (check(branch, v, path, msg, msglen))
			return true;
		if (type_matches(json_object_get(branch, "type"), v)) {
			typed++;
			last = i;
		}
	}
	/* One branch has the value's type: its complaint is the precise one. */
	if (typed == 1)
		return check(json_array_get(any, last), v, path, msg, msglen);
	char want[256] = "";
	json_array_foreach(any, i, branch)
	{
		char one[64];
		describe_types(json_object_get(branch, "type"), one, sizeof(one));
		size_t used = strlen(want);
		snprintf(want + used, sizeof(want) - used, "%s%s", i ? " or " : "", one);
	}
	return fail(msg, msglen, path, "expected %s, got %s", want, type_name(v));
}

static bool check_number(const json_t *schema, const json_t *v, const char *path, char *msg,
			 size_t msglen)
{
	double d = json_number_value(v);
	json_t *k;
	if ((k = json_object_get(schema, "minimum")) && d < json_number_value(k))
		return fail(msg, msglen, path, "must be at least %g", json_number_value(k));
	if ((k = json_object_get(schema, "maximum")) && d > json_number_value(k))
		return fail(msg, msglen, path, "must be at most %g", json_number_value(k));
	if ((k = json_object_get(schema, "exclusiveMinimum")) && d <= json_number_value(k))
		return fail(msg, msglen, path, "must be greater than %g", json_number_value(k));
	if ((k = json_object_get(schema, "exclusiveMaximum")) && d >= json_number_value(k))
		return fail(msg, msglen, path, "must be less than %g", json_number_value(k));
	return true;
}

static bool check_object(const json_t *schema, const json_t *v, const char *path, char *msg,
			 size_t msglen)
{
	json_t *k, *props = json_object_get(schema, "properties");
	if ((k = json_object_get(schema, "maxProperties")) &&
	    json_object_size(v) > (size_t)json_integer_value(k))
		return fail(msg, msglen, path, "at most %lld entries", json_integer_value(k));
	size_t i;
	json_t *req;
	json_array_foreach(json_object_get(schema, "required"), i, req)
	{
		if (!json_object_get(v, json_string_value(req)))
			return fail(msg, msglen, path, "missing required field '%s'",
				    json_string_value(req));
	}
	json_t *extra = json_object_get(schema, "additionalProperties");
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val)
	{
		char sub[PATH_MAX_LEN];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
		json_t *ps = json_object_get(props, key);
		if (!ps && json_is_false(extra))
			return fail(msg, msglen, path, "unknown field '%s'", key);
		if (!ps)
			ps = json_is_object(extra) ? extra : NULL;
		if (ps && !check(ps, val, sub, msg, msglen))
			return false;
	}
	return true;
}

static bool check(const json_t *schema, const json_t *v, const char *path, char *msg, size_t msglen)
{
	json_t *k;
	if ((k = json_object_get(schema, "anyOf")) && !check_any_of(k, v, path, msg, msglen))
		return false;
	json_t *type = json_object_get(schema, "type");
	if (!type_matches(type, v)) {
		char want[128];
		describe_types(type, want, sizeof(want));
		return fail(msg, msglen, path, "expected %s, got %s", want, type_name(v));
	}
	if ((k = json_object_get(schema, "enum"))) {
		size_t i;
		json_t *e;
		bool found = false;
		json_array_foreach(k, i, e) found = found || json_equal(e, (json_t *)v);
		if (!found) {
			char list[256] = "";
			json_array_foreach(k, i, e)
			{
				size_t used = strlen(list);
				snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 json_is_string(e) ? json_string_value(e) : "?");
			}
			return fail(msg, msglen, path, "must be one of: %s", list);
		}
	}
	if (json_is_string(v)) {
		size_t n = ac_utf8_chars(json_string_value(v), json_string_length(v));
		if ((k = json_object_get(schema, "minLength")) && n < (size_t)json_integer_value(k))
			return fail(msg, msglen, path, "%s",
				    json_integer_value(k) == 1 ? "must not be empty"
							       : "is too short");
		if ((k = json_object_get(schema, "maxLength")) && n > (size_t)json_integer_value(k))
			return fail(msg, msglen, path, "longer than %lld characters",
				    json_integer_value(k));
	} else if (json_is_number(v)) {
		if (!check_number(schema, v, path, msg, msglen))
			return false;
	} else if (json_is_array(v)) {
		size_t n = json_array_size(v);
		if ((k = json_object_get(schema, "minItems")) && n < (size_t)json_integer_value(k))
			return fail(msg, msglen, path, "needs at least %lld item%s",
				    json_integer_value(k), json_integer_value(k) == 1 ? "" : "s");
		if ((k = json_object_get(schema, "maxItems")) && n > (size_t)json_integer_value(k))
			return fail(msg, msglen, path, "at most %lld items", json_integer_value(k));
		json_t *items = json_object_get(schema, "items");
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			char sub[PATH_MAX_LEN];
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (items && !check(items, e, sub, msg, msglen))
				return false;
		}
	} else if (json_is_object(v)) {
		if (!check_object(schema, v, path, msg, msglen))
			return false;
	}
	return true;
}

bool ac_mcp_schema_check(const json_t *schema, const json_t *value, char *msg, size_t msglen)
{
	msg[0] = '\0';
	return check(schema, value, "", msg, msglen);
}

/* ------------------------------------------------------------------ self-check */

static bool supported(const json_t *s, int depth, char *msg, size_t msglen);

static bool nonneg_int(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static bool known_type(const json_t *t)
{
	for (size_t i = 0; json_is_string(t) && i < AC_ARRAY_SIZE(known_types); i++)
		if (!strcmp(json_string_value(t), known_types[i]))
			return true;
	return false;
}

static bool keyword_ok(const char *key, const json_t *v, int depth, char *msg, size_t msglen)
{
	size_t i;
	json_t *e;
	if (!strcmp(key, "description") || !strcmp(key, "title"))
		return json_is_string(v);
	if (!strcmp(key, "default") || !strcmp(key, "examples"))
		return true;
	if (!strcmp(key, "type")) {
		if (json_is_string(v))
			return known_type(v);
		if (!json_is_array(v) || json_array_size(v) == 0)
			return false;
		json_array_foreach(v, i, e) if (!known_type(e)) return false;
		return true;
	}
	if (!strcmp(key, "minLength") || !strcmp(key, "maxLength") || !strcmp(key, "minItems") ||
	    !strcmp(key, "maxItems") || !strcmp(key, "maxProperties"))
		return nonneg_int(v);
	if (!strcmp(key, "minimum") || !strcmp(key, "maximum") ||
	    !strcmp(key, "exclusiveMinimum") || !strcmp(key, "exclusiveMaximum"))
		return json_is_number(v);
	if (!strcmp(key, "enum"))
		return json_is_array(v) && json_array_size(v) > 0;
	if (!strcmp(key, "required")) {
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, e) if (!json_is_string(e)) return false;
		return true;
	}
	if (!strcmp(key, "items"))
		return supported(v, depth + 1, msg, msglen);
	if (!strcmp(key, "additionalProperties"))
		return json_is_boolean(v) || supported(v, depth + 1, msg, msglen);
	if (!strcmp(key, "anyOf")) {
		if (!json_is_array(v) || json_array_size(v) == 0)
			return false;
		json_array_foreach(v, i, e) if (!supported(e, depth + 1, msg, msglen)) return false;
		return true;
	}
	if (!strcmp(key, "properties")) {
		const char *pk;
		if (!json_is_object(v))
			return false;
		json_object_foreach((json_t *)v, pk,
				    e) if (!supported(e, depth + 1, msg, msglen)) return false;
		return true;
	}
	return false;
}

static bool supported(const json_t *s, int depth, char *msg, size_t msglen)
{
	if (!json_is_object(s) || depth > DEPTH_MAX) {
		if (!msg[0])
			snprintf(msg, msglen, "a schema must be an object (at most %d deep)",
				 DEPTH_MAX);
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)s, key, v)
	{
		if (!keyword_ok(key, v, depth, msg, msglen)) {
			if (!msg[0])
				snprintf(msg, msglen, "unsupported or malformed keyword '%s'", key);
			return false;
		}
	}
	/* Every required field is declared. */
	size_t i;
	json_t *req;
	json_array_foreach(json_object_get(s, "required"), i, req)
	{
		if (!json_object_get(json_object_get(s, "properties"), json_string_value(req))) {
			snprintf(msg, msglen, "required field '%s' is not in properties",
				 json_string_value(req));
			return false;
		}
	}
	return true;
}

bool ac_mcp_schema_supported(const json_t *schema, char *msg, size_t msglen)
{
	msg[0] = '\0';
	return supported(schema, 0, msg, msglen);
}
