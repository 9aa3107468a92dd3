/* Kubernetes connection settings (src/backends/kubernetes/kubeconfig.c): kubeconfig files
 * written by the test into a temporary directory (token, tokenFile, client certificate data
 * and files, relative paths, basic auth, exec plugins that work, fail and hang, merged
 * $KUBECONFIG lists, JSON form, bad YAML), the in-cluster service account (a fake
 * directory), and the API error lines of ac_k8s_error_from. Where kubectl is installed, its
 * own reading of each fixture (`kubectl config view --minify`) must agree with ours.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "backends/kubernetes/k8s.h"

static char tmp[PATH_MAX];
static bool have_kubectl;

/* A throw-away PEM-looking text and its base64 (kubeconfig *-data). */
#define PEM_CA "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n"

static char *path_of(const char *name)
{
	static char bufs[8][PATH_MAX + 64];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX + 64, "%s/%s", tmp, name);
	return b;
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	char *p = path_of(name);
	char dir[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s", p);
	*strrchr(dir, '/') = 0;
	ac_error_t *e = NULL;
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, dir, 0755, &e), 0);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(ac_write_all(fd, text, strlen(text)), 0);
	close(fd);
	chmod(p, mode);
}

static void clear_env(void)
{
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KUBECONFIG");
	unsetenv("POD_NAMESPACE");
	unsetenv(AC_K8S_SA_DIR_ENV);
	setenv("HOME", path_of("home"), 1);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/ac-kubeconfig.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	have_kubectl = system("kubectl version --client >/dev/null 2>&1") == 0;
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

static int load(const char *kubeconfig, const char *context, const char *ns, ac_k8s_conn_t *c,
		ac_error_t **err)
{
	ac_k8s_settings_t s = {
	    .kubeconfig = kubeconfig, .context = context, .namespace = ns, .exec_timeout_ms = 5000};
	return ac_k8s_conn_load(&s, c, err);
}

static void expect_error(const char *kubeconfig, const char *context, const char *needle)
{
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	int rc = load(kubeconfig, context, NULL, &c, &err);
	if (rc == 0)
		fail_msg("expected an error containing '%s'", needle);
	assert_non_null(err);
	if (!strstr(err->msg, needle))
		fail_msg("error '%s' does not contain '%s'", err->msg, needle);
	assert_null(strchr(err->msg, '\n'));
	print_message("  error: %s\n", err->msg);
	ac_error_free(err);
}

/* kubectl's reading of the same configuration: context, cluster, user, namespace, server.
 * env_kubeconfig is $KUBECONFIG for the run (NULL: --kubeconfig file). */
static void kubectl_agrees(const char *file, const char *env_kubeconfig, const char *context,
			   const ac_k8s_conn_t *c)
{
	if (!have_kubectl) {
		print_message("  # SKIP kubectl comparison: kubectl is not installed\n");
		return;
	}
	char cmd[4 * PATH_MAX];
	int n = snprintf(cmd, sizeof(cmd), "%s%s%s kubectl config view --minify --raw -o json",
			 env_kubeconfig ? "KUBECONFIG='" : "", env_kubeconfig ? env_kubeconfig : "",
			 env_kubeconfig ? "'" : "");
	if (file)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --kubeconfig '%s'", file);
	if (context)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --context '%s'", context);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " 2>&1");
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char buf[65536];
	size_t len = fread(buf, 1, sizeof(buf) - 1, p);
	buf[len] = 0;
	int st = pclose(p);
	if (st != 0)
		fail_msg("kubectl failed: %s: %s", cmd, buf);
	json_error_t je;
	json_t *j = json_loads(buf, 0, &je);
	if (!j)
		fail_msg("kubectl printed no JSON: %s", buf);
	json_t *ctx = json_array_get(json_object_get(j, "contexts"), 0);
	json_t *cl = json_array_get(json_object_get(j, "clusters"), 0);
	assert_string_equal(json_string_value(json_object_get(j, "current-context")), c->context);
	assert_string_equal(json_string_value(json_object_get(ctx, "name")), c->context);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ctx, "context"), "cluster")),
	    c->cluster);
	const char *user =
	    json_string_value(json_object_get(json_object_get(ctx, "context"), "user"));
	if (c->user)
		assert_string_equal(user ? user : "", c->user);
	const char *ns =
	    json_string_value(json_object_get(json_object_get(ctx, "context"), "namespace"));
	assert_string_equal(ns ? ns : "default", c->namespace);
	const char *server =
	    json_string_value(json_object_get(json_object_get(cl, "cluster"), "server"));
	assert_string_equal(server, c->remote.server);
	print_message(
	    "  kubectl agrees: context %s, cluster %s, user %s, namespace %s, server %s\n",
	    c->context, c->cluster, c->user ? c->user : "-", c->namespace, server);
	json_decref(j);
}

static void test_token_relative_ca(void **state)
{
	(void)state;
	clear_env();
	write_file("a/certs/ca.crt", PEM_CA, 0644);
	write_file("a/config",
		   "apiVersion: v1\n"
		   "kind: Config\n"
		   "clusters:\n"
		   "- name: dev\n"
		   "  cluster:\n"
		   "    server: https://dev.example:6443\n"
		   "    certificate-authority: certs/ca.crt\n"
		   "    tls-server-name: kubernetes.default\n"
		   "users:\n"
		   "- name: alice\n"
		   "  user:\n"
		   "    token: abc.def\n"
		   "contexts:\n"
		   "- name: dev-ctx\n"
		   "  context: {cluster: dev, user: alice, namespace: team-a}\n"
		   "current-context: dev-ctx\n",
		   0600);
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	assert_int_equal(load(path_of("a/config"), NULL, NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "https://dev.example:6443");
	assert_string_equal(c.remote.name, "cluster 'dev'");
	assert_string_equal(c.remote.ca_file, path_of("a/certs/ca.crt"));
	assert_null(c.remote.ca_data);
	assert_string_equal(c.remote.tls_server_name, "kubernetes.default");
	assert_string_equal(c.remote.token, "abc.def");
	assert_false(c.remote.insecure);
	assert_string_equal(c.namespace, "team-a");
	assert_string_equal(c.context, "dev-ctx");
	assert_string_equal(c.user, "alice");
	assert_false(c.in_cluster);
	kubectl_agrees(path_of("a/config"), NULL, NULL, &c);
	ac_k8s_conn_free(&c);

	/* A kubeconfig named relative to the working directory: its relative paths become
	 * absolute (a daemon may change directory later). */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmp), 0);
	int rc_rel = load("a/config", NULL, NULL, &c, &err);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc_rel, 0);
	assert_string_equal(c.remote.ca_file, path_of("a/certs/ca.crt"));
	ac_k8s_conn_free(&c);

	/* An explicit namespace wins; the thin wrapper gives the same. */
	ac_remote_conf_t rc;
	char *ns = NULL;
	ac_k8s_settings_t s = {.kubeconfig = path_of("a/config"), .namespace = "mine"};
	assert_int_equal(ac_k8s_conf_load(&s, &rc, &ns, &err), 0);
	assert_string_equal(ns, "mine");
	assert_string_equal(rc.token, "abc.def");
	free(ns);
	ac_remote_conf_free(&rc);
}

static void test_token_file_cert_files_basic(void **state)
{
	(void)state;
	clear_env();
	write_file("b/config",
		   "clusters:\n"
		   "- name: c1\n"
		   "  cluster:\n"
		   "    server: https://127.0.0.1:6443\n"
		   "    certificate-authority-data: "
		   "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRWdZMlZ5ZEE9PQotLS0tLUVORCBDRVJUSUZJQ0F"
		   "URS0tLS0tCg==\n"
		   "- name: c2\n"
		   "  cluster: {server: 'http://localhost:8080', insecure-skip-tls-verify: true}\n"
		   "users:\n"
		   "- name: tf\n"
		   "  user: {tokenFile: secrets/token}\n"
		   "- name: certs\n"
		   "  user:\n"
		   "    client-certificate: pki/client.crt\n"
		   "    client-key: /abs/client.key\n"
		   "- name: certdata\n"
		   "  user:\n"
		   "    client-certificate-data: "
		   "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRWdZMlZ5ZEE9PQotLS0tLUVORCBDRVJUSUZJQ0F"
		   "URS0tLS0tCg==\n"
		   "    client-key-data: S0VZCg==\n"
		   "    client-certificate: ignored.crt\n"
		   "- name: basic\n"
		   "  user: {username: admin, password: \"p@ss: word\"}\n"
		   "contexts:\n"
		   "- {name: tf, context: {cluster: c1, user: tf}}\n"
		   "- {name: certs, context: {cluster: c1, user: certs}}\n"
		   "- {name: certdata, context: {cluster: c1, user: certdata}}\n"
		   "- {name: basic, context: {cluster: c2, user: basic, namespace: ns2}}\n"
		   "current-context: tf\n",
		   0600);
	const char *cfg = path_of("b/config");
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	assert_int_equal(load(cfg, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.remote.token_file, path_of("b/secrets/token"));
	assert_null(c.remote.token);
	assert_string_equal(c.remote.ca_data, PEM_CA);
	assert_null(c.remote.ca_file);
	assert_string_equal(c.namespace, "default");
	kubectl_agrees(cfg, NULL, NULL, &c);
	ac_k8s_conn_free(&c);

	assert_int_equal(load(cfg, "certs", NULL, &c, &err), 0);
	assert_string_equal(c.remote.cert_file, path_of("b/pki/client.crt"));
	assert_string_equal(c.remote.key_file, "/abs/client.key");
	kubectl_agrees(cfg, NULL, "certs", &c);
	ac_k8s_conn_free(&c);

	assert_int_equal(load(cfg, "certdata", NULL, &c, &err), 0);
	assert_string_equal(c.remote.cert_data, PEM_CA); /* the data wins over the file */
	assert_null(c.remote.cert_file);
	assert_string_equal(c.remote.key_data, "KEY\n");
	ac_k8s_conn_free(&c);

	assert_int_equal(load(cfg, "basic", NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "http://localhost:8080");
	assert_true(c.remote.insecure);
	assert_string_equal(c.remote.username, "admin");
	assert_string_equal(c.remote.password, "p@ss: word");
	assert_string_equal(c.namespace, "ns2");
	kubectl_agrees(cfg, NULL, "basic", &c);
	ac_k8s_conn_free(&c);
}

static const char plugin_ok[] =
    "#!/bin/sh\n"
    "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/exec-info.json\"\n"
    "echo 'some progress on stderr' >&2\n"
    "cat <<EOF\n"
    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\n"
    " \"status\":{\"token\":\"exec-$1-$PLUGIN_FLAVOUR\",\"expirationTimestamp\":"
    "\"2030-01-02T03:04:05Z\"}}\n"
    "EOF\n";

static const char plugin_cert[] =
    "#!/bin/sh\n"
    "cat <<'EOF'\n"
    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\n"
    " \"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nX\\n-----END "
    "CERTIFICATE-----\\n\",\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nY\\n-----END "
    "PRIVATE KEY-----\\n\"}}\n"
    "EOF\n";

static const char plugin_fail[] =
    "#!/bin/sh\n"
    "echo 'contacting the identity provider' >&2\n"
    "echo 'error: you must log in first (run: cloud auth login)' >&2\n"
    "echo '' >&2\n"
    "exit 3\n";

/* It and the child it starts must both be gone after the timeout. */
static const char plugin_hang[] = "#!/bin/sh\n"
				  "sleep 30 &\n"
				  "echo $$ $! > \"$(dirname \"$0\")/hang.pids\"\n"
				  "wait\n";

static const char plugin_bad[] = "#!/bin/sh\necho 'not json'\n";

/* Running or sleeping (not gone, not a zombie). */
static bool alive(int pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_exec_plugins(void **state)
{
	(void)state;
	clear_env();
	write_file("e/bin/plugin-ok", plugin_ok, 0755);
	write_file("e/bin/plugin-cert", plugin_cert, 0755);
	write_file("e/bin/plugin-fail", plugin_fail, 0755);
	write_file("e/bin/plugin-hang", plugin_hang, 0755);
	write_file("e/bin/plugin-bad", plugin_bad, 0755);
	write_file(
	    "e/config",
	    "clusters:\n"
	    "- name: eks\n"
	    "  cluster:\n"
	    "    server: https://eks.example\n"
	    "    certificate-authority-data: "
	    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRWdZMlZ5ZEE9PQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS"
	    "0tCg==\n"
	    "    extensions:\n"
	    "    - name: client.authentication.k8s.io/exec\n"
	    "      extension: {audience: sandbox}\n"
	    "users:\n"
	    "- name: ok\n"
	    "  user:\n"
	    "    exec:\n"
	    "      apiVersion: client.authentication.k8s.io/v1\n"
	    "      command: ./bin/plugin-ok\n"
	    "      args: [first-arg]\n"
	    "      env: [{name: PLUGIN_FLAVOUR, value: mint}]\n"
	    "      interactiveMode: Never\n"
	    "      provideClusterInfo: true\n"
	    "- name: cert\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: "
	    "bin/plugin-cert}\n"
	    "- name: fail\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/plugin-fail,\n"
	    "           interactiveMode: IfAvailable}\n"
	    "- name: hang\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/plugin-hang,\n"
	    "           interactiveMode: Never}\n"
	    "- name: bad\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/plugin-bad,\n"
	    "           interactiveMode: Never}\n"
	    "- name: missing\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: "
	    "no-such-plugin-xyz,\n"
	    "           interactiveMode: Never, installHint: 'install it with apt'}\n"
	    "- name: always\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/plugin-ok,\n"
	    "           interactiveMode: Always}\n"
	    "- name: nomode\n"
	    "  user:\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/plugin-ok}\n"
	    "contexts:\n"
	    "- {name: ok, context: {cluster: eks, user: ok}}\n"
	    "- {name: cert, context: {cluster: eks, user: cert}}\n"
	    "- {name: fail, context: {cluster: eks, user: fail}}\n"
	    "- {name: hang, context: {cluster: eks, user: hang}}\n"
	    "- {name: bad, context: {cluster: eks, user: bad}}\n"
	    "- {name: missing, context: {cluster: eks, user: missing}}\n"
	    "- {name: always, context: {cluster: eks, user: always}}\n"
	    "- {name: nomode, context: {cluster: eks, user: nomode}}\n"
	    "current-context: ok\n",
	    0600);
	const char *cfg = path_of("e/config");
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	size_t len;
	assert_int_equal(load(cfg, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.remote.token, "exec-first-arg-mint");
	assert_int_equal(c.expires_ms, 1893553445000LL);
	kubectl_agrees(cfg, NULL, NULL, &c);
	ac_k8s_conn_free(&c);
	/* KUBERNETES_EXEC_INFO as client-go sets it, with the cluster (provideClusterInfo). */
	char *info = NULL;
	assert_int_equal(
	    ac_read_file_at(AT_FDCWD, path_of("e/bin/exec-info.json"), 65536, &info, &len, &err),
	    0);
	json_t *j = json_loads(info, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "ExecCredential");
	assert_string_equal(json_string_value(json_object_get(j, "apiVersion")),
			    "client.authentication.k8s.io/v1");
	json_t *spec = json_object_get(j, "spec");
	assert_true(json_is_false(json_object_get(spec, "interactive")));
	json_t *cl = json_object_get(spec, "cluster");
	assert_string_equal(json_string_value(json_object_get(cl, "server")),
			    "https://eks.example");
	assert_non_null(json_object_get(cl, "certificate-authority-data"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(cl, "config"), "audience")),
	    "sandbox");
	json_decref(j);
	free(info);

	assert_int_equal(load(cfg, "cert", NULL, &c, &err), 0);
	assert_null(c.remote.token);
	assert_non_null(strstr(c.remote.cert_data, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(c.remote.key_data, "BEGIN PRIVATE KEY"));
	assert_int_equal(c.expires_ms, 0);
	ac_k8s_conn_free(&c);

	expect_error(cfg, "fail", "exit status 3): error: you must log in first");
	ac_k8s_settings_t hs = {.kubeconfig = cfg, .context = "hang", .exec_timeout_ms = 700};
	int64_t t0 = ac_time_now_ms();
	assert_int_equal(ac_k8s_conn_load(&hs, &c, &err), -1);
	assert_true(ac_time_now_ms() - t0 < 5000);
	assert_non_null(strstr(err->msg, "did not finish within 700 ms"));
	ac_error_free(err);
	err = NULL;
	char *pids = NULL;
	assert_int_equal(
	    ac_read_file_at(AT_FDCWD, path_of("e/bin/hang.pids"), 100, &pids, &len, &err), 0);
	int p1 = 0, p2 = 0;
	assert_int_equal(sscanf(pids, "%d %d", &p1, &p2), 2);
	free(pids);
	/* Both were killed (and the plugin reaped): nothing is left running. The orphaned
	 * child may stay a zombie until whoever adopted it reaps it. */
	for (int i = 0; i < 100 && alive(p2); i++)
		usleep(10000);
	assert_int_equal(kill(p1, 0), -1);
	assert_false(alive(p2));
	expect_error(cfg, "bad", "did not print an ExecCredential");
	expect_error(cfg, "missing", "install it with apt");
	expect_error(cfg, "always", "interactiveMode Always");
	expect_error(cfg, "nomode", "'interactiveMode' is required");

	/* The fuzzing switch: no plugin runs. */
	ac_k8s_settings_t s = {.kubeconfig = cfg, .no_exec = true};
	assert_int_equal(ac_k8s_conn_load(&s, &c, &err), -1);
	assert_non_null(strstr(err->msg, "exec plugins are disabled"));
	ac_error_free(err);
}

static void test_merged_kubeconfig(void **state)
{
	(void)state;
	clear_env();
	write_file("m/one",
		   "clusters:\n"
		   "- name: shared\n"
		   "  cluster: {server: 'https://one.example:1'}\n"
		   "users:\n"
		   "- name: u\n"
		   "  user: {token: from-one}\n"
		   "contexts:\n"
		   "- name: ctx-one\n"
		   "  context: {cluster: shared, user: u, namespace: one-ns}\n"
		   "current-context: ctx-one\n",
		   0600);
	write_file("m/two",
		   "clusters:\n"
		   "- name: shared\n"
		   "  cluster: {server: 'https://two.example:2', insecure-skip-tls-verify: true}\n"
		   "- name: only-two\n"
		   "  cluster: {server: 'https://two-only.example:2'}\n"
		   "users:\n"
		   "- name: u\n"
		   "  user: {token: from-two, username: ignored}\n"
		   "- name: v\n"
		   "  user: {token: vee}\n"
		   "contexts:\n"
		   "- name: ctx-two\n"
		   "  context: {cluster: shared, user: v}\n"
		   "- name: ctx-only-two\n"
		   "  context: {cluster: only-two, user: u, namespace: two-ns}\n"
		   "current-context: ctx-two\n",
		   0600);
	write_file("m/empty", "", 0600);
	write_file("m/nocurrent", "contexts: []\n", 0600);
	char list[4 * PATH_MAX];
	/* A missing file, an empty entry and a repeated file are skipped, as kubectl does. */
	snprintf(list, sizeof(list), "%s::%s:%s:%s:%s", path_of("m/nocurrent"),
		 path_of("m/missing"), path_of("m/one"), path_of("m/empty"), path_of("m/two"));
	setenv("KUBECONFIG", list, 1);
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.context, "ctx-one"); /* the first file to set current-context */
	assert_string_equal(c.remote.server, "https://one.example:1");
	assert_string_equal(c.remote.token, "from-one");
	assert_false(c.remote.insecure); /* the first file's whole entry, nothing of the second */
	assert_null(c.remote.username);
	assert_string_equal(c.namespace, "one-ns");
	kubectl_agrees(NULL, list, NULL, &c);
	ac_k8s_conn_free(&c);

	/* The second file's context, with the first file's cluster and user entries. */
	assert_int_equal(load(NULL, "ctx-only-two", NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "https://two-only.example:2");
	assert_string_equal(c.remote.token, "from-one");
	assert_string_equal(c.namespace, "two-ns");
	kubectl_agrees(NULL, list, "ctx-only-two", &c);
	ac_k8s_conn_free(&c);

	assert_int_equal(load(NULL, "ctx-two", NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "https://one.example:1");
	assert_string_equal(c.remote.token, "vee");
	kubectl_agrees(NULL, list, "ctx-two", &c);
	ac_k8s_conn_free(&c);

	/* The other order. */
	snprintf(list, sizeof(list), "%s:%s", path_of("m/two"), path_of("m/one"));
	setenv("KUBECONFIG", list, 1);
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.context, "ctx-two");
	assert_string_equal(c.remote.server, "https://two.example:2");
	assert_true(c.remote.insecure);
	kubectl_agrees(NULL, list, NULL, &c);
	ac_k8s_conn_free(&c);
	/* Conflicting entries inside one user are an error of that user. */
	expect_error(NULL, "ctx-only-two", "username/password and a bearer token");

	/* No current-context anywhere. */
	snprintf(list, sizeof(list), "%s:%s", path_of("m/nocurrent"), path_of("m/empty"));
	setenv("KUBECONFIG", list, 1);
	expect_error(NULL, NULL, "no current-context is set");
	snprintf(list, sizeof(list), "%s", path_of("m/missing"));
	setenv("KUBECONFIG", list, 1);
	expect_error(NULL, NULL, "none of the files in $KUBECONFIG");
	unsetenv("KUBECONFIG");
	/* An explicit file wins over $KUBECONFIG; a missing explicit file is an error. */
	setenv("KUBECONFIG", path_of("m/two"), 1);
	assert_int_equal(load(path_of("m/one"), NULL, NULL, &c, &err), 0);
	assert_string_equal(c.context, "ctx-one");
	ac_k8s_conn_free(&c);
	expect_error(path_of("m/missing"), NULL, "m/missing");
	expect_error(path_of("m/one"), "nope", "context 'nope' does not exist");
	unsetenv("KUBECONFIG");
}

static void test_default_home_config(void **state)
{
	(void)state;
	clear_env();
	expect_error(NULL, NULL, ".kube/config does not exist");
	write_file(
	    "home/.kube/config",
	    "{\"apiVersion\": \"v1\", \"kind\": \"Config\",\n"
	    "\t\"clusters\": [{\"name\": \"j\", \"cluster\": {\"server\": \"https://j.example\",\n"
	    "\t\t\"insecure-skip-tls-verify\": true}}],\n"
	    "\t\"users\": [{\"name\": \"ju\", \"user\": {\"token\": \"jt\"}}],\n"
	    "\t\"contexts\": [{\"name\": \"jc\", \"context\": {\"cluster\": \"j\", \"user\": "
	    "\"ju\"}}],\n"
	    "\t\"current-context\": \"jc\"}\n",
	    0600);
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "https://j.example");
	assert_true(c.remote.insecure);
	assert_string_equal(c.remote.token, "jt");
	kubectl_agrees(path_of("home/.kube/config"), NULL, NULL, &c);
	ac_k8s_conn_free(&c);
	/* "~/" in the configured path. */
	assert_int_equal(load("~/.kube/config", NULL, NULL, &c, &err), 0);
	assert_string_equal(c.context, "jc");
	ac_k8s_conn_free(&c);
}

static void test_in_cluster(void **state)
{
	(void)state;
	clear_env();
	write_file("sa/token", "sa-token\n", 0600);
	write_file("sa/ca.crt", PEM_CA, 0644);
	write_file("sa/namespace", "sa-ns\n", 0644);
	write_file("home/.kube/config", "current-context: x\n", 0600);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	setenv(AC_K8S_SA_DIR_ENV, path_of("sa"), 1);
	ac_k8s_conn_t c;
	ac_error_t *err = NULL;
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_true(c.in_cluster);
	assert_string_equal(c.remote.server, "https://127.0.0.1:6443");
	assert_string_equal(c.remote.token_file, path_of("sa/token"));
	assert_null(c.remote.token);
	assert_string_equal(c.remote.ca_file, path_of("sa/ca.crt"));
	assert_string_equal(c.namespace, "sa-ns");
	assert_null(c.context);
	ac_k8s_conn_free(&c);
	setenv("POD_NAMESPACE", "pod-ns", 1);
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.namespace, "pod-ns");
	ac_k8s_conn_free(&c);
	assert_int_equal(load(NULL, NULL, "explicit", &c, &err), 0);
	assert_string_equal(c.namespace, "explicit");
	ac_k8s_conn_free(&c);
	unsetenv("POD_NAMESPACE");
	setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
	assert_int_equal(load(NULL, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.remote.server, "https://[::1]:6443");
	ac_k8s_conn_free(&c);
	/* A configured context means the kubeconfig, even inside a cluster. */
	write_file("ic/config",
		   "clusters: [{name: k, cluster: {server: 'https://k.example'}}]\n"
		   "contexts: [{name: kc, context: {cluster: k}}]\n",
		   0600);
	assert_int_equal(load(path_of("ic/config"), "kc", NULL, &c, &err), 0);
	assert_false(c.in_cluster);
	assert_string_equal(c.remote.server, "https://k.example");
	assert_null(c.remote.token);
	ac_k8s_conn_free(&c);
	/* No token file: not usable in-cluster, the kubeconfig is tried and its error says
	 * why in-cluster was not used. */
	unlink(path_of("sa/token"));
	unlink(path_of("home/.kube/config"));
	expect_error(NULL, NULL, "in-cluster: ");
	clear_env();
}

static void test_bad_and_unsupported(void **state)
{
	(void)state;
	clear_env();
	write_file("bad/yaml",
		   "apiVersion: v1\n"
		   "clusters:\n"
		   "- name: a\n"
		   "  cluster: {server: https://a\n"
		   "users: []\n",
		   0600);
	expect_error(path_of("bad/yaml"), NULL, "line 5");
	write_file("bad/tabs", "clusters:\n\t- name: a\n", 0600);
	expect_error(path_of("bad/tabs"), NULL, "line 2");
	write_file("bad/list", "clusters: {a: b}\n", 0600);
	expect_error(path_of("bad/list"), NULL, "'clusters' is not a list");
	write_file("bad/noname", "clusters:\n- cluster: {server: x}\n", 0600);
	expect_error(path_of("bad/noname"), NULL, "clusters[0] has no name");
	write_file("bad/scalar", "just text\n", 0600);
	expect_error(path_of("bad/scalar"), NULL, "not a mapping");
	write_file("bad/laughs",
		   "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		   0600);
	expect_error(path_of("bad/laughs"), NULL, "nested or repeated too deeply");
	write_file("bad/unsupported",
		   "clusters:\n"
		   "- {name: p, cluster: {server: 'https://p', proxy-url: 'http://proxy:3128'}}\n"
		   "- {name: q, cluster: {server: 'https://q', insecure-skip-tls-verify: true,\n"
		   "   certificate-authority: ca.crt}}\n"
		   "- {name: r, cluster: {}}\n"
		   "- {name: s, cluster: {server: 'https://s', insecure-skip-tls-verify: maybe}}\n"
		   "- {name: g, cluster: {server: 'https://g'}}\n"
		   "users:\n"
		   "- {name: gcp, user: {auth-provider: {name: gcp}}}\n"
		   "- {name: imp, user: {as: someone-else}}\n"
		   "- {name: half, user: {client-certificate: c.crt}}\n"
		   "- {name: b64, user: {client-certificate-data: '!!!', client-key-data: '!!!'}}\n"
		   "contexts:\n"
		   "- {name: proxy, context: {cluster: p}}\n"
		   "- {name: both, context: {cluster: q}}\n"
		   "- {name: noserver, context: {cluster: r}}\n"
		   "- {name: badbool, context: {cluster: s}}\n"
		   "- {name: authprov, context: {cluster: g, user: gcp}}\n"
		   "- {name: imp, context: {cluster: g, user: imp}}\n"
		   "- {name: half, context: {cluster: g, user: half}}\n"
		   "- {name: nouser, context: {cluster: g, user: ghost}}\n"
		   "- {name: nocluster, context: {cluster: ghost}}\n"
		   "- {name: b64, context: {cluster: g, user: b64}}\n",
		   0600);
	const char *f = path_of("bad/unsupported");
	expect_error(f, "proxy", "'proxy-url' is not supported");
	expect_error(f, "both", "insecure-skip-tls-verify cannot both be set");
	expect_error(f, "noserver", "cluster 'r': no 'server'");
	expect_error(f, "badbool", "'insecure-skip-tls-verify' is not true or false");
	expect_error(f, "authprov", "'auth-provider' is not supported");
	expect_error(f, "imp", "'as' is not supported");
	expect_error(f, "nouser", "user 'ghost' is not defined");
	expect_error(f, "nocluster", "cluster 'ghost' is not defined");
	expect_error(f, "half", "'client-certificate' is set without 'client-key'");
	expect_error(f, "b64", "'client-certificate-data' is not valid base64");
}

static void test_yaml_parse(void **state)
{
	(void)state;
	json_t *j = NULL;
	ac_error_t *err = NULL;
	const char *y = "a: ~\nb: ''\nc: \"x\"\nd: [1, two]\ne: {f: null}\ng:\n";
	assert_int_equal(ac_k8s_yaml_parse(y, strlen(y), "t", &j, &err), 0);
	assert_true(json_is_null(json_object_get(j, "a")));
	assert_string_equal(json_string_value(json_object_get(j, "b")), "");
	assert_string_equal(json_string_value(json_object_get(j, "c")), "x");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "d"), 0)), "1");
	assert_true(json_is_null(json_object_get(json_object_get(j, "e"), "f")));
	assert_true(json_is_null(json_object_get(j, "g")));
	json_decref(j);
	/* Empty text is an empty configuration. */
	assert_int_equal(ac_k8s_yaml_parse("\n\n", 2, "t", &j, &err), 0);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
	/* A NUL byte is no text. */
	assert_int_equal(ac_k8s_yaml_parse("a: b\0c", 6, "t", &j, &err), -1);
	ac_error_free(err);
}

static void test_api_errors(void **state)
{
	(void)state;
	struct {
		long status;
		const char *body;
		long retry;
		ac_error_kind_t kind;
		const char *msg;
	} cases[] = {
	    {401,
	     "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"Unauthorized\","
	     "\"reason\":\"Unauthorized\",\"code\":401}",
	     -1, AC_ERR_PERMISSION,
	     "get pod agentcell-a on cluster 'kind': unauthorized (the cluster did not accept the "
	     "credentials) (HTTP 401): Unauthorized"},
	    {404,
	     "{\"kind\":\"Status\",\"message\":\"pods \\\"agentcell-a\\\" not found\","
	     "\"reason\":\"NotFound\",\"details\":{\"name\":\"agentcell-a\",\"kind\":\"pods\"}}",
	     -1, AC_ERR_NOT_FOUND,
	     "get pod agentcell-a on cluster 'kind': not found (HTTP 404): pods \"agentcell-a\" "
	     "not found"},
	    {409,
	     "{\"kind\":\"Status\",\"message\":\"pods \\\"agentcell-a\\\" already exists\","
	     "\"reason\":\"AlreadyExists\"}",
	     -1, AC_ERR_EXISTS,
	     "get pod agentcell-a on cluster 'kind': already exists (HTTP 409): pods "
	     "\"agentcell-a\" already exists"},
	    {409,
	     "{\"kind\":\"Status\",\"message\":\"the object has been modified\","
	     "\"reason\":\"Conflict\"}",
	     -1, AC_ERR_STATE,
	     "get pod agentcell-a on cluster 'kind': conflict (HTTP 409): the object has been "
	     "modified"},
	    {422,
	     "{\"kind\":\"Status\",\"message\":\"Pod \\\"X\\\" is invalid\",\"reason\":\"Invalid\","
	     "\"details\":{\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid "
	     "value: \\\"X\\\"\",\"field\":\"metadata.name\"},{\"reason\":\"FieldValueRequired\","
	     "\"message\":\"Required value\",\"field\":\"spec.containers\"}]}}",
	     -1, AC_ERR_INVALID,
	     "get pod agentcell-a on cluster 'kind': invalid (HTTP 422): Pod \"X\" is invalid "
	     "[metadata.name: Invalid value: \"X\"; spec.containers: Required value]"},
	    {429,
	     "{\"kind\":\"Status\",\"message\":\"Too many requests\",\"reason\":"
	     "\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":3}}",
	     -1, AC_ERR_BACKEND,
	     "get pod agentcell-a on cluster 'kind': too many requests (HTTP 429): Too many "
	     "requests (retry after 3 s)"},
	    {503, "<html><body>upstream\nconnect error</body></html>", 9, AC_ERR_BACKEND,
	     "get pod agentcell-a on cluster 'kind': service unavailable (HTTP 503): "
	     "<html><body>upstream (retry after 9 s)"},
	    {500, "", -1, AC_ERR_BACKEND,
	     "get pod agentcell-a on cluster 'kind': internal error of the API server (HTTP 500)"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		ac_remote_resp_t r = {.status = cases[i].status,
				      .body = (char *)cases[i].body,
				      .len = strlen(cases[i].body),
				      .retry_after = cases[i].retry,
				      .json = json_loads(cases[i].body, 0, NULL)};
		ac_error_t *err = NULL;
		assert_int_equal(
		    ac_k8s_error_from(&r, "cluster 'kind'", "get pod agentcell-a", &err), -1);
		assert_int_equal(err->kind, cases[i].kind);
		assert_string_equal(err->msg, cases[i].msg);
		ac_error_free(err);
		json_decref(r.json);
	}
	ac_remote_resp_t ok = {.status = 201, .retry_after = -1};
	ac_error_t *err = NULL;
	assert_int_equal(ac_k8s_error_from(&ok, "c", "x", &err), 0);
	assert_null(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_relative_ca),
	    cmocka_unit_test(test_token_file_cert_files_basic),
	    cmocka_unit_test(test_exec_plugins),
	    cmocka_unit_test(test_merged_kubeconfig),
	    cmocka_unit_test(test_default_home_config),
	    cmocka_unit_test(test_in_cluster),
	    cmocka_unit_test(test_bad_and_unsupported),
	    cmocka_unit_test(test_yaml_parse),
	    cmocka_unit_test(test_api_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
