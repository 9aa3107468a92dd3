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

json_t *ac_mcp_text(const char *s, size_t len)
{
	if (!s)
		return json_string("");
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	size_t n;
	char *clean = ac_utf8_lossy(s, len, &n);
	j = clean ? json_stringn(clean, n) : NULL;
	free(clean);
	return j;
}
