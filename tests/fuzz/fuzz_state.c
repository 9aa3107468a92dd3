/* Fuzz target: arbitrary bytes as a sandbox state file, read back through the store. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/store.h"
#include "base/io.h"
#include "base/util.h"
#include "base/uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char home[] = "/tmp/ac-fuzz-state-XXXXXX";
static ac_store_t *store;
static int sandboxes_fd = -1;

static void cleanup(void)
{
	ac_store_free(store);
	if (sandboxes_fd >= 0)
		close(sandboxes_fd);
	ac_rm_rf_at(AT_FDCWD, home, NULL);
}

static void init_once(void)
{
	if (store != NULL)
		return;
	ac_error_t *err = NULL;
	if (mkdtemp(home) == NULL || ac_store_open(home, &store, &err) < 0) {
		fprintf(stderr, "fuzz_state: cannot set up %s: %s\n", home,
			err ? err->msg : "mkdtemp");
		abort();
	}
	sandboxes_fd =
	    openat(ac_store_home_fd(store), "sandboxes", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sandboxes_fd < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	/* A plain (non-fsynced) write keeps the fuzzer fast; load may still rewrite the file
	 * atomically when it back-fills a uuid. */
	int fd = openat(sandboxes_fd, "fuzz.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (ac_write_all(fd, data, size) < 0)
		abort();
	close(fd);

	json_t *st = NULL;
	ac_error_t *err = NULL;
	if (ac_store_load(store, "fuzz", &st, &err) == 0) {
		/* Exercise the accessors on whatever shape came back. */
		(void)ac_state_str(st, "image", NULL);
		(void)ac_state_int(st, "vcpus", 0);
		(void)ac_state_real(st, "memory_mb", 0);
		(void)ac_state_bool(st, "read_only", false);
		if (!ac_uuid_valid(ac_state_str(st, "uuid", NULL)))
			abort();
		json_decref(st);
	} else if (err == NULL) {
		abort(); /* the error contract: failure always says why */
	}
	ac_error_free(err);
	err = NULL;

	json_t *list = NULL, *warnings = NULL;
	if (ac_store_list(store, &list, &warnings, &err) < 0)
		abort();
	if (json_array_size(list) + json_array_size(warnings) != 1)
		abort();
	json_decref(list);
	json_decref(warnings);
	return 0;
}
