/* The Kubernetes backend: connection settings (kubeconfig.c, yaml.c, exec_plugin.c) and
 * API errors (errors.c).
 *
 * The connection is resolved as kubectl and client-go do: in-cluster (service account)
 * first unless a kubeconfig or a context was configured, else the kubeconfig files
 * (explicit path, else $KUBECONFIG merged by kubectl's rules, else ~/.kube/config). */
#ifndef AGENTCELL_BACKENDS_K8S_H
#define AGENTCELL_BACKENDS_K8S_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "backends/remote/remote.h"

/* What agentcell.toml's [kubernetes] table says about the connection (NULL: not set). */
typedef struct ac_k8s_settings {
	const char *kubeconfig; /* one explicit file ("~/" expanded); wins over $KUBECONFIG */
	const char *context;	/* a context of the kubeconfig instead of its current-context */
	const char *namespace;	/* wins over the context's and the service account's */
	long exec_timeout_ms;	/* an exec credential plugin's deadline; 0: 60 s */
	bool no_exec;		/* refuse exec plugins instead of running them (fuzzing) */
} ac_k8s_settings_t;

/* A resolved connection: the transport's settings and what it was resolved from. */
typedef struct ac_k8s_conn {
	ac_remote_conf_t remote; /* remote.name is "cluster 'NAME'" (or "in-cluster API server") */
	char *namespace;
	char *context; /* NULL in-cluster */
	char *cluster; /* the kubeconfig's cluster entry name; NULL in-cluster */
	char *user;    /* the kubeconfig's user entry name; NULL in-cluster */
	bool in_cluster;
	int64_t expires_ms; /* an exec plugin credential's expirationTimestamp (unix ms), or 0 */
} ac_k8s_conn_t;

/* The test-only override of /var/run/secrets/kubernetes.io/serviceaccount (in-cluster
 * token, ca.crt and namespace): tests point it at a fake directory. Not a user setting. */
#define AC_K8S_SA_DIR_ENV "AGENTCELL_K8S_SA_DIR"

/* Resolves the connection (see the head comment); *namespace gets the namespace to use
 * (explicit, else the context's or the service account's, else "default"); to free. Fails
 * with one line naming the file, context or key at fault. */
int ac_k8s_conf_load(const ac_k8s_settings_t *s, ac_remote_conf_t *out, char **namespace,
		     ac_error_t **err);
/* The same with everything it resolved. */
int ac_k8s_conn_load(const ac_k8s_settings_t *s, ac_k8s_conn_t *out, ac_error_t **err);
void ac_k8s_conn_free(ac_k8s_conn_t *c);

/* Parses a kubeconfig's text (YAML, or its JSON form) into a JSON tree (scalars become
 * strings, plain null/~/empty become null); origin names it in errors, with the line. */
int ac_k8s_yaml_parse(const char *data, size_t len, const char *origin, json_t **out,
		      ac_error_t **err);
/* Resolves a connection from one parsed kubeconfig (no in-cluster, no other file); dir
 * is the directory relative paths resolve against. */
int ac_k8s_conn_from_config(const json_t *cfg, const char *dir, const ac_k8s_settings_t *s,
			    ac_k8s_conn_t *out, ac_error_t **err);

/* An API server's error answer (a metav1.Status or anything else) as one ac_error_t line
 * naming the cluster, what was being done ("create pod agentcell-box") and the cause:
 * 401 -> AC_ERR_PERMISSION "unauthorized", 403 forbidden (RBAC message), 404 not found,
 * 409 AlreadyExists -> AC_ERR_EXISTS / conflict -> AC_ERR_STATE, 400/422 AC_ERR_INVALID
 * with the causes' fields, 429 (with Retry-After) and 5xx AC_ERR_BACKEND. Returns 0 for a
 * 2xx answer (no error), else -1. */
int ac_k8s_error_from(const ac_remote_resp_t *r, const char *cluster, const char *what,
		      ac_error_t **err);

#endif
