/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microvm guest assets (docs/microvm.md): where they are and whether they
 * are the bytes their manifest names. Internal only.
 *
 * The directory is $MIMOBOX_VM_DIR when set (absolute), else the one the build
 * was configured with (`scripts/vm-assets.sh dir` at `meson setup`). It holds
 * `manifest` ("<sha256>  <file>" lines, sha256sum format) and the assets
 * `vmlinuz` and `rootfs.squashfs`. Everything in it is treated as untrusted
 * input: the manifest is bounded and parsed strictly, every file is opened
 * with O_NOFOLLOW, and the directory, the manifest and the assets must be
 * owned by root or the caller and writable by nobody else.
 *
 * Hashing the 44 MB on every VM start would cost about half a second, so a
 * verified asset leaves a stamp keyed on (st_dev, st_ino, size, mtime ns,
 * ctime ns): in the process (mutex-protected) and in
 * <state base>/vm-assets.stamp (private to the caller: a stamp file that
 * another user could write is ignored). Any change of the file changes its
 * ctime, so it is hashed again.
 */
#pragma once

#include "error-internal.h"

struct mbx_vm_assets {
	char *dir;    /* the asset directory; owned */
	char *kernel; /* <dir>/vmlinuz; owned */
	char *rootfs; /* <dir>/rootfs.squashfs; owned */
	uint8_t id[32]; /* SHA-256 of the verified assets' SHA-256s (kernel, root image):
	                 * what a guest saved in a snapshot was booted from */
};

/* Finds and verifies the assets. On success fills *a (release it with
 * mbx__vm_assets_release). Errors: MBX_ENOTFOUND (no directory, manifest or
 * asset: run `mimobox setup vm`), MBX_EBACKEND (a damaged manifest or asset,
 * named with both hashes), MBX_EPERM (a symlink, or writable by others),
 * MBX_EINVAL (a relative $MIMOBOX_VM_DIR), MBX_ESYS, MBX_ENOMEM. On failure
 * *a is left empty. Thread-safe. */
int mbx__vm_assets_find(struct mbx_vm_assets *a, mbx_error **err);

/* Frees what *a holds and empties it; an empty *a is fine. */
void mbx__vm_assets_release(struct mbx_vm_assets *a);

/* The directory mbx__vm_assets_find looks in ($MIMOBOX_VM_DIR or the build's
 * default). Borrowed from the environment or static: do not free. */
const char *mbx__vm_assets_dir(void);

/* The same check on a given absolute directory, with the stamp file at
 * `stamp_path` (NULL: only the in-process stamps). For tests and the probe. */
int mbx__vm_assets_find_in(struct mbx_vm_assets *a, const char *dir, const char *stamp_path, mbx_error **err);

/* Tests: drop the in-process stamps, and how many assets were hashed so far. */
void mbx__vm_assets_forget(void);
unsigned long mbx__vm_assets_hash_count(void);
