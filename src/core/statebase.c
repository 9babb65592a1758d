/* SPDX-License-Identifier: Apache-2.0 */
/* The per-user state directory and its checks; see statebase.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statebase.h"

char *mbx__statebase_path(void)
{
	const char *env = getenv("MIMOBOX_STATE_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *base = NULL;
	int r;

	if (env && env[0] == '/')
		r = asprintf(&base, "%s", env);
	else if (geteuid() == 0)
		r = asprintf(&base, "/run/mimobox");
	else if (xdg && xdg[0] == '/' && access(xdg, W_OK) == 0)
		r = asprintf(&base, "%s/mimobox", xdg);
	else
		r = asprintf(&base, "/tmp/mimobox-%u", (unsigned)geteuid());
	return r < 0 ? NULL : base;
}

#define WHAT_TO_DO "set MIMOBOX_STATE_DIR (or XDG_RUNTIME_DIR) to a directory only you can write"

int mbx__statebase_check(const char *dir, char *why, size_t whylen)
{
	uid_t me = geteuid();
	struct stat st;
	int fd, e;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		e = errno;
		snprintf(why, whylen, "cannot create the state directory `%s`: %s; %s", dir, strerror(e), WHAT_TO_DO);
		errno = e;
		return -1;
	}
	/* Never through a symlink: O_NOFOLLOW on the last component, and the
	 * checks on what was opened, not on a name that may change. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP || e == ENOTDIR)
			snprintf(why, whylen, "the state directory `%s` is %s, not a directory: someone may have put it "
				 "there to redirect mimobox; remove it, or %s", dir,
				 lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) ? "a symbolic link" : "a file", WHAT_TO_DO);
		else
			snprintf(why, whylen, "cannot open the state directory `%s`: %s; %s", dir, strerror(e), WHAT_TO_DO);
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		snprintf(why, whylen, "cannot inspect the state directory `%s`: %s", dir, strerror(e));
		errno = e;
		return -1;
	}
	if (st.st_uid != me) {
		close(fd);
		snprintf(why, whylen, "the state directory `%s` belongs to uid %u, not to you (uid %u): another user "
			 "may have made it to read or plant sandbox state; %s, or have it removed", dir,
			 (unsigned)st.st_uid, (unsigned)me, WHAT_TO_DO);
		errno = EPERM;
		return -1;
	}
	if (st.st_mode & 022) {
		close(fd);
		snprintf(why, whylen, "the state directory `%s` is writable by %s (mode %04o): files may have been "
			 "planted in it; remove it (`rm -rf %s`) so it is made again, or %s", dir,
			 (st.st_mode & 002) ? "everyone" : "its group", (unsigned)(st.st_mode & 07777), dir, WHAT_TO_DO);
		errno = EPERM;
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		e = errno;
		close(fd);
		snprintf(why, whylen, "cannot make the state directory `%s` private (0700): %s", dir, strerror(e));
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}
