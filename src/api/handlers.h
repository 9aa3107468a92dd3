/* The HTTP API's handlers, by area (src/api/sandboxes.c, exec.c, files.c, mcp_http.c), and
 * what they share (reply.c). The router (router.c) dispatches to them. Each answers with
 * resp; path parameters are in req->params in pattern order. */
#ifndef AGENTCELL_API_HANDLERS_H
#define AGENTCELL_API_HANDLERS_H

#include <jansson.h>

#include "agentcell/manager.h"
#include "api/http.h"
#include "api/request.h"

typedef void (*ac_api_handler_t)(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* ---- reply.c ---- */

/* Error envelope from a library error (status from its kind); consumes e. */
void ac_api_fail_error(ac_api_resp_t *resp, ac_error_t *e);
/* The first value of a query argument, or NULL. */
const char *ac_api_query(const ac_api_req_t *req, const char *key);
/* SandboxInfo of agentkernel's API from a state with "status" (consumes st). */
json_t *ac_api_sandbox_info(json_t *st);

/* ---- sandboxes.c ---- */

/* The options a body gives for a new sandbox (create, run): o's strings point into body,
 * *env and *labels are arrays to free (not their strings). -1 after a 400 in resp. */
int ac_api_net_opts(json_t *body, ac_sandbox_opts_t *o, ac_api_resp_t *resp);
void ac_api_net_opts_free(ac_sandbox_opts_t *o);
int ac_api_sandbox_opts(json_t *body, ac_sandbox_opts_t *o, char ***env, char ***labels,
			ac_api_resp_t *resp);
/* Fields clients send that only agentkernel's other backends or services implement:
 * accepted when empty, a 501 saying why otherwise ({NULL}-terminated). */
extern const ac_body_unsupported_t ac_api_unsupported_fields[];
/* agentkernel's names for a new sandbox's options, rewritten in body to ours before
 * ac_api_sandbox_opts and ac_api_net_opts read it: ports -> publish, secrets (KEY:HOST
 * [:HEADER]) -> secret_bindings, backend "automatic" -> the server's default, network as
 * an object (empty: nothing asked), placeholder_secrets (ours always are). -1 after a
 * 400/501 naming the field. */
int ac_api_compat_fields(json_t *body, ac_api_resp_t *resp);
/* agentkernel's provenance fields of a create body, checked: an object of those given (NULL
 * when none) or -1 after a 400. */
int ac_api_provenance_fields(json_t *body, json_t **out, ac_api_resp_t *resp);
/* Records them in the new sandbox's state under its lock, before its start; a value the
 * image store already set (a template's) stays. */
int ac_api_record_provenance(ac_api_t *api, const char *name, json_t *prov, ac_error_t **e);

void ac_h_list(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_create(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_by_uuid(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_patch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_start(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_stop(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_recover(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_resize(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_extend(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_logs(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_audit(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_gc(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_reconcile(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* ---- exec.c ---- */
void ac_h_run(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_run_stream(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_batch_run(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_exec(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_exec_stream(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_detach_start(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_detach_list(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_detach_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_detach_logs(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_detach_kill(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* ---- files.c ---- */
void ac_h_file_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_file_put(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_file_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_files_batch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* ---- mcp_http.c: POST, GET and DELETE /mcp (MCP Streamable HTTP) ---- */
void ac_h_mcp(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

#endif
