/* Base64 (base64.c). */
#ifndef AGENTCELL_BASE_BASE64_H
#define AGENTCELL_BASE_BASE64_H

#include <stddef.h>

/* Base64 (RFC 4648, padded). encode returns a NUL-terminated string to free or NULL;
 * decode rejects anything malformed (-1) and NUL-terminates its output. */
char *ac_base64_encode(const void *data, size_t len);
int ac_base64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

#endif
