/* Fuzz target: the Docker stream demultiplexer and the HTTP response head parser
 * (src/backends/docker/proto.c). The input is fed to the demultiplexer in pieces whose
 * sizes come from the input itself (headers and payloads cut anywhere), and the whole
 * input is parsed as a response head; invariants are checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/docker/docker.h"
#include "backends/tarfiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct totals {
	uint64_t bytes;
} totals_t;

static void sink(int stream, const char *buf, size_t len, void *arg)
{
	totals_t *t = arg;
	if ((stream != 1 && stream != 2) || len == 0)
		abort();
	volatile char c = buf[len - 1]; /* every byte handed over is readable */
	(void)c;
	t->bytes += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ac_demux_t d = {0};
	totals_t t = {0};
	size_t off = 0, step = size ? (size_t)data[0] % 17 + 1 : 1;
	int rc = 0;
	while (off < size && rc == 0) {
		size_t n = size - off < step ? size - off : step;
		rc = ac_demux_feed(&d, (const char *)data + off, n, sink, &t);
		off += n;
		step = step * 7 % 23 + 1;
	}
	/* Payload bytes are a subset of the input, and a refused stream stays refused. */
	if (t.bytes > size || (rc < 0 && !d.broken))
		abort();
	if (rc < 0 && ac_demux_feed(&d, "x", 1, sink, &t) != -1)
		abort();

	ac_http_head_t h;
	int hr = ac_docker_parse_head((const char *)data, size, &h);
	if (hr == 0 && (h.head_len > size || h.status < 100 || h.status > 999))
		abort();
	if (hr < -1 || hr > 1)
		abort();
	char out[4096];
	char *name = malloc(size + 1);
	if (name) {
		memcpy(name, data, size);
		name[size] = 0;
		if (ac_tarfiles_name(name, out, sizeof(out)) == 0 &&
		    (strstr(out, "//") || out[0] == '/'))
			abort();
		free(name);
	}
	return 0;
}
