/* Snapshots and templates (agentcell snapshot, template ls|rm): a stopped sandbox's changes
 * become one more OCI layer on top of its image's layers, stored in the image store
 * (src/image/image.h) as an image with a "template" object that `create --template NAME`
 * starts from. The backend writes the layer (ops.snapshot); this file makes the config and
 * manifest around it, commits the record and keeps the bookkeeping (locks, audit, which
 * sandboxes use a template). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"
#include "core/internal.h"
#include "image/image.h"

#define CONFIG_MAX (4u << 20)

#define MT_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG	"application/vnd.oci.image.config.v1+json"
#define MT_LAYER_GZIP	"application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

bool ac_template_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* GOARCH names, as image configs spell them. */
static const char *host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__arm__)
	return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

/* $home/images with blobs/tmp and blobs/sha256 (0700): an O_PATH descriptor of images/. */
static int open_images(const char *home, ac_error_t **err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/images", home);
	if (ac_mkdir_p_at(AT_FDCWD, path, 0700, err) < 0)
		return -1;
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", path);
	if (ac_mkdir_p_at(fd, "blobs/tmp", 0700, err) < 0 ||
	    ac_mkdir_p_at(fd, "blobs/sha256", 0700, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The image the sandbox was made from (its record), or NULL for one on the host or a
 * directory (no "image_id"). */
static int base_record(ac_manager_t *m, const json_t *st, json_t **rec, ac_error_t **err)
{
	*rec = NULL;
	const char *id = ac_state_str(st, "image_id", NULL);
	if ((!id || !*id) && json_array_size(json_object_get(st, "image_layers")))
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "sandbox '%s' runs on image layers that no image record "
				    "describes: it cannot be snapshotted",
				    ac_state_str(st, "name", "?"));
	if (!id || !*id)
		return 0;
	ac_error_t *e = NULL;
	if (ac_image_lookup(ac_manager_home(m), id, false, rec, &e) == 0) {
		ac_error_free(e);
		return 0;
	}
	int kind = e ? e->kind : AC_ERR_INTERNAL;
	ac_error_free(e);
	return ac_error_set(err, kind == AC_ERR_NOT_FOUND ? AC_ERR_STATE : kind, 0,
			    "the image of sandbox '%s' (%s) is no longer in the store",
			    ac_state_str(st, "name", "?"), id);
}

/* The new image's config: the base image's config blob (Env, WorkingDir, User, Entrypoint,
 * Cmd and the rest as they were) or, on the host or a directory, an empty one; the new
 * layer's diff_id appended to rootfs.diff_ids and a history entry for it. */
static json_t *new_config(int imgfd, const json_t *base, const char *sandbox,
			  const char *description, const char *diff_id, const char *now,
			  ac_error_t **err)
{
	json_t *cfg = NULL;
	const char *id = base ? ac_state_str(base, "id", NULL) : NULL;
	if (id && ac_image_digest_valid(id)) {
		char rel[128], *buf = NULL;
		size_t len = 0;
		snprintf(rel, sizeof(rel), "blobs/sha256/%s", id + 7);
		if (ac_read_file_at(imgfd, rel, CONFIG_MAX, &buf, &len, err) < 0)
			return NULL;
		cfg = json_loadb(buf, len, 0, NULL);
		free(buf);
		if (!json_is_object(cfg)) {
			json_decref(cfg);
			ac_error_set(err, AC_ERR_INTERNAL, 0, "the config blob %s does not parse",
				     id);
			return NULL;
		}
	} else {
		cfg =
		    json_pack("{ss ss s{}}", "architecture", host_arch(), "os", "linux", "config");
	}
	if (!cfg) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		return NULL;
	}
	json_object_set_new(cfg, "created", json_string(now));
	json_t *rootfs = json_object_get(cfg, "rootfs");
	if (!json_is_object(rootfs)) {
		rootfs = json_pack("{ss s[]}", "type", "layers", "diff_ids");
		json_object_set_new(cfg, "rootfs", rootfs);
	}
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids)) {
		ids = json_array();
		json_object_set_new(rootfs, "diff_ids", ids);
	}
	json_array_append_new(ids, json_string(diff_id));
	json_t *hist = json_object_get(cfg, "history");
	if (!json_is_array(hist)) {
		hist = json_array();
		json_object_set_new(cfg, "history", hist);
	}
	char by[200];
	snprintf(by, sizeof(by), "agentcell snapshot %s", sandbox);
	json_t *h = json_pack("{ss ss}", "created", now, "created_by", by);
	if (h && description)
		json_object_set_new(h, "comment", json_string(description));
	json_array_append_new(hist, h);
	return cfg;
}

/* The OCI manifest: the base image's layers (bottom first) and the new one. */
static json_t *new_manifest(const json_t *base, const char *cfg_digest, size_t cfg_len,
			    const char *layer_digest, uint64_t layer_size, const char *tmpl,
			    const char *now)
{
	json_t *layers = json_array();
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(base, "layers"), i, l)
	{
		/* One manifest speaks one dialect: Docker's gzip layer type is OCI's. */
		const char *mt = ac_state_str(l, "media_type", MT_LAYER_GZIP);
		if (!strcmp(mt, MT_DOCKER_LAYER))
			mt = MT_LAYER_GZIP;
		json_array_append_new(layers, json_pack("{ss sO ss}", "mediaType", mt, "size",
							json_object_get(l, "size"), "digest",
							ac_state_str(l, "digest", "")));
	}
	json_array_append_new(layers, json_pack("{ss sI ss}", "mediaType", MT_LAYER_GZIP, "size",
						(json_int_t)layer_size, "digest", layer_digest));
	return json_pack("{si ss s{ss sI ss} so s{ss ss}}", "schemaVersion", 2, "mediaType",
			 MT_MANIFEST, "config", "mediaType", MT_CONFIG, "size", (json_int_t)cfg_len,
			 "digest", cfg_digest, "layers", layers, "annotations",
			 "org.opencontainers.image.created", now, "io.agentcell.template", tmpl);
}

/* The backend writes the layer to a temp file in blobs/tmp, which becomes
 * blobs/sha256/<hex> and is unpacked into layers/. */
static int write_layer(ac_manager_t *m, const ac_backend_t *b, const json_t *st, int imgfd,
		       char digest[72], char diff_id[72], uint64_t *size, ac_error_t **err)
{
	char uuid[37], tmp[128], dst[128];
	ac_uuid_v7(uuid);
	snprintf(tmp, sizeof(tmp), "blobs/tmp/snapshot-%s", uuid);
	_cleanup_close_ int fd =
	    openat(imgfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot create a temporary file in %s/images/blobs/tmp",
				    ac_manager_home(m));
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	digest[0] = diff_id[0] = '\0';
	struct stat sb;
	int rc = b->ops->snapshot(&ctx, st, fd, digest, diff_id, err);
	if (rc == 0 && (!ac_image_digest_valid(digest) || !ac_image_digest_valid(diff_id)))
		rc = ac_error_set(err, AC_ERR_INTERNAL, 0,
				  "the %s backend's snapshot gave no layer digest", b->name);
	if (rc == 0 && (fsync(fd) < 0 || fstat(fd, &sb) < 0))
		rc = ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot write the snapshot layer");
	if (rc == 0) {
		snprintf(dst, sizeof(dst), "blobs/sha256/%s", digest + 7);
		if (renameat(imgfd, tmp, imgfd, dst) < 0)
			rc = ac_error_set(err, AC_ERR_INTERNAL, errno,
					  "cannot move the snapshot layer into the store");
	}
	if (rc < 0) {
		unlinkat(imgfd, tmp, 0);
		return -1;
	}
	*size = (uint64_t)sb.st_size;
	uint64_t unpacked = 0;
	return ac_image_layer_ensure(ac_manager_home(m), digest, &unpacked, err);
}

/* A JSON document into the store as a blob; its digest in digest (72) and its length. */
static int put_json(ac_manager_t *m, const json_t *j, char digest[72], size_t *len,
		    ac_error_t **err)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!s)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	*len = strlen(s);
	int rc = ac_image_blob_put(ac_manager_home(m), s, *len, NULL, digest, err);
	free(s);
	return rc;
}

/* Under the sandbox's lock: everything from the running check to the commit. */
static int snapshot_locked(ac_manager_t *m, const json_t *st, const char *name, const char *tmpl,
			   const char *description, json_t **record, ac_error_t **err)
{
	const ac_backend_t *b = ac_backend_of(st, err);
	if (!b || ac_backend_require(b, AC_CAP_SNAPSHOT, "snapshots", err) < 0 ||
	    !b->ops->snapshot) {
		if (b && err && !*err)
			ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				     "snapshots are not supported by the %s backend", b->name);
		return -1;
	}
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	if (b->ops->is_running(&ctx, st, NULL))
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "sandbox '%s' is running: stop it first (agentcell stop %s)",
				    name, name);
	json_t *base = NULL;
	if (base_record(m, st, &base, err) < 0)
		return -1;
	const char *home = ac_manager_home(m);
	_cleanup_close_ int imgfd = open_images(home, err);
	char digest[72], diff_id[72], cfg_digest[72], man_digest[72], now[32];
	uint64_t layer_size = 0;
	size_t cfg_len = 0, man_len = 0;
	json_t *cfg = NULL, *man = NULL, *tpl = NULL;
	int rc = -1;
	ac_time_now_rfc3339(now);
	if (imgfd < 0 || write_layer(m, b, st, imgfd, digest, diff_id, &layer_size, err) < 0)
		goto out;
	if (!(cfg = new_config(imgfd, base, name, description, diff_id, now, err)) ||
	    put_json(m, cfg, cfg_digest, &cfg_len, err) < 0)
		goto out;
	man = new_manifest(base, cfg_digest, cfg_len, digest, layer_size, tmpl, now);
	if (put_json(m, man, man_digest, &man_len, err) < 0)
		goto out;
	/* What lies under the layers: the base image's, else the sandbox's own root. */
	const char *under = base
				? ac_state_str(base, "base", "oci")
				: ac_state_str(st, "image_base", ac_state_str(st, "image", "host"));
	tpl = json_pack("{ss ss* ss ss}", "name", tmpl, "description", description, "from", name,
			"created_at", now);
	if (!tpl) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	rc = ac_image_commit(home, man_digest, NULL, under, tpl, record, err);
	if (rc == 0)
		ac_audit_log(m, "snapshot", name,
			     json_pack("{ss ss* ss* ss sI}", "template", tmpl, "description",
				       description, "image_id",
				       json_string_value(json_object_get(*record, "id")), "layer",
				       digest, "layer_size", (json_int_t)layer_size));
out:
	json_decref(base);
	json_decref(cfg);
	json_decref(man);
	json_decref(tpl);
	return rc;
}

int ac_manager_snapshot(ac_manager_t *m, const char *name, const char *tmpl,
			const char *description, bool force, json_t **record, ac_error_t **err)
{
	if (!ac_template_name_valid(tmpl))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid template name '%s': use 1-63 of a-z 0-9 _ . -, "
				    "starting with a letter or digit",
				    tmpl ? tmpl : "");
	if (description && strlen(description) > AC_DESCRIPTION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the description is longer than %d bytes", AC_DESCRIPTION_MAX);
	json_t *desc_check = description ? json_string(description) : NULL;
	if (description && !desc_check)
		return ac_error_set(err, AC_ERR_INVALID, 0, "the description is not valid UTF-8");
	json_decref(desc_check);
	int lock;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0)
		return -1;
	json_t *old = NULL;
	ac_error_t *e = NULL;
	int rc = -1;
	if (ac_image_lookup(ac_manager_home(m), tmpl, true, &old, &e) == 0 && !force) {
		ac_error_set(err, AC_ERR_EXISTS, 0,
			     "template '%s' already exists (replace it with snapshot --force, or "
			     "remove it: agentcell template rm %s)",
			     tmpl, tmpl);
	} else if (!old && e && e->kind != AC_ERR_NOT_FOUND) {
		if (err && !*err)
			*err = steal_ptr(e);
	} else {
		json_t *rec = NULL;
		rc = snapshot_locked(m, st, name, tmpl, description, &rec, err);
		if (rc == 0 && record)
			*record = rec;
		else
			json_decref(rec);
	}
	ac_error_free(e);
	json_decref(old);
	json_decref(st);
	close(lock);
	return rc;
}

int ac_manager_template_list(ac_manager_t *m, json_t **out, ac_error_t **err)
{
	json_t *all = NULL;
	if (ac_image_list(ac_manager_home(m), true, &all, err) < 0)
		return -1;
	json_t *res = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		if (json_is_object(json_object_get(r, "template")))
			json_array_append(res, r);
	}
	json_decref(all);
	*out = res;
	return 0;
}

int ac_manager_template_remove(ac_manager_t *m, const char *tmpl, json_t **removed,
			       ac_error_t **err)
{
	if (!ac_template_name_valid(tmpl))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid template name '%s'",
				    tmpl ? tmpl : "");
	char **ids = NULL, **names = NULL;
	if (ac_manager_image_users(m, &ids, &names, err) < 0)
		return -1;
	json_t *gone = NULL;
	int rc = ac_image_remove(ac_manager_home(m), tmpl, true, ids, names, &gone, err);
	ac_strv_free(ids);
	ac_strv_free(names);
	if (rc < 0)
		return -1;
	ac_audit_log(m, "template_remove", NULL,
		     json_pack("{ss sO*}", "template", tmpl, "removed", gone));
	if (removed)
		*removed = gone;
	else
		json_decref(gone);
	return 0;
}
