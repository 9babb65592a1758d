/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening a path without following symbolic links in any component.
 *
 * Mount sources and mount targets may lie in directories a sandbox can
 * write (a shared host directory, another mount). A path resolved by name
 * when it is used could be redirected there by a symlink planted or swapped
 * in meanwhile. These helpers open such a path as an O_PATH descriptor and
 * fail with ELOOP when any component, the last included, is a symbolic link
 * (and with EINVAL for a `..` component): openat2 with RESOLVE_NO_SYMLINKS
 * where the kernel has it (5.6), else one openat(O_PATH | O_NOFOLLOW) per
 * component. The caller then works on the descriptor, never on the name.
 * Needs libc only: the agent and the library both use it.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syscalls.h"

/* 1 when `path` has a `..` component. */
static inline int mbx_path_has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return 1;
	return 0;
}

/* The fd if it is no symlink (and a directory when asked), else -1/ELOOP. */
static inline int mbx__nofollow_check(int fd, int want_dir)
{
	struct stat st;
	int e;

	if (fstat(fd, &st) < 0)
		e = errno;
	else if (S_ISLNK(st.st_mode))
		e = ELOOP;
	else if (want_dir && !S_ISDIR(st.st_mode))
		e = ENOTDIR;
	else
		return fd;
	close(fd);
	errno = e;
	return -1;
}

/*
 * Opens `path` (absolute, or relative to `dirfd`) as O_PATH | O_CLOEXEC
 * without following a symbolic link anywhere. `want_dir`: the result must
 * be a directory. Returns the descriptor, or -1 with errno (ELOOP: a
 * component is a symlink; EINVAL: a `..` component; ENOENT, ENOTDIR, ...).
 */
static inline int mbx_open_nofollow(int dirfd, const char *path, int want_dir)
{
	struct mbx_open_how how = {
		.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char buf[4096];
	size_t len = strlen(path);
	int cur, fd;

	if (mbx_path_has_dotdot(path) || len == 0) {
		errno = EINVAL;
		return -1;
	}
	fd = mbx_sys_openat2(dirfd, path, &how);
	if (fd >= 0)
		return mbx__nofollow_check(fd, want_dir);
	/* No openat2 (or a seccomp policy of the caller's that hides it with
	 * EPERM): walk the components. */
	if (errno != ENOSYS && errno != EPERM)
		return -1;
	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	cur = openat(path[0] == '/' ? AT_FDCWD : dirfd, path[0] == '/' ? "/" : ".", O_PATH | O_CLOEXEC | O_DIRECTORY);
	if (cur < 0)
		return -1;
	for (char *c = buf, *next; c != NULL; c = next) {
		while (*c == '/')
			c++;
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		if (*c == '\0' || strcmp(c, ".") == 0)
			continue;
		fd = openat(cur, c, O_PATH | O_CLOEXEC | O_NOFOLLOW);
		close(cur);
		if (fd < 0)
			return -1;
		/* Every component but the last must be a directory. */
		{
			int more = 0;

			for (const char *r = next; r && *r; r++)
				if (*r != '/') {
					more = 1;
					break;
				}
			cur = mbx__nofollow_check(fd, more);
		}
		if (cur < 0)
			return -1;
	}
	return mbx__nofollow_check(cur, want_dir);
}
