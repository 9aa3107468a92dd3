/* What a cluster holds that no sandbox owns: objects labelled
 * agentcell.dev/managed-by=agentcell whose sandbox is not in this store.
 *
 *   - probe (doctor) lists those of other homes (another machine, another
 *     AGENTCELL_HOME, or made before owner labels) in the current context's namespace:
 *     shown with their kubectl delete command, never deleted, since they may be in use.
 *   - sweep (doctor lists, gc deletes) handles this home's own, found by its owner label
 *     (ac_owner_id) in every cluster and namespace this home has made objects in
 *     (ac_kc_remember_cluster): a pod or policy no sandbox of the store owns and whose
 *     creator (annotation: pid, start time, boot id) is not a live process of this
 *     machine is what a killed run or start left. A run in progress is never touched. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/util.h"
#include "backends/kubernetes/cluster.h"
#include "backends/kubernetes/k8s.h"
#include "backends/kubernetes/kubernetes.h"
#include "backends/kubernetes/pod.h"
#include "backends/remote/remote.h"

static const char *meta_str(const json_t *obj, const char *map, const char *key)
{
	json_t *md = json_object_get(obj, "metadata");
	return json_string_value(json_object_get(map ? json_object_get(md, map) : md, key));
}

static bool owner_is(const json_t *obj, const char *owner)
{
	const char *o = meta_str(obj, "labels", AC_K8S_LABEL_OWNER);
	return o && !strcmp(o, owner);
}

/* Whether a labelled object is a sandbox's of this store, in this namespace. */
static bool owned(const ac_backend_ctx_t *ctx, const json_t *obj, const char *ns)
{
	json_t *md = json_object_get(obj, "metadata");
	/* The exact name is the pod's annotation; a policy has only the label (the key,
	 * which is the name itself for plain names). */
	const char *name =
	    json_string_value(json_object_get(json_object_get(md, "annotations"), AC_K8S_ANN_NAME));
	if (!name)
		name = json_string_value(
		    json_object_get(json_object_get(md, "labels"), AC_K8S_LABEL_SANDBOX));
	const char *objname = json_string_value(json_object_get(md, "name"));
	json_t *st = NULL;
	if (!name || !objname || !ctx->store || !ac_name_valid(name) ||
	    ac_store_load(ctx->store, name, &st, NULL) < 0)
		return false;
	json_t *cfg = json_object_get(st, "kubernetes");
	char pod[AC_K8S_NAME_MAX];
	bool yes =
	    !strcmp(ac_state_str(st, "backend", ""), "kubernetes") &&
	    !strcmp(ac_kc_cfg_str(cfg, "namespace") ? ac_kc_cfg_str(cfg, "namespace") : "", ns) &&
	    ac_k8s_pod_name(name, pod, NULL) == 0 && !strcmp(pod, objname);
	json_decref(st);
	return yes;
}

/* The labelled objects no sandbox of this store owns, made by other homes (or before
 * owner labels): this home's own are sweep's, listed and deleted there. */
static void list_orphans(const ac_backend_ctx_t *ctx, ac_kc_t *k, const char *path,
			 const char *kind, const char *mine, json_t *out, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = ac_kc_call(k, "GET", path, NULL, &r, err);
	if (s >= 0 && (s < 200 || s >= 300)) {
		char what[64];
		snprintf(what, sizeof(what), "list %s", kind);
		ac_k8s_error_from(&r, k->conn.remote.name, what, err);
	}
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(r.json, "items"), i, it)
	{
		if (owned(ctx, it, k->conn.namespace) || (mine && owner_is(it, mine)))
			continue;
		const char *n =
		    json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
		char fix[400];
		snprintf(fix, sizeof(fix), "kubectl delete %s %s -n %s", kind, n ? n : "?",
			 k->conn.namespace);
		json_array_append_new(out,
				      json_pack("{ss ss ss ss}", "kind", kind, "name", n ? n : "",
						"namespace", k->conn.namespace, "remove", fix));
	}
	ac_remote_resp_free(&r);
}

/* ops.probe: resolve, GET /version, and the labelled pods and policies no sandbox owns
 * (read-only: shown, never deleted). */
json_t *ac_k8s_probe(const ac_backend_ctx_t *ctx)
{
	json_t *out = json_object();
	ac_kc_t k;
	ac_error_t *e = NULL;
	json_t *none = json_object();
	if (ac_kc_open(none, &k, &e) < 0) {
		json_decref(none);
		json_object_set_new(out, "error", json_string(e ? e->msg : "no connection"));
		ac_error_free(e);
		return out;
	}
	json_decref(none);
	json_object_set_new(out, "label", json_string("kubernetes cluster"));
	json_object_set_new(out, "engine", json_string(k.conn.remote.server));
	json_object_set_new(out, "source", json_string(k.conn.remote.name));
	json_object_set_new(out, "namespace", json_string(k.conn.namespace));
	ac_remote_resp_t r;
	long s = ac_kc_call(&k, "GET", "/version", NULL, &r, &e);
	if (s >= 200 && s < 300 && json_is_string(json_object_get(r.json, "gitVersion")))
		json_object_set(out, "version", json_object_get(r.json, "gitVersion"));
	else if (s >= 0)
		ac_k8s_error_from(&r, k.conn.remote.name, "get /version", &e);
	ac_remote_resp_free(&r);
	char owner[AC_OWNER_LEN + 1];
	const char *mine =
	    ctx->home && ac_owner_id(ctx->home, "kubernetes", false, owner, NULL) == 1 ? owner
										       : NULL;
	if (!e) {
		json_t *orphans = json_array();
		char path[400];
		ac_kc_pod_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" AC_KC_MANAGED_SELECTOR);
		list_orphans(ctx, &k, path, "pod", mine, orphans, &e);
		ac_kc_policy_path(&k, NULL, path, sizeof(path));
		strcat(path, "?" AC_KC_MANAGED_SELECTOR);
		if (!e)
			list_orphans(ctx, &k, path, "networkpolicy", mine, orphans, &e);
		json_object_set_new(out, "orphans", orphans);
	}
	if (e)
		json_object_set_new(out, "error", json_string(e->msg));
	ac_error_free(e);
	ac_kc_close(&k);
	return out;
}

/* GET a labelled list: its items (to json_decref), NULL on error. */
static json_t *list_of(ac_kc_t *k, const char *path, const char *kind, ac_error_t **err)
{
	ac_remote_resp_t r;
	long s = ac_kc_call(k, "GET", path, NULL, &r, err);
	json_t *items = NULL;
	if (s >= 200 && s < 300 && json_is_array(json_object_get(r.json, "items")))
		items = json_incref(json_object_get(r.json, "items"));
	else if (s >= 0) {
		char what[64];
		snprintf(what, sizeof(what), "list %ss", kind);
		ac_k8s_error_from(&r, k->conn.remote.name, what, err);
	}
	ac_remote_resp_free(&r);
	return items;
}

/* This home's leftovers in one cluster: appended to found (deleted first with remove).
 * Returns how many objects of this home the cluster holds (leftover or not), -1 when it
 * could not be asked. */
static int sweep_cluster(const ac_backend_ctx_t *ctx, json_t *cfg, const char *owner, bool remove,
			 json_t *found)
{
	json_t *st = json_pack("{sO}", "kubernetes", cfg);
	ac_kc_t k;
	int rc = ac_kc_open(st, &k, NULL);
	json_decref(st);
	if (rc < 0)
		return -1;
	int mine = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		bool pods = pass == 0;
		char path[400];
		if (pods)
			ac_kc_pod_path(&k, NULL, path, sizeof(path));
		else
			ac_kc_policy_path(&k, NULL, path, sizeof(path));
		size_t n = strlen(path);
		snprintf(path + n, sizeof(path) - n, "?%s,agentcell.dev%%2Fowner%%3D%s",
			 AC_KC_MANAGED_SELECTOR, owner);
		const char *kind = pods ? "pod" : "networkpolicy";
		json_t *items = list_of(&k, path, kind, NULL);
		if (!items) {
			rc = -1;
			break;
		}
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
		{
			mine++;
			const char *name = meta_str(it, NULL, "name");
			if (!name || !owner_is(it, owner) || owned(ctx, it, k.conn.namespace) ||
			    ac_owner_creator_alive(meta_str(it, "annotations", AC_K8S_ANN_CREATOR)))
				continue;
			if (remove && (pods ? ac_kc_pod_delete(&k, name, NULL)
					    : ac_kc_policy_delete(&k, name, NULL)) < 0)
				continue;
			char where[600];
			snprintf(where, sizeof(where), "%s %s/%s", k.conn.remote.name,
				 k.conn.namespace, name);
			json_array_append_new(
			    found,
			    json_pack("{ss ss ss}", "kind",
				      pods ? "kubernetes pod" : "kubernetes networkpolicy", "path",
				      where, "why",
				      "made by this home; no sandbox or running command owns it"));
		}
		json_decref(items);
	}
	ac_kc_close(&k);
	return rc < 0 ? -1 : mine;
}

void ac_k8s_sweep(const ac_backend_ctx_t *ctx, bool remove, json_t *found)
{
	char owner[AC_OWNER_LEN + 1];
	if (!ctx->home || ac_owner_id(ctx->home, "kubernetes", false, owner, NULL) != 1)
		return; /* this home never made anything in a cluster */
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s/kubernetes/clusters", ctx->home);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") || de->d_name[0] == '.')
			continue;
		char *text = NULL;
		size_t n = 0;
		if (ac_read_file_at(dirfd(d), de->d_name, 65536, &text, &n, NULL) < 0)
			continue;
		json_t *cfg = json_loads(text, 0, NULL);
		free(text);
		if (!json_is_object(cfg)) {
			json_decref(cfg);
			continue;
		}
		int mine = sweep_cluster(ctx, cfg, owner, remove, found);
		json_decref(cfg);
		/* Nothing of this home is left there: no reason to ask that cluster again
		 * until a create or start records it anew. */
		if (mine == 0 && remove)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}
