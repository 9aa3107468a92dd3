/* A walk over a directory tree by directory descriptors: every step is an *at() call
 * relative to an open directory, nothing is resolved by path from the walk's root, symlinks
 * are reported and never followed, and the depth is capped. Recursive removal, the copy of
 * host directories into a root file system and tar creation all use it. */
#ifndef AGENTCELL_BASE_WALK_H
#define AGENTCELL_BASE_WALK_H

#include <stdbool.h>
#include <sys/stat.h>

#include "agentcell/error.h"

/* What a callback sees of one entry. */
typedef struct ac_walk_entry {
	int dirfd;	       /* the directory holding the entry */
	const char *name;      /* its name there */
	const char *path;      /* its path below the root: "" for the root, "a", "a/b", ... */
	const struct stat *st; /* fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) */
	int depth;	       /* 0 for the root, 1 for its entries, ... */
	int fd;		       /* a directory: open O_RDONLY|O_DIRECTORY; anything else: -1 */
} ac_walk_entry_t;

/* Returned by a pre callback for a directory: do not enter it (and no post call). */
#define AC_WALK_SKIP 1

/* A callback returns 0 to go on, AC_WALK_SKIP (pre, directories), or < 0 with *err set to
 * stop the walk, which then returns that error. */
typedef int (*ac_walk_fn)(const ac_walk_entry_t *e, void *arg, ac_error_t **err);

typedef struct ac_walk {
	ac_walk_fn pre;	 /* every entry, a directory before its contents (may be NULL) */
	ac_walk_fn post; /* directories after their contents (may be NULL) */
	void *arg;
	/* Directories deeper than this (the root is 0) fail the walk with AC_ERR_INVALID. */
	int max_depth;
	/* Entries that vanish, cannot be stat'ed or (directories) opened are skipped instead
	 * of failing the walk. An entry that vanishes is always skipped. */
	bool lenient;
} ac_walk_t;

/* Walks dirfd/name (name: one component, or "" for dirfd itself) in pre- and post-order.
 * The entries of a directory are read in full and visited in strcmp order before any is
 * entered, so callbacks may remove or add entries. A directory whose identity changes
 * between the stat and the open fails the walk. Returns 0, or -1 with *err set. */
int ac_walk_at(int dirfd, const char *name, const ac_walk_t *w, ac_error_t **err);

#endif
