/* Files of a Docker/Podman sandbox: the transport of the shared tar file operations
 * (src/backends/tarfiles.c) over the Engine API's archive endpoint: HEAD (stat), PUT (a tar
 * into a directory) and GET (a tar of a path) /containers/{id}/archive, and the
 * container's own rm for deletes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agentcell/store.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "backends/tarfiles.h"

typedef struct dock {
	const ac_backend_ctx_t *ctx;
	ac_docker_t *d; /* opened at the first call: a bad path fails before the engine */
	const json_t *st;
} dock_t;

static int engine(dock_t *k, ac_error_t **err)
{
	return k->d ? 0 : ac_docker_for_state(k->st, &k->d, err);
}

static int archive_path(const json_t *st, const char *cpath, char *buf, size_t len)
{
	char ref[400], esc[12300];
	const char *id = ac_state_str(st, "container_id", NULL);
	char name[128];
	snprintf(name, sizeof(name), "agentcell-%s", ac_state_str(st, "name", ""));
	if (ac_docker_escape(id ? id : name, ref, sizeof(ref)) < 0 ||
	    ac_docker_escape(cpath, esc, sizeof(esc)) < 0)
		return -1;
	return snprintf(buf, len, "/containers/%s/archive?path=%s", ref, esc) < (int)len ? 0 : -1;
}

/* HEAD: 1 exists (is_dir set), 0 missing, -1 error. */
static int stat_path(ac_docker_t *d, const json_t *st, const char *cpath, bool *is_dir,
		     ac_error_t **err)
{
	char path[12800];
	if (archive_path(st, cpath, path, sizeof(path)) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "path too long");
	ac_docker_resp_t r;
	ac_docker_req_t req = {.method = "HEAD", .path = path};
	if (ac_docker_call(d, &req, &r, err) < 0)
		return -1;
	int rc;
	bool link = false;
	long long size;
	if (r.status == 404)
		rc = 0;
	else if (r.status == 200 &&
		 ac_docker_parse_path_stat(r.path_stat, is_dir, &link, &size) == 0)
		rc = 1;
	else if (r.status == 200)
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "the container engine's stat of '%s' is malformed", cpath);
	else
		rc = ac_docker_fail(&r, "cannot look at the sandbox's files", err);
	ac_docker_resp_free(&r);
	return rc;
}

static int put_tar(ac_docker_t *d, const json_t *st, const char *dir, int fd, long *status,
		   ac_error_t **err)
{
	char path[12800];
	if (archive_path(st, dir, path, sizeof(path)) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "path too long");
	off_t size = lseek(fd, 0, SEEK_END);
	ac_docker_resp_t r;
	ac_docker_req_t req = {
	    .method = "PUT", .path = path, .upload_fd = fd, .upload_len = (uint64_t)size};
	if (ac_docker_call(d, &req, &r, err) < 0)
		return -1;
	*status = r.status;
	int rc = 0;
	if (r.status != 404 && (r.status < 200 || r.status >= 300))
		rc = ac_docker_fail(&r, "the container engine refused the files", err);
	ac_docker_resp_free(&r);
	return rc;
}

static int get_tar(ac_docker_t *d, const json_t *st, const char *cpath, uint64_t max, int *fd_out,
		   ac_error_t **err)
{
	char path[12800];
	if (archive_path(st, cpath, path, sizeof(path)) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "path too long");
	_cleanup_close_ int fd = memfd_create("agentcell-tar", MFD_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	ac_docker_resp_t r;
	ac_docker_req_t req = {
	    .method = "GET", .path = path, .download_fd = fd, .download_max = max};
	if (ac_docker_call(d, &req, &r, err) < 0)
		return -1;
	int rc = 0;
	if (r.status == 404)
		rc = ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such file in the sandbox: '%s'",
				  cpath);
	else if (r.status != 200)
		rc = ac_docker_fail(&r, "cannot read the sandbox's files", err);
	ac_docker_resp_free(&r);
	if (rc < 0)
		return -1;
	lseek(fd, 0, SEEK_SET);
	*fd_out = steal_fd(fd);
	return 0;
}

static int io_stat(void *arg, const char *path, bool *is_dir, ac_error_t **err)
{
	dock_t *k = arg;
	if (engine(k, err) < 0)
		return -1;
	return stat_path(k->d, k->st, path, is_dir, err);
}

/* The endpoint answers 404 when the directory does not exist. */
static int io_put(void *arg, const char *dir, int fd, ac_error_t **err)
{
	dock_t *k = arg;
	if (engine(k, err) < 0)
		return -1;
	long status = 0;
	if (put_tar(k->d, k->st, dir, fd, &status, err) < 0)
		return -1;
	return status == 404 ? 1 : 0;
}

/* A list gets the whole tree too: the endpoint has no depth. */
static int io_get(void *arg, const char *path, uint64_t max, bool shallow, int *fd,
		  ac_error_t **err)
{
	(void)shallow;
	dock_t *k = arg;
	if (engine(k, err) < 0)
		return -1;
	return get_tar(k->d, k->st, path, max, fd, err);
}

/* No archive call deletes: the sandbox's own rm does (it needs to run). */
static int io_run(void *arg, char **argv, int *code, char *msg, size_t msglen, ac_error_t **err)
{
	dock_t *k = arg;
	ac_cmd_t cmd = {.argv = argv};
	_cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int errfd = memfd_create("agentcell-rm", MFD_CLOEXEC);
	if (null < 0 || errfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot prepare the delete");
	int fds[3] = {null, null, errfd};
	ac_result_t res = {0};
	if (ac_docker_exec(k->ctx, ac_state_str(k->st, "name", ""), k->st, &cmd, fds, &res, err) <
	    0) {
		if (err && *err && (*err)->kind == AC_ERR_NOT_RUNNING)
			ac_error_prefix(err,
					"deleting files needs a running sandbox on this backend");
		return -1;
	}
	ssize_t n = pread(errfd, msg, msglen - 1, 0);
	msg[n > 0 ? n : 0] = 0;
	*code = res.exit_code;
	return 0;
}

int ac_docker_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		    ac_error_t **err)
{
	dock_t k = {.ctx = ctx, .st = st};
	ac_tarfiles_io_t io = {.arg = &k,
			       .sender = "the container engine",
			       .tar_of = "the container's tar",
			       .stat = io_stat,
			       .put = io_put,
			       .get = io_get,
			       .run = io_run};
	int rc = ac_tarfiles_op(&io, req, err);
	ac_docker_free(k.d);
	return rc;
}
