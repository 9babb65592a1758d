/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seccomp policy, end to end: build the filter for a trust level, install
 * it in a forked child (no_new_privs is enough, no privilege needed), try one
 * operation there and report {return value, errno} to the parent over a pipe.
 * A child killed by the filter reports nothing; the parent sees the signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/personality.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tap.h"
#include "error-internal.h"
#include "backend/linux/seccomp.h"
#include "platform/linux/seccomp-kill.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* What the child reports. */
struct report {
	int installed;	/* 0: installing the filter failed (err holds errno) */
	long ret;
	int err;
};

struct outcome {
	int reported;	/* the child wrote a report */
	struct report r;
	int signal;	/* the signal that ended the child, or 0 */
	int status;	/* its exit status otherwise */
};

typedef long (*op_fn)(long arg);

static int under_valgrind(void);

/*
 * Runs op(arg) in a child confined by the filter for `trust` and fills *o.
 * Returns 0, or -1 (after printing a diagnostic) when the harness itself
 * failed: the filter could not be built, fork or pipe failed.
 */
static int run_program(uint8_t *filter, size_t len, op_fn op, long arg, struct outcome *o);

static int run_confined(mbx_trust_t trust, op_fn op, long arg, struct outcome *o)
{
	const uint8_t *embedded;
	uint8_t *filter;
	size_t len = 0;

	/* The behaviour checked is that of the program sandboxes use: the one
	 * embedded at build time (seccomp/embedded-matches checks it equals a
	 * fresh build), with the kill action the agent picks for this kernel. */
	if (mbx__seccomp_program(trust, &embedded, &len) < 0 || (filter = malloc(len)) == NULL) {
		printf("#   no embedded seccomp program for trust %u\n", (unsigned int)trust);
		return -1;
	}
	memcpy(filter, embedded, len);
	mbx_seccomp_set_kill_action(filter, len, mbx_seccomp_host_kill_action());
	return run_program(filter, len, op, arg, o);
}

/* run_confined for a given program; takes ownership of `filter`. */
static int run_program(uint8_t *filter, size_t len, op_fn op, long arg, struct outcome *o)
{
	struct sock_fprog prog;
	struct report r;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	prog.len = (unsigned short)(len / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)filter;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(filter);
		return -1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		free(filter);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		memset(&r, 0, sizeof(r));
		close(fds[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
			r.err = errno;
			(void)!write(fds[1], &r, sizeof(r));
			_exit(1);
		}
		r.installed = 1;
		errno = 0;
		r.ret = op(arg);
		r.err = r.ret < 0 ? errno : 0;
		(void)!write(fds[1], &r, sizeof(r));
		_exit(0);
	}
	free(filter);
	close(fds[1]);
	do
		n = read(fds[0], &o->r, sizeof(o->r));
	while (n < 0 && errno == EINTR);
	o->reported = n == (ssize_t)sizeof(o->r);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(status))
		o->signal = WTERMSIG(status);
	else
		o->status = WEXITSTATUS(status);
	return 0;
}

static void describe(const char *what, const struct outcome *o)
{
	if (o->signal)
		printf("#   %s: child killed by signal %d\n", what, o->signal);
	else if (!o->reported)
		printf("#   %s: child exited %d without a report\n", what, o->status);
	else if (!o->r.installed)
		printf("#   %s: installing the filter failed: %s\n", what, strerror(o->r.err));
	else
		printf("#   %s: returned %ld, errno %d (%s)\n", what, o->r.ret, o->r.err,
		       o->r.err ? strerror(o->r.err) : "none");
}

/* The operation ran under the filter and failed with `expect`. */
static void expect_errno(const char *what, mbx_trust_t trust, op_fn op, long arg, int expect)
{
	struct outcome o;
	int good;

	if (run_confined(trust, op, arg, &o) < 0) {
		TAP_CHECK(!"harness failed");
		return;
	}
	good = o.reported && o.r.installed && o.r.ret == -1 && o.r.err == expect;
	if (!good) {
		describe(what, &o);
		printf("#   %s: expected errno %d (%s)\n", what, expect, strerror(expect));
	}
	TAP_CHECK(good);
}

/* The operation ran under the filter and succeeded. */
static void expect_ok(const char *what, mbx_trust_t trust, op_fn op, long arg)
{
	struct outcome o;
	int good;

	if (run_confined(trust, op, arg, &o) < 0) {
		TAP_CHECK(!"harness failed");
		return;
	}
	good = o.reported && o.r.installed && o.r.ret >= 0;
	if (!good) {
		describe(what, &o);
		printf("#   %s: expected success\n", what);
	}
	TAP_CHECK(good);
}

/* The filter killed the child with `sig` before it could report. */
static void expect_signal(const char *what, mbx_trust_t trust, op_fn op, long arg, int sig)
{
	struct outcome o;
	int good;

	if (run_confined(trust, op, arg, &o) < 0) {
		TAP_CHECK(!"harness failed");
		return;
	}
	good = o.signal == sig && !o.reported;
	if (!good) {
		describe(what, &o);
		printf("#   %s: expected death by signal %d\n", what, sig);
	}
	TAP_CHECK(good);
}

/* ---- operations, run in the confined child; -1 and errno on failure ---- */

static long op_getpid(long arg)
{
	return syscall(SYS_getpid);
}

/* The target does not exist, so without the filter this fails with ENOENT
 * (path lookup precedes the capability check) and mounts nothing. */
static long op_mount(long arg)
{
	return mount("none", "/nonexistent/mbx-test-seccomp", "tmpfs", 0, NULL);
}

static long op_unshare(long arg)
{
	return unshare((int)arg);
}

/* Raw clone with fork semantics; a child that gets through exits at once. */
static long op_clone(long arg)
{
	long pid = syscall(SYS_clone, (unsigned long)arg, 0UL, 0UL, 0UL, 0UL);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

/* A size of 0 makes the kernel answer EINVAL; the filter answers first. */
static long op_clone3(long arg)
{
	return syscall(SYS_clone3, NULL, 0UL);
}

static long op_fork(long arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(7);
	if (pid < 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 7) {
		errno = ECHILD;
		return -1;
	}
	return 0;
}

static int thread_token;

static void *thread_main(void *p)
{
	return p;
}

/* glibc tries clone3 first and must fall back to clone on ENOSYS. */
static long op_thread(long arg)
{
	pthread_t t;
	void *res = NULL;
	int rc = pthread_create(&t, NULL, thread_main, &thread_token);

	if (rc != 0) {
		errno = rc;
		return -1;
	}
	pthread_join(t, &res);
	return res == &thread_token ? 0 : -1;
}

/* arg: domain in the low half, the high half passed through as garbage. */
static long op_socket(long arg)
{
	long fd = syscall(SYS_socket, (unsigned long)arg, (unsigned long)SOCK_STREAM, 0UL);

	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long op_netlink(long arg)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (int)arg);

	if (fd >= 0)
		close(fd);
	return fd;
}

static long op_socketpair(long arg)
{
	int sv[2];

	if (socketpair((int)arg, SOCK_STREAM, 0, sv) < 0)
		return -1;
	close(sv[0]);
	close(sv[1]);
	return 0;
}

static long op_ptrace(long arg)
{
	return syscall(SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, 0L, 0L);
}

static long op_bpf(long arg)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long op_keyctl(long arg)
{
	return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0L);
}

static long op_io_uring(long arg)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(SYS_io_uring_setup, 1U, &p);
	if (fd >= 0)
		close((int)fd);
	return fd;
}

/* On a pipe, so without the filter the kernel says ENOTTY and no terminal
 * ever sees a byte. arg: the high half of the command. */
static long op_tiocsti(long arg)
{
	int fds[2];
	char c = 'x';
	long rc;

	if (pipe(fds) < 0)
		return -1;
	rc = syscall(SYS_ioctl, fds[0], ((unsigned long)arg << 32) | TIOCSTI, &c);
	close(fds[0]);
	close(fds[1]);
	return rc;
}

static long op_personality(long arg)
{
	return syscall(SYS_personality, (unsigned long)arg);
}

#if defined(__x86_64__)
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
static long op_x32_getpid(long arg)
{
	return syscall(__X32_SYSCALL_BIT | SYS_getpid);
}

/* getpid through the i386 entry point (its number there is 20). */
static long op_int80_getpid(long arg)
{
	long ret = 20;

	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	return ret;
}
#endif

/* ---- NUMA policy, line discipline ---- */

static long op_set_mempolicy(long arg)
{
	return syscall(SYS_set_mempolicy, 0L /* MPOL_DEFAULT */, NULL, 0UL);
}

static long op_mbind(long arg)
{
	return syscall(SYS_mbind, NULL, 0UL, 0L /* MPOL_DEFAULT */, NULL, 0UL, 0U);
}

static long op_move_pages(long arg)
{
	return syscall(SYS_move_pages, 0L, 0UL, NULL, NULL, NULL, 0);
}

static long op_migrate_pages(long arg)
{
	unsigned long mask = 1;

	return syscall(SYS_migrate_pages, 0L, 8 * sizeof(mask), &mask, &mask);
}

/* On a pipe: without the filter the kernel says ENOTTY. */
static long op_tiocsetd(long arg)
{
	int fds[2], ldisc = 0;
	long rc;

	if (pipe(fds) < 0)
		return -1;
	rc = syscall(SYS_ioctl, fds[0], ((unsigned long)arg << 32) | TIOCSETD, &ldisc);
	close(fds[0]);
	close(fds[1]);
	return rc;
}

/* ---- set-id modes: on files below a scratch directory ---- */

static char scratch[64];

/* A fresh path below the scratch directory for each call. */
static const char *scratch_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	return path;
}

static const char *scratch_file(void)
{
	const char *p = scratch_path("file");
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0)
		close(fd);
	return p;
}

static long op_chmod(long arg)
{
	return syscall(SYS_chmod, scratch_file(), (unsigned long)arg);
}

static long op_fchmod(long arg)
{
	int fd = open(scratch_file(), O_RDONLY | O_CLOEXEC);
	long rc;

	if (fd < 0)
		return -1;
	rc = syscall(SYS_fchmod, fd, (unsigned long)arg);
	close(fd);
	return rc;
}

static long op_fchmodat(long arg)
{
	return syscall(SYS_fchmodat, AT_FDCWD, scratch_file(), (unsigned long)arg);
}

static long op_fchmodat2(long arg)
{
	return syscall(452 /* fchmodat2 */, AT_FDCWD, scratch_file(), (unsigned long)arg, 0);
}

static long op_open_creat(long arg)
{
	long fd = syscall(SYS_open, scratch_path("new"), O_WRONLY | O_CREAT | O_CLOEXEC, (unsigned long)arg);

	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long op_openat_creat(long arg)
{
	long fd = syscall(SYS_openat, AT_FDCWD, scratch_path("new"), O_WRONLY | O_CREAT | O_CLOEXEC,
			  (unsigned long)arg);

	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long op_creat(long arg)
{
	long fd = syscall(SYS_creat, scratch_path("new"), (unsigned long)arg);

	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long op_mkdir(long arg)
{
	return syscall(SYS_mkdirat, AT_FDCWD, scratch_path("dir"), (unsigned long)arg);
}

static long op_mknod(long arg)
{
	return syscall(SYS_mknodat, AT_FDCWD, scratch_path("node"), (unsigned long)(S_IFREG | arg), 0UL);
}

/* struct open_how with a set-id mode: the filter cannot see it. */
static long op_openat2(long arg)
{
	uint64_t how[3] = { O_WRONLY | O_CREAT | O_CLOEXEC, (uint64_t)arg, 0 };
	long fd = syscall(SYS_openat2, AT_FDCWD, scratch_path("new"), how, sizeof(how));

	if (fd >= 0)
		close((int)fd);
	return fd;
}

/* ---- cases ---- */

static void test_filter_shape(void)
{
	mbx_trust_t levels[] = { MBX_TRUST_TRUSTED, MBX_TRUST_SEMI_TRUSTED, MBX_TRUST_UNTRUSTED };
	uint8_t *semi = NULL, *untrusted = NULL;
	size_t semi_len = 0, untrusted_len = 0;
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		mbx_error *err = NULL;
		uint8_t *f = NULL;
		size_t len = 0;

		TAP_CHECK_INT(mbx__seccomp_build(levels[i], &f, &len, &err), MBX_OK);
		if (err != NULL)
			printf("#   %s\n", mbx_error_message(err));
		TAP_CHECK(err == NULL);
		mbx_error_free(err);
		TAP_CHECK(f != NULL);
		TAP_CHECK(len > 0);
		TAP_CHECK_INT(len % sizeof(struct sock_filter), 0);
		TAP_CHECK(len / sizeof(struct sock_filter) <= BPF_MAXINSNS);
		if (levels[i] == MBX_TRUST_SEMI_TRUSTED) {
			semi = f;
			semi_len = len;
		} else if (levels[i] == MBX_TRUST_UNTRUSTED) {
			untrusted = f;
			untrusted_len = len;
		} else {
			free(f);
		}
	}
	TAP_CHECK(semi && untrusted &&
		  (semi_len != untrusted_len || memcmp(semi, untrusted, semi_len) != 0));
	free(semi);
	free(untrusted);
}

static void test_invalid_trust(void)
{
	mbx_error *err = NULL;
	uint8_t *f = (uint8_t *)&err;
	size_t len = 99;

	TAP_CHECK_INT(mbx__seccomp_build((mbx_trust_t)7, &f, &len, &err), MBX_EINVAL);
	TAP_CHECK(f == NULL);
	TAP_CHECK_INT(len, 0);
	TAP_CHECK(err != NULL);
	if (err)
		TAP_CHECK_INT(mbx_error_code(err), MBX_EINVAL);
	mbx_error_free(err);
}

static void test_mount(void)
{
	expect_errno("mount (semi)", MBX_TRUST_SEMI_TRUSTED, op_mount, 0, EPERM);
	expect_errno("mount (trusted)", MBX_TRUST_TRUSTED, op_mount, 0, EPERM);
	expect_errno("mount (untrusted)", MBX_TRUST_UNTRUSTED, op_mount, 0, EPERM);
}

static void test_unshare(void)
{
	expect_errno("unshare(CLONE_NEWUSER)", MBX_TRUST_SEMI_TRUSTED, op_unshare, CLONE_NEWUSER, EPERM);
	expect_errno("unshare(CLONE_FILES)", MBX_TRUST_SEMI_TRUSTED, op_unshare, CLONE_FILES, EPERM);
}

static void test_clone_newns(void)
{
	expect_errno("clone(CLONE_NEWNS)", MBX_TRUST_SEMI_TRUSTED, op_clone, CLONE_NEWNS | SIGCHLD, EPERM);
}

static void test_clone_ns_flags(void)
{
	static const long flags[] = {
		CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
		CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
		CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS,
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "clone(0x%lx)", flags[i]);
		expect_errno(what, MBX_TRUST_SEMI_TRUSTED, op_clone, flags[i] | SIGCHLD, EPERM);
	}
	expect_ok("clone(SIGCHLD)", MBX_TRUST_SEMI_TRUSTED, op_clone, SIGCHLD);
}

static void test_clone3(void)
{
	expect_errno("clone3", MBX_TRUST_SEMI_TRUSTED, op_clone3, 0, ENOSYS);
	expect_errno("clone3 (untrusted)", MBX_TRUST_UNTRUSTED, op_clone3, 0, ENOSYS);
}

static void test_socket_vsock(void)
{
	expect_errno("socket(AF_VSOCK)", MBX_TRUST_SEMI_TRUSTED, op_socket, AF_VSOCK, EPERM);
	/* The kernel reads the family as an int: garbage above bit 31 must not
	 * smuggle AF_VSOCK past a 64-bit comparison. */
	expect_errno("socket((1<<32)|AF_VSOCK)", MBX_TRUST_SEMI_TRUSTED, op_socket,
		     (long)((1UL << 32) | AF_VSOCK), EPERM);
	expect_errno("socket(AF_PACKET)", MBX_TRUST_SEMI_TRUSTED, op_socket, AF_PACKET, EPERM);
	expect_errno("socket(200)", MBX_TRUST_SEMI_TRUSTED, op_socket, 200, EPERM);
	expect_errno("socketpair(AF_VSOCK)", MBX_TRUST_SEMI_TRUSTED, op_socketpair, AF_VSOCK, EPERM);
}

static void test_netlink_route(void)
{
	expect_ok("socket(AF_NETLINK, NETLINK_ROUTE)", MBX_TRUST_SEMI_TRUSTED, op_netlink, NETLINK_ROUTE);
	expect_ok("socket(AF_NETLINK, NETLINK_ROUTE) (untrusted)", MBX_TRUST_UNTRUSTED, op_netlink,
		  NETLINK_ROUTE);
}

static void test_netlink_audit(void)
{
	expect_errno("socket(AF_NETLINK, NETLINK_AUDIT)", MBX_TRUST_SEMI_TRUSTED, op_netlink,
		     NETLINK_AUDIT, EPERM);
	expect_errno("socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", MBX_TRUST_SEMI_TRUSTED, op_netlink,
		     NETLINK_KOBJECT_UEVENT, EPERM);
}

static void test_socket_inet(void)
{
	expect_ok("socket(AF_INET)", MBX_TRUST_SEMI_TRUSTED, op_socket, AF_INET);
	expect_ok("socket(AF_INET) (untrusted)", MBX_TRUST_UNTRUSTED, op_socket, AF_INET);
	expect_ok("socket(AF_UNIX)", MBX_TRUST_SEMI_TRUSTED, op_socket, AF_UNIX);
	expect_ok("socketpair(AF_UNIX)", MBX_TRUST_SEMI_TRUSTED, op_socketpair, AF_UNIX);
}

static void test_ptrace(void)
{
	expect_errno("ptrace(PTRACE_TRACEME)", MBX_TRUST_SEMI_TRUSTED, op_ptrace, 0, EPERM);
}

static void test_bpf(void)
{
	expect_errno("bpf(BPF_MAP_CREATE)", MBX_TRUST_SEMI_TRUSTED, op_bpf, 0, EPERM);
}

static void test_keyctl(void)
{
	expect_errno("keyctl", MBX_TRUST_SEMI_TRUSTED, op_keyctl, 0, EPERM);
}

static void test_io_uring(void)
{
	expect_errno("io_uring_setup", MBX_TRUST_SEMI_TRUSTED, op_io_uring, 0, EPERM);
}

static void test_tiocsti(void)
{
	expect_errno("ioctl(TIOCSTI)", MBX_TRUST_SEMI_TRUSTED, op_tiocsti, 0, EPERM);
	expect_errno("ioctl((1<<32)|TIOCSTI)", MBX_TRUST_SEMI_TRUSTED, op_tiocsti, 1, EPERM);
}

static void test_personality(void)
{
	expect_ok("personality(0xffffffff)", MBX_TRUST_SEMI_TRUSTED, op_personality, 0xffffffffL);
	expect_ok("personality(PER_LINUX)", MBX_TRUST_SEMI_TRUSTED, op_personality, PER_LINUX);
	expect_errno("personality(READ_IMPLIES_EXEC)", MBX_TRUST_SEMI_TRUSTED, op_personality,
		     READ_IMPLIES_EXEC, EPERM);
	expect_errno("personality(0xfffffffe)", MBX_TRUST_SEMI_TRUSTED, op_personality, 0xfffffffeL, EPERM);
	expect_errno("personality(0x80000000)", MBX_TRUST_SEMI_TRUSTED, op_personality, 0x80000000L, EPERM);
	expect_errno("personality((1<<32)|ADDR_NO_RANDOMIZE)", MBX_TRUST_SEMI_TRUSTED, op_personality,
		     (long)((1UL << 32) | ADDR_NO_RANDOMIZE), EPERM);
	expect_errno("personality(0xffffffff) (untrusted)", MBX_TRUST_UNTRUSTED, op_personality,
		     0xffffffffL, EPERM);
}

static void test_getpid(void)
{
	expect_ok("getpid", MBX_TRUST_SEMI_TRUSTED, op_getpid, 0);
	expect_ok("getpid (untrusted)", MBX_TRUST_UNTRUSTED, op_getpid, 0);
}

static void test_fork(void)
{
	expect_ok("fork", MBX_TRUST_SEMI_TRUSTED, op_fork, 0);
	expect_ok("fork (untrusted)", MBX_TRUST_UNTRUSTED, op_fork, 0);
	expect_ok("pthread_create", MBX_TRUST_SEMI_TRUSTED, op_thread, 0);
}

/* valgrind runs system calls itself: it answers x32 numbers with ENOSYS
 * before the kernel (and so seccomp) sees them. */
static int under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL;
}

static void test_x32(void)
{
#if defined(__x86_64__)
	if (under_valgrind())
		TAP_NOT_APPLICABLE("valgrind emulates system calls");
	/* seccomp sees the number before the kernel decides whether x32 is
	 * enabled, so this holds with or without x32 support. */
	expect_signal("x32 getpid", MBX_TRUST_SEMI_TRUSTED, op_x32_getpid, 0, SIGSYS);
	expect_signal("x32 getpid (untrusted)", MBX_TRUST_UNTRUSTED, op_x32_getpid, 0, SIGSYS);
#else
	TAP_NOT_APPLICABLE("x32 exists on x86_64 only");
#endif
}

static void test_int80(void)
{
#if defined(__x86_64__)
	pid_t pid;
	int status;

	if (under_valgrind())
		TAP_NOT_APPLICABLE("valgrind emulates system calls");
	/* Without ia32 emulation int 0x80 faults before seccomp sees it. */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(op_int80_getpid(0) == (long)getpid() ? 0 : 1);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		TAP_SKIP("the kernel runs no i386 system calls");
	expect_signal("int 0x80 getpid", MBX_TRUST_SEMI_TRUSTED, op_int80_getpid, 0, SIGSYS);
#else
	TAP_NOT_APPLICABLE("int 0x80 is an x86_64 test");
#endif
}

static void test_numa(void)
{
	expect_errno("set_mempolicy", MBX_TRUST_SEMI_TRUSTED, op_set_mempolicy, 0, EPERM);
	expect_errno("mbind", MBX_TRUST_SEMI_TRUSTED, op_mbind, 0, EPERM);
	expect_errno("move_pages", MBX_TRUST_SEMI_TRUSTED, op_move_pages, 0, EPERM);
	expect_errno("set_mempolicy (untrusted)", MBX_TRUST_UNTRUSTED, op_set_mempolicy, 0, EPERM);
	/* valgrind answers migrate_pages itself (ENOSYS), before seccomp. */
	if (!under_valgrind()) {
		expect_errno("migrate_pages", MBX_TRUST_SEMI_TRUSTED, op_migrate_pages, 0, EPERM);
		expect_errno("migrate_pages (trusted)", MBX_TRUST_TRUSTED, op_migrate_pages, 0, EPERM);
	}
}

static void test_tiocsetd(void)
{
	expect_errno("ioctl(TIOCSETD)", MBX_TRUST_SEMI_TRUSTED, op_tiocsetd, 0, EPERM);
	expect_errno("ioctl((1<<32)|TIOCSETD)", MBX_TRUST_SEMI_TRUSTED, op_tiocsetd, 1, EPERM);
	expect_errno("ioctl(TIOCSETD) (untrusted)", MBX_TRUST_UNTRUSTED, op_tiocsetd, 0, EPERM);
}

static void test_setid_modes(void)
{
	static const struct {
		const char *name;
		op_fn op;
	} calls[] = {
		{ "chmod", op_chmod }, { "fchmod", op_fchmod }, { "fchmodat", op_fchmodat },
		{ "fchmodat2", op_fchmodat2 }, { "open(O_CREAT)", op_open_creat },
		{ "openat(O_CREAT)", op_openat_creat }, { "creat", op_creat },
		{ "mkdirat", op_mkdir }, { "mknodat", op_mknod },
	};
	static const long modes[] = { 04755, 02755, 06755, 04000, (long)((1UL << 32) | 02755) };
	char what[96];

	snprintf(scratch, sizeof(scratch), "/tmp/mbx-test-seccomp-XXXXXX");
	if (mkdtemp(scratch) == NULL) {
		TAP_CHECK(!"mkdtemp");
		return;
	}
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		/* valgrind answers fchmodat2 itself (ENOSYS), before seccomp. */
		if (calls[i].op == op_fchmodat2 && under_valgrind())
			continue;
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			snprintf(what, sizeof(what), "%s(0%lo)", calls[i].name, (unsigned long)modes[m]);
			expect_errno(what, MBX_TRUST_SEMI_TRUSTED, calls[i].op, modes[m], EPERM);
			unlink(scratch_path("new"));
			unlink(scratch_path("node"));
			rmdir(scratch_path("dir"));
		}
		snprintf(what, sizeof(what), "%s(0%lo) (untrusted)", calls[i].name, 04755UL);
		expect_errno(what, MBX_TRUST_UNTRUSTED, calls[i].op, 04755, EPERM);
		/* Plain modes (and the sticky bit) still work. */
		snprintf(what, sizeof(what), "%s(01755)", calls[i].name);
		if (calls[i].op == op_fchmodat2) {
			struct outcome o;

			/* Kernels before 6.6 answer ENOSYS. */
			TAP_CHECK(run_confined(MBX_TRUST_SEMI_TRUSTED, calls[i].op, 0755, &o) == 0);
			TAP_CHECK(o.reported && o.r.installed && (o.r.ret == 0 || o.r.err == ENOSYS));
		} else {
			expect_ok(what, MBX_TRUST_SEMI_TRUSTED, calls[i].op, 01755);
		}
		unlink(scratch_path("new"));
		unlink(scratch_path("node"));
		rmdir(scratch_path("dir"));
	}
	/* openat2 carries its mode in memory: ENOSYS, whatever the mode. */
	expect_errno("openat2(04755)", MBX_TRUST_SEMI_TRUSTED, op_openat2, 04755, ENOSYS);
	expect_errno("openat2(0644)", MBX_TRUST_SEMI_TRUSTED, op_openat2, 0644, ENOSYS);
	expect_errno("openat2 (untrusted)", MBX_TRUST_UNTRUSTED, op_openat2, 04755, ENOSYS);
	unlink(scratch_path("file"));
	unlink(scratch_path("new"));
	rmdir(scratch);
}

/* Counts the "return KILL_PROCESS" and "return KILL_THREAD" instructions. */
static void count_kills(const uint8_t *prog, size_t len, size_t *process, size_t *thread)
{
	*process = *thread = 0;
	for (size_t off = 0; off + 8 <= len; off += 8) {
		struct sock_filter ins;

		memcpy(&ins, prog + off, sizeof(ins));
		if (ins.code != (BPF_RET | BPF_K))
			continue;
		if (ins.k == SECCOMP_RET_KILL_PROCESS)
			(*process)++;
		else if (ins.k == SECCOMP_RET_KILL_THREAD)
			(*thread)++;
	}
}

/* The embedded programs name KILL_PROCESS whatever the build host's kernel
 * knew; rewriting them for an older kernel touches exactly those returns,
 * and the rewritten program still kills with SIGSYS. */
static void test_kill_action(void)
{
	for (int t = 0; t < 4; t++) {
		const uint8_t *emb = NULL;
		uint8_t *copy;
		size_t len = 0, proc0, thr0, proc1, thr1, changed = 0;

		TAP_CHECK_INT(mbx__seccomp_program((mbx_trust_t)t, &emb, &len), 0);
		count_kills(emb, len, &proc0, &thr0);
		/* The bad-architecture action at least. */
		TAP_CHECK(proc0 >= 1);
		copy = malloc(len);
		if (copy == NULL) {
			TAP_CHECK(!"malloc");
			return;
		}
		memcpy(copy, emb, len);
		TAP_CHECK_INT(mbx_seccomp_set_kill_action(copy, len, SECCOMP_RET_KILL_PROCESS), 0);
		TAP_CHECK(memcmp(copy, emb, len) == 0);
		TAP_CHECK_INT(mbx_seccomp_set_kill_action(copy, len, SECCOMP_RET_KILL_THREAD), proc0);
		count_kills(copy, len, &proc1, &thr1);
		TAP_CHECK_INT(proc1, 0);
		TAP_CHECK_INT(thr1, thr0 + proc0);
		for (size_t off = 0; off < len; off += 8)
			changed += memcmp(copy + off, emb + off, 8) != 0;
		TAP_CHECK_INT(changed, proc0);
		free(copy);
	}
	{
		const uint8_t *emb = NULL;
		uint8_t *copy;
		size_t len = 0;
		struct outcome o;

		TAP_CHECK_INT(mbx__seccomp_program(MBX_TRUST_UNTRUSTED, &emb, &len), 0);
		copy = malloc(len);
		if (copy == NULL) {
			TAP_CHECK(!"malloc");
			return;
		}
		memcpy(copy, emb, len);
		mbx_seccomp_set_kill_action(copy, len, SECCOMP_RET_KILL_THREAD);
		TAP_CHECK(run_program(copy, len, op_ptrace, 0, &o) == 0);
		if (o.signal != SIGSYS)
			describe("ptrace under KILL_THREAD", &o);
		TAP_CHECK_INT(o.signal, SIGSYS);
	}
	{
		struct utsname u;
		int major = 0, minor = 0;

		/* SECCOMP_RET_KILL_PROCESS and SECCOMP_GET_ACTION_AVAIL: 4.14.
		 * valgrind does not pass seccomp() on: the probe says no there. */
		TAP_CHECK(uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2);
		if ((major > 4 || (major == 4 && minor >= 14)) && !under_valgrind())
			TAP_CHECK_INT(mbx_seccomp_host_kill_action(), SECCOMP_RET_KILL_PROCESS);
		else
			TAP_CHECK_INT(mbx_seccomp_host_kill_action(), SECCOMP_RET_KILL_THREAD);
	}
}

static void test_untrusted_kills(void)
{
	expect_signal("bpf (untrusted)", MBX_TRUST_UNTRUSTED, op_bpf, 0, SIGSYS);
	expect_signal("ptrace (untrusted)", MBX_TRUST_UNTRUSTED, op_ptrace, 0, SIGSYS);
	expect_signal("io_uring_setup (untrusted)", MBX_TRUST_UNTRUSTED, op_io_uring, 0, SIGSYS);
	/* Lower-risk denials stay EPERM. */
	expect_errno("mount (untrusted)", MBX_TRUST_UNTRUSTED, op_mount, 0, EPERM);
}

/* QEMU's jail: the untrusted program with io_uring refused instead of
 * killing (QEMU probes it and falls back); everything else as untrusted. */
static void test_vmm_profile(void)
{
	expect_errno("io_uring_setup (vmm)", MBX_SECCOMP_VMM, op_io_uring, 0, EPERM);
	expect_signal("bpf (vmm)", MBX_SECCOMP_VMM, op_bpf, 0, SIGSYS);
	expect_signal("ptrace (vmm)", MBX_SECCOMP_VMM, op_ptrace, 0, SIGSYS);
	expect_errno("personality(PER_LINUX) (vmm)", MBX_SECCOMP_VMM, op_personality, PER_LINUX, EPERM);
	expect_errno("mount (vmm)", MBX_SECCOMP_VMM, op_mount, 0, EPERM);
	expect_errno("clone3 (vmm)", MBX_SECCOMP_VMM, op_clone3, 0, ENOSYS);
}

/* The programs embedded at build time are what the run-time builder makes
 * now: a stale build cannot ship an old policy unnoticed. The kill action no
 * longer depends on the kernel the builder runs on, so this holds under
 * valgrind too. */
static void test_embedded_matches(void)
{
	for (int t = 0; t < 4; t++) {
		const uint8_t *emb = NULL;
		uint8_t *fresh = NULL;
		size_t elen = 0, flen = 0;

		TAP_CHECK_INT(mbx__seccomp_program((mbx_trust_t)t, &emb, &elen), 0);
		TAP_CHECK_INT(mbx__seccomp_build((mbx_trust_t)t, &fresh, &flen, NULL), MBX_OK);
		TAP_CHECK_INT(elen, flen);
		TAP_CHECK(emb && fresh && elen == flen && memcmp(emb, fresh, elen) == 0);
		free(fresh);
	}
	{
		const uint8_t *p;
		size_t l;

		TAP_CHECK_INT(mbx__seccomp_program((mbx_trust_t)9, &p, &l), -1);
	}
}

static const struct tap_case cases[] = {
	{ "seccomp/embedded-matches", test_embedded_matches },
	{ "seccomp/filter-shape", test_filter_shape },
	{ "seccomp/invalid-trust", test_invalid_trust },
	{ "seccomp/mount", test_mount },
	{ "seccomp/unshare", test_unshare },
	{ "seccomp/clone-newns", test_clone_newns },
	{ "seccomp/clone-ns-flags", test_clone_ns_flags },
	{ "seccomp/clone3-enosys", test_clone3 },
	{ "seccomp/socket-vsock", test_socket_vsock },
	{ "seccomp/netlink-route", test_netlink_route },
	{ "seccomp/netlink-audit", test_netlink_audit },
	{ "seccomp/socket-inet", test_socket_inet },
	{ "seccomp/ptrace", test_ptrace },
	{ "seccomp/bpf", test_bpf },
	{ "seccomp/keyctl", test_keyctl },
	{ "seccomp/io-uring", test_io_uring },
	{ "seccomp/tiocsti", test_tiocsti },
	{ "seccomp/personality", test_personality },
	{ "seccomp/getpid", test_getpid },
	{ "seccomp/fork", test_fork },
	{ "seccomp/x32", test_x32 },
	{ "seccomp/int80", test_int80 },
	{ "seccomp/untrusted-kills", test_untrusted_kills },
	{ "seccomp/vmm-profile", test_vmm_profile },
	{ "seccomp/numa", test_numa },
	{ "seccomp/tiocsetd", test_tiocsetd },
	{ "seccomp/setid-modes", test_setid_modes },
	{ "seccomp/kill-action", test_kill_action },
};

TAP_MAIN(cases)
