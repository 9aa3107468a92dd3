/* Signals and terminal size of a remote exec stream (see streamsig.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "backends/remote/streamsig.h"

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

void ac_stream_term_size(const int fds[3], unsigned short rows, unsigned short cols,
			 unsigned *width, unsigned *height)
{
	for (int i = 0; i < 3; i++) {
		struct winsize ws;
		if (fds[i] >= 0 && ioctl(fds[i], TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			*width = ws.ws_col;
			*height = ws.ws_row;
			return;
		}
	}
	*width = cols ? cols : 80;
	*height = rows ? rows : 24;
}

void ac_stream_sigs_begin(ac_stream_sigs_t *g, const int *stop, bool winch)
{
	memset(g, 0, sizeof(*g));
	for (const int *p = stop; p && *p && g->n < 7; p++)
		g->sig[g->n++] = *p;
	if (winch)
		g->sig[g->n++] = SIGWINCH;
	if (!g->n)
		return;
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
}

int ac_stream_sigs_take(ac_stream_sigs_t *g, bool *winch)
{
	*winch = false;
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
		*winch = true;
	}
	int sig = got_stop;
	if (!sig)
		return 0;
	got_stop = 0;
	if (g->stop)
		return 0; /* stopped already: the killer ran, the grace runs */
	g->stop = sig;
	return sig;
}

int ac_stream_sigs_poll(const ac_stream_sigs_t *g, struct pollfd *p, nfds_t n, int timeout_ms)
{
	if (!g->on)
		return poll(p, n, timeout_ms);
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	return ppoll(p, n, timeout_ms < 0 ? NULL : &ts, &g->wait);
}

void ac_stream_sigs_end(ac_stream_sigs_t *g)
{
	if (!g->on)
		return;
	for (int i = 0; i < g->n; i++)
		sigaction(g->sig[i], &g->old[i], NULL);
	pthread_sigmask(SIG_SETMASK, &g->saved, NULL);
	g->on = false;
}

bool ac_stream_raw(int fd, bool tty, struct termios *saved)
{
	if (!tty || fd < 0 || !isatty(fd) || tcgetattr(fd, saved) < 0)
		return false;
	struct termios t = *saved;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) == 0;
}

void ac_stream_unraw(int fd, bool raw, const struct termios *saved)
{
	if (raw)
		tcsetattr(fd, TCSANOW, saved);
}

bool ac_stream_needs_kill(int rc, int stopped, ac_error_t *const *err)
{
	return !stopped && (rc == 1 || (rc < 0 && err && *err && (*err)->kind == AC_ERR_STATE));
}

int ac_stream_result(int rc, int code, int stopped, ac_result_t *res)
{
	memset(res, 0, sizeof(*res));
	if (rc < 0)
		return -1;
	if (stopped) /* the killer ran: the command's own status, else the signal's */
		res->exit_code = rc == 0 ? code : 128 + stopped;
	else if (rc == 1) {
		res->timed_out = true;
		res->exit_code = 124;
		return 0;
	} else
		res->exit_code = code;
	if (res->exit_code > 128 && res->exit_code < 128 + 65)
		res->signal = res->exit_code - 128;
	return 0;
}
