/* The Kubernetes backend's ops (backend.c, gc.c), for the table in src/backends/registry.c. */
#ifndef AGENTCELL_BACKENDS_KUBERNETES_H
#define AGENTCELL_BACKENDS_KUBERNETES_H

#include "agentcell/backend.h"

extern const ac_backend_ops_t ac_k8s_ops;

/* gc.c: doctor's report on the cluster and the leftovers of this home (see there). */
json_t *ac_k8s_probe(const ac_backend_ctx_t *ctx);
void ac_k8s_sweep(const ac_backend_ctx_t *ctx, bool remove, json_t *found);
/* files.c: ops.files, tar over pods/exec (see there). */
int ac_k8s_files(const ac_backend_ctx_t *ctx, const json_t *state, const ac_files_req_t *req,
		 ac_error_t **err);

/* detach.c: the watcher of a detached command is this binary with argv[1] ==
 * AC_K8S_WATCH_ARG; a main() calls this first (through ac_backends_helper_main): it does not
 * return for that argv. */
#define AC_K8S_WATCH_ARG "__k8s-watch"
void ac_k8s_watch_main(int argc, char **argv);

#endif
