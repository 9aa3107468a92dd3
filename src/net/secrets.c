/* The secret store and secret bindings (net.h, "secrets.c"). Values are only ever read
 * by the proxy that injects them: every access goes through a descriptor of HOME/secrets
 * opened without following a symlink, and a secret's file is opened with O_NOFOLLOW, so
 * a link planted in place of either is refused instead of leaking or overwriting the file
 * it points to. */
#include "net/net.h"
#include "net/pattern.h"
#include "base/io.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define SECRET_MAX     65536
#define KEY_MAX	       128
#define HEADER_MAX     128
#define PREFIX_MAX     256
#define PLACEHOLDER    "agentcell-placeholder-"
#define DEFAULT_HEADER "Authorization"
#define DEFAULT_PREFIX "Bearer "

/* A user's text in a message: valid UTF-8, at most 100 bytes (ac_error_set escapes the
 * controls). */
static const char *shown(const char *s, char buf[104])
{
	size_t len = strlen(s);
	size_t n = ac_utf8_sanitize(s, len, buf, 100, '?');
	strcpy(buf + n, len > n ? "..." : "");
	return buf;
}

static const char *key_why(const char *key)
{
	if (key == NULL || *key == '\0')
		return "empty";
	if (key[0] >= '0' && key[0] <= '9')
		return "starts with a digit";
	size_t i = 0;
	for (; key[i] != '\0'; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return "invalid character (a key takes letters, digits and '_')";
		if (i == KEY_MAX)
			return "longer than 128 characters";
	}
	return NULL;
}

int ac_secret_key_check(const char *key, ac_error_t **err)
{
	const char *why = key_why(key);
	if (why == NULL)
		return 0;
	char buf[104];
	return ac_error_set(err, AC_ERR_INVALID, 0, "invalid secret key '%s': %s",
			    shown(key ? key : "", buf), why);
}

static const char *value_why(const char *value, size_t len)
{
	if (len == 0)
		return "empty";
	if (len > SECRET_MAX)
		return "longer than 65536 bytes";
	for (size_t i = 0; i < len; i++)
		if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n')
			return "it contains a NUL, CR or LF byte (it goes into an HTTP header)";
	return NULL;
}

static int not_found(ac_error_t **err, const char *key)
{
	return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
			    "secret '%s' does not exist (set it with 'agentcell secret set %s')",
			    key, key);
}

/* *out := a descriptor of HOME/secrets, never through a symlink; with create it (and
 * HOME) is made first. Without create a missing directory is 0 with *out = -1. */
static int secrets_dir(const char *home, bool create, int *out, ac_error_t **err)
{
	*out = -1;
	if (home == NULL || *home == '\0')
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "no agentcell home for the secrets");
	if (create && ac_mkdir_p_at(AT_FDCWD, home, 0700, err) < 0)
		return -1;
	_cleanup_close_ int hfd =
	    TEMP_FAILURE_RETRY(open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY));
	if (hfd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '%s'", home);
	}
	if (create && mkdirat(hfd, "secrets", 0700) < 0 && errno != EEXIST)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create '%s/secrets'",
				    home);
	_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
	    openat(hfd, "secrets", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return ac_error_set(
			    err, AC_ERR_PERMISSION, 0,
			    "'%s/secrets' is not a directory (a symlink?): refusing "
			    "to use it",
			    home);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '%s/secrets'", home);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat '%s/secrets'", home);
	if (st.st_uid != geteuid())
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "'%s/secrets' belongs to uid %u, not to this user: refusing to "
				    "use it",
				    home, (unsigned)st.st_uid);
	/* Made by hand or under an odd umask: nobody else may list or read it. */
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot chmod '%s/secrets'", home);
	*out = steal_fd(fd);
	return 0;
}

int ac_secret_set(const char *home, const char *key, const char *value, size_t len,
		  ac_error_t **err)
{
	if (ac_secret_key_check(key, err) < 0)
		return -1;
	const char *why = value_why(value, len);
	if (why != NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid value for secret '%s': %s",
				    key, why);
	_cleanup_close_ int dfd = -1;
	if (secrets_dir(home, true, &dfd, err) < 0)
		return -1;
	struct stat st;
	if (fstatat(dfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "secret '%s' is not a regular file (a symlink?): refusing to "
				    "replace it",
				    key);
	if (ac_write_file_atomic_at(dfd, key, value, len, 0600, err) < 0) {
		ac_error_prefix(err, "cannot store secret '%s'", key);
		return -1;
	}
	return 0;
}

int ac_secret_get(const char *home, const char *key, char **value, ac_error_t **err)
{
	if (ac_secret_key_check(key, err) < 0)
		return -1;
	_cleanup_close_ int dfd = -1;
	if (secrets_dir(home, false, &dfd, err) < 0)
		return -1;
	if (dfd < 0)
		return not_found(err, key);
	_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
	    openat(dfd, key, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
	if (fd < 0) {
		if (errno == ENOENT)
			return not_found(err, key);
		if (errno == ELOOP)
			return ac_error_set(err, AC_ERR_PERMISSION, 0,
					    "secret '%s' is a symlink: refusing to follow it", key);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open secret '%s'", key);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat secret '%s'", key);
	if (!S_ISREG(st.st_mode))
		return ac_error_set(err, AC_ERR_PERMISSION, 0,
				    "secret '%s' is not a regular file: refusing to read it", key);
	char *buf = malloc(SECRET_MAX + 2);
	if (buf == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot read secret '%s'", key);
	ssize_t n = ac_read_all(fd, buf, SECRET_MAX + 1);
	int saved = errno;
	const char *why = n < 0 ? NULL : value_why(buf, (size_t)n);
	if (n < 0 || why != NULL) {
		explicit_bzero(buf, SECRET_MAX + 2);
		free(buf);
		if (n < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, saved, "cannot read secret '%s'",
					    key);
		/* Edited by hand (a trailing newline, say): it must not reach a header. */
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "secret '%s' is unusable: %s (set it again with 'agentcell "
				    "secret set %s')",
				    key, why, key);
	}
	buf[n] = '\0';
	*value = buf;
	return 0;
}

bool ac_secret_exists(const char *home, const char *key)
{
	if (key_why(key) != NULL)
		return false;
	_cleanup_close_ int dfd = -1;
	ac_error_t *err = NULL;
	if (secrets_dir(home, false, &dfd, &err) < 0) {
		ac_error_free(err);
		return false;
	}
	struct stat st;
	return dfd >= 0 && fstatat(dfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

typedef struct {
	char key[KEY_MAX + 1];
	int64_t bytes;
	int64_t mtime_ms;
} entry_t;

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const entry_t *)a)->key, ((const entry_t *)b)->key);
}

static void closedirp(DIR **d)
{
	if (*d != NULL)
		closedir(*d);
}

json_t *ac_secret_list(const char *home, ac_error_t **err)
{
	_cleanup_close_ int dfd = -1;
	if (secrets_dir(home, false, &dfd, err) < 0)
		return NULL;
	if (dfd < 0)
		return json_array();
	__attribute__((cleanup(closedirp))) DIR *d = fdopendir(dfd);
	if (d == NULL) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot list '%s/secrets'", home);
		return NULL;
	}
	dfd = -1; /* the DIR owns it now */
	_cleanup_free_ entry_t *v = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				ac_error_set(err, AC_ERR_INTERNAL, errno,
					     "cannot list '%s/secrets'", home);
				return NULL;
			}
			break;
		}
		/* Only keys: temporary files of a write in progress have a '.' in their name. */
		struct stat st;
		if (key_why(de->d_name) != NULL ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			entry_t *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot list secrets");
				return NULL;
			}
			v = nv;
			cap = ncap;
		}
		snprintf(v[n].key, sizeof(v[n].key), "%s", de->d_name);
		v[n].bytes = (int64_t)st.st_size;
		v[n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
	json_t *out = json_array();
	for (size_t i = 0; out != NULL && i < n; i++) {
		char ts[32];
		ac_time_format_rfc3339(v[i].mtime_ms, ts);
		json_t *e = json_pack("{s:s, s:I, s:s}", "key", v[i].key, "bytes",
				      (json_int_t)v[i].bytes, "updated_at", ts);
		if (e == NULL || json_array_append_new(out, e) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	if (out == NULL)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot list secrets");
	return out;
}

int ac_secret_remove(const char *home, const char *key, ac_error_t **err)
{
	if (ac_secret_key_check(key, err) < 0)
		return -1;
	_cleanup_close_ int dfd = -1;
	if (secrets_dir(home, false, &dfd, err) < 0)
		return -1;
	if (dfd < 0)
		return not_found(err, key);
	/* unlinkat removes a planted symlink itself, never what it points to. */
	if (unlinkat(dfd, key, 0) < 0) {
		if (errno == ENOENT)
			return not_found(err, key);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove secret '%s'", key);
	}
	if (fsync(dfd) < 0 && errno != EINVAL)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove secret '%s'", key);
	return 0;
}

/* ---- bindings ---- */

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *header_why(const char *h, size_t len)
{
	if (len == 0)
		return "empty header name";
	if (len > HEADER_MAX)
		return "header name longer than 128 characters";
	bool digits = true;
	for (size_t i = 0; i < len; i++) {
		if (!is_tchar(h[i]))
			return "invalid header name (a token: letters, digits and "
			       "!#$%&'*+-.^_`|~)";
		if (h[i] < '0' || h[i] > '9')
			digits = false;
	}
	if (digits)
		return "the header name is a number: a binding's host takes no port";
	return NULL;
}

static const char *prefix_why(const char *p)
{
	size_t len = strlen(p);
	if (len > PREFIX_MAX)
		return "prefix longer than 256 bytes";
	if (strpbrk(p, "\r\n") != NULL)
		return "the prefix contains CR or LF";
	if (!ac_utf8_valid(p, len))
		return "the prefix is not valid UTF-8";
	return NULL;
}

static json_t *binding_error(ac_error_t **err, const char *spec, const char *why)
{
	char buf[104];
	ac_error_set(err, AC_ERR_INVALID, 0, "invalid secret binding '%s': %s", shown(spec, buf),
		     why);
	return NULL;
}

json_t *ac_secret_binding_parse(const char *spec, ac_error_t **err)
{
	if (spec == NULL)
		spec = "";
	const char *at = strchr(spec, '@');
	if (at == NULL)
		return binding_error(err, spec, "expected KEY@HOST[:HEADER[:PREFIX]]");

	char key[KEY_MAX + 2];
	size_t klen = (size_t)(at - spec);
	if (klen > KEY_MAX)
		return binding_error(err, spec, "the key is longer than 128 characters");
	memcpy(key, spec, klen);
	key[klen] = '\0';
	const char *why = key_why(key);
	if (why != NULL) {
		char msg[160];
		snprintf(msg, sizeof(msg), "invalid key: %s", why);
		return binding_error(err, spec, msg);
	}

	const char *host = at + 1, *end;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (close == NULL)
			return binding_error(err, spec, "'[' without ']' in the host");
		end = close + 1;
		if (*end != '\0' && *end != ':')
			return binding_error(err, spec, "expected ':' after ']'");
	} else {
		end = strchrnul(host, ':');
	}
	size_t hlen = (size_t)(end - host);
	if (hlen == 0)
		return binding_error(err, spec, "empty host");
	if (hlen >= AC_NET_HOST_MAX)
		return binding_error(err, spec, "invalid host: longer than 253 characters");
	char hbuf[AC_NET_HOST_MAX], norm[AC_NET_HOST_MAX];
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	if (strchr(hbuf, '*') != NULL)
		return binding_error(err, spec, "invalid host: a binding takes no wildcard");
	if ((why = ac_net_host_normalize(hbuf, norm)) != NULL) {
		char msg[160];
		snprintf(msg, sizeof(msg), "invalid host: %s", why);
		return binding_error(err, spec, msg);
	}

	char header[HEADER_MAX + 1];
	const char *prefix = DEFAULT_PREFIX;
	snprintf(header, sizeof(header), "%s", DEFAULT_HEADER);
	if (*end == ':') {
		const char *h = end + 1;
		const char *colon = strchrnul(h, ':');
		size_t len = (size_t)(colon - h);
		if ((why = header_why(h, len)) != NULL)
			return binding_error(err, spec, why);
		memcpy(header, h, len);
		header[len] = '\0';
		/* A custom header takes the raw value unless a prefix is given. */
		prefix = *colon == ':' ? colon + 1 : "";
		if ((why = prefix_why(prefix)) != NULL)
			return binding_error(err, spec, why);
	}
	json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "key", key, "host", norm, "header", header,
			      "prefix", prefix);
	if (b == NULL)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot parse secret binding");
	return b;
}

char *ac_secret_placeholder(void)
{
	unsigned char r[16];
	size_t done = 0;
	while (done < sizeof(r)) {
		ssize_t n = getrandom(r + done, sizeof(r) - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done < sizeof(r)) {
		/* getrandom(2) missing (old kernel, seccomp): /dev/urandom or nothing. */
		int fd = TEMP_FAILURE_RETRY(open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY));
		if (fd < 0)
			return NULL;
		ssize_t n = ac_read_all(fd, r + done, sizeof(r) - done);
		close(fd);
		if (n != (ssize_t)(sizeof(r) - done))
			return NULL;
	}
	static const char hex[] = "0123456789abcdef";
	char *out = malloc(sizeof(PLACEHOLDER) + 2 * sizeof(r));
	if (out == NULL)
		return NULL;
	memcpy(out, PLACEHOLDER, sizeof(PLACEHOLDER) - 1);
	char *p = out + sizeof(PLACEHOLDER) - 1;
	for (size_t i = 0; i < sizeof(r); i++) {
		*p++ = hex[r[i] >> 4];
		*p++ = hex[r[i] & 15];
	}
	*p = '\0';
	return out;
}
