/* SPDX-License-Identifier: Apache-2.0 */
/* Recursive removal below a directory descriptor (see rmtree.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmtree.h"

/* Deeper trees than this are left for a second call: bounded recursion. */
#define MAX_DEPTH 256

static int rm_below(int dfd, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > MAX_DEPTH) {
		close(dfd);
		errno = ELOOP;
		return -1;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0 && errno == EACCES) {
				fchmodat(dirfd(d), de->d_name, 0700, 0);
				sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			if (sub >= 0)
				fchmod(sub, 0700);
			if (sub < 0 || rm_below(sub, depth + 1) < 0)
				rc = -1;
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0)
				rc = -1;
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int mbx_rm_below(int dfd)
{
	return rm_below(dfd, 0);
}
