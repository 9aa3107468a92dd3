/* Private to src/backends/kubernetes/: one op's connection to a sandbox's cluster and the
 * requests every op makes with it (cluster.c), and the exec streams over pods/exec
 * (exec.c). backend.c holds the ops that use them. */
#ifndef AGENTCELL_BACKENDS_K8S_CLUSTER_H
#define AGENTCELL_BACKENDS_K8S_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/backend.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"

#define AC_KC_POLICY_API       "/apis/networking.k8s.io/v1/namespaces/"
#define AC_KC_MANAGED_SELECTOR "labelSelector=agentcell.dev%2Fmanaged-by%3Dagentcell"

/* One op's connection to the sandbox's cluster. */
typedef struct ac_kc {
	ac_k8s_conn_t conn;
	ac_remote_t *r;
	ac_k8s_pod_opts_t po;
	char pod[AC_K8S_NAME_MAX];
	char uid[24]; /* run_as_user as text, "" when the image's */
} ac_kc_t;

/* --- cluster.c --- */
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

#endif
