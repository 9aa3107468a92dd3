/* agentcell serve: the HTTP API (src/api), compatible with agentkernel's SDKs, with MCP over
 * Streamable HTTP at /mcp. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/config.h"
#include "agentcell/pool.h"
#include "agentcell/server.h"
#include "base/parse.h"
#include "base/util.h"
#include "api/http.h"
#include "cli/cli.h"
#include "mcp/mcp.h"
#include "agentcell/backend.h"

/* Accepted keys: $AGENTCELL_API_KEY, $AGENTKERNEL_API_KEY, [api] api_key, and the variable
 * named by [api] api_key_env. Empty values do not count. */
static char **api_keys(json_t *cfg)
{
	json_t *api = json_object_get(cfg, "api");
	const char *from_env = json_string_value(json_object_get(api, "api_key_env"));
	const char *cands[] = {getenv("AGENTCELL_API_KEY"), getenv("AGENTKERNEL_API_KEY"),
			       json_string_value(json_object_get(api, "api_key")),
			       from_env ? getenv(from_env) : NULL};
	char **keys = calloc(AC_ARRAY_SIZE(cands) + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; keys && i < AC_ARRAY_SIZE(cands); i++)
		if (cands[i] && *cands[i] && !(keys[n++] = strdup(cands[i]))) {
			/* Out of memory: never serve with fewer keys than configured (an empty
			 * list would mean no authentication at all). */
			fprintf(stderr, "%s: out of memory\n", cli_prog);
			exit(1);
		}
	return keys;
}

#define STOP_GRACE_S 10

/* Exits STOP_GRACE_S after the stop began, or at a second SIGINT/SIGTERM. */
static void *stop_watchdog(void *arg)
{
	const sigset_t *stop = arg;
	struct timespec t = {.tv_sec = STOP_GRACE_S};
	siginfo_t si;
	int sig = sigtimedwait(stop, &si, &t);
	fprintf(stderr, "%s: %s: exiting with requests still running\n", cli_prog,
		sig > 0 ? "stopped again" : "still busy after 10 s");
	_exit(sig > 0 ? 130 : 0);
}

typedef struct serve_state {
	ac_server_opts_t so;
	const char *config_path;
	cli_roots_t roots;
	double exec_timeout;
	int pool_size; /* -1: not given */
	const char *pool_image;
} serve_state_t;

static cli_status_t opt_port(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t port;
	if (ac_parse_u64(v, 0, 65535, &port) < 0)
		return cli_usage_error(cmd, "--port must be 0-65535, not '%s'", v);
	*(unsigned *)t = (unsigned)port;
	return CLI_OK;
}

static cli_status_t opt_exec_timeout(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t secs;
	if (ac_duration_parse(v, &secs) < 0 || secs > 7 * 86400)
		return cli_usage_error(
		    cmd, "--exec-timeout must be a duration up to 7d (90s, 30m, 2h), not '%s'", v);
	*(double *)t = (double)secs;
	return CLI_OK;
}

static cli_status_t opt_idle_timeout(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t secs;
	if (ac_duration_parse(v, &secs) < 0 || secs < 1 || secs > 3600)
		return cli_usage_error(
		    cmd, "--idle-timeout must be a duration from 1s to 1h (10, 30s, 5m), not '%s'",
		    v);
	*(unsigned *)t = (unsigned)secs;
	return CLI_OK;
}

static cli_status_t opt_per_ip(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t n;
	if (ac_parse_u64(v, 1, 256, &n) < 0)
		return cli_usage_error(cmd, "--max-conns-per-ip must be 1-256, not '%s'", v);
	*(unsigned *)t = (unsigned)n;
	return CLI_OK;
}

static cli_status_t opt_pool(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	uint64_t n;
	if (ac_parse_u64(v, 0, AC_POOL_MAX, &n) < 0)
		return cli_usage_error(cmd, "--pool must be 0-%d, not '%s'", AC_POOL_MAX, v);
	*(int *)t = (int)n;
	return CLI_OK;
}

static const cli_opt_t serve_opts[] = {
    CLI_STRING("--host", 0, "ADDR", "address to listen on (default 127.0.0.1)", serve_state_t,
	       so.host),
    CLI_FN("--port", 0, "N", "TCP port (default 18888; 0: any free port)", opt_port, serve_state_t,
	   so.port),
    CLI_STRING("--socket", 0, "PATH", "listen on a unix socket (mode 0600) instead", serve_state_t,
	       so.socket_path),
    CLI_STRING("--config", 0, "FILE",
	       "agentcell.toml to read (default ./agentcell.toml, else\n"
	       "$AGENTCELL_HOME/agentcell.toml)",
	       serve_state_t, config_path),
    CLI_FN("--exec-timeout", 0, "D",
	   "time limit of a command whose request sets none (90s, 30m,\n"
	   "2h; default: none; detached commands are not limited)",
	   opt_exec_timeout, serve_state_t, exec_timeout),
    CLI_FN("--idle-timeout", 0, "D",
	   "close a connection that sends or reads nothing for D\n"
	   "(default 30s; a running command is not idle)",
	   opt_idle_timeout, serve_state_t, so.idle_timeout),
    CLI_FN("--max-conns-per-ip", 0, "N", "connections one address may hold (default 64, of 256)",
	   opt_per_ip, serve_state_t, so.per_ip_limit),
    CLI_FN("--image-root", 0, "DIR",
	   "allow directory images below DIR (repeatable; by default\n"
	   "requests may use only 'host' and container images, and\n"
	   "nothing of the host is mounted at /workspace)",
	   cli_opt_image_root, serve_state_t, roots),
    CLI_FN("--pool", 0, "N",
	   "keep N sandboxes started for POST /run (0-64; default\n"
	   "agentcell.toml [pool] size, else 0): a run that asks only\n"
	   "for a command, env, timeout, workdir costs one exec",
	   opt_pool, serve_state_t, pool_size),
    CLI_STRING("--pool-image", 0, "REF",
	       "the pool sandboxes' image (default [pool] image, else host)", serve_state_t,
	       pool_image),
    CLI_FLAG("--verbose", 'v', "log HTTP protocol errors on stderr", serve_state_t, so.verbose),
    CLI_END,
};

const cli_command_t cli_cmd_serve = {
    .name = "serve",
    .summary = "serve the HTTP API (agentkernel-compatible) and MCP over HTTP",
    .synopsis = "[--host ADDR] [--port N] [--socket PATH] [--config FILE]\n"
		"                [--exec-timeout D] [--idle-timeout D] [--max-conns-per-ip N]\n"
		"                [--image-root DIR]... [--pool N [--pool-image REF]]",
    .about =
	"Serves the HTTP API that agentkernel's SDKs speak (npm, Python, Go, Rust, Swift) on\n"
	"127.0.0.1:18888, and the MCP tools over Streamable HTTP at /mcp. Requests run in\n"
	"parallel, one thread per connection. An API key ($AGENTCELL_API_KEY,\n"
	"$AGENTKERNEL_API_KEY, or [api] api_key / api_key_env in agentcell.toml) makes every\n"
	"endpoint but /health, /metrics and /openapi.json require 'Authorization: Bearer KEY';\n"
	"an address other than loopback is refused without one. Pages of other sites are\n"
	"refused (Origin), and without a key so are requests for another host name (Host);\n"
	"bodies must be application/json. SIGINT/SIGTERM stop it.\n"
	"\n"
	"With --pool N, N sandboxes are kept created and started (hidden from list and the\n"
	"API; 'list --all' shows them): a POST /run with no sandbox options runs in one of\n"
	"them, which is removed afterwards (never reused) while a replacement starts. Stopping\n"
	"the server removes them; a killed server's are removed at the next start.\n",
    .opts = serve_opts,
    .fn = cmd_serve,
};

int cmd_serve(int argc, char **argv)
{
	serve_state_t st = {.so = {.host = "127.0.0.1", .port = 18888}, .pool_size = -1};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_serve, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	ac_server_opts_t so = st.so;
	const char *config_path = st.config_path;
	char **image_roots = st.roots.v;
	double exec_timeout = st.exec_timeout;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	/* Requests come from other users: nothing of the host's file system unless allowed. */
	if (ac_manager_restrict_host(m, image_roots, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	if (ac_config_load(config_path, ac_store_home(ac_manager_store(m)), &cfg, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	ac_config_print_warnings(cfg);
	/* A create promises "created and started, or not there at all": what a serve (or
	 * MCP server) killed between the two left is undone before we answer anything. */
	int undone = ac_manager_undo_abandoned(m, NULL);
	if (undone > 0)
		fprintf(stderr,
			"%s: removed %d sandbox(es) whose create an earlier server did not "
			"finish\n",
			cli_prog, undone);
	/* A killed server's warm pool: its sandboxes (state "pool", owner gone) go. */
	int swept = ac_pool_sweep(m);
	if (swept > 0)
		fprintf(stderr, "%s: removed %d pool sandbox(es) of a server that is gone\n",
			cli_prog, swept);
	json_t *pcfg = json_object_get(cfg, "pool");
	ac_pool_opts_t po = {
	    .size = st.pool_size >= 0 ? (unsigned)st.pool_size
				      : (unsigned)json_integer_value(json_object_get(pcfg, "size")),
	    .image =
		st.pool_image ? st.pool_image : json_string_value(json_object_get(pcfg, "image"))};
	ac_pool_t *pool = NULL;
	/* Everything process-wide is settled before the first request thread exists: signal
	 * dispositions stay ours (requests never relay or change them), the JSON hash seed
	 * and the cgroup layout are read once. */
	ac_backends_prepare_threads();
	signal(SIGPIPE, SIG_IGN);
	json_object_seed(0);
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	ac_api_t api = {.m = m,
			.keys = api_keys(cfg),
			.batch_parallel = 4,
			.exec_timeout = exec_timeout,
			.languages = json_object_get(cfg, "languages"),
			.allow_sudo_exec = json_is_true(
			    json_object_get(json_object_get(cfg, "api"), "allow_sudo_exec"))};
	if (!api.keys) {
		fprintf(stderr, "%s: out of memory\n", cli_prog);
		return 1;
	}
	ac_mcp_t *mcp = NULL;
	ac_server_t *srv = NULL;
	int rc = 1;
	if (ac_mcp_new(m, AGENTCELL_VERSION, config_path, &mcp, &e) < 0) {
		rc = cli_error(e);
		goto out;
	}
	api.mcp = mcp;
	/* After the signal mask: the pool's threads must never take SIGTERM. */
	if (po.size > 0) {
		if (ac_pool_start(m, &po, &pool, &e) < 0) {
			rc = cli_error(e);
			goto out;
		}
		api.pool = pool;
		fprintf(stderr, "%s: warm pool of %u sandbox(es), image %s\n", cli_prog, po.size,
			po.image ? po.image : "host");
	}
	if (ac_server_start(&so, &api, &srv, &e) < 0) {
		rc = cli_error(e);
		goto out;
	}
	if (so.socket_path)
		fprintf(stderr, "%s: serving the API on unix:%s\n", cli_prog, so.socket_path);
	else
		fprintf(stderr, "%s: serving the API on http://%s%s%s:%u (%s)\n", cli_prog,
			strchr(so.host, ':') ? "[" : "", so.host, strchr(so.host, ':') ? "]" : "",
			ac_server_port(srv),
			api.keys && api.keys[0] ? "API key required" : "no API key, loopback only");
	int sig = 0;
	sigwait(&stop, &sig);
	fprintf(stderr, "%s: %s, stopping the API server\n", cli_prog, strsignal(sig));
	/* Stopping waits for the requests in flight; a long exec must not hold it for ever. */
	pthread_t th;
	if (pthread_create(&th, NULL, stop_watchdog, &stop) == 0)
		pthread_detach(th);
	rc = 0;
out:
	ac_server_stop(srv);
	/* No request holds a pool sandbox any more: every one of them goes. */
	ac_pool_stop(pool);
	ac_mcp_free(mcp);
	ac_strv_free(api.keys);
	json_decref(cfg);
	ac_manager_free(m);
	return rc;
}
