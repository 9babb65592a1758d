/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EXEC: one payload process tree. The child applies the payload layers in an
 * order where each step still has the privilege it needs:
 *
 *	setsid, stdio, chdir, rlimits
 *	drop the capability bounding set, lock securebits (needs CAP_SETPCAP)
 *	clear all capability sets
 *	no_new_privs
 *	Landlock restrict_self (needs no_new_privs)
 *	seccomp filter (last: it may forbid what the steps above use)
 *	execvp
 *
 * A failing step writes {stage, errno} to a CLOEXEC pipe and exits; exec
 * closes that pipe, so EOF tells the agent the program is running.
 *
 * The agent then relays output, enforces the timeout and, when the payload's
 * first process exits or times out, kills every process left in the sandbox:
 * nothing outlives an execute.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"
#include "platform/linux/syscalls.h"

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

enum stage {
	STAGE_SETUP = 1,
	STAGE_CHDIR,
	STAGE_RLIMIT,
	STAGE_CAPS,
	STAGE_NNP,
	STAGE_LANDLOCK,
	STAGE_SECCOMP,
	STAGE_EXEC,
};

struct child_report {
	int32_t stage;
	int32_t errnum;
};

struct exec_req {
	char **argv;
	char **envp;
	char *cwd;
	uint64_t timeout_ms;
	uint64_t output_limit;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void req_release(struct exec_req *r)
{
	size_t n;

	for (n = 0; r->argv && r->argv[n]; n++)
		;
	free_strv(r->argv, n);
	for (n = 0; r->envp && r->envp[n]; n++)
		;
	free_strv(r->envp, n);
	free(r->cwd);
}

/* Appends a copy of a string field to a NULL-terminated vector. */
static int strv_add(char ***v, size_t *n, const uint8_t *val, uint32_t len)
{
	char **nv;
	char *s;

	if (memchr(val, '\0', len) != NULL || *n > 65536)
		return -1;
	s = malloc(len + 1);
	if (s == NULL)
		return -1;
	memcpy(s, val, len);
	s[len] = '\0';
	nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (nv == NULL) {
		free(s);
		return -1;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* Copies the request out of the frame: the frame's memory is reused as soon
 * as the channel is read again. */
static int parse_exec(const struct mbx_frame *f, struct exec_req *r)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	size_t argc = 0, envc = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	r->timeout_ms = 30000;
	r->output_limit = 16u << 20;
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_ARG:
			if (strv_add(&r->argv, &argc, v, n) < 0)
				return -1;
			break;
		case MBX_F_ENV:
			if (strv_add(&r->envp, &envc, v, n) < 0)
				return -1;
			break;
		case MBX_F_CWD:
			free(r->cwd);
			r->cwd = strndup((const char *)v, n);
			if (r->cwd == NULL)
				return -1;
			break;
		case MBX_F_TIMEOUT_MS:
			if (mbx_field_u64(v, n, &r->timeout_ms) < 0)
				return -1;
			break;
		case MBX_F_OUTPUT_LIMIT:
			if (mbx_field_u64(v, n, &r->output_limit) < 0)
				return -1;
			break;
		default:
			break;
		}
	}
	if (rc < 0 || argc == 0)
		return -1;
	if (r->envp == NULL && strv_add(&r->envp, &envc, (const uint8_t *)"PATH=/usr/bin:/bin", 18) < 0)
		return -1;
	return 0;
}

static void child_fail(int fd, enum stage stage, int errnum)
{
	struct child_report rep = { stage, errnum };

	(void)!write(fd, &rep, sizeof(rep));
	_exit(127);
}

/* Drops every capability for good: the bounding set (so exec cannot give
 * them back to uid 0), the ambient set, and effective/permitted/inheritable;
 * securebits make uid 0 an ordinary user from here on. */
static int drop_capabilities(void)
{
	struct mbx_cap_header hdr = { MBX_CAP_VERSION_3, 0 };
	struct mbx_cap_data data[2];

	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			  SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
			  SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0) < 0)
		return -1;
	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Runs in the forked child; never returns. */
static void payload_child(struct agent_state *st, const struct exec_req *r, int out_w, int err_w, int rep_w)
{
	extern char **environ;
	sigset_t none;
	int devnull;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (setsid() < 0)
		child_fail(rep_w, STAGE_SETUP, errno);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		child_fail(rep_w, STAGE_SETUP, errno);
	if (chdir(r->cwd ? r->cwd : "/") < 0)
		child_fail(rep_w, STAGE_CHDIR, errno);
	for (size_t i = 0; i < st->nrlimits; i++) {
		struct rlimit rl = { st->rlimits[i].value, st->rlimits[i].value };

		if (setrlimit((int)st->rlimits[i].resource, &rl) < 0)
			child_fail(rep_w, STAGE_RLIMIT, errno);
	}
	if (drop_capabilities() < 0)
		child_fail(rep_w, STAGE_CAPS, errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(rep_w, STAGE_NNP, errno);
	if (st->landlock_fd >= 0 && mbx_sys_landlock_restrict_self(st->landlock_fd, 0) < 0)
		child_fail(rep_w, STAGE_LANDLOCK, errno);
	/* Every descriptor but stdio closes on exec: the channel, the ruleset,
	 * the signalfd and this report pipe. */
	if (mbx_sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (int fd = 3; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	environ = r->envp;
	if (st->seccomp) {
		struct mbx_sock_fprog prog = {
			.len = (unsigned short)(st->seccomp_len / sizeof(struct mbx_sock_filter)),
			.filter = (struct mbx_sock_filter *)st->seccomp,
		};

		if (prctl(PR_SET_SECCOMP, MBX_SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
			child_fail(rep_w, STAGE_SECCOMP, errno);
	}
	execvp(r->argv[0], r->argv);
	child_fail(rep_w, STAGE_EXEC, errno);
}

/* Turns a failed child stage into an ERROR message for the host. */
static void report_child_failure(struct agent_state *st, uint32_t id, const struct exec_req *r, const struct child_report *rep)
{
	int e = rep->errnum;

	switch (rep->stage) {
	case STAGE_CHDIR:
		/* A bad working directory is a bad argument of the call (the CLI
		 * exits 125), not a missing program (127). */
		agent_send_error(st, id, e == EACCES || e == EPERM ? MBX_EPERM : MBX_EINVAL, e, NULL,
				 "working directory `%s` cannot be entered in the sandbox", r->cwd);
		break;
	case STAGE_EXEC:
		if (e == ENOENT)
			agent_send_error(st, id, MBX_ENOTFOUND, e, NULL, "program `%s` not found in the sandbox", r->argv[0]);
		else if (e == EACCES || e == ENOEXEC || e == EISDIR || e == ENOTDIR || e == EPERM)
			agent_send_error(st, id, MBX_ENOEXEC, e, NULL, "program `%s` cannot be executed", r->argv[0]);
		else
			agent_send_error(st, id, MBX_ESYS, e, NULL, "execute `%s`", r->argv[0]);
		break;
	case STAGE_RLIMIT:
		agent_send_error(st, id, MBX_ENOTSUP, e, "limits", "apply resource limits");
		break;
	case STAGE_CAPS:
		agent_send_error(st, id, MBX_ENOTSUP, e, "capabilities", "drop capabilities");
		break;
	case STAGE_NNP:
		agent_send_error(st, id, MBX_ENOTSUP, e, "no-new-privs", "set no_new_privs");
		break;
	case STAGE_LANDLOCK:
		agent_send_error(st, id, MBX_ENOTSUP, e, "landlock", "enforce the Landlock ruleset");
		break;
	case STAGE_SECCOMP:
		agent_send_error(st, id, MBX_ENOTSUP, e, "seccomp", "install the seccomp filter");
		break;
	default:
		agent_send_error(st, id, MBX_ESYS, e, NULL, "prepare the payload process");
		break;
	}
}

struct stream {
	int fd;              /* read end, -1 once at EOF */
	uint16_t msg;        /* MBX_MSG_STDOUT or MBX_MSG_STDERR */
	uint64_t sent;       /* bytes forwarded */
	int truncated;
};

/* Output frames waiting for the host beyond this stop the reading of the
 * payload's pipes, so a slow host slows the payload instead of growing memory. */
#define OUTQ_HIGH (1u << 20)

static void pump_stream(struct agent_state *st, uint32_t id, struct stream *s, uint64_t limit)
{
	uint8_t buf[MBX_PROTO_CHUNK];
	ssize_t n = read(s->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return;
	}
	if (s->sent >= limit) {
		s->truncated = 1;
		return;
	}
	if ((uint64_t)n > limit - s->sent) {
		n = (ssize_t)(limit - s->sent);
		s->truncated = 1;
	}
	mbx_proto_begin(&st->out, s->msg, id);
	mbx_proto_put(&st->out, MBX_F_DATA, buf, (size_t)n);
	mbx_proto_end(&st->out);
	s->sent += (uint64_t)n;
}

static int make_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC);
}

int agent_exec(struct agent_state *st, const struct mbx_frame *f)
{
	uint32_t id = f->id;
	struct exec_req r;
	struct stream streams[2] = { { -1, MBX_MSG_STDOUT, 0, 0 }, { -1, MBX_MSG_STDERR, 0, 0 } };
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, repp[2] = { -1, -1 };
	struct child_report rep;
	uint64_t start, deadline, cpu_us = 0, maxrss = 0;
	int main_done = 0, main_status = 0, timed_out = 0, children_left = 1, shutdown = 0;
	pid_t pid;
	ssize_t n;

	if (parse_exec(f, &r) < 0) {
		req_release(&r);
		agent_send_error(st, id, MBX_EPROTO, 0, NULL, "malformed EXEC message");
		return 0;
	}
	if (make_pipe(outp) < 0 || make_pipe(errp) < 0 || make_pipe(repp) < 0) {
		agent_send_error(st, id, MBX_ESYS, errno, NULL, "create pipes");
		goto out;
	}
	start = now_ms();
	pid = fork();
	if (pid < 0) {
		agent_send_error(st, id, MBX_ESYS, errno, NULL, "fork the payload");
		goto out;
	}
	if (pid == 0)
		payload_child(st, &r, outp[1], errp[1], repp[1]);
	close(outp[1]);
	close(errp[1]);
	close(repp[1]);
	outp[1] = errp[1] = repp[1] = -1;

	do
		n = read(repp[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(rep)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		report_child_failure(st, id, &r, &rep);
		goto out;
	}

	streams[0].fd = outp[0];
	streams[1].fd = errp[0];
	outp[0] = errp[0] = -1;
	fcntl(streams[0].fd, F_SETFL, O_NONBLOCK);
	fcntl(streams[1].fd, F_SETFL, O_NONBLOCK);
	deadline = start + r.timeout_ms;

	while (!main_done || streams[0].fd >= 0 || streams[1].fd >= 0 || children_left) {
		struct pollfd p[4];
		int np = 0, wait_ms = -1, io_ok = st->out.len - st->out_sent < OUTQ_HIGH;
		uint64_t now = now_ms();
		struct mbx_frame af;

		if (!timed_out && !main_done && now >= deadline) {
			timed_out = 1;
			kill(-1, SIGKILL);
		}
		if (!timed_out && !main_done)
			wait_ms = (int)(deadline - now > 1000 ? 1000 : deadline - now);
		p[np++] = (struct pollfd){ .fd = st->chan, .events = POLLIN | (st->out.len > st->out_sent ? POLLOUT : 0) };
		p[np++] = (struct pollfd){ .fd = st->sigfd, .events = POLLIN };
		for (int i = 0; i < 2; i++)
			p[np++] = (struct pollfd){ .fd = io_ok ? streams[i].fd : -1, .events = POLLIN };
		if (poll(p, (nfds_t)np, wait_ms) < 0 && errno != EINTR)
			break;

		if (p[0].revents & POLLOUT)
			if (agent_flush(st, 0) < 0) {
				shutdown = 1;
				break;
			}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t *space = mbx_rbuf_space(&st->in, 65536);
			ssize_t got = space ? agent_recv(st, space, 65536) : -1;

			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				shutdown = 1;
				break;
			}
			if (got > 0)
				mbx_rbuf_commit(&st->in, (size_t)got);
			while (mbx_rbuf_next(&st->in, &af) == 1)
				if (agent_handle_async(st, &af) < 0) {
					shutdown = 1;
					break;
				}
			if (shutdown)
				break;
		}
		for (int i = 0; i < 2; i++)
			if (streams[i].fd >= 0 && (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				pump_stream(st, id, &streams[i], r.output_limit);
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(st->sigfd, &si, sizeof(si)) > 0)
				;
		}
		/* Reap whatever exited; orphans of the payload come to us as PID 1. */
		for (;;) {
			struct rusage ru;
			int status;
			pid_t w = wait4(-1, &status, WNOHANG, &ru);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				children_left = 0;
				break;
			}
			if (w == 0)
				break;
			cpu_us += (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
				  (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
			if ((uint64_t)ru.ru_maxrss * 1024u > maxrss)
				maxrss = (uint64_t)ru.ru_maxrss * 1024u;
			if (w == pid) {
				main_done = 1;
				main_status = status;
				/* The execute is over: its background processes go too. */
				kill(-1, SIGKILL);
			}
		}
	}
	if (shutdown) {
		req_release(&r);
		for (int i = 0; i < 2; i++)
			if (streams[i].fd >= 0)
				close(streams[i].fd);
		close(repp[0]);
		return -1;
	}

	mbx_proto_begin(&st->out, MBX_MSG_EXIT, id);
	if (WIFSIGNALED(main_status)) {
		mbx_proto_put_u32(&st->out, MBX_F_EXIT_CODE, (uint32_t)-1);
		mbx_proto_put_u32(&st->out, MBX_F_SIGNAL, (uint32_t)WTERMSIG(main_status));
	} else {
		mbx_proto_put_u32(&st->out, MBX_F_EXIT_CODE, (uint32_t)WEXITSTATUS(main_status));
	}
	mbx_proto_put_u32(&st->out, MBX_F_FLAGS, (timed_out ? MBX_EXIT_TIMED_OUT : 0) |
			  (streams[0].truncated ? MBX_EXIT_STDOUT_TRUNCATED : 0) |
			  (streams[1].truncated ? MBX_EXIT_STDERR_TRUNCATED : 0));
	mbx_proto_put_u64(&st->out, MBX_F_CPU_US, cpu_us);
	mbx_proto_put_u64(&st->out, MBX_F_MAXRSS, maxrss);
	mbx_proto_put_u64(&st->out, MBX_F_ELAPSED_US, (now_ms() - start) * 1000u);
	mbx_proto_end(&st->out);
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (repp[i] >= 0)
			close(repp[i]);
	}
	req_release(&r);
	return 0;
}
