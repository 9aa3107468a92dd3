/* Strict parsers for small values taken from users: numbers and sandbox names. */
#include "agentcell/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ac_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	/* strtoull would accept leading spaces, a sign and wrap "-1" to UINT64_MAX. */
	if (s == NULL || *s == '\0') {
		errno = EINVAL;
		return -1;
	}
	uint64_t v = 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			errno = EINVAL;
			return -1;
		}
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			errno = ERANGE;
			return -1;
		}
		v = v * 10 + d;
	}
	if (v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	if (out != NULL)
		*out = v;
	return 0;
}

static bool is_alnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ac_name_valid(const char *name)
{
	if (name == NULL)
		return false;
	size_t n = strnlen(name, 64);
	if (n == 0 || n > 63)
		return false;
	if (!is_alnum_ascii(name[0]) || !is_alnum_ascii(name[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!is_alnum_ascii(c) && c != '-' && c != '_')
			return false;
	}
	return true;
}

bool ac_name_from_entry(const char *entry, const char *suffix, char name[64])
{
	size_t l = strlen(entry), sl = strlen(suffix);
	if (l <= sl || l - sl > 63 || strcmp(entry + l - sl, suffix) != 0)
		return false;
	memcpy(name, entry, l - sl);
	name[l - sl] = 0;
	return ac_name_valid(name);
}

/* Length of the UTF-8 sequence starting at s[0..n) if valid (1-4), 0 if invalid, or -k if
 * it is a valid start that needs more bytes than n (k = bytes present). Follows RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	int len;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -i;
		unsigned char b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
			return 0;
	}
	return len;
}

bool ac_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		int l = utf8_seq(p + i, n - i);
		if (l <= 0)
			return false;
		i += (size_t)l;
	}
	return true;
}

size_t ac_utf8_complete_prefix(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	/* Only the last 3 bytes can start an unfinished sequence. */
	size_t from = n > 3 ? n - 3 : 0;
	for (size_t i = from; i < n; i++)
		if (p[i] >= 0xC0 && utf8_seq(p + i, n - i) < 0)
			return i;
	return n;
}

char *ac_utf8_lossy(const char *s, size_t n, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)s;
	/* Worst case: every byte becomes the 3-byte U+FFFD. */
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		int l = utf8_seq(p + i, n - i);
		if (l > 0) {
			memcpy(out + o, p + i, (size_t)l);
			o += (size_t)l;
			i += (size_t)l;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return out;
}

void ac_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}
