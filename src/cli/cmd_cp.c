/* agentcell cp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/files.h"
#include "agentcell/util.h"
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

int cmd_cp(int argc, char **argv)
{
	const char *args[2] = {NULL, NULL};
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cli_help("cp");
		if (argv[i][0] == '-' && argv[i][1])
			return cli_usage("cp", "unknown option '%s'", argv[i]);
		if (n == 2)
			return cli_usage("cp", "unexpected argument '%s'", argv[i]);
		args[n++] = argv[i];
	}
	if (n != 2)
		return cli_usage("cp", "expected SOURCE and DESTINATION");
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
int cmd_files(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return cli_help("files");
	bool recursive = false;
	const char *pos[3] = {NULL, NULL, NULL};
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cli_help("files");
		if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "--recursive")) {
			recursive = true;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1])
			return cli_usage("files", "unknown option '%s'", argv[i]);
		if (n == 3)
			return cli_usage("files", "unexpected argument '%s'", argv[i]);
		pos[n++] = argv[i];
	}
	if (n != 3)
		return cli_usage("files", "expected ls|cat|put|rm|mkdir NAME PATH");
	const char *op = pos[0], *name = pos[1], *path = pos[2];
	if (strcmp(op, "ls") && strcmp(op, "cat") && strcmp(op, "put") && strcmp(op, "rm") &&
	    strcmp(op, "mkdir"))
		return cli_usage("files", "unknown operation '%s': use ls, cat, put, rm or mkdir",
				 op);
	if (!ac_name_valid(name))
		return cli_usage("files", "invalid sandbox name '%s'", name);
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
					fprintf(stderr, "agentcell: input larger than %u bytes\n",
						AC_FILES_READ_MAX);
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
