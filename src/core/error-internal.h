/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal error helpers. Every helper accepts err == NULL (the caller did not
 * ask for details) and returns the code it was given, so a failure path reads
 *
 *	return mbx__error_set(err, MBX_EINVAL, 0, NULL, "timeout must be > 0");
 */
#pragma once

#include <mbx/error.h>

#define MBX_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Stores a new error in *err (replacing nothing: *err must be NULL or is
 * freed first). `layer` may be NULL. Returns `code`. */
int mbx__error_set(mbx_error **err, int code, int errnum, const char *layer, const char *fmt, ...) MBX_PRINTF(5, 6);

/* Adds (or replaces) the suggestion of the error in *err (no-op without one).
 * Returns nothing on purpose: with err == NULL there is no code to return, so
 * callers return the code of their mbx__error_set(). */
void mbx__error_suggest(mbx_error **err, const char *fmt, ...) MBX_PRINTF(2, 3);

/* Puts "context: " in front of the message of the error in *err (no-op
 * without one). */
void mbx__error_wrap(mbx_error **err, const char *fmt, ...) MBX_PRINTF(2, 3);

/* Moves the error from *from to *to (freeing *from when to is NULL). */
void mbx__error_move(mbx_error **to, mbx_error **from);

/* A new error in *to (freed first) equal to `from`: code, errno value,
 * message, suggestion and layer. MBX_OK (also with to == NULL), or
 * MBX_ENOMEM when the copy could not be made (*to: out of memory). */
int mbx__error_copy(mbx_error **to, const mbx_error *from);

/* MBX_ENOMEM with a fixed message; never allocates beyond a tiny object. */
int mbx__error_oom(mbx_error **err);

/* Argument check: in debug builds an assertion, in release builds an
 * MBX_EINVAL error naming the expression. */
#ifdef MBX_DEBUG
#include <assert.h>
#define MBX_CHECK_ARG(expr, err) do { assert(expr); } while (0)
#else
#define MBX_CHECK_ARG(expr, err) \
	do { \
		if (!(expr)) \
			return mbx__error_set((err), MBX_EINVAL, 0, NULL, "%s: invalid argument: %s", __func__, #expr); \
	} while (0)
#endif
