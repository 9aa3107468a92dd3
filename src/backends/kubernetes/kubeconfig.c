/* Kubernetes connection settings, resolved as kubectl / client-go do (see k8s.h): the
 * in-cluster service account, or the kubeconfig files merged by kubectl's rules, with the
 * user's token, token file, client certificate, basic auth or exec credential plugin.
 *
 * Split: yaml.c reads the files (YAML to JSON), exec_plugin.c runs exec credential
 * plugins, errors.c maps API error answers; internal.h holds what they share. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "backends/kubernetes/internal.h"

#define KUBECONFIG_MAX (16u * 1024 * 1024)
#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- typed access ---- */

/* A string field: NULL when absent or null; -1 (error) when of another type. */
int ac_k8s_get_str(const json_t *o, const char *key, const char *where, const char **out,
		   ac_error_t **err)
{
	*out = NULL;
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not a string", where, key);
	*out = json_string_value(v);
	if (!**out)
		*out = NULL; /* Go's zero value: empty means unset */
	return 0;
}

int ac_k8s_get_bool(const json_t *o, const char *key, const char *where, bool *out,
		    ac_error_t **err)
{
	*out = false;
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
					  "on",	  "On",	  "ON",	  "y",	 "Y"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
					 "off",	  "Off",   "OFF",   "n",  "N"};
	const char *s = json_string_value(v);
	for (size_t i = 0; s && i < AC_ARRAY_SIZE(yes); i++)
		if (!strcmp(s, yes[i]))
			return *out = true, 0;
	for (size_t i = 0; s && i < AC_ARRAY_SIZE(no); i++)
		if (!strcmp(s, no[i]))
			return 0;
	return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not true or false", where, key);
}

char *ac_k8s_path_join(const char *dir, const char *p)
{
	char *r = NULL;
	if (p[0] == '/' || !dir || !*dir)
		return strdup(p);
	if (asprintf(&r, "%s/%s", dir, p) < 0)
		return NULL;
	return r;
}

/* base64 *-data (Go's decoder skips CR and LF) to PEM text. */
int ac_k8s_decode_pem(const char *b64, const char *where, const char *key, char **out,
		      ac_error_t **err)
{
	size_t n = strlen(b64);
	_cleanup_free_ char *clean = malloc(n + 1);
	AC_ANALYZER_OWNED(clean);
	if (!clean)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (b64[i] != '\n' && b64[i] != '\r' && b64[i] != ' ')
			clean[k++] = b64[i];
	clean[k] = 0;
	unsigned char *bin = NULL;
	size_t blen = 0;
	if (ac_base64_decode(clean, k, &bin, &blen) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not valid base64", where,
				    key);
	if (blen == 0 || memchr(bin, 0, blen)) {
		free(bin);
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is not PEM text", where, key);
	}
	*out = (char *)bin;
	return 0;
}

/* The last non-empty line of a plugin's stderr, for the error message. */
void ac_k8s_last_line(const char *s, size_t n, char *out, size_t cap)
{
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	size_t start = n;
	while (start && s[start - 1] != '\n')
		start--;
	size_t l = n - start;
	if (l >= cap)
		l = cap - 1;
	memcpy(out, s + start, l);
	out[l] = 0;
}

/* ---- the merged configuration ---- */

/* name -> {"v": entry body, "file": path, "dir": directory} for clusters, users and
 * contexts; the first file that defines a name wins (kubectl's rule). */
typedef struct merged {
	json_t *clusters, *users, *contexts;
	char *current; /* the first file's current-context that is set */
	char *files;   /* for messages: "FILE" or "$KUBECONFIG (A:B)" */
} merged_t;

static void merged_free(merged_t *m)
{
	json_decref(m->clusters);
	json_decref(m->users);
	json_decref(m->contexts);
	free(m->current);
	free(m->files);
}

static int merged_init(merged_t *m)
{
	memset(m, 0, sizeof(*m));
	m->clusters = json_object();
	m->users = json_object();
	m->contexts = json_object();
	return m->clusters && m->users && m->contexts ? 0 : -1;
}

static int add_entries(json_t *dst, const json_t *cfg, const char *list, const char *field,
		       const char *file, const char *dir, ac_error_t **err)
{
	json_t *arr = json_object_get(cfg, list);
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return ac_error_set(err, AC_ERR_INVALID, 0, "kubeconfig %s: '%s' is not a list",
				    file, list);
	_cleanup_json_ json_t *mine = json_object(); /* within one file the last one wins */
	if (!mine)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		json_t *name = json_object_get(e, "name");
		if (!json_is_object(e) || !json_is_string(name) || !*json_string_value(name))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "kubeconfig %s: %s[%zu] has no name", file, list, i);
		json_t *body = json_object_get(e, field);
		if (body && !json_is_null(body) && !json_is_object(body))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "kubeconfig %s: %s '%s': '%s' is not a mapping", file,
					    list, json_string_value(name), field);
		json_t *rec = json_pack("{s:s,s:s}", "file", file, "dir", dir ? dir : "");
		json_t *vb = json_is_object(body) ? json_incref(body) : json_object();
		if (!rec || !vb || json_object_set_new(rec, "v", vb) < 0) {
			json_decref(rec);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		if (json_object_set_new(mine, json_string_value(name), rec) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	const char *k;
	json_t *v;
	json_object_foreach(mine, k, v)
	{
		if (!json_object_get(dst, k) && json_object_set(dst, k, v) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	return 0;
}

static int merge_config(merged_t *m, const json_t *cfg, const char *file, ac_error_t **err)
{
	/* Relative paths inside resolve against the file's absolute directory (a daemon
	 * may change its working directory later). */
	_cleanup_free_ char *dircopy = NULL;
	char cwd[4096];
	if (file[0] != '/' && getcwd(cwd, sizeof(cwd))) {
		if (asprintf(&dircopy, "%s/%s", cwd, file) < 0)
			dircopy = NULL;
	} else
		dircopy = strdup(file);
	if (!dircopy)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	AC_ANALYZER_OWNED(dircopy);
	char *slash = strrchr(dircopy, '/');
	const char *dir = slash ? (slash == dircopy ? "/" : (*slash = 0, dircopy)) : ".";
	if (add_entries(m->clusters, cfg, "clusters", "cluster", file, dir, err) < 0 ||
	    add_entries(m->users, cfg, "users", "user", file, dir, err) < 0 ||
	    add_entries(m->contexts, cfg, "contexts", "context", file, dir, err) < 0)
		return -1;
	const char *cur;
	char where[600];
	snprintf(where, sizeof(where), "kubeconfig %s", file);
	if (ac_k8s_get_str(cfg, "current-context", where, &cur, err) < 0)
		return -1;
	if (cur && !m->current && !(m->current = strdup(cur)))
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return 0;
}

/* ---- resolution ---- */

static int set_str(char **dst, const char *src, ac_error_t **err)
{
	if (!src)
		return 0;
	free(*dst);
	*dst = strdup(src);
	return *dst ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

static int set_path(char **dst, const char *dir, const char *p, ac_error_t **err)
{
	if (!p)
		return 0;
	free(*dst);
	*dst = ac_k8s_path_join(dir, p);
	return *dst ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

static int resolve(const merged_t *m, const ac_k8s_settings_t *s, ac_k8s_conn_t *out,
		   ac_error_t **err)
{
	const char *ctx_name = s->context && *s->context ? s->context : m->current;
	if (!ctx_name)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "kubeconfig %s: no current-context is set and no context was "
				    "given ([kubernetes] context in agentcell.toml)",
				    m->files);
	json_t *ctx = json_object_get(m->contexts, ctx_name);
	if (!ctx)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				    "kubeconfig %s: context '%s' does not exist", m->files,
				    ctx_name);
	json_t *cv = json_object_get(ctx, "v");
	char where[700];
	snprintf(where, sizeof(where), "kubeconfig %s: context '%s'",
		 json_string_value(json_object_get(ctx, "file")), ctx_name);
	const char *cl_name, *user_name, *ns;
	if (ac_k8s_get_str(cv, "cluster", where, &cl_name, err) < 0 ||
	    ac_k8s_get_str(cv, "user", where, &user_name, err) < 0 ||
	    ac_k8s_get_str(cv, "namespace", where, &ns, err) < 0)
		return -1;
	if (!cl_name)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: names no cluster", where);
	json_t *cl = json_object_get(m->clusters, cl_name);
	if (!cl)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				    "%s: cluster '%s' is not defined in the kubeconfig", where,
				    cl_name);
	json_t *user = NULL;
	if (user_name && !(user = json_object_get(m->users, user_name)))
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				    "%s: user '%s' is not defined in the kubeconfig", where,
				    user_name);
	if (set_str(&out->context, ctx_name, err) < 0 || set_str(&out->cluster, cl_name, err) < 0 ||
	    set_str(&out->user, user_name, err) < 0 ||
	    set_str(&out->namespace,
		    s->namespace && *s->namespace ? s->namespace
		    : ns			  ? ns
						  : "default",
		    err) < 0)
		return -1;

	/* The cluster. */
	ac_remote_conf_t *r = &out->remote;
	json_t *c = json_object_get(cl, "v");
	const char *cdir = json_string_value(json_object_get(cl, "dir"));
	snprintf(where, sizeof(where), "kubeconfig %s: cluster '%s'",
		 json_string_value(json_object_get(cl, "file")), cl_name);
	const char *server, *ca, *ca_data, *sni, *proxy;
	bool insecure;
	if (ac_k8s_get_str(c, "server", where, &server, err) < 0 ||
	    ac_k8s_get_str(c, "certificate-authority", where, &ca, err) < 0 ||
	    ac_k8s_get_str(c, "certificate-authority-data", where, &ca_data, err) < 0 ||
	    ac_k8s_get_str(c, "tls-server-name", where, &sni, err) < 0 ||
	    ac_k8s_get_str(c, "proxy-url", where, &proxy, err) < 0 ||
	    ac_k8s_get_bool(c, "insecure-skip-tls-verify", where, &insecure, err) < 0)
		return -1;
	if (proxy)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "%s: 'proxy-url' is not supported (use the https_proxy "
				    "environment variable)",
				    where);
	if (!server)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: no 'server'", where);
	if (insecure && (ca || ca_data))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: a certificate authority and insecure-skip-tls-verify "
				    "cannot both be set",
				    where);
	if (strstr(server, "://")) {
		if (set_str(&r->server, server, err) < 0)
			return -1;
	} else if (asprintf(&r->server, "https://%s", server) < 0) { /* client-go's default */
		r->server = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	if (strncmp(r->server, "https://", 8) && strncmp(r->server, "http://", 7))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: server '%s' is not an http:// or https:// URL", where,
				    server);
	if (ca_data) { /* the data wins over the file, as in client-go */
		if (ac_k8s_decode_pem(ca_data, where, "certificate-authority-data", &r->ca_data,
				      err) < 0)
			return -1;
	} else if (set_path(&r->ca_file, cdir, ca, err) < 0)
		return -1;
	r->insecure = insecure;
	if (set_str(&r->tls_server_name, sni, err) < 0)
		return -1;
	free(r->name);
	if (asprintf(&r->name, "cluster '%s'", cl_name) < 0) {
		r->name = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	if (!user)
		return 0;

	/* The user. */
	json_t *u = json_object_get(user, "v");
	const char *udir = json_string_value(json_object_get(user, "dir"));
	snprintf(where, sizeof(where), "kubeconfig %s: user '%s'",
		 json_string_value(json_object_get(user, "file")), user_name);
	static const char *const refused[] = {"auth-provider", "as", "as-uid", "as-groups",
					      "as-user-extra"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(refused); i++) {
		json_t *v = json_object_get(u, refused[i]);
		if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)) &&
		    !(json_is_array(v) && !json_array_size(v)) &&
		    !(json_is_object(v) && !json_object_size(v)))
			return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
					    "%s: '%s' is not supported%s", where, refused[i],
					    i == 0 ? " (use an exec credential plugin)"
						   : " (impersonation)");
	}
	const char *tok, *tokf, *cert, *cert_d, *key, *key_d, *un, *pw;
	if (ac_k8s_get_str(u, "token", where, &tok, err) < 0 ||
	    ac_k8s_get_str(u, "tokenFile", where, &tokf, err) < 0 ||
	    ac_k8s_get_str(u, "client-certificate", where, &cert, err) < 0 ||
	    ac_k8s_get_str(u, "client-certificate-data", where, &cert_d, err) < 0 ||
	    ac_k8s_get_str(u, "client-key", where, &key, err) < 0 ||
	    ac_k8s_get_str(u, "client-key-data", where, &key_d, err) < 0 ||
	    ac_k8s_get_str(u, "username", where, &un, err) < 0 ||
	    ac_k8s_get_str(u, "password", where, &pw, err) < 0)
		return -1;
	if ((tok || tokf) && (un || pw))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: username/password and a bearer token cannot both be set",
				    where);
	if (!!(cert || cert_d) != !!(key || key_d))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: '%s' is set without '%s'", where,
				    cert || cert_d ? "client-certificate" : "client-key",
				    cert || cert_d ? "client-key" : "client-certificate");
	if (set_str(&r->token, tok, err) < 0 || set_path(&r->token_file, udir, tokf, err) < 0 ||
	    set_str(&r->username, un, err) < 0 || set_str(&r->password, pw, err) < 0)
		return -1;
	if (cert_d) {
		if (ac_k8s_decode_pem(cert_d, where, "client-certificate-data", &r->cert_data,
				      err) < 0)
			return -1;
	} else if (set_path(&r->cert_file, udir, cert, err) < 0)
		return -1;
	if (key_d) {
		if (ac_k8s_decode_pem(key_d, where, "client-key-data", &r->key_data, err) < 0)
			return -1;
	} else if (set_path(&r->key_file, udir, key, err) < 0)
		return -1;
	json_t *exec = json_object_get(u, "exec");
	if (exec && !json_is_null(exec)) {
		if (!json_is_object(exec))
			return ac_error_set(err, AC_ERR_INVALID, 0, "%s: 'exec' is not a mapping",
					    where);
		ac_k8s_cred_t cr = {0};
		if (ac_k8s_exec_credential(exec, c, udir, where, s, &cr, err) < 0)
			return -1;
		/* The plugin's credential replaces the file's (client-go: it is asked last). */
		if (cr.token) {
			free(r->token);
			r->token = steal_ptr(cr.token);
			free(r->token_file);
			r->token_file = NULL;
		}
		if (cr.cert) {
			free(r->cert_data);
			free(r->key_data);
			free(r->cert_file);
			free(r->key_file);
			r->cert_file = r->key_file = NULL;
			r->cert_data = steal_ptr(cr.cert);
			r->key_data = steal_ptr(cr.key);
		}
		out->expires_ms = cr.expires_ms;
		ac_k8s_cred_free(&cr);
	}
	return 0;
}

void ac_k8s_conn_free(ac_k8s_conn_t *c)
{
	if (!c)
		return;
	ac_remote_conf_free(&c->remote);
	free(c->namespace);
	free(c->context);
	free(c->cluster);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

int ac_k8s_conn_from_config(const json_t *cfg, const char *dir, const ac_k8s_settings_t *s,
			    ac_k8s_conn_t *out, ac_error_t **err)
{
	memset(out, 0, sizeof(*out));
	merged_t m;
	if (merged_init(&m) < 0) {
		merged_free(&m);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	_cleanup_free_ char *file = NULL;
	if (asprintf(&file, "%s/config", dir && *dir ? dir : ".") < 0) {
		file = NULL;
		merged_free(&m);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	int rc = -1;
	if (!(m.files = strdup(file)))
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	else if (merge_config(&m, cfg, file, err) == 0)
		rc = resolve(&m, s, out, err);
	merged_free(&m);
	if (rc < 0)
		ac_k8s_conn_free(out);
	return rc;
}

/* ---- in-cluster ---- */

/* 1: resolved in-cluster; 0: not in a cluster (or its files are unusable: *why says) */
static int in_cluster(const ac_k8s_settings_t *s, ac_k8s_conn_t *out, char *why, size_t whycap,
		      ac_error_t **err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!host || !*host || !port || !*port)
		return 0;
	const char *dir = getenv(AC_K8S_SA_DIR_ENV);
	if (!dir || !*dir)
		dir = SA_DIR_DEFAULT;
	_cleanup_free_ char *tokf = NULL, *caf = NULL, *nsf = NULL, *tok = NULL, *ns = NULL;
	if (asprintf(&tokf, "%s/token", dir) < 0 || asprintf(&caf, "%s/ca.crt", dir) < 0 ||
	    asprintf(&nsf, "%s/namespace", dir) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_read_file_at(AT_FDCWD, tokf, 64 * 1024, &tok, &len, &e) < 0) {
		snprintf(why, whycap, "in-cluster: %s", e->msg);
		ac_error_free(e);
		return 0;
	}
	explicit_bzero(tok, len);
	ac_k8s_conn_t *c = out;
	memset(c, 0, sizeof(*c));
	c->in_cluster = true;
	bool v6 = strchr(host, ':') != NULL;
	if (asprintf(&c->remote.server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
		     port) < 0) {
		c->remote.server = NULL;
		goto oom;
	}
	if (!(c->remote.name = strdup("in-cluster API server")) ||
	    !(c->remote.token_file = strdup(tokf)))
		goto oom;
	if (access(caf, R_OK) == 0 && !(c->remote.ca_file = strdup(caf)))
		goto oom;
	const char *pod_ns = getenv("POD_NAMESPACE");
	if (s->namespace && *s->namespace)
		c->namespace = strdup(s->namespace);
	else if (pod_ns && *pod_ns)
		c->namespace = strdup(pod_ns);
	else if (ac_read_file_at(AT_FDCWD, nsf, 4096, &ns, &len, &e) == 0) {
		while (len && isspace((unsigned char)ns[len - 1]))
			ns[--len] = 0;
		c->namespace = strdup(*ns ? ns : "default");
	} else {
		ac_error_free(e);
		c->namespace = strdup("default");
	}
	if (!c->namespace)
		goto oom;
	return 1;
oom:
	ac_k8s_conn_free(c);
	return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

/* ---- kubeconfig files ---- */

static int load_file(merged_t *m, const char *path, bool must_exist, bool *found, ac_error_t **err)
{
	*found = false;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_read_file_at(AT_FDCWD, path, KUBECONFIG_MAX, &data, &len, &e) < 0) {
		if (!must_exist && e->errnum == ENOENT) {
			ac_error_free(e);
			return 0;
		}
		ac_error_set(err, e->errnum == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_INVALID, 0,
			     "kubeconfig %s: %s", path, e->msg);
		ac_error_free(e);
		return -1;
	}
	char origin[600];
	snprintf(origin, sizeof(origin), "kubeconfig %s", path);
	_cleanup_json_ json_t *cfg = NULL;
	if (ac_k8s_yaml_parse(data, len, origin, &cfg, err) < 0)
		return -1;
	*found = true;
	return merge_config(m, cfg, path, err);
}

int ac_k8s_conn_load(const ac_k8s_settings_t *s, ac_k8s_conn_t *out, ac_error_t **err)
{
	memset(out, 0, sizeof(*out));
	const char *kc_env = getenv("KUBECONFIG");
	bool explicit_cfg = (s->kubeconfig && *s->kubeconfig) || (s->context && *s->context);
	char why[1100] = "";
	if (!explicit_cfg) {
		int ic = in_cluster(s, out, why, sizeof(why), err);
		if (ic != 0)
			return ic < 0 ? -1 : 0;
	}
	merged_t m;
	if (merged_init(&m) < 0) {
		merged_free(&m);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	int rc = -1;
	bool found = false;
	if (s->kubeconfig && *s->kubeconfig) {
		_cleanup_free_ char *p = NULL;
		const char *home = getenv("HOME");
		if (!strncmp(s->kubeconfig, "~/", 2) && home && *home) {
			if (asprintf(&p, "%s/%s", home, s->kubeconfig + 2) < 0)
				p = NULL;
		} else
			p = strdup(s->kubeconfig);
		AC_ANALYZER_OWNED(p);
		if (!p || !(m.files = strdup(p))) {
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			goto out;
		}
		if (load_file(&m, p, true, &found, err) < 0)
			goto out;
	} else if (kc_env && *kc_env) {
		if (asprintf(&m.files, "$KUBECONFIG (%s)", kc_env) < 0) {
			m.files = NULL;
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			goto out;
		}
		_cleanup_free_ char *list = strdup(kc_env);
		AC_ANALYZER_OWNED(list);
		if (!list) {
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			goto out;
		}
		bool any = false;
		char *save = NULL;
		const char *seen[64];
		size_t nseen = 0;
		for (char *f = strtok_r(list, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
			/* kubectl reads a file listed twice once (the first wins anyway). */
			bool dup = false;
			for (size_t k = 0; k < nseen && !dup; k++)
				dup = !strcmp(seen[k], f);
			if (dup)
				continue;
			if (nseen < AC_ARRAY_SIZE(seen))
				seen[nseen++] = f;
			if (load_file(&m, f, false, &found, err) < 0)
				goto out;
			any |= found;
		}
		if (!any) {
			ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				     "no kubeconfig: none of the files in $KUBECONFIG (%s) exists",
				     kc_env);
			goto out;
		}
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				     "no kubeconfig: $HOME is not set and $KUBECONFIG is empty%s%s",
				     *why ? "; " : "", why);
			goto out;
		}
		if (asprintf(&m.files, "%s/.kube/config", home) < 0) {
			m.files = NULL;
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			goto out;
		}
		if (load_file(&m, m.files, false, &found, err) < 0)
			goto out;
		if (!found) {
			ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				     "no kubeconfig: %s does not exist (set KUBECONFIG or "
				     "[kubernetes] kubeconfig)%s%s",
				     m.files, *why ? "; " : "", why);
			goto out;
		}
	}
	rc = resolve(&m, s, out, err);
out:
	merged_free(&m);
	if (rc < 0)
		ac_k8s_conn_free(out);
	return rc;
}

int ac_k8s_conf_load(const ac_k8s_settings_t *s, ac_remote_conf_t *out, char **namespace,
		     ac_error_t **err)
{
	ac_k8s_conn_t c;
	memset(out, 0, sizeof(*out));
	*namespace = NULL;
	if (ac_k8s_conn_load(s, &c, err) < 0)
		return -1;
	*out = c.remote;
	*namespace = c.namespace;
	free(c.context);
	free(c.cluster);
	free(c.user);
	return 0;
}
