/* Writing image records (image.h): commit (a manifest and its config into a record, a
 * ref or template name pointed at it), remove (tags, templates, images) and prune (untagged
 * images, then every layer and blob no record names, and temporaries of killed runs).
 * index.json and records/ change only under the store lock (images/lock).
 *
 * What *removed holds: internal.h. A layer is removed only while its own lock
 * (layers/<hex>.lock) can be taken, so a layer being unpacked is never cut. A pull that
 * ensured its layers but has not committed yet when a prune runs may lose them: its
 * commit then fails naming the missing layer ("pull again"), it never records an image
 * whose files are gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "image/image.h"
#include "image/internal.h"

#define LAYERS_MAX     1000
#define TMP_MAX_AGE_S  3600
#define RECORD_ID_SIZE 72

/* ------------------------------------------------------------------ commit */

static bool str_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static const char *const layer_types[] = {
    AC_MT_OCI_LAYER,
    AC_MT_OCI_LAYER_GZIP,
    AC_MT_OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    AC_MT_DOCKER_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar",
    NULL};

/* A list of strings from the image config (JSON null or absent: null). */
static int strings_or_null(const json_t *v, const char *what, json_t **out, ac_error_t **err)
{
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return ac_error_set(err, AC_ERR_INVALID, 0, "image config: %s is not a list", what);
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "image config: %s holds something other than strings",
					    what);
	}
	*out = json_deep_copy(v);
	return 0;
}

static json_t *string_or_null(const json_t *v)
{
	const char *s = json_string_value(v);
	return s && *s ? json_string(s) : json_null();
}

/* The record's "config" object from the image config's "config". */
static int parse_config(const json_t *cfg, json_t **out, ac_error_t **err)
{
	const json_t *c = json_object_get(cfg, "config");
	if (c != NULL && !json_is_null(c) && !json_is_object(c))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "image config: config is not an object");
	json_t *env = NULL, *ep = NULL, *cmd = NULL;
	if (strings_or_null(json_object_get(c, "Env"), "Env", &env, err) < 0 ||
	    strings_or_null(json_object_get(c, "Entrypoint"), "Entrypoint", &ep, err) < 0 ||
	    strings_or_null(json_object_get(c, "Cmd"), "Cmd", &cmd, err) < 0) {
		json_decref(env);
		json_decref(ep);
		return -1;
	}
	json_t *labels = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(c, "Labels"), k, v)
	{
		if (json_is_string(v))
			json_object_set(labels, k, v);
	}
	*out = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "env", env ? env : json_array(),
			 "workdir", string_or_null(json_object_get(c, "WorkingDir")), "user",
			 string_or_null(json_object_get(c, "User")), "entrypoint",
			 ep ? ep : json_null(), "cmd", cmd ? cmd : json_null(), "labels", labels);
	if (*out == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot record the image config");
	return 0;
}

/* The manifest's media type after checking it is an image manifest we take. */
static int manifest_type(const json_t *m, const char *digest, const char **type, ac_error_t **err)
{
	if (!json_is_object(m))
		return ac_error_set(err, AC_ERR_INVALID, 0, "manifest %s is not a JSON object",
				    digest);
	if (json_integer_value(json_object_get(m, "schemaVersion")) != 2)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "manifest %s: only schema version 2 manifests are supported",
				    digest);
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	if ((mt && (strcmp(mt, AC_MT_OCI_INDEX) == 0 || strcmp(mt, AC_MT_DOCKER_LIST) == 0)) ||
	    (mt == NULL && json_object_get(m, "manifests")))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "manifest %s is an index of platforms, not an image manifest",
				    digest);
	if (mt && strcmp(mt, AC_MT_OCI_MANIFEST) != 0 && strcmp(mt, AC_MT_DOCKER_MANIFEST) != 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "manifest %s has unsupported media type '%.100s'", digest, mt);
	*type = mt ? mt : AC_MT_OCI_MANIFEST;
	return 0;
}

/* Checks the manifest's layers against the store (each unpacked; the config's diff_ids
 * match) and builds the record's "layers"; *size: bytes unpacked. */
static int commit_layers(int storefd, const json_t *m, const json_t *cfg, json_t **out,
			 uint64_t *size, ac_error_t **err)
{
	const json_t *layers = json_object_get(m, "layers");
	if (!json_is_array(layers))
		return ac_error_set(err, AC_ERR_INVALID, 0, "the manifest has no layer list");
	if (json_array_size(layers) > LAYERS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "the manifest has more than %d layers",
				    LAYERS_MAX);
	const json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (json_is_array(diff_ids) && json_array_size(diff_ids) != json_array_size(layers))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the image config lists %zu layers, the manifest %zu",
				    json_array_size(diff_ids), json_array_size(layers));
	json_auto_t *arr = json_array();
	*size = 0;
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l)
	{
		const char *digest = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		json_int_t bytes = json_integer_value(json_object_get(l, "size"));
		if (!ac_image_digest_valid(digest))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "manifest layer %zu has a bad digest", i);
		if (mt == NULL)
			mt = AC_MT_OCI_LAYER_GZIP;
		if (!str_in(mt, layer_types))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "manifest layer %s has unsupported media type '%.100s'",
					    digest, mt);
		char rel[160];
		snprintf(rel, sizeof(rel), "layers/%s.json", digest + 7);
		json_auto_t *meta = NULL;
		struct stat st;
		char dir[160];
		ac_image_layer_path(digest + 7, dir, sizeof(dir));
		if (ac_image_json_read(storefd, rel, true, &meta, err) < 0)
			return -1;
		if (meta == NULL || fstatat(storefd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return ac_error_set(err, AC_ERR_STATE, 0,
					    "layer %s is not unpacked in the store (removed by a "
					    "concurrent prune? pull or import again)",
					    digest);
		const char *want = json_string_value(json_array_get(diff_ids, i));
		const char *have = json_string_value(json_object_get(meta, "diff_id"));
		if (want && have && strcmp(want, have) != 0)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "layer %s does not match the config's diff_id %.80s",
					    digest, want);
		json_int_t unpacked = json_integer_value(json_object_get(meta, "size"));
		*size += unpacked > 0 ? (uint64_t)unpacked : 0;
		json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "digest", digest, "size",
						     bytes > 0 ? bytes : 0, "media_type", mt));
	}
	*out = steal_ptr(arr);
	return 0;
}

/* Builds the record (without refs and template) from the manifest and config blobs. */
static int build_record(int storefd, const char *manifest_digest, const char *base, json_t **out,
			ac_error_t **err)
{
	_cleanup_free_ char *mbuf = NULL, *cbuf = NULL;
	size_t mlen = 0, clen = 0;
	if (ac_image_blob_read(storefd, manifest_digest, AC_IMAGE_MANIFEST_MAX, &mbuf, &mlen, err) <
	    0)
		return -1;
	json_error_t je;
	json_auto_t *m = json_loadb(mbuf, mlen, 0, &je);
	if (m == NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0, "manifest %s is not JSON: %s",
				    manifest_digest, je.text);
	const char *mtype = AC_MT_OCI_MANIFEST;
	if (manifest_type(m, manifest_digest, &mtype, err) < 0)
		return -1;
	const json_t *cd = json_object_get(m, "config");
	const char *config_digest = json_string_value(json_object_get(cd, "digest"));
	const char *ctype = json_string_value(json_object_get(cd, "mediaType"));
	if (!ac_image_digest_valid(config_digest))
		return ac_error_set(err, AC_ERR_INVALID, 0, "manifest %s names no valid config",
				    manifest_digest);
	if (ctype && strcmp(ctype, AC_MT_OCI_CONFIG) != 0 &&
	    strcmp(ctype, AC_MT_DOCKER_CONFIG) != 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "manifest %s is not a container image (config media type "
				    "'%.100s')",
				    manifest_digest, ctype);
	if (ac_image_blob_read(storefd, config_digest, AC_IMAGE_MANIFEST_MAX, &cbuf, &clen, err) <
	    0)
		return -1;
	json_auto_t *cfg = json_loadb(cbuf, clen, 0, &je);
	if (!json_is_object(cfg))
		return ac_error_set(err, AC_ERR_INVALID, 0, "image config %s is not a JSON object",
				    config_digest);
	json_t *config = NULL, *layers = NULL;
	uint64_t size = 0;
	if (parse_config(cfg, &config, err) < 0)
		return -1;
	if (commit_layers(storefd, m, cfg, &layers, &size, err) < 0) {
		json_decref(config);
		return -1;
	}
	const char *created = json_string_value(json_object_get(cfg, "created"));
	const char *os = json_string_value(json_object_get(cfg, "os"));
	const char *arch = json_string_value(json_object_get(cfg, "architecture"));
	*out = json_pack("{s:s, s:[], s:s, s:s, s:s?, s:s?, s:s?, s:I, s:s, s:o, s:o, s:n}", "id",
			 config_digest, "refs", "manifest_digest", manifest_digest,
			 "manifest_media_type", mtype, "os", os, "architecture", arch, "created",
			 created, "size", (json_int_t)size, "base", base ? base : "oci", "layers",
			 layers, "config", config, "template");
	if (*out == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot build the image record");
	return 0;
}

/* Writes the record of id (refs recomputed from index first). */
static int record_save(int storefd, const json_t *index, json_t *rec, ac_error_t **err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	const char *hex = ac_image_digest_hex(id);
	if (hex == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "a record without a valid id");
	json_t *refs = json_array();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(index, "refs"), k, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			json_array_append_new(refs, json_string(k));
	}
	json_object_set_new(rec, "refs", refs);
	char rel[128];
	ac_image_record_path(hex, rel, sizeof(rel));
	return ac_image_json_write(storefd, rel, rec, err);
}

/* Re-saves another record whose refs or template changed (id may be gone: skipped). */
static int record_touch(int storefd, const json_t *index, const char *id, bool drop_template,
			ac_error_t **err)
{
	json_auto_t *rec = NULL;
	ac_error_t *e = NULL;
	if (ac_image_record_load(storefd, NULL, id, &rec, &e) < 0) {
		ac_error_free(e);
		return 0;
	}
	if (drop_template)
		json_object_set_new(rec, "template", json_null());
	return record_save(storefd, index, rec, err);
}

int ac_image_commit(const char *home, const char *manifest_digest, const char *ref,
		    const char *base, json_t *template, json_t **record, ac_error_t **err)
{
	if (record)
		*record = NULL;
	if (!ac_image_digest_valid(manifest_digest))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%.100s' is not a sha256 digest",
				    manifest_digest ? manifest_digest : "");
	const char *tname = json_string_value(json_object_get(template, "name"));
	if (template && (tname == NULL || *tname == 0))
		return ac_error_set(err, AC_ERR_INVALID, 0, "a template needs a name");
	_cleanup_close_ int lock = -1;
	_cleanup_close_ int storefd = ac_image_open_locked(home, &lock, err);
	if (storefd < 0)
		return -1;
	json_auto_t *rec = NULL;
	if (build_record(storefd, manifest_digest, base, &rec, err) < 0)
		return -1;
	char id[RECORD_ID_SIZE];
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(rec, "id")));
	json_auto_t *index = NULL;
	if (ac_image_index_read(storefd, &index, err) < 0)
		return -1;

	/* An existing record of the same image keeps its template unless a new one comes. */
	json_auto_t *old = NULL;
	ac_error_t *e = NULL;
	if (ac_image_record_load(storefd, NULL, id, &old, &e) == 0 && template == NULL)
		json_object_set(rec, "template", json_object_get(old, "template"));
	ac_error_free(e);

	json_t *refs = json_object_get(index, "refs"),
	       *templates = json_object_get(index, "templates");
	char prev_ref[RECORD_ID_SIZE] = "", prev_tpl[RECORD_ID_SIZE] = "";
	if (ref && *ref) {
		const char *p = json_string_value(json_object_get(refs, ref));
		if (p && strcmp(p, id) != 0)
			snprintf(prev_ref, sizeof(prev_ref), "%s", p);
		json_object_set_new(refs, ref, json_string(id));
	}
	if (template) {
		const char *p = json_string_value(json_object_get(templates, tname));
		if (p && strcmp(p, id) != 0)
			snprintf(prev_tpl, sizeof(prev_tpl), "%s", p);
		json_object_set_new(templates, tname, json_string(id));
		json_object_set_new(rec, "template", json_deep_copy(template));
	}
	if (record_save(storefd, index, rec, err) < 0)
		return -1;
	if (ac_image_json_write(storefd, "index.json", index, err) < 0)
		return -1;
	/* The image that held the ref or the template name before loses it. */
	if (prev_ref[0] && record_touch(storefd, index, prev_ref, false, err) < 0)
		return -1;
	if (prev_tpl[0] && record_touch(storefd, index, prev_tpl, true, err) < 0)
		return -1;
	if (record)
		*record = json_incref(rec);
	return 0;
}

/* ------------------------------------------------------------------ garbage */

static bool in_list(const char *id, char *const *list)
{
	for (size_t i = 0; list && list[i]; i++)
		if (strcmp(list[i], id) == 0)
			return true;
	return false;
}

static int used_by(const char *id, char *const *in_use, char *const *names)
{
	for (size_t i = 0; in_use && in_use[i]; i++)
		if (strcmp(in_use[i], id) == 0)
			return (int)i;
	(void)names;
	return -1;
}

static int add_names(json_t *rec, void *arg, ac_error_t **err)
{
	json_t *keep = arg;
	const char *id = json_string_value(json_object_get(rec, "id"));
	const char *md = json_string_value(json_object_get(rec, "manifest_digest"));
	if (id)
		json_object_set_new(keep, id, json_true());
	if (md)
		json_object_set_new(keep, md, json_true());
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(rec, "layers"), i, l)
	{
		const char *d = json_string_value(json_object_get(l, "digest"));
		if (d)
			json_object_set_new(keep, d, json_true());
	}
	return 0;
}

static void removed_add(json_t *removed, const char *kind, const char *what, uint64_t size)
{
	if (removed)
		json_array_append_new(
		    removed, json_pack("{s:s, s:I}", kind, what, "size", (json_int_t)size));
}

/* Directory rel below images/, to read; NULL when it cannot be opened. */
static DIR *open_dir(int storefd, const char *rel)
{
	int dfd = openat(storefd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL && dfd >= 0)
		close(dfd);
	return d;
}

/* The next entry of d (may be NULL) named <64 hex> whose digest ("sha256:<hex>" into
 * digest) keep does not hold and candidates (when not NULL) does; NULL at the end. */
static struct dirent *next_unkept(DIR *d, const json_t *keep, const json_t *candidates,
				  char digest[RECORD_ID_SIZE])
{
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64)
			continue;
		snprintf(digest, RECORD_ID_SIZE, "sha256:%s", de->d_name);
		if (!json_object_get(keep, digest) &&
		    (!candidates || json_object_get(candidates, digest)))
			return de;
	}
	return NULL;
}

/* Removes layers and blobs no record names (only those in candidates, an object of
 * digests, when not NULL). Caller holds the store lock. */
static int collect(int storefd, const json_t *candidates, json_t *removed, uint64_t *freed,
		   ac_error_t **err)
{
	json_auto_t *keep = json_object();
	if (ac_image_each_record(storefd, NULL, add_names, keep, err) < 0)
		return -1;
	/* Layers: layers/<hex> with .json and .lock. */
	DIR *d = open_dir(storefd, "layers");
	struct dirent *de;
	char digest[RECORD_ID_SIZE];
	while ((de = next_unkept(d, keep, candidates, digest)) != NULL) {
		char rel[160];
		snprintf(rel, sizeof(rel), "%s.lock", de->d_name);
		_cleanup_close_ int lk =
		    openat(dirfd(d), rel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) < 0)
			continue; /* being unpacked right now */
		json_t *meta = NULL;
		snprintf(rel, sizeof(rel), "layers/%s.json", de->d_name);
		ac_image_json_read(storefd, rel, true, &meta, NULL);
		json_int_t sz = json_integer_value(json_object_get(meta, "size"));
		json_decref(meta);
		if (ac_rm_rf_at(dirfd(d), de->d_name, err) < 0) {
			closedir(d);
			return -1;
		}
		unlinkat(storefd, rel, 0);
		snprintf(rel, sizeof(rel), "%s.lock", de->d_name);
		unlinkat(dirfd(d), rel, 0);
		removed_add(removed, "layer", digest, sz > 0 ? (uint64_t)sz : 0);
		*freed += sz > 0 ? (uint64_t)sz : 0;
	}
	if (d)
		closedir(d);
	/* Blobs. */
	d = open_dir(storefd, "blobs/sha256");
	while ((de = next_unkept(d, keep, candidates, digest)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			removed_add(removed, "blob", digest, (uint64_t)st.st_size);
			*freed += (uint64_t)st.st_size;
		}
	}
	if (d)
		closedir(d);
	return 0;
}

/* Temporaries older than an hour: layers/tmp.*, blobs/tmp/ (partial downloads, blob
 * temporaries), the atomic writers' *.tmp.* in records/ and images/. */
static void collect_tmp(int storefd, json_t *removed, uint64_t *freed)
{
	static const char *const dirs[] = {"layers", "blobs/tmp", "records", "."};
	time_t now = time(NULL);
	for (size_t i = 0; i < AC_ARRAY_SIZE(dirs); i++) {
		DIR *d = open_dir(storefd, dirs[i]);
		if (d == NULL)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			const char *n = de->d_name;
			bool tmp = i == 0   ? strncmp(n, "tmp.", 4) == 0
				   : i == 1 ? n[0] != '.'
					    : strstr(n, ".tmp.") != NULL;
			struct stat st;
			if (!tmp || fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    now - st.st_mtime < TMP_MAX_AGE_S)
				continue;
			uint64_t size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
			if (ac_rm_rf_at(dirfd(d), n, NULL) == 0) {
				char what[300];
				snprintf(what, sizeof(what), "%s/%s", dirs[i], n);
				removed_add(removed, "partial", what, size);
				*freed += size;
			}
		}
		closedir(d);
	}
}

/* ------------------------------------------------------------------ remove and prune */

static int refuse_in_use(const char *what, const char *name, int i, char *const *names,
			 ac_error_t **err)
{
	const char *sb = names && names[i] ? names[i] : "?";
	return ac_error_set(err, AC_ERR_STATE, 0,
			    "%s '%.200s' is used by sandbox '%.100s' (remove the sandbox first)",
			    what, name, sb);
}

/* Whether anything (a ref or a template name) still names id in index. */
static bool named(const json_t *index, const char *id)
{
	static const char *const keys[] = {"refs", "templates"};
	for (size_t i = 0; i < 2; i++) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)json_object_get(index, keys[i]), k, v)
		{
			if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
				return true;
		}
	}
	return false;
}

/* Deletes the record of id; its digests go into candidates for collect(). */
static int record_delete(int storefd, const char *id, json_t *candidates, json_t *removed,
			 ac_error_t **err)
{
	json_auto_t *rec = NULL;
	if (ac_image_record_load(storefd, NULL, id, &rec, err) < 0)
		return -1;
	add_names(rec, candidates, err);
	char rel[128];
	ac_image_record_path(id + 7, rel, sizeof(rel));
	if (unlinkat(storefd, rel, 0) < 0 && errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove image %s", id);
	if (removed)
		json_array_append_new(removed, json_pack("{s:s}", "deleted", id));
	return 0;
}

int ac_image_remove(const char *home, const char *name, bool template, char *const *in_use,
		    char *const *in_use_names, json_t **removed, ac_error_t **err)
{
	if (removed)
		*removed = NULL;
	_cleanup_close_ int lock = -1;
	json_auto_t *index = NULL;
	_cleanup_close_ int storefd = ac_image_open_index(home, &lock, &index, err);
	if (storefd < 0)
		return -1;
	char id[RECORD_ID_SIZE];
	if (ac_image_resolve_id(storefd, index, name, template, id, err) < 0)
		return -1;
	bool force = in_use == NULL;
	int user = used_by(id, in_use, in_use_names);
	if (user >= 0)
		return refuse_in_use(template ? "template" : "image", name, user, in_use_names,
				     err);

	json_auto_t *out = json_array();
	json_t *refs = json_object_get(index, "refs"),
	       *templates = json_object_get(index, "templates");
	/* By id: every name of the image goes; by ref or template name: that name. */
	const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
	bool by_id = !template && strncmp(id + 7, hex, strlen(hex)) == 0 && strlen(hex) >= 12;
	bool drop_template = template;
	if (template) {
		json_object_del(templates, name);
		char what[300];
		snprintf(what, sizeof(what), "template:%s", name);
		json_array_append_new(out, json_pack("{s:s}", "untagged", what));
	} else if (by_id) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(refs, tmp, k, v)
		{
			if (json_is_string(v) && strcmp(json_string_value(v), id) == 0) {
				json_array_append_new(out, json_pack("{s:s}", "untagged", k));
				json_object_del(refs, k);
			}
		}
		json_object_foreach_safe(templates, tmp, k, v)
		{
			if (json_is_string(v) && strcmp(json_string_value(v), id) == 0) {
				char what[300];
				snprintf(what, sizeof(what), "template:%s", k);
				json_array_append_new(out, json_pack("{s:s}", "untagged", what));
				json_object_del(templates, k);
				drop_template = true;
			}
		}
	} else {
		ac_image_ref_t ref;
		char canon[700];
		if (ac_image_ref_parse(name, &ref, err) < 0)
			return -1;
		ac_image_ref_format(&ref, canon, sizeof(canon));
		if (json_object_get(refs, canon) == NULL)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "image '%.200s' is not tagged in the store (its id "
					    "matched by digest: remove it by id)",
					    name);
		json_object_del(refs, canon);
		json_array_append_new(out, json_pack("{s:s}", "untagged", canon));
	}
	if (ac_image_json_write(storefd, "index.json", index, err) < 0)
		return -1;
	json_auto_t *candidates = json_object();
	uint64_t freed = 0;
	if (!force && !named(index, id)) {
		if (record_delete(storefd, id, candidates, out, err) < 0)
			return -1;
		if (collect(storefd, candidates, out, &freed, err) < 0)
			return -1;
	} else if (record_touch(storefd, index, id, drop_template, err) < 0) {
		return -1;
	}
	if (removed)
		*removed = steal_ptr(out);
	return 0;
}

struct prune_ctx {
	const json_t *index;
	char *const *in_use;
	json_t *dangling; /* array of ids */
};

static int find_dangling(json_t *rec, void *arg, ac_error_t **err)
{
	struct prune_ctx *p = arg;
	const char *id = json_string_value(json_object_get(rec, "id"));
	if (id && !named(p->index, id) && !in_list(id, p->in_use))
		json_array_append_new(p->dangling, json_string(id));
	return 0;
}

int ac_image_prune(const char *home, char *const *in_use, json_t **removed, uint64_t *freed,
		   ac_error_t **err)
{
	if (removed)
		*removed = NULL;
	uint64_t total = 0;
	_cleanup_close_ int lock = -1;
	json_auto_t *index = NULL;
	_cleanup_close_ int storefd = ac_image_open_index(home, &lock, &index, err);
	if (storefd < 0)
		return -1;
	json_auto_t *out = json_array();
	json_auto_t *dangling = json_array();
	struct prune_ctx p = {.index = index, .in_use = in_use, .dangling = dangling};
	if (ac_image_each_record(storefd, NULL, find_dangling, &p, err) < 0)
		return -1;
	json_auto_t *candidates = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(dangling, i, v)
	{
		if (record_delete(storefd, json_string_value(v), candidates, out, err) < 0)
			return -1;
	}
	if (collect(storefd, NULL, out, &total, err) < 0)
		return -1;
	collect_tmp(storefd, out, &total);
	if (freed)
		*freed = total;
	if (removed)
		*removed = steal_ptr(out);
	return 0;
}
