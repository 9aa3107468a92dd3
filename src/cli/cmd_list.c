/* agentcell list | info */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct json_state {
	bool json;
} json_state_t;

static const cli_opt_t info_opts[] = {
    CLI_FLAG("--json", 0, "the full state as JSON", json_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_info = {
    .name = "info",
    .summary = "show one sandbox",
    .synopsis = "NAME [--json]",
    .about = "Shows sandbox NAME's settings and status.\n",
    .opts = info_opts,
    .min_args = 1,
    .max_args = 1,
    .name_arg = 1,
    .fn = cmd_info,
};

static const cli_opt_t agents_opts[] = {
    CLI_FLAG("--json", 0, "the table as JSON", json_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_agents = {
    .name = "agents",
    .summary = "list the coding agents and the API keys passed for them",
    .synopsis = "[--json]",
    .about = "Lists the agents of 'create --agent' and the environment variables passed for each\n"
	     "(from your environment at start; never written to the state or the audit log).\n",
    .opts = agents_opts,
    .fn = cmd_agents,
};

typedef struct list_state {
	bool json, all;
	char *sel[AC_LABELS_MAX + 1];
	int nsel;
} list_state_t;

static cli_status_t opt_select(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	list_state_t *st = CLI_STATE(list_state_t, opt, t);
	char key[AC_LABEL_KEY_MAX + 1];
	const char *val;
	ac_error_t *le = NULL;
	if (ac_label_parse(v, key, sizeof(key), &val, &le) < 0) {
		cli_usage(cmd, "--label: %s", le->msg);
		ac_error_free(le);
		return CLI_USAGE_ERROR;
	}
	if (st->nsel >= AC_LABELS_MAX)
		return cli_usage_error(cmd, "too many --label options");
	st->sel[st->nsel++] = (char *)v;
	return CLI_OK;
}

static const cli_opt_t list_opts[] = {
    CLI_FLAG("--json", 0, "JSON array of sandbox states", list_state_t, json),
    CLI_FN("--label", 0, "KEY=VALUE", "only sandboxes with this label (repeatable: all must match)",
	   opt_select, list_state_t, sel),
    CLI_FLAG("--all", 'a', "also the sandboxes of serve's warm pool (serve --pool)", list_state_t,
	     all),
    CLI_END,
};

const cli_command_t cli_cmd_list = {
    .name = "list",
    .alias = "ls",
    .summary = "list sandboxes",
    .synopsis = "[--json] [--all] [--label KEY=VALUE]...",
    .about = "Lists every sandbox with its status.\n",
    .opts = list_opts,
    .fn = cmd_list,
};

static void print_sandboxes(const json_t *all)
{
	printf("%-24s %-8s %-7s %-8s %-6s %-24s %s\n", "NAME", "STATUS", "BACKEND", "MEMORY",
	       "CPUS", "CREATED", "IMAGE");
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		char mem[32];
		long long mb = ac_state_int(st, "memory_mb", 0);
		if (mb)
			snprintf(mem, sizeof(mem), "%lldM", mb);
		else
			snprintf(mem, sizeof(mem), "-");
		printf("%-24s %-8s %-7s %-8s %-6g %-24s %s\n", ac_state_str(st, "name", "?"),
		       ac_state_str(st, "status", "?"), ac_state_str(st, "backend", "native"), mem,
		       ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1)),
		       ac_state_str(st, "created_at", "-"), ac_state_str(st, "image", "host"));
	}
}

static void print_list_field(const char *key, const json_t *arr)
{
	if (!json_array_size(arr))
		return;
	printf("%-17s", key);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) printf("%s%s", i ? ", " : " ", json_string_value(v));
	printf("\n");
}

/* The network: egress through the proxy (its policy), secrets by key, published ports. */
static void print_net(const json_t *st)
{
	const json_t *net = json_object_get(st, "net");
	if (!json_is_object(net)) {
		printf("%-17s %s\n", "network",
		       json_is_true(json_object_get(st, "network")) ? "on" : "off (only lo)");
		return;
	}
	if (json_is_true(json_object_get(net, "proxy")))
		printf("%-17s on, through agentcell's proxy (127.0.0.1:3128 inside)%s\n", "network",
		       json_is_true(json_object_get(net, "allowlist_only")) ? ", allowlist only"
									    : "");
	else
		printf("%-17s off (only lo; published ports only)\n", "network");
	print_list_field("allow_hosts", json_object_get(net, "allow_hosts"));
	print_list_field("block_hosts", json_object_get(net, "block_hosts"));
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(net, "secrets"), i, b)
	{
		printf("%-17s %s -> %s (%s: %s...)\n", i ? "" : "secrets",
		       ac_state_str(b, "key", "?"), ac_state_str(b, "host", "?"),
		       ac_state_str(b, "header", "?"), ac_state_str(b, "prefix", ""));
	}
	json_array_foreach(json_object_get(net, "publish"), i, b)
	{
		const char *a = ac_state_str(b, "address", "127.0.0.1");
		bool v6 = strchr(a, ':') != NULL;
		printf("%-17s %s%s%s:%lld -> %lld\n", i ? "" : "published", v6 ? "[" : "", a,
		       v6 ? "]" : "",
		       (long long)json_integer_value(json_object_get(b, "host_port")),
		       (long long)json_integer_value(json_object_get(b, "port")));
	}
}

static void print_info(const json_t *st)
{
	static const char *keys[] = {"name",
				     "uuid",
				     "status",
				     "backend",
				     "image",
				     "image_id",
				     "created_from_template",
				     "template_help_text",
				     "workdir",
				     "user",
				     "memory_mb",
				     "cpus",
				     "pids_limit",
				     "read_only",
				     "mount_cwd",
				     "profile",
				     "created_at",
				     "last_activity_at",
				     "pid",
				     "description",
				     "labels",
				     "ttl_seconds",
				     "expires_at",
				     "lifecycle_policy",
				     "archived_at",
				     "archived_reason"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		if (v && !json_is_null(v))
			cli_print_field(keys[i], v, 17);
	}
	json_t *disk = json_object_get(st, "disk_mb");
	if (json_integer_value(disk) > 0)
		printf("%-17s %lld MB\n", "disk_mb", (long long)json_integer_value(disk));
	else if (disk)
		printf("%-17s unlimited\n", "disk_mb");
	else if (!strcmp(ac_state_str(st, "backend", "native"), "native"))
		printf("%-17s unlimited (made before disk limits existed)\n", "disk_mb");
	print_net(st);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(st, "env"), i, it)
	    printf("%-17s %s\n", i ? "" : "env", json_string_value(it));
}

int cmd_list(int argc, char **argv)
{
	list_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_list, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *all = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_list_labeled(m, st.sel, &all, &e);
	if (rc == 0 && st.all) {
		/* The pool's sandboxes have no labels: shown only when no label is asked. */
		json_decref(all);
		all = NULL;
		rc = ac_manager_list_all(m, &all, &e);
		if (rc == 0 && st.nsel)
			for (size_t i = 0; i < json_array_size(all); i++)
				if (!ac_labels_match(json_array_get(all, i), st.sel))
					json_array_remove(all, i--);
	}
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(all, st.json, print_sandboxes);
}

int cmd_info(int argc, char **argv)
{
	json_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_info, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0];
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *info = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_info(m, name, &info, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(info, st.json, print_info);
}

int cmd_agents(int argc, char **argv)
{
	json_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_agents, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	json_t *t = ac_agents_table();
	if (st.json) {
		cli_print_json(t);
	} else {
		printf("%-9s %-44s %s\n", "AGENT", "API KEYS (from your environment)", "CLI");
		size_t i;
		json_t *a;
		json_array_foreach(t, i, a)
		{
			char keys[128] = "";
			size_t k;
			json_t *key;
			json_array_foreach(json_object_get(a, "env"), k, key)
			{
				size_t l = strlen(keys);
				snprintf(keys + l, sizeof(keys) - l, "%s%s", k ? " " : "",
					 json_string_value(key));
			}
			printf("%-9s %-44s %s\n", ac_state_str(a, "name", ""), keys,
			       ac_state_str(a, "cli", ""));
		}
		printf("\nThe CLI is installed once sandboxes have network access (a later "
		       "release); until then\n"
		       "install it into an image or into /usr inside the sandbox yourself.\n");
	}
	json_decref(t);
	return 0;
}
