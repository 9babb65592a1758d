/* SPDX-License-Identifier: Apache-2.0 */
/*
 * INIT: the sandbox's own view of the system, built inside fresh user, mount,
 * pid, ipc, uts and cgroup namespaces that the host made, and a network
 * namespace of its own (5. below):
 *
 *  1. all mounts become private, so nothing propagates to or from the host;
 *  2. a scratch tmpfs at /tmp becomes the root for a moment (pivot_root), with
 *     the host's tree at /oldroot and the sandbox's tmpfs root at /newroot;
 *  3. the host's mount plan runs: read-only binds of system directories, a
 *     curated /etc, /workspace, /tmp, /proc, a minimal /dev, user mounts;
 *  4. the host tree is detached and /newroot becomes / (pivot_root(".", "."));
 *  5. the network namespace (made meanwhile by a helper, with its loopback
 *     up: agent_netns_begin) is joined; host name, the Landlock ruleset and
 *     the seccomp program are prepared for payloads.
 *
 * Every step that fails is reported with the layer it belongs to; nothing is
 * skipped silently (MBX_INIT_ALLOW_DEGRADED turns Landlock and seccomp
 * failures into "skipped" reports).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include <mbx/sandbox.h>
#include "agent.h"
#include "platform/linux/seccomp-kill.h"
#include "platform/linux/safeopen.h"
#include "platform/linux/syscalls.h"

#define OLDROOT "/oldroot"
#define NEWROOT "/newroot"
#define STORAGE "/storage" /* in the scratch root, never visible to payloads */

struct mount_entry {
	uint32_t op;
	uint32_t flags;
	uint32_t mode;
	char src[4096];
	char dst[4096];
	const uint8_t *data;
	uint32_t data_len;
	int fd_index;
	int has_range;  /* MBX_MOP_COPY: `size` bytes at `offset` of the descriptor */
	uint64_t offset;
	uint64_t size;
};

/* Copies a string field; -1 when it does not fit or holds a NUL. */
static int field_str(char *dst, size_t cap, const uint8_t *v, uint32_t n)
{
	if (n >= cap || memchr(v, '\0', n) != NULL)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/* Creates every missing directory of `path` (absolute), mode 0755. */
static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	/* Most targets have an existing parent: one call. */
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || len >= sizeof(buf))
		return -1;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];

			buf[i] = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -1;
			buf[i] = c;
		}
	}
	return 0;
}

/* Creates the empty file `path` (a mount target) unless it exists, never
 * through a symbolic link; its parent directories are made when missing.
 * One open in the common case. */
static int make_file(const char *path)
{
	char parent[4096];
	char *slash;
	int fd = openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 && errno == ENOENT) {
		if (strlen(path) >= sizeof(parent)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(parent, path, strlen(path) + 1);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (mkdir_p(parent) < 0)
				return -1;
		}
		fd = openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	}
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	close(fd);
	return 0;
}

/* Opens `path` for writing, created (with `mode`, then the umask) or
 * truncated, never through a symbolic link; its parent directories are
 * made when missing. One open in the common case. */
static int create_file(const char *path, mode_t mode)
{
	char parent[4096];
	char *slash;
	int fd = openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (strlen(path) >= sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(parent, path, strlen(path) + 1);
	slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent)
		return -1;
	*slash = '\0';
	if (mkdir_p(parent) < 0)
		return -1;
	return openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
}

/* Copies the `size` bytes fstat gave (what the file held when opened)
 * from `in` to `out`: in the kernel with sendfile, by read and write
 * where that is refused. */
static int copy_data(int in, int out, off_t size)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = sendfile(out, in, NULL, size > 0 ? (size_t)size : 65536);
		if (n == 0)
			return 0;
		if (n > 0) {
			size -= n;
			if (size <= 0)
				return 0;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EINVAL || errno == ENOSYS)
			break;
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n)
			return -1;
	}
	return 0;
}

/* Makes a mount read-only. mount_setattr keeps the flags a less privileged
 * namespace may not clear (nosuid, nodev locked by the host); the classic
 * remount needs them spelled out, so it is only the fallback. */
static int make_readonly(const char *path, int recursive)
{
	struct mbx_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

	if (mbx_sys_mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/*
 * Mount targets of the caller's mounts may lie inside another mount whose
 * host directory other sandboxes can write, while this one is being set
 * up: a planted or swapped symlink there must not move the mount (or a
 * created directory or file) anywhere else. open_target walks the sandbox
 * path below /newroot one component at a time, creating what is missing,
 * never following a symbolic link (a link anywhere fails with ELOOP), and
 * returns an O_PATH descriptor of the target; the mount goes onto that
 * descriptor, not onto a name.
 */
static int open_target(const char *dst, int is_file)
{
	char buf[4096];
	int cur, fd;
	size_t len = strlen(dst);

	if (len >= sizeof(buf) || mbx_path_has_dotdot(dst)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, dst, len + 1);
	cur = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (cur < 0)
		return -1;
	for (char *c = buf, *next; c != NULL; c = next) {
		int last;

		while (*c == '/')
			c++;
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		if (*c == '\0' || strcmp(c, ".") == 0)
			continue;
		last = next == NULL || next[strspn(next, "/")] == '\0';
		if (last && is_file) {
			fd = openat(cur, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT) {
				fd = openat(cur, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (fd >= 0) {
					close(fd);
					fd = openat(cur, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
				}
			}
		} else {
			if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
				close(cur);
				return -1;
			}
			fd = openat(cur, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		close(cur);
		if (fd < 0)
			return -1;
		cur = mbx__nofollow_check(fd, !(last && is_file));
		if (cur < 0)
			return -1;
		if (last && is_file) {
			struct stat st;

			if (fstat(cur, &st) < 0 || S_ISDIR(st.st_mode)) {
				close(cur);
				errno = EISDIR;
				return -1;
			}
		}
	}
	return cur;
}

/* "/oldroot/proc/self/fd/N": the host's /proc until the pivot. The kernel
 * follows such a link to the open file itself, never by name. */
static void fd_path(char *buf, size_t cap, int fd)
{
	snprintf(buf, cap, OLDROOT "/proc/self/fd/%d", fd);
}

/* make_readonly for the mount at the top of `fd` (an O_PATH descriptor). */
static int make_readonly_fd(int fd, int recursive)
{
	struct mbx_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	char p[64];

	if (mbx_sys_mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	fd_path(p, sizeof(p), fd);
	return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/*
 * Puts the mount `tree` (a detached mount from open_tree, or -1) or a bind
 * of `src` (an O_PATH descriptor) onto the target `dst`, and makes it
 * read-only when asked. Nothing is looked up by name that a sandbox could
 * have redirected.
 */
static int attach_at(int tree, int src, const struct mount_entry *m)
{
	int rec = (m->flags & MBX_MF_REC) != 0;
	int target, top, rc;

	target = open_target(m->dst, (m->flags & MBX_MF_FILE) != 0);
	if (target < 0)
		return -1;
	if (tree >= 0) {
		rc = mbx_sys_move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	} else {
		char from[64], to[64];

		fd_path(from, sizeof(from), src);
		fd_path(to, sizeof(to), target);
		rc = mount(from, to, NULL, MS_BIND | (rec ? MS_REC : 0), NULL);
	}
	close(target);
	if (rc < 0 || !(m->flags & MBX_MF_RO) || tree >= 0)
		return rc;
	/* A classic bind: the new mount is reached through its parent, by the
	 * same link-refusing walk. */
	top = open_target(m->dst, (m->flags & MBX_MF_FILE) != 0);
	if (top < 0)
		return -1;
	rc = make_readonly_fd(top, rec);
	close(top);
	return rc;
}

/*
 * A caller's mount, for callers that cannot clone the host's mounts: the
 * source is opened below /oldroot without following links, checked to be
 * the file the host opened (the descriptor passed with INIT: same device and
 * inode, else ESTALE), cloned from the descriptor and attached.
 */
static int bind_user(const struct agent_state *as, const struct mount_entry *m)
{
	char src[4200];
	struct stat mine, host;
	int sfd, tree, rc, e, remount = 0;

	if (m->fd_index < 0 || (size_t)m->fd_index >= as->nfds) {
		errno = EBADF;
		return -1;
	}
	snprintf(src, sizeof(src), OLDROOT "%s", m->src);
	sfd = mbx_open_nofollow(AT_FDCWD, src, 0);
	if (sfd < 0)
		return -1;
	if (fstat(sfd, &mine) < 0 || fstat(as->fds[m->fd_index], &host) < 0) {
		e = errno;
		close(sfd);
		errno = e;
		return -1;
	}
	if (mine.st_dev != host.st_dev || mine.st_ino != host.st_ino) {
		close(sfd);
		errno = ESTALE;
		return -1;
	}
	tree = mbx_sys_open_tree(sfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
				 ((m->flags & MBX_MF_REC) ? AT_RECURSIVE : 0));
	if (tree < 0 && errno != ENOSYS) {
		e = errno;
		close(sfd);
		errno = e;
		return -1;
	}
	if (tree >= 0 && (m->flags & MBX_MF_RO)) {
		struct mbx_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

		if (mbx_sys_mount_setattr(tree, "", AT_EMPTY_PATH | ((m->flags & MBX_MF_REC) ? AT_RECURSIVE : 0), &attr) < 0) {
			e = errno;
			if (e != ENOSYS) {
				close(tree);
				close(sfd);
				errno = e;
				return -1;
			}
			remount = 1; /* open_tree without mount_setattr: 5.2 to 5.11 */
		}
	}
	rc = attach_at(tree, sfd, m);
	e = errno;
	if (rc == 0 && remount) {
		int top = open_target(m->dst, (m->flags & MBX_MF_FILE) != 0);

		rc = top < 0 ? -1 : make_readonly_fd(top, (m->flags & MBX_MF_REC) != 0);
		e = errno;
		if (top >= 0)
			close(top);
	}
	if (tree >= 0)
		close(tree);
	close(sfd);
	errno = e;
	return rc;
}

/* Runs one entry of the plan. Returns 0, or -1 with errno set. */
static int run_mount(struct agent_state *as, const struct mount_entry *m)
{
	char src[4200], dst[4200];
	struct stat st;

	snprintf(dst, sizeof(dst), NEWROOT "%s", m->dst);
	switch (m->op) {
	case MBX_MOP_BIND:
		if (m->flags & MBX_MF_USER)
			return bind_user(as, m);
		if (m->flags & MBX_MF_STORAGE) {
			/* A directory of the storage tmpfs (see MBX_MOP_STORAGE). */
			if (strchr(m->src, '/') != NULL || m->src[0] == '\0' || m->src[0] == '.') {
				errno = EINVAL;
				return -1;
			}
			snprintf(src, sizeof(src), STORAGE "/%s", m->src);
			if ((mkdir(src, 0755) < 0 && errno != EEXIST) || chmod(src, m->mode ? m->mode : 0755) < 0)
				return -1;
		} else {
			snprintf(src, sizeof(src), OLDROOT "%s", m->src);
		}
		if (stat(src, &st) < 0) {
			if ((m->flags & MBX_MF_OPTIONAL) && errno == ENOENT)
				return 0;
			return -1;
		}
		if (S_ISDIR(st.st_mode) ? mkdir_p(dst) : make_file(dst))
			return -1;
		if (mount(src, dst, NULL, MS_BIND | ((m->flags & MBX_MF_REC) ? MS_REC : 0), NULL) < 0)
			return -1;
		if ((m->flags & MBX_MF_RO) && make_readonly(dst, (m->flags & MBX_MF_REC) != 0) < 0)
			return -1;
		if (m->flags & MBX_MF_STORAGE)
			return agent_layers_bound(as, m->src, m->dst);
		return 0;
	case MBX_MOP_TMPFS:
		if (mkdir_p(dst) < 0)
			return -1;
		{
			char opts[256];

			if (m->data_len >= sizeof(opts)) {
				errno = EINVAL;
				return -1;
			}
			memcpy(opts, m->data ? (const char *)m->data : "", m->data_len);
			opts[m->data_len] = '\0';
			if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
				return -1;
		}
		return chmod(dst, m->mode ? m->mode : 0755);
	case MBX_MOP_PROC:
		if (mkdir_p(dst) < 0)
			return -1;
		return mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	case MBX_MOP_DEVPTS:
		if (mkdir_p(dst) < 0)
			return -1;
		return mount("devpts", dst, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	case MBX_MOP_SYMLINK:
		if (symlink(m->src, dst) < 0 && errno != EEXIST)
			return -1;
		return 0;
	case MBX_MOP_WRITE: {
		int fd;
		size_t off = 0;

		fd = create_file(dst, 0644);
		if (fd < 0)
			return -1;
		while (off < m->data_len) {
			ssize_t n = write(fd, m->data + off, m->data_len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(fd);
				return -1;
			}
			off += (size_t)n;
		}
		fchmod(fd, m->mode ? m->mode : 0644);
		return close(fd);
	}
	case MBX_MOP_COPY: {
		int in, out, rc;

		/* A range of the host's /etc memfd (src/backend/linux/etcfiles.c). */
		if (m->has_range) {
			off_t off = (off_t)m->offset;
			uint64_t left = m->size;

			if ((size_t)m->fd_index >= as->nfds) {
				errno = EBADF;
				return -1;
			}
			out = create_file(dst, m->mode & 0755);
			if (out < 0)
				return -1;
			rc = 0;
			while (left > 0) {
				ssize_t n = sendfile(out, as->fds[m->fd_index], &off, left > (1u << 30) ? (1u << 30) : (size_t)left);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					if (n == 0)
						errno = EIO;
					rc = -1;
					break;
				}
				left -= (uint64_t)n;
			}
			if (rc == 0)
				rc = fchmod(out, m->mode & 0755);
			if (close(out) < 0)
				rc = -1;
			return rc;
		}

		/* From a file the host opened for us (one in its private state
		 * directory), else by name in the host's tree. */
		if (m->fd_index >= 0) {
			if ((size_t)m->fd_index >= as->nfds) {
				errno = EBADF;
				return -1;
			}
			in = fcntl(as->fds[m->fd_index], F_DUPFD_CLOEXEC, 0);
		} else {
			snprintf(src, sizeof(src), OLDROOT "%s", m->src);
			in = openat(AT_FDCWD, src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		}
		if (in < 0)
			return ((m->flags & MBX_MF_OPTIONAL) && errno == ENOENT) ? 0 : -1;
		if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
			int e = errno;

			close(in);
			errno = e;
			return -1;
		}
		out = create_file(dst, st.st_mode & 0755);
		if (out < 0) {
			close(in);
			return -1;
		}
		rc = copy_data(in, out, st.st_size);
		if (rc == 0)
			rc = fchmod(out, st.st_mode & 0755);
		close(in);
		if (close(out) < 0)
			rc = -1;
		return rc;
	}
	case MBX_MOP_ATTACH:
		/* A mount the host prepared (id-mapped) and passed as an fd. */
		if (m->fd_index < 0 || (size_t)m->fd_index >= as->nfds) {
			errno = EBADF;
			return -1;
		}
		return attach_at(as->fds[m->fd_index], -1, m);
	case MBX_MOP_STORAGE: {
		/* One tmpfs holds everything the sandbox may write (/workspace,
		 * /tmp, /dev/shm), so its size and inode count bound them all
		 * together. It is mounted in the scratch root, which goes away at
		 * the pivot: only the directories bound into the new root stay
		 * reachable. Mounted from inside the sandbox's user namespace,
		 * which an unprivileged caller may do too. */
		char opts[256];

		if (m->data == NULL || m->data_len >= sizeof(opts)) {
			errno = EINVAL;
			return -1;
		}
		memcpy(opts, m->data, m->data_len);
		opts[m->data_len] = '\0';
		if (mkdir(STORAGE, 0755) < 0 && errno != EEXIST)
			return -1;
		if (mount("tmpfs", STORAGE, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0 || chmod(STORAGE, 0755) < 0)
			return -1;
		return agent_layers_storage(as, STORAGE, opts);
	}
	case MBX_MOP_MKDIR:
		if (mkdir_p(dst) < 0)
			return -1;
		return chmod(dst, m->mode ? m->mode : 0755);
	case MBX_MOP_REMOUNT_RO:
		return make_readonly(dst, (m->flags & MBX_MF_REC) != 0);
	default:
		errno = EINVAL;
		return -1;
	}
}

static const char *op_name(uint32_t op)
{
	static const char *const names[] = { "?", "bind", "tmpfs", "proc", "devpts", "symlink", "write", "mkdir",
					      "remount read-only", "copy", "attach", "storage tmpfs" };

	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

/* Parses one MBX_F_MOUNT field. */
static int parse_mount(const uint8_t *v, uint32_t n, struct mount_entry *m)
{
	struct mbx_field_iter it;
	const uint8_t *fv;
	uint32_t fn;
	uint16_t tag;
	int rc;

	memset(m, 0, sizeof(*m));
	m->fd_index = -1;
	mbx_field_iter_init(&it, v, n);
	while ((rc = mbx_field_next(&it, &tag, &fv, &fn)) == 1) {
		switch (tag) {
		case MBX_F_OP:
			if (mbx_field_u32(fv, fn, &m->op) < 0)
				return -1;
			break;
		case MBX_F_FLAGS:
			if (mbx_field_u32(fv, fn, &m->flags) < 0)
				return -1;
			break;
		case MBX_F_MODE:
			if (mbx_field_u32(fv, fn, &m->mode) < 0)
				return -1;
			break;
		case MBX_F_SRC:
			if (field_str(m->src, sizeof(m->src), fv, fn) < 0)
				return -1;
			break;
		case MBX_F_DST:
			if (field_str(m->dst, sizeof(m->dst), fv, fn) < 0)
				return -1;
			break;
		case MBX_F_DATA:
			m->data = fv;
			m->data_len = fn;
			break;
		case MBX_F_FD: {
			uint32_t idx;

			if (mbx_field_u32(fv, fn, &idx) < 0 || idx >= MBX_PROTO_MAX_FDS)
				return -1;
			m->fd_index = (int)idx;
			break;
		}
		case MBX_F_OFFSET:
			if (mbx_field_u64(fv, fn, &m->offset) < 0)
				return -1;
			m->has_range |= 1;
			break;
		case MBX_F_SIZE:
			if (mbx_field_u64(fv, fn, &m->size) < 0)
				return -1;
			m->has_range |= 2;
			break;
		default:
			break;
		}
	}
	/* A range is both fields, of a copy from a descriptor, within off_t. */
	if (m->has_range && (m->has_range != 3 || m->op != MBX_MOP_COPY || m->fd_index < 0 ||
			     m->offset > (uint64_t)INT64_MAX - m->size))
		return -1;
	return rc < 0 || m->op == 0 || m->dst[0] != '/' ? -1 : 0;
}

/* Step 1, 2: private mounts, scratch root, host tree at /oldroot. */
static int enter_scratch_root(struct agent_state *st)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
		goto fail;
	if (chdir("/tmp") < 0 || mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0)
		goto fail;
	if (mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		goto fail;
	if (mbx_sys_pivot_root("/tmp", "/tmp/oldroot") < 0 || chdir("/") < 0)
		goto fail;
	return 0;
fail:
	agent_send_error(st, 0, MBX_ESYS, errno, "mount-namespace", "prepare the sandbox root");
	return -1;
}

/* Writes `text` to /proc/sys/kernel/<name> of the new root's /proc. */
static int write_sysctl(const char *name, const char *text)
{
	char path[128];
	int fd, n = (int)strlen(text);
	ssize_t w;

	snprintf(path, sizeof(path), NEWROOT "/proc/sys/kernel/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	w = write(fd, text, (size_t)n);
	if (w != n) {
		int e = w < 0 ? errno : EIO;

		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/*
 * Bounds SysV shared memory, message queues and semaphores of the sandbox's
 * own ipc namespace to about `limit` bytes each: segments, queues and
 * semaphore arrays live in memory that no rlimit counts. The ipc sysctls belong to the namespace's
 * root, which sandbox root is, and so is a payload (capabilities do not
 * matter for them): /proc/sys is then bound read-only over itself, which a
 * payload without CAP_SYS_ADMIN and with the mount API denied cannot undo.
 */
static int limit_sysv_ipc(struct agent_state *st, uint64_t limit)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long pages = limit / (uint64_t)(page > 0 ? page : 4096);
	/* msgmnb (16 KiB by default) per queue, at most the default 32000 queues */
	unsigned long long queues = limit / 16384;
	/* a struct sem is a 64-byte cache line; at most the default 1024000000 */
	unsigned long long sems = limit / 64;
	const char *what = "kernel.shmmax";
	char text[96];

	if (queues > 32000)
		queues = 32000;
	if (sems > 1024000000ULL)
		sems = 1024000000ULL;
	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)limit);
	if (write_sysctl("shmmax", text) < 0)
		goto fail;
	what = "kernel.shmall";
	snprintf(text, sizeof(text), "%llu\n", pages ? pages : 1);
	if (write_sysctl("shmall", text) < 0)
		goto fail;
	what = "kernel.msgmni";
	snprintf(text, sizeof(text), "%llu\n", queues ? queues : 1);
	if (write_sysctl("msgmni", text) < 0)
		goto fail;
	/* SEMMSL SEMMNS SEMOPM SEMMNI: the defaults but for the total */
	what = "kernel.sem";
	snprintf(text, sizeof(text), "32000 %llu 500 32000\n", sems ? sems : 1);
	if (write_sysctl("sem", text) < 0)
		goto fail;
	what = "/proc/sys (read-only)";
	if (mount(NEWROOT "/proc/sys", NEWROOT "/proc/sys", NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    make_readonly(NEWROOT "/proc/sys", 1) < 0)
		goto fail;
	return 0;
fail:
	agent_send_error(st, 0, MBX_ESYS, errno, "limits", "bound SysV shared memory: set %s", what);
	return -1;
}

/* Step 4: drop the host tree and make /newroot the root. */
static int enter_new_root(struct agent_state *st)
{
	/* After pivot_root(".", ".") the scratch root sits on top of the new
	 * one, with the host's tree (OLDROOT) and the storage tmpfs below it;
	 * one lazy unmount detaches it with everything below it, the host's
	 * tree included (one unmount, one RCU grace period, not two). */
	if (chdir(NEWROOT) < 0 || mbx_sys_pivot_root(".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		goto fail;
	/* The root itself is read-only: the payload writes only where the plan
	 * mounted writable file systems. */
	if (make_readonly("/", 0) < 0)
		goto fail;
	return 0;
fail:
	agent_send_error(st, 0, MBX_ESYS, errno, "mount-namespace", "pivot_root into the sandbox root");
	return -1;
}

static int bring_up_loopback(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

/*
 * The sandbox's network namespace. Making one is the dearest single step of
 * a sandbox's creation (the kernel sets up every protocol's per-namespace
 * state: about 0.45 ms on the machines of docs/benchmarks.md, a quarter of
 * what the six namespaces, an exec and their teardown cost together), and
 * nothing before READY needs it. So the host makes the other namespaces
 * (spawn.c) and the agent, once it has sent HELLO, forks a helper that
 * makes this one and brings its loopback up while the host answers and
 * sends INIT and the mount tree is built (in parallel when the scheduler
 * gives the helper another CPU; docs/benchmarks.md measures both). INIT
 * then joins it (agent_netns_join) before it builds the payload layers, so
 * no payload, spare or mini-init ever starts outside it; a sandbox whose
 * join failed is not made (fail closed: the error names the layer).
 *
 * Until then the agent shares the network namespace of the process that
 * made the sandbox, holding no capability over it (its user namespace does
 * not own it) and using no socket but its channel.
 */
void agent_netns_begin(struct agent_state *st)
{
	int sv[2], pidfd = -1;
	long pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		st->netns_errno = errno;
		return;
	}
	pid = syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), NULL, &pidfd, NULL, 0);
	if (pid == 0) {
		int32_t e = 0;
		char c;

		close(sv[0]);
		close(st->chan);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (unshare(CLONE_NEWNET) < 0 || bring_up_loopback() < 0)
			e = errno;
		(void)!send(sv[1], &e, sizeof(e), MSG_NOSIGNAL);
		/* The namespace lives while we do: until the agent joined it
		 * and closed its end. */
		for (;;) {
			ssize_t r = recv(sv[1], &c, 1, 0);

			if (r == 0 || (r < 0 && errno != EINTR))
				_exit(0);
		}
	}
	close(sv[1]);
	if (pid < 0) {
		st->netns_errno = errno;
		close(sv[0]);
		return;
	}
	st->netns_helper = (pid_t)pid;
	st->netns_pidfd = pidfd;
	st->netns_sock = sv[0];
}

/* Waits for the helper's namespace and joins it; the helper then exits and
 * is reaped. 0, or -1 with errno set. */
static int agent_netns_join(struct agent_state *st)
{
	int32_t e = 0;
	ssize_t n;

	if (st->netns_helper <= 0) {
		errno = st->netns_errno ? st->netns_errno : ECHILD;
		return -1;
	}
	do
		n = recv(st->netns_sock, &e, sizeof(e), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(e))
		e = n < 0 ? errno : EPIPE;
	if (e == 0 && setns(st->netns_pidfd, CLONE_NEWNET) < 0) {
		char path[64];
		int fd;

		/* A pidfd names a namespace from Linux 5.8 on; before, the
		 * helper's file in the sandbox's /proc (mounted by now). */
		e = errno;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)st->netns_helper);
		if (e == EINVAL && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			e = setns(fd, CLONE_NEWNET) < 0 ? errno : 0;
			close(fd);
		}
	}
	close(st->netns_sock);
	close(st->netns_pidfd);
	st->netns_sock = -1;
	st->netns_pidfd = -1;
	if (e != 0)
		kill(st->netns_helper, SIGKILL);
	while (waitpid(st->netns_helper, NULL, 0) < 0 && errno == EINTR)
		;
	st->netns_helper = 0;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

/* Access rights for a Landlock class, limited to what the ABI knows. */
static uint64_t ll_rights(uint32_t class, uint64_t handled)
{
	uint64_t read = MBX_LL_FS_EXECUTE | MBX_LL_FS_READ_FILE | MBX_LL_FS_READ_DIR;
	uint64_t write = read | MBX_LL_FS_WRITE_FILE | MBX_LL_FS_REMOVE_DIR | MBX_LL_FS_REMOVE_FILE |
			 MBX_LL_FS_MAKE_DIR | MBX_LL_FS_MAKE_REG | MBX_LL_FS_MAKE_SOCK | MBX_LL_FS_MAKE_FIFO |
			 MBX_LL_FS_MAKE_SYM | MBX_LL_FS_REFER | MBX_LL_FS_TRUNCATE;
	uint64_t dev = MBX_LL_FS_READ_FILE | MBX_LL_FS_READ_DIR | MBX_LL_FS_WRITE_FILE | MBX_LL_FS_IOCTL_DEV |
		       MBX_LL_FS_TRUNCATE;

	switch (class) {
	case MBX_LL_READ: return read & handled;
	case MBX_LL_WRITE: return write & handled;
	case MBX_LL_DEV: return dev & handled;
	default: return 0;
	}
}

/* Everything Landlock of a given ABI can restrict on the file system. The
 * ruleset handles all of it, so whatever no rule grants is denied. */
static uint64_t ll_handled(int abi)
{
	uint64_t h = (MBX_LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		h |= MBX_LL_FS_REFER;
	if (abi >= 3)
		h |= MBX_LL_FS_TRUNCATE;
	if (abi >= 5)
		h |= MBX_LL_FS_IOCTL_DEV;
	return h;
}

/* Builds the Landlock ruleset from the MBX_F_LL_PATH fields. Paths are
 * sandbox paths, opened after the pivot. */
static int build_landlock(struct agent_state *st, const struct mbx_frame *f)
{
	struct mbx_landlock_ruleset_attr attr = { 0 };
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	size_t attr_size;
	int fd;

	st->landlock_abi = mbx_landlock_abi();
	if (st->landlock_abi <= 0) {
		errno = EOPNOTSUPP;
		return -1;
	}
	attr.handled_access_fs = ll_handled(st->landlock_abi);
	attr_size = sizeof(attr.handled_access_fs);
	if (st->landlock_abi >= 6 && (st->init_flags & MBX_INIT_UNTRUSTED)) {
		/* Untrusted payloads may not signal or reach abstract unix sockets
		 * of anything outside their own execute. */
		attr.scoped = MBX_LL_SCOPE_ABSTRACT_UNIX_SOCKET | MBX_LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	fd = mbx_sys_landlock_create_ruleset(&attr, attr_size, 0);
	if (fd < 0)
		return -1;
	mbx_field_iter_init(&it, f->body, f->len);
	while (mbx_field_next(&it, &tag, &v, &n) == 1) {
		struct mbx_field_iter sub;
		const uint8_t *sv;
		uint32_t sn, class = 0;
		uint16_t stag;
		char path[4096] = "";
		struct mbx_landlock_path_beneath_attr pb;

		if (tag != MBX_F_LL_PATH)
			continue;
		mbx_field_iter_init(&sub, v, n);
		while (mbx_field_next(&sub, &stag, &sv, &sn) == 1) {
			if (stag == MBX_F_DST && field_str(path, sizeof(path), sv, sn) < 0)
				path[0] = '\0';
			else if (stag == MBX_F_MODE)
				mbx_field_u32(sv, sn, &class);
		}
		if (path[0] != '/')
			continue;
		pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0)
			continue; /* an optional path that does not exist */
		pb.allowed_access = ll_rights(class, attr.handled_access_fs);
		{
			struct stat sst;

			/* Rules on files may only carry file rights. */
			if (fstat(pb.parent_fd, &sst) == 0 && !S_ISDIR(sst.st_mode))
				pb.allowed_access &= MBX_LL_FS_EXECUTE | MBX_LL_FS_READ_FILE | MBX_LL_FS_WRITE_FILE |
						     MBX_LL_FS_TRUNCATE | MBX_LL_FS_IOCTL_DEV;
		}
		if (mbx_sys_landlock_add_rule(fd, MBX_LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
			int e = errno;

			close(pb.parent_fd);
			close(fd);
			errno = e;
			return -1;
		}
		close(pb.parent_fd);
	}
	st->landlock_fd = fd;
	return 0;
}

/*
 * Landlock rules belong to the inodes opened when they were added: an
 * overlay put on /workspace later (a copy-on-write fork, layers.c) has
 * inodes of its own, which no rule names (the rule on the directory below
 * it does not count: Landlock skips a mount's mount point). So the rules'
 * paths are kept, and the ruleset is built again once the overlays are on.
 */
static int keep_landlock_paths(struct agent_state *st, const struct mbx_frame *f)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;

	mbx_wbuf_init(&st->ll_frame);
	mbx_proto_begin(&st->ll_frame, MBX_MSG_INIT, 0);
	mbx_field_iter_init(&it, f->body, f->len);
	while (mbx_field_next(&it, &tag, &v, &n) == 1)
		if (tag == MBX_F_LL_PATH)
			mbx_proto_put(&st->ll_frame, tag, v, n);
	if (mbx_proto_end(&st->ll_frame) < 0 || st->ll_frame.failed) {
		mbx_wbuf_release(&st->ll_frame);
		return -1;
	}
	return 0;
}

int agent_landlock_refresh(struct agent_state *st)
{
	struct mbx_frame g;
	size_t used;
	int old = st->landlock_fd;

	if (st->ll_frame.len == 0)
		return 0; /* no Landlock for payloads (skipped when degraded) */
	if (mbx_proto_parse(st->ll_frame.buf, st->ll_frame.len, &g, &used) != 1) {
		errno = EINVAL;
		return -1;
	}
	if (build_landlock(st, &g) < 0) {
		st->landlock_fd = old;
		return -1;
	}
	if (old >= 0)
		close(old);
	return 0;
}

/* Step times for MBX_INIT_TRACE: nanoseconds per MBX_TRACE_* step. */
struct setup_trace {
	int on;
	uint64_t last;
	uint64_t ns[MBX_TRACE_MAX];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Charges the time since the last mark to `step`. */
static void trace_mark(struct setup_trace *t, unsigned int step)
{
	uint64_t now;

	if (!t->on)
		return;
	now = mono_ns();
	if (step < MBX_TRACE_MAX)
		t->ns[step] += now - t->last;
	t->last = now;
}

static void trace_put(struct mbx_wbuf *w, const struct setup_trace *t, uint64_t start)
{
	uint8_t b[12];

	if (!t->on)
		return;
	for (uint32_t i = 1; i < MBX_TRACE_MAX; i++) {
		uint64_t ns = i == MBX_TRACE_TOTAL ? mono_ns() - start : t->ns[i];

		if (ns == 0)
			continue;
		for (int k = 0; k < 4; k++)
			b[k] = (uint8_t)(i >> (8 * k));
		for (int k = 0; k < 8; k++)
			b[4 + k] = (uint8_t)(ns >> (8 * k));
		mbx_proto_put(w, MBX_F_TRACE, b, sizeof(b));
	}
}

int agent_setup(struct agent_state *st, const struct mbx_frame *f)
{
	static struct setup_trace trace;
	uint64_t start = mono_ns();
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	char hostname[256] = "";
	uint64_t shm_limit = 0;
	struct agent_guest_init guest = { 0 };
	int rc, degraded_ok, has_mounts = 0;

	/* Pass 1: scalars. */
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_INIT_FLAGS:
			if (mbx_field_u32(v, n, &st->init_flags) < 0)
				goto bad;
			break;
		case MBX_F_HOSTNAME:
			if (field_str(hostname, sizeof(hostname), v, n) < 0)
				goto bad;
			break;
		case MBX_F_SECCOMP:
			if (n == 0 || n % 8 != 0 || n > 65536)
				goto bad;
			st->seccomp = malloc(n);
			if (st->seccomp == NULL)
				goto bad;
			memcpy(st->seccomp, v, n);
			st->seccomp_len = n;
			/* Compiled with KILL_PROCESS; older kernels get KILL_THREAD. */
			mbx_seccomp_set_kill_action(st->seccomp, n, mbx_seccomp_host_kill_action());
			break;
		case MBX_F_SECCOMP_EXTRA:
			if (n == 0 || n % 8 != 0 || n > 4096 || st->seccomp_extra != NULL)
				goto bad;
			st->seccomp_extra = malloc(n);
			if (st->seccomp_extra == NULL)
				goto bad;
			memcpy(st->seccomp_extra, v, n);
			st->seccomp_extra_len = n;
			break;
		case MBX_F_SHM_LIMIT:
			if (mbx_field_u64(v, n, &shm_limit) < 0 || shm_limit == 0)
				goto bad;
			break;
		case MBX_F_RLIMIT:
			if (n != 12 || st->nrlimits >= sizeof(st->rlimits) / sizeof(st->rlimits[0]))
				goto bad;
			mbx_field_u32(v, 4, &st->rlimits[st->nrlimits].resource);
			mbx_field_u64(v + 4, 8, &st->rlimits[st->nrlimits].value);
			st->nrlimits++;
			break;
		case MBX_F_MOUNT:
			has_mounts = 1;
			break;
		/* A guest's fields; an os-mode agent skips them like any unknown field. */
		case MBX_F_DISK:
			if (st->guest && (mbx_field_u64(v, n, &guest.disk) < 0 || guest.disk == 0))
				goto bad;
			break;
		case MBX_F_SEED:
			if (st->guest && (n < MBX_SEED_MIN || n > MBX_SEED_MAX || guest.seed != NULL))
				goto bad;
			guest.seed = v;
			guest.seed_len = n;
			break;
		case MBX_F_MAX_PROCS:
			if (st->guest && (mbx_field_u32(v, n, &guest.max_procs) < 0 || guest.max_procs == 0))
				goto bad;
			break;
		case MBX_F_NET_CA:
			if (st->guest && (n == 0 || n > MBX_NET_CA_MAX || guest.ca != NULL))
				goto bad;
			guest.ca = v;
			guest.ca_len = n;
			break;
		default:
			break;
		}
	}
	if (rc < 0)
		goto bad;
	memset(&trace, 0, sizeof(trace));
	trace.on = (st->init_flags & MBX_INIT_TRACE) != 0;
	trace.last = start;
	trace_mark(&trace, MBX_TRACE_PARSE);
	degraded_ok = (st->init_flags & MBX_INIT_ALLOW_DEGRADED) != 0;
	if (!st->guest && (st->init_flags & MBX_INIT_GUEST)) {
		agent_send_error(st, 0, MBX_EINVAL, 0, NULL,
				 "INIT for a microvm guest (MBX_INIT_GUEST) sent to the agent of an os-backend sandbox");
		return -1;
	}
	if (st->guest) {
		/* Descriptors cannot cross the virtio port, and host paths mean
		 * nothing in the guest: a mount plan is refused, not skipped. */
		if (!(st->init_flags & MBX_INIT_GUEST)) {
			agent_send_error(st, 0, MBX_EINVAL, 0, NULL,
					 "this agent is the init of a microvm guest: INIT must carry MBX_INIT_GUEST");
			return -1;
		}
		if ((st->init_flags & MBX_INIT_SETUP_ROOT) || has_mounts || shm_limit != 0) {
			agent_send_error(st, 0, MBX_EINVAL, 0, "mount-namespace",
					 "a microvm guest builds its own root: INIT may not carry a mount plan, "
					 "descriptors or a SysV IPC limit");
			return -1;
		}
	}

	if (hostname[0] && sethostname(hostname, strlen(hostname)) < 0) {
		agent_send_error(st, 0, MBX_ESYS, errno, "uts-namespace", "set host name `%s`", hostname);
		return -1;
	}
	trace_mark(&trace, MBX_TRACE_HOSTNAME);
	/* An os sandbox's helper brings its loopback up (agent_netns_begin). */
	if (st->guest && (st->init_flags & MBX_INIT_LOOPBACK) && bring_up_loopback() < 0) {
		agent_send_error(st, 0, MBX_ESYS, errno, "network-namespace", "bring up the loopback interface");
		return -1;
	}
	if (st->guest)
		trace_mark(&trace, MBX_TRACE_LOOPBACK);
	if (st->init_flags & MBX_INIT_NET_PROXY) {
		if (!st->guest || !(st->init_flags & MBX_INIT_LOOPBACK)) {
			agent_send_error(st, 0, MBX_EINVAL, 0, "network",
					 "MBX_INIT_NET_PROXY is for a microvm guest, with its loopback up (MBX_INIT_LOOPBACK)");
			return -1;
		}
		if (agent_net_start(st) < 0)
			return -1;
	}

	/* Pass 2: the mount plan. */
	if (st->init_flags & MBX_INIT_SETUP_ROOT) {
		if (enter_scratch_root(st) < 0)
			return -1;
		trace_mark(&trace, MBX_TRACE_SCRATCH);
		mbx_field_iter_init(&it, f->body, f->len);
		while (mbx_field_next(&it, &tag, &v, &n) == 1) {
			/* One entry at a time; static so no allocation per entry. */
			static struct mount_entry entry;
			struct mount_entry *m = &entry;

			if (tag != MBX_F_MOUNT)
				continue;
			if (parse_mount(v, n, m) < 0)
				goto bad;
			if (run_mount(st, m) < 0) {
				int e = errno;

				if (e == ELOOP && (m->flags & MBX_MF_USER))
					agent_send_error(st, 0, MBX_EPERM, e, "mount-namespace",
							 "%s `%s` to `%s`: the source or target path goes through a symbolic link; "
							 "mount paths are never followed through links", op_name(m->op), m->src, m->dst);
				else if (e == ESTALE && (m->flags & MBX_MF_USER))
					agent_send_error(st, 0, MBX_EINVAL, e, "mount-namespace",
							 "%s `%s` to `%s`: the source was replaced while the sandbox was created",
							 op_name(m->op), m->src, m->dst);
				else if ((m->op == MBX_MOP_BIND || m->op == MBX_MOP_ATTACH) && m->src[0])
					agent_send_error(st, 0, e == EACCES || e == EPERM ? MBX_EPERM : MBX_ESYS, e, "mount-namespace",
							 "%s `%s` to `%s`", op_name(m->op), m->src, m->dst);
				else
					agent_send_error(st, 0, MBX_ESYS, e, "mount-namespace", "%s `%s`", op_name(m->op), m->dst);
				return -1;
			}
			trace_mark(&trace, MBX_TRACE_MOP + m->op);
		}
		if (shm_limit != 0 && limit_sysv_ipc(st, shm_limit) < 0)
			return -1;
		trace_mark(&trace, MBX_TRACE_SYSV);
		agent_close_fds(st);
		trace_mark(&trace, MBX_TRACE_CLOSE_FDS);
		if (enter_new_root(st) < 0)
			return -1;
		trace_mark(&trace, MBX_TRACE_NEW_ROOT);
	}

	if (st->guest && agent_guest_setup(st, &guest) < 0)
		return -1;
	trace_mark(&trace, MBX_TRACE_MAX); /* not timed */
	/* Before anything that could start a process of the sandbox. */
	if (!st->guest) {
		if (agent_netns_join(st) < 0) {
			agent_send_error(st, 0, MBX_ESYS, errno, "network-namespace",
					 "make the sandbox's network namespace and bring its loopback up");
			return -1;
		}
		trace_mark(&trace, MBX_TRACE_NETNS);
	}

	/* Payload layers. Landlock is probed and built now so a host without it
	 * fails at creation, naming the layer, not at the first execute. In a
	 * microvm guest the VM is the boundary and the guest kernel has no
	 * Landlock: not applied, and not reported as skipped either. */
	st->layers |= MBX_LAYER_NO_NEW_PRIVS | MBX_LAYER_CAPS_DROPPED;
	if (st->guest) {
		st->landlock_abi = 0;
	} else if (build_landlock(st, f) == 0) {
		st->layers |= MBX_LAYER_LANDLOCK;
		if (st->cow != NULL && keep_landlock_paths(st, f) < 0) {
			agent_send_error(st, 0, MBX_ENOMEM, ENOMEM, "landlock", "keep the Landlock rules");
			return -1;
		}
	} else if (degraded_ok) {
		st->skipped |= MBX_LAYER_LANDLOCK;
	} else {
		agent_send_error(st, 0, MBX_ENOTSUP, errno, "landlock",
				 "Landlock cannot be applied (kernel ABI %d)", st->landlock_abi);
		return -1;
	}
	trace_mark(&trace, MBX_TRACE_LANDLOCK);
	if (st->seccomp && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0) {
		st->layers |= MBX_LAYER_SECCOMP;
	} else if (degraded_ok) {
		st->skipped |= MBX_LAYER_SECCOMP;
		free(st->seccomp);
		st->seccomp = NULL;
		free(st->seccomp_extra);
		st->seccomp_extra = NULL;
	} else {
		agent_send_error(st, 0, MBX_ENOTSUP, st->seccomp ? errno : 0, "seccomp",
				 st->seccomp ? "this kernel has no seccomp filter support" : "no seccomp program was given");
		return -1;
	}
	trace_mark(&trace, MBX_TRACE_SECCOMP);

	mbx_proto_begin(&st->out, MBX_MSG_READY, 0);
	mbx_proto_put_u32(&st->out, MBX_F_LAYERS, st->layers);
	mbx_proto_put_u32(&st->out, MBX_F_SKIPPED, st->skipped);
	mbx_proto_put_u32(&st->out, MBX_F_LANDLOCK_ABI, (uint32_t)(st->landlock_abi > 0 ? st->landlock_abi : 0));
	trace_put(&st->out, &trace, start);
	mbx_proto_end(&st->out);
	return 0;
bad:
	agent_send_error(st, 0, MBX_EPROTO, 0, NULL, "malformed INIT message");
	return -1;
}
