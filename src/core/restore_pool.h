/* SPDX-License-Identifier: Apache-2.0 */
/* Restore pools (include/mbx/restore_pool.h): what tests reach inside. Never
 * installed. */
#pragma once
#include <mbx/restore_pool.h>
#include "internal.h"

/* Calls fn on each idle member, oldest first, under the pool's lock (the
 * member is the pool's: fn only looks, and must not call the pool). Returns
 * how many there were. */
size_t mbx__restore_pool_each_idle(mbx_restore_pool *pool, void (*fn)(mbx_sandbox *sb, void *userdata),
				   void *userdata);
