/* One op's connection to a sandbox's cluster (cluster.h): opening it from the state,
 * requests, and the pod's and policy's create, wait and delete. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/procid.h"
#include "base/sha1.h"
#include "base/util.h"
#include "base/uuid.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/kubernetes/pod.h"
#include "backends/owner.h"
#include "backends/remote/remote.h"

void ac_kc_close(ac_kc_t *k)
{
	if (k->r)
		ac_remote_close(k->r);
	k->r = NULL;
	ac_k8s_conn_free(&k->conn);
}

int64_t ac_kc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ac_kc_cfg_str(const json_t *cfg, const char *key)
{
	const char *s = json_string_value(json_object_get(cfg, key));
	return s && *s ? s : NULL;
}

static void settings_of(const json_t *cfg, ac_k8s_settings_t *s)
{
	memset(s, 0, sizeof(*s));
	s->kubeconfig = ac_kc_cfg_str(cfg, "kubeconfig");
	s->context = ac_kc_cfg_str(cfg, "context");
	s->namespace = ac_kc_cfg_str(cfg, "namespace");
}

/* Opens the connection a state's "kubernetes" object names. name: the sandbox (for the pod
 * name), or NULL. */
int ac_kc_open(const json_t *st, ac_kc_t *k, ac_error_t **err)
{
	memset(k, 0, sizeof(*k));
	const json_t *cfg = json_object_get(st, "kubernetes");
	ac_k8s_settings_t s;
	settings_of(cfg, &s);
	if (ac_k8s_conn_load(&s, &k->conn, err) < 0)
		return -1;
	if (!k->conn.namespace || !ac_k8s_dns_label(k->conn.namespace)) {
		ac_kc_close(k);
		return ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not a Kubernetes namespace",
				    k->conn.namespace ? k->conn.namespace : "");
	}
	k->po.namespace = k->conn.namespace;
	k->po.runtime_class = ac_kc_cfg_str(cfg, "runtime_class");
	k->po.service_account = ac_kc_cfg_str(cfg, "service_account");
	k->po.node_selector = json_object_get(cfg, "node_selector");
	k->po.image_pull_secrets = json_object_get(cfg, "image_pull_secrets");
	k->po.default_image = ac_kc_cfg_str(cfg, "image");
	k->po.owner = ac_kc_cfg_str(cfg, "owner");
	ac_owner_creator(k->creator, sizeof(k->creator));
	k->po.creator = k->creator;
	json_t *u = json_object_get(cfg, "run_as_user");
	k->po.run_as_user = json_is_integer(u) ? (long long)json_integer_value(u) : -1;
	if (k->po.run_as_user >= 0)
		snprintf(k->uid, sizeof(k->uid), "%lld", k->po.run_as_user);
	const char *name = ac_state_str(st, "name", NULL);
	if (name && ac_k8s_pod_name(name, k->pod, err) < 0) {
		ac_kc_close(k);
		return -1;
	}
	if (ac_remote_open(&k->conn.remote, &k->r, err) < 0) {
		ac_kc_close(k);
		return -1;
	}
	return 0;
}

/* METHOD path; returns the HTTP status (resp to free), -1 when no answer came. */
long ac_kc_call(ac_kc_t *k, const char *method, const char *path, const json_t *body,
		ac_remote_resp_t *resp, ac_error_t **err)
{
	memset(resp, 0, sizeof(*resp));
	if (ac_remote_request(k->r, method, path, body, NULL, resp, err) < 0)
		return -1;
	return resp->status;
}

/* A request whose 2xx (and, with ok404, 404) is success; anything else the one-line error. */
int ac_kc_simple(ac_kc_t *k, const char *method, const char *path, const json_t *body, bool ok404,
		 const char *what, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = ac_kc_call(k, method, path, body, &r, err);
	int rc = 0;
	if (s < 0)
		rc = -1;
	else if (!(ok404 && s == 404) && (s < 200 || s >= 300))
		rc = ac_k8s_error_from(&r, k->conn.remote.name, what, err) < 0 ? -1 : 0;
	ac_remote_resp_free(&r);
	return rc;
}

void ac_kc_pod_path(const ac_kc_t *k, const char *pod, char *out, size_t cap)
{
	snprintf(out, cap, "/api/v1/namespaces/%s/pods%s%s", k->conn.namespace, pod ? "/" : "",
		 pod ? pod : "");
}

void ac_kc_policy_path(const ac_kc_t *k, const char *pol, char *out, size_t cap)
{
	snprintf(out, cap, AC_KC_POLICY_API "%s/networkpolicies%s%s", k->conn.namespace,
		 pol ? "/" : "", pol ? pol : "");
}

/* Sleeps ms, or less when the caller gives up: -1 then. */
int ac_kc_nap(const ac_backend_ctx_t *ctx, int ms)
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
int ac_kc_pod_get(ac_kc_t *k, const char *pod, ac_k8s_pod_state_t *out, ac_error_t **err)
{
	char path[300];
	ac_kc_pod_path(k, pod, path, sizeof(path));
	ac_remote_resp_t r;
	long s = ac_kc_call(k, "GET", path, NULL, &r, err);
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
int ac_kc_pod_delete(ac_kc_t *k, const char *pod, ac_error_t **err)
{
	char path[340], what[128];
	ac_kc_pod_path(k, pod, path, sizeof(path));
	size_t n = strlen(path);
	snprintf(path + n, sizeof(path) - n, "?gracePeriodSeconds=%d", AC_K8S_GRACE_SECONDS);
	snprintf(what, sizeof(what), "delete pod %s", pod);
	if (ac_kc_simple(k, "DELETE", path, NULL, true, what, err) < 0)
		return -1;
	int64_t end = ac_kc_now_ms() + 60000;
	for (;;) {
		ac_k8s_pod_state_t ps;
		int rc = ac_kc_pod_get(k, pod, &ps, err);
		if (rc <= 0)
			return rc;
		if (ac_kc_now_ms() > end)
			return ac_error_set(err, AC_ERR_BACKEND, 0,
					    "%s: pod %s is still there 60 s after its deletion",
					    k->conn.remote.name, pod);
		ac_kc_nap(NULL, 200);
	}
}

int ac_kc_policy_delete(ac_kc_t *k, const char *pol, ac_error_t **err)
{
	char path[300], what[128];
	ac_kc_policy_path(k, pol, path, sizeof(path));
	snprintf(what, sizeof(what), "delete networkpolicy %s", pol);
	return ac_kc_simple(k, "DELETE", path, NULL, true, what, err);
}

/* The policy (network off) and the pod, then the wait until the container runs; on failure
 * what this call made is deleted again. */
int ac_kc_pod_up(const ac_backend_ctx_t *ctx, ac_kc_t *k, const json_t *st, const json_t *pod,
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
		ac_kc_policy_path(k, NULL, path, sizeof(path));
		ac_remote_resp_t r;
		long s = ac_kc_call(k, "POST", path, pol, &r, err);
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
	ac_kc_pod_path(k, NULL, path, sizeof(path));
	snprintf(what, sizeof(what), "create pod %s", k->pod);
	for (int attempt = 0;; attempt++) {
		ac_remote_resp_t r;
		long s = ac_kc_call(k, "POST", path, pod, &r, &e);
		int rc = 0;
		if (s >= 200 && s < 300) {
			ac_remote_resp_free(&r);
			break;
		}
		if (s == 409 && attempt == 0) {
			/* A pod of the same name: one still terminating, or left by a
			 * start that was killed. Ours by name and label: replace it. */
			ac_remote_resp_free(&r);
			if (ac_kc_pod_delete(k, k->pod, &e) < 0)
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
	int64_t end = ac_kc_now_ms() + limit * 1000;
	for (;;) {
		ac_k8s_pod_state_t ps;
		int rc = ac_kc_pod_get(k, k->pod, &ps, &e);
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
		if (ac_kc_now_ms() > end) {
			ac_error_set(&e, AC_ERR_BACKEND, 0,
				     "%s: pod %s did not run within %lld s (phase %s%s%s)",
				     k->conn.remote.name, k->pod, (long long)limit,
				     ps.phase[0] ? ps.phase : "unknown", ps.reason[0] ? ", " : "",
				     ps.reason);
			goto fail;
		}
		if (ac_kc_nap(ctx, 250) < 0) {
			ac_error_set(&e, AC_ERR_STATE, 0, "the start was cancelled");
			goto fail;
		}
	}
fail:
	ac_kc_pod_delete(k, k->pod, NULL);
fail_nopod:
	if (made_policy)
		ac_kc_policy_delete(k, k->pod, NULL);
	if (err)
		*err = e;
	else
		ac_error_free(e);
	return -1;
}

/* ---- what this home made, and where ---- */

/* The connection keys of a "kubernetes" object (what ac_kc_open reads to connect). */
static const char *const conn_keys[] = {"kubeconfig", "context", "namespace", "in_cluster"};

void ac_kc_remember_cluster(const char *home, const json_t *cfg)
{
	json_t *c = json_object();
	for (size_t i = 0; i < AC_ARRAY_SIZE(conn_keys); i++) {
		json_t *v = json_object_get(cfg, conn_keys[i]);
		if (v)
			json_object_set(c, conn_keys[i], v);
	}
	char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	if (!text)
		return;
	unsigned char d[AC_SHA1_LEN];
	ac_sha1(text, strlen(text), d);
	char path[80];
	int n = snprintf(path, sizeof(path), "kubernetes/clusters/");
	for (int i = 0; i < 10; i++)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", d[i]);
	snprintf(path + n, sizeof(path) - (size_t)n, ".json");
	int hfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat sb;
	if (hfd >= 0 && fstatat(hfd, path, &sb, 0) < 0 &&
	    ac_mkdir_p_at(hfd, "kubernetes/clusters", 0700, NULL) == 0)
		ac_write_file_atomic_at(hfd, path, text, strlen(text), 0600, NULL);
	if (hfd >= 0)
		close(hfd);
	free(text);
}
