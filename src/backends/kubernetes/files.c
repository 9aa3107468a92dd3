/* Files of a Kubernetes sandbox (ops.files): the shared tar file operations
 * (src/backends/tarfiles.c) over the tar-over-exec transport (src/backends/tarexec.c), its
 * execs over pods/exec (the stdout cap through ac_kc_t.out_max) and its killer
 * ac_kc_run_killer.
 *
 * A stopped sandbox has no pod, so no files: AC_ERR_NOT_RUNNING. The sandbox's lock is
 * released once its pod is found running: the execs reach the pod by name, and a stop or
 * a remove need not wait for a transfer (it then fails). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/util.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/tarfiles.h"

/* The tar transport's exec (ac_tarexec_t.stream): stdout capped through k->out_max. */
static int k8s_stream(void *arg, char **argv, int in_fd, int out_fd, int err_fd,
		      int64_t deadline_ms, int cancel_fd, uint64_t out_max, int *code,
		      ac_error_t **err)
{
	ac_kc_t *k = arg;
	k->out_len = 0;
	k->out_max = out_max;
	int rc =
	    ac_kc_exec_stream(k, argv, in_fd, out_fd, err_fd, deadline_ms, cancel_fd, code, err);
	k->out_max = 0;
	return rc;
}

static void k8s_kill(void *arg, const char *id)
{
	ac_kc_run_killer(arg, id);
}

int ac_k8s_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		 ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	ac_kc_t k;
	if (ac_kc_open(st, &k, err) < 0)
		return -1;
	ac_k8s_pod_state_t ps;
	int g = ac_kc_pod_get(&k, k.pod, &ps, err);
	int rc = -1;
	if (g == 1 && ps.verdict == AC_K8S_POD_RUNNING && !ps.deleting) {
		ac_backend_unlock(ctx);
		ac_tarexec_t t = {.arg = &k,
				  .name = name,
				  .backend = "kubernetes",
				  .run_user = k.uid[0] ? k.uid : NULL,
				  .user_hint = AC_KC_USER_HINT,
				  .cancel_fd = ctx ? ctx->cancel_fd : -1,
				  .stream = k8s_stream,
				  .kill = k8s_kill};
		ac_tarfiles_io_t io;
		ac_tarexec_io(&t, "the pod", "the pod's tar", &io);
		rc = ac_tarfiles_op(&io, req, err);
	} else if (g >= 0) {
		ac_error_set(err, AC_ERR_NOT_RUNNING, 0,
			     "sandbox '%s' is not running: file operations need a running sandbox "
			     "on the kubernetes backend (a stopped sandbox has no pod)",
			     name);
	}
	ac_kc_close(&k);
	return rc;
}
