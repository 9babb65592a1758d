/* SPDX-License-Identifier: Apache-2.0 */
/* The microVM's guest assets (docs/microvm.md). */
#pragma once

#include "error-internal.h"

struct mbx_vm_assets {
	char *dir;
	char *kernel;
	char *rootfs;
};

int mbx__vm_assets_find(struct mbx_vm_assets *a, mbx_error **err);
void mbx__vm_assets_release(struct mbx_vm_assets *a);
