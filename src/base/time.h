/* Wall-clock time and RFC 3339 (the format agentkernel's state files use): the one
 * formatter and parser of timestamps (time.c). */
#ifndef AGENTCELL_BASE_TIME_H
#define AGENTCELL_BASE_TIME_H

#include <stdint.h>
#include <time.h>

/* Current time as RFC 3339 UTC with millisecond precision: "2026-11-23T11:20:32.123Z". */
void ac_time_now_rfc3339(char buf[32]);
void ac_time_format_rfc3339(int64_t unix_ms, char buf[32]);
/* Parses RFC 3339 (Z or +hh:mm offsets, optional fraction) into unix milliseconds. */
int ac_time_parse_rfc3339(const char *s, int64_t *unix_ms);
int64_t ac_time_now_ms(void);
/* Seconds on CLOCK_MONOTONIC since t0 (taken with clock_gettime(CLOCK_MONOTONIC)): how
 * long something took, immune to wall-clock steps. */
double ac_time_since(const struct timespec *t0);

#endif
