/* RFC 6455 WebSocket client codec: frames out (masked), an incremental decoder for frames
 * in, and the opening handshake's pieces. Pure: no I/O, no clock, no randomness (the
 * caller hands in mask keys and nonces), so unit tests and the fuzz target drive all of it.
 * The transport that moves the bytes is src/backends/remote/ws.c. */
#ifndef AGENTCELL_BASE_WS_H
#define AGENTCELL_BASE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	AC_WS_CONT = 0x0,
	AC_WS_TEXT = 0x1,
	AC_WS_BINARY = 0x2,
	AC_WS_CLOSE = 0x8,
	AC_WS_PING = 0x9,
	AC_WS_PONG = 0xA,
};

/* Close codes (RFC 6455 section 7.4.1). 1005 and 1006 are never sent: 1005 reports a close
 * frame without a code, 1006 a connection lost without a close frame. */
enum {
	AC_WS_CLOSE_NORMAL = 1000,
	AC_WS_CLOSE_GOING_AWAY = 1001,
	AC_WS_CLOSE_PROTOCOL = 1002,
	AC_WS_CLOSE_UNSUPPORTED = 1003,
	AC_WS_CLOSE_NO_STATUS = 1005,
	AC_WS_CLOSE_ABNORMAL = 1006,
	AC_WS_CLOSE_INVALID_DATA = 1007,
	AC_WS_CLOSE_POLICY = 1008,
	AC_WS_CLOSE_TOO_BIG = 1009,
	AC_WS_CLOSE_INTERNAL = 1011,
};

/* Default cap on one frame's payload and on a reassembled message. */
#define AC_WS_MAX_DEFAULT   (16u * 1024 * 1024)
#define AC_WS_HEAD_MAX	    14	/* 2 + 8 (64-bit length) + 4 (mask key) */
#define AC_WS_CONTROL_MAX   125 /* payload of a ping, pong or close */
#define AC_WS_GUID	    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define AC_WS_KEY_LEN	    24 /* base64 of 16 bytes */
#define AC_WS_ACCEPT_LEN    28 /* base64 of a SHA-1 digest */
#define AC_WS_RESP_HEAD_MAX (64u * 1024)

/* ---- encoding (client frames: always masked) ---- */

/* Whether a close code may be sent in a close frame (1000-1003, 1007-1014, 3000-4999). */
bool ac_ws_close_code_valid(unsigned code);

/* Writes the head of a frame (FIN flag, opcode, payload length in the 7/16/64-bit form,
 * mask key when mask != NULL) to out; returns its length (2 to AC_WS_HEAD_MAX). */
size_t ac_ws_frame_head(unsigned char out[AC_WS_HEAD_MAX], int opcode, bool fin, uint64_t len,
			const unsigned char mask[4]);
/* XORs data[0..len) in place with the mask key, as bytes at payload offset `offset` (so a
 * payload can be masked in pieces). */
void ac_ws_mask(unsigned char *data, size_t len, const unsigned char mask[4], uint64_t offset);
/* Bytes a whole frame of len payload bytes takes. */
size_t ac_ws_frame_size(size_t len, bool masked);
/* Encodes one whole frame (head + payload masked with mask, unmasked when mask is NULL)
 * into out[0..cap); returns its length, or 0 when cap is too small. */
size_t ac_ws_encode(unsigned char *out, size_t cap, int opcode, bool fin, const void *payload,
		    size_t len, const unsigned char mask[4]);
/* The payload of a close frame: the code (big-endian) and as much of reason as fits in
 * 125 bytes without cutting a UTF-8 sequence (invalid UTF-8 is dropped). code 0: an empty
 * payload. Returns its length. */
size_t ac_ws_close_payload(unsigned char out[AC_WS_CONTROL_MAX], unsigned code, const char *reason);

/* ---- decoding (server frames: never masked) ---- */

/* A complete message or control frame. data is the payload (of a close frame: its reason);
 * valid until the next ac_ws_feed call, and while the fed buffer is (small whole frames
 * are handed over in place). */
typedef struct ac_ws_msg {
	int opcode; /* AC_WS_TEXT, _BINARY, _CLOSE, _PING, _PONG */
	const unsigned char *data;
	size_t len;
	unsigned close_code; /* AC_WS_CLOSE: the peer's code, AC_WS_CLOSE_NO_STATUS if none */
} ac_ws_msg_t;

typedef struct ac_ws_decoder {
	size_t max; /* cap on a frame's payload and a message; 0 at init: the default */
	/* the frame being read */
	unsigned char head[AC_WS_HEAD_MAX];
	size_t head_got;
	bool in_payload;
	int f_op;
	bool f_fin;
	uint64_t f_len, f_got;
	/* the data message being reassembled (m_op 0: none) */
	int m_op;
	unsigned char *buf; /* kept across messages: no allocation once warm */
	size_t m_len, buf_cap;
	size_t utf8_ok; /* bytes of a text message already validated */
	/* a control frame's payload (never fragmented) */
	unsigned char ctl[AC_WS_CONTROL_MAX];
	/* after a failure: the close code to send and why; every later feed fails */
	unsigned fail_code;
	const char *fail_why;
	bool closed; /* a close frame came: whatever follows is ignored */
} ac_ws_decoder_t;

/* max 0: AC_WS_MAX_DEFAULT. */
void ac_ws_decoder_init(ac_ws_decoder_t *d, size_t max);
void ac_ws_decoder_free(ac_ws_decoder_t *d);
/* Consumes bytes from data[0..len) until one message or control frame is complete (returns
 * 1 with *msg; *used says how many bytes were consumed, feed the rest next) or the input
 * is used up (0). Fails (-1) on a protocol violation, invalid UTF-8 in a text message or
 * a close reason, a frame or message over the cap, or no memory: d->fail_code (1002,
 * 1007, 1009, 1011) and d->fail_why (a static phrase) say which; the failure is sticky.
 * After a close frame, further input is consumed and ignored. */
int ac_ws_feed(ac_ws_decoder_t *d, const void *data, size_t len, size_t *used, ac_ws_msg_t *msg);

/* ---- opening handshake ---- */

/* Sec-WebSocket-Key from 16 random bytes. */
void ac_ws_make_key(const unsigned char nonce[16], char out[AC_WS_KEY_LEN + 1]);
/* Sec-WebSocket-Accept for a key: base64(SHA-1(key GUID)). */
void ac_ws_accept_for(const char *key, char out[AC_WS_ACCEPT_LEN + 1]);

/* The GET request that opens a WebSocket: target (path and query), Host header value, key,
 * subprotocols to offer (NULL-terminated or NULL) and extra header lines ("Name: value",
 * NULL-terminated or NULL). NULL when any piece holds a CR, LF or NUL where it would split
 * the request, a subprotocol is not an RFC 7230 token, or memory runs out. To free. */
char *ac_ws_request(const char *target, const char *host, const char *key,
		    const char *const *protocols, const char *const *headers);

/* What the head of the server's answer says. */
typedef struct ac_ws_answer {
	int status;
	char reason[128];	/* the status line's reason phrase, control bytes escaped */
	size_t head_len;	/* bytes up to and including the blank line */
	int64_t content_length; /* -1: absent */
	bool chunked;
	bool upgrade_ok;    /* Upgrade: websocket */
	bool connection_ok; /* Connection lists upgrade */
	bool accept_ok;	    /* Sec-WebSocket-Accept matches the key */
	bool extensions;    /* Sec-WebSocket-Extensions present (none were offered) */
	int protocol;	    /* index of the chosen subprotocol, -1: none, -2: one not offered */
} ac_ws_answer_t;

/* Parses the answer's head in buf[0..len): 0 when complete (*a filled), 1 when more bytes
 * are needed (and len < AC_WS_RESP_HEAD_MAX), -1 when malformed or too long. key and
 * protocols are what the request carried. */
int ac_ws_parse_answer(const char *buf, size_t len, const char *key, const char *const *protocols,
		       ac_ws_answer_t *a);
/* Why a parsed 101 answer cannot open the connection (a static phrase), or NULL if it can.
 * A server that names no subprotocol is fine (it agreed to none); one that names a
 * subprotocol that was not offered, or an extension, is not. */
const char *ac_ws_answer_problem(const ac_ws_answer_t *a);

#endif
