/* UTF-8 checks and conversions (see utf8.h). Every function here is built on ac_utf8_seq,
 * so the rules for what is well-formed live in one function. */
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

int ac_utf8_seq(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	int len;
	/* The second byte's range carries the rules on overlongs (E0, F0), surrogates (ED)
	 * and the upper limit (F4) (RFC 3629 section 4). */
	unsigned char lo = 0x80, hi = 0xBF;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
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
	} else {
		return 0;
	}
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -i;
		unsigned char b = s[i];
		if (i == 1 ? (b < lo || b > hi) : !ac_utf8_is_cont(b))
			return 0;
	}
	return len;
}

size_t ac_utf8_invalid_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int l = ac_utf8_seq(s + i, n - i);
		if (l <= 0)
			return i;
		i += (size_t)l;
	}
	return n;
}

bool ac_utf8_valid(const char *s, size_t n)
{
	return ac_utf8_invalid_at(s, n) == n;
}

bool ac_utf8_is_text(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL && ac_utf8_valid(s, n);
}

size_t ac_utf8_complete_prefix(const char *s, size_t n)
{
	/* Only the last 3 bytes can start an unfinished sequence. */
	size_t from = n > 3 ? n - 3 : 0;
	for (size_t i = from; i < n; i++)
		if ((unsigned char)s[i] >= 0xC0 && ac_utf8_seq(s + i, n - i) < 0)
			return i;
	return n;
}

char *ac_utf8_lossy(const char *s, size_t n, size_t *out_len)
{
	/* Worst case: every byte becomes the 3-byte U+FFFD. */
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		int l = ac_utf8_seq(s + i, n - i);
		if (l > 0) {
			memcpy(out + o, s + i, (size_t)l);
			o += (size_t)l;
			i += (size_t)l;
		} else {
			memcpy(out + o, AC_UTF8_REPLACEMENT, 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return out;
}

size_t ac_utf8_sanitize(const char *s, size_t n, char *out, size_t max, char repl)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		int l = ac_utf8_seq(s + i, n - i);
		if (l <= 0) {
			if (o + 1 > max)
				break;
			out[o++] = repl;
			i++;
			continue;
		}
		if (o + (size_t)l > max)
			break;
		memcpy(out + o, s + i, (size_t)l);
		o += (size_t)l;
		i += (size_t)l;
	}
	return o;
}

uint32_t ac_utf8_decode(const char *str, size_t n, size_t *len)
{
	const unsigned char *s = (const unsigned char *)str;
	if (n == 0) {
		if (len)
			*len = 0;
		return 0;
	}
	int l = ac_utf8_seq(str, n);
	if (l <= 0) {
		if (len)
			*len = 1;
		return 0xFFFD;
	}
	/* The lead byte keeps 7, 5, 4 or 3 payload bits. */
	static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
	uint32_t cp = s[0] & lead_mask[l];
	for (int i = 1; i < l; i++)
		cp = cp << 6 | (s[i] & 0x3F);
	if (len)
		*len = (size_t)l;
	return cp;
}

size_t ac_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	if (cp > 0x10FFFF)
		return 0;
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t ac_utf8_chars(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		if (!ac_utf8_is_cont((unsigned char)s[i]))
			count++;
	return count;
}
