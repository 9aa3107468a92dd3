/* Starting a sandboxed command. ac_spawn_prepare() does everything that allocates or
 * reads files (user lookup, environment, PATH) in the caller; ac_spawn_start() then
 * clones with CLONE_VM|CLONE_VFORK (no page-table copy, the caller sleeps until the exec)
 * and the child only makes system calls: session, descriptors, user, capabilities,
 * nothing but 0/1/2 left open, execve. no_new_privs and seccomp are inherited from init.
 * In a persistent sandbox the child first joins the commands' nested user namespace (see
 * ac_spawn_set_nested). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "runtime/caps.h"
#include "runtime/policy.h"
#include "runtime/report.h"
#include "runtime/seccomp.h"
#include "runtime/spawn.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ENV	     4096
#define CHILD_STACK  (256 * 1024)

/* The commands' user namespace and the bounding set to restore in it (set once by a
 * persistent sandbox's init, inherited by its shims). */
static int nested_userns = -1;
static uint64_t nested_bounding;

void ac_spawn_set_nested(int userns_fd)
{
	nested_userns = userns_fd;
	nested_bounding = ac_caps_bounding();
}

/* The group of "user:group" (an image's User): a gid, or a name in the sandbox's
 * /etc/group. */
static int group_resolve(const char *spec, gid_t *gid)
{
	uint64_t num;
	if (ac_parse_u64(spec, 0, 0xfffffffe, &num) == 0) {
		*gid = (gid_t)num;
		return 0;
	}
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (!*spec || ac_read_file_at(AT_FDCWD, "/etc/group", 1 << 20, &buf, &len, NULL) < 0)
		return -ENOENT;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *name = line, *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = 0;
		char *end = strchr(c2 + 1, ':');
		if (end)
			*end = 0;
		if (!strcmp(name, spec) && ac_parse_u64(c2 + 1, 0, 0xfffffffe, &num) == 0) {
			*gid = (gid_t)num;
			return 0;
		}
	}
	return -ENOENT;
}

/* Parses the sandbox's /etc/passwd directly: NSS would load modules named by the
 * sandbox's own nsswitch.conf into this still-privileged process. */
int ac_user_resolve(const char *spec, uid_t *uid, gid_t *gid, char *home, size_t homelen)
{
	const char *colon = strchr(spec, ':');
	if (colon) {
		char user[256];
		size_t n = (size_t)(colon - spec);
		if (n == 0 || n >= sizeof(user))
			return -ENOENT;
		memcpy(user, spec, n);
		user[n] = 0;
		int r = ac_user_resolve(user, uid, gid, home, homelen);
		return r < 0 ? r : group_resolve(colon + 1, gid);
	}
	uint64_t num = 0;
	bool numeric = ac_parse_u64(spec, 0, 0xfffffffe, &num) == 0;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (numeric) {
		*uid = (uid_t)num;
		*gid = (gid_t)num;
		snprintf(home, homelen, "%s", num == 0 ? "/root" : "/");
	}
	if (ac_read_file_at(AT_FDCWD, "/etc/passwd", 1 << 20, &buf, &len, NULL) < 0)
		return numeric ? 0 : -ENOENT;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = {0};
		int n = 0;
		for (char *p = line; n < 7; n++) {
			f[n] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (n < 6)
			continue;
		uint64_t u, g;
		if (ac_parse_u64(f[2], 0, 0xfffffffe, &u) < 0 ||
		    ac_parse_u64(f[3], 0, 0xfffffffe, &g) < 0)
			continue;
		if (numeric ? u == num : strcmp(f[0], spec) == 0) {
			*uid = (uid_t)u;
			*gid = (gid_t)g;
			snprintf(home, homelen, "%s", f[5][0] ? f[5] : "/");
			return 0;
		}
	}
	return numeric ? 0 : -ENOENT;
}

/* Later entries win: defaults < sandbox env < command env. */
static size_t env_put(char **env, size_t n, char *kv)
{
	size_t klen = strcspn(kv, "=");
	if (kv[klen] != '=' || klen == 0)
		return n;
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=') {
			env[i] = kv;
			return n;
		}
	if (n < MAX_ENV - 1)
		env[n++] = kv;
	return n;
}

int ac_spawn_prepare(ac_spawn_t *sp)
{
	const ac_cmd_t *cmd = sp->cmd;
	char home[1024];
	if (ac_policy_check(sp->spec, cmd->argv[0]) < 0)
		return -EPERM;
	int r =
	    ac_user_resolve(cmd->user ? cmd->user : "0", &sp->uid, &sp->gid, home, sizeof(home));
	if (r < 0)
		return r;
	sp->envp = calloc(MAX_ENV, sizeof(char *));
	sp->strings = calloc(3, 1100);
	if (!sp->envp || !sp->strings)
		return -ENOMEM;
	char *home_kv = sp->strings, *host_kv = sp->strings + 1100;
	snprintf(home_kv, 1100, "HOME=%s", home);
	snprintf(host_kv, 1100, "HOSTNAME=%s", sp->hostname);
	size_t n = 0;
	sp->envp[n++] = "PATH=" DEFAULT_PATH;
	sp->envp[n++] = home_kv;
	sp->envp[n++] = host_kv;
	if (cmd->tty)
		sp->envp[n++] = "TERM=xterm-256color";
	for (char **e = sp->base_env; e && *e; e++)
		n = env_put(sp->envp, n, *e);
	for (char **e = cmd->env; e && *e; e++)
		n = env_put(sp->envp, n, *e);
	sp->envp[n] = NULL;
	sp->path = DEFAULT_PATH;
	for (size_t i = 0; i < n; i++)
		if (strncmp(sp->envp[i], "PATH=", 5) == 0)
			sp->path = sp->envp[i] + 5;
	sp->cwd = cmd->cwd ? cmd->cwd : sp->default_cwd ? sp->default_cwd : "/";
	return 0;
}

void ac_spawn_release(ac_spawn_t *sp)
{
	free(sp->envp);
	free(sp->strings);
	sp->envp = NULL;
	sp->strings = NULL;
}

/* The vfork child runs on a small stack of its own, which AddressSanitizer cannot track:
 * its instrumentation before a noreturn call only prints a warning (into the command's
 * stderr) there, so these two functions are not instrumented. */
#define NO_ASAN __attribute__((no_sanitize("address")))

NO_ASAN __attribute__((noreturn)) static void fail(const ac_spawn_t *sp, int stage, int e)
{
	int msg[2] = {stage, e};
	if (sp->errpipe >= 0)
		(void)!write(sp->errpipe, msg, sizeof(msg));
	_exit(e == ENOENT ? 127 : 126);
}

/* execvp() semantics over the sandbox environment's PATH, without touching environ. */
static int exec_path(const ac_spawn_t *sp)
{
	const char *file = sp->cmd->argv[0];
	if (strchr(file, '/')) {
		execve(file, sp->cmd->argv, sp->envp);
		return errno;
	}
	char buf[4096];
	int saved = ENOENT;
	size_t flen = strlen(file);
	for (const char *p = sp->path;; p++) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);
		if (dlen + flen + 2 <= sizeof(buf)) {
			if (dlen == 0)
				buf[0] = '.', dlen = 1;
			else
				memcpy(buf, p, dlen);
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(buf, sp->cmd->argv, sp->envp);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				return errno;
		}
		if (!end)
			break;
		p = end;
	}
	return saved;
}

NO_ASAN static int child(void *arg)
{
	const ac_spawn_t *sp = arg;
	/* Dispositions that survive exec: ignored signals. Ours (and a caller's nohup) are
	 * among these. */
	static const int reset[] = {SIGINT,  SIGQUIT, SIGPIPE, SIGHUP,	SIGTERM,  SIGCHLD, SIGTTOU,
				    SIGTTIN, SIGTSTP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGXFSZ};
	sigset_t none;
	sigemptyset(&none);
	for (size_t i = 0; i < AC_ARRAY_SIZE(reset); i++)
		signal(reset[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		fail(sp, AC_STAGE_SETUP, errno);
	if (sp->tty_slave >= 0) {
		if (ioctl(sp->tty_slave, TIOCSCTTY, 0) < 0)
			fail(sp, AC_STAGE_SETUP, errno);
		for (int i = 0; i < 3; i++)
			if (dup2(sp->tty_slave, i) < 0)
				fail(sp, AC_STAGE_SETUP, errno);
	} else {
		int null = -1;
		for (int i = 0; i < 3; i++) {
			int fd = sp->fds[i];
			if (fd < 0) {
				if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
					fail(sp, AC_STAGE_SETUP, errno);
				fd = null;
			}
			/* dup2 onto itself would keep O_CLOEXEC: clear it instead. */
			if (fd == i ? fcntl(fd, F_SETFD, 0) < 0 : dup2(fd, i) < 0)
				fail(sp, AC_STAGE_SETUP, errno);
		}
	}
	if (chdir(sp->cwd) < 0)
		fail(sp, AC_STAGE_CWD, errno);
	/* Out of the supervisor's user namespace: joining gives every capability in the new
	 * one and a full bounding set, both cut to the sandbox's below. */
	if (nested_userns >= 0 && (setns(nested_userns, CLONE_NEWUSER) < 0 ||
				   ac_caps_bounding_restore(nested_bounding) < 0))
		fail(sp, AC_STAGE_SETUP, errno);
	if (setgroups(0, NULL) < 0 || setresgid(sp->gid, sp->gid, sp->gid) < 0 ||
	    setresuid(sp->uid, sp->uid, sp->uid) < 0)
		fail(sp, AC_STAGE_SETUP, errno);
	if (sp->uid == 0 && ac_caps_drop_to_sandbox_set() < 0)
		fail(sp, AC_STAGE_SETUP, errno);
	/* no_new_privs and the sandbox's seccomp filter come from its init, which set them
	 * once for every process it will ever start; a command adds the refusal of setns. */
	if (ac_seccomp_load_commands() < 0)
		fail(sp, AC_STAGE_SETUP, errno);
	/* Only 0, 1 and 2 survive the exec (errpipe is O_CLOEXEC). */
	if (sp->errpipe > 3)
		close_range(3, (unsigned)sp->errpipe - 1, 0);
	close_range((unsigned)(sp->errpipe >= 3 ? sp->errpipe + 1 : 3), ~0u, 0);
	fail(sp, AC_STAGE_EXEC, exec_path(sp));
}

pid_t ac_spawn_start(ac_spawn_t *sp)
{
	/* The stack is only used until the exec; the parent sleeps meanwhile (VFORK). */
	static char *stack;
	if (!stack) {
		stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED) {
			stack = NULL;
			return -1;
		}
	}
	return clone(child, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, sp);
}
