/* Unit tests for layer unpacking and writing (src/image/unpack.c, src/image/diff.c): the
 * overlay form (whiteouts, opaque dirs), metadata (owners, setuid, xattrs, times), hard
 * links, digests, and every way a hostile tar tries to write outside its directory. Each
 * test unpacks into <tmp>/root beside a <tmp>/outside sentinel directory and checks that
 * nothing appeared outside. Needs root (mknod of whiteouts, chown, trusted xattrs). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/io.h"
#include "base/sha256.h"
#include "image/image.h"
#include "image/internal.h"
#include "tarbuild.h"

struct fx {
	char dir[64];
	int root, outside;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ac-test-unpack-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	char p[128];
	snprintf(p, sizeof(p), "%s/root", f->dir);
	mkdir(p, 0755);
	f->root = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s/outside", f->dir);
	mkdir(p, 0755);
	f->outside = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = f;
	return f->root >= 0 && f->outside >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->root);
	close(f->outside);
	ac_rm_rf_at(AT_FDCWD, f->dir, NULL);
	free(f);
	return 0;
}

static int memfd_of(const void *data, size_t len)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ac_write_all(fd, data, len), 0);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Unpacks t into f->root; returns the error kind (0: success). */
static int unpack(struct fx *f, tarbuf_t *t, char *msg, size_t msglen)
{
	int fd = memfd_of(t->p, t->len);
	ac_error_t *err = NULL;
	uint64_t size = 0;
	int r = ac_image_unpack(fd, f->root, &size, &err);
	close(fd);
	int kind = 0;
	if (r < 0) {
		assert_non_null(err);
		kind = err->kind;
		if (msg)
			snprintf(msg, msglen, "%s", err->msg);
		ac_error_free(err);
	}
	return kind;
}

static int count_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fdopendir(fd);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* A tar with one hostile sequence: refused (AC_ERR_INVALID) and nothing outside. */
static void expect_refused(struct fx *f, tarbuf_t *t, const char *needle)
{
	tb_end(t);
	char msg[1024] = "";
	int kind = unpack(f, t, msg, sizeof(msg));
	if (kind != AC_ERR_INVALID)
		fail_msg("expected AC_ERR_INVALID, got kind %d: %s", kind, msg);
	if (needle && strstr(msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", msg, needle);
	assert_int_equal(count_entries(f->outside), 0);
	struct stat st;
	assert_int_equal(stat("/etc/passwd", &st), 0);
	free(t->p);
}

static void test_basic(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_entry_full(&t, "./", '5', 0755, 0, 0, NULL, 0, NULL, 0, 0);
	tb_entry_full(&t, "./usr/", '5', 0750, 1000, 1001, NULL, 0, NULL, 0, 0);
	tb_entry_full(&t, "./usr/bin/su", '0', 04755, 0, 0, "#!/bin/sh\n", 10, NULL, 0, 0);
	tb_pax(&t, "SCHILY.xattr.user.note", "hi", 2);
	tb_entry_full(&t, "/etc/motd", '0', 0644, 1000, 1000, "hello", 5, NULL, 0, 0);
	tb_pax(&t, "SCHILY.xattr.trusted.overlay.opaque", "y", 1);
	tb_entry(&t, "etc/trusted", '5', 0755, NULL, NULL);
	tb_pax(&t, "SCHILY.xattr.security.selinux", "x", 1);
	tb_entry(&t, "etc/selinux", '0', 0644, "", NULL);
	/* A v2 file capability: cap_net_raw permitted + effective. */
	unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0, 0, 0, 0,
				 0,    0,    0,	   0,	 0,    0,    0, 0, 0, 0};
	tb_pax(&t, "SCHILY.xattr.security.capability", cap, sizeof(cap));
	tb_entry(&t, "usr/bin/ping", '0', 0755, "ELF", NULL);
	tb_entry(&t, "etc/link", '1', 0644, NULL, "etc/motd");
	tb_entry(&t, "etc/abs", '2', 0777, NULL, "/etc/passwd");
	tb_entry(&t, "etc/up", '2', 0777, NULL, "../../../../etc/shadow");
	tb_entry(&t, "run/fifo", '6', 0600, NULL, NULL);
	tb_entry_full(&t, "dev/null", '3', 0666, 0, 0, NULL, 0, NULL, 1, 3);
	tb_entry_full(&t, "dev/sda", '4', 0660, 0, 0, NULL, 0, NULL, 8, 0);
	tb_end(&t);

	int fd = memfd_of(t.p, t.len);
	ac_error_t *err = NULL;
	uint64_t size = 0, devices = 0;
	char diff_id[72];
	const char *mt = NULL;
	char hex[65];
	ac_sha256_hex(t.p, t.len, hex);
	int r = ac_image_unpack_layer(fd, f->root, hex, &size, diff_id, &mt, &devices, &err);
	if (r < 0)
		fail_msg("unpack: %s", err->msg);
	close(fd);
	assert_int_equal(size, 10 + 5 + 3);
	assert_int_equal(devices, 2);
	assert_string_equal(mt, AC_MT_OCI_LAYER);
	char want[72];
	snprintf(want, sizeof(want), "sha256:%s", hex);
	assert_string_equal(diff_id, want); /* a plain tar: blob digest == diff_id */

	struct stat st;
	assert_int_equal(fstatat(f->root, "usr", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mtime, 1700000000);
	assert_int_equal(fstatat(f->root, "usr/bin/su", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_mtime, 1700000000);
	assert_int_equal(fstatat(f->root, "usr/bin", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* made for a missing parent */
	assert_int_equal(fstatat(f->root, "etc/motd", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_nlink, 2);
	struct stat st2;
	assert_int_equal(fstatat(f->root, "etc/link", &st2, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_ino, st2.st_ino);

	char v[64];
	int mfd = openat(f->root, "etc/motd", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fgetxattr(mfd, "user.note", v, sizeof(v)), 2);
	close(mfd);
	int dfd = openat(f->root, "etc/trusted", O_RDONLY | O_CLOEXEC);
	assert_true(fgetxattr(dfd, "trusted.overlay.opaque", v, sizeof(v)) < 0); /* dropped */
	close(dfd);
	int pfd = openat(f->root, "usr/bin/ping", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fgetxattr(pfd, "security.capability", v, sizeof(v)), 20);
	close(pfd);

	char target[256];
	ssize_t n = readlinkat(f->root, "etc/abs", target, sizeof(target));
	assert_int_equal(n, 11);
	assert_memory_equal(target, "/etc/passwd", 11); /* kept as is: read inside the sandbox */
	n = readlinkat(f->root, "etc/up", target, sizeof(target));
	assert_int_equal(n, 22);
	assert_int_equal(fstatat(f->root, "run/fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_not_equal(fstatat(f->root, "dev/null", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_not_equal(fstatat(f->root, "dev/sda", &st, AT_SYMLINK_NOFOLLOW), 0);
	free(t.p);
}

static void test_whiteouts(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_entry_full(&t, "home/", '5', 0755, 1000, 1002, NULL, 0, NULL, 0, 0);
	tb_entry(&t, "home/.wh.old", '0', 0644, NULL, NULL);
	tb_entry(&t, "opt/app/.wh..wh..opq", '0', 0644, NULL, NULL);
	tb_entry(&t, "opt/app/kept", '0', 0644, "k", NULL);
	tb_entry(&t, ".wh..wh.plnk", '5', 0755, NULL, NULL);
	tb_entry(&t, "x", '0', 0644, "gone", NULL);
	tb_entry(&t, ".wh.x", '0', 0644, NULL, NULL); /* a whiteout replaces the layer's own x */
	tb_end(&t);
	char msg[512];
	assert_int_equal(unpack(f, &t, msg, sizeof(msg)), 0);
	struct stat st;
	assert_int_equal(fstatat(f->root, "home/old", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1002);
	assert_int_equal(fstatat(f->root, "x", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_not_equal(fstatat(f->root, "home/.wh.old", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_not_equal(fstatat(f->root, ".wh..wh.plnk", &st, AT_SYMLINK_NOFOLLOW), 0);
	char v[8];
	int fd = openat(f->root, "opt/app", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	close(fd);
	assert_int_equal(fstatat(f->root, "opt/app/kept", &st, AT_SYMLINK_NOFOLLOW), 0);
	free(t.p);
}

static void test_replace(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_entry(&t, "a", '0', 0644, "file", NULL);
	tb_entry(&t, "a", '5', 0755, NULL, NULL); /* a dir replaces a file */
	tb_entry(&t, "a/inner", '0', 0644, "x", NULL);
	tb_entry(&t, "b/c/d", '0', 0644, "deep", NULL);
	tb_entry(&t, "b", '0', 0600, "now a file", NULL); /* a file replaces a whole dir */
	tb_entry(&t, "l", '2', 0777, NULL, "target");
	tb_entry(&t, "l", '0', 0644, "plain", NULL); /* a file replaces a symlink, not its target */
	tb_entry(&t, "same", '0', 0644, "one", NULL);
	tb_entry(&t, "same", '0', 0644, "two", NULL);
	tb_end(&t);
	char msg[512];
	int kind = unpack(f, &t, msg, sizeof(msg));
	if (kind)
		fail_msg("%s", msg);
	struct stat st;
	assert_int_equal(fstatat(f->root, "a/inner", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->root, "b", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 10);
	assert_int_equal(fstatat(f->root, "l", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_not_equal(fstatat(f->root, "target", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->root, "same", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_size, 3);
	free(t.p);
}

static void test_escape_dotdot(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "../outside/pwned", '0', 0644, "x", NULL);
	expect_refused(*state, &t, "'..' component");
}

static void test_escape_dotdot_inner(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "a/", '5', 0755, NULL, NULL);
	tb_entry(&t, "a/../../outside/pwned", '0', 0644, "x", NULL);
	expect_refused(*state, &t, "layer entry 'a/../../outside/pwned'");
}

static void test_absolute_made_relative(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_entry(&t, "/abs/file", '0', 0644, "x", NULL);
	tb_entry(&t, "//./abs//./two", '0', 0644, "y", NULL);
	tb_end(&t);
	assert_int_equal(unpack(f, &t, NULL, 0), 0);
	struct stat st;
	assert_int_equal(fstatat(f->root, "abs/file", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->root, "abs/two", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(count_entries(f->outside), 0);
	free(t.p);
}

static void test_escape_symlink_dir(void **state)
{
	struct fx *f = *state;
	/* A symlink to the sentinel directory, then a file through it. */
	char out[128];
	snprintf(out, sizeof(out), "%s/outside", f->dir);
	tarbuf_t t = {0};
	tb_entry(&t, "d", '2', 0777, NULL, out);
	tb_entry(&t, "d/pwned", '0', 0644, "x", NULL);
	expect_refused(f, &t, "a path through a symlink");
}

static void test_escape_symlink_relative(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "up", '2', 0777, NULL, "../outside");
	tb_entry(&t, "up/pwned", '0', 0644, "x", NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_escape_symlink_inside(void **state)
{
	/* Even a symlink pointing inside the layer is not followed. */
	tarbuf_t t = {0};
	tb_entry(&t, "real/", '5', 0755, NULL, NULL);
	tb_entry(&t, "alias", '2', 0777, NULL, "real");
	tb_entry(&t, "alias/f", '0', 0644, "x", NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_escape_symlink_etc(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "x", '2', 0777, NULL, "/etc");
	tb_entry(&t, "x/passwd", '0', 0644, "root::0:0::/:/bin/sh\n", NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_escape_symlink_dir_entry(void **state)
{
	/* A directory entry through a symlink (would chmod/chown the target). */
	tarbuf_t t = {0};
	tb_entry(&t, "x", '2', 0777, NULL, "/etc");
	tb_entry(&t, "x/ssl/", '5', 0777, NULL, NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_escape_dir_replaced_by_symlink(void **state)
{
	/* The parent directory cached for "a/x" is replaced by a symlink before "a/passwd". */
	tarbuf_t t = {0};
	tb_entry(&t, "a/", '5', 0755, NULL, NULL);
	tb_entry(&t, "a/x", '0', 0644, "x", NULL);
	tb_entry(&t, "a", '2', 0777, NULL, "/etc");
	tb_entry(&t, "a/passwd", '0', 0644, "pwned", NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_escape_hardlink_dotdot(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "h", '1', 0644, NULL, "../../etc/passwd");
	expect_refused(*state, &t, "hard link target");
}

static void test_escape_hardlink_abs(void **state)
{
	/* "/etc/passwd" is made relative: the layer's own etc/passwd, not unpacked. */
	tarbuf_t t = {0};
	tb_entry(&t, "h", '1', 0644, NULL, "/etc/passwd");
	expect_refused(*state, &t, NULL);
}

static void test_escape_hardlink_symlink(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "s", '2', 0777, NULL, "/etc/passwd");
	tb_entry(&t, "h", '1', 0644, NULL, "s");
	expect_refused(*state, &t, "other than a regular file");
}

static void test_escape_hardlink_through_symlink(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "e", '2', 0777, NULL, "/etc");
	tb_entry(&t, "h", '1', 0644, NULL, "e/passwd");
	expect_refused(*state, &t, NULL);
}

static void test_escape_hardlink_dir(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "d/", '5', 0755, NULL, NULL);
	tb_entry(&t, "h", '1', 0644, NULL, "d");
	expect_refused(*state, &t, "other than a regular file");
}

static void test_whiteout_dotdot(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "a/.wh...", '0', 0644, NULL, NULL); /* whiteout of "a/.." */
	expect_refused(*state, &t, "whiteout");
}

static void test_whiteout_dot(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "a/.wh..", '0', 0644, NULL, NULL); /* whiteout of "a/." */
	expect_refused(*state, &t, "whiteout");
}

static void test_whiteout_empty(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, ".wh.", '0', 0644, NULL, NULL);
	expect_refused(*state, &t, "whiteout");
}

static void test_whiteout_through_symlink(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "x", '2', 0777, NULL, "/etc");
	tb_entry(&t, "x/.wh.passwd", '0', 0644, NULL, NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_opaque_through_symlink(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "x", '2', 0777, NULL, "/etc");
	tb_entry(&t, "x/.wh..wh..opq", '0', 0644, NULL, NULL);
	expect_refused(*state, &t, "a path through a symlink");
}

static void test_parent_is_file(void **state)
{
	tarbuf_t t = {0};
	tb_entry(&t, "f", '0', 0644, "x", NULL);
	tb_entry(&t, "f/g", '0', 0644, "y", NULL);
	expect_refused(*state, &t, "not a directory");
}

static void test_long_name(void **state)
{
	tarbuf_t t = {0};
	char *name = malloc(5001);
	memset(name, 'a', 5000);
	name[5000] = 0;
	for (int i = 100; i < 5000; i += 100)
		name[i] = '/';
	tb_pax(&t, "path", name, 5000);
	tb_entry(&t, "placeholder", '0', 0644, "x", NULL);
	free(name);
	expect_refused(*state, &t, "longer than 4096");
}

static void test_not_a_tar(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_raw(&t, "this is not a tar archive, not even close; just some text padding it out", 72);
	char msg[512];
	assert_int_equal(unpack(f, &t, msg, sizeof(msg)), AC_ERR_INVALID);
	free(t.p);
}

static void test_digest_mismatch(void **state)
{
	struct fx *f = *state;
	tarbuf_t t = {0};
	tb_entry(&t, "a", '0', 0644, "x", NULL);
	tb_end(&t);
	int fd = memfd_of(t.p, t.len);
	ac_error_t *err = NULL;
	char wrong[65];
	memset(wrong, 'a', 64);
	wrong[64] = 0;
	assert_int_equal(ac_image_unpack_layer(fd, f->root, wrong, NULL, NULL, NULL, NULL, &err),
			 -1);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(err->msg, "does not match its digest"));
	ac_error_free(err);
	close(fd);
	free(t.p);
}

/* Compresses data with an installed tool (gzip, zstd); -1 when the tool is missing. */
static int compress_with(const char *tool, tarbuf_t *in, tarbuf_t *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/usr/bin/%s", tool);
	if (access(path, X_OK) != 0)
		return -1;
	char tmp[] = "/tmp/ac-test-unpack-in-XXXXXX";
	int fd = mkstemp(tmp);
	assert_int_equal(ac_write_all(fd, in->p, in->len), 0);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%s -c -q < %s", path, tmp);
	FILE *p = popen(cmd, "r");
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		tb_raw(out, buf, n);
	pclose(p);
	unlink(tmp);
	return 0;
}

static void compressed(struct fx *f, const char *tool, const char *want_mt)
{
	tarbuf_t t = {0}, z = {0};
	tb_entry(&t, "hello.txt", '0', 0644, "hello, compressed world", NULL);
	tb_end(&t);
	if (compress_with(tool, &t, &z) < 0) {
		free(t.p);
		skip();
	}
	int fd = memfd_of(z.p, z.len);
	ac_error_t *err = NULL;
	char diff_id[72], hex[65], want[72];
	const char *mt = NULL;
	ac_sha256_hex(z.p, z.len, hex);
	if (ac_image_unpack_layer(fd, f->root, hex, NULL, diff_id, &mt, NULL, &err) < 0)
		fail_msg("%s: %s", tool, err->msg);
	close(fd);
	assert_string_equal(mt, want_mt);
	ac_sha256_hex(t.p, t.len, hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	assert_string_equal(diff_id, want);
	struct stat st;
	assert_int_equal(fstatat(f->root, "hello.txt", &st, 0), 0);
	assert_int_equal(st.st_size, 23);
	free(t.p);
	free(z.p);
}

static void test_gzip(void **state)
{
	compressed(*state, "gzip", AC_MT_OCI_LAYER_GZIP);
}

static void test_zstd(void **state)
{
	compressed(*state, "zstd", AC_MT_OCI_LAYER_ZSTD);
}

/* diff: an upper directory -> gzip layer -> unpacked again: the same tree. */
static void test_diff_roundtrip(void **state)
{
	struct fx *f = *state;
	char p[160];
	snprintf(p, sizeof(p), "%s/upper", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	int up = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(mkdirat(up, "etc", 0755), 0);
	int fd = openat(up, "etc/conf", O_WRONLY | O_CREAT | O_CLOEXEC, 04750);
	assert_int_equal(ac_write_all(fd, "content", 7), 0);
	assert_int_equal(fchown(fd, 1000, 1000), 0);
	assert_int_equal(fchmod(fd, 04750), 0);
	assert_int_equal(fsetxattr(fd, "user.k", "v", 1, 0), 0);
	close(fd);
	assert_int_equal(linkat(up, "etc/conf", up, "etc/conf2", 0), 0);
	assert_int_equal(symlinkat("/nowhere", up, "etc/sym"), 0);
	assert_int_equal(mknodat(up, "etc/gone", S_IFCHR | 0, makedev(0, 0)), 0);
	assert_int_equal(mkdirat(up, "opq", 0700), 0);
	int od = openat(up, "opq", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fsetxattr(od, "trusted.overlay.opaque", "y", 1, 0), 0);
	close(od);
	assert_int_equal(mknodat(up, "fifo", S_IFIFO | 0644, 0), 0);

	snprintf(p, sizeof(p), "%s/layer.tgz", f->dir);
	int out = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ac_error_t *err = NULL;
	ac_image_diff_t *d = NULL;
	char digest[72], diff_id[72];
	assert_int_equal(ac_image_diff_begin(out, &d, &err), 0);
	if (ac_image_diff_add(d, up, "", &err) < 0)
		fail_msg("diff_add: %s", err->msg);
	if (ac_image_diff_end(d, digest, diff_id, &err) < 0)
		fail_msg("diff_end: %s", err->msg);
	close(up);

	/* The digest is the file's. */
	lseek(out, 0, SEEK_SET);
	ac_sha256_t h;
	ac_sha256_init(&h);
	assert_int_equal(ac_sha256_fd(out, &h, NULL), 0);
	char hex[65];
	ac_sha256_final_hex(&h, hex);
	assert_string_equal(digest + 7, hex);

	lseek(out, 0, SEEK_SET);
	char unpacked_diff_id[72];
	const char *mt = NULL;
	if (ac_image_unpack_layer(out, f->root, hex, NULL, unpacked_diff_id, &mt, NULL, &err) < 0)
		fail_msg("unpack: %s", err->msg);
	close(out);
	assert_string_equal(unpacked_diff_id, diff_id);
	assert_string_equal(mt, AC_MT_OCI_LAYER_GZIP);

	struct stat st, st2;
	assert_int_equal(fstatat(f->root, "etc/conf", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_size, 7);
	assert_int_equal(st.st_mode & 07777, 04750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(fstatat(f->root, "etc/conf2", &st2, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	char v[8];
	fd = openat(f->root, "etc/conf", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fgetxattr(fd, "user.k", v, sizeof(v)), 1);
	close(fd);
	char target[64];
	assert_int_equal(readlinkat(f->root, "etc/sym", target, sizeof(target)), 8);
	assert_int_equal(fstatat(f->root, "etc/gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	od = openat(f->root, "opq", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fgetxattr(od, "trusted.overlay.opaque", v, sizeof(v)), 1);
	close(od);
	assert_int_equal(fstatat(f->root, "fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(count_entries(f->outside), 0);
}

/* diff with a prefix: entries under "usr/", and two trees in one archive. */
static void test_diff_prefix(void **state)
{
	struct fx *f = *state;
	char p[160];
	snprintf(p, sizeof(p), "%s/u1", f->dir);
	mkdir(p, 0755);
	int u1 = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s/u2", f->dir);
	mkdir(p, 0755);
	int u2 = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = openat(u1, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	fd = openat(u2, "b", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	assert_int_equal(mknodat(u2, "wh", S_IFCHR | 0, makedev(0, 0)), 0);
	snprintf(p, sizeof(p), "%s/layer.tgz", f->dir);
	int out = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ac_error_t *err = NULL;
	ac_image_diff_t *d = NULL;
	assert_int_equal(ac_image_diff_begin(out, &d, &err), 0);
	assert_int_equal(ac_image_diff_add(d, u1, "", &err), 0);
	assert_int_equal(ac_image_diff_add(d, u2, "usr", &err), 0);
	char digest[72], diff_id[72];
	assert_int_equal(ac_image_diff_end(d, digest, diff_id, &err), 0);
	lseek(out, 0, SEEK_SET);
	if (ac_image_unpack(out, f->root, NULL, &err) < 0)
		fail_msg("%s", err->msg);
	close(out);
	close(u1);
	close(u2);
	struct stat st;
	assert_int_equal(fstatat(f->root, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->root, "usr/b", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(f->root, "usr/wh", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
}

int main(void)
{
	if (geteuid() != 0) {
		printf("# SKIP test_image_unpack needs root (mknod, chown, trusted xattrs)\n");
		return 0;
	}
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_basic),
	    T(test_whiteouts),
	    T(test_replace),
	    T(test_escape_dotdot),
	    T(test_escape_dotdot_inner),
	    T(test_absolute_made_relative),
	    T(test_escape_symlink_dir),
	    T(test_escape_symlink_relative),
	    T(test_escape_symlink_inside),
	    T(test_escape_symlink_etc),
	    T(test_escape_symlink_dir_entry),
	    T(test_escape_dir_replaced_by_symlink),
	    T(test_escape_hardlink_dotdot),
	    T(test_escape_hardlink_abs),
	    T(test_escape_hardlink_symlink),
	    T(test_escape_hardlink_through_symlink),
	    T(test_escape_hardlink_dir),
	    T(test_whiteout_dotdot),
	    T(test_whiteout_dot),
	    T(test_whiteout_empty),
	    T(test_whiteout_through_symlink),
	    T(test_opaque_through_symlink),
	    T(test_parent_is_file),
	    T(test_long_name),
	    T(test_not_a_tar),
	    T(test_digest_mismatch),
	    T(test_gzip),
	    T(test_zstd),
	    T(test_diff_roundtrip),
	    T(test_diff_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
