/* The manager's side of agentcell's image store (src/image/image.h): what the CLI, the API
 * and MCP call to pull, list, inspect, remove, prune, import and export images and to log
 * in to registries. It adds what the store cannot know: the [images] insecure list of
 * agentcell.toml, which sandboxes use which image (their states' "image_id"), and the
 * audit records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/config.h"
#include "agentcell/manager.h"
#include "base/util.h"
#include "core/internal.h"
#include "image/image.h"

#define INSECURE_MAX 256

/* The plain-HTTP registries: req's, then agentcell.toml's [images] insecure (strings point
 * into req and *cfg_out, which the caller frees after use). */
static int insecure_list(ac_manager_t *m, const ac_image_req_t *req, char ***out, json_t **cfg_out,
			 ac_error_t **err)
{
	*out = NULL;
	*cfg_out = NULL;
	const json_t *cfg = req ? req->config : NULL;
	if (!cfg) {
		if (ac_config_load(NULL, ac_manager_home(m), cfg_out, err) < 0)
			return -1;
		cfg = *cfg_out;
	}
	const json_t *list = json_object_get(json_object_get(cfg, "images"), "insecure");
	size_t n = 0;
	for (char *const *p = req ? req->insecure : NULL; p && *p; p++)
		n++;
	n += json_array_size(list);
	if (n > INSECURE_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "too many insecure registries (at most %d)", INSECURE_MAX);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	size_t k = 0;
	for (char *const *p = req ? req->insecure : NULL; p && *p; p++)
		v[k++] = *p;
	for (size_t i = 0; i < json_array_size(list); i++)
		if (json_string_value(json_array_get(list, i)))
			v[k++] = (char *)json_string_value(json_array_get(list, i));
	*out = v;
	return 0;
}

/* The options of a pull or login from req: *insecure (to free) and *cfg (to json_decref)
 * hold what o points to. */
static int pull_opts(ac_manager_t *m, const ac_image_req_t *req, char ***insecure, json_t **cfg,
		     ac_image_pull_opts_t *o, ac_error_t **err)
{
	memset(o, 0, sizeof(*o));
	if (insecure_list(m, req, insecure, cfg, err) < 0)
		return -1;
	o->home = ac_manager_home(m);
	o->insecure = *insecure;
	o->progress_fd = req && req->progress_fd > 0 ? req->progress_fd : -1;
	o->cancel_fd = req && req->cancel_fd > 0 ? req->cancel_fd : -1;
	return 0;
}

int ac_manager_image_users(ac_manager_t *m, char ***ids, char ***names, ac_error_t **err)
{
	*ids = *names = NULL;
	json_t *states = NULL;
	if (ac_store_list(m->store, &states, NULL, err) < 0)
		return -1;
	size_t n = json_array_size(states), k = 0;
	char **iv = calloc(n + 1, sizeof(char *)), **nv = calloc(n + 1, sizeof(char *));
	if (!iv || !nv) {
		free(iv);
		free(nv);
		json_decref(states);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *st = json_array_get(states, i);
		const char *id = ac_state_str(st, "image_id", NULL);
		if (!id || !*id)
			continue;
		iv[k] = strdup(id);
		nv[k] = strdup(ac_state_str(st, "name", "?"));
		if (!iv[k] || !nv[k]) {
			free(iv[k]);
			free(nv[k]);
			iv[k] = nv[k] = NULL;
			ac_strv_free(iv);
			ac_strv_free(nv);
			json_decref(states);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		k++;
	}
	json_decref(states);
	*ids = iv;
	*names = nv;
	return 0;
}

int ac_manager_image_pull(ac_manager_t *m, const char *ref, const ac_image_req_t *req,
			  json_t **record, ac_error_t **err)
{
	struct timespec t0;
	ac_audit_clock(&t0);
	_cleanup_free_ char **insecure = NULL;
	json_t *cfg = NULL;
	ac_image_pull_opts_t o;
	if (pull_opts(m, req, &insecure, &cfg, &o, err) < 0)
		return -1;
	json_t *rec = NULL;
	int rc = ac_image_pull(&o, ref, &rec, err);
	json_decref(cfg);
	if (rc < 0) {
		ac_audit_log(m, "image_pull", NULL,
			     ac_audit_with_duration(json_pack("{ss ss}", "ref", ref, "error",
							      err && *err ? (*err)->msg : "failed"),
						    &t0));
		return -1;
	}
	ac_audit_log(m, "image_pull", NULL,
		     ac_audit_with_duration(
			 json_pack("{ss ss* ss*}", "ref", ref, "id",
				   json_string_value(json_object_get(rec, "id")), "manifest_digest",
				   json_string_value(json_object_get(rec, "manifest_digest"))),
			 &t0));
	*record = rec;
	return 0;
}

int ac_manager_image_list(ac_manager_t *m, bool all, json_t **out, ac_error_t **err)
{
	json_t *list = NULL;
	if (ac_image_list(ac_manager_home(m), false, &list, err) < 0)
		return -1;
	json_t *res = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r)
	{
		json_t *t = json_object_get(r, "template");
		if (t && !json_is_null(t))
			continue;
		if (!all && !json_array_size(json_object_get(r, "refs")))
			continue;
		json_array_append(res, r);
	}
	json_decref(list);
	*out = res;
	return 0;
}

int ac_manager_image_inspect(ac_manager_t *m, const char *name, json_t **record, ac_error_t **err)
{
	return ac_image_lookup(ac_manager_home(m), name, false, record, err);
}

/* Whether the image named by name is one that in_use lists; its record in *rec. */
static bool used(const char *home, const char *name, char *const *ids, json_t **rec)
{
	ac_error_t *e = NULL;
	*rec = NULL;
	if (ac_image_lookup(home, name, false, rec, &e) < 0) {
		ac_error_free(e);
		return false;
	}
	const char *id = json_string_value(json_object_get(*rec, "id"));
	for (char *const *p = ids; id && p && *p; p++)
		if (!strcmp(*p, id))
			return true;
	return false;
}

int ac_manager_image_remove(ac_manager_t *m, const char *name, bool force, json_t **removed,
			    ac_error_t **err)
{
	const char *home = ac_manager_home(m);
	char **ids = NULL, **names = NULL;
	if (ac_manager_image_users(m, &ids, &names, err) < 0)
		return -1;
	json_t *rec = NULL;
	/* --force on an image a sandbox uses takes its tags away (the name given, or every
	 * tag when named by id) and keeps the record and its layers for the sandbox: the
	 * store does that when it gets no in_use list. */
	bool tags_only = force && used(home, name, ids, &rec);
	int rc = ac_image_remove(home, name, false, tags_only ? NULL : ids,
				 tags_only ? NULL : names, removed, err);
	json_decref(rec);
	ac_strv_free(ids);
	ac_strv_free(names);
	if (rc < 0)
		return -1;
	ac_audit_log(m, "image_remove", NULL,
		     json_pack("{ss sb sO*}", "name", name, "force", force, "removed", *removed));
	return 0;
}

int ac_manager_image_prune(ac_manager_t *m, json_t **removed, uint64_t *freed, ac_error_t **err)
{
	char **ids = NULL, **names = NULL;
	if (ac_manager_image_users(m, &ids, &names, err) < 0)
		return -1;
	int rc = ac_image_prune(ac_manager_home(m), ids, removed, freed, err);
	ac_strv_free(ids);
	ac_strv_free(names);
	if (rc < 0)
		return -1;
	ac_audit_log(m, "image_prune", NULL,
		     json_pack("{sO* sI}", "removed", *removed, "freed", (json_int_t)*freed));
	return 0;
}

int ac_manager_image_import(ac_manager_t *m, const char *path, const char *ref, json_t **records,
			    ac_error_t **err)
{
	json_t *recs = NULL;
	if (ac_image_import(ac_manager_home(m), path, ref, &recs, err) < 0)
		return -1;
	json_t *ids = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
	{
		json_array_append_new(ids, json_pack("{sO* sO*}", "id", json_object_get(r, "id"),
						     "refs", json_object_get(r, "refs")));
	}
	_cleanup_free_ char *abs = strcmp(path, "-") ? realpath(path, NULL) : NULL;
	ac_audit_log(m, "image_import", NULL,
		     json_pack("{ss ss* so}", "path", abs ? abs : path, "ref", ref, "images", ids));
	*records = recs;
	return 0;
}

int ac_manager_image_export(ac_manager_t *m, const char *name, const char *path, ac_error_t **err)
{
	if (ac_image_export(ac_manager_home(m), name, path, err) < 0)
		return -1;
	_cleanup_free_ char *abs = strcmp(path, "-") ? realpath(path, NULL) : NULL;
	ac_audit_log(m, "image_export", NULL,
		     json_pack("{ss ss}", "name", name, "path", abs ? abs : path));
	return 0;
}

int ac_manager_image_login(ac_manager_t *m, const char *registry, const char *user,
			   const char *password, const ac_image_req_t *req, ac_error_t **err)
{
	_cleanup_free_ char **insecure = NULL;
	json_t *cfg = NULL;
	ac_image_pull_opts_t o;
	if (pull_opts(m, req, &insecure, &cfg, &o, err) < 0)
		return -1;
	int rc = ac_image_login(&o, registry, user, password, err);
	json_decref(cfg);
	ac_audit_log(m, "image_login", NULL,
		     json_pack("{ss ss sb}", "registry", registry, "user", user, "ok", rc == 0));
	return rc < 0 ? -1 : 0;
}

int ac_manager_image_logout(ac_manager_t *m, const char *registry, ac_error_t **err)
{
	if (ac_image_logout(ac_manager_home(m), registry, err) < 0)
		return -1;
	ac_audit_log(m, "image_logout", NULL, json_pack("{ss}", "registry", registry));
	return 0;
}
