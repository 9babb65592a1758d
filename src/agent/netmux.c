/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest mode: the guest's end of the network channel (src/proto/netmux.h,
 * docs/microvm.md "Network"). With MBX_INIT_NET_PROXY the agent opens the
 * virtio-serial port org.mimobox.net and listens on 127.0.0.1:3128 in the
 * guest; every connection accepted there becomes a stream of the channel,
 * which the host hands to its proxy. The guest has no other way out: no
 * network interface but loopback.
 *
 * Served from the agent's poll loop (agent.c): the channel, the listener
 * and each stream's socket are non-blocking. Memory is bounded the same
 * way as on the host: a stream holds at most its window of the host's
 * bytes, output waits in a fixed buffer, and nothing new is read from a
 * socket or accepted while that buffer is over OUT_HIGH. The channel
 * itself is always read (its frames only ever shrink what waits).
 *
 * When the host's end goes away (it saves the guest, or restores a clone
 * of it) the streams end and the port waits for a host again (net_lost());
 * the listener stays, so connections made meanwhile are served after.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <mbx/error.h>
#include "agent.h"
#include "netmux.h"

#define NET_PORT "org.mimobox.net"
#define PROXY_PORT 3128
#define IN_CAP (2u * MBX_NETMUX_MAX_FRAME)
#define OUT_HIGH (64u * 1024u)
#define OUT_CAP (OUT_HIGH + IN_CAP * 2u + MBX_NETMUX_MAX_STREAMS * (MBX_NETMUX_MAX_FRAME + 32u))

_Static_assert(AGENT_NET_POLL == 2 + MBX_NETMUX_MAX_STREAMS, "AGENT_NET_POLL: the channel, the listener, the streams");

struct gstream {
	uint32_t id;
	int fd;               /* the accepted connection, -1: slot free */
	uint8_t *in;          /* the host's bytes not yet written to fd (MBX_NETMUX_WINDOW) */
	size_t in_off, in_len;
	uint32_t consumed;    /* written to fd, not credited yet */
	uint32_t out_credit;  /* what we may still send the host */
	int rx_closed, shut, tx_closed;
};

struct agent_net {
	int chan;             /* the port, -1 once broken */
	int down;             /* the host's end went away (a snapshot of the guest): the
	                       * port waits for it to come back, no stream is served */
	int lfd;              /* the listener */
	uint32_t last_id;
	uint8_t in[IN_CAP];
	size_t in_len;
	uint8_t out[OUT_CAP];
	size_t out_off, out_len;
	struct gstream s[MBX_NETMUX_MAX_STREAMS];
	size_t n;
};

static void drop(struct agent_net *m, struct gstream *s)
{
	close(s->fd);
	free(s->in);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	m->n--;
}

/* Setting up failed: every stream ends and the listener closes, so
 * programs see refused connections, not hangs. */
static void shut_all(struct agent_net *m)
{
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (m->s[i].fd >= 0)
			drop(m, &m->s[i]);
	if (m->chan >= 0)
		close(m->chan);
	if (m->lfd >= 0)
		close(m->lfd);
	m->chan = m->lfd = -1;
}

static int put(struct agent_net *m, uint8_t type, uint32_t id, const void *data, uint16_t len)
{
	if (m->out_off > 0 && m->out_off + m->out_len + MBX_NETMUX_HEADER + len > OUT_CAP) {
		memmove(m->out, m->out + m->out_off, m->out_len);
		m->out_off = 0;
	}
	if (m->out_off + m->out_len + MBX_NETMUX_HEADER + len > OUT_CAP)
		return -1;
	mbx_netmux_header(m->out + m->out_off + m->out_len, type, id, len);
	if (len)
		memcpy(m->out + m->out_off + m->out_len + MBX_NETMUX_HEADER, data, len);
	m->out_len += MBX_NETMUX_HEADER + len;
	return 0;
}

static struct gstream *find(struct agent_net *m, uint32_t id)
{
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (m->s[i].fd >= 0 && m->s[i].id == id)
			return &m->s[i];
	return NULL;
}

int agent_net_start(struct agent_state *st)
{
	struct sockaddr_in sa;
	struct agent_net *m;
	int one = 1;

	if (st->net)
		return 0;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		agent_send_error(st, 0, MBX_ENOMEM, ENOMEM, "network", "no memory for the network channel");
		return -1;
	}
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		m->s[i].fd = -1;
	m->lfd = -1;
	m->chan = agent_guest_open_port(NET_PORT);
	if (m->chan < 0) {
		agent_send_error(st, 0, MBX_ESYS, errno, "network", "open the network port `%s` in the guest", NET_PORT);
		free(m);
		return -1;
	}
	m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(PROXY_PORT);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (m->lfd < 0 || setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(m->lfd, 128) < 0 ||
	    fcntl(m->chan, F_SETFL, O_NONBLOCK) < 0) {
		agent_send_error(st, 0, MBX_ESYS, errno, "network", "listen on 127.0.0.1:%d in the guest for the proxy",
				 PROXY_PORT);
		shut_all(m);
		free(m);
		return -1;
	}
	st->net = m;
	return 0;
}

/*
 * The host's end of the port went away (the host saves the guest: a
 * snapshot, or a clone of it is being restored): every stream ends, the
 * buffers empty, and the port waits, out of the poll set and looked at
 * with the agent channel's POLLHUP test, until a host connects again; the
 * listener stays open, so programs' connections wait in its backlog
 * meanwhile and are served by the new host.
 */
static void net_lost(struct agent_net *m)
{
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (m->s[i].fd >= 0)
			drop(m, &m->s[i]);
	m->in_len = 0;
	m->out_off = m->out_len = 0;
	m->down = 1;
}

int agent_net_waiting(const struct agent_state *st)
{
	return st->net != NULL && st->net->chan >= 0 && st->net->down;
}

size_t agent_net_poll(struct agent_state *st, struct pollfd *p, size_t cap)
{
	struct agent_net *m = st->net;
	int may_read;
	size_t k = 0;

	if (m == NULL || m->chan < 0 || cap < 2 + MBX_NETMUX_MAX_STREAMS)
		return 0;
	if (m->down) {
		for (size_t i = 0; i < 2 + MBX_NETMUX_MAX_STREAMS; i++)
			p[k++] = (struct pollfd){ -1, 0, 0 };
		return k;
	}
	may_read = m->out_len <= OUT_HIGH;
	p[k++] = (struct pollfd){ m->chan, (short)(POLLIN | (m->out_len ? POLLOUT : 0)), 0 };
	p[k++] = (struct pollfd){ may_read && m->n < MBX_NETMUX_MAX_STREAMS ? m->lfd : -1, POLLIN, 0 };
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++) {
		struct gstream *s = &m->s[i];
		short ev = 0;

		if (s->fd >= 0 && s->in_len)
			ev |= POLLOUT;
		if (s->fd >= 0 && may_read && !s->tx_closed && s->out_credit > 0)
			ev |= POLLIN;
		p[k++] = (struct pollfd){ ev ? s->fd : -1, ev, 0 };
	}
	return k;
}

/* One frame from the host (trusted, but checked all the same: a broken
 * rule ends the channel rather than the guest's memory). */
static int handle(struct agent_net *m, const struct mbx_netmux_frame *f)
{
	struct gstream *s = find(m, f->id);
	uint32_t n;

	if (s == NULL)
		return f->type == MBX_NETMUX_OPEN ? -1 : 0; /* a stream that ended */
	switch (f->type) {
	case MBX_NETMUX_DATA:
		if (s->rx_closed || s->in_len + s->consumed + f->len > MBX_NETMUX_WINDOW)
			return -1;
		if (s->in_off + s->in_len + f->len > MBX_NETMUX_WINDOW) {
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
		}
		memcpy(s->in + s->in_off + s->in_len, f->data, f->len);
		s->in_len += f->len;
		return 0;
	case MBX_NETMUX_CREDIT:
		n = mbx_netmux_u32(f->data);
		if ((uint64_t)s->out_credit + n > MBX_NETMUX_WINDOW)
			return -1;
		s->out_credit += n;
		return 0;
	case MBX_NETMUX_CLOSE:
		s->rx_closed = 1;
		return 0;
	case MBX_NETMUX_RESET:
		drop(m, s);
		return 0;
	default:
		return -1;
	}
}

static int read_channel(struct agent_net *m)
{
	ssize_t n = read(m->chan, m->in + m->in_len, IN_CAP - m->in_len);
	size_t off = 0;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	m->in_len += (size_t)n;
	for (;;) {
		struct mbx_netmux_frame f;
		const char *why;
		long len = mbx_netmux_parse(m->in + off, m->in_len - off, &f, &why);

		if (len < 0)
			return -1;
		if (len == 0)
			break;
		if (handle(m, &f) < 0)
			return -1;
		off += (size_t)len;
	}
	memmove(m->in, m->in + off, m->in_len - off);
	m->in_len -= off;
	return 0;
}

static void accept_one(struct agent_net *m)
{
	struct gstream *s = NULL;
	int fd;

	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS && s == NULL; i++)
		if (m->s[i].fd < 0)
			s = &m->s[i];
	if (s == NULL)
		return;
	fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	/* Ids are never reused: at the end of the range, no more streams. */
	if (m->last_id == UINT32_MAX || (s->in = malloc(MBX_NETMUX_WINDOW)) == NULL ||
	    put(m, MBX_NETMUX_OPEN, m->last_id + 1, NULL, 0) < 0) {
		free(s->in);
		s->in = NULL;
		close(fd);
		return;
	}
	s->id = ++m->last_id;
	s->fd = fd;
	s->in_off = s->in_len = 0;
	s->consumed = 0;
	s->out_credit = MBX_NETMUX_WINDOW;
	s->rx_closed = s->shut = s->tx_closed = 0;
	m->n++;
}

/* A stream's socket; -1 when the output buffer overflowed. */
static int service(struct agent_net *m, struct gstream *s, short rev, int may_read)
{
	if (s->in_len && (rev & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t n = send(s->fd, s->in + s->in_off, s->in_len, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			uint32_t id = s->id;

			drop(m, s);
			return put(m, MBX_NETMUX_RESET, id, NULL, 0);
		}
		if (n > 0) {
			s->in_off += (size_t)n;
			s->in_len -= (size_t)n;
			s->consumed += (uint32_t)n;
			if (s->in_len == 0)
				s->in_off = 0;
		}
	}
	if (s->consumed && !s->rx_closed && (s->in_len == 0 || s->consumed >= MBX_NETMUX_WINDOW / 4)) {
		uint8_t b[4] = { (uint8_t)(s->consumed >> 24), (uint8_t)(s->consumed >> 16), (uint8_t)(s->consumed >> 8),
				 (uint8_t)s->consumed };

		if (put(m, MBX_NETMUX_CREDIT, s->id, b, 4) < 0)
			return -1;
		s->consumed = 0;
	}
	if (s->rx_closed && s->in_len == 0 && !s->shut) {
		shutdown(s->fd, SHUT_WR);
		s->shut = 1;
	}
	if (may_read && !s->tx_closed && s->out_credit > 0 && (rev & (POLLIN | POLLHUP | POLLERR))) {
		size_t want = s->out_credit < MBX_NETMUX_MAX_DATA ? s->out_credit : MBX_NETMUX_MAX_DATA;
		uint8_t *dst;
		ssize_t n;

		if (m->out_off + m->out_len + MBX_NETMUX_MAX_FRAME > OUT_CAP) {
			memmove(m->out, m->out + m->out_off, m->out_len);
			m->out_off = 0;
		}
		if (m->out_off + m->out_len + MBX_NETMUX_MAX_FRAME > OUT_CAP)
			return -1;
		dst = m->out + m->out_off + m->out_len;
		n = recv(s->fd, dst + MBX_NETMUX_HEADER, want, 0);
		if (n > 0) {
			mbx_netmux_header(dst, MBX_NETMUX_DATA, s->id, (uint16_t)n);
			m->out_len += MBX_NETMUX_HEADER + (size_t)n;
			s->out_credit -= (uint32_t)n;
		} else if (n == 0) {
			if (put(m, MBX_NETMUX_CLOSE, s->id, NULL, 0) < 0)
				return -1;
			s->tx_closed = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			uint32_t id = s->id;

			drop(m, s);
			return put(m, MBX_NETMUX_RESET, id, NULL, 0);
		}
	}
	if (s->fd >= 0 && s->tx_closed && s->rx_closed && s->in_len == 0)
		drop(m, s);
	return 0;
}

void agent_net_service(struct agent_state *st, const struct pollfd *p, size_t n)
{
	struct agent_net *m = st->net;
	uint32_t ids[MBX_NETMUX_MAX_STREAMS];
	int may_read;

	if (m == NULL || m->chan < 0 || n < 2 + MBX_NETMUX_MAX_STREAMS)
		return;
	if (m->down) {
		struct pollfd hp = { .fd = m->chan, .events = POLLOUT };

		if (poll(&hp, 1, 0) == 1 && !(hp.revents & (POLLHUP | POLLERR | POLLNVAL)))
			m->down = 0;
		return;
	}
	may_read = m->out_len <= OUT_HIGH;
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		ids[i] = m->s[i].fd >= 0 ? m->s[i].id : 0;
	if (p[0].revents & POLLOUT) {
		ssize_t w = write(m->chan, m->out + m->out_off, m->out_len);

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			goto broken;
		if (w > 0) {
			m->out_off += (size_t)w;
			m->out_len -= (size_t)w;
			if (m->out_len == 0)
				m->out_off = 0;
		}
	}
	if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_channel(m) < 0)
		goto broken;
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++) {
		struct gstream *s = &m->s[i];

		/* Streams the host ended in this round are gone; new ones
		 * wait for the next. */
		if (s->fd < 0 || ids[i] == 0 || s->id != ids[i])
			continue;
		if (service(m, s, p[2 + i].fd >= 0 ? p[2 + i].revents : 0, may_read) < 0)
			goto broken;
	}
	if (p[1].fd >= 0 && (p[1].revents & POLLIN))
		accept_one(m);
	return;
broken:
	net_lost(m);
}
