/* Unit tests for src/core/store.c, each in a fresh mkdtemp home. */
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agentcell/store.h"
#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"

struct fixture {
	char *home;
	ac_store_t *store;
};

static int setup(void **state)
{
	char tmpl[] = "/tmp/ac-test-store-XXXXXX";
	char *d = mkdtemp(tmpl);
	if (d == NULL)
		return -1;
	struct fixture *f = calloc(1, sizeof(*f));
	f->home = strdup(d);
	ac_error_t *err = NULL;
	if (ac_store_open(f->home, &f->store, &err) < 0) {
		fprintf(stderr, "ac_store_open: %s\n", err->msg);
		ac_error_free(err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ac_store_free(f->store);
	ac_error_t *err = NULL;
	int r = ac_rm_rf_at(AT_FDCWD, f->home, &err);
	ac_error_free(err);
	free(f->home);
	free(f);
	return r;
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON: %s", jerr.text);
	return j;
}

/* Writes a raw state file, bypassing the store. */
static void put_file(struct fixture *f, const char *file, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/sandboxes/%s", f->home, file);
	ac_error_t *err = NULL;
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0600, &err),
			 0);
}

static json_t *read_raw(struct fixture *f, const char *file)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/sandboxes/%s", f->home, file);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	assert_non_null(j);
	return j;
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

static int sandboxes_count(struct fixture *f)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/sandboxes", f->home);
	return count_entries(path);
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	static const char *const dirs[] = {"sandboxes", "run", "data", "locks"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(dirs); i++) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", f->home, dirs[i]);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_string_equal(ac_store_home(f->store), f->home);
	struct stat a, b;
	assert_int_equal(fstat(ac_store_home_fd(f->store), &a), 0);
	assert_int_equal(stat(f->home, &b), 0);
	assert_true(a.st_ino == b.st_ino);

	/* Nested, not-yet-existing home: parents are created, home is 0700. */
	char nested[512];
	snprintf(nested, sizeof(nested), "%s/data/x/y/home/", f->home);
	ac_store_t *s2 = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_store_open(nested, &s2, &err), 0);
	nested[strlen(nested) - 1] = '\0';
	assert_string_equal(ac_store_home(s2), nested);
	struct stat st;
	assert_int_equal(stat(nested, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	ac_store_free(s2);
}

static void test_home_resolution(void **state)
{
	struct fixture *f = *state;
	char *old_ac = getenv("AGENTCELL_HOME") ? strdup(getenv("AGENTCELL_HOME")) : NULL;
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	ac_store_t *s = NULL;
	ac_error_t *err = NULL;
	char want[512];

	snprintf(want, sizeof(want), "%s/data/env-home", f->home);
	setenv("AGENTCELL_HOME", want, 1);
	assert_int_equal(ac_store_open(NULL, &s, &err), 0);
	assert_string_equal(ac_store_home(s), want);
	ac_store_free(s);

	unsetenv("AGENTCELL_HOME");
	setenv("HOME", f->home, 1);
	assert_int_equal(ac_store_open(NULL, &s, &err), 0);
	snprintf(want, sizeof(want), "%s/.local/share/agentcell", f->home);
	assert_string_equal(ac_store_home(s), want);
	ac_store_free(s);

	unsetenv("HOME");
	assert_int_equal(ac_store_open(NULL, &s, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err->msg, "HOME"));
	ac_error_free(err);

	if (old_ac)
		setenv("AGENTCELL_HOME", old_ac, 1);
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_ac);
	free(old_home);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	json_t *st = parse("{\"name\":\"box\",\"image\":\"python:3.12\",\"vcpus\":2,"
			   "\"memory_mb\":1024,\"backend\":\"native\"}");
	int64_t before = ac_time_now_ms();
	assert_int_equal(ac_store_create(f->store, st, &err), 0);
	assert_null(err);
	/* Filled in on the caller's object. */
	const char *uuid = ac_state_str(st, "uuid", NULL);
	assert_true(ac_uuid_valid(uuid));
	assert_int_equal(uuid[14], '7');
	int64_t created;
	assert_int_equal(ac_time_parse_rfc3339(ac_state_str(st, "created_at", ""), &created), 0);
	assert_true(created >= before - 1 && created <= ac_time_now_ms());
	assert_true(json_is_array(json_object_get(st, "ports")));
	assert_true(json_is_object(json_object_get(st, "labels")));
	assert_true(ac_store_exists(f->store, "box"));
	assert_false(ac_store_exists(f->store, "other"));
	assert_false(ac_store_exists(f->store, "../box"));

	char path[512];
	struct stat sst;
	snprintf(path, sizeof(path), "%s/sandboxes/box.json", f->home);
	assert_int_equal(stat(path, &sst), 0);
	assert_int_equal(sst.st_mode & 0777, 0600);

	json_t *loaded = NULL;
	assert_int_equal(ac_store_load(f->store, "box", &loaded, &err), 0);
	assert_true(json_equal(loaded, st));
	assert_int_equal(ac_state_int(loaded, "vcpus", 0), 2);
	assert_int_equal(ac_state_int(loaded, "memory_mb", 0), 1024);
	assert_string_equal(ac_state_str(loaded, "image", ""), "python:3.12");

	json_object_set_new(loaded, "description", json_string("changed"));
	assert_int_equal(ac_store_save(f->store, loaded, &err), 0);
	json_t *again = NULL;
	assert_int_equal(ac_store_load(f->store, "box", &again, &err), 0);
	assert_string_equal(ac_state_str(again, "description", ""), "changed");
	assert_string_equal(ac_state_str(again, "uuid", ""), uuid);

	json_t *list = NULL, *warnings = NULL;
	assert_int_equal(ac_store_list(f->store, &list, &warnings, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(json_array_size(warnings), 0);
	assert_true(json_equal(json_array_get(list, 0), again));
	json_decref(list);
	json_decref(warnings);

	assert_int_equal(ac_store_remove(f->store, "box", &err), 0);
	assert_false(ac_store_exists(f->store, "box"));
	json_t *gone = NULL;
	assert_int_equal(ac_store_load(f->store, "box", &gone, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	assert_string_equal(err->msg, "no such sandbox: 'box'");
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_store_remove(f->store, "box", &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;
	/* Saving a removed sandbox must not bring it back. */
	assert_int_equal(ac_store_save(f->store, again, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	assert_false(ac_store_exists(f->store, "box"));
	assert_int_equal(sandboxes_count(f), 0);

	json_decref(st);
	json_decref(loaded);
	json_decref(again);
}

static void test_create_keeps_given_fields(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	json_t *st = parse("{\"name\":\"given\",\"uuid\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
			   "\"created_at\":\"2025-01-02T03:04:05.678Z\",\"ports\":[8080],"
			   "\"labels\":{\"team\":\"a\"}}");
	assert_int_equal(ac_store_create(f->store, st, &err), 0);
	json_t *raw = read_raw(f, "given.json");
	assert_string_equal(ac_state_str(raw, "uuid", ""), "01890a5d-ac96-774b-bcce-b302099a8057");
	assert_string_equal(ac_state_str(raw, "created_at", ""), "2025-01-02T03:04:05.678Z");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(raw, "ports"), 0)),
			 8080);
	assert_string_equal(ac_state_str(json_object_get(raw, "labels"), "team", ""), "a");
	assert_null(json_object_get(raw, "backend")); /* callers supply it */
	json_decref(raw);
	json_decref(st);
}

static void test_duplicate(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	json_t *a = parse("{\"name\":\"dup\",\"image\":\"one\"}");
	json_t *b = parse("{\"name\":\"dup\",\"image\":\"two\"}");
	assert_int_equal(ac_store_create(f->store, a, &err), 0);
	assert_int_equal(ac_store_create(f->store, b, &err), -1);
	assert_int_equal(err->kind, AC_ERR_EXISTS);
	assert_string_equal(err->msg, "sandbox 'dup' already exists");
	assert_int_equal(ac_error_http_status(err), 409);
	ac_error_free(err);
	err = NULL;
	json_t *loaded = NULL;
	assert_int_equal(ac_store_load(f->store, "dup", &loaded, &err), 0);
	assert_string_equal(ac_state_str(loaded, "image", ""), "one");
	json_decref(loaded);
	json_decref(a);
	json_decref(b);
}

static void test_bad_names(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "",
	    "-x",
	    "x-",
	    "a.b",
	    "../escape",
	    "a/b",
	    "..",
	    "sp ace",
	    "x\\y",
	    "é",
	    "0123456789012345678901234567890123456789012345678901234567890123"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *err = NULL;
		json_t *st = json_pack("{s:s}", "name", bad[i]);
		assert_int_equal(ac_store_create(f->store, st, &err), -1);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		assert_non_null(strstr(err->msg, "invalid sandbox name"));
		assert_non_null(strstr(err->msg, "1-63"));
		ac_error_free(err);
		err = NULL;
		json_t *out = NULL;
		assert_int_equal(ac_store_load(f->store, bad[i], &out, &err), -1);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
		err = NULL;
		assert_int_equal(ac_store_remove(f->store, bad[i], &err), -1);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
		err = NULL;
		assert_int_equal(ac_store_lock_sandbox(f->store, bad[i], &err), -1);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
		json_decref(st);
	}
	/* Missing or mistyped name, and a non-object. */
	static const char *const shapes[] = {"{}", "{\"name\":3}", "[]", "\"box\""};
	for (size_t i = 0; i < AC_ARRAY_SIZE(shapes); i++) {
		ac_error_t *err = NULL;
		json_t *st = parse(shapes[i]);
		assert_int_equal(ac_store_create(f->store, st, &err), -1);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
		json_decref(st);
	}
	assert_int_equal(sandboxes_count(f), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/escape.json", f->home);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_unknown_fields_preserved(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	put_file(f, "u.json",
		 "{\"name\":\"u\",\"uuid\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
		 "\"future_field\":{\"nested\":[1,2,{\"x\":null}]},\"vsock_cid\":7,"
		 "\"ratio\":0.5,\"flag\":true,\"ports\":[\"8080:80\"]}");
	json_t *st = NULL;
	assert_int_equal(ac_store_load(f->store, "u", &st, &err), 0);
	json_object_set_new(st, "description", json_string("d"));
	assert_int_equal(ac_store_save(f->store, st, &err), 0);
	json_decref(st);

	json_t *raw = read_raw(f, "u.json");
	json_t *want = parse("{\"nested\":[1,2,{\"x\":null}]}");
	assert_true(json_equal(json_object_get(raw, "future_field"), want));
	assert_int_equal(ac_state_int(raw, "vsock_cid", 0), 7);
	assert_true(ac_state_real(raw, "ratio", 0) == 0.5);
	assert_true(ac_state_bool(raw, "flag", false));
	assert_string_equal(ac_state_str(raw, "description", ""), "d");
	assert_string_equal(ac_state_str(raw, "uuid", ""), "01890a5d-ac96-774b-bcce-b302099a8057");
	assert_string_equal(json_string_value(json_array_get(json_object_get(raw, "ports"), 0)),
			    "8080:80");
	json_decref(want);
	json_decref(raw);
}

static void test_uuid_backfill(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	put_file(f, "nouuid.json", "{\"name\":\"nouuid\",\"image\":\"x\"}");
	put_file(f, "baduuid.json", "{\"name\":\"baduuid\",\"uuid\":\"not-a-uuid\"}");
	put_file(f, "numuuid.json", "{\"name\":\"numuuid\",\"uuid\":12}");

	static const char *const names[] = {"nouuid", "baduuid", "numuuid"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(names); i++) {
		json_t *st = NULL;
		assert_int_equal(ac_store_load(f->store, names[i], &st, &err), 0);
		const char *uuid = ac_state_str(st, "uuid", NULL);
		assert_true(ac_uuid_valid(uuid));
		assert_int_equal(uuid[14], '7');
		/* Defaults appear in the returned object... */
		assert_true(json_is_array(json_object_get(st, "ports")));
		assert_true(json_is_object(json_object_get(st, "labels")));

		char file[128];
		snprintf(file, sizeof(file), "%s.json", names[i]);
		json_t *raw = read_raw(f, file);
		assert_string_equal(ac_state_str(raw, "uuid", ""), uuid); /* persisted */
		assert_null(json_object_get(raw, "labels"));		  /* ...but are not saved */
		json_decref(raw);

		json_t *again = NULL;
		assert_int_equal(ac_store_load(f->store, names[i], &again, &err), 0);
		assert_string_equal(ac_state_str(again, "uuid", ""), uuid); /* stable */
		json_decref(again);
		json_decref(st);
	}
	json_t *raw = read_raw(f, "nouuid.json");
	assert_string_equal(ac_state_str(raw, "image", ""), "x");
	json_decref(raw);
}

static void test_backfill_defers_to_lock_holder(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	put_file(f, "held.json", "{\"name\":\"held\"}");
	/* The caller holds the sandbox lock: load must neither deadlock nor write behind
	 * the holder's back; the uuid is persisted by the holder's next save. */
	int lock = ac_store_lock_sandbox(f->store, "held", &err);
	assert_true(lock >= 0);
	json_t *st = NULL;
	assert_int_equal(ac_store_load(f->store, "held", &st, &err), 0);
	assert_true(ac_uuid_valid(ac_state_str(st, "uuid", NULL)));
	json_t *raw = read_raw(f, "held.json");
	assert_null(json_object_get(raw, "uuid"));
	json_decref(raw);
	assert_int_equal(ac_store_save(f->store, st, &err), 0);
	close(lock);
	raw = read_raw(f, "held.json");
	assert_string_equal(ac_state_str(raw, "uuid", ""), ac_state_str(st, "uuid", NULL));
	json_decref(raw);
	json_decref(st);
}

static void test_corrupt(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	json_t *ok = parse("{\"name\":\"good\"}");
	assert_int_equal(ac_store_create(f->store, ok, &err), 0);
	json_decref(ok);
	put_file(f, "broken.json", "{\"name\": \"broken\", ");
	put_file(f, "array.json", "[1,2,3]");
	put_file(f, "mismatch.json", "{\"name\":\"other\"}");
	put_file(f, "noname.json", "{\"image\":\"x\"}");
	put_file(f, "empty.json", "");
	/* Not sandbox files: ignored silently. */
	put_file(f, "good.json.tmp.123.abcdef", "garbage");
	put_file(f, "README", "hello");
	put_file(f, "bad name.json", "{}");
	put_file(f, ".json", "{}");
	put_file(f, "-x.json", "{}");

	static const struct {
		const char *name, *reason;
	} cases[] = {
	    {"broken", "invalid JSON"},	    {"array", "not a JSON object"},
	    {"mismatch", "does not match"}, {"noname", "name"},
	    {"empty", "invalid JSON"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *st = NULL;
		assert_int_equal(ac_store_load(f->store, cases[i].name, &st, &err), -1);
		assert_null(st);
		assert_int_equal(err->kind, AC_ERR_INTERNAL);
		char path[512];
		snprintf(path, sizeof(path), "%s/sandboxes/%s.json", f->home, cases[i].name);
		assert_non_null(strstr(err->msg, path));
		assert_non_null(strstr(err->msg, cases[i].reason));
		assert_null(strchr(err->msg, '\n'));
		ac_error_free(err);
		err = NULL;
	}

	json_t *list = NULL, *warnings = NULL;
	assert_int_equal(ac_store_list(f->store, &list, &warnings, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(ac_state_str(json_array_get(list, 0), "name", ""), "good");
	assert_int_equal(json_array_size(warnings), 5);
	/* Sorted by name: array broken empty mismatch noname. */
	static const char *const prefixes[] = {
	    "skipping array.json: ", "skipping broken.json: ", "skipping empty.json: ",
	    "skipping mismatch.json: ", "skipping noname.json: "};
	for (size_t i = 0; i < AC_ARRAY_SIZE(prefixes); i++) {
		const char *w = json_string_value(json_array_get(warnings, i));
		assert_non_null(w);
		assert_memory_equal(w, prefixes[i], strlen(prefixes[i]));
	}
	json_decref(list);

	/* An existing warnings array is appended to; NULL warnings is fine too. */
	assert_int_equal(ac_store_list(f->store, &list, &warnings, &err), 0);
	assert_int_equal(json_array_size(warnings), 10);
	json_decref(list);
	json_decref(warnings);
	assert_int_equal(ac_store_list(f->store, &list, NULL, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
}

static void test_too_large(void **state)
{
	struct fixture *f = *state;
	size_t n = 4 * 1024 * 1024 + 16;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"name\":\"huge\"}", 15);
	big[n] = '\0';
	put_file(f, "huge.json", big);
	free(big);
	json_t *st = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_store_load(f->store, "huge", &st, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INTERNAL);
	assert_non_null(strstr(err->msg, "too large"));
	ac_error_free(err);
	json_t *list = NULL, *warnings = NULL;
	assert_int_equal(ac_store_list(f->store, &list, &warnings, NULL), 0);
	assert_int_equal(json_array_size(list), 0);
	assert_int_equal(json_array_size(warnings), 1);
	json_decref(list);
	json_decref(warnings);
}

static void test_list_sorted(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"charlie", "alpha", "Bravo", "bravo", "a1", "a-0"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(names); i++) {
		json_t *st = json_pack("{s:s}", "name", names[i]);
		assert_int_equal(ac_store_create(f->store, st, NULL), 0);
		json_decref(st);
	}
	json_t *list = NULL;
	assert_int_equal(ac_store_list(f->store, &list, NULL, NULL), 0);
	static const char *const want[] = {"Bravo", "a-0", "a1", "alpha", "bravo", "charlie"};
	assert_int_equal(json_array_size(list), AC_ARRAY_SIZE(want));
	for (size_t i = 0; i < AC_ARRAY_SIZE(want); i++)
		assert_string_equal(ac_state_str(json_array_get(list, i), "name", ""), want[i]);
	json_decref(list);
}

static void test_accessors(void **state)
{
	json_t *st = parse("{\"s\":\"str\",\"i\":42,\"r\":1.5,\"b\":true,\"f\":false,\"n\":null,"
			   "\"big\":9007199254740993}");
	assert_string_equal(ac_state_str(st, "s", "d"), "str");
	assert_string_equal(ac_state_str(st, "i", "d"), "d");
	assert_string_equal(ac_state_str(st, "missing", "d"), "d");
	assert_null(ac_state_str(st, "n", NULL));
	assert_int_equal(ac_state_int(st, "i", -1), 42);
	assert_int_equal(ac_state_int(st, "r", -1), -1);
	assert_int_equal(ac_state_int(st, "s", -1), -1);
	assert_true(ac_state_int(st, "big", 0) == 9007199254740993LL);
	assert_true(ac_state_real(st, "r", 0) == 1.5);
	assert_true(ac_state_real(st, "i", 0) == 42.0);
	assert_true(ac_state_real(st, "b", -2) == -2);
	assert_true(ac_state_bool(st, "b", false));
	assert_false(ac_state_bool(st, "f", true));
	assert_true(ac_state_bool(st, "i", true));
	assert_true(ac_state_bool(st, "n", true));
	json_t *arr = parse("[1]");
	assert_int_equal(ac_state_int(arr, "i", 5), 5);
	assert_int_equal(ac_state_int(NULL, "i", 6), 6);
	assert_string_equal(ac_state_str(NULL, "s", "x"), "x");
	assert_true(ac_state_real(NULL, "r", 2.5) == 2.5);
	assert_false(ac_state_bool(NULL, "b", false));
	json_decref(arr);
	json_decref(st);
}

static void test_sandbox_lock(void **state)
{
	struct fixture *f = *state;
	ac_error_t *err = NULL;
	char path[512];
	snprintf(path, sizeof(path), "%s/locks/box.lock", f->home);

	int fd = ac_store_lock_sandbox(f->store, "box", &err);
	assert_true(fd >= 0);
	assert_int_equal(access(path, F_OK), 0);
	/* A second descriptor cannot take it while held. */
	int other = open(path, O_RDWR | O_CLOEXEC);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	close(other);
	ac_store_unlink_sandbox_lock(f->store, "box");
	assert_int_equal(access(path, F_OK), -1);
	close(fd);

	/* A child holds the lock, unlinks it (as remove does) and exits; the parent, blocked
	 * on the old inode meanwhile, must notice and lock the new file instead. */
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = ac_test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		int cfd = ac_store_lock_sandbox(f->store, "box", NULL);
		if (cfd < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(2);
		usleep(200 * 1000);
		ac_store_unlink_sandbox_lock(f->store, "box");
		_exit(0);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	fd = ac_store_lock_sandbox(f->store, "box", &err);
	assert_true(fd >= 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct stat held, cur;
	assert_int_equal(fstat(fd, &held), 0);
	assert_int_equal(stat(path, &cur), 0);
	assert_true(held.st_ino == cur.st_ino);
	close(fd);

	int g = ac_store_lock_global(f->store, &err);
	assert_true(g >= 0);
	snprintf(path, sizeof(path), "%s/.lock", f->home);
	other = open(path, O_RDWR | O_CLOEXEC);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
	close(other);
	close(g);
}

/* Forks n children that wait on a pipe, then all create at once. Returns the number of
 * successes; *exists counts AC_ERR_EXISTS failures. */
static int race_creates(struct fixture *f, int n, bool same_name, int *exists)
{
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pids[64];
	for (int i = 0; i < n; i++) {
		pids[i] = ac_test_fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			char c;
			if (read(go[0], &c, 1) != 0)
				_exit(10);
			ac_store_t *s = NULL;
			if (ac_store_open(f->home, &s, NULL) < 0)
				_exit(11);
			char name[32];
			snprintf(name, sizeof(name), same_name ? "same" : "box-%d", i);
			json_t *st = json_pack("{s:s,s:i}", "name", name, "child", i);
			ac_error_t *err = NULL;
			int r = ac_store_create(s, st, &err);
			int code = r == 0 ? 0 : err->kind == AC_ERR_EXISTS ? 1 : 12;
			_exit(code);
		}
	}
	close(go[0]);
	close(go[1]); /* EOF releases every child at once */
	int ok = 0;
	*exists = 0;
	for (int i = 0; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 0)
			ok++;
		else if (WEXITSTATUS(status) == 1)
			(*exists)++;
		else
			fail_msg("child %d exited with %d", i, WEXITSTATUS(status));
	}
	return ok;
}

static void test_concurrent_distinct(void **state)
{
	struct fixture *f = *state;
	int exists;
	assert_int_equal(race_creates(f, 20, false, &exists), 20);
	assert_int_equal(exists, 0);
	json_t *list = NULL, *warnings = NULL;
	assert_int_equal(ac_store_list(f->store, &list, &warnings, NULL), 0);
	assert_int_equal(json_array_size(list), 20);
	assert_int_equal(json_array_size(warnings), 0);
	json_t *uuids = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		json_object_set(uuids, ac_state_str(v, "uuid", ""), json_true());
	}
	assert_int_equal(json_object_size(uuids), 20); /* all distinct */
	json_decref(uuids);
	json_decref(list);
	json_decref(warnings);
	assert_int_equal(sandboxes_count(f), 20); /* no temp files left */
}

static void test_concurrent_same(void **state)
{
	struct fixture *f = *state;
	int exists;
	assert_int_equal(race_creates(f, 20, true, &exists), 1);
	assert_int_equal(exists, 19);
	json_t *st = NULL;
	assert_int_equal(ac_store_load(f->store, "same", &st, NULL), 0);
	assert_true(json_is_integer(json_object_get(st, "child")));
	json_decref(st);
	assert_int_equal(sandboxes_count(f), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_layout),
	    T(test_home_resolution),
	    T(test_round_trip),
	    T(test_create_keeps_given_fields),
	    T(test_duplicate),
	    T(test_bad_names),
	    T(test_unknown_fields_preserved),
	    T(test_uuid_backfill),
	    T(test_backfill_defers_to_lock_holder),
	    T(test_corrupt),
	    T(test_too_large),
	    T(test_list_sorted),
	    T(test_accessors),
	    T(test_sandbox_lock),
	    T(test_concurrent_distinct),
	    T(test_concurrent_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
