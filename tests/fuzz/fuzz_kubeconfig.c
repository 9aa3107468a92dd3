/* Fuzz target: arbitrary bytes as a kubeconfig (YAML or JSON), resolved into a connection
 * with exec plugins refused, and the same bytes as an API server's error answer. Checks the
 * error contract (one line, nothing half-set) and what a resolved connection must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/kubernetes/k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(ac_error_t *err)
{
	if (err == NULL || strchr(err->msg, '\n') != NULL || err->msg[0] == 0)
		abort();
	ac_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *cfg = NULL;
	ac_error_t *err = NULL;
	if (ac_k8s_yaml_parse((const char *)data, size, "kubeconfig fuzz", &cfg, &err) == 0) {
		if (!json_is_object(cfg) || err != NULL)
			abort();
		char *s = json_dumps(cfg, JSON_COMPACT);
		if (s == NULL)
			abort();
		free(s);
		ac_k8s_settings_t st = {.no_exec = true};
		ac_k8s_conn_t c;
		for (int i = 0; i < 2; i++) {
			/* The current context, then a fixed name (a context override). */
			st.context = i ? "fuzz" : NULL;
			st.namespace = i ? "ns" : NULL;
			if (ac_k8s_conn_from_config(cfg, "/fuzz", &st, &c, &err) == 0) {
				if (err || !c.remote.server || !c.namespace || !c.context ||
				    !c.cluster || !c.remote.name)
					abort();
				if (strncmp(c.remote.server, "https://", 8) &&
				    strncmp(c.remote.server, "http://", 7))
					abort();
				if (c.remote.insecure && (c.remote.ca_file || c.remote.ca_data))
					abort();
				if (i && strcmp(c.namespace, "ns"))
					abort();
				ac_k8s_conn_free(&c);
			} else {
				if (c.remote.server || c.namespace)
					abort();
				check_error(err);
				err = NULL;
			}
		}
		json_decref(cfg);
	} else {
		if (cfg != NULL || strncmp(err->msg, "kubeconfig fuzz", 15))
			abort();
		check_error(err);
		err = NULL;
	}

	/* The bytes as an error answer of the API server. */
	ac_remote_resp_t r = {.status = size ? 400 + data[0] % 200 : 500,
			      .body = (char *)data,
			      .len = size,
			      .retry_after = size > 1 ? data[1] - 1 : -1,
			      .json = json_loadb((const char *)data, size, 0, NULL)};
	char *nul = memchr(data, 0, size);
	if (nul || !size) { /* the transport hands over NUL-terminated bodies */
		json_decref(r.json);
		return 0;
	}
	char *copy = strndup((const char *)data, size);
	r.body = copy;
	if (ac_k8s_error_from(&r, "cluster 'fuzz'", "fuzz", &err) != -1)
		abort();
	if (strncmp(err->msg, "fuzz on cluster 'fuzz': ", 24))
		abort();
	check_error(err);
	free(copy);
	json_decref(r.json);
	return 0;
}
