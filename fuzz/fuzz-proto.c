/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the host side of the agent protocol, which reads bytes an
 * agent (possibly compromised) controls. Feeds the input through the
 * incremental frame reader in uneven pieces and runs every decoder on every
 * frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A symlink target, when there is one: 1..MBX_PROTO_TARGET_MAX bytes without NUL. */
static void check_target(const struct mbx_file_info *fi)
{
	if (fi->target && (fi->target_len == 0 || fi->target_len > MBX_PROTO_TARGET_MAX ||
			   memchr(fi->target, 0, fi->target_len)))
		__builtin_trap();
	if (!fi->target && fi->target_len)
		__builtin_trap();
}

/* A decoded directory entry must name one entry: no '/', no NUL, not . or .. */
static int check_entry(const struct mbx_file_info *fi, void *arg)
{
	(void)arg;
	if (fi->name_len == 0 || memchr(fi->name, '/', fi->name_len) || memchr(fi->name, 0, fi->name_len))
		__builtin_trap();
	check_target(fi);
	return 0;
}

static int check_proc(const struct mbx_proc_info *pi, void *arg)
{
	(void)arg;
	if (pi->program_len && memchr(pi->program, 0, pi->program_len))
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbx_rbuf r;
	struct mbx_frame f;
	size_t off = 0, step = 1;

	mbx_rbuf_init(&r);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		int rc;

		if (mbx_rbuf_push(&r, data + off, n) < 0)
			break;
		off += n;
		step = step * 3 + 1;
		while ((rc = mbx_rbuf_next(&r, &f)) == 1) {
			struct mbx_exit_info ex;
			struct mbx_ready_info rd;
			struct mbx_error_info er;
			const uint8_t *d;
			uint32_t dl, version;

			mbx_proto_decode_hello(&f, &version);
			{
				struct mbx_hello_info hi;
				uint32_t chosen;
				uint64_t feat;

				if (mbx_proto_decode_hello_info(&f, &hi) == 0) {
					if (hi.version_min > hi.version_max)
						__builtin_trap();
					if (mbx_proto_negotiate(hi.version_min, hi.version_max, hi.features, MBX_PROTO_VERSION_MIN,
								MBX_PROTO_VERSION, MBX_PROTO_HOST_FEATURES, &chosen, &feat) == 0 &&
					    (chosen < MBX_PROTO_VERSION_MIN || chosen > MBX_PROTO_VERSION || chosen < hi.version_min ||
					     chosen > hi.version_max || (feat & ~MBX_PROTO_HOST_FEATURES)))
						__builtin_trap();
				}
			}
			mbx_proto_decode_ready(&f, &rd);
			if (mbx_proto_decode_error(&f, &er) == 0 && (strlen(er.message) >= sizeof(er.message) ||
								     strlen(er.layer) >= sizeof(er.layer)))
				__builtin_trap();
			mbx_proto_decode_exit(&f, &ex);
			{
				struct mbx_file_info fi;
				uint32_t more, u;
				uint64_t u64;

				if (mbx_proto_decode_stat(&f, &fi) == 0)
					check_target(&fi);
				mbx_proto_decode_dir(&f, check_entry, NULL, &more);
				mbx_proto_decode_proc_list(&f, check_proc, NULL);
				mbx_proto_find_u32(&f, MBX_F_HANDLE, &u);
				mbx_proto_find_u64(&f, MBX_F_SIZE, &u64);
				if (mbx_proto_decode_window(&f, &u64) < 0 && u64 != 0)
					__builtin_trap();
			}
			if (mbx_proto_decode_data(&f, &d, &dl) == 0 && (d < f.body || d + dl > f.body + f.len))
				__builtin_trap();
		}
		if (rc < 0)
			break;
	}
	mbx_rbuf_release(&r);
	return 0;
}
