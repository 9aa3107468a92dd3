/* agentcell create | start | stop | remove */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/util.h"
#include "cli/cli.h"

/* Parses "CMD NAME" with no options but --help. */
static int one_name(const char *cmd, int argc, char **argv, const char **name)
{
	*name = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_help(cmd);
			return -1000;
		}
		if (argv[i][0] == '-' && argv[i][1])
			return -cli_usage(cmd, "unknown option '%s'", argv[i]);
		if (*name)
			return -cli_usage(cmd, "unexpected argument '%s'", argv[i]);
		*name = argv[i];
	}
	if (!*name)
		return -cli_usage(cmd, "no sandbox name given");
	if (!ac_name_valid(*name))
		return -cli_usage(
		    cmd,
		    "invalid sandbox name '%s': use 1-63 characters of A-Z a-z 0-9 _ -, "
		    "starting and ending with a letter or digit",
		    *name);
	return 0;
}

int cmd_create(int argc, char **argv)
{
	cli_sandbox_opts_t so = {0};
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return cli_help("create");
		if (a[0] == '-' && a[1]) {
			int r = cli_parse_sandbox_opt("create", argc, argv, &i, &so);
			if (r < 0)
				return -r;
			if (r == 0)
				return cli_usage("create", "unknown option '%s'", a);
			continue;
		}
		if (name)
			return cli_usage("create", "unexpected argument '%s'", a);
		name = a;
	}
	if (!name)
		return cli_usage("create", "no sandbox name given");
	if (!ac_name_valid(name))
		return cli_usage(
		    "create",
		    "invalid sandbox name '%s': use 1-63 characters of A-Z a-z 0-9 _ -, "
		    "starting and ending with a letter or digit",
		    name);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	so.o.env = so.nenv ? so.env : NULL;
	if ((code = cli_apply_config(&so, m)) != 0) {
		cli_sandbox_opts_free(&so);
		ac_manager_free(m);
		return code;
	}
	ac_error_t *e = NULL;
	int rc = ac_manager_create(m, name, &so.o, NULL, &e);
	cli_sandbox_opts_free(&so);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	printf("%s\n", name);
	return 0;
}

typedef int (*lifecycle_fn)(ac_manager_t *, const char *, ac_error_t **);

static int lifecycle(const char *cmd, int argc, char **argv, lifecycle_fn fn)
{
	const char *name;
	int r = one_name(cmd, argc, argv, &name);
	if (r == -1000)
		return 0;
	if (r < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = fn(m, name, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return 0;
}

int cmd_start(int argc, char **argv)
{
	return lifecycle("start", argc, argv, ac_manager_start);
}
int cmd_stop(int argc, char **argv)
{
	return lifecycle("stop", argc, argv, ac_manager_stop);
}
int cmd_remove(int argc, char **argv)
{
	return lifecycle("remove", argc, argv, ac_manager_remove);
}
