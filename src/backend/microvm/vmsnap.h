/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microvm backend's snapshot payload (docs/snapshots.md, "microvm"):
 * what the host needs to bring a saved guest back, around QEMU's own
 * migration stream. All integers little-endian:
 *
 *   u32 version (1), u32 flags (MBX_VMSNAP_F_*), u32 guest memory in MiB,
 *   u32 protocol version of the agent's session, u64 its features, u64 its
 *   session id, u32 the next request id, u32 zero, u64 stream length, 32
 *   bytes: the guest assets' id (struct mbx_vm_assets.id: the kernel and
 *   root image the guest runs), then QEMU's migration stream (device state; with MBX_VMSNAP_F_BASE_RAM the
 *   guest RAM is the snapshot's memory section and not in the stream,
 *   else the stream carries it).
 *
 * Pure: no QEMU, no files. Never installed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MBX_VMSNAP_VERSION 1u
#define MBX_VMSNAP_HEADER 80u
#define MBX_VMSNAP_F_BASE_RAM 1u /* the memory section is the guest's RAM */
#define MBX_VMSNAP_F_NET_PORT 2u /* the guest has the network port (allow-domains): a
                                  * restore's QEMU must have it too */

struct mbx_vmsnap {
	uint32_t flags;
	uint32_t memory_mib;
	uint32_t proto_version;
	uint64_t features;
	uint64_t session;
	uint32_t next_id;
	uint8_t assets[32];    /* the guest assets' id */
	const uint8_t *stream; /* points into the payload it was parsed from */
	uint64_t stream_len;
};

/* Appends the payload of v (v->stream, v->stream_len) to out; -1 when
 * memory runs out. */
int mbx__vmsnap_encode(struct mbx_buf *out, const struct mbx_vmsnap *v);
/* Parses a payload's structure; -1 when malformed. */
int mbx__vmsnap_parse(const uint8_t *p, size_t len, struct mbx_vmsnap *v);
/* Checks a payload against its snapshot: structure, flags against whether
 * the snapshot has a memory section, the memory size against cfg's, a
 * protocol version this library speaks, a session id. MBX_EINVAL with the
 * reason when it does not check out. */
int mbx__vmsnap_check(const uint8_t *p, size_t len, int has_memory, const mbx_config *cfg, mbx_error **err);
