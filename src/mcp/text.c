/* Command output and file contents as JSON text: JSON strings must be UTF-8, program output
 * need not be. */
#include <stdlib.h>
#include <string.h>

#include "agentcell/util.h"
#include "mcp/internal.h"

bool ac_mcp_utf8_text(const char *s, size_t len)
{
	return !memchr(s, '\0', len) && ac_utf8_valid(s, len);
}
