/* Unit tests of the Nomad exec stream (src/backends/nomad/exec.c: ac_nm_exec_stream and
 * ac_nm_exec_in) against a scripted allocation exec endpoint,
 * tests/integration/nomad_exec_server.py, which acts out the command it is given (echo
 * stdin, exit with a code, close with an error, drop the connection, never answer, wait
 * for the killer) and logs every request and client frame. What the frames look like is
 * test_nomad_frames.c's; here: what goes out when, what comes back where, and how a
 * stream ends (exit code, error, deadline, cancel, stop signal and the killer). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/execwrap.h"
#include "backends/nomad/internal.h"
#include "base/io.h"
#include "base/util.h"

#define ALLOC "5b1c3a0e-8f2d-4c3b-9a7e-0123456789ab"

static char script[PATH_MAX], tmpdir[PATH_MAX], logpath[PATH_MAX], url[64], name[96];
static ac_test_server_t srv;
static bool have_srv;

static int group_setup(void **state)
{
	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0 ||
	    !ac_test_find_file("tests/integration/nomad_exec_server.py", script))
		return 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ac-test-nmexec.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 0;
	snprintf(logpath, sizeof(logpath), "%s/server.log", tmpdir);
	char *argv[] = {"/usr/bin/python3", script, "--log", logpath, NULL};
	have_srv = ac_test_server_start(&srv, tmpdir, argv);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	snprintf(name, sizeof(name), "nomad at %s", url);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ac_test_server_stop(&srv);
	if (tmpdir[0])
		ac_rm_rf_at(AT_FDCWD, tmpdir, NULL);
	return 0;
}

static void conn(ac_nm_t *n)
{
	if (!have_srv)
		skip();
	memset(n, 0, sizeof(*n));
	n->conf.server = url;
	n->conf.name = name;
	n->conf.timeout_ms = 10000;
	snprintf(n->ns, sizeof(n->ns), "team-a");
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

/* The server's log as JSON objects (to json_decref). */
static json_t *server_log(void)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *all = json_array();
	if (ac_read_file_at(AT_FDCWD, logpath, 1 << 24, &buf, &len, NULL) < 0)
		return all;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		json_array_append_new(all, json_loads(line, 0, NULL));
	free(buf);
	return all;
}

/* The client frames of connection c, in order, joined by '\n'. */
static char *frames_of(json_t *log, int c)
{
	size_t cap = 1 << 16, used = 0;
	char *out = calloc(1, cap);
	size_t i;
	json_t *e;
	json_array_foreach(log, i, e)
	{
		const char *f = json_string_value(json_object_get(e, "frame"));
		if (f && json_integer_value(json_object_get(e, "conn")) == c)
			used +=
			    (size_t)snprintf(out + used, cap - used, "%s%s", used ? "\n" : "", f);
	}
	return out;
}

/* The request (path and query) of the nth connection in the log (1-based among them). */
static json_t *request(json_t *log, int nth, int *c)
{
	size_t i;
	json_t *e;
	json_array_foreach(log, i, e)
	{
		if (json_object_get(e, "path") && --nth == 0) {
			*c = (int)json_integer_value(json_object_get(e, "conn"));
			return e;
		}
	}
	fail_msg("no request %d in the server's log", nth);
	return NULL;
}

/* Everything readable from fd (a pipe whose write end is closed). */
static char *drain(int fd)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t r;
	while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = 0;
	return buf;
}

typedef struct io {
	int in[2], out[2], err[2];
} io_t;

/* Pipes: stdin holding input (closed after it, or left open when keep_open), stdout and
 * stderr. */
static void io_open(io_t *io, const char *input, bool keep_open)
{
	assert_int_equal(pipe2(io->in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(io->out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(io->err, O_CLOEXEC), 0);
	if (input)
		assert_int_equal(write(io->in[1], input, strlen(input)), (ssize_t)strlen(input));
	if (!keep_open) {
		close(io->in[1]);
		io->in[1] = -1;
	}
}

/* Closes the write ends and reads stdout and stderr. */
static void io_finish(io_t *io, char **out, char **err)
{
	close(io->out[1]);
	close(io->err[1]);
	*out = drain(io->out[0]);
	*err = drain(io->err[0]);
	close(io->out[0]);
	close(io->err[0]);
	close(io->in[0]);
	if (io->in[1] >= 0)
		close(io->in[1]);
}

static int stream(ac_nm_t *n, char **argv, io_t *io, bool with_in, bool tty, char **out,
		  char **errout, int *code, ac_error_t **err)
{
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .tty = tty,
			    .rows = 33,
			    .cols = 101,
			    .in_fd = with_in ? io->in[0] : -1,
			    .out_fd = io->out[1],
			    .err_fd = io->err[1],
			    .deadline_ms = -1,
			    .cancel_fd = -1};
	int rc = ac_nm_exec_stream(n, &s, code, err);
	io_finish(io, out, errout);
	return rc;
}

static void test_echo_and_request(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	snprintf(n.region, sizeof(n.region), "eu");
	io_t io;
	io_open(&io, "hello\nworld \xff\x01", false);
	char *argv[] = {"echo", "a b&c", NULL};
	char *out, *eo;
	int code = -1;
	ac_error_t *err = NULL;
	int rc = stream(&n, argv, &io, true, false, &out, &eo, &code, &err);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_int_equal(code, 0);
	assert_string_equal(out, "hello\nworld \xff\x01");
	assert_string_equal(eo, "");
	free(out);
	free(eo);
	json_t *log = server_log();
	int c;
	json_t *r = request(log, 1, &c);
	assert_string_equal(json_string_value(json_object_get(r, "path")),
			    "/v1/client/allocation/" ALLOC "/exec");
	json_t *q = json_object_get(r, "query");
	assert_string_equal(json_string_value(json_object_get(q, "task")), "sandbox");
	assert_string_equal(json_string_value(json_object_get(q, "tty")), "false");
	assert_string_equal(json_string_value(json_object_get(q, "command")),
			    "[\"echo\",\"a b&c\"]");
	assert_string_equal(json_string_value(json_object_get(q, "namespace")), "team-a");
	assert_string_equal(json_string_value(json_object_get(q, "region")), "eu");
	assert_int_equal(json_object_size(q), 5);
	assert_true(json_is_null(json_object_get(r, "protocol"))); /* no subprotocol */
	/* stdin went out as data, then its close, and nothing else */
	char *f = frames_of(log, c);
	json_t *last = NULL;
	for (char *line = strtok(f, "\n"); line; line = strtok(NULL, "\n")) {
		json_decref(last);
		last = json_loads(line, 0, NULL);
		assert_non_null(json_object_get(last, "stdin"));
	}
	assert_true(json_is_true(json_object_get(json_object_get(last, "stdin"), "close")));
	json_decref(last);
	free(f);
	json_decref(log);
}

static void test_exit_codes(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	struct {
		char *argv[5];
		int code;
		const char *out, *err;
	} cases[] = {
	    {{"exit", "3", "to out", "to err", NULL}, 3, "to out", "to err"},
	    {{"exit", "0", NULL}, 0, "", ""},
	    {{"exit", "255", NULL}, 255, "", ""},
	    {{"exit", "137", NULL}, 137, "", ""},
	    {{"signal", "15", NULL}, 143, "", ""},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		io_t io;
		io_open(&io, NULL, false);
		char *out, *eo;
		int code = -1;
		ac_error_t *err = NULL;
		int rc = stream(&n, cases[i].argv, &io, false, false, &out, &eo, &code, &err);
		if (rc != 0 || code != cases[i].code)
			fail_msg("%s %s: rc %d code %d: %s", cases[i].argv[0], cases[i].argv[1], rc,
				 code, err ? err->msg : "");
		assert_string_equal(out, cases[i].out);
		assert_string_equal(eo, cases[i].err);
		free(out);
		free(eo);
	}
}

/* Without stdin: a close at once. With a tty: the size first, ^D for the end, never a
 * close (the agent would close the terminal and lose the output). */
static void test_stdin_and_tty(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	io_t io;
	io_open(&io, NULL, false);
	char *one[] = {"frames", "1", NULL};
	char *out, *eo;
	int code = -1;
	assert_int_equal(stream(&n, one, &io, false, false, &out, &eo, &code, NULL), 0);
	assert_string_equal(out, "{\"stdin\":{\"close\":true}}\n");
	free(out);
	free(eo);
	conn(&n);
	io_open(&io, "ab", false);
	char *three[] = {"frames", "3", NULL};
	ac_error_t *err = NULL;
	int rc = stream(&n, three, &io, true, true, &out, &eo, &code, &err);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_string_equal(out, "{\"tty_size\":{\"height\":33,\"width\":101}}\n"
				 "{\"stdin\":{\"data\":\"YWI=\"}}\n"
				 "{\"stdin\":{\"data\":\"BA==\"}}\n");
	free(out);
	free(eo);
	json_t *log = server_log();
	int c;
	json_t *r = request(log, 1, &c);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "query"), "tty")),
			    "true");
	json_decref(log);
	/* a tty without stdin: only the size */
	conn(&n);
	io_open(&io, NULL, false);
	char *frames1[] = {"frames", "1", NULL};
	assert_int_equal(stream(&n, frames1, &io, false, true, &out, &eo, &code, NULL), 0);
	assert_string_equal(out, "{\"tty_size\":{\"height\":33,\"width\":101}}\n");
	free(out);
	free(eo);
	log = server_log();
	request(log, 1, &c);
	char *f = frames_of(log, c);
	assert_null(strstr(f, "close"));
	free(f);
	json_decref(log);
}

/* A sink takes both streams instead of the fds (a detached command's watcher). */
static void sink(void *arg, int fd, const unsigned char *data, size_t len)
{
	char *buf = arg;
	size_t n = strlen(buf);
	snprintf(buf + n, 512 - n, "%d:%.*s|", fd, (int)len, (const char *)data);
}

static void test_sink(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	char got[512] = "";
	char *argv[] = {"exit", "4", "o", "e", NULL};
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = "sandbox",
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = -1,
			    .sink = sink,
			    .arg = got};
	int code = -1;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, NULL), 0);
	assert_int_equal(code, 4);
	assert_string_equal(got, "1:o|2:e|");
	got[0] = 0;
	char *nf[] = {"close", "1011", "exec: \"sh\": executable file not found in $PATH", NULL};
	s.argv = nf;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, NULL), 0);
	assert_int_equal(code, 127);
	assert_non_null(strstr(got, "2:nomad at "));
	assert_non_null(strstr(got, "executable file not found in $PATH|2:\n|"));
}

static void test_errors(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	struct {
		char *argv[4];
		ac_error_kind_t kind;
		const char *msg;
	} cases[] = {
	    {{"close", "1008", "Permission denied", NULL},
	     AC_ERR_PERMISSION,
	     "nomad at http://127.0.0.1:%d: exec: Permission denied"},
	    {{"close", "1008", "task \"sandbox\" is not running.", NULL},
	     AC_ERR_NOT_RUNNING,
	     "nomad at http://127.0.0.1:%d: exec: task \"sandbox\" is not running."},
	    {{"close", "1000", "", NULL},
	     AC_ERR_BACKEND,
	     "nomad at http://127.0.0.1:%d: the exec stream ended before the command's exit "
	     "status (close code 1000)"},
	    {{"drop", NULL}, AC_ERR_BACKEND, "without a WebSocket close frame"},
	    {{"garbage", NULL}, AC_ERR_BACKEND, "a frame that is not a JSON object: not json"},
	    {{"binary", NULL}, AC_ERR_BACKEND, "the exec stream sent a binary message"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		io_t io;
		io_open(&io, NULL, false);
		char *out, *eo;
		int code = -1;
		ac_error_t *err = NULL;
		int rc = stream(&n, cases[i].argv, &io, false, false, &out, &eo, &code, &err);
		char want[300];
		/* "%d" in the message is the server's port */
		const char *pct = strstr(cases[i].msg, "%d");
		if (pct)
			snprintf(want, sizeof(want), "%.*s%d%s", (int)(pct - cases[i].msg),
				 cases[i].msg, srv.port, pct + 2);
		else
			snprintf(want, sizeof(want), "%s", cases[i].msg);
		if (rc != -1 || !err || err->kind != cases[i].kind || !strstr(err->msg, want))
			fail_msg("%s: rc %d, %s", cases[i].argv[0], rc,
				 err ? err->msg : "no error");
		ac_error_free(err);
		free(out);
		free(eo);
	}
	/* "executable file not found": as a shell, the message on stderr and 127 */
	io_t io;
	io_open(&io, NULL, false);
	char *nf[] = {"close", "1011", "exec: \"sh\": executable file not found in $PATH", NULL};
	char *out, *eo;
	int code = -1;
	assert_int_equal(stream(&n, nf, &io, false, false, &out, &eo, &code, NULL), 0);
	assert_int_equal(code, 127);
	assert_non_null(strstr(eo, "executable file not found"));
	free(out);
	free(eo);
	/* nothing listens */
	ac_nm_t gone;
	memset(&gone, 0, sizeof(gone));
	gone.conf.server = "http://127.0.0.1:1";
	gone.conf.name = "nomad at http://127.0.0.1:1";
	char *argv[] = {"exit", "0", NULL};
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = "sandbox",
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = -1};
	ac_error_t *err = NULL;
	assert_int_equal(ac_nm_exec_stream(&gone, &s, &code, &err), -1);
	assert_non_null(strstr(err->msg, "127.0.0.1:1"));
	ac_error_free(err);
	/* a bad allocation id never reaches the network */
	s.alloc = "../v1/jobs";
	err = NULL;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
}

static void test_out_max(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	char *argv[] = {"big", "200000", NULL};
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = "sandbox",
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = -1,
			    .out_max = 100000};
	int code = -1;
	ac_error_t *err = NULL;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, &err), -1);
	assert_int_equal(err->errnum, EFBIG);
	assert_non_null(strstr(err->msg, "larger than 100000 bytes"));
	ac_error_free(err);
	s.out_max = 200000; /* exactly: fine */
	err = NULL;
	int rc = ac_nm_exec_stream(&n, &s, &code, &err);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_int_equal(code, 0);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_deadline_and_cancel(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	char *argv[] = {"sleep", NULL};
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = "sandbox",
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = now_ms() + 300};
	int code = -1;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, NULL), 1);
	assert_int_equal(code, -1);
	/* the caller hangs up */
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	close(sp[1]);
	s.deadline_ms = -1;
	s.cancel_fd = sp[0];
	ac_error_t *err = NULL;
	assert_int_equal(ac_nm_exec_stream(&n, &s, &code, &err), -1);
	assert_int_equal(err->kind, AC_ERR_STATE);
	ac_error_free(err);
	close(sp[0]);
}

/* A stop signal runs the killer (a second exec with the handle) and the stream ends with
 * the command's own status. The server sends the signal once the stream is up; blocked
 * here, it waits for the stream's poll, as a signal to the CLI would. */
static void test_stop_signal(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	char pid[24], sig[8];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(sig, sizeof(sig), "%d", SIGUSR1);
	char *argv[] = {"wait", pid, sig, NULL};
	static const int stops[] = {SIGUSR1, 0};
	int stopped = -1;
	ac_nm_stream_t s = {.alloc = ALLOC,
			    .task = "sandbox",
			    .argv = argv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = now_ms() + 60000,
			    .stop_signals = stops,
			    .kill_id = "k1",
			    .stopped = &stopped};
	int code = -1;
	ac_error_t *err = NULL;
	int rc = ac_nm_exec_stream(&n, &s, &code, &err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_int_equal(code, 137);
	assert_int_equal(stopped, SIGUSR1);
	json_t *log = server_log();
	int c;
	json_t *r = request(log, 2, &c);
	json_t *cmd = json_loads(
	    json_string_value(json_object_get(json_object_get(r, "query"), "command")), 0, NULL);
	assert_string_equal(json_string_value(json_array_get(cmd, 3)), "agentcell-kill");
	assert_string_equal(json_string_value(json_array_get(cmd, 4)), "k1");
	json_decref(cmd);
	json_decref(log);
	/* the handler is gone again */
	struct sigaction sa;
	sigaction(SIGUSR1, NULL, &sa);
	assert_true(sa.sa_handler == SIG_DFL);
}

/* ac_nm_exec_in: the wrapper's argv, results as a shell reports them, --timeout's kill. */
static void test_exec_in(void **state)
{
	(void)state;
	ac_nm_t n;
	conn(&n);
	io_t io;
	io_open(&io, NULL, false);
	char *argv[] = {"exit", "7", "o", "e", NULL};
	char *env[] = {"A=1", NULL};
	ac_cmd_t cmd = {.argv = argv, .env = env, .cwd = "/work"};
	int fds[3] = {io.in[0], io.out[1], io.err[1]};
	ac_result_t res;
	ac_error_t *err = NULL;
	int rc = ac_nm_exec_in(&n, ALLOC, &cmd, fds, &res, &err);
	char *out, *eo;
	io_finish(&io, &out, &eo);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_int_equal(res.exit_code, 7);
	assert_false(res.timed_out);
	assert_string_equal(out, "o");
	assert_string_equal(eo, "e");
	free(out);
	free(eo);
	json_t *log = server_log();
	int c;
	json_t *r = request(log, 1, &c);
	json_t *words = json_loads(
	    json_string_value(json_object_get(json_object_get(r, "query"), "command")), 0, NULL);
	assert_string_equal(json_string_value(json_array_get(words, 0)), "sh");
	assert_string_equal(json_string_value(json_array_get(words, 3)), "agentcell-exec");
	assert_int_equal(strlen(json_string_value(json_array_get(words, 4))), 36); /* the id */
	assert_string_equal(json_string_value(json_array_get(words, 5)), "/work");
	assert_string_equal(json_string_value(json_array_get(words, 6)), "1");
	assert_string_equal(json_string_value(json_array_get(words, 7)), "A=1");
	assert_string_equal(json_string_value(json_array_get(words, 8)), "--");
	assert_string_equal(json_string_value(json_array_get(words, 9)), "exit");
	json_decref(words);
	json_decref(log);
	/* a signal's status */
	conn(&n);
	char *sig[] = {"signal", "9", NULL};
	cmd = (ac_cmd_t){.argv = sig};
	int none[3] = {-1, -1, -1};
	assert_int_equal(ac_nm_exec_in(&n, ALLOC, &cmd, none, &res, NULL), 0);
	assert_int_equal(res.exit_code, 137);
	assert_int_equal(res.signal, 9);
	/* -u is refused: Nomad's exec has no user */
	cmd.user = "root";
	err = NULL;
	assert_int_equal(ac_nm_exec_in(&n, ALLOC, &cmd, none, &res, &err), -1);
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err->msg, "task's user"));
	ac_error_free(err);
	/* --timeout: 124, and the killer ran with the exec's own handle */
	conn(&n);
	char *sl[] = {"sleep", NULL};
	cmd = (ac_cmd_t){.argv = sl, .timeout = 0.3};
	assert_int_equal(ac_nm_exec_in(&n, ALLOC, &cmd, none, &res, NULL), 0);
	assert_true(res.timed_out);
	assert_int_equal(res.exit_code, 124);
	log = server_log();
	r = request(log, 1, &c);
	words = json_loads(
	    json_string_value(json_object_get(json_object_get(r, "query"), "command")), 0, NULL);
	char id[64];
	snprintf(id, sizeof(id), "%s", json_string_value(json_array_get(words, 4)));
	json_decref(words);
	r = request(log, 2, &c);
	words = json_loads(
	    json_string_value(json_object_get(json_object_get(r, "query"), "command")), 0, NULL);
	assert_string_equal(json_string_value(json_array_get(words, 3)), "agentcell-kill");
	assert_string_equal(json_string_value(json_array_get(words, 4)), id);
	json_decref(words);
	json_decref(log);
	/* a signal that reaches the CLI (SIGTERM): killer, then the command's own status */
	conn(&n);
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	char pid[24], num[8];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(num, sizeof(num), "%d", SIGTERM);
	char *wait[] = {"wait", pid, num, NULL};
	cmd = (ac_cmd_t){.argv = wait, .timeout = 60};
	err = NULL;
	rc = ac_nm_exec_in(&n, ALLOC, &cmd, none, &res, &err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fail_msg("rc %d: %s", rc, err ? err->msg : "");
	assert_false(res.timed_out);
	assert_int_equal(res.exit_code, 137);
	assert_int_equal(res.signal, 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_echo_and_request),
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_stdin_and_tty),
	    cmocka_unit_test(test_sink),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_out_max),
	    cmocka_unit_test(test_deadline_and_cancel),
	    cmocka_unit_test(test_stop_signal),
	    cmocka_unit_test(test_exec_in),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
