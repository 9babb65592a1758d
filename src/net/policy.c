/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure policy checks: what a host is (a name or an IP literal in any of the
 * forms resolvers accept), whether the allow list admits it, and what kind
 * of address an address is. No I/O here; tests/unit/test-netpolicy.c covers
 * every range and form.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*
 * One part of a loose IPv4 literal: "0x.." hex, "0.." octal, else decimal,
 * as the WHATWG URL standard's IPv4 number parser and inet_aton() read it.
 * An empty hex part ("0x") is zero, as in the standard. Returns 0 or -1
 * (not a number, or above 2^32 - 1).
 */
static int ipv4_part(const char *s, size_t n, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (n == 0)
		return -1;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		n -= 2;
	} else if (n >= 2 && s[0] == '0') {
		base = 8;
		s++;
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (is_digit(s[i]))
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && is_hex(s[i]))
			d = (unsigned)(lower(s[i]) - 'a' + 10);
		else
			return -1;
		if (d >= base)
			return -1;
		v = v * base + d;
		if (v > 0xffffffffull)
			return -1;
	}
	*out = v;
	return 0;
}

int mbx__ipv4_parse_loose(const char *s, size_t n, struct in_addr *out)
{
	uint64_t part[4], v;
	size_t np = 0, start = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (np == 4 || ipv4_part(s + start, i - start, &part[np]) < 0)
			return -1;
		np++;
		start = i + 1;
	}
	v = 0;
	for (size_t i = 0; i + 1 < np; i++) {
		if (part[i] > 255)
			return -1;
		v |= part[i] << (8 * (3 - i));
	}
	if (part[np - 1] >= (1ull << (8 * (5 - np))))
		return -1;
	v |= part[np - 1];
	out->s_addr = htonl((uint32_t)v);
	return 0;
}

/* Whether the last label looks like a number: then the host is an IPv4
 * literal or nothing (the URL standard's "ends in a number"). */
static int ends_in_number(const char *s, size_t n)
{
	size_t start;

	if (n > 0 && s[n - 1] == '.')
		n--;
	start = n;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == n)
		return 0;
	if (n - start >= 2 && s[start] == '0' && (s[start + 1] == 'x' || s[start + 1] == 'X')) {
		for (size_t i = start + 2; i < n; i++)
			if (!is_hex(s[i]))
				return 0;
		return 1;
	}
	for (size_t i = start; i < n; i++)
		if (!is_digit(s[i]))
			return 0;
	return 1;
}

void mbx__netaddr_str(const struct mbx_netaddr *a, char *out, size_t len)
{
	if (inet_ntop(a->family, a->family == AF_INET ? (const void *)&a->a.v4 : (const void *)&a->a.v6, out,
		      (socklen_t)len) == NULL && len)
		out[0] = '\0';
}

int mbx__host_parse(const char *s, size_t n, int bare_v6, struct mbx_host *out, const char **why)
{
	char buf[256];
	size_t label = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0) {
		*why = "empty host";
		return -1;
	}
	if (memchr(s, '\0', n)) {
		*why = "NUL byte in host";
		return -1;
	}
	if (s[0] == '[' || (bare_v6 && memchr(s, ':', n))) {
		if (s[0] == '[') {
			if (n < 3 || s[n - 1] != ']') {
				*why = "unterminated IPv6 literal";
				return -1;
			}
			s++;
			n -= 2;
		}
		/* No zone identifiers: "%eth0" would pick an interface. */
		if (n >= sizeof(buf) || memchr(s, '%', n)) {
			*why = "malformed IPv6 literal";
			return -1;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &out->addr.a.v6) != 1) {
			*why = "malformed IPv6 literal";
			return -1;
		}
		out->kind = MBX_HOST_IPV6;
		out->addr.family = AF_INET6;
		mbx__netaddr_str(&out->addr, out->name, sizeof(out->name));
		return 0;
	}
	if (ends_in_number(s, n)) {
		if (mbx__ipv4_parse_loose(s, n, &out->addr.a.v4) < 0) {
			*why = "host ends in a number but is not an IPv4 address";
			return -1;
		}
		out->kind = MBX_HOST_IPV4;
		out->addr.family = AF_INET;
		mbx__netaddr_str(&out->addr, out->name, sizeof(out->name));
		return 0;
	}
	/* A name: letters, digits, '-' and '_' in labels of 1 to 63 bytes, 253
	 * bytes in all, one trailing dot dropped. Nothing else (no percent
	 * escapes, no non-ASCII: IDNs arrive as punycode). */
	if (s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253) {
		*why = "host name is empty or longer than 253 bytes";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char c = lower(s[i]);

		if (c == '.') {
			if (label == 0 || out->name[i - 1] == '-') {
				*why = "empty label or label ending in `-` in host name";
				return -1;
			}
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || (c == '-' && label > 0)) {
			if (++label > 63) {
				*why = "label longer than 63 bytes in host name";
				return -1;
			}
		} else {
			*why = "invalid character in host name";
			return -1;
		}
		out->name[i] = c;
	}
	if (out->name[n - 1] == '-') {
		*why = "label ending in `-` in host name";
		return -1;
	}
	out->name[n] = '\0';
	out->kind = MBX_HOST_NAME;
	return 0;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int mbx__authority_parse(const char *s, size_t n, uint16_t default_port, struct mbx_host *host, uint16_t *port,
			 const char **why)
{
	size_t hlen = n;
	const char *colon = NULL;

	if (memchr(s, '@', n)) {
		*why = "user information in the authority";
		return -1;
	}
	if (n > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', n);

		if (end == NULL) {
			*why = "unterminated IPv6 literal";
			return -1;
		}
		hlen = (size_t)(end - s) + 1;
		if (hlen < n) {
			if (s[hlen] != ':') {
				*why = "junk after an IPv6 literal";
				return -1;
			}
			colon = s + hlen;
		}
	} else {
		for (size_t i = n; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				hlen = i - 1;
				break;
			}
		if (colon && memchr(s, ':', hlen)) {
			*why = "IPv6 literal without brackets";
			return -1;
		}
	}
	if (colon) {
		if (parse_port(colon + 1, n - hlen - 1, port) < 0) {
			*why = "invalid port";
			return -1;
		}
	} else if (default_port) {
		*port = default_port;
	} else {
		*why = "no port in the target";
		return -1;
	}
	return mbx__host_parse(s, hlen, 0, host, why);
}

/* ==== the allow list ==== */

/*
 * Splits an allow-list entry into its host part (d[0, *host_len)) and its
 * port: "example.com:443", "[2001:db8::1]:443", "192.0.2.1:80". *port is 0
 * for an entry without one (any port), and -1 is returned for a port that
 * is not 1..65535. A bare IPv6 literal ("2001:db8::1") has no port.
 */
static int split_port(const char *d, size_t *host_len, uint16_t *port)
{
	const char *colon = strrchr(d, ':');
	size_t len = strlen(d);
	unsigned long v = 0;
	const char *p;

	*host_len = len;
	*port = 0;
	if (colon == NULL)
		return 0;
	/* A colon inside an unbracketed IPv6 literal is not a port separator. */
	if (d[0] == '[' ? colon[-1] != ']' : memchr(d, ':', (size_t)(colon - d)) != NULL)
		return 0;
	if (colon[1] == '\0')
		return -1;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5)
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*host_len = (size_t)(colon - d);
	*port = (uint16_t)v;
	return 0;
}

/* Whether the host part d[0, dn) of an entry names h. */
static int entry_host_matches(const char *d, size_t dn, const struct mbx_host *h)
{
	struct mbx_host e;
	const char *why;
	size_t hn, sn;

	if (strncmp(d, "*.", 2) == 0) {
		/* Wildcards cover names only, never literals. */
		if (h->kind != MBX_HOST_NAME || mbx__host_parse(d + 2, dn - 2, 0, &e, &why) < 0 ||
		    e.kind != MBX_HOST_NAME)
			return 0;
		hn = strlen(h->name);
		sn = strlen(e.name);
		return hn > sn + 1 && h->name[hn - sn - 1] == '.' && strcmp(h->name + hn - sn, e.name) == 0;
	}
	if (mbx__host_parse(d, dn, 1, &e, &why) < 0 || e.kind != h->kind)
		return 0;
	return strcmp(e.name, h->name) == 0;
}

int mbx__net_entry_matches(const char *d, const struct mbx_host *h, uint16_t port, int *port_refused)
{
	size_t dn;
	uint16_t want;

	if (split_port(d, &dn, &want) < 0 || !entry_host_matches(d, dn, h))
		return 0;
	/* An entry with a port admits that port only. */
	if (want != 0 && want != port) {
		if (port_refused)
			*port_refused = 1;
		return 0;
	}
	return 1;
}

int mbx__net_host_allowed(const mbx_config *cfg, const struct mbx_host *h, uint16_t port, const char **rule,
			  int *port_refused)
{
	if (port_refused)
		*port_refused = 0;
	for (size_t i = 0; i < cfg->ndomains; i++) {
		if (mbx__net_entry_matches(cfg->domains[i], h, port, port_refused)) {
			*rule = cfg->domains[i];
			return 1;
		}
	}
	return 0;
}

/* ==== address classes ==== */

struct range4 {
	uint32_t net;
	unsigned prefix;
	enum mbx_addr_class cls;
	const char *what;
};

/* Most specific first: the first match decides. IANA's special-purpose
 * registry, plus cloud metadata services. */
static const struct range4 ranges4[] = {
	{ 0xa9fea9fe, 32, MBX_ADDR_NEVER, "cloud metadata address" },            /* 169.254.169.254 */
	{ 0x646464c8, 32, MBX_ADDR_NEVER, "cloud metadata address" },     /* 100.100.100.200 */
	{ 0x00000000, 8, MBX_ADDR_NEVER, "\"this network\" address (0.0.0.0/8)" },
	{ 0x0a000000, 8, MBX_ADDR_PRIVATE, "private address (RFC 1918)" },
	{ 0x64400000, 10, MBX_ADDR_PRIVATE, "shared address space (CGNAT, RFC 6598)" },
	{ 0x7f000000, 8, MBX_ADDR_PRIVATE, "loopback address" },
	{ 0xa9fe0000, 16, MBX_ADDR_PRIVATE, "link-local address" },
	{ 0xac100000, 12, MBX_ADDR_PRIVATE, "private address (RFC 1918)" },
	{ 0xc0000000, 24, MBX_ADDR_NEVER, "IETF protocol assignment (192.0.0.0/24)" },
	{ 0xc0000200, 24, MBX_ADDR_PRIVATE, "documentation address (TEST-NET-1)" },
	{ 0xc0586300, 24, MBX_ADDR_NEVER, "6to4 relay anycast address" },
	{ 0xc0a80000, 16, MBX_ADDR_PRIVATE, "private address (RFC 1918)" },
	{ 0xc6120000, 15, MBX_ADDR_PRIVATE, "benchmarking address (198.18.0.0/15)" },
	{ 0xc6336400, 24, MBX_ADDR_PRIVATE, "documentation address (TEST-NET-2)" },
	{ 0xcb007100, 24, MBX_ADDR_PRIVATE, "documentation address (TEST-NET-3)" },
	{ 0xe0000000, 4, MBX_ADDR_NEVER, "multicast address" },
	{ 0xffffffff, 32, MBX_ADDR_NEVER, "broadcast address" },
	{ 0xf0000000, 4, MBX_ADDR_NEVER, "reserved address (240.0.0.0/4)" },
};

struct range6 {
	uint8_t net[16];
	unsigned prefix;
	enum mbx_addr_class cls;
	const char *what;
};

static const struct range6 ranges6[] = {
	{ { 0 }, 128, MBX_ADDR_NEVER, "unspecified address" },
	{ { [15] = 1 }, 128, MBX_ADDR_PRIVATE, "loopback address" },
	{ { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 }, 128, MBX_ADDR_NEVER, "cloud metadata address" }, /* fd00:ec2::254 */
	{ { [10] = 0xff, [11] = 0xff }, 96, MBX_ADDR_NEVER, "IPv4-mapped IPv6 address" },
	{ { [8] = 0xff, [9] = 0xff }, 96, MBX_ADDR_NEVER, "IPv4-translated IPv6 address" },
	{ { 0 }, 96, MBX_ADDR_NEVER, "IPv4-compatible IPv6 address" },
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, MBX_ADDR_NEVER, "NAT64 address (64:ff9b::/96)" },
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, MBX_ADDR_NEVER, "local-use NAT64 address (64:ff9b:1::/48)" },
	{ { 0x01, 0x00 }, 64, MBX_ADDR_NEVER, "discard-only address (100::/64)" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, MBX_ADDR_NEVER, "Teredo address (2001::/32)" },
	{ { 0x20, 0x01, 0x00, 0x10 }, 28, MBX_ADDR_NEVER, "ORCHID address" },
	{ { 0x20, 0x01, 0x00, 0x20 }, 28, MBX_ADDR_NEVER, "ORCHIDv2 address" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, MBX_ADDR_PRIVATE, "documentation address (2001:db8::/32)" },
	{ { 0x20, 0x02 }, 16, MBX_ADDR_NEVER, "6to4 address (2002::/16)" },
	{ { 0xfc }, 7, MBX_ADDR_PRIVATE, "unique-local address (fc00::/7)" },
	{ { 0xfe, 0x80 }, 10, MBX_ADDR_PRIVATE, "link-local address" },
	{ { 0xfe, 0xc0 }, 10, MBX_ADDR_PRIVATE, "site-local address" },
	{ { 0xff }, 8, MBX_ADDR_NEVER, "multicast address" },
};

static int prefix_match6(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

enum mbx_addr_class mbx__net_classify(const struct mbx_netaddr *a, const char **what)
{
	if (a->family == AF_INET) {
		uint32_t v = ntohl(a->a.v4.s_addr);

		for (size_t i = 0; i < sizeof(ranges4) / sizeof(ranges4[0]); i++) {
			uint32_t mask = ranges4[i].prefix ? 0xffffffffu << (32 - ranges4[i].prefix) : 0;

			if ((v & mask) == ranges4[i].net) {
				*what = ranges4[i].what;
				return ranges4[i].cls;
			}
		}
		*what = "public address";
		return MBX_ADDR_PUBLIC;
	}
	if (a->family == AF_INET6) {
		for (size_t i = 0; i < sizeof(ranges6) / sizeof(ranges6[0]); i++) {
			if (prefix_match6(a->a.v6.s6_addr, ranges6[i].net, ranges6[i].prefix)) {
				*what = ranges6[i].what;
				return ranges6[i].cls;
			}
		}
		*what = "public address";
		return MBX_ADDR_PUBLIC;
	}
	*what = "address of an unknown family";
	return MBX_ADDR_NEVER;
}

int mbx__net_allow_entry_ok(const char *entry)
{
	struct mbx_host h;
	const char *why;
	size_t n;
	uint16_t port;

	if (split_port(entry, &n, &port) < 0)
		return 0;
	if (strncmp(entry, "*.", 2) == 0)
		return n > 2 && mbx__host_parse(entry + 2, n - 2, 0, &h, &why) == 0 && h.kind == MBX_HOST_NAME;
	return mbx__host_parse(entry, n, 1, &h, &why) == 0;
}
