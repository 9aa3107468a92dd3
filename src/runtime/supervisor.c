/* The persistent sandbox's PID 1. It accepts exec connections and forks one "shim" per
 * exec, so it never blocks on a command; it reaps every orphan of the namespace. The
 * shim (a subreaper) reads the request, forks the command with the caller's descriptors
 * (or a pty), reports the start, relays signals, enforces the timeout over the whole
 * command tree, and reports the real exit status. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "base/io.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/util.h"
#include "runtime/proto.h"
#include "runtime/report.h"
#include "runtime/spawn.h"
#include "runtime/supervisor.h"
#include "runtime/userns.h"

const char *ac_cmd_defaults(const ac_rt_spec_t *spec, ac_cmd_t *cmd)
{
	if (!cmd->user && spec->user)
		cmd->user = spec->user;
	return spec->workdir ? spec->workdir : spec->mount_cwd ? "/workspace" : "/";
}

static const char *stage_text(int stage)
{
	switch (stage) {
	case AC_STAGE_CWD:
		return "cannot enter the working directory";
	case AC_STAGE_USER:
		return "unknown user";
	case AC_STAGE_EXEC:
		return "cannot execute";
	default:
		return "cannot set up the command";
	}
}

/* Every descendant of the shim, found through the parent links in /proc (the shim is a
 * subreaper, so orphans of the command stay below it). */
static int kill_descendants(pid_t self, int sig)
{
	pid_t pids[4096], ppids[4096];
	int n = 0, killed = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 4096) {
		int pid = atoi(de->d_name);
		if (pid <= 1)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t l = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (l <= 0)
			continue;
		buf[l] = 0;
		char *p = strrchr(buf, ')');
		int ppid;
		if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
			continue;
		pids[n] = pid;
		ppids[n++] = ppid;
	}
	closedir(d);
	/* Mark descendants: repeat until no new ones (the tree is shallow in practice). */
	bool mark[4096] = {0};
	for (bool changed = true; changed;) {
		changed = false;
		for (int i = 0; i < n; i++) {
			if (mark[i])
				continue;
			bool child = ppids[i] == self;
			for (int j = 0; !child && j < n; j++)
				child = mark[j] && pids[j] == ppids[i];
			if (child) {
				mark[i] = changed = true;
				kill(pids[i], sig);
				killed++;
			}
		}
	}
	return killed;
}

/* An error reply; the text may quote user bytes that are not UTF-8. */
static void reply_error(int conn, const char *text, int stage, int en)
{
	json_t *t = json_string(text);
	if (!t) {
		char *copy = strdup(text);
		for (char *p = copy; p && *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		t = json_string(copy ? copy : "error");
		free(copy);
	}
	json_t *m = json_pack("{so si si}", "error", t, "stage", stage, "errno", en);
	ac_proto_send(conn, m, NULL, 0);
	json_decref(m);
}

static void reply(int conn, json_t *m)
{
	ac_proto_send(conn, m, NULL, 0);
	json_decref(m);
}

/* --- detached commands --- */

typedef struct log_sink {
	int in, out;	  /* pipe read end, log file */
	uint64_t size;	  /* bytes in the log file */
	uint64_t dropped; /* oldest bytes dropped to stay under the cap */
	uint64_t lost;	  /* bytes a failed write lost (a full or read-only home) */
	unsigned errors;  /* failed writes */
	int err;	  /* the last one's errno */
} log_sink_t;

static void sink_failed(log_sink_t *k, uint64_t n, ssize_t w)
{
	k->errors++;
	k->err = w < 0 ? errno : ENOSPC;
	k->lost += n;
}

/* Appends to a log, keeping it under AC_DETACH_LOG_CAP: past the cap the older half goes
 * (and is counted), so a chatty command can run for ever in bounded space. */
static void sink_write(log_sink_t *k, const char *buf, size_t n)
{
	if (n > AC_DETACH_LOG_CAP / 2) {
		k->dropped += n - AC_DETACH_LOG_CAP / 2;
		buf += n - AC_DETACH_LOG_CAP / 2;
		n = AC_DETACH_LOG_CAP / 2;
	}
	if (k->size + n > AC_DETACH_LOG_CAP) {
		uint64_t keep =
		    AC_DETACH_LOG_CAP / 2 - n < k->size ? AC_DETACH_LOG_CAP / 2 - n : k->size;
		char *tail = keep ? malloc(keep) : NULL;
		if (keep && (!tail ||
			     pread(k->out, tail, keep, (off_t)(k->size - keep)) != (ssize_t)keep)) {
			free(tail);
			keep = 0;
			tail = NULL;
		}
		if (keep)
			(void)!pwrite(k->out, tail, keep, 0);
		free(tail);
		(void)!ftruncate(k->out, (off_t)keep);
		k->dropped += k->size - keep;
		k->size = keep;
	}
	ssize_t w = pwrite(k->out, buf, n, (off_t)k->size);
	if (w == (ssize_t)n) {
		k->size += n;
	} else {
		/* What a short write put there is kept; the rest is lost and said so. */
		if (w > 0)
			k->size += (uint64_t)w;
		sink_failed(k, n - (w > 0 ? (uint64_t)w : 0), w);
	}
}

/* false at end of file */
static bool sink_pump(log_sink_t *k)
{
	char buf[65536];
	ssize_t n = read(k->in, buf, sizeof(buf));
	if (n > 0) {
		sink_write(k, buf, (size_t)n);
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* The status record: one fixed-size pwrite at offset 0 (readers retry a torn read). */
static void write_status(int fd, json_t *st)
{
	char buf[AC_DETACH_STATUS_SIZE];
	char *j = json_dumps(st, JSON_COMPACT);
	if (!j)
		return;
	size_t n = strlen(j);
	if (n < sizeof(buf) - 1) {
		memset(buf, ' ', sizeof(buf));
		memcpy(buf, j, n);
		buf[sizeof(buf) - 1] = '\n';
		(void)!pwrite(fd, buf, sizeof(buf), 0);
	}
	free(j);
}

__attribute__((noreturn)) static void detached(int conn, ac_cmd_t *cmd, const ac_rt_spec_t *spec,
					       int sigfd, int fds[4])
{
	int out[2], errp[2], ep[2];
	if (fds[1] < 0 || fds[2] < 0 || fds[3] < 0) {
		reply_error(conn, "a detached command needs its log and status descriptors", 0,
			    EINVAL);
		_exit(1);
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		reply_error(conn, "cannot create pipes", 4, errno);
		_exit(1);
	}
	/* exec-kill reaches us as SIGTERM. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signalfd(sigfd, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	fcntl(sigfd, F_SETFL, O_NONBLOCK);
	cmd->stdin_open = false;
	cmd->tty = false;
	ac_spawn_t sp = {.cmd = cmd,
			 .base_env = spec->env,
			 .default_cwd = ac_cmd_defaults(spec, cmd),
			 .hostname = spec->name,
			 .fds = {-1, out[1], errp[1]},
			 .tty_slave = -1,
			 .errpipe = ep[1],
			 .spec = spec};
	int pr = ac_spawn_prepare(&sp);
	if (pr < 0) {
		reply_error(conn,
			    pr == -EPERM    ? "the program is blocked by the command policy"
			    : pr == -ENOENT ? "unknown user"
					    : "cannot prepare the command",
			    pr == -EPERM    ? AC_STAGE_POLICY
			    : pr == -ENOENT ? AC_STAGE_USER
					    : AC_STAGE_SETUP,
			    -pr);
		_exit(1);
	}
	pid_t child = ac_spawn_start(&sp);
	if (child < 0) {
		reply_error(conn, "cannot start the command", AC_STAGE_SETUP, errno);
		_exit(1);
	}
	close(ep[1]);
	close(out[1]);
	close(errp[1]);
	int em[2];
	if (ac_read_all(ep[0], em, sizeof(em)) == sizeof(em)) {
		char text[600];
		snprintf(text, sizeof(text), "%s '%s': %s", stage_text(em[0]),
			 em[0] == AC_STAGE_USER ? (cmd->user ? cmd->user : "0") : cmd->argv[0],
			 strerror(em[1]));
		reply_error(conn, text, em[0], em[1]);
		waitpid(child, NULL, 0);
		_exit(1);
	}
	close(ep[0]);
	char started_at[32];
	ac_time_now_rfc3339(started_at);
	json_t *st = json_pack("{ss si si ss}", "state", "running", "pid", (int)child, "shim",
			       (int)getpid(), "started_at", started_at);
	write_status(fds[3], st);
	json_t *reply_msg = json_pack("{si si}", "started", (int)child, "shim", (int)getpid());
	ac_proto_send(conn, reply_msg, NULL, 0);
	json_decref(reply_msg);
	close(conn);

	log_sink_t sinks[2] = {{.in = out[0], .out = fds[1]}, {.in = errp[0], .out = fds[2]}};
	for (int i = 0; i < 2; i++)
		fcntl(sinks[i].in, F_SETFL, O_NONBLOCK);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool timed_out = false, killed = false, done = false, open_[2] = {true, true};
	int status = 0;
	while (!done || open_[0] || open_[1]) {
		int wait_ms = -1;
		if (done)
			wait_ms = 200; /* background processes may hold the pipes: drain briefly */
		else if (cmd->timeout > 0 && !timed_out) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double left = cmd->timeout - ((double)(now.tv_sec - t0.tv_sec) +
						      (double)(now.tv_nsec - t0.tv_nsec) / 1e9);
			if (left <= 0) {
				timed_out = true;
				kill(-child, SIGKILL);
				kill_descendants(getpid(), SIGKILL);
				continue;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		struct pollfd p[3] = {{sigfd, POLLIN, 0},
				      {open_[0] ? sinks[0].in : -1, POLLIN, 0},
				      {open_[1] ? sinks[1].in : -1, POLLIN, 0}};
		int n = poll(p, 3, wait_ms);
		if (n == 0 && done)
			break;
		unsigned errs = sinks[0].errors + sinks[1].errors;
		for (int i = 0; i < 2; i++)
			if (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))
				open_[i] = sink_pump(&sinks[i]);
		if (!errs && sinks[0].errors + sinks[1].errors) {
			/* Said at once, so exec-status of a running command shows it. */
			int en = sinks[sinks[0].errors ? 0 : 1].err;
			json_object_set_new(st, "write_errors", json_integer(1));
			json_object_set_new(st, "write_error", json_string(strerror(en)));
			write_status(fds[3], st);
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo == SIGTERM && !done) {
					killed = true;
					kill(-child, SIGKILL);
					kill_descendants(getpid(), SIGKILL);
				}
			int stw;
			pid_t w;
			while ((w = waitpid(-1, &stw, WNOHANG)) > 0)
				if (w == child) {
					status = stw;
					done = true;
				}
		}
	}
	if (timed_out || killed)
		while (kill_descendants(getpid(), SIGKILL) > 0) {
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (timed_out)
		code = 124;
	char finished_at[32];
	ac_time_now_rfc3339(finished_at);
	json_decref(st);
	st = json_pack("{ss si si ss ss si si sb sb sI sI}", "state",
		       code == 0 ? "completed" : "failed", "pid", (int)child, "shim", (int)getpid(),
		       "started_at", started_at, "finished_at", finished_at, "exit_code", code,
		       "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0, "timed_out", timed_out,
		       "killed", killed, "dropped_stdout", (json_int_t)sinks[0].dropped,
		       "dropped_stderr", (json_int_t)sinks[1].dropped);
	if (sinks[0].errors + sinks[1].errors) {
		int en = sinks[sinks[1].errors ? 1 : 0].err;
		json_object_set_new(st, "write_errors",
				    json_integer(sinks[0].errors + sinks[1].errors));
		json_object_set_new(st, "write_error", json_string(strerror(en)));
		json_object_set_new(st, "lost_stdout", json_integer((json_int_t)sinks[0].lost));
		json_object_set_new(st, "lost_stderr", json_integer((json_int_t)sinks[1].lost));
	}
	write_status(fds[3], st);
	_exit(0);
}

/* Serves one exec on conn. Returns (instead of exiting) only when the exec ended normally
 * and left nothing behind: no process below us (we are a subreaper, so every descendant,
 * orphaned or not, would be our child) and nothing allocated for it. The shim may then
 * serve the next exec without a fork (see shim_loop). */
static bool shim(int conn, const ac_rt_spec_t *spec, int sigfd)
{
	json_t *req = NULL;
	int fds[AC_PROTO_MAX_FDS];
	ac_cmd_t cmd;
	char *errmsg = NULL;

	/* (exec-kill signals a detached command's shim from the host, through a pidfd: no
	 * request kills by pid here.) */
	if (ac_proto_recv(conn, &req, fds, AC_PROTO_MAX_FDS) < 0)
		_exit(1);
	if (ac_proto_parse_request(req, &cmd, &errmsg) < 0) {
		reply_error(conn, errmsg ? errmsg : "invalid request", 0, EINVAL);
		_exit(1);
	}
	if (!cmd.stdin_open && fds[0] >= 0) {
		close(fds[0]);
		fds[0] = -1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (json_is_true(json_object_get(req, "detach")))
		detached(conn, &cmd, spec, sigfd, fds);
	if (fds[3] >= 0)
		close(fds[3]);

	int master = -1, slave = -1;
	if (cmd.tty) {
		/* As the sandbox's root, as before the shims had a uid of their own: the
		 * terminal is not owned by an id that commands see as "nobody". */
		setfsuid(0);
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		setfsuid(AC_SUPERVISOR_UID);
		int unlock = 0;
		if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
		    (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			reply_error(conn, "cannot allocate a pseudo-terminal", 4, errno);
			_exit(1);
		}
		struct winsize ws = {.ws_row = cmd.rows, .ws_col = cmd.cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		_exit(1);
	ac_spawn_t sp = {.cmd = &cmd,
			 .base_env = spec->env,
			 .default_cwd = ac_cmd_defaults(spec, &cmd),
			 .hostname = spec->name,
			 .fds = {fds[0], fds[1], fds[2]},
			 .tty_slave = slave,
			 .errpipe = ep[1],
			 .spec = spec};
	int pr = ac_spawn_prepare(&sp);
	if (pr < 0) {
		char text[300];
		if (pr == -EPERM)
			snprintf(text, sizeof(text), "'%s' is blocked by the command policy",
				 cmd.argv[0]);
		else if (pr == -ENOENT)
			snprintf(text, sizeof(text), "unknown user '%s'",
				 cmd.user ? cmd.user : "0");
		else
			snprintf(text, sizeof(text), "cannot prepare the command: %s",
				 strerror(-pr));
		reply_error(conn, text,
			    pr == -EPERM    ? AC_STAGE_POLICY
			    : pr == -ENOENT ? AC_STAGE_USER
					    : AC_STAGE_SETUP,
			    -pr);
		_exit(1);
	}
	/* The child must not keep the connection or the signalfd: both are O_CLOEXEC and
	 * the child closes everything above 2 before exec anyway. */
	pid_t child = ac_spawn_start(&sp);
	if (child < 0) {
		reply_error(conn, "cannot start the command", AC_STAGE_SETUP, errno);
		_exit(1);
	}
	close(ep[1]);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (slave >= 0)
		close(slave);
	int em[2];
	if (ac_read_all(ep[0], em, sizeof(em)) == sizeof(em)) {
		char text[600];
		if (em[0] == AC_STAGE_EXEC)
			snprintf(text, sizeof(text), "cannot execute '%s': %s", cmd.argv[0],
				 strerror(em[1]));
		else if (em[0] == AC_STAGE_USER)
			snprintf(text, sizeof(text), "unknown user '%s'",
				 cmd.user ? cmd.user : "0");
		else if (em[0] == AC_STAGE_CWD)
			snprintf(text, sizeof(text), "cannot enter the working directory '%s': %s",
				 sp.cwd ? sp.cwd : "/", strerror(em[1]));
		else
			snprintf(text, sizeof(text), "%s: %s", stage_text(em[0]), strerror(em[1]));
		reply_error(conn, text, em[0], em[1]);
		waitpid(child, NULL, 0);
		_exit(1);
	}
	close(ep[0]);
	json_t *started = json_pack("{si}", "started", (int)child);
	ac_proto_send(conn, started, &master, master >= 0 ? 1 : 0);
	json_decref(started);
	if (master >= 0)
		close(master);

	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool timed_out = false, conn_open = true;
	int status = 0;
	for (bool done = false; !done;) {
		int wait_ms = -1;
		if (cmd.timeout > 0 && !timed_out) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double left = cmd.timeout - ((double)(now.tv_sec - t0.tv_sec) +
						     (double)(now.tv_nsec - t0.tv_nsec) / 1e9);
			if (left <= 0) {
				timed_out = true;
				kill(-child, SIGKILL);
				kill_descendants(getpid(), SIGKILL);
				continue;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		struct pollfd p[2] = {{sigfd, POLLIN, 0}, {conn_open ? conn : -1, POLLIN, 0}};
		if (poll(p, 2, wait_ms) < 0 && errno != EINTR)
			_exit(1);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			(void)!read(sigfd, &si, sizeof(si));
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0)
				if (w == child) {
					status = st;
					done = true;
				}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			json_t *m = NULL;
			if (ac_proto_recv(conn, &m, NULL, 0) < 0) {
				/* The caller is gone: nobody will read the output or the status. */
				conn_open = false;
				kill(-child, SIGKILL);
				kill_descendants(getpid(), SIGKILL);
				continue;
			}
			json_int_t sig = json_integer_value(json_object_get(m, "signal"));
			if (sig > 0 && sig < NSIG)
				kill(-child, (int)sig);
			json_decref(m);
		}
	}
	if (timed_out) {
		/* Whatever the command left behind goes too. */
		while (kill_descendants(getpid(), SIGKILL) > 0) {
			int st;
			while (waitpid(-1, &st, WNOHANG) > 0)
				;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (timed_out)
		code = 124;
	if (conn_open)
		reply(conn, json_pack("{si si sb}", "exit_code", code, "signal",
				      WIFSIGNALED(status) ? WTERMSIG(status) : 0, "timed_out",
				      timed_out));
	if (!conn_open || timed_out)
		_exit(0);
	free(cmd.argv);
	free(cmd.env);
	json_decref(req);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	if (!(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD))
		_exit(0); /* something is still running: it stays ours alone */
	struct signalfd_siginfo si;
	while (read(sigfd, &si, sizeof(si)) > 0)
		; /* the SIGCHLDs of this exec are no news for the next */
	return true;
}

/* A shim takes execs one after another: a fork, its page faults and an exit less per exec
 * (a third of an exec's cost on the sandbox's side). The supervisor keeps its own fresh
 * idle shims regardless (see ac_supervisor_main); a used shim is a bonus accepter that
 * leaves after an idle accept timeout (SO_RCVTIMEO on the socket) or SHIM_USES uses. */
#define SHIM_USES 1000

__attribute__((noreturn)) static void shim_loop(int listen_fd, int conn, const ac_rt_spec_t *spec,
						int sigfd, int taken_w)
{
	pid_t me = getpid();
	for (int uses = 1;; uses++) {
		bool again = shim(conn, spec, sigfd);
		close(conn);
		if (!again || uses >= SHIM_USES)
			_exit(0);
		/* Idle again: the supervisor counts us and forks no fresh shim while we wait. */
		pid_t back = -me;
		(void)!write(taken_w, &back, sizeof(back));
		while ((conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			if (errno != EINTR && errno != ECONNABORTED)
				_exit(0); /* idle (EAGAIN): the fresh shims are enough */
		(void)!write(taken_w, &me, sizeof(me));
	}
}

/* An idle shim waits in accept() ahead of time, so the fork is off the exec's critical
 * path: when it takes a connection it says so on `taken` and the supervisor forks the
 * next one while the first serves its exec. */
static pid_t fork_idle_shim(int listen_fd, int sigfd, const sigset_t *set, const int taken[2],
			    const ac_rt_spec_t *spec, bool extra)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	close(sigfd);
	close(taken[0]);
	prctl(PR_SET_NAME, "agentcell-shim");
	ac_proctitle_set("agentcell-shim");
	int sfd = signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	int c;
	/* EAGAIN: the accept timeout every accepter shares. The first idle shim waits on; one
	 * forked for a burst goes, and the supervisor sees whether it is still wanted. */
	while ((c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if ((errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) ||
		    (errno == EAGAIN && extra))
			_exit(errno == EAGAIN ? 0 : 1);
	pid_t me = getpid();
	(void)!write(taken[1], &me, sizeof(me)); /* atomic: under PIPE_BUF */
	shim_loop(listen_fd, c, spec, sfd, taken[1]);
}

/* Idle shims kept ready. One covers execs that come one after another; a burst (a shim taken
 * while none other was waiting, soon after the previous take) raises the number up to
 * IDLE_MAX, so that concurrent execs do not queue behind the supervisor's forks; after
 * IDLE_DECAY_MS without an exec it is one again. Nothing is killed while it may be
 * accepting: a shim forked for a burst, or one that has served, leaves by itself after an
 * accept timeout of IDLE_DECAY_MS; the first fresh one waits on. */
#define IDLE_MAX      4
#define IDLE_TRACK    64
#define BURST_NS      (50 * 1000000LL)
#define IDLE_DECAY_MS 2000

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void drop_pid(pid_t *idle, int *n, pid_t pid)
{
	for (int i = 0; i < *n; i++)
		if (idle[i] == pid) {
			idle[i] = idle[--*n];
			return;
		}
}

void ac_supervisor_main(int listen_fd, const ac_rt_spec_t *spec)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int taken[2];
	if (sigfd < 0 || pipe2(taken, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(1);
	/* Used shims wait for their next exec this long, then go (fresh ones wait on). */
	struct timeval idle_timeout = {.tv_sec = IDLE_DECAY_MS / 1000};
	setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &idle_timeout, sizeof(idle_timeout));
	/* Idle shims: fresh ones and used ones back in accept(). The kernel hands a connection
	 * to the longest waiter, so without counting the used ones a fresh shim would be forked
	 * at every turn of the queue. */
	pid_t idle[IDLE_TRACK];
	int nidle = 0, target = 1;
	long long last_take = 0;
	for (;;) {
		if (target > 1 && mono_ns() - last_take > IDLE_DECAY_MS * 1000000LL)
			target = 1;
		while (nidle < target) {
			pid_t pid = fork_idle_shim(listen_fd, sigfd, &set, taken, spec, nidle > 0);
			if (pid < 0) {
				/* Out of pids (the sandbox's limit): retry on the next child's
				 * exit. */
				struct pollfd p = {sigfd, POLLIN, 0};
				poll(&p, 1, 100);
				break;
			}
			idle[nidle++] = pid;
		}
		struct pollfd p[2] = {{taken[0], POLLIN, 0}, {sigfd, POLLIN, 0}};
		int n = poll(p, 2, target > 1 ? IDLE_DECAY_MS : -1);
		if (n <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			pid_t buf[64];
			ssize_t r;
			while ((r = read(taken[0], buf, sizeof(buf))) > 0)
				for (size_t i = 0; i < (size_t)r / sizeof(pid_t); i++) {
					if (buf[i] < 0) {
						/* Back to idle; one already reaped is not counted
						 * (a pid is not reused within the same moment). */
						pid_t b = -buf[i];
						drop_pid(idle, &nidle, b);
						if (nidle < IDLE_TRACK && kill(b, 0) == 0)
							idle[nidle++] = b;
						continue;
					}
					drop_pid(idle, &nidle, buf[i]);
					long long now = mono_ns();
					if (nidle == 0 && last_take && now - last_take < BURST_NS &&
					    target < IDLE_MAX)
						target++;
					last_take = now;
				}
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) > 0)
				;
			pid_t w;
			/* An idle shim killed while idle (the sandbox can) is replaced. */
			while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
				drop_pid(idle, &nidle, w);
		}
	}
}
