/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm backend's snapshot payload (vmsnap.h). */
#include <string.h>

#include "proto/proto.h"
#include "vmsnap.h"

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int mbx__vmsnap_encode(struct mbx_buf *out, const struct mbx_vmsnap *v)
{
	uint8_t h[MBX_VMSNAP_HEADER] = { 0 };

	le32(h, MBX_VMSNAP_VERSION);
	le32(h + 4, v->flags);
	le32(h + 8, v->memory_mib);
	le32(h + 12, v->proto_version);
	le64(h + 16, v->features);
	le64(h + 24, v->session);
	le32(h + 32, v->next_id);
	le64(h + 40, v->stream_len);
	if (mbx__buf_append(out, h, sizeof(h)) < 0 || mbx__buf_append(out, v->stream, (size_t)v->stream_len) < 0)
		return -1;
	return 0;
}

int mbx__vmsnap_parse(const uint8_t *p, size_t len, struct mbx_vmsnap *v)
{
	memset(v, 0, sizeof(*v));
	if (p == NULL || len < MBX_VMSNAP_HEADER || get32(p) != MBX_VMSNAP_VERSION || get32(p + 36) != 0)
		return -1;
	v->flags = get32(p + 4);
	v->memory_mib = get32(p + 8);
	v->proto_version = get32(p + 12);
	v->features = get64(p + 16);
	v->session = get64(p + 24);
	v->next_id = get32(p + 32);
	v->stream_len = get64(p + 40);
	if ((v->flags & ~(MBX_VMSNAP_F_BASE_RAM | MBX_VMSNAP_F_NET_PORT)) != 0 || v->stream_len == 0 || v->stream_len != len - MBX_VMSNAP_HEADER)
		return -1;
	v->stream = p + MBX_VMSNAP_HEADER;
	return 0;
}

int mbx__vmsnap_check(const uint8_t *p, size_t len, int has_memory, const mbx_config *cfg, mbx_error **err)
{
	struct mbx_vmsnap v;
	const char *why = NULL;

	if (mbx__vmsnap_parse(p, len, &v) < 0)
		why = "the microVM payload is malformed";
	else if (!!(v.flags & MBX_VMSNAP_F_BASE_RAM) != !!has_memory)
		why = "the microVM payload and the memory section disagree";
	else if (((uint64_t)v.memory_mib << 20) != cfg->memory_bytes)
		why = "the microVM's memory size is not the config's";
	else if (!!(v.flags & MBX_VMSNAP_F_NET_PORT) != (cfg->network == MBX_NETWORK_ALLOW_DOMAINS))
		why = "the microVM's network channel and the config's network policy disagree";
	else if (v.proto_version < MBX_PROTO_VERSION_MIN || v.proto_version > MBX_PROTO_VERSION || v.session == 0 ||
		 !(v.features & MBX_FEAT_RESUME))
		why = "the guest agent's session cannot be resumed by this mimobox";
	if (why == NULL)
		return MBX_OK;
	mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot: %s", why);
	mbx__error_suggest(err, "use a snapshot file written by mbx_snapshot_save() or `mimobox snapshot`, whole and unchanged");
	return MBX_EINVAL;
}
