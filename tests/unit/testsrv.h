/* Test servers for the remote transports (test_remote_http, test_ws): the Python servers
 * in tests/integration/ started on an ephemeral port, and a certificate authority with a
 * server and a client certificate made by openssl at test time. Header-only, as
 * testfork.h is; every function is static (a test uses some of them). */
#ifndef AC_TESTS_TESTSRV_H
#define AC_TESTS_TESTSRV_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testfork.h"

extern char **environ;

/* dir/name in one of 8 rotating buffers (several may be live in one call). */
static inline char *ac_test_path(const char *dir, const char *name)
{
	static char bufs[8][PATH_MAX + 64];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX + 64, "%s/%s", dir, name);
	return b;
}

/* A file of the checkout (rel, e.g. "tests/integration/ws_echo_server.py") as an absolute
 * path: from the current directory, else from the binary's (BUILD/tests/x with BUILD
 * build/<name> or deeper). */
static inline bool ac_test_find_file(const char *rel, char out[PATH_MAX])
{
	if (access(rel, R_OK) == 0 && realpath(rel, out))
		return true;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	for (int up = 0; up < 6; up++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			return false;
		*slash = 0;
		char cand[PATH_MAX];
		if (snprintf(cand, sizeof(cand), "%s/%s", exe, rel) < (int)sizeof(cand) &&
		    access(cand, R_OK) == 0 && realpath(cand, out))
			return true;
	}
	return false;
}

/* In dir: ca.crt/ca.key (CN agentcell-test-ca), wrong-ca.crt (another CA), srv.crt/srv.key
 * for the subjectAltName san ("DNS:localhost,...") and client.crt/client.key (clientAuth,
 * subject client_subj, e.g. "/CN=agent-user/O=agentcell"), all EC P-256 from the CA.
 * openssl's output goes to dir/gen.log. Returns false when openssl is missing or fails. */
static inline bool ac_test_make_certs(const char *dir, const char *san, const char *client_subj)
{
	static const char script[] =
	    "set -e\n"
	    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; "
	    "}\n"
	    "key ca.key; key wrong-ca.key; key srv.key; key client.key\n"
	    "openssl req -x509 -new -key ca.key -subj /CN=agentcell-test-ca -days 2 -out ca.crt\n"
	    "openssl req -x509 -new -key wrong-ca.key -subj /CN=other-ca -days 2 -out "
	    "wrong-ca.crt\n"
	    "openssl req -new -key srv.key -subj /CN=test-server -out srv.csr\n"
	    "printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth\\n' \"$1\" > srv.ext\n"
	    "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
	    "-extfile srv.ext -out srv.crt\n"
	    "openssl req -new -key client.key -subj \"$2\" -out client.csr\n"
	    "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
	    "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
	    "-extfile client.ext -out client.crt\n";
	if (access("/usr/bin/openssl", X_OK) != 0)
		return false;
	char log[PATH_MAX + 64];
	snprintf(log, sizeof(log), "%s/gen.log", dir);
	pid_t pid = ac_test_fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (chdir(dir) == 0)
			execl("/bin/sh", "sh", "-c", script, "sh", san, client_subj, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	fprintf(stderr, "certificate generation failed, see %s\n", log);
	return false;
}

typedef struct ac_test_server {
	pid_t pid;
	int port;
	int stdin_fd; /* the server's stdin, held open while it runs */
} ac_test_server_t;

/* Starts argv (argv[0] looked up in PATH) in dir with a pipe as stdin and waits up to
 * 15 s for its first line "PORT n" on stdout. */
static inline bool ac_test_server_start(ac_test_server_t *s, const char *dir, char *const argv[])
{
	s->pid = 0;
	s->port = 0;
	s->stdin_fd = -1;
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return false;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return false;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (dir)
		posix_spawn_file_actions_addchdir_np(&fa, dir);
	int rc = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		s->pid = 0;
		close(in[1]);
		close(out[0]);
		return false;
	}
	s->stdin_fd = in[1];
	char line[64] = "";
	size_t got = 0;
	while (got < sizeof(line) - 1 && !strchr(line, '\n')) {
		struct pollfd pf = {out[0], POLLIN, 0};
		if (poll(&pf, 1, 15000) <= 0)
			break;
		ssize_t r = read(out[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = 0;
	}
	close(out[0]);
	if (sscanf(line, "PORT %d", &s->port) != 1) {
		fprintf(stderr, "the test server %s did not start: '%s'\n", argv[1] ? argv[1] : "",
			line);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		close(s->stdin_fd);
		s->stdin_fd = -1;
		return false;
	}
	return true;
}

static inline void ac_test_server_stop(ac_test_server_t *s)
{
	if (s->stdin_fd >= 0)
		close(s->stdin_fd);
	s->stdin_fd = -1;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}

#endif
