/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of the agent protocol, independent of the transport: the os
 * backend hands it a socketpair end, the microvm backend a virtio-serial
 * socket. Everything read is untrusted and bounded (see proto.h).
 */
#pragma once

#include <pthread.h>

#include "internal.h"
#include "backend/backend.h"
#include "proto.h"
#include "transport.h"

/* One queued event of a process (see mbx/process.h). */
struct mbx_event {
	mbx_event_kind_t kind;
	uint8_t *data;               /* STDOUT/STDERR: owned copy */
	size_t len;
	struct mbx_exit_info exit;   /* EXIT/TIMED_OUT */
	struct mbx_event *next;
};

/* The host's view of one spawned process: its queue of events. */
struct mbx_cproc {
	uint32_t id;
	struct mbx_event *head, *tail;
	uint64_t window;             /* credit granted at start */
	uint64_t consumed;           /* bytes taken since the last CREDIT */
	uint64_t credit;             /* output bytes the agent may still send */
	int ended;                   /* the EXIT is queued (or taken) */
	int taken_last;              /* the EXIT was taken */
	int claimed;                 /* a mbx_process handle refers to it */
	int has_stdin, pty;
	uint64_t stdin_credit;       /* stdin bytes the agent will take now (STARTED, then CREDIT) */
	int credit_wanted;           /* a write left bytes for lack of credit */
	int credit_news;             /* credit came while credit_wanted: a wait on p ends early */
	size_t nq;                   /* events in the queue (head..tail) */
	mbx_error *pending;          /* an ERROR answering a fire-and-forget message (STDIN,
	                              * SIGNAL, ...): the next call on the process returns it */
	uint32_t pid;
	struct mbx_cproc *next;
};

struct mbx_client {
	struct mbx_transport tr; /* owned: closed by mbx__client_close(); ops NULL when closed */
	int fd;              /* the transport's descriptor (-1: none, or in memory); informative */
	struct mbx_rbuf rb;
	struct mbx_wbuf wb;  /* the message being built, then sent */
	uint32_t next_id;
	int broken;          /* the channel failed: the sandbox is unusable */
	uint32_t version;    /* the protocol version chosen at HELLO, 0 before */
	uint64_t features;   /* MBX_FEAT_* both sides use */
	uint64_t session;    /* the agent's session (HELLO) */
	uint64_t oom_exits;  /* EXITs the agent flagged as out-of-memory kills (a guest's agent) */
	struct mbx_cproc *procs;

	/* ---- sharing between threads (see the top of client.c) ---- */
	pthread_mutex_t *mu; /* the sandbox's lock (mbx_sandbox.mu), held by the caller of every
	                      * function below once set; NULL while the sandbox is being built */
	pthread_cond_t cv;   /* broadcast when a read step ended, a reply was handed over or taken */
	int reading;         /* a thread reads the channel (it may be in poll, without the lock) */
	int handoff;         /* `handed` is the reply of a waiting request: nobody reads until
	                      * its waiter takes it */
	struct mbx_frame handed;
	struct mbx_waiter *waiters; /* requests waiting for their reply */
	uint32_t expected[16]; /* requests sent ahead whose sender will await them (mbx__client_expect) */
	unsigned n_expected;
	size_t nqueued;      /* events queued for all processes */
	size_t nnews;        /* processes with credit_news */
	int nudge;           /* a handed-over reply was taken: frames may wait in rb unread */
	int evfd;            /* eventfd behind the event descriptor, or -1 (owned) */
	int epfd;            /* the event descriptor: epoll of evfd and the transport, or -1 (owned) */
	int ev_on;           /* evfd is readable now */
	int live;            /* initialised (cv, evfd and epfd valid): close releases them */

	/* ---- direct executes (proto.h, MBX_FEAT_DIRECT; client.c) ---- */
	int dsock;           /* our end of the socket lent to the agent's spare, -1: none */
	uint32_t dsock_id;   /* the MBX_MSG_SPARE's id: KILL with it kills that spare */
	int dsock_ready;     /* its ready came: it takes a request */
	int dsock_busy;      /* an execute runs on it (waiting without the lock) */
	uint64_t spawned;    /* processes started through the agent (the first lends nothing) */
};

/* A request waiting for its reply (on the waiter's stack). */
struct mbx_waiter {
	uint32_t id;
	struct mbx_waiter *next;
};

/* Starts a client on a unix socket to the agent, which passes descriptors
 * (the os backend's socketpair). Owns fd from now on. */
void mbx__client_init(struct mbx_client *c, int fd);
/* Starts a client on a plain byte stream (a connection to a virtio-serial
 * port through QEMU's chardev): no descriptors pass; a message that needs
 * them fails with MBX_ENOTSUP. Owns fd from now on. */
void mbx__client_init_stream(struct mbx_client *c, int fd);
/* Starts a client on any transport (transport.h), owned from now on. */
void mbx__client_init_transport(struct mbx_client *c, const struct mbx_transport *t);
void mbx__client_close(struct mbx_client *c);

/*
 * Hands the event descriptor (epoll set) and its eventfd, if one was made,
 * over to the caller, made readable for good: waiters on it wake up. The
 * client no longer closes them. Returns 1 with both, or 0 when there is none.
 */
int mbx__client_take_event_fd(struct mbx_client *c, int *epfd, int *evfd);

/* Sends the frame(s) built in c->wb and empties it; deadline in CLOCK_MONOTONIC us. */
int mbx__client_send(struct mbx_client *c, uint64_t deadline_us, mbx_error **err);

/* As mbx__client_send, passing descriptors along with the first bytes
 * (SCM_RIGHTS; at most MBX_PROTO_MAX_FDS). The caller keeps its copies. On
 * a transport that cannot pass descriptors (nfds > 0): MBX_ENOTSUP, nothing
 * sent. */
int mbx__client_send_fds(struct mbx_client *c, const int *fds, size_t nfds, uint64_t deadline_us, mbx_error **err);

/* Waits for the next frame; valid until the next call. Only while the
 * sandbox is being built (one thread, no process events yet). */
int mbx__client_recv(struct mbx_client *c, struct mbx_frame *f, uint64_t deadline_us, mbx_error **err);

/* Converts an ERROR frame into *err and returns its code. */
int mbx__client_error_from(const struct mbx_frame *f, const char *backend, mbx_error **err);

/* Waits for the agent's HELLO, picks the protocol version and features
 * both sides speak (an error naming both ranges when there is none) and
 * answers HELLO_ACK. Sets c->version, c->features, c->session. */
int mbx__client_hello(struct mbx_client *c, uint64_t deadline_us, mbx_error **err);

/*
 * After the channel reset under a running agent (a restored microVM): takes
 * the new transport `t` (owned from now on; the old one is closed), waits for
 * the agent's HELLO on it and checks that it is the same session, with the
 * same version and features, and that both use MBX_FEAT_RESUME. Then the
 * client goes on with its processes as they were (frames that were in
 * flight at the reset are lost) and c->broken is cleared. On failure the
 * client stays broken.
 */
int mbx__client_reconnect(struct mbx_client *c, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err);

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

/* ---- processes ---- */

struct mbx_spawn_req {
	const struct mbx_exec_req *exec; /* argv, env, cwd, timeout (0: none), output limit */
	uint32_t flags;                  /* MBX_XF_* */
	uint16_t rows, cols;
	uint64_t window;
	int has_pass_fd;                 /* pass_fd is given: */
	int pass_fd;                     /* a descriptor the program gets as its fd 3
	                                  * (transports that pass descriptors only) */
	uint64_t deadline_us;            /* MBX_XF_LATE_START(flags): how long
	                                  * STARTED may take (it may come with the EXIT);
	                                  * 0 or other flags: a short grace */
};

/* Starts a process; on success *out is its entry in c->procs. */
int mbx__client_spawn(struct mbx_client *c, const struct mbx_spawn_req *req, struct mbx_cproc **out, mbx_error **err);

/* Takes the next event of p, reading the channel until one comes or the
 * deadline (0: do not wait) passes; *out NULL then. Grants credit as events
 * are taken. Stdin credit for a process whose write is waiting for it
 * (mbx__client_write_stdin with deadline 0 left bytes) ends the wait early,
 * *out NULL, so the caller can write again. */
int mbx__client_next_event(struct mbx_client *c, struct mbx_cproc *p, uint64_t deadline_us, struct mbx_event **out,
			   mbx_error **err);

/* Sends a process-directed message (STDIN_CLOSE, SIGNAL, KILL, RESIZE,
 * DETACH, CREDIT; STDIN only through mbx__client_write_stdin) with an
 * optional u32/data payload. */
int mbx__client_proc_send(struct mbx_client *c, struct mbx_cproc *p, uint16_t type, const void *data, size_t len,
			  uint32_t a, uint32_t b, mbx_error **err);

/*
 * Sends up to `len` bytes of stdin within the credit the agent granted,
 * reading the channel for more credit (queuing p's events meanwhile) until
 * deadline_us; deadline 0 reads only what has arrived. With until_event it
 * returns as soon as an event of p is queued while it has no credit, so
 * the caller can take it. *written gets the bytes sent, also on failure. A
 * process that ended is MBX_ESTATE; an error the agent reported for an
 * earlier message of p is returned first.
 */
int mbx__client_write_stdin(struct mbx_client *c, struct mbx_cproc *p, const void *data, size_t len, size_t *written,
			    uint64_t deadline_us, int until_event, mbx_error **err);

/* Moves p's pending error (see struct mbx_cproc) into *err and returns its
 * code; MBX_OK when there is none. */
int mbx__client_take_error(struct mbx_cproc *p, mbx_error **err);

/* Takes p's events into res (output up to req->output_limit, through the
 * callback too) until its exit; deadline 0 waits for ever. */
int mbx__client_collect(struct mbx_client *c, struct mbx_cproc *p, const struct mbx_exec_req *req, uint64_t deadline,
			mbx_result *res, mbx_error **err);

/* Forgets a process (its handle is gone); if it still runs, the agent is
 * told to drop its output. */
void mbx__client_release(struct mbx_client *c, struct mbx_cproc *p);

struct mbx_cproc *mbx__client_find(struct mbx_client *c, uint32_t id);

/*
 * The event descriptor of the channel (made on the first call, owned by the
 * client): readable while an event or stdin credit is queued for a process,
 * or while bytes from the agent wait to be read (level-triggered). Returns
 * the descriptor or a negative MBX_E* code.
 */
int mbx__client_event_fd(struct mbx_client *c, mbx_error **err);

void mbx__event_free(struct mbx_event *ev);
/* Forgets every process (a reset kills them): their later frames are
 * dropped like those of any process nobody holds. */
void mbx__client_forget_all(struct mbx_client *c);

/* ---- requests ---- */

/* Sends the request built in c->wb (frame id `id`) and waits for its answer,
 * queuing process events that arrive meanwhile. An ERROR answer becomes the
 * return code. The frame stays valid until the next client call. */
int mbx__client_request(struct mbx_client *c, uint32_t id, uint64_t deadline_us, struct mbx_frame *reply, mbx_error **err);
/* Waits for the answer to request `id`, sent before with mbx__client_send
 * (a caller may send its next request first; answers come in order). A
 * request sent ahead must be announced with mbx__client_expect() at once,
 * under the same hold of the sandbox's lock as its send: another thread that
 * reads the channel meanwhile then leaves its answer for the sender.
 * 0, or -1 when too many are expected already: then await it at once. */
int mbx__client_expect(struct mbx_client *c, uint32_t id);
/* Waits for the answer to request `id`, sent before with mbx__client_send
 * (a caller may send its next request first; answers come in order). */
int mbx__client_await(struct mbx_client *c, uint32_t id, uint64_t deadline_us, struct mbx_frame *reply, mbx_error **err);
/* The same, passing `nfds` descriptors with the request. */
int mbx__client_request_fds(struct mbx_client *c, const int *fds, size_t nfds, uint32_t id, uint64_t deadline_us,
			    struct mbx_frame *reply, mbx_error **err);
