/* A builder's orders as one JSON document: what a threaded caller (serve, mcp) hands to
 * a builder it starts with posix_spawn of its own binary instead of fork (see launch.c). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "runtime/buildreq.h"
#include "runtime/layers.h"

static json_t *strv_json(char *const *v)
{
	if (!v)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *json_string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static const char *opt_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* NULL for a missing list; the strings stay in the document (never freed: the builder
 * does not return). */
static int strv_from(const json_t *a, char ***out)
{
	*out = NULL;
	if (!json_is_array(a))
		return 0;
	size_t n = json_array_size(a);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s) {
			free(v);
			return -1;
		}
		v[i] = (char *)s;
	}
	*out = v;
	return 0;
}

/* The volumes; the builder checks them (ac_layers_check). */
static int volumes_from(const json_t *a, ac_rt_spec_t *s)
{
	s->volumes = NULL;
	s->nvolumes = 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return 0;
	size_t n = json_array_size(a);
	if (n > AC_RT_VOLUMES_MAX)
		return -1;
	ac_rt_volume_t *v = calloc(n, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		v[i].src = opt_str(o, "src");
		v[i].dst = opt_str(o, "dst");
		v[i].read_only = json_is_true(json_object_get(o, "read_only"));
		if (!v[i].src || !v[i].dst) {
			free(v);
			return -1;
		}
	}
	s->volumes = v;
	s->nvolumes = n;
	return 0;
}

json_t *ac_buildreq_encode(const ac_rt_spec_t *s, const ac_cmd_t *c, const char *cg_leaf,
			   pid_t caller)
{
	json_t *spec = json_pack(
	    "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:f, s:I, s:I, s:I, s:b, s:o, s:o, "
	    "s:o, s:b, s:b, s:i, s:s?}",
	    "home", s->home, "name", s->name, "image", s->image, "data_dir", s->data_dir,
	    "mount_cwd", s->mount_cwd, "socket_path", s->socket_path, "uid_base",
	    (json_int_t)s->uid_base, "memory_mb", (json_int_t)s->limits.memory_mb, "cpus",
	    s->limits.cpus, "pids", (json_int_t)s->limits.pids, "tmp_mb", (json_int_t)s->tmp_mb,
	    "disk_mb", (json_int_t)s->disk_mb, "read_only", s->read_only, "env", strv_json(s->env),
	    "block", strv_json(s->block), "allow", strv_json(s->allow), "allowlist_only",
	    s->allowlist_only, "net_fd", s->net_fd, "net_proxy_port", (int)s->net_proxy_port,
	    "ca_bundle", s->ca_bundle);
	json_t *vols = json_array();
	for (size_t i = 0; vols && i < s->nvolumes; i++)
		json_array_append_new(vols, json_pack("{s:s?, s:s?, s:b}", "src", s->volumes[i].src,
						      "dst", s->volumes[i].dst, "read_only",
						      s->volumes[i].read_only));
	if (spec && (json_object_set_new(spec, "layers", strv_json(s->layers)) < 0 ||
		     json_object_set_new(spec, "workdir", json_string_or_null(s->workdir)) < 0 ||
		     json_object_set_new(spec, "user", json_string_or_null(s->user)) < 0 ||
		     json_object_set(spec, "volumes", vols) < 0)) {
		json_decref(spec);
		spec = NULL;
	}
	json_decref(vols);
	json_t *cmd = json_null();
	if (c)
		cmd = json_pack("{s:o, s:o, s:s?, s:s?, s:f, s:b, s:b, s:i, s:i}", "argv",
				strv_json(c->argv), "env", strv_json(c->env), "cwd", c->cwd, "user",
				c->user, "timeout", c->timeout, "tty", c->tty, "stdin_open",
				c->stdin_open, "rows", (int)c->rows, "cols", (int)c->cols);
	if (!spec || !cmd) {
		json_decref(spec);
		json_decref(cmd);
		return NULL;
	}
	return json_pack("{s:o, s:o, s:s, s:i}", "spec", spec, "cmd", cmd, "cgroup", cg_leaf,
			 "caller", (int)caller);
}

int ac_buildreq_decode(int fd, ac_rt_spec_t *s, ac_cmd_t **cmd_out, const char **cg_leaf,
		       pid_t *caller, ac_error_t **err)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0 || sb.st_size <= 0 || sb.st_size > (64 << 20))
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "no builder request");
	char *buf = malloc((size_t)sb.st_size);
	if (!buf || pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size) {
		free(buf);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot read the builder request");
	}
	json_error_t je;
	json_t *doc = json_loadb(buf, (size_t)sb.st_size, 0, &je);
	free(buf);
	json_t *js = json_object_get(doc, "spec"), *jc = json_object_get(doc, "cmd");
	*cg_leaf = opt_str(doc, "cgroup");
	if (!json_is_object(js) || !*cg_leaf)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad builder request: %s", je.text);
	*caller = (pid_t)json_integer_value(json_object_get(doc, "caller"));
	*s = (ac_rt_spec_t){
	    .home = opt_str(js, "home"),
	    .name = opt_str(js, "name"),
	    .image = opt_str(js, "image"),
	    .data_dir = opt_str(js, "data_dir"),
	    .mount_cwd = opt_str(js, "mount_cwd"),
	    .socket_path = opt_str(js, "socket_path"),
	    .uid_base = (uint32_t)json_integer_value(json_object_get(js, "uid_base")),
	    .limits = {.memory_mb = (uint64_t)json_integer_value(json_object_get(js, "memory_mb")),
		       .cpus = json_number_value(json_object_get(js, "cpus")),
		       .pids = (uint64_t)json_integer_value(json_object_get(js, "pids"))},
	    .tmp_mb = (uint64_t)json_integer_value(json_object_get(js, "tmp_mb")),
	    .disk_mb = (uint64_t)json_integer_value(json_object_get(js, "disk_mb")),
	    .read_only = json_is_true(json_object_get(js, "read_only")),
	    .allowlist_only = json_is_true(json_object_get(js, "allowlist_only")),
	    .net_fd = json_is_true(json_object_get(js, "net_fd")),
	    .net_proxy_port = (uint16_t)json_integer_value(json_object_get(js, "net_proxy_port")),
	    .ca_bundle = opt_str(js, "ca_bundle"),
	};
	if (strv_from(json_object_get(js, "env"), &s->env) < 0 ||
	    strv_from(json_object_get(js, "block"), &s->block) < 0 ||
	    strv_from(json_object_get(js, "allow"), &s->allow) < 0 ||
	    strv_from(json_object_get(js, "layers"), &s->layers) < 0 ||
	    volumes_from(json_object_get(js, "volumes"), s) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad builder request");
	/* Checked again where they are used (ac_layers_check); only the counts here. */
	s->workdir = opt_str(js, "workdir");
	s->user = opt_str(js, "user");
	*cmd_out = NULL;
	if (json_is_object(jc)) {
		ac_cmd_t *c = calloc(1, sizeof(*c));
		if (!c || strv_from(json_object_get(jc, "argv"), &c->argv) < 0 || !c->argv ||
		    !c->argv[0] || strv_from(json_object_get(jc, "env"), &c->env) < 0) {
			if (c != NULL)
				free(c->argv);
			free(c);
			return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad builder request");
		}
		c->cwd = opt_str(jc, "cwd");
		c->user = opt_str(jc, "user");
		c->timeout = json_number_value(json_object_get(jc, "timeout"));
		c->tty = json_is_true(json_object_get(jc, "tty"));
		c->stdin_open = json_is_true(json_object_get(jc, "stdin_open"));
		c->rows = (unsigned short)json_integer_value(json_object_get(jc, "rows"));
		c->cols = (unsigned short)json_integer_value(json_object_get(jc, "cols"));
		*cmd_out = c;
	}
	if (!s->home || !s->name || !s->image)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "bad builder request");
	return 0; /* doc stays alive: s and *cmd_out point into it */
}
