/* Wall-clock time as RFC 3339 strings (the format agentkernel's state files use). */

#include "base/time.h"
#include "base/util.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ac_time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double ac_time_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian, eras of 400 years). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468; /* days from 0000-03-01 to 1970-01-01 */
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);			      /* [0, 146096] */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		      /* [0, 365] */
	unsigned mp = (5 * doy + 2) / 153;				      /* March = 0 */
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void ac_time_format_rfc3339(int64_t unix_ms, char buf[32])
{
	/* Not gmtime_r: glibc reads /etc/localtime on its first call even for UTC, and the
	 * audit log stamps every exec. Floor division, so instants before 1970 keep a
	 * non-negative millisecond part and time of day. */
	int64_t secs = unix_ms / 1000, ms = unix_ms % 1000;
	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	int64_t year;
	unsigned mon, day;
	civil_from_days(days, &year, &mon, &day);
	/* Years outside 0000-9999 cannot be written in RFC 3339; they get as many digits
	 * (and a sign) as they need. The widest (a 9-digit negative year) fits in 32 bytes;
	 * the larger scratch buffer only keeps the compiler's worst-case estimate satisfied. */
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)year, mon,
		 day, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)ms);
	size_t n = strnlen(tmp, 31);
	memcpy(buf, tmp, n);
	buf[n] = '\0';
}

void ac_time_now_rfc3339(char buf[32])
{
	ac_time_format_rfc3339(ac_time_now_ms(), buf);
}

/* Reads exactly n decimal digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[month - 1];
}

int ac_time_parse_rfc3339(const char *s, int64_t *unix_ms)
{
	if (s == NULL)
		goto bad;
	const char *p = s;
	int year, mon, day, hour, min, sec;
	if (!digits(&p, 4, &year) || !expect(&p, '-') || !digits(&p, 2, &mon) || !expect(&p, '-') ||
	    !digits(&p, 2, &day))
		goto bad;
	/* RFC 3339 5.6: "T" and "Z" may be lower case. */
	if (*p != 'T' && *p != 't')
		goto bad;
	p++;
	if (!digits(&p, 2, &hour) || !expect(&p, ':') || !digits(&p, 2, &min) || !expect(&p, ':') ||
	    !digits(&p, 2, &sec))
		goto bad;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
	    min > 59 || sec > 60) /* 60: a leap second, folded into the next minute */
		goto bad;

	int frac_ms = 0;
	if (*p == '.') {
		p++;
		int ndigits = 0;
		for (; *p >= '0' && *p <= '9'; p++, ndigits++) {
			if (ndigits < 3)
				frac_ms = frac_ms * 10 + (*p - '0');
		}
		if (ndigits == 0)
			goto bad;
		for (int i = ndigits; i < 3; i++)
			frac_ms *= 10;
	}

	int offset_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		int oh, om;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			goto bad;
		offset_s = sign * (oh * 3600 + om * 60);
	} else {
		goto bad;
	}
	if (*p != '\0')
		goto bad;

	struct tm tm = {
	    .tm_year = year - 1900,
	    .tm_mon = mon - 1,
	    .tm_mday = day,
	    .tm_hour = hour,
	    .tm_min = min,
	    .tm_sec = sec,
	};
	errno = 0;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 && errno != 0)
		goto bad;
	if (unix_ms != NULL)
		*unix_ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}
