/* The manager's side of named volumes (src/image/volume.c keeps them): who uses which
 * volume (every sandbox state's "volumes"), the refusal to remove one in use, the audit
 * records volume_create and volume_remove, and the "volumes" of a new state (build.c). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/util.h"
#include "core/internal.h"
#include "image/image.h"

/* Whether a state mounts volume name. */
static bool state_mounts(const json_t *st, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(st, "volumes"), i, v)
	{
		if (!strcmp(ac_state_str(v, "name", ""), name))
			return true;
	}
	return false;
}

/* The names of the sandboxes that mount volume name, as a JSON array (sorted: the store
 * lists by name). states: every state. */
static json_t *users_of(const json_t *states, const char *name)
{
	json_t *users = json_array();
	size_t i;
	json_t *st;
	json_array_foreach(states, i, st)
	{
		if (state_mounts(st, name))
			json_array_append_new(users, json_string(ac_state_str(st, "name", "?")));
	}
	return users;
}

int ac_manager_volume_create(ac_manager_t *m, const char *name, char *const *labels, json_t **out,
			     ac_error_t **err)
{
	json_t *lab = json_object();
	for (char *const *l = labels; l && *l; l++) {
		char key[AC_LABEL_KEY_MAX + 1];
		const char *value;
		if (ac_label_parse(*l, key, sizeof(key), &value, err) < 0) {
			json_decref(lab);
			return -1;
		}
		json_object_set_new(lab, key, json_string(value));
	}
	if (json_object_size(lab) > AC_LABELS_MAX) {
		json_decref(lab);
		return ac_error_set(err, AC_ERR_INVALID, 0, "at most %d labels", AC_LABELS_MAX);
	}
	json_t *rec = NULL;
	int rc = ac_volume_create_labeled(ac_manager_home(m), name, lab, &rec, err);
	if (rc == 0)
		ac_audit_log(m, "volume_create", NULL,
			     json_pack("{ss sO}", "volume", name, "labels", lab));
	json_decref(lab);
	if (rc < 0)
		return -1;
	if (out) {
		json_object_set_new(rec, "used_by", json_array());
		*out = rec;
	} else {
		json_decref(rec);
	}
	return 0;
}

int ac_manager_volume_list(ac_manager_t *m, json_t **out, ac_error_t **err)
{
	json_t *list = NULL, *states = NULL;
	if (ac_volume_list(ac_manager_home(m), &list, err) < 0)
		return -1;
	if (ac_store_list(ac_manager_store(m), &states, NULL, err) < 0) {
		json_decref(list);
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		json_object_set_new(v, "used_by", users_of(states, ac_state_str(v, "name", "")));
	}
	json_decref(states);
	*out = list;
	return 0;
}

int ac_manager_volume_inspect(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err)
{
	json_t *rec = NULL, *states = NULL;
	if (ac_volume_inspect(ac_manager_home(m), name, &rec, err) < 0)
		return -1;
	if (ac_store_list(ac_manager_store(m), &states, NULL, err) < 0) {
		json_decref(rec);
		return -1;
	}
	json_object_set_new(rec, "used_by", users_of(states, name));
	json_decref(states);
	*out = rec;
	return 0;
}

int ac_manager_volume_remove(ac_manager_t *m, const char *name, ac_error_t **err)
{
	json_t *states = NULL;
	if (ac_store_list(ac_manager_store(m), &states, NULL, err) < 0)
		return -1;
	json_t *users = users_of(states, name);
	json_decref(states);
	size_t n = json_array_size(users);
	char **names = calloc(n + 1, sizeof(char *));
	if (!names) {
		json_decref(users);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		names[i] = (char *)json_string_value(json_array_get(users, i));
	int rc = ac_volume_remove(ac_manager_home(m), name, names, err);
	free(names);
	json_decref(users);
	if (rc < 0)
		return -1;
	ac_audit_log(m, "volume_remove", NULL, json_pack("{ss}", "volume", name));
	return 0;
}

int ac_volumes_state(ac_manager_t *m, const ac_backend_t *be, char *const *specs, json_t *st,
		     ac_error_t **err)
{
	if (!specs || !*specs)
		return 0;
	if (!(be->caps & AC_CAP_VOLUMES))
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "volumes are not supported by the %s backend", be->name);
	json_t *vols = json_array();
	size_t n = 0;
	for (char *const *s = specs; *s; s++, n++) {
		if (n == AC_VOLUMES_MAX) {
			json_decref(vols);
			return ac_error_set(err, AC_ERR_INVALID, 0, "at most %d volumes",
					    AC_VOLUMES_MAX);
		}
		json_t *v = NULL;
		if (ac_volume_spec_parse(*s, &v, err) < 0) {
			json_decref(vols);
			return -1;
		}
		const char *path = ac_state_str(v, "path", "");
		size_t i;
		json_t *prev;
		json_array_foreach(vols, i, prev)
		{
			if (!strcmp(ac_state_str(prev, "path", ""), path)) {
				ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "two volumes are mounted at %s: give each its own path", path);
				json_decref(v);
				json_decref(vols);
				return -1;
			}
		}
		json_array_append_new(vols, v);
	}
	/* Existence last: a usage error is reported before what the host lacks. */
	size_t i;
	json_t *v;
	json_array_foreach(vols, i, v)
	{
		char path[PATH_MAX];
		if (ac_volume_path(ac_manager_home(m), ac_state_str(v, "name", ""), path,
				   sizeof(path), err) < 0) {
			json_decref(vols);
			return -1;
		}
	}
	json_object_set_new(st, "volumes", vols);
	return 0;
}
