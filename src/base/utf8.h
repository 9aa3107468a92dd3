/* UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF. The one place the project decodes or checks UTF-8: JSON text, TOML,
 * audit records, MCP replies, streamed output and WebSocket text messages all use it. */
#ifndef AGENTCELL_BASE_UTF8_H
#define AGENTCELL_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* U+FFFD REPLACEMENT CHARACTER, encoded. */
#define AC_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Whether c is a continuation byte (10xxxxxx): it never starts a character. */
static inline bool ac_utf8_is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* The sequence starting at s[0..n) (n >= 1): its length 1-4 when well-formed; 0 when s[0]
 * cannot start one or a later byte breaks it; -k when the k bytes present are a valid
 * beginning that needs more bytes than n. */
int ac_utf8_seq(const char *s, size_t n);
/* Whether s[0..n) is well-formed (NUL bytes are characters). */
bool ac_utf8_valid(const char *s, size_t n);
/* Offset of the first byte of s[0..n) that does not start a well-formed sequence, or n. */
size_t ac_utf8_invalid_at(const char *s, size_t n);
/* Well-formed and without NUL bytes: text a reader can take as it is. */
bool ac_utf8_is_text(const char *s, size_t n);
/* The longest prefix of s[0..n) that does not end inside a sequence the next bytes could
 * still complete: streamed output is cut anywhere, the tail waits for the next chunk. */
size_t ac_utf8_complete_prefix(const char *s, size_t n);
/* s[0..n) with each invalid byte replaced by U+FFFD; NUL-terminated, to free (NULL: out
 * of memory); *out_len (optional) gets its length. */
char *ac_utf8_lossy(const char *s, size_t n, size_t *out_len);
/* Copies s[0..n) into out (at most max bytes, no terminator), each byte that does not
 * start a well-formed sequence replaced by repl (ASCII), never cutting a sequence in two.
 * Returns the bytes written. */
size_t ac_utf8_sanitize(const char *s, size_t n, char *out, size_t max, char repl);
/* The code point of the well-formed sequence at s[0..n) and its length in *len (optional);
 * an invalid or truncated sequence gives U+FFFD and length 1 (0 when n is 0). */
uint32_t ac_utf8_decode(const char *s, size_t n, size_t *len);
/* Encodes a scalar value (not a surrogate, at most U+10FFFF) into out; returns 1-4, or 0
 * for a value that is not one. */
size_t ac_utf8_encode(uint32_t cp, char out[4]);
/* Characters in s[0..n), counting every byte that is not a continuation byte. */
size_t ac_utf8_chars(const char *s, size_t n);

#endif
