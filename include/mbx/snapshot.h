/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/snapshot.h
 * @brief Snapshots of a sandbox (the reference's SandboxSnapshot,
 *        Sandbox::from_snapshot and fork).
 *
 * A snapshot is an opaque handle to a sandbox's saved state: its config
 * (limits, environment, working directory, host name, network policy and
 * allow list, trust, isolation) and what its backend saves. On the os
 * backend that is the sandbox's writable storage, /workspace, /tmp and
 * /dev/shm, on the wasm backend its /workspace: regular files (content and permission bits), directories (also
 * empty ones), symlinks (kept as symlinks, never followed). On those two
 * backends running processes are NOT captured: a sandbox restored from a
 * snapshot starts with no processes. Set-user-ID and set-group-ID bits, device nodes, FIFOs
 * and sockets are left out; file owners and times are not kept.
 *
 * Mounts are host paths: a snapshot does not keep the config's mounts (a
 * snapshot must never name host paths for the host to open) and does not
 * capture what is under a mount point. Give mounts again in the config
 * passed to mbx_sandbox_from_snapshot().
 *
 * Bytes and files are versioned, checksummed and authenticated: an
 * HMAC-SHA256 over everything, under a random key of the user's kept in the
 * private state directory (`snapshot.key`, made at first use). A snapshot
 * made under another user's key, a foreign, truncated, corrupted or altered
 * one is refused (MBX_EPERM for a MAC that does not check out, MBX_EINVAL
 * for anything malformed) before anything is restored. The key lives in
 * the state directory, which is /run/mimobox for root: snapshots made
 * before a reboot cannot be read after it unless MIMOBOX_STATE_DIR points
 * somewhere that lasts.
 *
 * A microVM snapshot is its guest's memory and device state: restored
 * clones carry on with the processes, open files and memory contents the
 * guest had (see docs/snapshots.md for what a clone refreshes: entropy,
 * host name, machine id, clock). Its network channel (allow-list) is
 * reconnected: in-flight proxy connections of the parent end.
 */
#ifndef MBX_SNAPSHOT_H
#define MBX_SNAPSHOT_H

#include "common.h"
#include "error.h"
#include "config.h"
#include "sandbox.h"

MBX_BEGIN_DECL

typedef struct mbx_snapshot mbx_snapshot;

/**
 * @brief Saves a running sandbox's state; the sandbox keeps running
 *        (processes in it run on while the files are read: pause writers
 *        for a consistent snapshot).
 * @param[out] out owned by the caller (mbx_snapshot_free())
 * @return MBX_OK, MBX_ENOTSUP (backend without snapshots), MBX_ETOOBIG
 *         (storage over the snapshot's limits), MBX_ESTATE (destroyed, or
 *         other threads' calls on the sandbox or its processes are running:
 *         a snapshot needs the sandbox to itself)
 */
MBX_EXTERN(int) mbx_sandbox_snapshot(mbx_snapshot **out, mbx_sandbox *sb, mbx_error **err);

/**
 * @brief A new sandbox from a snapshot, with the snapshot's config or, when
 *        `cfg` is not NULL, with `cfg` (which must select the snapshot's
 *        backend; give mounts here). The snapshot stays the caller's.
 * @param[out] out owned by the caller (mbx_sandbox_free())
 */
MBX_EXTERN(int) mbx_sandbox_from_snapshot(mbx_sandbox **out, const mbx_snapshot *snap, const mbx_config *cfg,
					  mbx_error **err);

/**
 * @brief A new sandbox with the config and the state of a running one
 *        (what a snapshot keeps; no processes). Writes in either sandbox
 *        are not seen by the other afterwards, except under mounts: the
 *        fork keeps the parent's config whole, mounts included, so both
 *        see the same host directories there. On the os backend the
 *        child shares the parent's files copy-on-write (no copy; renaming
 *        a directory present at the fork then fails with EXDEV) unless
 *        processes run in the parent, which makes the fork copy: see
 *        docs/snapshots.md.
 * @param[out] out owned by the caller (mbx_sandbox_free())
 * @return MBX_OK; MBX_ESTATE when destroyed, or while other threads' calls
 *         on the sandbox or its processes run (a fork needs it to itself)
 */
MBX_EXTERN(int) mbx_sandbox_fork(mbx_sandbox **out, mbx_sandbox *sb, mbx_error **err);

/**
 * @brief The snapshot as bytes (authenticated with the user's key).
 * @param[out] data malloc'd; free with mbx_buffer_free()
 */
MBX_EXTERN(int) mbx_snapshot_to_bytes(const mbx_snapshot *snap, uint8_t **data, size_t *len, mbx_error **err);

/**
 * @brief Reads a snapshot from bytes, checking format, backend and MAC.
 * @param[out] out owned by the caller (mbx_snapshot_free())
 * @return MBX_OK, MBX_EINVAL (not a snapshot, unknown version or backend,
 *         truncated, malformed), MBX_EPERM (made under another key or altered)
 */
MBX_EXTERN(int) mbx_snapshot_from_bytes(mbx_snapshot **out, const uint8_t *data, size_t len, mbx_error **err);

/** @brief Writes the snapshot to `path` (created 0600, replaced atomically). */
MBX_EXTERN(int) mbx_snapshot_save(const mbx_snapshot *snap, const char *path, mbx_error **err);

/** @brief Reads a snapshot file (as mbx_snapshot_from_bytes()). */
MBX_EXTERN(int) mbx_snapshot_load(mbx_snapshot **out, const char *path, mbx_error **err);

/**
 * @brief Attaches up to MBX_SNAPSHOT_NOTE_MAX bytes of the caller's own to
 *        the snapshot (e.g. how the sandbox was described when made); they
 *        are saved and authenticated with it. Replaces an earlier note;
 *        len 0 removes it.
 */
MBX_EXTERN(int) mbx_snapshot_set_note(mbx_snapshot *snap, const void *data, size_t len, mbx_error **err);
#define MBX_SNAPSHOT_NOTE_MAX ((size_t)65536)

/**
 * @brief The caller's note of mbx_snapshot_set_note(), or NULL (len 0).
 *        Borrowed: valid until the snapshot is freed or its note replaced.
 */
MBX_EXTERN(const uint8_t *) mbx_snapshot_note(const mbx_snapshot *snap, size_t *len);

/** What a sandbox restored from a snapshot has (mbx_snapshot_contents()). */
#define MBX_SNAPSHOT_FILES     (1u << 0) /**< the files of its writable storage */
#define MBX_SNAPSHOT_PROCESSES (1u << 1) /**< the processes that ran, running on */
#define MBX_SNAPSHOT_MEMORY    (1u << 2) /**< the memory contents (a microVM's whole guest) */

/**
 * @brief What a sandbox restored from this snapshot (or forked the same
 *        way) has: MBX_SNAPSHOT_FILES on every backend; a microVM's also
 *        MBX_SNAPSHOT_PROCESSES and MBX_SNAPSHOT_MEMORY. 0 for NULL.
 */
MBX_EXTERN(uint32_t) mbx_snapshot_contents(const mbx_snapshot *snap);

/** @brief The isolation level of the backend that made the snapshot. */
MBX_EXTERN(mbx_isolation_t) mbx_snapshot_isolation(const mbx_snapshot *snap);

/** @brief Size in bytes of the backend's saved state (the files; for a
 *        microVM its device state and, when the memory is not apart, its
 *        memory), not counting a microVM's memory (mbx_snapshot_memory_size()). */
MBX_EXTERN(uint64_t) mbx_snapshot_size(const mbx_snapshot *snap);

/**
 * @brief A microVM snapshot's guest memory: its size in bytes (the guest's
 *        RAM) and, in *fd when not NULL, the descriptor that holds it (a
 *        sealed memfd, sparse: untouched pages cost nothing; restored
 *        clones map it copy-on-write and share its pages). 0 and -1 for a
 *        snapshot without memory apart.
 *
 * The descriptor stays the snapshot's (closed by mbx_snapshot_free()). A
 * program that closes descriptors after fork() (a daemon) must keep this
 * one open if the child restores the snapshot.
 */
MBX_EXTERN(uint64_t) mbx_snapshot_memory_size(const mbx_snapshot *snap, int *fd);

/** @brief Frees a snapshot; NULL is a no-op. */
MBX_EXTERN(void) mbx_snapshot_free(mbx_snapshot *snap);

MBX_END_DECL

#endif /* MBX_SNAPSHOT_H */
