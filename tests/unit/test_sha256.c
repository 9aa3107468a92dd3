/* Unit tests for SHA-256 (src/base/sha256.c): the FIPS 180-2 / NIST CSVP example vectors
 * (one block, two blocks, a million 'a'), every split of a message into two updates, the
 * padding boundary lengths, and a few MB of random data against the system's sha256sum. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/sha256.h"

static void check(const char *msg, size_t len, const char *want)
{
	char hex[AC_SHA256_HEX_LEN];
	ac_sha256_hex(msg, len, hex);
	assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
			   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	check(four, strlen(four),
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

	/* A million 'a', fed in odd-sized pieces. */
	ac_sha256_t c;
	ac_sha256_init(&c);
	char a[997];
	memset(a, 'a', sizeof(a));
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);
		ac_sha256_update(&c, a, n);
		left -= n;
	}
	char hex[AC_SHA256_HEX_LEN];
	ac_sha256_final_hex(&c, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every split point of a message gives the one-shot digest; lengths around the padding
 * boundaries (55, 56, 63, 64, 65 bytes) included. */
static void test_splits(void **state)
{
	unsigned char msg[200];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(msg); len++) {
		unsigned char want[AC_SHA256_LEN];
		ac_sha256(msg, len, want);
		for (size_t cut = 0; cut <= len; cut += (len > 70 ? 13 : 1)) {
			ac_sha256_t c;
			unsigned char got[AC_SHA256_LEN];
			ac_sha256_init(&c);
			ac_sha256_update(&c, msg, cut);
			ac_sha256_update(&c, msg + cut, len - cut);
			ac_sha256_final(&c, got);
			assert_memory_equal(got, want, AC_SHA256_LEN);
		}
	}
	/* 55 and 56 'a': the length fits in the first block, then does not. */
	check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 55,
	      "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 56,
	      "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

/* A few MB of random data, hashed from a file descriptor, against sha256sum. */
static void test_random_vs_sha256sum(void **state)
{
	if (access("/usr/bin/sha256sum", X_OK) != 0) {
		skip();
		return;
	}
	char path[] = "/tmp/ac-sha256-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = 3 * 1024 * 1024 + 12345;
	unsigned char *buf = malloc(len);
	assert_non_null(buf);
	int ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	assert_true(ur >= 0);
	assert_int_equal(ac_read_all(ur, buf, len), (ssize_t)len);
	close(ur);
	assert_int_equal(ac_write_all(fd, buf, len), 0);

	char mine[AC_SHA256_HEX_LEN];
	ac_sha256_hex(buf, len, mine);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	ac_sha256_t c;
	uint64_t n = 0;
	ac_sha256_init(&c);
	assert_int_equal(ac_sha256_fd(fd, &c, &n), 0);
	assert_int_equal(n, len);
	char fromfd[AC_SHA256_HEX_LEN];
	ac_sha256_final_hex(&c, fromfd);
	assert_string_equal(fromfd, mine);
	close(fd);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[256] = "";
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	unlink(path);
	free(buf);
	line[64] = '\0';
	assert_string_equal(line, mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fips_vectors),
	    cmocka_unit_test(test_splits),
	    cmocka_unit_test(test_random_vs_sha256sum),
	};
	return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
