/* SPDX-License-Identifier: Apache-2.0 */
/* A sandbox driven by the in-sandbox agent (agenthost.h). */
#include <string.h>
#include <sys/resource.h>

#include "agenthost.h"
#include "backend/linux/seccomp.h"

void mbx__agenthost_init(struct mbx_agenthost *h)
{
	memset(h, 0, sizeof(*h));
	h->client.fd = -1;
	h->client.dsock = -1;
}

int mbx__agenthost_attach(struct mbx_agenthost *h, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err)
{
	mbx__agenthost_release(h);
	mbx__client_init_transport(&h->client, t);
	return mbx__client_hello(&h->client, deadline_us, err);
}

void mbx__agenthost_put_rlimit(struct mbx_wbuf *w, uint32_t resource, uint64_t value)
{
	uint8_t b[12];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(resource >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[4 + i] = (uint8_t)(value >> (8 * i));
	mbx_proto_put(w, MBX_F_RLIMIT, b, sizeof(b));
}

int mbx__agenthost_init_begin(struct mbx_agenthost *h, const mbx_config *cfg, uint32_t flags, mbx_error **err)
{
	struct mbx_wbuf *w = &h->client.wb;
	const uint8_t *bpf = NULL;
	size_t bpf_len = 0;

	if (mbx__seccomp_program(cfg->vmm_seccomp ? MBX_SECCOMP_VMM : cfg->trust, &bpf, &bpf_len) < 0)
		return mbx__error_set(err, MBX_EINVAL, 0, "seccomp", "no seccomp program for trust level %u", cfg->trust);
	if (cfg->allow_degraded)
		flags |= MBX_INIT_ALLOW_DEGRADED;
	if (cfg->trust == MBX_TRUST_UNTRUSTED)
		flags |= MBX_INIT_UNTRUSTED;
	mbx_wbuf_reset(w);
	mbx_proto_begin(w, MBX_MSG_INIT, 0);
	mbx_proto_put_u32(w, MBX_F_INIT_FLAGS, flags);
	mbx_proto_put_str(w, MBX_F_HOSTNAME, cfg->hostname);
	if (bpf)
		mbx_proto_put(w, MBX_F_SECCOMP, bpf, bpf_len);
	mbx__agenthost_put_rlimit(w, RLIMIT_CORE, 0);
	return MBX_OK;
}

int mbx__agenthost_setup(mbx_sandbox *sb, struct mbx_agenthost *h, const int *fds, size_t nfds, uint64_t deadline_us,
			 mbx_error **err)
{
	const struct mbx_ready_info *r = &h->ready;
	int rc;

	if (mbx_proto_end(&h->client.wb) < 0) {
		mbx_wbuf_reset(&h->client.wb);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "sandbox setup message too large (too many mounts?)");
	}
	rc = mbx__client_init_sandbox(&h->client, fds, nfds, &h->ready, deadline_us, err);
	if (rc < 0)
		return rc;
	sb->layers |= r->layers;
	sb->skipped |= r->skipped;
	if (r->skipped & MBX_LAYER_LANDLOCK)
		sb->skip_reason[mbx__layer_index(MBX_LAYER_LANDLOCK)] = r->landlock_abi > 0 ?
			"the kernel's Landlock refused the sandbox's ruleset" : "the kernel has no usable Landlock";
	if (r->skipped & MBX_LAYER_SECCOMP)
		sb->skip_reason[mbx__layer_index(MBX_LAYER_SECCOMP)] = "the kernel has no seccomp filter support";
	return MBX_OK;
}

int mbx__agenthost_exec(mbx_sandbox *sb, struct mbx_agenthost *h, const struct mbx_exec_req *req, mbx_result *res,
			mbx_error **err)
{
	int rc;

	/* The caller entered the sandbox: the client runs under its lock. */
	if (h->client.mu == NULL)
		h->client.mu = &sb->mu; /* once: a reader polling without the lock reads it */
	rc = mbx__client_exec(&h->client, req, res, err);
	/* A broken channel dooms the sandbox: destroyed (h with it) when the
	 * last call leaves. */
	return mbx__sandbox_after(sb, &h->client, rc, err);
}

struct mbx_client *mbx__agenthost_client(struct mbx_agenthost *h)
{
	return (h && h->client.tr.ops) ? &h->client : NULL;
}

int mbx__agenthost_reconnect(struct mbx_agenthost *h, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err)
{
	return mbx__client_reconnect(&h->client, t, deadline_us, err);
}

void mbx__agenthost_shutdown(struct mbx_agenthost *h)
{
	mbx__client_shutdown(&h->client);
}

void mbx__agenthost_release(struct mbx_agenthost *h)
{
	mbx__client_close(&h->client);
	memset(&h->client, 0, sizeof(h->client));
	h->client.fd = -1;
	h->client.dsock = -1;
}
