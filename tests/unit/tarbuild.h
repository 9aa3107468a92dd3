/* A tiny tar writer for tests (ustar headers by hand, pax 'x' records for long names and
 * xattrs): builds the hostile layers that a real tar tool would refuse to make. */
#ifndef AC_TESTS_TARBUILD_H
#define AC_TESTS_TARBUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tarbuf {
	unsigned char *p;
	size_t len, cap;
} tarbuf_t;

static inline void tb_grow(tarbuf_t *t, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n)
			cap *= 2;
		t->p = realloc(t->p, cap);
		t->cap = cap;
	}
}

static inline void tb_raw(tarbuf_t *t, const void *data, size_t n)
{
	tb_grow(t, n);
	memcpy(t->p + t->len, data, n);
	t->len += n;
}

static inline void tb_pad(tarbuf_t *t)
{
	size_t pad = (512 - t->len % 512) % 512;
	tb_grow(t, pad);
	memset(t->p + t->len, 0, pad);
	t->len += pad;
}

static inline void tb_octal(char *dst, size_t width, uint64_t v)
{
	snprintf(dst, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

/* One header + data. type: '0' file, '1' hard link, '2' symlink, '3' char, '4' block,
 * '5' dir, '6' fifo, 'x' pax. name/link up to 99 bytes (longer: use tb_pax "path"). */
static inline void tb_entry_full(tarbuf_t *t, const char *name, char type, unsigned mode,
				 unsigned uid, unsigned gid, const void *data, size_t len,
				 const char *link, unsigned devmajor, unsigned devminor)
{
	char h[512];
	memset(h, 0, sizeof(h));
	snprintf(h, 100, "%s", name);
	tb_octal(h + 100, 8, mode);
	tb_octal(h + 108, 8, uid);
	tb_octal(h + 116, 8, gid);
	tb_octal(h + 124, 12, len);
	tb_octal(h + 136, 12, 1700000000);
	h[156] = type;
	if (link)
		snprintf(h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	tb_octal(h + 329, 8, devmajor);
	tb_octal(h + 337, 8, devminor);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	tb_raw(t, h, 512);
	if (len) {
		tb_raw(t, data, len);
		tb_pad(t);
	}
}

static inline void tb_entry(tarbuf_t *t, const char *name, char type, unsigned mode,
			    const char *data, const char *link)
{
	tb_entry_full(t, name, type, mode, 0, 0, data, data ? strlen(data) : 0, link, 0, 0);
}

/* A pax extended header applying to the next entry: one "key=value" record (value of
 * vlen bytes, may hold NULs). */
static inline void tb_pax(tarbuf_t *t, const char *key, const void *value, size_t vlen)
{
	size_t body = strlen(key) + vlen + 3; /* ' ', '=', '\n' */
	size_t total = 0;
	for (size_t digits = 1; digits < 20; digits++) {
		char d[32];
		total = body + digits;
		if ((size_t)snprintf(d, sizeof(d), "%zu", total) == digits)
			break;
	}
	char *rec = malloc(total + 1);
	int off = snprintf(rec, total + 1, "%zu %s=", total, key);
	memcpy(rec + off, value, vlen);
	rec[off + vlen] = '\n';
	tb_entry_full(t, "PaxHeader", 'x', 0644, 0, 0, rec, (size_t)off + vlen + 1, NULL, 0, 0);
	free(rec);
}

static inline void tb_end(tarbuf_t *t)
{
	char z[1024];
	memset(z, 0, sizeof(z));
	tb_raw(t, z, sizeof(z));
}

#endif
