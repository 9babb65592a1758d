/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the CLI's reading of a server's answers (cli/httpc.c), the
 * bytes another process sends the CLI when it goes through `mimobox serve`
 * (also as the answer to a WebSocket upgrade, which a 101 ends).
 * The input goes through the response reader whole, one byte at a time
 * and split at a point it chooses (its first byte), then through the
 * server-sent event reader and the base64 decoder. Invariants, checked with
 * __builtin_trap(): every way of splitting gives the same result, status
 * and body; the body is never longer than the input; no byte past the
 * answer's end is taken; events and decoded bytes stay within their bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sum {
	size_t len;
	uint32_t hash;
};

static int on_body(void *ud, const uint8_t *p, size_t n)
{
	struct sum *s = ud;

	for (size_t i = 0; i < n; i++)
		s->hash = s->hash * 31u + p[i];
	s->len += n;
	return 0;
}

struct outcome {
	int rc;
	unsigned status;
	size_t used;
	int upgrade;
	struct sum body;
};

static void parse(const uint8_t *data, size_t size, size_t step, size_t split, int upgrade, struct outcome *o)
{
	struct httpc_resp r;
	size_t off = 0;

	memset(&r, 0, sizeof(r));
	memset(o, 0, sizeof(*o));
	r.on_body = on_body;
	r.ud = &o->body;
	r.upgrade = upgrade;
	httpc_resp_init(&r);
	while (off < size) {
		size_t n = size - off, used = 0;

		if (step)
			n = n < step ? n : step;
		else if (split && off < split)
			n = split - off;
		o->rc = httpc_feed(&r, data + off, n, &used);
		if (used > n)
			__builtin_trap();
		off += used;
		if (o->rc != 0)
			break;
		if (used != n)
			__builtin_trap();	/* 0 means all was taken */
	}
	if (o->rc == 0)
		o->rc = httpc_eof(&r);
	if (o->rc == 1 && (r.status < 100 || r.status > 599))
		__builtin_trap();
	if (o->body.len > size)
		__builtin_trap();
	/* A 101 ends with its head (nothing of the new protocol is taken), only when asked for. */
	if (o->rc == 1 && r.status == 101 && (!upgrade || o->body.len))
		__builtin_trap();
	if (memchr(r.ws_accept, '\0', sizeof(r.ws_accept)) == NULL)
		__builtin_trap();
	o->upgrade = r.conn_upgrade * 4 + r.upgrade_websocket * 2 + (r.ws_accept[0] != 0);
	o->status = o->rc == 1 ? r.status : 0;
	o->used = off;
}

static int on_event(void *ud, const char *event, const char *d, size_t len)
{
	size_t *count = ud;

	if (strlen(event) > HTTPC_EVENT_NAME_MAX || len > HTTPC_EVENT_DATA_MAX || strlen(d) > len)
		__builtin_trap();
	(*count)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, bytewise, split;
	struct httpc_sse sse;
	size_t events = 0, n = 0;
	uint8_t *out;

	if (size > (1u << 20))
		return 0;
	for (int upgrade = 0; upgrade < 2; upgrade++) {
		parse(data, size, 0, 0, upgrade, &whole);
		parse(data, size, 1, 0, upgrade, &bytewise);
		parse(data, size, 0, size ? data[0] % (size + 1) : 0, upgrade, &split);
		if (whole.rc != bytewise.rc || whole.rc != split.rc)
			__builtin_trap();
		if (whole.rc == 1 && (whole.status != bytewise.status || whole.status != split.status ||
				      whole.used != bytewise.used || whole.used != split.used ||
				      whole.upgrade != bytewise.upgrade || whole.upgrade != split.upgrade ||
				      whole.body.len != bytewise.body.len || whole.body.hash != bytewise.body.hash ||
				      whole.body.len != split.body.len || whole.body.hash != split.body.hash))
			__builtin_trap();
	}

	httpc_sse_init(&sse, on_event, &events);
	(void)httpc_sse_feed(&sse, data, size);
	httpc_sse_free(&sse);

	out = malloc(size / 4 * 3 + 4);
	if (out && httpc_b64_decode((const char *)data, size, out, &n) == 0 && n > size / 4 * 3 + 3)
		__builtin_trap();
	free(out);
	return 0;
}
