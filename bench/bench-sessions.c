/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-sessions: the session paths of the os backend, each against a peer
 * measured in the same run.
 *
 *   first byte   mbx_sandbox_spawn(echo x) until its first STDOUT event,
 *                against fork+exec of echo x until the first byte on a pipe
 *   file write   mbx_sandbox_write_file_from_fd of SIZE bytes, against `cat`
 *                copying the same bytes from a pipe into a file
 *   file read    mbx_sandbox_read_file_to_fd of the file, against `cat`
 *                copying it into a pipe that is drained
 *
 * Usage: bench-sessions [-n ITERATIONS] [-s MIB]. Prints P50 and P99 (ms, or
 * MB/s for throughput) and the ratios; it only reports.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[(int)(p * (n - 1) + 0.5)];
}

static void die(const char *what, mbx_error *err)
{
	fprintf(stderr, "bench-sessions: %s: %s\n", what, err ? mbx_error_message(err) : "failed");
	exit(1);
}

/* fork+exec of argv with stdout on a pipe; ms until the first byte, then waits. */
static double peer_first_byte(char *const argv[])
{
	int p[2];
	char c;
	double t0 = now_ms(), t;
	pid_t pid;

	if (pipe(p) < 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		exit(1);
	t = now_ms() - t0;
	while (read(p[0], &c, 1) > 0)
		;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return t;
}

/* Runs `cat` with the given stdin and stdout; returns ms. */
static double peer_cat(int in, int out)
{
	double t0 = now_ms();
	pid_t pid = fork();

	if (pid == 0) {
		dup2(in, 0);
		dup2(out, 1);
		execlp("cat", "cat", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return now_ms() - t0;
}

/* Feeds `size` bytes from a generator process into a pipe; returns its read end. */
static int feeder(size_t size, pid_t *pid)
{
	int p[2];

	if (pipe(p) < 0)
		exit(1);
	*pid = fork();
	if (*pid == 0) {
		static char buf[1 << 16];

		close(p[0]);
		memset(buf, 'x', sizeof(buf));
		while (size > 0) {
			size_t n = size < sizeof(buf) ? size : sizeof(buf);

			if (write(p[1], buf, n) != (ssize_t)n)
				_exit(1);
			size -= n;
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

int main(int argc, char **argv)
{
	int n = 100, mib = 64, opt;
	char *const echo[] = { "echo", "x", NULL };
	const char *const echo_c[] = { "echo", "x", NULL };
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	double *fb, *pfb, *wr, *pwr, *rd, *prd;
	char tmp[] = "/tmp/mbx-bench-XXXXXX";

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 's')
			mib = atoi(optarg);
		else
			return 2;
	}
	if (n < 5 || mib < 1 || mkdtemp(tmp) == NULL)
		return 2;
	fb = calloc((size_t)n, sizeof(double));
	pfb = calloc((size_t)n, sizeof(double));
	wr = calloc((size_t)n, sizeof(double));
	pwr = calloc((size_t)n, sizeof(double));
	rd = calloc((size_t)n, sizeof(double));
	prd = calloc((size_t)n, sizeof(double));
	if (mbx_sandbox_new(&sb, NULL, &err) < 0)
		die("create", err);

	for (int i = 0; i < n; i++) {
		mbx_process *p = NULL;
		mbx_event *ev = NULL;
		double t0 = now_ms();

		if (mbx_sandbox_spawn(sb, echo_c, NULL, &p, &err) < 0)
			die("spawn", err);
		while (ev == NULL || mbx_event_kind(ev) != MBX_EVENT_STDOUT) {
			mbx_event_free(ev);
			ev = NULL;
			if (mbx_process_next_event(p, -1, &ev, &err) < 0)
				die("event", err);
		}
		fb[i] = now_ms() - t0;
		mbx_event_free(ev);
		mbx_result *r = NULL;
		if (mbx_process_wait(p, -1, &r, &err) < 0)
			die("wait", err);
		mbx_result_free(r);
		mbx_process_free(p);
		pfb[i] = peer_first_byte(echo);
	}

	/* Throughput: fewer rounds, each moves `mib` MiB. */
	int m = n / 10 < 5 ? 5 : n / 10;
	size_t size = (size_t)mib << 20;
	char path[64];

	snprintf(path, sizeof(path), "%s/f", tmp);
	for (int i = 0; i < m; i++) {
		pid_t gen;
		int in = feeder(size, &gen), out;
		double t0 = now_ms();

		if (mbx_sandbox_write_file_from_fd(sb, "big", in, 0644, &err) < 0)
			die("write", err);
		wr[i] = now_ms() - t0;
		close(in);
		waitpid(gen, NULL, 0);

		in = feeder(size, &gen);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		pwr[i] = peer_cat(in, out);
		close(in);
		close(out);
		waitpid(gen, NULL, 0);

		out = open("/dev/null", O_WRONLY);
		t0 = now_ms();
		if (mbx_sandbox_read_file_to_fd(sb, "big", out, &err) < 0)
			die("read", err);
		rd[i] = now_ms() - t0;
		in = open(path, O_RDONLY);
		prd[i] = peer_cat(in, out);
		close(in);
		close(out);
	}
	unlink(path);
	rmdir(tmp);
	mbx_sandbox_free(sb);

	printf("bench-sessions: %d iterations, %d MiB transfers x %d\n\n", n, mib, m);
	printf("%-32s %10s %10s\n", "latency (ms)", "P50", "P99");
	printf("%-32s %10.3f %10.3f\n", "first streamed byte (spawn)", pct(fb, n, .5), pct(fb, n, .99));
	printf("%-32s %10.3f %10.3f\n", "first byte, fork+exec + pipe", pct(pfb, n, .5), pct(pfb, n, .99));
	printf("\n%-32s %10s %10s\n", "throughput (MB/s)", "P50", "P1 (slowest)");
#define MBS(ms) ((double)size / 1e6 / ((ms) / 1e3))
	printf("%-32s %10.0f %10.0f\n", "write_file_from_fd", MBS(pct(wr, m, .5)), MBS(pct(wr, m, .99)));
	printf("%-32s %10.0f %10.0f\n", "cat pipe > file", MBS(pct(pwr, m, .5)), MBS(pct(pwr, m, .99)));
	printf("%-32s %10.0f %10.0f\n", "read_file_to_fd", MBS(pct(rd, m, .5)), MBS(pct(rd, m, .99)));
	printf("%-32s %10.0f %10.0f\n", "cat file > /dev/null", MBS(pct(prd, m, .5)), MBS(pct(prd, m, .99)));
	printf("\nratios (P50): first byte %.2fx fork+exec; write %.2fx cat; read %.2fx cat (time)\n",
	       pct(fb, n, .5) / pct(pfb, n, .5), pct(wr, m, .5) / pct(pwr, m, .5), pct(rd, m, .5) / pct(prd, m, .5));
	return 0;
}
