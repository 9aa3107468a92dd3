/* Private to src/backends/nomad/: one op's connection to a sandbox's Nomad agent and the
 * requests every op makes with it (conn.c), the job bodies (job.c), the exec stream over
 * the allocation exec WebSocket (frames.c, exec.c). backend.c holds the ops.
 *
 * The state's "nomad" object is the [nomad] table of agentcell.toml as it was at create,
 * completed by create (ac_nm_resolve) with everything later ops need, so that a changed
 * environment never moves a sandbox to another agent: "address", "namespace", "region",
 * "ca_cert", "client_cert", "client_key" (absolute paths), "tls_server_name",
 * "skip_verify", "driver", "datacenters", "node_pool", "image", "cores", "job". The token is
 * never in the state: every op reads NOMAD_TOKEN, else the [nomad] "token_file" (the
 * state keeps its path), else the "token" of the agentcell.toml the state names in
 * "token_config" (its absolute path). */
#ifndef AGENTCELL_BACKENDS_NOMAD_INTERNAL_H
#define AGENTCELL_BACKENDS_NOMAD_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/backend.h"
#include "agentcell/error.h"
#include "agentcell/types.h"
#include "backends/remote/remote.h"

#define AC_NM_DEFAULT_ADDR "http://127.0.0.1:4646"
#define AC_NM_TASK	   "sandbox" /* the one task (and group) of a sandbox's job */
#define AC_NM_JOB_PREFIX   "agentcell-"
#define AC_NM_META_SANDBOX "agentcell-sandbox"
#define AC_NM_META_MANAGED "agentcell-managed"
#define AC_NM_META_OWNER   "agentcell-owner"   /* this home's owner id (16 hex digits) */
#define AC_NM_META_CREATOR "agentcell-creator" /* run jobs: "pid:starttime:boot_id" */

/* One op's connection. */
typedef struct ac_nm {
	ac_remote_conf_t conf; /* server, TLS, X-Nomad-Token; conf.name: "nomad at ADDR" */
	ac_remote_t *r;
	char ns[128];	  /* "" when the agent's default */
	char region[128]; /* "" when the agent's */
	char job[160];	  /* the state's job id ("agentcell-NAME"), "" without a state */
	char driver[16];  /* docker, podman, exec, raw_exec */
} ac_nm_t;

/* --- conn.c --- */
/* At create: completes cfg (the state's "nomad" object, made when absent) from the
 * [nomad] settings it holds over NOMAD_* and the defaults; validates them (driver known,
 * raw_exec only with allow_raw_exec = true, files that exist); config_path is the
 * agentcell.toml the settings came from (NULL: none). Prints nothing. */
int ac_nm_resolve(json_t *cfg, const char *config_path, ac_error_t **err);
/* Opens the connection the state's "nomad" object names (or, st NULL, the one NOMAD_*
 * and defaults give: doctor, gc). */
int ac_nm_open(const json_t *st, ac_nm_t *n, ac_error_t **err);
void ac_nm_close(ac_nm_t *n);
/* METHOD path with ?namespace=&region= added (path may hold a query); returns the HTTP
 * status (resp to free), -1 when no answer came (err: one line naming the address). */
long ac_nm_call(ac_nm_t *n, const char *method, const char *path, const json_t *body,
		ac_remote_resp_t *resp, ac_error_t **err);
/* A request whose 2xx (and, with ok404, 404: returns 1) is success, with the JSON answer
 * in *out when out (to json_decref); anything else is ac_nm_http_error. */
int ac_nm_simple(ac_nm_t *n, const char *method, const char *path, const json_t *body, bool ok404,
		 const char *what, json_t **out, ac_error_t **err);
/* The one-line error of a non-2xx answer: "nomad at ADDR: WHAT: STATUS MESSAGE" with kind
 * 403 -> AC_ERR_PERMISSION, 404 -> AC_ERR_NOT_FOUND, 400 -> AC_ERR_INVALID, else
 * AC_ERR_BACKEND. Returns -1. */
int ac_nm_http_error(const ac_nm_t *n, const ac_remote_resp_t *resp, const char *what,
		     ac_error_t **err);
/* Sleeps ms, or less when the caller gives up (ctx->cancel_fd): -1 then. */
int ac_nm_nap(const ac_backend_ctx_t *ctx, int ms);
/* A transport error (ac_remote_request's, ac_ws_connect's: "NAME at SERVER: ...") that
 * names the address twice ("nomad at A at A: ...") names it once; ac_nm_call does it. */
void ac_nm_tidy_error(const ac_nm_t *n, ac_error_t *e);

/* --- job.c --- */
#define AC_NM_DEFAULT_IMAGE "alpine:3.20" /* the Kubernetes backend's too */
#define AC_NM_MHZ_PER_CORE  1000	  /* the seed's CPU: vcpus * 1000 MHz */
/* The idle task: PID 1 of the container reaps what execs leave behind (its wait) and
 * exits at once on SIGTERM (the job's kill_signal), its sleep with it (raw_exec has no
 * PID namespace to take it along). Needs /bin/sh and sleep in the image. */
#define AC_NM_IDLE_SCRIPT                                                                          \
	"trap 'kill $! 2>/dev/null; exit 0' TERM INT; while :; do sleep 3600 & wait; done"
/* The job of a sandbox (argv NULL: the idle command, the job id n->job) or of a one-shot
 * run (argv: the command; id: the run job's id), hardened for n->driver (see job.c). */
json_t *ac_nm_job_spec(const json_t *st, const ac_nm_t *n, const char *id, char *const *argv,
		       ac_error_t **err);
/* A one-shot run's job (id: its job id): cmd->argv as the task, cmd->env on top of the
 * state's, cmd->cwd its working directory (absolute), cmd->user the task's user; tty and
 * stdin are not the job's (its output is read from the task's logs). */
json_t *ac_nm_run_job_spec(const json_t *st, const ac_nm_t *n, const char *id, const ac_cmd_t *cmd,
			   ac_error_t **err);
/* What the job of st cannot enforce with n->driver, as one line for the user (raw_exec
 * is not isolated; exec takes no image, no read-only root, no pids limit) into out;
 * returns its length, 0 when nothing. */
size_t ac_nm_job_warnings(const json_t *st, const ac_nm_t *n, char *out, size_t cap);

/* --- backend.c --- */
/* The running allocation of job: 1 with its id in alloc[0..cap), 0 when none runs, -1 on
 * error. */
int ac_nm_running_alloc(ac_nm_t *n, const char *job, char *alloc, size_t cap, ac_error_t **err);
/* Registers spec as job, reads its evaluation (a placement failure fails with Nomad's
 * reasons) and waits with blocking queries until its task runs (a failed task fails with
 * its events); on failure the job is purged. */
int ac_nm_job_up(const ac_backend_ctx_t *ctx, ac_nm_t *n, const char *job, json_t *spec,
		 ac_error_t **err);
/* "missing drivers (filtered 1 node); memory exhausted on 1 node" from an evaluation's
 * FailedTGAllocs (run.c reads its own evaluations). */
void ac_nm_placement_reasons(const json_t *failed, char *out, size_t cap);

/* --- gc.c --- */
/* Records the agent and namespace of a state's "nomad" object (its connection keys, never
 * a token) under HOME/nomad/agents/, so that gc looks for this home's leftovers there;
 * best effort. Call wherever a job of this home may be made (create, run). */
void ac_nm_remember(const char *home, const json_t *cfg);
/* ops.probe: the agent NOMAD_* names ({"engine", "version", "source", "error"?,
 * "orphans": other homes' managed jobs no sandbox owns, never purged}). */
json_t *ac_nomad_probe(const ac_backend_ctx_t *ctx);
/* ops.sweep: this home's managed jobs no sandbox or live run owns, on every remembered
 * agent (purged with remove); an agent that cannot be asked adds an entry with "error". */
void ac_nomad_sweep(const ac_backend_ctx_t *ctx, bool remove, json_t *found);

/* --- exec.c --- */
/* One exec stream over /v1/client/allocation/ALLOC/exec (see frames.h). */
typedef struct ac_nm_stream {
	const char *alloc, *task;
	char *const *argv;
	bool tty, winch;	   /* winch: SIGWINCH sends the terminal's size again */
	unsigned short rows, cols; /* a tty's size when no fd is a terminal */
	int in_fd;		   /* -1: none (stdin closed at once) */
	int out_fd, err_fd;	   /* -1: dropped */
	int64_t deadline_ms;	   /* -1: none */
	int cancel_fd;		   /* > 0: hung up ends the stream, AC_ERR_STATE (data does not) */
	uint64_t out_max;	   /* > 0: more stdout than this fails (a tar read) */
	/* 0-terminated (NULL: none): these signals stop the command; with kill_id its killer
	 * runs and the stream waits up to 10 s for the exit; *stopped gets the signal. */
	const int *stop_signals;
	const char *kill_id;
	int *stopped;
	/* Non-NULL: stdout (fd 1) and stderr (fd 2) data go here instead of out_fd, err_fd
	 * (a detached command's watcher, detach.c). */
	void (*sink)(void *arg, int fd, const unsigned char *data, size_t len);
	void *arg;
} ac_nm_stream_t;
/* 0 with *code (the exited frame's), 1 when the deadline passed first, -1 on error. */
int ac_nm_exec_stream(ac_nm_t *n, const ac_nm_stream_t *s, int *code, ac_error_t **err);
/* The killer of the command with exec-wrapper handle id in alloc's task: a second exec,
 * bounded (best effort). */
void ac_nm_run_killer(ac_nm_t *n, const char *alloc, const char *task, const char *id);
/* cmd in alloc's task through the exec wrapper (env, cwd, user, --timeout + killer). */
int ac_nm_exec_in(ac_nm_t *n, const char *alloc, const ac_cmd_t *cmd, int fds[3], ac_result_t *res,
		  ac_error_t **err);
/* ops.exec */
int ac_nomad_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		  const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err);

/* --- detach.c: ops.exec_detach, kill_detached, detached_state (a watcher on the host,
 * src/backends/watcher.h) --- */
int ac_nomad_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
			 int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			 ac_error_t **err);
int ac_nomad_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
			   ac_error_t **err);
int ac_nomad_detached_state(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status);

/* --- files.c --- */
/* 1 when the allocation file system API sees the task's path (driver docker, podman or
 * exec; path below /alloc, /local or /secrets, no ".."): out gets it relative to the
 * allocation directory ("/local/a" -> "sandbox/local/a") and *root_len the length of its
 * mapped directory ("sandbox/local"); 0 when it does not. Pure. */
int ac_nm_fs_path(const char *driver, const char *path, char *out, size_t cap, size_t *root_len);
/* A FileMode of Nomad's fs answers (Go's io/fs.FileMode.String(): "-rw-r--r--",
 * "drwxr-xr-x", "Lrwxrwxrwx", "dtrwxrwxrwx", "urwxr-xr-x", "Dcrw-rw-rw-") as a listing type
 * ("file", "dir", "symlink", "other") and mode bits (07777); -1 when malformed. Pure. */
int ac_nm_fs_mode(const char *filemode, char *type, size_t tcap, unsigned *mode);
/* Percent-encodes s for a query value ('/' and unreserved kept); -1 when out is short. */
int ac_nm_fs_escape(const char *s, char *out, size_t cap);
/* A /v1/client/fs/ls answer as the LIST result: [{name, type, size, mode}] sorted by
 * name, compact (to free); entries with unusable names or modes are left out. */
char *ac_nm_fs_listing(const json_t *ls, ac_error_t **err);
/* ops.files: reads and lists through the fs endpoints where they see the path, everything
 * else as tar over the exec stream (files.c's head comment). */
int ac_nomad_files(const ac_backend_ctx_t *ctx, const json_t *st, const ac_files_req_t *req,
		   ac_error_t **err);

/* --- run.c --- */
/* ops.run: the command as a batch job's task, its output from the task's logs, its status
 * from the task state; with stdin or a terminal, over exec in an idle job. The job is
 * purged on every path (run.c's head comment). */
int ac_nomad_run(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd, int fds[3],
		 ac_result_t *res, ac_error_t **err);

#endif
