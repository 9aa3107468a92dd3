/* agentcell run */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/languages.h"
#include "base/io.h"
#include "base/util.h"
#include "cli/cli.h"
#include "cli/run_pool.h"

typedef struct run_state {
	cli_sandbox_opts_t so;
	double timeout;
	bool interactive, keep;
	const char *name;
	const char *language, *code, *code_file;
	bool pool;		    /* --pool: through a server's POST /run */
	const char *server, *token; /* --server, --token */
} run_state_t;

static cli_status_t opt_language(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!ac_language_name_valid(v))
		return cli_usage_error(cmd,
				       "invalid --language '%s': use %s, or another name of 1-%d "
				       "characters of A-Z a-z 0-9 + # . _ - starting with a letter "
				       "(its code runs with sh -c)",
				       v, ac_language_names(), AC_LANGUAGE_NAME_MAX);
	*(const char **)t = v;
	return CLI_OK;
}

static const cli_opt_t run_opts[] = {
    CLI_GROUP(cli_sandbox_opts, NULL, offsetof(run_state_t, so)),
    CLI_FN("--timeout", 0, "SECONDS", "kill the sandbox after this long (exit status 124)",
	   cli_opt_seconds, run_state_t, timeout),
    CLI_FLAG("--interactive", 'i', "pass standard input through (otherwise /dev/null)", run_state_t,
	     interactive),
    CLI_FN("--language", 0, "LANG",
	   "run code instead of a command, with LANG's interpreter: python,\n"
	   "python3: python3 -c; node, javascript, js: node -e; ruby, perl: -e;\n"
	   "php: php -r; sh, bash, shell and any other name: sh -c. Names\n"
	   "ignore case. native: the host base's interpreter; docker/podman:\n"
	   "without --image, LANG's image (agentcell.toml [languages])",
	   opt_language, run_state_t, language),
    CLI_STRING("--code", 0, "TEXT",
	       "the code (one argument of the interpreter: no shell sees it\n"
	       "unless LANG is a shell)",
	       run_state_t, code),
    CLI_STRING("--code-file", 0, "FILE",
	       "the code, read from FILE (at most 1 MiB of UTF-8 without NUL);\n"
	       "'-': standard input, which then is not the program's (no -i)",
	       run_state_t, code_file),
    CLI_FLAG("--keep", 'k', "keep the sandbox (running) and print its name on stderr", run_state_t,
	     keep),
    CLI_STRING("--name", 0, "NAME", "name of the kept sandbox (with --keep)", run_state_t, name),
    CLI_FLAG("--pool", 0,
	     "run through a running 'agentcell serve' (POST /run): in a\n"
	     "sandbox of its warm pool (serve --pool N) when no sandbox\n"
	     "option is given; stdin is not passed",
	     run_state_t, pool),
    CLI_STRING("--server", 0, "URL",
	       "with --pool: the server (default $AGENTCELL_SERVER, else\n"
	       "http://127.0.0.1:18888)",
	       run_state_t, server),
    CLI_STRING("--token", 0, "T",
	       "with --pool: its API key (default $AGENTCELL_TOKEN,\n"
	       "$AGENTCELL_API_KEY, [api] api_key)",
	       run_state_t, token),
    CLI_GROUP(cli_lifetime_opts, "With --keep only:", offsetof(run_state_t, so)),
    CLI_END,
};

const cli_command_t cli_cmd_run = {
    .name = "run",
    .summary = "run one command in a fresh sandbox that is removed afterwards",
    .synopsis = "[OPTIONS] [--] CMD [ARG...]\n"
		"       agentcell run [OPTIONS] (--image REF | --template NAME)\n"
		"       agentcell run [OPTIONS] --language LANG (--code TEXT | --code-file FILE)",
    .about =
	"Runs CMD in a new sandbox and removes the sandbox when CMD ends. Output streams live;\n"
	"the exit status is CMD's (124 on timeout, 128+N when killed by signal N, 127 when CMD\n"
	"does not exist). With --language, the code runs instead (python3 -c CODE, ...); 127\n"
	"when the interpreter is not in the sandbox's image. Without CMD, an --image's (or\n"
	"--template's) Entrypoint and Cmd run; a CMD given runs as it is, without the\n"
	"image's Entrypoint before it.\n",
    .opts = run_opts,
    .command = true,
    .command_optional = true,
    .fn = cmd_run,
};

/* The options of a code run against each other and a command. */
static cli_status_t check_code_opts(const run_state_t *st, const cli_args_t *ca)
{
	bool code = st->code || st->code_file;
	const char *which = st->code ? "--code" : "--code-file";
	if (st->code && st->code_file)
		return cli_usage_error("run",
				       "--code and --code-file exclude each other: give one");
	if (code && ca->cmd)
		return cli_usage_error("run",
				       "%s and a command ('%s') exclude each other: give one",
				       which, ca->cmd[0]);
	if (code && !st->language)
		return cli_usage_error("run",
				       "%s needs --language (python, node, ..., or sh for shell "
				       "code)",
				       which);
	if (st->language && !code)
		return cli_usage_error("run", "--language needs --code TEXT or --code-file FILE");
	/* Without a command, an image's Entrypoint and Cmd run (the manager says when it has
	 * neither). */
	if (!code && !ca->cmd && !st->so.o.image && !st->so.o.template)
		return cli_usage_error(
		    "run", "no command given (or --language with --code or --code-file)");
	if (st->code_file && !strcmp(st->code_file, "-") && st->interactive)
		return cli_usage_error(
		    "run", "--code-file - reads the code from standard input, which then "
			   "cannot also be the program's (-i)");
	return CLI_OK;
}

/* --code-file: FILE, or standard input for "-"; at most AC_CODE_MAX bytes. */
static cli_status_t read_code_file(const char *path, char **buf, size_t *len)
{
	ac_error_t *e = NULL;
	if (strcmp(path, "-") != 0) {
		if (ac_read_file_at(AT_FDCWD, path, AC_CODE_MAX, buf, len, &e) == 0)
			return CLI_OK;
		fprintf(stderr, "%s: --code-file: %s\n", cli_prog, e ? e->msg : path);
		bool invalid = e && e->kind == AC_ERR_INVALID;
		ac_error_free(e);
		return invalid ? CLI_USAGE_ERROR : CLI_FAILED;
	}
	/* One byte past the cap tells a longer input. */
	char *b = malloc(AC_CODE_MAX + 2);
	ssize_t n = b ? ac_read_all(0, b, AC_CODE_MAX + 1) : -1;
	if (n < 0) {
		free(b);
		fprintf(stderr, "%s: --code-file -: cannot read standard input\n", cli_prog);
		return CLI_FAILED;
	}
	if ((size_t)n > AC_CODE_MAX) {
		free(b);
		return cli_usage_error("run", "--code-file -: more than %u bytes (1 MiB) of code",
				       AC_CODE_MAX);
	}
	b[n] = '\0';
	*buf = b;
	*len = (size_t)n;
	return CLI_OK;
}

/* The interpreter's command line for the code of st into argv (argv[2] points into the
 * code: st->code or *buf). */
static cli_status_t code_command(const run_state_t *st, char **buf, char *argv[4])
{
	size_t len = st->code ? strlen(st->code) : 0;
	const char *code = st->code;
	cli_status_t s = CLI_OK;
	if (st->code_file && (s = read_code_file(st->code_file, buf, &len)) != CLI_OK)
		return s;
	if (st->code_file)
		code = *buf;
	ac_error_t *e = NULL;
	char what[300];
	snprintf(what, sizeof(what), st->code ? "--code" : "--code-file '%s'",
		 st->code_file ? st->code_file : "");
	if (ac_code_check(code, len, what, &e) < 0 ||
	    ac_language_argv(st->language, code, len, argv, &e) < 0) {
		s = cli_usage_error("run", "%s", e ? e->msg : "invalid code");
		ac_error_free(e);
	}
	return s;
}

int cmd_run(int argc, char **argv)
{
	run_state_t st = {0};
	cli_sandbox_opts_t *so = &st.so;
	cli_args_t ca;
	_cleanup_free_ char *code_buf = NULL;
	char *code_argv[4] = {NULL};
	cli_status_t ps = cli_parse(&cli_cmd_run, argc, argv, &st, &ca);
	if (ps == CLI_OK && st.name && !st.keep)
		ps = cli_usage_error("run", "--name only applies with --keep");
	if (ps == CLI_OK && so->lifetime_opt && !st.keep)
		ps = cli_usage_error("run", "%s only applies with --keep", so->lifetime_opt);
	if (ps == CLI_OK)
		ps = check_code_opts(&st, &ca);
	if (ps == CLI_OK && st.language)
		ps = code_command(&st, &code_buf, code_argv);
	if (ps == CLI_OK && (st.server || st.token) && !st.pool)
		ps = cli_usage_error("run", "--server and --token only apply with --pool");
	if (ps == CLI_OK && st.pool &&
	    (st.keep || st.interactive || so->nfiles || so->o.init_script || so->o.agent ||
	     (!ca.cmd && !st.language)))
		ps = cli_usage_error("run", "--pool takes a command (or code) and no --keep, -i, "
					    "--file, --init-script or --agent");
	if (ps != CLI_OK) {
		cli_sandbox_opts_free(so);
		return cli_exit(ps);
	}
	if (st.pool) {
		cli_run_pool_t rp = {.server = st.server,
				     .token = st.token,
				     .config_path = so->config_path,
				     .argv = st.language ? code_argv : ca.cmd,
				     .env = so->env.n ? so->env.v : NULL,
				     .timeout = st.timeout,
				     .o = &so->o};
		int prc = cli_run_pool(&rp);
		cli_sandbox_opts_free(so);
		return prc;
	}
	bool keep = st.keep;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m) {
		cli_sandbox_opts_free(so);
		return code;
	}
	so->o.env = so->env.n ? so->env.v : NULL;
	so->o.name = st.name;
	so->o.language = st.language;
	if ((code = cli_apply_config(so, m)) != 0) {
		cli_sandbox_opts_free(so);
		ac_manager_free(m);
		return code;
	}
	ac_cmd_t cmd = {.argv = st.language ? code_argv : ca.cmd,
			.timeout = st.timeout,
			.stdin_open = st.interactive};
	int fds[3] = {0, 1, 2};
	ac_result_t res = {0};
	ac_error_t *e = NULL;
	char *kept = NULL;
	if (keep)
		/* The name goes out before any output of the command. */
		fflush(stdout);
	int rc = ac_manager_run(m, &so->o, &cmd, fds, keep, &kept, &res, &e);
	if (kept)
		fprintf(stderr, "%s: kept sandbox %s\n", cli_prog, kept);
	free(kept);
	/* A code run whose interpreter is missing says so, naming the image. */
	if (rc < 0 && st.language)
		ac_language_explain(m, &so->o, rc, &res, e);
	cli_sandbox_opts_free(so);
	ac_manager_free(m);
	if (rc < 0) {
		int ec = res.exit_code == 126 || res.exit_code == 127 ? res.exit_code
								      : ac_error_exit_code(e);
		cli_error(e);
		return ec;
	}
	return cli_result_exit(&res);
}
