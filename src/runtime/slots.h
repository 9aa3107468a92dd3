/* Host-wide uid ranges (slots.c): every sandbox's user namespace maps its 65536 ids onto a
 * range of host uids of its own, a slot. */
#ifndef AGENTCELL_RT_SLOTS_H
#define AGENTCELL_RT_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "agentcell/error.h"

#define AC_UID_RANGE	    65536u
#define AC_UID_BASE_FIRST   0x40000000u /* host uid of slot 0's root */
#define AC_SLOTS_PERSISTENT 32768u	/* slots [0, 32768) belong to persistent sandboxes */
#define AC_SLOTS_TOTAL	    49151u	/* [32768, 49152) are leased by ephemeral runs */

static inline uint32_t ac_slot_uid_base(uint32_t slot)
{
	return AC_UID_BASE_FIRST + slot * AC_UID_RANGE;
}

/* Claims the smallest free persistent slot for owner (the state file's path). */
int ac_slot_claim(const char *owner, uint32_t *slot, ac_error_t **err);
void ac_slot_release(uint32_t slot, const char *owner);
/* Stale claims (see slots.c) whose owner path starts with owner_prefix: appended to found
 * as {kind, path, why} and, with remove, deleted. Returns how many, -1 on error. */
int ac_slot_sweep(const char *owner_prefix, bool remove, json_t *found);
/* Leases an ephemeral slot; returns an fd holding the lease (close to release). */
int ac_slot_lease(uint32_t *slot, ac_error_t **err);
/* The cgroup leaf of a persistent sandbox (host-unique through its slot). */
static inline void ac_sandbox_cgroup_leaf(char *buf, size_t len, const char *name, uint32_t slot)
{
	snprintf(buf, len, "sb%u-%s", slot, name);
}

#endif
