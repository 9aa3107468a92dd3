/* Unit tests for the backend table (src/backends/registry.c): lookup by name, the state's
 * backend, user choices, capabilities and the uniform "not supported" answer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"

static void test_table_is_complete(void **state)
{
	(void)state;
	size_t n = 0;
	const ac_backend_t *bs = ac_backends(&n);
	assert_true(n >= 3);
	assert_string_equal(bs[0].name, "native");
	for (size_t i = 0; i < n; i++) {
		const ac_backend_ops_t *o = bs[i].ops;
		/* The required ops of the contract (include/agentcell/backend.h). */
		assert_non_null(o->create);
		assert_non_null(o->start);
		assert_non_null(o->stop);
		assert_non_null(o->destroy);
		assert_non_null(o->is_running);
		assert_non_null(o->exec);
		assert_non_null(o->run);
		/* A capability is an op that exists. */
		if (bs[i].caps & AC_CAP_FILES)
			assert_non_null(o->files);
		if (bs[i].caps & AC_CAP_RESIZE)
			assert_non_null(o->resize);
		if (bs[i].caps & AC_CAP_DETACH) {
			assert_non_null(o->exec_detach);
			assert_non_null(o->kill_detached);
		}
		assert_non_null(bs[i].summary);
		/* Names are unique, aliases too. */
		for (size_t j = 0; j < n; j++)
			if (j != i)
				assert_ptr_not_equal(ac_backend_find(bs[i].name), &bs[j]);
	}
}

static void test_find_and_state(void **state)
{
	(void)state;
	assert_string_equal(ac_backend_find("docker")->name, "docker");
	assert_string_equal(ac_backend_find("podman")->name, "podman");
	assert_null(ac_backend_find("vmware"));
	assert_null(ac_backend_find(""));
	assert_null(ac_backend_find(NULL));
	/* A state without "backend" is a native sandbox (states older than the field). */
	json_t *st = json_pack("{ss}", "name", "x");
	assert_string_equal(ac_backend_of(st, NULL)->name, "native");
	json_object_set_new(st, "backend", json_string("podman"));
	assert_string_equal(ac_backend_of(st, NULL)->name, "podman");
	json_object_set_new(st, "backend", json_string("firecracker"));
	ac_error_t *e = NULL;
	assert_null(ac_backend_of(st, &e));
	assert_int_equal(e->kind, AC_ERR_UNSUPPORTED);
	assert_non_null(strstr(e->msg, "firecracker"));
	ac_error_free(e);
	json_decref(st);
}

static void test_resolve(void **state)
{
	(void)state;
	ac_backend_ctx_t ctx = {.home = "/nonexistent"};
	assert_string_equal(ac_backend_resolve(NULL, &ctx, NULL)->name, "native");
	assert_string_equal(ac_backend_resolve("", &ctx, NULL)->name, "native");
	assert_string_equal(ac_backend_resolve("docker", &ctx, NULL)->name, "docker");
	/* auto: the first backend that can run here; as root that is the native one. */
	const ac_backend_t *a = ac_backend_resolve("auto", &ctx, NULL);
	assert_non_null(a);
	if (geteuid() == 0)
		assert_string_equal(a->name, "native");
	ac_error_t *e = NULL;
	assert_null(ac_backend_resolve("vmware", &ctx, &e));
	assert_int_equal(e->kind, AC_ERR_INVALID);
	/* The message lists every name of the table, and auto. */
	size_t n;
	const ac_backend_t *bs = ac_backends(&n);
	for (size_t i = 0; i < n; i++)
		assert_non_null(strstr(e->msg, bs[i].name));
	assert_non_null(strstr(e->msg, "or auto"));
	ac_error_free(e);
}

static void test_require(void **state)
{
	(void)state;
	const ac_backend_t *native = ac_backend_find("native");
	assert_int_equal(ac_backend_require(native, AC_CAP_FILES | AC_CAP_DETACH, "x", NULL), 0);
	ac_error_t *e = NULL;
	assert_int_equal(ac_backend_require(native, AC_CAP_NETWORK | AC_CAP_EGRESS, "x", NULL), 0);
	assert_int_equal(ac_backend_require(native, AC_CAP_IMAGES, "container images", &e), -1);
	assert_int_equal(e->kind, AC_ERR_UNSUPPORTED);
	assert_string_equal(e->msg, "container images is not supported by the native backend");
	ac_error_free(e);
	assert_int_equal(
	    ac_backend_require(ac_backend_find("kubernetes"), AC_CAP_EGRESS, "egress policy", NULL),
	    -1);
	assert_int_equal(
	    ac_backend_require(ac_backend_find("docker"), AC_CAP_NETWORK, "network", NULL), 0);
}

static void test_unlock(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	int lock = fds[0];
	ac_backend_ctx_t ctx = {.lock = &lock};
	ac_backend_unlock(&ctx);
	assert_int_equal(lock, -1);
	ac_backend_unlock(&ctx); /* idempotent */
	/* The descriptor was closed: the write end now sees no reader. */
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	close(fds[1]);
	ac_backend_ctx_t none = {.lock = NULL};
	ac_backend_unlock(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_is_complete),
	    cmocka_unit_test(test_find_and_state),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_require),
	    cmocka_unit_test(test_unlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
