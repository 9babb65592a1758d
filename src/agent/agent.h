/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-sandbox agent: PID 1 of the sandbox. It is a small static program
 * that speaks the agent protocol on fd 3, builds the sandbox's view of the
 * file system when asked (os backend), and runs each execute as a child
 * process with the payload layers applied (capabilities dropped,
 * no_new_privs, Landlock, seccomp). It trusts the host; the host does not
 * trust it.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define AGENT_FD 3

struct agent_rlimit {
	uint32_t resource;
	uint64_t value;
};

struct agent_state {
	int chan;               /* the protocol channel (fd 3) */
	struct mbx_rbuf in;
	struct mbx_wbuf out;    /* frames waiting to be written */
	size_t out_sent;        /* bytes of `out` already written */
	int sigfd;              /* signalfd for SIGCHLD */

	uint32_t init_flags;
	uint8_t *seccomp;       /* raw sock_filter array, or NULL */
	size_t seccomp_len;
	int landlock_fd;        /* ruleset to enforce on payloads, or -1 */
	int landlock_abi;
	struct agent_rlimit rlimits[8];
	size_t nrlimits;
	uint32_t layers;        /* MBX_LAYER_* achieved for payloads */
	uint32_t skipped;
	int fds[MBX_PROTO_MAX_FDS]; /* descriptors received with messages */
	size_t nfds;
};

/* agent.c */
void agent_send_error(struct agent_state *st, uint32_t id, int code, int errnum, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Writes as much queued output as the channel takes; with `block` waits
 * until everything is written. Returns -1 when the host is gone. */
int agent_flush(struct agent_state *st, int block);
/* Reads from the channel into buf, collecting passed descriptors into
 * st->fds. Returns what read(2) would. */
ssize_t agent_recv(struct agent_state *st, void *buf, size_t len);
/* Closes the descriptors received so far. */
void agent_close_fds(struct agent_state *st);
/* Handles one frame that arrived while an execute runs. Returns -1 when the
 * agent must shut down. */
int agent_handle_async(struct agent_state *st, const struct mbx_frame *f);

/* setup.c: the INIT message. Returns 0 (READY sent) or -1 (ERROR sent). */
int agent_setup(struct agent_state *st, const struct mbx_frame *f);

/* payload.c: the EXEC message; returns -1 when the agent must shut down. */
int agent_exec(struct agent_state *st, const struct mbx_frame *f);
