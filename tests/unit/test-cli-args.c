/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the CLI's pure parsers (cli/args.c), JSON writer
 * (cli/json.c) and supervisor protocol framing (cli/wire.c). Build:
 * gcc -D_GNU_SOURCE -Iinclude -Icli tests/unit/test-cli-args.c cli/args.c
 * cli/json.c cli/wire.c
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbx/config.h>
#include <mbx/net.h>

#include "args.h"
#include "json.h"
#include "tap.h"
#include "wire.h"

static char why[CLI_WHY_MAX];

/* ---- timeouts and other numbers ---- */

static uint64_t timeout_ok(const char *s)
{
	uint64_t ms = 0;

	why[0] = '\0';
	if (cli_parse_timeout(s, &ms, why, sizeof(why)) != 0) {
		printf("#   unexpected failure for `%s`: %s\n", s, why);
		return UINT64_MAX;
	}
	return ms;
}

static int timeout_bad(const char *s, const char *reason)
{
	uint64_t ms = 12345;

	why[0] = '\0';
	if (cli_parse_timeout(s, &ms, why, sizeof(why)) != -1)
		return 0;
	return ms == 12345 && strstr(why, reason) != NULL;
}

static void test_timeout_decimal(void)
{
	TAP_CHECK_INT(timeout_ok("30"), 30000);
	TAP_CHECK_INT(timeout_ok("0.5"), 500);
	TAP_CHECK_INT(timeout_ok(".25"), 250);
	TAP_CHECK_INT(timeout_ok("2."), 2000);
	TAP_CHECK_INT(timeout_ok("1.5"), 1500);
	TAP_CHECK_INT(timeout_ok("0.001"), 1);
	TAP_CHECK_INT(timeout_ok("007"), 7000);
	TAP_CHECK_INT(timeout_ok("1.000000"), 1000);
	/* Sub-millisecond parts round up, so a positive timeout is never 0. */
	TAP_CHECK_INT(timeout_ok("0.0001"), 1);
	TAP_CHECK_INT(timeout_ok("1.2341"), 1235);
	TAP_CHECK_INT(timeout_ok("86400"), 86400000);
}

static void test_timeout_zero_negative(void)
{
	TAP_CHECK(timeout_bad("0", "greater than zero"));
	TAP_CHECK(timeout_bad("0.0", "greater than zero"));
	TAP_CHECK(timeout_bad("0.0000", "greater than zero"));
	TAP_CHECK(timeout_bad("-1", "greater than zero"));
	TAP_CHECK(timeout_bad("-0.5", "greater than zero"));
	TAP_CHECK(timeout_bad("-.5", "greater than zero"));
}

static void test_timeout_garbage(void)
{
	TAP_CHECK(timeout_bad("", "not a number"));
	TAP_CHECK(timeout_bad(".", "not a number"));
	TAP_CHECK(timeout_bad("abc", "not a number"));
	TAP_CHECK(timeout_bad("10s", "not a number"));
	TAP_CHECK(timeout_bad("1e3", "not a number"));
	TAP_CHECK(timeout_bad(" 5", "not a number"));
	TAP_CHECK(timeout_bad("5 ", "not a number"));
	TAP_CHECK(timeout_bad("+5", "not a number"));
	TAP_CHECK(timeout_bad("0x10", "not a number"));
	TAP_CHECK(timeout_bad("inf", "not a number"));
	TAP_CHECK(timeout_bad("nan", "not a number"));
	TAP_CHECK(timeout_bad("1.2.3", "not a number"));
	TAP_CHECK(timeout_bad("1,5", "not a number"));
	TAP_CHECK(timeout_bad("-", "not a number"));
	TAP_CHECK(timeout_bad("99999999999999999999999999", "too large"));
	TAP_CHECK(timeout_bad("18446744073709551616", "too large"));
}

static void test_cpus(void)
{
	uint32_t m = 0;

	TAP_CHECK_INT(cli_parse_cpus("0.5", &m, why, sizeof(why)), 0);
	TAP_CHECK_INT(m, 500);
	TAP_CHECK_INT(cli_parse_cpus("2", &m, why, sizeof(why)), 0);
	TAP_CHECK_INT(m, 2000);
	TAP_CHECK_INT(cli_parse_cpus("0.25", &m, why, sizeof(why)), 0);
	TAP_CHECK_INT(m, 250);
	TAP_CHECK_INT(cli_parse_cpus("0", &m, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_cpus("-1", &m, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_cpus("half", &m, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_cpus("5000000", &m, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "too large") != NULL);
}

static void test_memory(void)
{
	uint64_t b = 0;

	TAP_CHECK_INT(cli_parse_memory_mb("512", &b, why, sizeof(why)), 0);
	TAP_CHECK_INT(b, 512ULL << 20);
	TAP_CHECK_INT(cli_parse_memory_mb("1", &b, why, sizeof(why)), 0);
	TAP_CHECK_INT(b, 1ULL << 20);
	TAP_CHECK_INT(cli_parse_memory_mb("0", &b, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "greater than zero") != NULL);
	TAP_CHECK_INT(cli_parse_memory_mb("-5", &b, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_memory_mb("1.5", &b, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_memory_mb("", &b, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_memory_mb("17592186044416", &b, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "too large") != NULL);
	TAP_CHECK_INT(cli_parse_memory_mb("17592186044415", &b, why, sizeof(why)), 0);
}

static void test_disk(void)
{
	struct cli_sandbox_opts o;
	uint64_t b = 0;

	TAP_CHECK_INT(cli_parse_disk_mb("2048", &b, why, sizeof(why)), 0);
	TAP_CHECK_INT(b, 2048ULL << 20);
	TAP_CHECK_INT(cli_parse_disk_mb("1048576", &b, why, sizeof(why)), 0);
	TAP_CHECK_INT(b, 1ULL << 40);
	TAP_CHECK_INT(cli_parse_disk_mb("1048577", &b, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "at most 1048576") != NULL);
	TAP_CHECK_INT(cli_parse_disk_mb("0", &b, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "greater than zero") != NULL);
	TAP_CHECK_INT(cli_parse_disk_mb("-1", &b, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_disk_mb("2G", &b, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_disk_mb("", &b, why, sizeof(why)), -1);
	/* Through the option table: named in the message, flagged as set. */
	cli_sandbox_opts_init(&o);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_DISK, "16", why, sizeof(why)), 0);
	TAP_CHECK((o.set & CLI_SET_DISK) && o.disk_bytes == 16ULL << 20);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_DISK, "lots", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "--disk") != NULL && strstr(why, "lots") != NULL);
	cli_sandbox_opts_free(&o);
}

static void test_memory_units(void)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} good[] = {
		{ "512m", 512ULL << 20 }, { "512M", 512ULL << 20 }, { "512mb", 512ULL << 20 },
		{ "512MiB", 512ULL << 20 }, { "1g", 1ULL << 30 }, { "1GB", 1ULL << 30 },
		{ "1.5g", 3ULL << 29 }, { "0.5m", 512ULL << 10 }, { "64k", 64ULL << 10 },
		{ "64KiB", 64ULL << 10 }, { "1048576b", 1048576 }, { "2t", 2ULL << 40 },
		{ "0.001k", 2 },	/* 1.024 bytes, rounded up */
		{ "16383t", 16383ULL << 40 },
	};
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
		{ "12q", "unknown unit" }, { "1gg", "unknown unit" }, { "1bb", "unknown unit" },
		{ "1ib", "unknown unit" }, { "0m", "greater than zero" }, { "m", "not a number" },
		{ "-1g", "greater than zero" }, { "16777216t", "too large" }, { "1.5", "whole number" },
		{ ".", "not a number" }, { "1..5g", "not a number" }, { "0b", "greater than zero" },
		{ ".m", "not a number" },
		{ "1 g", "unknown unit" },
	};
	uint64_t b;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		b = 0;
		TAP_CHECK_INT(cli_parse_memory_mb(good[i].s, &b, why, sizeof(why)), 0);
		TAP_CHECK_INT(b, good[i].bytes);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		TAP_CHECK_INT(cli_parse_memory_mb(bad[i].s, &b, why, sizeof(why)), -1);
		TAP_CHECK(strstr(why, bad[i].why) != NULL);
	}
}

static void test_closest(void)
{
	static const char *const verbs[] = { "run", "create", "exec", "shell", "ps", "cat", "write", "ls", "stat",
					     "cp", "mkdir", "rm", "http", "version", NULL };

	TAP_CHECK_STR(cli_closest("exce", verbs), "exec");	/* a swap */
	TAP_CHECK_STR(cli_closest("crate", verbs), "create");
	TAP_CHECK_STR(cli_closest("mkdri", verbs), "mkdir");
	TAP_CHECK_STR(cli_closest("verison", verbs), "version");
	TAP_CHECK_STR(cli_closest("htp", verbs), "http");
	TAP_CHECK(cli_closest("frobnicate", verbs) == NULL);
	TAP_CHECK(cli_closest("xyz", verbs) == NULL);	/* 3 letters: one edit at most */
	TAP_CHECK(cli_closest("", verbs) == NULL || strlen(cli_closest("", verbs)) <= 1);
	/* Ties go to the first candidate; exact matches win. */
	TAP_CHECK_STR(cli_closest("cat", verbs), "cat");
}

static void test_unknown_option_hint(void)
{
	static const struct cli_option opts[] = {
		CLI_SANDBOX_OPTIONS,
		{ "json", 0, 0, CLI_OPT_VERB },
		CLI_HELP_OPTION,
		{ NULL, 0, 0, 0 }
	};
	char *argv1[] = { (char *)"run", (char *)"--timout", (char *)"5", NULL };
	char *argv2[] = { (char *)"run", (char *)"-json", NULL };
	char *argv3[] = { (char *)"run", (char *)"--qqqqqqq", NULL };
	char *argv4[] = { (char *)"run", (char *)"-e", (char *)"A=1", (char *)"-v", (char *)"/a:/b",
			  (char *)"-w", (char *)"/w", (char *)"-m", (char *)"1g", (char *)"--cpus", (char *)"2", NULL };
	struct cli_args a = { 3, argv1, 1 };
	const char *v;
	int ids[5], i;

	TAP_CHECK_INT(cli_next_option(&a, opts, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "unknown option `--timout` (did you mean `--timeout`?)") != NULL);
	a = (struct cli_args){ 2, argv2, 1 };
	TAP_CHECK_INT(cli_next_option(&a, opts, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "did you mean `--json`") != NULL);
	a = (struct cli_args){ 2, argv3, 1 };
	TAP_CHECK_INT(cli_next_option(&a, opts, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "did you mean") == NULL);
	/* The docker-style short forms are the long options. */
	a = (struct cli_args){ 12, argv4, 1 };
	for (i = 0; i < 5; i++)
		ids[i] = cli_next_option(&a, opts, &v, why, sizeof(why));
	TAP_CHECK_INT(ids[0], CLI_OPT_ENV);
	TAP_CHECK_INT(ids[1], CLI_OPT_MOUNT);
	TAP_CHECK_INT(ids[2], CLI_OPT_WORKDIR);
	TAP_CHECK_INT(ids[3], CLI_OPT_MEMORY);
	TAP_CHECK_INT(ids[4], CLI_OPT_CPU);
	TAP_CHECK_STR(v, "2");
}

static void test_net_options(void)
{
	struct cli_host h;
	struct cli_net_limit l;
	struct cli_network n;
	struct cli_sandbox_opts o;

	TAP_CHECK_INT(cli_parse_host("db.invalid:10.0.0.1", &h, why, sizeof(why)), 0);
	TAP_CHECK_STR(h.name, "db.invalid");
	TAP_CHECK_STR(h.address, "10.0.0.1");
	cli_host_free(&h);
	TAP_CHECK_INT(cli_parse_host("v6.invalid:::1", &h, why, sizeof(why)), 0);
	TAP_CHECK_STR(h.address, "::1");
	cli_host_free(&h);
	TAP_CHECK_INT(cli_parse_host("nocolon", &h, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_host(":1.2.3.4", &h, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_host("x.invalid:", &h, why, sizeof(why)), -1);
	TAP_CHECK(h.name == NULL && h.address == NULL);

	TAP_CHECK_INT(cli_parse_net_limit("request-bytes=1m", &l, why, sizeof(why)), 0);
	TAP_CHECK_INT(l.limit, MBX_NET_LIMIT_REQUEST_BYTES);
	TAP_CHECK_INT(l.value, 1ULL << 20);
	TAP_CHECK_INT(cli_parse_net_limit("response-bytes=1000", &l, why, sizeof(why)), 0);
	TAP_CHECK_INT(l.value, 1000);	/* plain: bytes, not MiB */
	TAP_CHECK_INT(cli_parse_net_limit("timeout=2.5", &l, why, sizeof(why)), 0);
	TAP_CHECK_INT(l.limit, MBX_NET_LIMIT_TIMEOUT_MS);
	TAP_CHECK_INT(l.value, 2500);
	TAP_CHECK_INT(cli_parse_net_limit("idle=1", &l, why, sizeof(why)), 0);
	TAP_CHECK_INT(l.limit, MBX_NET_LIMIT_IDLE_MS);
	TAP_CHECK_INT(cli_parse_net_limit("redirects=0", &l, why, sizeof(why)), 0);
	TAP_CHECK_INT(l.value, 0);
	TAP_CHECK_INT(cli_parse_net_limit("connections=0", &l, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_net_limit("connections", &l, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "connections=VALUE") != NULL);
	TAP_CHECK_INT(cli_parse_net_limit("speed=1", &l, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "unknown limit `speed`") != NULL);

	TAP_CHECK_INT(cli_parse_network("none", &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n.policy, MBX_NETWORK_DENY_ALL);
	cli_network_free(&n);

	cli_sandbox_opts_init(&o);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ADD_HOST, "a.invalid:127.0.0.1", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ADD_HOST, "b.invalid:::1", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_CA_FILE, "/x.pem", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_NET_LIMIT, "redirects=3", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ALLOW_PRIVATE, NULL, why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_NET_LIMIT, "bogus", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "--net-limit") != NULL);
	TAP_CHECK_INT(o.n_hosts, 2);
	TAP_CHECK_STR(o.hosts[1].name, "b.invalid");
	TAP_CHECK_INT(o.n_ca_files, 1);
	TAP_CHECK_INT(o.n_limits, 1);
	TAP_CHECK_INT(o.limits[0].value, 3);
	TAP_CHECK_INT(o.allow_private, 1);
	cli_sandbox_opts_free(&o);
}

static void test_base64(void)
{
	static const struct {
		const char *in, *out;
	} v[] = {	/* RFC 4648, section 10 */
		{ "", "\"\"" }, { "f", "\"Zg==\"" }, { "fo", "\"Zm8=\"" }, { "foo", "\"Zm9v\"" },
		{ "foob", "\"Zm9vYg==\"" }, { "fooba", "\"Zm9vYmE=\"" }, { "foobar", "\"Zm9vYmFy\"" },
	};
	static const uint8_t bin[] = { 0xff, 0xfe, 0x00, 0x80 };
	struct cli_buf b = CLI_BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		cli_json_base64(&b, (const uint8_t *)v[i].in, strlen(v[i].in));
		TAP_CHECK_STR(b.data, v[i].out);
		cli_buf_free(&b);
	}
	cli_json_base64(&b, bin, sizeof(bin));
	TAP_CHECK_STR(b.data, "\"//4AgA==\"");
	cli_buf_free(&b);

	TAP_CHECK_INT(cli_utf8_valid((const uint8_t *)"plain \xc3\xa9 \xe2\x82\xac", 12), 1);
	TAP_CHECK_INT(cli_utf8_valid(bin, sizeof(bin)), 0);
	TAP_CHECK_INT(cli_utf8_valid((const uint8_t *)"\xc3", 1), 0);	/* truncated */
	TAP_CHECK_INT(cli_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3), 0);	/* a surrogate */
	TAP_CHECK_INT(cli_utf8_valid((const uint8_t *)"", 0), 1);

	cli_json_bytes_field(&b, "out", (const uint8_t *)"ok", 2);
	TAP_CHECK_STR(b.data, ", \"out\": \"ok\"");
	cli_buf_free(&b);
	cli_json_bytes_field(&b, "out", bin, 2);
	TAP_CHECK_STR(b.data, ", \"out\": \"\\ufffd\\ufffd\", \"out_b64\": \"//4=\"");
	cli_buf_free(&b);
}

static void test_uint(void)
{
	uint64_t v = 0;

	TAP_CHECK_INT(cli_parse_uint("64", 1, UINT32_MAX, &v, why, sizeof(why)), 0);
	TAP_CHECK_INT(v, 64);
	TAP_CHECK_INT(cli_parse_uint("0", 0, 10, &v, why, sizeof(why)), 0);
	TAP_CHECK_INT(v, 0);
	TAP_CHECK_INT(cli_parse_uint("0", 1, 10, &v, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_uint("11", 1, 10, &v, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &v, why, sizeof(why)), 0);
	TAP_CHECK(v == UINT64_MAX);
	TAP_CHECK_INT(cli_parse_uint("18446744073709551616", 0, UINT64_MAX, &v, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_uint("4294967296", 1, UINT32_MAX, &v, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_uint("1 ", 0, 10, &v, why, sizeof(why)), -1);
}

/* ---- mounts ---- */

static int mount_is(const char *spec, const char *host, const char *sandbox, uint32_t flags)
{
	struct cli_mount m;
	int ok;

	if (cli_parse_mount(spec, &m, why, sizeof(why)) != 0) {
		printf("#   `%s` refused: %s\n", spec, why);
		return 0;
	}
	ok = strcmp(m.host, host) == 0 && strcmp(m.sandbox, sandbox) == 0 && m.flags == flags;
	if (!ok)
		printf("#   `%s` -> `%s` `%s` %u\n", spec, m.host, m.sandbox, m.flags);
	cli_mount_free(&m);
	return ok;
}

static int mount_bad(const char *spec, const char *reason)
{
	struct cli_mount m;

	why[0] = '\0';
	if (cli_parse_mount(spec, &m, why, sizeof(why)) != -1)
		return 0;
	if (!strstr(why, reason))
		printf("#   `%s`: `%s` lacks `%s`\n", spec, why, reason);
	return m.host == NULL && m.sandbox == NULL && strstr(why, reason) != NULL;
}

static void test_mount_default_mode(void)
{
	TAP_CHECK(mount_is("/data:/data", "/data", "/data", 0));
	TAP_CHECK(mount_is("./rel:/mnt/x", "./rel", "/mnt/x", 0));
	TAP_CHECK(mount_is("/a:/", "/a", "/", 0));
	/* The host path may contain ':'; the split is from the right. */
	TAP_CHECK(mount_is("/host/a:b:/sb", "/host/a:b", "/sb", 0));
	TAP_CHECK(mount_is("/a::/sb", "/a:", "/sb", 0));
	/* A host directory called "ro" is still a host path. */
	TAP_CHECK(mount_is("ro:/sb", "ro", "/sb", 0));
}

static void test_mount_with_mode(void)
{
	TAP_CHECK(mount_is("/data:/data:ro", "/data", "/data", 0));
	TAP_CHECK(mount_is("/data:/data:rw", "/data", "/data", MBX_MOUNT_RW));
	TAP_CHECK(mount_is("/host/a:b:/sb:rw", "/host/a:b", "/sb", MBX_MOUNT_RW));
	TAP_CHECK(mount_is("/x:y:/sb:ro", "/x:y", "/sb", 0));
}

static void test_mount_bad(void)
{
	TAP_CHECK(mount_bad("/data", "expected HOST_PATH:SANDBOX_PATH"));
	TAP_CHECK(mount_bad("", "expected HOST_PATH:SANDBOX_PATH"));
	TAP_CHECK(mount_bad("/a:/b:rx", "unknown mode `rx`"));
	TAP_CHECK(mount_bad("/a:/b:RW", "unknown mode `RW`"));
	TAP_CHECK(mount_bad("/a:/b:", "unknown mode ``"));
	TAP_CHECK(mount_bad("/a:/b:ro:rw", "not absolute"));
	TAP_CHECK(mount_bad("/a:rel", "`rel` is not absolute"));
	TAP_CHECK(mount_bad("/a:rel:ro", "`rel` is not absolute"));
	TAP_CHECK(mount_bad("/a:ro", "missing sandbox path"));
	TAP_CHECK(mount_bad(":/sb", "empty host path"));
	TAP_CHECK(mount_bad(":/sb:rw", "empty host path"));
	TAP_CHECK(mount_bad("/a::ro", "empty sandbox path"));
	TAP_CHECK(mount_bad("/a:", "not absolute"));
}

/* ---- network ---- */

static void test_network(void)
{
	struct cli_network n;

	TAP_CHECK_INT(cli_parse_network("deny", &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n.policy, MBX_NETWORK_DENY_ALL);
	TAP_CHECK_INT(n.n_domains, 0);
	cli_network_free(&n);

	TAP_CHECK_INT(cli_parse_network("all", &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n.policy, MBX_NETWORK_ALLOW_ALL);
	cli_network_free(&n);

	TAP_CHECK_INT(cli_parse_network("allow:example.com", &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n.policy, MBX_NETWORK_ALLOW_DOMAINS);
	TAP_CHECK_INT(n.n_domains, 1);
	if (n.n_domains == 1)
		TAP_CHECK_STR(n.domains[0], "example.com");
	cli_network_free(&n);

	TAP_CHECK_INT(cli_parse_network("allow:a.org,*.b.net,c.io", &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n.n_domains, 3);
	if (n.n_domains == 3) {
		TAP_CHECK_STR(n.domains[0], "a.org");
		TAP_CHECK_STR(n.domains[1], "*.b.net");
		TAP_CHECK_STR(n.domains[2], "c.io");
	}
	cli_network_free(&n);
}

static void test_network_bad(void)
{
	static const char *const bad[] = {
		"", "None", "Deny", "allow", "allow:", "allow:a.com,", "allow:,a.com", "allow:a,,b", "all:x",
	};
	struct cli_network n;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n.n_domains = 99;
		TAP_CHECK_INT(cli_parse_network(bad[i], &n, why, sizeof(why)), -1);
		TAP_CHECK(n.domains == NULL && n.n_domains == 0);
	}
}

/* ---- env ---- */

static void test_env(void)
{
	struct cli_env e;

	TAP_CHECK_INT(cli_parse_env("KEY=value", &e, why, sizeof(why)), 0);
	TAP_CHECK_STR(e.name, "KEY");
	TAP_CHECK_STR(e.value, "value");
	cli_env_free(&e);
	TAP_CHECK_INT(cli_parse_env("A=b=c", &e, why, sizeof(why)), 0);
	TAP_CHECK_STR(e.name, "A");
	TAP_CHECK_STR(e.value, "b=c");
	cli_env_free(&e);
	TAP_CHECK_INT(cli_parse_env("EMPTY=", &e, why, sizeof(why)), 0);
	TAP_CHECK_STR(e.value, "");
	cli_env_free(&e);
}

static void test_env_bad(void)
{
	struct cli_env e;

	TAP_CHECK_INT(cli_parse_env("KEY", &e, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "KEY=VALUE") != NULL);
	TAP_CHECK(e.name == NULL && e.value == NULL);
	TAP_CHECK_INT(cli_parse_env("", &e, why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_parse_env("=value", &e, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "empty variable name") != NULL);
}

static void free_envs(struct cli_env *env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cli_env_free(&env[i]);
	free(env);
}

static void test_env_file(void)
{
	static const char text[] =
		"# a comment\n"
		"\n"
		"   \t\n"
		"  # an indented comment\n"
		"A=1\n"
		"B= two  words $HOME \"q\" 'x' \\n # not a comment\r\n"
		"C=\n"
		"D=x=y\n"
		"_E9=last, no newline";
	struct cli_env *env = NULL;
	size_t n = 0;

	TAP_CHECK_INT(cli_parse_env_text(text, sizeof(text) - 1, &env, &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n, 5);
	if (n == 5) {
		TAP_CHECK_STR(env[0].name, "A");
		TAP_CHECK_STR(env[0].value, "1");
		TAP_CHECK_STR(env[1].name, "B");
		TAP_CHECK_STR(env[1].value, " two  words $HOME \"q\" 'x' \\n # not a comment");
		TAP_CHECK_STR(env[2].value, "");
		TAP_CHECK_STR(env[3].name, "D");
		TAP_CHECK_STR(env[3].value, "x=y");
		TAP_CHECK_STR(env[4].name, "_E9");
		TAP_CHECK_STR(env[4].value, "last, no newline");
	}
	free_envs(env, n);
	/* An empty file sets nothing. */
	env = NULL;
	n = 0;
	TAP_CHECK_INT(cli_parse_env_text("", 0, &env, &n, why, sizeof(why)), 0);
	TAP_CHECK_INT(n, 0);
}

static void test_env_file_bad(void)
{
	static const struct {
		const char *text;
		const char *words;
	} bad[] = {
		{ "A=1\nNOVALUE\n", "line 2: expected KEY=VALUE" },
		{ "A=1\n\nexport B=2\n", "line 3: `export B` is not a variable name" },
		{ "=secret\n", "line 1: `` is not a variable name" },
		{ "1A=x\n", "line 1: `1A`" },
		{ "A-B=x\n", "line 1: `A-B`" },
		{ " A=x\n", "line 1: ` A`" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cli_env *env = NULL;
		size_t n = 0;

		TAP_CHECK_INT(cli_parse_env_text(bad[i].text, strlen(bad[i].text), &env, &n, why, sizeof(why)), -1);
		TAP_CHECK(strstr(why, bad[i].words) != NULL);
		if (!strstr(why, bad[i].words))
			printf("#   got: %s\n", why);
		free_envs(env, n);
	}
	{
		/* A NUL byte; and the value of a bad line is never shown. */
		static const char nul[] = "A=1\nB=sec\0ret\n";
		struct cli_env *env = NULL;
		size_t n = 0;

		TAP_CHECK_INT(cli_parse_env_text(nul, sizeof(nul) - 1, &env, &n, why, sizeof(why)), -1);
		TAP_CHECK(strstr(why, "line 2") != NULL && strstr(why, "NUL") != NULL && strstr(why, "sec") == NULL);
		free_envs(env, n);
	}
	{
		struct cli_env *env = NULL;
		size_t n = 0;

		TAP_CHECK_INT(cli_parse_env_file("/nonexistent/mbx-env", &env, &n, why, sizeof(why)), -1);
		TAP_CHECK(strstr(why, "No such file") != NULL);
		TAP_CHECK_INT(cli_parse_env_file("/", &env, &n, why, sizeof(why)), -1);
		TAP_CHECK(strstr(why, "not a regular file") != NULL);
	}
}

/* ---- names ---- */

static void test_names(void)
{
	mbx_isolation_t iso = 99;
	mbx_trust_t trust = 99;

	TAP_CHECK_INT(cli_parse_isolation("auto", &iso), 0);
	TAP_CHECK_INT(iso, MBX_ISOLATION_AUTO);
	TAP_CHECK_INT(cli_parse_isolation("os", &iso), 0);
	TAP_CHECK_INT(iso, MBX_ISOLATION_OS);
	TAP_CHECK_INT(cli_parse_isolation("wasm", &iso), 0);
	TAP_CHECK_INT(iso, MBX_ISOLATION_WASM);
	TAP_CHECK_INT(cli_parse_isolation("microvm", &iso), 0);
	TAP_CHECK_INT(iso, MBX_ISOLATION_MICROVM);
	TAP_CHECK_INT(cli_parse_isolation("vm", &iso), -1);
	TAP_CHECK_INT(cli_parse_trust("trusted", &trust), 0);
	TAP_CHECK_INT(trust, MBX_TRUST_TRUSTED);
	TAP_CHECK_INT(cli_parse_trust("semi", &trust), 0);
	TAP_CHECK_INT(trust, MBX_TRUST_SEMI_TRUSTED);
	TAP_CHECK_INT(cli_parse_trust("untrusted", &trust), 0);
	TAP_CHECK_INT(trust, MBX_TRUST_UNTRUSTED);
	TAP_CHECK_INT(cli_parse_trust("paranoid", &trust), -1);
}

/* ---- the option scanner and the shared sandbox options ---- */

enum { T_JSON = CLI_OPT_VERB, T_CMD };

static const struct cli_option test_options[] = {
	CLI_SANDBOX_OPTIONS,
	{ "json", 0, 0, T_JSON },
	{ "command", 0, 1, T_CMD },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static void test_scanner(void)
{
	char *argv[] = { "run", "--timeout", "0.5", "--memory=256", "--json", "-h",
			 "--command", "--weird", "--", "--not-ours", NULL };
	struct cli_args a = { 10, argv, 1 };
	const char *v;

	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_TIMEOUT);
	TAP_CHECK_STR(v, "0.5");
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_MEMORY);
	TAP_CHECK_STR(v, "256");
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), T_JSON);
	TAP_CHECK(v == NULL);
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_HELP);
	/* A value may start with '-'. */
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), T_CMD);
	TAP_CHECK_STR(v, "--weird");
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_END);
	TAP_CHECK_INT(a.next, 9);
	TAP_CHECK_STR(argv[a.next], "--not-ours");
}

static void test_scanner_stops_at_program(void)
{
	char *argv[] = { "run", "--json", "ls", "-l", "--json", NULL };
	char *argv2[] = { "run", "-", "x", NULL };
	struct cli_args a = { 5, argv, 1 }, b = { 3, argv2, 1 };
	const char *v;

	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), T_JSON);
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_END);
	TAP_CHECK_INT(a.next, 2);
	TAP_CHECK_INT(cli_next_option(&b, test_options, &v, why, sizeof(why)), CLI_OPT_END);
	TAP_CHECK_INT(b.next, 1);
}

static void test_scanner_errors(void)
{
	char *unknown[] = { "run", "--mem", "5", NULL };
	char *noval[] = { "run", "--timeout", NULL };
	char *flagval[] = { "run", "--json=1", NULL };
	char *bundle[] = { "run", "-hx", NULL };
	struct cli_args a;
	const char *v;

	a = (struct cli_args){ 3, unknown, 1 };
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "unknown option `--mem`") != NULL);
	a = (struct cli_args){ 2, noval, 1 };
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "needs a value") != NULL);
	a = (struct cli_args){ 2, flagval, 1 };
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_BAD);
	TAP_CHECK(strstr(why, "takes no value") != NULL);
	a = (struct cli_args){ 2, bundle, 1 };
	TAP_CHECK_INT(cli_next_option(&a, test_options, &v, why, sizeof(why)), CLI_OPT_BAD);
}

static void test_sandbox_opts(void)
{
	struct cli_sandbox_opts o;

	cli_sandbox_opts_init(&o);
	TAP_CHECK_INT(o.set, 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_TIMEOUT, "1.5", why, sizeof(why)), 0);
	TAP_CHECK_INT(o.timeout_ms, 1500);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ENV, "A=1", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ENV, "B=2", why, sizeof(why)), 0);
	TAP_CHECK_INT(o.n_env, 2);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_MOUNT, "/x:/y:rw", why, sizeof(why)), 0);
	TAP_CHECK_INT(o.n_mounts, 1);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_NETWORK, "allow:a.com", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_NETWORK, "allow:b.com,c.com", why, sizeof(why)), 0);
	TAP_CHECK_INT(o.network.n_domains, 2);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_CPU, "0.5", why, sizeof(why)), 0);
	TAP_CHECK_INT(o.millicpus, 500);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ALLOW_DEGRADED, NULL, why, sizeof(why)), 0);
	TAP_CHECK_INT(o.allow_degraded, 1);
	TAP_CHECK(o.set & CLI_SET_TIMEOUT);
	TAP_CHECK(o.set & CLI_SET_NETWORK);
	TAP_CHECK(!(o.set & CLI_SET_MEMORY));

	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_TIMEOUT, "0", why, sizeof(why)), -1);
	TAP_CHECK_STR(why, "invalid value `0` for --timeout: must be greater than zero");
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ENV, "NOVALUE", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "--env") != NULL);
	TAP_CHECK_INT(o.n_env, 2);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_ISOLATION, "vm", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "--isolation") != NULL);
	TAP_CHECK_INT(cli_sandbox_opts_set(&o, CLI_OPT_MAX_PROCS, "0", why, sizeof(why)), -1);
	cli_sandbox_opts_free(&o);
}

/* ---- UTF-8 and JSON strings ---- */

static int json_is(const char *in, size_t len, const char *want)
{
	struct cli_buf b = CLI_BUF_INIT;
	int ok;

	cli_json_string(&b, (const uint8_t *)in, len);
	ok = !b.failed && b.data && strcmp(b.data, want) == 0 && b.len == strlen(want);
	if (!ok)
		printf("#   got %s, want %s\n", b.data ? b.data : "(null)", want);
	cli_buf_free(&b);
	return ok;
}

#define JSON_IS(lit, want) json_is(lit, sizeof(lit) - 1, want)

static void test_utf8_sequence(void)
{
	uint32_t cp = 0;

	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"A", 1, &cp), 1);
	TAP_CHECK_INT(cp, 'A');
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xc3\xa9", 2, &cp), 2);
	TAP_CHECK_INT(cp, 0xe9);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xe2\x82\xac", 3, &cp), 3);
	TAP_CHECK_INT(cp, 0x20ac);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf0\x9f\x98\x80", 4, &cp), 4);
	TAP_CHECK_INT(cp, 0x1f600);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
	TAP_CHECK_INT(cp, 0x10ffff);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xed\x9f\xbf", 3, &cp), 3);
	TAP_CHECK_INT(cp, 0xd7ff);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xee\x80\x80", 3, &cp), 3);
	TAP_CHECK_INT(cp, 0xe000);
	/* Overlongs. */
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xc0\xaf", 2, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xc1\xbf", 2, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xe0\x80\xaf", 3, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xe0\x9f\xbf", 3, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf0\x80\x80\xaf", 4, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf0\x8f\xbf\xbf", 4, NULL), 0);
	/* Surrogates. */
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xed\xa0\x80", 3, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xed\xbf\xbf", 3, NULL), 0);
	/* Above U+10FFFF. */
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf4\x90\x80\x80", 4, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf5\x80\x80\x80", 4, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xff", 1, NULL), 0);
	/* Stray continuation, truncation, bad continuation. */
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\x80", 1, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xe2\x82", 2, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xc3\x28", 2, NULL), 0);
	TAP_CHECK_INT(cli_utf8_sequence((const uint8_t *)"\xf0\x9f\x98\x41", 4, NULL), 0);
}

static void test_json_escape_controls(void)
{
	TAP_CHECK(JSON_IS("", "\"\""));
	TAP_CHECK(JSON_IS("hello", "\"hello\""));
	TAP_CHECK(JSON_IS("a\"b\\c", "\"a\\\"b\\\\c\""));
	TAP_CHECK(JSON_IS("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\""));
	TAP_CHECK(JSON_IS("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\""));
	TAP_CHECK(JSON_IS("a\0b", "\"a\\u0000b\""));
	TAP_CHECK(JSON_IS("\x1b[31mred", "\"\\u001b[31mred\""));
	/* "/" needs no escape. */
	TAP_CHECK(JSON_IS("a/b", "\"a/b\""));
}

static void test_json_escape_utf8(void)
{
	/* Valid UTF-8 passes through. */
	TAP_CHECK(JSON_IS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
	/* The JavaScript line separators are escaped. */
	TAP_CHECK(JSON_IS("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\""));
	/* One replacement per invalid byte. */
	TAP_CHECK(JSON_IS("\xff", "\"\\ufffd\""));
	TAP_CHECK(JSON_IS("a\x80z", "\"a\\ufffdz\""));
	TAP_CHECK(JSON_IS("\xc0\xaf", "\"\\ufffd\\ufffd\""));
	TAP_CHECK(JSON_IS("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""));
	TAP_CHECK(JSON_IS("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""));
	TAP_CHECK(JSON_IS("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""));
	/* A truncated sequence, then a valid character. */
	TAP_CHECK(JSON_IS("\xe2\x82" "A", "\"\\ufffd\\ufffdA\""));
	TAP_CHECK(JSON_IS("x\xe2\x82", "\"x\\ufffd\\ufffd\""));
	/* Valid text around an invalid byte survives intact. */
	TAP_CHECK(JSON_IS("\xc3\xa9\xfe\xc3\xa9", "\"\xc3\xa9\\ufffd\xc3\xa9\""));
}

static void test_json_misc(void)
{
	struct cli_buf b = CLI_BUF_INIT;
	int i;

	cli_json_cstring(&b, NULL);
	cli_buf_puts(&b, " ");
	cli_json_bool(&b, 1);
	cli_buf_puts(&b, " ");
	cli_json_bool(&b, 0);
	cli_buf_printf(&b, " %d %.3f", 42, 1.5);
	TAP_CHECK_STR(b.data, "null true false 42 1.500");
	cli_buf_free(&b);

	/* Growth past the first allocation keeps the contents. */
	for (i = 0; i < 1000; i++)
		cli_buf_puts(&b, "0123456789");
	TAP_CHECK_INT(b.len, 10000);
	TAP_CHECK(b.data && strncmp(b.data + 9990, "0123456789", 10) == 0 && b.data[10000] == '\0');
	cli_buf_free(&b);
}

/* ---- names of sandboxes ---- */

static void test_sandbox_names(void)
{
	char long_name[CLI_NAME_MAX + 2];

	TAP_CHECK_INT(cli_check_name("box", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_check_name("a", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_check_name("0", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_check_name("My_box-1.2", why, sizeof(why)), 0);
	TAP_CHECK_INT(cli_check_name("0123456789abcdef", why, sizeof(why)), 0);
	memset(long_name, 'x', CLI_NAME_MAX);
	long_name[CLI_NAME_MAX] = '\0';
	TAP_CHECK_INT(cli_check_name(long_name, why, sizeof(why)), 0);

	long_name[CLI_NAME_MAX] = 'x';
	long_name[CLI_NAME_MAX + 1] = '\0';
	TAP_CHECK_INT(cli_check_name(long_name, why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "longer than 64") != NULL);
	TAP_CHECK_INT(cli_check_name("", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "empty") != NULL);
	TAP_CHECK_INT(cli_check_name(".hidden", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "start with a letter or a digit") != NULL);
	TAP_CHECK_INT(cli_check_name("-x", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("_x", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("..", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("a/b", why, sizeof(why)), -1);
	TAP_CHECK(strstr(why, "`a/b`") != NULL);
	TAP_CHECK_INT(cli_check_name("a b", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("a:b", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("caf\xc3\xa9", why, sizeof(why)), -1);
	TAP_CHECK_INT(cli_check_name("a\nb", why, sizeof(why)), -1);
	/* A NULL reason buffer is allowed (the registry scan uses it). */
	TAP_CHECK_INT(cli_check_name("a/b", NULL, 0), -1);
}

static void test_sandbox_refs(void)
{
	char name[CLI_NAME_MAX + 1], long_ref[CLI_NAME_MAX + 8];
	const char *path = NULL;

	TAP_CHECK_INT(cli_parse_sandbox_ref("box:/workspace/a", name, &path), 1);
	TAP_CHECK_STR(name, "box");
	TAP_CHECK_STR(path, "/workspace/a");
	TAP_CHECK_INT(cli_parse_sandbox_ref("box:rel/a:b", name, &path), 1);
	TAP_CHECK_STR(name, "box");
	TAP_CHECK_STR(path, "rel/a:b");
	TAP_CHECK_INT(cli_parse_sandbox_ref("b-1.x:", name, &path), 1);
	TAP_CHECK_STR(name, "b-1.x");
	TAP_CHECK_STR(path, "");
	/* Host paths: no colon, or not a name before it. */
	TAP_CHECK_INT(cli_parse_sandbox_ref("file.txt", name, &path), 0);
	TAP_CHECK_INT(cli_parse_sandbox_ref("./a:b", name, &path), 0);
	TAP_CHECK_INT(cli_parse_sandbox_ref("/tmp/a:b", name, &path), 0);
	TAP_CHECK_INT(cli_parse_sandbox_ref(":x", name, &path), 0);
	TAP_CHECK_INT(cli_parse_sandbox_ref("a b:x", name, &path), 0);
	TAP_CHECK_INT(cli_parse_sandbox_ref("-x:y", name, &path), 0);
	memset(long_ref, 'x', CLI_NAME_MAX + 1);
	memcpy(long_ref + CLI_NAME_MAX + 1, ":/a", 4);
	TAP_CHECK_INT(cli_parse_sandbox_ref(long_ref, name, &path), 0);
	long_ref[CLI_NAME_MAX] = ':';
	TAP_CHECK_INT(cli_parse_sandbox_ref(long_ref, name, &path), 1);
	TAP_CHECK_INT(strlen(name), CLI_NAME_MAX);
}

/* ---- the supervisor protocol's framing ---- */

static void test_wire_roundtrip(void)
{
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn c;
	struct wire_frame f;
	const uint8_t *data;
	size_t start, len;
	int sv[2];

	start = wire_begin(&b, WIRE_EXEC);
	wire_u8(&b, 0xab);
	wire_u16(&b, 0x1234);
	wire_u32(&b, 0xdeadbeef);
	wire_u64(&b, 0x0102030405060708ull);
	wire_str(&b, "hello");
	wire_str(&b, NULL);
	wire_bytes(&b, "a\0b", 3);
	TAP_CHECK_INT(wire_end(&b, start), 0);
	start = wire_begin(&b, WIRE_OK);
	TAP_CHECK_INT(wire_end(&b, start), 0);
	/* Big-endian length: 1 type + 1 + 2 + 4 + 8 + (4+5+1) + (4+0+1) + (4+3) = 38. */
	TAP_CHECK_INT((uint8_t)b.data[3], 38);
	TAP_CHECK_INT((uint8_t)b.data[4], WIRE_EXEC);

	TAP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	TAP_CHECK_INT(wire_send(sv[0], &b), 0);
	TAP_CHECK_INT(b.len, 0);
	close(sv[0]);
	wire_conn_init(&c, sv[1]);
	TAP_CHECK_INT(wire_conn_recv(&c, &f, 1000), 1);
	TAP_CHECK_INT(f.type, WIRE_EXEC);
	TAP_CHECK_INT(wire_get_u8(&f.r), 0xab);
	TAP_CHECK_INT(wire_get_u16(&f.r), 0x1234);
	TAP_CHECK_INT(wire_get_u32(&f.r), 0xdeadbeef);
	TAP_CHECK(wire_get_u64(&f.r) == 0x0102030405060708ull);
	TAP_CHECK_STR(wire_get_str(&f.r), "hello");
	TAP_CHECK_STR(wire_get_str(&f.r), "");
	len = wire_get_bytes(&f.r, &data);
	TAP_CHECK_INT(len, 3);
	TAP_CHECK(memcmp(data, "a\0b", 3) == 0);
	TAP_CHECK_INT(wire_done(&f.r), 0);
	/* The second frame was read along with the first. */
	TAP_CHECK(wire_conn_partial(&c));
	TAP_CHECK_INT(wire_conn_recv(&c, &f, 1000), 1);
	TAP_CHECK_INT(f.type, WIRE_OK);
	TAP_CHECK_INT(wire_done(&f.r), 0);
	/* A clean end of file between frames. */
	TAP_CHECK_INT(wire_conn_recv(&c, &f, 1000), 0);
	wire_conn_close(&c);
	cli_buf_free(&b);
}

/* Feeds raw bytes to a connection and returns what wire_conn_recv() says. */
static int recv_raw(const void *bytes, size_t len, struct wire_frame *f, int *err)
{
	static struct wire_conn c;
	int sv[2], rc;

	wire_conn_close(&c);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -2;
	if (len)
		(void)!write(sv[0], bytes, len);
	close(sv[0]);
	wire_conn_init(&c, sv[1]);
	errno = 0;
	rc = wire_conn_recv(&c, f, 1000);
	*err = errno;
	return rc;
}

static void test_wire_bad_frames(void)
{
	struct wire_frame f;
	int err;

	/* Empty body, oversized length, end of file inside a frame. */
	TAP_CHECK_INT(recv_raw("\0\0\0\0", 4, &f, &err), -1);
	TAP_CHECK_INT(err, EPROTO);
	TAP_CHECK_INT(recv_raw("\0\x10\0\x01\x01", 5, &f, &err), -1);
	TAP_CHECK_INT(err, EPROTO);
	TAP_CHECK_INT(recv_raw("\xff\xff\xff\xff", 4, &f, &err), -1);
	TAP_CHECK_INT(recv_raw("\0\0\0\x05\x01\0", 6, &f, &err), -1);
	TAP_CHECK_INT(err, EPROTO);
	TAP_CHECK_INT(recv_raw("\0\0", 2, &f, &err), -1);
	TAP_CHECK_INT(err, EPROTO);
	TAP_CHECK_INT(recv_raw("", 0, &f, &err), 0);

	/* Fields past the end, a string without its NUL or with one inside. */
	TAP_CHECK_INT(recv_raw("\0\0\0\x03\x01\0\x07", 7, &f, &err), 1);
	TAP_CHECK_INT(wire_get_u32(&f.r), 0);
	TAP_CHECK(f.r.bad);
	TAP_CHECK_INT(wire_done(&f.r), -1);
	TAP_CHECK_INT(recv_raw("\0\0\0\x07\x01\0\0\0\x02hi", 11, &f, &err), 1);
	TAP_CHECK_STR(wire_get_str(&f.r), "");
	TAP_CHECK(f.r.bad);
	TAP_CHECK_INT(recv_raw("\0\0\0\x08\x01\0\0\0\x02h\0\0", 12, &f, &err), 1);
	TAP_CHECK_STR(wire_get_str(&f.r), "");
	TAP_CHECK(f.r.bad);
	TAP_CHECK_INT(recv_raw("\0\0\0\x08\x01\0\0\0\x02hiX", 12, &f, &err), 1);
	TAP_CHECK_STR(wire_get_str(&f.r), "");
	TAP_CHECK(f.r.bad);
	/* A length that points past the frame. */
	TAP_CHECK_INT(recv_raw("\0\0\0\x06\x01\xff\xff\xff\xf0z", 10, &f, &err), 1);
	{
		const uint8_t *d;

		TAP_CHECK_INT(wire_get_bytes(&f.r, &d), 0);
		TAP_CHECK(f.r.bad);
	}
	/* Left-over fields are an error too. */
	TAP_CHECK_INT(recv_raw("\0\0\0\x02\x01\x05", 6, &f, &err), 1);
	TAP_CHECK_INT(wire_done(&f.r), -1);
	(void)recv_raw("", 0, &f, &err);
}

static void test_wire_limits(void)
{
	struct cli_buf b = CLI_BUF_INIT;
	static uint8_t big[WIRE_MAX_BODY + 1];
	size_t start;

	/* A chunk fits with room to spare; a body over the limit is refused and dropped. */
	start = wire_begin(&b, WIRE_DATA);
	wire_bytes(&b, big, WIRE_CHUNK);
	TAP_CHECK_INT(wire_end(&b, start), 0);
	start = wire_begin(&b, WIRE_DATA);
	wire_bytes(&b, big, WIRE_MAX_BODY);
	errno = 0;
	TAP_CHECK_INT(wire_end(&b, start), -1);
	TAP_CHECK_INT(errno, EMSGSIZE);
	TAP_CHECK_INT(b.len, start);
	TAP_CHECK(!b.failed);
	/* A field that alone is over the limit, too (a huge argument). */
	start = wire_begin(&b, WIRE_EXEC);
	wire_u8(&b, 1);
	wire_bytes(&b, big, WIRE_MAX_BODY + (size_t)1);
	wire_u32(&b, 7);
	errno = 0;
	TAP_CHECK_INT(wire_end(&b, start), -1);
	TAP_CHECK_INT(errno, EMSGSIZE);
	TAP_CHECK_INT(b.len, start);
	cli_buf_free(&b);
}

/* ---- durations (create --ttl) and signals (kill --signal) ---- */

static uint64_t duration_ok(const char *s)
{
	uint64_t ms = 0;

	why[0] = '\0';
	if (cli_parse_duration(s, &ms, why, sizeof(why)) != 0) {
		printf("#   unexpected failure for `%s`: %s\n", s, why);
		return UINT64_MAX;
	}
	return ms;
}

static int duration_bad(const char *s, const char *reason)
{
	uint64_t ms = 12345;

	why[0] = '\0';
	if (cli_parse_duration(s, &ms, why, sizeof(why)) != -1)
		return 0;
	if (strstr(why, reason) == NULL)
		printf("#   `%s`: %s\n", s, why);
	return ms == 12345 && strstr(why, reason) != NULL;
}

static void test_duration(void)
{
	TAP_CHECK_INT(duration_ok("30s"), 30000);
	TAP_CHECK_INT(duration_ok("10m"), 600000);
	TAP_CHECK_INT(duration_ok("2h"), 7200000);
	TAP_CHECK_INT(duration_ok("1d"), 86400000);
	TAP_CHECK_INT(duration_ok("1h30m"), 5400000);
	TAP_CHECK_INT(duration_ok("1d2h3m4s"), (uint64_t)(86400 + 7200 + 180 + 4) * 1000);
	TAP_CHECK_INT(duration_ok("90"), 90000);	/* a bare number is seconds */
	TAP_CHECK_INT(duration_ok("1"), 1000);
	TAP_CHECK_INT(duration_ok("90m"), 5400000);	/* a unit may exceed the next one up */
	TAP_CHECK_INT(duration_ok("365d"), (uint64_t)365 * 86400 * 1000);
	TAP_CHECK_INT(duration_ok("007s"), 7000);
}

static void test_duration_bad(void)
{
	TAP_CHECK(duration_bad("", "empty"));
	TAP_CHECK(duration_bad("0", "at least 1s"));
	TAP_CHECK(duration_bad("0s", "at least 1s"));
	TAP_CHECK(duration_bad("0h0m", "at least 1s"));
	TAP_CHECK(duration_bad("5x", "unknown unit"));
	TAP_CHECK(duration_bad("5S", "unknown unit"));
	TAP_CHECK(duration_bad("1.5h", "unknown unit"));
	TAP_CHECK(duration_bad("-5s", "not a duration"));
	TAP_CHECK(duration_bad("h", "not a duration"));
	TAP_CHECK(duration_bad("s5", "not a duration"));
	TAP_CHECK(duration_bad(" 5s", "not a duration"));
	TAP_CHECK(duration_bad("5s ", "not a duration"));
	TAP_CHECK(duration_bad("5m1h", "largest first"));
	TAP_CHECK(duration_bad("1h1h", "largest first"));
	TAP_CHECK(duration_bad("1h5", "unit is missing"));
	TAP_CHECK(duration_bad("366d", "too large"));
	TAP_CHECK(duration_bad("99999999999999999999s", "too large"));
	TAP_CHECK(duration_bad("18446744073709551617", "too large"));
}

static void test_format_duration(void)
{
	char out[32];

	cli_format_duration(out, sizeof(out), 0);
	TAP_CHECK_STR(out, "0s");
	cli_format_duration(out, sizeof(out), 59);
	TAP_CHECK_STR(out, "59s");
	cli_format_duration(out, sizeof(out), 192);
	TAP_CHECK_STR(out, "3m12s");
	cli_format_duration(out, sizeof(out), 7500);
	TAP_CHECK_STR(out, "2h05m");
	cli_format_duration(out, sizeof(out), 3 * 86400 + 4 * 3600 + 59);
	TAP_CHECK_STR(out, "3d04h");
}

static int signal_ok(const char *s)
{
	int sig = -1;

	why[0] = '\0';
	if (cli_parse_signal(s, &sig, why, sizeof(why)) != 0) {
		printf("#   unexpected failure for `%s`: %s\n", s, why);
		return -1;
	}
	return sig;
}

static int signal_bad(const char *s, const char *reason)
{
	int sig = 12345;

	why[0] = '\0';
	if (cli_parse_signal(s, &sig, why, sizeof(why)) != -1)
		return 0;
	return sig == 12345 && strstr(why, reason) != NULL;
}

static void test_signals(void)
{
	TAP_CHECK_INT(signal_ok("TERM"), SIGTERM);
	TAP_CHECK_INT(signal_ok("SIGTERM"), SIGTERM);
	TAP_CHECK_INT(signal_ok("term"), SIGTERM);
	TAP_CHECK_INT(signal_ok("sigkill"), SIGKILL);
	TAP_CHECK_INT(signal_ok("KILL"), SIGKILL);
	TAP_CHECK_INT(signal_ok("INT"), SIGINT);
	TAP_CHECK_INT(signal_ok("HUP"), SIGHUP);
	TAP_CHECK_INT(signal_ok("USR1"), SIGUSR1);
	TAP_CHECK_INT(signal_ok("SIGUSR2"), SIGUSR2);
	TAP_CHECK_INT(signal_ok("WINCH"), SIGWINCH);
	TAP_CHECK_INT(signal_ok("CONT"), SIGCONT);
	TAP_CHECK_INT(signal_ok("15"), 15);
	TAP_CHECK_INT(signal_ok("9"), 9);
	TAP_CHECK_INT(signal_ok("1"), 1);
	TAP_CHECK_INT(signal_ok("64"), 64);
}

static void test_signals_bad(void)
{
	TAP_CHECK(signal_bad("", "unknown signal"));
	TAP_CHECK(signal_bad("SIG", "unknown signal"));
	TAP_CHECK(signal_bad("TERMX", "unknown signal"));
	TAP_CHECK(signal_bad("SIGSIGTERM", "unknown signal"));
	TAP_CHECK(signal_bad("-15", "unknown signal"));
	TAP_CHECK(signal_bad("0", "not a signal"));
	TAP_CHECK(signal_bad("65", "not a signal"));
	TAP_CHECK(signal_bad("15x", "not a signal"));
	TAP_CHECK(signal_bad("99999999999999999999999", "not a signal"));
}

/* The options a snapshot keeps (cli_sandbox_opts_note) come back whole,
 * without the ones that name host files, and a bad note is refused. */
static void test_opts_note(void)
{
	static const struct { int id; const char *value; } given[] = {
		{ CLI_OPT_TIMEOUT, "7" }, { CLI_OPT_MEMORY, "300m" }, { CLI_OPT_HOSTNAME, "hh" },
		{ CLI_OPT_WORKDIR, "/tmp" }, { CLI_OPT_ENV, "A=1" }, { CLI_OPT_ENV, "B=x=y" },
		{ CLI_OPT_NETWORK, "allow:example.invalid" }, { CLI_OPT_ALLOW_DEGRADED, NULL },
		{ CLI_OPT_MOUNT, "/tmp:/data" }, { CLI_OPT_HTTP_RULE, "allow GET example.invalid/*" },
	};
	struct cli_sandbox_opts o, back;
	char reason[CLI_WHY_MAX], *note = NULL;
	size_t len = 0, i;

	cli_sandbox_opts_init(&o);
	for (i = 0; i < sizeof(given) / sizeof(given[0]); i++)
		TAP_CHECK_INT(cli_sandbox_opts_set(&o, given[i].id, given[i].value, reason, sizeof(reason)), 0);
	TAP_CHECK_INT(cli_sandbox_opts_note(&o, &note, &len), 0);
	cli_sandbox_opts_init(&back);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, note, len, reason, sizeof(reason)), 0);
	TAP_CHECK_INT(back.timeout_ms, 7000);
	TAP_CHECK_INT(back.memory_bytes, 300ull << 20);
	TAP_CHECK_STR(back.hostname, "hh");
	TAP_CHECK_STR(back.workdir, "/tmp");
	TAP_CHECK_INT(back.n_env, 2);
	TAP_CHECK(back.n_env == 2 && strcmp(back.env[1].value, "x=y") == 0);
	TAP_CHECK_INT(back.network.policy, MBX_NETWORK_ALLOW_DOMAINS);
	TAP_CHECK_INT(back.allow_degraded, 1);
	TAP_CHECK_INT(back.n_http_rules, 1);
	TAP_CHECK_INT(back.n_mounts, 0); /* host paths: never in a note */
	TAP_CHECK_INT(back.set, o.set);
	cli_sandbox_opts_free(&back);
	free(note);
	cli_sandbox_opts_free(&o);

	/* Notes a snapshot must not make us act on, or malformed ones. */
	static const char mount[] = "--mount\0/etc:/x\0", envfile[] = "--env-file\0/etc/shadow\0",
			  unknown[] = "--frob\0", noval[] = "--timeout\0", badval[] = "--timeout\0never\0",
			  unterminated[] = { '-', '-', 'c', 'p', 'u' };
	cli_sandbox_opts_init(&back);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, mount, sizeof(mount) - 1, reason, sizeof(reason)), -1);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, envfile, sizeof(envfile) - 1, reason, sizeof(reason)), -1);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, unknown, sizeof(unknown) - 1, reason, sizeof(reason)), -1);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, noval, sizeof(noval) - 1, reason, sizeof(reason)), -1);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, badval, sizeof(badval) - 1, reason, sizeof(reason)), -1);
	TAP_CHECK_INT(cli_sandbox_opts_from_note(&back, unterminated, sizeof(unterminated), reason, sizeof(reason)), -1);
	TAP_CHECK_INT(back.n_mounts, 0);
	TAP_CHECK_INT(back.n_env, 0);
	cli_sandbox_opts_free(&back);
}

static const struct tap_case cases[] = {
	{ "cli/opts-note", test_opts_note },
	{ "cli/duration", test_duration },
	{ "cli/duration-bad", test_duration_bad },
	{ "cli/format-duration", test_format_duration },
	{ "cli/signals", test_signals },
	{ "cli/signals-bad", test_signals_bad },
	{ "cli/timeout-decimal", test_timeout_decimal },
	{ "cli/timeout-zero-negative", test_timeout_zero_negative },
	{ "cli/timeout-garbage", test_timeout_garbage },
	{ "cli/cpus", test_cpus },
	{ "cli/memory", test_memory },
	{ "cli/disk", test_disk },
	{ "cli/memory-units", test_memory_units },
	{ "cli/closest", test_closest },
	{ "cli/unknown-option-hint", test_unknown_option_hint },
	{ "cli/net-options", test_net_options },
	{ "cli/base64", test_base64 },
	{ "cli/uint", test_uint },
	{ "cli/mount-default-mode", test_mount_default_mode },
	{ "cli/mount-with-mode", test_mount_with_mode },
	{ "cli/mount-bad", test_mount_bad },
	{ "cli/network", test_network },
	{ "cli/network-bad", test_network_bad },
	{ "cli/env", test_env },
	{ "cli/env-bad", test_env_bad },
	{ "cli/env-file", test_env_file },
	{ "cli/env-file-bad", test_env_file_bad },
	{ "cli/names", test_names },
	{ "cli/scanner", test_scanner },
	{ "cli/scanner-stops-at-program", test_scanner_stops_at_program },
	{ "cli/scanner-errors", test_scanner_errors },
	{ "cli/sandbox-opts", test_sandbox_opts },
	{ "cli/utf8-sequence", test_utf8_sequence },
	{ "cli/json-escape-controls", test_json_escape_controls },
	{ "cli/json-escape-utf8", test_json_escape_utf8 },
	{ "cli/json-misc", test_json_misc },
	{ "cli/sandbox-names", test_sandbox_names },
	{ "cli/sandbox-refs", test_sandbox_refs },
	{ "cli/wire-roundtrip", test_wire_roundtrip },
	{ "cli/wire-bad-frames", test_wire_bad_frames },
	{ "cli/wire-limits", test_wire_limits },
};

TAP_MAIN(cases)
