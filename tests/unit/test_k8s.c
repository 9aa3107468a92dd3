/* Unit tests of the Kubernetes backend's pure half: pod and NetworkPolicy bodies
 * (src/backends/kubernetes/pod.c), pod status, the remotecommand channel protocol and URLs
 * (channel.c; the exec wrapper's tests are test_execwrap.c). The bodies are POSTed to the
 * strict test API server (tests/k8s/) when python3 and openssl are there.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/pod.h"
#include "base/io.h"
#include "base/util.h"
#include "testfork.h"
#include "testsrv.h"

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s (%s)", jerr.text, text);
	return j;
}

/* The value at a path of object keys and array indexes ("spec.containers.0.image"). */
static json_t *at(json_t *j, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t && j; t = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, strtoul(t, NULL, 10));
		else
			j = json_object_get(j, t);
	}
	return j;
}

static const char *at_str(json_t *j, const char *path)
{
	const char *s = json_string_value(at(j, path));
	if (!s)
		fail_msg("no string at %s", path);
	return s;
}

static void assert_at_bool(json_t *j, const char *path, bool want)
{
	json_t *v = at(j, path);
	if (!json_is_boolean(v) || json_is_true(v) != want)
		fail_msg("%s is not %s", path, want ? "true" : "false");
}

/* ---- names ---- */

/* The inverse of the escape of pod.h (x--ESC keys), to prove it is one. */
static bool unescape(const char *esc, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *c = esc; *c; c++) {
		if (o + 1 >= cap)
			return false;
		if (*c != '-') {
			out[o++] = *c;
			continue;
		}
		c++;
		if (*c == '0')
			out[o++] = '-';
		else if (*c == '1')
			out[o++] = '_';
		else if (*c >= 'a' && *c <= 'z')
			out[o++] = (char)(*c - 'a' + 'A');
		else
			return false;
	}
	out[o] = 0;
	return true;
}

static bool label_value_ok(const char *v)
{
	return ac_k8s_label_ok("k", v);
}

static void check_key(const char *name, char key[AC_K8S_KEY_MAX + 1])
{
	char pod[AC_K8S_NAME_MAX], again[AC_K8S_NAME_MAX];
	assert_int_equal(ac_k8s_sandbox_key(name, key, NULL), 0);
	assert_int_equal(ac_k8s_pod_name(name, pod, NULL), 0);
	assert_true(strlen(pod) <= 63);
	if (!ac_k8s_dns_label(pod))
		fail_msg("pod name '%s' of '%s' is not a DNS-1123 label", pod, name);
	if (!label_value_ok(key))
		fail_msg("key '%s' of '%s' is not a label value", key, name);
	assert_int_equal(ac_k8s_pod_name(name, again, NULL), 0);
	assert_string_equal(pod, again); /* stable */
	if (!strncmp(key, "x--", 3)) {
		char back[128];
		assert_true(unescape(key + 3, back, sizeof(back)));
		assert_string_equal(back, name);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_names(void **state)
{
	(void)state;
	char key[AC_K8S_KEY_MAX + 1], pod[AC_K8S_NAME_MAX];
	struct {
		const char *name, *pod;
	} cases[] = {
	    {"box", "agentcell-box"},
	    {"my-box-2", "agentcell-my-box-2"},
	    {"Box", "agentcell-x---box"},
	    {"my_box", "agentcell-x--my-1box"},
	    {"a--b", "agentcell-x--a-0-0b"},
	    {"-a", "agentcell-x---0a"},
	    {"a-", "agentcell-x--a-0"},
	    {"x--y", "agentcell-x--x-0-0y"},
	    {"h--y", "agentcell-x--h-0-0y"},
	    /* 53 bytes: the longest plain name */
	    {"abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi",
	     "agentcell-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		check_key(cases[i].name, key);
		assert_int_equal(ac_k8s_pod_name(cases[i].name, pod, NULL), 0);
		assert_string_equal(pod, cases[i].pod);
	}
	/* 54 lowercase bytes and 63 upper-case ones: hashed, readable stem, still <= 63. */
	const char *long1 = "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij";
	check_key(long1, key);
	assert_true(!strncmp(key, "h--abcdefghij-", 14));
	assert_int_equal(strlen(key), AC_K8S_KEY_MAX);
	char upper[64];
	memset(upper, 'A', 63);
	upper[63] = 0;
	check_key(upper, key);
	assert_true(!strncmp(key, "h--aaaa", 7));
	upper[62] = 'B'; /* one byte apart: another hash */
	char key2[AC_K8S_KEY_MAX + 1];
	check_key(upper, key2);
	assert_string_not_equal(key, key2);

	/* Injective over every name of up to 3 of a tricky alphabet, plus long ones. */
	const char alpha[] = "aZ-_0";
	size_t n = 0, cap = 5 + 25 + 125 + 2000;
	char **keys = calloc(cap, sizeof(char *));
	char name[64];
	for (int len = 1; len <= 3; len++) {
		int total = 1;
		for (int j = 0; j < len; j++)
			total *= 5;
		for (int v = 0; v < total; v++) {
			int x = v;
			for (int j = 0; j < len; j++, x /= 5)
				name[j] = alpha[x % 5];
			name[len] = 0;
			check_key(name, key);
			keys[n++] = strdup(key);
		}
	}
	srand(7);
	for (int i = 0; i < 2000; i++) {
		int len = 40 + rand() % 24;
		for (int j = 0; j < len; j++)
			name[j] = "abcXYZ09-_"[rand() % 10];
		name[len] = 0;
		check_key(name, key);
		keys[n++] = strdup(key);
	}
	qsort(keys, n, sizeof(char *), cmp_str);
	size_t same = 0;
	for (size_t i = 1; i < n; i++)
		same += !strcmp(keys[i - 1], keys[i]);
	assert_int_equal(same, 0); /* 40+ random bytes do not repeat */
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);

	const char *bad[] = {
	    "",	 "a.b", "a b",
	    "é", "a/b", "0123456789012345678901234567890123456789012345678901234567890123"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *e = NULL;
		assert_int_equal(ac_k8s_sandbox_key(bad[i], key, &e), -1);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
	}
	assert_int_equal(ac_k8s_sandbox_key(NULL, key, NULL), -1);
	/* Run pods never take a sandbox's name. */
	assert_int_equal(ac_k8s_run_pod_name("0a1b2c", pod, NULL), 0);
	assert_string_equal(pod, "agentcell-run--0a1b2c");
	assert_true(ac_k8s_dns_label(pod));
	assert_int_equal(ac_k8s_run_pod_name("A", pod, NULL), -1);
	assert_int_equal(ac_k8s_run_pod_name("", pod, NULL), -1);
	assert_int_equal(ac_k8s_run_pod_name("a-b", pod, NULL), -1);
}

static void test_label_rules(void **state)
{
	(void)state;
	assert_true(ac_k8s_label_ok("app", "web"));
	assert_true(ac_k8s_label_ok("example.com/tier", "a.b_c-d"));
	assert_true(ac_k8s_label_ok("app", ""));
	assert_false(ac_k8s_label_ok("app", "-web"));
	assert_false(ac_k8s_label_ok("app", "web-"));
	assert_false(ac_k8s_label_ok("app", "a b"));
	assert_false(ac_k8s_label_ok("bad key", "v"));
	assert_false(ac_k8s_label_ok("Example.com/x", "v"));
	assert_false(ac_k8s_label_ok("/x", "v"));
	assert_false(ac_k8s_label_ok("a/b/c", "v"));
	char v64[65];
	memset(v64, 'a', 64);
	v64[64] = 0;
	assert_false(ac_k8s_label_ok("k", v64));
	v64[63] = 0;
	assert_true(ac_k8s_label_ok("k", v64));
	assert_false(ac_k8s_dns_label("Abc"));
	assert_false(ac_k8s_dns_label("-abc"));
	assert_false(ac_k8s_dns_label("abc-"));
	assert_false(ac_k8s_dns_label(""));
	assert_true(ac_k8s_dns_label("a-b"));
}

/* ---- pod bodies ---- */

static const char full_state[] =
    "{\"name\": \"box\", \"image\": \"host\", \"memory_mb\": 1024, \"cpus\": 0.5,"
    " \"pids_limit\": 256, \"disk_mb\": 2048, \"read_only\": true,"
    " \"env\": [\"A=1\", \"B=x=y\", \"EMPTY=\"],"
    " \"labels\": {\"team\": \"ml\", \"example.com/tier\": \"gpu\", \"bad key\": \"v\","
    "  \"agentcell.dev/sandbox\": \"evil\", \"kubernetes.io/x\": \"y\", \"free\": \"no value ok\"},"
    " \"network\": false}";

static ac_k8s_pod_opts_t full_opts(json_t **sel, json_t **secrets)
{
	*sel = parse("{\"pool\": \"sandboxes\"}");
	*secrets = parse("[\"regcred\"]");
	ac_k8s_pod_opts_t o = {.namespace = "agents",
			       .runtime_class = "gvisor",
			       .service_account = "sandbox-sa",
			       .node_selector = *sel,
			       .image_pull_secrets = *secrets,
			       .default_image = "busybox:1.36",
			       .run_as_user = 1000};
	return o;
}

static void check_hardening(json_t *pod, bool read_only)
{
	assert_string_equal(at_str(pod, "apiVersion"), "v1");
	assert_string_equal(at_str(pod, "kind"), "Pod");
	assert_string_equal(at_str(pod, "spec.restartPolicy"), "Never");
	assert_int_equal(json_integer_value(at(pod, "spec.terminationGracePeriodSeconds")), 1);
	assert_at_bool(pod, "spec.automountServiceAccountToken", false);
	assert_at_bool(pod, "spec.enableServiceLinks", false);
	assert_at_bool(pod, "spec.hostNetwork", false);
	assert_at_bool(pod, "spec.hostPID", false);
	assert_at_bool(pod, "spec.hostIPC", false);
	assert_string_equal(at_str(pod, "spec.securityContext.seccompProfile.type"),
			    "RuntimeDefault");
	assert_int_equal(json_array_size(at(pod, "spec.containers")), 1);
	assert_string_equal(at_str(pod, "spec.containers.0.name"), "sandbox");
	json_t *sc = at(pod, "spec.containers.0.securityContext");
	assert_at_bool(sc, "allowPrivilegeEscalation", false);
	assert_at_bool(sc, "privileged", false);
	assert_int_equal(json_array_size(at(sc, "capabilities.drop")), 1);
	assert_string_equal(at_str(sc, "capabilities.drop.0"), "ALL");
	assert_null(at(sc, "capabilities.add"));
	assert_string_equal(at_str(sc, "seccompProfile.type"), "RuntimeDefault");
	assert_at_bool(sc, "readOnlyRootFilesystem", read_only);
}

static void test_pod_spec_full(void **state)
{
	(void)state;
	json_t *st = parse(full_state), *sel, *secrets;
	ac_k8s_pod_opts_t o = full_opts(&sel, &secrets);
	ac_error_t *err = NULL;
	json_t *pod = ac_k8s_pod_spec(st, &o, &err);
	if (!pod)
		fail_msg("%s", err->msg);
	json_t *meta = at(pod, "metadata"), *spec = at(pod, "spec");
	json_t *ctr = at(pod, "spec.containers.0");
	assert_string_equal(at_str(meta, "name"), "agentcell-box");
	assert_string_equal(at_str(meta, "namespace"), "agents");
	json_t *labels = at(meta, "labels");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.dev/sandbox")),
			    "box");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.dev/managed-by")),
			    "agentcell");
	assert_string_equal(json_string_value(json_object_get(labels, "team")), "ml");
	assert_string_equal(json_string_value(json_object_get(labels, "example.com/tier")), "gpu");
	assert_int_equal(json_object_size(labels), 4); /* nothing refused, nothing of ours */
	json_t *ann = at(meta, "annotations");
	assert_string_equal(json_string_value(json_object_get(ann, "agentcell.dev/sandbox-name")),
			    "box");
	assert_string_equal(json_string_value(json_object_get(ann, "agentcell.dev/pids-limit")),
			    "256");
	json_t *rest = parse(json_string_value(json_object_get(ann, "agentcell.dev/labels")));
	assert_string_equal(json_string_value(json_object_get(rest, "bad key")), "v");
	assert_string_equal(json_string_value(json_object_get(rest, "agentcell.dev/sandbox")),
			    "evil");
	assert_string_equal(json_string_value(json_object_get(rest, "kubernetes.io/x")), "y");
	assert_string_equal(json_string_value(json_object_get(rest, "free")), "no value ok");
	assert_int_equal(json_object_size(rest), 4);
	json_decref(rest);

	check_hardening(pod, true);
	assert_string_equal(at_str(ctr, "image"), "busybox:1.36");
	assert_string_equal(at_str(ctr, "command.0"), "sh");
	assert_string_equal(at_str(ctr, "command.1"), "-c");
	assert_string_equal(at_str(ctr, "command.2"), AC_K8S_IDLE_SCRIPT);
	assert_null(at(ctr, "args"));
	assert_null(at(ctr, "stdin"));
	/* limits: memory Mi, cpu millicores, ephemeral storage; requests equal */
	assert_string_equal(at_str(ctr, "resources.limits.memory"), "1024Mi");
	assert_string_equal(at_str(ctr, "resources.limits.cpu"), "500m");
	assert_string_equal(at_str(ctr, "resources.limits.ephemeral-storage"), "2048Mi");
	assert_true(json_equal(at(ctr, "resources.limits"), at(ctr, "resources.requests")));
	/* env in order, '=' in the value kept */
	assert_int_equal(json_array_size(at(ctr, "env")), 3);
	assert_string_equal(at_str(ctr, "env.1.name"), "B");
	assert_string_equal(at_str(ctr, "env.1.value"), "x=y");
	assert_string_equal(at_str(ctr, "env.2.value"), "");
	/* the user: pod and container */
	assert_int_equal(json_integer_value(at(spec, "securityContext.runAsUser")), 1000);
	assert_at_bool(spec, "securityContext.runAsNonRoot", true);
	assert_int_equal(json_integer_value(at(ctr, "securityContext.runAsUser")), 1000);
	assert_at_bool(ctr, "securityContext.runAsNonRoot", true);
	/* read-only root: a memory /tmp */
	assert_string_equal(at_str(spec, "volumes.0.name"), "tmp");
	assert_string_equal(at_str(spec, "volumes.0.emptyDir.medium"), "Memory");
	assert_string_equal(at_str(spec, "volumes.0.emptyDir.sizeLimit"), "1024Mi");
	assert_string_equal(at_str(ctr, "volumeMounts.0.mountPath"), "/tmp");
	/* the config's */
	assert_string_equal(at_str(spec, "runtimeClassName"), "gvisor");
	assert_string_equal(at_str(spec, "serviceAccountName"), "sandbox-sa");
	assert_string_equal(at_str(spec, "nodeSelector.pool"), "sandboxes");
	assert_string_equal(at_str(spec, "imagePullSecrets.0.name"), "regcred");
	json_decref(pod);

	/* Defaults: no options, no read-only, image reference kept, no user. */
	json_t *st2 = parse("{\"name\": \"My_Box\", \"image\": \"python:3.12-slim\"}");
	pod = ac_k8s_pod_spec(st2, NULL, &err);
	assert_non_null(pod);
	check_hardening(pod, false);
	assert_string_equal(at_str(pod, "metadata.name"), "agentcell-x---my-1-box");
	assert_string_equal(
	    json_string_value(json_object_get(at(pod, "metadata.labels"), "agentcell.dev/sandbox")),
	    "x---my-1-box");
	assert_string_equal(json_string_value(json_object_get(at(pod, "metadata.annotations"),
							      "agentcell.dev/sandbox-name")),
			    "My_Box");
	assert_null(at(pod, "metadata.namespace"));
	json_t *c2 = at(pod, "spec.containers.0");
	assert_string_equal(at_str(c2, "image"), "python:3.12-slim");
	assert_string_equal(at_str(c2, "resources.limits.memory"), "512Mi");
	assert_string_equal(at_str(c2, "resources.limits.cpu"), "1000m");
	assert_string_equal(at_str(c2, "resources.limits.ephemeral-storage"), "10240Mi");
	assert_null(at(c2, "securityContext.runAsUser"));
	assert_null(at(c2, "securityContext.runAsNonRoot"));
	assert_null(at(pod, "spec.securityContext.runAsUser"));
	assert_null(at(pod, "spec.volumes"));
	assert_null(at(pod, "spec.runtimeClassName"));
	assert_null(at(pod, "spec.nodeSelector"));
	assert_null(at(pod, "spec.imagePullSecrets"));
	json_decref(pod);
	/* host without a configured image: the default */
	json_object_set_new(st2, "image", json_string("host"));
	pod = ac_k8s_pod_spec(st2, NULL, NULL);
	assert_string_equal(at_str(pod, "spec.containers.0.image"), AC_K8S_DEFAULT_IMAGE);
	json_decref(pod);
	/* uid 0: runAsUser 0 without runAsNonRoot (which the kubelet would refuse) */
	ac_k8s_pod_opts_t root = {.run_as_user = 0};
	pod = ac_k8s_pod_spec(st2, &root, NULL);
	assert_int_equal(json_integer_value(at(pod, "spec.containers.0.securityContext.runAsUser")),
			 0);
	assert_null(at(pod, "spec.containers.0.securityContext.runAsNonRoot"));
	json_decref(pod);
	json_decref(st2);
	json_decref(st);
	json_decref(sel);
	json_decref(secrets);
}

static void test_limits(void **state)
{
	(void)state;
	char q[32];
	struct {
		double cpus;
		const char *want;
	} cpu[] = {{0.5, "500m"}, {0.01, "10m"},     {2, "2000m"},
		   {0.001, "1m"}, {1.2345, "1235m"}, {0.0004, "1m"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cpu); i++) {
		assert_true(ac_k8s_millicores(cpu[i].cpus, q, sizeof(q)) > 0);
		assert_string_equal(q, cpu[i].want);
	}
	assert_int_equal(ac_k8s_mebibytes(256, q, sizeof(q)), 5);
	assert_string_equal(q, "256Mi");
	assert_int_equal(ac_k8s_mebibytes(123456, q, 4), -1);

	struct {
		const char *state;
		const char *mem, *cpu, *disk; /* NULL: absent */
	} cases[] = {
	    /* memory 0 and cpus 0: no limit of that kind (and no request) */
	    {"{\"name\":\"a\",\"memory_mb\":0,\"cpus\":0,\"disk_mb\":0}", NULL, NULL, NULL},
	    {"{\"name\":\"a\",\"vcpus\":2}", "512Mi", "2000m", "10240Mi"},
	    {"{\"name\":\"a\",\"cpus\":0.01,\"vcpus\":4,\"memory_mb\":64}", "64Mi", "10m",
	     "10240Mi"},
	    {"{\"name\":\"a\",\"disk_mb\":16}", "512Mi", "1000m", "16Mi"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *st = parse(cases[i].state);
		json_t *pod = ac_k8s_pod_spec(st, NULL, NULL);
		assert_non_null(pod);
		json_t *lim = at(pod, "spec.containers.0.resources.limits");
		json_t *req = at(pod, "spec.containers.0.resources.requests");
		const char *keys[] = {"memory", "cpu", "ephemeral-storage"};
		const char *want[] = {cases[i].mem, cases[i].cpu, cases[i].disk};
		for (int k = 0; k < 3; k++) {
			const char *got = json_string_value(json_object_get(lim, keys[k]));
			if (!want[k])
				assert_null(got);
			else
				assert_string_equal(got, want[k]);
		}
		assert_true(json_equal(lim, req));
		json_decref(pod);
		json_decref(st);
	}
	const char *bad[] = {
	    "{\"name\":\"a\",\"memory_mb\":-1}",
	    "{\"name\":\"a\",\"cpus\":-0.5}",
	    "{\"name\":\"a\",\"cpus\":0.0001}",
	    "{\"name\":\"a\",\"disk_mb\":-4}",
	    "{\"name\":\"a\",\"image\":\"-rf\"}",
	    "{\"name\":\"a\",\"image\":\"a b\"}",
	    "{\"name\":\"a\",\"env\":[\"NOEQUALS\"]}",
	    "{\"name\":\"a\",\"env\":[\"=x\"]}",
	    "{\"name\":\"a\",\"env\":[\"1A=x\"]}",
	    "{\"name\":\"a\",\"env\":[3]}",
	    "{\"name\":\"a\",\"env\":\"A=1\"}",
	    "{\"name\":\"a\",\"labels\":[]}",
	    "{\"name\":\"a.b\"}",
	    "{}",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		json_t *st = parse(bad[i]);
		ac_error_t *e = NULL;
		json_t *pod = ac_k8s_pod_spec(st, NULL, &e);
		if (pod)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
		json_decref(st);
	}
	/* bad options */
	json_t *st = parse("{\"name\":\"a\"}");
	json_t *sel = parse("{\"pool\": 3}"), *sec = parse("[\"Not_A_Secret\"]");
	ac_k8s_pod_opts_t o1 = {.node_selector = sel, .run_as_user = -1};
	ac_k8s_pod_opts_t o2 = {.image_pull_secrets = sec, .run_as_user = -1};
	assert_null(ac_k8s_pod_spec(st, &o1, NULL));
	assert_null(ac_k8s_pod_spec(st, &o2, NULL));
	json_decref(sel);
	json_decref(sec);
	json_decref(st);
}

static void test_run_pod(void **state)
{
	(void)state;
	json_t *st =
	    parse("{\"name\": \"run-1\", \"image\": \"python:3.12-slim\","
		  " \"memory_mb\": 256, \"env\": [\"A=1\"], \"labels\": {\"job\": \"x\"}}");
	char *argv[] = {"python3", "-c", "print(6*7)", NULL};
	char *env[] = {"B=2", NULL};
	ac_cmd_t cmd = {.argv = argv, .env = env, .cwd = "/work", .stdin_open = true};
	ac_error_t *err = NULL;
	json_t *pod = ac_k8s_run_pod_spec(st, &cmd, "abc123", NULL, &err);
	if (!pod)
		fail_msg("%s", err->msg);
	check_hardening(pod, false);
	assert_string_equal(at_str(pod, "metadata.name"), "agentcell-run--abc123");
	json_t *labels = at(pod, "metadata.labels");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.dev/run")),
			    "abc123");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.dev/managed-by")),
			    "agentcell");
	assert_null(json_object_get(labels, "agentcell.dev/sandbox"));
	assert_null(json_object_get(labels, "job"));
	json_t *ctr = at(pod, "spec.containers.0");
	assert_int_equal(json_array_size(at(ctr, "command")), 3);
	assert_string_equal(at_str(ctr, "command.2"), "print(6*7)");
	assert_null(at(ctr, "args"));
	assert_string_equal(at_str(ctr, "env.0.name"), "A");
	assert_string_equal(at_str(ctr, "env.1.name"), "B");
	assert_string_equal(at_str(ctr, "workingDir"), "/work");
	assert_at_bool(ctr, "stdin", true);
	assert_at_bool(ctr, "stdinOnce", true);
	assert_null(at(ctr, "tty"));
	assert_string_equal(at_str(ctr, "resources.limits.memory"), "256Mi");
	json_decref(pod);

	/* -t, a numeric user, no stdin */
	cmd.stdin_open = false;
	cmd.tty = true;
	cmd.user = "1234";
	cmd.cwd = NULL;
	pod = ac_k8s_run_pod_spec(st, &cmd, "z9", NULL, NULL);
	ctr = at(pod, "spec.containers.0");
	assert_null(at(ctr, "stdin"));
	assert_null(at(ctr, "stdinOnce"));
	assert_null(at(ctr, "workingDir"));
	assert_at_bool(ctr, "tty", true);
	assert_int_equal(json_integer_value(at(ctr, "securityContext.runAsUser")), 1234);
	assert_at_bool(ctr, "securityContext.runAsNonRoot", true);
	json_decref(pod);

	/* refusals */
	cmd.user = "nobody";
	assert_null(ac_k8s_run_pod_spec(st, &cmd, "z9", NULL, &err));
	assert_int_equal(err->kind, AC_ERR_UNSUPPORTED);
	ac_error_free(err);
	err = NULL;
	cmd.user = NULL;
	assert_null(ac_k8s_run_pod_spec(st, &cmd, "Bad_Id", NULL, NULL));
	cmd.cwd = "relative";
	assert_null(ac_k8s_run_pod_spec(st, &cmd, "z9", NULL, NULL));
	cmd.cwd = NULL;
	char *bad_env[] = {"NOEQ", NULL};
	cmd.env = bad_env;
	assert_null(ac_k8s_run_pod_spec(st, &cmd, "z9", NULL, NULL));
	cmd.env = NULL;
	char *none[] = {NULL};
	cmd.argv = none;
	assert_null(ac_k8s_run_pod_spec(st, &cmd, "z9", NULL, NULL));
	json_decref(st);
}

static void test_network_policy(void **state)
{
	(void)state;
	ac_k8s_pod_opts_t o = {.namespace = "agents", .run_as_user = -1};
	json_t *np = ac_k8s_network_policy("My_box", NULL, &o, NULL);
	assert_non_null(np);
	assert_string_equal(at_str(np, "apiVersion"), "networking.k8s.io/v1");
	assert_string_equal(at_str(np, "kind"), "NetworkPolicy");
	assert_string_equal(at_str(np, "metadata.name"), "agentcell-x---my-1box");
	assert_string_equal(at_str(np, "metadata.namespace"), "agents");
	json_t *ml = at(np, "spec.podSelector.matchLabels");
	assert_int_equal(json_object_size(ml), 1);
	assert_string_equal(json_string_value(json_object_get(ml, "agentcell.dev/sandbox")),
			    "x---my-1box");
	assert_int_equal(json_array_size(at(np, "spec.policyTypes")), 2);
	assert_string_equal(at_str(np, "spec.policyTypes.0"), "Ingress");
	assert_string_equal(at_str(np, "spec.policyTypes.1"), "Egress");
	assert_null(at(np, "spec.ingress"));
	assert_null(at(np, "spec.egress"));
	assert_string_equal(json_string_value(json_object_get(at(np, "metadata.labels"),
							      "agentcell.dev/managed-by")),
			    "agentcell");
	/* the selector picks exactly the sandbox's pod */
	json_t *st = parse("{\"name\": \"My_box\"}");
	json_t *pod = ac_k8s_pod_spec(st, NULL, NULL);
	assert_string_equal(at_str(np, "metadata.name"), at_str(pod, "metadata.name"));
	assert_string_equal(
	    json_string_value(json_object_get(at(pod, "metadata.labels"), "agentcell.dev/sandbox")),
	    "x---my-1box");
	json_decref(pod);
	json_decref(st);
	json_decref(np);

	np = ac_k8s_network_policy(NULL, "r42", NULL, NULL);
	assert_string_equal(at_str(np, "metadata.name"), "agentcell-run--r42");
	assert_null(at(np, "metadata.namespace"));
	assert_string_equal(json_string_value(json_object_get(
				at(np, "spec.podSelector.matchLabels"), "agentcell.dev/run")),
			    "r42");
	json_decref(np);
	assert_null(ac_k8s_network_policy("a b", NULL, NULL, NULL));
	assert_null(ac_k8s_network_policy(NULL, "R", NULL, NULL));
}

/* ---- pod status ---- */

static void state_of(const char *text, ac_k8s_pod_state_t *s)
{
	json_t *j = parse(text);
	assert_int_equal(ac_k8s_pod_state(j, s), 0);
	json_decref(j);
}

#define POD(status)                                                                                \
	"{\"metadata\": {\"name\": \"agentcell-x\"}, \"spec\": {}, \"status\": " status "}"

static void test_pod_state(void **state)
{
	(void)state;
	ac_k8s_pod_state_t s;
	/* Just created: no status at all. */
	state_of("{\"metadata\": {\"name\": \"agentcell-x\"}}", &s);
	assert_int_equal(s.verdict, AC_K8S_POD_WAIT);
	assert_string_equal(s.name, "agentcell-x");
	assert_int_equal(s.exit_code, -1);
	/* Scheduled, creating (the fake server's and a kubelet's shape). */
	state_of(
	    POD("{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\","
		" \"status\": \"True\"}], \"containerStatuses\": [{\"name\": \"sandbox\","
		" \"state\": {\"waiting\": {\"reason\": \"ContainerCreating\"}}, \"ready\": false,"
		" \"restartCount\": 0}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_WAIT);
	assert_true(s.scheduled);
	assert_string_equal(s.phase, "Pending");
	assert_string_equal(s.reason, "ContainerCreating");
	assert_string_equal(s.error, "");
	/* Running and ready. */
	state_of(POD("{\"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", \"status\":"
		     " \"True\"}], \"containerStatuses\": [{\"name\": \"sandbox\", \"state\":"
		     " {\"running\": {\"startedAt\": \"2026-01-01T00:00:00Z\"}}, \"ready\": true,"
		     " \"restartCount\": 0, \"started\": true}]}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_RUNNING);
	assert_true(s.running);
	assert_true(s.ready);
	/* Image pull failures: the cluster's reason and message. */
	state_of(POD("{\"phase\": \"Pending\", \"containerStatuses\": [{\"name\": \"sandbox\","
		     " \"state\": {\"waiting\": {\"reason\": \"ErrImagePull\", \"message\":"
		     " \"failed to pull and unpack image "
		     "\\\"docker.io/library/doesnotexist:1\\\"\"}}}]}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_true(s.transient);
	assert_string_equal(s.error, "pod agentcell-x cannot start: ErrImagePull: failed to pull "
				     "and unpack image \"docker.io/library/doesnotexist:1\"");
	state_of(POD("{\"phase\": \"Pending\", \"containerStatuses\": [{\"name\": \"sandbox\","
		     " \"state\": {\"waiting\": {\"reason\": \"ImagePullBackOff\", \"message\":"
		     " \"Back-off pulling image \\\"x\\\"\"}}}]}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_false(s.transient);
	assert_string_equal(s.reason, "ImagePullBackOff");
	/* The user the image runs as is root: the kubelet refuses runAsNonRoot. */
	state_of(
	    POD("{\"phase\": \"Pending\", \"containerStatuses\": [{\"name\": \"sandbox\","
		" \"state\": {\"waiting\": {\"reason\": \"CreateContainerConfigError\","
		" \"message\": \"container has runAsNonRoot and image will run as root\"}}}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_string_equal(s.error, "pod agentcell-x cannot start: CreateContainerConfigError: "
				     "container has runAsNonRoot and image will run as root");
	/* Crash loop: the last exit code joins the message. */
	state_of(
	    POD("{\"phase\": \"Running\", \"containerStatuses\": [{\"name\": \"sandbox\","
		" \"state\": {\"waiting\": {\"reason\": \"CrashLoopBackOff\", \"message\":"
		" \"back-off 10s restarting failed container\"}}, \"lastState\": {\"terminated\":"
		" {\"exitCode\": 1, \"reason\": \"Error\"}}, \"restartCount\": 3}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_int_equal(s.restarts, 3);
	assert_string_equal(s.error, "pod agentcell-x cannot start: CrashLoopBackOff: back-off 10s "
				     "restarting failed container (last exit code 1)");
	/* Unschedulable (the fake server's message). */
	state_of(
	    POD("{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\","
		" \"status\": \"False\", \"reason\": \"Unschedulable\", \"message\": \"0/1 nodes"
		" are available: 1 Insufficient memory.\"}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_true(s.transient);
	assert_false(s.scheduled);
	assert_string_equal(s.error, "pod agentcell-x cannot start: Unschedulable: 0/1 nodes are "
				     "available: 1 Insufficient memory.");
	/* PodScheduled False for another reason (SchedulingGated): wait. */
	state_of(POD("{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\","
		     " \"status\": \"False\", \"reason\": \"SchedulingGated\"}]}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_WAIT);
	/* Terminated: exit code and reason. */
	state_of(POD("{\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"sandbox\","
		     " \"state\": {\"terminated\": {\"exitCode\": 3, \"reason\": \"Error\"}}}]}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_ENDED);
	assert_true(s.terminated);
	assert_int_equal(s.exit_code, 3);
	assert_string_equal(s.error, "pod agentcell-x ended with exit code 3: Error");
	state_of(
	    POD("{\"phase\": \"Succeeded\", \"containerStatuses\": [{\"name\": \"sandbox\","
		" \"state\": {\"terminated\": {\"exitCode\": 0, \"reason\": \"Completed\"}}}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_ENDED);
	assert_int_equal(s.exit_code, 0);
	state_of(
	    POD("{\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"sandbox\","
		" \"state\": {\"terminated\": {\"exitCode\": 137, \"reason\": \"OOMKilled\"}}}]}"),
	    &s);
	assert_int_equal(s.exit_code, 137);
	assert_string_equal(s.reason, "OOMKilled");
	state_of(POD("{\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"sandbox\","
		     " \"state\": {\"terminated\": {\"exitCode\": 0, \"signal\": 9}}}]}"),
		 &s);
	assert_int_equal(s.exit_code, 137);
	assert_int_equal(s.signal, 9);
	assert_string_equal(s.reason, "Error");
	/* Evicted: the pod's own reason, no container state. */
	state_of(POD("{\"phase\": \"Failed\", \"reason\": \"Evicted\", \"message\": \"The node was"
		     " low on resource: ephemeral-storage.\"}"),
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_ENDED);
	assert_string_equal(s.error,
			    "pod agentcell-x ended: Evicted: The node was low on resource: "
			    "ephemeral-storage.");
	/* Being deleted. */
	state_of("{\"metadata\": {\"name\": \"agentcell-x\", \"deletionTimestamp\":"
		 " \"2026-01-01T00:00:00Z\"}, \"status\": {\"phase\": \"Running\"}}",
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_true(s.deleting);
	/* The container named sandbox wins over the first one; control bytes escaped. */
	state_of(
	    POD("{\"containerStatuses\": [{\"name\": \"other\", \"state\": {\"running\": {}}},"
		" {\"name\": \"sandbox\", \"state\": {\"waiting\": {\"reason\": \"ErrImagePull\","
		" \"message\": \"line1\\nline2\"}}}]}"),
	    &s);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	assert_string_equal(s.message, "line1\\nline2");
	assert_null(strchr(s.error, '\n'));
	/* Wrong types everywhere: no crash, just waiting. */
	state_of("{\"metadata\": 3, \"spec\": [], \"status\": {\"phase\": 7, \"conditions\": {},"
		 " \"containerStatuses\": [1, {\"state\": []}]}}",
		 &s);
	assert_int_equal(s.verdict, AC_K8S_POD_WAIT);
	json_t *arr = json_array();
	assert_int_equal(ac_k8s_pod_state(arr, &s), -1);
	assert_int_equal(s.verdict, AC_K8S_POD_FAILED);
	json_decref(arr);
}

/* ---- channels ---- */

static void test_channel_framing(void **state)
{
	(void)state;
	unsigned char buf[64];
	assert_int_equal(ac_k8s_proto_version("v5.channel.k8s.io"), 5);
	assert_int_equal(ac_k8s_proto_version("v4.channel.k8s.io"), 4);
	assert_int_equal(ac_k8s_proto_version("channel.k8s.io"), -1);
	assert_int_equal(ac_k8s_proto_version(NULL), -1);
	assert_string_equal(ac_k8s_exec_protocols[0], "v5.channel.k8s.io");
	assert_string_equal(ac_k8s_exec_protocols[1], "v4.channel.k8s.io");
	assert_null(ac_k8s_exec_protocols[2]);

	assert_int_equal(ac_k8s_frame(buf, sizeof(buf), AC_K8S_CH_STDIN, "hi\n", 3), 4);
	assert_memory_equal(buf, "\0hi\n", 4);
	assert_int_equal(ac_k8s_frame(buf, sizeof(buf), AC_K8S_CH_STDIN, NULL, 0), 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(ac_k8s_frame(buf, 3, AC_K8S_CH_STDIN, "hi\n", 3), 0); /* too small */
	assert_int_equal(ac_k8s_frame(buf, sizeof(buf), 256, "x", 1), 0);
	size_t n = ac_k8s_frame_resize(buf, sizeof(buf), 120, 40);
	assert_int_equal(n, 1 + strlen("{\"Width\":120,\"Height\":40}"));
	assert_int_equal(buf[0], 4);
	assert_memory_equal(buf + 1, "{\"Width\":120,\"Height\":40}", n - 1);
	assert_int_equal(ac_k8s_frame_resize(buf, sizeof(buf), 70000, 1), 0);
	assert_int_equal(ac_k8s_frame_resize(buf, 10, 1, 1), 0);
	/* v5 closes stdin with [255, 0]; v4 cannot */
	unsigned char cl[2];
	assert_int_equal(ac_k8s_frame_close(5, AC_K8S_CH_STDIN, cl), 2);
	assert_int_equal(cl[0], 255);
	assert_int_equal(cl[1], 0);
	assert_int_equal(ac_k8s_frame_close(4, AC_K8S_CH_STDIN, cl), 0);

	int ch = -1;
	const unsigned char *p = NULL;
	size_t pl = 99;
	const unsigned char out[] = {1, 'o', 'k'};
	assert_int_equal(ac_k8s_frame_decode(out, sizeof(out), &ch, &p, &pl), 1);
	assert_int_equal(ch, 1);
	assert_int_equal(pl, 2);
	assert_memory_equal(p, "ok", 2);
	const unsigned char err2[] = {2};
	assert_int_equal(ac_k8s_frame_decode(err2, 1, &ch, &p, &pl), 1);
	assert_int_equal(ch, 2);
	assert_int_equal(pl, 0);
	assert_int_equal(ac_k8s_frame_decode(out, 0, &ch, &p, &pl), 0);
	const unsigned char weird[] = {5, 'x'}, close5[] = {255, 0};
	assert_int_equal(ac_k8s_frame_decode(weird, 2, &ch, &p, &pl), -1);
	assert_int_equal(ac_k8s_frame_decode(close5, 2, &ch, &p, &pl), -1);
	/* round trip of every channel and a binary payload */
	unsigned char bin[40];
	for (int i = 0; i < 32; i++)
		bin[i] = (unsigned char)(i * 37);
	for (int c = 0; c <= 4; c++) {
		n = ac_k8s_frame(buf, sizeof(buf), c, bin, 32);
		assert_int_equal(ac_k8s_frame_decode(buf, n, &ch, &p, &pl), 1);
		assert_int_equal(ch, c);
		assert_int_equal(pl, 32);
		assert_memory_equal(p, bin, 32);
	}
}

static int status_of(const char *text, int *code, ac_error_t **err)
{
	return ac_k8s_exec_status(text, strlen(text), code, err);
}

static void test_exec_status(void **state)
{
	(void)state;
	int code = -5;
	ac_error_t *err = NULL;
	assert_int_equal(status_of("{\"metadata\": {}, \"status\": \"Success\"}", &code, &err), 0);
	assert_int_equal(code, 0);
	/* the fake server's and the kubelet's shape */
	const char *nz = "{\"metadata\": {}, \"status\": \"Failure\", \"message\": \"command "
			 "terminated with non-zero exit code: error executing command [sh -c exit "
			 "42], exit code 42\", \"reason\": \"NonZeroExitCode\", \"details\": "
			 "{\"causes\": [{\"reason\": \"ExitCode\", \"message\": \"42\"}]}}";
	assert_int_equal(status_of(nz, &code, &err), 0);
	assert_int_equal(code, 42);
	assert_int_equal(
	    status_of("{\"status\": \"Failure\", \"reason\": \"NonZeroExitCode\","
		      " \"details\": {\"causes\": [{\"reason\": \"Other\", \"message\":"
		      " \"1\"}, {\"reason\": \"ExitCode\", \"message\": \"255\"}]}}",
		      &code, &err),
	    0);
	assert_int_equal(code, 255);
	/* a code that is not one */
	const char *bad_codes[] = {"\"256\"", "\"-1\"", "\"\"", "\"4x\"", "7", "\"1000\""};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad_codes); i++) {
		char text[256];
		snprintf(
		    text, sizeof(text),
		    "{\"status\": \"Failure\", \"reason\": \"NonZeroExitCode\", \"message\":"
		    " \"m\", \"details\": {\"causes\": [{\"reason\": \"ExitCode\", \"message\":"
		    " %s}]}}",
		    bad_codes[i]);
		assert_int_equal(status_of(text, &code, &err), -1);
		assert_int_equal(err->kind, AC_ERR_BACKEND);
		assert_int_equal(code, -1);
		ac_error_free(err);
		err = NULL;
	}
	/* containerd's answer for a missing program: its text, and 127 as a shell says */
	const char *nf =
	    "{\"kind\": \"Status\", \"status\": \"Failure\", \"message\": \"Internal "
	    "error occurred: error executing command in container: failed to exec in "
	    "container: failed to start exec: OCI runtime exec failed: exec failed: "
	    "unable to start container process: exec: \\\"nope\\\": executable file not "
	    "found in $PATH: unknown\", \"reason\": \"InternalError\", \"code\": 500}";
	assert_int_equal(status_of(nf, &code, &err), -1);
	assert_non_null(strstr(err->msg, "executable file not found in $PATH"));
	assert_int_equal(err->exit_code, 127);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(status_of("{\"status\": \"Failure\", \"message\": \"exec: permission "
				   "denied\"}",
				   &code, &err),
			 -1);
	assert_int_equal(err->exit_code, 126);
	ac_error_free(err);
	err = NULL;
	const char *junk[] = {"",
			      "null",
			      "[]",
			      "{\"status\": 1}",
			      "{\"status\": \"Weird\"}",
			      "not json",
			      "{\"status\": \"Success\", \"status\": \"Failure\"}"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(junk); i++) {
		assert_int_equal(status_of(junk[i], &code, &err), -1);
		assert_int_equal(err->kind, AC_ERR_BACKEND);
		assert_int_equal(err->exit_code, 0);
		ac_error_free(err);
		err = NULL;
	}
}

/* ---- URLs ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The command= values of a query, percent-decoded, as Go's url.ParseQuery gives them. */
static size_t commands_of(const char *path, char out[][128], size_t max)
{
	const char *q = strchr(path, '?');
	size_t n = 0;
	while (q && *q && n < max) {
		q++;
		size_t len = strcspn(q, "&");
		if (!strncmp(q, "command=", 8)) {
			size_t o = 0;
			for (size_t i = 8; i < len; i++) {
				if (q[i] == '%') {
					assert_true(hexval(q[i + 1]) >= 0 && hexval(q[i + 2]) >= 0);
					out[n][o++] =
					    (char)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
					i += 2;
				} else {
					/* nothing a decoder would change may stand unescaped */
					assert_true(strchr("+&=#%? ", q[i]) == NULL);
					out[n][o++] = q[i];
				}
			}
			out[n][o] = 0;
			n++;
		}
		q += len;
		if (!*q)
			break;
	}
	return n;
}

static void test_urls(void **state)
{
	(void)state;
	char *simple[] = {"ls", "-la", NULL};
	char *p =
	    ac_k8s_exec_path("default", "agentcell-box", "sandbox", simple, true, false, NULL);
	assert_string_equal(p,
			    "/api/v1/namespaces/default/pods/agentcell-box/exec?container=sandbox"
			    "&stdin=true&stdout=true&stderr=true&tty=false&command=ls&command=-la");
	free(p);
	p = ac_k8s_exec_path("ns", "p", "c", simple, false, true, NULL);
	assert_string_equal(p, "/api/v1/namespaces/ns/pods/p/exec?container=c&stdin=false"
			       "&stdout=true&stderr=false&tty=true&command=ls&command=-la");
	free(p);
	char *tricky[] = {"sh",	       "-c",	      "echo a b & c=d #e %41 +x?y/z",
			  "",	       "caf\xc3\xa9", "line1\nline2",
			  "tab\there", "~._-",	      NULL};
	p = ac_k8s_exec_path("default", "agentcell-box", "sandbox", tricky, false, false, NULL);
	assert_non_null(strstr(p,
			       "&command=echo%20a%20b%20%26%20c%3Dd%20%23e%20%2541%20%2Bx%3Fy%2Fz"
			       "&command=&command=caf%C3%A9&command=line1%0Aline2"
			       "&command=tab%09here&command=~._-"));
	char got[16][128];
	assert_int_equal(commands_of(p, got, 16), 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(got[i], tricky[i]);
	free(p);
	/* attach and log */
	p = ac_k8s_attach_path("default", "agentcell-run--r1", "sandbox", true, false, NULL);
	assert_string_equal(p, "/api/v1/namespaces/default/pods/agentcell-run--r1/attach?container="
			       "sandbox&stdin=true&stdout=true&stderr=true&tty=false");
	free(p);
	p = ac_k8s_log_path("default", "agentcell-run--r1", "sandbox", true, NULL);
	assert_string_equal(p, "/api/v1/namespaces/default/pods/agentcell-run--r1/log?container="
			       "sandbox&follow=true");
	free(p);
	p = ac_k8s_log_path("default", "x", "sandbox", false, NULL);
	assert_string_equal(p, "/api/v1/namespaces/default/pods/x/log?container=sandbox");
	free(p);
	p = ac_k8s_log_path("default", "x", NULL, false, NULL);
	assert_string_equal(p, "/api/v1/namespaces/default/pods/x/log");
	free(p);
	/* names that would change the path */
	ac_error_t *err = NULL;
	assert_null(ac_k8s_exec_path("a/b", "p", "c", simple, false, false, &err));
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	assert_null(ac_k8s_exec_path("ns", "..", "c", simple, false, false, NULL));
	assert_null(ac_k8s_exec_path("ns", "p?x=1", "c", simple, false, false, NULL));
	assert_null(ac_k8s_exec_path("ns", "p", "c&x", simple, false, false, NULL));
	assert_null(ac_k8s_exec_path("ns", "p", "c", NULL, false, false, NULL));
	/* a long argv is not cut */
	char big[5000];
	memset(big, '&', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	char *bigv[] = {big, NULL};
	p = ac_k8s_exec_path("ns", "p", "c", bigv, false, false, NULL);
	assert_int_equal(strlen(strstr(p, "&command=") + 9), 3 * (sizeof(big) - 1));
	free(p);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* ---- against the strict test API server ---- */

static char srv_dir[PATH_MAX];
static pid_t srv_pid;
static const char *srv_skip;

static int srv_setup(void **state)
{
	(void)state;
	char script[PATH_MAX], agentcell[PATH_MAX] = "";
	if (!ac_test_find_file("tests/k8s/fake_apiserver.py", script)) {
		srv_skip = "tests/k8s/fake_apiserver.py not found";
		return 0;
	}
	if (access("/usr/bin/python3", X_OK) || access("/usr/bin/openssl", X_OK)) {
		srv_skip = "python3 or openssl missing";
		return 0;
	}
	/* The pods run as sandboxes of this build's agentcell; they never get that far: the
	 * node is too small for them (which gives a real Unschedulable status to read). */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(agentcell, sizeof(agentcell), "%s/../agentcell", exe);
		}
	}
	snprintf(srv_dir, sizeof(srv_dir), "/tmp/ac-k8s-pod.XXXXXX");
	if (!mkdtemp(srv_dir))
		return -1;
	char home[PATH_MAX + 16];
	snprintf(home, sizeof(home), "%s/home", srv_dir);
	srv_pid = ac_test_fork();
	if (srv_pid == 0) {
		unsetenv("AGENTCELL");
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		char *argv[16] = {
		    "/usr/bin/python3", script, "--state-dir", srv_dir, "--home", home,
		    "--node-memory",	"64Mi", NULL};
		if (agentcell[0] && access(agentcell, X_OK) == 0) {
			argv[8] = "--agentcell";
			argv[9] = agentcell;
			argv[10] = NULL;
		}
		execv(argv[0], argv);
		_exit(127);
	}
	char port[PATH_MAX + 16];
	snprintf(port, sizeof(port), "%s/port", srv_dir);
	for (int i = 0; i < 1500 && access(port, F_OK); i++) {
		if (waitpid(srv_pid, NULL, WNOHANG) == srv_pid) {
			srv_pid = 0;
			srv_skip = "the test API server did not start";
			return 0;
		}
		sleep_ms(20);
	}
	if (access(port, F_OK)) {
		srv_skip = "the test API server did not start in 30 s";
		return 0;
	}
	setenv("no_proxy", "*", 1);
	setenv("NO_PROXY", "*", 1);
	return 0;
}

static int srv_teardown(void **state)
{
	(void)state;
	if (srv_pid > 0) {
		kill(srv_pid, SIGTERM);
		waitpid(srv_pid, NULL, 0);
	}
	if (srv_dir[0]) {
		ac_error_t *e = NULL;
		ac_rm_rf_at(AT_FDCWD, srv_dir, &e);
		ac_error_free(e);
	}
	return 0;
}

static long post(ac_remote_t *r, const char *path, json_t *body, ac_remote_resp_t *resp)
{
	ac_error_t *err = NULL;
	if (ac_remote_request(r, "POST", path, body, NULL, resp, &err) < 0)
		fail_msg("POST %s: %s", path, err->msg);
	return resp->status;
}

static void expect_created(ac_remote_t *r, const char *path, json_t *body)
{
	ac_remote_resp_t resp;
	long st = post(r, path, body, &resp);
	if (st != 201)
		fail_msg("POST %s: %ld %.*s", path, st, (int)resp.len, resp.body ? resp.body : "");
	ac_remote_resp_free(&resp);
}

static void test_fake_server(void **state)
{
	(void)state;
	if (srv_skip || !srv_pid) {
		fprintf(stderr, "# SKIP: %s\n", srv_skip ? srv_skip : "no server");
		skip();
	}
	char kc[PATH_MAX + 16];
	snprintf(kc, sizeof(kc), "%s/kubeconfig", srv_dir);
	ac_k8s_settings_t set = {.kubeconfig = kc, .no_exec = true};
	ac_k8s_conn_t conn;
	ac_error_t *err = NULL;
	if (ac_k8s_conn_load(&set, &conn, &err) < 0)
		fail_msg("%s", err->msg);
	ac_remote_t *r = NULL;
	assert_int_equal(ac_remote_open(&conn.remote, &r, &err), 0);

	json_t *st = parse(full_state), *sel, *secrets;
	ac_k8s_pod_opts_t o = full_opts(&sel, &secrets);
	o.namespace = "default";
	/* the fake node has no such label: nodeSelector alone would make it unschedulable */
	o.node_selector = NULL;
	const char *pods = "/api/v1/namespaces/default/pods?fieldValidation=Strict";
	const char *nps = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
			  "?fieldValidation=Strict";
	json_t *np = ac_k8s_network_policy("box", NULL, &o, NULL);
	expect_created(r, nps, np);
	json_decref(np);
	np = ac_k8s_network_policy(NULL, "r1", &o, NULL);
	expect_created(r, nps, np);
	json_decref(np);
	json_t *pod = ac_k8s_pod_spec(st, &o, NULL);
	expect_created(r, pods, pod);
	/* the server would tell a misspelt hardening field (so the 201s mean something) */
	json_t *bad = json_deep_copy(pod);
	json_object_set_new(at(bad, "metadata"), "name", json_string("agentcell-misspelt"));
	json_object_set_new(at(bad, "spec.containers.0.securityContext"),
			    "allowPriviledgeEscalation", json_false());
	ac_remote_resp_t resp;
	assert_int_equal(post(r, pods, bad, &resp), 400);
	ac_remote_resp_free(&resp);
	json_decref(bad);
	/* a sandbox with an awkward name and no limits of some kinds; a run pod */
	json_t *st2 = parse("{\"name\": \"My_Box-2\", \"memory_mb\": 4096, \"cpus\": 0.01,"
			    " \"disk_mb\": 0, \"env\": [\"X.Y=1\"]}");
	json_t *pod2 = ac_k8s_pod_spec(st2, &o, NULL);
	expect_created(r, pods, pod2);
	char *argv[] = {"sh", "-c", "echo hi", NULL};
	ac_cmd_t cmd = {.argv = argv, .stdin_open = true, .cwd = "/work", .tty = true};
	json_t *run = ac_k8s_run_pod_spec(st2, &cmd, "r1", &o, NULL);
	expect_created(r, pods, run);

	/* What the server kept, and the status it gives a pod too big for its node. */
	ac_k8s_pod_state_t ps;
	memset(&ps, 0, sizeof(ps));
	for (int i = 0; i < 200; i++) {
		assert_int_equal(ac_remote_request(r, "GET",
						   "/api/v1/namespaces/default/pods/agentcell-box",
						   NULL, NULL, &resp, &err),
				 0);
		assert_int_equal(resp.status, 200);
		json_t *got = resp.json;
		assert_at_bool(got, "spec.containers.0.securityContext.allowPrivilegeEscalation",
			       false);
		assert_string_equal(at_str(got, "spec.containers.0.securityContext.capabilities."
						"drop.0"),
				    "ALL");
		assert_at_bool(got, "spec.automountServiceAccountToken", false);
		assert_null(at(got, "spec.containers.0.volumeMounts.1")); /* no token volume */
		assert_int_equal(ac_k8s_pod_state(got, &ps), 0);
		ac_remote_resp_free(&resp);
		if (ps.verdict != AC_K8S_POD_WAIT)
			break;
		sleep_ms(50);
	}
	if (ps.verdict != AC_K8S_POD_FAILED)
		fprintf(stderr, "# the server ran no scheduler (no agentcell binary?): %s\n",
			ps.phase);
	else {
		assert_string_equal(ps.reason, "Unschedulable");
		assert_non_null(strstr(ps.error, "pod agentcell-box cannot start: Unschedulable: "
						 "0/1 nodes are available: 1 Insufficient memory"));
	}
	json_decref(run);
	json_decref(pod2);
	json_decref(st2);
	json_decref(pod);
	json_decref(st);
	json_decref(sel);
	json_decref(secrets);
	ac_remote_close(r);
	ac_k8s_conn_free(&conn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_label_rules),
	    cmocka_unit_test(test_pod_spec_full),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_run_pod),
	    cmocka_unit_test(test_network_policy),
	    cmocka_unit_test(test_pod_state),
	    cmocka_unit_test(test_channel_framing),
	    cmocka_unit_test(test_exec_status),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test_setup_teardown(test_fake_server, srv_setup, srv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
