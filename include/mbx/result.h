/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/result.h
 * @brief The outcome of one execute (the reference's ExecuteResult).
 *
 * A result is produced by a successful execute call and belongs to the caller,
 * who frees it with mbx_result_free(). Every accessor is safe to call
 * concurrently on the same result.
 */
#ifndef MBX_RESULT_H
#define MBX_RESULT_H

#include "common.h"

MBX_BEGIN_DECL

/** @brief Exit status of the payload, or -1 when it was killed by a signal, timed out or trapped. */
MBX_EXTERN(int) mbx_result_exit_code(const mbx_result *res);

/** @brief Signal that killed the payload (SIGSYS for a seccomp kill), or 0. */
MBX_EXTERN(int) mbx_result_signal(const mbx_result *res);

/** @brief 1 when the execute ran into its timeout and its process tree was killed. */
MBX_EXTERN(int) mbx_result_timed_out(const mbx_result *res);

/** @brief 1 when the kernel killed a process of the execute for exceeding the memory limit. */
MBX_EXTERN(int) mbx_result_oom_killed(const mbx_result *res);

/**
 * @brief Captured standard output.
 * @param[out] len number of bytes (may be NULL)
 * @return Borrowed bytes, followed by a NUL that is not counted in len.
 */
MBX_EXTERN(const uint8_t *) mbx_result_stdout(const mbx_result *res, size_t *len);

/** @brief Captured standard error; as mbx_result_stdout(). */
MBX_EXTERN(const uint8_t *) mbx_result_stderr(const mbx_result *res, size_t *len);

/** @brief 1 when stdout exceeded the output limit and was cut. */
MBX_EXTERN(int) mbx_result_stdout_truncated(const mbx_result *res);

/** @brief 1 when stderr exceeded the output limit and was cut. */
MBX_EXTERN(int) mbx_result_stderr_truncated(const mbx_result *res);

/** @brief Wall time of the execute in microseconds, from request to exit. */
MBX_EXTERN(uint64_t) mbx_result_elapsed_us(const mbx_result *res);

/** @brief Largest resident set of the payload's process tree in bytes (0 if unknown). */
MBX_EXTERN(uint64_t) mbx_result_peak_memory_bytes(const mbx_result *res);

/** @brief User plus system CPU time of the payload's whole process tree in microseconds. */
MBX_EXTERN(uint64_t) mbx_result_cpu_time_us(const mbx_result *res);

/** @brief Backend that ran the execute. */
MBX_EXTERN(mbx_isolation_t) mbx_result_isolation(const mbx_result *res);

/** @brief How the sandbox's limits were enforced, as mbx_sandbox_limits_mechanism(); borrowed static string. */
MBX_EXTERN(const char *) mbx_result_limits_mechanism(const mbx_result *res);

/** @brief As mbx_sandbox_limits_partial() for the sandbox that ran the execute: NULL when enforced in full. */
MBX_EXTERN(const char *) mbx_result_limits_partial(const mbx_result *res);

/**
 * @brief Why a Wasm payload trapped (an `unreachable` instruction, an
 *        out-of-bounds memory access, a stack overflow...), as Wasmtime
 *        describes it, e.g. "wasm trap: wasm `unreachable` instruction
 *        executed".
 *
 * A trap is a payload failure, not an error: the execute returns MBX_OK,
 * mbx_result_exit_code() is -1 and mbx_result_signal() is 0. Timeouts are
 * reported by mbx_result_timed_out(), not as traps.
 *
 * @return Borrowed; NULL when the payload did not trap (always NULL for
 *         backends other than wasm).
 */
MBX_EXTERN(const char *) mbx_result_trap(const mbx_result *res);

/**
 * @brief Layers in force for the execute, as MBX_LAYER_* bits (those of the
 *        sandbox that ran it: mbx_sandbox_layers()).
 */
MBX_EXTERN(uint32_t) mbx_result_layers(const mbx_result *res);

/**
 * @brief Layers that were skipped for the execute because the config allowed
 *        degradation (mbx_config_set_allow_degraded()), as MBX_LAYER_* bits;
 *        0 when every requested layer is in force.
 *
 * A caller that allowed degradation should show these to its user: a layer
 * skipped without a word is a silent downgrade. mbx_run() destroys its
 * sandbox, so this is the only place its skipped layers can be read.
 */
MBX_EXTERN(uint32_t) mbx_result_skipped(const mbx_result *res);

/**
 * @brief Why one skipped layer was skipped, in words ("CPU quota: no cgroup
 *        with the cpu controller is available", ...).
 * @param layer exactly one MBX_LAYER_* bit
 * @return Borrowed static string; NULL when `layer` is not one bit of
 *         mbx_result_skipped().
 */
MBX_EXTERN(const char *) mbx_result_skip_reason(const mbx_result *res, uint32_t layer);

/** @brief Frees a result; NULL is a no-op. */
MBX_EXTERN(void) mbx_result_free(mbx_result *res);

MBX_END_DECL

#endif /* MBX_RESULT_H */
