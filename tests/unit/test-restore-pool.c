/* SPDX-License-Identifier: Apache-2.0 */
/* Restore pool settings and the error copy the pool hands out (pure logic;
 * real pools are tests/integration/test_restore_pool.py). */
#include <errno.h>
#include <string.h>

#include <mbx/mbx.h>
#include "internal.h"
#include "tap.h"

static void test_settings(void)
{
	mbx_restore_pool_config *pc = NULL;
	mbx_config *cfg = NULL;
	mbx_error *err = NULL;

	TAP_CHECK_INT(mbx_restore_pool_config_new(&pc, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_min_idle(pc, 0, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_min_idle(pc, MBX_RESTORE_POOL_MAX_MEMBERS, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_min_idle(pc, MBX_RESTORE_POOL_MAX_MEMBERS + 1, &err), MBX_EINVAL);
	TAP_CHECK(err && strstr(mbx_error_message(err), "at most 256 members ready, not 257"));
	TAP_CHECK_INT(mbx_restore_pool_config_set_max_members(pc, 0, &err), MBX_EINVAL);
	TAP_CHECK(err && strstr(mbx_error_message(err), "must be 1 to 256, not 0") && mbx_error_suggestion(err) &&
		  strstr(mbx_error_suggestion(err), "mbx_sandbox_from_snapshot"));
	TAP_CHECK_INT(mbx_restore_pool_config_set_max_members(pc, 1, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_idle_timeout_ms(pc, 0, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_idle_timeout_ms(pc, 24ull * 3600 * 1000, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_idle_timeout_ms(pc, 24ull * 3600 * 1000 + 1, &err), MBX_EINVAL);
	TAP_CHECK(err && strstr(mbx_error_message(err), "at most a day"));
	TAP_CHECK_INT(mbx_config_new(&cfg, NULL), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_sandbox_config(pc, cfg, &err), MBX_OK);
	mbx_config_free(cfg); /* copied */
	TAP_CHECK_INT(mbx_restore_pool_config_set_sandbox_config(pc, NULL, &err), MBX_OK);
	TAP_CHECK_INT(mbx_restore_pool_config_set_min_idle(NULL, 1, &err), MBX_EINVAL);
	TAP_CHECK_INT(mbx_restore_pool_config_new(NULL, &err), MBX_EINVAL);
	mbx_restore_pool_config_free(pc);
	mbx_restore_pool_config_free(NULL);
	mbx_error_free(err);
}

static void test_error_copy(void)
{
	mbx_error *a = NULL, *b = NULL;

	mbx__error_set(&a, MBX_ENOTFOUND, ENOENT, "os", "open `%s`", "/nowhere");
	mbx__error_suggest(&a, "make it");
	TAP_CHECK_INT(mbx__error_copy(&b, a), MBX_OK);
	TAP_CHECK(b != NULL && b != a);
	TAP_CHECK_INT(mbx_error_code(b), MBX_ENOTFOUND);
	TAP_CHECK_INT(mbx_error_errno(b), ENOENT);
	TAP_CHECK_STR(mbx_error_message(b), mbx_error_message(a));
	TAP_CHECK_STR(mbx_error_suggestion(b), "make it");
	TAP_CHECK_STR(mbx_error_layer(b), "os");
	/* The copy lives on its own. */
	mbx_error_free(a);
	TAP_CHECK(strstr(mbx_error_message(b), "open `/nowhere`") != NULL);
	TAP_CHECK_INT(mbx__error_copy(NULL, b), MBX_OK);
	mbx_error_free(b);
}

static void test_null_pool(void)
{
	mbx_restore_pool *pool = (mbx_restore_pool *)1;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	uint64_t v[MBX_RESTORE_POOL_STAT_COUNT];

	TAP_CHECK_INT(mbx_restore_pool_new(&pool, NULL, NULL, &err), MBX_EINVAL);
	TAP_CHECK(pool == NULL && err && mbx_error_suggestion(err));
	TAP_CHECK_INT(mbx_restore_pool_acquire(NULL, &sb, 0, &err), MBX_EINVAL);
	TAP_CHECK_INT(mbx_restore_pool_stats(NULL, v, MBX_RESTORE_POOL_STAT_COUNT), 0);
	TAP_CHECK_INT(mbx_restore_pool_last_error(NULL, &err), MBX_EINVAL);
	mbx_restore_pool_free(NULL);
	mbx_error_free(err);
}

static const struct tap_case cases[] = {
	{ "restore-pool/settings", test_settings },
	{ "restore-pool/error-copy", test_error_copy },
	{ "restore-pool/null-pool", test_null_pool },
};

TAP_MAIN(cases)
