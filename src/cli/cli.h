/* Shared pieces of the command-line front end. */
#ifndef AGENTCELL_CLI_H
#define AGENTCELL_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/version.h"

#define CLI_EXIT_USAGE 2

/* ------------------------------------------------------------------ option tables
 *
 * Each command declares its options in a table, `static const cli_opt_t opts[]`, ended by
 * CLI_END, and its positional arguments in its cli_command_t. cli_parse() reads a command
 * line against both, and cli_help() prints the command's help from the same table, so an
 * option cannot be accepted without being listed. Options take "--opt VALUE",
 * "--opt=VALUE", "-o VALUE" or "-o=VALUE"; short flags may be bundled ("-it"); "--" ends
 * the options; -h and --help print the help. */

/* What parsing (or one option) came to. */
typedef enum cli_status {
	CLI_OK = 0,	 /* parsed: the command goes on */
	CLI_HELP,	 /* the help was printed: exit 0 */
	CLI_USAGE_ERROR, /* a usage error was printed: exit CLI_EXIT_USAGE */
	CLI_FAILED,	 /* another error was printed: exit 1 */
} cli_status_t;

typedef enum cli_opt_kind {
	CLI_OPT_END = 0,
	CLI_OPT_FLAG,	/* sets the bool at the target */
	CLI_OPT_STRING, /* stores the value (a const char *) at the target */
	CLI_OPT_FN,	/* calls fn with the value (NULL for a flag) and the target */
	CLI_OPT_GROUP,	/* the options of `group`, their targets relative to this one's */
} cli_opt_kind_t;

typedef struct cli_opt cli_opt_t;
/* Checks and stores one option's value (NULL for a flag) at target; prints any error. */
typedef cli_status_t (*cli_opt_fn)(const char *cmd, const cli_opt_t *opt, const char *val,
				   void *target);

struct cli_opt {
	cli_opt_kind_t kind;
	const char *name;  /* "--json" */
	char short_name;   /* 'i' for -i; 0: none */
	const char *value; /* the value's name in the help ("MB"); NULL: a flag */
	const char *help;  /* one line; '\n' continues it; for a group, a heading or NULL */
	size_t off;	   /* the target: offset in the command's state struct */
	cli_opt_fn fn;
	const cli_opt_t *group;
};

#define CLI_FLAG(long_, short_, help_, type, field)                                                \
	{                                                                                          \
		.kind = CLI_OPT_FLAG, .name = (long_), .short_name = (short_), .help = (help_),    \
		.off = offsetof(type, field)                                                       \
	}
#define CLI_STRING(long_, short_, value_, help_, type, field)                                      \
	{                                                                                          \
		.kind = CLI_OPT_STRING, .name = (long_), .short_name = (short_),                   \
		.value = (value_), .help = (help_), .off = offsetof(type, field)                   \
	}
/* value_ NULL: a flag whose handler gets NULL. */
#define CLI_FN(long_, short_, value_, help_, fn_, type, field)                                     \
	{                                                                                          \
		.kind = CLI_OPT_FN, .name = (long_), .short_name = (short_), .value = (value_),    \
		.help = (help_), .off = offsetof(type, field), .fn = (fn_)                         \
	}
/* The options of table group_, their targets inside the command's state at offset off_. */
#define CLI_GROUP(group_, heading_, off_)                                                          \
	{                                                                                          \
		.kind = CLI_OPT_GROUP, .help = (heading_), .off = (off_), .group = (group_)        \
	}
#define CLI_END                                                                                    \
	{                                                                                          \
		.kind = CLI_OPT_END                                                                \
	}
/* In a handler: the struct of type `type` that holds target as opt's field. */
#define CLI_STATE(type, opt, target) ((type *)(void *)((char *)(target) - (opt)->off))

#define CLI_ARGS_MANY 255 /* max_args: no limit */

typedef struct cli_command {
	const char *name, *alias, *summary;
	const char *synopsis;  /* what follows "agentcell NAME" on the usage line */
	const char *about;     /* the help between the usage line and the options */
	const cli_opt_t *opts; /* NULL: none but --help */
	/* Positional arguments: options and arguments mix freely, except that with `command`
	 * the first argument after max_args of them (or after "--") begins CMD [ARG...]. */
	unsigned char min_args, max_args;
	unsigned char name_arg; /* 1-based position of a sandbox name (checked); 0: none */
	bool command;		/* CMD [ARG...] follows the arguments: required */
	bool command_optional;	/* with command: CMD may be absent (cli_args_t.cmd NULL) */
	const char *missing[3]; /* error for missing argument k ([0] when [k] is NULL) */
	const char *extra;	/* appended to "unexpected argument '...'" */
	int (*fn)(int argc, char **argv);
} cli_command_t;

/* What cli_parse() found besides the options. */
typedef struct cli_args {
	char **v; /* the positional arguments, in order (they point into argv) */
	int n;
	char **cmd; /* command: CMD [ARG...], NULL-terminated (the rest of argv) */
	int ncmd;
} cli_args_t;

/* Parses argv (argv[0] is the command's name) against c: stores options through c's table
 * into state, checks the positional arguments and gathers them at the front of argv (it
 * reorders argv's pointers). Anything but CLI_OK was printed: exit with cli_exit(). */
cli_status_t cli_parse(const cli_command_t *c, int argc, char **argv, void *state,
		       cli_args_t *args);
/* The exit code for a status (CLI_OK: 0). */
int cli_exit(cli_status_t s);
/* Prints c's help on stdout. */
void cli_help(const cli_command_t *c);
/* The command called name (or by alias), or NULL. */
const cli_command_t *cli_find(const char *name);
/* Every command, in the order of 'agentcell --help'; NULL-terminated. */
extern const cli_command_t *const cli_commands[];

/* The program's name in errors and help: "agentcell", or "agentkernel" when invoked so. */
extern const char *cli_prog;
/* Prints "<cli_prog>: <error>" and returns the exit code for it. */
int cli_error(ac_error_t *e);
/* Prints a usage error naming the command (NULL: none) and returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for an option handler: returns CLI_USAGE_ERROR. */
/* A whole number from min to max for option opt; a usage error naming it otherwise. */
cli_status_t cli_size_arg(const char *cmd, const char *opt, const char *v, uint64_t min,
			  uint64_t max, uint64_t *out);
/* --cpus: a number from AC_CPUS_MIN to AC_CPUS_MAX (fractions allowed). */
cli_status_t cli_cpus_arg(const char *cmd, const char *v, double *out);
cli_status_t cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* CLI_OK if name is a valid sandbox name, else a usage error saying the rule. */
cli_status_t cli_check_name(const char *cmd, const char *name);
/* Opens the manager for $AGENTCELL_HOME; on failure prints and returns NULL. */
ac_manager_t *cli_manager(int *exit_code);

/* ------------------------------------------------------------------ shared option groups */

/* Repeated --env K=V (at most 256); v is NULL-terminated. */
typedef struct cli_env {
	char *v[257];
	int n;
} cli_env_t;
cli_status_t cli_opt_env(const char *cmd, const cli_opt_t *opt, const char *val, void *target);
/* A positive number of seconds (a double), at most a year. */
cli_status_t cli_opt_seconds(const char *cmd, const cli_opt_t *opt, const char *val, void *target);
/* A duration (90s, 30m, 2h, 1d or plain seconds) into a uint64_t. */
cli_status_t cli_opt_duration(const char *cmd, const cli_opt_t *opt, const char *val, void *target);
/* CLI_OK if kv is a valid KEY=VALUE label, else a usage error. */
/* --limit N: 1 to 1000000 into the uint64_t at target. */
cli_status_t cli_opt_limit(const char *cmd, const cli_opt_t *opt, const char *v, void *target);
cli_status_t cli_check_label(const char *cmd, const char *kv);
/* Repeated --image-root DIR (at most 16); v is NULL-terminated. */
typedef struct cli_roots {
	char *v[17];
	int n;
} cli_roots_t;
cli_status_t cli_opt_image_root(const char *cmd, const cli_opt_t *opt, const char *val,
				void *target);

/* The sandbox options of run and create (cli_sandbox_opts) and the lifetime options of
 * create and run --keep (cli_lifetime_opts), both on a cli_sandbox_opts_t. */
#define AC_NET_OPTS_MAX 64
typedef struct cli_sandbox_opts {
	ac_sandbox_opts_t o;
	cli_env_t env;
	char *labels[AC_LABELS_MAX + 1]; /* --label (o.labels points here) */
	int nlabels;
	const char *lifetime_opt; /* the first --ttl/--label/--auto-* given (run: --keep only) */
	bool no_network;	  /* --no-network */
	char *files[AC_FILES_MAX + 1]; /* --file (o.files points here) */
	int nfiles;
	char *init_script_buf;	 /* --init-script-file's content */
	const char *config_path; /* --config */
	json_t *config;		 /* the loaded agentcell.toml (owns strings in o) */
	char **config_arrays[5]; /* arrays made for o from the config, to free */
	/* --allow-host, --block-host, --secret, --publish (o's arrays point here) */
	char *net[4][AC_NET_OPTS_MAX + 1];
	int nnet[4];
	char *volumes[AC_VOLUMES_MAX + 1]; /* --volume (o.volumes points here) */
	int nvolumes;
} cli_sandbox_opts_t;
extern const cli_opt_t cli_sandbox_opts[];
extern const cli_opt_t cli_lifetime_opts[];
/* Loads agentcell.toml (--config, ./, $AGENTCELL_HOME) and fills what the command line
 * left unset. Returns 0, or an exit code after printing the error. */
int cli_apply_config(cli_sandbox_opts_t *so, ac_manager_t *m);
void cli_sandbox_opts_free(cli_sandbox_opts_t *so);

/* ------------------------------------------------------------------ output */

/* Pretty-prints JSON (sorted keys) on stdout. */
void cli_print_json(json_t *j);
/* What a command shows: j as JSON (--json) or through text; consumes j; returns 0. */
int cli_show(json_t *j, bool as_json, void (*text)(const json_t *j));
/* One "KEY  VALUE" line: a string as it is, anything else as JSON. */
void cli_print_field(const char *key, const json_t *v, int width);
/* Exit status for a finished command (prints a note on timeout). */
int cli_result_exit(const ac_result_t *r);
/* text.c: n bytes for people: "512 B", "1.5 kB", "42.0 MB" (powers of 1000). */
void cli_human_size(json_int_t n, char *buf, size_t len);
/* text.c: how long ago an RFC 3339 time was: "3 days ago", "just now"; "-" when unreadable. */
void cli_human_age(const char *rfc3339, char *buf, size_t len);
/* text.c: a value from standard input. On a terminal (unless from_stdin): prompt on stderr,
 * echo off when secret, one line; otherwise all of stdin, at most max bytes. The final
 * newline (and a '\r' before it) is dropped. NUL-terminated, to free; its length in *len
 * (len may be NULL). NULL on a read error or no memory. */
char *cli_read_input(const char *prompt, bool secret, bool from_stdin, size_t max, size_t *len);

/* ------------------------------------------------------------------ the commands */

extern const cli_command_t cli_cmd_run, cli_cmd_create, cli_cmd_start, cli_cmd_stop, cli_cmd_remove,
    cli_cmd_exec, cli_cmd_cp, cli_cmd_files, cli_cmd_agents, cli_cmd_exec_list, cli_cmd_exec_status,
    cli_cmd_exec_logs, cli_cmd_exec_kill, cli_cmd_list, cli_cmd_info, cli_cmd_doctor,
    cli_cmd_extend, cli_cmd_gc, cli_cmd_policy, cli_cmd_reconcile, cli_cmd_recover, cli_cmd_label,
    cli_cmd_describe, cli_cmd_resize, cli_cmd_audit, cli_cmd_metrics, cli_cmd_serve, cli_cmd_mcp,
    cli_cmd_secret, cli_cmd_net_log, cli_cmd_volume;

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
int cmd_secret(int argc, char **argv);
int cmd_net_log(int argc, char **argv);
/* cmd_template.c: snapshot, template ls|rm */
extern const cli_command_t cli_cmd_snapshot, cli_cmd_template;
int cmd_snapshot(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_volume(int argc, char **argv);
/* cmd_image.c: image pull|ls|inspect|rm|prune|import|export|login|logout */
extern const cli_command_t cli_cmd_image;
int cmd_image(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mcp(int argc, char **argv);

/* ------------------------------------------------------------------ agentkernel's spelling
 * compat.c: invoked as "agentkernel" (a link to this binary), the command line is
 * agentkernel's: its commands, the `sandbox`/`sb` group, its flags and defaults, mapped onto
 * the commands above. */

/* True if argv0's base name is "agentkernel". */
bool cli_compat_invoked(const char *argv0);
/* agentkernel's main: argv[0] is the program, argv[1] the command. */
int cli_compat_main(int argc, char **argv);
/* agentkernel's commands (top level, then the sandbox group); NULL-terminated. */
extern const cli_command_t *const cli_compat_commands[];
extern const cli_command_t *const cli_compat_sandbox_commands[];
/* The agentkernel command called name in table t (by alias too), or NULL. */
const cli_command_t *cli_compat_find(const cli_command_t *const *t, const char *name);
#define AGENTKERNEL_COMPAT_VERSION "0.18.0"

#endif
