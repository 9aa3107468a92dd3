/* The HTTP API's own request metrics, agentkernel's families (its metrics.rs):
 * agentkernel_http_requests_total{method,path,status} and
 * agentkernel_http_request_duration_seconds{method,path}, per serving process, in memory.
 * path is the route's pattern as agentkernel normalises it (a sandbox name is ":name"),
 * "unmatched" for a path no route has: label values stay bounded whatever clients send.
 * Recording is lock-free: a few relaxed atomic additions in a fixed table. */
#ifndef AGENTCELL_API_REQSTATS_H
#define AGENTCELL_API_REQSTATS_H

#include <stddef.h>

/* Routes counted apart; a table with more counts the rest as "unmatched". */
#define AC_REQSTATS_ROUTES_MAX 96

/* The serving start (uptime_seconds of GET /stats): once, when the server starts. */
void ac_reqstats_start(void);
/* Seconds since ac_reqstats_start (0 before). */
double ac_reqstats_uptime(void);
/* A small index for method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, else other). */
int ac_reqstats_method(const char *method);
/* One answered request: route from ac_api_route_index (-1: none), method from
 * ac_reqstats_method, the status sent and the seconds from its first byte to its answer. */
void ac_reqstats_record(int route, int method, int status, double secs);
/* Appends both families in the Prometheus text format to *text (malloc'd; left as it is
 * when memory runs out). */
void ac_reqstats_append(char **text);
/* agentkernel's label for a route pattern of ours: a segment after sandboxes, snapshots,
 * secrets, detached or hooks is ":name" (after pages ":page"); written to buf. */
void ac_reqstats_path_label(const char *pattern, char *buf, size_t size);

/* router.c: the route a request goes to (its method's when several share the path), else
 * the first whose path matches (a 405), else -1. */
int ac_api_route_index(const char *method, const char *path);

#endif
