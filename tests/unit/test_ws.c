/* Unit tests for the WebSocket client: SHA-1 (FIPS 180 vectors), the codec of
 * src/base/ws.c (RFC 6455 section 5.7 examples, byte-by-byte decoding, every close code
 * the decoder fails with, the size cap, the handshake pieces) and the transport of
 * src/backends/remote/ws.c against a real server: tests/integration/ws_echo_server.py
 * (Python standard library), plain and TLS with certificates made by openssl at test
 * time.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "backends/remote/remote.h"
#include "base/io.h"
#include "base/sha1.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/ws.h"

/* ---- SHA-1 ---- */

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void assert_sha1(const void *data, size_t len, const char *want)
{
	unsigned char dig[AC_SHA1_LEN];
	char got[41];
	ac_sha1(data, len, dig);
	hex(dig, sizeof(dig), got);
	assert_string_equal(got, want);
}

static void test_sha1_fips_vectors(void **state)
{
	assert_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	assert_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_sha1(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
			   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	assert_sha1(four, strlen(four), "a49b2446a02c645bf419f995b67091253a04a259");
	/* One million 'a', fed in uneven pieces: the block buffering across updates. */
	ac_sha1_t c;
	ac_sha1_init(&c);
	char a[1000];
	memset(a, 'a', sizeof(a));
	size_t left = 1000000, step = 1;
	while (left) {
		size_t n = step < left ? step : left;
		ac_sha1_update(&c, a, n);
		left -= n;
		step = step % 900 + 63; /* at most 962: within a */
	}
	unsigned char dig[AC_SHA1_LEN];
	char got[41];
	ac_sha1_final(&c, dig);
	hex(dig, sizeof(dig), got);
	assert_string_equal(got, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	/* Lengths around the padding boundary (55, 56, 64 bytes) against one-shot hashing
	 * of the same bytes fed one at a time. */
	for (size_t n = 50; n < 130; n++) {
		unsigned char one[AC_SHA1_LEN], inc[AC_SHA1_LEN];
		ac_sha1(a, n, one);
		ac_sha1_init(&c);
		for (size_t i = 0; i < n; i++)
			ac_sha1_update(&c, a + i, 1);
		ac_sha1_final(&c, inc);
		assert_memory_equal(one, inc, AC_SHA1_LEN);
	}
}

/* ---- handshake pieces ---- */

static void test_handshake_rfc_example(void **state)
{
	char key[AC_WS_KEY_LEN + 1], acc[AC_WS_ACCEPT_LEN + 1];
	ac_ws_make_key((const unsigned char *)"the sample nonce", key);
	assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
	ac_ws_accept_for(key, acc);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_handshake_request(void **state)
{
	const char *protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};
	const char *hdrs[] = {"Authorization: Bearer abc", "X-Nomad-Token: t", NULL};
	char *r = ac_ws_request("/api/v1/x/exec?command=ls&stdout=true", "k8s:6443",
				"dGhlIHNhbXBsZSBub25jZQ==", protos, hdrs);
	assert_non_null(r);
	assert_non_null(strstr(r, "GET /api/v1/x/exec?command=ls&stdout=true HTTP/1.1\r\n"));
	assert_int_equal(strncmp(r, "GET ", 4), 0);
	assert_non_null(strstr(r, "\r\nHost: k8s:6443\r\n"));
	assert_non_null(strstr(r, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strstr(r, "\r\nConnection: Upgrade\r\n"));
	assert_non_null(strstr(r, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
	assert_non_null(strstr(r, "\r\nSec-WebSocket-Version: 13\r\n"));
	assert_non_null(
	    strstr(r, "\r\nSec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n"));
	assert_non_null(strstr(r, "\r\nAuthorization: Bearer abc\r\nX-Nomad-Token: t\r\n"));
	size_t l = strlen(r);
	assert_true(l > 4 && !strcmp(r + l - 4, "\r\n\r\n"));
	assert_ptr_equal(strstr(r, "\r\n\r\n"), r + l - 4); /* one blank line, at the end */
	free(r);

	/* Nothing that would split or smuggle a line. */
	const char *inj[] = {"X: a\r\nEvil: b", NULL};
	assert_null(ac_ws_request("/p", "h", "k", NULL, inj));
	const char *noname[] = {": v", NULL};
	assert_null(ac_ws_request("/p", "h", "k", NULL, noname));
	const char *badproto[] = {"v5 channel", NULL};
	assert_null(ac_ws_request("/p", "h", "k", badproto, NULL));
	const char *commaproto[] = {"a,b", NULL};
	assert_null(ac_ws_request("/p", "h", "k", commaproto, NULL));
	assert_null(ac_ws_request("/p q", "h", "k", NULL, NULL));
	assert_null(ac_ws_request("p", "h", "k", NULL, NULL));
	assert_null(ac_ws_request("/p", "h\r\nX: y", "k", NULL, NULL));
	r = ac_ws_request("/p", "h", "k", NULL, NULL);
	assert_non_null(r);
	assert_null(strstr(r, "Sec-WebSocket-Protocol"));
	free(r);
}

static const char *const k8s_protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};

static void test_handshake_answer(void **state)
{
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: keep-alive, Upgrade\r\n"
			 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
			 "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n\x81\x05Hello";
	ac_ws_answer_t a;
	size_t head = strlen(ok) - 7;
	/* Incomplete at every cut before the blank line. */
	for (size_t i = 0; i < head; i++)
		assert_int_equal(ac_ws_parse_answer(ok, i, key, k8s_protos, &a), 1);
	assert_int_equal(ac_ws_parse_answer(ok, strlen(ok), key, k8s_protos, &a), 0);
	assert_int_equal(a.status, 101);
	assert_string_equal(a.reason, "Switching Protocols");
	assert_int_equal(a.head_len, head);
	assert_true(a.upgrade_ok && a.connection_ok && a.accept_ok && !a.extensions);
	assert_int_equal(a.protocol, 1);
	assert_null(ac_ws_answer_problem(&a));

	/* A wrong key: the accept no longer matches. */
	assert_int_equal(
	    ac_ws_parse_answer(ok, strlen(ok), "AAAAAAAAAAAAAAAAAAAAAA==", k8s_protos, &a), 0);
	assert_false(a.accept_ok);
	assert_non_null(strstr(ac_ws_answer_problem(&a), "Sec-WebSocket-Accept"));

	/* A subprotocol that was not offered, an extension, no Upgrade, no Connection. */
	struct {
		const char *text, *problem;
	} bad[] = {
	    {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	     "Sec-WebSocket-Protocol: v9.channel.k8s.io\r\n\r\n",
	     "subprotocol"},
	    {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	     "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
	     "extension"},
	    {"HTTP/1.1 101 OK\r\nConnection: upgrade\r\n"
	     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
	     "Upgrade"},
	    {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n"
	     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
	     "Connection"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "switch"},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++) {
		assert_int_equal(
		    ac_ws_parse_answer(bad[i].text, strlen(bad[i].text), key, k8s_protos, &a), 0);
		const char *why = ac_ws_answer_problem(&a);
		assert_non_null(why);
		assert_non_null(strstr(why, bad[i].problem));
	}
	/* No subprotocol named: the server agreed to none, which is allowed. */
	const char *none = "HTTP/1.1 101 OK\nUpgrade: WebSocket\nConnection: Upgrade\n"
			   "Sec-WebSocket-Accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n\n";
	assert_int_equal(ac_ws_parse_answer(none, strlen(none), key, k8s_protos, &a), 0);
	assert_int_equal(a.protocol, -1);
	assert_null(ac_ws_answer_problem(&a));

	/* A refusal: status, reason, body framing. */
	const char *no = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
			 "Content-Length: 17\r\n\r\n{\"message\":\"no\"}";
	assert_int_equal(ac_ws_parse_answer(no, strlen(no), key, k8s_protos, &a), 0);
	assert_int_equal(a.status, 403);
	assert_string_equal(a.reason, "Forbidden");
	assert_int_equal(a.content_length, 17);
	assert_false(a.chunked);
	const char *ch = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(ac_ws_parse_answer(ch, strlen(ch), key, k8s_protos, &a), 0);
	assert_true(a.chunked);
	assert_int_equal(a.content_length, -1);

	/* Malformed heads. */
	const char *mal[] = {
	    "HTTP/2 101 x\r\n\r\n",
	    "HTTP/1.1 10 x\r\n\r\n",
	    "HTTP/1.1 1011\r\n\r\n",
	    "ICY 200 OK\r\n\r\n",
	    "HTTP/1.1 101 OK\r\nno colon here\r\n\r\n",
	    "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n folded\r\n\r\n",
	    "HTTP/1.1 403 x\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 403 x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "HTTP/1.1 403 x\r\nBad Name: 1\r\n\r\n",
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(mal); i++)
		assert_int_equal(ac_ws_parse_answer(mal[i], strlen(mal[i]), key, k8s_protos, &a),
				 -1);
	/* A head that never ends is refused at the cap, not read for ever. */
	size_t big = AC_WS_RESP_HEAD_MAX + 10;
	char *h = malloc(big);
	assert_non_null(h);
	memcpy(h, "HTTP/1.1 101 OK\r\n", 17);
	memset(h + 17, 'a', big - 17);
	assert_int_equal(ac_ws_parse_answer(h, big, key, k8s_protos, &a), -1);
	free(h);
}

/* ---- encoding: RFC 6455 section 5.7 ---- */

static const unsigned char rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

static void test_encode_rfc_examples(void **state)
{
	unsigned char out[70000];
	/* A single-frame masked text message "Hello". */
	static const unsigned char hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
						     0x7f, 0x9f, 0x4d, 0x51, 0x58};
	size_t n = ac_ws_encode(out, sizeof(out), AC_WS_TEXT, true, "Hello", 5, rfc_mask);
	assert_int_equal(n, sizeof(hello_masked));
	assert_memory_equal(out, hello_masked, n);
	/* Unmasked, as a server sends it. */
	static const unsigned char hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	n = ac_ws_encode(out, sizeof(out), AC_WS_TEXT, true, "Hello", 5, NULL);
	assert_int_equal(n, sizeof(hello));
	assert_memory_equal(out, hello, n);
	/* Fragmented: "Hel" then "lo". */
	static const unsigned char frag1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
	static const unsigned char frag2[] = {0x80, 0x02, 0x6c, 0x6f};
	n = ac_ws_encode(out, sizeof(out), AC_WS_TEXT, false, "Hel", 3, NULL);
	assert_memory_equal(out, frag1, n);
	n = ac_ws_encode(out, sizeof(out), AC_WS_CONT, true, "lo", 2, NULL);
	assert_memory_equal(out, frag2, n);
	/* Ping unmasked, the pong that answers it masked. */
	static const unsigned char ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	static const unsigned char pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					     0x7f, 0x9f, 0x4d, 0x51, 0x58};
	n = ac_ws_encode(out, sizeof(out), AC_WS_PING, true, "Hello", 5, NULL);
	assert_memory_equal(out, ping, n);
	n = ac_ws_encode(out, sizeof(out), AC_WS_PONG, true, "Hello", 5, rfc_mask);
	assert_int_equal(n, sizeof(pong));
	assert_memory_equal(out, pong, n);
	/* 256 bytes: 16-bit length; 64 KiB: 64-bit length. */
	unsigned char head[AC_WS_HEAD_MAX];
	static const unsigned char h256[] = {0x82, 0x7e, 0x01, 0x00};
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 256, NULL), 4);
	assert_memory_equal(head, h256, 4);
	static const unsigned char h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 65536, NULL), 10);
	assert_memory_equal(head, h64k, 10);
	/* The length form boundaries: 125 / 126 / 65535 / 65536, masked. */
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 125, rfc_mask), 6);
	assert_int_equal(head[1], 0x80 | 125);
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 126, rfc_mask), 8);
	assert_int_equal(head[1], 0x80 | 126);
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 65535, rfc_mask), 8);
	assert_int_equal(ac_ws_frame_head(head, AC_WS_BINARY, true, 65536, rfc_mask), 14);
	assert_int_equal(head[1], 0x80 | 127);
	assert_memory_equal(head + 10, rfc_mask, 4);
	assert_int_equal(ac_ws_frame_size(65536, true), 65536 + 14);
	assert_int_equal(ac_ws_frame_size(125, false), 127);
	/* Too small a buffer: nothing. */
	assert_int_equal(ac_ws_encode(out, 10, AC_WS_TEXT, true, "Hello", 5, rfc_mask), 0);
	/* Masking in pieces equals masking at once. */
	unsigned char whole[300], parts[300];
	for (size_t i = 0; i < sizeof(whole); i++)
		whole[i] = parts[i] = (unsigned char)(i * 7);
	ac_ws_mask(whole, sizeof(whole), rfc_mask, 0);
	ac_ws_mask(parts, 7, rfc_mask, 0);
	ac_ws_mask(parts + 7, 100, rfc_mask, 7);
	ac_ws_mask(parts + 107, 193, rfc_mask, 107);
	assert_memory_equal(whole, parts, sizeof(whole));
}

static void test_close_payload(void **state)
{
	unsigned char pl[AC_WS_CONTROL_MAX];
	assert_int_equal(ac_ws_close_payload(pl, 0, "ignored"), 0);
	size_t n = ac_ws_close_payload(pl, 1000, "bye");
	assert_int_equal(n, 5);
	assert_memory_equal(pl,
			    "\x03\xe8"
			    "bye",
			    5);
	/* A long reason is cut to 123 bytes, never inside a UTF-8 sequence. */
	char reason[300] = "";
	for (int i = 0; i < 100; i++)
		strcat(reason, "\xc3\xa9"); /* é, 2 bytes */
	n = ac_ws_close_payload(pl, 4000, reason);
	assert_int_equal(n, 2 + 122);
	assert_true(ac_utf8_valid((const char *)pl + 2, n - 2));
	/* Invalid UTF-8 is dropped rather than sent. */
	assert_int_equal(ac_ws_close_payload(pl, 1000, "\xff"), 2);
	assert_true(ac_ws_close_code_valid(1000));
	assert_true(ac_ws_close_code_valid(4999));
	assert_false(ac_ws_close_code_valid(1005));
	assert_false(ac_ws_close_code_valid(1006));
	assert_false(ac_ws_close_code_valid(999));
	assert_false(ac_ws_close_code_valid(2000));
	assert_false(ac_ws_close_code_valid(5000));
}

/* ---- decoding ---- */

typedef struct got {
	int op[32];
	unsigned code[32];
	char data[32][256];
	size_t len[32];
	int n;
	int rc; /* last feed's result: -1 on failure */
} got_t;

/* Feeds buf in pieces of `step` bytes (0: all at once), collecting messages. */
static void feed_all(ac_ws_decoder_t *d, const void *buf, size_t len, size_t step, got_t *g)
{
	const unsigned char *p = buf;
	size_t off = 0;
	memset(g, 0, sizeof(*g));
	while (off < len) {
		size_t piece = step && step < len - off ? step : len - off;
		size_t used = 0;
		ac_ws_msg_t m;
		int r = ac_ws_feed(d, p + off, piece, &used, &m);
		assert_true(used <= piece);
		g->rc = r;
		if (r < 0)
			return;
		off += used;
		if (r == 1 && g->n < 32) {
			g->op[g->n] = m.opcode;
			g->code[g->n] = m.close_code;
			g->len[g->n] = m.len;
			memcpy(g->data[g->n], m.data, m.len < 255 ? m.len : 255);
			g->n++;
		} else if (r == 0) {
			assert_int_equal(used, piece);
		}
	}
}

static void test_decode_rfc_examples(void **state)
{
	ac_ws_decoder_t d;
	ac_ws_decoder_init(&d, 0);
	assert_int_equal(d.max, AC_WS_MAX_DEFAULT);
	static const unsigned char hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	size_t used;
	ac_ws_msg_t m;
	assert_int_equal(ac_ws_feed(&d, hello, sizeof(hello), &used, &m), 1);
	assert_int_equal(used, sizeof(hello));
	assert_int_equal(m.opcode, AC_WS_TEXT);
	assert_int_equal(m.len, 5);
	assert_ptr_equal(m.data, hello + 2); /* handed over in place */
	assert_null(d.buf);		     /* and nothing allocated for it */

	static const unsigned char frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
	assert_int_equal(ac_ws_feed(&d, frag, sizeof(frag), &used, &m), 1);
	assert_int_equal(used, sizeof(frag));
	assert_int_equal(m.opcode, AC_WS_TEXT);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "Hello", 5);

	static const unsigned char ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	assert_int_equal(ac_ws_feed(&d, ping, sizeof(ping), &used, &m), 1);
	assert_int_equal(m.opcode, AC_WS_PING);
	assert_memory_equal(m.data, "Hello", 5);

	/* 256 bytes and 64 KiB binary messages, whole and cut. */
	for (size_t size = 256; size <= 65536; size = size == 256 ? 65536 : SIZE_MAX) {
		unsigned char *f = malloc(size + 10);
		assert_non_null(f);
		size_t h = ac_ws_frame_head(f, AC_WS_BINARY, true, size, NULL);
		for (size_t i = 0; i < size; i++)
			f[h + i] = (unsigned char)(i % 251);
		assert_int_equal(ac_ws_feed(&d, f, h + size, &used, &m), 1);
		assert_int_equal(m.opcode, AC_WS_BINARY);
		assert_int_equal(m.len, size);
		assert_memory_equal(m.data, f + h, size);
		/* The same frame in two pieces goes through the message buffer. */
		assert_int_equal(ac_ws_feed(&d, f, h + 100, &used, &m), 0);
		assert_int_equal(used, h + 100);
		assert_int_equal(ac_ws_feed(&d, f + h + 100, size - 100, &used, &m), 1);
		assert_int_equal(m.len, size);
		assert_memory_equal(m.data, f + h, size);
		free(f);
	}
	ac_ws_decoder_free(&d);
}

/* A stream of frames, fed in every piece size from 1 byte up: the same messages. */
static void test_decode_stream_any_cut(void **state)
{
	unsigned char s[2000];
	size_t n = 0;
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_TEXT, false, "frag", 4, NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_PING, true, "p1", 2, NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_CONT, false, "men", 3, NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_CONT, false, "", 0, NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_CONT, true, "ted \xc3\xa9", 6, NULL);
	unsigned char bin[300];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)i;
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_BINARY, true, bin, sizeof(bin), NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_BINARY, true, "", 0, NULL);
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_PONG, true, "", 0, NULL);
	unsigned char cl[AC_WS_CONTROL_MAX];
	size_t cn = ac_ws_close_payload(cl, 4001, "done");
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_CLOSE, true, cl, cn, NULL);
	/* Anything after the close is ignored. */
	n += ac_ws_encode(s + n, sizeof(s) - n, AC_WS_TEXT, true, "late", 4, NULL);
	s[n++] = 0xff;

	for (size_t step = 1; step <= n; step++) {
		ac_ws_decoder_t d;
		got_t g;
		ac_ws_decoder_init(&d, 0);
		feed_all(&d, s, n, step, &g);
		assert_true(g.rc >= 0);
		assert_int_equal(g.n, 6);
		assert_int_equal(g.op[0], AC_WS_PING);
		assert_int_equal(g.len[0], 2);
		assert_memory_equal(g.data[0], "p1", 2);
		assert_int_equal(g.op[1], AC_WS_TEXT);
		assert_int_equal(g.len[1], 13);
		assert_memory_equal(g.data[1], "fragmented \xc3\xa9", 13);
		assert_int_equal(g.op[2], AC_WS_BINARY);
		assert_int_equal(g.len[2], sizeof(bin));
		assert_memory_equal(g.data[2], bin, 255);
		assert_int_equal(g.op[3], AC_WS_BINARY);
		assert_int_equal(g.len[3], 0);
		assert_int_equal(g.op[4], AC_WS_PONG);
		assert_int_equal(g.op[5], AC_WS_CLOSE);
		assert_int_equal(g.code[5], 4001);
		assert_int_equal(g.len[5], 4);
		assert_memory_equal(g.data[5], "done", 4);
		/* The close ended the stream: the late frame and the bad byte never surfaced. */
		assert_true(d.closed);
		ac_ws_decoder_free(&d);
	}
	/* The close frame itself, with its code and reason. */
	ac_ws_decoder_t d;
	ac_ws_decoder_init(&d, 0);
	unsigned char c[AC_WS_HEAD_MAX + AC_WS_CONTROL_MAX];
	size_t len = ac_ws_encode(c, sizeof(c), AC_WS_CLOSE, true, cl, cn, NULL);
	size_t used;
	ac_ws_msg_t m;
	assert_int_equal(ac_ws_feed(&d, c, len, &used, &m), 1);
	assert_int_equal(m.opcode, AC_WS_CLOSE);
	assert_int_equal(m.close_code, 4001);
	assert_int_equal(m.len, 4);
	assert_memory_equal(m.data, "done", 4);
	/* After it: consumed and ignored. */
	assert_int_equal(ac_ws_feed(&d, "\x81\x01x", 3, &used, &m), 0);
	assert_int_equal(used, 3);
	ac_ws_decoder_free(&d);
	/* An empty close frame reports 1005. */
	ac_ws_decoder_init(&d, 0);
	assert_int_equal(ac_ws_feed(&d, "\x88\x00", 2, &used, &m), 1);
	assert_int_equal(m.close_code, AC_WS_CLOSE_NO_STATUS);
	assert_int_equal(m.len, 0);
	ac_ws_decoder_free(&d);
}

/* Each bad input fails with its close code, at every cut, and stays failed. */
static void expect_fail(const void *in, size_t len, size_t max, unsigned code)
{
	for (size_t step = 0; step <= len; step++) {
		ac_ws_decoder_t d;
		got_t g;
		ac_ws_decoder_init(&d, max);
		feed_all(&d, in, len, step, &g);
		if (g.rc != -1 || d.fail_code != code)
			fail_msg("input of %zu bytes, step %zu: rc %d code %u (want %u)", len, step,
				 g.rc, d.fail_code, code);
		assert_non_null(d.fail_why);
		size_t used = 99;
		ac_ws_msg_t m;
		assert_int_equal(ac_ws_feed(&d, "\x81\x00", 2, &used, &m), -1);
		assert_int_equal(used, 0);
		ac_ws_decoder_free(&d);
	}
}

#define FAIL(bytes, max, code) expect_fail(bytes, sizeof(bytes) - 1, max, code)

static void test_decode_errors(void **state)
{
	/* 1002: reserved bits, unknown opcodes, a masked frame, bad continuation. */
	FAIL("\xc1\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\xa1\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x91\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x83\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x87\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x8b\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x8f\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x80\x01x", 0, AC_WS_CLOSE_PROTOCOL);	     /* continuation, no message */
	FAIL("\x00\x01x", 0, AC_WS_CLOSE_PROTOCOL);	     /* likewise, not final */
	FAIL("\x01\x01x\x81\x01y", 0, AC_WS_CLOSE_PROTOCOL); /* new message inside one */
	FAIL("\x02\x01x\x82\x01y", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x81\x01x\x80\x01y", 0, AC_WS_CLOSE_PROTOCOL); /* continuation after the end */
	/* Control frames: never fragmented, at most 125 bytes. */
	FAIL("\x09\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x08\x00", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x89\x7e\x00\x7e", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x8a\x7f\x00\x00\x00\x00\x00\x00\x00\x01", 0, AC_WS_CLOSE_PROTOCOL);
	/* A 64-bit length with the top bit set. */
	FAIL("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 0, AC_WS_CLOSE_PROTOCOL);
	/* Close frames: one-byte payload, codes that may not be sent. */
	FAIL("\x88\x01\x03", 0, AC_WS_CLOSE_PROTOCOL);
	FAIL("\x88\x02\x03\xe7", 0, AC_WS_CLOSE_PROTOCOL); /* 999 */
	FAIL("\x88\x02\x03\xed", 0, AC_WS_CLOSE_PROTOCOL); /* 1005 */
	FAIL("\x88\x02\x03\xee", 0, AC_WS_CLOSE_PROTOCOL); /* 1006 */
	FAIL("\x88\x02\x0b\xb7", 0, AC_WS_CLOSE_PROTOCOL); /* 2999 */
	FAIL("\x88\x02\x13\x88", 0, AC_WS_CLOSE_PROTOCOL); /* 5000 */
	/* 1007: text that is not UTF-8, whole or fragmented, and a bad close reason. */
	FAIL("\x81\x02\xc3\x28", 0, AC_WS_CLOSE_INVALID_DATA);
	FAIL("\x81\x03\xed\xa0\x80", 0, AC_WS_CLOSE_INVALID_DATA); /* a surrogate */
	FAIL("\x81\x02\xc0\xaf", 0, AC_WS_CLOSE_INVALID_DATA);	   /* overlong */
	FAIL("\x01\x01\xc3\x80\x01\x28", 0, AC_WS_CLOSE_INVALID_DATA);
	FAIL("\x01\x01\xc3\x80\x00", 0, AC_WS_CLOSE_INVALID_DATA); /* ends mid-sequence */
	FAIL("\x88\x04\x03\xe8\xff\xfe", 0, AC_WS_CLOSE_INVALID_DATA);
	/* Fail fast: the first fragment's bad byte fails before the message ends. */
	FAIL("\x01\x02\xff\x61", 0, AC_WS_CLOSE_INVALID_DATA);
	/* 1009: a frame over the cap, a message over the cap in fragments. */
	FAIL("\x82\x65", 100, AC_WS_CLOSE_TOO_BIG); /* 101 > 100 */
	FAIL("\x82\x7f\x00\x00\x00\x00\x01\x00\x00\x01", 0, AC_WS_CLOSE_TOO_BIG);
	unsigned char two[2 + 60 + 2];
	two[0] = 0x02;
	two[1] = 60;
	memset(two + 2, 'x', 60);
	two[62] = 0x80;
	two[63] = 60;
	expect_fail(two, sizeof(two), 100, AC_WS_CLOSE_TOO_BIG); /* 60 + 60 > 100 */

	/* Binary is not checked for UTF-8; valid UTF-8 split across fragments is fine. */
	ac_ws_decoder_t d;
	got_t g;
	ac_ws_decoder_init(&d, 0);
	feed_all(&d, "\x82\x02\xc3\x28", 4, 0, &g);
	assert_int_equal(g.rc, 1);
	feed_all(&d, "\x01\x01\xc3\x80\x01\xa9", 6, 0, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 2);
	assert_memory_equal(g.data[0], "\xc3\xa9", 2);
	ac_ws_decoder_free(&d);

	/* At the cap exactly: accepted. */
	ac_ws_decoder_init(&d, 4);
	feed_all(&d,
		 "\x02\x02"
		 "ab"
		 "\x80\x02"
		 "cd",
		 8, 1, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 4);
	ac_ws_decoder_free(&d);
}

/* ---- the transport against tests/integration/ws_echo_server.py ---- */

typedef struct server {
	ac_test_server_t proc;
	int port;
	char log[PATH_MAX];
} server_t;

static char script[PATH_MAX];
static char tmpdir[PATH_MAX];
static server_t plain_srv, tls_srv, mtls_srv;
static bool have_plain, have_tls;

/* The server with its log in tmpdir/NAME.log and the options in extra (NULL-terminated). */
static bool server_start(server_t *s, const char *name, const char *const *extra)
{
	snprintf(s->log, sizeof(s->log), "%s/%s.log", tmpdir, name);
	char *argv[16] = {"/usr/bin/python3", script, "--log", s->log, "--lifetime", "300"};
	size_t n = 6;
	for (; extra && *extra && n < AC_ARRAY_SIZE(argv) - 1; extra++)
		argv[n++] = (char *)*extra;
	argv[n] = NULL;
	if (!ac_test_server_start(&s->proc, tmpdir, argv))
		return false;
	s->port = s->proc.port;
	return true;
}

static void server_stop(server_t *s)
{
	ac_test_server_stop(&s->proc);
}

/* Waits up to tries * 10 ms for the server's log to contain want. */
static bool log_has_within(const server_t *s, const char *want, int tries)
{
	for (int i = 0; i < tries; i++) {
		char *buf = NULL;
		size_t len = 0;
		ac_error_t *err = NULL;
		if (ac_read_file_at(AT_FDCWD, s->log, 1 << 20, &buf, &len, &err) == 0) {
			bool ok = strstr(buf, want) != NULL;
			free(buf);
			if (ok)
				return true;
		}
		ac_error_free(err);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static bool log_has(const server_t *s, const char *want)
{
	return log_has_within(s, want, 500);
}

static int group_setup(void **state)
{
	if (access("/usr/bin/python3", X_OK) != 0 ||
	    !ac_test_find_file("tests/integration/ws_echo_server.py", script))
		return 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ac-test-ws.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 0;
	have_plain = server_start(&plain_srv, "plain", NULL);
	/* A CA, a server certificate for localhost and ws.agentcell.test (no IP address:
	 * connecting to 127.0.0.1 verifies only through tls_server_name or "localhost") and a
	 * client certificate, all from the CA. */
	if (ac_test_make_certs(tmpdir, "DNS:localhost,DNS:ws.agentcell.test",
			       "/CN=agentcell-client")) {
		const char *tls[] = {"--tls", "srv.crt", "srv.key", NULL};
		const char *mtls[] = {"--tls", "srv.crt", "srv.key", "--client-ca", "ca.crt", NULL};
		have_tls =
		    server_start(&tls_srv, "tls", tls) && server_start(&mtls_srv, "mtls", mtls);
	}
	return 0;
}

static int group_teardown(void **state)
{
	server_stop(&plain_srv);
	server_stop(&tls_srv);
	server_stop(&mtls_srv);
	if (tmpdir[0]) {
		ac_rm_rf_at(AT_FDCWD, tmpdir, NULL);
	}
	return 0;
}

static void conf_for(ac_remote_conf_t *c, const char *scheme, const char *host, int port)
{
	static char url[128];
	memset(c, 0, sizeof(*c));
	snprintf(url, sizeof(url), "%s://%s:%d", scheme, host, port);
	c->server = url;
	c->name = "test server";
	c->timeout_ms = 10000;
}

static char *tmp_path(const char *name)
{
	return ac_test_path(tmpdir, name);
}

static ac_ws_conn_t *open_ok(const ac_remote_conf_t *c, const char *path, const char *const *protos,
			     const char **chosen)
{
	ac_ws_conn_t *w = NULL;
	ac_error_t *err = NULL;
	int rc = ac_ws_connect(c, path, protos, chosen, &w, &err);
	if (rc < 0)
		fail_msg("connect %s%s: %s", c->server, path, err ? err->msg : "?");
	assert_non_null(w);
	return w;
}

/* The next data message, which must be of opcode op. */
static void recv_msg(ac_ws_conn_t *w, int op, const unsigned char **data, size_t *len)
{
	int opcode = -1;
	unsigned code = 0;
	ac_error_t *err = NULL;
	int rc = ac_ws_recv(w, 10000, &opcode, data, len, &code, &err);
	if (rc != 1)
		fail_msg("recv: rc %d code %u: %s", rc, code, err ? err->msg : "");
	assert_int_equal(opcode, op);
}

static void echo(ac_ws_conn_t *w, int op, const void *data, size_t len)
{
	ac_error_t *err = NULL;
	if (ac_ws_send(w, op, data, len, &err) < 0)
		fail_msg("send: %s", err->msg);
	const unsigned char *got;
	size_t glen;
	recv_msg(w, op, &got, &glen);
	assert_int_equal(glen, len);
	if (len)
		assert_memory_equal(got, data, len);
}

static void send_text(ac_ws_conn_t *w, const char *s)
{
	ac_error_t *err = NULL;
	if (ac_ws_send(w, AC_WS_TEXT, s, strlen(s), &err) < 0)
		fail_msg("send: %s", err->msg);
}

static void test_transport_echo(void **state)
{
	if (!have_plain)
		skip();
	ac_remote_conf_t c;
	conf_for(&c, "http", "127.0.0.1", plain_srv.port);
	const char *chosen = "unset";
	ac_ws_conn_t *w = open_ok(&c, "/echo?x=1", k8s_protos, &chosen);
	assert_ptr_equal(chosen, k8s_protos[0]);
	assert_true(ac_ws_fd(w) >= 0);

	echo(w, AC_WS_TEXT, "hello", 5);
	echo(w, AC_WS_TEXT, "", 0);
	echo(w, AC_WS_BINARY, "\0\1\2\xff", 4);
	/* Every length form, and one larger than the read buffer and a TLS record. */
	size_t sizes[] = {125, 126, 65535, 65536, 300000, 1 << 20};
	for (size_t i = 0; i < AC_ARRAY_SIZE(sizes); i++) {
		unsigned char *b = malloc(sizes[i]);
		assert_non_null(b);
		for (size_t k = 0; k < sizes[i]; k++)
			b[k] = (unsigned char)(k * 13 + i);
		echo(w, AC_WS_BINARY, b, sizes[i]);
		free(b);
	}
	/* Text must be UTF-8 on the way out too. */
	ac_error_t *err = NULL;
	assert_int_equal(ac_ws_send(w, AC_WS_TEXT, "\xff", 1, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_ws_send(w, AC_WS_PING, "x", 1, &err), -1);
	ac_error_free(err);

	/* Fragmented from the server, a ping between the fragments. */
	send_text(w, "cmd:frag:4:fragmented message \xc3\xa9 reassembled");
	const unsigned char *d;
	size_t len;
	recv_msg(w, AC_WS_TEXT, &d, &len);
	assert_int_equal(len, strlen("fragmented message \xc3\xa9 reassembled"));
	assert_memory_equal(d, "fragmented message \xc3\xa9 reassembled", len);
	/* A ping is answered with its payload. */
	send_text(w, "cmd:ping:are you there");
	recv_msg(w, AC_WS_TEXT, &d, &len);
	assert_int_equal(len, strlen("pong-ok:are you there"));
	assert_memory_equal(d, "pong-ok:are you there", len);
	/* A large message from the server. */
	send_text(w, "cmd:big:200000");
	recv_msg(w, AC_WS_BINARY, &d, &len);
	assert_int_equal(len, 200000);
	for (size_t i = 0; i < len; i++)
		if (d[i] != i % 251)
			fail_msg("byte %zu", i);
	/* Nothing more: a timeout, nothing pending. */
	int op;
	unsigned code;
	assert_int_equal(ac_ws_recv(w, 50, &op, &d, &len, &code, NULL), 2);
	assert_false(ac_ws_pending(w));

	/* The server closes with a code: we see it and answer with the same code. */
	send_text(w, "cmd:close:4001:server done");
	code = 0;
	assert_int_equal(ac_ws_recv(w, 10000, &op, &d, &len, &code, NULL), 0);
	assert_int_equal(code, 4001);
	assert_string_equal(ac_ws_close_reason(w), "server done");
	assert_int_equal(ac_ws_recv(w, 10000, &op, &d, &len, &code, NULL), 0); /* stays */
	assert_true(ac_ws_pending(w)); /* recv answers at once: a poll loop must not wait */
	assert_true(log_has(&plain_srv, "client-close 4001"));
	err = NULL;
	assert_int_equal(ac_ws_send(w, AC_WS_TEXT, "late", 4, &err), -1);
	ac_error_free(err);
	ac_ws_free(w);
	assert_true(log_has(&plain_srv, "offered v5.channel.k8s.io,v4.channel.k8s.io chosen "
					"v5.channel.k8s.io"));
	assert_false(log_has_within(&plain_srv, "unmasked", 1));
}

static void test_transport_close_and_fallback(void **state)
{
	if (!have_plain)
		skip();
	ac_remote_conf_t c;
	conf_for(&c, "http", "localhost", plain_srv.port);
	/* A server that speaks only v4: the fallback is chosen. */
	const char *chosen = NULL;
	ac_ws_conn_t *w = open_ok(&c, "/echo?protocols=v4.channel.k8s.io", k8s_protos, &chosen);
	assert_ptr_equal(chosen, k8s_protos[1]);
	/* We close: the server echoes our code. */
	ac_error_t *err = NULL;
	assert_int_equal(ac_ws_send_close(w, 1000, "client done", &err), 0);
	assert_true(log_has(&plain_srv, "client-close 1000 client done"));
	int op;
	const unsigned char *d;
	size_t len;
	unsigned code = 0;
	assert_int_equal(ac_ws_recv(w, 10000, &op, &d, &len, &code, &err), 0);
	assert_int_equal(code, 1000);
	assert_string_equal(ac_ws_close_reason(w), "");		     /* the echo has no reason */
	assert_int_equal(ac_ws_send_close(w, 5000, NULL, &err), -1); /* not a code */
	ac_error_free(err);
	ac_ws_free(w);

	/* None offered, none chosen; frames right behind the 101 are not lost. */
	chosen = "unset";
	w = open_ok(&c, "/echo?burst=1", NULL, &chosen);
	assert_null(chosen);
	recv_msg(w, AC_WS_TEXT, &d, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "early", 5);
	echo(w, AC_WS_TEXT, "after", 5);
	/* The server drops the connection without a close frame: an error, not a close. */
	send_text(w, "cmd:drop");
	err = NULL;
	assert_int_equal(ac_ws_recv(w, 10000, &op, &d, &len, &code, &err), -1);
	assert_non_null(strstr(err->msg, "without a WebSocket close frame"));
	ac_error_free(err);
	ac_ws_free(w);
}

/* A bad frame from the server: recv fails naming the cause and the close code, and the
 * server receives that code. */
static void bad_frame(const char *hex_frame, size_t max, unsigned code, const char *why)
{
	ac_remote_conf_t c;
	conf_for(&c, "http", "127.0.0.1", plain_srv.port);
	ac_ws_conn_t *w = open_ok(&c, "/echo", NULL, NULL);
	if (max)
		ac_ws_set_max_message(w, max);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "cmd:raw:%s", hex_frame);
	send_text(w, cmd);
	int op;
	const unsigned char *d;
	size_t len;
	unsigned cc = 0;
	ac_error_t *err = NULL;
	assert_int_equal(ac_ws_recv(w, 10000, &op, &d, &len, &cc, &err), -1);
	assert_non_null(err);
	if (!strstr(err->msg, why))
		fail_msg("error '%s' lacks '%s'", err->msg, why);
	char want[64];
	snprintf(want, sizeof(want), "closed with %u", code);
	assert_non_null(strstr(err->msg, want));
	ac_error_free(err);
	snprintf(want, sizeof(want), "client-close %u ", code);
	if (!log_has(&plain_srv, want))
		fail_msg("the server got no close %u", code);
	/* Failed for good. */
	err = NULL;
	assert_int_equal(ac_ws_recv(w, 100, &op, &d, &len, &cc, &err), -1);
	ac_error_free(err);
	ac_ws_free(w);
}

static void test_transport_errors(void **state)
{
	if (!have_plain)
		skip();
	bad_frame("c100", 0, 1002, "reserved bits");
	bad_frame("8180", 0, 1002, "masked frame");
	bad_frame("8300", 0, 1002, "unknown opcode");
	bad_frame("800178", 0, 1002, "continuation");
	bad_frame("8102c328", 0, 1007, "not UTF-8");
	/* The size cap: a 5000-byte message with a 1000-byte cap. */
	bad_frame("827e1388", 1000, 1009, "size cap");
}

static void expect_refusal(const ac_remote_conf_t *c, const char *path, ac_error_kind_t kind,
			   const char *const *parts)
{
	ac_ws_conn_t *w = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_ws_connect(c, path, k8s_protos, NULL, &w, &err), -1);
	assert_null(w);
	assert_non_null(err);
	assert_int_equal(err->kind, kind);
	assert_null(strchr(err->msg, '\n'));
	for (size_t i = 0; parts[i]; i++)
		if (!strstr(err->msg, parts[i]))
			fail_msg("error '%s' lacks '%s'", err->msg, parts[i]);
	ac_error_free(err);
}

static void test_transport_refusals(void **state)
{
	if (!have_plain)
		skip();
	ac_remote_conf_t c;
	conf_for(&c, "http", "127.0.0.1", plain_srv.port);
	/* metav1.Status bodies: status, reason phrase and message on one line; the query
	 * (a command line) is not repeated. */
	const char *forbidden[] = {
	    "test server", "/refuse refused", "HTTP 403 Forbidden",
	    "pods \"box\" is forbidden: user \"test\" cannot create pods/exec", NULL};
	expect_refusal(&c, "/refuse?status=403&command=secret", AC_ERR_PERMISSION, forbidden);
	const char *notfound[] = {"HTTP 404 NotFound", "pods \"box\" is forbidden", NULL};
	expect_refusal(&c, "/refuse?status=404&chunked=1", AC_ERR_NOT_FOUND, notfound);
	const char *accept[] = {"Sec-WebSocket-Accept", NULL};
	expect_refusal(&c, "/badaccept", AC_ERR_BACKEND, accept);
	const char *proto[] = {"subprotocol that was not offered", NULL};
	expect_refusal(&c, "/badproto", AC_ERR_BACKEND, proto);
	/* Authentication: bearer token, token file, basic auth, extra headers. */
	const char *unauth[] = {"HTTP 401", "Unauthorized", NULL};
	expect_refusal(&c, "/echo?token=s3cret", AC_ERR_PERMISSION, unauth);
	c.token = "s3cret";
	ac_ws_free(open_ok(&c, "/echo?token=s3cret", NULL, NULL));
	c.token = NULL;
	const char *tf = tmp_path("token");
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, tf, "  fromfile\n", 11, 0600, NULL), 0);
	c.token_file = (char *)tf;
	ac_ws_free(open_ok(&c, "/echo?token=fromfile", NULL, NULL));
	c.token_file = NULL;
	c.username = "user";
	c.password = "pa:ss";
	ac_ws_free(open_ok(&c, "/echo?basic=user:pa:ss", NULL, NULL));
	c.username = c.password = NULL;
	char *hdrs[] = {"X-Nomad-Token: abc", NULL};
	c.headers = hdrs;
	ac_ws_free(open_ok(&c, "/echo?header=X-Nomad-Token:abc", NULL, NULL));
	char *evil[] = {"X-A: b\r\nX-B: c", NULL};
	c.headers = evil;
	const char *inval[] = {"extra header", NULL};
	expect_refusal(&c, "/echo", AC_ERR_INVALID, inval);
	c.headers = NULL;
	/* Nothing listening. */
	int port = plain_srv.port;
	conf_for(&c, "http", "127.0.0.1", 1);
	const char *refusedc[] = {"connection refused", NULL};
	expect_refusal(&c, "/echo", AC_ERR_BACKEND, refusedc);
	conf_for(&c, "ftp", "127.0.0.1", port);
	const char *scheme[] = {"not an http", NULL};
	expect_refusal(&c, "/echo", AC_ERR_INVALID, scheme);
}

static void test_transport_tls(void **state)
{
	if (!have_tls)
		skip();
	ac_remote_conf_t c;
	conf_for(&c, "https", "localhost", tls_srv.port);
	c.ca_file = tmp_path("ca.crt");
	const char *chosen = NULL;
	ac_ws_conn_t *w = open_ok(&c, "/echo", k8s_protos, &chosen);
	assert_ptr_equal(chosen, k8s_protos[0]);
	echo(w, AC_WS_TEXT, "over tls", 8);
	unsigned char *big = malloc(100000);
	assert_non_null(big);
	memset(big, 'z', 100000);
	echo(w, AC_WS_BINARY, big, 100000);
	free(big);
	ac_ws_free(w);
	/* HTTP/1.1 was negotiated, never h2 (the server offers both). */
	assert_true(log_has(&tls_srv, "alpn http/1.1"));
	assert_false(log_has_within(&tls_srv, "alpn h2", 1));

	/* The CA as PEM bytes. */
	char *pem = NULL;
	size_t pl = 0;
	assert_int_equal(ac_read_file_at(AT_FDCWD, c.ca_file, 1 << 20, &pem, &pl, NULL), 0);
	c.ca_file = NULL;
	c.ca_data = pem;
	ac_ws_free(open_ok(&c, "/echo", NULL, NULL));

	/* 127.0.0.1 is not in the certificate: refused, unless tls_server_name names one
	 * that is (and is then what SNI carries), or verification is off. */
	conf_for(&c, "https", "127.0.0.1", tls_srv.port);
	c.ca_data = pem;
	const char *verify[] = {"TLS", NULL};
	expect_refusal(&c, "/echo", AC_ERR_BACKEND, verify);
	c.tls_server_name = "ws.agentcell.test";
	w = open_ok(&c, "/echo", NULL, NULL);
	echo(w, AC_WS_TEXT, "renamed", 7);
	ac_ws_free(w);
	assert_true(log_has(&tls_srv, "sni ws.agentcell.test"));
	char hostline[64];
	snprintf(hostline, sizeof(hostline), "host=127.0.0.1:%d", tls_srv.port);
	assert_true(log_has(&tls_srv, hostline)); /* the Host header keeps the real address */
	c.tls_server_name = "bad name";
	const char *badname[] = {"tls-server-name", NULL};
	expect_refusal(&c, "/echo", AC_ERR_INVALID, badname);
	c.tls_server_name = NULL;
	c.ca_data = NULL;
	c.insecure = true;
	ac_ws_free(open_ok(&c, "/echo", NULL, NULL));
	/* Without a CA and not insecure: the system store does not know ours. */
	c.insecure = false;
	conf_for(&c, "https", "localhost", tls_srv.port);
	expect_refusal(&c, "/echo", AC_ERR_BACKEND, verify);

	/* Client certificates: required by the second server. */
	conf_for(&c, "https", "localhost", mtls_srv.port);
	c.ca_data = pem;
	const char *nocert[] = {"test server", NULL};
	expect_refusal(&c, "/echo", AC_ERR_BACKEND, nocert);
	c.cert_file = tmp_path("client.crt");
	c.key_file = tmp_path("client.key");
	w = open_ok(&c, "/echo", NULL, NULL);
	echo(w, AC_WS_TEXT, "mutual", 6);
	ac_ws_free(w);
	char *cert = NULL, *key = NULL;
	assert_int_equal(ac_read_file_at(AT_FDCWD, c.cert_file, 1 << 20, &cert, &pl, NULL), 0);
	assert_int_equal(ac_read_file_at(AT_FDCWD, c.key_file, 1 << 20, &key, &pl, NULL), 0);
	c.cert_file = c.key_file = NULL;
	c.cert_data = cert;
	c.key_data = key;
	w = open_ok(&c, "/echo", NULL, NULL);
	echo(w, AC_WS_TEXT, "mutual from memory", 18);
	ac_ws_free(w);
	free(cert);
	free(key);
	free(pem);
}

int main(void)
{
	const struct CMUnitTest codec[] = {
	    cmocka_unit_test(test_sha1_fips_vectors),
	    cmocka_unit_test(test_handshake_rfc_example),
	    cmocka_unit_test(test_handshake_request),
	    cmocka_unit_test(test_handshake_answer),
	    cmocka_unit_test(test_encode_rfc_examples),
	    cmocka_unit_test(test_close_payload),
	    cmocka_unit_test(test_decode_rfc_examples),
	    cmocka_unit_test(test_decode_stream_any_cut),
	    cmocka_unit_test(test_decode_errors),
	};
	const struct CMUnitTest transport[] = {
	    cmocka_unit_test(test_transport_echo),
	    cmocka_unit_test(test_transport_close_and_fallback),
	    cmocka_unit_test(test_transport_errors),
	    cmocka_unit_test(test_transport_refusals),
	    cmocka_unit_test(test_transport_tls),
	};
	int rc = cmocka_run_group_tests_name("ws codec", codec, NULL, NULL);
	rc += cmocka_run_group_tests_name("ws transport", transport, group_setup, group_teardown);
	return rc;
}
