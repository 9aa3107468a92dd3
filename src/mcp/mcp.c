/* MCP server core: JSON-RPC 2.0 framing, the MCP methods (initialize, ping, tools/list,
 * tools/call), and the session table of the Streamable HTTP transport. The tools
 * themselves live in tools.c. */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/util.h"
#include "base/json.h"
#include "mcp/internal.h"

/* JSON-RPC 2.0 error codes */
#define RPC_PARSE_ERROR	     -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_INTERNAL_ERROR   -32603
/* Used by the MCP SDKs for an unknown HTTP session. */
#define RPC_SESSION_NOT_FOUND -32001

static const char *const versions[] = {"2025-06-18", "2025-03-26", "2024-11-05"};

static const char instructions[] =
    "agentcell runs commands in isolated Linux sandboxes (own PID, mount, network, user "
    "namespaces; no network access, only loopback). Use sandbox_run for a one-off command "
    "in a fresh sandbox that is removed afterwards. For work that spans several commands, "
    "sandbox_create a named sandbox (files persist across commands, stop and start), run "
    "commands in it with sandbox_exec, move files with sandbox_file_read and "
    "sandbox_file_write, and sandbox_remove it when done. A command given as a string runs "
    "with sh -c; as an array it is executed directly. Results give the exit code, stdout "
    "and stderr separately; a non-zero exit code marks the result as an error.";

typedef struct session {
	char id[AC_MCP_SESSION_ID_LEN + 1];
	char version[16];
	uint64_t last_used;
} session_t;

struct ac_mcp {
	ac_manager_t *m;
	char *version;
	char *config_path;
	pthread_mutex_t lock; /* guards sessions, nsessions, tick */
	session_t *sessions;
	size_t nsessions;
	uint64_t tick;
	bool validate_only;
};

void ac_mcp_set_validate_only(ac_mcp_t *srv, bool on)
{
	srv->validate_only = on;
}

/* The calling thread's client connection (see ac_mcp_set_cancel_fd). */
static __thread int cancel_fd;

int ac_mcp_set_cancel_fd(int fd)
{
	int old = cancel_fd;
	cancel_fd = fd > 0 ? fd : 0;
	return old;
}

int ac_mcp_new(ac_manager_t *m, const char *version, const char *config_path, ac_mcp_t **out,
	       ac_error_t **err)
{
	if (ac_mcp_tools_init(err) < 0)
		return -1;
	ac_mcp_t *s = calloc(1, sizeof(*s));
	if (!s)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	s->m = m;
	s->version = strdup(version ? version : "0");
	s->config_path = config_path ? strdup(config_path) : NULL;
	s->sessions = calloc(AC_MCP_SESSIONS_MAX, sizeof(session_t));
	if (!s->version || (config_path && !s->config_path) || !s->sessions) {
		ac_mcp_free(s);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void ac_mcp_free(ac_mcp_t *srv)
{
	if (!srv)
		return;
	if (srv->sessions)
		pthread_mutex_destroy(&srv->lock);
	free(srv->sessions);
	free(srv->version);
	free(srv->config_path);
	free(srv);
}

/* ------------------------------------------------------------------ JSON-RPC */

/* {"jsonrpc":"2.0","id":id,"error":{"code","message"}}; id borrowed (NULL: null). */
static json_t *rpc_error(json_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *rpc_error(json_t *id, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *text = ac_json_text(msg, strlen(msg));
	return json_pack("{ss sO s{si so*}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
			 "error", "code", code, "message", text);
}

/* result is consumed. */
static json_t *rpc_result(json_t *id, json_t *result)
{
	if (!result)
		return rpc_error(id, RPC_INTERNAL_ERROR, "Internal error: out of memory");
	return json_pack("{ss sO so}", "jsonrpc", "2.0", "id", id, "result", result);
}

static bool version_supported(const char *v)
{
	for (size_t i = 0; v && i < AC_ARRAY_SIZE(versions); i++)
		if (!strcmp(v, versions[i]))
			return true;
	return false;
}

static json_t *do_initialize(ac_mcp_t *srv, ac_mcp_conn_t *conn, json_t *id, json_t *params)
{
	json_t *pv = json_object_get(params, "protocolVersion");
	if (!json_is_string(pv))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: initialize needs protocolVersion (a string)");
	json_t *caps = json_object_get(params, "capabilities");
	if (caps && !json_is_object(caps))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: capabilities must be an object");
	json_t *ci = json_object_get(params, "clientInfo");
	if (ci && !json_is_object(ci))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: clientInfo must be an object");
	const char *want = json_string_value(pv);
	const char *v = version_supported(want) ? want : AC_MCP_LATEST_VERSION;
	snprintf(conn->version, sizeof(conn->version), "%s", v);
	json_t *info = json_pack("{ss ss}", "name", "agentcell", "version", srv->version);
	if (info && strcmp(v, "2025-06-18") >= 0)
		json_object_set_new(info, "title", json_string("agentcell sandboxes"));
	return rpc_result(id, json_pack("{ss s{s{sb}} so* ss}", "protocolVersion", v,
					"capabilities", "tools", "listChanged", 0, "serverInfo",
					info, "instructions", instructions));
}

static json_t *do_tools_call(ac_mcp_t *srv, const char *version, json_t *id, json_t *params)
{
	json_t *name = json_object_get(params, "name");
	if (!json_is_string(name))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: tools/call needs name (a string)");
	json_t *args = json_object_get(params, "arguments");
	if (args && !json_is_object(args) && !json_is_null(args))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: arguments must be an object");
	ac_mcp_call_t call = {0};
	ac_mcp_tool_env_t env = {.manager = srv->m,
				 .config_path = srv->config_path,
				 .validate_only = srv->validate_only,
				 .cancel_fd = cancel_fd};
	if (!ac_mcp_tools_call(&env, version, json_string_value(name),
			       json_is_object(args) ? args : NULL, &call))
		return rpc_error(id, RPC_INVALID_PARAMS, "Unknown tool: %s",
				 json_string_value(name));
	if (call.result)
		return rpc_result(id, call.result);
	if (call.internal)
		return rpc_error(id, RPC_INTERNAL_ERROR, "Internal error: %s",
				 call.invalid[0] ? call.invalid : "out of memory");
	return rpc_error(id, RPC_INVALID_PARAMS, "Invalid params for %s: %s",
			 json_string_value(name), call.invalid);
}

/* A request (id set) or notification (id NULL) with a method. */
static json_t *dispatch(ac_mcp_t *srv, ac_mcp_conn_t *conn, const char *method, json_t *id,
			json_t *params)
{
	const char *v = conn->version[0] ? conn->version : AC_MCP_LATEST_VERSION;
	/* agentkernel's shutdown (request or notification): a null result, then the
	 * transport ends the connection or session (see ac_mcp_conn_t). */
	if (!strcmp(method, "shutdown"))
		conn->shutdown = true;
	if (!id) {
		/* notifications/initialized, notifications/cancelled (a stdio request runs to
		 * its end), or anything else: nothing to answer. */
		return NULL;
	}
	if (params && !json_is_object(params))
		return rpc_error(id, RPC_INVALID_PARAMS,
				 "Invalid params: params must be an object");
	if (!strcmp(method, "initialize"))
		return do_initialize(srv, conn, id, params);
	if (!strcmp(method, "ping"))
		return rpc_result(id, json_object());
	if (!strcmp(method, "tools/list")) {
		json_t *cursor = json_object_get(params, "cursor");
		if (cursor && !json_is_null(cursor))
			return rpc_error(id, RPC_INVALID_PARAMS,
					 "Invalid params: unknown cursor (the list has one page)");
		return rpc_result(id, ac_mcp_tools_list(v));
	}
	if (!strcmp(method, "tools/call"))
		return do_tools_call(srv, v, id, params);
	if (!strcmp(method, "shutdown"))
		return json_pack("{ss sO sn}", "jsonrpc", "2.0", "id", id, "result");
	return rpc_error(id, RPC_METHOD_NOT_FOUND, "Method not found: %s", method);
}

/* One message of a batch or alone: the response, or NULL for none. */
static json_t *handle_one(ac_mcp_t *srv, ac_mcp_conn_t *conn, json_t *msg)
{
	if (!json_is_object(msg))
		return rpc_error(NULL, RPC_INVALID_REQUEST,
				 "Invalid Request: a message must be a JSON object");
	json_t *id = json_object_get(msg, "id");
	json_t *method = json_object_get(msg, "method");
	/* An id we cannot echo faithfully is answered with null. */
	json_t *reply_id = json_is_string(id) || json_is_integer(id) ? id : NULL;
	if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0)
		return rpc_error(reply_id, RPC_INVALID_REQUEST,
				 "Invalid Request: jsonrpc must be \"2.0\"");
	if (!method) {
		/* A response to a request of ours (we send none): nothing to answer. */
		if (id && (json_object_get(msg, "result") || json_object_get(msg, "error")))
			return NULL;
		return rpc_error(reply_id, RPC_INVALID_REQUEST, "Invalid Request: no method");
	}
	if (!json_is_string(method))
		return rpc_error(reply_id, RPC_INVALID_REQUEST,
				 "Invalid Request: method must be a string");
	if (id && !reply_id)
		return rpc_error(NULL, RPC_INVALID_REQUEST,
				 "Invalid Request: id must be a string or an integer");
	json_t *params = json_object_get(msg, "params");
	if (params && !json_is_object(params) && !json_is_array(params))
		return rpc_error(reply_id, RPC_INVALID_REQUEST,
				 "Invalid Request: params must be an object");
	return dispatch(srv, conn, json_string_value(method), id, params);
}

/* A parsed message or batch: the response (object or array), or NULL for none. */
static json_t *handle_parsed(ac_mcp_t *srv, ac_mcp_conn_t *conn, json_t *in)
{
	if (!json_is_array(in))
		return handle_one(srv, conn, in);
	size_t n = json_array_size(in);
	if (n == 0)
		return rpc_error(NULL, RPC_INVALID_REQUEST, "Invalid Request: empty batch");
	if (n > AC_MCP_BATCH_MAX)
		return rpc_error(NULL, RPC_INVALID_REQUEST,
				 "Invalid Request: a batch holds at most %d messages",
				 AC_MCP_BATCH_MAX);
	json_t *out = json_array();
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *r = handle_one(srv, conn, json_array_get(in, i));
		if (r)
			json_array_append_new(out, r);
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *parse(const char *msg, size_t len, json_t **error)
{
	*error = NULL;
	json_error_t jerr;
	json_t *in = NULL;
	if (len > AC_MCP_MESSAGE_MAX)
		*error = rpc_error(NULL, RPC_PARSE_ERROR,
				   "Parse error: message longer than %u bytes", AC_MCP_MESSAGE_MAX);
	else if (!(in = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr)))
		*error = rpc_error(NULL, RPC_PARSE_ERROR, "Parse error: %s (at byte %d)", jerr.text,
				   jerr.position);
	return in;
}

static int dump(json_t *reply, char **out, size_t *out_len, ac_error_t **err)
{
	*out = NULL;
	if (out_len)
		*out_len = 0;
	if (!reply)
		return 0;
	*out = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (!*out)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot encode the MCP reply");
	if (out_len)
		*out_len = strlen(*out);
	return 0;
}

int ac_mcp_handle(ac_mcp_t *srv, ac_mcp_conn_t *conn, const char *msg, size_t len, char **reply,
		  ac_error_t **err)
{
	json_t *error;
	json_t *in = parse(msg, len, &error);
	json_t *out = in ? handle_parsed(srv, conn, in) : error;
	json_decref(in);
	return dump(out, reply, NULL, err);
}

int ac_mcp_oversize_reply(char **reply, ac_error_t **err)
{
	json_t *error;
	parse(NULL, AC_MCP_MESSAGE_MAX + 1ul, &error);
	return dump(error, reply, NULL, err);
}

/* ------------------------------------------------------------------ Streamable HTTP */

size_t ac_mcp_http_sessions(ac_mcp_t *srv)
{
	pthread_mutex_lock(&srv->lock);
	size_t n = srv->nsessions;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

/* Compares a session id without leaking where it differs. */
static bool id_equal(const char *a, const char *b)
{
	unsigned char d = 0;
	for (size_t i = 0; i < AC_MCP_SESSION_ID_LEN; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Index of the session, or -1; the caller holds the lock. */
static long find_session(ac_mcp_t *srv, const char *id)
{
	if (strlen(id) != AC_MCP_SESSION_ID_LEN)
		return -1;
	for (size_t i = 0; i < srv->nsessions; i++)
		if (id_equal(srv->sessions[i].id, id))
			return (long)i;
	return -1;
}

static int new_session(ac_mcp_t *srv, const char *version, char id[AC_MCP_SESSION_ID_LEN + 1],
		       ac_error_t **err)
{
	unsigned char rnd[AC_MCP_SESSION_ID_LEN / 2];
	size_t done = 0;
	while (done < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + done, sizeof(rnd) - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot make a session id");
		done += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	pthread_mutex_lock(&srv->lock);
	size_t slot = srv->nsessions;
	if (slot == AC_MCP_SESSIONS_MAX) {
		/* Full: the least recently used session gives way. */
		slot = 0;
		for (size_t i = 1; i < srv->nsessions; i++)
			if (srv->sessions[i].last_used < srv->sessions[slot].last_used)
				slot = i;
	} else {
		srv->nsessions++;
	}
	session_t *s = &srv->sessions[slot];
	memcpy(s->id, id, AC_MCP_SESSION_ID_LEN + 1);
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->last_used = ++srv->tick;
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

/* Whether Accept (absent: anything) allows an application/json answer. */
static bool accepts_json(const char *accept)
{
	if (!accept || !accept[0])
		return true;
	return strcasestr(accept, "application/json") || strcasestr(accept, "application/*") ||
	       strstr(accept, "*/*");
}

static void http_error(ac_mcp_http_reply_t *out, int status, int code, const char *msg)
{
	out->status = status;
	json_t *e = rpc_error(NULL, code, "%s", msg);
	if (dump(e, &out->body, &out->body_len, NULL) == 0 && out->body)
		out->content_type = "application/json";
}

/* An initialize request (a notification named so is just an unknown notification). */
static bool is_initialize(json_t *in)
{
	return json_is_object(in) && json_object_get(in, "id") &&
	       json_is_string(json_object_get(in, "method")) &&
	       !strcmp(json_string_value(json_object_get(in, "method")), "initialize");
}

static bool batch_has_initialize(json_t *in)
{
	size_t i;
	json_t *m;
	json_array_foreach(in, i, m) if (is_initialize(m)) return true;
	return false;
}

static int http_post(ac_mcp_t *srv, const char *session_hdr, const char *protocol_hdr,
		     const char *body, size_t len, ac_mcp_http_reply_t *out, ac_error_t **err)
{
	if (len > AC_MCP_MESSAGE_MAX) {
		http_error(out, 413, RPC_INVALID_REQUEST, "Request body too large");
		return 0;
	}
	json_t *perr;
	json_t *in = parse(body ? body : "", body ? len : 0, &perr);
	if (!in) {
		out->status = 400;
		out->content_type = "application/json";
		return dump(perr, &out->body, &out->body_len, err);
	}
	ac_mcp_conn_t conn = {.shutdown = false};
	json_t *reply = NULL;
	if (is_initialize(in)) {
		reply = handle_one(srv, &conn, in);
		json_decref(in);
		if (reply && json_object_get(reply, "result") &&
		    new_session(srv, conn.version, out->session_id, err) < 0) {
			json_decref(reply);
			return -1;
		}
		out->status = 200;
		out->content_type = "application/json";
		return dump(reply, &out->body, &out->body_len, err);
	}
	if (json_is_array(in) && batch_has_initialize(in)) {
		json_decref(in);
		http_error(out, 400, RPC_INVALID_REQUEST,
			   "Invalid Request: initialize must not be part of a batch");
		return 0;
	}
	if (!session_hdr || !session_hdr[0]) {
		json_decref(in);
		http_error(out, 400, RPC_INVALID_REQUEST,
			   "Bad Request: Mcp-Session-Id header is required");
		return 0;
	}
	pthread_mutex_lock(&srv->lock);
	long i = find_session(srv, session_hdr);
	if (i >= 0) {
		memcpy(conn.version, srv->sessions[i].version, sizeof(conn.version));
		srv->sessions[i].last_used = ++srv->tick;
	}
	pthread_mutex_unlock(&srv->lock);
	if (i < 0) {
		json_decref(in);
		http_error(out, 404, RPC_SESSION_NOT_FOUND, "Session not found");
		return 0;
	}
	if (protocol_hdr && strcmp(protocol_hdr, conn.version) != 0) {
		json_decref(in);
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "Bad Request: %s MCP-Protocol-Version %.32s (this session uses %s)",
			 version_supported(protocol_hdr) ? "wrong" : "unsupported", protocol_hdr,
			 conn.version);
		http_error(out, 400, RPC_INVALID_REQUEST, msg);
		return 0;
	}
	/* The lock is not held here: a tool call may take as long as its command. */
	reply = handle_parsed(srv, &conn, in);
	json_decref(in);
	if (conn.shutdown) { /* agentkernel's shutdown ends the session */
		pthread_mutex_lock(&srv->lock);
		long j = find_session(srv, session_hdr);
		if (j >= 0)
			srv->sessions[j] = srv->sessions[--srv->nsessions];
		pthread_mutex_unlock(&srv->lock);
	}
	if (!reply) {
		out->status = 202;
		return 0;
	}
	out->status = 200;
	out->content_type = "application/json";
	return dump(reply, &out->body, &out->body_len, err);
}

static void http_delete(ac_mcp_t *srv, const char *session_hdr, ac_mcp_http_reply_t *out)
{
	if (!session_hdr || !session_hdr[0]) {
		http_error(out, 400, RPC_INVALID_REQUEST,
			   "Bad Request: Mcp-Session-Id header is required");
		return;
	}
	pthread_mutex_lock(&srv->lock);
	long i = find_session(srv, session_hdr);
	if (i >= 0)
		srv->sessions[i] = srv->sessions[--srv->nsessions];
	pthread_mutex_unlock(&srv->lock);
	if (i < 0)
		http_error(out, 404, RPC_SESSION_NOT_FOUND, "Session not found");
	else
		out->status = 204;
}

int ac_mcp_http(ac_mcp_t *srv, const char *method, const char *session_hdr,
		const char *protocol_hdr, const char *accept_hdr, const char *body, size_t len,
		ac_mcp_http_reply_t *out, ac_error_t **err)
{
	*out = (ac_mcp_http_reply_t){0};
	if (method && !strcmp(method, "POST")) {
		if (!accepts_json(accept_hdr)) {
			http_error(out, 406, RPC_INVALID_REQUEST,
				   "Not Acceptable: the client must accept application/json");
			return 0;
		}
		int rc = http_post(srv, session_hdr, protocol_hdr, body, len, out, err);
		if (rc < 0)
			ac_mcp_http_reply_free(out);
		return rc;
	}
	if (method && !strcmp(method, "DELETE")) {
		http_delete(srv, session_hdr, out);
		return 0;
	}
	out->status = 405;
	out->allow = "POST, DELETE";
	return 0;
}

void ac_mcp_http_reply_free(ac_mcp_http_reply_t *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
