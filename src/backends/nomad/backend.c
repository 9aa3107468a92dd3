/* The Nomad backend behind struct ac_backend_ops (issue 14): a sandbox is a batch job
 * "agentcell-NAME" (job.c) with one task that idles; commands run over the allocation exec
 * WebSocket (exec.c). The connection is the one create resolved into the state's "nomad"
 * object (internal.h), so a changed NOMAD_ADDR never moves a sandbox.
 *
 *   - create resolves the settings, checks that the agent answers with this token and
 *     namespace and that no job of the sandbox's id exists there (another's job is never
 *     overwritten); it makes nothing in Nomad.
 *   - start registers the job and reads its evaluation: a placement failure (no node with
 *     the driver, not enough memory, no node in the datacenters) fails the start with
 *     Nomad's own reasons, and the job is purged. Then it waits for the allocation's task
 *     to run with blocking queries (index + wait, AGENTCELL_NOMAD_START_TIMEOUT seconds,
 *     default 300); a task that fails to start fails the start with its task events, and
 *     the job is purged.
 *   - stop deregisters the job (the state is kept; start registers it again) and waits
 *     until its allocations are no longer running; destroy also purges it.
 *   - is_running: a running allocation whose task runs. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/parse.h"
#include "base/util.h"
#include "backends/nomad/internal.h"
#include "backends/nomad/nomad.h"
#include "backends/owner.h"
#include "backends/remote/remote.h"

#define START_TIMEOUT_DEFAULT 300
#define STOP_TIMEOUT_MS	      (60 * 1000)
#define BLOCK_WAIT	      "5s" /* a blocking query's longest wait: cancels are seen as often */

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

/* Whether the caller has given up (ctx->cancel_fd readable or hung up). */
static bool cancelled(const ac_backend_ctx_t *ctx)
{
	if (!ctx || ctx->cancel_fd <= 0)
		return false;
	struct pollfd p = {.fd = ctx->cancel_fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Nomad's task state of an allocation's sandbox task. */
static const json_t *task_state(const json_t *alloc)
{
	return json_object_get(json_object_get(alloc, "TaskStates"), AC_NM_TASK);
}

static bool alloc_runs(const json_t *a)
{
	return !strcmp(str_of(a, "ClientStatus"), "running") &&
	       !strcmp(str_of(a, "DesiredStatus"), "run") &&
	       !strcmp(str_of(task_state(a), "State"), "running");
}

int ac_nm_running_alloc(ac_nm_t *n, const char *job, char *alloc, size_t cap, ac_error_t **err)
{
	char path[300];
	snprintf(path, sizeof(path), "/v1/job/%s/allocations", job);
	json_t *list = NULL;
	int rc = ac_nm_simple(n, "GET", path, NULL, true, "list the job's allocations", &list, err);
	if (rc != 0) {
		json_decref(list);
		return rc < 0 ? -1 : 0;
	}
	size_t i;
	json_t *a;
	int found = 0;
	json_array_foreach(list, i, a)
	{
		if (alloc_runs(a) && strlen(str_of(a, "ID")) < cap) {
			snprintf(alloc, cap, "%s", str_of(a, "ID"));
			found = 1;
			break;
		}
	}
	json_decref(list);
	return found;
}

void ac_nm_placement_reasons(const json_t *failed, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	const char *tg;
	json_t *m;
	json_object_foreach((json_t *)failed, tg, m)
	{
		const char *key;
		json_t *v;
		json_int_t evaluated = json_integer_value(json_object_get(m, "NodesEvaluated"));
		json_int_t avail = 0;
		json_t *dcs = json_object_get(m, "NodesAvailable");
		json_object_foreach(dcs, key, v) avail += json_integer_value(v);
		if (!evaluated && json_is_object(dcs) && !avail)
			len += (size_t)snprintf(out + len, len < cap ? cap - len : 0,
						"%sno ready node in the job's datacenters",
						len ? "; " : "");
		json_object_foreach(json_object_get(m, "ConstraintFiltered"), key, v)
		{
			if (len < cap)
				len += (size_t)snprintf(
				    out + len, cap - len, "%s%s (filtered %lld node%s)",
				    len ? "; " : "", key, (long long)json_integer_value(v),
				    json_integer_value(v) == 1 ? "" : "s");
		}
		json_object_foreach(json_object_get(m, "ClassFiltered"), key, v)
		{
			if (len < cap)
				len += (size_t)snprintf(out + len, cap - len,
							"%snode class %s filtered", len ? "; " : "",
							key);
		}
		json_object_foreach(json_object_get(m, "DimensionExhausted"), key, v)
		{
			if (len < cap)
				len += (size_t)snprintf(
				    out + len, cap - len, "%s%s exhausted on %lld node%s",
				    len ? "; " : "", key, (long long)json_integer_value(v),
				    json_integer_value(v) == 1 ? "" : "s");
		}
		json_object_foreach(json_object_get(m, "QuotaExhausted"), key, v)
		{
			if (len < cap && json_is_string(v))
				len += (size_t)snprintf(out + len, cap - len, "%squota %s",
							len ? "; " : "", json_string_value(v));
		}
		if (len < cap && evaluated)
			len += (size_t)snprintf(out + len, cap - len, "%s%lld node%s evaluated",
						len ? "; " : "", (long long)evaluated,
						evaluated == 1 ? "" : "s");
	}
	if (!out[0])
		snprintf(out, cap, "no node can run it");
}

/* DELETE the job (purge: with its history). 404 is success. */
static int deregister(ac_nm_t *n, const char *job, bool purge, ac_error_t **err)
{
	char path[300];
	snprintf(path, sizeof(path), "/v1/job/%s%s", job, purge ? "?purge=true" : "");
	int rc = ac_nm_simple(n, "DELETE", path, NULL, true,
			      purge ? "purge the job" : "stop the job", NULL, err);
	return rc < 0 ? -1 : 0;
}

/* Waits until no allocation of job is pending or running (the job deregistered). */
static int wait_allocs_gone(ac_nm_t *n, const char *job, ac_error_t **err)
{
	int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	unsigned long long index = 0;
	for (;;) {
		char path[320];
		snprintf(path, sizeof(path), "/v1/job/%s/allocations?index=%llu&wait=%s", job,
			 index, BLOCK_WAIT);
		ac_remote_resp_t resp;
		long st = ac_nm_call(n, "GET", path, NULL, &resp, err);
		if (st < 0)
			return -1;
		if (st == 404) {
			ac_remote_resp_free(&resp);
			return 0;
		}
		if (st / 100 != 2) {
			ac_nm_http_error(n, &resp, "list the job's allocations", err);
			ac_remote_resp_free(&resp);
			return -1;
		}
		bool live = false;
		size_t i;
		json_t *a;
		json_array_foreach(resp.json, i, a)
		{
			const char *cs = str_of(a, "ClientStatus");
			live |= !strcmp(cs, "running") || !strcmp(cs, "pending");
		}
		unsigned long long next = resp.index;
		ac_remote_resp_free(&resp);
		if (!live)
			return 0;
		if (now_ms() > deadline)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: the allocations of job '%s' still run %d s after "
					    "it was stopped",
					    n->conf.name, job, STOP_TIMEOUT_MS / 1000);
		if (next <= index) /* an agent that does not block: do not spin */
			usleep(200 * 1000);
		index = next;
	}
}

/* The last task events of an allocation, for a failed start: "Driver Failure: ...". */
static void task_events(const json_t *alloc, char *out, size_t cap)
{
	const json_t *ev = json_object_get(task_state(alloc), "Events");
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

/* Reads the registration's evaluation until it is done; a placement failure is an error
 * with Nomad's reasons. */
static int wait_eval(const ac_backend_ctx_t *ctx, ac_nm_t *n, const char *job, const char *eval,
		     int64_t deadline, ac_error_t **err)
{
	unsigned long long index = 0;
	for (;;) {
		char path[320];
		snprintf(path, sizeof(path), "/v1/evaluation/%s?index=%llu&wait=%s", eval, index,
			 BLOCK_WAIT);
		ac_remote_resp_t resp;
		long st = ac_nm_call(n, "GET", path, NULL, &resp, err);
		if (st < 0)
			return -1;
		if (st / 100 != 2) {
			ac_nm_http_error(n, &resp, "read the job's evaluation", err);
			ac_remote_resp_free(&resp);
			return -1;
		}
		const char *status = str_of(resp.json, "Status");
		const json_t *failed = json_object_get(resp.json, "FailedTGAllocs");
		int rc = 1;
		if (json_object_size(failed)) {
			char why[600];
			ac_nm_placement_reasons(failed, why, sizeof(why));
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "%s: job '%s' cannot be placed: %s", n->conf.name, job,
					  why);
		} else if (!strcmp(status, "complete")) {
			rc = 0;
		} else if (!strcmp(status, "failed") || !strcmp(status, "canceled")) {
			const char *d = str_of(resp.json, "StatusDescription");
			rc = ac_error_set(err, AC_ERR_BACKEND, 0,
					  "%s: the evaluation of job '%s' %s%s%s", n->conf.name,
					  job, status, *d ? ": " : "", d);
		}
		unsigned long long next = resp.index;
		ac_remote_resp_free(&resp);
		if (rc <= 0)
			return rc;
		if (cancelled(ctx))
			return ac_error_set(err, AC_ERR_STATE, 0, "cancelled");
		if (now_ms() > deadline)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: the evaluation of job '%s' is still %s",
					    n->conf.name, job, *status ? status : "pending");
		if (next <= index)
			usleep(200 * 1000);
		index = next;
	}
}

/* Waits until the job's newest allocation runs its task; an allocation that fails is an
 * error with its task events. */
static int wait_running(const ac_backend_ctx_t *ctx, ac_nm_t *n, const char *job, int64_t deadline,
			int timeout_s, ac_error_t **err)
{
	unsigned long long index = 0;
	for (;;) {
		char path[320];
		snprintf(path, sizeof(path), "/v1/job/%s/allocations?index=%llu&wait=%s", job,
			 index, BLOCK_WAIT);
		ac_remote_resp_t resp;
		long st = ac_nm_call(n, "GET", path, NULL, &resp, err);
		if (st < 0)
			return -1;
		if (st / 100 != 2) {
			ac_nm_http_error(n, &resp, "list the job's allocations", err);
			ac_remote_resp_free(&resp);
			return -1;
		}
		/* The newest allocation (the highest CreateIndex) is this start's. */
		const json_t *newest = NULL;
		size_t i;
		json_t *a;
		json_array_foreach(resp.json, i, a)
		{
			if (!newest ||
			    json_integer_value(json_object_get(a, "CreateIndex")) >
				json_integer_value(json_object_get(newest, "CreateIndex")))
				newest = a;
		}
		int rc = 1;
		if (newest) {
			const char *cs = str_of(newest, "ClientStatus");
			if (alloc_runs(newest)) {
				rc = 0;
			} else if (!strcmp(cs, "failed") || !strcmp(cs, "lost") ||
				   !strcmp(cs, "complete") ||
				   !strcmp(str_of(task_state(newest), "State"), "dead")) {
				char why[700];
				task_events(newest, why, sizeof(why));
				rc = ac_error_set(err, AC_ERR_BACKEND, 0,
						  "%s: the task of job '%s' did not start (%s): %s",
						  n->conf.name, job, *cs ? cs : "dead", why);
			}
		}
		unsigned long long next = resp.index;
		ac_remote_resp_free(&resp);
		if (rc <= 0)
			return rc;
		if (cancelled(ctx))
			return ac_error_set(err, AC_ERR_STATE, 0, "cancelled");
		if (now_ms() > deadline)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: the task of job '%s' is not running after %d s "
					    "(AGENTCELL_NOMAD_START_TIMEOUT)",
					    n->conf.name, job, timeout_s);
		if (next <= index)
			usleep(200 * 1000);
		index = next;
	}
}

static int start_timeout(void)
{
	const char *v = getenv("AGENTCELL_NOMAD_START_TIMEOUT");
	uint64_t s;
	if (v && *v && ac_parse_u64(v, 1, 86400, &s) == 0)
		return (int)s;
	return START_TIMEOUT_DEFAULT;
}

int ac_nm_job_up(const ac_backend_ctx_t *ctx, ac_nm_t *n, const char *job, json_t *spec,
		 ac_error_t **err)
{
	int timeout_s = start_timeout();
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
	json_t *body = json_pack("{sO}", "Job", spec);
	json_t *reg = NULL;
	int rc = ac_nm_simple(n, "PUT", "/v1/jobs", body, false, "register the job", &reg, err);
	json_decref(body);
	if (rc != 0) {
		json_decref(reg);
		return -1;
	}
	char eval[64];
	snprintf(eval, sizeof(eval), "%s", str_of(reg, "EvalID"));
	json_decref(reg);
	if (!eval[0] || strspn(eval, "0123456789abcdef-") != strlen(eval))
		rc = ac_error_set(err, AC_ERR_BACKEND, 0,
				  "%s: the registration of job '%s' named no evaluation",
				  n->conf.name, job);
	else
		rc = wait_eval(ctx, n, job, eval, deadline, err);
	if (rc == 0)
		rc = wait_running(ctx, n, job, deadline, timeout_s, err);
	if (rc < 0) /* nothing half-made: the job goes with what it placed */
		deregister(n, job, true, NULL);
	return rc;
}

/* ops.create: resolves the connection into st's "nomad" object and checks that the agent
 * answers and the job's id is free. Nothing is made in Nomad. */
static int nomad_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err)
{
	json_t *cfg = json_object_get(st, "nomad");
	if (!json_is_object(cfg)) {
		cfg = json_object();
		json_object_set_new(st, "nomad", cfg);
	}
	if (ac_nm_resolve(cfg, json_string_value(json_object_get(cfg, "config_file")), err) < 0)
		return -1;
	char owner[AC_OWNER_LEN + 1];
	if (ctx && ctx->home) {
		if (ac_owner_id(ctx->home, "nomad", true, owner, err) < 0)
			return -1;
		json_object_set_new(cfg, "owner", json_string(owner));
	}
	const char *name = str_of(st, "name");
	json_object_set_new(cfg, "job", json_sprintf("%s%s", AC_NM_JOB_PREFIX, name));
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	char path[300];
	snprintf(path, sizeof(path), "/v1/job/%s", n.job);
	json_t *job = NULL;
	int rc = ac_nm_simple(&n, "GET", path, NULL, true, "look up the job", &job, err);
	if (rc == 0)
		rc = ac_error_set(err, AC_ERR_EXISTS, 0,
				  "%s: a job '%s' already exists in namespace '%s' (not this "
				  "sandbox's: remove it with 'nomad job stop -purge %s' or choose "
				  "another name)",
				  n.conf.name, n.job, n.ns[0] ? n.ns : "default", n.job);
	else if (rc == 1)
		rc = 0;
	json_decref(job);
	char warn[512];
	if (rc == 0 && ac_nm_job_warnings(st, &n, warn, sizeof(warn)) > 0)
		json_object_set_new(st, "warning", json_string(warn));
	ac_nm_close(&n);
	if (rc == 0 && ctx && ctx->home) /* where gc looks for this home's leftovers */
		ac_nm_remember(ctx->home, cfg);
	return rc;
}

static int nomad_start(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	int rc = -1;
	json_t *spec = ac_nm_job_spec(st, &n, NULL, NULL, err);
	if (spec) {
		rc = ac_nm_job_up(ctx, &n, n.job, spec, err);
		json_decref(spec);
	}
	ac_nm_close(&n);
	return rc;
}

static int nomad_stop(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	int rc = deregister(&n, n.job, false, err);
	if (rc == 0)
		rc = wait_allocs_gone(&n, n.job, err);
	ac_nm_close(&n);
	return rc;
}

static int nomad_destroy(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	ac_nm_t n;
	if (ac_nm_open(st, &n, err) < 0)
		return -1;
	int rc = deregister(&n, n.job, false, err);
	if (rc == 0)
		rc = wait_allocs_gone(&n, n.job, err);
	if (rc == 0)
		rc = deregister(&n, n.job, true, err);
	ac_nm_close(&n);
	return rc;
}

static bool nomad_is_running(const ac_backend_ctx_t *ctx, const json_t *st, long *pid)
{
	(void)ctx;
	if (pid)
		*pid = 0;
	ac_nm_t n;
	if (ac_nm_open(st, &n, NULL) < 0)
		return false;
	char alloc[64];
	bool run = ac_nm_running_alloc(&n, n.job, alloc, sizeof(alloc), NULL) == 1;
	ac_nm_close(&n);
	return run;
}

/* For --backend auto: only where an agent is named (NOMAD_ADDR); nothing is contacted. */
static bool nomad_available(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	const char *a = getenv("NOMAD_ADDR");
	return a && *a;
}

const ac_backend_ops_t ac_nomad_ops = {
    .create = nomad_create,
    .start = nomad_start,
    .stop = nomad_stop,
    .destroy = nomad_destroy,
    .is_running = nomad_is_running,
    .exec = ac_nomad_exec,
    .run = ac_nomad_run,
    .files = ac_nomad_files,
    .exec_detach = ac_nomad_exec_detach,
    .kill_detached = ac_nomad_kill_detached,
    .detached_state = ac_nomad_detached_state,
    .available = nomad_available,
    .probe = ac_nomad_probe,
    .sweep = ac_nomad_sweep,
};
