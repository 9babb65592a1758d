/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm backend's snapshot payload (vmsnap.h). */
#include <string.h>

#include "le.h"
#include "proto/proto.h"
#include "vmsnap.h"

int mbx__vmsnap_encode(struct mbx_buf *out, const struct mbx_vmsnap *v)
{
	uint8_t h[MBX_VMSNAP_HEADER] = { 0 };

	mbx__le32(h, MBX_VMSNAP_VERSION);
	mbx__le32(h + 4, v->flags);
	mbx__le32(h + 8, v->memory_mib);
	mbx__le32(h + 12, v->proto_version);
	mbx__le64(h + 16, v->features);
	mbx__le64(h + 24, v->session);
	mbx__le32(h + 32, v->next_id);
	mbx__le64(h + 40, v->stream_len);
	memcpy(h + 48, v->assets, 32);
	if (mbx__buf_append(out, h, sizeof(h)) < 0 || mbx__buf_append(out, v->stream, (size_t)v->stream_len) < 0)
		return -1;
	return 0;
}

int mbx__vmsnap_parse(const uint8_t *p, size_t len, struct mbx_vmsnap *v)
{
	memset(v, 0, sizeof(*v));
	if (p == NULL || len < MBX_VMSNAP_HEADER || mbx__get_le32(p) != MBX_VMSNAP_VERSION || mbx__get_le32(p + 36) != 0)
		return -1;
	v->flags = mbx__get_le32(p + 4);
	v->memory_mib = mbx__get_le32(p + 8);
	v->proto_version = mbx__get_le32(p + 12);
	v->features = mbx__get_le64(p + 16);
	v->session = mbx__get_le64(p + 24);
	v->next_id = mbx__get_le32(p + 32);
	v->stream_len = mbx__get_le64(p + 40);
	memcpy(v->assets, p + 48, 32);
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
