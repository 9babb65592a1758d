/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/pool.h
 * @brief A warm pool of ready sandboxes for one configuration.
 *
 * Creating an os sandbox costs a few milliseconds (namespaces, the root file
 * system view, limits); most of it does not depend on the payload. A pool
 * keeps `size` sandboxes created ahead of time by a background thread, so
 * mbx_pool_take() hands one out at once and the next is prepared while the
 * caller works. A taken sandbox belongs to the caller like any other and is
 * freed with mbx_sandbox_free(); by default sandboxes are never reused.
 *
 * Reuse (os backend only, off by default): with mbx_pool_set_reuse() a
 * sandbox handed back with mbx_pool_give_back() is reset in the background
 * (mbx_sandbox_reset(): every process killed and reaped, /workspace, /tmp
 * and /dev/shm emptied, a fresh IPC namespace, the host name set again, the
 * OOM count from 0) and handed out again, at most `max_uses` times in all.
 * A reset that fails in any part destroys the sandbox, which the pool then
 * replaces with a new one: a user never gets what a previous user left, or
 * a sandbox whose reset was not complete. Never reused: a sandbox given
 * back with MBX_POOL_DISCARD (a run that timed out, was killed, failed),
 * one whose processes the kernel killed for memory, one with mounts of host
 * paths, with network or without its seccomp program, a fork's parent or child (its storage is an
 * overlay), a microvm or wasm sandbox (wasm instances are fresh for every
 * run anyway; a VM's guest kernel state is not proven reset).
 * docs/security-model.md ("Reuse of a sandbox") says what a reset covers
 * and what it does not.
 *
 * Thread safety: every pool function may be called from any thread.
 */
#ifndef MBX_POOL_H
#define MBX_POOL_H

#include "common.h"
#include "error.h"
#include "config.h"
#include "sandbox.h"

MBX_BEGIN_DECL

/** A pool of ready sandboxes. */
typedef struct mbx_pool mbx_pool;

/**
 * @brief Creates a pool and starts filling it in the background.
 *
 * The first sandbox is created before the call returns, so a configuration
 * that cannot work fails here, with the error mbx_sandbox_new() would give.
 *
 * @param[out] out the pool, owned by the caller (mbx_pool_free())
 * @param cfg      the configuration of every sandbox, copied; NULL for defaults
 * @param size     how many ready sandboxes to keep, 1 to 64
 * @return MBX_OK, MBX_EINVAL for a bad size, or any error of mbx_sandbox_new()
 */
MBX_EXTERN(int) mbx_pool_new(mbx_pool **out, const mbx_config *cfg, size_t size, mbx_error **err);

/**
 * @brief Takes a ready sandbox, creating one now if the pool is empty.
 * @param[out] out the sandbox, now owned by the caller (mbx_sandbox_free())
 */
MBX_EXTERN(int) mbx_pool_take(mbx_pool *pool, mbx_sandbox **out, mbx_error **err);

/** Most uses of one sandbox mbx_pool_set_reuse() takes. */
#define MBX_POOL_MAX_USES 100000u

/**
 * @brief Turns reuse on (max_uses > 1) or off (0, the default).
 *
 * With reuse on, hand every sandbox taken from the pool back with
 * mbx_pool_give_back() (MBX_POOL_DISCARD for one that must not be reused):
 * the sandboxes out count towards the pool's size, so the pool creates no
 * new one while they are out.
 *
 * @param max_uses how many callers one sandbox may serve in all, 0 to
 *                 MBX_POOL_MAX_USES (1 is no reuse either)
 * @return MBX_OK, MBX_EINVAL for a bad count, MBX_ENOTSUP for a pool of
 *         microvm or wasm sandboxes
 */
MBX_EXTERN(int) mbx_pool_set_reuse(mbx_pool *pool, unsigned max_uses, mbx_error **err);

/** mbx_pool_give_back(): destroy it, never reuse it. */
#define MBX_POOL_DISCARD 1u

/**
 * @brief Gives a sandbox taken from this pool back, for reuse.
 *
 * Always takes `sb`: it is reset and queued for another mbx_pool_take()
 * when reuse is on and nothing rules it out (see the file comment), else
 * destroyed and freed. The reset runs on the pool's thread (or in the next
 * take that finds nothing else ready); when it fails the sandbox is
 * destroyed and the pool makes a new one. Processes still running are
 * killed; handles of them the caller still holds answer MBX_ESTATE.
 *
 * @param flags 0 or MBX_POOL_DISCARD
 * @return MBX_OK (reused or destroyed), MBX_EINVAL for a sandbox of
 *         another pool or unknown flags (it is destroyed too)
 */
MBX_EXTERN(int) mbx_pool_give_back(mbx_pool *pool, mbx_sandbox *sb, unsigned flags, mbx_error **err);

/** @brief Number of sandboxes ready right now. */
MBX_EXTERN(size_t) mbx_pool_ready(mbx_pool *pool);

/** @brief Stops the background thread and destroys the sandboxes not taken; NULL is a no-op. */
MBX_EXTERN(void) mbx_pool_free(mbx_pool *pool);

MBX_END_DECL

#endif /* MBX_POOL_H */
