/* TLS for the proxy's interception of bound hosts (net.h, "tls.c"): the interception CA,
 * leaf certificates minted per host and cached, the upstream client context and the
 * blocking connection calls the proxy uses, so that nothing else touches OpenSSL.
 *
 * OpenSSL is loaded with dlopen on first use (src/base/dl.h): the CLI's other commands
 * never pay for mapping it. Several of OpenSSL's documented calls are macros over a ctrl
 * function; the small static wrappers below keep the macros' semantics over the resolved
 * functions.
 *
 * Over 800 lines on purpose: it is the one file that touches OpenSSL (the dlopen table, the
 * wrappers of its macros, CA and leaf minting, server and client contexts, blocking I/O):
 * keeping the library's surface in one place is what lets the rest of src/net stay free of
 * it, and each part is small. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/dl.h"
#include "base/io.h"
#include "base/util.h"
#include "net/net.h"

#define CRYPTO_FNS(X)                                                                              \
	X(ASN1_TIME_set)                                                                           \
	X(ASN1_TIME_to_tm)                                                                         \
	X(BIO_ctrl)                                                                                \
	X(BIO_free)                                                                                \
	X(BIO_new)                                                                                 \
	X(BIO_new_mem_buf)                                                                         \
	X(BIO_s_mem)                                                                               \
	X(BN_bin2bn)                                                                               \
	X(BN_free)                                                                                 \
	X(BN_to_ASN1_INTEGER)                                                                      \
	X(ERR_clear_error)                                                                         \
	X(ERR_error_string_n)                                                                      \
	X(ERR_get_error)                                                                           \
	X(ERR_reason_error_string)                                                                 \
	X(EVP_PKEY_Q_keygen)                                                                       \
	X(EVP_PKEY_free)                                                                           \
	X(EVP_sha256)                                                                              \
	X(OPENSSL_cleanse)                                                                         \
	X(PEM_read_bio_PrivateKey)                                                                 \
	X(PEM_read_bio_X509)                                                                       \
	X(PEM_write_bio_PrivateKey)                                                                \
	X(PEM_write_bio_X509)                                                                      \
	X(RAND_bytes)                                                                              \
	X(X509V3_EXT_conf_nid)                                                                     \
	X(X509V3_set_ctx)                                                                          \
	X(X509_EXTENSION_free)                                                                     \
	X(X509_NAME_add_entry_by_txt)                                                              \
	X(X509_VERIFY_PARAM_set1_ip_asc)                                                           \
	X(X509_VERIFY_PARAM_set_hostflags)                                                         \
	X(X509_add_ext)                                                                            \
	X(X509_check_ca)                                                                           \
	X(X509_check_private_key)                                                                  \
	X(X509_free)                                                                               \
	X(X509_get0_notAfter)                                                                      \
	X(X509_get_serialNumber)                                                                   \
	X(X509_get_subject_name)                                                                   \
	X(X509_getm_notAfter)                                                                      \
	X(X509_getm_notBefore)                                                                     \
	X(X509_gmtime_adj)                                                                         \
	X(X509_new)                                                                                \
	X(X509_set_issuer_name)                                                                    \
	X(X509_set_pubkey)                                                                         \
	X(X509_set_version)                                                                        \
	X(X509_sign)                                                                               \
	X(X509_verify_cert_error_string)
AC_DL_TABLE(crypto, CRYPTO_FNS)

#define SSL_FNS(X)                                                                                 \
	X(SSL_CTX_check_private_key)                                                               \
	X(SSL_CTX_ctrl)                                                                            \
	X(SSL_CTX_free)                                                                            \
	X(SSL_CTX_new)                                                                             \
	X(SSL_CTX_set_alpn_protos)                                                                 \
	X(SSL_CTX_set_alpn_select_cb)                                                              \
	X(SSL_CTX_set_default_verify_paths)                                                        \
	X(SSL_CTX_set_options)                                                                     \
	X(SSL_CTX_set_verify)                                                                      \
	X(SSL_CTX_up_ref)                                                                          \
	X(SSL_CTX_use_PrivateKey)                                                                  \
	X(SSL_CTX_use_certificate)                                                                 \
	X(SSL_accept)                                                                              \
	X(SSL_connect)                                                                             \
	X(SSL_ctrl)                                                                                \
	X(SSL_free)                                                                                \
	X(SSL_get0_alpn_selected)                                                                  \
	X(SSL_get0_param)                                                                          \
	X(SSL_get_error)                                                                           \
	X(SSL_get_fd)                                                                              \
	X(SSL_get_verify_result)                                                                   \
	X(SSL_new)                                                                                 \
	X(SSL_pending)                                                                             \
	X(SSL_read)                                                                                \
	X(SSL_set1_host)                                                                           \
	X(SSL_set_fd)                                                                              \
	X(SSL_shutdown)                                                                            \
	X(SSL_write)                                                                               \
	X(TLS_client_method)                                                                       \
	X(TLS_server_method)
AC_DL_TABLE(ssl, SSL_FNS)

static int load(ac_error_t **err)
{
	/* libssl first: it brings its libcrypto, which the second dlopen then finds. */
	if (ssl_load("libssl.so.3", "libssl3", err) < 0)
		return -1;
	return crypto_load("libcrypto.so.3", "libssl3", err);
}

/* ---- the macros of OpenSSL's headers, over the resolved functions ---- */

static inline long ctx_set_min_proto_version(SSL_CTX *ctx, int version)
{
	return ssl_fn.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, NULL);
}
static inline long ssl_set_tlsext_host_name(SSL *s, const char *name)
{
	return ssl_fn.SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
			       (void *)name);
}
static inline long bio_get_mem_data(BIO *b, char **pp)
{
	return crypto_fn.BIO_ctrl(b, BIO_CTRL_INFO, 0, (void *)pp);
}
static inline EVP_PKEY *ec_p256_gen(void)
{
	/* EVP_EC_gen(curve) */
	return crypto_fn.EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* ---- cleanup helpers ---- */

static void x509_freep(X509 **p)
{
	if (*p)
		crypto_fn.X509_free(*p);
}
static void pkey_freep(EVP_PKEY **p)
{
	if (*p)
		crypto_fn.EVP_PKEY_free(*p);
}
static void bio_freep(BIO **p)
{
	if (*p)
		crypto_fn.BIO_free(*p);
}
static void ctx_freep(SSL_CTX **p)
{
	if (*p)
		ssl_fn.SSL_CTX_free(*p);
}
#define _cleanup_x509_ __attribute__((cleanup(x509_freep)))
#define _cleanup_pkey_ __attribute__((cleanup(pkey_freep)))
#define _cleanup_bio_  __attribute__((cleanup(bio_freep)))
#define _cleanup_ctx_  __attribute__((cleanup(ctx_freep)))

/* ---- errors ---- */

static __thread char tls_errbuf[256];

/* The root cause in OpenSSL's queue (its earliest entry), which is then emptied;
 * fallback when the queue is empty. */
static const char *drain_errors(const char *fallback)
{
	unsigned long first = 0, e;
	while ((e = crypto_fn.ERR_get_error()) != 0)
		if (first == 0)
			first = e;
	if (first == 0) {
		snprintf(tls_errbuf, sizeof(tls_errbuf), "%s", fallback);
		return tls_errbuf;
	}
	const char *reason = crypto_fn.ERR_reason_error_string(first);
	if (reason)
		snprintf(tls_errbuf, sizeof(tls_errbuf), "%s", reason);
	else
		crypto_fn.ERR_error_string_n(first, tls_errbuf, sizeof(tls_errbuf));
	return tls_errbuf;
}

const char *ac_tls_error(void)
{
	return tls_errbuf[0] ? tls_errbuf : "no TLS error";
}

static int ossl_fail(ac_error_t **err, const char *what)
{
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "%s: %s", what, drain_errors("unknown error"));
}

/* ---- host names ---- */

enum host_kind { HOST_DNS = 1, HOST_IP = 2 };

/* host as a DNS name (RFC 1123 labels; '_' tolerated, as names in the field have it;
 * lowercased, a trailing dot dropped) or an IPv4/IPv6 literal (canonical form) into
 * out[AC_TLS_HOST_MAX + 1]. Anything else (a wildcard, a port, a comma that would add
 * names to the certificate) is refused. */
#define AC_TLS_HOST_MAX 253
static int host_normalize(const char *host, char out[AC_TLS_HOST_MAX + 1], ac_error_t **err)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char ipbuf[INET6_ADDRSTRLEN];
	if (host == NULL || *host == '\0')
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid TLS host name: empty");
	if (inet_pton(AF_INET, host, addr) == 1) {
		inet_ntop(AF_INET, addr, ipbuf, sizeof(ipbuf));
		snprintf(out, AC_TLS_HOST_MAX + 1, "%s", ipbuf);
		return HOST_IP;
	}
	if (inet_pton(AF_INET6, host, addr) == 1) {
		inet_ntop(AF_INET6, addr, ipbuf, sizeof(ipbuf));
		snprintf(out, AC_TLS_HOST_MAX + 1, "%s", ipbuf);
		return HOST_IP;
	}
	size_t n = strlen(host);
	if (n > 1 && host[n - 1] == '.')
		n--;
	if (n > AC_TLS_HOST_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid TLS host name: longer than %d bytes", AC_TLS_HOST_MAX);
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		if (c == '.') {
			if (label == 0 || host[i - 1] == '-')
				goto bad;
			label = 0;
			out[i] = c;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || (c == '-' && label > 0);
		if (!ok || ++label > 63)
			goto bad;
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (label == 0 || host[n - 1] == '-')
		goto bad;
	out[n] = '\0';
	return HOST_DNS;
bad:;
	char shown[96];
	ac_escape_controls(host, shown, sizeof(shown));
	return ac_error_set(err, AC_ERR_INVALID, 0,
			    "invalid TLS host name '%s': not a DNS name or an IP address", shown);
}

/* ---- certificates ---- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value, ac_error_t **err)
{
	X509V3_CTX v3;
	memset(&v3, 0, sizeof(v3));
	crypto_fn.X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = crypto_fn.X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return ossl_fail(err, "cannot make a certificate extension");
	int ok = crypto_fn.X509_add_ext(cert, ext, -1);
	crypto_fn.X509_EXTENSION_free(ext);
	if (!ok)
		return ossl_fail(err, "cannot add a certificate extension");
	return 0;
}

/* A random positive 128-bit serial (RFC 5280: at most 20 octets, unpredictable). */
static int set_random_serial(X509 *cert, ac_error_t **err)
{
	unsigned char raw[16];
	if (crypto_fn.RAND_bytes(raw, sizeof(raw)) != 1)
		return ossl_fail(err, "cannot make a serial number");
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x01);
	BIGNUM *bn = crypto_fn.BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL)
		return ossl_fail(err, "cannot make a serial number");
	ASN1_INTEGER *ai = crypto_fn.BN_to_ASN1_INTEGER(bn, crypto_fn.X509_get_serialNumber(cert));
	crypto_fn.BN_free(bn);
	if (ai == NULL)
		return ossl_fail(err, "cannot make a serial number");
	return 0;
}

/* A certificate's frame: version 3, random serial, subject CN=cn (when it fits the 64
 * bytes X.520 allows), issuer, notBefore now - 1 h (clocks differ), notAfter, key. */
static X509 *cert_frame(const char *cn, X509 *issuer, time_t not_after, EVP_PKEY *key,
			ac_error_t **err)
{
	_cleanup_x509_ X509 *x = crypto_fn.X509_new();
	if (x == NULL) {
		ossl_fail(err, "cannot make a certificate");
		return NULL;
	}
	X509_NAME *subj = crypto_fn.X509_get_subject_name(x);
	if (!crypto_fn.X509_set_version(x, X509_VERSION_3) || set_random_serial(x, err) < 0 ||
	    (strlen(cn) <= 64 &&
	     !crypto_fn.X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
						   (const unsigned char *)cn, -1, -1, 0)) ||
	    !crypto_fn.X509_set_issuer_name(x, issuer ? crypto_fn.X509_get_subject_name(issuer)
						      : subj) ||
	    !crypto_fn.X509_gmtime_adj(crypto_fn.X509_getm_notBefore(x), -3600) ||
	    !crypto_fn.ASN1_TIME_set(crypto_fn.X509_getm_notAfter(x), not_after) ||
	    !crypto_fn.X509_set_pubkey(x, key)) {
		ossl_fail(err, "cannot make a certificate");
		return NULL;
	}
	return steal_ptr(x);
}

static int cert_sign(X509 *x, EVP_PKEY *key, ac_error_t **err)
{
	if (crypto_fn.X509_sign(x, key, crypto_fn.EVP_sha256()) <= 0)
		return ossl_fail(err, "cannot sign a certificate");
	return 0;
}

/* PEM text of a certificate or a private key (key != NULL), NUL-terminated. */
static char *pem_text(X509 *cert, EVP_PKEY *key, size_t *len, ac_error_t **err)
{
	_cleanup_bio_ BIO *b = crypto_fn.BIO_new(crypto_fn.BIO_s_mem());
	if (b == NULL) {
		ossl_fail(err, "cannot write PEM");
		return NULL;
	}
	int ok = key ? crypto_fn.PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		     : crypto_fn.PEM_write_bio_X509(b, cert);
	char *data = NULL;
	long n = ok ? bio_get_mem_data(b, &data) : 0;
	if (!ok || n <= 0 || data == NULL) {
		ossl_fail(err, "cannot write PEM");
		return NULL;
	}
	char *out = malloc((size_t)n + 1);
	if (out) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	/* The memory BIO frees without wiping: a private key's text is wiped here. */
	crypto_fn.OPENSSL_cleanse(data, (size_t)n);
	if (out == NULL)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write PEM");
	return out;
}

/* Refuses to replace anything but a regular file (or nothing): a directory, a FIFO or a
 * device at a key's path is a mistake to report, not to rename over. */
static int check_target(const char *path, ac_error_t **err)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot check '%s'", path);
	}
	if (!S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' exists and is not a regular file",
				    path);
	return 0;
}

#define CA_YEARS 10

int ac_tls_ca_create(const char *cert_path, const char *key_path, const char *cn, ac_error_t **err)
{
	/* X.520 allows 64 bytes: a longer name (a long sandbox name in it) is cut, not
	 * refused. */
	char name[65];
	if (cn == NULL || *cn == '\0')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid CA name: 1 to 64 printable characters");
	snprintf(name, sizeof(name), "%s", cn);
	for (const char *p = name; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid CA name: printable ASCII only");
	if (strcmp(cert_path, key_path) == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the CA's certificate and key need two paths");
	if (check_target(cert_path, err) < 0 || check_target(key_path, err) < 0)
		return -1;
	if (load(err) < 0)
		return -1;
	crypto_fn.ERR_clear_error();

	_cleanup_pkey_ EVP_PKEY *key = ec_p256_gen();
	if (key == NULL)
		return ossl_fail(err, "cannot make the CA key");
	time_t not_after = time(NULL) + (time_t)CA_YEARS * 365 * 86400;
	_cleanup_x509_ X509 *x = cert_frame(name, NULL, not_after, key, err);
	if (x == NULL)
		return -1;
	/* The subject key identifier first: the authority key identifier of a self-signed
	 * certificate is taken from it. */
	if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) < 0 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err) < 0 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash", err) < 0 ||
	    add_ext(x, x, NID_authority_key_identifier, "keyid:always", err) < 0 ||
	    cert_sign(x, key, err) < 0)
		return -1;

	size_t klen = 0, clen = 0;
	_cleanup_free_ char *kpem = pem_text(NULL, key, &klen, err);
	AC_ANALYZER_OWNED(kpem);
	if (kpem == NULL)
		return -1;
	_cleanup_free_ char *cpem = pem_text(x, NULL, &clen, err);
	AC_ANALYZER_OWNED(cpem);
	if (cpem == NULL) {
		explicit_bzero(kpem, klen);
		return -1;
	}
	int rc = ac_write_file_atomic_at(AT_FDCWD, key_path, kpem, klen, 0600, err);
	explicit_bzero(kpem, klen);
	if (rc < 0)
		return -1;
	return ac_write_file_atomic_at(AT_FDCWD, cert_path, cpem, clen, 0644, err);
}

/* ---- the CA and its leaves ---- */

#define LEAF_CACHE_MAX	  1024
#define LEAF_DAYS	  90
#define LEAF_RENEW_BEFORE 86400

typedef struct leaf {
	char host[AC_TLS_HOST_MAX + 1];
	SSL_CTX *ctx;
	time_t not_after;
	uint64_t used;
} leaf_t;

struct ac_tls_ca {
	X509 *cert;
	EVP_PKEY *key;
	time_t not_after;
	pthread_mutex_t lock; /* guards what follows */
	EVP_PKEY *leaf_key;   /* one key for every leaf of this CA, made on first use */
	leaf_t *leaves;
	size_t nleaves;
	uint64_t tick;
};

#define PEM_MAX (1u << 20)

/* The first PEM object of path: a certificate, or a private key (want_key). The file's
 * text is wiped before it is freed (it may be a key). */
static void *read_pem(const char *path, bool want_key, ac_error_t **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	const char *what = want_key ? "key" : "certificate";
	if (ac_read_file_at(AT_FDCWD, path, PEM_MAX, &text, &len, err) < 0) {
		ac_error_prefix(err, "cannot read the CA %s", what);
		return NULL;
	}
	void *obj = NULL;
	BIO *b = crypto_fn.BIO_new_mem_buf(text, (int)len);
	if (b) {
		if (want_key)
			obj = crypto_fn.PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		else
			obj = crypto_fn.PEM_read_bio_X509(b, NULL, NULL, NULL);
		crypto_fn.BIO_free(b);
	}
	explicit_bzero(text, len);
	if (obj == NULL)
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' holds no PEM %s: %s", path, what,
			     drain_errors("unknown error"));
	return obj;
}

ac_tls_ca_t *ac_tls_ca_load(const char *cert_path, const char *key_path, ac_error_t **err)
{
	if (load(err) < 0)
		return NULL;
	crypto_fn.ERR_clear_error();
	_cleanup_x509_ X509 *cert = read_pem(cert_path, false, err);
	if (cert == NULL)
		return NULL;
	_cleanup_pkey_ EVP_PKEY *key = read_pem(key_path, true, err);
	if (key == NULL)
		return NULL;
	if (crypto_fn.X509_check_private_key(cert, key) != 1) {
		drain_errors("");
		ac_error_set(err, AC_ERR_INVALID, 0, "the key '%s' does not match the CA '%s'",
			     key_path, cert_path);
		return NULL;
	}
	if (crypto_fn.X509_check_ca(cert) == 0) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not a CA certificate", cert_path);
		return NULL;
	}
	struct tm tm;
	if (!crypto_fn.ASN1_TIME_to_tm(crypto_fn.X509_get0_notAfter(cert), &tm)) {
		ossl_fail(err, "cannot read the CA's expiry");
		return NULL;
	}
	ac_tls_ca_t *ca = calloc(1, sizeof(*ca));
	if (ca == NULL) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot load the CA");
		return NULL;
	}
	ca->not_after = timegm(&tm);
	ca->cert = steal_ptr(cert);
	ca->key = steal_ptr(key);
	pthread_mutex_init(&ca->lock, NULL);
	return ca;
}

void ac_tls_ca_free(ac_tls_ca_t *ca)
{
	if (ca == NULL)
		return;
	for (size_t i = 0; i < ca->nleaves; i++)
		ssl_fn.SSL_CTX_free(ca->leaves[i].ctx);
	free(ca->leaves);
	if (ca->leaf_key)
		crypto_fn.EVP_PKEY_free(ca->leaf_key);
	crypto_fn.EVP_PKEY_free(ca->key);
	crypto_fn.X509_free(ca->cert);
	pthread_mutex_destroy(&ca->lock);
	free(ca);
}

/* The server side offers HTTP/1.1 only: the proxy parses HTTP/1.1 after interception, so
 * a client offering h2 and http/1.1 gets http/1.1, and one offering only other protocols
 * gets no ALPN at all (the handshake goes on; RFC 7301 allows it). */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (l == 0 || l > inlen - i - 1)
			break;
		if (l == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Options both sides share: no renegotiation; a peer closing without close_notify is an
 * end of stream (many servers do it; HTTP framing catches truncation). */
static const uint64_t common_options =
    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION;

static SSL_CTX *server_ctx_new(X509 *leaf, EVP_PKEY *key, ac_error_t **err)
{
	_cleanup_ctx_ SSL_CTX *ctx = ssl_fn.SSL_CTX_new(ssl_fn.TLS_server_method());
	if (ctx == NULL || !ctx_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    ssl_fn.SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    ssl_fn.SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    ssl_fn.SSL_CTX_check_private_key(ctx) != 1) {
		ossl_fail(err, "cannot make a TLS server context");
		return NULL;
	}
	ssl_fn.SSL_CTX_set_options(ctx, common_options | SSL_OP_CIPHER_SERVER_PREFERENCE);
	ssl_fn.SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return steal_ptr(ctx);
}

/* A leaf for host (normalized, of kind) under ca->lock. */
static SSL_CTX *leaf_mint(ac_tls_ca_t *ca, const char *host, int kind, time_t now,
			  time_t *not_after, ac_error_t **err)
{
	if (ca->leaf_key == NULL) {
		ca->leaf_key = ec_p256_gen();
		if (ca->leaf_key == NULL) {
			ossl_fail(err, "cannot make the leaf key");
			return NULL;
		}
	}
	time_t na = now + (time_t)LEAF_DAYS * 86400;
	if (na > ca->not_after)
		na = ca->not_after;
	_cleanup_x509_ X509 *x = cert_frame(host, ca->cert, na, ca->leaf_key, err);
	if (x == NULL)
		return NULL;
	char san[AC_TLS_HOST_MAX + 8];
	snprintf(san, sizeof(san), "%s:%s", kind == HOST_IP ? "IP" : "DNS", host);
	if (add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature", err) < 0 ||
	    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth", err) < 0 ||
	    add_ext(x, ca->cert, NID_subject_alt_name, san, err) < 0 ||
	    add_ext(x, ca->cert, NID_subject_key_identifier, "hash", err) < 0 ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always", err) < 0 ||
	    cert_sign(x, ca->key, err) < 0)
		return NULL;
	*not_after = na;
	return server_ctx_new(x, ca->leaf_key, err);
}

ac_ssl_ctx_t *ac_tls_server_ctx(ac_tls_ca_t *ca, const char *host, ac_error_t **err)
{
	char name[AC_TLS_HOST_MAX + 1];
	int kind = host_normalize(host, name, err);
	if (kind < 0)
		return NULL;
	time_t now = time(NULL);
	if (now >= ca->not_after) {
		ac_error_set(err, AC_ERR_STATE, 0, "the interception CA has expired");
		return NULL;
	}
	pthread_mutex_lock(&ca->lock);
	crypto_fn.ERR_clear_error();
	ca->tick++;
	leaf_t *slot = NULL;
	for (size_t i = 0; i < ca->nleaves; i++)
		if (strcmp(ca->leaves[i].host, name) == 0) {
			slot = &ca->leaves[i];
			break;
		}
	/* A long-running proxy outlives a 90-day leaf: renew a day before. */
	if (slot && now + LEAF_RENEW_BEFORE < slot->not_after) {
		slot->used = ca->tick;
		SSL_CTX *ctx = slot->ctx;
		ssl_fn.SSL_CTX_up_ref(ctx);
		pthread_mutex_unlock(&ca->lock);
		return ctx;
	}
	time_t na = 0;
	SSL_CTX *ctx = leaf_mint(ca, name, kind, now, &na, err);
	if (ctx == NULL) {
		pthread_mutex_unlock(&ca->lock);
		return NULL;
	}
	if (slot == NULL && ca->nleaves < LEAF_CACHE_MAX) {
		leaf_t *nl = realloc(ca->leaves, (ca->nleaves + 1) * sizeof(*nl));
		if (nl == NULL) {
			/* Uncached but usable. */
			pthread_mutex_unlock(&ca->lock);
			return ctx;
		}
		ca->leaves = nl;
		slot = &ca->leaves[ca->nleaves++];
		slot->ctx = NULL;
	} else if (slot == NULL) {
		/* Full: the least recently used entry goes. */
		slot = &ca->leaves[0];
		for (size_t i = 1; i < ca->nleaves; i++)
			if (ca->leaves[i].used < slot->used)
				slot = &ca->leaves[i];
	}
	if (slot->ctx)
		ssl_fn.SSL_CTX_free(slot->ctx);
	snprintf(slot->host, sizeof(slot->host), "%s", name);
	slot->ctx = ctx;
	slot->not_after = na;
	slot->used = ca->tick;
	ssl_fn.SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&ca->lock);
	return ctx;
}

void ac_tls_ctx_free(ac_ssl_ctx_t *ctx)
{
	if (ctx)
		ssl_fn.SSL_CTX_free(ctx);
}

/* ---- the upstream client context ---- */

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *client_ctx;

ac_ssl_ctx_t *ac_tls_client_ctx(ac_error_t **err)
{
	SSL_CTX *ctx = __atomic_load_n(&client_ctx, __ATOMIC_ACQUIRE);
	if (ctx)
		return ctx;
	if (load(err) < 0)
		return NULL;
	pthread_mutex_lock(&client_lock);
	if (client_ctx == NULL) {
		crypto_fn.ERR_clear_error();
		static const unsigned char alpn[] = "\x08http/1.1";
		_cleanup_ctx_ SSL_CTX *c = ssl_fn.SSL_CTX_new(ssl_fn.TLS_client_method());
		/* SSL_CTX_set_alpn_protos returns 0 on success. */
		if (c == NULL || !ctx_set_min_proto_version(c, TLS1_2_VERSION) ||
		    ssl_fn.SSL_CTX_set_default_verify_paths(c) != 1 ||
		    ssl_fn.SSL_CTX_set_alpn_protos(c, alpn, sizeof(alpn) - 1) != 0) {
			ossl_fail(err, "cannot make the TLS client context");
		} else {
			ssl_fn.SSL_CTX_set_options(c, common_options);
			ssl_fn.SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
			__atomic_store_n(&client_ctx, steal_ptr(c), __ATOMIC_RELEASE);
		}
	}
	ctx = client_ctx;
	pthread_mutex_unlock(&client_lock);
	return ctx;
}

/* ---- connections ---- */

/* After SSL_ERROR_WANT_READ/WRITE: on a non-blocking descriptor, waits until it is ready
 * (0); on a blocking one the kernel already waited and gave up (SO_RCVTIMEO/SO_SNDTIMEO):
 * -1 with errno EAGAIN. */
static int wait_io(SSL *s, int code)
{
	int fd = ssl_fn.SSL_get_fd(s);
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
	if (fl < 0 || !(fl & O_NONBLOCK)) {
		snprintf(tls_errbuf, sizeof(tls_errbuf), "timed out");
		errno = EAGAIN;
		return -1;
	}
	struct pollfd pfd = {fd, code == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
	int r;
	do
		r = poll(&pfd, 1, -1);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		snprintf(tls_errbuf, sizeof(tls_errbuf), "poll: %s", strerror(errno));
	return r < 0 ? -1 : 0;
}

/* One step's failure (r <= 0 from SSL_*): 1 to retry, 0 for a clean end of stream, -1
 * with tls_errbuf and errno set. */
static int io_result(SSL *s, int r)
{
	int saved = errno;
	int code = ssl_fn.SSL_get_error(s, r);
	switch (code) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return wait_io(s, code) == 0 ? 1 : -1;
	case SSL_ERROR_SYSCALL:
		if (saved == 0) {
			drain_errors("connection closed");
			errno = ECONNRESET;
		} else {
			drain_errors(strerror(saved));
			errno = saved;
		}
		return -1;
	default:
		drain_errors("protocol error");
		errno = EPROTO;
		return -1;
	}
}

static SSL *ssl_on(SSL_CTX *ctx, int fd, ac_error_t **err)
{
	SSL *s = ssl_fn.SSL_new(ctx);
	if (s == NULL || ssl_fn.SSL_set_fd(s, fd) != 1) {
		if (s)
			ssl_fn.SSL_free(s);
		ossl_fail(err, "cannot start TLS");
		return NULL;
	}
	return s;
}

ac_ssl_t *ac_tls_accept(ac_ssl_ctx_t *srv, int fd, ac_error_t **err)
{
	crypto_fn.ERR_clear_error();
	tls_errbuf[0] = '\0';
	SSL *s = ssl_on(srv, fd, err);
	if (s == NULL)
		return NULL;
	for (;;) {
		errno = 0;
		int r = ssl_fn.SSL_accept(s);
		if (r == 1)
			return s;
		int st = io_result(s, r);
		if (st > 0)
			continue;
		if (st == 0)
			drain_errors("connection closed");
		ssl_fn.SSL_free(s);
		ac_error_set(err, AC_ERR_BACKEND, 0, "TLS handshake with the client failed: %s",
			     tls_errbuf);
		return NULL;
	}
}

ac_ssl_t *ac_tls_connect(int fd, const char *host, ac_error_t **err)
{
	char name[AC_TLS_HOST_MAX + 1];
	int kind = host_normalize(host, name, err);
	if (kind < 0)
		return NULL;
	SSL_CTX *ctx = ac_tls_client_ctx(err);
	if (ctx == NULL)
		return NULL;
	crypto_fn.ERR_clear_error();
	tls_errbuf[0] = '\0';
	SSL *s = ssl_on(ctx, fd, err);
	if (s == NULL)
		return NULL;
	X509_VERIFY_PARAM *param = ssl_fn.SSL_get0_param(s);
	int ok;
	if (kind == HOST_IP) {
		/* RFC 6066: no SNI for an address; the certificate must name it as an IP SAN. */
		ok = crypto_fn.X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1;
	} else {
		crypto_fn.X509_VERIFY_PARAM_set_hostflags(param,
							  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = ssl_fn.SSL_set1_host(s, name) == 1 && ssl_set_tlsext_host_name(s, name) == 1;
	}
	if (!ok) {
		ssl_fn.SSL_free(s);
		ossl_fail(err, "cannot set the TLS peer name");
		return NULL;
	}
	for (;;) {
		errno = 0;
		int r = ssl_fn.SSL_connect(s);
		if (r == 1)
			return s;
		int st = io_result(s, r);
		if (st > 0)
			continue;
		if (st == 0)
			drain_errors("connection closed");
		long vr = ssl_fn.SSL_get_verify_result(s);
		if (vr != X509_V_OK) {
			size_t used = strlen(tls_errbuf);
			snprintf(tls_errbuf + used, sizeof(tls_errbuf) - used, " (%s)",
				 crypto_fn.X509_verify_cert_error_string(vr));
		}
		ssl_fn.SSL_free(s);
		ac_error_set(err, AC_ERR_BACKEND, 0, "TLS handshake with '%s' failed: %s", name,
			     tls_errbuf);
		return NULL;
	}
}

ssize_t ac_tls_read(ac_ssl_t *s, void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (n > INT_MAX)
		n = INT_MAX;
	for (;;) {
		crypto_fn.ERR_clear_error();
		errno = 0;
		int r = ssl_fn.SSL_read(s, buf, (int)n);
		if (r > 0)
			return r;
		int st = io_result(s, r);
		if (st <= 0)
			return st;
	}
}

ssize_t ac_tls_write_all(ac_ssl_t *s, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;
	while (done < n) {
		size_t chunk = n - done > INT_MAX ? INT_MAX : n - done;
		crypto_fn.ERR_clear_error();
		errno = 0;
		int r = ssl_fn.SSL_write(s, p + done, (int)chunk);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		int st = io_result(s, r);
		if (st == 0) {
			snprintf(tls_errbuf, sizeof(tls_errbuf), "connection closed");
			errno = EPIPE;
			return -1;
		}
		if (st < 0)
			return -1;
	}
	return (ssize_t)n;
}

int ac_tls_pending(ac_ssl_t *s)
{
	return ssl_fn.SSL_pending(s);
}

size_t ac_tls_alpn(ac_ssl_t *s, char *buf, size_t cap)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;
	ssl_fn.SSL_get0_alpn_selected(s, &p, &len);
	if (cap == 0)
		return 0;
	if (p == NULL || len >= cap)
		len = 0;
	if (len)
		memcpy(buf, p, len);
	buf[len] = '\0';
	return len;
}

void ac_tls_close(ac_ssl_t *s)
{
	if (s == NULL)
		return;
	/* One close_notify, not waiting for the peer's: the descriptor is the caller's. After
	 * a fatal error OpenSSL refuses and queues an error, dropped here. */
	ssl_fn.SSL_shutdown(s);
	crypto_fn.ERR_clear_error();
	ssl_fn.SSL_free(s);
}

/* ---- the sandbox's bundle ---- */

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define BUNDLE_MAX    (16u << 20)

int ac_tls_bundle_write(const char *ca_cert_path, const char *out_path, ac_error_t **err)
{
	_cleanup_free_ char *ca = NULL;
	size_t calen = 0;
	if (ac_read_file_at(AT_FDCWD, ca_cert_path, PEM_MAX, &ca, &calen, err) < 0) {
		ac_error_prefix(err, "cannot read the CA certificate");
		return -1;
	}
	if (strstr(ca, "-----BEGIN CERTIFICATE-----") == NULL || strstr(ca, "PRIVATE KEY"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not a PEM certificate (or holds a key)", ca_cert_path);
	_cleanup_free_ char *sys = NULL;
	size_t syslen = 0;
	_cleanup_error_ ac_error_t *e = NULL;
	if (ac_read_file_at(AT_FDCWD, SYSTEM_BUNDLE, BUNDLE_MAX, &sys, &syslen, &e) < 0) {
		if (e->kind != AC_ERR_NOT_FOUND)
			return ac_error_set(err, e->kind, 0, "cannot read the system CA bundle: %s",
					    e->msg);
		syslen = 0;
	}
	bool nl = syslen > 0 && sys[syslen - 1] != '\n';
	size_t total = syslen + (nl ? 1 : 0) + calen;
	_cleanup_free_ char *out = malloc(total + 1);
	AC_ANALYZER_OWNED(out);
	if (out == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write '%s'", out_path);
	if (syslen)
		memcpy(out, sys, syslen);
	if (nl)
		out[syslen] = '\n';
	memcpy(out + syslen + (nl ? 1 : 0), ca, calen);
	return ac_write_file_atomic_at(AT_FDCWD, out_path, out, total, 0644, err);
}
