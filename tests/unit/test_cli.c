/* Unit tests for the CLI's table-driven parser (src/cli/opts.c): options, their forms,
 * groups, positional arguments, the command part, errors and the help made from a table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The parser is part of the agentcell binary, not of the library: built in here. */
#include "cli/opts.c"

/* What opts.c takes from main.c. */
const cli_command_t *const cli_commands[] = {NULL};
int cli_error(ac_error_t *e)
{
	ac_error_free(e);
	return 1;
}

typedef struct inner {
	const char *path;
	int seen;
} inner_t;

typedef struct state {
	bool all, brief;
	const char *str;
	double secs;
	cli_env_t env;
	inner_t in;
} state_t;

/* A handler in a group: CLI_STATE finds the group's struct from the field. */
static cli_status_t opt_path(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	inner_t *in = CLI_STATE(inner_t, opt, t);
	if (v[0] != '/')
		return cli_usage_error(cmd, "not absolute");
	in->path = v;
	in->seen++;
	return CLI_OK;
}

static const cli_opt_t inner_opts[] = {
    CLI_FN("--path", 'p', "DIR", "a path\nsecond line", opt_path, inner_t, path),
    CLI_END,
};

static const cli_opt_t opts[] = {
    CLI_FLAG("--all", 'a', "all of them", state_t, all),
    CLI_FLAG("--brief", 'b', "short", state_t, brief),
    CLI_STRING("--str", 's', "S", "a string", state_t, str),
    CLI_FN("--secs", 0, "N", "seconds", cli_opt_seconds, state_t, secs),
    CLI_FN("--env", 0, "K=V", "variable", cli_opt_env, state_t, env),
    CLI_GROUP(inner_opts, "Inner:", offsetof(state_t, in)),
    CLI_END,
};

static const cli_command_t plain = {
    .name = "plain",
    .synopsis = "NAME [ARG...]",
    .opts = opts,
    .min_args = 1,
    .max_args = 3,
    .name_arg = 1,
    .missing = {"no name"},
    .extra = " (hint)",
};

static const cli_command_t withcmd = {
    .name = "withcmd",
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .command = true,
};

/* Runs cli_parse on a NULL-terminated list (copied: the parser reorders argv). */
static char *argv_buf[32];
static cli_status_t parse(const cli_command_t *c, state_t *st, cli_args_t *a, ...)
{
	va_list ap;
	int n = 0;
	va_start(ap, a);
	for (char *s; (s = va_arg(ap, char *)) && n < 31;)
		argv_buf[n++] = s;
	va_end(ap);
	argv_buf[n] = NULL;
	*st = (state_t){0};
	return cli_parse(c, n, argv_buf, st, a);
}

/* Runs fn with stderr (or stdout) in a file and returns what it wrote. */
static char *capture(int fd, void (*fn)(void *), void *arg)
{
	char tmpl[] = "/tmp/ac-test-cli-XXXXXX";
	int t = mkstemp(tmpl);
	assert_true(t >= 0);
	unlink(tmpl);
	fflush(fd == 1 ? stdout : stderr);
	int saved = dup(fd);
	dup2(t, fd);
	fn(arg);
	fflush(fd == 1 ? stdout : stderr);
	dup2(saved, fd);
	close(saved);
	static char buf[8192];
	ssize_t n = pread(t, buf, sizeof(buf) - 1, 0);
	close(t);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void test_forms(void **unused)
{
	state_t st;
	cli_args_t a;
	assert_int_equal(parse(&plain, &st, &a, "plain", "--all", "box", "--str=x y", "-b", "two",
			       "--secs", "1.5", "-p=/a", "--env", "K=V", "three", NULL),
			 CLI_OK);
	assert_true(st.all);
	assert_true(st.brief);
	assert_string_equal(st.str, "x y");
	assert_true(st.secs == 1.5);
	assert_int_equal(st.env.n, 1);
	assert_string_equal(st.env.v[0], "K=V");
	assert_null(st.env.v[1]);
	assert_string_equal(st.in.path, "/a");
	assert_int_equal(st.in.seen, 1);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.v[0], "box");
	assert_string_equal(a.v[1], "two");
	assert_string_equal(a.v[2], "three");
	assert_null(a.cmd);

	/* Short options with a separate value, bundled flags, a value that looks like an
	 * option, and "--" ending the options. */
	assert_int_equal(parse(&plain, &st, &a, "plain", "-s", "--all", "-ba", "box", "--",
			       "--brief", "-", NULL),
			 CLI_OK);
	assert_string_equal(st.str, "--all");
	assert_true(st.all && st.brief);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.v[1], "--brief");
	assert_string_equal(a.v[2], "-");
	assert_int_equal(parse(&plain, &st, &a, "plain", "box", "--path", "/x", NULL), CLI_OK);
	assert_string_equal(st.in.path, "/x");
}

static void test_command(void **unused)
{
	state_t st;
	cli_args_t a;
	/* Options before and after NAME; the first argument after it begins CMD, whose
	 * own options are left alone. */
	assert_int_equal(
	    parse(&withcmd, &st, &a, "withcmd", "-a", "box", "-b", "ls", "-a", "--", NULL), CLI_OK);
	assert_true(st.all && st.brief);
	assert_string_equal(a.v[0], "box");
	assert_int_equal(a.ncmd, 3);
	assert_string_equal(a.cmd[0], "ls");
	assert_string_equal(a.cmd[1], "-a");
	assert_null(a.cmd[3]);
	/* NAME after "--". */
	assert_int_equal(parse(&withcmd, &st, &a, "withcmd", "--", "box", "-a", NULL), CLI_OK);
	assert_false(st.all);
	assert_string_equal(a.v[0], "box");
	assert_int_equal(a.ncmd, 1);
	assert_string_equal(a.cmd[0], "-a");
	/* No command, no name. */
	assert_int_equal(parse(&withcmd, &st, &a, "withcmd", "box", NULL), CLI_USAGE_ERROR);
	assert_int_equal(parse(&withcmd, &st, &a, "withcmd", "box", "--", NULL), CLI_USAGE_ERROR);
	assert_int_equal(parse(&withcmd, &st, &a, "withcmd", "--", NULL), CLI_USAGE_ERROR);
	assert_int_equal(parse(&withcmd, &st, &a, "withcmd", "a/b", "ls", NULL), CLI_USAGE_ERROR);
}

struct errcase {
	const char *argv[6];
	const char *says;
};

static const struct errcase errs[] = {
    {{"plain", "box", "--bogus"},
     "agentcell: unknown option '--bogus' (see 'agentcell plain --help')\n"},
    {{"plain", "box", "-z"}, "unknown option '-z'"},
    {{"plain", "box", "-az"}, "unknown option '-az'"},
    {{"plain", "box", "-as"}, "unknown option '-as'"}, /* -s takes a value */
    {{"plain", "box", "--all=1"}, "option '--all' takes no value"},
    {{"plain", "box", "--str"}, "option '--str' needs a value"},
    {{"plain", "box", "-s"}, "option '-s' needs a value"},
    {{"plain", "box", "--secs", "-1"}, "invalid --secs '-1'"},
    {{"plain", "box", "--env", "NOEQ"}, "invalid --env 'NOEQ'"},
    {{"plain", "box", "-p", "rel"}, "not absolute"},
    {{"plain"}, "agentcell: no name (see"},
    {{"plain", "--all"}, "no name"},
    {{"plain", "a/b"}, "invalid sandbox name 'a/b': use 1-63"},
    {{"plain", "a", "b", "c", "d"}, "unexpected argument 'd' (hint)"},
    {{"plain", "a\033[2J"}, "invalid sandbox name 'a\\x1b[2J'"},
};

static const struct errcase *cur;
static cli_status_t cur_status;
static void run_err(void *arg)
{
	state_t st = {0};
	cli_args_t a;
	int n = 0;
	for (; n < 6 && cur->argv[n]; n++)
		argv_buf[n] = (char *)cur->argv[n];
	argv_buf[n] = NULL;
	cur_status = cli_parse(&plain, n, argv_buf, &st, &a);
}

static void test_errors(void **unused)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		cur = &errs[i];
		char *out = capture(2, run_err, NULL);
		assert_int_equal(cur_status, CLI_USAGE_ERROR);
		if (!strstr(out, cur->says))
			fail_msg("case %zu: '%s' does not say '%s'", i, out, cur->says);
		/* One line. */
		assert_non_null(strchr(out, '\n'));
		assert_string_equal(strchr(out, '\n'), "\n");
	}
	assert_int_equal(cli_exit(CLI_OK), 0);
	assert_int_equal(cli_exit(CLI_HELP), 0);
	assert_int_equal(cli_exit(CLI_USAGE_ERROR), 2);
	assert_int_equal(cli_exit(CLI_FAILED), 1);
}

static cli_status_t help_status;
static void run_help(void *arg)
{
	state_t st;
	cli_args_t a;
	help_status = parse(&plain, &st, &a, "plain", "--all", (char *)arg, "--bogus", NULL);
}

static void test_help(void **unused)
{
	/* --help and -h print the help and stop: the unknown option after them is not read. */
	char *out = capture(1, run_help, "--help");
	assert_int_equal(help_status, CLI_HELP);
	const char *want = "Usage: agentcell plain NAME [ARG...]\n"
			   "\n"
			   "Options:\n"
			   "  -h, --help            show this help\n"
			   "  -a, --all             all of them\n"
			   "  -b, --brief           short\n"
			   "  -s, --str S           a string\n"
			   "  --secs N              seconds\n"
			   "  --env K=V             variable\n"
			   "\n"
			   "Inner:\n"
			   "  -p, --path DIR        a path\n"
			   "                        second line\n";
	assert_string_equal(out, want);
	out = capture(1, run_help, "-h");
	assert_int_equal(help_status, CLI_HELP);
	assert_string_equal(out, want);
}

/* Invoked as agentkernel, errors and help name agentkernel. */
static void test_prog_name(void **unused)
{
	cli_prog = "agentkernel";
	cur = &errs[0];
	char *out = capture(2, run_err, NULL);
	assert_string_equal(
	    out, "agentkernel: unknown option '--bogus' (see 'agentkernel plain --help')\n");
	out = capture(1, run_help, "--help");
	assert_non_null(strstr(out, "Usage: agentkernel plain NAME"));
	cli_prog = "agentcell";
}

/* The sandbox options' short names (agentkernel's -e -B -p -c) and --no-network. */
typedef struct sb_state {
	cli_sandbox_opts_t so;
} sb_state_t;
static const cli_opt_t sb_opts[] = {
    CLI_GROUP(cli_sandbox_opts, NULL, offsetof(sb_state_t, so)),
    CLI_END,
};
static const cli_command_t sbcmd = {.name = "sb", .opts = sb_opts, .max_args = 1};

static cli_status_t parse_sb(sb_state_t *st, ...)
{
	va_list ap;
	int n = 0;
	va_start(ap, st);
	for (char *s; (s = va_arg(ap, char *)) && n < 31;)
		argv_buf[n++] = s;
	va_end(ap);
	argv_buf[n] = NULL;
	*st = (sb_state_t){0};
	cli_args_t a;
	return cli_parse(&sbcmd, n, argv_buf, st, &a);
}

static void test_sandbox_aliases(void **unused)
{
	sb_state_t st;
	assert_int_equal(parse_sb(&st, "sb", "-e", "A=1", "-B", "native", "-p", "restrictive", "-c",
				  "/x.toml", "--no-network", NULL),
			 CLI_OK);
	assert_int_equal(st.so.env.n, 1);
	assert_string_equal(st.so.env.v[0], "A=1");
	assert_string_equal(st.so.o.backend, "native");
	assert_string_equal(st.so.o.profile, "restrictive");
	assert_string_equal(st.so.config_path, "/x.toml");
	/* --no-network: network off, and said (a config's network = true cannot turn it on). */
	assert_true(st.so.no_network);
	assert_true(st.so.o.network_set);
	assert_false(st.so.o.network);
	assert_int_equal(parse_sb(&st, "sb", "--network", NULL), CLI_OK);
	assert_true(st.so.o.network && st.so.o.network_set && !st.so.no_network);
	/* Both, in either order: a usage error. */
	int saved = dup(2), dn = open("/dev/null", O_WRONLY);
	dup2(dn, 2);
	cli_status_t s1 = parse_sb(&st, "sb", "--network", "--no-network", NULL);
	cli_status_t s2 = parse_sb(&st, "sb", "--no-network", "--network", NULL);
	dup2(saved, 2);
	close(saved);
	close(dn);
	assert_int_equal(s1, CLI_USAGE_ERROR);
	assert_int_equal(s2, CLI_USAGE_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forms),     cmocka_unit_test(test_command),
	    cmocka_unit_test(test_errors),    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_prog_name), cmocka_unit_test(test_sandbox_aliases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
