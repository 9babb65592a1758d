/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/mbx.h
 * @brief Umbrella header of libmimobox: include this one.
 *
 * libmimobox runs untrusted commands and code in sandboxes. Ownership rules,
 * used throughout:
 *  1. A result returned through a `**out` parameter belongs to the caller, who
 *     frees it with the matching mbx_*_free(); on failure `*out` is NULL.
 *  2. A pointer returned directly is borrowed from its owner and stays valid
 *     until that owner is freed.
 *  3. Inputs are copied; the library keeps no pointer the caller passed.
 *  4. The library never prints, exits or aborts.
 */
#ifndef MBX_MBX_H
#define MBX_MBX_H

#include "common.h"
#include <mbx/features.h>
#include "error.h"
#include "config.h"
#include "result.h"
#include "sandbox.h"
#include "probe.h"
#include "pool.h"
#include "process.h"
#include "file.h"
#include "net.h"
#include "snapshot.h"
#include "restore_pool.h"
#include "version.h"

#endif /* MBX_MBX_H */
