/* Detached commands (see include/agentcell/detach.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/detach.h"
#include "base/json.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/uuid.h"
#include "core/internal.h"
#include "base/procid.h"

int ac_detach_remove_records(ac_manager_t *m, const char *name, ac_error_t **err)
{
	char execs[1300];
	snprintf(execs, sizeof(execs), "%s/run/%s.exec", ac_manager_home(m), name);
	if (ac_rm_rf_at(AT_FDCWD, execs, err) < 0) {
		ac_error_prefix(err, "cannot delete the sandbox's detached command records");
		return -1;
	}
	return 0;
}

static bool id_valid(const char *id)
{
	if (!id || strlen(id) != AC_DETACH_ID_LEN)
		return false;
	for (const char *c = id; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

/* A command line as text: bytes that are not UTF-8 become '?'. */
static json_t *text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	size_t len = strlen(s);
	char *c = malloc(len + 1);
	if (!c)
		return json_string("?");
	size_t n = ac_utf8_sanitize(s, len, c, len, '?');
	j = json_stringn(c, n);
	free(c);
	return j;
}

void ac_manager_explain_exec_error(ac_manager_t *m, const char *name, ac_error_t *e)
{
	if (!e || e->errnum != EAGAIN || strncmp(e->msg, "cannot start the command", 24) != 0)
		return;
	json_t *st = NULL;
	if (ac_store_load(ac_manager_store(m), name, &st, NULL) < 0)
		return;
	long long pids = ac_state_int(st, "pids_limit", 0);
	json_decref(st);
	char lim[32] = "";
	if (pids > 0)
		snprintf(lim, sizeof(lim), " (%lld)", pids);
	snprintf(e->msg, sizeof(e->msg),
		 "cannot start the command: the sandbox's process limit%s was hit (fork failed "
		 "with EAGAIN); end some of its processes, or raise the limit with 'agentcell "
		 "resize %s --pids N' (or --pids at create)",
		 lim, name);
}

/* Test-only: a pause inside the start's critical section, so that the tests can race a
 * remove against it deterministically. */
static void test_pause(void)
{
	const char *v = getenv("AGENTCELL_TEST_DETACH_PAUSE_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;
	if (ms > 0 && ms <= 10000) {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* The watcher's status record is this long (AC_DETACH_STATUS_SIZE); a host-side record of
 * the backend's may follow it. */
#define STATUS_SIZE 512

/* One fixed-size record at offset 0 of status (the shim rewrites it in place). */
static int write_record(int fd, json_t *st)
{
	char buf[STATUS_SIZE];
	char *j = json_dumps(st, JSON_COMPACT);
	size_t n = j ? strlen(j) : 0;
	if (!j || n >= sizeof(buf) - 1) {
		free(j);
		errno = j ? E2BIG : ENOMEM;
		return -1;
	}
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, j, n);
	buf[sizeof(buf) - 1] = '\n';
	free(j);
	ssize_t w = pwrite(fd, buf, sizeof(buf), 0);
	if (w == (ssize_t)sizeof(buf))
		return 0;
	if (w >= 0)
		errno = ENOSPC;
	return -1;
}

/* Makes the record of a new command: status first (a "starting" record naming this
 * process, so a record whose starter was killed can be told), the logs, meta.json last
 * (a directory without it is an unfinished record: never listed, swept by gc). */
static int make_record(const char *dir, const char *id, const char *name, const char *uuid,
		       const ac_cmd_t *cmd, long long sup, const char *now, int fds[3],
		       ac_error_t **err)
{
	char path[1500];
	static const char *files[3] = {"stdout", "stderr", "status"};
	for (int i = 2; i >= 0; i--) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fds[i] < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create %s", path);
	}
	json_t *rec = json_pack("{ss sI sI}", "state", "starting", "starter", (json_int_t)getpid(),
				"starter_start", (json_int_t)ac_proc_starttime(getpid()));
	int rc = rec ? write_record(fds[2], rec) : -1;
	json_decref(rec);
	if (rc < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot write the command's record in %s", dir);
	json_t *argv = json_array();
	for (char **a = cmd->argv; a && *a; a++)
		json_array_append_new(argv, text(*a));
	json_t *meta =
	    json_pack("{ss ss ss so sI ss}", "id", id, "sandbox", name, "sandbox_uuid", uuid,
		      "command", argv, "supervisor_pid", (json_int_t)sup, "created_at", now);
	char *mj = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	rc = mj ? ac_write_file_atomic_at(AT_FDCWD, path, mj, strlen(mj), 0600, err)
		: ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	free(mj);
	return rc;
}

int ac_detach_start(ac_manager_t *m, const char *name, const ac_cmd_t *cmd,
		    char id[AC_DETACH_ID_LEN + 1], ac_error_t **err)
{
	if (!ac_name_valid(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'", name);
	if (cmd->tty || cmd->stdin_open)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "a detached command has no terminal and no input (-t, -i)");
	/* The sandbox's lock is held from the check that it runs until the command is handed
	 * over (bounded by the backend's start deadline): a remove then comes wholly before
	 * (no record is made) or wholly after (it deletes the record), and a new sandbox of
	 * the same name never gets a command meant for this one. */
	_cleanup_close_ int lock = -1;
	json_t *info = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &info, err) < 0)
		return -1;
	json_decref(info);
	info = NULL;
	if (ac_manager_info(m, name, &info, err) < 0)
		return -1;
	long long sup = ac_state_int(info, "pid", 0);
	bool running = strcmp(ac_state_str(info, "status", ""), "running") == 0;
	const ac_backend_t *b = ac_backend_of(info, err);
	if (!b || ac_backend_require(b, AC_CAP_DETACH, "exec --detach", err) < 0) {
		json_decref(info);
		return -1;
	}
	if (!running) {
		json_decref(info);
		return ac_error_set(
		    err, AC_ERR_NOT_RUNNING, 0,
		    "sandbox '%s' is not running (start it with: agentcell start %s)", name, name);
	}
	test_pause();
	char uuid[37], dir[1400];
	ac_uuid_v7(uuid);
	snprintf(id, AC_DETACH_ID_LEN + 1, "%.4s%.8s", uuid + 19, uuid + 24);
	snprintf(dir, sizeof(dir), "%s/run/%s.exec/%s", ac_manager_home(m), name, id);
	if (ac_mkdir_p_at(AT_FDCWD, dir, 0700, err) < 0) {
		json_decref(info);
		return -1;
	}
	char now[32];
	ac_time_now_rfc3339(now);
	int fds[3] = {-1, -1, -1};
	int rc =
	    make_record(dir, id, name, ac_state_str(info, "uuid", ""), cmd, sup, now, fds, err);
	if (rc < 0) {
		/* A full or read-only home: nothing is started, nothing half-made is left. */
		ac_rm_rf_at(AT_FDCWD, dir, NULL);
		goto out;
	}
	long pid, shim;
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	rc = b->ops->exec_detach(&ctx, info, cmd, fds[0], fds[1], fds[2], &pid, &shim, err);
	if (rc < 0 && err)
		ac_manager_explain_exec_error(m, name, *err);
	ac_manager_touch_activity(m, name);
	json_t *cmdv = json_array();
	for (char **a = cmd->argv; a && *a && json_array_size(cmdv) < 64; a++)
		json_array_append_new(cmdv, text(*a));
	ac_audit_log(m, "exec_detached", name,
		     json_pack("{ss so ss}", "id", id, "command", cmdv, "result",
			       rc == 0 ? "started" : "failed"));
	if (rc < 0) {
		/* Recorded, so that exec-list tells what happened. */
		json_t *st = json_pack("{ss ss ss}", "state", "failed", "error",
				       (err && *err) ? (*err)->msg : "failed", "finished_at", now);
		if (st)
			(void)write_record(fds[2], st);
		json_decref(st);
	}
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	json_decref(info);
	return rc;
}

/* Writes an end the watcher could not write (it was killed or stopped). */
static void record_end(const char *dir, json_t *st)
{
	char path[1500];
	snprintf(path, sizeof(path), "%s/status", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		(void)write_record(fd, st);
		close(fd);
	}
}

/* Whether the agentcell process that made a "starting" record is still at it. */
static bool starter_alive(const json_t *st)
{
	long long pid = ac_state_int(st, "starter", 0);
	if (pid <= 1)
		return true; /* an older record: no way to tell */
	return ac_proc_starttime((pid_t)pid) ==
	       (unsigned long long)ac_state_int(st, "starter_start", 0);
}

/* Reads the status record; the shim rewrites it in place, so a torn read is retried. */
static json_t *read_status(const char *dir)
{
	char path[1500];
	snprintf(path, sizeof(path), "%s/status", dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		if (ac_read_file_at(AT_FDCWD, path, 64 * 1024, &buf, &len, NULL) < 0)
			return NULL;
		if (len == 0)
			return json_pack("{ss}", "state", "starting");
		json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
		if (json_is_object(j)) {
			/* The backend's host-side record follows the watcher's, if any. */
			json_t *h = len > STATUS_SIZE
					? json_loadb(buf + STATUS_SIZE, len - STATUS_SIZE,
						     JSON_DISABLE_EOF_CHECK, NULL)
					: NULL;
			if (json_is_object(json_object_get(h, "host")))
				json_object_set(j, "host", json_object_get(h, "host"));
			json_decref(h);
			return j;
		}
		json_decref(j);
		usleep(1000);
	}
	return NULL;
}

/* A running record whose watcher (the shim, inside the sandbox) the sandbox's code killed
 * would say running for ever: ask the backend what is really there. */
static void watcher_check(ac_manager_t *m, const json_t *info, const char *dir, json_t **st)
{
	const ac_backend_t *b = ac_backend_of(info, NULL);
	if (!b || !b->ops->detached_state || strcmp(ac_state_str(*st, "state", ""), "running") != 0)
		return;
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	int alive = b->ops->detached_state(&ctx, info, *st);
	if (alive == 2)
		return;
	/* The watcher may have recorded the end just before it went. */
	json_t *again = read_status(dir);
	bool ended = again && strcmp(ac_state_str(again, "state", "running"), "running") != 0;
	if (ended) {
		json_object_update(*st, again);
		json_object_set_new(*st, "state", json_incref(json_object_get(again, "state")));
	}
	json_decref(again);
	if (ended)
		return;
	json_object_set_new(*st, "shim_lost", json_true());
	if (alive == 1) {
		json_object_set_new(*st, "error",
				    json_string("its shim was killed inside the sandbox: the "
						"command runs on, its output is no longer logged "
						"and its exit status will not be recorded"));
	} else {
		json_object_set_new(*st, "state", json_string("unknown"));
		json_object_set_new(*st, "error",
				    json_string("its shim was killed inside the sandbox; the "
						"command has ended, its exit status is unknown"));
	}
}

/* Whether meta (a record's) belongs to the sandbox now called by its name: a record made
 * for an earlier sandbox of that name is stale (uuid NULL: looked up). Records from before
 * uuids were kept in them count as current. */
static bool record_current(ac_manager_t *m, const json_t *meta, const char *uuid)
{
	const char *mine = ac_state_str(meta, "sandbox_uuid", NULL);
	if (!mine)
		return true;
	json_t *st = NULL;
	if (!uuid) {
		if (ac_store_load(ac_manager_store(m), ac_state_str(meta, "sandbox", ""), &st,
				  NULL) < 0)
			return false;
		uuid = ac_state_str(st, "uuid", "");
	}
	bool same = strcmp(mine, uuid) == 0;
	json_decref(st);
	return same;
}

static json_t *describe(ac_manager_t *m, const char *dir, const char *uuid)
{
	char path[1500];
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0)
		return NULL;
	json_t *meta = json_loads(buf, 0, NULL);
	if (!json_is_object(meta) || !record_current(m, meta, uuid)) {
		json_decref(meta);
		return NULL;
	}
	json_t *st = read_status(dir);
	if (!st)
		st = json_pack("{ss}", "state", "unknown");
	json_object_update_missing(st, meta);
	if (!strcmp(ac_state_str(st, "state", ""), "starting") && !starter_alive(st)) {
		json_object_set_new(st, "state", json_string("failed"));
		json_object_set_new(
		    st, "error",
		    json_string("the agentcell process starting it was killed before "
				"the command started"));
	}
	json_object_del(st, "starter");
	json_object_del(st, "starter_start");
	if (!strcmp(ac_state_str(st, "state", ""), "running") ||
	    !strcmp(ac_state_str(st, "state", ""), "starting")) {
		/* Its shim lives in the sandbox: if that sandbox stopped (or restarted), the
		 * command died with it and nobody wrote its end. */
		json_t *info = NULL;
		const char *name = ac_state_str(meta, "sandbox", "");
		/* A backend with no host pid (kubernetes) recorded 0: that it runs is then
		 * what counts (its detached_state tells a restarted pod's). */
		bool alive =
		    ac_manager_info(m, name, &info, NULL) == 0 &&
		    !strcmp(ac_state_str(info, "status", ""), "running") &&
		    ac_state_int(info, "pid", 0) == ac_state_int(meta, "supervisor_pid", -2);
		if (!alive) {
			json_object_set_new(st, "state", json_string("failed"));
			json_object_set_new(
			    st, "error", json_string("the sandbox stopped while the command ran"));
		} else {
			watcher_check(m, info, dir, &st);
		}
		json_decref(info);
	}
	/* Only now: the backend's detached_state tells a live watcher by these. */
	json_object_del(st, "shim");
	json_object_del(st, "shim_start");
	json_object_del(st, "host");
	json_decref(meta);
	return st;
}

static int compare_started(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return strcmp(ac_state_str(x, "created_at", ""), ac_state_str(y, "created_at", ""));
}

static void collect(ac_manager_t *m, const char *name, const char *uuid, json_t *out)
{
	char dir[1400];
	snprintf(dir, sizeof(dir), "%s/run/%s.exec", ac_manager_home(m), name);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!id_valid(de->d_name))
			continue;
		char sub[1500];
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		json_t *st = describe(m, sub, uuid);
		if (st)
			json_array_append_new(out, st);
	}
	closedir(d);
}

int ac_detach_list(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err)
{
	json_t *arr = json_array();
	if (name) {
		if (!ac_name_valid(name))
			return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'",
					    name);
		json_t *sb = NULL;
		if (ac_store_load(ac_manager_store(m), name, &sb, err) < 0) {
			json_decref(arr);
			return -1;
		}
		collect(m, name, ac_state_str(sb, "uuid", ""), arr);
		json_decref(sb);
	} else {
		json_t *all = NULL;
		if (ac_store_list(ac_manager_store(m), &all, NULL, err) < 0) {
			json_decref(arr);
			return -1;
		}
		size_t i;
		json_t *s;
		json_array_foreach(all, i, s)
		    collect(m, ac_state_str(s, "name", ""), ac_state_str(s, "uuid", ""), arr);
		json_decref(all);
	}
	ac_json_array_sort(arr, compare_started);
	*out = arr;
	return 0;
}

/* The directory of id, found under run/<sandbox>.exec/. */
static int find(ac_manager_t *m, const char *id, char *dir, size_t len, ac_error_t **err)
{
	if (!id_valid(id))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid command id '%s': 12 hex digits", id ? id : "");
	char runs[1300];
	snprintf(runs, sizeof(runs), "%s/run", ac_manager_home(m));
	DIR *d = opendir(runs);
	struct dirent *de;
	int rc = ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such detached command: '%s'", id);
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".exec") != 0)
			continue;
		snprintf(dir, len, "%s/%s/%s", runs, de->d_name, id);
		char mp[1600];
		snprintf(mp, sizeof(mp), "%s/meta.json", dir);
		_cleanup_free_ char *buf = NULL;
		size_t blen;
		if (ac_read_file_at(AT_FDCWD, mp, 1 << 20, &buf, &blen, NULL) < 0)
			continue;
		json_t *meta = json_loads(buf, 0, NULL);
		bool current = json_is_object(meta) && record_current(m, meta, NULL);
		json_decref(meta);
		if (current) {
			if (err) {
				ac_error_free(*err);
				*err = NULL;
			}
			rc = 0;
			break;
		}
	}
	if (d)
		closedir(d);
	return rc;
}

int ac_detach_status(ac_manager_t *m, const char *id, json_t **out, ac_error_t **err)
{
	char dir[1500];
	if (find(m, id, dir, sizeof(dir), err) < 0)
		return -1;
	json_t *st = describe(m, dir, NULL);
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the record of command '%s' is unreadable", id);
	*out = st;
	return 0;
}

int ac_detach_log_path(ac_manager_t *m, const char *id, bool stderr_log, char **path,
		       ac_error_t **err)
{
	char dir[1500];
	if (find(m, id, dir, sizeof(dir), err) < 0)
		return -1;
	if (asprintf(path, "%s/%s", dir, stderr_log ? "stderr" : "stdout") < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return 0;
}

int ac_detach_read_log(ac_manager_t *m, const char *id, bool stderr_log, json_t **out,
		       ac_error_t **err)
{
	_cleanup_free_ char *path = NULL;
	if (ac_detach_log_path(m, id, stderr_log, &path, err) < 0)
		return -1;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot open the command's log");
		*out = json_string("");
		return *out ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	/* The shim keeps each log under AC_DETACH_LOG_CAP (8 MiB); a little slack for its
	 * dropped-bytes note. */
	const size_t cap = (8u << 20) + 4096;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	ssize_t n = ac_read_all(fd, buf, cap);
	if (n < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read the command's log");
	*out = ac_json_text(buf, (size_t)n);
	return *out ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

json_t *ac_detach_agentkernel_view(json_t *st)
{
	const char *state = ac_state_str(st, "state", "failed");
	const char *status = !strcmp(state, "running") || !strcmp(state, "starting") ? "running"
			     : !strcmp(state, "completed")			     ? "completed"
										     : "failed";
	json_object_set_new(st, "status", json_string(status));
	if (!json_object_get(st, "exit_code"))
		json_object_set_new(st, "exit_code", json_null());
	return st;
}

int ac_detach_kill(ac_manager_t *m, const char *id, ac_error_t **err)
{
	char dir[1500];
	if (find(m, id, dir, sizeof(dir), err) < 0)
		return -1;
	json_t *st = describe(m, dir, NULL);
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the record of command '%s' is unreadable", id);
	json_t *raw = read_status(dir);
	long long shim = ac_state_int(raw, "shim", 0);
	bool running = !strcmp(ac_state_str(st, "state", ""), "running");
	json_t *sb = NULL;
	if (running && shim > 1 &&
	    ac_store_load(ac_manager_store(m), ac_state_str(st, "sandbox", ""), &sb, err) < 0) {
		json_decref(raw);
		json_decref(st);
		return -1;
	}
	json_decref(st);
	if (!running || shim <= 1) {
		json_decref(raw);
		return ac_error_set(err, AC_ERR_STATE, 0, "command '%s' is not running", id);
	}
	const ac_backend_t *b = ac_backend_of(sb, err);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	int krc = b && ac_backend_require(b, AC_CAP_DETACH, "exec --detach", err) == 0
		      ? b->ops->kill_detached(&ctx, sb, raw, err)
		      : -1;
	json_decref(sb);
	if (krc < 0) {
		json_decref(raw);
		return -1;
	}
	if (krc == 1) {
		/* Killed from the host: its watcher was gone or stopped and records nothing. */
		char now[32];
		ac_time_now_rfc3339(now);
		json_t *end = json_pack(
		    "{ss sO* ss* ss si si sb sb ss}", "state", "failed", "pid",
		    json_object_get(raw, "pid"), "started_at",
		    ac_state_str(raw, "started_at", NULL), "finished_at", now, "exit_code", 128 + 9,
		    "signal", 9, "timed_out", 0, "killed", 1, "error",
		    "killed from the host: its shim had been stopped or killed inside the sandbox");
		if (end)
			record_end(dir, end);
		json_decref(end);
		json_decref(raw);
		return 0;
	}
	json_decref(raw);
	/* The shim records the end itself; wait briefly so that a status right after
	 * says so. */
	for (int i = 0; i < 200; i++) {
		json_t *now = read_status(dir);
		bool still = now && !strcmp(ac_state_str(now, "state", ""), "running");
		json_decref(now);
		if (!still)
			break;
		usleep(10000);
	}
	return 0;
}

/* --- leftovers (gc, doctor) --- */

#define RECORD_GRACE_SECONDS 60

static bool older_than(const char *path, int secs)
{
	struct stat sb;
	return lstat(path, &sb) == 0 && time(NULL) - sb.st_mtime >= secs;
}

/* Why the record in dir is a leftover, or NULL: made for an earlier sandbox of the name
 * (or one that is gone), never finished by a starter that was killed, or unreadable. */
static const char *record_leftover(ac_manager_t *m, const char *dir, const char *name,
				   const char *uuid)
{
	char path[1600];
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0) {
		/* Being made right now under the sandbox's lock, or its maker was killed. */
		return older_than(dir, RECORD_GRACE_SECONDS) ? "an unfinished record (no meta.json)"
							     : NULL;
	}
	json_t *meta = json_loads(buf, 0, NULL);
	const char *why = NULL;
	if (!json_is_object(meta))
		why = "an unreadable record";
	else if (!uuid)
		why = "its sandbox does not exist";
	else if (!record_current(m, meta, uuid))
		why = "made for an earlier sandbox of this name";
	json_decref(meta);
	if (why)
		return why;
	json_t *st = read_status(dir);
	if (!st)
		return older_than(dir, RECORD_GRACE_SECONDS) ? "its status is unreadable" : NULL;
	if (!strcmp(ac_state_str(st, "state", ""), "starting") && !starter_alive(st))
		why = "its start was killed before the command started";
	json_decref(st);
	return why;
}

int ac_detach_sweep(ac_manager_t *m, bool remove, json_t *found)
{
	char runs[1300];
	snprintf(runs, sizeof(runs), "%s/run", ac_manager_home(m));
	DIR *d = opendir(runs);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char name[64];
		if (!ac_name_from_entry(de->d_name, ".exec", name))
			continue;
		json_t *sb = NULL;
		const char *uuid = NULL;
		if (ac_store_load(ac_manager_store(m), name, &sb, NULL) == 0)
			uuid = ac_state_str(sb, "uuid", "");
		char execs[1400];
		snprintf(execs, sizeof(execs), "%s/%s", runs, de->d_name);
		DIR *e = opendir(execs);
		struct dirent *re;
		while (e && (re = readdir(e))) {
			if (!id_valid(re->d_name))
				continue;
			char dir[1500];
			snprintf(dir, sizeof(dir), "%s/%s", execs, re->d_name);
			const char *why = record_leftover(m, dir, name, uuid);
			if (!why || (remove && ac_rm_rf_at(AT_FDCWD, dir, NULL) < 0))
				continue;
			n++;
			json_array_append_new(found, json_pack("{ss ss ss}", "kind",
							       "detached command record", "path",
							       dir, "why", why));
		}
		if (e)
			closedir(e);
		/* Empty and of no sandbox: gone too (a new record's mkdir recreates it). */
		if (remove && !uuid)
			rmdir(execs);
		json_decref(sb);
	}
	closedir(d);
	return n;
}
