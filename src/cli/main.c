/* agentcell: isolated Linux sandboxes for AI coding agents. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/util.h"
#include "cli/cli.h"
#include "runtime/runtime.h"

#define SANDBOX_OPTS_HELP                                                                          \
	"  --image host|DIR      root file system: the host's /usr, /bin, /lib* and a filtered "   \
	"/etc\n"                                                                                   \
	"                        under a private writable layer (default), or a directory\n"       \
	"  --memory MB           memory limit (default 512; 16-1048576)\n"                         \
	"  --cpus N              CPU limit, fractions allowed (default 1)\n"                       \
	"  --pids N              process limit (default 512)\n"                                    \
	"  --disk MB|unlimited   disk limit of the sandbox's writable layer, blocks and inodes\n"  \
	"                        (default 10240; 16-1048576): an ext4 image of its own; a\n"       \
	"                        one-shot run's is a tmpfs, which counts as memory too\n"          \
	"  --mount-cwd           mount the current directory read-write at /workspace and start "  \
	"there\n"                                                                                  \
	"  --read-only           read-only root file system (/tmp stays a writable tmpfs)\n"       \
	"  --env K=V             set an environment variable (repeatable)\n"                       \
	"  --profile P           permissive | moderate (default) | restrictive\n"                  \
	"                        permissive: --mount-cwd, no memory limit, passes PATH HOME "      \
	"USER\n"                                                                                   \
	"                        LANG LC_ALL TERM; restrictive: --read-only, 256 MB, 0.5 CPU\n"    \
	"  --backend B           native (default) | docker | podman | auto: docker and podman\n"   \
	"                        use the Engine API (DOCKER_HOST, else the default sockets)\n"     \
	"  --image host|DIR|REF  native: host or a root directory; docker/podman: an image\n"      \
	"  --network             network access (docker/podman; native sandboxes only have lo)\n"  \
	"  --init-script S       shell commands run at every start; a failure fails the start\n"   \
	"  --init-script-file F  the same, read from file F\n"                                     \
	"  --agent A             pass agent A's API keys from your environment (see 'agents'):\n"  \
	"                        claude codex gemini opencode amp pi copilot; never stored\n"      \
	"  --file HOST:PATH      copy a host file or tree to PATH before anything runs "           \
	"(repeatable)\n"

#define LIFETIME_OPTS_HELP                                                                         \
	"  --ttl DURATION        remove the sandbox with 'agentcell gc' once DURATION has "        \
	"passed\n"                                                                                 \
	"                        (DURATION: 90s, 30m, 2h, 1d or plain seconds)\n"                  \
	"  --auto-stop-after D   lifecycle policy (applied by 'agentcell reconcile'): stop it\n"   \
	"                        after D without activity\n"                                       \
	"  --auto-archive-after D  stop and archive it after D without activity\n"                 \
	"  --auto-delete-after D remove it once archived for D\n"                                  \
	"  --label KEY=VALUE     a label (repeatable); keys 1-63 of A-Z a-z 0-9 . _ / -, values\n" \
	"                        up to 255 printable characters\n"

const cli_command_t cli_commands[] = {
    {"run", NULL, "run one command in a fresh sandbox that is removed afterwards",
     "agentcell run [OPTIONS] [--] CMD [ARG...]\n\n"
     "Runs CMD in a new sandbox and removes the sandbox when CMD ends. Output streams live;\n"
     "the exit status is CMD's (124 on timeout, 128+N when killed by signal N, 127 when CMD\n"
     "does not exist).\n\nOptions:\n" SANDBOX_OPTS_HELP
     "  --timeout SECONDS     kill the sandbox after this long (exit status 124)\n"
     "  --keep                keep the sandbox (running) and print its name on stderr\n"
     "  --name NAME           name of the kept sandbox (with --keep)\n"
     "\nWith --keep only:\n" LIFETIME_OPTS_HELP
     "  -i, --interactive     pass standard input through (otherwise /dev/null)\n",
     cmd_run},
    {"create", NULL, "create a persistent sandbox (stopped)",
     "agentcell create NAME [OPTIONS]\n\n"
     "Creates sandbox NAME (1-63 of A-Z a-z 0-9 _ -, starting and ending alphanumeric).\n"
     "Files written inside persist across stop and start until 'agentcell "
     "remove'.\n\nOptions:\n" SANDBOX_OPTS_HELP LIFETIME_OPTS_HELP,
     cmd_create},
    {"start", NULL, "start a sandbox",
     "agentcell start NAME\n\nStarts sandbox NAME (nothing happens if it runs).\n", cmd_start},
    {"exec", NULL, "run a command in a running sandbox",
     "agentcell exec [OPTIONS] NAME [OPTIONS] [--] CMD [ARG...]\n\n"
     "Runs CMD in the running sandbox NAME. Output streams live; the exit status is "
     "CMD's.\n\nOptions:\n"
     "  --env K=V             set an environment variable (repeatable)\n"
     "  -w, --workdir DIR     working directory inside the sandbox\n"
     "  -u, --user UID|NAME   run as this user (default root of the sandbox)\n"
     "  --timeout SECONDS     kill CMD and everything it started after this long (exit 124)\n"
     "  -i, --interactive     pass standard input through (otherwise /dev/null)\n"
     "  -t, --tty             allocate a pseudo-terminal that follows this terminal's size\n"
     "  -d, --detach          run in the background: print an id and return at once (see\n"
     "                        exec-list, exec-status, exec-logs, exec-kill)\n",
     cmd_exec},
    {"cp", NULL, "copy files and directory trees into or out of a sandbox",
     "agentcell cp HOST_PATH NAME:/path\n       agentcell cp NAME:/path HOST_PATH\n\n"
     "Copies a file or a directory tree (binary-safe, modes kept, setuid/setgid bits dropped)\n"
     "into or out of sandbox NAME, running or stopped. A destination that is an existing\n"
     "directory receives the source under its own name. Paths in the sandbox are resolved\n"
     "inside its root: '..' and symbolic links never lead out of it. Files copied in belong\n"
     "to the sandbox's root.\n",
     cmd_cp},
    {"files", NULL, "list, read, write and delete files in a sandbox",
     "agentcell files ls|cat|put|rm|mkdir NAME PATH\n\n"
     "  ls     list directory PATH (type, mode, size, name)\n"
     "  cat    print file PATH\n"
     "  put    write standard input to file PATH (parent directories are created)\n"
     "  rm     delete PATH (-r, --recursive: a directory tree)\n"
     "  mkdir  create directory PATH and its parents\n\n"
     "Works on running and stopped sandboxes; paths are resolved inside the sandbox's root.\n",
     cmd_files},
    {"agents", NULL, "list the coding agents and the API keys passed for them",
     "agentcell agents [--json]\n\nLists the agents of 'create --agent' and the environment "
     "variables passed for each\n"
     "(from your environment at start; never written to the state or the audit log).\n",
     cmd_agents},
    {"exec-list", NULL, "list background commands",
     "agentcell exec-list [NAME] [--json]\n\nLists the background (exec --detach) commands of "
     "sandbox NAME, or of all\n"
     "sandboxes, oldest first, with their state: running, completed (exit 0) or failed.\n",
     cmd_exec_list},
    {"exec-status", NULL, "show a background command's state and exit code",
     "agentcell exec-status ID [--json]\n\nShows the state (running, completed, failed), exit "
     "code, start and end of\n"
     "background command ID.\n",
     cmd_exec_status},
    {"exec-logs", NULL, "print a background command's output",
     "agentcell exec-logs ID [--stderr] [--follow]\n\nPrints what background command ID wrote to "
     "stdout (or stderr). Each log is\n"
     "kept under 8 MiB: past that the oldest bytes are dropped, and a note says how many.\n\n"
     "  --stderr              the standard error log\n"
     "  -f, --follow          keep printing new output until the command ends\n",
     cmd_exec_logs},
    {"exec-kill", NULL, "kill a background command and everything it started",
     "agentcell exec-kill ID\n\nKills background command ID and every process it started.\n",
     cmd_exec_kill},
    {"stop", NULL, "stop a sandbox (every process of it is killed)",
     "agentcell stop NAME\n\nStops sandbox NAME. Its files are kept.\n", cmd_stop},
    {"remove", "rm", "stop and delete a sandbox with its files",
     "agentcell remove NAME\n\nStops sandbox NAME if it runs and deletes it and its files.\n",
     cmd_remove},
    {"list", "ls", "list sandboxes",
     "agentcell list [--json] [--label KEY=VALUE]...\n\nLists every sandbox with its status.\n\n"
     "  --json                JSON array of sandbox states\n"
     "  --label KEY=VALUE     only sandboxes with this label (repeatable: all must match)\n",
     cmd_list},
    {"info", NULL, "show one sandbox",
     "agentcell info NAME [--json]\n\nShows sandbox NAME's settings and status.\n\n  --json        "
     "        the full state as JSON\n",
     cmd_info},
    {"doctor", NULL, "check what the native backend needs on this host",
     "agentcell doctor\n\nChecks root or user namespaces, idmapped mounts, overlayfs, seccomp and\n"
     "cgroup controllers, and says how to fix what is missing. Exit status 1 if anything is.\n",
     cmd_doctor},
    {"extend", NULL, "push a sandbox's expiry (TTL) further out",
     "agentcell extend NAME --by DURATION\n\n"
     "Sets NAME's expiry to DURATION after the later of now and its current expiry (a\n"
     "sandbox without a TTL gets one); ttl_seconds becomes the time from its creation to the\n"
     "new expiry. Prints the new expiry.\n\n"
     "  --by DURATION         90s, 30m, 2h, 1d or plain seconds\n",
     cmd_extend},
    {"gc", NULL, "remove every expired sandbox",
     "agentcell gc [--json]\n\nRemoves every sandbox whose TTL has expired, running or not, "
     "and prints\nwhat it removed.\n\n"
     "  --json                a JSON array [{name, expires_at}]\n",
     cmd_gc},
    {"policy", NULL, "show or change a sandbox's lifecycle policy",
     "agentcell policy NAME [--auto-stop-after D] [--auto-archive-after D]\n"
     "                      [--auto-delete-after D] [--clear] [--json]\n\n"
     "Without options, shows NAME's lifecycle policy; otherwise changes it. 'agentcell\n"
     "reconcile' applies the policies. D: 90s, 30m, 2h, 1d, plain seconds, or 'none' to\n"
     "unset one rule.\n\n"
     "  --auto-stop-after D   stop it after D without activity\n"
     "  --auto-archive-after D  stop and archive it after D without activity\n"
     "  --auto-delete-after D remove it once archived for D\n"
     "  --clear               drop the whole policy (then apply the other options)\n"
     "  --json                print the resulting policy as JSON\n",
     cmd_policy},
    {"reconcile", NULL, "apply the lifecycle policies (stop, archive, delete)",
     "agentcell reconcile [--dry-run] [--json]\n\n"
     "Applies every sandbox's lifecycle policy: an archived sandbox is deleted once it has\n"
     "been archived for auto-delete-after; otherwise one inactive (since its last exec,\n"
     "start or creation) for auto-archive-after is stopped and archived, and a running one\n"
     "inactive for auto-stop-after is stopped. Prints one line per action, sorted by name.\n\n"
     "  --dry-run             change nothing; print what would be done\n"
     "  --json                a JSON array [{name, action, reason}]\n",
     cmd_reconcile},
    {"recover", NULL, "bring an archived sandbox back",
     "agentcell recover NAME\n\nClears NAME's archived state so that it can be started "
     "again.\n",
     cmd_recover},
    {"label", NULL, "show, set or remove a sandbox's labels",
     "agentcell label NAME [KEY=VALUE...] [--remove KEY]... [--json]\n\n"
     "Sets and removes labels of NAME and prints the resulting labels (without changes:\n"
     "prints them). Keys: 1-63 of A-Z a-z 0-9 . _ / -; values: up to 255 printable\n"
     "characters. 'agentcell list --label KEY=VALUE' selects by label.\n\n"
     "  --remove KEY          remove this label (repeatable)\n"
     "  --json                print the labels as a JSON object\n",
     cmd_label},
    {"describe", NULL, "set a sandbox's description",
     "agentcell describe NAME TEXT\n\nSets NAME's description to TEXT (at most 1024 bytes; "
     "an empty TEXT clears it).\n",
     cmd_describe},
    {"resize", NULL, "change a sandbox's memory, CPU or process limits",
     "agentcell resize NAME [--memory MB] [--cpus N] [--pids N]\n\n"
     "Changes NAME's limits: in place if it runs (its cgroup), and in its state. Lowering\n"
     "memory below what the sandbox uses now is refused, and nothing changes.\n\n"
     "  --memory MB           memory limit (16-1048576)\n"
     "  --cpus N              CPU limit, fractions allowed (0.01-1024)\n"
     "  --pids N              process limit (8-4194304)\n",
     cmd_resize},
    {"audit", NULL, "show the audit log",
     "agentcell audit [--sandbox NAME] [--limit N] [--json]\n\n"
     "Shows the audit log ($AGENTCELL_HOME/audit.jsonl), oldest first: creations, starts,\n"
     "stops, removals, commands with their exit codes, lifecycle actions, changes and\n"
     "errors. Environment values are never recorded.\n\n"
     "  --sandbox NAME        only the events of sandbox NAME\n"
     "  --limit N             only the last N events\n"
     "  --json                a JSON array of {timestamp, event, sandbox, details}\n",
     cmd_audit},
    {"metrics", NULL, "print metrics in the Prometheus text format",
     "agentcell metrics\n\nPrints sandboxes by status and counters and histograms derived "
     "from the audit log\n(commands, events, durations) in the Prometheus text format.\n",
     cmd_metrics},
    {"serve", NULL, "serve the HTTP API (agentkernel-compatible) and MCP over HTTP",
     "agentcell serve [--host ADDR] [--port N] [--socket PATH] [--config FILE]\n"
     "                [--exec-timeout D] [--idle-timeout D] [--max-conns-per-ip N]\n"
     "                [--image-root DIR]...\n\n"
     "Serves the HTTP API that agentkernel's SDKs speak (npm, Python, Go, Rust, Swift) on\n"
     "127.0.0.1:18888, and the MCP tools over Streamable HTTP at /mcp. Requests run in\n"
     "parallel, one thread per connection. An API key ($AGENTCELL_API_KEY,\n"
     "$AGENTKERNEL_API_KEY, or [api] api_key / api_key_env in agentcell.toml) makes every\n"
     "endpoint but /health, /metrics and /openapi.json require 'Authorization: Bearer KEY';\n"
     "an address other than loopback is refused without one. Pages of other sites are\n"
     "refused (Origin), and without a key so are requests for another host name (Host);\n"
     "bodies must be application/json. SIGINT/SIGTERM stop it.\n\n"
     "  --host ADDR           address to listen on (default 127.0.0.1)\n"
     "  --port N              TCP port (default 18888; 0: any free port)\n"
     "  --socket PATH         listen on a unix socket (mode 0600) instead\n"
     "  --config FILE         agentcell.toml to read (default ./agentcell.toml, else\n"
     "                        $AGENTCELL_HOME/agentcell.toml)\n"
     "  --exec-timeout D      time limit of a command whose request sets none (90s, 30m,\n"
     "                        2h; default: none; detached commands are not limited)\n"
     "  --idle-timeout D      close a connection that sends or reads nothing for D\n"
     "                        (default 30s; a running command is not idle)\n"
     "  --max-conns-per-ip N  connections one address may hold (default 64, of 256)\n"
     "  --image-root DIR      allow directory images below DIR (repeatable; by default\n"
     "                        requests may use only 'host' and container images, and\n"
     "                        nothing of the host is mounted at /workspace)\n"
     "  -v, --verbose         log HTTP protocol errors on stderr\n",
     cmd_serve},
    {"mcp", NULL, "serve the sandbox tools to coding agents over MCP (stdio)",
     "agentcell mcp [--config FILE] [--image-root DIR]... [--mount-cwd]\n\n"
     "Runs an MCP (Model Context Protocol) server on standard input and output: one JSON-RPC\n"
     "message per line. Tools: sandbox_run, sandbox_create, sandbox_exec, sandbox_list,\n"
     "sandbox_start, sandbox_stop, sandbox_remove, sandbox_file_read, sandbox_file_write,\n"
     "sandbox_extend_ttl. Tool calls run in parallel (up to 16). Register it with\n"
     "e.g. 'claude mcp add agentcell -- agentcell mcp' (see the README).\n\n"
     "  --config FILE         agentcell.toml for sandbox_run and sandbox_create (default\n"
     "                        ./agentcell.toml, else $AGENTCELL_HOME/agentcell.toml)\n"
     "  --image-root DIR      allow directory images below DIR (repeatable; by default\n"
     "                        only 'host': the agent calling the tools is the one sandboxed)\n"
     "  --mount-cwd           allow this directory at /workspace, read-write, for calls that\n"
     "                        ask for it (mount_cwd, the permissive profile); by default\n"
     "                        nothing of the host is mounted\n",
     cmd_mcp},
    {NULL, NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f,
		"agentcell %s: isolated Linux sandboxes for AI coding agents\n\n"
		"Usage: agentcell COMMAND [OPTIONS] [ARGS]\n\nCommands:\n",
		AGENTCELL_VERSION);
	for (const cli_command_t *c = cli_commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'agentcell COMMAND --help' for a command's options.\n"
		   "State lives in $AGENTCELL_HOME (default ~/.local/share/agentcell).\n");
}

int cli_help(const char *cmd)
{
	for (const cli_command_t *c = cli_commands; c->name; c++)
		if (strcmp(c->name, cmd) == 0) {
			fputs("Usage: ", stdout);
			fputs(c->help, stdout);
			return 0;
		}
	return 1;
}

int cli_error(ac_error_t *e)
{
	fprintf(stderr, "agentcell: %s\n", e ? e->msg : "unknown error");
	int code = ac_error_exit_code(e);
	ac_error_free(e);
	return code;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	/* Usage errors quote arguments: escaped like every error message. */
	char raw[1024], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	ac_escape_controls(raw, msg, sizeof(msg));
	fprintf(stderr, "agentcell: %s", msg);
	if (cmd)
		fprintf(stderr, " (see 'agentcell %s --help')\n", cmd);
	else
		fputs(" (see 'agentcell --help')\n", stderr);
	return CLI_EXIT_USAGE;
}

ac_manager_t *cli_manager(int *exit_code)
{
	ac_manager_t *m = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_open(NULL, &m, &e) < 0) {
		*exit_code = cli_error(e);
		return NULL;
	}
	return m;
}

int main(int argc, char **argv)
{
	ac_proctitle_init(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], AC_RT_BUILDER_ARG))
		ac_rt_builder_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		if (argc > 2 && !strcmp(cmd, "help"))
			return cli_help(argv[2]) == 0
				   ? 0
				   : cli_usage(NULL, "unknown command '%s'", argv[2]);
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("agentcell %s\n", AGENTCELL_VERSION);
		return 0;
	}
	for (const cli_command_t *c = cli_commands; c->name; c++) {
		if (strcmp(c->name, cmd) != 0 && !(c->alias && strcmp(c->alias, cmd) == 0))
			continue;
		int rc = c->fn(argc - 1, argv + 1);
		int en = 0;
		unsigned lost = ac_audit_lost(&en);
		if (lost)
			fprintf(stderr,
				"agentcell: warning: %u audit record%s could not be written to the "
				"audit log: %s\n",
				lost, lost == 1 ? "" : "s", strerror(en));
		return rc;
	}
	return cli_usage(NULL, "unknown command '%s'", cmd);
}
