/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wrappers for system calls that libc may lack. Each keeps the libc
 * convention (-1 and errno) and fails with ENOSYS when the kernel headers do
 * not know the number; callers turn failures into mbx_error with context.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define MBX_RETRY_EINTR(expr) \
	({ \
		long _r; \
		do \
			_r = (long)(expr); \
		while (_r == -1L && errno == EINTR); \
		_r; \
	})

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* Landlock, declared here because distribution headers lag the kernel (Debian
 * 12 stops at ABI 2). Values from the kernel UAPI, never renumbered. */
#define MBX_LL_CREATE_RULESET_VERSION (1U << 0)
#define MBX_LL_RULE_PATH_BENEATH 1
#define MBX_LL_FS_EXECUTE     (1ULL << 0)
#define MBX_LL_FS_WRITE_FILE  (1ULL << 1)
#define MBX_LL_FS_READ_FILE   (1ULL << 2)
#define MBX_LL_FS_READ_DIR    (1ULL << 3)
#define MBX_LL_FS_REMOVE_DIR  (1ULL << 4)
#define MBX_LL_FS_REMOVE_FILE (1ULL << 5)
#define MBX_LL_FS_MAKE_CHAR   (1ULL << 6)
#define MBX_LL_FS_MAKE_DIR    (1ULL << 7)
#define MBX_LL_FS_MAKE_REG    (1ULL << 8)
#define MBX_LL_FS_MAKE_SOCK   (1ULL << 9)
#define MBX_LL_FS_MAKE_FIFO   (1ULL << 10)
#define MBX_LL_FS_MAKE_BLOCK  (1ULL << 11)
#define MBX_LL_FS_MAKE_SYM    (1ULL << 12)
#define MBX_LL_FS_REFER       (1ULL << 13) /* ABI 2 */
#define MBX_LL_FS_TRUNCATE    (1ULL << 14) /* ABI 3 */
#define MBX_LL_FS_IOCTL_DEV   (1ULL << 15) /* ABI 5 */
#define MBX_LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define MBX_LL_SCOPE_SIGNAL               (1ULL << 1) /* ABI 6 */

struct mbx_landlock_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

struct mbx_landlock_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct mbx_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static inline int mbx_sys_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
#ifdef __NR_close_range
	return (int)syscall(__NR_close_range, first, last, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_pidfd_open(pid_t pid, unsigned int flags)
{
#ifdef __NR_pidfd_open
	return (int)syscall(__NR_pidfd_open, pid, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
#ifdef __NR_pidfd_send_signal
	return (int)syscall(__NR_pidfd_send_signal, pidfd, sig, info, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_mount_setattr(int dfd, const char *path, unsigned int flags, struct mbx_mount_attr *attr)
{
#ifdef __NR_mount_setattr
	return (int)syscall(__NR_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
#else
	errno = ENOSYS;
	return -1;
#endif
}

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

#ifndef RESOLVE_IN_ROOT
#define RESOLVE_NO_XDEV       0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS   0x04
#define RESOLVE_BENEATH       0x08
#define RESOLVE_IN_ROOT       0x10
#endif

struct mbx_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

static inline int mbx_sys_openat2(int dfd, const char *path, struct mbx_open_how *how)
{
#ifdef __NR_openat2
	return (int)syscall(__NR_openat2, dfd, path, how, sizeof(*how));
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_open_tree(int dfd, const char *path, unsigned int flags)
{
#ifdef __NR_open_tree
	return (int)syscall(__NR_open_tree, dfd, path, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags)
{
#ifdef __NR_move_mount
	return (int)syscall(__NR_move_mount, from_dfd, from, to_dfd, to, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The file-system context API (5.2): numbers shared by every architecture. */
#ifndef __NR_fsopen
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#define __NR_fspick 433
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#define FSPICK_CLOEXEC 0x00000001
#define FSPICK_EMPTY_PATH 0x00000008
#define FSMOUNT_CLOEXEC 0x00000001
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define FSCONFIG_CMD_RECONFIGURE 7
#endif

static inline int mbx_sys_fsopen(const char *fstype, unsigned int flags)
{
	return (int)syscall(__NR_fsopen, fstype, flags);
}

static inline int mbx_sys_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(__NR_fsconfig, fd, cmd, key, value, aux);
}

static inline int mbx_sys_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
	return (int)syscall(__NR_fsmount, fd, flags, attr_flags);
}

static inline int mbx_sys_fspick(int dfd, const char *path, unsigned int flags)
{
	return (int)syscall(__NR_fspick, dfd, path, flags);
}

static inline int mbx_sys_pivot_root(const char *new_root, const char *put_old)
{
	return (int)syscall(__NR_pivot_root, new_root, put_old);
}

static inline int mbx_sys_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	return (int)syscall(__NR_execveat, dirfd, path, argv, envp, flags);
}

static inline int mbx_sys_landlock_create_ruleset(const struct mbx_landlock_ruleset_attr *attr, size_t size, uint32_t flags)
{
#ifdef __NR_landlock_create_ruleset
	return (int)syscall(__NR_landlock_create_ruleset, attr, size, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_landlock_add_rule(int fd, int type, const void *attr, uint32_t flags)
{
#ifdef __NR_landlock_add_rule
	return (int)syscall(__NR_landlock_add_rule, fd, type, attr, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int mbx_sys_landlock_restrict_self(int fd, uint32_t flags)
{
#ifdef __NR_landlock_restrict_self
	return (int)syscall(__NR_landlock_restrict_self, fd, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The Landlock ABI of the running kernel: 0 when Landlock is absent or off. */
static inline int mbx_landlock_abi(void)
{
	int abi = mbx_sys_landlock_create_ruleset(NULL, 0, MBX_LL_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : abi;
}
