/* The native backend (src/backends/native/): its ops, and what its files share. */
#ifndef AGENTCELL_NATIVE_H
#define AGENTCELL_NATIVE_H

#include "agentcell/backend.h"
#include "runtime/runtime.h"

extern const ac_backend_ops_t ac_native_ops;

/* Runs fn against the sandbox's root (running or stopped; see ac_rt_in_root), bounded by
 * ctl (may be NULL). ctx->lock is held on entry; it is released early for a running
 * sandbox, once its init is identified (native.c). */
int ac_native_in_root(const ac_backend_ctx_t *ctx, const json_t *st, const ac_rt_root_ctl_t *ctl,
		      ac_rt_root_fn fn, void *arg, ac_error_t **err);
/* ops.files (files.c). */
int ac_native_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		    ac_error_t **err);
/* ops.probe (probe.c): the host checks of doctor, as
 * {available, checks: [{name, ok, detail, fix?}], summary}. */
json_t *ac_native_probe(const ac_backend_ctx_t *ctx);

#endif
