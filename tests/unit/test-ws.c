/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket codec of `mimobox serve` (cli/ws.c): SHA-1 against the
 * RFC 3174 vectors, the handshake's answer (RFC 6455's example), and client
 * frames: well-formed ones put together into messages, every protocol
 * error refused with its close code; and the CLI's side: its key, its
 * masked frames, the server's frames read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ws.h"

static void hex(const uint8_t d[20], char out[41])
{
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha1(const char *msg, size_t len, unsigned repeat, const char *want)
{
	struct ws_sha1 s;
	uint8_t d[20];
	char h[41];

	ws_sha1_init(&s);
	for (unsigned i = 0; i < repeat; i++)
		ws_sha1_update(&s, msg, len);
	ws_sha1_final(&s, d);
	hex(d, h);
	TAP_CHECK_STR(h, want);
}

static void test_sha1_rfc3174(void)
{
	check_sha1("abc", 3, 1, "a9993e364706816aba3e25717850c26c9cd0d89d");
	check_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, 1,
		   "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	check_sha1("a", 1, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	check_sha1("01234567012345670123456701234567", 32, 20, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
	check_sha1("", 0, 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void test_sha1_pieces(void)
{
	/* Every split of 0..200 bytes agrees with the one-call digest (block edges, the 56-byte padding edge). */
	uint8_t data[200], whole[20], parts[20];
	struct ws_sha1 s;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 0; len <= sizeof(data); len++) {
		ws_sha1(data, len, whole);
		for (size_t cut = 0; cut <= len; cut += 13) {
			ws_sha1_init(&s);
			ws_sha1_update(&s, data, cut);
			ws_sha1_update(&s, data + cut, len - cut);
			ws_sha1_final(&s, parts);
			TAP_CHECK(memcmp(whole, parts, 20) == 0);
		}
	}
}

static void test_accept(void)
{
	char out[29];

	ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);	/* RFC 6455 section 1.3 */
	TAP_CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	TAP_CHECK(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
	TAP_CHECK(!ws_key_valid(NULL));
	TAP_CHECK(!ws_key_valid(""));
	TAP_CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ="));
	TAP_CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==="));
	TAP_CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZR=="));	/* bits after the 16th byte */
	TAP_CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25j*Q=="));
	TAP_CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA"));
	TAP_CHECK(ws_header_has_token("keep-alive, Upgrade", "upgrade"));
	TAP_CHECK(ws_header_has_token("websocket", "WebSocket"));
	TAP_CHECK(ws_header_has_token(" upgrade ,", "upgrade"));
	TAP_CHECK(!ws_header_has_token("upgrade-insecure", "upgrade"));
	TAP_CHECK(!ws_header_has_token("", "upgrade"));
	TAP_CHECK(!ws_header_has_token(NULL, "upgrade"));
}

/* A masked client frame of `op` with payload; returns its length in out. */
static size_t client_frame(uint8_t *out, int fin, uint8_t op, const void *payload, size_t len)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = 0;

	out[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (len < 126) {
		out[h++] = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(out + h, mask, 4);
	h += 4;
	memcpy(out + h, payload, len);
	ws_unmask(out + h, len, mask, 0);
	return h + len;
}

static void test_rfc_example(void)
{
	/* RFC 6455 section 5.7: a single-frame masked text message "Hello". */
	uint8_t f[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_reader r;
	struct ws_event ev;
	size_t n;

	ws_reader_init(&r, 1024);
	/* Byte by byte: nothing until the frame is whole. */
	for (size_t i = 0; i < sizeof(f); i++) {
		n = ws_reader_next(&r, f, i, &ev);
		TAP_CHECK_INT(n, 0);
		TAP_CHECK_INT(ev.kind, WS_EV_NONE);
	}
	n = ws_reader_next(&r, f, sizeof(f), &ev);
	TAP_CHECK_INT(n, sizeof(f));
	TAP_CHECK_INT(ev.kind, WS_EV_TEXT);
	TAP_CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
	ws_reader_free(&r);
}

static void test_fragments(void)
{
	uint8_t buf[256];
	struct ws_reader r;
	struct ws_event ev;
	size_t len = 0, n, off = 0;

	len += client_frame(buf + len, 0, WS_OP_TEXT, "Hel", 3);
	len += client_frame(buf + len, 1, WS_OP_PING, "p", 1);	/* control frames may come in between */
	len += client_frame(buf + len, 0, WS_OP_CONT, "l", 1);
	len += client_frame(buf + len, 1, WS_OP_CONT, "o\xc3\xa9", 3);
	len += client_frame(buf + len, 1, WS_OP_BINARY, "\x03", 1);
	ws_reader_init(&r, 1024);
	n = ws_reader_next(&r, buf + off, len - off, &ev);
	TAP_CHECK(n > 0 && ev.kind == WS_EV_NONE);
	off += n;
	n = ws_reader_next(&r, buf + off, len - off, &ev);
	TAP_CHECK_INT(ev.kind, WS_EV_PING);
	TAP_CHECK(ev.len == 1 && ev.data[0] == 'p');
	off += n;
	n = ws_reader_next(&r, buf + off, len - off, &ev);
	TAP_CHECK_INT(ev.kind, WS_EV_NONE);
	off += n;
	n = ws_reader_next(&r, buf + off, len - off, &ev);
	TAP_CHECK_INT(ev.kind, WS_EV_TEXT);
	TAP_CHECK(ev.len == 7 && memcmp(ev.data, "Hello\xc3\xa9", 7) == 0);
	off += n;
	n = ws_reader_next(&r, buf + off, len - off, &ev);
	TAP_CHECK_INT(ev.kind, WS_EV_BINARY);
	TAP_CHECK(ev.len == 1 && ev.data[0] == 3);
	off += n;
	TAP_CHECK_INT(off, len);
	ws_reader_free(&r);
}

/* The close code the reader answers to buf (WS_EV_ERROR), or 0. */
static int error_of(const uint8_t *bytes, size_t len, size_t max)
{
	uint8_t *buf = malloc(len ? len : 1);
	struct ws_reader r;
	struct ws_event ev;
	size_t off = 0, n;
	int code = 0;

	memcpy(buf, bytes, len);
	ws_reader_init(&r, max);
	for (;;) {
		n = ws_reader_next(&r, buf + off, len - off, &ev);
		if (ev.kind == WS_EV_ERROR) {
			code = ev.code;
			TAP_CHECK(ev.why != NULL);
			break;
		}
		if (n == 0)
			break;
		off += n;
	}
	ws_reader_free(&r);
	free(buf);
	return code;
}

static void test_protocol_errors(void)
{
	uint8_t b[300], x[130];
	size_t n;

	memset(x, 'x', sizeof(x));
	/* Unmasked client frame. */
	TAP_CHECK_INT(error_of((const uint8_t *)"\x81\x02hi", 4, 1024), WS_CLOSE_PROTOCOL);
	/* Reserved bits. */
	n = client_frame(b, 1, WS_OP_TEXT, "hi", 2);
	b[0] |= 0x40;
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	/* Unknown opcodes (data 3-7, control 0xb-0xf). */
	n = client_frame(b, 1, 3, "hi", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 1, 0xb, "hi", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	/* A fragmented ping; a ping of 126 bytes. */
	n = client_frame(b, 0, WS_OP_PING, "hi", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 1, WS_OP_PING, x, 126);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	/* A continuation with no message; a new message inside one. */
	n = client_frame(b, 1, WS_OP_CONT, "hi", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 0, WS_OP_TEXT, "hi", 2);
	n += client_frame(b + n, 1, WS_OP_BINARY, "hi", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	/* Lengths not in their shortest form; a length with the top bit set. */
	TAP_CHECK_INT(error_of((const uint8_t *)"\x82\xfe\x00\x05mmmmhello", 13, 1024), WS_CLOSE_PROTOCOL);
	TAP_CHECK_INT(error_of((const uint8_t *)"\x82\xff\x00\x00\x00\x00\x00\x00\x01\x00mmmm", 14, 1 << 20),
		      WS_CLOSE_PROTOCOL);
	TAP_CHECK_INT(error_of((const uint8_t *)"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00mmmm", 14, 1 << 20),
		      WS_CLOSE_PROTOCOL);
	/* Over the limit: one frame (known from its header alone), or fragments that add up. */
	TAP_CHECK_INT(error_of((const uint8_t *)"\x82\xff\x00\x00\x00\x00\x00\x10\x00\x01mmmm", 14, 1 << 20),
		      WS_CLOSE_TOO_BIG);
	n = client_frame(b, 0, WS_OP_BINARY, x, 60);
	n += client_frame(b + n, 1, WS_OP_CONT, x, 60);
	TAP_CHECK_INT(error_of(b, n, 100), WS_CLOSE_TOO_BIG);
	TAP_CHECK_INT(error_of(b, n, 120), 0);
	/* Text that is not UTF-8: whole, split across fragments, an overlong form, a surrogate. */
	n = client_frame(b, 1, WS_OP_TEXT, "a\xff", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_BAD_DATA);
	n = client_frame(b, 0, WS_OP_TEXT, "\xc3", 1);
	n += client_frame(b + n, 1, WS_OP_CONT, "(", 1);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_BAD_DATA);
	n = client_frame(b, 1, WS_OP_TEXT, "\xc0\xaf", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_BAD_DATA);
	n = client_frame(b, 1, WS_OP_TEXT, "\xed\xa0\x80", 3);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_BAD_DATA);
	/* Binary is never checked. */
	n = client_frame(b, 1, WS_OP_BINARY, "a\xff", 2);
	TAP_CHECK_INT(error_of(b, n, 1024), 0);
	/* After an error, every call answers it again. */
	{
		struct ws_reader r;
		struct ws_event ev;
		uint8_t bad[] = { 0x81, 0x02, 'h', 'i' };

		ws_reader_init(&r, 1024);
		ws_reader_next(&r, bad, sizeof(bad), &ev);
		n = client_frame(b, 1, WS_OP_TEXT, "ok", 2);
		ws_reader_next(&r, b, n, &ev);
		TAP_CHECK_INT(ev.kind, WS_EV_ERROR);
		TAP_CHECK_INT(ev.code, WS_CLOSE_PROTOCOL);
		ws_reader_free(&r);
	}
}

static void test_close_frames(void)
{
	uint8_t b[200];
	struct ws_reader r;
	struct ws_event ev;
	size_t n;

	ws_reader_init(&r, 1024);
	n = client_frame(b, 1, WS_OP_CLOSE, "", 0);
	TAP_CHECK_INT(ws_reader_next(&r, b, n, &ev), n);
	TAP_CHECK_INT(ev.kind, WS_EV_CLOSE);
	TAP_CHECK_INT(ev.code, WS_CLOSE_NO_STATUS);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x03\xe8" "bye", 5);
	TAP_CHECK_INT(ws_reader_next(&r, b, n, &ev), n);
	TAP_CHECK_INT(ev.kind, WS_EV_CLOSE);
	TAP_CHECK_INT(ev.code, 1000);
	TAP_CHECK(ev.len == 3 && memcmp(ev.data, "bye", 3) == 0);
	ws_reader_free(&r);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x03", 1);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x03\xed", 2);	/* 1005 is never sent */
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x03\xe7", 2);	/* 999 */
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_PROTOCOL);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x0f\xa0", 2);	/* 4000: for applications */
	TAP_CHECK_INT(error_of(b, n, 1024), 0);
	n = client_frame(b, 1, WS_OP_CLOSE, "\x03\xe8\xff", 3);
	TAP_CHECK_INT(error_of(b, n, 1024), WS_CLOSE_BAD_DATA);
	TAP_CHECK(!ws_close_code_valid(1004) && !ws_close_code_valid(1006) && !ws_close_code_valid(1015));
	TAP_CHECK(!ws_close_code_valid(5000) && ws_close_code_valid(1011) && ws_close_code_valid(1003));
}

static void test_server_frames(void)
{
	uint8_t h[10], p[125];
	struct ws_frame f;
	char reason[200];
	size_t n;

	TAP_CHECK_INT(ws_frame_header(h, WS_OP_BINARY, 0), 2);
	TAP_CHECK(h[0] == 0x82 && h[1] == 0);
	TAP_CHECK_INT(ws_frame_header(h, WS_OP_TEXT, 125), 2);
	TAP_CHECK(h[0] == 0x81 && h[1] == 125);
	TAP_CHECK_INT(ws_frame_header(h, WS_OP_BINARY, 126), 4);
	TAP_CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
	TAP_CHECK_INT(ws_frame_header(h, WS_OP_BINARY, 65535), 4);
	TAP_CHECK_INT(ws_frame_header(h, WS_OP_BINARY, 65536), 10);
	TAP_CHECK(h[1] == 127 && h[7] == 1 && h[8] == 0 && h[9] == 0);
	n = ws_close_payload(p, 1009, "too big");
	TAP_CHECK(n == 9 && p[0] == 0x03 && p[1] == 0xf1 && memcmp(p + 2, "too big", 7) == 0);
	/* A long reason is cut to fit, never inside a UTF-8 sequence. */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 122, "\xc3\xa9", 2);
	reason[sizeof(reason) - 1] = '\0';
	n = ws_close_payload(p, 1000, reason);
	TAP_CHECK_INT(n, 124);
	/* A header cut short needs more bytes; a full one is parsed. */
	TAP_CHECK_INT(ws_parse_header((const uint8_t *)"\x82\xfe\x01", 3, 1 << 20, &f, NULL), 0);
	TAP_CHECK_INT(ws_parse_header((const uint8_t *)"\x82\xfe\x01\x00mmmm", 8, 1 << 20, &f, NULL), 8);
	TAP_CHECK_INT(f.len, 256);
	TAP_CHECK(f.fin && f.masked && f.opcode == WS_OP_BINARY && memcmp(f.mask, "mmmm", 4) == 0);
}

/*
 * The CLI's side: its key, the frames it writes (which the server's reader
 * takes), and the server's frames it reads: unmasked only.
 */
static void test_client_side(void)
{
	static const uint8_t nonce[16] = "the sample nonce";	/* RFC 6455 section 1.3 */
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t buf[70000 + 14], big[70000];
	char key[25];
	struct ws_reader r;
	struct ws_event ev;
	struct ws_frame f;
	size_t h, n;

	ws_key_make(nonce, key);
	TAP_CHECK_STR(key, "dGhlIHNhbXBsZSBub25jZQ==");
	TAP_CHECK(ws_key_valid(key));
	/* RFC 6455 section 5.7's masked "Hello", written by the client side. */
	h = ws_client_frame_header(buf, WS_OP_TEXT, 5, mask);
	TAP_CHECK_INT(h, 6);
	memcpy(buf + h, "Hello", 5);
	ws_unmask(buf + h, 5, mask, 0);
	TAP_CHECK(memcmp(buf, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) == 0);
	/* A long client frame goes through the server's reader whole. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	h = ws_client_frame_header(buf, WS_OP_BINARY, sizeof(big), mask);
	TAP_CHECK_INT(h, 14);
	memcpy(buf + h, big, sizeof(big));
	ws_unmask(buf + h, sizeof(big), mask, 0);
	ws_reader_init(&r, 1 << 20);
	n = ws_reader_next(&r, buf, h + sizeof(big), &ev);
	TAP_CHECK_INT(n, h + sizeof(big));
	TAP_CHECK(ev.kind == WS_EV_BINARY && ev.len == sizeof(big) && memcmp(ev.data, big, sizeof(big)) == 0);
	ws_reader_free(&r);
	TAP_CHECK_INT(ws_client_frame_header(buf, WS_OP_BINARY, 300, mask), 8);
	TAP_CHECK(buf[1] == (0x80 | 126) && memcmp(buf + 4, mask, 4) == 0);

	/* The client's reader: a server's unmasked frames. */
	ws_reader_init_client(&r, 1024);
	memcpy(buf, "\x81\x05Hello", 7);
	n = ws_reader_next(&r, buf, 6, &ev);
	TAP_CHECK(n == 0 && ev.kind == WS_EV_NONE);
	n = ws_reader_next(&r, buf, 7, &ev);
	TAP_CHECK(n == 7 && ev.kind == WS_EV_TEXT && ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
	/* Fragments with a ping between them. */
	memcpy(buf, "\x02\x02" "ab\x89\x01" "p\x80\x01" "c", 11);
	n = ws_reader_next(&r, buf, 11, &ev);
	TAP_CHECK(n == 4 && ev.kind == WS_EV_NONE);
	n = ws_reader_next(&r, buf + 4, 7, &ev);
	TAP_CHECK(n == 3 && ev.kind == WS_EV_PING && ev.len == 1 && ev.data[0] == 'p');
	n = ws_reader_next(&r, buf + 7, 4, &ev);
	TAP_CHECK(n == 3 && ev.kind == WS_EV_BINARY && ev.len == 3 && memcmp(ev.data, "abc", 3) == 0);
	/* The server's close: 1001 and its reason. */
	memcpy(buf, "\x88\x05\x03\xe9" "bye", 7);
	n = ws_reader_next(&r, buf, 7, &ev);
	TAP_CHECK(n == 7 && ev.kind == WS_EV_CLOSE && ev.code == 1001 && ev.len == 3);
	ws_reader_free(&r);
	/* A masked server frame breaks the protocol. */
	ws_reader_init_client(&r, 1024);
	memcpy(buf, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
	n = ws_reader_next(&r, buf, 11, &ev);
	TAP_CHECK(n == 0 && ev.kind == WS_EV_ERROR && ev.code == WS_CLOSE_PROTOCOL);
	TAP_CHECK(ev.why && strstr(ev.why, "mask"));
	ws_reader_free(&r);
	/* A server frame over the limit is refused from its header. */
	ws_reader_init_client(&r, 1024);
	memcpy(buf, "\x82\x7e\x04\x01", 4);
	n = ws_reader_next(&r, buf, 4, &ev);
	TAP_CHECK(n == 0 && ev.kind == WS_EV_ERROR && ev.code == WS_CLOSE_TOO_BIG);
	ws_reader_free(&r);
	TAP_CHECK_INT(ws_parse_server_header((const uint8_t *)"\x82\x7e\x01\x00", 4, 1 << 20, &f, NULL), 4);
	TAP_CHECK(f.len == 256 && !f.masked);
	TAP_CHECK_INT(ws_parse_server_header((const uint8_t *)"\x82\x7e\x00\x10", 4, 1 << 20, &f, NULL),
		      -WS_CLOSE_PROTOCOL);
	TAP_CHECK_INT(ws_parse_header((const uint8_t *)"\x82\x05", 2, 1 << 20, &f, NULL), -WS_CLOSE_PROTOCOL);
}

static const struct tap_case cases[] = {
	{ "ws/sha1-rfc3174", test_sha1_rfc3174 },
	{ "ws/sha1-pieces", test_sha1_pieces },
	{ "ws/accept-and-key", test_accept },
	{ "ws/rfc-example-bytewise", test_rfc_example },
	{ "ws/fragments", test_fragments },
	{ "ws/protocol-errors", test_protocol_errors },
	{ "ws/close-frames", test_close_frames },
	{ "ws/server-frames", test_server_frames },
	{ "ws/client-side", test_client_side },
};

TAP_MAIN(cases)
