/* Unit tests for named volumes: src/image/volume.c (specs, the store of volumes) and
 * src/core/volumes.c (users, refusal while in use, the state's "volumes"), each in a
 * fresh mkdtemp home. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "agentcell/store.h"
#include "base/io.h"
#include "base/time.h"
#include "image/image.h"

struct fixture {
	char *home;
	ac_manager_t *m;
};

static int setup(void **state)
{
	char tmpl[] = "/tmp/ac-test-volume-XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d)
		return -1;
	struct fixture *f = calloc(1, sizeof(*f));
	f->home = strdup(d);
	ac_error_t *err = NULL;
	if (ac_manager_open(f->home, &f->m, &err) < 0) {
		fprintf(stderr, "ac_manager_open: %s\n", err->msg);
		ac_error_free(err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ac_manager_free(f->m);
	ac_error_t *err = NULL;
	int r = ac_rm_rf_at(AT_FDCWD, f->home, &err);
	ac_error_free(err);
	free(f->home);
	free(f);
	return r;
}

/* ------------------------------------------------------------------ specs */

static void spec_ok(const char *s, const char *name, const char *path, bool ro)
{
	json_t *v = NULL;
	ac_error_t *e = NULL;
	int rc = ac_volume_spec_parse(s, &v, &e);
	if (rc < 0)
		fail_msg("'%s' refused: %s", s, e->msg);
	assert_string_equal(json_string_value(json_object_get(v, "name")), name);
	assert_string_equal(json_string_value(json_object_get(v, "path")), path);
	assert_true(json_is_boolean(json_object_get(v, "read_only")));
	assert_int_equal(json_is_true(json_object_get(v, "read_only")), ro);
	assert_int_equal(json_object_size(v), 3);
	json_decref(v);
}

/* Refused as AC_ERR_INVALID with a one-line message containing want. */
static void spec_bad(const char *s, const char *want)
{
	json_t *v = NULL;
	ac_error_t *e = NULL;
	if (ac_volume_spec_parse(s, &v, &e) == 0)
		fail_msg("'%s' accepted as %s", s, json_string_value(json_object_get(v, "path")));
	assert_non_null(e);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_null(strchr(e->msg, '\n'));
	if (!strstr(e->msg, want))
		fail_msg("'%s': message '%s' lacks '%s'", s, e->msg, want);
	ac_error_free(e);
}

static void test_spec_valid(void **state)
{
	spec_ok("data:/data", "data", "/data", false);
	spec_ok("data:/data:ro", "data", "/data", true);
	spec_ok("data:/data:rw", "data", "/data", false);
	spec_ok("a.b_c-1:/srv/cache", "a.b_c-1", "/srv/cache", false);
	spec_ok("v://a//b/./c/", "v", "/a/b/c", false);
	spec_ok("v:/a/./b:ro", "v", "/a/b", true);
	spec_ok("v:/device", "v", "/device", false); /* not under /dev */
	spec_ok("v:/procfs/x", "v", "/procfs/x", false);
	spec_ok("v:/a/...", "v", "/a/...", false); /* a name, not a parent */
}

static void test_spec_invalid(void **state)
{
	spec_bad("data", "NAME:/path");
	spec_bad(":/data", "NAME:/path");
	spec_bad("-x:/data", "invalid volume name");
	spec_bad("a b:/data", "invalid volume name");
	spec_bad("x.json:/data", "invalid volume name");
	char longname[80];
	memset(longname, 'a', 64);
	strcpy(longname + 64, ":/data");
	spec_bad(longname, "NAME:/path");
	spec_bad("data:", "absolute");
	spec_bad("data:data", "absolute");
	spec_bad("data::ro", "absolute");
	spec_bad("data:relative/x:ro", "absolute");
	spec_bad("data:/", "cannot be a volume's mount point");
	spec_bad("data:///", "cannot be a volume's mount point");
	spec_bad("data:/./", "cannot be a volume's mount point");
	spec_bad("data:/a/../etc", "'..'");
	spec_bad("data:/..", "'..'");
	spec_bad("data:/proc", "/proc");
	spec_bad("data:/proc/sys", "/proc");
	spec_bad("data://sys/", "/sys");
	spec_bad("data:/dev/shm", "/dev");
	spec_bad("data:/./dev", "/dev");
	spec_bad("data:/a:b", "':'");
	spec_bad("data:/a:ro:ro", "':'");
	spec_bad("data:/a\nb", "control");
	spec_bad("data:/x:RO", "':'");
	char longpath[1200] = "v:/";
	memset(longpath + 3, 'x', 1100);
	longpath[1103] = '\0';
	spec_bad(longpath, "too long");
}

/* ------------------------------------------------------------------ the store */

static void test_create_layout(void **state)
{
	struct fixture *f = *state;
	json_t *rec = NULL, *labels = json_pack("{ss}", "team", "a");
	ac_error_t *e = NULL;
	assert_int_equal(ac_volume_create_labeled(f->home, "cache", labels, &rec, &e), 0);
	json_decref(labels);
	assert_string_equal(json_string_value(json_object_get(rec, "name")), "cache");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "labels"), "team")), "a");
	int64_t ms;
	assert_int_equal(
	    ac_time_parse_rfc3339(json_string_value(json_object_get(rec, "created_at")), &ms), 0);
	json_decref(rec);

	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/volumes", f->home);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(p, sizeof(p), "%s/volumes/cache/data", f->home);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, geteuid());
	/* The record on disk is the one returned, without path and size. */
	char *text = NULL;
	size_t len;
	snprintf(p, sizeof(p), "%s/volumes/cache.json", f->home);
	assert_int_equal(ac_read_file_at(AT_FDCWD, p, 65536, &text, &len, NULL), 0);
	json_t *disk = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(disk);
	assert_null(json_object_get(disk, "path"));
	assert_string_equal(json_string_value(json_object_get(disk, "name")), "cache");
	json_decref(disk);

	char buf[PATH_MAX], want[PATH_MAX];
	assert_int_equal(ac_volume_path(f->home, "cache", buf, sizeof(buf), NULL), 0);
	snprintf(want, sizeof(want), "%s/volumes/cache/data", f->home);
	assert_string_equal(buf, want);
}

static void test_create_refusals(void **state)
{
	struct fixture *f = *state;
	ac_error_t *e = NULL;
	assert_int_equal(ac_volume_create(f->home, "v1", NULL, NULL), 0);
	assert_int_equal(ac_volume_create(f->home, "v1", NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_EXISTS);
	assert_non_null(strstr(e->msg, "'v1' already exists"));
	ac_error_free(e);
	e = NULL;
	static const char *const bad[] = {"",	 ".",	"..",	  ".hidden", "-x", "_x",
					  "a/b", "a b", "x.json", "a:b",     "é"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(ac_volume_create(f->home, bad[i], NULL, &e), -1);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
		e = NULL;
	}
	char n63[64], n64[65];
	memset(n63, 'a', 63);
	n63[63] = 0;
	memset(n64, 'b', 64);
	n64[64] = 0;
	assert_int_equal(ac_volume_create(f->home, n63, NULL, NULL), 0);
	assert_int_equal(ac_volume_create(f->home, n64, NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
}

static void test_list_inspect_size(void **state)
{
	struct fixture *f = *state;
	json_t *list = NULL;
	/* No volumes directory yet: an empty list. */
	assert_int_equal(ac_volume_list(f->home, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	assert_int_equal(ac_volume_create(f->home, "zeta", NULL, NULL), 0);
	assert_int_equal(ac_volume_create(f->home, "alpha", NULL, NULL), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/volumes/alpha/data/sub", f->home);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/volumes/alpha/data/sub/f", f->home);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "12345", 5, 0644, NULL), 0);
	snprintf(p, sizeof(p), "%s/volumes/alpha/data/link", f->home);
	assert_int_equal(symlink("/", p), 0); /* a link counts its own size, never its target */
	/* Not volumes: leftovers, stray files, a record without its directory. */
	snprintf(p, sizeof(p), "%s/volumes/.tmp-x", f->home);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/volumes/ghost.json", f->home);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "{}", 2, 0600, NULL), 0);

	assert_int_equal(ac_volume_list(f->home, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 2);
	json_t *a = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "alpha");
	assert_int_equal(json_integer_value(json_object_get(a, "size")), 6);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
			    "zeta");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "size")), 0);
	json_decref(list);

	json_t *rec = NULL;
	assert_int_equal(ac_volume_inspect(f->home, "alpha", &rec, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(rec, "size")), 6);
	assert_non_null(
	    strstr(json_string_value(json_object_get(rec, "path")), "/volumes/alpha/data"));
	json_decref(rec);
	ac_error_t *e = NULL;
	assert_int_equal(ac_volume_inspect(f->home, "ghost", &rec, &e), -1);
	assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
	assert_non_null(strstr(e->msg, "agentcell volume create ghost"));
	ac_error_free(e);

	/* A create sweeps the leftover. */
	assert_int_equal(ac_volume_create(f->home, "third", NULL, NULL), 0);
	snprintf(p, sizeof(p), "%s/volumes/.tmp-x", f->home);
	struct stat st;
	assert_int_equal(lstat(p, &st), -1);
}

static void test_missing_record(void **state)
{
	struct fixture *f = *state;
	/* A create killed between its rename and its record: the directory is the truth. */
	assert_int_equal(ac_volume_create(f->home, "bare", NULL, NULL), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/volumes/bare.json", f->home);
	assert_int_equal(unlink(p), 0);
	json_t *rec = NULL;
	assert_int_equal(ac_volume_inspect(f->home, "bare", &rec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "name")), "bare");
	assert_true(json_is_string(json_object_get(rec, "created_at")));
	assert_true(json_is_object(json_object_get(rec, "labels")));
	json_decref(rec);
	/* And a corrupt one. */
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, p, "[1,", 3, 0600, NULL), 0);
	assert_int_equal(ac_volume_inspect(f->home, "bare", &rec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "name")), "bare");
	json_decref(rec);
}

static void test_remove(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(ac_volume_create(f->home, "gone", NULL, NULL), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/volumes/gone/data/d", f->home);
	assert_int_equal(mkdir(p, 0500), 0);
	ac_error_t *e = NULL;
	char *users[] = {"box1", "box2", NULL};
	assert_int_equal(ac_volume_remove(f->home, "gone", users, &e), -1);
	assert_int_equal(e->kind, AC_ERR_STATE);
	assert_non_null(strstr(e->msg, "'box1'"));
	assert_non_null(strstr(e->msg, "'box2'"));
	ac_error_free(e);
	e = NULL;
	char *none[] = {NULL};
	assert_int_equal(ac_volume_remove(f->home, "gone", none, &e), 0);
	struct stat st;
	snprintf(p, sizeof(p), "%s/volumes/gone", f->home);
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/volumes/gone.json", f->home);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(ac_volume_remove(f->home, "gone", NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
	ac_error_free(e);
	e = NULL;
	char buf[PATH_MAX];
	assert_int_equal(ac_volume_path(f->home, "gone", buf, sizeof(buf), &e), -1);
	assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
	ac_error_free(e);
	/* The name is free again. */
	assert_int_equal(ac_volume_create(f->home, "gone", NULL, NULL), 0);
}

/* ------------------------------------------------------------------ the manager */

static void add_state(struct fixture *f, const char *name, const char *vol)
{
	json_t *st = json_pack("{ss ss s[{ss ss sb}]}", "name", name, "backend", "native",
			       "volumes", "name", vol, "path", "/data", "read_only", 0);
	ac_error_t *e = NULL;
	if (ac_store_create(ac_manager_store(f->m), st, &e) < 0)
		fail_msg("ac_store_create: %s", e->msg);
	json_decref(st);
}

static void test_manager_users(void **state)
{
	struct fixture *f = *state;
	char *labels[] = {"k=v", NULL}, *bad_labels[] = {"no-equals", NULL};
	json_t *rec = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_manager_volume_create(f->m, "shared", bad_labels, NULL, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	e = NULL;
	assert_int_equal(ac_manager_volume_create(f->m, "shared", labels, &rec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "labels"), "k")),
			    "v");
	assert_int_equal(json_array_size(json_object_get(rec, "used_by")), 0);
	json_decref(rec);
	assert_int_equal(ac_manager_volume_create(f->m, "other", NULL, NULL, NULL), 0);
	add_state(f, "boxb", "shared");
	add_state(f, "boxa", "shared");
	add_state(f, "boxc", "other");

	assert_int_equal(ac_manager_volume_inspect(f->m, "shared", &rec, NULL), 0);
	json_t *u = json_object_get(rec, "used_by");
	assert_int_equal(json_array_size(u), 2);
	assert_string_equal(json_string_value(json_array_get(u, 0)), "boxa");
	assert_string_equal(json_string_value(json_array_get(u, 1)), "boxb");
	json_decref(rec);
	json_t *list = NULL;
	assert_int_equal(ac_manager_volume_list(f->m, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(json_array_get(list, 0), "used_by"), 0)),
			    "boxc");
	json_decref(list);

	assert_int_equal(ac_manager_volume_remove(f->m, "shared", &e), -1);
	assert_int_equal(e->kind, AC_ERR_STATE);
	assert_non_null(strstr(e->msg, "'boxa'"));
	ac_error_free(e);
	e = NULL;
	assert_int_equal(ac_store_remove(ac_manager_store(f->m), "boxa", NULL), 0);
	assert_int_equal(ac_store_remove(ac_manager_store(f->m), "boxb", NULL), 0);
	assert_int_equal(ac_manager_volume_remove(f->m, "shared", NULL), 0);

	/* Both operations are in the audit log. */
	json_t *recs = NULL;
	assert_int_equal(ac_audit_read(f->m, NULL, 0, &recs, NULL), 0);
	int created = 0, removed = 0;
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
	{
		const char *ev = json_string_value(json_object_get(r, "event"));
		const char *vol =
		    json_string_value(json_object_get(json_object_get(r, "details"), "volume"));
		if (ev && vol && !strcmp(ev, "volume_create"))
			created++;
		if (ev && vol && !strcmp(ev, "volume_remove") && !strcmp(vol, "shared"))
			removed++;
	}
	json_decref(recs);
	assert_int_equal(created, 2);
	assert_int_equal(removed, 1);
}

static int build(struct fixture *f, const char *backend, char **vols, json_t **st, ac_error_t **e)
{
	ac_sandbox_opts_t o = {.backend = backend, .volumes = vols};
	return ac_manager_build_state(f->m, "box", &o, st, e);
}

static void test_build_state(void **state)
{
	struct fixture *f = *state;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_manager_volume_create(f->m, "v", NULL, NULL, NULL), 0);
	char *one[] = {"v:/data:ro", NULL};
	/* A backend without volumes says so, whatever it is. */
	assert_int_equal(build(f, "podman", one, &st, &e), -1);
	assert_int_equal(e->kind, AC_ERR_UNSUPPORTED);
	assert_string_equal(e->msg, "volumes are not supported by the podman backend");
	ac_error_free(e);
	e = NULL;
	/* No volumes: no "volumes" in the state. */
	assert_int_equal(build(f, NULL, NULL, &st, NULL), 0);
	assert_null(json_object_get(st, "volumes"));
	json_decref(st);
	if (!(ac_backend_find("native")->caps & AC_CAP_VOLUMES)) {
		assert_int_equal(build(f, NULL, one, &st, &e), -1);
		assert_int_equal(e->kind, AC_ERR_UNSUPPORTED);
		ac_error_free(e);
		return;
	}
	assert_int_equal(build(f, NULL, one, &st, NULL), 0);
	json_t *v = json_object_get(st, "volumes");
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "path")),
			    "/data");
	assert_true(json_is_true(json_object_get(json_array_get(v, 0), "read_only")));
	json_decref(st);

	char *missing[] = {"v:/data", "nope:/other", NULL};
	assert_int_equal(build(f, NULL, missing, &st, &e), -1);
	assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
	assert_string_equal(
	    e->msg, "volume 'nope' not found: create it with 'agentcell volume create nope'");
	ac_error_free(e);
	e = NULL;
	char *twice[] = {"v:/data", "v:/data/:ro", NULL};
	assert_int_equal(build(f, NULL, twice, &st, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_non_null(strstr(e->msg, "/data"));
	ac_error_free(e);
	e = NULL;
	char *bad[] = {"v:/proc/x", NULL};
	assert_int_equal(build(f, NULL, bad, &st, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	e = NULL;
	/* The same volume at two paths is fine; 33 entries are not. */
	char *two[] = {"v:/a", "v:/b", NULL};
	assert_int_equal(build(f, NULL, two, &st, NULL), 0);
	assert_int_equal(json_array_size(json_object_get(st, "volumes")), 2);
	json_decref(st);
	char *many[AC_VOLUMES_MAX + 2], bufs[AC_VOLUMES_MAX + 1][16];
	for (int i = 0; i <= AC_VOLUMES_MAX; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "v:/m%d", i);
		many[i] = bufs[i];
	}
	many[AC_VOLUMES_MAX + 1] = NULL;
	assert_int_equal(build(f, NULL, many, &st, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_non_null(strstr(e->msg, "at most 32"));
	ac_error_free(e);
	e = NULL;
	many[AC_VOLUMES_MAX] = NULL;
	assert_int_equal(build(f, NULL, many, &st, NULL), 0);
	json_decref(st);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_valid),
	    cmocka_unit_test(test_spec_invalid),
	    T(test_create_layout),
	    T(test_create_refusals),
	    T(test_list_inspect_size),
	    T(test_missing_record),
	    T(test_remove),
	    T(test_manager_users),
	    T(test_build_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
