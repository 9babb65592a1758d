/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LAYERS: the copy-on-write fork of an os sandbox (docs/snapshots.md).
 *
 * The sandbox's writable storage is one tmpfs (MBX_MOP_STORAGE) whose
 * directories are bound at /workspace, /tmp and /dev/shm. A fork freezes it:
 *
 *  FREEZE (the parent). The storage's superblock is made read-only, which
 *    holds for every mount of it in every namespace, every descriptor opened
 *    afterwards and every path to it (/proc/<pid>/root included); the kernel
 *    refuses (EBUSY) while a file of it is open for writing or deleted but
 *    still open, and the host then copies instead. A fresh tmpfs (the new
 *    upper) takes the writes: an overlay of upper over the frozen layer (and
 *    the older frozen layers below it) is mounted over each of the three
 *    directories. Every frozen layer goes to the child's agent on the socket
 *    the host passed, as detached mounts (open_tree clones).
 *  ADOPT (the child, just made, no processes). The layers are attached once
 *    (a mount made in another sandbox's namespace can only become an
 *    overlay layer after it has been attached in ours), cloned and detached
 *    again, then stacked below a fresh upper of the child's own, the same way.
 *
 * Nobody writes into a frozen layer again: its superblock belongs to the
 * parent's user namespace, so the child cannot make it writable, and the
 * parent's payloads have neither the capabilities nor the mount API
 * (seccomp). The limits: a layer's bytes and inodes count against the disk
 * limit of every sandbox above it (the new upper's tmpfs is the limit less
 * what the layers below hold), and at most MBX_LAYERS_MAX layers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"
#include "platform/linux/syscalls.h"

#define MAX_DIRS 4

struct agent_layers {
	int top;             /* detached clone of the writable storage tmpfs */
	int top_nested;      /* its directories are below u/ (an upper made here) */
	uint64_t size;       /* the storage's limits, from INIT */
	uint64_t inodes;
	int lowers[MBX_LAYERS_MAX]; /* frozen layers, newest first: detached
				     * mounts whose root holds the directories */
	size_t nlowers;
	struct {
		char name[32];
		char dst[64];
	} dirs[MAX_DIRS];
	size_t ndirs;
};

static uint64_t opt_u64(const char *opts, const char *key)
{
	const char *p = strstr(opts, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

int agent_layers_storage(struct agent_state *st, const char *path, const char *opts)
{
	struct agent_layers *l;

	if (st->cow != NULL)
		return 0;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -1;
	l->size = opt_u64(opts, "size=");
	l->inodes = opt_u64(opts, "nr_inodes=");
	/* Without open_tree (before 5.2) forks copy. */
	l->top = mbx_sys_open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (l->top < 0 || l->size == 0 || l->inodes == 0) {
		if (l->top >= 0)
			close(l->top);
		free(l);
		return 0;
	}
	st->cow = l;
	return 0;
}

int agent_layers_bound(struct agent_state *st, const char *name, const char *dst)
{
	struct agent_layers *l = st->cow;

	if (l == NULL)
		return 0;
	if (l->ndirs >= MAX_DIRS || strlen(name) >= sizeof(l->dirs[0].name) || strlen(dst) >= sizeof(l->dirs[0].dst)) {
		/* A layout this code does not know: no copy-on-write forks. */
		close(l->top);
		for (size_t i = 0; i < l->nlowers; i++)
			close(l->lowers[i]);
		free(l);
		st->cow = NULL;
		return 0;
	}
	snprintf(l->dirs[l->ndirs].name, sizeof(l->dirs[0].name), "%s", name);
	snprintf(l->dirs[l->ndirs].dst, sizeof(l->dirs[0].dst), "%s", dst);
	l->ndirs++;
	return 0;
}

/* Bytes and inodes a layer holds. */
static int usage(int fd, uint64_t *bytes, uint64_t *inodes)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -1;
	*bytes += (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	*inodes += (uint64_t)(sv.f_files - sv.f_ffree);
	return 0;
}

/* The layer's directory `name` (the top's under u/ once nested). */
static void layer_path(char *buf, size_t cap, int fd, int nested, const char *name)
{
	snprintf(buf, cap, "/proc/self/fd/%d/%s%s", fd, nested ? "u/" : "", name);
}

/*
 * A fresh upper: a tmpfs of the disk limit less what the layers below hold
 * (at least a page and the upper's own directories), with u/<dir> (modes of
 * the layer below, `ref`) and w/<dir> (overlay's work directories).
 */
static int make_upper(const struct agent_layers *l, int ref, int ref_nested, uint64_t below_bytes, uint64_t below_inodes)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t size = l->size > below_bytes + page ? l->size - below_bytes : page;
	/* root, u, w and two directories per mount, plus overlay's work/ */
	uint64_t own = 3 + 3 * l->ndirs;
	uint64_t inodes = (l->inodes > below_inodes ? l->inodes - below_inodes : 0) + own;
	char text[32], path[128];
	int fc, mnt, e;

	fc = mbx_sys_fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fc < 0)
		return -1;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)size);
	if (mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "size", text, 0) < 0)
		goto fail;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)inodes);
	if (mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "nr_inodes", text, 0) < 0 ||
	    mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    mbx_sys_fsconfig(fc, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	mnt = mbx_sys_fsmount(fc, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		goto fail;
	close(fc);
	if (mkdirat(mnt, "u", 0755) < 0 || mkdirat(mnt, "w", 0700) < 0)
		goto fail_mnt;
	for (size_t i = 0; i < l->ndirs; i++) {
		struct stat st;

		layer_path(path, sizeof(path), ref, ref_nested, l->dirs[i].name);
		if (stat(path, &st) < 0)
			goto fail_mnt;
		snprintf(path, sizeof(path), "u/%s", l->dirs[i].name);
		if (mkdirat(mnt, path, 0700) < 0 || fchmodat(mnt, path, st.st_mode & 07777, 0) < 0 ||
		    fchownat(mnt, path, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			goto fail_mnt;
		snprintf(path, sizeof(path), "w/%s", l->dirs[i].name);
		if (mkdirat(mnt, path, 0700) < 0)
			goto fail_mnt;
	}
	return mnt;
fail_mnt:
	e = errno;
	close(mnt);
	errno = e;
	return -1;
fail:
	e = errno;
	close(fc);
	errno = e;
	return -1;
}

/* An overlay of dir `i`: upper's u/<dir> over the lowers (newest first). */
static int make_overlay(const struct agent_layers *l, size_t i, int upper, const int *lowers, size_t n)
{
	const char *name = l->dirs[i].name;
	char path[128];
	int fc, mnt, e;

	fc = mbx_sys_fsopen("overlay", FSOPEN_CLOEXEC);
	if (fc < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		layer_path(path, sizeof(path), lowers[k], 0, name);
		if (mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "lowerdir+", path, 0) < 0)
			goto fail;
	}
	layer_path(path, sizeof(path), upper, 1, name);
	if (mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "upperdir", path, 0) < 0)
		goto fail;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/w/%s", upper, name);
	/* user.overlay.* attributes: the trusted.* ones need host root. */
	if (mbx_sys_fsconfig(fc, FSCONFIG_SET_STRING, "workdir", path, 0) < 0 ||
	    mbx_sys_fsconfig(fc, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
	    mbx_sys_fsconfig(fc, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	mnt = mbx_sys_fsmount(fc, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		goto fail;
	close(fc);
	return mnt;
fail:
	e = errno;
	close(fc);
	errno = e;
	return -1;
}

/* Makes the superblock of `fd` read-only (or writable again). */
static int set_readonly(int fd, int ro)
{
	int fc = mbx_sys_fspick(fd, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
	int rc, e;

	if (fc < 0)
		return -1;
	rc = mbx_sys_fsconfig(fc, FSCONFIG_SET_FLAG, ro ? "ro" : "rw", NULL, 0);
	if (rc == 0)
		rc = mbx_sys_fsconfig(fc, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0);
	e = errno;
	close(fc);
	errno = e;
	return rc;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/*
 * Puts an overlay of `upper` over `lowers` on every storage directory and
 * builds the payloads' Landlock rules again for them (setup.c). All or
 * nothing: on failure what was mounted is taken off again.
 */
static int stack(struct agent_state *st, int upper, const int *lowers, size_t n)
{
	const struct agent_layers *l = st->cow;
	int ovl[MAX_DIRS] = { -1, -1, -1, -1 };
	size_t done = 0;
	int e;

	for (size_t i = 0; i < l->ndirs; i++) {
		ovl[i] = make_overlay(l, i, upper, lowers, n);
		if (ovl[i] < 0)
			goto fail;
	}
	for (; done < l->ndirs; done++)
		if (mbx_sys_move_mount(ovl[done], "", AT_FDCWD, l->dirs[done].dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			goto fail;
	close_all(ovl, l->ndirs);
	if (agent_landlock_refresh(st) < 0)
		goto fail_mounted;
	return 0;
fail_mounted:
	e = errno;
	for (size_t i = l->ndirs; i > 0; i--)
		umount2(l->dirs[i - 1].dst, MNT_DETACH);
	agent_landlock_refresh(st); /* back to the inodes below */
	errno = e;
	return -1;
fail:
	e = errno;
	while (done > 0)
		umount2(l->dirs[--done].dst, MNT_DETACH);
	close_all(ovl, l->ndirs);
	errno = e;
	return -1;
}

/* Whether a layer holds nothing yet: its u/<dir> empty, with the modes and
 * owners of the layer below. */
static int upper_unchanged(const struct agent_layers *l)
{
	if (!l->top_nested || l->nlowers == 0)
		return 0;
	for (size_t i = 0; i < l->ndirs; i++) {
		char path[128];
		struct stat up, low;
		struct dirent *de;
		DIR *d;
		int fd, empty = 1;

		layer_path(path, sizeof(path), l->lowers[0], 0, l->dirs[i].name);
		if (stat(path, &low) < 0)
			return 0;
		layer_path(path, sizeof(path), l->top, 1, l->dirs[i].name);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		if (fstat(fd, &up) < 0 || up.st_mode != low.st_mode || up.st_uid != low.st_uid || up.st_gid != low.st_gid) {
			close(fd);
			return 0;
		}
		d = fdopendir(fd);
		if (d == NULL) {
			close(fd);
			return 0;
		}
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
				empty = 0;
				break;
			}
		closedir(d);
		if (!empty)
			return 0;
	}
	return 1;
}

/* Whether something is mounted below a storage directory (a caller's mount
 * at /workspace/data): an overlay over the directory would hide it. */
static int mounts_below(const struct agent_layers *l)
{
	char line[8192];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (f == NULL)
		return 1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* id parent major:minor root mount-point ... */
		char *p = line;

		for (int field = 0; field < 4 && p != NULL; field++) {
			p = strchr(p, ' ');
			if (p != NULL)
				p++;
		}
		if (p == NULL)
			continue;
		for (size_t i = 0; i < l->ndirs; i++) {
			size_t n = strlen(l->dirs[i].dst);

			if (strncmp(p, l->dirs[i].dst, n) == 0 && p[n] == '/')
				found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Why a fork cannot share layers now (the host copies instead), or NULL. */
static const char *busy(const struct agent_state *st)
{
	if (st->cow == NULL)
		return "this sandbox's storage has no layers (kernel without open_tree)";
	if (mounts_below(st->cow))
		return "something is mounted below /workspace, /tmp or /dev/shm";
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] != NULL)
			return "processes are running in the sandbox";
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (st->files[i].fd >= 0)
			return "a file transfer is open";
	return NULL;
}

/* Sends clones of every frozen layer on `sock`, with one byte. */
static int send_layers(const struct agent_layers *l, int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MBX_LAYERS_MAX)];
		struct cmsghdr align;
	} ctl;
	int fds[MBX_LAYERS_MAX];
	char byte = 'L';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { 0 };
	ssize_t n;
	int e;

	for (size_t i = 0; i < l->nlowers; i++) {
		fds[i] = mbx_sys_open_tree(l->lowers[i], "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (fds[i] < 0) {
			e = errno;
			close_all(fds, i);
			errno = e;
			return -1;
		}
	}
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	mbx_proto_attach_fds(&msg, ctl.buf, fds, l->nlowers);
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	e = errno;
	close_all(fds, l->nlowers);
	errno = e;
	return n == 1 ? 0 : -1;
}

static void freeze(struct agent_state *st, uint32_t id, int sock)
{
	struct agent_layers *l = st->cow;
	int lowers[MBX_LAYERS_MAX];
	uint64_t bytes = 0, inodes = 0;
	const char *why = busy(st);
	int base = -1, upper = -1;

	if (why != NULL) {
		agent_send_error(st, id, MBX_ENOTSUP, 0, "fork", "%s", why);
		return;
	}
	if (upper_unchanged(l))
		goto send; /* nothing written since the last fork: no new layer */
	if (l->nlowers + 1 > MBX_LAYERS_MAX) {
		agent_send_error(st, id, MBX_ENOTSUP, 0, "fork", "the storage has %d layers already", MBX_LAYERS_MAX);
		return;
	}
	/* The layer to freeze, as a tree whose root holds the directories. */
	if (l->top_nested)
		base = mbx_sys_open_tree(l->top, "u", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	else
		base = mbx_sys_open_tree(l->top, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (base < 0)
		goto fail;
	lowers[0] = base;
	memcpy(lowers + 1, l->lowers, l->nlowers * sizeof(int));
	for (size_t i = 0; i < l->nlowers + 1; i++)
		if (usage(lowers[i], &bytes, &inodes) < 0)
			goto fail;
	upper = make_upper(l, base, 0, bytes, inodes);
	if (upper < 0)
		goto fail;
	if (set_readonly(l->top, 1) < 0) {
		if (errno == EBUSY) {
			close(upper);
			close(base);
			agent_send_error(st, id, MBX_ENOTSUP, EBUSY, "fork",
					 "a file of the storage is open for writing (or deleted while still open)");
			return;
		}
		goto fail;
	}
	if (stack(st, upper, lowers, l->nlowers + 1) < 0) {
		int e = errno;

		set_readonly(l->top, 0);
		errno = e;
		goto fail;
	}
	/* The parent now writes into `upper`; the frozen layer lives on in
	 * the overlays and in `base`. */
	close(l->top);
	l->top = upper;
	l->top_nested = 1;
	memmove(l->lowers + 1, l->lowers, l->nlowers * sizeof(int));
	l->lowers[0] = base;
	l->nlowers++;
send:
	if (send_layers(l, sock) < 0) {
		agent_send_error(st, id, MBX_ESYS, errno, "fork", "send the storage layers");
		return;
	}
	mbx_proto_begin(&st->out, MBX_MSG_OK, id);
	mbx_proto_put_u64(&st->out, MBX_F_SIZE, l->nlowers);
	mbx_proto_end(&st->out);
	return;
fail:
	{
		int e = errno;

		if (upper >= 0)
			close(upper);
		if (base >= 0)
			close(base);
		agent_send_error(st, id, e == EINVAL || e == ENOSYS || e == ENODEV ? MBX_ENOTSUP : MBX_ESYS, e, "fork",
				 "freeze the storage into a layer");
	}
}

/* Takes up to MBX_LAYERS_MAX descriptors from `sock`; returns the count or -1. */
static int recv_layers(int sock, int *fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MBX_LAYERS_MAX)];
		struct cmsghdr align;
	} ctl;
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { 0 };
	int n = 0;
	ssize_t r;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	do
		r = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	n = (int)agent_cmsg_fds(&msg, fds, 0, MBX_LAYERS_MAX);

	if (r != 1 || (msg.msg_flags & MSG_CTRUNC) || n == 0) {
		close_all(fds, (size_t)n);
		errno = EPROTO;
		return -1;
	}
	return n;
}

/*
 * A layer from another sandbox's agent becomes one of ours: checked to be a
 * read-only directory, attached for a moment on `dst` (a mount of another
 * namespace cannot be an overlay layer here; one attached here can),
 * cloned, and taken off again. Returns the clone or -1.
 */
static int adopt_one(int fd, const char *dst)
{
	struct statvfs sv;
	struct stat st;
	int clone, e;

	if (fstat(fd, &st) < 0 || fstatvfs(fd, &sv) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode) || !(sv.f_flag & ST_RDONLY)) {
		errno = EPERM;
		return -1;
	}
	if (mbx_sys_move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -1;
	clone = mbx_sys_open_tree(AT_FDCWD, dst, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	e = errno;
	if (umount2(dst, MNT_DETACH) < 0 && clone >= 0) {
		/* The layer would stay visible at dst: give up. */
		e = errno;
		close(clone);
		clone = -1;
	}
	errno = e;
	return clone;
}

static void adopt(struct agent_state *st, uint32_t id, int sock)
{
	struct agent_layers *l = st->cow;
	int got[MBX_LAYERS_MAX], mine[MBX_LAYERS_MAX];
	uint64_t bytes = 0, inodes = 0;
	const char *why = busy(st);
	int n, upper = -1, e;
	size_t k = 0;

	if (why != NULL) {
		agent_send_error(st, id, MBX_ENOTSUP, 0, "fork", "%s", why);
		return;
	}
	if (l->nlowers != 0 || l->top_nested || l->ndirs == 0) {
		agent_send_error(st, id, MBX_ESTATE, 0, "fork", "the storage has layers already");
		return;
	}
	n = recv_layers(sock, got);
	if (n < 0) {
		agent_send_error(st, id, MBX_EPROTO, errno, "fork", "no storage layers came from the parent sandbox");
		return;
	}
	for (; k < (size_t)n; k++) {
		mine[k] = adopt_one(got[k], l->dirs[0].dst);
		if (mine[k] < 0 || usage(mine[k], &bytes, &inodes) < 0)
			goto fail;
	}
	close_all(got, (size_t)n);
	upper = make_upper(l, mine[0], 0, bytes, inodes);
	if (upper < 0 || stack(st, upper, mine, (size_t)n) < 0)
		goto fail;
	close(l->top); /* the child's first storage: empty, stays bound below */
	l->top = upper;
	l->top_nested = 1;
	memcpy(l->lowers, mine, (size_t)n * sizeof(int));
	l->nlowers = (size_t)n;
	mbx_proto_begin(&st->out, MBX_MSG_OK, id);
	mbx_proto_put_u64(&st->out, MBX_F_SIZE, l->nlowers);
	mbx_proto_end(&st->out);
	return;
fail:
	e = errno;
	if (k < (size_t)n && mine[k] >= 0)
		k++;
	close_all(mine, k);
	close_all(got, (size_t)n);
	if (upper >= 0)
		close(upper);
	agent_send_error(st, id, e == EPERM ? MBX_EPERM : e == EINVAL || e == ENOSYS || e == ENODEV ? MBX_ENOTSUP : MBX_ESYS,
			 e, "fork", e == EPERM ? "a storage layer from the parent sandbox is not a read-only directory"
						: "stack the parent sandbox's storage layers");
}

void agent_layers(struct agent_state *st, const struct mbx_frame *f)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n, op = 0, idx = UINT32_MAX;
	uint16_t tag;

	mbx_field_iter_init(&it, f->body, f->len);
	while (mbx_field_next(&it, &tag, &v, &n) == 1) {
		if (tag == MBX_F_OP)
			mbx_field_u32(v, n, &op);
		else if (tag == MBX_F_FD)
			mbx_field_u32(v, n, &idx);
	}
	if (st->guest) {
		agent_send_error(st, f->id, MBX_ENOTSUP, 0, "fork", "storage layers are for the os backend");
	} else if (idx >= st->nfds) {
		agent_send_error(st, f->id, MBX_EINVAL, 0, "fork", "LAYERS without its socket");
	} else if (op == MBX_LOP_FREEZE) {
		freeze(st, f->id, st->fds[idx]);
	} else if (op == MBX_LOP_ADOPT) {
		if (st->cow == NULL)
			agent_send_error(st, f->id, MBX_ENOTSUP, 0, "fork", "this sandbox's storage has no layers");
		else
			adopt(st, f->id, st->fds[idx]);
	} else {
		agent_send_error(st, f->id, MBX_EINVAL, 0, "fork", "unknown LAYERS operation %u", op);
	}
	agent_close_fds(st);
}
