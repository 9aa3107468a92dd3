/* Fuzz target: the lifecycle parsers and rules on arbitrary input. The first line is a
 * duration, a label "KEY=VALUE" (also used as a selector) and an audit string; the rest is a
 * sandbox state for the reconcile rules, extend_ttl and the expiry check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/util.h"
#include "core/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t first = nl ? (size_t)(nl - data) : size;
	char *word = malloc(first + 1);
	if (word == NULL)
		return 0;
	memcpy(word, data, first);
	word[first] = '\0';

	uint64_t secs;
	if (ac_duration_parse(word, &secs) == 0) {
		char buf[32];
		ac_duration_format(secs, buf);
		uint64_t again;
		if (ac_duration_parse(buf, &again) != 0 || again != secs)
			abort();
	}
	char key[AC_LABEL_KEY_MAX + 1];
	const char *value;
	ac_error_t *err = NULL;
	bool label_ok = ac_label_parse(word, key, sizeof(key), &value, &err) == 0;
	ac_error_free(err);
	json_t *s = ac_audit_string(word, 64);
	if (s == NULL || json_string_length(s) > 64)
		abort();
	json_decref(s);

	if (nl) {
		json_t *st = json_loadb((const char *)nl + 1, size - first - 1, 0, NULL);
		if (st) {
			const int64_t now = 1780000000000;
			char reason[160];
			for (int running = 0; running < 2; running++) {
				const char *a = ac_lifecycle_decide_one(st, running, now, reason,
									sizeof(reason));
				if (a && strcmp(a, "stop") && strcmp(a, "archive") &&
				    strcmp(a, "delete"))
					abort();
			}
			json_t *arr = json_array();
			json_array_append(arr, st);
			json_t *out = NULL;
			bool flags[1] = {true};
			if (ac_lifecycle_decide(arr, flags, now, &out, NULL) == 0)
				json_decref(out);
			json_decref(arr);
			char *sel[2] = {label_ok ? word : NULL, NULL};
			(void)ac_labels_match(st, sel);
			(void)ac_ttl_expired(st, now);
			if (json_is_object(st)) {
				json_t *copy = json_deep_copy(st);
				ac_error_t *e = NULL;
				ac_ttl_extend_state(copy, label_ok ? 3600 : 1, now, &e);
				ac_error_free(e);
				json_decref(copy);
			}
			json_decref(st);
		}
	}
	free(word);
	return 0;
}
