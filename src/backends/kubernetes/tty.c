/* A stream's terminal and signals (cluster.h, "tty.c"): the size on channel 4 after the
 * upgrade and on every SIGWINCH, and the signals that stop the command through the exec
 * wrapper's kill handle. How signals are taken and waited for is shared with the Nomad
 * stream (src/backends/remote/streamsig.h). */
#include <string.h>

#include "base/util.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/remote/remote.h"
#include "backends/remote/streamsig.h"

static int send_resize(ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_error_t **err)
{
	unsigned w, h;
	const int fds[3] = {s->in_fd, s->out_fd, s->err_fd};
	ac_stream_term_size(fds, s->rows, s->cols, &w, &h);
	unsigned char m[64];
	size_t n = ac_k8s_frame_resize(m, sizeof(m), w, h);
	return n ? ac_ws_send(ws, AC_WS_BINARY, m, n, err) : 0;
}

int ac_kc_stream_begin(ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_stream_sigs_t *g,
		       ac_error_t **err)
{
	memset(g, 0, sizeof(*g)); /* ac_stream_sigs_end may follow a failed resize */
	if (s->stopped)
		*s->stopped = 0;
	if (s->tty && send_resize(ws, s, err) < 0)
		return -1;
	ac_stream_sigs_begin(g, s->stop_signals, s->tty && s->winch);
	return 0;
}

int ac_kc_stream_signals(ac_kc_t *k, ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_stream_sigs_t *g,
			 int64_t *deadline_ms, ac_error_t **err)
{
	bool winch;
	int sig = ac_stream_sigs_take(g, &winch);
	if (winch && send_resize(ws, s, err) < 0)
		return -1;
	if (!sig)
		return 0;
	if (s->stopped)
		*s->stopped = sig;
	if (!s->kill_id)
		return 2;
	/* The killer ends everything the command started; its stream then ends with the
	 * command's own status. */
	ac_kc_run_killer(k, s->kill_id);
	*deadline_ms = ac_kc_now_ms() + AC_STREAM_STOP_GRACE_MS;
	return 0;
}
