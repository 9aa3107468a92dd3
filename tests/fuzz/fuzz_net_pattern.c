/* Fuzz target: arbitrary bytes as a host pattern (ac_net_pattern_check, a policy built from
 * it, the name check) and as a secret binding spec. Checks the error contract, that an
 * accepted host pattern blocks the host it names, and that normalising is idempotent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "net/pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One line, and usable in a JSON body (valid UTF-8). */
static void check_message(const ac_error_t *err, const char *prefix)
{
	if (err == NULL || strchr(err->msg, '\n') != NULL ||
	    strncmp(err->msg, prefix, strlen(prefix)) != 0)
		abort();
	json_t *m = json_string(err->msg);
	if (m == NULL)
		abort();
	json_decref(m);
}

static void fuzz_pattern(const char *s)
{
	ac_error_t *err = NULL;
	int rc = ac_net_pattern_check(s, &err);
	json_t *net = json_pack("{s:[s], s:b}", "block_hosts", s, "allowlist_only", 1);
	if (net == NULL) { /* not UTF-8: jansson refuses it, nothing to build */
		ac_error_free(err);
		return;
	}
	ac_error_t *perr = NULL;
	ac_net_policy_t *p = ac_net_policy_new(net, &perr);
	json_decref(net);
	if (rc < 0) {
		check_message(err, "invalid host pattern '");
		check_message(perr, "invalid host pattern '");
		if (p != NULL || err->kind != AC_ERR_INVALID)
			abort();
		ac_error_free(err);
		ac_error_free(perr);
		return;
	}
	if (err != NULL || p == NULL || perr != NULL)
		abort();
	char norm[AC_NET_HOST_MAX], again[AC_NET_HOST_MAX];
	if (ac_net_host_normalize(s, norm) == NULL) {
		/* A host pattern blocks its host, in any spelling normalising gives. */
		if (ac_net_host_normalize(norm, again) != NULL || strcmp(norm, again) != 0)
			abort();
		const char *why = ac_net_policy_check_name(p, s);
		if (why == NULL || strcmp(why, "blocked by block_hosts") != 0)
			abort();
		why = ac_net_policy_check_name(p, norm);
		if (why == NULL || strcmp(why, "blocked by block_hosts") != 0)
			abort();
	} else if (norm[0] != '\0') {
		abort();
	}
	/* Whatever matches, an unrelated name is refused by allowlist_only or blocked. */
	if (ac_net_policy_check_name(p, "unrelated.example") == NULL)
		abort();
	ac_net_policy_free(p);
}

static void fuzz_binding(const char *s)
{
	ac_error_t *err = NULL;
	json_t *b = ac_secret_binding_parse(s, &err);
	if (b == NULL) {
		check_message(err, "invalid secret binding '");
		ac_error_free(err);
		return;
	}
	if (err != NULL || json_object_size(b) != 4)
		abort();
	const char *key = json_string_value(json_object_get(b, "key"));
	const char *host = json_string_value(json_object_get(b, "host"));
	const char *header = json_string_value(json_object_get(b, "header"));
	const char *prefix = json_string_value(json_object_get(b, "prefix"));
	if (key == NULL || host == NULL || header == NULL || prefix == NULL)
		abort();
	if (ac_secret_key_check(key, NULL) < 0 || strpbrk(prefix, "\r\n") != NULL ||
	    *header == '\0' || strpbrk(header, " :\r\n") != NULL)
		abort();
	/* The host is given back in its normal form. */
	char norm[AC_NET_HOST_MAX];
	if (ac_net_host_normalize(host, norm) != NULL || strcmp(norm, host) != 0)
		abort();
	json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_pattern(s);
	fuzz_binding(s);
	free(s);
	return 0;
}
