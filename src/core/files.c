/* Sandbox files (see include/agentcell/files.h): what every backend shares. The
 * arguments are checked here, the sandbox's lock is taken and its state loaded, the
 * backend's files op does the work (src/backends/native/files.c, the container backends'
 * archive.c), and activity and the audit log are recorded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/files.h"
#include "base/json.h"
#include "base/util.h"
#include "core/internal.h"

/* The calling thread's cancel descriptor (see ac_files_set_cancel_fd). */
static __thread int cancel_fd;

int ac_files_set_cancel_fd(int fd)
{
	int old = cancel_fd;
	cancel_fd = fd > 0 ? fd : 0;
	return old;
}

typedef struct op {
	ac_files_req_t req;
	const char *event; /* audit event */
} op_t;

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

static int run_op(ac_manager_t *m, const char *name, op_t *o, ac_error_t **err)
{
	int lock = -1;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0)
		return -1;
	int rc = -1;
	const ac_backend_t *b = ac_backend_of(st, err);
	if (b && ac_backend_require(b, AC_CAP_FILES, "file operations", err) == 0) {
		ac_backend_ctx_t ctx = ac_manager_ctx(m);
		ctx.cancel_fd = cancel_fd;
		ctx.lock = &lock;
		rc = b->ops->files(&ctx, st, &o->req, err);
	}
	if (lock >= 0)
		close(lock);
	json_decref(st);
	if (rc == 0) {
		ac_manager_touch_activity(m, name);
		ac_audit_log(m, o->event, name,
			     json_pack("{ss}", "path", o->req.path ? o->req.path : ""));
	}
	return rc;
}

int ac_files_copy_in(ac_manager_t *m, const char *name, const char *host_src, const char *path,
		     ac_error_t **err)
{
	op_t o = {.req = {.op = AC_FILES_COPY_IN, .path = path, .host = host_src},
		  .event = "file_copied_in"};
	if (!path || path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0, "the sandbox path must be absolute");
	if (access(host_src, F_OK) < 0)
		return ac_error_set(err, AC_ERR_NOT_FOUND, errno, "no such file on the host: '%s'",
				    host_src);
	return run_op(m, name, &o, err);
}

int ac_files_copy_out(ac_manager_t *m, const char *name, const char *path, const char *host_dst,
		      ac_error_t **err)
{
	op_t o = {.req = {.op = AC_FILES_COPY_OUT, .path = path, .host = host_dst},
		  .event = "file_copied_out"};
	if (!path || path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0, "the sandbox path must be absolute");
	return run_op(m, name, &o, err);
}

int ac_files_read(ac_manager_t *m, const char *name, const char *path, char **data, size_t *len,
		  ac_error_t **err)
{
	op_t o = {.req = {.op = AC_FILES_READ, .path = path, .result = data, .result_len = len},
		  .event = "file_read"};
	return run_op(m, name, &o, err);
}

int ac_files_write(ac_manager_t *m, const char *name, const char *path, const void *data,
		   size_t len, mode_t mode, ac_error_t **err)
{
	op_t o = {
	    .req = {.op = AC_FILES_WRITE, .path = path, .data = data, .len = len, .mode = mode},
	    .event = "file_written"};
	return run_op(m, name, &o, err);
}

int ac_files_delete(ac_manager_t *m, const char *name, const char *path, bool recursive,
		    ac_error_t **err)
{
	op_t o = {.req = {.op = AC_FILES_DELETE, .path = path, .recursive = recursive},
		  .event = "file_deleted"};
	return run_op(m, name, &o, err);
}

int ac_files_mkdir(ac_manager_t *m, const char *name, const char *path, ac_error_t **err)
{
	op_t o = {.req = {.op = AC_FILES_MKDIR, .path = path}, .event = "directory_created"};
	return run_op(m, name, &o, err);
}

int ac_files_list(ac_manager_t *m, const char *name, const char *path, json_t **out,
		  ac_error_t **err)
{
	char *s = NULL;
	size_t len = 0;
	op_t o = {.req = {.op = AC_FILES_LIST, .path = path, .result = &s, .result_len = &len},
		  .event = "directory_listed"};
	if (run_op(m, name, &o, err) < 0)
		return -1;
	json_t *arr = json_loadb(s, len, 0, NULL);
	free(s);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "malformed listing");
	}
	ac_json_array_sort(arr, by_name);
	*out = arr;
	return 0;
}
