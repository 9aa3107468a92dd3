/* Network for sandboxes (src/net/): the egress policy (policy.c), the secret store and
 * secret bindings (secrets.c), TLS for the proxy's interception of bound hosts (tls.c),
 * the per-sandbox egress proxy and port publisher (proxy.c) and its start (spawn.c).
 *
 * The data path (docs/ARCHITECTURE.md, "Network"): a sandbox's network namespace has no
 * interface but lo, ever. With the network on, the builder brings lo up and makes one
 * listening socket at 127.0.0.1:AC_NET_PROXY_PORT inside it before the sandbox's first
 * process exists, and hands it to the caller, which gives it to the proxy: a process of
 * this binary in the host's namespaces. The proxy accepts the sandbox's connections on
 * that socket and makes its own, from the host, where the policy lets it. No packet of
 * the sandbox can reach anything but the proxy: there is no route, no interface and no
 * capability to make one. Published ports run the other way: the proxy listens on the
 * host and connects from sockets it creates inside the sandbox's namespace.
 *
 * Layer: beside the backends (native and docker use it); below core; uses base only. */
#ifndef AGENTCELL_NET_H
#define AGENTCELL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>

#include "agentcell/error.h"

/* The proxy's address inside every sandbox (each has its own lo). */
#define AC_NET_PROXY_HOST "127.0.0.1"
#define AC_NET_PROXY_PORT 3128
/* argv[1] of the proxy process (main.c dispatches it to ac_net_proxy_main). */
#define AC_NET_PROXY_ARG "__netproxy"
/* Where the sandbox's CA bundle (system CAs + the sandbox's interception CA) appears. */
#define AC_NET_SANDBOX_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* ---- policy.c: the egress policy ------------------------------------------------------
 *
 * A host pattern is one of: a DNS name ("api.example.com", case-insensitive, RFC 1123
 * labels, optional trailing dot dropped), a wildcard "*.example.com" (any name strictly
 * below example.com, at any depth; not example.com itself), an IPv4 or IPv6 address, or a
 * CIDR block ("10.0.0.0/8", "2001:db8::/32").
 *
 * Decisions, in order (the first that applies wins):
 *   name: blocked when it matches a block pattern; with allowlist_only, refused unless it
 *         matches an allow pattern (an IP literal matches IP/CIDR allow patterns).
 *   address (every address the proxy would connect to, after it resolved the name
 *   itself): blocked when it matches an IP/CIDR block pattern; allowed when it matches an
 *   IP/CIDR allow pattern ("explicitly allowed by IP"); otherwise refused when it is
 *   loopback, unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7), shared
 *   (100.64/10), link-local (169.254/16 with the metadata service, fe80::/10), multicast,
 *   broadcast or reserved (0/8, 240/4), IPv4-mapped/compatible IPv6 forms of those, or one
 *   of the host's own addresses (ac_net_policy_add_local); otherwise allowed. The
 *   documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32) are
 *   public. */
typedef struct ac_net_policy ac_net_policy_t;

/* 0, or -1 with AC_ERR_INVALID: "invalid host pattern 'X': <why>". */
int ac_net_pattern_check(const char *pattern, ac_error_t **err);
/* net: {"allow_hosts": [..], "block_hosts": [..], "allowlist_only": bool}, any may be
 * missing; NULL net = the default policy. NULL and *err on a bad pattern. */
ac_net_policy_t *ac_net_policy_new(const json_t *net, ac_error_t **err);
void ac_net_policy_free(ac_net_policy_t *p);
/* Adds the addresses of every interface of the caller's network namespace (getifaddrs)
 * to the "host's own" set. 0 or -1 (errno). */
int ac_net_policy_add_local(ac_net_policy_t *p);
/* NULL when the name may be resolved and tried; else a static reason, e.g.
 * "blocked by block_hosts '*.example.com'", "not in allow_hosts (allowlist_only)". */
const char *ac_net_policy_check_name(const ac_net_policy_t *p, const char *host);
/* NULL when the proxy may connect to sa; else a static reason: "loopback address",
 * "private address", "link-local address", "the host's own address", ... */
const char *ac_net_policy_check_addr(const ac_net_policy_t *p, const struct sockaddr *sa);

/* ---- secrets.c: the secret store and bindings -----------------------------------------
 *
 * Values live in HOME/secrets/KEY (directory 0700, files 0600, written atomically), never
 * in state, audit or logs. A key is [A-Za-z_][A-Za-z0-9_]{0,127}. A value is 1..65536
 * bytes with no NUL, CR or LF (it goes into an HTTP header). */
int ac_secret_key_check(const char *key, ac_error_t **err);
int ac_secret_set(const char *home, const char *key, const char *value, size_t len,
		  ac_error_t **err);
/* AC_ERR_NOT_FOUND: "secret 'KEY' does not exist (set it with 'agentcell secret set KEY')" */
int ac_secret_get(const char *home, const char *key, char **value, ac_error_t **err);
bool ac_secret_exists(const char *home, const char *key);
/* [{"key": K, "bytes": N, "updated_at": RFC 3339}], sorted by key; NULL and *err. */
json_t *ac_secret_list(const char *home, ac_error_t **err);
int ac_secret_remove(const char *home, const char *key, ac_error_t **err);
/* "KEY@HOST[:HEADER[:PREFIX]]" -> {"key","host","header","prefix"}; default header
 * "Authorization", default prefix "Bearer " (an empty PREFIX after a second ':' means none).
 * HOST is a DNS name (no wildcard, no port); HEADER a token (RFC 9110). NULL and *err
 * (AC_ERR_INVALID, one line naming the problem). */
json_t *ac_secret_binding_parse(const char *spec, ac_error_t **err);
/* A fresh placeholder for key: "agentcell-placeholder-" + 32 random hex digits. */
char *ac_secret_placeholder(void);

/* ---- tls.c: interception of bound hosts (OpenSSL) -------------------------------------- */
typedef struct ac_tls_ca ac_tls_ca_t;
typedef struct ssl_ctx_st ac_ssl_ctx_t; /* = SSL_CTX */

/* A new CA (EC P-256, CN = cn, valid 10 years, CA:TRUE, keyCertSign) written to cert_path
 * (PEM, 0644) and key_path (PEM, 0600), each atomically. */
int ac_tls_ca_create(const char *cert_path, const char *key_path, const char *cn,
		     ac_error_t **err);
ac_tls_ca_t *ac_tls_ca_load(const char *cert_path, const char *key_path, ac_error_t **err);
void ac_tls_ca_free(ac_tls_ca_t *ca);
/* A server context presenting a leaf for host (DNS SAN, or IP SAN for a literal) signed by
 * ca; leaves are minted once per host and cached (thread-safe). The caller SSL_CTX_free()s
 * its reference. */
ac_ssl_ctx_t *ac_tls_server_ctx(ac_tls_ca_t *ca, const char *host, ac_error_t **err);
/* The upstream client context: TLS 1.2+, peers verified against OpenSSL's default paths
 * (SSL_CERT_FILE / SSL_CERT_DIR honoured). One per process, shared; do not free. */
ac_ssl_ctx_t *ac_tls_client_ctx(ac_error_t **err);
/* out_path (0644, atomic) := the system bundle (/etc/ssl/certs/ca-certificates.crt, when it
 * exists) followed by the CA certificate at ca_cert_path. */
int ac_tls_bundle_write(const char *ca_cert_path, const char *out_path, ac_error_t **err);

/* ---- proxy.c / spawn.c: the per-sandbox proxy process ---------------------------------
 *
 * Its orders (JSON, given in a memfd):
 *   {"sandbox": NAME, "home": HOME,
 *    "policy": {"allow_hosts": [..], "block_hosts": [..], "allowlist_only": bool},
 *    "proxy": bool,               -- listen_fd is the egress listener
 *    "secrets": [{"key","host","header","prefix","placeholder","value"}],
 *    "ca": {"cert": PATH, "key": PATH} | null,   -- with secrets: intercept bound hosts
 *    "publish": [{"address": "127.0.0.1", "host_port": 8080, "port": 3000}]}
 * Every connection it handles, allowed or refused, is one audit line appended to
 * HOME/audit.jsonl: {"timestamp", "event": "net", "sandbox", "details": {"host", "port",
 * "method" ("CONNECT"|"GET"|...|"publish"), "verdict": "allowed"|"refused", "reason"
 * (refused), "address" (connected to), "bytes_out", "bytes_in", "intercepted",
 * "injected" (secret keys, never values), "duration_ms"}}. */
typedef struct ac_net_proxy_req {
	json_t *orders;
	int listen_fd; /* "proxy": the listener inside the sandbox; else any socket of its netns */
	int life_fd;   /* a pidfd or a pipe's read end: readable or hung up -> the proxy exits */
	const char *pidfile; /* {"pid","starttime"} written here once ready; NULL: none */
} ac_net_proxy_req_t;

/* Starts the proxy (posix_spawn of /proc/self/exe, safe in a threaded caller) and waits
 * until it is ready: its published ports bound. -1 with its one-line error otherwise
 * (e.g. AC_ERR_EXISTS "port 127.0.0.1:8080 is in use"). */
int ac_net_proxy_spawn(const ac_net_proxy_req_t *req, pid_t *pid, ac_error_t **err);
/* Ends the proxy recorded in pidfile (identity checked by start time) and removes the
 * record; no-op when none is alive. */
void ac_net_proxy_stop(const char *pidfile);
/* argv: {"agentcell", AC_NET_PROXY_ARG}; descriptors 3 = orders, 4 = listen_fd, 5 =
 * life_fd, 6 = ready pipe (one line: "ok" or "E<kind> <message>"). */
int ac_net_proxy_main(int argc, char **argv);

#endif
