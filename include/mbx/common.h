/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/common.h
 * @brief Shared declarations of the libmimobox public API: export macro,
 *        opaque handle types and the fixed-width enumerations.
 *
 * Every enumeration crosses the ABI as a fixed-width integer typedef with
 * explicit values that are never renumbered, so bindings (ctypes, cffi, Rust
 * FFI) can mirror them without caring about the compiler's enum size.
 *
 * Thread safety: a function taking a `const mbx_x *` may run concurrently with
 * other such calls on the same object; anything taking a non-const pointer
 * needs exclusive access to that object.
 */
#ifndef MBX_COMMON_H
#define MBX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define MBX_BEGIN_DECL extern "C" {
#define MBX_END_DECL }
#else
#define MBX_BEGIN_DECL /* empty */
#define MBX_END_DECL   /* empty */
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define MBX_EXTERN(type) extern __attribute__((visibility("default"))) type
#else
#define MBX_EXTERN(type) extern type
#endif

MBX_BEGIN_DECL

/** A sandbox configuration: see mbx/config.h. Owned by the caller. */
typedef struct mbx_config mbx_config;
/** Options of one execute call: see mbx/config.h. Owned by the caller. */
typedef struct mbx_exec_options mbx_exec_options;
/** A live sandbox: see mbx/sandbox.h. */
typedef struct mbx_sandbox mbx_sandbox;
/** The outcome of one execute: see mbx/result.h. */
typedef struct mbx_result mbx_result;
/** An error description: see mbx/error.h. */
typedef struct mbx_error mbx_error;
/** The report of a host probe: see mbx/probe.h. */
typedef struct mbx_probe mbx_probe;

/** Isolation backend of a sandbox (the reference's IsolationLevel). */
typedef uint8_t mbx_isolation_t;
/** Pick per sandbox: Untrusted goes to the microVM, .wasm/.wat to Wasm, the rest to os. */
#define MBX_ISOLATION_AUTO    ((mbx_isolation_t)0)
/** Linux namespaces, seccomp-bpf, Landlock and limits. */
#define MBX_ISOLATION_OS      ((mbx_isolation_t)1)
/** Wasmtime with WASI preview 1. */
#define MBX_ISOLATION_WASM    ((mbx_isolation_t)2)
/** A Linux guest under QEMU. */
#define MBX_ISOLATION_MICROVM ((mbx_isolation_t)3)

/** How much the payload is trusted (the reference's TrustLevel). */
typedef uint8_t mbx_trust_t;
#define MBX_TRUST_TRUSTED      ((mbx_trust_t)0)
/** The default. */
#define MBX_TRUST_SEMI_TRUSTED ((mbx_trust_t)1)
/** Stricter seccomp and Landlock scopes; Auto routes it to the microVM. */
#define MBX_TRUST_UNTRUSTED    ((mbx_trust_t)2)

/** What the sandbox may reach on the network (the reference's NetworkPolicy). */
typedef uint8_t mbx_network_t;
/** The default: an empty network namespace with loopback only. */
#define MBX_NETWORK_DENY_ALL      ((mbx_network_t)0)
/** Only the listed domains, through the host-side proxy. */
#define MBX_NETWORK_ALLOW_DOMAINS ((mbx_network_t)1)
/** Real outbound connectivity. */
#define MBX_NETWORK_ALLOW_ALL     ((mbx_network_t)2)

/** An output stream of a payload. */
typedef uint8_t mbx_stream_t;
#define MBX_STREAM_STDOUT ((mbx_stream_t)1)
#define MBX_STREAM_STDERR ((mbx_stream_t)2)

/** Severity of a log message handed to a mbx_log_fn. */
typedef uint8_t mbx_log_level_t;
#define MBX_LOG_ERROR ((mbx_log_level_t)0)
#define MBX_LOG_WARN  ((mbx_log_level_t)1)
#define MBX_LOG_INFO  ((mbx_log_level_t)2)
#define MBX_LOG_DEBUG ((mbx_log_level_t)3)

/**
 * @brief Receives the library's log messages; the library itself never
 *        prints.
 * @param level    severity of the message
 * @param message  NUL-terminated text, valid only during the call
 * @param userdata the pointer given with the callback
 */
typedef void (*mbx_log_fn)(mbx_log_level_t level, const char *message, void *userdata);

/**
 * @brief Receives payload output as it is produced.
 *
 * Called on the thread that runs the execute, in the order the bytes were
 * read per stream. Bytes beyond the output limit are not delivered.
 *
 * @param stream   MBX_STREAM_STDOUT or MBX_STREAM_STDERR
 * @param data     the bytes, valid only during the call (not NUL-terminated)
 * @param len      number of bytes, never 0
 * @param userdata the pointer given with the callback
 */
typedef void (*mbx_output_fn)(mbx_stream_t stream, const uint8_t *data, size_t len, void *userdata);

/**
 * @brief Stable lower-case name of an isolation level ("auto", "os", "wasm",
 *        "microvm"), or NULL for an unknown value.
 */
MBX_EXTERN(const char *) mbx_isolation_name(mbx_isolation_t isolation);
/** @brief Stable name of a trust level ("trusted", "semi", "untrusted"), or NULL. */
MBX_EXTERN(const char *) mbx_trust_name(mbx_trust_t trust);
/** @brief Stable name of a network policy ("deny", "allow-domains", "all"), or NULL. */
MBX_EXTERN(const char *) mbx_network_name(mbx_network_t network);

MBX_END_DECL

#endif /* MBX_COMMON_H */
