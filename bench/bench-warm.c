/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-warm: N executes of one program in one live sandbox and nothing
 * else, so that `perf stat` or `perf record` of the whole process tree (the
 * host, the agent, the mini-inits and the programs) measures the warm
 * execute alone:
 *
 *   perf stat -e task-clock,page-faults build/bench/bench-warm -n 400
 *
 * Usage: bench-warm [-n COUNT] [PROGRAM] (default 300, /bin/true). Prints
 * the mean wall time per execute; it only reports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <mbx/mbx.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, mbx_error *err)
{
	fprintf(stderr, "bench-warm: %s: %s\n", what, err ? mbx_error_message(err) : "failed");
	mbx_error_free(err);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *argv_[2] = { "/bin/true", NULL };
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	int n = 300, opt;
	double t0;

	while ((opt = getopt(argc, argv, "n:h")) != -1) {
		if (opt == 'n' && (n = atoi(optarg)) > 0)
			continue;
		fprintf(stderr, "Usage: bench-warm [-n COUNT] [PROGRAM]\n");
		return opt == 'h' ? 0 : 2;
	}
	if (optind < argc)
		argv_[0] = argv[optind];
	if (mbx_sandbox_new(&sb, NULL, &err) != MBX_OK)
		die("mbx_sandbox_new", err);
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		mbx_result *res = NULL;

		if (mbx_sandbox_exec(sb, argv_, NULL, &res, &err) != MBX_OK)
			die("mbx_sandbox_exec", err);
		if (mbx_result_exit_code(res) != 0)
			die("the program failed", NULL);
		mbx_result_free(res);
	}
	printf("bench-warm: %d executes of %s, %.3f ms each (mean wall time)\n", n, argv_[0], (now_ms() - t0) / n);
	mbx_sandbox_free(sb);
	return 0;
}
