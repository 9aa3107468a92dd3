/* The frames of Nomad's allocation exec stream (GET /v1/client/allocation/ID/exec upgraded to
 * a WebSocket; frames.c). Pure: no I/O.
 *
 * Every message is one JSON object in a text message, as Nomad's api/allocations_exec.go
 * and the driver plugins' ExecTaskStreamingRequest/Response define them; byte strings are
 * standard padded base64, as Go encodes []byte.
 *   client -> server  {"stdin":{"data":B64}}, {"stdin":{"close":true}} (end of input),
 *                     {"tty_size":{"height":H,"width":W}}, {} (a heartbeat; the Go client
 *                     sends one every 10 s)
 *   server -> client  {"stdout":{"data":B64}}, {"stderr":{"data":B64}},
 *                     {"stdout":{"close":true}}, {"stderr":{"close":true}}, and last
 *                     {"exited":true,"result":{"exit_code":N}}
 * The server's encoder omits empty fields (omitempty): exit code 0 comes as "result":{};
 * a result may also hold "signal" and "oom_killed" (a driver's ExitResult). The exec driver
 * reports a signal-killed command as exit code 128+N, as a shell does; a result with exit
 * code 0 and a signal N is read as 128+N too.
 *
 * Errors never come as a frame: the agent checks the request after the upgrade (ACL, the
 * allocation, the task) and any failure, then or while the command runs, ends the stream
 * with a close frame whose code is 1011 (an internal error) or 1008 (any other) and whose
 * reason is the error's text ("Permission denied", "Unknown allocation", "task \"x\" is
 * not running."). After the exited frame the agent drops the connection without a close
 * frame: the exited frame is the end. */
#ifndef AGENTCELL_BACKENDS_NOMAD_FRAMES_H
#define AGENTCELL_BACKENDS_NOMAD_FRAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"

/* /v1/client/allocation/ALLOC/exec?task=TASK&command=JSON&tty=true|false, then
 * &namespace=NS and &region=REGION when not "" or NULL; the command is argv as a JSON
 * array of strings, query-escaped. alloc: 1-64 of [A-Za-z0-9-] (Nomad's are UUIDs); argv
 * non-empty and valid UTF-8. To free; NULL with AC_ERR_INVALID otherwise. */
char *ac_nm_exec_path(const char *alloc, const char *task, char *const *argv, bool tty,
		      const char *ns, const char *region, ac_error_t **err);

/* A frame's data, decoded, larger than this is refused (and never sent). */
#define AC_NM_FRAME_DATA_MAX (16u * 1024 * 1024)

/* What a server frame is. */
enum {
	AC_NM_FRAME_NONE = 0, /* {}: nothing (a heartbeat) */
	AC_NM_FRAME_STDOUT,
	AC_NM_FRAME_STDERR,
	AC_NM_FRAME_EXITED,
};

typedef struct ac_nm_frame {
	int kind;
	unsigned char *data; /* STDOUT/STDERR: the bytes (to free with ac_nm_frame_clear) */
	size_t len;
	bool close;	 /* STDOUT/STDERR: the stream ended (after data, when both came) */
	int exit_code;	 /* EXITED: 0-255 */
	int signal;	 /* EXITED: the result's "signal" (1-127), 0 when absent */
	bool oom_killed; /* EXITED: the driver says the OOM killer ended it */
} ac_nm_frame_t;

/* {"stdin":{"data":B64}} for data[0..len) (len 1 - AC_NM_FRAME_DATA_MAX), NUL-terminated, to
 * free; NULL when len is out of range or memory ran out. */
char *ac_nm_frame_stdin(const void *data, size_t len);
/* {"stdin":{"close":true}} */
const char *ac_nm_frame_stdin_close(void);
/* {} */
const char *ac_nm_frame_heartbeat(void);
/* {"tty_size":{"height":H,"width":W}} into out[0..cap) (64 is enough); returns its length,
 * 0 when a size is 0 or over 65535 (a terminal's size is 16-bit) or cap is too small. */
size_t ac_nm_frame_tty_size(char *out, size_t cap, unsigned height, unsigned width);

/* One received text message into *f (cleared first): 0, or -1 with AC_ERR_BACKEND and a
 * one-line message (its text within 60 bytes, control characters escaped) for anything
 * that is not exactly one of the server's frames: not a JSON object, an unknown or
 * duplicate key, two kinds at once, data that is not base64 or over
 * AC_NM_FRAME_DATA_MAX, an exit code outside 0-255. who names the agent in the message
 * ("nomad at ADDR"). */
int ac_nm_frame_decode(const char *msg, size_t len, const char *who, ac_nm_frame_t *f,
		       ac_error_t **err);
/* Frees f's data (f stays usable). */
void ac_nm_frame_clear(ac_nm_frame_t *f);

/* The error that a close frame before the exited frame means: -1 with err set to
 * "WHO: exec: REASON" (control characters escaped) or, for an empty reason, to "the exec
 * stream ended before the command's exit status (close code N)". Kind: AC_ERR_PERMISSION
 * for "Permission denied", AC_ERR_NOT_RUNNING for an allocation or task that is gone or not
 * running, else AC_ERR_BACKEND; err->exit_code 127 when the reason says the executable
 * was not found, 126 when it could not be run, as a shell would. */
int ac_nm_exec_close_error(const char *who, unsigned code, const char *reason, ac_error_t **err);

#endif
