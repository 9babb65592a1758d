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
 * freed with mbx_sandbox_free(); sandboxes are never reused.
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

/** @brief Number of sandboxes ready right now. */
MBX_EXTERN(size_t) mbx_pool_ready(mbx_pool *pool);

/** @brief Stops the background thread and destroys the sandboxes not taken; NULL is a no-op. */
MBX_EXTERN(void) mbx_pool_free(mbx_pool *pool);

MBX_END_DECL

#endif /* MBX_POOL_H */
