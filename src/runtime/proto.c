/* The exec wire protocol's codec (see proto.h): framing, descriptor passing, request
 * validation and encoding. Its only system calls read and write the socket it is given,
 * so the unit tests and fuzz_proto drive all of it over a socketpair. The caller's side of
 * an exec is client.c, the supervisor's supervisor.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/base64.h"
#include "base/io.h"
#include "base/util.h"
#include "runtime/proto.h"

#define MAX_ARGS 4096
#define MAX_STR	 (64 * 1024)

int ac_proto_send(int sock, json_t *msg, const int *fds, int nfds)
{
	char *body = json_dumps(msg, JSON_COMPACT);
	if (!body) {
		errno = ENOMEM;
		return -1;
	}
	size_t len = strlen(body);
	uint32_t hdr = (uint32_t)len;
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {body, len}};
	union {
		char buf[CMSG_SPACE(AC_PROTO_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	int rc = 0;
	if (n < 0) {
		rc = -1;
	} else if ((size_t)n < sizeof(hdr) + len) {
		/* Descriptors went with the first bytes; the rest is plain data. */
		size_t done = (size_t)n;
		if (done < sizeof(hdr)) {
			rc = ac_write_all(sock, (char *)&hdr + done, sizeof(hdr) - done);
			done = sizeof(hdr);
		}
		if (rc == 0)
			rc = ac_write_all(sock, body + (done - sizeof(hdr)),
					  len - (done - sizeof(hdr)));
	}
	free(body);
	return rc;
}

int ac_proto_recv(int sock, json_t **msg, int *fds, int maxfds)
{
	return ac_proto_recv_cred(sock, msg, fds, maxfds, NULL);
}

int ac_proto_recv_cred(int sock, json_t **msg, int *fds, int maxfds, pid_t *peer)
{
	uint32_t hdr;
	/* Room for the sender's credentials too (SO_PASSCRED): were they not to fit, the
	 * kernel would drop the descriptors. */
	union {
		char buf[CMSG_SPACE(AC_PROTO_MAX_FDS * sizeof(int)) +
			 CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {&hdr, sizeof(hdr)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	for (int i = 0; i < maxfds; i++)
		fds[i] = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && peer &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			*peer = uc.pid;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int nf = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *in = (int *)CMSG_DATA(c);
		for (int i = 0; i < nf; i++) {
			if (i < maxfds)
				fds[i] = in[i];
			else
				close(in[i]);
		}
	}
	if (n == 0) {
		errno = ECONNRESET;
		return -1;
	}
	if ((size_t)n < sizeof(hdr) &&
	    ac_read_all(sock, (char *)&hdr + n, sizeof(hdr) - (size_t)n) !=
		(ssize_t)(sizeof(hdr) - (size_t)n)) {
		errno = EPROTO;
		return -1;
	}
	if (hdr == 0 || hdr > AC_PROTO_MAX_MSG) {
		errno = EPROTO;
		return -1;
	}
	char *body = malloc(hdr + 1);
	if (!body)
		return -1;
	if (ac_read_all(sock, body, hdr) != (ssize_t)hdr) {
		free(body);
		errno = EPROTO;
		return -1;
	}
	body[hdr] = 0;
	*msg = json_loadb(body, hdr, JSON_REJECT_DUPLICATES, NULL);
	free(body);
	if (!*msg || !json_is_object(*msg)) {
		json_decref(*msg);
		*msg = NULL;
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* Strings on the wire: a JSON string when valid UTF-8, else {"base64": "..."} (a command
 * line or file name is bytes, not text). */
static json_t *wire_string(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *b = ac_base64_encode(s, strlen(s));
	if (!b)
		return NULL;
	j = json_pack("{ss}", "base64", b);
	free(b);
	return j;
}

/* Normalizes a wire string in place (base64 objects become byte strings) and returns
 * its value, or NULL when it is not a string, holds a NUL, or is longer than MAX_STR. */
static const char *wire_value(json_t *v, json_t *parent, size_t index, const char *key)
{
	if (json_is_object(v)) {
		const char *b = json_string_value(json_object_get(v, "base64"));
		unsigned char *raw;
		size_t len;
		if (!b || json_object_size(v) != 1 ||
		    ac_base64_decode(b, strlen(b), &raw, &len) < 0)
			return NULL;
		if (memchr(raw, 0, len) || len > MAX_STR) {
			free(raw);
			return NULL;
		}
		v = json_stringn_nocheck((const char *)raw, len);
		free(raw);
		if (!v)
			return NULL;
		if (key ? json_object_set_new(parent, key, v)
			: json_array_set_new(parent, index, v))
			return NULL;
	}
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v) || json_string_length(v) > MAX_STR)
		return NULL;
	return s;
}

static char **string_array(json_t *a, size_t max, bool need_eq, char **errmsg, const char *what)
{
	if (!a)
		return NULL;
	if (!json_is_array(a) || json_array_size(a) > max) {
		*errmsg = strdup(what);
		return NULL;
	}
	char **v = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!v)
		return NULL;
	size_t i;
	json_t *it;
	json_array_foreach(a, i, it)
	{
		const char *s = wire_value(it, a, i, NULL);
		if (!s || (need_eq && (!strchr(s, '=') || s[0] == '='))) {
			free(v);
			*errmsg = strdup(what);
			return NULL;
		}
		v[i] = (char *)s;
	}
	return v;
}

int ac_proto_parse_request(json_t *req, ac_cmd_t *cmd, char **errmsg)
{
	memset(cmd, 0, sizeof(*cmd));
	*errmsg = NULL;
	cmd->argv =
	    string_array(json_object_get(req, "argv"), MAX_ARGS, false, errmsg, "invalid argv");
	if (!cmd->argv || !cmd->argv[0] || !cmd->argv[0][0]) {
		if (!*errmsg)
			*errmsg = strdup("argv must be a non-empty array of strings");
		free(cmd->argv);
		cmd->argv = NULL;
		return -1;
	}
	cmd->env = string_array(json_object_get(req, "env"), MAX_ARGS, true, errmsg,
				"env entries must be KEY=VALUE strings");
	if (*errmsg)
		goto bad;
	json_t *v;
	if ((v = json_object_get(req, "cwd"))) {
		cmd->cwd = wire_value(v, req, 0, "cwd");
		if (!cmd->cwd || cmd->cwd[0] != '/') {
			*errmsg = strdup("cwd must be an absolute path");
			goto bad;
		}
	}
	if ((v = json_object_get(req, "user"))) {
		cmd->user = wire_value(v, req, 0, "user");
		if (!cmd->user || !cmd->user[0]) {
			*errmsg = strdup("user must be a non-empty string");
			goto bad;
		}
	}
	if ((v = json_object_get(req, "timeout"))) {
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9) {
			*errmsg = strdup("timeout must be a non-negative number of seconds");
			goto bad;
		}
		cmd->timeout = json_number_value(v);
	}
	cmd->tty = json_is_true(json_object_get(req, "tty"));
	cmd->stdin_open = json_is_true(json_object_get(req, "stdin"));
	json_int_t r = json_integer_value(json_object_get(req, "rows")),
		   c = json_integer_value(json_object_get(req, "cols"));
	cmd->rows = (r > 0 && r < 10000) ? (unsigned short)r : 24;
	cmd->cols = (c > 0 && c < 10000) ? (unsigned short)c : 80;
	return 0;
bad:
	free(cmd->argv);
	free(cmd->env);
	cmd->argv = cmd->env = NULL;
	return -1;
}

json_t *ac_proto_build_request(const ac_cmd_t *cmd)
{
	json_t *req = json_object(), *argv = json_array(), *env = json_array();
	int bad = !req || !argv || !env;
	for (char **a = cmd->argv; !bad && a && *a; a++)
		bad = json_array_append_new(argv, wire_string(*a));
	for (char **e = cmd->env; !bad && e && *e; e++)
		bad = json_array_append_new(env, wire_string(*e));
	bad = bad || json_object_set_new(req, "argv", argv);
	argv = NULL;
	bad = bad || json_object_set_new(req, "env", env);
	env = NULL;
	if (!bad && cmd->cwd)
		bad = json_object_set_new(req, "cwd", wire_string(cmd->cwd));
	if (!bad && cmd->user)
		bad = json_object_set_new(req, "user", wire_string(cmd->user));
	if (!bad && cmd->timeout > 0)
		bad = json_object_set_new(req, "timeout", json_real(cmd->timeout));
	bad = bad || json_object_set_new(req, "tty", json_boolean(cmd->tty)) ||
	      json_object_set_new(req, "stdin", json_boolean(cmd->stdin_open)) ||
	      json_object_set_new(req, "rows", json_integer(cmd->rows)) ||
	      json_object_set_new(req, "cols", json_integer(cmd->cols));
	json_decref(argv);
	json_decref(env);
	if (bad) {
		/* Never send a request that lost an element. */
		json_decref(req);
		return NULL;
	}
	return req;
}
