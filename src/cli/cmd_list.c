/* agentcell list | info */
#include <stdio.h>
#include <string.h>

#include "agentcell/util.h"
#include "cli/cli.h"

static int parse_json_flag(const char *cmd, int argc, char **argv, bool *json, const char **name,
			   bool want_name)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cli_help(cmd);
			return -1000;
		}
		if (!strcmp(a, "--json"))
			*json = true;
		else if (a[0] == '-')
			return -cli_usage(cmd, "unknown option '%s'", a);
		else if (want_name && !*name)
			*name = a;
		else
			return -cli_usage(cmd, "unexpected argument '%s'", a);
	}
	if (want_name && !*name)
		return -cli_usage(cmd, "no sandbox name given");
	if (want_name && !ac_name_valid(*name))
		return -cli_usage(cmd, "invalid sandbox name '%s'", *name);
	return 0;
}

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

static void print_info(const json_t *st)
{
	static const char *keys[] = {"name",
				     "uuid",
				     "status",
				     "backend",
				     "image",
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
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(st, "env"), i, it)
	    printf("%-17s %s\n", i ? "" : "env", json_string_value(it));
}

int cmd_list(int argc, char **argv)
{
	bool json = false;
	char *sel[AC_LABELS_MAX + 1] = {0};
	int nsel = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return cli_help("list");
		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if (!strcmp(a, "--label") || !strncmp(a, "--label=", 8)) {
			if (a[7] == '=')
				v = a + 8;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return cli_usage("list", "option '--label' needs a value");
			char key[AC_LABEL_KEY_MAX + 1];
			const char *val;
			ac_error_t *le = NULL;
			if (ac_label_parse(v, key, sizeof(key), &val, &le) < 0) {
				cli_usage("list", "--label: %s", le->msg);
				ac_error_free(le);
				return CLI_EXIT_USAGE;
			}
			if (nsel >= AC_LABELS_MAX)
				return cli_usage("list", "too many --label options");
			sel[nsel++] = (char *)v;
			continue;
		}
		if (a[0] == '-')
			return cli_usage("list", "unknown option '%s'", a);
		return cli_usage("list", "unexpected argument '%s'", a);
	}
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *all = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_list_labeled(m, sel, &all, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(all, json, print_sandboxes);
}

int cmd_info(int argc, char **argv)
{
	bool json = false;
	const char *name = NULL;
	int r = parse_json_flag("info", argc, argv, &json, &name, true);
	if (r == -1000)
		return 0;
	if (r < 0)
		return -r;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *st = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_info(m, name, &st, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(st, json, print_info);
}

int cmd_agents(int argc, char **argv)
{
	bool json = false;
	const char *name = NULL;
	int r = parse_json_flag("agents", argc, argv, &json, &name, false);
	if (r == -1000)
		return 0;
	if (r < 0)
		return -r;
	json_t *t = ac_agents_table();
	if (json) {
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
