/* Registry credentials and authentication (registry.h): Docker's credential files
 * ("auths": {"host": {"auth": base64(user:pass)}}: $REGISTRY_AUTH_FILE,
 * ~/.docker/config.json, images/auth.json), the WWW-Authenticate challenges of the
 * distribution spec's token flow (Bearer realm/service/scope -> a token from the realm,
 * with basic credentials when we have them) and Basic auth, and `image login`/`logout`.
 * Credential helpers (credsStore, credHelpers) are not run: their entries are skipped. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/io.h"
#include "base/util.h"
#include "image/internal.h"
#include "image/registry.h"

#define AUTH_FILE_MAX (1u << 20)

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* "docker.io" for Docker Hub's names, else host[:port] lowercased; a key of a
 * credentials file may carry a scheme and a path ("https://index.docker.io/v1/"): *path
 * gets the path without slashes around it ("" for none, v1 and v2 count as none). */
static void norm_host(const char *in, char *out, size_t len, char *path, size_t plen)
{
	const char *s = in;
	const char *p = strstr(s, "://");
	if (p)
		s = p + 3;
	size_t n = strcspn(s, "/");
	snprintf(out, len, "%.*s", (int)n, s);
	for (char *c = out; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!strcmp(out, "index.docker.io") || !strcmp(out, "registry-1.docker.io"))
		snprintf(out, len, "docker.io");
	if (path) {
		const char *rest = s + n;
		while (*rest == '/')
			rest++;
		snprintf(path, plen, "%s", rest);
		size_t pl = strlen(path);
		while (pl && path[pl - 1] == '/')
			path[--pl] = '\0';
		if (!strcmp(path, "v1") || !strcmp(path, "v2"))
			path[0] = '\0';
	}
}

static int decode_entry(json_t *e, char **user, char **pass)
{
	const char *auth = json_string_value(json_object_get(e, "auth"));
	if (auth && *auth) {
		unsigned char *raw = NULL;
		size_t rl = 0;
		if (ac_base64_decode(auth, strlen(auth), &raw, &rl) < 0)
			return 0;
		char *colon = memchr(raw, ':', rl);
		if (!colon || colon == (char *)raw || memchr(raw, '\0', rl)) {
			free_secret((char *)raw);
			return 0;
		}
		*user = strndup((char *)raw, (size_t)(colon - (char *)raw));
		*pass = strdup(colon + 1);
		free_secret((char *)raw);
		return *user && *pass ? 1 : -1;
	}
	const char *u = json_string_value(json_object_get(e, "username"));
	const char *p = json_string_value(json_object_get(e, "password"));
	if (u && *u && p) {
		*user = strdup(u);
		*pass = strdup(p);
		return *user && *pass ? 1 : -1;
	}
	return 0;
}

/* 1: found in path (user and pass set), 0: not there (or no such file). */
static int creds_from_file(const char *path, const char *registry, const char *repo, char **user,
			   char **pass, ac_error_t **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (access(path, F_OK) != 0)
		return 0;
	ac_error_t *e = NULL;
	if (ac_read_file_at(AT_FDCWD, path, AUTH_FILE_MAX, &text, &len, &e) < 0) {
		ac_error_free(e);
		return 0; /* unreadable (another user's): as if absent */
	}
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	explicit_bzero(text, len);
	if (!root)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: not valid JSON (line %d: %s)",
				    path, je.line, je.text);
	json_t *auths = json_object_get(root, "auths");
	char want[256], host[256], kpath[256];
	norm_host(registry, want, sizeof(want), NULL, 0);
	const char *key;
	json_t *val;
	int rc = 0;
	/* A host's own entry first, then a namespace entry ("host/team") over the repo. */
	for (int pass_no = 0; pass_no < 2 && rc == 0; pass_no++)
		json_object_foreach(auths, key, val)
		{
			norm_host(key, host, sizeof(host), kpath, sizeof(kpath));
			if (strcmp(host, want))
				continue;
			size_t kl = strlen(kpath);
			if (pass_no == 0 ? kl != 0
					 : !(kl && !strncmp(repo, kpath, kl) && repo[kl] == '/'))
				continue;
			rc = decode_entry(val, user, pass);
			if (rc)
				break;
		}
	json_decref(root);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return rc;
}

static int lookup_credentials(const ac_image_pull_opts_t *o, const char *registry, const char *repo,
			      char **user, char **pass, ac_error_t **err)
{
	char path[4096];
	if (o->auth_file)
		return creds_from_file(o->auth_file, registry, repo, user, pass, err);
	const char *f = getenv("REGISTRY_AUTH_FILE");
	int rc;
	if (f && *f && (rc = creds_from_file(f, registry, repo, user, pass, err)) != 0)
		return rc;
	const char *home = getenv("HOME");
	if (home && *home) {
		snprintf(path, sizeof(path), "%s/.docker/config.json", home);
		if ((rc = creds_from_file(path, registry, repo, user, pass, err)) != 0)
			return rc;
	}
	if (o->home) {
		snprintf(path, sizeof(path), "%s/images/auth.json", o->home);
		return creds_from_file(path, registry, repo, user, pass, err);
	}
	return 0;
}

int ac_reg_init(ac_reg_t *r, const ac_image_pull_opts_t *o, const char *registry, const char *repo,
		const char *what, ac_error_t **err)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->home = o->home;
	r->cancel_fd = o->cancel_fd;
	snprintf(r->registry, sizeof(r->registry), "%s", registry);
	snprintf(r->host, sizeof(r->host), "%s",
		 strcmp(registry, "docker.io") ? registry : "registry-1.docker.io");
	snprintf(r->repo, sizeof(r->repo), "%s", repo);
	snprintf(r->what, sizeof(r->what), "%s", what);
	const char *ca = getenv("AGENTCELL_REGISTRY_CA");
	r->ca_file = ca && *ca ? ca : NULL;
	char want[256], one[256];
	norm_host(registry, want, sizeof(want), NULL, 0);
	for (char *const *i = o->insecure; i && *i; i++) {
		norm_host(*i, one, sizeof(one), NULL, 0);
		if (!strcmp(one, want))
			r->insecure = true;
	}
	if (lookup_credentials(o, registry, repo, &r->user, &r->pass, err) < 0) {
		/* half a pair (out of memory): the caller does not free r on failure */
		free_secret(r->user);
		free_secret(r->pass);
		r->user = r->pass = NULL;
		return -1;
	}
	return 0;
}

void ac_reg_free(ac_reg_t *r)
{
	free_secret(r->user);
	free_secret(r->pass);
	free_secret(r->authz);
	r->user = r->pass = r->authz = NULL;
}

/* ------------------------------------------------------------------ challenges */

struct challenge {
	char scheme[16];
	char realm[1024];
	char service[256];
	char scope[512];
};

/* Parses 'Scheme k=v, k="v", ... [, Scheme2 ...]' lines; keeps the first Bearer, else the
 * first Basic. */
static bool parse_challenges(const char *s, struct challenge *out)
{
	struct challenge cur = {0}, basic = {0};
	bool have_bearer = false, have_basic = false;
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, " \t=,\n");
		const char *tok = p;
		p += n;
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=') {
			/* A new scheme. */
			if (!strcasecmp(cur.scheme, "bearer") && !have_bearer) {
				*out = cur;
				have_bearer = true;
			} else if (!strcasecmp(cur.scheme, "basic") && !have_basic) {
				basic = cur;
				have_basic = true;
			}
			memset(&cur, 0, sizeof(cur));
			snprintf(cur.scheme, sizeof(cur.scheme), "%.*s", (int)n, tok);
			continue;
		}
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		char val[1024];
		size_t vl = 0;
		if (*q == '"') {
			for (q++; *q && *q != '"'; q++) {
				if (*q == '\\' && q[1])
					q++;
				if (vl < sizeof(val) - 1)
					val[vl++] = *q;
			}
			if (*q == '"')
				q++;
		} else {
			while (*q && *q != ',' && *q != ' ' && *q != '\t' && *q != '\n') {
				if (vl < sizeof(val) - 1)
					val[vl++] = *q;
				q++;
			}
		}
		val[vl] = '\0';
		if (n == 5 && !strncasecmp(tok, "realm", 5))
			snprintf(cur.realm, sizeof(cur.realm), "%s", val);
		else if (n == 7 && !strncasecmp(tok, "service", 7))
			snprintf(cur.service, sizeof(cur.service), "%s", val);
		else if (n == 5 && !strncasecmp(tok, "scope", 5))
			snprintf(cur.scope, sizeof(cur.scope), "%s", val);
		p = q;
	}
	if (!strcasecmp(cur.scheme, "bearer") && !have_bearer) {
		*out = cur;
		have_bearer = true;
	} else if (!strcasecmp(cur.scheme, "basic") && !have_basic) {
		basic = cur;
		have_basic = true;
	}
	if (!have_bearer && have_basic)
		*out = basic;
	return have_bearer || have_basic;
}

static char *basic_header(const ac_reg_t *r)
{
	size_t n = strlen(r->user) + strlen(r->pass) + 2;
	char *up = malloc(n);
	if (!up)
		return NULL;
	snprintf(up, n, "%s:%s", r->user, r->pass);
	char *b64 = ac_base64_encode(up, n - 1);
	free_secret(up);
	if (!b64)
		return NULL;
	char *h = NULL;
	if (asprintf(&h, "Authorization: Basic %s", b64) < 0)
		h = NULL;
	free_secret(b64);
	return h;
}

static bool is_loopback_url(const char *url)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	return !strncmp(h, "127.", 4) || !strncmp(h, "localhost", 9) || !strncmp(h, "[::1]", 5);
}

static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int unauthorized(const ac_reg_t *r, long status, ac_error_t **err)
{
	if (r->user)
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "unauthorized: %s (%ld): the registry refused the credentials "
				    "of %s (agentcell image login %s)",
				    r->what, status, r->user, r->registry);
	return ac_error_set(err, AC_ERR_PERMISSION, 0,
			    "unauthorized: %s (%ld): use agentcell image login %s", r->what, status,
			    r->registry);
}

static int bearer_token(ac_reg_t *r, const struct challenge *c, const char *scope, ac_error_t **err)
{
	if (strncasecmp(c->realm, "https://", 8) && !(strncasecmp(c->realm, "http://", 7) == 0 &&
						      (r->insecure || is_loopback_url(c->realm))))
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "registry %s: token realm '%s' is not an https:// URL",
				    r->registry, c->realm);
	if (!header_safe(c->realm))
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "registry %s: token realm has control bytes", r->registry);
	char *svc = ac_curl.curl_easy_escape(NULL, c->service, 0);
	char *scp = scope ? ac_curl.curl_easy_escape(NULL, scope, 0) : NULL;
	char *acct = !scope && r->user ? ac_curl.curl_easy_escape(NULL, r->user, 0) : NULL;
	char *url = NULL;
	int w = asprintf(&url, "%s%cservice=%s%s%s%s%s", c->realm,
			 strchr(c->realm, '?') ? '&' : '?', svc ? svc : "", scp ? "&scope=" : "",
			 scp ? scp : "", acct ? "&account=" : "", acct ? acct : "");
	ac_curl.curl_free(svc);
	ac_curl.curl_free(scp);
	ac_curl.curl_free(acct);
	if (w < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	struct curl_slist *hdrs = NULL;
	char *basic = r->user ? basic_header(r) : NULL;
	if (basic)
		hdrs = ac_curl.curl_slist_append(hdrs, basic);
	ac_reg_resp_t resp;
	int rc = ac_reg_http_get(r, url, hdrs, AC_REG_TOKEN_MAX, &resp, err);
	ac_curl.curl_slist_free_all(hdrs);
	free_secret(basic);
	free(url);
	if (rc < 0)
		return -1;
	if (resp.status == 401 || resp.status == 403) {
		ac_reg_resp_free(&resp);
		return unauthorized(r, resp.status, err);
	}
	if (resp.status != 200) {
		long st = resp.status;
		ac_reg_resp_free(&resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "registry %s: its token server answered %ld", r->registry, st);
	}
	json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
	if (resp.body)
		explicit_bzero(resp.body, resp.len);
	ac_reg_resp_free(&resp);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok || !header_safe(tok) || strlen(tok) > 64 * 1024) {
		json_decref(j);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "registry %s: its token server sent no usable token",
				    r->registry);
	}
	free_secret(r->authz);
	if (asprintf(&r->authz, "Authorization: Bearer %s", tok) < 0)
		r->authz = NULL;
	json_decref(j);
	return r->authz ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

int ac_reg_authenticate(ac_reg_t *r, const char *www_auth, const char *scope, ac_error_t **err)
{
	struct challenge c;
	if (!www_auth || !parse_challenges(www_auth, &c))
		return unauthorized(r, 401, err);
	if (!strcasecmp(c.scheme, "bearer")) {
		if (!c.realm[0])
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "registry %s: Bearer challenge without a realm",
					    r->registry);
		return bearer_token(r, &c, scope, err);
	}
	if (!r->user)
		return unauthorized(r, 401, err);
	if (r->plain && !r->insecure)
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "registry %s: refusing to send credentials over plain HTTP",
				    r->registry);
	char *h = basic_header(r);
	if (!h)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	free_secret(r->authz);
	r->authz = h;
	return 0;
}

/* ------------------------------------------------------------------ login / logout */

/* "https://Host:5000/" -> "host:5000"; Docker Hub's names -> "docker.io". */
static int login_host(const char *registry, char *out, size_t len, ac_error_t **err)
{
	if (!registry || !*registry || !header_safe(registry) || strlen(registry) > 250)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid registry '%s'",
				    registry ? registry : "");
	char path[256];
	norm_host(registry, out, len, path, sizeof(path));
	if (!*out || path[0] || strpbrk(out, " @?#\\"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid registry '%s' (host or host:port)", registry);
	return 0;
}

static int edit_auth_file(const char *home, const char *host, const char *auth_b64, bool *removed,
			  ac_error_t **err)
{
	_cleanup_close_ int lock = -1;
	_cleanup_close_ int storefd = ac_image_open_locked(home, &lock, err);
	if (storefd < 0)
		return -1;
	json_t *root = NULL;
	if (ac_image_json_read(storefd, "auth.json", true, &root, err) < 0)
		return -1;
	if (!root)
		root = json_object();
	json_t *auths = json_object_get(root, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(root, "auths", auths);
	}
	/* Every key naming this registry goes (the old spellings too). */
	const char *key;
	json_t *val;
	void *tmp;
	char h[256];
	json_object_foreach_safe(auths, tmp, key, val)
	{
		norm_host(key, h, sizeof(h), NULL, 0);
		if (!strcmp(h, host)) {
			json_object_del(auths, key);
			if (removed)
				*removed = true;
		}
	}
	if (auth_b64)
		json_object_set_new(auths, host, json_pack("{s:s}", "auth", auth_b64));
	int rc = ac_image_json_write(storefd, "auth.json", root, err);
	json_decref(root);
	return rc;
}

int ac_image_login(const ac_image_pull_opts_t *o, const char *registry, const char *user,
		   const char *password, ac_error_t **err)
{
	char host[256];
	if (login_host(registry, host, sizeof(host), err) < 0)
		return -1;
	if (!user || !*user || strchr(user, ':') || !header_safe(user))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "login: a user name is needed (without ':')");
	if (!password || !*password || !header_safe(password))
		return ac_error_set(err, AC_ERR_INVALID, 0, "login: a password is needed");
	if (ac_curl_load(err) < 0)
		return -1;
	ac_reg_t r;
	ac_image_pull_opts_t none = *o;
	none.auth_file = "/nonexistent"; /* only the credentials given */
	if (ac_reg_init(&r, &none, host, "", host, err) < 0)
		return -1;
	/* only the credentials given: drop any ac_reg_init found (none from /nonexistent) */
	free_secret(r.user);
	free_secret(r.pass);
	r.user = strdup(user);
	r.pass = strdup(password);
	int rc = -1;
	if (!r.user || !r.pass) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	ac_reg_resp_t resp;
	if (ac_reg_get(&r, "", NULL, AC_REG_ERRBODY_MAX, &resp, err) < 0)
		goto out;
	long st = resp.status;
	ac_reg_resp_free(&resp);
	if (st == 401 || st == 403) {
		ac_error_set(err, AC_ERR_PERMISSION, 0,
			     "login to %s failed: wrong user name or password (%ld)", host, st);
		goto out;
	}
	if (st != 200) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "login to %s failed: GET /v2/ answered %ld (not a registry?)", host,
			     st);
		goto out;
	}
	char *up = NULL;
	if (asprintf(&up, "%s:%s", user, password) < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	char *b64 = ac_base64_encode(up, strlen(up));
	free_secret(up);
	if (!b64) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	rc = edit_auth_file(o->home, host, b64, NULL, err);
	free_secret(b64);
out:
	ac_reg_free(&r);
	return rc;
}

int ac_image_logout(const char *home, const char *registry, ac_error_t **err)
{
	char host[256];
	if (login_host(registry, host, sizeof(host), err) < 0)
		return -1;
	bool removed = false;
	if (edit_auth_file(home, host, NULL, &removed, err) < 0)
		return -1;
	return removed ? 1 : 0;
}
