/* The Kubernetes backend's ops (backend.c), for the table in src/backends/registry.c. */
#ifndef AGENTCELL_BACKENDS_KUBERNETES_H
#define AGENTCELL_BACKENDS_KUBERNETES_H

#include "agentcell/backend.h"

extern const ac_backend_ops_t ac_k8s_ops;

#endif
