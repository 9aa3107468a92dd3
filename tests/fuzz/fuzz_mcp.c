/* Fuzz target: the MCP server core (src/mcp). The input is handed, as it is, to the JSON-RPC
 * layer (ac_mcp_handle, a fresh connection each time) and to the Streamable HTTP entry point
 * (as a POST body, with and without a session), and, when it is JSON, to the argument
 * checker against every tool's schema. The server runs validate-only: tools/call parses and
 * checks arguments all the way, but never reaches the manager, so no sandbox is started. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/io.h"
#include "base/util.h"
#include "mcp/internal.h"
#include "mcp/mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ac_mcp_t *srv;
static ac_manager_t *mgr;
static char home[64];
static char session[AC_MCP_SESSION_ID_LEN + 1];

static void cleanup(void)
{
	ac_mcp_free(srv);
	ac_manager_free(mgr);
	ac_rm_rf_at(AT_FDCWD, home, NULL);
}

static void start(void)
{
	snprintf(home, sizeof(home), "/tmp/agentcell-fuzz-mcp.XXXXXX");
	if (!mkdtemp(home) || ac_manager_open(home, &mgr, NULL) < 0 ||
	    ac_mcp_new(mgr, "0.0.0", NULL, &srv, NULL) < 0)
		abort();
	ac_mcp_set_validate_only(srv, true);
	atexit(cleanup);
	static const char init[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
	    "\"protocolVersion\":\"2025-06-18\"}}";
	ac_mcp_http_reply_t r;
	if (ac_mcp_http(srv, "POST", NULL, NULL, NULL, init, strlen(init), &r, NULL) < 0 ||
	    r.status != 200 || strlen(r.session_id) != AC_MCP_SESSION_ID_LEN)
		abort();
	memcpy(session, r.session_id, sizeof(session));
	ac_mcp_http_reply_free(&r);
}

/* A reply is one line of JSON: a JSON-RPC response or a non-empty array of them. */
static void check_response(const json_t *r)
{
	if (!json_is_object(r) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")) ?: "", "2.0") != 0)
		abort();
	json_t *res = json_object_get(r, "result"), *err = json_object_get(r, "error");
	if (!res == !err)
		abort();
	json_t *id = json_object_get(r, "id");
	if (!json_is_string(id) && !json_is_integer(id) && !json_is_null(id))
		abort();
	if (err && (!json_is_integer(json_object_get(err, "code")) ||
		    !json_is_string(json_object_get(err, "message"))))
		abort();
	if (res && !json_is_object(res))
		abort();
}

static void check_reply(const char *reply, size_t len)
{
	if (memchr(reply, '\n', len))
		abort();
	json_t *j = json_loadb(reply, len, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_array(j)) {
		if (json_array_size(j) == 0)
			abort();
		size_t i;
		json_t *e;
		json_array_foreach(j, i, e) check_response(e);
	} else {
		check_response(j);
	}
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		start();
	const char *text = (const char *)data;

	/* stdio: a fresh connection */
	ac_mcp_conn_t conn = {.shutdown = false};
	char *reply = NULL;
	if (ac_mcp_handle(srv, &conn, text, size, &reply, NULL) < 0)
		abort();
	if (reply)
		check_reply(reply, strlen(reply));
	free(reply);

	/* HTTP: in the session, and without one */
	for (int with = 0; with < 2; with++) {
		ac_mcp_http_reply_t r;
		if (ac_mcp_http(srv, "POST", with ? session : NULL, NULL,
				"application/json, text/event-stream", text, size, &r, NULL) < 0)
			abort();
		if (r.status != 200 && r.status != 202 && r.status != 400 && r.status != 404)
			abort();
		if ((r.body != NULL) != (r.status != 202))
			abort();
		if (r.body)
			check_reply(r.body, r.body_len);
		/* An initialize made a session: end it again, so the table does not fill. */
		if (r.session_id[0]) {
			ac_mcp_http_reply_t d;
			if (ac_mcp_http(srv, "DELETE", r.session_id, NULL, NULL, NULL, 0, &d,
					NULL) < 0 ||
			    d.status != 204)
				abort();
		}
		ac_mcp_http_reply_free(&r);
	}

	/* the argument checker, straight */
	json_t *j = json_loadb(text, size, 0, NULL);
	if (j) {
		char msg[512];
		for (size_t i = 0; ac_mcp_tool_name(i); i++) {
			bool ok =
			    ac_mcp_schema_check(ac_mcp_tool_schema(i, false), j, msg, sizeof(msg));
			if (!ok && !msg[0])
				abort(); /* a refusal always says why */
		}
	}
	json_decref(j);
	return 0;
}
