/* SPDX-License-Identifier: Apache-2.0 */
/* Warm pools against real sandboxes (skipped where none can be made). */
#include <string.h>
#include <unistd.h>

#include <mbx/mbx.h>
#include "tap.h"

static int sandboxes_work(void)
{
	mbx_sandbox *sb = NULL;
	int ok = mbx_sandbox_new(&sb, NULL, NULL) == MBX_OK;

	mbx_sandbox_free(sb);
	return ok;
}

static void test_take_and_refill(void)
{
	mbx_pool *pool = NULL;
	mbx_error *err = NULL;
	const char *argv[] = { "sh", "-c", "echo $((6 * 7))", NULL };

	if (!sandboxes_work())
		TAP_SKIP("no sandbox can be created on this host");
	TAP_CHECK_INT(mbx_pool_new(&pool, NULL, 2, &err), MBX_OK);
	if (pool == NULL)
		return;
	for (int round = 0; round < 5; round++) {
		mbx_sandbox *sb = NULL;
		mbx_result *res = NULL;
		size_t len = 0;

		TAP_CHECK_INT(mbx_pool_take(pool, &sb, &err), MBX_OK);
		TAP_CHECK(sb != NULL);
		TAP_CHECK_INT(mbx_sandbox_exec(sb, argv, NULL, &res, &err), MBX_OK);
		TAP_CHECK_STR((const char *)mbx_result_stdout(res, &len), "42\n");
		mbx_result_free(res);
		mbx_sandbox_free(sb);
	}
	/* The filler brings the pool back to its size. */
	for (int i = 0; i < 200 && mbx_pool_ready(pool) < 2; i++)
		usleep(10000);
	TAP_CHECK_INT(mbx_pool_ready(pool), 2);
	mbx_pool_free(pool);
}

static void test_distinct(void)
{
	mbx_pool *pool = NULL;
	mbx_sandbox *a = NULL, *b = NULL;

	if (!sandboxes_work())
		TAP_SKIP("no sandbox can be created on this host");
	TAP_CHECK_INT(mbx_pool_new(&pool, NULL, 1, NULL), MBX_OK);
	TAP_CHECK_INT(mbx_pool_take(pool, &a, NULL), MBX_OK);
	/* Empty or not, a take always gives a fresh sandbox. */
	TAP_CHECK_INT(mbx_pool_take(pool, &b, NULL), MBX_OK);
	TAP_CHECK(a && b && strcmp(mbx_sandbox_id(a), mbx_sandbox_id(b)) != 0);
	mbx_sandbox_free(a);
	mbx_sandbox_free(b);
	mbx_pool_free(pool);
}

static void test_bad_config(void)
{
	mbx_config *cfg = NULL;
	mbx_pool *pool = NULL;
	mbx_error *err = NULL;

	TAP_CHECK_INT(mbx_pool_new(&pool, NULL, 0, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_pool_new(&pool, NULL, 65, NULL), MBX_EINVAL);
	mbx_config_new(&cfg, NULL);
	mbx_config_set_isolation(cfg, MBX_ISOLATION_MICROVM, NULL);
	mbx_config_set_network(cfg, MBX_NETWORK_ALLOW_ALL, NULL);
	/* A config that cannot work (a microVM has no network interface to
	 * allow everything on) fails at once, not in the background. */
	TAP_CHECK_INT(mbx_pool_new(&pool, cfg, 2, &err), MBX_ENOTSUP);
	TAP_CHECK(pool == NULL && err != NULL);
	mbx_error_free(err);
	mbx_config_free(cfg);
	mbx_pool_free(NULL);
}

/* Reuse: sandboxes given back come out again, reset, up to max_uses. */
static void test_reuse(void)
{
	const char *argv[] = { "sh", "-c", "ls -A /workspace; echo x > /workspace/f", NULL };
	mbx_pool *pool = NULL;
	mbx_error *err = NULL;
	char first[2][17];
	int reused = 0;

	TAP_CHECK_INT(mbx_pool_set_reuse(NULL, 2, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_pool_give_back(NULL, NULL, 0, NULL), MBX_OK);
	if (!sandboxes_work())
		TAP_SKIP("no sandbox can be created on this host");
	TAP_CHECK_INT(mbx_pool_new(&pool, NULL, 2, &err), MBX_OK);
	if (pool == NULL)
		return;
	TAP_CHECK_INT(mbx_pool_set_reuse(pool, 100001, NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx_pool_set_reuse(pool, 3, NULL), MBX_OK);
	/* Both made before the first take: none is made while they are out. */
	for (int i = 0; i < 500 && mbx_pool_ready(pool) < 2; i++)
		usleep(10000);
	for (int round = 0; round < 4; round++) {
		mbx_sandbox *sb[2] = { NULL, NULL };

		for (int i = 0; i < 2; i++) {
			mbx_result *res = NULL;
			size_t len = 0;

			TAP_CHECK_INT(mbx_pool_take(pool, &sb[i], &err), MBX_OK);
			if (sb[i] == NULL)
				continue;
			if (round == 0)
				memcpy(first[i], mbx_sandbox_id(sb[i]), 17);
			else if (strcmp(mbx_sandbox_id(sb[i]), first[0]) == 0 || strcmp(mbx_sandbox_id(sb[i]), first[1]) == 0)
				reused++;
			/* Nothing of the user before. */
			TAP_CHECK_INT(mbx_sandbox_exec(sb[i], argv, NULL, &res, &err), MBX_OK);
			TAP_CHECK(res != NULL && mbx_result_stdout(res, &len) != NULL && len == 0);
			mbx_result_free(res);
		}
		for (int i = 0; i < 2; i++)
			TAP_CHECK_INT(mbx_pool_give_back(pool, sb[i], 0, NULL), MBX_OK);
	}
	/* Rounds 1 and 2 reuse both; round 3 finds them used three times. */
	TAP_CHECK_INT(reused, 4);
	mbx_pool_free(pool);
}

static const struct tap_case cases[] = {
	{ "pool/take-and-refill", test_take_and_refill },
	{ "pool/distinct", test_distinct },
	{ "pool/bad-config", test_bad_config },
	{ "pool/reuse", test_reuse },
};

TAP_MAIN(cases)
