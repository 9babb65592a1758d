/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny TAP producer for the unit tests. Each case is a function named
 * "<module>/<case>"; `test-x NAME` runs only the cases whose name contains
 * NAME. Exit status: 0 all passed, 1 a failure, 77 every case skipped.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap_case {
	const char *name;
	void (*fn)(void);
};

static int tap_failed_now;
static const char *tap_skip_reason;
static int tap_skip_na;

#define TAP_CHECK(cond) \
	do { \
		if (!(cond)) { \
			printf("#   %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			tap_failed_now = 1; \
		} \
	} while (0)

#define TAP_CHECK_INT(a, b) \
	do { \
		long long _a = (long long)(a), _b = (long long)(b); \
		if (_a != _b) { \
			printf("#   %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); \
			tap_failed_now = 1; \
		} \
	} while (0)

#define TAP_CHECK_STR(a, b) \
	do { \
		const char *_a = (a), *_b = (b); \
		if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) { \
			printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
			tap_failed_now = 1; \
		} \
	} while (0)

/* Skip because the host lacks something: a failure when
 * MBX_TEST_MUST_WORK=1 (CI), where every host feature must be there. */
#define TAP_SKIP(reason) \
	do { \
		tap_skip_reason = (reason); \
		return; \
	} while (0)

/* Skip because the case does not apply to this run (e.g. it needs root and
 * the suite runs unprivileged on purpose): never a failure. */
#define TAP_NOT_APPLICABLE(reason) \
	do { \
		tap_skip_reason = (reason); \
		tap_skip_na = 1; \
		return; \
	} while (0)

static inline int tap_run(const struct tap_case *cases, size_t n, int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int failed = 0, ran = 0, skipped = 0, k = 0;
	const char *must = getenv("MBX_TEST_MUST_WORK");
	size_t i;

	for (i = 0; i < n; i++)
		if (!filter || strstr(cases[i].name, filter))
			k++;
	printf("1..%d\n", k);
	k = 0;
	for (i = 0; i < n; i++) {
		if (filter && !strstr(cases[i].name, filter))
			continue;
		k++;
		tap_failed_now = 0;
		tap_skip_reason = NULL;
		tap_skip_na = 0;
		cases[i].fn();
		if (tap_skip_reason && (tap_skip_na || !(must && must[0] == '1'))) {
			printf("ok %d - %s # SKIP %s\n", k, cases[i].name, tap_skip_reason);
			skipped++;
		} else if (tap_skip_reason) {
			printf("not ok %d - %s # skipped but MBX_TEST_MUST_WORK=1: %s\n", k, cases[i].name, tap_skip_reason);
			failed++;
		} else {
			printf("%s %d - %s\n", tap_failed_now ? "not ok" : "ok", k, cases[i].name);
			failed += tap_failed_now;
		}
		ran++;
	}
	fflush(stdout);
	if (failed)
		return 1;
	return (ran > 0 && skipped == ran) ? 77 : 0;
}

#define TAP_MAIN(cases) \
	int main(int argc, char **argv) \
	{ \
		return tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv); \
	}
