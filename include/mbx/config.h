/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/config.h
 * @brief Sandbox configuration (the reference's Config/ConfigBuilder) and
 *        per-execute options.
 *
 * A config is an opaque object filled through setters. Setters copy their
 * inputs; a config may build any number of sandboxes and is never consumed.
 * Setters that check their input return an MBX_E* code and describe the
 * problem in `*err`; mbx_sandbox_new() checks the whole config again.
 *
 * Defaults (zero config): isolation auto, trust semi-trusted, network deny-all,
 * timeout 30 s per execute, memory 512 MiB, disk 2048 MiB, 64 processes, no CPU quota,
 * working directory /workspace, 16 MiB of output kept per stream, strict
 * layers (a layer that cannot be applied is an error).
 */
#ifndef MBX_CONFIG_H
#define MBX_CONFIG_H

#include "common.h"
#include "error.h"

MBX_BEGIN_DECL

/** Mount flag: the sandbox may write through the mount (default read-only). */
#define MBX_MOUNT_RW ((uint32_t)1)

/**
 * @brief Creates a config holding the defaults.
 * @param[out] out the new config, owned by the caller (mbx_config_free())
 * @param[out] err optional error on failure
 * @return MBX_OK or MBX_ENOMEM
 */
MBX_EXTERN(int) mbx_config_new(mbx_config **out, mbx_error **err);

/** @brief Frees a config; NULL is a no-op. Sandboxes built from it are unaffected. */
MBX_EXTERN(void) mbx_config_free(mbx_config *cfg);

/** @brief Chooses the backend; MBX_EINVAL for an unknown value. */
MBX_EXTERN(int) mbx_config_set_isolation(mbx_config *cfg, mbx_isolation_t isolation, mbx_error **err);

/** @brief Sets the trust level; MBX_EINVAL for an unknown value. */
MBX_EXTERN(int) mbx_config_set_trust(mbx_config *cfg, mbx_trust_t trust, mbx_error **err);

/**
 * @brief Sets the network policy. For MBX_NETWORK_ALLOW_DOMAINS add the
 *        domains with mbx_config_add_allowed_domain().
 * @return MBX_OK, or MBX_EINVAL for an unknown value
 */
MBX_EXTERN(int) mbx_config_set_network(mbx_config *cfg, mbx_network_t network, mbx_error **err);

/**
 * @brief Adds a domain to the allow list: an exact name ("example.com") or a
 *        wildcard for its subdomains ("*.example.com").
 * @return MBX_OK, or MBX_EINVAL for a malformed name
 */
MBX_EXTERN(int) mbx_config_add_allowed_domain(mbx_config *cfg, const char *domain, mbx_error **err);

/** @brief Default timeout of each execute in milliseconds; 0 is MBX_EINVAL. */
MBX_EXTERN(int) mbx_config_set_timeout_ms(mbx_config *cfg, uint64_t timeout_ms, mbx_error **err);

/** @brief Memory limit of the whole sandbox in bytes; below 1 MiB is MBX_EINVAL. */
MBX_EXTERN(int) mbx_config_set_memory_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err);

/**
 * @brief Size limit of the sandbox's writable storage in bytes (default
 *        2048 MiB): /workspace, /tmp and /dev/shm together.
 *
 * On the os backend the three share one tmpfs of this size, mounted inside
 * the sandbox, with an inode limit derived from it (one inode per 32 KiB, at
 * least 1024). Writing past either gives ENOSPC inside the sandbox; the
 * host's disk is never used. The storage is RAM: with a cgroup its pages
 * count against the memory limit as well, and without one (the rlimit rung)
 * it is capped at the memory limit. The wasm backend serves /workspace from
 * a host directory without a quota: there an explicit disk limit is
 * MBX_ENOTSUP at creation unless degradation is allowed.
 *
 * @param bytes 1 MiB to 1 TiB
 * @return MBX_OK, or MBX_EINVAL out of range
 */
MBX_EXTERN(int) mbx_config_set_disk_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err);

/**
 * @brief CPU quota in thousandths of a CPU (1000 = one full core); 0 removes
 *        the quota. Applied through cgroups; with only rlimits available it
 *        becomes a CPU-time limit equal to the timeout.
 */
MBX_EXTERN(int) mbx_config_set_cpu_limit(mbx_config *cfg, uint32_t millicpus, mbx_error **err);

/** @brief Maximum number of processes (tasks) in the sandbox; 0 is MBX_EINVAL. */
MBX_EXTERN(int) mbx_config_set_max_processes(mbx_config *cfg, uint32_t count, mbx_error **err);

/** @brief Maximum bytes kept per output stream of an execute; beyond it the result is flagged truncated. */
MBX_EXTERN(int) mbx_config_set_output_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err);

/**
 * @brief Sets an environment variable for every execute in the sandbox.
 *
 * Names that change how programs load or start (LD_*, BASH_ENV, ENV,
 * BASH_FUNC_*, GCONV_PATH, ...) are refused with MBX_EINVAL, as are names
 * that are empty, contain '=' or start with a digit.
 */
MBX_EXTERN(int) mbx_config_set_env(mbx_config *cfg, const char *name, const char *value, mbx_error **err);

/** @brief Default working directory inside the sandbox (absolute); default /workspace. */
MBX_EXTERN(int) mbx_config_set_workdir(mbx_config *cfg, const char *path, mbx_error **err);

/** @brief Host name seen inside the sandbox; default "mimobox". */
MBX_EXTERN(int) mbx_config_set_hostname(mbx_config *cfg, const char *hostname, mbx_error **err);

/**
 * @brief Makes a host path visible inside the sandbox.
 * @param host_path    existing host file or directory, absolute or relative to the
 *                     working directory; opened now without following symbolic
 *                     links (a path through a link is MBX_EINVAL, naming the
 *                     resolved path). Creating a sandbox fails if by then the
 *                     path goes through a link or names another file.
 * @param sandbox_path absolute path inside the sandbox, not under /proc or /dev
 * @param flags        0 (read-only) or MBX_MOUNT_RW
 * @return MBX_OK, MBX_ENOTFOUND when host_path does not exist, MBX_EINVAL otherwise
 */
MBX_EXTERN(int) mbx_config_add_mount(mbx_config *cfg, const char *host_path, const char *sandbox_path, uint32_t flags, mbx_error **err);

/**
 * @brief Allows the sandbox to start when an isolation layer (seccomp,
 *        Landlock, a limit) cannot be applied on this host. Off by default:
 *        a missing layer is an MBX_ENOTSUP error naming it. When on, the
 *        sandbox reports what it skipped (mbx_sandbox_skipped()).
 */
MBX_EXTERN(void) mbx_config_set_allow_degraded(mbx_config *cfg, int allow);

/** @brief Routes log messages up to `level` to `fn`; fn NULL disables logging (the default). */
MBX_EXTERN(void) mbx_config_set_log(mbx_config *cfg, mbx_log_level_t level, mbx_log_fn fn, void *userdata);

/* ---- per-execute options ---- */

/**
 * @brief Creates empty execute options: the sandbox's defaults apply.
 * @param[out] out owned by the caller (mbx_exec_options_free())
 */
MBX_EXTERN(int) mbx_exec_options_new(mbx_exec_options **out, mbx_error **err);

/** @brief Frees execute options; NULL is a no-op. */
MBX_EXTERN(void) mbx_exec_options_free(mbx_exec_options *opts);

/** @brief Sets a variable for this execute only, over the config's; same rules as mbx_config_set_env(). */
MBX_EXTERN(int) mbx_exec_options_set_env(mbx_exec_options *opts, const char *name, const char *value, mbx_error **err);

/** @brief Working directory of this execute (absolute, or relative to /workspace). */
MBX_EXTERN(int) mbx_exec_options_set_workdir(mbx_exec_options *opts, const char *path, mbx_error **err);

/** @brief Timeout of this execute in milliseconds; 0 is MBX_EINVAL. */
MBX_EXTERN(int) mbx_exec_options_set_timeout_ms(mbx_exec_options *opts, uint64_t timeout_ms, mbx_error **err);

/**
 * @brief Gives the execute these bytes as its standard input (copied; at
 *        most 64 MiB), followed by end of file. Without it stdin is empty
 *        (/dev/null). For interactive input use mbx_sandbox_spawn().
 */
MBX_EXTERN(int) mbx_exec_options_set_stdin(mbx_exec_options *opts, const void *data, size_t len, mbx_error **err);

/**
 * @brief Says whether the caller resets or destroys the sandbox right after
 *        this execute (default 0). The os backend keeps the mini-init of
 *        an execute (PID 1 of its pid namespace) to serve the next one when
 *        that is safe, which saves the next execute the making of its
 *        namespaces; a reset or destroy then has to end it. With `last` set
 *        it exits when the execute ends, while the caller gets the result,
 *        so the reset or destroy that follows does not wait for it
 *        (docs/security-model.md). mbx_run() sets it. NULL is a no-op.
 */
MBX_EXTERN(void) mbx_exec_options_set_last(mbx_exec_options *opts, int last);

/**
 * @brief Delivers output to `fn` as it is produced. The result still holds
 *        the output (up to the output limit).
 */
MBX_EXTERN(void) mbx_exec_options_set_output_cb(mbx_exec_options *opts, mbx_output_fn fn, void *userdata);

MBX_END_DECL

#endif /* MBX_CONFIG_H */
