/* Unit tests of the pure half of the Nomad backend's files (src/backends/nomad/files.c):
 * which task paths the allocation file system API sees, Go's FileMode strings, the query
 * escaping and the listing built from an fs/ls answer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "backends/nomad/internal.h"

static void test_fs_path(void **state)
{
	(void)state;
	char out[4096];
	size_t root = 0;
	assert_int_equal(ac_nm_fs_path("docker", "/alloc/data/f.txt", out, sizeof(out), &root), 1);
	assert_string_equal(out, "alloc/data/f.txt");
	assert_int_equal(root, strlen("alloc"));
	assert_int_equal(ac_nm_fs_path("podman", "/local", out, sizeof(out), &root), 1);
	assert_string_equal(out, "sandbox/local");
	assert_int_equal(root, strlen("sandbox/local"));
	assert_int_equal(ac_nm_fs_path("exec", "//secrets/./x//y/", out, sizeof(out), &root), 1);
	assert_string_equal(out, "sandbox/secrets/x/y");
	assert_int_equal(root, strlen("sandbox/secrets"));
	/* outside the three directories, or a name that only starts like one */
	assert_int_equal(ac_nm_fs_path("docker", "/tmp/x", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path("docker", "/allocx/y", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path("docker", "/loca", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path("docker", "/", out, sizeof(out), &root), 0);
	/* "..": never (the tar route refuses it with the usual message) */
	assert_int_equal(ac_nm_fs_path("docker", "/alloc/../etc/passwd", out, sizeof(out), &root),
			 0);
	assert_int_equal(ac_nm_fs_path("docker", "/local/..", out, sizeof(out), &root), 0);
	/* relative, or a driver whose task sees the host's paths (raw_exec) */
	assert_int_equal(ac_nm_fs_path("docker", "alloc/x", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path("raw_exec", "/alloc/x", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path(NULL, "/alloc/x", out, sizeof(out), &root), 0);
	assert_int_equal(ac_nm_fs_path("docker", NULL, out, sizeof(out), &root), 0);
	/* too long for out */
	char small[12];
	assert_int_equal(ac_nm_fs_path("docker", "/local/abc", small, sizeof(small), &root), 0);
}

static void test_fs_mode(void **state)
{
	(void)state;
	char t[16];
	unsigned m;
	assert_int_equal(ac_nm_fs_mode("-rw-r--r--", t, sizeof(t), &m), 0);
	assert_string_equal(t, "file");
	assert_int_equal(m, 0644);
	assert_int_equal(ac_nm_fs_mode("drwxr-x---", t, sizeof(t), &m), 0);
	assert_string_equal(t, "dir");
	assert_int_equal(m, 0750);
	assert_int_equal(ac_nm_fs_mode("Lrwxrwxrwx", t, sizeof(t), &m), 0);
	assert_string_equal(t, "symlink");
	assert_int_equal(m, 0777);
	assert_int_equal(ac_nm_fs_mode("dtrwxrwxrwx", t, sizeof(t), &m), 0);
	assert_string_equal(t, "dir");
	assert_int_equal(m, 01777);
	assert_int_equal(ac_nm_fs_mode("ugrwxr-xr-x", t, sizeof(t), &m), 0);
	assert_string_equal(t, "file");
	assert_int_equal(m, 06755);
	assert_int_equal(ac_nm_fs_mode("Dcrw-rw-rw-", t, sizeof(t), &m), 0);
	assert_string_equal(t, "other");
	assert_int_equal(ac_nm_fs_mode("prw-------", t, sizeof(t), &m), 0);
	assert_string_equal(t, "other");
	assert_int_equal(ac_nm_fs_mode("Srwxr-xr-x", t, sizeof(t), &m), 0);
	assert_string_equal(t, "other");
	/* malformed */
	assert_int_equal(ac_nm_fs_mode(NULL, t, sizeof(t), &m), -1);
	assert_int_equal(ac_nm_fs_mode("", t, sizeof(t), &m), -1);
	assert_int_equal(ac_nm_fs_mode("rw-r--r--", t, sizeof(t), &m), -1);
	assert_int_equal(ac_nm_fs_mode("-rw-r--r-x-", t, sizeof(t), &m), -1);
	assert_int_equal(ac_nm_fs_mode("xrw-r--r--", t, sizeof(t), &m), -1);
	assert_int_equal(ac_nm_fs_mode("-rwzr--r--", t, sizeof(t), &m), -1);
}

static void test_fs_escape(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(ac_nm_fs_escape("sandbox/local/a b&c=d%e?#+", out, sizeof(out)), 0);
	assert_string_equal(out, "sandbox/local/a%20b%26c%3Dd%25e%3F%23%2B");
	assert_int_equal(ac_nm_fs_escape("\xc3\xa9-_.~", out, sizeof(out)), 0);
	assert_string_equal(out, "%C3%A9-_.~");
	assert_int_equal(ac_nm_fs_escape("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	char small[4];
	assert_int_equal(ac_nm_fs_escape("abc", small, sizeof(small)), 0);
	assert_int_equal(ac_nm_fs_escape("abcd", small, sizeof(small)), -1);
	assert_int_equal(ac_nm_fs_escape("a b", small, sizeof(small)), -1);
}

static void test_fs_listing(void **state)
{
	(void)state;
	json_t *ls = json_loads(
	    "[{\"Name\":\"zz.txt\",\"IsDir\":false,\"Size\":12,\"FileMode\":\"-rw-r-----\","
	    "\"ModTime\":\"2026-01-01T00:00:00Z\"},"
	    "{\"Name\":\"data\",\"IsDir\":true,\"Size\":4096,\"FileMode\":\"drwxr-xr-x\"},"
	    "{\"Name\":\"ln\",\"IsDir\":false,\"Size\":5,\"FileMode\":\"Lrwxrwxrwx\"},"
	    "{\"Name\":\"tmp\",\"IsDir\":true,\"Size\":4096,\"FileMode\":\"dtrwxrwxrwx\"},"
	    "{\"Name\":\"a/b\",\"Size\":1,\"FileMode\":\"-rw-r--r--\"},"
	    "{\"Name\":\"..\",\"Size\":1,\"FileMode\":\"drwxr-xr-x\"},"
	    "{\"Name\":\"odd\",\"Size\":1,\"FileMode\":\"weird\"},"
	    "{\"Size\":1,\"FileMode\":\"-rw-r--r--\"}]",
	    0, NULL);
	assert_non_null(ls);
	char *s = ac_nm_fs_listing(ls, NULL);
	assert_non_null(s);
	assert_string_equal(s, "[{\"name\":\"data\",\"type\":\"dir\",\"size\":4096,\"mode\":493},"
			       "{\"name\":\"ln\",\"type\":\"symlink\",\"size\":5,\"mode\":511},"
			       "{\"name\":\"tmp\",\"type\":\"dir\",\"size\":4096,\"mode\":1023},"
			       "{\"name\":\"zz.txt\",\"type\":\"file\",\"size\":12,\"mode\":416}]");
	free(s);
	json_decref(ls);
	ls = json_array();
	s = ac_nm_fs_listing(ls, NULL);
	assert_string_equal(s, "[]");
	free(s);
	json_decref(ls);
	ls = json_object();
	ac_error_t *e = NULL;
	assert_null(ac_nm_fs_listing(ls, &e));
	assert_non_null(e);
	assert_int_equal(e->kind, AC_ERR_BACKEND);
	ac_error_free(e);
	json_decref(ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fs_path),
	    cmocka_unit_test(test_fs_mode),
	    cmocka_unit_test(test_fs_escape),
	    cmocka_unit_test(test_fs_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
