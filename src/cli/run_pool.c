/* agentcell run --pool: POST /run to a running `agentcell serve` (libcurl through dlopen,
 * src/base/dl.h), with "full": true so that the answer carries the exit code, stdout and
 * stderr whatever the exit; they are printed as the command's own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "base/curl.h"
#include "base/io.h"
#include "base/util.h"
#include "cli/cli.h"
#include "cli/run_pool.h"

/* Two streams of 16 MiB each (the server's cap), escaped as JSON, twice (output too). */
#define ANSWER_MAX (256u << 20)

typedef struct answer {
	char *buf;
	size_t len, cap;
	bool over;
} answer_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	answer_t *a = arg;
	size_t len = size * n;
	if (a->len + len + 1 > ANSWER_MAX) {
		a->over = true;
		return 0;
	}
	if (a->len + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 65536;
		while (cap < a->len + len + 1)
			cap *= 2;
		char *nb = realloc(a->buf, cap);
		if (!nb)
			return 0;
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, len);
	a->len += len;
	a->buf[a->len] = '\0';
	return len;
}

/* The API key: --token, $AGENTCELL_TOKEN, the variables serve reads, agentcell.toml's
 * [api] api_key or the variable its api_key_env names (as serve finds them). malloc'd or
 * NULL. */
static char *find_token(const cli_run_pool_t *r)
{
	const char *cands[] = {r->token, getenv("AGENTCELL_TOKEN"), getenv("AGENTCELL_API_KEY"),
			       getenv("AGENTKERNEL_API_KEY")};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cands); i++)
		if (cands[i] && *cands[i])
			return strdup(cands[i]);
	char home[4096];
	const char *h = getenv("AGENTCELL_HOME");
	if (h && *h)
		snprintf(home, sizeof(home), "%s", h);
	else
		snprintf(home, sizeof(home), "%s/.local/share/agentcell",
			 getenv("HOME") ? getenv("HOME") : "");
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	if (ac_config_load(r->config_path, home, &cfg, &e) < 0) {
		ac_error_free(e);
		return NULL;
	}
	ac_config_print_warnings(cfg);
	json_t *api = json_object_get(cfg, "api");
	const char *key = json_string_value(json_object_get(api, "api_key"));
	const char *env = json_string_value(json_object_get(api, "api_key_env"));
	if ((!key || !*key) && env)
		key = getenv(env);
	char *out = key && *key ? strdup(key) : NULL;
	json_decref(cfg);
	return out;
}

static void put_stream(FILE *f, const json_t *s)
{
	if (json_is_string(s))
		fwrite(json_string_value(s), 1, json_string_length(s), f);
	fflush(f);
}

/* The answer of POST /run (full): the command's output and status. */
static int show(const answer_t *a, long status)
{
	json_error_t je;
	json_t *j = a->buf ? json_loadb(a->buf, a->len, 0, &je) : NULL;
	if (!json_is_object(j)) {
		fprintf(stderr, "%s: the server answered HTTP %ld without a JSON body\n", cli_prog,
			status);
		json_decref(j);
		return 1;
	}
	json_t *data = json_object_get(j, "data");
	if (!json_is_true(json_object_get(j, "success")) || !json_is_object(data)) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "%s: %s\n", cli_prog, msg ? msg : "the server refused the run");
		json_decref(j);
		return status == 400 ? 2 : 1;
	}
	put_stream(stdout, json_object_get(data, "stdout"));
	put_stream(stderr, json_object_get(data, "stderr"));
	json_int_t code = json_integer_value(json_object_get(data, "exit_code"));
	const char *err = json_string_value(json_object_get(data, "error"));
	if (err)
		fprintf(stderr, "%s: %s\n", cli_prog, err);
	if (json_is_true(json_object_get(data, "timed_out")))
		fprintf(stderr, "%s: command timed out\n", cli_prog);
	json_decref(j);
	return code >= 0 && code <= 255 ? (int)code : 1;
}

/* The body of POST /run: the command, its env and timeout, "full", and the sandbox options
 * given on the command line (any of them makes the server skip the pool). */
static char *request_body(const cli_run_pool_t *r)
{
	const ac_sandbox_opts_t *o = r->o;
	json_t *b = json_object(), *argv = json_array(), *env = json_array();
	for (char **a = r->argv; a && *a; a++)
		json_array_append_new(argv, json_string(*a));
	for (char **v = r->env; v && *v; v++)
		json_array_append_new(env, json_string(*v));
	json_object_set_new(b, "command", argv);
	json_object_set_new(b, "full", json_true());
	if (json_array_size(env))
		json_object_set(b, "env", env);
	json_decref(env);
	if (r->timeout > 0)
		json_object_set_new(b, "timeout", json_real(r->timeout));
	if (o && o->image)
		json_object_set_new(b, "image", json_string(o->image));
	if (o && o->profile)
		json_object_set_new(b, "profile", json_string(o->profile));
	if (o && o->backend)
		json_object_set_new(b, "backend", json_string(o->backend));
	if (o && o->memory_set)
		json_object_set_new(b, "memory_mb", json_integer((json_int_t)o->memory_mb));
	if (o && o->cpus_set)
		json_object_set_new(b, "cpus", json_real(o->cpus));
	if (o && o->pids_set)
		json_object_set_new(b, "pids", json_integer((json_int_t)o->pids));
	if (o && o->disk_set && o->disk_mb)
		json_object_set_new(b, "disk_mb", json_integer((json_int_t)o->disk_mb));
	if (o && o->read_only_set)
		json_object_set_new(b, "read_only", json_boolean(o->read_only));
	if (o && o->network_set)
		json_object_set_new(b, "network", json_boolean(o->network));
	char *s = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	return s;
}

int cli_run_pool(cli_run_pool_t *r)
{
	ac_error_t *e = NULL;
	char *body = request_body(r);
	if (!body) {
		fprintf(stderr, "%s: out of memory\n", cli_prog);
		return 1;
	}
	if (ac_curl_load(&e) < 0) {
		free(body);
		fprintf(stderr, "%s: run --pool: %s\n", cli_prog, e ? e->msg : "no libcurl");
		ac_error_free(e);
		return 1;
	}
	const char *env_server = getenv("AGENTCELL_SERVER");
	const char *base = r->server && *r->server     ? r->server
			   : env_server && *env_server ? env_server
						       : "http://127.0.0.1:18888";
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	char *url = NULL, *auth = NULL;
	_cleanup_free_ char *token = find_token(r);
	AC_ANALYZER_OWNED(token);
	if (asprintf(&url, "%.*s/run", (int)bl, base) < 0)
		url = NULL;
	if (url && token && asprintf(&auth, "Authorization: Bearer %s", token) < 0)
		auth = NULL;
	if (!url || (token && !auth)) {
		free(url);
		free(body);
		fprintf(stderr, "%s: out of memory\n", cli_prog);
		return 1;
	}
	CURL *c = ac_curl.curl_easy_init();
	struct curl_slist *hdrs = ac_curl.curl_slist_append(NULL, "Content-Type: application/json");
	if (auth)
		hdrs = ac_curl.curl_slist_append(hdrs, auth);
	answer_t a = {0};
	int rc = 1;
	if (!c || !hdrs) {
		fprintf(stderr, "%s: cannot set up the HTTP client\n", cli_prog);
		goto out;
	}
	ac_curl.curl_easy_setopt(c, CURLOPT_URL, url);
	ac_curl.curl_easy_setopt(c, CURLOPT_POST, 1L);
	ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	ac_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	ac_curl.curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	ac_curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	ac_curl.curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
	ac_curl.curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	ac_curl.curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	/* http(s) only: a URL never makes curl read files or speak other protocols. */
	ac_curl.curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = ac_curl.curl_easy_perform(c);
	long status = 0;
	ac_curl.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (a.over) {
		fprintf(stderr, "%s: the server's answer is larger than %u MiB\n", cli_prog,
			ANSWER_MAX >> 20);
	} else if (cc != CURLE_OK) {
		fprintf(stderr, "%s: cannot reach the server at %.*s: %s\n", cli_prog, (int)bl,
			base, ac_curl.curl_easy_strerror(cc));
	} else {
		rc = show(&a, status);
	}
out:
	if (c)
		ac_curl.curl_easy_cleanup(c);
	ac_curl.curl_slist_free_all(hdrs);
	free(a.buf);
	free(url);
	free(auth);
	free(body);
	return rc;
}
