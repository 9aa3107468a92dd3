/* Observability beside ac_manager_metrics (manager.h): GET /stats, the audit log's format
 * option and the agentkernel shapes of both (src/core/metrics.c, src/core/audit.c).
 *
 * The audit log is written in one of two formats, chosen by agentcell.toml's
 * [audit] format = "agentcell" (the default) | "agentkernel":
 *   agentcell    {"timestamp", "event", "sandbox", "details"}
 *   agentkernel  agentkernel's AuditEntry: {"timestamp" (RFC 3339, sub-second), "pid",
 *                "user", "type": "sandbox_created" | "sandbox_started" | ..., and the
 *                event's own fields (name, image, backend, sandbox, command, exit_code, ...)},
 *                plus one key "agentcell": {"event", "details"} that keeps what agentcell
 *                records beyond them (durations, exit details, events agentkernel has not).
 * Readers (ac_audit_read, the metrics, GET /audit, agentcell audit) accept both, also in
 * one file, and a log agentkernel itself wrote. */
#ifndef AGENTCELL_METRICS_H
#define AGENTCELL_METRICS_H

#include <jansson.h>

#include "agentcell/error.h"
#include "agentcell/manager.h"
#include "agentcell/version.h"

typedef enum ac_audit_format {
	AC_AUDIT_FORMAT_AGENTCELL = 0,
	AC_AUDIT_FORMAT_AGENTKERNEL = 1,
} ac_audit_format_t;

/* "agentcell" or "agentkernel": 0, else -1 (*f untouched). */
int ac_audit_format_parse(const char *s, ac_audit_format_t *f);
/* The format this process writes: set by ac_audit_set_format, else read once, at the first
 * record, from agentcell.toml as ac_config_load finds it without an explicit path (a file
 * that does not load: the default). */
ac_audit_format_t ac_audit_format(ac_manager_t *m);
/* Fixes the format of this process (a command that loaded its --config FILE). */
void ac_audit_set_format(ac_audit_format_t f);
/* The format a loaded configuration names ([audit] format; absent: agentcell). */
ac_audit_format_t ac_audit_format_of_config(const json_t *cfg);

/* Pure conversions (unit-tested). rec: an agentcell record {timestamp, event, sandbox,
 * details}; ts: agentkernel's timestamp; user may be NULL (JSON null); backend and profile
 * (may be NULL) come from the sandbox's state. Returns a new object. */
json_t *ac_audit_to_agentkernel(const json_t *rec, const char *ts, long pid, const char *user,
				const char *backend, const char *profile);
/* Any line of the log as an agentcell record (new reference), NULL when it is neither
 * format. */
json_t *ac_audit_normalize(json_t *line);

/* GET /stats's data: agentkernel's {sandbox_count, sandbox_limit, backend, uptime_seconds,
 * version, resource_usage{cpu_percent, memory_used_mb, memory_total_mb, disk_used_mb}}
 * and beside them "stats": agentkernel's analytics of the audit log (its stats.rs:
 * total_executions, executions_last_30d, sandboxes_created, sandboxes_removed,
 * sandboxes_active, top_images and top_backends as [name, count] pairs, first_entry,
 * last_entry), from the same figures as the agentkernel_* metrics. uptime_s: the serving process's. cpu_sample_ms: how long CPU use is sampled. */
int ac_manager_stats(ac_manager_t *m, double uptime_s, unsigned cpu_sample_ms, json_t **out,
		     ac_error_t **err);

#endif
