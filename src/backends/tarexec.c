/* The transport of the tar file operations (tarfiles.h) over a command runner in the
 * sandbox, for the backends that reach a sandbox only by exec (Kubernetes: pods/exec;
 * Nomad: the allocation exec stream), as kubectl cp does it: a tar goes in as the stdin of
 * `tar -xf - -C DIR`, a tar comes out as the stdout of `tar -cf -`; stat and delete are
 * execs too (sh's test, rm, rmdir). The commands are plain POSIX sh and the options GNU tar
 * and busybox tar share.
 *
 * What the sandbox sends is untrusted (its tar, its stat answers): tarfiles.c places every
 * entry below the host destination itself; here every command runs through the exec
 * wrapper (a kill handle), has a host-side deadline, its stdout is capped by the
 * operation's limit and its stderr to a few KiB; after a deadline, a cancel or the cap the
 * backend's killer ends it in the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/tarfiles.h"

/* Every exec of a file operation ends by then, whatever the pod does. */
#define FILES_DEADLINE_MS (10 * 60 * 1000)
/* What is kept of a command's stderr (for messages). */
#define ERR_KEEP 4096
/* The get script's answer for a path that does not exist. */
#define GET_MISSING 94

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

/* A memfd whose writes stop at ERR_KEEP bytes (a sandbox's endless stderr costs nothing). */
static int small_memfd(void)
{
	int fd = memfd_create("agentcell-tarexec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
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

static int no_tar(const ac_tarexec_t *f, const char *why, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			    "file operations on sandbox '%s' need tar in its image (the %s backend "
			    "moves files as tar over exec): %s",
			    f->name, f->backend, why[0] ? why : "tar: not found");
}

int ac_tarexec_run(ac_tarexec_t *f, char **argv, int in_fd, int out_fd, uint64_t out_max, int *code,
		   char *msg, size_t msglen, ac_error_t **err)
{
	char uuid[37], id[AC_EXECWRAP_ID_MAX + 1];
	ac_uuid_v7(uuid);
	snprintf(id, sizeof(id), "%s", uuid);
	ac_cmd_t cmd = {.argv = argv};
	char **wargv = ac_execwrap_argv(&cmd, id, f->run_user, f->user_hint, err);
	if (!wargv)
		return -1;
	_cleanup_close_ int errfd = small_memfd();
	if (errfd < 0) {
		ac_strv_free(wargv);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	}
	*code = -1;
	ac_error_t *e = NULL;
	int rc = f->stream(f->arg, wargv, in_fd, out_fd, errfd, now_ms() + FILES_DEADLINE_MS,
			   f->cancel_fd, out_max, code, &e);
	ac_strv_free(wargv);
	if (rc == 1 || (rc < 0 && e && (e->kind == AC_ERR_STATE || e->errnum == EFBIG)))
		f->kill(f->arg, id);
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
	ac_tarexec_t *f = arg;
	char *argv[] = {"sh", "-c", (char *)stat_script, "agentcell-stat", (char *)path, NULL};
	_cleanup_close_ int out = small_memfd();
	if (out < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "memfd_create");
	char msg[300], ans[8];
	int code;
	if (ac_tarexec_run(f, argv, -1, out, 0, &code, msg, sizeof(msg), err) < 0)
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
	ac_tarexec_t *f = arg;
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
	if (ac_tarexec_run(f, argv, fd, -1, 0, &code, msg, sizeof(msg), err) < 0)
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
	ac_tarexec_t *f = arg;
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
	if (ac_tarexec_run(f, argv, -1, fd, max, &code, msg, sizeof(msg), err) < 0) {
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
	return ac_tarexec_run(arg, argv, -1, -1, 0, code, msg, msglen, err);
}

void ac_tarexec_io(ac_tarexec_t *t, const char *sender, const char *tar_of, ac_tarfiles_io_t *io)
{
	*io = (ac_tarfiles_io_t){.arg = t,
				 .sender = sender,
				 .tar_of = tar_of,
				 .stat = io_stat,
				 .put = io_put,
				 .get = io_get,
				 .run = io_run};
}
