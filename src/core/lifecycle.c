/* Lifetime (TTL, extend, gc), lifecycle policies and their reconciliation, archive and
 * recover, labels, descriptions, resize and activity marks. The rules are agentkernel's
 * (VmManager::extend_ttl, reconcile_lifecycle, expired, list_matching_labels). */
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
#include "agentcell/util.h"
#include "core/internal.h"
#include "core/lifecycle.h"

/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write. */
#define AC_TIME_MAX_MS 253402300799999LL

/* ------------------------------------------------------------------ durations */

int ac_duration_parse(const char *s, uint64_t *secs)
{
	if (s == NULL || *s < '0' || *s > '9') {
		errno = EINVAL;
		return -1;
	}
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > AC_DURATION_MAX) {
			errno = ERANGE;
			return -1;
		}
	}
	uint64_t unit = 1;
	if (*p != '\0') {
		switch (*p) {
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		default:
			errno = EINVAL;
			return -1;
		}
		if (p[1] != '\0') {
			errno = EINVAL;
			return -1;
		}
	}
	if (v == 0) {
		errno = EINVAL;
		return -1;
	}
	if (v > AC_DURATION_MAX / unit) {
		errno = ERANGE;
		return -1;
	}
	if (secs)
		*secs = v * unit;
	return 0;
}

void ac_duration_format(uint64_t secs, char buf[32])
{
	if (secs != 0 && secs % 86400 == 0)
		snprintf(buf, 32, "%llud", (unsigned long long)(secs / 86400));
	else if (secs != 0 && secs % 3600 == 0)
		snprintf(buf, 32, "%lluh", (unsigned long long)(secs / 3600));
	else if (secs != 0 && secs % 60 == 0)
		snprintf(buf, 32, "%llum", (unsigned long long)(secs / 60));
	else
		snprintf(buf, 32, "%llus", (unsigned long long)secs);
}

/* ------------------------------------------------------------------ labels */

bool ac_label_key_valid(const char *key)
{
	if (key == NULL)
		return false;
	size_t n = strnlen(key, AC_LABEL_KEY_MAX + 1);
	if (n == 0 || n > AC_LABEL_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

bool ac_label_value_valid(const char *value)
{
	if (value == NULL)
		return false;
	size_t n = strnlen(value, AC_LABEL_VALUE_MAX + 1);
	if (n > AC_LABEL_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
			return false;
	return true;
}

int ac_label_parse(const char *kv, char *key, size_t keylen, const char **value, ac_error_t **err)
{
	const char *eq = kv ? strchr(kv, '=') : NULL;
	if (eq == NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid label '%.300s': expected KEY=VALUE", kv ? kv : "");
	size_t n = (size_t)(eq - kv);
	char k[AC_LABEL_KEY_MAX + 2];
	snprintf(k, sizeof(k), "%.*s", (int)(n < sizeof(k) - 1 ? n : sizeof(k) - 1), kv);
	if (n > AC_LABEL_KEY_MAX || !ac_label_key_valid(k))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid label key '%.80s': use 1-63 of A-Z a-z 0-9 . _ / -",
				    k);
	if (!ac_label_value_valid(eq + 1))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid value of label '%s': use at most 255 printable ASCII "
				    "characters",
				    k);
	snprintf(key, keylen, "%s", k);
	*value = eq + 1;
	return 0;
}

bool ac_labels_match(const json_t *state, char *const *selectors)
{
	const json_t *labels = json_object_get(state, "labels");
	for (char *const *s = selectors; s && *s; s++) {
		const char *eq = strchr(*s, '=');
		if (eq == NULL)
			return false;
		const json_t *v = json_object_getn(labels, *s, (size_t)(eq - *s));
		if (!json_is_string(v) || strcmp(json_string_value(v), eq + 1) != 0)
			return false;
	}
	return true;
}

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

/* ------------------------------------------------------------------ TTL */

static bool state_time(const json_t *st, const char *key, int64_t *ms)
{
	return ac_time_parse_rfc3339(ac_state_str(st, key, NULL), ms) == 0;
}

int ac_ttl_extend_state(json_t *st, uint64_t by, int64_t now_ms, ac_error_t **err)
{
	if (by == 0 || by > AC_DURATION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the extension must be between 1 second and 100 years");
	int64_t base = now_ms, exp;
	if (state_time(st, "expires_at", &exp) && exp > now_ms)
		base = exp;
	int64_t new_exp = base + (int64_t)by * 1000;
	if (new_exp > AC_TIME_MAX_MS)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "the new expiry would be after the year 9999");
	char buf[32];
	ac_time_format_rfc3339(new_exp, buf);
	json_object_set_new(st, "expires_at", json_string(buf));
	int64_t created;
	if (state_time(st, "created_at", &created)) {
		/* Whole seconds, truncated like chrono's num_seconds. */
		int64_t total = (new_exp - created) / 1000;
		if (total > 0)
			json_object_set_new(st, "ttl_seconds", json_integer(total));
	}
	return 0;
}

bool ac_ttl_expired(const json_t *st, int64_t now_ms)
{
	int64_t exp;
	return state_time(st, "expires_at", &exp) && exp < now_ms;
}

/* ------------------------------------------------------------------ lifecycle rules */

static bool policy_field(const json_t *pol, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(pol, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

const char *ac_lifecycle_decide_one(const json_t *st, bool running, int64_t now_ms, char *reason,
				    size_t reasonlen)
{
	const json_t *pol = json_object_get(st, "lifecycle_policy");
	if (!json_is_object(pol))
		return NULL;
	uint64_t stop_after = 0, archive_after = 0, delete_after = 0;
	bool has_stop = policy_field(pol, "auto_stop_after_seconds", &stop_after);
	bool has_archive = policy_field(pol, "auto_archive_after_seconds", &archive_after);
	bool has_delete = policy_field(pol, "auto_delete_after_seconds", &delete_after);

	int64_t archived;
	if (state_time(st, "archived_at", &archived)) {
		if (!has_delete)
			return NULL;
		/* Truncated toward zero, like chrono's num_seconds. */
		int64_t secs = (now_ms - archived) / 1000;
		if (secs < 0 || (uint64_t)secs < delete_after)
			return NULL;
		snprintf(reason, reasonlen, "archived for %llds (threshold=%llus)", (long long)secs,
			 (unsigned long long)delete_after);
		return "delete";
	}
	int64_t last;
	uint64_t inactive = 0;
	if (state_time(st, "last_activity_at", &last) || state_time(st, "created_at", &last)) {
		int64_t d = (now_ms - last) / 1000;
		inactive = d > 0 ? (uint64_t)d : 0;
	}
	if (has_archive && inactive >= archive_after) {
		snprintf(reason, reasonlen, "inactive for %llus (threshold=%llus)",
			 (unsigned long long)inactive, (unsigned long long)archive_after);
		return "archive";
	}
	if (has_stop && inactive >= stop_after && running) {
		snprintf(reason, reasonlen, "inactive for %llus (threshold=%llus)",
			 (unsigned long long)inactive, (unsigned long long)stop_after);
		return "stop";
	}
	return NULL;
}

static int cmp_decision(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(ac_state_str(x, "name", ""), ac_state_str(y, "name", ""));
	return c ? c : strcmp(ac_state_str(x, "reason", ""), ac_state_str(y, "reason", ""));
}

int ac_lifecycle_decide(const json_t *states, const bool *running, int64_t now_ms, json_t **out,
			ac_error_t **err)
{
	size_t n = json_array_size(states), k = 0;
	json_t **d = calloc(n + 1, sizeof(*d));
	if (d == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *st = json_array_get(states, i);
		char reason[160];
		const char *action = ac_lifecycle_decide_one(st, running && running[i], now_ms,
							     reason, sizeof(reason));
		const char *name = ac_state_str(st, "name", NULL);
		if (action && name)
			d[k++] = json_pack("{ss ss ss}", "name", name, "action", action, "reason",
					   reason);
	}
	qsort(d, k, sizeof(*d), cmp_decision);
	json_t *arr = json_array();
	for (size_t i = 0; i < k; i++)
		json_array_append_new(arr, d[i]);
	free(d);
	*out = arr;
	return 0;
}

/* ------------------------------------------------------------------ new sandboxes */

static json_t *policy_object(uint64_t stop, uint64_t archive, uint64_t del)
{
	json_t *p = json_object();
	if (stop)
		json_object_set_new(p, "auto_stop_after_seconds", json_integer((json_int_t)stop));
	if (archive)
		json_object_set_new(p, "auto_archive_after_seconds",
				    json_integer((json_int_t)archive));
	if (del)
		json_object_set_new(p, "auto_delete_after_seconds", json_integer((json_int_t)del));
	return p;
}

int ac_lifecycle_apply_opts(json_t *st, const ac_sandbox_opts_t *o, ac_error_t **err)
{
	if (o->ttl_seconds > AC_DURATION_MAX || o->auto_stop_after > AC_DURATION_MAX ||
	    o->auto_archive_after > AC_DURATION_MAX || o->auto_delete_after > AC_DURATION_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "durations are limited to 100 years");
	if (o->ttl_seconds) {
		/* created_at and expires_at from one instant: ttl_seconds is exact. */
		int64_t now = ac_time_now_ms();
		char created[32], expires[32];
		ac_time_format_rfc3339(now, created);
		ac_time_format_rfc3339(now + (int64_t)o->ttl_seconds * 1000, expires);
		json_object_set_new(st, "created_at", json_string(created));
		json_object_set_new(st, "ttl_seconds", json_integer((json_int_t)o->ttl_seconds));
		json_object_set_new(st, "expires_at", json_string(expires));
	}
	if (o->auto_stop_after || o->auto_archive_after || o->auto_delete_after)
		json_object_set_new(
		    st, "lifecycle_policy",
		    policy_object(o->auto_stop_after, o->auto_archive_after, o->auto_delete_after));
	if (o->labels) {
		json_t *labels = json_object();
		size_t n = 0;
		for (char **l = o->labels; *l; l++, n++) {
			char key[AC_LABEL_KEY_MAX + 1];
			const char *v;
			if (ac_label_parse(*l, key, sizeof(key), &v, err) < 0 ||
			    (json_object_get(labels, key) &&
			     ac_error_set(err, AC_ERR_INVALID, 0, "label '%s' is given twice",
					  key) < 0) ||
			    (n >= AC_LABELS_MAX &&
			     ac_error_set(err, AC_ERR_INVALID, 0, "at most %d labels",
					  AC_LABELS_MAX) < 0)) {
				json_decref(labels);
				return -1;
			}
			json_object_set_new(labels, key, json_string(v));
		}
		json_object_set_new(st, "labels", labels);
	}
	return 0;
}

/* ------------------------------------------------------------------ activity marks */

static void activity_file(const char *name, char buf[96])
{
	snprintf(buf, 96, "run/%s.activity", name);
}

void ac_manager_touch_activity(ac_manager_t *m, const char *name)
{
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	int home = ac_store_home_fd(ac_manager_store(m));
	if (utimensat(home, f, NULL, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return;
	int fd = openat(home, f, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd >= 0)
		close(fd);
}

void ac_lifecycle_merge_activity(ac_manager_t *m, json_t *st)
{
	const char *name = ac_state_str(st, "name", NULL);
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	struct stat sb;
	if (fstatat(ac_store_home_fd(ac_manager_store(m)), f, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	int64_t mark = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	int64_t last;
	if (state_time(st, "last_activity_at", &last) && last >= mark)
		return;
	char buf[32];
	ac_time_format_rfc3339(mark, buf);
	json_object_set_new(st, "last_activity_at", json_string(buf));
}

void ac_lifecycle_forget_activity(ac_manager_t *m, const char *name)
{
	if (!ac_name_valid(name))
		return;
	char f[96];
	activity_file(name, f);
	unlinkat(ac_store_home_fd(ac_manager_store(m)), f, 0);
}

/* ------------------------------------------------------------------ state changes */

/* Changes one sandbox's state under its lock. fn returns 0 to save the state (then the
 * event is logged with *details), 1 to leave it (returned as is), < 0 on error. */
typedef int (*state_fn)(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
			void *arg, json_t **details, ac_error_t **err);

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
	const ac_backend_ops_t *b = ac_manager_backend_of(st, err);
	if (b) {
		ac_lifecycle_merge_activity(m, st);
		rc = fn(m, b, st, b->is_running(m, st, NULL), arg, &details, err);
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

static int extend_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		     void *arg, json_t **details, ac_error_t **err)
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

static int policy_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		     void *arg, json_t **details, ac_error_t **err)
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

static int archive_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		      void *arg, json_t **details, ac_error_t **err)
{
	struct decision *d = arg;
	const char *name = ac_state_str(st, "name", "");
	if (!still_decided(m, st, running, d))
		return 1;
	if (running) {
		struct timespec t0;
		ac_audit_clock(&t0);
		if (b->stop(m, st, err) < 0)
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

static int recover_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		      void *arg, json_t **details, ac_error_t **err)
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

static int labels_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		     void *arg, json_t **details, ac_error_t **err)
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
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return false;
			p++;
			continue;
		}
		int n = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
		if (n < 0 || c > 0xf4)
			return false;
		unsigned cp = c & (0x3f >> n);
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += n + 1;
	}
	return true;
}

static int describe_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		       void *arg, json_t **details, ac_error_t **err)
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

static int resize_fn(ac_manager_t *m, const ac_backend_ops_t *b, json_t *st, bool running,
		     void *arg, json_t **details, ac_error_t **err)
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
		if (b->resize == NULL) {
			json_decref(old);
			return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
					    "the %s backend cannot resize a running sandbox",
					    b->name);
		}
		if (b->resize(m, st, err) < 0) {
			/* Whatever was applied before the failure goes back. */
			b->resize(m, old, NULL);
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
