/* The one table of backends (include/agentcell/backend.h): --backend, "auto", doctor, the
 * API's and MCP's backend field and the state's "backend" all resolve through it, in the
 * manner of curl's scheme table (lib/protocol.c). A new backend is one entry here. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/native/native.h"
#include "backends/nomad/nomad.h"

static const ac_backend_t table[] = {
    {.name = "native",
     .summary = "Linux namespaces, cgroups, seccomp and overlayfs on this machine (root)",
     .caps = AC_CAP_FILES | AC_CAP_RESIZE | AC_CAP_DETACH | AC_CAP_TTY | AC_CAP_DISK |
	     AC_CAP_EXEC_BY_NAME | AC_CAP_NETWORK | AC_CAP_EGRESS | AC_CAP_IMAGE_STORE |
	     AC_CAP_SNAPSHOT | AC_CAP_VOLUMES,
     .ops = &ac_native_ops},
    {.name = "docker",
     .summary = "containers through the Docker Engine API (Docker, or Podman's API)",
     .caps = AC_CAP_FILES | AC_CAP_RESIZE | AC_CAP_DETACH | AC_CAP_TTY | AC_CAP_NETWORK |
	     AC_CAP_IMAGES | AC_CAP_EGRESS,
     .ops = &ac_docker_ops},
    {.name = "podman",
     .summary = "containers through Podman's Docker-compatible API",
     .caps = AC_CAP_FILES | AC_CAP_RESIZE | AC_CAP_DETACH | AC_CAP_TTY | AC_CAP_NETWORK |
	     AC_CAP_IMAGES | AC_CAP_EGRESS,
     .ops = &ac_podman_ops},
    {.name = "kubernetes",
     .aliases = (const char *const[]){"k8s", NULL},
     .summary = "one pod per sandbox through the Kubernetes API server (kubeconfig or in-cluster)",
     /* DISK: disk_mb is the pod's ephemeral-storage limit (requests = limits), enforced by
      * the kubelet's eviction. No RESIZE: a pod's resources are fixed once it runs (in-place
      * resize is a feature gate of newer clusters), so resize is refused. */
     .caps =
	 AC_CAP_FILES | AC_CAP_DETACH | AC_CAP_TTY | AC_CAP_NETWORK | AC_CAP_IMAGES | AC_CAP_DISK,
     .ops = &ac_k8s_ops},
    {.name = "nomad",
     .summary = "one job per sandbox through the Nomad HTTP API (NOMAD_ADDR or [nomad])",
     /* No RESIZE: a job's resources change only with a new allocation. */
     .caps = AC_CAP_FILES | AC_CAP_DETACH | AC_CAP_TTY | AC_CAP_NETWORK | AC_CAP_IMAGES,
     .ops = &ac_nomad_ops},
};

const ac_backend_t *ac_backends(size_t *n)
{
	*n = AC_ARRAY_SIZE(table);
	return table;
}

const ac_backend_t *ac_backend_find(const char *name)
{
	for (size_t i = 0; name && i < AC_ARRAY_SIZE(table); i++) {
		if (!strcmp(name, table[i].name))
			return &table[i];
		for (const char *const *a = table[i].aliases; a && *a; a++)
			if (!strcmp(name, *a))
				return &table[i];
	}
	return NULL;
}

const char *ac_backend_names(void)
{
	static char names[256];
	static int done;
	/* Built once; the table is constant, so a race only writes the same bytes. */
	if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		char buf[256] = "";
		size_t len = 0;
		for (size_t i = 0; i < AC_ARRAY_SIZE(table); i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", table[i].name,
						i + 1 < AC_ARRAY_SIZE(table) ? ", " : " ");
		snprintf(buf + len, sizeof(buf) - len, "or auto");
		memcpy(names, buf, sizeof(names));
		__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	}
	return names;
}

const ac_backend_t *ac_backend_of(const json_t *state, ac_error_t **err)
{
	const char *name = ac_state_str(state, "backend", "native");
	const ac_backend_t *b = ac_backend_find(name);
	if (!b)
		ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			     "backend '%s' is not available in this build", name);
	return b;
}

const ac_backend_t *ac_backend_resolve(const char *want, const ac_backend_ctx_t *ctx,
				       ac_error_t **err)
{
	if (!want || !*want)
		want = "native";
	if (!strcmp(want, "auto")) {
		for (size_t i = 0; i < AC_ARRAY_SIZE(table); i++)
			if (table[i].ops->available && table[i].ops->available(ctx))
				return &table[i];
		return &table[0];
	}
	const ac_backend_t *b = ac_backend_find(want);
	if (!b)
		ac_error_set(err, AC_ERR_INVALID, 0, "unknown backend '%s' (use %s)", want,
			     ac_backend_names());
	return b;
}

int ac_backend_require(const ac_backend_t *b, unsigned caps, const char *what, ac_error_t **err)
{
	if ((b->caps & caps) == caps)
		return 0;
	return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, "%s is not supported by the %s backend",
			    what, b->name);
}

void ac_backends_prepare_threads(void)
{
	/* Commands of a threaded server run side by side: none may take the process's
	 * signals (native commands relay them, so do docker's). */
	ac_rt_relay_signals = false;
	/* Read once, before any thread: the cgroup layout every start and stop uses. */
	ac_cgroup_mode(NULL);
}

void ac_backends_helper_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], AC_RT_BUILDER_ARG))
		ac_rt_builder_main(argc, argv);
	ac_k8s_watch_main(argc, argv);
	ac_nomad_watch_main(argc, argv);
}

void ac_backend_unlock(const ac_backend_ctx_t *ctx)
{
	if (ctx->lock && *ctx->lock >= 0) {
		close(*ctx->lock);
		*ctx->lock = -1;
	}
}
