/* Image references as Docker reads them (distribution/reference's grammar and its
 * normalization): [registry[:port]/]path[:tag][@sha256:hex]. A single name is an official
 * image (docker.io/library/NAME); the first component is a registry only when it has a '.'
 * or ':', is "localhost", or has capitals (a host name may, a repository may not). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"

#define NAME_MAX_TOTAL 255

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool ac_image_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7))
		return false;
	s += 7;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

bool ac_image_is_directory(const char *s)
{
	return s && (!strcmp(s, "host") || s[0] == '/' || !strcmp(s, ".") || !strcmp(s, "..") ||
		     !strncmp(s, "./", 2) || !strncmp(s, "../", 3));
}

/* host: domain components [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by '.', or an
 * IPv6 literal in brackets; then an optional :port of digits. */
static bool host_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n && s[0] == '[') {
		while (i < n && s[i] != ']') {
			if (!(isxdigit((unsigned char)s[i]) || s[i] == ':' || s[i] == '.' ||
			      (i == 0 && s[i] == '[')))
				return false;
			i++;
		}
		if (i >= n || i < 3)
			return false;
		i++;
	} else {
		for (;;) {
			size_t start = i;
			while (i < n && (is_alnum(s[i]) || s[i] == '-'))
				i++;
			if (i == start || s[start] == '-' || s[i - 1] == '-')
				return false;
			if (i < n && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*. */
static bool component_valid(const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
	}
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128)
		return false;
	if (!(is_alnum(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

static bool all_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int ac_image_ref_parse(const char *s, ac_image_ref_t *out, ac_error_t **err)
{
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return ac_error_set(err, AC_ERR_INVALID, 0, "empty image reference");
	size_t len = strlen(s);
	if (len > 1024)
		return ac_error_set(err, AC_ERR_INVALID, 0, "image reference too long");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid image reference '%s': invalid character", s);

	/* name[:tag][@digest] */
	size_t name_end = len;
	const char *at = strchr(s, '@');
	if (at) {
		if (!ac_image_digest_valid(at + 1))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid image reference '%s': the digest must be "
					    "sha256: and 64 lowercase hex digits",
					    s);
		memcpy(out->digest, at + 1, strlen(at + 1) + 1);
		name_end = (size_t)(at - s);
	}
	const char *last_slash = memrchr(s, '/', name_end);
	const char *colon = memrchr(last_slash ? last_slash : s, ':',
				    name_end - (size_t)((last_slash ? last_slash : s) - s));
	if (colon) {
		size_t tlen = name_end - (size_t)(colon - s) - 1;
		char tag[200];
		if (tlen >= sizeof(tag))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid image reference '%s': tag longer than 128 "
					    "characters",
					    s);
		memcpy(tag, colon + 1, tlen);
		tag[tlen] = '\0';
		if (!tag_valid(tag))
			return ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "invalid image reference '%s': invalid tag '%s' (letters, "
			    "digits, '_', '.', '-'; at most 128, not starting with "
			    "'.' or '-')",
			    s, tag);
		memcpy(out->tag, tag, tlen + 1);
		name_end = (size_t)(colon - s);
	}
	if (name_end == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': no repository name", s);
	if (name_end > NAME_MAX_TOTAL)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': name longer than %d characters",
				    s, NAME_MAX_TOTAL);

	/* Registry: the first component when it looks like a host. */
	const char *name = s;
	size_t nlen = name_end;
	const char *slash = memchr(name, '/', nlen);
	const char *path = name;
	size_t plen = nlen;
	if (slash) {
		size_t flen = (size_t)(slash - name);
		bool host = memchr(name, '.', flen) || memchr(name, ':', flen) ||
			    (flen == 9 && !memcmp(name, "localhost", 9));
		for (size_t i = 0; i < flen && !host; i++)
			if (name[i] >= 'A' && name[i] <= 'Z')
				host = true;
		if (host) {
			if (!host_valid(name, flen))
				return ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': invalid registry "
				    "'%.*s'",
				    s, (int)flen, name);
			if (flen >= sizeof(out->registry))
				return ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': registry name too "
				    "long",
				    s);
			memcpy(out->registry, name, flen);
			out->registry[flen] = '\0';
			path = slash + 1;
			plen = nlen - flen - 1;
		}
	}
	if (!out->registry[0] || !strcmp(out->registry, "index.docker.io") ||
	    !strcmp(out->registry, "registry-1.docker.io")) {
		memset(out->registry, 0, sizeof(out->registry));
		snprintf(out->registry, sizeof(out->registry), "docker.io");
	}

	/* Path components. */
	if (plen == 0)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': no repository name", s);
	for (size_t i = 0; i < plen;) {
		const char *e = memchr(path + i, '/', plen - i);
		size_t clen = e ? (size_t)(e - path) - i : plen - i;
		if (!component_valid(path + i, clen)) {
			bool upper = false;
			for (size_t k = 0; k < clen; k++)
				upper |= path[i + k] >= 'A' && path[i + k] <= 'Z';
			if (upper)
				return ac_error_set(err, AC_ERR_INVALID, 0,
						    "invalid image reference '%s': repository name "
						    "must be lowercase",
						    s);
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid image reference '%s': invalid repository "
					    "component '%.*s' (lowercase letters and digits, "
					    "separated by '.', '_', '__' or dashes)",
					    s, (int)clen, path + i);
		}
		i += clen + (e ? 1 : 0);
		if (e && i == plen)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid image reference '%s': empty repository "
					    "component",
					    s);
	}
	bool docker_hub = !strcmp(out->registry, "docker.io");
	bool single = !memchr(path, '/', plen);
	if (single && docker_hub && all_hex64(path, plen) && path == s)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': a 64-digit hex name is an image "
				    "id, not a repository",
				    s);
	int w = snprintf(out->repo, sizeof(out->repo), "%s%.*s",
			 docker_hub && single ? "library/" : "", (int)plen, path);
	if (w < 0 || (size_t)w >= sizeof(out->repo))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid image reference '%s': repository name too long", s);
	if (!out->tag[0] && !out->digest[0])
		snprintf(out->tag, sizeof(out->tag), "latest");
	return 0;
}

void ac_image_ref_format(const ac_image_ref_t *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s%s%s%s", r->registry, r->repo, r->tag[0] ? ":" : "", r->tag,
		 r->digest[0] ? "@" : "", r->digest);
}
