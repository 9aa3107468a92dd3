/* One-shot runs on Kubernetes (ops.run, issue 13): the command is the container of a pod of
 * its own, "agentcell-run--ID" (pod.h's ac_k8s_run_pod_spec: the sandbox pod's limits and
 * hardening, command = the argv, labelled agentcell.dev/run=ID), under a deny-all
 * NetworkPolicy of the same name while the network is off (made first).
 *
 * Output. pods/attach carries stdout and stderr apart, live, but only from the moment it
 * attaches: a real kubelet (and the test server) replays nothing, and a container cannot
 * be attached before it runs, so a command may have written, or even ended, before.
 * pods/log has everything, but merges the streams unless the cluster honours the log's
 * `stream=Stdout|Stderr` parameter (KEP-3288, PodLogsQuerySplitStreams; an API server
 * without it ignores the parameter, which is detected: the two answers do not add up to
 * the whole log). What is printed, per stream (or for the merged log):
 *   - before attaching, the log is read ("lo"); after the attach is up, again ("hi"). When
 *     they are equal, nothing was written while the attach began: lo is printed, then the
 *     attach's output live. Exact.
 *   - otherwise the attach's output is held (up to HOLD_MAX) until the container ends; the
 *     attach then carried a suffix of the final log, and the log's part before it is
 *     printed first (the suffix's length is what the attach carried). Exact, not live.
 *   - a command that ended before the attach: its whole log.
 * Limits: a cluster keeps a bounded log (the kubelet's containerLogMaxSize, 10 MiB by
 * default), so what it rotated away before the attach is lost; past HOLD_MAX held, output
 * goes live and what preceded the attach is not shown (said on stderr).
 * The exit code is the container's terminated state's (never the stream's); a container
 * that could not start its command (StartError) gives 127 or 126, as a shell.
 *
 * Clean-up: the pod and the policy are deleted on every path: success, failure, an API
 * error, --timeout (at the deadline, exit 124), the caller gone (cancel_fd: AC_ERR_STATE),
 * and SIGINT/SIGTERM/SIGHUP in the CLI (ac_rt_relay_signals): these are caught for the
 * run's duration, end the stream and the waits, and the run reports 128+N after the
 * deletion. A SIGKILL leaves them: doctor lists labelled objects no sandbox owns. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"
#include "runtime/runtime.h"

#define HOLD_MAX (64u << 20) /* output held while the attach's start is unknown */

typedef struct hold {
	unsigned char *p;
	size_t len, cap;
} hold_t;

/* The log of the run's container: per stream when the cluster splits it, else merged. */
typedef struct logs {
	ac_remote_resp_t out, err, all;
	bool split; /* out and err hold the streams; else all holds the merged log */
} logs_t;

typedef struct run {
	const ac_backend_ctx_t *ctx;
	const ac_cmd_t *cmd;
	ac_kc_t k;
	int fds[3];
	int64_t deadline;
	int split;	  /* the log's stream parameter: -1 not known yet, 0 ignored, 1 honoured */
	logs_t lo;	  /* read before attaching */
	bool live;	  /* the attach's output goes straight out */
	bool gap;	  /* held output overflowed: what came before the attach is not shown */
	bool shown_split; /* live: the log printed before it was read split */
	size_t got[3];	  /* bytes the attach carried, per channel */
	size_t shown[3];  /* bytes of the log printed before the attach's, per stream (2: merged) */
	hold_t held;	  /* channel byte, 4-byte length, data: in order */
	ac_error_t *e;
} run_t;

/* ---- signals: a self-pipe, so that polls and naps end at once ---- */

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
	sig_got = 0;
	if (!ac_rt_relay_signals || pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
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

/* Why the run must stop now: 1 a signal, 2 the caller gone, 3 the deadline; else 0. */
static int stop_reason(const run_t *r)
{
	if (sig_got)
		return 1;
	int fds[2] = {r->ctx ? r->ctx->cancel_fd : -1, r->cmd->cancel_fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] <= 0)
			continue;
		struct pollfd p = {.fd = fds[i], .events = POLLRDHUP};
		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return 2;
	}
	if (r->deadline >= 0 && ac_kc_now_ms() >= r->deadline)
		return 3;
	return 0;
}

/* Sleeps ms, less when a signal comes, the caller goes or the deadline passes. */
static void nap(const run_t *r, int ms)
{
	if (r->deadline >= 0) {
		int64_t left = r->deadline - ac_kc_now_ms();
		if (left < ms)
			ms = left > 0 ? (int)left : 0;
	}
	struct pollfd p[3];
	int n = 0;
	if (sig_pipe[0] >= 0)
		p[n++] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
	if (r->ctx && r->ctx->cancel_fd > 0)
		p[n++] = (struct pollfd){.fd = r->ctx->cancel_fd, .events = POLLRDHUP};
	if (r->cmd->cancel_fd > 0)
		p[n++] = (struct pollfd){.fd = r->cmd->cancel_fd, .events = POLLRDHUP};
	(void)poll(p, (nfds_t)n, ms);
}

/* ---- output ---- */

static void hold_add(hold_t *h, int ch, const unsigned char *d, size_t n)
{
	if (h->len + n + 5 > h->cap) {
		size_t cap = h->cap ? h->cap : 65536;
		while (cap < h->len + n + 5)
			cap *= 2;
		unsigned char *p = realloc(h->p, cap);
		if (!p)
			return;
		h->p = p;
		h->cap = cap;
	}
	h->p[h->len] = (unsigned char)ch;
	uint32_t len = (uint32_t)n;
	memcpy(h->p + h->len + 1, &len, 4);
	memcpy(h->p + h->len + 5, d, n);
	h->len += n + 5;
}

static void hold_flush(run_t *r)
{
	for (size_t i = 0; i + 5 <= r->held.len;) {
		uint32_t n;
		memcpy(&n, r->held.p + i + 1, 4);
		int fd = r->fds[r->held.p[i] == AC_K8S_CH_STDERR ? 2 : 1];
		(void)ac_write_all(fd, r->held.p + i + 5, n);
		i += 5 + n;
	}
	free(r->held.p);
	memset(&r->held, 0, sizeof(r->held));
}

static void sink(void *arg, int ch, const unsigned char *d, size_t n)
{
	run_t *r = arg;
	r->got[ch] += n;
	if (!r->live && r->held.len + n > HOLD_MAX) {
		/* Too much to hold: from here on live; what preceded the attach is lost. */
		hold_flush(r);
		r->live = true;
		r->gap = true;
	}
	if (r->live)
		(void)ac_write_all(r->fds[ch == AC_K8S_CH_STDERR ? 2 : 1], d, n);
	else
		hold_add(&r->held, ch, d, n);
}

static void logs_free(logs_t *l)
{
	ac_remote_resp_free(&l->out);
	ac_remote_resp_free(&l->err);
	ac_remote_resp_free(&l->all);
}

static int log_get(run_t *r, const char *stream, ac_remote_resp_t *out, ac_error_t **err)
{
	_cleanup_free_ char *base =
	    ac_k8s_log_path(r->k.conn.namespace, r->k.pod, AC_K8S_CONTAINER, false, err);
	if (!base)
		return -1;
	char path[512];
	snprintf(path, sizeof(path), "%s%s%s", base, stream ? "&stream=" : "",
		 stream ? stream : "");
	long s = ac_kc_call(&r->k, "GET", path, NULL, out, err);
	if (s < 0)
		return -1;
	if (s >= 200 && s < 300)
		return 0;
	if (stream) /* refused rather than ignored: no split logs here */
		return 1;
	char what[128];
	snprintf(what, sizeof(what), "get the log of pod %s", r->k.pod);
	ac_k8s_error_from(out, r->k.conn.remote.name, what, err);
	return -1;
}

/* Reads the container's log into *l: split when the cluster honours stream= (found out
 * the first time the log is not empty), else merged (l->all). */
static int logs_read(run_t *r, logs_t *l, ac_error_t **err)
{
	memset(l, 0, sizeof(*l));
	if (r->split != 1 && log_get(r, NULL, &l->all, err) < 0) {
		logs_free(l);
		return -1;
	}
	if (r->split == 0 || (r->split < 0 && l->all.len == 0))
		return 0;
	int a = log_get(r, "Stdout", &l->out, err);
	int b = a == 0 ? log_get(r, "Stderr", &l->err, err) : 1;
	if (a < 0 || b < 0) {
		logs_free(l);
		return -1;
	}
	if (r->split < 0) {
		/* Honoured: the two add up to the log read before them (nothing was written
		 * meanwhile). Ignored: each is the whole log, so each starts with it (an
		 * honoured one cannot: stdout's part would have to be stderr's too). A log
		 * that grew between the reads and fits neither decides nothing yet. */
		const ac_remote_resp_t *all = &l->all;
		bool sum = a == 0 && b == 0 && l->out.len + l->err.len == all->len;
		bool whole = a || b ||
			     (l->out.len >= all->len && l->err.len >= all->len &&
			      !memcmp(l->out.body, all->body, all->len) &&
			      !memcmp(l->err.body, all->body, all->len));
		if (sum)
			r->split = 1;
		else if (whole)
			r->split = 0;
		if (sum) {
			l->split = true;
		} else {
			ac_remote_resp_free(&l->out);
			ac_remote_resp_free(&l->err);
		}
		return 0;
	}
	if (a || b) { /* refused now, honoured before: take the merged log */
		ac_remote_resp_free(&l->out);
		ac_remote_resp_free(&l->err);
		r->split = 0;
		if (log_get(r, NULL, &l->all, err) < 0) {
			logs_free(l);
			return -1;
		}
		return 0;
	}
	l->split = true;
	return 0;
}

/* The part of a stream's log the attach did not carry: log[shown, len - got). */
static void print_missing(run_t *r, const ac_remote_resp_t *log, size_t shown, size_t got, int fd)
{
	if (got > log->len || shown >= log->len - got)
		return;
	(void)ac_write_all(fd, log->body + shown, log->len - got - shown);
}

/* After the attach (or none): what the log has that was not printed, then what is held. */
static int finish_output(run_t *r, ac_error_t **err)
{
	logs_t l;
	if (logs_read(r, &l, err) < 0)
		return -1;
	/* Live: the log's part printed before going live was read split or merged
	 * (shown_split); the rest is counted the same way. */
	bool split = r->live ? r->shown_split : l.split;
	if (!split && l.split) {
		ac_remote_resp_free(&l.all);
		if (log_get(r, NULL, &l.all, err) < 0) {
			logs_free(&l);
			return -1;
		}
	}
	if (split && !l.split) { /* the cluster stopped splitting: count merged */
		split = false;
		r->shown[0] = r->shown[1] + r->shown[2];
	}
	if (!r->gap && split) {
		print_missing(r, &l.out, r->shown[1], r->got[1], r->fds[1]);
		print_missing(r, &l.err, r->shown[2], r->got[2], r->fds[2]);
	} else if (!r->gap) {
		print_missing(r, &l.all, r->shown[0], r->got[1] + r->got[2], r->fds[1]);
	}
	hold_flush(r);
	logs_free(&l);
	if (r->gap)
		dprintf(r->fds[2],
			"agentcell: output the command wrote before the attach is not shown "
			"(more than %u MiB followed it)\n",
			HOLD_MAX >> 20);
	return 0;
}

/* Once the attach is up: if the log did not grow since lo, lo is what came before the
 * attach: print it and go live. */
static void attached(void *arg)
{
	run_t *r = arg;
	logs_t hi;
	ac_error_t *e = NULL;
	if (logs_read(r, &hi, &e) < 0) {
		ac_error_free(e);
		return;
	}
	bool same = hi.split == r->lo.split &&
		    (hi.split ? hi.out.len == r->lo.out.len && hi.err.len == r->lo.err.len
			      : hi.all.len == r->lo.all.len);
	logs_free(&hi);
	if (!same)
		return;
	r->shown_split = r->lo.split;
	if (r->lo.split) {
		(void)ac_write_all(r->fds[1], r->lo.out.body, r->lo.out.len);
		(void)ac_write_all(r->fds[2], r->lo.err.body, r->lo.err.len);
		r->shown[1] = r->lo.out.len;
		r->shown[2] = r->lo.err.len;
	} else {
		(void)ac_write_all(r->fds[1], r->lo.all.body, r->lo.all.len);
		r->shown[0] = r->lo.all.len;
	}
	hold_flush(r); /* frames that came before this check */
	r->live = true;
}

/* ---- the pod ---- */

/* Polls the pod until its container runs (1) or has ended (0); -1 with *err when it cannot
 * start (the cluster's reason), -2 when the run must stop (stop_reason). */
static int wait_pod(run_t *r, bool until_end, ac_k8s_pod_state_t *ps, ac_error_t **err)
{
	int ms = 20;
	for (;;) {
		int g = ac_kc_pod_get(&r->k, r->k.pod, ps, err);
		if (g < 0)
			return -1;
		if (g == 0)
			return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: pod %s was deleted",
					    r->k.conn.remote.name, r->k.pod);
		if (ps->verdict == AC_K8S_POD_ENDED)
			return 0;
		if (ps->verdict == AC_K8S_POD_FAILED)
			return ac_error_set(err, AC_ERR_BACKEND, 0, "%s: %s", r->k.conn.remote.name,
					    ps->error[0] ? ps->error : "the pod cannot run");
		if (ps->verdict == AC_K8S_POD_RUNNING && !until_end)
			return 1;
		if (stop_reason(r))
			return -2;
		nap(r, ms);
		if (ms < 100) /* a watch would be quicker; a GET is cheap */
			ms = ms * 3 / 2;
	}
}

static int create_objects(run_t *r, const json_t *st, const char *id, bool *made_policy,
			  bool *made_pod, ac_error_t **err)
{
	char path[300], what[160];
	ac_remote_resp_t resp;
	if (!ac_state_bool(st, "network", false)) {
		json_t *pol = ac_k8s_network_policy(NULL, id, &r->k.po, err);
		if (!pol)
			return -1;
		ac_kc_policy_path(&r->k, NULL, path, sizeof(path));
		long s = ac_kc_call(&r->k, "POST", path, pol, &resp, err);
		json_decref(pol);
		*made_policy = s >= 200 && s < 300;
		snprintf(what, sizeof(what), "create networkpolicy %s", r->k.pod);
		if (s >= 0 && !*made_policy)
			ac_k8s_error_from(&resp, r->k.conn.remote.name, what, err);
		ac_remote_resp_free(&resp);
		if (!*made_policy)
			return -1;
	}
	json_t *pod = ac_k8s_run_pod_spec(st, r->cmd, id, &r->k.po, err);
	if (!pod)
		return -1;
	ac_kc_pod_path(&r->k, NULL, path, sizeof(path));
	long s = ac_kc_call(&r->k, "POST", path, pod, &resp, err);
	json_decref(pod);
	/* No answer: it may exist all the same; the deletion finds out. */
	*made_pod = s < 0 || (s >= 200 && s < 300);
	snprintf(what, sizeof(what), "create pod %s", r->k.pod);
	if (s >= 0 && !(s >= 200 && s < 300))
		ac_k8s_error_from(&resp, r->k.conn.remote.name, what, err);
	ac_remote_resp_free(&resp);
	return s >= 200 && s < 300 ? 0 : -1;
}

/* The exit status from the terminated state; a command the runtime could not start is a
 * shell's 127 (not found) or 126, its message on stderr. */
static void fill_result(run_t *r, const ac_k8s_pod_state_t *ps, ac_result_t *res)
{
	res->exit_code = ps->exit_code >= 0 && ps->exit_code <= 255 ? ps->exit_code : 255;
	res->signal = ps->signal;
	if (!res->signal && res->exit_code > 128 && res->exit_code < 128 + 65)
		res->signal = res->exit_code - 128;
	if (!strcmp(ps->reason, "StartError") || !strcmp(ps->reason, "ContainerCannotRun")) {
		bool missing =
		    strstr(ps->message, "not found") || strstr(ps->message, "no such file");
		res->exit_code = missing ? 127 : 126;
		res->signal = 0;
		dprintf(r->fds[2], "agentcell: cannot run '%s': %s\n", r->cmd->argv[0],
			ps->message[0] ? ps->message : ps->reason);
	}
}

/* Attach, stream, and the end's accounting; 0 with res, -2 when the run must stop, -1 on
 * error. */
static int stream_output(run_t *r, ac_k8s_pod_state_t *ps, ac_result_t *res, ac_error_t **err)
{
	int w = wait_pod(r, false, ps, err);
	if (w < 0)
		return w;
	if (w == 1) {
		if (logs_read(r, &r->lo, err) < 0)
			return -1;
		_cleanup_free_ char *path =
		    ac_k8s_attach_path(r->k.conn.namespace, r->k.pod, AC_K8S_CONTAINER,
				       r->cmd->stdin_open, false, err);
		if (!path)
			return -1;
		ac_kc_stream_t s = {.path = path,
				    .in_fd = r->cmd->stdin_open ? r->fds[0] : -1,
				    .out_fd = -1,
				    .err_fd = -1,
				    .deadline_ms = r->deadline,
				    .cancel_fd = r->cmd->cancel_fd > 0
						     ? r->cmd->cancel_fd
						     : (r->ctx ? r->ctx->cancel_fd : -1),
				    .wake_fd = sig_pipe[0],
				    .status_optional = true,
				    .connected = attached,
				    .sink = sink,
				    .arg = r};
		int code = 0;
		ac_error_t *e = NULL;
		int rc = ac_kc_stream(&r->k, &s, &code, &e);
		if (rc == 1 || rc == 2 || (rc < 0 && e && e->kind == AC_ERR_STATE)) {
			ac_error_free(e);
			return -2;
		}
		if (rc < 0) {
			/* The container may have ended before the attach: then the log has all
			 * (an attach to a container that is not running is refused). */
			ac_k8s_pod_state_t now;
			if (ac_kc_pod_get(&r->k, r->k.pod, &now, NULL) != 1 ||
			    now.verdict != AC_K8S_POD_ENDED || r->got[1] || r->got[2]) {
				if (err)
					*err = e;
				else
					ac_error_free(e);
				return -1;
			}
			ac_error_free(e);
		}
		w = wait_pod(r, true, ps, err);
		if (w < 0)
			return w;
	}
	/* Live, the attach carried everything after the log's part, up to the container's
	 * end: the log is not read again. */
	ac_error_t *e = NULL;
	if (!r->live && finish_output(r, &e) < 0) {
		/* The command ran: its status stands, the output's gap is said. */
		hold_flush(r);
		dprintf(r->fds[2], "agentcell: output the attach missed is not shown: %s\n",
			e ? e->msg : "the pod's log could not be read");
	}
	ac_error_free(e);
	fill_result(r, ps, res);
	return 0;
}

int ac_k8s_run(const ac_backend_ctx_t *ctx, const json_t *st0, const ac_cmd_t *cmd, int fds[3],
	       ac_result_t *res, ac_error_t **err)
{
	if (cmd->tty)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "a terminal (-t) is not supported for one-shot runs by the "
				    "kubernetes backend");
	memset(res, 0, sizeof(*res));
	json_t *st = json_deep_copy(st0);
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	run_t r = {.ctx = ctx,
		   .cmd = cmd,
		   .fds = {fds[0], fds[1], fds[2]},
		   .deadline =
		       cmd->timeout > 0 ? ac_kc_now_ms() + (int64_t)(cmd->timeout * 1000) : -1,
		   .split = -1};
	if (ac_k8s_create(ctx, st, err) < 0 || ac_kc_open(st, &r.k, err) < 0) {
		json_decref(st);
		return -1;
	}
	char uuid[37], id[AC_K8S_RUN_ID_MAX + 1];
	ac_uuid_v7(uuid);
	size_t n = 0;
	for (const char *c = uuid; *c && n < 32; c++)
		if (*c != '-')
			id[n++] = *c;
	id[n] = 0;
	if (ac_k8s_run_pod_name(id, r.k.pod, err) < 0) {
		ac_kc_close(&r.k);
		json_decref(st);
		return -1;
	}
	sigs_t sg;
	sigs_begin(&sg);
	bool made_policy = false, made_pod = false;
	ac_k8s_pod_state_t ps;
	int rc = create_objects(&r, st, id, &made_policy, &made_pod, err);
	if (rc == 0)
		rc = stream_output(&r, &ps, res, err);
	if (rc == -2) {
		int why = stop_reason(&r);
		/* The output so far, as far as the log has it (the container still runs). */
		ac_error_t *e = NULL;
		if (!r.live && finish_output(&r, &e) < 0)
			hold_flush(&r);
		ac_error_free(e);
		if (why == 1 || sig_got) {
			res->signal = sig_got;
			res->exit_code = 128 + sig_got;
			rc = 0;
		} else if (why == 2) {
			rc = ac_error_set(err, AC_ERR_STATE, 0, "the caller went away");
		} else {
			res->timed_out = true;
			res->exit_code = 124;
			rc = 0;
		}
	}
	/* Deleting, whatever happened (a second Ctrl-C meanwhile changes nothing). */
	if (made_pod)
		ac_kc_pod_delete(&r.k, r.k.pod, NULL);
	if (made_policy)
		ac_kc_policy_delete(&r.k, r.k.pod, NULL);
	hold_flush(&r);
	logs_free(&r.lo);
	ac_kc_close(&r.k);
	json_decref(st);
	sigs_end(&sg);
	return rc;
}
