/* The native backend (src/backends/native/): its ops, and what its files share. */
#ifndef AGENTCELL_NATIVE_H
#define AGENTCELL_NATIVE_H

#include "agentcell/backend.h"
#include "runtime/runtime.h"

extern const ac_backend_ops_t ac_native_ops;

/* What a spec made from a state owns (ac_native_mem_free frees it). */
typedef struct ac_native_mem {
	char **env;	      /* the environment, then the command policy's lists */
	char **layers;	      /* layer directories, each allocated */
	ac_rt_volume_t *vols; /* volumes; src allocated */
	size_t nvols;
} ac_native_mem_t;
void ac_native_mem_free(ac_native_mem_t *m);
#define _cleanup_mem_ __attribute__((cleanup(ac_native_mem_free)))
/* The image's part of spec (layers, image base, workdir, user) and the volumes, from
 * state (image.c); allocations go to mem. Checked as the builder would (AC_ERR_INVALID). */
int ac_native_image_spec(const ac_backend_ctx_t *ctx, const json_t *st, ac_rt_spec_t *spec,
			 ac_native_mem_t *mem, ac_error_t **err);

/* Runs fn against the sandbox's root (running or stopped; see ac_rt_in_root), bounded by
 * ctl (may be NULL). ctx->lock is held on entry; it is released early for a running
 * sandbox, once its init is identified (native.c). */
int ac_native_in_root(const ac_backend_ctx_t *ctx, const json_t *st, const ac_rt_root_ctl_t *ctl,
		      ac_rt_root_fn fn, void *arg, ac_error_t **err);
/* ops.files (files.c). */
int ac_native_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		    ac_error_t **err);
/* ops.snapshot for a stopped sandbox whose data directory is data (snapshot.c). */
int ac_native_snapshot(const ac_backend_ctx_t *ctx, const json_t *st, const char *data, int out_fd,
		       char *digest_out, char *diff_id_out, ac_error_t **err);
/* ops.probe (probe.c): the host checks of doctor, as
 * {available, checks: [{name, ok, detail, fix?}], summary}. */
json_t *ac_native_probe(const ac_backend_ctx_t *ctx);

#endif
