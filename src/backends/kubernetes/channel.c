/* The remotecommand channel protocol, exec/attach/log URLs and the exec wrapper (see
 * channel.h). Pure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/kubernetes/channel.h"
#include "backends/remote/remote.h"
#include "base/util.h"

const char *const ac_k8s_exec_protocols[] = {AC_K8S_PROTO_V5, AC_K8S_PROTO_V4, NULL};

int ac_k8s_proto_version(const char *chosen)
{
	if (chosen && !strcmp(chosen, AC_K8S_PROTO_V5))
		return 5;
	if (chosen && !strcmp(chosen, AC_K8S_PROTO_V4))
		return 4;
	return -1;
}

/* ---- framing ---- */

size_t ac_k8s_frame(unsigned char *out, size_t cap, int channel, const void *data, size_t len)
{
	if (channel < 0 || channel > 255 || len >= cap || (len && !data))
		return 0;
	out[0] = (unsigned char)channel;
	if (len)
		memcpy(out + 1, data, len);
	return len + 1;
}

size_t ac_k8s_frame_resize(unsigned char *out, size_t cap, unsigned width, unsigned height)
{
	/* A terminal's size is 16-bit (struct winsize); the server decodes uint16. */
	if (width > 65535 || height > 65535)
		return 0;
	char json[48];
	int n = snprintf(json, sizeof(json), "{\"Width\":%u,\"Height\":%u}", width, height);
	return ac_k8s_frame(out, cap, AC_K8S_CH_RESIZE, json, (size_t)n);
}

size_t ac_k8s_frame_close(int version, int channel, unsigned char out[2])
{
	if (version < 5 || channel < 0 || channel > 254)
		return 0;
	out[0] = AC_K8S_CH_CLOSE;
	out[1] = (unsigned char)channel;
	return 2;
}

int ac_k8s_frame_decode(const unsigned char *msg, size_t len, int *channel,
			const unsigned char **payload, size_t *plen)
{
	if (len == 0)
		return 0;
	/* 0 and 4 are the client's, but a server may open them with an empty message; they
	 * are the caller's to ignore. Nothing else exists. */
	if (msg[0] > AC_K8S_CH_RESIZE)
		return -1;
	*channel = msg[0];
	*payload = msg + 1;
	*plen = len - 1;
	return 1;
}

/* ---- status ---- */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* "N" with 1-3 digits, 0-255. */
static int exit_code_of(const char *s)
{
	if (!s || !*s || strlen(s) > 3)
		return -1;
	int v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
	}
	return v <= 255 ? v : -1;
}

int ac_k8s_exec_status(const void *data, size_t len, int *exit_code, ac_error_t **err)
{
	*exit_code = -1;
	if (len > AC_K8S_STATUS_MAX)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the exec status from the cluster is too large (%zu bytes)",
				    len);
	json_error_t jerr;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the exec status from the cluster is not a JSON object");
	}
	const char *status = jstr(j, "status");
	const char *reason = jstr(j, "reason");
	const char *msg = jstr(j, "message");
	int rc = -1;
	if (status && !strcmp(status, "Success")) {
		*exit_code = 0;
		rc = 0;
	} else if (status && !strcmp(status, "Failure") && reason &&
		   !strcmp(reason, "NonZeroExitCode")) {
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(json_object_get(j, "details"), "causes"), i, c)
		{
			const char *r = jstr(c, "reason");
			int code = exit_code_of(jstr(c, "message"));
			if (r && !strcmp(r, "ExitCode") && code >= 0) {
				*exit_code = code;
				rc = 0;
				break;
			}
		}
		if (rc < 0)
			ac_error_set(err, AC_ERR_BACKEND, 0,
				     "the command failed but the cluster gave no exit code: %s",
				     msg ? msg : "(no message)");
	} else {
		/* The runtime's own words: "OCI runtime exec failed: ... exec: \"x\":
		 * executable file not found in $PATH: unknown". */
		ac_error_set(err, AC_ERR_BACKEND, 0, "%s",
			     msg && *msg	 ? msg
			     : reason && *reason ? reason
						 : "the cluster's exec status is not a success");
		if (err && *err && msg) {
			if (strstr(msg, "executable file not found") ||
			    strstr(msg, "no such file or directory"))
				(*err)->exit_code = 127;
			else if (strstr(msg, "permission denied"))
				(*err)->exit_code = 126;
		}
	}
	json_decref(j);
	return rc;
}

/* ---- URLs ---- */

/* A namespace, pod or container name: 1-253 of [a-z0-9.-] (what may stand in a path
 * segment and a query value unescaped). */
static bool k8s_name(const char *s)
{
	size_t n = s ? strnlen(s, 254) : 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return strcmp(s, ".") && strcmp(s, "..");
}

static char *sub_path(const char *ns, const char *pod, const char *container, const char *sub,
		      const char *query, char *const *argv, ac_error_t **err)
{
	if (!k8s_name(ns) || !k8s_name(pod) || (container && !k8s_name(container))) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "invalid namespace, pod or container name ('%s', '%s', '%s')",
			     ns ? ns : "", pod ? pod : "", container ? container : "");
		return NULL;
	}
	size_t cap = 1024;
	for (char *const *a = argv; a && *a; a++)
		cap += 9 + 3 * strlen(*a);
	char *buf = malloc(cap);
	if (!buf) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	int n = snprintf(buf, cap, "/api/v1/namespaces/%s/pods/%s/%s?%s%s%s%s", ns, pod, sub,
			 container ? "container=" : "", container ? container : "",
			 container && *query ? "&" : "", query);
	size_t used = (size_t)n;
	for (char *const *a = argv; a && *a; a++) {
		memcpy(buf + used, "&command=", 10);
		used += 9;
		if (!ac_remote_query_escape(*a, buf, cap, &used)) {
			free(buf);
			ac_error_set(err, AC_ERR_INTERNAL, 0, "the exec URL does not fit");
			return NULL;
		}
	}
	return buf;
}

char *ac_k8s_exec_path(const char *ns, const char *pod, const char *container, char *const *argv,
		       bool in, bool tty, ac_error_t **err)
{
	if (!argv || !argv[0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	char q[96];
	snprintf(q, sizeof(q), "stdin=%s&stdout=true&stderr=%s&tty=%s", in ? "true" : "false",
		 tty ? "false" : "true", tty ? "true" : "false");
	return sub_path(ns, pod, container, "exec", q, argv, err);
}

char *ac_k8s_attach_path(const char *ns, const char *pod, const char *container, bool in, bool tty,
			 ac_error_t **err)
{
	char q[96];
	snprintf(q, sizeof(q), "stdin=%s&stdout=true&stderr=%s&tty=%s", in ? "true" : "false",
		 tty ? "false" : "true", tty ? "true" : "false");
	return sub_path(ns, pod, container, "attach", q, NULL, err);
}

char *ac_k8s_log_path(const char *ns, const char *pod, const char *container, bool follow,
		      ac_error_t **err)
{
	char *p = sub_path(ns, pod, container, "log", follow ? "follow=true" : "", NULL, err);
	size_t n = p ? strlen(p) : 0;
	if (n && p[n - 1] == '?') /* neither container nor follow */
		p[n - 1] = 0;
	return p;
}
