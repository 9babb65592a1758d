/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer and the JSON writers of the mimobox CLI. Pure C: no
 * libmimobox calls, so the unit test links this file alone.
 *
 * Allocation failure does not interrupt the caller: the buffer remembers it
 * in `failed`, later appends do nothing, and the caller checks once at the end.
 *
 * Why the CLI writes its JSON here and parses with json-c (the server and the
 * client of the server load json-c): the CLI's output carries bytes that
 * programs in a sandbox printed, and those need not be UTF-8. json-c 0.16
 * copies invalid bytes into its output unchanged (measured: the string
 * "a\xff" comes out as the three bytes `"a\xff"`, which is not JSON), so
 * it would need this file's UTF-8 pass anyway; and every `--json` verb
 * would load one more library for a writer of a few hundred lines.
 */
#ifndef MBX_CLI_JSON_H
#define MBX_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>

struct cli_buf {
	char *data;	/* NUL-terminated when not NULL; owned */
	size_t len;	/* bytes used, not counting the NUL */
	size_t cap;
	int failed;	/* 1 after an allocation failure */
};

#define CLI_BUF_INIT { NULL, 0, 0, 0 }

void cli_buf_free(struct cli_buf *b);
/* Makes room for `more` bytes plus the NUL; 0 or -1 (and b->failed set). */
int cli_buf_reserve(struct cli_buf *b, size_t more);
void cli_buf_add(struct cli_buf *b, const void *data, size_t len);
void cli_buf_puts(struct cli_buf *b, const char *s);
void cli_buf_printf(struct cli_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Length of the well-formed UTF-8 sequence at the start of s[0, len), or 0
 * when it is not one: a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate (U+D800..U+DFFF) or a code point above
 * U+10FFFF. `len` must be at least 1. The code point goes to *cp if not NULL.
 */
size_t cli_utf8_sequence(const uint8_t *s, size_t len, uint32_t *cp);

/*
 * Appends s[0, len) as a quoted JSON string. Valid UTF-8 is copied as is,
 * except that '"', '\\', control characters, DEL and U+2028/U+2029 are
 * escaped; every byte that is not part of a well-formed sequence becomes
 * "\ufffd", one per byte. The output is always valid UTF-8 and valid JSON.
 */
void cli_json_string(struct cli_buf *b, const uint8_t *s, size_t len);

/* A NUL-terminated string as a JSON string, or `null` when s is NULL. */
void cli_json_cstring(struct cli_buf *b, const char *s);

/* 1 when all of s[0, len) is well-formed UTF-8 (as cli_utf8_sequence() takes it), else 0. */
int cli_utf8_valid(const uint8_t *s, size_t len);

/* Appends s[0, len) as a quoted JSON string of standard base64 (RFC 4648, with '=' padding). */
void cli_json_base64(struct cli_buf *b, const uint8_t *s, size_t len);

/*
 * The JSON form of bytes that may not be text, under `key`:
 * `"KEY": "text"` (lossy as cli_json_string()), followed by
 * `, "KEY_b64": "..."` with the exact bytes when they are not valid UTF-8.
 * Starts with ", ".
 */
void cli_json_bytes_field(struct cli_buf *b, const char *key, const uint8_t *s, size_t len);

/* `true` or `false`. */
void cli_json_bool(struct cli_buf *b, int v);

#endif /* MBX_CLI_JSON_H */
