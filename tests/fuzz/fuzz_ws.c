/* Fuzz target: the WebSocket codec (src/base/ws.c). The first input byte picks the size
 * cap and the piece sizes; the rest is fed to the frame decoder cut into those pieces, as
 * a server's bytes would arrive, and parsed as a handshake answer. Round trips check the
 * encoder: the input encoded as one frame (masked and not) decodes to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "base/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const ac_ws_decoder_t *d, const ac_ws_msg_t *m)
{
	switch (m->opcode) {
	case AC_WS_TEXT:
		if (!ac_utf8_valid((const char *)m->data, m->len))
			abort();
		/* fall through */
	case AC_WS_BINARY:
		if (m->len > d->max)
			abort();
		break;
	case AC_WS_PING:
	case AC_WS_PONG:
		if (m->len > AC_WS_CONTROL_MAX)
			abort();
		break;
	case AC_WS_CLOSE:
		if (m->len > AC_WS_CONTROL_MAX - 2 ||
		    (m->close_code != AC_WS_CLOSE_NO_STATUS &&
		     !ac_ws_close_code_valid(m->close_code)) ||
		    !ac_utf8_valid((const char *)m->data, m->len))
			abort();
		break;
	default:
		abort();
	}
	if (m->len) {
		volatile unsigned char c = m->data[m->len - 1]; /* readable */
		(void)c;
	}
}

static void decode(const uint8_t *data, size_t size, size_t max, size_t step0)
{
	ac_ws_decoder_t d;
	ac_ws_decoder_init(&d, max);
	size_t off = 0, step = step0;
	int rc = 0;
	while (off < size) {
		size_t piece = size - off < step ? size - off : step;
		size_t used = 0;
		ac_ws_msg_t m;
		rc = ac_ws_feed(&d, data + off, piece, &used, &m);
		if (used > piece || (rc == 0 && used != piece))
			abort();
		if (rc < 0)
			break;
		if (rc == 1)
			check_msg(&d, &m);
		off += used;
		step = step * 7 % 23 + 1;
	}
	if (rc < 0) {
		unsigned c = d.fail_code;
		if ((c != 1002 && c != 1007 && c != 1009 && c != 1011) || !d.fail_why)
			abort();
		size_t used = 1;
		ac_ws_msg_t m;
		if (ac_ws_feed(&d, "\x81\x00", 2, &used, &m) != -1 || used != 0)
			abort();
	}
	ac_ws_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	/* A small cap (to reach 1009 often) or the default. */
	size_t max = sel & 0x80 ? (size_t)(sel & 0x3f) * 16 + 1 : 0;
	decode(data, size, max, (size_t)(sel & 0x0f) + 1);

	static const char *const protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};
	ac_ws_answer_t a;
	int pr =
	    ac_ws_parse_answer((const char *)data, size, "dGhlIHNhbXBsZSBub25jZQ==", protos, &a);
	if (pr < -1 || pr > 1)
		abort();
	if (pr == 0) {
		if (a.head_len > size || a.head_len > AC_WS_RESP_HEAD_MAX || a.status < 100 ||
		    a.status > 599 || a.protocol < -2 || a.protocol > 1)
			abort();
		if (!ac_ws_answer_problem(&a) && a.status != 101)
			abort();
	}

	/* Round trip: the input as one frame decodes to exactly the input. */
	if (size <= 70000) {
		size_t cap = ac_ws_frame_size(size, true);
		unsigned char *f = malloc(cap);
		if (!f)
			return 0;
		const unsigned char mask[4] = {sel, (unsigned char)~sel, 0x5a, 0xa5};
		size_t n = ac_ws_encode(f, cap, AC_WS_BINARY, true, data, size, mask);
		if (n != cap)
			abort();
		ac_ws_mask(f + n - size, size, mask, 0);
		if (size && memcmp(f + n - size, data, size))
			abort();
		n = ac_ws_encode(f, cap, AC_WS_BINARY, true, data, size, NULL);
		ac_ws_decoder_t d;
		ac_ws_decoder_init(&d, 0);
		size_t used;
		ac_ws_msg_t m;
		if (ac_ws_feed(&d, f, n, &used, &m) != 1 || used != n || m.len != size ||
		    m.opcode != AC_WS_BINARY || (size && memcmp(m.data, data, size)))
			abort();
		ac_ws_decoder_free(&d);
		free(f);
	}
	return 0;
}
