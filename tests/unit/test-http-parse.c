/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy's request-head parser and its reading of proxy requests. */
#include <string.h>

#include "tap.h"
#include "net/net.h"

/* Parses a whole head; returns the parser's result, *status on errors. */
static int parse(const char *text, struct mbx_http_head *h, int *status)
{
	const char *why = NULL;
	int rc;

	*status = 0;
	rc = mbx__http_parse_head(text, strlen(text), h, status, &why);
	if (rc < 0)
		TAP_CHECK(why != NULL && *status >= 400);
	return rc;
}

/* Parses and reads as a proxy request; returns 0 or the error status. */
static int proxy(const char *text, struct mbx_proxy_req *r)
{
	static struct mbx_http_head h;
	const char *why = NULL;
	int status = 0, rc = parse(text, &h, &status);

	if (rc == 0)
		return -1;
	if (rc < 0)
		return status;
	if (mbx__http_proxy_req(&h, r, &status, &why) < 0) {
		TAP_CHECK(why != NULL);
		return status;
	}
	return 0;
}

static void test_valid(void)
{
	struct mbx_http_head h;
	struct mbx_proxy_req r;
	int status;

	TAP_CHECK_INT(parse("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\nBODY", &h, &status), 1);
	TAP_CHECK_INT(h.method_len, 3);
	TAP_CHECK_INT(h.minor, 1);
	TAP_CHECK_INT(h.nf, 2);
	TAP_CHECK_INT(h.f[1].value_len, 1);
	TAP_CHECK(memcmp(h.f[1].value, "v", 1) == 0);
	TAP_CHECK_INT(h.head_len, strlen("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\n"));

	TAP_CHECK_INT(proxy("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &r), 0);
	TAP_CHECK(r.connect);
	TAP_CHECK_STR(r.host.name, "example.com");
	TAP_CHECK_INT(r.port, 443);
	TAP_CHECK_INT(proxy("CONNECT [::1]:8443 HTTP/1.0\r\n\r\n", &r), 0);
	TAP_CHECK_STR(r.host.name, "::1");
	TAP_CHECK_INT(proxy("CONNECT EXAMPLE.com:443 HTTP/1.1\r\nHost: example.COM\r\n\r\n", &r), 0);

	TAP_CHECK_INT(proxy("GET http://Example.com:8080/x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", &r), 0);
	TAP_CHECK(!r.connect);
	TAP_CHECK_STR(r.host.name, "example.com");
	TAP_CHECK_INT(r.port, 8080);
	TAP_CHECK_INT(r.path_len, 2);
	TAP_CHECK_INT(proxy("GET http://example.com HTTP/1.1\r\nHost: example.com:80\r\n\r\n", &r), 0);
	TAP_CHECK_INT(r.port, 80);
	TAP_CHECK_INT(r.path_len, 0);
	TAP_CHECK_INT(proxy("GET HTTP://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n", &r), 0);
	TAP_CHECK_INT(proxy("POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\n\r\n", &r), 0);
	TAP_CHECK_INT(r.content_length, 12);
	TAP_CHECK_INT(proxy("GET http://example.com/ HTTP/1.0\r\n\r\n", &r), 0);   /* 1.0 needs no Host */
}

static void test_incomplete(void)
{
	struct mbx_http_head h;
	int status;

	TAP_CHECK_INT(parse("", &h, &status), 0);
	TAP_CHECK_INT(parse("GET", &h, &status), 0);
	TAP_CHECK_INT(parse("CONNECT a:1 HTTP/1.1\r\n", &h, &status), 0);
	TAP_CHECK_INT(parse("CONNECT a:1 HTTP/1.1\r\nHost: a\r", &h, &status), 0);
	TAP_CHECK_INT(parse("CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r", &h, &status), 0);
}

static void test_malformed(void)
{
	static const struct {
		const char *text;
		int status;
	} bad[] = {
		{ "\x16\x03\x01\x02\x00", 400 },                            /* TLS at the proxy: refused at once */
		{ " GET http://a/ HTTP/1.1\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\nHost: a\r\n\r\n", 400 },          /* bare LF */
		{ "GET http://a/ HTTP/1.1\r\nHost: a\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nHost: a\r\n\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nHo\rst: a\r\n\r\n", 400 },      /* bare CR */
		{ "GET http://a/ HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n", 400 },       /* space before the colon */
		{ "GET http://a/ HTTP/1.1\r\n: a\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nNoColon\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nX: a\x01\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400 },
		{ "GET http://a/\x80 HTTP/1.1\r\n\r\n", 400 },
		{ "GET  http://a/ HTTP/1.1\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1 \r\n\r\n", 400 },
		{ "GET http://a/ HTTP/2.0\r\n\r\n", 505 },
		{ "GET http://a/ HTTP/1.2\r\n\r\n", 505 },
		{ "GET http://a/ http/1.1\r\n\r\n", 400 },
		{ "G(T http://a/ HTTP/1.1\r\n\r\n", 400 },
		{ "GET\r\n\r\n", 400 },
	};
	struct mbx_http_head h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int status = 0, rc = parse(bad[i].text, &h, &status);

		if (rc != -1 || status != bad[i].status) {
			printf("#   case %zu: rc %d status %d, expected -1 and %d\n", i, rc, status, bad[i].status);
			tap_failed_now = 1;
		}
	}
}

static void test_limits(void)
{
	static char big[MBX_HTTP_MAX_HEAD + 100];
	struct mbx_http_head h;
	int status = 0;
	size_t o;

	/* A request line that never ends. */
	memcpy(big, "GET http://a/", 13);
	memset(big + 13, 'a', sizeof(big) - 14);
	big[sizeof(big) - 1] = '\0';
	TAP_CHECK_INT(parse(big, &h, &status), -1);
	TAP_CHECK(status == 414);
	/* Too many fields. */
	o = (size_t)sprintf(big, "GET http://a/ HTTP/1.1\r\n");
	for (int i = 0; i < MBX_HTTP_MAX_HEADERS + 1; i++)
		o += (size_t)sprintf(big + o, "X-%d: y\r\n", i);
	sprintf(big + o, "\r\n");
	TAP_CHECK_INT(parse(big, &h, &status), -1);
	TAP_CHECK_INT(status, 431);
	/* Fields that never end. */
	o = (size_t)sprintf(big, "GET http://a/ HTTP/1.1\r\nX: ");
	memset(big + o, 'v', sizeof(big) - o - 1);
	big[sizeof(big) - 1] = '\0';
	TAP_CHECK_INT(parse(big, &h, &status), -1);
	TAP_CHECK_INT(status, 431);
}

static void test_proxy_requests(void)
{
	static const struct {
		const char *text;
		int status;
	} bad[] = {
		{ "GET /path HTTP/1.1\r\nHost: a\r\n\r\n", 400 },                          /* origin form */
		{ "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },                     /* no TLS origination */
		{ "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\n\r\n", 400 },                                 /* 1.1 without Host */
		{ "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400 },                      /* Host names another host */
		{ "GET http://a/ HTTP/1.1\r\nHost: a:8080\r\n\r\n", 400 },                 /* ...or another port */
		{ "GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400 },           /* two Hosts */
		{ "GET http://a/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400 },
		{ "GET http://allowed.com@evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n", 400 }, /* user info */
		{ "GET http://a/#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400 },                      /* empty host */
		{ "GET http://a:0/ HTTP/1.1\r\nHost: a:0\r\n\r\n", 400 },
		{ "GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
		{ "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
		{ "CONNECT a HTTP/1.1\r\n\r\n", 400 },                                     /* no port */
		{ "CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", 400 },
		{ "CONNECT a:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400 },
		{ "CONNECT http://a:443 HTTP/1.1\r\n\r\n", 400 },
		{ "CONNECT user@a:443 HTTP/1.1\r\n\r\n", 400 },
		{ "CONNECT a:443/x HTTP/1.1\r\n\r\n", 400 },
		{ "CONNECT 1.2.3.4.5:443 HTTP/1.1\r\n\r\n", 400 },
		{ "CONNECT a.b.123:443 HTTP/1.1\r\n\r\n", 400 },
		{ "connect a:443 HTTP/1.1\r\n\r\n", 400 },                                 /* methods are case-sensitive */
	};
	struct mbx_proxy_req r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = proxy(bad[i].text, &r);

		if (st != bad[i].status) {
			printf("#   case %zu (%.40s...): %d, expected %d\n", i, bad[i].text, st, bad[i].status);
			tap_failed_now = 1;
		}
	}
	/* IP literals are read as such, in every spelling. */
	TAP_CHECK_INT(proxy("CONNECT 2130706433:80 HTTP/1.1\r\n\r\n", &r), 0);
	TAP_CHECK_INT(r.host.kind, MBX_HOST_IPV4);
	TAP_CHECK_STR(r.host.name, "127.0.0.1");
	TAP_CHECK_INT(proxy("CONNECT 0177.0.0.1:80 HTTP/1.1\r\n\r\n", &r), 0);
	TAP_CHECK_STR(r.host.name, "127.0.0.1");
	TAP_CHECK_INT(proxy("GET http://0x7f.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", &r), 0);
	TAP_CHECK_STR(r.host.name, "127.0.0.1");
	TAP_CHECK_INT(proxy("GET http://[::ffff:7f00:1]/ HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\n\r\n", &r), 0);
	TAP_CHECK_INT(r.host.kind, MBX_HOST_IPV6);
}

static const struct tap_case cases[] = {
	{ "http-parse/valid", test_valid },
	{ "http-parse/incomplete", test_incomplete },
	{ "http-parse/malformed", test_malformed },
	{ "http-parse/limits", test_limits },
	{ "http-parse/proxy-requests", test_proxy_requests },
};

TAP_MAIN(cases)
