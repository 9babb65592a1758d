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
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "error-internal.h"
#include "backend/linux/seccomp.h"

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

/*
 * Runs op(arg) in a child confined by the filter for `trust` and fills *o.
 * Returns 0, or -1 (after printing a diagnostic) when the harness itself
 * failed: the filter could not be built, fork or pipe failed.
 */
static int run_confined(mbx_trust_t trust, op_fn op, long arg, struct outcome *o)
{
	struct sock_fprog prog;
	struct report r;
	uint8_t *filter = NULL;
	size_t len = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	/* The behaviour checked is that of the program sandboxes use: the one
	 * embedded at build time (seccomp/embedded-matches checks it equals a
	 * fresh build). */
	{
		const uint8_t *embedded;

		if (mbx__seccomp_program(trust, &embedded, &len) < 0 || (filter = malloc(len)) == NULL) {
			printf("#   no embedded seccomp program for trust %u\n", (unsigned int)trust);
			return -1;
		}
		memcpy(filter, embedded, len);
	}
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

static void test_untrusted_kills(void)
{
	expect_signal("bpf (untrusted)", MBX_TRUST_UNTRUSTED, op_bpf, 0, SIGSYS);
	expect_signal("ptrace (untrusted)", MBX_TRUST_UNTRUSTED, op_ptrace, 0, SIGSYS);
	expect_signal("io_uring_setup (untrusted)", MBX_TRUST_UNTRUSTED, op_io_uring, 0, SIGSYS);
	/* Lower-risk denials stay EPERM. */
	expect_errno("mount (untrusted)", MBX_TRUST_UNTRUSTED, op_mount, 0, EPERM);
}

/* The programs embedded at build time are what the run-time builder makes
 * now: a stale build cannot ship an old policy unnoticed. Under valgrind the
 * builder falls back from kill-process to kill-thread, so the comparison only
 * holds outside it. */
static void test_embedded_matches(void)
{
	const char *preload = getenv("LD_PRELOAD");

	if (preload && strstr(preload, "vgpreload"))
		TAP_NOT_APPLICABLE("valgrind changes the kill action the builder picks");
	for (int t = 0; t < 3; t++) {
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
};

TAP_MAIN(cases)
