/* agentcell image: agentcell's own image store ($AGENTCELL_HOME/images), the one the
 * native backend makes sandboxes from (src/image/image.h, src/core/images.c): pull, ls,
 * inspect, rm, prune, import, export, login, logout. Each action is a command of its own
 * (its options, its help: `agentcell image pull --help`); `agentcell image` dispatches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/config.h"
#include "base/util.h"
#include "cli/cli.h"

#define STORE_LINE   "agentcell's image store ($AGENTCELL_HOME/images; native backend)"
#define INSECURE_MAX 64

typedef struct image_state {
	const char *backend, *user, *config;
	bool quiet, json, all, force, password_stdin;
	char *insecure[INSECURE_MAX + 1];
	int ninsecure;
} image_state_t;

static cli_status_t opt_insecure(const char *cmd, const cli_opt_t *opt, const char *v, void *t)
{
	image_state_t *st = CLI_STATE(image_state_t, opt, t);
	if (!*v || strchr(v, '/') || strchr(v, ' '))
		return cli_usage_error(
		    cmd, "invalid --insecure-registry '%s': use HOST or HOST:PORT", v);
	if (st->ninsecure >= INSECURE_MAX)
		return cli_usage_error(cmd, "too many --insecure-registry (at most %d)",
				       INSECURE_MAX);
	st->insecure[st->ninsecure++] = (char *)v;
	return CLI_OK;
}

#define BACKEND_OPT                                                                                \
	CLI_STRING("--backend", 0, "B",                                                            \
		   "the backend whose images are meant: only native has this store\n"              \
		   "(docker and podman keep their own: use their commands)",                       \
		   image_state_t, backend)

static const cli_opt_t pull_opts[] = {
    CLI_FN("--insecure-registry", 0, "HOST",
	   "speak plain HTTP to registry HOST[:PORT] (repeatable; also\n"
	   "agentcell.toml [images] insecure)",
	   opt_insecure, image_state_t, insecure),
    CLI_STRING("--config", 0, "FILE", "agentcell.toml to read [images] from", image_state_t,
	       config),
    CLI_FLAG("--quiet", 'q', "no progress; print only the image id", image_state_t, quiet),
    BACKEND_OPT,
    CLI_END,
};
static const cli_opt_t ls_opts[] = {
    CLI_FLAG("--json", 0, "the image records as a JSON array", image_state_t, json),
    CLI_FLAG("--all", 'a', "also images without a tag", image_state_t, all),
    BACKEND_OPT,
    CLI_END,
};
static const cli_opt_t plain_opts[] = {BACKEND_OPT, CLI_END};
static const cli_opt_t rm_opts[] = {
    CLI_FLAG("--force", 'f',
	     "remove the tags of an image a sandbox uses (its files stay\n"
	     "while the sandbox does)",
	     image_state_t, force),
    BACKEND_OPT,
    CLI_END,
};
static const cli_opt_t prune_opts[] = {
    CLI_FLAG("--json", 0, "{removed, freed} as JSON", image_state_t, json),
    BACKEND_OPT,
    CLI_END,
};
static const cli_opt_t login_opts[] = {
    CLI_STRING("--username", 'u', "USER", "the user name (asked on a terminal when not given)",
	       image_state_t, user),
    CLI_FLAG("--password-stdin", 0, "read the password from standard input", image_state_t,
	     password_stdin),
    CLI_FN("--insecure-registry", 0, "HOST", "speak plain HTTP to HOST[:PORT] (repeatable)",
	   opt_insecure, image_state_t, insecure),
    CLI_STRING("--config", 0, "FILE", "agentcell.toml to read [images] from", image_state_t,
	       config),
    BACKEND_OPT,
    CLI_END,
};

static int image_pull(int argc, char **argv);
static int image_ls(int argc, char **argv);
static int image_inspect(int argc, char **argv);
static int image_rm(int argc, char **argv);
static int image_prune(int argc, char **argv);
static int image_import(int argc, char **argv);
static int image_export(int argc, char **argv);
static int image_login(int argc, char **argv);
static int image_logout(int argc, char **argv);

static const cli_command_t sub_pull = {
    .name = "image pull",
    .synopsis = "REF [--insecure-registry HOST]... [--quiet]",
    .about = "Acts on " STORE_LINE ".\n"
	     "Pulls image REF (python:3.12-slim, registry.corp:5000/team/agent:1.4,\n"
	     "alpine@sha256:...) from its registry over the OCI distribution protocol: this\n"
	     "machine's platform from a multi-platform image, every blob checked against its\n"
	     "digest, layers unpacked once and shared. Credentials: $REGISTRY_AUTH_FILE,\n"
	     "~/.docker/config.json, then 'agentcell image login'. HTTPS is verified against\n"
	     "the system CAs and $AGENTCELL_REGISTRY_CA.\n",
    .opts = pull_opts,
    .min_args = 1,
    .max_args = 1,
    .missing = {"no image given: use image pull REF"},
    .fn = image_pull,
};
static const cli_command_t sub_ls = {
    .name = "image ls",
    .synopsis = "[--json] [--all]",
    .about = "Lists the images in " STORE_LINE ":\n"
	     "REPOSITORY, TAG, IMAGE ID (the config digest's first 12 hex digits), CREATED and\n"
	     "SIZE (unpacked). Templates ('agentcell template ls') are not listed.\n",
    .opts = ls_opts,
    .fn = image_ls,
};
static const cli_command_t sub_inspect = {
    .name = "image inspect",
    .synopsis = "NAME",
    .about = "Prints the record of image NAME (a reference, an id or 12+ hex digits of one)\n"
	     "in " STORE_LINE " as JSON:\n"
	     "id, refs, manifest digest, platform, layers, config (env, workdir, user,\n"
	     "entrypoint, cmd, labels).\n",
    .opts = plain_opts,
    .min_args = 1,
    .max_args = 1,
    .missing = {"no image given: use image inspect NAME"},
    .fn = image_inspect,
};
static const cli_command_t sub_rm = {
    .name = "image rm",
    .synopsis = "NAME... [--force]",
    .about = "Removes images from " STORE_LINE ":\n"
	     "a reference removes that tag, an id the image and all its tags. An image a\n"
	     "sandbox uses is refused (naming the sandbox); --force removes only its tags.\n"
	     "Layers nothing names any more go with 'agentcell image prune'.\n",
    .opts = rm_opts,
    .min_args = 1,
    .max_args = CLI_ARGS_MANY,
    .missing = {"no image given: use image rm NAME..."},
    .fn = image_rm,
};
static const cli_command_t sub_prune = {
    .name = "image prune",
    .synopsis = "[--json]",
    .about = "Cleans " STORE_LINE ":\n"
	     "removes images without a tag that no sandbox uses, then every layer and blob no\n"
	     "image or template names, and downloads interrupted over an hour ago. Prints what\n"
	     "went and the bytes freed.\n",
    .opts = prune_opts,
    .fn = image_prune,
};
static const cli_command_t sub_import = {
    .name = "image import",
    .synopsis = "PATH|- [REF]",
    .about = "Imports into " STORE_LINE "\n"
	     "the images of a 'docker save' / 'podman save' tar (also gzip- or zstd-compressed;\n"
	     "- reads standard input) or of an OCI image layout directory, each tagged with\n"
	     "the tags the archive gives it, or REF for an archive of one image. Every blob is\n"
	     "checked against its digest; archives with names leaving the archive are refused.\n",
    .opts = plain_opts,
    .min_args = 1,
    .max_args = 2,
    .missing = {"no archive given: use image import PATH [REF]"},
    .fn = image_import,
};
static const cli_command_t sub_export = {
    .name = "image export",
    .synopsis = "NAME PATH|-",
    .about = "Writes image NAME of " STORE_LINE " to PATH\n"
	     "(- : standard output) as a tar that 'docker load', 'podman load' and OCI tools\n"
	     "read (manifest.json, oci-layout, index.json), with the original blobs: imported\n"
	     "again it has the same id and layer digests.\n",
    .opts = plain_opts,
    .min_args = 2,
    .max_args = 2,
    .missing = {"no image given: use image export NAME PATH",
		"no destination given: use image export NAME PATH (or - for standard "
		"output)"},
    .fn = image_export,
};
static const cli_command_t sub_login = {
    .name = "image login",
    .synopsis = "HOST [-u USER] [--password-stdin]",
    .about = "For " STORE_LINE ":\n"
	     "checks USER and the password against registry HOST[:PORT] and keeps them in\n"
	     "$AGENTCELL_HOME/images/auth.json (0600) for later pulls. The password is read\n"
	     "from standard input (--password-stdin) or asked on the terminal, never taken\n"
	     "from the command line.\n",
    .opts = login_opts,
    .min_args = 1,
    .max_args = 1,
    .missing = {"no registry given: use image login HOST"},
    .fn = image_login,
};
static const cli_command_t sub_logout = {
    .name = "image logout",
    .synopsis = "HOST",
    .about = "For " STORE_LINE ":\n"
	     "forgets the credentials 'agentcell image login HOST' kept.\n",
    .opts = plain_opts,
    .min_args = 1,
    .max_args = 1,
    .missing = {"no registry given: use image logout HOST"},
    .fn = image_logout,
};

static const cli_command_t *const subs[] = {
    &sub_pull,	 &sub_ls,     &sub_inspect, &sub_rm,	 &sub_prune,
    &sub_import, &sub_export, &sub_login,   &sub_logout, NULL,
};

const cli_command_t cli_cmd_image = {
    .name = "image",
    .summary = "pull, list, import, export or remove images of agentcell's image store",
    .synopsis = "pull REF | ls | inspect NAME | rm NAME... | prune | import PATH [REF] |\n"
		"       export NAME PATH | login HOST | logout HOST",
    .about = "Acts on " STORE_LINE ":\n"
	     "the images 'agentcell create --image REF' makes native sandboxes from. The\n"
	     "docker and podman backends use their engine's images instead (docker pull,\n"
	     "podman images, ...). 'agentcell image ACTION --help' shows an action's options.\n",
    .opts = NULL,
    .min_args = 1,
    .max_args = CLI_ARGS_MANY,
    .fn = cmd_image,
};

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc < 2)
			return cli_usage("image", "no action given: use pull, ls, inspect, rm, "
						  "prune, import, export, login or logout");
		cli_help(&cli_cmd_image);
		return 0;
	}
	const char *a = argv[1];
	if (!strcmp(a, "list"))
		a = "ls";
	else if (!strcmp(a, "remove") || !strcmp(a, "rmi"))
		a = "rm";
	for (const cli_command_t *const *c = subs; *c; c++)
		if (!strcmp((*c)->name + 6, a))
			return (*c)->fn(argc - 1, argv + 1);
	return cli_usage("image",
			 "unknown action '%s': use pull, ls, inspect, rm, prune, import, export, "
			 "login or logout",
			 argv[1]);
}

/* Parses a sub-command's line; refuses another backend's images. Returns -1 to go on, or
 * the exit code. */
static int parse(const cli_command_t *c, int argc, char **argv, image_state_t *st, cli_args_t *ca)
{
	cli_status_t ps = cli_parse(c, argc, argv, st, ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	if (!st->backend)
		return -1;
	const ac_backend_t *b = ac_backend_find(st->backend);
	if (!b)
		return cli_usage(c->name, "unknown backend '%s': use %s", st->backend,
				 ac_backend_names());
	if (b->caps & AC_CAP_IMAGE_STORE)
		return -1;
	bool engine = !strcmp(b->name, "docker") || !strcmp(b->name, "podman");
	fprintf(stderr,
		"%s: 'agentcell image' acts on agentcell's image store (native backend); "
		"the %s backend %s: use %s%s\n",
		cli_prog, b->name,
		engine ? "keeps its own images" : "pulls its images where its sandboxes run",
		engine ? b->name : "the cluster's tools",
		engine ? " pull/images/rmi/save/load" : "");
	return CLI_EXIT_USAGE;
}

static ac_manager_t *manager(int *code)
{
	return cli_manager(code);
}

/* ------------------------------------------------------------------ output */

/* "docker.io/library/alpine:3.19" -> "docker.io/library/alpine" and "3.19"; a digest
 * without a tag: TAG "<none>". refs are canonical (the store formats them). */
static void split_ref(const char *ref, char *repo, size_t rlen, char *tag, size_t tlen)
{
	snprintf(repo, rlen, "%s", ref);
	char *at = strchr(repo, '@'), *slash, *colon;
	if (at)
		*at = 0;
	slash = strrchr(repo, '/');
	colon = strrchr(repo, ':');
	if (colon && (!slash || colon > slash)) {
		*colon = 0;
		snprintf(tag, tlen, "%s", colon + 1);
	} else {
		snprintf(tag, tlen, "<none>");
	}
}

static void print_row(const json_t *rec, const char *repo, const char *tag)
{
	const char *id = ac_state_str(rec, "id", "");
	char size[32], age[48];
	cli_human_size(json_integer_value(json_object_get(rec, "size")), size, sizeof(size));
	cli_human_age(ac_state_str(rec, "created", NULL), age, sizeof(age));
	printf("%-40s %-16s %-12.12s   %-16s %s\n", repo, tag,
	       strncmp(id, "sha256:", 7) ? id : id + 7, age, size);
}

static const char *store_home;

static void print_images(const json_t *list)
{
	printf("agentcell's image store (%s/images; native backend)\n", store_home);
	if (!json_array_size(list)) {
		printf("no images (get one with: agentcell image pull REF or agentcell image "
		       "import PATH)\n");
		return;
	}
	printf("%-40s %-16s %-12s   %-16s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED",
	       "SIZE");
	size_t i, k;
	json_t *rec, *r;
	json_array_foreach(list, i, rec)
	{
		json_t *refs = json_object_get(rec, "refs");
		if (!json_array_size(refs))
			print_row(rec, "<none>", "<none>");
		json_array_foreach(refs, k, r)
		{
			char repo[600], tag[160];
			split_ref(json_string_value(r), repo, sizeof(repo), tag, sizeof(tag));
			print_row(rec, repo, tag);
		}
	}
}

/* ------------------------------------------------------------------ actions */

static int image_pull(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_pull, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	json_t *cfg = NULL, *rec = NULL;
	ac_error_t *e = NULL;
	if (st.config &&
	    ac_config_load(st.config, ac_store_home(ac_manager_store(m)), &cfg, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	if (!st.quiet)
		printf("Pulling %s into agentcell's image store (%s/images; native backend)\n",
		       ca.v[0], ac_store_home(ac_manager_store(m)));
	fflush(stdout);
	ac_image_req_t req = {.insecure = st.insecure,
			      .config = cfg,
			      .progress_fd = !st.quiet && isatty(2) ? 2 : -1,
			      .cancel_fd = -1};
	int rc = ac_manager_image_pull(m, ca.v[0], &req, &rec, &e);
	json_decref(cfg);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	const char *id = ac_state_str(rec, "id", "?");
	if (st.quiet) {
		printf("%s\n", id);
	} else {
		char size[32];
		cli_human_size(json_integer_value(json_object_get(rec, "size")), size,
			       sizeof(size));
		printf("%s: %s (%zu layer%s, %s unpacked)\n",
		       json_string_value(json_array_get(json_object_get(rec, "refs"), 0))
			   ? json_string_value(json_array_get(json_object_get(rec, "refs"), 0))
			   : ca.v[0],
		       id, json_array_size(json_object_get(rec, "layers")),
		       json_array_size(json_object_get(rec, "layers")) == 1 ? "" : "s", size);
	}
	json_decref(rec);
	return 0;
}

static int image_ls(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_ls, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	json_t *list = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_list(m, st.all, &list, &e);
	_cleanup_free_ char *home = strdup(ac_store_home(ac_manager_store(m)));
	AC_ANALYZER_OWNED(home);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	store_home = home ? home : "$AGENTCELL_HOME";
	return cli_show(list, st.json, print_images);
}

static int image_inspect(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_inspect, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	json_t *rec = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_inspect(m, ca.v[0], &rec, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	return cli_show(rec, true, NULL);
}

/* One line per thing removed: the store's {"untagged": ref}, {"deleted": id},
 * {"layer"|"blob"|"partial": what, "size": bytes}. */
static void print_removed(const json_t *removed)
{
	static const char *const labels[][2] = {{"untagged", "Untagged"},
						{"deleted", "Deleted image"},
						{"layer", "Deleted layer"},
						{"blob", "Deleted blob"},
						{"partial", "Deleted partial file"}};
	size_t i;
	json_t *x;
	json_array_foreach(removed, i, x)
	{
		const char *label = NULL, *what = NULL;
		for (size_t k = 0; k < AC_ARRAY_SIZE(labels) && !label; k++)
			if ((what = json_string_value(json_object_get(x, labels[k][0]))))
				label = labels[k][1];
		if (!label) {
			char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%s\n", s ? s : "");
			free(s);
			continue;
		}
		printf("%s: %s", label, what);
		json_t *size = json_object_get(x, "size");
		if (json_is_integer(size)) {
			char buf[32];
			cli_human_size(json_integer_value(size), buf, sizeof(buf));
			printf(" (%s)", buf);
		}
		printf("\n");
	}
}

static int image_rm(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_rm, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	int rc = 0;
	for (int i = 0; i < ca.n; i++) {
		json_t *removed = NULL;
		ac_error_t *e = NULL;
		if (ac_manager_image_remove(m, ca.v[i], st.force, &removed, &e) < 0) {
			rc = cli_error(e);
			continue;
		}
		print_removed(removed);
		json_decref(removed);
	}
	ac_manager_free(m);
	return rc;
}

static int image_prune(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_prune, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	json_t *removed = NULL;
	uint64_t freed = 0;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_prune(m, &removed, &freed, &e);
	_cleanup_free_ char *home = strdup(ac_store_home(ac_manager_store(m)));
	AC_ANALYZER_OWNED(home);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	if (st.json) {
		json_t *j = json_pack("{sO sI}", "removed", removed ? removed : json_array(),
				      "freed", (json_int_t)freed);
		cli_print_json(j);
		json_decref(j);
	} else {
		char size[32];
		cli_human_size((json_int_t)freed, size, sizeof(size));
		printf("agentcell's image store (%s/images; native backend)\n",
		       home ? home : "$AGENTCELL_HOME");
		print_removed(removed);
		printf("freed %s (%llu bytes)\n", size, (unsigned long long)freed);
	}
	json_decref(removed);
	return 0;
}

static int image_import(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_import, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	if (!strcmp(ca.v[0], "-") && isatty(0))
		return cli_usage("image import", "refusing to read a tar archive from a terminal");
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	json_t *recs = NULL;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_import(m, ca.v[0], ca.n > 1 ? ca.v[1] : NULL, &recs, &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	size_t i, k;
	json_t *rec, *r;
	json_array_foreach(recs, i, rec)
	{
		json_t *refs = json_object_get(rec, "refs");
		printf("Imported %s", ac_state_str(rec, "id", "?"));
		json_array_foreach(refs, k, r)
		{
			printf("%s%s", k ? ", " : " as ", json_string_value(r));
		}
		printf("\n");
	}
	json_decref(recs);
	return 0;
}

static int image_export(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_export, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	if (!strcmp(ca.v[1], "-") && isatty(1))
		return cli_usage("image export",
				 "refusing to write a tar archive to a terminal (redirect standard "
				 "output or give a file)");
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_export(m, ca.v[0], ca.v[1], &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	if (strcmp(ca.v[1], "-"))
		fprintf(stderr, "%s: exported %s to %s\n", cli_prog, ca.v[0], ca.v[1]);
	return 0;
}

/* A line from the terminal (echo off when secret) or, with from_stdin, all of stdin
 * (at most 64 KiB) without the newlines and carriage returns that end it. NULL on failure. */
static char *read_line(const char *prompt, bool secret, bool from_stdin)
{
	size_t n = 0;
	char *s = cli_read_input(prompt, secret, from_stdin, 65536, &n);
	while (s && n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

static int image_login(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_login, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	bool tty = isatty(0);
	if (!st.password_stdin && !tty)
		return cli_usage("image login", "no password: use --password-stdin (standard input "
						"is not a terminal)");
	if (!st.user && !tty)
		return cli_usage("image login", "no user given: use -u USER");
	if (st.user && !*st.user)
		return cli_usage("image login", "the user name is empty");
	_cleanup_free_ char *user =
	    st.user ? strdup(st.user) : read_line("Username: ", false, false);
	AC_ANALYZER_OWNED(user);
	if (!user || !*user)
		return cli_usage("image login", "no user given: use -u USER");
	char *pw = read_line("Password: ", true, st.password_stdin);
	if (!pw || !*pw) {
		free(pw);
		return cli_usage("image login", "no password given");
	}
	ac_manager_t *m = manager(&code);
	if (!m) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
		return code;
	}
	json_t *cfg = NULL;
	ac_error_t *e = NULL;
	int rc =
	    st.config ? ac_config_load(st.config, ac_store_home(ac_manager_store(m)), &cfg, &e) : 0;
	if (rc == 0) {
		ac_image_req_t req = {
		    .insecure = st.insecure, .config = cfg, .progress_fd = -1, .cancel_fd = -1};
		rc = ac_manager_image_login(m, ca.v[0], user, pw, &req, &e);
	}
	explicit_bzero(pw, strlen(pw));
	free(pw);
	json_decref(cfg);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	printf("Login to %s succeeded (kept in agentcell's image store's auth.json)\n", ca.v[0]);
	return 0;
}

static int image_logout(int argc, char **argv)
{
	image_state_t st = {0};
	cli_args_t ca;
	int code = parse(&sub_logout, argc, argv, &st, &ca);
	if (code >= 0)
		return code;
	ac_manager_t *m = manager(&code);
	if (!m)
		return code;
	ac_error_t *e = NULL;
	int rc = ac_manager_image_logout(m, ca.v[0], &e);
	ac_manager_free(m);
	if (rc < 0)
		return cli_error(e);
	printf("Removed the credentials of %s\n", ca.v[0]);
	return 0;
}
