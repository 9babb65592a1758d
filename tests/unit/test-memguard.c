/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory guard filter (src/backend/linux/memguard.c): installed in a
 * forked child (no_new_privs is enough), it must deny memfd_create and
 * memfd_secret with ENOSYS and shared anonymous mappings with ENOMEM, and
 * leave private mappings and shared file mappings alone.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "backend/linux/memguard.h"

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

enum op { OP_MEMFD, OP_MEMFD_SECRET, OP_SHARED_ANON, OP_SHARED_VALIDATE_ANON, OP_PRIVATE_ANON, OP_SHARED_FILE };

/* Runs one operation in the child; returns 0 or an errno value. */
static int do_op(enum op op)
{
	void *p;
	long fd;

	switch (op) {
	case OP_MEMFD:
		fd = syscall(__NR_memfd_create, "t", 0);
		return fd < 0 ? errno : 0;
	case OP_MEMFD_SECRET:
		fd = syscall(__NR_memfd_secret, 0);
		return fd < 0 ? errno : 0;
	case OP_SHARED_ANON:
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? errno : 0;
	case OP_SHARED_VALIDATE_ANON:
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? errno : 0;
	case OP_PRIVATE_ANON:
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? errno : 0;
	case OP_SHARED_FILE: {
		FILE *f = tmpfile();

		if (f == NULL || ftruncate(fileno(f), 4096) < 0)
			return -1;
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
		return p == MAP_FAILED ? errno : 0;
	}
	default:
		return -1;
	}
}

/* The errno the guarded child got (0: allowed); -1 when the harness failed. */
static int guarded(enum op op)
{
	const uint8_t *prog;
	size_t len;
	struct sock_fprog fp;
	int fds[2], status, res = -1;
	pid_t pid;

	mbx__memguard_filter(&prog, &len);
	fp.len = (unsigned short)(len / sizeof(struct sock_filter));
	fp.filter = (struct sock_filter *)prog;
	if (pipe(fds) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int r = -1;

		close(fds[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == 0)
			r = do_op(op);
		(void)!write(fds[1], &r, sizeof(r));
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &res, sizeof(res)) != (ssize_t)sizeof(res))
		res = -1;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return res;
}

static void test_denied(void)
{
	const uint8_t *prog;
	size_t len;

	mbx__memguard_filter(&prog, &len);
	TAP_CHECK(len > 0 && len % sizeof(struct sock_filter) == 0);
	TAP_CHECK_INT(guarded(OP_MEMFD), ENOSYS);
	TAP_CHECK_INT(guarded(OP_SHARED_ANON), ENOMEM);
	TAP_CHECK_INT(guarded(OP_SHARED_VALIDATE_ANON), ENOMEM);
	/* memfd_secret: ENOSYS whether or not the kernel has it. */
	TAP_CHECK_INT(guarded(OP_MEMFD_SECRET), ENOSYS);
}

static void test_allowed(void)
{
	/* Controls: the same calls work without the guard... */
	TAP_CHECK_INT(do_op(OP_SHARED_ANON), 0);
	/* ...and what RLIMIT_DATA or a file system bounds stays allowed. */
	TAP_CHECK_INT(guarded(OP_PRIVATE_ANON), 0);
	TAP_CHECK_INT(guarded(OP_SHARED_FILE), 0);
}

static const struct tap_case cases[] = {
	{ "memguard/denied", test_denied },
	{ "memguard/allowed", test_allowed },
};

TAP_MAIN(cases)
