/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the agent protocol codec. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/error.h>
#include <mbx/file.h>
#include "proto.h"
#include "tap.h"

static void test_roundtrip(void)
{
	struct mbx_wbuf w;
	struct mbx_rbuf r;
	struct mbx_frame f;
	struct mbx_exit_info ex;

	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_EXIT, 7);
	mbx_proto_put_u32(&w, MBX_F_EXIT_CODE, 3);
	mbx_proto_put_u32(&w, MBX_F_FLAGS, MBX_EXIT_TIMED_OUT);
	mbx_proto_put_u64(&w, MBX_F_CPU_US, 1234567890123ull);
	mbx_proto_put_str(&w, 999, "unknown fields are skipped");
	TAP_CHECK_INT(mbx_proto_end(&w), 0);

	mbx_rbuf_init(&r);
	/* Feed it one byte at a time: frames come out only when complete. */
	for (size_t i = 0; i < w.len; i++) {
		TAP_CHECK_INT(mbx_rbuf_next(&r, &f), 0);
		mbx_rbuf_push(&r, w.buf + i, 1);
	}
	TAP_CHECK_INT(mbx_rbuf_next(&r, &f), 1);
	TAP_CHECK_INT(f.type, MBX_MSG_EXIT);
	TAP_CHECK_INT(f.id, 7);
	TAP_CHECK_INT(mbx_proto_decode_exit(&f, &ex), 0);
	TAP_CHECK_INT(ex.exit_code, 3);
	TAP_CHECK_INT(ex.flags, MBX_EXIT_TIMED_OUT);
	TAP_CHECK(ex.cpu_us == 1234567890123ull);
	TAP_CHECK_INT(mbx_rbuf_next(&r, &f), 0);
	mbx_rbuf_release(&r);
	mbx_wbuf_release(&w);
}

static void test_oversized_frame(void)
{
	uint8_t hdr[12] = { 0 };
	struct mbx_frame f;
	size_t used;

	/* A body length past the maximum is refused before anything waits for
	 * or allocates that much. */
	hdr[0] = 0x01;
	hdr[2] = 0x10; /* 1 MiB + 1 */
	TAP_CHECK_INT(mbx_proto_parse(hdr, sizeof(hdr), &f, &used), -1);
	/* Reserved flags must be zero. */
	memset(hdr, 0, sizeof(hdr));
	hdr[6] = 1;
	TAP_CHECK_INT(mbx_proto_parse(hdr, sizeof(hdr), &f, &used), -1);
}

static void test_truncated_field(void)
{
	uint8_t body[] = { 12, 0, 4, 0, 0, 0, 1, 2 }; /* says 4 bytes, has 2 */
	struct mbx_frame f = { .type = MBX_MSG_EXIT, .body = body, .len = sizeof(body) };
	struct mbx_exit_info ex;
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;

	mbx_field_iter_init(&it, body, sizeof(body));
	TAP_CHECK_INT(mbx_field_next(&it, &tag, &v, &n), -1);
	TAP_CHECK_INT(mbx_proto_decode_exit(&f, &ex), -1);
}

static void test_exit_consistency(void)
{
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_exit_info ex;
	size_t used;

	/* An exit status of 300, or a signal together with a status, cannot
	 * come from a real process: refuse it. */
	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_EXIT, 1);
	mbx_proto_put_u32(&w, MBX_F_EXIT_CODE, 300);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_exit(&f, &ex), -1);
	mbx_wbuf_reset(&w);
	mbx_proto_begin(&w, MBX_MSG_EXIT, 1);
	mbx_proto_put_u32(&w, MBX_F_EXIT_CODE, 0);
	mbx_proto_put_u32(&w, MBX_F_SIGNAL, 9);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_exit(&f, &ex), -1);
	mbx_wbuf_release(&w);
}

static void test_error_decode(void)
{
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_error_info info;
	size_t used;

	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_ERROR, 0);
	mbx_proto_put_u32(&w, MBX_F_CODE, (uint32_t)-9);
	mbx_proto_put_u32(&w, MBX_F_ERRNO, 2);
	mbx_proto_put_str(&w, MBX_F_MESSAGE, "bad\x1b[31mcolour\nline");
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_error(&f, &info), 0);
	TAP_CHECK_INT(info.code, -9);
	/* Control bytes from the agent never reach a terminal. */
	TAP_CHECK_STR(info.message, "bad?[31mcolour?line");
	/* A positive code is not an error code. */
	mbx_wbuf_reset(&w);
	mbx_proto_begin(&w, MBX_MSG_ERROR, 0);
	mbx_proto_put_u32(&w, MBX_F_CODE, 5);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_error(&f, &info), -1);
	mbx_wbuf_release(&w);
}

static void test_nested(void)
{
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_field_iter it, sub;
	const uint8_t *v, *sv;
	uint32_t n, sn, op = 0;
	uint16_t tag, stag;
	size_t used, at;

	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_INIT, 0);
	at = mbx_proto_nest_begin(&w, MBX_F_MOUNT);
	mbx_proto_put_u32(&w, MBX_F_OP, MBX_MOP_PROC);
	mbx_proto_put_str(&w, MBX_F_DST, "/proc");
	mbx_proto_nest_end(&w, at);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	mbx_field_iter_init(&it, f.body, f.len);
	TAP_CHECK_INT(mbx_field_next(&it, &tag, &v, &n), 1);
	TAP_CHECK_INT(tag, MBX_F_MOUNT);
	mbx_field_iter_init(&sub, v, n);
	TAP_CHECK_INT(mbx_field_next(&sub, &stag, &sv, &sn), 1);
	TAP_CHECK_INT(mbx_field_u32(sv, sn, &op), 0);
	TAP_CHECK_INT(op, MBX_MOP_PROC);
	TAP_CHECK_INT(mbx_field_next(&it, &tag, &v, &n), 0);
	mbx_wbuf_release(&w);
}

static int count_entry(const struct mbx_file_info *info, void *arg)
{
	*(uint32_t *)arg = info->target_len;
	return 0;
}

/* A FILE_STAT (or FILE_DIR entry) with a symlink target of `len` bytes of `c`; the decoder's verdict. */
static int stat_with_target(char c, size_t len, int dir, const uint8_t **target, uint32_t *target_len)
{
	static char buf[MBX_PROTO_TARGET_MAX + 2];
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_file_info info;
	size_t used, at = 0;
	uint32_t more;
	int rc;

	memset(buf, c, len);
	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, dir ? MBX_MSG_FILE_DIR : MBX_MSG_FILE_STAT, 1);
	if (dir) {
		at = mbx_proto_nest_begin(&w, MBX_F_ENTRY);
		mbx_proto_put_str(&w, MBX_F_NAME, "link");
	}
	mbx_proto_put_u32(&w, MBX_F_FTYPE, MBX_FILE_SYMLINK);
	mbx_proto_put(&w, MBX_F_TARGET, buf, len);
	if (dir)
		mbx_proto_nest_end(&w, at);
	mbx_proto_end(&w);
	rc = mbx_proto_parse(w.buf, w.len, &f, &used) == 1 ? 0 : -9;
	if (rc == 0 && dir) {
		uint32_t seen = 0;

		rc = mbx_proto_decode_dir(&f, count_entry, &seen, &more);
	} else if (rc == 0) {
		rc = mbx_proto_decode_stat(&f, &info);
		if (rc == 0 && target) {
			/* Copied out: the frame goes with the buffer. */
			*target_len = info.target_len;
			*target = info.target ? (const uint8_t *)"set" : NULL;
		}
	}
	mbx_wbuf_release(&w);
	return rc;
}

static void test_symlink_target(void)
{
	const uint8_t *t = NULL;
	uint32_t tl = 0;
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_file_info info;
	size_t used;

	TAP_CHECK_INT(stat_with_target('a', 5, 0, &t, &tl), 0);
	TAP_CHECK(t != NULL && tl == 5);
	TAP_CHECK_INT(stat_with_target('a', MBX_PROTO_TARGET_MAX, 0, &t, &tl), 0);
	TAP_CHECK_INT(tl, MBX_PROTO_TARGET_MAX);
	/* Too long, empty, or with a NUL inside: refused. */
	TAP_CHECK_INT(stat_with_target('a', MBX_PROTO_TARGET_MAX + 1, 0, &t, &tl), -1);
	TAP_CHECK_INT(stat_with_target('a', 0, 0, &t, &tl), -1);
	TAP_CHECK_INT(stat_with_target('\0', 3, 0, &t, &tl), -1);
	/* The same in a listing entry. */
	TAP_CHECK_INT(stat_with_target('\0', 3, 1, NULL, NULL), -1);
	TAP_CHECK_INT(stat_with_target('a', MBX_PROTO_TARGET_MAX + 1, 1, NULL, NULL), -1);
	/* A listing entry's target reaches the callback. */
	{
		uint32_t seen = 0, more;
		size_t at;

		mbx_wbuf_init(&w);
		mbx_proto_begin(&w, MBX_MSG_FILE_DIR, 1);
		at = mbx_proto_nest_begin(&w, MBX_F_ENTRY);
		mbx_proto_put_str(&w, MBX_F_NAME, "l");
		mbx_proto_put_u32(&w, MBX_F_FTYPE, MBX_FILE_SYMLINK);
		mbx_proto_put_str(&w, MBX_F_TARGET, "../x");
		mbx_proto_nest_end(&w, at);
		mbx_proto_end(&w);
		TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
		TAP_CHECK_INT(mbx_proto_decode_dir(&f, count_entry, &seen, &more), 0);
		TAP_CHECK_INT(seen, 4);
		mbx_wbuf_release(&w);
	}
	/* No target: NULL. */
	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_FILE_STAT, 1);
	mbx_proto_put_u32(&w, MBX_F_FTYPE, MBX_FILE_REGULAR);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_stat(&f, &info), 0);
	TAP_CHECK(info.target == NULL && info.target_len == 0);
	mbx_wbuf_release(&w);
}

static void test_writer_limit(void)
{
	struct mbx_wbuf w;
	char *big = calloc(1, MBX_PROTO_MAX_BODY + 1);

	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_EXEC, 1);
	mbx_proto_put(&w, MBX_F_ARG, big, MBX_PROTO_MAX_BODY + 1);
	TAP_CHECK_INT(mbx_proto_end(&w), -1);
	mbx_wbuf_release(&w);
	free(big);
}

/* The stdin credit of CREDIT and STARTED frames: a u64 WINDOW, nothing
 * else counts. */
static void test_window(void)
{
	struct mbx_wbuf w;
	struct mbx_frame f;
	uint64_t win = 99;
	size_t used;

	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_CREDIT, 5);
	mbx_proto_put_u64(&w, MBX_F_WINDOW, 262144);
	TAP_CHECK_INT(mbx_proto_end(&w), 0);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_window(&f, &win), 0);
	TAP_CHECK(win == 262144);

	/* A 4-byte WINDOW, a missing one, another message type: refused. */
	mbx_wbuf_reset(&w);
	mbx_proto_begin(&w, MBX_MSG_CREDIT, 5);
	mbx_proto_put_u32(&w, MBX_F_WINDOW, 7);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_window(&f, &win), -1);
	TAP_CHECK(win == 0);
	mbx_wbuf_reset(&w);
	mbx_proto_begin(&w, MBX_MSG_STARTED, 5);
	mbx_proto_put_u32(&w, MBX_F_PID, 2);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_window(&f, &win), -1);
	mbx_wbuf_reset(&w);
	mbx_proto_begin(&w, MBX_MSG_STDOUT, 5);
	mbx_proto_put_u64(&w, MBX_F_WINDOW, 1);
	mbx_proto_end(&w);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	TAP_CHECK_INT(mbx_proto_decode_window(&f, &win), -1);
	mbx_wbuf_release(&w);
}

/* The words of a failed start, which the agent and a direct execute share:
 * what is the caller's (a bad directory, a missing program) and what is a
 * layer the host lacks; a stage from a hostile spare is a system error,
 * and the message never runs past its buffer. */
static void test_start_error(void)
{
	char msg[128], tiny[8];
	const char *layer = "x";

	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_EXEC, ENOENT, "nope", "/", msg, sizeof(msg), &layer), MBX_ENOTFOUND);
	TAP_CHECK_STR(msg, "program `nope` not found in the sandbox");
	TAP_CHECK(layer == NULL);
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_EXEC, EACCES, "f", "/", msg, sizeof(msg), &layer), MBX_ENOEXEC);
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_EXEC, EIO, "f", "/", msg, sizeof(msg), &layer), MBX_ESYS);
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_CHDIR, ENOENT, "f", "/w", msg, sizeof(msg), &layer), MBX_EINVAL);
	TAP_CHECK_STR(msg, "working directory `/w` cannot be entered in the sandbox");
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_CHDIR, EACCES, "f", NULL, msg, sizeof(msg), &layer), MBX_EPERM);
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_SECCOMP, EINVAL, "f", "/", msg, sizeof(msg), &layer), MBX_ENOTSUP);
	TAP_CHECK_STR(layer, "seccomp");
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_LANDLOCK, EINVAL, "f", "/", msg, sizeof(msg), &layer), MBX_ENOTSUP);
	TAP_CHECK_STR(layer, "landlock");
	TAP_CHECK_INT(mbx_proto_start_error(-7, 0, "f", "/", msg, sizeof(msg), &layer), MBX_ESYS);
	TAP_CHECK(layer == NULL);
	TAP_CHECK_INT(mbx_proto_start_error(12345, 0, "f", "/", msg, sizeof(msg), &layer), MBX_ESYS);
	TAP_CHECK_INT(mbx_proto_start_error(MBX_STAGE_EXEC, ENOENT, "a-long-program-name", "/", tiny, sizeof(tiny), &layer),
		      MBX_ENOTFOUND);
	TAP_CHECK_INT((int)strlen(tiny), 7);
}

static const struct tap_case cases[] = {
	{ "proto/start-error", test_start_error },
	{ "proto/window", test_window },
	{ "proto/roundtrip", test_roundtrip },
	{ "proto/oversized-frame", test_oversized_frame },
	{ "proto/truncated-field", test_truncated_field },
	{ "proto/exit-consistency", test_exit_consistency },
	{ "proto/error-decode", test_error_decode },
	{ "proto/nested", test_nested },
	{ "proto/writer-limit", test_writer_limit },
	{ "proto/symlink-target", test_symlink_target },
};

TAP_MAIN(cases)
