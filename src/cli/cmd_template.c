/* agentcell snapshot (a stopped sandbox's changes saved as a template) and agentcell
 * template ls | rm (the templates in the image store). */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct snapshot_state {
	const char *description;
	bool force, json;
} snapshot_state_t;

static const cli_opt_t snapshot_opts[] = {
    CLI_STRING("--description", 0, "TEXT",
	       "what the template is for: sandboxes made from it show it as\n"
	       "template_help_text",
	       snapshot_state_t, description),
    CLI_FLAG("--force", 0,
	     "replace an existing template of that name (sandboxes made from\n"
	     "the old one keep it)",
	     snapshot_state_t, force),
    CLI_FLAG("--json", 0, "print the template's image record as JSON", snapshot_state_t, json),
    CLI_END,
};

const cli_command_t cli_cmd_snapshot = {
    .name = "snapshot",
    .summary = "save a stopped sandbox's files as a template for new sandboxes",
    .synopsis = "NAME TEMPLATE [--description TEXT] [--force] [--json]",
    .about = "Saves what sandbox NAME changed (its writable layer: on the host base the files\n"
	     "written under /, /usr and the other host directories) as one image layer on top\n"
	     "of its image's layers, and keeps the result as template TEMPLATE (1-63 of a-z\n"
	     "0-9 _ . -) in agentcell's image store. 'agentcell create --template TEMPLATE'\n"
	     "starts new sandboxes from it, with the image's Env, WorkingDir, User, Entrypoint\n"
	     "and Cmd. NAME must be stopped (agentcell stop NAME). native backend only.\n",
    .opts = snapshot_opts,
    .min_args = 2,
    .max_args = 2,
    .name_arg = 1,
    .missing = {"no sandbox given: use snapshot NAME TEMPLATE", "no template name given: use "
								"snapshot NAME TEMPLATE"},
    .fn = cmd_snapshot,
};

int cmd_snapshot(int argc, char **argv)
{
	snapshot_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_snapshot, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *name = ca.v[0], *tmpl = ca.v[1];
	if (!ac_template_name_valid(tmpl))
		return cli_usage("snapshot",
				 "invalid template name '%s': use 1-63 of a-z 0-9 _ . -, starting "
				 "with a letter or digit",
				 tmpl);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	json_t *rec = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_snapshot(m, name, tmpl, op.description, op.force, &rec, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	if (op.json) {
		cli_print_json(rec);
	} else {
		const char *id = ac_state_str(rec, "id", "");
		printf("%s\n", tmpl);
		fprintf(stderr, "%s: template %s (%.19s) from sandbox %s\n", cli_prog, tmpl, id,
			name);
	}
	json_decref(rec);
	return 0;
}

typedef struct template_state {
	bool json;
} template_state_t;

static const cli_opt_t template_opts[] = {
    CLI_FLAG("--json", 0, "ls: the templates' image records as a JSON array", template_state_t,
	     json),
    CLI_END,
};

const cli_command_t cli_cmd_template = {
    .name = "template",
    .summary = "list or remove templates (made with 'agentcell snapshot')",
    .synopsis = "ls [--json] | rm TEMPLATE",
    .about = "ls lists the templates: name, what lies under their layers (host, oci or an\n"
	     "image directory), the sandbox they were taken from, when, their size unpacked\n"
	     "and their description. rm removes one; it is refused while a sandbox made from it\n"
	     "exists. Files nothing uses any more go with 'agentcell image prune'.\n",
    .opts = template_opts,
    .min_args = 1,
    .max_args = 2,
    .missing = {"no action given: use ls or rm TEMPLATE"},
    .fn = cmd_template,
};

static void print_templates(const json_t *list)
{
	if (!json_array_size(list)) {
		printf("no templates (make one with: agentcell snapshot SANDBOX TEMPLATE)\n");
		return;
	}
	printf("%-24s %-10s %-20s %-21s %10s  %s\n", "NAME", "BASE", "FROM", "CREATED", "SIZE",
	       "DESCRIPTION");
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r)
	{
		const json_t *t = json_object_get(r, "template");
		char size[32];
		cli_human_size(json_integer_value(json_object_get(r, "size")), size, sizeof(size));
		const char *base = ac_state_str(r, "base", "oci");
		printf("%-24s %-10s %-20s %-21.20s %10s  %s\n", ac_state_str(t, "name", "?"),
		       base[0] == '/' ? "dir" : base, ac_state_str(t, "from", "-"),
		       ac_state_str(t, "created_at", "-"), size,
		       ac_state_str(t, "description", ""));
	}
}

int cmd_template(int argc, char **argv)
{
	template_state_t op = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_template, argc, argv, &op, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *action = ca.v[0], *tmpl = ca.n > 1 ? ca.v[1] : NULL;
	bool ls = !strcmp(action, "ls") || !strcmp(action, "list");
	bool rm = !strcmp(action, "rm") || !strcmp(action, "remove");
	if (!ls && !rm)
		return cli_usage("template", "unknown action '%s': use ls or rm TEMPLATE", action);
	if (rm && !tmpl)
		return cli_usage("template", "no template given: use template rm TEMPLATE");
	if (ls && tmpl)
		return cli_usage("template", "unexpected argument '%s'", tmpl);
	if (rm && !ac_template_name_valid(tmpl))
		return cli_usage("template", "invalid template name '%s'", tmpl);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	json_t *out = NULL;
	int rc = ls ? ac_manager_template_list(m, &out, &e)
		    : ac_manager_template_remove(m, tmpl, &out, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	if (ls)
		return cli_show(out, op.json, print_templates);
	json_decref(out);
	printf("%s\n", tmpl);
	return 0;
}
