/* SPDX-License-Identifier: Apache-2.0 */
/* Per-user key files: see keyfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"

int mbx__read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* shrank under us */
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static int key_check(int fd, const char *path, const char *what, const char *backend, const char *lost, mbx_error **err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, backend, "%s `%s`", what, path);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_size != MBX_KEYFILE_LEN) {
		mbx__error_set(err, MBX_EPERM, 0, backend,
			       "%s `%s` is not a private %d-byte file of uid %u (mode %04o, owner %u, %lld bytes)",
			       what, path, MBX_KEYFILE_LEN, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
			       (unsigned)st.st_uid, (long long)st.st_size);
		mbx__error_suggest(err, "remove it (a new key is made, and %s)", lost);
		return MBX_EPERM;
	}
	return MBX_OK;
}

int mbx__keyfile_load(const char *path, uint8_t key[MBX_KEYFILE_LEN], const char *what, const char *backend,
		      const char *lost, mbx_error **err)
{
	char tmp[4300];
	uint8_t fresh[MBX_KEYFILE_LEN];
	uint64_t r = 0;
	int fd, rc, tries;

	for (tries = 0; tries < 3; tries++) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd >= 0) {
			rc = key_check(fd, path, what, backend, lost, err);
			if (rc == MBX_OK && mbx__read_exact(fd, key, MBX_KEYFILE_LEN) < 0)
				rc = mbx__error_set(err, MBX_ESYS, errno, backend, "read the %s `%s`", what, path);
			close(fd);
			return rc;
		}
		if (errno == ELOOP) {
			mbx__error_set(err, MBX_EPERM, ELOOP, backend, "%s `%s` is a symbolic link", what, path);
			mbx__error_suggest(err, "remove it (a new key is made, and %s)", lost);
			return MBX_EPERM;
		}
		if (errno != ENOENT)
			return mbx__error_set(err, MBX_ESYS, errno, backend, "open the %s `%s`", what, path);
		/* Make it: whole in a temporary file, then linked under its name,
		 * which fails if another process made one first (then read it). */
		if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh) ||
		    getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return mbx__error_set(err, MBX_ESYS, errno, backend, "getrandom for the %s", what);
		snprintf(tmp, sizeof(tmp), "%s.tmp-%d-%016llx", path, (int)getpid(), (unsigned long long)r);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return mbx__error_set(err, MBX_ESYS, errno, backend, "create the %s `%s`", what, tmp);
		rc = write(fd, fresh, sizeof(fresh)) == (ssize_t)sizeof(fresh) && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
		memset(fresh, 0, sizeof(fresh));
		if (close(fd) < 0)
			rc = 0;
		if (!rc) {
			rc = mbx__error_set(err, MBX_ESYS, errno, backend, "write the %s `%s`", what, tmp);
			unlink(tmp);
			return rc;
		}
		rc = link(tmp, path);
		if (rc < 0 && errno != EEXIST) {
			rc = mbx__error_set(err, MBX_ESYS, errno, backend, "create the %s `%s`", what, path);
			unlink(tmp);
			return rc;
		}
		unlink(tmp);
		/* Read back what is under the name now (ours or a racer's). */
	}
	return mbx__error_set(err, MBX_ESYS, 0, backend, "the %s `%s` keeps changing", what, path);
}
