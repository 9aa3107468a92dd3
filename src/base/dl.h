/* Optional libraries loaded on first use (dlopen), not linked.
 *
 * Linking libcurl, libarchive or libmicrohttpd would make the dynamic loader map and bind
 * them (and their ~40 dependencies) at every start of the CLI: measured on the bench
 * machine, 2.5 ms for libmicrohttpd, 3.2 ms for libarchive and 6.9 ms for libcurl, when a
 * whole `agentcell exec` takes under 2 ms. Only `serve`, `mcp` and the Docker/Podman
 * backend need them, so they load them when they are used.
 *
 * A module declares its functions with an X-macro over the real prototypes from the
 * library's own header, so every call is type-checked:
 *
 *     #define CURL_FNS(X) X(curl_easy_init) X(curl_easy_setopt)
 *     AC_DL_TABLE(curl, CURL_FNS)
 *     ...
 *     if (curl_load(err) < 0) return -1;
 *     CURL *c = curl_fn.curl_easy_init();
 *
 * AC_DL_TABLE(lib, FNS) defines `static struct {...} lib_fn` (one typed pointer per
 * function) and `static int lib_load(const char *soname, ac_error_t **err)`, which loads the
 * library once per process (thread-safe) and fails with AC_ERR_UNSUPPORTED naming the
 * missing library or symbol and the Debian package that provides it. */
#ifndef AGENTCELL_BASE_DL_H
#define AGENTCELL_BASE_DL_H

#include <stddef.h>

#include "agentcell/error.h"

/* Resolves names[0..n) from soname into slots (all or nothing); loads at most once per
 * (once, soname): *once is a caller-owned flag (0 initially) guarded internally. package
 * names the Debian package in the error message. */
int ac_dl_load(int *once, const char *soname, const char *package, const char *const *names,
	       void **slots, size_t n, ac_error_t **err);

#define AC_DL_FIELD_(f) __typeof__(&f) f;
#define AC_DL_NAME_(f)	#f,
#define AC_DL_TABLE(lib, FNS)                                                                      \
	static struct {                                                                            \
		FNS(AC_DL_FIELD_)                                                                  \
	} lib##_fn;                                                                                \
	static int lib##_loaded;                                                                   \
	static int lib##_load(const char *soname, const char *package, ac_error_t **err)           \
	{                                                                                          \
		static const char *const names[] = {FNS(AC_DL_NAME_)};                             \
		return ac_dl_load(&lib##_loaded, soname, package, names, (void **)&lib##_fn,       \
				  sizeof(names) / sizeof(names[0]), err);                          \
	}

#endif
