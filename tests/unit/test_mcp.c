/* Unit tests for src/mcp: JSON-RPC framing and errors, initialize negotiation, the tool
 * schemas, argument validation (-32602) versus tool failures (isError), and the session
 * handling of the Streamable HTTP entry point. Nothing here starts a sandbox or needs
 * root: the tools are called only where they fail before reaching the runtime.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/manager.h"
#include "base/io.h"
#include "base/util.h"
#include "base/json.h"
#include "mcp/internal.h"
#include "mcp/mcp.h"

typedef struct fixture {
	char home[64];
	ac_manager_t *m;
	ac_mcp_t *srv;
	ac_mcp_conn_t conn;
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/agentcell-test-mcp.XXXXXX");
	if (!mkdtemp(f->home))
		return -1;
	ac_error_t *e = NULL;
	if (ac_manager_open(f->home, &f->m, &e) < 0 ||
	    ac_mcp_new(f->m, "9.8.7", NULL, &f->srv, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e ? e->msg : "?");
		ac_error_free(e);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	ac_mcp_free(f->srv);
	ac_manager_free(f->m);
	ac_rm_rf_at(AT_FDCWD, f->home, NULL);
	free(f);
	return 0;
}

/* Sends text on the fixture's connection; the parsed reply (NULL: none). */
static json_t *send_msg(fixture_t *f, const char *text)
{
	char *reply = NULL;
	ac_error_t *e = NULL;
	assert_int_equal(ac_mcp_handle(f->srv, &f->conn, text, strlen(text), &reply, &e), 0);
	if (!reply)
		return NULL;
	assert_null(strchr(reply, '\n'));
	json_error_t jerr;
	json_t *j = json_loads(reply, 0, &jerr);
	if (!j)
		fail_msg("reply is not JSON: %s: %s", jerr.text, reply);
	free(reply);
	return j;
}

static json_t *sendf(fixture_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *sendf(fixture_t *f, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return send_msg(f, buf);
}

static int error_code(json_t *r)
{
	json_t *c = json_object_get(json_object_get(r, "error"), "code");
	if (!json_is_integer(c)) {
		char *s = json_dumps(r, 0);
		fail_msg("not an error reply: %s", s ? s : "?");
	}
	return (int)json_integer_value(c);
}

static const char *error_message(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"), "message"));
}

static void assert_error(json_t *r, int code, const char *needle)
{
	assert_non_null(r);
	assert_int_equal(error_code(r), code);
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	if (needle && !strstr(error_message(r), needle))
		fail_msg("error message '%s' lacks '%s'", error_message(r), needle);
	json_decref(r);
}

static json_t *call_tool(fixture_t *f, const char *tool, const char *args)
{
	return sendf(f,
		     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{"
		     "\"name\":\"%s\",\"arguments\":%s}}",
		     tool, args);
}

static void init(fixture_t *f, const char *version)
{
	json_t *r = sendf(f,
			  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
			  "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{"
			  "\"name\":\"unit\",\"version\":\"1\"}}}",
			  version);
	assert_non_null(json_object_get(r, "result"));
	json_decref(r);
}

/* The text of an isError result, which must be one. */
static const char *tool_error_text(json_t *r)
{
	json_t *res = json_object_get(r, "result");
	if (!json_is_true(json_object_get(res, "isError"))) {
		char *s = json_dumps(r, 0);
		fail_msg("not an isError result: %s", s ? s : "?");
	}
	json_t *c = json_array_get(json_object_get(res, "content"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "type")), "text");
	return json_string_value(json_object_get(c, "text"));
}

static void assert_tool_error(json_t *r, const char *needle)
{
	assert_non_null(r);
	const char *t = tool_error_text(r);
	if (needle && !strstr(t, needle))
		fail_msg("tool error '%s' lacks '%s'", t, needle);
	json_decref(r);
}

/* ------------------------------------------------------------------ framing */

static void test_parse_and_request_errors(void **state)
{
	fixture_t *f = *state;
	assert_error(send_msg(f, "garbage"), -32700, "Parse error");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,"), -32700, NULL);
	assert_error(send_msg(f, "{\"a\":1,\"a\":2}"), -32700, NULL); /* duplicate keys */
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x"), -32700,
		     NULL);
	assert_error(send_msg(f, "\"str\""), -32700, NULL);
	assert_error(send_msg(f, "[]"), -32600, "empty batch");
	assert_error(send_msg(f, "{}"), -32600, "jsonrpc");
	assert_error(send_msg(f, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}"), -32600,
		     "jsonrpc");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1}"), -32600, "no method");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}"), -32600, NULL);
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\","
				 "\"params\":3}"),
		     -32600, "params");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\","
				 "\"params\":[1]}"),
		     -32602, NULL);
	/* ids: strings and integers are echoed, anything else is refused with id null */
	json_t *r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":{\"x\":1},\"method\":\"ping\"}");
	assert_true(json_is_null(json_object_get(r, "id")));
	assert_error(r, -32600, "id");
	r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}");
	assert_true(json_is_null(json_object_get(r, "id")));
	assert_error(r, -32600, NULL);
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}"), -32600,
		     NULL);
	r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
	assert_true(json_is_object(json_object_get(r, "result")));
	assert_int_equal(json_object_size(json_object_get(r, "result")), 0);
	json_decref(r);
	r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":-9007199254740991,\"method\":\"ping\"}");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), -9007199254740991LL);
	json_decref(r);
	/* unknown methods */
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/list\"}"),
		     -32601, "resources/list");
	/* invalid UTF-8 never reaches a reply unescaped */
	r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xff\"}");
	assert_error(r, -32700, NULL);
}

static void test_notifications_and_responses(void **state)
{
	fixture_t *f = *state;
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
				"\"params\":{\"requestId\":3}}"));
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"no/such/thing\"}"));
	/* a response to a request of ours: nothing to answer */
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}"));
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":1,"
				"\"message\":\"x\"}}"));
}

static void test_batch(void **state)
{
	fixture_t *f = *state;
	json_t *r = send_msg(f, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
				"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
				"5,"
				"{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"nope\"}]");
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
	assert_int_equal(error_code(json_array_get(r, 1)), -32600);
	assert_int_equal(error_code(json_array_get(r, 2)), -32601);
	json_decref(r);
	/* only notifications: no reply at all */
	assert_null(
	    send_msg(f, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]"));
	/* too many */
	char big[(AC_MCP_BATCH_MAX + 1) * 64 + 16] = "[";
	for (int i = 0; i <= AC_MCP_BATCH_MAX; i++)
		strcat(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},");
	big[strlen(big) - 1] = ']';
	assert_error(send_msg(f, big), -32600, "at most");
}

static void test_oversize(void **state)
{
	char *reply = NULL;
	assert_int_equal(ac_mcp_oversize_reply(&reply, NULL), 0);
	json_t *r = json_loads(reply, 0, NULL);
	free(reply);
	assert_error(r, -32700, "longer than");
}

/* ------------------------------------------------------------------ initialize */

static void test_initialize_negotiation(void **state)
{
	fixture_t *f = *state;
	static const struct {
		const char *asked, *got;
	} cases[] = {
	    {"2024-11-05", "2024-11-05"}, {"2025-03-26", "2025-03-26"},
	    {"2025-06-18", "2025-06-18"}, {"2025-11-25", "2025-06-18"},
	    {"1999-01-01", "2025-06-18"}, {"garbage", "2025-06-18"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		ac_mcp_conn_t conn = {.shutdown = false};
		f->conn = conn;
		json_t *r = sendf(f,
				  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
				  "\"params\":{\"protocolVersion\":\"%s\",\"capabilities\":{},"
				  "\"clientInfo\":{\"name\":\"x\",\"version\":\"1\"}}}",
				  cases[i].asked);
		json_t *res = json_object_get(r, "result");
		assert_string_equal(json_string_value(json_object_get(res, "protocolVersion")),
				    cases[i].got);
		assert_string_equal(f->conn.version, cases[i].got);
		json_t *info = json_object_get(res, "serverInfo");
		assert_string_equal(json_string_value(json_object_get(info, "name")), "agentcell");
		assert_string_equal(json_string_value(json_object_get(info, "version")), "9.8.7");
		json_t *tools = json_object_get(json_object_get(res, "capabilities"), "tools");
		assert_true(json_is_false(json_object_get(tools, "listChanged")));
		assert_true(json_is_string(json_object_get(res, "instructions")));
		json_decref(r);
	}
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}"),
		     -32602, "protocolVersion");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
				 "\"params\":{\"protocolVersion\":20250618}}"),
		     -32602, "protocolVersion");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
				 "\"params\":{\"protocolVersion\":\"2025-06-18\","
				 "\"capabilities\":[]}}"),
		     -32602, "capabilities");
}

/* ------------------------------------------------------------------ tools/list */

static const char *const tool_names[] = {
    "sandbox_run",	   "sandbox_create",	 "sandbox_exec",	"sandbox_list",
    "sandbox_start",	   "sandbox_stop",	 "sandbox_remove",	"sandbox_file_read",
    "sandbox_file_write",  "sandbox_extend_ttl", "sandbox_write_files", "sandbox_exec_detach",
    "sandbox_exec_status", "sandbox_exec_logs",	 "sandbox_exec_kill",	"sandbox_exec_list"};

/* Every schema node: an object whose "type" is a JSON Schema type or list of them. */
static void check_schema_shape(json_t *s, const char *where)
{
	if (!json_is_object(s))
		fail_msg("%s: schema is not an object", where);
	json_t *props = json_object_get(s, "properties");
	const char *k;
	json_t *v;
	json_object_foreach(props, k, v) check_schema_shape(v, k);
	if (json_is_object(json_object_get(s, "items")))
		check_schema_shape(json_object_get(s, "items"), where);
	size_t i;
	json_array_foreach(json_object_get(s, "anyOf"), i, v) check_schema_shape(v, where);
	if (!json_object_get(s, "type") && !json_object_get(s, "anyOf") &&
	    !json_object_get(s, "enum"))
		fail_msg("%s: a schema without type, anyOf or enum", where);
}

static void test_tools_list(void **state)
{
	fixture_t *f = *state;
	init(f, "2025-06-18");
	json_t *r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
	json_t *tools = json_object_get(json_object_get(r, "result"), "tools");
	assert_int_equal(json_array_size(tools), AC_ARRAY_SIZE(tool_names));
	assert_null(json_object_get(json_object_get(r, "result"), "nextCursor"));
	size_t i;
	json_t *t;
	json_array_foreach(tools, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));
		assert_string_equal(name, tool_names[i]);
		assert_true(json_string_length(json_object_get(t, "description")) > 20);
		assert_true(json_is_string(json_object_get(t, "title")));
		json_t *in = json_object_get(t, "inputSchema");
		assert_string_equal(json_string_value(json_object_get(in, "type")), "object");
		assert_true(json_is_false(json_object_get(in, "additionalProperties")));
		assert_true(json_is_object(json_object_get(in, "properties")));
		check_schema_shape(in, name);
		char msg[256];
		if (!ac_mcp_schema_supported(in, msg, sizeof(msg)))
			fail_msg("%s: %s", name, msg);
		json_t *out = json_object_get(t, "outputSchema");
		assert_non_null(out);
		assert_string_equal(json_string_value(json_object_get(out, "type")), "object");
		check_schema_shape(out, name);
		json_t *ann = json_object_get(t, "annotations");
		assert_true(json_is_boolean(json_object_get(ann, "readOnlyHint")));
		assert_true(json_is_false(json_object_get(ann, "openWorldHint")));
	}
	/* the schema's limits are the manager's */
	json_t *run = json_object_get(json_array_get(tools, 0), "inputSchema");
	json_t *mem = json_object_get(json_object_get(run, "properties"), "memory_mb");
	assert_int_equal(json_integer_value(json_object_get(mem, "minimum")), AC_MEMORY_MIN_MB);
	assert_int_equal(json_integer_value(json_object_get(mem, "maximum")), AC_MEMORY_MAX_MB);
	json_t *disk = json_object_get(json_object_get(run, "properties"), "disk_mb");
	assert_int_equal(json_integer_value(json_object_get(disk, "minimum")), AC_DISK_MIN_MB);
	assert_int_equal(json_integer_value(json_object_get(disk, "maximum")), AC_DISK_MAX_MB);
	json_t *cpus = json_object_get(json_object_get(run, "properties"), "cpus");
	assert_true(json_number_value(json_object_get(cpus, "minimum")) == AC_CPUS_MIN);
	assert_true(json_number_value(json_object_get(cpus, "maximum")) == AC_CPUS_MAX);
	/* sandbox_run takes a command or language and code: the tool checks that exactly one
	 * is given (see test_invalid_arguments), so the schema requires neither. */
	json_t *req = json_object_get(run, "required");
	assert_int_equal(json_array_size(req), 0);
	json_t *props = json_object_get(run, "properties");
	assert_non_null(json_object_get(props, "command"));
	assert_non_null(json_object_get(props, "language"));
	assert_non_null(json_object_get(props, "code"));
	/* sandbox_exec still requires its command. */
	json_t *exec = json_object_get(json_array_get(tools, 2), "inputSchema");
	req = json_object_get(exec, "required");
	assert_int_equal(json_array_size(req), 2);
	assert_string_equal(json_string_value(json_array_get(req, 1)), "command");
	json_decref(r);
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\","
				 "\"params\":{\"cursor\":\"x\"}}"),
		     -32602, "cursor");
}

/* agentkernel's shutdown: a null result, the connection marked; as a notification too. */
static void test_shutdown(void **state)
{
	fixture_t *f = *state;
	init(f, "2025-06-18");
	assert_false(f->conn.shutdown);
	json_t *r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"shutdown\"}");
	assert_non_null(r);
	assert_true(json_is_null(json_object_get(r, "result")));
	assert_non_null(json_object_get(r, "result"));
	assert_null(json_object_get(r, "error"));
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	assert_true(f->conn.shutdown);
	f->conn.shutdown = false;
	assert_null(send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"shutdown\"}"));
	assert_true(f->conn.shutdown);
}

static void test_tools_list_older_versions(void **state)
{
	fixture_t *f = *state;
	init(f, "2024-11-05");
	json_t *r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
	json_t *t = json_array_get(json_object_get(json_object_get(r, "result"), "tools"), 0);
	assert_non_null(json_object_get(t, "inputSchema"));
	assert_null(json_object_get(t, "outputSchema"));
	assert_null(json_object_get(t, "title"));
	assert_null(json_object_get(t, "annotations"));
	json_decref(r);
	init(f, "2025-03-26");
	r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
	t = json_array_get(json_object_get(json_object_get(r, "result"), "tools"), 0);
	assert_null(json_object_get(t, "outputSchema"));
	assert_non_null(json_object_get(t, "annotations"));
	json_decref(r);
	/* and no structuredContent in results */
	r = call_tool(f, "sandbox_list", "{}");
	json_t *res = json_object_get(r, "result");
	assert_null(json_object_get(res, "structuredContent"));
	assert_non_null(json_object_get(res, "content"));
	json_decref(r);
}

/* ------------------------------------------------------------------ arguments */

static void test_invalid_arguments(void **state)
{
	fixture_t *f = *state;
	init(f, "2025-06-18");
	static const struct {
		const char *tool, *args, *needle;
	} cases[] = {
	    {"sandbox_run", "{}", "missing required field 'command'"},
	    {"sandbox_run", "{}", "(or 'language' and 'code' for a code run)"},
	    {"sandbox_run", "{\"language\":\"sh\",\"code\":\"x\",\"command\":\"ls\"}",
	     "either 'command' or 'language' and 'code', not both"},
	    {"sandbox_run", "{\"language\":\"sh\"}", "'language' needs 'code'"},
	    {"sandbox_run", "{\"code\":\"echo\"}", "'code' needs 'language'"},
	    {"sandbox_run", "{\"language\":\"sh\",\"code\":\"\"}", "code: must not be empty"},
	    {"sandbox_run", "{\"language\":\"1x\",\"code\":\"x\"}", "language: use 1-32"},
	    {"sandbox_run", "{\"language\":3,\"code\":\"x\"}", "language: expected a string"},
	    {"sandbox_exec", "{\"name\":\"x\",\"command\":\"ls\",\"language\":\"sh\"}",
	     "unknown field 'language'"},
	    {"sandbox_run", "{\"command\":[]}", "command: needs at least 1 item"},
	    {"sandbox_run", "{\"command\":\"\"}", "command: must not be empty"},
	    {"sandbox_run", "{\"command\":[\"\"]}", "program name"},
	    {"sandbox_run", "{\"command\":[\"ls\",3]}", "command[1]: expected a string"},
	    {"sandbox_run", "{\"command\":5}", "expected an array or a string, got an integer"},
	    {"sandbox_run", "{\"command\":\"ls\",\"bogus\":1}", "unknown field 'bogus'"},
	    {"sandbox_run", "{\"command\":\"ls\",\"timeout\":\"5\"}",
	     "timeout: expected a number, got a string"},
	    {"sandbox_run", "{\"command\":\"ls\",\"timeout\":0}", "greater than 0"},
	    {"sandbox_run", "{\"command\":\"ls\",\"timeout\":1e9}", "at most 604800"},
	    {"sandbox_run", "{\"command\":\"ls\",\"memory_mb\":8}",
	     "memory_mb: must be at least 16"},
	    {"sandbox_run", "{\"command\":\"ls\",\"memory_mb\":64.5}", "expected an integer"},
	    {"sandbox_run", "{\"command\":\"ls\",\"disk_mb\":0}", "disk_mb: must be at least 16"},
	    {"sandbox_run", "{\"command\":\"ls\",\"disk_mb\":\"unlimited\"}",
	     "disk_mb: expected an integer"},
	    {"sandbox_create", "{\"name\":\"b\",\"disk_mb\":1048577}", "disk_mb: must be at most"},
	    {"sandbox_run", "{\"command\":\"ls\",\"cpus\":0}", "cpus: must be at least 0.01"},
	    {"sandbox_run", "{\"command\":\"ls\",\"profile\":\"open\"}",
	     "profile: must be one of: permissive, moderate, restrictive"},
	    {"sandbox_run", "{\"command\":\"ls\",\"network\":\"yes\"}", "expected a boolean"},
	    {"sandbox_run", "{\"command\":\"ls\",\"backend\":\"vm\"}",
	     "backend: must be one of: native, docker, podman, kubernetes, nomad, auto"},
	    {"sandbox_run", "{\"command\":\"ls\",\"env\":[\"NOEQUALS\"]}", "env[0]"},
	    {"sandbox_run", "{\"command\":\"ls\",\"env\":[\"=x\"]}", "env[0]"},
	    {"sandbox_run", "{\"command\":\"ls\",\"env\":{\"A\":1}}", "env.A: expected a string"},
	    {"sandbox_run", "{\"command\":\"ls\",\"env\":{\"A=B\":\"1\"}}", "variable name"},
	    {"sandbox_run", "{\"command\":\"ls\",\"env\":\"A=1\"}",
	     "expected an object or an array"},
	    {"sandbox_run", "{\"command\":\"ls\",\"cwd\":\"relative\"}", "absolute"},
	    {"sandbox_exec", "{\"name\":\"x\"}", "missing required field 'command'"},
	    {"sandbox_exec", "{\"command\":\"ls\"}", "missing required field 'name'"},
	    {"sandbox_exec", "{\"name\":\"x\",\"command\":\"ls\",\"user\":\"\"}", "user"},
	    {"sandbox_exec", "{\"name\":\"x\",\"command\":\"ls\",\"image\":\"host\"}",
	     "unknown field 'image'"},
	    {"sandbox_create", "{\"name\":\"\"}", "name: must not be empty"},
	    {"sandbox_create", "{\"name\":\"b\",\"ttl\":\"1x\"}", "ttl: use a whole number"},
	    {"sandbox_create", "{\"name\":\"b\",\"ttl\":0}", "ttl"},
	    {"sandbox_create", "{\"name\":\"b\",\"labels\":[\"a=b\"]}",
	     "labels: expected an object"},
	    {"sandbox_create", "{\"name\":\"b\",\"agent\":\"clippy\"}", "agent: must be one of"},
	    {"sandbox_create", "{\"name\":\"b\",\"start\":1}", "start: expected a boolean"},
	    {"sandbox_list", "{\"label\":3}", "label"},
	    {"sandbox_list", "{\"labels\":\"a=b\"}", "unknown field 'labels'"},
	    {"sandbox_start", "{}", "missing required field 'name'"},
	    {"sandbox_stop", "{\"name\":[\"x\"]}", "name: expected a string"},
	    {"sandbox_remove", "{\"name\":null}", "name: expected a string, got null"},
	    {"sandbox_file_read", "{\"name\":\"x\"}", "missing required field 'path'"},
	    {"sandbox_file_write", "{\"name\":\"x\",\"path\":\"/a\"}", "'content'"},
	    {"sandbox_file_write",
	     "{\"name\":\"x\",\"path\":\"/a\",\"content\":\"x\","
	     "\"encoding\":\"hex\"}",
	     "encoding: must be one of: utf8, base64"},
	    {"sandbox_file_write",
	     "{\"name\":\"x\",\"path\":\"/a\",\"content\":\"@@@\","
	     "\"encoding\":\"base64\"}",
	     "base64"},
	    {"sandbox_file_write",
	     "{\"name\":\"x\",\"path\":\"/a\",\"content\":\"x\","
	     "\"mode\":\"0999\"}",
	     "octal"},
	    {"sandbox_file_write",
	     "{\"name\":\"x\",\"path\":\"/a\",\"content\":\"x\","
	     "\"mode\":99999}",
	     "mode: must be at most 4095"},
	    /* agentkernel's names */
	    {"sandbox_run", "{\"command\":\"ls\",\"timeout\":1,\"timeout_ms\":5}", "not both"},
	    {"sandbox_run", "{\"command\":\"ls\",\"timeout_ms\":0}", "at least 1"},
	    {"sandbox_run", "{\"command\":\"ls\",\"fast\":1}", "fast: expected a boolean"},
	    {"sandbox_run", "{\"command\":\"ls\",\"compatibility_mode\":\"x\"}",
	     "one of: native, claude, codex, gemini"},
	    {"sandbox_run",
	     "{\"command\":\"ls\",\"compatibility_mode\":\"codex\",\"profile\":\"moderate\"}",
	     "contradicts"},
	    {"sandbox_run", "{\"command\":\"ls\",\"ports\":[\"80/sctp\"]}", "ports[0]"},
	    {"sandbox_run", "{\"command\":\"ls\",\"ports\":[\"http\"]}", "must be a number"},
	    {"sandbox_exec", "{\"name\":\"x\",\"command\":\"ls\",\"workdir\":\"tmp\"}",
	     "workdir: must be an absolute path"},
	    {"sandbox_exec",
	     "{\"name\":\"x\",\"command\":\"ls\",\"workdir\":\"/a\",\"cwd\":\"/b\"}",
	     "different directories"},
	    {"sandbox_exec",
	     "{\"name\":\"x\",\"command\":\"ls\",\"sudo\":true,\"user\":\"nobody\"}", "contradict"},
	    {"sandbox_create", "{\"name\":\"x\",\"source_ref\":\"main\"}", "needs 'source_url'"},
	    {"sandbox_write_files", "{\"name\":\"x\"}", "missing required field 'files'"},
	    {"sandbox_write_files", "{\"name\":\"x\",\"files\":{\"/a\":1}}",
	     "files./a: expected a string"},
	    {"sandbox_exec_detach", "{\"name\":\"x\"}", "missing required field 'command'"},
	    {"sandbox_exec_status", "{}", "missing required field 'id'"},
	    {"sandbox_exec_logs", "{\"id\":\"a\",\"stream\":\"both\"}",
	     "stream: must be one of: stdout, stderr"},
	    {"sandbox_exec_kill", "{\"id\":\"\"}", "id: must not be empty"},
	    {"sandbox_exec_list", "{\"sandbox\":\"x\"}", "unknown field 'sandbox'"},
	    {"sandbox_extend_ttl", "{\"name\":\"x\",\"by\":\"soon\"}", "by: use a whole number"},
	    {"sandbox_extend_ttl", "{\"name\":\"x\",\"by\":true}",
	     "by: expected a string or an "
	     "integer"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *r = call_tool(f, cases[i].tool, cases[i].args);
		if (!json_object_get(r, "error")) {
			char *s = json_dumps(r, 0);
			fail_msg("%s %s: expected -32602, got %s", cases[i].tool, cases[i].args, s);
		}
		if (error_code(r) != -32602 || !strstr(error_message(r), cases[i].needle))
			fail_msg("%s %s: got %d '%s', expected -32602 with '%s'", cases[i].tool,
				 cases[i].args, error_code(r), error_message(r), cases[i].needle);
		json_decref(r);
	}
	assert_error(call_tool(f, "no_such_tool", "{}"), -32602, "Unknown tool: no_such_tool");
	assert_error(call_tool(f, "sandbox_list", "[1]"), -32602, "arguments must be an object");
	assert_error(send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
				 "\"params\":{\"arguments\":{}}}"),
		     -32602, "name");
	/* absent arguments are an empty object */
	json_t *r = send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
				"\"params\":{\"name\":\"sandbox_list\"}}");
	assert_non_null(json_object_get(r, "result"));
	json_decref(r);
}

static void test_tool_failures_are_results(void **state)
{
	fixture_t *f = *state;
	init(f, "2025-06-18");
	assert_tool_error(call_tool(f, "sandbox_start", "{\"name\":\"ghost\"}"), "ghost");
	assert_tool_error(call_tool(f, "sandbox_stop", "{\"name\":\"ghost\"}"), "ghost");
	assert_tool_error(call_tool(f, "sandbox_remove", "{\"name\":\"ghost\"}"), "ghost");
	assert_tool_error(call_tool(f, "sandbox_exec", "{\"name\":\"ghost\",\"command\":\"ls\"}"),
			  "ghost");
	assert_tool_error(call_tool(f, "sandbox_file_read", "{\"name\":\"ghost\",\"path\":\"/a\"}"),
			  "ghost");
	assert_tool_error(call_tool(f, "sandbox_file_write",
				    "{\"name\":\"ghost\",\"path\":\"/a\","
				    "\"content\":\"x\"}"),
			  "ghost");
	assert_tool_error(call_tool(f, "sandbox_extend_ttl", "{\"name\":\"ghost\",\"by\":\"1h\"}"),
			  "ghost");
	assert_tool_error(call_tool(f, "sandbox_extend_ttl", "{\"name\":\"ghost\"}"), "ghost");
	/* agentkernel's tools and arguments */
	assert_tool_error(
	    call_tool(f, "sandbox_run", "{\"command\":\"ls\",\"ports\":[\"53:53/udp\"]}"),
	    "UDP port mappings are not supported");
	assert_tool_error(
	    call_tool(f, "sandbox_create",
		      "{\"name\":\"n\",\"source_url\":\"https://example.com/r.git\"}"),
	    "source_url: cloning");
	assert_tool_error(
	    call_tool(f, "sandbox_write_files", "{\"name\":\"ghost\",\"files\":{\"/a\":\"x\"}}"),
	    "ghost");
	assert_tool_error(
	    call_tool(f, "sandbox_exec_detach", "{\"name\":\"ghost\",\"command\":[\"ls\"]}"),
	    "ghost");
	assert_tool_error(call_tool(f, "sandbox_exec_status", "{\"id\":\"0123456789ab\"}"), NULL);
	assert_tool_error(call_tool(f, "sandbox_exec_logs", "{\"id\":\"nope\"}"), NULL);
	assert_tool_error(call_tool(f, "sandbox_exec_kill", "{\"id\":\"0123456789ab\"}"), NULL);
	assert_tool_error(call_tool(f, "sandbox_exec_list", "{\"name\":\"ghost\"}"), "ghost");
	assert_error(call_tool(f, "sandbox_write_files", "{\"name\":\"ghost\",\"files\":{}}"),
		     -32602, "at least one");
	json_t *el = call_tool(f, "sandbox_exec_list", "{}");
	assert_null(json_object_get(json_object_get(el, "result"), "isError"));
	assert_true(json_is_array(json_object_get(
	    json_object_get(json_object_get(el, "result"), "structuredContent"), "commands")));
	json_decref(el);
	assert_tool_error(call_tool(f, "sandbox_start", "{\"name\":\"-bad-\"}"), "invalid");
	assert_tool_error(call_tool(f, "sandbox_create", "{\"name\":\"bad name\"}"),
			  "invalid sandbox name");
	assert_tool_error(call_tool(f, "sandbox_run",
				    "{\"command\":\"ls\",\"network\":true,"
				    "\"allow_hosts\":[\"bad host\"]}"),
			  "invalid host pattern");
	assert_tool_error(
	    call_tool(f, "sandbox_create", "{\"name\":\"n\",\"allow_hosts\":[\"example.com\"]}"),
	    "network on");
	assert_tool_error(call_tool(f, "sandbox_list", "{\"label\":\"no equals\"}"), NULL);
	/* an empty list is a success with structured content */
	json_t *r = call_tool(f, "sandbox_list", "{\"label\":[\"team=x\"]}");
	json_t *res = json_object_get(r, "result");
	assert_null(json_object_get(res, "isError"));
	json_t *sc = json_object_get(res, "structuredContent");
	assert_true(json_is_array(json_object_get(sc, "sandboxes")));
	assert_int_equal(json_array_size(json_object_get(sc, "sandboxes")), 0);
	char msg[256];
	json_t *schema = ac_mcp_tool_schema(3, true);
	if (!ac_mcp_schema_check(schema, sc, msg, sizeof(msg)))
		fail_msg("list output does not match its schema: %s", msg);
	json_decref(r);
}

/* ------------------------------------------------------------------ schema checker */

static void test_schema_checker(void **state)
{
	json_t *s = json_loads("{\"type\":\"object\",\"properties\":{"
			       "\"n\":{\"type\":\"integer\",\"minimum\":1},"
			       "\"x\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},"
			       "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}]},"
			       "\"m\":{\"type\":\"object\",\"additionalProperties\":"
			       "{\"type\":\"string\"},\"maxProperties\":1}},"
			       "\"required\":[\"n\"],\"additionalProperties\":false}",
			       0, NULL);
	assert_non_null(s);
	char msg[256];
	assert_true(ac_mcp_schema_supported(s, msg, sizeof(msg)));
	static const struct {
		const char *v;
		const char *needle; /* NULL: valid */
	} cases[] = {
	    {"{\"n\":1}", NULL},
	    {"{\"n\":3.0}", NULL},
	    {"{\"n\":3.5}", "n: expected an integer, got a number"},
	    {"{\"n\":0}", "n: must be at least 1"},
	    {"{\"n\":1,\"x\":\"abc\"}", NULL},
	    {"{\"n\":1,\"x\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL}, /* 3 characters, 6 bytes */
	    {"{\"n\":1,\"x\":\"abcd\"}", "x: longer than 3 characters"},
	    {"{\"n\":1,\"x\":[\"a\",1]}", "x[1]: expected a string, got an integer"},
	    {"{\"n\":1,\"x\":true}", "x: expected a string or an array, got a boolean"},
	    {"{\"n\":1,\"m\":{\"a\":\"b\"}}", NULL},
	    {"{\"n\":1,\"m\":{\"a\":\"b\",\"c\":\"d\"}}", "m: at most 1 entries"},
	    {"{\"n\":1,\"m\":{\"a\":2}}", "m.a: expected a string"},
	    {"{\"n\":1,\"z\":1}", "arguments: unknown field 'z'"},
	    {"{}", "arguments: missing required field 'n'"},
	    {"[]", "arguments: expected an object, got an array"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *v = json_loads(cases[i].v, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		bool ok = ac_mcp_schema_check(s, v, msg, sizeof(msg));
		if (ok != (cases[i].needle == NULL) || (!ok && !strstr(msg, cases[i].needle)))
			fail_msg("%s: %s '%s'", cases[i].v, ok ? "accepted" : "refused", msg);
		json_decref(v);
	}
	json_decref(s);
	/* keywords the checker does not enforce are refused in a schema */
	static const char *const bad[] = {
	    "{\"type\":\"string\",\"pattern\":\"^a\"}", "{\"type\":\"strin\"}",
	    "{\"oneOf\":[{\"type\":\"string\"}]}",	"{\"required\":[\"a\"]}",
	    "{\"type\":\"array\",\"items\":[1]}",	"{\"minLength\":-1}",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		json_t *b = json_loads(bad[i], 0, NULL);
		assert_non_null(b);
		if (ac_mcp_schema_supported(b, msg, sizeof(msg)))
			fail_msg("accepted %s", bad[i]);
		json_decref(b);
	}
	/* every published schema is checkable */
	for (size_t i = 0; ac_mcp_tool_name(i); i++) {
		assert_true(
		    ac_mcp_schema_supported(ac_mcp_tool_schema(i, false), msg, sizeof(msg)));
		json_t *o = ac_mcp_tool_schema(i, true);
		assert_true(!o || ac_mcp_schema_supported(o, msg, sizeof(msg)));
	}
}

static void test_text(void **state)
{
	json_t *t = ac_json_text("a\xff"
				 "b\xc3",
				 4);
	assert_string_equal(json_string_value(t), "a\xef\xbf\xbd"
						  "b\xef\xbf\xbd");
	json_decref(t);
	t = ac_json_text("caf\xc3\xa9", 5);
	assert_string_equal(json_string_value(t), "caf\xc3\xa9");
	json_decref(t);
}

/* ------------------------------------------------------------------ HTTP sessions */

static const char init_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
    "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"h\",\"version\":\"1\"}}}";
static const char list_body[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}";
static const char notif_body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
static const char accept[] = "application/json, text/event-stream";

static int post(fixture_t *f, const char *sid, const char *proto, const char *body,
		ac_mcp_http_reply_t *out)
{
	ac_error_t *e = NULL;
	assert_int_equal(
	    ac_mcp_http(f->srv, "POST", sid, proto, accept, body, strlen(body), out, &e), 0);
	if (out->body) {
		assert_int_equal(strlen(out->body), out->body_len);
		assert_string_equal(out->content_type, "application/json");
	}
	return out->status;
}

static void open_session(fixture_t *f, char sid[AC_MCP_SESSION_ID_LEN + 1])
{
	ac_mcp_http_reply_t r;
	assert_int_equal(post(f, NULL, NULL, init_body, &r), 200);
	assert_int_equal(strlen(r.session_id), AC_MCP_SESSION_ID_LEN);
	assert_true(strspn(r.session_id, "0123456789abcdef") == AC_MCP_SESSION_ID_LEN);
	assert_non_null(strstr(r.body, "\"protocolVersion\":\"2025-06-18\""));
	memcpy(sid, r.session_id, AC_MCP_SESSION_ID_LEN + 1);
	ac_mcp_http_reply_free(&r);
}

static void test_http_sessions(void **state)
{
	fixture_t *f = *state;
	ac_mcp_http_reply_t r;
	ac_error_t *e = NULL;
	/* GET: no SSE stream */
	assert_int_equal(
	    ac_mcp_http(f->srv, "GET", NULL, NULL, "text/event-stream", NULL, 0, &r, &e), 0);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "POST, DELETE");
	assert_null(r.body);
	assert_int_equal(ac_mcp_http(f->srv, "PUT", NULL, NULL, NULL, "", 0, &r, &e), 0);
	assert_int_equal(r.status, 405);
	/* no session yet */
	assert_int_equal(post(f, NULL, NULL, list_body, &r), 400);
	assert_non_null(strstr(r.body, "Mcp-Session-Id"));
	ac_mcp_http_reply_free(&r);
	char sid[AC_MCP_SESSION_ID_LEN + 1], sid2[AC_MCP_SESSION_ID_LEN + 1];
	open_session(f, sid);
	open_session(f, sid2);
	assert_string_not_equal(sid, sid2);
	assert_int_equal(ac_mcp_http_sessions(f->srv), 2);
	/* requests in the session */
	assert_int_equal(post(f, sid, "2025-06-18", list_body, &r), 200);
	assert_non_null(strstr(r.body, "sandbox_run"));
	assert_null(r.session_id[0] ? r.session_id : NULL);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid, NULL, list_body, &r), 200);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid, "2025-06-18", notif_body, &r), 202);
	assert_null(r.body);
	/* protocol header: unsupported or not the session's */
	assert_int_equal(post(f, sid, "2030-01-01", list_body, &r), 400);
	assert_non_null(strstr(r.body, "unsupported"));
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid, "2025-03-26", list_body, &r), 400);
	ac_mcp_http_reply_free(&r);
	/* unknown sessions */
	assert_int_equal(post(f, "0123456789abcdef0123456789abcdef", NULL, list_body, &r), 404);
	assert_non_null(strstr(r.body, "-32001"));
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, "short", NULL, list_body, &r), 404);
	ac_mcp_http_reply_free(&r);
	/* bad bodies */
	assert_int_equal(post(f, sid, NULL, "{nope", &r), 400);
	assert_non_null(strstr(r.body, "-32700"));
	ac_mcp_http_reply_free(&r);
	char batch[sizeof(init_body) + 4];
	snprintf(batch, sizeof(batch), "[%s]", init_body);
	assert_int_equal(post(f, sid, NULL, batch, &r), 400);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http(f->srv, "POST", sid, NULL, "text/html", list_body,
				     strlen(list_body), &r, &e),
			 0);
	assert_int_equal(r.status, 406);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(
	    ac_mcp_http(f->srv, "POST", sid, NULL, "*/*", list_body, strlen(list_body), &r, &e), 0);
	assert_int_equal(r.status, 200);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http(f->srv, "POST", sid, NULL, NULL, list_body,
				     AC_MCP_MESSAGE_MAX + 1ul, &r, &e),
			 0);
	assert_int_equal(r.status, 413);
	ac_mcp_http_reply_free(&r);
	/* an initialize notification is no initialize: it needs a session, and then gets 202 */
	static const char init_notif[] = "{\"jsonrpc\":\"2.0\",\"method\":\"initialize\"}";
	assert_int_equal(post(f, NULL, NULL, init_notif, &r), 400);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid, NULL, init_notif, &r), 202);
	assert_null(r.body);
	/* a failed initialize opens no session */
	assert_int_equal(
	    post(f, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}", &r),
	    200);
	assert_int_equal(r.session_id[0], 0);
	assert_non_null(strstr(r.body, "-32602"));
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http_sessions(f->srv), 2);
	/* DELETE ends a session */
	assert_int_equal(ac_mcp_http(f->srv, "DELETE", NULL, NULL, NULL, NULL, 0, &r, &e), 0);
	assert_int_equal(r.status, 400);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http(f->srv, "DELETE", sid, NULL, NULL, NULL, 0, &r, &e), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(ac_mcp_http(f->srv, "DELETE", sid, NULL, NULL, NULL, 0, &r, &e), 0);
	assert_int_equal(r.status, 404);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid, NULL, list_body, &r), 404);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, sid2, NULL, list_body, &r), 200);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http_sessions(f->srv), 1);
}

/* agentkernel's shutdown over HTTP: answered, then the session is gone. */
static void test_http_shutdown(void **state)
{
	fixture_t *f = *state;
	ac_mcp_http_reply_t r;
	char sid[AC_MCP_SESSION_ID_LEN + 1];
	open_session(f, sid);
	size_t before = ac_mcp_http_sessions(f->srv);
	assert_int_equal(
	    post(f, sid, NULL, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\"}", &r), 200);
	assert_non_null(strstr(r.body, "\"result\":null"));
	ac_mcp_http_reply_free(&r);
	assert_int_equal(ac_mcp_http_sessions(f->srv), before - 1);
	assert_int_equal(post(f, sid, NULL, list_body, &r), 404);
	ac_mcp_http_reply_free(&r);
}

static void test_http_session_limit(void **state)
{
	fixture_t *f = *state;
	char first[AC_MCP_SESSION_ID_LEN + 1], keep[AC_MCP_SESSION_ID_LEN + 1];
	char sid[AC_MCP_SESSION_ID_LEN + 1];
	open_session(f, first);
	open_session(f, keep);
	for (int i = 2; i < AC_MCP_SESSIONS_MAX; i++)
		open_session(f, sid);
	assert_int_equal(ac_mcp_http_sessions(f->srv), AC_MCP_SESSIONS_MAX);
	/* using `keep` makes `first` the least recently used */
	ac_mcp_http_reply_t r;
	assert_int_equal(post(f, keep, NULL, list_body, &r), 200);
	ac_mcp_http_reply_free(&r);
	open_session(f, sid);
	assert_int_equal(ac_mcp_http_sessions(f->srv), AC_MCP_SESSIONS_MAX);
	assert_int_equal(post(f, first, NULL, list_body, &r), 404);
	ac_mcp_http_reply_free(&r);
	assert_int_equal(post(f, keep, NULL, list_body, &r), 200);
	ac_mcp_http_reply_free(&r);
}

static void *http_worker(void *arg)
{
	fixture_t *f = arg;
	for (int i = 0; i < 50; i++) {
		char sid[AC_MCP_SESSION_ID_LEN + 1];
		ac_mcp_http_reply_t r;
		ac_error_t *e = NULL;
		if (ac_mcp_http(f->srv, "POST", NULL, NULL, NULL, init_body, strlen(init_body), &r,
				&e) < 0 ||
		    r.status != 200)
			return (void *)1;
		memcpy(sid, r.session_id, sizeof(sid));
		ac_mcp_http_reply_free(&r);
		if (ac_mcp_http(f->srv, "POST", sid, "2025-06-18", NULL, list_body,
				strlen(list_body), &r, &e) < 0 ||
		    r.status != 200)
			return (void *)1;
		ac_mcp_http_reply_free(&r);
		if (ac_mcp_http(f->srv, "DELETE", sid, NULL, NULL, NULL, 0, &r, &e) < 0 ||
		    r.status != 204)
			return (void *)1;
	}
	return NULL;
}

static void test_http_concurrent(void **state)
{
	fixture_t *f = *state;
	pthread_t th[6];
	for (size_t i = 0; i < AC_ARRAY_SIZE(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL, http_worker, f), 0);
	for (size_t i = 0; i < AC_ARRAY_SIZE(th); i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(ac_mcp_http_sessions(f->srv), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_parse_and_request_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notifications_and_responses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test_setup_teardown(test_initialize_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tools_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tools_list_older_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tool_failures_are_results, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_checker, setup, teardown),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test_setup_teardown(test_http_sessions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_session_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
