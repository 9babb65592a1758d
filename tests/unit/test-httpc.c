/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the CLI's HTTP/1.1 response and server-sent event reader
 * (cli/httpc.c): every input fed whole and one byte at a time, framing
 * (Content-Length, chunked, to the end of the connection, none), the
 * bounds, and malformed answers from a server that is not ours.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "tap.h"

struct body {
	char data[1 << 16];
	size_t len;
	int refuse_after;	/* >0: refuse once this many bytes came */
};

static int on_body(void *ud, const uint8_t *data, size_t len)
{
	struct body *b = ud;

	if (b->len + len > sizeof(b->data))
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	if (b->refuse_after && b->len >= (size_t)b->refuse_after)
		return -1;
	return 0;
}

/*
 * Feeds `s` in pieces of `step` bytes (0: whole); returns the last result
 * of httpc_feed(), after httpc_eof() when `eof` and the answer was not
 * complete. *used: the bytes the answer took.
 */
static int feed(struct httpc_resp *r, struct body *b, const char *s, size_t len, size_t step, int eof, size_t *taken)
{
	size_t off = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	memset(b, 0, sizeof(*b));
	r->on_body = on_body;
	r->ud = b;
	httpc_resp_init(r);
	while (off < len) {
		size_t n = step && step < len - off ? step : len - off, used = 0;

		rc = httpc_feed(r, (const uint8_t *)s + off, n, &used);
		off += used;
		if (rc != 0)
			break;
	}
	if (rc == 0 && eof)
		rc = httpc_eof(r);
	if (taken)
		*taken = off;
	return rc;
}

static struct httpc_resp r;
static struct body b;

static void all_steps(const char *s, int eof, int want, unsigned status, const char *body)
{
	static const size_t steps[] = { 0, 1, 2, 7 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc = feed(&r, &b, s, strlen(s), steps[i], eof, NULL);

		TAP_CHECK_INT(rc, want);
		if (want == 1) {
			TAP_CHECK_INT(r.status, status);
			TAP_CHECK_INT(b.len, strlen(body));
			TAP_CHECK(memcmp(b.data, body, b.len) == 0);
		}
	}
}

static void test_content_length(void)
{
	all_steps("HTTP/1.1 200 OK\r\nContent-Type: Application/JSON; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello",
		  0, 1, 200, "hello");
	TAP_CHECK_STR(r.content_type, "application/json");
	TAP_CHECK(!r.conn_close);
	/* Bare LF line ends too. */
	all_steps("HTTP/1.1 404 Not Found\nContent-Length: 2\n\n{}", 0, 1, 404, "{}");
	/* Repeated equal lengths are fine; different ones are not. */
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 0, 1, 200, "x");
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", 0, -1, 0, "");
	/* Cut short. */
	all_steps("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, -1, 0, "");
	TAP_CHECK(strstr(r.why, "cut short") != NULL);
}

static void test_next_response_is_left(void)
{
	const char *two = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	size_t used = 0;

	TAP_CHECK_INT(feed(&r, &b, two, strlen(two), 0, 0, &used), 1);
	TAP_CHECK_INT(r.status, 204);
	TAP_CHECK_INT(used, strlen("HTTP/1.1 204 No Content\r\n\r\n"));
	TAP_CHECK_INT(b.len, 0);
}

static void test_chunked(void)
{
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-T: 1\r\n\r\n",
		  0, 1, 200, "hello!");
	TAP_CHECK(r.chunked);
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 0, 1, 200,
		  "0123456789");
	/* Data longer than its size, a bad size, a size too large, an unknown coding. */
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 0, -1, 0, "");
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, -1, 0, "");
	/* The end of the connection inside a chunk is an error, not an end. */
	all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 1, -1, 0, "");
}

static void test_to_eof_and_no_body(void)
{
	all_steps("HTTP/1.0 200 OK\r\n\r\nuntil the end", 1, 1, 200, "until the end");
	TAP_CHECK(r.conn_close);
	all_steps("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 0, 1, 204, "");
	all_steps("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: keep-alive, close\r\n\r\nok",
		  0, 1, 201, "ok");
	TAP_CHECK(r.conn_close);
	all_steps("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, -1, 0, "");
	/* Nothing at all. */
	TAP_CHECK_INT(feed(&r, &b, "", 0, 0, 1, NULL), -1);
	TAP_CHECK(strstr(r.why, "without answering") != NULL);
}

/* The answer to a WebSocket upgrade: a 101 ends with its head; its headers are kept. */
static void test_upgrade(void)
{
	static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
				 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x82\x01x";
	static const char two[] = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a\r\n"
				  "Sec-WebSocket-Accept: a\r\n\r\n";
	size_t steps[] = { 0, 1, 5 }, off, used;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc = 0;

		memset(&r, 0, sizeof(r));
		r.upgrade = 1;
		httpc_resp_init(&r);
		TAP_CHECK_INT(r.upgrade, 1);
		for (off = 0; off < sizeof(ok) - 1 && rc == 0; off += used) {
			size_t n = steps[i] && steps[i] < sizeof(ok) - 1 - off ? steps[i] : sizeof(ok) - 1 - off;

			used = 0;
			rc = httpc_feed(&r, (const uint8_t *)ok + off, n, &used);
		}
		TAP_CHECK_INT(rc, 1);
		TAP_CHECK_INT(r.status, 101);
		TAP_CHECK_INT(off, sizeof(ok) - 1 - 3);	/* the frame after the head is left */
		TAP_CHECK(r.conn_upgrade && r.upgrade_websocket);
		TAP_CHECK_STR(r.ws_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	}
	memset(&r, 0, sizeof(r));
	r.upgrade = 1;
	httpc_resp_init(&r);
	TAP_CHECK_INT(httpc_feed(&r, (const uint8_t *)two, sizeof(two) - 1, &used), -1);
	TAP_CHECK(strstr(r.why, "Sec-WebSocket-Accept") != NULL);
	/* A refusal is an ordinary answer with its body. */
	memset(&r, 0, sizeof(r));
	r.upgrade = 1;
	httpc_resp_init(&r);
	TAP_CHECK_INT(httpc_feed(&r, (const uint8_t *)"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45, &used), 1);
	TAP_CHECK(r.status == 404 && !r.upgrade_websocket && !r.ws_accept[0]);
}

static void test_malformed_heads(void)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 600 X\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		all_steps(bad[i], 1, -1, 0, "");
	{
		static const char nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";

		TAP_CHECK_INT(feed(&r, &b, nul, sizeof(nul) - 1, 0, 1, NULL), -1);
	}
}

static void test_bounds(void)
{
	size_t n = HTTPC_LINE_MAX + 64, i;
	char *s = malloc(HTTPC_HEAD_MAX + 4096);

	/* One header line over the line limit. */
	strcpy(s, "HTTP/1.1 200 OK\r\nX: ");
	for (i = strlen(s); i < n; i++)
		s[i] = 'a';
	strcpy(s + i, "\r\n\r\n");
	TAP_CHECK_INT(feed(&r, &b, s, strlen(s), 0, 1, NULL), -1);
	TAP_CHECK(strstr(r.why, "too long") != NULL);
	/* Many short headers over the head limit. */
	strcpy(s, "HTTP/1.1 200 OK\r\n");
	while (strlen(s) < HTTPC_HEAD_MAX + 100)
		strcat(s, "X-Header: 0123456789\r\n");
	strcat(s, "\r\n");
	TAP_CHECK_INT(feed(&r, &b, s, strlen(s), 0, 1, NULL), -1);
	TAP_CHECK(strstr(r.why, "headers are too long") != NULL);
	free(s);
	/* A body the caller refuses (its own bound) stops the reading. */
	{
		const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";

		memset(&r, 0, sizeof(r));
		memset(&b, 0, sizeof(b));
		b.refuse_after = 4;
		r.on_body = on_body;
		r.ud = &b;
		httpc_resp_init(&r);
		{
			size_t used;

			TAP_CHECK_INT(httpc_feed(&r, (const uint8_t *)big, strlen(big), &used), -1);
		}
	}
}

/* ---- server-sent events ---- */

struct events {
	char log[4096];
	int n;
	int refuse;
};

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct events *e = ud;
	size_t l = strlen(e->log);

	if (strlen(data) != len)
		return -1;
	snprintf(e->log + l, sizeof(e->log) - l, "[%s|%s]", event, data);
	e->n++;
	return e->refuse ? -1 : 0;
}

static void sse_all_steps(const char *s, int want_rc, const char *want_log)
{
	static const size_t steps[] = { 0, 1, 3 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct httpc_sse sse;
		struct events ev;
		size_t off = 0, len = strlen(s);
		int rc = 0;

		memset(&ev, 0, sizeof(ev));
		httpc_sse_init(&sse, on_event, &ev);
		while (off < len && rc == 0) {
			size_t n = steps[i] && steps[i] < len - off ? steps[i] : len - off;

			rc = httpc_sse_feed(&sse, (const uint8_t *)s + off, n);
			off += n;
		}
		TAP_CHECK_INT(rc, want_rc);
		if (want_rc == 0)
			TAP_CHECK_STR(ev.log, want_log);
		httpc_sse_free(&sse);
	}
}

static void test_sse(void)
{
	sse_all_steps("event: start\ndata: {\"process_id\": 2}\n\n: keep-alive\n\nevent: stdout\ndata: a\ndata: b\n\n", 0,
		      "[start|{\"process_id\": 2}][stdout|a\nb]");
	/* CR LF and CR line ends; no space after the colon; a field without a value. */
	sse_all_steps("event:exit\r\ndata:{}\r\n\r\ndata\r\rid: 7\nretry: 1\ndata: x\n\n", 0, "[exit|{}][message|][message|x]");
	/* An event without data is not dispatched; an unfinished one neither. */
	sse_all_steps("event: lone\n\nevent: half\ndata: h\n", 0, "");
	/* Too long a name. */
	{
		char s[256];

		snprintf(s, sizeof(s), "event: %0*d\ndata: x\n\n", HTTPC_EVENT_NAME_MAX + 1, 0);
		sse_all_steps(s, -1, "");
	}
}

static void test_sse_bounds_and_refusal(void)
{
	struct httpc_sse sse;
	struct events ev;
	size_t n = HTTPC_EVENT_DATA_MAX / 2 + 16;
	uint8_t *line = malloc(n + 8);
	int rc;

	memset(&ev, 0, sizeof(ev));
	httpc_sse_init(&sse, on_event, &ev);
	memcpy(line, "data: ", 6);
	memset(line + 6, 'a', n);
	line[6 + n] = '\n';
	/* Two data lines of half the limit each: over it together. */
	rc = httpc_sse_feed(&sse, line, n + 7);
	TAP_CHECK_INT(rc, 0);
	rc = httpc_sse_feed(&sse, line, n + 7);
	TAP_CHECK_INT(rc, -1);
	TAP_CHECK(strstr(sse.why, "too long") != NULL);
	httpc_sse_free(&sse);
	free(line);

	memset(&ev, 0, sizeof(ev));
	ev.refuse = 1;
	httpc_sse_init(&sse, on_event, &ev);
	TAP_CHECK_INT(httpc_sse_feed(&sse, (const uint8_t *)"data: x\n\n", 9), -1);
	httpc_sse_free(&sse);
}

static void test_base64(void)
{
	uint8_t out[16];
	size_t n = 0;

	TAP_CHECK_INT(httpc_b64_decode("/3g=", 4, out, &n), 0);
	TAP_CHECK_INT(n, 2);
	TAP_CHECK(out[0] == 0xff && out[1] == 'x');
	TAP_CHECK_INT(httpc_b64_decode("aGVsbG8", 7, out, &n), 0);
	TAP_CHECK_INT(n, 5);
	TAP_CHECK(memcmp(out, "hello", 5) == 0);
	TAP_CHECK_INT(httpc_b64_decode("", 0, out, &n), 0);
	TAP_CHECK_INT(n, 0);
	TAP_CHECK_INT(httpc_b64_decode("a", 1, out, &n), -1);
	TAP_CHECK_INT(httpc_b64_decode("ab c", 4, out, &n), -1);
	TAP_CHECK_INT(httpc_b64_decode("ab=c", 4, out, &n), -1);
}

static const struct tap_case cases[] = {
	{ "httpc/upgrade", test_upgrade },
	{ "httpc/content_length", test_content_length },
	{ "httpc/next_response_is_left", test_next_response_is_left },
	{ "httpc/chunked", test_chunked },
	{ "httpc/to_eof_and_no_body", test_to_eof_and_no_body },
	{ "httpc/malformed_heads", test_malformed_heads },
	{ "httpc/bounds", test_bounds },
	{ "httpc/sse", test_sse },
	{ "httpc/sse_bounds_and_refusal", test_sse_bounds_and_refusal },
	{ "httpc/base64", test_base64 },
};

TAP_MAIN(cases)
