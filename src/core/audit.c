/* The audit log ($AGENTCELL_HOME/audit.jsonl); metrics.c derives the metrics from it.
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
#include "base/io.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

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

json_t *ac_audit_string(const char *s, size_t max)
{
	size_t len = strlen(s);
	char *buf = malloc((len < max ? len : max) + 1);
	if (buf == NULL)
		return json_string("");
	size_t o = ac_utf8_sanitize(s, len, buf, max, '?');
	json_t *j = json_stringn(buf, o);
	free(buf);
	return j ? j : json_string("");
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
	ac_time_now_rfc3339(ts);
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
int ac_audit_each(ac_manager_t *m, void (*fn)(json_t *rec, void *arg), void *arg, ac_error_t **err)
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
	int rc = ac_audit_each(m, read_one, &a, err);
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
