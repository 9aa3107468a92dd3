/* agentcell exec */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agentcell/detach.h"
#include "agentcell/util.h"
#include "cli/cli.h"

int cmd_exec(int argc, char **argv)
{
	cli_exec_opts_t eo = {0};
	const char *name = NULL;
	int i = 1, r;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-') {
			if (name)
				break; /* the command */
			name = a;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return cli_help("exec");
		if ((r = cli_parse_exec_opt("exec", argc, argv, &i, &eo, true)) != 0) {
			if (r < 0)
				return -r;
			continue;
		}
		return cli_usage("exec", "unknown option '%s'", a);
	}
	if (!name) {
		if (i < argc)
			name = argv[i++];
		else
			return cli_usage("exec", "no sandbox name given");
	}
	if (i >= argc)
		return cli_usage("exec", "no command given");
	if (!ac_name_valid(name))
		return cli_usage("exec", "invalid sandbox name '%s'", name);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_cmd_t cmd = {.argv = argv + i,
			.env = eo.nenv ? eo.env : NULL,
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
		int drc = ac_detach_start(m, name, &cmd, id, &e);
		ac_manager_free(m);
		if (drc < 0)
			return cli_error(e);
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
