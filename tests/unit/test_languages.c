/* Unit tests for src/core/languages.c (the languages of code runs: names, aliases,
 * interpreters, images, the image choice) and agentcell.toml's [languages] table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "agentcell/languages.h"
#include "base/parse.h"

static void expect_argv(const char *lang, const char *prog, const char *flag)
{
	static const char code[] = "print(6*7)";
	char *argv[4] = {NULL, NULL, NULL, (char *)"sentinel"};
	ac_error_t *e = NULL;
	if (ac_language_argv(lang, code, strlen(code), argv, &e) < 0)
		fail_msg("%s: %s", lang, e ? e->msg : "failed");
	assert_string_equal(argv[0], prog);
	assert_string_equal(argv[1], flag);
	/* The code itself, one argument: never copied into a shell string. */
	assert_ptr_equal(argv[2], code);
	assert_null(argv[3]);
}

static void test_interpreters(void **state)
{
	(void)state;
	expect_argv("python", "python3", "-c");
	expect_argv("python3", "python3", "-c");
	expect_argv("PyThOn", "python3", "-c");
	expect_argv("node", "node", "-e");
	expect_argv("javascript", "node", "-e");
	expect_argv("JS", "node", "-e");
	expect_argv("ruby", "ruby", "-e");
	expect_argv("perl", "perl", "-e");
	expect_argv("php", "php", "-r");
	expect_argv("sh", "sh", "-c");
	expect_argv("bash", "sh", "-c");
	expect_argv("Shell", "sh", "-c");
	expect_argv("go", "sh", "-c");
	expect_argv("rust", "sh", "-c");
	/* Any other well-formed name: shell code (the executor's rule). */
	expect_argv("cobol", "sh", "-c");
	expect_argv("c++", "sh", "-c");
}

static void test_images(void **state)
{
	(void)state;
	static const struct {
		const char *lang, *image;
	} cases[] = {
	    {"python", "python:3.12-slim"},   {"python3", "python:3.12-slim"},
	    {"node", "node:20-slim"},	      {"js", "node:20-slim"},
	    {"ruby", "ruby:3.3-slim"},	      {"go", "golang:1.22-alpine"},
	    {"golang", "golang:1.22-alpine"}, {"rust", "rust:1.77-slim"},
	    {"perl", "ubuntu:22.04"},	      {"php", "ubuntu:22.04"},
	    {"sh", "ubuntu:22.04"},	      {"fortran", "ubuntu:22.04"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const ac_language_t *l = ac_language_find(cases[i].lang);
		assert_non_null(l);
		assert_string_equal(l->image, cases[i].image);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_true(ac_language_known("python"));
	assert_true(ac_language_known("JavaScript"));
	assert_true(ac_language_known("golang"));
	assert_false(ac_language_known("cobol"));
	assert_false(ac_language_known("1x"));
	static const char *const bad[] = {
	    "",	   "1x",      "-x",
	    "a b", "py/thon", "x;y",
	    "é",   "$(x)",    "abcdefghijklmnopqrstuvwxyzabcdefg" /* 33 */};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(ac_language_name_valid(bad[i]));
		assert_null(ac_language_find(bad[i]));
	}
	assert_false(ac_language_name_valid(NULL));
	assert_true(ac_language_name_valid("abcdefghijklmnopqrstuvwxyzabcdef")); /* 32 */
	assert_true(ac_language_name_valid("c#"));
	assert_true(ac_language_name_valid("objective-c"));
	const char *names = ac_language_names();
	assert_non_null(strstr(names, "python (python3)"));
	assert_non_null(strstr(names, "node (javascript, js)"));
	assert_non_null(strstr(names, "sh (bash, shell)"));
	assert_ptr_equal(names, ac_language_names());
}

/* The table itself: names and aliases lower case, valid, each once; images valid refs;
 * the shell last (the fallback). */
static void test_table(void **state)
{
	(void)state;
	size_t n;
	const ac_language_t *t = ac_languages(&n);
	assert_true(n >= 8);
	assert_string_equal(t[n - 1].name, "sh");
	char seen[64][AC_LANGUAGE_NAME_MAX + 1];
	size_t nseen = 0;
	for (size_t i = 0; i < n; i++) {
		assert_true(ac_image_ref_valid(t[i].image));
		assert_true(t[i].program[0] && t[i].flag[0] == '-');
		for (int k = -1; k < 0 || t[i].aliases[k]; k++) {
			const char *nm = k < 0 ? t[i].name : t[i].aliases[k];
			assert_true(ac_language_name_valid(nm));
			for (const char *p = nm; *p; p++)
				assert_false(*p >= 'A' && *p <= 'Z');
			for (size_t j = 0; j < nseen; j++)
				if (!strcmp(seen[j], nm))
					fail_msg("'%s' is in the table twice", nm);
			assert_true(nseen < 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", nm);
			assert_ptr_equal(ac_language_find(nm), &t[i]);
		}
	}
}

static void expect_code_error(const char *code, size_t len, const char *needle)
{
	char *argv[4];
	ac_error_t *e = NULL;
	assert_int_equal(ac_code_check(code, len, "--code", &e), -1);
	assert_non_null(e);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	if (!strstr(e->msg, needle) || !strstr(e->msg, "--code"))
		fail_msg("'%s' lacks '%s'", e->msg, needle);
	ac_error_free(e);
	e = NULL;
	assert_int_equal(ac_language_argv("python", code, len, argv, &e), -1);
	assert_non_null(e);
	ac_error_free(e);
}

static void test_code_checks(void **state)
{
	(void)state;
	ac_error_t *e = NULL;
	expect_code_error("", 0, "is empty");
	expect_code_error("a\0b", 3, "NUL");
	expect_code_error("print('\xff')", 10, "not valid UTF-8 (at byte 7)");
	char *big = malloc(AC_CODE_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', AC_CODE_MAX + 1);
	expect_code_error(big, AC_CODE_MAX + 1, "at most 1048576 bytes");
	/* Exactly the cap is fine. */
	assert_int_equal(ac_code_check(big, AC_CODE_MAX, "--code", &e), 0);
	free(big);
	const char *utf8 = "print('h\xc3\xa9 \xe2\x82\xac')\n";
	assert_int_equal(ac_code_check(utf8, strlen(utf8), "--code", &e), 0);
	assert_null(e);
	char *argv[4];
	assert_int_equal(ac_language_argv("1x", "x", 1, argv, &e), -1);
	assert_non_null(e);
	assert_non_null(strstr(e->msg, "invalid language name '1x'"));
	ac_error_free(e);
}

static void test_pick_image(void **state)
{
	(void)state;
	ac_sandbox_opts_t o = {0};
	/* Not a code run: the image as given, whatever the backend. */
	assert_null(ac_language_pick_image(&o, true));
	o.image = "alpine:3";
	assert_string_equal(ac_language_pick_image(&o, true), "alpine:3");
	/* A code run: native keeps its image (host or a directory); an engine takes the
	 * language's unless the caller gave one. */
	o = (ac_sandbox_opts_t){.language = "Python"};
	assert_null(ac_language_pick_image(&o, false));
	assert_string_equal(ac_language_pick_image(&o, true), "python:3.12-slim");
	o.language_image = "python:3.11";
	assert_string_equal(ac_language_pick_image(&o, true), "python:3.11");
	o.image = "mine:1";
	assert_string_equal(ac_language_pick_image(&o, true), "mine:1");
	assert_string_equal(ac_language_pick_image(&o, false), "mine:1");
	/* [sandbox] image of agentcell.toml is a default: the language's wins on engines. */
	o.image_from_config = true;
	assert_string_equal(ac_language_pick_image(&o, true), "python:3.11");
	assert_string_equal(ac_language_pick_image(&o, false), "mine:1");
	o = (ac_sandbox_opts_t){.language = "cobol"};
	assert_string_equal(ac_language_pick_image(&o, true), "ubuntu:22.04");
}

static json_t *load(const char *text, ac_error_t **err)
{
	char path[] = "/tmp/ac-test-languages-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	json_t *cfg = NULL;
	int rc = ac_config_load(path, "/nonexistent", &cfg, err);
	unlink(path);
	assert_true(rc == 0 ? cfg != NULL : cfg == NULL);
	return cfg;
}

static void test_config(void **state)
{
	(void)state;
	ac_error_t *e = NULL;
	json_t *cfg = load("[sandbox]\nimage = \"base:1\"\n[languages]\nPython = \"python:3.11\"\n"
			   "js = \"node:18\"\nnode = \"node:22\"\ncobol = \"cobol:1\"\n"
			   "sh = \"reg.example:5000/sh@sha256:00\"\n",
			   &e);
	if (!cfg)
		fail_msg("%s", e ? e->msg : "load failed");
	json_t *langs = json_object_get(cfg, "languages");
	/* By the name given, else by the canonical name; names ignore case. */
	assert_string_equal(ac_language_configured_image(langs, "python3"), "python:3.11");
	assert_string_equal(ac_language_configured_image(langs, "PYTHON"), "python:3.11");
	assert_string_equal(ac_language_configured_image(langs, "js"), "node:18");
	assert_string_equal(ac_language_configured_image(langs, "javascript"), "node:22");
	assert_string_equal(ac_language_configured_image(langs, "cobol"), "cobol:1");
	/* An unknown name has only its own entry, never the shell's. */
	assert_null(ac_language_configured_image(langs, "fortran"));
	assert_string_equal(ac_language_configured_image(langs, "bash"),
			    "reg.example:5000/sh@sha256:00");
	assert_null(ac_language_configured_image(langs, "ruby"));
	assert_null(ac_language_configured_image(NULL, "ruby"));
	assert_null(ac_language_configured_image(langs, "1x"));

	/* ac_config_apply: the language's image for a code run; [sandbox] image marked. */
	ac_sandbox_opts_t o = {.language = "python"};
	assert_int_equal(ac_config_apply(cfg, &o, &e), 0);
	assert_string_equal(o.language_image, "python:3.11");
	assert_string_equal(o.image, "base:1");
	assert_true(o.image_from_config);
	assert_string_equal(ac_language_pick_image(&o, true), "python:3.11");
	ac_sandbox_opts_t given = {.language = "python", .image = "mine:2"};
	assert_int_equal(ac_config_apply(cfg, &given, &e), 0);
	assert_false(given.image_from_config);
	assert_string_equal(ac_language_pick_image(&given, true), "mine:2");
	ac_sandbox_opts_t plain = {0};
	assert_int_equal(ac_config_apply(cfg, &plain, &e), 0);
	assert_null(plain.language_image);
	free(o.allow);
	free(o.block);
	free(given.allow);
	free(given.block);
	free(plain.allow);
	free(plain.block);
	json_decref(cfg);

	static const struct {
		const char *toml, *needle;
	} bad[] = {
	    {"[languages]\npython = \"-x\"\n", "languages.python: '-x' is not an image reference"},
	    {"[languages]\npython = \"/abs\"\n", "is not an image reference"},
	    {"[languages]\npython = \"a b\"\n", "is not an image reference"},
	    {"[languages]\npython = \"\"\n", "is not an image reference"},
	    {"[languages]\npython = 3\n", "languages.python must be a string"},
	    {"[languages]\npython = true\n", "languages.python must be a string"},
	    {"[languages]\npython = [\"a\"]\n", "languages.python must be a string"},
	    {"[languages.python]\nimage = \"a\"\n", "languages.python must be a string"},
	    {"[languages]\n\"1x\" = \"a\"\n", "languages.1x: not a language name"},
	    {"[languages]\n\"a b\" = \"a\"\n", "not a language name"},
	    {"[languages]\n\"py\\u0000x\" = \"a\"\n", "not a language name"},
	    {"[languages]\npython = \"a\\u0000b\"\n", "is not an image reference"},
	    {"languages = \"x\"\n", "[languages] must be a table"},
	    {"[languages]\npython = \"a\"\nPYTHON = \"b\"\n", "is given twice"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = NULL;
		assert_null(load(bad[i].toml, &e));
		assert_non_null(e);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		if (!strstr(e->msg, bad[i].needle) || !strstr(e->msg, "/tmp/ac-test-languages-"))
			fail_msg("case %zu: '%s' lacks '%s' or the file", i, e->msg, bad[i].needle);
		ac_error_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interpreters), cmocka_unit_test(test_images),
	    cmocka_unit_test(test_names),	 cmocka_unit_test(test_table),
	    cmocka_unit_test(test_code_checks),	 cmocka_unit_test(test_pick_image),
	    cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
