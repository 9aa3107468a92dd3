/* Unit tests for src/base: errors, parsers, time, uuid, file helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testfork.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agentcell/error.h"
#include "agentcell/util.h"

/* ---- errors ---- */

static void test_error_set_and_strerror(void **state)
{
	ac_error_t *err = NULL;
	errno = EBADF;
	assert_int_equal(ac_error_set(&err, AC_ERR_NOT_FOUND, ENOENT, "cannot open '%s'", "x"), -1);
	assert_int_equal(errno, EBADF); /* preserved */
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	assert_int_equal(err->errnum, ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "cannot open 'x': %s", strerror(ENOENT));
	assert_string_equal(err->msg, want);
	ac_error_free(err);

	err = NULL;
	ac_error_set(&err, AC_ERR_INVALID, 0, "plain %d", 7);
	assert_string_equal(err->msg, "plain 7");
	assert_int_equal(err->errnum, 0);
	ac_error_free(err);
}

static void test_error_no_overwrite(void **state)
{
	ac_error_t *err = NULL;
	assert_int_equal(ac_error_set(&err, AC_ERR_EXISTS, 0, "first"), -1);
	ac_error_t *first = err;
	assert_int_equal(ac_error_set(&err, AC_ERR_INTERNAL, EIO, "second"), -1);
	assert_ptr_equal(err, first);
	assert_int_equal(err->kind, AC_ERR_EXISTS);
	assert_string_equal(err->msg, "first");
	ac_error_free(err);

	assert_int_equal(ac_error_set(NULL, AC_ERR_INTERNAL, 0, "nowhere"), -1);
	ac_error_prefix(NULL, "ctx");
	err = NULL;
	ac_error_prefix(&err, "ctx"); /* no error: no-op */
	assert_null(err);
	ac_error_free(NULL);
}

static void test_error_prefix_and_one_line(void **state)
{
	ac_error_t *err = NULL;
	ac_error_set(&err, AC_ERR_STATE, 0, "line one\nline two\r\n");
	assert_null(strchr(err->msg, '\n'));
	assert_null(strchr(err->msg, '\r'));
	/* Control bytes are escaped (ac_escape_controls), so the message stays one line. */
	assert_string_equal(err->msg, "line one\\nline two\\r\\n");
	ac_error_prefix(&err, "sandbox '%s'", "a\nb");
	assert_string_equal(err->msg, "sandbox 'a\\nb': line one\\nline two\\r\\n");
	assert_int_equal(err->kind, AC_ERR_STATE);
	ac_error_free(err);

	/* Oversized messages and prefixes are truncated, never overflow. */
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err = NULL;
	ac_error_set(&err, AC_ERR_INTERNAL, EIO, "%s", big);
	assert_int_equal(strlen(err->msg), sizeof(err->msg) - 1);
	ac_error_prefix(&err, "%s", big);
	assert_int_equal(strlen(err->msg), sizeof(err->msg) - 1);
	ac_error_free(err);
}

static void test_error_codes(void **state)
{
	static const struct {
		ac_error_kind_t kind;
		int exit_code, http;
	} cases[] = {
	    {AC_ERR_INTERNAL, 1, 500},	  {AC_ERR_INVALID, 2, 400},    {AC_ERR_NOT_FOUND, 1, 404},
	    {AC_ERR_EXISTS, 1, 409},	  {AC_ERR_STATE, 1, 409},      {AC_ERR_BACKEND, 1, 502},
	    {AC_ERR_UNSUPPORTED, 1, 501}, {AC_ERR_PERMISSION, 1, 403},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		ac_error_t *err = NULL;
		ac_error_set(&err, cases[i].kind, 0, "x");
		assert_int_equal(ac_error_exit_code(err), cases[i].exit_code);
		assert_int_equal(ac_error_http_status(err), cases[i].http);
		ac_error_free(err);
	}
}

/* ---- parsers ---- */

static void test_parse_u64(void **state)
{
	uint64_t v = 0;
	assert_int_equal(ac_parse_u64("0", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ac_parse_u64("42", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ac_parse_u64("007", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(ac_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);

	static const char *const overflow[] = {"18446744073709551616", "18446744073709551620",
					       "99999999999999999999", "100000000000000000000"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(overflow); i++) {
		v = 123;
		assert_int_equal(ac_parse_u64(overflow[i], 0, UINT64_MAX, &v), -1);
		assert_int_equal(errno, ERANGE);
		assert_int_equal(v, 123); /* untouched on failure */
	}
	static const char *const bad[] = {"",	"+1",	"-1",  " 1",  "1 ", "\t1",  "1\n",
					  "1a", "0x10", "1.0", "1e3", "--", "1_000"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		assert_int_equal(ac_parse_u64(bad[i], 0, UINT64_MAX, &v), -1);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(ac_parse_u64(NULL, 0, 10, &v), -1);

	assert_int_equal(ac_parse_u64("5", 5, 10, &v), 0);
	assert_int_equal(ac_parse_u64("10", 5, 10, &v), 0);
	assert_int_equal(ac_parse_u64("4", 5, 10, &v), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(ac_parse_u64("11", 5, 10, &v), -1);
	assert_int_equal(errno, ERANGE);
}

static void test_name_valid(void **state)
{
	char name[80];
	memset(name, 'a', 63);
	name[63] = '\0';
	assert_true(ac_name_valid(name));
	memset(name, 'a', 64);
	name[64] = '\0';
	assert_false(ac_name_valid(name));

	static const char *const good[] = {"a",	       "Z",	"7",	"box",
					   "my-box_2", "A-b-C", "a__b", "0-0"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(good); i++)
		assert_true(ac_name_valid(good[i]));
	static const char *const bad[] = {"",	 "-a",	"a-",	  "_a",	  "a_",	 "-",
					  "a.b", "a/b", "..",	  ".",	  "a b", "é",
					  "a\n", "a:b", "../etc", "a\\b", "box!"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++)
		assert_false(ac_name_valid(bad[i]));
	assert_false(ac_name_valid(NULL));
}

static void test_name_from_entry(void **state)
{
	char name[64];
	assert_true(ac_name_from_entry("box.lock", ".lock", name));
	assert_string_equal(name, "box");
	assert_true(ac_name_from_entry("a-1_b.exec", ".exec", name));
	assert_string_equal(name, "a-1_b");
	assert_false(ac_name_from_entry(".lock", ".lock", name));	 /* no name */
	assert_false(ac_name_from_entry("box.lock", ".exec", name));	 /* other suffix */
	assert_false(ac_name_from_entry("-box.lock", ".lock", name));	 /* invalid name */
	assert_false(ac_name_from_entry("box.lock.tmp", ".lock", name)); /* not at the end */
	char longest[70];
	memset(longest, 'a', 63);
	strcpy(longest + 63, ".lock");
	assert_true(ac_name_from_entry(longest, ".lock", name));
	assert_int_equal(strlen(name), 63);
	memset(longest, 'a', 64);
	strcpy(longest + 64, ".lock");
	assert_false(ac_name_from_entry(longest, ".lock", name)); /* 64 is too long */
}

/* ---- time ---- */

static void test_rfc3339_parse(void **state)
{
	int64_t ms = 0;
	const int64_t base = 1795432832LL * 1000; /* 2026-11-23T11:20:32Z */
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T11:20:32Z", &ms), 0);
	assert_true(ms == base);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23t11:20:32z", &ms), 0);
	assert_true(ms == base);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T11:20:32.5Z", &ms), 0);
	assert_true(ms == base + 500);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T11:20:32.123456789Z", &ms), 0);
	assert_true(ms == base + 123);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T11:20:32.07Z", &ms), 0);
	assert_true(ms == base + 70);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T13:20:32+02:00", &ms), 0);
	assert_true(ms == base);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T05:50:32-05:30", &ms), 0);
	assert_true(ms == base);
	assert_int_equal(ac_time_parse_rfc3339("2026-11-23T11:20:32.250-00:00", &ms), 0);
	assert_true(ms == base + 250);
	assert_int_equal(ac_time_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
	assert_true(ms == 1709164800LL * 1000);
	assert_int_equal(ac_time_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
	assert_true(ms == 0);
	assert_int_equal(ac_time_parse_rfc3339("1969-12-31T23:59:59.500Z", &ms), 0);
	assert_true(ms == -500);
}

static void test_rfc3339_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "2026-11-23",
	    "2026-11-23T11:20:32",
	    "2026-11-23 11:20:32Z",
	    "2026-11-23T11:20Z",
	    "2026-11-23T11:20:32.Z",
	    "2026-11-23T11:20:32,5Z",
	    "2026-11-23T11:20:32ZZ",
	    "2026-11-23T11:20:32Z ",
	    " 2026-11-23T11:20:32Z",
	    "2026-11-23T11:20:32+0200",
	    "2026-11-23T11:20:32+2:00",
	    "2026-11-23T11:20:32+02",
	    "2026-11-23T11:20:32+24:00",
	    "2026-11-23T11:20:32+02:60",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-11-00T00:00:00Z",
	    "2026-11-31T00:00:00Z",
	    "2026-02-29T00:00:00Z",
	    "1900-02-29T00:00:00Z",
	    "2026-11-23T24:00:00Z",
	    "2026-11-23T11:60:00Z",
	    "2026-11-23T11:20:61Z",
	    "2026-1-23T11:20:32Z",
	    "+2026-11-23T11:20:32Z",
	    "20261-11-23T11:20:32Z",
	    "2026-11-23T11:20:32UTC",
	    "2026-11-23T-1:20:32Z",
	    "2026/11/23T11:20:32Z",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		int64_t ms = 42;
		if (ac_time_parse_rfc3339(bad[i], &ms) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(ms == 42);
	}
	assert_int_equal(ac_time_parse_rfc3339(NULL, NULL), -1);
}

static void test_rfc3339_round_trip(void **state)
{
	static const char *const samples[] = {
	    "2026-11-23T11:20:32.123Z", "1970-01-01T00:00:00.000Z", "2000-02-29T23:59:59.999Z",
	    "1969-12-31T23:59:59.001Z", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(samples); i++) {
		int64_t ms;
		char buf[32];
		assert_int_equal(ac_time_parse_rfc3339(samples[i], &ms), 0);
		ac_time_format_rfc3339(ms, buf);
		assert_string_equal(buf, samples[i]);
	}
	char buf[32];
	ac_time_format_rfc3339(-1, buf);
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	ac_time_format_rfc3339(1795432832LL * 1000 + 5, buf);
	assert_string_equal(buf, "2026-11-23T11:20:32.005Z");
	/* Extreme values must not overflow the buffer. */
	ac_time_format_rfc3339(INT64_MAX, buf);
	assert_true(strlen(buf) < 32);
	ac_time_format_rfc3339(INT64_MIN, buf);
	assert_true(strlen(buf) < 32);

	int64_t before = ac_time_now_ms();
	ac_time_now_rfc3339(buf);
	int64_t after = ac_time_now_ms();
	int64_t ms;
	assert_int_equal(strlen(buf), 24);
	assert_int_equal(ac_time_parse_rfc3339(buf, &ms), 0);
	assert_true(ms >= before && ms <= after);
}

/* ---- uuid ---- */

static int64_t uuid_ms(const char *u)
{
	char hex[13];
	memcpy(hex, u, 8);
	memcpy(hex + 8, u + 9, 4);
	hex[12] = '\0';
	return (int64_t)strtoull(hex, NULL, 16);
}

static void test_uuid_v7(void **state)
{
	char prev[37] = "";
	int64_t prev_ms = 0;
	for (int i = 0; i < 2000; i++) {
		char u[37];
		int64_t before = ac_time_now_ms();
		ac_uuid_v7(u);
		int64_t after = ac_time_now_ms();
		assert_int_equal(strlen(u), 36);
		for (int j = 0; j < 36; j++) {
			if (j == 8 || j == 13 || j == 18 || j == 23)
				assert_int_equal(u[j], '-');
			else
				assert_non_null(strchr("0123456789abcdef", u[j]));
		}
		assert_int_equal(u[14], '7');		/* version */
		assert_non_null(strchr("89ab", u[19])); /* variant 10 */
		assert_true(ac_uuid_valid(u));
		int64_t ms = uuid_ms(u);
		/* The in-process counter may run ahead of the clock by a few ms at most. */
		assert_true(ms >= before && ms <= after + 5);
		assert_true(ms >= prev_ms);
		assert_true(strcmp(u, prev) > 0); /* strictly increasing within a process */
		memcpy(prev, u, sizeof(prev));
		prev_ms = ms;
	}
}

static void test_uuid_valid(void **state)
{
	assert_true(ac_uuid_valid("01890a5d-ac96-774b-bcce-b302099a8057"));
	assert_true(ac_uuid_valid("550E8400-E29B-41D4-A716-446655440000"));
	assert_true(ac_uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_false(ac_uuid_valid(NULL));
	assert_false(ac_uuid_valid(""));
	assert_false(ac_uuid_valid("01890a5d-ac96-774b-bcce-b302099a805"));
	assert_false(ac_uuid_valid("01890a5d-ac96-774b-bcce-b302099a80577"));
	assert_false(ac_uuid_valid("01890a5dac96-774b-bcce-b302099a80577"));
	assert_false(ac_uuid_valid("01890a5d-ac96-774b-bcce-b302099a805g"));
	assert_false(ac_uuid_valid("{1890a5d-ac96-774b-bcce-b302099a8057}"));
}

/* ---- file helpers ---- */

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/ac-test-base-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	char *copy = strdup(d);
	assert_non_null(copy);
	return copy;
}

static void remove_tmpdir(char *dir)
{
	ac_error_t *err = NULL;
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, dir, &err), 0);
	assert_null(err);
	free(dir);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_atomic_write(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	ac_error_t *err = NULL;

	assert_int_equal(ac_write_file_atomic_at(dfd, "f.json", "first", 5, 0600, &err), 0);
	assert_int_equal(ac_write_file_atomic_at(dfd, "f.json", "second!", 7, 0640, &err), 0);
	assert_null(err);

	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(ac_read_file_at(dfd, "f.json", 1024, &buf, &len, &err), 0);
	assert_int_equal(len, 7);
	assert_string_equal(buf, "second!");
	free(buf);
	struct stat st;
	assert_int_equal(fstatat(dfd, "f.json", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(count_entries(dir), 1); /* no temp files left */

	/* A path with a directory part, and an empty file. */
	assert_int_equal(ac_mkdir_p_at(dfd, "sub/deeper", 0700, &err), 0);
	assert_int_equal(ac_write_file_atomic_at(dfd, "sub/deeper/g", "", 0, 0600, &err), 0);
	assert_int_equal(ac_read_file_at(dfd, "sub/deeper/g", 10, &buf, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);

	/* A failed replace (the target is a directory) leaves no temp file behind. */
	assert_int_equal(mkdirat(dfd, "isdir", 0700), 0);
	assert_int_equal(ac_write_file_atomic_at(dfd, "isdir", "x", 1, 0600, &err), -1);
	assert_non_null(err);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(count_entries(dir), 3); /* f.json sub isdir */

	/* Missing parent directory. */
	assert_int_equal(ac_write_file_atomic_at(dfd, "nope/f", "x", 1, 0600, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;

	close(dfd);
	remove_tmpdir(dir);
}

static void test_read_file_limits(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ac_error_t *err = NULL;
	char data[10000];
	memset(data, 'q', sizeof(data));
	assert_int_equal(ac_write_file_atomic_at(dfd, "big", data, sizeof(data), 0600, &err), 0);

	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(ac_read_file_at(dfd, "big", sizeof(data), &buf, &len, &err), 0);
	assert_int_equal(len, sizeof(data));
	assert_int_equal(buf[len], '\0');
	free(buf);
	buf = NULL;

	assert_int_equal(ac_read_file_at(dfd, "big", sizeof(data) - 1, &buf, &len, &err), -1);
	assert_null(buf);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "too large"));
	ac_error_free(err);
	err = NULL;

	assert_int_equal(ac_read_file_at(dfd, "missing", 100, &buf, &len, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	assert_int_equal(err->errnum, ENOENT);
	ac_error_free(err);
	err = NULL;

	/* procfs reports size 0; the content must still be read (up to the cap). */
	assert_int_equal(ac_read_file_at(AT_FDCWD, "/proc/self/stat", 65536, &buf, NULL, &err), 0);
	assert_true(strlen(buf) > 0);
	free(buf);
	assert_int_equal(ac_read_file_at(AT_FDCWD, "/proc/self/stat", 3, &buf, NULL, &err), -1);
	ac_error_free(err);
	err = NULL;

	assert_int_equal(ac_read_file_at(dfd, ".", 100, &buf, &len, &err), -1);
	ac_error_free(err);
	close(dfd);
	remove_tmpdir(dir);
}

static void test_write_string_and_mkdir_p(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ac_error_t *err = NULL;

	assert_int_equal(ac_mkdir_p_at(dfd, "a/b//c/", 0700, &err), 0);
	assert_int_equal(ac_mkdir_p_at(dfd, "a/b/c", 0700, &err), 0); /* again: fine */
	struct stat st;
	assert_int_equal(fstatat(dfd, "a/b/c", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));

	char abs[512];
	snprintf(abs, sizeof(abs), "%s/x/y", dir);
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, abs, 0700, &err), 0);
	assert_int_equal(fstatat(dfd, "x/y", &st, 0), 0);

	assert_int_equal(ac_write_file_atomic_at(dfd, "a/file", "", 0, 0600, &err), 0);
	assert_int_equal(ac_mkdir_p_at(dfd, "a/file/z", 0700, &err), -1);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_mkdir_p_at(dfd, "", 0700, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;

	assert_int_equal(ac_write_string_at(dfd, "a/file", "123\n", &err), 0);
	char *buf = NULL;
	assert_int_equal(ac_read_file_at(dfd, "a/file", 100, &buf, NULL, &err), 0);
	assert_string_equal(buf, "123\n");
	free(buf);
	assert_int_equal(ac_write_string_at(dfd, "a/none", "1", &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);

	close(dfd);
	remove_tmpdir(dir);
}

static void test_rm_rf_no_follow(void **state)
{
	char *outside = make_tmpdir();
	char *inside = make_tmpdir();
	ac_error_t *err = NULL;
	char p[512], q[512];

	snprintf(p, sizeof(p), "%s/precious", outside);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "keep", 4, 0600, &err), 0);

	/* tree/ with files, nested dirs, a symlink to the outside dir and a symlink to the
	 * outside file. */
	snprintf(p, sizeof(p), "%s/tree/a/b/c", inside);
	assert_int_equal(ac_mkdir_p_at(AT_FDCWD, p, 0700, &err), 0);
	snprintf(p, sizeof(p), "%s/tree/a/b/c/f", inside);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "x", 1, 0600, &err), 0);
	snprintf(p, sizeof(p), "%s/tree/a/link-to-outside", inside);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/tree/link-file", inside);
	snprintf(q, sizeof(q), "%s/precious", outside);
	assert_int_equal(symlink(q, p), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(p, sizeof(p), "%s/tree/many-%d", inside, i);
		assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "m", 1, 0600, &err), 0);
	}

	snprintf(p, sizeof(p), "%s/tree", inside);
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, p, &err), 0);
	assert_null(err);
	struct stat st;
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(errno, ENOENT);

	snprintf(q, sizeof(q), "%s/precious", outside);
	char *buf = NULL;
	assert_int_equal(ac_read_file_at(AT_FDCWD, q, 100, &buf, NULL, &err), 0);
	assert_string_equal(buf, "keep");
	free(buf);

	/* A symlink given directly is removed, not its target. */
	snprintf(p, sizeof(p), "%s/toplink", inside);
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, p, &err), 0);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(stat(q, &st), 0);

	/* Missing paths are fine (rm -f); "." and ".." are refused. */
	snprintf(p, sizeof(p), "%s/does-not-exist", inside);
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, p, &err), 0);
	snprintf(p, sizeof(p), "%s/nope/deeper", inside);
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, p, &err), 0);
	snprintf(p, sizeof(p), "%s/..", inside);
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, p, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;

	/* dirfd-relative use, and a plain file. */
	int dfd = open(inside, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(ac_write_file_atomic_at(dfd, "plain", "p", 1, 0600, &err), 0);
	assert_int_equal(ac_rm_rf_at(dfd, "plain", &err), 0);
	assert_int_equal(fstatat(dfd, "plain", &st, 0), -1);
	close(dfd);

	remove_tmpdir(inside);
	remove_tmpdir(outside);
}

static void test_rm_rf_refuses_other_mount(void **state)
{
	/* /proc is always another file system than /tmp; rm_rf must refuse to descend into
	 * a directory on another device. /proc/self/fd is a directory inside /proc, so
	 * asking to remove /proc/self refuses rather than trying to unlink anything there.
	 * (/proc itself is the mount point: removing it is refused up front.) */
	ac_error_t *err = NULL;
	assert_int_equal(ac_rm_rf_at(AT_FDCWD, "/proc", &err), -1);
	assert_non_null(err);
	assert_int_equal(err->errnum, EXDEV);
	ac_error_free(err);
}

static int write_proc(const char *path, const char *s)
{
	ac_error_t *err = NULL;
	int r = ac_write_string_at(AT_FDCWD, path, s, &err);
	ac_error_free(err);
	return r;
}

/* Child body for test_rm_rf_stops_at_mounts: 0 pass, 77 skip, else the failing step. */
static int mount_child(const char *dir, const char *outside)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 77;
	char map[64];
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	if (write_proc("/proc/self/setgroups", "deny") < 0 ||
	    write_proc("/proc/self/uid_map", map) < 0)
		return 77;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	if (write_proc("/proc/self/gid_map", map) < 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;

	char p[512];
	ac_error_t *err = NULL;
	snprintf(p, sizeof(p), "%s/tree/tmpfs", dir);
	if (ac_mkdir_p_at(AT_FDCWD, p, 0700, &err) < 0 ||
	    mount("none", p, "tmpfs", 0, "size=64k") < 0)
		return 77;
	snprintf(p, sizeof(p), "%s/tree/tmpfs/f", dir);
	if (ac_write_file_atomic_at(AT_FDCWD, p, "x", 1, 0600, &err) < 0)
		return 2;

	snprintf(p, sizeof(p), "%s/tree", dir);
	if (ac_rm_rf_at(AT_FDCWD, p, &err) != -1 || err == NULL || err->errnum != EXDEV)
		return 3;
	ac_error_free(err);
	err = NULL;
	snprintf(p, sizeof(p), "%s/tree/tmpfs/f", dir);
	if (access(p, F_OK) < 0)
		return 4;
	/* The mount point itself is refused too. */
	snprintf(p, sizeof(p), "%s/tree/tmpfs", dir);
	if (ac_rm_rf_at(AT_FDCWD, p, &err) != -1)
		return 5;
	ac_error_free(err);
	err = NULL;
	if (umount(p) < 0)
		return 6;

	/* A bind mount of the same file system has the same st_dev: the mount id must
	 * still stop the walk, or rm -rf would delete the bound directory's contents. */
	snprintf(p, sizeof(p), "%s/tree/bind", dir);
	if (ac_mkdir_p_at(AT_FDCWD, p, 0700, &err) < 0 ||
	    mount(outside, p, NULL, MS_BIND, NULL) < 0)
		return 7;
	snprintf(p, sizeof(p), "%s/tree", dir);
	if (ac_rm_rf_at(AT_FDCWD, p, &err) != -1)
		return 8;
	ac_error_free(err);
	snprintf(p, sizeof(p), "%s/precious", outside);
	if (access(p, F_OK) < 0)
		return 9;
	return 0;
}

static void test_rm_rf_stops_at_mounts(void **state)
{
	char *dir = make_tmpdir();
	char *outside = make_tmpdir();
	char p[512];
	ac_error_t *err = NULL;
	snprintf(p, sizeof(p), "%s/precious", outside);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "keep", 4, 0600, &err), 0);

	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(mount_child(dir, outside));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	int code = WEXITSTATUS(status);
	remove_tmpdir(dir);
	remove_tmpdir(outside);
	if (code == 77)
		skip(); /* no unprivileged user namespaces here */
	assert_int_equal(code, 0);
}

/* Error messages carry user input: control bytes come out as escapes, never raw. */
static void test_escape_controls(void **state)
{
	(void)state;
	char out[64];
	ac_escape_controls("bad\x1b"
			   "[31mname",
			   out, sizeof(out));
	assert_string_equal(out, "bad\\x1b[31mname");
	ac_escape_controls("a\nb\tc\rd\x7f", out, sizeof(out));
	assert_string_equal(out, "a\\nb\\tc\\rd\\x7f");
	/* C1 CSI (U+009B) as UTF-8; other UTF-8 and backslashes are kept */
	ac_escape_controls("x\xc2\x9b"
			   "y \xc3\xa9 \\",
			   out, sizeof(out));
	assert_string_equal(out, "x\\xc2\\x9by \xc3\xa9 \\");
	/* cut before an escape that does not fit */
	char small[6];
	assert_int_equal(ac_escape_controls("ab\x01"
					    "cd",
					    small, sizeof(small)),
			 2);
	assert_string_equal(small, "ab");
	/* ac_error_set and ac_error_prefix escape what they are given */
	ac_error_t *e = NULL;
	ac_error_set(&e, AC_ERR_INVALID, 0, "invalid name '%s'", "a\x1b]0;x\x07");
	assert_string_equal(e->msg, "invalid name 'a\\x1b]0;x\\x07'");
	ac_error_prefix(&e, "in '%s'", "\x1b");
	assert_string_equal(e->msg, "in '\\x1b': invalid name 'a\\x1b]0;x\\x07'");
	ac_error_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_set_and_strerror),
	    cmocka_unit_test(test_error_no_overwrite),
	    cmocka_unit_test(test_error_prefix_and_one_line),
	    cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_name_valid),
	    cmocka_unit_test(test_name_from_entry),
	    cmocka_unit_test(test_rfc3339_parse),
	    cmocka_unit_test(test_rfc3339_rejects),
	    cmocka_unit_test(test_rfc3339_round_trip),
	    cmocka_unit_test(test_uuid_v7),
	    cmocka_unit_test(test_uuid_valid),
	    cmocka_unit_test(test_atomic_write),
	    cmocka_unit_test(test_read_file_limits),
	    cmocka_unit_test(test_write_string_and_mkdir_p),
	    cmocka_unit_test(test_rm_rf_no_follow),
	    cmocka_unit_test(test_rm_rf_refuses_other_mount),
	    cmocka_unit_test(test_rm_rf_stops_at_mounts),
	    cmocka_unit_test(test_escape_controls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
