/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/sandbox.h
 * @brief Sandboxes (the reference's Sandbox): create, execute, destroy.
 *
 * A sandbox lives between executes: files written to /workspace by one
 * execute are there for the next. Each execute is a new process tree inside
 * the same isolation; when the execute ends (exit or timeout) every process it
 * started is killed, so nothing outlives the call.
 *
 * Threads: every call on one sandbox and on its processes may come from
 * several threads at once, on every backend; a call that waits (an
 * execute, a process event, stdin credit) does not hold up the others.
 * mbx_sandbox_snapshot() and mbx_sandbox_fork() need the sandbox to
 * themselves: MBX_ESTATE while other calls run. Not allowed:
 * mbx_sandbox_free() or mbx_sandbox_destroy() while other calls on the
 * sandbox or its processes run. Details: docs/api.md, "Threads".
 */
#ifndef MBX_SANDBOX_H
#define MBX_SANDBOX_H

#include "common.h"
#include "error.h"
#include "config.h"
#include "result.h"

MBX_BEGIN_DECL

/** Isolation layers, as bits of mbx_sandbox_layers() and mbx_sandbox_skipped(). */
#define MBX_LAYER_USER_NS      ((uint32_t)1 << 0)
#define MBX_LAYER_PID_NS       ((uint32_t)1 << 1)
#define MBX_LAYER_MOUNT_NS     ((uint32_t)1 << 2)  /**< with pivot_root into a fresh root */
#define MBX_LAYER_NET_NS       ((uint32_t)1 << 3)
#define MBX_LAYER_IPC_NS       ((uint32_t)1 << 4)
#define MBX_LAYER_UTS_NS       ((uint32_t)1 << 5)
#define MBX_LAYER_CGROUP_NS    ((uint32_t)1 << 6)
#define MBX_LAYER_SECCOMP      ((uint32_t)1 << 7)
#define MBX_LAYER_LANDLOCK     ((uint32_t)1 << 8)
#define MBX_LAYER_NO_NEW_PRIVS ((uint32_t)1 << 9)
#define MBX_LAYER_CAPS_DROPPED ((uint32_t)1 << 10)
#define MBX_LAYER_LIMITS       ((uint32_t)1 << 11) /**< memory, process and CPU limits */
#define MBX_LAYER_VM           ((uint32_t)1 << 12) /**< a guest kernel of its own under a VMM (microvm) */
#define MBX_LAYER_VMM_JAIL     ((uint32_t)1 << 13) /**< the VMM itself runs in an os-backend sandbox */

/**
 * @brief Stable name of one layer bit ("user-namespace", "seccomp", ...),
 *        or NULL when `layer` is not exactly one known bit.
 */
MBX_EXTERN(const char *) mbx_layer_name(uint32_t layer);

/**
 * @brief Creates a sandbox and waits until it is ready to execute.
 *
 * With `cfg` NULL the defaults apply (zero config, the reference's
 * Sandbox::new()). Auto isolation sends Untrusted to the microVM backend and
 * fails closed (MBX_ENOTSUP) when it cannot run; everything else goes to the
 * os backend (use mbx_run() to route a .wasm/.wat program to Wasm).
 *
 * With MBX_ISOLATION_WASM every execute runs a WASI preview 1 command
 * module: argv[0] is the module (.wasm binary or .wat text), a host path or
 * a path below /workspace, the sandbox's only directory. A trap is reported
 * in the result (mbx_result_trap()); a file that is not a runnable module is
 * MBX_ENOEXEC.
 *
 * @param[out] out the sandbox, owned by the caller (mbx_sandbox_free()); NULL on failure
 * @param cfg      the configuration, copied; may be NULL
 * @param[out] err optional error on failure
 * @return MBX_OK; MBX_EINVAL for a bad config; MBX_ENOTSUP when the backend
 *         or a requested layer is unavailable (the error names it); MBX_ESYS
 *         or MBX_EPERM when the host refused a step. Nothing is left behind
 *         on failure.
 */
MBX_EXTERN(int) mbx_sandbox_new(mbx_sandbox **out, const mbx_config *cfg, mbx_error **err);

/**
 * @brief Runs a program in the sandbox and waits for it.
 *
 * The program is looked up in the sandbox's PATH when it has no slash. There
 * is no implicit shell.
 *
 * @param argv     NULL-terminated argument vector; argv[0] must be non-empty
 * @param opts     per-call options, or NULL for the sandbox's defaults
 * @param[out] out the result, owned by the caller (mbx_result_free())
 * @return MBX_OK when the payload ran, whatever its exit status;
 *         MBX_ENOTFOUND when the program does not exist in the sandbox;
 *         MBX_ENOEXEC when it cannot be executed; MBX_EINVAL for bad
 *         arguments; MBX_ESTATE after destroy; MBX_EPROTO/MBX_ESYS when the
 *         sandbox broke (it is then destroyed).
 */
MBX_EXTERN(int) mbx_sandbox_exec(mbx_sandbox *sb, const char *const *argv, const mbx_exec_options *opts, mbx_result **out, mbx_error **err);

/**
 * @brief Runs a command line: split with shell-like quoting (single and
 *        double quotes, backslash escapes), then run as mbx_sandbox_exec()
 *        without any shell. Operators like `|` or `>` are plain words.
 * @return as mbx_sandbox_exec(); MBX_EINVAL for an empty command or an
 *         unterminated quote.
 */
MBX_EXTERN(int) mbx_sandbox_exec_command(mbx_sandbox *sb, const char *command, const mbx_exec_options *opts, mbx_result **out, mbx_error **err);

/**
 * @brief Runs source code with an interpreter inside the sandbox.
 * @param language "sh", "bash", "python3" (or "python") or "node" (or "javascript")
 * @param code     the program text
 * @return as mbx_sandbox_exec(); MBX_EINVAL for an unknown language;
 *         MBX_ENOTFOUND when the interpreter is not installed.
 */
MBX_EXTERN(int) mbx_sandbox_exec_code(mbx_sandbox *sb, const char *language, const char *code, const mbx_exec_options *opts, mbx_result **out, mbx_error **err);

/**
 * @brief Tears the sandbox down: kills every process, removes its mounts,
 *        cgroups and directories. Idempotent: a second call returns MBX_OK.
 *        The handle stays valid (later executes fail with MBX_ESTATE) until
 *        mbx_sandbox_free(). Not while other threads' calls on the sandbox
 *        or its processes run.
 */
MBX_EXTERN(int) mbx_sandbox_destroy(mbx_sandbox *sb, mbx_error **err);

/**
 * @brief Makes an os sandbox as good as new for another user.
 *
 * Every process in it is killed and reaped (those in new sessions and
 * double-forked ones too), /workspace, /tmp and /dev/shm are emptied, later
 * processes get a fresh IPC namespace (no SysV shared memory, semaphores,
 * message queues or POSIX message queues of before), the host name is set
 * again and mbx_sandbox_oom_kills() counts from 0. docs/security-model.md
 * ("Reuse of a sandbox") lists what it covers and what it does not.
 *
 * Spawned processes are killed too: later calls on their handles answer
 * MBX_ESTATE (free them as usual).
 *
 * Fails closed: on any error the sandbox is destroyed (later calls answer
 * MBX_ESTATE) and never runs anything again; free it as usual. The one
 * exception: while other threads' calls on the sandbox or its processes
 * run, it answers MBX_ESTATE at once and changes nothing (a reset needs the
 * sandbox to itself, as a snapshot or a fork does).
 *
 * @return MBX_OK; MBX_ENOTSUP for a backend other than os, for a sandbox
 *         with mounts of host paths, with network or without its seccomp
 *         program (degraded), or when the storage is a fork's overlay; MBX_ESTATE for a destroyed sandbox; any
 *         other error of the agent
 */
MBX_EXTERN(int) mbx_sandbox_reset(mbx_sandbox *sb, mbx_error **err);

/** @brief Destroys the sandbox if needed and frees the handle; NULL is a no-op.
 *         Not while other threads' calls on the sandbox or its processes run. */
MBX_EXTERN(void) mbx_sandbox_free(mbx_sandbox *sb);

/** @brief The backend running this sandbox (never MBX_ISOLATION_AUTO). */
MBX_EXTERN(mbx_isolation_t) mbx_sandbox_isolation(const mbx_sandbox *sb);

/** @brief Unique id of the sandbox (16 hex digits). Borrowed. */
MBX_EXTERN(const char *) mbx_sandbox_id(const mbx_sandbox *sb);

/** @brief Layers in force, as MBX_LAYER_* bits. */
MBX_EXTERN(uint32_t) mbx_sandbox_layers(const mbx_sandbox *sb);

/** @brief Layers that were skipped because the config allowed degradation. */
MBX_EXTERN(uint32_t) mbx_sandbox_skipped(const mbx_sandbox *sb);

/**
 * @brief How many processes of the sandbox the kernel has killed for
 *        exceeding the memory limit so far (a counter that only grows).
 *
 * mbx_result_oom_killed() answers this for an execute. For a spawned
 * process, read the counter before it starts and again after it was killed
 * by SIGKILL: a larger count means the kill was (very likely) the memory
 * limit's. 0 when the limits are rlimits (allocations fail instead) or the
 * backend cannot tell.
 */
MBX_EXTERN(uint64_t) mbx_sandbox_oom_kills(mbx_sandbox *sb);

/**
 * @brief Why one skipped layer was skipped, in words, e.g. "CPU quota: no
 *        cgroup with the cpu controller is available".
 * @param layer exactly one MBX_LAYER_* bit
 * @return Borrowed static string; NULL when `layer` is not one bit of
 *         mbx_sandbox_skipped().
 */
MBX_EXTERN(const char *) mbx_sandbox_skip_reason(const mbx_sandbox *sb, uint32_t layer);

/**
 * @brief How the limits are enforced: "cgroup-v2", "cgroup-v1" or "rlimit".
 * @return Borrowed static string.
 */
MBX_EXTERN(const char *) mbx_sandbox_limits_mechanism(const mbx_sandbox *sb);

/**
 * @brief What the sandbox's memory and disk limits do not bound, when they
 *        are only partially enforced.
 *
 * A cgroup bounds the whole sandbox. Without one (the "rlimit" rung, e.g.
 * an unprivileged caller on a host that delegates no cgroup controllers)
 * the memory limit holds per process only, and the sentence says what is
 * capped and what is not. The wasm backend reports that its workspace has
 * no disk quota.
 *
 * @return Borrowed static sentence, or NULL when every limit is enforced
 *         in full.
 */
MBX_EXTERN(const char *) mbx_sandbox_limits_partial(const mbx_sandbox *sb);

/**
 * @brief One-shot: create a sandbox, run argv, destroy it.
 *
 * Auto isolation routes by program: a path ending in .wasm or .wat goes to
 * the Wasm backend, Untrusted to the microVM, the rest to os.
 *
 * @return as mbx_sandbox_new() and mbx_sandbox_exec()
 */
MBX_EXTERN(int) mbx_run(const mbx_config *cfg, const char *const *argv, const mbx_exec_options *opts, mbx_result **out, mbx_error **err);

MBX_END_DECL

#endif /* MBX_SANDBOX_H */
