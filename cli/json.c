/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON output for the mimobox CLI; see json.h. Payload output is arbitrary
 * bytes, so the string writer validates UTF-8 itself rather than trusting it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
}

int cli_buf_reserve(struct cli_buf *b, size_t more)
{
	size_t want, cap;
	char *p;

	if (b->failed)
		return -1;
	if (more > SIZE_MAX - b->len - 1)
		goto fail;
	want = b->len + more + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	return 0;

fail:
	b->failed = 1;
	return -1;
}

void cli_buf_add(struct cli_buf *b, const void *data, size_t len)
{
	if (cli_buf_reserve(b, len) < 0)
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void cli_buf_puts(struct cli_buf *b, const char *s)
{
	cli_buf_add(b, s, strlen(s));
}

void cli_buf_printf(struct cli_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (cli_buf_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/*
 * Table 3-7 of the Unicode standard ("Well-Formed UTF-8 Byte Sequences"): the
 * second byte's range depends on the first, which is what rules out overlong
 * forms (E0, F0), surrogates (ED) and values above U+10FFFF (F4); C0, C1 and
 * F5..FF never start a sequence.
 */
size_t cli_utf8_sequence(const uint8_t *s, size_t len, uint32_t *cp)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;
	uint32_t v;

	if (c < 0x80) {
		if (cp)
			*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		uint8_t t = s[i];

		if (t < lo || t > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
		v = (v << 6) | (t & 0x3f);
	}
	if (cp)
		*cp = v;
	return n;
}

void cli_json_string(struct cli_buf *b, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run = 0, n;
	uint32_t cp;
	char esc[8];

	if (!s) {
		s = (const uint8_t *)"";
		len = 0;
	}
	cli_buf_add(b, "\"", 1);
	while (i < len) {
		n = cli_utf8_sequence(s + i, len - i, &cp);
		/* Plain characters are copied in runs, the rest one at a time. */
		if (n > 0 && cp >= 0x20 && cp != '"' && cp != '\\' && cp != 0x7f &&
		    cp != 0x2028 && cp != 0x2029) {
			run += n;
			i += n;
			continue;
		}
		cli_buf_add(b, s + i - run, run);
		run = 0;
		if (n == 0) {
			cli_buf_add(b, "\\ufffd", 6);
			i++;
			continue;
		}
		switch (cp) {
		case '"':
			cli_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			cli_buf_add(b, "\\\\", 2);
			break;
		case '\b':
			cli_buf_add(b, "\\b", 2);
			break;
		case '\f':
			cli_buf_add(b, "\\f", 2);
			break;
		case '\n':
			cli_buf_add(b, "\\n", 2);
			break;
		case '\r':
			cli_buf_add(b, "\\r", 2);
			break;
		case '\t':
			cli_buf_add(b, "\\t", 2);
			break;
		default:
			/* Other controls, DEL and the JavaScript line separators. */
			memcpy(esc, "\\u", 2);
			esc[2] = hex[(cp >> 12) & 0xf];
			esc[3] = hex[(cp >> 8) & 0xf];
			esc[4] = hex[(cp >> 4) & 0xf];
			esc[5] = hex[cp & 0xf];
			cli_buf_add(b, esc, 6);
			break;
		}
		i += n;
	}
	cli_buf_add(b, s + i - run, run);
	cli_buf_add(b, "\"", 1);
}

void cli_json_cstring(struct cli_buf *b, const char *s)
{
	if (!s)
		cli_buf_puts(b, "null");
	else
		cli_json_string(b, (const uint8_t *)s, strlen(s));
}

void cli_json_bool(struct cli_buf *b, int v)
{
	cli_buf_puts(b, v ? "true" : "false");
}

int cli_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		n = cli_utf8_sequence(s + i, len - i, NULL);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

void cli_json_base64(struct cli_buf *b, const uint8_t *s, size_t len)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char quad[4];
	size_t i;
	uint32_t v;

	if (len > (SIZE_MAX - 3) / 4 * 3 - 3 || cli_buf_reserve(b, (len + 2) / 3 * 4 + 2) < 0)
		return;
	cli_buf_add(b, "\"", 1);
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		quad[0] = digits[v >> 18];
		quad[1] = digits[(v >> 12) & 63];
		quad[2] = digits[(v >> 6) & 63];
		quad[3] = digits[v & 63];
		cli_buf_add(b, quad, 4);
	}
	if (i < len) {
		v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
		quad[0] = digits[v >> 18];
		quad[1] = digits[(v >> 12) & 63];
		quad[2] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
		quad[3] = '=';
		cli_buf_add(b, quad, 4);
	}
	cli_buf_add(b, "\"", 1);
}

void cli_json_bytes_field(struct cli_buf *b, const char *key, const uint8_t *s, size_t len)
{
	cli_buf_printf(b, ", \"%s\": ", key);
	cli_json_string(b, s, len);
	if (!cli_utf8_valid(s, len)) {
		cli_buf_printf(b, ", \"%s_b64\": ", key);
		cli_json_base64(b, s, len);
	}
}
