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
 *     (src/backends/tarfiles.c) over the allocation exec stream, as the Kubernetes backend
 *     does over pods/exec: `tar -xf - -C DIR` with the tar as stdin, `tar -cf -` with the
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/store.h"
#include "base/json.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/nomad/internal.h"
#include "backends/tarfiles.h"

/* Every exec of a file operation ends by then, whatever the task does. */
#define FILES_DEADLINE_MS (10 * 60 * 1000)
/* The killer of a command that outlived its deadline, its cap or its caller. */
#define KILL_DEADLINE_MS (30 * 1000)
/* What is kept of a command's stderr (for messages). */
#define ERR_KEEP 4096
/* The get script's answer for a path that does not exist. */
#define GET_MISSING 94

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

/* ---- the tar route: the transport of tarfiles.c over the allocation exec stream ---- */

/* 1: "tar: not found" on stderr and exit 127 when the image has no tar; then the path:
 * "d" a directory (following a last symlink), "f" anything else, "n" nothing. */
static const char stat_script[] =
    "command -v tar >/dev/null 2>&1 || { echo 'tar: not found' >&2; exit 127; }\n"
    "if [ -d \"$1\" ]; then echo d; elif [ -e \"$1\" ] || [ -h \"$1\" ]; then echo f;"
    " else echo n; fi";
/* A tar of entry $2 of directory $1 ("/" "." for the root: its entries, with no /proc and
 * /sys), or 94 when there is none. */
static const char get_script[] =
    "cd -- \"$1\" || exit 94\n"
    "[ -e \"$2\" ] || [ -h \"$2\" ] || exit 94\n"
    "if [ \"$2\" = . ]; then exec tar -cf - --exclude=./proc --exclude=./sys -- .; fi\n"
    "exec tar -cf - -- \"$2\"";
/* The same for a list: $2 and its direct entries only (names through -T, one a line,
 * each starting with $2/ so that none reads as an option). */
static const char list_script[] =
    "cd -- \"$1\" || exit 94\n"
    "[ -e \"$2\" ] || [ -h \"$2\" ] || exit 94\n"
    "{ printf '%s\\n' \"$2\"; for f in \"$2\"/.[!.]* \"$2\"/..?* \"$2\"/*; do\n"
    "  if [ -e \"$f\" ] || [ -h \"$f\" ]; then printf '%s\\n' \"$f\"; fi; done; } |\n"
    "  tar -cf - --no-recursion -T -";
static const char put_script[] = "exec tar -xf - -C \"$1\"";

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A memfd whose writes stop at ERR_KEEP bytes (a task's endless stderr costs nothing). */
static int small_memfd(void)
{
	int fd = memfd_create("agentcell-nomad-files", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (ftruncate(fd, ERR_KEEP) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Its text up to the first NUL, newlines as spaces, trailing space cut. */
static void memfd_text(int fd, char *out, size_t cap)
{
	ssize_t n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = 0;
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	size_t l = strlen(out);
	while (l && out[l - 1] == ' ')
		out[--l] = 0;
}

static int no_tar(const nfiles_t *f, const char *why, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			    "file operations on sandbox '%s' need tar in its image (the nomad "
			    "backend moves files as tar over exec): %s",
			    f->name, why[0] ? why : "tar: not found");
}

/* The killer of the command started with handle id (best effort: the host side has
 * already ended its own stream). */
static void run_killer(nfiles_t *f, const char *id)
{
	char **kargv = ac_execwrap_kill_argv(id, NULL);
	if (!kargv)
		return;
	ac_nm_stream_t s = {.alloc = f->alloc,
			    .task = AC_NM_TASK,
			    .argv = kargv,
			    .in_fd = -1,
			    .out_fd = -1,
			    .err_fd = -1,
			    .deadline_ms = now_ms() + KILL_DEADLINE_MS,
			    .cancel_fd = -1};
	int code;
	ac_nm_exec_stream(f->n, &s, &code, NULL);
	ac_strv_free(kargv);
}

/* argv in the task through the exec wrapper; stdin from in_fd (-1: none), stdout to out_fd
 * (-1: dropped; more than out_max bytes (0: no cap) fails with EFBIG), the start of stderr
 * to msg. 0 with *code, -1 on error (a passed deadline, a cancel and the cap too: the
 * command is then killed). */
static int task_run(nfiles_t *f, char **argv, int in_fd, int out_fd, uint64_t out_max, int *code,
		    char *msg, size_t msglen, ac_error_t **err)
{
	char id[AC_EXECWRAP_ID_MAX + 1];
	ac_uuid_v7(id);
	ac_cmd_t cmd = {.argv = argv};
	char **wargv = ac_execwrap_argv(&cmd, id, NULL, NULL, err);
	if (!wargv)
		return -1;
	_cleanup_close_ int errfd = small_memfd();
	if (errfd < 0) {
		ac_strv_free(wargv);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	}
	*code = -1;
	ac_nm_stream_t s = {.alloc = f->alloc,
			    .task = AC_NM_TASK,
			    .argv = wargv,
			    .in_fd = in_fd,
			    .out_fd = out_fd,
			    .err_fd = errfd,
			    .deadline_ms = now_ms() + FILES_DEADLINE_MS,
			    .cancel_fd = f->ctx ? f->ctx->cancel_fd : -1,
			    .out_max = out_max};
	ac_error_t *e = NULL;
	int rc = ac_nm_exec_stream(f->n, &s, code, &e);
	ac_strv_free(wargv);
	if (rc == 1 || (rc < 0 && e && (e->kind == AC_ERR_STATE || e->errnum == EFBIG)))
		run_killer(f, id);
	if (rc == 1) {
		ac_error_free(e);
		return ac_error_set(err, AC_ERR_BACKEND, ETIMEDOUT,
				    "a file operation on sandbox '%s' took longer than %d s",
				    f->name, FILES_DEADLINE_MS / 1000);
	}
	if (rc < 0) {
		if (err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	memfd_text(errfd, msg, msglen);
	return 0;
}

/* The stat script: 1 (is_dir), 0, -1; tar's absence is its error. */
static int io_stat(void *arg, const char *path, bool *is_dir, ac_error_t **err)
{
	nfiles_t *f = arg;
	char *argv[] = {"sh", "-c", (char *)stat_script, "agentcell-stat", (char *)path, NULL};
	_cleanup_close_ int out = small_memfd();
	if (out < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	char msg[300], ans[8];
	int code;
	if (task_run(f, argv, -1, out, 0, &code, msg, sizeof(msg), err) < 0)
		return -1;
	if (code == 127)
		return no_tar(f, msg, err);
	memfd_text(out, ans, sizeof(ans));
	if (code == 0 && (!strcmp(ans, "d") || !strcmp(ans, "f") || !strcmp(ans, "n"))) {
		*is_dir = ans[0] == 'd';
		return ans[0] != 'n';
	}
	return ac_error_set(err, AC_ERR_BACKEND, 0,
			    "cannot look at '%s' in sandbox '%s' (exit %d): %s", path, f->name,
			    code, msg[0] ? msg : "no answer");
}

static int io_put(void *arg, const char *dir, int fd, ac_error_t **err)
{
	nfiles_t *f = arg;
	bool is_dir = false;
	int ex = io_stat(f, dir, &is_dir, err);
	if (ex <= 0)
		return ex < 0 ? -1 : 1;
	if (!is_dir)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not a directory in the sandbox", dir);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "lseek");
	char *argv[] = {"sh", "-c", (char *)put_script, "agentcell-put", (char *)dir, NULL};
	char msg[300];
	int code;
	if (task_run(f, argv, fd, -1, 0, &code, msg, sizeof(msg), err) < 0)
		return -1;
	if (code == 127)
		return no_tar(f, msg, err);
	if (code != 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "tar in sandbox '%s' could not write into '%s' (exit %d): %s",
				    f->name, dir, code, msg[0] ? msg : "no message");
	return 0;
}

static int io_get(void *arg, const char *path, uint64_t max, bool shallow, int *fd_out,
		  ac_error_t **err)
{
	nfiles_t *f = arg;
	char dir[4096], base[4096];
	if (!strcmp(path, "/")) {
		snprintf(dir, sizeof(dir), "/");
		snprintf(base, sizeof(base), ".");
	} else {
		const char *slash = strrchr(path, '/');
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
		snprintf(base, sizeof(base), "%s", slash + 1);
	}
	_cleanup_close_ int fd = memfd_create("agentcell-tar", MFD_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	char *argv[] = {
	    "sh", "-c", (char *)(shallow ? list_script : get_script), "agentcell-get", dir,
	    base, NULL};
	char msg[300];
	int code;
	if (task_run(f, argv, -1, fd, max, &code, msg, sizeof(msg), err) < 0) {
		if (err && *err && (*err)->errnum == EFBIG) {
			ac_error_free(*err);
			*err = NULL;
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "the tar of '%s' from sandbox '%s' is larger than %llu "
					    "bytes",
					    path, f->name, (unsigned long long)max);
		}
		return -1;
	}
	if (code == 127)
		return no_tar(f, msg, err);
	if (code == GET_MISSING)
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such file in the sandbox: '%s'",
				    path);
	/* GNU tar's 1: a file changed while it was read; the tar is whole. */
	if (code != 0 && !(code == 1 && strstr(msg, "changed as we read it")))
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "tar in sandbox '%s' could not read '%s' (exit %d): %s",
				    f->name, path, code, msg[0] ? msg : "no message");
	if (lseek(fd, 0, SEEK_SET) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "lseek");
	*fd_out = steal_fd(fd);
	return 0;
}

static int io_run(void *arg, char **argv, int *code, char *msg, size_t msglen, ac_error_t **err)
{
	return task_run(arg, argv, -1, -1, 0, code, msg, msglen, err);
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
			ac_tarfiles_io_t io = {.arg = &f,
					       .sender = "the task",
					       .tar_of = "the task's tar",
					       .stat = io_stat,
					       .put = io_put,
					       .get = io_get,
					       .run = io_run};
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
