/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-snapshot: snapshot, restore and fork of an os sandbox whose
 * /workspace holds MIB mebibytes (files of 1 MiB, 64 KiB and 4 KiB), with
 * the time each step takes. The target is a fork of a 1 GiB
 * workspace in 20 ms; docs/snapshots.md says where this stands.
 *
 * Then, in the same run, the fork three ways: a plain create (what any
 * fork costs at least), the copy-on-write fork (a file written in the
 * parent before each, so each fork freezes a new layer) and the copying
 * fork (a process running in the parent makes the fork copy), each with
 * the host memory (Shmem of /proc/meminfo: the storage is tmpfs) the child
 * adds while it lives.
 *
 *   bench-snapshot [-s MIB] [-n ITERATIONS] [-f]   (ITERATIONS at most 30;
 *                                                   -f: the forks only)
 *
 * It only reports (ms per step, P50 and P99 over the iterations, and MB/s).
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

/* Shmem of /proc/meminfo in KiB (tmpfs pages), or -1. */
static long shmem_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Shmem: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what, mbx_error *err)
{
	fprintf(stderr, "bench-snapshot: %s: %s\n", what, err ? mbx_error_message(err) : "failed");
	exit(1);
}

static void report(const char *what, double *v, int n, double mib)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("  %-28s P50 %9.1f ms   %8.1f MB/s\n", what, v[n / 2], mib * 1048576.0 / 1e6 / (v[n / 2] / 1e3));
}

static void report_fork(const char *what, double *v, double *mem, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	qsort(mem, (size_t)n, sizeof(*mem), cmp);
	printf("  %-28s P50 %9.1f ms   P99 %9.1f ms   memory +%.1f MiB (P50)\n", what, v[n / 2], v[(n * 99) / 100], mem[n / 2]);
}

/* Forks sb n times: times in t, the Shmem the live child adds in mem (MiB).
 * With `touch`, a file is written in sb first (untimed): each fork then
 * freezes a new layer. */
static void fork_loop(mbx_sandbox *sb, int n, int touch, double *t, double *mem)
{
	mbx_error *err = NULL;

	for (int i = 0; i < n; i++) {
		mbx_sandbox *child = NULL;
		long before;
		double t0;

		if (touch && mbx_sandbox_write_file(sb, "/workspace/.bench-iteration", &i, sizeof(i), 0644, 0, &err))
			die("write", err);
		before = shmem_kib();
		t0 = now_ms();
		if (mbx_sandbox_fork(&child, sb, &err))
			die("fork", err);
		t[i] = now_ms() - t0;
		mem[i] = (shmem_kib() - before) / 1024.0;
		mbx_sandbox_free(child);
	}
}

int main(int argc, char **argv)
{
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	mbx_result *res = NULL;
	unsigned mib = 64;
	int n = 3, opt, forks_only = 0;
	char script[512], path[] = "/tmp/bench-snapshot-XXXXXX";
	double *t_snap, *t_save, *t_load, *t_restore, *t_fork;

	while ((opt = getopt(argc, argv, "s:n:f")) != -1) {
		if (opt == 's')
			mib = (unsigned)atoi(optarg);
		else if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'f')
			forks_only = 1;
		else
			return 2;
	}
	if (mib < 1 || n < 1 || n > 30)
		return 2;
	t_snap = calloc((size_t)n, sizeof(double));
	t_save = calloc((size_t)n, sizeof(double));
	t_load = calloc((size_t)n, sizeof(double));
	t_restore = calloc((size_t)n, sizeof(double));
	t_fork = calloc((size_t)n, sizeof(double));
	if (mbx_config_new(&cfg, &err) || mbx_config_set_disk_limit(cfg, ((uint64_t)mib + 256) << 20, &err) ||
	    mbx_config_set_memory_limit(cfg, ((uint64_t)mib + 256) << 20, &err) || mbx_config_set_timeout_ms(cfg, 600000, &err))
		die("config", err);
	if (mbx_sandbox_new(&sb, cfg, &err))
		die("create", err);
	/* Most bytes in 1 MiB files, plus many small ones (64 KiB, 4 KiB). */
	snprintf(script, sizeof(script),
		 "set -e; cd /workspace; mkdir big small tiny; i=0; while [ $i -lt %u ]; do "
		 "head -c 1048576 /dev/urandom > big/$i; i=$((i+1)); done; "
		 "i=0; while [ $i -lt 64 ]; do head -c 65536 /dev/urandom > small/$i; "
		 "head -c 4096 /dev/urandom > tiny/$i; i=$((i+1)); done",
		 mib > 5 ? mib - 5 : 1);
	const char *fill[] = { "sh", "-c", script, NULL };
	if (mbx_sandbox_exec(sb, fill, NULL, &res, &err) || mbx_result_exit_code(res) != 0)
		die("fill the workspace", err);
	mbx_result_free(res);
	if (mkstemp(path) < 0)
		die("mkstemp", NULL);
	printf("bench-snapshot: os backend, /workspace of %u MiB, %d iterations\n", mib, n);
	for (int i = 0; i < n && !forks_only; i++) {
		mbx_snapshot *snap = NULL, *back = NULL;
		mbx_sandbox *child = NULL;
		double t0 = now_ms();

		if (mbx_sandbox_snapshot(&snap, sb, &err))
			die("snapshot", err);
		t_snap[i] = now_ms() - t0;
		t0 = now_ms();
		if (mbx_snapshot_save(snap, path, &err))
			die("save", err);
		t_save[i] = now_ms() - t0;
		mbx_snapshot_free(snap);
		t0 = now_ms();
		if (mbx_snapshot_load(&back, path, &err))
			die("load", err);
		t_load[i] = now_ms() - t0;
		t0 = now_ms();
		if (mbx_sandbox_from_snapshot(&child, back, NULL, &err))
			die("restore", err);
		t_restore[i] = now_ms() - t0;
		mbx_sandbox_free(child);
		mbx_snapshot_free(back);
		t0 = now_ms();
		if (mbx_sandbox_fork(&child, sb, &err))
			die("fork", err);
		t_fork[i] = now_ms() - t0;
		mbx_sandbox_free(child);
	}
	unlink(path);
	if (!forks_only) {
		report("snapshot (read the files)", t_snap, n, mib);
		report("save (MAC, write, fsync)", t_save, n, mib);
		report("load (read, MAC, check)", t_load, n, mib);
		report("restore (new sandbox+files)", t_restore, n, mib);
		report("fork (idle parent)", t_fork, n, mib);
	}
	{
		double *t = calloc((size_t)n, sizeof(double)), *mem = calloc((size_t)n, sizeof(double));
		const char *sleeper[] = { "sleep", "100000", NULL };
		mbx_process *proc = NULL;

		for (int i = 0; i < n; i++) {
			mbx_sandbox *plain = NULL;
			long before = shmem_kib();
			double t0 = now_ms();

			if (mbx_sandbox_new(&plain, cfg, &err))
				die("create", err);
			t[i] = now_ms() - t0;
			mem[i] = (shmem_kib() - before) / 1024.0;
			mbx_sandbox_free(plain);
		}
		report_fork("create (no files)", t, mem, n);
		fork_loop(sb, n, 1, t, mem);
		report_fork("fork, copy-on-write", t, mem, n);
		if (mbx_sandbox_spawn(sb, sleeper, NULL, &proc, &err))
			die("spawn", err);
		fork_loop(sb, n, 0, t, mem);
		report_fork("fork, copying", t, mem, n);
		mbx_process_kill(proc, NULL);
		mbx_process_free(proc);
		free(t);
		free(mem);
	}
	mbx_sandbox_free(sb);
	mbx_config_free(cfg);
	free(t_snap);
	free(t_save);
	free(t_load);
	free(t_restore);
	free(t_fork);
	return 0;
}
