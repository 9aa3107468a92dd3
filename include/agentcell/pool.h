/* The warm pool of `agentcell serve --pool N` (src/core/pool.c): N native sandboxes kept
 * created and started, made with the server's default options (profile defaults, the pool
 * image or the host base), so that a POST /run that asks nothing else costs one exec.
 *
 * A pool sandbox is named "pool-<12 hex>" and its state carries "pool": true and
 * "pool_owner": {pid, starttime, boot_id} (the serving process). It is hidden from the
 * manager's list (ac_manager_list; ac_manager_list_all shows it) and from the API by name.
 * A sandbox taken for a request runs that one request's command and is then removed, never
 * reused; a background thread starts a replacement (bounded to N ready or starting,
 * failures back off from 1 s to 60 s) and another removes the used ones off the request's
 * path. Every function is safe to call from any thread. */
#ifndef AGENTCELL_POOL_H
#define AGENTCELL_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"

#define AC_POOL_MAX	    64
#define AC_POOL_NAME_PREFIX "pool-"
/* "pool-" + 12 hex + NUL */
#define AC_POOL_NAME_LEN 18

typedef struct ac_pool ac_pool_t;

typedef struct ac_pool_opts {
	unsigned size;	   /* 1..AC_POOL_MAX */
	const char *image; /* NULL or "host": the host base; else as create's --image */
} ac_pool_opts_t;

typedef struct ac_pool_stats {
	unsigned size, ready, in_use;
	uint64_t started, destroyed, hits, misses, failures;
} ac_pool_stats_t;

/* Checks the options (the image as a create would) and starts the pool's threads, which
 * fill it in the background. Call once signal masks are settled (the threads inherit
 * them). AC_ERR_INVALID for a bad size or image. */
int ac_pool_start(ac_manager_t *m, const ac_pool_opts_t *o, ac_pool_t **out, ac_error_t **err);
/* Stops filling, removes every sandbox of the pool (ready or handed back) and frees it. The
 * caller makes sure no request still holds a taken sandbox. NULL: nothing. */
void ac_pool_stop(ac_pool_t *p);

/* A ready sandbox for one command: its name in name (true, a hit), or false (the pool is
 * empty: a miss is counted). */
bool ac_pool_take(ac_pool_t *p, char name[AC_POOL_NAME_LEN]);
/* Hands back a taken sandbox: it is removed in the background (never reused). */
void ac_pool_release(ac_pool_t *p, const char *name);
/* Counts a request the pool could not serve (its options differ from the pool's). */
void ac_pool_miss(ac_pool_t *p);
/* Whether a POST /run body asks only for what a pool sandbox has: command, language, code,
 * env, timeout, workdir/cwd, full, fast; an image equal to the pool's, profile "moderate";
 * any other field only when null, false, "", [] or {}. */
bool ac_pool_fits(const ac_pool_t *p, const json_t *body);

void ac_pool_stats(ac_pool_t *p, ac_pool_stats_t *s);
/* {size, ready, in_use, started, destroyed, hits, misses, failures, image}. */
json_t *ac_pool_stats_json(ac_pool_t *p);
/* The Prometheus lines of the pool (agentcell_pool_*), appended to *text (realloc'd). */
void ac_pool_metrics_append(ac_pool_t *p, char **text);

/* Whether a state is a pool sandbox's ("pool": true). */
bool ac_pool_state_is(const json_t *st);
/* Whether sandbox name exists and is a pool sandbox (cheap for other names). */
bool ac_pool_member(ac_manager_t *m, const char *name);
/* Removes the pool sandboxes whose serving process is gone (a killed server's); returns
 * how many. Sandboxes of a live server are never touched. */
int ac_pool_sweep(ac_manager_t *m);

#endif
