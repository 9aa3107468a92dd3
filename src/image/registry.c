/* Pulling an image over the OCI distribution protocol (image.h: ac_image_pull): the
 * manifest by tag or digest (verified against the requested digest or the registry's
 * Docker-Content-Digest), an OCI index or Docker manifest list resolved to this
 * platform's manifest, the config and layer blobs fetched in parallel (fetch.c), every
 * layer unpacked once (ac_image_layer_ensure) and the image committed under its canonical
 * reference. Requests answer one 401 challenge (auth.c) and, for registries listed as
 * insecure, fall back from HTTPS to plain HTTP as Docker does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/sha256.h"
#include "base/util.h"
#include "image/internal.h"
#include "image/registry.h"

#define ACCEPT_MANIFESTS                                                                           \
	"Accept: " AC_MT_OCI_INDEX ", " AC_MT_DOCKER_LIST ", " AC_MT_OCI_MANIFEST                  \
	", " AC_MT_DOCKER_MANIFEST
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1"

int ac_reg_get(ac_reg_t *r, const char *path, const char *accept, size_t max, ac_reg_resp_t *resp,
	       ac_error_t **err)
{
	bool answered = false;
	char scope[600];
	snprintf(scope, sizeof(scope), "repository:%s:pull", r->repo);
	for (int attempt = 0; attempt < 4; attempt++) {
		char url[1024];
		snprintf(url, sizeof(url), "%s://%s/v2/%s", r->plain ? "http" : "https", r->host,
			 path);
		struct curl_slist *hdrs = NULL;
		if (r->authz)
			hdrs = ac_curl.curl_slist_append(hdrs, r->authz);
		if (accept)
			hdrs = ac_curl.curl_slist_append(hdrs, accept);
		ac_error_t *e = NULL;
		int rc = ac_reg_http_get(r, url, hdrs, max, resp, &e);
		ac_curl.curl_slist_free_all(hdrs);
		if (rc < 0) {
			if (r->insecure && !r->plain && r->transport_failed &&
			    !ac_reg_cancelled(r)) {
				/* Docker's order for an insecure registry: TLS, then HTTP. */
				ac_error_free(e);
				r->plain = true;
				continue;
			}
			if (err && !*err)
				*err = e;
			else
				ac_error_free(e);
			return -1;
		}
		if (resp->status == 401 && !answered && resp->www_auth) {
			answered = true;
			char *www = steal_ptr(resp->www_auth);
			ac_reg_resp_free(resp);
			rc = ac_reg_authenticate(r, www, r->repo[0] ? scope : NULL, err);
			free(www);
			if (rc < 0)
				return -1;
			continue;
		}
		return 0;
	}
	return 0;
}

int ac_reg_status_error(const ac_reg_t *r, const char *noun, const ac_reg_resp_t *resp,
			ac_error_t **err)
{
	/* The distribution spec's error body: {"errors": [{"code", "message", "detail"}]}. */
	char msg[240] = "";
	json_t *j = resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	const char *m = json_string_value(json_object_get(e0, "message"));
	if (!m)
		m = json_string_value(json_object_get(e0, "code"));
	if (m && *m)
		snprintf(msg, sizeof(msg), ": %s", m);
	json_decref(j);
	long st = resp->status;
	if (st == 404)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "%s unknown: %s (404)", noun,
				    r->what);
	if (st == 401)
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "unauthorized: %s (401)%s%s: %s agentcell image login %s",
				    r->what, r->user ? "" : ": the repository does not exist or ",
				    r->user ? "" : "needs credentials",
				    r->user ? "check the credentials of" : "use", r->registry);
	if (st == 403)
		return ac_error_set(err, AC_ERR_PERMISSION, 0, "denied: %s (403)%s", r->what, msg);
	if (st == 429)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "too many requests: %s (429)%s",
				    r->what, msg);
	return ac_error_set(err, AC_ERR_BACKEND, 0, "%s of %s: the registry answered %ld%s", noun,
			    r->what, st, msg);
}

/* ------------------------------------------------------------------ platforms */

static void native_platform(const char **arch, const char **variant)
{
#if defined(__x86_64__)
	*arch = "amd64", *variant = "";
#elif defined(__aarch64__)
	*arch = "arm64", *variant = "v8";
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7
	*arch = "arm", *variant = "v7";
#elif defined(__arm__)
	*arch = "arm", *variant = "v6";
#elif defined(__i386__)
	*arch = "386", *variant = "";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	*arch = "ppc64le", *variant = "";
#elif defined(__s390x__)
	*arch = "s390x", *variant = "";
#elif defined(__riscv) && __riscv_xlen == 64
	*arch = "riscv64", *variant = "";
#elif defined(__loongarch64)
	*arch = "loong64", *variant = "";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	*arch = "mips64le", *variant = "";
#else
	*arch = "unknown", *variant = "";
#endif
}

static bool variant_ok(const char *arch, const char *want, const char *have, int *score)
{
	if (!*want || !*have) {
		*score = !*want && !*have ? 2 : 1;
		return true;
	}
	if (!strcmp(want, have)) {
		*score = 2;
		return true;
	}
	/* arm64 images are v8 whether they say so or not. */
	*score = 0;
	return false;
}

/* The index's manifest for os/arch[/variant]: its descriptor, or AC_ERR_NOT_FOUND listing
 * the platforms present. */
static int choose_platform(const ac_reg_t *r, json_t *index, json_t **desc, ac_error_t **err)
{
	const char *os = r->o->os && *r->o->os ? r->o->os : "linux";
	const char *arch, *variant;
	native_platform(&arch, &variant);
	char want_arch[64];
	const char *want_variant = variant;
	if (r->o->arch && *r->o->arch) {
		snprintf(want_arch, sizeof(want_arch), "%s", r->o->arch);
		char *slash = strchr(want_arch, '/');
		want_variant = "";
		if (slash) {
			*slash = '\0';
			want_variant = slash + 1;
		}
		arch = want_arch;
	}
	json_t *ms = json_object_get(index, "manifests");
	size_t i;
	json_t *m;
	int best = 0;
	*desc = NULL;
	char seen[512] = "";
	size_t used = 0;
	json_array_foreach(ms, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *pos = json_string_value(json_object_get(p, "os"));
		const char *parch = json_string_value(json_object_get(p, "architecture"));
		const char *pvar = json_string_value(json_object_get(p, "variant"));
		if (!pos || !parch || !strcmp(pos, "unknown"))
			continue; /* attestations and other artifacts */
		if (used < sizeof(seen) - 1)
			used += (size_t)snprintf(seen + used, sizeof(seen) - used, "%s%s/%s%s%s",
						 used ? ", " : "", pos, parch, pvar ? "/" : "",
						 pvar ? pvar : "");
		if (strcmp(pos, os) || strcmp(parch, arch))
			continue;
		int score;
		const char *have = pvar ? pvar : "";
		if (!strcmp(arch, "arm64") && !strcmp(have, "v8"))
			have = "";
		const char *want =
		    !strcmp(arch, "arm64") && !strcmp(want_variant, "v8") ? "" : want_variant;
		if (!variant_ok(arch, want, have, &score) || score <= best)
			continue;
		best = score;
		*desc = m;
	}
	if (*desc)
		return 0;
	if (used >= sizeof(seen) - 1)
		snprintf(seen + sizeof(seen) - 5, 5, "...");
	return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no %s/%s%s%s image in %s (platforms: %s)",
			    os, arch, *want_variant ? "/" : "", want_variant, r->what,
			    *seen ? seen : "none");
}

/* ------------------------------------------------------------------ manifests */

/* GETs a manifest and checks it against want (a digest, or NULL with a tag: then the
 * registry's Docker-Content-Digest when it sent one). *digest: its sha256. */
static int get_manifest(ac_reg_t *r, const char *reference, const char *want, char **body,
			size_t *len, char *media_type, size_t mtlen, char *digest, ac_error_t **err)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/manifests/%s", r->repo, reference);
	ac_reg_resp_t resp;
	if (ac_reg_get(r, path, ACCEPT_MANIFESTS, AC_IMAGE_MANIFEST_MAX, &resp, err) < 0)
		return -1;
	if (resp.status != 200) {
		int rc = ac_reg_status_error(r, "manifest", &resp, err);
		ac_reg_resp_free(&resp);
		return rc;
	}
	char hex[AC_SHA256_HEX_LEN];
	ac_sha256_hex(resp.body ? resp.body : "", resp.len, hex);
	snprintf(digest, 72, "sha256:%s", hex);
	const char *expect =
	    want ? want : (ac_image_digest_valid(resp.digest) ? resp.digest : NULL);
	if (expect && strcmp(expect, digest)) {
		ac_reg_resp_free(&resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "manifest %s of %s does not match its digest (got %s)", expect,
				    r->what, digest);
	}
	json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	if (!mt || !*mt) {
		/* Old OCI manifests omit it: the header, else the shape decides. */
		size_t n = strcspn(resp.ctype, ";");
		if (n && strncmp(resp.ctype, "application/json", n))
			snprintf(media_type, mtlen, "%.*s", (int)n, resp.ctype);
		else
			snprintf(media_type, mtlen, "%s",
				 json_object_get(j, "manifests") ? AC_MT_OCI_INDEX
								 : AC_MT_OCI_MANIFEST);
	} else {
		snprintf(media_type, mtlen, "%s", mt);
	}
	if (!j) {
		ac_reg_resp_free(&resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0, "manifest of %s is not valid JSON",
				    r->what);
	}
	json_decref(j);
	*body = steal_ptr(resp.body);
	*len = resp.len;
	ac_reg_resp_free(&resp);
	return 0;
}

static bool layer_type_ok(const char *mt)
{
	static const char *const ok[] = {
	    AC_MT_OCI_LAYER,
	    AC_MT_OCI_LAYER_GZIP,
	    AC_MT_OCI_LAYER_ZSTD,
	    AC_MT_DOCKER_LAYER,
	    "application/vnd.oci.image.layer.nondistributable.v1.tar",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++)
		if (!strcmp(mt, ok[i]))
			return true;
	return false;
}

/* The config and the layers of an image manifest, checked, as blobs to fetch. */
static int manifest_blobs(const ac_reg_t *r, json_t *man, ac_reg_blob_t **out, size_t *n,
			  ac_error_t **err)
{
	json_t *cfg = json_object_get(man, "config");
	json_t *layers = json_object_get(man, "layers");
	const char *cd = json_string_value(json_object_get(cfg, "digest"));
	const char *cmt = json_string_value(json_object_get(cfg, "mediaType"));
	if (!json_is_array(layers) || !cd)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "manifest of %s has no config or layers", r->what);
	if (cmt && strcmp(cmt, AC_MT_OCI_CONFIG) && strcmp(cmt, AC_MT_DOCKER_CONFIG))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s is not a container image (its config is %s)", r->what, cmt);
	size_t nl = json_array_size(layers);
	if (nl > 1000)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "manifest of %s has %zu layers",
				    r->what, nl);
	ac_reg_blob_t *b = calloc(nl + 1, sizeof(*b));
	if (!b)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t k = 0;
	json_int_t csize = json_integer_value(json_object_get(cfg, "size"));
	if (!ac_image_digest_valid(cd) || csize < 0 || csize > (json_int_t)AC_IMAGE_MANIFEST_MAX) {
		free(b);
		return ac_error_set(
		    err, AC_ERR_BACKEND, 0,
		    "manifest of %s: bad config descriptor (digest '%s', %lld bytes)", r->what, cd,
		    (long long)csize);
	}
	snprintf(b[k].digest, sizeof(b[k].digest), "%s", cd);
	b[k++].size = csize;
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l)
	{
		const char *d = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		json_int_t sz = json_integer_value(json_object_get(l, "size"));
		if (!d || !ac_image_digest_valid(d) || sz < 0) {
			free(b);
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "manifest of %s: bad layer descriptor %zu (digest "
					    "'%s'; sha256 only)",
					    r->what, i, d ? d : "");
		}
		if (mt && !layer_type_ok(mt)) {
			free(b);
			return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
					    "%s: layer %s has the unsupported media type %s",
					    r->what, d, mt);
		}
		bool dup = false;
		for (size_t j = 1; j < k; j++)
			dup |= !strcmp(b[j].digest, d);
		if (dup)
			continue; /* a layer twice (empty layers): fetched and unpacked once */
		snprintf(b[k].digest, sizeof(b[k].digest), "%s", d);
		b[k].size = sz;
		b[k++].layer = true;
	}
	*out = b;
	*n = k;
	return 0;
}

int ac_image_pull(const ac_image_pull_opts_t *o, const char *refstr, json_t **record,
		  ac_error_t **err)
{
	ac_image_ref_t ref;
	if (ac_image_ref_parse(refstr, &ref, err) < 0)
		return -1;
	char canonical[700];
	ac_image_ref_format(&ref, canonical, sizeof(canonical));
	_cleanup_close_ int storefd = ac_image_open_store(o->home, err);
	if (storefd < 0)
		return -1;
	if (ac_curl_load(err) < 0)
		return -1;
	ac_reg_t r;
	if (ac_reg_init(&r, o, ref.registry, ref.repo, canonical, err) < 0)
		return -1;
	int rc = -1;
	_cleanup_free_ char *body = NULL;
	_cleanup_free_ ac_reg_blob_t *blobs = NULL;
	json_t *man = NULL;
	size_t len = 0, nblobs = 0;
	char mt[128], digest[72];
	if (get_manifest(&r, ref.digest[0] ? ref.digest : ref.tag,
			 ref.digest[0] ? ref.digest : NULL, &body, &len, mt, sizeof(mt), digest,
			 err) < 0)
		goto out;
	if (!strcmp(mt, AC_MT_OCI_INDEX) || !strcmp(mt, AC_MT_DOCKER_LIST)) {
		json_t *index = json_loadb(body, len, 0, NULL);
		json_t *desc = NULL;
		if (choose_platform(&r, index, &desc, err) < 0) {
			json_decref(index);
			goto out;
		}
		char child[80];
		const char *cd = json_string_value(json_object_get(desc, "digest"));
		snprintf(child, sizeof(child), "%s", cd ? cd : "");
		json_decref(index);
		if (!ac_image_digest_valid(child)) {
			ac_error_set(err, AC_ERR_BACKEND, 0,
				     "index of %s names a manifest by '%s' (sha256 only)", r.what,
				     child);
			goto out;
		}
		free(body);
		body = NULL;
		if (get_manifest(&r, child, child, &body, &len, mt, sizeof(mt), digest, err) < 0)
			goto out;
	}
	if (!strncmp(mt, MT_DOCKER_SCHEMA1, strlen(MT_DOCKER_SCHEMA1))) {
		ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			     "%s is a Docker schema 1 image, which is not supported (push it "
			     "again with a current docker or podman)",
			     r.what);
		goto out;
	}
	if (strcmp(mt, AC_MT_OCI_MANIFEST) && strcmp(mt, AC_MT_DOCKER_MANIFEST)) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "%s is not a container image (manifest media type %s)", r.what, mt);
		goto out;
	}
	man = json_loadb(body, len, 0, NULL);
	if (manifest_blobs(&r, man, &blobs, &nblobs, err) < 0)
		goto out;
	if (ac_reg_fetch_blobs(&r, storefd, blobs, nblobs, err) < 0)
		goto out;
	if (ac_image_blob_put(o->home, body, len, digest, NULL, err) < 0)
		goto out;
	for (size_t i = 0; i < nblobs; i++) {
		if (!blobs[i].layer)
			continue;
		uint64_t size = 0;
		if (ac_reg_cancelled(&r)) {
			ac_error_set(err, AC_ERR_STATE, 0, "pull of %s cancelled", r.what);
			goto out;
		}
		if (ac_image_layer_ensure(o->home, blobs[i].digest, &size, err) < 0)
			goto out;
	}
	rc = ac_image_commit(o->home, digest, canonical, "oci", NULL, record, err);
out:
	json_decref(man);
	ac_reg_free(&r);
	return rc;
}
