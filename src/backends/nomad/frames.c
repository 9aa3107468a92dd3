/* The exec stream's JSON frames (see frames.h). Pure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/nomad/frames.h"
#include "backends/remote/remote.h"
#include "base/base64.h"

/* Longest base64 text of AC_NM_FRAME_DATA_MAX bytes. */
#define B64_MAX (4 * ((AC_NM_FRAME_DATA_MAX + 2) / 3))

static bool alloc_id_ok(const char *s)
{
	size_t n = s ? strnlen(s, 65) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

char *ac_nm_exec_path(const char *alloc, const char *task, char *const *argv, bool tty,
		      const char *ns, const char *region, ac_error_t **err)
{
	if (!alloc_id_ok(alloc)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%.80s' is not an allocation id",
			     alloc ? alloc : "");
		return NULL;
	}
	if (!task || !*task || !argv || !argv[0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no task or no command to run");
		return NULL;
	}
	json_t *cmd = json_array();
	for (char *const *a = argv; cmd && *a; a++) {
		if (json_array_append_new(cmd, json_string(*a)) < 0) {
			json_decref(cmd);
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "the command's word '%.60s' is not valid UTF-8, which Nomad's "
				     "exec needs",
				     *a);
			return NULL;
		}
	}
	char *js = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
	json_decref(cmd);
	const char *parts[] = {task, js, ns, region};
	size_t cap = 128 + strlen(alloc);
	for (size_t i = 0; js && i < 4; i++)
		cap += parts[i] ? 3 * strlen(parts[i]) : 0;
	char *buf = js ? malloc(cap) : NULL;
	if (!buf) {
		free(js);
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	size_t used = (size_t)snprintf(buf, cap, "/v1/client/allocation/%s/exec?task=", alloc);
	bool ok = ac_remote_query_escape(task, buf, cap, &used);
	used += (size_t)snprintf(buf + used, cap - used, "&command=");
	ok = ok && ac_remote_query_escape(js, buf, cap, &used);
	used += (size_t)snprintf(buf + used, cap - used, "&tty=%s", tty ? "true" : "false");
	if (ok && ns && *ns) {
		used += (size_t)snprintf(buf + used, cap - used, "&namespace=");
		ok = ac_remote_query_escape(ns, buf, cap, &used);
	}
	if (ok && region && *region) {
		used += (size_t)snprintf(buf + used, cap - used, "&region=");
		ok = ac_remote_query_escape(region, buf, cap, &used);
	}
	free(js);
	if (!ok) { /* cannot happen: cap counts every byte escaped */
		free(buf);
		ac_error_set(err, AC_ERR_INTERNAL, 0, "the exec URL does not fit");
		return NULL;
	}
	return buf;
}

char *ac_nm_frame_stdin(const void *data, size_t len)
{
	if (len == 0 || len > AC_NM_FRAME_DATA_MAX || !data)
		return NULL;
	char *b64 = ac_base64_encode(data, len);
	if (!b64)
		return NULL;
	size_t n = strlen(b64);
	static const char head[] = "{\"stdin\":{\"data\":\"", tail[] = "\"}}";
	char *out = malloc(sizeof(head) - 1 + n + sizeof(tail));
	if (out) {
		memcpy(out, head, sizeof(head) - 1);
		memcpy(out + sizeof(head) - 1, b64, n);
		memcpy(out + sizeof(head) - 1 + n, tail, sizeof(tail));
	}
	free(b64);
	return out;
}

const char *ac_nm_frame_stdin_close(void)
{
	return "{\"stdin\":{\"close\":true}}";
}

const char *ac_nm_frame_heartbeat(void)
{
	return "{}";
}

size_t ac_nm_frame_tty_size(char *out, size_t cap, unsigned height, unsigned width)
{
	/* The agent reads int32s; 0 would be dropped by its encoder (omitempty). */
	if (!height || !width || height > 65535 || width > 65535)
		return 0;
	int n = snprintf(out, cap, "{\"tty_size\":{\"height\":%u,\"width\":%u}}", height, width);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void ac_nm_frame_clear(ac_nm_frame_t *f)
{
	free(f->data);
	memset(f, 0, sizeof(*f));
}

/* -1 with "WHO: the exec stream sent WHAT: TEXT" (the frame's first 60 bytes). */
static int bad(const char *who, const char *msg, size_t len, const char *what, ac_error_t **err)
{
	char raw[61], shown[256];
	size_t n = len < 60 ? len : 60;
	memcpy(raw, msg, n);
	raw[n] = 0;
	/* A NUL inside cuts the text shown, nothing else. */
	ac_escape_controls(raw, shown, sizeof(shown));
	return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: the exec stream sent %s: %s%s", who, what,
			    shown, len > 60 ? "..." : "");
}

/* An output frame's object: {"data":B64} and/or {"close":true}. */
static const char *output_op(const json_t *op, ac_nm_frame_t *f)
{
	if (!json_is_object(op))
		return "an output frame that is not an object";
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)op, k, v)
	{
		if (!strcmp(k, "data")) {
			if (!json_is_string(v))
				return "output data that is not a string";
			size_t n = json_string_length(v);
			if (n > B64_MAX)
				return "output data larger than 16 MiB";
			if (n && ac_base64_decode(json_string_value(v), n, &f->data, &f->len) < 0)
				return "output data that is not base64";
			if (f->len > AC_NM_FRAME_DATA_MAX)
				return "output data larger than 16 MiB";
		} else if (!strcmp(k, "close")) {
			if (!json_is_boolean(v))
				return "an output close that is not a boolean";
			f->close = json_is_true(v);
		} else {
			return "an output frame with an unknown field";
		}
	}
	return NULL;
}

/* {"exit_code":N,"signal":S,"oom_killed":B}, each optional (0 and false are omitted). */
static const char *exit_result(const json_t *r, ac_nm_frame_t *f)
{
	if (!json_is_object(r))
		return "an exit result that is not an object";
	json_int_t code = 0, sig = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)r, k, v)
	{
		if (!strcmp(k, "exit_code")) {
			if (!json_is_integer(v))
				return "an exit code that is not an integer";
			code = json_integer_value(v);
		} else if (!strcmp(k, "signal")) {
			if (!json_is_integer(v))
				return "a signal that is not an integer";
			sig = json_integer_value(v);
		} else if (!strcmp(k, "oom_killed")) {
			if (!json_is_boolean(v))
				return "an oom_killed that is not a boolean";
			f->oom_killed = json_is_true(v);
		} else {
			return "an exit result with an unknown field";
		}
	}
	if (sig < 0 || sig > 127)
		return "an exit result with a signal out of range";
	if (code == 0 && sig > 0)
		code = 128 + sig; /* a driver that reports the signal alone */
	if (code < 0 || code > 255)
		return "an exit code out of range (0-255)";
	f->exit_code = (int)code;
	f->signal = (int)sig;
	return NULL;
}

int ac_nm_frame_decode(const char *msg, size_t len, const char *who, ac_nm_frame_t *f,
		       ac_error_t **err)
{
	memset(f, 0, sizeof(*f));
	json_error_t jerr;
	json_t *j = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return bad(who, msg, len, "a frame that is not a JSON object", err);
	}
	json_t *out = json_object_get(j, "stdout"), *errs = json_object_get(j, "stderr");
	json_t *exited = json_object_get(j, "exited"), *result = json_object_get(j, "result");
	const char *why = NULL;
	size_t known = (out != NULL) + (errs != NULL) + (exited != NULL) + (result != NULL);
	if (known != json_object_size(j))
		why = "a frame with an unknown field";
	else if (exited && !json_is_boolean(exited))
		why = "an exited field that is not a boolean";
	else if ((out != NULL) + (errs != NULL) + (json_is_true(exited) || result) > 1)
		why = "a frame of two kinds";
	else if (out || errs) {
		f->kind = out ? AC_NM_FRAME_STDOUT : AC_NM_FRAME_STDERR;
		why = output_op(out ? out : errs, f);
	} else if (json_is_true(exited) && result) {
		f->kind = AC_NM_FRAME_EXITED;
		why = exit_result(result, f);
	} else if (json_is_true(exited) || result) {
		why = json_is_true(exited) ? "an exited frame without a result"
					   : "a result without exited";
	}
	/* else {} or {"exited":false}: nothing */
	json_decref(j);
	if (why) {
		ac_nm_frame_clear(f);
		return bad(who, msg, len, why, err);
	}
	return 0;
}

int ac_nm_exec_close_error(const char *who, unsigned code, const char *reason, ac_error_t **err)
{
	if (!reason || !*reason)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the exec stream ended before the command's exit status "
				    "(close code %u)",
				    who, code);
	char shown[512];
	ac_escape_controls(reason, shown, sizeof(shown));
	ac_error_kind_t kind = AC_ERR_BACKEND;
	int exit_code = 0;
	if (strstr(reason, "Permission denied"))
		kind = AC_ERR_PERMISSION; /* Nomad's ACL refusal (structs.ErrPermissionDenied) */
	else if (strstr(reason, "nknown allocation") || strstr(reason, "not running") ||
		 strstr(reason, "not started yet") || strstr(reason, "unknown task name"))
		kind = AC_ERR_NOT_RUNNING;
	else if (strstr(reason, "executable file not found") ||
		 strstr(reason, "no such file or directory"))
		exit_code = 127;
	else if (strstr(reason, "permission denied"))
		exit_code = 126;
	ac_error_set(err, kind, 0, "%s: exec: %s", who, shown);
	if (err && *err && exit_code)
		(*err)->exit_code = exit_code;
	return -1;
}
