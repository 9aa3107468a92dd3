/* SHA-1 (FIPS 180-4). Only for protocol identifiers that the peer defines with it (the
 * WebSocket handshake's Sec-WebSocket-Accept): never for anything that needs collision
 * resistance. */
#ifndef AGENTCELL_BASE_SHA1_H
#define AGENTCELL_BASE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define AC_SHA1_LEN 20

typedef struct ac_sha1 {
	uint32_t h[5];
	uint64_t total; /* bytes hashed so far */
	unsigned char block[64];
	size_t used; /* bytes waiting in block */
} ac_sha1_t;

void ac_sha1_init(ac_sha1_t *c);
void ac_sha1_update(ac_sha1_t *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void ac_sha1_final(ac_sha1_t *c, unsigned char out[AC_SHA1_LEN]);
/* One-shot digest of data[0..len). */
void ac_sha1(const void *data, size_t len, unsigned char out[AC_SHA1_LEN]);

#endif
