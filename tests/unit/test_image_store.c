/* Unit tests for the image store (src/image/store.c, src/image/records.c): blobs, layers
 * unpacked once (also under concurrent callers), commit (manifest and config into a record,
 * refs moving between images, templates), lookup by ref/id/prefix/template, list, remove
 * (in-use refusal naming the sandbox, force) and prune, each in a fresh mkdtemp home. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "image/image.h"
#include "image/internal.h"
#include "tarbuild.h"
#include "testfork.h"

struct fx {
	char home[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/ac-test-imgstore-XXXXXX");
	if (mkdtemp(f->home) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ac_rm_rf_at(AT_FDCWD, f->home, NULL);
	free(f);
	return 0;
}

static bool exists(struct fx *f, const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/images/%s", f->home, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

/* A layer holding one file NAME with CONTENT, stored as a blob; digest (72). */
static void make_layer(struct fx *f, const char *name, const char *content, char *digest)
{
	tarbuf_t t = {0};
	tb_entry(&t, name, '0', 0644, content, NULL);
	tb_end(&t);
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_blob_put(f->home, t.p, t.len, NULL, digest, &err), 0);
	free(t.p);
}

static void ensure(struct fx *f, const char *digest, uint64_t *size)
{
	ac_error_t *err = NULL;
	if (ac_image_layer_ensure(f->home, digest, size, &err) < 0)
		fail_msg("layer_ensure: %s", err->msg);
}

/* The layer's diff_id from layers/<hex>.json. */
static void diff_id_of(struct fx *f, const char *digest, char *out)
{
	int storefd = ac_image_open_store(f->home, NULL);
	char rel[160];
	snprintf(rel, sizeof(rel), "layers/%s.json", digest + 7);
	json_t *j = NULL;
	assert_int_equal(ac_image_json_read(storefd, rel, false, &j, NULL), 0);
	snprintf(out, 72, "%s", json_string_value(json_object_get(j, "diff_id")));
	json_decref(j);
	close(storefd);
}

/* Puts a config (with env/cmd and the layers' diff_ids) and a manifest; manifest digest
 * into mdigest, config digest into cdigest. */
static void make_image(struct fx *f, const char *const *layers, size_t n, const char *tag,
		       const char *media_type, char *mdigest, char *cdigest)
{
	json_t *diff_ids = json_array(), *mlayers = json_array();
	for (size_t i = 0; i < n; i++) {
		char d[72];
		diff_id_of(f, layers[i], d);
		json_array_append_new(diff_ids, json_string(d));
		json_array_append_new(mlayers, json_pack("{s:s, s:s, s:i}", "mediaType",
							 "application/vnd.oci.image.layer.v1.tar",
							 "digest", layers[i], "size", 2048));
	}
	json_t *cfg = json_pack(
	    "{s:s, s:s, s:s, s:{s:[s,s], s:s, s:s, s:[s], s:[s,s], s:{s:s}}, s:{s:s, s:o}}",
	    "architecture", "amd64", "os", "linux", "created", tag, "config", "Env",
	    "PATH=/usr/bin", "LANG=C", "WorkingDir", "/app", "User", "1000:1000", "Entrypoint",
	    "/entry", "Cmd", "run", tag, "Labels", "org.example", "yes", "rootfs", "type", "layers",
	    "diff_ids", diff_ids);
	char *s = json_dumps(cfg, JSON_COMPACT);
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_blob_put(f->home, s, strlen(s), NULL, cdigest, &err), 0);
	free(s);
	json_decref(cfg);
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:o}", "schemaVersion", 2, "mediaType",
			      media_type, "config", "mediaType",
			      strcmp(media_type, AC_MT_DOCKER_MANIFEST) == 0 ? AC_MT_DOCKER_CONFIG
									     : AC_MT_OCI_CONFIG,
			      "digest", cdigest, "size", 100, "layers", mlayers);
	s = json_dumps(m, JSON_COMPACT);
	assert_int_equal(ac_image_blob_put(f->home, s, strlen(s), NULL, mdigest, &err), 0);
	free(s);
	json_decref(m);
}

static json_t *commit(struct fx *f, const char *mdigest, const char *ref, json_t *tpl)
{
	ac_error_t *err = NULL;
	json_t *rec = NULL;
	if (ac_image_commit(f->home, mdigest, ref, "oci", tpl, &rec, &err) < 0)
		fail_msg("commit: %s", err->msg);
	return rec;
}

static int lookup_kind(struct fx *f, const char *name, bool tpl, json_t **rec, char *msg)
{
	ac_error_t *err = NULL;
	json_t *r = NULL;
	if (ac_image_lookup(f->home, name, tpl, &r, &err) < 0) {
		int k = err->kind;
		if (msg)
			snprintf(msg, 1024, "%s", err->msg);
		ac_error_free(err);
		return k;
	}
	if (rec)
		*rec = r;
	else
		json_decref(r);
	return 0;
}

static void test_blob_put(void **state)
{
	struct fx *f = *state;
	char d[72];
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_blob_put(f->home, "abc", 3, NULL, d, &err), 0);
	assert_string_equal(
	    d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(exists(
	    f, "blobs/sha256/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	/* Again with the right expectation: fine; with a wrong one: AC_ERR_BACKEND. */
	assert_int_equal(ac_image_blob_put(f->home, "abc", 3, d, NULL, &err), 0);
	assert_int_equal(ac_image_blob_put(f->home, "abd", 3, d, NULL, &err), -1);
	assert_int_equal(err->kind, AC_ERR_BACKEND);
	assert_non_null(strstr(err->msg, "does not match its digest"));
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_image_blob_put(f->home, "abc", 3, "sha256:xyz", NULL, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	char p[256];
	snprintf(p, sizeof(p), "%s/images", f->home);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_layer_ensure(void **state)
{
	struct fx *f = *state;
	char d[72];
	make_layer(f, "hello", "world!", d);
	uint64_t size = 0;
	ensure(f, d, &size);
	assert_int_equal(size, 6);
	char rel[200];
	snprintf(rel, sizeof(rel), "layers/%s/hello", d + 7);
	assert_true(exists(f, rel));
	snprintf(rel, sizeof(rel), "layers/%s.json", d + 7);
	assert_true(exists(f, rel));
	char did[72];
	diff_id_of(f, d, did);
	assert_string_equal(did, d); /* plain tar */
	/* A second call finds it: remove a file inside to see it is not unpacked again. */
	char p[300];
	snprintf(p, sizeof(p), "%s/images/layers/%s/hello", f->home, d + 7);
	unlink(p);
	size = 0;
	ensure(f, d, &size);
	assert_int_equal(size, 6);
	struct stat st;
	assert_int_not_equal(lstat(p, &st), 0);
	char dir[300];
	ac_image_layer_dir(f->home, d + 7, dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/images/layers/%s", f->home, d + 7);
	assert_string_equal(dir, p);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
}

static void test_layer_ensure_bad(void **state)
{
	struct fx *f = *state;
	ac_error_t *err = NULL;
	/* Not in the store. */
	assert_int_equal(
	    ac_image_layer_ensure(
		f->home, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		NULL, &err),
	    -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;
	/* A hostile layer: refused, and no layer directory or temporary left. */
	tarbuf_t t = {0};
	tb_entry(&t, "../escape", '0', 0644, "x", NULL);
	tb_end(&t);
	char d[72];
	assert_int_equal(ac_image_blob_put(f->home, t.p, t.len, NULL, d, &err), 0);
	free(t.p);
	assert_int_equal(ac_image_layer_ensure(f->home, d, NULL, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "'..'"));
	ac_error_free(err);
	char rel[200];
	snprintf(rel, sizeof(rel), "layers/%s", d + 7);
	assert_false(exists(f, rel));
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "ls %s/images/layers | grep -q '^tmp\\.'", f->home);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/escape", f->home);
	struct stat st;
	assert_int_not_equal(lstat(cmd, &st), 0);
	snprintf(cmd, sizeof(cmd), "%s/images/layers/escape", f->home);
	assert_int_not_equal(lstat(cmd, &st), 0);
}

static void test_layer_ensure_concurrent(void **state)
{
	struct fx *f = *state;
	/* A layer big enough that the two unpacks overlap. */
	tarbuf_t t = {0};
	char *big = malloc(1 << 20);
	memset(big, 'z', 1 << 20);
	for (int i = 0; i < 64; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%d", i);
		tb_entry_full(&t, name, '0', 0644, 0, 0, big, 1 << 20, NULL, 0, 0);
	}
	tb_end(&t);
	free(big);
	char d[72];
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_blob_put(f->home, t.p, t.len, NULL, d, &err), 0);
	free(t.p);
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = ac_test_fork();
		if (kids[i] == 0) {
			uint64_t size = 0;
			int r = ac_image_layer_ensure(f->home, d, &size, NULL);
			_exit(r == 0 && size == 64u << 20 ? 0 : 1);
		}
	}
	for (int i = 0; i < 3; i++) {
		int status;
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "ls %s/images/layers | grep -q '^tmp\\.'", f->home);
	assert_int_not_equal(system(cmd), 0);
}

static void test_commit_lookup(void **state)
{
	struct fx *f = *state;
	char l1[72], l2[72], md[72], cd[72];
	make_layer(f, "base", "base!", l1);
	make_layer(f, "app", "app", l2);
	ensure(f, l1, NULL);
	ensure(f, l2, NULL);
	const char *layers[] = {l1, l2};
	make_image(f, layers, 2, "2024-01-01T00:00:00Z", AC_MT_OCI_MANIFEST, md, cd);
	json_t *rec = commit(f, md, "docker.io/library/app:1", NULL);
	assert_string_equal(json_string_value(json_object_get(rec, "id")), cd);
	assert_string_equal(json_string_value(json_object_get(rec, "manifest_digest")), md);
	assert_string_equal(json_string_value(json_object_get(rec, "manifest_media_type")),
			    AC_MT_OCI_MANIFEST);
	assert_string_equal(json_string_value(json_object_get(rec, "os")), "linux");
	assert_string_equal(json_string_value(json_object_get(rec, "architecture")), "amd64");
	assert_string_equal(json_string_value(json_object_get(rec, "base")), "oci");
	assert_int_equal(json_integer_value(json_object_get(rec, "size")), 8);
	json_t *refs = json_object_get(rec, "refs");
	assert_int_equal(json_array_size(refs), 1);
	assert_string_equal(json_string_value(json_array_get(refs, 0)), "docker.io/library/app:1");
	json_t *ls = json_object_get(rec, "layers");
	assert_int_equal(json_array_size(ls), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ls, 0), "digest")),
			    l1);
	json_t *c = json_object_get(rec, "config");
	assert_int_equal(json_array_size(json_object_get(c, "env")), 2);
	assert_string_equal(json_string_value(json_object_get(c, "workdir")), "/app");
	assert_string_equal(json_string_value(json_object_get(c, "user")), "1000:1000");
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "entrypoint"), 0)),
			    "/entry");
	assert_int_equal(json_array_size(json_object_get(c, "cmd")), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(c, "labels"), "org.example")), "yes");
	assert_true(json_is_null(json_object_get(rec, "template")));
	json_decref(rec);

	/* Lookup by short ref, canonical ref, id, prefixes. */
	char prefix[32];
	json_t *r = NULL;
	assert_int_equal(lookup_kind(f, "app:1", false, &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), cd);
	json_decref(r);
	assert_int_equal(lookup_kind(f, "docker.io/library/app:1", false, NULL, NULL), 0);
	assert_int_equal(lookup_kind(f, cd, false, NULL, NULL), 0);
	snprintf(prefix, sizeof(prefix), "%.12s", cd + 7);
	assert_int_equal(lookup_kind(f, prefix, false, NULL, NULL), 0);
	snprintf(prefix, sizeof(prefix), "sha256:%.16s", cd + 7);
	assert_int_equal(lookup_kind(f, prefix, false, NULL, NULL), 0);
	/* By the manifest digest. */
	char byd[200];
	snprintf(byd, sizeof(byd), "app@%s", md);
	assert_int_equal(lookup_kind(f, byd, false, NULL, NULL), 0);
	char msg[1024];
	assert_int_equal(lookup_kind(f, "app:2", false, NULL, msg), AC_ERR_NOT_FOUND);
	assert_string_equal(msg, "image 'app:2' is not in the store (agentcell image pull app:2)");
	assert_int_equal(lookup_kind(f, "BAD REF", false, NULL, msg), AC_ERR_INVALID);
	assert_int_equal(lookup_kind(f, "app", true, NULL, msg), AC_ERR_NOT_FOUND);

	/* The same manifest committed again under another ref: one record, two refs. */
	rec = commit(f, md, "registry.local:5000/team/app:latest", NULL);
	assert_int_equal(json_array_size(json_object_get(rec, "refs")), 2);
	json_decref(rec);
}

static void test_ref_moves(void **state)
{
	struct fx *f = *state;
	char l1[72], l2[72], md1[72], cd1[72], md2[72], cd2[72];
	make_layer(f, "a", "1", l1);
	make_layer(f, "b", "2", l2);
	ensure(f, l1, NULL);
	ensure(f, l2, NULL);
	const char *a[] = {l1}, *b[] = {l2};
	make_image(f, a, 1, "2024-01-01T00:00:00Z", AC_MT_DOCKER_MANIFEST, md1, cd1);
	make_image(f, b, 1, "2025-01-01T00:00:00Z", AC_MT_OCI_MANIFEST, md2, cd2);
	json_decref(commit(f, md1, "docker.io/library/x:latest", NULL));
	json_decref(commit(f, md2, "docker.io/library/x:latest", NULL));
	json_t *r = NULL;
	assert_int_equal(lookup_kind(f, "x", false, &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), cd2);
	json_decref(r);
	assert_int_equal(lookup_kind(f, cd1, false, &r, NULL), 0);
	assert_int_equal(json_array_size(json_object_get(r, "refs")), 0);
	assert_string_equal(json_string_value(json_object_get(r, "manifest_media_type")),
			    AC_MT_DOCKER_MANIFEST);
	json_decref(r);
	/* The record file of the old image was rewritten without the ref, too. */
	char p[300];
	snprintf(p, sizeof(p), "%s/images/records/%s.json", f->home, cd1 + 7);
	json_t *raw = json_load_file(p, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(raw, "refs")), 0);
	json_decref(raw);

	/* list: newest first; templates apart. */
	json_t *ls = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_list(f->home, false, &ls, &err), 0);
	assert_int_equal(json_array_size(ls), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ls, 0), "id")), cd2);
	json_decref(ls);
	assert_int_equal(ac_image_list(f->home, true, &ls, &err), 0);
	assert_int_equal(json_array_size(ls), 0);
	json_decref(ls);

	/* prune: the untagged image goes with its layer and blobs, the tagged one stays. */
	json_t *removed = NULL;
	uint64_t freed = 0;
	assert_int_equal(ac_image_prune(f->home, NULL, &removed, &freed, &err), 0);
	char *dump = json_dumps(removed, JSON_COMPACT);
	assert_non_null(strstr(dump, cd1));
	assert_non_null(strstr(dump, l1));
	assert_null(strstr(dump, cd2));
	free(dump);
	json_decref(removed);
	assert_true(freed > 0);
	char rel[200];
	snprintf(rel, sizeof(rel), "layers/%s", l1 + 7);
	assert_false(exists(f, rel));
	snprintf(rel, sizeof(rel), "layers/%s", l2 + 7);
	assert_true(exists(f, rel));
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", md1 + 7);
	assert_false(exists(f, rel));
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", md2 + 7);
	assert_true(exists(f, rel));
	assert_int_equal(lookup_kind(f, "x", false, NULL, NULL), 0);
}

static void test_templates(void **state)
{
	struct fx *f = *state;
	char l1[72], md[72], cd[72], md2[72], cd2[72];
	make_layer(f, "t", "t", l1);
	ensure(f, l1, NULL);
	const char *a[] = {l1};
	make_image(f, a, 1, "2024-01-01T00:00:00Z", AC_MT_OCI_MANIFEST, md, cd);
	make_image(f, a, 1, "2024-02-01T00:00:00Z", AC_MT_OCI_MANIFEST, md2, cd2);
	json_t *tpl = json_pack("{s:s, s:s, s:s, s:s}", "name", "py", "description", "Python",
				"from", "box1", "created_at", "2026-01-01T00:00:00.000Z");
	json_t *rec = commit(f, md, NULL, tpl);
	json_decref(tpl);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "template"), "name")), "py");
	json_decref(rec);
	json_t *r = NULL;
	assert_int_equal(lookup_kind(f, "py", true, &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), cd);
	json_decref(r);
	json_t *ls = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_list(f->home, true, &ls, &err), 0);
	assert_int_equal(json_array_size(ls), 1);
	json_decref(ls);
	assert_int_equal(ac_image_list(f->home, false, &ls, &err), 0);
	assert_int_equal(json_array_size(ls), 0);
	json_decref(ls);

	/* Replacing the template: the old image loses its template. */
	tpl = json_pack("{s:s, s:n, s:s, s:s}", "name", "py", "description", "from", "box2",
			"created_at", "2026-01-02T00:00:00.000Z");
	json_decref(commit(f, md2, NULL, tpl));
	json_decref(tpl);
	assert_int_equal(lookup_kind(f, "py", true, &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), cd2);
	json_decref(r);
	assert_int_equal(lookup_kind(f, cd, false, &r, NULL), 0);
	assert_true(json_is_null(json_object_get(r, "template")));
	json_decref(r);

	/* Remove: refused while a sandbox uses it, naming the sandbox. */
	char *in_use[] = {cd2, NULL}, *names[] = {"box9", NULL};
	json_t *removed = NULL;
	assert_int_equal(ac_image_remove(f->home, "py", true, in_use, names, &removed, &err), -1);
	assert_int_equal(err->kind, AC_ERR_STATE);
	assert_string_equal(err->msg,
			    "template 'py' is used by sandbox 'box9' (remove the sandbox first)");
	ac_error_free(err);
	err = NULL;
	char *none[] = {NULL};
	assert_int_equal(ac_image_remove(f->home, "py", true, none, none, &removed, &err), 0);
	char *dump = json_dumps(removed, JSON_COMPACT);
	assert_non_null(strstr(dump, "\"untagged\":\"template:py\""));
	assert_non_null(strstr(dump, cd2));
	free(dump);
	json_decref(removed);
	assert_int_equal(lookup_kind(f, "py", true, NULL, NULL), AC_ERR_NOT_FOUND);
}

static void test_remove(void **state)
{
	struct fx *f = *state;
	char l1[72], l2[72], md[72], cd[72], md2[72], cd2[72];
	make_layer(f, "shared", "s", l1);
	make_layer(f, "own", "o", l2);
	ensure(f, l1, NULL);
	ensure(f, l2, NULL);
	const char *a[] = {l1}, *b[] = {l1, l2};
	make_image(f, a, 1, "2024-01-01T00:00:00Z", AC_MT_OCI_MANIFEST, md, cd);
	make_image(f, b, 2, "2024-01-02T00:00:00Z", AC_MT_OCI_MANIFEST, md2, cd2);
	json_decref(commit(f, md, "docker.io/library/one:1", NULL));
	json_decref(commit(f, md, "docker.io/library/one:alias", NULL));
	json_decref(commit(f, md2, "docker.io/library/two:1", NULL));

	ac_error_t *err = NULL;
	json_t *removed = NULL;
	char *in_use[] = {cd, NULL}, *names[] = {"agent-7", NULL}, *none[] = {NULL};
	assert_int_equal(ac_image_remove(f->home, "one:1", false, in_use, names, &removed, &err),
			 -1);
	assert_int_equal(err->kind, AC_ERR_STATE);
	assert_string_equal(
	    err->msg, "image 'one:1' is used by sandbox 'agent-7' (remove the sandbox first)");
	ac_error_free(err);
	err = NULL;
	/* Force (in_use NULL): the tag goes, the record and files stay. */
	assert_int_equal(ac_image_remove(f->home, "one:alias", false, NULL, NULL, &removed, &err),
			 0);
	json_decref(removed);
	assert_int_equal(lookup_kind(f, "one:alias", false, NULL, NULL), AC_ERR_NOT_FOUND);
	assert_int_equal(lookup_kind(f, "one:1", false, NULL, NULL), 0);
	/* Remove "two" by id: its own layer goes, the shared one stays. */
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "%.12s", cd2 + 7);
	assert_int_equal(ac_image_remove(f->home, prefix, false, none, none, &removed, &err), 0);
	char *dump = json_dumps(removed, JSON_COMPACT);
	assert_non_null(strstr(dump, "\"untagged\":\"docker.io/library/two:1\""));
	assert_non_null(strstr(dump, cd2));
	assert_non_null(strstr(dump, l2));
	assert_null(strstr(dump, l1));
	free(dump);
	json_decref(removed);
	char rel[200];
	snprintf(rel, sizeof(rel), "layers/%s", l1 + 7);
	assert_true(exists(f, rel));
	snprintf(rel, sizeof(rel), "layers/%s", l2 + 7);
	assert_false(exists(f, rel));
	assert_int_equal(ac_image_remove(f->home, "two:1", false, none, none, &removed, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;
	/* Prune keeps an untagged image a sandbox uses. */
	assert_int_equal(ac_image_remove(f->home, "one:1", false, NULL, NULL, &removed, &err), 0);
	json_decref(removed);
	uint64_t freed = 0;
	assert_int_equal(ac_image_prune(f->home, in_use, &removed, &freed, &err), 0);
	json_decref(removed);
	assert_int_equal(lookup_kind(f, cd, false, NULL, NULL), 0);
	assert_int_equal(ac_image_prune(f->home, none, &removed, &freed, &err), 0);
	json_decref(removed);
	assert_int_equal(lookup_kind(f, cd, false, NULL, NULL), AC_ERR_NOT_FOUND);
	snprintf(rel, sizeof(rel), "layers/%s", l1 + 7);
	assert_false(exists(f, rel));
}

static void test_prune_temporaries(void **state)
{
	struct fx *f = *state;
	int storefd = ac_image_open_store(f->home, NULL);
	assert_true(storefd >= 0);
	assert_int_equal(mkdirat(storefd, "layers/tmp.old", 0700), 0);
	assert_int_equal(mkdirat(storefd, "layers/tmp.new", 0700), 0);
	int fd = openat(storefd, "blobs/tmp/abc.partial", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(ac_write_all(fd, "12345", 5), 0);
	close(fd);
	fd = openat(storefd, "blobs/tmp/def.partial", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	struct timespec old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
	assert_int_equal(utimensat(storefd, "layers/tmp.old", old, 0), 0);
	assert_int_equal(utimensat(storefd, "blobs/tmp/abc.partial", old, 0), 0);
	close(storefd);
	json_t *removed = NULL;
	uint64_t freed = 0;
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_prune(f->home, NULL, &removed, &freed, &err), 0);
	assert_int_equal(json_array_size(removed), 2);
	json_decref(removed);
	assert_int_equal(freed, 5);
	assert_false(exists(f, "layers/tmp.old"));
	assert_true(exists(f, "layers/tmp.new"));
	assert_false(exists(f, "blobs/tmp/abc.partial"));
	assert_true(exists(f, "blobs/tmp/def.partial"));
}

static void test_commit_bad(void **state)
{
	struct fx *f = *state;
	char l1[72], md[72], cd[72];
	make_layer(f, "z", "z", l1);
	ensure(f, l1, NULL);
	ac_error_t *err = NULL;
	json_t *rec = NULL;
	char d[72];

	/* An index is not a manifest. */
	const char *idx =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	    "\"manifests\":[]}";
	assert_int_equal(ac_image_blob_put(f->home, idx, strlen(idx), NULL, d, &err), 0);
	assert_int_equal(
	    ac_image_commit(f->home, d, "docker.io/library/i:1", "oci", NULL, &rec, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "index"));
	ac_error_free(err);
	err = NULL;

	/* A manifest whose config is not a container image's. */
	make_image(f, (const char *[]){l1}, 1, "2024-01-01T00:00:00Z", AC_MT_OCI_MANIFEST, md, cd);
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
		 "vnd.cncf.helm.config.v1+json\","
		 "\"digest\":\"%s\",\"size\":1},\"layers\":[]}",
		 cd);
	assert_int_equal(ac_image_blob_put(f->home, buf, strlen(buf), NULL, d, &err), 0);
	assert_int_equal(ac_image_commit(f->home, d, NULL, "oci", NULL, &rec, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;

	/* A layer that is not unpacked. */
	snprintf(
	    buf, sizeof(buf),
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1},"
	    "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":1}]}",
	    AC_MT_OCI_CONFIG, cd, AC_MT_OCI_LAYER_GZIP, 7);
	assert_int_equal(ac_image_blob_put(f->home, buf, strlen(buf), NULL, d, &err), 0);
	assert_int_equal(ac_image_commit(f->home, d, NULL, "oci", NULL, &rec, &err), -1);
	assert_int_equal(err->kind, AC_ERR_STATE);
	ac_error_free(err);
	err = NULL;

	/* The config's diff_ids disagree with the layer. */
	const char *cfg =
	    "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\","
	    "\"diff_ids\":[\"sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111\"]}}";
	char cd2[72];
	assert_int_equal(ac_image_blob_put(f->home, cfg, strlen(cfg), NULL, cd2, &err), 0);
	snprintf(
	    buf, sizeof(buf),
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1},"
	    "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}]}",
	    AC_MT_OCI_CONFIG, cd2, AC_MT_OCI_LAYER, l1);
	assert_int_equal(ac_image_blob_put(f->home, buf, strlen(buf), NULL, d, &err), 0);
	assert_int_equal(ac_image_commit(f->home, d, NULL, "oci", NULL, &rec, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "diff_id"));
	ac_error_free(err);
	err = NULL;

	/* A manifest that is not in the store. */
	assert_int_equal(
	    ac_image_commit(
		f->home, "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		NULL, "oci", NULL, &rec, &err),
	    -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	/* Nothing was recorded. */
	json_t *ls = NULL;
	err = NULL;
	assert_int_equal(ac_image_list(f->home, false, &ls, &err), 0);
	assert_int_equal(json_array_size(ls), 0);
	json_decref(ls);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("# SKIP test_image_store needs root (layers keep their owners)\n");
		return 0;
	}
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_blob_put),	       T(test_layer_ensure),
	    T(test_layer_ensure_bad),  T(test_layer_ensure_concurrent),
	    T(test_commit_lookup),     T(test_ref_moves),
	    T(test_templates),	       T(test_remove),
	    T(test_prune_temporaries), T(test_commit_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
