/* SPDX-License-Identifier: Apache-2.0 */
/*
 * try-syscall: run inside a sandbox by the integration tests.
 *
 *	try-syscall [--dir DIR] NAME...	try each operation, print "NAME=RESULT" per line
 *	try-syscall --list		print the known names
 *
 * RESULT is "ok", the errno name of the failure ("EPERM"), or the signal
 * that killed the attempt ("SIGSYS"): each attempt runs in its own forked
 * child, so a kill by seccomp is reported and state changes (unshare,
 * PTRACE_TRACEME) do not leak into the next attempt. Exit status 0, or 2 for
 * a usage error.
 *
 * The setid_* and setcap probes work on files below DIR (default /tmp), each
 * on its own name (the probe's name), and leave them there so a test can
 * look at them from the host: an allowed probe leaves a set-id file or a
 * file capability behind, a denied one leaves a plain file or nothing.
 *
 * Every other probe is harmless when it is allowed: it targets a path that does not
 * exist, passes an invalid command, or undoes itself, so an allowed probe may
 * report EINVAL or ENOENT where a denied one reports EPERM. No dependencies
 * beyond libc and the kernel headers: raw syscall() numbers throughout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/personality.h>
#include <linux/reboot.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define NOWHERE "/nonexistent-try-syscall"

/* Each probe returns 0 when the operation succeeded, or the errno value. */
typedef int (*probe_fn)(void);

/* -1 with errno set becomes the errno value; anything else is success. */
static int result(long rc)
{
	return rc < 0 ? (errno ? errno : EIO) : 0;
}

/* Closes an fd the probe got and reports success. */
static int result_fd(long fd)
{
	if (fd < 0)
		return result(fd);
	close((int)fd);
	return 0;
}

static int probe_mount(void)
{
	return result(syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0UL, NULL));
}

static int probe_umount(void)
{
	return result(syscall(SYS_umount2, NOWHERE, 0));
}

static int probe_pivot_root(void)
{
	return result(syscall(SYS_pivot_root, NOWHERE "-new", NOWHERE "-old"));
}

static int probe_chroot(void)
{
	return result(syscall(SYS_chroot, NOWHERE));
}

/* PTRACE_SEIZE goes through the same permission checks as PTRACE_ATTACH but
 * does not stop the tracee; it is detached again when this child exits. */
static int probe_ptrace(void)
{
	return result(syscall(SYS_ptrace, 0x4206L /* PTRACE_SEIZE */, 1L, 0L, 0L));
}

static int probe_ptrace_traceme(void)
{
	return result(syscall(SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, 0L, 0L));
}

static int probe_process_vm_readv(void)
{
	char src = 'x', dst = 0;
	struct iovec local = { &dst, 1 }, remote = { &src, 1 };

	return result(syscall(SYS_process_vm_readv, (long)getpid(), &local, 1UL, &remote, 1UL, 0UL));
}

static int probe_bpf(void)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	return result_fd(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
}

static int probe_keyctl(void)
{
	return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0L));
}

/* The process keyring dies with this child. */
static int probe_add_key(void)
{
	return result(syscall(SYS_add_key, "user", "try-syscall", "x", 1UL,
			      KEY_SPEC_PROCESS_KEYRING));
}

static int probe_userns(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWUSER));
}

static int probe_netns(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWNET));
}

/* Raw clone with fork semantics; the new child exits at once. */
static int probe_clone_newuser(void)
{
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0UL, 0UL, 0UL, 0UL);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return result(pid);
}

static int probe_clone3(void)
{
#ifdef SYS_clone3
	uint64_t args[8];	/* struct clone_args, version 0 */
	long pid;

	memset(args, 0, sizeof(args));
	args[4] = SIGCHLD;	/* exit_signal */
	pid = syscall(SYS_clone3, args, sizeof(args));
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return result(pid);
#else
	return ENOSYS;
#endif
}

static int probe_io_uring(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	return result_fd(syscall(SYS_io_uring_setup, 1U, &p));
}

static int socket_probe(int domain, int type, int protocol)
{
	return result_fd(socket(domain, type | SOCK_CLOEXEC, protocol));
}

static int probe_vsock(void)
{
	return socket_probe(AF_VSOCK, SOCK_STREAM, 0);
}

static int probe_netlink_audit(void)
{
	return socket_probe(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
}

static int probe_netlink_route(void)
{
	return socket_probe(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
}

static int probe_unix_socket(void)
{
	return socket_probe(AF_UNIX, SOCK_STREAM, 0);
}

static int probe_inet(void)
{
	return socket_probe(AF_INET, SOCK_STREAM, 0);
}

static int probe_perf_event_open(void)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.disabled = 1;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	return result_fd(syscall(SYS_perf_event_open, &attr, 0L, -1L, -1L, 0UL));
}

/* User-mode-only first: that is what an unprivileged payload could get. */
static int probe_userfaultfd(void)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	return result_fd(fd);
}

/* An undefined flag: past the capability check the kernel says EINVAL. */
static int probe_kexec_load(void)
{
#ifdef SYS_kexec_load
	return result(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8000UL));
#else
	return ENOSYS;
#endif
}

/* An empty image: past the capability check the kernel says ENOEXEC. */
static int probe_init_module(void)
{
	return result(syscall(SYS_init_module, NULL, 0UL, ""));
}

/* Re-enters this process's own network namespace. */
static int probe_setns(void)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return errno;
	rc = result(syscall(SYS_setns, fd, CLONE_NEWNET));
	close(fd);
	return rc;
}

/* An empty handle: past the permission check the kernel says EINVAL. */
static int probe_open_by_handle_at(void)
{
	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[16];
	} fh;

	memset(&fh, 0, sizeof(fh));
	return result_fd(syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY | O_CLOEXEC));
}

/* Sets the hostname it already has. */
static int probe_sethostname(void)
{
	char name[256];

	if (gethostname(name, sizeof(name)) < 0)
		return errno;
	name[sizeof(name) - 1] = '\0';
	return result(syscall(SYS_sethostname, name, strlen(name)));
}

/* An undefined command: past the capability check the kernel says EINVAL. */
static int probe_reboot(void)
{
	return result(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			      0x4d425821UL, NULL));
}

/* PID 1 ignores SIGKILL from its own namespace (and the host's init from
 * anyone), so this reports reachability without killing anything. */
static int probe_kill1(void)
{
	return result(kill(1, SIGKILL));
}

static int probe_personality(void)
{
	return result(syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC));
}

/* On a pipe, so an allowed call fails with ENOTTY and types nothing. */
static int probe_tiocsti(void)
{
	int fds[2], rc;
	char c = 'x';

	if (pipe(fds) < 0)
		return errno;
	rc = result(ioctl(fds[0], TIOCSTI, &c));
	close(fds[0]);
	close(fds[1]);
	return rc;
}

/* TIOCLINUX on a pipe: an allowed call fails with ENOTTY. */
static int probe_tioclinux(void)
{
	int fds[2], rc;
	char sub = 7; /* TIOCL_GETSHIFTSTATE: reads, changes nothing */

	if (pipe(fds) < 0)
		return errno;
	rc = result(ioctl(fds[0], TIOCLINUX, &sub));
	close(fds[0]);
	close(fds[1]);
	return rc;
}

/* Writes one byte of this process's own memory onto itself. */
static int probe_process_vm_writev(void)
{
	char src = 'x', dst = 0;
	struct iovec local = { &src, 1 }, remote = { &dst, 1 };

	return result(syscall(SYS_process_vm_writev, (long)getpid(), &local, 1UL, &remote, 1UL, 0UL));
}

/* Compares this process's memory with itself. */
static int probe_kcmp(void)
{
	return result(syscall(SYS_kcmp, (long)getpid(), (long)getpid(), 0L /* KCMP_FILE */, 0L, 0L));
}

/* Takes a copy of this process's own stdin through a pidfd. */
static int probe_pidfd_getfd(void)
{
	long pidfd = syscall(SYS_pidfd_open, (long)getpid(), 0L);
	int rc;

	if (pidfd < 0)
		return errno;
	rc = result_fd(syscall(SYS_pidfd_getfd, pidfd, 0L, 0L));
	close((int)pidfd);
	return rc;
}

/* A handle for "/": allowed, the kernel fills it in (or says EOVERFLOW). */
static int probe_name_to_handle_at(void)
{
	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[128];
	} fh;
	int mount_id;

	memset(&fh, 0, sizeof(fh));
	fh.handle_bytes = sizeof(fh.f_handle);
	return result(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh, &mount_id, 0));
}

/* The kernel crypto API, a regular source of kernel bugs. */
static int probe_af_alg(void)
{
	return socket_probe(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
}

/* Raw packets: also needs CAP_NET_RAW, which the payload lacks. */
static int probe_packet(void)
{
	return socket_probe(17 /* AF_PACKET */, SOCK_RAW, 0);
}

/* socketpair in a family other than AF_UNIX. */
static int probe_socketpair_alg(void)
{
	int sv[2];

	if (socketpair(38 /* AF_ALG */, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return errno;
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/* The new mount API: a filesystem context for cgroup2. */
static int probe_fsopen(void)
{
	return result_fd(syscall(SYS_fsopen, "cgroup2", 1UL /* FSOPEN_CLOEXEC */));
}

/* A detached copy of the root mount. */
static int probe_open_tree(void)
{
	return result_fd(syscall(SYS_open_tree, AT_FDCWD, "/", 1UL /* OPEN_TREE_CLONE */ | O_CLOEXEC));
}

/* Mounts the cgroup v2 hierarchy on a fresh directory in /tmp, and undoes
 * it at once when that worked. */
static int probe_mount_cgroup(void)
{
	char dir[] = "/tmp/try-syscall-cgXXXXXX";
	int rc;

	if (mkdtemp(dir) == NULL)
		return errno;
	rc = result(syscall(SYS_mount, "none", dir, "cgroup2", 0UL, NULL));
	if (rc == 0)
		syscall(SYS_umount2, dir, 2 /* MNT_DETACH */);
	rmdir(dir);
	return rc;
}

/* A new mount namespace: the payload reshaping its own view. */
static int probe_unshare_mount(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWNS));
}

/* A new cgroup namespace. */
static int probe_unshare_cgroup(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWCGROUP));
}

/* getpid through the x32 ABI; ENOSYS where the kernel lacks x32. */
static int probe_x32(void)
{
#if defined(__x86_64__)
	return result(syscall(0x40000000L | SYS_getpid));
#else
	return ENOSYS;
#endif
}

/* ---- set-id modes and file capabilities, below --dir ---- */

static const char *probe_dir = "/tmp";

/* DIR/name, removed first so a rerun starts clean. */
static const char *fresh_path(const char *name)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", probe_dir, name);
	unlink(path);
	rmdir(path);
	return path;
}

/* DIR/name as an empty 0644 file. */
static const char *plain_file(const char *name)
{
	const char *p = fresh_path(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return NULL;
	close(fd);
	return p;
}

static int probe_setid_chmod(void)
{
	const char *p = plain_file("setid_chmod");

	return p ? result(syscall(SYS_chmod, p, 04755UL)) : errno;
}

static int probe_setid_fchmod(void)
{
	const char *p = plain_file("setid_fchmod");
	int fd, rc;

	if (p == NULL || (fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	rc = result(syscall(SYS_fchmod, fd, 02755UL));
	close(fd);
	return rc;
}

static int probe_setid_fchmodat(void)
{
	const char *p = plain_file("setid_fchmodat");

	return p ? result(syscall(SYS_fchmodat, AT_FDCWD, p, 06755UL)) : errno;
}

/* fchmodat2 (Linux 6.6) by number: libc may not know it. */
static int probe_setid_fchmodat2(void)
{
	const char *p = plain_file("setid_fchmodat2");

	return p ? result(syscall(452, AT_FDCWD, p, 04755UL, 0)) : errno;
}

static int probe_setid_open(void)
{
	const char *p = fresh_path("setid_open");
#ifdef SYS_open
	return result_fd(syscall(SYS_open, p, O_WRONLY | O_CREAT | O_CLOEXEC, 04755UL));
#else
	return result_fd(syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_CREAT | O_CLOEXEC, 04755UL));
#endif
}

static int probe_setid_openat(void)
{
	return result_fd(syscall(SYS_openat, AT_FDCWD, fresh_path("setid_openat"),
				 O_WRONLY | O_CREAT | O_CLOEXEC, 02755UL));
}

static int probe_setid_creat(void)
{
#ifdef SYS_creat
	return result_fd(syscall(SYS_creat, fresh_path("setid_creat"), 04755UL));
#else
	return ENOSYS;
#endif
}

static int probe_setid_mkdir(void)
{
	return result(syscall(SYS_mkdirat, AT_FDCWD, fresh_path("setid_mkdir"), 02755UL));
}

static int probe_setid_mknod(void)
{
	return result(syscall(SYS_mknodat, AT_FDCWD, fresh_path("setid_mknod"),
			      (unsigned long)(S_IFREG | 04755), 0UL));
}

/* struct open_how { flags, mode, resolve }: the mode is out of BPF's reach. */
static int probe_setid_openat2(void)
{
#ifdef SYS_openat2
	uint64_t how[3] = { O_WRONLY | O_CREAT | O_CLOEXEC, 04755, 0 };

	return result_fd(syscall(SYS_openat2, AT_FDCWD, fresh_path("setid_openat2"), how, sizeof(how)));
#else
	return ENOSYS;
#endif
}

/* A version 2 file capability granting CAP_SETUID (7) on exec. */
static int probe_setcap(void)
{
	const char *p = plain_file("setcap");
	uint32_t cap[5] = { 0x02000000U | 1U /* VFS_CAP_REVISION_2 | EFFECTIVE */, 1U << 7, 0, 0, 0 };

	if (p == NULL)
		return errno;
	return result(setxattr(p, "security.capability", cap, sizeof(cap), 0));
}

static int probe_mbind(void)
{
	return result(syscall(SYS_mbind, NULL, 0UL, 0L /* MPOL_DEFAULT */, NULL, 0UL, 0U));
}

static int probe_set_mempolicy(void)
{
	return result(syscall(SYS_set_mempolicy, 0L /* MPOL_DEFAULT */, NULL, 0UL));
}

static int probe_move_pages(void)
{
	return result(syscall(SYS_move_pages, 0L, 0UL, NULL, NULL, NULL, 0));
}

static int probe_migrate_pages(void)
{
	unsigned long mask = 1;

	return result(syscall(SYS_migrate_pages, 0L, 8 * sizeof(mask), &mask, &mask));
}

/* On a pipe, so an allowed call fails with ENOTTY. */
static int probe_tiocsetd(void)
{
	int fds[2], rc, ldisc = 0;

	if (pipe(fds) < 0)
		return errno;
	rc = result(ioctl(fds[0], TIOCSETD, &ldisc));
	close(fds[0]);
	close(fds[1]);
	return rc;
}

static const struct probe {
	const char *name;
	probe_fn fn;
} probes[] = {
	{ "mount", probe_mount },
	{ "umount", probe_umount },
	{ "pivot_root", probe_pivot_root },
	{ "chroot", probe_chroot },
	{ "ptrace", probe_ptrace },
	{ "ptrace_traceme", probe_ptrace_traceme },
	{ "process_vm_readv", probe_process_vm_readv },
	{ "bpf", probe_bpf },
	{ "keyctl", probe_keyctl },
	{ "add_key", probe_add_key },
	{ "userns", probe_userns },
	{ "clone_newuser", probe_clone_newuser },
	{ "clone3", probe_clone3 },
	{ "netns", probe_netns },
	{ "io_uring", probe_io_uring },
	{ "vsock", probe_vsock },
	{ "netlink_audit", probe_netlink_audit },
	{ "netlink_route", probe_netlink_route },
	{ "perf_event_open", probe_perf_event_open },
	{ "userfaultfd", probe_userfaultfd },
	{ "kexec_load", probe_kexec_load },
	{ "init_module", probe_init_module },
	{ "setns", probe_setns },
	{ "open_by_handle_at", probe_open_by_handle_at },
	{ "sethostname", probe_sethostname },
	{ "reboot", probe_reboot },
	{ "kill1", probe_kill1 },
	{ "personality", probe_personality },
	{ "tiocsti", probe_tiocsti },
	{ "x32", probe_x32 },
	{ "tioclinux", probe_tioclinux },
	{ "process_vm_writev", probe_process_vm_writev },
	{ "kcmp", probe_kcmp },
	{ "pidfd_getfd", probe_pidfd_getfd },
	{ "name_to_handle_at", probe_name_to_handle_at },
	{ "af_alg", probe_af_alg },
	{ "packet", probe_packet },
	{ "socketpair_alg", probe_socketpair_alg },
	{ "fsopen", probe_fsopen },
	{ "open_tree", probe_open_tree },
	{ "mount_cgroup", probe_mount_cgroup },
	{ "unshare_mount", probe_unshare_mount },
	{ "unshare_cgroup", probe_unshare_cgroup },
	{ "unix_socket", probe_unix_socket },
	{ "inet", probe_inet },
	{ "setid_chmod", probe_setid_chmod },
	{ "setid_fchmod", probe_setid_fchmod },
	{ "setid_fchmodat", probe_setid_fchmodat },
	{ "setid_fchmodat2", probe_setid_fchmodat2 },
	{ "setid_open", probe_setid_open },
	{ "setid_openat", probe_setid_openat },
	{ "setid_creat", probe_setid_creat },
	{ "setid_mkdir", probe_setid_mkdir },
	{ "setid_mknod", probe_setid_mknod },
	{ "setid_openat2", probe_setid_openat2 },
	{ "setcap", probe_setcap },
	{ "mbind", probe_mbind },
	{ "set_mempolicy", probe_set_mempolicy },
	{ "move_pages", probe_move_pages },
	{ "migrate_pages", probe_migrate_pages },
	{ "tiocsetd", probe_tiocsetd },
};

#define N_PROBES (sizeof(probes) / sizeof(probes[0]))

static const struct {
	int num;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" },
	{ EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" }, { ENOEXEC, "ENOEXEC" }, { EBADF, "EBADF" },
	{ ECHILD, "ECHILD" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
	{ EEXIST, "EEXIST" }, { ENODEV, "ENODEV" }, { ENOTDIR, "ENOTDIR" },
	{ EISDIR, "EISDIR" }, { EINVAL, "EINVAL" }, { ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" }, { ENOSPC, "ENOSPC" },
	{ EROFS, "EROFS" }, { ERANGE, "ERANGE" }, { ENOSYS, "ENOSYS" },
	{ ENOKEY, "ENOKEY" }, { EKEYREVOKED, "EKEYREVOKED" },
	{ EKEYREJECTED, "EKEYREJECTED" }, { EDQUOT, "EDQUOT" },
	{ EUSERS, "EUSERS" }, { ENOTSOCK, "ENOTSOCK" },
	{ EPROTONOSUPPORT, "EPROTONOSUPPORT" },
	{ ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT" }, { EOPNOTSUPP, "EOPNOTSUPP" },
	{ EPFNOSUPPORT, "EPFNOSUPPORT" }, { EAFNOSUPPORT, "EAFNOSUPPORT" },
	{ EADDRNOTAVAIL, "EADDRNOTAVAIL" }, { ENETUNREACH, "ENETUNREACH" },
	{ ENOPROTOOPT, "ENOPROTOOPT" }, { ENOMEDIUM, "ENOMEDIUM" },
	{ EOVERFLOW, "EOVERFLOW" }, { ELOOP, "ELOOP" }, { EXDEV, "EXDEV" },
};

static const struct {
	int num;
	const char *name;
} signal_names[] = {
	{ SIGSYS, "SIGSYS" }, { SIGKILL, "SIGKILL" }, { SIGSEGV, "SIGSEGV" },
	{ SIGBUS, "SIGBUS" }, { SIGILL, "SIGILL" }, { SIGABRT, "SIGABRT" },
	{ SIGTRAP, "SIGTRAP" }, { SIGTERM, "SIGTERM" }, { SIGXCPU, "SIGXCPU" },
};

static void print_errno(const char *name, int err)
{
	size_t i;

	if (err == 0) {
		printf("%s=ok\n", name);
		return;
	}
	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
		if (errno_names[i].num == err) {
			printf("%s=%s\n", name, errno_names[i].name);
			return;
		}
	}
	printf("%s=E%d\n", name, err);
}

static void print_signal(const char *name, int sig)
{
	size_t i;

	for (i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (signal_names[i].num == sig) {
			printf("%s=%s\n", name, signal_names[i].name);
			return;
		}
	}
	printf("%s=SIG%d\n", name, sig);
}

static const struct probe *find_probe(const char *name)
{
	size_t i;

	for (i = 0; i < N_PROBES; i++)
		if (strcmp(probes[i].name, name) == 0)
			return &probes[i];
	return NULL;
}

/*
 * Runs one probe in a forked child, whose exit status carries the errno
 * value, and prints its line. Without fork it runs in this process.
 */
static void run_probe(const struct probe *p)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		print_errno(p->name, p->fn());
		return;
	}
	if (pid == 0) {
		int err = p->fn();

		_exit(err > 255 ? 255 : err);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			printf("%s=wait:%d\n", p->name, errno);
			return;
		}
	}
	if (WIFSIGNALED(status))
		print_signal(p->name, WTERMSIG(status));
	else
		print_errno(p->name, WEXITSTATUS(status));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: try-syscall [--dir DIR] NAME...   (try-syscall --list for the names)\n");
}

int main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		size_t k;

		for (k = 0; k < N_PROBES; k++)
			printf("%s\n", probes[k].name);
		return 0;
	}
	i = 1;
	if (strcmp(argv[1], "--dir") == 0) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		probe_dir = argv[2];
		i = 3;
	}
	int first = i;

	for (; i < argc; i++) {
		if (find_probe(argv[i]) == NULL) {
			fprintf(stderr, "try-syscall: unknown name `%s`\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	for (i = first; i < argc; i++)
		run_probe(find_probe(argv[i]));
	fflush(stdout);
	return 0;
}
