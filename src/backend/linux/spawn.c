/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting the agent.
 *
 * The agent binary is linked into the library and exec'd from a sealed memfd,
 * so there is no helper path to find or to swap. The child between clone()
 * and exec is a copy of a possibly multi-threaded host process: it makes raw
 * system calls only (no malloc, no locks, no glibc setxid broadcast) and
 * reports a failure as {step, errno} on a CLOEXEC pipe before exiting.
 *
 *	host                                 child (new namespaces)
 *	clone(NEWUSER|NEWPID|NEWNS|...) ---> PDEATHSIG = SIGKILL, wait for "go"
 *	write uid_map, gid_map               (end of file: the host is gone)
 *	join the sandbox cgroup
 *	"go" ------------------------------> setgroups([]) (root caller)
 *	                                     setresgid(0), setresuid(0)
 *	                                     PDEATHSIG again, host still there?
 *	                                     unshare(NEWCGROUP), setsid
 *	                                     fds: 3 = channel, others closed
 *	EOF on the error pipe <------------- execveat(memfd)
 *
 * The namespaces are user, pid, mount, IPC and UTS here, cgroup in the
 * child; the network namespace is the agent's to make (a helper of its own
 * makes it while the agent starts, and INIT joins it before anything of the
 * sandbox runs: src/agent/setup.c, agent_netns_begin).
 *
 * The agent dies with the host that made it, even when it is busy or
 * stopped and cannot see its channel close: the parent-death signal is
 * SIGKILL, which the agent keeps through exec, and its death takes every
 * process of the sandbox (all nested pid namespaces too) with it. The
 * kernel sends it when the creating *thread* ends, so it is kept only when
 * that thread is the process's main thread (a CLI, the supervisor, most
 * embedders). A sandbox made on another thread (a pool's filler) must
 * outlive that thread: its agent gets AGENT_PDEATH_SIG instead, whose
 * handler ends the sandbox only when the host's end of the channel is
 * closed (the whole host is gone), besides its end-of-file check.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "backend/backend.h"
#include "proto.h"
#include "platform/linux/syscalls.h"
#include "platform/linux/closefds.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

extern const unsigned char mbx__agent_blob[];
extern const unsigned char mbx__agent_blob_end[];

void mbx__agent_image(const uint8_t **data, size_t *len)
{
	*data = mbx__agent_blob;
	*len = (size_t)(mbx__agent_blob_end - mbx__agent_blob);
}

static pthread_once_t agent_once = PTHREAD_ONCE_INIT;
static int agent_fd = -1;
static int agent_errno;

/* Writes the embedded agent into a sealed, executable memfd, once per
 * process. The fd stays open for the life of the process. */
static void agent_memfd_init(void)
{
	size_t len = (size_t)(mbx__agent_blob_end - mbx__agent_blob), off = 0;
	int fd = memfd_create("mimobox-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);

	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("mimobox-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		agent_errno = errno;
		return;
	}
	while (off < len) {
		ssize_t n = write(fd, mbx__agent_blob + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			agent_errno = n < 0 ? errno : EIO;
			close(fd);
			return;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		agent_errno = errno;
		close(fd);
		return;
	}
	agent_fd = fd;
}

enum step {
	STEP_GO = 1,
	STEP_PDEATHSIG,
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CGROUP,
	STEP_CGROUPNS,
	STEP_SETSID,
	STEP_FDS,
	STEP_EXEC,
};

static const char *step_name(int step)
{
	switch (step) {
	case STEP_GO: return "wait for the host";
	case STEP_PDEATHSIG: return "die with the host (parent-death signal)";
	case STEP_SETGROUPS: return "clear supplementary groups";
	case STEP_SETGID: return "become gid 0 in the user namespace";
	case STEP_SETUID: return "become uid 0 in the user namespace";
	case STEP_CGROUP: return "join the sandbox cgroup";
	case STEP_CGROUPNS: return "enter a new cgroup namespace";
	case STEP_SETSID: return "start a new session";
	case STEP_FDS: return "arrange file descriptors";
	case STEP_EXEC: return "execute the agent";
	default: return "start";
	}
}

struct child_fail {
	int32_t step;
	int32_t errnum;
};

static __attribute__((noreturn)) void child_die(int fd, int step)
{
	struct child_fail f = { step, errno };

	(void)!syscall(SYS_write, fd, &f, sizeof(f));
	syscall(SYS_exit_group, 1);
	__builtin_unreachable();
}

/* 1 when the host end of the channel is closed: the host has died.
 * ppoll, not poll: the only one every architecture has. */
static int host_gone(int chan)
{
	struct pollfd p = { .fd = chan, .events = POLLRDHUP };
	struct timespec now = { 0, 0 };

	return syscall(SYS_ppoll, &p, 1, &now, NULL, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* The child side: raw system calls only (see the file comment). */
static __attribute__((noreturn)) void child_main(const struct mbx_spawn *sp, int go_r, int go_w, int err_w, int chan,
						int memfd, int keep_pdeathsig, const int *join, size_t njoin)
{
	static char *const argv[] = { "mimobox-agent", NULL };
	static char *const envp[] = { NULL };
	char c;

	/* Set before anything waits on the host; a host that died before it
	 * shows as end of file on the "go" pipe, whose other copy is ours. */
	if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_die(err_w, STEP_PDEATHSIG);
	syscall(SYS_close, go_w);
	if (syscall(SYS_read, go_r, &c, 1) != 1)
		child_die(err_w, STEP_GO);
	/* Still the host's identity and a single thread: join the cgroup by
	 * moving ourselves (see mbx__cgroup_open_self_join). */
	for (size_t i = 0; i < njoin; i++)
		if (syscall(SYS_write, join[i], "0", 1) != 1)
			child_die(err_w, STEP_CGROUP);
	if (sp->privileged && syscall(SYS_setgroups, 0, NULL) < 0)
		child_die(err_w, STEP_SETGROUPS);
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		child_die(err_w, STEP_SETGID);
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		child_die(err_w, STEP_SETUID);
	/* A change of the effective uid (a root caller maps uid 0 to an
	 * unprivileged host uid) clears the parent-death signal: set it again,
	 * then make sure the host did not die in between (getppid() is 0 in a
	 * new pid namespace, so ask the channel). A sandbox made off the main
	 * thread gives it up before exec (see the file comment). */
	if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_die(err_w, STEP_PDEATHSIG);
	if (host_gone(chan)) {
		errno = EPIPE;
		child_die(err_w, STEP_GO);
	}
	/* After the host moved us into the sandbox cgroup, so that is the root
	 * the sandbox sees. */
	if (syscall(SYS_unshare, CLONE_NEWCGROUP) < 0)
		child_die(err_w, STEP_CGROUPNS);
	if (syscall(SYS_setsid) < 0)
		child_die(err_w, STEP_SETSID);
	/* Move the three fds we keep above the range we are about to fill, then
	 * into place: 3 channel, 4 agent image, 5 error pipe; close the rest. */
	int chan_hi = (int)syscall(SYS_fcntl, chan, F_DUPFD_CLOEXEC, 64);
	int mem_hi = (int)syscall(SYS_fcntl, memfd, F_DUPFD_CLOEXEC, 64);
	int err_hi = (int)syscall(SYS_fcntl, err_w, F_DUPFD_CLOEXEC, 64);

	if (chan_hi < 0 || mem_hi < 0 || err_hi < 0)
		child_die(err_w, STEP_FDS);
	err_w = err_hi;
	if (syscall(SYS_dup3, chan_hi, 3, 0) < 0 || syscall(SYS_dup3, mem_hi, 4, O_CLOEXEC) < 0 ||
	    syscall(SYS_dup3, err_hi, 5, O_CLOEXEC) < 0)
		child_die(err_w, STEP_FDS);
	err_w = 5;
	/* The host's stdio stays with the host: a daemon embedding the library
	 * must see its own stderr reach end of file. */
	{
		int null = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);

		if (null < 0 || syscall(SYS_dup3, null, 0, 0) < 0 || syscall(SYS_dup3, null, 1, 0) < 0 ||
		    syscall(SYS_dup3, null, 2, 0) < 0)
			child_die(err_w, STEP_FDS);
	}
	if (mbx_close_fds_from(6, 0) < 0)
		child_die(err_w, STEP_FDS);
	/* The host thread waits for our exec in mbx__linux_spawn_agent() and
	 * then for the agent's greeting, sent after it handles the signal: it
	 * cannot end before either. */
	if (!keep_pdeathsig && syscall(SYS_prctl, PR_SET_PDEATHSIG, MBX_AGENT_PDEATH_SIG, 0, 0, 0) < 0)
		child_die(err_w, STEP_PDEATHSIG);
	mbx_sys_execveat(4, "", argv, envp, AT_EMPTY_PATH);
	/* Where execveat is missing or emulated badly (old kernels, valgrind),
	 * go through the fd's magic link, as fexecve does; the kernel opens it
	 * before it closes CLOEXEC fds. */
	syscall(SYS_execve, "/proc/self/fd/4", argv, envp);
	child_die(err_w, STEP_EXEC);
}

static int write_file(pid_t pid, const char *name, const char *text, mbx_error **err)
{
	char path[64];
	size_t len = strlen(text);
	int fd, e;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "user-namespace", "open `%s`", path);
	if (write(fd, text, len) != (ssize_t)len) {
		e = errno;
		close(fd);
		return mbx__error_set(err, e == EPERM ? MBX_EPERM : MBX_ESYS, e, "user-namespace", "write `%s` to `%s`", text, path);
	}
	close(fd);
	return MBX_OK;
}

void mbx__linux_kill_agent(pid_t pid, int pidfd)
{
	if (pid <= 0)
		return;
	if (pidfd < 0 || mbx_sys_pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

int mbx__linux_spawn_agent(struct mbx_spawn *sp, mbx_error **err)
{
	/* No CLONE_NEWNET: the agent makes its network namespace itself, with
	 * a helper, while it starts (src/agent/setup.c, agent_netns_begin). */
	const int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	int sv[2] = { -1, -1 }, go[2] = { -1, -1 }, ep[2] = { -1, -1 }, join[3];
	size_t njoin = 0;
	struct child_fail fail;
	char map[64];
	int pidfd = -1, rc, keep_pdeathsig;
	ssize_t n;
	long pid;

	sp->pid = -1;
	sp->pidfd = -1;
	sp->chan = -1;
	pthread_once(&agent_once, agent_memfd_init);
	if (agent_fd < 0)
		return mbx__error_set(err, MBX_ESYS, agent_errno, NULL, "load the sandbox agent into a memfd");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "create the agent channel");
		goto fail;
	}
	rc = mbx__cgroup_open_self_join(sp->cg, join, &njoin, err);
	if (rc < 0)
		goto fail;
	keep_pdeathsig = syscall(SYS_gettid) == getpid();
	pid = syscall(SYS_clone, (unsigned long)(flags | CLONE_PIDFD | SIGCHLD), NULL, &pidfd, NULL, 0);
	if (pid < 0) {
		int e = errno;

		rc = mbx__error_set(err, e == EPERM || e == ENOSPC || e == EUSERS ? MBX_ENOTSUP : MBX_ESYS, e,
				    "user-namespace", "create the sandbox namespaces");
		if (e == EPERM || e == ENOSPC)
			mbx__error_suggest(err, "unprivileged user namespaces seem disabled: check sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces, or run `mimobox doctor`");
		goto fail;
	}
	if (pid == 0)
		child_main(sp, go[0], go[1], ep[1], sv[1], agent_fd, keep_pdeathsig, join, njoin);
	while (njoin > 0)
		close(join[--njoin]);

	close(sv[1]);
	close(go[0]);
	close(ep[1]);
	sv[1] = go[0] = ep[1] = -1;
	sp->pid = (pid_t)pid;
	sp->pidfd = pidfd;

	if (!sp->privileged && (rc = write_file(sp->pid, "setgroups", "deny", err)) < 0)
		goto fail;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)sp->map_uid);
	if ((rc = write_file(sp->pid, "uid_map", map, err)) < 0)
		goto fail;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)sp->map_gid);
	if ((rc = write_file(sp->pid, "gid_map", map, err)) < 0)
		goto fail;
	if (sp->cg && sp->cg->mech == MBX_LIMITS_CGROUP_V2 && (rc = mbx__cgroup_attach(sp->cg, sp->pid, err)) < 0)
		goto fail;
	if (write(go[1], "g", 1) != 1) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "release the agent process");
		goto fail;
	}
	close(go[1]);
	go[1] = -1;
	if (sp->meanwhile && (rc = sp->meanwhile(sp->meanwhile_arg, err)) < 0)
		goto fail;
	do
		n = read(ep[0], &fail, sizeof(fail));
	while (n < 0 && errno == EINTR);
	if (n != 0) {
		if (n == (ssize_t)sizeof(fail))
			rc = mbx__error_set(err, MBX_ESYS, fail.errnum, "user-namespace", "agent start-up: %s", step_name(fail.step));
		else
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "agent start-up: lost contact");
		goto fail;
	}
	close(ep[0]);
	sp->chan = sv[0];
	return MBX_OK;

fail:
	while (njoin > 0)
		close(join[--njoin]);
	mbx__linux_kill_agent(sp->pid, sp->pidfd);
	if (sp->pidfd >= 0)
		close(sp->pidfd);
	sp->pid = -1;
	sp->pidfd = -1;
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	return rc;
}
