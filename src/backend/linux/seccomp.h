/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The payload's seccomp-bpf policy. The host builds the program (with
 * libseccomp) and sends the raw filter to the agent, which installs it in
 * each payload process just before exec; the agent itself needs no libseccomp.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <mbx/common.h>
#include <mbx/error.h>

/*
 * The program of QEMU's jail (src/backend/microvm/jail.c), an index of
 * mbx__seccomp_build() and mbx__seccomp_program() beside the trust levels,
 * never a trust level of the API: the untrusted program, except that the
 * io_uring calls answer EPERM instead of killing. QEMU 7.2 (linked with
 * liburing) calls io_uring_setup while it builds its main loop and falls
 * back to epoll when refused. Selected by mbx_config's internal vmm_seccomp.
 */
#define MBX_SECCOMP_VMM ((mbx_trust_t)3)

/*
 * Builds the filter for a trust level (or MBX_SECCOMP_VMM).
 *
 * out:  a malloc'd array of `struct sock_filter` (8 bytes each) owned by the
 *       caller; *len is its size in bytes.
 * Returns MBX_OK, MBX_EINVAL (unknown trust level), MBX_ENOMEM, MBX_ESYS
 * (memfd or read-back failure), or MBX_ENOTSUP (layer "seccomp") when
 * libseccomp cannot build a filter for this architecture. On failure *out is
 * NULL and *len is 0.
 */
int mbx__seccomp_build(mbx_trust_t trust, uint8_t **out, size_t *len, mbx_error **err);

/*
 * The program for a trust level as compiled at build time by
 * tools/gen-seccomp.c (what sandboxes use). Borrowed static data; returns 0,
 * or -1 for an unknown trust level.
 */
int mbx__seccomp_program(mbx_trust_t trust, const uint8_t **prog, size_t *len);
