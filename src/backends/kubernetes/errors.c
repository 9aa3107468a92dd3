/* An API server's error answers as one-line ac_error_t (see ac_k8s_error_from in k8s.h). */
#include <stdio.h>
#include <string.h>

#include "backends/kubernetes/internal.h"

int ac_k8s_error_from(const ac_remote_resp_t *r, const char *cluster, const char *what,
		      ac_error_t **err)
{
	if (r->status >= 200 && r->status < 300)
		return 0;
	const char *cl = cluster && *cluster ? cluster : "the cluster";
	const json_t *j = r->json;
	bool is_status = json_is_object(j) &&
			 !strcmp(json_string_value(json_object_get(j, "kind")) ?: "", "Status");
	const char *reason = is_status ? json_string_value(json_object_get(j, "reason")) : NULL;
	const char *msg = is_status ? json_string_value(json_object_get(j, "message")) : NULL;
	json_t *details = is_status ? json_object_get(j, "details") : NULL;
	char text[600] = "";
	if (msg && *msg)
		snprintf(text, sizeof(text), "%s", msg);
	else if (!is_status && r->body && r->len) { /* not an API server's answer: a proxy's */
		ac_k8s_last_line(r->body, strcspn(r->body, "\n") ? strcspn(r->body, "\n") : r->len,
				 text, 200);
	}
	/* The causes (field validation, exit codes) in one line. */
	char causes[400] = "";
	size_t used = 0, i;
	json_t *c;
	json_array_foreach(json_object_get(details, "causes"), i, c)
	{
		const char *f = json_string_value(json_object_get(c, "field"));
		const char *m = json_string_value(json_object_get(c, "message"));
		const char *rs = json_string_value(json_object_get(c, "reason"));
		if (!m && !rs)
			continue;
		int n = snprintf(causes + used, sizeof(causes) - used, "%s%s%s%s", used ? "; " : "",
				 f ? f : "", f ? ": " : "", m ? m : rs);
		if (n < 0 || (size_t)n >= sizeof(causes) - used)
			break;
		used += (size_t)n;
	}
	long retry = r->retry_after;
	json_t *ras = json_object_get(details, "retryAfterSeconds");
	if (retry < 0 && json_is_integer(ras))
		retry = (long)json_integer_value(ras);

	ac_error_kind_t kind = AC_ERR_BACKEND;
	const char *cause;
	switch (r->status) {
	case 400:
		kind = AC_ERR_INVALID;
		cause = "bad request";
		break;
	case 401:
		kind = AC_ERR_PERMISSION;
		cause = "unauthorized (the cluster did not accept the credentials)";
		break;
	case 403:
		kind = AC_ERR_PERMISSION;
		cause = "forbidden";
		break;
	case 404:
		kind = AC_ERR_NOT_FOUND;
		cause = "not found";
		break;
	case 409:
		if (reason && !strcmp(reason, "AlreadyExists")) {
			kind = AC_ERR_EXISTS;
			cause = "already exists";
		} else {
			kind = AC_ERR_STATE;
			cause = "conflict";
		}
		break;
	case 410:
		kind = AC_ERR_STATE;
		cause = "gone (expired)";
		break;
	case 422:
		kind = AC_ERR_INVALID;
		cause = "invalid";
		break;
	case 429:
		cause = "too many requests";
		break;
	case 500:
		cause = "internal error of the API server";
		break;
	case 503:
		cause = "service unavailable";
		break;
	case 504:
		cause = "timed out in the API server";
		break;
	default:
		cause = r->status >= 500 ? "server error" : "unexpected answer";
		break;
	}
	char retry_s[64] = "";
	if (retry >= 0 && (r->status == 429 || r->status >= 500))
		snprintf(retry_s, sizeof(retry_s), " (retry after %ld s)", retry);
	/* The message already says what the causes say for most reasons but 422's. */
	bool show_causes = *causes && (r->status == 422 || r->status == 400 || !*text);
	return ac_error_set(err, kind, 0, "%s on %s: %s (HTTP %ld)%s%s%s%s%s%s",
			    what ? what : "request", cl, cause, r->status, *text ? ": " : "", text,
			    show_causes ? " [" : "", show_causes ? causes : "",
			    show_causes ? "]" : "", retry_s);
}
