/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the CLI front's JSON reader (cli/jsonr.c), which reads the
 * answers of the server a `mimobox run` goes through. Every accepted text
 * is walked: each member of the root object is looked up by its decoded
 * name and decoded itself when a string; decoded strings stay within the
 * text's length (checked with __builtin_trap()), integers either parse or
 * are refused.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
	"exit_code", "signal", "timed_out", "stdout", "stdout_b64", "stderr", "error", "code", "message", "",
	"skipped_layers", "layer",
};

static void walk(const struct jsonr_val *v, size_t size)
{
	struct jsonr_val m;
	int64_t n;
	char *s;
	size_t len;

	if (v->len > size)
		__builtin_trap();
	if (v->type == JSONR_STRING) {
		if (jsonr_string(v, &s, &len) == 0) {
			if (len + 2 > v->len || s[len] != '\0')
				__builtin_trap();
			free(s);
		}
	}
	(void)jsonr_int64(v, &n);
	(void)jsonr_true(v);
	for (size_t i = 0; jsonr_at(v, i, &m); i++) {
		if (v->type != JSONR_ARRAY || m.s < v->s || m.s + m.len > v->s + v->len)
			__builtin_trap();
		if ((m.type == JSONR_OBJECT || m.type == JSONR_ARRAY) && m.len < v->len)
			walk(&m, size);
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (jsonr_get(v, keys[i], &m)) {
			if (v->type != JSONR_OBJECT || m.s < v->s || m.s + m.len > v->s + v->len)
				__builtin_trap();
			if (m.type == JSONR_OBJECT && m.len < v->len)
				walk(&m, size);
			else if (m.type == JSONR_STRING && jsonr_string(&m, &s, &len) == 0)
				free(s);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonr_val root;

	if (jsonr_parse((const char *)data, size, &root) == 0)
		walk(&root, size);
	return 0;
}
