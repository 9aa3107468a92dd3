/* Unit tests for image references (src/image/ref.c): Docker's normalization (official
 * images under docker.io/library, index.docker.io as an alias, registry detection by '.',
 * ':' or localhost), tags and digests, the format round trip, and many bad references,
 * each refused with AC_ERR_INVALID. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "image/image.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct good {
	const char *in, *registry, *repo, *tag, *digest, *canonical;
};

static void test_good(void **state)
{
	static const struct good cases[] = {
	    {"alpine", "docker.io", "library/alpine", "latest", "",
	     "docker.io/library/alpine:latest"},
	    {"python:3.12-slim", "docker.io", "library/python", "3.12-slim", "",
	     "docker.io/library/python:3.12-slim"},
	    {"library/alpine:3", "docker.io", "library/alpine", "3", "",
	     "docker.io/library/alpine:3"},
	    {"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest"},
	    {"docker.io/alpine", "docker.io", "library/alpine", "latest", "",
	     "docker.io/library/alpine:latest"},
	    {"index.docker.io/user/app:1", "docker.io", "user/app", "1", "",
	     "docker.io/user/app:1"},
	    {"registry-1.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
	     "docker.io/library/busybox:latest"},
	    {"registry.corp:5000/team/agent:1.4", "registry.corp:5000", "team/agent", "1.4", "",
	     "registry.corp:5000/team/agent:1.4"},
	    {"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest"},
	    {"localhost:5000/a/b/c:x", "localhost:5000", "a/b/c", "x", "",
	     "localhost:5000/a/b/c:x"},
	    {"127.0.0.1:41234/t/img", "127.0.0.1:41234", "t/img", "latest", "",
	     "127.0.0.1:41234/t/img:latest"},
	    {"Example.COM/x", "Example.COM", "x", "latest", "", "Example.COM/x:latest"},
	    {"MyHost/x", "MyHost", "x", "latest", "", "MyHost/x:latest"},
	    {"[::1]:5000/x", "[::1]:5000", "x", "latest", "", "[::1]:5000/x:latest"},
	    {"ghcr.io/a_b/c__d/e-f/g.h/i---j:T_9.-x", "ghcr.io", "a_b/c__d/e-f/g.h/i---j", "T_9.-x",
	     "", "ghcr.io/a_b/c__d/e-f/g.h/i---j:T_9.-x"},
	    {"alpine@sha256:" D64, "docker.io", "library/alpine", "", "sha256:" D64,
	     "docker.io/library/alpine@sha256:" D64},
	    {"alpine:3.19@sha256:" D64, "docker.io", "library/alpine", "3.19", "sha256:" D64,
	     "docker.io/library/alpine:3.19@sha256:" D64},
	    {"host:5000/x@sha256:" D64, "host:5000", "x", "", "sha256:" D64,
	     "host:5000/x@sha256:" D64},
	    {"localhost:5000", "docker.io", "library/localhost", "5000", "",
	     "docker.io/library/localhost:5000"},
	    {"_/x:_", "docker.io", "library/x", "_", "", NULL},
	    {"a:"
	     "0123456789012345678901234567890123456789012345678901234567890123"
	     "012345678901234567890123456789012345678901234567890123456789012a",
	     "docker.io", "library/a",
	     "0123456789012345678901234567890123456789012345678901234567890123"
	     "012345678901234567890123456789012345678901234567890123456789012a",
	     "", NULL},
	    {"user/" D64, "docker.io", "user/" D64, "latest", "", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct good *c = &cases[i];
		if (!strncmp(c->in, "_/", 2))
			continue; /* listed with the bad ones below */
		ac_image_ref_t r;
		ac_error_t *err = NULL;
		if (ac_image_ref_parse(c->in, &r, &err) < 0)
			fail_msg("'%s' refused: %s", c->in, err->msg);
		assert_string_equal(r.registry, c->registry);
		assert_string_equal(r.repo, c->repo);
		assert_string_equal(r.tag, c->tag);
		assert_string_equal(r.digest, c->digest);
		char buf[1024];
		ac_image_ref_format(&r, buf, sizeof(buf));
		if (c->canonical)
			assert_string_equal(buf, c->canonical);
		/* The canonical form parses to the same reference. */
		ac_image_ref_t again;
		assert_int_equal(ac_image_ref_parse(buf, &again, &err), 0);
		assert_memory_equal(&again, &r, sizeof(r));
	}
}

static void test_bad(void **state)
{
	static const char *const bad[] = {
	    "",
	    ":tag",
	    "@sha256:" D64,
	    "Alpine",
	    "user/App",
	    "alpine:",
	    "alpine:.x",
	    "alpine:-x",
	    "alpine:a b",
	    "alpine:tag!",
	    "alpine@sha256:abc",
	    "alpine@sha256:" D64 "0",
	    "alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "alpine@sha512:" D64,
	    "alpine@",
	    "a//b",
	    "a/",
	    "/a",
	    "-a",
	    "a-",
	    "a_",
	    "a___b",
	    "a..b",
	    "a.-b",
	    ".a",
	    "host:5000/",
	    "host:port/x",
	    "host:123456/x",
	    "-host.com/x",
	    "host-.com/x",
	    "ho_st.com/x",
	    "a b",
	    "a\tb",
	    "a\nb",
	    "caf\xc3\xa9",
	    D64,
	    "_/x:_",
	    "a:01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	    "012345678901234567890123456789012345678901234567890",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ac_image_ref_t r;
		ac_error_t *err = NULL;
		if (ac_image_ref_parse(bad[i], &r, &err) == 0)
			fail_msg("'%s' accepted as %s/%s:%s@%s", bad[i], r.registry, r.repo, r.tag,
				 r.digest);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		assert_null(strchr(err->msg, '\n'));
		ac_error_free(err);
	}
	/* A name over 255 characters. */
	char longname[400];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ac_image_ref_t r;
	ac_error_t *err = NULL;
	assert_int_equal(ac_image_ref_parse(longname, &r, &err), -1);
	ac_error_free(err);
}

static void test_digest_and_directory(void **state)
{
	assert_true(ac_image_digest_valid("sha256:" D64));
	assert_false(ac_image_digest_valid("sha256:" D64 "0"));
	assert_false(ac_image_digest_valid("sha256:"
					   "0123456789abcdef"));
	assert_false(ac_image_digest_valid("SHA256:" D64));
	assert_false(ac_image_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789"
					   "abcdef0123456789abcdeF"));
	assert_false(ac_image_digest_valid(D64));
	assert_false(ac_image_digest_valid(""));
	assert_false(ac_image_digest_valid(NULL));

	assert_true(ac_image_is_directory("host"));
	assert_true(ac_image_is_directory("/srv/rootfs"));
	assert_true(ac_image_is_directory("./rootfs"));
	assert_true(ac_image_is_directory("../rootfs"));
	assert_true(ac_image_is_directory("."));
	assert_false(ac_image_is_directory("hostname"));
	assert_false(ac_image_is_directory("alpine"));
	assert_false(ac_image_is_directory("localhost:5000/x"));
	assert_false(ac_image_is_directory(".hidden"));
	assert_false(ac_image_is_directory(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_digest_and_directory),
	};
	return cmocka_run_group_tests_name("image ref", tests, NULL, NULL);
}
