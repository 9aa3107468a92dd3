/* The Docker/Podman backend's network: the same egress proxy, policy, secrets and published
 * ports as the native backend (src/net/net.h), for a sandbox whose state has "net".
 *
 * The engine makes the container's network namespace, so the builder's trick (the
 * proxy's listener made inside the namespace before the sandbox's first process) is
 * replaced by this:
 *   - the container is created with HostConfig.NetworkMode "none", whatever the engine's
 *     default: its namespace has only lo, and nothing in it (CapDrop ALL: no NET_ADMIN)
 *     can add an interface or a route;
 *   - with secrets, the sandbox's CA bundle (ac_net_prepare) is bind-mounted read-only at
 *     AC_NET_SANDBOX_BUNDLE; it is made at create (the engine checks a bind's source) and
 *     written again before every start;
 *   - after the container started, its init's pid (inspect State.Pid) gives a pidfd and
 *     /proc/PID/ns/net; the proxy's listener is made inside that namespace
 *     (ac_net_socket_in at 127.0.0.1:AC_NET_PROXY_PORT, or a datagram handle when only
 *     ports are published) and the proxy is spawned with the pidfd as its life: it ends
 *     with the container's init, however the container ends;
 *   - a persistent sandbox's commands are execs, so none runs before the proxy listens.
 *     A one-shot run's command would, if it were the container's own: with "net" a run
 *     is an idle container, the proxy, then the command as an exec (exec.c).
 * This needs the engine on this machine: the pid must be one of this kernel's, in the
 * container's cgroup. An engine over tcp:// or a pid that is 0 or not the container's
 * fails the start with AC_ERR_UNSUPPORTED; nothing then runs without its proxy (the
 * container is stopped again). A container without "net" is exactly as before. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "net/net.h"

bool ac_docker_has_net(const json_t *st)
{
	return json_is_object(json_object_get(st, "net"));
}

int ac_docker_net_local(ac_docker_t *d, ac_error_t **err)
{
	const ac_docker_host_t *h = ac_docker_host(d);
	if (!h->is_unix)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "egress policy needs a local engine: the container engine at "
				    "%s is reached over TCP (the proxy enters the container's "
				    "network namespace by its pid)",
				    h->spec);
	return 0;
}

int ac_docker_net_bundle(const ac_backend_ctx_t *ctx, ac_docker_t *d, const json_t *st,
			 char **bundle, ac_error_t **err)
{
	*bundle = NULL;
	if (!ac_docker_has_net(st))
		return 0;
	if (ac_docker_net_local(d, err) < 0)
		return -1;
	json_t *orders = NULL;
	int rc = ac_net_prepare(ctx->home, ac_state_str(st, "name", ""), json_object_get(st, "net"),
				&orders, bundle, err);
	/* The orders hold secret values: only the bundle is wanted now. */
	json_decref(orders);
	return rc;
}

int ac_docker_net_begin(const ac_backend_ctx_t *ctx, ac_docker_t *d, const json_t *st,
			ac_docker_net_t *n, ac_error_t **err)
{
	*n = (ac_docker_net_t){0};
	if (!ac_docker_has_net(st))
		return 0;
	if (ac_docker_net_local(d, err) < 0)
		return -1;
	const char *name = ac_state_str(st, "name", "");
	ac_net_pidfile(ctx->home, name, n->pidfile, sizeof(n->pidfile));
	/* A proxy of an earlier start whose container ended without a stop. */
	ac_net_proxy_stop(n->pidfile);
	if (ac_net_prepare(ctx->home, name, json_object_get(st, "net"), &n->orders, &n->bundle,
			   err) < 0)
		return -1;
	n->on = true;
	n->proxy = json_is_true(json_object_get(json_object_get(st, "net"), "proxy"));
	return 0;
}

/* Whether /proc/PID/cgroup names the container (its full id): the pid the engine gave is
 * this kernel's and the container's, not another machine's or a recycled one. */
static bool pid_is_container(long pid, const char *id)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (strlen(id) < 64 || ac_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0)
		return false;
	return strstr(buf, id) != NULL;
}

static bool same_ns(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

int ac_docker_net_attach(ac_docker_net_t *n, const char *sandbox, long pid, const char *id,
			 ac_error_t **err)
{
	if (!n->on)
		return 0;
	static const char unsupported[] =
	    "egress policy needs a local engine: the container of '%s' %s (the proxy enters "
	    "the container's network namespace by its pid)";
	if (pid <= 0)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, unsupported, sandbox,
				    "has no process id the engine reports");
	/* pidfd first, then the namespace, then the checks that the pidfd's process is the
	 * container's: the namespace cannot be a recycled pid's. */
	_cleanup_close_ int pfd = pidfd_open((pid_t)pid, 0);
	if (pfd < 0 && errno == ESRCH)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, unsupported, sandbox,
				    "runs as a process this machine does not have");
	if (pfd < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno, "pidfd_open");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	if (ns < 0 || pidfd_send_signal(pfd, 0, NULL, 0) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, ns < 0 ? e : errno,
				    "the container of '%s' exited during its start", sandbox);
	if (!pid_is_container(pid, id))
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, unsupported, sandbox,
				    "runs as a process this machine does not show in its cgroup");
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0 || same_ns(ns, self))
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the container of '%s' shares the host's network namespace",
				    sandbox);
	_cleanup_close_ int listen_fd = ac_net_socket_in(ns, n->proxy ? AC_NET_PROXY_PORT : 0, err);
	if (listen_fd < 0)
		return -1;
	ac_net_proxy_req_t req = {
	    .orders = n->orders, .listen_fd = listen_fd, .life_fd = pfd, .pidfile = n->pidfile};
	pid_t proxy;
	if (ac_net_proxy_spawn(&req, &proxy, err) < 0) {
		ac_error_prefix(err, "sandbox '%s'", sandbox);
		return -1;
	}
	return 0;
}

void ac_docker_net_end(ac_docker_net_t *n)
{
	json_decref(n->orders);
	free(n->bundle);
	n->orders = NULL;
	n->bundle = NULL;
}
