/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The byte pipe under the agent protocol (src/backend/client.c). The frames
 * are the same on every transport; what differs is whether descriptors can
 * ride along:
 *
 *   socket  a unix socket to an agent on this kernel (the os backend's
 *           socketpair): send/sendmsg with SCM_RIGHTS, recv. Passes fds.
 *   stream  a plain byte stream (a unix-socket connection to QEMU's
 *           virtio-serial chardev, a virtio port, a pipe): read/write only.
 *           Passes no fds: a message that needs them fails with MBX_ENOTSUP.
 *   mem     in memory, for tests and fuzzing: a scripted agent sees every
 *           frame the host writes and queues what it answers.
 *
 * Every transport is non-blocking: read and write never wait, poll waits.
 * Never installed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "proto.h"

struct mbx_transport;

struct mbx_transport_ops {
	const char *name;     /* "socket", "stream", "mem": for messages */
	int can_pass_fds;     /* write() takes descriptors */
	/* Reads up to len bytes: >0 bytes read, 0 end of stream, -1 with errno
	 * (EAGAIN: nothing to read now). */
	ssize_t (*read)(struct mbx_transport *t, void *buf, size_t len);
	/* Writes up to len bytes (len > 0), `nfds` descriptors along with the
	 * first byte (only when can_pass_fds; the caller keeps its copies):
	 * >0 bytes written, -1 with errno (EAGAIN: full now; EPIPE: the peer is
	 * gone). Never raises SIGPIPE. */
	ssize_t (*write)(struct mbx_transport *t, const void *buf, size_t len, const int *fds, size_t nfds);
	/* Waits up to timeout_ms (0: do not wait) for POLLIN/POLLOUT in
	 * `events`: returns the POLL* bits that are ready (POLLHUP/POLLERR
	 * count as ready for reading), 0 when none came in time, -1 with errno. */
	int (*poll)(struct mbx_transport *t, short events, int timeout_ms);
	/* Releases the transport (closes its descriptor). Called once. */
	void (*close)(struct mbx_transport *t);
};

struct mbx_transport {
	const struct mbx_transport_ops *ops; /* NULL: not open */
	int fd;                              /* the descriptor, or -1 (mem) */
	void *priv;                          /* the transport's own state */
};

/* Wraps a connected unix socket (owned from now on; made non-blocking). */
void mbx__transport_socket(struct mbx_transport *t, int fd);
/* Wraps a descriptor of a byte stream without descriptor passing (owned
 * from now on; made non-blocking). */
void mbx__transport_stream(struct mbx_transport *t, int fd);

/* ---- the in-memory transport (tests, fuzzing) ---- */

struct mbx_mem_agent;
/* Called for each complete frame the host writes; may queue answers with
 * mbx__mem_agent_send(). `nfds` descriptors came with it (only their number
 * is kept). A non-zero return closes the agent's end: the host reads what
 * was queued, then the end of the stream, and its writes fail. */
typedef int (*mbx_mem_agent_fn)(struct mbx_mem_agent *a, const struct mbx_frame *f, size_t nfds, void *userdata);

struct mbx_mem_agent {
	struct mbx_buf to_host;   /* bytes the host has yet to read, from to_host_off */
	size_t to_host_off;
	int eof;                  /* once to_host is read: end of stream (else EAGAIN) */
	int gone;                 /* the agent closed its end: the host's writes fail (EPIPE) */
	size_t read_max;          /* most bytes one read returns (0: no limit): splits frames */
	int can_pass_fds;         /* the transport claims SCM_RIGHTS-like passing */
	struct mbx_rbuf from_host;/* what the host wrote, cut into frames */
	int host_garbled;         /* the host wrote a malformed stream */
	int host_closed;          /* the host closed the transport */
	size_t frames_seen;
	size_t fds_seen;
	mbx_mem_agent_fn fn;
	void *userdata;
};

/* An agent with nothing to say yet; fn may be NULL (frames only counted). */
void mbx__mem_agent_init(struct mbx_mem_agent *a, mbx_mem_agent_fn fn, void *userdata);
void mbx__mem_agent_release(struct mbx_mem_agent *a);
/* Queues raw bytes, or the frame(s) built in w (then reset), for the host. */
int mbx__mem_agent_push(struct mbx_mem_agent *a, const void *data, size_t len);
int mbx__mem_agent_send(struct mbx_mem_agent *a, struct mbx_wbuf *w);
/* A transport reading from and writing to `a`, which must outlive it. */
void mbx__transport_mem(struct mbx_transport *t, struct mbx_mem_agent *a);
