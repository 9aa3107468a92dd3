/* The registry client's private pieces, shared by registry.c (pull: manifests, platforms,
 * the store), auth.c (credentials files, WWW-Authenticate challenges, tokens, login) and
 * fetch.c (libcurl: connections, single requests, the parallel resumable blob downloads).
 * Not for use outside src/image/. */
#ifndef AGENTCELL_IMAGE_REGISTRY_H
#define AGENTCELL_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "base/curl.h"
#include "image/image.h"

#define AC_REG_TOKEN_MAX     (1u << 20)	 /* token responses */
#define AC_REG_ERRBODY_MAX   (64u << 10) /* error bodies kept for their message */
#define AC_REG_CONNECT_MS    15000L
#define AC_REG_REQUEST_MS    120000L /* manifests, tokens: small bodies */
#define AC_REG_LOWSPEED_SECS 60L     /* blobs: abort below 1 KB/s for this long */

/* One registry conversation: where it is, how it is spoken to, who we are. */
typedef struct ac_reg {
	const ac_image_pull_opts_t *o;
	const char *home;
	char registry[256];  /* as in references: "docker.io", "host:5000" */
	char host[256];	     /* the API's host[:port]: registry-1.docker.io for docker.io */
	char repo[256];	     /* "" for login */
	char what[700];	     /* for messages: "docker.io/library/alpine:3" */
	bool insecure;	     /* listed in o->insecure: TLS unverified, then plain HTTP */
	bool plain;	     /* speaking http:// (an insecure registry without TLS) */
	char *user, *pass;   /* credentials, or NULL */
	char *authz;	     /* "Authorization: ..." header line to send, or NULL */
	const char *ca_file; /* $AGENTCELL_REGISTRY_CA or NULL */
	int cancel_fd;
	bool transport_failed; /* the last request failed below HTTP (connect, TLS, ...) */
} ac_reg_t;

/* A response read into memory (at most the caller's max bytes). */
typedef struct ac_reg_resp {
	long status;
	char *body; /* NUL-terminated, to free */
	size_t len;
	bool too_large;
	char *www_auth;	 /* the WWW-Authenticate values, "\n"-joined, or NULL */
	char digest[80]; /* Docker-Content-Digest, or "" */
	char ctype[128]; /* Content-Type, or "" */
	char range[128]; /* Content-Range, or "" */
} ac_reg_resp_t;

void ac_reg_resp_free(ac_reg_resp_t *resp);

/* auth.c ------------------------------------------------------------------------------ */

/* Sets r up for registry (credentials looked up, insecure decided); repo may be "". */
int ac_reg_init(ac_reg_t *r, const ac_image_pull_opts_t *o, const char *registry, const char *repo,
		const char *what, ac_error_t **err);
void ac_reg_free(ac_reg_t *r);
/* Answers the challenges of a 401 (resp->www_auth): Bearer -> a token from the realm
 * (with basic credentials when we have them), Basic -> the credentials; sets r->authz.
 * scope: "repository:<repo>:pull" or NULL (login: none). AC_ERR_PERMISSION when refused. */
int ac_reg_authenticate(ac_reg_t *r, const char *www_auth, const char *scope, ac_error_t **err);

/* fetch.c ----------------------------------------------------------------------------- */

/* Whether the caller gave up (cancel_fd readable or hung up). */
bool ac_reg_cancelled(const ac_reg_t *r);
/* The common options of a handle: URL, protocols, timeouts, TLS (system CAs plus
 * ca_file; unverified for insecure registries), proxies from the environment, redirects
 * (Authorization is never sent to another host), the cancel check. */
void ac_reg_setup(ac_reg_t *r, CURL *h, const char *url, char *errbuf, bool redirects);
/* One GET of url (absolute) with the extra headers (may be NULL) into resp; only a
 * transport failure fails (AC_ERR_BACKEND naming what and the cause). */
int ac_reg_http_get(ac_reg_t *r, const char *url, struct curl_slist *headers, size_t max,
		    ac_reg_resp_t *resp, ac_error_t **err);
/* GET <scheme>://<host>/v2/<path> with r->authz and accept (may be NULL): answers one 401
 * challenge and retries, falls back to plain HTTP for insecure registries. */
int ac_reg_get(ac_reg_t *r, const char *path, const char *accept, size_t max, ac_reg_resp_t *resp,
	       ac_error_t **err);
/* The error of an unexpected status: the registry's own error message when it sent one,
 * "what" and the status, the kind from the status (404 not found, 401/403 permission, 429
 * and 5xx backend). */
int ac_reg_status_error(const ac_reg_t *r, const char *noun, const ac_reg_resp_t *resp,
			ac_error_t **err);

typedef struct ac_reg_blob {
	char digest[80];
	int64_t size; /* from the descriptor; <= 0: unknown */
	bool layer;   /* shown in the progress display */
} ac_reg_blob_t;
/* Downloads every blob not yet in blobs/sha256/ (nor, for layers, in layers/): o->parallel
 * at once, resuming blobs/tmp/<hex>.partial, sha256 and size verified while streaming,
 * installed with ac_image_blob_install. storefd: ac_image_open_store's. */
int ac_reg_fetch_blobs(ac_reg_t *r, int storefd, ac_reg_blob_t *blobs, size_t n, ac_error_t **err);

#endif
