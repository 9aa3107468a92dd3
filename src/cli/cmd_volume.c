/* agentcell volume: named volumes (create, ls, inspect, rm), mounted with --volume. */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct volume_state {
	char *labels[AC_LABELS_MAX + 1];
	int nlabels;
	bool json;
} volume_state_t;

static cli_status_t opt_vlabel(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	volume_state_t *vs = CLI_STATE(volume_state_t, opt, t);
	if (cli_check_label(cmd, v) != CLI_OK)
		return CLI_USAGE_ERROR;
	size_t klen = (size_t)(strchr(v, '=') - v);
	for (int k = 0; k < vs->nlabels; k++)
		if (!strncmp(vs->labels[k], v, klen + 1))
			return cli_usage_error(cmd, "label '%.*s' is given twice", (int)klen, v);
	if (vs->nlabels >= AC_LABELS_MAX)
		return cli_usage_error(cmd, "too many --label options (at most %d)", AC_LABELS_MAX);
	vs->labels[vs->nlabels++] = (char *)v;
	vs->labels[vs->nlabels] = NULL;
	return CLI_OK;
}

static const cli_opt_t volume_opts[] = {
    CLI_FN("--label", 0, "KEY=VALUE", "create: a label (repeatable)", opt_vlabel, volume_state_t,
	   labels),
    CLI_FLAG("--json", 0, "ls: a JSON array of the volumes (inspect always prints JSON)",
	     volume_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_volume = {
    .name = "volume",
    .summary = "create, list, inspect or remove named volumes (--volume NAME:PATH)",
    .synopsis = "create NAME [--label K=V] | ls [--json] | inspect NAME | rm NAME...",
    .about = "Named volumes are directories kept in $AGENTCELL_HOME/volumes/NAME/data that\n"
	     "sandboxes mount with --volume NAME:/path[:ro] (native backend). Their files outlive\n"
	     "every sandbox and several sandboxes may mount one at once. What a sandbox's root\n"
	     "writes there belongs to root on the host. 'rm' refuses a volume that a sandbox\n"
	     "mounts (remove the sandbox first) and deletes its files.\n"
	     "Names: 1-63 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit.\n",
    .opts = volume_opts,
    .min_args = 1,
    .max_args = CLI_ARGS_MANY,
    .missing = {"no action given: use create NAME, ls, inspect NAME or rm NAME"},
    .fn = cmd_volume,
};

static void print_volumes(const json_t *list)
{
	size_t i;
	json_t *v;
	if (!json_array_size(list)) {
		printf("no volumes\n");
		return;
	}
	printf("%-32s %-24s %10s  %s\n", "NAME", "CREATED", "SIZE", "USED BY");
	json_array_foreach(list, i, v)
	{
		char size[32], created[20];
		const json_t *bytes = json_object_get(v, "size");
		if (json_is_integer(bytes))
			cli_human_size(json_integer_value(bytes), size, sizeof(size));
		else
			snprintf(size, sizeof(size), "?");
		/* "2026-11-23T11:20:32.123Z" -> "2026-11-23 11:20:32" */
		snprintf(created, sizeof(created), "%s", ac_state_str(v, "created_at", "-"));
		if (strlen(created) > 10 && created[10] == 'T')
			created[10] = ' ';
		printf("%-32s %-24s %10s  ", ac_state_str(v, "name", "?"), created, size);
		size_t k;
		json_t *u;
		json_t *users = json_object_get(v, "used_by");
		json_array_foreach(users, k, u)
		{
			printf("%s%s", k ? "," : "", json_string_value(u));
		}
		printf("%s\n", json_array_size(users) ? "" : "-");
	}
}

int cmd_volume(int argc, char **argv)
{
	volume_state_t vs = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_volume, argc, argv, &vs, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *action = ca.v[0];
	bool create = !strcmp(action, "create"),
	     ls = !strcmp(action, "ls") || !strcmp(action, "list"),
	     inspect = !strcmp(action, "inspect"),
	     rm = !strcmp(action, "rm") || !strcmp(action, "remove");
	if (!create && !ls && !inspect && !rm)
		return cli_usage("volume", "unknown action '%s': use create, ls, inspect or rm",
				 action);
	if (ls && ca.n > 1)
		return cli_usage("volume", "unexpected argument '%s'", ca.v[1]);
	if ((create || inspect) && ca.n != 2)
		return ca.n < 2
			   ? cli_usage("volume", "no volume name given: use volume %s NAME", action)
			   : cli_usage("volume", "unexpected argument '%s'", ca.v[2]);
	if (rm && ca.n < 2)
		return cli_usage("volume", "no volume name given: use volume rm NAME...");
	if (vs.nlabels && !create)
		return cli_usage("volume", "--label goes with create");
	if (vs.json && !ls)
		return cli_usage("volume", "--json goes with ls");
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	json_t *out = NULL;
	if (ls) {
		int rc = ac_manager_volume_list(m, &out, &e);
		ac_manager_free(m);
		return rc < 0 ? cli_error(e) : cli_show(out, vs.json, print_volumes);
	}
	if (create || inspect) {
		int rc = create ? ac_manager_volume_create(m, ca.v[1], vs.labels, NULL, &e)
				: ac_manager_volume_inspect(m, ca.v[1], &out, &e);
		ac_manager_free(m);
		if (rc < 0)
			return cli_error(e);
		if (create)
			printf("%s\n", ca.v[1]);
		else
			cli_print_json(out);
		json_decref(out);
		return 0;
	}
	/* rm: each name on its own; the first failure's exit code, after trying them all. */
	for (int i = 1; i < ca.n; i++) {
		if (ac_manager_volume_remove(m, ca.v[i], &e) < 0) {
			int c = cli_error(e);
			e = NULL;
			if (!code)
				code = c;
			continue;
		}
		printf("%s\n", ca.v[i]);
	}
	ac_manager_free(m);
	return code;
}
