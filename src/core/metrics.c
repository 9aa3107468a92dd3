/* Prometheus metrics (GET /metrics, agentcell metrics): sandboxes by status from the
 * manager, counters and histograms from the audit log (audit.c). It lists sandboxes, so it
 * sits above the manager, not beside the log. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "agentcell/manager.h"
#include "base/io.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

/* ------------------------------------------------------------------ metrics */

static const double hist_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				     0.5,   1,	    2.5,   5,	 10,	30,   60,  300};
#define NBOUNDS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))

typedef struct hist {
	unsigned long long bucket[NBOUNDS]; /* not cumulative */
	unsigned long long count;
	double sum;
} hist_t;

static void hist_add(hist_t *h, double secs)
{
	for (size_t i = 0; i < NBOUNDS; i++)
		if (secs <= hist_bounds[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum += secs;
}

static const char *lifecycle_ops[][2] = {
    {"created", "create"}, {"started", "start"}, {"stopped", "stop"}, {"removed", "remove"}};
#define NOPS (sizeof(lifecycle_ops) / sizeof(lifecycle_ops[0]))

struct metrics_arg {
	json_t *events; /* event -> count */
	unsigned long long exec_total, exec_failed;
	hist_t exec;
	hist_t ops[NOPS];
};

static void metrics_one(json_t *rec, void *arg)
{
	struct metrics_arg *a = arg;
	const char *ev = ac_state_str(rec, "event", "");
	json_t *c = json_object_get(a->events, ev);
	json_object_set_new(a->events, ev, json_integer(c ? json_integer_value(c) + 1 : 1));
	json_t *d = json_object_get(rec, "details");
	json_t *dur = json_object_get(d, "duration_ms");
	bool has_dur = json_is_number(dur) && json_number_value(dur) >= 0;
	double secs = has_dur ? json_number_value(dur) / 1000.0 : 0;
	if (strcmp(ev, "exec") == 0) {
		a->exec_total++;
		json_t *code = json_object_get(d, "exit_code");
		if (!json_is_integer(code) || json_integer_value(code) != 0)
			a->exec_failed++;
		if (has_dur)
			hist_add(&a->exec, secs);
		return;
	}
	for (size_t i = 0; i < NOPS; i++)
		if (has_dur && strcmp(ev, lifecycle_ops[i][0]) == 0)
			hist_add(&a->ops[i], secs);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* A label value in the exposition format: backslash, quote and newline escaped. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_hist(FILE *f, const char *metric, const char *labels, const hist_t *h)
{
	unsigned long long cum = 0;
	for (size_t i = 0; i < NBOUNDS; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", metric, labels, *labels ? "," : "",
			hist_bounds[i], cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", metric, labels, *labels ? "," : "",
		h->count);
	fprintf(f, "%s_sum%s%s%s %.6f\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "",
		h->sum);
	fprintf(f, "%s_count%s%s%s %llu\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "",
		h->count);
}

int ac_manager_metrics(ac_manager_t *m, char **text, ac_error_t **err)
{
	json_t *all = NULL;
	if (ac_manager_list(m, &all, err) < 0)
		return -1;
	unsigned long long running = 0, stopped = 0, archived = 0;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		const char *s = ac_state_str(st, "status", "");
		if (strcmp(s, "running") == 0)
			running++;
		else if (strcmp(s, "archived") == 0)
			archived++;
		else
			stopped++;
	}
	json_decref(all);

	struct metrics_arg a = {.events = json_object()};
	if (ac_audit_each(m, metrics_one, &a, err) < 0) {
		json_decref(a.events);
		return -1;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		json_decref(a.events);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "out of memory");
	}
	fputs("# HELP agentcell_sandboxes Sandboxes by status.\n"
	      "# TYPE agentcell_sandboxes gauge\n",
	      f);
	fprintf(f, "agentcell_sandboxes{status=\"running\"} %llu\n", running);
	fprintf(f, "agentcell_sandboxes{status=\"stopped\"} %llu\n", stopped);
	fprintf(f, "agentcell_sandboxes{status=\"archived\"} %llu\n", archived);
	fputs("# HELP agentcell_exec_total Commands run in sandboxes (exec and run).\n"
	      "# TYPE agentcell_exec_total counter\n",
	      f);
	fprintf(f, "agentcell_exec_total %llu\n", a.exec_total);
	fputs("# HELP agentcell_exec_failed_total Commands that exited non-zero or failed to "
	      "start.\n"
	      "# TYPE agentcell_exec_failed_total counter\n",
	      f);
	fprintf(f, "agentcell_exec_failed_total %llu\n", a.exec_failed);
	fputs("# HELP agentcell_events_total Audit events by type.\n"
	      "# TYPE agentcell_events_total counter\n",
	      f);
	/* Sorted, so the output is stable. */
	size_t n = json_object_size(a.events), k = 0;
	const char **keys = calloc(n + 1, sizeof(char *));
	const char *key;
	json_t *v;
	json_object_foreach(a.events, key, v) if (keys) keys[k++] = key;
	if (keys)
		qsort(keys, k, sizeof(char *), cmp_str);
	for (size_t j = 0; j < k; j++) {
		fputs("agentcell_events_total{event=\"", f);
		put_label(f, keys[j]);
		fprintf(f, "\"} %lld\n",
			(long long)json_integer_value(json_object_get(a.events, keys[j])));
	}
	free(keys);
	fputs("# HELP agentcell_exec_duration_seconds Duration of commands run in sandboxes.\n"
	      "# TYPE agentcell_exec_duration_seconds histogram\n",
	      f);
	put_hist(f, "agentcell_exec_duration_seconds", "", &a.exec);
	fputs("# HELP agentcell_lifecycle_duration_seconds Duration of sandbox lifecycle "
	      "operations.\n"
	      "# TYPE agentcell_lifecycle_duration_seconds histogram\n",
	      f);
	for (size_t j = 0; j < NOPS; j++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "operation=\"%s\"", lifecycle_ops[j][1]);
		put_hist(f, "agentcell_lifecycle_duration_seconds", labels, &a.ops[j]);
	}
	json_decref(a.events);
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	*text = buf;
	return 0;
}
