/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/error.h
 * @brief Status codes and error objects (the reference's SdkError/ErrorCode).
 *
 * Every fallible function returns an `int`: MBX_OK (0) or one of the negative
 * MBX_E* codes below. When its trailing `mbx_error **err` argument is not
 * NULL, a failing call also stores a new error object there, which the caller
 * owns and frees with mbx_error_free(). On success `*err` is left untouched.
 * There is no hidden "last error" state.
 *
 * Result versus error: a sandbox that was built and ran its payload returns
 * MBX_OK even when the payload failed; exit codes, signals, timeouts and OOM
 * kills live in the mbx_result. Errors are for misuse, missing backends and
 * host failures.
 *
 * Codes are never renumbered; their string names (mbx_error_code_name()) are
 * stable and fit for logs and bindings.
 */
#ifndef MBX_ERROR_H
#define MBX_ERROR_H

#include "common.h"

MBX_BEGIN_DECL

#define MBX_OK          0   /**< success */
#define MBX_EINVAL    (-1)  /**< "invalid_argument": bad input from the caller */
#define MBX_ENOMEM    (-2)  /**< "out_of_memory" */
#define MBX_ENOTSUP   (-3)  /**< "unsupported": a backend or kernel layer is unavailable here */
#define MBX_EPERM     (-4)  /**< "permission_denied" */
#define MBX_ESYS      (-5)  /**< "system_error": a host system call failed */
#define MBX_ETIMEDOUT (-6)  /**< "timed_out": the host gave up waiting (not a payload timeout) */
#define MBX_EBACKEND  (-7)  /**< "backend_error": the backend engine failed */
#define MBX_ESTATE    (-8)  /**< "bad_state": the object cannot do that now (e.g. destroyed) */
#define MBX_ENOTFOUND (-9)  /**< "not_found": a program, file or path does not exist */
#define MBX_ENOEXEC   (-10) /**< "not_executable": the program exists but cannot be executed */
#define MBX_ENOTDIR   (-11) /**< "not_a_directory" */
#define MBX_ETOOBIG   (-12) /**< "too_large": over a configured size limit */
#define MBX_EPROTO    (-13) /**< "protocol_error": the in-sandbox agent sent bad data */
#define MBX_EEXIST    (-14) /**< "already_exists" */
#define MBX_EDENIED   (-15) /**< "denied": the network policy refused a host or address */
#define MBX_ENETWORK  (-16) /**< "network_error": a name did not resolve or a connection failed */
#define MBX_ETLS      (-17) /**< "tls_error": a TLS handshake or certificate check failed */

/**
 * @brief Stable snake_case name of a status code, e.g. "invalid_argument".
 * @return a static string; "unknown" for a value that is not a code.
 */
MBX_EXTERN(const char *) mbx_error_code_name(int code);

/** @brief The MBX_E* code of an error. */
MBX_EXTERN(int) mbx_error_code(const mbx_error *err);

/** @brief The errno value behind the error, or 0 when there is none. */
MBX_EXTERN(int) mbx_error_errno(const mbx_error *err);

/**
 * @brief What failed and why, with its context chain, e.g.
 *        "create sandbox: mount `/proc`: Permission denied".
 * @return Borrowed; valid until mbx_error_free(). Never NULL.
 */
MBX_EXTERN(const char *) mbx_error_message(const mbx_error *err);

/**
 * @brief What the user can do about it, when the library knows.
 * @return Borrowed, or NULL when there is no suggestion.
 */
MBX_EXTERN(const char *) mbx_error_suggestion(const mbx_error *err);

/**
 * @brief The isolation layer or backend the error is about ("seccomp",
 *        "landlock", "user-namespace", "wasm", ...), or NULL.
 * @return Borrowed.
 */
MBX_EXTERN(const char *) mbx_error_layer(const mbx_error *err);

/** @brief Frees an error; NULL is a no-op. */
MBX_EXTERN(void) mbx_error_free(mbx_error *err);

MBX_END_DECL

#endif /* MBX_ERROR_H */
