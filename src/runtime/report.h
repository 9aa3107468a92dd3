/* Fixed-size messages from a starting sandbox back to its caller (one pipe; each
 * message fits in PIPE_BUF, so writes never interleave). */
#ifndef AGENTCELL_REPORT_H
#define AGENTCELL_REPORT_H

enum {
	AC_REPORT_ERROR = 1,   /* a = error kind, b = errno, text = message */
	AC_REPORT_EXEC_FAILED, /* a = stage (1 cwd, 2 user, 3 exec, 4 setup), b = errno */
	AC_REPORT_EXIT,	       /* a = exit code, b = signal */
	AC_REPORT_TIMEOUT,
	AC_REPORT_PID, /* a = host pid of the sandbox's init */
	AC_REPORT_READY,
};

typedef struct ac_report {
	int type, a, b;
	char text[1012];
} ac_report_t;

void ac_report(int fd, int type, int a, int b, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* proto.c: a listening unix socket at path (any length). */
#include "agentcell/error.h"
int ac_proto_listen(const char *path, ac_error_t **err);

#endif
