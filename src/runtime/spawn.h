/* Starting a command inside the sandbox (spawn.c): by init for a run, by a shim for an
 * exec. */
#ifndef AGENTCELL_RT_SPAWN_H
#define AGENTCELL_RT_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "agentcell/types.h"
#include "runtime/spec.h"

typedef struct ac_spawn {
	const ac_cmd_t *cmd;
	char **base_env; /* sandbox env */
	const char *default_cwd;
	const char *hostname;
	int fds[3];		  /* stdin/stdout/stderr for the command; -1: /dev/null */
	int tty_slave;		  /* >= 0: make this the controlling tty and 0/1/2 */
	int errpipe;		  /* CLOEXEC write end: {stage, errno} of a failed start */
	const ac_rt_spec_t *spec; /* for the command policy (may be NULL) */
	/* filled by ac_spawn_prepare */
	uid_t uid;
	gid_t gid;
	char **envp;
	char *strings;
	const char *path, *cwd;
} ac_spawn_t;
/* Resolves the user and builds the environment (allocates; call before start).
 * Returns 0 or -errno (-ENOENT: unknown user). */
int ac_spawn_prepare(ac_spawn_t *sp);
void ac_spawn_release(ac_spawn_t *sp);
/* Starts the command (vfork-style); returns its pid once it has exec'd or failed
 * (a failure is reported through errpipe), or -1 with errno. */
pid_t ac_spawn_start(ac_spawn_t *sp);
/* Persistent sandboxes: commands join this user namespace (init calls it once; -1: none)
 * and get the bounding set init has now. */
void ac_spawn_set_nested(int userns_fd);
/* Resolve a user spec ("user", "uid", "user:group", "uid:gid") against the sandbox's
 * /etc/passwd and /etc/group (no NSS: never loads sandbox code). */
int ac_user_resolve(const char *spec, uid_t *uid, gid_t *gid, char *home, size_t homelen);

#endif
