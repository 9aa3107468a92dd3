/* Runs a libFuzzer target over files without libFuzzer: each argument is a file or a
 * directory of files (not recursive), replayed in name order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (64u * 1024 * 1024)

static int replay_file(int dirfd, const char *path, const char *shown, unsigned long *count)
{
	char *buf = NULL;
	size_t len = 0;
	ac_error_t *err = NULL;
	if (ac_read_file_at(dirfd, path, INPUT_MAX, &buf, &len, &err) < 0) {
		fprintf(stderr, "replay: %s: %s\n", shown, err->msg);
		ac_error_free(err);
		return -1;
	}
	/* Copy into an exact-size allocation so ASan catches reads past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	(*count)++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *path, unsigned long *count)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		char **nn = realloc(names, (n + 1) * sizeof(*nn));
		char *name = strdup(de->d_name);
		if (nn == NULL || name == NULL) {
			free(name);
			names = nn ? nn : names;
			rc = -1;
			break;
		}
		names = nn;
		names[n++] = name;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char shown[4096];
		snprintf(shown, sizeof(shown), "%s/%s", path, names[i]);
		if (rc == 0 && replay_file(dirfd(d), names[i], shown, count) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) < 0)
				rc = 1;
		} else if (replay_file(AT_FDCWD, argv[i], argv[i], &count) < 0) {
			rc = 1;
		}
	}
	printf("replayed %lu inputs\n", count);
	return rc;
}
