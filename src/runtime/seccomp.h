/* The sandbox's seccomp filters (seccomp.c). */
#ifndef AGENTCELL_RT_SECCOMP_H
#define AGENTCELL_RT_SECCOMP_H

#include <stdbool.h>

#include "agentcell/error.h"

/* Compiles (once per process) and loads the sandbox's seccomp filter. Async-signal-safe
 * after ac_seccomp_prepare() has run. */
int ac_seccomp_prepare(ac_error_t **err);
/* The same through a cache file under home/base; no_setid adds the rules that keep
 * setuid/setgid bits from being set (sandboxes with the caller's directory mounted). The
 * program prepared last is the one ac_seccomp_load() loads. */
int ac_seccomp_prepare_cached(const char *home, bool no_setid, ac_error_t **err);
/* Loads the program prepared last; 0, or -1 with errno. */
int ac_seccomp_load(void);
/* Stacks the commands' extra filter (setns refused; the sandbox's own filter lets the
 * supervisor's processes join the commands' user namespace). Async-signal-safe. */
int ac_seccomp_load_commands(void);

#endif
