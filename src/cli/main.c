/* agentcell: isolated Linux sandboxes for AI coding agents. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/proctitle.h"
#include "base/util.h"
#include "cli/cli.h"
#include "net/net.h"
#include "agentcell/backend.h"

/* The order of 'agentcell --help'. */
const cli_command_t *const cli_commands[] = {
    &cli_cmd_run,
    &cli_cmd_create,
    &cli_cmd_start,
    &cli_cmd_exec,
    &cli_cmd_cp,
    &cli_cmd_files,
    &cli_cmd_agents,
    &cli_cmd_exec_list,
    &cli_cmd_exec_status,
    &cli_cmd_exec_logs,
    &cli_cmd_exec_kill,
    &cli_cmd_stop,
    &cli_cmd_remove,
    &cli_cmd_list,
    &cli_cmd_info,
    &cli_cmd_doctor,
    &cli_cmd_extend,
    &cli_cmd_gc,
    &cli_cmd_policy,
    &cli_cmd_reconcile,
    &cli_cmd_recover,
    &cli_cmd_label,
    &cli_cmd_describe,
    &cli_cmd_resize,
    &cli_cmd_audit,
    &cli_cmd_net_log,
    &cli_cmd_secret,
    &cli_cmd_image,
    &cli_cmd_snapshot,
    &cli_cmd_template,
    &cli_cmd_volume,
    &cli_cmd_metrics,
    &cli_cmd_serve,
    &cli_cmd_mcp,
    NULL,
};

static void usage(FILE *f)
{
	fprintf(f,
		"agentcell %s: isolated Linux sandboxes for AI coding agents\n\n"
		"Usage: agentcell COMMAND [OPTIONS] [ARGS]\n\nCommands:\n",
		AGENTCELL_VERSION);
	for (const cli_command_t *const *c = cli_commands; *c; c++)
		fprintf(f, "  %-12s %s\n", (*c)->name, (*c)->summary);
	fprintf(f, "\nRun 'agentcell COMMAND --help' for a command's options.\n"
		   "State lives in $AGENTCELL_HOME (default ~/.local/share/agentcell).\n");
}

int cli_error(ac_error_t *e)
{
	fprintf(stderr, "%s: %s\n", cli_prog, e ? e->msg : "unknown error");
	int code = ac_error_exit_code(e);
	ac_error_free(e);
	return code;
}

ac_manager_t *cli_manager(int *exit_code)
{
	ac_manager_t *m = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_open(NULL, &m, &e) < 0) {
		*exit_code = cli_error(e);
		return NULL;
	}
	return m;
}

int main(int argc, char **argv)
{
	ac_proctitle_init(argc, argv);
	ac_backends_helper_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], AC_NET_PROXY_ARG))
		return ac_net_proxy_main(argc, argv);
	if (cli_compat_invoked(argv[0]))
		return cli_compat_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		if (argc > 2 && !strcmp(cmd, "help")) {
			const cli_command_t *c = cli_find(argv[2]);
			if (!c)
				return cli_usage(NULL, "unknown command '%s'", argv[2]);
			cli_help(c);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("agentcell %s\n", AGENTCELL_VERSION);
		return 0;
	}
	const cli_command_t *c = cli_find(cmd);
	if (!c)
		return cli_usage(NULL, "unknown command '%s'", cmd);
	int rc = c->fn(argc - 1, argv + 1);
	int en = 0;
	unsigned lost = ac_audit_lost(&en);
	if (lost)
		fprintf(stderr,
			"%s: warning: %u audit record%s could not be written to the audit "
			"log: %s\n",
			cli_prog, lost, lost == 1 ? "" : "s", strerror(en));
	return rc;
}
