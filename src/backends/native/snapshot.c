/* ops.snapshot of the native backend: a stopped sandbox's overlay upper layers written as
 * one OCI layer (src/image/ ac_image_diff_*).
 *
 * The upper layers are data/<name>/upper/<layer>, or the same inside data/<name>/disk.img
 * (an ext4 image with a disk limit). A forked child reads them: for a disk image it mounts
 * it (read-only) in a mount namespace of its own, which dies with it. The files there
 * belong to the sandbox's host uids (uid_base + n); the child reads each upper layer
 * through an idmapped mount mapping them back to n, so the layer records the ids the
 * sandbox saw and any other sandbox's idmapped mount shows them alike. Layer "root" is the
 * layer's root, "usr" its usr/, a host lib directory its own name, "dpkg" var/lib/dpkg/. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentcell/store.h"
#include "backends/native/native.h"
#include "base/io.h"
#include "base/util.h"
#include "image/image.h"
#include "runtime/disk.h"
#include "runtime/userns.h"

static const struct {
	const char *layer, *prefix;
} uppers[] = {{"root", ""},	   {"usr", "usr/"},	  {"bin", "bin/"},
	      {"sbin", "sbin/"},   {"lib", "lib/"},	  {"lib32", "lib32/"},
	      {"lib64", "lib64/"}, {"libx32", "libx32/"}, {"dpkg", "var/lib/dpkg/"}};

/* What the child reports. */
typedef struct snap_result {
	int failed;
	int kind;
	char digest[72], diff_id[72];
	char msg[512];
} snap_result_t;

/* Upper layer dir of the tree at layers, seen through userns_fd; a readable directory
 * descriptor, -1 when the sandbox has no such layer, or -2 (err set). */
static int open_upper(const char *layers, const char *layer, int userns_fd, ac_error_t **err)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/upper/%s", layers, layer);
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	_cleanup_close_ int tree =
	    open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
	if (tree < 0) {
		ac_error_set(err, AC_ERR_BACKEND, errno, "open_tree %s", path);
		return -2;
	}
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY |
					   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
			       .userns_fd = (uint64_t)userns_fd};
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
		ac_error_set(err, AC_ERR_BACKEND, errno, "cannot make an idmapped mount of %s",
			     path);
		return -2;
	}
	/* A detached mount serves as a directory descriptor as it is. */
	int fd = openat(tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ac_error_set(err, AC_ERR_BACKEND, errno, "open %s", path);
		return -2;
	}
	return fd;
}

static int write_diff(const char *layers, int userns_fd, int out_fd, snap_result_t *r,
		      ac_error_t **err)
{
	ac_image_diff_t *d = NULL;
	if (ac_image_diff_begin(out_fd, &d, err) < 0)
		return -1;
	for (size_t i = 0; i < AC_ARRAY_SIZE(uppers); i++) {
		int fd = open_upper(layers, uppers[i].layer, userns_fd, err);
		if (fd == -1)
			continue;
		int rc = fd < 0 ? -1 : ac_image_diff_add(d, fd, uppers[i].prefix, err);
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			char dg[72], di[72];
			ac_image_diff_end(d, dg, di, NULL); /* frees d */
			return -1;
		}
	}
	return ac_image_diff_end(d, r->digest, r->diff_id, err);
}

__attribute__((noreturn)) static void child(const char *home, const char *data, bool disk,
					    int userns_fd, int out_fd, int rep)
{
	ac_error_t *e = NULL;
	snap_result_t r = {0};
	char layers[4300];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	snprintf(layers, sizeof(layers), "%s", data);
	if (disk) {
		/* The sandbox's ext4, mounted where every builder mounts its staging tmpfs: in
		 * a mount namespace of our own, so no one else sees it. */
		snprintf(layers, sizeof(layers), "%s/base/mnt", home);
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			ac_error_set(&e, AC_ERR_BACKEND, errno, "cannot create a mount namespace");
		else if (ac_mkdir_p_at(AT_FDCWD, layers, 0700, &e) < 0 ||
			 ac_disk_mount(data, layers, &e) < 0)
			;
		else if (mount(NULL, layers, NULL,
			       MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			       NULL) < 0)
			ac_error_set(&e, AC_ERR_BACKEND, errno, "cannot make the disk read-only");
	}
	if (!e)
		write_diff(layers, userns_fd, out_fd, &r, &e);
	if (e) {
		r.failed = 1;
		r.kind = (int)e->kind;
		snprintf(r.msg, sizeof(r.msg), "%s", e->msg);
	}
	(void)!ac_write_all(rep, &r, sizeof(r));
	_exit(e ? 1 : 0);
}

int ac_native_snapshot(const ac_backend_ctx_t *ctx, const json_t *st, const char *data, int out_fd,
		       char *digest_out, char *diff_id_out, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	long long slot = ac_state_int(st, "uid_slot", -1);
	struct stat sb;
	if (slot < 0 || stat(data, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "sandbox '%s' has no files of its own (it never ran): nothing "
				    "to snapshot",
				    name);
	char img[4300];
	snprintf(img, sizeof(img), "%s/disk.img", data);
	bool disk = ac_state_int(st, "disk_mb", 0) > 0 && access(img, F_OK) == 0;
	_cleanup_close_ int userns_fd = ac_userns_fd_map(ac_slot_uid_base((uint32_t)slot), 0, err);
	if (userns_fd < 0)
		return -1;
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(rep[0]);
		close(rep[1]);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		close(rep[0]);
		child(ctx->home, data, disk, userns_fd, out_fd, rep[1]);
	}
	close(rep[1]);
	snap_result_t r;
	ssize_t n = ac_read_all(rep[0], &r, sizeof(r));
	close(rep[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ac_reap_helpers();
	if (n != (ssize_t)sizeof(r))
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the snapshot of '%s' died before it was written", name);
	if (disk) /* the loop device goes with the child's mount namespace */
		ac_disk_wait_released(data, 5000);
	if (r.failed) {
		r.msg[sizeof(r.msg) - 1] = 0;
		return ac_error_set(err, (ac_error_kind_t)r.kind, 0, "%s", r.msg);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the snapshot of '%s' failed", name);
	r.digest[71] = r.diff_id[71] = 0;
	memcpy(digest_out, r.digest, 72);
	memcpy(diff_id_out, r.diff_id, 72);
	return 0;
}
