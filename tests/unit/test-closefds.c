/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Closing descriptors before exec (src/platform/linux/closefds.h), with the
 * fallback forced: kernels before 5.9 have no close_range, and a loop that
 * stops at 1024 would let higher descriptors reach the payload. Each case
 * runs in a forked child with descriptors at 5, 1023, 1024 and 4000 and
 * reports which survive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "platform/linux/closefds.h"

static const int probe_fds[] = { 5, 1023, 1024, 4000 };
#define NPROBE (sizeof(probe_fds) / sizeof(probe_fds[0]))

enum how { HOW_FALLBACK_PROC, HOW_FALLBACK_RLIMIT, HOW_FROM };

/*
 * In a child: opens the probe descriptors, runs the closing `how` way from
 * 3 and writes one byte per probe fd to the pipe: 'o' open without
 * close-on-exec, 'x' open with it, 'c' closed. Returns 0 and fills `state`,
 * or -1 when the harness failed.
 */
static int run(enum how how, unsigned int flags, char state[NPROBE])
{
	int p[2], status;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct rlimit rl;
		char out[NPROBE];
		int w;

		close(p[0]);
		/* The report pipe sits at 2: stdio is not the function's business. */
		if (dup2(p[1], 2) < 0)
			_exit(1);
		close(p[1]);
		w = 2;
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(1);
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 4001)
			_exit(3);
		rl.rlim_cur = 4001;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(1);
		for (size_t i = 0; i < NPROBE; i++) {
			int fd = open("/dev/null", O_RDONLY);

			if (fd < 0 || dup2(fd, probe_fds[i]) < 0)
				_exit(1);
			if (fd != probe_fds[i])
				close(fd);
		}
		switch (how) {
		case HOW_FALLBACK_PROC:
			if (mbx_close_fds_fallback(3, flags, "/proc/self/fd") < 0)
				_exit(1);
			break;
		case HOW_FALLBACK_RLIMIT:
			/* No /proc: the loop to the hard limit. */
			if (mbx_close_fds_fallback(3, flags, "/nonexistent/mbx-fd") < 0)
				_exit(1);
			break;
		case HOW_FROM:
		default:
			if (mbx_close_fds_from(3, flags) < 0)
				_exit(1);
			break;
		}
		for (size_t i = 0; i < NPROBE; i++) {
			int f = fcntl(probe_fds[i], F_GETFD);

			out[i] = f < 0 ? 'c' : (f & FD_CLOEXEC) ? 'x' : 'o';
		}
		_exit(write(w, out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	close(p[1]);
	memset(state, '?', NPROBE);
	if (read(p[0], state, NPROBE) != (ssize_t)NPROBE)
		memset(state, '?', NPROBE);
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) == 3)
		return 1;
	return WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void check(const char *what, enum how how, unsigned int flags, char expect)
{
	char state[NPROBE];
	int rc = run(how, flags, state);

	if (rc == 1)
		TAP_SKIP("the RLIMIT_NOFILE hard limit is below 4001");
	TAP_CHECK_INT(rc, 0);
	for (size_t i = 0; i < NPROBE; i++) {
		if (state[i] != expect)
			printf("#   %s: fd %d is '%c', expected '%c'\n", what, probe_fds[i], state[i], expect);
		TAP_CHECK(state[i] == expect);
	}
}

static void test_fallback_proc_close(void)
{
	check("close via /proc/self/fd", HOW_FALLBACK_PROC, 0, 'c');
}

static void test_fallback_proc_cloexec(void)
{
	check("cloexec via /proc/self/fd", HOW_FALLBACK_PROC, MBX_CLOSEFDS_CLOEXEC, 'x');
}

static void test_fallback_rlimit_close(void)
{
	check("close up to the hard limit", HOW_FALLBACK_RLIMIT, 0, 'c');
}

static void test_fallback_rlimit_cloexec(void)
{
	check("cloexec up to the hard limit", HOW_FALLBACK_RLIMIT, MBX_CLOSEFDS_CLOEXEC, 'x');
}

static void test_from(void)
{
	check("close_range", HOW_FROM, 0, 'c');
	check("close_range cloexec", HOW_FROM, MBX_CLOSEFDS_CLOEXEC, 'x');
}

static const struct tap_case cases[] = {
	{ "closefds/fallback-proc-close", test_fallback_proc_close },
	{ "closefds/fallback-proc-cloexec", test_fallback_proc_cloexec },
	{ "closefds/fallback-rlimit-close", test_fallback_rlimit_close },
	{ "closefds/fallback-rlimit-cloexec", test_fallback_rlimit_cloexec },
	{ "closefds/from", test_from },
};

TAP_MAIN(cases)
