/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket protocol (RFC 6455), both sides; see ws.h. Everything
 * here reads bytes the other side chose: every length is checked against what
 * is in the buffer and against the limits before it is used.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "ws.h"

/* ---- SHA-1 ---- */

static uint32_t rol(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(struct ws_sha1 *s, const uint8_t *p)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;
	unsigned i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e;
}

void ws_sha1_init(struct ws_sha1 *s)
{
	static const uint32_t h0[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };

	memcpy(s->h, h0, sizeof(h0));
	s->len = 0;
	s->n = 0;
}

void ws_sha1_update(struct ws_sha1 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->len += len;
	while (len > 0) {
		size_t take = 64 - s->n < len ? 64 - s->n : len;

		memcpy(s->block + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n == 64) {
			sha1_block(s, s->block);
			s->n = 0;
		}
	}
}

void ws_sha1_final(struct ws_sha1 *s, uint8_t out[20])
{
	uint64_t bits = s->len * 8;
	unsigned i;

	s->block[s->n++] = 0x80;
	if (s->n > 56) {
		memset(s->block + s->n, 0, 64 - s->n);
		sha1_block(s, s->block);
		s->n = 0;
	}
	memset(s->block + s->n, 0, 56 - s->n);
	for (i = 0; i < 8; i++)
		s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha1_block(s, s->block);
	for (i = 0; i < 20; i++)
		out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
	struct ws_sha1 s;

	ws_sha1_init(&s);
	ws_sha1_update(&s, data, len);
	ws_sha1_final(&s, out);
}

/* ---- the handshake ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ws_key_valid(const char *key)
{
	size_t i;

	/* 16 bytes: 21 whole sextets, one with 2 bits of data (and 4 zero bits), two '='. */
	if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return 0;
	for (i = 0; i < 22; i++)
		if (!key[i] || !strchr(b64, key[i]))
			return 0;
	return ((strchr(b64, key[21]) - b64) & 15) == 0;
}

/* Base64 of `n` bytes (a multiple of 3 after padding with zeros) into out; the caller writes the '='. */
static void b64_groups(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];

		*out++ = b64[v >> 18];
		*out++ = b64[(v >> 12) & 63];
		*out++ = b64[(v >> 6) & 63];
		*out++ = b64[v & 63];
	}
}

void ws_key_make(const uint8_t nonce[16], char out[25])
{
	uint8_t d[18];

	memcpy(d, nonce, 16);
	d[16] = d[17] = 0;
	b64_groups(d, 18, out);
	out[22] = out[23] = '=';	/* 16 bytes: the last group holds one */
	out[24] = '\0';
}

void ws_accept(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct ws_sha1 s;
	uint8_t d[21];

	ws_sha1_init(&s);
	ws_sha1_update(&s, key, strlen(key));
	ws_sha1_update(&s, guid, sizeof(guid) - 1);
	ws_sha1_final(&s, d);
	d[20] = 0;
	b64_groups(d, 21, out);
	out[27] = '=';	/* 20 bytes: the last group holds two */
	out[28] = '\0';
}

int ws_header_has_token(const char *list, const char *token)
{
	size_t n = strlen(token);

	while (list && *list) {
		const char *end;
		size_t len;

		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		end = list;
		while (*end && *end != ',')
			end++;
		len = (size_t)(end - list);
		while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(list, token, n) == 0)
			return 1;
		list = end;
	}
	return 0;
}

/* ---- frames ---- */

/* A frame's header; `from_server`: the frame must not be masked (else it must be). */
static int parse_header(const uint8_t *buf, size_t len, uint64_t max_payload, int from_server, struct ws_frame *f,
			const char **why)
{
	uint64_t plen;
	size_t need = 2;
	const char *w = NULL;
	int code = WS_CLOSE_PROTOCOL;

	if (len < 2)
		return 0;
	f->fin = buf[0] >> 7;
	f->opcode = buf[0] & 0x0f;
	f->masked = buf[1] >> 7;
	plen = buf[1] & 0x7f;
	if (buf[0] & 0x70) {
		w = "a frame with reserved bits set (no extension was agreed)";
		goto bad;
	}
	switch (f->opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!f->fin) {
			w = "a fragmented control frame";
			goto bad;
		}
		if (plen > 125) {
			w = "a control frame over 125 bytes";
			goto bad;
		}
		break;
	default:
		w = "a frame of an unknown opcode";
		goto bad;
	}
	if (!from_server && !f->masked) {
		w = "a client frame without a mask";
		goto bad;
	}
	if (from_server && f->masked) {
		w = "a server frame with a mask";
		goto bad;
	}
	if (plen == 126)
		need += 2;
	else if (plen == 127)
		need += 8;
	if (f->masked)
		need += 4;
	if (len < need)
		return 0;
	if (plen == 126) {
		plen = (uint64_t)buf[2] << 8 | buf[3];
		if (plen < 126) {
			w = "a frame length not in its shortest form";
			goto bad;
		}
	} else if (plen == 127) {
		plen = 0;
		for (unsigned i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen >> 63) {
			w = "a frame length of 2^63 or more";
			goto bad;
		}
		if (plen <= 0xffff) {
			w = "a frame length not in its shortest form";
			goto bad;
		}
	}
	if (plen > max_payload) {
		w = "a message over the size limit";
		code = WS_CLOSE_TOO_BIG;
		goto bad;
	}
	if (f->masked)
		memcpy(f->mask, buf + need - 4, 4);
	else
		memset(f->mask, 0, 4);
	f->len = plen;
	f->header_len = need;
	if (why)
		*why = NULL;
	return (int)need;
bad:
	if (why)
		*why = w;
	return -code;
}

int ws_parse_header(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *f, const char **why)
{
	return parse_header(buf, len, max_payload, 0, f, why);
}

int ws_parse_server_header(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *f, const char **why)
{
	return parse_header(buf, len, max_payload, 1, f, why);
}

void ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
	size_t i;

	for (i = 0; i < len; i++)
		data[i] ^= mask[(offset + i) & 3];
}

size_t ws_frame_header(uint8_t out[10], uint8_t opcode, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (unsigned i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

size_t ws_client_frame_header(uint8_t out[14], uint8_t opcode, uint64_t len, const uint8_t mask[4])
{
	size_t n = ws_frame_header(out, opcode, len);

	out[1] |= 0x80;
	memcpy(out + n, mask, 4);
	return n + 4;
}

size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	if (n > 123) {
		n = 123;
		/* Never cut a UTF-8 sequence: the reason must stay valid text. */
		while (n > 0 && ((uint8_t)reason[n] & 0xc0) == 0x80)
			n--;
	}
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	if (n)
		memcpy(out + 2, reason, n);
	return 2 + n;
}

int ws_close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

/* ---- messages ---- */

void ws_reader_init(struct ws_reader *r, size_t max_message)
{
	memset(r, 0, sizeof(*r));
	r->max_message = max_message;
}

void ws_reader_init_client(struct ws_reader *r, size_t max_message)
{
	ws_reader_init(r, max_message);
	r->from_server = 1;
}

void ws_reader_free(struct ws_reader *r)
{
	free(r->msg);
	r->msg = NULL;
	r->msg_len = r->msg_cap = 0;
	r->msg_op = 0;
}

static size_t fail(struct ws_reader *r, struct ws_event *ev, uint16_t code, const char *why)
{
	r->failed = 1;
	r->fail_code = code;
	r->fail_why = why;
	ev->kind = WS_EV_ERROR;
	ev->code = code;
	ev->why = why;
	return 0;
}

/* A whole message: text must be UTF-8 (RFC 6455 section 8.1). */
static int message(struct ws_event *ev, uint8_t op, const uint8_t *data, size_t len)
{
	ev->data = data;
	ev->len = len;
	if (op == WS_OP_TEXT) {
		if (!cli_utf8_valid(data, len))
			return -1;
		ev->kind = WS_EV_TEXT;
	} else {
		ev->kind = WS_EV_BINARY;
	}
	return 0;
}

size_t ws_reader_next(struct ws_reader *r, uint8_t *buf, size_t len, struct ws_event *ev)
{
	struct ws_frame f;
	const char *why = NULL;
	uint8_t *payload;
	size_t total;
	int h;

	memset(ev, 0, sizeof(*ev));
	if (r->failed)
		return fail(r, ev, r->fail_code, r->fail_why);
	h = parse_header(buf, len, r->max_message, r->from_server, &f, &why);
	if (h < 0)
		return fail(r, ev, (uint16_t)-h, why);
	if (h == 0 || f.len > len - (size_t)h)
		return 0;	/* (f.len <= max_message: the subtraction cannot wrap) */
	total = (size_t)h + (size_t)f.len;
	payload = buf + h;
	if (f.masked)
		ws_unmask(payload, (size_t)f.len, f.mask, 0);
	switch (f.opcode) {
	case WS_OP_PING:
	case WS_OP_PONG:
		ev->kind = f.opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
		ev->data = payload;
		ev->len = (size_t)f.len;
		return total;
	case WS_OP_CLOSE:
		if (f.len == 1)
			return fail(r, ev, WS_CLOSE_PROTOCOL, "a close frame of one byte");
		ev->code = WS_CLOSE_NO_STATUS;
		if (f.len >= 2) {
			ev->code = (uint16_t)(payload[0] << 8 | payload[1]);
			if (!ws_close_code_valid(ev->code))
				return fail(r, ev, WS_CLOSE_PROTOCOL, r->from_server ? "a close frame with a code a server may not send"
									       : "a close frame with a code a client may not send");
			if (!cli_utf8_valid(payload + 2, (size_t)f.len - 2))
				return fail(r, ev, WS_CLOSE_BAD_DATA, "a close reason that is not UTF-8");
			ev->data = payload + 2;
			ev->len = (size_t)f.len - 2;
		}
		ev->kind = WS_EV_CLOSE;
		return total;
	case WS_OP_CONT:
		if (!r->msg_op)
			return fail(r, ev, WS_CLOSE_PROTOCOL, "a continuation frame without a message under way");
		break;
	default:	/* text or binary: a new message */
		if (r->msg_op)
			return fail(r, ev, WS_CLOSE_PROTOCOL, "a new message before the last fragment of the one under way");
		if (f.fin) {
			if (message(ev, f.opcode, payload, (size_t)f.len) < 0)
				return fail(r, ev, WS_CLOSE_BAD_DATA, "a text message that is not UTF-8");
			return total;
		}
		r->msg_op = f.opcode;
		r->msg_len = 0;
		break;
	}
	/* A fragment: added to the message under way. */
	if (f.len > r->max_message - r->msg_len)
		return fail(r, ev, WS_CLOSE_TOO_BIG, "a message over the size limit");
	if (r->msg_len + f.len > r->msg_cap) {
		size_t cap = r->msg_cap ? r->msg_cap : 4096;
		uint8_t *p;

		while (cap < r->msg_len + f.len)
			cap *= 2;
		if (cap > r->max_message)
			cap = r->max_message;
		p = realloc(r->msg, cap ? cap : 1);
		if (!p)
			return fail(r, ev, WS_CLOSE_INTERNAL, "out of memory");
		r->msg = p;
		r->msg_cap = cap;
	}
	if (f.len)
		memcpy(r->msg + r->msg_len, payload, (size_t)f.len);
	r->msg_len += (size_t)f.len;
	if (f.fin) {
		uint8_t op = r->msg_op;

		r->msg_op = 0;
		if (message(ev, op, r->msg, r->msg_len) < 0)
			return fail(r, ev, WS_CLOSE_BAD_DATA, "a text message that is not UTF-8");
	}
	return total;
}
