/* Disk limits of a sandbox's writable layer: blocks and inodes.
 *
 * A persistent sandbox's upper and work directories live on an ext4 file system of its own,
 * in a sparse image data/<name>/disk.img made at its first start (mke2fs from e2fsprogs,
 * lazy inode tables and journal: a few MB on the host) and loop-mounted by the builder in
 * its private mount namespace. The loop device is set up with LO_FLAGS_AUTOCLEAR, so it
 * goes away with the last mount: when the sandbox's mount namespace dies, nothing is left.
 * One user at a time: the image's open file description, which the loop device keeps, holds
 * an exclusive flock; a second mount of the same image (a start racing the teardown of the
 * previous one) waits for it, so the file system is never mounted twice.
 *
 * An ephemeral run's upper layer is a tmpfs with size= and nr_inodes=; its pages are
 * charged to the sandbox's memory cgroup like any tmpfs page it writes. */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/disk.h"

#define IMAGE_NAME "disk.img"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t ac_disk_inodes(uint64_t mb)
{
	return mb * (1024 * 1024 / AC_DISK_INODE_RATIO);
}

int ac_disk_tmpfs(const char *dir, uint64_t mb, ac_error_t **err)
{
	char opts[128];
	snprintf(opts, sizeof(opts), "mode=0700,size=%llum,nr_inodes=%llu", (unsigned long long)mb,
		 (unsigned long long)ac_disk_inodes(mb));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "mkdir %s", dir);
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "mount the sandbox's disk tmpfs");
	return 0;
}

static const char *mke2fs_path(void)
{
	static const char *const where[] = {"/usr/sbin/mke2fs", "/sbin/mke2fs",
					    "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(where); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

int ac_disk_check(ac_error_t **err)
{
	if (access("/dev/loop-control", R_OK | W_OK) < 0)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, errno,
				    "disk limits need loop devices and /dev/loop-control is "
				    "unusable (load the module: modprobe loop; or give --disk "
				    "unlimited)");
	if (!mke2fs_path())
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "disk limits need mke2fs (Debian package e2fsprogs), which is "
				    "not installed (or give --disk unlimited)");
	return 0;
}

/* mke2fs on path; its error output (capped) goes into the error. */
static int run_mke2fs(const char *prog, const char *path, ac_error_t **err)
{
	/* Everything is built before the fork: the caller may be threaded (serve). */
	char *argv[] = {(char *)prog, "-q", "-F", "-t", "ext4", "-b", "4096", "-i", "16384", "-I",
			"256", "-m", "0", "-L", "agentcell", "-E",
			/* itables and journal are zeroed lazily (a regular file's holes read
			 * as zeros: mke2fs marks the tables zeroed, nothing is written) */
			"lazy_itable_init=1,lazy_journal_init=1", (char *)path, NULL};
	char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe");
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		if (null >= 0)
			close(null);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		if (null < 0 || dup2(null, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
			_exit(127);
		close_range(3, ~0u, 0);
		execve(prog, argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	if (null >= 0)
		close(null);
	char out[600];
	ssize_t n = ac_read_all(pfd[0], out, sizeof(out) - 1);
	char sink[4096];
	while (n >= 0 && read(pfd[0], sink, sizeof(sink)) > 0)
		;
	close(pfd[0]);
	out[n > 0 ? n : 0] = 0;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return ac_error_set(err, AC_ERR_BACKEND, 0, "cannot make the sandbox's disk image: %s %s",
			    prog, out[0] ? out : "failed");
}

int ac_disk_image_ensure(const char *data_dir, uint64_t mb, ac_error_t **err)
{
	char img[4200], tmp[4300];
	struct stat st;
	snprintf(img, sizeof(img), "%s/" IMAGE_NAME, data_dir);
	if (lstat(img, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return ac_error_set(err, AC_ERR_INTERNAL, 0, "%s is not a regular file",
					    img);
		return 0;
	}
	if (errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "stat %s", img);
	if (ac_disk_check(err) < 0)
		return -1;
	const char *prog = mke2fs_path();
	if (ac_mkdir_p_at(AT_FDCWD, data_dir, 0700, err) < 0)
		return -1;
	/* Made under a temporary name and renamed: a crash never leaves half an image. The
	 * caller holds the sandbox's lock, so the name is ours. */
	snprintf(tmp, sizeof(tmp), "%s/" IMAGE_NAME ".tmp", data_dir);
	unlink(tmp);
	_cleanup_close_ int fd =
	    open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "create %s", tmp);
	if (ftruncate(fd, (off_t)(mb << 20)) < 0) {
		int e = errno;
		unlink(tmp);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "size %s", tmp);
	}
	if (run_mke2fs(prog, tmp, err) < 0) {
		unlink(tmp);
		return -1;
	}
	if (fsync(fd) < 0 || rename(tmp, img) < 0) {
		int e = errno;
		unlink(tmp);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot store %s", img);
	}
	_cleanup_close_ int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

int ac_disk_headroom(const char *data_dir, uint64_t *growth_mb, uint64_t *free_mb, ac_error_t **err)
{
	char img[4200];
	struct stat st;
	struct statvfs vfs;
	snprintf(img, sizeof(img), "%s/" IMAGE_NAME, data_dir);
	if (stat(img, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "stat %s", img);
	if (statvfs(data_dir, &vfs) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "statvfs %s", data_dir);
	uint64_t used = (uint64_t)st.st_blocks * 512;
	uint64_t size = (uint64_t)st.st_size;
	*growth_mb = size > used ? (size - used) >> 20 : 0;
	*free_mb = ((uint64_t)vfs.f_bavail * vfs.f_frsize) >> 20;
	return 0;
}

/* An exclusive flock on the image's open file description; waits up to timeout_ms for a
 * previous user (a loop device being torn down) to let go. */
static int lock_image(int fd, long timeout_ms)
{
	/* The teardown takes a few ms after the sandbox's last process is gone. */
	for (long waited = 0, step = 1;; waited += step, step = waited < 50 ? 1 : 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (waited >= timeout_ms)
			return -1;
		sleep_ms(step);
	}
}

int ac_disk_mount(const char *data_dir, const char *target, ac_error_t **err)
{
	char img[4200], dev[64];
	snprintf(img, sizeof(img), "%s/" IMAGE_NAME, data_dir);
	_cleanup_close_ int fd = open(img, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "open %s", img);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "%s is not a regular file", img);
	if (lock_image(fd, 5000) < 0)
		return ac_error_set(err, AC_ERR_STATE, errno == EWOULDBLOCK ? 0 : errno,
				    "the sandbox's disk image is still in use");
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return ac_disk_check(err);
	_cleanup_close_ int lfd = -1;
	for (int attempt = 0;; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "no free loop device");
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0)
			return ac_error_set(err, AC_ERR_BACKEND, errno, "open %s", dev);
		/* The loop device keeps this open file description, and with it the flock,
		 * until it is cleared: the last unmount clears it (autoclear). */
		struct loop_config cfg = {.fd = (unsigned)fd,
					  .info = {.lo_flags = LO_FLAGS_AUTOCLEAR}};
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", img);
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
			break;
		int e = errno;
		close(steal_fd(lfd));
		/* Another process took that device between GET_FREE and CONFIGURE. */
		if (e != EBUSY || attempt >= 32)
			return ac_error_set(err, AC_ERR_BACKEND, e, "cannot set up %s", dev);
	}
	if (mount(dev, target, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "errors=remount-ro") < 0)
		/* Closing lfd clears the device (autoclear). */
		return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot mount the disk image %s",
				    img);
	return 0;
}

/* A full disk must still start: each overlay mount makes its work directory anew and
 * probes the upper file system (a temporary directory, a whiteout), which needs a few free
 * inodes and blocks. So the image's root keeps a reserve that no overlay can reach: the
 * builder frees it before mounting the overlays and makes it again afterwards. */
#define RESERVE_DIR    ".agentcell-reserve"
#define RESERVE_INODES 64
#define RESERVE_BYTES  (1 << 20)

void ac_disk_reserve_release(const char *root)
{
	_cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd >= 0)
		(void)ac_rm_rf_at(rfd, RESERVE_DIR, NULL);
}

void ac_disk_reserve_make(const char *root)
{
	_cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd < 0 || (mkdirat(rfd, RESERVE_DIR, 0700) < 0 && errno != EEXIST))
		return;
	_cleanup_close_ int dfd =
	    openat(rfd, RESERVE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return;
	for (int i = 0; i < RESERVE_INODES; i++) {
		char n[16];
		snprintf(n, sizeof(n), "%d", i);
		int fd = openat(dfd, n, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return;
		if (i == 0)
			(void)fallocate(fd, 0, 0, RESERVE_BYTES);
		close(fd);
	}
}

bool ac_disk_wait_released(const char *data_dir, long timeout_ms)
{
	char img[4200];
	snprintf(img, sizeof(img), "%s/" IMAGE_NAME, data_dir);
	_cleanup_close_ int fd = open(img, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return true;
	return lock_image(fd, timeout_ms) == 0;
}
