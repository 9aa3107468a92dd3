/* Unit tests for src/core/lifecycle.c: durations, labels, extend_ttl arithmetic, expiry and
 * the reconcile decisions (agentkernel's rules), all pure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/time.h"
#include "base/util.h"
#include "core/internal.h"

static int64_t t(const char *s)
{
	int64_t ms;
	if (ac_time_parse_rfc3339(s, &ms) < 0)
		fail_msg("bad test time %s", s);
	return ms;
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", jerr.text, text);
	return j;
}

/* ------------------------------------------------------------------ durations */

static void test_duration_valid(void **state)
{
	static const struct {
		const char *in;
		uint64_t secs;
	} cases[] = {
	    {"1", 1},
	    {"90s", 90},
	    {"30m", 1800},
	    {"2h", 7200},
	    {"1d", 86400},
	    {"3600", 3600},
	    {"0010m", 600},
	    {"36500d", 3153600000ull},
	    {"3153600000", 3153600000ull},
	    {"3153600000s", 3153600000ull},
	    {"52560000m", 3153600000ull},
	    {"876000h", 3153600000ull},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		uint64_t v = 0;
		if (ac_duration_parse(cases[i].in, &v) != 0)
			fail_msg("'%s' was refused", cases[i].in);
		assert_int_equal(v, cases[i].secs);
	}
}

static void test_duration_invalid(void **state)
{
	static const struct {
		const char *in;
		int err;
	} cases[] = {
	    {"", EINVAL},
	    {"0", EINVAL},
	    {"0s", EINVAL},
	    {"00h", EINVAL},
	    {"-1h", EINVAL},
	    {"+1h", EINVAL},
	    {"1x", EINVAL},
	    {"1.5h", EINVAL},
	    {"1h30m", EINVAL},
	    {" 1h", EINVAL},
	    {"1h ", EINVAL},
	    {"h", EINVAL},
	    {"1H", EINVAL},
	    {"1hh", EINVAL},
	    {"1 h", EINVAL},
	    {"1e3", EINVAL},
	    {"0x10", EINVAL},
	    {"1ms", EINVAL},
	    {"1w", EINVAL},
	    {"36501d", ERANGE},
	    {"3153600001", ERANGE},
	    {"52560001m", ERANGE},
	    {"876001h", ERANGE},
	    {"99999999999999999999999999", ERANGE},
	    {"18446744073709551617s", ERANGE},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		uint64_t v = 12345;
		errno = 0;
		if (ac_duration_parse(cases[i].in, &v) != -1)
			fail_msg("'%s' was accepted as %llu", cases[i].in, (unsigned long long)v);
		assert_int_equal(errno, cases[i].err);
		assert_int_equal(v, 12345); /* untouched */
	}
	assert_int_equal(ac_duration_parse(NULL, NULL), -1);
}

static void test_duration_format(void **state)
{
	char buf[32];
	static const struct {
		uint64_t secs;
		const char *out;
	} cases[] = {{1, "1s"},	     {59, "59s"},   {60, "1m"},	      {90, "90s"},   {1800, "30m"},
		     {3600, "1h"},   {5400, "90m"}, {7200, "2h"},     {86400, "1d"}, {90000, "25h"},
		     {172800, "2d"}, {0, "0s"},	    {86401, "86401s"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		ac_duration_format(cases[i].secs, buf);
		assert_string_equal(buf, cases[i].out);
		/* and back */
		uint64_t v;
		if (cases[i].secs) {
			assert_int_equal(ac_duration_parse(buf, &v), 0);
			assert_int_equal(v, cases[i].secs);
		}
	}
}

/* ------------------------------------------------------------------ labels */

static void test_label_keys_and_values(void **state)
{
	char k63[64], k64[65], v255[256], v256[257];
	memset(k63, 'k', 63);
	k63[63] = '\0';
	memset(k64, 'k', 64);
	k64[64] = '\0';
	memset(v255, 'v', 255);
	v255[255] = '\0';
	memset(v256, 'v', 256);
	v256[256] = '\0';
	const char *good_keys[] = {"a",	 "team", "app.kubernetes.io/name", "A-b_c.d/e", "9", "-",
				   "..", k63};
	const char *bad_keys[] = {"", "a b", "a=b", "é", "a:b", "a\n", "a*", "a,b", k64, NULL};
	for (size_t i = 0; i < AC_ARRAY_SIZE(good_keys); i++)
		if (!ac_label_key_valid(good_keys[i]))
			fail_msg("key '%s' refused", good_keys[i]);
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad_keys); i++)
		if (ac_label_key_valid(bad_keys[i]))
			fail_msg("key '%s' accepted", bad_keys[i]);
	const char *good_vals[] = {"", "x", "hello world", "a=b=c", "~!@#$%^&*()", v255};
	const char *bad_vals[] = {"tab\there", "nl\n", "\x7f", "é", v256, NULL};
	for (size_t i = 0; i < AC_ARRAY_SIZE(good_vals); i++)
		if (!ac_label_value_valid(good_vals[i]))
			fail_msg("value '%s' refused", good_vals[i]);
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad_vals); i++)
		if (ac_label_value_valid(bad_vals[i]))
			fail_msg("value '%s' accepted", bad_vals[i] ? bad_vals[i] : "(null)");
}

static void test_label_parse(void **state)
{
	char key[64];
	const char *v = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_label_parse("team=core", key, sizeof(key), &v, &e), 0);
	assert_string_equal(key, "team");
	assert_string_equal(v, "core");
	assert_int_equal(ac_label_parse("eq=a=b", key, sizeof(key), &v, &e), 0);
	assert_string_equal(key, "eq");
	assert_string_equal(v, "a=b");
	assert_int_equal(ac_label_parse("empty=", key, sizeof(key), &v, &e), 0);
	assert_string_equal(v, "");
	assert_null(e);

	const char *bad[] = {"novalue", "=v", "a b=c", "k=\x01", NULL};
	char long_key[100];
	memset(long_key, 'k', 64);
	snprintf(long_key + 64, sizeof(long_key) - 64, "=v");
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		e = NULL;
		assert_int_equal(ac_label_parse(bad[i], key, sizeof(key), &v, &e), -1);
		assert_non_null(e);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
	}
	e = NULL;
	assert_int_equal(ac_label_parse(long_key, key, sizeof(key), &v, &e), -1);
	ac_error_free(e);
}

static void test_labels_match(void **state)
{
	json_t *st =
	    parse("{\"name\":\"a\",\"labels\":{\"team\":\"core\",\"env\":\"dev\",\"e\":\"\"}}");
	char *none[] = {NULL};
	char *one[] = {"team=core", NULL};
	char *two[] = {"team=core", "env=dev", NULL};
	char *wrong[] = {"team=core", "env=prod", NULL};
	char *missing[] = {"owner=me", NULL};
	char *empty[] = {"e=", NULL};
	char *prefix[] = {"team=cor", NULL};
	char *keyprefix[] = {"tea=core", NULL};
	assert_true(ac_labels_match(st, NULL));
	assert_true(ac_labels_match(st, none));
	assert_true(ac_labels_match(st, one));
	assert_true(ac_labels_match(st, two));
	assert_false(ac_labels_match(st, wrong));
	assert_false(ac_labels_match(st, missing));
	assert_true(ac_labels_match(st, empty));
	assert_false(ac_labels_match(st, prefix));
	assert_false(ac_labels_match(st, keyprefix));
	json_t *nolabels = parse("{\"name\":\"b\"}");
	assert_false(ac_labels_match(nolabels, one));
	assert_true(ac_labels_match(nolabels, none));
	json_decref(nolabels);
	json_decref(st);
}

/* ------------------------------------------------------------------ TTL */

static void extend_case(const char *state_json, uint64_t by, const char *now,
			const char *want_expiry, long long want_ttl)
{
	json_t *st = parse(state_json);
	ac_error_t *e = NULL;
	if (ac_ttl_extend_state(st, by, t(now), &e) != 0)
		fail_msg("extend of %s failed: %s", state_json, e ? e->msg : "?");
	assert_string_equal(ac_state_str(st, "expires_at", ""), want_expiry);
	assert_int_equal(ac_state_int(st, "ttl_seconds", -1), want_ttl);
	json_decref(st);
}

static void test_extend_ttl(void **state)
{
	/* A future expiry is extended from itself. */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00Z\",\"ttl_seconds\":7200,"
		    "\"expires_at\":\"2026-01-01T02:00:00Z\"}",
		    3600, "2026-01-01T01:00:00Z", "2026-01-01T03:00:00.000Z", 10800);
	/* A past expiry: from now. */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00Z\",\"ttl_seconds\":60,"
		    "\"expires_at\":\"2026-01-01T00:01:00Z\"}",
		    600, "2026-01-01T05:00:00Z", "2026-01-01T05:10:00.000Z", 18600);
	/* Expiry exactly now: not later than now, so from now (same instant either way). */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00Z\",\"ttl_seconds\":60,"
		    "\"expires_at\":\"2026-01-01T00:01:00Z\"}",
		    60, "2026-01-01T00:01:00Z", "2026-01-01T00:02:00.000Z", 120);
	/* No TTL: it gets one. */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00Z\",\"ttl_seconds\":null,"
		    "\"expires_at\":null}",
		    86400, "2026-01-01T12:00:00Z", "2026-01-02T12:00:00.000Z", 129600);
	/* An unreadable expiry counts as none. */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00Z\",\"expires_at\":\"soon\"}", 30,
		    "2026-01-01T00:00:10Z", "2026-01-01T00:00:40.000Z", 40);
	/* Whole seconds, truncated: 1.5 s after creation + 10 s = 11 s. */
	extend_case("{\"created_at\":\"2026-01-01T00:00:00.000Z\"}", 10, "2026-01-01T00:00:01.500Z",
		    "2026-01-01T00:00:11.500Z", 11);
	/* Offsets are understood. */
	extend_case("{\"created_at\":\"2026-01-01T02:00:00+02:00\","
		    "\"expires_at\":\"2026-01-01T03:00:00+02:00\"}",
		    60, "2026-01-01T00:30:00Z", "2026-01-01T01:01:00.000Z", 3660);
	/* Without a readable created_at, ttl_seconds is left as it was. */
	extend_case("{\"created_at\":\"garbage\",\"ttl_seconds\":5}", 60, "2026-01-01T00:00:00Z",
		    "2026-01-01T00:01:00.000Z", 5);
	/* created_at in the future (clock changes): a non-positive total keeps ttl_seconds. */
	extend_case("{\"created_at\":\"2027-01-01T00:00:00Z\",\"ttl_seconds\":5}", 60,
		    "2026-01-01T00:00:00Z", "2026-01-01T00:01:00.000Z", 5);

	json_t *st = parse("{\"created_at\":\"2026-01-01T00:00:00Z\","
			   "\"expires_at\":\"9999-12-31T00:00:00Z\"}");
	ac_error_t *e = NULL;
	assert_int_equal(ac_ttl_extend_state(st, 2 * 86400, t("2026-01-01T00:00:00Z"), &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	assert_string_equal(ac_state_str(st, "expires_at", ""), "9999-12-31T00:00:00Z");
	e = NULL;
	assert_int_equal(ac_ttl_extend_state(st, 0, t("2026-01-01T00:00:00Z"), &e), -1);
	ac_error_free(e);
	e = NULL;
	assert_int_equal(
	    ac_ttl_extend_state(st, AC_DURATION_MAX + 1, t("2026-01-01T00:00:00Z"), &e), -1);
	ac_error_free(e);
	json_decref(st);
}

static void test_expired(void **state)
{
	json_t *st = parse("{\"expires_at\":\"2026-01-01T00:00:00Z\"}");
	assert_false(ac_ttl_expired(st, t("2025-12-31T23:59:59.999Z")));
	assert_false(ac_ttl_expired(st, t("2026-01-01T00:00:00Z"))); /* strictly before now */
	assert_true(ac_ttl_expired(st, t("2026-01-01T00:00:00.001Z")));
	json_decref(st);
	st = parse("{\"expires_at\":null}");
	assert_false(ac_ttl_expired(st, t("2100-01-01T00:00:00Z")));
	json_decref(st);
	st = parse("{\"expires_at\":\"not a time\"}");
	assert_false(ac_ttl_expired(st, t("2100-01-01T00:00:00Z")));
	json_decref(st);
}

/* ------------------------------------------------------------------ reconcile rules */

#define NOW "2026-06-01T12:00:00Z"

static const struct decide_case {
	const char *what;
	const char *state; /* fields besides the name */
	bool running;
	const char *action; /* NULL: none */
	const char *reason;
} decide_cases[] = {
    {"no policy, long inactive", "\"last_activity_at\":\"2020-01-01T00:00:00Z\"", true, NULL, NULL},
    {"policy not an object", "\"lifecycle_policy\":5,\"last_activity_at\":\"2020-01-01T00:00:00Z\"",
     true, NULL, NULL},
    {"empty policy", "\"lifecycle_policy\":{},\"last_activity_at\":\"2020-01-01T00:00:00Z\"", true,
     NULL, NULL},
    /* stop */
    {"stop: 59 s of 60",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":60},"
     "\"last_activity_at\":\"2026-06-01T11:59:01Z\"",
     true, NULL, NULL},
    {"stop: 59.999 s of 60 (whole seconds)",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":60},"
     "\"last_activity_at\":\"2026-06-01T11:59:00.001Z\"",
     true, NULL, NULL},
    {"stop: exactly 60 s",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":60},"
     "\"last_activity_at\":\"2026-06-01T11:59:00Z\"",
     true, "stop", "inactive for 60s (threshold=60s)"},
    {"stop: stopped sandboxes are left",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":60},"
     "\"last_activity_at\":\"2026-06-01T11:00:00Z\"",
     false, NULL, NULL},
    {"stop: threshold 0 on a fresh sandbox",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":0},"
     "\"last_activity_at\":\"2026-06-01T12:00:00Z\"",
     true, "stop", "inactive for 0s (threshold=0s)"},
    /* archive */
    {"archive: 99 s of 100",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":100},"
     "\"last_activity_at\":\"2026-06-01T11:58:21Z\"",
     true, NULL, NULL},
    {"archive: exactly 100 s, running",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":100},"
     "\"last_activity_at\":\"2026-06-01T11:58:20Z\"",
     true, "archive", "inactive for 100s (threshold=100s)"},
    {"archive: stopped ones too",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":100},"
     "\"last_activity_at\":\"2026-06-01T11:00:00Z\"",
     false, "archive", "inactive for 3600s (threshold=100s)"},
    {"archive wins over stop",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":10,"
     "\"auto_archive_after_seconds\":100},\"last_activity_at\":\"2026-06-01T11:58:00Z\"",
     true, "archive", "inactive for 120s (threshold=100s)"},
    {"stop before the archive threshold",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":10,"
     "\"auto_archive_after_seconds\":100},\"last_activity_at\":\"2026-06-01T11:59:10Z\"",
     true, "stop", "inactive for 50s (threshold=10s)"},
    {"neither before the stop threshold",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":10,"
     "\"auto_archive_after_seconds\":100},\"last_activity_at\":\"2026-06-01T11:59:55Z\"",
     true, NULL, NULL},
    /* activity sources */
    {"no last_activity_at: created_at",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":60},"
     "\"created_at\":\"2026-06-01T11:00:00Z\"",
     false, "archive", "inactive for 3600s (threshold=60s)"},
    {"unreadable last_activity_at: created_at",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":60},"
     "\"last_activity_at\":\"yesterday\",\"created_at\":\"2026-06-01T11:59:30Z\"",
     false, NULL, NULL},
    {"neither time: inactivity 0", "\"lifecycle_policy\":{\"auto_archive_after_seconds\":1}", false,
     NULL, NULL},
    {"neither time, threshold 0", "\"lifecycle_policy\":{\"auto_archive_after_seconds\":0}", false,
     "archive", "inactive for 0s (threshold=0s)"},
    {"activity in the future: inactivity 0",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":1},"
     "\"last_activity_at\":\"2026-06-01T13:00:00Z\"",
     true, NULL, NULL},
    {"last_activity_at wins over an older created_at",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":60},"
     "\"created_at\":\"2020-01-01T00:00:00Z\",\"last_activity_at\":\"2026-06-01T11:59:30Z\"",
     true, NULL, NULL},
    /* delete */
    {"delete: archived 3599 s of 3600",
     "\"lifecycle_policy\":{\"auto_delete_after_seconds\":3600},"
     "\"archived_at\":\"2026-06-01T11:00:01Z\"",
     false, NULL, NULL},
    {"delete: archived exactly 3600 s",
     "\"lifecycle_policy\":{\"auto_delete_after_seconds\":3600},"
     "\"archived_at\":\"2026-06-01T11:00:00Z\"",
     false, "delete", "archived for 3600s (threshold=3600s)"},
    {"archived without delete rule: nothing else applies",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":1,\"auto_archive_after_seconds\":1},"
     "\"archived_at\":\"2026-06-01T11:00:00Z\",\"last_activity_at\":\"2020-01-01T00:00:00Z\"",
     true, NULL, NULL},
    {"archived in the future: not yet",
     "\"lifecycle_policy\":{\"auto_delete_after_seconds\":0},"
     "\"archived_at\":\"2026-06-01T12:00:05Z\"",
     false, NULL, NULL},
    {"unreadable archived_at counts as not archived",
     "\"lifecycle_policy\":{\"auto_archive_after_seconds\":60,\"auto_delete_after_seconds\":1},"
     "\"archived_at\":\"bogus\",\"last_activity_at\":\"2026-06-01T11:00:00Z\"",
     false, "archive", "inactive for 3600s (threshold=60s)"},
    {"delete rule alone does not archive",
     "\"lifecycle_policy\":{\"auto_delete_after_seconds\":1},"
     "\"last_activity_at\":\"2020-01-01T00:00:00Z\"",
     true, NULL, NULL},
    {"negative and non-integer thresholds are ignored",
     "\"lifecycle_policy\":{\"auto_stop_after_seconds\":-5,\"auto_archive_after_seconds\":\"1\"},"
     "\"last_activity_at\":\"2020-01-01T00:00:00Z\"",
     true, NULL, NULL},
};

static void test_decide_table(void **state)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(decide_cases); i++) {
		const struct decide_case *c = &decide_cases[i];
		char text[1024], reason[160] = "";
		snprintf(text, sizeof(text), "{\"name\":\"sb\",%s}", c->state);
		json_t *st = parse(text);
		const char *a =
		    ac_lifecycle_decide_one(st, c->running, t(NOW), reason, sizeof(reason));
		if ((a == NULL) != (c->action == NULL) || (a && strcmp(a, c->action) != 0))
			fail_msg("%s: action %s, expected %s", c->what, a ? a : "none",
				 c->action ? c->action : "none");
		if (c->reason && strcmp(reason, c->reason) != 0)
			fail_msg("%s: reason '%s', expected '%s'", c->what, reason, c->reason);
		json_decref(st);
	}
}

static void test_decide_sorted_and_flags(void **state)
{
	json_t *states =
	    parse("[{\"name\":\"zeta\",\"lifecycle_policy\":{\"auto_stop_after_seconds\":1},"
		  "\"last_activity_at\":\"2026-06-01T11:00:00Z\"},"
		  "{\"name\":\"alpha\",\"lifecycle_policy\":{\"auto_delete_after_seconds\":1},"
		  "\"archived_at\":\"2026-06-01T11:00:00Z\"},"
		  "{\"name\":\"mid\",\"lifecycle_policy\":{\"auto_stop_after_seconds\":1},"
		  "\"last_activity_at\":\"2026-06-01T11:00:00Z\"},"
		  "{\"name\":\"beta\",\"lifecycle_policy\":{\"auto_archive_after_seconds\":10},"
		  "\"last_activity_at\":\"2026-06-01T11:59:00Z\"},"
		  "{\"name\":\"quiet\"}]");
	bool running[] = {true, false, false, false, true};
	json_t *out = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_lifecycle_decide(states, running, t(NOW), &out, &e), 0);
	char *s = json_dumps(out, JSON_COMPACT);
	assert_string_equal(
	    s, "[{\"name\":\"alpha\",\"action\":\"delete\",\"reason\":\"archived for 3600s "
	       "(threshold=1s)\"},"
	       "{\"name\":\"beta\",\"action\":\"archive\",\"reason\":\"inactive for 60s "
	       "(threshold=10s)\"},"
	       "{\"name\":\"zeta\",\"action\":\"stop\",\"reason\":\"inactive for 3600s "
	       "(threshold=1s)\"}]");
	free(s);
	json_decref(out);

	/* NULL running flags: nothing runs, so nothing is stopped. */
	assert_int_equal(ac_lifecycle_decide(states, NULL, t(NOW), &out, &e), 0);
	assert_int_equal(json_array_size(out), 2);
	json_decref(out);

	json_t *empty = json_array();
	assert_int_equal(ac_lifecycle_decide(empty, NULL, t(NOW), &out, &e), 0);
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
	json_decref(empty);
	json_decref(states);
}

/* ------------------------------------------------------------------ new sandboxes */

static void test_apply_opts(void **state)
{
	char *labels[] = {"team=core", "app.io/name=web", NULL};
	ac_sandbox_opts_t o = {.ttl_seconds = 5400,
			       .auto_stop_after = 60,
			       .auto_delete_after = 86400,
			       .labels = labels};
	json_t *st = json_object();
	ac_error_t *e = NULL;
	assert_int_equal(ac_lifecycle_apply_opts(st, &o, &e), 0);
	int64_t created, expires;
	assert_int_equal(ac_time_parse_rfc3339(ac_state_str(st, "created_at", ""), &created), 0);
	assert_int_equal(ac_time_parse_rfc3339(ac_state_str(st, "expires_at", ""), &expires), 0);
	assert_int_equal(expires - created, 5400 * 1000);
	assert_int_equal(ac_state_int(st, "ttl_seconds", 0), 5400);
	char *pol = json_dumps(json_object_get(st, "lifecycle_policy"), JSON_COMPACT);
	assert_string_equal(pol, "{\"auto_stop_after_seconds\":60,"
				 "\"auto_delete_after_seconds\":86400}");
	free(pol);
	char *sel[] = {"team=core", "app.io/name=web", NULL};
	assert_true(ac_labels_match(st, sel));
	json_decref(st);

	/* Nothing given: nothing added. */
	ac_sandbox_opts_t none = {0};
	st = json_object();
	assert_int_equal(ac_lifecycle_apply_opts(st, &none, &e), 0);
	assert_int_equal(json_object_size(st), 0);
	json_decref(st);

	char *dup[] = {"a=1", "a=2", NULL};
	char *bad[] = {"a b=1", NULL};
	char **cases[] = {dup, bad};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		ac_sandbox_opts_t b = {.labels = cases[i]};
		st = json_object();
		e = NULL;
		assert_int_equal(ac_lifecycle_apply_opts(st, &b, &e), -1);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
		json_decref(st);
	}
	ac_sandbox_opts_t toolong = {.ttl_seconds = AC_DURATION_MAX + 1};
	st = json_object();
	e = NULL;
	assert_int_equal(ac_lifecycle_apply_opts(st, &toolong, &e), -1);
	ac_error_free(e);
	json_decref(st);
}

/* ------------------------------------------------------------------ audit strings */

static void test_audit_string(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *out;
	} cases[] = {
	    {"plain", 100, "plain"},
	    {"cut here", 3, "cut"},
	    {"caf\xc3\xa9", 100, "caf\xc3\xa9"},
	    {"caf\xc3\xa9", 4, "caf"}, /* never half a character */
	    {"bad\xff\xfe"
	     "bytes",
	     100, "bad??bytes"},
	    {"\xc3(", 100, "?("},
	    {"\xed\xa0\x80", 100, "???"}, /* a UTF-16 surrogate is not UTF-8 */
	    {"\xf0\x9f\x98\x80!", 100, "\xf0\x9f\x98\x80!"},
	    {"", 10, ""},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *j = ac_audit_string(cases[i].in, cases[i].max);
		assert_non_null(j);
		assert_string_equal(json_string_value(j), cases[i].out);
		json_decref(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_valid),  cmocka_unit_test(test_duration_invalid),
	    cmocka_unit_test(test_duration_format), cmocka_unit_test(test_label_keys_and_values),
	    cmocka_unit_test(test_label_parse),	    cmocka_unit_test(test_labels_match),
	    cmocka_unit_test(test_extend_ttl),	    cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_decide_table),    cmocka_unit_test(test_decide_sorted_and_flags),
	    cmocka_unit_test(test_apply_opts),	    cmocka_unit_test(test_audit_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
