/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of the agent protocol, independent of the transport: the os
 * backend hands it a socketpair end, the microvm backend a virtio-serial
 * socket. Everything read is untrusted and bounded (see proto.h).
 */
#pragma once

#include "internal.h"
#include "proto.h"

struct mbx_client {
	int fd;              /* owned: closed by mbx__client_close() */
	struct mbx_rbuf rb;
	struct mbx_wbuf wb;  /* the message being built, then sent */
	uint32_t next_id;
	int broken;          /* the channel failed: the sandbox is unusable */
};

void mbx__client_init(struct mbx_client *c, int fd);
void mbx__client_close(struct mbx_client *c);

/* Sends the frame(s) built in c->wb and empties it; deadline in CLOCK_MONOTONIC us. */
int mbx__client_send(struct mbx_client *c, uint64_t deadline_us, mbx_error **err);

/* As mbx__client_send, passing descriptors along with the first bytes
 * (SCM_RIGHTS; at most MBX_PROTO_MAX_FDS). The caller keeps its copies. */
int mbx__client_send_fds(struct mbx_client *c, const int *fds, size_t nfds, uint64_t deadline_us, mbx_error **err);

/* Waits for the next frame; valid until the next call. */
int mbx__client_recv(struct mbx_client *c, struct mbx_frame *f, uint64_t deadline_us, mbx_error **err);

/* Converts an ERROR frame into *err and returns its code. */
int mbx__client_error_from(const struct mbx_frame *f, const char *backend, mbx_error **err);

/* Waits for the agent's HELLO and checks its protocol version. */
int mbx__client_hello(struct mbx_client *c, uint64_t deadline_us, mbx_error **err);

/* Sends the INIT frame in c->wb, with `fds` for its MBX_F_FD fields, and
 * waits for READY. */
int mbx__client_init_sandbox(struct mbx_client *c, const int *fds, size_t nfds, struct mbx_ready_info *ready,
			     uint64_t deadline_us, mbx_error **err);

/* One execute: sends EXEC, relays output to res and the callback, fills res
 * from EXIT. A transport or protocol failure returns MBX_EPROTO/MBX_ESYS/
 * MBX_ETIMEDOUT: the sandbox is then unusable. */
int mbx__client_exec(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err);

/* Asks the agent to stop (best effort, never blocks). */
void mbx__client_shutdown(struct mbx_client *c);
