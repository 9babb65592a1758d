/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the snapshot reader (src/core/snapshot.c, snapfiles.c),
 * which reads files anyone may have handed the user. The MAC would stop a
 * fuzzer at the first byte it changes, so each input is tried three ways:
 * as a whole snapshot (header and MAC checks), as a snapshot without its
 * MAC to which the right MAC is added (the config and payload parsers see
 * every input), and as a payload alone. A decoded snapshot must encode back
 * to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[MBX_SNAP_KEY_LEN] = "mimobox-fuzz-snapshot-key-000000";

static void decode(const uint8_t *d, size_t n)
{
	struct mbx_snapshot *s = NULL;
	mbx_error *e = NULL;
	int rc = mbx__snapshot_decode(&s, d, n, key, &e);

	if ((rc == MBX_OK) != (s != NULL) || (rc != MBX_OK && e == NULL))
		__builtin_trap();
	if (s) {
		struct mbx_buf again = { 0 };

		/* Authentic and parsed: the payload passed the structure check. */
		if (s->isolation != MBX_ISOLATION_MICROVM &&
		    mbx__snapfiles_check(s->payload.data, s->payload.len, s->isolation == MBX_ISOLATION_WASM, NULL) != MBX_OK)
			__builtin_trap();
		if (mbx__snapshot_encode(s, key, &again, NULL) != MBX_OK)
			__builtin_trap();
		/* Re-encoding may order records differently than the input but
		 * must read back. */
		struct mbx_snapshot *t = NULL;

		if (mbx__snapshot_decode(&t, again.data, again.len, key, NULL) != MBX_OK)
			__builtin_trap();
		mbx_snapshot_free(t);
		mbx__buf_release(&again);
	}
	mbx_snapshot_free(s);
	mbx_error_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *signed_copy;

	decode(data, size);
	signed_copy = malloc(size + MBX_SNAP_MAC_LEN);
	if (signed_copy == NULL)
		return 0;
	if (size)
		memcpy(signed_copy, data, size);
	mbx__hmac_sha256(key, MBX_SNAP_KEY_LEN, data, size, signed_copy + size);
	decode(signed_copy, size + MBX_SNAP_MAC_LEN);
	free(signed_copy);
	mbx__snapfiles_check(data, size, 0, NULL);
	mbx__snapfiles_check(data, size, 1, NULL);
	return 0;
}
