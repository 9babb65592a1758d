/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-os: start-up and execute latency of the os backend, measured through
 * the public API only, against a plain fork+exec peer in the same process.
 *
 * Modes, all run once per iteration in an order that rotates from one
 * iteration to the next, so that machine noise hits every mode alike:
 *
 *   cold       mbx_sandbox_new + mbx_sandbox_exec(PROGRAM) + mbx_sandbox_free,
 *              also reported per phase (new, first exec, free)
 *   warm       mbx_sandbox_exec(PROGRAM) in one sandbox kept alive throughout
 *   fork+exec  fork, execve(PROGRAM), waitpid: the peer of the warm goal
 *   posix_spawn  posix_spawn(PROGRAM), waitpid: the peer of the warm goal
 *              against posix_spawn
 *   ns floor   clone() with the six namespaces of a sandbox (user, pid,
 *              mount, network, IPC, UTS), execve(PROGRAM) in the child,
 *              waitpid: what the kernel alone takes to run a program in
 *              those namespaces and tear them down, no mount, cgroup,
 *              filter or agent (the floor under the cold goal)
 *   round trip one byte through a pipe to a child process and one back
 *              through another: two wake-ups of a sleeping process, placed
 *              by the scheduler as it places the host, the agent and the
 *              mini-init of a warm execute (which takes four more than
 *              posix_spawn: the execute to the agent and on to the
 *              mini-init, the status back to the agent and the answer to
 *              the host); the unit in which the warm execute's gap over
 *              posix_spawn is reported
 *
 * then, in rounds of its own (its teardown spilled into the modes after it):
 *
 *   layers floor  the cheapest sandbox with every layer of a cold one
 *              (those namespaces and the cgroup one, a tmpfs root with /usr
 *              read-only, /dev/null and /proc, pivot_root, a host name,
 *              no_new_privs, Landlock, no capabilities, rlimits, seccomp),
 *              made by one child with no agent, protocol, cgroup or state,
 *              execve(PROGRAM) as its pid 1, waitpid: the floor of what a
 *              sandbox made at call time adds to the namespaces
 *
 * and, in rounds of their own after those (--file-mib MIB, 0: none), the
 * file transfers of the live sandbox against `cat` doing the same copy on
 * the host, each pair alternating which goes first:
 *
 *   write      mbx_sandbox_write_file_from_fd of MIB MiB from a pipe that a
 *              generator process fills, against `cat` copying the same from
 *              such a pipe into a file of a tmpfs (/dev/shm, as the
 *              sandbox's storage is one; --peer-dir to change)
 *   read       mbx_sandbox_read_file_to_fd of that file to /dev/null,
 *              against `cat FILE > /dev/null` of the peer's file
 *
 * The first iterations are warm-up and are not counted. Output: a plain
 * table (P50, P90, P99, mean, min, max per mode, in ms) and the ratios
 * warm/fork+exec; --json prints the same as one JSON object instead, and
 * --csv FILE writes every sample. The program only reports; it has no
 * pass/fail exit status beyond "the measurement itself failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>

#include <mbx/mbx.h>

extern char **environ;

#define DEFAULT_ITERATIONS 300
#define DEFAULT_WARMUP     20

/* Goals from the benchmark issues, checked in the report only. */
#define GOAL_WARM_OVER_FORKEXEC 1.5
#define GOAL_WARM_OVER_SPAWN 1.1
#define GOAL_COLD_MS 2.0     /* new + first exec + free, P50 */
#define GOAL_FILE_OVER_CAT 0.8 /* throughput, both ways: cat's time / ours */
#define DEFAULT_FILE_MIB 64
#define DEFAULT_FILE_ROUNDS 20

enum series {
	S_COLD,		/* new + first exec + free */
	S_COLD_NEW,
	S_COLD_EXEC,
	S_COLD_FREE,
	S_COLD_CPU,	/* CPU time of the process and its reaped children (the agent) */
	S_WARM,
	S_FORKEXEC,
	S_SPAWN,
	S_WARM_LIB,	/* mbx_result_elapsed_us of the warm executes */
	S_FLOOR,	/* clone with the six namespaces + exec + wait */
	S_LFLOOR,	/* the cheapest sandbox with every layer, one process, no agent */
	S_WAKE,		/* a one-byte round trip to a child process through two pipes */
	S_COUNT,
};

/* The file transfer series (--file-mib), in rounds of their own. */
enum fseries {
	F_WRITE,
	F_CAT_WRITE,
	F_READ,
	F_CAT_READ,
	F_COUNT,
};

static const char *const fseries_name[F_COUNT] = {
	[F_WRITE] = "write_file_from_fd",
	[F_CAT_WRITE] = "cat pipe > file",
	[F_READ] = "read_file_to_fd",
	[F_CAT_READ] = "cat file > /dev/null",
};

static const char *const fseries_key[F_COUNT] = {
	[F_WRITE] = "file_write",
	[F_CAT_WRITE] = "cat_write",
	[F_READ] = "file_read",
	[F_CAT_READ] = "cat_read",
};

static const char *const series_name[S_COUNT] = {
	[S_COLD] = "cold (new+exec+free)",
	[S_COLD_NEW] = "  cold: new",
	[S_COLD_EXEC] = "  cold: first exec",
	[S_COLD_FREE] = "  cold: free",
	[S_COLD_CPU] = "  cold: CPU time",
	[S_WARM] = "warm exec",
	[S_FORKEXEC] = "fork+exec+wait",
	[S_SPAWN] = "posix_spawn+wait",
	[S_WARM_LIB] = "  warm: result elapsed",
	[S_FLOOR] = "ns floor (clone+exec)",
	[S_LFLOOR] = "layers floor (no agent)",
	[S_WAKE] = "pipe round trip",
};

static const char *const series_key[S_COUNT] = {
	[S_COLD] = "cold",
	[S_COLD_NEW] = "cold_new",
	[S_COLD_EXEC] = "cold_first_exec",
	[S_COLD_FREE] = "cold_free",
	[S_COLD_CPU] = "cold_cpu",
	[S_WARM] = "warm",
	[S_FORKEXEC] = "fork_exec",
	[S_SPAWN] = "posix_spawn",
	[S_WARM_LIB] = "warm_result_elapsed",
	[S_FLOOR] = "ns_floor",
	[S_LFLOOR] = "layers_floor",
	[S_WAKE] = "round_trip",
};

struct stats {
	double p50, p90, p99, mean, min, max; /* microseconds */
};

struct opts {
	int iterations;
	int warmup;
	int json;
	const char *csv;
	const char *program;
	int file_mib;           /* 0: no file transfers */
	int file_rounds;
	const char *peer_dir;
	int trace;
	int cold_only;
	int host_procs;         /* idle processes added to the host first (--host-procs) */
};

/* --trace: the library's phase times of the cold sandboxes, logged at
 * MBX_LOG_DEBUG as "phase NAME NS ns" (src/backend/linux/linux.c). */
#define MAX_PHASES 64
struct phases {
	int n;
	int iterations;
	int k;        /* the current sample index; < 0: not recording */
	char name[MAX_PHASES][48];
	uint64_t *ns[MAX_PHASES]; /* per iteration, summed when a phase repeats */
};

static struct phases g_phases;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static __attribute__((noreturn)) void die_mbx(const char *what, int rc, mbx_error *err)
{
	fprintf(stderr, "bench-os: %s: %s (%s)\n", what, err ? mbx_error_message(err) : "no detail",
		mbx_error_code_name(rc));
	if (err && mbx_error_suggestion(err))
		fprintf(stderr, "bench-os: hint: %s\n", mbx_error_suggestion(err));
	mbx_error_free(err);
	exit(1);
}

static __attribute__((noreturn)) void die_errno(const char *what)
{
	fprintf(stderr, "bench-os: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void check_result(const char *what, const mbx_result *res)
{
	if (mbx_result_exit_code(res) != 0 || mbx_result_signal(res) != 0 || mbx_result_timed_out(res)) {
		fprintf(stderr, "bench-os: %s: payload failed (exit %d, signal %d, timed out %d)\n", what,
			mbx_result_exit_code(res), mbx_result_signal(res), mbx_result_timed_out(res));
		exit(1);
	}
}

static void check_status(const char *what, int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-os: %s: payload failed (status 0x%x)\n", what, (unsigned)status);
		exit(1);
	}
}

/* Waits for the child `pid`; its wait status. */
static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die_errno("waitpid");
	return status;
}

/* ---- the modes; each returns its wall time in ns ---- */

static void phase_log(mbx_log_level_t level, const char *message, void *userdata)
{
	struct phases *p = userdata;
	char name[48];
	unsigned long long ns;
	int i;

	(void)level;
	if (p->k < 0 || sscanf(message, "phase %47s %llu ns", name, &ns) != 2)
		return;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			break;
	if (i == p->n) {
		if (p->n == MAX_PHASES)
			return;
		snprintf(p->name[i], sizeof(p->name[i]), "%s", name);
		p->ns[i] = calloc((size_t)p->iterations, sizeof(uint64_t));
		if (p->ns[i] == NULL)
			die_errno("calloc");
		p->n++;
	}
	p->ns[i][p->k] += ns;
}

static uint64_t cpu_ns(void)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	return ((uint64_t)self.ru_utime.tv_sec + (uint64_t)self.ru_stime.tv_sec + (uint64_t)kids.ru_utime.tv_sec +
		(uint64_t)kids.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)self.ru_utime.tv_usec + (uint64_t)self.ru_stime.tv_usec + (uint64_t)kids.ru_utime.tv_usec +
		(uint64_t)kids.ru_stime.tv_usec) * 1000u;
}

/* phase[3] receives the CPU time of the process and its reaped children. */
static uint64_t run_cold(const char *const *argv, const mbx_config *cfg, uint64_t phase[4])
{
	mbx_sandbox *sb = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	uint64_t t0, t1, t2, t3, c0 = cpu_ns();
	int rc;

	t0 = now_ns();
	rc = mbx_sandbox_new(&sb, cfg, &err);
	t1 = now_ns();
	if (rc != MBX_OK)
		die_mbx("cold: mbx_sandbox_new", rc, err);
	rc = mbx_sandbox_exec(sb, argv, NULL, &res, &err);
	t2 = now_ns();
	if (rc != MBX_OK)
		die_mbx("cold: mbx_sandbox_exec", rc, err);
	mbx_sandbox_free(sb);
	t3 = now_ns();
	phase[3] = cpu_ns() - c0;
	check_result("cold", res);
	mbx_result_free(res);
	phase[0] = t1 - t0;
	phase[1] = t2 - t1;
	phase[2] = t3 - t2;
	return t3 - t0;
}

static uint64_t run_warm(mbx_sandbox *sb, const char *const *argv, uint64_t *lib_us)
{
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	uint64_t t0, t1;
	int rc;

	t0 = now_ns();
	rc = mbx_sandbox_exec(sb, argv, NULL, &res, &err);
	t1 = now_ns();
	if (rc != MBX_OK)
		die_mbx("warm: mbx_sandbox_exec", rc, err);
	check_result("warm", res);
	*lib_us = mbx_result_elapsed_us(res);
	mbx_result_free(res);
	return t1 - t0;
}

static uint64_t run_forkexec(const char *const *argv)
{
	uint64_t t0, t1;
	int status;
	pid_t pid;

	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		die_errno("fork");
	if (pid == 0) {
		execve(argv[0], (char *const *)argv, environ);
		_exit(127);
	}
	status = wait_child(pid);
	t1 = now_ns();
	check_status("fork+exec", status);
	return t1 - t0;
}

static uint64_t run_spawn(const char *const *argv)
{
	uint64_t t0, t1;
	int status, rc;
	pid_t pid;

	t0 = now_ns();
	rc = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
	if (rc != 0) {
		errno = rc;
		die_errno("posix_spawn");
	}
	status = wait_child(pid);
	t1 = now_ns();
	check_status("posix_spawn", status);
	return t1 - t0;
}

/* The kernel's share of a cold sandbox: a child in new user, pid, mount,
 * network, IPC and UTS namespaces that execs the program at once (as the
 * overflow uid: no id map is written), and its reaping, which waits for the
 * teardown of its pid namespace. */
static uint64_t run_nsfloor(const char *const *argv)
{
	const unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
				    CLONE_NEWUTS | SIGCHLD;
	uint64_t t0, t1;
	int status;
	long pid;

	t0 = now_ns();
	pid = syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
	if (pid < 0)
		die_errno("clone with the sandbox namespaces");
	if (pid == 0) {
		execve(argv[0], (char *const *)argv, environ);
		_exit(127);
	}
	status = wait_child((pid_t)pid);
	t1 = now_ns();
	check_status("ns floor", status);
	return t1 - t0;
}

/* The layers' floor: the cheapest sandbox with every layer a cold sandbox
 * has, made at call time by one process with no agent, protocol, cgroup or
 * state: a child cloned into the seven namespaces (user, pid, mount,
 * network, IPC, UTS, cgroup), its id map written by the parent, a tmpfs
 * root with /usr bound read-only, the merged-/usr links, /dev/null and
 * /proc, pivot_root with the host's tree dropped, a host name,
 * no_new_privs, a Landlock ruleset (read and execute beneath /, /dev/null
 * writable), no capabilities (securebits: root gets none at exec), limits
 * as rlimits (the cheapest rung of the library's ladder), a seccomp
 * filter, then execve(PROGRAM) as its pid 1; the parent reaps it. Each
 * layer at its cheapest, so no sandbox with these layers made at call time
 * is expected below it. A step that fails says which and exits with 1. */
#if defined(__x86_64__)
#define LF_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define LF_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define LF_ARCH AUDIT_ARCH_RISCV64
#else
#error "bench-os: add the AUDIT_ARCH of this architecture"
#endif

static __attribute__((noreturn)) void lf_child(int sync_fd, const char *const *argv)
{
#define LF_TRY(step, expr)                                                                   \
	do {                                                                                 \
		if ((expr) < 0) {                                                            \
			fprintf(stderr, "bench-os: layers floor: %s: %s\n", step, strerror(errno)); \
			_exit(1);                                                            \
		}                                                                            \
	} while (0)
	static const char *const links[][2] = {
		{ "usr/bin", "/tmp/bin" }, { "usr/lib", "/tmp/lib" }, { "usr/lib64", "/tmp/lib64" },
		{ "usr/sbin", "/tmp/sbin" },
	};
	struct landlock_ruleset_attr ra = {
		.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
				     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
				     LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
				     LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
				     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
				     LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
				     LANDLOCK_ACCESS_FS_MAKE_SYM,
	};
	struct landlock_path_beneath_attr pb = {
		.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE |
				  LANDLOCK_ACCESS_FS_READ_DIR,
	};
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LF_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kexec_load, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(insns) / sizeof(insns[0]), .filter = insns };
	struct __user_cap_header_struct ch = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct cd[2] = { { 0 } };
	struct rlimit rl = { 1024, 1024 };
	char c;
	int fd, rs;

	/* The id map first, and the ids it maps: nothing can be created on the
	 * root by ids the map does not have. */
	LF_TRY("id map", read(sync_fd, &c, 1));
	LF_TRY("id map", setresgid(0, 0, 0));
	LF_TRY("id map", setresuid(0, 0, 0));
	LF_TRY("private mounts", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	LF_TRY("tmpfs root", mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
	LF_TRY("root entries", mkdir("/tmp/usr", 0755));
	LF_TRY("root entries", mkdir("/tmp/proc", 0755));
	LF_TRY("root entries", mkdir("/tmp/dev", 0755));
	LF_TRY("root entries", mkdir("/tmp/old", 0755));
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		LF_TRY("root entries", symlink(links[i][0], links[i][1]));
	LF_TRY("/usr bind", mount("/usr", "/tmp/usr", NULL, MS_BIND | MS_REC, NULL));
	LF_TRY("/usr read-only", mount(NULL, "/tmp/usr", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
	LF_TRY("/dev/null", fd = open("/tmp/dev/null", O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
	close(fd);
	LF_TRY("/dev/null", mount("/dev/null", "/tmp/dev/null", NULL, MS_BIND, NULL));
	LF_TRY("/proc", mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	LF_TRY("pivot_root", chdir("/tmp"));
	LF_TRY("pivot_root", syscall(SYS_pivot_root, ".", "old"));
	LF_TRY("host tree", umount2("/old", MNT_DETACH));
	LF_TRY("host tree", chdir("/"));
	LF_TRY("host name", sethostname("sandbox", 7));
	LF_TRY("no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	LF_TRY("landlock", rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0));
	LF_TRY("landlock", pb.parent_fd = open("/", O_PATH | O_CLOEXEC));
	LF_TRY("landlock", syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
	close(pb.parent_fd);
	pb.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE;
	LF_TRY("landlock", pb.parent_fd = open("/dev/null", O_PATH | O_CLOEXEC));
	LF_TRY("landlock", syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
	close(pb.parent_fd);
	LF_TRY("landlock", syscall(SYS_landlock_restrict_self, rs, 0));
	close(rs);
	LF_TRY("capabilities", prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
						 SECBIT_NO_SETUID_FIXUP_LOCKED, 0, 0, 0));
	LF_TRY("capabilities", syscall(SYS_capset, &ch, cd));
	LF_TRY("rlimits", setrlimit(RLIMIT_NPROC, &rl));
	LF_TRY("seccomp", prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0));
	execve(argv[0], (char *const *)argv, environ);
	fprintf(stderr, "bench-os: layers floor: execve %s: %s\n", argv[0], strerror(errno));
	_exit(1);
#undef LF_TRY
}

static uint64_t run_layersfloor(const char *const *argv)
{
	const unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
				    CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD;
	/* Root's sandbox is nobody on the host, as the library's is an
	 * unprivileged uid of its own; anyone else's is itself. */
	unsigned outer_uid = geteuid() == 0 ? 65534 : (unsigned)geteuid();
	unsigned outer_gid = geteuid() == 0 ? 65534 : (unsigned)getegid();
	char path[64], map[64];
	uint64_t t0, t1;
	int status, sync[2], fd, n;
	long pid;

	t0 = now_ns();
	if (pipe2(sync, O_CLOEXEC) < 0)
		die_errno("pipe2");
	pid = syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
	if (pid < 0)
		die_errno("clone with the sandbox namespaces");
	if (pid == 0) {
		close(sync[1]);
		lf_child(sync[0], argv);
	}
	close(sync[0]);
	static const char *const files[] = { "setgroups", "uid_map", "gid_map" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/%ld/%s", pid, files[i]);
		n = i == 0 ? snprintf(map, sizeof(map), "deny")
			   : snprintf(map, sizeof(map), "0 %u 1\n", i == 1 ? outer_uid : outer_gid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, map, (size_t)n) != n)
			die_errno(path);
		close(fd);
	}
	close(sync[1]); /* the child's read returns: its map is there */
	status = wait_child((pid_t)pid);
	t1 = now_ns();
	check_status("layers floor", status);
	return t1 - t0;
}

/* The round trip's child: echoes each byte of to[0] on back[1] until end
 * of file. */
struct echo {
	pid_t pid;
	int to, back; /* our ends */
};

static void echo_start(struct echo *e)
{
	int to[2], back[2];

	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(back, O_CLOEXEC) < 0)
		die_errno("pipe2");
	e->pid = fork();
	if (e->pid < 0)
		die_errno("fork");
	if (e->pid == 0) {
		char c;

		close(to[1]);
		close(back[0]);
		while (read(to[0], &c, 1) == 1)
			if (write(back[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(to[0]);
	close(back[1]);
	e->to = to[1];
	e->back = back[0];
}

static uint64_t run_round_trip(const struct echo *e)
{
	uint64_t t0, t1;
	char c = 'x';

	t0 = now_ns();
	if (write(e->to, &c, 1) != 1 || read(e->back, &c, 1) != 1)
		die_errno("round trip");
	t1 = now_ns();
	return t1 - t0;
}

static void echo_stop(struct echo *e)
{
	close(e->to);
	close(e->back);
	(void)wait_child(e->pid);
}

/* ---- file transfers ---- */

/* A process writing `size` bytes (64 KiB writes) into a pipe; returns the
 * pipe's read end. */
static int feeder(size_t size, pid_t *pid)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		die_errno("pipe");
	*pid = fork();
	if (*pid < 0)
		die_errno("fork");
	if (*pid == 0) {
		static char buf[1 << 16];

		memset(buf, 'x', sizeof(buf));
		while (size > 0) {
			size_t n = size < sizeof(buf) ? size : sizeof(buf);

			if (write(p[1], buf, n) != (ssize_t)n)
				_exit(1);
			size -= n;
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static void reap(pid_t pid, const char *what)
{
	check_status(what, wait_child(pid));
}

/* `cat` with stdin and stdout given; its wall time in ns, from the fork. */
static uint64_t run_cat(int in, int out)
{
	uint64_t t0 = now_ns();
	pid_t pid = fork();

	if (pid < 0)
		die_errno("fork");
	if (pid == 0) {
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0)
			_exit(126);
		execlp("cat", "cat", (char *)NULL);
		_exit(127);
	}
	reap(pid, "cat");
	return now_ns() - t0;
}

static uint64_t run_file_write(mbx_sandbox *sb, size_t size)
{
	mbx_error *err = NULL;
	pid_t gen;
	int in = feeder(size, &gen), rc;
	uint64_t t0 = now_ns(), t;

	rc = mbx_sandbox_write_file_from_fd(sb, "bench-file", in, 0644, &err);
	t = now_ns() - t0;
	if (rc != MBX_OK)
		die_mbx("mbx_sandbox_write_file_from_fd", rc, err);
	close(in);
	reap(gen, "generator");
	return t;
}

static uint64_t run_cat_write(const char *path, size_t size)
{
	pid_t gen;
	int in = feeder(size, &gen), out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint64_t t;

	if (out < 0)
		die_errno(path);
	t = run_cat(in, out);
	close(in);
	close(out);
	reap(gen, "generator");
	return t;
}

static uint64_t run_file_read(mbx_sandbox *sb)
{
	mbx_error *err = NULL;
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC), rc;
	uint64_t t0 = now_ns(), t;

	if (out < 0)
		die_errno("/dev/null");
	rc = mbx_sandbox_read_file_to_fd(sb, "bench-file", out, &err);
	t = now_ns() - t0;
	if (rc != MBX_OK)
		die_mbx("mbx_sandbox_read_file_to_fd", rc, err);
	close(out);
	return t;
}

static uint64_t run_cat_read(const char *path)
{
	int in = open(path, O_RDONLY | O_CLOEXEC), out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	uint64_t t;

	if (in < 0 || out < 0)
		die_errno(path);
	t = run_cat(in, out);
	close(in);
	close(out);
	return t;
}

/* ---- statistics ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/* Summary in us: scale is 1e-3 for samples in ns, 1 for samples in us. */
static struct stats summarize(const uint64_t *samples, size_t n, double scale)
{
	struct stats s = { 0 };
	uint64_t *v = malloc(n * sizeof(*v));
	double sum = 0;

	if (v == NULL)
		die_errno("malloc");
	memcpy(v, samples, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	s.p50 = (double)percentile(v, n, 50) * scale;
	s.p90 = (double)percentile(v, n, 90) * scale;
	s.p99 = (double)percentile(v, n, 99) * scale;
	s.mean = sum / (double)n * scale;
	s.min = (double)v[0] * scale;
	s.max = (double)v[n - 1] * scale;
	free(v);
	return s;
}

/* ---- output ---- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void layer_list(uint32_t bits, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < 32 && off < len; i++) {
		const char *name = mbx_layer_name((uint32_t)1 << i);

		if ((bits & ((uint32_t)1 << i)) && name)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", name);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-os [-n ITERATIONS] [-w WARMUP] [--json] [--csv FILE] [--program PATH] [--file-mib MIB]\n"
		"                [--file-rounds N] [--peer-dir DIR] [--trace] [--cold-only]\n"
		"\n"
		"Measures the os backend through the public API: cold (new + first exec + free,\n"
		"with its phases), warm (exec in a live sandbox), and plain fork+exec and\n"
		"posix_spawn of the same program as peers, interleaved per iteration.\n"
		"\n"
		"  -n, --iterations N  measured iterations per mode (default %d)\n"
		"  -w, --warmup N      uncounted iterations first (default %d)\n"
		"  -p, --program PATH  absolute path of the payload (default /bin/true)\n"
		"      --file-mib MIB  size of the file transfers against cat (default %d, 0: none)\n"
		"      --file-rounds N rounds of file transfers (default %d)\n"
		"      --peer-dir DIR  where cat writes its copy (default /dev/shm, a tmpfs)\n"
		"      --json          print one JSON object instead of the table\n"
		"      --csv FILE      write every sample (microseconds) to FILE\n"
		"      --trace         also time the phases of the cold sandboxes' creation and\n"
		"                      destruction (the library's debug log) and report them\n"
		"      --cold-only     run the cold mode only (e.g. under perf record); table output\n"
		"      --host-procs N  start N idle processes on the host first, as a busy host has\n"
		"                      (what walks every process of the host shows; default 0)\n"
		"  -h, --help          show this help\n",
		DEFAULT_ITERATIONS, DEFAULT_WARMUP, DEFAULT_FILE_MIB, DEFAULT_FILE_ROUNDS);
}

static int parse_int(const char *s, int min, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > 10000000) {
		fprintf(stderr, "bench-os: bad %s `%s`\n", what, s);
		exit(2);
	}
	return (int)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "iterations", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "program", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", required_argument, NULL, 'c' },
		{ "file-mib", required_argument, NULL, 'f' },
		{ "file-rounds", required_argument, NULL, 'r' },
		{ "peer-dir", required_argument, NULL, 'd' },
		{ "trace", no_argument, NULL, 't' },
		{ "cold-only", no_argument, NULL, 'o' },
		{ "host-procs", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->iterations = DEFAULT_ITERATIONS;
	o->warmup = DEFAULT_WARMUP;
	o->json = 0;
	o->csv = NULL;
	o->program = "/bin/true";
	o->file_mib = DEFAULT_FILE_MIB;
	o->file_rounds = DEFAULT_FILE_ROUNDS;
	o->peer_dir = "/dev/shm";
	o->trace = 0;
	o->cold_only = 0;
	o->host_procs = 0;
	while ((c = getopt_long(argc, argv, "n:w:p:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->iterations = parse_int(optarg, 1, "iteration count"); break;
		case 'w': o->warmup = parse_int(optarg, 0, "warm-up count"); break;
		case 'p': o->program = optarg; break;
		case 'j': o->json = 1; break;
		case 'c': o->csv = optarg; break;
		case 'f': o->file_mib = parse_int(optarg, 0, "file size"); break;
		case 'r': o->file_rounds = parse_int(optarg, 1, "file round count"); break;
		case 'd': o->peer_dir = optarg; break;
		case 't': o->trace = 1; break;
		case 'o': o->cold_only = 1; break;
		case 'H': o->host_procs = parse_int(optarg, 0, "host process count"); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc || (o->cold_only && (o->json || o->csv))) {
		usage(stderr);
		exit(2);
	}
	if (o->program[0] != '/' || access(o->program, X_OK) != 0) {
		fprintf(stderr, "bench-os: `%s` is not an absolute path to an executable\n", o->program);
		exit(2);
	}
}

/* --host-procs: n children that wait for the end of the pipe they share
 * (this process's exit, or stop_host_procs) and die with it. */
static int start_host_procs(int n)
{
	int p[2];

	if (n == 0)
		return -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		die_errno("pipe2");
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		char c;

		if (pid < 0)
			die_errno("fork (--host-procs)");
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			close(p[1]);
			while (read(p[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
	}
	close(p[0]);
	return p[1];
}

static void stop_host_procs(int fd)
{
	if (fd < 0)
		return;
	close(fd);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct stats st[S_COUNT];
	uint64_t *samples[S_COUNT];
	uint64_t first_new = 0, first_total = 0;
	mbx_sandbox *warm_sb = NULL;
	struct echo echo;
	mbx_config *cold_cfg = NULL;
	mbx_error *err = NULL;
	struct utsname uts;
	char layers[512];
	const char *pargv[2];
	int rc, total, host_procs_fd;

	parse_args(argc, argv, &o);
	host_procs_fd = start_host_procs(o.host_procs);
	pargv[0] = o.program;
	pargv[1] = NULL;
	total = o.warmup + o.iterations;
	for (int s = 0; s < S_COUNT; s++) {
		samples[s] = calloc((size_t)o.iterations, sizeof(uint64_t));
		if (samples[s] == NULL)
			die_errno("calloc");
	}

	g_phases.iterations = o.iterations;
	g_phases.k = -1;
	if (o.trace) {
		rc = mbx_config_new(&cold_cfg, &err);
		if (rc != MBX_OK)
			die_mbx("mbx_config_new", rc, err);
		mbx_config_set_log(cold_cfg, MBX_LOG_DEBUG, phase_log, &g_phases);
	}

	/* The very first sandbox of the process pays one-time costs (the agent
	 * image is loaded into a memfd once per process): report it apart. */
	{
		uint64_t phase[4];

		first_total = run_cold(pargv, cold_cfg, phase);
		first_new = phase[0];
	}

	rc = mbx_sandbox_new(&warm_sb, NULL, &err);
	if (rc != MBX_OK)
		die_mbx("warm: mbx_sandbox_new", rc, err);
	layer_list(mbx_sandbox_layers(warm_sb), layers, sizeof(layers));
	echo_start(&echo);

	for (int it = 0; it < total; it++) {
		int k = it - o.warmup; /* sample index; < 0 during warm-up */

		for (int j = 0; j < 6; j++) {
			uint64_t phase[4], lib_us = 0, t;

			if (o.cold_only && j > 0)
				break;
			switch (o.cold_only ? 0 : (it + j) % 6) {
			case 0:
				g_phases.k = k;
				t = run_cold(pargv, cold_cfg, phase);
				g_phases.k = -1;
				if (k >= 0) {
					samples[S_COLD][k] = t;
					samples[S_COLD_NEW][k] = phase[0];
					samples[S_COLD_EXEC][k] = phase[1];
					samples[S_COLD_FREE][k] = phase[2];
					samples[S_COLD_CPU][k] = phase[3];
				}
				break;
			case 1:
				t = run_warm(warm_sb, pargv, &lib_us);
				if (k >= 0) {
					samples[S_WARM][k] = t;
					samples[S_WARM_LIB][k] = lib_us;
				}
				break;
			case 2:
				t = run_forkexec(pargv);
				if (k >= 0)
					samples[S_FORKEXEC][k] = t;
				break;
			case 3:
				t = run_spawn(pargv);
				if (k >= 0)
					samples[S_SPAWN][k] = t;
				break;
			case 4:
				t = run_nsfloor(pargv);
				if (k >= 0)
					samples[S_FLOOR][k] = t;
				break;
			default:
				t = run_round_trip(&echo);
				if (k >= 0)
					samples[S_WAKE][k] = t;
				break;
			}
		}
	}

	/* The layers' floor, in rounds of its own: what it leaves the kernel
	 * to do after its exit (the host's mount tree it dropped, its network
	 * namespace) spilled into the modes after it in the rotation, a warm
	 * execute the most. */
	if (!o.cold_only)
		for (int it = 0; it < total; it++) {
			uint64_t t = run_layersfloor(pargv);

			if (it >= o.warmup)
				samples[S_LFLOOR][it - o.warmup] = t;
		}

	/* The file transfers, in rounds of their own: each pair alternates
	 * which goes first. */
	struct stats fst[F_COUNT];
	uint64_t *fsamples[F_COUNT] = { 0 };
	size_t fsize = (size_t)o.file_mib << 20;
	char peer_path[4096];

	if (o.file_mib > 0) {
		int frounds = o.file_rounds + 2; /* the first two are warm-up */

		snprintf(peer_path, sizeof(peer_path), "%s/bench-os-%d", o.peer_dir, (int)getpid());
		for (int f = 0; f < F_COUNT; f++) {
			fsamples[f] = calloc((size_t)o.file_rounds, sizeof(uint64_t));
			if (fsamples[f] == NULL)
				die_errno("calloc");
		}
		for (int it = 0; it < frounds; it++) {
			int k = it - 2;
			uint64_t t[F_COUNT];

			if (it % 2 == 0) {
				t[F_WRITE] = run_file_write(warm_sb, fsize);
				t[F_CAT_WRITE] = run_cat_write(peer_path, fsize);
				t[F_READ] = run_file_read(warm_sb);
				t[F_CAT_READ] = run_cat_read(peer_path);
			} else {
				t[F_CAT_WRITE] = run_cat_write(peer_path, fsize);
				t[F_WRITE] = run_file_write(warm_sb, fsize);
				t[F_CAT_READ] = run_cat_read(peer_path);
				t[F_READ] = run_file_read(warm_sb);
			}
			if (k >= 0)
				for (int f = 0; f < F_COUNT; f++)
					fsamples[f][k] = t[f];
		}
		unlink(peer_path);
		for (int f = 0; f < F_COUNT; f++)
			fst[f] = summarize(fsamples[f], (size_t)o.file_rounds, 1e-3);
	}

	for (int s = 0; s < S_COUNT; s++)
		st[s] = summarize(samples[s], (size_t)o.iterations, s == S_WARM_LIB ? 1.0 : 1e-3);

	if (o.csv) {
		FILE *f = fopen(o.csv, "w");

		if (f == NULL)
			die_errno(o.csv);
		fprintf(f, "iteration");
		for (int s = 0; s < S_COUNT; s++)
			fprintf(f, ",%s_us", series_key[s]);
		fputc('\n', f);
		for (int k = 0; k < o.iterations; k++) {
			fprintf(f, "%d", k);
			for (int s = 0; s < S_COUNT; s++)
				fprintf(f, ",%.1f", s == S_WARM_LIB ? (double)samples[s][k] : (double)samples[s][k] / 1e3);
			fputc('\n', f);
		}
		if (fclose(f) != 0)
			die_errno(o.csv);
	}

	double r50 = st[S_WARM].p50 / st[S_FORKEXEC].p50, r99 = st[S_WARM].p99 / st[S_FORKEXEC].p99;
	double s50 = st[S_WARM].p50 / st[S_SPAWN].p50, s99 = st[S_WARM].p99 / st[S_SPAWN].p99;
	double c50 = st[S_COLD].p50 / st[S_FORKEXEC].p50, c99 = st[S_COLD].p99 / st[S_FORKEXEC].p99;
	double f50 = st[S_COLD].p50 / st[S_FLOOR].p50, f99 = st[S_COLD].p99 / st[S_FLOOR].p99;
	double l50 = st[S_COLD].p50 / st[S_LFLOOR].p50, l99 = st[S_COLD].p99 / st[S_LFLOOR].p99;
	/* The warm execute's time over posix_spawn's, in round trips (two
	 * wake-ups each): about 2 when its four extra wake-ups are the gap. */
	double g50 = (st[S_WARM].p50 - st[S_SPAWN].p50) / st[S_WAKE].p50;
	const char *mech = mbx_sandbox_limits_mechanism(warm_sb);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (uname(&uts) < 0)
		memset(&uts, 0, sizeof(uts));

	if (o.json) {
		printf("{\n  \"tool\": \"bench-os\",\n  \"library_version\": ");
		json_str(mbx_version());
		printf(",\n  \"kernel\": ");
		json_str(uts.release);
		printf(",\n  \"cpus\": %ld,\n  \"uid\": %u,\n  \"host_procs_added\": %d,\n  \"program\": ", ncpu,
		       (unsigned)geteuid(), o.host_procs);
		json_str(o.program);
		printf(",\n  \"iterations\": %d,\n  \"warmup\": %d,\n  \"limits_mechanism\": ", o.iterations, o.warmup);
		json_str(mech);
		printf(",\n  \"layers\": ");
		json_str(layers);
		printf(",\n  \"first_sandbox_in_process_us\": {\"new\": %.1f, \"cold\": %.1f},\n",
		       (double)first_new / 1e3, (double)first_total / 1e3);
		printf("  \"unit\": \"us\",\n  \"modes\": {\n");
		for (int s = 0; s < S_COUNT; s++)
			printf("    \"%s\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"mean\": %.1f, \"min\": %.1f, \"max\": %.1f}%s\n",
			       series_key[s], st[s].p50, st[s].p90, st[s].p99, st[s].mean, st[s].min, st[s].max,
			       s + 1 < S_COUNT ? "," : "");
		printf("  },\n  \"ratios\": {\n");
		printf("    \"warm_over_fork_exec\": {\"p50\": %.3f, \"p99\": %.3f},\n", r50, r99);
		printf("    \"warm_over_posix_spawn\": {\"p50\": %.3f, \"p99\": %.3f},\n", s50, s99);
		printf("    \"cold_over_fork_exec\": {\"p50\": %.3f, \"p99\": %.3f},\n", c50, c99);
		printf("    \"cold_over_ns_floor\": {\"p50\": %.3f, \"p99\": %.3f},\n", f50, f99);
		printf("    \"cold_over_layers_floor\": {\"p50\": %.3f, \"p99\": %.3f},\n", l50, l99);
		printf("    \"warm_minus_posix_spawn_in_round_trips\": {\"p50\": %.2f}\n", g50);
		printf("  },\n");
		if (o.file_mib > 0) {
			printf("  \"files\": {\"mib\": %d, \"rounds\": %d, \"peer_dir\": ", o.file_mib, o.file_rounds);
			json_str(o.peer_dir);
			printf(", \"unit\": \"us\",\n");
			for (int f = 0; f < F_COUNT; f++)
				printf("    \"%s\": {\"p50\": %.1f, \"p99\": %.1f, \"mb_s_p50\": %.0f, \"mb_s_p99\": %.0f},\n",
				       fseries_key[f], fst[f].p50, fst[f].p99, (double)fsize / fst[f].p50,
				       (double)fsize / fst[f].p99);
			printf("    \"write_over_cat\": {\"p50\": %.3f, \"p99\": %.3f},\n", fst[F_CAT_WRITE].p50 / fst[F_WRITE].p50,
			       fst[F_CAT_WRITE].p99 / fst[F_WRITE].p99);
			printf("    \"read_over_cat\": {\"p50\": %.3f, \"p99\": %.3f}\n  },\n", fst[F_CAT_READ].p50 / fst[F_READ].p50,
			       fst[F_CAT_READ].p99 / fst[F_READ].p99);
		}
		printf("  \"goals\": {\"cold_p50_max_ms\": %.1f, \"cold_p50_met\": %s,\n", GOAL_COLD_MS,
		       st[S_COLD].p50 <= GOAL_COLD_MS * 1e3 ? "true" : "false");
		printf("            \"warm_over_fork_exec_max\": %.2f, \"warm_p50_met\": %s, \"warm_p99_met\": %s,\n",
		       GOAL_WARM_OVER_FORKEXEC, r50 <= GOAL_WARM_OVER_FORKEXEC ? "true" : "false",
		       r99 <= GOAL_WARM_OVER_FORKEXEC ? "true" : "false");
		printf("            \"warm_over_posix_spawn_max\": %.2f, \"warm_spawn_p50_met\": %s, \"warm_spawn_p99_met\": %s",
		       GOAL_WARM_OVER_SPAWN, s50 <= GOAL_WARM_OVER_SPAWN ? "true" : "false",
		       s99 <= GOAL_WARM_OVER_SPAWN ? "true" : "false");
		if (o.file_mib > 0) {
			double w50 = fst[F_CAT_WRITE].p50 / fst[F_WRITE].p50, w99 = fst[F_CAT_WRITE].p99 / fst[F_WRITE].p99;
			double d50 = fst[F_CAT_READ].p50 / fst[F_READ].p50, d99 = fst[F_CAT_READ].p99 / fst[F_READ].p99;

			printf(",\n            \"file_over_cat_min\": %.2f, \"write_p50_met\": %s, \"write_p99_met\": %s, "
			       "\"read_p50_met\": %s, \"read_p99_met\": %s",
			       GOAL_FILE_OVER_CAT, w50 >= GOAL_FILE_OVER_CAT ? "true" : "false",
			       w99 >= GOAL_FILE_OVER_CAT ? "true" : "false", d50 >= GOAL_FILE_OVER_CAT ? "true" : "false",
			       d99 >= GOAL_FILE_OVER_CAT ? "true" : "false");
		}
		printf("}\n}\n");
	} else {
		printf("bench-os: libmimobox %s, kernel %s, %ld CPUs, uid %u, limits via %s\n", mbx_version(), uts.release,
		       ncpu, (unsigned)geteuid(), mech);
		printf("payload %s, %d iterations per mode (+%d warm-up), modes interleaved\n", o.program, o.iterations,
		       o.warmup);
		printf("layers: %s\n", layers);
		if (o.host_procs)
			printf("%d idle processes added to the host (--host-procs)\n", o.host_procs);
		printf("\n");
		printf("%-24s %9s %9s %9s %9s %9s %9s\n", "mode (ms)", "P50", "P90", "P99", "mean", "min", "max");
		for (int s = 0; s < (o.cold_only ? S_WARM : S_COUNT); s++) /* stats are in us */
			printf("%-24s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", series_name[s], st[s].p50 / 1e3,
			       st[s].p90 / 1e3, st[s].p99 / 1e3, st[s].mean / 1e3, st[s].min / 1e3, st[s].max / 1e3);
		printf("\nfirst sandbox of the process (one-time costs, not counted above): new %.3f ms, cold %.3f ms\n",
		       (double)first_new / 1e6, (double)first_total / 1e6);
		if (o.cold_only)
			goto phases;
		printf("\nratios                    P50      P99\n");
		printf("warm / fork+exec      %8.2f %8.2f   goal <= %.1f: P50 %s, P99 %s\n", r50, r99, GOAL_WARM_OVER_FORKEXEC,
		       r50 <= GOAL_WARM_OVER_FORKEXEC ? "met" : "NOT met", r99 <= GOAL_WARM_OVER_FORKEXEC ? "met" : "NOT met");
		printf("warm / posix_spawn    %8.2f %8.2f   goal <= %.1f: P50 %s, P99 %s\n", s50, s99, GOAL_WARM_OVER_SPAWN,
		       s50 <= GOAL_WARM_OVER_SPAWN ? "met" : "NOT met", s99 <= GOAL_WARM_OVER_SPAWN ? "met" : "NOT met");
		printf("(warm - posix_spawn) / round trip %6.2f  (P50; a round trip is two wake-ups)\n", g50);
		printf("cold / fork+exec      %8.2f %8.2f\n", c50, c99);
		printf("cold / ns floor       %8.2f %8.2f   goal: cold P50 <= %.1f ms: %s (the floor alone: %.3f ms)\n", f50,
		       f99, GOAL_COLD_MS, st[S_COLD].p50 <= GOAL_COLD_MS * 1e3 ? "met" : "NOT met", st[S_FLOOR].p50 / 1e3);
		printf("cold / layers floor   %8.2f %8.2f   (the layers' floor alone: %.3f ms, %s the goal)\n", l50, l99,
		       st[S_LFLOOR].p50 / 1e3, st[S_LFLOOR].p50 <= GOAL_COLD_MS * 1e3 ? "within" : "above");
		if (o.file_mib > 0) {
			double w50 = fst[F_CAT_WRITE].p50 / fst[F_WRITE].p50, w99 = fst[F_CAT_WRITE].p99 / fst[F_WRITE].p99;
			double d50 = fst[F_CAT_READ].p50 / fst[F_READ].p50, d99 = fst[F_CAT_READ].p99 / fst[F_READ].p99;

			printf("\nfile transfers: %d MiB, %d rounds (+2 warm-up), cat's copy in %s\n", o.file_mib, o.file_rounds,
			       o.peer_dir);
			printf("%-24s %9s %9s %9s %9s\n", "transfer", "P50 ms", "P99 ms", "MB/s P50", "MB/s P99");
			for (int f = 0; f < F_COUNT; f++)
				printf("%-24s %9.2f %9.2f %9.0f %9.0f\n", fseries_name[f], fst[f].p50 / 1e3, fst[f].p99 / 1e3,
				       (double)fsize / fst[f].p50, (double)fsize / fst[f].p99);
			printf("\nthroughput ratios         P50      P99\n");
			printf("write / cat           %8.2f %8.2f   goal >= %.1f: P50 %s, P99 %s\n", w50, w99, GOAL_FILE_OVER_CAT,
			       w50 >= GOAL_FILE_OVER_CAT ? "met" : "NOT met", w99 >= GOAL_FILE_OVER_CAT ? "met" : "NOT met");
			printf("read / cat            %8.2f %8.2f   goal >= %.1f: P50 %s, P99 %s\n", d50, d99, GOAL_FILE_OVER_CAT,
			       d50 >= GOAL_FILE_OVER_CAT ? "met" : "NOT met", d99 >= GOAL_FILE_OVER_CAT ? "met" : "NOT met");
		}
phases:
		if (o.trace) {
			printf("\nphases of the cold sandboxes (ms; --trace)\n");
			printf("%-32s %9s %9s %9s\n", "phase", "P50", "P99", "mean");
			for (int i = 0; i < g_phases.n; i++) {
				struct stats ps = summarize(g_phases.ns[i], (size_t)o.iterations, 1e-3);

				printf("%-32s %9.3f %9.3f %9.3f\n", g_phases.name[i], ps.p50 / 1e3, ps.p99 / 1e3, ps.mean / 1e3);
			}
		}
	}

	echo_stop(&echo);
	mbx_sandbox_free(warm_sb);
	mbx_config_free(cold_cfg);
	stop_host_procs(host_procs_fd);
	for (int i = 0; i < g_phases.n; i++)
		free(g_phases.ns[i]);
	for (int s = 0; s < S_COUNT; s++)
		free(samples[s]);
	for (int f = 0; f < F_COUNT; f++)
		free(fsamples[f]);
	return 0;
}
