/* agentcell extend | gc | policy | reconcile | recover | label | describe | resize | audit |
 * metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parse.h"
#include "base/time.h"
#include "base/util.h"
#include "cli/cli.h"

/* ------------------------------------------------------------------ extend */

typedef struct extend_state {
	uint64_t by;
} extend_state_t;

static const cli_opt_t extend_opts[] = {
    CLI_FN("--by", 0, "DURATION", "90s, 30m, 2h, 1d or plain seconds", cli_opt_duration,
	   extend_state_t, by),
    CLI_END,
};

#define ONE_SANDBOX .min_args = 1, .max_args = 1, .name_arg = 1

const cli_command_t cli_cmd_extend = {
    .name = "extend",
    .summary = "push a sandbox's expiry (TTL) further out",
    .synopsis = "NAME --by DURATION",
    .about =
	"Sets NAME's expiry to DURATION after the later of now and its current expiry (a\n"
	"sandbox without a TTL gets one); ttl_seconds becomes the time from its creation to the\n"
	"new expiry. Prints the new expiry.\n",
    .opts = extend_opts,
    ONE_SANDBOX,
    .fn = cmd_extend,
};

int cmd_extend(int argc, char **argv)
{
	extend_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_extend, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	uint64_t by = op.by;
	if (!by)
		return cli_usage("extend", "give the extension with --by, e.g. --by 1h");
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_extend(m, name, by, &st, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	printf("%s expires at %s\n", name, ac_state_str(st, "expires_at", "?"));
	json_decref(st);
	return 0;
}

/* ------------------------------------------------------------------ gc */

typedef struct flags_state {
	bool json, dry_run;
} flags_state_t;

static void print_removed(const json_t *removed)
{
	size_t i;
	json_t *it;
	json_array_foreach(removed, i, it)
	{
		if (ac_state_str(it, "expires_at", NULL))
			printf("removed %s (expired at %s)\n", ac_state_str(it, "name", "?"),
			       ac_state_str(it, "expires_at", "?"));
		else
			printf("removed %s (%s)\n", ac_state_str(it, "name", "?"),
			       ac_state_str(it, "reason", "?"));
	}
}

static const cli_opt_t gc_opts[] = {
    CLI_FLAG("--json", 0, "a JSON array [{name, expires_at}]", flags_state_t, json),
    CLI_FLAG("--dry-run", 0, "remove nothing; print what would be removed", flags_state_t, dry_run),
    CLI_END,
};

const cli_command_t cli_cmd_gc = {
    .name = "gc",
    .summary = "remove every expired sandbox",
    .synopsis = "[--dry-run] [--json]",
    .about = "Removes every sandbox whose TTL has expired, running or not, and prints\n"
	     "what it removed (with --dry-run: what it would remove, as 'would remove ...').\n",
    .opts = gc_opts,
    .fn = cmd_gc,
};

static void print_would_remove(const json_t *list)
{
	size_t i;
	json_t *it;
	json_array_foreach(list, i, it)
	    printf("would remove %s (expired at %s)\n", ac_state_str(it, "name", "?"),
		   ac_state_str(it, "expires_at", "?"));
}

/* gc --dry-run: the expired sandboxes, by the rule gc applies; nothing is touched. Takes m. */
static int gc_dry_run(ac_manager_t *m, bool json)
{
	json_t *all = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_list_all(m, &all, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	json_t *out = json_array();
	int64_t now = ac_time_now_ms();
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st) if (ac_ttl_expired(st, now))
	    json_array_append_new(out, json_pack("{ss sO}", "name", ac_state_str(st, "name", "?"),
						 "expires_at", json_object_get(st, "expires_at")));
	json_decref(all);
	return cli_show(out, json, print_would_remove);
}

int cmd_gc(int argc, char **argv)
{
	flags_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_gc, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	bool json = op.json;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	if (op.dry_run)
		return gc_dry_run(m, json);
	json_t *removed = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_gc(m, &removed, &e);
	/* Then what killed processes left (doctor lists it): on stderr, so stdout stays
	 * the list of removed sandboxes. */
	json_t *swept = NULL;
	if (ac_manager_sweep(m, true, &swept, NULL) >= 0) {
		size_t i;
		json_t *f;
		json_array_foreach(swept, i, f)
		{
			/* An engine that could not be asked: said, and gc goes on. */
			if (json_object_get(f, "error"))
				fprintf(stderr, "%s: gc: %s not checked: %s\n", cli_prog,
					ac_state_str(f, "kind", "?"),
					ac_state_str(f, "error", "?"));
			else
				fprintf(stderr, "%s: removed %s %s (%s)\n", cli_prog,
					ac_state_str(f, "kind", "?"), ac_state_str(f, "path", "?"),
					ac_state_str(f, "why", "?"));
		}
	}
	json_decref(swept);
	ac_manager_free(m);
	/* What was removed is shown even when a removal failed. */
	cli_show(removed, json, print_removed);
	return rc < 0 ? cli_error(e) : 0;
}

/* ------------------------------------------------------------------ policy */

static void print_policy(const json_t *pol)
{
	static const char *keys[][2] = {{"auto_stop_after_seconds", "auto-stop-after"},
					{"auto_archive_after_seconds", "auto-archive-after"},
					{"auto_delete_after_seconds", "auto-delete-after"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(pol, keys[i][0]);
		char buf[32] = "-";
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			ac_duration_format((uint64_t)json_integer_value(v), buf);
		printf("%-19s %s\n", keys[i][1], buf);
	}
}

typedef struct policy_state {
	ac_policy_change_t c;
	bool json, change;
} policy_state_t;

/* A rule's duration, or 'none' (0) to unset it. */
static cli_status_t opt_rule(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t secs = 0;
	if (strcmp(v, "none") != 0 && cli_opt_duration(cmd, opt, v, &secs) != CLI_OK)
		return CLI_USAGE_ERROR;
	*(int64_t *)t = (int64_t)secs;
	CLI_STATE(policy_state_t, opt, t)->change = true;
	return CLI_OK;
}

static cli_status_t opt_clear(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	policy_state_t *st = CLI_STATE(policy_state_t, opt, t);
	st->c.clear = st->change = true;
	return CLI_OK;
}

static const cli_opt_t policy_opts[] = {
    CLI_FN("--auto-stop-after", 0, "D", "stop it after D without activity", opt_rule,
	   policy_state_t, c.auto_stop_after),
    CLI_FN("--auto-archive-after", 0, "D", "stop and archive it after D without activity", opt_rule,
	   policy_state_t, c.auto_archive_after),
    CLI_FN("--auto-delete-after", 0, "D", "remove it once archived for D", opt_rule, policy_state_t,
	   c.auto_delete_after),
    CLI_FN("--clear", 0, NULL, "drop the whole policy (then apply the other options)", opt_clear,
	   policy_state_t, c.clear),
    CLI_FLAG("--json", 0, "print the resulting policy as JSON", policy_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_policy = {
    .name = "policy",
    .summary = "show or change a sandbox's lifecycle policy",
    .synopsis = "NAME [--auto-stop-after D] [--auto-archive-after D]\n"
		"                      [--auto-delete-after D] [--clear] [--json]",
    .about = "Without options, shows NAME's lifecycle policy; otherwise changes it. 'agentcell\n"
	     "reconcile' applies the policies. D: 90s, 30m, 2h, 1d, plain seconds, or 'none' to\n"
	     "unset one rule.\n",
    .opts = policy_opts,
    ONE_SANDBOX,
    .fn = cmd_policy,
};

int cmd_policy(int argc, char **argv)
{
	policy_state_t op = {.c = {false, -1, -1, -1}};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_policy, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	ac_policy_change_t c = op.c;
	bool json = op.json, change = op.change;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	json_t *pol = NULL;
	int rc;
	if (change) {
		rc = ac_manager_set_policy(m, name, &c, &pol, &e);
	} else {
		json_t *st = NULL;
		rc = ac_manager_info(m, name, &st, &e);
		if (rc == 0) {
			pol = json_object_get(st, "lifecycle_policy");
			pol = json_incref(pol ? pol : json_null());
			json_decref(st);
		}
	}
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(pol, json, print_policy);
}

/* ------------------------------------------------------------------ reconcile */

static void print_decisions(const json_t *d)
{
	size_t i;
	json_t *it;
	json_array_foreach(d, i, it)
	    printf("%-8s %-24s %s\n", ac_state_str(it, "action", "?"),
		   ac_state_str(it, "name", "?"), ac_state_str(it, "reason", ""));
}

static const cli_opt_t reconcile_opts[] = {
    CLI_FLAG("--dry-run", 0, "change nothing; print what would be done", flags_state_t, dry_run),
    CLI_FLAG("--json", 0, "a JSON array [{name, action, reason}]", flags_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_reconcile = {
    .name = "reconcile",
    .summary = "apply the lifecycle policies (stop, archive, delete)",
    .synopsis = "[--dry-run] [--json]",
    .about =
	"Applies every sandbox's lifecycle policy: an archived sandbox is deleted once it has\n"
	"been archived for auto-delete-after; otherwise one inactive (since its last exec,\n"
	"start or creation) for auto-archive-after is stopped and archived, and a running one\n"
	"inactive for auto-stop-after is stopped. Prints one line per action, sorted by name.\n",
    .opts = reconcile_opts,
    .fn = cmd_reconcile,
};

int cmd_reconcile(int argc, char **argv)
{
	flags_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_reconcile, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	bool json = op.json, dry = op.dry_run;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *d = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_reconcile(m, dry, &d, &e);
	ac_manager_free(m);
	cli_show(d, json, print_decisions);
	return rc < 0 ? cli_error(e) : 0;
}

/* ------------------------------------------------------------------ recover */

const cli_command_t cli_cmd_recover = {
    .name = "recover",
    .summary = "bring an archived sandbox back",
    .synopsis = "NAME",
    .about = "Clears NAME's archived state so that it can be started again.\n",
    ONE_SANDBOX,
    .fn = cmd_recover,
};

int cmd_recover(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_recover, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = ac_manager_recover(m, name, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	printf("%s\n", name);
	return 0;
}

/* ------------------------------------------------------------------ label, describe */

static int cmp_key(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void print_labels(const json_t *labels)
{
	size_t n = json_object_size(labels), k = 0;
	const char **keys = calloc(n + 1, sizeof(char *));
	const char *key;
	json_t *v;
	if (!keys)
		return;
	json_object_foreach((json_t *)labels, key, v) keys[k++] = key;
	qsort(keys, k, sizeof(char *), cmp_key);
	for (size_t i = 0; i < k; i++)
		printf("%s=%s\n", keys[i], json_string_value(json_object_get(labels, keys[i])));
	free(keys);
}

typedef struct label_state {
	char *rm[AC_LABELS_MAX + 1];
	int nrm;
	bool json;
} label_state_t;

static cli_status_t opt_remove(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	label_state_t *st = CLI_STATE(label_state_t, opt, t);
	if (!ac_label_key_valid(v))
		return cli_usage_error(
		    cmd, "invalid label key '%.80s': use 1-63 of A-Z a-z 0-9 . _ / -", v);
	if (st->nrm >= AC_LABELS_MAX)
		return cli_usage_error(cmd, "too many --remove options");
	st->rm[st->nrm++] = (char *)v;
	return CLI_OK;
}

static const cli_opt_t label_opts[] = {
    CLI_FN("--remove", 0, "KEY", "remove this label (repeatable)", opt_remove, label_state_t, rm),
    CLI_FLAG("--json", 0, "print the labels as a JSON object", label_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_label = {
    .name = "label",
    .summary = "show, set or remove a sandbox's labels",
    .synopsis = "NAME [KEY=VALUE...] [--remove KEY]... [--json]",
    .about = "Sets and removes labels of NAME and prints the resulting labels (without changes:\n"
	     "prints them). Keys: 1-63 of A-Z a-z 0-9 . _ / -; values: up to 255 printable\n"
	     "characters. 'agentcell list --label KEY=VALUE' selects by label.\n",
    .opts = label_opts,
    .min_args = 1,
    .max_args = CLI_ARGS_MANY,
    .name_arg = 1,
    .fn = cmd_label,
};

int cmd_label(int argc, char **argv)
{
	label_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_label, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	char **set = ca.v + 1, **rm = op.rm;
	int nset = ca.n - 1, nrm = op.nrm;
	for (int k = 0; k < nset; k++)
		if (cli_check_label("label", set[k]) != CLI_OK)
			return CLI_EXIT_USAGE;
	if (nset > AC_LABELS_MAX)
		return cli_usage("label", "too many labels (at most %d)", AC_LABELS_MAX);
	/* ac_manager_set_labels takes NULL-terminated lists. */
	char *setv[AC_LABELS_MAX + 1] = {0};
	for (int k = 0; k < nset; k++)
		setv[k] = set[k];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	json_t *labels = NULL;
	int rc;
	if (nset || nrm) {
		rc = ac_manager_set_labels(m, name, setv, rm, &labels, &e);
	} else {
		json_t *st = NULL;
		rc = ac_manager_info(m, name, &st, &e);
		if (rc == 0) {
			labels = json_object_get(st, "labels");
			labels = json_is_object(labels) ? json_incref(labels) : json_object();
			json_decref(st);
		}
	}
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(labels, op.json, print_labels);
}

const cli_command_t cli_cmd_describe = {
    .name = "describe",
    .summary = "set a sandbox's description",
    .synopsis = "NAME TEXT",
    .about = "Sets NAME's description to TEXT (at most 1024 bytes; an empty TEXT clears it).\n",
    .min_args = 2,
    .max_args = 2,
    .name_arg = 1,
    .missing = {"no sandbox name given", "no description given (an empty one clears it)"},
    .extra = " (quote the description)",
    .fn = cmd_describe,
};

int cmd_describe(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_describe, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0], *text = ca.v[1];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = ac_manager_describe(m, name, text, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return 0;
}

/* ------------------------------------------------------------------ resize */

static cli_status_t opt_rs_memory(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_resize_t *rs = CLI_STATE(ac_resize_t, opt, t);
	rs->memory_set = true;
	return cli_size_arg(cmd, "--memory", v, AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB, &rs->memory_mb);
}

static cli_status_t opt_rs_pids(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_resize_t *rs = CLI_STATE(ac_resize_t, opt, t);
	rs->pids_set = true;
	return cli_size_arg(cmd, "--pids", v, AC_PIDS_MIN, AC_PIDS_MAX, &rs->pids);
}

static cli_status_t opt_rs_cpus(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_resize_t *rs = CLI_STATE(ac_resize_t, opt, t);
	rs->cpus_set = true;
	return cli_cpus_arg(cmd, v, &rs->cpus);
}

static cli_status_t opt_rs_disk(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	return cli_usage_error(cmd, "--disk cannot be changed: a sandbox's disk size is fixed when "
				    "it is made (copy its files into a new sandbox made with the "
				    "size you need)");
}

static const cli_opt_t resize_opts[] = {
    CLI_FN("--memory", 0, "MB", "memory limit (16-1048576)", opt_rs_memory, ac_resize_t, memory_mb),
    CLI_FN("--cpus", 0, "N", "CPU limit, fractions allowed (0.01-1024)", opt_rs_cpus, ac_resize_t,
	   cpus),
    CLI_FN("--pids", 0, "N", "process limit (8-4194304)", opt_rs_pids, ac_resize_t, pids),
    CLI_FN("--disk", 0, "MB", "refused: a sandbox's disk size is fixed when it is made",
	   opt_rs_disk, ac_resize_t, memory_mb),
    CLI_END,
};

const cli_command_t cli_cmd_resize = {
    .name = "resize",
    .summary = "change a sandbox's memory, CPU or process limits",
    .synopsis = "NAME [--memory MB] [--cpus N] [--pids N]",
    .about = "Changes NAME's limits: in place if it runs (its cgroup), and in its state. Lowering\n"
	     "memory below what the sandbox uses now is refused, and nothing changes.\n",
    .opts = resize_opts,
    ONE_SANDBOX,
    .fn = cmd_resize,
};

int cmd_resize(int argc, char **argv)
{
	ac_resize_t rs = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_resize, argc, argv, &rs, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	if (!rs.memory_set && !rs.cpus_set && !rs.pids_set)
		return cli_usage("resize", "nothing to change: give --memory, --cpus or --pids");
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	bool applied = false;
	int rc = ac_manager_resize(m, name, &rs, &applied, &e);
	json_t *st = NULL;
	if (rc == 0)
		ac_manager_info(m, name, &st, NULL);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	long long mb = ac_state_int(st, "memory_mb", 0);
	char mem[32];
	if (mb)
		snprintf(mem, sizeof(mem), "%lld MB", mb);
	else
		snprintf(mem, sizeof(mem), "unlimited");
	printf("%s: memory %s, cpus %g, pids %lld (%s)\n", name, mem,
	       ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1)),
	       ac_state_int(st, "pids_limit", 0),
	       applied ? "applied to the running sandbox" : "recorded; applies at the next start");
	json_decref(st);
	return 0;
}

/* ------------------------------------------------------------------ audit, metrics */

static void print_audit(const json_t *recs)
{
	size_t i;
	json_t *it;
	json_array_foreach(recs, i, it)
	{
		char *d = json_dumps(json_object_get(it, "details"), JSON_COMPACT | JSON_SORT_KEYS |
									 JSON_ENCODE_ANY |
									 JSON_REAL_PRECISION(10));
		printf("%-24s %-15s %-24s %s\n", ac_state_str(it, "timestamp", "?"),
		       ac_state_str(it, "event", "?"), ac_state_str(it, "sandbox", "-"),
		       d ? d : "{}");
		free(d);
	}
}

typedef struct audit_state {
	const char *sandbox;
	uint64_t limit;
	bool json;
} audit_state_t;

static cli_status_t opt_sandbox(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (cli_check_name(cmd, v) != CLI_OK)
		return CLI_USAGE_ERROR;
	*(const char **)t = v;
	return CLI_OK;
}

cli_status_t cli_opt_limit(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (ac_parse_u64(v, 1, 1000000, t) < 0)
		return cli_usage_error(cmd,
				       "invalid --limit '%s': expected a whole number from 1 to "
				       "1000000",
				       v);
	return CLI_OK;
}

static const cli_opt_t audit_opts[] = {
    CLI_FN("--sandbox", 0, "NAME", "only the events of sandbox NAME", opt_sandbox, audit_state_t,
	   sandbox),
    CLI_FN("--limit", 0, "N", "only the last N events", cli_opt_limit, audit_state_t, limit),
    CLI_FLAG("--json", 0, "a JSON array of {timestamp, event, sandbox, details}", audit_state_t,
	     json),
    CLI_END,
};

const cli_command_t cli_cmd_audit = {
    .name = "audit",
    .summary = "show the audit log",
    .synopsis = "[--sandbox NAME] [--limit N] [--json]",
    .about = "Shows the audit log ($AGENTCELL_HOME/audit.jsonl), oldest first: creations, starts,\n"
	     "stops, removals, commands with their exit codes, lifecycle actions, changes and\n"
	     "errors. Environment values are never recorded.\n",
    .opts = audit_opts,
    .fn = cmd_audit,
};

int cmd_audit(int argc, char **argv)
{
	audit_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_audit, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *recs = NULL;
	ac_error_t *e = NULL;
	int rc = ac_audit_read(m, op.sandbox, (size_t)op.limit, &recs, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(recs, op.json, print_audit);
}

const cli_command_t cli_cmd_metrics = {
    .name = "metrics",
    .summary = "print metrics in the Prometheus text format",
    .about = "Prints sandboxes by status and counters and histograms derived from the audit log\n"
	     "(commands, events, durations) in the Prometheus text format.\n",
    .fn = cmd_metrics,
};

int cmd_metrics(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_metrics, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	char *text = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_metrics(m, &text, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	fputs(text, stdout);
	free(text);
	return 0;
}
