/* The last steps before a sandboxed command runs, in a freshly forked child inside the
 * sandbox: session, descriptors, user, environment, capabilities, no_new_privs, seccomp,
 * and nothing but 0/1/2 left open. Runs after fork in a process that may have other
 * threads' locks held, so it only calls async-signal-safe functions or ones on stack data. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agentcell/util.h"
#include "runtime/runtime.h"

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ENV 4096

/* Parses the sandbox's /etc/passwd directly: NSS would load modules named by the
 * sandbox's own nsswitch.conf into this still-privileged process. */
int ac_user_resolve(const char *spec, uid_t *uid, gid_t *gid, char *home, size_t homelen)
{
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
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
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
		if (ac_parse_u64(f[2], 0, 0xfffffffe, &u) < 0 || ac_parse_u64(f[3], 0, 0xfffffffe, &g) < 0)
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

__attribute__((noreturn)) static void fail(const ac_spawn_t *sp, int stage, int e)
{
	int msg[2] = {stage, e};
	if (sp->errpipe >= 0)
		(void)!write(sp->errpipe, msg, sizeof(msg));
	_exit(e == ENOENT ? 127 : 126);
}

static bool env_has(char **env, size_t n, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=')
			return true;
	return false;
}

/* Later entries win: defaults < sandbox env < command env. */
static size_t env_put(char **env, size_t n, char *kv)
{
	size_t klen = strcspn(kv, "=");
	if (kv[klen] != '=')
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

void ac_spawn_exec(const ac_spawn_t *sp)
{
	const ac_cmd_t *cmd = sp->cmd;
	static char *env[MAX_ENV];
	static char home_kv[4200], host_kv[128];
	char home[4096];
	uid_t uid = 0;
	gid_t gid = 0;
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if (setsid() < 0)
		fail(sp, 4, errno);
	if (sp->tty_slave >= 0) {
		if (ioctl(sp->tty_slave, TIOCSCTTY, 0) < 0)
			fail(sp, 4, errno);
		for (int i = 0; i < 3; i++)
			if (dup2(sp->tty_slave, i) < 0)
				fail(sp, 4, errno);
	} else {
		int null = -1;
		for (int i = 0; i < 3; i++) {
			int fd = sp->fds[i];
			if (fd < 0) {
				if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
					fail(sp, 4, errno);
				fd = null;
			}
			/* dup2 onto itself would keep O_CLOEXEC: clear it instead. */
			if (fd == i ? fcntl(fd, F_SETFD, 0) < 0 : dup2(fd, i) < 0)
				fail(sp, 4, errno);
		}
	}
	const char *user = cmd->user ? cmd->user : "0";
	int r = ac_user_resolve(user, &uid, &gid, home, sizeof(home));
	if (r < 0)
		fail(sp, 2, -r);

	size_t n = 0;
	env[n++] = "PATH=" DEFAULT_PATH;
	snprintf(home_kv, sizeof(home_kv), "HOME=%s", home);
	env[n++] = home_kv;
	snprintf(host_kv, sizeof(host_kv), "HOSTNAME=%s", sp->hostname);
	env[n++] = host_kv;
	if (cmd->tty)
		env[n++] = "TERM=xterm-256color";
	for (char **e = sp->base_env; e && *e; e++)
		n = env_put(env, n, *e);
	for (char **e = cmd->env; e && *e; e++)
		n = env_put(env, n, *e);
	if (!env_has(env, n, "PATH="))
		n = env_put(env, n, "PATH=" DEFAULT_PATH);
	env[n] = NULL;

	const char *cwd = cmd->cwd ? cmd->cwd : sp->default_cwd;
	if (chdir(cwd ? cwd : "/") < 0)
		fail(sp, 1, errno);
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		fail(sp, 4, errno);
	if (uid == 0 && ac_caps_drop_to_sandbox_set() < 0)
		fail(sp, 4, errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(sp, 4, errno);
	if (ac_seccomp_load() < 0)
		fail(sp, 4, errno);
	/* Only 0, 1 and 2 survive the exec (errpipe is O_CLOEXEC). */
	if (sp->errpipe > 3)
		close_range(3, (unsigned)sp->errpipe - 1, 0);
	close_range((unsigned)(sp->errpipe >= 3 ? sp->errpipe + 1 : 3), ~0u, 0);
	environ = env;
	execvp(cmd->argv[0], cmd->argv);
	fail(sp, 3, errno);
}
