/* Commands whose output goes to a program (see include/agentcell/capture.h): a service of
 * the core for the front ends that are programs, the HTTP API and MCP.
 *
 * The command writes into two pipes; a pump thread reads them and calls the consumer. When
 * the command has exited, the pump is told through an eventfd to take what the pipes still
 * hold and stop: a process the command left in the background may keep the pipes open for
 * ever, and the caller must not wait for it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agentcell/capture.h"
#include "base/util.h"

typedef struct pump {
	int rd[2]; /* read ends: stdout, stderr */
	int done;  /* eventfd: the command has exited */
	ac_output_fn fn;
	void *ctx;
} pump_t;

/* Reads once from fd; false at EOF or error. */
static bool drain_once(pump_t *p, int i, char *buf, size_t cap)
{
	ssize_t n = read(p->rd[i], buf, cap);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	p->fn(p->ctx, i + 1, buf, (size_t)n);
	return true;
}

static void *pump_main(void *arg)
{
	pump_t *p = arg;
	char buf[65536];
	bool open_[2] = {true, true};
	while (open_[0] || open_[1]) {
		struct pollfd fds[3] = {{open_[0] ? p->rd[0] : -1, POLLIN, 0},
					{open_[1] ? p->rd[1] : -1, POLLIN, 0},
					{p->done, POLLIN, 0}};
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++)
			if (open_[i] && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				open_[i] = drain_once(p, i, buf, sizeof(buf));
		if (fds[2].revents & POLLIN) {
			/* The command has exited: what it wrote is in the pipes now. */
			for (int i = 0; i < 2; i++) {
				fcntl(p->rd[i], F_SETFL, O_NONBLOCK);
				while (open_[i]) {
					ssize_t n = read(p->rd[i], buf, sizeof(buf));
					if (n <= 0)
						break;
					p->fn(p->ctx, i + 1, buf, (size_t)n);
				}
			}
			break;
		}
	}
	return NULL;
}

int ac_exec_pumped(ac_manager_t *m, const char *sandbox, const ac_sandbox_opts_t *opts,
		   const ac_cmd_t *cmd_in, ac_output_fn fn, void *ctx, ac_result_t *res,
		   ac_error_t **err)
{
	int out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		if (out[0] >= 0) {
			close(out[0]);
			close(out[1]);
		}
		return ac_error_set(err, AC_ERR_INTERNAL, e, "pipe");
	}
	pump_t p = {.rd = {out[0], errp[0]}, .fn = fn, .ctx = ctx};
	p.done = eventfd(0, EFD_CLOEXEC);
	pthread_t th;
	int rc = -1;
	if (p.done < 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "eventfd");
		goto out;
	}
	if ((errno = pthread_create(&th, NULL, pump_main, &p)) != 0) {
		ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot start the output thread");
		goto out;
	}
	ac_cmd_t cmd = *cmd_in;
	cmd.tty = false;
	cmd.stdin_open = false;
	int fds[3] = {-1, out[1], errp[1]};
	*res = (ac_result_t){0};
	if (sandbox)
		rc = ac_manager_exec(m, sandbox, &cmd, fds, res, err);
	else
		rc = ac_manager_run(m, opts, &cmd, fds, false, NULL, res, err);
	/* Our write ends go first, so a pump that reaches EOF sees it. */
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	uint64_t one = 1;
	(void)!write(p.done, &one, sizeof(one));
	pthread_join(th, NULL);
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (p.done >= 0)
		close(p.done);
	return rc;
}

static void append(char **buf, size_t *len, size_t *dropped, size_t max, const char *data, size_t n)
{
	size_t room = max > *len ? max - *len : 0;
	size_t take = n < room ? n : room;
	if (take) {
		char *nb = realloc(*buf, *len + take + 1);
		if (!nb) {
			*dropped += n;
			return;
		}
		memcpy(nb + *len, data, take);
		*len += take;
		nb[*len] = '\0';
		*buf = nb;
	}
	*dropped += n - take;
}

static void capture_fn(void *ctx, int stream, const char *data, size_t len)
{
	ac_capture_t *c = ctx;
	if (stream == 1)
		append(&c->out, &c->out_len, &c->out_dropped, c->max, data, len);
	else
		append(&c->err, &c->err_len, &c->err_dropped, c->max, data, len);
}

int ac_exec_capture(ac_manager_t *m, const char *sandbox, const ac_sandbox_opts_t *opts,
		    const ac_cmd_t *cmd, size_t max, ac_capture_t *c, ac_error_t **err)
{
	*c = (ac_capture_t){.max = max ? max : AC_CAPTURE_MAX};
	c->out = strdup("");
	c->err = strdup("");
	if (!c->out || !c->err) {
		ac_capture_free(c);
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	return ac_exec_pumped(m, sandbox, opts, cmd, capture_fn, c, &c->res, err);
}

void ac_capture_free(ac_capture_t *c)
{
	free(c->out);
	free(c->err);
	c->out = c->err = NULL;
}
