/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file API served on the host for sandboxes without an agent (see
 * hostfiles.h). The workspace directory is opened once per call; every path
 * below it is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS),
 * so absolute symlinks, `..` and symlinks swapped during the call resolve
 * inside the workspace, as the guest's own preopen does. A final component
 * is handled through its parent directory's descriptor (fstatat, unlinkat,
 * renameat, an O_EXCL|O_NOFOLLOW create), never by a path string.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbx/file.h>
#include "hostfiles.h"
#include "proto.h"
#include "platform/linux/syscalls.h"
#include "platform/linux/rmtree.h"

int mbx__host_rel(const char *path, char **out, mbx_error **err)
{
	const char *rel;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "path is empty: give an absolute path or one relative to /workspace");
	if (path[0] != '/')
		rel = path;
	else if (strcmp(path, "/workspace") == 0 || strcmp(path, "/workspace/") == 0)
		rel = ".";
	else if (strncmp(path, "/workspace/", 11) == 0)
		rel = path + 11;
	else
		return mbx__error_set(err, MBX_ENOTFOUND, ENOENT, NULL, "`%s`: this sandbox's file system is /workspace only", path);
	*out = strdup(rel[0] ? rel : ".");
	return *out ? MBX_OK : mbx__error_oom(err);
}

static int code_of(int e)
{
	switch (e) {
	case ENOENT: case ELOOP: return MBX_ENOTFOUND;
	case EACCES: case EPERM: case EROFS: case EXDEV: return MBX_EPERM;
	case ENOTDIR: return MBX_ENOTDIR;
	case EEXIST: case ENOTEMPTY: return MBX_EEXIST;
	case EFBIG: case ENOSPC: case EDQUOT: return MBX_ETOOBIG;
	case EISDIR: case EINVAL: return MBX_EINVAL;
	default: return MBX_ESYS;
	}
}

static int fail(mbx_error **err, const char *what, const char *path)
{
	int e = errno;

	return mbx__error_set(err, code_of(e), e, NULL, "%s `%s`", what, path);
}

/* Opens `rel` below the root directory fd. */
static int open_in(int rootfd, const char *rel, int flags, mode_t mode)
{
	struct mbx_open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return mbx_sys_openat2(rootfd, rel, &how);
}

/* Opens a sandbox path below the workspace in one step; *fd is the result. */
static int open_path(const char *root, const char *path, int flags, const char *what, int *fd, mbx_error **err)
{
	char *rel;
	int rootfd, rc = mbx__host_rel(path, &rel, err);

	*fd = -1;
	if (rc < 0)
		return rc;
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		free(rel);
		return mbx__error_set(err, MBX_ESTATE, errno, NULL, "the sandbox's workspace is gone");
	}
	*fd = open_in(rootfd, rel, flags, 0);
	rc = *fd < 0 ? fail(err, what, path) : MBX_OK;
	close(rootfd);
	free(rel);
	return rc;
}

/* Opens the workspace and the parent directory of `path`; *base points to
 * the final component (inside *relp, which the caller frees). */
static int open_parent(const char *root, const char *path, int *rootfd, int *dirfd_, char **relp, const char **base,
		       mbx_error **err)
{
	char *rel, *slash;
	int rc = mbx__host_rel(path, &rel, err);

	if (rc < 0)
		return rc;
	*rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*rootfd < 0) {
		free(rel);
		return mbx__error_set(err, MBX_ESTATE, errno, NULL, "the sandbox's workspace is gone");
	}
	/* Trailing slashes name the directory itself. */
	for (size_t n = strlen(rel); n > 1 && rel[n - 1] == '/'; n--)
		rel[n - 1] = '\0';
	slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	if (strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0 || (*base)[0] == '\0') {
		close(*rootfd);
		free(rel);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "`%s` does not name a file", path);
	}
	if (slash) {
		*slash = '\0';
		*dirfd_ = open_in(*rootfd, rel[0] ? rel : "/", O_PATH | O_DIRECTORY, 0);
	} else {
		*dirfd_ = open_in(*rootfd, ".", O_PATH | O_DIRECTORY, 0);
	}
	if (*dirfd_ < 0) {
		rc = fail(err, "open the directory of", path);
		close(*rootfd);
		free(rel);
		return rc;
	}
	*relp = rel;
	return MBX_OK;
}

static uint32_t type_of(mode_t m)
{
	return S_ISREG(m) ? MBX_FILE_REGULAR : S_ISDIR(m) ? MBX_FILE_DIRECTORY : S_ISLNK(m) ? MBX_FILE_SYMLINK : MBX_FILE_OTHER;
}

static void fill_info(const struct stat *sb, struct mbx_file_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	fi->ftype = type_of(sb->st_mode);
	fi->size = (uint64_t)sb->st_size;
	fi->mode = sb->st_mode & 07777;
	fi->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	/* Owners as the guest sees them: WASI has none, the workspace is its. */
	fi->uid = 0;
	fi->gid = 0;
	fi->flags = S_ISLNK(sb->st_mode) ? 1 : 0;
}

int mbx__host_read(const char *root, const char *path, uint64_t limit, int (*sink)(void *, const uint8_t *, size_t),
		   void *arg, mbx_error **err)
{
	struct stat sb;
	uint8_t *buf;
	uint64_t total = 0;
	/* Non-blocking: a FIFO the payload made must not hold this thread. */
	int fd, rc = open_path(root, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, "open", &fd, err);

	if (rc < 0)
		return rc;
	if (fstat(fd, &sb) < 0 || S_ISDIR(sb.st_mode)) {
		rc = mbx__error_set(err, MBX_EINVAL, EISDIR, NULL, "read `%s`: it is a directory", path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, NULL,
				    "read `%s`: not a regular file (a FIFO, socket or device)", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > limit) {
		rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` has %llu bytes, over the file limit of %llu", path,
				    (unsigned long long)sb.st_size, (unsigned long long)limit);
		goto out;
	}
	buf = malloc(MBX_PROTO_FILE_CHUNK);
	if (buf == NULL) {
		rc = mbx__error_oom(err);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, MBX_PROTO_FILE_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(err, "read", path);
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > limit) {
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` is over the file limit of %llu bytes", path,
					    (unsigned long long)limit);
			break;
		}
		if (sink(arg, buf, (size_t)n) < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "store the contents of `%s`", path);
			break;
		}
	}
	free(buf);
out:
	close(fd);
	return rc;
}

int mbx__host_write(const char *root, const char *path, uint32_t mode, uint32_t flags, uint64_t limit,
		    ssize_t (*src)(void *, uint8_t *, size_t), void *arg, mbx_error **err)
{
	char tmp[64], *rel = NULL;
	const char *base;
	uint8_t *buf = NULL;
	uint64_t total = 0, r = 0;
	int rootfd = -1, dfd = -1, fd = -1, rc;
	struct stat sb;

	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if ((flags & MBX_WRITE_APPEND) && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
			rc = mbx__error_set(err, MBX_EINVAL, 0, NULL,
					    "append to `%s`: not a regular file (a FIFO, socket or device)", path);
			goto out;
		}
		if (flags & MBX_WRITE_EXCLUSIVE) {
			errno = EEXIST;
			rc = fail(err, "create", path);
			goto out;
		}
		if (S_ISDIR(sb.st_mode)) {
			rc = mbx__error_set(err, MBX_EINVAL, EISDIR, NULL, "write `%s`: it is a directory", path);
			goto out;
		}
	}
	tmp[0] = '\0';
	if (flags & MBX_WRITE_APPEND) {
		/* A final symlink is not followed: it could point anywhere. */
		fd = openat(dfd, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode & 01777);
		if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
			close(fd);
			fd = -1;
			rc = mbx__error_set(err, MBX_EINVAL, 0, NULL,
					    "append to `%s`: not a regular file (a FIFO, socket or device)", path);
			goto out;
		}
	} else {
		getrandom(&r, sizeof(r), GRND_NONBLOCK);
		snprintf(tmp, sizeof(tmp), ".mbx-write-%016llx", (unsigned long long)r);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 01777);
	}
	if (fd < 0) {
		rc = fail(err, "create", path);
		goto out;
	}
	buf = malloc(MBX_PROTO_FILE_CHUNK);
	if (buf == NULL) {
		rc = mbx__error_oom(err);
		goto out;
	}
	for (;;) {
		ssize_t n = src(arg, buf, MBX_PROTO_FILE_CHUNK);
		size_t off = 0;

		if (n < 0) {
			rc = mbx__error_set(err, MBX_ESYS, (int)-n, NULL, "read the data for `%s`", path);
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > limit) {
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "data for `%s` is over the file limit of %llu bytes", path,
					    (unsigned long long)limit);
			goto out;
		}
		while (off < (size_t)n) {
			ssize_t w = write(fd, buf + off, (size_t)n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = fail(err, "write", path);
				goto out;
			}
			off += (size_t)w;
		}
	}
	if (!(flags & MBX_WRITE_APPEND)) {
		fchmod(fd, mode & 01777);
		if (renameat(dfd, tmp, dfd, base) < 0) {
			rc = fail(err, "replace", path);
			goto out;
		}
		tmp[0] = '\0';
	}
	rc = MBX_OK;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0])
		unlinkat(dfd, tmp, 0);
	free(buf);
	if (dfd >= 0)
		close(dfd);
	if (rootfd >= 0)
		close(rootfd);
	free(rel);
	return rc;
}

int mbx__host_stat(const char *root, const char *path, struct mbx_file_info *out, mbx_error **err)
{
	char *rel = NULL;
	const char *base;
	struct stat sb;
	int rootfd, dfd, rc;

	if (mbx__host_rel(path, &rel, err) == MBX_OK && strcmp(rel, ".") == 0) {
		/* /workspace itself. */
		free(rel);
		if (stat(root, &sb) < 0)
			return mbx__error_set(err, MBX_ESTATE, errno, NULL, "the sandbox's workspace is gone");
		fill_info(&sb, out);
		return MBX_OK;
	}
	free(rel);
	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		rc = fail(err, "stat", path);
	else
		fill_info(&sb, out);
	close(dfd);
	close(rootfd);
	free(rel);
	return rc;
}

int mbx__host_list(const char *root, const char *path, int (*fn)(const struct mbx_file_info *, void *), void *arg,
		   mbx_error **err)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = open_path(root, path, O_RDONLY | O_DIRECTORY, "list", &fd, err);

	if (rc < 0)
		return rc;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return mbx__error_oom(err);
	}
	while ((de = readdir(d)) != NULL) {
		char target[MBX_PROTO_TARGET_MAX + 1];
		struct mbx_file_info fi;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		fill_info(&sb, &fi);
		fi.name = (const uint8_t *)de->d_name;
		fi.name_len = (uint32_t)strlen(de->d_name);
		if (S_ISLNK(sb.st_mode)) {
			ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target));

			if (n > 0 && (size_t)n <= MBX_PROTO_TARGET_MAX) {
				fi.target = (const uint8_t *)target;
				fi.target_len = (uint32_t)n;
			}
		}
		rc = fn(&fi, arg);
		if (rc != 0)
			break;
	}
	closedir(d);
	if (rc == -2)
		return mbx__error_oom(err);
	if (rc == -3)
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` has too many entries", path);
	return MBX_OK;
}

int mbx__host_mkdir(const char *root, const char *path, uint32_t mode, int parents, mbx_error **err)
{
	char *rel = NULL;
	const char *base;
	int rootfd, dfd, rc;

	if (parents) {
		/* One component at a time, each resolved inside the root. */
		char *p;

		rc = mbx__host_rel(path, &rel, err);
		if (rc < 0)
			return rc;
		rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0) {
			free(rel);
			return mbx__error_set(err, MBX_ESTATE, errno, NULL, "the sandbox's workspace is gone");
		}
		for (p = rel;; p++) {
			if (*p == '/' || *p == '\0') {
				char c = *p;
				int fd;

				*p = '\0';
				fd = open_in(rootfd, rel, O_PATH | O_DIRECTORY, 0);
				if (fd < 0) {
					char *slash = strrchr(rel, '/');
					int pfd = slash ? (*slash = '\0', open_in(rootfd, rel[0] ? rel : "/", O_PATH | O_DIRECTORY, 0))
							: open_in(rootfd, ".", O_PATH | O_DIRECTORY, 0);
					const char *name = slash ? slash + 1 : rel;

					if (pfd < 0 || (mkdirat(pfd, name, mode & 07777) < 0 && errno != EEXIST)) {
						rc = fail(err, "make directory", path);
						if (pfd >= 0)
							close(pfd);
						close(rootfd);
						free(rel);
						return rc;
					}
					close(pfd);
					if (slash)
						*slash = '/';
				} else {
					close(fd);
				}
				*p = c;
				if (c == '\0')
					break;
			}
		}
		close(rootfd);
		free(rel);
		return MBX_OK;
	}
	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	if (mkdirat(dfd, base, mode & 07777) < 0) {
		rc = fail(err, "make directory", path);
	} else {
		/* The mode as asked, not cut by the umask (as the agent does);
		 * never through a symlink swapped in under the new name. */
		int nfd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (nfd >= 0) {
			(void)fchmod(nfd, mode & 07777);
			close(nfd);
		}
	}
	close(dfd);
	close(rootfd);
	free(rel);
	return rc;
}

int mbx__host_remove(const char *root, const char *path, int recursive, mbx_error **err)
{
	char *rel = NULL;
	const char *base;
	struct stat sb;
	int rootfd, dfd, rc;

	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = fail(err, "remove", path);
	} else if (!S_ISDIR(sb.st_mode)) {
		if (unlinkat(dfd, base, 0) < 0)
			rc = fail(err, "remove", path);
	} else if (recursive) {
		int sub = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0 || mbx_rm_below(sub) < 0 || unlinkat(dfd, base, AT_REMOVEDIR) < 0)
			rc = fail(err, "remove", path);
	} else if (unlinkat(dfd, base, AT_REMOVEDIR) < 0) {
		rc = fail(err, "remove", path);
	}
	close(dfd);
	close(rootfd);
	free(rel);
	return rc;
}

int mbx__host_rename(const char *root, const char *from, const char *to, mbx_error **err)
{
	char *rel1 = NULL, *rel2 = NULL;
	const char *b1, *b2;
	int r1 = -1, d1 = -1, r2 = -1, d2 = -1, rc;

	rc = open_parent(root, from, &r1, &d1, &rel1, &b1, err);
	if (rc == MBX_OK)
		rc = open_parent(root, to, &r2, &d2, &rel2, &b2, err);
	if (rc == MBX_OK && renameat(d1, b1, d2, b2) < 0)
		rc = fail(err, "rename", from);
	if (d1 >= 0)
		close(d1);
	if (r1 >= 0)
		close(r1);
	if (d2 >= 0)
		close(d2);
	if (r2 >= 0)
		close(r2);
	free(rel1);
	free(rel2);
	return rc;
}

int mbx__host_readlink(const char *root, const char *path, char **out, mbx_error **err)
{
	char *rel = NULL, buf[MBX_PROTO_TARGET_MAX + 1];
	const char *base;
	int rootfd, dfd, rc;
	ssize_t n;

	*out = NULL;
	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	n = readlinkat(dfd, base, buf, sizeof(buf));
	if (n < 0 || (size_t)n > MBX_PROTO_TARGET_MAX) {
		if (n >= 0)
			errno = ENAMETOOLONG;
		rc = fail(err, "read the symlink", path);
	} else {
		*out = strndup(buf, (size_t)n);
		if (*out == NULL)
			rc = mbx__error_oom(err);
	}
	close(dfd);
	close(rootfd);
	free(rel);
	return rc;
}

int mbx__host_symlink(const char *root, const char *target, const char *path, mbx_error **err)
{
	char *rel = NULL;
	const char *base;
	int rootfd, dfd, rc;

	/* The link is made below the root; what it points at is only ever resolved beneath it too. */
	rc = open_parent(root, path, &rootfd, &dfd, &rel, &base, err);
	if (rc < 0)
		return rc;
	if (symlinkat(target, dfd, base) < 0)
		rc = fail(err, "make the symlink", path);
	close(dfd);
	close(rootfd);
	free(rel);
	return rc;
}
