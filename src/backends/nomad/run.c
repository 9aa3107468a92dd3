/* One-shot runs on Nomad (ops.run, issue 14): a batch job "agentcell-run-<16 hex>" of its
 * own whose task runs the command (job.c's ac_nm_run_job_spec: the sandbox job's driver
 * hardening, limits and network mode; the command's --env in the task's Env, -w its
 * work_dir, -u its User; Meta agentcell-creator, so that gc spares the job of a run in
 * progress).
 *
 * Start: PUT /v1/jobs, then the registration's evaluation with blocking queries: a
 * placement failure (no node with the driver, not enough memory, ...) fails the run with
 * Nomad's reasons. Then the job's allocations, with blocking queries, until its task dies.
 *
 * Output. Once the task runs, two threads follow its logs, stdout and stderr apart:
 *   /v1/client/fs/logs/ALLOC?task=sandbox&type=stdout|stderr&origin=start&offset=0
 *   &follow=true&plain=true
 * (ac_remote_stream: no overall timeout, ended at once by the run's stop descriptor), each
 * written to its descriptor as it comes and counted. A followed log never ends by itself
 * (Nomad's follow waits for the next rotated file), so once the task is dead the threads
 * are stopped and each stream's rest is read without follow from the offset its thread
 * reached (origin=start&offset=N: Nomad counts it across the rotated files): exact,
 * nothing lost or repeated. A command that ended before it was seen running: both logs
 * are read once. Limit: the logs are the task's LogConfig files (job.c), so output the
 * client rotated away before it was read is lost.
 *
 * Exit status: the task state's last Terminated event (ExitCode; a Signal N gives 128+N).
 * A task that failed before its command ran (no Terminated event: the driver could not
 * start it) gives a shell's 127 when the driver says the program is not found, 126 when
 * it cannot be executed (the driver's message on stderr); anything else (an image that
 * cannot be pulled, ...) fails the run with the task's events.
 *
 * stdin (-i) and -t: a batch task has no stdin, and its logs are no terminal. Such a run's
 * job idles (ac_nm_job_spec's idle command, -u as the task's User) and the command runs in
 * it over the allocation exec WebSocket (ac_nm_exec_stream through the exec wrapper, as
 * exec in a sandbox: stdin, terminal, --env, -w, the exited frame's exit code), without a
 * kill handle: the purge ends the command. --timeout counts from the start of the run,
 * the job's start included.
 *
 * Stop and clean-up: one descriptor (an epoll set) becomes readable when the run must stop:
 * SIGINT, SIGTERM or SIGHUP in the CLI (caught for the run's duration through a self-pipe,
 * as the Kubernetes run does; an exec installs its own for its duration), the --timeout
 * deadline (a timerfd), the caller gone (ctx->cancel_fd readable or hung up,
 * cmd->cancel_fd hung up). Every wait and stream watches it. The job is purged (DELETE
 * /v1/job/ID?purge=true, which also stops its allocation) on every path: success,
 * failure, an API error, --timeout (exit 124, the output up to then printed), the caller
 * gone (AC_ERR_STATE) and a signal (128+N). A SIGKILL leaves it: gc purges it once its
 * creator is gone (the Meta above).
 *
 * Longer than 800 lines on purpose: the stages above (submit, evaluation, allocation wait,
 * the two log followers and their exact tail read, the exit status, the stop descriptor and
 * the purge) share one struct run and its stop set; split, each part would need that
 * state exported, and the order of clean-up on every path is easiest to check in one file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/store.h"
#include "base/io.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/execwrap.h"
#include "backends/nomad/internal.h"
#include "backends/owner.h"
#include "backends/remote/remote.h"
#include "backends/remote/streamsig.h"
#include "runtime/runtime.h"

#define RUN_PREFIX AC_NM_JOB_PREFIX "run-"
#define BLOCK_WAIT "30s"       /* a blocking query's wait: the stop descriptor ends it anyway */
#define WATCH_MAX  (16u << 20) /* an allocation list or evaluation */

typedef struct run {
	const ac_backend_ctx_t *ctx;
	const ac_cmd_t *cmd;
	ac_nm_t n;
	int fds[3];
	int64_t deadline; /* CLOCK_MONOTONIC ms, -1: none */
	int stop_fd;	  /* epoll set: readable when the run must stop */
	int timer_fd;	  /* the deadline, in stop_fd */
	int end_pipe[2];  /* written when the log followers must end */
	char id[64];	  /* the job's */
	char alloc[64];	  /* its allocation, "" until one is placed */
} run_t;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* ---- signals: a self-pipe, in the stop set ---- */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_got;

static void on_signal(int sig)
{
	int saved = errno;
	if (!sig_got)
		sig_got = sig;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], "", 1);
	errno = saved;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};

typedef struct sigs {
	bool on;
	struct sigaction old[3];
} sigs_t;

static void sigs_begin(sigs_t *s)
{
	memset(s, 0, sizeof(*s));
	/* A threaded server relays nothing (and runs several of these at once). */
	if (!ac_rt_relay_signals || pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	sig_got = 0;
	s->on = true;
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < AC_ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &sa, &s->old[i]);
}

static void sigs_end(sigs_t *s)
{
	if (!s->on)
		return;
	for (size_t i = 0; i < AC_ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &s->old[i], NULL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

/* ---- when to stop ---- */

static void stop_add(run_t *r, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	/* The same descriptor twice (ctx's and cmd's cancel_fd) is already there. */
	(void)epoll_ctl(r->stop_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int stop_setup(run_t *r, bool sigs, ac_error_t **err)
{
	r->stop_fd = epoll_create1(EPOLL_CLOEXEC);
	if (r->stop_fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "epoll_create1");
	if (pipe2(r->end_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "pipe2");
	if (sigs)
		stop_add(r, sig_pipe[0], EPOLLIN);
	if (r->deadline >= 0) {
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (r->timer_fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "timerfd_create");
		struct itimerspec it = {.it_value = {.tv_sec = r->deadline / 1000,
						     .tv_nsec = (r->deadline % 1000) * 1000000}};
		if (timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &it, NULL) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "timerfd_settime");
		stop_add(r, r->timer_fd, EPOLLIN);
	}
	if (r->ctx && r->ctx->cancel_fd > 0)
		stop_add(r, r->ctx->cancel_fd, EPOLLIN | EPOLLRDHUP);
	/* Data the client sends does not count, only its hang-up. */
	if (r->cmd->cancel_fd > 0)
		stop_add(r, r->cmd->cancel_fd, EPOLLRDHUP);
	return 0;
}

/* Why the run must stop: 1 a signal, 2 the caller gone, 3 the deadline; else 0. */
static int stop_reason(const run_t *r)
{
	if (sig_got && sig_pipe[0] >= 0)
		return 1;
	int fds[2] = {r->ctx ? r->ctx->cancel_fd : -1, r->cmd->cancel_fd};
	short ev[2] = {POLLIN | POLLRDHUP, POLLRDHUP};
	for (int i = 0; i < 2; i++) {
		if (fds[i] <= 0)
			continue;
		struct pollfd p = {.fd = fds[i], .events = ev[i]};
		if (poll(&p, 1, 0) > 0 && (p.revents & (ev[i] | POLLHUP | POLLERR)))
			return 2;
	}
	if (r->deadline >= 0 && now_ms() >= r->deadline)
		return 3;
	return 0;
}

/* ---- requests ---- */

/* path + the query of a blocking query (index >= 0) + namespace and region. */
static int full_path(const run_t *r, const char *path, long long index, char *out, size_t cap,
		     ac_error_t **err)
{
	char sep = strchr(path, '?') ? '&' : '?';
	size_t len = (size_t)snprintf(out, cap, "%s", path);
	if (index >= 0 && len < cap) {
		len += (size_t)snprintf(out + len, cap - len, "%cindex=%lld&wait=%s", sep, index,
					BLOCK_WAIT);
		sep = '&';
	}
	if (r->n.ns[0] && len < cap) {
		len += (size_t)snprintf(out + len, cap - len, "%cnamespace=%s", sep, r->n.ns);
		sep = '&';
	}
	if (r->n.region[0] && len < cap)
		len += (size_t)snprintf(out + len, cap - len, "%cregion=%s", sep, r->n.region);
	if (len >= cap)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: the request path is too long",
				    r->n.conf.name);
	return 0;
}

typedef struct grow {
	char *p;
	size_t len, cap;
	bool over;
} grow_t;

static int grow_add(void *arg, const char *d, size_t n)
{
	grow_t *g = arg;
	if (n > WATCH_MAX - g->len) {
		g->over = true;
		return 1;
	}
	if (g->len + n + 1 > g->cap) {
		size_t cap = g->cap ? g->cap : 16384;
		while (cap < g->len + n + 1)
			cap *= 2;
		char *p = realloc(g->p, cap);
		if (!p) {
			g->over = true;
			return 1;
		}
		g->p = p;
		g->cap = cap;
	}
	memcpy(g->p + g->len, d, n);
	g->len += n;
	g->p[g->len] = 0;
	return 0;
}

/* Sleeps ms, less when the run must stop. */
static void nap(const run_t *r, int ms)
{
	struct pollfd p = {.fd = r->stop_fd, .events = POLLIN};
	(void)poll(&p, 1, ms);
}

/* GET path as a blocking query after *index: 0 with *out (JSON, to json_decref) and
 * *index moved on, 1 when the run must stop, -1 on error. */
static int watch(run_t *r, const char *path, unsigned long long *index, const char *what,
		 json_t **out, ac_error_t **err)
{
	*out = NULL;
	char full[1024];
	if (full_path(r, path, (long long)*index, full, sizeof(full), err) < 0)
		return -1;
	grow_t g = {0};
	int wake[1] = {r->stop_fd};
	ac_remote_stream_t q = {
	    .path = full, .on_data = grow_add, .arg = &g, .wake = wake, .nwake = 1};
	ac_remote_resp_t resp;
	ac_error_t *e = NULL;
	int rc = ac_remote_stream(r->n.r, &q, &resp, &e);
	if (rc < 0) {
		ac_nm_tidy_error(&r->n, e);
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		free(g.p);
		return -1;
	}
	if (g.over) {
		free(g.p);
		ac_remote_resp_free(&resp);
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: %s: the answer is over %u MiB",
				    r->n.conf.name, what, WATCH_MAX >> 20);
	}
	if (rc == 1) {
		free(g.p);
		ac_remote_resp_free(&resp);
		return 1;
	}
	if (resp.status / 100 != 2) {
		free(g.p);
		ac_nm_http_error(&r->n, &resp, what, err);
		ac_remote_resp_free(&resp);
		return -1;
	}
	unsigned long long next = resp.index;
	ac_remote_resp_free(&resp);
	*out = g.p ? json_loadb(g.p, g.len, JSON_DECODE_ANY, NULL) : NULL;
	free(g.p);
	if (!*out)
		return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: %s: the answer is not JSON",
				    r->n.conf.name, what);
	if (next <= *index) /* an agent that does not block: do not spin */
		nap(r, 200);
	*index = next;
	return 0;
}

/* ---- the job ---- */

/* PUT /v1/jobs: 0 with the evaluation's id. *registered: 1 made, 2 perhaps (no answer). */
static int register_job(run_t *r, json_t *spec, int *registered, char *eval, size_t cap,
			ac_error_t **err)
{
	json_t *body = json_pack("{sO}", "Job", spec);
	if (!body)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	ac_remote_resp_t resp;
	*registered = 2;
	long s = ac_nm_call(&r->n, "PUT", "/v1/jobs", body, &resp, err);
	json_decref(body);
	if (s < 0)
		return -1;
	if (s / 100 != 2) {
		*registered = 0;
		ac_nm_http_error(&r->n, &resp, "register the job", err);
		ac_remote_resp_free(&resp);
		return -1;
	}
	*registered = 1;
	snprintf(eval, cap, "%s", str_of(resp.json, "EvalID"));
	ac_remote_resp_free(&resp);
	if (!eval[0] || strspn(eval, "0123456789abcdef-") != strlen(eval))
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the registration of job '%s' named no evaluation",
				    r->n.conf.name, r->id);
	return 0;
}

/* Until the registration's evaluation is done: a placement failure is an error with
 * Nomad's reasons. 0, 1 (stop) or -1. */
static int wait_eval(run_t *r, const char *eval, ac_error_t **err)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/evaluation/%s", eval);
	unsigned long long index = 0;
	for (;;) {
		json_t *ev;
		int w = watch(r, path, &index, "read the job's evaluation", &ev, err);
		if (w)
			return w;
		const char *status = str_of(ev, "Status");
		const json_t *failed = json_object_get(ev, "FailedTGAllocs");
		int rc = 1;
		if (json_object_size(failed)) {
			char why[600];
			ac_nm_placement_reasons(failed, why, sizeof(why));
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "%s: job '%s' cannot be placed: %s", r->n.conf.name,
					  r->id, why);
		} else if (!strcmp(status, "complete")) {
			rc = 0;
		} else if (!strcmp(status, "failed") || !strcmp(status, "canceled")) {
			const char *d = str_of(ev, "StatusDescription");
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "%s: the evaluation of job '%s' %s%s%s", r->n.conf.name,
					  r->id, status, *d ? ": " : "", d);
		}
		json_decref(ev);
		if (rc <= 0)
			return rc;
	}
}

static void purge(run_t *r, int registered)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/job/%s?purge=true", r->id);
	ac_error_t *e = NULL;
	if (ac_nm_simple(&r->n, "DELETE", path, NULL, true, "purge the job", NULL, &e) < 0 &&
	    registered == 1)
		dprintf(r->fds[2],
			"agentcell: the run's job '%s' is left: %s (agentcell gc purges it)\n",
			r->id, e ? e->msg : "it could not be purged");
	ac_error_free(e);
}

/* ---- the task's logs ---- */

typedef struct out {
	int fd;
	uint64_t *got;
} out_t;

static int out_write(void *arg, const char *d, size_t n)
{
	out_t *o = arg;
	*o->got += n;
	(void)ac_write_all(o->fd, d, n);
	return 0;
}

/* The task's log of type from offset to fd (*got counts what was written), followed or to
 * its current end, over conn; ends early (1) when a wake descriptor is ready. A log that
 * does not exist is empty. */
static int log_read(const run_t *r, ac_remote_t *conn, const char *type, bool follow, int fd,
		    uint64_t *got, const int *wake, size_t nwake, ac_error_t **err)
{
	char path[512], full[1024];
	snprintf(path, sizeof(path),
		 "/v1/client/fs/logs/%s?task=%s&type=%s&origin=start&offset=%llu&plain=true%s",
		 r->alloc, AC_NM_TASK, type, (unsigned long long)*got,
		 follow ? "&follow=true" : "");
	if (full_path(r, path, -1, full, sizeof(full), err) < 0)
		return -1;
	out_t o = {.fd = fd, .got = got};
	ac_remote_stream_t q = {
	    .path = full, .on_data = out_write, .arg = &o, .wake = wake, .nwake = nwake};
	ac_remote_resp_t resp;
	ac_error_t *e = NULL;
	int rc = ac_remote_stream(conn, &q, &resp, &e);
	if (rc < 0) {
		ac_nm_tidy_error(&r->n, e);
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	if (rc == 0 && resp.status / 100 != 2 && resp.status != 404) {
		char what[64];
		snprintf(what, sizeof(what), "read the task's %s", type);
		ac_nm_http_error(&r->n, &resp, what, err);
		rc = -1;
	}
	ac_remote_resp_free(&resp);
	return rc;
}

/* A thread that follows one log while the task runs. */
typedef struct follower {
	const run_t *r;
	const char *type;
	int fd;
	uint64_t got;
	ac_remote_t *conn;
	pthread_t th;
	bool started;
} follower_t;

static void *follow_main(void *arg)
{
	follower_t *f = arg;
	int wake[2] = {f->r->stop_fd, f->r->end_pipe[0]};
	/* Its failure is not the run's: what it missed is read once the task is dead. */
	(void)log_read(f->r, f->conn, f->type, true, f->fd, &f->got, wake, 2, NULL);
	return NULL;
}

static void followers_start(run_t *r, follower_t f[2])
{
	/* Signals go to the run's own thread (its waits watch the self-pipe). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < 2; i++) {
		if (ac_remote_open(&r->n.conf, &f[i].conn, NULL) < 0)
			continue;
		f[i].started = pthread_create(&f[i].th, NULL, follow_main, &f[i]) == 0;
		if (!f[i].started) {
			ac_remote_close(f[i].conn);
			f[i].conn = NULL;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void followers_end(run_t *r, follower_t f[2])
{
	(void)!write(r->end_pipe[1], "", 1);
	for (int i = 0; i < 2; i++) {
		if (f[i].started)
			pthread_join(f[i].th, NULL);
		f[i].started = false;
		ac_remote_close(f[i].conn);
		f[i].conn = NULL;
	}
}

/* ---- the task ---- */

static const json_t *task_state(const json_t *alloc)
{
	return json_object_get(json_object_get(alloc, "TaskStates"), AC_NM_TASK);
}

/* The newest allocation (the highest CreateIndex) of a list: the run's only one. */
static const json_t *newest_alloc(const json_t *list)
{
	const json_t *newest = NULL;
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a)
	{
		if (!newest || json_integer_value(json_object_get(a, "CreateIndex")) >
				   json_integer_value(json_object_get(newest, "CreateIndex")))
			newest = a;
	}
	return newest;
}

/* Watches the job's allocation: its followers start once the task runs; 0 once the task is
 * dead, 1 when the run must stop, -1 on error. */
static int watch_task(run_t *r, follower_t f[2], ac_error_t **err)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/job/%s/allocations", r->id);
	unsigned long long index = 0;
	for (;;) {
		json_t *list;
		int w = watch(r, path, &index, "list the job's allocations", &list, err);
		if (w)
			return w;
		const json_t *a = newest_alloc(list);
		const char *id = str_of(a, "ID");
		int rc = 1;
		if (a && (!*id || strlen(id) >= sizeof(r->alloc) ||
			  strspn(id, "0123456789abcdef-") != strlen(id))) {
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "%s: job '%s' has an allocation without a valid ID",
					  r->n.conf.name, r->id);
		} else if (a) {
			snprintf(r->alloc, sizeof(r->alloc), "%s", id);
			const char *state = str_of(task_state(a), "State");
			const char *cs = str_of(a, "ClientStatus");
			if (!strcmp(state, "dead") || !strcmp(cs, "complete") ||
			    !strcmp(cs, "failed") || !strcmp(cs, "lost"))
				rc = 0;
			else if (!strcmp(state, "running") && !f[0].started && !f[1].started)
				followers_start(r, f);
		}
		json_decref(list);
		if (rc <= 0)
			return rc;
	}
}

/* "Driver Failure: ...; Not Restarting: ..." from the last task events. */
static void task_events(const json_t *ts, char *out, size_t cap)
{
	const json_t *ev = json_object_get(ts, "Events");
	size_t n = json_array_size(ev), len = 0;
	out[0] = 0;
	for (size_t i = n > 3 ? n - 3 : 0; i < n && len < cap; i++) {
		const json_t *e = json_array_get(ev, i);
		const char *type = str_of(e, "Type"), *msg = str_of(e, "DisplayMessage");
		if (!*msg)
			msg = str_of(e, "DriverError");
		if (!*msg)
			msg = str_of(e, "Message");
		len += (size_t)snprintf(out + len, cap - len, "%s%s%s%s", len ? "; " : "", type,
					*msg ? ": " : "", msg);
	}
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (!out[0])
		snprintf(out, cap, "no task event");
}

/* The driver's message when it could not start the command, else "". */
static const char *driver_error(const json_t *ts)
{
	const json_t *ev = json_object_get(ts, "Events");
	for (size_t i = json_array_size(ev); i-- > 0;) {
		const json_t *e = json_array_get(ev, i);
		const char *m = str_of(e, "DriverError");
		if (*m)
			return m;
		if (!strcmp(str_of(e, "Type"), "Driver Failure")) {
			m = str_of(e, "DisplayMessage");
			return *m ? m : str_of(e, "Message");
		}
	}
	return "";
}

/* The exit status of the dead task (alloc: the full allocation). */
static int task_result(run_t *r, const json_t *alloc, ac_result_t *res, ac_error_t **err)
{
	const json_t *ts = task_state(alloc);
	const json_t *ev = json_object_get(ts, "Events"), *term = NULL;
	for (size_t i = json_array_size(ev); i-- > 0 && !term;)
		if (!strcmp(str_of(json_array_get(ev, i), "Type"), "Terminated"))
			term = json_array_get(ev, i);
	if (term) {
		json_int_t code = json_integer_value(json_object_get(term, "ExitCode"));
		json_int_t sig = json_integer_value(json_object_get(term, "Signal"));
		if (sig > 0 && sig < 65) {
			res->signal = (int)sig;
			res->exit_code = 128 + (int)sig;
		} else {
			res->exit_code = code >= 0 && code <= 255 ? (int)code : 255;
			if (res->exit_code > 128 && res->exit_code < 128 + 65)
				res->signal = res->exit_code - 128;
		}
		return 0;
	}
	const char *cs = str_of(alloc, "ClientStatus");
	const char *msg = driver_error(ts);
	/* A program the driver could not start, as a shell reports it; an image that
	 * cannot be pulled is the run's failure. */
	bool image = strcasestr(msg, "pull") || strcasestr(msg, "image");
	bool missing = strcasestr(msg, "not found") || strcasestr(msg, "no such file");
	bool denied = strcasestr(msg, "permission denied") || strcasestr(msg, "not executable");
	if (*msg && !image && strcmp(cs, "lost") && (missing || denied)) {
		res->exit_code = missing ? 127 : 126;
		dprintf(r->fds[2], "agentcell: cannot run '%s': %s\n", r->cmd->argv[0], msg);
		return 0;
	}
	char why[700];
	task_events(ts, why, sizeof(why));
	return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: the task of job '%s' did not run (%s): %s",
			    r->n.conf.name, r->id, *cs ? cs : "dead", why);
}

/* The task's output and status: 0 with res, 1 when the run must stop, -1 on error. */
static int follow_task(run_t *r, ac_result_t *res, ac_error_t **err)
{
	follower_t f[2] = {{.r = r, .type = "stdout", .fd = r->fds[1]},
			   {.r = r, .type = "stderr", .fd = r->fds[2]}};
	int rc = watch_task(r, f, err);
	followers_end(r, f);
	/* The rest of each log: after the end, or at the deadline what came so far (the
	 * stop descriptor is readable then: that read watches nothing). */
	int why = rc == 1 ? stop_reason(r) : 0;
	if (r->alloc[0] && (rc == 0 || why == 3)) {
		int wake[1] = {r->stop_fd};
		for (int i = 0; i < 2; i++) {
			ac_error_t *e = NULL;
			if (log_read(r, r->n.r, f[i].type, false, f[i].fd, &f[i].got, wake,
				     rc == 0 ? 1 : 0, &e) < 0)
				dprintf(r->fds[2],
					"agentcell: the task's %s is not all shown: %s\n",
					f[i].type, e ? e->msg : "its log could not be read");
			ac_error_free(e);
		}
	}
	if (rc != 0)
		return rc;
	/* The full allocation: its task state's events hold the exit status. */
	char path[128];
	snprintf(path, sizeof(path), "/v1/allocation/%s", r->alloc);
	json_t *alloc = NULL;
	if (ac_nm_simple(&r->n, "GET", path, NULL, false, "read the allocation", &alloc, err) < 0)
		return -1;
	rc = task_result(r, alloc, res, err);
	json_decref(alloc);
	return rc;
}

/* The command as the job's task, its output from the task's logs. */
static int run_batch(run_t *r, const json_t *st, ac_result_t *res, int *registered,
		     ac_error_t **err)
{
	json_t *spec = ac_nm_run_job_spec(st, &r->n, r->id, r->cmd, err);
	if (!spec)
		return -1;
	char eval[64];
	int rc = register_job(r, spec, registered, eval, sizeof(eval), err);
	json_decref(spec);
	if (rc == 0)
		rc = wait_eval(r, eval, err);
	if (rc == 0)
		rc = follow_task(r, res, err);
	return rc;
}

/* The command over the allocation exec stream, as ac_nm_exec_in runs it but without a kill
 * handle: whatever stops the run purges the job, which ends everything in it. A signal
 * (the stream takes them while it runs) is the run's 128+N, as the batch run's. */
static int exec_command(run_t *r, ac_result_t *res, ac_error_t **err)
{
	const ac_cmd_t *cmd = r->cmd;
	/* -u is the task's user already (the exec API has no user of its own). */
	char **argv = ac_execwrap_argv(cmd, NULL, cmd->user, NULL, err);
	if (!argv)
		return -1;
	static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, 0};
	int in_fd = cmd->stdin_open ? r->fds[0] : -1;
	int stopped = 0;
	ac_nm_stream_t s = {.alloc = r->alloc,
			    .task = AC_NM_TASK,
			    .argv = argv,
			    .tty = cmd->tty,
			    .winch = ac_rt_relay_signals,
			    .rows = cmd->rows,
			    .cols = cmd->cols,
			    .in_fd = in_fd,
			    .out_fd = r->fds[1],
			    .err_fd = r->fds[2],
			    .deadline_ms = r->deadline,
			    .cancel_fd = cmd->cancel_fd,
			    .stop_signals = ac_rt_relay_signals ? stop_signals : NULL,
			    .stopped = &stopped};
	/* Keys go to the task's terminal as typed (^C included), as exec -t does. */
	struct termios saved;
	bool raw = ac_stream_raw(in_fd, cmd->tty, &saved);
	int code = -1;
	ac_error_t *e = NULL;
	int rc = ac_nm_exec_stream(&r->n, &s, &code, &e);
	ac_strv_free(argv);
	ac_stream_unraw(in_fd, raw, &saved);
	if (stopped) {
		ac_error_free(e);
		res->signal = stopped;
		res->exit_code = 128 + stopped;
		return 0;
	}
	if (rc == 1 || (rc < 0 && e && e->kind == AC_ERR_STATE && stop_reason(r))) {
		ac_error_free(e);
		return 1; /* the deadline, the caller gone */
	}
	if (rc < 0) {
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	res->exit_code = code >= 0 && code <= 255 ? code : 255;
	if (res->exit_code > 128 && res->exit_code < 128 + 65)
		res->signal = res->exit_code - 128;
	return 0;
}

/* With stdin or a terminal: the job idles and the command runs in it over exec. */
static int run_exec(run_t *r, const json_t *st, ac_result_t *res, int *registered, ac_error_t **err)
{
	const char *user = r->cmd->user;
	if (user && (!*user || strlen(user) > 64 || strpbrk(user, " \t\r\n")))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%.64s' is not a user for a Nomad task", user);
	json_t *spec = ac_nm_job_spec(st, &r->n, r->id, NULL, err);
	if (!spec)
		return -1;
	char creator[96];
	ac_owner_creator(creator, sizeof(creator));
	json_t *meta = json_object_get(spec, "Meta");
	if (json_is_object(meta))
		json_object_set_new(meta, AC_NM_META_CREATOR, json_string(creator));
	json_t *task = json_array_get(
	    json_object_get(json_array_get(json_object_get(spec, "TaskGroups"), 0), "Tasks"), 0);
	if (user && json_is_object(task))
		json_object_set_new(task, "User", json_string(user));
	/* Its waits end when the run must stop (ac_nm_job_up asks ctx->cancel_fd). */
	ac_backend_ctx_t c = {0};
	if (r->ctx)
		c = *r->ctx;
	c.cancel_fd = r->stop_fd;
	*registered = 2;
	ac_error_t *e = NULL;
	int rc = ac_nm_job_up(&c, &r->n, r->id, spec, &e);
	json_decref(spec);
	if (rc < 0) {
		if (stop_reason(r)) {
			ac_error_free(e);
			return 1;
		}
		if (err && !*err)
			*err = e;
		else
			ac_error_free(e);
		return -1;
	}
	*registered = 1;
	int g = ac_nm_running_alloc(&r->n, r->id, r->alloc, sizeof(r->alloc), err);
	if (g < 0)
		return -1;
	if (g == 0)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "%s: the task of job '%s' ended before the command ran",
				    r->n.conf.name, r->id);
	if (stop_reason(r))
		return 1;
	return exec_command(r, res, err);
}

/* The state's "nomad" object resolved as create does, and the connection. */
static int prepare(run_t *r, json_t *st, ac_error_t **err)
{
	json_t *cfg = json_object_get(st, "nomad");
	if (!json_is_object(cfg)) {
		cfg = json_object();
		json_object_set_new(st, "nomad", cfg);
	}
	if (ac_nm_resolve(cfg, json_string_value(json_object_get(cfg, "config_file")), err) < 0)
		return -1;
	if (r->ctx && r->ctx->home) {
		char owner[AC_OWNER_LEN + 1];
		if (ac_owner_id(r->ctx->home, "nomad", true, owner, err) < 0)
			return -1;
		json_object_set_new(cfg, "owner", json_string(owner));
		ac_nm_remember(r->ctx->home, cfg); /* where gc looks for a killed run's job */
	}
	char uuid[37];
	ac_uuid_v7(uuid);
	/* The uuid's random part: its first characters are a timestamp. */
	snprintf(r->id, sizeof(r->id), RUN_PREFIX "%.4s%.12s", uuid + 19, uuid + 24);
	json_object_set_new(cfg, "job", json_string(r->id));
	if (ac_nm_open(st, &r->n, err) < 0)
		return -1;
	snprintf(r->n.job, sizeof(r->n.job), "%s", r->id);
	return 0;
}

int ac_nomad_run(const ac_backend_ctx_t *ctx, const json_t *st0, const ac_cmd_t *cmd, int fds[3],
		 ac_result_t *res, ac_error_t **err)
{
	memset(res, 0, sizeof(*res));
	json_t *st = json_deep_copy(st0);
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	run_t r = {.ctx = ctx,
		   .cmd = cmd,
		   .fds = {fds[0], fds[1], fds[2]},
		   .deadline = cmd->timeout > 0 ? now_ms() + (int64_t)(cmd->timeout * 1000) : -1,
		   .stop_fd = -1,
		   .timer_fd = -1,
		   .end_pipe = {-1, -1}};
	if (prepare(&r, st, err) < 0) {
		json_decref(st);
		return -1;
	}
	sigs_t sg;
	sigs_begin(&sg);
	int registered = 0;
	int rc = stop_setup(&r, sg.on, err);
	if (rc == 0)
		rc = cmd->stdin_open || cmd->tty ? run_exec(&r, st, res, &registered, err)
						 : run_batch(&r, st, res, &registered, err);
	if (rc == 0 && sg.on && sig_got) {
		/* Caught while an exec stream was being set up: the command ran to its end. */
		res->signal = sig_got;
		res->exit_code = 128 + sig_got;
	}
	if (rc == 1) {
		int why = stop_reason(&r);
		memset(res, 0, sizeof(*res));
		rc = 0;
		if (why == 1) {
			res->signal = sig_got;
			res->exit_code = 128 + sig_got;
		} else if (why == 3) {
			res->timed_out = true;
			res->exit_code = 124;
		} else {
			rc = ac_error_set(err, AC_ERR_STATE, 0, "the caller went away");
		}
	}
	/* Purged whatever happened (a second Ctrl-C meanwhile changes nothing). */
	if (registered)
		purge(&r, registered);
	ac_nm_close(&r.n);
	if (r.stop_fd >= 0)
		close(r.stop_fd);
	if (r.timer_fd >= 0)
		close(r.timer_fd);
	if (r.end_pipe[0] >= 0) {
		close(r.end_pipe[0]);
		close(r.end_pipe[1]);
	}
	json_decref(st);
	sigs_end(&sg);
	return rc;
}
