/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-user secret keys kept in files of the private state directory: the
 * MAC key of the wasm module cache (wasm-cache.key) and of snapshots
 * (snapshot.key). Never installed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MBX_KEYFILE_LEN 32

/* Reads exactly `len` bytes (a regular file of known size): 0, or -1 with
 * errno (EIO when the file ended early). */
int mbx__read_exact(int fd, uint8_t *buf, size_t len);

/*
 * Reads the key from `path`, or makes it: 32 bytes from getrandom(),
 * written 0600 to a temporary file and linked into place, so a concurrent
 * maker's key wins whole or ours does. The file must be regular, ours, not
 * a symlink, without group/other access bits and exactly 32 bytes long;
 * anything else is an MBX_EPERM error naming it (it is not replaced: the
 * user removes it). `what` names the key in messages ("module cache key"),
 * `backend` is the error's backend (or NULL), `lost` says what removing the
 * key costs ("cached modules are compiled again").
 */
int mbx__keyfile_load(const char *path, uint8_t key[MBX_KEYFILE_LEN], const char *what, const char *backend,
		      const char *lost, mbx_error **err);
