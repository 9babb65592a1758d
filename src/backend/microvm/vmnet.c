/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's end of a microVM's network channel (vmnet.h, the protocol in
 * src/proto/netmux.h, docs/microvm.md "Network").
 *
 * One thread polls the channel, a stop pipe and every stream's socket.
 * Memory is bounded whatever the guest does: input is read into a fixed
 * buffer of two frames; a stream holds at most MBX_NETMUX_WINDOW bytes the
 * guest sent and its peer has not taken yet (the guest may send no more
 * than its credit, which is exactly the room left); output goes into a
 * fixed buffer, and while more than OUT_HIGH bytes wait in it the thread
 * reads neither the channel nor any stream. A guest that breaks a rule
 * gets its channel cut: the thread closes the channel and every stream
 * and serves nothing more.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netmux.h"
#include "vmnet.h"

#define IN_CAP (2u * MBX_NETMUX_MAX_FRAME)
/* Output: above this nothing more is read; what one round can add on top
 * (answers to one input buffer of frames, one frame per stream) fits the
 * rest. */
#define OUT_HIGH (64u * 1024u)
#define OUT_CAP (OUT_HIGH + IN_CAP * 2u + MBX_NETMUX_MAX_STREAMS * (MBX_NETMUX_MAX_FRAME + 32u))

struct vstream {
	uint32_t id;
	int fd;               /* our end of the socketpair, -1: slot free */
	uint8_t *in;          /* guest bytes not yet written to fd (MBX_NETMUX_WINDOW) */
	size_t in_off, in_len;
	uint32_t in_credit;   /* what the guest may still send */
	uint32_t consumed;    /* written to fd, not credited yet */
	uint32_t out_credit;  /* what we may still send the guest */
	int rx_closed;        /* the guest sent CLOSE */
	int shut;             /* fd's write side shut down */
	int tx_closed;        /* we sent CLOSE */
};

struct mbx_vmnet {
	int chan;
	int stop_r, stop_w;
	mbx_vmnet_open_fn open;
	void *ud;
	const mbx_config *cfg;
	pthread_t thread;
	int running;

	uint8_t in[IN_CAP];
	size_t in_len;
	uint8_t *out;         /* OUT_CAP */
	size_t out_off, out_len;
	uint32_t last_id;     /* the highest id the guest opened */
	struct vstream s[MBX_NETMUX_MAX_STREAMS];
	size_t nstreams;

	pthread_mutex_t lock; /* guards st */
	struct mbx_vmnet_stats st;
	const char *cut_why;
};

size_t mbx__vmnet_held_bound(void)
{
	return (size_t)MBX_NETMUX_MAX_STREAMS * MBX_NETMUX_WINDOW + OUT_CAP;
}

static struct vstream *find(struct mbx_vmnet *v, uint32_t id)
{
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (v->s[i].fd >= 0 && v->s[i].id == id)
			return &v->s[i];
	return NULL;
}

static void drop(struct mbx_vmnet *v, struct vstream *s)
{
	close(s->fd);
	free(s->in);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	v->nstreams--;
}

/* Appends a frame; -1 when the output buffer is full (cannot happen
 * within the bounds above: treated as a cut). */
static int put(struct mbx_vmnet *v, uint8_t type, uint32_t id, const void *data, uint16_t len)
{
	if (v->out_off > 0 && v->out_off + v->out_len + MBX_NETMUX_HEADER + len > OUT_CAP) {
		memmove(v->out, v->out + v->out_off, v->out_len);
		v->out_off = 0;
	}
	if (v->out_off + v->out_len + MBX_NETMUX_HEADER + len > OUT_CAP)
		return -1;
	mbx_netmux_header(v->out + v->out_off + v->out_len, type, id, len);
	if (len)
		memcpy(v->out + v->out_off + v->out_len + MBX_NETMUX_HEADER, data, len);
	v->out_len += MBX_NETMUX_HEADER + len;
	return 0;
}

static int put_credit(struct mbx_vmnet *v, uint32_t id, uint32_t n)
{
	uint8_t b[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	return put(v, MBX_NETMUX_CREDIT, id, b, 4);
}

/* A new stream: a socketpair, one end to `open`. */
static int do_open(struct mbx_vmnet *v, uint32_t id)
{
	struct vstream *s = NULL;
	int sv[2];

	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS && s == NULL; i++)
		if (v->s[i].fd < 0)
			s = &v->s[i];
	if (s == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return put(v, MBX_NETMUX_RESET, id, NULL, 0);
	s->in = malloc(MBX_NETMUX_WINDOW);
	if (s->in == NULL) {
		close(sv[0]);
		close(sv[1]);
		return put(v, MBX_NETMUX_RESET, id, NULL, 0);
	}
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	if (v->open(v->ud, sv[0]) < 0) { /* sv[0] is closed by then */
		close(sv[1]);
		free(s->in);
		s->in = NULL;
		return put(v, MBX_NETMUX_RESET, id, NULL, 0);
	}
	s->id = id;
	s->fd = sv[1];
	s->in_off = s->in_len = 0;
	s->in_credit = MBX_NETMUX_WINDOW;
	s->consumed = 0;
	s->out_credit = MBX_NETMUX_WINDOW;
	s->rx_closed = s->shut = s->tx_closed = 0;
	v->nstreams++;
	pthread_mutex_lock(&v->lock);
	v->st.opened++;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* One frame from the guest. Returns 0, or -1 with v->cut_why set. */
static int handle(struct mbx_vmnet *v, const struct mbx_netmux_frame *f)
{
	struct vstream *s;
	uint32_t n;

	if (f->type == MBX_NETMUX_OPEN) {
		if (f->id <= v->last_id) {
			v->cut_why = "OPEN of a stream id already used (ids must increase)";
			return -1;
		}
		v->last_id = f->id;
		if (do_open(v, f->id) < 0) {
			v->cut_why = "output buffer overflow";
			return -1;
		}
		return 0;
	}
	s = find(v, f->id);
	if (s == NULL) {
		if (f->id <= v->last_id)
			return 0; /* a stream that ended: late frames are harmless */
		v->cut_why = "a frame names a stream that was never opened";
		return -1;
	}
	switch (f->type) {
	case MBX_NETMUX_DATA:
		if (s->rx_closed) {
			v->cut_why = "DATA after the stream's CLOSE";
			return -1;
		}
		if (f->len > s->in_credit) {
			v->cut_why = "DATA beyond the stream's credit";
			return -1;
		}
		/* in_len + in_credit <= WINDOW: the bytes fit once packed. */
		if (s->in_off + s->in_len + f->len > MBX_NETMUX_WINDOW) {
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
		}
		memcpy(s->in + s->in_off + s->in_len, f->data, f->len);
		s->in_len += f->len;
		s->in_credit -= f->len;
		return 0;
	case MBX_NETMUX_CREDIT:
		n = mbx_netmux_u32(f->data);
		if (n == 0 || (uint64_t)s->out_credit + n > MBX_NETMUX_WINDOW) {
			v->cut_why = "CREDIT of zero or above the window";
			return -1;
		}
		s->out_credit += n;
		return 0;
	case MBX_NETMUX_CLOSE:
		if (s->rx_closed) {
			v->cut_why = "CLOSE of a stream twice";
			return -1;
		}
		s->rx_closed = 1;
		return 0;
	case MBX_NETMUX_RESET:
		drop(v, s);
		return 0;
	default:
		v->cut_why = "a frame of unknown type";
		return -1;
	}
}

/* Reads and handles what the channel has. Returns 1 to go on, 0 at the
 * channel's end, -1 on a violation. */
static int read_channel(struct mbx_vmnet *v)
{
	ssize_t n = read(v->chan, v->in + v->in_len, IN_CAP - v->in_len);
	size_t off = 0;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	v->in_len += (size_t)n;
	for (;;) {
		struct mbx_netmux_frame f;
		const char *why = NULL;
		long len = mbx_netmux_parse(v->in + off, v->in_len - off, &f, &why);

		if (len < 0) {
			v->cut_why = why;
			return -1;
		}
		if (len == 0)
			break;
		if (handle(v, &f) < 0)
			return -1;
		off += (size_t)len;
	}
	memmove(v->in, v->in + off, v->in_len - off);
	v->in_len -= off;
	return 1;
}

/* A stream's socket: deliver the guest's bytes, read the peer's. Returns
 * 0, or -1 when the output buffer overflowed. */
static int service(struct mbx_vmnet *v, struct vstream *s, short rev, int may_read)
{
	if (s->in_len && (rev & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t n = send(s->fd, s->in + s->in_off, s->in_len, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			uint32_t id = s->id;

			drop(v, s);
			return put(v, MBX_NETMUX_RESET, id, NULL, 0);
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
		if (put_credit(v, s->id, s->consumed) < 0)
			return -1;
		s->in_credit += s->consumed;
		s->consumed = 0;
	}
	if (s->rx_closed && s->in_len == 0 && !s->shut) {
		shutdown(s->fd, SHUT_WR);
		s->shut = 1;
	}
	if (may_read && !s->tx_closed && s->out_credit > 0 && (rev & (POLLIN | POLLHUP | POLLERR))) {
		uint8_t *dst;
		size_t want = s->out_credit < MBX_NETMUX_MAX_DATA ? s->out_credit : MBX_NETMUX_MAX_DATA;
		ssize_t n;

		if (v->out_off + v->out_len + MBX_NETMUX_MAX_FRAME > OUT_CAP) {
			memmove(v->out, v->out + v->out_off, v->out_len);
			v->out_off = 0;
		}
		if (v->out_off + v->out_len + MBX_NETMUX_MAX_FRAME > OUT_CAP)
			return -1;
		dst = v->out + v->out_off + v->out_len;
		n = recv(s->fd, dst + MBX_NETMUX_HEADER, want, 0);
		if (n > 0) {
			mbx_netmux_header(dst, MBX_NETMUX_DATA, s->id, (uint16_t)n);
			v->out_len += MBX_NETMUX_HEADER + (size_t)n;
			s->out_credit -= (uint32_t)n;
		} else if (n == 0) {
			if (put(v, MBX_NETMUX_CLOSE, s->id, NULL, 0) < 0)
				return -1;
			s->tx_closed = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			uint32_t id = s->id;

			drop(v, s);
			return put(v, MBX_NETMUX_RESET, id, NULL, 0);
		}
	}
	if (s->fd >= 0 && s->tx_closed && s->rx_closed && s->in_len == 0)
		drop(v, s);
	return 0;
}

static void note(struct mbx_vmnet *v)
{
	size_t held = v->out_len;

	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (v->s[i].fd >= 0)
			held += v->s[i].in_len;
	pthread_mutex_lock(&v->lock);
	v->st.streams = v->nstreams;
	v->st.held = held;
	if (held > v->st.held_max)
		v->st.held_max = held;
	pthread_mutex_unlock(&v->lock);
}

static void close_all(struct mbx_vmnet *v)
{
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		if (v->s[i].fd >= 0)
			drop(v, &v->s[i]);
	if (v->chan >= 0)
		close(v->chan);
	v->chan = -1;
}

static void *vmnet_main(void *arg)
{
	struct mbx_vmnet *v = arg;
	struct pollfd p[2 + MBX_NETMUX_MAX_STREAMS];
	struct vstream *ps[MBX_NETMUX_MAX_STREAMS];
	uint32_t ids[MBX_NETMUX_MAX_STREAMS];
	int cut = 0;

	for (;;) {
		int may_read = v->out_len <= OUT_HIGH, r;
		size_t np = 2, ns = 0;

		p[0] = (struct pollfd){ v->chan, (short)((may_read ? POLLIN : 0) | (v->out_len ? POLLOUT : 0)), 0 };
		p[1] = (struct pollfd){ v->stop_r, POLLIN, 0 };
		for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++) {
			struct vstream *s = &v->s[i];
			short ev = 0;

			if (s->fd < 0)
				continue;
			if (s->in_len)
				ev |= POLLOUT;
			if (may_read && !s->tx_closed && s->out_credit > 0)
				ev |= POLLIN;
			/* Nothing wanted: left out, or a hung-up peer would wake
			 * poll() at once, again and again. */
			p[np] = (struct pollfd){ ev ? s->fd : -1, ev, 0 };
			ids[ns] = s->id;
			ps[ns++] = s;
			np++;
		}
		r = poll(p, (nfds_t)np, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[1].revents)
			break;
		if (p[0].revents & POLLOUT) {
			ssize_t n = send(v->chan, v->out + v->out_off, v->out_len, MSG_NOSIGNAL);

			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			if (n > 0) {
				v->out_off += (size_t)n;
				v->out_len -= (size_t)n;
				if (v->out_len == 0)
					v->out_off = 0;
			}
		}
		if (may_read && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			int rc = read_channel(v);

			if (rc < 0) {
				cut = 1;
				break;
			}
			if (rc == 0)
				break;
		} else if (p[0].revents & (POLLERR | POLLNVAL)) {
			break;
		}
		for (size_t i = 0; i < ns; i++) {
			/* A stream the guest reset in this round is gone (its
			 * slot may even hold a new one): skip it. */
			if (ps[i]->fd < 0 || ps[i]->id != ids[i])
				continue;
			if (service(v, ps[i], p[2 + i].revents, may_read) < 0) {
				v->cut_why = "output buffer overflow";
				cut = 1;
				break;
			}
		}
		if (cut)
			break;
		note(v);
	}
	note(v);
	close_all(v);
	pthread_mutex_lock(&v->lock);
	v->st.ended = 1;
	v->st.streams = 0;
	if (cut) {
		v->st.cut = 1;
		snprintf(v->st.why, sizeof(v->st.why), "%s", v->cut_why ? v->cut_why : "?");
	}
	pthread_mutex_unlock(&v->lock);
	if (cut && v->cfg)
		mbx__log(v->cfg, MBX_LOG_WARN, "network: the guest broke the network channel's protocol (%s): channel cut",
			 v->cut_why ? v->cut_why : "?");
	return NULL;
}

int mbx__vmnet_start(struct mbx_vmnet **out, int chan, mbx_vmnet_open_fn open, void *ud, const mbx_config *cfg,
		     mbx_error **err)
{
	struct mbx_vmnet *v;
	int sp[2], rc;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (v == NULL || (v->out = malloc(OUT_CAP)) == NULL) {
		free(v);
		close(chan);
		return mbx__error_oom(err);
	}
	if (pipe2(sp, O_CLOEXEC) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, "network", "create the network channel's stop pipe");
		free(v->out);
		free(v);
		close(chan);
		return rc;
	}
	v->stop_r = sp[0];
	v->stop_w = sp[1];
	v->chan = chan;
	v->open = open;
	v->ud = ud;
	v->cfg = cfg;
	for (size_t i = 0; i < MBX_NETMUX_MAX_STREAMS; i++)
		v->s[i].fd = -1;
	fcntl(chan, F_SETFL, fcntl(chan, F_GETFL) | O_NONBLOCK);
	pthread_mutex_init(&v->lock, NULL);
	rc = pthread_create(&v->thread, NULL, vmnet_main, v);
	if (rc != 0) {
		v->running = 0;
		mbx__vmnet_stop(v);
		return mbx__error_set(err, MBX_ESYS, rc, "network", "start the network channel's thread");
	}
	v->running = 1;
	*out = v;
	return MBX_OK;
}

void mbx__vmnet_stop(struct mbx_vmnet *v)
{
	if (v == NULL)
		return;
	close(v->stop_w);
	if (v->running)
		pthread_join(v->thread, NULL);
	close_all(v);
	close(v->stop_r);
	pthread_mutex_destroy(&v->lock);
	free(v->out);
	free(v);
}

void mbx__vmnet_stats(struct mbx_vmnet *v, struct mbx_vmnet_stats *s)
{
	pthread_mutex_lock(&v->lock);
	*s = v->st;
	pthread_mutex_unlock(&v->lock);
}
