/* agentcell cp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/files.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "cli/cli.h"

/* "NAME:/path" -> name and path; anything else is a host path. */
static bool sandbox_ref(const char *arg, char *name, size_t len, const char **path)
{
	const char *colon = strchr(arg, ':');
	if (!colon || (size_t)(colon - arg) >= len || colon[1] != '/')
		return false;
	memcpy(name, arg, (size_t)(colon - arg));
	name[colon - arg] = 0;
	if (!ac_name_valid(name))
		return false;
	*path = colon + 1;
	return true;
}

const cli_command_t cli_cmd_cp = {
    .name = "cp",
    .summary = "copy files and directory trees into or out of a sandbox",
    .synopsis = "HOST_PATH NAME:/path\n       agentcell cp NAME:/path HOST_PATH",
    .about =
	"Copies a file or a directory tree (binary-safe, modes kept, setuid/setgid bits\n"
	"dropped) into or out of sandbox NAME, running or stopped. A destination that is an\n"
	"existing directory receives the source under its own name. Paths in the sandbox are\n"
	"resolved inside its root: '..' and symbolic links never lead out of it. Files copied\n"
	"in belong to the sandbox's root. On the kubernetes backend the sandbox must run (a\n"
	"stopped one has no pod) and its image needs tar.\n",
    .min_args = 2,
    .max_args = 2,
    .missing = {"expected SOURCE and DESTINATION"},
    .fn = cmd_cp,
};

int cmd_cp(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_cp, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *args[2] = {ca.v[0], ca.v[1]};
	char sname[64], dname[64];
	const char *spath, *dpath;
	bool s_in = sandbox_ref(args[0], sname, sizeof(sname), &spath);
	bool d_in = sandbox_ref(args[1], dname, sizeof(dname), &dpath);
	if (s_in == d_in)
		return cli_usage("cp", "exactly one of SOURCE and DESTINATION must be NAME:/path");
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = d_in ? ac_files_copy_in(m, dname, args[0], dpath, &e)
		      : ac_files_copy_out(m, sname, spath, args[1], &e);
	ac_manager_free(m);
	return rc < 0 ? cli_error(e) : 0;
}

/* agentcell files ls|cat|put|rm|mkdir NAME PATH: the library's file operations. */
typedef struct files_state {
	bool recursive;
} files_state_t;

static const cli_opt_t files_opts[] = {
    CLI_FLAG("--recursive", 'r', "with rm: delete a directory tree", files_state_t, recursive),
    CLI_END,
};

const cli_command_t cli_cmd_files = {
    .name = "files",
    .summary = "list, read, write and delete files in a sandbox",
    .synopsis = "ls|cat|put|rm|mkdir NAME PATH",
    .about = "  ls     list directory PATH (type, mode, size, name)\n"
	     "  cat    print file PATH\n"
	     "  put    write standard input to file PATH (parent directories are created)\n"
	     "  rm     delete PATH (-r, --recursive: a directory tree)\n"
	     "  mkdir  create directory PATH and its parents\n\n"
	     "Works on running and stopped sandboxes (kubernetes: running only, and the image\n"
	     "needs tar); paths are resolved inside the sandbox's root.\n",
    .opts = files_opts,
    .min_args = 3,
    .max_args = 3,
    .missing = {"expected ls|cat|put|rm|mkdir NAME PATH"},
    .fn = cmd_files,
};

int cmd_files(int argc, char **argv)
{
	files_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_files, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	bool recursive = st.recursive;
	const char *op = ca.v[0], *name = ca.v[1], *path = ca.v[2];
	if (strcmp(op, "ls") && strcmp(op, "cat") && strcmp(op, "put") && strcmp(op, "rm") &&
	    strcmp(op, "mkdir"))
		return cli_usage("files", "unknown operation '%s': use ls, cat, put, rm or mkdir",
				 op);
	if (cli_check_name("files", name) != CLI_OK)
		return CLI_EXIT_USAGE;
	if (path[0] != '/')
		return cli_usage("files", "'%s' is not an absolute path", path);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = 0;
	if (!strcmp(op, "ls")) {
		json_t *list = NULL;
		rc = ac_files_list(m, name, path, &list, &e);
		size_t i;
		json_t *it;
		json_array_foreach(list, i, it)
		    printf("%-7s %04o %10lld %s\n", json_string_value(json_object_get(it, "type")),
			   (unsigned)json_integer_value(json_object_get(it, "mode")),
			   (long long)json_integer_value(json_object_get(it, "size")),
			   json_string_value(json_object_get(it, "name")));
		json_decref(list);
	} else if (!strcmp(op, "cat")) {
		char *data = NULL;
		size_t len = 0;
		rc = ac_files_read(m, name, path, &data, &len, &e);
		if (rc == 0)
			ac_write_all(1, data, len);
		free(data);
	} else if (!strcmp(op, "put")) {
		size_t cap = 1 << 16, len = 0;
		char *buf = malloc(cap);
		ssize_t r;
		while (buf && (r = read(0, buf + len, cap - len)) > 0) {
			len += (size_t)r;
			if (len == cap) {
				if (cap >= AC_FILES_READ_MAX) {
					free(buf);
					ac_manager_free(m);
					fprintf(stderr, "%s: input larger than %u bytes\n",
						cli_prog, AC_FILES_READ_MAX);
					return 1;
				}
				char *nb = realloc(buf, cap *= 2);
				if (!nb)
					break;
				buf = nb;
			}
		}
		rc = ac_files_write(m, name, path, buf ? buf : "", len, 0644, &e);
		free(buf);
	} else if (!strcmp(op, "rm")) {
		rc = ac_files_delete(m, name, path, recursive, &e);
	} else {
		rc = ac_files_mkdir(m, name, path, &e);
	}
	ac_manager_free(m);
	return rc < 0 ? cli_error(e) : 0;
}
