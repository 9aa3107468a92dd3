/* Unit tests for src/net/secrets.c: the store in a temporary HOME (modes, atomic
 * replacement, listing without values, symlinks planted in place of a secret or of the
 * directory), key and value validation, binding specs and placeholders. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "base/io.h"
#include "base/time.h"
#include "base/util.h"

/* ---- helpers ---- */

typedef struct {
	char root[64];	/* mkdtemp */
	char home[128]; /* root/home, not made: set makes it */
	char dir[160];	/* home/secrets */
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/ac-test-secrets-XXXXXX");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->home, sizeof(f->home), "%s/home", f->root);
	snprintf(f->dir, sizeof(f->dir), "%s/secrets", f->home);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	ac_error_t *err = NULL;
	ac_rm_rf_at(AT_FDCWD, f->root, &err);
	ac_error_free(err);
	free(f);
	return 0;
}

static void set_ok(const char *home, const char *key, const char *value)
{
	ac_error_t *err = NULL;
	if (ac_secret_set(home, key, value, strlen(value), &err) < 0) {
		print_error("set %s: %s\n", key, err ? err->msg : "(no error)");
		ac_error_free(err);
		fail();
	}
	assert_null(err);
}

static void expect_secret(const char *home, const char *key, const char *want)
{
	char *v = NULL;
	ac_error_t *err = NULL;
	if (ac_secret_get(home, key, &v, &err) < 0) {
		print_error("get %s: %s\n", key, err ? err->msg : "(no error)");
		ac_error_free(err);
		fail();
	}
	assert_string_equal(v, want);
	free(v);
}

/* *errp must be of kind and its message contain what; frees it and clears *errp. */
static void expect_err(ac_error_t **errp, ac_error_kind_t kind, const char *what)
{
	ac_error_t *err = *errp;
	*errp = NULL;
	assert_non_null(err);
	if (err->kind != kind || strstr(err->msg, what) == NULL || strchr(err->msg, '\n')) {
		print_error("got kind %d \"%s\", want kind %d with \"%s\"\n", err->kind, err->msg,
			    kind, what);
		ac_error_free(err);
		fail();
	}
	ac_error_free(err);
}

static void expect_get_fails(const char *home, const char *key, ac_error_kind_t kind,
			     const char *what)
{
	char *v = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_secret_get(home, key, &v, &err), -1);
	assert_null(v);
	expect_err(&err, kind, what);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ac_write_all(fd, s, strlen(s)), 0);
	close(fd);
}

static char *read_text(const char *path)
{
	char *s = NULL;
	size_t len;
	ac_error_t *err = NULL;
	if (ac_read_file_at(AT_FDCWD, path, 1 << 20, &s, &len, &err) < 0) {
		ac_error_free(err);
		return NULL;
	}
	return s;
}

/* ---- keys and values ---- */

static void test_key_check(void **state)
{
	char k128[130], k129[131];
	memset(k128, 'K', 128);
	k128[128] = '\0';
	memset(k129, 'K', 129);
	k129[129] = '\0';
	const char *ok[] = {"A", "_", "_x", "GH_TOKEN", "a1", "abc_DEF_123", k128};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++) {
		ac_error_t *err = NULL;
		assert_int_equal(ac_secret_key_check(ok[i], &err), 0);
		assert_null(err);
	}
	static const struct {
		const char *key, *why;
	} bad[] = {
	    {"", "invalid secret key '': empty"}, {"1A", "starts with a digit"},
	    {"a-b", "invalid character"},	  {"a.b", "invalid character"},
	    {"../x", "invalid character"},	  {"a b", "invalid character"},
	    {"a/b", "invalid character"},	  {"KEY\n", "invalid character"},
	    {"Ä", "invalid character"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *err = NULL;
		assert_int_equal(ac_secret_key_check(bad[i].key, &err), -1);
		expect_err(&err, AC_ERR_INVALID, bad[i].why);
	}
	ac_error_t *err = NULL;
	assert_int_equal(ac_secret_key_check(k129, &err), -1);
	expect_err(&err, AC_ERR_INVALID, "longer than 128 characters");
	assert_int_equal(ac_secret_key_check(NULL, &err), -1);
	expect_err(&err, AC_ERR_INVALID, "empty");
}

static void test_value_check(void **state)
{
	fixture_t *f = *state;
	static const struct {
		const char *v;
		size_t len;
	} bad[] = {
	    {"", 0}, {"line\nbreak", 10}, {"trailing\n", 9}, {"cr\rhere", 7}, {"nul\0inside", 10},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *err = NULL;
		assert_int_equal(ac_secret_set(f->home, "K", bad[i].v, bad[i].len, &err), -1);
		expect_err(&err, AC_ERR_INVALID, "invalid value for secret 'K'");
	}
	/* Nothing was written: not even the directory. */
	struct stat st;
	assert_int_equal(stat(f->dir, &st), -1);

	char *big = malloc(65537);
	assert_non_null(big);
	memset(big, 'v', 65537);
	ac_error_t *err = NULL;
	assert_int_equal(ac_secret_set(f->home, "BIG", big, 65537, &err), -1);
	expect_err(&err, AC_ERR_INVALID, "longer than 65536 bytes");
	assert_int_equal(ac_secret_set(f->home, "BIG", big, 65536, &err), 0);
	char *got = NULL;
	assert_int_equal(ac_secret_get(f->home, "BIG", &got, &err), 0);
	assert_int_equal(strlen(got), 65536);
	assert_memory_equal(got, big, 65536);
	free(got);
	free(big);

	/* Tabs, spaces, quotes and UTF-8 are fine in a header value. */
	set_ok(f->home, "ODD", "a\tb c\"d'é");
	expect_secret(f->home, "ODD", "a\tb c\"d'é");

	assert_int_equal(ac_secret_set(f->home, "bad-key", "v", 1, &err), -1);
	expect_err(&err, AC_ERR_INVALID, "invalid secret key 'bad-key'");
}

/* ---- the store ---- */

static void test_set_get_list_remove(void **state)
{
	fixture_t *f = *state;
	ac_error_t *err = NULL;

	/* Nothing yet: no directory, no HOME even. */
	expect_get_fails(f->home, "GH", AC_ERR_NOT_FOUND,
			 "secret 'GH' does not exist (set it with 'agentcell secret set GH')");
	assert_false(ac_secret_exists(f->home, "GH"));
	json_t *l = ac_secret_list(f->home, &err);
	assert_non_null(l);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);

	mode_t old = umask(0);
	set_ok(f->home, "GH", "ghp_first");
	umask(old);
	assert_int_equal(mode_of(f->dir), 0700);
	char path[256];
	snprintf(path, sizeof(path), "%s/GH", f->dir);
	assert_int_equal(mode_of(path), 0600);
	expect_secret(f->home, "GH", "ghp_first");
	assert_true(ac_secret_exists(f->home, "GH"));
	assert_false(ac_secret_exists(f->home, "gh")); /* keys are case-sensitive */
	assert_false(ac_secret_exists(f->home, "../home/secrets/GH"));

	/* Replacing writes a new file (atomic rename): the old inode is left untouched. */
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	set_ok(f->home, "GH", "ghp_second_longer");
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(after.st_mode & 07777, 0600);
	expect_secret(f->home, "GH", "ghp_second_longer");

	set_ok(f->home, "ANTHROPIC_API_KEY", "sk-ant-xyz");
	set_ok(f->home, "_Z", "z");
	set_ok(f->home, "B", "bb");
	/* The leftovers of an interrupted write and foreign files are not secrets. */
	snprintf(path, sizeof(path), "%s/B.tmp.123.00000000deadbeef", f->dir);
	write_file(path, "partial");
	snprintf(path, sizeof(path), "%s/not-a-key", f->dir);
	write_file(path, "x");
	snprintf(path, sizeof(path), "%s/SUBDIR", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);

	int64_t t0 = ac_time_now_ms();
	l = ac_secret_list(f->home, &err);
	assert_non_null(l);
	char *dump = json_dumps(l, JSON_COMPACT);
	assert_non_null(dump);
	assert_null(strstr(dump, "ghp_"));
	assert_null(strstr(dump, "sk-ant"));
	assert_null(strstr(dump, "partial"));
	free(dump);
	static const struct {
		const char *key;
		int bytes;
	} want[] = {{"ANTHROPIC_API_KEY", 10}, {"B", 2}, {"GH", 17}, {"_Z", 1}};
	assert_int_equal(json_array_size(l), AC_ARRAY_SIZE(want));
	for (size_t i = 0; i < AC_ARRAY_SIZE(want); i++) {
		json_t *e = json_array_get(l, i);
		assert_string_equal(json_string_value(json_object_get(e, "key")), want[i].key);
		assert_int_equal(json_integer_value(json_object_get(e, "bytes")), want[i].bytes);
		assert_int_equal(json_object_size(e), 3);
		int64_t ms;
		const char *ts = json_string_value(json_object_get(e, "updated_at"));
		assert_non_null(ts);
		assert_int_equal(ac_time_parse_rfc3339(ts, &ms), 0);
		assert_true(ms <= t0 + 1000 && ms > t0 - 60000);
	}
	json_decref(l);

	assert_int_equal(ac_secret_remove(f->home, "GH", &err), 0);
	assert_false(ac_secret_exists(f->home, "GH"));
	expect_get_fails(f->home, "GH", AC_ERR_NOT_FOUND,
			 "secret 'GH' does not exist (set it with 'agentcell secret set GH')");
	assert_int_equal(ac_secret_remove(f->home, "GH", &err), -1);
	expect_err(&err, AC_ERR_NOT_FOUND, "secret 'GH' does not exist");
	assert_int_equal(ac_secret_remove(f->home, "../secrets", &err), -1);
	expect_err(&err, AC_ERR_INVALID, "invalid secret key");
	l = ac_secret_list(f->home, &err);
	assert_int_equal(json_array_size(l), 3);
	json_decref(l);
}

static void test_directory_mode_tightened(void **state)
{
	fixture_t *f = *state;
	assert_int_equal(mkdir(f->home, 0755), 0);
	assert_int_equal(mkdir(f->dir, 0755), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	set_ok(f->home, "K", "v");
	assert_int_equal(mode_of(f->dir), 0700);
	/* A file made by hand with a loose mode is rewritten 0600 on the next set. */
	char path[256];
	snprintf(path, sizeof(path), "%s/K", f->dir);
	assert_int_equal(chmod(path, 0644), 0);
	set_ok(f->home, "K", "w");
	assert_int_equal(mode_of(path), 0600);
}

static void test_hand_edited_value_refused(void **state)
{
	fixture_t *f = *state;
	set_ok(f->home, "K", "v");
	char path[256];
	snprintf(path, sizeof(path), "%s/K", f->dir);
	write_file(path, "token-with-newline\n");
	expect_get_fails(f->home, "K", AC_ERR_INVALID, "secret 'K' is unusable");
	write_file(path, "");
	expect_get_fails(f->home, "K", AC_ERR_INVALID, "secret 'K' is unusable");
}

static void test_symlink_secret_refused(void **state)
{
	fixture_t *f = *state;
	set_ok(f->home, "REAL", "r");
	char target[256], link[256];
	snprintf(target, sizeof(target), "%s/outside", f->root);
	write_file(target, "host-file-content");
	snprintf(link, sizeof(link), "%s/PLANTED", f->dir);
	assert_int_equal(symlink(target, link), 0);

	/* read: refused, never the target's content */
	expect_get_fails(f->home, "PLANTED", AC_ERR_PERMISSION, "symlink");
	assert_false(ac_secret_exists(f->home, "PLANTED"));
	/* write: refused, the target untouched, the link still a link */
	ac_error_t *err = NULL;
	assert_int_equal(ac_secret_set(f->home, "PLANTED", "overwritten", 11, &err), -1);
	expect_err(&err, AC_ERR_PERMISSION, "secret 'PLANTED' is not a regular file");
	char *s = read_text(target);
	assert_string_equal(s, "host-file-content");
	free(s);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* list: not a secret */
	json_t *l = ac_secret_list(f->home, &err);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "key")),
			    "REAL");
	json_decref(l);
	/* remove: the link goes, its target stays */
	assert_int_equal(ac_secret_remove(f->home, "PLANTED", &err), 0);
	assert_int_equal(lstat(link, &st), -1);
	s = read_text(target);
	assert_string_equal(s, "host-file-content");
	free(s);

	/* A link to a directory and a FIFO are refused too, and the FIFO does not hang. */
	assert_int_equal(symlink(f->root, link), 0);
	expect_get_fails(f->home, "PLANTED", AC_ERR_PERMISSION, "symlink");
	unlink(link);
	assert_int_equal(mkfifo(link, 0600), 0);
	expect_get_fails(f->home, "PLANTED", AC_ERR_PERMISSION, "not a regular file");
	assert_false(ac_secret_exists(f->home, "PLANTED"));
}

static void test_symlink_directory_refused(void **state)
{
	fixture_t *f = *state;
	char elsewhere[256], planted[256];
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", f->root);
	assert_int_equal(mkdir(elsewhere, 0700), 0);
	snprintf(planted, sizeof(planted), "%s/K", elsewhere);
	write_file(planted, "from-elsewhere");
	assert_int_equal(mkdir(f->home, 0700), 0);
	assert_int_equal(symlink(elsewhere, f->dir), 0);

	ac_error_t *err = NULL;
	assert_int_equal(ac_secret_set(f->home, "NEW", "v", 1, &err), -1);
	expect_err(&err, AC_ERR_PERMISSION, "secrets' is not a directory");
	expect_get_fails(f->home, "K", AC_ERR_PERMISSION, "not a directory");
	assert_false(ac_secret_exists(f->home, "K"));
	assert_null(ac_secret_list(f->home, &err));
	expect_err(&err, AC_ERR_PERMISSION, "not a directory");
	assert_int_equal(ac_secret_remove(f->home, "K", &err), -1);
	expect_err(&err, AC_ERR_PERMISSION, "not a directory");
	/* nothing went into the link's target */
	DIR *d = opendir(elsewhere);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 1);
	char *s = read_text(planted);
	assert_string_equal(s, "from-elsewhere");
	free(s);
}

static void test_foreign_owner_refused(void **state)
{
	fixture_t *f = *state;
	if (geteuid() != 0)
		skip(); /* only root can give the directory away */
	set_ok(f->home, "K", "v");
	assert_int_equal(chown(f->dir, 4242, 4242), 0);
	expect_get_fails(f->home, "K", AC_ERR_PERMISSION, "belongs to uid 4242");
}

/* ---- bindings ---- */

static void test_binding_parse(void **state)
{
	static const struct {
		const char *spec, *key, *host, *header, *prefix;
	} ok[] = {
	    {"GH@api.github.com", "GH", "api.github.com", "Authorization", "Bearer "},
	    {"K@api.anthropic.com:x-api-key", "K", "api.anthropic.com", "x-api-key", ""},
	    {"K@h.example:Authorization:token ", "K", "h.example", "Authorization", "token "},
	    {"K@h.example:Authorization", "K", "h.example", "Authorization", ""},
	    {"K@h.example:X-Key:", "K", "h.example", "X-Key", ""},
	    {"K@h.example:Authorization:Basic a:b", "K", "h.example", "Authorization", "Basic a:b"},
	    {"_K1@API.Example.COM.", "_K1", "api.example.com", "Authorization", "Bearer "},
	    {"K@192.0.2.10", "K", "192.0.2.10", "Authorization", "Bearer "},
	    {"K@[2001:DB8::1]", "K", "2001:db8::1", "Authorization", "Bearer "},
	    {"K@[2001:db8::1]:X-Token", "K", "2001:db8::1", "X-Token", ""},
	    {"K@h.example:!#$%&'*+-.^_`|~", "K", "h.example", "!#$%&'*+-.^_`|~", ""},
	    {"K@h.example:X-1", "K", "h.example", "X-1", ""},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++) {
		ac_error_t *err = NULL;
		json_t *b = ac_secret_binding_parse(ok[i].spec, &err);
		if (b == NULL) {
			print_error("%s: %s\n", ok[i].spec, err ? err->msg : "(no error)");
			ac_error_free(err);
			fail();
		}
		assert_int_equal(json_object_size(b), 4);
		assert_string_equal(json_string_value(json_object_get(b, "key")), ok[i].key);
		assert_string_equal(json_string_value(json_object_get(b, "host")), ok[i].host);
		assert_string_equal(json_string_value(json_object_get(b, "header")), ok[i].header);
		assert_string_equal(json_string_value(json_object_get(b, "prefix")), ok[i].prefix);
		json_decref(b);
	}
}

static void test_binding_errors(void **state)
{
	static const struct {
		const char *spec, *why;
	} bad[] = {
	    {"", "invalid secret binding '': expected KEY@HOST[:HEADER[:PREFIX]]"},
	    {"GH", "invalid secret binding 'GH': expected KEY@HOST"},
	    {"@api.github.com", "invalid key: empty"},
	    {"1GH@api.github.com", "invalid key: starts with a digit"},
	    {"G-H@api.github.com", "invalid key: invalid character"},
	    {"GH@", "empty host"},
	    {"GH@:x-api-key", "empty host"},
	    {"GH@*.github.com", "invalid host: a binding takes no wildcard"},
	    {"GH@api..github.com", "invalid host: empty label"},
	    {"GH@-api.github.com", "invalid host: a label starts with '-'"},
	    {"GH@api github.com", "invalid host: invalid character"},
	    {"GH@10.0.0.0/8", "invalid host: invalid character"},
	    {"GH@127.1", "invalid host: not a valid IP address"},
	    {"GH@[2001:db8::1", "'[' without ']' in the host"},
	    {"GH@[2001:db8::1]x", "expected ':' after ']'"},
	    {"GH@[not-v6]", "invalid host: not a valid IPv6 address"},
	    {"GH@[192.0.2.1]", "invalid host: not a valid IPv6 address"},
	    {"GH@2001:db8::1", "invalid host: not a valid IP address"},
	    {"GH@api.github.com:443",
	     "the header name is a number: a binding's host takes no port"},
	    {"GH@api.github.com:", "empty header name"},
	    {"GH@api.github.com::Bearer ", "empty header name"},
	    {"GH@api.github.com:X Key", "invalid header name"},
	    {"GH@api.github.com:X\"Key", "invalid header name"},
	    {"GH@api.github.com:Authorization:Bearer\r\nX-Evil: 1", "contains CR or LF"},
	    {"GH@api.github.com:Authorization:a\nb", "contains CR or LF"},
	    {"GH@api.github.com:Authorization:\xff", "not valid UTF-8"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *err = NULL;
		json_t *b = ac_secret_binding_parse(bad[i].spec, &err);
		if (b != NULL) {
			print_error("%s accepted, wanted: %s\n", bad[i].spec, bad[i].why);
			json_decref(b);
			fail();
		}
		assert_non_null(err);
		if (strncmp(err->msg, "invalid secret binding '", 24) != 0)
			fail_msg("%s: %s", bad[i].spec, err->msg);
		expect_err(&err, AC_ERR_INVALID, bad[i].why);
	}

	char longh[300];
	memset(longh, 'H', 200);
	longh[200] = '\0';
	char spec[400];
	snprintf(spec, sizeof(spec), "K@h.example:%s", longh);
	ac_error_t *err = NULL;
	assert_null(ac_secret_binding_parse(spec, &err));
	expect_err(&err, AC_ERR_INVALID, "header name longer than 128");
	assert_null(ac_secret_binding_parse(NULL, &err));
	expect_err(&err, AC_ERR_INVALID, "expected KEY@HOST");
}

static void test_placeholder(void **state)
{
	char *a = ac_secret_placeholder();
	char *b = ac_secret_placeholder();
	assert_non_null(a);
	assert_non_null(b);
	const char *pre = "agentcell-placeholder-";
	for (char *p = a;; p = b) {
		assert_int_equal(strlen(p), strlen(pre) + 32);
		assert_memory_equal(p, pre, strlen(pre));
		for (const char *h = p + strlen(pre); *h; h++)
			assert_non_null(strchr("0123456789abcdef", *h));
		if (p == b)
			break;
	}
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_check),
	    cmocka_unit_test_setup_teardown(test_value_check, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_get_list_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_directory_mode_tightened, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hand_edited_value_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_secret_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_directory_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_owner_refused, setup, teardown),
	    cmocka_unit_test(test_binding_parse),
	    cmocka_unit_test(test_binding_errors),
	    cmocka_unit_test(test_placeholder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
