/* agentcell extend | gc | policy | reconcile | recover | label | describe | resize | audit |
 * metrics, and the lifetime options of create and run --keep. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/util.h"
#include "cli/cli.h"

#define HELP_SHOWN (-1000)

static bool is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int duration_opt(const char *cmd, const char *opt, const char *v, uint64_t *out)
{
	if (ac_duration_parse(v, out) < 0)
		return -cli_usage(cmd,
				  "invalid %s '%s': expected a positive duration such as 90s, 30m, "
				  "2h, 1d or 3600 (seconds), at most 100 years",
				  opt, v);
	return 1;
}

static int check_name(const char *cmd, const char *name)
{
	if (!name)
		return -cli_usage(cmd, "no sandbox name given");
	if (!ac_name_valid(name))
		return -cli_usage(cmd,
				  "invalid sandbox name '%s': use 1-63 characters of A-Z a-z 0-9 _ "
				  "-, starting and ending with a letter or digit",
				  name);
	return 0;
}

static int label_arg(const char *cmd, const char *kv)
{
	char key[AC_LABEL_KEY_MAX + 1];
	const char *v;
	ac_error_t *e = NULL;
	if (ac_label_parse(kv, key, sizeof(key), &v, &e) < 0) {
		int r = cli_usage(cmd, "%s", e->msg);
		ac_error_free(e);
		return -r;
	}
	return 0;
}

/* Opens the manager; NULL with *code set on failure. */
static ac_manager_t *open_manager(bool need_root, int *code)
{
	/* The native backend itself refuses what needs root (a container engine does not). */
	(void)need_root;
	return cli_manager(code);
}

int cli_parse_lifetime_opt(const char *cmd, int argc, char **argv, int *i, cli_sandbox_opts_t *so)
{
	static const char *const durations[] = {"--ttl", "--auto-stop-after",
						"--auto-archive-after", "--auto-delete-after"};
	uint64_t *targets[] = {&so->o.ttl_seconds, &so->o.auto_stop_after,
			       &so->o.auto_archive_after, &so->o.auto_delete_after};
	const char *v;
	int r;
	for (size_t k = 0; k < AC_ARRAY_SIZE(durations); k++) {
		if ((r = cli_opt_value(cmd, argc, argv, i, durations[k], &v)) == 0)
			continue;
		if (r < 0)
			return r;
		if (!so->lifetime_opt)
			so->lifetime_opt = durations[k];
		return duration_opt(cmd, durations[k], v, targets[k]);
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--label", &v)) != 0) {
		if (r < 0)
			return r;
		if (!so->lifetime_opt)
			so->lifetime_opt = "--label";
		if ((r = label_arg(cmd, v)) < 0)
			return r;
		size_t klen = (size_t)(strchr(v, '=') - v);
		for (int k = 0; k < so->nlabels; k++)
			if (!strncmp(so->labels[k], v, klen + 1))
				return -cli_usage(cmd, "label '%.*s' is given twice", (int)klen, v);
		if (so->nlabels >= AC_LABELS_MAX)
			return -cli_usage(cmd, "too many --label options (at most %d)",
					  AC_LABELS_MAX);
		so->labels[so->nlabels++] = (char *)v;
		so->labels[so->nlabels] = NULL;
		so->o.labels = so->labels;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ extend */

int cmd_extend(int argc, char **argv)
{
	const char *name = NULL, *v;
	uint64_t by = 0;
	int r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_help(a))
			return cli_help("extend");
		if ((r = cli_opt_value("extend", argc, argv, &i, "--by", &v)) != 0) {
			if (r < 0 || (r = duration_opt("extend", "--by", v, &by)) < 0)
				return -r;
			continue;
		}
		if (a[0] == '-' && a[1])
			return cli_usage("extend", "unknown option '%s'", a);
		if (name)
			return cli_usage("extend", "unexpected argument '%s'", a);
		name = a;
	}
	if ((r = check_name("extend", name)) < 0)
		return -r;
	if (!by)
		return cli_usage("extend", "give the extension with --by, e.g. --by 1h");
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
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

/* Parses commands whose only options are flags (given as name/pointer pairs). */
static int flags_only(const char *cmd, int argc, char **argv, const char *const *names,
		      bool *const *flags, size_t n)
{
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			cli_help(cmd);
			return HELP_SHOWN;
		}
		size_t k = 0;
		for (; k < n; k++)
			if (!strcmp(argv[i], names[k])) {
				*flags[k] = true;
				break;
			}
		if (k < n)
			continue;
		if (argv[i][0] == '-')
			return -cli_usage(cmd, "unknown option '%s'", argv[i]);
		return -cli_usage(cmd, "unexpected argument '%s'", argv[i]);
	}
	return 0;
}

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

int cmd_gc(int argc, char **argv)
{
	bool json = false;
	int r = flags_only("gc", argc, argv, (const char *const[]){"--json"},
			   (bool *const[]){&json}, 1);
	if (r == HELP_SHOWN)
		return 0;
	if (r < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(true, &code);
	if (!m)
		return code;
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
		    fprintf(stderr, "agentcell: removed %s %s (%s)\n", ac_state_str(f, "kind", "?"),
			    ac_state_str(f, "path", "?"), ac_state_str(f, "why", "?"));
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

int cmd_policy(int argc, char **argv)
{
	static const char *const names[] = {"--auto-stop-after", "--auto-archive-after",
					    "--auto-delete-after"};
	ac_policy_change_t c = {false, -1, -1, -1};
	int64_t *fields[] = {&c.auto_stop_after, &c.auto_archive_after, &c.auto_delete_after};
	const char *name = NULL, *v;
	bool json = false, change = false;
	int r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_help(a))
			return cli_help("policy");
		if (!strcmp(a, "--clear")) {
			c.clear = change = true;
			continue;
		}
		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		size_t k = 0;
		for (; k < AC_ARRAY_SIZE(names); k++) {
			if ((r = cli_opt_value("policy", argc, argv, &i, names[k], &v)) == 0)
				continue;
			if (r < 0)
				return -r;
			uint64_t secs = 0;
			if (strcmp(v, "none") != 0 &&
			    (r = duration_opt("policy", names[k], v, &secs)) < 0)
				return -r;
			*fields[k] = (int64_t)secs;
			change = true;
			break;
		}
		if (k < AC_ARRAY_SIZE(names))
			continue;
		if (a[0] == '-' && a[1])
			return cli_usage("policy", "unknown option '%s'", a);
		if (name)
			return cli_usage("policy", "unexpected argument '%s'", a);
		name = a;
	}
	if ((r = check_name("policy", name)) < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
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

int cmd_reconcile(int argc, char **argv)
{
	bool json = false, dry = false;
	int r = flags_only("reconcile", argc, argv, (const char *const[]){"--json", "--dry-run"},
			   (bool *const[]){&json, &dry}, 2);
	if (r == HELP_SHOWN)
		return 0;
	if (r < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(true, &code);
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

int cmd_recover(int argc, char **argv)
{
	const char *name = NULL;
	int r;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return cli_help("recover");
		if (argv[i][0] == '-' && argv[i][1])
			return cli_usage("recover", "unknown option '%s'", argv[i]);
		if (name)
			return cli_usage("recover", "unexpected argument '%s'", argv[i]);
		name = argv[i];
	}
	if ((r = check_name("recover", name)) < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
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

int cmd_label(int argc, char **argv)
{
	char *set[AC_LABELS_MAX + 1] = {0}, *rm[AC_LABELS_MAX + 1] = {0};
	int nset = 0, nrm = 0, r;
	const char *name = NULL, *v;
	bool json = false, opts = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts && is_help(a))
			return cli_help("label");
		if (opts && !strcmp(a, "--")) {
			opts = false;
			continue;
		}
		if (opts && !strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if (opts && (r = cli_opt_value("label", argc, argv, &i, "--remove", &v)) != 0) {
			if (r < 0)
				return -r;
			if (!ac_label_key_valid(v))
				return cli_usage("label",
						 "invalid label key '%.80s': use 1-63 of A-Z a-z "
						 "0-9 . _ / -",
						 v);
			if (nrm >= AC_LABELS_MAX)
				return cli_usage("label", "too many --remove options");
			rm[nrm++] = (char *)v;
			continue;
		}
		if (opts && a[0] == '-' && a[1])
			return cli_usage("label", "unknown option '%s'", a);
		if (!name) {
			name = a;
			continue;
		}
		if ((r = label_arg("label", a)) < 0)
			return -r;
		if (nset >= AC_LABELS_MAX)
			return cli_usage("label", "too many labels (at most %d)", AC_LABELS_MAX);
		set[nset++] = (char *)a;
	}
	if ((r = check_name("label", name)) < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	json_t *labels = NULL;
	int rc;
	if (nset || nrm) {
		rc = ac_manager_set_labels(m, name, set, rm, &labels, &e);
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
	return cli_show(labels, json, print_labels);
}

int cmd_describe(int argc, char **argv)
{
	const char *name = NULL, *text = NULL;
	bool opts = true;
	int r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts && is_help(a))
			return cli_help("describe");
		if (opts && !strcmp(a, "--")) {
			opts = false;
			continue;
		}
		if (opts && a[0] == '-' && a[1])
			return cli_usage("describe", "unknown option '%s'", a);
		if (!name)
			name = a;
		else if (!text)
			text = a;
		else
			return cli_usage("describe",
					 "unexpected argument '%s' (quote the description)", a);
	}
	if ((r = check_name("describe", name)) < 0)
		return -r;
	if (!text)
		return cli_usage("describe", "no description given (an empty one clears it)");
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
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

int cmd_resize(int argc, char **argv)
{
	ac_resize_t rs = {0};
	const char *name = NULL, *v;
	int r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_help(a))
			return cli_help("resize");
		if ((r = cli_opt_value("resize", argc, argv, &i, "--memory", &v)) != 0) {
			if (r < 0)
				return -r;
			if (ac_parse_u64(v, AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB, &rs.memory_mb) < 0)
				return cli_usage("resize",
						 "invalid --memory '%s': expected a whole number "
						 "from %llu to %llu",
						 v, AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB);
			rs.memory_set = true;
			continue;
		}
		if ((r = cli_opt_value("resize", argc, argv, &i, "--disk", &v)) != 0)
			return r < 0
				   ? -r
				   : cli_usage("resize",
					       "--disk cannot be changed: a sandbox's disk size is "
					       "fixed when it is made (copy its files into a new "
					       "sandbox made with the size you need)");
		if ((r = cli_opt_value("resize", argc, argv, &i, "--pids", &v)) != 0) {
			if (r < 0)
				return -r;
			if (ac_parse_u64(v, AC_PIDS_MIN, AC_PIDS_MAX, &rs.pids) < 0)
				return cli_usage(
				    "resize",
				    "invalid --pids '%s': expected a whole number from "
				    "%llu to %llu",
				    v, AC_PIDS_MIN, AC_PIDS_MAX);
			rs.pids_set = true;
			continue;
		}
		if ((r = cli_opt_value("resize", argc, argv, &i, "--cpus", &v)) != 0) {
			if (r < 0)
				return -r;
			char *end;
			errno = 0;
			double d = strtod(v, &end);
			if (!*v || *end || errno || !(d >= AC_CPUS_MIN && d <= AC_CPUS_MAX))
				return cli_usage(
				    "resize",
				    "invalid --cpus '%s': expected a number from 0.01 to 1024", v);
			rs.cpus = d;
			rs.cpus_set = true;
			continue;
		}
		if (a[0] == '-' && a[1])
			return cli_usage("resize", "unknown option '%s'", a);
		if (name)
			return cli_usage("resize", "unexpected argument '%s'", a);
		name = a;
	}
	if ((r = check_name("resize", name)) < 0)
		return -r;
	if (!rs.memory_set && !rs.cpus_set && !rs.pids_set)
		return cli_usage("resize", "nothing to change: give --memory, --cpus or --pids");
	int code = 0;
	ac_manager_t *m = open_manager(true, &code);
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

int cmd_audit(int argc, char **argv)
{
	const char *sandbox = NULL, *v;
	uint64_t limit = 0;
	bool json = false;
	int r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_help(a))
			return cli_help("audit");
		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if ((r = cli_opt_value("audit", argc, argv, &i, "--sandbox", &v)) != 0) {
			if (r < 0 || (r = check_name("audit", v)) < 0)
				return -r;
			sandbox = v;
			continue;
		}
		if ((r = cli_opt_value("audit", argc, argv, &i, "--limit", &v)) != 0) {
			if (r < 0)
				return -r;
			if (ac_parse_u64(v, 1, 1000000, &limit) < 0)
				return cli_usage("audit",
						 "invalid --limit '%s': expected a whole number "
						 "from 1 to 1000000",
						 v);
			continue;
		}
		if (a[0] == '-')
			return cli_usage("audit", "unknown option '%s'", a);
		return cli_usage("audit", "unexpected argument '%s'", a);
	}
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
	if (!m)
		return code;
	json_t *recs = NULL;
	ac_error_t *e = NULL;
	int rc = ac_audit_read(m, sandbox, (size_t)limit, &recs, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(recs, json, print_audit);
}

int cmd_metrics(int argc, char **argv)
{
	int r = flags_only("metrics", argc, argv, NULL, NULL, 0);
	if (r == HELP_SHOWN)
		return 0;
	if (r < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = open_manager(false, &code);
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
