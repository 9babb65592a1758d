/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backend interface: what src/core asks of a backend. A backend is a
 * table of operations plus capability bits; the core routes on the bits
 * (can this sandbox run processes, serve files, give a PTY, ...), never on
 * which backend it is. Backends driven by the in-sandbox agent (os,
 * microvm) implement most operations through src/backend/agenthost.h.
 * Never installed.
 */
#pragma once

#include "internal.h"

struct mbx_snapshot;

/*
 * Capability bits of a backend (struct mbx_backend_ops.caps). The core
 * answers MBX_ENOTSUP naming the backend for what a sandbox lacks.
 */
#define MBX_BACKEND_CAP_EXEC      (1u << 0) /* one-shot executes (every backend) */
#define MBX_BACKEND_CAP_PROCESSES (1u << 1) /* spawned processes: streams, stdin, signals (needs .client) */
#define MBX_BACKEND_CAP_PTY       (1u << 2) /* processes on a pseudo-terminal (with PROCESSES) */
#define MBX_BACKEND_CAP_FILES     (1u << 3) /* the file API: through the agent (.client) or, without one,
                                             * the host directory behind /workspace (.workspace) */
#define MBX_BACKEND_CAP_STATE     (1u << 4) /* state persists between executes (files, processes) */
#define MBX_BACKEND_CAP_OOM_COUNT (1u << 5) /* .oom_kills tells out-of-memory kills */
#define MBX_BACKEND_CAP_SNAPSHOT  (1u << 6) /* .snapshot and .restore work */
#define MBX_BACKEND_CAP_FORK      (1u << 7) /* .fork works */

struct mbx_backend_ops {
	const char *name;
	mbx_isolation_t isolation;
	uint32_t caps; /* MBX_BACKEND_CAP_* */
	/* Builds the sandbox (sb->cfg is set); on failure leaves nothing behind. */
	int (*create)(mbx_sandbox *sb, mbx_error **err);
	/* Runs one execute and fills res (zeroed by the caller). */
	int (*exec)(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err);
	/* Tears everything down; called once. */
	int (*destroy)(mbx_sandbox *sb, mbx_error **err);
	/* The channel to the sandbox's agent (processes, files), or NULL when
	 * the backend has no agent. */
	struct mbx_client *(*client)(mbx_sandbox *sb);
	/* Without an agent: the host directory behind /workspace, which the
	 * file API then serves from the host (src/core/hostfiles.c); the
	 * backend may make it on this first call (the wasm backend does). */
	int (*workspace)(mbx_sandbox *sb, const char **out, mbx_error **err);
	/* Out-of-memory kills in the sandbox so far, or NULL when the backend
	 * cannot tell. */
	uint64_t (*oom_kills)(mbx_sandbox *sb);
	/* Optional: adds to *err what the backend knows about why the channel
	 * to its agent broke (a VM's console), before the sandbox is destroyed. */
	void (*explain_broken)(mbx_sandbox *sb, mbx_error **err);

	/*
	 * Optional; a backend that sets them sets the matching capability bit
	 * too, and the core checks the bit first (src/core/snapshot.h).
	 *
	 * snapshot: appends the backend's saved state of the running sandbox
	 *   to snap->payload (and, for a VM, sets snap->mem_fd and mem_size);
	 *   the sandbox keeps running. The core keeps the config.
	 * restore:  builds sb (sb->cfg set, as for create) with the state of a
	 *   payload the core has checked (for the os backend,
	 *   mbx__snapfiles_check()); on failure leaves nothing behind. The
	 *   whole snapshot is sb->restoring (a VM's memory is there).
	 * fork:     builds `child` (child->cfg set, as for create) with the
	 *   state of the running `sb`, copying no more than it must.
	 */
	int (*snapshot)(mbx_sandbox *sb, struct mbx_snapshot *snap, mbx_error **err);
	int (*restore)(mbx_sandbox *sb, const uint8_t *payload, size_t len, mbx_error **err);
	int (*fork)(mbx_sandbox *sb, mbx_sandbox *child, mbx_error **err);
	/* Optional: makes the sandbox as good as new for its next user
	 * (mbx_sandbox_reset()); on failure the core destroys it. */
	int (*reset)(mbx_sandbox *sb, mbx_error **err);
};

/* Whether the sandbox's backend has every bit of `caps`. */
static inline int mbx__backend_has(const mbx_sandbox *sb, uint32_t caps)
{
	return (sb->ops->caps & caps) == caps;
}

/* ---- the backends ---- */
extern const struct mbx_backend_ops mbx__linux_backend;
extern const struct mbx_backend_ops mbx__microvm_backend;
/* The agent program embedded in the library (static, runs in the os
 * backend's namespaces and as the microVM guest's init). */
void mbx__agent_image(const uint8_t **data, size_t *len);
/* Removes the cgroups an os sandbox recorded in `record` (its state
 * directory's or its lock file) and a pasta left in `dir` (NULL: none): the
 * release hook of mbx__statedir_collect() for every backend. */
void mbx__linux_remove_recorded_cgroups(const char *dir, const char *record);
/* The host pid of an os sandbox's agent (its PID 1), or -1 for another
 * backend or a destroyed sandbox (QEMU's jail finds QEMU below it). */
pid_t mbx__linux_agent_pid(mbx_sandbox *sb);
#if MBX_FEATURE_WASM
extern const struct mbx_backend_ops mbx__wasm_backend;
/* Wasmtime's version and whether an engine works here (a tiny module is
 * compiled); *detail is malloc'd. 0 when it works, else an MBX_E* code. */
int mbx__wasm_probe(char **detail);
#endif
