/* Declarations shared inside libagentcell (not part of the public API). */
#ifndef AGENTCELL_CORE_INTERNAL_H
#define AGENTCELL_CORE_INTERNAL_H

#include "agentcell/manager.h"

const char *ac_manager_home(ac_manager_t *m);

#endif
