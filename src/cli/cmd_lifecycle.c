/* agentcell create | start | stop | remove */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

static const cli_opt_t create_opts[] = {
    CLI_GROUP(cli_sandbox_opts, NULL, 0),
    CLI_GROUP(cli_lifetime_opts, NULL, 0),
    CLI_END,
};

const cli_command_t cli_cmd_create = {
    .name = "create",
    .summary = "create a persistent sandbox (stopped)",
    .synopsis = "NAME [OPTIONS]",
    .about = "Creates sandbox NAME (1-63 of A-Z a-z 0-9 _ -, starting and ending alphanumeric).\n"
	     "Files written inside persist across stop and start until 'agentcell remove'.\n",
    .opts = create_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .fn = cmd_create,
};

int cmd_create(int argc, char **argv)
{
	cli_sandbox_opts_t so = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_create, argc, argv, &so, &ca);
	if (ps != CLI_OK) {
		cli_sandbox_opts_free(&so);
		return cli_exit(ps);
	}
	const char *name = ca.v[0];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m) {
		cli_sandbox_opts_free(&so);
		return code;
	}
	so.o.env = so.env.n ? so.env.v : NULL;
	if ((code = cli_apply_config(&so, m)) != 0) {
		cli_sandbox_opts_free(&so);
		ac_manager_free(m);
		return code;
	}
	ac_error_t *e = NULL;
	json_t *st = NULL;
	int rc = ac_manager_create(m, name, &so.o, &st, &e);
	cli_sandbox_opts_free(&so);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	/* What the backend wants the user to know (an unisolated driver, ignored settings). */
	const char *warn = json_string_value(json_object_get(st, "warning"));
	if (warn)
		fprintf(stderr, "%s: warning: %s\n", cli_prog, warn);
	json_decref(st);
	printf("%s\n", name);
	return 0;
}

typedef int (*lifecycle_fn)(ac_manager_t *, const char *, ac_error_t **);

static int lifecycle(const cli_command_t *c, int argc, char **argv, lifecycle_fn fn)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(c, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = fn(m, ca.v[0], &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return 0;
}

#define ONE_SANDBOX .synopsis = "NAME", .min_args = 1, .max_args = 1, .name_arg = 1

const cli_command_t cli_cmd_start = {
    .name = "start",
    .summary = "start a sandbox",
    .about = "Starts sandbox NAME (nothing happens if it runs).\n",
    ONE_SANDBOX,
    .fn = cmd_start,
};
const cli_command_t cli_cmd_stop = {
    .name = "stop",
    .summary = "stop a sandbox (every process of it is killed)",
    .about = "Stops sandbox NAME. Its files are kept.\n",
    ONE_SANDBOX,
    .fn = cmd_stop,
};
const cli_command_t cli_cmd_remove = {
    .name = "remove",
    .alias = "rm",
    .summary = "stop and delete a sandbox with its files",
    .about = "Stops sandbox NAME if it runs and deletes it and its files.\n",
    ONE_SANDBOX,
    .fn = cmd_remove,
};

int cmd_start(int argc, char **argv)
{
	return lifecycle(&cli_cmd_start, argc, argv, ac_manager_start);
}
int cmd_stop(int argc, char **argv)
{
	return lifecycle(&cli_cmd_stop, argc, argv, ac_manager_stop);
}
int cmd_remove(int argc, char **argv)
{
	return lifecycle(&cli_cmd_remove, argc, argv, ac_manager_remove);
}
