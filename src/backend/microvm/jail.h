/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>
#include "internal.h"

struct mbx_vm_jail;
struct mbx_vm_jail_spec {
	char *const *argv;
	const char *const *ro_paths;
	size_t nro;
	const char *run_dir;
	uint64_t memory_bytes;
	uint32_t millicpus;
	const mbx_config *cfg;
};

int mbx__vm_jail_start(struct mbx_vm_jail **out, const struct mbx_vm_jail_spec *spec, mbx_error **err);
int mbx__vm_jail_poll_fd(struct mbx_vm_jail *j);
int mbx__vm_jail_exited(struct mbx_vm_jail *j, int *wstatus);
void mbx__vm_jail_stop(struct mbx_vm_jail *j);
