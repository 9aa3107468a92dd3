/* Files over HTTP: GET|PUT|DELETE /sandboxes/{name}/files/{path} and the batch write. The
 * manager resolves every path inside the sandbox's root (src/core/files.c); here a path is
 * only normalised and the kernel's pseudo file systems are kept out of reach. Each
 * operation carries the client's socket as its cancel descriptor: a client that leaves
 * takes its file operation with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/files.h"
#include "base/json.h"
#include "base/base64.h"
#include "base/utf8.h"
#include "base/util.h"
#include "api/handlers.h"
#include "api/request.h"

#define BATCH_FILES_MAX 1024
#define PATH_MAX_LEN	4096

/* "/" + the path's segments without empty ones; ".." refused; /proc, /sys and /dev refused
 * (they are the kernel's, not the sandbox's files, and a server reading them through a
 * sandbox's root would see its own process). NULL after a 400. */
static char *sandbox_path(const char *raw, ac_api_resp_t *resp)
{
	size_t n = strlen(raw);
	if (!n || n > PATH_MAX_LEN) {
		ac_api_fail(resp, 400, n ? "path is longer than %d bytes" : "path is empty",
			    PATH_MAX_LEN);
		return NULL;
	}
	char *out = calloc(n + 2, 1), *o = out; /* zeroed: the prefix checks below read past "/" */
	if (!out) {
		ac_api_fail(resp, 500, "out of memory");
		return NULL;
	}
	for (const char *p = raw; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		if ((len == 2 && !memcmp(p, "..", 2))) {
			free(out);
			ac_api_fail(resp, 400, "path traversal not allowed: %s", raw);
			return NULL;
		}
		if (!(len == 1 && *p == '.')) {
			*o++ = '/';
			memcpy(o, p, len);
			o += len;
		}
		p = end;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	static const char *const system[] = {"/proc", "/sys", "/dev"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(system); i++) {
		size_t sl = strlen(system[i]);
		if (!strncmp(out, system[i], sl) && (out[sl] == '\0' || out[sl] == '/')) {
			ac_api_fail(resp, 403, "cannot access system path: %s", out);
			free(out);
			return NULL;
		}
	}
	return out;
}

void ac_h_file_get(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	_cleanup_free_ char *path = sandbox_path(req->params[1], resp);
	if (!path)
		return;
	char *data = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	int old = ac_files_set_cancel_fd(req->client_fd);
	int rc = ac_files_read(api->m, req->params[0], path, &data, &len, &e);
	ac_files_set_cancel_fd(old);
	if (rc < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_manager_touch_activity(api->m, req->params[0]);
	json_t *content;
	const char *enc = "utf8";
	if (ac_utf8_valid(data, len)) {
		content = json_stringn_nocheck(data, len);
	} else {
		char *b = ac_base64_encode(data, len);
		content = b ? json_string(b) : NULL;
		free(b);
		enc = "base64";
	}
	free(data);
	if (!content) {
		ac_api_fail(resp, 500, "out of memory");
		return;
	}
	ac_api_ok(
	    resp, 200,
	    json_pack("{so ss sI}", "content", content, "encoding", enc, "size", (json_int_t)len));
}

/* The bytes of content in the given encoding (utf8 or base64); NULL after a 400. */
static unsigned char *decode(json_t *content, const char *enc, size_t *len, ac_api_resp_t *resp)
{
	const char *s = json_string_value(content);
	size_t slen = json_string_length(content);
	if (!enc || !strcmp(enc, "utf8") || !strcmp(enc, "utf-8")) {
		unsigned char *b = malloc(slen + 1);
		if (!b) {
			ac_api_fail(resp, 500, "out of memory");
			return NULL;
		}
		memcpy(b, s, slen);
		*len = slen;
		return b;
	}
	if (strcmp(enc, "base64")) {
		ac_api_fail(resp, 400, "'encoding' must be utf8 or base64");
		return NULL;
	}
	unsigned char *b = NULL;
	if (ac_base64_decode(s, slen, &b, len) < 0) {
		ac_api_fail(resp, 400, "invalid base64 in 'content'");
		return NULL;
	}
	return b;
}

void ac_h_file_put(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"content", "encoding", "mode", NULL};
	_cleanup_free_ char *path = sandbox_path(req->params[1], resp);
	if (!path)
		return;
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	const char *enc = NULL;
	json_t *content = json_object_get(body, "content");
	double mode = 0644;
	bool set;
	unsigned char *data = NULL;
	size_t len = 0;
	ac_error_t *e = NULL;
	if (ac_body_known(body, known, NULL, resp) < 0 ||
	    ac_body_str(body, "encoding", false, 16, &enc, resp) < 0 ||
	    ac_body_num(body, "mode", 0, 07777, true, &mode, &set, resp) < 0)
		goto out;
	if (!json_is_string(content)) {
		ac_api_fail(resp, 400, "'content' is required: a string");
		goto out;
	}
	if (!(data = decode(content, enc, &len, resp)))
		goto out;
	int old = ac_files_set_cancel_fd(req->client_fd);
	int rc = ac_files_write(api->m, req->params[0], path, data, len, (mode_t)mode, &e);
	ac_files_set_cancel_fd(old);
	if (rc < 0) {
		ac_api_fail_error(resp, e);
		goto out;
	}
	ac_manager_touch_activity(api->m, req->params[0]);
	char msg[PATH_MAX_LEN + 64];
	snprintf(msg, sizeof(msg), "Wrote %zu bytes to %s", len, path);
	ac_api_ok(resp, 200, ac_json_text(msg, strlen(msg)));
out:
	free(data);
	json_decref(body);
}

void ac_h_file_delete(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	_cleanup_free_ char *path = sandbox_path(req->params[1], resp);
	if (!path)
		return;
	if (!strcmp(path, "/")) {
		ac_api_fail(resp, 400, "refusing to delete the sandbox's root");
		return;
	}
	const char *r = ac_api_query(req, "recursive");
	bool recursive = r && (!strcmp(r, "true") || !strcmp(r, "1"));
	ac_error_t *e = NULL;
	int old = ac_files_set_cancel_fd(req->client_fd);
	int rc = ac_files_delete(api->m, req->params[0], path, recursive, &e);
	ac_files_set_cancel_fd(old);
	if (rc < 0) {
		ac_api_fail_error(resp, e);
		return;
	}
	ac_manager_touch_activity(api->m, req->params[0]);
	char msg[PATH_MAX_LEN + 16];
	snprintf(msg, sizeof(msg), "Deleted %s", path);
	ac_api_ok(resp, 200, ac_json_text(msg, strlen(msg)));
}

/* {files: {"/path": "text", ...}}: every path is checked before anything is written. */
void ac_h_files_batch(ac_api_t *api, ac_api_req_t *req, ac_api_resp_t *resp)
{
	static const char *const known[] = {"files", NULL};
	json_t *body = ac_body_object(req, resp, true);
	if (!body)
		return;
	json_t *files = json_object_get(body, "files");
	char **paths = NULL;
	size_t n = 0, written = 0;
	if (ac_body_known(body, known, NULL, resp) < 0)
		goto out;
	if (!json_is_object(files) || !json_object_size(files)) {
		ac_api_fail(resp, 400,
			    "'files' must be a non-empty object {\"/path\": \"content\"}");
		goto out;
	}
	n = json_object_size(files);
	if (n > BATCH_FILES_MAX) {
		ac_api_fail(resp, 400, "at most %d files in one request", BATCH_FILES_MAX);
		goto out;
	}
	paths = calloc(n + 1, sizeof(char *));
	if (!paths) {
		ac_api_fail(resp, 500, "out of memory");
		goto out;
	}
	const char *k;
	json_t *v;
	size_t i = 0;
	json_object_foreach(files, k, v)
	{
		if (!json_is_string(v)) {
			ac_api_fail(resp, 400, "'files'.'%s' must be a string", k);
			goto out;
		}
		if (k[0] != '/') {
			ac_api_fail(resp, 400, "%s: sandbox path must be absolute", k);
			goto out;
		}
		if (!(paths[i++] = sandbox_path(k, resp)))
			goto out;
	}
	i = 0;
	int old = ac_files_set_cancel_fd(req->client_fd);
	json_object_foreach(files, k, v)
	{
		ac_error_t *e = NULL;
		if (ac_files_write(api->m, req->params[0], paths[i], json_string_value(v),
				   json_string_length(v), 0644, &e) < 0) {
			ac_files_set_cancel_fd(old);
			ac_error_prefix(&e, "%s (after %zu of %zu files)", paths[i], written, n);
			ac_api_fail_error(resp, e);
			goto out;
		}
		written++;
		i++;
	}
	ac_files_set_cancel_fd(old);
	ac_manager_touch_activity(api->m, req->params[0]);
	ac_api_ok(resp, 200, json_pack("{sI}", "written", (json_int_t)written));
out:
	ac_strv_free(paths);
	json_decref(body);
}
