/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary: finds the assets in $MIMOBOX_VM_DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assets.h"

int mbx__vm_assets_find(struct mbx_vm_assets *a, mbx_error **err)
{
	const char *d = getenv("MIMOBOX_VM_DIR");

	memset(a, 0, sizeof(*a));
	if (d == NULL || access(d, R_OK) < 0)
		return mbx__error_set(err, MBX_ENOTSUP, 0, "microvm", "microvm assets missing: set MIMOBOX_VM_DIR");
	a->dir = strdup(d);
	if (asprintf(&a->kernel, "%s/vmlinuz", d) < 0 || asprintf(&a->rootfs, "%s/rootfs.squashfs", d) < 0)
		return mbx__error_oom(err);
	return MBX_OK;
}

void mbx__vm_assets_release(struct mbx_vm_assets *a)
{
	free(a->dir);
	free(a->kernel);
	free(a->rootfs);
	memset(a, 0, sizeof(*a));
}
