/* Declarations shared inside libagentcell (not part of the public API). */
#ifndef AGENTCELL_CORE_INTERNAL_H
#define AGENTCELL_CORE_INTERNAL_H

#include "agentcell/manager.h"

#define AC_SLOTS_PERSISTENT_PUBLIC 32768u /* = AC_SLOTS_PERSISTENT in runtime.h */

const char *ac_manager_home(ac_manager_t *m);

#endif
