/* Code runs (`run --language L --code C`, "language"/"code" of POST /run and of the MCP
 * sandbox_run tool): the one table of languages, their interpreters and their default
 * container images (src/core/languages.c). Every front end and every backend reads it
 * here, never a copy.
 *
 * A language name is matched case-insensitively against the names and aliases of the
 * table; a well-formed name the table does not know runs its code as shell code
 * (`sh -c CODE`) on the shell's image: the rule of the one-shot executor agentcell
 * follows. The code is always one argv element: only shell code meets a shell. */
#ifndef AGENTCELL_LANGUAGES_H
#define AGENTCELL_LANGUAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/types.h"

/* Longest code accepted (the text of --code, --code-file, a request's "code"). */
#define AC_CODE_MAX (1024u * 1024u)
/* Longest language name. */
#define AC_LANGUAGE_NAME_MAX 32

typedef struct ac_language {
	const char *name;	    /* canonical, lower case: "python" */
	const char *const *aliases; /* further names, lower case, NULL-terminated */
	const char *program;	    /* the interpreter, looked up in PATH: "python3" */
	const char *flag;	    /* its "run this text" option: "-c", "-e", "-r" */
	const char *image;	    /* the default image on container backends */
} ac_language_t;

/* The table, and its entry for unknown names (shell code: sh -c on ubuntu:22.04). */
const ac_language_t *ac_languages(size_t *n);
/* Whether name is a well-formed language name: 1-AC_LANGUAGE_NAME_MAX characters of
 * A-Z a-z 0-9 + # . _ -, the first a letter. */
bool ac_language_name_valid(const char *name);
/* The entry for name or one of its aliases (ASCII case ignored); the shell's entry for a
 * well-formed name the table does not know; NULL for a malformed name. */
const ac_language_t *ac_language_find(const char *name);
/* Whether the table knows name (or the alias) itself, not by the shell fallback. */
bool ac_language_known(const char *name);
/* "python (python3), node (javascript, js), ...": for help and messages. */
const char *ac_language_names(void);

/* Checks code: 1-AC_CODE_MAX bytes of UTF-8 without NUL. AC_ERR_INVALID saying what is
 * wrong, with what ("--code", "'code'") in the message. */
int ac_code_check(const char *code, size_t len, const char *what, ac_error_t **err);
/* The command that runs code in language: {program, flag, code, NULL} in argv (argv[2] is
 * code itself, not a copy). Checks the name and the code as above. */
int ac_language_argv(const char *language, const char *code, size_t len, char *argv[4],
		     ac_error_t **err);

/* The configured image of a language from agentcell.toml's [languages] table (a JSON
 * object; may be NULL): the entry for the name as given, else, for a name the table knows,
 * for its canonical name (names ignore case); NULL when neither is there. A name the table
 * does not know takes only its own entry, never the shell's. */
const char *ac_language_configured_image(const json_t *languages, const char *language);
/* The image a sandbox made from o gets, on a backend that takes container images
 * (engine) or not: o->image, except that a code run (o->language) on an engine takes the
 * language's image (o->language_image, else the table's) unless the image was the
 * caller's own (not agentcell.toml's [sandbox] image). NULL: the backend's default. */
const char *ac_language_pick_image(const ac_sandbox_opts_t *o, bool engine);
/* After a code run of language failed to start its interpreter (rc < 0, exit code 127),
 * e's message becomes one line that names it and the image: "python3 is not installed in
 * the sandbox's image (host base): cannot execute 'python3'". Anything else is left. */
void ac_language_explain(ac_manager_t *m, const ac_sandbox_opts_t *o, int rc,
			 const ac_result_t *res, ac_error_t *e);

#endif
