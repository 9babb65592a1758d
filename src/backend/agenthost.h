/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox driven by the in-sandbox agent: what every backend with an agent
 * does the same way, whatever launched the agent and whatever the byte pipe
 * under it (transport.h). The os backend (src/backend/linux/) launches the
 * agent into namespaces on a socketpair, the microvm backend into a VM on a
 * virtio-serial port; both then call these, in this order:
 *
 *	mbx__agenthost_init(h)                  before anything can fail
 *	mbx__agenthost_attach(h, &t, ...)       the channel; HELLO and HELLO_ACK
 *	mbx__agenthost_init_begin(h, cfg, ...)  INIT with what every sandbox gets,
 *	  ... the launcher's own INIT fields in h->client.wb ...
 *	mbx__agenthost_setup(sb, h, ...)        INIT sent, READY's layers on sb
 *	mbx__agenthost_exec(sb, h, ...)         each execute (ops->exec)
 *	mbx__agenthost_client(h)                ops->client: processes, files
 *	mbx__agenthost_shutdown(h)              when tearing down, before the kill
 *	mbx__agenthost_release(h)               after it
 *
 * Processes and files go through the client by the core (process.c, file.c);
 * a broken channel there also destroys the sandbox (mbx__sandbox_after()).
 * Never installed.
 */
#pragma once

#include "backend/client.h"

struct mbx_agenthost {
	struct mbx_client client;   /* the channel; client.tr.ops NULL before attach / after release */
	struct mbx_ready_info ready; /* what READY reported */
};

/* A host with no channel yet: mbx__agenthost_release() is safe from here on. */
void mbx__agenthost_init(struct mbx_agenthost *h);

/*
 * Takes the channel to a freshly started agent (`t`, owned from now on, also
 * on failure), waits for its HELLO until deadline_us (CLOCK_MONOTONIC us)
 * and negotiates the protocol (mbx__client_hello). MBX_EPROTO (no common
 * version, garbage), MBX_ETIMEDOUT (silence) name what the agent did.
 */
int mbx__agenthost_attach(struct mbx_agenthost *h, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err);

/*
 * Starts the INIT message in h->client.wb with what every sandbox gets from
 * its config: INIT_FLAGS (`flags`, MBX_INIT_*, plus ALLOW_DEGRADED and
 * UNTRUSTED from cfg), HOSTNAME, the payload's seccomp program for the trust
 * level, RLIMIT_CORE 0. The launcher appends its own fields, then calls
 * mbx__agenthost_setup(). MBX_EINVAL (layer "seccomp") for a trust level
 * without a program.
 */
int mbx__agenthost_init_begin(struct mbx_agenthost *h, const mbx_config *cfg, uint32_t flags, mbx_error **err);

/* An MBX_F_RLIMIT field: 12 bytes, u32 resource and u64 value. */
void mbx__agenthost_put_rlimit(struct mbx_wbuf *w, uint32_t resource, uint64_t value);

/*
 * Ends the INIT started by mbx__agenthost_init_begin(), sends it with `fds`
 * (MBX_ENOTSUP when the transport cannot pass them; the caller keeps and
 * closes its copies), waits for READY and records in sb the layers the agent
 * applied and skipped, with the reason of each skip (h->ready keeps the raw
 * answer). The launcher adds the layers it applied itself. An ERROR answer
 * is returned as the agent's error (e.g. MBX_ENOTSUP naming a layer).
 */
int mbx__agenthost_setup(mbx_sandbox *sb, struct mbx_agenthost *h, const int *fds, size_t nfds, uint64_t deadline_us,
			 mbx_error **err);

/*
 * One execute (ops->exec), with the sandbox entered (mbx__sandbox_enter()).
 * When the channel broke on the way (the agent died, lied, sent garbage or
 * overran its credit), the error says the sandbox stopped working and the
 * sandbox is doomed: destroyed cleanly, through its ops->destroy, when the
 * last call leaves it (mbx__sandbox_after()); the caller must not touch `h`
 * or sb->priv after such a failure.
 */
int mbx__agenthost_exec(mbx_sandbox *sb, struct mbx_agenthost *h, const struct mbx_exec_req *req, mbx_result *res,
			mbx_error **err);

/* The channel for ops->client, or NULL when there is none (yet, or any more). */
struct mbx_client *mbx__agenthost_client(struct mbx_agenthost *h);

/*
 * After the channel reset under a running agent (a restored microVM): the
 * new channel `t` (owned from now on), the same session checked
 * (mbx__client_reconnect). On failure the channel stays broken.
 */
int mbx__agenthost_reconnect(struct mbx_agenthost *h, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err);

/* Asks the agent to stop (SHUTDOWN, best effort, never blocks). */
void mbx__agenthost_shutdown(struct mbx_agenthost *h);

/* Closes the channel and frees what the client holds. Idempotent. */
void mbx__agenthost_release(struct mbx_agenthost *h);
