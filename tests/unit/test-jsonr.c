/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the CLI front's JSON reader (cli/jsonr.c): what it accepts
 * and refuses, member lookup, string decoding and integers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"
#include "tap.h"

static int parses(const char *s)
{
	struct jsonr_val v;

	return jsonr_parse(s, strlen(s), &v) == 0;
}

static void test_accepts(void)
{
	static const char *const good[] = {
		"{}", " { } ", "[]", "0", "-0", "1.5e-3", "-12E+4", "true", "false", "null", "\"\"",
		"{\"a\": [1, 2, {\"b\": null}], \"c\": \"\\u00e9\\n\\\"\"}", "[[[[[]]]]]", "\"\\ud83d\\ude00\"",
		"\"raw \xff bytes\"",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!parses(good[i]))
			printf("#   refused: %s\n", good[i]);
		TAP_CHECK(parses(good[i]));
	}
}

static void test_refuses(void)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}", "01", "1.", ".5",
		"-", "1e", "+1", "tru", "nul", "\"open", "\"bad \\x escape\"", "\"\\u12g4\"", "\"tab\there\"",
		"{} {}", "[]x", "{\"a\":1}}", "'single'",
	};
	char deep[2 * JSONR_MAX_DEPTH + 8];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parses(bad[i]))
			printf("#   accepted: %s\n", bad[i]);
		TAP_CHECK(!parses(bad[i]));
	}
	/* JSONR_MAX_DEPTH levels pass, one more does not. */
	for (int i = 0; i < JSONR_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < JSONR_MAX_DEPTH; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	TAP_CHECK(parses(deep));
	memmove(deep + 1, deep, n + 1);
	deep[0] = '[';
	strcat(deep, "]");
	TAP_CHECK(!parses(deep));
	/* A NUL inside the span is not whitespace. */
	{
		struct jsonr_val v;

		TAP_CHECK(jsonr_parse("{}\0", 3, &v) < 0);
	}
}

static void test_lookup_and_values(void)
{
	const char *s = "{\"exit_code\": 3, \"signal\": 0, \"timed_out\": true, \"oom\": false, "
			"\"nested\": {\"exit_code\": 9}, \"elapsed_ms\": 1.5, \"big\": 9223372036854775807, "
			"\"over\": 9223372036854775808, \"neg\": -9223372036854775808, "
			"\"s\": \"a\\u0000b\\/\\ud83d\\ude00\\ud800x\", \"dup\": 1, \"dup\": 2, \"k\\u0065y\": 7}";
	struct jsonr_val o, v, inner;
	int64_t n;
	char *str;
	size_t len;

	TAP_CHECK(jsonr_parse(s, strlen(s), &o) == 0 && o.type == JSONR_OBJECT);
	TAP_CHECK(jsonr_get(&o, "exit_code", &v) && jsonr_int64(&v, &n) == 0 && n == 3);
	TAP_CHECK(jsonr_get(&o, "timed_out", &v) && jsonr_true(&v));
	TAP_CHECK(jsonr_get(&o, "oom", &v) && !jsonr_true(&v));
	TAP_CHECK(!jsonr_get(&o, "missing", &v));
	TAP_CHECK(jsonr_get(&o, "nested", &inner) && inner.type == JSONR_OBJECT);
	TAP_CHECK(jsonr_get(&inner, "exit_code", &v) && jsonr_int64(&v, &n) == 0 && n == 9);
	TAP_CHECK(!jsonr_get(&v, "x", &inner));	/* not an object */
	TAP_CHECK(jsonr_get(&o, "elapsed_ms", &v) && jsonr_int64(&v, &n) < 0);
	TAP_CHECK(jsonr_get(&o, "big", &v) && jsonr_int64(&v, &n) == 0 && n == INT64_MAX);
	TAP_CHECK(jsonr_get(&o, "over", &v) && jsonr_int64(&v, &n) < 0);
	TAP_CHECK(jsonr_get(&o, "neg", &v) && jsonr_int64(&v, &n) == 0 && n == INT64_MIN);
	TAP_CHECK(jsonr_get(&o, "dup", &v) && jsonr_int64(&v, &n) == 0 && n == 2);
	TAP_CHECK(jsonr_get(&o, "key", &v) && jsonr_int64(&v, &n) == 0 && n == 7);
	TAP_CHECK(jsonr_get(&o, "s", &v) && jsonr_string(&v, &str, &len) == 0);
	TAP_CHECK(len == 12 && memcmp(str, "a\0b/\xf0\x9f\x98\x80\xef\xbf\xbdx", 12) == 0);
	free(str);
	TAP_CHECK(jsonr_get(&o, "signal", &v) && jsonr_string(&v, &str, &len) < 0);
}

static void test_array_elements(void)
{
	const char *s = "{\"a\": [ {\"layer\": \"seccomp\"} , [1, [2]], \"x\", 3 ], \"e\": [], \"n\": 1}";
	struct jsonr_val o, a, v, w;
	int64_t n;

	TAP_CHECK(jsonr_parse(s, strlen(s), &o) == 0);
	TAP_CHECK(jsonr_get(&o, "a", &a) && a.type == JSONR_ARRAY);
	TAP_CHECK(jsonr_at(&a, 0, &v) && v.type == JSONR_OBJECT && jsonr_get(&v, "layer", &w) &&
		  w.type == JSONR_STRING);
	TAP_CHECK(jsonr_at(&a, 1, &v) && v.type == JSONR_ARRAY && jsonr_at(&v, 1, &w) && w.type == JSONR_ARRAY);
	TAP_CHECK(jsonr_at(&a, 2, &v) && v.type == JSONR_STRING);
	TAP_CHECK(jsonr_at(&a, 3, &v) && jsonr_int64(&v, &n) == 0 && n == 3);
	TAP_CHECK(!jsonr_at(&a, 4, &v));
	TAP_CHECK(jsonr_get(&o, "e", &a) && !jsonr_at(&a, 0, &v));
	TAP_CHECK(jsonr_get(&o, "n", &v) && !jsonr_at(&v, 0, &w));	/* not an array */
	TAP_CHECK(!jsonr_at(&o, 0, &v));
}

static const struct tap_case cases[] = {
	{ "jsonr/accepts", test_accepts },
	{ "jsonr/array_elements", test_array_elements },
	{ "jsonr/refuses", test_refuses },
	{ "jsonr/lookup_and_values", test_lookup_and_values },
};

TAP_MAIN(cases)
