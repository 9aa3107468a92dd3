/* agentkernel's lifecycle rules, pure (no file, no clock unless asked): durations, labels
 * and selectors, TTL and expiry, the policy decisions (stop, archive, delete) and the
 * lifetime fields of a new state (VmManager::extend_ttl, reconcile_lifecycle, expired,
 * list_matching_labels). lifecycle.c applies them; activity.c keeps the marks they read. */
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
