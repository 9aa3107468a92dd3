/* SHA-256 (FIPS 180-4): a streaming digest for content addressing (image blobs, layers,
 * manifests). Our own implementation: OpenSSL is only loaded with dlopen, and the store
 * hashes every byte it downloads or unpacks. */
#ifndef AGENTCELL_BASE_SHA256_H
#define AGENTCELL_BASE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AC_SHA256_LEN 32
/* 64 lowercase hex digits and a NUL. */
#define AC_SHA256_HEX_LEN 65

typedef struct ac_sha256 {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	unsigned char block[64];
	size_t used; /* bytes waiting in block */
} ac_sha256_t;

void ac_sha256_init(ac_sha256_t *c);
void ac_sha256_update(ac_sha256_t *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void ac_sha256_final(ac_sha256_t *c, unsigned char out[AC_SHA256_LEN]);
/* Finishes c into 64 lowercase hex digits and a NUL. */
void ac_sha256_final_hex(ac_sha256_t *c, char hex[AC_SHA256_HEX_LEN]);
/* One-shot digest of data[0..len). */
void ac_sha256(const void *data, size_t len, unsigned char out[AC_SHA256_LEN]);
void ac_sha256_hex(const void *data, size_t len, char hex[AC_SHA256_HEX_LEN]);
/* Hashes everything read from fd up to its end: 0, or -1 with errno. *len (may be NULL):
 * bytes read. */
int ac_sha256_fd(int fd, ac_sha256_t *c, uint64_t *len);

#endif
