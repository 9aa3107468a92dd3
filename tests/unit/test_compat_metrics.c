/* Unit tests for agentkernel's observability shapes: the audit log's agentkernel format
 * (src/core/audit.c: conversion both ways, the writer, the reader of mixed logs), the
 * agentkernel_* families and GET /stats computed from such logs (src/core/metrics.c), and
 * the HTTP request counters (src/api/reqstats.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentcell/manager.h"
#include "agentcell/metrics.h"
#include "api/http.h"
#include "api/reqstats.h"
#include "base/time.h"
#include "base/util.h"

/* ------------------------------------------------------------------ helpers */

/* The keys of o but "agentcell", sorted, comma-separated. */
static char *keys_of(const json_t *o)
{
	const char *k[64];
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)o, key, v) if (strcmp(key, "agentcell") && n < 64) k[n++] =
	    key;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			const char *t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	static char buf[1024];
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(buf, i ? "," : "");
		strcat(buf, k[i]);
	}
	return buf;
}

static json_t *rec(const char *event, const char *sandbox, const char *details)
{
	json_t *d = json_loads(details, 0, NULL);
	assert_non_null(d);
	return json_pack("{ss ss so so}", "timestamp", "2026-01-02T03:04:05.678Z", "event", event,
			 "sandbox", sandbox ? json_string(sandbox) : json_null(), "details", d);
}

static json_t *ak(const char *event, const char *sandbox, const char *details, const char *backend,
		  const char *profile)
{
	json_t *r = rec(event, sandbox, details);
	json_t *o = ac_audit_to_agentkernel(r, "2026-01-02T03:04:05.678901234Z", 42, "alice",
					    backend, profile);
	json_decref(r);
	assert_non_null(o);
	return o;
}

static const char *s_of(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ------------------------------------------------------------------ format option */

static void test_format_parse(void **state)
{
	ac_audit_format_t f = AC_AUDIT_FORMAT_AGENTCELL;
	assert_int_equal(ac_audit_format_parse("agentkernel", &f), 0);
	assert_int_equal(f, AC_AUDIT_FORMAT_AGENTKERNEL);
	assert_int_equal(ac_audit_format_parse("agentcell", &f), 0);
	assert_int_equal(f, AC_AUDIT_FORMAT_AGENTCELL);
	f = AC_AUDIT_FORMAT_AGENTKERNEL;
	assert_int_equal(ac_audit_format_parse("AgentKernel", &f), -1);
	assert_int_equal(ac_audit_format_parse("", &f), -1);
	assert_int_equal(ac_audit_format_parse(NULL, &f), -1);
	assert_int_equal(f, AC_AUDIT_FORMAT_AGENTKERNEL); /* untouched */

	json_t *cfg = json_loads("{\"audit\":{\"format\":\"agentkernel\"}}", 0, NULL);
	assert_int_equal(ac_audit_format_of_config(cfg), AC_AUDIT_FORMAT_AGENTKERNEL);
	json_decref(cfg);
	cfg = json_loads("{\"sandbox\":{}}", 0, NULL);
	assert_int_equal(ac_audit_format_of_config(cfg), AC_AUDIT_FORMAT_AGENTCELL);
	json_decref(cfg);
	assert_int_equal(ac_audit_format_of_config(NULL), AC_AUDIT_FORMAT_AGENTCELL);
}

/* ------------------------------------------------------------------ to agentkernel */

static void test_to_agentkernel_envelope(void **state)
{
	json_t *o = ak("stopped", "box", "{\"duration_ms\":12.5}", NULL, NULL);
	/* AuditEntry's fields first, in its order, then the event's (serde flatten). */
	const char *order[] = {"timestamp", "pid", "user", "type", "name", "agentcell"};
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		assert_true(i < AC_ARRAY_SIZE(order));
		assert_string_equal(key, order[i++]);
	}
	assert_int_equal(i, AC_ARRAY_SIZE(order));
	assert_string_equal(s_of(o, "timestamp"), "2026-01-02T03:04:05.678901234Z");
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), 42);
	assert_string_equal(s_of(o, "user"), "alice");
	assert_string_equal(s_of(o, "type"), "sandbox_stopped");
	assert_string_equal(s_of(o, "name"), "box");
	/* What agentkernel has no field for stays under "agentcell". */
	json_t *ac = json_object_get(o, "agentcell");
	assert_string_equal(s_of(ac, "event"), "stopped");
	assert_true(json_number_value(
			json_object_get(json_object_get(ac, "details"), "duration_ms")) == 12.5);
	json_decref(o);

	/* No USER: null, as agentkernel's Option. */
	json_t *r = rec("removed", "box", "{}");
	o = ac_audit_to_agentkernel(r, "t", 1, NULL, NULL, NULL);
	assert_true(json_is_null(json_object_get(o, "user")));
	assert_string_equal(s_of(o, "type"), "sandbox_removed");
	assert_string_equal(keys_of(o), "name,pid,timestamp,type,user");
	json_decref(o);
	json_decref(r);
}

static void test_to_agentkernel_events(void **state)
{
	json_t *o =
	    ak("created", "b1",
	       "{\"image\":\"alpine:3.20\",\"labels\":{\"team\":\"x\"},\"backend\":\"docker\"}",
	       "docker", NULL);
	assert_string_equal(s_of(o, "type"), "sandbox_created");
	assert_string_equal(keys_of(o), "backend,image,labels,name,pid,timestamp,type,user");
	assert_string_equal(s_of(o, "name"), "b1");
	assert_string_equal(s_of(o, "image"), "alpine:3.20");
	assert_string_equal(s_of(o, "backend"), "docker");
	assert_string_equal(s_of(json_object_get(o, "labels"), "team"), "x");
	json_decref(o);
	/* Empty labels are left out (skip_serializing_if = is_empty); the state's backend wins
	 * over none in the details. */
	o = ak("created", "b2", "{\"image\":\"host\",\"labels\":{}}", "native", NULL);
	assert_string_equal(keys_of(o), "backend,image,name,pid,timestamp,type,user");
	assert_string_equal(s_of(o, "backend"), "native");
	json_decref(o);

	o = ak("started", "b1", "{\"duration_ms\":3}", "native", "restrictive");
	assert_string_equal(s_of(o, "type"), "sandbox_started");
	assert_string_equal(keys_of(o), "name,pid,profile,timestamp,type,user");
	assert_string_equal(s_of(o, "profile"), "restrictive");
	json_decref(o);
	o = ak("started", "b1", "{}", NULL, NULL);
	assert_true(json_is_null(json_object_get(o, "profile")));
	json_decref(o);

	o = ak("exec", "b1", "{\"command\":[\"echo\",\"hi\"],\"exit_code\":3,\"duration_ms\":5}",
	       NULL, NULL);
	assert_string_equal(s_of(o, "type"), "command_executed");
	assert_string_equal(keys_of(o), "command,exit_code,pid,sandbox,timestamp,type,user");
	assert_string_equal(s_of(o, "sandbox"), "b1");
	assert_int_equal(json_array_size(json_object_get(o, "command")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "command"), 1)),
			    "hi");
	assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 3);
	json_decref(o);
	/* A command that did not start: exit_code null. */
	o = ak("exec", "b1", "{\"command\":[\"nope\"],\"error\":\"cannot start\"}", NULL, NULL);
	assert_true(json_is_null(json_object_get(o, "exit_code")));
	json_decref(o);

	o = ak("file_written", "b1", "{\"path\":\"/tmp/x\"}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "file_written");
	assert_string_equal(keys_of(o), "path,pid,sandbox,timestamp,type,user");
	assert_string_equal(s_of(o, "path"), "/tmp/x");
	json_decref(o);
	o = ak("file_read", "b1", "{\"path\":\"/etc/os-release\"}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "file_read");
	assert_string_equal(s_of(o, "path"), "/etc/os-release");
	json_decref(o);

	o = ak("policy_violation", "b1", "{\"command\":\"curl\",\"rule\":\"command_policy\"}", NULL,
	       NULL);
	assert_string_equal(s_of(o, "type"), "policy_violation");
	assert_string_equal(keys_of(o), "details,pid,policy,sandbox,timestamp,type,user");
	assert_string_equal(s_of(o, "policy"), "command_policy");
	assert_string_equal(s_of(o, "details"), "curl");
	json_decref(o);

	o = ak("error", "b1", "{\"operation\":\"start\",\"error\":\"no such image\"}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "sandbox_error");
	assert_string_equal(keys_of(o), "error,name,pid,timestamp,type,user");
	assert_string_equal(s_of(o, "error"), "no such image");
	json_decref(o);
	o = ak("init_script_failed", "b1", "{\"error\":\"exit 1\"}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "sandbox_error");
	json_decref(o);

	/* Events agentkernel does not have keep our name as the type. */
	o = ak("image_pull", NULL, "{\"reference\":\"alpine\"}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "image_pull");
	assert_string_equal(keys_of(o), "pid,timestamp,type,user");
	json_decref(o);
	o = ak("snapshot", "b1", "{}", NULL, NULL);
	assert_string_equal(s_of(o, "type"), "snapshot");
	assert_string_equal(s_of(o, "sandbox"), "b1");
	json_decref(o);
}

/* ------------------------------------------------------------------ reading back */

static void test_normalize(void **state)
{
	/* Ours pass through. */
	json_t *r = rec("exec", "b1", "{\"exit_code\":0}");
	json_t *n = ac_audit_normalize(r);
	assert_ptr_equal(n, r);
	json_decref(n);
	json_decref(r);

	/* Written in agentkernel's format by us: exactly the record again. */
	const char *events[][3] = {
	    {"created", "b1", "{\"image\":\"host\",\"backend\":\"native\"}"},
	    {"started", "b1", "{\"duration_ms\":7.25}"},
	    {"exec", "b1", "{\"command\":[\"ls\"],\"exit_code\":0,\"duration_ms\":1}"},
	    {"volume_create", NULL, "{\"volume\":\"v\"}"},
	    {"policy_violation", "b1", "{\"command\":\"curl\",\"rule\":\"command_policy\"}"}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(events); i++) {
		r = rec(events[i][0], events[i][1], events[i][2]);
		json_t *o =
		    ac_audit_to_agentkernel(r, "2026-01-02T03:04:05.678Z", 1, "u", NULL, NULL);
		n = ac_audit_normalize(o);
		assert_non_null(n);
		if (!json_equal(n, r)) {
			char *a = json_dumps(n, JSON_COMPACT), *b = json_dumps(r, JSON_COMPACT);
			fail_msg("round trip of %s: %s != %s", events[i][0], a, b);
		}
		json_decref(n);
		json_decref(o);
		json_decref(r);
	}

	/* Written by agentkernel itself (no "agentcell" key). */
	json_t *line = json_loads(
	    "{\"timestamp\":\"2026-01-02T03:04:05Z\",\"pid\":9,\"user\":\"bob\",\"type\":"
	    "\"sandbox_created\",\"name\":\"k1\",\"image\":\"python:3.12\",\"backend\":\"docker\"}",
	    0, NULL);
	n = ac_audit_normalize(line);
	assert_string_equal(s_of(n, "event"), "created");
	assert_string_equal(s_of(n, "sandbox"), "k1");
	assert_string_equal(s_of(n, "timestamp"), "2026-01-02T03:04:05Z");
	assert_string_equal(s_of(json_object_get(n, "details"), "backend"), "docker");
	assert_string_equal(s_of(json_object_get(n, "details"), "image"), "python:3.12");
	json_decref(n);
	json_decref(line);
	line = json_loads("{\"timestamp\":\"t\",\"pid\":9,\"user\":null,\"type\":"
			  "\"command_executed\",\"sandbox\":\"k1\",\"command\":[\"ls\"],"
			  "\"exit_code\":null}",
			  0, NULL);
	n = ac_audit_normalize(line);
	assert_string_equal(s_of(n, "event"), "exec");
	assert_string_equal(s_of(n, "sandbox"), "k1");
	assert_true(json_is_null(json_object_get(json_object_get(n, "details"), "exit_code")));
	json_decref(n);
	json_decref(line);
	line = json_loads("{\"timestamp\":\"t\",\"type\":\"policy_violation\",\"sandbox\":\"k1\","
			  "\"policy\":\"net\",\"details\":\"blocked\"}",
			  0, NULL);
	n = ac_audit_normalize(line);
	assert_string_equal(s_of(n, "event"), "policy_violation");
	assert_string_equal(s_of(json_object_get(n, "details"), "rule"), "net");
	assert_string_equal(s_of(json_object_get(n, "details"), "command"), "blocked");
	json_decref(n);
	json_decref(line);
	line = json_loads("{\"timestamp\":\"t\",\"type\":\"ssh_connected\",\"sandbox\":\"k1\","
			  "\"host_port\":2222,\"ssh_user\":\"sandbox\"}",
			  0, NULL);
	n = ac_audit_normalize(line);
	assert_string_equal(s_of(n, "event"), "ssh_connected");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(n, "details"), "host_port")), 2222);
	json_decref(n);
	json_decref(line);

	/* Neither format. */
	line = json_loads("{\"timestamp\":\"t\"}", 0, NULL);
	assert_null(ac_audit_normalize(line));
	json_decref(line);
	line = json_loads("[1]", 0, NULL);
	assert_null(ac_audit_normalize(line));
	json_decref(line);
	assert_null(ac_audit_normalize(NULL));
}

/* ------------------------------------------------------------------ a manager's log */

typedef struct fixture {
	char home[64];
	ac_manager_t *m;
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/ac-compat-metrics.XXXXXX");
	if (!mkdtemp(f->home))
		return -1;
	ac_error_t *e = NULL;
	if (ac_manager_open(f->home, &f->m, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	ac_manager_free(f->m);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->home);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void write_log(fixture_t *f, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/audit.jsonl", f->home);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void expect_line(const char *text, const char *line)
{
	char want[512];
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_metrics_of_mixed_log(void **state)
{
	fixture_t *f = *state;
	char now[32], old[32], log[4096];
	ac_time_now_rfc3339(now);
	ac_time_format_rfc3339(ac_time_now_ms() - 40LL * 86400 * 1000, old);
	snprintf(log, sizeof(log),
		 /* ours */
		 "{\"timestamp\":\"%s\",\"event\":\"created\",\"sandbox\":\"d1\",\"details\":{"
		 "\"image\":\"alpine\",\"backend\":\"docker\"}}\n"
		 "{\"timestamp\":\"%s\",\"event\":\"exec\",\"sandbox\":\"d1\",\"details\":{"
		 "\"exit_code\":0,\"duration_ms\":20}}\n"
		 /* ours in agentkernel's format */
		 "{\"timestamp\":\"%s\",\"pid\":1,\"user\":null,\"type\":\"command_executed\","
		 "\"sandbox\":\"d1\",\"command\":[\"x\"],\"exit_code\":1,\"agentcell\":{\"event\":"
		 "\"exec\",\"details\":{\"exit_code\":1,\"duration_ms\":200}}}\n"
		 /* agentkernel's own */
		 "{\"timestamp\":\"%s\",\"pid\":2,\"user\":\"u\",\"type\":\"sandbox_created\","
		 "\"name\":\"p1\",\"image\":\"alpine\",\"backend\":\"podman\"}\n"
		 "{\"timestamp\":\"%s\",\"pid\":2,\"user\":\"u\",\"type\":\"command_executed\","
		 "\"sandbox\":\"p1\",\"command\":[\"ls\"],\"exit_code\":0}\n"
		 "{\"timestamp\":\"%s\",\"pid\":2,\"user\":\"u\",\"type\":\"sandbox_removed\","
		 "\"name\":\"p1\"}\n"
		 "not json\n",
		 old, old, now, now, now, now);
	write_log(f, log);

	char *text = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_manager_metrics(f->m, &text, &e), 0);
	expect_line(text, "agentcell_exec_total 3");
	expect_line(text, "agentcell_events_total{event=\"created\"} 2");
	expect_line(text, "agentkernel_commands_total{backend=\"docker\"} 2");
	expect_line(text, "agentkernel_commands_total{backend=\"podman\"} 1");
	expect_line(text,
		    "agentkernel_sandbox_lifecycle_total{action=\"created\",backend=\"docker\"} 1");
	expect_line(text,
		    "agentkernel_sandbox_lifecycle_total{action=\"created\",backend=\"podman\"} 1");
	expect_line(text,
		    "agentkernel_sandbox_lifecycle_total{action=\"removed\",backend=\"podman\"} 1");
	/* agentkernel's buckets: 0.02 s is in le="0.05", 0.2 s in le="0.25". */
	expect_line(
	    text, "agentkernel_command_duration_seconds_bucket{backend=\"docker\",le=\"0.01\"} 0");
	expect_line(
	    text, "agentkernel_command_duration_seconds_bucket{backend=\"docker\",le=\"0.05\"} 1");
	expect_line(
	    text, "agentkernel_command_duration_seconds_bucket{backend=\"docker\",le=\"0.25\"} 2");
	expect_line(
	    text, "agentkernel_command_duration_seconds_bucket{backend=\"docker\",le=\"+Inf\"} 2");
	expect_line(text, "agentkernel_command_duration_seconds_count{backend=\"docker\"} 2");
	expect_line(text, "agentkernel_sandboxes_active 0");
	expect_line(text, "# TYPE agentkernel_sandbox_lifecycle_total counter");
	expect_line(text, "# TYPE agentkernel_command_duration_seconds histogram");
	expect_line(text, "agentkernel_build_info{version=\"" AGENTCELL_VERSION "\"} 1");
	free(text);

	json_t *s = NULL;
	assert_int_equal(ac_manager_stats(f->m, 12.7, 10, &s, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "sandbox_count")), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "sandbox_limit")), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "uptime_seconds")), 12);
	assert_string_equal(s_of(s, "version"), AGENTCELL_VERSION);
	assert_string_equal(s_of(s, "backend"), "native");
	json_t *u = json_object_get(s, "resource_usage");
	assert_true(json_integer_value(json_object_get(u, "memory_total_mb")) > 0);
	assert_true(json_is_number(json_object_get(u, "cpu_percent")));
	assert_non_null(json_object_get(u, "disk_used_mb"));
	json_t *st = json_object_get(s, "stats");
	assert_int_equal(json_integer_value(json_object_get(st, "total_executions")), 3);
	assert_int_equal(json_integer_value(json_object_get(st, "executions_last_30d")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "sandboxes_created")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "sandboxes_removed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "sandboxes_active")), 1);
	char *tb = json_dumps(json_object_get(st, "top_backends"), JSON_COMPACT);
	assert_string_equal(tb, "[[\"docker\",1],[\"podman\",1]]");
	free(tb);
	char *ti = json_dumps(json_object_get(st, "top_images"), JSON_COMPACT);
	assert_string_equal(ti, "[[\"alpine\",2]]");
	free(ti);
	char day[11];
	snprintf(day, sizeof(day), "%.10s", old);
	assert_string_equal(s_of(st, "first_entry"), day);
	snprintf(day, sizeof(day), "%.10s", now);
	assert_string_equal(s_of(st, "last_entry"), day);
	json_decref(s);

	/* An empty log: no first or last entry (null, as agentkernel's Option). */
	write_log(f, "");
	assert_int_equal(ac_manager_stats(f->m, 0, 0, &s, &e), 0);
	st = json_object_get(s, "stats");
	assert_true(json_is_null(json_object_get(st, "first_entry")));
	assert_int_equal(json_array_size(json_object_get(st, "top_images")), 0);
	json_decref(s);
}

static void test_writer(void **state)
{
	fixture_t *f = *state;
	write_log(f, "");
	ac_audit_set_format(AC_AUDIT_FORMAT_AGENTKERNEL);
	assert_int_equal(ac_audit_format(f->m), AC_AUDIT_FORMAT_AGENTKERNEL);
	assert_int_equal(ac_audit_log(f->m, "exec", "w1",
				      json_pack("{s[s] si}", "command", "ls", "exit_code", 0)),
			 0);
	ac_audit_set_format(AC_AUDIT_FORMAT_AGENTCELL);
	assert_int_equal(ac_audit_log(f->m, "stopped", "w1", NULL), 0);

	char path[128];
	snprintf(path, sizeof(path), "%s/audit.jsonl", f->home);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char line[2048];
	assert_non_null(fgets(line, sizeof(line), fp));
	json_t *o = json_loads(line, 0, NULL);
	assert_string_equal(s_of(o, "type"), "command_executed");
	assert_string_equal(s_of(o, "sandbox"), "w1");
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
	/* chrono's RFC 3339: UTC, a fraction of 3, 6 or 9 digits or none. */
	regex_t re;
	assert_int_equal(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
				 "(\\.([0-9]{3}|[0-9]{6}|[0-9]{9}))?Z$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	assert_int_equal(regexec(&re, s_of(o, "timestamp"), 0, NULL, 0), 0);
	regfree(&re);
	json_decref(o);
	assert_non_null(fgets(line, sizeof(line), fp));
	o = json_loads(line, 0, NULL);
	assert_string_equal(s_of(o, "event"), "stopped");
	json_decref(o);
	fclose(fp);

	/* Read back in one shape. */
	json_t *all = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_audit_read(f->m, "w1", 0, &all, &e), 0);
	assert_int_equal(json_array_size(all), 2);
	assert_string_equal(s_of(json_array_get(all, 0), "event"), "exec");
	assert_string_equal(s_of(json_array_get(all, 1), "event"), "stopped");
	json_decref(all);
}

/* ------------------------------------------------------------------ HTTP counters */

static void test_path_label(void **state)
{
	static const char *const cases[][2] = {
	    {"/health", "/health"},
	    {"/sandboxes", "/sandboxes"},
	    {"/sandboxes/:name", "/sandboxes/:name"},
	    {"/sandboxes/:name/exec", "/sandboxes/:name/exec"},
	    {"/sandboxes/:name/exec/detached/:id", "/sandboxes/:name/exec/detached/:name"},
	    {"/sandboxes/:name/exec/detached/:id/logs",
	     "/sandboxes/:name/exec/detached/:name/logs"},
	    {"/sandboxes/:name/files/*", "/sandboxes/:name/files/*"},
	    {"/sandboxes/by-uuid/:uuid", "/sandboxes/:name/:uuid"},
	    {"/secrets/:key", "/secrets/:name"},
	    {"/sandboxes/x/browser/pages/p1/click", "/sandboxes/:name/browser/pages/:page/click"},
	    {"/", "/"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		char buf[256];
		ac_reqstats_path_label(cases[i][0], buf, sizeof(buf));
		assert_string_equal(buf, cases[i][1]);
	}
}

static void test_route_index(void **state)
{
	const char *method, *pattern;
	bool open;
	int r = ac_api_route_index("POST", "/sandboxes/x1/exec");
	assert_true(r >= 0);
	assert_true(ac_api_route_at((size_t)r, &method, &pattern, &open));
	assert_string_equal(pattern, "/sandboxes/:name/exec");
	assert_string_equal(method, "POST");
	/* HEAD goes to the GET route; a wrong method to the path's first route (a 405). */
	r = ac_api_route_index("HEAD", "/sandboxes/x1/");
	assert_true(ac_api_route_at((size_t)r, &method, &pattern, &open));
	assert_string_equal(pattern, "/sandboxes/:name");
	assert_string_equal(method, "GET");
	r = ac_api_route_index("PUT", "/health");
	assert_true(ac_api_route_at((size_t)r, &method, &pattern, &open));
	assert_string_equal(pattern, "/health");
	r = ac_api_route_index("DELETE", "/sandboxes/x1");
	assert_true(ac_api_route_at((size_t)r, &method, &pattern, &open));
	assert_string_equal(method, "DELETE");
	r = ac_api_route_index("GET", "/stats");
	assert_true(ac_api_route_at((size_t)r, &method, &pattern, &open));
	assert_string_equal(pattern, "/stats");
	assert_false(open); /* behind the API key, as every route but /health in agentkernel */
	assert_int_equal(ac_api_route_index("GET", "/no/such/thing"), -1);
	assert_int_equal(ac_api_route_index("GET", "/sandboxes/x1/files/"), -1);
}

static void test_reqstats(void **state)
{
	int health = ac_api_route_index("GET", "/health");
	int exec = ac_api_route_index("POST", "/sandboxes/a/exec");
	int get = ac_reqstats_method("GET"), post = ac_reqstats_method("POST");
	assert_int_equal(ac_reqstats_method("FOO"), ac_reqstats_method(NULL));
	assert_int_not_equal(ac_reqstats_method("FOO"), get);
	ac_reqstats_record(health, get, 200, 0.0005);
	ac_reqstats_record(health, get, 200, 0.003);
	ac_reqstats_record(exec, post, 404, 0.02);
	ac_reqstats_record(exec, post, 200, 2);
	ac_reqstats_record(-1, ac_reqstats_method("FOO"), 404, 0.0001);
	/* More distinct statuses than a series keeps: the rest count as "other". */
	int del = ac_reqstats_method("DELETE");
	for (int s = 200; s < 230; s++)
		ac_reqstats_record(exec, del, s, 0.001);

	char *text = strdup("# before\n");
	ac_reqstats_append(&text);
	assert_true(!strncmp(text, "# before\n", 9));
	expect_line(text, "# TYPE agentkernel_http_requests_total counter");
	expect_line(
	    text,
	    "agentkernel_http_requests_total{method=\"GET\",path=\"/health\",status=\"200\"} 2");
	expect_line(text, "agentkernel_http_requests_total{method=\"POST\",path=\"/sandboxes/"
			  ":name/exec\",status=\"404\"} 1");
	expect_line(text, "agentkernel_http_requests_total{method=\"POST\",path=\"/sandboxes/"
			  ":name/exec\",status=\"200\"} 1");
	expect_line(text, "agentkernel_http_requests_total{method=\"OTHER\",path=\"unmatched\","
			  "status=\"404\"} 1");
	expect_line(text, "agentkernel_http_requests_total{method=\"DELETE\",path=\"/sandboxes/"
			  ":name/exec\",status=\"214\"} 1");
	expect_line(text, "agentkernel_http_requests_total{method=\"DELETE\",path=\"/sandboxes/"
			  ":name/exec\",status=\"other\"} 15");
	expect_line(text, "# TYPE agentkernel_http_request_duration_seconds histogram");
	expect_line(text, "agentkernel_http_request_duration_seconds_bucket{method=\"GET\",path="
			  "\"/health\",le=\"0.001\"} 1");
	expect_line(text, "agentkernel_http_request_duration_seconds_bucket{method=\"GET\",path="
			  "\"/health\",le=\"0.005\"} 2");
	expect_line(text, "agentkernel_http_request_duration_seconds_bucket{method=\"POST\",path="
			  "\"/sandboxes/:name/exec\",le=\"1\"} 1");
	expect_line(text, "agentkernel_http_request_duration_seconds_bucket{method=\"POST\",path="
			  "\"/sandboxes/:name/exec\",le=\"2.5\"} 2");
	expect_line(text, "agentkernel_http_request_duration_seconds_bucket{method=\"POST\",path="
			  "\"/sandboxes/:name/exec\",le=\"+Inf\"} 2");
	expect_line(text, "agentkernel_http_request_duration_seconds_count{method=\"POST\",path="
			  "\"/sandboxes/:name/exec\"} 2");
	expect_line(text, "agentkernel_http_request_duration_seconds_sum{method=\"POST\",path="
			  "\"/sandboxes/:name/exec\"} 2.020000000");
	/* Only series that saw requests. */
	assert_null(strstr(text, "path=\"/openapi.json\""));
	free(text);
	assert_true(ac_reqstats_uptime() == 0); /* no server started in this process */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_parse),
	    cmocka_unit_test(test_to_agentkernel_envelope),
	    cmocka_unit_test(test_to_agentkernel_events),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test_setup_teardown(test_metrics_of_mixed_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
	    cmocka_unit_test(test_path_label),
	    cmocka_unit_test(test_route_index),
	    cmocka_unit_test(test_reqstats),
	};
	return cmocka_run_group_tests_name("compat_metrics", tests, NULL, NULL);
}
