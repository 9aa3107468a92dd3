/* Private helpers shared by the files of src/image/ (implemented in store.c): the store's directory
 * layout under $AGENTCELL_HOME/images (image.h describes it), its lock, blob paths and
 * atomic JSON writes. Not for use outside src/image/. */
#ifndef AGENTCELL_IMAGE_INTERNAL_H
#define AGENTCELL_IMAGE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentcell/error.h"

/* Caps on what the store reads back from its own files and from registries/archives. */
#define AC_IMAGE_MANIFEST_MAX (4u << 20)  /* manifests, indexes, configs */
#define AC_IMAGE_JSON_MAX     (16u << 20) /* index.json, records, layers/<hex>.json */

/* Media types (image.h: manifests are OCI or Docker schema 2). */
#define AC_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define AC_MT_OCI_INDEX	      "application/vnd.oci.image.index.v1+json"
#define AC_MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define AC_MT_OCI_LAYER	      "application/vnd.oci.image.layer.v1.tar"
#define AC_MT_OCI_LAYER_GZIP  "application/vnd.oci.image.layer.v1.tar+gzip"
#define AC_MT_OCI_LAYER_ZSTD  "application/vnd.oci.image.layer.v1.tar+zstd"
#define AC_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define AC_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define AC_MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define AC_MT_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* "$home/images" into buf; -1 with AC_ERR_INTERNAL when it does not fit. */
int ac_image_dir(const char *home, char *buf, size_t len, ac_error_t **err);

/* Opens (creating when missing, 0700) $home/images and its sub-directories blobs/sha256,
 * blobs/tmp, layers, records. Returns an O_RDONLY|O_DIRECTORY|O_CLOEXEC descriptor of
 * images/ (use it with *at() calls; close it), or -1. */
int ac_image_open_store(const char *home, ac_error_t **err);

/* Takes the store lock (flock LOCK_EX on images/lock, waiting); returns the lock's fd (to
 * close: that releases it), or -1. Held while index.json or records/ change. Never take it
 * twice in one process (flock does not nest across descriptors). */
int ac_image_lock(int storefd, ac_error_t **err);
/* ac_image_open_store, then ac_image_lock: the store's fd (*lock: the lock's fd, or -1 on
 * failure; close both), or -1. */
int ac_image_open_locked(const char *home, int *lock, ac_error_t **err);

/* "sha256:<64 hex>" -> the 64 hex (pointer into s), or NULL when not a valid digest. */
const char *ac_image_digest_hex(const char *s);

/* Relative paths below images/ (buf of at least 128 bytes):
 * "blobs/sha256/<hex>", "layers/<hex>", "records/<hex>.json". hex: 64 lowercase hex. */
void ac_image_blob_path(const char *hex, char *buf, size_t len);
void ac_image_layer_path(const char *hex, char *buf, size_t len);
void ac_image_record_path(const char *hex, char *buf, size_t len);

/* Reads blobs/sha256/<hex of digest> (at most max bytes) into *out (NUL-terminated, to
 * free); AC_ERR_NOT_FOUND "blob sha256:.. is not in the store" when missing. */
int ac_image_blob_read(int storefd, const char *digest, size_t max, char **out, size_t *len,
		       ac_error_t **err);

/* Moves a complete, already verified file (tmp_rel, relative to images/, e.g. under
 * blobs/tmp/) to blobs/sha256/<hex>: fsync, rename, fsync of the directory. An existing
 * blob of that digest is kept (same content) and tmp_rel removed. */
int ac_image_blob_install(int storefd, const char *tmp_rel, const char *hex, ac_error_t **err);

/* Reads a JSON file below images/ (rel path); *out NULL (and 0 returned) when missing and
 * missing_ok, else AC_ERR_NOT_FOUND. A file that does not parse is AC_ERR_INTERNAL. */
int ac_image_json_read(int storefd, const char *rel, bool missing_ok, json_t **out,
		       ac_error_t **err);
/* Writes j to rel below images/ atomically (temp + fsync + rename + fsync dir), 0600. */
int ac_image_json_write(int storefd, const char *rel, const json_t *j, ac_error_t **err);

/* index.json: {"refs": {}, "templates": {}} when missing (caller holds the lock to write). */
int ac_image_index_read(int storefd, json_t **index, ac_error_t **err);
/* ac_image_open_store (lock NULL) or ac_image_open_locked, then ac_image_index_read: the
 * store's fd (close it, and *lock), or -1. */
int ac_image_open_index(const char *home, int *lock, json_t **index, ac_error_t **err);

/* The id ("sha256:..") that name means (image.h: ac_image_lookup's rules) in index. */
int ac_image_resolve_id(int storefd, const json_t *index, const char *name, bool template,
			char id_out[72], ac_error_t **err);
/* Reads the record of id, its "refs" recomputed from index (when not NULL). */
int ac_image_record_load(int storefd, const json_t *index, const char *id, json_t **record,
			 ac_error_t **err);
/* Calls fn on every record (refs from index when not NULL); stops at fn's error (< 0). A
 * record removed meanwhile is skipped. */
int ac_image_each_record(int storefd, const json_t *index,
			 int (*fn)(json_t *rec, void *arg, ac_error_t **err), void *arg,
			 ac_error_t **err);

/* ac_image_unpack with more (unpack.c): expect_hex (64 hex or NULL) is checked against the
 * sha256 of every byte read from fd (mismatch: AC_ERR_BACKEND "layer sha256:.. does not
 * match its digest"); diff_id_out (72 bytes or NULL): "sha256:" of the uncompressed tar;
 * media_type_out (or NULL): the OCI layer media type of what was read (tar, tar+gzip,
 * tar+zstd). *devices (or NULL): device nodes skipped. */
int ac_image_unpack_layer(int fd, int dirfd, const char *expect_hex, uint64_t *size,
			  char *diff_id_out, const char **media_type_out, uint64_t *devices,
			  ac_error_t **err);

/* What ac_image_remove and ac_image_prune return in *removed: an array of objects, each
 * one of {"untagged": ref or "template:NAME"}, {"deleted": "sha256:<image id>"},
 * {"layer": "sha256:.."} (an unpacked layer), {"blob": "sha256:.."}, {"partial": name}
 * (a temporary left by a killed pull/unpack), each with "size" (bytes freed) where files
 * went. ac_image_remove with in_use == NULL is `--force`: it removes tags (or the
 * template's name) only and keeps the record and its files for prune to decide. */

#endif
