/* agentcell run --pool (src/cli/run_pool.c): the command runs through a server's POST /run,
 * in a sandbox of its warm pool when the request fits it. */
#ifndef AGENTCELL_CLI_RUN_POOL_H
#define AGENTCELL_CLI_RUN_POOL_H

#include "agentcell/manager.h"

typedef struct cli_run_pool {
	const char *server;	 /* --server URL, else $AGENTCELL_SERVER, else 127.0.0.1:18888 */
	const char *token;	 /* --token, else $AGENTCELL_TOKEN, the API key variables, config */
	const char *config_path; /* --config: where [api] api_key may be */
	char **argv;		 /* the command (a code run: its interpreter's argv) */
	char **env;		 /* KEY=VALUE, NULL-terminated or NULL */
	double timeout;		 /* seconds, 0: none */
	const ac_sandbox_opts_t *o; /* sandbox options given: sent (the server then makes
					 * the run's own sandbox: a pool miss) */
} cli_run_pool_t;

/* Sends the run, prints its stdout and stderr, returns the exit status: the command's,
 * 124 on timeout, 128+N when killed by signal N, else 1 (2: refused as invalid). */
int cli_run_pool(cli_run_pool_t *r);

#endif
