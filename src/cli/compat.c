/* Invoked as "agentkernel" (a link to this binary): agentkernel's command line (~0.18).
 *
 * Each agentkernel command is a cli_command_t with its own option table, parsed by
 * cli_parse(); its options translate into agentcell's spelling (an argv) and the agentcell
 * command runs on it, so no sandbox logic lives here. An option's agentcell spelling is its
 * own long name, or the name of the small cli_opt_t that .group points to (the parser reads
 * .group only for CLI_OPT_GROUP entries). What agentcell cannot do is refused in one line
 * with exit 2, never ignored. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/* ------------------------------------------------------------------ translation state */

typedef struct compat_state {
	char **out; /* agentcell options, in order: room for 2 per argument + COMPAT_EXTRA */
	int n;
	bool no_start, has_ttl, keep, detach;
} compat_state_t;

#define COMPAT_EXTRA 16

static void push(compat_state_t *cs, const char *s)
{
	cs->out[cs->n++] = (char *)s;
}

/* An option given as agentkernel spells it: push agentcell's spelling and its value. */
static cli_status_t map_opt(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	compat_state_t *cs = CLI_STATE(compat_state_t, opt, t);
	push(cs, opt->group ? opt->group->name : opt->name);
	if (v)
		push(cs, v);
	return CLI_OK;
}

/* An agentkernel option with no meaning here: refused, saying why (in .group->help). */
static cli_status_t refuse_opt(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	fprintf(stderr, "agentkernel: agentkernel's '%s %s' is not supported by agentcell: %s\n",
		cmd, opt->name, opt->group->help);
	return CLI_USAGE_ERROR;
}

/* --sudo: as the sandbox's root (uid 0). */
static cli_status_t opt_sudo(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	compat_state_t *cs = CLI_STATE(compat_state_t, opt, t);
	push(cs, "--user");
	push(cs, "0");
	return CLI_OK;
}

/* --ttl: agentkernel's "0" means no expiry, which is agentcell's default. */
static cli_status_t opt_ttl(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	compat_state_t *cs = CLI_STATE(compat_state_t, opt, t);
	cs->has_ttl = true;
	if (strcmp(v, "0") != 0)
		return map_opt(cmd, opt, v, t);
	return CLI_OK;
}

static cli_status_t opt_keep(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	CLI_STATE(compat_state_t, opt, t)->keep = true;
	return map_opt(cmd, opt, v, t);
}

/* -d/--detach: agentkernel prints the command's state as JSON. */
static cli_status_t opt_detach(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	compat_state_t *cs = CLI_STATE(compat_state_t, opt, t);
	if (!cs->detach)
		push(cs, "--json");
	cs->detach = true;
	return map_opt(cmd, opt, v, t);
}

/* -F/--fast: agentkernel takes a container from a warm pool; a native sandbox starts in
 * milliseconds without one, so the run is the same either way. */
static cli_status_t opt_fast(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	return CLI_OK;
}

/* -d/--dir DIR: agentcell mounts only the current directory (--mount-cwd). */
static cli_status_t opt_dir(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	char want[PATH_MAX], cwd[PATH_MAX];
	if (!realpath(v, want) || !getcwd(cwd, sizeof(cwd)) || strcmp(want, cwd) != 0) {
		fprintf(stderr,
			"agentkernel: agentkernel's '%s --dir %s' is not supported by agentcell: "
			"only the current directory can be mounted (cd there and use --dir .)\n",
			cmd, v);
		return CLI_USAGE_ERROR;
	}
	compat_state_t *cs = CLI_STATE(compat_state_t, opt, t);
	push(cs, "--mount-cwd");
	return CLI_OK;
}

#define CS compat_state_t
/* Same meaning, agentcell's spelling to_. */
#define TO(long_, short_, value_, help_, to_)                                                      \
	{                                                                                          \
		.kind = CLI_OPT_FN, .name = (long_), .short_name = (short_), .value = (value_),    \
		.help = (help_), .off = offsetof(CS, out), .fn = map_opt,                          \
		.group = &(const cli_opt_t)                                                        \
		{                                                                                  \
			.name = (to_)                                                              \
		}                                                                                  \
	}
/* Same meaning, same long name. */
#define SAME(long_, short_, value_, help_)                                                         \
	{                                                                                          \
		.kind = CLI_OPT_FN, .name = (long_), .short_name = (short_), .value = (value_),    \
		.help = (help_), .off = offsetof(CS, out), .fn = map_opt                           \
	}
#define SPECIAL(long_, short_, value_, help_, fn_)                                                 \
	{                                                                                          \
		.kind = CLI_OPT_FN, .name = (long_), .short_name = (short_), .value = (value_),    \
		.help = (help_), .off = offsetof(CS, out), .fn = (fn_)                             \
	}
#define REFUSE(long_, short_, value_, why_)                                                        \
	{                                                                                          \
		.kind = CLI_OPT_FN, .name = (long_), .short_name = (short_), .value = (value_),    \
		.help = "not supported by agentcell", .off = offsetof(CS, out), .fn = refuse_opt,  \
		.group = &(const cli_opt_t)                                                        \
		{                                                                                  \
			.help = (why_)                                                             \
		}                                                                                  \
	}

/* ------------------------------------------------------------------ option tables */

static const cli_opt_t run_opts[] = {
    SAME("--image", 'i', "IMAGE", "image: 'host', a root directory or an image reference"),
    SPECIAL("--keep", 'k', NULL, "keep the sandbox afterwards (TTL 1h unless --ttl)", opt_keep),
    SAME("--profile", 'p', "P", "permissive | moderate (default) | restrictive"),
    SAME("--backend", 'B', "B", "native (default) | docker | podman | auto"),
    SAME("--config", 'c', "FILE", "the config file (agentcell.toml or agentkernel.toml)"),
    SPECIAL("--fast", 'F', NULL, "accepted: native sandboxes start without a warm pool", opt_fast),
    SAME("--no-network", 0, NULL, "no network access (the default)"),
    SAME("--env", 'e', "KEY=VALUE", "set an environment variable (repeatable)"),
    SAME("--template", 0, "NAME", "start from template NAME ('agentcell snapshot')"),
    SPECIAL("--ttl", 0, "D", "with --keep: time to live (1h, 30m, 3d; 0: none; default 1h)",
	    opt_ttl),
    TO("--publish", 'P', "HOST:PORT", "forward a host port to the sandbox (repeatable)",
       "--publish"),
    REFUSE("--build", 0, NULL, "build the image with docker build, then use --image"),
    REFUSE("--branch", 0, NULL, "name the sandbox yourself (agentcell run -k --name NAME)"),
    REFUSE("--ssh", 0, NULL, "there is no SSH server; use 'agentkernel exec'"),
    REFUSE("--secret", 'S', "SPEC",
	   "agentcell binds secrets as KEY@HOST: 'agentcell run --secret KEY@HOST'"),
    REFUSE("--secret-file", 0, "KEY", "write the file with 'agentcell cp' instead"),
    REFUSE("--placeholder-secrets", 0, NULL,
	   "agentcell always shows a placeholder: 'agentcell run --secret KEY@HOST'"),
    REFUSE("--receipt", 0, "PATH", "execution receipts are not implemented"),
    CLI_END,
};

static const cli_opt_t exec_opts[] = {
    SAME("--env", 'e', "KEY=VALUE", "set an environment variable (repeatable)"),
    SAME("--workdir", 'w', "DIR", "working directory inside the sandbox"),
    SPECIAL("--sudo", 0, NULL, "run as root (uid 0 of the sandbox)", opt_sudo),
    SPECIAL("--detach", 'd', NULL, "run in the background; prints the command's JSON", opt_detach),
    REFUSE("--receipt", 0, "PATH", "execution receipts are not implemented"),
    CLI_END,
};

static const cli_opt_t create_opts[] = {
    TO("--agent", 'a', "AGENT", "pass agent AGENT's API keys from your environment", "--agent"),
    SAME("--config", 'c', "FILE", "the config file (agentcell.toml or agentkernel.toml)"),
    SPECIAL("--dir", 'd', "DIR", "mount DIR at /workspace (only the current directory)", opt_dir),
    SAME("--backend", 'B', "B", "native (default) | docker | podman | auto"),
    SAME("--image", 0, "IMAGE", "image: 'host', a root directory or an image reference"),
    SAME("--template", 0, "NAME", "start from template NAME"),
    SPECIAL("--ttl", 0, "D", "time to live (1h, 30m, 3d; 0: none)", opt_ttl),
    TO("--publish", 'p', "HOST:PORT", "forward a host port to the sandbox (repeatable)",
       "--publish"),
    SAME("--volume", 'v', "SLUG:/PATH[:ro]", "mount a volume (repeatable)"),
    SAME("--label", 'l', "KEY=VALUE", "a label (repeatable)"),
    SPECIAL("--no-start", 0, NULL, "do not start the sandbox after creating it", map_opt),
    REFUSE("--branch", 0, NULL, "give the sandbox's name yourself"),
    REFUSE("--ssh", 0, NULL, "there is no SSH server; use 'agentkernel exec'"),
    REFUSE("--source", 0, "URL", "clone with 'agentkernel exec NAME git clone URL /workspace'"),
    REFUSE("--git-ref", 0, "REF", "check out with 'agentkernel exec NAME git checkout REF'"),
    REFUSE("--secret", 'S', "SPEC",
	   "agentcell binds secrets as KEY@HOST: 'agentcell create --secret KEY@HOST'"),
    REFUSE("--secret-file", 0, "KEY", "write the file with 'agentcell cp' instead"),
    REFUSE("--placeholder-secrets", 0, NULL,
	   "agentcell always shows a placeholder: 'agentcell create --secret KEY@HOST'"),
    CLI_END,
};

static const cli_opt_t start_opts[] = {
    /* agentkernel too uses the backend recorded in the sandbox's state. */
    SPECIAL("--backend", 'B', "B", "accepted: the sandbox's own backend is used", opt_fast),
    CLI_END,
};

static const cli_opt_t list_opts[] = {
    SAME("--label", 'l', "KEY=VALUE", "only sandboxes with this label (repeatable)"),
    REFUSE("--project", 0, NULL, "filter with --label instead"),
    CLI_END,
};

static const cli_opt_t extend_opts[] = {
    SAME("--by", 0, "DURATION", "additional time (1h, 30m, 2d; default 1h)"),
    CLI_END,
};

static const cli_opt_t logs_opts[] = {
    SAME("--stderr", 0, NULL, "show stderr instead of stdout"),
    CLI_END,
};

static const cli_opt_t gc_opts[] = {
    SAME("--dry-run", 0, NULL, "show what would be removed without removing"),
    REFUSE("--label", 'l', "KEY=VALUE",
	   "gc removes expired sandboxes only; remove labelled ones with 'agentkernel "
	   "remove'"),
    CLI_END,
};

static const cli_opt_t audit_opts[] = {
    SAME("--sandbox", 's', "NAME", "only the events of sandbox NAME"),
    TO("--last", 'l', "N", "only the last N entries", "--limit"),
    SAME("--json", 0, NULL, "output JSON"),
    REFUSE("--path", 0, NULL, "the log is $AGENTCELL_HOME/audit.jsonl"),
    CLI_END,
};

static const cli_opt_t serve_opts[] = {
    SAME("--host", 'H', "HOST", "address to listen on (default 127.0.0.1)"),
    SAME("--port", 'p', "PORT", "TCP port (default 18888)"),
    REFUSE("--api-key", 0, "KEY",
	   "set AGENTCELL_API_KEY (or AGENTKERNEL_API_KEY) or [api] api_key instead"),
    REFUSE("--api-key-file", 0, "PATH", "set [api] api_key in the config instead"),
    REFUSE("--tls", 0, NULL, "put a TLS proxy in front of 'serve'"),
    REFUSE("--tls-cert", 0, "PATH", "put a TLS proxy in front of 'serve'"),
    REFUSE("--tls-key", 0, "PATH", "put a TLS proxy in front of 'serve'"),
    REFUSE("--require-tls", 0, NULL, "put a TLS proxy in front of 'serve'"),
    REFUSE("--otel-endpoint", 0, "URL", "scrape GET /metrics instead"),
    REFUSE("--webhook-url", 0, "URL", "read the audit log ('agentcell audit') instead"),
    CLI_END,
};
#undef CS

/* ------------------------------------------------------------------ forwarding */

/* Runs agentcell command `to` on the options gathered in cs, then "--", the positional
 * arguments and the command (if any). */
static int forward(const cli_command_t *to, const compat_state_t *cs, const cli_args_t *ca)
{
	int n = 0;
	_cleanup_free_ char **av = calloc((size_t)(cs->n + ca->n + ca->ncmd + 3), sizeof(char *));
	if (!av) {
		fprintf(stderr, "agentkernel: out of memory\n");
		return 1;
	}
	av[n++] = (char *)to->name;
	for (int i = 0; i < cs->n; i++)
		av[n++] = cs->out[i];
	av[n++] = "--";
	for (int i = 0; i < ca->n; i++)
		av[n++] = ca->v[i];
	for (int i = 0; i < ca->ncmd; i++)
		av[n++] = ca->cmd[i];
	av[n] = NULL;
	return to->fn(n, av);
}

/* Parses argv against agentkernel's command c; *cs's array is to free. */
static cli_status_t parse(const cli_command_t *c, int argc, char **argv, compat_state_t *cs,
			  cli_args_t *ca)
{
	*cs = (compat_state_t){.out = calloc((size_t)(2 * argc + COMPAT_EXTRA), sizeof(char *))};
	if (!cs->out) {
		fprintf(stderr, "agentkernel: out of memory\n");
		return CLI_FAILED;
	}
	return cli_parse(c, argc, argv, cs, ca);
}

/* The usual case: parse, forward to `to`. */
static int simple(const cli_command_t *c, const cli_command_t *to, int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(c, argc, argv, &cs, &ca);
	int rc = ps == CLI_OK ? forward(to, &cs, &ca) : cli_exit(ps);
	free(cs.out);
	return rc;
}

/* ------------------------------------------------------------------ the commands */

static int ak_run(int argc, char **argv);
static int ak_exec(int argc, char **argv);
static int ak_create(int argc, char **argv);
static int ak_start(int argc, char **argv);
static int ak_stop(int argc, char **argv);
static int ak_remove(int argc, char **argv);
static int ak_list(int argc, char **argv);
static int ak_info(int argc, char **argv);
static int ak_cp(int argc, char **argv);
static int ak_extend_ttl(int argc, char **argv);
static int ak_exec_list(int argc, char **argv);
static int ak_exec_logs(int argc, char **argv);
static int ak_exec_kill(int argc, char **argv);
static int ak_gc(int argc, char **argv);
static int ak_serve(int argc, char **argv);
static int ak_mcp_server(int argc, char **argv);
static int ak_agents(int argc, char **argv);
static int ak_doctor(int argc, char **argv);
static int ak_audit(int argc, char **argv);

static const cli_command_t ak_cmd_run = {
    .name = "run",
    .summary = "run a command in a temporary sandbox (removed unless -k)",
    .synopsis = "[OPTIONS] [--] COMMAND...",
    .about = "Runs COMMAND in a new sandbox and removes it afterwards (agentcell run).\n",
    .opts = run_opts,
    .command = true,
    .fn = ak_run,
};
static const cli_command_t ak_cmd_exec = {
    .name = "exec",
    .summary = "execute a command in a running sandbox",
    .synopsis = "NAME [OPTIONS] [--] COMMAND...",
    .about = "Runs COMMAND in the running sandbox NAME (agentcell exec).\n",
    .opts = exec_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .command = true,
    .fn = ak_exec,
};
static const cli_command_t ak_cmd_create = {
    .name = "create",
    .summary = "create a sandbox and start it (unless --no-start)",
    .synopsis = "NAME [OPTIONS]",
    .about = "Creates sandbox NAME (agentcell create) and starts it unless --no-start.\n",
    .opts = create_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .fn = ak_create,
};
#define AK_ONE .synopsis = "NAME", .min_args = 1, .max_args = 1, .name_arg = 1
static const cli_command_t ak_cmd_start = {
    .name = "start",
    .summary = "start a sandbox",
    .opts = start_opts,
    AK_ONE,
    .fn = ak_start,
};
static const cli_command_t ak_cmd_stop = {
    .name = "stop",
    .summary = "stop a running sandbox",
    AK_ONE,
    .fn = ak_stop,
};
static const cli_command_t ak_cmd_remove = {
    .name = "remove",
    .summary = "remove a sandbox and its files",
    AK_ONE,
    .fn = ak_remove,
};
static const cli_command_t ak_cmd_list = {
    .name = "list",
    .summary = "list all sandboxes",
    .synopsis = "[--label KEY=VALUE]...",
    .opts = list_opts,
    .fn = ak_list,
};
static const cli_command_t ak_cmd_info = {
    .name = "info",
    .alias = "status",
    .summary = "show detailed information about a sandbox",
    AK_ONE,
    .fn = ak_info,
};
static const cli_command_t ak_cmd_cp = {
    .name = "cp",
    .summary = "copy files to or from a running sandbox",
    .synopsis = "SOURCE DEST (one of them NAME:/path)",
    .min_args = 2,
    .max_args = 2,
    .missing = {"give SOURCE and DEST (one of them NAME:/path)"},
    .fn = ak_cp,
};
static const cli_command_t ak_cmd_extend_ttl = {
    .name = "extend-ttl",
    .alias = "extend", /* agentcell's name, which its errors mention */
    .summary = "extend a sandbox's time to live (default by 1h)",
    .synopsis = "NAME [--by DURATION]",
    .opts = extend_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .fn = ak_extend_ttl,
};
static const cli_command_t ak_cmd_exec_list = {
    .name = "exec-list",
    .summary = "list a sandbox's detached commands (JSON)",
    AK_ONE,
    .fn = ak_exec_list,
};
#define AK_NAME_ID                                                                                 \
	.synopsis = "NAME ID", .min_args = 2, .max_args = 2, .name_arg = 1,                        \
	.missing = {"no sandbox name given", NULL, "no command id given"}
static const cli_command_t ak_cmd_exec_logs = {
    .name = "exec-logs",
    .summary = "print a detached command's output",
    .opts = logs_opts,
    AK_NAME_ID,
    .fn = ak_exec_logs,
};
static const cli_command_t ak_cmd_exec_kill = {
    .name = "exec-kill",
    .summary = "kill a detached command",
    AK_NAME_ID,
    .fn = ak_exec_kill,
};
static const cli_command_t ak_cmd_gc = {
    .name = "gc",
    .summary = "remove expired sandboxes",
    .synopsis = "[--dry-run]",
    .opts = gc_opts,
    .fn = ak_gc,
};
static const cli_command_t ak_cmd_serve = {
    .name = "serve",
    .summary = "start the HTTP API server",
    .synopsis = "[-H HOST] [-p PORT]",
    .opts = serve_opts,
    .fn = ak_serve,
};
static const cli_command_t ak_cmd_mcp_server = {
    .name = "mcp-server",
    .alias = "mcp",
    .summary = "start the MCP server on stdio (JSON-RPC)",
    .fn = ak_mcp_server,
};
static const cli_command_t ak_cmd_agents = {
    .name = "agents",
    .summary = "list supported AI agents and their availability",
    .fn = ak_agents,
};
static const cli_command_t ak_cmd_audit = {
    .name = "audit",
    .summary = "view the audit log",
    .synopsis = "[-s NAME] [-l N] [--json]",
    .opts = audit_opts,
    .fn = ak_audit,
};
static const cli_command_t ak_cmd_doctor = {
    .name = "doctor",
    .summary = "system diagnostics and health check",
    .fn = ak_doctor,
};

const cli_command_t *const cli_compat_commands[] = {
    &ak_cmd_run,	&ak_cmd_exec,	   &ak_cmd_create,    &ak_cmd_start, &ak_cmd_stop,
    &ak_cmd_remove,	&ak_cmd_list,	   &ak_cmd_info,      &ak_cmd_cp,    &ak_cmd_extend_ttl,
    &ak_cmd_exec_list,	&ak_cmd_exec_logs, &ak_cmd_exec_kill, &ak_cmd_gc,    &ak_cmd_serve,
    &ak_cmd_mcp_server, &ak_cmd_agents,	   &ak_cmd_doctor,    &ak_cmd_audit, NULL,
};
/* agentkernel sandbox|sb ACTION */
const cli_command_t *const cli_compat_sandbox_commands[] = {
    &ak_cmd_create,
    &ak_cmd_start,
    &ak_cmd_stop,
    &ak_cmd_remove,
    &ak_cmd_list,
    &ak_cmd_info,
    &ak_cmd_cp,
    &ak_cmd_extend_ttl,
    &ak_cmd_exec_list,
    &ak_cmd_exec_logs,
    &ak_cmd_exec_kill,
    &ak_cmd_gc,
    NULL,
};

static int ak_run(int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(&ak_cmd_run, argc, argv, &cs, &ca);
	/* agentkernel gives a kept run's sandbox a TTL of 1h unless --ttl says otherwise. */
	if (ps == CLI_OK && cs.keep && !cs.has_ttl) {
		push(&cs, "--ttl");
		push(&cs, "1h");
	}
	if (ps == CLI_OK && cs.has_ttl && !cs.keep)
		ps = cli_usage_error("run", "--ttl only applies with --keep");
	int rc = ps == CLI_OK ? forward(&cli_cmd_run, &cs, &ca) : cli_exit(ps);
	free(cs.out);
	return rc;
}

static int ak_exec(int argc, char **argv)
{
	return simple(&ak_cmd_exec, &cli_cmd_exec, argc, argv);
}

static int ak_create(int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(&ak_cmd_create, argc, argv, &cs, &ca);
	if (ps != CLI_OK) {
		free(cs.out);
		return cli_exit(ps);
	}
	/* --no-start is agentkernel's; agentcell's create never starts. */
	bool start = true;
	int k = 0;
	for (int i = 0; i < cs.n; i++) {
		if (!strcmp(cs.out[i], "--no-start"))
			start = false;
		else
			cs.out[k++] = cs.out[i];
	}
	cs.n = k;
	char *name = ca.v[0];
	int rc = forward(&cli_cmd_create, &cs, &ca);
	free(cs.out);
	if (rc != 0 || !start)
		return rc;
	char *av[] = {"start", "--", name, NULL};
	return cli_cmd_start.fn(3, av);
}

static int ak_start(int argc, char **argv)
{
	return simple(&ak_cmd_start, &cli_cmd_start, argc, argv);
}
static int ak_stop(int argc, char **argv)
{
	return simple(&ak_cmd_stop, &cli_cmd_stop, argc, argv);
}
static int ak_remove(int argc, char **argv)
{
	return simple(&ak_cmd_remove, &cli_cmd_remove, argc, argv);
}
static int ak_list(int argc, char **argv)
{
	return simple(&ak_cmd_list, &cli_cmd_list, argc, argv);
}
static int ak_info(int argc, char **argv)
{
	return simple(&ak_cmd_info, &cli_cmd_info, argc, argv);
}
static int ak_cp(int argc, char **argv)
{
	return simple(&ak_cmd_cp, &cli_cmd_cp, argc, argv);
}

static int ak_extend_ttl(int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(&ak_cmd_extend_ttl, argc, argv, &cs, &ca);
	bool by = false;
	for (int i = 0; ps == CLI_OK && i < cs.n; i++)
		by |= !strcmp(cs.out[i], "--by");
	/* agentkernel's default: one hour. */
	if (ps == CLI_OK && !by) {
		push(&cs, "--by");
		push(&cs, "1h");
	}
	int rc = ps == CLI_OK ? forward(&cli_cmd_extend, &cs, &ca) : cli_exit(ps);
	free(cs.out);
	return rc;
}

/* agentkernel prints the list as JSON. */
static int ak_exec_list(int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(&ak_cmd_exec_list, argc, argv, &cs, &ca);
	if (ps == CLI_OK)
		push(&cs, "--json");
	int rc = ps == CLI_OK ? forward(&cli_cmd_exec_list, &cs, &ca) : cli_exit(ps);
	free(cs.out);
	return rc;
}

static int ak_exec_logs(int argc, char **argv)
{
	return simple(&ak_cmd_exec_logs, &cli_cmd_exec_logs, argc, argv);
}

/* agentkernel says "Command ID killed". */
static int ak_exec_kill(int argc, char **argv)
{
	compat_state_t cs;
	cli_args_t ca;
	cli_status_t ps = parse(&ak_cmd_exec_kill, argc, argv, &cs, &ca);
	const char *id = ps == CLI_OK ? ca.v[1] : NULL;
	int rc = ps == CLI_OK ? forward(&cli_cmd_exec_kill, &cs, &ca) : cli_exit(ps);
	free(cs.out);
	if (rc == 0)
		printf("Command %s killed\n", id);
	return rc;
}

static int ak_gc(int argc, char **argv)
{
	return simple(&ak_cmd_gc, &cli_cmd_gc, argc, argv);
}
static int ak_serve(int argc, char **argv)
{
	return simple(&ak_cmd_serve, &cli_cmd_serve, argc, argv);
}
static int ak_mcp_server(int argc, char **argv)
{
	return simple(&ak_cmd_mcp_server, &cli_cmd_mcp, argc, argv);
}
static int ak_agents(int argc, char **argv)
{
	return simple(&ak_cmd_agents, &cli_cmd_agents, argc, argv);
}
static int ak_doctor(int argc, char **argv)
{
	return simple(&ak_cmd_doctor, &cli_cmd_doctor, argc, argv);
}

/* ------------------------------------------------------------------ what agentcell cannot do */

static const struct {
	const char *name, *why;
} unsupported[] = {
    {"setup", "there is nothing to download: native sandboxes use the host's kernel "
	      "(check the host with 'agentkernel doctor')"},
    {"init", "write agentkernel.toml (or agentcell.toml) by hand; both are read"},
    {"attach", "there is no VM console; use 'agentkernel exec NAME -- sh' for a shell"},
    {"ssh", "there is no SSH server; use 'agentkernel exec NAME -- COMMAND'"},
    {"daemon", "there is no VM pool daemon; use 'agentcell serve --pool N'"},
    {"session", "agent sessions are not implemented; use create, exec and remove"},
    {"snapshot", "use 'agentcell snapshot NAME TEMPLATE' and create --template"},
    {"template", "use 'agentcell template ls|rm'"},
    {"secret", "use 'agentcell secret set|ls|rm'"},
    {"volume", "use 'agentcell volume create|ls|rm'"},
    {"images", "use 'agentcell image pull|ls|rm|prune'"},
    {"plugin", "register the MCP server yourself: 'claude mcp add agentkernel -- agentkernel "
	       "mcp-server'"},
    {"build", "build with docker build and run the result with --image"},
    {"pipeline", "pipelines are not implemented; chain 'agentkernel run' calls"},
    {"parallel", "run several 'agentkernel run' in the background instead"},
    {"replay", "sessions are not recorded"},
    {"receipt", "execution receipts are not implemented"},
    {"benchmark", "benchmarks live in agentcell's bench/ directory"},
    {"llm", "use 'agentcell secret set' and --secret KEY@HOST"},
    {"completions", "shell completions are not generated"},
    {"stats", "use 'agentcell metrics' or GET /stats of 'agentkernel serve'"},
    {"policy", "use agentcell.toml's [network] and [security] sections"},
    {"export", "copy the files out with 'agentkernel cp NAME:/path ./dir'"},
    {"export-config", "sandbox configs are not exported; see 'agentkernel info NAME'"},
    {"import-config", "create the sandbox with 'agentkernel create NAME --config FILE'"},
    {"clean", "use 'agentkernel gc' and 'agentkernel remove NAME'"},
};

static int refuse_command(const char *group, const char *name)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(unsupported); i++)
		if (!strcmp(unsupported[i].name, name)) {
			fprintf(
			    stderr,
			    "agentkernel: agentkernel's '%s%s%s' is not supported by agentcell: "
			    "%s\n",
			    group ? group : "", group ? " " : "", name, unsupported[i].why);
			return CLI_EXIT_USAGE;
		}
	return cli_usage(NULL, "unknown command '%s%s%s'", group ? group : "", group ? " " : "",
			 name);
}

/* ------------------------------------------------------------------ main */

const cli_command_t *cli_compat_find(const cli_command_t *const *t, const char *name)
{
	for (; *t; t++)
		if (!strcmp((*t)->name, name) || ((*t)->alias && !strcmp((*t)->alias, name)))
			return *t;
	return NULL;
}

bool cli_compat_invoked(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;
	base = base ? base + 1 : argv0;
	return base && !strcmp(base, "agentkernel");
}

static void compat_usage(FILE *f)
{
	fprintf(f,
		"agentkernel %s (agentcell %s): agentkernel's command line, run by agentcell\n\n"
		"Usage: agentkernel COMMAND [OPTIONS] [ARGS]\n\nCommands:\n",
		AGENTKERNEL_COMPAT_VERSION, AGENTCELL_VERSION);
	for (const cli_command_t *const *c = cli_compat_commands; *c; c++)
		fprintf(f, "  %-12s %s\n", (*c)->name, (*c)->summary);
	fprintf(f, "  %-12s the same as a group (alias sb):", "sandbox");
	int col = 48;
	for (const cli_command_t *const *c = cli_compat_sandbox_commands; *c; c++) {
		int w = (int)strlen((*c)->name) + 1;
		if (col + w > 88) {
			fprintf(f, "\n%15s", "");
			col = 15;
		}
		fprintf(f, " %s", (*c)->name);
		col += w;
	}
	fputc('\n', f);
	fprintf(f, "  %-12s %s\n", "version", "print the version");
	fprintf(f,
		"\nRun 'agentkernel COMMAND --help' for a command's options; 'agentcell --help'\n"
		"for agentcell's own command line (same binary, same sandboxes).\n");
}

static int dispatch(const cli_command_t *const *t, const char *group, int argc, char **argv)
{
	const cli_command_t *c = cli_compat_find(t, argv[0]);
	if (!c)
		return refuse_command(group, argv[0]);
	return c->fn(argc, argv);
}

int cli_compat_main(int argc, char **argv)
{
	cli_prog = "agentkernel";
	if (argc < 2) {
		compat_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		if (argc > 2 && !strcmp(cmd, "help")) {
			const cli_command_t *c = cli_compat_find(cli_compat_commands, argv[2]);
			if (!c)
				return refuse_command(NULL, argv[2]);
			cli_help(c);
			return 0;
		}
		compat_usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
		printf("agentkernel %s (agentcell %s)\n", AGENTKERNEL_COMPAT_VERSION,
		       AGENTCELL_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "sandbox") || !strcmp(cmd, "sb")) {
		if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
			FILE *f = argc < 3 ? stderr : stdout;
			fprintf(f,
				"Usage: agentkernel sandbox ACTION [OPTIONS] [ARGS]\n\nActions:\n");
			for (const cli_command_t *const *c = cli_compat_sandbox_commands; *c; c++)
				fprintf(f, "  %-12s %s\n", (*c)->name, (*c)->summary);
			return argc < 3 ? CLI_EXIT_USAGE : 0;
		}
		return dispatch(cli_compat_sandbox_commands, "sandbox", argc - 2, argv + 2);
	}
	return dispatch(cli_compat_commands, NULL, argc - 1, argv + 1);
}

static int ak_audit(int argc, char **argv)
{
	return simple(&ak_cmd_audit, &cli_cmd_audit, argc, argv);
}
