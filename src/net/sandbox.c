/* A sandbox's network between the front ends and the proxy: the state's "net" made from the
 * options (every input checked before anything exists), the variables the sandbox gets,
 * and the proxy's orders at each start (secret values read then, never stored). */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/agents.h"
#include "base/io.h"
#include "base/util.h"
#include "net/net.h"

/* Where an agent's API key goes, so that --agent with --network carries it as a secret. */
static const struct {
	const char *key, *host, *header, *prefix;
} agent_hosts[] = {
    {"ANTHROPIC_API_KEY", "api.anthropic.com", "x-api-key", ""},
    {"OPENAI_API_KEY", "api.openai.com", "Authorization", "Bearer "},
    {"GOOGLE_API_KEY", "generativelanguage.googleapis.com", "x-goog-api-key", ""},
    {"GEMINI_API_KEY", "generativelanguage.googleapis.com", "x-goog-api-key", ""},
    {"GITHUB_TOKEN", "api.github.com", "Authorization", "Bearer "},
};

void ac_net_dir(const char *home, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/net/%s", home, name);
}

void ac_net_pidfile(const char *home, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/net/%s/proxy.pid", home, name);
}

static int parse_port(const char *s, const char *what, const char *spec, ac_error_t **err)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > 65535)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid published port '%s': %s must be 1-65535", spec, what);
	return (int)v;
}

json_t *ac_net_publish_parse(const char *spec, ac_error_t **err)
{
	char addr[64] = "127.0.0.1";
	const char *rest = spec;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(addr)) {
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "invalid published port '%s': use [ADDR:]HOSTPORT:PORT", spec);
			return NULL;
		}
		snprintf(addr, sizeof(addr), "%.*s", (int)(close - spec - 1), spec + 1);
		rest = close + 2;
	} else {
		const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2) {
			if ((size_t)(c1 - spec) >= sizeof(addr) || strchr(c2 + 1, ':')) {
				ac_error_set(err, AC_ERR_INVALID, 0,
					     "invalid published port '%s': use "
					     "[ADDR:]HOSTPORT:PORT",
					     spec);
				return NULL;
			}
			snprintf(addr, sizeof(addr), "%.*s", (int)(c1 - spec), spec);
			rest = c1 + 1;
		}
	}
	unsigned char bin[16];
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "invalid published port '%s': '%s' is not an IP address", spec, addr);
		return NULL;
	}
	const char *colon = strchr(rest, ':');
	if (!colon) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "invalid published port '%s': use [ADDR:]HOSTPORT:PORT", spec);
		return NULL;
	}
	char hp[16];
	snprintf(hp, sizeof(hp), "%.*s", (int)(colon - rest) < 15 ? (int)(colon - rest) : 15, rest);
	int host_port = parse_port(hp, "HOSTPORT", spec, err);
	int port = host_port < 0 ? -1 : parse_port(colon + 1, "PORT", spec, err);
	if (port < 0)
		return NULL;
	return json_pack("{ss si si}", "address", addr, "host_port", host_port, "port", port);
}

/* Whether address:port can be bound on the host now (nothing is kept bound). */
static int port_free(const json_t *p, ac_error_t **err)
{
	const char *addr = json_string_value(json_object_get(p, "address"));
	int port = (int)json_integer_value(json_object_get(p, "host_port"));
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
	} else {
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
	}
	_cleanup_close_ int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s >= 0)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) < 0) {
		if (errno == EADDRINUSE)
			return ac_error_set(err, AC_ERR_EXISTS, 0, "port %s:%d is in use", addr,
					    port);
		return ac_error_set(err, AC_ERR_INVALID, errno, "cannot publish on %s:%d", addr,
				    port);
	}
	return 0;
}

static int add_patterns(json_t *net, const char *key, char **list, ac_error_t **err)
{
	json_t *arr = json_array();
	json_object_set_new(net, key, arr);
	for (char **p = list; p && *p; p++) {
		if (ac_net_pattern_check(*p, err) < 0)
			return -1;
		json_array_append_new(arr, json_string(*p));
	}
	return 0;
}

static int add_binding(json_t *secrets, json_t *b, const char *source)
{
	char *ph = ac_secret_placeholder();
	if (!ph) {
		json_decref(b);
		return -1;
	}
	json_object_set_new(b, "placeholder", json_string(ph));
	json_object_set_new(b, "source", json_string(source));
	free(ph);
	return json_array_append_new(secrets, b);
}

static bool bound(const json_t *secrets, const char *key)
{
	size_t i;
	json_t *b;
	json_array_foreach(secrets, i, b)
	{
		if (!strcmp(json_string_value(json_object_get(b, "key")) ?: "", key))
			return true;
	}
	return false;
}

int ac_net_state_new(const char *home, const ac_net_opts_t *o, json_t **net_out, ac_error_t **err)
{
	*net_out = NULL;
	bool egress = (o->allow_hosts && *o->allow_hosts) || (o->block_hosts && *o->block_hosts) ||
		      o->allowlist_only || (o->secrets && *o->secrets);
	if (egress && !o->network)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "a host policy and secret bindings need the network on "
				    "(--network, \"network\": true)");
	if (!o->network && !(o->publish && *o->publish))
		return 0;
	json_t *net =
	    json_pack("{sb sb}", "proxy", o->network, "allowlist_only", o->allowlist_only);
	json_t *secrets = json_array(), *publish = json_array();
	json_object_set_new(net, "secrets", secrets);
	json_object_set_new(net, "publish", publish);
	if (add_patterns(net, "allow_hosts", o->allow_hosts, err) < 0 ||
	    add_patterns(net, "block_hosts", o->block_hosts, err) < 0)
		goto fail;
	for (char **s = o->secrets; s && *s; s++) {
		json_t *b = ac_secret_binding_parse(*s, err);
		if (!b)
			goto fail;
		const char *key = json_string_value(json_object_get(b, "key"));
		if (bound(secrets, key)) {
			ac_error_set(err, AC_ERR_INVALID, 0, "secret '%s' is bound twice", key);
			json_decref(b);
			goto fail;
		}
		if (!ac_secret_exists(home, key)) {
			ac_error_set(err, AC_ERR_NOT_FOUND, 0,
				     "secret '%s' does not exist (set it with 'agentcell secret "
				     "set %s')",
				     key, key);
			json_decref(b);
			goto fail;
		}
		if (add_binding(secrets, b, "store") < 0)
			goto oom;
	}
	/* An agent's keys: from the store when it has them, else from the environment of
	 * each start; a key in neither is simply not there, as without the network. */
	const char *const *keys = o->network ? ac_agent_keys(o->agent) : NULL;
	for (size_t k = 0; keys && keys[k]; k++) {
		for (size_t i = 0; i < AC_ARRAY_SIZE(agent_hosts); i++) {
			if (strcmp(agent_hosts[i].key, keys[k]) || bound(secrets, keys[k]))
				continue;
			bool stored = ac_secret_exists(home, keys[k]);
			if (!stored && !getenv(keys[k]))
				continue;
			json_t *b = json_pack("{ss ss ss ss}", "key", keys[k], "host",
					      agent_hosts[i].host, "header", agent_hosts[i].header,
					      "prefix", agent_hosts[i].prefix);
			if (!b || add_binding(secrets, b, stored ? "store" : "env") < 0)
				goto oom;
		}
	}
	for (char **p = o->publish; p && *p; p++) {
		json_t *one = ac_net_publish_parse(*p, err);
		if (!one)
			goto fail;
		size_t i;
		json_t *q;
		json_array_foreach(publish, i, q)
		{
			if (json_integer_value(json_object_get(q, "host_port")) ==
				json_integer_value(json_object_get(one, "host_port")) &&
			    json_equal(json_object_get(q, "address"),
				       json_object_get(one, "address"))) {
				ac_error_set(err, AC_ERR_INVALID, 0, "port '%s' is published twice",
					     *p);
				json_decref(one);
				goto fail;
			}
		}
		json_array_append_new(publish, one);
		if (port_free(one, err) < 0)
			goto fail;
	}
	*net_out = net;
	return 0;
oom:
	ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
fail:
	json_decref(net);
	return -1;
}

json_t *ac_net_sandbox_env(const json_t *net)
{
	json_t *env = json_array();
	if (!json_is_true(json_object_get(net, "proxy")))
		return env;
	static const char *const proxy_vars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
						 "https_proxy"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(proxy_vars); i++)
		json_array_append_new(env, json_sprintf("%s=http://%s:%d", proxy_vars[i],
							AC_NET_PROXY_HOST, AC_NET_PROXY_PORT));
	json_array_append_new(env, json_string("NO_PROXY=localhost,127.0.0.1,::1"));
	json_array_append_new(env, json_string("no_proxy=localhost,127.0.0.1,::1"));
	json_t *secrets = json_object_get(net, "secrets");
	size_t i;
	json_t *b;
	json_array_foreach(secrets, i, b)
	{
		json_array_append_new(
		    env, json_sprintf("%s=%s", json_string_value(json_object_get(b, "key")),
				      json_string_value(json_object_get(b, "placeholder"))));
	}
	if (json_array_size(secrets)) {
		static const char *const ca_vars[] = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
						      "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"};
		for (size_t k = 0; k < AC_ARRAY_SIZE(ca_vars); k++)
			json_array_append_new(
			    env, json_sprintf("%s=%s", ca_vars[k], AC_NET_SANDBOX_BUNDLE));
	}
	return env;
}

bool ac_net_carries_key(const json_t *net, const char *key)
{
	return json_is_true(json_object_get(net, "proxy")) &&
	       bound(json_object_get(net, "secrets"), key);
}

int ac_net_prepare(const char *home, const char *name, const json_t *net, json_t **orders,
		   char **bundle_out, ac_error_t **err)
{
	*orders = NULL;
	*bundle_out = NULL;
	char dir[4096], cert[4200], key[4200], bundle[4200];
	ac_net_dir(home, name, dir, sizeof(dir));
	if (ac_mkdir_p_at(AT_FDCWD, dir, 0700, err) < 0)
		return -1;
	json_t *o = json_pack("{ss ss sb s{sO* sO* sb} s[] sO* sn}", "sandbox", name, "home", home,
			      "proxy", json_is_true(json_object_get(net, "proxy")), "policy",
			      "allow_hosts", json_object_get(net, "allow_hosts"), "block_hosts",
			      json_object_get(net, "block_hosts"), "allowlist_only",
			      json_is_true(json_object_get(net, "allowlist_only")), "secrets",
			      "publish", json_object_get(net, "publish"), "ca");
	if (!o)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	json_t *out = json_object_get(o, "secrets");
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(net, "secrets"), i, b)
	{
		const char *k = json_string_value(json_object_get(b, "key"));
		char *value = NULL;
		if (!k)
			continue;
		if (!strcmp(json_string_value(json_object_get(b, "source")) ?: "", "env")) {
			const char *v = getenv(k);
			if (!v || !*v)
				continue; /* as without the network: no key, nothing to inject */
			value = strdup(v);
		} else if (ac_secret_get(home, k, &value, err) < 0) {
			json_decref(o);
			return -1;
		}
		if (!value) {
			json_decref(o);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		json_t *c = json_deep_copy(b);
		json_object_set_new(c, "value", json_string(value));
		explicit_bzero(value, strlen(value));
		free(value);
		json_array_append_new(out, c);
	}
	if (json_array_size(json_object_get(net, "secrets"))) {
		snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
		snprintf(key, sizeof(key), "%s/ca.key", dir);
		snprintf(bundle, sizeof(bundle), "%s/bundle.pem", dir);
		char cn[128];
		snprintf(cn, sizeof(cn), "agentcell sandbox %.64s interception CA", name);
		if ((access(cert, F_OK) < 0 || access(key, F_OK) < 0) &&
		    ac_tls_ca_create(cert, key, cn, err) < 0) {
			json_decref(o);
			return -1;
		}
		if (ac_tls_bundle_write(cert, bundle, err) < 0) {
			json_decref(o);
			return -1;
		}
		json_object_set_new(o, "ca", json_pack("{ss ss}", "cert", cert, "key", key));
		*bundle_out = strdup(bundle);
	}
	*orders = o;
	return 0;
}

int ac_net_socket_in(int netns_fd, uint16_t port, ac_error_t **err)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot open this network namespace");
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return ac_error_set(err, AC_ERR_BACKEND, errno,
				    "cannot enter the sandbox's network namespace");
	int s = socket(AF_INET, (port ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	int e = errno;
	if (s >= 0 && port) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 512) < 0) {
			e = errno;
			close(s);
			s = -1;
		}
	}
	if (setns(self, CLONE_NEWNET) < 0)
		abort(); /* never go on inside the sandbox's namespace */
	if (s < 0)
		return ac_error_set(err, AC_ERR_BACKEND, e,
				    "cannot listen for the proxy in the sandbox");
	return s;
}

void ac_net_teardown(const char *home, const char *name, bool remove)
{
	char dir[4096], pidfile[4200];
	ac_net_dir(home, name, dir, sizeof(dir));
	ac_net_pidfile(home, name, pidfile, sizeof(pidfile));
	ac_net_proxy_stop(pidfile);
	if (remove)
		ac_rm_rf_at(AT_FDCWD, dir, NULL);
}
