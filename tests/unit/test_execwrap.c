/* Unit tests of the exec wrapper, its killer and its prober (src/backends/execwrap.c), which
 * the Kubernetes and Nomad backends run in their pods and tasks: the argvs, then the
 * scripts run for real with the host's shells (dash, bash, busybox sh when present) in
 * each of the three ways the wrapper can exec. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/execwrap.h"
#include "base/util.h"
#include "testfork.h"

/* The refusal's hint, as the Kubernetes backend gives it. */
#define HINT "set [kubernetes] run_as_user for the pod"

static void test_exec_argv(void **state)
{
	(void)state;
	char *argv[] = {"make", "test", NULL};
	char *env[] = {"A=1", "B=x y", NULL};
	ac_cmd_t cmd = {.argv = argv, .env = env, .cwd = "/src"};
	char **v = ac_execwrap_argv(&cmd, "e1", NULL, NULL, NULL);
	assert_non_null(v);
	const char *want[] = {"sh",  "-c",    NULL, "agentcell-exec", "e1",  "/src", "2",
			      "A=1", "B=x y", "--", "make",	      "test"};
	size_t n = 0;
	while (v[n])
		n++;
	assert_int_equal(n, AC_ARRAY_SIZE(want));
	for (size_t i = 0; i < n; i++)
		if (want[i])
			assert_string_equal(v[i], want[i]);
	ac_strv_free(v);
	/* no handle, no cwd, no env */
	ac_cmd_t plain = {.argv = argv};
	v = ac_execwrap_argv(&plain, NULL, NULL, HINT, NULL);
	assert_string_equal(v[4], "");
	assert_string_equal(v[5], "");
	assert_string_equal(v[6], "0");
	assert_string_equal(v[7], "--");
	ac_strv_free(v);
	/* -u: only the pod's own user */
	plain.user = "1000";
	v = ac_execwrap_argv(&plain, "e1", "1000", HINT, NULL);
	assert_non_null(v);
	ac_strv_free(v);
	ac_error_t *err = NULL;
	plain.user = "root";
	assert_null(ac_execwrap_argv(&plain, "e1", "1000", HINT, &err));
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err->msg, "run_as_user"));
	ac_error_free(err);
	err = NULL;
	assert_null(ac_execwrap_argv(&plain, "e1", NULL, HINT, &err));
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err->msg, "(the image's): -u root"));
	ac_error_free(err);
	err = NULL;
	/* without a hint, no parentheses at the end */
	assert_null(ac_execwrap_argv(&plain, "e1", "1000", NULL, &err));
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	assert_int_not_equal(err->msg[strlen(err->msg) - 1], ')');
	ac_error_free(err);
	plain.user = NULL;
	char *bad_env[] = {"A-B=1", NULL};
	plain.env = bad_env;
	assert_null(ac_execwrap_argv(&plain, "e1", NULL, HINT, NULL));
	plain.env = NULL;
	plain.cwd = "rel";
	assert_null(ac_execwrap_argv(&plain, "e1", NULL, HINT, NULL));
	plain.cwd = NULL;
	assert_null(ac_execwrap_argv(&plain, "../x", NULL, HINT, NULL));
	assert_null(ac_execwrap_argv(&plain, "", NULL, HINT, NULL));
	v = ac_execwrap_kill_argv("e1", NULL);
	assert_string_equal(v[0], "sh");
	assert_string_equal(v[1], "-c");
	assert_string_equal(v[3], "agentcell-kill");
	assert_string_equal(v[4], "e1");
	assert_null(v[5]);
	ac_strv_free(v);
	assert_null(ac_execwrap_kill_argv("a b", NULL));
	assert_null(ac_execwrap_kill_argv(NULL, NULL));
	v = ac_execwrap_alive_argv("e1", NULL);
	assert_string_equal(v[3], "agentcell-alive");
	assert_string_equal(v[4], "e1");
	ac_strv_free(v);
	assert_null(ac_execwrap_alive_argv("a/b", NULL));
}

/* How the test starts the wrapper: the process the exec API would start. */
enum { MODE_PLAIN, MODE_SESSION_LEADER, MODE_GROUP_LEADER };

/* Runs argv with shell (argv[0] "sh" replaced by shell, e.g. {"/usr/bin/busybox", "sh"}),
 * stdin from in_fd (or /dev/null), stdout to out_fd (or /dev/null). */
static pid_t spawn(const char *const *shell, char **argv, int mode, int in_fd, int out_fd)
{
	pid_t pid = ac_test_fork();
	if (pid != 0)
		return pid;
	if (mode == MODE_SESSION_LEADER)
		setsid();
	else if (mode == MODE_GROUP_LEADER)
		setpgid(0, 0);
	int null = open("/dev/null", O_RDWR);
	dup2(in_fd >= 0 ? in_fd : null, 0);
	dup2(out_fd >= 0 ? out_fd : null, 1);
	if (!getenv("AC_TEST_VERBOSE"))
		dup2(null, 2); /* the shells' own complaints and job notices */
	char *v[64];
	size_t k = 0;
	for (const char *const *s = shell; *s; s++)
		v[k++] = (char *)*s;
	for (size_t i = 1; argv[i] && k < 63; i++)
		v[k++] = argv[i];
	v[k] = NULL;
	execv(v[0], v);
	fprintf(stderr, "exec %s: %s\n", v[0], strerror(errno));
	_exit(127);
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Pids of live (not zombie) processes whose environment holds marker. */
static size_t marked(const char *marker, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[64], buf[65536];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] && rp[2] == 'Z')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		for (ssize_t i = 0; i < r; i += (ssize_t)strlen(buf + i) + 1) {
			buf[r] = 0;
			if (!strcmp(buf + i, marker)) {
				if (n < max)
					out[n] = (pid_t)atoi(e->d_name);
				n++;
				break;
			}
		}
	}
	if (d)
		closedir(d);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Output of argv through the wrapper with shell and mode, stdin from a pipe holding in. */
static int run_capture(const char *const *shell, char **argv, int mode, const char *in, char *out,
		       size_t cap)
{
	int ip[2], op[2];
	assert_int_equal(pipe2(ip, O_CLOEXEC), 0);
	assert_int_equal(pipe2(op, O_CLOEXEC), 0);
	pid_t pid = spawn(shell, argv, mode, ip[0], op[1]);
	close(ip[0]);
	close(op[1]);
	if (in)
		assert_int_equal(write(ip[1], in, strlen(in)), (ssize_t)strlen(in));
	close(ip[1]);
	size_t got = 0;
	ssize_t r;
	while (got < cap - 1 && (r = read(op[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(op[0]);
	return wait_status(pid);
}

static const char *const sh_dash[] = {"/bin/sh", NULL};
static const char *const sh_bash[] = {"/bin/bash", NULL};
static const char *const sh_busybox[] = {"/usr/bin/busybox", "sh", NULL};

static void test_wrapper_streams(void **state)
{
	(void)state;
	const char *const *shells[] = {sh_dash, sh_bash, sh_busybox};
	for (size_t s = 0; s < AC_ARRAY_SIZE(shells); s++) {
		if (access(shells[s][0], X_OK) != 0)
			continue;
		for (int mode = MODE_PLAIN; mode <= MODE_GROUP_LEADER; mode++) {
			char *argv[] = {
			    "sh", "-c",
			    "printf '%s|%s|%s|' \"$FOO\" \"$PWD\" \"$AGENTCELL_EXEC_ID\";"
			    " cat; exit 7",
			    NULL};
			char *env[] = {"FOO=a b $HOME `x` 'q'", "EMPTY=", NULL};
			ac_cmd_t cmd = {.argv = argv, .env = env, .cwd = "/tmp"};
			char id[32];
			snprintf(id, sizeof(id), "t%d-%zu-%d", (int)getpid(), s, mode);
			char **v = ac_execwrap_argv(&cmd, id, NULL, HINT, NULL);
			char out[512];
			int rc = run_capture(shells[s], v, mode, "from stdin\n", out, sizeof(out));
			char want[256];
			snprintf(want, sizeof(want), "a b $HOME `x` 'q'|/tmp|%s|from stdin\n", id);
			if (strcmp(out, want) || rc != 7)
				fail_msg("%s mode %d: rc %d, output '%s'", shells[s][0], mode, rc,
					 out);
			ac_strv_free(v);
			/* a missing command: 127, as a shell says */
			char *missing[] = {"/nonexistent/agentcell-x", NULL};
			ac_cmd_t m = {.argv = missing};
			v = ac_execwrap_argv(&m, id, NULL, HINT, NULL);
			rc = run_capture(shells[s], v, mode, NULL, out, sizeof(out));
			if (rc != 127 && rc != 126)
				fail_msg("%s mode %d: missing command gave %d", shells[s][0], mode,
					 rc);
			ac_strv_free(v);
			/* a bad working directory fails before the command */
			m.argv = argv;
			m.cwd = "/nonexistent-dir";
			v = ac_execwrap_argv(&m, id, NULL, HINT, NULL);
			assert_int_equal(run_capture(shells[s], v, mode, NULL, out, sizeof(out)),
					 126);
			assert_null(strstr(out, "|"));
			ac_strv_free(v);
			/* an exec'd command leaves its record (the killer removes it) */
			char handle[PATH_MAX];
			snprintf(handle, sizeof(handle), "%s/%s", AC_EXECWRAP_DIR, id);
			unlink(handle);
		}
	}
}

/* The timeout's kill: a command tree started through the wrapper (two sleeps, one of them
 * in the background; with `escape` also one that leaves the session with setsid) is gone
 * after the killer ran, in every way the wrapper can start, with every shell here. */
static void kill_case(const char *const *shell, int mode, bool escape)
{
	char id[48];
	snprintf(id, sizeof(id), "k%d-%d-%d-%ld", (int)getpid(), mode, escape, (long)time(NULL));
	char *argv[] = {"sh", "-c",
			escape ? "setsid sleep 1000 & sleep 1000 & sleep 1000"
			       : "sleep 1000 & sleep 1000",
			NULL};
	ac_cmd_t cmd = {.argv = argv};
	char **v = ac_execwrap_argv(&cmd, id, NULL, HINT, NULL);
	pid_t pid = spawn(shell, v, mode, -1, -1);
	ac_strv_free(v);
	char marker[96], handle[PATH_MAX];
	snprintf(marker, sizeof(marker), "AGENTCELL_EXEC_ID=%s", id);
	snprintf(handle, sizeof(handle), "%s/%s", AC_EXECWRAP_DIR, id);
	pid_t pids[16];
	size_t want = escape ? 3 : 2, n = 0;
	for (int i = 0; i < 500; i++) {
		/* both sleeps (and the shells around them) are up */
		n = marked(marker, pids, 16);
		size_t sleeps = 0;
		for (size_t k = 0; k < n && k < 16; k++) {
			char path[64], comm[32] = "";
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[k]);
			int fd = open(path, O_RDONLY);
			if (fd >= 0) {
				ssize_t r = read(fd, comm, sizeof(comm) - 1);
				comm[r > 0 ? r : 0] = 0;
				close(fd);
			}
			sleeps += !strncmp(comm, "sleep", 5);
		}
		if (sleeps >= want && access(handle, F_OK) == 0)
			break;
		sleep_ms(10);
	}
	if (access(handle, F_OK) != 0)
		fail_msg("%s mode %d: no handle %s", shell[0], mode, handle);
	assert_true(n >= want);
	/* the prober (detached commands whose watcher is gone) sees the same tree */
	char out[64];
	char **a = ac_execwrap_alive_argv(id, NULL);
	assert_int_equal(run_capture(shell, a, MODE_PLAIN, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "alive\n");
	char **k = ac_execwrap_kill_argv(id, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t killer = spawn(shell, k, MODE_PLAIN, -1, -1);
	ac_strv_free(k);
	assert_int_equal(wait_status(killer), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (getenv("AC_TEST_VERBOSE"))
		fprintf(
		    stderr, "# %s mode %d escape %d: killed in %ld ms\n", shell[0], mode, escape,
		    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	/* the wrapper (or the command it became) is dead */
	int st = 0;
	pid_t w = 0;
	for (int i = 0; i < 1000 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
		sleep_ms(10);
	if (w != pid) {
		/* clean up after a killer that failed, then fail */
		size_t left = marked(marker, pids, 16);
		for (size_t i = 0; i < left && i < 16; i++)
			kill(pids[i], SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%s mode %d: the command survived its killer", shell[0], mode);
	}
	/* killed, or (the background branch) the wrapper reporting its killed command */
	assert_true((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
		    (mode == MODE_GROUP_LEADER && WIFEXITED(st) && WEXITSTATUS(st) == 137));
	/* orphans are reaped by init: give them a moment, then nothing may be left */
	for (int i = 0; i < 100 && marked(marker, pids, 16); i++)
		sleep_ms(10);
	n = marked(marker, pids, 16);
	if (n)
		fail_msg("%s mode %d: %zu processes left (pid %d)", shell[0], mode, n,
			 (int)pids[0]);
	assert_int_equal(access(handle, F_OK), -1);
	assert_int_equal(run_capture(shell, a, MODE_PLAIN, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	ac_strv_free(a);
}

static void test_wrapper_kill(void **state)
{
	(void)state;
	const char *const *shells[] = {sh_dash, sh_bash, sh_busybox};
	for (size_t s = 0; s < AC_ARRAY_SIZE(shells); s++) {
		if (access(shells[s][0], X_OK) != 0)
			continue;
		/* bash (slow to start) only for the branch that depends most on the shell */
		for (int mode = MODE_PLAIN; mode <= MODE_GROUP_LEADER; mode++)
			if (shells[s] != sh_bash || mode == MODE_GROUP_LEADER)
				kill_case(shells[s], mode, false);
		if (shells[s] != sh_bash)
			kill_case(shells[s], MODE_PLAIN, true);
	}
	/* A killer for a handle nobody holds does nothing and succeeds. */
	char **k = ac_execwrap_kill_argv("never-started", NULL);
	assert_int_equal(wait_status(spawn(sh_dash, k, MODE_PLAIN, -1, -1)), 0);
	ac_strv_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exec_argv),
	    cmocka_unit_test(test_wrapper_streams),
	    cmocka_unit_test(test_wrapper_kill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
