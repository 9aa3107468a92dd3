/* Unit tests for src/net/policy.c: host patterns, name decisions (block, allow, wildcards,
 * allowlist_only) and address decisions (every refused range, v4 and v6 and the IPv6 forms
 * that carry an IPv4 address, explicit IP allow and block, the host's own addresses). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/net.h"
#include "net/pattern.h"
#include "base/util.h"
#include "testfork.h"

/* ---- helpers ---- */

static ac_net_policy_t *policy(const char *json)
{
	json_error_t jerr;
	json_t *j = json ? json_loads(json, 0, &jerr) : NULL;
	if (json != NULL && j == NULL)
		fail_msg("bad test JSON: %s", jerr.text);
	ac_error_t *err = NULL;
	ac_net_policy_t *p = ac_net_policy_new(j, &err);
	json_decref(j);
	if (p == NULL) {
		print_error("policy %s refused: %s\n", json, err ? err->msg : "(no error)");
		ac_error_free(err);
		fail();
	}
	assert_null(err);
	return p;
}

/* addr: an IPv4 or IPv6 literal; the sockaddr check_addr gets for it. */
static const char *addr_verdict(const ac_net_policy_t *p, const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(443);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(443);
	} else {
		fail_msg("bad test address %s", addr);
	}
	return ac_net_policy_check_addr(p, (const struct sockaddr *)&ss);
}

static void expect_addr(const ac_net_policy_t *p, const char *addr, const char *want)
{
	const char *got = addr_verdict(p, addr);
	if ((got == NULL) != (want == NULL) || (got != NULL && strcmp(got, want) != 0)) {
		print_error("%s: got %s, want %s\n", addr, got ? got : "allowed",
			    want ? want : "allowed");
		fail();
	}
}

static void expect_name(const ac_net_policy_t *p, const char *host, const char *want)
{
	const char *got = ac_net_policy_check_name(p, host);
	if ((got == NULL) != (want == NULL) || (got != NULL && strcmp(got, want) != 0)) {
		print_error("name %s: got %s, want %s\n", host, got ? got : "allowed",
			    want ? want : "allowed");
		fail();
	}
}

static void expect_pattern_ok(const char *pat)
{
	ac_error_t *err = NULL;
	if (ac_net_pattern_check(pat, &err) < 0) {
		print_error("'%s' refused: %s\n", pat, err ? err->msg : "(no error)");
		ac_error_free(err);
		fail();
	}
	assert_null(err);
}

static void expect_pattern_bad(const char *pat, const char *why)
{
	ac_error_t *err = NULL;
	if (ac_net_pattern_check(pat, &err) == 0)
		fail_msg("'%s' accepted, wanted: %s", pat, why);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	char want[600];
	/* Long patterns are shown cut, after 200 bytes. */
	snprintf(want, sizeof(want), "invalid host pattern '%.200s%s': ", pat,
		 strlen(pat) > 200 ? "..." : "");
	bool ok = strncmp(err->msg, want, strlen(want)) == 0 && strstr(err->msg, why) != NULL &&
		  strchr(err->msg, '\n') == NULL;
	if (!ok) {
		print_error("'%s': got \"%s\", want \"%s...%s\"\n", pat, err->msg, want, why);
		ac_error_free(err);
		fail();
	}
	ac_error_free(err);
}

#define R_BLOCKED   "blocked by block_hosts"
#define R_NOT_ALLOW "not in allow_hosts (allowlist_only)"
#define R_LOCAL	    "the host's own address"

/* ---- patterns ---- */

static void test_patterns_valid(void **state)
{
	static const char *ok[] = {
	    "example.com",
	    "API.Example.COM",
	    "example.com.",
	    "localhost",
	    "a",
	    "xn--bcher-kva.example",
	    "_dmarc.example.com",
	    "a-b.c_d.example",
	    "1password.com",
	    "123.example",
	    "*.example.com",
	    "*.com",
	    "*.Example.com.",
	    "192.0.2.1",
	    "0.0.0.0",
	    "255.255.255.255",
	    "2001:db8::1",
	    "[2001:db8::1]",
	    "::",
	    "::ffff:10.0.0.1",
	    "10.0.0.0/8",
	    "0.0.0.0/0",
	    "192.0.2.7/32",
	    "2001:db8::/32",
	    "::/0",
	    "fe80::/10",
	    "2001:db8::1/128",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++)
		expect_pattern_ok(ok[i]);

	/* Labels of 63 and names of 253 are the limits. */
	char label[80], name[300];
	memset(label, 'a', 63);
	strcpy(label + 63, ".com");
	expect_pattern_ok(label);
	/* 4 labels of 62 and their dots = 252, + "a" = 253 */
	char *p = name;
	for (int i = 0; i < 4; i++) {
		memset(p, 'b', 62);
		p += 62;
		*p++ = '.';
	}
	strcpy(p, "a");
	assert_int_equal(strlen(name), 253);
	expect_pattern_ok(name);
	strcat(name, "."); /* the trailing dot does not count */
	expect_pattern_ok(name);
}

static void test_patterns_invalid(void **state)
{
	static const struct {
		const char *pat, *why;
	} bad[] = {
	    {"", "empty"},
	    {".", "empty"},
	    {"example..com", "empty label"},
	    {".example.com", "empty label"},
	    {"example.com..", "empty label"},
	    {"-example.com", "starts with '-'"},
	    {"example-.com", "ends with '-'"},
	    {"exa mple.com", "invalid character"},
	    {"exa/mple", "not a valid IP address before '/'"},
	    {"bücher.de", "invalid character"},
	    {"example.com:443", "takes no port"},
	    {"*", "'*' must be followed by '.'"},
	    {"*.", "'*' must be followed by '.'"},
	    {"*example.com", "'*' must be followed by '.'"},
	    {"a.*.b", "only allowed as a leading"},
	    {"*.*.example.com", "only allowed as a leading"},
	    {"example.*", "only allowed as a leading"},
	    {"**.example.com", "'*' must be followed by '.'"},
	    {"*.10.0.0.1", "takes a domain name, not an address"},
	    {"*.[::1]", "takes a domain name, not an address"},
	    {"1.2.3", "not a valid IP address"},
	    {"127.1", "not a valid IP address"},
	    {"0x7f.0x1", "not a valid IP address"},
	    {"010.0.0.1", "not a valid IP address"},
	    {"256.1.1.1", "not a valid IP address"},
	    {"1.2.3.4.5", "not a valid IP address"},
	    {"2001:db8::g", "not a valid IPv6 address"},
	    {"[2001:db8::1", "not a valid IPv6 address"},
	    {"[192.0.2.1]", "not a valid IPv6 address"},
	    {"fe80::1%eth0", "not a valid IPv6 address"},
	    {"10.0.0.0/33", "prefix length above 32"},
	    {"2001:db8::/129", "prefix length above 128"},
	    {"10.0.0.0/", "invalid prefix length"},
	    {"10.0.0.0/8/8", "invalid prefix length"},
	    {"10.0.0.0/08", "invalid prefix length"},
	    {"10.0.0.0/-1", "invalid prefix length"},
	    {"10.0.0.0/ 8", "invalid prefix length"},
	    {"10.0.0.1/8", "bits set after the prefix length"},
	    {"2001:db8::1/32", "bits set after the prefix length"},
	    {"/8", "not a valid IP address before '/'"},
	    {"example.com/8", "not a valid IP address before '/'"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++)
		expect_pattern_bad(bad[i].pat, bad[i].why);

	char name[400];
	memset(name, 'a', 64);
	strcpy(name + 64, ".com");
	expect_pattern_bad(name, "longer than 63");
	/* 254 characters of valid labels */
	char *p = name;
	for (int i = 0; i < 4; i++) {
		memset(p, 'b', 62);
		p += 62;
		*p++ = '.';
	}
	strcpy(p, "ab");
	assert_int_equal(strlen(name), 254);
	expect_pattern_bad(name, "longer than 253");
	/* A wildcard over a 252-character suffix leaves no room for a name below it. */
	name[0] = '*';
	name[1] = '.';
	expect_pattern_bad(name, "longer than 253");
	memset(name, 'c', 399);
	name[399] = '\0';
	expect_pattern_bad(name, "longer than 253");

	/* NULL is an empty pattern, not a crash. */
	ac_error_t *err = NULL;
	assert_int_equal(ac_net_pattern_check(NULL, &err), -1);
	assert_non_null(err);
	ac_error_free(err);
}

static void test_pattern_message_is_one_line(void **state)
{
	ac_error_t *err = NULL;
	assert_int_equal(ac_net_pattern_check("evil\n.com\x1b[31m", &err), -1);
	assert_non_null(err);
	assert_null(strchr(err->msg, '\n'));
	assert_null(strchr(err->msg, '\x1b'));
	ac_error_free(err);
	err = NULL;
	/* Invalid UTF-8 never reaches a message (they end up in JSON bodies). */
	assert_int_equal(ac_net_pattern_check("\xff\xfe.com", &err), -1);
	json_t *j = json_string(err->msg);
	assert_non_null(j);
	json_decref(j);
	ac_error_free(err);
}

static void test_policy_json_errors(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
	    {"[]", "the network policy must be an object"},
	    {"{\"allow_hosts\": \"example.com\"}", "allow_hosts must be an array"},
	    {"{\"block_hosts\": [\"ok.com\", 7]}", "block_hosts[1] must be a string"},
	    {"{\"allowlist_only\": \"yes\"}", "allowlist_only must be true or false"},
	    {"{\"allow_hosts\": [\"ok.com\", \"a.*.b\"]}",
	     "invalid host pattern 'a.*.b': '*' is only allowed"},
	    {"{\"block_hosts\": [\"ex\\u0000ample.com\"]}", "contains a NUL byte"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		json_t *j = json_loads(bad[i].json, JSON_ALLOW_NUL, NULL);
		assert_non_null(j);
		ac_error_t *err = NULL;
		ac_net_policy_t *p = ac_net_policy_new(j, &err);
		json_decref(j);
		assert_null(p);
		assert_non_null(err);
		assert_int_equal(err->kind, AC_ERR_INVALID);
		if (strstr(err->msg, bad[i].want) == NULL) {
			print_error("%s: got \"%s\", want \"%s\"\n", bad[i].json, err->msg,
				    bad[i].want);
			ac_error_free(err);
			fail();
		}
		ac_error_free(err);
	}
	/* Missing and null members are the defaults; other members are not the policy's. */
	ac_net_policy_t *p = policy("{\"allow_hosts\": null, \"allowlist_only\": null, "
				    "\"enabled\": true}");
	expect_name(p, "example.com", NULL);
	ac_net_policy_free(p);
	p = policy(NULL);
	expect_name(p, "example.com", NULL);
	ac_net_policy_free(p);
	ac_net_policy_free(NULL);
}

/* ---- names ---- */

static void test_names_block(void **state)
{
	ac_net_policy_t *p = policy("{\"block_hosts\": [\"Evil.example\", \"*.tracker.net\", "
				    "\"pastebin.com.\"]}");
	expect_name(p, "evil.example", R_BLOCKED);
	expect_name(p, "EVIL.EXAMPLE", R_BLOCKED);
	expect_name(p, "evil.example.", R_BLOCKED);
	expect_name(p, "pastebin.com", R_BLOCKED);
	expect_name(p, "www.evil.example", NULL); /* a name pattern is that name only */
	expect_name(p, "evil.example.com", NULL);
	expect_name(p, "notevil.example", NULL);
	/* A wildcard: strictly below, at any depth, never the domain itself. */
	expect_name(p, "a.tracker.net", R_BLOCKED);
	expect_name(p, "A.B.C.Tracker.NET", R_BLOCKED);
	expect_name(p, "_x.tracker.net", R_BLOCKED);
	expect_name(p, "tracker.net", NULL);
	expect_name(p, "eviltracker.net", NULL);
	expect_name(p, "tracker.net.other.com", NULL);
	expect_name(p, "example.com", NULL);
	ac_net_policy_free(p);
}

static void test_names_allowlist_only(void **state)
{
	ac_net_policy_t *p =
	    policy("{\"allowlist_only\": true, \"allow_hosts\": ["
		   "\"api.github.com\", \"*.pythonhosted.org\", \"192.0.2.0/24\", "
		   "\"2001:db8::5\"], \"block_hosts\": [\"bad.pythonhosted.org\"]}");
	expect_name(p, "api.github.com", NULL);
	expect_name(p, "API.GitHub.com.", NULL);
	expect_name(p, "github.com", R_NOT_ALLOW);
	expect_name(p, "x.api.github.com", R_NOT_ALLOW);
	expect_name(p, "files.pythonhosted.org", NULL);
	expect_name(p, "a.b.pythonhosted.org", NULL);
	expect_name(p, "pythonhosted.org", R_NOT_ALLOW);
	/* block wins over allow */
	expect_name(p, "bad.pythonhosted.org", R_BLOCKED);
	/* IP literals match IP/CIDR allow patterns, never names */
	expect_name(p, "192.0.2.77", NULL);
	expect_name(p, "198.51.100.1", R_NOT_ALLOW);
	expect_name(p, "2001:db8::5", NULL);
	expect_name(p, "[2001:db8::5]", NULL);
	expect_name(p, "[2001:DB8:0::5]", NULL);
	expect_name(p, "2001:db8::6", R_NOT_ALLOW);
	expect_name(p, "::ffff:192.0.2.1", NULL); /* the same destination as 192.0.2.1 */
	ac_net_policy_free(p);

	/* Without allowlist_only allow_hosts restricts nothing. */
	p = policy("{\"allow_hosts\": [\"api.github.com\"]}");
	expect_name(p, "example.com", NULL);
	expect_name(p, "198.51.100.1", NULL);
	ac_net_policy_free(p);
}

static void test_names_ip_block(void **state)
{
	ac_net_policy_t *p = policy("{\"block_hosts\": [\"203.0.113.0/24\", \"2001:db8:1::/48\", "
				    "\"203.0.113.9\"], \"allow_hosts\": [\"203.0.113.9\"]}");
	expect_name(p, "203.0.113.200", R_BLOCKED);
	expect_name(p, "203.0.113.9", R_BLOCKED); /* block beats allow */
	expect_name(p, "::ffff:203.0.113.5", R_BLOCKED);
	expect_name(p, "2001:db8:1:ffff::1", R_BLOCKED);
	expect_name(p, "[2001:db8:1::1]", R_BLOCKED);
	expect_name(p, "2001:db8:2::1", NULL);
	expect_name(p, "203.0.114.1", NULL);
	ac_net_policy_free(p);
}

static void test_names_invalid(void **state)
{
	ac_net_policy_t *p = policy(NULL);
	static const char *bad[] = {
	    "",		  "a..b",	   "-a.com",	       "exa mple.com",
	    "a.com:443",  "*.example.com", "evil.com\r\nX: y", "127.1",
	    "0x7f000001", "[::1",	   "b\xc3\xbc.de"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++)
		expect_name(p, bad[i], "invalid host name");
	expect_name(p, NULL, "invalid host name");
	expect_name(p, "localhost", NULL); /* names pass; the address check refuses it */
	ac_net_policy_free(p);
}

static void test_host_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
	    {"API.Example.com.", "api.example.com"}, {"[2001:DB8:0:0::1]", "2001:db8::1"},
	    {"2001:db8::1", "2001:db8::1"},	     {"192.0.2.1", "192.0.2.1"},
	    {"_srv.Example", "_srv.example"},
	};
	char out[AC_NET_HOST_MAX];
	for (size_t i = 0; i < AC_ARRAY_SIZE(ok); i++) {
		assert_null(ac_net_host_normalize(ok[i].in, out));
		assert_string_equal(out, ok[i].out);
	}
	assert_non_null(ac_net_host_normalize("*.example.com", out));
	assert_string_equal(out, "");
	assert_non_null(ac_net_host_normalize("example.com:443", out));
	assert_non_null(ac_net_host_normalize("10.0.0.0/8", out));
	assert_non_null(ac_net_host_normalize(NULL, out));
}

/* ---- addresses ---- */

static void test_addr_reserved_v4(void **state)
{
	ac_net_policy_t *p = policy(NULL);
	static const struct {
		const char *addr, *why;
	} cases[] = {
	    {"0.0.0.0", "unspecified address"},
	    {"0.1.2.3", "reserved address"},
	    {"0.255.255.255", "reserved address"},
	    {"127.0.0.1", "loopback address"},
	    {"127.255.255.254", "loopback address"},
	    {"10.0.0.1", "private address"},
	    {"10.255.255.255", "private address"},
	    {"172.16.0.1", "private address"},
	    {"172.31.255.255", "private address"},
	    {"192.168.1.1", "private address"},
	    {"100.64.0.1", "shared address space"},
	    {"100.127.255.255", "shared address space"},
	    {"169.254.169.254", "link-local address (cloud metadata)"},
	    {"169.254.0.1", "link-local address (cloud metadata)"},
	    {"224.0.0.1", "multicast address"},
	    {"239.255.255.250", "multicast address"},
	    {"240.0.0.1", "reserved address"},
	    {"254.1.2.3", "reserved address"},
	    {"255.255.255.255", "broadcast address"},
	    /* public: the edges of the ranges and the documentation blocks */
	    {"11.0.0.1", NULL},
	    {"9.255.255.255", NULL},
	    {"172.15.255.255", NULL},
	    {"172.32.0.0", NULL},
	    {"192.167.255.255", NULL},
	    {"192.169.0.0", NULL},
	    {"100.63.255.255", NULL},
	    {"100.128.0.0", NULL},
	    {"169.253.255.255", NULL},
	    {"169.255.0.0", NULL},
	    {"126.255.255.255", NULL},
	    {"128.0.0.0", NULL},
	    {"1.0.0.0", NULL},
	    {"223.255.255.255", NULL},
	    {"8.8.8.8", NULL},
	    {"192.0.2.1", NULL},
	    {"198.51.100.1", NULL},
	    {"203.0.113.1", NULL},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++)
		expect_addr(p, cases[i].addr, cases[i].why);
	ac_net_policy_free(p);
}

static void test_addr_reserved_v6(void **state)
{
	ac_net_policy_t *p = policy(NULL);
	static const struct {
		const char *addr, *why;
	} cases[] = {
	    {"::", "unspecified address"},
	    {"::1", "loopback address"},
	    {"fc00::1", "private address"},
	    {"fd12:3456::1", "private address"},
	    {"fdff:ffff::1", "private address"},
	    {"fe80::1", "link-local address"},
	    {"febf:ffff::1", "link-local address"},
	    {"fec0::1", "private address"},
	    {"ff02::1", "multicast address"},
	    {"ff0e::1", "multicast address"},
	    {"64:ff9b:1::1", "private address"},
	    /* IPv4-mapped */
	    {"::ffff:127.0.0.1", "loopback address"},
	    {"::ffff:10.1.2.3", "private address"},
	    {"::ffff:169.254.169.254", "link-local address (cloud metadata)"},
	    {"::ffff:0.0.0.0", "unspecified address"},
	    {"::ffff:100.64.1.1", "shared address space"},
	    {"::ffff:224.0.0.1", "multicast address"},
	    {"::ffff:255.255.255.255", "broadcast address"},
	    {"::ffff:8.8.8.8", NULL},
	    /* IPv4-translated (SIIT) */
	    {"::ffff:0:192.168.0.1", "private address"},
	    {"::ffff:0:8.8.8.8", NULL},
	    /* IPv4-compatible */
	    {"::127.0.0.1", "loopback address"},
	    {"::10.0.0.1", "private address"},
	    {"::169.254.169.254", "link-local address (cloud metadata)"},
	    {"::0.0.0.2", "reserved address"},
	    {"::8.8.8.8", NULL},
	    /* NAT64 */
	    {"64:ff9b::127.0.0.1", "loopback address"},
	    {"64:ff9b::192.168.1.1", "private address"},
	    {"64:ff9b::169.254.169.254", "link-local address (cloud metadata)"},
	    {"64:ff9b::8.8.8.8", NULL},
	    /* 6to4 */
	    {"2002:7f00:1::", "loopback address"},
	    {"2002:a00:1::1", "private address"},
	    {"2002:a9fe:a9fe::1", "link-local address (cloud metadata)"},
	    {"2002:808:808::1", NULL},
	    /* public, documentation included */
	    {"2001:db8::1", NULL},
	    {"2606:4700:4700::1111", NULL},
	    {"2a00:1450:4001::1", NULL},
	    {"fbff:ffff::1", NULL},
	    {"fe00::1", NULL},
	    {"::2:0:0:1", NULL},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++)
		expect_addr(p, cases[i].addr, cases[i].why);

	/* Not an internet address at all. */
	struct sockaddr_un_like {
		sa_family_t family;
		char path[20];
	} un = {AF_UNIX, "/tmp/x"};
	assert_string_equal(ac_net_policy_check_addr(p, (const struct sockaddr *)(void *)&un),
			    "unsupported address family");
	assert_non_null(ac_net_policy_check_addr(p, NULL));
	ac_net_policy_free(p);
}

static void test_addr_explicit_allow(void **state)
{
	ac_net_policy_t *p = policy("{\"allow_hosts\": [\"10.1.2.3\", \"192.168.0.0/16\", "
				    "\"fd00:1::/32\", \"169.254.169.254\", \"example.com\", "
				    "\"*.internal.corp\"]}");
	expect_addr(p, "10.1.2.3", NULL);
	expect_addr(p, "10.1.2.4", "private address");
	expect_addr(p, "192.168.77.1", NULL);
	expect_addr(p, "fd00:1:2::3", NULL);
	expect_addr(p, "fd00:2::3", "private address");
	expect_addr(p, "169.254.169.254", NULL);
	expect_addr(p, "169.254.169.253", "link-local address (cloud metadata)");
	/* the IPv4-mapped form is the same destination; relayed forms stay refused */
	expect_addr(p, "::ffff:10.1.2.3", NULL);
	expect_addr(p, "::ffff:192.168.3.4", NULL);
	expect_addr(p, "64:ff9b::10.1.2.3", "private address");
	expect_addr(p, "2002:a01:203::1", "private address");
	/* names allow nothing at the address level */
	expect_addr(p, "127.0.0.1", "loopback address");
	ac_net_policy_free(p);

	/* An explicit allow of a loopback address (the user's own choice) is honoured. */
	p = policy("{\"allow_hosts\": [\"127.0.0.0/8\", \"::1\"]}");
	expect_addr(p, "127.0.0.1", NULL);
	expect_addr(p, "::1", NULL);
	ac_net_policy_free(p);
}

static void test_addr_explicit_block(void **state)
{
	ac_net_policy_t *p = policy("{\"block_hosts\": [\"8.8.8.0/24\", \"2606:4700::/32\", "
				    "\"10.9.9.9\", \"example.com\"], "
				    "\"allow_hosts\": [\"8.8.8.8\", \"10.9.9.9\", \"0.0.0.0/0\"]}");
	expect_addr(p, "8.8.8.8", "blocked by block_hosts");
	expect_addr(p, "8.8.8.200", "blocked by block_hosts");
	expect_addr(p, "10.9.9.9", "blocked by block_hosts");
	expect_addr(p, "2606:4700:4700::1111", "blocked by block_hosts");
	/* every IPv6 form that carries a blocked IPv4 address */
	expect_addr(p, "::ffff:8.8.8.8", "blocked by block_hosts");
	expect_addr(p, "::ffff:0:8.8.8.8", "blocked by block_hosts");
	expect_addr(p, "::8.8.8.8", "blocked by block_hosts");
	expect_addr(p, "64:ff9b::8.8.8.8", "blocked by block_hosts");
	expect_addr(p, "2002:808:808::1", "blocked by block_hosts");
	/* 0.0.0.0/0 allows every other v4 address, private ones included */
	expect_addr(p, "8.8.4.4", NULL);
	expect_addr(p, "10.0.0.1", NULL);
	expect_addr(p, "2606:4701::1", NULL);
	ac_net_policy_free(p);
}

/* ---- the host's own addresses ---- */

/* Every address `ip -o addr` lists is refused after add_local; one that would otherwise be
 * allowed is refused as the host's own. Returns how many such public ones there were. */
static int check_ip_addr_listing(const ac_net_policy_t *plain, const ac_net_policy_t *local)
{
	FILE *f = popen("ip -o addr 2>/dev/null", "r");
	if (f == NULL)
		return -1;
	char line[512];
	int seen = 0, public = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char fam[16], cidr[128];
		if (sscanf(line, "%*s %*s %15s %127s", fam, cidr) != 2)
			continue;
		if (strcmp(fam, "inet") != 0 && strcmp(fam, "inet6") != 0)
			continue;
		char *slash = strchr(cidr, '/');
		if (slash != NULL)
			*slash = '\0';
		seen++;
		const char *got = addr_verdict(local, cidr);
		if (got == NULL) {
			print_error("%s (an address of this host) allowed after add_local\n", cidr);
			pclose(f);
			fail();
		}
		if (addr_verdict(plain, cidr) == NULL) {
			assert_string_equal(got, R_LOCAL);
			public++;
		}
	}
	pclose(f);
	return seen > 0 ? public : -1;
}

static void test_add_local(void **state)
{
	ac_net_policy_t *plain = policy(NULL);
	ac_net_policy_t *p = policy(NULL);
	assert_int_equal(ac_net_policy_add_local(p), 0);
	expect_addr(p, "127.0.0.1", "loopback address");
	expect_addr(p, "::1", "loopback address");
	int public = check_ip_addr_listing(plain, p);
	if (public < 0)
		print_message("(ip -o addr not available: only loopback checked)\n");
	else
		print_message("(%d public address(es) of this host refused as its own)\n", public);
	/* An explicit allow still wins, an explicit block still names itself. */
	ac_net_policy_free(plain);
	ac_net_policy_free(p);
	assert_int_equal(ac_net_policy_add_local(NULL), -1);
}

/* In a new network namespace, give lo public (documentation) addresses and check that
 * add_local makes them, and the IPv4-mapped form, "the host's own". */
static int netns_child(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWNET) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return 77;
	if (system("ip link set lo up && ip addr add 198.51.100.7/32 dev lo && "
		   "ip -6 addr add 2001:db8::7/128 dev lo nodad >/dev/null 2>&1") != 0)
		return 77;
	ac_net_policy_t *plain = ac_net_policy_new(NULL, NULL);
	ac_net_policy_t *p = ac_net_policy_new(NULL, NULL);
	json_t *j = json_pack("{s:[s]}", "allow_hosts", "198.51.100.7");
	ac_net_policy_t *allow = ac_net_policy_new(j, NULL);
	json_decref(j);
	if (plain == NULL || p == NULL || allow == NULL || ac_net_policy_add_local(p) < 0 ||
	    ac_net_policy_add_local(allow) < 0)
		return 10;
	const char *want[][3] = {
	    /* address, without add_local, with it */
	    {"198.51.100.7", NULL, R_LOCAL},
	    {"::ffff:198.51.100.7", NULL, R_LOCAL},
	    {"64:ff9b::198.51.100.7", NULL, R_LOCAL},
	    {"2001:db8::7", NULL, R_LOCAL},
	    {"198.51.100.8", NULL, NULL},
	    {"2001:db8::8", NULL, NULL},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(want); i++) {
		const char *a = addr_verdict(plain, want[i][0]);
		const char *b = addr_verdict(p, want[i][0]);
		if ((a == NULL) != (want[i][1] == NULL) || (b == NULL) != (want[i][2] == NULL) ||
		    (b != NULL && strcmp(b, want[i][2]) != 0)) {
			fprintf(stderr, "%s: %s / %s\n", want[i][0], a ? a : "allowed",
				b ? b : "allowed");
			return 11 + (int)i;
		}
	}
	/* an explicit allow beats the host's own set */
	if (addr_verdict(allow, "198.51.100.7") != NULL)
		return 30;
	ac_net_policy_free(plain);
	ac_net_policy_free(p);
	ac_net_policy_free(allow);
	return 0;
}

static void test_add_local_netns(void **state)
{
	int rc = ac_test_fork_wait(netns_child, NULL);
	if (rc == 77)
		skip();
	assert_int_equal(rc, 0);
}

/* ---- concurrency ---- */

typedef struct {
	const ac_net_policy_t *p;
	int bad;
} reader_t;

static void *reader(void *arg)
{
	reader_t *r = arg;
	for (int i = 0; i < 20000; i++) {
		if (ac_net_policy_check_name(r->p, "x.blocked.example") == NULL ||
		    ac_net_policy_check_name(r->p, "ok.example") != NULL)
			r->bad++;
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)i);
		if (ac_net_policy_check_addr(r->p, (struct sockaddr *)&sa) == NULL)
			r->bad++;
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	ac_net_policy_t *p = policy("{\"block_hosts\": [\"*.blocked.example\"]}");
	assert_int_equal(ac_net_policy_add_local(p), 0);
	pthread_t t[4];
	reader_t r[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (reader_t){p, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	ac_net_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_patterns_valid),
	    cmocka_unit_test(test_patterns_invalid),
	    cmocka_unit_test(test_pattern_message_is_one_line),
	    cmocka_unit_test(test_policy_json_errors),
	    cmocka_unit_test(test_names_block),
	    cmocka_unit_test(test_names_allowlist_only),
	    cmocka_unit_test(test_names_ip_block),
	    cmocka_unit_test(test_names_invalid),
	    cmocka_unit_test(test_host_normalize),
	    cmocka_unit_test(test_addr_reserved_v4),
	    cmocka_unit_test(test_addr_reserved_v6),
	    cmocka_unit_test(test_addr_explicit_allow),
	    cmocka_unit_test(test_addr_explicit_block),
	    cmocka_unit_test(test_add_local),
	    cmocka_unit_test(test_add_local_netns),
	    cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
