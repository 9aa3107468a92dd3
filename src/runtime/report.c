/* Report messages (see report.h): written by builders, inits and in-root children. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/report.h"

void ac_report(int fd, int type, int a, int b, const char *fmt, ...)
{
	ac_report_t m = {.type = type, .a = a, .b = b};
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m.text, sizeof(m.text), fmt, ap);
		va_end(ap);
	}
	if (fd >= 0)
		(void)!write(fd, &m, sizeof(m));
}

void ac_report_error(int fd, const ac_error_t *e)
{
	ac_report(fd, AC_REPORT_ERROR, e ? (int)e->kind : AC_ERR_BACKEND, e ? e->errnum : 0, "%s",
		  e ? e->msg : "sandbox set-up failed");
}
