/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RESET (proto.h): an os sandbox made as good as new for its next user, so a
 * warm pool may hand it out again (mbx_sandbox_reset(), docs/security-model.md
 * "Reuse"). Inside the sandbox, in this order:
 *
 *  1. processes: every process but this agent is killed and reaped, rounds
 *     of kill(-1, SIGKILL) and wait until the sandbox's /proc lists PID 1
 *     alone. As PID 1 of the sandbox's pid namespace kill(-1) reaches every
 *     process of it and of the namespaces below (the mini-inits'), whatever
 *     session or parent it has; none outside.
 *  2. storage: /workspace, /tmp and /dev/shm are emptied, and their own
 *     mode, owner and extended attributes set back. They are directories of
 *     one tmpfs (MBX_MOP_STORAGE); afterwards the tmpfs must hold no inode
 *     beyond its root and those directories, which proves nothing is left
 *     anywhere in it (a file hidden under an unlinked directory, a deleted
 *     file still open). A storage under copy-on-write overlays (a fork) is
 *     refused.
 *  3. IPC: this agent moves to a fresh ipc namespace, which every later
 *     payload inherits: no SysV shared memory, semaphore or message queue
 *     and no POSIX message queue of an earlier user is reachable (the old
 *     namespace goes with its last process, killed in 1). Its sysctls (the
 *     SysV bounds of INIT) are copied into the new namespace.
 *  4. UTS: the host name INIT set (the host sends it again) and the NIS
 *     domain name "(none)", what a new uts namespace has.
 *
 * The processes the host spawned die in 1 like any other and are forgotten
 * without an EXIT. Refused (an ERROR; the host then destroys the sandbox):
 * file handles the host still has open, a storage that is not the plain
 * tmpfs, any step that fails. The answer is OK only when every step succeeded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"
#include "platform/linux/syscalls.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* The storage directories of the mount plan (mountplan.c) and their modes. */
static const struct {
	const char *path;
	mode_t mode;
} storage_dirs[] = {
	{ "/workspace", 0755 },
	{ "/tmp", 01777 },
	{ "/dev/shm", 01777 },
};
#define NSTORAGE (sizeof(storage_dirs) / sizeof(storage_dirs[0]))

/* Directory depth the emptying follows; deeper trees fail the reset (the
 * sandbox is then destroyed, not reused). */
#define MAX_DEPTH 256
/* Kill rounds before the reset gives up on a process that will not go. */
#define KILL_ROUNDS 2000

/* ---- 1. processes ---- */

/* Number of processes the sandbox's /proc lists besides PID 1, or -1. */
static int others_alive(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		const char *c = e->d_name;

		if (*c < '0' || *c > '9')
			continue;
		while (*c >= '0' && *c <= '9')
			c++;
		if (*c == '\0' && strcmp(e->d_name, "1") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static int kill_everything(void)
{
	struct timespec pause = { 0, 500000 }; /* 0.5 ms */

	if (getpid() != 1) {
		errno = EPERM; /* not the init of the sandbox's pid namespace */
		return -1;
	}
	/* Nothing left (most often: an execute's mini-init ends its own tree)
	 * needs no kill(-1), which walks every process of the host; the /proc
	 * count is the proof either way. */
	if (others_alive() == 0)
		return 0;
	for (int round = 0; round < KILL_ROUNDS; round++) {
		int n;

		if (kill(-1, SIGKILL) < 0 && errno != ESRCH)
			return -1;
		/* Children of ours, and orphans of the namespaces below as they
		 * come to us. */
		for (;;) {
			pid_t w = waitpid(-1, NULL, __WALL | WNOHANG);

			if (w > 0 || (w < 0 && errno == EINTR))
				continue;
			break;
		}
		n = others_alive();
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	errno = EBUSY;
	return -1;
}

/* The host's processes, killed and reaped with the rest: forgotten without
 * an EXIT (the host forgot them too, mbx__client_forget_all()). */
static void forget_procs(struct agent_state *st)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] != NULL)
			agent_proc_free(st, st->procs[i]);
}

/* ---- 2. storage ---- */

/* Removes everything in the directory `dir` (a descriptor it closes). */
static int empty_dir(int dir, int depth)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (depth > MAX_DEPTH) {
		close(dir);
		errno = ELOOP;
		return -1;
	}
	d = fdopendir(dir);
	if (d == NULL) {
		close(dir);
		return -1;
	}
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		int sub;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), n, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM)
			rc = -1;
		else if ((sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			rc = -1;
		else if (fchmod(sub, 0700) < 0) {
			close(sub);
			rc = -1;
		} else if (empty_dir(sub, depth + 1) < 0 || unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0)
			rc = -1;
		else
			rewinddir(d); /* entries may have moved while we were below */
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	{
		int e2 = errno;

		closedir(d);
		errno = e2;
	}
	return rc;
}

/* Removes every extended attribute of `fd` (a tmpfs keeps user.* and
 * trusted.* ones a payload could set on the directory itself). */
static int clear_xattrs(int fd)
{
	char names[4096];
	ssize_t n = flistxattr(fd, names, sizeof(names));

	if (n < 0)
		return errno == ENOTSUP ? 0 : -1;
	for (ssize_t at = 0; at < n; at += (ssize_t)strlen(names + at) + 1)
		if (fremovexattr(fd, names + at) < 0 && errno != ENODATA)
			return -1;
	return 0;
}

/* Empties the storage directories; the tmpfs must then hold nothing else. */
static int reset_storage(struct agent_state *st, uint32_t id)
{
	dev_t dev = 0;
	struct statvfs sv;
	int fds[NSTORAGE];
	size_t i;
	const char *what = "";
	int rc = -1;

	for (i = 0; i < NSTORAGE; i++)
		fds[i] = -1;
	for (i = 0; i < NSTORAGE; i++) {
		struct statfs sf;
		struct stat sb;

		what = storage_dirs[i].path;
		fds[i] = open(what, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fds[i] < 0 || fstatfs(fds[i], &sf) < 0 || fstat(fds[i], &sb) < 0)
			goto sys;
		if ((unsigned long)sf.f_type != TMPFS_MAGIC || (i > 0 && sb.st_dev != dev)) {
			agent_send_error(st, id, MBX_ENOTSUP, 0, "reset",
					 "%s is not the sandbox's plain storage tmpfs (a fork's overlay, or a mount over it): "
					 "the sandbox cannot be reset", what);
			goto out;
		}
		dev = sb.st_dev;
	}
	for (i = 0; i < NSTORAGE; i++) {
		int dup;

		what = storage_dirs[i].path;
		dup = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (dup < 0 || empty_dir(dup, 0) < 0)
			goto sys;
		if (fchown(fds[i], 0, 0) < 0 || fchmod(fds[i], storage_dirs[i].mode) < 0 || clear_xattrs(fds[i]) < 0)
			goto sys;
	}
	/* The root of the tmpfs and the directories: nothing else may be left. */
	what = "the storage tmpfs";
	if (fstatvfs(fds[0], &sv) < 0)
		goto sys;
	if (sv.f_files - sv.f_ffree > NSTORAGE + 1) {
		agent_send_error(st, id, MBX_ESTATE, 0, "reset",
				 "the storage tmpfs still holds %llu inodes after it was emptied (expected %zu)",
				 (unsigned long long)(sv.f_files - sv.f_ffree), NSTORAGE + 1);
		goto out;
	}
	rc = 0;
	goto out;
sys:
	agent_send_error(st, id, MBX_ESYS, errno, "reset", "empty %s", what);
out:
	for (i = 0; i < NSTORAGE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* ---- 3. IPC ---- */

/* Sysctls of an ipc namespace (/proc/sys/...). */
static const char *const ipc_sysctls[] = {
	"kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/msgmni", "kernel/msgmax", "kernel/msgmnb", "kernel/sem",
	"fs/mqueue/queues_max", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default", "fs/mqueue/msgsize_default",
};
#define NIPC (sizeof(ipc_sysctls) / sizeof(ipc_sysctls[0]))

/* Reads a sysctl; "" when the kernel does not have it. */
static int read_sysctl(const char *name, char *buf, size_t cap)
{
	char path[96];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		buf[0] = '\0';
		return errno == ENOENT ? 0 : -1;
	}
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int write_sysctl(const char *name, const char *text)
{
	char path[96];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		int e = errno;

		close(fd);
		errno = e ? e : EIO;
		return -1;
	}
	return close(fd);
}

/* /proc/sys read-only (setup.c binds it so when it bounds SysV IPC) or not. */
static int proc_sys_readonly(int ro)
{
	struct mbx_mount_attr attr = { 0 };

	if (ro)
		attr.attr_set = MOUNT_ATTR_RDONLY;
	else
		attr.attr_clr = MOUNT_ATTR_RDONLY;
	return mbx_sys_mount_setattr(AT_FDCWD, "/proc/sys", AT_RECURSIVE, &attr);
}

static int reset_ipc(struct agent_state *st, uint32_t id)
{
	static char old[NIPC][128];
	char now[128];
	const char *what = "unshare(CLONE_NEWIPC)";
	int opened = 0;
	size_t i;

	for (i = 0; i < NIPC; i++)
		if (read_sysctl(ipc_sysctls[i], old[i], sizeof(old[i])) < 0) {
			what = ipc_sysctls[i];
			goto fail;
		}
	if (unshare(CLONE_NEWIPC) < 0)
		goto fail;
	for (i = 0; i < NIPC; i++) {
		what = ipc_sysctls[i];
		if (read_sysctl(ipc_sysctls[i], now, sizeof(now)) < 0)
			goto fail;
		if (strcmp(now, old[i]) == 0)
			continue;
		if (!opened && write_sysctl(ipc_sysctls[i], old[i]) == 0)
			continue;
		if (!opened) {
			/* Read-only: open it for the copy, then close it again. */
			if (errno != EROFS || proc_sys_readonly(0) < 0)
				goto fail;
			opened = 1;
		}
		if (write_sysctl(ipc_sysctls[i], old[i]) < 0)
			goto fail;
	}
	if (opened && proc_sys_readonly(1) < 0) {
		what = "/proc/sys (read-only again)";
		goto fail;
	}
	return 0;
fail:
	{
		int e = errno;

		if (opened && proc_sys_readonly(1) < 0) {
			/* /proc/sys stays writable: this agent must not serve again. */
			agent_send_error(st, id, MBX_ESYS, errno, "reset", "make /proc/sys read-only again");
			agent_flush(st, 1);
			_exit(1);
		}
		agent_send_error(st, id, MBX_ESYS, e, "reset", "a fresh ipc namespace: %s", what);
	}
	return -1;
}

/* ---- the request ---- */

void agent_reset(struct agent_state *st, const struct mbx_frame *f)
{
	char hostname[256] = "";
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int have = 0;

	if (st->guest) {
		agent_send_error(st, f->id, MBX_ENOTSUP, 0, "reset", "a microvm guest is not reset: it is never reused");
		return;
	}
	mbx_field_iter_init(&it, f->body, f->len);
	while (mbx_field_next(&it, &tag, &v, &n) == 1) {
		if (tag != MBX_F_HOSTNAME)
			continue;
		if (n == 0 || n >= sizeof(hostname) || memchr(v, '\0', n) != NULL)
			break;
		memcpy(hostname, v, n);
		hostname[n] = '\0';
		have = 1;
	}
	if (!have) {
		agent_send_error(st, f->id, MBX_EPROTO, 0, NULL, "malformed RESET message: it needs the HOSTNAME");
		return;
	}
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (st->files[i].fd >= 0) {
			agent_send_error(st, f->id, MBX_ESTATE, 0, "reset", "a file is still open for the host");
			return;
		}
	if (kill_everything() < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "reset", "kill every process of the sandbox");
		return;
	}
	forget_procs(st);
	st->execs = 0;
	if (reset_storage(st, f->id) < 0)
		return;
	if (reset_ipc(st, f->id) < 0)
		return;
	if (sethostname(hostname, strlen(hostname)) < 0 || setdomainname("(none)", 6) < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "reset", "set the host name `%s` again", hostname);
		return;
	}
	if (chdir("/") < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "reset", "chdir /");
		return;
	}
	mbx_proto_begin(&st->out, MBX_MSG_OK, f->id);
	mbx_proto_end(&st->out);
}
