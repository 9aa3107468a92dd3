/* Shared pieces of the command-line front end. */
#ifndef AGENTCELL_CLI_H
#define AGENTCELL_CLI_H

#include <stdbool.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"

#define CLI_EXIT_USAGE	  2
#define AGENTCELL_VERSION "0.1.0"

typedef struct cli_command {
	const char *name;
	const char *alias;
	const char *summary;
	const char *help; /* full text after the usage line */
	int (*fn)(int argc, char **argv);
} cli_command_t;

/* Prints "agentcell: <error>" and returns the exit code for it. */
int cli_error(ac_error_t *e);
/* Prints a usage error naming the command and returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Opens the manager for $AGENTCELL_HOME; on failure prints and returns NULL. */
ac_manager_t *cli_manager(int *exit_code);
/* Prints the help of a command. */
int cli_help(const char *cmd);

/* Options shared by run and create. Returns 1 if consumed (*i advanced), 0 if not an
 * option of this group, or a negative exit code on a usage error. */
typedef struct cli_sandbox_opts {
	ac_sandbox_opts_t o;
	char *env[257];
	int nenv;
	char *labels[AC_LABELS_MAX + 1]; /* --label (o.labels points here) */
	int nlabels;
	const char *lifetime_opt; /* the first --ttl/--label/--auto-* given (run: --keep only) */
	char *files[AC_FILES_MAX + 1]; /* --file (o.files points here) */
	int nfiles;
	char *init_script_buf;	 /* --init-script-file's content */
	const char *config_path; /* --config */
	json_t *config;		 /* the loaded agentcell.toml (owns strings in o) */
	char **config_arrays[3]; /* arrays made for o from the config, to free */
} cli_sandbox_opts_t;
/* Loads agentcell.toml (--config, ./, $AGENTCELL_HOME) and fills what the command line
 * left unset. Returns 0, or an exit code after printing the error. */
int cli_apply_config(cli_sandbox_opts_t *so, ac_manager_t *m);
void cli_sandbox_opts_free(cli_sandbox_opts_t *so);
int cli_parse_sandbox_opt(const char *cmd, int argc, char **argv, int *i, cli_sandbox_opts_t *so);

/* Options of exec (and run's -i/-t/--timeout). */
typedef struct cli_exec_opts {
	char *env[257];
	int nenv;
	const char *workdir, *user;
	double timeout;
	bool interactive, tty, detach;
} cli_exec_opts_t;
int cli_parse_exec_opt(const char *cmd, int argc, char **argv, int *i, cli_exec_opts_t *eo,
		       bool exec_only);

/* 1: argv[*i] is option `name` and *val its value ("--opt V" or "--opt=V"); 0: another
 * argument; < 0: minus the exit code of a usage error. */
int cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
		  const char **val);
/* Pretty-prints JSON (sorted keys) on stdout. */
void cli_print_json(json_t *j);
/* What a command shows: j as JSON (--json) or through text; consumes j; returns 0. */
int cli_show(json_t *j, bool as_json, void (*text)(const json_t *j));
/* One "KEY  VALUE" line: a string as it is, anything else as JSON. */
void cli_print_field(const char *key, const json_t *v, int width);

/* Exit status for a finished command (prints a note on timeout). */
int cli_result_exit(const ac_result_t *r);

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_exec_list(int argc, char **argv);
int cmd_exec_status(int argc, char **argv);
int cmd_exec_logs(int argc, char **argv);
int cmd_exec_kill(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_files(int argc, char **argv);
int cmd_agents(int argc, char **argv);

/* --- cmd_manage.c: lifetime, policy, labels, resize, audit, metrics --- */
/* --ttl, --label, --auto-stop-after, --auto-archive-after, --auto-delete-after of create and
 * run --keep; same contract as cli_parse_sandbox_opt. */
int cli_parse_lifetime_opt(const char *cmd, int argc, char **argv, int *i, cli_sandbox_opts_t *so);
int cmd_extend(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_describe(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
/* --- cmd_serve.c --- */
int cmd_serve(int argc, char **argv);

/* --- cmd_mcp.c --- */
int cmd_mcp(int argc, char **argv);

extern const cli_command_t cli_commands[];

#endif
