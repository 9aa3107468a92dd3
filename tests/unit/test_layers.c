/* Unit tests of the runtime's image parts that need no privileges: what the builder accepts
 * of layers, volumes and command defaults (layers.c ac_layers_check), the overlay lower
 * lists of a host template's layers (ac_layers_lowerdir, over plain directories), the
 * builder's orders carrying them across an exec (buildreq.c), and the commands' defaults
 * (supervisor.c ac_cmd_defaults). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "runtime/buildreq.h"
#include "runtime/layers.h"
#include "runtime/supervisor.h"

static ac_rt_spec_t base_spec(void)
{
	return (ac_rt_spec_t){.home = "/h", .name = "n", .image = "host"};
}

static int check(const ac_rt_spec_t *s, char *msg, size_t len)
{
	ac_error_t *e = NULL;
	int rc = ac_layers_check(s, &e);
	if (msg)
		snprintf(msg, len, "%s", e ? e->msg : "");
	if (rc < 0)
		assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	return rc;
}

static void test_check_layers(void **state)
{
	(void)state;
	char msg[1100];
	ac_rt_spec_t s = base_spec();
	assert_int_equal(check(&s, NULL, 0), 0);
	s.image = "oci";
	assert_int_equal(check(&s, msg, sizeof(msg)), -1); /* oci needs layers */
	char *good[] = {"/h/images/layers/aa", "/h/images/layers/bb", NULL};
	s.layers = good;
	assert_int_equal(check(&s, NULL, 0), 0);
	const char *bad[] = {"relative/dir", "/h/../etc", "/h/./x", "", "/h/images/..", NULL};
	for (size_t i = 0; bad[i]; i++) {
		char *v[] = {(char *)bad[i], NULL};
		s.layers = v;
		assert_int_equal(check(&s, msg, sizeof(msg)), -1);
		assert_non_null(strstr(msg, "layer directory"));
	}
	/* 128 layers pass, 129 do not. */
	char **many = calloc(AC_RT_LAYERS_MAX + 2, sizeof(char *));
	assert_non_null(many);
	for (size_t i = 0; i <= AC_RT_LAYERS_MAX; i++)
		many[i] = "/l";
	many[AC_RT_LAYERS_MAX] = NULL;
	s.layers = many;
	assert_int_equal(check(&s, NULL, 0), 0);
	many[AC_RT_LAYERS_MAX] = "/l";
	assert_int_equal(check(&s, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "at most 128 layers"));
	free(many);
}

static void test_check_volumes(void **state)
{
	(void)state;
	char msg[1100];
	ac_rt_spec_t s = base_spec();
	ac_rt_volume_t v = {.src = "/h/volumes/x/data", .dst = "/data"};
	s.volumes = &v;
	s.nvolumes = 1;
	assert_int_equal(check(&s, NULL, 0), 0);
	const char *bad_dst[] = {"/",	  "//",	      "/proc", "/proc/x", "/sys/fs", "/dev",
				 "/dev/", "/dev/shm", "data",  "/a/../b", "/a/./b",  NULL};
	for (size_t i = 0; bad_dst[i]; i++) {
		v.dst = bad_dst[i];
		assert_int_equal(check(&s, msg, sizeof(msg)), -1);
		assert_non_null(strstr(msg, bad_dst[i]));
	}
	const char *good_dst[] = {"/procs", "/devel", "/system", "/srv/dev", "/data/", NULL};
	for (size_t i = 0; good_dst[i]; i++) {
		v.dst = good_dst[i];
		assert_int_equal(check(&s, NULL, 0), 0);
	}
	v.dst = "/data";
	v.src = "../x";
	assert_int_equal(check(&s, NULL, 0), -1);
	v.src = "/h/volumes/x/data";
	s.nvolumes = AC_RT_VOLUMES_MAX + 1;
	ac_rt_volume_t *vs = calloc(s.nvolumes, sizeof(*vs));
	assert_non_null(vs);
	for (size_t i = 0; i < s.nvolumes; i++)
		vs[i] = v;
	s.volumes = vs;
	assert_int_equal(check(&s, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "at most 32 volumes"));
	s.nvolumes = AC_RT_VOLUMES_MAX;
	assert_int_equal(check(&s, NULL, 0), 0);
	free(vs);
}

static void test_check_defaults(void **state)
{
	(void)state;
	ac_rt_spec_t s = base_spec();
	s.workdir = "/opt/app";
	s.user = "app:staff";
	assert_int_equal(check(&s, NULL, 0), 0);
	s.workdir = "opt";
	assert_int_equal(check(&s, NULL, 0), -1);
	s.workdir = "/opt/../etc";
	assert_int_equal(check(&s, NULL, 0), -1);
	s.workdir = NULL;
	s.user = "";
	assert_int_equal(check(&s, NULL, 0), -1);
	s.user = "a\nb";
	assert_int_equal(check(&s, NULL, 0), -1);
}

static void test_cmd_defaults(void **state)
{
	(void)state;
	char *argv[] = {"true", NULL};
	ac_rt_spec_t s = base_spec();
	ac_cmd_t c = {.argv = argv};
	assert_string_equal(ac_cmd_defaults(&s, &c), "/");
	assert_null(c.user);
	s.mount_cwd = "/host/dir";
	assert_string_equal(ac_cmd_defaults(&s, &c), "/workspace");
	s.workdir = "/opt";
	s.user = "app";
	assert_string_equal(ac_cmd_defaults(&s, &c), "/opt");
	assert_string_equal(c.user, "app");
	c.user = "0"; /* the command's own wins */
	ac_cmd_defaults(&s, &c);
	assert_string_equal(c.user, "0");
}

static void mk(const char *root, const char *path)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", root, path);
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, p, 0755, NULL), 0);
}

static void test_lowerdir(void **state)
{
	(void)state;
	char dir[] = "/tmp/ac-test-layers-XXXXXX", buf[8192], p[4300];
	assert_non_null(mkdtemp(dir));
	ac_error_t *e = NULL;
	/* L0 has usr and var/lib/dpkg; L1 lacks usr; L2 has usr; L3 replaced usr by a
	 * symlink (hides what lies below, never followed); L4 has usr/local. */
	mk(dir, "L0/usr/bin");
	mk(dir, "L0/var/lib/dpkg");
	mk(dir, "L1/etc");
	mk(dir, "L2/usr/share");
	mk(dir, "L3");
	snprintf(p, sizeof(p), "%s/L3/usr", dir);
	assert_int_equal(symlink("/", p), 0);
	mk(dir, "L4/usr/local");
	assert_int_equal(ac_layers_lowerdir(5, dir, NULL, "root", buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "L4:L3:L2:L1:L0:root");
	assert_int_equal(ac_layers_lowerdir(5, dir, NULL, NULL, buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "L4:L3:L2:L1:L0");
	assert_int_equal(ac_layers_lowerdir(5, dir, "usr", "usr", buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "L4/usr");
	assert_int_equal(ac_layers_lowerdir(3, dir, "usr", "usr", buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "L2/usr:L0/usr:usr");
	assert_int_equal(ac_layers_lowerdir(5, dir, "var/lib/dpkg", "dpkg", buf, sizeof(buf), &e),
			 0);
	assert_string_equal(buf, "L0/var/lib/dpkg:dpkg");
	/* A file where a directory would be hides everything below it. */
	snprintf(p, sizeof(p), "%s/L1/var", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ac_layers_lowerdir(5, dir, "var/lib/dpkg", "dpkg", buf, sizeof(buf), &e),
			 0);
	assert_string_equal(buf, "");
	/* A buffer too small for the list: an error, never a list cut short. */
	assert_int_equal(ac_layers_lowerdir(5, dir, NULL, "root", buf, 8, &e), -1);
	assert_non_null(e);
	ac_error_free(e);
	ac_rm_rf_at(AT_FDCWD, dir, NULL);
}

static void test_buildreq_roundtrip(void **state)
{
	(void)state;
	char *layers[] = {"/h/images/layers/a", "/h/images/layers/b", NULL};
	ac_rt_volume_t vols[] = {{.src = "/h/volumes/v/data", .dst = "/data"},
				 {.src = "/h/volumes/w/data", .dst = "/srv/ro", .read_only = true}};
	ac_rt_spec_t s = base_spec();
	s.image = "oci";
	s.layers = layers;
	s.workdir = "/opt";
	s.user = "app";
	s.volumes = vols;
	s.nvolumes = 2;
	json_t *req = ac_buildreq_encode(&s, NULL, "leaf", 42);
	assert_non_null(req);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	assert_non_null(text);
	int fd = memfd_create("req", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ac_write_all(fd, text, strlen(text)), 0);
	free(text);
	ac_rt_spec_t d;
	ac_cmd_t *cmd = NULL;
	const char *leaf = NULL;
	pid_t caller = 0;
	ac_error_t *e = NULL;
	assert_int_equal(ac_buildreq_decode(fd, &d, &cmd, &leaf, &caller, &e), 0);
	close(fd);
	assert_null(cmd);
	assert_string_equal(d.image, "oci");
	assert_non_null(d.layers);
	assert_string_equal(d.layers[0], layers[0]);
	assert_string_equal(d.layers[1], layers[1]);
	assert_null(d.layers[2]);
	assert_string_equal(d.workdir, "/opt");
	assert_string_equal(d.user, "app");
	assert_int_equal(d.nvolumes, 2);
	assert_string_equal(d.volumes[0].src, vols[0].src);
	assert_string_equal(d.volumes[0].dst, "/data");
	assert_false(d.volumes[0].read_only);
	assert_string_equal(d.volumes[1].dst, "/srv/ro");
	assert_true(d.volumes[1].read_only);
	/* Without them: none (a request of an older caller decodes alike). */
	s = base_spec();
	req = ac_buildreq_encode(&s, NULL, "leaf", 42);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	fd = memfd_create("req", MFD_CLOEXEC);
	assert_int_equal(ac_write_all(fd, text, strlen(text)), 0);
	free(text);
	assert_int_equal(ac_buildreq_decode(fd, &d, &cmd, &leaf, &caller, &e), 0);
	close(fd);
	assert_null(d.layers);
	assert_null(d.workdir);
	assert_null(d.user);
	assert_int_equal(d.nvolumes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_layers),   cmocka_unit_test(test_check_volumes),
	    cmocka_unit_test(test_check_defaults), cmocka_unit_test(test_cmd_defaults),
	    cmocka_unit_test(test_lowerdir),	   cmocka_unit_test(test_buildreq_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
