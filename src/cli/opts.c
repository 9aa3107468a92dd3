/* The command-line parser every command uses (cli_parse), the help made from the same
 * tables (cli_help), and the option groups and handlers several commands share. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/config.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "cli/cli.h"

/* ------------------------------------------------------------------ errors */

const char *cli_prog = "agentcell";

__attribute__((format(printf, 2, 0))) static void vusage(const char *cmd, const char *fmt,
							 va_list ap)
{
	/* Usage errors quote arguments: escaped like every error message. */
	char raw[1024], msg[1024];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	ac_escape_controls(raw, msg, sizeof(msg));
	fprintf(stderr, "%s: %s", cli_prog, msg);
	if (cmd)
		fprintf(stderr, " (see '%s %s --help')\n", cli_prog, cmd);
	else
		fprintf(stderr, " (see '%s --help')\n", cli_prog);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vusage(cmd, fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

cli_status_t cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vusage(cmd, fmt, ap);
	va_end(ap);
	return CLI_USAGE_ERROR;
}

int cli_exit(cli_status_t s)
{
	switch (s) {
	case CLI_OK:
	case CLI_HELP:
		return 0;
	case CLI_USAGE_ERROR:
		return CLI_EXIT_USAGE;
	case CLI_FAILED:
		break;
	}
	return 1;
}

cli_status_t cli_check_name(const char *cmd, const char *name)
{
	if (ac_name_valid(name))
		return CLI_OK;
	return cli_usage_error(cmd,
			       "invalid sandbox name '%s': use 1-63 characters of A-Z a-z 0-9 _ "
			       "-, starting and ending with a letter or digit",
			       name);
}

/* ------------------------------------------------------------------ the parser */

typedef struct found {
	const cli_opt_t *opt;
	char *target;
} found_t;

/* The option of table t (and its groups) called name[0..len) ("--x") or, with len 0,
 * whose short name is c; targets are relative to base. */
static bool find_opt(const cli_opt_t *t, char *base, const char *name, size_t len, char c,
		     found_t *f)
{
	for (; t && t->kind != CLI_OPT_END; t++) {
		if (t->kind == CLI_OPT_GROUP) {
			if (find_opt(t->group, base + t->off, name, len, c, f))
				return true;
			continue;
		}
		if (len ? strlen(t->name) == len && !strncmp(t->name, name, len)
			: t->short_name && t->short_name == c) {
			*f = (found_t){t, base + t->off};
			return true;
		}
	}
	return false;
}

static cli_status_t apply(const char *cmd, const found_t *f, const char *val)
{
	switch (f->opt->kind) {
	case CLI_OPT_FLAG:
		*(bool *)(void *)f->target = true;
		return CLI_OK;
	case CLI_OPT_STRING:
		*(const char **)(void *)f->target = val;
		return CLI_OK;
	case CLI_OPT_FN:
		return f->opt->fn(cmd, f->opt, val, f->target);
	case CLI_OPT_GROUP:
	case CLI_OPT_END:
		break;
	}
	return CLI_OK;
}

/* argv[*i] starts with '-' and is neither "-" nor "--". */
static cli_status_t parse_opt(const cli_command_t *c, int argc, char **argv, int *i, char *st)
{
	const char *a = argv[*i], *val = NULL;
	found_t f;
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		cli_help(c);
		return CLI_HELP;
	}
	/* The option's own spelling: "--name" of "--name=V", "-w" of "-w=V". */
	size_t len;
	bool found;
	if (a[1] == '-') {
		len = strcspn(a, "=");
		found = find_opt(c->opts, st, a, len, 0, &f);
	} else if (a[2] == '\0' || a[2] == '=') {
		len = 2;
		found = find_opt(c->opts, st, NULL, 0, a[1], &f);
	} else {
		/* Bundled short flags: "-it". Every one must be a flag. */
		for (const char *p = a + 1; *p; p++)
			if (!find_opt(c->opts, st, NULL, 0, *p, &f) || f.opt->value)
				return cli_usage_error(c->name, "unknown option '%s'", a);
		for (const char *p = a + 1; *p; p++) {
			find_opt(c->opts, st, NULL, 0, *p, &f);
			cli_status_t s = apply(c->name, &f, NULL);
			if (s != CLI_OK)
				return s;
		}
		return CLI_OK;
	}
	if (!found)
		return cli_usage_error(c->name, "unknown option '%s'", a);
	if (!f.opt->value) {
		if (a[len] == '=')
			return cli_usage_error(c->name, "option '%.*s' takes no value", (int)len,
					       a);
		return apply(c->name, &f, NULL);
	}
	if (a[len] == '=')
		val = a + len + 1;
	else if (*i + 1 < argc)
		val = argv[++*i];
	else
		return cli_usage_error(c->name, "option '%s' needs a value", a);
	return apply(c->name, &f, val);
}

static const char *missing_msg(const cli_command_t *c, int k)
{
	if (k < 3 && c->missing[k])
		return c->missing[k];
	return c->missing[0] ? c->missing[0] : "no sandbox name given";
}

cli_status_t cli_parse(const cli_command_t *c, int argc, char **argv, void *state, cli_args_t *args)
{
	char *st = state;
	int n = 0, i = 1;
	bool opts = true;
	*args = (cli_args_t){0};
	for (; i < argc; i++) {
		char *a = argv[i];
		if (opts && !strcmp(a, "--")) {
			opts = false;
			if (c->command) {
				/* "[NAME] -- CMD": what arguments are missing come first. */
				for (i++; n < c->max_args && i < argc; i++)
					argv[1 + n++] = argv[i];
				break;
			}
			continue;
		}
		if (opts && a[0] == '-' && a[1]) {
			cli_status_t s = parse_opt(c, argc, argv, &i, st);
			if (s != CLI_OK)
				return s;
			continue;
		}
		if (n >= c->max_args) {
			if (c->command)
				break; /* CMD begins */
			return cli_usage_error(c->name, "unexpected argument '%s'%s", a,
					       c->extra ? c->extra : "");
		}
		/* Gathered at the front: never past what was read. */
		argv[1 + n++] = a;
	}
	args->v = argv + 1;
	args->n = n;
	for (int k = 0; k < c->min_args || k < c->name_arg; k++) {
		if (k >= n) {
			if (k < c->min_args)
				return cli_usage_error(c->name, "%s", missing_msg(c, k));
			break;
		}
		if (k + 1 == c->name_arg && cli_check_name(c->name, args->v[k]) != CLI_OK)
			return CLI_USAGE_ERROR;
	}
	if (c->command && !(c->command_optional && i >= argc)) {
		if (i >= argc)
			return cli_usage_error(c->name, "no command given");
		args->cmd = argv + i;
		args->ncmd = argc - i;
	}
	return CLI_OK;
}

/* ------------------------------------------------------------------ help */

/* "  LABEL  help", the help's further lines under it at column 24. */
static void help_line(const char *label, const char *help)
{
	int w = printf("  %s", label);
	printf("%*s", w < 24 ? 24 - w : 2, "");
	for (const char *p = help ? help : ""; *p;) {
		size_t l = strcspn(p, "\n");
		printf("%.*s\n", (int)l, p);
		p += l;
		if (*p == '\n' && *++p)
			printf("%24s", "");
	}
	if (!help || !*help || help[strlen(help) - 1] == '\n')
		putchar('\n');
}

static void help_opts(const cli_opt_t *t)
{
	for (; t && t->kind != CLI_OPT_END; t++) {
		if (t->kind == CLI_OPT_GROUP) {
			if (t->help)
				printf("\n%s\n", t->help);
			help_opts(t->group);
			continue;
		}
		char label[96];
		int l = 0;
		if (t->short_name)
			l = snprintf(label, sizeof(label), "-%c, ", t->short_name);
		snprintf(label + l, sizeof(label) - (size_t)l, "%s%s%s", t->name,
			 t->value ? " " : "", t->value ? t->value : "");
		help_line(label, t->help);
	}
}

void cli_help(const cli_command_t *c)
{
	printf("Usage: %s %s%s%s\n", cli_prog, c->name, c->synopsis ? " " : "",
	       c->synopsis ? c->synopsis : "");
	if (c->about)
		printf("\n%s", c->about);
	printf("\nOptions:\n");
	help_line("-h, --help", "show this help");
	help_opts(c->opts);
}

const cli_command_t *cli_find(const char *name)
{
	for (const cli_command_t *const *c = cli_commands; *c; c++)
		if (!strcmp((*c)->name, name) || ((*c)->alias && !strcmp((*c)->alias, name)))
			return *c;
	return NULL;
}

/* ------------------------------------------------------------------ shared handlers */

cli_status_t cli_size_arg(const char *cmd, const char *opt, const char *v, uint64_t min,
			  uint64_t max, uint64_t *out)
{
	if (ac_parse_u64(v, min, max, out) < 0)
		return cli_usage_error(cmd,
				       "invalid %s '%s': expected a whole number from %llu to %llu",
				       opt, v, (unsigned long long)min, (unsigned long long)max);
	return CLI_OK;
}

cli_status_t cli_opt_seconds(const char *cmd, const cli_opt_t *opt, const char *v, void *target)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (!*v || *end || errno || !(d > 0) || d > 31536000 || !isfinite(d))
		return cli_usage_error(
		    cmd, "invalid %s '%s': expected a positive number of seconds", opt->name, v);
	*(double *)target = d;
	return CLI_OK;
}

cli_status_t cli_opt_env(const char *cmd, const cli_opt_t *opt, const char *v, void *target)
{
	cli_env_t *env = target;
	const char *eq = strchr(v, '=');
	if (!eq || eq == v)
		return cli_usage_error(cmd, "invalid --env '%s': expected KEY=VALUE", v);
	if (env->n >= 256)
		return cli_usage_error(cmd, "too many --env options (at most 256)");
	env->v[env->n++] = (char *)v;
	env->v[env->n] = NULL;
	return CLI_OK;
}

cli_status_t cli_opt_image_root(const char *cmd, const cli_opt_t *opt, const char *v, void *target)
{
	cli_roots_t *r = target;
	if (r->n == 16)
		return cli_usage_error(cmd, "at most 16 --image-root");
	r->v[r->n++] = (char *)v;
	r->v[r->n] = NULL;
	return CLI_OK;
}

/* ------------------------------------------------------------------ sandbox options */

static cli_status_t opt_image(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!*v)
		return cli_usage_error(cmd,
				       "--image needs 'host', a directory or an image reference");
	((ac_sandbox_opts_t *)t)->image = v;
	return CLI_OK;
}

static cli_status_t opt_template(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!ac_template_name_valid(v))
		return cli_usage_error(cmd,
				       "invalid --template '%s': use 1-63 of a-z 0-9 _ . -, "
				       "starting with a letter or digit",
				       v);
	((ac_sandbox_opts_t *)t)->template = v;
	return CLI_OK;
}

static cli_status_t opt_memory(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	o->memory_set = true;
	return cli_size_arg(cmd, "--memory", v, AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB, &o->memory_mb);
}

static cli_status_t opt_pids(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	o->pids_set = true;
	return cli_size_arg(cmd, "--pids", v, AC_PIDS_MIN, AC_PIDS_MAX, &o->pids);
}

static cli_status_t opt_disk(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	if (ac_disk_mb_parse(v, &o->disk_mb) < 0)
		return cli_usage_error(cmd,
				       "invalid --disk '%s': expected a whole number of MB from "
				       "%llu to %llu, or 'unlimited'",
				       v, AC_DISK_MIN_MB, AC_DISK_MAX_MB);
	o->disk_set = true;
	return CLI_OK;
}

cli_status_t cli_cpus_arg(const char *cmd, const char *v, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (!*v || *end || errno || !(d >= AC_CPUS_MIN && d <= AC_CPUS_MAX))
		return cli_usage_error(
		    cmd, "invalid --cpus '%s': expected a number from 0.01 to 1024", v);
	*out = d;
	return CLI_OK;
}

static cli_status_t opt_cpus(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	o->cpus_set = true;
	return cli_cpus_arg(cmd, v, &o->cpus);
}

static cli_status_t opt_profile(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!ac_profile_find(v))
		return cli_usage_error(cmd, "unknown profile '%s': use %s", v, ac_profile_names());
	((ac_sandbox_opts_t *)t)->profile = v;
	return CLI_OK;
}

static cli_status_t opt_init_script_file(const char *cmd, const cli_opt_t *opt, const char *v,
					 void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	size_t len;
	ac_error_t *e = NULL;
	free(so->init_script_buf);
	so->init_script_buf = NULL;
	if (ac_read_file_at(AT_FDCWD, v, AC_INIT_SCRIPT_MAX, &so->init_script_buf, &len, &e) < 0) {
		fprintf(stderr, "%s: --init-script-file: %s\n", cli_prog, e ? e->msg : v);
		ac_error_free(e);
		return CLI_FAILED;
	}
	so->o.init_script = so->init_script_buf;
	return CLI_OK;
}

static cli_status_t opt_agent(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!ac_agent_keys(v))
		return cli_usage_error(cmd,
				       "unknown agent '%s': use claude, codex, gemini, opencode, "
				       "amp, pi or copilot",
				       v);
	((ac_sandbox_opts_t *)t)->agent = v;
	return CLI_OK;
}

static cli_status_t opt_file(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v || colon[1] != '/')
		return cli_usage_error(cmd, "invalid --file '%s': use HOST_PATH:/path/in/sandbox",
				       v);
	if (so->nfiles >= AC_FILES_MAX)
		return cli_usage_error(cmd, "too many --file options (at most %d)", AC_FILES_MAX);
	so->files[so->nfiles++] = (char *)v;
	so->files[so->nfiles] = NULL;
	so->o.files = so->files;
	return CLI_OK;
}

/* The flags set a value and mark it as given (the config fills only what is not). */
static cli_status_t opt_mount_cwd(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	o->mount_cwd = o->mount_cwd_set = true;
	return CLI_OK;
}

static cli_status_t opt_read_only(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	ac_sandbox_opts_t *o = t;
	o->read_only = o->read_only_set = true;
	return CLI_OK;
}

static cli_status_t opt_network(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	if (so->no_network)
		return cli_usage_error(cmd, "--network and --no-network exclude each other");
	so->o.network = so->o.network_set = true;
	return CLI_OK;
}

/* --no-network: what happens without --network, said explicitly (it also overrides a
 * config's network = true). */
static cli_status_t opt_no_network(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	if (so->o.network)
		return cli_usage_error(cmd, "--network and --no-network exclude each other");
	so->no_network = so->o.network_set = true;
	so->o.network = false;
	return CLI_OK;
}

/* --allow-host, --block-host, --secret, --publish: repeatable lists, checked by the manager
 * (one error message for every front end). */
static cli_status_t opt_net_list(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	static const char *const names[] = {"--allow-host", "--block-host", "--secret",
					    "--publish"};
	int l = 0;
	while (l < 3 && strcmp(names[l], opt->name))
		l++;
	if (so->nnet[l] >= AC_NET_OPTS_MAX)
		return cli_usage_error(cmd, "too many %s options (at most %d)", opt->name,
				       AC_NET_OPTS_MAX);
	so->net[l][so->nnet[l]++] = (char *)v;
	so->net[l][so->nnet[l]] = NULL;
	char ***dst[] = {&so->o.allow_hosts, &so->o.block_hosts, &so->o.secrets, &so->o.publish};
	*dst[l] = so->net[l];
	return CLI_OK;
}

/* --volume NAME:/path[:ro]: repeatable; the manager checks each (one message everywhere). */
static cli_status_t opt_volume(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	if (so->nvolumes >= AC_VOLUMES_MAX)
		return cli_usage_error(cmd, "too many --volume options (at most %d)",
				       AC_VOLUMES_MAX);
	so->volumes[so->nvolumes++] = (char *)v;
	so->volumes[so->nvolumes] = NULL;
	so->o.volumes = so->volumes;
	return CLI_OK;
}

static cli_status_t opt_allowlist_only(const char *cmd, const cli_opt_t *opt, const char *v,
				       void *t)
{
	((ac_sandbox_opts_t *)t)->allowlist_only_hosts = true;
	return CLI_OK;
}

static cli_status_t opt_backend(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	if (!ac_backend_find(v) && strcmp(v, "auto"))
		return cli_usage_error(cmd, "unknown backend '%s': use %s", v, ac_backend_names());
	((ac_sandbox_opts_t *)t)->backend = v;
	return CLI_OK;
}

#define SO cli_sandbox_opts_t
const cli_opt_t cli_sandbox_opts[] = {
    CLI_FN("--image", 0, "host|DIR|REF",
	   "root file system. native: 'host' (default): the host's /usr, /bin,\n"
	   "/lib* and a filtered /etc under a private writable layer, a root\n"
	   "directory (absolute, ./ or ../), or an image reference (python:3.12,\n"
	   "registry:5000/team/img:tag): pulled into agentcell's image store\n"
	   "when missing ('agentcell image'); docker/podman: an image",
	   opt_image, SO, o),
    CLI_FN("--template", 0, "NAME",
	   "native: start from template NAME ('agentcell snapshot'; not with\n"
	   "--image)",
	   opt_template, SO, o),
    CLI_FN("--memory", 0, "MB", "memory limit (default 512; 16-1048576)", opt_memory, SO, o),
    CLI_FN("--cpus", 0, "N", "CPU limit, fractions allowed (default 1)", opt_cpus, SO, o),
    CLI_FN("--pids", 0, "N", "process limit (default 512)", opt_pids, SO, o),
    CLI_FN("--disk", 0, "MB|unlimited",
	   "disk limit of the sandbox's writable layer, blocks and inodes\n"
	   "(default 10240; 16-1048576): an ext4 image of its own; a\n"
	   "one-shot run's is a tmpfs, which counts as memory too",
	   opt_disk, SO, o),
    CLI_FN("--mount-cwd", 0, NULL,
	   "mount the current directory read-write at /workspace and start there", opt_mount_cwd,
	   SO, o),
    CLI_FN("--read-only", 0, NULL, "read-only root file system (/tmp stays a writable tmpfs)",
	   opt_read_only, SO, o),
    CLI_FN("--env", 'e', "K=V", "set an environment variable (repeatable)", cli_opt_env, SO, env),
    CLI_FN("--profile", 'p', "P",
	   "permissive | moderate (default) | restrictive\n"
	   "permissive: --mount-cwd, no memory limit, passes PATH HOME USER\n"
	   "LANG LC_ALL TERM; restrictive: --read-only, 256 MB, 0.5 CPU",
	   opt_profile, SO, o),
    CLI_FN("--backend", 'B', "B",
	   "native (default) | docker | podman | auto: docker and podman\n"
	   "use the Engine API (DOCKER_HOST, else the default sockets)",
	   opt_backend, SO, o),
    CLI_FN("--network", 0, NULL,
	   "network access: native sandboxes reach out only through agentcell's\n"
	   "egress proxy (HTTP_PROXY/HTTPS_PROXY), under the host policy below",
	   opt_network, SO, o),
    CLI_FN("--no-network", 0, NULL, "no network access (the default; not with --network)",
	   opt_no_network, SO, o),
    CLI_FN("--allow-host", 0, "HOST",
	   "allow HOST (name, *.domain, IP or CIDR; repeatable); an IP or CIDR\n"
	   "also opens private/loopback addresses, which are refused otherwise",
	   opt_net_list, SO, o),
    CLI_FN("--block-host", 0, "HOST", "refuse HOST (same forms; repeatable)", opt_net_list, SO, o),
    CLI_FN("--allowlist-only", 0, NULL, "with --network: nothing but the --allow-host hosts",
	   opt_allowlist_only, SO, o),
    CLI_FN("--secret", 0, "KEY@HOST[:HEADER[:PREFIX]]",
	   "bind stored secret KEY ('agentcell secret set') to HOST: the sandbox\n"
	   "sees a placeholder, the proxy sends HEADER: PREFIX+value to HOST only\n"
	   "(default Authorization: Bearer ; repeatable)",
	   opt_net_list, SO, o),
    CLI_FN("--publish", 0, "[ADDR:]HOSTPORT:PORT",
	   "forward HOSTPORT on the host (ADDR default 127.0.0.1) to PORT in the\n"
	   "sandbox (repeatable)",
	   opt_net_list, SO, o),
    CLI_STRING("--init-script", 0, "S",
	       "shell commands run at every start; a failure fails the start", SO, o.init_script),
    CLI_FN("--init-script-file", 0, "F", "the same, read from file F", opt_init_script_file, SO,
	   init_script_buf),
    CLI_FN("--agent", 0, "A",
	   "pass agent A's API keys from your environment (see 'agents'):\n"
	   "claude codex gemini opencode amp pi copilot; never stored",
	   opt_agent, SO, o),
    CLI_FN("--file", 0, "HOST:PATH",
	   "copy a host file or tree to PATH before anything runs (repeatable)", opt_file, SO,
	   files),
    CLI_FN("--volume", 'v', "NAME:PATH[:ro]",
	   "mount named volume NAME ('agentcell volume create') at PATH, read-write\n"
	   "or with :ro read-only; its files outlive the sandbox (repeatable, native)",
	   opt_volume, SO, volumes),
    CLI_STRING("--config", 'c', "FILE",
	       "agentcell.toml to read (default ./agentcell.toml, else\n"
	       "$AGENTCELL_HOME/agentcell.toml)",
	       SO, config_path),
    CLI_END,
};

/* ------------------------------------------------------------------ lifetime options */

/* A duration (90s, 30m, 2h, 1d, plain seconds) into the uint64_t at target. */
static cli_status_t duration_arg(const char *cmd, const char *opt, const char *v, uint64_t *out)
{
	if (ac_duration_parse(v, out) < 0)
		return cli_usage_error(cmd,
				       "invalid %s '%s': expected a positive duration such as 90s, "
				       "30m, 2h, 1d or 3600 (seconds), at most 100 years",
				       opt, v);
	return CLI_OK;
}

/* The lifetime options note the first one given: run refuses them without --keep. */
static cli_sandbox_opts_t *lifetime_noted(const cli_opt_t *opt, void *t)
{
	cli_sandbox_opts_t *so = CLI_STATE(cli_sandbox_opts_t, opt, t);
	if (!so->lifetime_opt)
		so->lifetime_opt = opt->name;
	return so;
}

static cli_status_t opt_lifetime(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	lifetime_noted(opt, t);
	return duration_arg(cmd, opt->name, v, t);
}

cli_status_t cli_opt_duration(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	return duration_arg(cmd, opt->name, v, t);
}

cli_status_t cli_check_label(const char *cmd, const char *kv)
{
	char key[AC_LABEL_KEY_MAX + 1];
	const char *v;
	ac_error_t *e = NULL;
	if (ac_label_parse(kv, key, sizeof(key), &v, &e) < 0) {
		cli_usage(cmd, "%s", e->msg);
		ac_error_free(e);
		return CLI_USAGE_ERROR;
	}
	return CLI_OK;
}

static cli_status_t opt_label(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	cli_sandbox_opts_t *so = lifetime_noted(opt, t);
	if (cli_check_label(cmd, v) != CLI_OK)
		return CLI_USAGE_ERROR;
	size_t klen = (size_t)(strchr(v, '=') - v);
	for (int k = 0; k < so->nlabels; k++)
		if (!strncmp(so->labels[k], v, klen + 1))
			return cli_usage_error(cmd, "label '%.*s' is given twice", (int)klen, v);
	if (so->nlabels >= AC_LABELS_MAX)
		return cli_usage_error(cmd, "too many --label options (at most %d)", AC_LABELS_MAX);
	so->labels[so->nlabels++] = (char *)v;
	so->labels[so->nlabels] = NULL;
	so->o.labels = so->labels;
	return CLI_OK;
}

const cli_opt_t cli_lifetime_opts[] = {
    CLI_FN("--ttl", 0, "DURATION",
	   "remove the sandbox with 'agentcell gc' once DURATION has passed\n"
	   "(DURATION: 90s, 30m, 2h, 1d or plain seconds)",
	   opt_lifetime, SO, o.ttl_seconds),
    CLI_FN("--auto-stop-after", 0, "D",
	   "lifecycle policy (applied by 'agentcell reconcile'): stop it\n"
	   "after D without activity",
	   opt_lifetime, SO, o.auto_stop_after),
    CLI_FN("--auto-archive-after", 0, "D", "stop and archive it after D without activity",
	   opt_lifetime, SO, o.auto_archive_after),
    CLI_FN("--auto-delete-after", 0, "D", "remove it once archived for D", opt_lifetime, SO,
	   o.auto_delete_after),
    CLI_FN("--label", 0, "KEY=VALUE",
	   "a label (repeatable); keys 1-63 of A-Z a-z 0-9 . _ / -, values\n"
	   "up to 255 printable characters",
	   opt_label, SO, labels),
    CLI_END,
};
#undef SO

/* ------------------------------------------------------------------ the rest */

int cli_result_exit(const ac_result_t *r)
{
	if (r->timed_out)
		fprintf(stderr, "%s: command timed out\n", cli_prog);
	return r->exit_code;
}

int cli_apply_config(cli_sandbox_opts_t *so, ac_manager_t *m)
{
	ac_error_t *e = NULL;
	if (ac_config_load(so->config_path, ac_store_home(ac_manager_store(m)), &so->config, &e) <
	    0)
		return cli_error(e);
	ac_config_print_warnings(so->config);
	if (ac_config_apply(so->config, &so->o, &e) < 0)
		return cli_error(e);
	/* What the config filled in (command-line arrays live in so itself). */
	so->config_arrays[0] = so->o.allow;
	so->config_arrays[1] = so->o.block;
	so->config_arrays[2] = so->o.files != so->files ? so->o.files : NULL;
	so->config_arrays[3] = so->o.allow_hosts != so->net[0] ? so->o.allow_hosts : NULL;
	so->config_arrays[4] = so->o.block_hosts != so->net[1] ? so->o.block_hosts : NULL;
	/* A pull that --image needs shows its progress on a terminal. */
	if (isatty(2))
		so->o.pull_progress_fd = 2;
	return 0;
}

void cli_sandbox_opts_free(cli_sandbox_opts_t *so)
{
	for (int i = 0; i < 5; i++)
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
