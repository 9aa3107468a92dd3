/* agentcell run */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct run_state {
	cli_sandbox_opts_t so;
	double timeout;
	bool interactive, keep;
	const char *name;
} run_state_t;

static const cli_opt_t run_opts[] = {
    CLI_GROUP(cli_sandbox_opts, NULL, offsetof(run_state_t, so)),
    CLI_FN("--timeout", 0, "SECONDS", "kill the sandbox after this long (exit status 124)",
	   cli_opt_seconds, run_state_t, timeout),
    CLI_FLAG("--interactive", 'i', "pass standard input through (otherwise /dev/null)", run_state_t,
	     interactive),
    CLI_FLAG("--keep", 0, "keep the sandbox (running) and print its name on stderr", run_state_t,
	     keep),
    CLI_STRING("--name", 0, "NAME", "name of the kept sandbox (with --keep)", run_state_t, name),
    CLI_GROUP(cli_lifetime_opts, "With --keep only:", offsetof(run_state_t, so)),
    CLI_END,
};

const cli_command_t cli_cmd_run = {
    .name = "run",
    .summary = "run one command in a fresh sandbox that is removed afterwards",
    .synopsis = "[OPTIONS] [--] CMD [ARG...]",
    .about =
	"Runs CMD in a new sandbox and removes the sandbox when CMD ends. Output streams live;\n"
	"the exit status is CMD's (124 on timeout, 128+N when killed by signal N, 127 when CMD\n"
	"does not exist).\n",
    .opts = run_opts,
    .command = true,
    .fn = cmd_run,
};

int cmd_run(int argc, char **argv)
{
	run_state_t st = {0};
	cli_sandbox_opts_t *so = &st.so;
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_run, argc, argv, &st, &ca);
	if (ps == CLI_OK && st.name && !st.keep)
		ps = cli_usage_error("run", "--name only applies with --keep");
	if (ps == CLI_OK && so->lifetime_opt && !st.keep)
		ps = cli_usage_error("run", "%s only applies with --keep", so->lifetime_opt);
	if (ps != CLI_OK) {
		cli_sandbox_opts_free(so);
		return cli_exit(ps);
	}
	bool keep = st.keep;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m) {
		cli_sandbox_opts_free(so);
		return code;
	}
	so->o.env = so->env.n ? so->env.v : NULL;
	so->o.name = st.name;
	if ((code = cli_apply_config(so, m)) != 0) {
		cli_sandbox_opts_free(so);
		ac_manager_free(m);
		return code;
	}
	ac_cmd_t cmd = {.argv = ca.cmd, .timeout = st.timeout, .stdin_open = st.interactive};
	int fds[3] = {0, 1, 2};
	ac_result_t res = {0};
	ac_error_t *e = NULL;
	char *kept = NULL;
	if (keep)
		/* The name goes out before any output of the command. */
		fflush(stdout);
	int rc = ac_manager_run(m, &so->o, &cmd, fds, keep, &kept, &res, &e);
	if (kept)
		fprintf(stderr, "agentcell: kept sandbox %s\n", kept);
	free(kept);
	cli_sandbox_opts_free(so);
	ac_manager_free(m);
	if (rc < 0) {
		int ec = res.exit_code == 126 || res.exit_code == 127 ? res.exit_code
								      : ac_error_exit_code(e);
		cli_error(e);
		return ec;
	}
	return cli_result_exit(&res);
}
