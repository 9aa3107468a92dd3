/* The audit log ($AGENTCELL_HOME/audit.jsonl); metrics.c derives the metrics from it.
 *
 * One JSON object per line: {"timestamp", "event", "sandbox", "details"}, or with
 * [audit] format = "agentkernel" agentkernel's shape (include/agentcell/metrics.h); readers
 * turn either into the first (ac_audit_normalize). Writers append
 * with O_APPEND; a line up to PIPE_BUF bytes goes out in one write(2), a longer one under an
 * exclusive flock, so concurrent writers never interleave within a line. Readers skip lines
 * that do not parse (a writer killed mid-line). Environment values are never written. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "agentcell/manager.h"
#include "agentcell/metrics.h"
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
	double ms = ac_time_since(t0) * 1e3;
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

/* ------------------------------------------------------------------ formats */

int ac_audit_format_parse(const char *s, ac_audit_format_t *f)
{
	if (s && !strcmp(s, "agentcell"))
		*f = AC_AUDIT_FORMAT_AGENTCELL;
	else if (s && !strcmp(s, "agentkernel"))
		*f = AC_AUDIT_FORMAT_AGENTKERNEL;
	else
		return -1;
	return 0;
}

ac_audit_format_t ac_audit_format_of_config(const json_t *cfg)
{
	ac_audit_format_t f = AC_AUDIT_FORMAT_AGENTCELL;
	json_t *v = json_object_get(json_object_get(cfg, "audit"), "format");
	if (ac_audit_format_parse(json_string_value(v), &f) < 0)
		f = AC_AUDIT_FORMAT_AGENTCELL;
	return f;
}

/* -1 until known; then an ac_audit_format_t. Read without the lock on every record. */
static int format_now = -1;
static pthread_mutex_t format_lock = PTHREAD_MUTEX_INITIALIZER;

void ac_audit_set_format(ac_audit_format_t f)
{
	__atomic_store_n(&format_now, (int)f, __ATOMIC_RELEASE);
}

ac_audit_format_t ac_audit_format(ac_manager_t *m)
{
	int f = __atomic_load_n(&format_now, __ATOMIC_ACQUIRE);
	if (f >= 0)
		return (ac_audit_format_t)f;
	pthread_mutex_lock(&format_lock);
	f = __atomic_load_n(&format_now, __ATOMIC_ACQUIRE);
	if (f < 0) {
		/* Once per process: a configuration that does not load was reported by the
		 * command that loaded it; the log keeps its default format. */
		json_t *cfg = NULL;
		ac_error_t *e = NULL;
		f = AC_AUDIT_FORMAT_AGENTCELL;
		if (ac_config_load(NULL, ac_manager_home(m), &cfg, &e) == 0)
			f = (int)ac_audit_format_of_config(cfg);
		json_decref(cfg);
		ac_error_free(e);
		__atomic_store_n(&format_now, f, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&format_lock);
	return (ac_audit_format_t)f;
}

/* agentkernel's timestamp: chrono's RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits. */
static void agentkernel_time(char buf[48])
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	char base[32];
	ac_time_format_rfc3339((int64_t)t.tv_sec * 1000, base);
	base[19] = '\0'; /* YYYY-MM-DDTHH:MM:SS */
	long ns = t.tv_nsec;
	if (ns == 0)
		snprintf(buf, 48, "%sZ", base);
	else if (ns % 1000000 == 0)
		snprintf(buf, 48, "%s.%03ldZ", base, ns / 1000000);
	else if (ns % 1000 == 0)
		snprintf(buf, 48, "%s.%06ldZ", base, ns / 1000);
	else
		snprintf(buf, 48, "%s.%09ldZ", base, ns);
}

/* Our events and agentkernel's: its type, and whether the sandbox goes in "name" (its
 * Sandbox* events) or "sandbox" (the others). */
static const struct {
	const char *ours, *theirs;
	bool by_name;
} ak_events[] = {
    {"created", "sandbox_created", true},
    {"started", "sandbox_started", true},
    {"stopped", "sandbox_stopped", true},
    {"removed", "sandbox_removed", true},
    {"exec", "command_executed", false},
    {"file_written", "file_written", false},
    {"file_read", "file_read", false},
    {"attached", "session_attached", false},
    {"policy_violation", "policy_violation", false},
    {"error", "sandbox_error", true},
    {"init_script_failed", "sandbox_error", true},
};

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

json_t *ac_audit_to_agentkernel(const json_t *rec, const char *ts, long pid, const char *user,
				const char *backend, const char *profile)
{
	const char *ev = str_or(rec, "event", "");
	const char *sb = str_or(rec, "sandbox", NULL);
	json_t *d = json_object_get(rec, "details");
	json_t *o = json_pack("{ss sI so ss}", "timestamp", ts, "pid", (json_int_t)pid, "user",
			      user ? json_string(user) : json_null(), "type", ev);
	if (!o)
		return NULL;
	size_t k = 0;
	while (k < AC_ARRAY_SIZE(ak_events) && strcmp(ak_events[k].ours, ev))
		k++;
	if (k == AC_ARRAY_SIZE(ak_events)) {
		/* No such event in agentkernel: our name as its type. */
		if (sb)
			json_object_set_new(o, "sandbox", json_string(sb));
	} else {
		json_object_set_new(o, "type", json_string(ak_events[k].theirs));
		json_object_set_new(o, ak_events[k].by_name ? "name" : "sandbox",
				    json_string(sb ? sb : ""));
	}
	if (!strcmp(ev, "created")) {
		json_object_set_new(o, "image", json_string(str_or(d, "image", "")));
		json_object_set_new(
		    o, "backend", json_string(backend ? backend : str_or(d, "backend", "native")));
		json_t *labels = json_object_get(d, "labels");
		if (json_is_object(labels) && json_object_size(labels) > 0)
			json_object_set(o, "labels", labels);
	} else if (!strcmp(ev, "started")) {
		json_object_set_new(o, "profile", profile ? json_string(profile) : json_null());
	} else if (!strcmp(ev, "exec")) {
		json_t *cmd = json_object_get(d, "command");
		json_object_set_new(o, "command",
				    json_is_array(cmd) ? json_deep_copy(cmd) : json_array());
		json_t *code = json_object_get(d, "exit_code");
		json_object_set_new(o, "exit_code",
				    json_is_integer(code) ? json_integer(json_integer_value(code))
							  : json_null());
	} else if (!strcmp(ev, "file_written") || !strcmp(ev, "file_read")) {
		json_object_set_new(o, "path", json_string(str_or(d, "path", "")));
	} else if (!strcmp(ev, "policy_violation")) {
		json_object_set_new(o, "policy", json_string(str_or(d, "rule", "command_policy")));
		json_object_set_new(o, "details", json_string(str_or(d, "command", "")));
	} else if (!strcmp(ev, "error") || !strcmp(ev, "init_script_failed")) {
		json_object_set_new(o, "error", json_string(str_or(d, "error", ev)));
	}
	json_t *keep = json_is_object(d) ? json_incref(d) : json_object();
	json_object_set_new(o, "agentcell", json_pack("{ss so}", "event", ev, "details", keep));
	return o;
}

json_t *ac_audit_normalize(json_t *line)
{
	if (!json_is_object(line))
		return NULL;
	if (json_is_string(json_object_get(line, "event")))
		return json_incref(line);
	const char *type = json_string_value(json_object_get(line, "type"));
	if (!type)
		return NULL;
	json_t *ts = json_object_get(line, "timestamp");
	json_t *ac = json_object_get(line, "agentcell");
	const char *sb = str_or(line, "name", str_or(line, "sandbox", NULL));
	const char *ev = str_or(ac, "event", NULL);
	json_t *d = NULL;
	if (ev) {
		json_t *ad = json_object_get(ac, "details");
		d = json_is_object(ad) ? json_incref(ad) : json_object();
	} else {
		/* Written by agentkernel: its fields as our details. */
		ev = type;
		for (size_t k = 0; k < AC_ARRAY_SIZE(ak_events); k++)
			if (!strcmp(ak_events[k].theirs, type)) {
				ev = ak_events[k].ours;
				break;
			}
		d = json_object();
		static const char *keep[] = {"image",	"backend",   "labels",	 "profile",
					     "command", "exit_code", "path",	 "policy",
					     "error",	"host_port", "ssh_user", "duration_secs"};
		for (size_t k = 0; k < AC_ARRAY_SIZE(keep); k++) {
			json_t *v = json_object_get(line, keep[k]);
			if (v)
				json_object_set(d, keep[k], v);
		}
		if (!strcmp(type, "policy_violation")) {
			json_object_set(d, "rule", json_object_get(line, "policy"));
			json_t *det = json_object_get(line, "details");
			if (det)
				json_object_set(d, "command", det);
			json_object_del(d, "policy");
		}
	}
	return json_pack("{so ss so so}", "timestamp", ts ? json_incref(ts) : json_string(""),
			 "event", ev, "sandbox", sb ? json_string(sb) : json_null(), "details", d);
}

/* The sandbox's backend and profile, from its state (agentkernel's records name them). */
static void state_facts(ac_manager_t *m, const char *name, char **backend, char **profile)
{
	json_t *st = NULL;
	*backend = *profile = NULL;
	if (!name || ac_store_load(ac_manager_store(m), name, &st, NULL) < 0)
		return;
	const char *b = ac_state_str(st, "backend", "native");
	const char *p = ac_state_str(st, "profile", NULL);
	*backend = strdup(b);
	*profile = p ? strdup(p) : NULL;
	json_decref(st);
}

int ac_audit_log(ac_manager_t *m, const char *event, const char *sandbox, json_t *details)
{
	char ts[32];
	ac_time_now_rfc3339(ts);
	if (!json_is_object(details)) {
		json_decref(details);
		details = json_object();
	}
	ac_audit_format_t fmt = ac_audit_format(m);
	char *backend = NULL, *profile = NULL;
	bool created = !strcmp(event, "created");
	if (created || (fmt == AC_AUDIT_FORMAT_AGENTKERNEL && !strcmp(event, "started")))
		state_facts(m, sandbox, &backend, &profile);
	/* The backend of a new sandbox, for the metrics' backend label (and agentkernel's
	 * sandbox_created). */
	if (created && backend && !json_object_get(details, "backend"))
		json_object_set_new(details, "backend", json_string(backend));
	json_t *rec = json_pack("{ss ss so so}", "timestamp", ts, "event", event, "sandbox",
				sandbox ? json_string(sandbox) : json_null(), "details", details);
	if (rec && fmt == AC_AUDIT_FORMAT_AGENTKERNEL) {
		char akts[48];
		agentkernel_time(akts);
		json_t *ak = ac_audit_to_agentkernel(rec, akts, (long)getpid(), getenv("USER"),
						     backend, profile);
		json_decref(rec);
		rec = ak;
	}
	free(backend);
	free(profile);
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
		json_t *raw = json_loadb(line, (size_t)n, 0, NULL);
		json_t *rec = ac_audit_normalize(raw);
		json_decref(raw);
		if (rec)
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
