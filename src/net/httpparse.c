/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict HTTP/1.1 request-head parser (RFC 9112) and its reading as a
 * proxy request. The bytes come from inside the sandbox, so the parser
 * accepts one spelling of each thing and refuses the rest: CRLF line ends
 * only, no line folding, no white space between a field name and its colon,
 * one Host and at most one Content-Length, no request bodies in transfer
 * codings. Ambiguity between what the proxy checks and what a server reads
 * is how request smuggling works; refusing it costs a few odd clients.
 * Pure functions; fuzz/fuzz-http.c feeds them arbitrary bytes.
 */
#include <string.h>
#include <strings.h>

#include "net.h"

#define MAX_METHOD 32
#define MAX_TARGET 8192

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int fail(int *status, const char **why, int code, const char *text)
{
	*status = code;
	*why = text;
	return -1;
}

/* Checks the method token of a head still arriving, so a client speaking
 * something else (TLS straight at the proxy) is refused at once. */
static int method_prefix_ok(const char *buf, size_t len)
{
	for (size_t i = 0; i < len && i <= MAX_METHOD; i++) {
		if (buf[i] == ' ')
			return i > 0;
		if (!is_tchar((unsigned char)buf[i]))
			return 0;
	}
	return len <= MAX_METHOD;
}

static int parse_request_line(const char *s, size_t n, struct mbx_http_head *h, int *status, const char **why)
{
	const char *sp1 = memchr(s, ' ', n), *sp2;
	size_t rest;

	if (sp1 == NULL || sp1 == s || (size_t)(sp1 - s) > MAX_METHOD)
		return fail(status, why, 400, "malformed request line");
	for (const char *p = s; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(status, why, 400, "invalid character in the method");
	rest = n - (size_t)(sp1 - s) - 1;
	sp2 = memchr(sp1 + 1, ' ', rest);
	if (sp2 == NULL || sp2 == sp1 + 1)
		return fail(status, why, 400, "malformed request line");
	if ((size_t)(sp2 - sp1 - 1) > MAX_TARGET)
		return fail(status, why, 414, "request target too long");
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return fail(status, why, 400, "invalid character in the request target");
	rest = n - (size_t)(sp2 - s) - 1;
	if (rest == 8 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0 && (sp2[8] == '0' || sp2[8] == '1')) {
		h->minor = sp2[8] - '0';
	} else if (rest == 8 && memcmp(sp2 + 1, "HTTP/", 5) == 0 && sp2[6] >= '0' && sp2[6] <= '9' && sp2[7] == '.' &&
		   sp2[8] >= '0' && sp2[8] <= '9') {
		return fail(status, why, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	} else {
		return fail(status, why, 400, "malformed request line");
	}
	h->method = s;
	h->method_len = (size_t)(sp1 - s);
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - sp1 - 1);
	return 0;
}

static int parse_field(const char *s, size_t n, struct mbx_http_head *h, int *status, const char **why)
{
	const char *colon = memchr(s, ':', n), *v, *end = s + n;

	if (s[0] == ' ' || s[0] == '\t')
		return fail(status, why, 400, "folded header line");
	if (colon == NULL || colon == s)
		return fail(status, why, 400, "malformed header line");
	for (const char *p = s; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(status, why, 400, "invalid character in a header name");
	for (const char *p = colon + 1; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(status, why, 400, "control character in a header value");
	}
	if (h->nf == MBX_HTTP_MAX_HEADERS)
		return fail(status, why, 431, "too many header fields");
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	h->f[h->nf].name = s;
	h->f[h->nf].name_len = (size_t)(colon - s);
	h->f[h->nf].value = v;
	h->f[h->nf].value_len = (size_t)(end - v);
	h->nf++;
	return 0;
}

int mbx__http_parse_head(const char *buf, size_t len, struct mbx_http_head *h, int *status, const char **why)
{
	size_t pos = 0;
	int first = 1;

	memset(h, 0, sizeof(*h));
	if (!method_prefix_ok(buf, len))
		return fail(status, why, 400, "not an HTTP request");
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end, n;
		const char *cr;

		if (nl == NULL) {
			/* A CR must be followed by LF; anything else is a bare CR. */
			cr = memchr(buf + pos, '\r', len - pos);
			if (cr && (size_t)(cr - buf) + 1 < len)
				return fail(status, why, 400, "bare CR in the request head");
			if (len >= MBX_HTTP_MAX_HEAD)
				return fail(status, why, first ? 414 : 431, "request head too large");
			return 0;
		}
		end = (size_t)(nl - buf);
		if (end == pos || buf[end - 1] != '\r')
			return fail(status, why, 400, "bare LF in the request head");
		n = end - 1 - pos;
		if (memchr(buf + pos, '\r', n))
			return fail(status, why, 400, "bare CR in the request head");
		if (end + 1 > MBX_HTTP_MAX_HEAD)
			return fail(status, why, first ? 414 : 431, "request head too large");
		if (first) {
			if (parse_request_line(buf + pos, n, h, status, why) < 0)
				return -1;
			first = 0;
		} else if (n == 0) {
			h->head_len = end + 1;
			return 1;
		} else if (parse_field(buf + pos, n, h, status, why) < 0) {
			return -1;
		}
		pos = end + 1;
	}
}

int mbx__http_name_is(const struct mbx_http_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* Reads a Content-Length value: digits only, at most 18 of them. */
static int parse_length(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int same_host(const struct mbx_host *a, uint16_t pa, const struct mbx_host *b, uint16_t pb)
{
	return a->kind == b->kind && pa == pb && strcmp(a->name, b->name) == 0;
}

int mbx__http_proxy_req(const struct mbx_http_head *h, struct mbx_proxy_req *r, int *status, const char **why)
{
	const struct mbx_http_field *host_f = NULL;
	int have_length = 0;
	size_t i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < h->nf; i++) {
		const struct mbx_http_field *f = &h->f[i];

		if (mbx__http_name_is(f, "Host")) {
			if (host_f)
				return fail(status, why, 400, "more than one Host header");
			host_f = f;
		} else if (mbx__http_name_is(f, "Content-Length")) {
			if (have_length || parse_length(f->value, f->value_len, &r->content_length) < 0)
				return fail(status, why, 400, "invalid or repeated Content-Length");
			have_length = 1;
		} else if (mbx__http_name_is(f, "Transfer-Encoding")) {
			return fail(status, why, 501, "request bodies in a transfer coding are not supported: send a Content-Length");
		}
	}

	if (h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0) {
		r->connect = 1;
		if (r->content_length)
			return fail(status, why, 400, "CONNECT with a body");
		if (mbx__authority_parse(h->target, h->target_len, 0, &r->host, &r->port, why) < 0) {
			*status = 400;
			return -1;
		}
	} else {
		const char *t = h->target, *auth, *end = h->target + h->target_len, *p;

		if (h->target_len >= 8 && strncasecmp(t, "https://", 8) == 0)
			return fail(status, why, 400, "the proxy does not originate TLS: use CONNECT for https");
		if (h->target_len < 7 || strncasecmp(t, "http://", 7) != 0)
			return fail(status, why, 400, "not a proxy request: the target must be an absolute http:// URL");
		if (memchr(t, '#', h->target_len))
			return fail(status, why, 400, "fragment in the request target");
		auth = t + 7;
		for (p = auth; p < end && *p != '/' && *p != '?'; p++)
			;
		if (mbx__authority_parse(auth, (size_t)(p - auth), 80, &r->host, &r->port, why) < 0) {
			*status = 400;
			return -1;
		}
		r->path = p;
		r->path_len = (size_t)(end - p);
		if (host_f == NULL && h->minor == 1)
			return fail(status, why, 400, "HTTP/1.1 request without a Host header");
	}
	if (host_f) {
		struct mbx_host hh;
		uint16_t hp = 0;

		if (mbx__authority_parse(host_f->value, host_f->value_len, r->connect ? r->port : 80, &hh, &hp, why) < 0) {
			*status = 400;
			*why = "invalid Host header";
			return -1;
		}
		if (!same_host(&hh, hp, &r->host, r->port))
			return fail(status, why, 400, "the Host header names another host than the request target");
	}
	return 0;
}
