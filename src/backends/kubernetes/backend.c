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
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"

#define POLICY_API	 "/apis/networking.k8s.io/v1/namespaces/"
#define MANAGED_SELECTOR "labelSelector=agentcell.dev%2Fmanaged-by%3Dagentcell"

/* One op's connection to the sandbox's cluster. */
typedef struct kc {
	ac_k8s_conn_t conn;
	ac_remote_t *r;
	ac_k8s_pod_opts_t po;
	char pod[AC_K8S_NAME_MAX];
	char uid[24]; /* run_as_user as text, "" when the image's */
} kc_t;

static void kc_close(kc_t *k)
{
	if (k->r)
		ac_remote_close(k->r);
	k->r = NULL;
	ac_k8s_conn_free(&k->conn);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *cfg_str(const json_t *cfg, const char *key)
{
	const char *s = json_string_value(json_object_get(cfg, key));
	return s && *s ? s : NULL;
}

static void settings_of(const json_t *cfg, ac_k8s_settings_t *s)
{
	memset(s, 0, sizeof(*s));
	s->kubeconfig = cfg_str(cfg, "kubeconfig");
	s->context = cfg_str(cfg, "context");
	s->namespace = cfg_str(cfg, "namespace");
}

/* Opens the connection a state's "kubernetes" object names. name: the sandbox (for the pod
 * name), or NULL. */
static int kc_open(const json_t *st, kc_t *k, ac_error_t **err)
{
	memset(k, 0, sizeof(*k));
	const json_t *cfg = json_object_get(st, "kubernetes");
	ac_k8s_settings_t s;
	settings_of(cfg, &s);
	if (ac_k8s_conn_load(&s, &k->conn, err) < 0)
		return -1;
	if (!k->conn.namespace || !ac_k8s_dns_label(k->conn.namespace)) {
		kc_close(k);
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not a Kubernetes namespace",
				    k->conn.namespace ? k->conn.namespace : "");
	}
	k->po.namespace = k->conn.namespace;
	k->po.runtime_class = cfg_str(cfg, "runtime_class");
	k->po.service_account = cfg_str(cfg, "service_account");
	k->po.node_selector = json_object_get(cfg, "node_selector");
	k->po.image_pull_secrets = json_object_get(cfg, "image_pull_secrets");
	k->po.default_image = cfg_str(cfg, "image");
	json_t *u = json_object_get(cfg, "run_as_user");
	k->po.run_as_user = json_is_integer(u) ? (long long)json_integer_value(u) : -1;
	if (k->po.run_as_user >= 0)
		snprintf(k->uid, sizeof(k->uid), "%lld", k->po.run_as_user);
	const char *name = ac_state_str(st, "name", NULL);
	if (name && ac_k8s_pod_name(name, k->pod, err) < 0) {
		kc_close(k);
		return -1;
	}
	if (ac_remote_open(&k->conn.remote, &k->r, err) < 0) {
		kc_close(k);
		return -1;
	}
	return 0;
}

/* METHOD path; returns the HTTP status (resp to free), -1 when no answer came. */
static long call(kc_t *k, const char *method, const char *path, const json_t *body,
		 ac_remote_resp_t *resp, ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	if (ac_remote_request(k->r, method, path, body, NULL, resp, err) < 0)
		return -1;
	return resp->status;
}

/* A request whose 2xx (and, with ok404, 404) is success; anything else the one-line error. */
static int simple(kc_t *k, const char *method, const char *path, const json_t *body, bool ok404,
		  const char *what, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = call(k, method, path, body, &r, err);
	int rc = 0;
	if (s < 0)
		rc = -1;
	else if (!(ok404 && s == 404) && (s < 200 || s >= 300))
		rc = ac_k8s_error_from(&r, k->conn.remote.name, what, err) < 0 ? -1 : 0;
	ac_remote_resp_free(&r);
	return rc;
}

static void pod_path(const kc_t *k, const char *pod, char *out, size_t cap)
{
	snprintf(out, cap, "/api/v1/namespaces/%s/pods%s%s", k->conn.namespace, pod ? "/" : "",
		 pod ? pod : "");
}

static void policy_path(const kc_t *k, const char *pol, char *out, size_t cap)
{
	snprintf(out, cap, POLICY_API "%s/networkpolicies%s%s", k->conn.namespace, pol ? "/" : "",
		 pol ? pol : "");
}

/* Sleeps ms, or less when the caller gives up: -1 then. */
static int nap(const ac_backend_ctx_t *ctx, int ms)
{
	if (ctx && ctx->cancel_fd > 0) {
		struct pollfd p = {.fd = ctx->cancel_fd, .events = POLLIN | POLLRDHUP};
		int n = poll(&p, 1, ms);
		return n > 0 ? -1 : 0;
	}
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}

/* GET the pod: 1 with *out, 0 when it is not there, -1 on error. */
static int pod_get(kc_t *k, const char *pod, ac_k8s_pod_state_t *out, ac_error_t **err)
{
	char path[300];
	pod_path(k, pod, path, sizeof(path));
	ac_remote_resp_t r;
	long s = call(k, "GET", path, NULL, &r, err);
	int rc;
	if (s < 0)
		rc = -1;
	else if (s == 404)
		rc = 0;
	else if (s < 200 || s >= 300) {
		char what[128];
		snprintf(what, sizeof(what), "get pod %s", pod);
		ac_k8s_error_from(&r, k->conn.remote.name, what, err);
		rc = -1;
	} else {
		ac_k8s_pod_state(r.json, out);
		rc = 1;
	}
	ac_remote_resp_free(&r);
	return rc;
}

/* Deletes the pod (grace AC_K8S_GRACE_SECONDS) and waits up to 60 s until it is gone. */
static int pod_delete(kc_t *k, const char *pod, ac_error_t **err)
{
	char path[340], what[128];
	pod_path(k, pod, path, sizeof(path));
	size_t n = strlen(path);
	snprintf(path + n, sizeof(path) - n, "?gracePeriodSeconds=%d", AC_K8S_GRACE_SECONDS);
	snprintf(what, sizeof(what), "delete pod %s", pod);
	if (simple(k, "DELETE", path, NULL, true, what, err) < 0)
		return -1;
	int64_t end = now_ms() + 60000;
	for (;;) {
		ac_k8s_pod_state_t ps;
		int rc = pod_get(k, pod, &ps, err);
		if (rc <= 0)
			return rc;
		if (now_ms() > end)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: pod %s is still there 60 s after its deletion",
					    k->conn.remote.name, pod);
		nap(NULL, 200);
	}
}

static int policy_delete(kc_t *k, const char *pol, ac_error_t **err)
{
	char path[300], what[128];
	policy_path(k, pol, path, sizeof(path));
	snprintf(what, sizeof(what), "delete networkpolicy %s", pol);
	return simple(k, "DELETE", path, NULL, true, what, err);
}

/* The policy (network off) and the pod, then the wait until the container runs; on failure
 * what this call made is deleted again. */
static int pod_up(const ac_backend_ctx_t *ctx, kc_t *k, const json_t *st, const json_t *pod,
		  ac_error_t **err)
{
	char path[300], what[128];
	bool made_policy = false;
	ac_error_t *e = NULL;
	if (!ac_state_bool(st, "network", false)) {
		json_t *pol =
		    ac_k8s_network_policy(ac_state_str(st, "name", ""), NULL, &k->po, err);
		if (!pol)
			return -1;
		policy_path(k, NULL, path, sizeof(path));
		ac_remote_resp_t r;
		long s = call(k, "POST", path, pol, &r, err);
		json_decref(pol);
		if (s < 0)
			return -1;
		snprintf(what, sizeof(what), "create networkpolicy %s", k->pod);
		int rc = 0;
		if (s >= 200 && s < 300)
			made_policy = true;
		else if (s != 409) /* kept from an earlier start: the same deny-all */
			rc = ac_k8s_error_from(&r, k->conn.remote.name, what, err) < 0 ? -1 : 0;
		ac_remote_resp_free(&r);
		if (rc < 0)
			return -1;
	}
	pod_path(k, NULL, path, sizeof(path));
	snprintf(what, sizeof(what), "create pod %s", k->pod);
	for (int attempt = 0;; attempt++) {
		ac_remote_resp_t r;
		long s = call(k, "POST", path, pod, &r, &e);
		int rc = 0;
		if (s >= 200 && s < 300) {
			ac_remote_resp_free(&r);
			break;
		}
		if (s == 409 && attempt == 0) {
			/* A pod of the same name: one still terminating, or left by a
			 * start that was killed. Ours by name and label: replace it. */
			ac_remote_resp_free(&r);
			if (pod_delete(k, k->pod, &e) < 0)
				goto fail;
			continue;
		}
		if (s >= 0)
			rc = ac_k8s_error_from(&r, k->conn.remote.name, what, &e);
		ac_remote_resp_free(&r);
		(void)rc;
		goto fail_nopod;
	}
	const char *t = getenv("AGENTCELL_K8S_START_TIMEOUT");
	int64_t limit = t && atoi(t) > 0 ? atoi(t) : 300;
	int64_t end = now_ms() + limit * 1000;
	for (;;) {
		ac_k8s_pod_state_t ps;
		int rc = pod_get(k, k->pod, &ps, &e);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			ac_error_set(&e, AC_ERR_BACKEND, 0, "%s: pod %s was deleted while starting",
				     k->conn.remote.name, k->pod);
			goto fail;
		}
		if (ps.verdict == AC_K8S_POD_RUNNING && !ps.deleting)
			return 0;
		if (ps.verdict == AC_K8S_POD_FAILED || ps.verdict == AC_K8S_POD_ENDED ||
		    ps.deleting) {
			ac_error_set(&e, AC_ERR_BACKEND, 0, "%s: %s", k->conn.remote.name,
				     ps.error[0] ? ps.error : "the pod ended while starting");
			goto fail;
		}
		if (now_ms() > end) {
			ac_error_set(&e, AC_ERR_BACKEND, 0,
				     "%s: pod %s did not run within %lld s (phase %s%s%s)",
				     k->conn.remote.name, k->pod, (long long)limit,
				     ps.phase[0] ? ps.phase : "unknown", ps.reason[0] ? ", " : "",
				     ps.reason);
			goto fail;
		}
		if (nap(ctx, 250) < 0) {
			ac_error_set(&e, AC_ERR_STATE, 0, "the start was cancelled");
			goto fail;
		}
	}
fail:
	pod_delete(k, k->pod, NULL);
fail_nopod:
	if (made_policy)
		policy_delete(k, k->pod, NULL);
	if (err)
		*err = e;
	else
		ac_error_free(e);
	return -1;
}

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
	if (!cfg_str(cfg, "kubeconfig") && !getenv("KUBERNETES_SERVICE_HOST")) {
		const char *env = getenv("KUBECONFIG");
		if (env && *env && !strchr(env, ':')) {
			_cleanup_free_ char *abs = realpath(env, NULL);
			if (abs)
				json_object_set_new(cfg, "kubeconfig", json_string(abs));
		}
	}
	kc_t k;
	if (kc_open(st, &k, err) < 0)
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
		pod_path(&k, NULL, path, sizeof(path));
		strcat(path, "?limit=1");
		snprintf(what, sizeof(what), "list pods in namespace %s", k.conn.namespace);
		rc = simple(&k, "GET", path, NULL, false, what, err);
		json_decref(pod);
	}
	kc_close(&k);
	return rc;
}

static int k8s_start(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	kc_t k;
	if (kc_open(st, &k, err) < 0)
		return -1;
	int rc = -1;
	json_t *pod = ac_k8s_pod_spec(st, &k.po, err);
	if (pod) {
		rc = pod_up(ctx, &k, st, pod, err);
		json_decref(pod);
	}
	kc_close(&k);
	return rc;
}

static int k8s_stop(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	kc_t k;
	if (kc_open(st, &k, err) < 0)
		return -1;
	int rc = pod_delete(&k, k.pod, err);
	kc_close(&k);
	return rc;
}

static int k8s_destroy(const ac_backend_ctx_t *ctx, const json_t *st, ac_error_t **err)
{
	(void)ctx;
	kc_t k;
	if (kc_open(st, &k, err) < 0)
		return -1;
	int rc = pod_delete(&k, k.pod, err);
	if (rc == 0)
		rc = policy_delete(&k, k.pod, err);
	kc_close(&k);
	return rc;
}

static bool k8s_is_running(const ac_backend_ctx_t *ctx, const json_t *st, long *pid)
{
	(void)ctx;
	if (pid)
		*pid = 0;
	kc_t k;
	if (kc_open(st, &k, NULL) < 0)
		return false;
	ac_k8s_pod_state_t ps;
	bool run =
	    pod_get(&k, k.pod, &ps, NULL) == 1 && ps.verdict == AC_K8S_POD_RUNNING && !ps.deleting;
	kc_close(&k);
	return run;
}

/* One exec stream: argv over pods/exec, stdin from in_fd (-1: none), output to out_fd and
 * err_fd (-1: dropped). Returns 0 with *code (the status channel's), 1 when deadline_ms
 * (-1: none) passed first, -1 on error (AC_ERR_STATE when cancel_fd hung up). */
static int exec_stream(kc_t *k, char **argv, int in_fd, int out_fd, int err_fd, int64_t deadline_ms,
		       int cancel_fd, int *code, ac_error_t **err)
{
	_cleanup_free_ char *path = ac_k8s_exec_path(k->conn.namespace, k->pod, AC_K8S_CONTAINER,
						     argv, in_fd >= 0, false, err);
	if (!path)
		return -1;
	const char *chosen = NULL;
	ac_ws_conn_t *ws = NULL;
	if (ac_ws_connect(&k->conn.remote, path, ac_k8s_exec_protocols, &chosen, &ws, err) < 0)
		return -1;
	int version = ac_k8s_proto_version(chosen);
	int rc = -1;
	bool have_status = false;
	if (version < 0) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "%s: the exec answer chose no remotecommand subprotocol (%s)",
			     k->conn.remote.name, chosen ? chosen : "none");
		goto out;
	}
	unsigned char *frame = malloc(32769);
	if (!frame) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		/* Here too, not only when poll waits: a stream that never pauses must not
		 * outlive its deadline. */
		if (deadline_ms >= 0 && now_ms() >= deadline_ms) {
			rc = 1;
			break;
		}
		if (!ac_ws_pending(ws)) {
			struct pollfd p[3];
			int n = 0, iw = -1, ic = -1;
			p[n++] = (struct pollfd){.fd = ac_ws_fd(ws), .events = POLLIN};
			if (in_fd >= 0) {
				iw = n;
				p[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
			}
			if (cancel_fd > 0) {
				ic = n;
				p[n++] = (struct pollfd){.fd = cancel_fd, .events = POLLRDHUP};
			}
			int wait = -1;
			if (deadline_ms >= 0) {
				int64_t left = deadline_ms - now_ms();
				if (left <= 0) {
					rc = 1;
					break;
				}
				wait = left > 1000000 ? 1000000 : (int)left;
			}
			int got = poll(p, (nfds_t)n, wait);
			if (got < 0 && errno == EINTR)
				continue;
			if (got == 0)
				continue;
			if (ic >= 0 && (p[ic].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				ac_error_set(err, AC_ERR_STATE, 0, "the caller went away");
				break;
			}
			if (iw >= 0 && p[iw].revents) {
				ssize_t r = read(in_fd, frame + 1, 32768);
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (r > 0) {
					frame[0] = AC_K8S_CH_STDIN;
					if (ac_ws_send(ws, AC_WS_BINARY, frame, (size_t)r + 1,
						       err) < 0)
						break;
				} else {
					unsigned char cl[2];
					size_t cn =
					    ac_k8s_frame_close(version, AC_K8S_CH_STDIN, cl);
					if (cn && ac_ws_send(ws, AC_WS_BINARY, cl, cn, err) < 0)
						break;
					in_fd = -1;
				}
			}
			if (!(p[0].revents))
				continue;
		}
		int op;
		const unsigned char *data;
		size_t len;
		unsigned close_code = 0;
		int got = ac_ws_recv(ws, 0, &op, &data, &len, &close_code, err);
		if (got == 2)
			continue;
		if (got < 0)
			break;
		if (got == 0) {
			if (have_status)
				rc = 0;
			else
				ac_error_set(err, AC_ERR_BACKEND, 0,
					     "%s: the exec stream ended without an exit status "
					     "(close code %u)",
					     k->conn.remote.name, close_code);
			break;
		}
		int ch;
		const unsigned char *pl;
		size_t plen;
		int d = ac_k8s_frame_decode(data, len, &ch, &pl, &plen);
		if (d == 0)
			continue;
		if (d < 0) {
			ac_error_set(err, AC_ERR_BACKEND, 0,
				     "%s: the exec stream used an unknown channel",
				     k->conn.remote.name);
			break;
		}
		if (ch == AC_K8S_CH_STDOUT && out_fd >= 0 && plen)
			(void)ac_write_all(out_fd, pl, plen);
		else if (ch == AC_K8S_CH_STDERR && err_fd >= 0 && plen)
			(void)ac_write_all(err_fd, pl, plen);
		else if (ch == AC_K8S_CH_ERROR) {
			ac_error_t *e = NULL;
			if (ac_k8s_exec_status(pl, plen, code, &e) < 0) {
				if (e && (e->exit_code == 126 || e->exit_code == 127)) {
					/* As a shell: the message on stderr, its status. */
					if (err_fd >= 0) {
						(void)ac_write_all(err_fd, e->msg, strlen(e->msg));
						(void)ac_write_all(err_fd, "\n", 1);
					}
					*code = e->exit_code;
					ac_error_free(e);
				} else {
					if (err)
						*err = e;
					else
						ac_error_free(e);
					break;
				}
			}
			have_status = true;
		}
	}
	free(frame);
out:
	ac_ws_free(ws);
	return rc;
}

/* The killer of the command with handle id: a second exec, bounded to 30 s. */
static void run_killer(kc_t *k, const char *id)
{
	char **argv = ac_k8s_kill_argv(id, NULL);
	if (!argv)
		return;
	int code;
	exec_stream(k, argv, -1, -1, -1, now_ms() + 30000, -1, &code, NULL);
	ac_strv_free(argv);
}

static int exec_in(kc_t *k, const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	if (cmd->tty)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "a terminal (-t) is not supported by the kubernetes backend");
	char uuid[37], id[AC_K8S_EXEC_ID_MAX + 1];
	ac_uuid_v7(uuid);
	snprintf(id, sizeof(id), "%s", uuid);
	char **argv = ac_k8s_exec_argv(cmd, id, k->uid[0] ? k->uid : NULL, err);
	if (!argv)
		return -1;
	int64_t deadline = cmd->timeout > 0 ? now_ms() + (int64_t)(cmd->timeout * 1000) : -1;
	int code = -1;
	int rc = exec_stream(k, argv, cmd->stdin_open ? fds[0] : -1, fds[1], fds[2], deadline,
			     cmd->cancel_fd, &code, err);
	ac_strv_free(argv);
	memset(res, 0, sizeof(*res));
	if (rc == 1 || (rc < 0 && err && *err && (*err)->kind == AC_ERR_STATE)) {
		run_killer(k, id);
		if (rc < 0)
			return -1;
		res->timed_out = true;
		res->exit_code = 124;
		return 0;
	}
	if (rc < 0)
		return -1;
	res->exit_code = code;
	if (code > 128 && code < 128 + 65)
		res->signal = code - 128;
	return 0;
}

static int k8s_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		    const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err)
{
	(void)ctx;
	kc_t k;
	if (kc_open(st, &k, err) < 0)
		return -1;
	ac_k8s_pod_state_t ps;
	int g = pod_get(&k, k.pod, &ps, err);
	int rc = -1;
	if (g == 1 && ps.verdict == AC_K8S_POD_RUNNING && !ps.deleting)
		rc = exec_in(&k, cmd, fds, res, err);
	else if (g >= 0)
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0, "sandbox '%s' is not running", name);
	kc_close(&k);
	return rc;
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
	kc_t k;
	if (rc == 0)
		rc = kc_open(st, &k, err);
	if (rc < 0) {
		json_decref(st);
		return -1;
	}
	json_t *pod = ac_k8s_pod_spec(st, &k.po, err);
	rc = pod ? pod_up(ctx, &k, st, pod, err) : -1;
	json_decref(pod);
	if (rc == 0) {
		rc = exec_in(&k, cmd, fds, res, err);
		pod_delete(&k, k.pod, NULL);
		if (!ac_state_bool(st, "network", false))
			policy_delete(&k, k.pod, NULL);
	}
	kc_close(&k);
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
	bool yes = !strcmp(ac_state_str(st, "backend", ""), "kubernetes") &&
		   !strcmp(cfg_str(cfg, "namespace") ? cfg_str(cfg, "namespace") : "", ns) &&
		   ac_k8s_pod_name(name, pod, NULL) == 0 && !strcmp(pod, objname);
	json_decref(st);
	return yes;
}

static void list_orphans(const ac_backend_ctx_t *ctx, kc_t *k, const char *path, const char *kind,
			 json_t *out, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = call(k, "GET", path, NULL, &r, err);
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
	kc_t k;
	ac_error_t *e = NULL;
	json_t *none = json_object();
	if (kc_open(none, &k, &e) < 0) {
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
	long s = call(&k, "GET", "/version", NULL, &r, &e);
	if (s >= 200 && s < 300 && json_is_string(json_object_get(r.json, "gitVersion")))
		json_object_set(out, "version", json_object_get(r.json, "gitVersion"));
	else if (s >= 0)
		ac_k8s_error_from(&r, k.conn.remote.name, "get /version", &e);
	ac_remote_resp_free(&r);
	if (!e) {
		json_t *orphans = json_array();
		char path[400];
		pod_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" MANAGED_SELECTOR);
		list_orphans(ctx, &k, path, "pod", orphans, &e);
		policy_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" MANAGED_SELECTOR);
		if (!e)
			list_orphans(ctx, &k, path, "networkpolicy", orphans, &e);
		json_object_set_new(out, "orphans", orphans);
	}
	if (e)
		json_object_set_new(out, "error", json_string(e->msg));
	ac_error_free(e);
	kc_close(&k);
	return out;
}

const ac_backend_ops_t ac_k8s_ops = {
    .create = k8s_create,
    .start = k8s_start,
    .stop = k8s_stop,
    .destroy = k8s_destroy,
    .is_running = k8s_is_running,
    .exec = k8s_exec,
    .run = k8s_run,
    .available = k8s_available,
    .probe = k8s_probe,
};
