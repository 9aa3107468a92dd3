/* agentcell run */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/util.h"
#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	cli_sandbox_opts_t so = {0};
	cli_exec_opts_t eo = {0};
	bool keep = false;
	const char *name = NULL;
	int i = 1, r;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return cli_help("run");
		if ((r = cli_parse_sandbox_opt("run", argc, argv, &i, &so)) != 0 ||
		    (r = cli_parse_exec_opt("run", argc, argv, &i, &eo, false)) != 0) {
			if (r < 0)
				return -r;
			continue;
		}
		if (!strcmp(a, "--keep")) {
			keep = true;
			continue;
		}
		if (!strcmp(a, "--name") || !strncmp(a, "--name=", 7)) {
			if (a[6] == '=')
				name = a + 7;
			else if (i + 1 < argc)
				name = argv[++i];
			else
				return cli_usage("run", "option '--name' needs a value");
			continue;
		}
		return cli_usage("run", "unknown option '%s'", a);
	}
	if (i >= argc)
		return cli_usage("run", "no command given");
	if (name && !keep)
		return cli_usage("run", "--name only applies with --keep");
	if (so.lifetime_opt && !keep)
		return cli_usage("run", "%s only applies with --keep", so.lifetime_opt);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	so.o.env = so.nenv ? so.env : NULL;
	so.o.name = name;
	if ((code = cli_apply_config(&so, m)) != 0) {
		cli_sandbox_opts_free(&so);
		ac_manager_free(m);
		return code;
	}
	ac_cmd_t cmd = {.argv = argv + i, .timeout = eo.timeout, .stdin_open = eo.interactive};
	int fds[3] = {0, 1, 2};
	ac_result_t res = {0};
	ac_error_t *e = NULL;
	char *kept = NULL;
	if (keep)
		/* The name goes out before any output of the command. */
		fflush(stdout);
	int rc = ac_manager_run(m, &so.o, &cmd, fds, keep, &kept, &res, &e);
	if (kept)
		fprintf(stderr, "agentcell: kept sandbox %s\n", kept);
	free(kept);
	cli_sandbox_opts_free(&so);
	ac_manager_free(m);
	if (rc < 0) {
		int ec = res.exit_code == 126 || res.exit_code == 127 ? res.exit_code
								      : ac_error_exit_code(e);
		cli_error(e);
		return ec;
	}
	return cli_result_exit(&res);
}
