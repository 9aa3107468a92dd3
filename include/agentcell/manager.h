/* The sandbox manager: the one API that the CLI, the HTTP API and MCP call. It owns the
 * state store and lifecycle rules and drives a backend (native by default) through
 * struct ac_backend_ops. */
#ifndef AGENTCELL_MANAGER_H
#define AGENTCELL_MANAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/agents.h"
#include "agentcell/error.h"
#include "agentcell/store.h"
#include "agentcell/types.h"

typedef struct ac_manager ac_manager_t;

/* Options of create and run, as given by a user; *_set says which were given
 * explicitly (a profile fills the others). */
typedef struct ac_sandbox_opts {
	/* "host" (default), a directory, or (backends with AC_CAP_IMAGE_STORE: native) an
	 * image reference, pulled into the image store when missing (src/image/image.h) */
	const char *image;
	/* A template (agentcell snapshot) to start from instead of an image; NULL: none. */
	const char *template;
	/* > 0: a terminal for the progress display of a pull the image needs (the CLI's
	 * stderr); 0: none. */
	int pull_progress_fd;
	const char *profile; /* permissive | moderate (default) | restrictive */
	uint64_t memory_mb;
	double cpus;
	uint64_t pids;
	bool mount_cwd, read_only;
	bool memory_set, cpus_set, pids_set, mount_cwd_set, read_only_set;
	/* Blocks and inodes of the sandbox's writable layer, in MB. disk_set with disk_mb 0 is
	 * "unlimited": only the operator's front ends (CLI, agentcell.toml) may ask for it. */
	uint64_t disk_mb;
	bool disk_set;
	const char *cwd;  /* the caller's working directory (for mount_cwd) */
	char **env;	  /* KEY=VALUE, NULL-terminated or NULL */
	const char *name; /* run --keep: optional name */
	/* Lifetime, policy and labels (src/core/lifecycle.c); 0 / NULL: not given. */
	uint64_t ttl_seconds;
	uint64_t auto_stop_after, auto_archive_after, auto_delete_after; /* seconds */
	char **labels; /* "key=value", NULL-terminated or NULL */
	/* Start-up work (see ac_manager_start) */
	const char *init_script; /* run with sh -c at every start; a failure fails the start */
	const char *agent;	 /* claude | codex | gemini | opencode | amp | pi | copilot */
	char **files;		 /* "HOST_PATH:SANDBOX_PATH", NULL-terminated or NULL */
	/* Command policy (agentcell.toml [security.commands]), enforced inside the sandbox */
	char **allow, **block; /* program names or absolute paths, NULL-terminated or NULL */
	bool allowlist_only;
	/* Network access beyond loopback. On the backends with AC_CAP_EGRESS every connection
	 * goes through agentcell's proxy, under the egress policy below (src/net/net.h). */
	bool network, network_set;
	char **allow_hosts, **block_hosts; /* host patterns, NULL-terminated or NULL */
	bool allowlist_only_hosts;	   /* [network] allowlist_only, --allowlist-only */
	char **secrets;			   /* "KEY@HOST[:HEADER[:PREFIX]]" bindings */
	char **publish;			   /* "[ADDR:]HOSTPORT:PORT" */
	/* Named volumes, "NAME:/path[:ro|:rw]" (at most AC_VOLUMES_MAX; backends with
	 * AC_CAP_VOLUMES), NULL-terminated or NULL. */
	char **volumes;
	/* native (default), docker, podman, auto; NULL: native */
	const char *backend;
	/* agentcell.toml as loaded (ac_config_load), set by ac_config_apply: the manager copies
	 * the table named after the sandbox's backend ([kubernetes], [nomad]) into the state
	 * under that name, with "config_file" (the file's absolute path) added, where the
	 * backend's ops read it (a later change of the file does not move a sandbox). */
	const json_t *backend_config;
	/* A code run (run --language; include/agentcell/languages.h): its language, and the
	 * image agentcell.toml's [languages] gives it (NULL: the table's). On a backend that
	 * takes container images, the language's image replaces a missing image and one that
	 * came from [sandbox] image (image_from_config, set by ac_config_apply). */
	const char *language;
	const char *language_image;
	bool image_from_config;
	/* The front end promises "created and started, or not there at all" (the API, MCP):
	 * the state carries a "creating" mark naming the calling process until a start
	 * succeeds; if that process dies first, ac_manager_undo_abandoned removes it. */
	bool creating_mark;
	/* A sandbox of serve's warm pool (include/agentcell/pool.h): the state gets "pool":
	 * true and "pool_owner" (this process), and the manager's list leaves it out. */
	bool pool;
} ac_sandbox_opts_t;

#define AC_INIT_SCRIPT_MAX (64 * 1024)
#define AC_FILES_MAX	   64
#define AC_VOLUMES_MAX	   32

/* A security profile (agentkernel's): the defaults it gives what a user leaves unset. */
typedef struct ac_profile {
	const char *name;
	uint64_t memory_mb; /* 0: no limit */
	double cpus;
	bool mount_cwd, read_only;
	bool network;		     /* through the egress proxy where the backend has one */
	const char *const *pass_env; /* the caller's variables passed in, NULL-terminated */
} ac_profile_t;
/* By name; NULL if unknown. The default is "moderate". */
const ac_profile_t *ac_profile_find(const char *name);
const ac_profile_t *ac_profiles(size_t *n);
/* "permissive, moderate or restrictive": for messages. */
const char *ac_profile_names(void);

int ac_manager_open(const char *home, ac_manager_t **out, ac_error_t **err);
void ac_manager_free(ac_manager_t *m);
/* For front ends that act for other users (serve: the HTTP API and MCP over HTTP): from now
 * on no request takes anything of the host's file system. A directory image must lie below
 * one of image_roots (NULL or empty: only "host" and container images), and no host
 * directory is mounted at /workspace (the permissive profile's mount_cwd is off; asking for
 * it is AC_ERR_PERMISSION). */
int ac_manager_restrict_host(ac_manager_t *m, char *const *image_roots, ac_error_t **err);
/* For a restricted manager: the operator (never a request) allows the front end's working
 * directory at /workspace for requests that ask for it (mount_cwd, the permissive profile). */
void ac_manager_allow_mount_cwd(ac_manager_t *m);
ac_store_t *ac_manager_store(ac_manager_t *m);

/* The undo of a create: removes NAME only while it is still the sandbox whose state has
 * this uuid (meanwhile another client may have removed the name and made it again).
 * Returns 1, touching nothing, when it is not. */
/* Removes the sandboxes whose "creating" mark names a process that is gone (its front end
 * died between create and start); appends {name, uuid, reason} to removed (may be NULL).
 * Returns how many were removed. */
int ac_manager_undo_abandoned(ac_manager_t *m, json_t *removed);
int ac_manager_remove_created(ac_manager_t *m, const char *name, const char *uuid,
			      ac_error_t **err);
/* Applies the profile and validates: the resulting state object (not saved). */
int ac_manager_build_state(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o,
			   json_t **out, ac_error_t **err);
/* Creates a stopped sandbox. *out (optional) receives its state. */
int ac_manager_create(ac_manager_t *m, const char *name, const ac_sandbox_opts_t *o, json_t **out,
		      ac_error_t **err);
/* Starts a sandbox; a running one is left as it is (returns 1). */
int ac_manager_start(ac_manager_t *m, const char *name, ac_error_t **err);
/* The calling thread's starts give up (AC_ERR_STATE) when fd (> 0, a client's connected
 * socket) reports its peer gone; <= 0: never. Returns the previous descriptor. */
int ac_manager_set_cancel_fd(int fd);
int ac_manager_cancel_fd(void);
/* Stops a sandbox: every process of it is gone on return; a stopped one is left (returns 1). */
int ac_manager_stop(ac_manager_t *m, const char *name, ac_error_t **err);
/* Stops (if needed) and deletes a sandbox with its files. */
int ac_manager_remove(ac_manager_t *m, const char *name, ac_error_t **err);
/* Every sandbox's state with "status" added, sorted by name; the warm pool's sandboxes
 * ("pool": true) are left out. */
int ac_manager_list(ac_manager_t *m, json_t **out, ac_error_t **err);
/* ac_manager_list with the pool's sandboxes (list --all). */
int ac_manager_list_all(ac_manager_t *m, json_t **out, ac_error_t **err);
/* One sandbox's state with "status" (and "pid" when running). */
int ac_manager_info(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err);
/* Runs cmd in a running sandbox, streaming through fds (stdin, stdout, stderr). */
int ac_manager_exec(ac_manager_t *m, const char *name, const ac_cmd_t *cmd, int fds[3],
		    ac_result_t *res, ac_error_t **err);
/* Runs cmd in a fresh sandbox. keep: the sandbox is created persistent and left running,
 * its name in *kept_name (to free). */
int ac_manager_run(ac_manager_t *m, const ac_sandbox_opts_t *o, const ac_cmd_t *cmd, int fds[3],
		   bool keep, char **kept_name, ac_result_t *res, ac_error_t **err);

/* A run without a command: the argv (NULL-terminated, to free with ac_strv_free) of the
 * image's Entrypoint followed by its Cmd, from the state's "image_config". AC_ERR_INVALID
 * "no command given and image 'x' has no Entrypoint or Cmd" when there is neither. */
int ac_manager_image_argv(const json_t *state, char ***argv, ac_error_t **err);

/* ---- Snapshots and templates (src/core/snapshot.c) ---- */

/* Template names: [a-z0-9][a-z0-9_.-]{0,62}. */
bool ac_template_name_valid(const char *name);
/* Saves the changes of stopped sandbox name as template tmpl (an image in the store: the
 * sandbox's image layers plus one new layer); description may be NULL. An existing
 * template of that name is AC_ERR_EXISTS unless force (replaced; sandboxes made from the
 * old one keep it). *record (optional): the template's image record. */
int ac_manager_snapshot(ac_manager_t *m, const char *name, const char *tmpl,
			const char *description, bool force, json_t **record, ac_error_t **err);
/* The templates' records, newest first. */
int ac_manager_template_list(ac_manager_t *m, json_t **out, ac_error_t **err);
/* Removes template tmpl; AC_ERR_STATE naming the sandbox while one was made from it.
 * *removed (optional): what went. */
int ac_manager_template_remove(ac_manager_t *m, const char *tmpl, json_t **removed,
			       ac_error_t **err);

/* A backend's doctor report (its probe op, see include/agentcell/backend.h). */
struct ac_backend;
json_t *ac_manager_probe(ac_manager_t *m, const struct ac_backend *b);

/* "running" or "stopped". */
const char *ac_manager_status(ac_manager_t *m, const json_t *state);

/* ---- Lifecycle, labels, audit and metrics (src/core/lifecycle.c, src/core/audit.c) ---- */

/* Longest duration accepted anywhere (100 years), in seconds. */
#define AC_DURATION_MAX	   (100ull * 365 * 86400)
#define AC_LABELS_MAX	   64
#define AC_LABEL_KEY_MAX   63
#define AC_LABEL_VALUE_MAX 255
#define AC_DESCRIPTION_MAX 1024

/* Strict duration: a positive whole number with an optional unit s, m, h or d ("90s", "30m",
 * "2h", "1d", "3600" = seconds), at most AC_DURATION_MAX. 0 or -1 (EINVAL / ERANGE). */
int ac_duration_parse(const char *s, uint64_t *secs);
/* The shortest exact form: 90 -> "90s", 1800 -> "30m", 7200 -> "2h", 86400 -> "1d". */
void ac_duration_format(uint64_t secs, char buf[32]);

/* Label keys: 1-63 of [A-Za-z0-9._/-]; values: 0-255 printable ASCII characters. */
bool ac_label_key_valid(const char *key);
bool ac_label_value_valid(const char *value);
/* Splits "key=value" at the first '=' and validates both halves. key receives a copy of the
 * key (keylen >= AC_LABEL_KEY_MAX + 1), *value points into kv. AC_ERR_INVALID on error. */
int ac_label_parse(const char *kv, char *key, size_t keylen, const char **value, ac_error_t **err);
/* Whether the state's labels contain every "key=value" of selectors (NULL: match). */
bool ac_labels_match(const json_t *state, char *const *selectors);

/* agentkernel's extend_ttl on a state object: expires_at = max(now, current expiry) + by;
 * ttl_seconds = new expiry - created_at in whole seconds (kept when not positive or
 * created_at is unreadable). AC_ERR_INVALID if the expiry would pass year 9999. */
int ac_ttl_extend_state(json_t *state, uint64_t by, int64_t now_ms, ac_error_t **err);
/* Whether the state has an expires_at that is before now. */
bool ac_ttl_expired(const json_t *state, int64_t now_ms);

/* agentkernel's lifecycle rules, pure: decisions for the given states (a JSON array of
 * state objects, last_activity_at already merged with activity marks) whose running flags
 * are running[i], at now_ms. *out: [{"name", "action": "delete"|"archive"|"stop",
 * "reason"}] sorted by name, then reason. */
int ac_lifecycle_decide(const json_t *states, const bool *running, int64_t now_ms, json_t **out,
			ac_error_t **err);
/* The same for one state: "delete", "archive", "stop" or NULL (no action); reason filled
 * when an action is returned. */
const char *ac_lifecycle_decide_one(const json_t *state, bool running, int64_t now_ms, char *reason,
				    size_t reasonlen);

/* Sets the expiry of a sandbox with ac_ttl_extend_state; *out (optional) gets its state. */
int ac_manager_extend(ac_manager_t *m, const char *name, uint64_t by, json_t **out,
		      ac_error_t **err);
/* Removes every expired sandbox, running or not. *removed: [{"name", "expires_at"}] of
 * the ones removed (set even on failure); -1 if any removal failed (the others go on). */
int ac_manager_gc(ac_manager_t *m, json_t **removed, ac_error_t **err);

/* A change of a lifecycle policy: per field, < 0 keeps it, 0 unsets it, > 0 sets seconds.
 * clear drops the whole policy first. */
typedef struct ac_policy_change {
	bool clear;
	int64_t auto_stop_after, auto_archive_after, auto_delete_after;
} ac_policy_change_t;
/* Applies c; *policy (optional) receives the resulting policy object (or JSON null). */
int ac_manager_set_policy(ac_manager_t *m, const char *name, const ac_policy_change_t *c,
			  json_t **policy, ac_error_t **err);
/* Applies the lifecycle rules (see ac_lifecycle_decide) to every sandbox: delete, archive
 * (stopping it first; archived_at, archived_reason) or stop. Each action is re-checked under
 * the sandbox's lock first. dry_run: changes nothing. *decisions receives the decisions
 * (taken or, with dry_run, that would be taken); -1 if any action failed. */
int ac_manager_reconcile(ac_manager_t *m, bool dry_run, json_t **decisions, ac_error_t **err);
/* Clears archived_at and archived_reason (and marks activity); AC_ERR_STATE if not archived. */
int ac_manager_recover(ac_manager_t *m, const char *name, ac_error_t **err);

/* Sets "key=value" labels and removes keys (absent keys are fine). *labels (optional)
 * receives the resulting labels object. */
int ac_manager_set_labels(ac_manager_t *m, const char *name, char *const *set, char *const *remove,
			  json_t **labels, ac_error_t **err);
/* Sets the description (NULL or "" clears it). At most AC_DESCRIPTION_MAX bytes of UTF-8
 * without control characters other than tab. */
int ac_manager_describe(ac_manager_t *m, const char *name, const char *text, ac_error_t **err);
/* ac_manager_list restricted to sandboxes whose labels match every selector. */
int ac_manager_list_labeled(ac_manager_t *m, char *const *selectors, json_t **out,
			    ac_error_t **err);

typedef struct ac_resize {
	uint64_t memory_mb;
	double cpus;
	uint64_t pids;
	bool memory_set, cpus_set, pids_set;
} ac_resize_t;
/* Changes a sandbox's limits: in place when it runs (*applied = true), else only in its
 * state. If the backend refuses (e.g. memory below current use), nothing changes. */
int ac_manager_resize(ac_manager_t *m, const char *name, const ac_resize_t *r, bool *applied,
		      ac_error_t **err);

/* Marks activity in a sandbox (exec, files, attach) without rewriting its state: the mtime
 * of run/<name>.activity, merged into last_activity_at whenever states are read. */
void ac_manager_touch_activity(ac_manager_t *m, const char *name);

/* Appends {"timestamp", "event", "sandbox", "details"} as one line to audit.jsonl.
 * details (may be NULL) is consumed. Best effort: failures are only returned. Callers never
 * pass environment values. */
int ac_audit_log(ac_manager_t *m, const char *event, const char *sandbox, json_t *details);
/* Audit records this process could not write (ENOSPC, EROFS, ...), the last errno in
 * *errnum (may be NULL). */
unsigned ac_audit_lost(int *errnum);
/* audit.errors, every process's lost records: {count, since, last, error}; NULL if none. */
json_t *ac_audit_errors(ac_manager_t *m);
/* What a kill -9 can leave in $AGENTCELL_HOME (temp files of state writes, lock files of
 * removed names, detached command records of no sandbox or never started) and uid slot
 * claims of this home's sandboxes that no create holds: *found = [{kind, path, why}];
 * with remove, each is deleted (what is in use is never listed). */
int ac_manager_sweep(ac_manager_t *m, bool remove, json_t **found, ac_error_t **err);
/* Audit records, oldest first, of one sandbox (or all: NULL), the last `limit` (0: all). */
int ac_audit_read(ac_manager_t *m, const char *sandbox, size_t limit, json_t **out,
		  ac_error_t **err);
/* The secret store (src/net/net.h: HOME/secrets, 0600; values never in state, audit or
 * logs). set and remove are audited by key. *out of list: [{key, bytes, updated_at}]. */
int ac_manager_secret_set(ac_manager_t *m, const char *key, const char *value, size_t len,
			  ac_error_t **err);
int ac_manager_secret_list(ac_manager_t *m, json_t **out, ac_error_t **err);
int ac_manager_secret_remove(ac_manager_t *m, const char *key, ac_error_t **err);
/* The connections of sandbox name through its proxy (the audit log's "net" events), oldest
 * first, the last `limit` (0: all). */
int ac_manager_net_log(ac_manager_t *m, const char *name, size_t limit, json_t **out,
		       ac_error_t **err);
/* Named volumes (src/core/volumes.c over src/image/volume.c; audited as volume_create and
 * volume_remove). create: labels "key=value", NULL-terminated or NULL; *out (optional) its
 * record. list and inspect add "used_by": the names of the sandboxes whose state mounts it.
 * remove refuses (AC_ERR_STATE naming them) a volume that any sandbox mounts. */
int ac_manager_volume_create(ac_manager_t *m, const char *name, char *const *labels, json_t **out,
			     ac_error_t **err);
int ac_manager_volume_list(ac_manager_t *m, json_t **out, ac_error_t **err);
int ac_manager_volume_inspect(ac_manager_t *m, const char *name, json_t **out, ac_error_t **err);
int ac_manager_volume_remove(ac_manager_t *m, const char *name, ac_error_t **err);
/* Prometheus text format: sandboxes by status, counters and histograms from the audit log.
 * *text is to free. */
int ac_manager_metrics(ac_manager_t *m, char **text, ac_error_t **err);

/* agentcell's image store ($AGENTCELL_HOME/images; the native backend's; src/image/image.h),
 * src/core/images.c. Records are image.h's. Pull, remove, prune, import, export, login and
 * logout are audited ("image_pull", ...; never a password). */
typedef struct ac_image_req {
	/* Registries ("host[:port]") spoken to over plain HTTP besides agentcell.toml's
	 * [images] insecure; NULL-terminated or NULL. */
	char *const *insecure;
	/* agentcell.toml as loaded (ac_config_load); NULL: looked up as ac_config_load does
	 * without an explicit path. */
	const json_t *config;
	int progress_fd; /* a terminal for pull's progress display; -1 (or 0): none */
	int cancel_fd;	 /* > 0: give up when readable or hung up */
} ac_image_req_t;
/* Pulls ref (req may be NULL: defaults) and returns its record. */
int ac_manager_image_pull(ac_manager_t *m, const char *ref, const ac_image_req_t *req,
			  json_t **record, ac_error_t **err);
/* Records newest first, templates excluded; all: also images without a tag. */
int ac_manager_image_list(ac_manager_t *m, bool all, json_t **out, ac_error_t **err);
/* The record of an image (a reference or an id or a 12+ hex id prefix). */
int ac_manager_image_inspect(ac_manager_t *m, const char *name, json_t **record, ac_error_t **err);
/* Removes a tag or (by id) an image; refused (AC_ERR_STATE naming the sandbox) while a
 * sandbox uses it unless force (which removes the tags only). *removed: what went. */
int ac_manager_image_remove(ac_manager_t *m, const char *name, bool force, json_t **removed,
			    ac_error_t **err);
/* Untagged images no sandbox uses, then unreferenced layers and blobs. */
int ac_manager_image_prune(ac_manager_t *m, json_t **removed, uint64_t *freed, ac_error_t **err);
/* `docker save`/`podman save` tar or OCI layout directory -> *records (an array). */
int ac_manager_image_import(ac_manager_t *m, const char *path, const char *ref, json_t **records,
			    ac_error_t **err);
/* A tar both `docker load` and OCI tools read; path "-": stdout. */
int ac_manager_image_export(ac_manager_t *m, const char *name, const char *path, ac_error_t **err);
/* Checks the credentials against the registry and keeps them in images/auth.json. */
int ac_manager_image_login(ac_manager_t *m, const char *registry, const char *user,
			   const char *password, const ac_image_req_t *req, ac_error_t **err);
int ac_manager_image_logout(ac_manager_t *m, const char *registry, ac_error_t **err);

#endif
