/* Option parsing shared by the commands. Options take "--opt VALUE" or "--opt=VALUE". */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/config.h"
#include "agentcell/util.h"
#include "cli/cli.h"

/* 1: argv[*i] is option `name` and *val is its value; 0: not this option; <0: error. */
int cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
		  const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -cli_usage(cmd, "option '%s' needs a value", name);
	*val = argv[++*i];
	return 1;
}

static int parse_size(const char *cmd, const char *opt, const char *v, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	if (ac_parse_u64(v, min, max, out) < 0)
		return -cli_usage(cmd, "invalid %s '%s': expected a whole number from %llu to %llu",
				  opt, v, (unsigned long long)min, (unsigned long long)max);
	return 1;
}

static int parse_seconds(const char *cmd, const char *opt, const char *v, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (!*v || *end || errno || !(d > 0) || d > 31536000 || !isfinite(d))
		return -cli_usage(cmd, "invalid %s '%s': expected a positive number of seconds",
				  opt, v);
	*out = d;
	return 1;
}

static int add_env(const char *cmd, char **env, int *n, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq || eq == v)
		return -cli_usage(cmd, "invalid --env '%s': expected KEY=VALUE", v);
	if (*n >= 256)
		return -cli_usage(cmd, "too many --env options (at most 256)");
	env[(*n)++] = (char *)v;
	env[*n] = NULL;
	return 1;
}

int cli_parse_sandbox_opt(const char *cmd, int argc, char **argv, int *i, cli_sandbox_opts_t *so)
{
	const char *v;
	int r;
	const char *a = argv[*i];
	if ((r = cli_parse_lifetime_opt(cmd, argc, argv, i, so)) != 0)
		return r;
	if ((r = cli_opt_value(cmd, argc, argv, i, "--image", &v)) != 0) {
		if (r < 0)
			return r;
		if (!*v)
			return -cli_usage(cmd, "--image needs 'host' or a directory");
		so->o.image = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--memory", &v)) != 0) {
		so->o.memory_set = true;
		return r < 0 ? r
			     : parse_size(cmd, "--memory", v, AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB,
					  &so->o.memory_mb);
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--disk", &v)) != 0) {
		if (r < 0)
			return r;
		if (ac_disk_mb_parse(v, &so->o.disk_mb) < 0)
			return -cli_usage(cmd,
					  "invalid --disk '%s': expected a whole number of MB from "
					  "%llu to %llu, or 'unlimited'",
					  v, AC_DISK_MIN_MB, AC_DISK_MAX_MB);
		so->o.disk_set = true;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--pids", &v)) != 0) {
		so->o.pids_set = true;
		return r < 0 ? r
			     : parse_size(cmd, "--pids", v, AC_PIDS_MIN, AC_PIDS_MAX, &so->o.pids);
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--cpus", &v)) != 0) {
		if (r < 0)
			return r;
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (!*v || *end || errno || !(d >= AC_CPUS_MIN && d <= AC_CPUS_MAX))
			return -cli_usage(
			    cmd, "invalid --cpus '%s': expected a number from 0.01 to 1024", v);
		so->o.cpus = d;
		so->o.cpus_set = true;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--env", &v)) != 0)
		return r < 0 ? r : add_env(cmd, so->env, &so->nenv, v);
	if ((r = cli_opt_value(cmd, argc, argv, i, "--profile", &v)) != 0) {
		if (r < 0)
			return r;
		if (strcmp(v, "permissive") && strcmp(v, "moderate") && strcmp(v, "restrictive"))
			return -cli_usage(
			    cmd, "unknown profile '%s': use permissive, moderate or restrictive",
			    v);
		so->o.profile = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--config", &v)) != 0) {
		if (r < 0)
			return r;
		so->config_path = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--init-script-file", &v)) != 0) {
		if (r < 0)
			return r;
		size_t len;
		ac_error_t *e = NULL;
		free(so->init_script_buf);
		so->init_script_buf = NULL;
		if (ac_read_file_at(AT_FDCWD, v, AC_INIT_SCRIPT_MAX, &so->init_script_buf, &len,
				    &e) < 0) {
			fprintf(stderr, "agentcell: --init-script-file: %s\n", e ? e->msg : v);
			ac_error_free(e);
			return -1;
		}
		so->o.init_script = so->init_script_buf;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--init-script", &v)) != 0) {
		if (r < 0)
			return r;
		so->o.init_script = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--agent", &v)) != 0) {
		if (r < 0)
			return r;
		if (!ac_agent_keys(v))
			return -cli_usage(cmd,
					  "unknown agent '%s': use claude, codex, gemini, "
					  "opencode, amp, pi or copilot",
					  v);
		so->o.agent = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--file", &v)) != 0) {
		if (r < 0)
			return r;
		const char *colon = strrchr(v, ':');
		if (!colon || colon == v || colon[1] != '/')
			return -cli_usage(cmd,
					  "invalid --file '%s': use HOST_PATH:/path/in/sandbox", v);
		if (so->nfiles >= AC_FILES_MAX)
			return -cli_usage(cmd, "too many --file options (at most %d)",
					  AC_FILES_MAX);
		so->files[so->nfiles++] = (char *)v;
		so->files[so->nfiles] = NULL;
		so->o.files = so->files;
		return 1;
	}
	if (!strcmp(a, "--mount-cwd")) {
		so->o.mount_cwd = so->o.mount_cwd_set = true;
		return 1;
	}
	if (!strcmp(a, "--read-only")) {
		so->o.read_only = so->o.read_only_set = true;
		return 1;
	}
	if (!strcmp(a, "--network")) {
		so->o.network = so->o.network_set = true;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--backend", &v)) != 0) {
		if (r < 0)
			return r;
		if (strcmp(v, "native") && strcmp(v, "docker") && strcmp(v, "podman") &&
		    strcmp(v, "auto"))
			return -cli_usage(
			    cmd, "unknown backend '%s': use native, docker, podman or auto", v);
		so->o.backend = v;
		return 1;
	}
	return 0;
}

int cli_parse_exec_opt(const char *cmd, int argc, char **argv, int *i, cli_exec_opts_t *eo,
		       bool exec_only)
{
	const char *v;
	int r;
	const char *a = argv[*i];
	if ((r = cli_opt_value(cmd, argc, argv, i, "--timeout", &v)) != 0)
		return r < 0 ? r : parse_seconds(cmd, "--timeout", v, &eo->timeout);
	if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) {
		eo->interactive = true;
		return 1;
	}
	if (!exec_only)
		return 0;
	if ((r = cli_opt_value(cmd, argc, argv, i, "--env", &v)) != 0)
		return r < 0 ? r : add_env(cmd, eo->env, &eo->nenv, v);
	if ((r = cli_opt_value(cmd, argc, argv, i, "--workdir", &v)) != 0 ||
	    (r = cli_opt_value(cmd, argc, argv, i, "-w", &v)) != 0) {
		if (r < 0)
			return r;
		if (v[0] != '/')
			return -cli_usage(cmd,
					  "--workdir must be an absolute path inside the sandbox");
		eo->workdir = v;
		return 1;
	}
	if ((r = cli_opt_value(cmd, argc, argv, i, "--user", &v)) != 0 ||
	    (r = cli_opt_value(cmd, argc, argv, i, "-u", &v)) != 0) {
		if (r < 0)
			return r;
		if (!*v || strchr(v, ':') || strchr(v, '\n'))
			return -cli_usage(cmd, "invalid --user '%s'", v);
		eo->user = v;
		return 1;
	}
	if (!strcmp(a, "-t") || !strcmp(a, "--tty")) {
		eo->tty = true;
		return 1;
	}
	if (!strcmp(a, "-d") || !strcmp(a, "--detach")) {
		eo->detach = true;
		return 1;
	}
	if (!strcmp(a, "-it") || !strcmp(a, "-ti")) {
		eo->tty = eo->interactive = true;
		return 1;
	}
	return 0;
}

int cli_result_exit(const ac_result_t *r)
{
	if (r->timed_out)
		fprintf(stderr, "agentcell: command timed out\n");
	return r->exit_code;
}

int cli_apply_config(cli_sandbox_opts_t *so, ac_manager_t *m)
{
	ac_error_t *e = NULL;
	if (ac_config_load(so->config_path, ac_store_home(ac_manager_store(m)), &so->config, &e) <
		0 ||
	    ac_config_apply(so->config, &so->o, &e) < 0)
		return cli_error(e);
	/* What the config filled in (command-line arrays live in so itself). */
	so->config_arrays[0] = so->o.allow;
	so->config_arrays[1] = so->o.block;
	so->config_arrays[2] = so->o.files != so->files ? so->o.files : NULL;
	return 0;
}

void cli_sandbox_opts_free(cli_sandbox_opts_t *so)
{
	for (int i = 0; i < 3; i++)
		free(so->config_arrays[i]);
	json_decref(so->config);
	free(so->init_script_buf);
}

int cli_show(json_t *j, bool as_json, void (*text)(const json_t *j))
{
	if (as_json)
		cli_print_json(j);
	else
		text(j);
	json_decref(j);
	return 0;
}

void cli_print_field(const char *key, const json_t *v, int width)
{
	char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
	printf("%-*s %s\n", width, key, s ? s : "");
	free(s);
}

void cli_print_json(json_t *j)
{
	char *s =
	    json_dumps(j ? j : json_null(), JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (s)
		printf("%s\n", s);
	free(s);
}
