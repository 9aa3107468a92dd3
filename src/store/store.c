/* Persistent sandbox state: one JSON file per sandbox, see include/agentcell/store.h. */
#include "agentcell/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/parse.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"

#define STATE_MAX_BYTES (4u * 1024 * 1024)
#define SUFFIX		".json"
#define LOCK_RETRIES	1000

struct ac_store {
	char *home;
	int home_fd;	  /* O_PATH */
	int sandboxes_fd; /* O_RDONLY directory, so it can be fsynced and listed */
	int locks_fd;	  /* O_PATH */
};

#ifndef _cleanup_json_
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))
#endif

static void closedirp(DIR **d)
{
	if (*d != NULL)
		closedir(*d);
}

static int resolve_home(const char *home, char **out, ac_error_t **err)
{
	if (home == NULL || *home == '\0')
		home = getenv("AGENTCELL_HOME");
	char *path = NULL;
	if (home != NULL && *home != '\0') {
		path = strdup(home);
	} else {
		const char *h = getenv("HOME");
		if (h == NULL || *h == '\0')
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "cannot locate the agentcell home: set AGENTCELL_HOME "
					    "or HOME");
		if (asprintf(&path, "%s/.local/share/agentcell", h) < 0)
			path = NULL;
	}
	if (path == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot open the store");

	/* Other components build absolute paths from the home (mounts, sockets), and the
	 * process may chdir later: make a relative home absolute now. */
	if (path[0] != '/') {
		_cleanup_free_ char *rel = path;
		AC_ANALYZER_OWNED(rel);
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (cwd == NULL)
			return ac_error_set(err, AC_ERR_INTERNAL, errno,
					    "cannot resolve relative home '%s'", rel);
		if (asprintf(&path, "%s/%s", cwd, rel) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot open the store");
	}
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	*out = path;
	return 0;
}

/* mkdir + open; the directories are ours, so a symlink in their place is refused. */
static int open_subdir(int home_fd, const char *home, const char *name, int flags, ac_error_t **err)
{
	/* Open first: the directories exist on every call but the first (exec is a hot path). */
	int fd =
	    TEMP_FAILURE_RETRY(openat(home_fd, name, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd >= 0 || errno != ENOENT)
		goto done;
	if (mkdirat(home_fd, name, 0700) < 0 && errno != EEXIST)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create %s/%s", home, name);
	fd =
	    TEMP_FAILURE_RETRY(openat(home_fd, name, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
done:
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s/%s", home, name);
	return fd;
}

int ac_store_open(const char *home, ac_store_t **out, ac_error_t **err)
{
	ac_store_t *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot open the store");
	s->home_fd = s->sandboxes_fd = s->locks_fd = -1;

	if (resolve_home(home, &s->home, err) < 0)
		goto fail;
	s->home_fd = TEMP_FAILURE_RETRY(open(s->home, O_PATH | O_DIRECTORY | O_CLOEXEC));
	if (s->home_fd < 0 && errno == ENOENT) {
		if (ac_mkdir_p_at(AT_FDCWD, s->home, 0700, err) < 0)
			goto fail;
		s->home_fd = TEMP_FAILURE_RETRY(open(s->home, O_PATH | O_DIRECTORY | O_CLOEXEC));
	}
	if (s->home_fd < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", s->home);
		goto fail;
	}
	s->sandboxes_fd = open_subdir(s->home_fd, s->home, "sandboxes", O_RDONLY, err);
	if (s->sandboxes_fd < 0)
		goto fail;
	s->locks_fd = open_subdir(s->home_fd, s->home, "locks", O_PATH, err);
	if (s->locks_fd < 0)
		goto fail;
	static const char *const others[] = {"run", "data"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(others); i++) {
		int fd = open_subdir(s->home_fd, s->home, others[i], O_PATH, err);
		if (fd < 0)
			goto fail;
		close(fd);
	}
	*out = s;
	return 0;
fail:
	ac_store_free(s);
	return -1;
}

void ac_store_free(ac_store_t *s)
{
	if (s == NULL)
		return;
	if (s->home_fd >= 0)
		close(s->home_fd);
	if (s->sandboxes_fd >= 0)
		close(s->sandboxes_fd);
	if (s->locks_fd >= 0)
		close(s->locks_fd);
	free(s->home);
	free(s);
}

const char *ac_store_home(const ac_store_t *s)
{
	return s->home;
}

int ac_store_home_fd(const ac_store_t *s)
{
	return s->home_fd;
}

static int flock_retry(int fd, int op)
{
	int r;
	do
		r = flock(fd, op);
	while (r < 0 && errno == EINTR);
	return r;
}

int ac_store_lock_global(ac_store_t *s, ac_error_t **err)
{
	_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
	    openat(s->home_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s/.lock", s->home);
	if (flock_retry(fd, LOCK_EX) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot lock %s/.lock", s->home);
	return steal_fd(fd);
}

static int check_name(const char *name, ac_error_t **err)
{
	if (ac_name_valid(name))
		return 0;
	return ac_error_set(err, AC_ERR_INVALID, 0,
			    "invalid sandbox name '%s': use 1-63 letters, digits, '-' or '_', "
			    "starting and ending with a letter or digit",
			    name != NULL ? name : "");
}

/* Locks home/locks/<name>.lock. A remover unlinks the file while holding the lock, so after
 * locking we must check that the inode we hold is still the one at that path; otherwise
 * two processes could each "hold" the lock on different inodes. With nonblock, returns -2
 * (without setting err) when someone else holds it. */
static int lock_sandbox(ac_store_t *s, const char *name, bool nonblock, ac_error_t **err)
{
	if (check_name(name, err) < 0)
		return -1;
	char path[64 + sizeof(".lock")];
	snprintf(path, sizeof(path), "%s.lock", name);
	for (int attempt = 0; attempt < LOCK_RETRIES; attempt++) {
		_cleanup_close_ int fd = TEMP_FAILURE_RETRY(
		    openat(s->locks_fd, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
		if (fd < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s/locks/%s",
					    s->home, path);
		if (flock_retry(fd, LOCK_EX | (nonblock ? LOCK_NB : 0)) < 0) {
			if (nonblock && errno == EWOULDBLOCK)
				return -2;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot lock %s/locks/%s",
					    s->home, path);
		}
		struct stat held, cur;
		if (fstat(fd, &held) < 0)
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat %s/locks/%s",
					    s->home, path);
		if (fstatat(s->locks_fd, path, &cur, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot stat %s/locks/%s",
					    s->home, path);
		}
		if (held.st_dev == cur.st_dev && held.st_ino == cur.st_ino)
			return steal_fd(fd);
	}
	return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot lock %s/locks/%s: it keeps changing",
			    s->home, path);
}

int ac_store_lock_sandbox(ac_store_t *s, const char *name, ac_error_t **err)
{
	return lock_sandbox(s, name, false, err);
}

int ac_store_sweep_lock(ac_store_t *s, const char *name, bool remove)
{
	if (!ac_name_valid(name) || ac_store_exists(s, name))
		return 0;
	if (!remove)
		return 1;
	/* Held (a lifecycle operation is under way): not a leftover now. Ours: the name
	 * may have been created since the check, so check again while holding it; the
	 * unlink under the lock is what remove does, and lockers re-check the inode. */
	_cleanup_close_ int lock = lock_sandbox(s, name, true, NULL);
	if (lock < 0 || ac_store_exists(s, name))
		return 0;
	char path[64 + sizeof(".lock")];
	snprintf(path, sizeof(path), "%s.lock", name);
	return unlinkat(s->locks_fd, path, 0) == 0 ? 1 : 0;
}

void ac_store_unlink_sandbox_lock(ac_store_t *s, const char *name)
{
	if (!ac_name_valid(name))
		return;
	char path[64 + sizeof(".lock")];
	snprintf(path, sizeof(path), "%s.lock", name);
	unlinkat(s->locks_fd, path, 0);
}

static void state_file(const char *name, char buf[64 + sizeof(SUFFIX)])
{
	snprintf(buf, 64 + sizeof(SUFFIX), "%s" SUFFIX, name);
}

static bool file_exists(ac_store_t *s, const char *file)
{
	struct stat st;
	return fstatat(s->sandboxes_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int write_state(ac_store_t *s, const char *file, json_t *state, ac_error_t **err)
{
	_cleanup_free_ char *text = json_dumps(state, JSON_INDENT(2));
	if (text == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "cannot serialize the state of %s",
				    file);
	/* A trailing newline keeps the file friendly to cat and diff. */
	size_t len = strlen(text);
	char *grown = realloc(text, len + 2);
	if (grown == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write %s", file);
	text = grown;
	AC_ANALYZER_OWNED(text);
	text[len++] = '\n';
	text[len] = '\0';
	if (ac_write_file_atomic_at(s->sandboxes_fd, file, text, len, 0600, err) < 0) {
		ac_error_prefix(err, "%s/sandboxes", s->home);
		return -1;
	}
	return 0;
}

static int set_new(json_t *obj, const char *key, json_t *value, ac_error_t **err)
{
	if (value == NULL || json_object_set_new(obj, key, value) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot set '%s'", key);
	return 0;
}

static int fill_uuid(json_t *state, ac_error_t **err)
{
	if (ac_uuid_valid(ac_state_str(state, "uuid", NULL)))
		return 0;
	char uuid[37];
	ac_uuid_v7(uuid);
	if (set_new(state, "uuid", json_string(uuid), err) < 0)
		return -1;
	return 1;
}

static int fill_defaults(json_t *state, ac_error_t **err)
{
	if (json_object_get(state, "ports") == NULL &&
	    set_new(state, "ports", json_array(), err) < 0)
		return -1;
	if (json_object_get(state, "labels") == NULL &&
	    set_new(state, "labels", json_object(), err) < 0)
		return -1;
	return 0;
}

static const char *state_name(const json_t *state, ac_error_t **err)
{
	if (!json_is_object(state)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "sandbox state must be a JSON object");
		return NULL;
	}
	const char *name = ac_state_str(state, "name", NULL);
	if (name == NULL) {
		ac_error_set(err, AC_ERR_INVALID, 0, "sandbox state has no \"name\" string");
		return NULL;
	}
	if (check_name(name, err) < 0)
		return NULL;
	return name;
}

int ac_store_create(ac_store_t *s, json_t *state, ac_error_t **err)
{
	const char *name = state_name(state, err);
	if (name == NULL)
		return -1;
	char file[64 + sizeof(SUFFIX)];
	state_file(name, file);

	_cleanup_close_ int lock = ac_store_lock_global(s, err);
	if (lock < 0)
		return -1;
	if (file_exists(s, file))
		return ac_error_set(err, AC_ERR_EXISTS, 0, "sandbox '%s' already exists", name);
	if (errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot check %s/sandboxes/%s",
				    s->home, file);

	if (fill_uuid(state, err) < 0)
		return -1;
	if (!json_is_string(json_object_get(state, "created_at"))) {
		char now[32];
		ac_time_now_rfc3339(now);
		if (set_new(state, "created_at", json_string(now), err) < 0)
			return -1;
	}
	if (fill_defaults(state, err) < 0)
		return -1;
	return write_state(s, file, state, err);
}

/* Parses a state file's bytes. Errors describe the problem only; callers add the file. */
static int parse_state(const char *name, const char *buf, size_t len, json_t **out,
		       ac_error_t **err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *st = json_loadb(buf, len, 0, &jerr);
	if (st == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
				    jerr.text);
	if (!json_is_object(st))
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "not a JSON object");
	const char *stored = ac_state_str(st, "name", NULL);
	if (stored == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "no \"name\" string");
	if (strcmp(stored, name) != 0)
		return ac_error_set(err, AC_ERR_INTERNAL, 0,
				    "\"name\" is '%.64s', which does not match the file name",
				    stored);
	*out = steal_ptr(st);
	return 0;
}

/* Persists a back-filled uuid, but only if nobody holds the sandbox lock (including this
 * process: flock does not nest across descriptors, so blocking here could deadlock a
 * caller that holds it) and the file is still byte-for-byte what we parsed. A holder of
 * the lock may be saving a newer state or removing the sandbox; it wins, and the uuid is
 * persisted by whoever saves next. */
static void persist_backfill(ac_store_t *s, const char *name, const char *file, const char *orig,
			     size_t orig_len, json_t *state)
{
	_cleanup_close_ int lock = lock_sandbox(s, name, true, NULL);
	if (lock < 0)
		return;
	_cleanup_free_ char *now = NULL;
	size_t now_len = 0;
	if (ac_read_file_at(s->sandboxes_fd, file, STATE_MAX_BYTES, &now, &now_len, NULL) < 0)
		return;
	if (now_len != orig_len || memcmp(now, orig, orig_len) != 0)
		return;
	write_state(s, file, state, NULL);
}

/* Shared by load and list: on failure, reason-only messages (see parse_state), except
 * AC_ERR_NOT_FOUND which names the sandbox. */
static int load_state(ac_store_t *s, const char *name, json_t **out, ac_error_t **err)
{
	char file[64 + sizeof(SUFFIX)];
	state_file(name, file);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ac_error_t *rerr = NULL;
	if (ac_read_file_at(s->sandboxes_fd, file, STATE_MAX_BYTES, &buf, &len, &rerr) < 0) {
		_cleanup_error_ ac_error_t *e = rerr;
		if (e->kind == AC_ERR_NOT_FOUND)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'",
					    name);
		/* Hand over the read error (it keeps errno): an unreadable state file is our
		 * problem, not the user's input. */
		e->kind = AC_ERR_INTERNAL;
		if (err != NULL && *err == NULL)
			*err = steal_ptr(e);
		return -1;
	}

	_cleanup_json_ json_t *st = NULL;
	if (parse_state(name, buf, len, &st, err) < 0)
		return -1;
	int filled = fill_uuid(st, err);
	if (filled < 0)
		return -1;
	if (filled > 0)
		persist_backfill(s, name, file, buf, len, st);
	if (fill_defaults(st, err) < 0)
		return -1;
	*out = steal_ptr(st);
	return 0;
}

int ac_store_load(ac_store_t *s, const char *name, json_t **out, ac_error_t **err)
{
	if (check_name(name, err) < 0)
		return -1;
	if (load_state(s, name, out, err) < 0) {
		if (err != NULL && *err != NULL && (*err)->kind != AC_ERR_NOT_FOUND)
			ac_error_prefix(err, "state file %s/sandboxes/%s" SUFFIX, s->home, name);
		return -1;
	}
	return 0;
}

int ac_store_save(ac_store_t *s, json_t *state, ac_error_t **err)
{
	const char *name = state_name(state, err);
	if (name == NULL)
		return -1;
	char file[64 + sizeof(SUFFIX)];
	state_file(name, file);
	/* Saving a removed sandbox would silently bring it back. */
	if (!file_exists(s, file)) {
		if (errno == ENOENT)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'",
					    name);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot check %s/sandboxes/%s",
				    s->home, file);
	}
	return write_state(s, file, state, err);
}

int ac_store_remove(ac_store_t *s, const char *name, ac_error_t **err)
{
	if (check_name(name, err) < 0)
		return -1;
	char file[64 + sizeof(SUFFIX)];
	state_file(name, file);
	_cleanup_close_ int lock = ac_store_lock_global(s, err);
	if (lock < 0)
		return -1;
	if (unlinkat(s->sandboxes_fd, file, 0) < 0) {
		if (errno == ENOENT)
			return ac_error_set(err, AC_ERR_NOT_FOUND, 0, "no such sandbox: '%s'",
					    name);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove %s/sandboxes/%s",
				    s->home, file);
	}
	if (fsync(s->sandboxes_fd) < 0 && errno != EINTR)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot fsync %s/sandboxes",
				    s->home);
	return 0;
}

bool ac_store_exists(ac_store_t *s, const char *name)
{
	if (!ac_name_valid(name))
		return false;
	char file[64 + sizeof(SUFFIX)];
	state_file(name, file);
	return file_exists(s, file);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Names of sandboxes/<name>.json entries with valid names; temp files and strays are
 * skipped. */
static int list_names(ac_store_t *s, char ***out, size_t *count, ac_error_t **err)
{
	int fd =
	    TEMP_FAILURE_RETRY(openat(s->sandboxes_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s/sandboxes",
				    s->home);
	__attribute__((cleanup(closedirp))) DIR *d = fdopendir(fd);
	if (d == NULL) {
		int saved = errno;
		close(fd);
		return ac_error_set(err, AC_ERR_INTERNAL, saved, "cannot read %s/sandboxes",
				    s->home);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				int saved = errno;
				free_names(names, n);
				return ac_error_set(err, AC_ERR_INTERNAL, saved,
						    "cannot read %s/sandboxes", s->home);
			}
			break;
		}
		size_t len = strlen(de->d_name);
		if (len <= strlen(SUFFIX) || strcmp(de->d_name + len - strlen(SUFFIX), SUFFIX) != 0)
			continue;
		char *name = strndup(de->d_name, len - strlen(SUFFIX));
		if (name == NULL || !ac_name_valid(name)) {
			free(name);
			if (name == NULL) {
				free_names(names, n);
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
						    "cannot list sandboxes");
			}
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (nn == NULL) {
				free(name);
				free_names(names, n);
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM,
						    "cannot list sandboxes");
			}
			names = nn;
			cap = ncap;
		}
		names[n++] = name;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return 0;
}

int ac_store_list(ac_store_t *s, json_t **out, json_t **warnings, ac_error_t **err)
{
	char **names = NULL;
	size_t n = 0;
	if (list_names(s, &names, &n, err) < 0)
		return -1;

	_cleanup_json_ json_t *arr = json_array();
	_cleanup_json_ json_t *warns = NULL;
	if (warnings != NULL)
		warns = json_is_array(*warnings) ? json_incref(*warnings) : json_array();
	if (arr == NULL || (warnings != NULL && warns == NULL)) {
		free_names(names, n);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot list sandboxes");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *st = NULL;
		ac_error_t *lerr = NULL;
		if (load_state(s, names[i], &st, &lerr) < 0) {
			/* Removed since the directory was read: not an error. */
			if (lerr != NULL && lerr->kind != AC_ERR_NOT_FOUND && warns != NULL) {
				json_t *w =
				    json_sprintf("skipping %s" SUFFIX ": %s", names[i], lerr->msg);
				if (w != NULL)
					json_array_append_new(warns, w);
			}
			ac_error_free(lerr);
			continue;
		}
		if (json_array_append_new(arr, st) < 0) {
			free_names(names, n);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot list sandboxes");
		}
	}
	free_names(names, n);
	if (warnings != NULL && *warnings != warns)
		*warnings = steal_ptr(warns);
	*out = steal_ptr(arr);
	return 0;
}

const char *ac_state_str(const json_t *st, const char *key, const char *dflt)
{
	json_t *v = json_is_object(st) ? json_object_get(st, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : dflt;
}

long long ac_state_int(const json_t *st, const char *key, long long dflt)
{
	json_t *v = json_is_object(st) ? json_object_get(st, key) : NULL;
	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

double ac_state_real(const json_t *st, const char *key, double dflt)
{
	json_t *v = json_is_object(st) ? json_object_get(st, key) : NULL;
	return json_is_number(v) ? json_number_value(v) : dflt;
}

bool ac_state_bool(const json_t *st, const char *key, bool dflt)
{
	json_t *v = json_is_object(st) ? json_object_get(st, key) : NULL;
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}
