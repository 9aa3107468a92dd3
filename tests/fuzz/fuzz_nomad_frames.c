/* Fuzz target: what the Nomad backend reads from an allocation exec stream
 * (src/backends/nomad/frames.c): the input as a received text message (ac_nm_frame_decode)
 * and as a close frame's reason (ac_nm_exec_close_error), and, split at NUL bytes, as the
 * words of a command for the exec URL (ac_nm_exec_path). Round trip: output data that
 * decodes is encoded again as the client's stdin frame, turned into the server's stdout
 * frame, and must decode to the same bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/nomad/frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHO "nomad at http://127.0.0.1:4646"

static void check_error(const ac_error_t *err)
{
	if (!err || !err->msg[0] || strchr(err->msg, '\n') || strchr(err->msg, '\r'))
		abort();
}

static void round_trip(const ac_nm_frame_t *f)
{
	char *in = ac_nm_frame_stdin(f->data, f->len);
	if (!in)
		abort();
	/* {"stdin":{"data":...}} -> {"stdout":{"data":...}} */
	size_t n = strlen(in);
	char *out = malloc(n + 2);
	if (!out)
		abort();
	memcpy(out, "{\"stdout\"", 9);
	memcpy(out + 9, in + 8, n - 8 + 1);
	ac_nm_frame_t g;
	if (ac_nm_frame_decode(out, strlen(out), WHO, &g, NULL) != 0 ||
	    g.kind != AC_NM_FRAME_STDOUT || g.len != f->len || memcmp(g.data, f->data, f->len))
		abort();
	ac_nm_frame_clear(&g);
	free(out);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A received message. */
	ac_nm_frame_t f;
	ac_error_t *err = NULL;
	int rc = ac_nm_frame_decode((const char *)data, size, WHO, &f, &err);
	if (rc == 0) {
		if (err)
			abort();
		switch (f.kind) {
		case AC_NM_FRAME_NONE:
			if (f.data || f.len || f.close)
				abort();
			break;
		case AC_NM_FRAME_STDOUT:
		case AC_NM_FRAME_STDERR:
			if ((f.len && !f.data) || f.len > AC_NM_FRAME_DATA_MAX)
				abort();
			if (f.len)
				round_trip(&f);
			break;
		case AC_NM_FRAME_EXITED:
			if (f.data || f.exit_code < 0 || f.exit_code > 255 || f.signal < 0 ||
			    f.signal > 127)
				abort();
			break;
		default:
			abort();
		}
	} else if (rc == -1) {
		check_error(err);
		if (f.data || f.kind != AC_NM_FRAME_NONE)
			abort();
	} else {
		abort();
	}
	ac_nm_frame_clear(&f);
	ac_error_free(err);

	/* A close reason (a close frame's payload is at most 123 bytes). */
	char reason[124];
	size_t rl = size < sizeof(reason) - 1 ? size : sizeof(reason) - 1;
	memcpy(reason, data, rl);
	reason[rl] = 0;
	err = NULL;
	unsigned code = size >= 2 ? (unsigned)data[0] << 8 | data[1] : 1000;
	if (ac_nm_exec_close_error(WHO, code, reason, &err) != -1)
		abort();
	check_error(err);
	if (err->exit_code != 0 && err->exit_code != 126 && err->exit_code != 127)
		abort();
	ac_error_free(err);

	/* Command words, split at NUL bytes (at most 16). */
	char *copy = malloc(size + 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = 0;
	char *argv[17];
	size_t na = 0;
	for (size_t i = 0; i <= size && na < 16;) {
		argv[na++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	argv[na] = NULL;
	err = NULL;
	char *path = ac_nm_exec_path("0b1c3a0e-8f2d-4c3b-9a7e-0123456789ab", "sandbox", argv,
				     size & 1, argv[0], na > 1 ? argv[1] : NULL, &err);
	if (path) {
		/* One path, no byte that is not plain in a URL. */
		for (const char *c = path; *c; c++)
			if (*c <= ' ' || *c >= 127 || *c == '#' || *c == '"')
				abort();
		if (err)
			abort();
		free(path);
	} else {
		check_error(err);
		if (err->kind != AC_ERR_INVALID)
			abort();
	}
	ac_error_free(err);
	free(copy);
	return 0;
}
