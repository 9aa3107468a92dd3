/* Fuzz target: what the Kubernetes backend reads from a cluster (src/backends/kubernetes/):
 * a pod object's status (ac_k8s_pod_state), the exec status channel's metav1.Status
 * (ac_k8s_exec_status) and received channel messages (ac_k8s_frame_decode). The whole
 * input is tried as each; when it is JSON, it is also wrapped as a pod's status and as
 * a container's state so that the deeper branches are reached from short inputs. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/pod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One line, NUL-terminated within its buffer, the verdict one of the four, an error text
 * exactly for FAILED and ENDED, an exit code exactly when terminated or ENDED. */
static void check_state(const ac_k8s_pod_state_t *s, int rc)
{
	if (strnlen(s->error, sizeof(s->error)) == sizeof(s->error) ||
	    strnlen(s->reason, sizeof(s->reason)) == sizeof(s->reason) ||
	    strnlen(s->message, sizeof(s->message)) == sizeof(s->message) ||
	    strnlen(s->name, sizeof(s->name)) == sizeof(s->name) ||
	    strnlen(s->phase, sizeof(s->phase)) == sizeof(s->phase))
		abort();
	if (strchr(s->error, '\n') || strchr(s->message, '\n') || strchr(s->reason, '\n'))
		abort();
	switch (s->verdict) {
	case AC_K8S_POD_WAIT:
	case AC_K8S_POD_RUNNING:
		if (s->error[0] || s->terminated)
			abort();
		break;
	case AC_K8S_POD_ENDED:
		if (s->exit_code < 0 || s->exit_code > 255 || !s->error[0])
			abort();
		break;
	case AC_K8S_POD_FAILED:
		if (!s->error[0])
			abort();
		break;
	default:
		abort();
	}
	if (rc < 0 && s->verdict != AC_K8S_POD_FAILED)
		abort();
	if (s->terminated && s->verdict != AC_K8S_POD_ENDED)
		abort();
}

static void pod_state(const json_t *j)
{
	ac_k8s_pod_state_t s;
	int rc = ac_k8s_pod_state(j, &s);
	if (rc != 0 && rc != -1)
		abort();
	check_state(&s, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A received channel message. */
	int ch = -1;
	const unsigned char *p = NULL;
	size_t plen = 0;
	int d = ac_k8s_frame_decode(data, size, &ch, &p, &plen);
	if (d == 1) {
		if (ch < 0 || ch > AC_K8S_CH_RESIZE || p != data + 1 || plen != size - 1)
			abort();
	} else if (d != 0 && d != -1) {
		abort();
	} else if ((d == 0) != (size == 0)) {
		abort();
	}
	/* The status channel: the payload after the channel byte, and the whole input. */
	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *b = pass ? data : p;
		size_t n = pass ? size : plen;
		if (!pass && d != 1)
			continue;
		int code = 1000;
		ac_error_t *err = NULL;
		int rc = ac_k8s_exec_status(b, n, &code, &err);
		if (rc == 0 && (code < 0 || code > 255 || err))
			abort();
		if (rc == -1 && (!err || code != -1 || !err->msg[0]))
			abort();
		if (rc != 0 && rc != -1)
			abort();
		ac_error_free(err);
	}
	/* A pod, as given and wrapped. */
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if (!j)
		return 0;
	pod_state(j);
	json_t *pod = json_pack("{s:{s:s}, s:O}", "metadata", "name", "agentcell-f", "status", j);
	if (pod)
		pod_state(pod);
	json_decref(pod);
	pod =
	    json_pack("{s:{s:s}, s:{s:[{s:s, s:O, s:O}]}}", "metadata", "name", "agentcell-f",
		      "status", "containerStatuses", "name", "sandbox", "state", j, "lastState", j);
	if (pod)
		pod_state(pod);
	json_decref(pod);
	json_decref(j);
	return 0;
}
