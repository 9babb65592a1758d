/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EXEC: one payload process tree. The child applies the payload layers in an
 * order where each step still has the privilege it needs:
 *
 *	setpgid (setsid with a terminal), stdio, chdir, rlimits
 *	drop the capability bounding set, lock securebits (needs CAP_SETPCAP)
 *	clear all capability sets
 *	no_new_privs
 *	Landlock restrict_self (needs no_new_privs)
 *	seccomp filters (last: they may forbid what the steps above use)
 *	execvp
 *
 * Under a spare mini-init (below, "the spare": an execute that finds the
 * sandbox idle), the steps that do not depend on the request are taken
 * before it comes, in the mini-init, which the program inherits them from:
 *
 *	mini-init: drop the capability bounding set, clear the ambient set,
 *	           lock securebits (its effective set stays)
 *	mini-init: no_new_privs, Landlock restrict_self
 *	mini-init: seccomp filters (none forbids a step below)
 *	program:   setpgid (setsid with a terminal), stdio, chdir, rlimits
 *	program:   clear all capability sets
 *	program:   execvp
 *
 * The program's steps open nothing by name (a terminal comes open from
 * the agent, /dev/null from the mini-init), so none runs into the
 * Landlock ruleset before its exec.
 *
 * A failing step writes {stage, errno} to a CLOEXEC pipe and exits; exec
 * closes that pipe, so EOF tells the agent the program is running. An
 * execute whose start the agent does not wait for (one-shot, no stdin, no
 * terminal) has no such pipe: a failing step leaves {stage, errno} in the
 * memory the program's process shares with its mini-init until its exec
 * (prog_failed), and the mini-init's status says it at the end. A spare's
 * failing step is that execute's error (spare_take).
 *
 * Every process runs under a mini-init: the agent clones it into a new,
 * nested pid namespace, where it is PID 1; it starts the program (PID 2, vfork-style),
 * reaps everything, and when the program ends reports its status and exits,
 * or, in the os backend, waits as the next spare (recycling, below).
 * The kernel then kills whatever the program left running, however it
 * daemonized, and killing the mini-init kills the whole tree. Processes of
 * other executes (a background server) are untouched.
 *
 * One-shot executes get the same: the agent (PID 1 of the sandbox, holding
 * capabilities in its namespaces) is then outside every payload's pid
 * namespace, so no payload can name it to prlimit, setpriority,
 * sched_setscheduler, kill or /proc/1/..., and setpriority(PRIO_USER) or
 * kill(-1) reach only the payload's own processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"
#include "platform/linux/syscalls.h"
#include "platform/linux/closefds.h"

static uint64_t oom_kills(const struct agent_state *st);
static void pipes_close(struct agent_pipes *p);

/* Kernel ABI values, spelled out so the agent builds against any libc
 * (it is linked statically, with musl where available) without kernel
 * headers. */
#define MBX_CAP_VERSION_3 0x20080522
#define MBX_SECCOMP_MODE_FILTER 2

struct mbx_cap_header {
	uint32_t version;
	int pid;
};

struct mbx_cap_data {
	uint32_t effective;
	uint32_t permitted;
	uint32_t inheritable;
};

struct mbx_sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};

struct mbx_sock_fprog {
	unsigned short len;
	struct mbx_sock_filter *filter;
};

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

/* Output frames waiting for the host beyond this stop the reading of
 * processes' output, so a slow host slows the payload instead of growing
 * memory. */
#define OUTQ_HIGH (1u << 20)

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A pipe of a process at its end: closed with the process, after its EXIT
 * has gone (agent_proc_service), not before; at once when there is no
 * room to keep it. */
static void retire_fd(struct agent_proc *p, int *fd)
{
	for (int i = 0; i < 3; i++)
		if (p->spent[i] < 0) {
			p->spent[i] = *fd;
			*fd = -1;
			return;
		}
	close_fd(fd);
}

/* The mini-init's report is in (or will never come): its pipe is retired
 * (`retire`) or closed; its socket (a mini-init that may be kept reports
 * there) stays with the process (spare_keep). */
static void status_drop(struct agent_proc *p, int retire)
{
	if (p->status_fd == p->spare_sock)
		p->status_fd = -1;
	else if (retire)
		retire_fd(p, &p->status_fd);
	else
		close_fd(&p->status_fd);
}

struct exec_req {
	char **argv;
	char **envp;
	char *cwd;
	void *block;            /* where argv, envp and cwd are (req_release) */
	uint64_t timeout_ms;    /* 0: none */
	uint64_t output_limit;
	uint64_t window;
	uint32_t flags;         /* MBX_XF_* */
	uint32_t rows, cols;
	int pass_fd;            /* -1, or a descriptor the host passed: the program's fd 3 */
};

uint64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Where a request's strings go: one block per request, the arrays of
 * pointers first, then the strings. A request that fits takes the arena
 * below (one request is parsed and held at a time per process: the agent's
 * EXEC, or a mini-init's), others one malloc. Per-string allocations cost
 * this agent a mapping and two page faults per execute (musl's allocator
 * maps and unmaps a group for a size class it holds nothing else of).
 */
static char req_arena[16u << 10] __attribute__((aligned(16)));
static int req_arena_busy;

static void req_release(struct exec_req *r)
{
	if (r->block == req_arena)
		req_arena_busy = 0;
	else
		free(r->block);
	r->block = NULL;
	r->argv = r->envp = NULL;
	r->cwd = NULL;
}

/* Copies the request out of the frame: the frame's memory is reused as soon
 * as the channel is read again. */
static int parse_exec(const struct agent_state *st, const struct mbx_frame *f, struct exec_req *r)
{
	static const char default_path[] = "PATH=/usr/bin:/bin";
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	size_t argc = 0, envc = 0, bytes = 0, need;
	char *sp;
	int rc;

	memset(r, 0, sizeof(*r));
	r->timeout_ms = 30000;
	r->output_limit = UINT64_MAX;
	r->window = 1u << 20;
	r->pass_fd = -1;
	/* Sizes first: the strings, NUL-free, and how many of each. */
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		if (tag != MBX_F_ARG && tag != MBX_F_ENV && tag != MBX_F_CWD)
			continue;
		if (memchr(v, '\0', n) != NULL)
			return -1;
		if (tag == MBX_F_ARG)
			argc++;
		else if (tag == MBX_F_ENV)
			envc++;
		bytes += (size_t)n + 1;
	}
	if (rc < 0 || argc == 0 || argc > 65536 || envc > 65536)
		return -1;
	need = (argc + 1 + envc + 2) * sizeof(char *) + bytes + sizeof(default_path);
	if (!req_arena_busy && need <= sizeof(req_arena)) {
		r->block = req_arena;
		req_arena_busy = 1;
	} else if ((r->block = malloc(need)) == NULL) {
		return -1;
	}
	r->argv = (char **)(void *)r->block;
	r->envp = r->argv + argc + 1;
	sp = (char *)(r->envp + envc + 2);
	argc = envc = 0;
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_ARG:
		case MBX_F_ENV:
		case MBX_F_CWD:
			memcpy(sp, v, n);
			sp[n] = '\0';
			if (tag == MBX_F_ARG)
				r->argv[argc++] = sp;
			else if (tag == MBX_F_ENV)
				r->envp[envc++] = sp;
			else
				r->cwd = sp;   /* the last one counts */
			sp += n + 1;
			break;
		case MBX_F_TIMEOUT_MS:
			if (mbx_field_u64(v, n, &r->timeout_ms) < 0)
				return -1;
			break;
		case MBX_F_OUTPUT_LIMIT:
			if (mbx_field_u64(v, n, &r->output_limit) < 0)
				return -1;
			break;
		case MBX_F_WINDOW:
			if (mbx_field_u64(v, n, &r->window) < 0)
				return -1;
			break;
		case MBX_F_EXEC_FLAGS:
			if (mbx_field_u32(v, n, &r->flags) < 0)
				return -1;
			break;
		case MBX_F_ROWS:
			if (mbx_field_u32(v, n, &r->rows) < 0)
				return -1;
			break;
		case MBX_F_COLS:
			if (mbx_field_u32(v, n, &r->cols) < 0)
				return -1;
			break;
		case MBX_F_FD: {
			uint32_t idx;

			/* An index into the descriptors that came with this
			 * message (os mode: the channel passes them). */
			if (mbx_field_u32(v, n, &idx) < 0 || idx >= st->nfds)
				return -1;
			r->pass_fd = st->fds[idx];
			break;
		}
		default:
			break;
		}
	}
	r->argv[argc] = NULL;
	if (envc == 0) {
		memcpy(sp, default_path, sizeof(default_path));
		r->envp[envc++] = sp;
	}
	r->envp[envc] = NULL;
	return 0;
}

/*
 * A start that failed: where its program's process wrote it for the
 * mini-init to put in its status (an execute without a report pipe). The
 * program's process shares the mini-init's memory until its exec
 * (start_program), so the mini-init finds it set once the clone returns.
 */
static struct mbx_start_report prog_failed;

/* Reports a failed step of a start and exits: on the report pipe when
 * there is one (fd >= 0), else in prog_failed. */
static void child_fail(int fd, int stage, int errnum)
{
	struct mbx_start_report rep = { stage, errnum };

	if (fd >= 0)
		(void)!write(fd, &rep, sizeof(rep));
	else
		prog_failed = rep;
	_exit(127);
}

/* The same for a step of the mini-init itself: without a report pipe, its
 * status says it (it exits right after, its program never started). */
static void init_fail(int rep_w, int status_w, int stage, int errnum)
{
	if (rep_w < 0) {
		struct mbx_exec_status out = { .start_stage = (int32_t)stage, .start_errno = errnum };

		(void)!write(status_w, &out, sizeof(out));
	}
	child_fail(rep_w, stage, errnum);
}

/* Empties the bounding set, so exec cannot give capabilities back to uid
 * 0. The effective set is untouched: a spare mini-init does this before
 * its request and keeps what it needs. */
static int drop_bounding_set(void)
{
	/* Capabilities are numbered without gaps up to the kernel's last one;
	 * EINVAL names the first beyond it, so every later one is too. */
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno != EINVAL)
			return -1;
		break;
	}
	return 0;
}

/* Clears the ambient set and locks securebits that make uid 0 an
 * ordinary user from here on: exec gives no capability back, setuid keeps
 * none. The effective set stays: a spare does this before its request and
 * keeps what it needs; its program inherits both. */
static int lock_capabilities(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
		     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
		     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0);
}

/* Drops every capability for good: the bounding set, the ambient set and
 * securebits (unless `prepared`: a spare did), then the effective,
 * permitted and inheritable sets. */
static int drop_capabilities(int prepared)
{
	struct mbx_cap_header hdr = { MBX_CAP_VERSION_3, 0 };
	struct mbx_cap_data data[2];

	if (!prepared && (drop_bounding_set() < 0 || lock_capabilities() < 0))
		return -1;
	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Installs the payload filters on the calling process: the extra one (the
 * memory guard) first, then the main one, the policy of record (the
 * stricter action wins anyway). 0, or -1 with errno set. */
static int install_filters(const struct agent_state *st)
{
	if (st->seccomp && st->seccomp_extra) {
		struct mbx_sock_fprog extra = {
			.len = (unsigned short)(st->seccomp_extra_len / sizeof(struct mbx_sock_filter)),
			.filter = (struct mbx_sock_filter *)st->seccomp_extra,
		};

		if (prctl(PR_SET_SECCOMP, MBX_SECCOMP_MODE_FILTER, &extra, 0, 0) < 0)
			return -1;
	}
	if (st->seccomp) {
		struct mbx_sock_fprog prog = {
			.len = (unsigned short)(st->seccomp_len / sizeof(struct mbx_sock_filter)),
			.filter = (struct mbx_sock_filter *)st->seccomp,
		};

		if (prctl(PR_SET_SECCOMP, MBX_SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
			return -1;
	}
	return 0;
}

/* A mini-init's own descriptors (-1 in the agent): its oom_score_adj, read
 * by init_state_take, and /dev/null, a program's stdin when it has none. */
static int oom_fd = -1;
static int null_fd = -1;

/* The program's side of the stdio plumbing, prepared by the agent. */
struct child_io {
	int in;        /* stdin: pipe read end, or -1 for /dev/null */
	int out;
	int err;
	int pty;       /* the terminal (its slave, opened by the agent), or -1: all three on it */
};

/* Runs in the program's process (PID 2 of the nested namespace, or the
 * next free pid under a recycled mini-init); never returns. It shares the
 * mini-init's memory until its exec (see start_program): system calls
 * only, nothing that allocates, locks or keeps state in memory beyond
 * `environ`, which the mini-init no longer uses. */
static void payload_child(struct agent_state *st, const struct exec_req *r, const struct child_io *io, int rep_w, int prepared)
{
	extern char **environ;

	/* Its signal mask and dispositions are the mini-init's, which made
	 * them a program's (mini_init_prepare). */
	if (io->pty >= 0) {
		int t = io->pty;

		/* A session of its own, whose controlling terminal the terminal
		 * becomes, so Ctrl-C reaches the foreground process group. The
		 * agent opened it: its ioctls are not subject to Landlock, which
		 * a spare took before the request (see "the spare"). */
		if (setsid() < 0 || ioctl(t, TIOCSCTTY, 0) < 0 || dup2(t, 0) < 0 || dup2(t, 1) < 0 || dup2(t, 2) < 0)
			child_fail(rep_w, MBX_STAGE_SETUP, errno);
	} else {
		int in = io->in >= 0 ? io->in : null_fd >= 0 ? null_fd : open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* A process group of its own in its mini-init's session (made by
		 * mini_init_prepare): without a terminal a session of its own
		 * would only cost a scheduler autogroup per execute (setsid
		 * makes one, its exit frees it). */
		if (setpgid(0, 0) < 0)
			child_fail(rep_w, MBX_STAGE_SETUP, errno);
		if (in < 0 || dup2(in, 0) < 0 || dup2(io->out, 1) < 0 || dup2(io->err, 2) < 0)
			child_fail(rep_w, MBX_STAGE_SETUP, errno);
	}
	/* The one descriptor the host passed, as fd 3 (dup2 clears its
	 * close-on-exec flag; when it already is 3, clear it here). */
	if (r->pass_fd >= 0) {
		if (r->pass_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(r->pass_fd, 3) < 0)
			child_fail(rep_w, MBX_STAGE_SETUP, errno);
	}
	if (chdir(r->cwd ? r->cwd : "/") < 0)
		child_fail(rep_w, MBX_STAGE_CHDIR, errno);
	for (size_t i = 0; i < st->nrlimits; i++) {
		struct rlimit rl = { st->rlimits[i].value, st->rlimits[i].value };

		if (setrlimit((int)st->rlimits[i].resource, &rl) < 0)
			child_fail(rep_w, MBX_STAGE_RLIMIT, errno);
	}
	if (drop_capabilities(prepared) < 0)
		child_fail(rep_w, MBX_STAGE_CAPS, errno);
	/* A spare's program has both from its mini-init already. */
	if (!prepared && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(rep_w, MBX_STAGE_NNP, errno);
	if (!prepared && st->landlock_fd >= 0 && mbx_sys_landlock_restrict_self(st->landlock_fd, 0) < 0)
		child_fail(rep_w, MBX_STAGE_LANDLOCK, errno);
	/* Every descriptor but stdio closes on exec: the channel, the ruleset,
	 * the signalfd, other processes' pipes and this report pipe. */
	if (mbx_close_fds_from(r->pass_fd >= 0 ? 4 : 3, MBX_CLOSEFDS_CLOEXEC) < 0)
		child_fail(rep_w, MBX_STAGE_SETUP, errno);
	environ = r->envp;
	/* Last, so nothing above runs under them; except under a spare
	 * mini-init, which installed them before its request came (every
	 * step above is allowed by every filter: see "the spare"). */
	if (!prepared && install_filters(st) < 0)
		child_fail(rep_w, MBX_STAGE_SECCOMP, errno);
	execvp(r->argv[0], r->argv);
	child_fail(rep_w, MBX_STAGE_EXEC, errno);
}

/* Turns a failed child stage into an ERROR message for the host (the
 * same words as the host's for a direct execute: mbx_proto_start_error). */
static void report_child_failure(struct agent_state *st, uint32_t id, const char *cwd, const char *program,
				 const struct mbx_start_report *rep)
{
	char msg[512];
	const char *layer;
	int code = mbx_proto_start_error(rep->stage, rep->errnum, program, cwd, msg, sizeof(msg), &layer);

	agent_send_error(st, id, code, rep->errnum, layer, "%s", msg);
}

/* ==== the mini-init ==== */

/*
 * The program is started with vfork semantics (CLONE_VM | CLONE_VFORK):
 * no copy of the mini-init's memory to make and tear down again at exec.
 * The child runs on its own stack, below, in the mini-init's memory (each
 * mini-init has its own copy of it, as a fork of the agent), while the
 * mini-init waits for its exec or exit. Everything the layers change is
 * per process and not shared by these flags: credentials, capabilities,
 * no_new_privs, Landlock, seccomp, rlimits, session, descriptors, working
 * directory, signal dispositions.
 */
struct program_args {
	struct agent_state *st;
	const struct exec_req *r;
	const struct child_io *io;
	int rep_w;
	int prepared;           /* a spare emptied the bounding set and installed the filters */
};

static char program_stack[128u << 10] __attribute__((aligned(64)));

static int program_main(void *arg)
{
	struct program_args *a = arg;

	payload_child(a->st, a->r, a->io, a->rep_w, a->prepared);
	return 127;
}

static pid_t start_program(struct agent_state *st, const struct exec_req *r, const struct child_io *io, int rep_w,
			   int prepared)
{
	struct program_args a = { st, r, io, rep_w, prepared };

	return clone(program_main, program_stack + sizeof(program_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
}

/*
 * What a mini-init does before it knows its request: it dies with the
 * agent (PDEATHSIG), drops its copies of the agent's descriptors, joins the
 * guest's payload cgroup, and mounts a /proc of its pid namespace in a mount
 * namespace of its own. 0, or -1 with errno set and *stage the failed step.
 */
static int mini_init_prepare(struct agent_state *st, int *stage)
{
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* The signal mask and dispositions its programs start with: nothing
	 * blocked (the agent blocks SIGCHLD for its signalfd) and SIGPIPE back
	 * to its default (the agent ignores it); the agent reset every other
	 * disposition when it started (agent.c). The mini-init's own writes
	 * go to the agent, whose end is open while the mini-init may write. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* A session of its own, which the programs it runs without a terminal
	 * share (payload_child); out of the agent's. */
	if (setsid() < 0) {
		*stage = MBX_STAGE_SETUP;
		return -1;
	}
	/* The out-of-memory killer's first choice, before the agent: it picks
	 * the process of the sandbox's memory cgroup with the most memory of
	 * its own, and files in the sandbox's tmpfs (charged to the cgroup) are
	 * nobody's, so a program that fills /tmp could leave the agent the
	 * largest and take the sandbox down with it. At the top of the scale,
	 * an execute's tree (this mini-init, so everything its program starts)
	 * goes first; the agent is only ever chosen when nothing of a payload
	 * is left. Raising one's own value needs no privilege. */
	/* Kept open: init_state_take reads it again (pread), also under the
	 * Landlock ruleset a spare takes (spare_layers). */
	oom_fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (oom_fd >= 0)
		(void)!write(oom_fd, "1000", 4);
	/* Copies of other processes' descriptors would keep their pipes and
	 * terminals open (a stdin that never sees end of file): drop them, and
	 * the agent's channel. */
	for (int i = 0; i < AGENT_MAX_PROCS; i++) {
		struct agent_proc *q = st->procs[i];

		if (q == NULL)
			continue;
		close_fd(&q->out_fd);
		close_fd(&q->err_fd);
		close_fd(&q->in_fd);
		status_drop(q, 0);
		for (int j = 0; j < 3; j++)
			close_fd(&q->spent[j]);
		close_fd(&q->program_fd);
		/* Another mini-init's socket: a copy here would keep it from
		 * seeing the end of file that tells it to go. */
		close_fd(&q->spare_sock);
	}
	close_fd(&st->spare_sock);
	close_fd(&st->lend_sock);
	pipes_close(&st->next_pipes);
	for (int i = 0; i < AGENT_MAX_FILES; i++) {
		close_fd(&st->files[i].fd);
		close_fd(&st->files[i].pipe);
	}
	close(st->chan);
	close(st->sigfd);
	/* A microvm guest's process limit (guest.c): this mini-init, and so
	 * everything its program starts, joins the payloads' pids cgroup. */
	if (st->cgroup_procs_fd >= 0) {
		if (write(st->cgroup_procs_fd, "0", 1) != 1) {
			*stage = MBX_STAGE_CGROUP;
			return -1;
		}
		close(st->cgroup_procs_fd);
		st->cgroup_procs_fd = -1;
	}
	/* A /proc of this namespace, in a mount namespace of this process tree:
	 * programs that look themselves up there (ps, pgrep) find the pids
	 * getpid() gives them, and see only their own execute. */
	if (unshare(CLONE_NEWNS) < 0 || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		*stage = MBX_STAGE_SETUP;
		return -1;
	}
	/* Kept for the programs it starts (payload_child falls back to an
	 * open of its own). */
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return 0;
}

/*
 * What a mini-init that has run a program must find as it was before to
 * serve another (recycling, below). A program cannot reach its mini-init's
 * memory, descriptors or credentials (the mini-init is not dumpable and
 * keeps its capabilities), but a process of the same uid may lower another's
 * resource limits and scheduling (prlimit, setpriority, sched_setaffinity,
 * sched_setscheduler, ioprio_set) and raise its oom_score_adj; a later
 * program would inherit them. Any change: the mini-init exits as before.
 */
struct init_state {
	struct rlimit lim[RLIM_NLIMITS];
	int nice;
	int policy;
	long ioprio;
	cpu_set_t cpus;
	char oom[24];
	ssize_t oom_len;
};

static void init_state_take(struct init_state *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &s->lim[i]);
	s->nice = getpriority(PRIO_PROCESS, 0);
	/* The system call: musl's sched_getscheduler() always fails (ENOSYS). */
	s->policy = (int)syscall(SYS_sched_getscheduler, 0);
	s->ioprio = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
	if (sched_getaffinity(0, sizeof(s->cpus), &s->cpus) < 0)
		CPU_ZERO(&s->cpus);
	s->oom_len = -1;
	/* Opened once per mini-init (mini_init_prepare): read again at each
	 * check. */
	if (oom_fd >= 0)
		s->oom_len = pread(oom_fd, s->oom, sizeof(s->oom), 0);
}

static int init_state_same(const struct init_state *base)
{
	struct init_state now;

	init_state_take(&now);
	for (int i = 0; i < RLIM_NLIMITS; i++)
		if (now.lim[i].rlim_cur != base->lim[i].rlim_cur || now.lim[i].rlim_max != base->lim[i].rlim_max)
			return 0;
	return now.nice == base->nice && now.policy == base->policy && now.ioprio == base->ioprio &&
	       CPU_EQUAL(&now.cpus, &base->cpus) && now.oom_len == base->oom_len && now.oom_len > 0 &&
	       memcmp(now.oom, base->oom, (size_t)now.oom_len) == 0;
}

/* Reaps one child of the mini-init (waiting for one unless `flags` has
 * WNOHANG), adding its resources to *cpu_us and *maxrss. */
static pid_t reap_one(int *status, int flags, uint64_t *cpu_us, uint64_t *maxrss)
{
	struct rusage ru;
	pid_t w;

	/* __WALL: also children that signal nothing or another signal than
	 * SIGCHLD at their exit (clone() lets a program make them). */
	do
		w = wait4(-1, status, __WALL | flags, &ru);
	while (w < 0 && errno == EINTR);
	if (w > 0) {
		*cpu_us += (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
			   (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
		if ((uint64_t)ru.ru_maxrss * 1024u > *maxrss)
			*maxrss = (uint64_t)ru.ru_maxrss * 1024u;
	}
	return w;
}

/* Reaps the children that have ended; 0 when none is left (ECHILD), 1
 * when some still run. */
static int reap_left(uint64_t *cpu_us, uint64_t *maxrss)
{
	pid_t w;

	while ((w = reap_one(NULL, WNOHANG, cpu_us, maxrss)) > 0)
		;
	return w < 0 && errno == ECHILD ? 0 : 1;
}

/*
 * The rest of a mini-init, once prepared and given its request: starts the
 * program, reaps every process of the namespace, and when the program ends
 * writes its status and the resources of the whole tree (the sum over the
 * processes it reaped, so a recycled mini-init counts this execute only)
 * to status_w: a pipe, closed then, or (`base` given: it may be kept) its
 * socket, which stays. Returns 1 when the status said MBX_XS_SPARE
 * (`base` given, the namespace empty, the mini-init as `base`): it may then
 * serve another request; 0 when it is to exit, which makes the kernel kill
 * what is left.
 */
static int mini_init_run(struct agent_state *st, const struct exec_req *r, const struct child_io *io, int rep_w,
			 int status_w, int prepared, const struct init_state *base)
{
	struct mbx_exec_status out = { 0 };
	pid_t prog;
	int ws = 0, empty = 0;

	/* Named before the program starts, so that it finds its PID 1 named
	 * (the program's own name is its program's from its exec on). */
	prctl(PR_SET_NAME, "mimobox-init", 0, 0, 0);
	prog_failed = (struct mbx_start_report){ 0, 0 };
	prog = start_program(st, r, io, rep_w, prepared);
	if (prog < 0)
		init_fail(rep_w, status_w, MBX_STAGE_SETUP, errno);
	if (rep_w >= 0)
		close(rep_w);
	/* Without our copy, its stdin reaches end of file when the agent
	 * closes its end. The output pipes stay open here until the report
	 * below: their end of file then comes with it, not at the program's
	 * exit, so that the agent wakes once at the end, not twice (the report
	 * says so: MBX_XS_EMPTY). */
	if (io->in >= 0)
		close(io->in);
	if (io->pty >= 0)
		close(io->pty);
	for (;;) {
		int s;
		pid_t w = reap_one(&s, 0, &out.cpu_us, &out.maxrss);

		if (w < 0)
			break;
		if (w == prog) {
			ws = s;
			break;
		}
	}
	/* The program is gone: so is everything it left running. Reaping them
	 * all first puts their CPU time into the report. Every other process
	 * of this namespace is a child of this one or descends from one (an
	 * orphan comes here; only a process with capabilities over the
	 * namespace could bring one in from outside, and the payload has none),
	 * so no child at all (ECHILD) is an empty namespace: the usual end,
	 * found without kill(-1), which walks every process of the host. Else
	 * kill(-1) from PID 1 reaches every other process of the namespace,
	 * zombies included, and fails with ESRCH only once there is none. */
	if (reap_left(&out.cpu_us, &out.maxrss) == 0)
		empty = 1;
	for (int round = 0; round < 3 && !empty; round++) {
		kill(-1, SIGKILL);
		while (reap_one(NULL, 0, &out.cpu_us, &out.maxrss) > 0)
			;
		if (kill(-1, 0) < 0 && errno == ESRCH) {
			empty = 1;
			break;
		}
	}
	out.wstatus = ws;
	out.start_stage = prog_failed.stage;
	out.start_errno = prog_failed.errnum;
	if (empty && io->pty < 0)
		out.flags |= MBX_XS_EMPTY;
	if (base != NULL && empty && init_state_same(base))
		out.flags |= MBX_XS_SPARE;
	/* A spare already: nothing is left to fail before its next request
	 * (spare_serve), so this is its ready too. */
	if ((out.flags & MBX_XS_SPARE) && prepared)
		out.flags |= MBX_XS_READY;
	(void)!write(status_w, &out, sizeof(out));
	if (base == NULL)
		close(status_w);
	if (io->out >= 0)
		close(io->out);
	if (io->err >= 0)
		close(io->err);
	return (out.flags & MBX_XS_SPARE) != 0;
}

static void spare_serve(struct agent_state *st, int sock, const struct init_state *base) __attribute__((noreturn));

/*
 * The payload layers a mini-init takes on itself before it serves as a
 * spare, for its programs to inherit: the bounding set emptied, the
 * ambient set cleared and securebits locked (its effective set stays for
 * what it still does), no_new_privs, the Landlock ruleset, then the seccomp
 * filters. 0, or -1 with errno set and *stage the failed step.
 */
static int spare_layers(struct agent_state *st, int *stage)
{
	*stage = MBX_STAGE_CAPS;
	if (drop_bounding_set() < 0 || lock_capabilities() < 0)
		return -1;
	*stage = MBX_STAGE_NNP;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	*stage = MBX_STAGE_LANDLOCK;
	if (st->landlock_fd >= 0 && mbx_sys_landlock_restrict_self(st->landlock_fd, 0) < 0)
		return -1;
	*stage = MBX_STAGE_SECCOMP;
	return install_filters(st);
}

/*
 * PID 1 of a process's nested pid namespace, cloned for its request (no
 * spare, see below). Dies with the agent (PDEATHSIG). With a socket (sock,
 * the agent's os mode), a mini-init that may serve again prepares as a
 * spare does and waits there (recycling, below).
 */
static void mini_init(struct agent_state *st, const struct exec_req *r, const struct child_io *io, int rep_w,
		      int status_w, int sock)
{
	int stage = MBX_STAGE_SETUP;
	struct init_state base;

	/* One that may be kept reports on its socket (mini_init_run). */
	if (sock >= 0)
		status_w = sock;
	if (mini_init_prepare(st, &stage) < 0)
		init_fail(rep_w, status_w, stage, errno);
	/* A socket: the agent keeps it if it can (agent_exec's `keep`). */
	if (sock >= 0)
		init_state_take(&base);
	if (mini_init_run(st, r, io, rep_w, status_w, 0, sock >= 0 ? &base : NULL) &&
	    spare_layers(st, &stage) == 0) {
		for (size_t i = 0; i < st->nfds; i++)
			close(st->fds[i]);
		st->nfds = 0;
		spare_serve(st, sock, &base);
	}
	/* A preparation that failed here would fail again: the agent finds
	 * the end of file, and clones a mini-init for the next execute. */
	_exit(0);
}

/* ==== the spare ==== */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PF_PAGE 4096u

/* Write-faults the resident pages of [lo, hi) now (MADV_POPULATE_WRITE on
 * each run of pages that mincore reports present); pages not there stay
 * away. Best effort: a kernel without the advice (before 5.14) or a range
 * that is not mapped whole just keeps its faults for later. */
static void prefault_resident(uintptr_t lo, uintptr_t hi)
{
	unsigned char vec[128];

	lo &= ~(uintptr_t)(PF_PAGE - 1);
	hi = (hi + PF_PAGE - 1) & ~(uintptr_t)(PF_PAGE - 1);
	while (lo < hi) {
		size_t n = (hi - lo) / PF_PAGE, i = 0;

		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)lo, n * PF_PAGE, vec) == 0)
			while (i < n) {
				size_t j = i;

				while (j < n && (vec[j] & 1))
					j++;
				if (j > i && madvise((void *)(lo + i * PF_PAGE), (j - i) * PF_PAGE, MADV_POPULATE_WRITE) < 0 &&
				    errno == EINVAL)
					return;
				i = j + 1;
			}
		lo += n * PF_PAGE;
	}
}

/* Write-faults [p, p + len) now, present or not (best effort). */
static void prefault_range(void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(PF_PAGE - 1);

	(void)madvise((void *)lo, ((uintptr_t)p + len - lo + PF_PAGE - 1) & ~(uintptr_t)(PF_PAGE - 1), MADV_POPULATE_WRITE);
}

/*
 * After a fork, the agent and its spare share every page of their writable
 * memory copy-on-write, and the first write of either to each page is a
 * fault (3-4 us here) that an execute would otherwise take on its way: the
 * agent's buffers, heap and stack as it hands the request over, the
 * spare's as it takes it. Each calls this once right after the fork, while
 * it is idle: every resident page of its private writable mappings (read
 * from /proc/self/maps) is copied or taken over now. What it costs: the
 * pages the two shared (some 160 KiB) are held twice. Best effort: without
 * /proc the faults come later, as before.
 */
static void prefault_own_memory(void)
{
	static char maps[8192];
	size_t len = 0;
	ssize_t n;
	char *line, *nl;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (len < sizeof(maps) - 1 && (n = read(fd, maps + len, sizeof(maps) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	maps[len] = '\0';
	for (line = maps; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		unsigned long lo, hi;
		char perms[5];

		*nl = '\0';
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && perms[0] == 'r' && perms[1] == 'w' &&
		    perms[3] == 'p')
			prefault_resident(lo, hi);
	}
}

/*
 * A spare mini-init: made ahead of time, when the agent is idle, so that an
 * execute finds its mini-init ready instead of waiting for the clone of a
 * pid namespace, a mount namespace and a /proc mount, for the kernel to
 * take in the seccomp filters (it converts and compiles a program of some
 * 400 instructions per install: about 0.15 ms) and for 41 prctl calls that
 * empty the bounding set. The spare does everything that does not depend
 * on the request (mini_init_prepare, then spare_layers: the bounding set,
 * the ambient set and securebits, no_new_privs, the Landlock ruleset, then
 * the filters, the extra one first as ever), reports {0, 0} (or the step
 * that failed) on its socket and waits there. EXEC hands it the message
 * (struct mbx_spare_req, then the frame's body, which it parses with the same
 * parser) and the descriptors (SCM_RIGHTS): the report pipe, the status
 * pipe, the program's stdio or terminal, then those that came with the
 * message. From there it goes on as any mini-init (mini_init_run). One the
 * agent may keep after the execute gets no status pipe: it writes its
 * status on its socket, and when it is kept, that status is its ready for
 * the next request (MBX_XS_READY), so a recycled spare's execute
 * costs no pipe, no descriptor passed for it and no ready message.
 *
 * Landlock and the filters apply to the mini-init itself as well. It opens
 * nothing by name once prepared (its oom_score_adj and /dev/null are open
 * from mini_init_prepare), and neither do the program's steps before exec:
 * sigprocmask, sigaction, setpgid, setsid, dup2, ioctl(TIOCSCTTY), fcntl,
 * chdir, setrlimit (prlimit64), capset, close_range, execve (which the
 * ruleset allows or not, as for any program). No filter variant denies
 * any of them (src/backend/linux/seccomp.c denies the mount API, namespace
 * creation, a list of kernel interfaces, set-id modes and some ioctls and
 * sockets; the memory guard denies memfds and shared anonymous mappings),
 * and the mini-init's own later calls (recvmsg, clone without namespace
 * flags, wait4, kill, getrusage) neither. A filter that cannot be installed
 * fails the execute that would have used the spare, naming the seccomp
 * layer, as it would have in the program (fail closed).
 *
 * Rules that keep it invisible:
 *  - It exists only while no process of the host runs (agent_spare_make):
 *    it takes the place of the next execute's mini-init, so under
 *    --max-procs a payload finds as many processes free as without it.
 *  - It copied the agent's mounts, Landlock ruleset and layers: requests
 *    that change them (RESET, LAYERS, IDENTITY) kill and reap it first.
 *  - One that died (reaped by agent_proc_reap, or end of file on its
 *    socket) is noticed at the next EXEC, which then clones a mini-init as
 *    without a spare; so does an EXEC whose body is beyond MBX_SPARE_MAX_BODY,
 *    after killing the spare. One killed while it takes its request is that
 *    execute's mini-init already: the execute ends killed (SIGKILL), as
 *    when any mini-init is killed.
 *  - It dies with the agent (PDEATHSIG, and the end of the sandbox's pid
 *    namespace): nothing waits for it but the kernel, which ends every
 *    process of the namespace before the agent's exit completes (about
 *    0.1 ms more for a destroy that finds a spare; none after an execute
 *    that ended less than SPARE_IDLE_US before).
 * A microvm guest does not make spares (st->spare_on): the per-execute path
 * is kept there.
 *
 * Lent to the host (proto.h, "direct executes"): once the host lends a
 * socket (MBX_MSG_SPARE, agent_spare_lend), the spare waits there instead
 * of on the agent's: a recycled one moves (spare_move), else the next one
 * is made on it (agent_spare_make). The host then sends it one-shot
 * executes itself, and the agent is not woken by them; its part is to reap
 * the spare when it exits (st->lent), to kill it on KILL with the
 * MBX_MSG_SPARE's id (the host's timeout) and with the others above, and to
 * make no other spare while it lives. An EXEC the host sends the agent
 * instead may bring it back (MBX_F_SPARE_FD: spare_return).
 */

/*
 * How long the agent is idle before it makes a spare. A host that destroys
 * the sandbox right after its last execute (a one-shot run) or sends the
 * next request at once finds none to wait for: the teardown of a process
 * (its namespaces, its filters) at the end of the sandbox's pid namespace
 * is waited for by the kernel before the agent's own exit, and a spare
 * made with the next request already waiting saves nothing.
 */
#define SPARE_IDLE_US 1000u

/* Descriptors handed over: the report (has_rep), the status pipe (unless
 * keep), in, out, err, the terminal, then the message's. */
#define SPARE_MAX_FDS (6 + MBX_PROTO_MAX_FDS)

/*
 * A spare's wait: reports ready ({0, 0}) on its socket, takes a request
 * and runs it as any mini-init (mini_init_run); once that is over, serves
 * the next when it may (recycling; its status on the socket was its ready
 * then: MBX_XS_READY), else exits. End of file on the socket: the
 * agent discarded it.
 */
static void spare_serve(struct agent_state *st, int sock, const struct init_state *base)
{
	extern char **environ;
	union {
		char buf[CMSG_SPACE(sizeof(int) * SPARE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct mbx_start_report ready = { 0, 0 };
	struct mbx_spare_req hdr;
	struct child_io io;
	struct exec_req r;
	struct mbx_frame f;
	struct iovec iov[2];
	struct msghdr msg;
	int fds[SPARE_MAX_FDS];
	size_t nfd, k;
	uint8_t *body;
	int rep_w, status_w, again = 0;
	ssize_t n;

	body = malloc(MBX_SPARE_MAX_BODY);
	if (body == NULL)
		_exit(0);
	/* Where a request lands, and the top of the program's stack: in
	 * memory before the request comes. */
	prefault_range(body, 2 * PF_PAGE);
	prefault_range(program_stack + sizeof(program_stack) - 2 * PF_PAGE, 2 * PF_PAGE);
	for (;;) {
		if (!again && send(sock, &ready, sizeof(ready), MSG_NOSIGNAL) != (ssize_t)sizeof(ready))
			_exit(0);
		/* Named for ps as a spare again (the agent took it as one). */
		prctl(PR_SET_NAME, "mimobox-spare", 0, 0, 0);
		iov[0] = (struct iovec){ &hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ body, MBX_SPARE_MAX_BODY };
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		do
			n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		while (n < 0 && errno == EINTR);
		/* End of file: the agent discarded this spare. */
		if (n <= 0)
			_exit(0);
		nfd = agent_cmsg_fds(&msg, fds, 0, SPARE_MAX_FDS);
		if ((size_t)n == sizeof(hdr) && hdr.move && nfd == 1 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			/* Lent to the host (proto.h, "direct executes"): its
			 * socket in place of the agent's, where the agent put
			 * its ready already. */
			if (dup3(fds[0], sock, O_CLOEXEC) < 0)
				_exit(0);
			close(fds[0]);
			again = 1;
			continue;
		}
		/* The agent's own message, checked there: only a short one (the
		 * kernel cut it) is not whole. */
		if ((size_t)n < sizeof(hdr) || hdr.move || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    hdr.body_len != (size_t)n - sizeof(hdr) ||
		    nfd != (hdr.keep ? 0u : 1u) + hdr.has_rep + hdr.has_in + hdr.has_out + hdr.has_err + hdr.has_pty +
				   hdr.nmsg_fds ||
		    hdr.nmsg_fds > MBX_PROTO_MAX_FDS)
			_exit(127);
		k = 0;
		rep_w = hdr.has_rep ? fds[k++] : -1;
		status_w = hdr.keep ? sock : fds[k++];
		io.in = hdr.has_in ? fds[k++] : -1;
		io.out = hdr.has_out ? fds[k++] : -1;
		io.err = hdr.has_err ? fds[k++] : -1;
		io.pty = hdr.has_pty ? fds[k++] : -1;
		for (size_t i = 0; i < hdr.nmsg_fds; i++)
			st->fds[i] = fds[k + i];
		st->nfds = hdr.nmsg_fds;
		f = (struct mbx_frame){ .type = MBX_MSG_EXEC, .id = hdr.id, .body = body, .len = hdr.body_len };
		memset(&r, 0, sizeof(r));
		if (parse_exec(st, &f, &r) < 0)
			init_fail(rep_w, status_w, MBX_STAGE_SETUP, EPROTO);
		again = mini_init_run(st, &r, &io, rep_w, status_w, 1, hdr.keep ? base : NULL);
		/* The program set it to the request's, freed here (the mini-init
		 * itself reads no environment). */
		environ = NULL;
		req_release(&r);
		for (size_t i = 0; i < st->nfds; i++)
			close(st->fds[i]);
		st->nfds = 0;
		if (!again)
			_exit(0);
	}
}

static void spare_main(struct agent_state *st, int sock)
{
	struct mbx_start_report ready = { 0, 0 };
	int stage = MBX_STAGE_SETUP;
	struct init_state base;

	/* Descriptors the agent held for messages not yet handled. */
	for (size_t i = 0; i < st->nfdq; i++)
		for (size_t j = 0; j < st->fdq[i].n; j++)
			close(st->fdq[i].fds[j]);
	st->nfdq = 0;
	for (size_t i = 0; i < st->nfds; i++)
		close(st->fds[i]);
	st->nfds = 0;
	if (mini_init_prepare(st, &stage) == 0) {
		/* Before the layers: it reads no file by name, but no step
		 * needs to run under them. */
		init_state_take(&base);
		if (spare_layers(st, &stage) == 0)
			stage = 0;
	}
	if (stage != 0) {
		ready.stage = (int32_t)stage;
		ready.errnum = errno;
		(void)!send(sock, &ready, sizeof(ready), MSG_NOSIGNAL);
		_exit(0);
	}
	prefault_own_memory();
	spare_serve(st, sock, &base);
}

/* Kills and reaps a spare (the agent's, or one lent to the host). */
static void spare_end(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	*pid = 0;
}

/* Ends the agent's own spare (one it cannot use for a request); one lent
 * to the host stays. */
static void spare_drop(struct agent_state *st)
{
	spare_end(&st->spare);
	st->spare_ready = 0;
	close_fd(&st->spare_sock);
}

void agent_spare_discard(struct agent_state *st)
{
	/* A lent one too: the host finds its socket closed, and its next
	 * execute goes through the agent (proto.h, "direct executes"). */
	spare_end(&st->lent);
	spare_drop(st);
	/* What a running process's mini-init copied may be out of date now:
	 * it is not kept as a spare when its execute ends (spare_keep). */
	st->spare_gen++;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ==== an execute's pipes ==== */

static void pipes_close(struct agent_pipes *p)
{
	int *fds[] = { &p->rep[0], &p->rep[1], &p->status[0], &p->status[1],
		       &p->out[0], &p->out[1], &p->err[0], &p->err[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close_fd(fds[i]);
}

/* Which pipes an execute needs (pipes_fill, pipes_take). */
#define PIPES_REP 1u     /* the start report: its STARTED waits for the exec */
#define PIPES_OUTPUT 2u  /* stdout and stderr: it has no terminal */
#define PIPES_STATUS 4u  /* the mini-init's status: it reports on no socket (agent_exec's `keep`) */
#define PIPES_ALL (PIPES_REP | PIPES_OUTPUT | PIPES_STATUS)

/* Makes the pipes of *p in `need` that are missing (-1). 0, or -1 with
 * errno set (what was made stays in *p). */
static int pipes_fill(struct agent_pipes *p, unsigned need)
{
	/* The report and the status are a few bytes put once in an empty pipe
	 * by their only writer, which never blocks; the program's output is
	 * written blocking, as any program expects its stdout. */
	if ((need & PIPES_REP) && p->rep[0] < 0 && pipe2(p->rep, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if ((need & PIPES_STATUS) && p->status[0] < 0 && pipe2(p->status, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if (!(need & PIPES_OUTPUT))
		return 0;
	if (p->out[0] < 0 && (pipe2(p->out, O_CLOEXEC) < 0 || fcntl(p->out[0], F_SETFL, O_NONBLOCK) < 0))
		return -1;
	if (p->err[0] < 0 && (pipe2(p->err, O_CLOEXEC) < 0 || fcntl(p->err[0], F_SETFL, O_NONBLOCK) < 0))
		return -1;
	return 0;
}

/* Moves the pair `from` into `to` (-1 left behind). */
static void pipe_move(int to[2], int from[2])
{
	to[0] = from[0];
	to[1] = from[1];
	from[0] = from[1] = -1;
}

/* An execute's pipes (`need`): those made ahead, new ones for what is
 * missing; those made ahead that it does not need stay for a later
 * execute. 0, or -1 with errno set and nothing taken left open. */
static int pipes_take(struct agent_state *st, struct agent_pipes *p, unsigned need)
{
	int e;

	*p = AGENT_PIPES_NONE;
	if (need & PIPES_STATUS)
		pipe_move(p->status, st->next_pipes.status);
	if (need & PIPES_REP)
		pipe_move(p->rep, st->next_pipes.rep);
	if (need & PIPES_OUTPUT) {
		pipe_move(p->out, st->next_pipes.out);
		pipe_move(p->err, st->next_pipes.err);
	}
	if (pipes_fill(p, need) == 0)
		return 0;
	e = errno;
	pipes_close(p);
	errno = e;
	return -1;
}

/*
 * Makes the next execute's pipes (four pipe2 and two fcntl, 10-20 us here)
 * after an EXIT or the READY has gone, so that they are off that execute's
 * path: while the host takes the answer, or in the idle while before its
 * next request.
 * Not on a poll timeout: a short one costs more than the pipes, as the
 * timer is armed and cancelled again at every poll of a busy agent (about
 * 20 us of the agent's CPU per execute here, in a virtual machine).
 */
void agent_pipes_ahead(struct agent_state *st)
{
	if (!st->spare_on || st->pipes_pause || st->chan_down)
		return;
	/* At a descriptor limit, say: the execute makes its own and meets it
	 * itself; not tried again before another execute. */
	if (pipes_fill(&st->next_pipes, PIPES_ALL) < 0) {
		pipes_close(&st->next_pipes);
		st->pipes_pause = 1;
	}
}

static void spare_move(struct agent_state *st, int may_block);

void agent_spare_make(struct agent_state *st, int *timeout_ms)
{
	uint64_t now;
	int sv[2];
	long pid;

	/* Nothing to make: one is there (unless it is to move to a socket
	 * the host lent), one is lent, or making one failed. */
	if (!st->spare_on || st->chan_down || st->lent > 0 || (st->spare > 0 && st->lend_sock < 0) ||
	    (st->spare <= 0 && st->spare_pause)) {
		st->idle_us = 0;
		return;
	}
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] != NULL) {
			st->idle_us = 0;
			return;
		}
	now = now_us();
	if (st->idle_us == 0)
		st->idle_us = now;
	if (now - st->idle_us < SPARE_IDLE_US) {
		int left = (int)((SPARE_IDLE_US - (now - st->idle_us) + 999) / 1000);

		if (*timeout_ms < 0 || left < *timeout_ms)
			*timeout_ms = left;
		return;
	}
	st->idle_us = 0;
	if (st->spare > 0) {
		/* Idle with a socket lent and a spare of its own: it moves
		 * there (waiting for its ready if need be). */
		spare_move(st, 1);
		return;
	}
	if (st->lend_sock >= 0) {
		/* The host lent a socket: this spare waits there, for the
		 * host's executes (proto.h, "direct executes"). */
		sv[0] = -1;
		sv[1] = st->lend_sock;
		st->lend_sock = -1;
	} else if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		st->spare_pause = 1;
		return;
	}
	pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), NULL, NULL, NULL, 0);
	if (pid == 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		/* Named for ps until it runs a program (mimobox-init then). */
		prctl(PR_SET_NAME, "mimobox-spare", 0, 0, 0);
		spare_main(st, sv[1]);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		/* At a process limit, say: the execute will meet it itself
		 * (a lent socket is closed: the host's execute goes through
		 * the agent, which meets it). */
		if (sv[0] >= 0)
			close(sv[0]);
		st->spare_pause = 1;
		return;
	}
	if (sv[0] < 0) {
		st->lent = (pid_t)pid;
		st->lent_id = st->lend_id;
	} else {
		st->spare = (pid_t)pid;
		st->spare_ready = 0;
		st->spare_sock = sv[0];
	}
	prefault_own_memory();
}

void agent_spare_lend(struct agent_state *st, const struct mbx_frame *f)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (!st->spare_on || st->nfds != 1 || getsockopt(st->fds[0], SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET) {
		agent_send_error(st, f->id, MBX_EINVAL, 0, NULL,
				 "SPARE takes one SOCK_SEQPACKET socket, in a sandbox of the os backend");
		return;
	}
	close_fd(&st->lend_sock);
	st->lend_sock = st->fds[0];
	st->fds[0] = -1;
	st->lend_id = f->id;
	/* A spare of the agent's moves there when the execute the host sent
	 * just ahead of this is over (spare_keep), or once the agent has been
	 * idle SPARE_IDLE_US from now (agent_spare_make). */
	st->idle_us = 0;
}

/*
 * The agent's spare, if it has one, moves to the socket the host lent
 * (mbx_spare_req.move) once it is ready: the agent puts its ready on that
 * socket first, so the host finds it there as soon as this is done (a
 * request it sends then waits in the socket until the spare takes it). A
 * spare whose ready has not come yet is waited for with may_block, else
 * left for later. One that failed or went is ended, and the next one is
 * made on that socket once the agent is idle (agent_spare_make).
 */
static void spare_move(struct agent_state *st, int may_block)
{
	static const struct mbx_start_report ready_now = { 0, 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct mbx_spare_req hdr;
	struct iovec iov;
	struct msghdr msg = { 0 };
	ssize_t n;

	if (st->lend_sock < 0 || st->spare <= 0)
		return;
	if (!st->spare_ready) {
		/* Its ready, as an execute would wait for it (spare_take): a
		 * recycled mini-init that was cloned for its execute takes its
		 * layers after its status, a fraction of a millisecond. */
		struct mbx_start_report ready = { 0, 0 };

		if (!may_block)
			return;
		do
			n = recv(st->spare_sock, &ready, sizeof(ready), 0);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(ready) || ready.stage != 0) {
			spare_drop(st);
			return;
		}
	}
	do
		n = send(st->lend_sock, &ready_now, sizeof(ready_now), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(ready_now)) {
		/* The host let its end go: so does the agent. */
		close_fd(&st->lend_sock);
		return;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.move = 1;
	iov = (struct iovec){ &hdr, sizeof(hdr) };
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	mbx_proto_attach_fds(&msg, ctl.buf, &st->lend_sock, 1);
	do
		n = sendmsg(st->spare_sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(hdr)) {
		/* Gone: the next one is made on the host's socket. */
		spare_drop(st);
		return;
	}
	st->lent = st->spare;
	st->lent_id = st->lend_id;
	st->spare = 0;
	st->spare_ready = 0;
	close_fd(&st->lend_sock);
	close_fd(&st->spare_sock);
}

/* An EXEC that brings back the spare lent to the host (MBX_F_SPARE_FD,
 * the host's end of its socket, the last of the message's descriptors):
 * the spare is the agent's again, ready (the host took its ready). */
static void spare_return(struct agent_state *st, const struct mbx_frame *f)
{
	uint32_t idx;
	int sock;

	if (mbx_proto_find_u32(f, MBX_F_SPARE_FD, &idx) < 0 || st->nfds == 0 || idx != st->nfds - 1)
		return;
	sock = st->fds[--st->nfds];
	if (st->lent <= 0 || st->spare > 0) {
		/* Gone meanwhile (a reset): the socket goes too. */
		close(sock);
		return;
	}
	st->spare = st->lent;
	st->lent = 0;
	st->spare_sock = sock;
	st->spare_ready = 1;
}

/*
 * Hands an EXEC to the spare. Returns the spare's pid (it is the execute's
 * mini-init now), 0 when there is no spare to use (the caller clones a
 * mini-init; a spare that was there is gone), or -1 when the spare's
 * preparation failed: *rep names the step, for this execute's error.
 * `keep`: the spare is told it may wait as a spare again after this
 * execute, and reports on its socket (status_w -1); else on status_w.
 */
static pid_t spare_take(struct agent_state *st, const struct mbx_frame *f, const struct child_io *io, int rep_w,
			int status_w, int keep, struct mbx_start_report *rep, int *sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SPARE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct mbx_start_report ready;
	struct mbx_spare_req hdr;
	struct iovec iov[2];
	struct msghdr msg = { 0 };
	int fds[SPARE_MAX_FDS];
	size_t nfd = 0;
	pid_t pid = st->spare;
	ssize_t n;

	if (pid <= 0)
		return 0;
	if (f->len > MBX_SPARE_MAX_BODY || st->nfds > MBX_PROTO_MAX_FDS) {
		spare_drop(st);
		return 0;
	}
	/* Its preparation is done (most often long ago) or failed; end of
	 * file when it died. A recycled one said so in its status. */
	ready = (struct mbx_start_report){ 0, 0 };
	n = sizeof(ready);
	if (!st->spare_ready) {
		do
			n = recv(st->spare_sock, &ready, sizeof(ready), 0);
		while (n < 0 && errno == EINTR);
	}
	if (n != (ssize_t)sizeof(ready)) {
		spare_drop(st);
		return 0;
	}
	if (ready.stage != 0) {
		*rep = ready;
		spare_drop(st);
		return -1;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.id = f->id;
	hdr.body_len = f->len;
	hdr.nmsg_fds = (uint32_t)st->nfds;
	hdr.keep = (uint8_t)keep;
	if (rep_w >= 0) {
		hdr.has_rep = 1;
		fds[nfd++] = rep_w;
	}
	if (status_w >= 0)
		fds[nfd++] = status_w;
	if (io->in >= 0) {
		hdr.has_in = 1;
		fds[nfd++] = io->in;
	}
	if (io->out >= 0) {
		hdr.has_out = 1;
		fds[nfd++] = io->out;
	}
	if (io->err >= 0) {
		hdr.has_err = 1;
		fds[nfd++] = io->err;
	}
	if (io->pty >= 0) {
		hdr.has_pty = 1;
		fds[nfd++] = io->pty;
	}
	for (size_t i = 0; i < st->nfds; i++)
		fds[nfd++] = st->fds[i];
	iov[0] = (struct iovec){ &hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ (void *)f->body, f->len };
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	mbx_proto_attach_fds(&msg, ctl.buf, fds, nfd);
	do
		n = sendmsg(st->spare_sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + f->len)) {
		spare_drop(st);
		return 0;
	}
	/* It is this execute's mini-init now, reaped as such; its socket
	 * goes with the process, for its next wait as a spare (spare_keep). */
	*sock = st->spare_sock;
	st->spare_sock = -1;
	st->spare = 0;
	st->spare_ready = 0;
	return pid;
}

/* ==== the process table ==== */

static struct agent_proc *proc_find(struct agent_state *st, uint32_t id)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] && st->procs[i]->id == id)
			return st->procs[i];
	return NULL;
}

void agent_proc_free(struct agent_state *st, struct agent_proc *p)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] == p)
			st->procs[i] = NULL;
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
	close_fd(&p->in_fd);
	status_drop(p, 0);
	for (int i = 0; i < 3; i++)
		close_fd(&p->spent[i]);
	close_fd(&p->program_fd);
	close_fd(&p->spare_sock);
	free(p->inbuf);
	free(p->program_name);
	free(p->cwd);
	free(p);
}

/* The program's pid in the sandbox's namespace: the only child of its
 * mini-init, read from /proc once it runs. */
static pid_t find_program(pid_t init)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

/* Signals the program through a pidfd, so a recycled pid is never hit. */
static int signal_program(struct agent_proc *p, int sig)
{
	if (p->program_fd < 0 && p->program == 0)
		p->program = find_program(p->init);
	if (p->program_fd < 0 && p->program > 0)
		p->program_fd = mbx_sys_pidfd_open(p->program, 0);
	if (p->program_fd < 0)
		return -1;
	return mbx_sys_pidfd_send_signal(p->program_fd, sig, NULL, 0);
}

/* Kills a process's tree: the program, after which its mini-init kills
 * and reaps the rest and reports the resources used; the mini-init itself
 * when the program is not known. */
static void kill_tree(struct agent_proc *p)
{
	if (signal_program(p, SIGKILL) == 0)
		return;
	kill(p->init, SIGKILL);
}

static void send_started(struct agent_state *st, const struct agent_proc *p)
{
	mbx_proto_begin(&st->out, MBX_MSG_STARTED, p->id);
	mbx_proto_put_u32(&st->out, MBX_F_PID, (uint32_t)p->program);
	if (p->in_fd >= 0)
		mbx_proto_put_u64(&st->out, MBX_F_WINDOW, STDIN_WINDOW);
	mbx_proto_end(&st->out);
}

/*
 * The STARTED that agent_exec held back (start_pending), before the first
 * output or the EXIT of the process: 0 when it went (or had gone), -1 when
 * the mini-init's status says the program never ran, which then goes as
 * the execute's ERROR instead (nothing else is sent for it). Output means
 * the exec happened; so does a mini-init that ended without a status
 * (killed: the execute ends killed).
 */
static int finish_start(struct agent_state *st, struct agent_proc *p)
{
	if (!p->start_pending)
		return 0;
	p->start_pending = 0;
	if (p->status_valid && p->status.start_stage != 0) {
		struct mbx_start_report rep = { p->status.start_stage, p->status.start_errno };

		report_child_failure(st, p->id, p->cwd, p->program_name ? p->program_name : "?", &rep);
		return -1;
	}
	send_started(st, p);
	return 0;
}

void agent_exec(struct agent_state *st, const struct mbx_frame *f)
{
	uint32_t id = f->id;
	struct exec_req r;
	struct child_io io = { -1, -1, -1, -1 };
	struct agent_proc *p = NULL;
	struct agent_pipes pp = AGENT_PIPES_NONE;
	int inp[2] = { -1, -1 };
	int sv[2] = { -1, -1 }, sock = -1, keep, defer;
	int master = -1, slave = -1, slot = -1;
	char slave_path[64];
	struct mbx_start_report rep;
	long init;
	ssize_t n;

	/* Before the request's own descriptors are looked at: the lent
	 * spare's socket is not one of them. */
	spare_return(st, f);
	if (parse_exec(st, f, &r) < 0) {
		req_release(&r);
		agent_send_error(st, id, MBX_EPROTO, 0, NULL, "malformed EXEC message");
		return;
	}
	if (proc_find(st, id) != NULL) {
		agent_send_error(st, id, MBX_EEXIST, 0, NULL, "process %u exists", id);
		goto out;
	}
	for (int i = 0; i < AGENT_MAX_PROCS && slot < 0; i++)
		if (st->procs[i] == NULL)
			slot = i;
	if (slot < 0) {
		agent_send_error(st, id, MBX_ETOOBIG, 0, NULL, "the sandbox already runs %d processes", AGENT_MAX_PROCS);
		goto out;
	}
	defer = MBX_XF_LATE_START(r.flags);
	/* Its mini-init may serve the next execute (recycling) unless this is
	 * the last one the host will send, or the first: a sandbox that runs
	 * one execute and goes (new, execute, destroy without saying so) would
	 * only wait at its destroy for the teardown that an exiting mini-init
	 * does while its result is on the way. One that may be kept reports
	 * on its socket, which the agent keeps, not on a status pipe. */
	keep = st->execs++ > 0 && st->spare_on && !(r.flags & MBX_XF_PTY) && !(r.flags & MBX_XF_LAST);
	st->pipes_pause = 0;
	/* Made ahead after the last answer, most often. */
	if (pipes_take(st, &pp,
		       (defer ? 0 : PIPES_REP) | (r.flags & MBX_XF_PTY ? 0 : PIPES_OUTPUT) | (keep ? 0 : PIPES_STATUS)) < 0)
		goto sys;
	if (r.flags & MBX_XF_PTY) {
		struct winsize ws = { (unsigned short)r.rows, (unsigned short)r.cols, 0, 0 };

		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, slave_path, sizeof(slave_path)) != 0 ||
		    ioctl(master, TIOCSWINSZ, &ws) < 0)
			goto sys;
		/* Opened here, outside every payload layer, and handed over
		 * (payload_child). */
		slave = open(slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0)
			goto sys;
		io.pty = slave;
	} else {
		if ((r.flags & MBX_XF_STDIN) && pipe2(inp, O_CLOEXEC) < 0)
			goto sys;
		io.in = inp[0];
		io.out = pp.out[1];
		io.err = pp.err[1];
	}
	/*
	 * Every execute, one-shot ones too, runs under a mini-init in a new pid
	 * namespace (fork-like clone: the child is its PID 1). Running a
	 * one-shot payload straight from the agent would save the nested
	 * namespace but put the agent in the payload's reach (see the top).
	 */
	st->spare_pause = 0;
	init = spare_take(st, f, &io, pp.rep[1], pp.status[1], keep, &rep, &sock);
	if (init < 0) {
		report_child_failure(st, id, r.cwd, r.argv[0], &rep);
		goto out;
	}
	if (init == 0) {
		/* A socket for its status and its wait as a spare once its
		 * program is over (recycling); without one it reports on a pipe
		 * and exits then. */
		if (keep && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			sv[0] = sv[1] = -1;
			keep = 0;
			if (pipes_fill(&pp, PIPES_STATUS) < 0)
				goto sys;
		}
		init = syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), NULL, NULL, NULL, 0);
	}
	if (init < 0)
		goto sys;
	if (init == 0) {
		/* The agent's ends: a copy kept here would hold stdin open and
		 * the terminal alive. */
		close_fd(&pp.rep[0]);
		close_fd(&pp.status[0]);
		close_fd(&pp.out[0]);
		close_fd(&pp.err[0]);
		close_fd(&inp[1]);
		close_fd(&master);
		close_fd(&sv[0]);
		mini_init(st, &r, &io, pp.rep[1], pp.status[1], sv[1]);
	}
	if (sv[0] >= 0) {
		sock = sv[0];
		sv[0] = -1;
	}
	/* Not kept: a spare's socket goes now, and it exits at its end. */
	if (!keep)
		close_fd(&sock);
	close_fd(&sv[1]);
	close_fd(&pp.rep[1]);
	close_fd(&pp.status[1]);
	close_fd(&pp.out[1]);
	close_fd(&pp.err[1]);
	close_fd(&inp[0]);
	/* The terminal hangs up (EIO on the master) once its last slave,
	 * the program's, is closed. */
	close_fd(&slave);

	/*
	 * Whether the program started (its exec) or which step failed first
	 * comes on the report pipe. An execute the host only waits for the end
	 * of (one-shot, no stdin, no terminal) has none and is not waited for
	 * here: its mini-init's status at the end says whether its program
	 * ran, and STARTED goes with its first output or then (finish_start),
	 * in the same write as the EXIT for a program that writes nothing; so
	 * neither this agent nor the host wakes in between.
	 */
	n = 0;
	if (!defer) {
		struct pollfd pf = { pp.rep[0], POLLIN, 0 };

		for (;;) {
			n = read(pp.rep[0], &rep, sizeof(rep));
			if (n >= 0 || (errno != EINTR && errno != EAGAIN))
				break;
			if (errno == EAGAIN)
				(void)poll(&pf, 1, -1);
		}
		close_fd(&pp.rep[0]);
	}
	if (n == (ssize_t)sizeof(rep)) {
		/* The program never ran: its mini-init exits at once (at the
		 * end of file on its socket, if it would wait as a spare). */
		close_fd(&sock);
		while (waitpid((pid_t)init, NULL, 0) < 0 && errno == EINTR)
			;
		report_child_failure(st, id, r.cwd, r.argv[0], &rep);
		goto out;
	}

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		kill((pid_t)init, SIGKILL);
		while (waitpid((pid_t)init, NULL, 0) < 0 && errno == EINTR)
			;
		agent_send_error(st, id, MBX_ENOMEM, ENOMEM, NULL, "out of memory");
		goto out;
	}
	p->id = id;
	p->spent[0] = p->spent[1] = p->spent[2] = -1;
	p->init = (pid_t)init;
	p->spare_sock = sock;
	sock = -1;
	p->spare_gen = st->spare_gen;
	/* An execute's host waits for the end and never asks for the pid: the
	 * program is looked up only if it is to be signalled (signal_program). */
	p->program = r.flags & MBX_XF_ONESHOT ? 0 : find_program(p->init);
	p->program_fd = p->program > 0 ? mbx_sys_pidfd_open(p->program, 0) : -1;
	p->pty = master >= 0;
	p->out_fd = master >= 0 ? master : pp.out[0];
	p->err_fd = pp.err[0];
	p->in_fd = master >= 0 ? dup(master) : inp[1];
	if (master >= 0 && p->in_fd >= 0)
		fcntl(p->in_fd, F_SETFD, FD_CLOEXEC);
	master = pp.out[0] = pp.err[0] = inp[1] = -1;
	/* Kept: its report comes on its socket (mini_init_run). */
	p->status_fd = keep ? p->spare_sock : pp.status[0];
	pp.status[0] = -1;
	p->credit = r.window;
	p->limit = r.output_limit;
	p->start_ms = agent_now_ms();
	p->oom_at_start = oom_kills(st);
	p->deadline_ms = r.timeout_ms ? p->start_ms + r.timeout_ms : 0;
	p->program_name = strdup(r.argv[0]);
	/* The output pipes' ends are non-blocking already (pipes_fill). */
	if (p->pty)
		fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	if (p->in_fd >= 0)
		fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	st->procs[slot] = p;
	if (defer) {
		p->cwd = strdup(r.cwd ? r.cwd : "/");
		p->start_pending = 1;
		goto out;
	}
	send_started(st, p);
	goto out;
sys:
	agent_send_error(st, id, MBX_ESYS, errno, NULL, "start the process");
out:
	close_fd(&master);
	close_fd(&slave);
	pipes_close(&pp);
	for (int i = 0; i < 2; i++) {
		close_fd(&inp[i]);
		close_fd(&sv[i]);
	}
	close_fd(&sock);
	req_release(&r);
}

/*
 * Writes pending stdin bytes without blocking, and gives the host credit
 * for what left the buffer (written, or dropped because the reader is
 * gone), in batches of a quarter window or when the buffer is empty. The
 * host never has more than STDIN_WINDOW bytes on their way or held here,
 * however much it streams and however slowly the program reads.
 */
static void flush_stdin(struct agent_state *st, struct agent_proc *p)
{
	while (p->in_fd >= 0 && p->inlen > 0) {
		ssize_t n = write(p->in_fd, p->inbuf, p->inlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* The reader is gone: drop what was queued (and what
			 * comes: the host's writer must not wait for ever). */
			p->in_uncredited += p->inlen;
			p->inlen = 0;
			break;
		}
		memmove(p->inbuf, p->inbuf + n, p->inlen - (size_t)n);
		p->inlen -= (size_t)n;
		p->in_uncredited += (uint64_t)n;
	}
	if (p->in_uncredited > 0 && (p->in_uncredited >= STDIN_WINDOW / 4 || p->inlen == 0)) {
		mbx_proto_begin(&st->out, MBX_MSG_CREDIT, p->id);
		mbx_proto_put_u64(&st->out, MBX_F_WINDOW, p->in_uncredited);
		mbx_proto_end(&st->out);
		p->in_uncredited = 0;
	}
	if (p->in_close && p->inlen == 0 && p->in_fd >= 0) {
		if (p->pty) {
			/* A terminal has no "close": send its end-of-file character. */
			(void)!write(p->in_fd, "\004", 1);
		}
		close_fd(&p->in_fd);
	}
}


void agent_proc_message(struct agent_state *st, const struct mbx_frame *f)
{
	struct agent_proc *p = proc_find(st, f->id);
	const uint8_t *data;
	uint32_t len, u, rows, cols;
	uint64_t w;

	if (f->type == MBX_MSG_LIST) {
		uint64_t now = agent_now_ms();

		mbx_proto_begin(&st->out, MBX_MSG_PROC_LIST, f->id);
		for (int i = 0; i < AGENT_MAX_PROCS; i++) {
			struct agent_proc *q = st->procs[i];
			size_t at;

			if (q == NULL || q->init_done)
				continue;
			at = mbx_proto_nest_begin(&st->out, MBX_F_ENTRY);
			mbx_proto_put_u32(&st->out, MBX_F_PROC_ID, q->id);
			mbx_proto_put_str(&st->out, MBX_F_ARG, q->program_name ? q->program_name : "?");
			mbx_proto_put_u64(&st->out, MBX_F_AGE_MS, now - q->start_ms);
			mbx_proto_nest_end(&st->out, at);
		}
		mbx_proto_end(&st->out);
		return;
	}
	if (p == NULL && f->type == MBX_MSG_KILL && f->id != 0 && f->id == st->lent_id) {
		/* The host's direct execute timed out: its spare goes, and
		 * with it (PID 1 of their namespace) the program's tree. */
		if (st->lent > 0)
			kill(st->lent, SIGKILL);
		return;
	}
	if (p == NULL) {
		/* The process may have ended an instant ago: credit, detach and
		 * stdin sent before its EXIT reached the host need no answer. */
		if (f->type != MBX_MSG_CREDIT && f->type != MBX_MSG_DETACH && f->type != MBX_MSG_STDIN &&
		    f->type != MBX_MSG_STDIN_CLOSE)
			agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "no running process %u", f->id);
		return;
	}
	switch (f->type) {
	case MBX_MSG_STDIN:
		if (p->in_fd < 0 || p->in_close) {
			agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "process %u has no open stdin", f->id);
			return;
		}
		if (mbx_proto_decode_data(f, &data, &len) < 0) {
			agent_send_error(st, f->id, MBX_EPROTO, 0, NULL, "malformed STDIN message");
			return;
		}
		if (p->inlen + len > STDIN_WINDOW) {
			/* The host sent beyond the credit it was given. */
			agent_send_error(st, f->id, MBX_EPROTO, 0, NULL,
					 "stdin of process %u beyond its window of %u bytes", f->id, STDIN_WINDOW);
			return;
		}
		if (p->inbuf == NULL && (p->inbuf = malloc(STDIN_WINDOW)) == NULL) {
			agent_send_error(st, f->id, MBX_ENOMEM, ENOMEM, NULL, "out of memory for stdin of process %u", f->id);
			return;
		}
		memcpy(p->inbuf + p->inlen, data, len);
		p->inlen += len;
		flush_stdin(st, p);
		return;
	case MBX_MSG_STDIN_CLOSE:
		p->in_close = 1;
		flush_stdin(st, p);
		return;
	case MBX_MSG_SIGNAL:
		if (mbx_proto_find_u32(f, MBX_F_SIGNAL, &u) < 0 || u == 0 || u > 64) {
			agent_send_error(st, f->id, MBX_EINVAL, 0, NULL, "bad signal number");
			return;
		}
		if (p->program == 0)
			p->program = find_program(p->init);
		if (u == SIGKILL || signal_program(p, (int)u) < 0)
			kill_tree(p);
		return;
	case MBX_MSG_KILL:
		kill_tree(p);
		return;
	case MBX_MSG_RESIZE:
		if (!p->pty || mbx_proto_find_u32(f, MBX_F_ROWS, &rows) < 0 || mbx_proto_find_u32(f, MBX_F_COLS, &cols) < 0) {
			agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "process %u has no terminal", f->id);
			return;
		}
		{
			struct winsize ws = { (unsigned short)rows, (unsigned short)cols, 0, 0 };

			/* The kernel sends SIGWINCH to the terminal's foreground group. */
			ioctl(p->out_fd, TIOCSWINSZ, &ws);
		}
		return;
	case MBX_MSG_CREDIT:
		if (mbx_proto_find_u64(f, MBX_F_WINDOW, &w) == 0)
			p->credit = p->credit + w < p->credit ? UINT64_MAX : p->credit + w;
		/* The host sends credit only for a process it holds: one it had
		 * detached has been taken again, and its output flows again. */
		p->detached = 0;
		return;
	case MBX_MSG_DETACH:
		p->detached = 1;
		return;
	default:
		return;
	}
}

void agent_proc_detach_all(struct agent_state *st)
{
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] != NULL)
			st->procs[i]->detached = 1;
}

size_t agent_proc_poll(struct agent_state *st, struct pollfd *pf, size_t room, int *timeout_ms)
{
	uint64_t now = agent_now_ms();
	size_t n = 0;
	int io_ok = st->out.len - st->out_sent < OUTQ_HIGH;

	for (int i = 0; i < AGENT_MAX_PROCS && n + 4 <= room; i++) {
		struct agent_proc *p = st->procs[i];
		int readable;

		if (p == NULL)
			continue;
		/* Output is read while the host has room for it (credit) and the
		 * channel is not backed up; detached output is always drained. */
		readable = p->detached || (io_ok && p->credit > 0);
		pf[n++] = (struct pollfd){ .fd = readable ? p->out_fd : -1, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = readable ? p->err_fd : -1, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = p->inlen ? p->in_fd : -1, .events = POLLOUT };
		pf[n++] = (struct pollfd){ .fd = p->status_fd, .events = POLLIN };
		if (p->deadline_ms && !p->timed_out) {
			int left = p->deadline_ms > now ? (int)(p->deadline_ms - now) : 0;

			if (*timeout_ms < 0 || left < *timeout_ms)
				*timeout_ms = left;
		}
	}
	return n;
}

/* Reads one chunk of a process's output and forwards it within its credit
 * and limit. 1: a chunk was read; 0: none is there now (EAGAIN); -1: the
 * stream ended (its descriptor closed); -2: no credit to read with. */
static int pump(struct agent_state *st, struct agent_proc *p, int which)
{
	uint8_t buf[MBX_PROTO_CHUNK];
	int *fd = which == 0 ? &p->out_fd : &p->err_fd;
	size_t want = sizeof(buf);
	ssize_t n;

	if (!p->detached && p->credit < want)
		want = (size_t)p->credit;
	if (want == 0)
		return -2;
	do
		n = read(*fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		/* EOF, or EIO on a terminal whose last writer is gone. */
		close_fd(fd);
		if (which == 0 && p->pty)
			close_fd(&p->in_fd);
		return -1;
	}
	if (p->detached)
		return 1;
	/* Output means the program runs: its STARTED goes first. */
	finish_start(st, p);
	if (p->sent[which] >= p->limit) {
		p->truncated[which] = 1;
		return 1;
	}
	if ((uint64_t)n > p->limit - p->sent[which]) {
		n = (ssize_t)(p->limit - p->sent[which]);
		p->truncated[which] = 1;
	}
	mbx_proto_begin(&st->out, which == 0 ? MBX_MSG_STDOUT : MBX_MSG_STDERR, p->id);
	mbx_proto_put(&st->out, MBX_F_DATA, buf, (size_t)n);
	mbx_proto_end(&st->out);
	p->sent[which] += (uint64_t)n;
	p->credit -= (uint64_t)n;
	return 1;
}

/*
 * A report that says MBX_XS_EMPTY: every writer of the output pipes
 * is gone but the mini-init, which closes its copies right after the
 * report and never writes. What they hold is read now, as far as the
 * credit and the channel's queue allow; a pipe found empty is at its end
 * (closed here, as at end of file). One still held back by the host's
 * credit or a full queue ends the usual way: the mini-init's close
 * brings its end of file.
 */
static void drain_ended(struct agent_state *st, struct agent_proc *p)
{
	for (int which = 0; which < 2; which++) {
		int *fd = which == 0 ? &p->out_fd : &p->err_fd;
		int r = 1;

		while (*fd >= 0 && st->out.len - st->out_sent < OUTQ_HIGH && (r = pump(st, p, which)) == 1)
			;
		if (*fd >= 0 && r == 0)
			retire_fd(p, fd);
	}
}

/* Out-of-memory kills among the payloads so far (guest mode: the payload
 * cgroup's memory.events; elsewhere the host counts them), 0 if unknown. */
static uint64_t oom_kills(const struct agent_state *st)
{
	char buf[512];
	const char *at;
	ssize_t n;

	if (st->oom_events_fd < 0)
		return 0;
	n = pread(st->oom_events_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	at = strstr(buf, "oom_kill ");
	return at ? strtoull(at + 9, NULL, 10) : 0;
}

static void send_exit(struct agent_state *st, struct agent_proc *p)
{
	int ws = p->status.wstatus;
	int killed = !p->status_valid || (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	int oom = killed && !p->timed_out && oom_kills(st) > p->oom_at_start;
	int32_t code;
	uint32_t sig;

	/* No status: killed with its mini-init (timeout, kill). */
	mbx_proto_exit_of(p->status_valid, ws, &code, &sig);
	mbx_proto_begin(&st->out, MBX_MSG_EXIT, p->id);
	mbx_proto_put_u32(&st->out, MBX_F_EXIT_CODE, (uint32_t)code);
	if (sig != 0)
		mbx_proto_put_u32(&st->out, MBX_F_SIGNAL, sig);
	mbx_proto_put_u32(&st->out, MBX_F_FLAGS, (p->timed_out ? MBX_EXIT_TIMED_OUT : 0) | (oom ? MBX_EXIT_OOM_KILLED : 0) |
			  (p->truncated[0] ? MBX_EXIT_STDOUT_TRUNCATED : 0) |
			  (p->truncated[1] ? MBX_EXIT_STDERR_TRUNCATED : 0));
	mbx_proto_put_u64(&st->out, MBX_F_CPU_US, p->status.cpu_us);
	mbx_proto_put_u64(&st->out, MBX_F_MAXRSS, p->status.maxrss);
	mbx_proto_put_u64(&st->out, MBX_F_ELAPSED_US, (agent_now_ms() - p->start_ms) * 1000u);
	mbx_proto_end(&st->out);
}

/*
 * Recycling: a mini-init whose execute ended with its namespace empty and
 * itself unchanged (MBX_XS_SPARE) waits on its socket as a spare: it
 * becomes the agent's spare, in place of one made later by a clone of
 * new pid and mount namespaces, a /proc mount, the bounding set and the
 * filters (and of the teardown of the old ones), when a spare could be
 * made now: spares on, none there, no other process running (so a payload
 * under --max-procs finds as many processes free as without it), and
 * nothing it copied changed since it was prepared (no discard since:
 * RESET, LAYERS, IDENTITY). Else the agent closes the socket and it exits.
 */
static void spare_keep(struct agent_state *st, struct agent_proc *p)
{
	if (p->spare_sock < 0 || !p->status_valid || !(p->status.flags & MBX_XS_SPARE) || p->init_done ||
	    p->timed_out || p->spare_gen != st->spare_gen || !st->spare_on || st->spare > 0 || st->chan_down ||
	    st->lent > 0)
		return;
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i] != NULL && st->procs[i] != p)
			return;
	st->spare = p->init;
	st->spare_ready = (p->status.flags & MBX_XS_READY) != 0;
	st->spare_sock = p->spare_sock;
	p->spare_sock = -1;
	st->idle_us = 0;
	/* The host lent a socket with this execute: it serves there, ready
	 * before the EXIT goes. */
	spare_move(st, 0);
}

void agent_proc_reap(struct agent_state *st)
{
	for (;;) {
		pid_t w = waitpid(-1, NULL, WNOHANG);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		if (w == st->spare) {
			/* Died before its execute came: the next one goes
			 * without (spare_take), and no other is made before it
			 * (one whose preparation fails would fail again, and
			 * again). */
			st->spare = 0;
			st->spare_ready = 0;
			st->spare_pause = 1;
			close_fd(&st->spare_sock);
		}
		/* A lent spare that ended (its execute did not leave it as a
		 * spare, the host closed its socket, or it was killed): the
		 * host finds its socket at its end and lends another. */
		if (w == st->lent)
			st->lent = 0;
		for (int i = 0; i < AGENT_MAX_PROCS; i++)
			if (st->procs[i] && st->procs[i]->init == w)
				st->procs[i]->init_done = 1;
	}
}

void agent_proc_service(struct agent_state *st, const struct pollfd *pf, size_t npf, int sigchld)
{
	uint64_t now = agent_now_ms();
	size_t k = 0;

	for (int i = 0; i < AGENT_MAX_PROCS && k + 4 <= npf; i++) {
		struct agent_proc *p = st->procs[i];

		if (p == NULL)
			continue;
		if (pf[k].revents & (POLLIN | POLLHUP | POLLERR))
			pump(st, p, 0);
		if (pf[k + 1].revents & (POLLIN | POLLHUP | POLLERR))
			pump(st, p, 1);
		if (pf[k + 2].revents & (POLLOUT | POLLERR | POLLHUP))
			flush_stdin(st, p);
		if (pf[k + 3].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(p->status_fd, &p->status, sizeof(p->status));

			if (n == (ssize_t)sizeof(p->status)) {
				p->status_valid = 1;
				if ((p->status.flags & MBX_XS_EMPTY) && !p->pty)
					drain_ended(st, p);
			}
			if (n >= 0)
				status_drop(p, 1);
		}
		k += 4;
	}
	if (sigchld)
		agent_proc_reap(st);
	for (int i = 0; i < AGENT_MAX_PROCS; i++) {
		struct agent_proc *p = st->procs[i];

		if (p == NULL)
			continue;
		if (p->deadline_ms && !p->timed_out && !p->init_done && now >= p->deadline_ms) {
			p->timed_out = 1;
			kill_tree(p);
		}
		if (p->init_done && p->status_fd >= 0) {
			/* The report, if any, is in the pipe already. */
			ssize_t n = read(p->status_fd, &p->status, sizeof(p->status));

			p->status_valid = n == (ssize_t)sizeof(p->status);
			status_drop(p, 0);
		}
		/* The mini-init's report comes after it killed and reaped the
		 * whole tree: the execute is over then, while the mini-init's own
		 * exit (the teardown of its namespaces, which waits for an RCU
		 * grace period) finishes in the background and is reaped later. */
		if ((p->init_done || p->status_valid) && p->out_fd < 0 && p->err_fd < 0) {
			/* A program that never ran ends with its ERROR alone, and
			 * its mini-init exits (not kept), as in agent_exec. The
			 * answer goes before the descriptors are closed and
			 * the process's memory freed (about 10 us): the host
			 * has it sooner. A mini-init kept for a socket the host
			 * lent moves there first (spare_keep: it never waits
			 * then), so the host's next execute finds it ready. A
			 * host that is gone is found by the main loop's own
			 * flush. */
			if (finish_start(st, p) == 0) {
				send_exit(st, p);
				spare_keep(st, p);
			}
			(void)agent_flush(st, 0);
			agent_proc_free(st, p);
			agent_pipes_ahead(st);
		}
	}
}

void agent_proc_kill_all(struct agent_state *st)
{
	if (st->lent > 0)
		kill(st->lent, SIGKILL);
	for (int i = 0; i < AGENT_MAX_PROCS; i++)
		if (st->procs[i])
			kill(st->procs[i]->init, SIGKILL);
}
