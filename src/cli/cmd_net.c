/* agentcell secret (the secret store) and agentcell net-log (a sandbox's connections). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct secret_state {
	const char *from_env;
	bool json;
} secret_state_t;

static const cli_opt_t secret_opts[] = {
    CLI_STRING("--from-env", 0, "VAR", "set: take the value from environment variable VAR",
	       secret_state_t, from_env),
    CLI_FLAG("--json", 0, "ls: a JSON array of {key, bytes, updated_at}", secret_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_secret = {
    .name = "secret",
    .summary = "set, list or remove the secrets that --secret binds to hosts",
    .synopsis = "set KEY [--from-env VAR] | ls [--json] | rm KEY",
    .about = "Keeps secret values in $AGENTCELL_HOME/secrets (0600), never in a sandbox's state,\n"
	     "the audit log or any log. 'set' reads the value from standard input (one line;\n"
	     "the final newline is dropped; without echo on a terminal) or from --from-env,\n"
	     "never from the command line. A sandbox made with --secret KEY@HOST sees only a\n"
	     "placeholder; agentcell's proxy puts the value into its requests to HOST.\n",
    .opts = secret_opts,
    .min_args = 1,
    .max_args = 2,
    .missing = {"no action given: use set KEY, ls or rm KEY"},
    .fn = cmd_secret,
};

static void print_secrets(const json_t *list)
{
	size_t i;
	json_t *s;
	if (!json_array_size(list)) {
		printf("no secrets\n");
		return;
	}
	printf("%-32s %8s  %s\n", "KEY", "BYTES", "UPDATED");
	json_array_foreach(list, i, s)
	{
		printf("%-32s %8lld  %s\n", ac_state_str(s, "key", "?"),
		       (long long)json_integer_value(json_object_get(s, "bytes")),
		       ac_state_str(s, "updated_at", "-"));
	}
}

int cmd_secret(int argc, char **argv)
{
	secret_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_secret, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *action = ca.v[0], *key = ca.n > 1 ? ca.v[1] : NULL;
	bool set = !strcmp(action, "set"), rm = !strcmp(action, "rm"), ls = !strcmp(action, "ls");
	if (!set && !rm && !ls)
		return cli_usage("secret", "unknown action '%s': use set, ls or rm", action);
	if ((set || rm) && !key)
		return cli_usage("secret", "no key given: use secret %s KEY", action);
	if (ls && key)
		return cli_usage("secret", "unexpected argument '%s'", key);
	if (op.from_env && !set)
		return cli_usage("secret", "--from-env goes with set");
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = 0;
	if (ls) {
		json_t *list = NULL;
		rc = ac_manager_secret_list(m, &list, &e);
		ac_manager_free(m);
		return rc < 0 ? cli_error(e) : cli_show(list, op.json, print_secrets);
	}
	if (rm) {
		rc = ac_manager_secret_remove(m, key, &e);
	} else {
		size_t len = 0;
		char *value = NULL;
		if (op.from_env) {
			const char *v = getenv(op.from_env);
			if (!v) {
				ac_manager_free(m);
				return cli_usage("secret", "environment variable %s is not set",
						 op.from_env);
			}
			value = strdup(v);
			len = value ? strlen(value) : 0;
		} else {
			/* at most 64 KiB + 1: the store refuses more, with its message */
			char prompt[320];
			snprintf(prompt, sizeof(prompt), "Value of %s: ", key);
			value = cli_read_input(prompt, true, false, 65538, &len);
		}
		if (!value) {
			ac_manager_free(m);
			fprintf(stderr, "%s: cannot read the secret's value\n", cli_prog);
			return 1;
		}
		rc = ac_manager_secret_set(m, key, value, len, &e);
		explicit_bzero(value, len);
		free(value);
	}
	ac_manager_free(m);
	return rc < 0 ? cli_error(e) : 0;
}

typedef struct netlog_state {
	uint64_t limit;
	bool json;
} netlog_state_t;

static const cli_opt_t netlog_opts[] = {
    CLI_FN("--limit", 0, "N", "only the last N connections", cli_opt_limit, netlog_state_t, limit),
    CLI_FLAG("--json", 0, "a JSON array of the audit records", netlog_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_net_log = {
    .name = "net-log",
    .summary = "show a sandbox's connections through its egress proxy",
    .synopsis = "NAME [--limit N] [--json]",
    .about = "Shows every connection sandbox NAME made (or was refused) through agentcell's\n"
	     "egress proxy, and every connection to its published ports, oldest first: host,\n"
	     "port, verdict and reason, the address connected to, bytes each way, the secrets\n"
	     "injected (by key). From the audit log: it outlives the sandbox.\n",
    .opts = netlog_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .fn = cmd_net_log,
};

static void print_netlog(const json_t *recs)
{
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
	{
		const json_t *d = json_object_get(r, "details");
		const char *verdict = ac_state_str(d, "verdict", "?");
		char target[300];
		snprintf(target, sizeof(target), "%s:%lld", ac_state_str(d, "host", "?"),
			 (long long)json_integer_value(json_object_get(d, "port")));
		printf("%-24s %-8s %-8s %-40s", ac_state_str(r, "timestamp", "?"),
		       ac_state_str(d, "method", "-"), verdict, target);
		if (!strcmp(verdict, "allowed"))
			printf(" %s out=%lld in=%lld", ac_state_str(d, "address", "-"),
			       (long long)json_integer_value(json_object_get(d, "bytes_out")),
			       (long long)json_integer_value(json_object_get(d, "bytes_in")));
		json_t *inj = json_object_get(d, "injected");
		if (json_array_size(inj)) {
			printf(" injected=");
			size_t k;
			json_t *key;
			json_array_foreach(inj, k, key)
			{
				printf("%s%s", k ? "," : "", json_string_value(key));
			}
		}
		if (json_object_get(d, "reason"))
			printf(" (%s)", ac_state_str(d, "reason", ""));
		printf("\n");
	}
}

int cmd_net_log(int argc, char **argv)
{
	netlog_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_net_log, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *recs = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_net_log(m, ca.v[0], (size_t)op.limit, &recs, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(recs, op.json, print_netlog);
}
