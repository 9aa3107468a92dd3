/* The exec wire protocol between a caller and a sandbox's supervisor (unix stream socket):
 * the codec (proto.c), pure but for reading and writing the descriptors it is given.
 *
 * Every message is a 4-byte little-endian length and a JSON object. The request carries
 * the caller's stdin, stdout and stderr as SCM_RIGHTS, so the command writes straight
 * into them.
 *
 *   caller -> request  {argv[], env[], cwd, user, timeout, tty, stdin, rows, cols}
 *                      (+ "detach": true and a fourth descriptor, the status record)
 *   shim   -> reply    {"started": pid} (+ the pty master when tty)
 *                      or {"error": text, "stage": n, "errno": n}
 *   caller -> relay    {"signal": n}
 *   shim   -> reply    {"exit_code": n, "signal": n, "timed_out": bool}
 *
 * Strings that are not valid UTF-8 travel as {"base64": "..."}. */
#ifndef AGENTCELL_RT_PROTO_H
#define AGENTCELL_RT_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentcell/types.h"

#define AC_PROTO_MAX_MSG (1u << 20)
#define AC_PROTO_MAX_FDS 4

/* Detached commands: stdout and stderr logs are each kept under this many bytes (the
 * oldest half goes when full, and is counted); the status record has a fixed size. */
#define AC_DETACH_LOG_CAP     (8u << 20)
#define AC_DETACH_STATUS_SIZE 512

/* Sends one message with up to AC_PROTO_MAX_FDS descriptors. 0, or -1 with errno. */
int ac_proto_send(int sock, json_t *msg, const int *fds, int nfds);
/* Receives one message (and up to maxfds <= AC_PROTO_MAX_FDS descriptors into fds, -1 filled).
 * Returns 0, or -1 with errno (EPROTO for malformed input, 0-length read -> ECONNRESET). */
int ac_proto_recv(int sock, json_t **msg, int *fds, int maxfds);
/* The same; with SO_PASSCRED on sock, *peer receives the sender's pid as the kernel
 * vouches for it, in the receiver's PID namespace (unchanged when none came). */
int ac_proto_recv_cred(int sock, json_t **msg, int *fds, int maxfds, pid_t *peer);
/* Parses and validates an exec request into a command (strings point into req). On
 * failure returns -1 with *errmsg (malloc'd) saying why, and cmd owns nothing. */
int ac_proto_parse_request(json_t *req, ac_cmd_t *cmd, char **errmsg);
/* The request for cmd; NULL when out of memory (never a request missing a part). */
json_t *ac_proto_build_request(const ac_cmd_t *cmd);

#endif
