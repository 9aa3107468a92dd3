/* The audit log ($AGENTCELL_HOME/audit.jsonl) and the metrics derived from it.
 *
 * One JSON object per line: {"timestamp", "event", "sandbox", "details"}. Writers append
 * with O_APPEND; a line up to PIPE_BUF bytes goes out in one write(2), a longer one under an
 * exclusive flock, so concurrent writers never interleave within a line. Readers skip lines
 * that do not parse (a writer killed mid-line). Environment values are never written. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "agentcell/manager.h"
#include "agentcell/util.h"
#include "core/lifecycle.h"

#define AUDIT_FILE	  "audit.jsonl"
#define AUDIT_ARG_MAX	  256	/* bytes kept of one command argument */
#define AUDIT_CMD_MAX	  2048	/* bytes kept of a whole command */
#define AUDIT_LINE_MAX	  65536 /* longer lines are not ours: skipped when reading */
#define AUDIT_MESSAGE_MAX 512

void ac_audit_clock(struct timespec *t0)
{
	clock_gettime(CLOCK_MONOTONIC, t0);
}

double ac_audit_since_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms =
	    (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
	/* Microsecond precision is plenty and keeps the lines short. */
	return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

json_t *ac_audit_with_duration(json_t *details, const struct timespec *t0)
{
	if (!json_is_object(details)) {
		json_decref(details);
		details = json_object();
	}
	json_object_set_new(details, "duration_ms", json_real(ac_audit_since_ms(t0)));
	return details;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

json_t *ac_audit_string(const char *s, size_t max)
{
	size_t len = strlen(s), o = 0;
	char *buf = malloc((len < max ? len : max) + 1);
	if (buf == NULL)
		return json_string("");
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);
		if (n == 0) {
			if (o + 1 > max)
				break;
			buf[o++] = '?';
			i++;
			continue;
		}
		if (o + n > max)
			break;
		memcpy(buf + o, s + i, n);
		o += n;
		i += n;
	}
	json_t *j = json_stringn(buf, o);
	free(buf);
	return j ? j : json_string("");
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian, eras of 400 years). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468; /* days from 0000-03-01 to 1970-01-01 */
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);			      /* [0, 146096] */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		      /* [0, 365] */
	unsigned mp = (5 * doy + 2) / 153;				      /* March = 0 */
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void ac_audit_timestamp(int64_t ms, char buf[32])
{
	/* Not gmtime_r: glibc reads /etc/localtime on its first call even for UTC, and this
	 * runs once per exec. */
	int64_t secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	int64_t y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	if (y < 0 || y > 9999) {
		ac_time_format_rfc3339(ms, buf);
		return;
	}
	snprintf(buf, 32, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, mo, d, (int)(sod / 3600),
		 (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
}

/* Lost records: counted in this process (the CLI warns) and in audit.errors, one
 * fixed-size record rewritten in place, so that once it exists a full file system still
 * takes the update; doctor reports it. */
#define AUDIT_ERRORS_FILE "audit.errors"
#define AUDIT_ERRORS_SIZE 256

static unsigned lost_here;
static int lost_errno;

unsigned ac_audit_lost(int *errnum)
{
	if (errnum)
		*errnum = lost_errno;
	return __atomic_load_n(&lost_here, __ATOMIC_RELAXED);
}

static void count_lost(ac_manager_t *m, int en, const char *ts)
{
	__atomic_add_fetch(&lost_here, 1, __ATOMIC_RELAXED);
	lost_errno = en;
	int fd = openat(ac_store_home_fd(ac_manager_store(m)), AUDIT_ERRORS_FILE,
			O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (TEMP_FAILURE_RETRY(flock(fd, LOCK_EX)) == 0) {
		char buf[AUDIT_ERRORS_SIZE + 1] = "";
		ssize_t n = pread(fd, buf, AUDIT_ERRORS_SIZE, 0);
		buf[n > 0 ? n : 0] = 0;
		json_t *old = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
		json_int_t count = json_integer_value(json_object_get(old, "count")) + 1;
		const char *since = json_string_value(json_object_get(old, "since"));
		char ebuf[96];
		snprintf(ebuf, sizeof(ebuf), "%s", strerror(en));
		json_t *rec = json_pack("{sI ss ss ss}", "count", count, "since",
					since ? since : ts, "last", ts, "error", ebuf);
		json_decref(old);
		char *j = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
		json_decref(rec);
		if (j && strlen(j) < AUDIT_ERRORS_SIZE) {
			memset(buf, ' ', AUDIT_ERRORS_SIZE);
			memcpy(buf, j, strlen(j));
			buf[AUDIT_ERRORS_SIZE - 1] = '\n';
			(void)!pwrite(fd, buf, AUDIT_ERRORS_SIZE, 0);
		}
		free(j);
	}
	close(fd);
}

json_t *ac_audit_errors(ac_manager_t *m)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (ac_read_file_at(ac_store_home_fd(ac_manager_store(m)), AUDIT_ERRORS_FILE, 4096, &buf,
			    &len, NULL) < 0)
		return NULL;
	json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int ac_audit_log(ac_manager_t *m, const char *event, const char *sandbox, json_t *details)
{
	char ts[32];
	ac_audit_timestamp(ac_time_now_ms(), ts);
	if (!json_is_object(details)) {
		json_decref(details);
		details = json_object();
	}
	json_t *rec = json_pack("{ss ss so so}", "timestamp", ts, "event", event, "sandbox",
				sandbox ? json_string(sandbox) : json_null(), "details", details);
	if (rec == NULL)
		return -1;
	char *text = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(rec);
	if (text == NULL)
		return -1;
	size_t len = strlen(text);
	char *line = realloc(text, len + 2);
	if (line == NULL) {
		free(text);
		return -1;
	}
	line[len++] = '\n';
	line[len] = '\0';
	int fd = openat(ac_store_home_fd(ac_manager_store(m)), AUDIT_FILE,
			O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = -1, en = errno;
	if (fd >= 0) {
		bool locked = false;
		if (len > PIPE_BUF)
			locked = TEMP_FAILURE_RETRY(flock(fd, LOCK_EX)) == 0;
		rc = ac_write_all(fd, line, len);
		en = errno;
		if (locked)
			flock(fd, LOCK_UN);
		close(fd);
	}
	free(line);
	if (rc < 0)
		count_lost(m, en ? en : EIO, ts);
	return rc;
}

void ac_audit_exec(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, const ac_result_t *res,
		   const char *error, const struct timespec *t0)
{
	json_t *argv = json_array();
	size_t total = 0;
	bool truncated = false;
	for (char **a = cmd->argv; a && *a; a++) {
		if (total >= AUDIT_CMD_MAX) {
			truncated = true;
			break;
		}
		size_t left = AUDIT_CMD_MAX - total;
		size_t cap = left < AUDIT_ARG_MAX ? left : AUDIT_ARG_MAX;
		json_t *s = ac_audit_string(*a, cap);
		if (strlen(*a) > json_string_length(s))
			truncated = true;
		total += json_string_length(s) + 1;
		json_array_append_new(argv, s);
	}
	json_t *d = json_pack("{so}", "command", argv);
	if (truncated)
		json_object_set_new(d, "command_truncated", json_true());
	if (cmd->user)
		json_object_set_new(d, "user", ac_audit_string(cmd->user, AUDIT_ARG_MAX));
	if (cmd->cwd)
		json_object_set_new(d, "cwd", ac_audit_string(cmd->cwd, AUDIT_ARG_MAX));
	if (cmd->tty)
		json_object_set_new(d, "tty", json_true());
	if (res) {
		json_object_set_new(d, "exit_code", json_integer(res->exit_code));
		if (res->signal)
			json_object_set_new(d, "signal", json_integer(res->signal));
		if (res->timed_out)
			json_object_set_new(d, "timed_out", json_true());
	}
	if (error)
		json_object_set_new(d, "error", ac_audit_string(error, AUDIT_MESSAGE_MAX));
	ac_audit_log(m, "exec", name, ac_audit_with_duration(d, t0));
}

/* Calls fn for every record of the log, oldest first. */
static int audit_each(ac_manager_t *m, void (*fn)(json_t *rec, void *arg), void *arg,
		      ac_error_t **err)
{
	int fd = openat(ac_store_home_fd(ac_manager_store(m)), AUDIT_FILE,
			O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s/%s",
				    ac_store_home(ac_manager_store(m)), AUDIT_FILE);
	}
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read the audit log");
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n' || n > AUDIT_LINE_MAX)
			continue; /* a line still being written, or not ours */
		json_t *rec = json_loadb(line, (size_t)n, 0, NULL);
		if (json_is_object(rec) && json_is_string(json_object_get(rec, "event")))
			fn(rec, arg);
		json_decref(rec);
	}
	free(line);
	fclose(f);
	return 0;
}

struct read_arg {
	const char *sandbox;
	size_t limit, count;
	json_t *all;   /* limit == 0 */
	json_t **ring; /* limit > 0: the last `limit` records */
};

static void read_one(json_t *rec, void *arg)
{
	struct read_arg *a = arg;
	if (a->sandbox && strcmp(ac_state_str(rec, "sandbox", ""), a->sandbox) != 0)
		return;
	if (a->limit == 0) {
		json_array_append(a->all, rec);
		return;
	}
	size_t slot = a->count % a->limit;
	json_decref(a->ring[slot]);
	a->ring[slot] = json_incref(rec);
	a->count++;
}

int ac_audit_read(ac_manager_t *m, const char *sandbox, size_t limit, json_t **out,
		  ac_error_t **err)
{
	struct read_arg a = {.sandbox = sandbox, .limit = limit, .all = json_array()};
	if (limit > 0) {
		if (limit > 1000000)
			limit = a.limit = 1000000;
		a.ring = calloc(limit, sizeof(json_t *));
		if (a.ring == NULL) {
			json_decref(a.all);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
	}
	int rc = audit_each(m, read_one, &a, err);
	if (limit > 0) {
		size_t n = a.count < limit ? a.count : limit;
		size_t first = a.count < limit ? 0 : a.count % limit;
		for (size_t i = 0; i < n; i++)
			json_array_append(a.all, a.ring[(first + i) % limit]);
		for (size_t i = 0; i < limit; i++)
			json_decref(a.ring[i]);
		free(a.ring);
	}
	if (rc < 0) {
		json_decref(a.all);
		return -1;
	}
	*out = a.all;
	return 0;
}

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
	if (audit_each(m, metrics_one, &a, err) < 0) {
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
