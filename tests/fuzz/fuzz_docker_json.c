/* Fuzz target: the Docker engine's JSON answers as parsed by src/backends/docker/proto.c
 * (create ids, container and exec inspect, container lists, version, error messages, the
 * archive path stat header). Every parser gets the whole input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/docker/docker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char id[129], text[600], version[200];
	if (ac_docker_parse_id(s, size, id, sizeof(id)) == 0 && strlen(id) < 12)
		abort();
	ac_docker_inspect_t in;
	if (ac_docker_parse_inspect(s, size, &in) == 0 && strlen(in.id) < 12)
		abort();
	ac_docker_parse_exec_inspect(s, size, &in);
	json_t *list = NULL;
	if (ac_docker_parse_list(s, size, &list) == 0) {
		if (!json_is_array(list))
			abort();
		json_decref(list);
	}
	ac_docker_error_text(s, size, text, sizeof(text));
	for (const char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20)
			abort(); /* one line, no control characters */
	ac_docker_parse_version(s, size, version, sizeof(version));
	/* The path stat header: base64 text, NUL-terminated. */
	char *b64 = malloc(size + 1);
	if (b64) {
		memcpy(b64, data, size);
		b64[size] = 0;
		bool dir, link;
		long long sz;
		ac_docker_parse_path_stat(b64, &dir, &link, &sz);
		free(b64);
	}
	return 0;
}
