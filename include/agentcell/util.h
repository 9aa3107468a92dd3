/* Small shared helpers: cleanup attributes, robust I/O, parsing. */
#ifndef AGENTCELL_UTIL_H
#define AGENTCELL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "agentcell/error.h"

static inline void ac_freep(void *p)
{
	free(*(void **)p);
}
static inline void ac_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void ac_error_freep(ac_error_t **e)
{
	ac_error_free(*e);
}
#define _cleanup_free_	__attribute__((cleanup(ac_freep)))
#define _cleanup_close_ __attribute__((cleanup(ac_closep)))
#define _cleanup_error_ __attribute__((cleanup(ac_error_freep)))

/* Hand ownership out of a cleanup variable. */
#define steal_ptr(p)                                                                               \
	({                                                                                         \
		__typeof__(p) _tmp = (p);                                                          \
		(p) = NULL;                                                                        \
		_tmp;                                                                              \
	})
#define steal_fd(fd)                                                                               \
	({                                                                                         \
		int _tmp = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tmp;                                                                              \
	})

#define AC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* write(2)/read(2) until done, retrying EINTR. Return 0 / bytes read, or -1 with errno. */
int ac_write_all(int fd, const void *buf, size_t len);
ssize_t ac_read_all(int fd, void *buf, size_t len);
/* Reads a whole file relative to dirfd (AT_FDCWD ok), refusing more than max bytes.
 * *out is NUL-terminated and must be freed. */
int ac_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
		    ac_error_t **err);
/* Writes data to dirfd/path: temp file, fsync, rename, fsync(dir). Readers see the old or
 * the new content, never a torn file. */
int ac_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
			    ac_error_t **err);
/* Writes a short string to an existing file (cgroup knobs, /proc files). */
int ac_write_string_at(int dirfd, const char *path, const char *s, ac_error_t **err);
/* mkdir -p relative to dirfd; existing directories are fine. */
int ac_mkdir_p_at(int dirfd, const char *path, mode_t mode, ac_error_t **err);
/* rm -rf of dirfd/path without following symlinks and without crossing into other mounts. */
int ac_rm_rf_at(int dirfd, const char *path, ac_error_t **err);

/* Strict decimal parse of a whole string into [min, max]. */
int ac_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Sandbox names: 1-63 of [A-Za-z0-9_-], first and last alphanumeric. */
bool ac_name_valid(const char *name);
/* Whether a directory entry is NAME followed by suffix (".lock", ".exec") with a valid
 * sandbox name; if so the name is copied into name. */
bool ac_name_from_entry(const char *entry, const char *suffix, char name[64]);

/* Current time as RFC 3339 UTC with millisecond precision: "2026-11-23T11:20:32.123Z". */
void ac_time_now_rfc3339(char buf[32]);
void ac_time_format_rfc3339(int64_t unix_ms, char buf[32]);
/* Parses RFC 3339 (Z or +hh:mm offsets, optional fraction) into unix milliseconds. */
int ac_time_parse_rfc3339(const char *s, int64_t *unix_ms);
int64_t ac_time_now_ms(void);

/* Base64 (RFC 4648, padded). encode returns a NUL-terminated string to free or NULL;
 * decode rejects anything malformed (-1) and NUL-terminates its output. */
/* Frees a NULL-terminated array of strings and the strings (NULL is fine). */
void ac_strv_free(char **v);

/* UTF-8 (RFC 3629: no overlongs, surrogates or code points above U+10FFFF). */
bool ac_utf8_valid(const char *s, size_t n);
/* The longest prefix of s[0..n) that does not end inside a sequence the next bytes could
 * still complete: streamed output is cut anywhere, the tail waits for the next chunk. */
size_t ac_utf8_complete_prefix(const char *s, size_t n);
/* s[0..n) with each invalid byte replaced by U+FFFD; NUL-terminated, to free (NULL: out
 * of memory); *out_len (optional) gets its length. */
char *ac_utf8_lossy(const char *s, size_t n, size_t *out_len);

char *ac_base64_encode(const void *data, size_t len);
int ac_base64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

/* Records argv's memory (call first thing in main) so that a forked process can replace
 * its /proc/PID/cmdline with title (cut to the original length). */
void ac_proctitle_init(int argc, char **argv);
void ac_proctitle_set(const char *title);
/* Zeroes the environment as /proc/PID/environ shows it (getenv keeps a private copy): a
 * sandbox's init is a fork of the caller, whose environment (API keys of `serve`, tokens of
 * a shell) must not be readable there by anyone, host root included. */
void ac_proctitle_note_environ(void);
void ac_proctitle_wipe_environ(void);

/* UUID version 7 (RFC 9562) in canonical 36-char lower-case form. */
void ac_uuid_v7(char out[37]);
bool ac_uuid_valid(const char *s);

#endif
