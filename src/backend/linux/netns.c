/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network policies of the os backend (docs/network.md):
 *
 *   deny-all       the sandbox's own network namespace with loopback only
 *                  (spawn.c makes it, the agent brings lo up)
 *   allow-domains  the same empty namespace, plus one TCP listener on
 *                  127.0.0.1:3128 *inside* it that belongs to the host: a
 *                  short-lived helper process joins the sandbox's user and
 *                  network namespaces, binds and listens, and hands the
 *                  socket back over a unix socket. The host's proxy threads
 *                  accept on it; every connection they make goes out from
 *                  the host's namespace, after the policy checks. The
 *                  sandbox itself still has no route anywhere.
 *   allow-all      pasta (Debian's passt package) attached to the sandbox's
 *                  namespace: a tap device with the host's addresses and
 *                  routes, translated to ordinary sockets of the host.
 *                  Inbound port forwarding is off; the gateway address maps
 *                  to the host's loopback only with allow_private.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountplan.h"
#include "netns.h"
#include "net/net.h"
#include "platform/linux/syscalls.h"

#define HELPER_DEADLINE_MS 5000
#define PASTA_DEADLINE_MS 10000

/* ==== a listener inside the sandbox's network namespace ==== */

struct helper_report {
	int32_t step;
	int32_t errnum;
};

enum { H_USERNS = 1, H_NETNS, H_SOCKET, H_BIND, H_LISTEN, H_SEND };

static const char *helper_step(int step)
{
	switch (step) {
	case H_USERNS: return "join the sandbox's user namespace";
	case H_NETNS: return "join the sandbox's network namespace";
	case H_SOCKET: return "create the proxy socket";
	case H_BIND: return "bind the proxy socket to 127.0.0.1";
	case H_LISTEN: return "listen on the proxy socket";
	case H_SEND: return "hand the proxy socket to the host";
	default: return "start the network helper";
	}
}

/*
 * The helper, a fork of a possibly multi-threaded host: raw system calls
 * only (as in spawn.c). Joining a user namespace needs a single-threaded
 * process, which is why this is a process and not a thread: a thread could
 * setns() into the network namespace alone, but only with CAP_SYS_ADMIN in
 * the host's user namespace, which an unprivileged caller lacks. In the
 * sandbox's user namespace, which the caller owns, it has it.
 */
static __attribute__((noreturn)) void helper_main(int chan, int userns, int netns, uint16_t port)
{
	struct helper_report rep = { 0, 0 };
	struct sockaddr_in sa;
	struct msghdr mh;
	struct iovec iov = { &rep, sizeof(rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct cmsghdr *cm;
	long s = -1;

	if (syscall(SYS_setns, userns, CLONE_NEWUSER) < 0) {
		rep.step = H_USERNS;
		goto fail;
	}
	if (syscall(SYS_setns, netns, CLONE_NEWNET) < 0) {
		rep.step = H_NETNS;
		goto fail;
	}
	s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		rep.step = H_SOCKET;
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (syscall(SYS_bind, s, &sa, sizeof(sa)) < 0) {
		rep.step = H_BIND;
		goto fail;
	}
	if (syscall(SYS_listen, s, 128) < 0) {
		rep.step = H_LISTEN;
		goto fail;
	}
	memset(&mh, 0, sizeof(mh));
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	*(int *)(void *)CMSG_DATA(cm) = (int)s;
	if (syscall(SYS_sendmsg, chan, &mh, MSG_NOSIGNAL) < 0) {
		rep.step = H_SEND;
		goto fail;
	}
	syscall(SYS_exit_group, 0);
	__builtin_unreachable();
fail:
	rep.errnum = errno;
	(void)!syscall(SYS_write, chan, &rep, sizeof(rep));
	syscall(SYS_exit_group, 1);
	__builtin_unreachable();
}

int mbx__netns_listen(pid_t agent, uint16_t port, int *out, mbx_error **err)
{
	struct helper_report rep = { 0, 0 };
	int sv[2] = { -1, -1 }, userns = -1, netns = -1, fd = -1, rc = MBX_OK;
	char path[64];
	struct pollfd pf;
	struct msghdr mh;
	struct iovec iov = { &rep, sizeof(rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct cmsghdr *cm;
	ssize_t n;
	long child;

	*out = -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)agent);
	userns = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)agent);
	netns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0 || netns < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, "network", "open the namespaces of the sandbox agent");
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, "network", "create the network helper's channel");
		goto out;
	}
	child = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0);
	if (child < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, "network", "start the network helper");
		goto out;
	}
	if (child == 0)
		helper_main(sv[1], userns, netns, port);
	close(sv[1]);
	sv[1] = -1;

	pf.fd = sv[0];
	pf.events = POLLIN;
	do
		n = poll(&pf, 1, HELPER_DEADLINE_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		kill((pid_t)child, SIGKILL);
		rc = mbx__error_set(err, MBX_ESYS, n == 0 ? ETIMEDOUT : errno, "network", "the network helper did not answer");
	} else {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		do
			n = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
		while (n < 0 && errno == EINTR);
		for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if (fd < 0) {
			if (n == (ssize_t)sizeof(rep) && rep.step)
				rc = mbx__error_set(err, rep.errnum == EPERM ? MBX_EPERM : MBX_ESYS, rep.errnum, "network",
						    "proxy listener: %s", helper_step(rep.step));
			else
				rc = mbx__error_set(err, MBX_ESYS, n < 0 ? errno : EPROTO, "network",
						    "proxy listener: the network helper failed");
		}
	}
	while (waitpid((pid_t)child, NULL, __WALL) < 0 && errno == EINTR)
		;
	*out = fd;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (userns >= 0)
		close(userns);
	if (netns >= 0)
		close(netns);
	return rc;
}

/* ==== pasta for allow-all ==== */

static const char *find_pasta(void)
{
	static const char *const dirs[] = { "/usr/bin/pasta", "/usr/local/bin/pasta", "/usr/sbin/pasta", "/bin/pasta", NULL };

	for (size_t i = 0; dirs[i]; i++)
		if (access(dirs[i], X_OK) == 0)
			return dirs[i];
	return NULL;
}

/* The last line of pasta's output that says something (it also complains
 * that it cannot reach syslog, which is noise here). */
static void last_line(char *buf, char *out, size_t outlen)
{
	char *save = NULL;

	out[0] = '\0';
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (*l && strstr(l, "syslog") == NULL)
			snprintf(out, outlen, "%s", l);
}

int mbx__pasta_start(struct mbx_pasta *ps, pid_t agent, const char *statedir, int map_host_loopback, mbx_error **err)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", NULL };
	const char *pasta = find_pasta();
	char pidfile[4200], target[24], output[4096], line[512];
	char *argv[24];
	size_t argc = 0, outlen = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2] = { -1, -1 }, rc, status = 0;
	uint64_t deadline;
	pid_t pid = -1;
	FILE *f;
	int daemon_pid = 0;

	ps->pid = -1;
	ps->pidfd = -1;
	if (pasta == NULL) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "network",
			       "network policy `all` needs pasta (user-mode networking), which is not installed");
		mbx__error_suggest(err, "install Debian's passt package (apt-get install passt), or use the allow-domains policy");
		return MBX_ENOTSUP;
	}
	if (geteuid() != 0 && access("/dev/net/tun", R_OK | W_OK) < 0) {
		struct stat st;
		int e = errno;

		mbx__error_set(err, MBX_ENOTSUP, e, "network",
			       "network policy `all` needs /dev/net/tun for pasta, and this user cannot open it (mode %04o)",
			       stat("/dev/net/tun", &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0u);
		mbx__error_suggest(err, "give /dev/net/tun its usual mode 0666, run as root, or use the allow-domains policy");
		return MBX_ENOTSUP;
	}
	snprintf(pidfile, sizeof(pidfile), "%s/pasta.pid", statedir);
	snprintf(target, sizeof(target), "%d", (int)agent);
	argv[argc++] = (char *)"pasta";
	argv[argc++] = (char *)"--config-net";
	argv[argc++] = (char *)"--quiet";
	/* Nothing forwarded into the sandbox, nor from its loopback to the
	 * host's: outbound connections only. */
	argv[argc++] = (char *)"-t";
	argv[argc++] = (char *)"none";
	argv[argc++] = (char *)"-u";
	argv[argc++] = (char *)"none";
	argv[argc++] = (char *)"-T";
	argv[argc++] = (char *)"none";
	argv[argc++] = (char *)"-U";
	argv[argc++] = (char *)"none";
	if (!map_host_loopback)
		argv[argc++] = (char *)"--no-map-gw";
	if (geteuid() == 0) {
		/* pasta would drop to nobody before joining the sandbox's user
		 * namespace, which root owns; it isolates itself (namespaces,
		 * seccomp, no capabilities) once attached. */
		argv[argc++] = (char *)"--runas";
		argv[argc++] = (char *)"0";
	}
	argv[argc++] = (char *)"--pid";
	argv[argc++] = pidfile;
	argv[argc++] = target;
	argv[argc] = NULL;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "network", "start pasta");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, pasta, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return mbx__error_set(err, MBX_ESYS, rc, "network", "start `%s`", pasta);
	}
	/* pasta sets the namespace up, then forks its daemon and exits: its
	 * exit is the sign the sandbox has its network. */
	deadline = mbx__now_us() + PASTA_DEADLINE_MS * 1000ull;
	for (;;) {
		struct pollfd pf = { pipefd[0], POLLIN, 0 };
		uint64_t now = mbx__now_us();
		int r;
		ssize_t n;

		if (now >= deadline)
			break;
		r = poll(&pf, 1, (int)((deadline - now) / 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n = read(pipefd[0], output + outlen, sizeof(output) - 1 - outlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		outlen += (size_t)n;
		if (outlen == sizeof(output) - 1)
			outlen = 0; /* keep the tail */
	}
	close(pipefd[0]);
	output[outlen] = '\0';
	if (mbx__now_us() >= deadline)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	f = fopen(pidfile, "re");
	if (f) {
		if (fscanf(f, "%d", &daemon_pid) != 1)
			daemon_pid = 0;
		fclose(f);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || daemon_pid <= 0) {
		last_line(output, line, sizeof(line));
		mbx__error_set(err, MBX_ENOTSUP, 0, "network", "pasta could not give the sandbox a network: %s",
			       line[0] ? line : WIFEXITED(status) ? "it failed without saying why" : "it was killed");
		mbx__error_suggest(err, "check that `pasta` works for this user here, or use the allow-domains policy");
		if (daemon_pid > 0)
			kill(daemon_pid, SIGKILL);
		return MBX_ENOTSUP;
	}
	ps->pid = daemon_pid;
	ps->pidfd = mbx_sys_pidfd_open(daemon_pid, 0);
	return MBX_OK;
}

void mbx__pasta_stop(struct mbx_pasta *ps)
{
	if (ps->pid <= 0)
		return;
	/* pasta is not our child (it daemonized): signal it through its pidfd
	 * so a recycled pid is never hit; whoever adopted it reaps it. */
	if (ps->pidfd >= 0) {
		mbx_sys_pidfd_send_signal(ps->pidfd, SIGKILL, NULL, 0);
		close(ps->pidfd);
	}
	ps->pid = -1;
	ps->pidfd = -1;
}

/* ==== what the sandbox's environment and /etc get ==== */

int mbx__linux_write_ca(const mbx_config *cfg, const char *statedir, char **path_out, mbx_error **err)
{
	char *bundle = NULL, *path = NULL;
	size_t len = 0, off = 0;
	int fd;

	*path_out = NULL;
	if (mbx__net_ca_pem(cfg, NULL) == NULL)
		return MBX_OK;
	if (mbx__net_ca_bundle(cfg, &bundle, &len) < 0 || asprintf(&path, "%s/ca.pem", statedir) < 0) {
		free(bundle);
		return mbx__error_oom(err);
	}
	/* The agent copies it into /etc from a descriptor the library passes
	 * (the state directory is 0700); the copy keeps this 0644 mode, so
	 * every user inside the sandbox can read it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		free(bundle);
		mbx__error_set(err, MBX_ESYS, e, "network", "write the certificate bundle `%s`", path);
		free(path);
		return MBX_ESYS;
	}
	while (off < len) {
		ssize_t n = write(fd, bundle + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			close(fd);
			free(bundle);
			mbx__error_set(err, MBX_ESYS, e, "network", "write the certificate bundle `%s`", path);
			free(path);
			return MBX_ESYS;
		}
		off += (size_t)n;
	}
	close(fd);
	free(bundle);
	*path_out = path;
	return MBX_OK;
}

/* ==== per sandbox ==== */

int mbx__linux_net_needs_statedir(const mbx_config *cfg)
{
	return mbx__net_ca_pem(cfg, NULL) != NULL || cfg->network == MBX_NETWORK_ALLOW_ALL;
}

int mbx__linux_net_prepare(mbx_sandbox *sb, const char *statedir, struct mbx_mountplan *plan, mbx_error **err)
{
	char *ca = NULL;
	int rc;

	rc = mbx__linux_write_ca(sb->cfg, statedir, &ca, err);
	if (rc == MBX_OK && ca && mbx__mountplan_add_etc_copy(plan, ca, MBX_NET_CA_PATH) < 0)
		rc = mbx__error_oom(err);
	free(ca);
	if (rc == MBX_OK)
		rc = mbx__net_env(sb->cfg, err);
	return rc;
}

int mbx__linux_net_start(struct mbx_linux_net *n, mbx_sandbox *sb, pid_t agent, const char *statedir, mbx_error **err)
{
	int fd = -1, rc;

	switch (sb->cfg->network) {
	case MBX_NETWORK_ALLOW_DOMAINS:
		rc = mbx__netns_listen(agent, MBX_NET_PROXY_PORT, &fd, err);
		if (rc == MBX_OK)
			rc = mbx__netproxy_new(&n->proxy, sb->cfg, sb->net ? sb->net->log : NULL, NULL, err);
		if (rc == MBX_OK) {
			rc = mbx__netproxy_listen(n->proxy, fd, err);
			fd = -1; /* the proxy's now */
		}
		if (fd >= 0)
			close(fd);
		return rc;
	case MBX_NETWORK_ALLOW_ALL:
		return mbx__pasta_start(&n->pasta, agent, statedir, mbx__net_allow_private(sb->cfg), err);
	default:
		return MBX_OK;
	}
}

void mbx__linux_net_stop(struct mbx_linux_net *n)
{
	mbx__netproxy_free(n->proxy);
	n->proxy = NULL;
	mbx__pasta_stop(&n->pasta);
}

void mbx__pasta_collect(const char *dir)
{
	char path[4200], want[4300], cmd[8192];
	int pid = 0, fd, pidfd;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pasta.pid", dir);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 1)
		return;
	/* Only the pasta started for this directory: its command line names
	 * the pid file (a recycled pid would not). */
	pidfd = mbx_sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return;
	snprintf(want, sizeof(want), "--pid%c%s", '\0', path);
	snprintf(cmd, sizeof(cmd), "/proc/%d/cmdline", pid);
	fd = open(cmd, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0 && memmem(cmd, (size_t)n, want, 6 + strlen(path)) != NULL)
		mbx_sys_pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	close(pidfd);
}
