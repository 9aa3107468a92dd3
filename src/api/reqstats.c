/* agentkernel_http_* metrics of the serving process (reqstats.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/http.h"
#include "api/reqstats.h"
#include "base/time.h"
#include "base/util.h"

static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB	    (sizeof(bounds) / sizeof(bounds[0]))
#define NSTATUS	    16 /* distinct statuses of one route and method; the last is "other" */
#define STATUS_MORE (-1)

static const char *const methods[] = {"GET",   "HEAD",	 "POST",    "PUT",
				      "PATCH", "DELETE", "OPTIONS", "OTHER"};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

typedef struct series {
	unsigned long long bucket[NB]; /* not cumulative */
	unsigned long long count;
	unsigned long long sum_ns;
	int status[NSTATUS]; /* 0: free */
	unsigned long long n[NSTATUS];
} series_t;

/* [AC_REQSTATS_ROUTES_MAX]: unmatched. About 300 KiB, touched only where requests went. */
static series_t table[AC_REQSTATS_ROUTES_MAX + 1][NMETHODS];
static struct timespec started;

void ac_reqstats_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &started);
}

double ac_reqstats_uptime(void)
{
	if (!started.tv_sec && !started.tv_nsec)
		return 0;
	return ac_time_since(&started);
}

int ac_reqstats_method(const char *method)
{
	for (size_t i = 0; i + 1 < NMETHODS; i++)
		if (method && !strcmp(method, methods[i]))
			return (int)i;
	return (int)NMETHODS - 1;
}

static void add(unsigned long long *p, unsigned long long v)
{
	__atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

void ac_reqstats_record(int route, int method, int status, double secs)
{
	if (route < 0 || route >= AC_REQSTATS_ROUTES_MAX)
		route = AC_REQSTATS_ROUTES_MAX;
	if (method < 0 || method >= (int)NMETHODS)
		method = (int)NMETHODS - 1;
	if (status <= 0)
		status = STATUS_MORE;
	if (secs < 0)
		secs = 0;
	series_t *s = &table[route][method];
	size_t i;
	for (i = 0; i + 1 < NSTATUS; i++) {
		int cur = __atomic_load_n(&s->status[i], __ATOMIC_ACQUIRE);
		if (cur == status)
			break;
		if (cur == 0) {
			int zero = 0;
			if (__atomic_compare_exchange_n(&s->status[i], &zero, status, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
			    zero == status)
				break;
		}
	}
	if (i + 1 == NSTATUS)
		__atomic_store_n(&s->status[i], STATUS_MORE, __ATOMIC_RELEASE);
	add(&s->n[i], 1);
	for (size_t b = 0; b < NB; b++)
		if (secs <= bounds[b]) {
			add(&s->bucket[b], 1);
			break;
		}
	add(&s->sum_ns, (unsigned long long)(secs * 1e9));
	add(&s->count, 1);
}

void ac_reqstats_path_label(const char *pattern, char *buf, size_t size)
{
	size_t o = 0;
	const char *prev = NULL, *p = pattern;
	size_t prev_len = 0;
	buf[0] = '\0';
	while (*p == '/') {
		p++;
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		const char *seg = p;
		size_t seg_len = len;
		static const char *const named[] = {"sandboxes", "snapshots", "secrets", "detached",
						    "hooks"};
		for (size_t k = 0; prev && k < AC_ARRAY_SIZE(named); k++)
			if (prev_len == strlen(named[k]) && !memcmp(prev, named[k], prev_len)) {
				seg = ":name";
				seg_len = 5;
			}
		if (prev && prev_len == 5 && !memcmp(prev, "pages", 5)) {
			seg = ":page";
			seg_len = 5;
		}
		int n = snprintf(buf + o, size - o, "/%.*s", (int)seg_len, seg);
		if (n < 0 || (size_t)n >= size - o)
			return;
		o += (size_t)n;
		prev = p;
		prev_len = len;
		p = end;
	}
	if (o == 0)
		snprintf(buf, size, "/");
}

static bool route_label(size_t r, char *path, size_t size)
{
	const char *method, *pattern;
	bool open;
	if (r == AC_REQSTATS_ROUTES_MAX) {
		snprintf(path, size, "unmatched");
		return true;
	}
	if (!ac_api_route_at(r, &method, &pattern, &open))
		return false;
	ac_reqstats_path_label(pattern, path, size);
	return true;
}

void ac_reqstats_append(char **text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	fputs(*text ? *text : "", f);
	char path[256];
	fputs("# HELP agentkernel_http_requests_total Total HTTP API requests\n"
	      "# TYPE agentkernel_http_requests_total counter\n",
	      f);
	for (size_t r = 0; r <= AC_REQSTATS_ROUTES_MAX; r++)
		for (size_t m = 0; m < NMETHODS; m++) {
			series_t *s = &table[r][m];
			if (!__atomic_load_n(&s->count, __ATOMIC_RELAXED) ||
			    !route_label(r, path, sizeof(path)))
				continue;
			for (size_t i = 0; i < NSTATUS; i++) {
				int st = __atomic_load_n(&s->status[i], __ATOMIC_ACQUIRE);
				unsigned long long n = __atomic_load_n(&s->n[i], __ATOMIC_RELAXED);
				if (st == 0 || n == 0)
					continue;
				char sbuf[16];
				if (st == STATUS_MORE)
					snprintf(sbuf, sizeof(sbuf), "other");
				else
					snprintf(sbuf, sizeof(sbuf), "%d", st);
				fprintf(f,
					"agentkernel_http_requests_total{method=\"%s\",path=\"%s\","
					"status=\"%s\"} %llu\n",
					methods[m], path, sbuf, n);
			}
		}
	fputs("# HELP agentkernel_http_request_duration_seconds HTTP request latency in "
	      "seconds\n"
	      "# TYPE agentkernel_http_request_duration_seconds histogram\n",
	      f);
	for (size_t r = 0; r <= AC_REQSTATS_ROUTES_MAX; r++)
		for (size_t m = 0; m < NMETHODS; m++) {
			series_t *s = &table[r][m];
			unsigned long long count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
			if (!count || !route_label(r, path, sizeof(path)))
				continue;
			unsigned long long cum = 0;
			for (size_t b = 0; b < NB; b++) {
				cum += __atomic_load_n(&s->bucket[b], __ATOMIC_RELAXED);
				fprintf(f,
					"agentkernel_http_request_duration_seconds_bucket{method="
					"\"%s\",path=\"%s\",le=\"%g\"} %llu\n",
					methods[m], path, bounds[b], cum);
			}
			/* Read apart from the buckets: +Inf is never below them. */
			if (count < cum)
				count = cum;
			fprintf(f,
				"agentkernel_http_request_duration_seconds_bucket{method=\"%s\","
				"path=\"%s\",le=\"+Inf\"} %llu\n",
				methods[m], path, count);
			fprintf(f,
				"agentkernel_http_request_duration_seconds_sum{method=\"%s\","
				"path=\"%s\"} %.9f\n",
				methods[m], path,
				(double)__atomic_load_n(&s->sum_ns, __ATOMIC_RELAXED) / 1e9);
			fprintf(f,
				"agentkernel_http_request_duration_seconds_count{method=\"%s\","
				"path=\"%s\"} %llu\n",
				methods[m], path, count);
		}
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return;
	}
	free(*text);
	*text = buf;
}
