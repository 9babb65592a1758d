/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network policy machinery shared by the backends (docs/network.md):
 *
 *	policy.c    pure checks: host syntax and IP literals in every form
 *	            inet_aton accepts, allow-list matching, address classes
 *	httpparse.c a strict HTTP/1.1 request-head parser and its reading as a
 *	            proxy request (pure, fuzzed by fuzz/fuzz-http.c)
 *	decide.c    one decision for a host and port: allow list, resolution
 *	            (overrides first), address checks; shared by the proxy and
 *	            mbx_sandbox_http_request() so both pin the address they check
 *	proxy.c     the host-side HTTP forward proxy and CONNECT tunnels, on any
 *	            stream socket: a listener inside an os sandbox's network
 *	            namespace, or a connected channel (the microVM's)
 *	netlog.c    the per-sandbox audit log behind mbx_sandbox_net_log()
 *	netcfg.c    the network settings of a config
 *	http.c      mbx_sandbox_http_request() on libcurl
 *	curl-loader.c  libcurl loaded on the first request (curl-api.h)
 */
#pragma once

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The proxy's address inside a sandbox (an os sandbox's network namespace, a microVM guest). */
#define MBX_NET_PROXY_PORT 3128
#define MBX_NET_PROXY_URL "http://127.0.0.1:3128"
/* Where the combined certificate bundle appears inside a sandbox. */
#define MBX_NET_CA_PATH "/etc/ssl/mimobox-ca.pem"

/* Defaults of the MBX_NET_LIMIT_* settings. */
#define MBX_NET_DEFAULT_REQUEST_BYTES (64ull << 20)
#define MBX_NET_DEFAULT_RESPONSE_BYTES (1ull << 30)
#define MBX_NET_DEFAULT_TIMEOUT_MS 300000u
#define MBX_NET_DEFAULT_IDLE_MS 30000u
#define MBX_NET_DEFAULT_CONNECTIONS 64u
#define MBX_NET_DEFAULT_REDIRECTS 5u
#define MBX_NET_LIMIT_MAX 6

/* Addresses a name may resolve to that are considered. */
#define MBX_NET_MAX_ADDRS 16

/* ==== policy.c ==== */

struct mbx_netaddr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
};

enum mbx_host_kind { MBX_HOST_NAME, MBX_HOST_IPV4, MBX_HOST_IPV6 };

struct mbx_host {
	enum mbx_host_kind kind;
	/* Names: lower case, without a trailing dot. Literals: the canonical
	 * text ("127.0.0.1", "::1"), whatever form was written. */
	char name[256];
	struct mbx_netaddr addr; /* literals only */
};

/*
 * Parses a host as written in a URL or a CONNECT target (without the port).
 * IPv6 literals come in brackets; `bare_v6` also accepts them without (for
 * config entries). A host whose last label is a number is an IPv4 literal
 * in one of the forms inet_aton() and browsers accept (2130706433,
 * 0177.0.0.1, 0x7f.1, 127.1) or is refused: such hosts never reach a
 * resolver, which would read them the same way.
 * Returns 0, or -1 with *why set (a static string).
 */
int mbx__host_parse(const char *s, size_t n, int bare_v6, struct mbx_host *out, const char **why);

/*
 * Parses a numeric IPv4 host in the WHATWG URL / inet_aton forms: one to
 * four dot-separated parts, each decimal, octal (leading 0) or hex (0x),
 * the last filling the remaining bytes; one trailing dot allowed. Returns 0
 * with the address in network order, or -1.
 */
int mbx__ipv4_parse_loose(const char *s, size_t n, struct in_addr *out);

/* Parses "host:port" (CONNECT) or "host[:port]" when default_port != 0.
 * Returns 0, or -1 with *why. */
int mbx__authority_parse(const char *s, size_t n, uint16_t default_port, struct mbx_host *host, uint16_t *port,
			 const char **why);

/* Whether the config's allow list admits the host on `port`; *rule names
 * the entry that did (borrowed from cfg). Names match entries exactly or
 * below a "*.suffix" entry; IP literals match only an equal literal entry.
 * An entry with a port ("example.com:443", "[2001:db8::1]:443") admits that
 * port only; *port_refused (when not NULL) is set when the host matched an
 * entry whose port differs. */
int mbx__net_host_allowed(const mbx_config *cfg, const struct mbx_host *h, uint16_t port, const char **rule,
			  int *port_refused);

/* One allow-list entry (or the host part of an HTTP rule) against a host and port, as above. */
int mbx__net_entry_matches(const char *entry, const struct mbx_host *h, uint16_t port, int *port_refused);

enum mbx_addr_class {
	MBX_ADDR_PUBLIC,  /* globally routable */
	MBX_ADDR_PRIVATE, /* loopback, RFC 1918, CGNAT, link-local, ULA...: needs allow_private */
	MBX_ADDR_NEVER,   /* multicast, unspecified, metadata, translated forms: always refused */
};

/* Classifies an address; *what describes the range ("loopback"...). */
enum mbx_addr_class mbx__net_classify(const struct mbx_netaddr *a, const char **what);

/* Formats an address as text (INET6_ADDRSTRLEN bytes). */
void mbx__netaddr_str(const struct mbx_netaddr *a, char *out, size_t len);

/* ==== netcfg.c ==== */

struct mbx_host_override {
	char *name; /* lower case */
	struct mbx_netaddr addr;
};

/* The network settings of a config beyond the policy and the allow list;
 * NULL in a config means every default. */
struct mbx_netcfg {
	struct mbx_host_override *ovr;
	size_t novr;
	int allow_private;
	char *ca_pem; /* concatenated PEM text of the added files, or NULL */
	size_t ca_len;
	uint64_t limit[MBX_NET_LIMIT_MAX + 1]; /* 0: the default */
	struct mbx_http_rule *rules;          /* in the order given */
	size_t nrules;
};

/* ==== rules.c ==== */

/* One HTTP rule: "[allow|deny] METHOD[,METHOD...]|* HOST[:PORT][/PATH]". */
struct mbx_http_rule {
	int deny;
	char *methods; /* "GET,POST" or "*"; owned */
	char *host;    /* an allow-list entry: name, *.suffix or literal, optional :port; owned */
	char *path;    /* a glob from '/', `*` matching any run of characters; owned */
	char *text;    /* the rule as given, for reasons; owned */
};

void mbx__http_rule_free(struct mbx_http_rule *r);
/* Copies a rule; MBX_OK or MBX_ENOMEM. */
int mbx__http_rule_dup(const struct mbx_http_rule *src, struct mbx_http_rule *out);

/* Whether any HTTP rule names the host (on this port). */
int mbx__net_has_http_rules(const mbx_config *cfg, const struct mbx_host *h, uint16_t port);

/*
 * The HTTP rules for one request: `connect` for a CONNECT tunnel (its
 * requests cannot be seen, so a host with rules is refused), else the
 * method and the request target (origin form, "/path?query"). Deny rules
 * are looked at first; then, when the host has rules, an allow rule must
 * match. A host without rules is left to the allow list. Returns 0 to go
 * ahead, or -1 with the reason written to `why`.
 */
int mbx__net_http_check(const mbx_config *cfg, const struct mbx_host *h, uint16_t port, int connect,
			const char *method, size_t method_len, const char *target, size_t target_len, char *why,
			size_t whylen);

/* A limit of the config, default applied. */
uint64_t mbx__net_limit(const mbx_config *cfg, mbx_net_limit_t which);
int mbx__net_allow_private(const mbx_config *cfg);
/* The override of a (lower-case) name, or NULL. */
const struct mbx_netaddr *mbx__net_override(const mbx_config *cfg, const char *name);
/* The extra CA certificates (PEM), or NULL. */
const char *mbx__net_ca_pem(const mbx_config *cfg, size_t *len);
/* The host's bundle followed by the config's certificates; malloc'd. */
int mbx__net_ca_bundle(const mbx_config *cfg, char **out, size_t *len);
/* Adds the proxy variables (allow-domains: HTTP_PROXY... to
 * MBX_NET_PROXY_URL, NO_PROXY for loopback) and the certificate variables
 * (extra CAs: MBX_NET_CA_PATH) to the sandbox's environment, unless the
 * config set them. Shared by the os and microvm backends. */
int mbx__net_env(mbx_config *cfg, mbx_error **err);

/* ==== decide.c ==== */

/* How names become addresses; replaceable for tests. `resolve` fills at
 * most `max` addresses and returns 0 or an EAI_* code. `connect` returns a
 * connected non-blocking stream socket or -errno. */
struct mbx_net_hooks {
	int (*resolve)(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n);
	int (*connect)(void *ud, const struct mbx_netaddr *a, uint16_t port, int timeout_ms, int stop_fd);
	void *ud;
};

enum mbx_net_verdict_internal {
	MBX_NETV_OK,        /* go ahead: addrs holds the checked addresses */
	MBX_NETV_DENIED,    /* the policy refused (403) */
	MBX_NETV_UNRESOLVED /* an allowed name has no address (502) */
};

struct mbx_net_decision {
	struct mbx_netaddr addrs[MBX_NET_MAX_ADDRS]; /* checked, in resolver order */
	size_t naddrs;
	char reason[192];
	char address[48]; /* the refused address, for the log */
};

/*
 * The whole policy decision for a host: the network policy, the allow list
 * (for allow-domains), then resolution (an override, else hooks->resolve)
 * and the address checks. The caller connects only to d->addrs: the same
 * resolution that was checked, so a second answer (DNS rebinding) is never
 * used.
 */
enum mbx_net_verdict_internal mbx__net_decide(const mbx_config *cfg, const struct mbx_net_hooks *hooks,
					      const struct mbx_host *host, uint16_t port, struct mbx_net_decision *d);

/* The default hooks: getaddrinfo() and a non-blocking connect() with a
 * timeout (stop_fd, when >= 0, aborts the wait when it becomes readable). */
extern const struct mbx_net_hooks mbx__net_default_hooks;

/* ==== httpparse.c ==== */

#define MBX_HTTP_MAX_HEADERS 100
#define MBX_HTTP_MAX_HEAD (32u * 1024)

struct mbx_http_field {
	const char *name;
	size_t name_len;
	const char *value; /* without surrounding white space */
	size_t value_len;
};

struct mbx_http_head {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int minor;        /* HTTP/1.<minor> */
	struct mbx_http_field f[MBX_HTTP_MAX_HEADERS];
	size_t nf;
	size_t head_len;  /* bytes up to and including the empty line */
};

/*
 * Parses a request head from buf[0, len). Returns 1 when complete, 0 when
 * more bytes are needed, -1 when malformed (*status and *why say how to
 * answer: 400, 431, 505...). Strict: CRLF line ends only, no obs-fold, no
 * white space before a colon, tokens checked.
 */
int mbx__http_parse_head(const char *buf, size_t len, struct mbx_http_head *h, int *status, const char **why);

/* A request read as a proxy request. */
struct mbx_proxy_req {
	int connect;           /* CONNECT host:port */
	struct mbx_host host;
	uint16_t port;
	const char *path;      /* forward: origin-form target ("/..."), into the head */
	size_t path_len;
	uint64_t content_length; /* forward only */
};

/*
 * Reads a parsed head as a proxy request: CONNECT with an authority, or an
 * absolute http:// URL for forwarding. The Host header, when present (it
 * must be for HTTP/1.1 forwarding), must name the same host and port as
 * the target. Returns 0, or -1 with *status and *why.
 */
int mbx__http_proxy_req(const struct mbx_http_head *h, struct mbx_proxy_req *r, int *status, const char **why);

/* Case-insensitive comparison of a field name. */
int mbx__http_name_is(const struct mbx_http_field *f, const char *name);

/* ==== netlog.c ==== */

#define MBX_NETLOG_KEEP 4096

struct mbx_netlog_entry {
	uint64_t seq;
	uint64_t time_us;
	char source[8];
	char method[24];
	char host[256];
	uint16_t port;
	char address[48];
	uint8_t verdict;
	int status;
	char reason[192];
	uint64_t up, down;
};

struct mbx_netlog;

int mbx__netlog_new(struct mbx_netlog **out);
/* Takes a reference; mbx__netlog_free() drops one and frees with the last. */
struct mbx_netlog *mbx__netlog_ref(struct mbx_netlog *log);
void mbx__netlog_free(struct mbx_netlog *log);
/* Appends an entry (e->seq and e->time_us are set here); returns its seq. */
uint64_t mbx__netlog_add(struct mbx_netlog *log, struct mbx_netlog_entry *e);
/* Updates the outcome of entry `seq` if it is still kept. */
void mbx__netlog_update(struct mbx_netlog *log, uint64_t seq, uint8_t verdict, int status, const char *reason,
			uint64_t up, uint64_t down);

/* ==== the per-sandbox network state (sandbox.c creates it) ==== */

struct mbx_net {
	struct mbx_netlog *log;
};

/* ==== proxy.c ==== */

struct mbx_netproxy;

/* Creates a proxy applying cfg's policy (copied) and logging to `log` (a
 * reference is taken). `hooks` NULL: the defaults. */
int mbx__netproxy_new(struct mbx_netproxy **out, const mbx_config *cfg, struct mbx_netlog *log,
		      const struct mbx_net_hooks *hooks, mbx_error **err);
/* Serves every connection accepted on `listen_fd` (taken over, closed by
 * the proxy) from a thread of its own. */
int mbx__netproxy_listen(struct mbx_netproxy *p, int listen_fd, mbx_error **err);
/* Serves one connected stream socket (taken over). */
int mbx__netproxy_serve(struct mbx_netproxy *p, int fd, mbx_error **err);
/* Stops accepting and cuts every connection. Waits briefly for the
 * connection threads; one stuck in a name lookup (which nothing can
 * interrupt) frees the proxy itself when it ends, so this never hangs. */
void mbx__netproxy_free(struct mbx_netproxy *p);
