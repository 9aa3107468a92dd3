/* The warm pool of `agentcell serve --pool N` (include/agentcell/pool.h): a filler thread
 * keeps N sandboxes created and started, a reaper thread removes the ones requests used.
 * Requests only move names between lists under the pool's mutex: a take or a release
 * never waits for a sandbox to start or go. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agentcell/pool.h"
#include "base/parse.h"
#include "base/procid.h"
#include "base/util.h"
#include "core/internal.h"

#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 60

typedef struct member {
	char name[AC_POOL_NAME_LEN];
	char uuid[37];
} member_t;

/* A FIFO of members, at most cap. */
typedef struct list {
	member_t *v;
	size_t n, cap;
} list_t;

struct ac_pool {
	ac_manager_t *m;
	char *image; /* NULL: host */
	unsigned size;
	pthread_mutex_t mu;
	pthread_cond_t fill_cv, reap_cv;
	list_t ready;	   /* started, waiting for a request */
	list_t doomed;	   /* used (or left at stop): to remove */
	list_t taken;	   /* handed to requests: their uuids, for the removal */
	unsigned starting; /* being made by the filler */
	bool stopping, reaper_gone;
	time_t backoff_until;
	unsigned backoff_s;
	uint64_t started, destroyed, hits, misses, failures;
	pthread_t filler, reaper;
	bool filler_up, reaper_up;
};

static bool list_push(list_t *l, const member_t *x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		member_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *x;
	return true;
}

static bool list_shift(list_t *l, member_t *out)
{
	if (!l->n)
		return false;
	*out = l->v[0];
	memmove(l->v, l->v + 1, (l->n - 1) * sizeof(*l->v));
	l->n--;
	return true;
}

static bool list_take_name(list_t *l, const char *name, member_t *out)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name)) {
			*out = l->v[i];
			memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof(*l->v));
			l->n--;
			return true;
		}
	return false;
}

/* ------------------------------------------------------------------ state marks */

bool ac_pool_state_is(const json_t *st)
{
	return json_is_true(json_object_get(st, "pool"));
}

bool ac_pool_member(ac_manager_t *m, const char *name)
{
	if (!name || strncmp(name, AC_POOL_NAME_PREFIX, strlen(AC_POOL_NAME_PREFIX)) != 0 ||
	    !ac_name_valid(name))
		return false;
	json_t *st = NULL;
	if (ac_store_load(ac_manager_store(m), name, &st, NULL) < 0)
		return false;
	bool is = ac_pool_state_is(st);
	json_decref(st);
	return is;
}

/* Whether the server named by the state's pool_owner is gone (pid, start time and boot
 * all checked: a reused pid does not keep a dead server's pool alive). */
static bool owner_gone(const json_t *st)
{
	json_t *o = json_object_get(st, "pool_owner");
	if (!json_is_object(o))
		return true;
	char boot[37] = "";
	ac_boot_id(boot);
	json_int_t pid = json_integer_value(json_object_get(o, "pid"));
	json_int_t start = json_integer_value(json_object_get(o, "starttime"));
	return pid <= 0 || strcmp(ac_state_str(o, "boot_id", ""), boot) != 0 ||
	       (json_int_t)ac_proc_starttime((pid_t)pid) != start;
}

static bool orphan(ac_manager_t *m, json_t *st, bool running, void *uuid)
{
	(void)m;
	(void)running;
	return ac_pool_state_is(st) && !strcmp(ac_state_str(st, "uuid", ""), uuid) &&
	       owner_gone(st);
}

int ac_pool_sweep(ac_manager_t *m)
{
	json_t *all = NULL;
	if (ac_store_list(ac_manager_store(m), &all, NULL, NULL) < 0)
		return 0;
	int n = 0;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		if (!ac_pool_state_is(st) || !owner_gone(st))
			continue;
		const char *uuid = ac_state_str(st, "uuid", "");
		/* Checked again under the sandbox's lock (orphan). */
		if (*uuid &&
		    ac_manager_remove_if(m, ac_state_str(st, "name", ""), orphan, (void *)uuid,
					 json_pack("{ss}", "by", "pool sweep"), NULL) == 0)
			n++;
	}
	json_decref(all);
	return n;
}

/* ------------------------------------------------------------------ the threads */

static void new_name(char name[AC_POOL_NAME_LEN])
{
	unsigned char r[6] = {0};
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* Never expected; the clock still gives a name create checks for collisions. */
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		uint64_t x = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^ (uint64_t)getpid();
		memcpy(r, &x, sizeof(r));
	}
	snprintf(name, AC_POOL_NAME_LEN, AC_POOL_NAME_PREFIX "%02x%02x%02x%02x%02x%02x", r[0], r[1],
		 r[2], r[3], r[4], r[5]);
}

/* One new started sandbox into *out; -1 if create or start failed (nothing is left). */
static int make_one(ac_pool_t *p, member_t *out)
{
	ac_sandbox_opts_t o = {.image = p->image, .pool = true};
	json_t *st = NULL;
	new_name(out->name);
	if (ac_manager_create(p->m, out->name, &o, &st, NULL) < 0)
		return -1;
	snprintf(out->uuid, sizeof(out->uuid), "%s", ac_state_str(st, "uuid", ""));
	json_decref(st);
	if (ac_manager_start(p->m, out->name, NULL) < 0) {
		ac_manager_remove_created(p->m, out->name, out->uuid, NULL);
		return -1;
	}
	return 0;
}

static void *filler_main(void *arg)
{
	ac_pool_t *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stopping &&
		       (p->ready.n + p->starting >= p->size || time(NULL) < p->backoff_until)) {
			if (p->ready.n + p->starting >= p->size) {
				pthread_cond_wait(&p->fill_cv, &p->mu);
			} else {
				struct timespec t = {.tv_sec = p->backoff_until};
				pthread_cond_timedwait(&p->fill_cv, &p->mu, &t);
			}
		}
		if (p->stopping)
			break;
		p->starting++;
		pthread_mutex_unlock(&p->mu);
		member_t x;
		memset(&x, 0, sizeof(x));
		int rc = make_one(p, &x);
		pthread_mutex_lock(&p->mu);
		p->starting--;
		if (rc < 0) {
			p->failures++;
			p->backoff_s = p->backoff_s ? p->backoff_s * 2 : BACKOFF_MIN_S;
			if (p->backoff_s > BACKOFF_MAX_S)
				p->backoff_s = BACKOFF_MAX_S;
			p->backoff_until = time(NULL) + p->backoff_s;
			continue;
		}
		p->started++;
		p->backoff_s = 0;
		p->backoff_until = 0;
		/* Stopping meanwhile, or no memory for the list: it goes at once. */
		if (p->stopping || !list_push(&p->ready, &x)) {
			if (!list_push(&p->doomed, &x)) {
				pthread_mutex_unlock(&p->mu);
				ac_manager_remove_created(p->m, x.name, x.uuid, NULL);
				pthread_mutex_lock(&p->mu);
				p->destroyed++;
				continue;
			}
			pthread_cond_signal(&p->reap_cv);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Removes member x and counts it (destroyed or failures); called with p->mu held, which it
 * releases during the removal. */
static void destroy_unlocked(ac_pool_t *p, const member_t *x)
{
	pthread_mutex_unlock(&p->mu);
	int rc = ac_manager_remove_created(p->m, x->name, x->uuid, NULL);
	pthread_mutex_lock(&p->mu);
	if (rc < 0)
		p->failures++;
	else
		p->destroyed++;
}

static void *reaper_main(void *arg)
{
	ac_pool_t *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		member_t x;
		while (!p->doomed.n && !p->stopping)
			pthread_cond_wait(&p->reap_cv, &p->mu);
		if (!list_shift(&p->doomed, &x)) {
			/* Stopping, and nothing is left to remove: the filler is gone by now
			 * (joined first), releases after this remove inline. */
			if (!p->filler_up)
				break;
			pthread_cond_wait(&p->reap_cv, &p->mu);
			continue;
		}
		destroy_unlocked(p, &x);
	}
	p->reaper_gone = true;
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ------------------------------------------------------------------ the pool */

int ac_pool_start(ac_manager_t *m, const ac_pool_opts_t *o, ac_pool_t **out, ac_error_t **err)
{
	if (o->size < 1 || o->size > AC_POOL_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "the pool size must be 0 to %d, not %u",
				    AC_POOL_MAX, o->size);
	bool host = !o->image || !strcmp(o->image, "host");
	/* A bad image fails here, not as endless failed starts in the background. */
	ac_sandbox_opts_t so = {.image = host ? NULL : o->image, .pool = true};
	json_t *st = NULL;
	if (ac_manager_build_state(m, "pool-check", &so, &st, err) < 0) {
		ac_error_prefix(err, "pool image '%s'", host ? "host" : o->image);
		return -1;
	}
	json_decref(st);
	ac_pool_t *p = calloc(1, sizeof(*p));
	if (!p || (!host && !(p->image = strdup(o->image)))) {
		free(p);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	p->m = m;
	p->size = o->size;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&p->fill_cv, &ca); /* CLOCK_REALTIME: backoff_until is a time_t */
	pthread_cond_init(&p->reap_cv, NULL);
	pthread_condattr_destroy(&ca);
	int e = pthread_create(&p->reaper, NULL, reaper_main, p);
	if (e == 0) {
		p->reaper_up = true;
		p->filler_up = true; /* before the thread: the reaper reads it */
		e = pthread_create(&p->filler, NULL, filler_main, p);
		if (e != 0)
			p->filler_up = false;
	}
	if (e != 0) {
		ac_pool_stop(p);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot start the pool's threads");
	}
	*out = p;
	return 0;
}

void ac_pool_stop(ac_pool_t *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->fill_cv);
	pthread_cond_broadcast(&p->reap_cv);
	pthread_mutex_unlock(&p->mu);
	/* The filler finishes a start in progress (its sandbox goes to doomed). */
	if (p->filler_up)
		pthread_join(p->filler, NULL);
	pthread_mutex_lock(&p->mu);
	p->filler_up = false;
	member_t x;
	while (list_shift(&p->ready, &x))
		if (!list_push(&p->doomed, &x)) {
			pthread_mutex_unlock(&p->mu);
			ac_manager_remove_created(p->m, x.name, x.uuid, NULL);
			pthread_mutex_lock(&p->mu);
		}
	pthread_cond_broadcast(&p->reap_cv);
	pthread_mutex_unlock(&p->mu);
	if (p->reaper_up)
		pthread_join(p->reaper, NULL);
	/* Without a reaper (it could not start), or what came after it ended. */
	while (list_shift(&p->doomed, &x))
		ac_manager_remove_created(p->m, x.name, x.uuid, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->fill_cv);
	pthread_cond_destroy(&p->reap_cv);
	free(p->ready.v);
	free(p->doomed.v);
	free(p->taken.v);
	free(p->image);
	free(p);
}

bool ac_pool_take(ac_pool_t *p, char name[AC_POOL_NAME_LEN])
{
	pthread_mutex_lock(&p->mu);
	member_t x;
	bool ok = !p->stopping && list_shift(&p->ready, &x);
	if (ok && !list_push(&p->taken, &x)) {
		/* Cannot track it: back it goes (still ready), and this is a miss. */
		list_push(&p->ready, &x);
		ok = false;
	}
	if (ok) {
		p->hits++;
		snprintf(name, AC_POOL_NAME_LEN, "%s", x.name);
		pthread_cond_signal(&p->fill_cv);
	} else {
		p->misses++;
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void ac_pool_release(ac_pool_t *p, const char *name)
{
	pthread_mutex_lock(&p->mu);
	member_t x;
	if (!list_take_name(&p->taken, name, &x)) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	if (!p->reaper_gone && list_push(&p->doomed, &x)) {
		pthread_cond_signal(&p->reap_cv);
		pthread_mutex_unlock(&p->mu);
		return;
	}
	destroy_unlocked(p, &x);
	pthread_mutex_unlock(&p->mu);
}

void ac_pool_miss(ac_pool_t *p)
{
	pthread_mutex_lock(&p->mu);
	p->misses++;
	pthread_mutex_unlock(&p->mu);
}

static bool empty_value(const json_t *v)
{
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && !json_string_length(v)) ||
	       (json_is_array(v) && !json_array_size(v)) ||
	       (json_is_object(v) && !json_object_size(v));
}

bool ac_pool_fits(const ac_pool_t *p, const json_t *body)
{
	static const char *const per_command[] = {"command", "language", "code", "env", "timeout",
						  "workdir", "cwd",	 "full", "fast"};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)body, k, v)
	{
		bool ok = empty_value(v);
		for (size_t i = 0; !ok && i < AC_ARRAY_SIZE(per_command); i++)
			ok = !strcmp(k, per_command[i]);
		const char *s = json_string_value(v);
		if (!ok && s && !strcmp(k, "image"))
			ok = !strcmp(s, p->image ? p->image : "host");
		if (!ok && s && !strcmp(k, "profile"))
			ok = !strcmp(s, "moderate");
		if (!ok && s && !strcmp(k, "backend"))
			ok = !strcmp(s, "native");
		if (!ok)
			return false;
	}
	return true;
}

void ac_pool_stats(ac_pool_t *p, ac_pool_stats_t *s)
{
	pthread_mutex_lock(&p->mu);
	*s = (ac_pool_stats_t){.size = p->size,
			       .ready = (unsigned)p->ready.n,
			       .in_use = (unsigned)p->taken.n,
			       .started = p->started,
			       .destroyed = p->destroyed,
			       .hits = p->hits,
			       .misses = p->misses,
			       .failures = p->failures};
	pthread_mutex_unlock(&p->mu);
}

json_t *ac_pool_stats_json(ac_pool_t *p)
{
	ac_pool_stats_t s;
	ac_pool_stats(p, &s);
	return json_pack("{si si si sI sI sI sI sI ss}", "size", (int)s.size, "ready", (int)s.ready,
			 "in_use", (int)s.in_use, "started", (json_int_t)s.started, "destroyed",
			 (json_int_t)s.destroyed, "hits", (json_int_t)s.hits, "misses",
			 (json_int_t)s.misses, "failures", (json_int_t)s.failures, "image",
			 p->image ? p->image : "host");
}

void ac_pool_metrics_append(ac_pool_t *p, char **text)
{
	ac_pool_stats_t s;
	ac_pool_stats(p, &s);
	char *add = NULL;
	int n = asprintf(
	    &add,
	    "# HELP agentcell_pool_size Sandboxes the warm pool keeps ready (serve --pool).\n"
	    "# TYPE agentcell_pool_size gauge\n"
	    "agentcell_pool_size %u\n"
	    "# HELP agentcell_pool_ready Started pool sandboxes waiting for a request.\n"
	    "# TYPE agentcell_pool_ready gauge\n"
	    "agentcell_pool_ready %u\n"
	    "# HELP agentcell_pool_in_use Pool sandboxes running a request's command.\n"
	    "# TYPE agentcell_pool_in_use gauge\n"
	    "agentcell_pool_in_use %u\n"
	    "# HELP agentcell_pool_started_total Pool sandboxes started.\n"
	    "# TYPE agentcell_pool_started_total counter\n"
	    "agentcell_pool_started_total %llu\n"
	    "# HELP agentcell_pool_destroyed_total Pool sandboxes removed.\n"
	    "# TYPE agentcell_pool_destroyed_total counter\n"
	    "agentcell_pool_destroyed_total %llu\n"
	    "# HELP agentcell_pool_hits_total Runs served by a ready pool sandbox.\n"
	    "# TYPE agentcell_pool_hits_total counter\n"
	    "agentcell_pool_hits_total %llu\n"
	    "# HELP agentcell_pool_misses_total Runs that made their own sandbox (pool empty or "
	    "other options).\n"
	    "# TYPE agentcell_pool_misses_total counter\n"
	    "agentcell_pool_misses_total %llu\n"
	    "# HELP agentcell_pool_failures_total Pool sandboxes that failed to start or to go.\n"
	    "# TYPE agentcell_pool_failures_total counter\n"
	    "agentcell_pool_failures_total %llu\n",
	    s.size, s.ready, s.in_use, (unsigned long long)s.started,
	    (unsigned long long)s.destroyed, (unsigned long long)s.hits,
	    (unsigned long long)s.misses, (unsigned long long)s.failures);
	if (n < 0)
		return;
	size_t old = *text ? strlen(*text) : 0;
	char *t = realloc(*text, old + (size_t)n + 1);
	if (t) {
		memcpy(t + old, add, (size_t)n + 1);
		*text = t;
	}
	free(add);
}
