/* Strict parsers for small values taken from users: numbers and sandbox names. */
#include "base/parse.h"
#include "base/util.h"

#include <ctype.h>
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

void ac_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

bool ac_image_ref_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 255 || s[0] == '-' || s[0] == '/' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	return true;
}
