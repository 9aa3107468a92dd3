/* The Nomad backend's pure half and its connection (src/backends/nomad/conn.c, job.c):
 * settings resolution (the [nomad] table over NOMAD_* over the defaults, every error, the
 * token never recorded), the token each op reads (NOMAD_TOKEN, token_file, the
 * configuration's token) and the header it becomes, requests against a small HTTP server
 * (namespace and region added to the query, ACL token sent, one-line errors for Nomad's
 * plain-text and JSON answers, connection refused naming the address once), the job of a
 * sandbox and of a run for each driver with every hardening field, and agentcell.toml's
 * [nomad] validation (src/core/config.c).
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "base/io.h"
#include "base/util.h"
#include "backends/nomad/internal.h"
#include "backends/owner.h"
#include "testsrv.h"

static char tmp[PATH_MAX];

static char *path_of(const char *name)
{
	return ac_test_path(tmp, name);
}

static void write_file(const char *name, const char *text)
{
	char *p = path_of(name);
	char dir[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s", p);
	*strrchr(dir, '/') = 0;
	ac_error_t *e = NULL;
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, dir, 0755, &e), 0);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ac_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s (%s)", jerr.text, text);
	return j;
}

/* The value at a path of object keys and array indexes ("TaskGroups.0.Name"). */
static json_t *at(json_t *j, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t && j; t = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, strtoul(t, NULL, 10));
		else
			j = json_object_get(j, t);
	}
	return j;
}

static const char *at_str(json_t *j, const char *path)
{
	const char *s = json_string_value(at(j, path));
	if (!s)
		fail_msg("no string at %s", path);
	return s;
}

static long long at_int(json_t *j, const char *path)
{
	json_t *v = at(j, path);
	if (!json_is_integer(v))
		fail_msg("no integer at %s", path);
	return (long long)json_integer_value(v);
}

static void assert_at_bool(json_t *j, const char *path, bool want)
{
	json_t *v = at(j, path);
	if (!json_is_boolean(v) || json_is_true(v) != want)
		fail_msg("%s is not %s", path, want ? "true" : "false");
}

/* j at path, compact with sorted keys, is want. */
static void assert_at_json(json_t *j, const char *path, const char *want)
{
	json_t *v = at(j, path);
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
	if (!text || strcmp(text, want)) {
		char got[600];
		snprintf(got, sizeof(got), "%s", text ? text : "(absent)");
		free(text);
		fail_msg("%s is %s, not %s", path, got, want);
	}
	free(text);
}

static const char *const nomad_env[] = {
    "NOMAD_ADDR",	 "NOMAD_NAMESPACE",  "NOMAD_REGION",	      "NOMAD_CACERT",
    "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_TLS_SERVER_NAME", "NOMAD_SKIP_VERIFY",
    "NOMAD_TOKEN",	 "NOMAD_CAPATH",     "NOMAD_HTTP_AUTH",
};

static void clear_env(void)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(nomad_env); i++)
		unsetenv(nomad_env[i]);
	setenv("HOME", path_of("home"), 1);
}

static int setup(void **state)
{
	(void)state;
	setenv("no_proxy", "*", 1);
	setenv("NO_PROXY", "*", 1);
	snprintf(tmp, sizeof(tmp), "/tmp/ac-nomad.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	write_file("conf/agentcell.toml", "[nomad]\ntoken = \"conf-token-1\"\n");
	write_file("conf/ca.pem", "CA\n");
	write_file("conf/client.pem", "CERT\n");
	write_file("conf/client.key", "KEY\n");
	write_file("home/certs/ca.pem", "CA\n");
	write_file("cwd/env-ca.pem", "CA\n");
	write_file("tok/token", "  file-token-2\n\n");
	write_file("tok/empty", " \n");
	write_file("tok/crlf", "bad\rtoken\n");
	write_file("notoken.toml", "[nomad]\naddress = \"http://x:1\"\n");
	write_file("broken.toml", "[nomad\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ac_error_t *e = NULL;
	ac_rm_rf_at(AT_FDCWD, tmp, &e);
	ac_error_free(e);
	return 0;
}

/* ---- resolution ---- */

static json_t *resolved(const char *cfg_text, const char *config_path)
{
	json_t *cfg = parse(cfg_text);
	ac_error_t *e = NULL;
	if (ac_nm_resolve(cfg, config_path, &e) < 0)
		fail_msg("resolve %s: %s", cfg_text, e->msg);
	return cfg;
}

static void test_resolve_defaults(void **state)
{
	(void)state;
	clear_env();
	json_t *cfg = resolved("{}", NULL);
	assert_at_json(cfg, "",
		       "{\"address\":\"http://127.0.0.1:4646\",\"allow_raw_exec\":false,\"cores\":"
		       "false,\"cpu_mhz_per_core\":1000,\"datacenters\":[\"*\"],\"driver\":"
		       "\"docker\",\"image\":\"alpine:3.20\",\"skip_verify\":false}");
	/* Deterministic: the same input gives the same object. */
	json_t *again = resolved("{}", NULL);
	assert_true(json_equal(cfg, again));
	/* Resolving what create recorded changes nothing. */
	json_t *copy = json_deep_copy(cfg);
	ac_error_t *e = NULL;
	assert_int_equal(ac_nm_resolve(copy, NULL, &e), 0);
	assert_true(json_equal(cfg, copy));
	json_decref(copy);
	json_decref(again);
	json_decref(cfg);
}

static void test_resolve_env(void **state)
{
	(void)state;
	clear_env();
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(path_of("cwd")), 0);
	setenv("NOMAD_ADDR", "https://nomad.example.test:4646//", 1);
	setenv("NOMAD_NAMESPACE", "team-a", 1);
	setenv("NOMAD_REGION", "eu_west.1", 1);
	setenv("NOMAD_CACERT", "env-ca.pem", 1); /* relative: against the working directory */
	setenv("NOMAD_CLIENT_CERT", path_of("conf/client.pem"), 1);
	setenv("NOMAD_CLIENT_KEY", path_of("conf/client.key"), 1);
	setenv("NOMAD_TLS_SERVER_NAME", "server.global.nomad", 1);
	setenv("NOMAD_TOKEN", "never-recorded", 1);
	const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(yes); i++) {
		setenv("NOMAD_SKIP_VERIFY", yes[i], 1);
		json_t *cfg = resolved("{}", NULL);
		assert_at_bool(cfg, "skip_verify", true);
		json_decref(cfg);
		setenv("NOMAD_SKIP_VERIFY", no[i], 1);
		cfg = resolved("{}", NULL);
		assert_at_bool(cfg, "skip_verify", false);
		json_decref(cfg);
	}
	setenv("NOMAD_SKIP_VERIFY", "", 1); /* empty: unset, as Go's api reads it */
	json_t *cfg = resolved("{}", NULL);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(at_str(cfg, "address"), "https://nomad.example.test:4646");
	assert_string_equal(at_str(cfg, "namespace"), "team-a");
	assert_string_equal(at_str(cfg, "region"), "eu_west.1");
	assert_string_equal(at_str(cfg, "ca_cert"), path_of("cwd/env-ca.pem"));
	assert_string_equal(at_str(cfg, "client_cert"), path_of("conf/client.pem"));
	assert_string_equal(at_str(cfg, "client_key"), path_of("conf/client.key"));
	assert_string_equal(at_str(cfg, "tls_server_name"), "server.global.nomad");
	assert_at_bool(cfg, "skip_verify", false);
	char *text = json_dumps(cfg, 0);
	assert_null(strstr(text, "never-recorded"));
	assert_null(json_object_get(cfg, "token"));
	assert_null(json_object_get(cfg, "token_config"));
	free(text);
	json_decref(cfg);
	clear_env();
}

static void test_resolve_precedence(void **state)
{
	(void)state;
	clear_env();
	setenv("NOMAD_ADDR", "http://env:4646", 1);
	setenv("NOMAD_NAMESPACE", "env-ns", 1);
	setenv("NOMAD_REGION", "env-region", 1);
	setenv("NOMAD_CACERT", path_of("cwd/env-ca.pem"), 1);
	setenv("NOMAD_CLIENT_CERT", path_of("cwd/env-ca.pem"), 1);
	setenv("NOMAD_CLIENT_KEY", path_of("cwd/env-ca.pem"), 1);
	setenv("NOMAD_TLS_SERVER_NAME", "env.name", 1);
	setenv("NOMAD_SKIP_VERIFY", "true", 1);
	/* The table wins over every variable; its relative files resolve against the file's
	 * directory, "~/" against $HOME. */
	json_t *cfg =
	    resolved("{\"address\": \"https://conf:4646/prefix\", \"namespace\": \"conf-ns\","
		     " \"region\": \"conf-region\", \"ca_cert\": \"ca.pem\","
		     " \"client_cert\": \"./client.pem\", \"client_key\": \"client.key\","
		     " \"tls_server_name\": \"conf.name\", \"skip_verify\": false,"
		     " \"driver\": \"podman\", \"datacenters\": [\"dc1\", \"dc-*\"],"
		     " \"node_pool\": \"gpu_pool\", \"image\": \"python:3.12-slim\","
		     " \"cores\": true, \"cpu_mhz_per_core\": 2400, \"user\": \"1000:1000\","
		     " \"token_file\": \"~/certs/ca.pem\"}",
		     path_of("conf/agentcell.toml"));
	assert_string_equal(at_str(cfg, "address"), "https://conf:4646/prefix");
	assert_string_equal(at_str(cfg, "namespace"), "conf-ns");
	assert_string_equal(at_str(cfg, "region"), "conf-region");
	assert_string_equal(at_str(cfg, "ca_cert"), path_of("conf/ca.pem"));
	assert_string_equal(at_str(cfg, "client_cert"), path_of("conf/./client.pem"));
	assert_string_equal(at_str(cfg, "client_key"), path_of("conf/client.key"));
	assert_string_equal(at_str(cfg, "tls_server_name"), "conf.name");
	assert_at_bool(cfg, "skip_verify", false);
	assert_string_equal(at_str(cfg, "driver"), "podman");
	assert_at_json(cfg, "datacenters", "[\"dc1\",\"dc-*\"]");
	assert_string_equal(at_str(cfg, "node_pool"), "gpu_pool");
	assert_string_equal(at_str(cfg, "image"), "python:3.12-slim");
	assert_at_bool(cfg, "cores", true);
	assert_int_equal(at_int(cfg, "cpu_mhz_per_core"), 2400);
	assert_string_equal(at_str(cfg, "user"), "1000:1000");
	assert_string_equal(at_str(cfg, "token_file"), path_of("home/certs/ca.pem"));
	json_decref(cfg);
	/* Where the table is silent, the variables. */
	cfg = resolved("{\"driver\": \"exec\"}", path_of("conf/agentcell.toml"));
	assert_string_equal(at_str(cfg, "address"), "http://env:4646");
	assert_string_equal(at_str(cfg, "namespace"), "env-ns");
	assert_string_equal(at_str(cfg, "region"), "env-region");
	assert_string_equal(at_str(cfg, "ca_cert"), path_of("cwd/env-ca.pem"));
	assert_string_equal(at_str(cfg, "tls_server_name"), "env.name");
	assert_at_bool(cfg, "skip_verify", true);
	json_decref(cfg);
	/* raw_exec only when allowed. */
	cfg = resolved("{\"driver\": \"raw_exec\", \"allow_raw_exec\": true}", NULL);
	assert_string_equal(at_str(cfg, "driver"), "raw_exec");
	json_decref(cfg);
	clear_env();
}

typedef struct bad_case {
	const char *cfg;
	const char *env, *val; /* one variable for the case, or NULL */
	const char *want;      /* in the message */
	ac_error_kind_t kind;
} bad_case_t;

static void test_resolve_errors(void **state)
{
	(void)state;
	static const bad_case_t cases[] = {
	    {"{\"address\": \"ftp://x:1\"}", NULL, NULL,
	     "[nomad] address: 'ftp://x:1' is not an http:// or https:// URL", AC_ERR_INVALID},
	    {"{}", "NOMAD_ADDR", "127.0.0.1:4646",
	     "NOMAD_ADDR: '127.0.0.1:4646' is not an http:// or https:// URL", AC_ERR_INVALID},
	    {"{\"address\": \"http://\"}", NULL, NULL, "[nomad] address", AC_ERR_INVALID},
	    {"{\"address\": \"http://u:p@host:4646\"}", NULL, NULL, "no credentials",
	     AC_ERR_INVALID},
	    {"{\"address\": \"http://host:4646/?x=1\"}", NULL, NULL, "[nomad] address",
	     AC_ERR_INVALID},
	    {"{\"address\": \"http://ho st\"}", NULL, NULL, "[nomad] address", AC_ERR_INVALID},
	    {"{\"address\": \"\"}", NULL, NULL, "[nomad] address must be a non-empty string",
	     AC_ERR_INVALID},
	    {"{\"address\": 4646}", NULL, NULL, "[nomad] address must be a non-empty string",
	     AC_ERR_INVALID},
	    {"{}", "NOMAD_NAMESPACE", "a b", "NOMAD_NAMESPACE: 'a b' is not a Nomad namespace",
	     AC_ERR_INVALID},
	    {"{\"namespace\": \"a_b\"}", NULL, NULL, "[nomad] namespace: 'a_b'", AC_ERR_INVALID},
	    {"{}", "NOMAD_REGION", "eu/west", "NOMAD_REGION: 'eu/west' is not a Nomad region",
	     AC_ERR_INVALID},
	    {"{\"tls_server_name\": \"x:1\"}", NULL, NULL, "[nomad] tls_server_name: 'x:1'",
	     AC_ERR_INVALID},
	    {"{\"ca_cert\": \"missing.pem\"}", NULL, NULL, "[nomad] ca_cert: cannot use '/",
	     AC_ERR_INVALID},
	    {"{}", "NOMAD_CACERT", "/nonexistent/ca.pem",
	     "NOMAD_CACERT: cannot use '/nonexistent/ca.pem': No such file or directory",
	     AC_ERR_INVALID},
	    {"{\"client_cert\": \"/tmp\"}", NULL, NULL, "[nomad] client_cert: '/tmp' is not a file",
	     AC_ERR_INVALID},
	    {"{\"client_cert\": \"client.pem\"}", NULL, NULL,
	     "client_cert (NOMAD_CLIENT_CERT) is set without client_key (NOMAD_CLIENT_KEY)",
	     AC_ERR_INVALID},
	    {"{\"client_key\": \"client.key\"}", NULL, NULL,
	     "client_key (NOMAD_CLIENT_KEY) is set without client_cert", AC_ERR_INVALID},
	    {"{}", "NOMAD_SKIP_VERIFY", "yes", "NOMAD_SKIP_VERIFY: 'yes' is not a boolean",
	     AC_ERR_INVALID},
	    {"{\"skip_verify\": \"true\"}", NULL, NULL, "[nomad] skip_verify must be true or false",
	     AC_ERR_INVALID},
	    {"{\"cores\": 1}", NULL, NULL, "[nomad] cores must be true or false", AC_ERR_INVALID},
	    {"{\"allow_raw_exec\": \"yes\"}", NULL, NULL, "[nomad] allow_raw_exec must be true",
	     AC_ERR_INVALID},
	    {"{\"driver\": \"qemu\"}", NULL, NULL,
	     "[nomad] driver: 'qemu' is not docker, podman, exec or raw_exec", AC_ERR_INVALID},
	    {"{\"driver\": \"raw_exec\"}", NULL, NULL, "it needs allow_raw_exec = true",
	     AC_ERR_INVALID},
	    {"{\"driver\": \"raw_exec\", \"allow_raw_exec\": false}", NULL, NULL,
	     "it needs allow_raw_exec = true", AC_ERR_INVALID},
	    {"{\"datacenters\": \"dc1\"}", NULL, NULL, "[nomad] datacenters must be an array",
	     AC_ERR_INVALID},
	    {"{\"datacenters\": []}", NULL, NULL, "[nomad] datacenters must be an array",
	     AC_ERR_INVALID},
	    {"{\"datacenters\": [\"dc1\", \"d c\"]}", NULL, NULL,
	     "[nomad] datacenters[1] is not a datacenter name", AC_ERR_INVALID},
	    {"{\"datacenters\": [1]}", NULL, NULL, "[nomad] datacenters[0]", AC_ERR_INVALID},
	    {"{\"node_pool\": \"pool.a\"}", NULL, NULL,
	     "[nomad] node_pool: 'pool.a' is not a Nomad node pool", AC_ERR_INVALID},
	    {"{\"image\": \"-rm\"}", NULL, NULL, "[nomad] image: '-rm' is not an image reference",
	     AC_ERR_INVALID},
	    {"{\"cpu_mhz_per_core\": 0}", NULL, NULL,
	     "[nomad] cpu_mhz_per_core must be an integer from 1 to 1000000", AC_ERR_INVALID},
	    {"{\"cpu_mhz_per_core\": 1.5}", NULL, NULL, "[nomad] cpu_mhz_per_core", AC_ERR_INVALID},
	    {"{\"user\": \"a b\"}", NULL, NULL, "[nomad] user: 'a b' is not a user name",
	     AC_ERR_INVALID},
	    {"{\"token\": \"t\", \"token_file\": \"/etc/hostname\"}", NULL, NULL,
	     "[nomad] token and token_file cannot both be set", AC_ERR_INVALID},
	    {"{\"token\": \"has space\"}", NULL, NULL,
	     "[nomad] token must be a string of printable ASCII", AC_ERR_INVALID},
	    {"{\"token\": \"line\\nbreak\"}", NULL, NULL, "[nomad] token must be", AC_ERR_INVALID},
	    {"{\"token\": \"caf\\u00e9\"}", NULL, NULL, "[nomad] token must be", AC_ERR_INVALID},
	    {"{\"token\": 12}", NULL, NULL, "[nomad] token must be", AC_ERR_INVALID},
	    {"{\"token_file\": \"nope\"}", NULL, NULL, "[nomad] token_file: cannot use '/",
	     AC_ERR_INVALID},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		const bad_case_t *c = &cases[i];
		clear_env();
		if (c->env)
			setenv(c->env, c->val, 1);
		json_t *cfg = parse(c->cfg);
		json_t *before = json_deep_copy(cfg);
		ac_error_t *e = NULL;
		int rc = ac_nm_resolve(cfg, path_of("conf/agentcell.toml"), &e);
		if (rc != -1 || !e)
			fail_msg("case %zu (%s) was accepted", i, c->cfg);
		if (!strstr(e->msg, c->want) || e->kind != c->kind)
			fail_msg("case %zu: '%s' (kind %d), not '%s'", i, e->msg, e->kind, c->want);
		assert_null(strchr(e->msg, '\n'));
		/* A failure leaves the object as it was. */
		assert_true(json_equal(cfg, before));
		ac_error_free(e);
		json_decref(before);
		json_decref(cfg);
	}
	/* A token with no file to read it from again. */
	clear_env();
	json_t *cfg = parse("{\"token\": \"abc\"}");
	ac_error_t *e = NULL;
	assert_int_equal(ac_nm_resolve(cfg, NULL, &e), -1);
	assert_non_null(
	    strstr(e->msg, "[nomad] token: the configuration file's path is not known"));
	assert_non_null(json_object_get(cfg, "token")); /* untouched, but no state is made */
	ac_error_free(e);
	json_decref(cfg);
	e = NULL;
	assert_int_equal(ac_nm_resolve(NULL, NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INTERNAL);
	ac_error_free(e);
}

static void test_token_never_recorded(void **state)
{
	(void)state;
	clear_env();
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmp), 0);
	/* A relative configuration path is recorded absolute. */
	json_t *cfg = resolved("{\"token\": \"s3cr3t-value\", \"address\": \"http://n:1\"}",
			       "conf/agentcell.toml");
	assert_int_equal(chdir(cwd), 0);
	char *text = json_dumps(cfg, 0);
	assert_null(strstr(text, "s3cr3t-value"));
	free(text);
	assert_null(json_object_get(cfg, "token"));
	assert_string_equal(at_str(cfg, "token_config"), path_of("conf/agentcell.toml"));
	json_decref(cfg);
	/* token_file: its absolute path, never its content. */
	cfg = resolved("{\"token_file\": \"../tok/token\"}", path_of("conf/agentcell.toml"));
	assert_string_equal(at_str(cfg, "token_file"), path_of("conf/../tok/token"));
	text = json_dumps(cfg, 0);
	assert_null(strstr(text, "file-token-2"));
	free(text);
	assert_null(json_object_get(cfg, "token_config"));
	json_decref(cfg);
}

/* ---- the connection ---- */

static json_t *state_with(const char *nomad)
{
	char text[2048];
	snprintf(text, sizeof(text), "{\"name\": \"box\", \"nomad\": %s}", nomad);
	return parse(text);
}

static const char *token_header(const ac_nm_t *n)
{
	return n->conf.headers ? n->conf.headers[0] : NULL;
}

static void open_ok(const json_t *st, ac_nm_t *n)
{
	ac_error_t *e = NULL;
	if (ac_nm_open(st, n, &e) < 0)
		fail_msg("open: %s", e->msg);
}

static void open_fails(const json_t *st, const char *want)
{
	ac_nm_t n;
	ac_error_t *e = NULL;
	assert_int_equal(ac_nm_open(st, &n, &e), -1);
	if (!strstr(e->msg, want))
		fail_msg("'%s' does not say '%s'", e->msg, want);
	assert_null(strchr(e->msg, '\n'));
	ac_error_free(e);
}

static void test_open(void **state)
{
	(void)state;
	clear_env();
	char cfgtext[1024];
	snprintf(cfgtext, sizeof(cfgtext),
		 "{\"address\": \"https://n.example:4646\", \"namespace\": \"team\", \"region\": "
		 "\"eu\", \"ca_cert\": \"%s\", \"client_cert\": \"%s\", \"client_key\": \"%s\", "
		 "\"tls_server_name\": \"server.eu.nomad\", \"skip_verify\": true, \"driver\": "
		 "\"exec\", \"job\": \"agentcell-box\", \"token_config\": \"%s\"}",
		 path_of("conf/ca.pem"), path_of("conf/client.pem"), path_of("conf/client.key"),
		 path_of("conf/agentcell.toml"));
	json_t *st = state_with(cfgtext);
	ac_nm_t n;
	open_ok(st, &n);
	assert_string_equal(n.conf.server, "https://n.example:4646");
	assert_string_equal(n.conf.name, "nomad at https://n.example:4646");
	assert_string_equal(n.conf.ca_file, path_of("conf/ca.pem"));
	assert_string_equal(n.conf.cert_file, path_of("conf/client.pem"));
	assert_string_equal(n.conf.key_file, path_of("conf/client.key"));
	assert_string_equal(n.conf.tls_server_name, "server.eu.nomad");
	assert_true(n.conf.insecure);
	assert_null(n.conf.token);
	assert_string_equal(n.ns, "team");
	assert_string_equal(n.region, "eu");
	assert_string_equal(n.job, "agentcell-box");
	assert_string_equal(n.driver, "exec");
	/* The configuration's token, read again. */
	assert_string_equal(token_header(&n), "X-Nomad-Token: conf-token-1");
	assert_null(n.conf.headers[1]);
	ac_nm_close(&n);
	/* NOMAD_TOKEN first. */
	setenv("NOMAD_TOKEN", "env-token-0", 1);
	open_ok(st, &n);
	assert_string_equal(token_header(&n), "X-Nomad-Token: env-token-0");
	ac_nm_close(&n);
	setenv("NOMAD_TOKEN", "bad\ntoken", 1);
	open_fails(st, "the Nomad token from NOMAD_TOKEN has a space, a line break");
	setenv("NOMAD_TOKEN", "", 1); /* empty: unset */
	open_ok(st, &n);
	assert_string_equal(token_header(&n), "X-Nomad-Token: conf-token-1");
	ac_nm_close(&n);
	clear_env();
	json_decref(st);

	/* token_file: trimmed; empty, CR inside, missing: one line each. */
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_file\": \"%s\"}", path_of("tok/token"));
	st = state_with(cfgtext);
	open_ok(st, &n);
	assert_string_equal(token_header(&n), "X-Nomad-Token: file-token-2");
	assert_string_equal(n.conf.server, AC_NM_DEFAULT_ADDR);
	assert_string_equal(n.driver, "docker");
	assert_string_equal(n.ns, "");
	assert_string_equal(n.job, "");
	assert_false(n.conf.insecure);
	ac_nm_close(&n);
	json_decref(st);
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_file\": \"%s\"}", path_of("tok/empty"));
	st = state_with(cfgtext);
	open_fails(st, "[nomad] token_file");
	open_fails(st, "is empty");
	json_decref(st);
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_file\": \"%s\"}", path_of("tok/crlf"));
	st = state_with(cfgtext);
	open_fails(st, "has a space, a line break, a control");
	json_decref(st);
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_file\": \"%s\"}", path_of("tok/gone"));
	st = state_with(cfgtext);
	open_fails(st, "[nomad] token_file: ");
	json_decref(st);
	/* The configuration: gone, broken, without a token (then none is sent). */
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_config\": \"%s\"}", path_of("gone.toml"));
	st = state_with(cfgtext);
	open_fails(st, "cannot read the Nomad token of this sandbox's configuration");
	json_decref(st);
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_config\": \"%s\"}", path_of("broken.toml"));
	st = state_with(cfgtext);
	open_fails(st, "broken.toml:1:");
	json_decref(st);
	snprintf(cfgtext, sizeof(cfgtext), "{\"token_config\": \"%s\"}", path_of("notoken.toml"));
	st = state_with(cfgtext);
	open_ok(st, &n);
	assert_null(token_header(&n));
	ac_nm_close(&n);
	json_decref(st);

	/* Without a state: NOMAD_* and the defaults only. */
	setenv("NOMAD_ADDR", "http://env.example:4646", 1);
	setenv("NOMAD_NAMESPACE", "env-ns", 1);
	setenv("NOMAD_TOKEN", "env-token-9", 1);
	open_ok(NULL, &n);
	assert_string_equal(n.conf.name, "nomad at http://env.example:4646");
	assert_string_equal(n.ns, "env-ns");
	assert_string_equal(token_header(&n), "X-Nomad-Token: env-token-9");
	ac_nm_close(&n);
	/* With a state, the variables never move the sandbox. */
	st = state_with("{\"address\": \"http://recorded:4646\"}");
	open_ok(st, &n);
	assert_string_equal(n.conf.server, "http://recorded:4646");
	assert_string_equal(n.ns, "");
	ac_nm_close(&n);
	json_decref(st);
	clear_env();

	/* States a hand edited. */
	st = parse("{\"name\": \"box\"}");
	open_fails(st, "sandbox 'box' has no nomad settings in its state");
	json_decref(st);
	st = state_with("{\"address\": \"file:///etc\"}");
	open_fails(st, "is not an http:// or https:// URL");
	json_decref(st);
	st = state_with("{\"namespace\": \"a&b=c\"}");
	open_fails(st, "characters Nomad does not take");
	json_decref(st);
	st = state_with("{\"job\": \"agentcell-a/b\"}");
	open_fails(st, "characters Nomad does not take");
	json_decref(st);
	st = state_with("{\"driver\": \"a-driver-name-too-long\"}");
	open_fails(st, "'driver' is too long");
	json_decref(st);
}

/* ---- errors of answers ---- */

static void check_http_error(long status, const char *body, const char *want, ac_error_kind_t kind)
{
	ac_nm_t n;
	memset(&n, 0, sizeof(n));
	n.conf.name = "nomad at http://127.0.0.1:4646";
	ac_remote_resp_t r = {.status = status, .body = (char *)body, .len = strlen(body)};
	if (body[0] == '{')
		r.json = parse(body);
	ac_error_t *e = NULL;
	assert_int_equal(ac_nm_http_error(&n, &r, "register the job", &e), -1);
	json_decref(r.json);
	if (strcmp(e->msg, want) || e->kind != kind)
		fail_msg("'%s' (kind %d), not '%s' (kind %d)", e->msg, e->kind, want, kind);
	ac_error_free(e);
}

static void test_http_errors(void **state)
{
	(void)state;
	const char *pre = "nomad at http://127.0.0.1:4646: register the job: ";
	char want[1200];
#define CHECK(status, body, tail, kind)                                                            \
	do {                                                                                       \
		snprintf(want, sizeof(want), "%s%s", pre, tail);                                   \
		check_http_error(status, body, want, kind);                                        \
	} while (0)
	CHECK(403, "Permission denied",
	      "403 Permission denied (the ACL token: NOMAD_TOKEN, [nomad] token_file or token)",
	      AC_ERR_PERMISSION);
	CHECK(401, "ACL token not found\n",
	      "401 ACL token not found (the ACL token: NOMAD_TOKEN, "
	      "[nomad] token_file or token)",
	      AC_ERR_PERMISSION);
	CHECK(404, "job not found", "404 job not found", AC_ERR_NOT_FOUND);
	CHECK(400,
	      "1 error occurred:\n\t* Task group sandbox validation failed: 1 error occurred:\n"
	      "\t* Task sandbox validation failed: 1 error occurred:\n\t* Missing image\n\n",
	      "400 1 error occurred: * Task group sandbox validation failed: 1 error occurred: * "
	      "Task sandbox validation failed: 1 error occurred: * Missing image",
	      AC_ERR_INVALID);
	CHECK(500, "{\"Error\": \"rpc error: no leader\"}", "500 rpc error: no leader",
	      AC_ERR_BACKEND);
	CHECK(500, "{\"Index\": 3}", "500 {\"Index\": 3}", AC_ERR_BACKEND);
	CHECK(502, "", "502 (no message)", AC_ERR_BACKEND);
	CHECK(409, "\x1b[31mred\x1b[0m", "409 \\x1b[31mred\\x1b[0m", AC_ERR_BACKEND);
	/* A long answer (a proxy's page) is cut. */
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ac_nm_t n;
	memset(&n, 0, sizeof(n));
	n.conf.name = "nomad at http://h:1";
	ac_remote_resp_t r = {.status = 503, .body = big, .len = strlen(big)};
	ac_error_t *e = NULL;
	ac_nm_http_error(&n, &r, NULL, &e);
	assert_true(strlen(e->msg) < 500);
	assert_non_null(strstr(e->msg, "nomad at http://h:1: request: 503 xxxx"));
	ac_error_free(e);
#undef CHECK
	/* A transport error that names the address twice names it once. */
	n.conf.server = "http://h:1";
	e = NULL;
	ac_error_set(&e, AC_ERR_BACKEND, 0,
		     "nomad at http://h:1 at http://h:1: connection refused or unreachable (x)");
	ac_nm_tidy_error(&n, e);
	assert_string_equal(e->msg, "nomad at http://h:1: connection refused or unreachable (x)");
	ac_nm_tidy_error(&n, e);
	assert_string_equal(e->msg, "nomad at http://h:1: connection refused or unreachable (x)");
	ac_error_free(e);
}

/* ---- requests against a server ---- */

static const char server_py[] =
    "import json, sys, threading\n"
    "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def send(self, code, body, ctype):\n"
    "        data = body.encode()\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', ctype)\n"
    "        self.send_header('Content-Length', str(len(data)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(data)\n"
    "    def handle_any(self):\n"
    "        n = int(self.headers.get('Content-Length') or 0)\n"
    "        body = self.rfile.read(n).decode() if n else ''\n"
    "        p = self.path.split('?')[0]\n"
    "        if p == '/v1/forbidden': return self.send(403, 'Permission denied', 'text/plain')\n"
    "        if p == '/v1/job/missing': return self.send(404, 'job not found', 'text/plain')\n"
    "        if p == '/v1/invalid': return self.send(400, '1 error occurred:\\n\\t* bad\\n\\n',"
    " 'text/plain')\n"
    "        self.send(200, json.dumps({'method': self.command, 'path': self.path,"
    " 'token': self.headers.get('X-Nomad-Token'), 'body': body}), 'application/json')\n"
    "    do_GET = do_PUT = do_POST = do_DELETE = handle_any\n"
    "s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "print('PORT', s.server_address[1], flush=True)\n"
    "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
    "sys.stdin.read()\n";

static const char *echo_path(ac_nm_t *n, const char *path)
{
	static char got[512];
	json_t *out = NULL;
	ac_error_t *e = NULL;
	if (ac_nm_simple(n, "GET", path, NULL, false, "echo", &out, &e) != 0)
		fail_msg("GET %s: %s", path, e ? e->msg : "404");
	snprintf(got, sizeof(got), "%s", json_string_value(json_object_get(out, "path")));
	json_decref(out);
	return got;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd); /* nothing listens there now */
	return ntohs(a.sin_port);
}

static void test_requests(void **state)
{
	(void)state;
	clear_env();
	if (access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "# SKIP: python3 missing\n");
		skip();
	}
	ac_test_server_t srv;
	char *argv[] = {"/usr/bin/python3", "-c", (char *)server_py, NULL};
	if (!ac_test_server_start(&srv, NULL, argv))
		fail_msg("the test server did not start");
	char cfgtext[512];
	snprintf(cfgtext, sizeof(cfgtext),
		 "{\"address\": \"http://127.0.0.1:%d\", \"namespace\": \"team\", \"region\": "
		 "\"eu\", \"token_file\": \"%s\"}",
		 srv.port, path_of("tok/token"));
	json_t *st = state_with(cfgtext);
	ac_nm_t n;
	open_ok(st, &n);
	/* namespace and region join the query, once. */
	assert_string_equal(echo_path(&n, "/v1/jobs"), "/v1/jobs?namespace=team&region=eu");
	assert_string_equal(echo_path(&n, "/v1/job/x/allocations?index=7&wait=5s"),
			    "/v1/job/x/allocations?index=7&wait=5s&namespace=team&region=eu");
	assert_string_equal(echo_path(&n, "/v1/jobs?namespace=*&prefix=agentcell-"),
			    "/v1/jobs?namespace=*&prefix=agentcell-&region=eu");
	assert_string_equal(echo_path(&n, "/v1/jobs?region=us"),
			    "/v1/jobs?region=us&namespace=team");
	/* The body and the token. */
	json_t *body = parse("{\"Job\": {\"ID\": \"j\"}}");
	json_t *out = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_nm_simple(&n, "PUT", "/v1/jobs", body, false, "register", &out, &e), 0);
	assert_string_equal(at_str(out, "method"), "PUT");
	assert_string_equal(at_str(out, "token"), "file-token-2");
	assert_string_equal(at_str(out, "body"), "{\"Job\":{\"ID\":\"j\"}}");
	json_decref(out);
	json_decref(body);
	/* ac_nm_call: the status, whatever it is. */
	ac_remote_resp_t r;
	assert_int_equal(ac_nm_call(&n, "GET", "/v1/forbidden", NULL, &r, &e), 403);
	ac_remote_resp_free(&r);
	/* 404: 1 with ok404, else the error; other answers: one line each. */
	out = (json_t *)1;
	assert_int_equal(
	    ac_nm_simple(&n, "GET", "/v1/job/missing", NULL, true, "look up the job", &out, &e), 1);
	assert_null(out);
	assert_null(e);
	assert_int_equal(
	    ac_nm_simple(&n, "GET", "/v1/job/missing", NULL, false, "look up the job", NULL, &e),
	    -1);
	char want[300];
	snprintf(want, sizeof(want),
		 "nomad at http://127.0.0.1:%d: look up the job: 404 job not found", srv.port);
	assert_string_equal(e->msg, want);
	assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
	ac_error_free(e);
	e = NULL;
	assert_int_equal(
	    ac_nm_simple(&n, "DELETE", "/v1/forbidden", NULL, true, "stop the job", NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_PERMISSION);
	assert_non_null(strstr(e->msg, ": stop the job: 403 Permission denied (the ACL token"));
	ac_error_free(e);
	e = NULL;
	assert_int_equal(
	    ac_nm_simple(&n, "PUT", "/v1/invalid", NULL, false, "register the job", NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_non_null(strstr(e->msg, "register the job: 400 1 error occurred: * bad"));
	ac_error_free(e);
	e = NULL;
	ac_nm_close(&n);
	json_decref(st);
	ac_test_server_stop(&srv);

	/* Nothing listens: one line naming the address once. */
	int port = free_port();
	snprintf(cfgtext, sizeof(cfgtext), "{\"address\": \"http://127.0.0.1:%d\"}", port);
	st = state_with(cfgtext);
	open_ok(st, &n);
	assert_int_equal(ac_nm_call(&n, "GET", "/v1/agent/self", NULL, &r, &e), -1);
	snprintf(want, sizeof(want), "nomad at http://127.0.0.1:%d: connection refused", port);
	if (strncmp(e->msg, want, strlen(want)))
		fail_msg("'%s' does not start with '%s'", e->msg, want);
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	ac_error_free(e);
	e = NULL;
	assert_int_equal(ac_nm_simple(&n, "GET", "/v1/agent/self", NULL, false, "x", NULL, NULL),
			 -1);
	ac_nm_close(&n);
	json_decref(st);
	/* A closed connection refuses requests instead of crashing. */
	assert_int_equal(ac_nm_call(&n, "GET", "/v1/x", NULL, &r, &e), -1);
	ac_error_free(e);
	/* The nap. */
	assert_int_equal(ac_nm_nap(NULL, 1), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	ac_backend_ctx_t ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cancel_fd = p[0];
	assert_int_equal(ac_nm_nap(&ctx, 10000), -1); /* hung up: at once */
	close(p[0]);
}

/* ---- the job ---- */

#define FULL_STATE_FMT                                                                             \
	"{\"name\": \"box\", \"image\": \"python:3.12\", \"cpus\": 1.5, \"vcpus\": 2,"             \
	" \"memory_mb\": 768, \"pids_limit\": 256, \"read_only\": true, \"network\": false,"       \
	" \"env\": [\"A=1\", \"B=x=y\", \"A=2\"], \"mount_cwd\": \"/home/u/project\","             \
	" \"nomad\": {\"driver\": \"%s\", \"allow_raw_exec\": true, \"datacenters\": [\"dc1\", "   \
	"\"dc2\"], \"node_pool\": \"pool-a\", \"owner\": \"0123456789abcdef\", \"image\": "        \
	"\"alpine:3.19\", \"cpu_mhz_per_core\": 1000, \"job\": \"agentcell-box\"}}"

static json_t *full_state(const char *driver)
{
	char text[2048];
	snprintf(text, sizeof(text), FULL_STATE_FMT, driver);
	return parse(text);
}

static void conn_for(ac_nm_t *n, const char *driver)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->ns, sizeof(n->ns), "team");
	snprintf(n->region, sizeof(n->region), "eu");
	snprintf(n->job, sizeof(n->job), "agentcell-box");
	snprintf(n->driver, sizeof(n->driver), "%s", driver);
}

static json_t *job_of(const json_t *st, const ac_nm_t *n, const char *id, char *const *argv)
{
	ac_error_t *e = NULL;
	json_t *j = ac_nm_job_spec(st, n, id, argv, &e);
	if (!j)
		fail_msg("job: %s", e->msg);
	return j;
}

#define TASK "TaskGroups.0.Tasks.0."
#define CFG  "TaskGroups.0.Tasks.0.Config."

/* What every job has, whatever the driver. */
static void check_common(json_t *j, const char *id, const char *driver)
{
	assert_string_equal(at_str(j, "ID"), id);
	assert_string_equal(at_str(j, "Name"), id);
	assert_string_equal(at_str(j, "Type"), "batch");
	assert_string_equal(at_str(j, "Namespace"), "team");
	assert_string_equal(at_str(j, "Region"), "eu");
	assert_at_json(j, "Datacenters", "[\"dc1\",\"dc2\"]");
	assert_string_equal(at_str(j, "NodePool"), "pool-a");
	assert_int_equal(json_array_size(at(j, "TaskGroups")), 1);
	assert_string_equal(at_str(j, "TaskGroups.0.Name"), "sandbox");
	assert_int_equal(at_int(j, "TaskGroups.0.Count"), 1);
	assert_at_json(j, "TaskGroups.0.RestartPolicy", "{\"Attempts\":0,\"Mode\":\"fail\"}");
	assert_at_json(j, "TaskGroups.0.ReschedulePolicy", "{\"Attempts\":0,\"Unlimited\":false}");
	assert_int_equal(json_array_size(at(j, "TaskGroups.0.Tasks")), 1);
	assert_string_equal(at_str(j, TASK "Name"), "sandbox");
	assert_string_equal(at_str(j, TASK "Driver"), driver);
	assert_int_equal(at_int(j, TASK "KillTimeout"), 2000000000LL);
	assert_string_equal(at_str(j, TASK "KillSignal"), "SIGTERM");
	assert_at_json(j, TASK "LogConfig", "{\"MaxFileSizeMB\":10,\"MaxFiles\":2}");
	/* Nothing of a node reaches the sandbox. */
	static const char *const absent[] = {"TaskGroups.0.Volumes",
					     "TaskGroups.0.Services",
					     TASK "VolumeMounts",
					     TASK "Artifacts",
					     TASK "Templates",
					     TASK "Vault",
					     TASK "Services",
					     CFG "volumes",
					     CFG "devices",
					     CFG "cap_add",
					     CFG "ports",
					     CFG "network_aliases"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(absent); i++)
		if (at(j, absent[i]))
			fail_msg("%s is set", absent[i]);
}

static void test_job_docker(void **state)
{
	(void)state;
	json_t *st = full_state("docker");
	ac_nm_t n;
	conn_for(&n, "docker");
	json_t *j = job_of(st, &n, NULL, NULL);
	check_common(j, "agentcell-box", "docker");
	assert_at_json(j, "Meta",
		       "{\"agentcell-managed\":\"true\",\"agentcell-owner\":\"0123456789abcdef\","
		       "\"agentcell-sandbox\":\"box\"}");
	assert_at_json(j, "TaskGroups.0.Networks", "[{\"Mode\":\"none\"}]");
	assert_null(at(j, "TaskGroups.0.EphemeralDisk"));
	assert_string_equal(at_str(j, CFG "image"), "python:3.12");
	assert_at_json(j, CFG "entrypoint", "[\"/bin/sh\"]");
	char want[300];
	snprintf(want, sizeof(want), "[\"-c\",\"%s\"]", AC_NM_IDLE_SCRIPT);
	assert_at_json(j, CFG "args", want);
	assert_null(at(j, CFG "command"));
	assert_at_json(j, CFG "cap_drop", "[\"ALL\"]");
	assert_at_bool(j, CFG "privileged", false);
	assert_at_json(j, CFG "security_opt", "[\"no-new-privileges\"]");
	assert_at_bool(j, CFG "readonly_rootfs", true);
	assert_string_equal(at_str(j, CFG "network_mode"), "none");
	assert_int_equal(at_int(j, CFG "pids_limit"), 256);
	assert_at_json(j, CFG "mount",
		       "[{\"readonly\":false,\"target\":\"/tmp\",\"tmpfs_options\":[{\"mode\":1023,"
		       "\"size\":805306368}],\"type\":\"tmpfs\"}]");
	assert_null(at(j, CFG "tmpfs"));
	assert_null(at(j, CFG "work_dir"));
	assert_int_equal(json_object_size(at(j, "TaskGroups.0.Tasks.0.Config")), 10);
	assert_at_json(j, TASK "Env", "{\"A\":\"2\",\"B\":\"x=y\"}");
	assert_at_json(j, TASK "Resources", "{\"CPU\":1500,\"MemoryMB\":768}");
	assert_null(at(j, TASK "User"));
	json_decref(j);

	/* Network on, writable root: the driver's network, no tmpfs; "host" is the
	 * configured image. */
	json_object_set_new(st, "network", json_true());
	json_object_set_new(st, "read_only", json_false());
	json_object_set_new(st, "image", json_string("host"));
	json_object_set_new(st, "pids_limit", json_integer(0));
	j = job_of(st, &n, NULL, NULL);
	assert_null(at(j, "TaskGroups.0.Networks"));
	assert_null(at(j, CFG "network_mode"));
	assert_at_bool(j, CFG "readonly_rootfs", false);
	assert_null(at(j, CFG "mount"));
	assert_null(at(j, CFG "pids_limit"));
	assert_string_equal(at_str(j, CFG "image"), "alpine:3.19");
	json_decref(j);
	json_object_del(json_object_get(st, "nomad"), "image");
	j = job_of(st, &n, NULL, NULL);
	assert_string_equal(at_str(j, CFG "image"), AC_NM_DEFAULT_IMAGE);
	json_decref(j);
	/* The tmpfs is at most 1 GiB. */
	json_object_set_new(st, "read_only", json_true());
	json_object_set_new(st, "memory_mb", json_integer(4096));
	j = job_of(st, &n, NULL, NULL);
	assert_int_equal(at_int(j, CFG "mount.0.tmpfs_options.0.size"), 1073741824LL);
	json_decref(j);
	char w[200];
	assert_int_equal(ac_nm_job_warnings(st, &n, w, sizeof(w)), 0);
	assert_string_equal(w, "");
	json_decref(st);
}

static void test_job_podman(void **state)
{
	(void)state;
	json_t *st = full_state("podman");
	ac_nm_t n;
	conn_for(&n, "podman");
	json_t *j = job_of(st, &n, NULL, NULL);
	check_common(j, "agentcell-box", "podman");
	assert_at_json(j, "TaskGroups.0.Networks", "[{\"Mode\":\"none\"}]");
	assert_string_equal(at_str(j, CFG "image"), "python:3.12");
	assert_at_json(j, CFG "entrypoint", "[\"/bin/sh\"]");
	assert_at_json(j, CFG "cap_drop", "[\"ALL\"]");
	assert_at_bool(j, CFG "privileged", false);
	assert_at_json(j, CFG "security_opt", "[\"no-new-privileges\"]");
	assert_at_bool(j, CFG "readonly_rootfs", true);
	assert_string_equal(at_str(j, CFG "network_mode"), "none");
	assert_int_equal(at_int(j, CFG "pids_limit"), 256);
	assert_at_json(j, CFG "tmpfs", "[\"/tmp:rw,nosuid,nodev,mode=1777,size=768m\"]");
	assert_null(at(j, CFG "mount"));
	assert_int_equal(json_object_size(at(j, "TaskGroups.0.Tasks.0.Config")), 10);
	assert_at_json(j, TASK "Resources", "{\"CPU\":1500,\"MemoryMB\":768}");
	json_decref(j);
	/* A run's working directory: podman calls it working_dir. */
	char *argv[] = {"ls", "-l", NULL};
	ac_cmd_t cmd = {.argv = argv, .cwd = "/srv"};
	ac_error_t *e = NULL;
	j = ac_nm_run_job_spec(st, &n, "agentcell-run-1", &cmd, &e);
	assert_non_null(j);
	assert_string_equal(at_str(j, CFG "working_dir"), "/srv");
	assert_null(at(j, CFG "work_dir"));
	json_decref(j);
	json_decref(st);
}

static void test_job_exec(void **state)
{
	(void)state;
	json_t *st = full_state("exec");
	ac_nm_t n;
	conn_for(&n, "exec");
	json_t *j = job_of(st, &n, NULL, NULL);
	check_common(j, "agentcell-box", "exec");
	assert_at_json(j, "TaskGroups.0.Networks", "[{\"Mode\":\"none\"}]");
	char want[300];
	snprintf(want, sizeof(want),
		 "{\"args\":[\"-c\",\"%s\"],\"cap_drop\":[\"ALL\"],\"command\":\"/bin/sh\","
		 "\"ipc_mode\":\"private\",\"pid_mode\":\"private\"}",
		 AC_NM_IDLE_SCRIPT);
	assert_at_json(j, "TaskGroups.0.Tasks.0.Config", want);
	assert_at_json(j, TASK "Resources", "{\"CPU\":1500,\"MemoryMB\":768}");
	assert_at_json(j, TASK "Env", "{\"A\":\"2\",\"B\":\"x=y\"}");
	json_decref(j);
	/* What exec cannot do is said. */
	char w[600];
	size_t len = ac_nm_job_warnings(st, &n, w, sizeof(w));
	assert_int_equal(len, strlen(w));
	assert_string_equal(w, "the exec driver takes no image: 'python:3.12' is ignored (the "
			       "node's file system is used); the exec driver has no read-only "
			       "root: --read-only is not applied; the exec driver has no pids "
			       "limit: --pids is not applied");
	char small[20];
	assert_int_equal(ac_nm_job_warnings(st, &n, small, sizeof(small)), sizeof(small) - 1);
	json_object_set_new(st, "image", json_string("host"));
	json_object_set_new(st, "read_only", json_false());
	json_object_set_new(st, "pids_limit", json_integer(0));
	assert_int_equal(ac_nm_job_warnings(st, &n, w, sizeof(w)), 0);
	/* exec takes no image: a directory image is no error there. */
	json_object_set_new(st, "image", json_string("/var/lib/images/x"));
	j = job_of(st, &n, NULL, NULL);
	assert_null(at(j, CFG "image"));
	json_decref(j);
	json_decref(st);
}

static void test_job_raw_exec(void **state)
{
	(void)state;
	json_t *st = full_state("raw_exec");
	ac_nm_t n;
	conn_for(&n, "raw_exec");
	json_t *j = job_of(st, &n, NULL, NULL);
	check_common(j, "agentcell-box", "raw_exec");
	char want[300];
	snprintf(want, sizeof(want), "{\"args\":[\"-c\",\"%s\"],\"command\":\"/bin/sh\"}",
		 AC_NM_IDLE_SCRIPT);
	assert_at_json(j, "TaskGroups.0.Tasks.0.Config", want);
	json_decref(j);
	char w[600];
	ac_nm_job_warnings(st, &n, w, sizeof(w));
	assert_true(!strncmp(w,
			     "the raw_exec driver does not isolate the sandbox: it runs as the "
			     "Nomad agent's user on the node; the raw_exec driver takes no image",
			     120));
	/* Not without allow_raw_exec (a state edited by hand). */
	json_object_del(json_object_get(st, "nomad"), "allow_raw_exec");
	ac_error_t *e = NULL;
	assert_null(ac_nm_job_spec(st, &n, NULL, NULL, &e));
	assert_non_null(strstr(e->msg, "it needs [nomad] allow_raw_exec = true"));
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	json_decref(st);
}

static void test_job_run(void **state)
{
	(void)state;
	json_t *st = full_state("docker");
	ac_nm_t n;
	conn_for(&n, "docker");
	char *argv[] = {"python3", "-c", "print(6*7)", NULL};
	json_t *j = job_of(st, &n, "agentcell-run-0a1b", argv);
	check_common(j, "agentcell-run-0a1b", "docker");
	/* The command itself, not the idle loop, and not through the image's entrypoint. */
	assert_at_json(j, CFG "entrypoint", "[\"python3\"]");
	assert_at_json(j, CFG "args", "[\"-c\",\"print(6*7)\"]");
	/* The same hardening as a sandbox's. */
	assert_at_json(j, CFG "cap_drop", "[\"ALL\"]");
	assert_string_equal(at_str(j, CFG "network_mode"), "none");
	assert_at_bool(j, CFG "readonly_rootfs", true);
	/* A run's job names its creator (gc spares it while this process lives). */
	char creator[96];
	ac_owner_creator(creator, sizeof(creator));
	assert_string_equal(at_str(j, "Meta.agentcell-creator"), creator);
	assert_true(ac_owner_creator_alive(creator));
	assert_string_equal(at_str(j, "Meta.agentcell-managed"), "true");
	assert_string_equal(at_str(j, "Meta.agentcell-owner"), "0123456789abcdef");
	json_decref(j);
	/* The idle job has none. */
	j = job_of(st, &n, NULL, NULL);
	assert_null(at(j, "Meta.agentcell-creator"));
	json_decref(j);
	/* A one-word command: no args. */
	char *one[] = {"true", NULL};
	j = job_of(st, &n, "agentcell-run-2", one);
	assert_at_json(j, CFG "entrypoint", "[\"true\"]");
	assert_at_json(j, CFG "args", "[]");
	json_decref(j);
	/* A run with env, cwd and user. */
	char *env[] = {"B=over", "C=3", NULL};
	ac_cmd_t cmd = {.argv = argv, .env = env, .cwd = "/work", .user = "1000"};
	ac_error_t *e = NULL;
	j = ac_nm_run_job_spec(st, &n, "agentcell-run-3", &cmd, &e);
	assert_non_null(j);
	assert_at_json(j, TASK "Env", "{\"A\":\"2\",\"B\":\"over\",\"C\":\"3\"}");
	assert_string_equal(at_str(j, CFG "work_dir"), "/work");
	assert_string_equal(at_str(j, TASK "User"), "1000");
	json_decref(j);
	/* exec and raw_exec: command + args. */
	snprintf(n.driver, sizeof(n.driver), "exec");
	j = ac_nm_run_job_spec(st, &n, "agentcell-run-4", &cmd, &e);
	assert_non_null(j);
	assert_string_equal(at_str(j, CFG "command"), "python3");
	assert_at_json(j, CFG "args", "[\"-c\",\"print(6*7)\"]");
	assert_string_equal(at_str(j, CFG "work_dir"), "/work");
	json_decref(j);
	/* Without a name, a run still gets its job (Meta without a sandbox). */
	json_object_del(st, "name");
	j = ac_nm_run_job_spec(st, &n, "agentcell-run-5", &cmd, &e);
	assert_non_null(j);
	assert_null(at(j, "Meta.agentcell-sandbox"));
	json_decref(j);
	/* [nomad] user is the task's user; a run's -u wins. */
	json_object_set_new(json_object_get(st, "nomad"), "user", json_string("nobody"));
	json_object_set_new(st, "name", json_string("box"));
	j = job_of(st, &n, NULL, NULL);
	assert_string_equal(at_str(j, TASK "User"), "nobody");
	json_decref(j);
	j = ac_nm_run_job_spec(st, &n, "agentcell-run-6", &cmd, &e);
	assert_string_equal(at_str(j, TASK "User"), "1000");
	json_decref(j);
	json_decref(st);
}

static void test_job_resources(void **state)
{
	(void)state;
	ac_nm_t n;
	conn_for(&n, "docker");
	struct {
		const char *st;
		const char *want;
	} cases[] = {
	    {"{\"name\": \"b\", \"cpus\": 1.5, \"memory_mb\": 512, \"nomad\": {\"cores\": true}}",
	     "{\"Cores\":2,\"MemoryMB\":512}"},
	    {"{\"name\": \"b\", \"cpus\": 1.5, \"nomad\": {\"cpu_mhz_per_core\": 2400}}",
	     "{\"CPU\":3600}"},
	    {"{\"name\": \"b\", \"cpus\": 0.01}", "{\"CPU\":10}"},
	    {"{\"name\": \"b\", \"cpus\": 0.0001}", "{\"CPU\":1}"},
	    {"{\"name\": \"b\", \"cpus\": 0, \"memory_mb\": 0}", "{}"},
	    {"{\"name\": \"b\", \"vcpus\": 3, \"memory_mb\": 4}", "{\"CPU\":3000,\"MemoryMB\":10}"},
	    {"{\"name\": \"b\", \"cpus\": 0.2, \"nomad\": {\"cores\": true}}", "{\"Cores\":1}"},
	    {"{\"name\": \"b\", \"cpus\": 2, \"nomad\": {\"cpu_mhz_per_core\": 0}}",
	     "{\"CPU\":2000}"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *st = parse(cases[i].st);
		json_t *j = job_of(st, &n, NULL, NULL);
		assert_at_json(j, TASK "Resources", cases[i].want);
		json_decref(j);
		json_decref(st);
	}
	/* A disk limit: the ephemeral disk, with logs that fit in it. */
	json_t *st = parse("{\"name\": \"b\", \"disk_mb\": 16}");
	json_t *j = job_of(st, &n, NULL, NULL);
	assert_at_json(j, "TaskGroups.0.EphemeralDisk", "{\"SizeMB\":16}");
	assert_at_json(j, TASK "LogConfig", "{\"MaxFileSizeMB\":3,\"MaxFiles\":2}");
	assert_at_json(j, "Datacenters", "[\"*\"]"); /* no nomad object: the defaults */
	json_decref(j);
	json_decref(st);
	st = parse("{\"name\": \"b\", \"disk_mb\": 10240}");
	j = job_of(st, &n, NULL, NULL);
	assert_at_json(j, "TaskGroups.0.EphemeralDisk", "{\"SizeMB\":10240}");
	assert_at_json(j, TASK "LogConfig", "{\"MaxFileSizeMB\":10,\"MaxFiles\":2}");
	json_decref(j);
	json_decref(st);
	/* Namespace and region only when the connection has them. */
	memset(n.ns, 0, sizeof(n.ns));
	memset(n.region, 0, sizeof(n.region));
	st = parse("{\"name\": \"b\"}");
	j = job_of(st, &n, NULL, NULL);
	assert_null(at(j, "Namespace"));
	assert_null(at(j, "Region"));
	assert_null(at(j, "NodePool"));
	assert_at_json(j, "Meta", "{\"agentcell-managed\":\"true\",\"agentcell-sandbox\":\"b\"}");
	json_decref(j);
	json_decref(st);
}

static void test_job_invalid(void **state)
{
	(void)state;
	struct {
		const char *st, *driver, *id, *want;
	} cases[] = {
	    {"{\"name\": \"b\"}", "qemu", NULL, "'qemu' is not a Nomad driver agentcell uses"},
	    {"{\"name\": \"b\"}", "docker", "a b", "'a b' is not a Nomad job id"},
	    {"{\"name\": \"b\"}", "docker", "", NULL}, /* "" -> n->job "" */
	    {"{}", "docker", NULL, "the sandbox's state has no name"},
	    {"{\"name\": \"b\", \"memory_mb\": \"512\"}", "docker", NULL, "invalid memory_mb"},
	    {"{\"name\": \"b\", \"memory_mb\": -1}", "docker", NULL, "invalid memory_mb"},
	    {"{\"name\": \"b\", \"pids_limit\": 1.5}", "docker", NULL, "invalid pids_limit"},
	    {"{\"name\": \"b\", \"disk_mb\": true}", "docker", NULL, "invalid disk_mb"},
	    {"{\"name\": \"b\", \"cpus\": -1}", "docker", NULL, "invalid cpus"},
	    {"{\"name\": \"b\", \"cpus\": 5000}", "docker", NULL, "invalid cpus"},
	    {"{\"name\": \"b\", \"cpus\": \"2\"}", "docker", NULL, "invalid cpus"},
	    {"{\"name\": \"b\", \"read_only\": \"yes\"}", "docker", NULL, "invalid read_only"},
	    {"{\"name\": \"b\", \"network\": 1}", "docker", NULL, "invalid network"},
	    {"{\"name\": \"b\", \"env\": \"A=1\"}", "docker", NULL, "invalid env"},
	    {"{\"name\": \"b\", \"env\": [\"NOVALUE\"]}", "docker", NULL,
	     "environment entry 'NOVALUE' is not KEY=VALUE"},
	    {"{\"name\": \"b\", \"env\": [\"=x\"]}", "docker", NULL, "is not KEY=VALUE"},
	    {"{\"name\": \"b\", \"env\": [1]}", "docker", NULL, "not a string"},
	    {"{\"name\": \"b\", \"image\": \"/var/lib/images/x\"}", "docker", NULL,
	     "'/var/lib/images/x' is not an image reference"},
	    {"{\"name\": \"b\", \"image\": \"/var/lib/images/x\"}", "podman", NULL,
	     "is not an image reference"},
	    {"{\"name\": \"b\", \"nomad\": {\"user\": \"a b\"}}", "docker", NULL,
	     "'a b' is not a user for a Nomad task"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *st = parse(cases[i].st);
		ac_nm_t n;
		conn_for(&n, cases[i].driver);
		if (cases[i].id && !*cases[i].id)
			n.job[0] = 0;
		ac_error_t *e = NULL;
		json_t *j = ac_nm_job_spec(st, &n, cases[i].id, NULL, &e);
		if (j)
			fail_msg("case %zu was accepted", i);
		const char *want = cases[i].want ? cases[i].want : "is not a Nomad job id";
		if (!strstr(e->msg, want) || e->kind != AC_ERR_INVALID)
			fail_msg("case %zu: '%s', not '%s'", i, e->msg, want);
		assert_null(strchr(e->msg, '\n'));
		ac_error_free(e);
		json_decref(st);
	}
	/* Runs: a command is needed, its directory absolute. */
	json_t *st = parse("{\"name\": \"b\"}");
	ac_nm_t n;
	conn_for(&n, "docker");
	ac_error_t *e = NULL;
	char *empty[] = {"", NULL};
	assert_null(ac_nm_job_spec(st, &n, "agentcell-run-1", empty, &e));
	assert_non_null(strstr(e->msg, "no command to run"));
	ac_error_free(e);
	e = NULL;
	assert_null(ac_nm_run_job_spec(st, &n, "agentcell-run-1", NULL, &e));
	ac_error_free(e);
	e = NULL;
	char *argv[] = {"ls", NULL};
	ac_cmd_t cmd = {.argv = argv, .cwd = "work"};
	assert_null(ac_nm_run_job_spec(st, &n, "agentcell-run-1", &cmd, &e));
	assert_non_null(strstr(e->msg, "the working directory 'work' is not absolute"));
	ac_error_free(e);
	e = NULL;
	char bad_utf8[] = "\xff\xfe";
	char *argv2[] = {"echo", bad_utf8, NULL};
	assert_null(ac_nm_job_spec(st, &n, "agentcell-run-1", argv2, &e));
	assert_non_null(strstr(e->msg, "not valid UTF-8"));
	ac_error_free(e);
	e = NULL;
	assert_null(ac_nm_job_spec(NULL, &n, NULL, NULL, &e));
	ac_error_free(e);
	json_decref(st);
}

/* ---- agentcell.toml's [nomad] ---- */

static int load_config(const char *text, json_t **cfg, ac_error_t **e)
{
	write_file("cfgtest.toml", text);
	*cfg = NULL;
	return ac_config_load(path_of("cfgtest.toml"), "/nonexistent", cfg, e);
}

static void test_config_table(void **state)
{
	(void)state;
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	if (load_config(
		"[nomad]\naddress = \"https://n:4646\"\nnamespace = \"ns\"\n"
		"region = \"r\"\nca_cert = \"ca.pem\"\nclient_cert = \"c.pem\"\n"
		"client_key = \"c.key\"\ntls_server_name = \"n\"\nskip_verify = false\n"
		"driver = \"raw_exec\"\nallow_raw_exec = true\ndatacenters = [\"a\", \"b\"]\n"
		"node_pool = \"p\"\nimage = \"alpine:3\"\ncores = true\n"
		"cpu_mhz_per_core = 2000\nuser = \"nobody\"\ntoken = \"t\"\n",
		&cfg, &e) < 0)
		fail_msg("%s", e->msg);
	assert_string_equal(at_str(cfg, "nomad.driver"), "raw_exec");
	assert_string_equal(at_str(cfg, AC_CONFIG_FILE_KEY), path_of("cfgtest.toml"));
	json_decref(cfg);
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[nomad]\nzone = \"x\"\n", "unknown key 'zone' in [nomad]"},
	    {"[nomad]\naddress = 1\n", "nomad.address must be a non-empty string"},
	    {"[nomad]\ntoken = \"\"\n", "nomad.token must be a non-empty string"},
	    {"[nomad]\nskip_verify = \"yes\"\n", "nomad.skip_verify must be true or false"},
	    {"[nomad]\ncores = 1\n", "nomad.cores must be true or false"},
	    {"[nomad]\ndriver = \"java\"\n",
	     "nomad.driver must be docker, podman, exec or raw_exec"},
	    {"[nomad]\ndriver = \"raw_exec\"\n", "it needs nomad.allow_raw_exec = true"},
	    {"[nomad]\nimage = \"-x\"\n", "nomad.image is not an image reference"},
	    {"[nomad]\ndatacenters = \"dc1\"\n", "nomad.datacenters must be a non-empty array"},
	    {"[nomad]\ndatacenters = []\n", "nomad.datacenters must be a non-empty array"},
	    {"[nomad]\ndatacenters = [\"\"]\n", "nomad.datacenters[0] must be a non-empty string"},
	    {"[nomad]\ncpu_mhz_per_core = 0\n", "nomad.cpu_mhz_per_core must be an integer"},
	    {"[nomad]\ntoken = \"a\"\ntoken_file = \"f\"\n",
	     "nomad.token and nomad.token_file cannot both be set"},
	    {"nomad = 3\n", "[nomad] must be a table"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		e = NULL;
		if (load_config(bad[i].text, &cfg, &e) == 0)
			fail_msg("accepted: %s", bad[i].text);
		if (!strstr(e->msg, bad[i].want))
			fail_msg("'%s' does not say '%s'", e->msg, bad[i].want);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolve_defaults),
	    cmocka_unit_test(test_resolve_env),
	    cmocka_unit_test(test_resolve_precedence),
	    cmocka_unit_test(test_resolve_errors),
	    cmocka_unit_test(test_token_never_recorded),
	    cmocka_unit_test(test_open),
	    cmocka_unit_test(test_http_errors),
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_job_docker),
	    cmocka_unit_test(test_job_podman),
	    cmocka_unit_test(test_job_exec),
	    cmocka_unit_test(test_job_raw_exec),
	    cmocka_unit_test(test_job_run),
	    cmocka_unit_test(test_job_resources),
	    cmocka_unit_test(test_job_invalid),
	    cmocka_unit_test(test_config_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
