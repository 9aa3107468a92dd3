/* The exec wire protocol between a caller and a sandbox's supervisor (unix stream
 * socket). Every message is a 4-byte little-endian length and a JSON object; the
 * request carries the caller's stdin/stdout/stderr as SCM_RIGHTS, so the command
 * writes straight into them.
 *   request  {argv[], env[], cwd, user, timeout, tty, stdin, rows, cols}
 *   reply    {"started":pid}  (+ the pty master fd when tty)  or  {"error":..., "stage":n,
 * "errno":n} caller   {"signal":n}     (relay), {"rows":r,"cols":c} (unused: the caller owns the
 * master) reply    {"exit_code":n, "signal":n, "timed_out":bool} */
#ifndef AGENTCELL_PROTO_H
#define AGENTCELL_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define AC_PROTO_MAX_MSG (1u << 20)
#define AC_PROTO_MAX_FDS 4

/* Sends one message with up to AC_PROTO_MAX_FDS descriptors. */
int ac_proto_send(int sock, json_t *msg, const int *fds, int nfds);
/* Receives one message (and up to maxfds <= AC_PROTO_MAX_FDS descriptors into fds, -1 filled).
 * Returns 0, or -1 with errno (EPROTO for malformed input, 0-length read -> ECONNRESET). */
int ac_proto_recv(int sock, json_t **msg, int *fds, int maxfds);
/* The same; with SO_PASSCRED on sock, *peer receives the sender's pid as the kernel
 * vouches for it, in the receiver's PID namespace (unchanged when none came). */
#include <sys/types.h>
int ac_proto_recv_cred(int sock, json_t **msg, int *fds, int maxfds, pid_t *peer);
/* Parses and validates an exec request into a command (strings point into req). */
struct ac_cmd;
int ac_proto_parse_request(json_t *req, struct ac_cmd *cmd, char **errmsg);
json_t *ac_proto_build_request(const struct ac_cmd *cmd);

#endif
