/* agentcell.toml (see include/agentcell/config.h). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "agentcell/languages.h"
#include "agentcell/metrics.h"
#include "base/toml.h"
#include "core/config_compat.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "net/net.h"

static const char *const tables[][21] = {
    {"sandbox", "name", "image", "init_script", NULL},
    {"resources", "vcpus", "memory_mb", "pids", "disk_mb", NULL},
    {"security", "profile", "network", "mount_cwd", "read_only", "commands", "pass_env", NULL},
    {"commands", "allow", "block", "allowlist_only", NULL},
    {"network", "allow_hosts", "block_hosts", "allowlist_only", NULL},
    {"files", "host", "sandbox", NULL},
    {"api", "api_key", "api_key_env", "allow_sudo_exec", NULL},
    {"audit", "format", NULL},
    {"pool", "size", "image", NULL},
    {"images", "insecure", NULL},
    {"kubernetes", "namespace", "context", "kubeconfig", "runtime_class", "service_account",
     "node_selector", "image", "image_pull_secrets", "run_as_user", NULL},
    {"nomad",	    "address",	   "namespace",	     "region",
     "ca_cert",	    "client_cert", "client_key",     "tls_server_name",
     "skip_verify", "driver",	   "allow_raw_exec", "datacenters",
     "node_pool",   "image",	   "cores",	     "cpu_mhz_per_core",
     "user",	    "token_file",  "token",	     NULL},
};

int ac_disk_mb_parse(const char *s, uint64_t *mb)
{
	if (s && !strcmp(s, "unlimited")) {
		*mb = 0;
		return 0;
	}
	return ac_parse_u64(s, AC_DISK_MIN_MB, AC_DISK_MAX_MB, mb);
}

/* disk_mb of agentcell.toml: an integer in range, 0 or "unlimited" (no limit). */
static int disk_mb_value(const json_t *v, uint64_t *mb)
{
	if (json_is_string(v))
		return ac_disk_mb_parse(json_string_value(v), mb);
	if (!json_is_integer(v))
		return -1;
	json_int_t n = json_integer_value(v);
	if (n != 0 && (n < (json_int_t)AC_DISK_MIN_MB || n > (json_int_t)AC_DISK_MAX_MB))
		return -1;
	*mb = (uint64_t)n;
	return 0;
}

static int check_keys(const json_t *t, const char *table, const char *path, ac_error_t **err)
{
	if (!json_is_object(t))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: [%s] must be a table", path,
				    table);
	const char *const *known = NULL;
	for (size_t i = 0; i < AC_ARRAY_SIZE(tables); i++)
		if (!strcmp(tables[i][0], table))
			known = tables[i] + 1;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)t, k, v)
	{
		bool ok = false;
		for (const char *const *n = known; n && *n; n++)
			ok = ok || !strcmp(*n, k);
		if (!ok)
			return ac_error_set(err, AC_ERR_INVALID, 0, "%s: unknown key '%s' in [%s]",
					    path, k, table);
	}
	return 0;
}

static int want(const json_t *v, int type, const char *path, const char *key, ac_error_t **err)
{
	static const char *names[] = {"a table",    "an array", "a string",
				      "an integer", "a number", "a boolean"};
	bool ok = type == 0   ? json_is_object(v)
		  : type == 1 ? json_is_array(v)
		  : type == 2 ? json_is_string(v)
		  : type == 3 ? json_is_integer(v)
		  : type == 4 ? json_is_number(v)
			      : json_is_boolean(v);
	return ok ? 0
		  : ac_error_set(err, AC_ERR_INVALID, 0, "%s: %s must be %s", path, key,
				 names[type]);
}

static int check_names(const json_t *arr, const char *path, const char *key, ac_error_t **err)
{
	if (want(arr, 1, path, key, err) < 0)
		return -1;
	size_t i;
	json_t *v;
	json_array_foreach((json_t *)arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !*s || strlen(s) != json_string_length(v) || strlen(s) > 255 ||
		    (strchr(s, '/') && s[0] != '/'))
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "%s: %s[%zu] must be a program name or an absolute path", path, key, i);
	}
	return 0;
}

/* [network]: the egress policy of sandboxes with the network on (src/net/net.h). */
static int check_network(const json_t *t, const char *path, ac_error_t **err)
{
	static const char *const lists[] = {"allow_hosts", "block_hosts"};
	for (size_t l = 0; t && l < AC_ARRAY_SIZE(lists); l++) {
		json_t *arr = json_object_get(t, lists[l]), *v;
		char key[64];
		snprintf(key, sizeof(key), "network.%s", lists[l]);
		if (!arr)
			continue;
		if (want(arr, 1, path, key, err) < 0)
			return -1;
		size_t i;
		json_array_foreach(arr, i, v)
		{
			ac_error_t *e = NULL;
			if (!json_is_string(v) ||
			    ac_net_pattern_check(json_string_value(v), &e) < 0) {
				ac_error_set(err, AC_ERR_INVALID, 0, "%s: %s[%zu]: %s", path, key,
					     i, e ? e->msg : "must be a string");
				ac_error_free(e);
				return -1;
			}
		}
	}
	json_t *v = json_object_get(t, "allowlist_only");
	if (v && want(v, 5, path, "network.allowlist_only", err) < 0)
		return -1;
	return 0;
}

/* [languages]: NAME = "IMAGE" (a code run's image on the container backends). */
static int check_languages(const json_t *t, const char *path, ac_error_t **err)
{
	if (!json_is_object(t))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: [languages] must be a table of NAME = \"IMAGE\"", path);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)t, k, v)
	{
		size_t klen = json_object_iter_key_len(json_object_key_to_iter(k));
		if (!ac_language_name_valid(k) || strlen(k) != klen)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: languages.%.64s: not a language name (1-%d of "
					    "A-Z a-z 0-9 + # . _ -, starting with a letter)",
					    path, k, AC_LANGUAGE_NAME_MAX);
		if (!json_is_string(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: languages.%s must be a string (an image reference "
					    "such as \"python:3.12-slim\")",
					    path, k);
		const char *img = json_string_value(v);
		if (strlen(img) != json_string_length(v) || !ac_image_ref_valid(img))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: languages.%s: '%.300s' is not an image reference "
					    "(1-255 printable characters, no spaces, not starting "
					    "with - / or .)",
					    path, k, img);
		/* Names ignore case: two spellings of one would leave the choice to chance. */
		const char *k2;
		json_t *v2;
		json_object_foreach((json_t *)t, k2, v2)
		{
			if (k2 != k && !strcasecmp(k2, k))
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "%s: languages.%s is given twice (language "
						    "names ignore case)",
						    path, k);
		}
	}
	return 0;
}

/* [kubernetes]: strings, node_selector a table of strings, image_pull_secrets an array of
 * strings, run_as_user an integer (a uid). */
static int check_kubernetes(const json_t *t, const char *path, ac_error_t **err)
{
	static const char *const strs[] = {"namespace",	    "context",	       "kubeconfig",
					   "runtime_class", "service_account", "image"};
	json_t *v;
	for (size_t i = 0; t && i < AC_ARRAY_SIZE(strs); i++) {
		if (!(v = json_object_get(t, strs[i])))
			continue;
		const char *s = json_string_value(v);
		if (!s || !*s || strlen(s) != json_string_length(v) || strlen(s) > 4096)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: kubernetes.%s must be a non-empty string", path,
					    strs[i]);
	}
	if ((v = json_object_get(t, "image")) && !ac_image_ref_valid(json_string_value(v)))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: kubernetes.image is not an image reference", path);
	if ((v = json_object_get(t, "node_selector"))) {
		const char *k;
		json_t *x;
		if (!json_is_object(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: kubernetes.node_selector must be a table of "
					    "strings",
					    path);
		json_object_foreach(v, k, x)
		{
			if (!json_is_string(x))
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "%s: kubernetes.node_selector.%.100s must be a "
						    "string",
						    path, k);
		}
	}
	if ((v = json_object_get(t, "image_pull_secrets"))) {
		size_t i;
		json_t *x;
		if (!json_is_array(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: kubernetes.image_pull_secrets must be an array of "
					    "strings",
					    path);
		json_array_foreach(v, i, x)
		{
			if (!json_is_string(x) || !json_string_length(x))
				return ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "%s: kubernetes.image_pull_secrets[%zu] must be "
				    "a non-empty string",
				    path, i);
		}
	}
	if ((v = json_object_get(t, "run_as_user")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 ||
	     json_integer_value(v) > 2147483647))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: kubernetes.run_as_user must be an integer (a uid)", path);
	return 0;
}

/* [nomad] (src/backends/nomad/conn.c): strings, booleans, datacenters an array of
 * strings, a known driver (raw_exec only with allow_raw_exec = true). A sandbox's create
 * checks the rest (files that exist, names Nomad takes). */
static int check_nomad(const json_t *t, const char *path, ac_error_t **err)
{
	static const char *const strs[] = {
	    "address",	  "namespace",	     "region", "ca_cert",   "client_cert",
	    "client_key", "tls_server_name", "driver", "node_pool", "image",
	    "user",	  "token_file",	     "token"};
	static const char *const bools[] = {"skip_verify", "allow_raw_exec", "cores"};
	json_t *v;
	for (size_t i = 0; t && i < AC_ARRAY_SIZE(strs); i++) {
		if (!(v = json_object_get(t, strs[i])))
			continue;
		const char *s = json_string_value(v);
		if (!s || !*s || strlen(s) != json_string_length(v) || strlen(s) > 4096)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: nomad.%s must be a non-empty string", path,
					    strs[i]);
	}
	for (size_t i = 0; t && i < AC_ARRAY_SIZE(bools); i++)
		if ((v = json_object_get(t, bools[i])) && !json_is_boolean(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: nomad.%s must be true or false", path, bools[i]);
	const char *d = json_string_value(json_object_get(t, "driver"));
	if (d && strcmp(d, "docker") && strcmp(d, "podman") && strcmp(d, "exec") &&
	    strcmp(d, "raw_exec"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: nomad.driver must be docker, podman, exec or raw_exec",
				    path);
	if (d && !strcmp(d, "raw_exec") && !json_is_true(json_object_get(t, "allow_raw_exec")))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: nomad.driver = \"raw_exec\" runs sandboxes without "
				    "isolation: it needs nomad.allow_raw_exec = true",
				    path);
	if ((v = json_object_get(t, "image")) && !ac_image_ref_valid(json_string_value(v)))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: nomad.image is not an image reference", path);
	if ((v = json_object_get(t, "datacenters"))) {
		size_t i;
		json_t *x;
		if (!json_is_array(v) || !json_array_size(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: nomad.datacenters must be a non-empty array of "
					    "strings",
					    path);
		json_array_foreach(v, i, x)
		{
			if (!json_is_string(x) || !json_string_length(x))
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "%s: nomad.datacenters[%zu] must be a "
						    "non-empty string",
						    path, i);
		}
	}
	if ((v = json_object_get(t, "cpu_mhz_per_core")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: nomad.cpu_mhz_per_core must be an integer from 1 to "
				    "1000000",
				    path);
	if (json_object_get(t, "token") && json_object_get(t, "token_file"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: nomad.token and nomad.token_file cannot both be set",
				    path);
	return 0;
}

/* [images] insecure = ["host", "host:port", ...]: registries pulled from over plain HTTP. */
static int check_images(const json_t *t, const char *path, ac_error_t **err)
{
	json_t *arr = json_object_get(t, "insecure"), *v;
	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 64)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: images.insecure must be an array of at most 64 registries "
				    "(\"host\" or \"host:port\")",
				    path);
	size_t i;
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v), *colon = s ? strrchr(s, ':') : NULL;
		size_t n = s ? strlen(s) : 0;
		bool ok = s && n && n == json_string_length(v) && n <= 255 && s[0] != '-' &&
			  s[0] != '.' &&
			  strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
				    "VWXYZ0123456789.-:[]") == n;
		uint64_t port;
		if (ok && colon && s[n - 1] != ']')
			ok = ac_parse_u64(colon + 1, 1, 65535, &port) == 0;
		if (!ok)
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "%s: images.insecure[%zu] must be a registry \"host\" or "
			    "\"host:port\"",
			    path, i);
	}
	return 0;
}

static int validate(json_t *cfg, const char *path, ac_error_t **err)
{
	const char *k;
	json_t *t;
	json_object_foreach(cfg, k, t)
	{
		if (!strcmp(k, "languages")) {
			if (check_languages(t, path, err) < 0)
				return -1;
			continue;
		}
		if (!strcmp(k, "files")) {
			if (want(t, 1, path, "files", err) < 0)
				return -1;
			size_t i;
			json_t *f;
			json_array_foreach(t, i, f)
			{
				if (check_keys(f, "files", path, err) < 0)
					return -1;
				const char *h = json_string_value(json_object_get(f, "host"));
				const char *s = json_string_value(json_object_get(f, "sandbox"));
				if (!h || !*h || !s || s[0] != '/')
					return ac_error_set(err, AC_ERR_INVALID, 0,
							    "%s: [[files]] %zu needs host = "
							    "\"PATH\" and sandbox = \"/PATH\"",
							    path, i + 1);
			}
			continue;
		}
		bool known = false;
		for (size_t i = 0; i < AC_ARRAY_SIZE(tables); i++)
			known = known || (!strcmp(tables[i][0], k) && strcmp(k, "commands"));
		if (!known)
			return ac_error_set(err, AC_ERR_INVALID, 0, "%s: unknown table [%s]", path,
					    k);
		if (check_keys(t, k, path, err) < 0)
			return -1;
	}
	json_t *v, *r = json_object_get(cfg, "resources"), *s = json_object_get(cfg, "security");
	if ((v = json_object_get(json_object_get(cfg, "sandbox"), "image")) &&
	    want(v, 2, path, "sandbox.image", err) < 0)
		return -1;
	if ((v = json_object_get(r, "vcpus")) &&
	    (want(v, 4, path, "resources.vcpus", err) < 0 ||
	     !(json_number_value(v) >= 0.01 && json_number_value(v) <= 1024)))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: resources.vcpus must be a number from 0.01 to 1024", path);
	if ((v = json_object_get(r, "memory_mb")) &&
	    (want(v, 3, path, "resources.memory_mb", err) < 0 ||
	     json_integer_value(v) < (json_int_t)AC_MEMORY_MIN_MB ||
	     json_integer_value(v) > (json_int_t)AC_MEMORY_MAX_MB))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: resources.memory_mb must be from %llu to %llu", path,
				    AC_MEMORY_MIN_MB, AC_MEMORY_MAX_MB);
	if ((v = json_object_get(r, "pids")) && (want(v, 3, path, "resources.pids", err) < 0 ||
						 json_integer_value(v) < (json_int_t)AC_PIDS_MIN ||
						 json_integer_value(v) > (json_int_t)AC_PIDS_MAX))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: resources.pids must be from %llu to %llu", path,
				    AC_PIDS_MIN, AC_PIDS_MAX);
	uint64_t disk;
	if ((v = json_object_get(r, "disk_mb")) && disk_mb_value(v, &disk) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: resources.disk_mb must be from %llu to %llu, or 0 or "
				    "\"unlimited\" for no limit",
				    path, AC_DISK_MIN_MB, AC_DISK_MAX_MB);
	if ((v = json_object_get(s, "profile"))) {
		const char *p = json_string_value(v);
		if (!ac_profile_find(p))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: security.profile must be %s", path,
					    ac_profile_names());
	}
	if ((v = json_object_get(s, "network"))) {
		/* true is the container backends' to honour; the native one refuses it when
		 * a sandbox is made. */
		if (want(v, 5, path, "security.network", err) < 0)
			return -1;
	}
	if ((v = json_object_get(s, "mount_cwd")) &&
	    want(v, 5, path, "security.mount_cwd", err) < 0)
		return -1;
	if ((v = json_object_get(s, "read_only")) &&
	    want(v, 5, path, "security.read_only", err) < 0)
		return -1;
	json_t *c = json_object_get(s, "commands");
	if (c) {
		if (check_keys(c, "commands", path, err) < 0)
			return -1;
		if ((v = json_object_get(c, "allow")) &&
		    check_names(v, path, "security.commands.allow", err) < 0)
			return -1;
		if ((v = json_object_get(c, "block")) &&
		    check_names(v, path, "security.commands.block", err) < 0)
			return -1;
		if ((v = json_object_get(c, "allowlist_only")) &&
		    want(v, 5, path, "security.commands.allowlist_only", err) < 0)
			return -1;
		if (json_is_true(json_object_get(c, "allowlist_only")) &&
		    !json_array_size(json_object_get(c, "allow")))
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "%s: allowlist_only = true needs a non-empty security.commands.allow",
			    path);
	}
	if (check_network(json_object_get(cfg, "network"), path, err) < 0 ||
	    check_kubernetes(json_object_get(cfg, "kubernetes"), path, err) < 0 ||
	    check_nomad(json_object_get(cfg, "nomad"), path, err) < 0 ||
	    check_images(json_object_get(cfg, "images"), path, err) < 0)
		return -1;
	json_t *api = json_object_get(cfg, "api");
	if ((v = json_object_get(api, "api_key")) && want(v, 2, path, "api.api_key", err) < 0)
		return -1;
	if ((v = json_object_get(api, "allow_sudo_exec")) &&
	    want(v, 5, path, "api.allow_sudo_exec", err) < 0)
		return -1;
	const char *fmt = NULL;
	if ((v = json_object_get(json_object_get(cfg, "audit"), "format")) &&
	    (!(fmt = json_string_value(v)) ||
	     (strcmp(fmt, "agentcell") && strcmp(fmt, "agentkernel"))))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: audit.format must be \"agentcell\" or \"agentkernel\"",
				    path);
	if ((v = json_object_get(json_object_get(cfg, "sandbox"), "init_script")) &&
	    (!json_is_string(v) || !json_string_length(v) ||
	     json_string_length(v) > AC_INIT_SCRIPT_MAX ||
	     strlen(json_string_value(v)) != json_string_length(v)))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: sandbox.init_script must be a script of 1 to %d bytes",
				    path, AC_INIT_SCRIPT_MAX);
	if ((v = json_object_get(s, "pass_env")) && !json_is_boolean(v)) {
		size_t i;
		json_t *x;
		bool ok = json_is_array(v) && json_array_size(v) <= 256;
		json_array_foreach(v, i, x)
		{
			const char *n = json_string_value(x);
			ok = ok && n && *n && strlen(n) == json_string_length(x) &&
			     strlen(n) <= 255 && !(*n >= '0' && *n <= '9') &&
			     strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789_") == strlen(n);
		}
		if (!ok)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: security.pass_env must be true or false, or an "
					    "array of variable names",
					    path);
	}
	if ((v = json_object_get(api, "api_key_env")) &&
	    want(v, 2, path, "api.api_key_env", err) < 0)
		return -1;
	/* [pool]: serve's warm pool (serve --pool N, --pool-image REF win). */
	json_t *pool = json_object_get(cfg, "pool");
	if ((v = json_object_get(pool, "size")) &&
	    (want(v, 3, path, "pool.size", err) < 0 || json_integer_value(v) < 0 ||
	     json_integer_value(v) > 64))
		return err && *err ? -1
				   : ac_error_set(err, AC_ERR_INVALID, 0,
						  "%s: pool.size must be 0 to 64", path);
	if ((v = json_object_get(pool, "image")) &&
	    (want(v, 2, path, "pool.image", err) < 0 || !json_string_length(v)))
		return err && *err
			   ? -1
			   : ac_error_set(err, AC_ERR_INVALID, 0,
					  "%s: pool.image must be \"host\", a directory or an "
					  "image reference",
					  path);
	return 0;
}

/* Reads and parses path: *text (to free) its bytes, *raw the tree. */
static int read_tree(const char *path, char **text, size_t *len, json_t **raw, ac_error_t **err)
{
	if (ac_read_file_at(AT_FDCWD, path, AC_TOML_MAX_SIZE, text, len, err) < 0)
		return -1;
	if (ac_toml_parse(*text, *len, path, raw, err) < 0) {
		free(*text);
		*text = NULL;
		return -1;
	}
	return 0;
}

enum { AS_AGENTCELL, AS_AGENTKERNEL, AS_DETECTED };

/* Loads path as agentcell.toml (strict) or as agentkernel.toml (mapped, warnings appended);
 * AS_DETECTED (--config): as agentkernel.toml when its name or content says so. Adds
 * AC_CONFIG_FILE_KEY. */
static int load_one(const char *path, int as, json_t *warnings, json_t **out, ac_error_t **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	json_t *raw = NULL, *cfg = NULL;
	if (read_tree(path, &text, &len, &raw, err) < 0)
		return -1;
	bool agentkernel = as == AS_AGENTKERNEL;
	if (as == AS_DETECTED) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		agentkernel = !strcmp(base, "agentkernel.toml") || ac_config_compat_detect(raw);
	}
	_cleanup_free_ char *abs = realpath(path, NULL);
	if (agentkernel) {
		_cleanup_free_ char *dir = abs ? strdup(abs) : NULL;
		AC_ANALYZER_OWNED(dir);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		int rc = ac_config_compat_convert(raw, text, len, path, dir, &cfg, warnings, err);
		json_decref(raw);
		if (rc < 0)
			return -1;
	} else {
		cfg = raw;
	}
	if (validate(cfg, path, err) < 0) {
		json_decref(cfg);
		return -1;
	}
	/* Which file it was, for the backends that read it again (a token kept there): added
	 * after validation, which refuses every key it does not know. */
	if (abs)
		json_object_set_new(cfg, AC_CONFIG_FILE_KEY, json_string(abs));
	*out = cfg;
	return 0;
}

/* ./NAME, else HOME/NAME; false when neither exists. */
static bool find_file(const char *name, const char *home, char *path, size_t size)
{
	snprintf(path, size, "%s", name);
	if (access(path, F_OK) == 0)
		return true;
	if (!home)
		return false;
	snprintf(path, size, "%s/%s", home, name);
	return access(path, F_OK) == 0;
}

int ac_config_load(const char *explicit_path, const char *home, json_t **out, ac_error_t **err)
{
	char path[4200];
	json_t *cfg = NULL, *warnings = json_array();
	if (!warnings)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (explicit_path) {
		/* One file, in the schema its name or content says. */
		if (access(explicit_path, F_OK) < 0) {
			json_decref(warnings);
			return ac_error_set(err, AC_ERR_NOT_FOUND, errno, "config file '%s'",
					    explicit_path);
		}
		if (load_one(explicit_path, AS_DETECTED, warnings, &cfg, err) < 0) {
			json_decref(warnings);
			return -1;
		}
	} else {
		/* agentcell.toml, then agentkernel.toml under it: agentcell.toml's values win. */
		if (find_file("agentcell.toml", home, path, sizeof(path)) &&
		    load_one(path, AS_AGENTCELL, warnings, &cfg, err) < 0) {
			json_decref(warnings);
			return -1;
		}
		json_t *ak = NULL;
		if (find_file("agentkernel.toml", home, path, sizeof(path)) &&
		    load_one(path, AS_AGENTKERNEL, warnings, &ak, err) < 0) {
			json_decref(warnings);
			json_decref(cfg);
			return -1;
		}
		if (cfg && ak)
			ac_config_compat_merge(cfg, ak);
		else if (ak)
			cfg = json_incref(ak);
		json_decref(ak);
		if (!cfg)
			cfg = json_object();
	}
	if (json_array_size(warnings))
		json_object_set(cfg, AC_CONFIG_WARNINGS_KEY, warnings);
	json_decref(warnings);
	/* A configuration named on the command line also decides this process's audit format
	 * (the default places are read by audit.c itself, lazily, at the first record). */
	if (explicit_path)
		ac_audit_set_format(ac_audit_format_of_config(cfg));
	*out = cfg;
	return 0;
}

void ac_config_print_warnings(json_t *cfg)
{
	/* Each message once per process: serve and mcp load the file again for each request. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static json_t *printed;
	const char *prog =
	    !strcmp(program_invocation_short_name, "agentkernel") ? "agentkernel" : "agentcell";
	size_t i;
	json_t *w;
	pthread_mutex_lock(&lock);
	if (!printed)
		printed = json_object();
	json_array_foreach(json_object_get(cfg, AC_CONFIG_WARNINGS_KEY), i, w)
	{
		const char *msg = json_string_value(w);
		if (!msg || !printed || json_object_get(printed, msg))
			continue;
		json_object_set_new(printed, msg, json_true());
		fprintf(stderr, "%s: warning: %s\n", prog, msg);
	}
	pthread_mutex_unlock(&lock);
}

/* A NULL-terminated array of the strings of a JSON array (pointing into it). */
static char **strings(json_t *arr)
{
	size_t n = json_array_size(arr);
	char **v = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; v && i < n; i++)
		v[i] = (char *)json_string_value(json_array_get(arr, i));
	return v;
}

/* [security] pass_env: the caller's variables it names (true: the permissive profile's)
 * go before o->env, so that -e wins. The strings and the array live in keep (the array
 * as the bytes of a JSON string: jansson's copy of them is malloc'd, so suitably
 * aligned), freed with the configuration. */
static int pass_env(json_t *v, json_t *keep, ac_sandbox_opts_t *o)
{
	const char *const *names = NULL;
	_cleanup_free_ char **list = NULL;
	if (json_is_true(v)) {
		names = ac_profile_find("permissive")->pass_env;
	} else if (json_is_array(v)) {
		if (!(list = strings(v)))
			return -1;
		AC_ANALYZER_OWNED(list);
		names = (const char *const *)list;
	}
	size_t n = 0, given = 0;
	while (names && names[n])
		n++;
	while (o->env && o->env[given])
		given++;
	if (!n)
		return 0;
	_cleanup_free_ char **env = calloc(n + given + 1, sizeof(char *));
	if (!env)
		return -1;
	AC_ANALYZER_OWNED(env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *val = getenv(names[i]);
		if (!val)
			continue;
		json_t *str = json_sprintf("%s=%s", names[i], val);
		if (!str || json_array_append_new(keep, str) < 0)
			return -1;
		env[k++] = (char *)json_string_value(str);
	}
	if (!k)
		return 0;
	for (size_t i = 0; i < given; i++)
		env[k++] = o->env[i];
	env[k++] = NULL;
	json_t *bytes = json_stringn_nocheck((const char *)env, k * sizeof(char *));
	if (!bytes || json_array_append_new(keep, bytes) < 0)
		return -1;
	o->env = (char **)json_string_value(bytes);
	return 0;
}

int ac_config_apply(json_t *cfg, ac_sandbox_opts_t *o, ac_error_t **err)
{
	json_t *r = json_object_get(cfg, "resources"), *s = json_object_get(cfg, "security"), *v;
	if (!o->image && (v = json_object_get(json_object_get(cfg, "sandbox"), "image"))) {
		o->image = json_string_value(v);
		o->image_from_config = true;
	}
	if (o->language && !o->language_image)
		o->language_image =
		    ac_language_configured_image(json_object_get(cfg, "languages"), o->language);
	if (!o->backend_config)
		o->backend_config = cfg;
	if (!o->profile && (v = json_object_get(s, "profile")))
		o->profile = json_string_value(v);
	if (!o->memory_set && (v = json_object_get(r, "memory_mb"))) {
		o->memory_mb = (uint64_t)json_integer_value(v);
		o->memory_set = true;
	}
	if (!o->disk_set && (v = json_object_get(r, "disk_mb")) &&
	    disk_mb_value(v, &o->disk_mb) == 0)
		o->disk_set = true;
	if (!o->cpus_set && (v = json_object_get(r, "vcpus"))) {
		o->cpus = json_number_value(v);
		o->cpus_set = true;
	}
	if (!o->pids_set && (v = json_object_get(r, "pids"))) {
		o->pids = (uint64_t)json_integer_value(v);
		o->pids_set = true;
	}
	if (!o->mount_cwd_set && (v = json_object_get(s, "mount_cwd"))) {
		o->mount_cwd = json_is_true(v);
		o->mount_cwd_set = true;
	}
	if (!o->read_only_set && (v = json_object_get(s, "read_only"))) {
		o->read_only = json_is_true(v);
		o->read_only_set = true;
	}
	if (!o->network_set && (v = json_object_get(s, "network"))) {
		o->network = json_is_true(v);
		o->network_set = true;
	}
	json_t *c = json_object_get(s, "commands");
	/* The storage of the arrays made here: freed with cfg by the caller's cleanup. */
	json_t *keep = json_object_get(cfg, "\x01arrays");
	if (!keep) {
		keep = json_array();
		json_object_set_new(cfg, "\x01arrays", keep);
	}
	if (c) {
		if (!o->allow && json_array_size(json_object_get(c, "allow")))
			o->allow = strings(json_object_get(c, "allow"));
		if (!o->block && json_array_size(json_object_get(c, "block")))
			o->block = strings(json_object_get(c, "block"));
		o->allowlist_only =
		    o->allowlist_only || json_is_true(json_object_get(c, "allowlist_only"));
	}
	json_t *nt = json_object_get(cfg, "network");
	if (nt) {
		if (!o->allow_hosts && json_array_size(json_object_get(nt, "allow_hosts")))
			o->allow_hosts = strings(json_object_get(nt, "allow_hosts"));
		if (!o->block_hosts && json_array_size(json_object_get(nt, "block_hosts")))
			o->block_hosts = strings(json_object_get(nt, "block_hosts"));
		o->allowlist_only_hosts =
		    o->allowlist_only_hosts || json_is_true(json_object_get(nt, "allowlist_only"));
	}
	if (!o->init_script &&
	    (v = json_object_get(json_object_get(cfg, "sandbox"), "init_script")))
		o->init_script = json_string_value(v);
	if ((v = json_object_get(s, "pass_env")) && pass_env(v, keep, o) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	json_t *files = json_object_get(cfg, "files");
	if (!o->files && json_array_size(files)) {
		size_t n = json_array_size(files);
		char **f = calloc(n + 1, sizeof(char *));
		if (!f)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_array_get(files, i);
			json_t *str =
			    json_sprintf("%s:%s", json_string_value(json_object_get(e, "host")),
					 json_string_value(json_object_get(e, "sandbox")));
			json_array_append_new(keep, str);
			f[i] = (char *)json_string_value(str);
		}
		o->files = f;
	}
	return 0;
}
