/* Fuzz target: arbitrary bytes as agentcell.toml. Checks the error contract and that every
 * accepted document is a JSON object that jansson can serialise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL;
	ac_error_t *err = NULL;
	if (ac_toml_parse((const char *)data, size, "fuzz.toml", &doc, &err) == 0) {
		if (!json_is_object(doc) || err != NULL)
			abort();
		/* Strings and keys must be valid UTF-8 for the dump to succeed. */
		char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
		if (s == NULL)
			abort();
		free(s);
		json_decref(doc);
	} else {
		/* Failure always says why, on one line, and leaves *out alone. */
		if (err == NULL || doc != NULL || strchr(err->msg, '\n') != NULL)
			abort();
		if (strncmp(err->msg, "fuzz.toml:", 10) != 0)
			abort();
		json_t *m = json_string(err->msg); /* messages end up in JSON bodies */
		if (m == NULL)
			abort();
		json_decref(m);
		ac_error_free(err);
	}
	return 0;
}
