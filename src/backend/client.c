/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host-side client of the agent protocol.
 *
 * Threads. One mbx_sandbox may be used from several threads at once (issue
 * 12); its channel to the agent is this client, shared by all of them:
 *
 *  - One lock: the sandbox's mutex (mbx_sandbox.mu, set in c->mu by the
 *    core) guards everything in the client: the write buffer, the read
 *    buffer, the process queues, the waiters. Every function here is called
 *    with it held (src/core takes it in mbx__sandbox_enter()). Frames are
 *    written whole under it, so messages of different threads never mix.
 *
 *  - No sleeping with the lock. A call that must wait (a request for its
 *    reply, mbx_process_next_event() for an event, a stdin write for credit,
 *    an execute for its exit) goes through wait_for(): when nobody reads the
 *    channel, it becomes the reader (c->reading) and takes one read step:
 *    it parses the frames already buffered, else reads the descriptor, else
 *    polls it *without the lock* until bytes come or its deadline passes.
 *    Every frame read is dispatched under the lock to whom it concerns:
 *    output, exits and stdin credit go to their process's queue; the reply
 *    of a waiting request is handed over (c->handoff: reading stops until
 *    its waiter took it, since the frame lives in the read buffer); an ERROR
 *    for a fire-and-forget message goes to its process. Then the reader
 *    wakes everybody (c->cv). A thread that finds a reader at work sleeps on
 *    c->cv until its condition holds or its deadline passes; when the reader
 *    leaves (its own condition met, or its deadline), a sleeper takes over.
 *    So a thread blocked in next_event(-1) reads for all the others, and an
 *    execute in another thread gets its reply as soon as it arrives.
 *
 *  - A reply handed over stays valid while its waiter holds the lock, that
 *    is until its next call on the client (the old single-threaded rule).
 *
 *  - The event descriptor (mbx__client_event_fd): an epoll set of an
 *    eventfd and the transport's descriptor. The eventfd is readable while
 *    any process has queued events or credit news, or a reply was handed
 *    over since the last read step (frames may wait in the buffer); the
 *    transport's descriptor is readable while the agent sent bytes nobody
 *    read yet. Both are level-triggered, so the set is readable exactly
 *    while a next_event(p, 0) may have something to give.
 *
 * While the sandbox is being built (c->mu NULL) one thread drives the
 * client and the same code runs without locking.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* Extra time the host grants an agent beyond the execute's own timeout
 * before it declares the sandbox dead: the agent enforces the timeout
 * itself, this only catches a wedged agent. */
#define HOST_GRACE_US (10u * 1000000u)

/* The state for sharing the client between threads (see the top), once. */
static void share_init(struct mbx_client *c)
{
	pthread_condattr_t ca;

	if (c->live)
		return;
	c->evfd = -1;
	c->epfd = -1;
	c->live = 1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void mbx__client_init_transport(struct mbx_client *c, const struct mbx_transport *t)
{
	memset(c, 0, sizeof(*c));
	c->tr = *t;
	c->fd = t->fd;
	c->next_id = 1;
	c->dsock = -1;
	share_init(c);
	mbx_rbuf_init(&c->rb);
	mbx_wbuf_init(&c->wb);
}

void mbx__client_init(struct mbx_client *c, int fd)
{
	struct mbx_transport t;

	mbx__transport_socket(&t, fd);
	mbx__client_init_transport(c, &t);
}

void mbx__client_init_stream(struct mbx_client *c, int fd)
{
	struct mbx_transport t;

	mbx__transport_stream(&t, fd);
	mbx__client_init_transport(c, &t);
}

static void direct_drop(struct mbx_client *c);

void mbx__client_close(struct mbx_client *c)
{
	while (c->procs) {
		struct mbx_cproc *p = c->procs;

		c->procs = p->next;
		while (p->head) {
			struct mbx_event *ev = p->head;

			p->head = ev->next;
			mbx__event_free(ev);
		}
		mbx_error_free(p->pending);
		free(p);
	}
	direct_drop(c);
	if (c->tr.ops != NULL)
		c->tr.ops->close(&c->tr);
	else if (c->fd >= 0)
		close(c->fd); /* closed before a transport was set up */
	c->tr.ops = NULL;
	c->fd = -1;
	mbx_rbuf_release(&c->rb);
	mbx_wbuf_release(&c->wb);
	if (c->live) {
		if (c->epfd >= 0)
			close(c->epfd);
		if (c->evfd >= 0)
			close(c->evfd);
		c->epfd = c->evfd = -1;
		pthread_cond_destroy(&c->cv);
		c->live = 0;
	}
	c->procs = NULL;
}

/* Whether the channel is open; an error naming the state if not. */
static int channel_open(struct mbx_client *c, mbx_error **err)
{
	if (c->tr.ops != NULL)
		return MBX_OK;
	return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the channel to the sandbox agent is closed");
}

static int wait_ready(struct mbx_client *c, short events, uint64_t deadline_us, mbx_error **err)
{
	for (;;) {
		uint64_t now = mbx__now_us();
		int ms, rc;

		if (now >= deadline_us)
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not answer in time");
		ms = (int)((deadline_us - now + 999) / 1000);
		rc = c->tr.ops->poll(&c->tr, events, ms > 60000 ? 60000 : ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "poll the agent channel");
		if (rc > 0)
			return MBX_OK;
	}
}

int mbx__client_send(struct mbx_client *c, uint64_t deadline_us, mbx_error **err)
{
	return mbx__client_send_fds(c, NULL, 0, deadline_us, err);
}

int mbx__client_send_fds(struct mbx_client *c, const int *fds, size_t nfds, uint64_t deadline_us, mbx_error **err)
{
	size_t off = 0;
	int rc = MBX_OK;

	if (nfds > MBX_PROTO_MAX_FDS) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "too many descriptors for one message (%zu)", nfds);
	}
	if (channel_open(c, err) < 0) {
		mbx_wbuf_reset(&c->wb);
		return MBX_EPROTO;
	}
	if (nfds > 0 && !c->tr.ops->can_pass_fds) {
		mbx_wbuf_reset(&c->wb);
		mbx__error_set(err, MBX_ENOTSUP, 0, NULL,
			       "this message carries %zu descriptor(s), and the %s transport to the sandbox agent cannot pass descriptors",
			       nfds, c->tr.ops->name);
		mbx__error_suggest(err, "send the data itself (a file's contents, not its descriptor) on transports such as a virtio port");
		return MBX_ENOTSUP;
	}

	if (c->wb.failed) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "request is too large for the agent protocol (over %u bytes)",
				      MBX_PROTO_MAX_BODY);
	}
	while (off < c->wb.len) {
		ssize_t n;

		/* The descriptors ride on the first byte sent. */
		n = c->tr.ops->write(&c->tr, c->wb.buf + off, c->wb.len - off, off == 0 ? fds : NULL, off == 0 ? nfds : 0);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			rc = wait_ready(c, POLLOUT, deadline_us, err);
			if (rc < 0)
				break;
			continue;
		}
		rc = mbx__error_set(err, MBX_EPROTO, n < 0 ? errno : 0, NULL, "send to the sandbox agent (it has exited)");
		break;
	}
	mbx_wbuf_reset(&c->wb);
	return rc;
}

int mbx__client_recv(struct mbx_client *c, struct mbx_frame *f, uint64_t deadline_us, mbx_error **err)
{
	for (;;) {
		int rc = mbx_rbuf_next(&c->rb, f);
		uint8_t *space;
		ssize_t n;

		if (rc == 1)
			return MBX_OK;
		if (rc < 0)
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed frame");
		if (channel_open(c, err) < 0)
			return MBX_EPROTO;
		space = mbx_rbuf_space(&c->rb, 65536);
		if (space == NULL)
			return mbx__error_oom(err);
		n = c->tr.ops->read(&c->tr, space, 65536);
		if (n > 0) {
			mbx_rbuf_commit(&c->rb, (size_t)n);
			continue;
		}
		if (n == 0)
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent closed its channel (it has exited)");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return mbx__error_set(err, MBX_EPROTO, errno, NULL, "read from the sandbox agent");
		rc = wait_ready(c, POLLIN, deadline_us, err);
		if (rc < 0)
			return rc;
	}
}

/* An error the sandbox reported (the agent's ERROR, a direct execute's
 * start): its code, errno, layer and message, and what to do about a
 * layer that is missing. */
static int agent_error(mbx_error **err, int code, int errnum, const char *layer, const char *msg)
{
	mbx__error_set(err, code, errnum, layer, "%s", msg);
	if (code == MBX_ENOTSUP && layer != NULL)
		mbx__error_suggest(err, "run `mimobox doctor` to see what this host supports; allow degradation explicitly only if you accept running without %s",
				   layer);
	return code;
}

int mbx__client_error_from(const struct mbx_frame *f, const char *backend, mbx_error **err)
{
	struct mbx_error_info info;

	if (mbx_proto_decode_error(f, &info) < 0)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed error");
	(void)backend;
	return agent_error(err, info.code, (int)info.errnum, info.layer[0] ? info.layer : NULL, info.message);
}

/* Reads the agent's HELLO, picks the version and features, answers
 * HELLO_ACK. *info gets what the agent announced. With `session` (a
 * reconnect), an agent of another session gets no HELLO_ACK: it is not
 * ours to drive, and it waits for its own host again when we close. */
static int greet(struct mbx_client *c, struct mbx_hello_info *info, uint32_t *version, uint64_t *features,
		 const uint64_t *session, uint64_t deadline_us, mbx_error **err)
{
	struct mbx_frame f;
	uint32_t announced = 0;
	int rc = mbx__client_recv(c, &f, deadline_us, err);

	if (rc < 0)
		return rc;
	if (f.type != MBX_MSG_HELLO)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent did not greet (message type %u)", f.type);
	if (mbx_proto_decode_hello_info(&f, info) < 0) {
		/* An agent older than the version range: it announces one version. */
		if (mbx_proto_decode_hello(&f, &announced) == 0 && announced < MBX_PROTO_VERSION_MIN) {
			mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent speaks protocol %u, the library %u to %u",
				       announced, MBX_PROTO_VERSION_MIN, MBX_PROTO_VERSION);
			mbx__error_suggest(err, "rebuild the agent or the guest image with this version of mimobox");
			return MBX_EPROTO;
		}
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed HELLO");
	}
	if (session && info->session != *session) {
		mbx__error_set(err, MBX_EPROTO, 0, NULL,
			       "the agent on the new channel runs session %016llx, not %016llx: the sandbox's state is gone",
			       (unsigned long long)info->session, (unsigned long long)*session);
		return MBX_EPROTO;
	}
	if (mbx_proto_negotiate(info->version_min, info->version_max, info->features, MBX_PROTO_VERSION_MIN,
				MBX_PROTO_VERSION, MBX_PROTO_HOST_FEATURES, version, features) < 0) {
		mbx__error_set(err, MBX_EPROTO, 0, NULL,
			       "the sandbox agent speaks protocol %u to %u, the library %u to %u: no version in common",
			       info->version_min, info->version_max, MBX_PROTO_VERSION_MIN, MBX_PROTO_VERSION);
		mbx__error_suggest(err, "rebuild the agent or the guest image with this version of mimobox");
		return MBX_EPROTO;
	}
	mbx_wbuf_reset(&c->wb);
	mbx_proto_begin(&c->wb, MBX_MSG_HELLO_ACK, 0);
	mbx_proto_put_u32(&c->wb, MBX_F_VERSION, *version);
	mbx_proto_put_u64(&c->wb, MBX_F_FEATURES, *features);
	mbx_proto_end(&c->wb);
	return mbx__client_send(c, deadline_us, err);
}

int mbx__client_hello(struct mbx_client *c, uint64_t deadline_us, mbx_error **err)
{
	struct mbx_hello_info info;
	uint32_t version;
	uint64_t features;
	int rc = greet(c, &info, &version, &features, NULL, deadline_us, err);

	if (rc < 0)
		return rc;
	c->version = version;
	c->features = features;
	c->session = info.session;
	return MBX_OK;
}

int mbx__client_reconnect(struct mbx_client *c, const struct mbx_transport *t, uint64_t deadline_us, mbx_error **err)
{
	struct mbx_hello_info info;
	uint32_t version;
	uint64_t features;
	int rc;

	/* A restored client starts here, without mbx__client_init_transport(). */
	share_init(c);
	if (c->tr.ops != NULL)
		c->tr.ops->close(&c->tr);
	c->tr = *t;
	c->fd = t->fd;
	/* Half a frame of the old channel means nothing on the new one, nor
	 * does an answer expected on it. */
	mbx_rbuf_release(&c->rb);
	mbx_rbuf_init(&c->rb);
	c->n_expected = 0;
	mbx_wbuf_reset(&c->wb);
	c->broken = 1; /* until the agent proves it is the same session */
	if (c->version == 0) {
		mbx__error_set(err, MBX_ESTATE, 0, NULL, "no agent session to resume: the first channel never got a HELLO");
		return MBX_ESTATE;
	}
	if (!(c->features & MBX_FEAT_RESUME)) {
		mbx__error_set(err, MBX_ENOTSUP, 0, NULL, "the sandbox agent cannot keep its session over a new channel");
		mbx__error_suggest(err, "destroy the sandbox and create a new one");
		return MBX_ENOTSUP;
	}
	rc = greet(c, &info, &version, &features, &c->session, deadline_us, err);
	if (rc < 0)
		return rc;
	if (version != c->version || features != c->features) {
		mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent changed its protocol (version %u, features %llx) over a reconnect",
			       version, (unsigned long long)features);
		return MBX_EPROTO;
	}
	c->broken = 0;
	if (c->epfd >= 0 && c->tr.fd >= 0) {
		/* The event descriptor watches the new channel (the old one left
		 * the set when it was closed). */
		struct epoll_event ev = { .events = EPOLLIN };

		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tr.fd, &ev) < 0 && errno != EEXIST) {
			c->broken = 1;
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "watch the new agent channel (epoll)");
		}
	}
	return MBX_OK;
}

int mbx__client_init_sandbox(struct mbx_client *c, const int *fds, size_t nfds, struct mbx_ready_info *ready,
			     uint64_t deadline_us, mbx_error **err)
{
	struct mbx_frame f;
	int rc = mbx__client_send_fds(c, fds, nfds, deadline_us, err);

	if (rc < 0)
		return rc;
	rc = mbx__client_recv(c, &f, deadline_us, err);
	if (rc < 0)
		return rc;
	if (f.type == MBX_MSG_ERROR)
		return mbx__client_error_from(&f, NULL, err);
	if (f.type != MBX_MSG_READY || mbx_proto_decode_ready(&f, ready) < 0)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered INIT with message type %u", f.type);
	return MBX_OK;
}

void mbx__event_free(struct mbx_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->data);
	free(ev);
}

struct mbx_cproc *mbx__client_find(struct mbx_client *c, uint32_t id)
{
	for (struct mbx_cproc *p = c->procs; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

/* Drops p's queued events and credit news from the client's counts. */
static void cproc_forget_queue(struct mbx_client *c, struct mbx_cproc *p)
{
	while (p->head) {
		struct mbx_event *ev = p->head;

		p->head = ev->next;
		mbx__event_free(ev);
	}
	p->tail = NULL;
	c->nqueued -= p->nq;
	p->nq = 0;
	if (p->credit_news) {
		p->credit_news = 0;
		c->nnews--;
	}
}

static void cproc_unlink(struct mbx_client *c, struct mbx_cproc *p)
{
	cproc_forget_queue(c, p);
	for (struct mbx_cproc **pp = &c->procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	while (p->head) {
		struct mbx_event *ev = p->head;

		p->head = ev->next;
		mbx__event_free(ev);
	}
	mbx_error_free(p->pending);
	free(p);
}

int mbx__client_take_error(struct mbx_cproc *p, mbx_error **err)
{
	int rc;

	if (p == NULL || p->pending == NULL)
		return MBX_OK;
	rc = mbx_error_code(p->pending);
	mbx__error_move(err, &p->pending);
	return rc;
}

/*
 * An ERROR out of turn: the answer to a fire-and-forget message (STDIN,
 * SIGNAL, ...) of a known process, kept for the next call on it (the
 * first one wins), or of one already forgotten, dropped. Returns 0 when it
 * was that, -1 for anything else.
 */
static int keep_error(struct mbx_client *c, const struct mbx_frame *f)
{
	struct mbx_cproc *p;

	if (f->type != MBX_MSG_ERROR)
		return -1;
	p = mbx__client_find(c, f->id);
	if (p == NULL)
		/* About a process already gone and forgotten (its exit crossed
		 * our message): nobody is left to tell. An id we never used is
		 * a violation. */
		return f->id != 0 && f->id < c->next_id ? 0 : -1;
	if (p->pending == NULL && mbx__client_error_from(f, NULL, &p->pending) >= 0) {
		/* An agent's ERROR without a failure code is still an error. */
		mbx_error_free(p->pending);
		p->pending = NULL;
		mbx__error_set(&p->pending, MBX_EPROTO, 0, NULL, "the sandbox agent reported an error without a code");
	}
	return 0;
}

/* Queues an output or exit frame of a known process. Frames of processes
 * nobody holds any more are dropped. Returns 0, -1 when the frame is
 * malformed (a protocol error) or memory ran out, -2 when the agent sent
 * more output than the credit it was granted. */
static int dispatch(struct mbx_client *c, const struct mbx_frame *f)
{
	struct mbx_cproc *p = mbx__client_find(c, f->id);
	struct mbx_event *ev;
	const uint8_t *data;
	uint32_t len;

	if (f->type == MBX_MSG_CREDIT) {
		uint64_t w;

		if (mbx_proto_decode_window(f, &w) < 0)
			return -1;
		/* A lying agent only makes us send it more than it can hold:
		 * our memory does not depend on the credit. */
		if (p != NULL && !p->ended) {
			p->stdin_credit = p->stdin_credit + w < p->stdin_credit ? UINT64_MAX : p->stdin_credit + w;
			if (p->credit_wanted && w > 0) {
				p->credit_wanted = 0;
				if (!p->credit_news) {
					p->credit_news = 1;
					c->nnews++;
				}
			}
		}
		return 0;
	}
	if (f->type == MBX_MSG_STDOUT || f->type == MBX_MSG_STDERR) {
		if (mbx_proto_decode_data(f, &data, &len) < 0)
			return -1;
		if (p == NULL || p->ended)
			return p == NULL ? 0 : -1;
		/* The agent may send no more than the credit granted: checked
		 * here, so the queue stays bounded by the process's window
		 * whatever the agent does. */
		if (len > p->credit)
			return -2;
		p->credit -= len;
		if (!p->claimed)
			return 0; /* nobody will take it */
		ev = calloc(1, sizeof(*ev));
		if (ev == NULL || (len && (ev->data = malloc(len)) == NULL)) {
			free(ev);
			return -1;
		}
		if (len)
			memcpy(ev->data, data, len);
		ev->len = len;
		ev->kind = f->type == MBX_MSG_STDOUT ? MBX_EVENT_STDOUT : MBX_EVENT_STDERR;
	} else {
		struct mbx_exit_info ex;

		if (mbx_proto_decode_exit(f, &ex) < 0)
			return -1;
		if (p == NULL)
			return 0;
		if (p->ended)
			return -1;
		ev = calloc(1, sizeof(*ev));
		if (ev == NULL)
			return -1;
		ev->exit = ex;
		ev->kind = (ex.flags & MBX_EXIT_TIMED_OUT) ? MBX_EVENT_TIMED_OUT : MBX_EVENT_EXIT;
		if (ex.flags & MBX_EXIT_OOM_KILLED)
			c->oom_exits++;
		p->ended = 1;
		if (!p->claimed) {
			/* Its handle is gone: nothing will take the exit. */
			free(ev);
			cproc_unlink(c, p);
			return 0;
		}
	}
	if (p->tail)
		p->tail->next = ev;
	else
		p->head = ev;
	p->tail = ev;
	p->nq++;
	c->nqueued++;
	return 0;
}

/* ---- sharing the channel between threads (see the top of the file) ---- */

static void lock(struct mbx_client *c)
{
	if (c->mu)
		pthread_mutex_lock(c->mu);
}

static void unlock(struct mbx_client *c)
{
	if (c->mu)
		pthread_mutex_unlock(c->mu);
}

static void wake_all(struct mbx_client *c)
{
	if (c->mu)
		pthread_cond_broadcast(&c->cv);
}

/* Sleeps on c->cv until woken or deadline_us (CLOCK_MONOTONIC us). */
static void sleep_until(struct mbx_client *c, uint64_t deadline_us)
{
	struct timespec ts;

	if (c->mu == NULL)
		return; /* one thread: nobody else could wake us */
	ts.tv_sec = (time_t)(deadline_us / 1000000u);
	ts.tv_nsec = (long)(deadline_us % 1000000u) * 1000;
	pthread_cond_timedwait(&c->cv, c->mu, &ts);
}

/* Makes the eventfd match the state: readable while an event or credit
 * news is queued, or a handed-over reply may have left frames unread. */
static void update_evfd(struct mbx_client *c)
{
	int on = c->nqueued > 0 || c->nnews > 0 || c->nudge;
	uint64_t v = 1;

	if (c->evfd < 0 || on == c->ev_on)
		return;
	if (on)
		(void)!write(c->evfd, &v, sizeof(v));
	else
		(void)!read(c->evfd, &v, sizeof(v));
	c->ev_on = on;
}

int mbx__client_take_event_fd(struct mbx_client *c, int *epfd, int *evfd)
{
	uint64_t v = 1;

	if (!c->live || c->epfd < 0)
		return 0;
	if (!c->ev_on)
		(void)!write(c->evfd, &v, sizeof(v));
	c->ev_on = 1;
	*epfd = c->epfd;
	*evfd = c->evfd;
	c->epfd = c->evfd = -1;
	return 1;
}

int mbx__client_event_fd(struct mbx_client *c, mbx_error **err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	share_init(c);
	if (c->epfd >= 0)
		return c->epfd;
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->evfd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "create the event descriptor (eventfd)");
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) < 0 ||
	    (c->tr.ops != NULL && c->tr.fd >= 0 && epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tr.fd, &ev) < 0)) {
		int rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "create the event descriptor (epoll)");

		if (c->epfd >= 0)
			close(c->epfd);
		close(c->evfd);
		c->epfd = c->evfd = -1;
		return rc;
	}
	c->ev_on = 0;
	update_evfd(c);
	return c->epfd;
}

static int waited_for(struct mbx_client *c, uint32_t id)
{
	for (struct mbx_waiter *w = c->waiters; w; w = w->next)
		if (w->id == id)
			return 1;
	/* Sent ahead (mbx__client_expect): its sender takes it with
	 * mbx__client_await, soon; reading waits until then. */
	for (unsigned i = 0; i < c->n_expected; i++)
		if (c->expected[i] == id)
			return 1;
	return 0;
}

/* Marks the channel broken and wakes everybody (they fail too). */
static int broke(struct mbx_client *c, int rc)
{
	c->broken = 1;
	wake_all(c);
	return rc;
}

/* Takes one complete frame: a process event is queued, the reply of a
 * waiting request handed over, an out-of-turn ERROR kept for its process;
 * anything else breaks the channel. */
static int take_frame(struct mbx_client *c, const struct mbx_frame *f, mbx_error **err)
{
	int rc;

	if (f->type == MBX_MSG_STDOUT || f->type == MBX_MSG_STDERR || f->type == MBX_MSG_EXIT ||
	    f->type == MBX_MSG_CREDIT) {
		rc = dispatch(c, f);
		if (rc == -2)
			return broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL,
						       "the sandbox agent sent more output of process %u than it was allowed", f->id));
		if (rc < 0)
			return broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed process event"));
		return MBX_OK;
	}
	if (waited_for(c, f->id)) {
		c->handoff = 1;
		c->handed = *f;
		return MBX_OK;
	}
	if (keep_error(c, f) == 0)
		return MBX_OK;
	if (c->waiters != NULL)
		return broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered request %u, not %u%s", f->id,
					       c->waiters->id, c->waiters->next ? " (nor another waiting request)" : ""));
	return broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "unexpected message type %u (request %u) from the sandbox agent",
				       f->type, f->id));
}

/*
 * One read step, with the lock held and nobody else reading: takes the
 * complete frames already buffered, else reads what the descriptor has,
 * else polls it without the lock until bytes come or deadline_us. Stops
 * after a frame handed over. Returns 1 when frames were taken, 0 when none
 * came in time, <0 when the channel broke.
 */
static int read_step(struct mbx_client *c, uint64_t deadline_us, mbx_error **err)
{
	int rc = 0;

	c->reading = 1;
	c->nudge = 0;
	for (;;) {
		struct mbx_frame f;
		int r = mbx_rbuf_next(&c->rb, &f);
		uint8_t *space;
		ssize_t n;
		uint64_t now;

		if (r < 0) {
			rc = broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed frame"));
			break;
		}
		if (r == 1) {
			rc = take_frame(c, &f, err);
			if (rc < 0)
				break;
			rc = 1;
			if (c->handoff)
				break;
			continue;
		}
		if (rc == 1)
			break; /* let the waiters look before reading on */
		if (c->tr.ops == NULL) {
			rc = broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the channel to the sandbox agent is closed"));
			break;
		}
		space = mbx_rbuf_space(&c->rb, 65536);
		if (space == NULL) {
			rc = broke(c, mbx__error_oom(err));
			break;
		}
		n = c->tr.ops->read(&c->tr, space, 65536);
		if (n > 0) {
			mbx_rbuf_commit(&c->rb, (size_t)n);
			continue;
		}
		if (n == 0) {
			rc = broke(c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent closed its channel (it has exited)"));
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			rc = broke(c, mbx__error_set(err, MBX_EPROTO, errno, NULL, "read from the sandbox agent"));
			break;
		}
		now = mbx__now_us();
		if (now >= deadline_us)
			break;
		{
			uint64_t ms = (deadline_us - now + 999) / 1000;
			int prc;

			/* Without the lock: the others send and take their events
			 * meanwhile; only this thread reads. */
			unlock(c);
			prc = c->tr.ops->poll(&c->tr, POLLIN, ms > 60000 ? 60000 : (int)ms);
			lock(c);
			if (prc < 0 && errno != EINTR) {
				rc = broke(c, mbx__error_set(err, MBX_ESYS, errno, NULL, "poll the agent channel"));
				break;
			}
		}
	}
	c->reading = 0;
	update_evfd(c);
	wake_all(c);
	return rc;
}

/*
 * Waits until ready(c, arg) holds (1), deadline_us passes (0; a deadline
 * already past still takes what has arrived) or the channel breaks (<0):
 * reading the channel when nobody does, else sleeping until the reader
 * wakes us. Lock held on entry and exit.
 */
static int wait_for(struct mbx_client *c, int (*ready)(struct mbx_client *, void *), void *arg, uint64_t deadline_us,
		    mbx_error **err)
{
	for (;;) {
		int rc;

		if (ready(c, arg))
			return 1;
		if (c->broken)
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the channel to the sandbox agent broke");
		if (!c->reading && !c->handoff) {
			rc = read_step(c, deadline_us, err);
			if (rc < 0)
				return rc;
			if (rc == 0 && !c->handoff && !ready(c, arg) && mbx__now_us() >= deadline_us)
				return 0;
			continue;
		}
		if (mbx__now_us() >= deadline_us)
			return 0;
		sleep_until(c, deadline_us);
	}
}

struct reply_wait {
	struct mbx_waiter w;
	struct mbx_frame *reply;
};

static int reply_ready(struct mbx_client *c, void *arg)
{
	struct reply_wait *rw = arg;

	if (!c->handoff || c->handed.id != rw->w.id)
		return 0;
	*rw->reply = c->handed;
	c->handoff = 0;
	/* Frames after it may wait in the buffer: until somebody reads, the
	 * event descriptor says so. */
	c->nudge = 1;
	update_evfd(c);
	wake_all(c);
	return 1;
}

int mbx__client_request(struct mbx_client *c, uint32_t id, uint64_t deadline_us, struct mbx_frame *reply, mbx_error **err)
{
	return mbx__client_request_fds(c, NULL, 0, id, deadline_us, reply, err);
}

int mbx__client_request_fds(struct mbx_client *c, const int *fds, size_t nfds, uint32_t id, uint64_t deadline_us,
			    struct mbx_frame *reply, mbx_error **err)
{
	int rc = mbx__client_send_fds(c, fds, nfds, deadline_us, err);

	if (rc < 0)
		return broke(c, rc);
	return mbx__client_await(c, id, deadline_us, reply, err);
}

int mbx__client_expect(struct mbx_client *c, uint32_t id)
{
	if (c->n_expected >= sizeof(c->expected) / sizeof(c->expected[0]))
		return -1;
	c->expected[c->n_expected++] = id;
	return 0;
}

static void unexpect(struct mbx_client *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n_expected; i++)
		if (c->expected[i] == id) {
			c->expected[i] = c->expected[--c->n_expected];
			return;
		}
}

int mbx__client_await(struct mbx_client *c, uint32_t id, uint64_t deadline_us, struct mbx_frame *reply, mbx_error **err)
{
	struct reply_wait rw = { { id, NULL }, reply };
	int rc;

	/* From expected to waited for, under the lock: no reader sees it as neither. */
	unexpect(c, id);
	rw.w.next = c->waiters;
	c->waiters = &rw.w;
	rc = wait_for(c, reply_ready, &rw, deadline_us, err);
	for (struct mbx_waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
		if (*pp == &rw.w) {
			*pp = rw.w.next;
			break;
		}
	if (rc == 0)
		rc = mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not answer in time");
	if (rc < 0)
		/* An answer that never comes leaves the stream unsynchronised. */
		return broke(c, rc);
	if (reply->type == MBX_MSG_ERROR)
		return mbx__client_error_from(reply, NULL, err);
	return MBX_OK;
}

/* ---- direct executes (proto.h, MBX_FEAT_DIRECT) ---- */

/* Closes the socket lent to the agent's spare: that spare exits at its end
 * of file, and the next execute lends another. */
static void direct_drop(struct mbx_client *c)
{
	if (c->dsock >= 0)
		close(c->dsock);
	c->dsock = -1;
	c->dsock_ready = 0;
}

/*
 * After an execute through the agent: lends the agent one end of a socket
 * for its next spare (MBX_MSG_SPARE), unless one is lent already, the
 * channel passes no descriptors or the agent does not take them. Best
 * effort: without it executes go through the agent.
 */
static void direct_lend(struct mbx_client *c)
{
	int sv[2];
	uint32_t id;

	if (!(c->features & MBX_FEAT_DIRECT) || c->dsock >= 0 || c->broken || c->tr.ops == NULL ||
	    !c->tr.ops->can_pass_fds || c->wb.len != 0)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	id = c->next_id++;
	mbx_proto_begin(&c->wb, MBX_MSG_SPARE, id);
	mbx_proto_put_u32(&c->wb, MBX_F_FD, 0);
	mbx_proto_end(&c->wb);
	if (mbx__client_send_fds(c, &sv[1], 1, mbx__now_us() + HOST_GRACE_US, NULL) < 0) {
		close(sv[0]);
		close(sv[1]);
		broke(c, 0);
		return;
	}
	close(sv[1]);
	c->dsock = sv[0];
	c->dsock_id = id;
	c->dsock_ready = 0;
}

/* Whether the lent spare is ready now (its first message, without
 * waiting); a spare that failed or went is dropped. */
static int direct_ready(struct mbx_client *c)
{
	struct mbx_start_report r;
	ssize_t n;

	if (c->dsock_ready)
		return 1;
	do
		n = recv(c->dsock, &r, sizeof(r), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0; /* still being made, or not yet: the agent runs this one */
	if (n != (ssize_t)sizeof(r) || r.stage != 0) {
		/* Its preparation failed (the agent's own mini-init meets the
		 * same step and reports it), or it is gone. */
		direct_drop(c);
		return 0;
	}
	c->dsock_ready = 1;
	return 1;
}

/* Builds the EXEC frame of sr in w; spare_fd >= 0: the index of the lent
 * spare's socket among the message's descriptors (MBX_F_SPARE_FD). 0, or
 * -1 when it is too large. */
static int put_exec(struct mbx_wbuf *w, const struct mbx_spawn_req *sr, uint32_t id, int spare_fd)
{
	const struct mbx_exec_req *req = sr->exec;

	mbx_proto_begin(w, MBX_MSG_EXEC, id);
	for (size_t i = 0; req->argv[i]; i++)
		mbx_proto_put_str(w, MBX_F_ARG, req->argv[i]);
	for (size_t i = 0; req->envp[i]; i++)
		mbx_proto_put_str(w, MBX_F_ENV, req->envp[i]);
	mbx_proto_put_str(w, MBX_F_CWD, req->cwd);
	mbx_proto_put_u64(w, MBX_F_TIMEOUT_MS, req->timeout_ms);
	mbx_proto_put_u64(w, MBX_F_OUTPUT_LIMIT, req->output_limit);
	mbx_proto_put_u64(w, MBX_F_WINDOW, sr->window);
	mbx_proto_put_u32(w, MBX_F_EXEC_FLAGS, sr->flags);
	if (sr->flags & MBX_XF_PTY) {
		mbx_proto_put_u32(w, MBX_F_ROWS, sr->rows);
		mbx_proto_put_u32(w, MBX_F_COLS, sr->cols);
	}
	if (sr->has_pass_fd)
		mbx_proto_put_u32(w, MBX_F_FD, 0);
	if (spare_fd >= 0)
		mbx_proto_put_u32(w, MBX_F_SPARE_FD, (uint32_t)spare_fd);
	return mbx_proto_end(w);
}

int mbx__client_spawn(struct mbx_client *c, const struct mbx_spawn_req *sr, struct mbx_cproc **out, mbx_error **err)
{
	uint32_t id = c->next_id++;
	uint64_t deadline = mbx__now_us() + HOST_GRACE_US;
	struct mbx_cproc *p;
	struct mbx_frame f;
	int fds[2], give, lend, rc;
	size_t nfds = 0;

	*out = NULL;
	if (MBX_XF_LATE_START(sr->flags) && sr->deadline_us > deadline)
		deadline = sr->deadline_us;
	/* From the second request through the agent on (a sandbox that runs
	 * one execute and goes would only pay for the socket and its
	 * message), a socket for the spare, lent right behind the request:
	 * the agent's spare serves the request, then moves there at its end,
	 * ready before the answer comes, so the next execute goes to it
	 * directly. Behind it, not ahead: the agent never moves the spare
	 * the request is to take. */
	lend = ++c->spawned >= 2 && !(sr->flags & MBX_XF_LAST);
	if (sr->has_pass_fd)
		fds[nfds++] = sr->pass_fd;
	/* A lent spare, ready and idle, goes back to the agent with it
	 * (proto.h, "direct executes"): it serves this one. */
	give = c->dsock >= 0 && !c->dsock_busy && direct_ready(c);
	if (give)
		fds[nfds++] = c->dsock;
	if (give && (put_exec(&c->wb, sr, id, (int)nfds - 1) < 0 || c->wb.len - MBX_PROTO_HEADER > MBX_SPARE_MAX_BODY)) {
		/* Too large for a spare: the agent clones a mini-init for it,
		 * and the lent spare stays where it is. */
		mbx_wbuf_reset(&c->wb);
		give = 0;
		nfds--;
	}
	if (!give && put_exec(&c->wb, sr, id, -1) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "arguments and environment are too large (over %u bytes in all)", MBX_PROTO_MAX_BODY);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_oom(err);
	}
	/* Registered before the answer, so output that follows STARTED at once
	 * finds its queue. */
	p->id = id;
	p->window = sr->window;
	p->credit = sr->window;
	p->claimed = 1;
	p->has_stdin = (sr->flags & (MBX_XF_STDIN | MBX_XF_PTY)) != 0;
	p->pty = (sr->flags & MBX_XF_PTY) != 0;
	p->next = c->procs;
	c->procs = p;
	if (give) {
		/* The agent's from now on: no other thread sends to it while
		 * this one waits for the answer (our copy closes after). */
		c->dsock = -1;
		c->dsock_ready = 0;
	}
	rc = mbx__client_send_fds(c, fds, nfds, deadline, err);
	/* Closed before the answer: a program that does not start ends its
	 * mini-init, and the agent's wait for it, at the end of file of this
	 * socket. */
	if (give)
		close(fds[nfds - 1]);
	if (rc < 0) {
		rc = broke(c, rc);
	} else {
		if (lend)
			direct_lend(c);
		rc = mbx__client_await(c, id, deadline, &f, err);
	}
	if (rc == MBX_OK && f.type != MBX_MSG_STARTED) {
		broke(c, 0);
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered EXEC with message type %u", f.type);
	}
	if (rc < 0) {
		cproc_unlink(c, p);
		return rc;
	}
	mbx_proto_find_u32(&f, MBX_F_PID, &p->pid);
	if (p->has_stdin && mbx_proto_decode_window(&f, &p->stdin_credit) < 0) {
		broke(c, 0);
		cproc_unlink(c, p);
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent started a process with stdin but gave no stdin window");
	}
	*out = p;
	return MBX_OK;
}

int mbx__client_proc_send(struct mbx_client *c, struct mbx_cproc *p, uint16_t type, const void *data, size_t len,
			  uint32_t a, uint32_t b, mbx_error **err)
{
	mbx_proto_begin(&c->wb, type, p->id);
	switch (type) {
	case MBX_MSG_STDIN:
		mbx_proto_put(&c->wb, MBX_F_DATA, data, len);
		break;
	case MBX_MSG_SIGNAL:
		mbx_proto_put_u32(&c->wb, MBX_F_SIGNAL, a);
		break;
	case MBX_MSG_RESIZE:
		mbx_proto_put_u32(&c->wb, MBX_F_ROWS, a);
		mbx_proto_put_u32(&c->wb, MBX_F_COLS, b);
		break;
	case MBX_MSG_CREDIT:
		mbx_proto_put_u64(&c->wb, MBX_F_WINDOW, a);
		break;
	default:
		break;
	}
	if (mbx_proto_end(&c->wb) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "message too large");
	}
	return mbx__client_send(c, mbx__now_us() + HOST_GRACE_US, err);
}

/* Takes p's credit news (the wait that wanted it is over). */
static void take_news(struct mbx_client *c, struct mbx_cproc *p)
{
	if (p->credit_news) {
		p->credit_news = 0;
		c->nnews--;
		update_evfd(c);
	}
}

struct credit_wait {
	struct mbx_cproc *p;
	int until_event;
};

static int credit_ready(struct mbx_client *c, void *arg)
{
	struct credit_wait *cw = arg;

	(void)c;
	return cw->p->stdin_credit > 0 || cw->p->ended || cw->p->pending != NULL ||
	       (cw->until_event && cw->p->head != NULL);
}

int mbx__client_write_stdin(struct mbx_client *c, struct mbx_cproc *p, const void *data, size_t len, size_t *written,
			    uint64_t deadline_us, int until_event, mbx_error **err)
{
	struct credit_wait cw = { p, until_event };
	const uint8_t *d = data;
	int rc;

	*written = 0;
	p->credit_wanted = 0;
	take_news(c, p);
	while (*written < len) {
		if (p->pending)
			return mbx__client_take_error(p, err);
		if (p->ended)
			return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended", p->id);
		if (p->stdin_credit > 0) {
			size_t n = len - *written;

			if (n > MBX_PROTO_CHUNK)
				n = MBX_PROTO_CHUNK;
			if (n > p->stdin_credit)
				n = (size_t)p->stdin_credit;
			mbx_proto_begin(&c->wb, MBX_MSG_STDIN, p->id);
			mbx_proto_put(&c->wb, MBX_F_DATA, d + *written, n);
			mbx_proto_end(&c->wb);
			rc = mbx__client_send(c, mbx__now_us() + HOST_GRACE_US, err);
			if (rc < 0)
				return broke(c, rc);
			p->stdin_credit -= n;
			*written += n;
			continue;
		}
		if (until_event && p->head != NULL)
			return MBX_OK;
		/* The program has not taken what it was sent: wait for credit
		 * (another thread may be reading for us). */
		p->credit_wanted = 1;
		rc = wait_for(c, credit_ready, &cw, deadline_us, err);
		p->credit_wanted = 0;
		take_news(c, p);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			/* Out of time: a later wait ends when credit comes. */
			p->credit_wanted = 1;
			return MBX_OK;
		}
	}
	return MBX_OK;
}

static int event_ready(struct mbx_client *c, void *arg)
{
	struct mbx_cproc *p = arg;

	(void)c;
	return p->head != NULL || p->taken_last || p->credit_news;
}

int mbx__client_next_event(struct mbx_client *c, struct mbx_cproc *p, uint64_t deadline_us, struct mbx_event **out,
			   mbx_error **err)
{
	int rc;

	*out = NULL;
	if (p->head == NULL && p->taken_last)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended and its last event was taken", p->id);
	rc = wait_for(c, event_ready, p, deadline_us, err);
	if (rc < 0)
		return rc;
	if (p->head == NULL) {
		if (p->credit_news) {
			/* A waiting stdin write may go on. */
			take_news(c, p);
			return MBX_OK;
		}
		if (p->taken_last && rc == 1)
			/* Another thread took the last event meanwhile. */
			return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended and its last event was taken", p->id);
		return MBX_OK; /* nothing in time: not an error of the call */
	}
	*out = p->head;
	p->head = p->head->next;
	if (p->head == NULL)
		p->tail = NULL;
	(*out)->next = NULL;
	p->nq--;
	c->nqueued--;
	update_evfd(c);
	if ((*out)->kind == MBX_EVENT_EXIT || (*out)->kind == MBX_EVENT_TIMED_OUT) {
		p->taken_last = 1;
		return MBX_OK;
	}
	/* Credit back what was taken, in batches of half the window. */
	p->consumed += (*out)->len;
	if (p->consumed >= p->window / 2) {
		uint32_t give = (uint32_t)(p->consumed > UINT32_MAX ? UINT32_MAX : p->consumed);

		p->consumed = 0;
		p->credit = p->credit + give < p->credit ? UINT64_MAX : p->credit + give;
		rc = mbx__client_proc_send(c, p, MBX_MSG_CREDIT, NULL, 0, give, 0, err);
		if (rc < 0) {
			broke(c, rc);
			mbx__event_free(*out);
			*out = NULL;
			return rc;
		}
	}
	return MBX_OK;
}

void mbx__client_release(struct mbx_client *c, struct mbx_cproc *p)
{
	if (p == NULL)
		return;
	if (!p->ended && c->tr.ops != NULL && !c->broken)
		mbx__client_proc_send(c, p, MBX_MSG_DETACH, NULL, 0, 0, 0, NULL);
	p->credit_wanted = 0;
	if (p->ended) {
		cproc_unlink(c, p);
		update_evfd(c);
		return;
	}
	/* Still running: keep the entry so its exit is recognised, and drop
	 * its queued output. */
	p->claimed = 0;
	cproc_forget_queue(c, p);
	update_evfd(c);
}

/* Keeps up to `limit` bytes of a stream in the result and hands every
 * delivered chunk to the callback. */
static int take_output(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_stream_t stream,
		       const uint8_t *data, size_t len)
{
	struct mbx_buf *b = stream == MBX_STREAM_STDOUT ? &res->out : &res->err;
	int *trunc = stream == MBX_STREAM_STDOUT ? &res->out_truncated : &res->err_truncated;
	size_t keep = len;

	if (b->len + keep > req->output_limit) {
		keep = b->len < req->output_limit ? (size_t)(req->output_limit - b->len) : 0;
		*trunc = 1;
	}
	if (keep && mbx__buf_append(b, data, keep) < 0)
		return -1;
	if (keep && req->output_fn) {
		/* The caller's code runs without the sandbox's lock: it may be
		 * slow, or call into the sandbox, without holding up the other
		 * threads (the data is this call's own copy). */
		unlock(c);
		req->output_fn(stream, data, keep, req->output_userdata);
		lock(c);
	}
	return 0;
}

/* Output window of a one-shot execute: generous, the host takes output as
 * fast as it comes. */
#define EXEC_WINDOW (1u << 20)

/* Takes p's queued output into res (without waiting). 1 when p's exit is
 * next (left queued), 0 when the queue is empty, <0 on error. */
static int take_queued_output(struct mbx_client *c, struct mbx_cproc *p, const struct mbx_exec_req *req, mbx_result *res,
			      mbx_error **err)
{
	while (p->head) {
		struct mbx_event *ev;
		int rc;

		if (p->head->kind != MBX_EVENT_STDOUT && p->head->kind != MBX_EVENT_STDERR)
			return 1;
		rc = mbx__client_next_event(c, p, 0, &ev, err);
		if (rc < 0)
			return rc;
		rc = take_output(c, req, res, ev->kind == MBX_EVENT_STDOUT ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, ev->data, ev->len);
		mbx__event_free(ev);
		if (rc < 0)
			return mbx__error_oom(err);
	}
	return 0;
}

/*
 * Streams an execute's stdin within the agent's credit, taking the output
 * that comes meanwhile (so a program that writes as it reads never waits
 * on us), then closes it. Returns when all of it is sent or the program
 * ended; memory stays bounded by the two windows, whatever the size.
 */
static int feed_stdin(struct mbx_client *c, struct mbx_cproc *p, const struct mbx_exec_req *req, uint64_t deadline,
		      mbx_result *res, mbx_error **err)
{
	size_t off = 0;
	int rc;

	for (;;) {
		size_t n = 0;

		rc = take_queued_output(c, p, req, res, err);
		if (rc < 0)
			return rc;
		if (rc == 1 || p->ended)
			return MBX_OK; /* it ended before taking all of its stdin */
		if (off == req->stdin_len)
			break;
		if (mbx__now_us() >= deadline) {
			broke(c, 0);
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not report the end of the execute in time");
		}
		/* Waits for credit or the next output, whichever comes first. */
		rc = mbx__client_write_stdin(c, p, req->stdin_data + off, req->stdin_len - off, &n,
					     p->head ? 0 : deadline, 1, err);
		off += n;
		if (rc == MBX_ESTATE && p->ended)
			return MBX_OK;
		if (rc < 0)
			return rc;
	}
	rc = mbx__client_take_error(p, err);
	if (rc == MBX_OK)
		rc = mbx__client_proc_send(c, p, MBX_MSG_STDIN_CLOSE, NULL, 0, 0, 0, err);
	return rc;
}

int mbx__client_collect(struct mbx_client *c, struct mbx_cproc *p, const struct mbx_exec_req *req, uint64_t deadline,
			mbx_result *res, mbx_error **err)
{
	for (;;) {
		struct mbx_event *ev = NULL;
		int rc = mbx__client_next_event(c, p, deadline, &ev, err);

		if (rc < 0)
			return rc;
		if (ev == NULL) {
			if (deadline && mbx__now_us() >= deadline) {
				broke(c, 0);
				return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not report the end of the execute in time");
			}
			continue;
		}
		if (ev->kind == MBX_EVENT_STDOUT || ev->kind == MBX_EVENT_STDERR) {
			rc = take_output(c, req, res, ev->kind == MBX_EVENT_STDOUT ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, ev->data, ev->len);
			mbx__event_free(ev);
			if (rc < 0)
				return mbx__error_oom(err);
			continue;
		}
		res->exit_code = ev->exit.exit_code;
		res->signal = (int)ev->exit.signal;
		res->timed_out = (ev->exit.flags & MBX_EXIT_TIMED_OUT) != 0;
		/* Only a guest's agent knows (its own cgroup); the os backend
		 * counts on the host (ops->oom_kills). */
		res->oom_killed |= (ev->exit.flags & MBX_EXIT_OOM_KILLED) != 0;
		res->out_truncated |= (ev->exit.flags & MBX_EXIT_STDOUT_TRUNCATED) != 0;
		res->err_truncated |= (ev->exit.flags & MBX_EXIT_STDERR_TRUNCATED) != 0;
		res->cpu_us = ev->exit.cpu_us;
		res->peak_memory = ev->exit.maxrss;
		mbx__event_free(ev);
		return MBX_OK;
	}
}

/* What a direct execute is waiting for, without the lock. */
struct direct_run {
	int fd[2];                    /* the read ends of the program's stdout and stderr, -1 at their end */
	int sock;                     /* the spare's socket */
	struct mbx_exec_status st;
	int have_status, gone;        /* its status came; its socket ended (the spare exited or was killed) */
};

/* Reads what output pipe `which` (0 stdout, 1 stderr) holds into res
 * (under the lock, as take_output wants). 1: read some, 0: nothing now,
 * -1: at its end, <-1: out of memory. */
static int direct_pump(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, struct direct_run *d,
		       int which)
{
	int *fd = &d->fd[which];
	uint8_t buf[16384];
	ssize_t n;
	int rc;

	do
		n = read(*fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return -1;
	}
	lock(c);
	rc = take_output(c, req, res, which == 0 ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, buf, (size_t)n);
	unlock(c);
	return rc < 0 ? -2 : 1;
}

/* Sends KILL for the lent spare (the execute's timeout). */
static void direct_kill(struct mbx_client *c, uint32_t id)
{
	lock(c);
	if (!c->broken) {
		mbx_proto_begin(&c->wb, MBX_MSG_KILL, id);
		mbx_proto_end(&c->wb);
		if (mbx__client_send(c, mbx__now_us() + HOST_GRACE_US, NULL) < 0)
			broke(c, 0);
	}
	unlock(c);
}

/*
 * The wait of a direct execute, without the lock: output as it comes, the
 * spare's status, the execute's timeout (KILL through the agent, then the
 * spare's end). 0, or an MBX_E* code.
 */
static int direct_wait(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, struct direct_run *d,
		       uint32_t kill_id, mbx_error **err)
{
	uint64_t deadline = req->timeout_ms ? mbx__now_us() + req->timeout_ms * 1000u : 0;

	for (;;) {
		struct pollfd pf[3] = { { d->fd[0], POLLIN, 0 }, { d->fd[1], POLLIN, 0 },
					{ d->have_status || d->gone ? -1 : d->sock, POLLIN, 0 } };
		int timeout = -1;

		if ((d->have_status && (d->st.flags & MBX_XS_EMPTY)) || d->gone) {
			/* Every writer is gone (the report says the tree is, or
			 * the spare's end took it along): what the pipes hold is
			 * all there is. */
			for (int i = 0; i < 2; i++) {
				int r = 1;

				while (d->fd[i] >= 0 && (r = direct_pump(c, req, res, d, i)) > 0)
					;
				if (r < -1)
					return mbx__error_oom(err);
				if (d->fd[i] >= 0 && r == 0 && d->have_status) {
					close(d->fd[i]);
					d->fd[i] = -1;
				}
			}
		}
		if ((d->have_status || d->gone) && d->fd[0] < 0 && d->fd[1] < 0)
			return MBX_OK;
		if (deadline) {
			uint64_t now = mbx__now_us();

			if (now >= deadline) {
				if (res->timed_out) {
					lock(c);
					broke(c, 0);
					unlock(c);
					return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL,
							      "the sandbox did not end a timed-out execute in time");
				}
				res->timed_out = 1;
				direct_kill(c, kill_id);
				deadline = now + HOST_GRACE_US;
				continue;
			}
			timeout = (int)((deadline - now + 999) / 1000);
		}
		if (poll(pf, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "poll a direct execute's output");
		}
		for (int i = 0; i < 2; i++)
			if (pf[i].revents && direct_pump(c, req, res, d, i) < -1)
				return mbx__error_oom(err);
		if (pf[2].revents) {
			ssize_t n;

			do
				n = recv(d->sock, &d->st, sizeof(d->st), MSG_DONTWAIT);
			while (n < 0 && errno == EINTR);
			if (n == (ssize_t)sizeof(d->st))
				d->have_status = 1;
			else if (!(n < 0 && errno == EAGAIN))
				d->gone = 1;
		}
	}
}

/*
 * A one-shot execute handed straight to the lent spare. Returns 1 when it
 * did not start there (nothing ran: the caller sends it to the agent),
 * else the execute's result: MBX_OK or an MBX_E* code. Lock held on entry
 * and exit; the wait is without it.
 */
static int direct_exec(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct mbx_spawn_req sr = { .exec = req, .window = EXEC_WINDOW, .flags = MBX_XF_ONESHOT };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} ctl;
	struct direct_run d = { .fd = { -1, -1 }, .sock = c->dsock };
	struct mbx_spare_req hdr;
	struct iovec iov[2];
	struct msghdr msg;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, fds[2];
	uint32_t kill_id = c->dsock_id, sig;
	int32_t code;
	ssize_t n;
	int rc;

	if (c->dsock_busy || !direct_ready(c))
		return 1;
	if (put_exec(&c->wb, &sr, 0, -1) < 0 || c->wb.len - MBX_PROTO_HEADER > MBX_SPARE_MAX_BODY) {
		mbx_wbuf_reset(&c->wb);
		return 1;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || fcntl(outp[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "create the output pipes of an execute");
		mbx_wbuf_reset(&c->wb);
		goto out;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.id = c->next_id++;
	hdr.body_len = (uint32_t)(c->wb.len - MBX_PROTO_HEADER);
	hdr.has_out = hdr.has_err = 1;
	hdr.keep = 1;
	fds[0] = outp[1];
	fds[1] = errp[1];
	iov[0] = (struct iovec){ &hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ c->wb.buf + MBX_PROTO_HEADER, hdr.body_len };
	memset(&msg, 0, sizeof(msg));
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	mbx_proto_attach_fds(&msg, ctl.buf, fds, 2);
	do
		n = sendmsg(c->dsock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	mbx_wbuf_reset(&c->wb);
	if (n != (ssize_t)(sizeof(hdr) + hdr.body_len)) {
		/* The spare is gone (a RESET killed it, say): nothing ran. */
		direct_drop(c);
		rc = 1;
		goto out;
	}
	/* Its copies are the program's: the end of file comes when they go. */
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	d.fd[0] = outp[0];
	d.fd[1] = errp[0];
	outp[0] = errp[0] = -1;
	c->dsock_busy = 1;
	unlock(c);
	rc = direct_wait(c, req, res, &d, kill_id, err);
	/* Given up (no memory for the output, say): the program goes, as an
	 * execute through the agent is killed then. */
	if (rc < 0 && !res->timed_out)
		direct_kill(c, kill_id);
	lock(c);
	c->dsock_busy = 0;
	for (int i = 0; i < 2; i++)
		if (d.fd[i] >= 0)
			close(d.fd[i]);
	/* It waits for the next one only when it says so; the last execute
	 * of the sandbox lets it go. */
	if (rc < 0 || !d.have_status || (d.st.flags & (MBX_XS_SPARE | MBX_XS_READY)) != (MBX_XS_SPARE | MBX_XS_READY) ||
	    req->last)
		direct_drop(c);
	if (rc < 0)
		goto out;
	if (d.have_status && d.st.start_stage != 0 && !res->timed_out) {
		char text[512];
		const char *layer;

		rc = mbx_proto_start_error(d.st.start_stage, d.st.start_errno, req->argv[0], req->cwd, text, sizeof(text),
					   &layer);
		rc = agent_error(err, rc, d.st.start_errno, layer, text);
		goto out;
	}
	/* No status, or killed for its timeout: it went with its mini-init
	 * (timeout, RESET). */
	mbx_proto_exit_of(d.have_status && !res->timed_out, d.st.wstatus, &code, &sig);
	res->exit_code = code;
	res->signal = (int)sig;
	if (d.have_status) {
		res->cpu_us = d.st.cpu_us;
		res->peak_memory = d.st.maxrss;
	}
	rc = MBX_OK;
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return rc;
}

int mbx__client_exec(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct mbx_spawn_req sr = { .exec = req, .window = EXEC_WINDOW, .flags = MBX_XF_ONESHOT };
	uint64_t deadline = mbx__now_us() + req->timeout_ms * 1000u + HOST_GRACE_US;
	struct mbx_cproc *p = NULL;
	int rc;

	if (!req->stdin_data && c->dsock >= 0) {
		rc = direct_exec(c, req, res, err);
		if (rc <= 0)
			return rc;
	}

	if (req->stdin_data)
		sr.flags |= MBX_XF_STDIN;
	if (req->last)
		sr.flags |= MBX_XF_LAST;
	sr.deadline_us = deadline;
	rc = mbx__client_spawn(c, &sr, &p, err);
	if (rc < 0)
		return rc;
	if (req->stdin_data)
		rc = feed_stdin(c, p, req, deadline, res, err);
	if (rc == MBX_OK)
		rc = mbx__client_collect(c, p, req, deadline, res, err);
	if (rc < 0 && !c->broken)
		mbx__client_proc_send(c, p, MBX_MSG_KILL, NULL, 0, 0, 0, NULL);
	mbx__client_release(c, p);
	return rc;
}

void mbx__client_shutdown(struct mbx_client *c)
{
	if (c->tr.ops == NULL)
		return;
	mbx_wbuf_reset(&c->wb);
	mbx_proto_begin(&c->wb, MBX_MSG_SHUTDOWN, 0);
	mbx_proto_end(&c->wb);
	(void)!c->tr.ops->write(&c->tr, c->wb.buf, c->wb.len, NULL, 0);
	mbx_wbuf_reset(&c->wb);
}

void mbx__client_forget_all(struct mbx_client *c)
{
	while (c->procs != NULL)
		cproc_unlink(c, c->procs);
}
