/* Error objects: see include/agentcell/error.h for the contract. */
#include "agentcell/error.h"
#undef ac_error_set /* the analyzer's macro (error.h); this file defines the function */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returned when the error itself cannot be allocated, so callers still get a kind and a
 * message. It is never freed or modified. */
static ac_error_t oom_error = {
    .kind = AC_ERR_INTERNAL,
    .errnum = ENOMEM,
    .msg = "out of memory while reporting an error",
};

/* Messages end up in single-line logs, HTTP JSON bodies and terminal output, and often
 * carry user input (names, paths, arguments): control bytes are written as escapes, so a
 * message is one line and never moves a terminal's cursor or changes its colours. */
size_t ac_escape_controls(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (cap == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char esc[9];
		size_t n = 0;
		unsigned char c = *p;
		if (c == '\n' || c == '\t' || c == '\r') {
			esc[n++] = '\\';
			esc[n++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else if (c < 0x20 || c == 0x7f) {
			esc[n++] = '\\';
			esc[n++] = 'x';
			esc[n++] = hex[c >> 4];
			esc[n++] = hex[c & 15];
		} else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F, the C1 controls (CSI is U+009B) */
			unsigned char d = *++p;
			memcpy(esc, "\\xc2\\x", 6);
			n = 6;
			esc[n++] = hex[d >> 4];
			esc[n++] = hex[d & 15];
		} else {
			esc[n++] = (char)c;
		}
		if (o + n >= cap)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

static void one_line(char *s, size_t cap)
{
	char buf[sizeof(((ac_error_t *)0)->msg)];
	if (cap > sizeof(buf))
		cap = sizeof(buf);
	ac_escape_controls(s, buf, cap);
	memcpy(s, buf, strlen(buf) + 1);
}

int ac_error_set(ac_error_t **err, ac_error_kind_t kind, int errnum, const char *fmt, ...)
{
	int saved_errno = errno;
	if (err == NULL || *err != NULL)
		goto out;

	ac_error_t *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		*err = &oom_error;
		goto out;
	}
	e->kind = kind;
	e->errnum = errnum;

	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		e->msg[0] = '\0';

	if (errnum != 0) {
		size_t used = strlen(e->msg);
		char ebuf[128];
		const char *estr = strerror_r(errnum, ebuf, sizeof(ebuf));
		snprintf(e->msg + used, sizeof(e->msg) - used, ": %s", estr);
	}
	one_line(e->msg, sizeof(e->msg));
	*err = e;
out:
	errno = saved_errno;
	return -1;
}

void ac_error_prefix(ac_error_t **err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL || *err == &oom_error)
		return;
	int saved_errno = errno;
	ac_error_t *e = *err;
	char prefix[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		prefix[0] = '\0';

	char joined[sizeof(e->msg)];
	size_t cap = sizeof(joined) - 1, used = 0;
	const char *parts[] = {prefix, ": ", e->msg};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && used < cap; i++) {
		size_t len = strnlen(parts[i], cap - used);
		memcpy(joined + used, parts[i], len);
		used += len;
	}
	joined[used] = '\0';
	memcpy(e->msg, joined, used + 1);
	one_line(e->msg, sizeof(e->msg));
	errno = saved_errno;
}

void ac_error_free(ac_error_t *err)
{
	if (err != &oom_error)
		free(err);
}

int ac_error_exit_code(const ac_error_t *err)
{
	if (err != NULL && err->exit_code > 0 && err->exit_code < 256)
		return err->exit_code;
	if (err != NULL && err->kind == AC_ERR_INVALID)
		return 2;
	return 1;
}

int ac_error_http_status(const ac_error_t *err)
{
	if (err == NULL)
		return 500;
	switch (err->kind) {
	case AC_ERR_INVALID:
		return 400;
	case AC_ERR_NOT_FOUND:
		return 404;
	case AC_ERR_EXISTS:
	case AC_ERR_STATE:
	case AC_ERR_NOT_RUNNING:
		return 409;
	case AC_ERR_BACKEND:
		return 502;
	case AC_ERR_UNSUPPORTED:
		return 501;
	case AC_ERR_PERMISSION:
		return 403;
	case AC_ERR_INTERNAL:
		break;
	}
	return 500;
}
