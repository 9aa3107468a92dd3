/* The registry client's transport (registry.h): libcurl loaded with dlopen, the options
 * every request shares (TLS, timeouts, redirects, cancel), single requests into memory,
 * and the blob downloads: curl's multi interface runs o->parallel at once, each streamed
 * into blobs/tmp/<hex>.partial (flock'ed, so concurrent pulls of one blob wait for each
 * other), hashed while it arrives, resumed with a Range request when a partial file is
 * there, and installed under blobs/sha256/ only when its size and sha256 match. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/sha256.h"
#include "base/util.h"
#include "image/internal.h"
#include "image/registry.h"

void ac_reg_resp_free(ac_reg_resp_t *resp)
{
	free(resp->body);
	free(resp->www_auth);
	memset(resp, 0, sizeof(*resp));
}

bool ac_reg_cancelled(const ac_reg_t *r)
{
	if (r->cancel_fd <= 0)
		return false;
	struct pollfd p = {.fd = r->cancel_fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0 && p.revents;
}

static int xferinfo(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return ac_reg_cancelled(ud) ? 1 : 0;
}

void ac_reg_setup(ac_reg_t *r, CURL *h, const char *url, char *errbuf, bool redirects)
{
	errbuf[0] = '\0';
	ac_curl.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	ac_curl.curl_easy_setopt(h, CURLOPT_URL, url);
	ac_curl.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	ac_curl.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, AC_REG_CONNECT_MS);
	ac_curl.curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_USERAGENT, "agentcell");
	if (redirects) {
		/* Registries send blobs to object storage. curl (>= 7.58) sends the
		 * Authorization header we set only to the first host; plain-HTTP targets only
		 * for registries allowed to speak it. */
		ac_curl.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		ac_curl.curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
		ac_curl.curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
		ac_curl.curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
					 r->insecure ? "http,https" : "https");
	}
	/* An insecure registry is spoken to as Docker does: TLS without verification, then
	 * plain HTTP (registry.c's fallback). */
	ac_curl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);
	if (r->ca_file && *r->ca_file) {
		/* CAINFO replaces the bundle; the system's stay through the hashed directory. */
		ac_curl.curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
		if (access("/etc/ssl/certs", X_OK) == 0)
			ac_curl.curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	ac_curl.curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	ac_curl.curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
	ac_curl.curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
}

/* Copies a header's value (after "name:", trimmed) into buf. */
static bool header_value(const char *line, size_t n, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return false;
	const char *v = line + nl + 1;
	const char *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t vl = (size_t)(e - v);
	if (vl >= len)
		vl = len - 1;
	memcpy(buf, v, vl);
	buf[vl] = '\0';
	return true;
}

/* The headers of the last response (a redirect's are dropped at the next status line). */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	ac_reg_resp_t *resp = ud;
	size_t n = sz * nm;
	char v[2048];
	if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
		free(resp->www_auth);
		resp->www_auth = NULL;
		resp->digest[0] = resp->ctype[0] = resp->range[0] = '\0';
	} else if (header_value(p, n, "WWW-Authenticate", v, sizeof(v))) {
		size_t old = resp->www_auth ? strlen(resp->www_auth) : 0;
		if (old < 16384) {
			char *w = realloc(resp->www_auth, old + strlen(v) + 2);
			if (w) {
				sprintf(w + old, "%s%s", old ? "\n" : "", v);
				resp->www_auth = w;
			}
		}
	} else if (!header_value(p, n, "Docker-Content-Digest", resp->digest,
				 sizeof(resp->digest)) &&
		   !header_value(p, n, "Content-Type", resp->ctype, sizeof(resp->ctype)))
		header_value(p, n, "Content-Range", resp->range, sizeof(resp->range));
	return n;
}

struct membuf {
	ac_reg_resp_t *resp;
	size_t max;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct membuf *m = ud;
	size_t n = sz * nm;
	if (m->resp->len + n > m->max) {
		m->resp->too_large = true;
		return 0;
	}
	char *b = realloc(m->resp->body, m->resp->len + n + 1);
	if (!b)
		return 0;
	memcpy(b + m->resp->len, p, n);
	m->resp->len += n;
	b[m->resp->len] = '\0';
	m->resp->body = b;
	return n;
}

/* One line on a transport failure: the usual causes in words. */
static const char *cause(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return "cannot resolve the host name";
	case CURLE_COULDNT_CONNECT:
		return "connection refused or unreachable";
	case CURLE_OPERATION_TIMEDOUT:
		return "timed out";
	case CURLE_PEER_FAILED_VERIFICATION:
		return "TLS certificate not trusted (set AGENTCELL_REGISTRY_CA to its CA)";
	case CURLE_SSL_CONNECT_ERROR:
		return "TLS handshake failed";
	case CURLE_SSL_CACERT_BADFILE:
		return "cannot read the CA file";
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return "connection closed";
	case CURLE_TOO_MANY_REDIRECTS:
		return "too many redirects";
	case CURLE_UNSUPPORTED_PROTOCOL:
		return "redirected to a refused protocol";
	default:
		return "request failed";
	}
}

static int transport_error(ac_reg_t *r, const char *url, CURLcode cc, const char *errbuf,
			   ac_error_t **err)
{
	r->transport_failed = true;
	if (ac_reg_cancelled(r) || cc == CURLE_ABORTED_BY_CALLBACK)
		return ac_error_set(err, AC_ERR_STATE, 0, "pull of %s cancelled", r->what);
	const char *detail = errbuf && *errbuf ? errbuf : ac_curl.curl_easy_strerror(cc);
	bool hint = cc == CURLE_SSL_CONNECT_ERROR && !r->insecure;
	return ac_error_set(err, AC_ERR_BACKEND, 0, "registry %s: %s (%s: %s)%s%s", r->registry,
			    cause(cc), url, detail,
			    hint ? "; if it speaks plain HTTP, use --insecure-registry " : "",
			    hint ? r->registry : "");
}

int ac_reg_http_get(ac_reg_t *r, const char *url, struct curl_slist *headers, size_t max,
		    ac_reg_resp_t *resp, ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	r->transport_failed = false;
	if (ac_curl_load(err) < 0)
		return -1;
	CURL *h = ac_curl.curl_easy_init();
	if (!h)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "curl_easy_init");
	char errbuf[CURL_ERROR_SIZE];
	struct membuf m = {resp, max};
	ac_reg_setup(r, h, url, errbuf, true);
	ac_curl.curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, AC_REG_REQUEST_MS);
	ac_curl.curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	ac_curl.curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	ac_curl.curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
	CURLcode cc = ac_curl.curl_easy_perform(h);
	ac_curl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	ac_curl.curl_easy_cleanup(h);
	if (cc == CURLE_WRITE_ERROR && resp->too_large) {
		ac_reg_resp_free(resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "registry %s: response to %s larger than %zu bytes",
				    r->registry, url, max);
	}
	if (cc != CURLE_OK) {
		ac_reg_resp_free(resp);
		return transport_error(r, url, cc, errbuf, err);
	}
	return 0;
}

/* ------------------------------------------------------------------ blob downloads */

enum { X_QUEUED, X_ACTIVE, X_DONE, X_BUSY };

struct xfer {
	ac_reg_t *r;
	ac_reg_blob_t *b;
	int state;
	CURL *h;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	int fd; /* the partial file, flock'ed */
	char hex[AC_SHA256_HEX_LEN];
	char tmp_rel[128];
	ac_sha256_t sha;
	uint64_t have; /* bytes in the partial file, all hashed */
	bool started, bad_status, bad_range, too_big;
	int werr;
	int attempts;
	ac_reg_resp_t resp; /* headers and an error body */
};

static bool blob_present(int storefd, const char *hex, bool layer)
{
	char rel[160];
	struct stat st;
	ac_image_blob_path(hex, rel, sizeof(rel));
	if (fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return true;
	if (!layer)
		return false;
	ac_image_layer_path(hex, rel, sizeof(rel));
	return fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int restart_from_zero(struct xfer *x)
{
	if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
		return -1;
	ac_sha256_init(&x->sha);
	x->have = 0;
	return 0;
}

static void sha_hex(struct xfer *x, char *out)
{
	ac_sha256_t copy = x->sha;
	ac_sha256_final_hex(&copy, out);
}

static int verify_and_install(int storefd, struct xfer *x, ac_error_t **err)
{
	char got[AC_SHA256_HEX_LEN];
	sha_hex(x, got);
	if ((x->b->size > 0 && x->have != (uint64_t)x->b->size) || strcmp(got, x->hex)) {
		unlinkat(storefd, x->tmp_rel, 0);
		if (x->b->size > 0 && x->have != (uint64_t)x->b->size)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s %s from %s has %" PRIu64 " bytes, not the %" PRId64
					    " its descriptor says",
					    x->b->layer ? "layer" : "blob", x->b->digest,
					    x->r->registry, x->have, x->b->size);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s %s from %s does not match its digest (got sha256:%s)",
				    x->b->layer ? "layer" : "blob", x->b->digest, x->r->registry,
				    got);
	}
	if (ac_image_blob_install(storefd, x->tmp_rel, x->hex, err) < 0)
		return -1;
	close(x->fd);
	x->fd = -1;
	x->state = X_DONE;
	return 0;
}

/* Opens and locks the partial file and hashes what it holds. 1: ready (or, state
 * X_DONE, already complete and installed), 0: another process holds it (X_BUSY). */
static int open_partial(int storefd, struct xfer *x, ac_error_t **err)
{
	for (int tries = 0; tries < 10; tries++) {
		int fd =
		    openat(storefd, x->tmp_rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open images/%s",
					    x->tmp_rel);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK) {
				x->state = X_BUSY;
				return 0;
			}
			return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot lock images/%s",
					    x->tmp_rel);
		}
		/* The holder before us may have installed it (renamed away) meanwhile. */
		struct stat a, b;
		if (fstat(fd, &a) == 0 &&
		    fstatat(storefd, x->tmp_rel, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev && S_ISREG(a.st_mode)) {
			x->fd = fd;
			break;
		}
		close(fd);
	}
	if (x->fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "images/%s keeps changing",
				    x->tmp_rel);
	ac_sha256_init(&x->sha);
	x->have = 0;
	if (lseek(x->fd, 0, SEEK_SET) < 0 || ac_sha256_fd(x->fd, &x->sha, &x->have) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read images/%s",
				    x->tmp_rel);
	if (x->b->size > 0 && x->have >= (uint64_t)x->b->size) {
		char got[AC_SHA256_HEX_LEN];
		sha_hex(x, got);
		if (x->have == (uint64_t)x->b->size && !strcmp(got, x->hex))
			return verify_and_install(storefd, x, err) < 0 ? -1 : 1;
		if (restart_from_zero(x) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot truncate images/%s", x->tmp_rel);
	}
	return 1;
}

static size_t blob_write(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;
	if (!x->started) {
		x->started = true;
		long code = 0;
		ac_curl.curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		if (code == 206) {
			unsigned long long start;
			if (sscanf(x->resp.range, "bytes %llu-", &start) != 1 || start != x->have) {
				x->bad_range = true;
				return 0;
			}
		} else if (code == 200) {
			if (x->have && restart_from_zero(x) < 0) {
				x->werr = errno;
				return 0;
			}
		} else {
			x->bad_status = true;
		}
	}
	if (x->bad_status) {
		struct membuf m = {&x->resp, AC_REG_ERRBODY_MAX};
		on_body(p, sz, nm, &m);
		return n;
	}
	if (x->b->size > 0 && x->have + n > (uint64_t)x->b->size) {
		x->too_big = true;
		return 0;
	}
	if (ac_write_all(x->fd, p, n) < 0) {
		x->werr = errno;
		return 0;
	}
	ac_sha256_update(&x->sha, p, n);
	x->have += n;
	return n;
}

static int xfer_start(ac_reg_t *r, CURLM *m, struct xfer *x, ac_error_t **err)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s://%s/v2/%s/blobs/%s", r->plain ? "http" : "https", r->host,
		 r->repo, x->b->digest);
	x->h = ac_curl.curl_easy_init();
	if (!x->h)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "curl_easy_init");
	ac_reg_resp_free(&x->resp);
	x->started = x->bad_status = x->bad_range = x->too_big = false;
	x->werr = 0;
	x->attempts++;
	ac_curl.curl_slist_free_all(x->hdrs);
	x->hdrs = r->authz ? ac_curl.curl_slist_append(NULL, r->authz) : NULL;
	ac_reg_setup(r, x->h, url, x->errbuf, true);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME, AC_REG_LOWSPEED_SECS);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_HEADERDATA, &x->resp);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, blob_write);
	ac_curl.curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	char range[32];
	if (x->have) {
		snprintf(range, sizeof(range), "%" PRIu64 "-", x->have);
		ac_curl.curl_easy_setopt(x->h, CURLOPT_RANGE, range);
	}
	if (ac_curl.curl_multi_add_handle(m, x->h) != CURLM_OK)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "curl_multi_add_handle failed");
	x->state = X_ACTIVE;
	return 0;
}

static void xfer_stop(CURLM *m, struct xfer *x)
{
	if (x->h) {
		ac_curl.curl_multi_remove_handle(m, x->h);
		ac_curl.curl_easy_cleanup(x->h);
		x->h = NULL;
	}
}

/* ------------------------------------------------------------------ progress display */

struct progress {
	int fd; /* -1: none */
	size_t lines;
	bool drawn;
	struct timespec last;
};

static void human(uint64_t n, char *buf, size_t len)
{
	if (n < 1000)
		snprintf(buf, len, "%" PRIu64 " B", n);
	else if (n < 1000 * 1000)
		snprintf(buf, len, "%.1f kB", (double)n / 1e3);
	else if (n < 1000ull * 1000 * 1000)
		snprintf(buf, len, "%.1f MB", (double)n / 1e6);
	else
		snprintf(buf, len, "%.2f GB", (double)n / 1e9);
}

static void progress_draw(struct progress *pg, struct xfer *xs, size_t n, bool force)
{
	if (pg->fd < 0 || !pg->lines)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms =
	    (now.tv_sec - pg->last.tv_sec) * 1000 + (now.tv_nsec - pg->last.tv_nsec) / 1000000;
	if (pg->drawn && !force && ms < 150)
		return;
	pg->last = now;
	char out[16384];
	size_t o = 0;
	if (pg->drawn)
		o += (size_t)snprintf(out, sizeof(out), "\033[%zuA", pg->lines);
	for (size_t i = 0; i < n && o < sizeof(out) - 200; i++) {
		if (!xs[i].b->layer)
			continue;
		char have[32], total[32];
		human(xs[i].have, have, sizeof(have));
		human(xs[i].b->size > 0 ? (uint64_t)xs[i].b->size : 0, total, sizeof(total));
		const char *what = xs[i].state == X_DONE     ? "done       "
				   : xs[i].state == X_ACTIVE ? "downloading"
				   : xs[i].state == X_BUSY   ? "waiting    "
							     : "queued     ";
		if (xs[i].state == X_DONE)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\r\033[2K%.12s: %s %s\n",
					      xs[i].hex, what, total);
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o,
					      "\r\033[2K%.12s: %s %s / %s\n", xs[i].hex, what, have,
					      total);
	}
	pg->drawn = true;
	if (o > sizeof(out))
		o = sizeof(out);
	(void)ac_write_all(pg->fd, out, o);
}

/* ------------------------------------------------------------------ the download loop */

/* A finished transfer: installed, queued again (auth, resume, bad range), or an error. */
static int xfer_done(ac_reg_t *r, int storefd, CURLM *m, struct xfer *x, CURLcode cc,
		     ac_error_t **err)
{
	long status = 0;
	ac_curl.curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	xfer_stop(m, x);
	const char *noun = x->b->layer ? "layer" : "blob";
	x->state = X_QUEUED;
	if (cc == CURLE_OK && (status == 200 || status == 206))
		return verify_and_install(storefd, x, err);
	if (x->too_big) {
		unlinkat(storefd, x->tmp_rel, 0);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s %s from %s is larger than the %" PRId64
				    " bytes its descriptor says",
				    noun, x->b->digest, r->registry, x->b->size);
	}
	if (x->werr)
		return ac_error_set(err, AC_ERR_INTERNAL, x->werr, "cannot write images/%s",
				    x->tmp_rel);
	if (x->bad_range || status == 416) {
		/* The server resumed elsewhere than asked, or the partial file is stale. */
		if (x->attempts < 4 && restart_from_zero(x) == 0)
			return 0;
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s %s from %s: the registry answers range requests wrongly",
				    noun, x->b->digest, r->registry);
	}
	if (cc == CURLE_OK && status == 401 && x->attempts < 3 && x->resp.www_auth) {
		char scope[600];
		snprintf(scope, sizeof(scope), "repository:%s:pull", r->repo);
		if (ac_reg_authenticate(r, x->resp.www_auth, scope, err) < 0)
			return -1;
		return 0;
	}
	if (cc == CURLE_OK) {
		char what[160];
		snprintf(what, sizeof(what), "%s %s", noun, x->b->digest);
		ac_reg_resp_t resp = x->resp;
		resp.status = status;
		return ac_reg_status_error(r, what, &resp, err);
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK || ac_reg_cancelled(r))
		return ac_error_set(err, AC_ERR_STATE, 0, "pull of %s cancelled", r->what);
	/* Connection trouble: resume where it stopped, a few times. */
	bool transient = cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR ||
			 cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
			 cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_HTTP2 ||
			 cc == CURLE_HTTP2_STREAM;
	if (transient && x->attempts < 4)
		return 0;
	char url[600];
	snprintf(url, sizeof(url), "%s %s", noun, x->b->digest);
	return transport_error(r, url, cc, x->errbuf, err);
}

/* Waits (cancellable) until the process holding a partial file lets it go. */
static int wait_unlocked(ac_reg_t *r, int storefd, struct xfer *x, ac_error_t **err)
{
	for (;;) {
		int fd = openat(storefd, x->tmp_rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return 0; /* installed or given up */
		int rc = flock(fd, LOCK_SH | LOCK_NB);
		close(fd);
		if (rc == 0)
			return 0;
		if (ac_reg_cancelled(r))
			return ac_error_set(err, AC_ERR_STATE, 0, "pull of %s cancelled", r->what);
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static int fetch_round(ac_reg_t *r, int storefd, struct xfer *xs, size_t n, struct progress *pg,
		       ac_error_t **err)
{
	CURLM *m = ac_curl.curl_multi_init();
	if (!m)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "curl_multi_init");
	int parallel = r->o->parallel > 0 ? r->o->parallel : 3;
	int rc = 0;
	/* After a blob fails for good, the transfers under way still finish (and are
	 * installed: nothing half-done is left behind), and nothing new starts. */
	bool failed = false;
	for (;;) {
		int active = 0;
		bool queued = false;
		for (size_t i = 0; i < n; i++)
			active += xs[i].state == X_ACTIVE;
		for (size_t i = 0; i < n && !failed; i++) {
			if (xs[i].state != X_QUEUED || active >= parallel)
				continue;
			/* The partial file is opened (and locked) only when its turn comes. */
			if ((xs[i].fd < 0 && open_partial(storefd, &xs[i], err) < 0) ||
			    (xs[i].state == X_QUEUED && xfer_start(r, m, &xs[i], err) < 0)) {
				failed = true;
				rc = -1;
				break;
			}
			active += xs[i].state == X_ACTIVE;
		}
		for (size_t i = 0; i < n && !failed; i++)
			queued |= xs[i].state == X_QUEUED;
		if (!active && !queued)
			break;
		int running = 0;
		ac_curl.curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = ac_curl.curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			for (size_t i = 0; i < n; i++) {
				if (xs[i].h != msg->easy_handle)
					continue;
				ac_error_t *later = NULL;
				if (xfer_done(r, storefd, m, &xs[i], msg->data.result,
					      failed ? &later : err) < 0) {
					failed = true;
					rc = -1;
				}
				ac_error_free(later);
				break;
			}
		}
		progress_draw(pg, xs, n, false);
		struct curl_waitfd wfd = {.fd = r->cancel_fd, .events = CURL_WAIT_POLLIN};
		ac_curl.curl_multi_poll(m, r->cancel_fd > 0 ? &wfd : NULL, r->cancel_fd > 0 ? 1 : 0,
					200, NULL);
		if (ac_reg_cancelled(r)) {
			rc = ac_error_set(err, AC_ERR_STATE, 0, "pull of %s cancelled", r->what);
			goto out;
		}
	}
out:
	for (size_t i = 0; i < n; i++)
		xfer_stop(m, &xs[i]);
	ac_curl.curl_multi_cleanup(m);
	return rc;
}

int ac_reg_fetch_blobs(ac_reg_t *r, int storefd, ac_reg_blob_t *blobs, size_t n, ac_error_t **err)
{
	if (ac_curl_load(err) < 0)
		return -1;
	struct xfer *xs = calloc(n ? n : 1, sizeof(*xs));
	if (!xs)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	struct progress pg = {.fd = -1};
	if (r->o->progress_fd >= 0 && isatty(r->o->progress_fd))
		pg.fd = r->o->progress_fd;
	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		x->r = r;
		x->b = &blobs[i];
		x->fd = -1;
		const char *hex = ac_image_digest_hex(blobs[i].digest);
		if (!hex) {
			free(xs);
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: unsupported digest '%s' (sha256 only)", r->what,
					    blobs[i].digest);
		}
		memcpy(x->hex, hex, 64);
		snprintf(x->tmp_rel, sizeof(x->tmp_rel), "blobs/tmp/%s.partial", x->hex);
		x->state = blob_present(storefd, x->hex, blobs[i].layer) ? X_DONE : X_QUEUED;
		if (x->state == X_DONE && blobs[i].size > 0)
			x->have = (uint64_t)blobs[i].size;
		pg.lines += blobs[i].layer;
	}
	int rc = 0;
	for (int round = 0; round < 8 && rc == 0; round++) {
		bool busy = false;
		rc = fetch_round(r, storefd, xs, n, &pg, err);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (xs[i].state != X_BUSY)
				continue;
			/* Another pull has it: wait, then take it over unless it finished. */
			progress_draw(&pg, xs, n, true);
			rc = wait_unlocked(r, storefd, &xs[i], err);
			xs[i].state =
			    blob_present(storefd, xs[i].hex, xs[i].b->layer) ? X_DONE : X_QUEUED;
			busy |= xs[i].state == X_QUEUED;
		}
		if (!busy)
			break;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (xs[i].state != X_DONE)
			rc = ac_error_set(err, AC_ERR_BACKEND, 0, "blob %s of %s was not fetched",
					  xs[i].b->digest, r->what);
	progress_draw(&pg, xs, n, true);
	for (size_t i = 0; i < n; i++) {
		if (xs[i].fd >= 0)
			close(xs[i].fd);
		ac_curl.curl_slist_free_all(xs[i].hdrs);
		ac_reg_resp_free(&xs[i].resp);
	}
	free(xs);
	return rc;
}
