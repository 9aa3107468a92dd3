/* The front end's small text helpers (cli.h): sizes and ages for people, and a value read
 * from the terminal (echo off for a secret) or from standard input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

void cli_human_size(json_int_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1000 && u + 1 < AC_ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void cli_human_age(const char *rfc3339, char *buf, size_t len)
{
	struct tm tm = {0};
	const char *end = rfc3339 ? strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end) {
		snprintf(buf, len, "-");
		return;
	}
	double d = difftime(time(NULL), timegm(&tm));
	static const struct {
		double secs;
		const char *unit;
	} u[] = {{31536000, "year"}, {2592000, "month"}, {604800, "week"},
		 {86400, "day"},     {3600, "hour"},	 {60, "minute"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(u); i++)
		if (d >= u[i].secs) {
			long n = (long)(d / u[i].secs);
			snprintf(buf, len, "%ld %s%s ago", n, u[i].unit, n == 1 ? "" : "s");
			return;
		}
	snprintf(buf, len, d < 0 ? "in the future" : "just now");
}

char *cli_read_input(const char *prompt, bool secret, bool from_stdin, size_t max, size_t *len)
{
	struct termios old, quiet;
	bool tty = !from_stdin && isatty(0) && tcgetattr(0, &old) == 0;
	if (tty) {
		fprintf(stderr, "%s", prompt);
		if (secret) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(0, TCSAFLUSH, &quiet);
		}
	}
	size_t n = 0;
	char *buf = malloc(max + 1);
	ssize_t r = 0;
	while (buf && n < max && (r = read(0, buf + n, max - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
		if (tty && memchr(buf, '\n', n))
			break;
	}
	if (tty && secret) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!buf || r < 0) {
		free(buf);
		return NULL;
	}
	if (tty && memchr(buf, '\n', n))
		n = (size_t)((char *)memchr(buf, '\n', n) - buf);
	else if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}
