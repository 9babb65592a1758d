/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The newc cpio writer of the microvm initramfs (initramfs.h). Each entry is
 * a 110-byte ASCII header ("070701" and thirteen 8-digit hex fields: inode,
 * mode, uid, gid, nlink, mtime, file size, device major/minor, rdev
 * major/minor, name size including its NUL, checksum 0), the name and its
 * NUL padded to a multiple of 4 bytes, then the data padded the same way.
 * The archive ends with the entry "TRAILER!!!". The kernel's unpacker
 * (init/initramfs.c) and GNU cpio both read exactly this.
 */
#include "initramfs.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define NEWC_MAGIC "070701"
#define NEWC_HEADER 110

struct entry {
	const char *name;   /* without the leading '/', as the kernel expects */
	uint32_t mode;      /* type and permission bits */
	uint32_t rdev_major;
	uint32_t rdev_minor;
	const uint8_t *data;
	uint32_t size;
};

/* Appends one entry. The archive starts at a multiple of 4 within `out`
 * relative to `base`, so padding counts from there. */
static int put_entry(struct mbx_buf *out, size_t base, uint32_t ino, const struct entry *e)
{
	char hdr[NEWC_HEADER + 1];
	size_t namesize = strlen(e->name) + 1;
	static const uint8_t zeros[4];
	int n;

	n = snprintf(hdr, sizeof(hdr), NEWC_MAGIC "%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, e->mode,
		     0u /* uid */, 0u /* gid */, S_ISDIR(e->mode) ? 2u : 1u /* nlink */, 0u /* mtime */, e->size,
		     0u /* dev major */, 0u /* dev minor */, e->rdev_major, e->rdev_minor, (unsigned)namesize,
		     0u /* check */);
	if (n != NEWC_HEADER)
		return -1;
	if (mbx__buf_append(out, hdr, NEWC_HEADER) < 0 || mbx__buf_append(out, e->name, namesize) < 0)
		return -1;
	if ((out->len - base) % 4 && mbx__buf_append(out, zeros, 4 - (out->len - base) % 4) < 0)
		return -1;
	if (e->size && mbx__buf_append(out, e->data, e->size) < 0)
		return -1;
	if ((out->len - base) % 4 && mbx__buf_append(out, zeros, 4 - (out->len - base) % 4) < 0)
		return -1;
	return 0;
}

int mbx__vm_initramfs_build(struct mbx_buf *out, const uint8_t *agent, size_t len, mbx_error **err)
{
	const struct entry entries[] = {
		{ "dev", S_IFDIR | 0755, 0, 0, NULL, 0 },
		{ "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0 },
		{ "proc", S_IFDIR | 0755, 0, 0, NULL, 0 },
		{ "sys", S_IFDIR | 0755, 0, 0, NULL, 0 },
		{ "newroot", S_IFDIR | 0755, 0, 0, NULL, 0 },
		{ "init", S_IFREG | 0755, 0, 0, agent, (uint32_t)len },
		{ "TRAILER!!!", 0, 0, 0, NULL, 0 },
	};
	size_t base;

	MBX_CHECK_ARG(out != NULL, err);
	if (agent == NULL || len == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm initramfs: the agent program is empty: the library was built without its agent");
	if (len > MBX_VM_INITRAMFS_MAX_AGENT)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm initramfs: the agent is %zu bytes; a newc archive holds at most %u bytes per file",
				      len, MBX_VM_INITRAMFS_MAX_AGENT);
	base = out->len;
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		/* The trailer's inode is 0, like GNU cpio writes it. */
		uint32_t ino = entries[i].mode ? (uint32_t)(i + 1) : 0;

		if (put_entry(out, base, ino, &entries[i]) < 0) {
			out->len = base;
			return mbx__error_oom(err);
		}
	}
	return MBX_OK;
}
