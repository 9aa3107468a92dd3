/* The process title seen in /proc/PID/cmdline. A sandbox's init is a fork of the CLI, so
 * without this every process listing inside a sandbox would show the host path of the
 * agentcell binary and the command line that started it. */
#include <string.h>

#include "agentcell/util.h"

static char *area;
static size_t area_len;

void ac_proctitle_init(int argc, char **argv)
{
	if (argc < 1 || !argv[0])
		return;
	area = argv[0];
	char *end = argv[argc - 1] + strlen(argv[argc - 1]);
	area_len = (size_t)(end - area);
}

void ac_proctitle_set(const char *title)
{
	if (!area || !area_len)
		return;
	memset(area, 0, area_len);
	size_t n = strlen(title);
	memcpy(area, title, n < area_len ? n : area_len - 1);
}
