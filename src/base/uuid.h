/* UUID version 7 (uuid.c). */
#ifndef AGENTCELL_BASE_UUID_H
#define AGENTCELL_BASE_UUID_H

#include <stdbool.h>

/* UUID version 7 (RFC 9562) in canonical 36-char lower-case form. */
void ac_uuid_v7(char out[37]);
bool ac_uuid_valid(const char *s);

#endif
