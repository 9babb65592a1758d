/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Closing (or marking close-on-exec) every descriptor from `first` up, as a
 * process does just before exec. close_range does it in one call, but only
 * from Linux 5.9 (5.11 for CLOSE_RANGE_CLOEXEC); before that the fallback
 * walks /proc/self/fd, and without /proc loops to the RLIMIT_NOFILE hard
 * limit, so descriptors at any number are caught, not only those below 1024.
 * Raw system calls and a stack buffer only: usable after fork or clone, where
 * malloc and stdio are off limits.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "syscalls.h"

#define MBX_CLOSEFDS_CLOEXEC 1U /* mark close-on-exec instead of closing */

static inline void mbx__closefds_one(unsigned int fd, unsigned int flags)
{
	if (flags & MBX_CLOSEFDS_CLOEXEC)
		syscall(SYS_fcntl, (int)fd, F_SETFD, FD_CLOEXEC);
	else
		syscall(SYS_close, (int)fd);
}

/*
 * The fallback alone: the descriptors listed in `fd_dir` (normally
 * "/proc/self/fd"), or, when that cannot be opened or read, every number up
 * to the RLIMIT_NOFILE hard limit. Returns 0, or -1 with errno set when not
 * even the limit can be read.
 */
static inline int mbx_close_fds_fallback(unsigned int first, unsigned int flags, const char *fd_dir)
{
	char buf[4096] __attribute__((aligned(8)));
	struct rlimit rl;
	long dir, n;

	dir = syscall(SYS_openat, AT_FDCWD, fd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		int ok = 1;

		while ((n = syscall(SYS_getdents64, (int)dir, buf, sizeof(buf))) != 0) {
			if (n < 0) {
				ok = 0;
				break;
			}
			for (long off = 0; off < n;) {
				/* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
				uint16_t reclen;
				const char *name = buf + off + 19;
				unsigned long fd = 0;
				int digits = 0;

				__builtin_memcpy(&reclen, buf + off + 16, sizeof(reclen));
				for (; *name >= '0' && *name <= '9'; name++, digits++)
					fd = fd * 10 + (unsigned long)(*name - '0');
				if (digits > 0 && *name == '\0' && fd >= first && fd != (unsigned long)dir &&
				    fd <= 0x7fffffffUL)
					mbx__closefds_one((unsigned int)fd, flags);
				off += reclen;
			}
		}
		syscall(SYS_close, (int)dir);
		if (ok)
			return 0;
	}
	if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) < 0)
		return -1;
	for (rlim_t fd = first; fd < rl.rlim_max && fd <= 0x7fffffff; fd++)
		mbx__closefds_one((unsigned int)fd, flags);
	return 0;
}

/*
 * Closes (or, with MBX_CLOSEFDS_CLOEXEC, marks close-on-exec) every
 * descriptor >= first: close_range where the kernel has it, else the
 * fallback above. Returns 0, or -1 with errno set.
 */
static inline int mbx_close_fds_from(unsigned int first, unsigned int flags)
{
	if (mbx_sys_close_range(first, ~0U, (flags & MBX_CLOSEFDS_CLOEXEC) ? CLOSE_RANGE_CLOEXEC : 0) == 0)
		return 0;
	/* ENOSYS before 5.9; EINVAL for CLOSE_RANGE_CLOEXEC before 5.11. */
	return mbx_close_fds_fallback(first, flags, "/proc/self/fd");
}
