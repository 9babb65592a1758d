/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microvm guest's initramfs (docs/microvm.md, "The guest agent"): an
 * uncompressed newc cpio archive written at VM start around the agent that
 * libmimobox embeds. It holds exactly
 *
 *	/dev             directory 0755
 *	/dev/console     character device 5:1, 0600 (the kernel opens it for init's stdio)
 *	/proc /sys /newroot   directories 0755 (mount points of the agent's guest mode)
 *	/init            the agent, regular file 0755 (the kernel's rdinit=/init)
 *
 * every entry owned by 0:0 with mtime 0, so the same agent always gives the
 * same bytes. Pure: nothing here touches the file system. Internal only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error-internal.h"
#include "internal.h"

/* The newc format stores a file's size in 8 hex digits. */
#define MBX_VM_INITRAMFS_MAX_AGENT 0xffffffffu

/*
 * Appends the archive to `out` (which may already hold bytes; on failure it
 * is left as it was). `agent` is the /init program, `len` bytes, 1 to
 * MBX_VM_INITRAMFS_MAX_AGENT. Returns MBX_OK, MBX_EINVAL (no agent, or too
 * large) or MBX_ENOMEM.
 */
int mbx__vm_initramfs_build(struct mbx_buf *out, const uint8_t *agent, size_t len, mbx_error **err);
