/* Cleanup attributes and ownership hand-over (after bubblewrap and crun): the small
 * inline helpers every file uses. Each base/ module has its own header (io.h, parse.h,
 * time.h, utf8.h, ...). */
#ifndef AGENTCELL_BASE_UTIL_H
#define AGENTCELL_BASE_UTIL_H

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
/* clang 14's static analyzer (`make analyze`) does not run cleanup attributes, so it
 * reports what a _cleanup_free_ variable holds as leaked on the paths where the pointer is
 * not handed to an unknown function first. AC_ANALYZER_OWNED(p) names such a variable: under
 * the analyzer it hands p to an undefined function (an escape); it compiles to nothing. */
#ifdef __clang_analyzer__
void ac_analyzer_owned(void *p);
#define AC_ANALYZER_OWNED(p) ac_analyzer_owned(p)
#else
#define AC_ANALYZER_OWNED(p) ((void)0)
#endif

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

/* Frees a NULL-terminated array of strings and the strings (NULL is fine). */
void ac_strv_free(char **v);

#endif
