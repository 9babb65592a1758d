/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host probe behind `mimobox doctor`: every isolation layer is tried for
 * real, in short-lived child processes, rather than guessed from kernel
 * versions or config files (distributions patch and sysctls switch layers
 * off). Children only make system calls and _exit, so the probe is safe in a
 * multithreaded host; each reports one int over a CLOEXEC pipe, which works
 * even when the host ignores SIGCHLD. The library never prints: everything
 * goes into the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <mbx/probe.h>

#include "internal.h"
#include "backend/backend.h"
#include "backend/linux/cgroup.h"
#include "backend/microvm/assets.h"
#include "backend/microvm/qemu-cmdline.h"
#include "platform/linux/syscalls.h"
#include "platform/linux/closefds.h"

#define PROBE_MAX_CHECKS 24
/* A child result that is no errno value. */
#define CHILD_NOT_ENFORCED (-1000)
#define CHILD_DIED         (-1001)
#define QEMU_NAME          "qemu-system-x86_64"
#define QEMU_TIMEOUT_MS    5000
#define VERSION_TIMEOUT    (-1)
#define VERSION_SILENT     (-2)

struct probe_check {
	const char *name; /* static */
	mbx_probe_status_t status;
	char *detail;
	char *hint; /* NULL: nothing to do */
};

struct mbx_probe {
	struct probe_check checks[PROBE_MAX_CHECKS];
	size_t n;
	char *os_reason; /* NULL when the os backend can run */
	char *vm_reason; /* NULL when the microvm backend's prerequisites are there */
	int oom;         /* an allocation failed while building */
};

/* Index of each check, in report order. */
enum {
	C_USERNS,
	C_PIDNS,
	C_MNTNS,
	C_NETNS,
	C_IPCNS,
	C_UTSNS,
	C_CGROUPNS,
	C_SECCOMP,
	C_LANDLOCK,
	C_NNP,
	C_CGROUP_V2,
	C_CGROUP_V1,
	C_RLIMITS,
	C_DISK,
	C_KVM,
	C_QEMU,
	C_VM_ACCEL,
	C_VM_ASSETS,
	C_VMM_JAIL,
	C_WASMTIME,
	C_PASTA,
	C_COUNT
};

/* ---- report building ---- */

static char *MBX_PRINTF(2, 0) vfmt(mbx_probe *p, const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0) {
		p->oom = 1;
		return NULL;
	}
	return s;
}

static struct probe_check *add_check(mbx_probe *p, const char *name, mbx_probe_status_t status)
{
	struct probe_check *c = &p->checks[p->n++];

	c->name = name;
	c->status = status;
	return c;
}

static void MBX_PRINTF(3, 4) set_detail(mbx_probe *p, struct probe_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	free(c->detail);
	c->detail = vfmt(p, fmt, ap);
	va_end(ap);
}

static void MBX_PRINTF(3, 4) set_hint(mbx_probe *p, struct probe_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	free(c->hint);
	c->hint = vfmt(p, fmt, ap);
	va_end(ap);
}

/* ---- small helpers ---- */

/* Reads the first line of a small file (newline stripped). Returns 0 or -1. */
static int read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	n = MBX_RETRY_EINTR(read(fd, buf, len - 1));
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Reads a sysctl holding a number; -1 when absent or unreadable. */
static long read_sysctl(const char *path)
{
	char buf[64], *end;
	long v;

	if (read_line(path, buf, sizeof(buf)) < 0)
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf)
		return -1;
	return v;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * Runs fn(arg) in a forked child and returns the int it produced: 0 for
 * success, an errno value, or CHILD_NOT_ENFORCED; CHILD_DIED when the child
 * died before reporting; -errno (negative) when it could not be started.
 */
static int in_child(int (*fn)(const void *arg), const void *arg)
{
	int fds[2], result = CHILD_DIED;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		int r = fn(arg);

		if (write(fds[1], &r, sizeof(r)) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	n = MBX_RETRY_EINTR(read(fds[0], &result, sizeof(result)));
	if (n != (ssize_t)sizeof(result))
		result = CHILD_DIED;
	close(fds[0]);
	reap(pid);
	return result;
}

/* ---- namespaces ---- */

static int child_unshare(const void *arg)
{
	int flags = *(const int *)arg;

	if (unshare(CLONE_NEWUSER) < 0)
		return errno;
	if (flags != 0 && unshare(flags) < 0)
		return errno;
	return 0;
}

static const struct {
	int index;
	const char *name;
	int flag;
	const char *flag_name;
	const char *config; /* kernel option */
	const char *sysctl; /* user.max_*_namespaces */
} ns_table[] = {
	{ C_PIDNS, "pid-namespace", CLONE_NEWPID, "CLONE_NEWPID", "CONFIG_PID_NS", "pid" },
	{ C_MNTNS, "mount-namespace", CLONE_NEWNS, "CLONE_NEWNS", "CONFIG_NAMESPACES", "mnt" },
	{ C_NETNS, "network-namespace", CLONE_NEWNET, "CLONE_NEWNET", "CONFIG_NET_NS", "net" },
	{ C_IPCNS, "ipc-namespace", CLONE_NEWIPC, "CLONE_NEWIPC", "CONFIG_IPC_NS", "ipc" },
	{ C_UTSNS, "uts-namespace", CLONE_NEWUTS, "CLONE_NEWUTS", "CONFIG_UTS_NS", "uts" },
	{ C_CGROUPNS, "cgroup-namespace", CLONE_NEWCGROUP, "CLONE_NEWCGROUP", "CONFIG_CGROUPS", "cgroup" },
};

/* Says why user namespaces fail, from the sysctls that switch them off. */
static void userns_explain(mbx_probe *p, struct probe_check *c, int e)
{
	long clone_ok = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
	long max = read_sysctl("/proc/sys/user/max_user_namespaces");
	long aa = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");

	if (clone_ok == 0 && geteuid() != 0) {
		set_detail(p, c, "user namespaces are disabled (kernel.unprivileged_userns_clone = 0)");
		set_hint(p, c, "sysctl kernel.unprivileged_userns_clone=1");
	} else if (max == 0) {
		set_detail(p, c, "user namespaces are disabled (user.max_user_namespaces = 0)");
		set_hint(p, c, "sysctl user.max_user_namespaces=15000");
	} else if (e == ENOSPC) {
		set_detail(p, c, "the limit of user namespaces is reached (user.max_user_namespaces = %ld)", max);
		set_hint(p, c, "raise it: sysctl user.max_user_namespaces=%ld", max > 0 ? max * 2 : 15000);
	} else if (aa == 1 && geteuid() != 0) {
		set_detail(p, c, "AppArmor restricts unprivileged user namespaces (unshare: %s)", strerror(e));
		set_hint(p, c, "sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
			 "allowing userns for the calling program");
	} else if (e == EINVAL) {
		set_detail(p, c, "unshare(CLONE_NEWUSER): %s", strerror(e));
		set_hint(p, c, "the kernel lacks CONFIG_USER_NS, or the process is threaded or chrooted");
	} else {
		set_detail(p, c, "unshare(CLONE_NEWUSER): %s", strerror(e));
		set_hint(p, c, "a seccomp profile or security module blocks user namespaces (as container "
			 "runtimes' default profiles do): allow unshare/clone with CLONE_NEWUSER");
	}
}

/* Reports a child that could not start or died. */
static void child_trouble(mbx_probe *p, struct probe_check *c, int r)
{
	if (r == CHILD_DIED)
		set_detail(p, c, "the test process died before reporting");
	else
		set_detail(p, c, "cannot start a test process: %s", strerror(-r));
	set_hint(p, c, "retry; the host may be out of processes or memory");
}

static void probe_namespaces(mbx_probe *p)
{
	struct probe_check *c;
	int none = 0, r, userns_ok;
	size_t i;

	c = add_check(p, "user-namespaces", MBX_PROBE_UNAVAILABLE);
	r = in_child(child_unshare, &none);
	userns_ok = r == 0;
	if (r == 0) {
		long max = read_sysctl("/proc/sys/user/max_user_namespaces");

		c->status = MBX_PROBE_OK;
		if (max >= 0)
			set_detail(p, c, "unshare(CLONE_NEWUSER) works (user.max_user_namespaces = %ld)", max);
		else
			set_detail(p, c, "unshare(CLONE_NEWUSER) works");
	} else if (r > 0) {
		userns_explain(p, c, r);
	} else {
		child_trouble(p, c, r);
	}

	for (i = 0; i < sizeof(ns_table) / sizeof(ns_table[0]); i++) {
		c = add_check(p, ns_table[i].name, MBX_PROBE_UNAVAILABLE);
		if (!userns_ok) {
			set_detail(p, c, "not tried: needs a user namespace, which is unavailable");
			set_hint(p, c, "enable user namespaces first (see user-namespaces)");
			continue;
		}
		r = in_child(child_unshare, &ns_table[i].flag);
		if (r == 0) {
			c->status = MBX_PROBE_OK;
			set_detail(p, c, "unshare(%s) works inside a user namespace", ns_table[i].flag_name);
			continue;
		}
		if (r < 0) {
			child_trouble(p, c, r);
			continue;
		}
		set_detail(p, c, "unshare(%s) inside a user namespace: %s", ns_table[i].flag_name, strerror(r));
		if (r == EINVAL)
			set_hint(p, c, "the kernel lacks %s", ns_table[i].config);
		else if (r == ENOSPC)
			set_hint(p, c, "the namespace limit is reached: raise user.max_%s_namespaces",
				 ns_table[i].sysctl);
		else
			set_hint(p, c, "a seccomp profile or security module blocks this namespace type");
	}
}

/* ---- seccomp, no_new_privs ---- */

/*
 * Installs a filter that makes getppid() fail with errno 77 and lets every
 * other call through, then checks it is enforced. No architecture check is
 * needed: the filter never leaves this short-lived native child.
 */
static int child_seccomp(const void *arg)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 77),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(insns) / sizeof(insns[0])), insns };

	(void)arg;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		return errno;
	if (syscall(__NR_getppid) != -1 || errno != 77)
		return CHILD_NOT_ENFORCED;
	return 0;
}

static int child_nnp(const void *arg)
{
	(void)arg;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errno;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return CHILD_NOT_ENFORCED;
	return 0;
}

static void probe_seccomp(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "seccomp", MBX_PROBE_UNAVAILABLE);
	char actions[256];
	int r = in_child(child_seccomp, NULL);

	if (r == 0) {
		c->status = MBX_PROBE_OK;
		if (read_line("/proc/sys/kernel/seccomp/actions_avail", actions, sizeof(actions)) == 0)
			set_detail(p, c, "seccomp-bpf filters work (actions: %s)", actions);
		else
			set_detail(p, c, "seccomp-bpf filters work");
	} else if (r == CHILD_NOT_ENFORCED) {
		set_detail(p, c, "a filter was accepted but not enforced");
		set_hint(p, c, "the kernel or an emulation layer ignores seccomp filters; use the microvm backend");
	} else if (r > 0) {
		set_detail(p, c, "installing a seccomp filter: %s", strerror(r));
		set_hint(p, c, r == EINVAL ? "the kernel lacks CONFIG_SECCOMP_FILTER"
					   : "a security policy forbids seccomp filters here");
	} else {
		child_trouble(p, c, r);
	}
}

static void probe_nnp(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "no-new-privs", MBX_PROBE_UNAVAILABLE);
	int r = in_child(child_nnp, NULL);

	if (r == 0) {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "prctl(PR_SET_NO_NEW_PRIVS) works");
	} else if (r == CHILD_NOT_ENFORCED) {
		set_detail(p, c, "PR_SET_NO_NEW_PRIVS was accepted but does not read back");
		set_hint(p, c, "the kernel is older than 3.5 or emulated");
	} else if (r > 0) {
		set_detail(p, c, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(r));
		set_hint(p, c, "the kernel is older than 3.5 or emulated");
	} else {
		child_trouble(p, c, r);
	}
}

/* ---- Landlock ---- */

static void probe_landlock(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "landlock", MBX_PROBE_UNAVAILABLE);
	int abi, e;

	errno = 0;
	abi = mbx_landlock_abi();
	e = errno;
	if (abi >= 3) {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "ABI %d", abi);
	} else if (abi > 0) {
		c->status = MBX_PROBE_PARTIAL;
		set_detail(p, c, "ABI %d (truncation is not controlled before ABI 3)", abi);
		set_hint(p, c, "Linux 6.2 or later gives Landlock ABI 3");
	} else if (e == EOPNOTSUPP) {
		set_detail(p, c, "Landlock is built into the kernel but not enabled");
		set_hint(p, c, "add landlock to the lsm= kernel command line (see /sys/kernel/security/lsm)");
	} else {
		set_detail(p, c, "landlock_create_ruleset: %s", strerror(e ? e : ENOSYS));
		set_hint(p, c, "Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK");
	}
}

/* ---- limits ---- */

/* 1 when a cgroup v1 memory hierarchy is mounted (the v2 controllers then
 * sit on v1, which is why v2 has none). */
static int v1_memory_mounted(void)
{
	char mnt[PATH_MAX], root[PATH_MAX], *text = NULL;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t cap = 0, len = 0;
	int found = 0;

	if (f == NULL)
		return 0;
	for (;;) {
		char *nt;
		size_t n;

		if (cap - len < 4096) {
			nt = realloc(text, cap + 65536);
			if (nt == NULL)
				break;
			text = nt;
			cap += 65536;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	if (text != NULL) {
		text[len] = '\0';
		found = mbx__cgroup_find_mount(text, "memory", mnt, sizeof(mnt), root, sizeof(root)) == 0;
	}
	free(text);
	return found;
}

static void probe_limits(mbx_probe *p)
{
	struct probe_check *c2, *c1, *cr;
	char *d2 = NULL, *d1 = NULL;
	int ok2 = 0, ok1 = 0;

	c2 = add_check(p, "cgroup-v2", MBX_PROBE_UNAVAILABLE);
	c1 = add_check(p, "cgroup-v1", MBX_PROBE_UNAVAILABLE);
	if (mbx__cgroup_probe(&d2, &d1, &ok2, &ok1) != MBX_OK) {
		p->oom = 1;
		return;
	}
	c2->detail = d2;
	c1->detail = d1;
	c2->status = ok2 == 1 ? MBX_PROBE_OK : ok2 == 2 ? MBX_PROBE_PARTIAL : MBX_PROBE_UNAVAILABLE;
	c1->status = ok1 == 1 ? MBX_PROBE_OK : ok1 == 2 ? MBX_PROBE_PARTIAL : MBX_PROBE_UNAVAILABLE;
	if (ok2 == 2)
		set_hint(p, c2, "enable the cpu controller in cgroup.subtree_control for cpu quotas");
	else if (ok2 == 0 && v1_memory_mounted())
		set_hint(p, c2, "the controllers are bound to cgroup v1 hierarchies; boot with "
			 "systemd.unified_cgroup_hierarchy=1 to have them on cgroup v2");
	else if (ok2 == 0)
		set_hint(p, c2, "delegate the memory, pids and cpu controllers to this user's cgroup "
			 "(systemd: Delegate=yes, e.g. systemd-run --user --scope -p Delegate=yes)");
	if (ok1 == 2)
		set_hint(p, c1, "mount the cgroup v1 cpu hierarchy writable for cpu quotas");
	else if (ok1 == 0 && ok2 == 0)
		set_hint(p, c1, "run as root or make the v1 memory and pids hierarchies writable for this user; "
			 "until then limits fall back to rlimits");

	/* The last rung always works but bounds less: say what it leaves. */
	cr = add_check(p, "rlimits", MBX_PROBE_PARTIAL);
	set_detail(p, cr, "the fallback when no cgroup rung works%s: RLIMIT_DATA bounds memory per process, not the "
		   "sandbox; RLIMIT_NPROC the processes; files (/workspace, /tmp, /dev/shm) and SysV IPC "
		   "are capped at the memory limit each, memfd_create and shared anonymous mappings are denied; "
		   "the sum over processes and kernel memory are not bounded; no CPU quota",
		   (ok2 || ok1) ? " (not used here)" : " (used here)");
	set_hint(p, cr, "a cgroup rung bounds the sandbox as a whole (see the cgroup checks above)");

	cr = add_check(p, "disk", MBX_PROBE_OK);
	set_detail(p, cr, "os backend: /workspace, /tmp and /dev/shm share one tmpfs per sandbox, sized by the "
		   "disk limit (default 2048 MiB, one inode per 32 KiB), mounted inside the sandbox: RAM, never the "
		   "host's disk; wasm backend: no quota on its host workspace directory");
}

/* ---- KVM and QEMU ---- */

/* 1 when the first "flags" line of /proc/cpuinfo has vmx or svm. */
static int cpu_has_virt(const char **which)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	*which = NULL;
	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char *colon, *tok, *save = NULL;

		if (strncmp(line, "flags", 5) != 0 || (colon = strchr(line, ':')) == NULL)
			continue;
		for (tok = strtok_r(colon + 1, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
			if (strcmp(tok, "vmx") == 0 || strcmp(tok, "svm") == 0) {
				*which = tok[0] == 'v' ? "vmx" : "svm";
				found = 1;
			}
		}
		break;
	}
	free(line);
	fclose(f);
	return found;
}

static void probe_kvm(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "kvm", MBX_PROBE_UNAVAILABLE);
	const char *virt;
	struct stat st;
	int fd, e, hw = cpu_has_virt(&virt);

	if (stat("/dev/kvm", &st) < 0) {
		set_detail(p, c, "no /dev/kvm: microVMs use TCG software emulation");
		set_hint(p, c, hw ? "load the kvm_intel or kvm_amd module"
				  : "enable hardware virtualization (or nested virtualization) for this machine");
		return;
	}
	if (!hw) {
		set_detail(p, c, "/dev/kvm present but the CPU shows no vmx/svm (paravirtual KVM): microVMs use "
			   "TCG software emulation");
		set_hint(p, c, "a host with hardware virtualization (or nested virtualization enabled) runs "
			 "microVMs much faster");
		return;
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		set_detail(p, c, "/dev/kvm: %s", strerror(e));
		set_hint(p, c, "add this user to the kvm group (or give it rw access to /dev/kvm)");
		return;
	}
	close(fd);
	c->status = MBX_PROBE_OK;
	set_detail(p, c, "/dev/kvm usable, the CPU has %s", virt);
}

/* Finds an executable in PATH; returns a malloc'd path or NULL. */
static char *find_in_path(mbx_probe *p, const char *name)
{
	const char *path = getenv("PATH");
	const char *s, *e;

	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (s = path; *s != '\0'; s = *e ? e + 1 : e) {
		struct stat st;
		char *full = NULL;

		e = strchrnul(s, ':');
		if (e == s || *s != '/')
			continue; /* relative entries depend on the cwd: skip them */
		if (asprintf(&full, "%.*s/%s", (int)(e - s), s, name) < 0) {
			p->oom = 1;
			return NULL;
		}
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/*
 * Runs `path --version` with no shell, stdin and stderr on /dev/null and
 * stdout on a pipe, and copies the first line of its output to buf. The
 * child gets no other fd of the host. Returns 0, an errno value when it
 * could not be started, VERSION_TIMEOUT, or VERSION_SILENT with its wait
 * status in *wstatus.
 */
static int run_version(const char *path, char *buf, size_t len, int *wstatus)
{
	char *const argv[] = { (char *)path, (char *)"--version", NULL };
	int fds[2], nul, status = 0, e = 0;
	size_t got = 0;
	pid_t pid;
	int waited = 0;

	buf[0] = '\0';
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0)
		return errno;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		e = errno;
		close(nul);
		return e;
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(nul);
		close(fds[0]);
		close(fds[1]);
		return e;
	}
	if (pid == 0) {
		/* Move both fds above 2 first, so the dup2 calls below cannot
		 * clobber each other whatever numbers they had. */
		int w = fcntl(fds[1], F_DUPFD, 10), n = fcntl(nul, F_DUPFD, 10);

		if (w < 0 || n < 0 || dup2(n, 0) < 0 || dup2(w, 1) < 0 || dup2(n, 2) < 0)
			_exit(127);
		if (mbx_close_fds_from(3, MBX_CLOSEFDS_CLOEXEC) < 0)
			_exit(127);
		execv(path, argv);
		_exit(127);
	}
	close(nul);
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		ssize_t n;
		int pr = poll(&pfd, 1, QEMU_TIMEOUT_MS);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			e = VERSION_TIMEOUT;
			kill(pid, SIGKILL);
			break;
		}
		if (got + 1 >= len)
			break;
		n = MBX_RETRY_EINTR(read(fds[0], buf + got, len - 1 - got));
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strchr(buf, '\n') != NULL)
			break;
	}
	close(fds[0]);
	/* the child may still be writing when we stop reading early: it gets
	 * EPIPE/SIGPIPE and exits */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			waited = -1;
			break;
		}
	}
	buf[strcspn(buf, "\n")] = '\0';
	*wstatus = waited == 0 ? status : -1;
	if (e != 0)
		return e;
	return buf[0] == '\0' ? VERSION_SILENT : 0;
}

static void probe_qemu(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "qemu", MBX_PROBE_UNAVAILABLE);
	char version[256];
	char *path = find_in_path(p, QEMU_NAME);
	int r, ws = -1;

	if (path == NULL) {
		set_detail(p, c, QEMU_NAME " not found in PATH");
		set_hint(p, c, "apt-get install qemu-system-x86");
		return;
	}
	r = run_version(path, version, sizeof(version), &ws);
	if (r == 0) {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "%s: %s", path, version);
		free(path);
		return;
	}
	if (r == VERSION_TIMEOUT)
		set_detail(p, c, "%s --version did not answer within %d s", path, QEMU_TIMEOUT_MS / 1000);
	else if (r == VERSION_SILENT && ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
		set_detail(p, c, "%s cannot be executed", path);
	else if (r == VERSION_SILENT && ws != -1 && WIFEXITED(ws))
		set_detail(p, c, "%s --version printed nothing (exit status %d)", path, WEXITSTATUS(ws));
	else if (r == VERSION_SILENT && ws != -1 && WIFSIGNALED(ws))
		set_detail(p, c, "%s --version printed nothing (killed by signal %d)", path, WTERMSIG(ws));
	else if (r == VERSION_SILENT)
		set_detail(p, c, "%s --version printed nothing", path);
	else
		set_detail(p, c, "cannot run %s: %s", path, strerror(r));
	set_hint(p, c, "check or reinstall it: apt-get install --reinstall qemu-system-x86");
	free(path);
}

/* The accelerator the microvm backend picks (mbx__vm_accel(), the same
 * decision it makes at VM start) and why. */
static void probe_vm_accel(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "vm-accelerator", MBX_PROBE_PARTIAL);
	const char *virt;
	int hw = cpu_has_virt(&virt), fd, e = 0;

	if (mbx__vm_accel() == MBX_VM_ACCEL_KVM) {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "KVM: the CPU has %s and /dev/kvm opens read-write", virt ? virt : "vmx/svm");
		return;
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		e = errno;
	else
		close(fd);
	if (!hw && e == ENOENT)
		set_detail(p, c, "TCG (software emulation, several times slower than KVM): the CPU shows no vmx/svm "
			   "and there is no /dev/kvm");
	else if (!hw)
		set_detail(p, c, "TCG (software emulation, several times slower than KVM): the CPU shows no vmx/svm "
			   "(a /dev/kvm without them is paravirtual and cannot boot a stock guest kernel)");
	else if (e != 0)
		set_detail(p, c, "TCG (software emulation, several times slower than KVM): the CPU has %s but "
			   "/dev/kvm: %s", virt, strerror(e));
	else
		set_detail(p, c, "TCG (software emulation, several times slower than KVM): /proc/cpuinfo or /dev/kvm "
			   "changed while they were read");
	if (!hw)
		set_hint(p, c, "a host with hardware virtualization (or nested virtualization enabled) runs "
			 "microVMs with KVM");
	else if (e == ENOENT)
		set_hint(p, c, "load the kvm_intel or kvm_amd module");
	else
		set_hint(p, c, "add this user to the kvm group (or give it rw access to /dev/kvm)");
}

/* The guest kernel and root image, found and verified exactly as the
 * backend does before a VM starts (src/backend/microvm/assets.c). */
static void probe_vm_assets(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "vm-assets", MBX_PROBE_UNAVAILABLE);
	struct mbx_vm_assets a = { NULL, NULL, NULL };
	const char *env = getenv("MIMOBOX_VM_DIR");
	const char *from = env && *env ? "MIMOBOX_VM_DIR" : "the build's default";
	mbx_error *e = NULL;

	if (mbx__vm_assets_find(&a, &e) == MBX_OK) {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "%s (%s): vmlinuz and rootfs.squashfs match their manifest (SHA-256)", a.dir, from);
		mbx__vm_assets_release(&a);
		return;
	}
	set_detail(p, c, "%s", e && mbx_error_message(e) ? mbx_error_message(e) : "out of memory");
	if (e && mbx_error_code(e) == MBX_ENOMEM)
		p->oom = 1;
	if (e && mbx_error_suggestion(e))
		set_hint(p, c, "%s", mbx_error_suggestion(e));
	mbx_error_free(e);
}

/*
 * QEMU's jail (src/backend/microvm/jail.c) is an os-backend sandbox of its
 * own, so it can be built exactly where the os backend's layers work for
 * this caller: the namespace, seccomp and Landlock checks above decide it,
 * and the limits ladder decides how its memory is bounded. Under KVM the
 * jail must also open /dev/kvm with its own uid: an unmapped one for a root
 * caller (only the device's "others" bits count), the caller's otherwise.
 */
static void probe_vmm_jail(mbx_probe *p)
{
	static const int needed[] = { C_USERNS, C_PIDNS, C_MNTNS, C_NETNS, C_IPCNS, C_UTSNS, C_SECCOMP, C_LANDLOCK };
	struct probe_check *c = add_check(p, "vmm-jail", MBX_PROBE_UNAVAILABLE);
	const char *rung, *limits, *kvm = "TCG: no device from the host";
	int partial = 0, abi = mbx_landlock_abi();
	struct stat st = { 0 };

	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		const struct probe_check *n = &p->checks[needed[i]];

		if (n->status == MBX_PROBE_UNAVAILABLE) {
			set_detail(p, c, "QEMU's jail cannot be built here: `%s` is unavailable (above), and the microvm "
				   "backend runs QEMU only inside an os-backend sandbox of its own", n->name);
			set_hint(p, c, "what makes the os backend available here makes the jail: %s",
				 n->hint ? n->hint : "see the check above");
			return;
		}
	}
	if (p->checks[C_CGROUP_V2].status != MBX_PROBE_UNAVAILABLE || p->checks[C_CGROUP_V1].status != MBX_PROBE_UNAVAILABLE) {
		int v2 = p->checks[C_CGROUP_V2].status != MBX_PROBE_UNAVAILABLE;

		rung = v2 ? "cgroup-v2" : "cgroup-v1";
		limits = p->checks[v2 ? C_CGROUP_V2 : C_CGROUP_V1].status == MBX_PROBE_OK
				 ? "memory (guest RAM + QEMU's own), tasks, CPU quota"
				 : "memory (guest RAM + QEMU's own), tasks; no CPU quota";
	} else {
		rung = "rlimit";
		limits = "RLIMIT_DATA per process, so TCG's translation buffer is sized (tb-size) to fit; no CPU quota";
		partial = 1;
	}
	if (p->checks[C_LANDLOCK].status == MBX_PROBE_PARTIAL)
		partial = 1;
	if (mbx__vm_accel() == MBX_VM_ACCEL_KVM) {
		int ok = stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode) &&
			 (geteuid() == 0 ? (st.st_mode & 0006) == 0006 : access("/dev/kvm", R_OK | W_OK) == 0);

		if (!ok) {
			set_detail(p, c, "QEMU's jail cannot open /dev/kvm (mode %04o, owner %u:%u; the jail runs as %s), "
				   "but the microvm backend chose KVM: every VM start would fail",
				   (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid,
				   geteuid() == 0 ? "an unmapped uid: only the \"others\" bits count" : "this user");
			set_hint(p, c, "give /dev/kvm mode 0666 (systemd's default udev rule)");
			return;
		}
		kvm = "KVM: /dev/kvm bound in, opened read-write";
	}
	c->status = partial ? MBX_PROBE_PARTIAL : MBX_PROBE_OK;
	set_detail(p, c, "QEMU runs in an os sandbox of its own: user, pid, mount, network (loopback only), IPC, "
		   "UTS%s namespaces; seccomp (the VMM program) and QEMU's -sandbox; Landlock ABI %d; no_new_privs, "
		   "no capabilities; limits rung %s: %s; as %s; %s",
		   p->checks[C_CGROUPNS].status == MBX_PROBE_OK ? ", cgroup" : "", abi, rung, limits,
		   geteuid() == 0 ? "an unmapped uid (its run and asset directories id-mapped in)" : "this user's uid",
		   kvm);
	if (partial)
		set_hint(p, c, "%s", p->checks[C_LANDLOCK].status == MBX_PROBE_PARTIAL
				     ? "Linux 6.2 or later gives Landlock ABI 3"
				     : "a cgroup rung bounds the jail as a whole (see the cgroup checks above)");
}

/* The wasm backend works when an engine can be made and compiles a tiny
 * module (the engine is then kept for the process). */
static void probe_wasmtime(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "wasmtime", MBX_PROBE_UNAVAILABLE);
#if MBX_FEATURE_WASM
	char *detail = NULL;

	if (mbx__wasm_probe(&detail) == MBX_OK)
		c->status = MBX_PROBE_OK;
	else
		set_hint(p, c, "see docs/wasm.md; MIMOBOX_WASM_POOLING=0 avoids the pooling allocator's address-space reservation");
	set_detail(p, c, "%s", detail ? detail : "out of memory");
	free(detail);
#else
	set_detail(p, c, "not built into this libmimobox");
	set_hint(p, c, "build with Wasmtime: scripts/wasmtime.sh, then meson setup -Dwasm=enabled");
#endif
}

/* The network policy `all` needs pasta (passt) and, for a caller who is not
 * root, /dev/net/tun it may open (docs/network.md). */
static void probe_pasta(mbx_probe *p)
{
	struct probe_check *c = add_check(p, "pasta", MBX_PROBE_UNAVAILABLE);
	static const char *const paths[] = { "/usr/bin/pasta", "/usr/local/bin/pasta", "/usr/sbin/pasta", NULL };
	const char *path = NULL;

	for (size_t i = 0; paths[i] && path == NULL; i++)
		if (access(paths[i], X_OK) == 0)
			path = paths[i];
	if (path == NULL) {
		set_detail(p, c, "pasta not found: network policy `all` is unavailable");
		set_hint(p, c, "apt-get install passt");
	} else if (geteuid() != 0 && access("/dev/net/tun", R_OK | W_OK) < 0) {
		set_detail(p, c, "%s, but /dev/net/tun cannot be opened by this user: network policy `all` is unavailable", path);
		set_hint(p, c, "give /dev/net/tun its usual mode 0666, or run as root");
	} else {
		c->status = MBX_PROBE_OK;
		set_detail(p, c, "%s: network policy `all` available", path);
	}
}

/* ---- backends ---- */

/* Appends a check's detail and hint to a verdict's reason ("; "-separated).
 * -1 (p->oom set, *reason freed) when memory ran out. */
static int add_reason(mbx_probe *p, char **reason, const struct probe_check *c)
{
	char *next = NULL;
	int n = asprintf(&next, "%s%s%s%s%s", *reason ? *reason : "", *reason ? "; " : "",
			 c->detail ? c->detail : c->name, c->hint ? ": " : "", c->hint ? c->hint : "");

	free(*reason);
	*reason = NULL;
	if (n < 0) {
		p->oom = 1;
		return -1;
	}
	*reason = next;
	return 0;
}

/* Why the os backend cannot run, or NULL (in p->os_reason). It needs user,
 * pid, mount, network, ipc and uts namespaces, seccomp and Landlock (any
 * ABI: a PARTIAL Landlock still confines the filesystem). When user
 * namespaces fail, the namespace checks after them say nothing new. */
static void os_verdict(mbx_probe *p)
{
	static const int needed[] = { C_USERNS, C_PIDNS, C_MNTNS, C_NETNS, C_IPCNS, C_UTSNS, C_SECCOMP, C_LANDLOCK };
	char *reason = NULL;
	size_t i;

	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		const struct probe_check *c = &p->checks[needed[i]];

		if (c->status != MBX_PROBE_UNAVAILABLE)
			continue;
		if (needed[i] >= C_PIDNS && needed[i] <= C_UTSNS && p->checks[C_USERNS].status != MBX_PROBE_OK)
			continue;
		if (add_reason(p, &reason, c) < 0)
			return;
	}
	p->os_reason = reason;
}

/* What the microvm backend lacks here, or NULL (in p->vm_reason): QEMU,
 * verified guest assets and a jail for QEMU (PARTIAL, the rlimit rung, is
 * enough). The accelerator only decides the speed. */
static void vm_verdict(mbx_probe *p)
{
	static const int needed[] = { C_QEMU, C_VM_ASSETS, C_VMM_JAIL };
	char *reason = NULL;

	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		const struct probe_check *c = &p->checks[needed[i]];

		if (c->status == MBX_PROBE_OK || (needed[i] == C_VMM_JAIL && c->status == MBX_PROBE_PARTIAL))
			continue;
		if (add_reason(p, &reason, c) < 0)
			return;
	}
	p->vm_reason = reason;
}

/* ---- public API ---- */

void mbx_probe_free(mbx_probe *probe)
{
	size_t i;

	if (probe == NULL)
		return;
	for (i = 0; i < probe->n; i++) {
		free(probe->checks[i].detail);
		free(probe->checks[i].hint);
	}
	free(probe->os_reason);
	free(probe->vm_reason);
	free(probe);
}

int mbx_probe_run(mbx_probe **out, mbx_error **err)
{
	mbx_probe *p;

	MBX_CHECK_ARG(out != NULL, err);
	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mbx__error_oom(err);
	probe_namespaces(p);
	probe_seccomp(p);
	probe_landlock(p);
	probe_nnp(p);
	probe_limits(p);
	probe_kvm(p);
	probe_qemu(p);
	probe_vm_accel(p);
	probe_vm_assets(p);
	probe_vmm_jail(p);
	probe_wasmtime(p);
	probe_pasta(p);
	if (!p->oom && p->n == C_COUNT)
		os_verdict(p);
	if (!p->oom && p->n == C_COUNT)
		vm_verdict(p);
	if (p->oom || p->n != C_COUNT) {
		mbx_probe_free(p);
		return mbx__error_oom(err);
	}
	*out = p;
	return MBX_OK;
}

size_t mbx_probe_count(const mbx_probe *probe)
{
	return probe ? probe->n : 0;
}

const char *mbx_probe_name(const mbx_probe *probe, size_t i)
{
	return probe && i < probe->n ? probe->checks[i].name : NULL;
}

mbx_probe_status_t mbx_probe_status(const mbx_probe *probe, size_t i)
{
	return probe && i < probe->n ? probe->checks[i].status : MBX_PROBE_UNAVAILABLE;
}

const char *mbx_probe_detail(const mbx_probe *probe, size_t i)
{
	if (probe == NULL || i >= probe->n)
		return NULL;
	return probe->checks[i].detail ? probe->checks[i].detail : "";
}

const char *mbx_probe_hint(const mbx_probe *probe, size_t i)
{
	return probe && i < probe->n ? probe->checks[i].hint : NULL;
}

int mbx_probe_backend(const mbx_probe *probe, mbx_isolation_t isolation, const char **reason)
{
	const char *why;
	int ok = 0;

	switch (isolation) {
	case MBX_ISOLATION_OS:
		if (probe == NULL)
			why = "no probe report";
		else if (probe->os_reason != NULL)
			why = probe->os_reason;
		else
			why = NULL;
		ok = why == NULL;
		break;
	case MBX_ISOLATION_WASM:
		if (probe == NULL)
			why = "no probe report";
		else if (probe->n > C_WASMTIME && probe->checks[C_WASMTIME].status == MBX_PROBE_OK)
			why = NULL;
		else if (probe->n > C_WASMTIME)
			why = probe->checks[C_WASMTIME].detail;
		else
			why = "the wasm backend is not part of this build";
		ok = why == NULL;
		break;
	case MBX_ISOLATION_MICROVM:
		/* Its prerequisites: QEMU and guest assets that verify. */
		if (probe == NULL)
			why = "no probe report";
		else
			why = probe->vm_reason;
		ok = why == NULL;
		break;
	case MBX_ISOLATION_AUTO:
		why = "auto is a routing choice, not a backend: ask about os, wasm or microvm";
		break;
	default:
		why = "unknown isolation level";
		break;
	}
	if (reason != NULL)
		*reason = why;
	return ok;
}
