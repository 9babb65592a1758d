/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket protocol (RFC 6455) as `mimobox serve` and the CLI speak
 * it: the handshake's key and answer (SHA-1, base64), the frames either side
 * sends, checked as untrusted bytes and put together into messages, and the
 * frames each side writes. Pure functions without I/O: cli/serve_pty.c (the
 * server) and cli/remote_pty.c (the CLI's client) move the bytes;
 * tests/unit/test-ws.c and fuzz/fuzz-ws.c drive them.
 */
#ifndef MBX_CLI_WS_H
#define MBX_CLI_WS_H

#include <stddef.h>
#include <stdint.h>

/* ---- SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only: not for security ---- */

struct ws_sha1 {
	uint32_t h[5];
	uint64_t len;		/* bytes hashed so far */
	uint8_t block[64];
	size_t n;		/* bytes in block */
};

void ws_sha1_init(struct ws_sha1 *s);
void ws_sha1_update(struct ws_sha1 *s, const void *data, size_t len);
void ws_sha1_final(struct ws_sha1 *s, uint8_t out[20]);
void ws_sha1(const void *data, size_t len, uint8_t out[20]);

/* ---- the handshake ---- */

/* 1 when `key` is a Sec-WebSocket-Key: the base64 of 16 bytes (24 characters). */
int ws_key_valid(const char *key);

/* A client's Sec-WebSocket-Key: the base64 of 16 random bytes, 24 characters and a NUL. */
void ws_key_make(const uint8_t nonce[16], char out[25]);

/* Sec-WebSocket-Accept for `key`: base64(SHA-1(key + the RFC's GUID)), 28 characters and a NUL. */
void ws_accept(const char *key, char out[29]);

/* 1 when the comma-separated header value `list` holds `token` (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
int ws_header_has_token(const char *list, const char *token);

/* ---- frames ---- */

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_NO_STATUS 1005	/* never sent: a close frame without a code */
#define WS_CLOSE_BAD_DATA 1007	/* e.g. a text message that is not UTF-8 */
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

struct ws_frame {
	int fin;
	uint8_t opcode;
	int masked;
	uint8_t mask[4];
	uint64_t len;		/* payload bytes */
	size_t header_len;	/* 2 to 14 */
};

/*
 * Parses the header of a client frame at buf[0, len). Returns the header's
 * length (and fills f), 0 when more bytes are needed, or minus the close
 * code for a frame that breaks the protocol: reserved bits set, an unknown
 * opcode, a control frame fragmented or over 125 bytes, a length not in its
 * shortest form or of 2^63 or more, a client frame without a mask
 * (WS_CLOSE_PROTOCOL), or a payload over `max_payload` (WS_CLOSE_TOO_BIG).
 * `why` (may be NULL) gets a static text saying what was wrong.
 */
int ws_parse_header(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *f, const char **why);

/* As ws_parse_header(), for a frame a server sends: it must not be masked (WS_CLOSE_PROTOCOL). */
int ws_parse_server_header(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *f, const char **why);

/* XORs data with the mask; `offset` is the position of data[0] in the payload. */
void ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Writes the header of an unmasked, final server frame; returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], uint8_t opcode, uint64_t len);

/*
 * Writes the header of a masked, final client frame with the key `mask`
 * (RFC 6455: 4 bytes from a strong source, new for each frame); returns its
 * length (6, 8 or 14). The payload goes after it XORed with ws_unmask().
 */
size_t ws_client_frame_header(uint8_t out[14], uint8_t opcode, uint64_t len, const uint8_t mask[4]);

/* The payload of a close frame: the code and as much of `reason` as fits in 125 bytes. Returns its length. */
size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason);

/* 1 when a client may send `code` in a close frame (1000-1003, 1007-1011, 3000-4999). */
int ws_close_code_valid(unsigned code);

/* ---- messages ---- */

/*
 * Puts the frames a client sends (ws_reader_init()) or a server sends
 * (ws_reader_init_client(): the CLI's reader) together into messages. Feed
 * it the bytes read so far with ws_reader_next(); it takes one whole frame
 * at a time.
 */
struct ws_reader {
	size_t max_message;	/* largest message (all its fragments) */
	int from_server;	/* frames must be unmasked (a client's reader) */
	uint8_t *msg;		/* a fragmented message being put together; owned */
	size_t msg_len, msg_cap;
	uint8_t msg_op;		/* its opcode; 0: none under way */
	int failed;		/* after an error every call answers it again */
	uint16_t fail_code;
	const char *fail_why;
};

enum ws_event_kind {
	WS_EV_NONE,		/* more bytes are needed */
	WS_EV_TEXT,		/* a whole text message, valid UTF-8 */
	WS_EV_BINARY,		/* a whole binary message */
	WS_EV_PING,
	WS_EV_PONG,
	WS_EV_CLOSE,		/* the other side closes: `code` (WS_CLOSE_NO_STATUS without one) */
	WS_EV_ERROR,		/* the other side broke the protocol: close with `code` */
};

struct ws_event {
	enum ws_event_kind kind;
	const uint8_t *data;	/* payload (borrowed: until the next call, and from buf for control frames) */
	size_t len;
	uint16_t code;
	const char *why;	/* WS_EV_ERROR: what was wrong (static) */
};

void ws_reader_init(struct ws_reader *r, size_t max_message);
void ws_reader_init_client(struct ws_reader *r, size_t max_message);
void ws_reader_free(struct ws_reader *r);

/*
 * Takes the next frame of buf[0, len) (unmasking it in place) and says what
 * it gives in `ev`. Returns the bytes used: 0 with WS_EV_NONE when buf does
 * not hold a whole frame yet (read more; a frame's header says how much,
 * at most max_message + 14 bytes), or a frame consumed with WS_EV_NONE when
 * it was a fragment of a message under way. After WS_EV_ERROR the
 * connection must be closed with ev->code.
 */
size_t ws_reader_next(struct ws_reader *r, uint8_t *buf, size_t len, struct ws_event *ev);

#endif /* MBX_CLI_WS_H */
