/* The MCP (Model Context Protocol) server core: JSON-RPC 2.0 in, JSON-RPC 2.0 out, with the
 * sandbox tools (sandbox_run, sandbox_create, sandbox_exec, ...) on top of the manager.
 * Transport-agnostic: `agentcell mcp` (src/cli/cmd_mcp.c) feeds it lines from stdin, and the
 * HTTP server feeds it the POST/GET/DELETE requests of its /mcp endpoint through ac_mcp_http
 * (MCP "Streamable HTTP", answering with application/json, never with an SSE stream).
 *
 * Protocol versions: 2024-11-05, 2025-03-26 and 2025-06-18 (the latest, offered to a client
 * asking for anything else). Tool annotations appear from 2025-03-26 on, titles, output
 * schemas and structuredContent from 2025-06-18 on.
 *
 * Thread safety: one ac_mcp_t serves any number of threads at once. Calls on different
 * connections or sessions run in parallel; no lock is held while a tool runs. */
#ifndef AGENTCELL_MCP_H
#define AGENTCELL_MCP_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"

typedef struct ac_mcp ac_mcp_t;

/* Largest JSON-RPC message accepted (a stdio line, an HTTP body). */
#define AC_MCP_MESSAGE_MAX (16u << 20)
/* At most this many messages in one JSON-RPC batch. */
#define AC_MCP_BATCH_MAX 64
/* Output kept per stream (stdout, stderr) of a command; the rest is counted, not sent. */
#define AC_MCP_OUTPUT_MAX (1u << 20)
/* sandbox_file_read returns files up to this size. */
#define AC_MCP_FILE_MAX (8u << 20)
/* HTTP sessions kept at once; past that the least recently used one is dropped. */
#define AC_MCP_SESSIONS_MAX   1024
#define AC_MCP_SESSION_ID_LEN 32

#define AC_MCP_LATEST_VERSION "2025-06-18"

/* A server over manager m (borrowed: it must outlive the server). version: agentcell's
 * version for serverInfo. config_path: agentcell.toml for sandbox_run and sandbox_create
 * (NULL: ./agentcell.toml, else $AGENTCELL_HOME/agentcell.toml, as the CLI), read at
 * every call. */
int ac_mcp_new(ac_manager_t *m, const char *version, const char *config_path, ac_mcp_t **out,
	       ac_error_t **err);
void ac_mcp_free(ac_mcp_t *srv);

/* The state of one connection (stdio) or session (HTTP): zero it before the first message.
 * Requests that come before initialize are served as for the latest version. */
typedef struct ac_mcp_conn {
	char version[16]; /* negotiated protocol version; "" before initialize */
	/* Set by agentkernel's "shutdown" method (answered with a null result): a stdio
	 * transport stops reading after sending the answer; over HTTP the session ends. */
	bool shutdown;
} ac_mcp_conn_t;

/* Handles one JSON-RPC message or batch (methods: initialize, ping, tools/list, tools/call
 * and agentkernel's shutdown; see ac_mcp_conn_t) (len bytes of text, any bytes accepted). *reply
 * receives the JSON text to send back (one line: no newline inside; to free), or NULL when
 * there is nothing to send (notifications and responses only). Malformed input gets its
 * JSON-RPC error reply (-32700, -32600, ...), never a failure. Returns -1 (with err) only
 * when no reply could be built (out of memory). */
int ac_mcp_handle(ac_mcp_t *srv, ac_mcp_conn_t *conn, const char *msg, size_t len, char **reply,
		  ac_error_t **err);

/* The reply to a message longer than AC_MCP_MESSAGE_MAX that a transport skipped without
 * reading it whole (a -32700 parse error, id null), as for ac_mcp_handle. */
int ac_mcp_oversize_reply(char **reply, ac_error_t **err);

/* ------------------------------------------------------------ Streamable HTTP (/mcp) */

typedef struct ac_mcp_http_reply {
	int status;		  /* HTTP status to send */
	char *body;		  /* response body, or NULL for none (202, 204, 405) */
	size_t body_len;	  /* its length in bytes */
	const char *content_type; /* "application/json" with a body, else NULL */
	/* Non-empty: send it as the "Mcp-Session-Id" response header (set on the reply to a
	 * successful initialize). */
	char session_id[AC_MCP_SESSION_ID_LEN + 1];
	const char *allow; /* non-NULL (405): the "Allow" response header's value */
} ac_mcp_http_reply_t;

/* One request to the MCP endpoint. method: the HTTP method; session_hdr, protocol_hdr,
 * accept_hdr: the "Mcp-Session-Id", "MCP-Protocol-Version" and "Accept" request headers
 * (NULL when absent); body/len: the request body (POST). Fills *out:
 *
 *   POST   Accept (when given) must allow application/json, else 406.
 *          Body over AC_MCP_MESSAGE_MAX: 413. Unparseable: 400 + JSON-RPC -32700 body.
 *          An initialize request (alone, not in a batch) opens a session: 200, the
 *          InitializeResult, and out->session_id (any Mcp-Session-Id sent is ignored).
 *          Anything else needs the session: no Mcp-Session-Id 400, an unknown (or ended)
 *          one 404, an MCP-Protocol-Version that is unsupported or not the session's 400
 *          (absent: fine). Then: 202 without body when the message(s) were only
 *          notifications or responses, else 200 with the JSON-RPC response (or batch).
 *   GET    405 (no server-initiated SSE stream is offered), allow "POST, DELETE".
 *   DELETE ends the session: 204; no Mcp-Session-Id 400, unknown 404.
 *   other  405, allow "POST, DELETE".
 *
 * 4xx replies other than 202/204/405 carry a JSON-RPC error object as body. Returns 0 when
 * *out is filled (whatever the status), -1 (with err; answer 500) when out of memory.
 * Free out with ac_mcp_http_reply_free. The caller checks the Origin header and any
 * authorization before calling. A tool call runs in the calling thread. */
int ac_mcp_http(ac_mcp_t *srv, const char *method, const char *session_hdr,
		const char *protocol_hdr, const char *accept_hdr, const char *body, size_t len,
		ac_mcp_http_reply_t *out, ac_error_t **err);
void ac_mcp_http_reply_free(ac_mcp_http_reply_t *r);

/* The calling thread's tool calls end their commands when fd (> 0, the client's connected
 * socket) hangs up, as the HTTP API's exec routes do; 0: never. Returns the previous fd. */
int ac_mcp_set_cancel_fd(int fd);

/* Number of open HTTP sessions (for tests and metrics). */
size_t ac_mcp_http_sessions(ac_mcp_t *srv);

#endif
