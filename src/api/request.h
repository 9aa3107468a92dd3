/* Typed access to JSON request bodies (src/api/request.c). Each returns 0, or -1 after
 * filling resp with a 400 naming the field. Strings point into the body. */
#ifndef AGENTCELL_API_REQUEST_H
#define AGENTCELL_API_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/http.h"

/* The body as an object (new reference); an empty body is {} unless required. NULL after a
 * 400 (malformed JSON, duplicate keys, not an object). */
json_t *ac_body_object(const ac_api_req_t *req, ac_api_resp_t *resp, bool required);
/* A field clients send that agentcell cannot honour: an empty value (null, "", [], {},
 * false) is accepted and ignored; any other is a 501 naming the field and saying why. */
typedef struct ac_body_unsupported {
	const char *field;
	const char *why;
} ac_body_unsupported_t;

/* Every key is in known, or in unsupported (terminated by {NULL}) with an empty value. */
int ac_body_known(json_t *body, const char *const *known, const ac_body_unsupported_t *unsupported,
		  ac_api_resp_t *resp);
/* Whether a value is "nothing": null, false, "", [] or {}. */
bool ac_body_empty(const json_t *v);
/* A string without NUL; absent or null: *out = NULL (400 if required); max 0: no limit. */
int ac_body_str(json_t *body, const char *key, bool required, size_t max, const char **out,
		ac_api_resp_t *resp);
int ac_body_bool(json_t *body, const char *key, bool *out, bool *set, ac_api_resp_t *resp);
/* A number in [min, max] (integer: no fraction). */
int ac_body_num(json_t *body, const char *key, double min, double max, bool integer, double *out,
		bool *set, ac_api_resp_t *resp);
/* An array of strings as a NULL-terminated array (free the array only); need_eq: KEY=VALUE. */
int ac_body_strv(json_t *body, const char *key, size_t max_items, bool need_eq, char ***out,
		 ac_api_resp_t *resp);
/* Environment: ["K=V", ...] or {"K": "V"} (rewritten in the body as an array). */
int ac_body_env(json_t *body, const char *key, char ***out, ac_api_resp_t *resp);
/* "command": a non-empty array of strings whose first item is non-empty. */
int ac_body_command(json_t *body, char ***argv, ac_api_resp_t *resp);
/* A duration: "90s", "30m", "2h", "1d", "3600" or a positive integer of seconds. */
int ac_body_duration(json_t *body, const char *key, uint64_t *secs, bool *set, ac_api_resp_t *resp);

#endif
