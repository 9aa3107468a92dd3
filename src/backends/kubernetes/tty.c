/* A stream's terminal and signals (cluster.h, "tty.c"): the size on channel 4 after the
 * upgrade and on every SIGWINCH, and the signals that stop the command through the exec
 * wrapper's kill handle.
 *
 * The signals are blocked outside ac_kc_sigs_poll and let in only inside it (ppoll), so
 * that none arrives between the check of its flag and the wait: a resize is always sent on
 * before the input that followed it (a user resizes, then types). While messages keep
 * arriving the stream never waits: each turn then lets pending signals in on its own. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "base/util.h"
#include "backends/kubernetes/channel.h"
#include "backends/kubernetes/cluster.h"
#include "backends/remote/remote.h"

/* After a stop ran the killer: how long the command's status may take to arrive. */
#define STOP_GRACE_MS 10000

static volatile sig_atomic_t got_stop, got_winch;

static void on_stop(int sig)
{
	got_stop = sig;
}

static void on_winch(int sig)
{
	(void)sig;
	got_winch = 1;
}

/* The size of the first terminal among the stream's descriptors, else rows x cols. */
static void term_size(const ac_kc_stream_t *s, unsigned *w, unsigned *h)
{
	const int fds[3] = {s->in_fd, s->out_fd, s->err_fd};
	for (int i = 0; i < 3; i++) {
		struct winsize ws;
		if (fds[i] >= 0 && ioctl(fds[i], TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			*w = ws.ws_col;
			*h = ws.ws_row;
			return;
		}
	}
	*w = s->cols ? s->cols : 80;
	*h = s->rows ? s->rows : 24;
}

static int send_resize(ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_error_t **err)
{
	unsigned w, h;
	term_size(s, &w, &h);
	unsigned char m[64];
	size_t n = ac_k8s_frame_resize(m, sizeof(m), w, h);
	return n ? ac_ws_send(ws, AC_WS_BINARY, m, n, err) : 0;
}

int ac_kc_stream_begin(ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_kc_sigs_t *g, ac_error_t **err)
{
	memset(g, 0, sizeof(*g));
	if (s->stopped)
		*s->stopped = 0;
	if (s->tty && send_resize(ws, s, err) < 0)
		return -1;
	for (const int *p = s->stop_signals; p && *p && g->n < 7; p++)
		g->sig[g->n++] = *p;
	if (s->tty && s->winch)
		g->sig[g->n++] = SIGWINCH;
	if (!g->n)
		return 0;
	got_stop = 0;
	got_winch = 0;
	sigset_t block;
	sigemptyset(&block);
	for (int i = 0; i < g->n; i++)
		sigaddset(&block, g->sig[i]);
	pthread_sigmask(SIG_BLOCK, &block, &g->saved);
	g->wait = g->saved;
	for (int i = 0; i < g->n; i++) {
		struct sigaction sa = {.sa_handler = g->sig[i] == SIGWINCH ? on_winch : on_stop};
		sigemptyset(&sa.sa_mask);
		sigaction(g->sig[i], &sa, &g->old[i]);
		sigdelset(&g->wait, g->sig[i]);
	}
	g->on = true;
	return 0;
}

int ac_kc_stream_signals(ac_kc_t *k, ac_ws_conn_t *ws, const ac_kc_stream_t *s, ac_kc_sigs_t *g,
			 int64_t *deadline_ms, ac_error_t **err)
{
	if (!g->on)
		return 0;
	sigset_t pend;
	if (sigpending(&pend) == 0) {
		for (int i = 0; i < g->n; i++) {
			if (sigismember(&pend, g->sig[i])) {
				struct timespec zero = {0, 0};
				(void)ppoll(NULL, 0, &zero, &g->wait);
				break;
			}
		}
	}
	if (got_winch) {
		got_winch = 0;
		if (send_resize(ws, s, err) < 0)
			return -1;
	}
	int sig = got_stop;
	if (!sig)
		return 0;
	got_stop = 0;
	if (g->stop)
		return 0; /* stopped already: the killer ran, the grace runs */
	g->stop = sig;
	if (s->stopped)
		*s->stopped = sig;
	if (!s->kill_id)
		return 2;
	/* The killer ends everything the command started; its stream then ends with the
	 * command's own status. */
	ac_kc_run_killer(k, s->kill_id);
	*deadline_ms = ac_kc_now_ms() + STOP_GRACE_MS;
	return 0;
}

int ac_kc_sigs_poll(const ac_kc_sigs_t *g, struct pollfd *p, nfds_t n, int timeout_ms)
{
	if (!g->on)
		return poll(p, n, timeout_ms);
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	return ppoll(p, n, timeout_ms < 0 ? NULL : &ts, &g->wait);
}

void ac_kc_stream_end(ac_kc_sigs_t *g)
{
	if (!g->on)
		return;
	for (int i = 0; i < g->n; i++)
		sigaction(g->sig[i], &g->old[i], NULL);
	pthread_sigmask(SIG_SETMASK, &g->saved, NULL);
	g->on = false;
}
