/* The HTTP API's handlers, by area (src/api/routes.c, exec.c, files.c). Each answers with
 * resp; path parameters are in req->params in pattern order. */
#ifndef AGENTCELL_API_HANDLERS_H
#define AGENTCELL_API_HANDLERS_H

#include "api/http.h"

typedef void (*ac_api_handler_t)(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

/* Error envelope from a library error (status from its kind); consumes e. */
void ac_api_fail_error(ac_api_resp_t *resp, ac_error_t *e);
/* The first value of a query argument, or NULL. */
const char *ac_api_query(const ac_api_req_t *req, const char *key);
/* SandboxInfo of agentkernel's API from a state with "status" (consumes st). */
json_t *ac_api_sandbox_info(json_t *st);

/* exec.c */
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

/* files.c */
void ac_h_file_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_file_put(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_file_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);
void ac_h_files_batch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp);

#endif
