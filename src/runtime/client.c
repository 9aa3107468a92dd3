/* The caller's side of a persistent sandbox's supervisor (see client.h): connects to its
 * socket, sends an exec request with the caller's descriptors, relays signals and a pty,
 * and enforces the deadlines from the host (the shims are the sandbox's to stop or kill).
 * The wire format is proto.c's. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/client.h"
#include "runtime/proc.h"
#include "runtime/proto.h"
#include "runtime/report.h"
#include "runtime/runtime.h"
#include "runtime/sock.h"

static int connect_supervisor(const char *socket_path, ac_error_t **err)
{
	struct sockaddr_un sa;
	_cleanup_close_ int dfd = -1;
	if (ac_sock_addr(socket_path, &sa, &dfd, err) < 0)
		return -1;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "socket");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(s);
		return ac_error_set(err, AC_ERR_NOT_RUNNING, e,
				    "cannot reach the sandbox's supervisor");
	}
	/* The shim's replies then carry its host pid, vouched for by the kernel: the host
	 * side's handle on it when the sandbox stops or kills it (set after connect, which
	 * would otherwise autobind the socket). */
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	return s;
}

/* Host-side deadlines (see docs/ARCHITECTURE.md, "Deadlines from the host"): sandbox code
 * can stop or kill the shims, so the caller never waits on them without a bound. */
#define START_WAIT_MS 10000 /* for a shim to take the request and start the command */
#define HOST_GRACE_MS 2000  /* past --timeout, for the shim to end the command and say so */

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(long long deadline)
{
	if (deadline <= 0)
		return -1;
	long long left = deadline - mono_ms();
	return left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

/* Waits for a message on sock until deadline (0: none): 1 readable, 0 deadline passed,
 * -1 cancelled (cancel_fd hung up). */
static int wait_reply(int sock, long long deadline, int cancel_fd)
{
	for (;;) {
		struct pollfd p[2] = {{sock, POLLIN, 0},
				      {cancel_fd > 0 ? cancel_fd : -1, POLLRDHUP, 0}};
		int n = poll(p, 2, ms_left(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 1; /* let the read report it */
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
			return -1;
		if (n == 0)
			return 0;
		return 1;
	}
}

/* The supervisor's host pid, from the pidfile next to the socket (run/<name>.pid), checked
 * against its start time; 0 if it is not running. */
static pid_t supervisor_pid(const char *socket_path)
{
	size_t l = strlen(socket_path);
	if (l < 5 || strcmp(socket_path + l - 5, ".sock") != 0)
		return 0;
	char path[4200];
	snprintf(path, sizeof(path), "%.*s.pid", (int)(l - 5), socket_path);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 4096, &buf, &len, NULL) < 0)
		return 0;
	json_t *j = json_loads(buf, 0, NULL);
	json_int_t pid = json_integer_value(json_object_get(j, "pid"));
	json_int_t start = json_integer_value(json_object_get(j, "starttime"));
	json_decref(j);
	if (pid <= 1 || ac_proc_starttime((pid_t)pid) != (unsigned long long)start)
		return 0;
	return (pid_t)pid;
}

/* Ends a command from the host when its shim cannot: the shim (host pid `shim`, our peer
 * on sock) was stopped, or died and left the command to the supervisor. nspid is the
 * command's pid inside the sandbox. Best effort; never waits on the sandbox. */
static void host_kill(const char *socket_path, int sock, pid_t shim, pid_t nspid)
{
	_cleanup_close_ int pfd = shim > 1 ? (int)pidfd_open(shim, 0) : -1;
	/* Our connection is the shim's alone: while it is not hung up, the pidfd we just
	 * opened is that shim's, not a reuse of its pid. */
	struct pollfd p = {sock, POLLRDHUP, 0};
	bool shim_alive = pfd >= 0 && poll(&p, 1, 0) == 0;
	if (shim_alive) {
		unsigned long long ns = ac_proc_pidns(shim);
		pid_t cmd = ac_proc_find_child_nspid(shim, nspid);
		/* The tree first, while the shim (a subreaper) still holds it together. */
		ac_proc_kill_tree(shim, cmd, ns);
		pidfd_send_signal(pfd, SIGKILL, NULL, 0);
		return;
	}
	/* The shim is gone: its command, if still there, becomes a child of the supervisor
	 * (the kernel closes a dying process's descriptors, our EOF, before it reparents
	 * the children: look below both for a moment). */
	pid_t sup = supervisor_pid(socket_path);
	unsigned long long ns = sup > 1 ? ac_proc_pidns(sup) : 0;
	if (!ns || nspid <= 0)
		return;
	pid_t cmd = 0;
	for (int i = 0; i < 40 && cmd <= 1; i++) {
		cmd = ac_proc_find_child_nspid(sup, nspid);
		if (cmd <= 1 && shim > 1)
			cmd = ac_proc_find_child_nspid(shim, nspid);
		if (cmd <= 1) {
			struct timespec ts = {0, 5000000};
			nanosleep(&ts, NULL);
		}
	}
	if (cmd <= 1)
		return;
	_cleanup_close_ int cfd = (int)pidfd_open(cmd, 0);
	/* Checked with the pidfd open: the sandbox's process with that pid, not a reuse. */
	if (cfd < 0 || ac_proc_pidns(cmd) != ns)
		return;
	pidfd_send_signal(cfd, SIGKILL, NULL, 0);
	ac_proc_kill_tree(cmd, cmd, ns);
}

int ac_rt_exec_detach(const char *socket_path, const ac_cmd_t *cmd, int out_fd, int err_fd,
		      int status_fd, ac_rt_detach_id_t *id, ac_error_t **err)
{
	_cleanup_close_ int s = connect_supervisor(socket_path, err);
	if (s < 0)
		return -1;
	json_t *req = ac_proto_build_request(cmd);
	if (!req)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot encode the exec request");
	json_object_set_new(req, "detach", json_true());
	json_object_set_new(req, "stdin", json_false());
	/* The first slot is stdin's: unused (the shim supplies /dev/null). */
	int fds[4] = {out_fd, out_fd, err_fd, status_fd};
	int rc = ac_proto_send(s, req, fds, 4);
	json_decref(req);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot send the request to the supervisor");
	json_t *msg = NULL;
	pid_t peer = 0;
	if (wait_reply(s, mono_ms() + START_WAIT_MS, -1) == 0)
		return ac_error_set(err, AC_ERR_BACKEND, ETIMEDOUT,
				    "the sandbox took no request within %d s (its shims may be "
				    "stopped, or it is out of processes)",
				    START_WAIT_MS / 1000);
	if (ac_proto_recv_cred(s, &msg, NULL, 0, &peer) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "the supervisor did not answer");
	const char *e = json_string_value(json_object_get(msg, "error"));
	if (e || !json_is_integer(json_object_get(msg, "started"))) {
		json_int_t dstage = json_integer_value(json_object_get(msg, "stage"));
		int den = (int)json_integer_value(json_object_get(msg, "errno"));
		/* A fork refused for want of processes: the manager says which limit. */
		bool eagain = dstage == AC_STAGE_SETUP && den == EAGAIN;
		ac_error_kind_t kind = dstage == AC_STAGE_POLICY ? AC_ERR_PERMISSION
				       : dstage == AC_STAGE_EXEC ? AC_ERR_NOT_FOUND
				       : eagain			 ? AC_ERR_BACKEND
								 : AC_ERR_INVALID;
		rc = ac_error_set(err, kind, eagain ? EAGAIN : 0, "%s",
				  e ? e : "malformed answer from the supervisor");
		json_decref(msg);
		return rc;
	}
	pid_t nspid = (pid_t)json_integer_value(json_object_get(msg, "started"));
	json_decref(msg);
	/* Host identities: the shim's from the kernel, the command's as the shim's child
	 * with that pid inside (it cannot have been reaped: the shim waits for it). */
	memset(id, 0, sizeof(*id));
	id->shim = peer;
	id->shim_start = peer > 1 ? ac_proc_starttime(peer) : 0;
	id->pid = peer > 1 ? ac_proc_find_child_nspid(peer, nspid) : 0;
	id->pid_start = id->pid > 1 ? ac_proc_starttime(id->pid) : 0;
	id->pidns = peer > 1 ? ac_proc_pidns(peer) : 0;
	return 0;
}

/* Whether the process recorded as pid/start is still that process; a pidfd on it in *fd. */
static bool same_process(pid_t pid, unsigned long long start, int *fd)
{
	*fd = -1;
	if (pid <= 1 || !start)
		return false;
	int pfd = (int)pidfd_open(pid, 0);
	if (pfd < 0)
		return false;
	/* Checked after the pidfd is open: the pidfd cannot follow a reused pid. */
	if (ac_proc_starttime(pid) != start) {
		close(pfd);
		return false;
	}
	*fd = pfd;
	return true;
}

int ac_rt_detached_state(const ac_rt_detach_id_t *id)
{
	int fd;
	if (same_process(id->shim, id->shim_start, &fd)) {
		close(fd);
		return 2;
	}
	if (same_process(id->pid, id->pid_start, &fd)) {
		close(fd);
		return 1;
	}
	return 0;
}

int ac_rt_kill_detached(const ac_rt_detach_id_t *id, ac_error_t **err)
{
	_cleanup_close_ int sfd = -1;
	_cleanup_close_ int cfd = -1;
	bool shim = same_process(id->shim, id->shim_start, &sfd);
	bool cmd = same_process(id->pid, id->pid_start, &cfd);
	if (!shim && !cmd)
		return ac_error_set(err, AC_ERR_STATE, 0, "the command is no longer running");
	if (shim) {
		/* The shim kills the tree and records the end (exec-kill reaches it as
		 * SIGTERM), unless the sandbox stopped it: then the host does it. */
		pidfd_send_signal(sfd, SIGTERM, NULL, 0);
		struct pollfd p = {sfd, POLLIN, 0};
		if (poll(&p, 1, 1500) == 1)
			return 0;
		ac_proc_kill_tree(id->shim, id->pid, id->pidns);
		if (cmd)
			pidfd_send_signal(cfd, SIGKILL, NULL, 0);
		pidfd_send_signal(sfd, SIGKILL, NULL, 0);
		return 1;
	}
	/* The shim is gone (the sandbox killed it): the command and its session. */
	pidfd_send_signal(cfd, SIGKILL, NULL, 0);
	ac_proc_kill_tree(id->pid, id->pid, id->pidns);
	return 1;
}

static volatile sig_atomic_t pending_signal;
static void note_signal(int sig)
{
	pending_signal = sig;
}

/* Copies what is readable from in to out; returns bytes copied, 0 on EOF, -1 on error. */
static ssize_t pump(int in, int out)
{
	char buf[16384];
	ssize_t n = read(in, buf, sizeof(buf));
	if (n > 0 && ac_write_all(out, buf, (size_t)n) < 0)
		return -1;
	return n;
}

/* The exec timed out and the shim did not end it: the host did. */
static int host_timeout(const char *socket_path, int sock, pid_t shim, pid_t nspid,
			ac_result_t *res)
{
	host_kill(socket_path, sock, shim, nspid);
	res->exit_code = 124;
	res->signal = 0;
	res->timed_out = true;
	return 0;
}

int ac_rt_exec(const char *socket_path, const ac_cmd_t *cmd, int fds[3], ac_result_t *res,
	       ac_error_t **err)
{
	long long t0 = mono_ms();
	/* With --timeout, everything ends by timeout + grace, whatever the sandbox does to
	 * its shims; without, a request that no shim takes fails after START_WAIT_MS. */
	long long end =
	    cmd->timeout > 0 ? t0 + (long long)(cmd->timeout * 1000) + HOST_GRACE_MS : 0;
	long long start_by = t0 + START_WAIT_MS;
	if (end && end < start_by)
		start_by = end;
	_cleanup_close_ int s = connect_supervisor(socket_path, err);
	if (s < 0)
		return -1;
	json_t *req = ac_proto_build_request(cmd);
	if (!req)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot encode the exec request");
	int sendfds[3] = {cmd->stdin_open ? fds[0] : -1, fds[1], fds[2]};
	int nfds = cmd->tty ? 0 : 3;
	if (!cmd->tty && sendfds[0] < 0) {
		/* The supervisor supplies /dev/null: send stdout twice as a placeholder and say so.
		 */
		sendfds[0] = fds[1];
		json_object_set_new(req, "stdin", json_false());
	}
	int rc = ac_proto_send(s, req, sendfds, nfds);
	json_decref(req);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot send the request to the supervisor");

	json_t *msg = NULL;
	int master[1] = {-1};
	pid_t shim = 0;
	int w = wait_reply(s, start_by, cmd->cancel_fd);
	if (w < 0)
		return ac_error_set(err, AC_ERR_STATE, 0, "cancelled: the caller went away");
	if (w == 0) {
		/* Nothing started as far as we know; a shim that takes the request later finds
		 * our end closed and kills what it started. */
		if (end && start_by == end)
			return host_timeout(socket_path, s, 0, 0, res);
		return ac_error_set(err, AC_ERR_BACKEND, ETIMEDOUT,
				    "the sandbox took no request within %d s (its shims may be "
				    "stopped, or it is out of processes)",
				    START_WAIT_MS / 1000);
	}
	if (ac_proto_recv_cred(s, &msg, master, 1, &shim) < 0) {
		int e = errno;
		if (master[0] >= 0)
			close(master[0]);
		return ac_error_set(err, AC_ERR_BACKEND, e,
				    "the sandbox's shim did not report the start (it died)");
	}
	json_t *e = json_object_get(msg, "error");
	if (e) {
		int stage = (int)json_integer_value(json_object_get(msg, "stage"));
		int en = (int)json_integer_value(json_object_get(msg, "errno"));
		res->exit_code = en == ENOENT && stage == AC_STAGE_EXEC ? 127 : 126;
		bool eagain = stage == AC_STAGE_SETUP && en == EAGAIN;
		ac_error_kind_t kind = stage == AC_STAGE_POLICY ? AC_ERR_PERMISSION
				       : stage == AC_STAGE_EXEC ? AC_ERR_NOT_FOUND
				       : eagain			? AC_ERR_BACKEND
								: AC_ERR_INVALID;
		rc = ac_error_set(err, kind, eagain ? EAGAIN : 0, "%s",
				  json_string_value(e) ? json_string_value(e) : "exec failed");
		json_decref(msg);
		if (master[0] >= 0)
			close(master[0]);
		return rc;
	}
	pid_t nspid = (pid_t)json_integer_value(json_object_get(msg, "started"));
	json_decref(msg);

	/* Relay our signals (Ctrl-C reaches only us: the command leads its own session). */
	struct sigaction sa_sig = {.sa_handler = note_signal}, old[5];
	sigemptyset(&sa_sig.sa_mask);
	static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
	bool relay = ac_rt_relay_signals;
	for (size_t i = 0; relay && i < AC_ARRAY_SIZE(relayed); i++)
		sigaction(relayed[i], &sa_sig, &old[i]);
	struct termios saved;
	bool raw = false;
	if (master[0] >= 0 && isatty(fds[0]) && tcgetattr(fds[0], &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(fds[0], TCSANOW, &t) == 0;
	}
	bool in_open = master[0] >= 0 && cmd->stdin_open, out_open = master[0] >= 0;
	rc = -1;
	for (;;) {
		int sig = pending_signal;
		if (sig) {
			pending_signal = 0;
			if (sig == SIGWINCH && master[0] >= 0) {
				struct winsize ws;
				if (ioctl(fds[0], TIOCGWINSZ, &ws) == 0 ||
				    ioctl(fds[1], TIOCGWINSZ, &ws) == 0)
					ioctl(master[0], TIOCSWINSZ, &ws);
			} else if (sig != SIGWINCH) {
				json_t *m = json_pack("{si}", "signal", sig);
				ac_proto_send(s, m, NULL, 0);
				json_decref(m);
			}
		}
		struct pollfd p[4] = {{s, POLLIN, 0},
				      {in_open ? fds[0] : -1, POLLIN, 0},
				      {out_open ? master[0] : -1, POLLIN, 0},
				      {cmd->cancel_fd > 0 ? cmd->cancel_fd : -1, POLLRDHUP, 0}};
		int n = poll(p, 4, ms_left(end));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ac_error_set(err, AC_ERR_INTERNAL, errno, "poll");
			break;
		}
		if (n == 0 && end && mono_ms() >= end) {
			/* The shim should have ended it HOST_GRACE_MS ago: it is stopped. */
			rc = host_timeout(socket_path, s, shim, nspid, res);
			break;
		}
		if (p[3].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
			/* Our end of the connection goes on return: the shim then kills the
			 * command and everything it started. */
			ac_error_set(err, AC_ERR_STATE, 0, "cancelled: the caller went away");
			break;
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (pump(master[0], fds[1]) <= 0)
				out_open = false;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (pump(fds[0], master[0]) <= 0) {
				in_open = false;
				/* End of input: a pty sees ^D at the start of a line. */
				char eot = 4;
				(void)!write(master[0], &eot, 1);
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			msg = NULL;
			if (ac_proto_recv(s, &msg, master + 0, 0) < 0) {
				/* The shim died (the sandbox can kill it): its command must not
				 * run on unwatched. */
				host_kill(socket_path, s, shim, nspid);
				ac_error_set(err, AC_ERR_BACKEND, 0,
					     "the command's shim in the sandbox died; the command "
					     "was killed");
				break;
			}
			if (json_object_get(msg, "exit_code")) {
				res->exit_code =
				    (int)json_integer_value(json_object_get(msg, "exit_code"));
				res->signal =
				    (int)json_integer_value(json_object_get(msg, "signal"));
				res->timed_out = json_is_true(json_object_get(msg, "timed_out"));
				json_decref(msg);
				/* Drain what the pty still holds. */
				if (out_open) {
					fcntl(master[0], F_SETFL, O_NONBLOCK);
					while (pump(master[0], fds[1]) > 0)
						;
				}
				rc = 0;
				break;
			}
			json_decref(msg);
		}
	}
	if (raw)
		tcsetattr(fds[0], TCSANOW, &saved);
	for (size_t i = 0; relay && i < AC_ARRAY_SIZE(relayed); i++)
		sigaction(relayed[i], &old[i], NULL);
	if (master[0] >= 0)
		close(master[0]);
	return rc;
}
