/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary newc writer (replaced by the real one). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "initramfs.h"

static int entry(struct mbx_buf *b, const char *name, unsigned mode, unsigned rmaj, unsigned rmin, const uint8_t *data, size_t len, unsigned ino)
{
	char hdr[111];
	static const uint8_t zero[4];
	size_t nlen = strlen(name) + 1;

	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0, 0, 1, 0,
		 (unsigned)len, 0, 0, rmaj, rmin, (unsigned)nlen, 0);
	if (mbx__buf_append(b, hdr, 110) < 0 || mbx__buf_append(b, name, nlen) < 0)
		return -1;
	if (mbx__buf_append(b, zero, (4 - (110 + nlen) % 4) % 4) < 0)
		return -1;
	if (len && mbx__buf_append(b, data, len) < 0)
		return -1;
	return mbx__buf_append(b, zero, (4 - len % 4) % 4);
}

int mbx__vm_initramfs_build(struct mbx_buf *out, const uint8_t *agent, size_t len, mbx_error **err)
{
	if (entry(out, "dev", S_IFDIR | 0755, 0, 0, NULL, 0, 1) < 0 ||
	    entry(out, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0, 2) < 0 ||
	    entry(out, "proc", S_IFDIR | 0755, 0, 0, NULL, 0, 3) < 0 ||
	    entry(out, "sys", S_IFDIR | 0755, 0, 0, NULL, 0, 4) < 0 ||
	    entry(out, "newroot", S_IFDIR | 0755, 0, 0, NULL, 0, 5) < 0 ||
	    entry(out, "init", S_IFREG | 0755, 0, 0, agent, len, 6) < 0 ||
	    entry(out, "TRAILER!!!", 0, 0, 0, NULL, 0, 0) < 0) {
		mbx__buf_release(out);
		return mbx__error_oom(err);
	}
	return MBX_OK;
}
