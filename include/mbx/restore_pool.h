/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/restore_pool.h
 * @brief A pool of sandboxes restored from one snapshot ahead of time (the
 *        reference's RestorePool and RestorePoolConfig).
 *
 * Restoring a snapshot builds a whole sandbox and copies the snapshot's
 * files into it (os: milliseconds; a microVM: far more). A restore pool
 * does that on a thread of its own, so mbx_restore_pool_acquire() of a
 * ready member is a pointer hand-over. Members are never returned: an
 * acquired sandbox belongs to the caller (mbx_sandbox_free() destroys it)
 * and outlives the pool, and no sandbox a previous user touched is ever
 * handed out.
 *
 * The pool keeps at least `min idle` members ready and never holds more
 * than `max members` (ready plus the one being restored). A member idle for
 * longer than the idle timeout, or found dead (its agent's channel closed:
 * the agent or the VM died), is destroyed and replaced; one is checked
 * again, without a round trip, at the moment it would be handed out. A
 * restore that fails is counted, kept as the pool's last error and retried
 * with a growing pause (0.1 s doubling up to 5 s).
 *
 * Thread safety: every mbx_restore_pool_* function except
 * mbx_restore_pool_free() may be called from any thread at the same time.
 * The pool's thread restores members and frees discarded ones: a log
 * callback of the pool's sandbox config (or of the snapshot's) is called
 * from that thread. The configuration object is a plain value: one thread
 * at a time.
 */
#ifndef MBX_RESTORE_POOL_H
#define MBX_RESTORE_POOL_H

#include "common.h"
#include "error.h"
#include "config.h"
#include "sandbox.h"
#include "snapshot.h"

MBX_BEGIN_DECL

/** A pool of sandboxes restored from a snapshot. */
typedef struct mbx_restore_pool mbx_restore_pool;

/** The settings of a pool (copied by mbx_restore_pool_new()). */
typedef struct mbx_restore_pool_config mbx_restore_pool_config;

/** Most members a pool may hold (the limit of max members). */
#define MBX_RESTORE_POOL_MAX_MEMBERS 256u

/**
 * @brief New settings: min idle 1, max members 4, idle timeout 300000 ms
 *        (5 minutes), the snapshot's own sandbox config.
 * @param[out] out owned by the caller (mbx_restore_pool_config_free())
 * @return MBX_OK or MBX_ENOMEM
 */
MBX_EXTERN(int) mbx_restore_pool_config_new(mbx_restore_pool_config **out, mbx_error **err);

/**
 * @brief How many restored members the pool keeps ready, 0 to
 *        MBX_RESTORE_POOL_MAX_MEMBERS; with 0 members are restored only for
 *        waiting acquires. Must not exceed max members (checked by
 *        mbx_restore_pool_new()).
 * @return MBX_OK or MBX_EINVAL
 */
MBX_EXTERN(int) mbx_restore_pool_config_set_min_idle(mbx_restore_pool_config *pcfg, uint32_t n, mbx_error **err);

/**
 * @brief Most members the pool holds at once, ready or being restored, 1 to
 *        MBX_RESTORE_POOL_MAX_MEMBERS. Acquired sandboxes no longer count.
 * @return MBX_OK or MBX_EINVAL
 */
MBX_EXTERN(int) mbx_restore_pool_config_set_max_members(mbx_restore_pool_config *pcfg, uint32_t n, mbx_error **err);

/**
 * @brief A member ready for longer than `ms` milliseconds is destroyed and
 *        replaced, never handed out; 0: members never expire.
 * @return MBX_OK or MBX_EINVAL (more than a day)
 */
MBX_EXTERN(int) mbx_restore_pool_config_set_idle_timeout_ms(mbx_restore_pool_config *pcfg, uint64_t ms,
							    mbx_error **err);

/**
 * @brief The config members are restored with instead of the snapshot's
 *        (as the `cfg` of mbx_sandbox_from_snapshot(): it must select the
 *        snapshot's backend; mounts go here). Copied; NULL goes back to the
 *        snapshot's own config.
 * @return MBX_OK or MBX_ENOMEM
 */
MBX_EXTERN(int) mbx_restore_pool_config_set_sandbox_config(mbx_restore_pool_config *pcfg, const mbx_config *cfg,
							   mbx_error **err);

/** @brief Frees settings; NULL is a no-op. */
MBX_EXTERN(void) mbx_restore_pool_config_free(mbx_restore_pool_config *pcfg);

/**
 * @brief Creates a pool and starts its thread.
 *
 * The pool keeps a copy of the snapshot (the caller may free or change its
 * own at once) and restores the first member before the call returns, so a
 * snapshot or config that cannot work fails here with the error
 * mbx_sandbox_from_snapshot() gives (e.g. MBX_ENOTSUP for a backend this
 * build or host lacks); the pool's thread restores the rest.
 *
 * @param[out] out  the pool, owned by the caller (mbx_restore_pool_free())
 * @param snap      the snapshot members are restored from
 * @param pcfg      the settings, copied; NULL for the defaults
 * @return MBX_OK, MBX_EINVAL (NULL snapshot, min idle above max members),
 *         MBX_ESYS (no thread), or any error of mbx_sandbox_from_snapshot()
 */
MBX_EXTERN(int) mbx_restore_pool_new(mbx_restore_pool **out, const mbx_snapshot *snap,
				     const mbx_restore_pool_config *pcfg, mbx_error **err);

/**
 * @brief Hands over a ready member, which is checked alive and young
 *        enough first; the pool's thread then restores a replacement.
 *
 * When no member is ready the call waits up to `timeout_ms` for the pool's
 * thread to restore one (it never restores on the caller's thread: restores
 * stay bounded by max members, and a restore already under way is the
 * fastest way to a member). `timeout_ms` 0 does not wait.
 *
 * @param[out] out the sandbox, owned by the caller from now on
 *                 (mbx_sandbox_free()); never given back to the pool
 * @return MBX_OK; MBX_ETIMEDOUT when none was ready in time; the error of
 *         the last restore when it failed and none is ready (the pool
 *         retries in the background); MBX_EINVAL for NULL arguments
 */
MBX_EXTERN(int) mbx_restore_pool_acquire(mbx_restore_pool *pool, mbx_sandbox **out, uint64_t timeout_ms,
					 mbx_error **err);

/** Indices of mbx_restore_pool_stats(); never renumbered. */
#define MBX_RESTORE_POOL_STAT_IDLE      0u /**< members ready now */
#define MBX_RESTORE_POOL_STAT_IN_FLIGHT 1u /**< members being restored now (0 or 1) */
#define MBX_RESTORE_POOL_STAT_CREATED   2u /**< members restored so far */
#define MBX_RESTORE_POOL_STAT_FAILED    3u /**< restores that failed so far */
#define MBX_RESTORE_POOL_STAT_DISCARDED 4u /**< members destroyed unused: expired or found dead */
#define MBX_RESTORE_POOL_STAT_ACQUIRED  5u /**< members handed out so far */
#define MBX_RESTORE_POOL_STAT_COUNT     6u

/**
 * @brief The pool's counters, all read at one instant: values[i] for each
 *        index MBX_RESTORE_POOL_STAT_* below `n`.
 * @return how many values were written (the smaller of `n` and
 *         MBX_RESTORE_POOL_STAT_COUNT; 0 for a NULL pool or values)
 */
MBX_EXTERN(size_t) mbx_restore_pool_stats(mbx_restore_pool *pool, uint64_t *values, size_t n);

/**
 * @brief The error of the last restore when it failed, as a new error
 *        object; none (MBX_OK, *out NULL) when it succeeded or none ran.
 * @param[out] out owned by the caller (mbx_error_free())
 * @return MBX_OK, or MBX_EINVAL / MBX_ENOMEM
 */
MBX_EXTERN(int) mbx_restore_pool_last_error(mbx_restore_pool *pool, mbx_error **out);

/**
 * @brief Stops the pool's thread (waiting for a restore under way) and
 *        destroys every member not handed out; acquired sandboxes live on.
 *        No other call on the pool may run or follow. NULL is a no-op.
 */
MBX_EXTERN(void) mbx_restore_pool_free(mbx_restore_pool *pool);

MBX_END_DECL

#endif /* MBX_RESTORE_POOL_H */
