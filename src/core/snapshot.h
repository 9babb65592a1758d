/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots (include/mbx/snapshot.h): the format and the parts the backends
 * use. Never installed.
 *
 * Bytes of a snapshot, all integers little-endian:
 *
 *   header   48 bytes: magic "MBXSNAP\0", u32 format version (1), u32
 *            backend (the mbx_isolation_t that made it), u32 flags
 *            (MBX_SNAP_F_MEMORY or 0), u32 header length (48), u64 config
 *            length, u64 payload length, u64 memory section length (0
 *            without the flag)
 *   config   TLV records (u16 tag, u32 length, value), see snapshot.c;
 *            the caller's note is one of them
 *   payload  the backend's: for the os backend the files (snapfiles.c)
 *   memory   with MBX_SNAP_F_MEMORY (microvm): u64 size of the memory, then
 *            extents u64 offset, u64 length, bytes: offsets and lengths
 *            multiples of 4096, increasing, not overlapping, inside the
 *            size; what no extent covers is zero
 *   MAC      HMAC-SHA256 of everything before it under the user's key
 *
 * Reading checks magic, version, backend, flags and that the lengths add
 * up to exactly the bytes given, then the MAC, then parses the config
 * (every value through the public setters, so every rule of a config holds)
 * and checks the payload's structure; nothing is restored before all that.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MBX_SNAP_MAGIC "MBXSNAP"  /* with its NUL: 8 bytes */
#define MBX_SNAP_VERSION 1u
#define MBX_SNAP_HEADER_LEN 48u
#define MBX_SNAP_MAC_LEN 32u
#define MBX_SNAP_KEY_LEN 32u
#define MBX_SNAP_MAX_CONFIG (32ull << 20)
#define MBX_SNAP_F_MEMORY 1u
#define MBX_SNAP_PAGE 4096u

struct mbx_snapshot {
	mbx_isolation_t isolation; /* the backend that made it */
	mbx_config *cfg;           /* owned; mounts are never kept */
	struct mbx_buf payload;    /* the backend's saved state */
	struct mbx_buf note;       /* the caller's (mbx_snapshot_set_note) */
	/* A VM's memory (microvm), or -1: a sealed memfd (no one can write it
	 * any more) of mem_size bytes, sparse where the memory was never
	 * touched. Clones restored from it map it copy-on-write and share
	 * its pages. */
	int mem_fd;
	uint64_t mem_size;
};

/* A sealed memfd of `size` bytes (zero) for a snapshot's memory: written
 * with pwrite, then mbx__snapshot_seal_memory(). */
int mbx__snapshot_new_memory(uint64_t size, int *fd, mbx_error **err);
int mbx__snapshot_seal_memory(int fd, mbx_error **err);
/* Copies the data extents of `src` (SEEK_DATA/SEEK_HOLE; pages of zeros are
 * left out) into `dst`, both `size` bytes. */
int mbx__snapshot_copy_memory(int src, int dst, uint64_t size, mbx_error **err);

/* Bytes of `snap` authenticated with `key`, into out (appended). */
int mbx__snapshot_encode(const struct mbx_snapshot *snap, const uint8_t key[MBX_SNAP_KEY_LEN], struct mbx_buf *out,
			 mbx_error **err);
/* Parses and checks bytes (see above); *out owned by the caller. */
int mbx__snapshot_decode(struct mbx_snapshot **out, const uint8_t *data, size_t len, const uint8_t key[MBX_SNAP_KEY_LEN],
			 mbx_error **err);
/* The user's snapshot key (<state base>/snapshot.key, made at first use). */
int mbx__snapshot_key(uint8_t key[MBX_SNAP_KEY_LEN], mbx_error **err);

/* ---- snapfiles.c: the os backend's payload, a walk of the writable
 * storage through the file API ---- */

/* Payload records: u8 kind, u16 mode, u32 path length, path; then for a
 * file u64 size and the bytes, for a symlink u32 length and the target.
 * A record of kind END closes the payload. */
enum { MBX_SNAPF_END = 0, MBX_SNAPF_DIR = 1, MBX_SNAPF_FILE = 2, MBX_SNAPF_SYMLINK = 3 };
#define MBX_SNAPF_MAX_ENTRIES 1000000u
#define MBX_SNAPF_PATH_MAX 4095u

/* Appends the files of /workspace, /tmp and /dev/shm of a running sandbox,
 * or of /workspace alone with `workspace_only` (wasm); mount points of the
 * config are skipped. */
int mbx__snapfiles_capture(mbx_sandbox *sb, int workspace_only, struct mbx_buf *payload, mbx_error **err);
/* Checks a payload's structure without restoring anything; with
 * `workspace_only` every path must be under /workspace. */
int mbx__snapfiles_check(const uint8_t *p, size_t len, int workspace_only, mbx_error **err);
/* Recreates the files of a (checked) payload in a new sandbox. */
int mbx__snapfiles_apply(mbx_sandbox *sb, const uint8_t *p, size_t len, mbx_error **err);
