/* SPDX-License-Identifier: Apache-2.0 */
/* The transports under the agent protocol (transport.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

/* ---- descriptors: socket and stream ---- */

static int fd_poll(struct mbx_transport *t, short events, int timeout_ms)
{
	for (;;) {
		struct pollfd p = { .fd = t->fd, .events = events };
		int rc = poll(&p, 1, timeout_ms);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc;
		if (p.revents & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		if (p.revents & (POLLHUP | POLLERR))
			p.revents |= events & POLLIN;
		return p.revents & (POLLIN | POLLOUT | POLLHUP | POLLERR);
	}
}

static void fd_close(struct mbx_transport *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static ssize_t fd_read(struct mbx_transport *t, void *buf, size_t len)
{
	return read(t->fd, buf, len);
}

static ssize_t socket_write(struct mbx_transport *t, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MBX_PROTO_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { 0 };

	if (nfds == 0)
		return send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (nfds > MBX_PROTO_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	mbx_proto_attach_fds(&msg, ctl.buf, fds, nfds);
	return sendmsg(t->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t stream_write(struct mbx_transport *t, const void *buf, size_t len, const int *fds, size_t nfds)
{
	ssize_t n;

	(void)fds;
	if (nfds > 0) {
		errno = ENOTSUP;
		return -1;
	}
	/* A unix-socket connection to QEMU: no SIGPIPE when QEMU is gone.
	 * Any other stream (a character device, a pipe) takes write(). */
	n = send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK)
		n = write(t->fd, buf, len);
	return n;
}

static const struct mbx_transport_ops socket_ops = {
	.name = "socket",
	.can_pass_fds = 1,
	.read = fd_read,
	.write = socket_write,
	.poll = fd_poll,
	.close = fd_close,
};

static const struct mbx_transport_ops stream_ops = {
	.name = "stream",
	.can_pass_fds = 0,
	.read = fd_read,
	.write = stream_write,
	.poll = fd_poll,
	.close = fd_close,
};

static void fd_open(struct mbx_transport *t, const struct mbx_transport_ops *ops, int fd)
{
	t->ops = ops;
	t->fd = fd;
	t->priv = NULL;
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void mbx__transport_socket(struct mbx_transport *t, int fd)
{
	fd_open(t, &socket_ops, fd);
}

void mbx__transport_stream(struct mbx_transport *t, int fd)
{
	fd_open(t, &stream_ops, fd);
}

/* ---- in memory ---- */

void mbx__mem_agent_init(struct mbx_mem_agent *a, mbx_mem_agent_fn fn, void *userdata)
{
	memset(a, 0, sizeof(*a));
	mbx_rbuf_init(&a->from_host);
	a->fn = fn;
	a->userdata = userdata;
}

void mbx__mem_agent_release(struct mbx_mem_agent *a)
{
	mbx__buf_release(&a->to_host);
	mbx_rbuf_release(&a->from_host);
}

int mbx__mem_agent_push(struct mbx_mem_agent *a, const void *data, size_t len)
{
	/* Drop what the host has read before growing. */
	if (a->to_host_off > 0 && a->to_host_off == a->to_host.len) {
		a->to_host.len = 0;
		a->to_host_off = 0;
	}
	return len ? mbx__buf_append(&a->to_host, data, len) : 0;
}

int mbx__mem_agent_send(struct mbx_mem_agent *a, struct mbx_wbuf *w)
{
	int rc = w->failed ? -1 : mbx__mem_agent_push(a, w->buf, w->len);

	mbx_wbuf_reset(w);
	return rc;
}

static ssize_t mem_read(struct mbx_transport *t, void *buf, size_t len)
{
	struct mbx_mem_agent *a = t->priv;
	size_t left = a->to_host.len - a->to_host_off;

	if (left == 0) {
		if (a->eof)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	if (len > left)
		len = left;
	if (a->read_max && len > a->read_max)
		len = a->read_max;
	memcpy(buf, a->to_host.data + a->to_host_off, len);
	a->to_host_off += len;
	return (ssize_t)len;
}

static ssize_t mem_write(struct mbx_transport *t, const void *buf, size_t len, const int *fds, size_t nfds)
{
	struct mbx_mem_agent *a = t->priv;
	struct mbx_frame f;
	int rc;

	(void)fds;
	if (nfds > 0 && !a->can_pass_fds) {
		errno = ENOTSUP;
		return -1;
	}
	if (a->gone) {
		errno = EPIPE;
		return -1;
	}
	a->fds_seen += nfds;
	if (mbx_rbuf_push(&a->from_host, buf, len) < 0) {
		errno = ENOMEM;
		return -1;
	}
	while ((rc = mbx_rbuf_next(&a->from_host, &f)) == 1) {
		a->frames_seen++;
		if (a->fn && a->fn(a, &f, nfds, a->userdata) != 0) {
			a->eof = 1;
			a->gone = 1;
			break;
		}
		nfds = 0;
	}
	if (rc < 0)
		a->host_garbled = 1;
	return (ssize_t)len;
}

static int mem_poll(struct mbx_transport *t, short events, int timeout_ms)
{
	struct mbx_mem_agent *a = t->priv;
	int ready = events & POLLOUT;

	if ((events & POLLIN) && (a->to_host_off < a->to_host.len || a->eof))
		ready |= POLLIN;
	if (ready == 0 && timeout_ms > 0) {
		/* Nobody else can make bytes appear: a silent agent, seen as
		 * the wait running out. */
		struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return ready;
}

static void mem_close(struct mbx_transport *t)
{
	struct mbx_mem_agent *a = t->priv;

	if (a)
		a->host_closed = 1;
	t->priv = NULL;
}

static const struct mbx_transport_ops mem_ops = {
	.name = "mem",
	.can_pass_fds = 0,
	.read = mem_read,
	.write = mem_write,
	.poll = mem_poll,
	.close = mem_close,
};

static const struct mbx_transport_ops mem_fds_ops = {
	.name = "mem",
	.can_pass_fds = 1,
	.read = mem_read,
	.write = mem_write,
	.poll = mem_poll,
	.close = mem_close,
};

void mbx__transport_mem(struct mbx_transport *t, struct mbx_mem_agent *a)
{
	t->ops = a->can_pass_fds ? &mem_fds_ops : &mem_ops;
	t->fd = -1;
	t->priv = a;
}
