/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small JSON reader for the CLI's front (front.c), which is a static
 * program without json-c: it checks one answer of the server whole, then
 * looks members up in place. Values are spans of the checked text; nothing
 * is copied until a string is decoded.
 */
#ifndef MBX_CLI_JSONR_H
#define MBX_CLI_JSONR_H

#include <stddef.h>
#include <stdint.h>

/* Arrays and objects may nest this deep; deeper texts are refused. */
#define JSONR_MAX_DEPTH 64

enum jsonr_type {
	JSONR_NULL,
	JSONR_BOOL,
	JSONR_NUMBER,
	JSONR_STRING,
	JSONR_ARRAY,
	JSONR_OBJECT,
};

/* One value: its kind and its text, s[0, len) (a string with its quotes). */
struct jsonr_val {
	enum jsonr_type type;
	const char *s;
	size_t len;
};

/*
 * Checks that s[0, len) is one JSON value (RFC 8259; whitespace around it,
 * nothing else) and gives it in *root. Strings are checked for escapes and
 * control characters, not for UTF-8. Returns 0, or -1 when the text is not
 * JSON or nests deeper than JSONR_MAX_DEPTH.
 */
int jsonr_parse(const char *s, size_t len, struct jsonr_val *root);

/*
 * The member `key` of the object `obj` in *out (the last one when a key
 * repeats, as json-c has it); 1 when found, 0 when not (or obj is not an
 * object). `obj` must come from a checked text.
 */
int jsonr_get(const struct jsonr_val *obj, const char *key, struct jsonr_val *out);

/*
 * The element `i` (from 0) of the array `arr` in *out; 1 when there is one,
 * 0 when not (or arr is not an array). `arr` must come from a checked text.
 */
int jsonr_at(const struct jsonr_val *arr, size_t i, struct jsonr_val *out);

/*
 * The string `v` decoded (escapes, \u pairs as UTF-8) into a new
 * NUL-terminated buffer, *outlen bytes before the NUL; free() it. Returns 0,
 * or -1 when v is not a string or memory ran out.
 */
int jsonr_string(const struct jsonr_val *v, char **out, size_t *outlen);

/* An integer (no fraction, no exponent) that fits int64_t: 0, else -1. */
int jsonr_int64(const struct jsonr_val *v, int64_t *out);

/* 1 when v is `true`, else 0. */
int jsonr_true(const struct jsonr_val *v);

#endif
