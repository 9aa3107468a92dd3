/* Fuzz target: arbitrary bytes as agentkernel.toml, through the key mapping of
 * src/core/config_compat.c. Checks the error contract (one line naming the file), that every
 * warning is one line of JSON-able text, and that the converted tree is an object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/toml.h"
#include "core/config_compat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *raw = NULL, *out = NULL, *warnings = json_array();
	ac_error_t *err = NULL;
	if (!warnings)
		return 0;
	if (ac_toml_parse((const char *)data, size, "agentkernel.toml", &raw, &err) < 0) {
		ac_error_free(err);
		json_decref(warnings);
		return 0;
	}
	(void)ac_config_compat_detect(raw);
	int rc = ac_config_compat_convert(raw, (const char *)data, size, "agentkernel.toml", "/d",
					  &out, warnings, &err);
	if (rc == 0) {
		if (!json_is_object(out) || err)
			abort();
		json_t *cfg = json_object();
		ac_config_compat_merge(cfg, out);
		json_decref(cfg);
		json_decref(out);
	} else {
		if (!err || out || strchr(err->msg, '\n') ||
		    strncmp(err->msg, "agentkernel.toml", 16) != 0)
			abort();
		json_t *m = json_string(err->msg); /* messages end up in JSON bodies */
		if (!m)
			abort();
		json_decref(m);
		ac_error_free(err);
	}
	size_t i;
	json_t *w;
	json_array_foreach(warnings, i, w)
	{
		const char *s = json_string_value(w);
		if (!s || strchr(s, '\n') || strncmp(s, "agentkernel.toml: ", 18) != 0)
			abort();
	}
	json_decref(warnings);
	json_decref(raw);
	return 0;
}
