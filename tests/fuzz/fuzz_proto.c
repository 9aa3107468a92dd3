/* Fuzz target: the exec wire protocol (src/runtime/proto.c). The input is (a) a JSON
 * document given to the request validator, (b) a message body framed with its true
 * length and read back through ac_proto_recv, and (c) the raw byte stream itself (its own
 * length header included) read through ac_proto_recv. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agentcell/types.h"
#include "base/util.h"
#include "runtime/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Well under the default socket buffer, so one non-blocking write from this thread always
 * takes the whole frame before the reader runs. */
#define STREAM_MAX (60u * 1024)

static void check_cmd(const ac_cmd_t *cmd)
{
	if (!cmd->argv || !cmd->argv[0] || !cmd->argv[0][0])
		abort();
	for (char **e = cmd->env; e && *e; e++)
		if ((*e)[0] == '=' || !strchr(*e, '='))
			abort();
	if (cmd->cwd && cmd->cwd[0] != '/')
		abort();
	if (cmd->user && !cmd->user[0])
		abort();
	if (!(cmd->timeout >= 0 && cmd->timeout <= 1e9))
		abort();
	if (cmd->rows == 0 || cmd->rows >= 10000 || cmd->cols == 0 || cmd->cols >= 10000)
		abort();
}

static bool cmd_equal(const ac_cmd_t *a, const ac_cmd_t *b)
{
	size_t i;
	for (i = 0; a->argv[i]; i++)
		if (!b->argv[i] || strcmp(a->argv[i], b->argv[i]) != 0)
			return false;
	if (b->argv[i])
		return false;
	for (i = 0; a->env && a->env[i]; i++)
		if (!b->env || !b->env[i] || strcmp(a->env[i], b->env[i]) != 0)
			return false;
	if (b->env && b->env[i])
		return false;
	if (!a->cwd != !b->cwd || (a->cwd && strcmp(a->cwd, b->cwd) != 0))
		return false;
	if (!a->user != !b->user || (a->user && strcmp(a->user, b->user) != 0))
		return false;
	return a->timeout == b->timeout && a->tty == b->tty && a->stdin_open == b->stdin_open &&
	       a->rows == b->rows && a->cols == b->cols;
}

/* Validates req; an accepted request must survive build -> parse unchanged. */
static void parse_request(json_t *req)
{
	ac_cmd_t cmd;
	char *errmsg = NULL;
	if (ac_proto_parse_request(req, &cmd, &errmsg) < 0) {
		if (!errmsg || cmd.argv || cmd.env)
			abort(); /* a refusal always says why and owns nothing */
		free(errmsg);
		return;
	}
	if (errmsg)
		abort();
	check_cmd(&cmd);
	json_t *again = ac_proto_build_request(&cmd);
	if (!again)
		abort();
	ac_cmd_t back;
	if (ac_proto_parse_request(again, &back, &errmsg) < 0 || !cmd_equal(&cmd, &back))
		abort();
	free(back.argv);
	free(back.env);
	json_decref(again);
	free(cmd.argv);
	free(cmd.env);
}

/* Feeds bytes to ac_proto_recv through a socketpair whose writer is closed; returns what
 * recv returned (the message, if any, in *msg). */
static int recv_from(const void *bytes, size_t len, json_t **msg)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	ssize_t n = len ? send(sv[0], bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
	if (n != (ssize_t)len)
		abort(); /* STREAM_MAX keeps every frame within the socket buffer */
	close(sv[0]);
	int fds[3] = {7, 7, 7};
	*msg = NULL;
	int rc = ac_proto_recv(sv[1], msg, fds, 3);
	close(sv[1]);
	if (fds[0] != -1 || fds[1] != -1 || fds[2] != -1)
		abort(); /* nothing was passed: every slot must say so */
	if (rc == 0 && !json_is_object(*msg))
		abort();
	if (rc < 0 && (*msg != NULL || (errno != EPROTO && errno != ECONNRESET)))
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* (a) The validator, on any JSON object (NUL in strings allowed, as a json_t built
	 * in memory could have them). */
	json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
	if (json_is_object(j))
		parse_request(j);
	json_decref(j);

	if (size > STREAM_MAX)
		size = STREAM_MAX;

	/* (b) A well-framed body: recv accepts it exactly when it is one JSON object with
	 * no duplicate keys. */
	uint8_t *frame = malloc(size + 4);
	if (!frame)
		abort();
	uint32_t hdr = (uint32_t)size;
	memcpy(frame, &hdr, 4);
	if (size)
		memcpy(frame + 4, data, size);
	json_t *msg = NULL;
	int rc = recv_from(frame, size + 4, &msg);
	free(frame);
	json_t *direct =
	    size ? json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if ((rc == 0) != json_is_object(direct))
		abort();
	if (rc == 0) {
		if (!json_equal(msg, direct))
			abort();
		parse_request(msg);
	}
	json_decref(direct);
	json_decref(msg);

	/* (c) The raw stream: any header, any truncation. */
	rc = recv_from(data, size, &msg);
	json_decref(msg);
	return 0;
}
