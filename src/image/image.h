/* The native backend's image store: OCI images pulled from registries (OCI distribution
 * protocol over libcurl), imported from archives, or made from sandboxes (snapshots, kept as
 * templates), unpacked once per layer and stacked as overlay lower directories.
 *
 * Layer: src/image/ sits below core (which resolves --image/--template and keeps the
 * bookkeeping: which sandbox uses what) and above base; the runtime never includes it (it
 * gets directories in ac_rt_spec_t.layers).
 *
 * Layout under $AGENTCELL_HOME/images (all created 0700, owned by root):
 *   blobs/sha256/<hex>     verified blobs: manifests, configs, compressed layers (kept for
 *                          export and to re-verify); written to blobs/tmp/ then renamed
 *   blobs/tmp/<hex>.partial  an interrupted download, resumed with an HTTP Range request
 *   layers/<hex>/          a layer unpacked in overlay form (whiteouts as 0/0 character
 *                          devices, opaque directories with trusted.overlay.opaque=y),
 *                          <hex> = the digest of the layer blob the manifest names; made in
 *                          layers/tmp.XXXXXX and renamed into place when complete, so a
 *                          layer directory that exists is whole. Read-only to sandboxes.
 *   layers/<hex>.json      {digest, diff_id, size (bytes unpacked), media_type}
 *   records/<hex>.json     one image: the record below, <hex> = its config digest
 *   index.json             {"refs": {canonical ref: "sha256:<config hex>"},
 *                           "templates": {name: "sha256:<config hex>"}}
 *   lock                   flock: held while index.json or records/ change
 *   layers/<hex>.lock      flock: held while that layer is unpacked (concurrent pulls)
 *   auth.json              `image login` credentials, 0600, Docker's config.json format
 *
 * An image record (records/<hex>.json), also what inspect prints:
 *   {"id": "sha256:<config hex>", "refs": [canonical refs], "manifest_digest": "sha256:..",
 *    "manifest_media_type": "...", "os": "linux", "architecture": "amd64",
 *    "created": RFC 3339 | null, "size": bytes unpacked (sum of layers),
 *    "base": "oci" | "host" | "/abs/dir"   (what lies under the layers: nothing, the host's
 *                                           /usr etc. (a host template), an image directory)
 *    "layers": [{"digest": "sha256:..", "size": compressed bytes, "media_type": ".."}]
 *              (bottom first, as in the manifest),
 *    "config": {"env": [..], "workdir": str|null, "user": str|null,
 *               "entrypoint": [..]|null, "cmd": [..]|null, "labels": {..}},
 *    "template": null | {"name", "description": str|null, "from": sandbox name,
 *                        "created_at": RFC 3339}}
 *
 * A sandbox made from an image or template records in its state (core/build.c):
 *   "image": canonical ref (or "template:NAME"), "image_id": "sha256:..",
 *   "image_base": the record's base, "image_layers": ["<hex>", ...] (bottom first),
 *   "workdir", "user" (the commands' defaults, from the image config),
 *   "created_from_template": name|null, "template_help_text": description|null;
 * the image's Env is merged into the state's "env" at create (the caller's entries win).
 *
 * Errors: AC_ERR_INVALID (bad reference, bad archive, hostile layer), AC_ERR_NOT_FOUND
 * (image/tag/template unknown, locally or in the registry: the message names which),
 * AC_ERR_PERMISSION (registry 401/403 after auth), AC_ERR_BACKEND (registry unreachable,
 * 5xx, digest mismatch: "layer sha256:.. does not match its digest"), AC_ERR_STATE (rm of an
 * image a sandbox uses: names the sandbox), AC_ERR_UNSUPPORTED (libcurl/libarchive missing). */
#ifndef AGENTCELL_IMAGE_H
#define AGENTCELL_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"

/* ------------------------------------------------------------------ references (ref.c) */

/* A reference as Docker understands it: "python:3.12-slim" is
 * docker.io/library/python:3.12-slim; "registry.corp:5000/team/agent:1.4";
 * "alpine@sha256:<64 hex>"; "name:tag@sha256:..." keeps both (the digest decides). The
 * first component is a registry host when it contains '.' or ':' or is "localhost". */
typedef struct ac_image_ref {
	char registry[256]; /* "docker.io" for Docker Hub (API host: registry-1.docker.io) */
	char repo[256];	    /* "library/python" */
	char tag[129];	 /* "latest" when neither tag nor digest was given; "" with a digest only */
	char digest[72]; /* "sha256:<64 lowercase hex>" or "" */
} ac_image_ref_t;

/* Parses s; AC_ERR_INVALID with a message naming the bad part. */
int ac_image_ref_parse(const char *s, ac_image_ref_t *out, ac_error_t **err);
/* "docker.io/library/python:3.12-slim", "host:5000/a/b@sha256:..", or with both. */
void ac_image_ref_format(const ac_image_ref_t *r, char *buf, size_t len);
/* Whether s names an image directory rather than a reference: "host", an absolute path,
 * or one starting with "./" or "../" (core/build.c decides with this). */
bool ac_image_is_directory(const char *s);
/* "sha256:<64 lowercase hex>" */
bool ac_image_digest_valid(const char *s);

/* ------------------------------------------------------------------ pulling (registry.c) */

typedef struct ac_image_pull_opts {
	const char *home; /* $AGENTCELL_HOME */
	/* Registries ("host" or "host:port") spoken to over plain HTTP (--insecure-registry,
	 * [images] insecure); NULL-terminated or NULL. Everything else is HTTPS, verified
	 * against the system CAs plus $AGENTCELL_REGISTRY_CA (a PEM file) when set. */
	char *const *insecure;
	/* Credentials file; NULL: $REGISTRY_AUTH_FILE, then $HOME/.docker/config.json, then
	 * images/auth.json (`image login`): the first that has the registry. */
	const char *auth_file;
	int progress_fd;       /* a terminal: a progress display (one line per layer); -1: none */
	int parallel;	       /* layer downloads at once; 0: 3 */
	int cancel_fd;	       /* > 0: the caller gave up when readable or hung up */
	const char *os, *arch; /* NULL: "linux" and this machine's (GOARCH names: amd64, arm64) */
} ac_image_pull_opts_t;

/* Pulls ref into the store (manifest list/OCI index -> this platform's manifest; Docker
 * v2 schema 2 or OCI manifest; gzip, zstd or plain tar layers; every blob verified), tags it,
 * and returns its record (to json_decref). A layer already unpacked is not fetched again. */
int ac_image_pull(const ac_image_pull_opts_t *o, const char *ref, json_t **record,
		  ac_error_t **err);
/* `image login`: checks user/password against the registry (a GET /v2/ with the
 * challenge's auth) and stores them in images/auth.json (0600). */
int ac_image_login(const ac_image_pull_opts_t *o, const char *registry, const char *user,
		   const char *password, ac_error_t **err);
int ac_image_logout(const char *home, const char *registry, ac_error_t **err);

/* ------------------------------------------------------------------ the store (store.c) */

/* The record of an image named by a reference (as given: normalized here), by its id
 * ("sha256:<hex>" or a unique prefix of 12+ hex digits), or, with template, of a template
 * by name. AC_ERR_NOT_FOUND "image 'x' is not in the store (agentcell image pull x)". */
int ac_image_lookup(const char *home, const char *name, bool template, json_t **record,
		    ac_error_t **err);
/* All records, newest first (for image ls / template ls: templates have "template"). */
int ac_image_list(const char *home, bool templates, json_t **out, ac_error_t **err);
/* The absolute directory of a layer: "$home/images/layers/<hex>". */
void ac_image_layer_dir(const char *home, const char *layer_hex, char *buf, size_t len);
/* Removes a tag (or, named by id, the image and all its tags) or a template. An image that
 * a sandbox uses is refused: in_use lists the image ids of every sandbox's state
 * ("sha256:.."; NULL-terminated; core collects them) with their sandbox names beside
 * (in_use_names[i]); force removes the tags only, never the files a sandbox needs. */
int ac_image_remove(const char *home, const char *name, bool template, char *const *in_use,
		    char *const *in_use_names, json_t **removed, ac_error_t **err);
/* Removes untagged images no sandbox uses, then every layer and blob no record names;
 * *freed: bytes. */
int ac_image_prune(const char *home, char *const *in_use, json_t **removed, uint64_t *freed,
		   ac_error_t **err);

/* Adds a verified compressed (gzip/zstd) or plain tar layer blob already at
 * blobs/sha256/<hex> to layers/ (unpack.c), unless there; safe against concurrent callers.
 * *size: bytes unpacked. Used by pull, import and snapshot. */
int ac_image_layer_ensure(const char *home, const char *blob_digest, uint64_t *size,
			  ac_error_t **err);
/* Writes a blob into the store from a buffer (manifests, configs), verifying expect when
 * given (else returns the computed digest in digest_out, 72 bytes). */
int ac_image_blob_put(const char *home, const void *data, size_t len, const char *expect,
		      char *digest_out, ac_error_t **err);
/* Records an image from its manifest and config blobs (already in blobs/ and verified;
 * its layers ensured) and points ref (canonical; may be NULL) at it. template: NULL or the
 * "template" object of the record (its name goes into the index's templates). */
int ac_image_commit(const char *home, const char *manifest_digest, const char *ref,
		    const char *base, json_t *template, json_t **record, ac_error_t **err);

/* ------------------------------------------------------------------ unpacking (unpack.c) */

/* Unpacks one layer (a tar, gzip- or zstd-compressed or plain: detected) read from fd into
 * the empty directory dirfd, in overlay form. Never writes outside dirfd: entries with ".."
 * components, absolute names (made relative), paths through symlinks, hard links to names
 * outside the layer or not yet unpacked, and device nodes other than whiteouts are refused
 * (AC_ERR_INVALID naming the entry) or, for devices, skipped; setuid bits and ownership
 * are kept (uids as in the tar: the overlay is idmapped into the sandbox). *size: bytes. */
int ac_image_unpack(int fd, int dirfd, uint64_t *size, ac_error_t **err);
/* Writes the upper directory of an overlay (dirfd: whiteouts as 0/0 character devices,
 * opaque directories by trusted.overlay.opaque) as an OCI layer: a gzip-compressed tar with
 * ".wh.NAME" and ".wh..wh..opq" entries, to out_fd. prefix: path of every entry ("" or
 * "usr/", for a host template's /usr overlay). Appends to an archive already open when
 * called through ac_image_diff_* (below). */
typedef struct ac_image_diff ac_image_diff_t;
int ac_image_diff_begin(int out_fd, ac_image_diff_t **d, ac_error_t **err);
int ac_image_diff_add(ac_image_diff_t *d, int upper_dirfd, const char *prefix, ac_error_t **err);
/* Closes the archive; digest_out (72 bytes): "sha256:" of the compressed bytes, diff_id_out
 * (72): of the uncompressed tar. Frees d in every case. */
int ac_image_diff_end(ac_image_diff_t *d, char *digest_out, char *diff_id_out, ac_error_t **err);

/* ------------------------------------------------------------------ archives (archive.c) */

/* `image import PATH [REF]`: a `docker save` / `podman save` tar (manifest.json, or its
 * OCI index.json) or an OCI image layout directory. Each image it holds is stored and
 * tagged with its RepoTags/annotation (or ref when given and the archive holds one image).
 * *records: array of the records. */
int ac_image_import(const char *home, const char *path, const char *ref, json_t **records,
		    ac_error_t **err);
/* `image export NAME PATH`: a tar that both `docker load`/`podman load` (manifest.json)
 * and OCI tools (oci-layout, index.json) read, with the original blobs (same digests).
 * PATH "-": stdout. */
int ac_image_export(const char *home, const char *name, const char *path, ac_error_t **err);

/* ------------------------------------------------------------------ volumes (volume.c) */

/* Named volumes under $AGENTCELL_HOME/volumes: <name>/data (the tree a sandbox sees; owned
 * by root, which the idmapped mount shows as the sandbox's root) and <name>.json
 * {"name", "created_at", "labels"}. Names: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}, not *.json. */
int ac_volume_create(const char *home, const char *name, json_t **record, ac_error_t **err);
/* The same with labels (NULL or an object of strings) in the record. */
int ac_volume_create_labeled(const char *home, const char *name, const json_t *labels,
			     json_t **record, ac_error_t **err);
int ac_volume_list(const char *home, json_t **out, ac_error_t **err);
/* inspect: the record plus "path" (host) and "size" (bytes). */
int ac_volume_inspect(const char *home, const char *name, json_t **out, ac_error_t **err);
/* Refused (AC_ERR_STATE naming the sandbox) when in_use_names (sandbox names that mount
 * it; NULL-terminated; core collects them) is not empty. */
int ac_volume_remove(const char *home, const char *name, char *const *in_use_names,
		     ac_error_t **err);
/* The host directory of an existing volume; AC_ERR_NOT_FOUND "volume 'x' not found: create
 * it with 'agentcell volume create x'". */
int ac_volume_path(const char *home, const char *name, char *buf, size_t len, ac_error_t **err);
/* Parses "NAME:/path[:ro|:rw]" into a state entry {"name", "path", "read_only"}. */
int ac_volume_spec_parse(const char *s, json_t **out, ac_error_t **err);

#endif
