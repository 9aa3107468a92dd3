/* Unit tests for src/base: errors, parsers, time, uuid, file helpers, UTF-8.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
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
#include <time.h>

#include "agentcell/error.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/uuid.h"
#include "base/walk.h"

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

/* ---- tree walker ---- */

struct walk_log {
	char buf[1024];
	int skip_dir_named_b; /* pre returns AC_WALK_SKIP for "b" */
	const char *fail_at;  /* pre fails at this path */
};

static int log_pre(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct walk_log *l = arg;
	const char *kind = S_ISDIR(e->st->st_mode) ? "d" : S_ISLNK(e->st->st_mode) ? "l" : "f";
	/* a directory arrives open; nothing else does */
	assert_true(S_ISDIR(e->st->st_mode) ? e->fd >= 0 : e->fd < 0);
	char one[128];
	snprintf(one, sizeof(one), "+%s:%s:%d ", kind, e->path, e->depth);
	strncat(l->buf, one, sizeof(l->buf) - strlen(l->buf) - 1);
	if (l->fail_at && strcmp(e->path, l->fail_at) == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "stop at %s", e->path);
	if (l->skip_dir_named_b && strcmp(e->name, "b") == 0)
		return AC_WALK_SKIP;
	return 0;
}

static int log_post(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	struct walk_log *l = arg;
	char one[128];
	snprintf(one, sizeof(one), "-%s ", e->path);
	strncat(l->buf, one, sizeof(l->buf) - strlen(l->buf) - 1);
	return 0;
}

/* root/{a/{x, deep/}, b/{y}, c -> /etc (symlink), z} */
static int make_walk_tree(char *dir)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(mkdirat(dfd, "root", 0700), 0);
	assert_int_equal(mkdirat(dfd, "root/a", 0700), 0);
	assert_int_equal(mkdirat(dfd, "root/a/deep", 0700), 0);
	assert_int_equal(mkdirat(dfd, "root/b", 0700), 0);
	ac_error_t *err = NULL;
	assert_int_equal(ac_write_file_atomic_at(dfd, "root/a/x", "1", 1, 0600, &err), 0);
	assert_int_equal(ac_write_file_atomic_at(dfd, "root/b/y", "2", 1, 0600, &err), 0);
	assert_int_equal(ac_write_file_atomic_at(dfd, "root/z", "3", 1, 0600, &err), 0);
	assert_int_equal(symlinkat("/etc", dfd, "root/c"), 0);
	return dfd;
}

static void test_walk_order_and_symlinks(void **state)
{
	char *dir = make_tmpdir();
	int dfd = make_walk_tree(dir);
	struct walk_log l = {.buf = ""};
	ac_walk_t w = {.pre = log_pre, .post = log_post, .arg = &l, .max_depth = 8};
	ac_error_t *err = NULL;
	assert_int_equal(ac_walk_at(dfd, "root", &w, &err), 0);
	assert_null(err);
	/* pre before the contents, post after them, names in order, the symlink reported as
	 * a symlink and not entered (/etc's files would show up under c/) */
	assert_string_equal(l.buf, "+d::0 +d:a:1 +d:a/deep:2 -a/deep +f:a/x:2 -a "
				   "+d:b:1 +f:b/y:2 -b +l:c:1 +f:z:1 - ");

	/* a pre callback can keep the walk out of a directory (and its post) */
	l = (struct walk_log){.buf = "", .skip_dir_named_b = 1};
	assert_int_equal(ac_walk_at(dfd, "root", &w, &err), 0);
	assert_string_equal(l.buf, "+d::0 +d:a:1 +d:a/deep:2 -a/deep +f:a/x:2 -a "
				   "+d:b:1 +l:c:1 +f:z:1 - ");

	/* a callback's error stops the walk and comes back as is */
	l = (struct walk_log){.buf = "", .fail_at = "a/x"};
	assert_int_equal(ac_walk_at(dfd, "root", &w, &err), -1);
	assert_non_null(err);
	assert_string_equal(err->msg, "stop at a/x");
	ac_error_free(err);
	err = NULL;
	assert_null(strstr(l.buf, "b"));

	/* the root itself may be a symlink: reported, never followed */
	l = (struct walk_log){.buf = ""};
	assert_int_equal(ac_walk_at(dfd, "root/c", &w, &err), 0);
	assert_string_equal(l.buf, "+l::0 ");
	/* and a plain file as the root is one entry */
	l = (struct walk_log){.buf = ""};
	assert_int_equal(ac_walk_at(dfd, "root/z", &w, &err), 0);
	assert_string_equal(l.buf, "+f::0 ");
	close(dfd);
	remove_tmpdir(dir);
}

static void test_walk_depth_and_errors(void **state)
{
	char *dir = make_tmpdir();
	int dfd = make_walk_tree(dir);
	struct walk_log l = {.buf = ""};
	ac_error_t *err = NULL;
	/* root/a/deep is at depth 2 */
	ac_walk_t w = {.pre = log_pre, .post = log_post, .arg = &l, .max_depth = 2};
	assert_int_equal(ac_walk_at(dfd, "root", &w, &err), 0);
	w.max_depth = 1;
	l.buf[0] = '\0';
	assert_int_equal(ac_walk_at(dfd, "root", &w, &err), -1);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "deeper than 1 levels"));
	assert_null(strstr(l.buf, "a/deep")); /* never entered */
	ac_error_free(err);
	err = NULL;

	/* a missing root is an error, with the kind NOT_FOUND */
	w.max_depth = 8;
	assert_int_equal(ac_walk_at(dfd, "nope", &w, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;

	/* "" walks the directory dirfd itself (opened O_PATH here) */
	int rfd = openat(dfd, "root/b", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rfd >= 0);
	l.buf[0] = '\0';
	assert_int_equal(ac_walk_at(rfd, "", &w, &err), 0);
	assert_string_equal(l.buf, "+d::0 +f:y:1 - ");
	close(rfd);

	close(dfd);
	remove_tmpdir(dir);
}

/* ---- RFC 3339 formatting against gmtime_r ---- */

/* The formatter in src/base/time.c computes the civil date itself (gmtime_r reads
 * /etc/localtime); this is the reference it must agree with. */
static void gmtime_rfc3339(int64_t ms, char buf[32])
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	assert_non_null(gmtime_r(&t, &tm));
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, (int)frac);
	assert_true(strlen(tmp) < 32);
	memcpy(buf, tmp, strlen(tmp) + 1);
}

static void test_rfc3339_format_matches_gmtime(void **state)
{
	/* Leap years, century rules, the epoch, instants before it, the last instant RFC
	 * 3339 can write, and years it cannot (negative, five digits). */
	const int64_t fixed[] = {0,
				 -1,
				 1,
				 999,
				 86399999,
				 86400000,
				 951782400000,	  /* 2000-02-29 */
				 4107542399999,	  /* 2100-02-28T23:59:59.999 */
				 4107542400000,	  /* 2100-03-01 */
				 -62135596800000, /* 0001-01-01 */
				 -62167219200000, /* 0000-01-01 */
				 -62167219200001, /* -0001-12-31T23:59:59.999 */
				 253402300799999, /* 9999-12-31T23:59:59.999 */
				 253402300800000, /* 10000-01-01 */
				 -8000000000000000,
				 8000000000000000,
				 1798000000123};
	char a[32], b[32];
	for (size_t i = 0; i < AC_ARRAY_SIZE(fixed); i++) {
		ac_time_format_rfc3339(fixed[i], a);
		gmtime_rfc3339(fixed[i], b);
		assert_string_equal(a, b);
	}
	ac_time_format_rfc3339(-62167219200001, a);
	assert_string_equal(a, "-001-12-31T23:59:59.999Z");
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t ms = (int64_t)(x % 253402300800000ull) - 62167219200000ll;
		ac_time_format_rfc3339(ms, a);
		gmtime_rfc3339(ms, b);
		if (strcmp(a, b) != 0)
			fail_msg("%lld: %s != %s", (long long)ms, a, b);
	}
}

/* ------------------------------------------------------------------ UTF-8 helpers */

#define U(s) (s), (sizeof(s) - 1)

static void test_utf8_valid(void **state)
{
	assert_true(ac_utf8_valid(U("")));
	assert_true(ac_utf8_valid(U("plain ascii")));
	assert_true(ac_utf8_valid(U("a\0b")));		    /* NUL is a character */
	assert_true(ac_utf8_valid(U("\xc2\x80")));	    /* U+0080 */
	assert_true(ac_utf8_valid(U("\xc3\xa9t\xc3\xa9"))); /* été */
	assert_true(ac_utf8_valid(U("\xdf\xbf")));	    /* U+07FF */
	assert_true(ac_utf8_valid(U("\xe0\xa0\x80")));	    /* U+0800 */
	assert_true(ac_utf8_valid(U("\xe2\x82\xac")));	    /* € */
	assert_true(ac_utf8_valid(U("\xed\x9f\xbf")));	    /* U+D7FF */
	assert_true(ac_utf8_valid(U("\xee\x80\x80")));	    /* U+E000 */
	assert_true(ac_utf8_valid(U("\xef\xbf\xbf")));	    /* U+FFFF */
	assert_true(ac_utf8_valid(U("\xf0\x90\x80\x80")));  /* U+10000 */
	assert_true(ac_utf8_valid(U("\xf0\x9f\x98\x80")));  /* 😀 */
	assert_true(ac_utf8_valid(U("\xf4\x8f\xbf\xbf")));  /* U+10FFFF */
	/* overlongs */
	assert_false(ac_utf8_valid(U("\xc0\x80")));
	assert_false(ac_utf8_valid(U("\xc0\xaf")));
	assert_false(ac_utf8_valid(U("\xc1\xbf")));
	assert_false(ac_utf8_valid(U("\xe0\x80\x80")));
	assert_false(ac_utf8_valid(U("\xe0\x9f\xbf")));
	assert_false(ac_utf8_valid(U("\xf0\x80\x80\x80")));
	assert_false(ac_utf8_valid(U("\xf0\x8f\xbf\xbf")));
	/* surrogates */
	assert_false(ac_utf8_valid(U("\xed\xa0\x80")));
	assert_false(ac_utf8_valid(U("\xed\xbf\xbf")));
	assert_false(ac_utf8_valid(U("\xed\xa0\xbd\xed\xb8\x80"))); /* CESU-8 pair */
	/* above U+10FFFF */
	assert_false(ac_utf8_valid(U("\xf4\x90\x80\x80")));
	assert_false(ac_utf8_valid(U("\xf5\x80\x80\x80")));
	assert_false(ac_utf8_valid(U("\xf7\xbf\xbf\xbf")));
	assert_false(ac_utf8_valid(U("\xf8\x88\x80\x80\x80")));
	assert_false(ac_utf8_valid(U("\xfc\x84\x80\x80\x80\x80")));
	assert_false(ac_utf8_valid(U("\xfe")));
	assert_false(ac_utf8_valid(U("\xff")));
	/* stray continuation bytes, bad continuations */
	assert_false(ac_utf8_valid(U("\x80")));
	assert_false(ac_utf8_valid(U("a\xbf")));
	assert_false(ac_utf8_valid(U("\xc3\x28")));
	assert_false(ac_utf8_valid(U("\xe2\x28\xa1")));
	assert_false(ac_utf8_valid(U("\xe2\x82\x28")));
	assert_false(ac_utf8_valid(U("\xf0\x9f\x98\x28")));
	assert_false(ac_utf8_valid(U("\xc3\xa9\xa9")));
	/* truncated at the end */
	assert_false(ac_utf8_valid(U("a\xc3")));
	assert_false(ac_utf8_valid(U("a\xe2\x82")));
	assert_false(ac_utf8_valid(U("a\xe2")));
	assert_false(ac_utf8_valid(U("a\xf0\x9f\x98")));
	assert_false(ac_utf8_valid(U("a\xf0\x9f")));
	assert_false(ac_utf8_valid(U("a\xf0")));
	/* the length counts, not a NUL: a valid prefix of a longer buffer */
	assert_true(ac_utf8_valid("ab\xff", 2));
	assert_false(ac_utf8_valid("\xe2\x82\xac", 2));
}

static void test_utf8_complete_prefix(void **state)
{
	assert_int_equal(ac_utf8_complete_prefix(U("")), 0);
	assert_int_equal(ac_utf8_complete_prefix(U("abc")), 3);
	assert_int_equal(ac_utf8_complete_prefix(U("\xc3\xa9")), 2);
	assert_int_equal(ac_utf8_complete_prefix(U("\xf0\x9f\x98\x80")), 4);
	assert_int_equal(ac_utf8_complete_prefix(U("xyz\xf0\x9f\x98\x80")), 7);
	/* an unfinished sequence at the end waits */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xc3")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xe2")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xe2\x82")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xf0")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xf0\x9f")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xf0\x9f\x98")), 1);
	assert_int_equal(ac_utf8_complete_prefix(U("\xf0\x9f\x98")), 0);
	assert_int_equal(ac_utf8_complete_prefix(U("long text \xe2\x82")), 10);
	assert_int_equal(ac_utf8_complete_prefix(U("\xc3\xa9\xf0\x9f")), 2);
	/* bytes that no continuation can make valid are not held back */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xff")), 2);
	assert_int_equal(ac_utf8_complete_prefix(U("a\x80")), 2);
	assert_int_equal(ac_utf8_complete_prefix(U("a\xc0")), 2);	 /* overlong lead */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xf5")), 2);	 /* > U+10FFFF */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xe0\x80")), 3);	 /* overlong */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xed\xa0")), 3);	 /* surrogate */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xf4\x90")), 3);	 /* > U+10FFFF */
	assert_int_equal(ac_utf8_complete_prefix(U("a\xc3\x28")), 3);	 /* bad continuation */
	assert_int_equal(ac_utf8_complete_prefix(U("\xc3\xf0\x9f")), 1); /* bad, then a start */
	/* whatever the split, prefix + rest re-joined is the input, and a valid input's
	 * prefix is valid */
	const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
	for (size_t n = 0; n <= sizeof(s) - 1; n++) {
		size_t k = ac_utf8_complete_prefix(s, n);
		assert_true(k <= n && n - k <= 3);
		assert_true(ac_utf8_valid(s, k));
	}
}

static void lossy_is(const char *in, size_t n, const char *want, size_t want_len)
{
	size_t len = 12345;
	char *out = ac_utf8_lossy(in, n, &len);
	assert_non_null(out);
	assert_int_equal(len, want_len);
	assert_memory_equal(out, want, want_len);
	assert_int_equal(out[len], '\0');
	assert_true(ac_utf8_valid(out, len));
	free(out);
}

#define FFFD "\xef\xbf\xbd"

static void test_utf8_lossy(void **state)
{
	lossy_is(U(""), U(""));
	lossy_is(U("plain"), U("plain"));
	lossy_is(U("a\0b"), U("a\0b"));
	lossy_is(U("\xc3\xa9\xf0\x9f\x98\x80"), U("\xc3\xa9\xf0\x9f\x98\x80"));
	lossy_is(U("a\xff"
		   "b"),
		 U("a" FFFD "b"));
	lossy_is(U("\xc0\x80"), U(FFFD FFFD)); /* overlong: each byte */
	lossy_is(U("\xe0\x80\x80"), U(FFFD FFFD FFFD));
	lossy_is(U("\xed\xa0\x80"), U(FFFD FFFD FFFD));		 /* surrogate */
	lossy_is(U("\xf4\x90\x80\x80"), U(FFFD FFFD FFFD FFFD)); /* > U+10FFFF */
	lossy_is(U("ab\xe2\x82"), U("ab" FFFD FFFD));		 /* truncated at the end */
	lossy_is(U("ab\xf0\x9f\x98"), U("ab" FFFD FFFD FFFD));
	lossy_is(U("\xc3"), U(FFFD));
	lossy_is(U("\xc3(\xc3\xa9"), U(FFFD "(\xc3\xa9")); /* resyncs on the next byte */
	lossy_is(U("\x80\x80"), U(FFFD FFFD));
	size_t len;
	char *out = ac_utf8_lossy("x", 1, NULL); /* out_len is optional */
	assert_string_equal(out, "x");
	free(out);
	/* every byte value, alone and after a lead byte */
	for (int b = 0; b < 256; b++) {
		char in[3] = {(char)b, (char)0xc3, (char)b};
		out = ac_utf8_lossy(in, 3, &len);
		assert_non_null(out);
		assert_true(ac_utf8_valid(out, len));
		free(out);
	}
}

static void test_utf8_seq_and_invalid_at(void **state)
{
	assert_int_equal(ac_utf8_seq(U("a")), 1);
	assert_int_equal(ac_utf8_seq(U("\xc3\xa9")), 2);
	assert_int_equal(ac_utf8_seq(U("\xe2\x82\xac")), 3);
	assert_int_equal(ac_utf8_seq(U("\xf0\x9f\x98\x80")), 4);
	assert_int_equal(ac_utf8_seq(U("\xf0\x9f\x98")), -3); /* needs one more byte */
	assert_int_equal(ac_utf8_seq(U("\xe2")), -1);
	assert_int_equal(ac_utf8_seq(U("\x80")), 0);
	assert_int_equal(ac_utf8_seq(U("\xc0\x80")), 0);
	assert_int_equal(ac_utf8_seq(U("\xed\xa0")), 0); /* a surrogate's start is no start */
	assert_int_equal(ac_utf8_seq(U("\xe2\x28\xa1")), 0);

	assert_int_equal(ac_utf8_invalid_at(U("")), 0);
	assert_int_equal(ac_utf8_invalid_at(U("ok \xc3\xa9")), 5);
	assert_int_equal(ac_utf8_invalid_at(U("ab\xff")), 2);
	assert_int_equal(ac_utf8_invalid_at(U("\xc3\xa9\xe2\x82")), 2); /* truncated */
	assert_int_equal(ac_utf8_invalid_at(U("x\xf4\x90\x80\x80")), 1);

	/* text: well-formed and no NUL bytes */
	assert_true(ac_utf8_is_text(U("caf\xc3\xa9\n")));
	assert_true(ac_utf8_is_text(U("")));
	assert_false(ac_utf8_is_text(U("a\0b")));
	assert_false(ac_utf8_is_text(U("\xed\xa0\x80"))); /* a surrogate */
	assert_false(ac_utf8_is_text(U("\xc0\xaf")));	  /* overlong */
}

static void test_utf8_decode_encode(void **state)
{
	size_t len = 99;
	assert_int_equal(ac_utf8_decode(U("A"), &len), 'A');
	assert_int_equal(len, 1);
	assert_int_equal(ac_utf8_decode(U("\xc3\xa9"), &len), 0xE9);
	assert_int_equal(len, 2);
	assert_int_equal(ac_utf8_decode(U("\xe2\x82\xac"), &len), 0x20AC);
	assert_int_equal(len, 3);
	assert_int_equal(ac_utf8_decode(U("\xf4\x8f\xbf\xbf"), &len), 0x10FFFF);
	assert_int_equal(len, 4);
	assert_int_equal(ac_utf8_decode(U("\xff"), &len), 0xFFFD);
	assert_int_equal(len, 1);
	assert_int_equal(ac_utf8_decode(U("\xe2\x82"), &len), 0xFFFD);
	assert_int_equal(len, 1);
	assert_int_equal(ac_utf8_decode("", 0, &len), 0);
	assert_int_equal(len, 0);

	/* every scalar value survives encode + decode, and the encoding is well-formed */
	char b[4];
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		size_t n = ac_utf8_encode(cp, b);
		if (cp >= 0xD800 && cp <= 0xDFFF) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
		assert_int_equal(ac_utf8_seq(b, n), (int)n);
		if (ac_utf8_decode(b, n, &len) != cp || len != n)
			fail_msg("U+%04X does not round-trip", (unsigned)cp);
	}
	assert_int_equal(ac_utf8_encode(0x110000, b), 0);

	assert_int_equal(ac_utf8_chars(U("")), 0);
	assert_int_equal(ac_utf8_chars(U("abc")), 3);
	assert_int_equal(ac_utf8_chars(U("\xc3\xa9t\xc3\xa9\xf0\x9f\x98\x80")), 4);
}

static void test_utf8_sanitize(void **state)
{
	char out[32];
	size_t n = ac_utf8_sanitize(U("bad\xff\xfe"
				      "bytes"),
				    out, sizeof(out), '?');
	assert_int_equal(n, 10);
	assert_memory_equal(out, "bad??bytes", 10);
	/* never half a character: a cut falls before a sequence that does not fit */
	n = ac_utf8_sanitize(U("caf\xc3\xa9"), out, 4, '?');
	assert_int_equal(n, 3);
	assert_memory_equal(out, "caf", 3);
	n = ac_utf8_sanitize(U("\xf0\x9f\x98\x80!"), out, sizeof(out), '?');
	assert_int_equal(n, 5);
	assert_memory_equal(out, "\xf0\x9f\x98\x80!", 5);
	n = ac_utf8_sanitize(U("\xed\xa0\x80"), out, sizeof(out), '?'); /* surrogate */
	assert_int_equal(n, 3);
	assert_memory_equal(out, "???", 3);
	n = ac_utf8_sanitize(U("abc"), out, 0, '?');
	assert_int_equal(n, 0);
	/* whatever the input, the output is valid */
	for (int byte = 0; byte < 256; byte++) {
		char in[4] = {'x', (char)byte, (char)0xe2, (char)byte};
		n = ac_utf8_sanitize(in, sizeof(in), out, sizeof(out), '?');
		assert_true(ac_utf8_valid(out, n));
	}
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
	    cmocka_unit_test(test_rfc3339_format_matches_gmtime),
	    cmocka_unit_test(test_uuid_v7),
	    cmocka_unit_test(test_uuid_valid),
	    cmocka_unit_test(test_atomic_write),
	    cmocka_unit_test(test_read_file_limits),
	    cmocka_unit_test(test_write_string_and_mkdir_p),
	    cmocka_unit_test(test_rm_rf_no_follow),
	    cmocka_unit_test(test_rm_rf_refuses_other_mount),
	    cmocka_unit_test(test_rm_rf_stops_at_mounts),
	    cmocka_unit_test(test_walk_order_and_symlinks),
	    cmocka_unit_test(test_walk_depth_and_errors),
	    cmocka_unit_test(test_escape_controls),
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_utf8_complete_prefix),
	    cmocka_unit_test(test_utf8_lossy),
	    cmocka_unit_test(test_utf8_seq_and_invalid_at),
	    cmocka_unit_test(test_utf8_decode_encode),
	    cmocka_unit_test(test_utf8_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
