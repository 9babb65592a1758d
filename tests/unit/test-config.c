/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of configuration checks and error objects. */
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static void test_defaults(void)
{
	mbx_config *cfg = NULL;

	TAP_CHECK_INT(mbx_config_new(&cfg, NULL), MBX_OK);
	TAP_CHECK_INT(cfg->isolation, MBX_ISOLATION_AUTO);
	TAP_CHECK_INT(cfg->trust, MBX_TRUST_SEMI_TRUSTED);
	TAP_CHECK_INT(cfg->network, MBX_NETWORK_DENY_ALL);
	TAP_CHECK_INT(cfg->timeout_ms, 30000);
	TAP_CHECK(cfg->memory_bytes == 512ull << 20);
	TAP_CHECK_INT(cfg->max_procs, 64);
	TAP_CHECK_STR(cfg->workdir, "/workspace");
	TAP_CHECK_INT(mbx__config_validate(cfg, NULL), MBX_OK);
	mbx_config_free(cfg);
}

static void test_bad_values(void)
{
	mbx_config *cfg = NULL;
	mbx_error *err = NULL;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx_config_set_timeout_ms(cfg, 0, &err), MBX_EINVAL);
	TAP_CHECK(strstr(mbx_error_message(err), "timeout") != NULL);
	TAP_CHECK_STR(mbx_error_code_name(mbx_error_code(err)), "invalid_argument");
	mbx_error_free(err);
	TAP_CHECK_INT(mbx_config_set_memory_limit(cfg, 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_max_processes(cfg, 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_isolation(cfg, 9, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_trust(cfg, 9, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_network(cfg, 9, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_hostname(cfg, "bad host", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_workdir(cfg, "/a/../b", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "exa mple.com", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "*.example.com", NULL), MBX_OK);
	/* Disk limit: 1 MiB to 1 TiB; a refused value keeps the default. */
	TAP_CHECK_INT(cfg->disk_bytes, 2048ULL << 20);
	TAP_CHECK(!cfg->disk_explicit);
	err = NULL;
	TAP_CHECK_INT(mbx_config_set_disk_limit(cfg, 0, &err), MBX_EINVAL);
	TAP_CHECK(strstr(mbx_error_message(err), "disk limit") != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx_config_set_disk_limit(cfg, (1ULL << 20) - 1, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_set_disk_limit(cfg, (1ULL << 40) + 1, NULL), MBX_EINVAL);
	TAP_CHECK_INT(cfg->disk_bytes, 2048ULL << 20);
	TAP_CHECK(!cfg->disk_explicit);
	TAP_CHECK_INT(mbx_config_set_disk_limit(cfg, 1ULL << 20, NULL), MBX_OK);
	TAP_CHECK(cfg->disk_bytes == 1ULL << 20 && cfg->disk_explicit);
	/* Inodes follow the size: one per 32 KiB, at least 1024. */
	TAP_CHECK_INT(mbx__disk_inodes(2048ULL << 20), 65536);
	TAP_CHECK_INT(mbx__disk_inodes(1ULL << 20), 1024);
	/* Nothing invalid was stored. */
	TAP_CHECK_INT(cfg->timeout_ms, 30000);
	TAP_CHECK_STR(cfg->workdir, "/workspace");
	mbx_config_free(cfg);
}

static void test_paths(void)
{
	mbx_config *cfg = NULL;
	mbx_exec_options *o = NULL;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx_config_set_workdir(cfg, "//workspace/./src//", NULL), MBX_OK);
	TAP_CHECK_STR(cfg->workdir, "/workspace/src");
	TAP_CHECK_INT(mbx_config_set_workdir(cfg, "rel/dir", NULL), MBX_OK);
	TAP_CHECK_STR(cfg->workdir, "/workspace/rel/dir");
	mbx_exec_options_new(&o, NULL);
	TAP_CHECK_INT(mbx_exec_options_set_workdir(o, "sub", NULL), MBX_OK);
	TAP_CHECK_STR(o->workdir, "/workspace/sub");
	TAP_CHECK_INT(mbx_exec_options_set_timeout_ms(o, 0, NULL), MBX_EINVAL);
	mbx_exec_options_free(o);
	mbx_config_free(cfg);
}

/* A relative path with `..` is refused with a message naming the path as
 * given; the message used to be formatted from the freed joined path
 * (/workspace/<path>), which ASan and valgrind report as a use after free. */
static void test_dotdot_message(void)
{
	static const char *const bad[] = { "a/..", "../x", "a/../../b", "./..", ".." };
	mbx_config *cfg = NULL;
	mbx_exec_options *o = NULL;
	char want[64];

	mbx_config_new(&cfg, NULL);
	mbx_exec_options_new(&o, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mbx_error *err = NULL;

		snprintf(want, sizeof(want), "`%s` contains `..`", bad[i]);
		TAP_CHECK_INT(mbx_config_set_workdir(cfg, bad[i], &err), MBX_EINVAL);
		TAP_CHECK(err != NULL && strstr(mbx_error_message(err), want) != NULL);
		if (err && !strstr(mbx_error_message(err), want))
			printf("#   message: %s\n", mbx_error_message(err));
		mbx_error_free(err);
		err = NULL;
		TAP_CHECK_INT(mbx_exec_options_set_workdir(o, bad[i], &err), MBX_EINVAL);
		TAP_CHECK(err != NULL && strstr(mbx_error_message(err), want) != NULL);
		mbx_error_free(err);
	}
	/* Nothing was stored. */
	TAP_CHECK_STR(cfg->workdir, "/workspace");
	mbx_exec_options_free(o);
	mbx_config_free(cfg);
}

static void test_mounts(void)
{
	mbx_config *cfg = NULL, *copy = NULL;
	mbx_error *err = NULL;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/nonexistent/path/x", "/mnt/x", 0, &err), MBX_ENOTFOUND);
	TAP_CHECK(strstr(mbx_error_message(err), "/nonexistent/path/x") != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "relative", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/proc/x", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/usr/local", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/workspace", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/workspace/data", MBX_MOUNT_RW, NULL), MBX_OK);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/mnt/a/../b", 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/tmp", "/opt/data", 7, NULL), MBX_EINVAL);
	TAP_CHECK_INT(cfg->nmounts, 1);
	TAP_CHECK_INT(mbx_config_add_mount(cfg, "/usr", "/workspace/data", 0, NULL), MBX_OK);
	TAP_CHECK_INT(mbx__config_validate(cfg, &err), MBX_EINVAL);
	TAP_CHECK(err && strstr(mbx_error_message(err), "two mounts") != NULL);
	mbx_error_free(err);
	TAP_CHECK_INT(mbx__config_copy(cfg, &copy, NULL), MBX_OK);
	TAP_CHECK_INT(copy->nmounts, 2);
	TAP_CHECK(copy->mounts[0].host != cfg->mounts[0].host);
	mbx_config_free(copy);
	mbx_config_free(cfg);
}

static void test_network_policy(void)
{
	mbx_config *cfg = NULL;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx_config_set_network(cfg, MBX_NETWORK_ALLOW_DOMAINS, NULL), MBX_OK);
	TAP_CHECK_INT(mbx__config_validate(cfg, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_config_add_allowed_domain(cfg, "example.com", NULL), MBX_OK);
	TAP_CHECK_INT(mbx__config_validate(cfg, NULL), MBX_OK);
	mbx_config_free(cfg);
}

static void test_error_names(void)
{
	int codes[] = { MBX_OK, MBX_EINVAL, MBX_ENOMEM, MBX_ENOTSUP, MBX_EPERM, MBX_ESYS, MBX_ETIMEDOUT,
			MBX_EBACKEND, MBX_ESTATE, MBX_ENOTFOUND, MBX_ENOEXEC, MBX_ENOTDIR, MBX_ETOOBIG, MBX_EPROTO, MBX_EEXIST,
			MBX_EDENIED, MBX_ENETWORK, MBX_ETLS };

	/* Every code has its own stable name. */
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		TAP_CHECK(strcmp(mbx_error_code_name(codes[i]), "unknown") != 0);
		for (size_t j = 0; j < i; j++)
			TAP_CHECK(strcmp(mbx_error_code_name(codes[i]), mbx_error_code_name(codes[j])) != 0);
	}
	TAP_CHECK_STR(mbx_error_code_name(-999), "unknown");
}

static void test_error_chain(void)
{
	mbx_error *err = NULL;

	TAP_CHECK_INT(mbx__error_set(&err, MBX_ESYS, 2, "seccomp", "open `%s`", "/x"), MBX_ESYS);
	mbx__error_wrap(&err, "create sandbox");
	mbx__error_suggest(&err, "do %s", "this");
	TAP_CHECK_STR(mbx_error_message(err), "create sandbox: open `/x`: No such file or directory");
	TAP_CHECK_STR(mbx_error_suggestion(err), "do this");
	TAP_CHECK_STR(mbx_error_layer(err), "seccomp");
	TAP_CHECK_INT(mbx_error_errno(err), 2);
	mbx_error_free(err);
	/* NULL err: codes still come back. */
	TAP_CHECK_INT(mbx__error_set(NULL, MBX_EPERM, 0, NULL, "x"), MBX_EPERM);
	mbx_error_free(NULL);
}

static void test_routing(void)
{
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	const char *argv[] = { "tool.wasm", NULL };

	mbx_config_new(&cfg, NULL);
	/* Untrusted under Auto goes to the microVM and does not fall back to
	 * the os backend when that cannot start (here: no guest assets). */
	setenv("MIMOBOX_VM_DIR", "/nonexistent/mimobox-vm-assets", 1);
	mbx_config_set_trust(cfg, MBX_TRUST_UNTRUSTED, NULL);
	TAP_CHECK_INT(mbx_sandbox_new(&sb, cfg, &err), MBX_ENOTFOUND);
	TAP_CHECK(sb == NULL);
	TAP_CHECK(err && strstr(mbx_error_message(err), "microvm") != NULL);
	TAP_CHECK_STR(mbx_error_layer(err), "microvm");
	mbx_error_free(err);
	err = NULL;
	unsetenv("MIMOBOX_VM_DIR");
	mbx_config_set_trust(cfg, MBX_TRUST_SEMI_TRUSTED, NULL);
	mbx_config_set_isolation(cfg, MBX_ISOLATION_WASM, NULL);
#if MBX_FEATURE_WASM
	/* An explicit wasm sandbox is made (no engine yet: that comes with
	 * the first execute). */
	TAP_CHECK_INT(mbx_sandbox_new(&sb, cfg, &err), MBX_OK);
	TAP_CHECK_INT(mbx_sandbox_isolation(sb), MBX_ISOLATION_WASM);
	mbx_sandbox_free(sb);
	sb = NULL;
	/* Auto routes a .wasm program to Wasm, which cannot find it. */
	mbx_config_set_isolation(cfg, MBX_ISOLATION_AUTO, NULL);
	TAP_CHECK_INT(mbx_run(cfg, argv, NULL, &res, &err), MBX_ENOTFOUND);
	TAP_CHECK_STR(mbx_error_layer(err), "wasm");
#else
	/* Explicit levels that are not built answer "unavailable". */
	TAP_CHECK_INT(mbx_sandbox_new(&sb, cfg, &err), MBX_ENOTSUP);
	TAP_CHECK(err && strstr(mbx_error_message(err), "unavailable") != NULL);
	mbx_error_free(err);
	err = NULL;
	/* Auto routes a .wasm program to Wasm. */
	mbx_config_set_isolation(cfg, MBX_ISOLATION_AUTO, NULL);
	TAP_CHECK_INT(mbx_run(cfg, argv, NULL, &res, &err), MBX_ENOTSUP);
	TAP_CHECK_STR(mbx_error_layer(err), "wasm");
#endif
	TAP_CHECK(res == NULL);
	mbx_error_free(err);
	mbx_config_free(cfg);
}

static const struct tap_case cases[] = {
	{ "config/defaults", test_defaults },
	{ "config/bad-values", test_bad_values },
	{ "config/paths", test_paths },
	{ "config/dotdot-message", test_dotdot_message },
	{ "config/mounts", test_mounts },
	{ "config/network-policy", test_network_policy },
	{ "error/names", test_error_names },
	{ "error/chain", test_error_chain },
	{ "sandbox/routing", test_routing },
};

TAP_MAIN(cases)
