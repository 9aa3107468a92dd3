/* Persistent sandbox state: one JSON file per sandbox under $AGENTCELL_HOME/sandboxes/.
 *
 * A state is a jansson object holding agentkernel's SandboxState fields (name, uuid, image,
 * vcpus, memory_mb, vsock_cid, created_at, backend, ttl_seconds, expires_at, ports, labels,
 * description, last_activity_at, archived_at, archived_reason, lifecycle_policy, agent,
 * init_script, ...) plus agentcell's own fields (pids_limit, read_only, mount_cwd, env,
 * profile, uid_base). Unknown fields read from disk are kept on save.
 *
 * Every write is atomic (temp file + fsync + rename + fsync of the directory), so a crash
 * at any instant leaves the old or the new file. Creation and removal run under the store
 * lock, so concurrent processes never both create one name. */
#ifndef AGENTCELL_STORE_H
#define AGENTCELL_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "agentcell/error.h"

typedef struct ac_store ac_store_t;

/* Opens (creating if needed, mode 0700) the home directory layout:
 * home/{sandboxes,run,data,locks}. home NULL means $AGENTCELL_HOME, else
 * $HOME/.local/share/agentcell. */
int ac_store_open(const char *home, ac_store_t **out, ac_error_t **err);
void ac_store_free(ac_store_t *s);
const char *ac_store_home(const ac_store_t *s);
int ac_store_home_fd(const ac_store_t *s); /* O_PATH|O_DIRECTORY fd of home */

/* Exclusive flock on home/.lock (create/remove/slot allocation). Returns an fd to close. */
int ac_store_lock_global(ac_store_t *s, ac_error_t **err);
/* Exclusive flock on home/locks/<name>.lock, robust against the file being unlinked
 * by a concurrent remove (re-checks the inode after locking). Returns an fd to close. */
int ac_store_lock_sandbox(ac_store_t *s, const char *name, ac_error_t **err);
/* A lock file left for a name with no state (a remove killed before its unlink): returns 1
 * if it is one (and, with remove, it was unlinked under the lock), 0 if not or held. */
int ac_store_sweep_lock(ac_store_t *s, const char *name, bool remove);
/* Unlinks the sandbox's lock file; call while holding that lock. */
void ac_store_unlink_sandbox_lock(ac_store_t *s, const char *name);

/* Creates sandboxes/<name>.json from state (which must contain "name"). Fills uuid (v7)
 * and created_at when absent. AC_ERR_EXISTS if the name is taken. Caller holds no lock;
 * this takes the global lock itself. */
int ac_store_create(ac_store_t *s, json_t *state, ac_error_t **err);
/* Loads a state; AC_ERR_NOT_FOUND if absent, AC_ERR_INTERNAL naming the file if corrupt.
 * Back-fills a missing/invalid uuid (and saves it), and defaults missing optional fields. */
int ac_store_load(ac_store_t *s, const char *name, json_t **out, ac_error_t **err);
/* Atomically replaces an existing state file. */
int ac_store_save(ac_store_t *s, json_t *state, ac_error_t **err);
/* Deletes the state file; AC_ERR_NOT_FOUND if absent. */
int ac_store_remove(ac_store_t *s, const char *name, ac_error_t **err);
/* Loads every state, sorted by name, into a new JSON array. Unreadable files are skipped
 * and reported through *warnings as strings "skipping <file>: <reason>". warnings may be
 * NULL; otherwise *warnings must be NULL (a new array is stored) or an array (appended to). */
int ac_store_list(ac_store_t *s, json_t **out, json_t **warnings, ac_error_t **err);
/* Whether a sandbox state file exists. */
bool ac_store_exists(ac_store_t *s, const char *name);

/* Typed accessors with defaults for absent or mistyped fields. */
const char *ac_state_str(const json_t *st, const char *key, const char *dflt);
long long ac_state_int(const json_t *st, const char *key, long long dflt);
double ac_state_real(const json_t *st, const char *key, double dflt);
bool ac_state_bool(const json_t *st, const char *key, bool dflt);

#endif
