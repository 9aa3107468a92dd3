/* Unit tests of the Docker backend's pure half (src/backends/docker/proto.c): engine
 * addresses, request bodies, answer parsers, the stream demultiplexer. No engine needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "backends/docker/docker.h"
#include "backends/tarfiles.h"

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s", jerr.text);
	return j;
}

/* ---- DOCKER_HOST parsing ---- */

static void test_host_parse(void **state)
{
	(void)state;
	ac_docker_host_t h;
	assert_int_equal(ac_docker_host_parse("unix:///var/run/docker.sock", &h, NULL), 0);
	assert_true(h.is_unix);
	assert_string_equal(h.path, "/var/run/docker.sock");
	assert_string_equal(h.spec, "unix:///var/run/docker.sock");
	assert_string_equal(h.base, "http://localhost");
	assert_int_equal(ac_docker_host_parse("/run/podman/podman.sock", &h, NULL), 0);
	assert_string_equal(h.spec, "unix:///run/podman/podman.sock");
	assert_int_equal(ac_docker_host_parse("tcp://10.0.0.5:2376", &h, NULL), 0);
	assert_false(h.is_unix);
	assert_string_equal(h.host, "10.0.0.5");
	assert_int_equal(h.port, 2376);
	assert_string_equal(h.base, "http://10.0.0.5:2376");
	assert_int_equal(ac_docker_host_parse("tcp://docker-host", &h, NULL), 0);
	assert_int_equal(h.port, 2375);
	assert_int_equal(ac_docker_host_parse("tcp://[::1]:2375/", &h, NULL), 0);
	assert_string_equal(h.host, "::1");
	assert_string_equal(h.base, "http://[::1]:2375");
	const char *bad[] = {"",
			     "ssh://user@host",
			     "https://host",
			     "tcp://",
			     "tcp://host:0",
			     "tcp://host:65536",
			     "tcp://host:12x",
			     "tcp://ho st:1",
			     "tcp://host/path",
			     "unix://relative.sock",
			     "npipe:////./pipe/docker_engine"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_error_t *e = NULL;
		assert_int_equal(ac_docker_host_parse(bad[i], &h, &e), -1);
		assert_non_null(e);
		assert_int_equal(e->kind, AC_ERR_INVALID);
		ac_error_free(e);
	}
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(ac_docker_host_parse(longpath, &h, NULL), -1);
}

static void test_host_find_env(void **state)
{
	(void)state;
	ac_docker_host_t h;
	const char *src = NULL;
	setenv("DOCKER_HOST", "tcp://example:1234", 1);
	assert_int_equal(ac_docker_host_find(NULL, false, &h, &src, NULL), 0);
	assert_string_equal(src, "DOCKER_HOST");
	assert_int_equal(h.port, 1234);
	/* A sandbox's recorded engine wins over the environment. */
	assert_int_equal(ac_docker_host_find("unix:///x.sock", false, &h, &src, NULL), 0);
	assert_string_equal(h.path, "/x.sock");
	setenv("CONTAINER_HOST", "unix:///podman.sock", 1);
	assert_int_equal(ac_docker_host_find(NULL, true, &h, &src, NULL), 0);
	assert_string_equal(src, "CONTAINER_HOST");
	assert_int_equal(ac_docker_host_find(NULL, false, &h, &src, NULL), 0);
	assert_string_equal(src, "DOCKER_HOST");
	unsetenv("CONTAINER_HOST");
	unsetenv("DOCKER_HOST");
}

/* ---- URL building ---- */

static void test_escape(void **state)
{
	(void)state;
	char buf[64];
	assert_int_equal(ac_docker_escape("agentcell-box_1.x~", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "agentcell-box_1.x~");
	assert_int_equal(ac_docker_escape("/a b/&c?=%", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "%2Fa%20b%2F%26c%3F%3D%25");
	assert_int_equal(ac_docker_escape("\xff", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "%FF");
	assert_int_equal(ac_docker_escape("abcdef", buf, 6), -1);
	assert_int_equal(ac_docker_escape("/////", buf, 15), -1);
	assert_int_equal(ac_docker_escape("/////", buf, 16), 0);
	char name[80];
	ac_docker_container_name("box", name, sizeof(name));
	assert_string_equal(name, "agentcell-box");
}

/* ---- container create ---- */

static json_t *state_of(const char *extra)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "{\"name\": \"box\", \"image\": \"debian:12\", \"memory_mb\": 256, \"cpus\": 1.5, "
		 "\"pids_limit\": 100, \"read_only\": false, \"env\": [\"A=1\", \"B=x=y\"], "
		 "\"mount_cwd\": null, \"backend\": \"docker\"%s}",
		 extra);
	return parse(text);
}

static void test_create_body(void **state)
{
	(void)state;
	json_t *st = state_of("");
	json_t *b = ac_docker_create_body(st, NULL, NULL, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "Image")), "debian:12");
	assert_string_equal(json_string_value(json_object_get(b, "Hostname")), "box");
	json_t *labels = json_object_get(b, "Labels");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.sandbox")), "box");
	assert_string_equal(json_string_value(json_object_get(labels, "agentcell.managed")),
			    "true");
	assert_null(json_object_get(labels, "agentcell.run"));
	json_t *env = json_object_get(b, "Env");
	assert_int_equal(json_array_size(env), 2);
	assert_string_equal(json_string_value(json_array_get(env, 1)), "B=x=y");
	json_t *hc = json_object_get(b, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 256ll << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "MemorySwap")), 256ll << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 1500000000ll);
	assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 100);
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "none");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "CapDrop"), 0)),
			    "ALL");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(hc, "SecurityOpt"), 0)),
	    "no-new-privileges");
	/* Never privileged, never an unconfined seccomp profile. */
	assert_null(json_object_get(hc, "Privileged"));
	char *dump = json_dumps(b, 0);
	assert_null(strstr(dump, "unconfined"));
	assert_null(strstr(dump, "SYS_ADMIN"));
	free(dump);
	assert_true(json_is_true(json_object_get(hc, "Init")));
	assert_false(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
	assert_null(json_object_get(hc, "Binds"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(b, "Entrypoint"), 0)),
			    "sh");
	json_decref(b);
	json_decref(st);

	st = state_of(", \"network\": true, \"read_only\": true, \"mount_cwd\": \"/home/me/p\"");
	b = ac_docker_create_body(st, NULL, NULL, NULL);
	hc = json_object_get(b, "HostConfig");
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "bridge");
	assert_true(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(hc, "Tmpfs"), "/tmp")),
	    "rw,nosuid,nodev,mode=1777,size=256m");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "Binds"), 0)),
			    "/home/me/p:/workspace:rw");
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/workspace");
	json_decref(b);
	json_decref(st);

	/* Unlimited memory (permissive profile): no memory fields at all. */
	st = state_of(", \"memory_mb\": 0");
	b = ac_docker_create_body(st, NULL, NULL, NULL);
	assert_null(json_object_get(json_object_get(b, "HostConfig"), "Memory"));
	json_decref(b);
	json_decref(st);

	/* "host" means the default image. */
	st = state_of(", \"image\": \"host\"");
	b = ac_docker_create_body(st, NULL, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(b, "Image")),
			    AC_DOCKER_DEFAULT_IMAGE);
	json_decref(b);
	json_decref(st);
}

/* agentcell's network (src/backends/docker/net.c): only lo, whatever "network" says; the
 * CA bundle bound read-only; a run's idle container labelled as a run. */
static void test_create_body_net(void **state)
{
	(void)state;
	json_t *st = state_of(", \"network\": true, \"net\": {\"proxy\": true}, "
			      "\"mount_cwd\": \"/home/me/p\"");
	json_t *b = ac_docker_create_body(st, NULL, NULL, NULL);
	json_t *hc = json_object_get(b, "HostConfig");
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "none");
	assert_null(json_object_get(json_object_get(b, "Labels"), "agentcell.run"));
	assert_int_equal(ac_docker_body_extend(b, "/h/net/box/bundle.pem", true, NULL), 0);
	json_t *binds = json_object_get(hc, "Binds");
	assert_int_equal(json_array_size(binds), 2);
	assert_string_equal(json_string_value(json_array_get(binds, 0)),
			    "/home/me/p:/workspace:rw");
	assert_string_equal(json_string_value(json_array_get(binds, 1)),
			    "/h/net/box/bundle.pem:/etc/ssl/certs/ca-certificates.crt:ro");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(b, "Labels"), "agentcell.run")),
	    "true");
	ac_error_t *e = NULL;
	assert_int_equal(ac_docker_body_extend(b, "/h:x/bundle.pem", false, &e), -1);
	assert_int_equal(e->kind, AC_ERR_INVALID);
	ac_error_free(e);
	json_decref(b);
	json_decref(st);

	/* Without a bundle or a run: nothing added (no Binds made). */
	st = state_of(", \"net\": {\"proxy\": false}");
	b = ac_docker_create_body(st, NULL, NULL, NULL);
	assert_int_equal(ac_docker_body_extend(b, NULL, false, NULL), 0);
	assert_null(json_object_get(json_object_get(b, "HostConfig"), "Binds"));
	assert_null(json_object_get(json_object_get(b, "Labels"), "agentcell.run"));
	json_decref(b);
	json_decref(st);
}

static void test_create_body_bad(void **state)
{
	(void)state;
	const char *bad[] = {", \"cpus\": 5000",	   ", \"memory_mb\": -1",
			     ", \"pids_limit\": 99999999", ", \"image\": \"bad image\"",
			     ", \"image\": \"-x\"",	   ", \"mount_cwd\": \"/a:b\""};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		json_t *st = state_of(bad[i]);
		ac_error_t *e = NULL;
		assert_null(ac_docker_create_body(st, NULL, NULL, &e));
		assert_non_null(e);
		ac_error_free(e);
		json_decref(st);
	}
}

static void test_create_body_run(void **state)
{
	(void)state;
	json_t *st = state_of("");
	char *argv[] = {"python3", "-c", "print(1)", NULL};
	char *env[] = {"K=V", NULL};
	char *extra[] = {"ANTHROPIC_API_KEY=secret", NULL};
	ac_cmd_t cmd = {
	    .argv = argv, .env = env, .cwd = "/src", .user = "1000", .stdin_open = true};
	json_t *b = ac_docker_create_body(st, &cmd, extra, NULL);
	assert_non_null(b);
	assert_int_equal(json_array_size(json_object_get(b, "Entrypoint")), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(b, "Cmd"), 2)),
			    "print(1)");
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/src");
	assert_string_equal(json_string_value(json_object_get(b, "User")), "1000");
	assert_true(json_is_true(json_object_get(b, "OpenStdin")));
	assert_true(json_is_true(json_object_get(b, "AttachStdin")));
	json_t *envj = json_object_get(b, "Env");
	assert_int_equal(json_array_size(envj), 4);
	assert_string_equal(json_string_value(json_array_get(envj, 2)), "ANTHROPIC_API_KEY=secret");
	assert_string_equal(json_string_value(json_array_get(envj, 3)), "K=V");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(b, "Labels"), "agentcell.run")),
	    "true");
	/* The command is PID 1 of a run: a missing program fails the start. */
	assert_false(json_is_true(json_object_get(json_object_get(b, "HostConfig"), "Init")));
	json_decref(b);
	json_decref(st);
}

/* ---- exec create, update ---- */

static void test_exec_body(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "echo hi", NULL};
	char *env[] = {"X=1", NULL};
	char *extra[] = {"KEY=k", NULL};
	ac_cmd_t cmd = {
	    .argv = argv, .env = env, .user = "nobody", .tty = true, .rows = 40, .cols = 120};
	json_t *b = ac_docker_exec_body(&cmd, extra, "/workspace");
	assert_non_null(b);
	assert_true(json_is_true(json_object_get(b, "AttachStdout")));
	assert_true(json_is_true(json_object_get(b, "AttachStderr")));
	assert_false(json_is_true(json_object_get(b, "AttachStdin")));
	assert_true(json_is_true(json_object_get(b, "Tty")));
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/workspace");
	assert_string_equal(json_string_value(json_object_get(b, "User")), "nobody");
	json_t *e = json_object_get(b, "Env");
	assert_int_equal(json_array_size(e), 2);
	assert_string_equal(json_string_value(json_array_get(e, 0)), "KEY=k");
	assert_string_equal(json_string_value(json_array_get(e, 1)), "X=1");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(b, "ConsoleSize"), 0)),
			 40);
	json_decref(b);
	cmd = (ac_cmd_t){.argv = argv, .cwd = "/tmp", .stdin_open = true};
	b = ac_docker_exec_body(&cmd, NULL, "/");
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/tmp");
	assert_true(json_is_true(json_object_get(b, "AttachStdin")));
	assert_null(json_object_get(b, "User"));
	json_decref(b);
	char *bad[] = {"\xff\xfe", NULL};
	cmd = (ac_cmd_t){.argv = bad};
	assert_null(ac_docker_exec_body(&cmd, NULL, "/"));
}

static void test_update_bodies(void **state)
{
	(void)state;
	json_t *b = ac_docker_update_body(128, 0.5, 64);
	assert_int_equal(json_integer_value(json_object_get(b, "Memory")), 128ll << 20);
	assert_int_equal(json_integer_value(json_object_get(b, "NanoCpus")), 500000000ll);
	assert_int_equal(json_integer_value(json_object_get(b, "PidsLimit")), 64);
	json_decref(b);
	b = ac_docker_update_body_libpod(128, 0.5, 64);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "memory"), "limit")),
			 128ll << 20);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "cpu"), "quota")),
			 50000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "pids"), "limit")),
			 64);
	json_decref(b);
}

/* ---- answers ---- */

static void test_parse_answers(void **state)
{
	(void)state;
	char id[129], msg[100];
	const char *ok =
	    "{\"Id\":\"c741c1f43187cde89c946271201ca3c708dbb24dc4f44ebb36694148a120e23d\","
	    "\"Warnings\":[]}";
	assert_int_equal(ac_docker_parse_id(ok, strlen(ok), id, sizeof(id)), 0);
	assert_int_equal(strlen(id), 64);
	assert_int_equal(ac_docker_parse_id("{\"Id\":\"xyz\"}", 12, id, sizeof(id)), -1);
	assert_int_equal(ac_docker_parse_id("{\"Id\":\"abc\"}", 12, id, sizeof(id)), -1);
	assert_int_equal(ac_docker_parse_id("[]", 2, id, sizeof(id)), -1);

	const char *err = "{\"cause\":\"no such container\",\"message\":\"no container with "
			  "name\\n\\u0007 x\",\"response\":404}";
	ac_docker_error_text(err, strlen(err), msg, sizeof(msg));
	assert_string_equal(msg, "no container with name   x");
	ac_docker_error_text("Not Found\n", 10, msg, sizeof(msg));
	assert_string_equal(msg, "Not Found");
	ac_docker_error_text(NULL, 0, msg, sizeof(msg));
	assert_string_equal(msg, "");

	ac_docker_inspect_t in;
	const char *insp = "{\"Id\":\"0123456789abcdef\",\"State\":{\"Status\":\"running\","
			   "\"Running\":true,\"Pid\":8269,\"ExitCode\":0,\"OOMKilled\":false}}";
	assert_int_equal(ac_docker_parse_inspect(insp, strlen(insp), &in), 0);
	assert_true(in.running);
	assert_int_equal(in.pid, 8269);
	assert_string_equal(in.status, "running");
	assert_int_equal(ac_docker_parse_inspect("{\"State\":{}}", 12, &in), -1);
	assert_int_equal(ac_docker_parse_inspect("{\"Id\":\"0123456789ab\",\"State\":1}", 30, &in),
			 -1);

	const char *ex = "{\"ExitCode\":3,\"Running\":false,\"Pid\":0}";
	assert_int_equal(ac_docker_parse_exec_inspect(ex, strlen(ex), &in), 0);
	assert_false(in.running);
	assert_int_equal(in.exit_code, 3);
	const char *exr = "{\"ExitCode\":null,\"Running\":true,\"Pid\":77}";
	assert_int_equal(ac_docker_parse_exec_inspect(exr, strlen(exr), &in), 0);
	assert_true(in.running);
	assert_int_equal(in.pid, 77);
	assert_int_equal(
	    ac_docker_parse_exec_inspect("{\"ExitCode\":\"3\",\"Running\":false}", 33, &in), -1);
	assert_int_equal(ac_docker_parse_exec_inspect("{}", 2, &in), -1);

	const char *list =
	    "[{\"Id\":\"0123456789abcdef\",\"Names\":[\"/agentcell-a\"],\"State\":\"running\","
	    "\"Labels\":{\"agentcell.managed\":\"true\",\"agentcell.sandbox\":\"a\"}},"
	    "{\"Id\":\"fedcba9876543210\",\"Names\":[\"/other\"],\"Labels\":{}},"
	    "{\"Id\":\"nothex!\",\"Labels\":{\"agentcell.managed\":\"true\"}},"
	    "{\"Id\":\"aaaaaaaaaaaaaaaa\",\"Labels\":{\"agentcell.managed\":\"true\","
	    "\"agentcell.run\":\"true\"}}]";
	json_t *out = NULL;
	assert_int_equal(ac_docker_parse_list(list, strlen(list), &out), 0);
	assert_int_equal(json_array_size(out), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "name")),
			    "agentcell-a");
	assert_true(json_is_true(json_object_get(json_array_get(out, 1), "run")));
	assert_null(json_object_get(json_array_get(out, 1), "sandbox"));
	json_decref(out);
	assert_int_equal(ac_docker_parse_list("{}", 2, &out), -1);

	char v[200];
	const char *ver =
	    "{\"Version\":\"4.3.1\",\"ApiVersion\":\"1.41\",\"Components\":[{\"Name\":"
	    "\"Podman Engine\"}]}";
	assert_int_equal(ac_docker_parse_version(ver, strlen(ver), v, sizeof(v)), 0);
	assert_string_equal(v, "Podman Engine 4.3.1 (API 1.41)");

	bool is_dir, is_link;
	long long size;
	/* {"name":"a","size":4096,"mode":2147484141,...} */
	const char *stat =
	    "eyJuYW1lIjoiYSIsInNpemUiOjQwOTYsIm1vZGUiOjIxNDc0ODQxNDEsIm10aW1lIjoiMjAy"
	    "Ni0xMS0yM1QxNDoyMDowMC4xNTg0MTExNDlaIiwiaXNEaXIiOnRydWUsImxpbmtUYXJnZXQi"
	    "OiIvYSJ9";
	assert_int_equal(ac_docker_parse_path_stat(stat, &is_dir, &is_link, &size), 0);
	assert_true(is_dir);
	assert_false(is_link);
	assert_int_equal(size, 4096);
	assert_int_equal(ac_docker_parse_path_stat("!!", &is_dir, &is_link, &size), -1);
	assert_int_equal(ac_docker_parse_path_stat("", &is_dir, &is_link, &size), -1);
}

static void test_parse_head(void **state)
{
	(void)state;
	ac_http_head_t h;
	const char *up = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
			 "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00";
	/* strlen stops at the stream's first bytes: \x01, then \x00. */
	assert_int_equal(ac_docker_parse_head(up, strlen(up) + 1, &h), 0);
	assert_int_equal(h.status, 101);
	assert_int_equal(h.head_len, strlen(up) - 1);
	assert_int_equal(h.content_length, -1);
	const char *err = "HTTP/1.1 404 Not Found\r\ncontent-length:  91\r\n\r\n{";
	assert_int_equal(ac_docker_parse_head(err, strlen(err), &h), 0);
	assert_int_equal(h.status, 404);
	assert_int_equal(h.content_length, 91);
	const char *ch = "HTTP/1.1 500 x\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(ac_docker_parse_head(ch, strlen(ch), &h), 0);
	assert_true(h.chunked);
	/* Incomplete: more bytes needed; then garbage. */
	assert_int_equal(ac_docker_parse_head("HTTP/1.1 200 OK\r\n", 17, &h), 1);
	assert_int_equal(ac_docker_parse_head("SSH-2.0\r\n\r\n", 11, &h), -1);
	assert_int_equal(ac_docker_parse_head("HTTP/1.1 2x0 OK\r\n\r\n", 19, &h), -1);
	const char *badlen = "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n";
	assert_int_equal(ac_docker_parse_head(badlen, strlen(badlen), &h), -1);
	const char *huge = "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n";
	assert_int_equal(ac_docker_parse_head(huge, strlen(huge), &h), -1);
	/* A head that never ends is refused once past the cap. */
	size_t n = AC_DOCKER_HEAD_MAX + 10;
	char *big = malloc(n);
	memset(big, 'a', n);
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	assert_int_equal(ac_docker_parse_head(big, n, &h), -1);
	free(big);
}

/* ---- the stream demultiplexer ---- */

typedef struct collected {
	char out[256], err[256];
	size_t nout, nerr, calls;
	uint64_t total;
} collected_t;

static void collect(int stream, const char *data, size_t len, void *arg)
{
	collected_t *c = arg;
	c->calls++;
	c->total += len;
	char *dst = stream == 2 ? c->err : c->out;
	size_t *n = stream == 2 ? &c->nerr : &c->nout;
	size_t room = sizeof(c->out) - 1 - *n;
	size_t take = len < room ? len : room;
	memcpy(dst + *n, data, take);
	*n += take;
	dst[*n] = 0;
}

static const char frames[] = "\x01\x00\x00\x00\x00\x00\x00\x04out\n"
			     "\x02\x00\x00\x00\x00\x00\x00\x04"
			     "err\n"
			     "\x00\x00\x00\x00\x00\x00\x00\x03in!"
			     "\x01\x00\x00\x00\x00\x00\x00\x00";

static void test_demux_whole(void **state)
{
	(void)state;
	ac_demux_t d = {0};
	collected_t c = {0};
	assert_int_equal(ac_demux_feed(&d, frames, sizeof(frames) - 1, collect, &c), 0);
	assert_string_equal(c.out, "out\nin!");
	assert_string_equal(c.err, "err\n");
}

static void test_demux_split_everywhere(void **state)
{
	(void)state;
	/* Every split point, and byte by byte: headers and payloads cut across reads. */
	for (size_t cut = 0; cut <= sizeof(frames) - 1; cut++) {
		ac_demux_t d = {0};
		collected_t c = {0};
		assert_int_equal(ac_demux_feed(&d, frames, cut, collect, &c), 0);
		assert_int_equal(
		    ac_demux_feed(&d, frames + cut, sizeof(frames) - 1 - cut, collect, &c), 0);
		assert_string_equal(c.out, "out\nin!");
		assert_string_equal(c.err, "err\n");
	}
	ac_demux_t d = {0};
	collected_t c = {0};
	for (size_t i = 0; i < sizeof(frames) - 1; i++)
		assert_int_equal(ac_demux_feed(&d, frames + i, 1, collect, &c), 0);
	assert_string_equal(c.out, "out\nin!");
	assert_string_equal(c.err, "err\n");
}

static void test_demux_huge_and_invalid(void **state)
{
	(void)state;
	/* A 4 GiB - 1 frame: streamed as it comes, never buffered. */
	ac_demux_t d = {0};
	collected_t c = {0};
	const char hdr[] = "\x02\x00\x00\x00\xff\xff\xff\xff";
	assert_int_equal(ac_demux_feed(&d, hdr, 8, collect, &c), 0);
	char chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 16; i++)
		assert_int_equal(ac_demux_feed(&d, chunk, sizeof(chunk), collect, &c), 0);
	assert_int_equal(c.total, 16ull * 65536);
	assert_int_equal(d.left, 0xffffffffu - 16u * 65536);

	/* Unknown stream ids and non-zero padding are refused, and stay refused. */
	const char *bad[] = {"\x03\x00\x00\x00\x00\x00\x00\x01x",
			     "\x01\x01\x00\x00\x00\x00\x00\x01x",
			     "\xff\x00\x00\x00\x00\x00\x00\x01x", "HTTP/1.1"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		ac_demux_t b = {0};
		collected_t cb = {0};
		assert_int_equal(ac_demux_feed(&b, bad[i], 9, collect, &cb), -1);
		assert_true(b.broken);
		assert_int_equal(ac_demux_feed(&b, frames, sizeof(frames) - 1, collect, &cb), -1);
		assert_int_equal(cb.total, 0);
	}
}

static void test_tar_path(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(ac_tarfiles_name("./a/b", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b");
	assert_int_equal(ac_tarfiles_name("//a//./b/", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b");
	assert_int_equal(ac_tarfiles_name("/", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(ac_tarfiles_name("a/../../etc", out, sizeof(out)), -1);
	assert_int_equal(ac_tarfiles_name("..", out, sizeof(out)), -1);
	assert_int_equal(ac_tarfiles_name("a/..b", out, sizeof(out)), 0);
	assert_string_equal(out, "a/..b");
	assert_int_equal(ac_tarfiles_name("0123456789012345678901234567890123456789"
					  "0123456789012345678901234567890123456789",
					  out, sizeof(out)),
			 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_parse),
	    cmocka_unit_test(test_host_find_env),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_create_body),
	    cmocka_unit_test(test_create_body_net),
	    cmocka_unit_test(test_create_body_bad),
	    cmocka_unit_test(test_create_body_run),
	    cmocka_unit_test(test_exec_body),
	    cmocka_unit_test(test_update_bodies),
	    cmocka_unit_test(test_parse_answers),
	    cmocka_unit_test(test_parse_head),
	    cmocka_unit_test(test_demux_whole),
	    cmocka_unit_test(test_demux_split_everywhere),
	    cmocka_unit_test(test_demux_huge_and_invalid),
	    cmocka_unit_test(test_tar_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
