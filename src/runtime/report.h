/* Fixed-size messages from a starting sandbox (or a child working on its files) back to
 * its caller (report.c): one pipe; each message fits in PIPE_BUF, so writes never
 * interleave. */
#ifndef AGENTCELL_RT_REPORT_H
#define AGENTCELL_RT_REPORT_H

#include "agentcell/error.h"

/* Where a command's start failed: a of AC_REPORT_EXEC_FAILED, "stage" of an exec reply,
 * the first int on spawn.c's error pipe. */
enum {
	AC_STAGE_CWD = 1, /* cannot enter the working directory */
	AC_STAGE_USER,	  /* unknown user */
	AC_STAGE_EXEC,	  /* execve failed */
	AC_STAGE_SETUP,	  /* anything else before execve (fork, ids, descriptors...) */
	AC_STAGE_POLICY,  /* blocked by the command policy */
};

enum {
	AC_REPORT_ERROR = 1,   /* a = error kind, b = errno, text = message */
	AC_REPORT_EXEC_FAILED, /* a = stage (AC_STAGE_*), b = errno */
	AC_REPORT_EXIT,	       /* a = exit code, b = signal */
	AC_REPORT_TIMEOUT,
	AC_REPORT_PID, /* a = host pid of the sandbox's init */
	AC_REPORT_READY,
};

typedef struct ac_report {
	int type, a, b;
	char text[1012];
} ac_report_t;

/* Writes one message to fd (nothing when fd < 0). */
void ac_report(int fd, int type, int a, int b, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* An AC_REPORT_ERROR of e (NULL: a sandbox set-up failure of unknown cause). */
void ac_report_error(int fd, const ac_error_t *e);

#endif
