/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include "internal.h"

int mbx__vm_initramfs_build(struct mbx_buf *out, const uint8_t *agent, size_t len, mbx_error **err);
