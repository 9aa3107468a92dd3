/* The Kubernetes backend behind struct ac_backend_ops (issue 13): a sandbox is a pod
 * "agentcell-K" (pod.h) in the namespace its create resolved, under a deny-all NetworkPolicy
 * of the same name while its network is off; commands run over pods/exec on a WebSocket
 * (channel.h) under the exec wrapper (src/backends/execwrap.h).
 *
 * The state's "kubernetes" object: the [kubernetes] table of agentcell.toml as it was when
 * the sandbox was made (copied by the manager), plus what create resolved: "namespace",
 * "context", "kubeconfig" (the explicit file, or $KUBECONFIG when it names one file),
 * "in_cluster". Every later op connects with those, so a changed configuration or
 * current-context never moves a sandbox to another cluster. ($KUBECONFIG lists of several
 * files are not recorded: they are read again at every op.)
 *
 * Decisions of this first landing:
 *   - create resolves the connection and lists pods in the namespace (one request): a wrong
 *     token or an unreachable server fails the create, and nothing is in the store; it
 *     makes nothing in the cluster.
 *   - start creates the NetworkPolicy (network off), then the pod, and polls the pod
 *     (every 250 ms, AGENTCELL_K8S_START_TIMEOUT seconds, default 300) until its container
 *     runs. A pod that cannot start (ErrImagePull, ImagePullBackOff, Unschedulable, a crash)
 *     fails the start at once with the cluster's reason; the pod and a policy this start
 *     made are deleted again. An autoscaler that would add a node is not waited for.
 *   - stop deletes the pod (grace 1 s) and waits until it is gone; the NetworkPolicy stays
 *     (it selects no pod meanwhile) so that no start ever runs a pod without it. destroy
 *     deletes both.
 *   - exec: the exec wrapper's argv (env, cwd, kill handle) over pods/exec, v5 then v4;
 *     stdin's end is v5's close signal for channel 0; v4 has no half-close, so with v4
 *     stdin's end is not passed on (a command reading to EOF waits for its --timeout).
 *     The exit code comes from the status channel only. --timeout: the host ends the stream
 *     at the deadline and a second exec runs the killer (ac_execwrap_kill_argv).
 *   - run: a pod whose container is the command, streamed over pods/attach with the log
 *     for what came before the attach; pod and policy deleted on every path (run.c).
 *   - files: tar over pods/exec (files.c), running sandboxes only.
 *   - exec -t: tty=true, the terminal's size on channel 4 after the upgrade and on every
 *     SIGWINCH (tty.c); signals reaching the CLI run the killer.
 *   - exec --detach: a watcher process on the host holds the stream (detach.c).
 *   - no resize yet (capability not declared). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"

/* ops.create: resolves the cluster, records it, checks the pod can be built and that the
 * cluster answers the namespace's pod list. Nothing is made in the cluster. */
int ac_k8s_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err)
{
	json_t *cfg = json_object_get(st, "kubernetes");
	if (!json_is_object(cfg)) {
		cfg = json_object();
		json_object_set_new(st, "kubernetes", cfg);
	}
	char owner[AC_OWNER_LEN + 1];
	if (ctx && ctx->home) {
		if (ac_owner_id(ctx->home, "kubernetes", true, owner, err) < 0)
			return -1;
		json_object_set_new(cfg, "owner", json_string(owner));
	}
	if (!ac_kc_cfg_str(cfg, "kubeconfig") && !getenv("KUBERNETES_SERVICE_HOST")) {
		const char *env = getenv("KUBECONFIG");
		if (env && *env && !strchr(env, ':')) {
			_cleanup_free_ char *abs = realpath(env, NULL);
			if (abs)
				json_object_set_new(cfg, "kubeconfig", json_string(abs));
		}
	}
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	json_object_set_new(cfg, "namespace", json_string(k.conn.namespace));
	if (k.conn.context)
		json_object_set_new(cfg, "context", json_string(k.conn.context));
	json_object_set_new(cfg, "in_cluster", json_boolean(k.conn.in_cluster));
	json_object_set_new(cfg, "pod", json_string(k.pod));
	int rc = -1;
	json_t *pod = ac_k8s_pod_spec(st, &k.po, err);
	if (pod) {
		char path[300], what[160];
		ac_kc_pod_path(&k, NULL, path, sizeof(path));
		strcat(path, "?limit=1");
		snprintf(what, sizeof(what), "list pods in namespace %s", k.conn.namespace);
		rc = ac_kc_simple(&k, "GET", path, NULL, false, what, err);
		json_decref(pod);
	}
	ac_kc_close(&k);
	if (rc == 0 && ctx && ctx->home)
		ac_kc_remember_cluster(ctx->home, cfg);
	return rc;
}

static int k8s_start(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	int rc = -1;
	json_t *pod = ac_k8s_pod_spec(st, &k.po, err);
	if (pod) {
		rc = ac_kc_pod_up(ctx, &k, st, pod, err);
		json_decref(pod);
	}
	ac_kc_close(&k);
	return rc;
}

static int k8s_stop(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	int rc = ac_kc_pod_delete(&k, k.pod, err);
	ac_kc_close(&k);
	return rc;
}

static int k8s_destroy(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	int rc = ac_kc_pod_delete(&k, k.pod, err);
	if (rc == 0)
		rc = ac_kc_policy_delete(&k, k.pod, err);
	ac_kc_close(&k);
	return rc;
}

static bool k8s_is_running(const ac_backend_ctx_t *ctx, const json_t *st, long *pid)
{
	(void)ctx;
	if (pid)
		*pid = 0;
	ac_kc_t k;
	if (ac_kc_open(st, &k, NULL) < 0)
		return false;
	ac_k8s_pod_state_t ps;
	bool run = ac_kc_pod_get(&k, k.pod, &ps, NULL) == 1 && ps.verdict == AC_K8S_POD_RUNNING &&
		   !ps.deleting;
	ac_kc_close(&k);
	return run;
}

/* For --backend auto: a connection resolves without running anything (no exec plugin, no
 * network). */
static bool k8s_available(const ac_backend_ctx_t *ctx)
{
	(void)ctx;
	ac_k8s_settings_t s = {.no_exec = true};
	ac_k8s_conn_t c;
	if (ac_k8s_conn_load(&s, &c, NULL) < 0)
		return false;
	ac_k8s_conn_free(&c);
	return true;
}

const ac_backend_ops_t ac_k8s_ops = {
    .create = ac_k8s_create,
    .start = k8s_start,
    .stop = k8s_stop,
    .destroy = k8s_destroy,
    .is_running = k8s_is_running,
    .exec = ac_k8s_exec,
    .run = ac_k8s_run,
    .files = ac_k8s_files,
    .exec_detach = ac_k8s_exec_detach,
    .kill_detached = ac_k8s_kill_detached,
    .detached_state = ac_k8s_detached_state,
    .available = k8s_available,
    .probe = ac_k8s_probe,
    .sweep = ac_k8s_sweep,
};
