/* The Kubernetes backend's pure half for objects (pod.c): a sandbox's pod, a one-shot run's
 * pod, the deny-all NetworkPolicy, and what a pod's status means for a start. No I/O: the
 * backend's ops build bodies here and send them with src/backends/remote/.
 *
 * Names. A sandbox name (1-63 of [A-Za-z0-9_-]) becomes a key K that is at once a DNS-1123
 * label and a label value, and the pod and the NetworkPolicy are "agentcell-K" (<= 63
 * bytes, so the pod's hostname is not cut):
 *   - a "plain" name (lowercase letters, digits, single inner '-', at most 53 bytes) is its
 *     own key: "box" -> agentcell-box;
 *   - any other name is escaped, K = "x--" + esc(name) when that fits in 53 bytes: esc keeps
 *     a-z and 0-9, writes an upper-case letter as '-' + the letter in lower case, '-' as
 *     "-0" and '_' as "-1" ("My_box" -> x---my-1box), which decodes back to the name;
 *   - a name whose escape is too long gets K = "h--" + up to 37 readable bytes + '-' + 12
 *     base32 characters of SHA-1(name) (60 bits: two such names collide with a chance of
 *     2^-60).
 * Plain keys never hold "--", the other two start with different letters: the mapping is
 * injective (up to the hash for the longest odd names) and depends on the name alone. The
 * exact name is kept in the annotation agentcell.dev/sandbox-name. A one-shot run's pod is
 * "agentcell-run--ID" (never a sandbox's: 'r' is no escape letter and plain keys have no
 * "--").
 *
 * The pod's idle command is `sh -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait;
 * done'`: the image needs /bin/sh (or sh on the PATH) and sleep (busybox, coreutils);
 * distroless images have neither. PID 1 is that shell: it reaps what exec'd commands leave
 * behind (its wait), and it exits at once on SIGTERM so a delete takes about a second. */
#ifndef AGENTCELL_BACKENDS_K8S_POD_H
#define AGENTCELL_BACKENDS_K8S_POD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/types.h"

#define AC_K8S_DEFAULT_IMAGE "alpine:3.20"
#define AC_K8S_CONTAINER     "sandbox" /* the one container of every pod */
#define AC_K8S_LABEL_SANDBOX "agentcell.dev/sandbox"
#define AC_K8S_LABEL_MANAGED "agentcell.dev/managed-by"
#define AC_K8S_LABEL_RUN     "agentcell.dev/run"
#define AC_K8S_LABEL_OWNER   "agentcell.dev/owner"   /* the agentcell home that made it */
#define AC_K8S_ANN_CREATOR   "agentcell.dev/creator" /* "pid:starttime:boot_id" */
#define AC_K8S_MANAGED_VALUE "agentcell"
#define AC_K8S_ANN_NAME	     "agentcell.dev/sandbox-name"
#define AC_K8S_ANN_LABELS    "agentcell.dev/labels" /* labels Kubernetes refuses, as JSON */
#define AC_K8S_ANN_PIDS	     "agentcell.dev/pids-limit"
#define AC_K8S_KEY_MAX	     53 /* 63 - strlen("agentcell-") */
#define AC_K8S_NAME_MAX	     64 /* a pod name with its NUL */
#define AC_K8S_RUN_ID_MAX    40
#define AC_K8S_GRACE_SECONDS 1
#define AC_K8S_IDLE_SCRIPT   "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"

/* What agentcell.toml's [kubernetes] table says about pods (NULL / -1: not set). */
typedef struct ac_k8s_pod_opts {
	const char *namespace;		  /* written to metadata.namespace when set */
	const char *runtime_class;	  /* runtimeClassName (gvisor, kata) */
	const char *service_account;	  /* serviceAccountName (its token is never mounted) */
	const json_t *node_selector;	  /* object of string values */
	const json_t *image_pull_secrets; /* array of secret names */
	const char *default_image;	  /* for image "host"; NULL: AC_K8S_DEFAULT_IMAGE */
	long long run_as_user;		  /* runAsUser (+ runAsNonRoot unless 0); -1: the image's */
	/* Set by the backend, not the config: the owner label (this agentcell home's id) and
	 * the creator annotation (the process making the object), on pods and policies. */
	const char *owner;
	const char *creator;
} ac_k8s_pod_opts_t;

/* The key of a sandbox name (see the head comment) into key[AC_K8S_KEY_MAX + 1]; -1
 * (AC_ERR_INVALID) unless name is 1-63 of [A-Za-z0-9_-]. */
int ac_k8s_sandbox_key(const char *name, char *key, ac_error_t **err);
/* "agentcell-" + the key into out[AC_K8S_NAME_MAX]. */
int ac_k8s_pod_name(const char *name, char *out, ac_error_t **err);
/* "agentcell-run--" + id into out[AC_K8S_NAME_MAX]; id is 1-40 of [a-z0-9]. */
int ac_k8s_run_pod_name(const char *id, char *out, ac_error_t **err);
/* Whether s is a DNS-1123 label (1-63 of [a-z0-9-], alphanumeric at both ends). */
bool ac_k8s_dns_label(const char *s);
/* Whether k=v may be a Kubernetes label (qualified key with an optional DNS-1123 subdomain
 * prefix, value of at most 63 bytes, alphanumeric at both ends, [-_.] inside). */
bool ac_k8s_label_ok(const char *k, const char *v);

/* A quantity of mebibytes ("512Mi") and of millicores ("500m": 0.5 cpu; at least 1m).
 * Return the length written, or -1 if it does not fit. */
int ac_k8s_mebibytes(long long mb, char *out, size_t cap);
int ac_k8s_millicores(double cpus, char *out, size_t cap);

/* The pod of a sandbox from its state (name, image, memory_mb (0: no limit), cpus or vcpus
 * (0: no limit), pids_limit (recorded in an annotation: a pod spec has no pids limit, the
 * kubelet's podPidsLimit applies), disk_mb (ephemeral-storage; absent: AC_DISK_DEFAULT_MB,
 * 0: none), read_only (+ an emptyDir at /tmp), env ["K=V"], labels. network is not read:
 * while it is off the caller creates ac_k8s_network_policy first). Requests equal limits;
 * the hardening is always on. NULL with AC_ERR_INVALID naming the field the state gets wrong. To json_decref. */
json_t *ac_k8s_pod_spec(const json_t *state, const ac_k8s_pod_opts_t *o, ac_error_t **err);
/* The pod of a one-shot run: its container runs cmd->argv itself (command, not the image's
 * entrypoint), with cmd->env on top of the state's, cmd->cwd as workingDir, stdin and
 * stdinOnce when cmd->stdin_open, tty when cmd->tty; cmd->user must be a uid (a name needs
 * the image's /etc/passwd: AC_ERR_UNSUPPORTED). Same limits and hardening; labelled
 * agentcell.dev/run=ID instead of a sandbox label. */
json_t *ac_k8s_run_pod_spec(const json_t *state, const ac_cmd_t *cmd, const char *run_id,
			    const ac_k8s_pod_opts_t *o, ac_error_t **err);
/* The NetworkPolicy "agentcell-K" that denies all ingress and egress of the sandbox's pod
 * (policyTypes Ingress and Egress, no rules), or with run_id non-NULL of the run's pod
 * ("agentcell-run--ID", selecting agentcell.dev/run=ID). o may be NULL. */
json_t *ac_k8s_network_policy(const char *sandbox, const char *run_id, const ac_k8s_pod_opts_t *o,
			      ac_error_t **err);

/* What a start makes of a pod's status. */
typedef enum {
	AC_K8S_POD_WAIT,    /* not there yet: scheduling, pulling, creating */
	AC_K8S_POD_RUNNING, /* the container runs: the start succeeded */
	AC_K8S_POD_ENDED,   /* the container (or the pod) ended: exit_code says how */
	AC_K8S_POD_FAILED,  /* it cannot start (error says why, with the cluster's reason) */
} ac_k8s_pod_verdict_t;

typedef struct ac_k8s_pod_state {
	ac_k8s_pod_verdict_t verdict;
	char name[AC_K8S_NAME_MAX + 192]; /* metadata.name (cut), "" if none */
	char phase[24];			  /* Pending, Running, Succeeded, Failed, Unknown, "" */
	bool scheduled;			  /* PodScheduled True or a nodeName */
	bool running;			  /* the container's state is running */
	bool ready;			  /* its ready flag (or the Ready condition) */
	bool deleting;			  /* metadata.deletionTimestamp */
	bool terminated;		  /* the container's state is terminated */
	bool transient;			  /* FAILED for a reason that may clear by itself
					     (Unschedulable: an autoscaler; ErrImagePull) */
	int exit_code;			  /* terminated: 0-255 (128+N for signal N); else -1 */
	int signal;			  /* terminated by a signal the runtime reported, else 0 */
	int restarts;			  /* restartCount */
	char reason[64];   /* the cluster's reason (ErrImagePull, Unschedulable, ...) */
	char message[512]; /* its message, control bytes escaped */
	char error[900];   /* FAILED and ENDED: one line for the user */
} ac_k8s_pod_state_t;

/* Reads a pod object (as GET pods/NAME or a watch event's object returns it) into *out.
 * The container looked at is "sandbox", else the first one. Returns 0; -1 only when pod is
 * not an object (out then says FAILED with an error). Never trusts a field's type. */
int ac_k8s_pod_state(const json_t *pod, ac_k8s_pod_state_t *out);

#endif
