/* agentcell serve: the HTTP API (src/api), compatible with agentkernel's SDKs, with MCP over
 * Streamable HTTP at /mcp. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/config.h"
#include "agentcell/server.h"
#include "agentcell/util.h"
#include "api/http.h"
#include "cli/cli.h"
#include "mcp/mcp.h"
#include "runtime/runtime.h"

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
			fprintf(stderr, "agentcell: out of memory\n");
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
	fprintf(stderr, "agentcell: %s: exiting with requests still running\n",
		sig > 0 ? "stopped again" : "still busy after 10 s");
	_exit(sig > 0 ? 130 : 0);
}

int cmd_serve(int argc, char **argv)
{
	ac_server_opts_t so = {.host = "127.0.0.1", .port = 18888};
	const char *config_path = NULL, *v;
	char *image_roots[17] = {0};
	double exec_timeout = 0;
	int nroots = 0;
	for (int i = 1; i < argc; i++) {
		int r;
		uint64_t port;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cli_help("serve");
		if ((r = cli_opt_value("serve", argc, argv, &i, "--host", &v)) != 0) {
			if (r < 0)
				return -r;
			so.host = v;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--port", &v)) != 0) {
			if (r < 0)
				return -r;
			if (ac_parse_u64(v, 0, 65535, &port) < 0)
				return cli_usage("serve", "--port must be 0-65535, not '%s'", v);
			so.port = (unsigned)port;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--socket", &v)) != 0) {
			if (r < 0)
				return -r;
			so.socket_path = v;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--config", &v)) != 0) {
			if (r < 0)
				return -r;
			config_path = v;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--exec-timeout", &v)) !=
			   0) {
			if (r < 0)
				return -r;
			uint64_t secs;
			if (ac_duration_parse(v, &secs) < 0 || secs > 7 * 86400)
				return cli_usage(
				    "serve",
				    "--exec-timeout must be a duration up to 7d (90s, 30m, "
				    "2h), not '%s'",
				    v);
			exec_timeout = (double)secs;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--idle-timeout", &v)) !=
			   0) {
			if (r < 0)
				return -r;
			uint64_t secs;
			if (ac_duration_parse(v, &secs) < 0 || secs < 1 || secs > 3600)
				return cli_usage("serve",
						 "--idle-timeout must be a duration from 1s to 1h "
						 "(10, 30s, 5m), not '%s'",
						 v);
			so.idle_timeout = (unsigned)secs;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--max-conns-per-ip", &v)) !=
			   0) {
			if (r < 0)
				return -r;
			uint64_t n;
			if (ac_parse_u64(v, 1, 256, &n) < 0)
				return cli_usage("serve",
						 "--max-conns-per-ip must be 1-256, not '%s'", v);
			so.per_ip_limit = (unsigned)n;
		} else if ((r = cli_opt_value("serve", argc, argv, &i, "--image-root", &v)) != 0) {
			if (r < 0)
				return -r;
			if (nroots == 16)
				return cli_usage("serve", "at most 16 --image-root");
			image_roots[nroots++] = (char *)v;
		} else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
			so.verbose = true;
		} else {
			return cli_usage("serve", "unknown argument '%s'", argv[i]);
		}
	}
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
	/* A create promises "created and started, or not there at all": what a serve (or
	 * MCP server) killed between the two left is undone before we answer anything. */
	int undone = ac_manager_undo_abandoned(m, NULL);
	if (undone > 0)
		fprintf(stderr,
			"agentcell: removed %d sandbox(es) whose create an earlier server did not "
			"finish\n",
			undone);
	/* Everything process-wide is settled before the first request thread exists: signal
	 * dispositions stay ours (requests never relay or change them), the JSON hash seed
	 * and the cgroup layout are read once. */
	ac_rt_relay_signals = false;
	signal(SIGPIPE, SIG_IGN);
	json_object_seed(0);
	ac_cgroup_mode(NULL);
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	ac_api_t api = {
	    .m = m, .keys = api_keys(cfg), .batch_parallel = 4, .exec_timeout = exec_timeout};
	if (!api.keys) {
		fprintf(stderr, "agentcell: out of memory\n");
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
	if (ac_server_start(&so, &api, &srv, &e) < 0) {
		rc = cli_error(e);
		goto out;
	}
	if (so.socket_path)
		fprintf(stderr, "agentcell: serving the API on unix:%s\n", so.socket_path);
	else
		fprintf(stderr, "agentcell: serving the API on http://%s%s%s:%u (%s)\n",
			strchr(so.host, ':') ? "[" : "", so.host, strchr(so.host, ':') ? "]" : "",
			ac_server_port(srv),
			api.keys && api.keys[0] ? "API key required" : "no API key, loopback only");
	int sig = 0;
	sigwait(&stop, &sig);
	fprintf(stderr, "agentcell: %s, stopping the API server\n", strsignal(sig));
	/* Stopping waits for the requests in flight; a long exec must not hold it for ever. */
	pthread_t th;
	if (pthread_create(&th, NULL, stop_watchdog, &stop) == 0)
		pthread_detach(th);
	rc = 0;
out:
	ac_server_stop(srv);
	ac_mcp_free(mcp);
	ac_strv_free(api.keys);
	json_decref(cfg);
	ac_manager_free(m);
	return rc;
}
