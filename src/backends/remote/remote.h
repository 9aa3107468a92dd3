/* Clients of remote engines (Kubernetes API server, Nomad agent): one HTTPS transport over
 * libcurl (loaded with dlopen, see src/base/dl.h) for JSON requests, and one
 * WebSocket transport (RFC 6455, codec in src/base/ws.c) for exec streams, both driven by
 * an ac_remote_conf_t that the engine's own configuration code fills (kubeconfig,
 * in-cluster service account, NOMAD_* variables). Nothing here knows an engine. */
#ifndef AGENTCELL_BACKENDS_REMOTE_H
#define AGENTCELL_BACKENDS_REMOTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "base/ws.h" /* AC_WS_TEXT, AC_WS_BINARY, close codes */

/* Where and how to connect. Strings are owned by the conf (ac_remote_conf_free). A *_data
 * field holds PEM bytes (kubeconfig's *-data, after base64 decoding); a *_file field a
 * path; at most one of each pair is set. */
typedef struct ac_remote_conf {
	char *server; /* base URL: https://host:port[/prefix] or http://... */
	char *name;   /* shown in errors: the cluster/context ("cluster 'kind-dev'") */
	char *ca_file, *ca_data;
	char *cert_file, *cert_data; /* client certificate */
	char *key_file, *key_data;   /* its key */
	bool insecure;		     /* do not verify the server's certificate */
	char *tls_server_name;	     /* SNI / name to verify, when not the URL's host */
	char *token;		     /* Authorization: Bearer */
	char *token_file;	     /* re-read at every request (rotated service account tokens) */
	char *username, *password;   /* basic auth */
	/* Extra request headers, "Name: value" (e.g. X-Nomad-Token), NULL-terminated or NULL. */
	char **headers;
	long timeout_ms; /* per request, 0: 30 s; streams have no overall timeout */
} ac_remote_conf_t;

void ac_remote_conf_free(ac_remote_conf_t *c);

/* One connection cache per conf and thread: reuses the TLS session and keep-alive. */
typedef struct ac_remote ac_remote_t;

int ac_remote_open(const ac_remote_conf_t *conf, ac_remote_t **out, ac_error_t **err);
void ac_remote_close(ac_remote_t *r);

/* An answer: HTTP status, the body parsed as JSON when it is JSON (else NULL) and raw. */
typedef struct ac_remote_resp {
	long status;
	json_t *json;
	char *body;
	size_t len;
	long retry_after;	  /* seconds from Retry-After, -1 when absent */
	unsigned long long index; /* X-Nomad-Index (a blocking query's), 0 when absent */
} ac_remote_resp_t;

void ac_remote_resp_free(ac_remote_resp_t *r);

/* METHOD path (appended to conf->server; query included) with an optional JSON body
 * (content_type NULL: application/json). Fails (AC_ERR_BACKEND; AC_ERR_INVALID for a bad
 * path or token file) only when no HTTP answer came (refused, TLS failure, timeout, DNS) or
 * the body is over 64 MiB: the error names conf->name and the cause in one line. Any HTTP
 * status is a success of this call; the caller interprets it. Not for streams: the whole
 * body is buffered. */
int ac_remote_request(ac_remote_t *r, const char *method, const char *path, const json_t *body,
		      const char *content_type, ac_remote_resp_t *resp, ac_error_t **err);

/* A request whose answer is read as it comes (a log followed live, a watch, a blocking
 * query that must end at once when the caller gives up): GET path (query included), no
 * body, no overall timeout (the connect timeout stays). The body of a 2xx answer goes to
 * on_data piece by piece as it arrives; the body of any other status is kept in resp (up
 * to 64 KiB, as json when it parses) for the caller's message. Returns 0 when the server
 * ended the answer (resp->status, resp->index set), 1 as soon as on_data returns non-zero,
 * a wake descriptor is readable or hung up, or stop (asked at least every 100 ms) returns
 * true, and -1 when no answer came (err, as ac_remote_request). A stream stopped halfway
 * closes its connection. One request of r at a time: concurrent streams each need their
 * own ac_remote_t (one per thread). */
typedef struct ac_remote_stream {
	const char *path;
	int (*on_data)(void *arg, const char *data, size_t len); /* non-zero: stop (NULL: drop) */
	bool (*stop)(void *arg);				 /* NULL: none */
	void *arg;
	const int *wake; /* nwake descriptors (at most 8; entries < 0 skipped) */
	size_t nwake;
} ac_remote_stream_t;
int ac_remote_stream(ac_remote_t *r, const ac_remote_stream_t *q, ac_remote_resp_t *resp,
		     ac_error_t **err);

/* Query-string escape of s (RFC 3986: everything but A-Z a-z 0-9 - . _ ~ as %XX, UTF-8
 * bytes included) appended to out[*used..cap), NUL-terminated; false when it does not
 * fit. Pure. */
bool ac_remote_query_escape(const char *s, char *out, size_t cap, size_t *used);

/* A WebSocket over the same conf: GET path with Upgrade, offering subprotocols (in order of
 * preference, NULL-terminated); *chosen receives the one the server picked (points into
 * protocols) or NULL. On a non-101 answer, fails with the server's status and message. */
typedef struct ac_ws_conn ac_ws_conn_t;
int ac_ws_connect(const ac_remote_conf_t *conf, const char *path, const char *const *protocols,
		  const char **chosen, ac_ws_conn_t **out, ac_error_t **err);
/* Sends one message (opcode AC_WS_TEXT / AC_WS_BINARY, masked, unfragmented). */
int ac_ws_send(ac_ws_conn_t *c, int opcode, const void *data, size_t len, ac_error_t **err);
/* Sends a close frame with code and reason (the connection stays readable until the peer's
 * close arrives). */
int ac_ws_send_close(ac_ws_conn_t *c, unsigned code, const char *reason, ac_error_t **err);
/* Waits up to timeout_ms (-1: for ever) for the next data message; pings are answered and
 * pongs dropped inside. Returns 1 with *opcode, *data and *len (valid until the next call),
 * 0 on the peer's close (its code in *close_code), -1 on error, 2 on timeout. */
int ac_ws_recv(ac_ws_conn_t *c, int timeout_ms, int *opcode, const unsigned char **data,
	       size_t *len, unsigned *close_code, ac_error_t **err);
/* After ac_ws_recv returned 0: the reason of the peer's close frame ("" when none; valid
 * UTF-8 that may hold control characters, at most 123 bytes), valid until ac_ws_free. */
const char *ac_ws_close_reason(const ac_ws_conn_t *c);
/* A descriptor that becomes readable when ac_ws_recv may have something (for poll loops
 * that also watch stdin or a cancel fd); data already buffered is reported by
 * ac_ws_pending. */
int ac_ws_fd(ac_ws_conn_t *c);
/* Caps a received frame and message at max bytes (0: AC_WS_MAX_DEFAULT, 16 MiB); a larger
 * one fails ac_ws_recv and closes with 1009. */
void ac_ws_set_max_message(ac_ws_conn_t *c, size_t max);
bool ac_ws_pending(ac_ws_conn_t *c);
void ac_ws_free(ac_ws_conn_t *c);

#endif
