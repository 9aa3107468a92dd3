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
/* "KEY@HOST[:HEADER[:PREFIX]]" -> {"key","host","header","prefix"}. Without HEADER: header
 * "Authorization", prefix "Bearer "; a HEADER without PREFIX takes the raw value (prefix "");
 * PREFIX is everything after the second ':' (may be empty or hold ':'; no CR/LF). HOST is a
 * DNS name or an IP literal (IPv6 in brackets), no wildcard, no port, given back lower-case
 * without a trailing dot (IPv6 without brackets); HEADER a token (RFC 9110), not a number.
 * NULL and *err (AC_ERR_INVALID, one line naming the problem). */
json_t *ac_secret_binding_parse(const char *spec, ac_error_t **err);
/* A fresh placeholder for key: "agentcell-placeholder-" + 32 random hex digits. */
char *ac_secret_placeholder(void);

/* ---- tls.c: interception of bound hosts (OpenSSL) -------------------------------------- */
typedef struct ac_tls_ca ac_tls_ca_t;
typedef struct ssl_ctx_st ac_ssl_ctx_t; /* = SSL_CTX */

/* A new CA (EC P-256, CN = cn (printable ASCII, cut to 64 bytes), valid 10 years, CA:TRUE,
 * keyCertSign) written to cert_path (PEM, 0644) and key_path (PEM, 0600), each atomically;
 * either path holding anything but a regular file is refused (AC_ERR_INVALID). */
int ac_tls_ca_create(const char *cert_path, const char *key_path, const char *cn, ac_error_t **err);
ac_tls_ca_t *ac_tls_ca_load(const char *cert_path, const char *key_path, ac_error_t **err);
void ac_tls_ca_free(ac_tls_ca_t *ca);
/* A server context presenting a leaf for host (DNS SAN, or IP SAN for a literal) signed by
 * ca; leaves are minted once per host and cached (thread-safe). The caller drops its
 * reference with ac_tls_ctx_free() (= SSL_CTX_free). */
ac_ssl_ctx_t *ac_tls_server_ctx(ac_tls_ca_t *ca, const char *host, ac_error_t **err);
/* The upstream client context: TLS 1.2+, peers verified against OpenSSL's default paths
 * (SSL_CERT_FILE / SSL_CERT_DIR honoured). One per process, shared; do not free. */
ac_ssl_ctx_t *ac_tls_client_ctx(ac_error_t **err);
/* out_path (0644, atomic) := the system bundle (/etc/ssl/certs/ca-certificates.crt, when it
 * exists) followed by the CA certificate at ca_cert_path. */
int ac_tls_bundle_write(const char *ca_cert_path, const char *out_path, ac_error_t **err);

/* Connections, so that the proxy never touches an OpenSSL symbol itself. Each call
 * blocks: on a non-blocking fd it waits in poll(); on a blocking fd with SO_RCVTIMEO or
 * SO_SNDTIMEO a timeout is -1 with errno EAGAIN. The fd stays the caller's. A write to a
 * closed peer raises SIGPIPE: the caller ignores it. Calls on one ac_ssl_t must not run
 * concurrently (one thread, or a lock). */
typedef struct ssl_st ac_ssl_t; /* = SSL */

/* Drops a reference from ac_tls_server_ctx (NULL is fine). */
void ac_tls_ctx_free(ac_ssl_ctx_t *ctx);
/* Server handshake on fd with srv: TLS 1.2+, ALPN "http/1.1" only (a client offering h2
 * and http/1.1 gets http/1.1; one offering neither gets no ALPN). NULL and *err
 * (AC_ERR_BACKEND "TLS handshake with the client failed: REASON"). */
ac_ssl_t *ac_tls_accept(ac_ssl_ctx_t *srv, int fd, ac_error_t **err);
/* Client handshake on fd with ac_tls_client_ctx(): ALPN "http/1.1", the peer's certificate
 * verified against host (a DNS name: SNI and a DNS SAN; an IP literal: no SNI, an IP SAN).
 * NULL and *err (AC_ERR_BACKEND "TLS handshake with 'HOST' failed: REASON (VERIFY
 * RESULT)"; AC_ERR_INVALID for a host that is neither). */
ac_ssl_t *ac_tls_connect(int fd, const char *host, ac_error_t **err);
/* > 0 bytes read, 0 at the end of the stream (close_notify or the peer's EOF), -1 with
 * errno (and ac_tls_error()) on an error. */
ssize_t ac_tls_read(ac_ssl_t *s, void *buf, size_t n);
/* n, or -1 with errno (EPIPE when the peer closed) and ac_tls_error(). */
ssize_t ac_tls_write_all(ac_ssl_t *s, const void *buf, size_t n);
/* Bytes already decrypted and buffered: poll() on the fd does not see them. */
int ac_tls_pending(ac_ssl_t *s);
/* The ALPN protocol negotiated ("" when none) into buf (cap bytes, NUL included); its
 * length. */
size_t ac_tls_alpn(ac_ssl_t *s, char *buf, size_t cap);
/* Sends close_notify (without waiting for the peer's) and frees s; NULL is fine. The fd
 * is not closed. */
void ac_tls_close(ac_ssl_t *s);
/* The reason of the calling thread's last failure of a call above, in a thread-local
 * buffer (valid until its next call). */
const char *ac_tls_error(void);

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
/* confine.c: the proxy gives up what it does not need once set up (uid 65534, no
 * capabilities, not dumpable, no_new_privs, a seccomp filter); with publish, a helper
 * forked first keeps the right to make sockets in the sandbox's namespace. */
int ac_net_confine(int sandbox_ns, int own_ns, bool publish, ac_error_t **err);
/* A non-blocking TCP socket made inside the sandbox's namespace (through the helper once
 * confined); -1 with errno. */
int ac_net_sandbox_socket(int sandbox_ns, int own_ns);
/* argv: {"agentcell", AC_NET_PROXY_ARG}; descriptors 3 = orders, 4 = listen_fd, 5 =
 * life_fd, 6 = ready pipe (one line: "ok PID" -- the proxy forks once when ready and PID
 * is the process that goes on -- or "E<kind> <message>"). spawn.c adds "pidfile" to the
 * orders. */
int ac_net_proxy_main(int argc, char **argv);

/* ---- sandbox.c: a sandbox's network, from options to state to the proxy's orders ------
 *
 * The state keeps it under "net" (no secret value ever):
 *   {"proxy": bool,                 -- egress through the proxy (--network)
 *    "allow_hosts": [..], "block_hosts": [..], "allowlist_only": bool,
 *    "secrets": [{"key","host","header","prefix","placeholder","source": "store"|"env"}],
 *    "publish": [{"address","host_port","port"}]}
 * "env" secrets are an agent's API keys (--agent with --network) taken from the
 * environment of the process that starts the sandbox, as without the network. */
typedef struct ac_net_opts {
	bool network;
	char **allow_hosts, **block_hosts; /* patterns, NULL-terminated or NULL */
	bool allowlist_only;
	char **secrets; /* "KEY@HOST[:HEADER[:PREFIX]]" */
	char **publish; /* "[ADDR:]HOSTPORT:PORT" */
	const char *agent;
} ac_net_opts_t;

/* *net_out := the state's "net", or NULL when the sandbox has no network and publishes
 * nothing. Checks every pattern, binding (its secret must be in the store), publish spec
 * and that each published host port is free now. One-line AC_ERR_INVALID / NOT_FOUND /
 * EXISTS errors. */
int ac_net_state_new(const char *home, const ac_net_opts_t *o, json_t **net_out, ac_error_t **err);
/* "[ADDR:]HOSTPORT:PORT" -> {"address","host_port","port"} (ADDR default 127.0.0.1; an
 * IPv6 ADDR in brackets). */
json_t *ac_net_publish_parse(const char *spec, ac_error_t **err);
/* The "KEY=VALUE" entries a sandbox with this "net" gets: the proxy variables, the
 * placeholders, the CA bundle variables. A new array (empty for NULL). */
json_t *ac_net_sandbox_env(const json_t *net);
/* Whether the agent's API key variable key is carried as a secret binding (then the
 * sandbox gets its placeholder, never the value). */
bool ac_net_carries_key(const json_t *net, const char *key);
/* HOME/net/NAME: the sandbox's CA, bundle and proxy record. */
void ac_net_dir(const char *home, const char *name, char *buf, size_t len);
/* Before a start: the proxy's orders (secret values read now: from the store, or from
 * this process's environment for "env" ones) and, with secrets, the sandbox's CA (made
 * once) and bundle: *bundle_out is its path (free it), else NULL. */
int ac_net_prepare(const char *home, const char *name, const json_t *net, json_t **orders,
		   char **bundle_out, ac_error_t **err);
/* HOME/net/NAME/proxy.pid */
void ac_net_pidfile(const char *home, const char *name, char *buf, size_t len);
/* A socket made inside the network namespace netns_fd (the calling thread enters it and
 * comes back; aborts the process if it cannot come back): with port, a TCP listener at
 * 127.0.0.1:port; without, an unbound datagram socket (a handle on the namespace). For
 * backends whose sandbox's namespace the builder does not make (docker/podman). */
int ac_net_socket_in(int netns_fd, uint16_t port, ac_error_t **err);
/* Ends the sandbox's proxy; with remove, deletes HOME/net/NAME too. */
void ac_net_teardown(const char *home, const char *name, bool remove);

#endif
