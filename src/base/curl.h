/* libcurl, loaded with dlopen (src/base/dl.h) once per process into one table for every
 * user: the registry client (src/image), the remote engines' transports
 * (src/backends/remote), the Docker/Podman Engine API client and `run --pool`. */
#ifndef AGENTCELL_BASE_CURL_H
#define AGENTCELL_BASE_CURL_H

/* The typecheck macros would rename our calls through function pointers. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "agentcell/error.h"
#include "base/dl.h"

/* The libcurl functions agentcell calls. */
#define AC_CURL_FNS(X)                                                                             \
	X(curl_global_init)                                                                        \
	X(curl_easy_init)                                                                          \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_reset)                                                                         \
	X(curl_easy_strerror)                                                                      \
	X(curl_easy_escape)                                                                        \
	X(curl_easy_send)                                                                          \
	X(curl_easy_recv)                                                                          \
	X(curl_free)                                                                               \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)                                                                     \
	X(curl_multi_init)                                                                         \
	X(curl_multi_add_handle)                                                                   \
	X(curl_multi_remove_handle)                                                                \
	X(curl_multi_perform)                                                                      \
	X(curl_multi_poll)                                                                         \
	X(curl_multi_info_read)                                                                    \
	X(curl_multi_cleanup)

struct ac_curl_fns {
	AC_CURL_FNS(AC_DL_FIELD_)
};
/* Filled by ac_curl_load; call nothing in it before that succeeded. */
extern struct ac_curl_fns ac_curl;

/* Loads libcurl once per process and runs its global initialisation once (thread-safe);
 * fails with AC_ERR_UNSUPPORTED naming the Debian package when it is missing. */
int ac_curl_load(ac_error_t **err);

#endif
