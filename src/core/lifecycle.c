/* The lifecycle operations: extend, gc, policies and their reconciliation, archive and
 * recover, labels, descriptions and resize, each under the sandbox's lock (rules.c decides,
 * the backend acts, the manager keeps the books). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

static int check_selectors(char *const *selectors, const char *what, ac_error_t **err)
{
	char key[AC_LABEL_KEY_MAX + 1];
	const char *v;
	for (char *const *s = selectors; s && *s; s++)
		if (ac_label_parse(*s, key, sizeof(key), &v, err) < 0) {
			if (*what)
				ac_error_prefix(err, "%s", what);
			return -1;
		}
	return 0;
}

/* ------------------------------------------------------------------ state changes */

/* Changes one sandbox's state under its lock. fn returns 0 to save the state (then the
 * event is logged with *details), 1 to leave it (returned as is), < 0 on error. */
typedef int (*state_fn)(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
			json_t **details, ac_error_t **err);

static int with_state(ac_manager_t *m, const char *name, const char *event, state_fn fn, void *arg,
		      ac_error_t **err)
{
	ac_store_t *s = ac_manager_store(m);
	_cleanup_close_ int lock = -1;
	json_t *st = NULL;
	if (ac_manager_lock_and_load(m, name, &lock, &st, err) < 0)
		return -1;
	json_t *details = NULL;
	int rc = -1;
	const ac_backend_t *b = ac_backend_of(st, err);
	if (b) {
		ac_backend_ctx_t ctx = ac_manager_ctx(m);
		ac_lifecycle_merge_activity(m, st);
		rc = fn(m, b, st, b->ops->is_running(&ctx, st, NULL), arg, &details, err);
	}
	if (rc == 0 && ac_store_save(s, st, err) < 0)
		rc = -1;
	if (rc == 0)
		ac_audit_log(m, event, name, steal_ptr(details));
	json_decref(details);
	json_decref(st);
	return rc;
}

/* --- extend --- */

struct extend_arg {
	uint64_t by;
	json_t *out;
};

static int extend_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		     json_t **details, ac_error_t **err)
{
	struct extend_arg *a = arg;
	if (ac_ttl_extend_state(st, a->by, ac_time_now_ms(), err) < 0)
		return -1;
	*details = json_pack("{sI sO sO}", "by_seconds", (json_int_t)a->by, "expires_at",
			     json_object_get(st, "expires_at"), "ttl_seconds",
			     json_object_get(st, "ttl_seconds") ? json_object_get(st, "ttl_seconds")
								: json_null());
	a->out = json_deep_copy(st);
	return 0;
}

int ac_manager_extend(ac_manager_t *m, const char *name, uint64_t by, json_t **out,
		      ac_error_t **err)
{
	if (by == 0 || by > AC_DURATION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the extension must be between 1 second and 100 years");
	struct extend_arg a = {by, NULL};
	int rc = with_state(m, name, "extended", extend_fn, &a, err);
	if (rc == 0 && out)
		*out = steal_ptr(a.out);
	json_decref(a.out);
	return rc;
}

/* --- gc --- */

static bool still_expired(ac_manager_t *m, json_t *st, bool running, void *arg)
{
	return ac_ttl_expired(st, *(int64_t *)arg);
}

int ac_manager_gc(ac_manager_t *m, json_t **removed, ac_error_t **err)
{
	json_t *all = NULL;
	*removed = json_array();
	ac_manager_undo_abandoned(m, *removed);
	if (ac_store_list(ac_manager_store(m), &all, NULL, err) < 0)
		return -1;
	int64_t now = ac_time_now_ms();
	int rc = 0;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		if (!ac_ttl_expired(st, now))
			continue;
		const char *name = ac_state_str(st, "name", "");
		json_t *exp = json_object_get(st, "expires_at");
		ac_error_t *e = NULL;
		int r =
		    ac_manager_remove_if(m, name, still_expired, &now,
					 json_pack("{ss sO}", "by", "gc", "expires_at", exp), &e);
		if (r == 0) {
			json_array_append_new(
			    *removed, json_pack("{ss sO}", "name", name, "expires_at", exp));
			ac_audit_log(m, "gc_removed", name, json_pack("{sO}", "expires_at", exp));
		} else if (r < 0) {
			ac_error_prefix(&e, "cannot remove expired sandbox '%s'", name);
			if (err && !*err)
				*err = steal_ptr(e);
			ac_error_free(e);
			rc = -1;
		}
	}
	json_decref(all);
	return rc;
}

/* --- policy --- */

struct policy_arg {
	const ac_policy_change_t *c;
	json_t *out;
};

static int policy_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		     json_t **details, ac_error_t **err)
{
	struct policy_arg *a = arg;
	json_t *old = json_object_get(st, "lifecycle_policy");
	json_t *pol = !a->c->clear && json_is_object(old) ? json_deep_copy(old) : json_object();
	static const char *keys[] = {"auto_stop_after_seconds", "auto_archive_after_seconds",
				     "auto_delete_after_seconds"};
	const int64_t vals[] = {a->c->auto_stop_after, a->c->auto_archive_after,
				a->c->auto_delete_after};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++) {
		if (vals[i] == 0)
			json_object_del(pol, keys[i]);
		else if (vals[i] > 0)
			json_object_set_new(pol, keys[i], json_integer(vals[i]));
	}
	if (json_object_size(pol) == 0) {
		json_decref(pol);
		json_object_del(st, "lifecycle_policy");
		a->out = json_null();
	} else {
		json_object_set_new(st, "lifecycle_policy", pol);
		a->out = json_deep_copy(pol);
	}
	*details = json_pack("{sO}", "lifecycle_policy", a->out);
	return 0;
}

int ac_manager_set_policy(ac_manager_t *m, const char *name, const ac_policy_change_t *c,
			  json_t **policy, ac_error_t **err)
{
	if (c->auto_stop_after > (int64_t)AC_DURATION_MAX ||
	    c->auto_archive_after > (int64_t)AC_DURATION_MAX ||
	    c->auto_delete_after > (int64_t)AC_DURATION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "durations are limited to 100 years");
	struct policy_arg a = {c, NULL};
	int rc = with_state(m, name, "policy_changed", policy_fn, &a, err);
	if (rc == 0 && policy)
		*policy = steal_ptr(a.out);
	json_decref(a.out);
	return rc;
}

/* --- reconcile --- */

struct decision {
	const char *action;
	int64_t now;
	char reason[160];
	json_t *details; /* of the audit record: gets the reason (borrowed) */
};

/* The same decision, taken again on the state as it is under the lock. */
static bool still_decided(ac_manager_t *m, json_t *st, bool running, void *arg)
{
	struct decision *d = arg;
	ac_lifecycle_merge_activity(m, st);
	const char *a = ac_lifecycle_decide_one(st, running, d->now, d->reason, sizeof(d->reason));
	if (!a || strcmp(a, d->action) != 0)
		return false;
	if (d->details)
		json_object_set_new(d->details, "reason", json_string(d->reason));
	return true;
}

static int archive_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		      json_t **details, ac_error_t **err)
{
	struct decision *d = arg;
	const char *name = ac_state_str(st, "name", "");
	if (!still_decided(m, st, running, d))
		return 1;
	if (running) {
		struct timespec t0;
		ac_audit_clock(&t0);
		ac_backend_ctx_t ctx = ac_manager_ctx(m);
		if (b->ops->stop(&ctx, st, err) < 0)
			return -1;
		ac_audit_log(
		    m, "stopped", name,
		    ac_audit_with_duration(
			json_pack("{ss ss}", "by", "reconcile", "reason", d->reason), &t0));
	}
	char now[32];
	ac_time_format_rfc3339(d->now, now);
	json_object_set_new(st, "archived_at", json_string(now));
	json_object_set_new(st, "archived_reason", json_string(d->reason));
	*details = json_pack("{ss ss}", "by", "reconcile", "reason", d->reason);
	return 0;
}

static int apply_decision(ac_manager_t *m, const char *name, const char *action, int64_t now,
			  char *reason, size_t reasonlen, ac_error_t **err)
{
	struct decision d = {.action = action, .now = now};
	int r;
	if (strcmp(action, "archive") == 0) {
		r = with_state(m, name, "archived", archive_fn, &d, err);
	} else if (strcmp(action, "stop") == 0) {
		/* The re-check puts the reason into the audit details. */
		d.details = json_pack("{ss}", "by", "reconcile");
		r = ac_manager_stop_if(m, name, still_decided, &d, d.details, err);
		r = r == 2 ? 1 : r < 0 ? -1 : 0;
	} else {
		d.details = json_pack("{ss}", "by", "reconcile");
		r = ac_manager_remove_if(m, name, still_decided, &d, d.details, err);
	}
	if (r == 0)
		snprintf(reason, reasonlen, "%s", d.reason);
	return r;
}

int ac_manager_reconcile(ac_manager_t *m, bool dry_run, json_t **decisions, ac_error_t **err)
{
	json_t *all = NULL;
	*decisions = json_array();
	if (ac_manager_list(m, &all, err) < 0)
		return -1;
	size_t n = json_array_size(all);
	bool *running = calloc(n + 1, sizeof(bool));
	if (running == NULL) {
		json_decref(all);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		running[i] =
		    strcmp(ac_state_str(json_array_get(all, i), "status", ""), "running") == 0;
	int64_t now = ac_time_now_ms();
	json_t *planned = NULL;
	int rc = ac_lifecycle_decide(all, running, now, &planned, err);
	free(running);
	json_decref(all);
	if (rc < 0)
		return -1;
	if (dry_run) {
		json_decref(*decisions);
		*decisions = planned;
		return 0;
	}
	size_t i;
	json_t *d;
	json_array_foreach(planned, i, d)
	{
		const char *name = ac_state_str(d, "name", "");
		const char *action = ac_state_str(d, "action", "");
		char reason[160];
		ac_error_t *e = NULL;
		int r = apply_decision(m, name, action, now, reason, sizeof(reason), &e);
		if (r == 0) {
			json_array_append_new(*decisions,
					      json_pack("{ss ss ss}", "name", name, "action",
							action, "reason", reason));
		} else if (r < 0) {
			ac_error_prefix(&e, "cannot %s sandbox '%s'", action, name);
			if (err && !*err)
				*err = steal_ptr(e);
			ac_error_free(e);
			rc = -1;
		}
	}
	json_decref(planned);
	return rc;
}

/* --- recover --- */

static int recover_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		      json_t **details, ac_error_t **err)
{
	const char *at = ac_state_str(st, "archived_at", NULL);
	if (at == NULL)
		return ac_error_set(err, AC_ERR_STATE, 0, "sandbox '%s' is not archived",
				    ac_state_str(st, "name", ""));
	json_t *reason = json_object_get(st, "archived_reason");
	*details = json_pack("{ss sO}", "archived_at", at, "archived_reason",
			     reason ? reason : json_null());
	char now[32];
	ac_time_now_rfc3339(now);
	json_object_set_new(st, "archived_at", json_null());
	json_object_set_new(st, "archived_reason", json_null());
	json_object_set_new(st, "last_activity_at", json_string(now));
	return 0;
}

int ac_manager_recover(ac_manager_t *m, const char *name, ac_error_t **err)
{
	return with_state(m, name, "recovered", recover_fn, NULL, err);
}

/* --- labels and description --- */

struct labels_arg {
	char *const *set, *const *remove;
	json_t *out;
};

static int labels_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		     json_t **details, ac_error_t **err)
{
	struct labels_arg *a = arg;
	json_t *old = json_object_get(st, "labels");
	json_t *labels = json_is_object(old) ? json_deep_copy(old) : json_object();
	json_t *set = json_object(), *removed = json_array();
	for (char *const *s = a->set; s && *s; s++) {
		char key[AC_LABEL_KEY_MAX + 1];
		const char *v;
		ac_label_parse(*s, key, sizeof(key), &v, NULL);
		json_object_set_new(labels, key, json_string(v));
		json_object_set_new(set, key, json_string(v));
	}
	for (char *const *r = a->remove; r && *r; r++) {
		json_object_del(labels, *r);
		json_array_append_new(removed, json_string(*r));
	}
	if (json_object_size(labels) > AC_LABELS_MAX) {
		json_decref(labels);
		json_decref(set);
		json_decref(removed);
		return ac_error_set(err, AC_ERR_INVALID, 0, "a sandbox has at most %d labels",
				    AC_LABELS_MAX);
	}
	a->out = json_deep_copy(labels);
	json_object_set_new(st, "labels", labels);
	*details = json_pack("{so so}", "set", set, "removed", removed);
	return 0;
}

int ac_manager_set_labels(ac_manager_t *m, const char *name, char *const *set, char *const *remove,
			  json_t **labels, ac_error_t **err)
{
	if (check_selectors(set, "", err) < 0)
		return -1;
	size_t nset = 0;
	for (char *const *s = set; s && *s; s++, nset++) {
		const char *eq = strchr(*s, '=');
		for (char *const *t = set; t != s; t++)
			if (strncmp(*t, *s, (size_t)(eq - *s) + 1) == 0)
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "label '%.*s' is given twice", (int)(eq - *s),
						    *s);
		for (char *const *r = remove; r && *r; r++)
			if (strlen(*r) == (size_t)(eq - *s) && strncmp(*r, *s, strlen(*r)) == 0)
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "label '%s' is both set and removed", *r);
	}
	for (char *const *r = remove; r && *r; r++)
		if (!ac_label_key_valid(*r))
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "invalid label key '%.80s': use 1-63 of A-Z a-z 0-9 . _ / -", *r);
	if (nset > AC_LABELS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "a sandbox has at most %d labels",
				    AC_LABELS_MAX);
	struct labels_arg a = {set, remove, NULL};
	int rc = with_state(m, name, "labels_changed", labels_fn, &a, err);
	if (rc == 0 && labels)
		*labels = steal_ptr(a.out);
	json_decref(a.out);
	return rc;
}

/* Valid UTF-8 without control characters other than tab. */
static bool text_valid(const char *s)
{
	for (const char *c = s; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return false;
	return ac_utf8_valid(s, strlen(s));
}

static int describe_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		       json_t **details, ac_error_t **err)
{
	const char *text = arg;
	json_t *v = text && *text ? json_string(text) : json_null();
	json_object_set_new(st, "description", v);
	*details = json_pack("{sO}", "description", v);
	return 0;
}

int ac_manager_describe(ac_manager_t *m, const char *name, const char *text, ac_error_t **err)
{
	if (text && strlen(text) > AC_DESCRIPTION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the description is longer than %d bytes", AC_DESCRIPTION_MAX);
	if (text && !text_valid(text))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the description must be UTF-8 text without control "
				    "characters (tabs are fine)");
	return with_state(m, name, "described", describe_fn, (void *)text, err);
}

int ac_manager_list_labeled(ac_manager_t *m, char *const *selectors, json_t **out, ac_error_t **err)
{
	if (check_selectors(selectors, "--label: ", err) < 0)
		return -1;
	json_t *all = NULL;
	if (ac_manager_list(m, &all, err) < 0)
		return -1;
	json_t *res = json_array();
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st) if (ac_labels_match(st, selectors))
	    json_array_append(res, st);
	json_decref(all);
	*out = res;
	return 0;
}

/* --- resize --- */

struct resize_arg {
	const ac_resize_t *r;
	bool applied;
};

static json_t *limits_of(const json_t *st)
{
	return json_pack("{sI sf sI}", "memory_mb", (json_int_t)ac_state_int(st, "memory_mb", 0),
			 "cpus", ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1)),
			 "pids_limit", (json_int_t)ac_state_int(st, "pids_limit", 0));
}

static int resize_fn(ac_manager_t *m, const ac_backend_t *b, json_t *st, bool running, void *arg,
		     json_t **details, ac_error_t **err)
{
	struct resize_arg *a = arg;
	const ac_resize_t *r = a->r;
	json_t *old = json_deep_copy(st);
	if (r->memory_set)
		json_object_set_new(st, "memory_mb", json_integer((json_int_t)r->memory_mb));
	if (r->cpus_set) {
		json_object_set_new(st, "cpus", json_real(r->cpus));
		json_object_set_new(st, "vcpus", json_integer((json_int_t)ceil(r->cpus)));
	}
	if (r->pids_set)
		json_object_set_new(st, "pids_limit", json_integer((json_int_t)r->pids));
	if (running) {
		if (ac_backend_require(b, AC_CAP_RESIZE, "resizing a running sandbox", err) < 0) {
			json_decref(old);
			return -1;
		}
		ac_backend_ctx_t ctx = ac_manager_ctx(m);
		if (b->ops->resize(&ctx, st, err) < 0) {
			/* Whatever was applied before the failure goes back. */
			b->ops->resize(&ctx, old, NULL);
			json_decref(old);
			return -1;
		}
		a->applied = true;
	}
	*details = json_pack("{so so sb}", "limits", limits_of(st), "previous", limits_of(old),
			     "applied", running);
	json_decref(old);
	return 0;
}

int ac_manager_resize(ac_manager_t *m, const char *name, const ac_resize_t *r, bool *applied,
		      ac_error_t **err)
{
	if (!r->memory_set && !r->cpus_set && !r->pids_set)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "nothing to change: give --memory, --cpus or --pids");
	if (r->memory_set && (r->memory_mb < AC_MEMORY_MIN_MB || r->memory_mb > AC_MEMORY_MAX_MB))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "memory must be between %llu and %llu MB", AC_MEMORY_MIN_MB,
				    AC_MEMORY_MAX_MB);
	if (r->cpus_set && !(r->cpus >= AC_CPUS_MIN && r->cpus <= AC_CPUS_MAX))
		return ac_error_set(err, AC_ERR_INVALID, 0, "cpus must be between 0.01 and 1024");
	if (r->pids_set && (r->pids < AC_PIDS_MIN || r->pids > AC_PIDS_MAX))
		return ac_error_set(err, AC_ERR_INVALID, 0, "pids must be between %llu and %llu",
				    AC_PIDS_MIN, AC_PIDS_MAX);
	struct resize_arg a = {r, false};
	int rc = with_state(m, name, "resized", resize_fn, &a, err);
	if (applied)
		*applied = a.applied;
	return rc;
}
