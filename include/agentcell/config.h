/* agentcell.toml: defaults for create and run, the command policy, [[files]] and [api].
 * Looked up as --config FILE, else ./agentcell.toml, else $AGENTCELL_HOME/agentcell.toml.
 *
 *   [sandbox]            name (ignored: names come from the command line), image,
 *                        init_script (run with sh -c at every start, as --init-script)
 *   [resources]          vcpus (number), memory_mb, pids, disk_mb (0 or "unlimited": none)
 *   [security]           profile, network (docker/podman only), mount_cwd, read_only,
 *                        pass_env (true: PATH HOME USER LANG LC_ALL TERM, or an array of
 *                        variable names: the caller's values passed in; -e wins)
 *   [security.commands]  allow = [...], block = [...], allowlist_only = bool
 *   [network]            allow_hosts, block_hosts (host patterns), allowlist_only
 *   [[files]]            host = "...", sandbox = "/..."
 *   [api]                api_key, api_key_env (for 'serve'), allow_sudo_exec = bool
 *                        (default false: HTTP and MCP requests with sudo are refused;
 *                        read as cfg.api.allow_sudo_exec)
 *   [audit]              format = "agentcell" (default) | "agentkernel": the event names
 *                        and fields audit.jsonl gets (read as cfg.audit.format)
 *   [pool]               size (0-64), image: serve's warm pool (serve --pool, --pool-image)
 *   [images]             insecure = ["host:port", ...]: registries agentcell's image store
 *                        pulls from over plain HTTP (image pull, create --image)
 *   [languages]          NAME = "IMAGE": a code run's image on docker/podman (run --language)
 *   [kubernetes]         namespace, context, kubeconfig, runtime_class, service_account,
 *                        node_selector (table of strings), image, image_pull_secrets
 *                        (array of strings), run_as_user (integer)
 *   [nomad]              see src/backends/nomad/conn.c
 * A backend's table is copied into the state of its sandboxes at create
 * (ac_sandbox_opts_t.backend_config).
 * Anything else is an error naming the key, with the file, line and column when the TOML
 * itself is wrong.
 *
 * agentkernel.toml (src/core/config_compat.c) is read too: after agentcell.toml, from the
 * same places (./agentkernel.toml, else $AGENTCELL_HOME/agentkernel.toml), its keys mapped
 * onto the ones above ([sandbox] base_image -> image, [[files]] source/dest -> host/sandbox
 * with source relative to the file, [security.domains] -> [network], [orchestrator] ->
 * [kubernetes]/[nomad], ...). agentcell.toml's values win where both set one. A key with
 * no meaning here is accepted with one warning naming it (AC_CONFIG_WARNINGS_KEY); a
 * mapped key of the wrong type is an error naming it, the file and the line. --config FILE
 * reads FILE alone, as agentkernel.toml when its name is agentkernel.toml or its content
 * has agentkernel's own keys. */
#ifndef AGENTCELL_CONFIG_H
#define AGENTCELL_CONFIG_H

#include <jansson.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"

/* The key of a loaded configuration that holds the file's absolute path (no TOML key can
 * be it: validation refuses unknown keys before it is added). */
#define AC_CONFIG_FILE_KEY "config_file"

/* The key of a loaded configuration that holds the warnings about agentkernel.toml's keys
 * (an array of one-line strings "FILE: [table] key has no meaning here (ignored)"); like
 * AC_CONFIG_FILE_KEY, no TOML key can be it. */
#define AC_CONFIG_WARNINGS_KEY "config_warnings"

/* Loads and validates the configuration; *out is an empty object when there is no file
 * (and no explicit path). */
int ac_config_load(const char *explicit_path, const char *home, json_t **out, ac_error_t **err);
/* Prints the load's warnings to stderr, "agentcell: warning: MSG" (or "agentkernel:" when
 * invoked under that name), each message once per process however often it is called. */
void ac_config_print_warnings(json_t *cfg);
/* Fills what o leaves unset from the configuration (command-line options win). Strings in
 * o point into cfg, which must outlive o. */
int ac_config_apply(json_t *cfg, ac_sandbox_opts_t *o, ac_error_t **err);
/* A disk size as the operator gives it (--disk, agentcell.toml): a whole number of MB from
 * AC_DISK_MIN_MB to AC_DISK_MAX_MB, or "unlimited" (*mb = 0). 0 or -1 (errno set). */
int ac_disk_mb_parse(const char *s, uint64_t *mb);

#endif
