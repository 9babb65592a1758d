/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/probe.h
 * @brief What this host can do: every isolation layer probed at run time
 *        (behind `mimobox doctor`).
 *
 * A probe report is a list of checks. Each check has a stable name
 * ("user-namespaces", "seccomp", "landlock", "cgroup-v2", "cgroup-v1",
 * "rlimits", "kvm", "qemu", "wasmtime", ...), a verdict, a detail line and,
 * when it failed, a hint saying what to do. Per backend the report says
 * whether it can run here and why not.
 */
#ifndef MBX_PROBE_H
#define MBX_PROBE_H

#include "common.h"
#include "error.h"

MBX_BEGIN_DECL

/** Verdict of one check. */
typedef uint8_t mbx_probe_status_t;
#define MBX_PROBE_OK          ((mbx_probe_status_t)0) /**< available */
#define MBX_PROBE_PARTIAL     ((mbx_probe_status_t)1) /**< usable with reduced function */
#define MBX_PROBE_UNAVAILABLE ((mbx_probe_status_t)2) /**< not usable here */

/**
 * @brief Probes the host. Spawns short-lived test processes; takes a few ms.
 * @param[out] out the report, owned by the caller (mbx_probe_free())
 */
MBX_EXTERN(int) mbx_probe_run(mbx_probe **out, mbx_error **err);

/** @brief Frees a report; NULL is a no-op. */
MBX_EXTERN(void) mbx_probe_free(mbx_probe *probe);

/** @brief Number of checks in the report. */
MBX_EXTERN(size_t) mbx_probe_count(const mbx_probe *probe);

/** @brief Stable name of check `i`. Borrowed; NULL when i is out of range. */
MBX_EXTERN(const char *) mbx_probe_name(const mbx_probe *probe, size_t i);

/** @brief Verdict of check `i` (MBX_PROBE_UNAVAILABLE when out of range). */
MBX_EXTERN(mbx_probe_status_t) mbx_probe_status(const mbx_probe *probe, size_t i);

/** @brief What was found, e.g. "ABI 7". Borrowed; never NULL for a valid i. */
MBX_EXTERN(const char *) mbx_probe_detail(const mbx_probe *probe, size_t i);

/** @brief What to do when the check is not OK. Borrowed; NULL when there is nothing to do. */
MBX_EXTERN(const char *) mbx_probe_hint(const mbx_probe *probe, size_t i);

/**
 * @brief Whether a backend can run sandboxes on this host.
 *
 * For MBX_ISOLATION_MICROVM the answer is its prerequisites: QEMU runs and the
 * guest assets (kernel and root image) verify against their manifest (checks
 * "qemu" and "vm-assets"; the accelerator, "vm-accelerator", only decides the
 * speed).
 * @param isolation MBX_ISOLATION_OS, _WASM or _MICROVM
 * @param[out] reason when not available, why and what to do (borrowed); may be NULL
 * @return 1 when available, 0 otherwise
 */
MBX_EXTERN(int) mbx_probe_backend(const mbx_probe *probe, mbx_isolation_t isolation, const char **reason);

MBX_END_DECL

#endif /* MBX_PROBE_H */
