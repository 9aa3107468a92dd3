/* agentkernel.toml read as agentcell.toml (src/core/config_compat.c): the key mapping that
 * ac_config_load (src/core/config.c) applies to a file in agentkernel's schema. */
#ifndef AGENTCELL_CORE_CONFIG_COMPAT_H
#define AGENTCELL_CORE_CONFIG_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "agentcell/error.h"

/* Whether a parsed TOML tree is clearly agentkernel's: it has a table or key that only
 * agentkernel.toml has ([agent], [build], [orchestrator], [sandbox] base_image,
 * [[files]] source, [security.domains], ...). */
bool ac_config_compat_detect(const json_t *raw);

/* Converts raw (agentkernel.toml parsed; text/len its source, for line numbers in
 * messages; path as the user knows it, abs_dir the file's directory for relative
 * [[files]] sources) into a new tree in agentcell.toml's schema in *out, which
 * ac_config_load then validates as strictly as agentcell.toml. Keys with no meaning here
 * append one message each to warnings ("PATH: [table] key has no meaning here
 * (ignored)"); a key that is mapped but has the wrong type is AC_ERR_INVALID
 * "PATH:LINE: [table] key must be ...". Keys of agentcell.toml's own schema pass through
 * unchanged. */
int ac_config_compat_convert(const json_t *raw, const char *text, size_t len, const char *path,
			     const char *abs_dir, json_t **out, json_t *warnings, ac_error_t **err);

/* Fills what cfg (agentcell.toml) leaves unset from ak (agentkernel.toml, converted):
 * tables one level deep ([security.commands] two), [[files]] as a whole. */
void ac_config_compat_merge(json_t *cfg, const json_t *ak);

#endif
