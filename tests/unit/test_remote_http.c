/* The remote HTTPS client (src/backends/remote/http.c) against a real HTTPS server on
 * 127.0.0.1 (tests/integration/https_echo_server.py, Python's ssl module) with a CA, a
 * server certificate and a client certificate that this test makes with openssl: CA
 * verification (ca_data, ca_file, a wrong CA, insecure), tls_server_name, client
 * certificates (files and PEM data), bearer token and token file rotation, basic auth,
 * extra headers, Retry-After, redirects not followed, the body cap, timeouts, keep-alive,
 * connection refused, and Kubernetes API errors (ac_k8s_error_from) on real answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "backends/kubernetes/k8s.h"
#include "backends/remote/remote.h"
#include "testsrv.h"

static char tmp[PATH_MAX];
static ac_test_server_t server;
static int port;
static bool ready;
static const char *skip_why = "";

static char *slurp(const char *name)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	char *buf = NULL;
	size_t len;
	ac_error_t *e = NULL;
	if (ac_read_file_at(AT_FDCWD, p, 1 << 20, &buf, &len, &e) < 0) {
		ac_error_free(e);
		return NULL;
	}
	return buf;
}

static char *path_of(const char *name)
{
	return ac_test_path(tmp, name);
}

static int setup(void **state)
{
	(void)state;
	/* The server is on loopback: a proxy of the environment must not get in between. */
	setenv("no_proxy", "*", 1);
	setenv("NO_PROXY", "*", 1);
	snprintf(tmp, sizeof(tmp), "/tmp/ac-remote-http.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	char script[PATH_MAX];
	if (!ac_test_find_file("tests/integration/https_echo_server.py", script)) {
		skip_why = "https_echo_server.py not found";
		return 0;
	}
	if (system("command -v openssl >/dev/null && command -v python3 >/dev/null") != 0) {
		skip_why = "openssl or python3 missing";
		return 0;
	}
	if (!ac_test_make_certs(tmp, "DNS:localhost,DNS:kubernetes.internal.test",
				"/CN=agent-user/O=agentcell"))
		return -1;
	char *argv[] = {"python3",     script,
			"--cert",      path_of("srv.crt"),
			"--key",       path_of("srv.key"),
			"--client-ca", path_of("ca.crt"),
			"--lifetime",  "600",
			NULL};
	if (!ac_test_server_start(&server, NULL, argv))
		return -1;
	port = server.port;
	ready = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ac_test_server_stop(&server);
	ac_error_t *e = NULL;
	ac_rm_rf_at(AT_FDCWD, tmp, &e);
	ac_error_free(e);
	return 0;
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (!ready) {                                                                      \
			fprintf(stderr, "# SKIP: %s\n", skip_why);                                 \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static void base_conf(ac_remote_conf_t *c, const char *host)
{
	memset(c, 0, sizeof(*c));
	if (asprintf(&c->server, "https://%s:%d", host, port) < 0)
		abort();
	c->name = strdup("cluster 'test'");
	c->ca_file = strdup(path_of("ca.crt"));
}

/* One request; returns the call's result, and the answer in *resp. */
static int call(const ac_remote_conf_t *c, const char *method, const char *path, const json_t *body,
		ac_remote_resp_t *resp, ac_error_t **err)
{
	ac_remote_t *r = NULL;
	if (ac_remote_open(c, &r, err) < 0)
		return -1;
	int rc = ac_remote_request(r, method, path, body, NULL, resp, err);
	ac_remote_close(r);
	return rc;
}

/* One request that must get an answer with status want; the answer is not kept. */
static void expect_status(const ac_remote_conf_t *c, const char *method, const char *path,
			  long want)
{
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(c, method, path, NULL, &resp, &err), 0);
	assert_int_equal(resp.status, want);
	ac_remote_resp_free(&resp);
}

static const char *jstr(const ac_remote_resp_t *r, const char *key)
{
	return json_string_value(json_object_get(r->json, key));
}

static void test_ca_file_and_data(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/echo?x=1", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(jstr(&resp, "method"), "GET");
	assert_string_equal(jstr(&resp, "path"), "/echo?x=1");
	assert_null(jstr(&resp, "authorization"));
	assert_int_equal(resp.retry_after, -1);
	ac_remote_resp_free(&resp);

	/* The same CA as PEM bytes (kubeconfig's certificate-authority-data). */
	free(c.ca_file);
	c.ca_file = NULL;
	c.ca_data = slurp("ca.crt");
	assert_non_null(c.ca_data);
	expect_status(&c, "GET", "/echo", 200);
	ac_remote_conf_free(&c);
}

static void test_wrong_ca_fails(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	free(c.ca_file);
	c.ca_file = NULL;
	c.ca_data = slurp("wrong-ca.crt");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), -1);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(err->msg, "cluster 'test'"));
	assert_non_null(strstr(err->msg, "TLS verification of the server failed"));
	assert_null(strchr(err->msg, '\n'));
	print_message("  error: %s\n", err->msg);
	ac_error_free(err);
	err = NULL;
	/* Without a CA the system's roots are used: they do not know ours either. */
	free(c.ca_data);
	c.ca_data = NULL;
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "TLS verification"));
	ac_error_free(err);
	err = NULL;
	/* insecure-skip-tls-verify. */
	c.insecure = true;
	expect_status(&c, "GET", "/echo", 200);
	ac_remote_conf_free(&c);
}

static void test_tls_server_name(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	/* The certificate names localhost and kubernetes.internal.test, not 127.0.0.1. */
	base_conf(&c, "127.0.0.1");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "TLS verification"));
	ac_error_free(err);
	err = NULL;
	c.tls_server_name = strdup("kubernetes.internal.test");
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(jstr(&resp, "sni"), "kubernetes.internal.test");
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	assert_string_equal(jstr(&resp, "host"), host); /* the real authority */
	ac_remote_resp_free(&resp);
	free(c.tls_server_name);
	c.tls_server_name = strdup("other.internal.test");
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "TLS verification"));
	ac_error_free(err);
	ac_remote_conf_free(&c);
}

static void test_client_cert(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	expect_status(&c, "GET", "/need-cert", 401);

	c.cert_file = strdup(path_of("client.crt"));
	c.key_file = strdup(path_of("client.key"));
	assert_int_equal(call(&c, "GET", "/need-cert", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(jstr(&resp, "client_cn"), "agent-user");
	ac_remote_resp_free(&resp);

	free(c.cert_file);
	free(c.key_file);
	c.cert_file = c.key_file = NULL;
	c.cert_data = slurp("client.crt");
	c.key_data = slurp("client.key");
	assert_int_equal(call(&c, "GET", "/need-cert", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(jstr(&resp, "client_cn"), "agent-user");
	ac_remote_resp_free(&resp);
	ac_remote_conf_free(&c);
}

static void test_auth_headers(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	c.token = strdup("static-token");
	char *hdrs[] = {strdup("X-Test: yes"), NULL};
	c.headers = calloc(2, sizeof(char *));
	c.headers[0] = hdrs[0];
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "authorization"), "Bearer static-token");
	assert_string_equal(jstr(&resp, "x_test"), "yes");
	ac_remote_resp_free(&resp);

	/* token_file is re-read at every request (a rotated service account token). */
	FILE *f = fopen(path_of("token"), "w");
	fputs("first-token\n", f);
	fclose(f);
	c.token_file = strdup(path_of("token"));
	ac_remote_t *r = NULL;
	assert_int_equal(ac_remote_open(&c, &r, &err), 0);
	assert_int_equal(ac_remote_request(r, "GET", "/echo", NULL, NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "authorization"), "Bearer first-token");
	long port1 = (long)json_integer_value(json_object_get(resp.json, "peer_port"));
	ac_remote_resp_free(&resp);
	f = fopen(path_of("token"), "w");
	fputs("second-token", f);
	fclose(f);
	assert_int_equal(ac_remote_request(r, "GET", "/echo", NULL, NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "authorization"), "Bearer second-token");
	/* Keep-alive: the same connection (same client port) served both. */
	assert_int_equal(json_integer_value(json_object_get(resp.json, "peer_port")), port1);
	ac_remote_resp_free(&resp);
	/* A failed re-read keeps the last token. */
	unlink(path_of("token"));
	assert_int_equal(ac_remote_request(r, "GET", "/echo", NULL, NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "authorization"), "Bearer second-token");
	ac_remote_resp_free(&resp);
	ac_remote_close(r);

	/* Basic auth. */
	free(c.token);
	free(c.token_file);
	c.token = c.token_file = NULL;
	c.username = strdup("admin");
	c.password = strdup("s3cret");
	assert_int_equal(call(&c, "GET", "/echo", NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "authorization"), "Basic YWRtaW46czNjcmV0");
	ac_remote_resp_free(&resp);

	/* A token with a line break would inject headers. */
	c.token = strdup("abc\r\nX-Evil: 1");
	assert_int_equal(ac_remote_open(&c, &r, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	ac_remote_conf_free(&c);
}

static void test_methods_and_body(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_t *r = NULL;
	ac_error_t *err = NULL;
	ac_remote_resp_t resp;
	assert_int_equal(ac_remote_open(&c, &r, &err), 0);
	json_t *body = json_pack("{s:s}", "kind", "Pod");
	assert_int_equal(ac_remote_request(r, "POST", "/api/v1/namespaces/default/pods", body, NULL,
					   &resp, &err),
			 0);
	assert_string_equal(jstr(&resp, "method"), "POST");
	assert_string_equal(jstr(&resp, "content_type"), "application/json");
	assert_string_equal(jstr(&resp, "body"), "{\"kind\":\"Pod\"}");
	ac_remote_resp_free(&resp);
	assert_int_equal(
	    ac_remote_request(r, "PATCH", "/p", body, "application/merge-patch+json", &resp, &err),
	    0);
	assert_string_equal(jstr(&resp, "method"), "PATCH");
	assert_string_equal(jstr(&resp, "content_type"), "application/merge-patch+json");
	ac_remote_resp_free(&resp);
	/* A GET after a POST on the same handle is a GET again. */
	assert_int_equal(ac_remote_request(r, "DELETE", "/d", NULL, NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "method"), "DELETE");
	ac_remote_resp_free(&resp);
	assert_int_equal(ac_remote_request(r, "GET", "/g", NULL, NULL, &resp, &err), 0);
	assert_string_equal(jstr(&resp, "method"), "GET");
	assert_string_equal(jstr(&resp, "body"), "");
	ac_remote_resp_free(&resp);
	/* Redirects are answers, not followed. */
	assert_int_equal(ac_remote_request(r, "GET", "/redirect", NULL, NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 302);
	assert_null(resp.json);
	ac_remote_resp_free(&resp);
	/* Bad paths never reach the wire. */
	assert_int_equal(ac_remote_request(r, "GET", "no-slash", NULL, NULL, &resp, &err), -1);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_remote_request(r, "GET", "/a\r\nHost: x", NULL, NULL, &resp, &err), -1);
	ac_error_free(err);
	json_decref(body);
	ac_remote_close(r);
	ac_remote_conf_free(&c);
}

static void test_retry_after(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/retry-after/7", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 429);
	assert_int_equal(resp.retry_after, 7);
	ac_error_t *kerr = NULL;
	assert_int_equal(ac_k8s_error_from(&resp, "cluster 'test'", "list pods", &kerr), -1);
	assert_int_equal(kerr->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(kerr->msg, "list pods on cluster 'test': too many requests"));
	assert_non_null(strstr(kerr->msg, "retry after 7 s"));
	ac_error_free(kerr);
	ac_remote_resp_free(&resp);
	assert_int_equal(call(&c, "GET", "/retry-date", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 429);
	assert_true(resp.retry_after >= 100 && resp.retry_after <= 121);
	ac_remote_resp_free(&resp);
	ac_remote_conf_free(&c);
}

static void test_status_errors(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "POST", "/status/403", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 403);
	assert_non_null(resp.json);
	assert_int_equal(ac_k8s_error_from(&resp, c.name, "create pod agentcell-box", &err), -1);
	assert_int_equal(err->kind, AC_ERR_PERMISSION);
	assert_string_equal(
	    err->msg, "create pod agentcell-box on cluster 'test': forbidden (HTTP 403): pods "
		      "\"x\" is forbidden: User \"u\" cannot create resource \"pods\"");
	ac_error_free(err);
	ac_remote_resp_free(&resp);
	ac_remote_conf_free(&c);
}

static void test_body_cap(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/big/1", NULL, &resp, &err), 0);
	assert_int_equal(resp.len, 1024 * 1024);
	ac_remote_resp_free(&resp);
	assert_int_equal(call(&c, "GET", "/big/65", NULL, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "larger than 64 MiB"));
	assert_non_null(strstr(err->msg, "cluster 'test'"));
	assert_null(resp.body);
	ac_error_free(err);
	ac_remote_conf_free(&c);
}

static void test_timeout(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	c.timeout_ms = 300;
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/sleep/3000", NULL, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "cluster 'test'"));
	assert_non_null(strstr(err->msg, "timed out after 300 ms"));
	print_message("  error: %s\n", err->msg);
	ac_error_free(err);
	ac_remote_conf_free(&c);
}

static void test_refused(void **state)
{
	(void)state;
	/* A port nobody listens on: bound, then closed. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	close(s);
	ac_remote_conf_t c = {0};
	assert_true(asprintf(&c.server, "https://127.0.0.1:%d", ntohs(a.sin_port)) > 0);
	c.name = strdup("cluster 'gone'");
	ac_remote_resp_t resp;
	ac_error_t *err = NULL;
	assert_int_equal(call(&c, "GET", "/api", NULL, &resp, &err), -1);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(err->msg, "cluster 'gone' at https://127.0.0.1:"));
	assert_non_null(strstr(err->msg, "connection refused"));
	print_message("  error: %s\n", err->msg);
	ac_error_free(err);
	ac_remote_conf_free(&c);

	/* Only http and https URLs. */
	ac_remote_conf_t f = {.server = strdup("file:///etc/passwd"), .name = strdup("x")};
	ac_remote_t *r = NULL;
	err = NULL;
	assert_int_equal(ac_remote_open(&f, &r, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	ac_remote_conf_free(&f);
}

typedef struct counted {
	size_t n, stop_at;
} counted_t;

static int count_data(void *arg, const char *d, size_t n)
{
	(void)d;
	counted_t *c = arg;
	c->n += n;
	return c->stop_at && c->n >= c->stop_at;
}

static bool stop_now(void *arg)
{
	return *(bool *)arg;
}

/* ac_remote_stream: the body to the callback as it comes, no overall timeout, the ends a
 * caller asks for (callback, wake descriptor, stop), a non-2xx answer kept, refused. */
static void test_stream(void **state)
{
	(void)state;
	NEED_SERVER();
	ac_remote_conf_t c;
	base_conf(&c, "localhost");
	c.timeout_ms = 300; /* the connect timeout only: a stream has no overall one */
	ac_remote_t *r = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_remote_open(&c, &r, &err), 0);
	counted_t n = {0};
	ac_remote_stream_t q = {.path = "/big/2", .on_data = count_data, .arg = &n};
	ac_remote_resp_t resp;
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(n.n, 2 * 1024 * 1024);
	assert_null(resp.body); /* a 2xx body went to the callback only */
	ac_remote_resp_free(&resp);

	n = (counted_t){.stop_at = 1};
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 1);
	assert_true(n.n >= 1 && n.n < 2 * 1024 * 1024);
	ac_remote_resp_free(&resp);

	/* Slower than the request timeout, which does not apply. */
	n = (counted_t){0};
	q.path = "/sleep/1000";
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_true(n.n > 0);
	ac_remote_resp_free(&resp);

	n = (counted_t){0};
	q.path = "/status/403";
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 0);
	assert_int_equal(resp.status, 403);
	assert_int_equal(n.n, 0);
	assert_non_null(resp.json);
	assert_int_equal(json_integer_value(json_object_get(resp.json, "code")), 403);
	ac_remote_resp_free(&resp);

	/* A wake descriptor that is readable, and a stop that says yes, end a slow answer
	 * (else it would come after 5 s, with 0). */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	q.path = "/sleep/5000";
	q.wake = p;
	q.nwake = 1;
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 1);
	ac_remote_resp_free(&resp);
	close(p[0]);
	close(p[1]);
	bool yes = true;
	q.wake = NULL;
	q.nwake = 0;
	q.stop = stop_now;
	q.arg = &yes;
	q.on_data = NULL;
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), 1);
	ac_remote_resp_free(&resp);
	/* r serves requests after streams stopped halfway. */
	assert_int_equal(ac_remote_request(r, "GET", "/echo", NULL, NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	ac_remote_resp_free(&resp);
	ac_remote_close(r);
	ac_remote_conf_free(&c);

	/* No answer: one line naming the remote. */
	ac_remote_conf_t g = {.server = strdup("https://127.0.0.1:1"),
			      .name = strdup("cluster 'gone'")};
	assert_int_equal(ac_remote_open(&g, &r, &err), 0);
	q = (ac_remote_stream_t){.path = "/x"};
	assert_int_equal(ac_remote_stream(r, &q, &resp, &err), -1);
	assert_non_null(strstr(err->msg, "cluster 'gone'"));
	ac_error_free(err);
	ac_remote_close(r);
	ac_remote_conf_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ca_file_and_data), cmocka_unit_test(test_wrong_ca_fails),
	    cmocka_unit_test(test_tls_server_name),  cmocka_unit_test(test_client_cert),
	    cmocka_unit_test(test_auth_headers),     cmocka_unit_test(test_methods_and_body),
	    cmocka_unit_test(test_retry_after),	     cmocka_unit_test(test_status_errors),
	    cmocka_unit_test(test_body_cap),	     cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_refused),	     cmocka_unit_test(test_stream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
