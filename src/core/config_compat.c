/* agentkernel.toml read as agentcell.toml: one table of agentkernel's keys, each mapped onto
 * agentcell.toml's schema or accepted with a warning (see config_compat.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "base/util.h"
#include "core/config_compat.h"
#include "net/net.h"

/* What a mapped key's value must be. */
enum {
	TY_ANY,
	TY_STR,	   /* a string */
	TY_NESTR,  /* a non-empty string */
	TY_INT,	   /* an integer */
	TY_NUM,	   /* a number */
	TY_BOOL,   /* true or false */
	TY_STRS,   /* an array of strings */
	TY_HOSTS,  /* an array of host patterns (src/net/net.h) */
	TY_STRTAB, /* a table of strings */
	TY_ENV,	   /* true or false, or an array of variable names */
};

/* What happens to it. */
enum {
	ACT_MAP,	/* copied to ours (unless that is set already) */
	ACT_WARN,	/* accepted with a warning naming it */
	ACT_RUNTIME,	/* [sandbox] runtime: a language's image, or a warning */
	ACT_NAMESPACE,	/* [orchestrator] namespace: kubernetes.namespace / nomad.namespace */
	ACT_DATACENTER, /* [orchestrator] nomad_datacenter: nomad.datacenters = [it] */
};

typedef struct rule {
	const char *table, *key;
	const char *ours; /* "table.key" (ACT_MAP) */
	unsigned char ty, act;
	const char *note; /* ACT_WARN: why, or what to do instead (may be NULL) */
} rule_t;

/* A key of ours under the same name; a key mapped onto ours; a key with no meaning here (a
 * warning names it, with note if not NULL). */
/* clang-format off */
#define SAME(t, k, ty)      {t, k, t "." k, ty, ACT_MAP, NULL}
#define MAP(t, k, ours, ty) {t, k, ours, ty, ACT_MAP, NULL}
#define IGNORED(t, k, note) {t, k, NULL, TY_ANY, ACT_WARN, note}
/* clang-format on */

/* agentkernel.toml's keys (agentkernel's src/config.rs and docs/config reference), with the
 * keys of agentcell.toml's own schema in the same tables (they pass through). */
static const rule_t rules[] = {
    SAME("sandbox", "name", TY_STR),
    MAP("sandbox", "base_image", "sandbox.image", TY_NESTR),
    SAME("sandbox", "image", TY_NESTR),
    {"sandbox", "runtime", NULL, TY_STR, ACT_RUNTIME, NULL},
    SAME("sandbox", "init_script", TY_STR),
    SAME("resources", "vcpus", TY_NUM),
    SAME("resources", "memory_mb", TY_INT),
    SAME("resources", "pids", TY_INT),
    SAME("resources", "disk_mb", TY_ANY),
    SAME("security", "profile", TY_STR),
    SAME("security", "network", TY_BOOL),
    SAME("security", "mount_cwd", TY_BOOL),
    SAME("security", "read_only", TY_BOOL),
    SAME("security", "pass_env", TY_ENV),
    IGNORED("security", "mount_home", "the host's home is never mounted"),
    IGNORED("security", "seccomp", "agentcell's own seccomp filter applies"),
    IGNORED("security", "transport", NULL),
    MAP("security.domains", "allow", "network.allow_hosts", TY_HOSTS),
    MAP("security.domains", "block", "network.block_hosts", TY_HOSTS),
    MAP("security.domains", "allowlist_only", "network.allowlist_only", TY_BOOL),
    SAME("security.commands", "allow", TY_STRS),
    SAME("security.commands", "block", TY_STRS),
    SAME("security.commands", "allowlist_only", TY_BOOL),
    IGNORED("network", "vsock_cid", "Firecracker only"),
    IGNORED("network", "ports", "publish ports with --publish"),
    SAME("network", "allow_hosts", TY_HOSTS),
    SAME("network", "block_hosts", TY_HOSTS),
    SAME("network", "allowlist_only", TY_BOOL),
    SAME("api", "api_key", TY_STR),
    SAME("api", "api_key_env", TY_STR),
    SAME("api", "allow_sudo_exec", TY_BOOL),
    IGNORED("api", "tls", NULL),
    IGNORED("agent", "preferred", "give create --agent"),
    IGNORED("agent", "compatibility_mode", NULL),
    IGNORED("agent", "git_name", NULL),
    IGNORED("agent", "git_email", NULL),
    IGNORED("orchestrator", "provider", "choose the backend with --backend"),
    {"orchestrator", "namespace", NULL, TY_NESTR, ACT_NAMESPACE, NULL},
    MAP("orchestrator", "kubeconfig", "kubernetes.kubeconfig", TY_NESTR),
    MAP("orchestrator", "context", "kubernetes.context", TY_NESTR),
    MAP("orchestrator", "runtime_class", "kubernetes.runtime_class", TY_NESTR),
    MAP("orchestrator", "service_account", "kubernetes.service_account", TY_NESTR),
    MAP("orchestrator", "node_selector", "kubernetes.node_selector", TY_STRTAB),
    MAP("orchestrator", "nomad_addr", "nomad.address", TY_NESTR),
    MAP("orchestrator", "nomad_token", "nomad.token", TY_NESTR),
    MAP("orchestrator", "nomad_driver", "nomad.driver", TY_NESTR),
    {"orchestrator", "nomad_datacenter", NULL, TY_NESTR, ACT_DATACENTER, NULL},
    IGNORED("orchestrator", "warm_pool_size", "see [pool] size"),
    IGNORED("orchestrator", "max_pool_size", NULL),
    IGNORED("orchestrator", "warm_pool_images", NULL),
    IGNORED("orchestrator", "max_sandboxes", NULL),
};

/* agentkernel's tables with no meaning here as a whole: one warning each. */
static const char *const ignored_tables[] = {
    "build", "enterprise", "remote",   "scheduling",	 "workspace", "schedule",
    "proxy", "secrets",	   "llm_keys", "llm_governance", "git",	      "ssh",
};

/* agentcell.toml's own tables: copied as they are (validated as agentcell.toml is). */
static const char *const own_tables[] = {"pool",       "images", "languages",
					 "kubernetes", "nomad",	 "audit"};

/* agentkernel's runtime shorthands and the images they stand for (agentkernel's
 * Config::docker_image). "base" is agentkernel's default: agentcell's default image is. */
static const char *const runtimes[][2] = {
    {"python", "python:3.12-alpine"}, {"node", "node:22-alpine"},
    {"go", "golang:1.23-alpine"},     {"rust", "rust:1.85-alpine"},
    {"ruby", "ruby:3.3-alpine"},      {"java", "eclipse-temurin:21-alpine"},
    {"c", "gcc:14-bookworm"},	      {"dotnet", "mcr.microsoft.com/dotnet/sdk:8.0"},
};

typedef struct ctx {
	const json_t *raw;
	const char *text;
	size_t len;
	const char *path, *abs_dir;
	json_t *out, *warnings;
	ac_error_t **err;
} ctx_t;

static bool in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(set[i], s))
			return true;
	return false;
}

static const rule_t *find_rule(const char *table, const char *key)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(rules); i++)
		if (!strcmp(rules[i].table, table) && !strcmp(rules[i].key, key))
			return &rules[i];
	return NULL;
}

static bool rules_table(const char *table)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(rules); i++)
		if (!strcmp(rules[i].table, table))
			return true;
	return false;
}

static const char *skip_blank(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The 1-based line where [table] (or [[table]]) sets key, 0 if not found: for messages. */
static int find_line(const ctx_t *c, const char *table, const char *key)
{
	const char *p = c->text, *end = c->text ? c->text + c->len : NULL;
	char cur[256] = "";
	size_t klen = strlen(key);
	for (int line = 1; p && p < end; line++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *s = skip_blank(p, eol);
		if (s < eol && *s == '[') {
			size_t n = 0;
			for (s++; s < eol && (*s == '[' || *s == ' ' || *s == '\t'); s++)
				;
			while (s < eol && *s != ']' && *s != '#' && n + 1 < sizeof(cur))
				if (*s != ' ' && *s != '\t' && *s != '"')
					cur[n++] = *s++;
				else
					s++;
			cur[n] = 0;
		} else if (!strcmp(cur, table)) {
			bool quoted = s < eol && *s == '"';
			const char *k = s + quoted;
			if ((size_t)(eol - k) > klen && !strncmp(k, key, klen)) {
				const char *after = k + klen;
				if (quoted && *after == '"')
					after++;
				after = skip_blank(after, eol);
				if (after < eol && *after == '=')
					return line;
			}
		}
		p = eol + 1;
	}
	return 0;
}

/* msg as UTF-8 text for messages (they end up in JSON): a key cut at 100 bytes may end
 * inside a character, a key may hold any character; what is not text becomes '?'. */
static const char *text_of(const char *msg, char *out, size_t size)
{
	size_t n = ac_utf8_sanitize(msg, strlen(msg), out, size - 1, '?');
	out[n] = 0;
	return out;
}

/* "[table]", or "[[files]]" (an array of tables), in buf. */
static const char *table_label(const char *table, char *buf, size_t size)
{
	bool arr = !strcmp(table, "files");
	snprintf(buf, size, "%s%s%s", arr ? "[[" : "[", table, arr ? "]]" : "]");
	return buf;
}

static int type_error(ctx_t *c, const char *table, const char *key, const char *what)
{
	int line = find_line(c, table, key);
	char at[32] = "";
	if (line > 0)
		snprintf(at, sizeof(at), ":%d", line);
	char label[192], msg[1024], clean[1024];
	snprintf(msg, sizeof(msg), "%s%s: %s %.100s must be %s", c->path, at,
		 table_label(table, label, sizeof(label)), key, what);
	return ac_error_set(c->err, AC_ERR_INVALID, 0, "%s", text_of(msg, clean, sizeof(clean)));
}

static int warn(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(ctx_t *c, const char *fmt, ...)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s: ", c->path);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(msg))
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	char clean[512];
	text_of(msg, clean, sizeof(clean));
	size_t i;
	json_t *w;
	json_array_foreach(c->warnings, i, w)
	{
		if (!strcmp(json_string_value(w), clean))
			return 0;
	}
	json_array_append_new(c->warnings, json_string(clean));
	return 0;
}

static int warn_key(ctx_t *c, const char *table, const char *key, const char *note)
{
	char label[192];
	return warn(c, "%s %.100s has no meaning here (ignored%s%s)",
		    table_label(table, label, sizeof(label)), key, note ? "; " : "",
		    note ? note : "");
}

static bool strings_only(const json_t *arr)
{
	size_t i;
	json_t *v;
	if (!json_is_array(arr))
		return false;
	json_array_foreach((json_t *)arr, i, v)
	{
		if (!json_is_string(v))
			return false;
	}
	return true;
}

static bool env_name(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) != json_string_length(v) || strlen(s) > 255 ||
	    (*s >= '0' && *s <= '9'))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	       strlen(s);
}

static int check_type(ctx_t *c, const rule_t *r, const json_t *v)
{
	switch (r->ty) {
	case TY_STR:
		return json_is_string(v) ? 0 : type_error(c, r->table, r->key, "a string");
	case TY_NESTR:
		return json_is_string(v) && json_string_length(v)
			   ? 0
			   : type_error(c, r->table, r->key, "a non-empty string");
	case TY_INT:
		return json_is_integer(v) ? 0 : type_error(c, r->table, r->key, "an integer");
	case TY_NUM:
		return json_is_number(v) ? 0 : type_error(c, r->table, r->key, "a number");
	case TY_BOOL:
		return json_is_boolean(v) ? 0 : type_error(c, r->table, r->key, "true or false");
	case TY_STRS:
		return strings_only(v) ? 0 : type_error(c, r->table, r->key, "an array of strings");
	case TY_HOSTS: {
		if (!strings_only(v))
			return type_error(c, r->table, r->key, "an array of host patterns");
		size_t i;
		json_t *x;
		json_array_foreach((json_t *)v, i, x)
		{
			ac_error_t *e = NULL;
			if (strlen(json_string_value(x)) != json_string_length(x) ||
			    ac_net_pattern_check(json_string_value(x), &e) < 0) {
				char what[400];
				snprintf(what, sizeof(what), "an array of host patterns (%s)",
					 e ? e->msg : "a NUL in a pattern");
				ac_error_free(e);
				return type_error(c, r->table, r->key, what);
			}
		}
		return 0;
	}
	case TY_STRTAB: {
		const char *k;
		json_t *x;
		if (!json_is_object(v))
			return type_error(c, r->table, r->key, "a table of strings");
		json_object_foreach((json_t *)v, k, x)
		{
			if (!json_is_string(x))
				return type_error(c, r->table, r->key, "a table of strings");
		}
		return 0;
	}
	case TY_ENV: {
		if (json_is_boolean(v))
			return 0;
		size_t i;
		json_t *x;
		bool ok = json_is_array(v);
		json_array_foreach((json_t *)v, i, x)
		{
			ok = ok && env_name(x);
		}
		return ok ? 0
			  : type_error(c, r->table, r->key,
				       "true or false, or an array of variable names");
	}
	default:
		return 0;
	}
}

/* Sets out's "a.b.c" to v (a new reference, stolen) unless it is set already. */
static void set_path(json_t *out, const char *path, json_t *v)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *t = out;
	char *seg = buf, *dot;
	while ((dot = strchr(seg, '.'))) {
		*dot = 0;
		json_t *next = json_object_get(t, seg);
		if (!json_is_object(next)) {
			next = json_object();
			json_object_set_new(t, seg, next);
		}
		t = next;
		seg = dot + 1;
	}
	if (json_object_get(t, seg))
		json_decref(v);
	else
		json_object_set_new(t, seg, v);
}

/* Whether the file turns the network on: [security] network = true, or the permissive
 * profile without network = false. */
static bool network_on(const json_t *raw)
{
	const json_t *sec = json_object_get(raw, "security"), *n = json_object_get(sec, "network");
	const char *p = json_string_value(json_object_get(sec, "profile"));
	return n ? json_is_true(n) : p && !strcmp(p, "permissive");
}

static int apply_rule(ctx_t *c, const rule_t *r, const json_t *v)
{
	if (check_type(c, r, v) < 0)
		return -1;
	/* agentkernel only warns about domain rules with the network off; here a host policy
	 * needs the network on, so they would make every create fail. */
	if (!strcmp(r->table, "security.domains") && !network_on(c->raw))
		return warn(c, "[security.domains] %s has no effect with the network off (ignored)",
			    r->key);
	switch (r->act) {
	case ACT_MAP:
		set_path(c->out, r->ours, json_deep_copy(v));
		return 0;
	case ACT_RUNTIME: {
		const json_t *sb = json_object_get(c->raw, "sandbox");
		if (json_object_get(sb, "base_image") || json_object_get(sb, "image"))
			return warn(c, "[sandbox] runtime has no meaning here when base_image is "
				       "set (ignored)");
		for (size_t i = 0; i < AC_ARRAY_SIZE(runtimes); i++)
			if (!strcmp(runtimes[i][0], json_string_value(v))) {
				set_path(c->out, "sandbox.image", json_string(runtimes[i][1]));
				return 0;
			}
		return warn(c,
			    "[sandbox] runtime \"%.64s\" has no meaning here (ignored; "
			    "agentcell's default image is used)",
			    json_string_value(v));
	}
	case ACT_NAMESPACE: {
		const char *p = json_string_value(
		    json_object_get(json_object_get(c->raw, "orchestrator"), "provider"));
		if (!p || strcmp(p, "nomad"))
			set_path(c->out, "kubernetes.namespace", json_deep_copy(v));
		if (!p || strcmp(p, "kubernetes"))
			set_path(c->out, "nomad.namespace", json_deep_copy(v));
		return 0;
	}
	case ACT_DATACENTER:
		set_path(c->out, "nomad.datacenters", json_pack("[O]", v));
		return 0;
	default:
		return warn_key(c, r->table, r->key, r->note);
	}
}

static int walk(ctx_t *c, const json_t *tbl, const char *tpath)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)tbl, k, v)
	{
		const rule_t *r = find_rule(tpath, k);
		if (r) {
			if (apply_rule(c, r, v) < 0)
				return -1;
			continue;
		}
		char sub[160];
		snprintf(sub, sizeof(sub), "%s.%.100s", tpath, k);
		if (rules_table(sub)) {
			if (!json_is_object(v))
				return type_error(c, tpath, k, "a table");
			if (walk(c, v, sub) < 0)
				return -1;
			continue;
		}
		warn_key(c, tpath, k, NULL);
	}
	return 0;
}

/* [[files]] source/dest (mode): agentcell's host/sandbox; a relative source is relative to
 * the file's directory (agentkernel's rule). */
static int files(ctx_t *c, const json_t *arr)
{
	if (!json_is_array(arr))
		return ac_error_set(c->err, AC_ERR_INVALID, 0,
				    "%s: files must be an array of tables ([[files]])", c->path);
	json_t *out = json_array();
	json_object_set_new(c->out, "files", out);
	size_t i;
	json_t *f;
	json_array_foreach((json_t *)arr, i, f)
	{
		if (!json_is_object(f))
			return ac_error_set(c->err, AC_ERR_INVALID, 0,
					    "%s: files must be an array of tables ([[files]])",
					    c->path);
		const json_t *src = json_object_get(f, "source"), *dst = json_object_get(f, "dest");
		src = src ? src : json_object_get(f, "host");
		dst = dst ? dst : json_object_get(f, "sandbox");
		if (src && !json_is_string(src))
			return type_error(c, "files",
					  json_object_get(f, "source") ? "source" : "host",
					  "a string");
		if (dst && !json_is_string(dst))
			return type_error(c, "files",
					  json_object_get(f, "dest") ? "dest" : "sandbox",
					  "a string");
		const char *s = json_string_value(src), *d = json_string_value(dst);
		if (!s || !*s || !d || d[0] != '/')
			return ac_error_set(c->err, AC_ERR_INVALID, 0,
					    "%s: [[files]] %zu needs source = \"PATH\" and dest = "
					    "\"/PATH\"",
					    c->path, i + 1);
		const char *k;
		json_t *x;
		json_object_foreach(f, k, x)
		{
			if (strcmp(k, "source") && strcmp(k, "dest") && strcmp(k, "host") &&
			    strcmp(k, "sandbox"))
				warn_key(c, "files", k,
					 !strcmp(k, "mode") ? "the copy keeps the host file's mode"
							    : NULL);
		}
		json_t *host = s[0] == '/' || !c->abs_dir ? json_string(s)
							  : json_sprintf("%s/%s", c->abs_dir, s);
		json_array_append_new(out, json_pack("{so ss}", "host", host, "sandbox", d));
	}
	return 0;
}

int ac_config_compat_convert(const json_t *raw, const char *text, size_t len, const char *path,
			     const char *abs_dir, json_t **out, json_t *warnings, ac_error_t **err)
{
	ctx_t c = {.raw = raw,
		   .text = text,
		   .len = len,
		   .path = path,
		   .abs_dir = abs_dir,
		   .out = json_object(),
		   .warnings = warnings,
		   .err = err};
	const char *k;
	json_t *v;
	/* agentcell's own tables first: what they set wins over what is mapped onto them. */
	json_object_foreach((json_t *)raw, k, v)
	{
		if (in(k, own_tables, AC_ARRAY_SIZE(own_tables)))
			json_object_set_new(c.out, k, json_deep_copy(v));
	}
	json_object_foreach((json_t *)raw, k, v)
	{
		int rc = 0;
		if (in(k, own_tables, AC_ARRAY_SIZE(own_tables)))
			continue;
		if (!strcmp(k, "files"))
			rc = files(&c, v);
		else if (rules_table(k) && json_is_object(v))
			rc = walk(&c, v, k);
		else if (rules_table(k))
			rc = ac_error_set(err, AC_ERR_INVALID, 0, "%s: [%s] must be a table", path,
					  k);
		else if (json_is_object(v) || json_is_array(v) ||
			 in(k, ignored_tables, AC_ARRAY_SIZE(ignored_tables)))
			rc = warn(&c, "[%.100s] has no meaning here (ignored)", k);
		else
			rc = warn(&c, "%.100s has no meaning here (ignored)", k);
		if (rc < 0) {
			json_decref(c.out);
			return -1;
		}
	}
	*out = c.out;
	return 0;
}

bool ac_config_compat_detect(const json_t *raw)
{
	static const char *const only[][2] = {
	    {"sandbox", "base_image"}, {"sandbox", "runtime"},	   {"security", "domains"},
	    {"security", "seccomp"},   {"security", "mount_home"}, {"security", "transport"},
	    {"network", "vsock_cid"},  {"network", "ports"},	   {"api", "tls"},
	};
	static const char *const tables[] = {"agent", "orchestrator"};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)raw, k, v)
	{
		if (in(k, ignored_tables, AC_ARRAY_SIZE(ignored_tables)) ||
		    in(k, tables, AC_ARRAY_SIZE(tables)))
			return true;
	}
	for (size_t i = 0; i < AC_ARRAY_SIZE(only); i++)
		if (json_object_get(json_object_get(raw, only[i][0]), only[i][1]))
			return true;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(raw, "files"), i, f)
	{
		if (json_object_get(f, "source") || json_object_get(f, "dest") ||
		    json_object_get(f, "mode"))
			return true;
	}
	return false;
}

void ac_config_compat_merge(json_t *cfg, const json_t *ak)
{
	const char *k, *k2;
	json_t *v, *v2;
	json_object_foreach((json_t *)ak, k, v)
	{
		json_t *mine = json_object_get(cfg, k);
		if (!mine) {
			json_object_set_new(cfg, k, json_deep_copy(v));
			continue;
		}
		if (!json_is_object(mine) || !json_is_object(v))
			continue; /* [[files]]: agentcell.toml's list as a whole */
		json_object_foreach(v, k2, v2)
		{
			json_t *mine2 = json_object_get(mine, k2);
			if (!mine2)
				json_object_set_new(mine, k2, json_deep_copy(v2));
			else if (json_is_object(mine2) && json_is_object(v2))
				json_object_update_missing(mine2, v2);
		}
	}
}
