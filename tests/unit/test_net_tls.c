/* Unit tests for src/net/tls.c: the interception CA (files, modes, loading, a key that
 * does not match), leaves minted and cached per host, real handshakes over a socketpair
 * between ac_tls_accept and ac_tls_connect (bytes both ways, hostname and IP
 * verification, an untrusted CA), ALPN and the TLS 1.2 floor against the openssl CLI as
 * an independent client, the leaf checked by `openssl verify` and `openssl x509`, and the
 * sandbox's CA bundle. OpenSSL comes through the library's dlopen; the test links none.
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "net/net.h"

extern char **environ;

static char dir[] = "/tmp/ac-tls-test-XXXXXX";
static char ca_cert[PATH_MAX], ca_key[PATH_MAX], ca2_cert[PATH_MAX], ca2_key[PATH_MAX];
static ac_tls_ca_t *ca, *ca2;

static const char *path_in(const char *name)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

static char *slurp(const char *path)
{
	char *out = NULL;
	ac_error_t *err = NULL;
	if (ac_read_file_at(AT_FDCWD, path, 32u << 20, &out, NULL, &err) < 0) {
		ac_error_free(err);
		return NULL;
	}
	return out;
}

static int group_setup(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(ca_cert, sizeof(ca_cert), "%s/ca.pem", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
	snprintf(ca2_cert, sizeof(ca2_cert), "%s/ca2.pem", dir);
	snprintf(ca2_key, sizeof(ca2_key), "%s/ca2.key", dir);
	/* The client context reads its trust store once, on first use. */
	setenv("SSL_CERT_FILE", ca_cert, 1);
	setenv("SSL_CERT_DIR", dir, 1);
	signal(SIGPIPE, SIG_IGN);
	ac_error_t *err = NULL;
	if (ac_tls_ca_create(ca_cert, ca_key, "agentcell test CA", &err) < 0 ||
	    ac_tls_ca_create(ca2_cert, ca2_key, "untrusted CA", &err) < 0 ||
	    (ca = ac_tls_ca_load(ca_cert, ca_key, &err)) == NULL ||
	    (ca2 = ac_tls_ca_load(ca2_cert, ca2_key, &err)) == NULL) {
		fprintf(stderr, "setup: %s\n", err ? err->msg : "?");
		ac_error_free(err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	ac_tls_ca_free(ca);
	ac_tls_ca_free(ca2);
	ac_error_t *err = NULL;
	ac_rm_rf_at(AT_FDCWD, dir, &err);
	ac_error_free(err);
	return 0;
}

/* ---- the CA ---- */

static void test_ca_files(void **state)
{
	struct stat st;
	assert_int_equal(stat(ca_cert, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(stat(ca_key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	_cleanup_free_ char *c = slurp(ca_cert);
	_cleanup_free_ char *k = slurp(ca_key);
	assert_non_null(c);
	assert_non_null(k);
	assert_non_null(strstr(c, "-----BEGIN CERTIFICATE-----"));
	assert_null(strstr(c, "PRIVATE KEY"));
	assert_non_null(strstr(k, "-----BEGIN PRIVATE KEY-----"));

	/* Anything but a regular file at a target is refused, and nothing is written. */
	ac_error_t *err = NULL;
	assert_int_equal(mkdir(path_in("keydir"), 0700), 0);
	assert_int_equal(ac_tls_ca_create(path_in("x.pem"), path_in("keydir"), "x", &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "not a regular file"));
	ac_error_free(err);
	err = NULL;
	assert_int_equal(access(path_in("x.pem"), F_OK), -1);
	assert_int_equal(symlink(ca_key, path_in("link.key")), 0);
	assert_int_equal(ac_tls_ca_create(path_in("x.pem"), path_in("link.key"), "x", &err), -1);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(access(path_in("x.pem"), F_OK), -1);

	/* Bad names and one path for both. */
	assert_int_equal(ac_tls_ca_create(path_in("x.pem"), path_in("x.key"), "", &err), -1);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_tls_ca_create(path_in("x.pem"), path_in("x.key"), "a\nb", &err), -1);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_tls_ca_create(path_in("x.pem"), path_in("x.pem"), "x", &err), -1);
	ac_error_free(err);
	err = NULL;

	/* A name longer than X.520's 64 bytes is cut, not refused. */
	char longcn[101];
	memset(longcn, 'n', 100);
	longcn[100] = 0;
	assert_int_equal(ac_tls_ca_create(path_in("l.pem"), path_in("l.key"), longcn, &err), 0);
	ac_tls_ca_t *lca = ac_tls_ca_load(path_in("l.pem"), path_in("l.key"), &err);
	assert_non_null(lca);
	ac_tls_ca_free(lca);

	/* A regular file is replaced: a fresh CA over an old one. */
	assert_int_equal(ac_tls_ca_create(path_in("r.pem"), path_in("r.key"), "r", &err), 0);
	_cleanup_free_ char *r1 = slurp(path_in("r.pem"));
	assert_int_equal(ac_tls_ca_create(path_in("r.pem"), path_in("r.key"), "r", &err), 0);
	_cleanup_free_ char *r2 = slurp(path_in("r.pem"));
	assert_string_not_equal(r1, r2);
	ac_tls_ca_t *r = ac_tls_ca_load(path_in("r.pem"), path_in("r.key"), &err);
	assert_non_null(r);
	ac_tls_ca_free(r);
}

static void test_ca_load_errors(void **state)
{
	ac_error_t *err = NULL;
	/* The key of another CA. */
	assert_null(ac_tls_ca_load(ca_cert, ca2_key, &err));
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "does not match"));
	ac_error_free(err);
	err = NULL;
	/* Missing files. */
	assert_null(ac_tls_ca_load(path_in("none.pem"), ca_key, &err));
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;
	/* Not PEM; a key where the certificate should be. */
	ac_write_file_atomic_at(AT_FDCWD, path_in("junk.pem"), "junk\n", 5, 0644, &err);
	assert_null(ac_tls_ca_load(path_in("junk.pem"), ca_key, &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;
	assert_null(ac_tls_ca_load(ca_key, ca_key, &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
}

/* ---- leaves ---- */

static void test_server_ctx_cache_and_hosts(void **state)
{
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *a = ac_tls_server_ctx(ca, "api.example.com", &err);
	assert_non_null(a);
	/* Same name, other spelling: the cached context. */
	ac_ssl_ctx_t *b = ac_tls_server_ctx(ca, "API.Example.COM.", &err);
	assert_ptr_equal(a, b);
	ac_ssl_ctx_t *ip = ac_tls_server_ctx(ca, "192.0.2.7", &err);
	assert_non_null(ip);
	assert_ptr_not_equal(ip, a);
	ac_ssl_ctx_t *ip6 = ac_tls_server_ctx(ca, "2001:db8::7", &err);
	assert_non_null(ip6);
	ac_tls_ctx_free(a);
	ac_tls_ctx_free(b);
	ac_tls_ctx_free(ip);
	ac_tls_ctx_free(ip6);

	static const char *const bad[] = {
	    "",
	    "a.com,DNS:evil.com",
	    "*.example.com",
	    "host:443",
	    "-a.com",
	    "a-.com",
	    "a..com",
	    ".",
	    "a b.com",
	    "[::1]",
	    "a.com/x",
	    "ex\nample.com",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		assert_null(ac_tls_server_ctx(ca, bad[i], &err));
		assert_non_null(err);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
		err = NULL;
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_null(ac_tls_server_ctx(ca, longname, &err));
	ac_error_free(err);
	err = NULL;
	/* A 64-character label is one too many; 63 is fine, and a name longer than a CN
	 * may be still gets its leaf (the SAN names it). */
	char lab[200];
	memset(lab, 'b', 64);
	strcpy(lab + 64, ".example.com");
	assert_null(ac_tls_server_ctx(ca, lab, &err));
	ac_error_free(err);
	err = NULL;
	memset(lab, 'b', 63);
	strcpy(lab + 63, ".example.com");
	ac_ssl_ctx_t *l = ac_tls_server_ctx(ca, lab, &err);
	assert_non_null(l);
	ac_tls_ctx_free(l);
}

/* ---- handshakes over a socketpair ---- */

#define PAYLOAD (100 * 1024)

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)((i * 31 + seed) ^ (i >> 8));
}

typedef struct server_run {
	ac_ssl_ctx_t *ctx;
	int fd;
	bool handshake_ok;
	bool got_all, sent_all, saw_eof;
	char alpn[32];
	char error[1024];
} server_run_t;

static void *server_thread(void *arg)
{
	server_run_t *r = arg;
	ac_error_t *err = NULL;
	ac_ssl_t *s = ac_tls_accept(r->ctx, r->fd, &err);
	if (s == NULL) {
		snprintf(r->error, sizeof(r->error), "%s", err ? err->msg : "?");
		ac_error_free(err);
		close(r->fd);
		return NULL;
	}
	r->handshake_ok = true;
	ac_tls_alpn(s, r->alpn, sizeof(r->alpn));
	unsigned char *buf = malloc(PAYLOAD);
	size_t got = 0;
	bool same = true;
	while (got < PAYLOAD) {
		ssize_t n = ac_tls_read(s, buf, PAYLOAD - got);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(got + (size_t)i, 1))
				same = false;
		got += (size_t)n;
	}
	r->got_all = got == PAYLOAD && same;
	for (size_t i = 0; i < PAYLOAD; i++)
		buf[i] = pattern(i, 2);
	r->sent_all = ac_tls_write_all(s, buf, PAYLOAD) == PAYLOAD;
	/* Then the client's close_notify: a clean end of stream. */
	r->saw_eof = ac_tls_read(s, buf, 1) == 0;
	free(buf);
	ac_tls_close(s);
	close(r->fd);
	return NULL;
}

typedef struct client_result {
	bool ok;
	char alpn[32];
	char error[1024];
	ac_error_kind_t kind;
} client_result_t;

/* A server thread presenting ctx on one end of a socketpair, ac_tls_connect(host) on the
 * other (non-blocking when nonblock: the poll path), PAYLOAD bytes each way. */
static void run_pair(ac_ssl_ctx_t *ctx, const char *host, bool nonblock, server_run_t *srv,
		     client_result_t *cli)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	srv->ctx = ctx;
	srv->fd = sv[0];
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, server_thread, srv), 0);
	if (nonblock)
		fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	ac_error_t *err = NULL;
	ac_ssl_t *s = ac_tls_connect(sv[1], host, &err);
	if (s == NULL) {
		snprintf(cli->error, sizeof(cli->error), "%s", err ? err->msg : "?");
		cli->kind = err ? err->kind : 0;
		ac_error_free(err);
		close(sv[1]);
		pthread_join(th, NULL);
		return;
	}
	ac_tls_alpn(s, cli->alpn, sizeof(cli->alpn));
	unsigned char *buf = malloc(PAYLOAD);
	for (size_t i = 0; i < PAYLOAD; i++)
		buf[i] = pattern(i, 1);
	bool ok = ac_tls_write_all(s, buf, PAYLOAD) == PAYLOAD;
	size_t got = 0;
	while (ok && got < PAYLOAD) {
		ssize_t n = ac_tls_read(s, buf + got, PAYLOAD - got);
		if (n <= 0) {
			snprintf(cli->error, sizeof(cli->error), "read: %zd %s", n, ac_tls_error());
			ok = false;
			break;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; ok && i < PAYLOAD; i++)
		if (buf[i] != pattern(i, 2))
			ok = false;
	cli->ok = ok;
	free(buf);
	ac_tls_close(s);
	close(sv[1]);
	pthread_join(th, NULL);
}

/* Threads asking for the same hosts at once all get the one cached context per host. */
#define CACHE_THREADS 8
typedef struct cache_run {
	ac_ssl_ctx_t *got[4];
	bool failed;
} cache_run_t;

static void *cache_thread(void *arg)
{
	cache_run_t *r = arg;
	static const char *const hosts[4] = {"a.race.test", "b.race.test", "192.0.2.50",
					     "c.race.test"};
	for (int round = 0; round < 20; round++)
		for (int h = 0; h < 4; h++) {
			ac_error_t *err = NULL;
			ac_ssl_ctx_t *c = ac_tls_server_ctx(ca, hosts[h], &err);
			if (c == NULL || (r->got[h] && r->got[h] != c)) {
				r->failed = true;
				ac_error_free(err);
			}
			if (c && r->got[h] == NULL)
				r->got[h] = c;
			else
				ac_tls_ctx_free(c);
		}
	return NULL;
}

static void test_server_ctx_threads_and_eviction(void **state)
{
	cache_run_t runs[CACHE_THREADS];
	pthread_t th[CACHE_THREADS];
	memset(runs, 0, sizeof(runs));
	for (int i = 0; i < CACHE_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cache_thread, &runs[i]), 0);
	for (int i = 0; i < CACHE_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < CACHE_THREADS; i++) {
		assert_false(runs[i].failed);
		for (int h = 0; h < 4; h++)
			assert_ptr_equal(runs[i].got[h], runs[0].got[h]);
	}
	for (int i = 0; i < CACHE_THREADS; i++)
		for (int h = 0; h < 4; h++)
			ac_tls_ctx_free(runs[i].got[h]);

	/* More hosts than the cache holds: the oldest go (their holders' references stay
	 * good), a host in use stays cached. */
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *keep = ac_tls_server_ctx(ca, "keep.evict.test", &err);
	ac_ssl_ctx_t *first = ac_tls_server_ctx(ca, "h0.evict.test", &err);
	assert_non_null(keep);
	assert_non_null(first);
	for (int i = 1; i < 1100; i++) {
		char host[64];
		snprintf(host, sizeof(host), "h%d.evict.test", i);
		ac_ssl_ctx_t *c = ac_tls_server_ctx(ca, host, &err);
		assert_non_null(c);
		ac_tls_ctx_free(c);
		if (i % 100 == 0) {
			ac_ssl_ctx_t *k = ac_tls_server_ctx(ca, "keep.evict.test", &err);
			assert_ptr_equal(k, keep);
			ac_tls_ctx_free(k);
		}
	}
	/* The evicted first leaf still serves a handshake through its holder's reference. */
	server_run_t srv;
	client_result_t cli;
	run_pair(first, "h0.evict.test", false, &srv, &cli);
	assert_true(cli.ok);
	ac_tls_ctx_free(first);
	ac_tls_ctx_free(keep);
}

static void test_roundtrip_dns(void **state)
{
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(ca, "api.example.com", &err);
	assert_non_null(ctx);
	for (int nb = 0; nb < 2; nb++) {
		server_run_t srv;
		client_result_t cli;
		run_pair(ctx, "api.example.com", nb == 1, &srv, &cli);
		if (!cli.ok)
			fprintf(stderr, "client: %s / server: %s\n", cli.error, srv.error);
		assert_true(cli.ok);
		assert_true(srv.handshake_ok);
		assert_true(srv.got_all);
		assert_true(srv.sent_all);
		assert_true(srv.saw_eof);
		assert_string_equal(cli.alpn, "http/1.1");
		assert_string_equal(srv.alpn, "http/1.1");
	}
	ac_tls_ctx_free(ctx);
	/* One shared client context. */
	assert_non_null(ac_tls_client_ctx(&err));
	assert_ptr_equal(ac_tls_client_ctx(&err), ac_tls_client_ctx(&err));
}

static void expect_refused(ac_ssl_ctx_t *ctx, const char *host, const char *why)
{
	server_run_t srv;
	client_result_t cli;
	run_pair(ctx, host, false, &srv, &cli);
	assert_false(cli.ok);
	assert_false(srv.handshake_ok);
	if (strstr(cli.error, why) == NULL)
		fprintf(stderr, "expected '%s' in: %s\n", why, cli.error);
	assert_non_null(strstr(cli.error, why));
	assert_int_equal(cli.kind, AC_ERR_BACKEND);
	assert_non_null(strstr(cli.error, "certificate verify failed"));
}

static void test_hostname_mismatch(void **state)
{
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(ca, "api.example.com", &err);
	assert_non_null(ctx);
	expect_refused(ctx, "other.example.com", "hostname mismatch");
	/* A leaf for a name is not one for the name's parent or a child. */
	expect_refused(ctx, "example.com", "hostname mismatch");
	expect_refused(ctx, "x.api.example.com", "hostname mismatch");
	ac_tls_ctx_free(ctx);
}

static void test_ip_literal(void **state)
{
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(ca, "192.0.2.7", &err);
	assert_non_null(ctx);
	server_run_t srv;
	client_result_t cli;
	run_pair(ctx, "192.0.2.7", false, &srv, &cli);
	if (!cli.ok)
		fprintf(stderr, "client: %s / server: %s\n", cli.error, srv.error);
	assert_true(cli.ok);
	assert_true(srv.got_all);
	expect_refused(ctx, "192.0.2.8", "IP address mismatch");
	ac_tls_ctx_free(ctx);

	ctx = ac_tls_server_ctx(ca, "2001:db8::7", &err);
	assert_non_null(ctx);
	run_pair(ctx, "2001:DB8:0::7", false, &srv, &cli);
	assert_true(cli.ok);
	expect_refused(ctx, "2001:db8::8", "IP address mismatch");
	ac_tls_ctx_free(ctx);
}

static void test_untrusted_ca(void **state)
{
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(ca2, "api.example.com", &err);
	assert_non_null(ctx);
	expect_refused(ctx, "api.example.com", "local issuer");
	ac_tls_ctx_free(ctx);
}

static void test_connect_errors(void **state)
{
	ac_error_t *err = NULL;
	/* A host that is neither a name nor an address: refused before any byte. */
	assert_null(ac_tls_connect(-1, "a.com,b.com", &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;
	/* A peer that hangs up during the handshake. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[0]);
	assert_null(ac_tls_connect(sv[1], "api.example.com", &err));
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	ac_error_free(err);
	close(sv[1]);
	assert_string_not_equal(ac_tls_error(), "no TLS error");
}

/* ---- against the openssl CLI ---- */

static bool have_openssl(void)
{
	return access("/usr/bin/openssl", X_OK) == 0;
}

/* Runs argv with stdout+stderr into out_path; stdin from in_fd (-1: /dev/null). Returns
 * the pid (0 on failure). */
static pid_t spawn(char *const argv[], const char *out_path, int in_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid = 0;
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = 0;
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static int run(char *const argv[], const char *out_path)
{
	pid_t pid = spawn(argv, out_path, -1);
	return pid > 0 ? wait_status(pid) : -1;
}

typedef struct sclient_run {
	bool accepted;
	char alpn[32];
	char error[1024];
	char *output; /* s_client's stdout+stderr */
} sclient_run_t;

/* `openssl s_client` with extra arguments against ac_tls_accept(ctx) on a TCP socket of
 * 127.0.0.1; the server sends one line and closes. */
static void run_sclient(ac_ssl_ctx_t *ctx, const char *const extra[], sclient_run_t *r)
{
	memset(r, 0, sizeof(*r));
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(sa.sin_port));

	char *argv[32] = {"/usr/bin/openssl", "s_client", "-connect",  target,
			  "-CAfile",	      ca_cert,	  "-showcerts"};
	size_t n = 7;
	for (size_t i = 0; extra[i] && n < AC_ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;

	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	const char *out = path_in("sclient.out");
	pid_t pid = spawn(argv, out, in[0]);
	close(in[0]);
	assert_true(pid > 0);
	/* A bound on a client that never comes (it failed to start): not a timing check. */
	struct pollfd pfd = {l, POLLIN, 0};
	int pr = poll(&pfd, 1, 60000);
	if (pr == 1) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		assert_true(c >= 0);
		ac_error_t *err = NULL;
		ac_ssl_t *s = ac_tls_accept(ctx, c, &err);
		if (s) {
			r->accepted = true;
			ac_tls_alpn(s, r->alpn, sizeof(r->alpn));
			ac_tls_write_all(s, "hello\n", 6);
			ac_tls_close(s);
		} else {
			snprintf(r->error, sizeof(r->error), "%s", err->msg);
			ac_error_free(err);
		}
		close(c);
	}
	close(in[1]); /* s_client ends at the end of its input */
	wait_status(pid);
	close(l);
	r->output = slurp(out);
	assert_non_null(r->output);
}

static void test_alpn_and_leaf_with_openssl_cli(void **state)
{
	if (!have_openssl())
		skip();
	ac_error_t *err = NULL;
	ac_ssl_ctx_t *ctx = ac_tls_server_ctx(ca, "api.example.com", &err);
	assert_non_null(ctx);

	/* A client offering h2 first ends on http/1.1, its verification of the leaf (chain
	 * and name) passing. */
	sclient_run_t r;
	static const char *const h2[] = {
	    "-servername",	    "api.example.com", "-verify_hostname", "api.example.com",
	    "-verify_return_error", "-alpn",	       "h2,http/1.1",	   NULL};
	run_sclient(ctx, h2, &r);
	if (!r.accepted)
		fprintf(stderr, "server: %s\ns_client: %s\n", r.error, r.output);
	assert_true(r.accepted);
	assert_string_equal(r.alpn, "http/1.1");
	assert_non_null(strstr(r.output, "ALPN protocol: http/1.1"));
	assert_non_null(strstr(r.output, "Verify return code: 0 (ok)"));

	/* The leaf itself, as s_client saw it. */
	char *b = strstr(r.output, "-----BEGIN CERTIFICATE-----");
	assert_non_null(b);
	char *e = strstr(b, "-----END CERTIFICATE-----");
	assert_non_null(e);
	e += strlen("-----END CERTIFICATE-----\n");
	const char *leaf = path_in("leaf.pem");
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, leaf, b, (size_t)(e - b), 0644, &err),
			 0);
	/* Only the leaf is sent: the CA is the sandbox's trust anchor. */
	assert_null(strstr(e, "-----BEGIN CERTIFICATE-----"));
	free(r.output);

	const char *out = path_in("cli.out");
	char *verify[] = {"/usr/bin/openssl", "verify",	   "-CAfile",	 ca_cert,
			  "-purpose",	      "sslserver", (char *)leaf, NULL};
	int st = run(verify, out);
	_cleanup_free_ char *vout = slurp(out);
	if (st != 0)
		fprintf(stderr, "openssl verify: %s\n", vout);
	assert_int_equal(st, 0);
	assert_non_null(strstr(vout, ": OK"));

	char *text[] = {"/usr/bin/openssl", "x509",  "-in",	(char *)leaf,
			"-noout",	    "-text", "-serial", NULL};
	assert_int_equal(run(text, out), 0);
	_cleanup_free_ char *t = slurp(out);
	static const char *const want[] = {
	    "Version: 3",
	    "Subject: CN = api.example.com",
	    "Issuer: CN = agentcell test CA",
	    "ecdsa-with-SHA256",
	    "NIST CURVE: P-256",
	    "CA:FALSE",
	    "TLS Web Server Authentication",
	    "DNS:api.example.com",
	    "X509v3 Subject Key Identifier",
	    "X509v3 Authority Key Identifier",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(want); i++) {
		if (!strstr(t, want[i]))
			fprintf(stderr, "missing '%s' in:\n%s\n", want[i], t);
		assert_non_null(strstr(t, want[i]));
	}
	/* A 128-bit serial: 32 hex digits (the top byte is never 0). */
	char *ser = strstr(t, "serial=");
	assert_non_null(ser);
	ser += strlen("serial=");
	assert_int_equal(strspn(ser, "0123456789ABCDEF"), 32);

	/* notAfter: within 90 days and an hour, not within 89 days. */
	char *end90[] = {"/usr/bin/openssl", "x509",	  "-in",     (char *)leaf,
			 "-noout",	     "-checkend", "7779600", NULL};
	assert_int_equal(run(end90, out), 1);
	char *end89[] = {"/usr/bin/openssl", "x509",	  "-in",     (char *)leaf,
			 "-noout",	     "-checkend", "7689600", NULL};
	assert_int_equal(run(end89, out), 0);

	/* A client offering only h2: no ALPN, the handshake goes on. */
	static const char *const h2only[] = {"-servername", "api.example.com", "-alpn", "h2", NULL};
	run_sclient(ctx, h2only, &r);
	assert_true(r.accepted);
	assert_string_equal(r.alpn, "");
	assert_non_null(strstr(r.output, "No ALPN negotiated"));
	free(r.output);

	/* TLS 1.1 is refused by the server (the client's own floor lowered to try it). */
	static const char *const tls11[] = {"-servername", "api.example.com",	 "-tls1_1",
					    "-cipher",	   "DEFAULT@SECLEVEL=0", NULL};
	run_sclient(ctx, tls11, &r);
	assert_false(r.accepted);
	if (!strstr(r.error, "unsupported protocol"))
		fprintf(stderr, "server: %s\ns_client: %s\n", r.error, r.output);
	assert_non_null(strstr(r.error, "unsupported protocol"));
	free(r.output);
	ac_tls_ctx_free(ctx);
}

static void test_ca_with_openssl_cli(void **state)
{
	if (!have_openssl())
		skip();
	const char *out = path_in("ca.out");
	char *text[] = {"/usr/bin/openssl", "x509", "-in", ca_cert, "-noout", "-text", NULL};
	assert_int_equal(run(text, out), 0);
	_cleanup_free_ char *t = slurp(out);
	static const char *const want[] = {
	    "Subject: CN = agentcell test CA", "CA:TRUE", "Certificate Sign", "NIST CURVE: P-256",
	    "X509v3 Subject Key Identifier",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(want); i++)
		assert_non_null(strstr(t, want[i]));
	/* About ten years: not expiring within 9. */
	char *end9[] = {"/usr/bin/openssl", "x509",	 "-in",	      ca_cert,
			"-noout",	    "-checkend", "283824000", NULL};
	assert_int_equal(run(end9, out), 0);
	/* The key file is the certificate's key. */
	char *pk[] = {"/usr/bin/openssl", "pkey", "-in", ca_key, "-pubout", NULL};
	assert_int_equal(run(pk, path_in("pk1.out")), 0);
	char *xk[] = {"/usr/bin/openssl", "x509", "-in", ca_cert, "-noout", "-pubkey", NULL};
	assert_int_equal(run(xk, path_in("pk2.out")), 0);
	_cleanup_free_ char *k1 = slurp(path_in("pk1.out"));
	_cleanup_free_ char *k2 = slurp(path_in("pk2.out"));
	assert_string_equal(k1, k2);
}

/* ---- the bundle ---- */

static void test_bundle(void **state)
{
	ac_error_t *err = NULL;
	const char *bundle = path_in("bundle.crt");
	assert_int_equal(ac_tls_bundle_write(ca_cert, bundle, &err), 0);
	struct stat st;
	assert_int_equal(stat(bundle, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	_cleanup_free_ char *got = slurp(bundle);
	_cleanup_free_ char *cap = slurp(ca_cert);
	assert_non_null(got);
	assert_non_null(cap);
	/* The CA last. */
	size_t gl = strlen(got), cl = strlen(cap);
	assert_true(gl >= cl);
	assert_memory_equal(got + gl - cl, cap, cl);

	_cleanup_free_ char *sys = slurp("/etc/ssl/certs/ca-certificates.crt");
	if (sys) {
		char *b = strstr(sys, "-----BEGIN CERTIFICATE-----");
		assert_non_null(b);
		char *e = strstr(b, "-----END CERTIFICATE-----");
		assert_non_null(e);
		e[strlen("-----END CERTIFICATE-----")] = '\0';
		assert_non_null(strstr(got, b));
		assert_true(gl > strlen(sys) + cl - 1);
	}

	/* A key in place of the certificate never enters a bundle. */
	assert_int_equal(ac_tls_bundle_write(ca_key, path_in("bad.crt"), &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	assert_int_equal(access(path_in("bad.crt"), F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ca_files),
	    cmocka_unit_test(test_ca_load_errors),
	    cmocka_unit_test(test_server_ctx_cache_and_hosts),
	    cmocka_unit_test(test_roundtrip_dns),
	    cmocka_unit_test(test_server_ctx_threads_and_eviction),
	    cmocka_unit_test(test_hostname_mismatch),
	    cmocka_unit_test(test_ip_literal),
	    cmocka_unit_test(test_untrusted_ca),
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test(test_alpn_and_leaf_with_openssl_cli),
	    cmocka_unit_test(test_ca_with_openssl_cli),
	    cmocka_unit_test(test_bundle),
	};
	return cmocka_run_group_tests_name("net tls", tests, group_setup, group_teardown);
}
