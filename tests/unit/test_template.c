/* Unit tests for the pure parts of sandboxes from images and templates: template names
 * (src/core/snapshot.c), a run's argv from the image's Entrypoint and Cmd
 * (ac_manager_image_argv), and the refusals of ac_manager_build_state that need no store:
 * --image with --template, --template on a backend without an image store, a bad name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "base/io.h"
#include "base/util.h"

static void test_template_names(void **state)
{
	static const char *const good[] = {"a", "0", "base", "py-3.12", "a_b.c-d", "x0123456789"};
	static const char *const bad[] = {"",	 "A",	"-a",  ".a",  "_a", "a/b",
					  "a b", "abC", "a:b", "a@b", "é",  NULL};
	for (size_t i = 0; i < AC_ARRAY_SIZE(good); i++)
		assert_true(ac_template_name_valid(good[i]));
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++)
		assert_false(ac_template_name_valid(bad[i]));
	char n[70];
	memset(n, 'a', sizeof(n));
	n[63] = '\0';
	assert_true(ac_template_name_valid(n));
	n[63] = 'a';
	n[64] = '\0';
	assert_false(ac_template_name_valid(n));
}

static char **argv_of(const char *state_json, ac_error_t **e)
{
	json_t *st = json_loads(state_json, 0, NULL);
	assert_non_null(st);
	char **v = NULL;
	int rc = ac_manager_image_argv(st, &v, e);
	json_decref(st);
	assert_true(rc == 0 ? v != NULL : v == NULL);
	return v;
}

static void test_image_argv(void **state)
{
	ac_error_t *e = NULL;
	char **v = argv_of("{\"image\":\"x\",\"image_config\":{\"entrypoint\":[\"/bin/sh\",\"-c\"],"
			   "\"cmd\":[\"echo hi\"]}}",
			   &e);
	assert_string_equal(v[0], "/bin/sh");
	assert_string_equal(v[1], "-c");
	assert_string_equal(v[2], "echo hi");
	assert_null(v[3]);
	ac_strv_free(v);

	v = argv_of("{\"image_config\":{\"entrypoint\":null,\"cmd\":[\"python3\"]}}", &e);
	assert_string_equal(v[0], "python3");
	assert_null(v[1]);
	ac_strv_free(v);

	v = argv_of("{\"image_config\":{\"entrypoint\":[\"/init\"],\"cmd\":null}}", &e);
	assert_string_equal(v[0], "/init");
	assert_null(v[1]);
	ac_strv_free(v);

	/* Neither: the message names the image. */
	assert_null(argv_of("{\"image\":\"reg:5000/a:1\",\"image_config\":{\"entrypoint\":null,"
			    "\"cmd\":[]}}",
			    &e));
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_int_equal(ac_error_exit_code(e), 2);
	assert_string_equal(e->msg,
			    "no command given and image 'reg:5000/a:1' has no Entrypoint or Cmd");
	ac_error_free(e);
	e = NULL;
	assert_null(argv_of("{}", &e));
	assert_non_null(strstr(e->msg, "image 'host' has no Entrypoint or Cmd"));
	ac_error_free(e);
	e = NULL;
	/* Not strings, or an empty program: refused, never run. */
	assert_null(argv_of("{\"image_config\":{\"cmd\":[1]}}", &e));
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	e = NULL;
	assert_null(argv_of("{\"image_config\":{\"cmd\":[\"\",\"x\"]}}", &e));
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
}

static char home[64];

static int setup(void **state)
{
	snprintf(home, sizeof(home), "/tmp/agentcell-ut-tpl.XXXXXX");
	assert_non_null(mkdtemp(home));
	return 0;
}

static int teardown(void **state)
{
	ac_rm_rf_at(AT_FDCWD, home, NULL);
	return 0;
}

static ac_error_t *build_error(const ac_sandbox_opts_t *o)
{
	ac_manager_t *m = NULL;
	assert_int_equal(ac_manager_open(home, &m, NULL), 0);
	json_t *st = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_manager_build_state(m, "t1", o, &st, &e), -1);
	assert_null(st);
	assert_non_null(e);
	ac_manager_free(m);
	return e;
}

static void test_build_refusals(void **state)
{
	ac_error_t *e = build_error(&(ac_sandbox_opts_t){.image = "alpine:3", .template = "base"});
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_non_null(strstr(e->msg, "exclude each other"));
	ac_error_free(e);

	e = build_error(&(ac_sandbox_opts_t){.template = "Bad/Name"});
	assert_int_equal(e->kind, AC_ERR_INVALID);
	assert_non_null(strstr(e->msg, "invalid template name 'Bad/Name'"));
	ac_error_free(e);

	/* Every backend without an image store refuses a template, naming itself. */
	size_t n;
	const ac_backend_t *bs = ac_backends(&n);
	for (size_t i = 0; i < n; i++) {
		if (bs[i].caps & AC_CAP_IMAGE_STORE)
			continue;
		e = build_error(&(ac_sandbox_opts_t){.template = "base", .backend = bs[i].name});
		char want[128];
		snprintf(want, sizeof(want), "not supported by the %s backend", bs[i].name);
		if (e->kind == AC_ERR_UNSUPPORTED)
			assert_non_null(strstr(e->msg, want));
		ac_error_free(e);
	}

	/* An image from agentcell.toml gives way to --template (then: not in the store). */
	ac_manager_t *m = NULL;
	assert_int_equal(ac_manager_open(home, &m, NULL), 0);
	if (ac_backend_find("native")->caps & AC_CAP_IMAGE_STORE) {
		json_t *st = NULL;
		e = NULL;
		ac_sandbox_opts_t o = {
		    .image = "alpine:3", .image_from_config = true, .template = "nope"};
		assert_int_equal(ac_manager_build_state(m, "t2", &o, &st, &e), -1);
		assert_int_equal(e->kind, AC_ERR_NOT_FOUND);
		assert_non_null(strstr(e->msg, "template 'nope'"));
		ac_error_free(e);
	}
	ac_manager_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_template_names),
	    cmocka_unit_test(test_image_argv),
	    cmocka_unit_test_setup_teardown(test_build_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
