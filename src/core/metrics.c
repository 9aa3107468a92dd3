/* Prometheus metrics (GET /metrics, agentcell metrics): sandboxes by status from the
 * manager, counters and histograms from the audit log (audit.c). It lists sandboxes, so it
 * sits above the manager, not beside the log.
 *
 * Beside ours, agentkernel's families with its names, labels and buckets, from the same
 * figures (a replay of the log, so every process's records count, not only this one's):
 * agentkernel_sandbox_lifecycle_total{action,backend} = agentcell_events_total of created,
 * started, stopped, removed; agentkernel_commands_total{backend} = agentcell_exec_total;
 * agentkernel_sandboxes_active = all sandboxes listed; agentkernel_build_info. The HTTP
 * families are the server's own (src/api/reqstats.c). GET /stats (ac_manager_stats) reads
 * the same replay. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/manager.h"
#include "agentcell/metrics.h"
#include "base/io.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

/* ------------------------------------------------------------------ metrics */

static const double hist_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				     0.5,   1,	    2.5,   5,	 10,	30,   60,  300};
#define NBOUNDS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))
/* agentkernel's buckets (its metrics.rs). */
static const double ak_lifecycle_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double ak_command_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define BOUNDS_MAX 16

typedef struct hist {
	unsigned long long bucket[BOUNDS_MAX]; /* not cumulative */
	unsigned long long count;
	double sum;
	const double *bounds; /* NULL: hist_bounds */
	size_t nb;
} hist_t;

static void hist_add(hist_t *h, double secs)
{
	const double *b = h->bounds ? h->bounds : hist_bounds;
	size_t nb = h->bounds ? h->nb : NBOUNDS;
	for (size_t i = 0; i < nb; i++)
		if (secs <= b[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum += secs;
}

static const char *lifecycle_ops[][2] = {
    {"created", "create"}, {"started", "start"}, {"stopped", "stop"}, {"removed", "remove"}};
#define NOPS (sizeof(lifecycle_ops) / sizeof(lifecycle_ops[0]))

/* One backend's counter and histogram of an agentkernel family. */
typedef struct ak_series {
	char backend[32];
	unsigned long long total;
	hist_t hist;
} ak_series_t;

#define AK_BACKENDS_MAX 16 /* more distinct backends than this share the last series */

typedef struct ak_family {
	ak_series_t s[AK_BACKENDS_MAX];
	size_t n;
} ak_family_t;

static ak_series_t *ak_series(ak_family_t *f, const char *backend, const double *bounds, size_t nb)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->s[i].backend, backend))
			return &f->s[i];
	if (f->n == AK_BACKENDS_MAX)
		return &f->s[AK_BACKENDS_MAX - 1];
	ak_series_t *s = &f->s[f->n++];
	snprintf(s->backend, sizeof(s->backend), "%s", backend);
	s->hist.bounds = bounds;
	s->hist.nb = nb;
	return s;
}

struct metrics_arg {
	json_t *events; /* event -> count */
	unsigned long long exec_total, exec_failed;
	hist_t exec;
	hist_t ops[NOPS];
	/* agentkernel's families */
	json_t *backend_of; /* sandbox -> backend: created records, then the states */
	ak_family_t lifecycle[NOPS];
	ak_family_t commands;
	/* GET /stats (agentkernel's stats.rs) */
	int64_t since_30d;
	unsigned long long exec_30d, created, removed;
	json_t *alive;	  /* sandbox -> true (created, not removed) */
	json_t *images;	  /* image -> count (created) */
	json_t *backends; /* backend -> count (created) */
	char first[11], last[11];
	unsigned long long known; /* sandboxes listed */
	unsigned long long running, stopped, archived;
};

static const char *backend_for(struct metrics_arg *a, const char *sandbox)
{
	const char *b = json_string_value(json_object_get(a->backend_of, sandbox ? sandbox : ""));
	return b ? b : "native";
}

static void count_in(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	json_object_set_new(o, key, json_integer(c ? json_integer_value(c) + 1 : 1));
}

static void metrics_one(json_t *rec, void *arg)
{
	struct metrics_arg *a = arg;
	const char *ev = ac_state_str(rec, "event", "");
	const char *sb = ac_state_str(rec, "sandbox", NULL);
	const char *ts = ac_state_str(rec, "timestamp", "");
	count_in(a->events, ev);
	if (strlen(ts) >= 10) {
		if (!a->first[0])
			snprintf(a->first, sizeof(a->first), "%.10s", ts);
		snprintf(a->last, sizeof(a->last), "%.10s", ts);
	}
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
		ak_series_t *s = ak_series(&a->commands, backend_for(a, sb), ak_command_bounds,
					   AC_ARRAY_SIZE(ak_command_bounds));
		s->total++;
		if (has_dur)
			hist_add(&s->hist, secs);
		int64_t ms;
		if (ac_time_parse_rfc3339(ts, &ms) == 0 && ms >= a->since_30d)
			a->exec_30d++;
		return;
	}
	if (strcmp(ev, "created") == 0 && sb) {
		const char *b = ac_state_str(d, "backend", NULL);
		if (b)
			json_object_set_new(a->backend_of, sb, json_string(b));
		a->created++;
		json_object_set_new(a->alive, sb, json_true());
		count_in(a->images, ac_state_str(d, "image", ""));
		count_in(a->backends, backend_for(a, sb));
	} else if (strcmp(ev, "removed") == 0 && sb) {
		a->removed++;
		json_object_del(a->alive, sb);
	}
	for (size_t i = 0; i < NOPS; i++) {
		if (strcmp(ev, lifecycle_ops[i][0]) != 0)
			continue;
		if (has_dur)
			hist_add(&a->ops[i], secs);
		ak_series_t *s = ak_series(&a->lifecycle[i], backend_for(a, sb),
					   ak_lifecycle_bounds, AC_ARRAY_SIZE(ak_lifecycle_bounds));
		s->total++;
		if (has_dur)
			hist_add(&s->hist, secs);
	}
}

static void metrics_free(struct metrics_arg *a)
{
	json_decref(a->events);
	json_decref(a->backend_of);
	json_decref(a->alive);
	json_decref(a->images);
	json_decref(a->backends);
}

/* The listing and the replay behind the metrics and /stats. */
static int metrics_collect(ac_manager_t *m, struct metrics_arg *a, ac_error_t **err)
{
	*a = (struct metrics_arg){.events = json_object(),
				  .backend_of = json_object(),
				  .alive = json_object(),
				  .images = json_object(),
				  .backends = json_object(),
				  .since_30d = ac_time_now_ms() - 30LL * 86400 * 1000};
	json_t *all = NULL;
	if (ac_manager_list(m, &all, err) < 0)
		return -1;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		const char *s = ac_state_str(st, "status", "");
		if (strcmp(s, "running") == 0)
			a->running++;
		else if (strcmp(s, "archived") == 0)
			a->archived++;
		else
			a->stopped++;
		a->known++;
		/* Records older than the backend field of "created" name none. */
		json_object_set_new(a->backend_of, ac_state_str(st, "name", ""),
				    json_string(ac_state_str(st, "backend", "native")));
	}
	json_decref(all);
	return ac_audit_each(m, metrics_one, a, err);
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
	const double *b = h->bounds ? h->bounds : hist_bounds;
	size_t nb = h->bounds ? h->nb : NBOUNDS;
	unsigned long long cum = 0;
	for (size_t i = 0; i < nb; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", metric, labels, *labels ? "," : "",
			b[i], cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", metric, labels, *labels ? "," : "",
		h->count);
	fprintf(f, "%s_sum%s%s%s %.6f\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "",
		h->sum);
	fprintf(f, "%s_count%s%s%s %llu\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "",
		h->count);
}

/* The label list of one agentkernel series: [action="...",]backend="...". */
static void ak_labels(char *buf, size_t size, const char *action, const char *backend)
{
	char *p = buf;
	size_t left = size;
	int n = action ? snprintf(p, left, "action=\"%s\",", action) : 0;
	if (n < 0 || (size_t)n >= left)
		n = 0;
	p += n;
	left -= (size_t)n;
	n = snprintf(p, left, "backend=\"");
	p += n;
	left -= (size_t)n;
	for (const char *c = backend; *c && left > 4; c++) {
		if (*c == '\\' || *c == '"') {
			*p++ = '\\';
			left--;
		}
		if (*c == '\n') {
			*p++ = '\\';
			*p++ = 'n';
			left -= 2;
			continue;
		}
		*p++ = *c;
		left--;
	}
	*p++ = '"';
	*p = '\0';
}

static void put_agentkernel(FILE *f, const struct metrics_arg *a)
{
	char labels[160];
	fputs("# HELP agentkernel_sandbox_lifecycle_total Sandbox lifecycle events\n"
	      "# TYPE agentkernel_sandbox_lifecycle_total counter\n",
	      f);
	for (size_t j = 0; j < NOPS; j++)
		for (size_t k = 0; k < a->lifecycle[j].n; k++) {
			const ak_series_t *s = &a->lifecycle[j].s[k];
			ak_labels(labels, sizeof(labels), lifecycle_ops[j][0], s->backend);
			fprintf(f, "agentkernel_sandbox_lifecycle_total{%s} %llu\n", labels,
				s->total);
		}
	fputs("# HELP agentkernel_sandbox_lifecycle_duration_seconds Sandbox lifecycle "
	      "operation latency in seconds\n"
	      "# TYPE agentkernel_sandbox_lifecycle_duration_seconds histogram\n",
	      f);
	for (size_t j = 0; j < NOPS; j++)
		for (size_t k = 0; k < a->lifecycle[j].n; k++) {
			const ak_series_t *s = &a->lifecycle[j].s[k];
			ak_labels(labels, sizeof(labels), lifecycle_ops[j][0], s->backend);
			put_hist(f, "agentkernel_sandbox_lifecycle_duration_seconds", labels,
				 &s->hist);
		}
	fputs("# HELP agentkernel_sandboxes_active Number of currently known sandboxes\n"
	      "# TYPE agentkernel_sandboxes_active gauge\n",
	      f);
	fprintf(f, "agentkernel_sandboxes_active %llu\n", a->known);
	fputs("# HELP agentkernel_commands_total Total commands executed\n"
	      "# TYPE agentkernel_commands_total counter\n",
	      f);
	for (size_t k = 0; k < a->commands.n; k++) {
		ak_labels(labels, sizeof(labels), NULL, a->commands.s[k].backend);
		fprintf(f, "agentkernel_commands_total{%s} %llu\n", labels, a->commands.s[k].total);
	}
	fputs("# HELP agentkernel_command_duration_seconds Command execution latency in "
	      "seconds\n"
	      "# TYPE agentkernel_command_duration_seconds histogram\n",
	      f);
	for (size_t k = 0; k < a->commands.n; k++) {
		ak_labels(labels, sizeof(labels), NULL, a->commands.s[k].backend);
		put_hist(f, "agentkernel_command_duration_seconds", labels, &a->commands.s[k].hist);
	}
	fputs("# HELP agentkernel_build_info Build metadata\n"
	      "# TYPE agentkernel_build_info gauge\n",
	      f);
	fprintf(f, "agentkernel_build_info{version=\"%s\"} 1\n", AGENTCELL_VERSION);
}

int ac_manager_metrics(ac_manager_t *m, char **text, ac_error_t **err)
{
	struct metrics_arg a;
	if (metrics_collect(m, &a, err) < 0) {
		metrics_free(&a);
		return -1;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		metrics_free(&a);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "out of memory");
	}
	fputs("# HELP agentcell_sandboxes Sandboxes by status.\n"
	      "# TYPE agentcell_sandboxes gauge\n",
	      f);
	fprintf(f, "agentcell_sandboxes{status=\"running\"} %llu\n", a.running);
	fprintf(f, "agentcell_sandboxes{status=\"stopped\"} %llu\n", a.stopped);
	fprintf(f, "agentcell_sandboxes{status=\"archived\"} %llu\n", a.archived);
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
	put_agentkernel(f, &a);
	metrics_free(&a);
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	*text = buf;
	return 0;
}

/* ------------------------------------------------------------------ GET /stats */

/* The first line of /proc/stat: all CPU time and the idle part, in ticks. */
static bool cpu_times(unsigned long long *total, unsigned long long *idle)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return false;
	unsigned long long v[8] = {0};
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*idle = v[3] + v[4];
	return true;
}

static double cpu_percent(unsigned sample_ms)
{
	unsigned long long t0, i0, t1, i1;
	if (!cpu_times(&t0, &i0))
		return 0;
	struct timespec ts = {sample_ms / 1000, (long)(sample_ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	if (!cpu_times(&t1, &i1) || t1 <= t0)
		return 0;
	double busy = (double)((t1 - t0) - (i1 - i0)) / (double)(t1 - t0);
	return (double)(long long)(busy * 10000.0 + 0.5) / 100.0;
}

/* MemTotal and MemTotal - MemAvailable, in MiB. */
static void memory_mb(unsigned long long *total, unsigned long long *used)
{
	*total = *used = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return;
	char line[256];
	unsigned long long kb, tot = 0, avail = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			tot = kb;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			avail = kb;
	}
	fclose(f);
	*total = tot / 1024;
	*used = (tot > avail ? tot - avail : 0) / 1024;
}

static int cmp_count(const void *x, const void *y)
{
	const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
	json_int_t ca = json_integer_value(json_array_get(a, 1)),
		   cb = json_integer_value(json_array_get(b, 1));
	if (ca != cb)
		return ca < cb ? 1 : -1;
	return strcmp(json_string_value(json_array_get(a, 0)),
		      json_string_value(json_array_get(b, 0)));
}

/* agentkernel's top_images / top_backends: [[key, count], ...], most first, at most 5. */
static json_t *top5(json_t *counts)
{
	size_t n = json_object_size(counts), k = 0;
	json_t **pairs = calloc(n + 1, sizeof(json_t *));
	json_t *out = json_array();
	const char *key;
	json_t *v;
	if (!pairs)
		return out;
	json_object_foreach(counts, key, v) pairs[k++] =
	    json_pack("[sI]", key, json_integer_value(v));
	qsort(pairs, k, sizeof(json_t *), cmp_count);
	for (size_t i = 0; i < k; i++) {
		if (i < 5)
			json_array_append(out, pairs[i]);
		json_decref(pairs[i]);
	}
	free(pairs);
	return out;
}

int ac_manager_stats(ac_manager_t *m, double uptime_s, unsigned cpu_sample_ms, json_t **out,
		     ac_error_t **err)
{
	struct metrics_arg a;
	if (metrics_collect(m, &a, err) < 0) {
		metrics_free(&a);
		return -1;
	}
	unsigned long long mem_total, mem_used, disk_used = 0;
	memory_mb(&mem_total, &mem_used);
	struct statvfs vfs;
	if (statvfs("/", &vfs) == 0)
		disk_used = (unsigned long long)(vfs.f_blocks - vfs.f_bavail) * vfs.f_frsize /
			    (1024 * 1024);
	double cpu = cpu_percent(cpu_sample_ms);
	json_t *usage = json_pack("{sf sI sI sI}", "cpu_percent", cpu, "memory_used_mb",
				  (json_int_t)mem_used, "memory_total_mb", (json_int_t)mem_total,
				  "disk_used_mb", (json_int_t)disk_used);
	/* agentkernel's Stats of stats.rs, as serde writes it. */
	json_t *analytics = json_pack(
	    "{sI sI sI sI sI so so ss? ss?}", "total_executions", (json_int_t)a.exec_total,
	    "executions_last_30d", (json_int_t)a.exec_30d, "sandboxes_created",
	    (json_int_t)a.created, "sandboxes_removed", (json_int_t)a.removed, "sandboxes_active",
	    (json_int_t)json_object_size(a.alive), "top_images", top5(a.images), "top_backends",
	    top5(a.backends), "first_entry", a.first[0] ? a.first : NULL, "last_entry",
	    a.last[0] ? a.last : NULL);
	json_t *s = json_pack("{sI sI ss sI ss so so}", "sandbox_count", (json_int_t)a.known,
			      "sandbox_limit", (json_int_t)0, "backend", "native", "uptime_seconds",
			      (json_int_t)(uptime_s > 0 ? uptime_s : 0), "version",
			      AGENTCELL_VERSION, "resource_usage", usage, "stats", analytics);
	metrics_free(&a);
	if (!s)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	*out = s;
	return 0;
}
