/* The pure half of the Docker backend: engine addresses, request bodies, answer parsers,
 * the stream demultiplexer. No I/O here: unit tests and fuzz targets drive all of it. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/store.h"
#include "base/base64.h"
#include "base/parse.h"
#include "base/util.h"
#include "backends/docker/docker.h"
#include "net/net.h"

/* ---- engine addresses ---- */

int ac_docker_host_parse(const char *s, ac_docker_host_t *h, ac_error_t **err)
{
	memset(h, 0, sizeof(*h));
	if (!s || !*s || strlen(s) > 300)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid engine address '%s'",
				    s ? s : "");
	const char *path = NULL;
	if (!strncmp(s, "unix://", 7))
		path = s + 7;
	else if (!strncmp(s, "unix:", 5))
		path = s + 5;
	else if (s[0] == '/')
		path = s;
	if (path) {
		if (path[0] != '/' || strlen(path) >= sizeof(h->path))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid engine address '%s': use unix:///path/to.sock "
					    "(at most %zu bytes)",
					    s, sizeof(h->path) - 1);
		h->is_unix = true;
		snprintf(h->path, sizeof(h->path), "%s", path);
		snprintf(h->spec, sizeof(h->spec), "unix://%s", path);
		snprintf(h->base, sizeof(h->base), "http://localhost");
		return 0;
	}
	if (strncmp(s, "tcp://", 6) != 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "unsupported engine address '%s': use unix:///path or "
				    "tcp://host:port (TLS and ssh:// are not supported)",
				    s);
	const char *hp = s + 6, *end = hp + strcspn(hp, "/?#");
	if (*end && strcmp(end, "/") != 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid engine address '%s'", s);
	char hostport[300];
	snprintf(hostport, sizeof(hostport), "%.*s", (int)(end - hp), hp);
	char *port = NULL;
	if (hostport[0] == '[') {
		char *close = strchr(hostport, ']');
		if (!close || (close[1] && close[1] != ':'))
			return ac_error_set(err, AC_ERR_INVALID, 0, "invalid engine address '%s'",
					    s);
		*close = 0;
		snprintf(h->host, sizeof(h->host), "%s", hostport + 1);
		port = close[1] == ':' ? close + 2 : NULL;
	} else {
		char *colon = strrchr(hostport, ':');
		if (colon) {
			*colon = 0;
			port = colon + 1;
		}
		snprintf(h->host, sizeof(h->host), "%s", hostport);
	}
	uint64_t p = 2375;
	if (!h->host[0] || (port && ac_parse_u64(port, 1, 65535, &p) < 0))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid engine address '%s'", s);
	for (const char *c = h->host; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-_:", *c))
			return ac_error_set(err, AC_ERR_INVALID, 0, "invalid engine address '%s'",
					    s);
	h->port = (unsigned)p;
	bool v6 = strchr(h->host, ':') != NULL;
	snprintf(h->spec, sizeof(h->spec), "tcp://%s%s%s:%u", v6 ? "[" : "", h->host, v6 ? "]" : "",
		 h->port);
	snprintf(h->base, sizeof(h->base), "http://%s%s%s:%u", v6 ? "[" : "", h->host,
		 v6 ? "]" : "", h->port);
	return 0;
}

int ac_docker_host_find(const char *spec, bool podman, ac_docker_host_t *h, const char **source,
			ac_error_t **err)
{
	const char *src = NULL;
	if (spec && *spec) {
		src = "sandbox state";
	} else if (podman && (spec = getenv("CONTAINER_HOST")) && *spec) {
		src = "CONTAINER_HOST";
	} else if ((spec = getenv("DOCKER_HOST")) && *spec) {
		src = "DOCKER_HOST";
	} else {
		char rootless[200] = "";
		const char *xdg = getenv("XDG_RUNTIME_DIR");
		if (xdg && *xdg && strlen(xdg) < 150)
			snprintf(rootless, sizeof(rootless), "%s/podman/podman.sock", xdg);
		const char *docker_order[] = {"/var/run/docker.sock", "/run/podman/podman.sock",
					      rootless};
		const char *podman_order[] = {"/run/podman/podman.sock", rootless,
					      "/var/run/docker.sock"};
		const char **order = podman ? podman_order : docker_order;
		spec = NULL;
		for (size_t i = 0; i < 3; i++)
			if (order[i][0] && access(order[i], F_OK) == 0) {
				spec = order[i];
				src = "default socket";
				break;
			}
		if (!spec)
			return ac_error_set(
			    err, AC_ERR_UNSUPPORTED, 0,
			    "no %s engine found: set DOCKER_HOST, or start %s",
			    podman ? "Podman" : "Docker or Podman",
			    podman ? "'podman system service' (socket /run/podman/podman.sock)"
				   : "dockerd (/var/run/docker.sock) or 'podman system service'");
	}
	if (source)
		*source = src;
	if (ac_docker_host_parse(spec, h, err) < 0) {
		ac_error_prefix(err, "%s", src);
		return -1;
	}
	return 0;
}

/* ---- request builders ---- */

int ac_docker_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool plain = isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~';
		if (o + (plain ? 1 : 3) >= len)
			return -1;
		if (plain) {
			buf[o++] = (char)*c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*c >> 4];
			buf[o++] = hex[*c & 15];
		}
	}
	if (o >= len)
		return -1;
	buf[o] = 0;
	return 0;
}

void ac_docker_container_name(const char *sandbox, char *buf, size_t len)
{
	snprintf(buf, len, "agentcell-%s", sandbox);
}

const char *ac_docker_image_of(const json_t *state)
{
	const char *img = ac_state_str(state, "image", "host");
	return strcmp(img, "host") == 0 ? AC_DOCKER_DEFAULT_IMAGE : img;
}

static json_t *string_array(char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++) {
		json_t *s = json_string(*v);
		if (!s) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, s);
	}
	return a;
}

/* What package managers need back after CapDrop ALL: file ownership and modes (dpkg, rpm),
 * switching users (apt's _apt sandbox, npm's scripts), signalling their own children. */
static const char *const cap_add[] = {"CHOWN",	"DAC_OVERRIDE", "FOWNER", "FSETID",
				      "SETUID", "SETGID",	"KILL"};

static void add_limits(json_t *hc, uint64_t memory_mb, double cpus, uint64_t pids)
{
	if (memory_mb) {
		json_object_set_new(hc, "Memory", json_integer((json_int_t)(memory_mb << 20)));
		/* No swap on top: the limit is the limit. */
		json_object_set_new(hc, "MemorySwap", json_integer((json_int_t)(memory_mb << 20)));
	}
	if (cpus > 0)
		json_object_set_new(hc, "NanoCpus", json_integer((json_int_t)llround(cpus * 1e9)));
	if (pids)
		json_object_set_new(hc, "PidsLimit", json_integer((json_int_t)pids));
}

json_t *ac_docker_create_body(const json_t *st, const ac_cmd_t *run, char *const *extra_env,
			      ac_error_t **err)
{
	const char *name = ac_state_str(st, "name", "");
	const char *image = ac_docker_image_of(st);
	if (!ac_image_ref_valid(image)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "invalid image reference '%s'", image);
		return NULL;
	}
	long long mem = ac_state_int(st, "memory_mb", 512);
	double cpus = ac_state_real(st, "cpus", (double)ac_state_int(st, "vcpus", 1));
	long long pids = ac_state_int(st, "pids_limit", 512);
	if (mem < 0 || mem > (1ll << 20) || !(cpus >= 0.01 && cpus <= 1024) || pids < 0 ||
	    pids > 4194304) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "sandbox '%s' has out-of-range limits in its state file", name);
		return NULL;
	}
	json_t *env = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(st, "env"), i, e)
	{
		const char *kv = json_string_value(e);
		if (kv && strchr(kv, '=') && kv[0] != '=')
			json_array_append_new(env, json_string(kv));
	}
	for (char *const *x = extra_env; x && *x; x++)
		if (strchr(*x, '='))
			json_array_append_new(env, json_string(*x));
	json_t *hc = json_object();
	add_limits(hc, (uint64_t)mem, cpus, (uint64_t)pids);
	/* With "net" (agentcell's network: net.c) the container has only lo, whatever the
	 * engine's default: its one way out is the proxy. "network" without "net" is a state
	 * of a version before the proxy: the engine's default network, as it had. */
	bool network = ac_state_bool(st, "network", false) && !json_object_get(st, "net");
	json_object_set_new(hc, "NetworkMode", json_string(network ? "bridge" : "none"));
	json_object_set_new(hc, "ReadonlyRootfs", json_boolean(ac_state_bool(st, "read_only", 0)));
	json_object_set_new(hc, "CapDrop", json_pack("[s]", "ALL"));
	json_t *caps = json_array();
	for (i = 0; i < AC_ARRAY_SIZE(cap_add); i++)
		json_array_append_new(caps, json_string(cap_add[i]));
	json_object_set_new(hc, "CapAdd", caps);
	/* The runtime's default seccomp profile stays (nothing here turns it off). */
	json_object_set_new(hc, "SecurityOpt", json_pack("[s]", "no-new-privileges"));
	/* A persistent sandbox's PID 1 is the engine's init (it reaps what execs leave); a
	 * run's is the command itself, so that a missing program fails the start (127). */
	json_object_set_new(hc, "Init", json_boolean(run == NULL));
	if (ac_state_bool(st, "read_only", false)) {
		uint64_t tmp = mem > 0 && mem < 1024 ? (uint64_t)mem : 1024;
		char opts[96];
		snprintf(opts, sizeof(opts), "rw,nosuid,nodev,mode=1777,size=%llum",
			 (unsigned long long)tmp);
		json_object_set_new(hc, "Tmpfs", json_pack("{ss}", "/tmp", opts));
	}
	const char *cwd = ac_state_str(st, "mount_cwd", NULL);
	if (cwd) {
		json_t *bind = json_sprintf("%s:/workspace:rw", cwd);
		if (!bind || strchr(cwd, ':')) {
			json_decref(bind);
			json_decref(hc);
			json_decref(env);
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "the mounted directory '%s' cannot be bound by the engine",
				     cwd);
			return NULL;
		}
		json_object_set_new(hc, "Binds", json_pack("[o]", bind));
	}
	if (run)
		json_object_set_new(hc, "AutoRemove", json_false());
	json_t *labels =
	    json_pack("{ss ss}", AC_DOCKER_LABEL_SANDBOX, name, AC_DOCKER_LABEL_MANAGED, "true");
	if (run)
		json_object_set_new(labels, AC_DOCKER_LABEL_RUN, json_string("true"));
	json_t *body = json_pack("{ss ss so so so}", "Image", image, "Hostname", name, "Env", env,
				 "Labels", labels, "HostConfig", hc);
	if (!body) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot build the container's settings");
		return NULL;
	}
	const char *wd = cwd ? "/workspace" : NULL;
	if (run) {
		json_t *argv = string_array(run->argv);
		json_t *cenv = json_object_get(body, "Env");
		for (char *const *x = run->env; x && *x; x++)
			json_array_append_new(cenv, json_string(*x));
		if (!argv) {
			json_decref(body);
			ac_error_set(err, AC_ERR_INVALID, 0, "the command is not valid UTF-8");
			return NULL;
		}
		/* The image's entrypoint would wrap the command: agentcell runs exactly argv. */
		json_object_set_new(body, "Entrypoint", json_pack("[]"));
		json_object_set_new(body, "Cmd", argv);
		json_object_set_new(body, "Tty", json_boolean(run->tty));
		json_object_set_new(body, "OpenStdin", json_boolean(run->stdin_open));
		json_object_set_new(body, "StdinOnce", json_boolean(run->stdin_open));
		json_object_set_new(body, "AttachStdin", json_boolean(run->stdin_open));
		json_object_set_new(body, "AttachStdout", json_true());
		json_object_set_new(body, "AttachStderr", json_true());
		if (run->cwd)
			wd = run->cwd;
		if (run->user)
			json_object_set_new(body, "User", json_string(run->user));
	} else {
		/* Kept alive by the engine's init (PID 1, reaps orphans) and an idle loop that
		 * any image with a shell can run. */
		json_object_set_new(body, "Entrypoint", json_pack("[s]", "sh"));
		json_object_set_new(body, "Cmd",
				    json_pack("[ss]", "-c", "while :; do sleep 3600; done"));
	}
	if (wd)
		json_object_set_new(body, "WorkingDir", json_string(wd));
	if (json_array_size(json_object_get(body, "Env")) == 0 && json_object_get(st, "env") &&
	    json_array_size(json_object_get(st, "env")) > 0) {
		json_decref(body);
		ac_error_set(err, AC_ERR_INVALID, 0, "the environment is not valid UTF-8");
		return NULL;
	}
	return body;
}

int ac_docker_body_extend(json_t *body, const char *bundle, bool one_shot, ac_error_t **err)
{
	json_t *hc = json_object_get(body, "HostConfig");
	if (!json_is_object(hc))
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "the container's settings lack HostConfig");
	if (bundle) {
		if (strchr(bundle, ':'))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "the CA bundle '%s' cannot be bound by the engine "
					    "(a ':' in its path)",
					    bundle);
		json_t *binds = json_object_get(hc, "Binds");
		if (!json_is_array(binds)) {
			binds = json_array();
			json_object_set_new(hc, "Binds", binds);
		}
		json_array_append_new(binds,
				      json_sprintf("%s:%s:ro", bundle, AC_NET_SANDBOX_BUNDLE));
	}
	if (one_shot)
		json_object_set_new(json_object_get(body, "Labels"), AC_DOCKER_LABEL_RUN,
				    json_string("true"));
	return 0;
}

json_t *ac_docker_exec_body(const ac_cmd_t *cmd, char *const *extra_env, const char *default_cwd)
{
	json_t *argv = string_array(cmd->argv);
	json_t *env = string_array(cmd->env);
	if (!argv || !env) {
		json_decref(argv);
		json_decref(env);
		return NULL;
	}
	for (char *const *x = extra_env; x && *x; x++)
		json_array_insert_new(env, 0, json_string(*x));
	json_t *b = json_pack("{sb sb sb sb so so}", "AttachStdin", cmd->stdin_open, "AttachStdout",
			      1, "AttachStderr", 1, "Tty", cmd->tty, "Cmd", argv, "Env", env);
	if (!b)
		return NULL;
	const char *cwd = cmd->cwd ? cmd->cwd : default_cwd;
	if (cwd)
		json_object_set_new(b, "WorkingDir", json_string(cwd));
	if (cmd->user)
		json_object_set_new(b, "User", json_string(cmd->user));
	if (cmd->tty)
		json_object_set_new(
		    b, "ConsoleSize",
		    json_pack("[ii]", cmd->rows ? cmd->rows : 24, cmd->cols ? cmd->cols : 80));
	return b;
}

json_t *ac_docker_update_body(uint64_t memory_mb, double cpus, uint64_t pids)
{
	json_t *b = json_object();
	add_limits(b, memory_mb, cpus, pids);
	return b;
}

json_t *ac_docker_update_body_libpod(uint64_t memory_mb, double cpus, uint64_t pids)
{
	json_t *b = json_object();
	if (memory_mb)
		json_object_set_new(b, "memory",
				    json_pack("{sI sI}", "limit", (json_int_t)(memory_mb << 20),
					      "swap", (json_int_t)(memory_mb << 20)));
	if (cpus > 0)
		json_object_set_new(b, "cpu",
				    json_pack("{sI sI}", "quota",
					      (json_int_t)llround(cpus * 100000), "period",
					      (json_int_t)100000));
	if (pids)
		json_object_set_new(b, "pids", json_pack("{sI}", "limit", (json_int_t)pids));
	return b;
}

/* ---- answer parsers ---- */

static void one_line(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	if (outlen)
		out[o] = 0;
}

void ac_docker_error_text(const char *body, size_t len, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	out[0] = 0;
	if (!body || !len)
		return;
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (msg)
		one_line(msg, strlen(msg), out, outlen);
	else
		one_line(body, len > 300 ? 300 : len, out, outlen);
	json_decref(j);
}

static bool hex_id(const char *s, size_t min)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int ac_docker_parse_id(const char *body, size_t len, char *id, size_t idlen)
{
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	const char *s = json_string_value(json_object_get(j, "Id"));
	int rc = hex_id(s, 12) && strlen(s) < idlen ? 0 : -1;
	if (rc == 0)
		snprintf(id, idlen, "%s", s);
	json_decref(j);
	return rc;
}

static long long int_field(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

int ac_docker_parse_inspect(const char *body, size_t len, ac_docker_inspect_t *out)
{
	memset(out, 0, sizeof(*out));
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	json_t *state = json_object_get(j, "State");
	const char *id = json_string_value(json_object_get(j, "Id"));
	if (!json_is_object(state) || !hex_id(id, 12)) {
		json_decref(j);
		return -1;
	}
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->running = json_is_true(json_object_get(state, "Running"));
	out->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
	out->pid = int_field(state, "Pid");
	out->exit_code = int_field(state, "ExitCode");
	const char *status = json_string_value(json_object_get(state, "Status"));
	one_line(status ? status : "", status ? strlen(status) : 0, out->status,
		 sizeof(out->status));
	json_decref(j);
	return 0;
}

int ac_docker_parse_exec_inspect(const char *body, size_t len, ac_docker_inspect_t *out)
{
	memset(out, 0, sizeof(*out));
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	json_t *running = json_object_get(j, "Running");
	json_t *code = json_object_get(j, "ExitCode");
	if (!json_is_boolean(running) || (code && !json_is_integer(code) && !json_is_null(code))) {
		json_decref(j);
		return -1;
	}
	out->running = json_is_true(running);
	out->exit_code = int_field(j, "ExitCode");
	out->pid = int_field(j, "Pid");
	json_decref(j);
	return 0;
}

int ac_docker_parse_list(const char *body, size_t len, json_t **out)
{
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	if (!json_is_array(j)) {
		json_decref(j);
		return -1;
	}
	json_t *res = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(j, i, c)
	{
		json_t *labels = json_object_get(c, "Labels");
		const char *id = json_string_value(json_object_get(c, "Id"));
		const char *managed =
		    json_string_value(json_object_get(labels, AC_DOCKER_LABEL_MANAGED));
		const char *sandbox =
		    json_string_value(json_object_get(labels, AC_DOCKER_LABEL_SANDBOX));
		if (!hex_id(id, 12) || !managed || strcmp(managed, "true") != 0)
			continue;
		const char *name =
		    json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		if (name && name[0] == '/')
			name++;
		const char *state = json_string_value(json_object_get(c, "State"));
		const char *run = json_string_value(json_object_get(labels, AC_DOCKER_LABEL_RUN));
		json_t *e = json_pack("{ss ss* ss* ss* sb}", "id", id, "name", name, "sandbox",
				      sandbox, "state", state, "run", run && !strcmp(run, "true"));
		if (e)
			json_array_append_new(res, e);
	}
	json_decref(j);
	*out = res;
	return 0;
}

int ac_docker_parse_path_stat(const char *b64, bool *is_dir, bool *is_link, long long *size)
{
	unsigned char *raw = NULL;
	size_t n = b64 ? strlen(b64) : 0;
	if (n == 0 || n > 4096 || ac_base64_decode(b64, n, &raw, &n) < 0)
		return -1;
	json_t *j = json_loadb((const char *)raw, n, 0, NULL);
	free(raw);
	json_t *mode = json_object_get(j, "mode");
	if (!json_is_integer(mode) || json_integer_value(mode) < 0) {
		json_decref(j);
		return -1;
	}
	unsigned long long m = (unsigned long long)json_integer_value(mode);
	*is_dir = (m >> 31) & 1;
	*is_link = (m >> 27) & 1;
	*size = int_field(j, "size");
	json_decref(j);
	return 0;
}

int ac_docker_parse_version(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
	const char *version = json_string_value(json_object_get(j, "Version"));
	const char *api = json_string_value(json_object_get(j, "ApiVersion"));
	const char *name = "Docker Engine";
	json_t *c;
	size_t i;
	json_array_foreach(json_object_get(j, "Components"), i, c)
	{
		const char *n = json_string_value(json_object_get(c, "Name"));
		if (n && !strcmp(n, "Podman Engine"))
			name = "Podman Engine";
	}
	if (!version) {
		json_decref(j);
		return -1;
	}
	char v[64], a[32];
	one_line(version, strlen(version), v, sizeof(v));
	one_line(api ? api : "?", api ? strlen(api) : 1, a, sizeof(a));
	snprintf(out, outlen, "%s %s (API %s)", name, v, a);
	json_decref(j);
	return 0;
}

int ac_docker_parse_head(const char *buf, size_t len, ac_http_head_t *h)
{
	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	const char *end = NULL;
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (!end)
		return len > AC_DOCKER_HEAD_MAX ? -1 : 1;
	if ((size_t)(end - buf) > AC_DOCKER_HEAD_MAX)
		return -1;
	h->head_len = (size_t)(end - buf) + 4;
	if (end - buf < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
	    !isdigit((unsigned char)buf[11]))
		return -1;
	h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (h->status < 100)
		return -1;
	const char *line = memchr(buf, '\n', (size_t)(end - buf));
	while (line && line < end) {
		line++;
		const char *eol = memchr(line, '\r', (size_t)(end - line) + 1);
		if (!eol)
			break;
		size_t n = (size_t)(eol - line);
		static const char cl[] = "content-length:", te[] = "transfer-encoding:";
		if (n > sizeof(cl) - 1 && !strncasecmp(line, cl, sizeof(cl) - 1)) {
			const char *v = line + sizeof(cl) - 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			long long value = 0;
			if (v == eol)
				return -1;
			for (; v < eol && *v != ' ' && *v != '\t'; v++) {
				if (!isdigit((unsigned char)*v) || value > (1ll << 40))
					return -1;
				value = value * 10 + (*v - '0');
			}
			h->content_length = value;
		} else if (n > sizeof(te) - 1 && !strncasecmp(line, te, sizeof(te) - 1)) {
			const char *v = line + sizeof(te) - 1;
			size_t vl = (size_t)(eol - v);
			for (size_t k = 0; k + 7 <= vl; k++)
				if (!strncasecmp(v + k, "chunked", 7))
					h->chunked = true;
		}
		line = eol + 1;
	}
	return 0;
}

/* ---- the multiplexed stream ---- */

int ac_demux_feed(ac_demux_t *d, const char *buf, size_t len, ac_demux_sink_fn sink, void *arg)
{
	if (d->broken)
		return -1;
	while (len) {
		if (d->left == 0) {
			size_t take = 8 - d->hlen;
			if (take > len)
				take = len;
			memcpy(d->hdr + d->hlen, buf, take);
			d->hlen += take;
			buf += take;
			len -= take;
			if (d->hlen < 8)
				break;
			d->hlen = 0;
			/* [stream, 0, 0, 0, size (big endian, 4 bytes)] */
			if (d->hdr[0] > 2 || d->hdr[1] || d->hdr[2] || d->hdr[3]) {
				d->broken = true;
				return -1;
			}
			d->stream = d->hdr[0] == 2 ? 2 : 1;
			d->left = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
				  (uint32_t)d->hdr[6] << 8 | (uint32_t)d->hdr[7];
			continue;
		}
		size_t take = len < d->left ? len : d->left;
		sink(d->stream, buf, take, arg);
		d->left -= (uint32_t)take;
		buf += take;
		len -= take;
	}
	return 0;
}
