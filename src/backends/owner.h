/* What a remote backend (Kubernetes, Nomad) makes in a cluster carries the owner id of the
 * agentcell home that made it, so that gc and doctor find this home's leftovers and never
 * another's; what a one-shot run makes also carries its creator (the process, while it
 * lives the object is not a leftover). */
#ifndef AGENTCELL_BACKENDS_OWNER_H
#define AGENTCELL_BACKENDS_OWNER_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"

#define AC_OWNER_LEN 16
/* This home's owner id for a backend (16 hex digits), kept in HOME/DIR/owner; made there
 * first when make (of two first creates, one wins and both read its id). 1 with out, 0
 * when there is none and !make, -1 on error. */
int ac_owner_id(const char *home, const char *dir, bool make, char out[AC_OWNER_LEN + 1],
		ac_error_t **err);
/* This process as a creator mark: "pid:starttime:boot_id". */
void ac_owner_creator(char *out, size_t cap);
/* Whether a creator mark names a live process of this boot. */
bool ac_owner_creator_alive(const char *creator);

#endif
