/* Files of a Nomad sandbox (ops.files). Two routes:
 *
 *   - Reads and lists of a path the allocation file system API sees (fs route): with the
 *     docker, podman and exec drivers the task sees the allocation directory's "alloc" as
 *     /alloc, its own "sandbox/local" as /local and "sandbox/secrets" as /secrets (Nomad's
 *     allocation file system); a READ below /alloc or /local is /v1/client/fs/cat and a
 *     LIST below any of the three /v1/client/fs/ls (Nomad refuses cat in the secrets
 *     directory, so a READ there takes the tar route). No exec, no tar, no shell in the
 *     image needed. A token without read-fs (403) falls back to the tar route, which needs
 *     alloc-exec instead.
 *   - Everything else (writes, trees, deletes, paths outside those directories, raw_exec
 *     whose task sees the host's paths): the shared tar file operations
 *     (src/backends/tarfiles.c) over the allocation exec stream through the tar-over-exec
 *     transport the Kubernetes backend shares (src/backends/tarexec.c): `tar -xf - -C DIR` with the tar as stdin, `tar -cf -` with the
 *     tar as stdout, stat and delete as sh's test, rm and rmdir.
 *
 * Symbolic links on the fs route. Nomad's agent resolves the path on its own host: it
 * refuses a path whose resolved form leaves the allocation directory, and follows links
 * that stay inside it. That is not the task's view (an absolute link means the container's
 * root to the task, the Nomad host's to the agent; a relative link that crosses from
 * /local to /alloc lands elsewhere), and the agent's check-then-open can be raced by a
 * sandbox that swaps a link in between. So the fs route takes a path only when Nomad's own
 * listing of each parent (lstat: a link shows as a link) shows every component below the
 * mapped directory as a real directory and the last as what the operation needs; any
 * symbolic link on the way sends the operation to the tar route, where the task resolves
 * it in its own view. For this host the fs route is safe whatever the sandbox does: what
 * it returns goes into a buffer capped at AC_FILES_READ_MAX (the size is checked on the
 * listing before anything is read) or into a JSON listing, and nothing on this host is
 * created or opened by a name from the sandbox (COPY_OUT always takes the tar route, whose
 * extraction places every entry itself). What remains is Nomad's race, bounded by its own
 * escape check; a token with read-fs reaches the same with `nomad alloc fs`.
 *
 * What the task sends on the tar route is untrusted (its tar, its stat answers):
 * tarfiles.c places every entry below the host destination itself; every exec has a
 * host-side deadline and a kill handle (the exec wrapper's), stdout is capped by the
 * operation's limit and stderr to a few KiB.
 *
 * A stopped sandbox has no allocation, so no files: AC_ERR_NOT_RUNNING. The sandbox's lock
 * is released once its allocation is found running: stop and remove need not wait for a
 * transfer (it then fails). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/store.h"
#include "base/json.h"
#include "base/util.h"
#include "backends/nomad/internal.h"
#include "backends/tarfiles.h"

/* ---- the pure half: which paths the fs endpoints see, and their answers ---- */

/* The task's directories that are the allocation directory's (see the head comment). */
static const struct {
	const char *task, *alloc;
} fs_roots[] = {
    {"alloc", "alloc"},
    {"local", AC_NM_TASK "/local"},
    {"secrets", AC_NM_TASK "/secrets"},
};

int ac_nm_fs_path(const char *driver, const char *path, char *out, size_t cap, size_t *root_len)
{
	if (!driver ||
	    (strcmp(driver, "docker") && strcmp(driver, "podman") && strcmp(driver, "exec")))
		return 0;
	char clean[4096];
	if (!path || path[0] != '/' || ac_tarfiles_name(path, clean, sizeof(clean)) < 0)
		return 0;
	size_t first = strcspn(clean, "/");
	for (size_t i = 0; i < AC_ARRAY_SIZE(fs_roots); i++) {
		if (strlen(fs_roots[i].task) != first ||
		    strncmp(clean, fs_roots[i].task, first) != 0)
			continue;
		int n = snprintf(out, cap, "%s%s", fs_roots[i].alloc, clean + first);
		if (n < 0 || (size_t)n >= cap)
			return 0;
		if (root_len)
			*root_len = strlen(fs_roots[i].alloc);
		return 1;
	}
	return 0;
}

int ac_nm_fs_mode(const char *fm, char *type, size_t tcap, unsigned *mode)
{
	size_t len = fm ? strlen(fm) : 0;
	if (len < 10)
		return -1;
	const char *perm = fm + len - 9;
	unsigned m = 0;
	for (int i = 0; i < 9; i++) {
		if (perm[i] == "rwxrwxrwx"[i])
			m |= 1u << (8 - i);
		else if (perm[i] != '-')
			return -1;
	}
	/* The letters before the permissions: Go's io/fs.FileMode flags ("dalTLDpSugct?"),
	 * or one '-' when none is set. */
	const char *t = "file";
	for (const char *c = fm; c < perm; c++) {
		if (!strchr("dalTLDpSugct?-", *c))
			return -1;
		switch (*c) {
		case 'd':
			t = "dir";
			break;
		case 'L':
			t = "symlink";
			break;
		case 'D':
		case 'p':
		case 'S':
		case 'c':
		case '?':
			t = "other";
			break;
		case 'u':
			m |= 04000;
			break;
		case 'g':
			m |= 02000;
			break;
		case 't':
			m |= 01000;
			break;
		default:
			break;
		}
	}
	snprintf(type, tcap, "%s", t);
	*mode = m;
	return 0;
}

int ac_nm_fs_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
		if (o + (plain ? 1 : 3) >= cap)
			return -1;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= cap)
		return -1;
	out[o] = 0;
	return 0;
}

/* A listing entry's name: one component. */
static bool entry_name_ok(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

char *ac_nm_fs_listing(const json_t *ls, ac_error_t **err)
{
	if (!json_is_array(ls)) {
		ac_error_set(err, AC_ERR_BACKEND, 0, "the directory listing is not a JSON array");
		return NULL;
	}
	json_t *arr = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(ls, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "Name"));
		char type[16];
		unsigned mode;
		if (!entry_name_ok(name) ||
		    ac_nm_fs_mode(json_string_value(json_object_get(e, "FileMode")), type,
				  sizeof(type), &mode) < 0)
			continue; /* not an entry this host can name */
		json_int_t size = json_integer_value(json_object_get(e, "Size"));
		json_array_append_new(arr,
				      json_pack("{ss ss sI si}", "name", name, "type", type, "size",
						size < 0 ? 0 : size, "mode", (int)mode));
	}
	ac_json_array_sort(arr, by_name);
	char *s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!s)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return s;
}

/* ---- the fs route ---- */

typedef struct nfiles {
	const ac_backend_ctx_t *ctx;
	ac_nm_t *n;
	const char *alloc; /* the running allocation's id */
	const char *name;  /* the sandbox's */
} nfiles_t;

/* GET /v1/client/fs/OP/ALLOC?path=REL: 0 with the answer in resp (to free), 1 when Nomad
 * says there is no such file (404; a cat's 400 or 500 "no such file or directory"), 2
 * when the token may not read the allocation's files (403: the tar route may still run,
 * with alloc-exec), -1 on error (what: for the message). */
static int fs_get(nfiles_t *f, const char *op, const char *rel, const char *what,
		  ac_remote_resp_t *resp, ac_error_t **err)
{
	char enc[3 * 4096 + 1], url[3 * 4096 + 200];
	if (ac_nm_fs_escape(rel, enc, sizeof(enc)) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "path too long");
	snprintf(url, sizeof(url), "/v1/client/fs/%s/%s?path=%s", op, f->alloc, enc);
	long st = ac_nm_call(f->n, "GET", url, NULL, resp, err);
	if (st < 0)
		return -1;
	bool missing =
	    st == 404 || ((st == 400 || st == 500) && resp->body &&
			  memmem(resp->body, resp->len, "no such file or directory", 25));
	if (missing || st == 403) {
		ac_remote_resp_free(resp);
		return missing ? 1 : 2;
	}
	if (st / 100 != 2) {
		ac_nm_http_error(f->n, resp, what, err);
		ac_remote_resp_free(resp);
		return -1;
	}
	return 0;
}

/* The entry `name` of the allocation directory's directory dir, as Nomad lists it
 * (lstat): 1 with its type and size, 0 when there is none (or dir is not there), 2 when
 * the token may not list it, -1 on error. */
static int fs_entry(nfiles_t *f, const char *dir, const char *name, char *type, size_t tcap,
		    json_int_t *size, ac_error_t **err)
{
	ac_remote_resp_t resp;
	int rc = fs_get(f, "ls", dir, "list a directory of the allocation", &resp, err);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	if (!json_is_array(resp.json)) {
		ac_remote_resp_free(&resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the listing of '%s' in allocation %s is not a JSON array",
				    f->n->conf.name, dir, f->alloc);
	}
	int found = 0;
	size_t i;
	json_t *e;
	json_array_foreach(resp.json, i, e)
	{
		const char *en = json_string_value(json_object_get(e, "Name"));
		unsigned mode;
		if (en && !strcmp(en, name) &&
		    ac_nm_fs_mode(json_string_value(json_object_get(e, "FileMode")), type, tcap,
				  &mode) == 0) {
			*size = json_integer_value(json_object_get(e, "Size"));
			found = 1;
			break;
		}
	}
	ac_remote_resp_free(&resp);
	return found;
}

/* Does a READ or LIST through the fs endpoints: 1 done, 0 not theirs (the tar route does
 * it: not a path they see, a symbolic link on the way, or a token without read-fs), -1 on
 * error. */
static int fs_op(nfiles_t *f, const ac_files_req_t *req, ac_error_t **err)
{
	char rel[4096], clean[4096], shown[4100];
	size_t root;
	if ((req->op != AC_FILES_READ && req->op != AC_FILES_LIST) ||
	    !ac_nm_fs_path(f->n->driver, req->path, rel, sizeof(rel), &root) ||
	    ac_tarfiles_name(req->path, clean, sizeof(clean)) < 0)
		return 0;
	snprintf(shown, sizeof(shown), "/%s", clean);
	bool secrets =
	    root == strlen(AC_NM_TASK "/secrets") && !strncmp(rel, AC_NM_TASK "/secrets", root);
	bool list = req->op == AC_FILES_LIST;
	if (!list && (secrets || !rel[root]))
		return 0; /* Nomad reads no secret file; a mapped directory is not a file */
	/* Each component below the mapped directory, from its parent's listing. */
	char type[16] = "dir";
	json_int_t size = 0;
	for (size_t at = root; rel[at];) {
		const char *comp = rel + at + 1;
		size_t clen = strcspn(comp, "/");
		char dir[4096], name[256];
		if (clen >= sizeof(name))
			return 0;
		snprintf(dir, sizeof(dir), "%.*s", (int)at, rel);
		snprintf(name, sizeof(name), "%.*s", (int)clen, comp);
		int ex = fs_entry(f, dir, name, type, sizeof(type), &size, err);
		if (ex < 0 || ex == 2)
			return ex < 0 ? -1 : 0;
		at += 1 + clen;
		if (ex == 1 && !strcmp(type, "symlink"))
			return 0; /* resolved in the task's view by the tar route */
		if (ex == 0 || (rel[at] && strcmp(type, "dir")))
			return list ? ac_error_set(err, AC_ERR_NOT_FOUND, 0,
						   "no directory '%s' in the sandbox", shown)
				    : ac_error_set(err, AC_ERR_NOT_FOUND, 0,
						   "no such file in the sandbox: '%s'", shown);
	}
	ac_remote_resp_t resp;
	if (list) {
		if (strcmp(type, "dir"))
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "no directory '%s' in the sandbox", shown);
		int rc = fs_get(f, "ls", rel, "list a directory of the allocation", &resp, err);
		if (rc == 1)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
					    "no directory '%s' in the sandbox", shown);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		char *s = ac_nm_fs_listing(resp.json, err);
		ac_remote_resp_free(&resp);
		if (!s)
			return -1;
		*req->result = s;
		*req->result_len = strlen(s);
		return 1;
	}
	if (strcmp(type, "file"))
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not a regular file", shown);
	if (size > (json_int_t)AC_FILES_READ_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is larger than %u bytes", shown,
				    AC_FILES_READ_MAX);
	int rc = fs_get(f, "cat", rel, "read a file of the allocation", &resp, err);
	if (rc == 1)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such file in the sandbox: '%s'",
				    shown);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (resp.len > AC_FILES_READ_MAX) { /* it grew since the listing */
		ac_remote_resp_free(&resp);
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is larger than %u bytes", shown,
				    AC_FILES_READ_MAX);
	}
	char *buf = malloc(resp.len + 1);
	if (!buf) {
		ac_remote_resp_free(&resp);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	if (resp.len)
		memcpy(buf, resp.body, resp.len);
	buf[resp.len] = 0;
	*req->result = buf;
	*req->result_len = resp.len;
	ac_remote_resp_free(&resp);
	return 1;
}

/* ---- the tar route: tarexec.c's transport over the allocation exec stream ---- */

static int nm_stream(void *arg, char **argv, int in_fd, int out_fd, int err_fd, int64_t deadline_ms,
		     int cancel_fd, uint64_t out_max, int *code, ac_error_t **err)
{
	nfiles_t *f = arg;
	ac_nm_stream_t s = {.alloc = f->alloc,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .in_fd = in_fd,
			    .out_fd = out_fd,
			    .err_fd = err_fd,
			    .deadline_ms = deadline_ms,
			    .cancel_fd = cancel_fd,
			    .out_max = out_max};
	return ac_nm_exec_stream(f->n, &s, code, err);
}

static void nm_kill(void *arg, const char *id)
{
	nfiles_t *f = arg;
	ac_nm_run_killer(f->n, f->alloc, AC_NM_TASK, id);
}

int ac_nomad_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		   ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	char alloc[64];
	int g = ac_nm_running_alloc(&n, n.job, alloc, sizeof(alloc), err);
	int rc = -1;
	if (g == 1 && strspn(alloc, "0123456789abcdefABCDEF-") != strlen(alloc)) {
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "%s: the allocation id '%s' is not a UUID", n.conf.name, alloc);
	} else if (g == 1) {
		ac_backend_unlock(ctx);
		nfiles_t f = {.ctx = ctx, .n = &n, .alloc = alloc, .name = name};
		rc = fs_op(&f, req, err);
		if (rc == 0) {
			ac_tarexec_t t = {.arg = &f,
					  .name = name,
					  .backend = "nomad",
					  .cancel_fd = ctx ? ctx->cancel_fd : -1,
					  .stream = nm_stream,
					  .kill = nm_kill};
			ac_tarfiles_io_t io;
			ac_tarexec_io(&t, "the task", "the task's tar", &io);
			rc = ac_tarfiles_op(&io, req, err);
		} else if (rc == 1) {
			rc = 0;
		}
	} else if (g == 0) {
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0,
			     "sandbox '%s' is not running: file operations need a running sandbox "
			     "on the nomad backend (a stopped sandbox has no allocation)",
			     name);
	}
	ac_nm_close(&n);
	return rc;
}
