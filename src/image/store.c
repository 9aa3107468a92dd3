/* The image store's files (image.h: layout under $AGENTCELL_HOME/images): the shared
 * helpers of internal.h (paths, the store lock, blobs, atomic JSON), blobs from buffers,
 * layers unpacked once (ac_image_layer_ensure), and reading records (lookup, list).
 * Writing records (commit, remove, prune) is records.c.
 *
 * index.json is the truth about names: a record's "refs" is recomputed from it whenever a
 * record is read, so a crash between writing a record and the index never shows a ref on
 * two images. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/json.h"
#include "base/sha256.h"
#include "base/time.h"
#include "base/util.h"
#include "image/image.h"
#include "image/internal.h"

/* ------------------------------------------------------------------ layout */

int ac_image_dir(const char *home, char *buf, size_t len, ac_error_t **err)
{
	if (home == NULL || *home == 0)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "no agentcell home for the image store");
	int n = snprintf(buf, len, "%s/images", home);
	if (n < 0 || (size_t)n >= len)
		return ac_error_set(err, AC_ERR_INTERNAL, ENAMETOOLONG,
				    "the image store's path is too long");
	return 0;
}

void ac_image_layer_dir(const char *home, const char *layer_hex, char *buf, size_t len)
{
	snprintf(buf, len, "%s/images/layers/%s", home, layer_hex);
}

int ac_image_open_store(const char *home, ac_error_t **err)
{
	char dir[4096];
	if (ac_image_dir(home, dir, sizeof(dir), err) < 0)
		return -1;
	if (ac_mkdir_p_at(AT_FDCWD, dir, 0700, err) < 0)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open the image store %s",
				    dir);
	static const char *const subs[] = {"blobs", "blobs/sha256", "blobs/tmp", "layers",
					   "records"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(subs); i++) {
		if (mkdirat(fd, subs[i], 0700) < 0 && errno != EEXIST) {
			int e = errno;
			close(fd);
			return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot create %s/%s", dir,
					    subs[i]);
		}
	}
	return fd;
}

static int flock_wait(int fd, int op)
{
	int r;
	do
		r = flock(fd, op);
	while (r < 0 && errno == EINTR);
	return r;
}

int ac_image_lock(int storefd, ac_error_t **err)
{
	int fd = openat(storefd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot open the image store's lock");
	if (flock_wait(fd, LOCK_EX) < 0) {
		int e = errno;
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot lock the image store");
	}
	return fd;
}

int ac_image_open_locked(const char *home, int *lock, ac_error_t **err)
{
	*lock = -1;
	int fd = ac_image_open_store(home, err);
	if (fd < 0)
		return -1;
	*lock = ac_image_lock(fd, err);
	if (*lock < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int ac_image_open_index(const char *home, int *lock, json_t **index, ac_error_t **err)
{
	*index = NULL;
	int fd = lock ? ac_image_open_locked(home, lock, err) : ac_image_open_store(home, err);
	if (fd < 0)
		return -1;
	if (ac_image_index_read(fd, index, err) < 0) {
		close(fd);
		if (lock) {
			close(*lock);
			*lock = -1;
		}
		return -1;
	}
	return fd;
}

const char *ac_image_digest_hex(const char *s)
{
	return ac_image_digest_valid(s) ? s + 7 : NULL;
}

void ac_image_blob_path(const char *hex, char *buf, size_t len)
{
	snprintf(buf, len, "blobs/sha256/%s", hex);
}

void ac_image_layer_path(const char *hex, char *buf, size_t len)
{
	snprintf(buf, len, "layers/%s", hex);
}

void ac_image_record_path(const char *hex, char *buf, size_t len)
{
	snprintf(buf, len, "records/%s.json", hex);
}

/* ------------------------------------------------------------------ files */

int ac_image_blob_read(int storefd, const char *digest, size_t max, char **out, size_t *len,
		       ac_error_t **err)
{
	const char *hex = ac_image_digest_hex(digest);
	if (hex == NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%.100s' is not a sha256 digest",
				    digest ? digest : "");
	char rel[128];
	ac_image_blob_path(hex, rel, sizeof(rel));
	ac_error_t *e = NULL;
	if (ac_read_file_at(storefd, rel, max, out, len, &e) < 0) {
		if (e->kind == AC_ERR_NOT_FOUND) {
			ac_error_free(e);
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "blob %s is not in the store",
					    digest);
		}
		ac_error_prefix(&e, "blob %s", digest);
		if (err && *err == NULL)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	return 0;
}

static int fsync_dir_at(int storefd, const char *rel)
{
	_cleanup_close_ int d = openat(storefd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -1;
	int r;
	do
		r = fsync(d);
	while (r < 0 && errno == EINTR);
	return r;
}

int ac_image_blob_install(int storefd, const char *tmp_rel, const char *hex, ac_error_t **err)
{
	char rel[128];
	ac_image_blob_path(hex, rel, sizeof(rel));
	struct stat st;
	if (fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		unlinkat(storefd, tmp_rel, 0);
		return 0;
	}
	{
		_cleanup_close_ int fd =
		    openat(storefd, tmp_rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", tmp_rel);
		int r;
		do
			r = fsync(fd);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot fsync %s",
					    tmp_rel);
	}
	if (renameat(storefd, tmp_rel, storefd, rel) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot store blob sha256:%s",
				    hex);
	if (fsync_dir_at(storefd, "blobs/sha256") < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot fsync the blob directory");
	return 0;
}

int ac_image_json_read(int storefd, const char *rel, bool missing_ok, json_t **out,
		       ac_error_t **err)
{
	*out = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_read_file_at(storefd, rel, AC_IMAGE_JSON_MAX, &buf, &len, &e) < 0) {
		bool missing = e->errnum == ENOENT || e->kind == AC_ERR_NOT_FOUND;
		if (missing && missing_ok) {
			ac_error_free(e);
			return 0;
		}
		if (missing) {
			ac_error_free(e);
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "%s is not in the image store", rel);
		}
		if (err && *err == NULL)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	json_error_t je;
	*out = json_loadb(buf, len, 0, &je);
	if (*out == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the image store's %s is damaged: %s",
				    rel, je.text);
	return 0;
}

int ac_image_json_write(int storefd, const char *rel, const json_t *j, ac_error_t **err)
{
	_cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2));
	if (s == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write %s", rel);
	return ac_write_file_atomic_at(storefd, rel, s, strlen(s), 0600, err);
}

int ac_image_index_read(int storefd, json_t **index, ac_error_t **err)
{
	if (ac_image_json_read(storefd, "index.json", true, index, err) < 0)
		return -1;
	if (*index == NULL)
		*index = json_object();
	if (!json_is_object(*index)) {
		json_decref(*index);
		*index = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the image store's index.json is damaged");
	}
	static const char *const keys[] = {"refs", "templates"};
	for (size_t i = 0; i < 2; i++)
		if (!json_is_object(json_object_get(*index, keys[i])))
			json_object_set_new(*index, keys[i], json_object());
	return 0;
}

/* ------------------------------------------------------------------ blobs and layers */

int ac_image_blob_put(const char *home, const void *data, size_t len, const char *expect,
		      char *digest_out, ac_error_t **err)
{
	if (expect && !ac_image_digest_valid(expect))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%.100s' is not a sha256 digest",
				    expect);
	char hex[AC_SHA256_HEX_LEN];
	ac_sha256_hex(data, len, hex);
	if (expect && strcmp(expect + 7, hex) != 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "blob %s does not match its digest",
				    expect);
	if (digest_out)
		snprintf(digest_out, 72, "sha256:%s", hex);
	_cleanup_close_ int storefd = ac_image_open_store(home, err);
	if (storefd < 0)
		return -1;
	char rel[128];
	ac_image_blob_path(hex, rel, sizeof(rel));
	struct stat st;
	if (fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == len)
		return 0;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint64_t)ac_time_now_ms() ^ (uint64_t)getpid();
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "blobs/tmp/%s.%016llx.tmp", hex, (unsigned long long)rnd);
	_cleanup_close_ int fd =
	    openat(storefd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write blob sha256:%s",
				    hex);
	if (ac_write_all(fd, data, len) < 0) {
		int e = errno;
		unlinkat(storefd, tmp, 0);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot write blob sha256:%s", hex);
	}
	if (ac_image_blob_install(storefd, tmp, hex, err) < 0) {
		unlinkat(storefd, tmp, 0);
		return -1;
	}
	return 0;
}

/* The unpacked size of a layer that is in place (1), 0 when it is not. */
static int layer_present(int storefd, const char *hex, uint64_t *size)
{
	char rel[160];
	struct stat st;
	ac_image_layer_path(hex, rel, sizeof(rel));
	if (fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	snprintf(rel, sizeof(rel), "layers/%s.json", hex);
	json_t *j = NULL;
	ac_error_t *e = NULL;
	if (ac_image_json_read(storefd, rel, true, &j, &e) < 0 || j == NULL) {
		ac_error_free(e);
		return 0;
	}
	json_int_t n = json_integer_value(json_object_get(j, "size"));
	json_decref(j);
	if (size)
		*size = n > 0 ? (uint64_t)n : 0;
	return 1;
}

int ac_image_layer_ensure(const char *home, const char *blob_digest, uint64_t *size,
			  ac_error_t **err)
{
	const char *hex = ac_image_digest_hex(blob_digest);
	if (hex == NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%.100s' is not a sha256 digest",
				    blob_digest ? blob_digest : "");
	_cleanup_close_ int storefd = ac_image_open_store(home, err);
	if (storefd < 0)
		return -1;
	char rel[160];
	snprintf(rel, sizeof(rel), "layers/%s.lock", hex);
	_cleanup_close_ int lockfd =
	    openat(storefd, rel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock_wait(lockfd, LOCK_EX) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot lock layer %s",
				    blob_digest);
	if (layer_present(storefd, hex, size))
		return 0;
	char layer[160];
	ac_image_layer_path(hex, layer, sizeof(layer));
	/* A directory without its .json is an unpack that did not finish under an older
	 * layout, or a prune cut short: start again. */
	if (ac_rm_rf_at(storefd, layer, err) < 0)
		return -1;

	ac_image_blob_path(hex, rel, sizeof(rel));
	_cleanup_close_ int blobfd = openat(storefd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (blobfd < 0 && errno == ENOENT)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "layer blob %s is not in the store",
				    blob_digest);
	if (blobfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open layer blob %s",
				    blob_digest);

	char tmp[64];
	_cleanup_close_ int tmpfd = -1;
	for (int tries = 0; tmpfd < 0; tries++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
			rnd = (uint64_t)ac_time_now_ms() * 2654435761u + (uint64_t)tries;
		snprintf(tmp, sizeof(tmp), "layers/tmp.%012llx",
			 (unsigned long long)(rnd & 0xffffffffffffull));
		if (mkdirat(storefd, tmp, 0700) < 0) {
			if (errno == EEXIST && tries < 16)
				continue;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create %s", tmp);
		}
		tmpfd = openat(storefd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (tmpfd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", tmp);
	}
	char diff_id[72];
	const char *media_type = AC_MT_OCI_LAYER;
	uint64_t unpacked = 0;
	if (fchmod(tmpfd, 0755) < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot chmod %s", tmp);
		goto fail;
	}
	if (ac_image_unpack_layer(blobfd, tmpfd, hex, &unpacked, diff_id, &media_type, NULL, err) <
	    0) {
		ac_error_prefix(err, "layer %.19s", blob_digest);
		goto fail;
	}
	if (syncfs(tmpfd) < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot sync layer %s", blob_digest);
		goto fail;
	}
	json_t *meta = json_pack("{s:s, s:s, s:I, s:s}", "digest", blob_digest, "diff_id", diff_id,
				 "size", (json_int_t)unpacked, "media_type", media_type);
	snprintf(rel, sizeof(rel), "layers/%s.json", hex);
	int r = meta ? ac_image_json_write(storefd, rel, meta, err)
		     : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot record a layer");
	json_decref(meta);
	if (r < 0)
		goto fail;
	if (renameat(storefd, tmp, storefd, layer) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot move layer %s into place",
				     blob_digest);
			goto fail;
		}
		/* Another process finished the same layer (its lock file was pruned and
		 * re-made meanwhile): theirs stays. */
		ac_rm_rf_at(storefd, tmp, NULL);
	}
	if (fsync_dir_at(storefd, "layers") < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot fsync the layer directory");
	if (size)
		*size = unpacked;
	return 0;
fail:
	ac_rm_rf_at(storefd, tmp, NULL);
	return -1;
}

/* ------------------------------------------------------------------ reading records */

/* The refs of index.json that point at id, sorted. */
static json_t *refs_of(const json_t *index, const char *id)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(index, "refs"), k, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			json_array_append_new(out, json_string(k));
	}
	return out;
}

static int cmp_strings(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

/* Reads records/<hex>.json with its refs from index (NULL: not read). */
static int record_read(int storefd, const json_t *index, const char *hex, json_t **out,
		       ac_error_t **err)
{
	char rel[128];
	ac_image_record_path(hex, rel, sizeof(rel));
	if (ac_image_json_read(storefd, rel, false, out, err) < 0)
		return -1;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the image store's %s is damaged",
				    rel);
	}
	if (index) {
		char id[72];
		snprintf(id, sizeof(id), "sha256:%s", hex);
		json_t *refs = refs_of(index, id);
		ac_json_array_sort(refs, cmp_strings);
		json_object_set_new(*out, "refs", refs);
	}
	return 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Whether a directory entry of records/ is a record: "<64 hex>.json". */
static bool record_name(const char *name)
{
	return strlen(name) == 69 && strcmp(name + 64, ".json") == 0 && is_hex(name, 64);
}

/* records/, to read; NULL on failure. */
static DIR *open_records(int storefd, ac_error_t **err)
{
	int dfd = openat(storefd, "records", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		ac_error_set(err, AC_ERR_INTERNAL, e, "cannot read the image records");
	}
	return d;
}

/* The id of the one record whose hex starts with prefix: 1 found (id_out), 0 none; -1
 * ambiguous or an error. */
static int find_prefix(int storefd, const char *prefix, char id_out[72], ac_error_t **err)
{
	DIR *d = open_records(storefd, err);
	if (d == NULL)
		return -1;
	size_t plen = strlen(prefix);
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!record_name(de->d_name) || strncmp(de->d_name, prefix, plen) != 0)
			continue;
		if (found) {
			closedir(d);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "image id prefix '%s' names more than one image",
					    prefix);
		}
		snprintf(id_out, 72, "sha256:%.64s", de->d_name);
		found = 1;
	}
	closedir(d);
	return found;
}

int ac_image_each_record(int storefd, const json_t *index,
			 int (*fn)(json_t *rec, void *arg, ac_error_t **err), void *arg,
			 ac_error_t **err)
{
	DIR *d = open_records(storefd, err);
	if (d == NULL)
		return -1;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!record_name(de->d_name))
			continue;
		char hex[65];
		snprintf(hex, sizeof(hex), "%.64s", de->d_name);
		json_t *rec = NULL;
		ac_error_t *e = NULL;
		if (record_read(storefd, index, hex, &rec, &e) < 0) {
			/* Removed meanwhile (no lock for readers): skip it. */
			bool gone = e && e->kind == AC_ERR_NOT_FOUND;
			if (!gone && err && *err == NULL)
				*err = e;
			else
				ac_error_free(e);
			if (!gone)
				rc = -1;
			continue;
		}
		rc = fn(rec, arg, err);
		json_decref(rec);
	}
	closedir(d);
	return rc;
}

struct match_digest {
	const char *digest;
	char id[72];
	int n;
};

static int match_manifest(json_t *rec, void *arg, ac_error_t **err)
{
	struct match_digest *m = arg;
	const char *md = json_string_value(json_object_get(rec, "manifest_digest"));
	if (md && strcmp(md, m->digest) == 0 && m->n++ == 0)
		snprintf(m->id, sizeof(m->id), "%s", json_string_value(json_object_get(rec, "id")));
	return 0;
}

int ac_image_resolve_id(int storefd, const json_t *index, const char *name, bool template,
			char id_out[72], ac_error_t **err)
{
	if (name == NULL || *name == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "no image name given");
	if (template) {
		const char *id =
		    json_string_value(json_object_get(json_object_get(index, "templates"), name));
		if (id == NULL || !ac_image_digest_valid(id))
			return ac_error_set(
			    err, AC_ERR_NOT_FOUND, 0,
			    "template '%.200s' does not exist (agentcell template ls)", name);
		snprintf(id_out, 72, "%s", id);
		return 0;
	}
	/* An id, or a unique prefix of one (12+ hex digits, with or without "sha256:"). */
	const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
	size_t hl = strlen(hex);
	if (hl >= 12 && hl <= 64 && is_hex(hex, hl)) {
		int r = find_prefix(storefd, hex, id_out, err);
		if (r != 0)
			return r < 0 ? -1 : 0;
		if (hex != name)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "image '%.200s' is not in the store", name);
	}
	ac_image_ref_t ref;
	if (ac_image_ref_parse(name, &ref, err) < 0)
		return -1;
	char canon[700];
	ac_image_ref_format(&ref, canon, sizeof(canon));
	const char *id = json_string_value(json_object_get(json_object_get(index, "refs"), canon));
	if (id && ac_image_digest_valid(id)) {
		snprintf(id_out, 72, "%s", id);
		return 0;
	}
	if (ref.digest[0]) {
		/* Pulled under another name: the manifest digest decides. */
		struct match_digest m = {.digest = ref.digest};
		if (ac_image_each_record(storefd, NULL, match_manifest, &m, err) < 0)
			return -1;
		if (m.n > 0 && ac_image_digest_valid(m.id)) {
			snprintf(id_out, 72, "%s", m.id);
			return 0;
		}
	}
	return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
			    "image '%.200s' is not in the store (agentcell image pull %.200s)",
			    name, name);
}

int ac_image_record_load(int storefd, const json_t *index, const char *id, json_t **record,
			 ac_error_t **err)
{
	const char *hex = ac_image_digest_hex(id);
	if (hex == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad image id '%.100s'", id);
	ac_error_t *e = NULL;
	if (record_read(storefd, index, hex, record, &e) < 0) {
		if (e->kind == AC_ERR_NOT_FOUND) {
			ac_error_free(e);
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "image %s is named in the store's index but its record "
					    "is missing (agentcell image prune)",
					    id);
		}
		if (err && *err == NULL)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	return 0;
}

int ac_image_lookup(const char *home, const char *name, bool template, json_t **record,
		    ac_error_t **err)
{
	*record = NULL;
	json_auto_t *index = NULL;
	_cleanup_close_ int storefd = ac_image_open_index(home, NULL, &index, err);
	if (storefd < 0)
		return -1;
	char id[72];
	if (ac_image_resolve_id(storefd, index, name, template, id, err) < 0)
		return -1;
	return ac_image_record_load(storefd, index, id, record, err);
}

struct list_ctx {
	json_t *out;
	bool templates;
};

static int list_one(json_t *rec, void *arg, ac_error_t **err)
{
	struct list_ctx *l = arg;
	bool is_template = json_is_object(json_object_get(rec, "template"));
	if (is_template == l->templates)
		json_array_append(l->out, rec);
	return 0;
}

/* The time a record sorts by: a template's created_at, else the image's created. */
static int64_t record_time(const json_t *rec)
{
	const char *s =
	    json_string_value(json_object_get(json_object_get(rec, "template"), "created_at"));
	if (s == NULL)
		s = json_string_value(json_object_get(rec, "created"));
	int64_t ms;
	if (s == NULL || ac_time_parse_rfc3339(s, &ms) < 0)
		return INT64_MIN;
	return ms;
}

static int cmp_newest(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int64_t tx = record_time(x), ty = record_time(y);
	if (tx != ty)
		return tx > ty ? -1 : 1;
	const char *ix = json_string_value(json_object_get(x, "id"));
	const char *iy = json_string_value(json_object_get(y, "id"));
	return strcmp(ix ? ix : "", iy ? iy : "");
}

int ac_image_list(const char *home, bool templates, json_t **out, ac_error_t **err)
{
	*out = NULL;
	json_auto_t *index = NULL;
	_cleanup_close_ int storefd = ac_image_open_index(home, NULL, &index, err);
	if (storefd < 0)
		return -1;
	struct list_ctx l = {.out = json_array(), .templates = templates};
	if (l.out == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot list images");
	if (ac_image_each_record(storefd, index, list_one, &l, err) < 0) {
		json_decref(l.out);
		return -1;
	}
	ac_json_array_sort(l.out, cmp_newest);
	*out = l.out;
	return 0;
}
