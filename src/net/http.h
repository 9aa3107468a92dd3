/* HTTP/1.1 for the egress proxy (http.c): streams (a socket, plain or TLS, with a read
 * buffer), strictly parsed message heads, body framing and relays, a growable string.
 * Private to src/net/ (proxy.c). */
#ifndef AGENTCELL_NET_HTTP_H
#define AGENTCELL_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/net.h"

#define HEAD_MAX  65536
#define HDR_MAX	  256
#define LINE_MAX_ 4096
#define RELAY_BUF 65536

/* ac_px_stream_head results; ac_px_body_framing kinds. */
enum { HEAD_OK = 1, HEAD_EOF = 0, HEAD_ERR = -1, HEAD_BIG = -2 };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

typedef struct {
	int fd;
	ac_ssl_t *ssl;
	char *buf;
	size_t off, len;
	uint64_t rd, wr; /* bytes read from and written to the socket */
} stream_t;

typedef struct {
	char *name, *value;
} hdr_t;

typedef struct {
	char *copy;
	char *start[3]; /* method target version, or version status reason */
	hdr_t h[HDR_MAX];
	size_t nh;
} head_t;

typedef struct {
	char *p;
	size_t len, cap;
	bool oom;
} sb_t;

ssize_t ac_px_stream_read(stream_t *s, void *dst, size_t n);
int ac_px_stream_write(stream_t *s, const void *data, size_t n);
/* A head (up to and including its empty line) into *head (NUL-terminated, to free). */
int ac_px_stream_head(stream_t *s, char **head, size_t *hlen);
/* Relays both ways until either side closes or fails. */
void ac_px_relay(stream_t *a, stream_t *b, char *buf);
void ac_px_head_clear(head_t *h);
bool ac_px_is_token(const char *s);
/* Parses text (a whole head, CRLF CRLF included). NULL, or why it is malformed. */
const char *ac_px_head_parse(const char *text, size_t len, bool response, head_t *h);
/* Whether a comma-separated list header (every instance) holds token. */
bool ac_px_hdr_has_token(const head_t *h, const char *name, const char *token);
/* The framing of a message (RFC 9112 6.3). -1: a request that cannot be framed safely. */
int ac_px_body_framing(const head_t *h, bool response, uint64_t *len);
/* Forwards a body of the given framing from a to b (chunked: parsed, passed as it is). */
int ac_px_forward_body(stream_t *a, stream_t *b, int kind, uint64_t len, char *buf);
void ac_px_sb_add(sb_t *b, const char *s, size_t n);
void ac_px_sb_str(sb_t *b, const char *s);
void ac_px_sb_free(sb_t *b);

#endif
