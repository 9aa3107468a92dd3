/* The sandbox manager (see include/agentcell/manager.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "agentcell/backend.h"
#include "agentcell/files.h"
#include "agentcell/manager.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"
#include "core/internal.h"
#include "base/procid.h"

void ac_manager_allow_mount_cwd(ac_manager_t *m)
{
	m->allow_mount_cwd = true;
}

int ac_manager_restrict_host(ac_manager_t *m, char *const *image_roots, ac_error_t **err)
{
	size_t n = 0;
	while (image_roots && image_roots[n])
		n++;
	char **roots = calloc(n + 1, sizeof(char *));
	if (!roots)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char real[PATH_MAX];
		struct stat st;
		if (!realpath(image_roots[i], real) || stat(real, &st) < 0 ||
		    !S_ISDIR(st.st_mode) || !strcmp(real, "/")) {
			ac_strv_free(roots);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "image root '%s' must be an existing directory other "
					    "than /",
					    image_roots[i]);
		}
		if (!(roots[i] = strdup(real))) {
			ac_strv_free(roots);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
	}
	ac_strv_free(m->image_roots);
	m->image_roots = roots;
	m->restricted = true;
	return 0;
}

int ac_manager_open(const char *home, ac_manager_t **out, ac_error_t **err)
{
	ac_manager_t *m = calloc(1, sizeof(*m));
	if (!m)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (ac_store_open(home, &m->store, err) < 0) {
		free(m);
		return -1;
	}
	if (strlen(ac_store_home(m->store)) > 1024) {
		ac_manager_free(m);
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "AGENTCELL_HOME is longer than 1024 bytes");
	}
	*out = m;
	return 0;
}

void ac_manager_free(ac_manager_t *m)
{
	if (!m)
		return;
	ac_store_free(m->store);
	ac_strv_free(m->image_roots);
	free(m);
}

ac_store_t *ac_manager_store(ac_manager_t *m)
{
	return m->store;
}
const char *ac_manager_home(ac_manager_t *m)
{
	return ac_store_home(m->store);
}

static __thread int start_cancel_fd;

ac_backend_ctx_t ac_manager_ctx(ac_manager_t *m)
{
	return (ac_backend_ctx_t){
	    .home = ac_store_home(m->store), .store = m->store, .cancel_fd = start_cancel_fd};
}

json_t *ac_manager_probe(ac_manager_t *m, const ac_backend_t *b)
{
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	return b->ops->probe ? b->ops->probe(&ctx) : NULL;
}

static const ac_backend_t *backend_of(const json_t *state, ac_error_t **err)
{
	return ac_backend_of(state, err);
}

/* What the audit log says about a new sandbox: its settings, never environment values. */
static json_t *created_details(const json_t *st)
{
	static const char *keys[] = {"image",	    "profile",	  "memory_mb",	      "cpus",
				     "pids_limit",  "read_only",  "mount_cwd",	      "labels",
				     "ttl_seconds", "expires_at", "lifecycle_policy", "disk_mb"};
	json_t *d = json_object();
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		if (v && !json_is_null(v))
			json_object_set(d, keys[i], v);
	}
	json_t *keys_only = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(st, "env"), i, e)
	{
		const char *kv = json_string_value(e);
		const char *eq = kv ? strchr(kv, '=') : NULL;
		if (eq)
			json_array_append_new(keys_only, json_stringn(kv, (size_t)(eq - kv)));
	}
	json_object_set_new(d, "env_keys", keys_only);
	return d;
}

/* --file HOST:PATH entries, in order. */
static int copy_files(ac_manager_t *m, const char *name, char **files, ac_error_t **err)
{
	for (char **f = files; f && *f; f++) {
		_cleanup_free_ char *host = strdup(*f);
		char *colon = host ? strrchr(host, ':') : NULL;
		if (!colon)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		*colon = 0;
		if (ac_files_copy_in(m, name, host, colon + 1, err) < 0) {
			ac_error_prefix(err, "--file '%s'", *f);
			return -1;
		}
	}
	return 0;
}

int ac_manager_create(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o, json_t **out,
		      ac_error_t **err)
{
	json_t *st = NULL;
	if (ac_manager_build_state(m, name, o, &st, err) < 0)
		return -1;
	if (ac_store_exists(m->store, name)) {
		json_decref(st);
		return ac_error_set(err, AC_ERR_EXISTS, 0, "sandbox '%s' already exists", name);
	}
	const ac_backend_t *b = backend_of(st, err);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	if (!b || b->ops->create(&ctx, st, err) < 0) {
		json_decref(st);
		return -1;
	}
	char now[32];
	ac_time_now_rfc3339(now);
	json_object_set_new(st, "last_activity_at", json_string(now));
	if (o->creating_mark) {
		char boot[37] = "";
		ac_boot_id(boot);
		json_object_set_new(st, "creating",
				    json_pack("{si sI ss}", "pid", (int)getpid(), "starttime",
					      (json_int_t)ac_proc_starttime(getpid()), "boot_id",
					      boot));
	}
	if (o->pool) {
		/* The serving process that owns it: a later serve removes the sandboxes of
		 * one that is gone (ac_pool_sweep). */
		char boot[37] = "";
		ac_boot_id(boot);
		json_object_set_new(st, "pool", json_true());
		json_object_set_new(st, "pool_owner",
				    json_pack("{si sI ss}", "pid", (int)getpid(), "starttime",
					      (json_int_t)ac_proc_starttime(getpid()), "boot_id",
					      boot));
	}
	/* A mark left by an earlier sandbox of this name must not count for this one. */
	ac_lifecycle_forget_activity(m, name);
	int rc = ac_store_create(m->store, st, err);
	/* Lost the name (another create took it since the check above): take back only
	 * what this call reserved; the winner's files, records and logs are not ours. */
	if (rc < 0 && b->ops->uncreate)
		b->ops->uncreate(&ctx, st);
	else if (rc == 0)
		ac_audit_log(m, "created", name, created_details(st));
	/* --file: copied into the (stopped) sandbox; a failure undoes the create. */
	if (rc == 0 && copy_files(m, name, o->files, err) < 0) {
		ac_manager_remove_created(m, name, ac_state_str(st, "uuid", ""), NULL);
		rc = -1;
	}
	if (rc < 0 || !out)
		json_decref(st);
	else
		*out = st;
	return rc;
}

const char *ac_manager_status(ac_manager_t *m, const json_t *state)
{
	if (ac_state_str(state, "archived_at", NULL))
		return "archived";
	const ac_backend_t *b = backend_of(state, NULL);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	return b && b->ops->is_running(&ctx, state, NULL) ? "running" : "stopped";
}

/* The init script runs at every start, as root in the sandbox's default directory. A
 * failure stops the sandbox and fails the start with the script's exit code and the end
 * of its stderr. */
static int run_init_script(ac_manager_t *m, const ac_backend_t *b, const json_t *st,
			   ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	char *argv[] = {"sh", "-c", (char *)ac_state_str(st, "init_script", ""), NULL};
	ac_cmd_t cmd = {.argv = argv};
	_cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int errfd = memfd_create("init-stderr", MFD_CLOEXEC);
	if (null < 0 || errfd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot prepare the init script");
	int fds[3] = {null, null, errfd};
	ac_result_t res = {0};
	ac_error_t *e = NULL;
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	int rc = b->ops->exec(&ctx, name, st, &cmd, fds, &res, &e);
	if (rc == 0 && res.exit_code == 0)
		return 0;
	char tail[600] = "";
	off_t size = lseek(errfd, 0, SEEK_END);
	off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
	ssize_t n = pread(errfd, tail, sizeof(tail) - 1, from);
	tail[n > 0 ? n : 0] = 0;
	for (char *c = tail; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	size_t tl = strlen(tail);
	while (tl && tail[tl - 1] == ' ')
		tail[--tl] = 0;
	b->ops->stop(&ctx, st, NULL);
	ac_audit_log(m, "init_script_failed", name,
		     json_pack("{si ss}", "exit_code", rc == 0 ? res.exit_code : -1, "error",
			       rc == 0 ? "" : (e ? e->msg : "")));
	if (rc < 0) {
		ac_error_set(err, AC_ERR_BACKEND, 0, "the init script of '%s' could not run: %s",
			     name, e ? e->msg : "unknown error");
		ac_error_free(e);
		return -1;
	}
	ac_error_set(err, AC_ERR_BACKEND, 0, "the init script of '%s' failed with exit code %d%s%s",
		     name, res.exit_code, tail[0] ? ": " : "", tail);
	if (err && *err)
		(*err)->exit_code = res.exit_code;
	return -1;
}

/* The prologue of every lifecycle operation: a valid, existing name (no lock file is
 * made for one that does not exist), its lock, its state. On failure nothing is held. */
int ac_manager_lock_and_load(ac_manager_t *m, const char *name, int *lock, json_t **st,
			     ac_error_t **err)
{
	*lock = -1;
	*st = NULL;
	if (!ac_name_valid(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'", name);
	if (!ac_store_exists(m->store, name))
		return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'", name);
	*lock = ac_store_lock_sandbox(m->store, name, err);
	if (*lock < 0)
		return -1;
	if (ac_store_load(m->store, name, st, err) < 0) {
		/* Removed between the check and the lock: the lock file just made (or met) must
		 * not outlive the name; unlinked while held, as remove does. */
		if (!ac_store_exists(m->store, name))
			ac_store_unlink_sandbox_lock(m->store, name);
		close(*lock);
		*lock = -1;
		return -1;
	}
	return 0;
}

int ac_manager_set_cancel_fd(int fd)
{
	int old = start_cancel_fd;
	start_cancel_fd = fd > 0 ? fd : 0;
	return old;
}

int ac_manager_cancel_fd(void)
{
	return start_cancel_fd;
}

int ac_manager_start(ac_manager_t *m, const char *name, ac_error_t **err)
{
	_cleanup_close_ int lock = -1;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0)
		return -1;
	int rc = -1;
	const ac_backend_t *b = backend_of(st, err);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	if (!b)
		goto out;
	if (ac_state_str(st, "archived_at", NULL)) {
		rc = ac_error_set(err, AC_ERR_STATE, 0,
				  "sandbox '%s' is archived; run 'agentcell recover %s' first",
				  name, name);
		goto out;
	}
	if (b->ops->is_running(&ctx, st, NULL)) {
		rc = 1;
		goto out;
	}
	/* Whatever a dead supervisor left (cgroup, socket) goes first. */
	b->ops->stop(&ctx, st, NULL);
	struct timespec t0;
	ac_audit_clock(&t0);
	ac_error_t *se = NULL;
	rc = b->ops->start(&ctx, st, &se);
	if (rc == 0 && ac_state_str(st, "init_script", NULL) && run_init_script(m, b, st, &se) < 0)
		rc = -1;
	if (rc == 0) {
		char now[32];
		ac_time_now_rfc3339(now);
		json_object_set_new(st, "last_activity_at", json_string(now));
		json_object_del(st, "creating"); /* the create is complete */
		ac_store_save(m->store, st, NULL);
		ac_audit_log(m, "started", name, ac_audit_with_duration(NULL, &t0));
	} else {
		ac_audit_log(m, "error", name,
			     json_pack("{ss ss}", "operation", "start", "error",
				       se ? se->msg : "unknown error"));
		if (err && !*err)
			*err = se;
		else
			ac_error_free(se);
	}
out:
	json_decref(st);
	return rc;
}

int ac_manager_stop_if(ac_manager_t *m, const char *name, ac_state_pred_t pred, void *arg,
		       json_t *details, ac_error_t **err)
{
	_cleanup_close_ int lock = -1;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0) {
		json_decref(details);
		return -1;
	}
	int rc = -1;
	const ac_backend_t *b = backend_of(st, err);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	if (b) {
		bool was = b->ops->is_running(&ctx, st, NULL);
		struct timespec t0;
		ac_audit_clock(&t0);
		if (pred && !pred(m, st, was, arg)) {
			rc = 2;
		} else {
			rc = b->ops->stop(&ctx, st, err);
			if (rc == 0 && was)
				ac_audit_log(m, "stopped", name,
					     ac_audit_with_duration(steal_ptr(details), &t0));
			if (rc == 0 && !was)
				rc = 1;
		}
	}
	json_decref(details);
	json_decref(st);
	return rc;
}

int ac_manager_stop(ac_manager_t *m, const char *name, ac_error_t **err)
{
	return ac_manager_stop_if(m, name, NULL, NULL, NULL, err);
}

int ac_manager_remove_if(ac_manager_t *m, const char *name, ac_state_pred_t pred, void *arg,
			 json_t *details, ac_error_t **err)
{
	_cleanup_close_ int lock = -1;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0) {
		json_decref(details);
		return -1;
	}
	int rc = -1;
	struct timespec t0;
	ac_audit_clock(&t0);
	const ac_backend_t *b = backend_of(st, err);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	if (b && pred && !pred(m, st, b->ops->is_running(&ctx, st, NULL), arg)) {
		json_decref(details);
		json_decref(st);
		return 1;
	}
	if (b && b->ops->stop(&ctx, st, err) == 0 && b->ops->destroy(&ctx, st, err) == 0 &&
	    ac_detach_remove_records(m, name, err) == 0)
		rc = ac_store_remove(m->store, name, err);
	if (rc == 0) {
		ac_store_unlink_sandbox_lock(m->store, name);
		ac_lifecycle_forget_activity(m, name);
		ac_audit_log(m, "removed", name, ac_audit_with_duration(steal_ptr(details), &t0));
	}
	json_decref(details);
	json_decref(st);
	return rc;
}

static bool same_uuid(ac_manager_t *m, json_t *st, bool running, void *uuid)
{
	(void)m;
	(void)running;
	return strcmp(ac_state_str(st, "uuid", ""), uuid) == 0;
}

int ac_manager_remove_created(ac_manager_t *m, const char *name, const char *uuid, ac_error_t **err)
{
	if (!uuid || !*uuid)
		return 1;
	return ac_manager_remove_if(m, name, same_uuid, (void *)uuid, NULL, err);
}

int ac_manager_remove(ac_manager_t *m, const char *name, ac_error_t **err)
{
	return ac_manager_remove_if(m, name, NULL, NULL, NULL, err);
}

/* Whether the process named by a state's "creating" mark is gone (same pid, start time
 * and boot: no pid reuse fools it). */
static bool creator_gone(const json_t *st)
{
	json_t *mark = json_object_get(st, "creating");
	if (!json_is_object(mark))
		return false;
	char boot[37] = "";
	ac_boot_id(boot);
	json_int_t pid = json_integer_value(json_object_get(mark, "pid"));
	json_int_t start = json_integer_value(json_object_get(mark, "starttime"));
	return pid <= 0 || strcmp(ac_state_str(mark, "boot_id", ""), boot) != 0 ||
	       (json_int_t)ac_proc_starttime((pid_t)pid) != start;
}

static bool abandoned_create(ac_manager_t *m, json_t *st, bool running, void *uuid)
{
	(void)m;
	(void)running;
	return strcmp(ac_state_str(st, "uuid", ""), uuid) == 0 && creator_gone(st);
}

int ac_manager_undo_abandoned(ac_manager_t *m, json_t *removed)
{
	json_t *all = NULL;
	if (ac_store_list(m->store, &all, NULL, NULL) < 0)
		return 0;
	int n = 0;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		if (!creator_gone(st))
			continue;
		const char *name = ac_state_str(st, "name", "");
		const char *uuid = ac_state_str(st, "uuid", "");
		/* Checked again under the sandbox's lock: a start that completed the
		 * create since (and dropped the mark) keeps it. */
		if (!*uuid ||
		    ac_manager_remove_if(m, name, abandoned_create, (void *)uuid,
					 json_pack("{ss}", "by", "undo of an abandoned create"),
					 NULL) != 0)
			continue;
		n++;
		if (removed)
			json_array_append_new(removed,
					      json_pack("{ss ss ss}", "name", name, "uuid", uuid,
							"reason", "abandoned create"));
	}
	json_decref(all);
	return n;
}

static void add_status(ac_manager_t *m, json_t *st)
{
	long pid = 0;
	const ac_backend_t *b = backend_of(st, NULL);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	bool running = b && b->ops->is_running(&ctx, st, &pid);
	/* A create whose front end promised "started or nothing" and has not finished:
	 * "creating" while its process lives, "abandoned" (removed by the next serve or
	 * gc) once it is gone. */
	bool marked = json_is_object(json_object_get(st, "creating"));
	const char *status = ac_state_str(st, "archived_at", NULL) ? "archived"
			     : running				   ? "running"
			     : marked && creator_gone(st)	   ? "abandoned"
			     : marked				   ? "creating"
								   : "stopped";
	json_object_set_new(st, "status", json_string(status));
	ac_lifecycle_merge_activity(m, st);
	if (running && pid > 0)
		json_object_set_new(st, "pid", json_integer(pid));
}

static int list_states(ac_manager_t *m, bool pool, json_t **out, ac_error_t **err);

int ac_manager_list(ac_manager_t *m, json_t **out, ac_error_t **err)
{
	return list_states(m, false, out, err);
}

int ac_manager_list_all(ac_manager_t *m, json_t **out, ac_error_t **err)
{
	return list_states(m, true, out, err);
}

static int list_states(ac_manager_t *m, bool pool, json_t **out, ac_error_t **err)
{
	/* Leftovers of runs whose caller was killed: swept here, never on a hot path. */
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	size_t nb;
	const ac_backend_t *bs = ac_backends(&nb);
	for (size_t k = 0; k < nb; k++)
		if (bs[k].ops->gc)
			bs[k].ops->gc(&ctx);
	json_t *all = NULL;
	if (ac_store_list(m->store, &all, NULL, err) < 0)
		return -1;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		/* The warm pool's sandboxes are serve's, not the user's (list --all). */
		if (!pool && json_is_true(json_object_get(st, "pool"))) {
			json_array_remove(all, i--);
			continue;
		}
		add_status(m, st);
	}
	*out = all;
	return 0;
}

int ac_manager_info(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err)
{
	if (!ac_name_valid(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'", name);
	json_t *st = NULL;
	if (ac_store_load(m->store, name, &st, err) < 0)
		return -1;
	add_status(m, st);
	*out = st;
	return 0;
}

static void audit_policy_violation(ac_manager_t *m, const char *name, const ac_cmd_t *cmd)
{
	json_t *prog = json_string(cmd->argv[0]);
	ac_audit_log(m, "policy_violation", name,
		     json_pack("{so ss}", "command", prog ? prog : json_string("?"), "rule",
			       "command_policy"));
}

/* What an exec that reached its sandbox leaves: activity (without a state rewrite) and an
 * audit record, also when the command failed in the sandbox or its caller went away. */
static void exec_done(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int rc,
		      const ac_result_t *res, const ac_error_t *e, const struct timespec *t0)
{
	ac_manager_touch_activity(m, name);
	ac_audit_exec(m, name, cmd, rc >= 0 ? res : NULL, rc < 0 && e ? e->msg : NULL, t0);
	if (rc < 0 && e && e->kind == AC_ERR_PERMISSION)
		audit_policy_violation(m, name, cmd);
}

static int pass_error(int rc, ac_error_t *e, ac_error_t **err)
{
	if (err && !*err)
		*err = e;
	else
		ac_error_free(e);
	return rc;
}

int ac_manager_exec(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int fds[3],
		    ac_result_t *res, ac_error_t **err)
{
	if (!ac_name_valid(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid sandbox name '%s'", name);
	ac_error_t *e = NULL;
	struct timespec t0;
	ac_audit_clock(&t0);
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	/* The hot path: backends that find a sandbox by name (the native one: straight to
	 * its supervisor's socket) are tried without reading the state file. */
	size_t nb;
	const ac_backend_t *bs = ac_backends(&nb);
	for (size_t i = 0; i < nb; i++) {
		if (!(bs[i].caps & AC_CAP_EXEC_BY_NAME))
			continue;
		int rc = bs[i].ops->exec(&ctx, name, NULL, cmd, fds, res, &e);
		if (rc < 0 && e && e->kind == AC_ERR_NOT_RUNNING) {
			ac_error_free(e);
			e = NULL;
			continue;
		}
		if (rc < 0)
			ac_manager_explain_exec_error(m, name, e);
		exec_done(m, name, cmd, rc, res, e, &t0);
		return rc < 0 ? pass_error(rc, e, err) : rc;
	}
	/* Not found that way: a stopped sandbox, or one of a backend that needs its state
	 * (only then is the state read). */
	json_t *st = NULL;
	if (ac_store_load(m->store, name, &st, NULL) < 0) {
		if (!ac_store_exists(m->store, name))
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'",
					    name);
	}
	const ac_backend_t *b = st ? backend_of(st, NULL) : NULL;
	int rc = -1;
	if (b && !(b->caps & AC_CAP_EXEC_BY_NAME)) {
		if (cmd->tty && ac_backend_require(b, AC_CAP_TTY, "a terminal (-t)", err) < 0) {
			json_decref(st);
			return -1;
		}
		rc = b->ops->exec(&ctx, name, st, cmd, fds, res, &e);
		if (rc >= 0 || !e || e->kind != AC_ERR_NOT_RUNNING) {
			json_decref(st);
			exec_done(m, name, cmd, rc, res, e, &t0);
			return rc < 0 ? pass_error(rc, e, err) : rc;
		}
		ac_error_free(e);
	}
	json_decref(st);
	return ac_error_set(err, AC_ERR_NOT_RUNNING, 0,
			    "sandbox '%s' is not running (start it with: agentcell start %s)", name,
			    name);
}

static void strv_freep(char ***v)
{
	ac_strv_free(*v);
}

int ac_manager_run(ac_manager_t *m, const ac_sandbox_opts_t *o, const ac_cmd_t *cmd, int fds[3],
		   bool keep, char **kept_name, ac_result_t *res, ac_error_t **err)
{
	char name[64];
	char uuid[37];
	ac_uuid_v7(uuid);
	/* The uuid's random tail: its first characters are a timestamp. */
	snprintf(name, sizeof(name), "run-%.4s%.8s", uuid + 19, uuid + 24);
	if (o->name)
		snprintf(name, sizeof(name), "%s", o->name);
	/* Files and an init script need the sandbox's layers before the command: those runs
	 * go through a persistent sandbox, removed afterwards. */
	bool prepared = (o->files && o->files[0]) || o->init_script;
	/* No command: the image's Entrypoint and Cmd (ac_manager_image_argv). */
	bool no_cmd = !cmd->argv || !cmd->argv[0];
	ac_cmd_t image_cmd = *cmd;
	__attribute__((cleanup(strv_freep))) char **image_argv = NULL;
	if (!keep && !prepared) {
		json_t *st = NULL;
		if (ac_manager_build_state(m, name, o, &st, err) < 0)
			return -1;
		if (no_cmd && ac_manager_image_argv(st, &image_argv, err) < 0) {
			json_decref(st);
			return -1;
		}
		if (no_cmd)
			cmd = &image_cmd;
		image_cmd.argv = image_argv;
		struct timespec t0;
		ac_audit_clock(&t0);
		const ac_backend_t *b = backend_of(st, err);
		ac_backend_ctx_t ctx = ac_manager_ctx(m);
		int rc = b ? b->ops->run(&ctx, st, cmd, fds, res, err) : -1;
		json_decref(st);
		ac_audit_exec(m, name, cmd, rc >= 0 ? res : NULL,
			      rc < 0 ? (err && *err ? (*err)->msg : "failed") : NULL, &t0);
		if (rc < 0 && err && *err && (*err)->kind == AC_ERR_PERMISSION)
			audit_policy_violation(m, name, cmd);
		/* After the command, so it costs the command's start nothing. */
		if (b && b->ops->gc)
			b->ops->gc(&ctx);
		return rc;
	}
	/* A run's files go in once it runs, so that /tmp (a fresh tmpfs at every start) can
	 * receive them too. */
	ac_sandbox_opts_t later = *o;
	later.files = NULL;
	json_t *made = NULL;
	if (ac_manager_create(m, name, &later, &made, err) < 0)
		return -1;
	int argv_rc = no_cmd ? ac_manager_image_argv(made, &image_argv, err) : 0;
	json_decref(made);
	if (no_cmd)
		cmd = &image_cmd;
	image_cmd.argv = image_argv;
	if (argv_rc < 0 || ac_manager_start(m, name, err) < 0 ||
	    copy_files(m, name, o->files, err) < 0) {
		ac_manager_remove(m, name, NULL);
		return -1;
	}
	if (!keep) {
		int rc = ac_manager_exec(m, name, cmd, fds, res, err);
		ac_manager_remove(m, name, NULL);
		return rc;
	}
	*kept_name = strdup(name);
	return ac_manager_exec(m, name, cmd, fds, res, err);
}
