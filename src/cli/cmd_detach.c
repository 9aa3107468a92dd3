/* agentcell exec-list | exec-status | exec-logs | exec-kill */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/detach.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "cli/cli.h"

typedef struct detach_state {
	bool json, stderr_log, follow;
} detach_state_t;

static const cli_opt_t json_opts[] = {
    CLI_FLAG("--json", 0, "print JSON", detach_state_t, json),
    CLI_END,
};

static const cli_opt_t logs_opts[] = {
    CLI_FLAG("--stderr", 0, "the standard error log", detach_state_t, stderr_log),
    CLI_FLAG("--follow", 'f', "keep printing new output until the command ends", detach_state_t,
	     follow),
    CLI_END,
};

#define ONE_ID .min_args = 1, .max_args = 1, .missing = {"no command id given"}
/* "ID" or agentkernel's "NAME ID" (the command must then be one of NAME's). */
#define NAME_ID .min_args = 1, .max_args = 2, .missing = {"no command id given"}

const cli_command_t cli_cmd_exec_list = {
    .name = "exec-list",
    .summary = "list background commands",
    .synopsis = "[NAME] [--json]",
    .about = "Lists the background (exec --detach) commands of sandbox NAME, or of all\n"
	     "sandboxes, oldest first, with their state: running, completed (exit 0) or failed.\n",
    .opts = json_opts,
    .max_args = 1,
    .name_arg = 1,
    .fn = cmd_exec_list,
};
const cli_command_t cli_cmd_exec_status = {
    .name = "exec-status",
    .summary = "show a background command's state and exit code",
    .synopsis = "ID [--json]",
    .about = "Shows the state (running, completed, failed), exit code, start and end of\n"
	     "background command ID.\n",
    .opts = json_opts,
    ONE_ID,
    .fn = cmd_exec_status,
};
const cli_command_t cli_cmd_exec_logs = {
    .name = "exec-logs",
    .summary = "print a background command's output",
    .synopsis = "[NAME] ID [--stderr] [--follow]",
    .about = "Prints what background command ID wrote to stdout (or stderr). Each log is\n"
	     "kept under 8 MiB: past that the oldest bytes are dropped, and a note says how many.\n"
	     "With NAME (agentkernel's form), ID must be a command of sandbox NAME.\n",
    .opts = logs_opts,
    NAME_ID,
    .fn = cmd_exec_logs,
};
const cli_command_t cli_cmd_exec_kill = {
    .name = "exec-kill",
    .summary = "kill a background command and everything it started",
    .synopsis = "[NAME] ID",
    .about = "Kills background command ID and every process it started. With NAME\n"
	     "(agentkernel's form), ID must be a command of sandbox NAME.\n",
    NAME_ID,
    .fn = cmd_exec_kill,
};

static void print_row(const json_t *st)
{
	json_t *cmdv = json_object_get(st, "command");
	char line[256] = "";
	size_t i;
	json_t *a;
	json_array_foreach(cmdv, i, a)
	{
		size_t l = strlen(line);
		snprintf(line + l, sizeof(line) - l, "%s%s", i ? " " : "", json_string_value(a));
	}
	json_t *ec = json_object_get(st, "exit_code");
	char code[16] = "-";
	if (json_is_integer(ec))
		snprintf(code, sizeof(code), "%lld", (long long)json_integer_value(ec));
	printf("%-12s  %-16s %-9s %-4s %-24s %s\n", ac_state_str(st, "id", "?"),
	       ac_state_str(st, "sandbox", "?"), ac_state_str(st, "state", "?"), code,
	       ac_state_str(st, "started_at", ac_state_str(st, "created_at", "-")), line);
}

static void print_list(const json_t *list)
{
	printf("%-12s  %-16s %-9s %-4s %-24s %s\n", "ID", "SANDBOX", "STATE", "EXIT", "STARTED",
	       "COMMAND");
	size_t i;
	json_t *st;
	json_array_foreach(list, i, st) print_row(st);
}

/* The fields that say something: no nulls, no false flags, no zero counts (but exit 0). */
static void print_status(const json_t *st)
{
	static const char *keys[] = {"id",	    "sandbox",	   "state",	 "exit_code",
				     "signal",	    "timed_out",   "killed",	 "pid",
				     "started_at",  "finished_at", "error",	 "write_errors",
				     "write_error", "lost_stdout", "lost_stderr"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		if (!v || json_is_null(v) || (json_is_false(v)) ||
		    (json_is_integer(v) && !json_integer_value(v) && strcmp(keys[i], "exit_code")))
			continue;
		cli_print_field(keys[i], v, 12);
	}
}

/* The command id of "ID" or "NAME ID"; with NAME, the command must belong to sandbox NAME
 * (so agentkernel's "exec-kill NAME ID" never touches another sandbox's command). */
static int command_id(ac_manager_t *m, const cli_command_t *c, const cli_args_t *ca,
		      const char **id, ac_error_t **e)
{
	*id = ca->v[ca->n - 1];
	if (ca->n < 2)
		return 0;
	const char *name = ca->v[0];
	if (!ac_name_valid(name))
		return ac_error_set(e, AC_ERR_INVALID, 0,
				    "invalid sandbox name '%s' (see '%s %s --help')", name,
				    cli_prog, c->name);
	json_t *st = NULL;
	if (ac_detach_status(m, *id, &st, e) < 0)
		return -1;
	int rc = 0;
	if (strcmp(ac_state_str(st, "sandbox", ""), name) != 0)
		rc = ac_error_set(e, AC_ERR_NOT_FOUND, 0,
				  "background command '%s' is not one of sandbox '%s'", *id, name);
	json_decref(st);
	return rc;
}

int cmd_exec_list(int argc, char **argv)
{
	detach_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_exec_list, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.n ? ca.v[0] : NULL;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *list = NULL;
	ac_error_t *e = NULL;
	int rc = ac_detach_list(m, name, &list, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(list, st.json, print_list);
}

int cmd_exec_status(int argc, char **argv)
{
	detach_state_t opts = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_exec_status, argc, argv, &opts, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *id = ca.v[0];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	int rc = ac_detach_status(m, id, &st, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(st, opts.json, print_status);
}

/* Copies path from *off to its end onto stdout. A log that shrank was cut at its cap:
 * say so and start over from its new beginning. */
static int copy_from(const char *path, off_t *off)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size < *off) {
		fprintf(stderr, "%s: the log reached its 8 MiB cap: older output was dropped\n",
			cli_prog);
		*off = 0;
	}
	char buf[65536];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), *off)) > 0) {
		if (ac_write_all(1, buf, (size_t)n) < 0)
			return -1;
		*off += n;
	}
	return 0;
}

int cmd_exec_logs(int argc, char **argv)
{
	detach_state_t opts = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_exec_logs, argc, argv, &opts, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *id = NULL;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	_cleanup_free_ char *path = NULL;
	json_t *st = NULL;
	if (command_id(m, &cli_cmd_exec_logs, &ca, &id, &e) < 0 ||
	    ac_detach_log_path(m, id, opts.stderr_log, &path, &e) < 0 ||
	    ac_detach_status(m, id, &st, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	off_t off = 0;
	long long dropped =
	    ac_state_int(st, opts.stderr_log ? "dropped_stderr" : "dropped_stdout", 0);
	if (dropped > 0)
		fprintf(stderr,
			"%s: the first %lld bytes of this log were dropped (logs are capped "
			"at 8 MiB)\n",
			cli_prog, dropped);
	long long errs = ac_state_int(st, "write_errors", 0);
	if (errs > 0)
		fprintf(stderr,
			"%s: this log is incomplete: %lld writes of the command's output "
			"failed (%s); %lld bytes of stdout and %lld of stderr were lost\n",
			cli_prog, errs, ac_state_str(st, "write_error", "?"),
			ac_state_int(st, "lost_stdout", 0), ac_state_int(st, "lost_stderr", 0));
	copy_from(path, &off);
	bool follow = opts.follow;
	while (follow && !strcmp(ac_state_str(st, "state", ""), "running")) {
		usleep(100000);
		json_decref(st);
		st = NULL;
		if (ac_detach_status(m, id, &st, NULL) < 0)
			break;
		copy_from(path, &off);
	}
	copy_from(path, &off);
	json_decref(st);
	ac_manager_free(m);
	return 0;
}

int cmd_exec_kill(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_exec_kill, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *id = NULL;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = command_id(m, &cli_cmd_exec_kill, &ca, &id, &e);
	if (rc == 0)
		rc = ac_detach_kill(m, id, &e);
	ac_manager_free(m);
	return rc < 0 ? cli_error(e) : 0;
}
