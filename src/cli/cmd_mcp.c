/* agentcell mcp: the MCP server (src/mcp) on stdio. One JSON-RPC message per line in, one
 * per line out. tools/call requests run concurrently (agents call tools in parallel), each on
 * a thread of its own, at most MCP_INFLIGHT at once; everything else is answered in order
 * by the reading thread. Replies are whole lines, written under a lock. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/util.h"
#include "cli/cli.h"
#include "mcp/mcp.h"
#include "agentcell/backend.h"

#define MCP_INFLIGHT 16

#define READ_CHUNK (64u * 1024)

typedef struct stdio_server {
	ac_mcp_t *srv;
	ac_mcp_conn_t conn;
	int in, out;
	pthread_mutex_t out_lock; /* one reply line at a time */
	pthread_mutex_t lock;	  /* inflight */
	pthread_cond_t idle;
	int inflight;
} stdio_server_t;

/* Sends one reply line; false when the client is gone. */
static bool send_line(stdio_server_t *s, char *reply)
{
	size_t n = strlen(reply);
	reply[n] = '\n'; /* replaces the NUL: the buffer is not a string any more */
	pthread_mutex_lock(&s->out_lock);
	bool ok = ac_write_all(s->out, reply, n + 1) == 0;
	pthread_mutex_unlock(&s->out_lock);
	free(reply);
	return ok;
}

typedef struct job {
	stdio_server_t *s;
	ac_mcp_conn_t conn; /* a copy: a later initialize does not change a running call */
	char *line;
	size_t len;
} job_t;

static void *job_main(void *arg)
{
	job_t *j = arg;
	char *reply = NULL;
	ac_error_t *e = NULL;
	if (ac_mcp_handle(j->s->srv, &j->conn, j->line, j->len, &reply, &e) < 0) {
		fprintf(stderr, "agentcell mcp: %s\n", e->msg);
		ac_error_free(e);
	} else if (reply) {
		send_line(j->s, reply);
	}
	pthread_mutex_lock(&j->s->lock);
	j->s->inflight--;
	pthread_cond_broadcast(&j->s->idle);
	pthread_mutex_unlock(&j->s->lock);
	free(j->line);
	free(j);
	return NULL;
}

/* Whether the line is one tools/call request (the calls worth a thread of their own). */
static bool is_tool_call(const char *line, size_t len)
{
	json_t *m = json_loadb(line, len, 0, NULL);
	const char *method = json_string_value(json_object_get(m, "method"));
	bool call = method && !strcmp(method, "tools/call") && json_object_get(m, "id");
	json_decref(m);
	return call;
}

/* Runs a tools/call on its own thread; false if it must run here instead. */
static bool dispatch(stdio_server_t *s, const char *line, size_t len)
{
	job_t *j = malloc(sizeof(*j));
	char *copy = malloc(len);
	if (!j || !copy) {
		free(j);
		free(copy);
		return false;
	}
	memcpy(copy, line, len);
	*j = (job_t){.s = s, .conn = s->conn, .line = copy, .len = len};
	pthread_mutex_lock(&s->lock);
	while (s->inflight >= MCP_INFLIGHT)
		pthread_cond_wait(&s->idle, &s->lock);
	s->inflight++;
	pthread_mutex_unlock(&s->lock);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	bool ok = pthread_create(&th, &a, job_main, j) == 0;
	pthread_attr_destroy(&a);
	if (!ok) {
		pthread_mutex_lock(&s->lock);
		s->inflight--;
		pthread_mutex_unlock(&s->lock);
		free(copy);
		free(j);
	}
	return ok;
}

static bool handle_line(stdio_server_t *s, const char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		len--;
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len)
		return true; /* blank lines are no messages */
	if (s->conn.version[0] && is_tool_call(line + i, len - i) && dispatch(s, line + i, len - i))
		return true;
	char *reply = NULL;
	ac_error_t *e = NULL;
	if (ac_mcp_handle(s->srv, &s->conn, line, len, &reply, &e) < 0) {
		fprintf(stderr, "agentcell mcp: %s\n", e->msg);
		ac_error_free(e);
		return true;
	}
	bool alive = reply ? send_line(s, reply) : true;
	/* agentkernel's shutdown: answered, then nothing more is read (calls still running
	 * answer before the server ends). */
	return alive && !s->conn.shutdown;
}

static bool send_too_long(stdio_server_t *s)
{
	char *reply = NULL;
	ac_error_t *e = NULL;
	if (ac_mcp_oversize_reply(&reply, &e) < 0) {
		ac_error_free(e);
		return true;
	}
	return send_line(s, reply);
}

/* Reads lines until end of input. A line longer than AC_MCP_MESSAGE_MAX is skipped up to
 * its newline and answered with a parse error. */
static int serve(stdio_server_t *s)
{
	size_t cap = AC_MCP_MESSAGE_MAX + READ_CHUNK + 1;
	char *buf = malloc(cap);
	if (!buf) {
		fprintf(stderr, "agentcell mcp: out of memory\n");
		return 1;
	}
	size_t len = 0;
	bool skipping = false;
	for (;;) {
		ssize_t n = read(s->in, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "agentcell mcp: reading standard input: %s\n",
				strerror(errno));
			break;
		}
		if (n == 0) {
			/* End of input: a last line without newline still counts. */
			if (skipping)
				send_too_long(s);
			else if (len)
				handle_line(s, buf, len);
			break;
		}
		size_t start = 0, scan = len;
		len += (size_t)n;
		bool alive = true;
		char *nl;
		while (alive && (nl = memchr(buf + scan, '\n', len - scan))) {
			size_t end = (size_t)(nl - buf);
			if (skipping) {
				skipping = false;
				alive = send_too_long(s);
			} else {
				alive = handle_line(s, buf + start, end - start);
			}
			start = scan = end + 1;
		}
		if (!alive)
			break;
		len -= start;
		memmove(buf, buf + start, len);
		if (len > AC_MCP_MESSAGE_MAX) {
			skipping = true;
			len = 0;
		}
	}
	free(buf);
	return 0;
}

/* The protocol owns descriptors of its own: whatever else writes to fd 1 (a library, a
 * child that inherited it) lands on stderr instead of corrupting the stream, and nothing
 * started later reads the client's messages from fd 0. */
static int take_stdio(stdio_server_t *s)
{
	s->in = fcntl(0, F_DUPFD_CLOEXEC, 3);
	s->out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->in < 0 || s->out < 0 || null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0) {
		fprintf(stderr, "agentcell mcp: cannot set up standard input and output: %s\n",
			strerror(errno));
		if (null >= 0)
			close(null);
		return -1;
	}
	close(null);
	return 0;
}

/* The agent that calls the tools is the one being sandboxed: its arguments are as
 * untrusted as an HTTP request's. So stdio is as restricted as `serve` (no directory image
 * outside --image-root, no host directory at /workspace); only the operator, on this
 * command line, widens it. */
typedef struct mcp_state {
	const char *config;
	cli_roots_t roots;
	bool mount_cwd;
} mcp_state_t;

static const cli_opt_t mcp_opts[] = {
    CLI_STRING("--config", 0, "FILE",
	       "agentcell.toml for sandbox_run and sandbox_create (default\n"
	       "./agentcell.toml, else $AGENTCELL_HOME/agentcell.toml)",
	       mcp_state_t, config),
    CLI_FN("--image-root", 0, "DIR",
	   "allow directory images below DIR (repeatable; by default\n"
	   "only 'host': the agent calling the tools is the one sandboxed)",
	   cli_opt_image_root, mcp_state_t, roots),
    CLI_FLAG("--mount-cwd", 0,
	     "allow this directory at /workspace, read-write, for calls that\n"
	     "ask for it (mount_cwd, the permissive profile); by default\n"
	     "nothing of the host is mounted",
	     mcp_state_t, mount_cwd),
    CLI_END,
};

const cli_command_t cli_cmd_mcp = {
    .name = "mcp",
    .alias = "mcp-server",
    .summary = "serve the sandbox tools to coding agents over MCP (stdio)",
    .synopsis = "[--config FILE] [--image-root DIR]... [--mount-cwd]",
    .about =
	"Runs an MCP (Model Context Protocol) server on standard input and output: one JSON-RPC\n"
	"message per line. Tools: sandbox_run, sandbox_create, sandbox_exec, sandbox_list,\n"
	"sandbox_start, sandbox_stop, sandbox_remove, sandbox_file_read, sandbox_file_write,\n"
	"sandbox_extend_ttl, sandbox_write_files, sandbox_exec_detach, sandbox_exec_status,\n"
	"sandbox_exec_logs, sandbox_exec_kill, sandbox_exec_list. The method 'shutdown'\n"
	"(agentkernel's) ends the server after its answer. Tool calls run in parallel (up to\n"
	"16). Register it with\n"
	"e.g. 'claude mcp add agentcell -- agentcell mcp' (see the README).\n",
    .opts = mcp_opts,
    .fn = cmd_mcp,
};

int cmd_mcp(int argc, char **argv)
{
	mcp_state_t st = {0};
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_mcp, argc, argv, &st, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	const char *config = st.config;
	char **image_roots = st.roots.v;
	bool mount_cwd = st.mount_cwd;
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	ac_mcp_t *srv = NULL;
	ac_error_t *e = NULL;
	if (ac_manager_restrict_host(m, image_roots, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	if (mount_cwd)
		ac_manager_allow_mount_cwd(m);
	if (ac_mcp_new(m, AGENTCELL_VERSION, config, &srv, &e) < 0) {
		ac_manager_free(m);
		return cli_error(e);
	}
	stdio_server_t s = {.srv = srv,
			    .out_lock = PTHREAD_MUTEX_INITIALIZER,
			    .lock = PTHREAD_MUTEX_INITIALIZER,
			    .idle = PTHREAD_COND_INITIALIZER};
	/* Commands run on several threads: none of them may change signal dispositions. */
	ac_backends_prepare_threads();
	json_object_seed(0);
	int rc = take_stdio(&s) < 0 ? 1 : serve(&s);
	/* End of input: the calls still running answer before we go. */
	pthread_mutex_lock(&s.lock);
	while (s.inflight > 0)
		pthread_cond_wait(&s.idle, &s.lock);
	pthread_mutex_unlock(&s.lock);
	if (s.in >= 0)
		close(s.in);
	if (s.out >= 0)
		close(s.out);
	ac_mcp_free(srv);
	ac_manager_free(m);
	return rc;
}
