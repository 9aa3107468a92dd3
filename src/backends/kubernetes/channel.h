/* The Kubernetes remotecommand protocol on WebSocket binary messages (channel.c): framing of
 * v4.channel.k8s.io and v5.channel.k8s.io, the status channel's metav1.Status, the URLs of
 * pods/exec, pods/attach and pods/log (the exec wrapper that gives a command what the exec
 * API lacks is src/backends/execwrap.h). Pure: no I/O.
 *
 * Framing: every message is one channel byte and the payload: 0 stdin, 1 stdout, 2 stderr,
 * 3 error (the final metav1.Status), 4 resize ({"Width":W,"Height":H}). v5 adds the close
 * signal [255, channel] by which the client half-closes stdin; v4 has none (stdin ends only
 * with the connection). */
#ifndef AGENTCELL_BACKENDS_K8S_CHANNEL_H
#define AGENTCELL_BACKENDS_K8S_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "agentcell/error.h"
#include "agentcell/types.h"

enum {
	AC_K8S_CH_STDIN = 0,
	AC_K8S_CH_STDOUT = 1,
	AC_K8S_CH_STDERR = 2,
	AC_K8S_CH_ERROR = 3,
	AC_K8S_CH_RESIZE = 4,
	AC_K8S_CH_CLOSE = 255, /* v5: [255, channel] half-closes that channel */
};

#define AC_K8S_PROTO_V5	  "v5.channel.k8s.io"
#define AC_K8S_PROTO_V4	  "v4.channel.k8s.io"
#define AC_K8S_STATUS_MAX (64u * 1024) /* a status message larger than this is refused */

/* The subprotocols to offer, in order of preference (NULL-terminated). */
extern const char *const ac_k8s_exec_protocols[];
/* 5 or 4 for the subprotocol the server chose; -1 for anything else (NULL included). */
int ac_k8s_proto_version(const char *chosen);

/* One message: the channel byte and data into out[0..cap); returns its length (len + 1), or
 * 0 when cap is too small or channel is not 0-255. */
size_t ac_k8s_frame(unsigned char *out, size_t cap, int channel, const void *data, size_t len);
/* A resize message (channel 4, {"Width":W,"Height":H}); returns its length or 0. */
size_t ac_k8s_frame_resize(unsigned char *out, size_t cap, unsigned width, unsigned height);
/* v5's close signal for channel into out[2]: returns 2; 0 for v4 (it has none). */
size_t ac_k8s_frame_close(int version, int channel, unsigned char out[2]);
/* A received message: 1 with *channel (0-4: a server may open 0 and 4 with an empty
 * message, the caller ignores those) and the payload (pointing into msg); 0 for an empty
 * message (ignore it); -1 for a channel outside 0-4 (a protocol error). */
int ac_k8s_frame_decode(const unsigned char *msg, size_t len, int *channel,
			const unsigned char **payload, size_t *plen);

/* The status channel's metav1.Status: Success -> 0 with *exit_code 0; Failure with reason
 * NonZeroExitCode and a cause {reason: ExitCode, message: "N"} (0-255) -> 0 with
 * *exit_code N. Any other answer -> -1, AC_ERR_BACKEND with the server's message (and
 * err->exit_code 127 when it says the executable was not found, 126 when it could not be
 * run, as a shell would). */
int ac_k8s_exec_status(const void *data, size_t len, int *exit_code, ac_error_t **err);

/* /api/v1/namespaces/NS/pods/POD/exec?container=C&stdin=..&stdout=true&stderr=..&tty=..
 * &command=ARGV0&command=... (stderr=false with a tty: the terminal carries both). ns, pod
 * and container must be DNS names. To free; NULL with AC_ERR_INVALID otherwise. */
char *ac_k8s_exec_path(const char *ns, const char *pod, const char *container, char *const *argv,
		       bool in, bool tty, ac_error_t **err);
/* The same for pods/attach (no command). */
char *ac_k8s_attach_path(const char *ns, const char *pod, const char *container, bool in, bool tty,
			 ac_error_t **err);
/* /api/v1/namespaces/NS/pods/POD/log?container=C[&follow=true]. */
char *ac_k8s_log_path(const char *ns, const char *pod, const char *container, bool follow,
		      ac_error_t **err);

#endif
