/* Pods, NetworkPolicies and pod status for the Kubernetes backend (see pod.h). Pure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/agents.h"
#include "agentcell/store.h"
#include "backends/kubernetes/pod.h"
#include "base/parse.h"
#include "base/sha1.h"
#include "base/util.h"

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* ---- names ---- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool ac_k8s_dns_label(const char *s)
{
	size_t n = s ? strnlen(s, 64) : 0;
	if (n == 0 || n > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool dns_subdomain(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t len = i - start;
		if (len == 0 || len > 63 || !is_lower_alnum(s[start]) || !is_lower_alnum(s[i - 1]))
			return false;
		for (size_t j = start; j < i; j++)
			if (!is_lower_alnum(s[j]) && s[j] != '-')
				return false;
		start = i + 1;
	}
	return true;
}

/* A label value or a key's name part: ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]. */
static bool qualified(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

bool ac_k8s_label_ok(const char *k, const char *v)
{
	if (!k || !v)
		return false;
	const char *slash = strchr(k, '/');
	const char *nm = slash ? slash + 1 : k;
	if (slash && !dns_subdomain(k, (size_t)(slash - k)))
		return false;
	if (!qualified(nm, strlen(nm)))
		return false;
	size_t vn = strlen(v);
	return vn == 0 || qualified(v, vn);
}

/* A name agentcell may hold: 1-63 of [A-Za-z0-9_-] (ac_name_valid is stricter at the ends;
 * the mapping takes the wider set so that it never fails on a valid name). */
static bool sandbox_chars(const char *name)
{
	size_t n = name ? strnlen(name, 64) : 0;
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(name[i]) && name[i] != '-' && name[i] != '_')
			return false;
	return true;
}

static bool plain(const char *name)
{
	size_t n = strlen(name);
	if (n > AC_K8S_KEY_MAX || !ac_k8s_dns_label(name))
		return false;
	return strstr(name, "--") == NULL;
}

int ac_k8s_sandbox_key(const char *name, char *key, ac_error_t **err)
{
	if (!sandbox_chars(name))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not a sandbox name (1-63 of A-Z a-z 0-9 _ -)",
				    name ? name : "");
	if (plain(name)) {
		strcpy(key, name);
		return 0;
	}
	char esc[2 * 63 + 1];
	size_t o = 0;
	for (const char *c = name; *c; c++) {
		if (is_lower_alnum(*c)) {
			esc[o++] = *c;
		} else {
			esc[o++] = '-';
			esc[o++] = *c == '-' ? '0' : *c == '_' ? '1' : (char)(*c - 'A' + 'a');
		}
	}
	esc[o] = 0;
	if (o + 3 <= AC_K8S_KEY_MAX) {
		snprintf(key, AC_K8S_KEY_MAX + 1, "x--%s", esc);
		return 0;
	}
	/* Too long to escape: a readable stem and 60 bits of the name's SHA-1 in base32. */
	unsigned char d[AC_SHA1_LEN];
	ac_sha1(name, strlen(name), d);
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	char h[13];
	uint64_t bits = 0;
	for (int i = 0; i < 8; i++)
		bits = bits << 8 | d[i];
	for (int i = 0; i < 12; i++)
		h[i] = b32[(bits >> (59 - 5 * i)) & 31];
	h[12] = 0;
	char stem[38];
	size_t s = 0;
	for (const char *c = name; *c && s < sizeof(stem) - 1; c++)
		stem[s++] = is_lower_alnum(*c) ? *c : is_alnum(*c) ? (char)(*c - 'A' + 'a') : '-';
	stem[s] = 0;
	snprintf(key, AC_K8S_KEY_MAX + 1, "h--%s-%s", stem, h);
	return 0;
}

int ac_k8s_pod_name(const char *name, char *out, ac_error_t **err)
{
	char key[AC_K8S_KEY_MAX + 1];
	if (ac_k8s_sandbox_key(name, key, err) < 0)
		return -1;
	snprintf(out, AC_K8S_NAME_MAX, "agentcell-%s", key);
	return 0;
}

int ac_k8s_run_pod_name(const char *id, char *out, ac_error_t **err)
{
	size_t n = id ? strnlen(id, AC_K8S_RUN_ID_MAX + 1) : 0;
	bool ok = n > 0 && n <= AC_K8S_RUN_ID_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = is_lower_alnum(id[i]);
	if (!ok)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "'%s' is not a run id (1-%d of a-z 0-9)", id ? id : "",
				    AC_K8S_RUN_ID_MAX);
	snprintf(out, AC_K8S_NAME_MAX, "agentcell-run--%s", id);
	return 0;
}

/* ---- quantities ---- */

int ac_k8s_mebibytes(long long mb, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%lldMi", mb);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int ac_k8s_millicores(double cpus, char *out, size_t cap)
{
	long long m = llround(cpus * 1000);
	if (m < 1)
		m = 1;
	int n = snprintf(out, cap, "%lldm", m);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- pods ---- */

/* Env names as the API server (before 1.32's relaxed validation) takes them. */
static bool env_name_ok(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int add_env(json_t *env, const char *kv, ac_error_t **err)
{
	const char *eq = kv ? strchr(kv, '=') : NULL;
	if (!eq || !env_name_ok(kv, (size_t)(eq - kv)))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "environment entry '%.100s' is not NAME=VALUE with a name "
				    "Kubernetes takes ([A-Za-z_.-][A-Za-z0-9_.-]*)",
				    kv ? kv : "(not a string)");
	json_t *e = json_pack("{s:s%, s:s}", "name", kv, (size_t)(eq - kv), "value", eq + 1);
	if (!e)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "environment entry '%.100s' is not valid UTF-8", kv);
	json_array_append_new(env, e);
	return 0;
}

/* Whether a key's prefix is domain or one of its subdomains. */
static bool prefix_in(const char *k, size_t plen, const char *domain)
{
	size_t dn = strlen(domain);
	return plen >= dn && !memcmp(k + plen - dn, domain, dn) &&
	       (plen == dn || k[plen - dn - 1] == '.');
}

static bool reserved_key(const char *k)
{
	const char *slash = strchr(k, '/');
	if (!slash)
		return false;
	size_t plen = (size_t)(slash - k);
	return prefix_in(k, plen, "agentcell.dev") || prefix_in(k, plen, "kubernetes.io") ||
	       prefix_in(k, plen, "k8s.io");
}

/* Labels: ours first, then the sandbox's own where Kubernetes takes them (never one of
 * ours or a kubernetes.io / k8s.io one); the rest go to an annotation as JSON. */
static int add_user_labels(const json_t *st, json_t *labels, json_t *ann, ac_error_t **err)
{
	json_t *user = json_object_get(st, "labels");
	if (!user || json_is_null(user))
		return 0;
	if (!json_is_object(user))
		return ac_error_set(err, AC_ERR_INVALID, 0, "the state's labels are not an object");
	json_t *rest = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(user, k, v)
	{
		const char *sv = json_string_value(v);
		bool reserved = reserved_key(k);
		if (sv && !reserved && ac_k8s_label_ok(k, sv))
			json_object_set_new(labels, k, json_string(sv));
		else
			json_object_set(rest, k, v);
	}
	if (json_object_size(rest) > 0) {
		char *text = json_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS);
		if (text)
			json_object_set_new(ann, AC_K8S_ANN_LABELS, json_string(text));
		free(text);
	}
	json_decref(rest);
	return 0;
}

static json_t *resources(const json_t *st, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	long long mem = ac_state_int(st, "memory_mb", 512);
	double cpus = ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1));
	json_t *disk_j = json_object_get(st, "disk_mb");
	long long disk = disk_j ? ac_state_int(st, "disk_mb", 0) : (long long)AC_DISK_DEFAULT_MB;
	if (mem < 0 || mem > (1ll << 30) || !(cpus == 0 || (cpus >= 0.001 && cpus <= 1e6)) ||
	    disk < 0 || disk > (long long)AC_DISK_MAX_MB) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "sandbox '%s' has out-of-range limits in its state file", name);
		return NULL;
	}
	json_t *lim = json_object();
	char q[32];
	if (mem > 0 && ac_k8s_mebibytes(mem, q, sizeof(q)) > 0)
		json_object_set_new(lim, "memory", json_string(q));
	if (cpus > 0 && ac_k8s_millicores(cpus, q, sizeof(q)) > 0)
		json_object_set_new(lim, "cpu", json_string(q));
	if (disk > 0 && ac_k8s_mebibytes(disk, q, sizeof(q)) > 0)
		json_object_set_new(lim, "ephemeral-storage", json_string(q));
	/* Requests equal to limits: the pod is scheduled where it fits and is never the first
	 * to be evicted for what it was promised (Guaranteed QoS when both cpu and memory are
	 * limited). */
	return json_pack("{s:o, s:o}", "requests", json_deep_copy(lim), "limits", lim);
}

static json_t *security_context(bool read_only, const ac_k8s_pod_opts_t *o)
{
	json_t *sc =
	    json_pack("{s:b, s:b, s:{s:[s]}, s:b, s:{s:s}}", "allowPrivilegeEscalation", 0,
		      "privileged", 0, "capabilities", "drop", "ALL", "readOnlyRootFilesystem",
		      read_only, "seccompProfile", "type", "RuntimeDefault");
	if (o && o->run_as_user >= 0) {
		json_object_set_new(sc, "runAsUser", json_integer(o->run_as_user));
		if (o->run_as_user > 0)
			json_object_set_new(sc, "runAsNonRoot", json_true());
	}
	return sc;
}

/* What every pod of agentcell has, sandbox's or run's. */
/* Who made an object: this home's owner label (gc deletes only its own) and the making
 * process (gc spares what a live run is still using). */
static void mark_origin(json_t *labels, json_t *ann, const ac_k8s_pod_opts_t *o)
{
	if (o && o->owner)
		json_object_set_new(labels, AC_K8S_LABEL_OWNER, json_string(o->owner));
	if (o && o->creator)
		json_object_set_new(ann, AC_K8S_ANN_CREATOR, json_string(o->creator));
}

static json_t *base_pod(const json_t *st, const char *pod_name, json_t *labels, json_t *ann,
			const ac_k8s_pod_opts_t *o, ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	const char *img = ac_state_str(st, "image", "host");
	if (!strcmp(img, "host"))
		img = o && o->default_image ? o->default_image : AC_K8S_DEFAULT_IMAGE;
	if (!ac_image_ref_valid(img)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "invalid image reference '%s'", img);
		return NULL;
	}
	_cleanup_json_ json_t *res = resources(st, err);
	if (!res)
		return NULL;
	_cleanup_json_ json_t *env = json_array();
	size_t i;
	json_t *e;
	json_t *stenv = json_object_get(st, "env");
	if (stenv && !json_is_null(stenv) && !json_is_array(stenv)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "the state's env is not an array");
		return NULL;
	}
	json_array_foreach(stenv, i, e)
	{
		if (add_env(env, json_string_value(e), err) < 0)
			return NULL;
	}
	_cleanup_json_ json_t *sel = NULL;
	if (o && o->node_selector) {
		const char *k;
		json_t *v;
		sel = json_object();
		json_object_foreach((json_t *)o->node_selector, k, v)
		{
			if (!json_is_string(v) || !ac_k8s_label_ok(k, json_string_value(v))) {
				ac_error_set(err, AC_ERR_INVALID, 0,
					     "[kubernetes] node_selector '%s' is not a valid "
					     "Kubernetes label",
					     k);
				return NULL;
			}
			json_object_set(sel, k, v);
		}
	}
	_cleanup_json_ json_t *secrets = NULL;
	if (o && o->image_pull_secrets) {
		secrets = json_array();
		json_array_foreach(o->image_pull_secrets, i, e)
		{
			const char *s = json_string_value(e);
			if (!s || !dns_subdomain(s, strlen(s))) {
				ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "[kubernetes] image_pull_secrets: '%s' is not a secret "
				    "name",
				    s ? s : "(not a string)");
				return NULL;
			}
			json_array_append_new(secrets, json_pack("{s:s}", "name", s));
		}
	}
	bool ro = ac_state_bool(st, "read_only", false);
	json_t *ctr =
	    json_pack("{s:s, s:s, s:O, s:O, s:o}", "name", AC_K8S_CONTAINER, "image", img, "env",
		      env, "resources", res, "securityContext", security_context(ro, o));
	json_t *psc = json_pack("{s:{s:s}}", "seccompProfile", "type", "RuntimeDefault");
	if (o && o->run_as_user >= 0) {
		json_object_set_new(psc, "runAsUser", json_integer(o->run_as_user));
		if (o->run_as_user > 0)
			json_object_set_new(psc, "runAsNonRoot", json_true());
	}
	json_t *spec = json_pack(
	    "{s:[o], s:s, s:i, s:b, s:b, s:b, s:b, s:b, s:b, s:o}", "containers", ctr,
	    "restartPolicy", "Never", "terminationGracePeriodSeconds", AC_K8S_GRACE_SECONDS,
	    "automountServiceAccountToken", 0, "enableServiceLinks", 0, "hostNetwork", 0, "hostPID",
	    0, "hostIPC", 0, "shareProcessNamespace", 0, "securityContext", psc);
	if (ro) {
		/* A read-only root still needs a writable /tmp (and the exec wrapper's handles
		 * live there); in memory, so it counts against the memory limit. */
		long long mem = ac_state_int(st, "memory_mb", 512);
		long long tmp = mem > 0 && mem < 1024 ? mem : 1024;
		char q[32];
		ac_k8s_mebibytes(tmp, q, sizeof(q));
		json_object_set_new(spec, "volumes",
				    json_pack("[{s:s, s:{s:s, s:s}}]", "name", "tmp", "emptyDir",
					      "medium", "Memory", "sizeLimit", q));
		json_object_set_new(ctr, "volumeMounts",
				    json_pack("[{s:s, s:s}]", "name", "tmp", "mountPath", "/tmp"));
	}
	if (o && o->runtime_class)
		json_object_set_new(spec, "runtimeClassName", json_string(o->runtime_class));
	if (o && o->service_account)
		json_object_set_new(spec, "serviceAccountName", json_string(o->service_account));
	if (sel && json_object_size(sel))
		json_object_set(spec, "nodeSelector", sel);
	if (secrets && json_array_size(secrets))
		json_object_set(spec, "imagePullSecrets", secrets);
	long long pids = ac_state_int(st, "pids_limit", 0);
	if (pids > 0)
		json_object_set_new(ann, AC_K8S_ANN_PIDS, json_sprintf("%lld", pids));
	json_object_set_new(ann, AC_K8S_ANN_NAME, json_string(name));
	mark_origin(labels, ann, o);
	json_t *meta =
	    json_pack("{s:s, s:O, s:O}", "name", pod_name, "labels", labels, "annotations", ann);
	if (o && o->namespace)
		json_object_set_new(meta, "namespace", json_string(o->namespace));
	json_t *pod = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod",
				"metadata", meta, "spec", spec);
	if (!pod)
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the pod of sandbox '%s'", name);
	return pod;
}

json_t *ac_k8s_pod_spec(const json_t *state, const ac_k8s_pod_opts_t *o, ac_error_t **err)
{
	const char *name = ac_state_str(state, "name", NULL);
	char key[AC_K8S_KEY_MAX + 1], pod_name[AC_K8S_NAME_MAX];
	if (ac_k8s_sandbox_key(name, key, err) < 0)
		return NULL;
	snprintf(pod_name, sizeof(pod_name), "agentcell-%s", key);
	_cleanup_json_ json_t *labels = json_pack("{s:s, s:s}", AC_K8S_LABEL_MANAGED,
						  AC_K8S_MANAGED_VALUE, AC_K8S_LABEL_SANDBOX, key);
	_cleanup_json_ json_t *ann = json_object();
	if (add_user_labels(state, labels, ann, err) < 0)
		return NULL;
	json_t *pod = base_pod(state, pod_name, labels, ann, o, err);
	if (!pod)
		return NULL;
	json_t *ctr =
	    json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
	json_object_set_new(ctr, "command", json_pack("[s, s, s]", "sh", "-c", AC_K8S_IDLE_SCRIPT));
	return pod;
}

static json_t *string_array(char *const *v, ac_error_t **err)
{
	json_t *a = json_array();
	for (; v && *v; v++) {
		json_t *s = json_string(*v);
		if (!s) {
			json_decref(a);
			ac_error_set(err, AC_ERR_INVALID, 0, "the command is not valid UTF-8");
			return NULL;
		}
		json_array_append_new(a, s);
	}
	return a;
}

/* A uid given as a number: 0 to 2^31-1 (Kubernetes' runAsUser range). */
static long long uid_of(const char *s)
{
	if (!s || !*s || strlen(s) > 10)
		return -1;
	long long v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
	}
	return v <= 2147483647ll ? v : -1;
}

json_t *ac_k8s_run_pod_spec(const json_t *state, const ac_cmd_t *cmd, const char *run_id,
			    const ac_k8s_pod_opts_t *o, ac_error_t **err)
{
	char pod_name[AC_K8S_NAME_MAX];
	if (ac_k8s_run_pod_name(run_id, pod_name, err) < 0)
		return NULL;
	if (!cmd || !cmd->argv || !cmd->argv[0] || !cmd->argv[0][0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	ac_k8s_pod_opts_t opts = {.run_as_user = -1};
	if (o)
		opts = *o;
	if (cmd->user) {
		long long uid = uid_of(cmd->user);
		if (uid < 0) {
			ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				     "the Kubernetes backend takes a numeric user (-u 1000), not "
				     "'%s': a pod cannot look names up in its image",
				     cmd->user);
			return NULL;
		}
		opts.run_as_user = uid;
	}
	if (cmd->cwd && cmd->cwd[0] != '/') {
		ac_error_set(err, AC_ERR_INVALID, 0, "the working directory '%s' is not absolute",
			     cmd->cwd);
		return NULL;
	}
	_cleanup_json_ json_t *labels = json_pack("{s:s, s:s}", AC_K8S_LABEL_MANAGED,
						  AC_K8S_MANAGED_VALUE, AC_K8S_LABEL_RUN, run_id);
	_cleanup_json_ json_t *ann = json_object();
	/* A run's own labels stay in the annotation: its pod is found by the run label. */
	json_t *user = json_object_get(state, "labels");
	if (json_is_object(user) && json_object_size(user)) {
		char *text = json_dumps(user, JSON_COMPACT | JSON_SORT_KEYS);
		if (text)
			json_object_set_new(ann, AC_K8S_ANN_LABELS, json_string(text));
		free(text);
	}
	_cleanup_json_ json_t *empty = json_object();
	json_t *pod = base_pod(state ? state : empty, pod_name, labels, ann, &opts, err);
	if (!pod)
		return NULL;
	json_t *ctr =
	    json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
	json_t *argv = string_array(cmd->argv, err);
	if (!argv) {
		json_decref(pod);
		return NULL;
	}
	/* command, not args: the image's entrypoint would wrap the command. */
	json_object_set_new(ctr, "command", argv);
	json_t *env = json_object_get(ctr, "env");
	for (char *const *x = cmd->env; x && *x; x++) {
		if (add_env(env, *x, err) < 0) {
			json_decref(pod);
			return NULL;
		}
	}
	if (cmd->cwd)
		json_object_set_new(ctr, "workingDir", json_string(cmd->cwd));
	if (cmd->stdin_open) {
		json_object_set_new(ctr, "stdin", json_true());
		/* The end of the attached client's stdin ends the container's. */
		json_object_set_new(ctr, "stdinOnce", json_true());
	}
	if (cmd->tty)
		json_object_set_new(ctr, "tty", json_true());
	return pod;
}

json_t *ac_k8s_network_policy(const char *sandbox, const char *run_id, const ac_k8s_pod_opts_t *o,
			      ac_error_t **err)
{
	char name[AC_K8S_NAME_MAX];
	const char *sel_key, *sel_val;
	char key[AC_K8S_KEY_MAX + 1];
	if (run_id) {
		if (ac_k8s_run_pod_name(run_id, name, err) < 0)
			return NULL;
		sel_key = AC_K8S_LABEL_RUN;
		sel_val = run_id;
	} else {
		if (ac_k8s_sandbox_key(sandbox, key, err) < 0)
			return NULL;
		snprintf(name, sizeof(name), "agentcell-%s", key);
		sel_key = AC_K8S_LABEL_SANDBOX;
		sel_val = key;
	}
	/* No ingress and no egress rules with both policy types: nothing in, nothing out
	 * (DNS included) for the selected pod. */
	json_t *np = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:{s:{s:s}}, s:[s, s]}}",
			       "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy",
			       "metadata", "name", name, "labels", AC_K8S_LABEL_MANAGED,
			       AC_K8S_MANAGED_VALUE, sel_key, sel_val, "spec", "podSelector",
			       "matchLabels", sel_key, sel_val, "policyTypes", "Ingress", "Egress");
	if (np && o && o->namespace)
		json_object_set_new(json_object_get(np, "metadata"), "namespace",
				    json_string(o->namespace));
	if (np) {
		json_t *meta = json_object_get(np, "metadata");
		json_t *ann = json_object();
		mark_origin(json_object_get(meta, "labels"), ann, o);
		if (json_object_size(ann))
			json_object_set_new(meta, "annotations", ann);
		else
			json_decref(ann);
	}
	if (!np)
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the NetworkPolicy");
	return np;
}

/* ---- status ---- */

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void copy_text(char *dst, size_t cap, const char *src)
{
	ac_escape_controls(src ? src : "", dst, cap);
}

/* Waiting reasons after which the container will not start without a change. */
static const char *const fatal_waiting[] = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PostStartHookError",
    "ContainerCannotRun",
    "RegistryUnavailable",
    "SignatureValidationFailed",
    "ErrImageInspect",
};

static bool fatal(const char *reason)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(fatal_waiting); i++)
		if (!strcmp(reason, fatal_waiting[i]))
			return true;
	return false;
}

static const json_t *find_container(const json_t *status)
{
	const json_t *list = json_object_get(status, "containerStatuses");
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
	{
		if (json_is_object(c) && !strcmp(str(c, "name"), AC_K8S_CONTAINER))
			return c;
	}
	c = json_array_get(list, 0);
	return json_is_object(c) ? c : NULL;
}

static void set_error(ac_k8s_pod_state_t *out, const char *what)
{
	const char *pod = out->name[0] ? out->name : "(unnamed)";
	if (out->message[0])
		snprintf(out->error, sizeof(out->error), "pod %s %s: %s: %s", pod, what,
			 out->reason, out->message);
	else if (out->reason[0])
		snprintf(out->error, sizeof(out->error), "pod %s %s: %s", pod, what, out->reason);
	else
		snprintf(out->error, sizeof(out->error), "pod %s %s", pod, what);
}

static void terminated_state(const json_t *t, ac_k8s_pod_state_t *out)
{
	out->terminated = true;
	json_t *code = json_object_get(t, "exitCode");
	json_t *sig = json_object_get(t, "signal");
	long long c = json_is_integer(code) ? json_integer_value(code) : -1;
	long long s = json_is_integer(sig) ? json_integer_value(sig) : 0;
	out->signal = s > 0 && s < 65 ? (int)s : 0;
	if (c >= 0 && c <= 255)
		out->exit_code = (int)c;
	else if (c > 255) /* a runtime's raw wait status or a Windows code */
		out->exit_code = 255;
	if (out->signal && out->exit_code <= 0)
		out->exit_code = 128 + out->signal;
	if (out->exit_code < 0)
		out->exit_code = 255; /* terminated with no code: not a success */
	copy_text(out->reason, sizeof(out->reason), str(t, "reason"));
	copy_text(out->message, sizeof(out->message), str(t, "message"));
}

int ac_k8s_pod_state(const json_t *pod, ac_k8s_pod_state_t *out)
{
	memset(out, 0, sizeof(*out));
	out->exit_code = -1;
	out->verdict = AC_K8S_POD_WAIT;
	if (!json_is_object(pod)) {
		out->verdict = AC_K8S_POD_FAILED;
		snprintf(out->error, sizeof(out->error), "the cluster's answer is not a pod");
		return -1;
	}
	const json_t *meta = json_object_get(pod, "metadata");
	const json_t *spec = json_object_get(pod, "spec");
	const json_t *status = json_object_get(pod, "status");
	copy_text(out->name, sizeof(out->name), str(meta, "name"));
	copy_text(out->phase, sizeof(out->phase), str(status, "phase"));
	out->deleting = json_object_get(meta, "deletionTimestamp") != NULL &&
			!json_is_null(json_object_get(meta, "deletionTimestamp"));
	out->scheduled = str(spec, "nodeName")[0] != 0;
	const json_t *unsched = NULL;
	bool ready_cond = false;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *type = str(c, "type"), *st = str(c, "status");
		if (!strcmp(type, "PodScheduled")) {
			if (!strcmp(st, "True"))
				out->scheduled = true;
			else if (!strcmp(st, "False"))
				unsched = c;
		} else if (!strcmp(type, "Ready") && !strcmp(st, "True")) {
			ready_cond = true;
		}
	}
	const json_t *cs = find_container(status);
	const json_t *state = json_object_get(cs, "state");
	const json_t *running = json_object_get(state, "running");
	const json_t *waiting = json_object_get(state, "waiting");
	const json_t *term = json_object_get(state, "terminated");
	json_t *rc = json_object_get(cs, "restartCount");
	out->restarts =
	    json_is_integer(rc) && json_integer_value(rc) > 0 && json_integer_value(rc) < 1000000000
		? (int)json_integer_value(rc)
		: 0;
	out->running = json_is_object(running);
	out->ready = json_is_true(json_object_get(cs, "ready")) || (!cs && ready_cond);

	if (json_is_object(term)) {
		terminated_state(term, out);
		out->verdict = AC_K8S_POD_ENDED;
		if (!out->reason[0])
			snprintf(out->reason, sizeof(out->reason), "%s",
				 out->exit_code ? "Error" : "Completed");
		char what[64];
		snprintf(what, sizeof(what), "ended with exit code %d", out->exit_code);
		set_error(out, what);
		return 0;
	}
	if (out->deleting) {
		out->verdict = AC_K8S_POD_FAILED;
		set_error(out, "is being deleted");
		return 0;
	}
	const char *phase = out->phase;
	if (!strcmp(phase, "Failed") || !strcmp(phase, "Succeeded")) {
		/* Ended without a container state: evicted, deadline exceeded, node lost. */
		out->verdict = AC_K8S_POD_ENDED;
		out->exit_code = !strcmp(phase, "Succeeded") ? 0 : 255;
		copy_text(out->reason, sizeof(out->reason),
			  str(status, "reason")[0] ? str(status, "reason") : phase);
		copy_text(out->message, sizeof(out->message), str(status, "message"));
		set_error(out, "ended");
		return 0;
	}
	if (out->running) {
		out->verdict = AC_K8S_POD_RUNNING;
		return 0;
	}
	if (json_is_object(waiting)) {
		copy_text(out->reason, sizeof(out->reason), str(waiting, "reason"));
		copy_text(out->message, sizeof(out->message), str(waiting, "message"));
		if (fatal(out->reason)) {
			out->verdict = AC_K8S_POD_FAILED;
			out->transient = !strcmp(out->reason, "ErrImagePull") ||
					 !strcmp(out->reason, "RegistryUnavailable");
			const json_t *last =
			    json_object_get(json_object_get(cs, "lastState"), "terminated");
			char msg[sizeof(out->message)];
			if (json_is_object(last) &&
			    json_is_integer(json_object_get(last, "exitCode")) &&
			    !out->message[0]) {
				snprintf(msg, sizeof(msg), "the container exited with code %lld",
					 (long long)json_integer_value(
					     json_object_get(last, "exitCode")));
				snprintf(out->message, sizeof(out->message), "%s", msg);
			} else if (json_is_object(last) &&
				   json_is_integer(json_object_get(last, "exitCode"))) {
				snprintf(msg, sizeof(msg), "%s (last exit code %lld)", out->message,
					 (long long)json_integer_value(
					     json_object_get(last, "exitCode")));
				snprintf(out->message, sizeof(out->message), "%s", msg);
			}
			set_error(out, "cannot start");
		}
		return 0;
	}
	if (unsched && !strcmp(str(unsched, "reason"), "Unschedulable")) {
		out->verdict = AC_K8S_POD_FAILED;
		out->transient = true;
		snprintf(out->reason, sizeof(out->reason), "Unschedulable");
		copy_text(out->message, sizeof(out->message), str(unsched, "message"));
		set_error(out, "cannot start");
	}
	return 0;
}
