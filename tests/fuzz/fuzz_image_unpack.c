/* Fuzz target: layer unpacking (src/image/unpack.c). Each input is a layer blob (tar,
 * gzip or zstd) unpacked into <tmp>/root beside an empty <tmp>/outside. Whatever the input,
 * nothing may appear outside, and the layer may hold no device node but a whiteout (a 0/0
 * character device) and no trusted.* xattr but overlay's opaque mark; anything else aborts.
 * As root the whiteouts and owners are made for real; otherwise those entries fail
 * cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/io.h"
#include "base/walk.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64];

static int check_entry(const ac_walk_entry_t *e, void *arg, ac_error_t **err)
{
	mode_t m = e->st->st_mode;
	if ((S_ISCHR(m) && e->st->st_rdev != makedev(0, 0)) || S_ISBLK(m))
		abort();
	if (S_ISDIR(m) || S_ISREG(m)) {
		char names[4096];
		int fd = e->fd >= 0 ? e->fd
				    : openat(e->dirfd, e->name,
					     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		ssize_t n = fd >= 0 ? flistxattr(fd, names, sizeof(names)) : -1;
		for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1)
			if (strncmp(names + off, "trusted.", 8) == 0 &&
			    strcmp(names + off, "trusted.overlay.opaque") != 0)
				abort();
		if (fd >= 0 && fd != e->fd)
			close(fd);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/ac-fuzz-unpack-XXXXXX");
		if (mkdtemp(base) == NULL)
			abort();
	}
	char root[128], outside[128];
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	ac_rm_rf_at(AT_FDCWD, root, NULL);
	if (mkdir(root, 0755) < 0 || (mkdir(outside, 0755) < 0 && errno != EEXIST))
		abort();
	int in = memfd_create("layer", MFD_CLOEXEC);
	if (in < 0 || ac_write_all(in, data, size) < 0)
		abort();
	lseek(in, 0, SEEK_SET);
	int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		abort();
	ac_error_t *err = NULL;
	uint64_t bytes = 0;
	if (ac_image_unpack(in, dir, &bytes, &err) < 0)
		ac_error_free(err);
	close(in);

	ac_walk_t w = {.pre = check_entry, .max_depth = 4096, .lenient = true};
	err = NULL;
	if (ac_walk_at(dir, "", &w, &err) < 0)
		ac_error_free(err);
	close(dir);
	/* Nothing beside root/: outside/ stays empty, base/ holds only the two. */
	if (rmdir(outside) < 0)
		abort();
	ac_rm_rf_at(AT_FDCWD, root, NULL);
	if (rmdir(base) < 0)
		abort();
	base[0] = 0;
	return 0;
}
