/* The command policy (policy.c): blocked programs masked by the builder, the Landlock
 * allowlist applied by init, and the check before every exec. */
#ifndef AGENTCELL_RT_POLICY_H
#define AGENTCELL_RT_POLICY_H

#include "agentcell/error.h"
#include "runtime/spec.h"

/* The directories searched for a program name (the sandbox's default PATH). */
#define AC_PATH_DIRS "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"
/* 0 if argv0 may run under the policy, else -EPERM. */
int ac_policy_check(const ac_rt_spec_t *spec, const char *argv0);
/* Builder side: masks the blocked programs under root (a directory path), their versioned
 * names in PATH and their copies in the read-only layers (list cached under home/base). */
int ac_policy_mask(const ac_rt_spec_t *spec, const char *root, const char *staging,
		   ac_error_t **err);
/* Init side (after pivot_root, with no_new_privs): the Landlock allowlist. */
int ac_policy_landlock(const ac_rt_spec_t *spec, ac_error_t **err);

#endif
