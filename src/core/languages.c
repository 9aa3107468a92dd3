/* The languages of code runs (see include/agentcell/languages.h): one table of names,
 * aliases, interpreters and default images that the CLI, the HTTP API, MCP and every
 * backend share. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agentcell/backend.h"
#include "agentcell/languages.h"
#include "base/utf8.h"
#include "base/util.h"
#include "core/internal.h"

static const char *const no_alias[] = {NULL};
static const char *const python_alias[] = {"python3", NULL};
static const char *const node_alias[] = {"javascript", "js", NULL};
static const char *const go_alias[] = {"golang", NULL};
static const char *const shell_alias[] = {"bash", "shell", NULL};

/* The one-shot executor's interpreters and language-to-image map. go and rust name an
 * image only: their code is shell code there (e.g. "go run ." after --file). The last
 * entry is also what a name the table does not know gets. */
static const ac_language_t table[] = {
    {"python", python_alias, "python3", "-c", "python:3.12-slim"},
    {"node", node_alias, "node", "-e", "node:20-slim"},
    {"ruby", no_alias, "ruby", "-e", "ruby:3.3-slim"},
    {"perl", no_alias, "perl", "-e", "ubuntu:22.04"},
    {"php", no_alias, "php", "-r", "ubuntu:22.04"},
    {"go", go_alias, "sh", "-c", "golang:1.22-alpine"},
    {"rust", no_alias, "sh", "-c", "rust:1.77-slim"},
    {"sh", shell_alias, "sh", "-c", "ubuntu:22.04"},
};
#define SHELL (&table[AC_ARRAY_SIZE(table) - 1])

const ac_language_t *ac_languages(size_t *n)
{
	*n = AC_ARRAY_SIZE(table);
	return table;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool ac_language_name_valid(const char *name)
{
	if (!name || !is_alpha(name[0]))
		return false;
	size_t n = 0;
	for (const char *p = name; *p; p++, n++)
		if (!is_alpha(*p) && !(*p >= '0' && *p <= '9') && !strchr("+#._-", *p))
			return false;
	return n <= AC_LANGUAGE_NAME_MAX;
}

static const ac_language_t *lookup(const char *name)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(table); i++) {
		if (!strcasecmp(table[i].name, name))
			return &table[i];
		for (const char *const *a = table[i].aliases; *a; a++)
			if (!strcasecmp(*a, name))
				return &table[i];
	}
	return NULL;
}

const ac_language_t *ac_language_find(const char *name)
{
	if (!ac_language_name_valid(name))
		return NULL;
	const ac_language_t *l = lookup(name);
	return l ? l : SHELL;
}

bool ac_language_known(const char *name)
{
	return ac_language_name_valid(name) && lookup(name) != NULL;
}

static char names_buf[512];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void make_names(void)
{
	size_t used = 0;
	for (size_t i = 0; i < AC_ARRAY_SIZE(table) && used < sizeof(names_buf); i++) {
		used += (size_t)snprintf(names_buf + used, sizeof(names_buf) - used, "%s%s",
					 i ? ", " : "", table[i].name);
		for (const char *const *a = table[i].aliases; *a && used < sizeof(names_buf); a++)
			used += (size_t)snprintf(names_buf + used, sizeof(names_buf) - used,
						 "%s%s%s", a == table[i].aliases ? " (" : ", ", *a,
						 a[1] ? "" : ")");
	}
}

const char *ac_language_names(void)
{
	pthread_once(&names_once, make_names);
	return names_buf;
}

int ac_code_check(const char *code, size_t len, const char *what, ac_error_t **err)
{
	if (!code || len == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s is empty: give the code to run",
				    what);
	if (len > AC_CODE_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s is %zu bytes: at most %u bytes (1 MiB) of code", what, len,
				    AC_CODE_MAX);
	if (memchr(code, '\0', len))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s contains a NUL byte, which no argument can carry", what);
	if (!ac_utf8_valid(code, len))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s is not valid UTF-8 (at byte %zu)",
				    what, ac_utf8_invalid_at(code, len));
	return 0;
}

int ac_language_argv(const char *language, const char *code, size_t len, char *argv[4],
		     ac_error_t **err)
{
	const ac_language_t *l = ac_language_find(language);
	if (!l)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid language name '%s': 1-%d characters of A-Z a-z 0-9 + "
				    "# . _ -, starting with a letter (known: %s; any other runs "
				    "its code with sh -c)",
				    language ? language : "", AC_LANGUAGE_NAME_MAX,
				    ac_language_names());
	if (ac_code_check(code, len, "the code", err) < 0)
		return -1;
	argv[0] = (char *)l->program;
	argv[1] = (char *)l->flag;
	argv[2] = (char *)code;
	argv[3] = NULL;
	return 0;
}

static const char *configured(const json_t *languages, const char *name)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)languages, k, v)
	{
		if (!strcasecmp(k, name))
			return json_string_value(v);
	}
	return NULL;
}

const char *ac_language_configured_image(const json_t *languages, const char *language)
{
	const ac_language_t *l = ac_language_find(language);
	if (!json_is_object(languages) || !l)
		return NULL;
	const char *img = configured(languages, language);
	/* A name the table does not know has no canonical name but its own. */
	if (!img && ac_language_known(language))
		img = configured(languages, l->name);
	return img;
}

const char *ac_language_pick_image(const ac_sandbox_opts_t *o, bool engine)
{
	if (!engine || !o->language || (o->image && !o->image_from_config))
		return o->image;
	if (o->language_image)
		return o->language_image;
	const ac_language_t *l = ac_language_find(o->language);
	return l ? l->image : o->image;
}

void ac_language_explain(ac_manager_t *m, const ac_sandbox_opts_t *o, int rc,
			 const ac_result_t *res, ac_error_t *e)
{
	const ac_language_t *l = o ? ac_language_find(o->language) : NULL;
	if (rc >= 0 || !e || !res || res->exit_code != 127 || !l)
		return;
	/* The image as the sandbox had it: the backend is resolved again ("auto") only on
	 * this failure path. */
	ac_backend_ctx_t ctx = ac_manager_ctx(m);
	const ac_backend_t *be = ac_backend_resolve(o->backend, &ctx, NULL);
	bool engine = be && (be->caps & AC_CAP_IMAGES);
	const char *img = ac_language_pick_image(o, engine);
	if (!img || (!engine && !strcmp(img, "host")))
		img = engine ? "the backend's default" : "host base";
	ac_error_t *p = e;
	ac_error_prefix(&p, "%s is not installed in the sandbox's image (%s)", l->program, img);
}
