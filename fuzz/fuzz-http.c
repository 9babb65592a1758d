/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the proxy's reading of what a sandbox sends it. The input
 * goes through the request-head parser whole and cut at every line end
 * (as it arrives over a socket), then through the proxy-request reading,
 * the host and authority parsers and the address classes. Invariants are
 * checked with __builtin_trap(): everything the parser returns lies inside
 * the input, a complete head is complete at one length only, and a host
 * that passes is either a literal or a lower-case LDH name.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const char *buf, size_t len, const char *p, size_t n)
{
	if (n && (p < buf || p + n > buf + len))
		__builtin_trap();
}

static void check_host(const struct mbx_host *h)
{
	size_t n = strlen(h->name);

	if (n == 0 || n > 253)
		__builtin_trap();
	if (h->kind == MBX_HOST_NAME) {
		for (size_t i = 0; i < n; i++) {
			char c = h->name[i];

			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
				__builtin_trap();
		}
	} else {
		const char *what;

		(void)mbx__net_classify(&h->addr, &what);
		if (what == NULL)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why = NULL;
	struct mbx_http_head h;
	struct mbx_proxy_req r;
	struct mbx_host host;
	uint16_t port = 0;
	int status = 0, rc;

	if (size > MBX_HTTP_MAX_HEAD + 64)
		size = MBX_HTTP_MAX_HEAD + 64;
	rc = mbx__http_parse_head(buf, size, &h, &status, &why);
	if (rc < 0 && (why == NULL || status < 400 || status > 505))
		__builtin_trap();
	if (rc == 1) {
		if (h.head_len > size || h.head_len < 4 || memcmp(buf + h.head_len - 4, "\r\n\r\n", 4) != 0)
			__builtin_trap();
		check_inside(buf, size, h.method, h.method_len);
		check_inside(buf, size, h.target, h.target_len);
		for (size_t i = 0; i < h.nf; i++) {
			check_inside(buf, size, h.f[i].name, h.f[i].name_len);
			check_inside(buf, size, h.f[i].value, h.f[i].value_len);
		}
		/* Arriving in pieces: every shorter prefix is incomplete or
		 * already wrong, never complete. */
		for (size_t k = 0; k < h.head_len; k++) {
			struct mbx_http_head h2;
			int s2 = 0;

			if (buf[k] != '\n')
				continue;
			if (mbx__http_parse_head(buf, k + 1, &h2, &s2, &why) == 1 && k + 1 != h.head_len)
				__builtin_trap();
		}
		if (mbx__http_proxy_req(&h, &r, &status, &why) == 0) {
			check_host(&r.host);
			if (r.port == 0)
				__builtin_trap();
			if (!r.connect)
				check_inside(buf, size, r.path, r.path_len);
		} else if (why == NULL || status < 400) {
			__builtin_trap();
		}
	}
	/* The same bytes as a host and as an authority. */
	if (size <= 300) {
		if (mbx__host_parse(buf, size, size & 1, &host, &why) == 0)
			check_host(&host);
		if (mbx__authority_parse(buf, size, (uint16_t)(size & 2 ? 80 : 0), &host, &port, &why) == 0) {
			check_host(&host);
			if (port == 0)
				__builtin_trap();
		}
	}
	return 0;
}
