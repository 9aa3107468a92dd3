/* The Docker/Podman backend: the Docker Engine API (Podman's compatible API too) over a unix
 * socket or plain TCP. proto.c is the pure half (request builders, answer parsers, the
 * stream demultiplexer; unit-tested and fuzzed without an engine); client.c the transport
 * (libcurl, loaded with dlopen); backend.c the struct ac_backend_ops; archive.c the files
 * (the archive endpoint as the transport of src/backends/tarfiles.c). */
#ifndef AGENTCELL_DOCKER_H
#define AGENTCELL_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "agentcell/backend.h"
#include "agentcell/types.h"

/* Caps on what the engine sends back. */
#define AC_DOCKER_ANSWER_MAX  (4u << 20)   /* a JSON answer (inspect, list) */
#define AC_DOCKER_HEAD_MAX    (16u * 1024) /* an HTTP response head */
#define AC_DOCKER_ERRBODY_MAX (64u * 1024) /* an error body read off a raw connection */

#define AC_DOCKER_LABEL_SANDBOX "agentcell.sandbox"
#define AC_DOCKER_LABEL_MANAGED "agentcell.managed"
#define AC_DOCKER_LABEL_RUN	"agentcell.run"
#define AC_DOCKER_DEFAULT_IMAGE "alpine:3.20"

/* ---- where the engine is ---- */
typedef struct ac_docker_host {
	bool is_unix;
	char path[108]; /* unix socket path */
	char host[256]; /* tcp host name or address */
	unsigned port;	/* tcp port */
	char spec[400]; /* unix:///path or tcp://host:port, as recorded in state */
	char base[300]; /* URL prefix: http://localhost or http://host:port */
} ac_docker_host_t;

/* Parses unix:///path, unix:/path, /path (a socket path) or tcp://host[:port] (2375 by
 * default; [v6] addresses too). tls (https, tcp with DOCKER_TLS_VERIFY) is refused. */
int ac_docker_host_parse(const char *s, ac_docker_host_t *h, ac_error_t **err);
/* Finds an engine: spec if given, else DOCKER_HOST (for podman: CONTAINER_HOST first), else
 * the first existing socket of /var/run/docker.sock, /run/podman/podman.sock,
 * $XDG_RUNTIME_DIR/podman/podman.sock (podman: the podman ones first). *source (optional)
 * says where it came from. AC_ERR_UNSUPPORTED when none is found. */
int ac_docker_host_find(const char *spec, bool podman, ac_docker_host_t *h, const char **source,
			ac_error_t **err);

/* ---- request builders (pure) ---- */
/* Percent-encodes s (everything but unreserved characters) into buf; -1 if it does not fit. */
int ac_docker_escape(const char *s, char *buf, size_t len);
/* The container's name for a sandbox: agentcell-<name>. */
void ac_docker_container_name(const char *sandbox, char *buf, size_t len);
/* POST /containers/create body for a persistent sandbox (run == NULL: kept alive by an init
 * and an idle command) or a one-shot run (run: the command, with its env, cwd, user, tty).
 * extra_env: agent keys etc. (NULL-terminated or NULL). NULL on a state that cannot be
 * expressed (err set). */
json_t *ac_docker_create_body(const json_t *state, const ac_cmd_t *run, char *const *extra_env,
			      ac_error_t **err);
/* POST /containers/{id}/exec body. */
json_t *ac_docker_exec_body(const ac_cmd_t *cmd, char *const *extra_env, const char *default_cwd);
/* Limits for /containers/{id}/update (Docker) and libpod's update (Podman 4). */
json_t *ac_docker_update_body(uint64_t memory_mb, double cpus, uint64_t pids);
json_t *ac_docker_update_body_libpod(uint64_t memory_mb, double cpus, uint64_t pids);
/* Adds to a create body: the CA bundle's read-only bind at AC_NET_SANDBOX_BUNDLE (bundle
 * non-NULL) and the agentcell.run label (one_shot). -1 (AC_ERR_INVALID) for a bundle path
 * the engine cannot bind (a ':' in it). */
int ac_docker_body_extend(json_t *body, const char *bundle, bool one_shot, ac_error_t **err);
/* The image a state asks for ("host" means the default image). */
const char *ac_docker_image_of(const json_t *state);

/* ---- answer parsers (pure; input from the engine) ---- */
/* The one-line message of an error answer ({"message": ...} or plain text), control
 * characters replaced. */
void ac_docker_error_text(const char *body, size_t len, char *out, size_t outlen);
/* {"Id": "..."} of create answers: hex id, 12-128 characters. */
int ac_docker_parse_id(const char *body, size_t len, char *id, size_t idlen);

typedef struct ac_docker_inspect {
	bool running, oom_killed;
	long long pid, exit_code;
	char id[129];
	char status[32];
} ac_docker_inspect_t;
/* GET /containers/{id}/json */
int ac_docker_parse_inspect(const char *body, size_t len, ac_docker_inspect_t *out);
/* GET /exec/{id}/json: running, exit_code, pid. */
int ac_docker_parse_exec_inspect(const char *body, size_t len, ac_docker_inspect_t *out);
/* GET /containers/json: [{id, name, sandbox, state, run}] of containers that carry the
 * agentcell.managed label (others are skipped). */
int ac_docker_parse_list(const char *body, size_t len, json_t **out);

/* X-Docker-Container-Path-Stat (base64 of {"name", "size", "mode", ...}): Go's file mode
 * (bit 31: directory, bit 27: symlink). -1 when malformed. */
int ac_docker_parse_path_stat(const char *b64, bool *is_dir, bool *is_link, long long *size);

/* An HTTP/1.x response head: status code, where the head ends (bytes consumed), and the
 * body framing. 0: complete head parsed; 1: need more bytes; -1: malformed. */
typedef struct ac_http_head {
	int status;
	size_t head_len;
	long long content_length; /* -1: none */
	bool chunked;
} ac_http_head_t;
int ac_docker_parse_head(const char *buf, size_t len, ac_http_head_t *h);

/* ---- the 8-byte-header stream (attach / exec without a tty) ---- */
typedef void (*ac_demux_sink_fn)(int stream, const char *data, size_t len, void *arg);
typedef struct ac_demux {
	unsigned char hdr[8];
	size_t hlen;
	uint32_t left; /* payload bytes still due in the current frame */
	int stream;
	bool broken;
} ac_demux_t;
/* Feeds bytes of the stream; the payload goes to sink(stream 1 = stdout, 2 = stderr; the
 * stdin stream 0 counts as stdout) as it arrives, never buffered. -1 (and broken, from then
 * on) on a malformed header: unknown stream id or non-zero padding. */
int ac_demux_feed(ac_demux_t *d, const char *buf, size_t len, ac_demux_sink_fn sink, void *arg);

/* ---- transport (client.c) ---- */
typedef struct ac_docker ac_docker_t;
int ac_docker_open(const ac_docker_host_t *h, ac_docker_t **out, ac_error_t **err);
void ac_docker_free(ac_docker_t *d);
const ac_docker_host_t *ac_docker_host(const ac_docker_t *d);

typedef struct ac_docker_req {
	const char *method, *path;
	json_t *json;  /* request body (not consumed) */
	int upload_fd; /* > 0: PUT the first upload_len bytes of this fd (tar) */
	uint64_t upload_len;
	int download_fd; /* > 0: a 2xx answer's body goes here, at most download_max */
	uint64_t download_max;
	long timeout_ms; /* 0: none */
} ac_docker_req_t;
typedef struct ac_docker_resp {
	long status;
	char *body; /* NUL-terminated (to free); NULL with download_fd */
	size_t len;
	char path_stat[1024]; /* X-Docker-Container-Path-Stat of archive answers */
} ac_docker_resp_t;
/* One request. Fails (AC_ERR_BACKEND) only when the engine cannot be reached or answers
 * garbage; HTTP errors are in resp->status. */
int ac_docker_call(ac_docker_t *d, const ac_docker_req_t *req, ac_docker_resp_t *resp,
		   ac_error_t **err);
void ac_docker_resp_free(ac_docker_resp_t *r);
/* AC_ERR_* for an engine answer with this HTTP status, with what of the message it says;
 * what = "create container 'x'". */
int ac_docker_fail(const ac_docker_resp_t *r, const char *what, ac_error_t **err);
/* Convenience: method + path (+ JSON body); < 0 on transport failure or when the status is
 * not one of the expected (2xx, or `also`, e.g. 304). resp (optional) keeps the answer. */
int ac_docker_simple(ac_docker_t *d, const char *method, const char *path, json_t *json, long also,
		     ac_docker_resp_t *resp, const char *what, ac_error_t **err);

/* A hijacked connection (exec start / attach): the raw socket after the response head. */
typedef struct ac_docker_conn {
	void *curl;
	int fd;
	char *pending; /* stream bytes that came with the head */
	size_t npending;
} ac_docker_conn_t;
/* POST path with the JSON body asking for an upgrade to a raw stream. */
int ac_docker_hijack(ac_docker_t *d, const char *path, json_t *json, ac_docker_conn_t *c,
		     const char *what, ac_error_t **err);
void ac_docker_conn_close(ac_docker_conn_t *c);
/* Writes all of p to a (non-blocking) stream socket. */
int ac_docker_send_all(int fd, const char *p, size_t n);

/* ---- backend helpers ---- */
/* The engine of a sandbox (its state's "docker_host", else found now). */
int ac_docker_for_state(const json_t *state, ac_docker_t **out, ac_error_t **err);
/* agentcell.managed containers without a state file in this home (doctor):
 * [{id, name, sandbox, state}]. */
int ac_docker_orphans(const ac_backend_ctx_t *ctx, ac_docker_t *d, json_t **out, ac_error_t **err);
/* ops.probe of docker (doctor): {"engine", "source", "version"} or {"error"}, plus
 * "orphans" (see ac_docker_orphans) when the engine answers. */
/* GET /version: "Docker Engine 24.0.7 (API 1.43)" or "Podman Engine 4.3.1 (API 1.41)". */
int ac_docker_parse_version(const char *body, size_t len, char *out, size_t outlen);
/* Files (archive.c). */
int ac_docker_files(const ac_backend_ctx_t *ctx, const json_t *state, const ac_files_req_t *req,
		    ac_error_t **err);

/* The ops tables (backend.c): identical but for available and probe. */
extern const ac_backend_ops_t ac_docker_ops;
extern const ac_backend_ops_t ac_podman_ops;
/* Whether the state's backend is podman (its engine is looked up podman-first). */
bool ac_docker_is_podman(const json_t *st);
/* One request about the sandbox's container: /containers/<id or name><suffix>. */
int ac_docker_container_call(ac_docker_t *d, const json_t *st, const char *method,
			     const char *suffix, json_t *json, ac_docker_resp_t *r,
			     ac_error_t **err);
/* What a container is created with, besides its state. */
typedef struct ac_docker_create_opts {
	const ac_cmd_t *run;	/* the one-shot command as the container's own; NULL: idle loop */
	char *const *extra_env; /* agent keys etc. (NULL-terminated or NULL) */
	const char *bundle;	/* bind-mounted read-only at AC_NET_SANDBOX_BUNDLE; NULL: none */
	bool one_shot;		/* a run's container (label agentcell.run), whatever its command */
} ac_docker_create_opts_t;
/* Creates the sandbox's container; its id into id. */
int ac_docker_create_container(ac_docker_t *d, const json_t *st, const ac_docker_create_opts_t *o,
			       char *id, size_t idlen, ac_error_t **err);
/* DELETE /containers/<ref>?force=1 (ref escaped); a missing container is fine. */
int ac_docker_remove_container(ac_docker_t *d, const char *ref, ac_error_t **err);

/* The command engine (exec.c): the ops exec, run, exec_detach, kill_detached. */
int ac_docker_exec(const ac_backend_ctx_t *ctx, const char *name, const json_t *st,
		   const ac_cmd_t *cmd, int fds[3], ac_result_t *res, ac_error_t **err);
int ac_docker_run(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd, int fds[3],
		  ac_result_t *res, ac_error_t **err);
int ac_docker_exec_detach(const ac_backend_ctx_t *ctx, const json_t *st, const ac_cmd_t *cmd,
			  int out_fd, int err_fd, int status_fd, long *pid, long *shim,
			  ac_error_t **err);
int ac_docker_kill_detached(const ac_backend_ctx_t *ctx, const json_t *st, const json_t *status,
			    ac_error_t **err);

/* ---- the network (net.c): the egress proxy of a state with "net" (src/net/net.h) ---- */
bool ac_docker_has_net(const json_t *st);
/* AC_ERR_UNSUPPORTED unless the engine is on this machine (a unix socket). */
int ac_docker_net_local(ac_docker_t *d, ac_error_t **err);
/* At create: the engine checked, the sandbox's CA bundle made; *bundle its path (free it),
 * NULL without secrets or without "net". */
int ac_docker_net_bundle(const ac_backend_ctx_t *ctx, ac_docker_t *d, const json_t *st,
			 char **bundle, ac_error_t **err);
typedef struct ac_docker_net {
	bool on, proxy;
	json_t *orders;
	char *bundle;
	char pidfile[4200];
} ac_docker_net_t;
/* Before the container starts: a leftover proxy ended, the orders and the bundle made (a
 * no-op without "net"). End with ac_docker_net_end. */
int ac_docker_net_begin(const ac_backend_ctx_t *ctx, ac_docker_t *d, const json_t *st,
			ac_docker_net_t *n, ac_error_t **err);
/* After it started (pid: inspect's State.Pid, id: the container's full id): the listener
 * made in its network namespace, the proxy spawned for the life of that pid. */
int ac_docker_net_attach(ac_docker_net_t *n, const char *sandbox, long pid, const char *id,
			 ac_error_t **err);
void ac_docker_net_end(ac_docker_net_t *n);
/* Starts the container (backend.c), checks it runs and attaches its network (net: from
 * ac_docker_net_begin); a container whose proxy cannot start is stopped again. */
int ac_docker_start_container(ac_docker_t *d, const json_t *st, ac_docker_net_t *net,
			      ac_error_t **err);

static inline void ac_docker_freep(ac_docker_t **d)
{
	ac_docker_free(*d);
}
#define _cleanup_docker_ __attribute__((cleanup(ac_docker_freep)))
/* The libpod route for limits and waits (Podman 4's compatible API lacks them). */
#define LIBPOD_PREFIX "/v4.0.0/libpod"
/* Kills a process tree by its host pid (exec timeouts, exec-kill); 0 when nothing was
 * visible to kill. */
int ac_docker_kill_tree(long pid);

#endif
