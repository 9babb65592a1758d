/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: what the host reads of QEMU's control socket
 * (src/backend/microvm/qmp.c). A guest that took QEMU over writes these
 * lines: classifying a line and taking a string field from it must stay in
 * bounds and give only plain text.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/microvm/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "status", "desc", "error-desc", "return" };
	char out[64];

	(void)mbx__qmp_classify((const char *)data, size);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		memset(out, 0x55, sizeof(out));
		if (mbx__qmp_string_field((const char *)data, size, keys[k], out, sizeof(out)) == 0) {
			size_t n = strlen(out);

			if (n >= sizeof(out))
				__builtin_trap();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f || out[i] == '"' || out[i] == '\\')
					__builtin_trap();
		}
	}
	return 0;
}
