/* Private to src/backends/kubernetes/: one op's connection to a sandbox's cluster and the
 * requests every op makes with it (cluster.c), and the exec streams over pods/exec
 * (exec.c). backend.c holds the ops that use them. */
#ifndef AGENTCELL_BACKENDS_K8S_CLUSTER_H
#define AGENTCELL_BACKENDS_K8S_CLUSTER_H

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/backend.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/pod.h"
#include "backends/owner.h"
#include "backends/remote/remote.h"
#include "backends/remote/streamsig.h"

#define AC_KC_POLICY_API       "/apis/networking.k8s.io/v1/namespaces/"
#define AC_KC_MANAGED_SELECTOR "labelSelector=agentcell.dev%2Fmanaged-by%3Dagentcell"
/* The hint of the exec wrapper's refusal of -u (ac_execwrap_argv). */
#define AC_KC_USER_HINT "set [kubernetes] run_as_user for the pod"

/* One op's connection to the sandbox's cluster. */
typedef struct ac_kc {
	ac_k8s_conn_t conn;
	ac_remote_t *r;
	ac_k8s_pod_opts_t po;
	char pod[AC_K8S_NAME_MAX];
	char uid[24];	  /* run_as_user as text, "" when the image's */
	char creator[96]; /* po.creator: this process, "pid:starttime:boot_id" */
	/* > 0: an exec stream fails (AC_ERR_BACKEND) once its stdout passed this many bytes
	 * (a tar read from a pod); out_len counts them. */
	uint64_t out_max, out_len;
} ac_kc_t;

/* --- cluster.c --- */
/* Records that this home made objects through the connection a state's "kubernetes"
 * object names (HOME/kubernetes/clusters/): gc visits those clusters. Best effort. */
void ac_kc_remember_cluster(const char *home, const json_t *cfg);
/* Opens the connection a state's "kubernetes" object names (its "name", if any, gives
 * k->pod). */
int ac_kc_open(const json_t *st, ac_kc_t *k, ac_error_t **err);
void ac_kc_close(ac_kc_t *k);
int64_t ac_kc_now_ms(void);
/* A non-empty string of cfg, else NULL. */
const char *ac_kc_cfg_str(const json_t *cfg, const char *key);
/* METHOD path; returns the HTTP status (resp to free), -1 when no answer came. */
long ac_kc_call(ac_kc_t *k, const char *method, const char *path, const json_t *body,
		ac_remote_resp_t *resp, ac_error_t **err);
/* A request whose 2xx (and, with ok404, 404) is success; anything else the one-line error. */
int ac_kc_simple(ac_kc_t *k, const char *method, const char *path, const json_t *body, bool ok404,
		 const char *what, ac_error_t **err);
/* /api/v1/namespaces/NS/pods[/POD] and the networkpolicies path (pod/pol NULL: the list). */
void ac_kc_pod_path(const ac_kc_t *k, const char *pod, char *out, size_t cap);
void ac_kc_policy_path(const ac_kc_t *k, const char *pol, char *out, size_t cap);
/* Sleeps ms, or less when the caller gives up (ctx->cancel_fd): -1 then. */
int ac_kc_nap(const ac_backend_ctx_t *ctx, int ms);
/* GET the pod: 1 with *out, 0 when it is not there, -1 on error. */
int ac_kc_pod_get(ac_kc_t *k, const char *pod, ac_k8s_pod_state_t *out, ac_error_t **err);
/* Deletes the pod (grace AC_K8S_GRACE_SECONDS) and waits up to 60 s until it is gone. */
int ac_kc_pod_delete(ac_kc_t *k, const char *pod, ac_error_t **err);
int ac_kc_policy_delete(ac_kc_t *k, const char *pol, ac_error_t **err);
/* The policy (network off) and the pod, then the wait until the container runs; on
 * failure what this call made is deleted again. */
int ac_kc_pod_up(const ac_backend_ctx_t *ctx, ac_kc_t *k, const json_t *st, const json_t *pod,
		 ac_error_t **err);

/* --- exec.c --- */
/* One stream over a pods/exec or pods/attach WebSocket (v5, else v4). */
typedef struct ac_kc_stream {
	const char *path;     /* the request, with its query */
	int in_fd;	      /* stdin, -1: none; its end half-closes channel 0 (v5) */
	int out_fd, err_fd;   /* output, -1: dropped (when there is no sink) */
	int64_t deadline_ms;  /* -1: none */
	int cancel_fd;	      /* > 0: hung up ends the stream, AC_ERR_STATE */
	int wake_fd;	      /* > 0: readable ends the stream (returns 2) */
	bool status_optional; /* attach: an end without a status is an end */
	/* Called once when the WebSocket is up (e.g. to read the pod's log then). */
	void (*connected)(void *arg);
	/* Non-NULL: every payload of channels 1 and 2 goes here instead of the fds. */
	void (*sink)(void *arg, int channel, const unsigned char *data, size_t len);
	void *arg;
	/* A terminal (the path asked tty=true): the size (TIOCGWINSZ of in_fd, out_fd or
	 * err_fd, else rows x cols) goes on channel 4 right after the upgrade, and again on
	 * every SIGWINCH when winch; the end of input is a ^D. */
	bool tty, winch;
	unsigned short rows, cols;
	/* 0-terminated (NULL: none): each of these signals stops the command. With kill_id
	 * (the exec wrapper's handle) the killer runs and the stream waits up to 10 s more
	 * for the command's own status (0, or 1 without one); without, it returns 2 at once.
	 * *stopped (may be NULL) receives the signal. */
	const int *stop_signals;
	const char *kill_id;
	int *stopped;
} ac_kc_stream_t;
/* Returns 0 with *code (the status channel's; unchanged without one), 1 when the deadline
 * passed first, 2 when wake_fd became readable, -1 on error. */
int ac_kc_stream(ac_kc_t *k, const ac_kc_stream_t *s, int *code, ac_error_t **err);
/* One exec stream: argv over pods/exec, stdin from in_fd (-1: none), output to out_fd and
 * err_fd (-1: dropped). Returns 0 with *code (the status channel's), 1 when deadline_ms
 * (-1: none) passed first, -1 on error (AC_ERR_STATE when cancel_fd hung up). */
int ac_kc_exec_stream(ac_kc_t *k, char **argv, int in_fd, int out_fd, int err_fd,
		      int64_t deadline_ms, int cancel_fd, int *code, ac_error_t **err);
/* The killer of the command with handle id: a second exec, bounded to 30 s. */
void ac_kc_run_killer(ac_kc_t *k, const char *id);
/* cmd in the running pod k->pod through the exec wrapper (env, cwd, user, --timeout). */
int ac_kc_exec_in(ac_kc_t *k, const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err);
/* ops.exec */
int ac_k8s_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err);

/* --- tty.c: terminal size and signals of a stream (ac_kc_stream's helpers; the signal
 * handling itself is src/backends/remote/streamsig.h's) --- */
/* After the upgrade: the terminal's size (s->tty), then s's signals taken (blocked but
 * inside ac_stream_sigs_poll, so that none falls between a check and the wait). */
int ac_kc_stream_begin(ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_stream_sigs_t *g,
		       ac_error_t **err);
/* At the top of each turn: a resize sent for a SIGWINCH; a stop signal runs the killer
 * (*deadline_ms becomes the grace's end) or returns 2; -1 on a send error; else 0. */
int ac_kc_stream_signals(ac_kc_t *k, ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_stream_sigs_t *g,
			 int64_t *deadline_ms, ac_error_t **err);

/* --- detach.c: ops.exec_detach, kill_detached, detached_state --- */
int ac_k8s_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
		       int out_fd, int err_fd, int status_fd, long *pid, long *shim,
		       ac_error_t **err);
int ac_k8s_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
			 ac_error_t **err);
int ac_k8s_detached_state(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status);

/* --- run.c --- */
/* ops.run: the command as a pod's container (see run.c). */
int ac_k8s_run(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd, int fds[3],
	       ac_result_t *res, ac_error_t **err);
/* --- backend.c --- */
/* ops.create: resolves the connection into st's "kubernetes" object. */
int ac_k8s_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err);

#endif
