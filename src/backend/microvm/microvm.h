/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microvm backend's internals for the snapshot and restore code (and
 * tests): dropping a sandbox's agent channel and connecting it again to a
 * guest whose agent kept its session (MBX_FEAT_RESUME, docs/microvm.md
 * "Resuming"). Never installed.
 */
#pragma once

#include <stdint.h>

#include "internal.h"

/*
 * Closes the sandbox's channel to its guest agent. The agent keeps its
 * processes and waits for a host; the sandbox's process handles stay, and
 * every call that needs the channel fails (an execute then destroys the
 * sandbox, as for any broken channel) until mbx__microvm_reconnect().
 * MBX_EINVAL for a sandbox of another backend.
 */
int mbx__microvm_drop_channel(mbx_sandbox *sb, mbx_error **err);

/*
 * Connects the sandbox's channel again: closes the current one (if any),
 * connects to QEMU's agent chardev socket `agent.sock` in `run_dir` (NULL:
 * the sandbox's own run directory), reached through /proc/self/fd/<dirfd>/
 * as at create, and greets the agent (mbx__agenthost_reconnect): it must
 * run the sandbox's session, version and features. Waits up to
 * `timeout_ms` for QEMU to take the connection and the agent to greet.
 * On failure the new connection is closed again (an agent of another
 * session gets no HELLO_ACK and waits for its own host) and the channel
 * stays broken: the sandbox can be reconnected again or destroyed.
 * MBX_EPROTO for another session or protocol, MBX_ETIMEDOUT for silence.
 */
int mbx__microvm_reconnect(mbx_sandbox *sb, const char *run_dir, int timeout_ms, mbx_error **err);

/* The agent's session (its HELLO's SESSION); 0 for a sandbox of another backend. */
uint64_t mbx__microvm_session(mbx_sandbox *sb);

/* The sandbox's run directory (QEMU's sockets); borrowed. NULL for a
 * sandbox of another backend. */
const char *mbx__microvm_run_dir(mbx_sandbox *sb);

/* QEMU's host pid, or -1 for a sandbox of another backend (tests kill it
 * to crash a guest). */
pid_t mbx__microvm_vmm_pid(mbx_sandbox *sb);
