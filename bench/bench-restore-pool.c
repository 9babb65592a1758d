/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-restore-pool: what a restore pool saves (include/mbx/restore_pool.h,
 * docs/snapshots.md "Restore pool"). For a snapshot whose /workspace holds
 * KIB kibibytes, in one run:
 *
 *   pool acquire     mbx_restore_pool_acquire() of a ready member (the pool
 *                    is let refill between acquires, as a pool sized for
 *                    its load is)
 *   plain restore    mbx_sandbox_from_snapshot() on the caller's thread
 *   cold new         mbx_sandbox_new() (no files)
 *
 * each to ready (the call returns) and to the end of a first command
 * (an execute of /bin/true), P50 and P99 over N rounds.
 *
 *   bench-restore-pool [-n N] [-k KIB] [-b os|microvm]
 *
 * It only reports. The goal is acquire-to-ready at most 1 ms P50.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbx/mbx.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what, mbx_error *err)
{
	fprintf(stderr, "bench-restore-pool: %s: %s\n", what, err ? mbx_error_message(err) : "failed");
	exit(1);
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("  %-34s P50 %9.3f ms   P99 %9.3f ms\n", what, v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
}

static void first_command(mbx_sandbox *sb)
{
	const char *argv[] = { "/bin/true", NULL };
	mbx_result *res = NULL;
	mbx_error *err = NULL;

	if (mbx_sandbox_exec(sb, argv, NULL, &res, &err) || mbx_result_exit_code(res) != 0)
		die("execute /bin/true", err);
	mbx_result_free(res);
}

static uint64_t idle_of(mbx_restore_pool *pool)
{
	uint64_t v[MBX_RESTORE_POOL_STAT_COUNT] = { 0 };

	mbx_restore_pool_stats(pool, v, MBX_RESTORE_POOL_STAT_COUNT);
	return v[MBX_RESTORE_POOL_STAT_IDLE];
}

int main(int argc, char **argv)
{
	mbx_isolation_t iso = MBX_ISOLATION_OS;
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_snapshot *snap = NULL;
	mbx_restore_pool_config *pc = NULL;
	mbx_restore_pool *pool = NULL;
	mbx_error *err = NULL;
	unsigned kib = 1024;
	int n = 100, opt;
	double *ready[3], *cmd[3];
	char *chunk;

	while ((opt = getopt(argc, argv, "n:k:b:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'k')
			kib = (unsigned)atoi(optarg);
		else if (opt == 'b' && strcmp(optarg, "os") == 0)
			iso = MBX_ISOLATION_OS;
		else if (opt == 'b' && strcmp(optarg, "microvm") == 0)
			iso = MBX_ISOLATION_MICROVM;
		else
			return 2;
	}
	if (n < 1)
		return 2;
	for (int i = 0; i < 3; i++) {
		ready[i] = calloc((size_t)n, sizeof(double));
		cmd[i] = calloc((size_t)n, sizeof(double));
	}
	if (mbx_config_new(&cfg, &err) || mbx_config_set_isolation(cfg, iso, &err))
		die("config", err);
	if (mbx_sandbox_new(&sb, cfg, &err))
		die("create", err);
	/* The workspace: 64 KiB files. */
	chunk = malloc(65536);
	memset(chunk, 'x', 65536);
	for (unsigned i = 0; i < (kib + 63) / 64; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/workspace/f%u", i);
		if (mbx_sandbox_write_file(sb, path, chunk, 65536, 0644, 0, &err))
			die("fill the workspace", err);
	}
	free(chunk);
	if (mbx_sandbox_snapshot(&snap, sb, &err))
		die("snapshot", err);
	mbx_sandbox_free(sb);
	sb = NULL;
	printf("bench-restore-pool: %s backend, /workspace of %u KiB, %d rounds\n", mbx_isolation_name(iso), kib, n);

	if (mbx_restore_pool_config_new(&pc, &err) || mbx_restore_pool_config_set_max_members(pc, 4, &err) ||
	    mbx_restore_pool_config_set_min_idle(pc, 4, &err) || mbx_restore_pool_config_set_idle_timeout_ms(pc, 0, &err))
		die("pool settings", err);
	if (mbx_restore_pool_new(&pool, snap, pc, &err))
		die("pool", err);
	for (int i = 0; i < n; i++) {
		double t0, end = now_ms() + 120000;

		while (idle_of(pool) < 4 && now_ms() < end)
			usleep(1000);
		t0 = now_ms();
		if (mbx_restore_pool_acquire(pool, &sb, 120000, &err))
			die("acquire", err);
		ready[0][i] = now_ms() - t0;
		first_command(sb);
		cmd[0][i] = now_ms() - t0;
		mbx_sandbox_free(sb);
	}
	mbx_restore_pool_free(pool);
	mbx_restore_pool_config_free(pc);
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();

		if (mbx_sandbox_from_snapshot(&sb, snap, NULL, &err))
			die("restore", err);
		ready[1][i] = now_ms() - t0;
		first_command(sb);
		cmd[1][i] = now_ms() - t0;
		mbx_sandbox_free(sb);
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();

		if (mbx_sandbox_new(&sb, cfg, &err))
			die("create", err);
		ready[2][i] = now_ms() - t0;
		first_command(sb);
		cmd[2][i] = now_ms() - t0;
		mbx_sandbox_free(sb);
	}
	report("pool acquire: to ready", ready[0], n);
	report("pool acquire: to first command", cmd[0], n);
	report("plain restore: to ready", ready[1], n);
	report("plain restore: to first command", cmd[1], n);
	report("cold new (no files): to ready", ready[2], n);
	report("cold new: to first command", cmd[2], n);
	mbx_snapshot_free(snap);
	mbx_config_free(cfg);
	for (int i = 0; i < 3; i++) {
		free(ready[i]);
		free(cmd[i]);
	}
	return 0;
}
