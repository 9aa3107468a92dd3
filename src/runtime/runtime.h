/* The native isolation runtime: one kernel facility per file.
 *
 * Process tree of a sandbox (see docs/ARCHITECTURE.md):
 *   caller (host root) --fork--> builder (host root, private mount ns: builds the root fs)
 *   builder --setns(userns) + unshare(pid,net,ipc,uts,cgroup,mnt) + fork--> init (PID 1)
 *   init: /proc, /dev/pts, masks, pivot_root, then either runs one command (ephemeral run)
 *   or serves exec requests on a unix socket (supervisor). */
#ifndef AGENTCELL_RUNTIME_H
#define AGENTCELL_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "agentcell/error.h"
#include "agentcell/types.h"

#define AC_UID_RANGE	    65536u
#define AC_UID_BASE_FIRST   0x40000000u /* host uid of slot 0's root */
#define AC_SLOTS_PERSISTENT 32768u	/* slots [0, 32768) belong to persistent sandboxes */
#define AC_SLOTS_TOTAL	    49151u	/* [32768, 49152) are leased by ephemeral runs */
/* A persistent sandbox's supervisor and shims run as this sandbox uid, which the commands'
 * nested user namespace leaves unmapped (docs/ARCHITECTURE.md, "Commands in a nested user
 * namespace"). */
#define AC_SUPERVISOR_UID (AC_UID_RANGE - 1)

static inline uint32_t ac_slot_uid_base(uint32_t slot)
{
	return AC_UID_BASE_FIRST + slot * AC_UID_RANGE;
}

typedef struct ac_rt_limits {
	uint64_t memory_mb; /* 0: unlimited */
	double cpus;	    /* 0: unlimited */
	uint64_t pids;	    /* 0: unlimited */
} ac_rt_limits_t;

/* Everything the runtime needs to build and start one sandbox. */
typedef struct ac_rt_spec {
	const char *home;	 /* $AGENTCELL_HOME */
	const char *name;	 /* hostname and cgroup leaf */
	const char *image;	 /* "host" or an absolute directory */
	const char *data_dir;	 /* persistent overlay dirs; NULL: upper on a tmpfs (ephemeral) */
	const char *mount_cwd;	 /* host directory bound at /workspace, or NULL */
	const char *socket_path; /* supervisor socket (persistent only) */
	uint32_t uid_base;
	ac_rt_limits_t limits;
	uint64_t tmp_mb; /* size of /tmp */
	/* Blocks and inodes of the writable layer, in MB (0: unlimited). With data_dir: an
	 * ext4 image data_dir/disk.img (ac_disk_image_ensure made it); without: a tmpfs. */
	uint64_t disk_mb;
	bool read_only;
	char **env; /* sandbox-wide KEY=VALUE, NULL-terminated, may be NULL */
	/* Command policy: blocked programs are masked (empty, unexecutable) at every path in
	 * the sandbox's PATH that reaches them, hard links included; with allowlist_only,
	 * Landlock lets nothing but the allowed programs (and the ELF loader) be executed. */
	char **block, **allow; /* names or absolute paths, NULL-terminated, may be NULL */
	bool allowlist_only;
	/* ac_rt_start: > 0, a client's socket: the start gives up when its peer hangs up. */
	int cancel_fd;
	/* A field added here must also go into buildreq.c (a builder's orders). */
} ac_rt_spec_t;

/* The directories searched for a program name (the sandbox's default PATH). */
#define AC_PATH_DIRS "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"
/* 0 if argv0 may run under the policy, else -EPERM. */
int ac_policy_check(const ac_rt_spec_t *spec, const char *argv0);
/* Builder side: masks the blocked programs under root (a directory path), their versioned
 * names in PATH and their copies in the read-only layers (list cached under home/base). */
int ac_policy_mask(const ac_rt_spec_t *spec, const char *root, const char *staging,
		   ac_error_t **err);
/* Init side (after pivot_root, with no_new_privs): the Landlock allowlist. */
int ac_policy_landlock(const ac_rt_spec_t *spec, ac_error_t **err);

/* --- slots.c: host-wide uid ranges --- */
/* Claims the smallest free persistent slot for owner (the state file's path). */
int ac_slot_claim(const char *owner, uint32_t *slot, ac_error_t **err);
void ac_slot_release(uint32_t slot, const char *owner);
/* Stale claims (see slots.c) whose owner path starts with owner_prefix: appended to found
 * as {kind, path, why} and, with remove, deleted. Returns how many, -1 on error. */
int ac_slot_sweep(const char *owner_prefix, bool remove, json_t *found);
/* Leases an ephemeral slot; returns an fd holding the lease (close to release). */
int ac_slot_lease(uint32_t *slot, ac_error_t **err);
/* The cgroup leaf of a persistent sandbox (host-unique through its slot). */
static inline void ac_sandbox_cgroup_leaf(char *buf, size_t len, const char *name, uint32_t slot)
{
	snprintf(buf, len, "sb%u-%s", slot, name);
}

/* --- cgroup.c --- */
typedef struct ac_cgroup ac_cgroup_t;
/* Creates the sandbox's cgroup(s) (v2, or v1 memory/cpu/pids) and applies limits. */
int ac_cgroup_create(const char *leaf, const ac_rt_limits_t *lim, ac_cgroup_t **out,
		     ac_error_t **err);
/* Opens an existing sandbox cgroup without creating it (for stop/resize/cleanup). */
int ac_cgroup_open(const char *leaf, ac_cgroup_t **out, ac_error_t **err);
int ac_cgroup_set_limits(ac_cgroup_t *cg, const ac_rt_limits_t *lim, ac_error_t **err);
/* Moves pid into the cgroup(s). */
int ac_cgroup_attach(ac_cgroup_t *cg, pid_t pid, ac_error_t **err);
/* Moves the calling single-threaded process into the cgroup(s), cheaply (see cgroup.c). */
int ac_cgroup_attach_self(ac_cgroup_t *cg, ac_error_t **err);
/* Kills whatever is left inside, waits for it to be empty and removes the directories. */
int ac_cgroup_destroy(ac_cgroup_t *cg, ac_error_t **err);
void ac_cgroup_free(ac_cgroup_t *cg);
/* Removes empty leftover cgroups of ephemeral runs (prefix "run-"); best effort. */
void ac_cgroup_gc_runs(void);
/* Which cgroup version drives the limits: 1 or 2; 0 if none usable. Root path in *root. */
int ac_cgroup_mode(const char **root);
/* For tests: point the runtime at a different cgroup root and version. */
void ac_cgroup_set_root_for_tests(const char *root, int version);

/* Whether run and exec own the process's signals: relay SIGINT/SIGTERM/... to the sandbox
 * (the CLI, default true). A multi-threaded front end (serve) sets it false before its
 * first thread: dispositions are process-wide, and a request must never change them. */
extern bool ac_rt_relay_signals;

/* --- userns.c --- */
/* A user namespace mapping [0, 65536) to [uid_base, uid_base+65536), as an fd. */
int ac_userns_fd(uint32_t uid_base, ac_error_t **err);
/* Reaps the short-lived helpers left by ac_userns_fd (non-blocking). */
void ac_reap_helpers(void);
/* Enter userns_fd and become its root. */
int ac_userns_enter(int userns_fd, ac_error_t **err);
/* Inside a sandbox (init, as AC_SUPERVISOR_UID, before seccomp): the commands' user
 * namespace, a child of the sandbox's owned by that uid, mapping [0, 65535) onto the same
 * ids; an fd. */
int ac_userns_nested(ac_error_t **err);

/* --- disk.c: disk limits of the writable layer --- */
#define AC_DISK_INODE_RATIO 16384 /* bytes per inode, the ext4 default */
/* The inode budget of a disk of mb MB. */
uint64_t ac_disk_inodes(uint64_t mb);
/* 0 if disk images can be made and mounted here (loop devices, mke2fs), else an
 * AC_ERR_UNSUPPORTED error saying what to do. */
int ac_disk_check(ac_error_t **err);
/* Makes data_dir/disk.img (sparse ext4 of mb MB) unless it exists. Caller holds the
 * sandbox's lock. */
int ac_disk_image_ensure(const char *data_dir, uint64_t mb, ac_error_t **err);
/* How much the image may still grow on the host and how much the host file system has
 * free, in MB. */
int ac_disk_headroom(const char *data_dir, uint64_t *growth_mb, uint64_t *free_mb,
		     ac_error_t **err);
/* Builder side: loop-mounts data_dir/disk.img at target (autoclear; one user at a time). */
int ac_disk_mount(const char *data_dir, const char *target, ac_error_t **err);
/* Builder side, around the overlay mounts on a disk image mounted at root: frees the
 * image's reserve of inodes and blocks (so that a full disk still mounts), and makes it
 * again (best effort). */
void ac_disk_reserve_release(const char *root);
void ac_disk_reserve_make(const char *root);
/* Builder side: a tmpfs of mb MB and ac_disk_inodes(mb) inodes at dir (made if missing). */
int ac_disk_tmpfs(const char *dir, uint64_t mb, ac_error_t **err);
/* Waits until no loop device holds data_dir's image (true), at most timeout_ms. */
bool ac_disk_wait_released(const char *data_dir, long timeout_ms);

/* --- rootfs.c (builder side, host root, private mount namespace) --- */
/* Host base skeleton (filtered /etc, dpkg db, mount points), built once and reused. */
int ac_rootfs_host_base(const char *home, char **path_out, ac_error_t **err);
/* The same, plus a shared lock (*pin_fd, keep it open while the base is in use) that keeps
 * the base from being collected. */
int ac_rootfs_host_base_pinned(const char *home, char **path_out, int *pin_fd, ac_error_t **err);
/* Builds the sandbox root at <staging>/root. */
int ac_rootfs_build(const ac_rt_spec_t *spec, int userns_fd, const char *staging, ac_error_t **err);
/* Inside the new namespaces (init), with the new root as the working directory (the
 * path to it is not searchable by the sandbox's uids): /proc, /dev/pts, masks, hostname,
 * lo, pivot_root. */
int ac_rootfs_enter(const char *hostname, ac_error_t **err);

/* --- seccomp.c --- */
/* Compiles (once per process) and loads the sandbox's seccomp filter. Async-signal-safe
 * after ac_seccomp_prepare() has run. */
int ac_seccomp_prepare(ac_error_t **err);
/* The same through a cache file under home/base; no_setid adds the rules that keep
 * setuid/setgid bits from being set (sandboxes with the caller's directory mounted). The
 * program prepared last is the one ac_seccomp_load() loads. */
int ac_seccomp_prepare_cached(const char *home, bool no_setid, ac_error_t **err);
int ac_seccomp_load(void);
/* Stacks the commands' extra filter (setns refused; the sandbox's own filter lets the
 * supervisor's processes join the commands' user namespace). Async-signal-safe. */
int ac_seccomp_load_commands(void);

/* --- caps.c --- */
/* Limits the bounding set to the sandbox's capabilities; host_mount (a writable host
 * directory is mounted) also drops CAP_SETFCAP. */
int ac_caps_limit_bounding(bool host_mount, ac_error_t **err);
/* Drops effective/permitted/inheritable to the sandbox set that is still in the bounding
 * set (and clears ambient). */
int ac_caps_drop_to_sandbox_set(void);
/* The bounding set as a bit mask, and its restoration after joining a user namespace
 * (async-signal-safe). */
uint64_t ac_caps_bounding(void);
int ac_caps_bounding_restore(uint64_t set);
/* Becomes AC_SUPERVISOR_UID keeping the sandbox's capabilities; -1 with errno. */
int ac_caps_become_supervisor(void);

/* --- spawn.c (inside the sandbox) --- */
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
/* Resolve a user spec against the sandbox's /etc/passwd (no NSS: never loads sandbox code). */
int ac_user_resolve(const char *spec, uid_t *uid, gid_t *gid, char *home, size_t homelen);

/* --- launch.c (caller side) --- */
/* Runs one command in a fresh ephemeral sandbox and waits for it. */
int ac_rt_run(const ac_rt_spec_t *spec, const ac_cmd_t *cmd, const int fds[3], ac_result_t *res,
	      ac_error_t **err);
/* Starts a persistent sandbox's supervisor; returns its host pid once it serves requests.
 * The supervisor exits unless "y" is written to *ack_fd (then closed) by the caller once
 * it has recorded the pid; closing without writing makes it exit. */
int ac_rt_start(const ac_rt_spec_t *spec, pid_t *pid_out, int *ack_fd, ac_error_t **err);
/* A start that takes longer than this (ms) is given up and its builder killed. */
#define AC_RT_START_DEADLINE_MS 60000
/* Ends the builder of a start whose caller died (recorded at socket_path.builder). */
void ac_rt_end_left_builder(const char *socket_path);
/* A threaded caller starts its builders as its own binary afresh with argv[1] ==
 * AC_RT_BUILDER_ARG: a main() that links the runtime calls ac_rt_builder_main first for
 * that argv (it never returns). */
#define AC_RT_BUILDER_ARG "__builder"
int ac_rt_builder_main(int argc, char **argv) __attribute__((noreturn));

/* --- supervisor.c --- */
/* The persistent sandbox's PID 1 loop. Never returns. */
__attribute__((noreturn)) void ac_supervisor_main(int listen_fd, const ac_rt_spec_t *spec);

/* --- exec client (proto.c) --- */
/* Runs cmd in the sandbox whose supervisor listens on socket_path, streaming through the
 * given descriptors (or a pty when cmd->tty). */
int ac_rt_exec(const char *socket_path, const ac_cmd_t *cmd, int fds[3], ac_result_t *res,
	       ac_error_t **err);

/* Detached commands: stdout and stderr logs are each kept under this many bytes (the
 * oldest half goes when full, and is counted); the status record has a fixed size. */
#define AC_DETACH_LOG_CAP     (8u << 20)
#define AC_DETACH_STATUS_SIZE 512
/* Starts cmd detached in the sandbox; its output goes to the log descriptors and its
 * status record (JSON, AC_DETACH_STATUS_SIZE bytes at offset 0) to status_fd. */
/* Host identities of a detached command and its shim (pid + start time: no pid reuse
 * fools them), so that the host can tell and end what the sandbox's code did to them. */
typedef struct ac_rt_detach_id {
	pid_t pid, shim;
	unsigned long long pid_start, shim_start;
	unsigned long long pidns; /* the sandbox's PID namespace (ac_proc_pidns) */
} ac_rt_detach_id_t;
int ac_rt_exec_detach(const char *socket_path, const ac_cmd_t *cmd, int out_fd, int err_fd,
		      int status_fd, ac_rt_detach_id_t *id, ac_error_t **err);
/* 2: the shim is alive; 1: the shim is gone but the command still runs; 0: both gone. */
int ac_rt_detached_state(const ac_rt_detach_id_t *id);
/* Ends a detached command from the host: SIGTERM to its shim, which kills the tree and
 * records the end (returns 0); if the shim was stopped or is gone, the host kills the
 * tree and the command's session itself (returns 1: nobody recorded the end). */
int ac_rt_kill_detached(const ac_rt_detach_id_t *id, ac_error_t **err);

/* --- inroot.c --- */
/* Work on a sandbox's files: fn runs in a child with a descriptor of the sandbox's root
 * (init_pid > 0: the running sandbox's; else its root file system is built, as for a
 * start, in a private mount namespace) and the host uid of the sandbox's root. Whatever
 * fn must hand back goes through descriptors it was given (it runs in a child). */
typedef int (*ac_rt_root_fn)(int rootfd, uid_t root_uid, void *arg, ac_error_t **err);
/* Bounds on that child: it is killed (and reaped) when cancel_fd (> 0) reports its peer
 * gone, when it moved no byte for timeout_ms (> 0), or when the running sandbox's init
 * exits (a stop). */
typedef struct ac_rt_root_ctl {
	int cancel_fd;
	int timeout_ms;
} ac_rt_root_ctl_t;
int ac_rt_in_root(const ac_rt_spec_t *spec, pid_t init_pid, unsigned long long init_start,
		  const ac_rt_root_ctl_t *ctl, ac_rt_root_fn fn, void *arg, ac_error_t **err);

/* --- proc.c --- */
/* Start time (clock ticks since boot) of pid; 0 if it does not exist or is a zombie. */
unsigned long long ac_proc_starttime(pid_t pid);
/* Inode of pid's PID namespace (identifies it); 0 if pid is gone. */
unsigned long long ac_proc_pidns(pid_t pid);
/* Host pid of the child of parent whose pid in its own namespace is nspid; 0 if none. */
pid_t ac_proc_find_child_nspid(pid_t parent, pid_t nspid);
/* Sends sig to every descendant of root (host /proc parent links; root itself excepted)
 * and, when sid > 1, to every process of session sid in the PID namespace pidns. Returns
 * how many were signalled. For the host side of deadlines: the sandbox can stop or kill
 * the shims that would otherwise do this. */
int ac_proc_signal_tree(pid_t root, pid_t sid, unsigned long long pidns, int sig);
/* SIGKILLs those until none is left (bounded: about a second of passes). */
void ac_proc_kill_tree(pid_t root, pid_t sid, unsigned long long pidns);
/* The kernel's boot id (36 chars). */
int ac_boot_id(char out[37]);

#endif
