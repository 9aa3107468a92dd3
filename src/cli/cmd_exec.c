/* agentcell exec */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agentcell/detach.h"
#include "base/util.h"
#include "cli/cli.h"

typedef struct exec_state {
	cli_env_t env;
	const char *workdir, *user;
	double timeout;
	bool interactive, tty, detach, json;
} exec_state_t;

static cli_status_t opt_workdir(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (v[0] != '/')
		return cli_usage_error(cmd,
				       "--workdir must be an absolute path inside the sandbox");
	*(const char **)t = v;
	return CLI_OK;
}

static cli_status_t opt_user(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!*v || strchr(v, ':') || strchr(v, '\n'))
		return cli_usage_error(cmd, "invalid --user '%s'", v);
	*(const char **)t = v;
	return CLI_OK;
}

static const cli_opt_t exec_opts[] = {
    CLI_FN("--env", 'e', "K=V", "set an environment variable (repeatable)", cli_opt_env,
	   exec_state_t, env),
    CLI_FN("--workdir", 'w', "DIR", "working directory inside the sandbox", opt_workdir,
	   exec_state_t, workdir),
    CLI_FN("--user", 'u', "UID|NAME", "run as this user (default root of the sandbox)", opt_user,
	   exec_state_t, user),
    CLI_FN("--timeout", 0, "SECONDS",
	   "kill CMD and everything it started after this long (exit 124)", cli_opt_seconds,
	   exec_state_t, timeout),
    CLI_FLAG("--interactive", 'i', "pass standard input through (otherwise /dev/null)",
	     exec_state_t, interactive),
    CLI_FLAG("--tty", 't', "allocate a pseudo-terminal that follows this terminal's size",
	     exec_state_t, tty),
    CLI_FLAG("--detach", 'd',
	     "run in the background: print an id and return at once (see\n"
	     "exec-list, exec-status, exec-logs, exec-kill)",
	     exec_state_t, detach),
    CLI_FLAG("--json", 0, "with --detach: print the command's state as JSON, not just its id",
	     exec_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_exec = {
    .name = "exec",
    .summary = "run a command in a running sandbox",
    .synopsis = "[OPTIONS] NAME [OPTIONS] [--] CMD [ARG...]",
    .about = "Runs CMD in the running sandbox NAME. Output streams live; the exit status is "
	     "CMD's.\n",
    .opts = exec_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .command = true,
    .fn = cmd_exec,
};

int cmd_exec(int argc, char **argv)
{
	exec_state_t eo = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_exec, argc, argv, &eo, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	if (eo.json && !eo.detach)
		return cli_usage("exec", "--json only applies with --detach");
	ac_cmd_t cmd = {.argv = ca.cmd,
			.env = eo.env.n ? eo.env.v : NULL,
			.cwd = eo.workdir,
			.user = eo.user,
			.timeout = eo.timeout,
			.tty = eo.tty,
			.stdin_open = eo.interactive,
			.rows = 24,
			.cols = 80};
	struct winsize ws;
	if (eo.tty && (ioctl(0, TIOCGWINSZ, &ws) == 0 || ioctl(1, TIOCGWINSZ, &ws) == 0) &&
	    ws.ws_row) {
		cmd.rows = ws.ws_row;
		cmd.cols = ws.ws_col;
	}
	ac_error_t *e = NULL;
	if (eo.detach) {
		char id[AC_DETACH_ID_LEN + 1];
		json_t *st = NULL;
		int drc = ac_detach_start(m, name, &cmd, id, &e);
		if (drc >= 0 && eo.json)
			drc = ac_detach_status(m, id, &st, &e);
		ac_manager_free(m);
		if (drc < 0)
			return cli_error(e);
		if (st)
			return cli_show(st, true, NULL);
		printf("%s\n", id);
		return 0;
	}
	int fds[3] = {0, 1, 2};
	ac_result_t res = {0};
	int rc = ac_manager_exec(m, name, &cmd, fds, &res, &e);
	ac_manager_free(m);
	if (rc < 0) {
		int ec = res.exit_code == 126 || res.exit_code == 127 ? res.exit_code
								      : ac_error_exit_code(e);
		cli_error(e);
		return ec;
	}
	return cli_result_exit(&res);
}
