/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small QMP client: the host's control of a jailed QEMU for snapshots
 * (stop, cont, migrate to and from a descriptor). QEMU may be compromised
 * by its guest, so its replies are untrusted bytes: lines are bounded,
 * and only two things are read from them, whether a reply is a "return" or
 * an "error" (with its description) and one string field (a migration's
 * status); nothing else of a reply decides anything. Never installed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A reply or event line is at most this long; a longer one is a protocol
 * error (QMP's replies to the commands used here are far shorter). */
#define MBX_QMP_LINE_MAX 16384u

struct mbx_qmp {
	int fd;
	char buf[MBX_QMP_LINE_MAX];
	size_t len;
};

enum mbx_qmp_kind { MBX_QMP_OTHER = 0, MBX_QMP_RETURN = 1, MBX_QMP_ERROR = 2 };

/* Connects to QMP's socket at `path` (already listening), reads the
 * greeting and enters command mode. */
int mbx__qmp_open(struct mbx_qmp *q, const char *path, uint64_t deadline_us, mbx_error **err);
void mbx__qmp_close(struct mbx_qmp *q);

/*
 * Runs one command: `json` is the whole command object. With fd >= 0 the
 * descriptor goes along (SCM_RIGHTS; for "getfd"). Events before the reply
 * are skipped. An "error" reply is MBX_ESYS with QEMU's description (cleaned
 * of control characters) in the message. With `reply` not NULL, a
 * "return" line is copied there (NUL-terminated, cut to `cap`).
 */
int mbx__qmp_command(struct mbx_qmp *q, const char *json, int fd, char *reply, size_t cap, uint64_t deadline_us,
		     mbx_error **err);

/* ---- pure parsing, unit-tested and fuzzed (fuzz/fuzz-qmp.c) ---- */

/* What a line (without its newline) is: a reply, an error reply, or
 * anything else (an event, the greeting). */
enum mbx_qmp_kind mbx__qmp_classify(const char *line, size_t len);

/* The value of the first `"key": "value"` in the line whose value is made
 * of [A-Za-z0-9 _.:,()/'-] only, into out (at most cap - 1 bytes). 0 when
 * found, -1 when not (or when the value has other bytes or does not fit). */
int mbx__qmp_string_field(const char *line, size_t len, const char *key, char *out, size_t cap);
