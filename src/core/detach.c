/* Detached commands (see include/agentcell/detach.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/detach.h"
#include "agentcell/json.h"
#include "agentcell/util.h"
#include "core/internal.h"
#include "core/lifecycle.h"

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
	char *c = strdup(s);
	for (char *p = c; p && *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(c ? c : "?");
	free(c);
	return j;
}

int ac_detach_start(ac_manager_t *m, const char *name, const ac_cmd_t *cmd,
		    char id[AC_DETACH_ID_LEN + 1], ac_error_t **err)
{
	if (!ac_name_valid(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'", name);
	if (cmd->tty || cmd->stdin_open)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "a detached command has no terminal and no input (-t, -i)");
	json_t *info = NULL;
	if (ac_manager_info(m, name, &info, err) < 0)
		return -1;
	long long sup = ac_state_int(info, "pid", 0);
	bool running = strcmp(ac_state_str(info, "status", ""), "running") == 0;
	const ac_backend_ops_t *b = ac_manager_backend_of(info, err);
	if (!b) {
		json_decref(info);
		return -1;
	}
	if (!running) {
		json_decref(info);
		return ac_error_set(
		    err, AC_ERR_STATE, 0,
		    "sandbox '%s' is not running (start it with: agentcell start %s)", name, name);
	}
	char uuid[37], dir[1400], path[1500];
	ac_uuid_v7(uuid);
	snprintf(id, AC_DETACH_ID_LEN + 1, "%.4s%.8s", uuid + 19, uuid + 24);
	snprintf(dir, sizeof(dir), "%s/run/%s.exec/%s", ac_manager_home(m), name, id);
	if (ac_mkdir_p_at(AT_FDCWD, dir, 0700, err) < 0) {
		json_decref(info);
		return -1;
	}
	json_t *argv = json_array();
	for (char **a = cmd->argv; a && *a; a++)
		json_array_append_new(argv, text(*a));
	char now[32];
	ac_time_now_rfc3339(now);
	json_t *meta = json_pack("{ss ss so sI ss}", "id", id, "sandbox", name, "command", argv,
				 "supervisor_pid", (json_int_t)sup, "created_at", now);
	char *mj = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	int rc = mj ? ac_write_file_atomic_at(AT_FDCWD, path, mj, strlen(mj), 0600, err)
		    : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	free(mj);
	if (rc < 0) {
		json_decref(info);
		return -1;
	}
	int fds[3] = {-1, -1, -1};
	static const char *files[3] = {"stdout", "stderr", "status"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fds[i] < 0) {
			rc = ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create %s", path);
			goto out;
		}
	}
	long pid, shim;
	rc = b->exec_detach(m, info, cmd, fds[0], fds[1], fds[2], &pid, &shim, err);
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
		char *sj = st ? json_dumps(st, JSON_COMPACT) : NULL;
		if (sj)
			(void)!pwrite(fds[2], sj, strlen(sj), 0);
		free(sj);
		json_decref(st);
	}
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	json_decref(info);
	return rc;
}

/* The watcher's status record is this long (AC_DETACH_STATUS_SIZE); a host-side record of
 * the backend's may follow it. */
#define STATUS_SIZE 512

/* Writes an end the watcher could not write (it was killed or stopped). */
static void record_end(const char *dir, json_t *st)
{
	char path[1500], buf[STATUS_SIZE];
	snprintf(path, sizeof(path), "%s/status", dir);
	char *j = json_dumps(st, JSON_COMPACT);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (j && fd >= 0 && strlen(j) < sizeof(buf) - 1) {
		memset(buf, ' ', sizeof(buf));
		memcpy(buf, j, strlen(j));
		buf[sizeof(buf) - 1] = '\n';
		(void)!pwrite(fd, buf, sizeof(buf), 0);
	}
	if (fd >= 0)
		close(fd);
	free(j);
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
	const ac_backend_ops_t *b = ac_manager_backend_of(info, NULL);
	if (!b || !b->detached_state || strcmp(ac_state_str(*st, "state", ""), "running") != 0)
		return;
	int alive = b->detached_state(m, info, *st);
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

static json_t *describe(ac_manager_t *m, const char *dir)
{
	char path[1500];
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0)
		return NULL;
	json_t *meta = json_loads(buf, 0, NULL);
	if (!json_is_object(meta)) {
		json_decref(meta);
		return NULL;
	}
	json_t *st = read_status(dir);
	if (!st)
		st = json_pack("{ss}", "state", "unknown");
	json_object_update_missing(st, meta);
	json_object_del(st, "shim");
	json_object_del(st, "shim_start");
	if (!strcmp(ac_state_str(st, "state", ""), "running") ||
	    !strcmp(ac_state_str(st, "state", ""), "starting")) {
		/* Its shim lives in the sandbox: if that sandbox stopped (or restarted), the
		 * command died with it and nobody wrote its end. */
		json_t *info = NULL;
		const char *name = ac_state_str(meta, "sandbox", "");
		bool alive =
		    ac_manager_info(m, name, &info, NULL) == 0 &&
		    ac_state_int(info, "pid", -1) == ac_state_int(meta, "supervisor_pid", -2);
		if (!alive) {
			json_object_set_new(st, "state", json_string("failed"));
			json_object_set_new(
			    st, "error", json_string("the sandbox stopped while the command ran"));
		} else {
			watcher_check(m, info, dir, &st);
		}
		json_decref(info);
	}
	json_object_del(st, "host");
	json_decref(meta);
	return st;
}

static int compare_started(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return strcmp(ac_state_str(x, "created_at", ""), ac_state_str(y, "created_at", ""));
}

static void collect(ac_manager_t *m, const char *name, json_t *out)
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
		json_t *st = describe(m, sub);
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
		if (!ac_store_exists(ac_manager_store(m), name)) {
			json_decref(arr);
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'",
					    name);
		}
		collect(m, name, arr);
	} else {
		json_t *all = NULL;
		if (ac_store_list(ac_manager_store(m), &all, NULL, err) < 0) {
			json_decref(arr);
			return -1;
		}
		size_t i;
		json_t *s;
		json_array_foreach(all, i, s) collect(m, ac_state_str(s, "name", ""), arr);
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
		if (access(dir, F_OK) == 0) {
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
	json_t *st = describe(m, dir);
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

int ac_detach_kill(ac_manager_t *m, const char *id, ac_error_t **err)
{
	char dir[1500];
	if (find(m, id, dir, sizeof(dir), err) < 0)
		return -1;
	json_t *st = describe(m, dir);
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
	const ac_backend_ops_t *b = ac_manager_backend_of(sb, err);
	int krc = b ? b->kill_detached(m, sb, raw, err) : -1;
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
