/* agentkernel's three security profiles: the one table that the manager applies and every
 * front end validates against (include/agentcell/manager.h). */
#include <stdio.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/util.h"

static const char *const permissive_env[] = {"PATH",   "HOME", "USER", "LANG",
					     "LC_ALL", "TERM", NULL};

static const ac_profile_t profiles[] = {
    {.name = "permissive",
     .memory_mb = 0,
     .cpus = 1,
     .mount_cwd = true,
     .network = true,
     .pass_env = permissive_env},
    {.name = "moderate", .memory_mb = 512, .cpus = 1},
    {.name = "restrictive", .memory_mb = 256, .cpus = 0.5, .read_only = true},
};

const ac_profile_t *ac_profile_find(const char *name)
{
	for (size_t i = 0; name && i < AC_ARRAY_SIZE(profiles); i++)
		if (!strcmp(profiles[i].name, name))
			return &profiles[i];
	return NULL;
}

const ac_profile_t *ac_profiles(size_t *n)
{
	*n = AC_ARRAY_SIZE(profiles);
	return profiles;
}

const char *ac_profile_names(void)
{
	return "permissive, moderate or restrictive";
}
