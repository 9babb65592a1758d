/* SPDX-License-Identifier: Apache-2.0 */
/* Reading HTTP/1.1 responses and server-sent events; see httpc.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpc.h"

enum {
	S_STATUS,
	S_HEADER,
	S_BODY,		/* Content-Length bytes */
	S_TO_EOF,	/* the body runs to the end of the connection */
	S_CHUNK_SIZE,
	S_CHUNK_DATA,
	S_CHUNK_END,	/* the CRLF after a chunk's data */
	S_TRAILER,
	S_DONE,
};

void httpc_resp_init(struct httpc_resp *r)
{
	int head_only = r->head_only;
	httpc_body_fn fn = r->on_body;
	void *ud = r->ud;
	int upgrade = r->upgrade;

	memset(r, 0, sizeof(*r));
	r->head_only = head_only;
	r->upgrade = upgrade;
	r->on_body = fn;
	r->ud = ud;
	r->content_length = -1;
	r->state = S_STATUS;
}

static int fail(struct httpc_resp *r, const char *what)
{
	snprintf(r->why, sizeof(r->why), "%s", what);
	return -1;
}

static int deliver(struct httpc_resp *r, const uint8_t *data, size_t len)
{
	if (!len || !r->on_body)
		return 0;
	r->why[0] = '\0';
	if (r->on_body(r->ud, data, len) < 0) {
		if (!r->why[0])
			fail(r, "the response's body was refused");
		return -1;
	}
	return 0;
}

static int parse_status(struct httpc_resp *r, const char *l)
{
	unsigned v;

	if (strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
		return fail(r, "the answer is not HTTP/1.x (is this a mimobox server?)");
	if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
	    (l[12] != ' ' && l[12] != '\0'))
		return fail(r, "the answer's status line is malformed");
	v = (unsigned)(l[9] - '0') * 100 + (unsigned)(l[10] - '0') * 10 + (unsigned)(l[11] - '0');
	r->status = v;
	r->conn_close = l[7] == '0';
	return 0;
}

static int token_in(const char *value, const char *token)
{
	size_t n = strlen(token);
	const char *p = value;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return 1;
		while (*p && *p != ',')
			p++;
	}
	return 0;
}

static int parse_header(struct httpc_resp *r, char *l)
{
	char *colon = strchr(l, ':'), *v, *end;
	size_t i;

	if (!colon || colon == l)
		return fail(r, "the answer has a malformed header line");
	for (char *p = l; p < colon; p++)
		if (*p <= ' ' || *p >= 127)
			return fail(r, "the answer has a malformed header name");
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (strcasecmp(l, "content-length") == 0) {
		uint64_t n = 0;

		if (!*v)
			return fail(r, "the answer has an empty Content-Length");
		for (const char *p = v; *p; p++) {
			if (*p < '0' || *p > '9' || n > ((uint64_t)1 << 50))
				return fail(r, "the answer has a bad Content-Length");
			n = n * 10 + (uint64_t)(*p - '0');
		}
		if (r->content_length >= 0 && (uint64_t)r->content_length != n)
			return fail(r, "the answer has two different Content-Length headers");
		r->content_length = (int64_t)n;
	} else if (strcasecmp(l, "transfer-encoding") == 0) {
		if (strcasecmp(v, "chunked") != 0)
			return fail(r, "the answer has a transfer encoding other than chunked");
		r->chunked = 1;
	} else if (strcasecmp(l, "connection") == 0) {
		if (token_in(v, "close"))
			r->conn_close = 1;
		if (token_in(v, "upgrade"))
			r->conn_upgrade = 1;
	} else if (strcasecmp(l, "upgrade") == 0) {
		if (token_in(v, "websocket"))
			r->upgrade_websocket = 1;
	} else if (strcasecmp(l, "sec-websocket-accept") == 0) {
		if (r->ws_accept[0] || strlen(v) >= sizeof(r->ws_accept))
			return fail(r, "the answer has a bad or repeated Sec-WebSocket-Accept");
		memcpy(r->ws_accept, v, strlen(v) + 1);
	} else if (strcasecmp(l, "content-type") == 0) {
		for (i = 0; v[i] && v[i] != ';' && v[i] != ' ' && i + 1 < sizeof(r->content_type); i++)
			r->content_type[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
		r->content_type[i] = '\0';
	}
	return 0;
}

/* The head ended: where the body is, if any. */
static int head_end(struct httpc_resp *r)
{
	if (r->status == 101 && r->upgrade) {
		/* The answer ends with its head: what follows is the new protocol's. */
		r->head_done = 1;
		r->state = S_DONE;
		return 0;
	}
	if (r->status >= 100 && r->status < 200) {
		if (r->status == 101)
			return fail(r, "the server switched protocols, which this client does not speak");
		/* An interim answer (100 Continue): the real one follows. */
		r->state = S_STATUS;
		r->chunked = 0;
		r->content_length = -1;
		r->content_type[0] = '\0';
		r->conn_upgrade = r->upgrade_websocket = 0;
		r->ws_accept[0] = '\0';
		return 0;
	}
	r->head_done = 1;
	if (r->head_only || r->status == 204 || r->status == 304) {
		r->state = S_DONE;
	} else if (r->chunked) {
		r->state = S_CHUNK_SIZE;
	} else if (r->content_length >= 0) {
		r->left = (uint64_t)r->content_length;
		r->state = r->left ? S_BODY : S_DONE;
	} else {
		r->conn_close = 1;
		r->state = S_TO_EOF;
	}
	return 0;
}

static int chunk_size(struct httpc_resp *r, const char *l)
{
	uint64_t n = 0;
	const char *p = l;
	int digits = 0;

	for (; *p; p++, digits++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if ((*p | 32) >= 'a' && (*p | 32) <= 'f')
			d = (*p | 32) - 'a' + 10;
		else
			break;
		if (n >> 50)
			return fail(r, "the answer has a chunk too large");
		n = n << 4 | (uint64_t)d;
	}
	if (!digits || (*p && *p != ';' && *p != ' ' && *p != '\t'))
		return fail(r, "the answer has a malformed chunk size");
	r->left = n;
	r->state = n ? S_CHUNK_DATA : S_TRAILER;
	return 0;
}

/* A complete line of the head, the chunk framing or the trailer (CR LF cut). */
static int on_line(struct httpc_resp *r, char *l)
{
	switch (r->state) {
	case S_STATUS:
		return parse_status(r, l) < 0 ? -1 : (r->state = S_HEADER, 0);
	case S_HEADER:
		if (!*l)
			return head_end(r);
		return parse_header(r, l);
	case S_CHUNK_SIZE:
		return chunk_size(r, l);
	case S_CHUNK_END:
		if (*l)
			return fail(r, "the answer's chunk is longer than its size");
		r->state = S_CHUNK_SIZE;
		return 0;
	case S_TRAILER:
		if (!*l)
			r->state = S_DONE;
		return 0;
	default:
		return fail(r, "internal error: a line in the body");
	}
}

static int line_state(int s)
{
	return s == S_STATUS || s == S_HEADER || s == S_CHUNK_SIZE || s == S_CHUNK_END || s == S_TRAILER;
}

int httpc_feed(struct httpc_resp *r, const uint8_t *data, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len && r->state != S_DONE) {
		if (line_state(r->state)) {
			uint8_t c = data[i++];

			if (r->state == S_STATUS || r->state == S_HEADER) {
				if (++r->head_len > HTTPC_HEAD_MAX)
					return fail(r, "the answer's headers are too long");
			}
			if (c == '\n') {
				if (r->line_len && r->line[r->line_len - 1] == '\r')
					r->line_len--;
				r->line[r->line_len] = '\0';
				if (memchr(r->line, '\0', r->line_len))
					return fail(r, "the answer has a NUL byte in its head");
				r->line_len = 0;
				if (on_line(r, r->line) < 0)
					return -1;
				continue;
			}
			if (r->line_len + 1 >= sizeof(r->line))
				return fail(r, "the answer has a line too long");
			r->line[r->line_len++] = (char)c;
			continue;
		}
		if (r->state == S_TO_EOF) {
			if (deliver(r, data + i, len - i) < 0)
				return -1;
			i = len;
			break;
		}
		/* S_BODY or S_CHUNK_DATA */
		{
			size_t n = len - i;

			if (n > r->left)
				n = (size_t)r->left;
			if (deliver(r, data + i, n) < 0)
				return -1;
			i += n;
			r->left -= n;
			if (!r->left)
				r->state = r->state == S_BODY ? S_DONE : S_CHUNK_END;
		}
	}
	*used = i;
	return r->state == S_DONE ? 1 : 0;
}

int httpc_eof(struct httpc_resp *r)
{
	if (r->state == S_DONE || r->state == S_TO_EOF) {
		r->state = S_DONE;
		return 1;
	}
	return fail(r, r->state == S_STATUS && r->head_len == 0 ? "the server closed the connection without answering"
								 : "the server's answer was cut short");
}

/* ---- server-sent events ---- */

void httpc_sse_init(struct httpc_sse *s, httpc_event_fn fn, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->on_event = fn;
	s->ud = ud;
}

void httpc_sse_free(struct httpc_sse *s)
{
	free(s->data);
	free(s->line);
	s->data = s->line = NULL;
}

static int grow(char **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	char *q;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return 0;
	q = realloc(*p, n);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static int sse_line(struct httpc_sse *s)
{
	char *l = s->line ? s->line : (char *)"";
	size_t n = s->line_len, name_len;
	const char *v;
	size_t vlen;

	if (n == 0) {	/* dispatch */
		int rc = 0;

		if (s->has_data) {
			s->why[0] = '\0';
			rc = s->on_event(s->ud, s->event[0] ? s->event : "message", s->data ? s->data : "", s->data_len);
			if (rc < 0 && !s->why[0])
				snprintf(s->why, sizeof(s->why), "an event was refused");
		}
		s->event[0] = '\0';
		s->data_len = 0;
		s->has_data = 0;
		return rc < 0 ? -1 : 0;
	}
	if (l[0] == ':')
		return 0;	/* a comment (keep-alive) */
	v = memchr(l, ':', n);
	name_len = v ? (size_t)(v - l) : n;
	if (v) {
		v++;
		if (v < l + n && *v == ' ')
			v++;
		vlen = n - (size_t)(v - l);
	} else {
		v = "";
		vlen = 0;
	}
	if (name_len == 5 && memcmp(l, "event", 5) == 0) {
		if (vlen > HTTPC_EVENT_NAME_MAX) {
			snprintf(s->why, sizeof(s->why), "an event name is too long");
			return -1;
		}
		memcpy(s->event, v, vlen);
		s->event[vlen] = '\0';
	} else if (name_len == 4 && memcmp(l, "data", 4) == 0) {
		size_t need = s->data_len + (s->has_data ? 1 : 0) + vlen + 1;

		if (need > HTTPC_EVENT_DATA_MAX) {
			snprintf(s->why, sizeof(s->why), "an event is too long");
			return -1;
		}
		if (grow(&s->data, &s->data_cap, need) < 0) {
			snprintf(s->why, sizeof(s->why), "out of memory");
			return -1;
		}
		if (s->has_data)
			s->data[s->data_len++] = '\n';
		memcpy(s->data + s->data_len, v, vlen);
		s->data_len += vlen;
		s->data[s->data_len] = '\0';
		s->has_data = 1;
	}
	/* id:, retry: and unknown fields are ignored. */
	return 0;
}

int httpc_sse_feed(struct httpc_sse *s, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];

		if (c == '\n' && s->after_cr) {
			s->after_cr = 0;
			continue;	/* the LF of a CR LF */
		}
		s->after_cr = c == '\r';
		if (c == '\r' || c == '\n') {
			if (s->line)
				s->line[s->line_len] = '\0';
			if (sse_line(s) < 0)
				return -1;
			s->line_len = 0;
			continue;
		}
		if (s->line_len + 2 > HTTPC_EVENT_DATA_MAX) {
			snprintf(s->why, sizeof(s->why), "an event line is too long");
			return -1;
		}
		if (grow(&s->line, &s->line_cap, s->line_len + 2) < 0) {
			snprintf(s->why, sizeof(s->why), "out of memory");
			return -1;
		}
		s->line[s->line_len++] = (char)c;
	}
	return 0;
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int httpc_b64_decode(const char *s, size_t len, uint8_t *out, size_t *outlen)
{
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = n;
	return 0;
}
