/* One op's connection to a sandbox's Nomad agent (internal.h): the settings create
 * resolves into the state's "nomad" object, the token every op reads again, and the
 * requests with their one-line errors.
 *
 * Settings, as the Nomad CLI takes them (api.DefaultConfig): each from agentcell.toml's
 * [nomad] key when present, else its NOMAD_* variable, else the default.
 *   address          NOMAD_ADDR             http://127.0.0.1:4646 (http:// or https://)
 *   namespace        NOMAD_NAMESPACE        the agent's default
 *   region           NOMAD_REGION           the agent's
 *   ca_cert          NOMAD_CACERT           a file
 *   client_cert      NOMAD_CLIENT_CERT      a file (with client_key)
 *   client_key       NOMAD_CLIENT_KEY       a file (with client_cert)
 *   tls_server_name  NOMAD_TLS_SERVER_NAME  the name the certificate must carry
 *   skip_verify      NOMAD_SKIP_VERIFY      Go's strconv.ParseBool spellings
 * and from the file only: driver (docker, podman, exec; raw_exec only with allow_raw_exec =
 * true), datacenters (["*"]), node_pool, image (alpine:3.20), cores (cpus as whole
 * cores instead of MHz), cpu_mhz_per_core (1000, as the seed), user (the task's user),
 * token_file, token. NOMAD_CAPATH and NOMAD_HTTP_AUTH are not read (without them the
 * server is verified against the system's authorities: nothing gets weaker).
 *
 * Files are recorded as absolute paths (relative ones against the configuration file's
 * directory, or the working directory for a variable) and must exist at create. The token
 * is never recorded: a "token" of the file is dropped from the state, which names the file
 * instead ("token_config"), and every op reads NOMAD_TOKEN, else token_file, else that
 * file's [nomad] token. A token with a space, a control or a non-ASCII byte is refused (it
 * goes into a header). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/parse.h"
#include "base/toml.h"
#include "base/util.h"
#include "backends/nomad/internal.h"

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

#define TOKEN_FILE_MAX (64u * 1024)
#define MESSAGE_MAX    400 /* of an error answer's text, in a message */

/* ---- values ---- */

static bool in_set(const char *s, size_t min, size_t max, const char *extra)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > max)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr(extra, *c)))
			return false;
	return true;
}

/* A token as a header takes it: printable ASCII, no space. */
static bool token_ok(const char *t)
{
	if (!t || !*t || strlen(t) > 1024)
		return false;
	for (const unsigned char *c = (const unsigned char *)t; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f)
			return false;
	return true;
}

/* Go's strconv.ParseBool: 1 true, 0 false, -1 neither. */
static int parse_bool(const char *s)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(yes); i++) {
		if (!strcmp(s, yes[i]))
			return 1;
		if (!strcmp(s, no[i]))
			return 0;
	}
	return -1;
}

/* http(s)://host[:port][/prefix], nothing a state or a header should not hold. */
static bool address_ok(const char *a)
{
	size_t skip = !strncasecmp(a, "https://", 8) ? 8 : !strncasecmp(a, "http://", 7) ? 7 : 0;
	if (!skip || strlen(a) > 512)
		return false;
	const char *host = a + skip;
	if (!*host || *host == '/' || *host == ':')
		return false;
	for (const unsigned char *c = (const unsigned char *)a; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f || strchr("?#@\\\"'", *c))
			return false;
	return true;
}

/* ---- resolution ---- */

/* Where a setting came from, for messages: "[nomad] ca_cert" or "NOMAD_CACERT". */
typedef struct origin {
	char text[64];
	bool from_file;
} origin_t;

/* The string setting key: the table's (a non-empty string, else an error), else env's
 * (when set and not empty), else NULL. */
static int pick(const json_t *cfg, const char *key, const char *env, const char **out, origin_t *o,
		ac_error_t **err)
{
	*out = NULL;
	json_t *v = json_object_get(cfg, key);
	if (v) {
		snprintf(o->text, sizeof(o->text), "[nomad] %s", key);
		o->from_file = true;
		const char *s = json_string_value(v);
		if (!s || !*s || strlen(s) != json_string_length(v))
			return ac_error_set(err, AC_ERR_INVALID, 0, "%s must be a non-empty string",
					    o->text);
		*out = s;
		return 0;
	}
	const char *e = env ? getenv(env) : NULL;
	if (e && *e) {
		snprintf(o->text, sizeof(o->text), "%s", env);
		o->from_file = false;
		*out = e;
	}
	return 0;
}

/* dir + "/" + p (p as it is when absolute; "~/" against $HOME for the file's values). */
static char *absolute(const char *p, const char *dir, bool from_file)
{
	char *r = NULL, cwd[4096];
	const char *home = getenv("HOME");
	if (p[0] == '/')
		return strdup(p);
	if (from_file && !strncmp(p, "~/", 2) && home && home[0] == '/') {
		if (asprintf(&r, "%s/%s", home, p + 2) < 0)
			return NULL;
		return r;
	}
	if (!dir) {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		dir = cwd;
	}
	if (asprintf(&r, "%s/%s", dir, p) < 0)
		return NULL;
	return r;
}

/* A file setting: absolute, existing, a regular file (symbolic links are kept as they
 * are: a rotated token or certificate behind one stays followed). */
static int file_setting(json_t *res, const json_t *cfg, const char *key, const char *env,
			const char *cfg_dir, ac_error_t **err)
{
	const char *p;
	origin_t o;
	if (pick(cfg, key, env, &p, &o, err) < 0)
		return -1;
	if (!p)
		return 0;
	_cleanup_free_ char *abs = absolute(p, o.from_file ? cfg_dir : NULL, o.from_file);
	AC_ANALYZER_OWNED(abs);
	if (!abs)
		return ac_error_set(err, AC_ERR_INVALID, errno, "%s: cannot make '%s' absolute",
				    o.text, p);
	struct stat sb;
	if (stat(abs, &sb) < 0)
		return ac_error_set(err, AC_ERR_INVALID, errno, "%s: cannot use '%s'", o.text, abs);
	if (!S_ISREG(sb.st_mode))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not a file", o.text, abs);
	json_t *s = json_string(abs);
	if (!s)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not valid UTF-8", o.text,
				    abs);
	json_object_set_new(res, key, s);
	return 0;
}

static int bool_setting(json_t *res, const json_t *cfg, const char *key, const char *env,
			ac_error_t **err)
{
	json_t *v = json_object_get(cfg, key);
	const char *ev;
	bool b = false;
	if (v) {
		if (!json_is_boolean(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "[nomad] %s must be true or false", key);
		b = json_is_true(v);
	} else if (env && (ev = getenv(env)) && *ev) {
		int x = parse_bool(ev);
		if (x < 0)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: '%.40s' is not a boolean (1, t, T, TRUE, true, "
					    "True, 0, f, F, FALSE, false, False)",
					    env, ev);
		b = x == 1;
	}
	json_object_set_new(res, key, json_boolean(b));
	return 0;
}

/* A plain string setting validated by ok (allowed characters, lengths). */
static int name_setting(json_t *res, const json_t *cfg, const char *key, const char *env,
			size_t max, const char *extra, const char *what, ac_error_t **err)
{
	const char *s;
	origin_t o;
	if (pick(cfg, key, env, &s, &o, err) < 0)
		return -1;
	if (!s)
		return 0;
	if (!in_set(s, 1, max, extra) || s[0] == '-' || s[0] == '.')
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%.140s' is not %s", o.text, s,
				    what);
	json_object_set_new(res, key, json_string(s));
	return 0;
}

static int resolve_into(json_t *res, const json_t *cfg, const char *cfg_abs, ac_error_t **err)
{
	_cleanup_free_ char *cfg_dir = NULL;
	if (cfg_abs) {
		cfg_dir = strdup(cfg_abs);
		if (!cfg_dir)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		AC_ANALYZER_OWNED(cfg_dir);
		char *slash = strrchr(cfg_dir, '/');
		if (slash == cfg_dir)
			slash[1] = 0;
		else if (slash)
			*slash = 0;
	}
	/* The agent. */
	const char *addr;
	origin_t o;
	if (pick(cfg, "address", "NOMAD_ADDR", &addr, &o, err) < 0)
		return -1;
	if (!addr)
		addr = AC_NM_DEFAULT_ADDR;
	else if (!address_ok(addr))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: '%.200s' is not an http:// or https:// URL of a Nomad "
				    "agent (host[:port][/prefix], no credentials, query or spaces)",
				    o.text, addr);
	size_t alen = strlen(addr);
	while (alen > 8 && addr[alen - 1] == '/')
		alen--;
	json_object_set_new(res, "address", json_stringn(addr, alen));
	if (name_setting(res, cfg, "namespace", "NOMAD_NAMESPACE", 127, "-",
			 "a Nomad namespace (1-127 of A-Z a-z 0-9 -)", err) < 0 ||
	    name_setting(res, cfg, "region", "NOMAD_REGION", 127, "-_.",
			 "a Nomad region (1-127 of A-Z a-z 0-9 - _ .)", err) < 0 ||
	    name_setting(res, cfg, "tls_server_name", "NOMAD_TLS_SERVER_NAME", 253, "-.",
			 "a host name", err) < 0 ||
	    file_setting(res, cfg, "ca_cert", "NOMAD_CACERT", cfg_dir, err) < 0 ||
	    file_setting(res, cfg, "client_cert", "NOMAD_CLIENT_CERT", cfg_dir, err) < 0 ||
	    file_setting(res, cfg, "client_key", "NOMAD_CLIENT_KEY", cfg_dir, err) < 0 ||
	    bool_setting(res, cfg, "skip_verify", "NOMAD_SKIP_VERIFY", err) < 0)
		return -1;
	bool cert = json_object_get(res, "client_cert") != NULL;
	if (cert != (json_object_get(res, "client_key") != NULL))
		return ac_error_set(
		    err, AC_ERR_INVALID, 0,
		    "%s is set without %s (a client certificate needs its key)",
		    cert ? "client_cert (NOMAD_CLIENT_CERT)" : "client_key (NOMAD_CLIENT_KEY)",
		    cert ? "client_key (NOMAD_CLIENT_KEY)" : "client_cert (NOMAD_CLIENT_CERT)");

	/* The job. */
	if (bool_setting(res, cfg, "allow_raw_exec", NULL, err) < 0 ||
	    bool_setting(res, cfg, "cores", NULL, err) < 0)
		return -1;
	const char *drv;
	if (pick(cfg, "driver", NULL, &drv, &o, err) < 0)
		return -1;
	if (!drv)
		drv = "docker";
	if (strcmp(drv, "docker") && strcmp(drv, "podman") && strcmp(drv, "exec") &&
	    strcmp(drv, "raw_exec"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "[nomad] driver: '%.40s' is not docker, podman, exec or "
				    "raw_exec",
				    drv);
	if (!strcmp(drv, "raw_exec") && !json_is_true(json_object_get(res, "allow_raw_exec")))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "[nomad] driver = \"raw_exec\" runs sandboxes without any "
				    "isolation, as the Nomad agent's user: it needs allow_raw_exec "
				    "= true");
	json_object_set_new(res, "driver", json_string(drv));
	json_t *dcs = json_object_get(cfg, "datacenters");
	if (dcs) {
		size_t i;
		json_t *d;
		if (!json_is_array(dcs) || !json_array_size(dcs) || json_array_size(dcs) > 64)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "[nomad] datacenters must be an array of 1-64 names");
		json_array_foreach(dcs, i, d)
		{
			const char *s = json_string_value(d);
			if (!s || !in_set(s, 1, 128, "-_.*?[]"))
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "[nomad] datacenters[%zu] is not a datacenter "
						    "name or pattern (1-128 of A-Z a-z 0-9 - _ . * "
						    "? [ ])",
						    i);
		}
		json_object_set(res, "datacenters", dcs);
	} else {
		json_object_set_new(res, "datacenters", json_pack("[s]", "*"));
	}
	if (name_setting(res, cfg, "node_pool", NULL, 128, "-_",
			 "a Nomad node pool (1-128 of A-Z a-z 0-9 - _)", err) < 0 ||
	    name_setting(res, cfg, "user", NULL, 64,
			 "-_.:", "a user name or uid (1-64 of A-Z a-z 0-9 - _ . :)", err) < 0)
		return -1;
	const char *img;
	if (pick(cfg, "image", NULL, &img, &o, err) < 0)
		return -1;
	if (img && !ac_image_ref_valid(img))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "[nomad] image: '%.300s' is not an image reference", img);
	json_object_set_new(res, "image", json_string(img ? img : AC_NM_DEFAULT_IMAGE));
	json_t *mhz = json_object_get(cfg, "cpu_mhz_per_core");
	if (mhz && (!json_is_integer(mhz) || json_integer_value(mhz) < 1 ||
		    json_integer_value(mhz) > 1000000))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "[nomad] cpu_mhz_per_core must be an integer from 1 to "
				    "1000000");
	json_object_set_new(res, "cpu_mhz_per_core",
			    json_integer(mhz ? json_integer_value(mhz) : AC_NM_MHZ_PER_CORE));

	/* The token: where it is, never what it is. */
	json_t *tok = json_object_get(cfg, "token");
	if (json_object_get(cfg, "token_file") && tok)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "[nomad] token and token_file cannot both be set");
	if (file_setting(res, cfg, "token_file", NULL, cfg_dir, err) < 0)
		return -1;
	if (tok) {
		if (!token_ok(json_string_value(tok)) ||
		    strlen(json_string_value(tok)) != json_string_length(tok))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "[nomad] token must be a string of printable ASCII "
					    "without spaces (an ACL token's secret id)");
		if (!cfg_abs)
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "[nomad] token: the configuration file's path is not "
			    "known, so the token could not be read again later (use "
			    "token_file or NOMAD_TOKEN)");
		json_object_set_new(res, "token_config", json_string(cfg_abs));
	}
	return 0;
}

int ac_nm_resolve(json_t *cfg, const char *config_path, ac_error_t **err)
{
	if (!json_is_object(cfg))
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the nomad settings are not an object");
	_cleanup_free_ char *cfg_abs = NULL;
	AC_ANALYZER_OWNED(cfg_abs);
	if (config_path && *config_path) {
		cfg_abs = absolute(config_path, NULL, false);
		if (!cfg_abs)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot make '%s' absolute", config_path);
	}
	/* Into a new object first: a failure leaves cfg as it was. */
	_cleanup_json_ json_t *res = json_object();
	if (!res)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (resolve_into(res, cfg, cfg_abs, err) < 0)
		return -1;
	json_object_del(cfg, "token");
	json_object_update(cfg, res);
	return 0;
}

/* ---- the token ---- */

static int check_token(const char *t, const char *from, ac_error_t **err)
{
	if (!token_ok(t))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the Nomad token from %s has a space, a line break, a control "
				    "or a non-ASCII byte, or is longer than 1024 bytes",
				    from);
	return 0;
}

/* NOMAD_TOKEN, else token_file's text (trimmed), else token_config's [nomad] token; NULL
 * in *out when none. */
static int read_token(const json_t *cfg, char **out, ac_error_t **err)
{
	*out = NULL;
	const char *env = getenv("NOMAD_TOKEN");
	if (env && *env) {
		if (check_token(env, "NOMAD_TOKEN", err) < 0)
			return -1;
		*out = strdup(env);
		return *out ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	const char *file = json_string_value(json_object_get(cfg, "token_file"));
	if (file && *file) {
		char *text = NULL, from[600];
		size_t len = 0;
		ac_error_t *e = NULL;
		if (ac_read_file_at(AT_FDCWD, file, TOKEN_FILE_MAX, &text, &len, &e) < 0) {
			ac_error_set(err, AC_ERR_INVALID, 0, "[nomad] token_file: %s", e->msg);
			ac_error_free(e);
			return -1;
		}
		size_t start = 0;
		while (len && strchr(" \t\r\n", text[len - 1]))
			text[--len] = 0;
		while (start < len && strchr(" \t\r\n", text[start]))
			start++;
		snprintf(from, sizeof(from), "[nomad] token_file %s", file);
		int rc = 0;
		if (start == len)
			rc = ac_error_set(err, AC_ERR_INVALID, 0, "%s is empty", from);
		else if (strlen(text + start) != len - start)
			rc = check_token("", from, err); /* a NUL inside */
		else if ((rc = check_token(text + start, from, err)) == 0 &&
			 !(*out = strdup(text + start)))
			rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		explicit_bzero(text, len);
		free(text);
		return rc;
	}
	const char *conf = json_string_value(json_object_get(cfg, "token_config"));
	if (conf && *conf) {
		_cleanup_json_ json_t *toml = NULL;
		ac_error_t *e = NULL;
		if (ac_toml_parse_file(conf, &toml, &e) < 0) {
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "cannot read the Nomad token of this sandbox's configuration: "
				     "%s",
				     e->msg);
			ac_error_free(e);
			return -1;
		}
		json_t *t = json_object_get(json_object_get(toml, "nomad"), "token");
		int rc = 0;
		char from[600];
		snprintf(from, sizeof(from), "[nomad] token of %s", conf);
		if (t) { /* absent: removed since; the agent says whether one is needed */
			const char *s = json_string_value(t);
			if (!s || strlen(s) != json_string_length(t))
				rc = check_token("", from, err);
			else if ((rc = check_token(s, from, err)) == 0 && !(*out = strdup(s)))
				rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			if (s)
				explicit_bzero((char *)s, strlen(s));
		}
		return rc;
	}
	return 0;
}

/* ---- the connection ---- */

static void zero_headers(ac_remote_conf_t *c)
{
	for (char **h = c->headers; h && *h; h++)
		explicit_bzero(*h, strlen(*h));
}

void ac_nm_close(ac_nm_t *n)
{
	if (n->r)
		ac_remote_close(n->r);
	n->r = NULL;
	zero_headers(&n->conf);
	ac_remote_conf_free(&n->conf);
	memset(n, 0, sizeof(*n));
}

static const char *cfg_str(const json_t *cfg, const char *key)
{
	const char *s = json_string_value(json_object_get(cfg, key));
	return s && *s ? s : NULL;
}

static int copy_field(char *dst, size_t cap, const json_t *cfg, const char *key, const char *dflt,
		      ac_error_t **err)
{
	const char *s = cfg_str(cfg, key);
	if (!s)
		s = dflt;
	if (strlen(s) >= cap)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's nomad settings: '%s' is too long", key);
	snprintf(dst, cap, "%s", s);
	return 0;
}

static int dup_opt(char **dst, const char *s)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -1;
}

int ac_nm_open(const json_t *st, ac_nm_t *n, ac_error_t **err)
{
	memset(n, 0, sizeof(*n));
	_cleanup_json_ json_t *fresh = NULL;
	const json_t *cfg;
	if (st) {
		cfg = json_object_get(st, "nomad");
		if (!json_is_object(cfg))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "sandbox '%s' has no nomad settings in its state",
					    json_string_value(json_object_get(st, "name"))
						?: "(unnamed)");
	} else {
		fresh = json_object();
		if (!fresh)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		if (ac_nm_resolve(fresh, NULL, err) < 0)
			return -1;
		cfg = fresh;
	}
	const char *addr = cfg_str(cfg, "address");
	if (!addr)
		addr = AC_NM_DEFAULT_ADDR;
	if (!address_ok(addr))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's nomad address '%.200s' is not an http:// or "
				    "https:// URL",
				    addr);
	if (copy_field(n->ns, sizeof(n->ns), cfg, "namespace", "", err) < 0 ||
	    copy_field(n->region, sizeof(n->region), cfg, "region", "", err) < 0 ||
	    copy_field(n->job, sizeof(n->job), cfg, "job", "", err) < 0 ||
	    copy_field(n->driver, sizeof(n->driver), cfg, "driver", "docker", err) < 0)
		return -1;
	/* Values that end up in a query string or a header: only what resolve lets in. */
	if ((n->ns[0] && !in_set(n->ns, 1, 127, "-")) ||
	    (n->region[0] && !in_set(n->region, 1, 127, "-_.")) ||
	    (n->job[0] && !in_set(n->job, 1, 159, "-_.")))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the sandbox's nomad settings hold a namespace, region or job "
				    "id with characters Nomad does not take");
	ac_remote_conf_t *c = &n->conf;
	_cleanup_free_ char *tok = NULL;
	if (read_token(cfg, &tok, err) < 0)
		return -1;
	AC_ANALYZER_OWNED(tok);
	if (asprintf(&c->name, "nomad at %s", addr) < 0)
		c->name = NULL;
	c->insecure = json_is_true(json_object_get(cfg, "skip_verify"));
	if (!c->name || dup_opt(&c->server, addr) < 0 ||
	    dup_opt(&c->ca_file, cfg_str(cfg, "ca_cert")) < 0 ||
	    dup_opt(&c->cert_file, cfg_str(cfg, "client_cert")) < 0 ||
	    dup_opt(&c->key_file, cfg_str(cfg, "client_key")) < 0 ||
	    dup_opt(&c->tls_server_name, cfg_str(cfg, "tls_server_name")) < 0)
		goto oom;
	if (tok) {
		c->headers = calloc(2, sizeof(char *));
		if (!c->headers || asprintf(&c->headers[0], "X-Nomad-Token: %s", tok) < 0) {
			if (c->headers)
				c->headers[0] = NULL;
			explicit_bzero(tok, strlen(tok));
			goto oom;
		}
		explicit_bzero(tok, strlen(tok));
	}
	if (ac_remote_open(c, &n->r, err) < 0) {
		ac_nm_close(n);
		return -1;
	}
	return 0;
oom:
	ac_nm_close(n);
	return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

/* ---- requests ---- */

void ac_nm_tidy_error(const ac_nm_t *n, ac_error_t *e)
{
	if (!e || !n->conf.name || !n->conf.server)
		return;
	char twice[1200];
	int len = snprintf(twice, sizeof(twice), "%s at %s", n->conf.name, n->conf.server);
	if (len <= 0 || (size_t)len >= sizeof(twice))
		return;
	char *at = strstr(e->msg, twice);
	if (!at)
		return;
	size_t keep = strlen(n->conf.name), drop = (size_t)len - keep;
	memmove(at + keep, at + keep + drop, strlen(at + keep + drop) + 1);
}

/* Whether query (after '?') already sets key. */
static bool has_param(const char *path, const char *key)
{
	const char *q = strchr(path, '?');
	size_t kl = strlen(key);
	for (const char *p = q; p && *p; p = strchr(p + 1, '&'))
		if (!strncmp(p + 1, key, kl) && p[1 + kl] == '=')
			return true;
	return false;
}

long ac_nm_call(ac_nm_t *n, const char *method, const char *path, const json_t *body,
		ac_remote_resp_t *resp, ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (!n->r)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the Nomad connection is not open");
	char full[2048];
	size_t len = (size_t)snprintf(full, sizeof(full), "%s", path ? path : "");
	char sep = strchr(full, '?') ? '&' : '?';
	if (n->ns[0] && path && !has_param(path, "namespace") && len < sizeof(full)) {
		len +=
		    (size_t)snprintf(full + len, sizeof(full) - len, "%cnamespace=%s", sep, n->ns);
		sep = '&';
	}
	if (n->region[0] && path && !has_param(path, "region") && len < sizeof(full))
		len +=
		    (size_t)snprintf(full + len, sizeof(full) - len, "%cregion=%s", sep, n->region);
	if (len >= sizeof(full))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: the request path is too long",
				    n->conf.name);
	ac_error_t *e = NULL;
	if (ac_remote_request(n->r, method, full, body, NULL, resp, &e) < 0) {
		ac_nm_tidy_error(n, e);
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	return resp->status;
}

int ac_nm_simple(ac_nm_t *n, const char *method, const char *path, const json_t *body, bool ok404,
		 const char *what, json_t **out, ac_error_t **err)
{
	if (out)
		*out = NULL;
	ac_remote_resp_t r;
	long s = ac_nm_call(n, method, path, body, &r, err);
	int rc;
	if (s < 0)
		rc = -1;
	else if (s >= 200 && s < 300) {
		rc = 0;
		if (out)
			*out = steal_ptr(r.json);
	} else if (ok404 && s == 404)
		rc = 1;
	else
		rc = ac_nm_http_error(n, &r, what, err);
	ac_remote_resp_free(&r);
	return rc;
}

/* An answer's text as one line: Nomad's errors are plain text, some over several lines
 * ("1 error occurred:\n\t* Task group ..."): every run of white space becomes one space. */
static void one_line(const ac_remote_resp_t *r, char *out, size_t cap)
{
	const char *src = r->body ? r->body : "";
	size_t n = r->body ? r->len : 0;
	const json_t *j = r->json;
	static const char *const keys[] = {"Error", "error", "Message", "message"};
	for (size_t i = 0; json_is_object(j) && i < AC_ARRAY_SIZE(keys); i++) {
		const char *s = json_string_value(json_object_get(j, keys[i]));
		if (s && *s) {
			src = s;
			n = strlen(s);
			break;
		}
	}
	char text[MESSAGE_MAX + 1];
	size_t o = 0;
	bool space = true; /* drops leading white space */
	for (size_t i = 0; i < n && o < MESSAGE_MAX; i++) {
		char c = src[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (!space)
				text[o++] = ' ';
			space = true;
			continue;
		}
		if (c == 0)
			break;
		text[o++] = c;
		space = false;
	}
	while (o && text[o - 1] == ' ')
		o--;
	text[o] = 0;
	ac_escape_controls(text, out, cap);
}

int ac_nm_http_error(const ac_nm_t *n, const ac_remote_resp_t *resp, const char *what,
		     ac_error_t **err)
{
	char msg[MESSAGE_MAX + 64];
	one_line(resp, msg, sizeof(msg));
	ac_error_kind_t kind = AC_ERR_BACKEND;
	const char *hint = "";
	switch (resp->status) {
	case 400:
		kind = AC_ERR_INVALID;
		break;
	case 401:
	case 403:
		kind = AC_ERR_PERMISSION;
		hint = " (the ACL token: NOMAD_TOKEN, [nomad] token_file or token)";
		break;
	case 404:
		kind = AC_ERR_NOT_FOUND;
		break;
	default:
		break;
	}
	return ac_error_set(err, kind, 0, "%s: %s: %ld %s%s", n->conf.name ? n->conf.name : "nomad",
			    what ? what : "request", resp->status, msg[0] ? msg : "(no message)",
			    hint);
}

int ac_nm_nap(const ac_backend_ctx_t *ctx, int ms)
{
	if (ctx && ctx->cancel_fd > 0) {
		struct pollfd p = {.fd = ctx->cancel_fd, .events = POLLIN | POLLRDHUP};
		int r = poll(&p, 1, ms);
		return r > 0 ? -1 : 0;
	}
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}
