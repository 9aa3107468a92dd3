/* Named volumes (image.h, "volumes"): $AGENTCELL_HOME/volumes/<name>/data, the tree a
 * sandbox sees, and <name>.json, its record. The directory is the truth: a volume exists
 * when volumes/<name>/data does; a missing or unreadable record (a crash between the two
 * steps of a create) reads as {name, created_at: the directory's mtime, labels: {}}.
 *
 * volumes/ is 0700 (and in a 0700 home): what a sandbox's root writes there is owned by the
 * host's root through the idmapped mount, setuid bits included, so no other host user may
 * ever reach it. Create and remove hold volumes/.lock; a create makes .tmp-<uuid>/data and
 * renames it into place (no half volume under a real name), a remove renames the volume to
 * .rm-<uuid> before deleting it (the name is gone at once). Such leftovers of a killed
 * process are deleted by the next create or remove (they are only made under the lock). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/time.h"
#include "base/util.h"
#include "base/uuid.h"
#include "base/walk.h"
#include "image/image.h"

#define RECORD_MAX     (64u * 1024)
#define SIZE_MAX_DEPTH 512 /* one descriptor per level, like rm -rf's */
#define SPEC_PATH_MAX  1024

/* [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}, and not "*.json" (that is a record's name). */
static bool volume_name_valid(const char *n)
{
	size_t l = strlen(n);
	if (l == 0 || l > 63)
		return false;
	for (size_t i = 0; i < l; i++) {
		char c = n[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return !(l > 5 && !strcmp(n + l - 5, ".json"));
}

static int bad_name(const char *name, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_INVALID, 0,
			    "invalid volume name '%s': use 1-63 characters of A-Z a-z 0-9 _ . -, "
			    "starting with a letter or digit, not ending in .json",
			    name);
}

static int not_found(const char *name, ac_error_t **err)
{
	return ac_error_set(err, AC_ERR_NOT_FOUND, 0,
			    "volume '%s' not found: create it with 'agentcell volume create %s'",
			    name, name);
}

/* $home/volumes, opened (O_DIRECTORY); with create, made 0700 when missing. MISSING (no
 * error set) when it does not exist and !create; -1 with *err. */
#define MISSING (-2)
static int open_volumes(const char *home, bool create, ac_error_t **err)
{
	char path[PATH_MAX];
	if (!home || snprintf(path, sizeof(path), "%s/volumes", home) >= (int)sizeof(path))
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the home directory path is too long");
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create '%s'", path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return MISSING;
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open '%s'", path);
	}
	return fd;
}

static int lock_volumes(int dirfd, ac_error_t **err)
{
	int fd = openat(dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open the volumes' lock");
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return ac_error_set(err, AC_ERR_INTERNAL, e,
					    "cannot lock the volumes' directory");
		}
	}
	return fd;
}

/* Whether volume name exists: its data directory is a directory (not a link). */
static bool volume_exists(int dirfd, const char *name)
{
	char rel[80];
	struct stat st;
	snprintf(rel, sizeof(rel), "%s/data", name);
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
	       fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Deletes what a killed create or remove left (.tmp-*, .rm-*); call under the lock. */
static void sweep_leftovers(int dirfd)
{
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	/* Names first: removing while reading may skip entries. */
	char *names[64];
	int n = 0;
	struct dirent *de;
	while (n < 64 && (de = readdir(d)))
		if (!strncmp(de->d_name, ".tmp-", 5) || !strncmp(de->d_name, ".rm-", 4))
			names[n++] = strdup(de->d_name);
	closedir(d);
	for (int i = 0; i < n; i++) {
		if (names[i])
			ac_rm_rf_at(dirfd, names[i], NULL);
		free(names[i]);
	}
}

/* A hidden name for a temp or doomed directory: ".tmp-<uuid>" or ".rm-<uuid>". */
static void hidden_name(const char *prefix, char *buf, size_t len)
{
	char uuid[37];
	ac_uuid_v7(uuid);
	snprintf(buf, len, "%s%s", prefix, uuid);
}

static int size_pre(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	if (S_ISREG(e->st->st_mode) || S_ISLNK(e->st->st_mode))
		*(uint64_t *)arg += (uint64_t)e->st->st_size;
	return 0;
}

/* Bytes of the volume's files and links; -1 when the tree cannot be walked. */
static int64_t data_size(int dirfd, const char *name)
{
	_cleanup_close_ int vfd =
	    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (vfd < 0)
		return -1;
	uint64_t size = 0;
	ac_walk_t w = {.pre = size_pre, .arg = &size, .max_depth = SIZE_MAX_DEPTH, .lenient = true};
	ac_error_t *e = NULL;
	if (ac_walk_at(vfd, "data", &w, &e) < 0) {
		ac_error_free(e);
		return -1;
	}
	return (int64_t)size;
}

/* The record of an existing volume: its file, or one made from the directory. */
static json_t *read_record(int dirfd, const char *name)
{
	char rel[80], *text = NULL;
	size_t len;
	snprintf(rel, sizeof(rel), "%s.json", name);
	json_t *rec = NULL;
	if (ac_read_file_at(dirfd, rel, RECORD_MAX, &text, &len, NULL) == 0) {
		rec = json_loadb(text, len, 0, NULL);
		free(text);
	}
	if (!json_is_object(rec)) {
		json_decref(rec);
		rec = json_object();
	}
	json_object_set_new(rec, "name", json_string(name));
	if (!json_is_string(json_object_get(rec, "created_at"))) {
		struct stat st;
		char ts[32] = "";
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			ac_time_format_rfc3339(
			    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, ts);
		json_object_set_new(rec, "created_at", ts[0] ? json_string(ts) : json_null());
	}
	if (!json_is_object(json_object_get(rec, "labels")))
		json_object_set_new(rec, "labels", json_object());
	return rec;
}

/* The record with "path" (host) and "size" (bytes; null when it cannot be counted). */
static json_t *describe(const char *home, int dirfd, const char *name)
{
	json_t *rec = read_record(dirfd, name);
	json_object_set_new(rec, "path", json_sprintf("%s/volumes/%s/data", home, name));
	int64_t size = data_size(dirfd, name);
	json_object_set_new(rec, "size", size < 0 ? json_null() : json_integer(size));
	return rec;
}

int ac_volume_create_labeled(const char *home, const char *name, const json_t *labels,
			     json_t **record, ac_error_t **err)
{
	if (!volume_name_valid(name))
		return bad_name(name, err);
	const char *k;
	json_t *v;
	if (labels && !json_is_object(labels))
		return ac_error_set(err, AC_ERR_INVALID, 0, "volume labels must be an object");
	json_object_foreach((json_t *)labels, k, v)
	{
		if (!json_is_string(v))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "volume label '%s' must be a string", k);
	}
	_cleanup_close_ int dirfd = open_volumes(home, true, err);
	if (dirfd < 0)
		return -1;
	_cleanup_close_ int lock = lock_volumes(dirfd, err);
	if (lock < 0)
		return -1;
	sweep_leftovers(dirfd);
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return ac_error_set(err, AC_ERR_EXISTS, 0, "volume '%s' already exists", name);
	char tmp[64], data[80];
	hidden_name(".tmp-", tmp, sizeof(tmp));
	snprintf(data, sizeof(data), "%s/data", tmp);
	if (mkdirat(dirfd, tmp, 0700) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot create volume '%s'", name);
	/* 0755 root:root whatever the umask or a setgid parent would make of it (the unit
	 * tests run unprivileged: then their user's). */
	if (mkdirat(dirfd, data, 0755) < 0 ||
	    (geteuid() == 0 && fchownat(dirfd, data, 0, 0, AT_SYMLINK_NOFOLLOW) < 0) ||
	    fchmodat(dirfd, data, 0755, 0) < 0) {
		int e = errno;
		ac_rm_rf_at(dirfd, tmp, NULL);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot create volume '%s'", name);
	}
	char ts[32];
	ac_time_now_rfc3339(ts);
	json_t *rec = json_pack("{ss ss so}", "name", name, "created_at", ts, "labels",
				labels ? json_deep_copy(labels) : json_object());
	char *text = rec ? json_dumps(rec, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
	char rel[80];
	snprintf(rel, sizeof(rel), "%s.json", name);
	int rc = -1;
	if (!text)
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot write volume '%s'", name);
	else if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0)
		ac_error_set(err, errno == EEXIST ? AC_ERR_EXISTS : AC_ERR_INTERNAL, errno,
			     "cannot create volume '%s'", name);
	else if (ac_write_file_atomic_at(dirfd, rel, text, strlen(text), 0600, err) < 0)
		/* Undone: out of the name first, then deleted. */
		renameat(dirfd, name, dirfd, tmp);
	else
		rc = 0;
	free(text);
	ac_rm_rf_at(dirfd, tmp, NULL);
	if (rc < 0) {
		json_decref(rec);
		return -1;
	}
	if (record) {
		json_object_set_new(rec, "path", json_sprintf("%s/volumes/%s/data", home, name));
		json_object_set_new(rec, "size", json_integer(0));
		*record = rec;
	} else {
		json_decref(rec);
	}
	return 0;
}

int ac_volume_create(const char *home, const char *name, json_t **record, ac_error_t **err)
{
	return ac_volume_create_labeled(home, name, NULL, record, err);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ac_volume_list(const char *home, json_t **out, ac_error_t **err)
{
	*out = NULL;
	json_t *list = json_array();
	_cleanup_close_ int dirfd = open_volumes(home, false, err);
	if (dirfd == MISSING) { /* negative: the cleanup closes nothing */
		*out = list;
		return 0;
	}
	if (dirfd < 0) {
		json_decref(list);
		return -1;
	}
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		int e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		json_decref(list);
		return ac_error_set(err, AC_ERR_INTERNAL, e, "cannot read %s/volumes", home);
	}
	size_t n = 0, cap = 0;
	char **names = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!volume_name_valid(de->d_name) || !volume_exists(dirfd, de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(names, cap * sizeof(*nv));
			if (!nv)
				break;
			names = nv;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, describe(home, dirfd, names[i]));
		free(names[i]);
	}
	free(names);
	*out = list;
	return 0;
}

/* $home/volumes (as open_volumes), where volume name exists; bad_name or not_found. */
static int open_existing(const char *home, const char *name, ac_error_t **err)
{
	if (!volume_name_valid(name))
		return bad_name(name, err);
	int dirfd = open_volumes(home, false, err);
	if (dirfd == -1)
		return -1;
	if (dirfd == MISSING || !volume_exists(dirfd, name)) {
		if (dirfd >= 0)
			close(dirfd);
		return not_found(name, err);
	}
	return dirfd;
}

int ac_volume_inspect(const char *home, const char *name, json_t **out, ac_error_t **err)
{
	_cleanup_close_ int dirfd = open_existing(home, name, err);
	if (dirfd < 0)
		return -1;
	*out = describe(home, dirfd, name);
	return 0;
}

int ac_volume_remove(const char *home, const char *name, char *const *in_use_names,
		     ac_error_t **err)
{
	if (!volume_name_valid(name))
		return bad_name(name, err);
	_cleanup_close_ int dirfd = open_volumes(home, false, err);
	if (dirfd == -1)
		return -1;
	if (dirfd == MISSING) /* negative: the cleanup closes nothing */
		return not_found(name, err);
	_cleanup_close_ int lock = lock_volumes(dirfd, err);
	if (lock < 0)
		return -1;
	sweep_leftovers(dirfd);
	if (!volume_exists(dirfd, name))
		return not_found(name, err);
	if (in_use_names && in_use_names[0]) {
		char users[512] = "";
		size_t n = 0, used = 0;
		for (char *const *u = in_use_names; *u; u++, n++)
			if (n < 4 && used < sizeof(users))
				used += (size_t)snprintf(users + used, sizeof(users) - used,
							 "%s'%s'", n ? ", " : "", *u);
		if (n > 4 && used < sizeof(users))
			snprintf(users + used, sizeof(users) - used, " and %zu more", n - 4);
		return ac_error_set(err, AC_ERR_STATE, 0,
				    "volume '%s' is in use by sandbox%s %s: remove %s first", name,
				    n > 1 ? "es" : "", users, n > 1 ? "them" : "it");
	}
	char doomed[64], rel[80];
	hidden_name(".rm-", doomed, sizeof(doomed));
	if (renameat2(dirfd, name, dirfd, doomed, RENAME_NOREPLACE) < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot remove volume '%s'", name);
	snprintf(rel, sizeof(rel), "%s.json", name);
	if (unlinkat(dirfd, rel, 0) < 0 && errno != ENOENT)
		return ac_error_set(err, AC_ERR_INTERNAL, errno,
				    "cannot remove the record of volume '%s'", name);
	if (ac_rm_rf_at(dirfd, doomed, err) < 0) {
		ac_error_prefix(err, "volume '%s' is removed, but not all of its files", name);
		return -1;
	}
	return 0;
}

int ac_volume_path(const char *home, const char *name, char *buf, size_t len, ac_error_t **err)
{
	_cleanup_close_ int dirfd = open_existing(home, name, err);
	if (dirfd < 0)
		return -1;
	if (snprintf(buf, len, "%s/volumes/%s/data", home, name) >= (int)len)
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "the path of volume '%s' is too long",
				    name);
	return 0;
}

/* ------------------------------------------------------------------ --volume specs */

/* path normalized into out (no "//", "/./", trailing '/'); -1 with a reason. */
static int normalize(const char *in, char *out, size_t cap, const char **why)
{
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t l = strcspn(p, "/");
		if (l == 1 && p[0] == '.') {
			p += l;
			continue;
		}
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			*why = "'..' is not allowed";
			return -1;
		}
		if (o + 1 + l + 1 > cap) {
			*why = "too long";
			return -1;
		}
		out[o++] = '/';
		memcpy(out + o, p, l);
		o += l;
		p += l;
	}
	if (o == 0) {
		*why = "the sandbox's / cannot be a volume's mount point";
		return -1;
	}
	out[o] = '\0';
	return 0;
}

static bool under(const char *path, const char *dir)
{
	size_t l = strlen(dir);
	return !strncmp(path, dir, l) && (path[l] == '\0' || path[l] == '/');
}

int ac_volume_spec_parse(const char *s, json_t **out, ac_error_t **err)
{
	const char *usage = "use NAME:/path/in/sandbox[:ro]";
	/* Messages quote at most the spec's first 100 bytes (cut between UTF-8 characters). */
	char shown[128];
	int cut = s ? (int)strlen(s) : 0;
	if (cut > 100)
		for (cut = 100; cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80;)
			cut--;
	snprintf(shown, sizeof(shown), "%.*s%s", cut, s ? s : "", s && s[cut] ? "..." : "");
	const char *colon = s ? strchr(s, ':') : NULL;
	if (!colon)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid volume '%s': %s", shown,
				    usage);
	char name[64];
	size_t nl = (size_t)(colon - s);
	if (nl == 0 || nl >= sizeof(name))
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid volume '%s': %s", shown,
				    usage);
	memcpy(name, s, nl);
	name[nl] = '\0';
	if (!volume_name_valid(name)) {
		ac_error_t *e = NULL;
		bad_name(name, &e);
		ac_error_set(err, AC_ERR_INVALID, 0, "invalid volume '%s': %s", shown, e->msg);
		ac_error_free(e);
		return -1;
	}
	const char *path = colon + 1;
	size_t pl = strlen(path);
	bool read_only = false;
	if (pl >= 3 && (!strcmp(path + pl - 3, ":ro") || !strcmp(path + pl - 3, ":rw"))) {
		read_only = path[pl - 1] == 'o';
		pl -= 3;
	}
	if (pl == 0 || path[0] != '/')
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid volume '%s': the mount point must be an absolute path "
				    "(%s)",
				    shown, usage);
	if (pl >= SPEC_PATH_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid volume '%s': the mount point is too long", shown);
	char raw[SPEC_PATH_MAX], norm[SPEC_PATH_MAX];
	memcpy(raw, path, pl);
	raw[pl] = '\0';
	for (size_t i = 0; i < pl; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c < 0x20 || c == 0x7f || c == ':')
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid volume '%s': the mount point may not contain "
					    "control characters or ':' (%s)",
					    shown, usage);
	}
	const char *why = NULL;
	if (normalize(raw, norm, sizeof(norm), &why) < 0)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid volume '%s': %s", shown, why);
	static const char *const refused[] = {"/proc", "/sys", "/dev"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(refused); i++)
		if (under(norm, refused[i]))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "invalid volume '%s': a volume cannot be mounted on "
					    "or under %s",
					    shown, refused[i]);
	*out = json_pack("{ss ss sb}", "name", name, "path", norm, "read_only", read_only);
	if (!*out)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "invalid volume '%s': the mount point is not valid UTF-8",
				    shown);
	return 0;
}
