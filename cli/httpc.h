/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's reading of HTTP/1.1 responses and server-sent events, for the
 * verbs that go through `mimobox serve` (remote.c). Pure C without I/O and
 * without libmimobox: bytes are fed in as they arrive, in pieces of any
 * size, so the unit test and the fuzz target drive it directly.
 *
 * Everything is bounded: a header line, the whole head, a chunk-size line,
 * the body the caller keeps and an event. Bytes past the response's end
 * (a next response on a kept-alive connection) are left unconsumed.
 */
#ifndef MBX_CLI_HTTPC_H
#define MBX_CLI_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#define HTTPC_LINE_MAX 8192		/* one header or chunk-size line */
#define HTTPC_HEAD_MAX (64u << 10)	/* status line and headers together */
#define HTTPC_CTYPE_MAX 128

/*
 * Called with each piece of the decoded body (chunk framing removed);
 * returns 0, or -1 to stop (httpc_feed() then fails with the message the
 * callback left in `why` of the response).
 */
typedef int (*httpc_body_fn)(void *ud, const uint8_t *data, size_t len);

struct httpc_resp {
	/* Filled by the parser. */
	unsigned status;		/* 100..599 */
	int chunked;
	int64_t content_length;		/* -1: not given */
	int conn_close;			/* Connection: close, or HTTP/1.0 */
	int head_done;
	char content_type[HTTPC_CTYPE_MAX];	/* lower case, parameters cut; "" when absent */
	char why[256];			/* what was wrong, after -1 */
	/* An upgrade's headers (after a 101 when `upgrade` is set). */
	int conn_upgrade;		/* Connection: Upgrade */
	int upgrade_websocket;		/* Upgrade: websocket */
	char ws_accept[64];		/* Sec-WebSocket-Accept, "" when absent */
	/* Set by the caller before feeding. */
	int head_only;			/* a response to HEAD: no body */
	int upgrade;			/* a request to upgrade: a 101 ends the response with its head */
	httpc_body_fn on_body;		/* NULL: the body is dropped */
	void *ud;
	/* Private. */
	int state;
	char line[HTTPC_LINE_MAX];
	size_t line_len;
	size_t head_len;
	uint64_t left;			/* of the body or of the current chunk */
};

/* Makes `r` ready for a response; keeps head_only, upgrade, on_body and ud as set after. */
void httpc_resp_init(struct httpc_resp *r);

/*
 * Feeds data[0, len). Returns 1 when the response is complete (*used says
 * how many bytes it took: the rest belongs to what follows), 0 when more is
 * needed (all was used), -1 on a malformed response (r->why says what).
 */
int httpc_feed(struct httpc_resp *r, const uint8_t *data, size_t len, size_t *used);

/*
 * The connection ended: 1 when that completes the response (a body that
 * runs to the end of the connection), -1 when the response was cut short.
 */
int httpc_eof(struct httpc_resp *r);

/* ---- server-sent events ---- */

#define HTTPC_EVENT_NAME_MAX 64
#define HTTPC_EVENT_DATA_MAX (8u << 20)

/* Called with each complete event: its name ("message" when none) and its data (NUL-terminated). */
typedef int (*httpc_event_fn)(void *ud, const char *event, const char *data, size_t len);

struct httpc_sse {
	httpc_event_fn on_event;
	void *ud;
	char why[128];
	/* Private. */
	char event[HTTPC_EVENT_NAME_MAX + 1];
	char *data;			/* malloc'd, data_len bytes plus NUL */
	size_t data_len, data_cap;
	int has_data;
	char *line;			/* the line being read */
	size_t line_len, line_cap;
	int after_cr;
};

void httpc_sse_init(struct httpc_sse *s, httpc_event_fn fn, void *ud);
void httpc_sse_free(struct httpc_sse *s);

/* Feeds body bytes; 0, or -1 (s->why: too long, out of memory, or the callback's -1). */
int httpc_sse_feed(struct httpc_sse *s, const uint8_t *data, size_t len);

/* ---- base64, for the *_b64 fields ---- */

/* Decodes standard base64 (padding optional, no white space) into out (room for len / 4 * 3 + 3); -1 when bad. */
int httpc_b64_decode(const char *s, size_t len, uint8_t *out, size_t *outlen);

#endif /* MBX_CLI_HTTPC_H */
