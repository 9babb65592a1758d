/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/net.h
 * @brief Network policy settings, HTTP requests made on the host under a
 *        sandbox's policy (the reference's HttpResponse) and the audit log of
 *        a sandbox's network use.
 *
 * The policy itself is chosen with mbx_config_set_network() and
 * mbx_config_add_allowed_domain() (mbx/config.h):
 *
 * - MBX_NETWORK_DENY_ALL: the sandbox has only its own loopback.
 * - MBX_NETWORK_ALLOW_DOMAINS: the sandbox has no route out; the only way
 *   out is a host-side HTTP(S) proxy reachable inside at
 *   http://127.0.0.1:3128, named by HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
 *   their lower-case forms. The proxy checks every CONNECT target and every
 *   plain-HTTP request target and Host header against the allow list,
 *   resolves names itself, refuses private, loopback, link-local, metadata,
 *   multicast and translated (IPv4-mapped, NAT64, 6to4, Teredo) addresses,
 *   and connects to the address it checked. A refusal is an immediate
 *   403 with the reason.
 * - MBX_NETWORK_ALLOW_ALL: real outbound connectivity through user-mode
 *   networking (`pasta` from passt); an error naming the layer "network"
 *   when that cannot be set up, never a sandbox without network.
 *
 * The settings below only add to that: host-name overrides and the switch
 * for private destinations exist for tests and special set-ups and are off
 * by default.
 *
 * Thread safety: the proxy of a sandbox runs on threads of its own; a log
 * callback set with mbx_config_set_log() may be called from them.
 */
#ifndef MBX_NET_H
#define MBX_NET_H

#include "common.h"
#include "error.h"

MBX_BEGIN_DECL

/* ==== Network settings of a config ==== */

/**
 * @brief Resolves `name` to `address` for the proxy and for
 *        mbx_sandbox_http_request(), instead of asking DNS.
 *
 * The name must still be allowed by the allow list, and the address still
 * passes the address checks (a loopback or private address needs
 * mbx_config_set_network_allow_private()). Meant for tests and for
 * pinning names to known addresses.
 *
 * @param name    a host name ("api.example.test"), matched case-insensitively
 * @param address an IPv4 or IPv6 address literal ("127.0.0.1", "::1")
 * @return MBX_OK, or MBX_EINVAL for a malformed name or address
 */
MBX_EXTERN(int) mbx_config_add_host_override(mbx_config *cfg, const char *name, const char *address, mbx_error **err);

/**
 * @brief Admits private destinations: loopback, RFC 1918, shared (CGNAT),
 *        link-local, unique-local and documentation ranges. Off by default.
 *
 * For MBX_NETWORK_ALLOW_DOMAINS and HTTP requests this lets allowed names
 * resolve to such addresses; for MBX_NETWORK_ALLOW_ALL it maps the gateway
 * address inside the sandbox to the host's loopback. Multicast, broadcast,
 * unspecified, cloud metadata (169.254.169.254, fd00:ec2::254) and
 * translated IPv6 forms stay refused.
 */
MBX_EXTERN(void) mbx_config_set_network_allow_private(mbx_config *cfg, int allow);

/**
 * @brief Adds the PEM certificates of a file to the certificate authorities
 *        the sandbox and mbx_sandbox_http_request() trust, on top of the
 *        host's (/etc/ssl/certs/ca-certificates.crt).
 *
 * The file is read now. Inside an os sandbox the combined bundle is
 * /etc/ssl/mimobox-ca.pem, named by SSL_CERT_FILE, CURL_CA_BUNDLE,
 * REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS.
 *
 * @return MBX_OK, MBX_ENOTFOUND when the file does not exist, MBX_EINVAL
 *         when it holds no PEM certificate, MBX_ETOOBIG above 1 MiB
 */
MBX_EXTERN(int) mbx_config_add_ca_file(mbx_config *cfg, const char *pem_path, mbx_error **err);

/**
 * @brief Adds an HTTP rule: which methods and paths of a host may be used.
 *
 * `rule` is `[allow|deny] METHODS HOST[:PORT][/PATH]`: METHODS is `*` or a
 * comma-separated list (`GET,HEAD`), HOST an allow-list entry (a name,
 * `*.suffix` or an IP literal, with an optional port), PATH a pattern from
 * the first `/` in which `*` matches any run of characters, `/` included
 * (no PATH: any path). Without `allow` or `deny` the rule allows.
 *
 * Rules narrow, they never widen: a host must still be in the allow list.
 * For a host that has rules, the request's path (without the query,
 * percent escapes decoded) is checked: deny rules first, then an allow rule
 * must match, else the request is refused (403 from the proxy, MBX_EDENIED
 * from mbx_sandbox_http_request()). Paths a server might read differently
 * (`.` or `..` segments, escaped `/`, `.`, `\`, `%`, a backslash, control
 * characters) are refused. Hosts without rules are as before.
 *
 * Only plain HTTP through the proxy and mbx_sandbox_http_request() (which
 * makes its TLS connections itself) can be inspected: a CONNECT tunnel is
 * opaque, so a host with rules is not reachable by CONNECT (HTTPS through
 * the proxy). Paths match case-sensitively.
 *
 * @return MBX_OK, or MBX_EINVAL for a malformed rule
 */
MBX_EXTERN(int) mbx_config_add_http_rule(mbx_config *cfg, const char *rule, mbx_error **err);

/** A limit of the proxy and of HTTP requests, for mbx_config_set_network_limit(). */
typedef uint8_t mbx_net_limit_t;
/** Bytes a request may send: head plus body, or everything sent up a CONNECT tunnel. Default 64 MiB. */
#define MBX_NET_LIMIT_REQUEST_BYTES  ((mbx_net_limit_t)1)
/** Bytes a response may carry, or everything sent down a CONNECT tunnel. Default 1 GiB. */
#define MBX_NET_LIMIT_RESPONSE_BYTES ((mbx_net_limit_t)2)
/** Milliseconds one request or tunnel may last, connection included. Default 300000 (5 min). */
#define MBX_NET_LIMIT_TIMEOUT_MS     ((mbx_net_limit_t)3)
/** Milliseconds a client may take to send its request head, and a connection may stay silent. Default 30000. */
#define MBX_NET_LIMIT_IDLE_MS        ((mbx_net_limit_t)4)
/** Connections the proxy serves at once; more are answered 503 at once. Default 64. */
#define MBX_NET_LIMIT_CONNECTIONS    ((mbx_net_limit_t)5)
/** Redirects mbx_sandbox_http_request() follows. Default 5; 0 returns the redirect itself. */
#define MBX_NET_LIMIT_REDIRECTS      ((mbx_net_limit_t)6)

/**
 * @brief Sets one limit of the proxy and of HTTP requests.
 * @return MBX_OK, or MBX_EINVAL for an unknown limit or a value out of
 *         range (zero, except for MBX_NET_LIMIT_REDIRECTS)
 */
MBX_EXTERN(int) mbx_config_set_network_limit(mbx_config *cfg, mbx_net_limit_t limit, uint64_t value, mbx_error **err);

/* ==== HTTP requests under the sandbox's policy ==== */

/** A response to mbx_sandbox_http_request() (the reference's HttpResponse). */
typedef struct mbx_http_response mbx_http_response;

/**
 * @brief Performs an HTTP(S) request on the host, under the sandbox's
 *        network policy, and returns the response.
 *
 * The checks are the proxy's: the URL's host must be allowed
 * (MBX_NETWORK_ALLOW_DOMAINS) or any host is (MBX_NETWORK_ALLOW_ALL); the
 * name is resolved once, every address is checked and the connection goes
 * to the checked address. Redirects are followed (up to
 * MBX_NET_LIMIT_REDIRECTS) and every hop is checked again. Proxy settings
 * of the host process's environment are ignored. Each hop is recorded in the
 * sandbox's network log.
 *
 * @param method  "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"
 *                or another token
 * @param url     an absolute http:// or https:// URL without user information
 * @param headers NULL-terminated "Name: value" strings, or NULL; a Host
 *                header must name the URL's host
 * @param body    request body, or NULL
 * @param body_len its length in bytes
 * @param[out] out the response, owned by the caller (mbx_http_response_free())
 * @return MBX_OK for any HTTP status; MBX_EDENIED when the policy refuses a
 *         host or address (the message says why); MBX_EINVAL for an invalid
 *         URL, method or header; MBX_ETIMEDOUT past MBX_NET_LIMIT_TIMEOUT_MS;
 *         MBX_ETOOBIG when the request or the response is over its limit;
 *         MBX_ENETWORK when a name does not resolve or the connection
 *         fails; MBX_ETLS when the TLS handshake or certificate check fails;
 *         MBX_ENOTSUP in a build without libcurl; MBX_ESTATE after destroy.
 */
MBX_EXTERN(int) mbx_sandbox_http_request(mbx_sandbox *sb, const char *method, const char *url, const char *const *headers,
					 const uint8_t *body, size_t body_len, mbx_http_response **out, mbx_error **err);

/** @brief HTTP status code of the response (200, 404...). */
MBX_EXTERN(int) mbx_http_response_status(const mbx_http_response *resp);

/** @brief Number of header fields of the response. */
MBX_EXTERN(size_t) mbx_http_response_header_count(const mbx_http_response *resp);

/** @brief Name of header field `i` as sent. Borrowed; NULL when out of range. */
MBX_EXTERN(const char *) mbx_http_response_header_name(const mbx_http_response *resp, size_t i);

/** @brief Value of header field `i`, without surrounding white space. Borrowed; NULL when out of range. */
MBX_EXTERN(const char *) mbx_http_response_header_value(const mbx_http_response *resp, size_t i);

/** @brief Value of the first header field called `name` (any case). Borrowed; NULL when absent. */
MBX_EXTERN(const char *) mbx_http_response_header(const mbx_http_response *resp, const char *name);

/**
 * @brief The response body, after any transfer coding was removed.
 * @param[out] len number of bytes (may be NULL)
 * @return Borrowed bytes followed by a NUL that len does not count.
 */
MBX_EXTERN(const uint8_t *) mbx_http_response_body(const mbx_http_response *resp, size_t *len);

/** @brief The URL that gave this response (differs from the request's after redirects). Borrowed. */
MBX_EXTERN(const char *) mbx_http_response_url(const mbx_http_response *resp);

/** @brief Frees a response; NULL is a no-op. */
MBX_EXTERN(void) mbx_http_response_free(mbx_http_response *resp);

/* ==== The audit log of a sandbox's network use ==== */

/** A copy of a sandbox's network log, taken by mbx_sandbox_net_log(). */
typedef struct mbx_net_log mbx_net_log;

/** What happened to one request, for mbx_net_log_verdict(). */
typedef uint8_t mbx_net_verdict_t;
/** The policy let it through and the destination was reached. */
#define MBX_NET_ALLOWED ((mbx_net_verdict_t)0)
/** The policy refused it (a host, an address, an IP literal, a malformed request). */
#define MBX_NET_DENIED  ((mbx_net_verdict_t)1)
/** The policy let it through, then it failed: no address, no connection, or a limit cut it off. */
#define MBX_NET_FAILED  ((mbx_net_verdict_t)2)

/** @brief Stable name of a verdict ("allowed", "denied", "failed"), or NULL. */
MBX_EXTERN(const char *) mbx_net_verdict_name(mbx_net_verdict_t verdict);

/**
 * @brief Copies the sandbox's network log: every request its proxy saw and
 *        every mbx_sandbox_http_request() hop, oldest first, up to the last
 *        4096 (mbx_net_log_dropped() counts older ones no longer kept).
 *
 * May run concurrently with the sandbox's proxy and with other calls taking
 * a const sandbox; the log stays readable after destroy, until
 * mbx_sandbox_free().
 *
 * @param[out] out the copy, owned by the caller (mbx_net_log_free())
 * @return MBX_OK, MBX_EINVAL or MBX_ENOMEM
 */
MBX_EXTERN(int) mbx_sandbox_net_log(const mbx_sandbox *sb, mbx_net_log **out, mbx_error **err);

/** @brief Number of entries in the copy. */
MBX_EXTERN(size_t) mbx_net_log_count(const mbx_net_log *log);

/** @brief Entries that were no longer kept when the copy was taken. */
MBX_EXTERN(uint64_t) mbx_net_log_dropped(const mbx_net_log *log);

/** @brief When entry `i` was decided, in microseconds since the Unix epoch; 0 when out of range. */
MBX_EXTERN(uint64_t) mbx_net_log_time_us(const mbx_net_log *log, size_t i);

/** @brief Who made request `i`: "proxy" (from inside the sandbox) or "api" (mbx_sandbox_http_request()). Borrowed. */
MBX_EXTERN(const char *) mbx_net_log_source(const mbx_net_log *log, size_t i);

/** @brief Method of request `i` ("CONNECT", "GET"...), or "" when the request could not be read. Borrowed. */
MBX_EXTERN(const char *) mbx_net_log_method(const mbx_net_log *log, size_t i);

/** @brief Host the request named (lower case; IP literals in canonical form), or "". Borrowed. */
MBX_EXTERN(const char *) mbx_net_log_host(const mbx_net_log *log, size_t i);

/** @brief Port the request named, or 0. */
MBX_EXTERN(uint16_t) mbx_net_log_port(const mbx_net_log *log, size_t i);

/** @brief Address the request was sent to (or refused for), or "" when none was. Borrowed. */
MBX_EXTERN(const char *) mbx_net_log_address(const mbx_net_log *log, size_t i);

/** @brief Verdict of request `i` (MBX_NET_DENIED when out of range). */
MBX_EXTERN(mbx_net_verdict_t) mbx_net_log_verdict(const mbx_net_log *log, size_t i);

/**
 * @brief HTTP status of request `i`: the proxy's own answer (200 for an
 *        opened tunnel, 403, 502...), the upstream's status for forwarded
 *        plain HTTP and API requests, or 0 when unknown.
 */
MBX_EXTERN(int) mbx_net_log_status(const mbx_net_log *log, size_t i);

/** @brief Why: "allowed by `*.example.com`", "host `x` is not in the allow list", "loopback address 127.0.0.1"... Borrowed. */
MBX_EXTERN(const char *) mbx_net_log_reason(const mbx_net_log *log, size_t i);

/** @brief Bytes sent toward the destination (request head and body, or up a tunnel). */
MBX_EXTERN(uint64_t) mbx_net_log_bytes_up(const mbx_net_log *log, size_t i);

/** @brief Bytes received from the destination (response, or down a tunnel). */
MBX_EXTERN(uint64_t) mbx_net_log_bytes_down(const mbx_net_log *log, size_t i);

/** @brief Frees a log copy; NULL is a no-op. */
MBX_EXTERN(void) mbx_net_log_free(mbx_net_log *log);

MBX_END_DECL

#endif /* MBX_NET_H */
