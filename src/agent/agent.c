/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's main loop: HELLO, then INIT / EXEC / SHUTDOWN requests. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"

void agent_send_error(struct agent_state *st, uint32_t id, int code, int errnum, const char *layer, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mbx_proto_begin(&st->out, MBX_MSG_ERROR, id);
	mbx_proto_put_u32(&st->out, MBX_F_CODE, (uint32_t)code);
	mbx_proto_put_u32(&st->out, MBX_F_ERRNO, (uint32_t)errnum);
	if (layer)
		mbx_proto_put_str(&st->out, MBX_F_LAYER, layer);
	mbx_proto_put_str(&st->out, MBX_F_MESSAGE, msg);
	mbx_proto_end(&st->out);
}

int agent_flush(struct agent_state *st, int block)
{
	while (st->out_sent < st->out.len) {
		ssize_t n = write(st->chan, st->out.buf + st->out_sent, st->out.len - st->out_sent);

		if (n > 0) {
			st->out_sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = st->chan, .events = POLLOUT };

			if (!block)
				return 0;
			poll(&p, 1, -1);
			if (p.revents & (POLLERR | POLLHUP))
				return -1;
			continue;
		}
		return -1;
	}
	mbx_wbuf_reset(&st->out);
	st->out_sent = 0;
	return 0;
}

/* Kills every other process of the sandbox and reaps them. As PID 1 of the
 * namespace, kill(-1) reaches all of them and none outside. */
static void kill_all(void)
{
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

ssize_t agent_recv(struct agent_state *st, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MBX_PROTO_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	ssize_t n;

	/* A guest's channel is a virtio-serial port, not a socket: no
	 * descriptors can come with its bytes. */
	if (st->guest) {
		n = read(st->chan, buf, len);
		if (n > 0)
			st->in_total += (uint64_t)n;
		return n;
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(st->chan, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n;
	/*
	 * The host sends each message whole, its descriptors on its first
	 * byte; the kernel ends a read right after the bytes that carried
	 * descriptors, which glues earlier messages in front of them but
	 * nothing after. So descriptors belong to the message that holds the
	 * last byte of this read, whatever else the read brought (several
	 * threads of the host may have messages in flight at once).
	 */
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		struct agent_fdset *set = NULL;
		size_t count;
		int *fds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cm);
		if (st->nfdq > 0 && st->fdq[st->nfdq - 1].at == st->in_total + (uint64_t)n - 1)
			set = &st->fdq[st->nfdq - 1];
		else if (st->nfdq < sizeof(st->fdq) / sizeof(st->fdq[0])) {
			set = &st->fdq[st->nfdq++];
			set->at = st->in_total + (uint64_t)n - 1;
			set->n = 0;
		}
		for (size_t i = 0; i < count; i++) {
			if (set && set->n < MBX_PROTO_MAX_FDS)
				set->fds[set->n++] = fds[i];
			else
				close(fds[i]); /* its message finds no descriptor and fails */
		}
	}
	st->in_total += (uint64_t)n;
	return n;
}

size_t agent_cmsg_fds(struct msghdr *msg, int *fds, size_t n, size_t max)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t count;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

void agent_take_fds(struct agent_state *st, size_t len)
{
	uint64_t start = st->in_next, end = st->in_next + len;
	size_t keep = 0;

	agent_close_fds(st);
	for (size_t i = 0; i < st->nfdq; i++) {
		struct agent_fdset *set = &st->fdq[i];

		if (set->at >= end) {
			st->fdq[keep++] = *set;
			continue;
		}
		for (size_t k = 0; k < set->n; k++) {
			if (set->at >= start && st->nfds < MBX_PROTO_MAX_FDS)
				st->fds[st->nfds++] = set->fds[k];
			else
				close(set->fds[k]);
		}
	}
	st->nfdq = keep;
	st->in_next = end;
}

void agent_close_fds(struct agent_state *st)
{
	for (size_t i = 0; i < st->nfds; i++)
		if (st->fds[i] >= 0) /* -1: taken by the request */
			close(st->fds[i]);
	st->nfds = 0;
}

/* Reads whatever the channel holds into the input buffer. Returns -1 on EOF
 * or error (the host is gone). */
static int read_channel(struct agent_state *st)
{
	for (;;) {
		uint8_t *p = mbx_rbuf_space(&st->in, 65536);
		ssize_t n;

		if (p == NULL)
			return -1;
		n = agent_recv(st, p, 65536);
		if (n > 0) {
			mbx_rbuf_commit(&st->in, (size_t)n);
			/* Less than asked for: most often all there was. Poll
			 * says when more is there, without a read that finds
			 * nothing first. */
			if (n < 65536)
				return 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return -1;
	}
}

/* ---- the handshake (see proto.h) ---- */

/* Features this agent offers: a guest's agent keeps its sandbox over a
 * channel reset (MBX_FEAT_RESUME, see "resuming" below); an os-mode agent
 * ends with its channel (a socketpair cannot come back), and lends its
 * spares to the host (MBX_FEAT_DIRECT, payload.c), which a guest's channel
 * cannot (it passes no descriptors). */
static uint64_t agent_features(const struct agent_state *st)
{
	return st->guest ? MBX_FEAT_RESUME : MBX_FEAT_DIRECT;
}

static struct {
	uint64_t session;  /* drawn once when the agent starts */
	uint32_t version;  /* chosen by the host (HELLO_ACK) */
	uint64_t features;
	int acked;         /* HELLO_ACK came on the current channel */
} hello;

/* A session id: random, never 0. Not a secret, so it must not block for
 * entropy early in a guest's boot: the kernel's AT_RANDOM bytes and the
 * clock stand in when the pool is not ready. */
static uint64_t new_session(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		const uint8_t *at = (const uint8_t *)getauxval(AT_RANDOM);
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec << 32 ^ (uint64_t)getpid();
		if (at)
			for (int i = 0; i < 8; i++)
				v ^= (uint64_t)at[8 + i] << (8 * i);
	}
	return v ? v : 1;
}

/* Queues HELLO in w: the versions and features this agent speaks, and its
 * session. */
static void put_hello(const struct agent_state *st, struct mbx_wbuf *w)
{
	if (hello.session == 0)
		hello.session = new_session();
	mbx_proto_begin(w, MBX_MSG_HELLO, 0);
	mbx_proto_put_u32(w, MBX_F_VERSION, MBX_PROTO_VERSION);
	mbx_proto_put_u32(w, MBX_F_VERSION_MIN, MBX_PROTO_VERSION_MIN);
	mbx_proto_put_u64(w, MBX_F_FEATURES, agent_features(st));
	mbx_proto_put_u64(w, MBX_F_SESSION, hello.session);
	mbx_proto_end(w);
}

/* Greets the host on the first channel. */
static int agent_send_hello(struct agent_state *st)
{
	put_hello(st, &st->out);
	return agent_flush(st, 1);
}

/* HELLO_ACK: the version and features the host chose. -1 when this agent
 * cannot speak them (it says so, then stops). */
static int hello_ack(struct agent_state *st, const struct mbx_frame *f)
{
	uint32_t v = 0;
	uint64_t feat = 0;

	if (hello.acked) {
		agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "HELLO_ACK came twice");
		return 0;
	}
	if (mbx_proto_find_u32(f, MBX_F_VERSION, &v) < 0 || v < MBX_PROTO_VERSION_MIN || v > MBX_PROTO_VERSION) {
		agent_send_error(st, f->id, MBX_EPROTO, 0, NULL, "the host chose protocol %u; this agent speaks %u to %u", v,
				 MBX_PROTO_VERSION_MIN, MBX_PROTO_VERSION);
		return -1;
	}
	if (mbx_proto_find_u64(f, MBX_F_FEATURES, &feat) == 0 && (feat & ~agent_features(st))) {
		agent_send_error(st, f->id, MBX_EPROTO, 0, NULL, "the host chose features %llx; this agent offers %llx",
				 (unsigned long long)feat, (unsigned long long)agent_features(st));
		return -1;
	}
	hello.version = v;
	hello.features = feat;
	hello.acked = 1;
	return 0;
}

/* Dispatches one request. Returns -1 when the agent must stop. */
static int handle(struct agent_state *st, const struct mbx_frame *f, int *initialised)
{
	if (f->type == MBX_MSG_HELLO_ACK) {
		if (hello_ack(st, f) == 0)
			return 0;
		agent_flush(st, 1);
		return -1;
	}
	if (!hello.acked && f->type != MBX_MSG_SHUTDOWN) {
		agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "request before the handshake ended (HELLO_ACK)");
		return 0;
	}
	switch (f->type) {
	case MBX_MSG_INIT:
		if (*initialised) {
			agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "sandbox already initialised");
			return 0;
		}
		if (agent_setup(st, f) < 0) {
			agent_flush(st, 1);
			return -1;
		}
		*initialised = 1;
		/* A guest keeps the per-execute path: spares are made in the
		 * os backend only (payload.c, "the spare"). */
		st->spare_on = !st->guest;
		/* READY first, then the first execute's pipes. */
		(void)agent_flush(st, 0);
		agent_pipes_ahead(st);
		return 0;
	case MBX_MSG_SHUTDOWN:
		return -1;
	default:
		break;
	}
	if (!*initialised) {
		agent_send_error(st, f->id, MBX_ESTATE, 0, NULL, "request before the sandbox was initialised");
		return 0;
	}
	switch (f->type) {
	case MBX_MSG_EXEC:
		agent_exec(st, f);
		/* A descriptor passed with it is the program's now (fd 3). */
		agent_close_fds(st);
		return 0;
	case MBX_MSG_STDIN:
	case MBX_MSG_STDIN_CLOSE:
	case MBX_MSG_SIGNAL:
	case MBX_MSG_KILL:
	case MBX_MSG_RESIZE:
	case MBX_MSG_CREDIT:
	case MBX_MSG_DETACH:
	case MBX_MSG_LIST:
		agent_proc_message(st, f);
		return 0;
	case MBX_MSG_FILE:
		agent_file(st, f);
		/* A transfer pipe passed with it belongs to its handle now. */
		agent_close_fds(st);
		return 0;
	case MBX_MSG_IDENTITY:
		agent_spare_discard(st);
		if (!st->guest) {
			agent_send_error(st, f->id, MBX_ENOTSUP, 0, NULL, "only a guest's agent takes a new identity");
			return 0;
		}
		agent_guest_identity(st, f);
		return 0;
	case MBX_MSG_LAYERS:
		/* A spare copied the mounts, the Landlock ruleset and the
		 * state these change: it goes first, a new one comes when the
		 * agent is idle again. */
		agent_spare_discard(st);
		agent_layers(st, f);
		return 0;
	case MBX_MSG_RESET:
		agent_spare_discard(st);
		agent_reset(st, f);
		return 0;
	case MBX_MSG_SPARE:
		agent_spare_lend(st, f);
		return 0;
	default:
		agent_send_error(st, f->id, MBX_EINVAL, 0, NULL, "unknown message type %u", f->type);
		return 0;
	}
}

/*
 * Resuming (guest mode, once the host chose MBX_FEAT_RESUME). When the host's
 * end of the virtio port goes away (read() gives end of file: the host closed
 * its connection to QEMU's chardev socket, or a restored VM has a new one),
 * the agent does not power off. It keeps every process running and serving:
 * their output is read within their credit windows as before and waits in
 * st->out (bounded by OUTQ_HIGH and the windows: a process that fills its
 * window waits on its pipe); exits are reaped and their EXIT queued; deadlines
 * hold. The channel is left out of the poll set (the port reports
 * POLLIN|POLLHUP at once while the host is away) and looked at every
 * RESUME_POLL_MS instead, with the same POLLHUP test the boot uses. Once the
 * host is back the agent greets it again with the same SESSION, takes
 * HELLO_ACK and goes on.
 *
 * Frames cut by the reset: the bytes of a request read before the end of
 * file are whole frames handled as usual; a partial frame at the end is
 * dropped (the host drops what it had half sent: mbx__client_reconnect).
 * Output restarts at a frame boundary: the new channel gets HELLO first,
 * then, from the first frame not completely written (resent whole, so a
 * frame half written on the old channel reaches the host complete), the
 * frames of the processes (STDOUT, STDERR, EXIT, CREDIT). Answers to
 * requests queued but not written are dropped: the host's call that waited
 * for them failed with the old channel. Bytes the port took before the guest
 * learned of the reset may be lost by QEMU (it discards what a guest writes
 * to a disconnected chardev): a host drops the channel between requests, when
 * it has read what came (docs/microvm.md, "Resuming").
 */
#define RESUME_POLL_MS 20

static int can_resume(const struct agent_state *st)
{
	return st->guest && (hello.features & MBX_FEAT_RESUME);
}

/* The host's end went away: drop the partial input frame, wait for it. */
static void channel_lost(struct agent_state *st)
{
	mbx_rbuf_release(&st->in);
	mbx_rbuf_init(&st->in);
	st->in_total = st->in_next = 0;
	hello.acked = 0;
	st->chan_down = 1;
}

/* The host's end is back: HELLO, then the process frames not yet written
 * (see above). -1 when memory ran out. */
static int channel_back(struct agent_state *st)
{
	struct mbx_wbuf next;
	size_t at = 0;

	mbx_wbuf_init(&next);
	put_hello(st, &next);
	while (at < st->out.len) {
		struct mbx_frame f;
		struct mbx_field_iter it;
		const uint8_t *val;
		uint32_t len;
		uint16_t tag;
		size_t used;

		/* Our own frames: always whole and well formed. */
		if (mbx_proto_parse(st->out.buf + at, st->out.len - at, &f, &used) != 1)
			break;
		if (at + used > st->out_sent && (f.type == MBX_MSG_STDOUT || f.type == MBX_MSG_STDERR ||
						 f.type == MBX_MSG_EXIT || f.type == MBX_MSG_CREDIT)) {
			mbx_proto_begin(&next, f.type, f.id);
			mbx_field_iter_init(&it, f.body, f.len);
			while (mbx_field_next(&it, &tag, &val, &len) == 1)
				mbx_proto_put(&next, tag, val, len);
			mbx_proto_end(&next);
		}
		at += used;
	}
	if (next.failed) {
		mbx_wbuf_release(&next);
		return -1;
	}
	mbx_wbuf_release(&st->out);
	st->out = next;
	st->out_sent = 0;
	st->chan_down = 0;
	return 0;
}

/*
 * The parent-death signal of an agent made on a host thread other than the
 * main one (spawn.c): that thread may end while the host lives on, so the
 * sandbox ends only when the host's end of the channel is closed, which
 * happens once the whole host process is gone. It interrupts whatever the
 * agent waits in. Async-signal-safe calls only.
 */
static void on_parent_death(int sig)
{
	struct pollfd p = { .fd = AGENT_FD, .events = POLLRDHUP };
	int saved = errno;

	(void)sig;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		kill(-1, SIGKILL);
		_exit(0);
	}
	errno = saved;
}

/* The end of the agent: a guest's init never returns (the guest powers
 * off); in the os backend the exit status is returned. */
static int finish(const struct agent_state *st, int status)
{
	if (st->guest)
		agent_guest_poweroff();
	return status;
}

int main(void)
{
	struct agent_state st;
	struct sigaction sa;
	sigset_t mask;
	int initialised = 0;

	memset(&st, 0, sizeof(st));
	st.chan = AGENT_FD;
	st.landlock_fd = -1;
	st.storage_fd = -1;
	st.cgroup_procs_fd = -1;
	st.oom_events_fd = -1;
	st.spare_sock = -1;
	st.lend_sock = -1;
	st.next_pipes = AGENT_PIPES_NONE;
	st.netns_pidfd = -1;
	st.netns_sock = -1;
	for (int i = 0; i < AGENT_MAX_FILES; i++) {
		st.files[i].fd = -1;
		st.files[i].pipe = -1;
	}
	mbx_rbuf_init(&st.in);
	mbx_wbuf_init(&st.out);
	/* A microvm guest's init: build the guest, open the channel. */
	st.guest = agent_guest_detect();
	if (st.guest)
		agent_guest_boot(&st);
	if (fcntl(st.chan, F_SETFL, O_NONBLOCK) < 0)
		return finish(&st, 1);
	/* The agent keeps capabilities in its namespaces; the payload must not
	 * be able to read its memory through /proc. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Every signal at its default, whatever the host process ignored (a
	 * host started in the background ignores SIGINT and SIGQUIT, and exec
	 * keeps ignored signals): programs inherit our dispositions, and Ctrl-C
	 * on their terminal must end them. Once here, not per execute. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (!st.guest) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_parent_death;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(MBX_AGENT_PDEATH_SIG, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	st.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (st.sigfd < 0)
		return finish(&st, 1);

	if (agent_send_hello(&st) < 0)
		return finish(&st, 1);
	/* The network namespace is made while the host answers HELLO and
	 * sends INIT, and the mounts are built (setup.c). */
	if (!st.guest)
		agent_netns_begin(&st);
	if (st.boot_failed)
		agent_guest_failed(&st);

	for (;;) {
		struct pollfd p[2 + 4 * AGENT_MAX_PROCS + AGENT_NET_POLL];
		struct mbx_frame f;
		size_t n, nn;
		int rc, gone, timeout = -1;

		p[0] = (struct pollfd){ .fd = st.chan_down ? -1 : st.chan,
					.events = POLLIN | (st.out.len > st.out_sent ? POLLOUT : 0) };
		p[1] = (struct pollfd){ .fd = st.sigfd, .events = POLLIN };
		n = agent_proc_poll(&st, p + 2, 4 * AGENT_MAX_PROCS, &timeout);
		nn = agent_net_poll(&st, p + 2 + n, AGENT_NET_POLL);
		if ((st.chan_down || agent_net_waiting(&st)) && (timeout < 0 || timeout > RESUME_POLL_MS))
			timeout = RESUME_POLL_MS;
		/* Idle, every answer written: the next execute's mini-init is
		 * prepared now, off its critical path (or the poll wakes when it
		 * is time to). */
		if (st.out.len == st.out_sent)
			agent_spare_make(&st, &timeout);
		else
			st.idle_us = 0;
		if (poll(p, (nfds_t)(2 + n + nn), timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(st.sigfd, &si, sizeof(si)) > 0)
				;
		}
		/* Children are reaped when SIGCHLD said one ended: drained
		 * above, before the reaping, so one that ends later signals
		 * again. */
		agent_proc_service(&st, p + 2, n, (p[1].revents & POLLIN) != 0);
		agent_net_service(&st, p + 2 + n, nn);
		if (st.chan_down) {
			if (agent_guest_host_connected(&st) && channel_back(&st) < 0)
				break;
			if (st.chan_down)
				continue;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			gone = read_channel(&st) < 0;
			if (gone && !can_resume(&st))
				break;
			for (;;) {
				size_t before = st.in.off;

				if ((rc = mbx_rbuf_next(&st.in, &f)) != 1)
					break;
				agent_take_fds(&st, st.in.off - before);
				rc = handle(&st, &f, &initialised);
				/* What the message did not take is closed. */
				agent_close_fds(&st);
				if (rc < 0)
					goto out;
			}
			if (rc < 0)
				break;
			if (gone) {
				channel_lost(&st);
				continue;
			}
		}
		if (agent_flush(&st, 0) < 0) {
			if (!can_resume(&st))
				break;
			channel_lost(&st);
		}
	}
out:
	agent_proc_kill_all(&st);
	kill_all();
	return finish(&st, 0);
}
