/* The Kubernetes backend behind struct ac_backend_ops (issue 13): a sandbox is a pod
 * "agentcell-K" (pod.h) in the namespace its create resolved, under a deny-all NetworkPolicy
 * of the same name while its network is off; commands run over pods/exec on a WebSocket
 * (channel.h).
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
 *     at the deadline and a second exec runs the killer (ac_k8s_kill_argv).
 *   - run makes a temporary sandbox pod (policy + pod, as start), execs the command in it
 *     and deletes both, on success, error and timeout.
 *   - no tty, files, detach or resize yet (capabilities not declared). */
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
static int k8s_create(const ac_backend_ctx_t *ctx, json_t *st, ac_error_t **err)
{
	(void)ctx;
	json_t *cfg = json_object_get(st, "kubernetes");
	if (!json_is_object(cfg)) {
		cfg = json_object();
		json_object_set_new(st, "kubernetes", cfg);
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

/* ops.run: a temporary sandbox pod (policy + pod), the command exec'd in it, both deleted. */
static int k8s_run(const ac_backend_ctx_t *ctx, const json_t *st0, const ac_cmd_t *cmd, int fds[3],
		   ac_result_t *res, ac_error_t **err)
{
	if (cmd->tty)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "a terminal (-t) is not supported by the kubernetes backend");
	json_t *st = json_deep_copy(st0);
	if (!st)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	int rc = k8s_create(ctx, st, err);
	ac_kc_t k;
	if (rc == 0)
		rc = ac_kc_open(st, &k, err);
	if (rc < 0) {
		json_decref(st);
		return -1;
	}
	json_t *pod = ac_k8s_pod_spec(st, &k.po, err);
	rc = pod ? ac_kc_pod_up(ctx, &k, st, pod, err) : -1;
	json_decref(pod);
	if (rc == 0) {
		rc = ac_kc_exec_in(&k, cmd, fds, res, err);
		ac_kc_pod_delete(&k, k.pod, NULL);
		if (!ac_state_bool(st, "network", false))
			ac_kc_policy_delete(&k, k.pod, NULL);
	}
	ac_kc_close(&k);
	json_decref(st);
	return rc;
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

/* Whether a labelled object is a sandbox's of this store, in this namespace. */
static bool owned(const ac_backend_ctx_t *ctx, const json_t *obj, const char *ns)
{
	json_t *md = json_object_get(obj, "metadata");
	/* The exact name is the pod's annotation; a policy has only the label (the key,
	 * which is the name itself for plain names). */
	const char *name =
	    json_string_value(json_object_get(json_object_get(md, "annotations"), AC_K8S_ANN_NAME));
	if (!name)
		name = json_string_value(
		    json_object_get(json_object_get(md, "labels"), AC_K8S_LABEL_SANDBOX));
	const char *objname = json_string_value(json_object_get(md, "name"));
	json_t *st = NULL;
	if (!name || !objname || !ctx->store || !ac_name_valid(name) ||
	    ac_store_load(ctx->store, name, &st, NULL) < 0)
		return false;
	json_t *cfg = json_object_get(st, "kubernetes");
	char pod[AC_K8S_NAME_MAX];
	bool yes =
	    !strcmp(ac_state_str(st, "backend", ""), "kubernetes") &&
	    !strcmp(ac_kc_cfg_str(cfg, "namespace") ? ac_kc_cfg_str(cfg, "namespace") : "", ns) &&
	    ac_k8s_pod_name(name, pod, NULL) == 0 && !strcmp(pod, objname);
	json_decref(st);
	return yes;
}

static void list_orphans(const ac_backend_ctx_t *ctx, ac_kc_t *k, const char *path,
			 const char *kind, json_t *out, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = ac_kc_call(k, "GET", path, NULL, &r, err);
	if (s >= 0 && (s < 200 || s >= 300)) {
		char what[64];
		snprintf(what, sizeof(what), "list %s", kind);
		ac_k8s_error_from(&r, k->conn.remote.name, what, err);
	}
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(r.json, "items"), i, it)
	{
		if (owned(ctx, it, k->conn.namespace))
			continue;
		const char *n =
		    json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
		char fix[400];
		snprintf(fix, sizeof(fix), "kubectl delete %s %s -n %s", kind, n ? n : "?",
			 k->conn.namespace);
		json_array_append_new(out,
				      json_pack("{ss ss ss ss}", "kind", kind, "name", n ? n : "",
						"namespace", k->conn.namespace, "remove", fix));
	}
	ac_remote_resp_free(&r);
}

/* ops.probe: resolve, GET /version, and the labelled pods and policies no sandbox owns
 * (read-only: shown, never deleted). */
static json_t *k8s_probe(const ac_backend_ctx_t *ctx)
{
	json_t *out = json_object();
	ac_kc_t k;
	ac_error_t *e = NULL;
	json_t *none = json_object();
	if (ac_kc_open(none, &k, &e) < 0) {
		json_decref(none);
		json_object_set_new(out, "error", json_string(e ? e->msg : "no connection"));
		ac_error_free(e);
		return out;
	}
	json_decref(none);
	json_object_set_new(out, "label", json_string("kubernetes cluster"));
	json_object_set_new(out, "engine", json_string(k.conn.remote.server));
	json_object_set_new(out, "source", json_string(k.conn.remote.name));
	json_object_set_new(out, "namespace", json_string(k.conn.namespace));
	ac_remote_resp_t r;
	long s = ac_kc_call(&k, "GET", "/version", NULL, &r, &e);
	if (s >= 200 && s < 300 && json_is_string(json_object_get(r.json, "gitVersion")))
		json_object_set(out, "version", json_object_get(r.json, "gitVersion"));
	else if (s >= 0)
		ac_k8s_error_from(&r, k.conn.remote.name, "get /version", &e);
	ac_remote_resp_free(&r);
	if (!e) {
		json_t *orphans = json_array();
		char path[400];
		ac_kc_pod_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" AC_KC_MANAGED_SELECTOR);
		list_orphans(ctx, &k, path, "pod", orphans, &e);
		ac_kc_policy_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" AC_KC_MANAGED_SELECTOR);
		if (!e)
			list_orphans(ctx, &k, path, "networkpolicy", orphans, &e);
		json_object_set_new(out, "orphans", orphans);
	}
	if (e)
		json_object_set_new(out, "error", json_string(e->msg));
	ac_error_free(e);
	ac_kc_close(&k);
	return out;
}

const ac_backend_ops_t ac_k8s_ops = {
    .create = k8s_create,
    .start = k8s_start,
    .stop = k8s_stop,
    .destroy = k8s_destroy,
    .is_running = k8s_is_running,
    .exec = ac_k8s_exec,
    .run = k8s_run,
    .available = k8s_available,
    .probe = k8s_probe,
};
