/* /mcp of the HTTP API: MCP's Streamable HTTP transport (src/mcp/mcp.h, ac_mcp_http) behind
 * the API's router, which has already checked Origin, Host and the API key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "api/handlers.h"
#include "mcp/mcp.h"

void ac_h_mcp(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	if (!api->mcp) {
		ac_api_fail(resp, 501, "MCP over HTTP is not enabled on this server");
		return;
	}
	ac_mcp_http_reply_t r = {0};
	ac_error_t *e = NULL;
	/* Origin and Host were checked for every route (admit). */
	const char *sid = req->header ? req->header(req, "Mcp-Session-Id") : NULL;
	const char *proto = req->header ? req->header(req, "MCP-Protocol-Version") : NULL;
	const char *accept = req->header ? req->header(req, "Accept") : NULL;
	/* A client that hangs up takes the commands of its tool calls with it, as on the
	 * API's own exec routes. */
	int old_cancel = ac_mcp_set_cancel_fd(req->client_fd);
	int rc = ac_mcp_http(api->mcp, req->method, sid, proto, accept, req->body, req->body_len,
			     &r, &e);
	ac_mcp_set_cancel_fd(old_cancel);
	if (rc < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_api_resp_clear(resp);
	resp->status = r.status;
	resp->body = steal_ptr(r.body);
	resp->len = resp->body ? r.body_len : 0;
	resp->content_type =
	    resp->body ? (r.content_type ? r.content_type : "application/json") : NULL;
	if (r.session_id[0])
		resp->session_id = strdup(r.session_id);
	if (r.allow)
		snprintf(resp->allow, sizeof(resp->allow), "%s", r.allow);
	ac_mcp_http_reply_free(&r);
}
