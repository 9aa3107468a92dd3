/* What the runtime is asked to build: a sandbox's specification, shared by the caller's
 * side (launch.c), the builder (rootfs.c, policy.c, buildreq.c) and the inside (spawn.c,
 * supervisor.c). */
#ifndef AGENTCELL_RT_SPEC_H
#define AGENTCELL_RT_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentcell/error.h"

/* A host directory bound into the sandbox (a named volume), idmapped so that the host's
 * root owns what the sandbox's root writes there. */
typedef struct ac_rt_volume {
	const char *src; /* absolute host directory */
	const char *dst; /* absolute path in the sandbox, created when missing */
	bool read_only;
} ac_rt_volume_t;

typedef struct ac_rt_limits {
	uint64_t memory_mb; /* 0: unlimited */
	double cpus;	    /* 0: unlimited */
	uint64_t pids;	    /* 0: unlimited */
} ac_rt_limits_t;

/* Everything the runtime needs to build and start one sandbox. */
typedef struct ac_rt_spec {
	const char *home;  /* $AGENTCELL_HOME */
	const char *name;  /* hostname and cgroup leaf */
	const char *image; /* "host", an absolute directory, or "oci" (layers alone) */
	/* Read-only layer directories stacked above image (src/image/), bottom first,
	 * NULL-terminated; NULL or empty: none. With "host", each layer is a whole root
	 * tree: its usr/, lib*, var/lib/dpkg go above the host's own of the same name. */
	char **layers;
	/* The commands' defaults (from an image's config): cwd and user when the command
	 * names none. NULL: "/" (or /workspace with mount_cwd), root. */
	const char *workdir, *user;
	/* Named volumes, mounted after /workspace in this order. */
	const ac_rt_volume_t *volumes;
	size_t nvolumes;
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
	/* Network (src/net/net.h): with net_fd, the builder brings lo up in the sandbox's new
	 * network namespace and hands the caller one socket of it before any sandbox process
	 * exists: with net_proxy_port, the listener at 127.0.0.1:port the proxy serves;
	 * else an unbound datagram socket (a handle on the namespace, for published ports).
	 * The caller gets it through on_net (net_pid: the persistent sandbox's init; 0 for a
	 * run, whose command starts once on_net returned 0). */
	bool net_fd;
	uint16_t net_proxy_port;
	int (*on_net)(void *arg, int net_fd, pid_t net_pid, ac_error_t **err);
	void *on_net_arg;
	/* A host file bound read-only over the image's /etc/ssl/certs/ca-certificates.crt
	 * (the system CAs plus the sandbox's interception CA), or NULL. */
	const char *ca_bundle;
	/* A field added here must also go into buildreq.c (a builder's orders). */
} ac_rt_spec_t;

#endif
