/* The manager's side of the network (src/net/net.h): the secret store, audited by key
 * (never by value), and a sandbox's connection log, read from the audit log the proxy
 * writes. */
#include <string.h>

#include "agentcell/manager.h"
#include "base/util.h"
#include "core/internal.h"
#include "net/net.h"

int ac_manager_secret_set(ac_manager_t *m, const char *key, const char *value, size_t len,
			  ac_error_t **err)
{
	bool existed = ac_secret_exists(ac_manager_home(m), key);
	if (ac_secret_set(ac_manager_home(m), key, value, len, err) < 0)
		return -1;
	ac_audit_log(m, "secret_set", NULL, json_pack("{ss sb}", "key", key, "replaced", existed));
	return 0;
}

int ac_manager_secret_list(ac_manager_t *m, json_t **out, ac_error_t **err)
{
	*out = ac_secret_list(ac_manager_home(m), err);
	return *out ? 0 : -1;
}

int ac_manager_secret_remove(ac_manager_t *m, const char *key, ac_error_t **err)
{
	if (ac_secret_remove(ac_manager_home(m), key, err) < 0)
		return -1;
	ac_audit_log(m, "secret_removed", NULL, json_pack("{ss}", "key", key));
	return 0;
}

int ac_manager_net_log(ac_manager_t *m, const char *name, size_t limit, json_t **out,
		       ac_error_t **err)
{
	json_t *all = NULL;
	if (ac_audit_read(m, name, 0, &all, err) < 0)
		return -1;
	json_t *net = json_array();
	size_t i;
	json_t *rec;
	json_array_foreach(all, i, rec)
	{
		if (!strcmp(ac_state_str(rec, "event", ""), "net"))
			json_array_append(net, rec);
	}
	json_decref(all);
	while (limit && json_array_size(net) > limit)
		json_array_remove(net, 0);
	*out = net;
	return 0;
}
