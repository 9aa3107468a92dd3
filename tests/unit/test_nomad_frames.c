/* Unit tests of the Nomad allocation exec stream's codec (src/backends/nomad/frames.c): the
 * exec URL, the client's frames, every server frame and every way one can be wrong, and the
 * errors a close frame carries. The shapes are those of Nomad's api/allocations.go
 * (ExecStreamingInput/Output) and plugins/drivers/proto (ExecTaskStreamingResponse, whose
 * encoder omits zero fields). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/nomad/frames.h"
#include "base/base64.h"

#define WHO "nomad at http://127.0.0.1:4646"

/* ---- the exec URL ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of query parameter key in path, %XX decoded (NULL when absent). To free. */
static char *query_param(const char *path, const char *key)
{
	const char *q = strchr(path, '?');
	size_t kl = strlen(key);
	while (q) {
		q++;
		if (!strncmp(q, key, kl) && q[kl] == '=') {
			const char *v = q + kl + 1;
			size_t n = strcspn(v, "&");
			char *out = malloc(n + 1);
			size_t o = 0;
			for (size_t i = 0; i < n; i++) {
				if (v[i] == '%') {
					assert_true(i + 2 < n + 1);
					int h = hexval(v[i + 1]), l = hexval(v[i + 2]);
					assert_true(h >= 0 && l >= 0);
					out[o++] = (char)(h << 4 | l);
					i += 2;
				} else {
					/* only unreserved characters stand plain */
					assert_non_null(
					    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
						   "pqrstuvwxyz0123456789-._~",
						   v[i]));
					out[o++] = v[i];
				}
			}
			out[o] = 0;
			return out;
		}
		q = strchr(q, '&');
	}
	return NULL;
}

static void test_exec_path(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "echo \"a b\" & x=1; printf '%s' é", "", NULL};
	const char *alloc = "5b1c3a0e-8f2d-4c3b-9a7e-0123456789ab";
	char *p = ac_nm_exec_path(alloc, "sandbox", argv, false, NULL, NULL, NULL);
	assert_non_null(p);
	assert_memory_equal(p, "/v1/client/allocation/5b1c3a0e-8f2d-4c3b-9a7e-0123456789ab/exec?",
			    64);
	char *task = query_param(p, "task"), *tty = query_param(p, "tty");
	char *cmd = query_param(p, "command");
	assert_string_equal(task, "sandbox");
	assert_string_equal(tty, "false");
	assert_null(query_param(p, "namespace"));
	assert_null(query_param(p, "region"));
	/* the command is argv as a JSON array, exactly */
	json_error_t jerr;
	json_t *j = json_loads(cmd, 0, &jerr);
	assert_true(json_is_array(j));
	assert_int_equal(json_array_size(j), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(json_string_value(json_array_get(j, i)), argv[i]);
	json_decref(j);
	free(task);
	free(tty);
	free(cmd);
	free(p);
	/* tty, namespace and region */
	p = ac_nm_exec_path(alloc, "sandbox", argv, true, "team a", "eu/west", NULL);
	char *ns = query_param(p, "namespace"), *region = query_param(p, "region");
	tty = query_param(p, "tty");
	assert_string_equal(tty, "true");
	assert_string_equal(ns, "team a");
	assert_string_equal(region, "eu/west");
	assert_non_null(strstr(p, "&namespace=team%20a&region=eu%2Fwest"));
	free(ns);
	free(region);
	free(tty);
	free(p);
	/* "" is the agent's own */
	p = ac_nm_exec_path(alloc, "sandbox", argv, false, "", "", NULL);
	assert_null(strstr(p, "namespace"));
	assert_null(strstr(p, "region"));
	free(p);
	/* refusals */
	ac_error_t *err = NULL;
	assert_null(ac_nm_exec_path("../x", "sandbox", argv, false, NULL, NULL, &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	assert_null(ac_nm_exec_path("a/b", "sandbox", argv, false, NULL, NULL, NULL));
	assert_null(ac_nm_exec_path("a?b", "sandbox", argv, false, NULL, NULL, NULL));
	assert_null(ac_nm_exec_path("", "sandbox", argv, false, NULL, NULL, NULL));
	assert_null(ac_nm_exec_path(NULL, "sandbox", argv, false, NULL, NULL, NULL));
	char long_id[80];
	memset(long_id, 'a', 65);
	long_id[65] = 0;
	assert_null(ac_nm_exec_path(long_id, "sandbox", argv, false, NULL, NULL, NULL));
	long_id[64] = 0;
	p = ac_nm_exec_path(long_id, "sandbox", argv, false, NULL, NULL, NULL);
	assert_non_null(p);
	free(p);
	assert_null(ac_nm_exec_path(alloc, "", argv, false, NULL, NULL, NULL));
	assert_null(ac_nm_exec_path(alloc, NULL, argv, false, NULL, NULL, NULL));
	char *none[] = {NULL};
	assert_null(ac_nm_exec_path(alloc, "sandbox", none, false, NULL, NULL, NULL));
	assert_null(ac_nm_exec_path(alloc, "sandbox", NULL, false, NULL, NULL, NULL));
	char *bad_utf8[] = {"echo", "\xff\xfe", NULL};
	err = NULL;
	assert_null(ac_nm_exec_path(alloc, "sandbox", bad_utf8, false, NULL, NULL, &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "UTF-8"));
	ac_error_free(err);
	/* a long command is not cut */
	char big[6000];
	memset(big, '&', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	char *bigv[] = {big, NULL};
	p = ac_nm_exec_path(alloc, "sandbox", bigv, false, "n", "r", NULL);
	cmd = query_param(p, "command");
	assert_int_equal(strlen(cmd), sizeof(big) - 1 + 4); /* ["..."] */
	free(cmd);
	free(p);
}

/* ---- client frames ---- */

static void test_client_frames(void **state)
{
	(void)state;
	char *f = ac_nm_frame_stdin("hi\n", 3);
	assert_string_equal(f, "{\"stdin\":{\"data\":\"aGkK\"}}");
	free(f);
	f = ac_nm_frame_stdin("\0\xff", 2);
	assert_string_equal(f, "{\"stdin\":{\"data\":\"AP8=\"}}");
	free(f);
	assert_null(ac_nm_frame_stdin("", 0));
	assert_null(ac_nm_frame_stdin(NULL, 3));
	/* what Go's encoding/json decodes into ExecStreamingInput: check with jansson */
	unsigned char bytes[300];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)i;
	f = ac_nm_frame_stdin(bytes, sizeof(bytes));
	json_t *j = json_loads(f, 0, NULL);
	const char *b64 = json_string_value(json_object_get(json_object_get(j, "stdin"), "data"));
	unsigned char *dec = NULL;
	size_t dl = 0;
	assert_int_equal(ac_base64_decode(b64, strlen(b64), &dec, &dl), 0);
	assert_int_equal(dl, sizeof(bytes));
	assert_memory_equal(dec, bytes, sizeof(bytes));
	assert_int_equal(json_object_size(j), 1);
	free(dec);
	json_decref(j);
	free(f);
	assert_string_equal(ac_nm_frame_stdin_close(), "{\"stdin\":{\"close\":true}}");
	assert_string_equal(ac_nm_frame_heartbeat(), "{}");
	char out[64];
	size_t n = ac_nm_frame_tty_size(out, sizeof(out), 24, 80);
	assert_string_equal(out, "{\"tty_size\":{\"height\":24,\"width\":80}}");
	assert_int_equal(n, strlen(out));
	assert_int_not_equal(ac_nm_frame_tty_size(out, sizeof(out), 65535, 65535), 0);
	assert_int_equal(ac_nm_frame_tty_size(out, sizeof(out), 0, 80), 0);
	assert_int_equal(ac_nm_frame_tty_size(out, sizeof(out), 24, 0), 0);
	assert_int_equal(ac_nm_frame_tty_size(out, sizeof(out), 65536, 80), 0);
	assert_int_equal(ac_nm_frame_tty_size(out, 20, 24, 80), 0);
}

/* ---- server frames ---- */

static ac_nm_frame_t decode_ok(const char *text)
{
	ac_nm_frame_t f;
	ac_error_t *err = NULL;
	if (ac_nm_frame_decode(text, strlen(text), WHO, &f, &err) != 0)
		fail_msg("refused %s: %s", text, err ? err->msg : "(no error)");
	return f;
}

/* Refused, with a one-line message that names the agent and contains want. */
static void decode_bad(const char *text, size_t len, const char *want)
{
	ac_nm_frame_t f;
	memset(&f, 0x55, sizeof(f));
	ac_error_t *err = NULL;
	if (ac_nm_frame_decode(text, len, WHO, &f, &err) != -1)
		fail_msg("accepted %.*s", (int)(len > 200 ? 200 : len), text);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_null(strchr(err->msg, '\n'));
	assert_memory_equal(err->msg, WHO ": the exec stream sent ", strlen(WHO) + 23);
	if (!strstr(err->msg, want))
		fail_msg("'%s' lacks '%s'", err->msg, want);
	assert_null(f.data); /* cleared: nothing to free */
	assert_int_equal(f.kind, AC_NM_FRAME_NONE);
	ac_error_free(err);
	/* also without an err */
	assert_int_equal(ac_nm_frame_decode(text, len, WHO, &f, NULL), -1);
}

static void decode_bad_s(const char *text, const char *want)
{
	decode_bad(text, strlen(text), want);
}

static void test_server_frames(void **state)
{
	(void)state;
	ac_nm_frame_t f = decode_ok("{\"stdout\":{\"data\":\"aGVsbG8K\"}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDOUT);
	assert_int_equal(f.len, 6);
	assert_memory_equal(f.data, "hello\n", 6);
	assert_false(f.close);
	ac_nm_frame_clear(&f);
	assert_null(f.data);
	f = decode_ok("{\"stderr\":{\"data\":\"AP8=\"}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDERR);
	assert_int_equal(f.len, 2);
	assert_memory_equal(f.data, "\0\xff", 2);
	ac_nm_frame_clear(&f);
	f = decode_ok("{\"stdout\":{\"close\":true}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDOUT);
	assert_true(f.close);
	assert_int_equal(f.len, 0);
	ac_nm_frame_clear(&f);
	f = decode_ok("{\"stderr\":{\"close\":true}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDERR);
	assert_true(f.close);
	ac_nm_frame_clear(&f);
	/* data and close at once, an empty object, whitespace */
	f = decode_ok(" {\"stdout\" : {\"data\":\"eA==\", \"close\":true}}\n");
	assert_int_equal(f.len, 1);
	assert_true(f.close);
	ac_nm_frame_clear(&f);
	f = decode_ok("{\"stdout\":{}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDOUT);
	assert_int_equal(f.len, 0);
	ac_nm_frame_clear(&f);
	f = decode_ok("{\"stdout\":{\"data\":\"\"}}");
	assert_int_equal(f.len, 0);
	ac_nm_frame_clear(&f);
	/* a heartbeat; exited false is the same as absent */
	f = decode_ok("{}");
	assert_int_equal(f.kind, AC_NM_FRAME_NONE);
	f = decode_ok("{\"exited\":false}");
	assert_int_equal(f.kind, AC_NM_FRAME_NONE);
	f = decode_ok("{\"exited\":false,\"stdout\":{\"data\":\"eA==\"}}");
	assert_int_equal(f.kind, AC_NM_FRAME_STDOUT);
	ac_nm_frame_clear(&f);
	/* exits */
	f = decode_ok("{\"exited\":true,\"result\":{\"exit_code\":3}}");
	assert_int_equal(f.kind, AC_NM_FRAME_EXITED);
	assert_int_equal(f.exit_code, 3);
	assert_int_equal(f.signal, 0);
	f = decode_ok("{\"exited\":true,\"result\":{}}"); /* 0 is omitted */
	assert_int_equal(f.kind, AC_NM_FRAME_EXITED);
	assert_int_equal(f.exit_code, 0);
	f = decode_ok("{\"result\":{\"exit_code\":0},\"exited\":true}");
	assert_int_equal(f.exit_code, 0);
	f = decode_ok("{\"exited\":true,\"result\":{\"exit_code\":255}}");
	assert_int_equal(f.exit_code, 255);
	/* the executor's signal-killed command: 128+N already */
	f = decode_ok("{\"exited\":true,\"result\":{\"exit_code\":137}}");
	assert_int_equal(f.exit_code, 137);
	/* a driver that gives the signal alone */
	f = decode_ok("{\"exited\":true,\"result\":{\"signal\":9}}");
	assert_int_equal(f.exit_code, 137);
	assert_int_equal(f.signal, 9);
	f = decode_ok("{\"exited\":true,\"result\":{\"exit_code\":2,\"signal\":15}}");
	assert_int_equal(f.exit_code, 2);
	f = decode_ok("{\"exited\":true,\"result\":{\"exit_code\":137,\"oom_killed\":true}}");
	assert_int_equal(f.exit_code, 137);
	assert_true(f.oom_killed);
}

static void test_server_frames_refused(void **state)
{
	(void)state;
	decode_bad_s("", "not a JSON object");
	decode_bad_s("x", "not a JSON object");
	decode_bad_s("[]", "not a JSON object");
	decode_bad_s("\"stdout\"", "not a JSON object");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=\"}", "not a JSON object");
	decode_bad_s("{} {}", "not a JSON object");
	const char nul[] = "{\"stdout\":{\"data\":\"aGk=\"}}\0";
	decode_bad(nul, sizeof(nul), "not a JSON object");
	decode_bad_s("{\"stdin\":{\"data\":\"aGk=\"}}", "unknown field");
	decode_bad_s("{\"error\":\"boom\"}", "unknown field");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=\"},\"x\":1}", "unknown field");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=\",\"x\":1}}", "unknown field");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":1,\"x\":1}}", "unknown field");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=\"},\"stdout\":{}}", "not a JSON object");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=\",\"data\":\"aGk=\"}}", "not a JSON object");
	decode_bad_s("{\"stdout\":{},\"stderr\":{}}", "two kinds");
	decode_bad_s("{\"stdout\":{},\"exited\":true,\"result\":{}}", "two kinds");
	decode_bad_s("{\"stderr\":{},\"result\":{}}", "two kinds");
	decode_bad_s("{\"stdout\":null}", "not an object");
	decode_bad_s("{\"stdout\":\"aGk=\"}", "not an object");
	decode_bad_s("{\"stdout\":{\"data\":null}}", "not a string");
	decode_bad_s("{\"stdout\":{\"data\":[104]}}", "not a string");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk\"}}", "not base64");
	decode_bad_s("{\"stdout\":{\"data\":\"aG k=\"}}", "not base64");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk=aGk=\"}}", "not base64");
	decode_bad_s("{\"stdout\":{\"data\":\"aGk_\"}}", "not base64");
	decode_bad_s("{\"stdout\":{\"close\":1}}", "not a boolean");
	decode_bad_s("{\"exited\":1}", "not a boolean");
	decode_bad_s("{\"exited\":\"true\",\"result\":{}}", "not a boolean");
	decode_bad_s("{\"exited\":true}", "without a result");
	decode_bad_s("{\"result\":{\"exit_code\":1}}", "without exited");
	decode_bad_s("{\"exited\":false,\"result\":{}}", "without exited");
	decode_bad_s("{\"exited\":true,\"result\":null}", "not an object");
	decode_bad_s("{\"exited\":true,\"result\":[]}", "not an object");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":\"1\"}}", "not an integer");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":1.0}}", "not an integer");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":256}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":-1}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":-2}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"exit_code\":99999999999999}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"signal\":128}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"signal\":-9}}", "out of range");
	decode_bad_s("{\"exited\":true,\"result\":{\"signal\":\"KILL\"}}", "not an integer");
	decode_bad_s("{\"exited\":true,\"result\":{\"oom_killed\":1}}", "not a boolean");
	/* the text shown is cut and its control characters escaped */
	const char *nl = "{\"stdout\":\n1}";
	decode_bad(nl, strlen(nl), "\\n");
	char longer[300];
	snprintf(longer, sizeof(longer), "{\"x\":\"%0200d\"}", 0);
	decode_bad(longer, strlen(longer), "...");
}

/* Data of exactly the limit is taken, one byte more refused (before decoding). */
static void test_data_limit(void **state)
{
	(void)state;
	size_t max = AC_NM_FRAME_DATA_MAX;
	unsigned char *raw = calloc(1, max + 3);
	assert_non_null(raw);
	char *f = ac_nm_frame_stdin(raw, max);
	assert_non_null(f);
	assert_null(ac_nm_frame_stdin(raw, max + 1));
	/* the same text as the server's stdout */
	size_t fl = strlen(f);
	char *s = malloc(fl + 2);
	memcpy(s, "{\"stdout\"", 9);
	memcpy(s + 9, f + 8, fl - 8 + 1); /* after {"stdin" */
	ac_nm_frame_t fr;
	assert_int_equal(ac_nm_frame_decode(s, strlen(s), WHO, &fr, NULL), 0);
	assert_int_equal(fr.len, max);
	ac_nm_frame_clear(&fr);
	free(s);
	free(f);
	/* max + 1 bytes: refused */
	char *b64 = ac_base64_encode(raw, max + 3);
	size_t bl = strlen(b64);
	s = malloc(bl + 64);
	int n = snprintf(s, bl + 64, "{\"stderr\":{\"data\":\"%s\"}}", b64);
	decode_bad(s, (size_t)n, "larger than 16 MiB");
	free(s);
	free(b64);
	b64 = ac_base64_encode(raw, max + 1);
	bl = strlen(b64);
	s = malloc(bl + 64);
	n = snprintf(s, bl + 64, "{\"stderr\":{\"data\":\"%s\"}}", b64);
	decode_bad(s, (size_t)n, "larger than 16 MiB");
	free(s);
	free(b64);
	free(raw);
}

/* ---- close frames ---- */

static ac_error_t *close_error(unsigned code, const char *reason)
{
	ac_error_t *err = NULL;
	assert_int_equal(ac_nm_exec_close_error(WHO, code, reason, &err), -1);
	assert_non_null(err);
	assert_null(strchr(err->msg, '\n'));
	return err;
}

static void test_close_errors(void **state)
{
	(void)state;
	ac_error_t *e = close_error(1008, "Permission denied");
	assert_int_equal(e->kind, AC_ERR_PERMISSION);
	assert_string_equal(e->msg, WHO ": exec: Permission denied");
	assert_int_equal(e->exit_code, 0);
	ac_error_free(e);
	e = close_error(1008, "Unknown allocation \"x\"");
	assert_int_equal(e->kind, AC_ERR_NOT_RUNNING);
	ac_error_free(e);
	e = close_error(1008, "task \"sandbox\" is not running.");
	assert_int_equal(e->kind, AC_ERR_NOT_RUNNING);
	ac_error_free(e);
	e = close_error(1008, "task \"sandbox\" not started yet.");
	assert_int_equal(e->kind, AC_ERR_NOT_RUNNING);
	ac_error_free(e);
	e = close_error(1011, "failed to start exec: OCI runtime exec failed: exec: \"sh\": "
			      "executable file not found in $PATH: unknown");
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	assert_int_equal(e->exit_code, 127);
	ac_error_free(e);
	e = close_error(1011, "exec: \"/x\": permission denied");
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	assert_int_equal(e->exit_code, 126);
	ac_error_free(e);
	e = close_error(1011, "rpc error:\nline two");
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	assert_string_equal(e->msg, WHO ": exec: rpc error:\\nline two");
	ac_error_free(e);
	e = close_error(1000, "");
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(e->msg, "before the command's exit status (close code 1000)"));
	ac_error_free(e);
	e = close_error(1005, NULL);
	assert_non_null(strstr(e->msg, "close code 1005"));
	ac_error_free(e);
	assert_int_equal(ac_nm_exec_close_error(WHO, 1011, "x", NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exec_path),	  cmocka_unit_test(test_client_frames),
	    cmocka_unit_test(test_server_frames), cmocka_unit_test(test_server_frames_refused),
	    cmocka_unit_test(test_data_limit),	  cmocka_unit_test(test_close_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
