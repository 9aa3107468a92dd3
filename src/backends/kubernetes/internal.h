/* Private to src/backends/kubernetes/: the typed access to a parsed kubeconfig that
 * kubeconfig.c (resolution) and exec_plugin.c (the exec credential plugin) share. */
#ifndef AGENTCELL_BACKENDS_K8S_INTERNAL_H
#define AGENTCELL_BACKENDS_K8S_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "backends/kubernetes/k8s.h"

/* json_decrefp is jansson's own (json_auto_t). */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* A string field: NULL when absent, null or empty (Go's zero value); -1 (AC_ERR_INVALID
 * naming where and key) when of another type. */
int ac_k8s_get_str(const json_t *o, const char *key, const char *where, const char **out,
		   ac_error_t **err);
/* A boolean field: false when absent or null; YAML 1.1's yes/no/on/off spellings too. */
int ac_k8s_get_bool(const json_t *o, const char *key, const char *where, bool *out,
		    ac_error_t **err);
/* p against dir unless absolute (or dir empty); to free, NULL when out of memory. */
char *ac_k8s_path_join(const char *dir, const char *p);
/* base64 *-data (line breaks and spaces skipped, as Go's decoder does) to PEM text. */
int ac_k8s_decode_pem(const char *b64, const char *where, const char *key, char **out,
		      ac_error_t **err);
/* The last non-empty line of s[0..n) into out (cut to cap - 1 bytes), for messages. */
void ac_k8s_last_line(const char *s, size_t n, char *out, size_t cap);

/* What an exec credential plugin returned. */
typedef struct ac_k8s_cred {
	char *token, *cert, *key;
	int64_t expires_ms;
} ac_k8s_cred_t;

void ac_k8s_cred_free(ac_k8s_cred_t *c);
/* Runs the user entry's exec plugin (client.authentication.k8s.io ExecCredential) with a
 * deadline (s->exec_timeout_ms) and reads its credential; relative commands resolve
 * against dir. Refused when s->no_exec. where names the user entry in errors. */
int ac_k8s_exec_credential(const json_t *exec, const json_t *cluster, const char *dir,
			   const char *where, const ac_k8s_settings_t *s, ac_k8s_cred_t *cred,
			   ac_error_t **err);

#endif
