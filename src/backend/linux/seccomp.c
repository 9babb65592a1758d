/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The payload's seccomp-bpf policy: a deny-list on top of an ALLOW default.
 * The namespaces, Landlock and the capability drop are the walls; this
 * filter shrinks the kernel surface the payload can reach through them.
 *
 * Why each family is denied (EPERM unless said otherwise):
 * - mount API (mount, umount*, pivot_root, chroot, move_mount, open_tree*,
 *   fs{open,config,mount,pick}, mount_setattr): sandbox root owns its mount
 *   namespace, so these would let it reshape its own view and reach
 *   filesystem code written for trusted callers.
 * - ptrace, process_vm_{readv,writev}, process_madvise, kcmp, pidfd_getfd:
 *   reading or steering other processes, including the agent (PID 1).
 * - bpf, kexec_*, {init,finit,delete}_module: loading code into the kernel.
 * - keyctl, add_key, request_key: the keyring is not namespaced and has a long
 *   CVE history.
 * - perf_event_open, userfaultfd, io_uring_*: rich interfaces that keep
 *   yielding privilege escalations (userfaultfd also stretches race windows).
 * - setns, unshare, clone with a CLONE_NEW* flag: nested namespaces hand the
 *   payload a full set of capabilities over new kernel objects. clone3 gets
 *   ENOSYS because its flags live in memory, out of reach of BPF; libc then
 *   falls back to clone, whose flags we can read.
 * - sockets other than AF_UNIX, AF_INET, AF_INET6 and netlink other than
 *   NETLINK_ROUTE (which getaddrinfo and if_nameindex use): vsock reaches the
 *   hypervisor, the rest are rarely needed protocol stacks (packet, key,
 *   bluetooth, audit, ...).
 * - ioctl TIOCSTI, TIOCLINUX: typing into, or reading, the caller's terminal.
 * - host state: acct, swap*, reboot, time setting (settimeofday,
 *   clock_settime, clock_adjtime, adjtimex), syslog, quotactl*, nfsservctl,
 *   lookup_dcookie, vhangup, iopl, ioperm, uselib.
 * - open_by_handle_at, name_to_handle_at: file handles bypass path walks and
 *   so the mount boundary ("shocker").
 * - fanotify_init: watching the filesystem beyond the sandbox's paths.
 * - personality with anything but PER_LINUX or the 0xffffffff query:
 *   READ_IMPLIES_EXEC, MMAP_PAGE_ZERO and friends weaken exploit mitigations.
 *
 * Untrusted payloads also lose personality entirely, memfd_secret and
 * modify_ldt, and the highest-risk set (ptrace, bpf, kexec_*, *_module,
 * keys, perf_event_open, userfaultfd, io_uring_*) kills the process, so the
 * attempt shows up as SIGSYS in the result. Trusted equals SemiTrusted.
 *
 * The VMM program (MBX_SECCOMP_VMM, QEMU's jail only) is the untrusted one
 * with io_uring_* answering EPERM: QEMU probes io_uring_setup at start and
 * falls back to epoll, so a kill there would end every VM.
 *
 * Other ABIs: only the native architecture is in the filter, and a foreign
 * one (int 0x80 on x86_64) hits the bad-arch action, which kills. x32 shares
 * AUDIT_ARCH_X86_64; libseccomp (checked with 2.5.4) emits a
 * "nr >= __X32_SYSCALL_BIT" test that sends x32 numbers to the bad-arch
 * action as well, and the unit tests check that it does.
 *
 * Arguments: the kernel truncates int arguments to 32 bits, while a BPF
 * equality on a 64-bit argument also compares the high half. Values with a
 * non-zero high half are therefore denied by a ">= limit" rule, or tested
 * with a mask whose high half is 0, so garbage in the high bits cannot slip
 * a denied value past the filter.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/personality.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error-internal.h"
#include "seccomp.h"

#define LAYER "seccomp"

/* open_tree_attr (Linux 6.15) postdates the libseccomp we build against; it
 * has the same number on every architecture using the common table. */
#if defined(__SNR_open_tree_attr)
#define NR_OPEN_TREE_ATTR __SNR_open_tree_attr
#elif defined(__x86_64__) || defined(__aarch64__) || defined(__riscv) || \
	defined(__powerpc64__) || defined(__s390x__) || defined(__loongarch__)
#define NR_OPEN_TREE_ATTR 467
#else
#define NR_OPEN_TREE_ATTR (-1)
#endif

/* fchmodat2 (Linux 6.6) may postdate both libseccomp and the kernel
 * headers; 452 on every architecture using the common table. */
#if defined(__NR_fchmodat2)
#define NR_FCHMODAT2 __NR_fchmodat2
#elif defined(__x86_64__) || defined(__aarch64__) || defined(__riscv) || \
	defined(__powerpc64__) || defined(__s390x__) || defined(__loongarch__)
#define NR_FCHMODAT2 452
#else
#define NR_FCHMODAT2 (-1)
#endif

/* s390 passes the clone flags second (CLONE_BACKWARDS2). */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/* Namespace flags checked in clone(). CLONE_NEWTIME is left out: in clone()
 * its bit is part of the exit signal, and a time namespace can only be made
 * with unshare or clone3, both denied. */
static const uint64_t clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

/* Socket families every trust level keeps; AF_NETLINK is narrowed to
 * NETLINK_ROUTE by its own rules. */
static const int allowed_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

/* Families below this are denied one by one, the rest with one ">=" rule
 * (which also catches a non-zero high half). Above today's AF_MAX, so
 * families added by newer kernels are denied too. */
#define FAMILY_LIMIT 64
/* The same for netlink protocols (MAX_LINKS is 32). */
#define NETLINK_LIMIT 32

/* What a listed system call gets, per trust level. */
enum deny_class {
	DENY_ALL,	/* EPERM at every trust level */
	DENY_KILL,	/* EPERM, or a process kill when untrusted */
	DENY_UNTRUSTED,	/* EPERM when untrusted, allowed otherwise */
	DENY_KILL_NOT_VMM, /* as DENY_KILL, but EPERM in the VMM program */
};

struct deny_rule {
	const char *name;
	int nr;	/* negative when the syscall is absent on this architecture */
	enum deny_class cls;
};

#define DENY(sys, cls) { #sys, SCMP_SYS(sys), cls }

static const struct deny_rule deny_rules[] = {
	/* mount API */
	DENY(mount, DENY_ALL),
	DENY(umount, DENY_ALL),
	DENY(umount2, DENY_ALL),
	DENY(pivot_root, DENY_ALL),
	DENY(chroot, DENY_ALL),
	DENY(move_mount, DENY_ALL),
	DENY(open_tree, DENY_ALL),
	{ "open_tree_attr", NR_OPEN_TREE_ATTR, DENY_ALL },
	DENY(fsopen, DENY_ALL),
	DENY(fsconfig, DENY_ALL),
	DENY(fsmount, DENY_ALL),
	DENY(fspick, DENY_ALL),
	DENY(mount_setattr, DENY_ALL),
	/* other processes */
	DENY(ptrace, DENY_KILL),
	DENY(process_vm_readv, DENY_ALL),
	DENY(process_vm_writev, DENY_ALL),
	DENY(process_madvise, DENY_ALL),
	DENY(kcmp, DENY_ALL),
	DENY(pidfd_getfd, DENY_ALL),
	/* code into the kernel */
	DENY(bpf, DENY_KILL),
	DENY(kexec_load, DENY_KILL),
	DENY(kexec_file_load, DENY_KILL),
	DENY(init_module, DENY_KILL),
	DENY(finit_module, DENY_KILL),
	DENY(delete_module, DENY_KILL),
	/* keyrings */
	DENY(keyctl, DENY_KILL),
	DENY(add_key, DENY_KILL),
	DENY(request_key, DENY_KILL),
	/* exploit-rich interfaces */
	DENY(perf_event_open, DENY_KILL),
	DENY(userfaultfd, DENY_KILL),
	DENY(io_uring_setup, DENY_KILL_NOT_VMM),
	DENY(io_uring_enter, DENY_KILL_NOT_VMM),
	DENY(io_uring_register, DENY_KILL_NOT_VMM),
	/* nested namespaces (clone and clone3 have their own rules) */
	DENY(setns, DENY_ALL),
	DENY(unshare, DENY_ALL),
	/* host state */
	DENY(acct, DENY_ALL),
	DENY(swapon, DENY_ALL),
	DENY(swapoff, DENY_ALL),
	DENY(reboot, DENY_ALL),
	DENY(settimeofday, DENY_ALL),
	DENY(clock_settime, DENY_ALL),
	DENY(clock_adjtime, DENY_ALL),
	DENY(adjtimex, DENY_ALL),
	DENY(syslog, DENY_ALL),
	DENY(quotactl, DENY_ALL),
	DENY(quotactl_fd, DENY_ALL),
	DENY(nfsservctl, DENY_ALL),
	DENY(lookup_dcookie, DENY_ALL),
	DENY(vhangup, DENY_ALL),
	DENY(iopl, DENY_ALL),
	DENY(ioperm, DENY_ALL),
	DENY(uselib, DENY_ALL),
	/* file handles, filesystem-wide watches */
	DENY(open_by_handle_at, DENY_ALL),
	DENY(name_to_handle_at, DENY_ALL),
	DENY(fanotify_init, DENY_ALL),
	/* NUMA policy and page placement: moving other processes' pages and
	 * pinning memory to nodes (CAP_SYS_NICE territory) */
	DENY(move_pages, DENY_ALL),
	DENY(migrate_pages, DENY_ALL),
	DENY(mbind, DENY_ALL),
	DENY(set_mempolicy, DENY_ALL),
	/* untrusted only */
	DENY(memfd_secret, DENY_UNTRUSTED),
	DENY(modify_ldt, DENY_UNTRUSTED),
};

/* Turns a negative libseccomp return into an error naming `what`. */
static int lib_error(mbx_error **err, int rc, const char *what)
{
	if (rc == -ENOMEM)
		return mbx__error_oom(err);
	return mbx__error_set(err, MBX_ENOTSUP, -rc, LAYER, "libseccomp: %s", what);
}

/*
 * Adds one rule for syscall `nr` (named `name` in errors) with `n`
 * comparisons, all of which must hold. A negative `nr` (the syscall does not
 * exist on this architecture) adds nothing. Returns MBX_OK or an error.
 */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const char *name,
		    unsigned int n, const struct scmp_arg_cmp *cmp, mbx_error **err)
{
	int rc;

	if (nr < 0)
		return MBX_OK;
	rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (rc < 0)
		return lib_error(err, rc, name);
	return MBX_OK;
}

/*
 * The action that kills: always SECCOMP_RET_KILL_PROCESS. The programs are
 * compiled on the build host, whose kernel says nothing about the one a
 * sandbox runs on; the agent rewrites these returns to KILL_THREAD where the
 * running kernel lacks KILL_PROCESS (src/platform/linux/seccomp-kill.h).
 * libseccomp accepts KILL_PROCESS only when its probe of this process finds
 * kernel support (API level 3), so the level is raised for the build: it
 * only affects which actions libseccomp lets a filter name.
 */
static int kill_action(uint32_t *act, mbx_error **err)
{
	if (seccomp_api_get() < 3) {
		int rc = seccomp_api_set(3);

		if (rc < 0)
			return lib_error(err, rc, "raise the API level to name SECCOMP_RET_KILL_PROCESS");
	}
	*act = SCMP_ACT_KILL_PROCESS;
	return MBX_OK;
}

static int add_table(scmp_filter_ctx ctx, mbx_trust_t trust, uint32_t kill_act,
		     mbx_error **err)
{
	int vmm = trust == MBX_SECCOMP_VMM;
	int untrusted = trust == MBX_TRUST_UNTRUSTED || vmm;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(deny_rules) / sizeof(deny_rules[0]); i++) {
		const struct deny_rule *r = &deny_rules[i];
		uint32_t action = SCMP_ACT_ERRNO(EPERM);

		if (r->cls == DENY_UNTRUSTED && !untrusted)
			continue;
		if ((r->cls == DENY_KILL || (r->cls == DENY_KILL_NOT_VMM && !vmm)) && untrusted)
			action = kill_act;
		rc = add_rule(ctx, action, r->nr, r->name, 0, NULL, err);
		if (rc < 0)
			return rc;
	}
	return MBX_OK;
}

/*
 * Set-id bits: no call may give a file S_ISUID or S_ISGID. Writable mounts
 * reach the host, and with id-mapped mounts a file sandbox root creates is
 * owned by the caller there: a set-user-id copy of a shell would hand the
 * caller's identity to whoever runs it on the host. `arg` is the index of
 * the mode argument; one rule per bit, masked to the low half (the kernel
 * reads a umode_t). Calls that only create (open with O_CREAT, mknod) get
 * the same test: their mode is ignored otherwise, and libc passes 0 then.
 */
static const struct mode_call {
	const char *name;
	int nr;
	unsigned int arg;
} mode_calls[] = {
	{ "chmod", SCMP_SYS(chmod), 1 },
	{ "fchmod", SCMP_SYS(fchmod), 1 },
	{ "fchmodat", SCMP_SYS(fchmodat), 2 },
	{ "fchmodat2", NR_FCHMODAT2, 2 },
	{ "open", SCMP_SYS(open), 2 },
	{ "openat", SCMP_SYS(openat), 3 },
	{ "creat", SCMP_SYS(creat), 1 },
	{ "mkdir", SCMP_SYS(mkdir), 1 },
	{ "mkdirat", SCMP_SYS(mkdirat), 2 },
	{ "mknod", SCMP_SYS(mknod), 1 },
	{ "mknodat", SCMP_SYS(mknodat), 2 },
};

static int add_setid_modes(scmp_filter_ctx ctx, mbx_error **err)
{
	static const uint64_t bits[] = { S_ISUID, S_ISGID };
	size_t i, b;
	int rc;

	for (i = 0; i < sizeof(mode_calls) / sizeof(mode_calls[0]); i++) {
		for (b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
			struct scmp_arg_cmp c = SCMP_CMP(mode_calls[i].arg, SCMP_CMP_MASKED_EQ, bits[b], bits[b]);

			rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), mode_calls[i].nr, mode_calls[i].name, 1, &c, err);
			if (rc < 0)
				return rc;
		}
	}
	/* openat2 keeps its mode in a struct BPF cannot read: ENOSYS, and
	 * libc falls back to openat. */
	return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), "openat2", 0, NULL, err);
}

/* clone with any namespace flag: one rule per flag bit, since BPF can only
 * test a masked value for equality. clone3 cannot be inspected: ENOSYS. */
static int add_clone(scmp_filter_ctx ctx, mbx_error **err)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
		struct scmp_arg_cmp c = SCMP_CMP(CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ,
						 clone_ns_flags[i], clone_ns_flags[i]);

		rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), "clone", 1, &c, err);
		if (rc < 0)
			return rc;
	}
	return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3", 0, NULL, err);
}

static int family_allowed(int family)
{
	size_t i;

	for (i = 0; i < sizeof(allowed_families) / sizeof(allowed_families[0]); i++)
		if (allowed_families[i] == family)
			return 1;
	return 0;
}

/*
 * socket and socketpair: every family but the allowed ones, then netlink
 * protocols other than NETLINK_ROUTE for socket. Exact 64-bit equalities are
 * safe here because any value with a non-zero high half is caught by the
 * ">= limit" rule first.
 */
static int add_sockets(scmp_filter_ctx ctx, mbx_error **err)
{
	static const struct { const char *name; int nr; } calls[] = {
		{ "socket", SCMP_SYS(socket) },
		{ "socketpair", SCMP_SYS(socketpair) },
	};
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	struct scmp_arg_cmp c[2];
	size_t i;
	int f, p, rc;

	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		for (f = 0; f < FAMILY_LIMIT; f++) {
			if (family_allowed(f))
				continue;
			c[0] = SCMP_A0(SCMP_CMP_EQ, (uint64_t)f);
			rc = add_rule(ctx, eperm, calls[i].nr, calls[i].name, 1, c, err);
			if (rc < 0)
				return rc;
		}
		c[0] = SCMP_A0(SCMP_CMP_GE, (uint64_t)FAMILY_LIMIT);
		rc = add_rule(ctx, eperm, calls[i].nr, calls[i].name, 1, c, err);
		if (rc < 0)
			return rc;
	}

	c[0] = SCMP_A0(SCMP_CMP_EQ, (uint64_t)AF_NETLINK);
	for (p = 0; p < NETLINK_LIMIT; p++) {
		if (p == NETLINK_ROUTE)
			continue;
		c[1] = SCMP_A2(SCMP_CMP_EQ, (uint64_t)p);
		rc = add_rule(ctx, eperm, SCMP_SYS(socket), "socket", 2, c, err);
		if (rc < 0)
			return rc;
	}
	c[1] = SCMP_A2(SCMP_CMP_GE, (uint64_t)NETLINK_LIMIT);
	return add_rule(ctx, eperm, SCMP_SYS(socket), "socket", 2, c, err);
}

/* ioctl commands are 32-bit in the kernel: compare the low half only. */
static int add_ioctls(scmp_filter_ctx ctx, mbx_error **err)
{
	static const uint64_t cmds[] = { TIOCSTI, TIOCLINUX, TIOCSETD };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, cmds[i]);

		rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), "ioctl", 1, &c, err);
		if (rc < 0)
			return rc;
	}
	return MBX_OK;
}

/*
 * personality: untrusted loses it; otherwise only PER_LINUX (0) and the
 * 0xffffffff query pass. The kernel takes an unsigned int, and a 32-bit
 * value other than all-zeros or all-ones has, somewhere around the ring of
 * its bits, a set bit followed by a clear one: 32 masked rules (high half
 * ignored) cover exactly that set, as libseccomp allows one comparison per
 * argument and rule.
 */
static int add_personality(scmp_filter_ctx ctx, mbx_trust_t trust, mbx_error **err)
{
	int nr = SCMP_SYS(personality);
	unsigned int bit;
	int rc;

	if (trust == MBX_TRUST_UNTRUSTED || trust == MBX_SECCOMP_VMM)
		return add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, "personality", 0, NULL, err);
	for (bit = 0; bit < 32; bit++) {
		uint64_t set = 1ULL << bit;
		uint64_t clear = 1ULL << ((bit + 1) % 32);
		struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, set | clear, set);

		rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, "personality", 1, &c, err);
		if (rc < 0)
			return rc;
	}
	return MBX_OK;
}

/*
 * Writes the filter to a memfd (libseccomp exports only to an fd) and reads
 * it back into a malloc'd buffer. On success *out and *len are set; the
 * buffer is a non-empty whole number of instructions within BPF_MAXINSNS.
 */
static int export_filter(scmp_filter_ctx ctx, uint8_t **out, size_t *len, mbx_error **err)
{
	uint8_t *buf = NULL;
	struct stat st;
	size_t size, done = 0;
	int fd, rc;

	fd = memfd_create("mbx-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, LAYER, "memfd_create");
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0) {
		rc = lib_error(err, rc, "export the filter");
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, LAYER, "fstat of the exported filter");
		goto out;
	}
	size = (size_t)st.st_size;
	if (size == 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		rc = mbx__error_set(err, MBX_ENOTSUP, 0, LAYER,
				    "libseccomp produced an unusable filter of %zu bytes", size);
		goto out;
	}
	buf = malloc(size);
	if (buf == NULL) {
		rc = mbx__error_oom(err);
		goto out;
	}
	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = mbx__error_set(err, MBX_ESYS, n < 0 ? errno : EIO, LAYER,
					    "read back the exported filter");
			goto out;
		}
		done += (size_t)n;
	}
	*out = buf;
	*len = size;
	buf = NULL;
	rc = MBX_OK;
out:
	free(buf);
	close(fd);
	return rc;
}

/*
 * Builds the policy described at the top of this file for `trust` and
 * returns it as raw BPF (see seccomp.h). Allocates nothing else and leaves
 * no fd open. On failure *out is NULL and *len 0.
 */
int mbx__seccomp_build(mbx_trust_t trust, uint8_t **out, size_t *len, mbx_error **err)
{
	scmp_filter_ctx ctx;
	uint32_t kill_act;
	int rc;

	MBX_CHECK_ARG(out != NULL, err);
	MBX_CHECK_ARG(len != NULL, err);
	*out = NULL;
	*len = 0;
	if (trust != MBX_TRUST_TRUSTED && trust != MBX_TRUST_SEMI_TRUSTED &&
	    trust != MBX_TRUST_UNTRUSTED && trust != MBX_SECCOMP_VMM)
		return mbx__error_set(err, MBX_EINVAL, 0, LAYER, "unknown trust level %u",
				      (unsigned int)trust);

	if (seccomp_arch_native() == 0)
		return mbx__error_set(err, MBX_ENOTSUP, 0, LAYER,
				      "libseccomp does not know this architecture");
	rc = kill_action(&kill_act, err);
	if (rc < 0)
		return rc;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return mbx__error_oom(err);

	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, kill_act);
	if (rc < 0) {
		rc = lib_error(err, rc, "set the bad-architecture action");
		goto out;
	}
	/* A binary tree over syscall numbers keeps allowed calls cheap. Only a
	 * speed hint: the policy is the same without it. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

	rc = add_table(ctx, trust, kill_act, err);
	if (rc == MBX_OK)
		rc = add_clone(ctx, err);
	if (rc == MBX_OK)
		rc = add_setid_modes(ctx, err);
	if (rc == MBX_OK)
		rc = add_sockets(ctx, err);
	if (rc == MBX_OK)
		rc = add_ioctls(ctx, err);
	if (rc == MBX_OK)
		rc = add_personality(ctx, trust, err);
	if (rc == MBX_OK)
		rc = export_filter(ctx, out, len, err);
out:
	seccomp_release(ctx);
	return rc;
}
