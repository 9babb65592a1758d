/* SPDX-License-Identifier: Apache-2.0 */
/* The network policy's pure parts: host forms, IP literals in every form
 * resolvers accept, the allow list, address classes and the decision
 * (with a fake resolver). */
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include "tap.h"
#include "net/net.h"

static const char *v4(const char *s)
{
	static char out[64];
	struct in_addr a;

	if (mbx__ipv4_parse_loose(s, strlen(s), &a) < 0)
		return "invalid";
	inet_ntop(AF_INET, &a, out, sizeof(out));
	return out;
}

static void test_ipv4_forms(void)
{
	TAP_CHECK_STR(v4("127.0.0.1"), "127.0.0.1");
	TAP_CHECK_STR(v4("2130706433"), "127.0.0.1");        /* decimal */
	TAP_CHECK_STR(v4("0177.0.0.1"), "127.0.0.1");        /* octal */
	TAP_CHECK_STR(v4("0x7f.1"), "127.0.0.1");            /* hex, two parts */
	TAP_CHECK_STR(v4("0x7F.0.0.1"), "127.0.0.1");
	TAP_CHECK_STR(v4("0x7f000001"), "127.0.0.1");
	TAP_CHECK_STR(v4("017700000001"), "127.0.0.1");      /* octal, one part */
	TAP_CHECK_STR(v4("127.1"), "127.0.0.1");
	TAP_CHECK_STR(v4("127.0.1"), "127.0.0.1");
	TAP_CHECK_STR(v4("169.254.43518"), "169.254.169.254");
	TAP_CHECK_STR(v4("0xa9.0xfe.0xa9.0xfe"), "169.254.169.254");
	TAP_CHECK_STR(v4("10.0.0.1."), "10.0.0.1");          /* one trailing dot */
	TAP_CHECK_STR(v4("4294967295"), "255.255.255.255");
	TAP_CHECK_STR(v4("0"), "0.0.0.0");
	TAP_CHECK_STR(v4("256.0.0.1"), "invalid");
	TAP_CHECK_STR(v4("1.2.3.256"), "invalid");
	TAP_CHECK_STR(v4("1.2.65536"), "invalid");
	TAP_CHECK_STR(v4("1.16777216"), "invalid");
	TAP_CHECK_STR(v4("4294967296"), "invalid");
	TAP_CHECK_STR(v4("1.2.3.4.5"), "invalid");
	TAP_CHECK_STR(v4("08.0.0.1"), "invalid");            /* 8 is no octal digit */
	TAP_CHECK_STR(v4("0x1g"), "invalid");
	TAP_CHECK_STR(v4("1..2"), "invalid");
	TAP_CHECK_STR(v4(""), "invalid");
	TAP_CHECK_STR(v4("."), "invalid");
	TAP_CHECK_STR(v4("1.2.3.4.."), "invalid");
}

static int host(const char *s, struct mbx_host *h)
{
	const char *why = NULL;
	int rc = mbx__host_parse(s, strlen(s), 0, h, &why);

	TAP_CHECK(rc == 0 || why != NULL);
	return rc;
}

static void test_host_forms(void)
{
	struct mbx_host h;

	TAP_CHECK_INT(host("Example.COM.", &h), 0);
	TAP_CHECK_INT(h.kind, MBX_HOST_NAME);
	TAP_CHECK_STR(h.name, "example.com");
	TAP_CHECK_INT(host("a-b.c_d.example", &h), 0);
	TAP_CHECK_INT(host("1.2.3.4.example", &h), 0);   /* ends in a label, not a number */
	TAP_CHECK_INT(h.kind, MBX_HOST_NAME);
	TAP_CHECK_INT(host("2130706433", &h), 0);
	TAP_CHECK_INT(h.kind, MBX_HOST_IPV4);
	TAP_CHECK_STR(h.name, "127.0.0.1");
	TAP_CHECK_INT(host("0x7f.1", &h), 0);
	TAP_CHECK_STR(h.name, "127.0.0.1");
	TAP_CHECK_INT(host("0177.0.0.1", &h), 0);
	TAP_CHECK_STR(h.name, "127.0.0.1");
	TAP_CHECK_INT(host("[::1]", &h), 0);
	TAP_CHECK_INT(h.kind, MBX_HOST_IPV6);
	TAP_CHECK_STR(h.name, "::1");
	TAP_CHECK_INT(host("[0:0:0:0:0:0:0:1]", &h), 0);
	TAP_CHECK_STR(h.name, "::1");
	TAP_CHECK_INT(host("[::ffff:127.0.0.1]", &h), 0);
	TAP_CHECK_STR(h.name, "::ffff:127.0.0.1");
	/* Refused forms. */
	TAP_CHECK_INT(host("example.123", &h), -1);      /* ends in a number, not IPv4 */
	TAP_CHECK_INT(host("example.0x", &h), -1);       /* "0x" is a number: IPv4 or nothing */
	TAP_CHECK_INT(host("0x", &h), 0);
	TAP_CHECK_STR(h.name, "0.0.0.0");
	TAP_CHECK_INT(host("1.2.3.4.5", &h), -1);
	TAP_CHECK_INT(host("[fe80::1%eth0]", &h), -1);   /* zone ids */
	TAP_CHECK_INT(host("[fe80::1%25eth0]", &h), -1);
	TAP_CHECK_INT(host("::1", &h), -1);              /* IPv6 without brackets */
	TAP_CHECK_INT(host("[::1", &h), -1);
	TAP_CHECK_INT(host("[1.2.3.4]", &h), -1);
	TAP_CHECK_INT(host("exa mple.com", &h), -1);
	TAP_CHECK_INT(host("a..b.com", &h), -1);
	TAP_CHECK_INT(host(".a.com", &h), -1);
	TAP_CHECK_INT(host("-a.com", &h), -1);
	TAP_CHECK_INT(host("a-.com", &h), -1);
	TAP_CHECK_INT(host("ex%61mple.com", &h), -1);
	TAP_CHECK_INT(host("ex\\ample.com", &h), -1);
	TAP_CHECK_INT(host("b\xc3\xbc" "cher.de", &h), -1); /* IDNs come as punycode */
	TAP_CHECK_INT(host("", &h), -1);
	TAP_CHECK_INT(host(".", &h), -1);
	{
		char big[300];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		TAP_CHECK_INT(host(big, &h), -1);          /* label over 63 */
	}
	TAP_CHECK_INT(mbx__host_parse("a\0b.com", 7, 0, &h, &(const char *){ NULL }), -1);
}

static int auth(const char *s, uint16_t def, struct mbx_host *h, uint16_t *port)
{
	const char *why = NULL;

	return mbx__authority_parse(s, strlen(s), def, h, port, &why);
}

static void test_authority(void)
{
	struct mbx_host h;
	uint16_t port = 0;

	TAP_CHECK_INT(auth("example.com:443", 0, &h, &port), 0);
	TAP_CHECK_STR(h.name, "example.com");
	TAP_CHECK_INT(port, 443);
	TAP_CHECK_INT(auth("example.com", 80, &h, &port), 0);
	TAP_CHECK_INT(port, 80);
	TAP_CHECK_INT(auth("example.com", 0, &h, &port), -1);     /* CONNECT needs a port */
	TAP_CHECK_INT(auth("[::1]:8080", 0, &h, &port), 0);
	TAP_CHECK_STR(h.name, "::1");
	TAP_CHECK_INT(port, 8080);
	TAP_CHECK_INT(auth("[::1]", 80, &h, &port), 0);
	TAP_CHECK_INT(auth("::1:80", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("[::1]x:80", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("user@example.com:443", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("allowed.com@evil.com:443", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("example.com:0", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("example.com:65536", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("example.com:+80", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("example.com:", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("example.com:80:80", 0, &h, &port), -1);
	TAP_CHECK_INT(auth("2130706433:80", 0, &h, &port), 0);
	TAP_CHECK_INT(h.kind, MBX_HOST_IPV4);
	TAP_CHECK_STR(h.name, "127.0.0.1");
}

static mbx_config *config(mbx_network_t net, const char *const *domains)
{
	mbx_config *cfg = NULL;

	mbx_config_new(&cfg, NULL);
	mbx_config_set_network(cfg, net, NULL);
	for (size_t i = 0; domains && domains[i]; i++)
		TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, domains[i], NULL), MBX_OK);
	return cfg;
}

static int allowed(const mbx_config *cfg, const char *h)
{
	struct mbx_host x;
	const char *why, *rule = NULL;

	if (mbx__host_parse(h, strlen(h), 0, &x, &why) < 0)
		return -1;
	return mbx__net_host_allowed(cfg, &x, 80, &rule, NULL);
}

static void test_allow_list(void)
{
	static const char *const d[] = { "api.example.com", "*.cdn.example.net", "93.184.216.34", "[2606:2800::1]",
					 "Mixed.Case.Org", NULL };
	mbx_config *cfg = config(MBX_NETWORK_ALLOW_DOMAINS, d);

	TAP_CHECK_INT(allowed(cfg, "api.example.com"), 1);
	TAP_CHECK_INT(allowed(cfg, "API.Example.Com."), 1);
	TAP_CHECK_INT(allowed(cfg, "example.com"), 0);
	TAP_CHECK_INT(allowed(cfg, "www.api.example.com"), 0);   /* exact means exact */
	TAP_CHECK_INT(allowed(cfg, "a.cdn.example.net"), 1);
	TAP_CHECK_INT(allowed(cfg, "b.a.cdn.example.net"), 1);
	TAP_CHECK_INT(allowed(cfg, "cdn.example.net"), 0);       /* the wildcard is subdomains only */
	TAP_CHECK_INT(allowed(cfg, "evilcdn.example.net"), 0);
	TAP_CHECK_INT(allowed(cfg, "cdn.example.net.evil.com"), 0);
	TAP_CHECK_INT(allowed(cfg, "mixed.case.org"), 1);
	/* Literals match literal entries only, in any spelling. */
	TAP_CHECK_INT(allowed(cfg, "93.184.216.34"), 1);
	TAP_CHECK_INT(allowed(cfg, "1572395042"), 1);           /* 93.184.216.34 in decimal */
	TAP_CHECK_INT(allowed(cfg, "93.184.216.35"), 0);
	TAP_CHECK_INT(allowed(cfg, "[2606:2800:0::1]"), 1);
	TAP_CHECK_INT(allowed(cfg, "127.0.0.1"), 0);
	TAP_CHECK_INT(allowed(cfg, "2130706433"), 0);
	TAP_CHECK_INT(allowed(cfg, "0x7f.1"), 0);
	mbx_config_free(cfg);

	/* A wildcard never covers an IP literal. */
	static const char *const w[] = { "*.0.0.1", NULL };
	mbx_config *c2 = NULL;

	mbx_config_new(&c2, NULL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, w[0], NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "*.example.com", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "[::1]", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "::1", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "1.2.3.4.5", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "*.", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "*.*.example.com", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(c2, "ex ample.com", NULL), MBX_EINVAL);
	mbx_config_free(c2);
}

/* A resolver that must not be asked. */
static int no_resolve(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n)
{
	(void)ud;
	(void)name;
	(void)out;
	(void)max;
	*n = 0;
	TAP_CHECK(!"the resolver was asked");
	return EAI_NONAME;
}

static int allowed_on(const mbx_config *cfg, const char *h, uint16_t port, int *port_refused)
{
	struct mbx_host x;
	const char *why, *rule = NULL;

	if (mbx__host_parse(h, strlen(h), 0, &x, &why) < 0)
		return -1;
	return mbx__net_host_allowed(cfg, &x, port, &rule, port_refused);
}

static void test_allow_list_ports(void)
{
	static const char *const d[] = { "api.example.invalid:443", "*.cdn.example.invalid:8443", "192.0.2.7:80",
					 "[2001:db8::1]:443", "any.example.invalid", "2001:db8::2",
					 "both.example.invalid:80", "both.example.invalid:8080", NULL };
	mbx_config *cfg = config(MBX_NETWORK_ALLOW_DOMAINS, d);
	struct mbx_net_decision dec;
	struct mbx_net_hooks hooks = { no_resolve, NULL, NULL };
	struct mbx_host x;
	const char *why;
	int refused = 0;

	TAP_CHECK_INT(allowed_on(cfg, "api.example.invalid", 443, &refused), 1);
	TAP_CHECK_INT(allowed_on(cfg, "api.example.invalid", 80, &refused), 0);
	TAP_CHECK_INT(refused, 1);
	TAP_CHECK_INT(allowed_on(cfg, "x.cdn.example.invalid", 8443, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "x.cdn.example.invalid", 443, NULL), 0);
	TAP_CHECK_INT(allowed_on(cfg, "192.0.2.7", 80, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "192.0.2.7", 443, NULL), 0);
	TAP_CHECK_INT(allowed_on(cfg, "[2001:db8::1]", 443, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "[2001:db8::1]", 444, NULL), 0);
	/* Without a port: any port, as before. A bare IPv6 literal has no port. */
	TAP_CHECK_INT(allowed_on(cfg, "any.example.invalid", 1, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "any.example.invalid", 65535, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "[2001:db8::2]", 22, NULL), 1);
	/* Several entries for one host add up. */
	TAP_CHECK_INT(allowed_on(cfg, "both.example.invalid", 80, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "both.example.invalid", 8080, NULL), 1);
	TAP_CHECK_INT(allowed_on(cfg, "both.example.invalid", 443, &refused), 0);
	TAP_CHECK_INT(refused, 1);
	TAP_CHECK_INT(allowed_on(cfg, "other.example.invalid", 443, &refused), 0);
	TAP_CHECK_INT(refused, 0);

	/* The decision says which port was refused, before any lookup. */
	TAP_CHECK_INT(mbx__host_parse("api.example.invalid", 19, 0, &x, &why), 0);
	TAP_CHECK_INT(mbx__net_decide(cfg, &hooks, &x, 80, &dec), MBX_NETV_DENIED);
	TAP_CHECK(strstr(dec.reason, "port 80 of `api.example.invalid` is not in the allow list") != NULL);
	mbx_config_free(cfg);

	/* Entry forms. */
	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:1", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:65535", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "*.example.invalid:443", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "[::1]:443", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:0", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:65536", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:http", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:+80", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.invalid:0000080", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, ":443", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "*.:443", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "[::1]443", NULL), MBX_EINVAL);
	mbx_config_free(cfg);
}

/* The verdict of the HTTP rules for METHOD and TARGET on host h:port (1 allowed, 0 refused). */
static int rule_ok(const mbx_config *cfg, const char *h, uint16_t port, int connect, const char *method,
		   const char *target, char *why, size_t whylen)
{
	struct mbx_host x;
	const char *pwhy;

	TAP_CHECK_INT(mbx__host_parse(h, strlen(h), 0, &x, &pwhy), 0);
	return mbx__net_http_check(cfg, &x, port, connect, method, strlen(method), target,
				   target ? strlen(target) : 0, why, whylen) == 0;
}

static void test_http_rules(void)
{
	static const char *const d[] = { "api.example.invalid", "*.files.example.invalid", "free.example.invalid",
					 NULL };
	static const char *const good[] = {
		"GET api.example.invalid/v1/*",
		"allow GET,HEAD api.example.invalid/public",
		"POST api.example.invalid:8080/upload/*",
		"deny * api.example.invalid/v1/admin*",
		"deny DELETE *.files.example.invalid",
		"* *.files.example.invalid/*",
	};
	static const char *const bad[] = {
		"", "GET", "GET api.example.invalid/x extra", "G\tE api.example.invalid", "GET,,POST x.invalid",
		"GET ex ample", "allow", "deny", "GET :443/x", "GET x.invalid:0/x", "GET x.invalid\n/x",
		"GE(T x.invalid", "GET *.*.x.invalid",
	};
	mbx_config *cfg = config(MBX_NETWORK_ALLOW_DOMAINS, d), *copy = NULL;
	char why[192];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		TAP_CHECK_INT(mbx_config_add_http_rule(cfg, good[i], NULL), MBX_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TAP_CHECK_INT(mbx_config_add_http_rule(cfg, bad[i], NULL), MBX_EINVAL);

	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/items?q=1", why, sizeof(why)), 1);
	TAP_CHECK(strstr(why, "allowed by HTTP rule `GET api.example.invalid/v1/*`") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/a/b/c", why, sizeof(why)), 1);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "POST", "/v1/items", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "no HTTP rule allows POST /v1/items") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "get", "/v1/items", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "HEAD", "/public", why, sizeof(why)), 1);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "HEAD", "/public/x", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v2/items", why, sizeof(why)), 0);
	/* Deny rules win over allow rules, whatever their order. */
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/admin/users", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "denied by HTTP rule `deny * api.example.invalid/v1/admin*`") != NULL);
	/* Spellings the server would read as the denied path are refused. */
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/%61dmin", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "denied by") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/x/../admin", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "`..` segment") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/./admin", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/%2e%2e/x", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "escaped") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/a%2Fb", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1\\admin", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/%4", why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "malformed escape") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/%00", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "*", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v1/ok%20name", why, sizeof(why)), 1);
	/* The query is not part of the path: "?" cannot smuggle a path in. */
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "GET", "/v2?/v1/x", why, sizeof(why)), 0);
	/* A rule with a port applies on that port only. */
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 8080, 0, "POST", "/upload/f", why, sizeof(why)), 1);
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 80, 0, "POST", "/upload/f", why, sizeof(why)), 0);
	/* A host with rules: no CONNECT tunnel. Without rules: left to the allow list. */
	TAP_CHECK_INT(rule_ok(cfg, "api.example.invalid", 443, 1, "CONNECT", NULL, why, sizeof(why)), 0);
	TAP_CHECK(strstr(why, "CONNECT tunnel") != NULL);
	TAP_CHECK_INT(rule_ok(cfg, "free.example.invalid", 443, 1, "CONNECT", NULL, why, sizeof(why)), 1);
	TAP_CHECK_INT(rule_ok(cfg, "free.example.invalid", 80, 0, "DELETE", "/../x", why, sizeof(why)), 1);
	/* Wildcard hosts. */
	TAP_CHECK_INT(rule_ok(cfg, "a.files.example.invalid", 80, 0, "PUT", "/x", why, sizeof(why)), 1);
	TAP_CHECK_INT(rule_ok(cfg, "a.files.example.invalid", 80, 0, "DELETE", "/x", why, sizeof(why)), 0);

	/* Rules go with copies of the config. */
	TAP_CHECK_INT(mbx__config_copy(cfg, &copy, NULL), MBX_OK);
	TAP_CHECK_INT(rule_ok(copy, "api.example.invalid", 80, 0, "GET", "/v1/admin", why, sizeof(why)), 0);
	TAP_CHECK_INT(rule_ok(copy, "api.example.invalid", 80, 0, "GET", "/v1/x", why, sizeof(why)), 1);
	mbx_config_free(copy);
	mbx_config_free(cfg);
}

static int cls(const char *s, const char **what)
{
	struct mbx_netaddr a = { 0 };

	if (inet_pton(AF_INET, s, &a.a.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a.a.v6) == 1)
		a.family = AF_INET6;
	else
		return -1;
	return (int)mbx__net_classify(&a, what);
}

static void test_address_classes(void)
{
	static const struct {
		const char *addr;
		enum mbx_addr_class cls;
		const char *what; /* a word the description must contain */
	} cases[] = {
		{ "8.8.8.8", MBX_ADDR_PUBLIC, "public" },
		{ "93.184.216.34", MBX_ADDR_PUBLIC, "public" },
		{ "0.0.0.0", MBX_ADDR_NEVER, "this network" },
		{ "0.1.2.3", MBX_ADDR_NEVER, "this network" },
		{ "10.0.0.1", MBX_ADDR_PRIVATE, "RFC 1918" },
		{ "10.255.255.255", MBX_ADDR_PRIVATE, "RFC 1918" },
		{ "11.0.0.1", MBX_ADDR_PUBLIC, "public" },
		{ "100.63.255.255", MBX_ADDR_PUBLIC, "public" },
		{ "100.64.0.1", MBX_ADDR_PRIVATE, "CGNAT" },
		{ "100.127.255.254", MBX_ADDR_PRIVATE, "CGNAT" },
		{ "100.100.100.200", MBX_ADDR_NEVER, "metadata" },
		{ "100.128.0.0", MBX_ADDR_PUBLIC, "public" },
		{ "127.0.0.1", MBX_ADDR_PRIVATE, "loopback" },
		{ "127.255.255.254", MBX_ADDR_PRIVATE, "loopback" },
		{ "169.254.169.254", MBX_ADDR_NEVER, "metadata" },
		{ "169.254.1.1", MBX_ADDR_PRIVATE, "link-local" },
		{ "172.15.255.255", MBX_ADDR_PUBLIC, "public" },
		{ "172.16.0.1", MBX_ADDR_PRIVATE, "RFC 1918" },
		{ "172.31.255.255", MBX_ADDR_PRIVATE, "RFC 1918" },
		{ "172.32.0.0", MBX_ADDR_PUBLIC, "public" },
		{ "192.0.0.170", MBX_ADDR_NEVER, "IETF" },
		{ "192.0.2.1", MBX_ADDR_PRIVATE, "documentation" },
		{ "192.88.99.1", MBX_ADDR_NEVER, "6to4" },
		{ "192.168.1.1", MBX_ADDR_PRIVATE, "RFC 1918" },
		{ "198.18.0.1", MBX_ADDR_PRIVATE, "benchmarking" },
		{ "198.19.255.255", MBX_ADDR_PRIVATE, "benchmarking" },
		{ "198.20.0.0", MBX_ADDR_PUBLIC, "public" },
		{ "198.51.100.7", MBX_ADDR_PRIVATE, "documentation" },
		{ "203.0.113.9", MBX_ADDR_PRIVATE, "documentation" },
		{ "224.0.0.1", MBX_ADDR_NEVER, "multicast" },
		{ "239.255.255.250", MBX_ADDR_NEVER, "multicast" },
		{ "240.0.0.1", MBX_ADDR_NEVER, "reserved" },
		{ "255.255.255.255", MBX_ADDR_NEVER, "broadcast" },
		{ "2606:4700:4700::1111", MBX_ADDR_PUBLIC, "public" },
		{ "::", MBX_ADDR_NEVER, "unspecified" },
		{ "::1", MBX_ADDR_PRIVATE, "loopback" },
		{ "::ffff:127.0.0.1", MBX_ADDR_NEVER, "IPv4-mapped" },
		{ "::ffff:8.8.8.8", MBX_ADDR_NEVER, "IPv4-mapped" },
		{ "::ffff:169.254.169.254", MBX_ADDR_NEVER, "IPv4-mapped" },
		{ "::ffff:0:7f00:1", MBX_ADDR_NEVER, "IPv4-translated" },
		{ "::127.0.0.1", MBX_ADDR_NEVER, "IPv4-compatible" },
		{ "64:ff9b::7f00:1", MBX_ADDR_NEVER, "NAT64" },
		{ "64:ff9b::a9fe:a9fe", MBX_ADDR_NEVER, "NAT64" },
		{ "64:ff9b:1::1", MBX_ADDR_NEVER, "NAT64" },
		{ "100::1", MBX_ADDR_NEVER, "discard" },
		{ "2001::1", MBX_ADDR_NEVER, "Teredo" },
		{ "2001:10::1", MBX_ADDR_NEVER, "ORCHID" },
		{ "2001:db8::1", MBX_ADDR_PRIVATE, "documentation" },
		{ "2002:7f00:1::1", MBX_ADDR_NEVER, "6to4" },
		{ "fc00::1", MBX_ADDR_PRIVATE, "unique-local" },
		{ "fd12:3456::1", MBX_ADDR_PRIVATE, "unique-local" },
		{ "fd00:ec2::254", MBX_ADDR_NEVER, "metadata" },
		{ "fe80::1", MBX_ADDR_PRIVATE, "link-local" },
		{ "febf::1", MBX_ADDR_PRIVATE, "link-local" },
		{ "fec0::1", MBX_ADDR_PRIVATE, "site-local" },
		{ "ff02::1", MBX_ADDR_NEVER, "multicast" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *what = NULL;
		int c = cls(cases[i].addr, &what);

		if (c != (int)cases[i].cls || what == NULL || strstr(what, cases[i].what) == NULL) {
			printf("#   %s: class %d (%s), expected %d (%s)\n", cases[i].addr, c, what ? what : "?",
			       (int)cases[i].cls, cases[i].what);
			tap_failed_now = 1;
		}
	}
}

/* ---- decisions, with a resolver that answers from a table ---- */

struct fake_dns {
	int calls;
	const char *answers[4]; /* per call (the last one repeats) */
};

static int fake_resolve(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n)
{
	struct fake_dns *f = ud;
	int idx = f->calls < 3 ? f->calls : 3;
	const char *ans;
	char buf[256], *save = NULL;

	while (idx > 0 && f->answers[idx] == NULL)
		idx--; /* the last answer given repeats */
	ans = f->answers[idx];

	(void)name;
	f->calls++;
	*n = 0;
	if (ans == NULL)
		return EAI_NONAME;
	snprintf(buf, sizeof(buf), "%s", ans);
	for (char *t = strtok_r(buf, ",", &save); t && *n < max; t = strtok_r(NULL, ",", &save)) {
		memset(&out[*n], 0, sizeof(out[*n]));
		if (inet_pton(AF_INET, t, &out[*n].a.v4) == 1)
			out[*n].family = AF_INET;
		else if (inet_pton(AF_INET6, t, &out[*n].a.v6) == 1)
			out[*n].family = AF_INET6;
		else
			continue;
		(*n)++;
	}
	return 0;
}

static enum mbx_net_verdict_internal decide(const mbx_config *cfg, struct fake_dns *f, const char *h,
					    struct mbx_net_decision *d)
{
	struct mbx_net_hooks hooks = { fake_resolve, NULL, f };
	struct mbx_host x;
	const char *why;

	TAP_CHECK_INT(mbx__host_parse(h, strlen(h), 0, &x, &why), 0);
	return mbx__net_decide(cfg, &hooks, &x, 443, d);
}

static void test_decide(void)
{
	static const char *const d1[] = { "api.example.com", "*.example.org", "203.0.113.5", NULL };
	mbx_config *cfg = config(MBX_NETWORK_ALLOW_DOMAINS, d1);
	struct mbx_net_decision d;
	char a[48];

	struct fake_dns pub = { 0, { "93.184.216.34", NULL, NULL, NULL } };
	TAP_CHECK_INT(decide(cfg, &pub, "api.example.com", &d), MBX_NETV_OK);
	TAP_CHECK_INT(d.naddrs, 1);
	TAP_CHECK_INT(pub.calls, 1);
	TAP_CHECK(strstr(d.reason, "api.example.com") != NULL);

	/* Not in the list: refused before any lookup. */
	struct fake_dns none = { 0, { "93.184.216.34" } };
	TAP_CHECK_INT(decide(cfg, &none, "evil.com", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(none.calls, 0);
	TAP_CHECK(strstr(d.reason, "not in the allow list") != NULL);

	/* Allowed names that resolve to private addresses. */
	struct fake_dns lo = { 0, { "127.0.0.1" } };
	TAP_CHECK_INT(decide(cfg, &lo, "x.example.org", &d), MBX_NETV_DENIED);
	TAP_CHECK(strstr(d.reason, "loopback") != NULL);
	TAP_CHECK_STR(d.address, "127.0.0.1");
	struct fake_dns meta = { 0, { "169.254.169.254" } };
	TAP_CHECK_INT(decide(cfg, &meta, "x.example.org", &d), MBX_NETV_DENIED);
	TAP_CHECK(strstr(d.reason, "metadata") != NULL);
	struct fake_dns mapped = { 0, { "::ffff:10.0.0.1" } };
	TAP_CHECK_INT(decide(cfg, &mapped, "x.example.org", &d), MBX_NETV_DENIED);

	/* Mixed answers: only the public ones are kept, in order. */
	struct fake_dns mixed = { 0, { "10.0.0.1,93.184.216.34,::1,2606:4700::1" } };
	TAP_CHECK_INT(decide(cfg, &mixed, "x.example.org", &d), MBX_NETV_OK);
	TAP_CHECK_INT(d.naddrs, 2);
	mbx__netaddr_str(&d.addrs[0], a, sizeof(a));
	TAP_CHECK_STR(a, "93.184.216.34");
	mbx__netaddr_str(&d.addrs[1], a, sizeof(a));
	TAP_CHECK_STR(a, "2606:4700::1");

	/* No answer. */
	struct fake_dns nx = { 0, { NULL } };
	TAP_CHECK_INT(decide(cfg, &nx, "x.example.org", &d), MBX_NETV_UNRESOLVED);

	/* Rebinding: one decision, one lookup; its answer is what is used. */
	struct fake_dns rebind = { 0, { "93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1" } };
	TAP_CHECK_INT(decide(cfg, &rebind, "api.example.com", &d), MBX_NETV_OK);
	TAP_CHECK_INT(rebind.calls, 1);
	mbx__netaddr_str(&d.addrs[0], a, sizeof(a));
	TAP_CHECK_STR(a, "93.184.216.34");

	/* Literals: only the listed one, and never through the resolver; a
	 * listed literal in a private range still needs allow_private. */
	struct fake_dns lit = { 0, { "8.8.8.8" } };
	TAP_CHECK_INT(decide(cfg, &lit, "127.0.0.1", &d), MBX_NETV_DENIED);
	TAP_CHECK(strstr(d.reason, "IP literal") != NULL);
	TAP_CHECK_INT(decide(cfg, &lit, "2130706433", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(decide(cfg, &lit, "0177.0.0.1", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(decide(cfg, &lit, "0x7f.1", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(decide(cfg, &lit, "203.0.113.5", &d), MBX_NETV_DENIED);  /* documentation range */
	TAP_CHECK(strstr(d.reason, "documentation") != NULL);
	TAP_CHECK_INT(lit.calls, 0);

	/* Private destinations admitted on request; metadata never. */
	mbx_config_set_network_allow_private(cfg, 1);
	lo.calls = 0;
	TAP_CHECK_INT(decide(cfg, &lo, "x.example.org", &d), MBX_NETV_OK);
	TAP_CHECK_INT(decide(cfg, &lit, "203.0.113.5", &d), MBX_NETV_OK);
	TAP_CHECK_INT(decide(cfg, &meta, "x.example.org", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(decide(cfg, &lit, "127.0.0.1", &d), MBX_NETV_DENIED);   /* still not listed */
	mbx_config_set_network_allow_private(cfg, 0);

	/* Overrides replace the resolver, and are checked like its answers. */
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "api.example.com", "127.0.0.1", NULL), MBX_OK);
	struct fake_dns unused = { 0, { "93.184.216.34" } };
	TAP_CHECK_INT(decide(cfg, &unused, "API.example.com", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(unused.calls, 0);
	mbx_config_set_network_allow_private(cfg, 1);
	TAP_CHECK_INT(decide(cfg, &unused, "api.example.com", &d), MBX_NETV_OK);
	mbx__netaddr_str(&d.addrs[0], a, sizeof(a));
	TAP_CHECK_STR(a, "127.0.0.1");
	TAP_CHECK_INT(decide(cfg, &unused, "evil.com", &d), MBX_NETV_DENIED); /* an override allows nothing */
	mbx_config_free(cfg);

	/* Deny-all refuses everything; allow-all checks addresses only. */
	cfg = config(MBX_NETWORK_DENY_ALL, NULL);
	TAP_CHECK_INT(decide(cfg, &pub, "api.example.com", &d), MBX_NETV_DENIED);
	mbx_config_free(cfg);
	cfg = config(MBX_NETWORK_ALLOW_ALL, NULL);
	pub.calls = 0;
	TAP_CHECK_INT(decide(cfg, &pub, "anything.example", &d), MBX_NETV_OK);
	TAP_CHECK_INT(decide(cfg, &lo, "anything.example", &d), MBX_NETV_DENIED);
	TAP_CHECK_INT(decide(cfg, &lit, "8.8.8.8", &d), MBX_NETV_OK);
	TAP_CHECK_INT(decide(cfg, &lit, "0x7f.1", &d), MBX_NETV_DENIED);
	mbx_config_free(cfg);
}

static void test_config_settings(void)
{
	mbx_config *cfg = NULL, *copy = NULL;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx__net_limit(cfg, MBX_NET_LIMIT_CONNECTIONS), MBX_NET_DEFAULT_CONNECTIONS);
	TAP_CHECK_INT(mbx__net_limit(cfg, MBX_NET_LIMIT_REDIRECTS), MBX_NET_DEFAULT_REDIRECTS);
	TAP_CHECK_INT(mbx_config_set_network_limit(cfg, MBX_NET_LIMIT_IDLE_MS, 1500, NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_set_network_limit(cfg, MBX_NET_LIMIT_REDIRECTS, 0, NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_set_network_limit(cfg, MBX_NET_LIMIT_TIMEOUT_MS, 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_network_limit(cfg, 0, 1, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_network_limit(cfg, 99, 1, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__net_limit(cfg, MBX_NET_LIMIT_IDLE_MS), 1500);
	TAP_CHECK_INT(mbx__net_limit(cfg, MBX_NET_LIMIT_REDIRECTS), 0);
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "a.test", "10.1.2.3", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "b.test", "::1", NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "a.test", "2130706433", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "1.2.3.4", "10.0.0.1", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_host_override(cfg, "c.test", "c.test", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_ca_file(cfg, "/nonexistent/ca.pem", NULL), MBX_ENOTFOUND);
	TAP_CHECK_INT(mbx_config_add_ca_file(cfg, "/etc/hostname", NULL), MBX_EINVAL);
	mbx_config_set_network_allow_private(cfg, 1);
	TAP_CHECK_INT(mbx__config_copy(cfg, &copy, NULL), MBX_OK);
	mbx_config_free(cfg);
	/* The copy stands alone. */
	TAP_CHECK(mbx__net_allow_private(copy));
	TAP_CHECK(mbx__net_override(copy, "a.test") != NULL);
	TAP_CHECK(mbx__net_override(copy, "b.test") != NULL);
	TAP_CHECK(mbx__net_override(copy, "c.test") == NULL);
	TAP_CHECK_INT(mbx__net_limit(copy, MBX_NET_LIMIT_IDLE_MS), 1500);
	mbx_config_free(copy);
}

static const struct tap_case cases[] = {
	{ "netpolicy/ipv4-forms", test_ipv4_forms },
	{ "netpolicy/host-forms", test_host_forms },
	{ "netpolicy/authority", test_authority },
	{ "netpolicy/allow-list", test_allow_list },
	{ "netpolicy/allow-list-ports", test_allow_list_ports },
	{ "netpolicy/http-rules", test_http_rules },
	{ "netpolicy/address-classes", test_address_classes },
	{ "netpolicy/decide", test_decide },
	{ "netpolicy/config", test_config_settings },
};

TAP_MAIN(cases)
