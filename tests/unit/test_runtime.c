/* Unit tests for src/runtime that need no privileges: the exec wire protocol (proto.c),
 * the cgroup knob formats (cgroup.c, against a fake hierarchy), user resolution
 * (spawn.c), the seccomp filter (seccomp.c, loaded in forked children) and the /proc
 * helpers (proc.c).
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/cgroup.h"
#include "runtime/proc.h"
#include "runtime/proto.h"
#include "runtime/seccomp.h"
#include "runtime/spawn.h"
#include "testfork.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* ---- shared helpers ---- */

static json_t *load_json(const char *text, size_t flags)
{
	json_error_t jerr;
	json_t *j = json_loads(text, flags, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON '%s': %s", text, jerr.text);
	return j;
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	sv[0] = sv[1] = -1;
}

static int run_in_child(int (*fn)(void *), void *arg)
{
	int r = ac_test_fork_wait(fn, arg);
	assert_true(r < 2000);
	return r;
}

/* A child that crashes dies of it: cmocka's handlers (SIGSEGV among them) would otherwise
 * long-jump back into the runner inside the child and run the following tests twice. */
static int child_crash(void *arg)
{
	raise(SIGSEGV);
	return 0;
}

static int child_bad_pointer(void *arg)
{
	*(volatile int *)arg = 1;
	return 0;
}

static void test_fork_child_crash_is_contained(void **state)
{
	pid_t self = getpid();
	assert_int_equal(run_in_child(child_crash, NULL), 1000 + SIGSEGV);
	/* Not NULL: UBSan would report a null store and exit instead of faulting. */
	assert_int_equal(run_in_child(child_bad_pointer, (void *)4096), 1000 + SIGSEGV);
	assert_int_equal(getpid(), self);
}

/* In children: report the first failed check by line number (exit codes are 8 bits). */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: child check failed: %s (errno %d: %s)\n",          \
				__FILE__, __LINE__, #cond, errno, strerror(errno));                \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

#define CHECK_ERRNO(call, e)                                                                       \
	do {                                                                                       \
		errno = 0;                                                                         \
		long _r = (long)(call);                                                            \
		if (_r != -1 || errno != (e)) {                                                    \
			fprintf(stderr, "%s:%d: %s returned %ld errno %d (%s), wanted errno %d\n", \
				__FILE__, __LINE__, #call, _r, errno, strerror(errno), (e));       \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

/* ---- proto.c: request validation ---- */

static void expect_invalid_json(json_t *req, const char *what, const char *want)
{
	ac_cmd_t cmd;
	memset(&cmd, 0x5a, sizeof(cmd));
	char *errmsg = NULL;
	if (ac_proto_parse_request(req, &cmd, &errmsg) != -1)
		fail_msg("request %s was accepted", what);
	if (errmsg == NULL)
		fail_msg("request %s: no error message", what);
	if (strstr(errmsg, want) == NULL)
		fail_msg("request %s: error '%s' does not mention '%s'", what, errmsg, want);
	assert_null(cmd.argv);
	assert_null(cmd.env);
	free(errmsg);
}

static void expect_invalid(const char *text, const char *want)
{
	json_t *req = load_json(text, JSON_DECODE_ANY | JSON_ALLOW_NUL);
	expect_invalid_json(req, text, want);
	json_decref(req);
}

/* Parses text, which must be valid; the caller frees cmd->argv/env and *req. */
static void parse_ok(const char *text, json_t **req, ac_cmd_t *cmd)
{
	*req = load_json(text, 0);
	char *errmsg = NULL;
	if (ac_proto_parse_request(*req, cmd, &errmsg) != 0)
		fail_msg("request %s refused: %s", text, errmsg ? errmsg : "(no message)");
	assert_null(errmsg);
}

static void cmd_release(json_t *req, ac_cmd_t *cmd)
{
	free(cmd->argv);
	free(cmd->env);
	json_decref(req);
}

static void test_parse_full(void **state)
{
	json_t *req;
	ac_cmd_t cmd;
	parse_ok("{\"argv\":[\"ls\",\"-l\",\"\"],\"env\":[\"A=1\",\"B=\",\"C=x=y\"],\"cwd\":\"/w\","
		 "\"user\":\"nobody\",\"timeout\":2.5,\"tty\":true,\"stdin\":true,\"rows\":50,"
		 "\"cols\":132}",
		 &req, &cmd);
	assert_string_equal(cmd.argv[0], "ls");
	assert_string_equal(cmd.argv[1], "-l");
	assert_string_equal(cmd.argv[2], ""); /* only argv[0] must be non-empty */
	assert_null(cmd.argv[3]);
	assert_string_equal(cmd.env[0], "A=1");
	assert_string_equal(cmd.env[1], "B=");
	assert_string_equal(cmd.env[2], "C=x=y");
	assert_null(cmd.env[3]);
	/* Strings point into the request, as the header says. */
	assert_ptr_equal(cmd.argv[0],
			 json_string_value(json_array_get(json_object_get(req, "argv"), 0)));
	assert_ptr_equal(cmd.cwd, json_string_value(json_object_get(req, "cwd")));
	assert_string_equal(cmd.cwd, "/w");
	assert_string_equal(cmd.user, "nobody");
	assert_true(cmd.timeout == 2.5);
	assert_true(cmd.tty);
	assert_true(cmd.stdin_open);
	assert_int_equal(cmd.rows, 50);
	assert_int_equal(cmd.cols, 132);
	cmd_release(req, &cmd);
}

static void test_parse_defaults(void **state)
{
	json_t *req;
	ac_cmd_t cmd;
	parse_ok("{\"argv\":[\"true\"]}", &req, &cmd);
	assert_string_equal(cmd.argv[0], "true");
	assert_null(cmd.argv[1]);
	assert_null(cmd.env);
	assert_null(cmd.cwd);
	assert_null(cmd.user);
	assert_true(cmd.timeout == 0);
	assert_false(cmd.tty);
	assert_false(cmd.stdin_open);
	assert_int_equal(cmd.rows, 24);
	assert_int_equal(cmd.cols, 80);
	cmd_release(req, &cmd);

	/* An empty env array is not an error: an empty list. */
	parse_ok("{\"argv\":[\"x\"],\"env\":[],\"cwd\":\"/\",\"timeout\":0}", &req, &cmd);
	assert_non_null(cmd.env);
	assert_null(cmd.env[0]);
	assert_string_equal(cmd.cwd, "/");
	assert_true(cmd.timeout == 0);
	cmd_release(req, &cmd);
}

static void test_parse_argv_invalid(void **state)
{
	expect_invalid("{}", "argv");
	expect_invalid("{\"argv\":null}", "argv");
	expect_invalid("{\"argv\":[]}", "argv");
	expect_invalid("{\"argv\":\"ls -l\"}", "argv");
	expect_invalid("{\"argv\":{\"0\":\"ls\"}}", "argv");
	expect_invalid("{\"argv\":[1]}", "argv");
	expect_invalid("{\"argv\":[\"ls\",2]}", "argv");
	expect_invalid("{\"argv\":[\"ls\",null]}", "argv");
	expect_invalid("{\"argv\":[\"ls\",[\"x\"]]}", "argv");
	expect_invalid("{\"argv\":[\"\"]}", "argv");
	expect_invalid("{\"argv\":[\"\",\"x\"]}", "argv");
	/* NUL inside a string would silently cut the argument short at exec. */
	expect_invalid("{\"argv\":[\"a\\u0000b\"]}", "argv");
	expect_invalid("{\"argv\":[\"ls\",\"-l\\u0000; rm -rf /\"]}", "argv");
	expect_invalid("{\"argv\":[\"\\u0000\"]}", "argv");
}

static void test_parse_not_object(void **state)
{
	expect_invalid("[\"ls\"]", "argv");
	expect_invalid("\"ls\"", "argv");
	expect_invalid("null", "argv");
	ac_cmd_t cmd;
	char *errmsg = NULL;
	assert_int_equal(ac_proto_parse_request(NULL, &cmd, &errmsg), -1);
	assert_non_null(errmsg);
	free(errmsg);
}

static void test_parse_argv_limits(void **state)
{
	/* 4096 arguments are fine, 4097 are not; one string may be 64 KiB. */
	json_t *req = json_object(), *argv = json_array();
	for (int i = 0; i < 4096; i++)
		json_array_append_new(argv, json_string("a"));
	json_object_set_new(req, "argv", argv);
	ac_cmd_t cmd;
	char *errmsg = NULL;
	assert_int_equal(ac_proto_parse_request(req, &cmd, &errmsg), 0);
	assert_null(cmd.argv[4096]);
	free(cmd.argv);
	json_array_append_new(argv, json_string("a"));
	expect_invalid_json(req, "with 4097 arguments", "argv");

	json_array_clear(argv);
	char *big = malloc(64 * 1024 + 2);
	memset(big, 'x', 64 * 1024 + 1);
	big[64 * 1024] = '\0';
	json_array_append_new(argv, json_string(big));
	assert_int_equal(ac_proto_parse_request(req, &cmd, &errmsg), 0);
	free(cmd.argv);
	big[64 * 1024] = 'x';
	big[64 * 1024 + 1] = '\0';
	json_array_set_new(argv, 0, json_string(big));
	expect_invalid_json(req, "with a 64 KiB + 1 argument", "argv");

	/* The same limits hold for env, and a failure there frees argv (ASan checks). */
	json_array_set_new(argv, 0, json_string("x"));
	json_t *env = json_array();
	for (int i = 0; i < 4097; i++)
		json_array_append_new(env, json_string("A=1"));
	json_object_set_new(req, "env", env);
	expect_invalid_json(req, "with 4097 env entries", "env");
	free(big);
	json_decref(req);
}

static void test_parse_env_invalid(void **state)
{
	expect_invalid("{\"argv\":[\"x\"],\"env\":\"A=1\"}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":{\"A\":\"1\"}}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":null}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"=x\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"=\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A=1\",\"B\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A=1\",7]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A\\u0000=1\"]}", "env");
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A=1\\u0000B=2\"]}", "env");
}

static void test_parse_cwd_user_invalid(void **state)
{
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":\"relative/dir\"}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":\"\"}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":\"./\"}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":5}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":null}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"cwd\":[\"/\"]}", "cwd");
	expect_invalid("{\"argv\":[\"x\"],\"user\":\"\"}", "user");
	expect_invalid("{\"argv\":[\"x\"],\"user\":0}", "user");
	expect_invalid("{\"argv\":[\"x\"],\"user\":null}", "user");
	expect_invalid("{\"argv\":[\"x\"],\"user\":true}", "user");
	/* argv and env were already allocated when cwd fails: must be freed (ASan). */
	expect_invalid("{\"argv\":[\"x\"],\"env\":[\"A=1\"],\"cwd\":\"x\"}", "cwd");
}

static void test_parse_timeout(void **state)
{
	json_t *req;
	ac_cmd_t cmd;
	parse_ok("{\"argv\":[\"x\"],\"timeout\":5}", &req, &cmd);
	assert_true(cmd.timeout == 5.0);
	cmd_release(req, &cmd);
	parse_ok("{\"argv\":[\"x\"],\"timeout\":0.001}", &req, &cmd);
	assert_true(cmd.timeout == 0.001);
	cmd_release(req, &cmd);
	parse_ok("{\"argv\":[\"x\"],\"timeout\":1000000000}", &req, &cmd);
	assert_true(cmd.timeout == 1e9);
	cmd_release(req, &cmd);

	expect_invalid("{\"argv\":[\"x\"],\"timeout\":-1}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":-0.5}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":1000000001}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":1e300}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":9223372036854775807}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":-9223372036854775808}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":\"5\"}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":null}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":true}", "timeout");
	expect_invalid("{\"argv\":[\"x\"],\"timeout\":[1]}", "timeout");
}

static void test_parse_rows_cols_and_flags(void **state)
{
	static const struct {
		const char *text;
		unsigned short rows, cols;
	} cases[] = {
	    {"{\"argv\":[\"x\"],\"rows\":1,\"cols\":1}", 1, 1},
	    {"{\"argv\":[\"x\"],\"rows\":9999,\"cols\":9999}", 9999, 9999},
	    {"{\"argv\":[\"x\"],\"rows\":10000,\"cols\":10000}", 24, 80},
	    {"{\"argv\":[\"x\"],\"rows\":0,\"cols\":0}", 24, 80},
	    {"{\"argv\":[\"x\"],\"rows\":-5,\"cols\":-80}", 24, 80},
	    {"{\"argv\":[\"x\"],\"rows\":65560,\"cols\":65616}", 24, 80}, /* not wrapped */
	    {"{\"argv\":[\"x\"],\"rows\":9223372036854775807,\"cols\":-9223372036854775808}", 24,
	     80},
	    {"{\"argv\":[\"x\"],\"rows\":\"50\",\"cols\":null}", 24, 80},
	    {"{\"argv\":[\"x\"],\"rows\":50.0,\"cols\":1e2}", 24, 80}, /* reals are not integers */
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *req;
		ac_cmd_t cmd;
		parse_ok(cases[i].text, &req, &cmd);
		if (cmd.rows != cases[i].rows || cmd.cols != cases[i].cols)
			fail_msg("%s: rows %u cols %u, wanted %u %u", cases[i].text, cmd.rows,
				 cmd.cols, cases[i].rows, cases[i].cols);
		cmd_release(req, &cmd);
	}

	static const struct {
		const char *value;
		bool set;
	} flags[] = {{"true", true}, {"false", false}, {"\"true\"", false},
		     {"1", false},   {"null", false},  {"[true]", false}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(flags); i++) {
		char text[128];
		snprintf(text, sizeof(text), "{\"argv\":[\"x\"],\"tty\":%s,\"stdin\":%s}",
			 flags[i].value, flags[i].value);
		json_t *req;
		ac_cmd_t cmd;
		parse_ok(text, &req, &cmd);
		if (cmd.tty != flags[i].set || cmd.stdin_open != flags[i].set)
			fail_msg("%s: tty %d stdin %d", text, cmd.tty, cmd.stdin_open);
		cmd_release(req, &cmd);
	}
}

static void assert_cmd_equal(const ac_cmd_t *a, const ac_cmd_t *b)
{
	size_t i;
	for (i = 0; a->argv[i]; i++) {
		assert_non_null(b->argv[i]);
		assert_string_equal(a->argv[i], b->argv[i]);
	}
	assert_null(b->argv[i]);
	/* A NULL env goes out as [] and comes back as an empty list. */
	for (i = 0; a->env && a->env[i]; i++) {
		assert_non_null(b->env[i]);
		assert_string_equal(a->env[i], b->env[i]);
	}
	assert_true(b->env == NULL || b->env[i] == NULL);
	if (a->cwd)
		assert_string_equal(a->cwd, b->cwd);
	else
		assert_null(b->cwd);
	if (a->user)
		assert_string_equal(a->user, b->user);
	else
		assert_null(b->user);
	assert_true(a->timeout == b->timeout);
	assert_int_equal(a->tty, b->tty);
	assert_int_equal(a->stdin_open, b->stdin_open);
	assert_int_equal(a->rows, b->rows);
	assert_int_equal(a->cols, b->cols);
}

static char *rt_argv[] = {"sh", "-c", "printf '%s\\n' \"$A\" \"caf\xc3\xa9\" \"\\u0000\"", "",
			  NULL};
static char *rt_env[] = {"A=1", "PATH=/opt/bin:/usr/bin", "EMPTY=", "Q=\"quoted\"", NULL};

static void test_build_parse_round_trip(void **state)
{
	const ac_cmd_t cmds[] = {
	    {.argv = rt_argv,
	     .env = rt_env,
	     .cwd = "/workspace/sub dir",
	     .user = "nobody",
	     .timeout = 1.25,
	     .tty = true,
	     .stdin_open = true,
	     .rows = 40,
	     .cols = 100},
	    {.argv = (char *[]){"x", NULL}, .rows = 24, .cols = 80},
	    {.argv = (char *[]){"true", NULL}, .env = (char *[]){NULL}, .rows = 24, .cols = 80},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cmds); i++) {
		json_t *req = ac_proto_build_request(&cmds[i]);
		assert_non_null(req);
		ac_cmd_t back;
		char *errmsg = NULL;
		if (ac_proto_parse_request(req, &back, &errmsg) != 0)
			fail_msg("round trip %zu refused: %s", i, errmsg);
		assert_cmd_equal(&cmds[i], &back);
		free(back.argv);
		free(back.env);
		json_decref(req);
	}
}

/* argv, env, cwd and user are bytes on Linux, JSON strings must be UTF-8: the request
 * builder must either refuse such a command or carry every element. Silently dropping
 * one shifts the command line (argv[1] becomes the program), drops the working
 * directory, or drops the user and runs the command as root. */
static void test_build_request_non_utf8(void **state)
{
	char *argv[] = {"\xff", "rm", "-f", "caf\xe9", NULL};
	char *env[] = {"LANG=C", "NAME=caf\xe9", NULL};
	const ac_cmd_t cmds[] = {
	    {.argv = argv, .rows = 24, .cols = 80},
	    {.argv = (char *[]){"true", NULL}, .env = env, .rows = 24, .cols = 80},
	    {.argv = (char *[]){"true", NULL}, .cwd = "/tmp/caf\xe9", .rows = 24, .cols = 80},
	    {.argv = (char *[]){"id", NULL}, .user = "\xe9ric", .rows = 24, .cols = 80},
	};
	static const char *what[] = {"argv", "env", "cwd", "user"};
	int failures = 0;
	for (size_t i = 0; i < AC_ARRAY_SIZE(cmds); i++) {
		json_t *req = ac_proto_build_request(&cmds[i]);
		if (req == NULL)
			continue; /* refusing is fine */
		ac_cmd_t back;
		char *errmsg = NULL;
		int rc = ac_proto_parse_request(req, &back, &errmsg);
		bool kept = false;
		if (rc == 0) {
			size_t n = 0, m = 0;
			const ac_cmd_t *c = &cmds[i];
			switch (i) {
			case 0:
				while (c->argv[n])
					n++;
				while (back.argv[m])
					m++;
				kept = n == m;
				break;
			case 1:
				while (c->env[n])
					n++;
				while (back.env && back.env[m])
					m++;
				kept = n == m;
				break;
			case 2:
				kept = back.cwd != NULL;
				break;
			default:
				kept = back.user != NULL;
			}
			free(back.argv);
			free(back.env);
		} else {
			kept = true; /* refused on the other side: nothing runs */
			free(errmsg);
		}
		if (!kept) {
			print_error("ac_proto_build_request silently dropped the non-UTF-8 %s\n",
				    what[i]);
			failures++;
		}
		json_decref(req);
	}
	assert_int_equal(failures, 0);
}

/* ---- proto.c: framing and descriptor passing ---- */

static void write_raw(int fd, const void *data, size_t len)
{
	assert_int_equal(ac_write_all(fd, data, len), 0);
}

static void write_frame(int fd, uint32_t hdr, const char *body, size_t len)
{
	write_raw(fd, &hdr, sizeof(hdr));
	if (len)
		write_raw(fd, body, len);
}

/* Sends raw bytes (header included) and expects ac_proto_recv to fail with errno e. */
static void expect_recv_fails(const void *data, size_t len, bool close_writer, int e)
{
	int sv[2];
	make_pair(sv);
	write_raw(sv[0], data, len);
	if (close_writer) {
		close(sv[0]);
		sv[0] = -1;
	}
	json_t *msg = NULL;
	int fds[3] = {7, 7, 7};
	errno = 0;
	assert_int_equal(ac_proto_recv(sv[1], &msg, fds, 3), -1);
	assert_int_equal(errno, e);
	assert_null(msg);
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_int_equal(fds[2], -1);
	close_pair(sv);
}

static void test_send_recv_no_fds(void **state)
{
	int sv[2];
	make_pair(sv);
	json_t *m = load_json("{\"a\":1,\"s\":\"caf\\u00e9\",\"l\":[true,null,{\"x\":-2.5}]}", 0);
	assert_int_equal(ac_proto_send(sv[0], m, NULL, 0), 0);
	json_t *got = NULL;
	int fds[3] = {7, 7, 7};
	assert_int_equal(ac_proto_recv(sv[1], &got, fds, 3), 0);
	assert_true(json_equal(m, got));
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_int_equal(fds[2], -1);
	json_decref(got);

	/* The frame on the wire: a 4-byte little-endian length and compact JSON. */
	assert_int_equal(ac_proto_send(sv[0], m, NULL, 0), 0);
	unsigned char hdr[4];
	assert_int_equal(ac_read_all(sv[1], hdr, 4), 4);
	uint32_t len =
	    hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	char *want = json_dumps(m, JSON_COMPACT);
	assert_int_equal(len, strlen(want));
	char body[256];
	assert_true(len < sizeof(body));
	assert_int_equal(ac_read_all(sv[1], body, len), (ssize_t)len);
	assert_memory_equal(body, want, len);
	free(want);
	json_decref(m);
	close_pair(sv);
}

static void assert_same_file(int a, int b)
{
	struct stat sa, sb;
	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_int_equal(sa.st_dev, sb.st_dev);
	assert_int_equal(sa.st_ino, sb.st_ino);
}

static void test_send_recv_three_fds(void **state)
{
	char tmpl[] = "/tmp/ac-test-rt-XXXXXX";
	int file = mkstemp(tmpl);
	assert_true(file >= 0);
	unlink(tmpl);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(null >= 0);
	int sent[3] = {null, p[1], file};

	int sv[2];
	make_pair(sv);
	int before = count_open_fds();
	json_t *m = load_json("{\"argv\":[\"cat\"]}", 0);
	assert_int_equal(ac_proto_send(sv[0], m, sent, 3), 0);
	json_t *got = NULL;
	int fds[3] = {-5, -5, -5};
	assert_int_equal(ac_proto_recv(sv[1], &got, fds, 3), 0);
	assert_true(json_equal(m, got));
	for (int i = 0; i < 3; i++) {
		assert_true(fds[i] >= 0);
		assert_true(fds[i] != sent[i]);
		assert_same_file(fds[i], sent[i]);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(count_open_fds(), before + 3);
	/* The received pipe end really is the pipe. */
	assert_int_equal(write(fds[1], "z", 1), 1);
	char c = 0;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'z');
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	json_decref(got);
	json_decref(m);
	close_pair(sv);
	close(p[0]);
	close(p[1]);
	close(null);
	close(file);
}

static void test_recv_fewer_slots_than_fds(void **state)
{
	int sent[3];
	for (int i = 0; i < 3; i++)
		assert_true((sent[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	int sv[2];
	make_pair(sv);
	json_t *m = json_pack("{si}", "signal", 15);
	int before = count_open_fds();

	/* Descriptors beyond maxfds are closed, not leaked. */
	assert_int_equal(ac_proto_send(sv[0], m, sent, 3), 0);
	json_t *got = NULL;
	int fds[1] = {-5};
	assert_int_equal(ac_proto_recv(sv[1], &got, fds, 1), 0);
	assert_true(fds[0] >= 0);
	assert_same_file(fds[0], sent[0]);
	assert_int_equal(count_open_fds(), before + 1);
	close(fds[0]);
	json_decref(got);

	/* maxfds 0 with no array (the supervisor's signal relay). */
	assert_int_equal(ac_proto_send(sv[0], m, sent, 2), 0);
	got = NULL;
	assert_int_equal(ac_proto_recv(sv[1], &got, NULL, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(got, "signal")), 15);
	assert_int_equal(count_open_fds(), before);
	json_decref(got);
	json_decref(m);
	close_pair(sv);
	for (int i = 0; i < 3; i++)
		close(sent[i]);
}

static void test_recv_back_to_back(void **state)
{
	/* Two queued messages, each with its own descriptor: neither read takes the other's. */
	int a = open("/dev/null", O_RDONLY | O_CLOEXEC), b = open("/", O_RDONLY | O_CLOEXEC);
	assert_true(a >= 0 && b >= 0);
	int sv[2];
	make_pair(sv);
	json_t *m1 = json_pack("{si}", "n", 1), *m2 = json_pack("{si}", "n", 2);
	assert_int_equal(ac_proto_send(sv[0], m1, &a, 1), 0);
	assert_int_equal(ac_proto_send(sv[0], m2, &b, 1), 0);
	assert_int_equal(ac_proto_send(sv[0], m1, NULL, 0), 0);
	json_t *got = NULL;
	int fd[1];
	assert_int_equal(ac_proto_recv(sv[1], &got, fd, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
	assert_true(fd[0] >= 0);
	assert_same_file(fd[0], a);
	close(fd[0]);
	json_decref(got);
	assert_int_equal(ac_proto_recv(sv[1], &got, fd, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(got, "n")), 2);
	assert_true(fd[0] >= 0);
	assert_same_file(fd[0], b);
	close(fd[0]);
	json_decref(got);
	assert_int_equal(ac_proto_recv(sv[1], &got, fd, 1), 0);
	assert_int_equal(fd[0], -1);
	json_decref(got);
	json_decref(m1);
	json_decref(m2);
	close_pair(sv);
	close(a);
	close(b);
}

static void test_recv_bad_headers(void **state)
{
	uint32_t zero = 0, over = AC_PROTO_MAX_MSG + 1, huge = UINT32_MAX;
	expect_recv_fails(&zero, 4, false, EPROTO);
	expect_recv_fails(&over, 4, false, EPROTO);
	expect_recv_fails(&huge, 4, false, EPROTO);
	/* A header cut short by the peer. */
	expect_recv_fails("\x05\x00", 2, true, EPROTO);
	expect_recv_fails("\x05", 1, true, EPROTO);
}

static void test_recv_truncated_body(void **state)
{
	char buf[4 + 10];
	uint32_t hdr = 100;
	memcpy(buf, &hdr, 4);
	memcpy(buf + 4, "{\"argv\":[\"", 10);
	expect_recv_fails(buf, sizeof(buf), true, EPROTO);
	/* Only the header. */
	expect_recv_fails(buf, 4, true, EPROTO);
}

static void test_recv_bad_bodies(void **state)
{
	static const char *bodies[] = {
	    "hello",
	    "[1,2,3]",
	    "\"str\"",
	    "42",
	    "null",
	    "{",
	    "{}x",
	    "{} {}",
	    "{\"a\":1,\"a\":2}",   /* duplicates are refused */
	    "{\"a\":\"\\u0000\"}", /* NUL in a string */
	    "{\"a\":\"\xff\"}",	   /* not UTF-8 */
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bodies); i++) {
		size_t len = strlen(bodies[i]);
		char buf[64];
		uint32_t hdr = (uint32_t)len;
		memcpy(buf, &hdr, 4);
		memcpy(buf + 4, bodies[i], len);
		expect_recv_fails(buf, 4 + len, false, EPROTO);
	}
	/* A body with an embedded NUL byte and its full length in the header. */
	char buf[4 + 9];
	uint32_t hdr = 9;
	memcpy(buf, &hdr, 4);
	memcpy(buf + 4, "{\"a\":1}\0x", 9);
	expect_recv_fails(buf, sizeof(buf), false, EPROTO);
}

static void test_recv_peer_closed(void **state)
{
	int sv[2];
	make_pair(sv);
	close(sv[0]);
	json_t *msg = NULL;
	int fds[3];
	errno = 0;
	assert_int_equal(ac_proto_recv(sv[1], &msg, fds, 3), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_null(msg);
	close(sv[1]);

	/* A complete message, then the close: one message, then the end. */
	make_pair(sv);
	json_t *m = json_pack("{sb}", "timed_out", 1);
	assert_int_equal(ac_proto_send(sv[0], m, NULL, 0), 0);
	close(sv[0]);
	assert_int_equal(ac_proto_recv(sv[1], &msg, fds, 3), 0);
	assert_true(json_equal(m, msg));
	json_decref(msg);
	msg = NULL;
	assert_int_equal(ac_proto_recv(sv[1], &msg, fds, 3), -1);
	assert_int_equal(errno, ECONNRESET);
	json_decref(m);
	close(sv[1]);
}

static void test_send_to_closed_peer(void **state)
{
	/* No SIGPIPE (it would kill this process): -1 with EPIPE. */
	int sv[2];
	make_pair(sv);
	close(sv[1]);
	json_t *m = json_pack("{si}", "signal", 2);
	errno = 0;
	assert_int_equal(ac_proto_send(sv[0], m, NULL, 0), -1);
	assert_int_equal(errno, EPIPE);
	json_decref(m);
	close(sv[0]);
}

/* A body of exactly n bytes: {"p":"xxx..."}. */
static json_t *padded_message(size_t n)
{
	size_t fill = n - strlen("{\"p\":\"\"}");
	char *s = malloc(fill + 1);
	memset(s, 'x', fill);
	s[fill] = '\0';
	json_t *m = json_pack("{ss}", "p", s);
	free(s);
	return m;
}

static int send_large(void *arg)
{
	int *a = arg;
	json_t *m = padded_message(AC_PROTO_MAX_MSG);
	int fds[3] = {0, 1, 2};
	int rc = ac_proto_send(a[0], m, fds, 3);
	json_decref(m);
	return rc == 0 ? 0 : 1;
}

static void test_send_recv_max_size(void **state)
{
	/* AC_PROTO_MAX_MSG bytes, far more than the socket buffer, from another process. */
	int sv[2];
	make_pair(sv);
	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		_exit(send_large(sv));
	}
	json_t *got = NULL;
	int fds[3];
	assert_int_equal(ac_proto_recv(sv[1], &got, fds, 3), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(got, "p"))),
			 AC_PROTO_MAX_MSG - strlen("{\"p\":\"\"}"));
	for (int i = 0; i < 3; i++) {
		assert_true(fds[i] >= 0);
		close(fds[i]);
	}
	json_decref(got);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* One byte more is refused by the receiver. */
	json_t *m = padded_message(AC_PROTO_MAX_MSG + 1);
	char *body = json_dumps(m, JSON_COMPACT);
	assert_int_equal(strlen(body), AC_PROTO_MAX_MSG + 1);
	free(body);
	json_decref(m);
	uint32_t hdr = AC_PROTO_MAX_MSG + 1;
	write_frame(sv[0], hdr, "{}", 2);
	got = NULL;
	errno = 0;
	assert_int_equal(ac_proto_recv(sv[1], &got, fds, 3), -1);
	assert_int_equal(errno, EPROTO);
	close_pair(sv);
}

static void test_send_recv_request(void **state)
{
	/* The exec path end to end: build, send with descriptors, receive, validate. */
	ac_cmd_t cmd = {.argv = rt_argv,
			.env = rt_env,
			.cwd = "/workspace",
			.user = "1000",
			.timeout = 30,
			.stdin_open = true,
			.rows = 24,
			.cols = 80};
	int sv[2];
	make_pair(sv);
	json_t *req = ac_proto_build_request(&cmd);
	int fds[3] = {0, 1, 2};
	assert_int_equal(ac_proto_send(sv[0], req, fds, 3), 0);
	json_decref(req);
	json_t *got = NULL;
	int in[3];
	assert_int_equal(ac_proto_recv(sv[1], &got, in, 3), 0);
	ac_cmd_t back;
	char *errmsg = NULL;
	assert_int_equal(ac_proto_parse_request(got, &back, &errmsg), 0);
	assert_cmd_equal(&cmd, &back);
	free(back.argv);
	free(back.env);
	json_decref(got);
	for (int i = 0; i < 3; i++)
		close(in[i]);
	close_pair(sv);
}

static void test_recv_error_keeps_no_fds(void **state)
{
	/* A bad frame that carries descriptors: whatever recv hands back the caller closes,
	 * and nothing else stays open. */
	int sv[2];
	make_pair(sv);
	int before = count_open_fds();
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t hdr = 0;
	struct iovec iov = {&hdr, sizeof(hdr)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &null, sizeof(int));
	assert_int_equal(sendmsg(sv[0], &mh, 0), 4);
	close(null);
	json_t *msg = NULL;
	int fds[3];
	assert_int_equal(ac_proto_recv(sv[1], &msg, fds, 3), -1);
	assert_int_equal(errno, EPROTO);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	assert_int_equal(count_open_fds(), before);
	close_pair(sv);
}

/* ---- cgroup.c against a fake hierarchy ----
 * These tests check the knob file names, value formats and write order against a
 * directory tree made here; the real kernel's behaviour is covered by the integration
 * tests (tests/integration/test_limits.sh). Each knob is a FIFO that this process holds
 * open for reading and writing, so every single write the code makes is recorded in
 * order (as the kernel sees separate writes), and the code's open(O_WRONLY) never blocks. */

#define MAX_KNOBS 40

struct cgfake {
	char root[64];
	int n;
	struct {
		char rel[200];
		int fd;
	} knobs[MAX_KNOBS];
};

static int cg_setup(void **state)
{
	struct cgfake *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/ac-test-cg-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int cg_teardown(void **state)
{
	struct cgfake *f = *state;
	for (int i = 0; i < f->n; i++)
		if (f->knobs[i].fd >= 0)
			close(f->knobs[i].fd);
	int r = ac_rm_rf_at(AT_FDCWD, f->root, NULL);
	ac_cgroup_set_root_for_tests("/sys/fs/cgroup", -1);
	free(f);
	return r;
}

static void fake_dir(struct cgfake *f, const char *rel)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/%s", f->root, rel);
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, p, 0755, NULL), 0);
}

static void fake_knob(struct cgfake *f, const char *dir, const char *knob)
{
	assert_true(f->n < MAX_KNOBS);
	char p[400];
	snprintf(f->knobs[f->n].rel, sizeof(f->knobs[f->n].rel), "%s/%s", dir, knob);
	snprintf(p, sizeof(p), "%s/%s", f->root, f->knobs[f->n].rel);
	assert_int_equal(mkfifo(p, 0600), 0);
	f->knobs[f->n].fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	assert_true(f->knobs[f->n].fd >= 0);
	f->n++;
}

/* Everything written to dir/knob since the last call, concatenated. */
static const char *knob_writes(struct cgfake *f, const char *dir, const char *knob)
{
	static char buf[4096];
	char rel[200];
	snprintf(rel, sizeof(rel), "%s/%s", dir, knob);
	for (int i = 0; i < f->n; i++) {
		if (strcmp(f->knobs[i].rel, rel) != 0)
			continue;
		ssize_t n = read(f->knobs[i].fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		return buf;
	}
	fail_msg("no fake knob %s", rel);
	return NULL;
}

#define assert_knob(f, dir, knob, want) assert_string_equal(knob_writes(f, dir, knob), want)

static void remove_knobs(struct cgfake *f)
{
	for (int i = 0; i < f->n; i++) {
		char p[400];
		snprintf(p, sizeof(p), "%s/%s", f->root, f->knobs[i].rel);
		close(f->knobs[i].fd);
		f->knobs[i].fd = -1;
		unlink(p);
	}
	f->n = 0;
}

static const char *v1_dirs[] = {"memory/agentcell/box", "cpu/agentcell/box", "pids/agentcell/box"};

static void fake_v1(struct cgfake *f, bool memsw)
{
	for (int i = 0; i < 3; i++) {
		fake_dir(f, v1_dirs[i]);
		fake_knob(f, v1_dirs[i], "cgroup.procs");
		fake_knob(f, v1_dirs[i], "tasks");
	}
	fake_knob(f, v1_dirs[0], "memory.limit_in_bytes");
	if (memsw)
		fake_knob(f, v1_dirs[0], "memory.memsw.limit_in_bytes");
	fake_knob(f, v1_dirs[1], "cpu.cfs_period_us");
	fake_knob(f, v1_dirs[1], "cpu.cfs_quota_us");
	fake_knob(f, v1_dirs[2], "pids.max");
	ac_cgroup_set_root_for_tests(f->root, 1);
}

static void fake_v2(struct cgfake *f, bool swap)
{
	fake_dir(f, "agentcell/box");
	fake_knob(f, ".", "cgroup.subtree_control");
	fake_knob(f, "agentcell", "cgroup.subtree_control");
	const char *d = "agentcell/box";
	fake_knob(f, d, "memory.max");
	if (swap)
		fake_knob(f, d, "memory.swap.max");
	fake_knob(f, d, "cpu.max");
	fake_knob(f, d, "pids.max");
	fake_knob(f, d, "cgroup.procs");
	ac_cgroup_set_root_for_tests(f->root, 2);
}

static bool fake_exists(struct cgfake *f, const char *rel)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/%s", f->root, rel);
	return access(p, F_OK) == 0;
}

static void test_cgroup_v1_limits(void **state)
{
	struct cgfake *f = *state;
	fake_v1(f, true);
	const char *root = NULL;
	assert_int_equal(ac_cgroup_mode(&root), 1);
	assert_string_equal(root, f->root);

	ac_rt_limits_t lim = {.memory_mb = 64, .cpus = 0.5, .pids = 100};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), 0);
	assert_null(err);
	assert_knob(f, v1_dirs[0], "memory.limit_in_bytes", "67108864");
	assert_knob(f, v1_dirs[0], "memory.memsw.limit_in_bytes", "67108864");
	assert_knob(f, v1_dirs[1], "cpu.cfs_period_us", "100000");
	assert_knob(f, v1_dirs[1], "cpu.cfs_quota_us", "50000");
	assert_knob(f, v1_dirs[2], "pids.max", "100");

	/* Unlimited: -1 for memory and quota, "max" for pids. */
	lim = (ac_rt_limits_t){0};
	assert_int_equal(ac_cgroup_set_limits(cg, &lim, &err), 0);
	assert_knob(f, v1_dirs[0], "memory.limit_in_bytes", "-1");
	assert_knob(f, v1_dirs[0], "memory.memsw.limit_in_bytes", "-1");
	assert_knob(f, v1_dirs[1], "cpu.cfs_period_us", "100000");
	assert_knob(f, v1_dirs[1], "cpu.cfs_quota_us", "-1");
	assert_knob(f, v1_dirs[2], "pids.max", "max");

	static const struct {
		double cpus;
		const char *quota;
	} cpus[] = {{2, "200000"},  {1.234567, "123457"}, {0.001, "1000"}, /* kernel minimum */
		    {0.01, "1000"}, {0.0105, "1050"},	  {-1, "-1"},	   {1024, "102400000"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cpus); i++) {
		lim = (ac_rt_limits_t){.memory_mb = 1, .cpus = cpus[i].cpus, .pids = 1};
		assert_int_equal(ac_cgroup_set_limits(cg, &lim, &err), 0);
		assert_knob(f, v1_dirs[0], "memory.limit_in_bytes", "1048576");
		assert_knob(f, v1_dirs[0], "memory.memsw.limit_in_bytes", "1048576");
		assert_knob(f, v1_dirs[1], "cpu.cfs_period_us", "100000");
		const char *q = knob_writes(f, v1_dirs[1], "cpu.cfs_quota_us");
		if (strcmp(q, cpus[i].quota) != 0)
			fail_msg("cpus %g: quota '%s', wanted '%s'", cpus[i].cpus, q,
				 cpus[i].quota);
		assert_knob(f, v1_dirs[2], "pids.max", "1");
	}

	/* Attach writes the pid to every controller's cgroup.procs; attach_self writes 0 to
	 * the thread-level tasks file (see cgroup.c for why). */
	assert_int_equal(ac_cgroup_attach(cg, 4242, &err), 0);
	assert_int_equal(ac_cgroup_attach_self(cg, &err), 0);
	for (int i = 0; i < 3; i++) {
		assert_knob(f, v1_dirs[i], "cgroup.procs", "4242");
		assert_knob(f, v1_dirs[i], "tasks", "0");
	}
	ac_cgroup_free(cg);
}

static void test_cgroup_v1_without_memsw(void **state)
{
	/* Kernels booted without swap accounting have no memsw knob: not an error. */
	struct cgfake *f = *state;
	fake_v1(f, false);
	ac_rt_limits_t lim = {.memory_mb = 2048, .cpus = 1, .pids = 0};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), 0);
	assert_knob(f, v1_dirs[0], "memory.limit_in_bytes", "2147483648");
	assert_false(fake_exists(f, "memory/agentcell/box/memory.memsw.limit_in_bytes"));
	assert_knob(f, v1_dirs[1], "cpu.cfs_quota_us", "100000");
	assert_knob(f, v1_dirs[2], "pids.max", "max");
	ac_cgroup_free(cg);
}

static void test_cgroup_v2_limits(void **state)
{
	struct cgfake *f = *state;
	fake_v2(f, true);
	ac_rt_limits_t lim = {.memory_mb = 64, .cpus = 0.5, .pids = 100};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), 0);
	assert_null(err);
	/* Controllers are enabled in every ancestor, one per write. */
	assert_knob(f, ".", "cgroup.subtree_control", "+memory+cpu+pids");
	assert_knob(f, "agentcell", "cgroup.subtree_control", "+memory+cpu+pids");
	const char *d = "agentcell/box";
	assert_knob(f, d, "memory.max", "67108864");
	assert_knob(f, d, "memory.swap.max", "0");
	assert_knob(f, d, "cpu.max", "50000 100000");
	assert_knob(f, d, "pids.max", "100");

	lim = (ac_rt_limits_t){0};
	assert_int_equal(ac_cgroup_set_limits(cg, &lim, &err), 0);
	assert_knob(f, d, "memory.max", "max");
	assert_knob(f, d, "memory.swap.max", "0");
	assert_knob(f, d, "cpu.max", "max 100000");
	assert_knob(f, d, "pids.max", "max");
	assert_knob(f, ".", "cgroup.subtree_control", ""); /* only at creation */

	lim = (ac_rt_limits_t){.memory_mb = 1, .cpus = 0.001, .pids = 1};
	assert_int_equal(ac_cgroup_set_limits(cg, &lim, &err), 0);
	assert_knob(f, d, "memory.max", "1048576");
	assert_knob(f, d, "cpu.max", "1000 100000");
	assert_knob(f, d, "pids.max", "1");
	memset(&lim, 0, sizeof(lim));
	lim.cpus = 3;
	assert_int_equal(ac_cgroup_set_limits(cg, &lim, &err), 0);
	assert_knob(f, d, "cpu.max", "300000 100000");

	assert_int_equal(ac_cgroup_attach(cg, 77, &err), 0);
	assert_knob(f, d, "cgroup.procs", "77");
	assert_int_equal(ac_cgroup_attach_self(cg, &err), 0);
	assert_knob(f, d, "cgroup.procs", "0");
	assert_null(err);
	ac_cgroup_free(cg);
}

static void test_cgroup_v2_without_swap(void **state)
{
	struct cgfake *f = *state;
	fake_v2(f, false);
	ac_rt_limits_t lim = {.memory_mb = 512, .cpus = 1, .pids = 64};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), 0);
	assert_knob(f, "agentcell/box", "memory.max", "536870912");
	assert_false(fake_exists(f, "agentcell/box/memory.swap.max"));
	assert_knob(f, "agentcell/box", "cpu.max", "100000 100000");
	assert_knob(f, "agentcell/box", "pids.max", "64");
	ac_cgroup_free(cg);
}

static void test_cgroup_v2_no_controllers(void **state)
{
	/* No subtree_control at the root: a backend error that names the controller. */
	struct cgfake *f = *state;
	ac_cgroup_set_root_for_tests(f->root, 2);
	ac_rt_limits_t lim = {.memory_mb = 64};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), -1);
	assert_null(cg);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(err->msg, "memory"));
	ac_error_free(err);
	assert_false(fake_exists(f, "agentcell/box"));
}

static void test_cgroup_create_failure_cleans_up(void **state)
{
	/* v1 controllers without knob files: the limits cannot be written, so create fails
	 * and removes the leaf directories it made. */
	struct cgfake *f = *state;
	fake_dir(f, "memory");
	fake_dir(f, "cpu");
	fake_dir(f, "pids");
	ac_cgroup_set_root_for_tests(f->root, 1);
	ac_rt_limits_t lim = {.memory_mb = 64, .cpus = 1, .pids = 10};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), -1);
	assert_null(cg);
	assert_non_null(err);
	assert_non_null(strstr(err->msg, "cannot set limits"));
	ac_error_free(err);
	for (int i = 0; i < 3; i++) {
		assert_false(fake_exists(f, v1_dirs[i]));
		char parent[64];
		snprintf(parent, sizeof(parent), "%.*s",
			 (int)(strrchr(v1_dirs[i], '/') - v1_dirs[i]), v1_dirs[i]);
		assert_true(fake_exists(f, parent));
	}
}

static void test_cgroup_mode_detection(void **state)
{
	struct cgfake *f = *state;
	ac_cgroup_set_root_for_tests(f->root, -1);
	assert_int_equal(ac_cgroup_mode(NULL), 0);
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_open("box", &cg, &err), -1);
	assert_null(cg);
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	ac_error_free(err);

	fake_dir(f, "memory");
	ac_cgroup_set_root_for_tests(f->root, -1);
	assert_int_equal(ac_cgroup_mode(NULL), 1);
	/* open neither creates nor writes anything. */
	err = NULL;
	assert_int_equal(ac_cgroup_open("box", &cg, &err), 0);
	assert_false(fake_exists(f, "memory/agentcell"));
	ac_cgroup_free(cg);
}

static void test_cgroup_destroy(void **state)
{
	struct cgfake *f = *state;
	fake_v1(f, true);
	ac_rt_limits_t lim = {.memory_mb = 64};
	ac_cgroup_t *cg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_cgroup_create("box", &lim, &cg, &err), 0);
	/* A regular directory with files is not a cgroup: rmdir fails, and destroy says so
	 * at once instead of retrying (only EBUSY is retried). */
	assert_int_equal(ac_cgroup_destroy(cg, &err), -1);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_int_equal(err->errnum, ENOTEMPTY);
	ac_error_free(err);
	err = NULL;

	remove_knobs(f);
	assert_int_equal(ac_cgroup_destroy(cg, &err), 0);
	for (int i = 0; i < 3; i++)
		assert_false(fake_exists(f, v1_dirs[i]));
	assert_int_equal(ac_cgroup_destroy(cg, &err), 0); /* already gone */
	assert_int_equal(ac_cgroup_destroy(NULL, &err), 0);
	assert_null(err);
	ac_cgroup_free(cg);
	ac_cgroup_free(NULL);
}

static pid_t dead_pid(void)
{
	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void test_cgroup_gc_runs(void **state)
{
	struct cgfake *f = *state;
	pid_t dead = dead_pid();
	static const char *ctrls[] = {"memory", "cpu", "pids"};
	char rel[128];
	for (int i = 0; i < 3; i++) {
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-1", ctrls[i], (int)dead);
		fake_dir(f, rel);
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-2", ctrls[i], (int)dead);
		fake_dir(f, rel);
		fake_knob(f, rel, "cgroup.procs"); /* populated: rmdir fails, left alone */
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-1", ctrls[i], (int)getpid());
		fake_dir(f, rel);
		snprintf(rel, sizeof(rel), "%s/agentcell/box", ctrls[i]);
		fake_dir(f, rel);
	}
	ac_cgroup_set_root_for_tests(f->root, 1);
	ac_cgroup_gc_runs();
	for (int i = 0; i < 3; i++) {
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-1", ctrls[i], (int)dead);
		assert_false(fake_exists(f, rel));
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-2", ctrls[i], (int)dead);
		assert_true(fake_exists(f, rel));
		snprintf(rel, sizeof(rel), "%s/agentcell/run-%d-1", ctrls[i], (int)getpid());
		assert_true(fake_exists(f, rel));
		snprintf(rel, sizeof(rel), "%s/agentcell/box", ctrls[i]);
		assert_true(fake_exists(f, rel));
	}
}

/* ---- spawn.c: ac_user_resolve against this host's /etc/passwd ---- */

static void test_user_resolve_numeric(void **state)
{
	uid_t uid = 1;
	gid_t gid = 1;
	char home[256];
	assert_int_equal(ac_user_resolve("0", &uid, &gid, home, sizeof(home)), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_string_equal(home, "/root");
	/* A uid with no passwd entry is fine: uid = gid = the number, home "/". */
	static const char *absent[] = {"1234", "4294967294", "23456789"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(absent); i++) {
		uint64_t want = strtoull(absent[i], NULL, 10);
		if (getpwuid((uid_t)want) != NULL)
			continue; /* this host has it */
		assert_int_equal(ac_user_resolve(absent[i], &uid, &gid, home, sizeof(home)), 0);
		assert_int_equal(uid, (uid_t)want);
		assert_int_equal(gid, (gid_t)want);
		assert_string_equal(home, "/");
	}
	/* A uid that has an entry takes its gid and home from it. */
	struct passwd *pw = getpwnam("nobody");
	if (pw != NULL) {
		char spec[16];
		snprintf(spec, sizeof(spec), "%u", (unsigned)pw->pw_uid);
		assert_int_equal(ac_user_resolve(spec, &uid, &gid, home, sizeof(home)), 0);
		assert_int_equal(uid, pw->pw_uid);
		assert_int_equal(gid, pw->pw_gid);
		assert_string_equal(home, pw->pw_dir);
	}
}

static void test_user_resolve_names(void **state)
{
	uid_t uid;
	gid_t gid;
	char home[256];
	assert_int_equal(ac_user_resolve("root", &uid, &gid, home, sizeof(home)), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_string_equal(home, "/root");

	struct passwd *pw = getpwnam("nobody");
	if (pw == NULL) {
		print_message("no user 'nobody' on this host: skipped\n");
	} else {
		assert_int_equal(ac_user_resolve("nobody", &uid, &gid, home, sizeof(home)), 0);
		assert_int_equal(uid, 65534);
		assert_int_equal(uid, pw->pw_uid);
		assert_int_equal(gid, pw->pw_gid);
		assert_string_equal(home, pw->pw_dir);
	}

	/* A short home buffer truncates, never overflows (ASan). */
	char tiny[4];
	assert_int_equal(ac_user_resolve("root", &uid, &gid, tiny, sizeof(tiny)), 0);
	assert_string_equal(tiny, "/ro");
}

static void test_user_resolve_invalid(void **state)
{
	static const char *bad[] = {"no-such-user-ac",
				    "-1",
				    "99999999999",
				    "4294967295",
				    "18446744073709551616",
				    "",
				    " 0",
				    "0 ",
				    "+1",
				    "0x10",
				    "1e3",
				    "root:x",
				    "ROOT",
				    "roo",
				    "root\n"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		uid_t uid = 4242;
		gid_t gid = 4242;
		char home[64] = "untouched";
		int r = ac_user_resolve(bad[i], &uid, &gid, home, sizeof(home));
		if (r != -ENOENT)
			fail_msg("user '%s': %d (uid %u), wanted -ENOENT", bad[i], r,
				 (unsigned)uid);
	}
}

/* ---- seccomp.c (each test in a fresh child: the filter cannot be unloaded) ---- */

static int no_new_privs_and_load(void)
{
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(ac_seccomp_load() == 0);
	return 0;
}

static void *thread_fn(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

#if defined(__x86_64__)
static long int80(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

/* Whether this kernel runs 32-bit syscalls (IA32 emulation): probed in a child with
 * default signal dispositions, since without it int $0x80 kills the caller. */
static int probe_int80(void *arg)
{
	return int80(20 /* i386 getpid */, 0, 0, 0) == getpid() ? 0 : 1;
}
#endif

/* What the sandbox's commands may not do, and what they still can. */
static int check_filter_applied(void)
{
	CHECK_ERRNO(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	static const int ns[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
				 CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ns); i++) {
		CHECK_ERRNO(unshare(ns[i]), EPERM);
		CHECK_ERRNO(unshare(ns[i] | CLONE_FILES), EPERM);
	}
	CHECK_ERRNO(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID), EPERM);
	for (size_t i = 0; i < AC_ARRAY_SIZE(ns) - 1; i++) { /* NEWTIME shares CSIGNAL's bits */
		errno = 0;
		long r = syscall(SYS_clone, (long)ns[i] | SIGCHLD, 0L, 0L, 0L, 0L);
		if (r == 0)
			_exit(0); /* the filter let it through: leave at once */
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		CHECK(r == -1 && errno == EPERM);
	}
	CHECK_ERRNO(syscall(SYS_clone3, NULL, 0), ENOSYS);
	CHECK_ERRNO(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_add_key, "user", "ac-test", "x", 1, -2), EPERM);
	CHECK_ERRNO(syscall(SYS_request_key, "user", "ac-test", NULL, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	CHECK_ERRNO(socket(AF_PACKET, SOCK_RAW, 0), EPERM);
	CHECK_ERRNO(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0), EPERM);
	CHECK_ERRNO(socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
	CHECK_ERRNO(socket(AF_KEY, SOCK_RAW, 2), EPERM);
	CHECK_ERRNO(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
	CHECK_ERRNO(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_io_uring_register, -1, 0, NULL, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_userfaultfd, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_setns, -1, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_open_by_handle_at, -1, NULL, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_pidfd_getfd, -1, 0, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, getppid(), 0, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_reboot, 0, 0, 0, NULL), EPERM); /* bad magic: harmless */
	CHECK_ERRNO(mount(NULL, "/nonexistent-ac", NULL, 0, NULL), EPERM);
	CHECK_ERRNO(syscall(SYS_fsopen, "tmpfs", 0), EPERM);
	char c = 'x';
	CHECK_ERRNO(ioctl(-1, TIOCSTI, &c), EPERM); /* EBADF without the filter */
	/* x32 entry point (the x32 bit on an x86-64 syscall number). */
#if defined(__x86_64__)
	CHECK_ERRNO(syscall(0x40000000L | SYS_bpf, 0, NULL, 0), EPERM);
#endif

	/* Still allowed. */
	CHECK(syscall(SYS_getpid) == getpid());
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(write(p[1], "ok", 2) == 2);
	char buf[2];
	CHECK(read(p[0], buf, 2) == 2 && memcmp(buf, "ok", 2) == 0);
	struct winsize ws;
	CHECK_ERRNO(ioctl(p[0], TIOCGWINSZ, &ws), ENOTTY);
	close(p[0]);
	close(p[1]);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	close(s);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	close(sv[0]);
	close(sv[1]);
	CHECK(unshare(0) == 0);
	CHECK(unshare(CLONE_FILES) == 0);
	CHECK(unshare(CLONE_FS) == 0);
	/* fork (clone without namespace flags) and threads (clone3 -> ENOSYS -> clone). */
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(7);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	pthread_t t;
	int v = 0;
	CHECK(pthread_create(&t, NULL, thread_fn, &v) == 0);
	CHECK(pthread_join(t, NULL) == 0 && v == 42);
	return 0;
}

static int child_prepare_load(void *arg)
{
	ac_error_t *err = NULL;
	CHECK(ac_seccomp_prepare(&err) == 0);
	CHECK(ac_seccomp_prepare(&err) == 0); /* compiled once, then a no-op */
	CHECK(err == NULL);
	int r = no_new_privs_and_load();
	if (r != 0)
		return r;
	r = check_filter_applied();
	if (r != 0)
		return r;
	/* Loading again stacks a second copy: still fine. */
	CHECK(ac_seccomp_load() == 0);
	CHECK_ERRNO(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	return 0;
}

static void test_seccomp_filter(void **state)
{
	assert_int_equal(run_in_child(child_prepare_load, NULL), 0);
}

#if defined(__x86_64__)
static int child_filter_ia32(void *arg)
{
	ac_error_t *err = NULL;
	CHECK(ac_seccomp_prepare(&err) == 0);
	int r = no_new_privs_and_load();
	if (r != 0)
		return r;
	CHECK(int80(357 /* i386 bpf */, 0, 0, 0) == -EPERM);
	CHECK(int80(310 /* i386 unshare */, CLONE_NEWUSER, 0, 0) == -EPERM);
	CHECK(int80(20 /* i386 getpid */, 0, 0, 0) == getpid());
	return 0;
}
#endif

/* The 32-bit entry point (int $0x80) gets the same rules, where the kernel has one. */
static void test_seccomp_filter_ia32(void **state)
{
#if defined(__x86_64__)
	int probe = run_in_child(probe_int80, NULL);
	if (probe != 0) {
		/* Without IA32 emulation int $0x80 is a SIGSEGV: the entry point does not
		 * exist, so there is nothing to refuse. */
		printf("# skipped: no IA32 emulation (int $0x80 %s %d)\n",
		       probe >= 1000 ? "ended with signal" : "returned", probe % 1000);
		fflush(stdout);
		skip();
	}
	assert_int_equal(run_in_child(child_filter_ia32, NULL), 0);
#else
	printf("# skipped: not x86-64\n");
	fflush(stdout);
	skip();
#endif
}

static int child_load_unprepared(void *arg)
{
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK_ERRNO(ac_seccomp_load(), EINVAL);
	return 0;
}

static void test_seccomp_load_unprepared(void **state)
{
	/* This process never prepares a filter (every seccomp test does so in a child). */
	assert_int_equal(run_in_child(child_load_unprepared, NULL), 0);
}

struct seccomp_home {
	char home[64];
	char base[96];
};

static int seccomp_setup(void **state)
{
	struct seccomp_home *h = calloc(1, sizeof(*h));
	snprintf(h->home, sizeof(h->home), "/tmp/ac-test-seccomp-XXXXXX");
	if (mkdtemp(h->home) == NULL)
		return -1;
	snprintf(h->base, sizeof(h->base), "%s/base", h->home);
	if (mkdir(h->base, 0700) < 0)
		return -1;
	*state = h;
	return 0;
}

static int seccomp_teardown(void **state)
{
	struct seccomp_home *h = *state;
	int r = ac_rm_rf_at(AT_FDCWD, h->home, NULL);
	free(h);
	return r;
}

static int child_prepare_cached(void *arg)
{
	ac_error_t *err = NULL;
	CHECK(ac_seccomp_prepare_cached(arg, false, &err) == 0);
	CHECK(err == NULL);
	return 0;
}

static int child_cached_filter_works(void *arg)
{
	int r = child_prepare_cached(arg);
	if (r != 0)
		return r;
	r = no_new_privs_and_load();
	if (r != 0)
		return r;
	return check_filter_applied();
}

/* The one cache file under base/, or NULL. */
static char *cache_file(struct seccomp_home *h)
{
	char pat[160];
	snprintf(pat, sizeof(pat), "%s/seccomp-*.bpf", h->base);
	glob_t g;
	char *path = NULL;
	if (glob(pat, 0, NULL, &g) == 0) {
		assert_int_equal(g.gl_pathc, 1);
		path = strdup(g.gl_pathv[0]);
	}
	globfree(&g);
	return path;
}

static void assert_valid_cache(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(st.st_size > 0);
	assert_int_equal(st.st_size % sizeof(struct sock_filter), 0);
	assert_int_equal(st.st_size % 8, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, geteuid());
}

static void test_seccomp_cache(void **state)
{
	struct seccomp_home *h = *state;
	assert_int_equal(run_in_child(child_prepare_cached, h->home), 0);
	char *path = cache_file(h);
	assert_non_null(path);
	assert_valid_cache(path);
	struct stat first;
	assert_int_equal(stat(path, &first), 0);

	/* A second process loads the file and gets the same filter. */
	assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
	struct stat again;
	assert_int_equal(stat(path, &again), 0);
	assert_int_equal(again.st_ino, first.st_ino); /* read, not rewritten */
	free(path);
}

/* A stand-in program that makes getppid fail with E2BIG: proves the file is what runs. */
static void write_marker_program(const char *path)
{
	struct sock_filter prog[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | E2BIG),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, prog, sizeof(prog), 0600, NULL),
			 0);
}

static int child_marker_loaded(void *arg)
{
	int r = child_prepare_cached(arg);
	if (r != 0)
		return r;
	r = no_new_privs_and_load();
	if (r != 0)
		return r;
	CHECK_ERRNO(syscall(SYS_getppid), E2BIG); /* libc's getppid never fails */
	return 0;
}

static void test_seccomp_cache_is_used(void **state)
{
	struct seccomp_home *h = *state;
	assert_int_equal(run_in_child(child_prepare_cached, h->home), 0);
	char *path = cache_file(h);
	assert_non_null(path);
	write_marker_program(path);
	assert_int_equal(run_in_child(child_marker_loaded, h->home), 0);
	free(path);
}

static void test_seccomp_cache_rejected(void **state)
{
	struct seccomp_home *h = *state;
	assert_int_equal(run_in_child(child_prepare_cached, h->home), 0);
	char *path = cache_file(h);
	assert_non_null(path);

	/* A torn file (not a whole number of instructions) is recompiled and replaced. */
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, "1234567", 7, 0600, NULL), 0);
	assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
	assert_valid_cache(path);

	/* An empty file too. */
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, "", 0, 0600, NULL), 0);
	assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
	assert_valid_cache(path);

	/* A symlink is not followed: the target's program never runs, and is not written. */
	char target[160];
	snprintf(target, sizeof(target), "%s/elsewhere.bpf", h->home);
	write_marker_program(target);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
	assert_valid_cache(path); /* the link was replaced by a real file */
	struct stat st;
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 4 * sizeof(struct sock_filter));

	/* A file owned by someone else is not trusted (needs root to set up). */
	write_marker_program(path);
	uid_t other = geteuid() == 65534 ? 65533 : 65534;
	if (chown(path, other, other) == 0) {
		assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
		assert_valid_cache(path);
	}
	free(path);
}

static void test_seccomp_cache_without_base(void **state)
{
	/* Caching is best effort: no base directory, still a working filter, no file. */
	struct seccomp_home *h = *state;
	assert_int_equal(rmdir(h->base), 0);
	assert_int_equal(run_in_child(child_cached_filter_works, h->home), 0);
	assert_int_equal(access(h->base, F_OK), -1);
	assert_int_equal(mkdir(h->base, 0700), 0);
}

struct setid_arg {
	const char *home;
	char file[160], created[160];
	bool no_setid, plain_last;
};

/* What no_setid refuses (setuid/setgid bits) and what it leaves alone. */
static int check_setid_rules(const struct setid_arg *a, bool refused)
{
	if (!refused) {
		CHECK(chmod(a->file, 04755) == 0);
		CHECK(chmod(a->file, 02755) == 0);
		return 0;
	}
	CHECK_ERRNO(chmod(a->file, 04755), EPERM);
	CHECK_ERRNO(chmod(a->file, 02711), EPERM);
	CHECK_ERRNO(fchmodat(AT_FDCWD, a->file, 06755, 0), EPERM);
	int fd = open(a->file, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_ERRNO(fchmod(fd, 04700), EPERM);
	CHECK(fchmod(fd, 0700) == 0);
	close(fd);
	CHECK(chmod(a->file, 0755) == 0);
	CHECK_ERRNO(open(a->created, O_WRONLY | O_CREAT | O_CLOEXEC, 04755), EPERM);
#if defined(SYS_open) && defined(SYS_creat)
	CHECK_ERRNO(syscall(SYS_open, a->created, O_WRONLY | O_CREAT | O_CLOEXEC, 02755), EPERM);
	CHECK_ERRNO(syscall(SYS_creat, a->created, 04755), EPERM);
#endif
	CHECK_ERRNO(mknod(a->created, S_IFREG | 04644, 0), EPERM);
	CHECK_ERRNO(syscall(SYS_openat2, AT_FDCWD, a->file, NULL, 0), ENOSYS);
	CHECK_ERRNO(syscall(452 /* fchmodat2 */, AT_FDCWD, a->file, 0755, 0), ENOSYS);
	/* Plain creation and an existing file opened with setuid bits in mode still work. */
	fd = open(a->created, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	CHECK(fd >= 0);
	close(fd);
	fd = open(a->created, O_WRONLY | O_CLOEXEC, 04755); /* no O_CREAT: mode unused */
	CHECK(fd >= 0);
	close(fd);
	CHECK(unlink(a->created) == 0);
	return 0;
}

static int child_setid(void *arg)
{
	struct setid_arg *a = arg;
	ac_error_t *err = NULL;
	if (a->plain_last) {
		CHECK(ac_seccomp_prepare_cached(a->home, true, &err) == 0);
		CHECK(ac_seccomp_prepare(&err) == 0);
	} else if (a->no_setid) {
		CHECK(ac_seccomp_prepare(&err) == 0);
		CHECK(ac_seccomp_prepare_cached(a->home, true, &err) == 0);
	} else {
		CHECK(ac_seccomp_prepare_cached(a->home, false, &err) == 0);
	}
	int r = no_new_privs_and_load();
	if (r != 0)
		return r;
	CHECK_ERRNO(syscall(SYS_bpf, 0, NULL, 0), EPERM); /* the base rules in both */
	return check_setid_rules(a, a->no_setid && !a->plain_last);
}

static void test_seccomp_no_setid(void **state)
{
	struct seccomp_home *h = *state;
	struct setid_arg a = {.home = h->home};
	snprintf(a.file, sizeof(a.file), "%s/prog", h->home);
	snprintf(a.created, sizeof(a.created), "%s/new", h->home);
	int fd = open(a.file, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	close(fd);

	a.no_setid = true;
	assert_int_equal(run_in_child(child_setid, &a), 0);
	/* Cached too: the second run loads the file. */
	assert_int_equal(run_in_child(child_setid, &a), 0);
	a.no_setid = false;
	assert_int_equal(run_in_child(child_setid, &a), 0);
	/* The program prepared last is the one loaded. */
	a.plain_last = true;
	assert_int_equal(run_in_child(child_setid, &a), 0);

	/* One cache file per variant. */
	char pat[160];
	snprintf(pat, sizeof(pat), "%s/seccomp-*.bpf", h->base);
	glob_t g;
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 2);
	for (size_t i = 0; i < g.gl_pathc; i++)
		assert_valid_cache(g.gl_pathv[i]);
	globfree(&g);
}

/* ---- proc.c ---- */

static void test_proc_starttime_self(void **state)
{
	unsigned long long self = ac_proc_starttime(getpid());
	assert_true(self > 0);
	assert_true(ac_proc_starttime(getpid()) == self);
	assert_true(ac_proc_starttime(getppid()) > 0);
	assert_true(ac_proc_starttime(getppid()) <= self);
	assert_true(ac_proc_starttime(0) == 0);
	assert_true(ac_proc_starttime(-1) == 0);
	assert_true(ac_proc_starttime(INT_MAX) == 0);
}

static void test_proc_starttime_child(void **state)
{
	int go[2], ready[2];
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		/* A comm built to fool a naive parser: spaces, ')' and a fake state. */
		prctl(PR_SET_NAME, "x) Z 1 (2) 3", 0, 0, 0);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		if (read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	unsigned long long before = ac_proc_starttime(pid);
	assert_true(before > 0);
	assert_true(before >= ac_proc_starttime(getpid()));
	assert_int_equal(write(go[1], "g", 1), 1);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_true(ac_proc_starttime(pid) == before);

	/* Exited but not yet reaped: a zombie counts as gone. */
	assert_int_equal(write(go[1], "g", 1), 1);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(si.si_pid, pid);
	assert_true(ac_proc_starttime(pid) == 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_true(ac_proc_starttime(pid) == 0);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
}

static void test_proc_zombie(void **state)
{
	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(3);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_true(ac_proc_starttime(pid) == 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(WEXITSTATUS(st), 3);
	assert_true(ac_proc_starttime(pid) == 0);
	assert_true(ac_proc_starttime(dead_pid()) == 0);
}

static void test_boot_id(void **state)
{
	char a[37], b[37];
	memset(a, 'Q', sizeof(a));
	assert_int_equal(ac_boot_id(a), 0);
	assert_int_equal(strlen(a), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", a[i]));
	}
	assert_int_equal(ac_boot_id(b), 0);
	assert_string_equal(a, b);
}

#define CG(fn)	cmocka_unit_test_setup_teardown(fn, cg_setup, cg_teardown)
#define SEC(fn) cmocka_unit_test_setup_teardown(fn, seccomp_setup, seccomp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_full),
	    cmocka_unit_test(test_parse_defaults),
	    cmocka_unit_test(test_parse_argv_invalid),
	    cmocka_unit_test(test_parse_not_object),
	    cmocka_unit_test(test_parse_argv_limits),
	    cmocka_unit_test(test_parse_env_invalid),
	    cmocka_unit_test(test_parse_cwd_user_invalid),
	    cmocka_unit_test(test_parse_timeout),
	    cmocka_unit_test(test_parse_rows_cols_and_flags),
	    cmocka_unit_test(test_build_parse_round_trip),
	    cmocka_unit_test(test_build_request_non_utf8),
	    cmocka_unit_test(test_send_recv_no_fds),
	    cmocka_unit_test(test_send_recv_three_fds),
	    cmocka_unit_test(test_recv_fewer_slots_than_fds),
	    cmocka_unit_test(test_recv_back_to_back),
	    cmocka_unit_test(test_recv_bad_headers),
	    cmocka_unit_test(test_recv_truncated_body),
	    cmocka_unit_test(test_recv_bad_bodies),
	    cmocka_unit_test(test_recv_peer_closed),
	    cmocka_unit_test(test_send_to_closed_peer),
	    cmocka_unit_test(test_send_recv_max_size),
	    cmocka_unit_test(test_send_recv_request),
	    cmocka_unit_test(test_recv_error_keeps_no_fds),
	    CG(test_cgroup_v1_limits),
	    CG(test_cgroup_v1_without_memsw),
	    CG(test_cgroup_v2_limits),
	    CG(test_cgroup_v2_without_swap),
	    CG(test_cgroup_v2_no_controllers),
	    CG(test_cgroup_create_failure_cleans_up),
	    CG(test_cgroup_mode_detection),
	    CG(test_cgroup_destroy),
	    CG(test_cgroup_gc_runs),
	    cmocka_unit_test(test_user_resolve_numeric),
	    cmocka_unit_test(test_user_resolve_names),
	    cmocka_unit_test(test_user_resolve_invalid),
	    cmocka_unit_test(test_fork_child_crash_is_contained),
	    cmocka_unit_test(test_seccomp_filter),
	    cmocka_unit_test(test_seccomp_filter_ia32),
	    cmocka_unit_test(test_seccomp_load_unprepared),
	    SEC(test_seccomp_cache),
	    SEC(test_seccomp_cache_is_used),
	    SEC(test_seccomp_cache_rejected),
	    SEC(test_seccomp_cache_without_base),
	    SEC(test_seccomp_no_setid),
	    cmocka_unit_test(test_proc_starttime_self),
	    cmocka_unit_test(test_proc_starttime_child),
	    cmocka_unit_test(test_proc_zombie),
	    cmocka_unit_test(test_boot_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
