/* Unit tests for src/core/config_compat.c and its use by ac_config_load: agentkernel.toml's
 * keys mapped onto agentcell.toml's (each one), the one-line warning for each key with no
 * meaning here, type errors naming key, file and line, detection of --config files, the
 * search places and precedence, and agentcell.toml's new keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/config.h"
#include "base/util.h"

static char dir[] = "/tmp/ac-test-compat-XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

/* Loads dir/name as --config. */
static int load_named(const char *name, const char *text, json_t **cfg, ac_error_t **err)
{
	char path[PATH_MAX];
	write_file(name, text);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = ac_config_load(path, "/nonexistent", cfg, err);
	remove_file(name);
	return rc;
}

static json_t *load_ak(const char *text)
{
	json_t *cfg = NULL;
	ac_error_t *err = NULL;
	if (load_named("agentkernel.toml", text, &cfg, &err) < 0)
		fail_msg("%s: %s", text, err->msg);
	return cfg;
}

static json_t *at(json_t *cfg, const char *table, const char *key)
{
	return json_object_get(json_object_get(cfg, table), key);
}

/* How many of cfg's warnings contain s. */
static size_t warnings_with(json_t *cfg, const char *s)
{
	size_t i, n = 0;
	json_t *w;
	json_array_foreach(json_object_get(cfg, AC_CONFIG_WARNINGS_KEY), i, w)
	{
		n += strstr(json_string_value(w), s) != NULL;
	}
	return n;
}

static void test_sandbox_keys(void **state)
{
	(void)state;
	json_t *cfg = load_ak("[sandbox]\nname = \"app\"\nbase_image = \"python:3.12-slim\"\n"
			      "init_script = \"echo hi\"\n");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "python:3.12-slim");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "name")), "app");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "init_script")), "echo hi");
	assert_null(at(cfg, "sandbox", "base_image"));
	assert_null(json_object_get(cfg, AC_CONFIG_WARNINGS_KEY));
	ac_sandbox_opts_t o = {0};
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_string_equal(o.image, "python:3.12-slim");
	assert_true(o.image_from_config);
	assert_string_equal(o.init_script, "echo hi");
	/* the command line wins */
	o = (ac_sandbox_opts_t){.init_script = "cli"};
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_string_equal(o.init_script, "cli");
	json_decref(cfg);

	/* runtime: a language's image (agentkernel's table) */
	cfg = load_ak("[sandbox]\nname = \"a\"\nruntime = \"python\"\n");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "python:3.12-alpine");
	json_decref(cfg);
	cfg = load_ak("[sandbox]\nname = \"a\"\nruntime = \"node\"\n");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "node:22-alpine");
	json_decref(cfg);
	/* ... unless base_image is set, or it is not a language */
	cfg = load_ak("[sandbox]\nname = \"a\"\nruntime = \"go\"\nbase_image = \"host\"\n");
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "host");
	assert_int_equal(warnings_with(cfg, "[sandbox] runtime has no meaning here when "
					    "base_image is set (ignored)"),
			 1);
	json_decref(cfg);
	cfg = load_ak("[sandbox]\nname = \"a\"\nruntime = \"firecracker\"\n");
	assert_null(at(cfg, "sandbox", "image"));
	assert_int_equal(warnings_with(cfg, "[sandbox] runtime \"firecracker\" has no meaning"), 1);
	json_decref(cfg);
}

static void test_resources_security(void **state)
{
	(void)state;
	json_t *cfg = load_ak("[sandbox]\nname = \"n\"\n[resources]\nvcpus = 2\nmemory_mb = 1024\n"
			      "[security]\nprofile = \"restrictive\"\nnetwork = true\n"
			      "mount_cwd = true\nread_only = false\npass_env = true\n"
			      "[security.commands]\nblock = [\"rm\", \"sudo\"]\n"
			      "allowlist_only = false\n");
	assert_int_equal(json_integer_value(at(cfg, "resources", "vcpus")), 2);
	assert_int_equal(json_integer_value(at(cfg, "resources", "memory_mb")), 1024);
	assert_string_equal(json_string_value(at(cfg, "security", "profile")), "restrictive");
	assert_true(json_is_true(at(cfg, "security", "network")));
	assert_true(json_is_true(at(cfg, "security", "mount_cwd")));
	assert_true(json_is_false(at(cfg, "security", "read_only")));
	assert_true(json_is_true(at(cfg, "security", "pass_env")));
	json_t *cmds = at(cfg, "security", "commands");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cmds, "block"), 1)),
			    "sudo");
	ac_sandbox_opts_t o = {0};
	setenv("LANG", "C.test", 1);
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_int_equal(o.memory_mb, 1024);
	assert_true(o.memory_set);
	assert_true(o.cpus == 2.0);
	assert_string_equal(o.profile, "restrictive");
	assert_true(o.network && o.network_set);
	assert_true(o.mount_cwd && o.mount_cwd_set);
	assert_string_equal(o.block[0], "rm");
	bool lang = false;
	for (char **e = o.env; e && *e; e++)
		lang = lang || !strcmp(*e, "LANG=C.test");
	assert_true(lang); /* pass_env = true: the permissive profile's variables */
	free(o.block);
	json_decref(cfg);
}

static void test_pass_env_order(void **state)
{
	(void)state;
	/* agentcell.toml's array form; -e (o.env) comes after, so it wins */
	json_t *cfg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(load_named("agentcell.toml",
				    "[security]\npass_env = [\"AC_T_A\", \"AC_T_B\"]\n", &cfg,
				    &err),
			 0);
	setenv("AC_T_A", "from-host", 1);
	unsetenv("AC_T_B");
	char *cli[] = {"AC_T_A=from-cli", NULL};
	ac_sandbox_opts_t o = {.env = cli};
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_string_equal(o.env[0], "AC_T_A=from-host");
	assert_string_equal(o.env[1], "AC_T_A=from-cli");
	assert_null(o.env[2]); /* AC_T_B is not set: nothing */
	json_decref(cfg);
	static const char *const bad[] = {
	    "[security]\npass_env = \"PATH\"\n", "[security]\npass_env = [\"1X\"]\n",
	    "[security]\npass_env = [\"A-B\"]\n", "[security]\npass_env = [5]\n"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		err = NULL;
		if (load_named("agentcell.toml", bad[i], &cfg, &err) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err->msg, "security.pass_env must be"));
		ac_error_free(err);
	}
}

static void test_domains(void **state)
{
	(void)state;
	/* with the network on: [security.domains] is agentcell's [network] policy */
	json_t *cfg =
	    load_ak("[sandbox]\nname = \"n\"\n[security]\nnetwork = true\n"
		    "[security.domains]\nallow = [\"api.anthropic.com\", \"*.pypi.org\"]\n"
		    "block = [\"169.254.169.254\"]\nallowlist_only = true\n");
	json_t *net = json_object_get(cfg, "network");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(net, "allow_hosts"), 1)),
	    "*.pypi.org");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(net, "block_hosts"), 0)),
	    "169.254.169.254");
	assert_true(json_is_true(json_object_get(net, "allowlist_only")));
	ac_sandbox_opts_t o = {0};
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_string_equal(o.allow_hosts[0], "api.anthropic.com");
	assert_true(o.allowlist_only_hosts);
	free(o.allow_hosts);
	free(o.block_hosts);
	json_decref(cfg);
	/* the permissive profile turns it on too */
	cfg = load_ak("[sandbox]\nname = \"n\"\n[security]\nprofile = \"permissive\"\n"
		      "[security.domains]\nallow = [\"x.org\"]\n");
	assert_non_null(at(cfg, "network", "allow_hosts"));
	json_decref(cfg);
	/* with it off: a warning per key (agentkernel warns too), no policy */
	cfg = load_ak("[sandbox]\nname = \"n\"\n[security]\nprofile = \"restrictive\"\n"
		      "[security.domains]\nallow = [\"x.org\"]\nblock = [\"y.org\"]\n");
	assert_null(json_object_get(cfg, "network"));
	assert_int_equal(warnings_with(cfg, "[security.domains] allow has no effect with the "
					    "network off (ignored)"),
			 1);
	assert_int_equal(warnings_with(cfg, "[security.domains] block has no effect"), 1);
	json_decref(cfg);
	/* agentcell's own [network] keys pass through */
	cfg = load_ak("[sandbox]\nname = \"n\"\n[network]\nallow_hosts = [\"a.org\"]\n");
	assert_string_equal(json_string_value(json_array_get(at(cfg, "network", "allow_hosts"), 0)),
			    "a.org");
	json_decref(cfg);
}

static void test_files(void **state)
{
	(void)state;
	json_t *cfg = load_ak("[sandbox]\nname = \"n\"\n[[files]]\nsource = \".env\"\n"
			      "dest = \"/app/.env\"\n[[files]]\nsource = \"/etc/hostname\"\n"
			      "dest = \"/etc/h\"\nmode = \"0755\"\n");
	json_t *files = json_object_get(cfg, "files");
	assert_int_equal(json_array_size(files), 2);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/.env", dir); /* relative to the file's directory */
	assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "host")),
			    want);
	assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "sandbox")),
			    "/app/.env");
	assert_string_equal(json_string_value(json_object_get(json_array_get(files, 1), "host")),
			    "/etc/hostname");
	assert_int_equal(warnings_with(cfg, "[[files]] mode has no meaning here"), 1);
	ac_sandbox_opts_t o = {0};
	assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
	assert_string_equal(o.files[1], "/etc/hostname:/etc/h");
	free(o.files);
	json_decref(cfg);
}

static void test_api_orchestrator_own(void **state)
{
	(void)state;
	json_t *cfg = load_ak("[sandbox]\nname = \"n\"\n[api]\napi_key_env = \"K\"\n"
			      "allow_sudo_exec = true\n[orchestrator]\nprovider = \"kubernetes\"\n"
			      "namespace = \"ns1\"\ncontext = \"ctx\"\nruntime_class = \"gvisor\"\n"
			      "service_account = \"sa\"\nkubeconfig = \"/k\"\n"
			      "[orchestrator.node_selector]\npool = \"a\"\n[pool]\nsize = 3\n");
	assert_true(json_is_true(at(cfg, "api", "allow_sudo_exec")));
	assert_string_equal(json_string_value(at(cfg, "api", "api_key_env")), "K");
	json_t *k = json_object_get(cfg, "kubernetes");
	assert_string_equal(json_string_value(json_object_get(k, "namespace")), "ns1");
	assert_string_equal(json_string_value(json_object_get(k, "context")), "ctx");
	assert_string_equal(json_string_value(json_object_get(k, "runtime_class")), "gvisor");
	assert_string_equal(json_string_value(json_object_get(k, "service_account")), "sa");
	assert_string_equal(json_string_value(json_object_get(k, "kubeconfig")), "/k");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(k, "node_selector"), "pool")), "a");
	assert_null(json_object_get(cfg, "nomad")); /* provider kubernetes: namespace is its */
	assert_int_equal(json_integer_value(at(cfg, "pool", "size")), 3);
	assert_int_equal(warnings_with(cfg, "[orchestrator] provider has no meaning here"), 1);
	json_decref(cfg);
	cfg = load_ak("[sandbox]\nname = \"n\"\n[orchestrator]\nprovider = \"nomad\"\n"
		      "namespace = \"ns2\"\nnomad_addr = \"http://127.0.0.1:4646\"\n"
		      "nomad_driver = \"docker\"\nnomad_datacenter = \"dc1\"\n"
		      "nomad_token = \"t\"\nwarm_pool_size = 5\nmax_pool_size = 20\n");
	json_t *n = json_object_get(cfg, "nomad");
	assert_string_equal(json_string_value(json_object_get(n, "namespace")), "ns2");
	assert_string_equal(json_string_value(json_object_get(n, "address")),
			    "http://127.0.0.1:4646");
	assert_string_equal(json_string_value(json_object_get(n, "driver")), "docker");
	assert_string_equal(json_string_value(json_object_get(n, "token")), "t");
	assert_string_equal(json_string_value(json_array_get(json_object_get(n, "datacenters"), 0)),
			    "dc1");
	assert_null(json_object_get(cfg, "kubernetes"));
	assert_int_equal(warnings_with(cfg, "[orchestrator] warm_pool_size has no meaning"), 1);
	assert_int_equal(warnings_with(cfg, "[orchestrator] max_pool_size has no meaning"), 1);
	json_decref(cfg);
}

/* Every key with no meaning here: exactly one warning naming it. */
static void test_warnings(void **state)
{
	(void)state;
	static const struct {
		const char *toml, *warning;
	} cases[] = {
	    {"[agent]\npreferred = \"claude\"\n", "[agent] preferred has no meaning here (ignored"},
	    {"[agent]\ncompatibility_mode = \"claude\"\n",
	     "[agent] compatibility_mode has no meaning here (ignored)"},
	    {"[agent]\ngit_name = \"a\"\n", "[agent] git_name has no meaning here"},
	    {"[agent]\ngit_email = \"a@b\"\n", "[agent] git_email has no meaning here"},
	    {"[build]\ndockerfile = \"Dockerfile\"\n[build.args]\nX = \"1\"\n",
	     "[build] has no meaning here (ignored)"},
	    {"[network]\nvsock_cid = 5\n", "[network] vsock_cid has no meaning here"},
	    {"[network]\nports = [5000]\n", "[network] ports has no meaning here"},
	    {"[security]\nmount_home = true\n", "[security] mount_home has no meaning here"},
	    {"[security]\nseccomp = \"default\"\n", "[security] seccomp has no meaning here"},
	    {"[security.transport]\nssh = true\n", "[security] transport has no meaning here"},
	    {"[api.tls]\nenabled = true\n", "[api] tls has no meaning here"},
	    {"[orchestrator]\nmax_sandboxes = 9\n", "[orchestrator] max_sandboxes has no meaning"},
	    {"[orchestrator]\nwarm_pool_images = [\"a\"]\n",
	     "[orchestrator] warm_pool_images has no meaning"},
	    {"[enterprise]\nenabled = true\n", "[enterprise] has no meaning here"},
	    {"[remote]\nbridge = \"x\"\n", "[remote] has no meaning here"},
	    {"[scheduling]\nenabled = true\n", "[scheduling] has no meaning here"},
	    {"[[schedule]]\nid = \"x\"\n", "[schedule] has no meaning here"},
	    {"[[proxy.hooks]]\nname = \"x\"\n", "[proxy] has no meaning here"},
	    {"[secrets]\nK = \"h\"\n", "[secrets] has no meaning here"},
	    {"[llm_keys]\n\"api.openai.com\" = \"K\"\n", "[llm_keys] has no meaning here"},
	    {"[git]\nworktree = true\n", "[git] has no meaning here"},
	    {"[ssh]\nenabled = true\n", "[ssh] has no meaning here"},
	    {"[environment]\npython_version = \"3.12\"\n", "[environment] has no meaning here"},
	    {"[mounts]\n\".\" = \"/app\"\n", "[mounts] has no meaning here"},
	    {"[resources]\ngpus = 1\n", "[resources] gpus has no meaning here"},
	    {"[[files]]\nsource = \"/x\"\ndest = \"/y\"\nowner = \"me\"\n",
	     "[[files]] owner has no meaning here"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		char text[512];
		snprintf(text, sizeof(text), "[sandbox]\nname = \"w\"\n%s", cases[i].toml);
		json_t *cfg = load_ak(text);
		json_t *w = json_object_get(cfg, AC_CONFIG_WARNINGS_KEY);
		if (json_array_size(w) != 1 || warnings_with(cfg, cases[i].warning) != 1)
			fail_msg("%s: %zu warnings, want one with '%s' (first: %s)", cases[i].toml,
				 json_array_size(w), cases[i].warning,
				 json_string_value(json_array_get(w, 0)));
		/* one line, naming the file */
		const char *msg = json_string_value(json_array_get(w, 0));
		assert_null(strchr(msg, '\n'));
		assert_non_null(strstr(msg, "agentkernel.toml: "));
		json_decref(cfg);
	}
	/* the same key twice ([[files]] mode in every entry) is still one warning */
	json_t *cfg = load_ak("[sandbox]\nname = \"w\"\n[[files]]\nsource = \"/a\"\ndest = \"/a\"\n"
			      "mode = \"0600\"\n[[files]]\nsource = \"/b\"\ndest = \"/b\"\n"
			      "mode = \"0644\"\n");
	assert_int_equal(json_array_size(json_object_get(cfg, AC_CONFIG_WARNINGS_KEY)), 1);
	json_decref(cfg);
}

/* Mapped keys of the wrong type: one line naming file, line, table and key. */
static void test_type_errors(void **state)
{
	(void)state;
	static const struct {
		const char *toml, *msg;
	} cases[] = {
	    {"[resources]\nmemory_mb = \"lots\"\n",
	     "agentkernel.toml:4: [resources] memory_mb must be an integer"},
	    {"[resources]\nvcpus = \"two\"\n",
	     "agentkernel.toml:4: [resources] vcpus must be a number"},
	    {"[security]\nnetwork = \"yes\"\n",
	     "agentkernel.toml:4: [security] network must be true or false"},
	    {"[security]\nmount_cwd = 1\n", "agentkernel.toml:4: [security] mount_cwd must be"},
	    {"[security]\npass_env = \"PATH\"\n",
	     "agentkernel.toml:4: [security] pass_env must be"},
	    {"[security]\nnetwork = true\n[security.domains]\nallow = \"x.org\"\n",
	     "agentkernel.toml:6: [security.domains] allow must be an array of host patterns"},
	    {"[security.commands]\nblock = [1]\n",
	     "agentkernel.toml:4: [security.commands] block must be an array of strings"},
	    {"[security]\ndomains = 3\n", "[security] domains must be a table"},
	    {"\n# a comment\nbase_image = 5\n",
	     "agentkernel.toml:5: [sandbox] base_image must be a"},
	    {"init_script = 5\n", "agentkernel.toml:3: [sandbox] init_script must be a string"},
	    {"[api]\nallow_sudo_exec = \"true\"\n",
	     "agentkernel.toml:4: [api] allow_sudo_exec must be true or false"},
	    {"[orchestrator]\nnamespace = 1\n", "[orchestrator] namespace must be a non-empty"},
	    {"[[files]]\nsource = 5\ndest = \"/x\"\n",
	     "agentkernel.toml:4: [[files]] source must be a string"},
	    {"[[files]]\nsource = \"a\"\n", "[[files]] 1 needs source = \"PATH\" and dest"},
	    {"[files]\nsource = \"a\"\n", "agentkernel.toml: files must be an array of tables"},
	    {"[[files]]\nsource = \"a\"\ndest = \"rel\"\n", "[[files]] 1 needs source"},
	    /* mapped, then validated as agentcell.toml is */
	    {"[resources]\nmemory_mb = 1\n", "resources.memory_mb must be from 16"},
	    {"[security]\nprofile = \"paranoid\"\n", "security.profile must be"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		char text[512];
		snprintf(text, sizeof(text), "[sandbox]\nname = \"t\"\n%s", cases[i].toml);
		json_t *cfg = NULL;
		ac_error_t *err = NULL;
		if (load_named("agentkernel.toml", text, &cfg, &err) == 0)
			fail_msg("accepted: %s", cases[i].toml);
		if (!strstr(err->msg, cases[i].msg))
			fail_msg("%s: '%s', want '%s'", cases[i].toml, err->msg, cases[i].msg);
		assert_null(strchr(err->msg, '\n'));
		assert_int_equal(err->kind, AC_ERR_INVALID);
		ac_error_free(err);
	}
}

/* --config FILE: agentkernel.toml by name or by content; agentcell.toml stays strict. */
static void test_detection(void **state)
{
	(void)state;
	json_t *cfg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(load_named("project.toml",
				    "[sandbox]\nname = \"a\"\nbase_image = \"host\"\n", &cfg, &err),
			 0);
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "host");
	json_decref(cfg);
	assert_int_equal(load_named("x.toml", "[agent]\npreferred = \"claude\"\n", &cfg, &err), 0);
	assert_int_equal(warnings_with(cfg, "x.toml: [agent] preferred"), 1);
	json_decref(cfg);
	/* agentcell's own keys only: strict */
	assert_int_equal(load_named("agentcell.toml", "[resources]\nmemroy_mb = 5\n", &cfg, &err),
			 -1);
	assert_non_null(strstr(err->msg, "unknown key 'memroy_mb'"));
	ac_error_free(err);
	err = NULL;
	assert_int_equal(load_named("agentcell.toml", "[environment]\nx = 1\n", &cfg, &err), -1);
	assert_non_null(strstr(err->msg, "unknown table [environment]"));
	ac_error_free(err);
}

/* The new keys of agentcell.toml. */
static void test_new_keys(void **state)
{
	(void)state;
	json_t *cfg = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(load_named("agentcell.toml",
				    "[api]\nallow_sudo_exec = true\n[audit]\nformat = "
				    "\"agentkernel\"\n[sandbox]\ninit_script = \"true\"\n",
				    &cfg, &err),
			 0);
	assert_true(json_is_true(at(cfg, "api", "allow_sudo_exec")));
	assert_string_equal(json_string_value(at(cfg, "audit", "format")), "agentkernel");
	assert_null(json_object_get(cfg, AC_CONFIG_WARNINGS_KEY));
	json_decref(cfg);
	static const struct {
		const char *toml, *msg;
	} bad[] = {
	    {"[api]\nallow_sudo_exec = 1\n", "api.allow_sudo_exec must be a boolean"},
	    {"[audit]\nformat = \"json\"\n", "audit.format must be \"agentcell\" or"},
	    {"[audit]\nformat = 1\n", "audit.format must be"},
	    {"[audit]\nlevel = 1\n", "unknown key 'level' in [audit]"},
	    {"[sandbox]\ninit_script = \"\"\n", "sandbox.init_script must be a script"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		err = NULL;
		if (load_named("agentcell.toml", bad[i].toml, &cfg, &err) == 0)
			fail_msg("accepted: %s", bad[i].toml);
		if (!strstr(err->msg, bad[i].msg))
			fail_msg("%s: '%s'", bad[i].toml, err->msg);
		ac_error_free(err);
	}
}

/* The search places and the precedence: ./agentcell.toml over ./agentkernel.toml, each
 * from HOME when not in the working directory, nothing when neither exists. */
static void test_search_and_merge(void **state)
{
	(void)state;
	char old[PATH_MAX], home[PATH_MAX];
	assert_non_null(getcwd(old, sizeof(old)));
	snprintf(home, sizeof(home), "%s/home", dir);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(chdir(dir), 0);
	json_t *cfg = NULL;
	ac_error_t *err = NULL;

	assert_int_equal(ac_config_load(NULL, home, &cfg, &err), 0);
	assert_int_equal(json_object_size(cfg), 0); /* neither: no change */
	json_decref(cfg);

	write_file("agentkernel.toml",
		   "[sandbox]\nname = \"a\"\nbase_image = \"/ak-img\"\n"
		   "[resources]\nmemory_mb = 700\nvcpus = 3\n[agent]\n"
		   "preferred = \"codex\"\n[security.commands]\nblock = [\"x\"]\n"
		   "[[files]]\nsource = \"/ak\"\ndest = \"/ak\"\n");
	write_file("agentcell.toml",
		   "[resources]\nmemory_mb = 300\n[security.commands]\n"
		   "allow = [\"y\"]\n[[files]]\nhost = \"/ac\"\nsandbox = \"/ac\"\n");
	assert_int_equal(ac_config_load(NULL, home, &cfg, &err), 0);
	assert_int_equal(json_integer_value(at(cfg, "resources", "memory_mb")), 300); /* ours */
	assert_int_equal(json_integer_value(at(cfg, "resources", "vcpus")), 3);	      /* theirs */
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "/ak-img");
	json_t *cmds = at(cfg, "security", "commands");
	assert_non_null(json_object_get(cmds, "allow"));
	assert_non_null(json_object_get(cmds, "block"));
	json_t *files = json_object_get(cfg, "files");
	assert_int_equal(json_array_size(files), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "host")),
			    "/ac");
	assert_int_equal(warnings_with(cfg, "agentkernel.toml: [agent] preferred"), 1);
	char abs[PATH_MAX];
	snprintf(abs, sizeof(abs), "%s/agentcell.toml", dir);
	assert_string_equal(json_string_value(json_object_get(cfg, AC_CONFIG_FILE_KEY)), abs);
	json_decref(cfg);

	/* ./agentcell.toml stays strict even with agentkernel's keys in it */
	write_file("agentcell.toml", "[sandbox]\nbase_image = \"x\"\n");
	assert_int_equal(ac_config_load(NULL, home, &cfg, &err), -1);
	assert_non_null(strstr(err->msg, "unknown key 'base_image' in [sandbox]"));
	ac_error_free(err);
	err = NULL;

	/* agentkernel.toml from HOME when there is none here */
	remove_file("agentkernel.toml");
	remove_file("agentcell.toml");
	write_file("home/agentkernel.toml",
		   "[sandbox]\nname = \"h\"\nbase_image = \"/home-img\"\n");
	assert_int_equal(ac_config_load(NULL, home, &cfg, &err), 0);
	assert_string_equal(json_string_value(at(cfg, "sandbox", "image")), "/home-img");
	json_decref(cfg);
	/* a broken agentkernel.toml is an error, as agentcell.toml's is */
	write_file("agentkernel.toml", "[resources]\nvcpus = \"x\"\n");
	assert_int_equal(ac_config_load(NULL, home, &cfg, &err), -1);
	assert_non_null(strstr(err->msg, "agentkernel.toml:2: [resources] vcpus must be a number"));
	ac_error_free(err);
	remove_file("agentkernel.toml");
	remove_file("home/agentkernel.toml");
	assert_int_equal(rmdir(home), 0);
	assert_int_equal(chdir(old), 0);
}

/* ac_config_print_warnings: stderr, one line each, each once however often it is called. */
static void test_print_warnings(void **state)
{
	(void)state;
	json_t *cfg = load_ak("[sandbox]\nname = \"p\"\n[agent]\npreferred = \"claude\"\n"
			      "compatibility_mode = \"claude\"\n[build]\ndockerfile = \"D\"\n");
	char out[PATH_MAX];
	snprintf(out, sizeof(out), "%s/stderr", dir);
	fflush(stderr);
	int saved = dup(2), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	ac_config_print_warnings(cfg);
	ac_config_print_warnings(cfg);
	json_t *again = load_ak("[sandbox]\nname = \"p\"\n[build]\ndockerfile = \"D\"\n");
	ac_config_print_warnings(again); /* a second load (serve, mcp): not again */
	ac_config_print_warnings(NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	json_decref(again);
	json_decref(cfg);
	char buf[4096] = "";
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(out);
	buf[n] = 0;
	const char *want = "agentcell: warning: ";
	char expect[1024];
	snprintf(expect, sizeof(expect),
		 "%s%s/agentkernel.toml: [agent] preferred has no meaning here (ignored; give "
		 "create --agent)\n"
		 "%s%s/agentkernel.toml: [agent] compatibility_mode has no meaning here "
		 "(ignored)\n"
		 "%s%s/agentkernel.toml: [build] has no meaning here (ignored)\n",
		 want, dir, want, dir, want, dir);
	if (strcmp(program_invocation_short_name, "agentkernel"))
		assert_string_equal(buf, expect);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sandbox_keys),
	    cmocka_unit_test(test_resources_security),
	    cmocka_unit_test(test_pass_env_order),
	    cmocka_unit_test(test_domains),
	    cmocka_unit_test(test_files),
	    cmocka_unit_test(test_api_orchestrator_own),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_type_errors),
	    cmocka_unit_test(test_detection),
	    cmocka_unit_test(test_new_keys),
	    cmocka_unit_test(test_search_and_merge),
	    cmocka_unit_test(test_print_warnings),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
