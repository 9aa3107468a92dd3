/* The process title seen in /proc/PID/cmdline. A sandbox's init is a fork of the CLI, so
 * without this every process listing inside a sandbox would show the host path of the
 * agentcell binary and the command line that started it. */
#include "base/proctitle.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *area;
static size_t area_len;

void ac_proctitle_init(int argc, char **argv)
{
	if (argc < 1 || !argv[0])
		return;
	area = argv[0];
	char *end = argv[argc - 1] + strlen(argv[argc - 1]);
	area_len = (size_t)(end - area);
	ac_proctitle_note_environ();
}

void ac_proctitle_set(const char *title)
{
	if (!area || !area_len)
		return;
	memset(area, 0, area_len);
	size_t n = strlen(title);
	memcpy(area, title, n < area_len ? n : area_len - 1);
}

/* The environment strings as the kernel placed them: /proc/PID/environ shows this area,
 * whatever environ points to later. */
static char *env_area;
static size_t env_len;
static bool env_wiped;

void ac_proctitle_note_environ(void)
{
	if (!environ || !environ[0])
		return;
	char *start = environ[0], *end = start;
	for (char **e = environ; *e; e++) {
		if (*e < start)
			return; /* not the kernel's layout: leave it */
		char *s = *e + strlen(*e);
		if (s > end)
			end = s;
	}
	env_area = start;
	env_len = (size_t)(end - start);
}

void ac_proctitle_wipe_environ(void)
{
	if (env_wiped || !env_area)
		return;
	env_wiped = true;
	/* getenv keeps working on a private copy; the kernel's area is zeroed. */
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **copy = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; copy && i < n; i++)
		copy[i] = strdup(environ[i]);
	environ = copy;
	memset(env_area, 0, env_len);
}
