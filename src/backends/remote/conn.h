/* What the two transports of remote engines (http.c: JSON requests, ws.c: WebSocket
 * streams) share (libcurl itself: src/base/curl.h): the checks of an
 * ac_remote_conf_t, the URL split and tls_server_name redirection, the bearer token (with
 * token-file re-reads), TLS options and the one-line causes of curl failures. Private to
 * src/backends/remote/. */
#ifndef AGENTCELL_BACKENDS_REMOTE_CONN_H
#define AGENTCELL_BACKENDS_REMOTE_CONN_H

#include <stdbool.h>

#include "agentcell/error.h"
#include "backends/remote/remote.h"
#include "base/curl.h"

#define AC_REMOTE_DEFAULT_TIMEOUT_MS 30000L
#define AC_REMOTE_CONNECT_TIMEOUT_MS 10000L

/* A value that goes into a header line: no control bytes (CR/LF would inject headers). */
bool ac_remote_header_safe(const char *s);

/* The checks both transports make before connecting: an http:// or https:// server URL
 * without control bytes, a plain tls_server_name, a one-line token, extra headers of the
 * form "Name: value". who names the remote in the error (AC_ERR_INVALID). */
int ac_remote_conf_check(const ac_remote_conf_t *c, const char *who, ac_error_t **err);

/* Where a connection goes. With tls_server_name the URL names it (SNI and certificate
 * verification) and CURLOPT_CONNECT_TO (connect_list) sends the connection to the real
 * host and port, as client-go's TLSServerName does; curl verifies against the URL's
 * host, and CURLOPT_RESOLVE would need the real host resolved here and pinned. */
typedef struct ac_remote_endpoint {
	char *scheme;
	char *name;	 /* host as the URL names it: tls_server_name or the server's host */
	char *port;	 /* the explicit port or the scheme's default */
	char *prefix;	 /* the server URL's path, without trailing slashes ("" for none) */
	char *authority; /* the server's real host[:port], as written: the Host header */
	struct curl_slist *connect_list; /* NULL without tls_server_name */
} ac_remote_endpoint_t;

/* Splits c->server (scheme://host[:port][/prefix], host maybe [v6]); AC_ERR_INVALID when
 * it is not of that form. */
int ac_remote_endpoint_init(ac_remote_endpoint_t *e, const ac_remote_conf_t *c, const char *who,
			    ac_error_t **err);
void ac_remote_endpoint_free(ac_remote_endpoint_t *e);

/* The bearer token for a request: c->token_file re-read now (rotated service account
 * tokens); when that fails, *last (the previous good read, cached there; may be NULL) or
 * else c->token. *tok is NULL when there is none; it points into c or *last. */
int ac_remote_token(const ac_remote_conf_t *c, const char *who, char **last, const char **tok,
		    ac_error_t **err);

/* "Authorization: Bearer tok" when tok, else (basic true) "Authorization: Basic
 * base64(user:password)" when c->username, else *out NULL. Free with
 * ac_remote_free_secret. */
int ac_remote_auth_header(const ac_remote_conf_t *c, const char *tok, bool basic, char **out,
			  ac_error_t **err);

/* Wipes and frees a string that held a credential (NULL is fine). */
void ac_remote_free_secret(char *s);

/* The options of a connection: URL, http/https only, no signals, connect timeout (at most
 * AC_REMOTE_CONNECT_TIMEOUT_MS), TCP keep-alive, CONNECT_TO, the error buffer, and TLS:
 * verification unless c->insecure, CA / client certificate / key from files or PEM bytes.
 * Proxies: curl's https_proxy/no_proxy environment, as client-go's ProxyFromEnvironment. */
void ac_remote_set_connection(CURL *h, const ac_remote_conf_t *c, const char *url,
			      const ac_remote_endpoint_t *e, long timeout_ms, char *errbuf);

/* curl's detail of a failure: the error buffer when filled, else the code's text. */
const char *ac_remote_curl_detail(CURLcode cc, const char *errbuf);
/* Fails (AC_ERR_BACKEND, returns -1) with one line "WHO at SERVER: CAUSE (DETAIL)": the
 * cause of curl's failure (refused, DNS, TLS verification, timeout, ...), or otherwise when
 * the code has none of ours. */
int ac_remote_curl_fail(const char *who, const char *server, CURLcode cc, const char *errbuf,
			const char *otherwise, ac_error_t **err);

#endif
