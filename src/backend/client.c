/* SPDX-License-Identifier: Apache-2.0 */
/* Host-side client of the agent protocol. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"

/* Extra time the host grants an agent beyond the execute's own timeout
 * before it declares the sandbox dead: the agent enforces the timeout
 * itself, this only catches a wedged agent. */
#define HOST_GRACE_US (10u * 1000000u)

void mbx__client_init_transport(struct mbx_client *c, const struct mbx_transport *t)
{
	memset(c, 0, sizeof(*c));
	c->tr = *t;
	c->fd = t->fd;
	c->next_id = 1;
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
	if (c->tr.ops != NULL)
		c->tr.ops->close(&c->tr);
	else if (c->fd >= 0)
		close(c->fd); /* closed before a transport was set up */
	c->tr.ops = NULL;
	c->fd = -1;
	mbx_rbuf_release(&c->rb);
	mbx_wbuf_release(&c->wb);
}

/* Whether the channel is open; an error naming the state if not. */
static int channel_open(struct mbx_client *c, mbx_error **err)
{
	if (c->tr.ops != NULL)
		return MBX_OK;
	return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the channel to the sandbox agent is closed");
}

/* Whether bytes wait to be read, without waiting. */
static int readable_now(struct mbx_client *c)
{
	return mbx_rbuf_pending(&c->rb) > 0 || c->tr.ops->poll(&c->tr, POLLIN, 0) > 0;
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

int mbx__client_error_from(const struct mbx_frame *f, const char *backend, mbx_error **err)
{
	struct mbx_error_info info;

	if (mbx_proto_decode_error(f, &info) < 0)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed error");
	mbx__error_set(err, info.code, (int)info.errnum, info.layer[0] ? info.layer : NULL, "%s", info.message);
	if (info.code == MBX_ENOTSUP && info.layer[0])
		mbx__error_suggest(err, "run `mimobox doctor` to see what this host supports; allow degradation explicitly only if you accept running without %s",
				   info.layer);
	(void)backend;
	return info.code;
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

	if (c->tr.ops != NULL)
		c->tr.ops->close(&c->tr);
	c->tr = *t;
	c->fd = t->fd;
	/* Half a frame of the old channel means nothing on the new one. */
	mbx_rbuf_release(&c->rb);
	mbx_rbuf_init(&c->rb);
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

static void cproc_unlink(struct mbx_client *c, struct mbx_cproc *p)
{
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
				c->credit_news = 1;
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
	return 0;
}

/* Reads one frame; process events (output, exit, stdin credit) are
 * queued, anything else is returned in *f (rc 1). rc 0: a process event
 * was taken. */
static int pump_one(struct mbx_client *c, struct mbx_frame *f, uint64_t deadline_us, mbx_error **err)
{
	int rc = mbx__client_recv(c, f, deadline_us, err);

	if (rc < 0) {
		if (rc != MBX_ETIMEDOUT)
			c->broken = 1;
		return rc;
	}
	if (f->type == MBX_MSG_STDOUT || f->type == MBX_MSG_STDERR || f->type == MBX_MSG_EXIT ||
	    f->type == MBX_MSG_CREDIT) {
		rc = dispatch(c, f);
		if (rc < 0) {
			c->broken = 1;
			if (rc == -2)
				return mbx__error_set(err, MBX_EPROTO, 0, NULL,
						      "the sandbox agent sent more output of process %u than it was allowed", f->id);
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed process event");
		}
		return 0;
	}
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

	if (rc < 0) {
		c->broken = 1;
		return rc;
	}
	return mbx__client_await(c, id, deadline_us, reply, err);
}

int mbx__client_await(struct mbx_client *c, uint32_t id, uint64_t deadline_us, struct mbx_frame *reply, mbx_error **err)
{
	int rc;

	for (;;) {
		rc = pump_one(c, reply, deadline_us, err);
		if (rc < 0) {
			c->broken = 1; /* an answer that never comes leaves the stream unsynchronised */
			return rc;
		}
		if (rc == 0)
			continue;
		if (reply->id != id) {
			/* Errors for fire-and-forget process messages carry the
			 * process's id; anything else out of turn is a violation. */
			if (keep_error(c, reply) == 0)
				continue;
			c->broken = 1;
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered request %u, not %u", reply->id, id);
		}
		if (reply->type == MBX_MSG_ERROR)
			return mbx__client_error_from(reply, NULL, err);
		return MBX_OK;
	}
}

int mbx__client_spawn(struct mbx_client *c, const struct mbx_spawn_req *sr, struct mbx_cproc **out, mbx_error **err)
{
	const struct mbx_exec_req *req = sr->exec;
	uint32_t id = c->next_id++;
	uint64_t deadline = mbx__now_us() + HOST_GRACE_US;
	struct mbx_cproc *p;
	struct mbx_frame f;
	int rc;

	*out = NULL;
	mbx_proto_begin(&c->wb, MBX_MSG_EXEC, id);
	for (size_t i = 0; req->argv[i]; i++)
		mbx_proto_put_str(&c->wb, MBX_F_ARG, req->argv[i]);
	for (size_t i = 0; req->envp[i]; i++)
		mbx_proto_put_str(&c->wb, MBX_F_ENV, req->envp[i]);
	mbx_proto_put_str(&c->wb, MBX_F_CWD, req->cwd);
	mbx_proto_put_u64(&c->wb, MBX_F_TIMEOUT_MS, req->timeout_ms);
	mbx_proto_put_u64(&c->wb, MBX_F_OUTPUT_LIMIT, req->output_limit);
	mbx_proto_put_u64(&c->wb, MBX_F_WINDOW, sr->window);
	mbx_proto_put_u32(&c->wb, MBX_F_EXEC_FLAGS, sr->flags);
	if (sr->flags & MBX_XF_PTY) {
		mbx_proto_put_u32(&c->wb, MBX_F_ROWS, sr->rows);
		mbx_proto_put_u32(&c->wb, MBX_F_COLS, sr->cols);
	}
	if (sr->has_pass_fd)
		mbx_proto_put_u32(&c->wb, MBX_F_FD, 0);
	if (mbx_proto_end(&c->wb) < 0) {
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
	rc = mbx__client_request_fds(c, sr->has_pass_fd ? &sr->pass_fd : NULL, sr->has_pass_fd ? 1 : 0, id, deadline, &f,
				     err);
	if (rc == MBX_OK && f.type != MBX_MSG_STARTED) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered EXEC with message type %u", f.type);
	}
	if (rc < 0) {
		cproc_unlink(c, p);
		return rc;
	}
	mbx_proto_find_u32(&f, MBX_F_PID, &p->pid);
	if (p->has_stdin && mbx_proto_decode_window(&f, &p->stdin_credit) < 0) {
		c->broken = 1;
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

int mbx__client_write_stdin(struct mbx_client *c, struct mbx_cproc *p, const void *data, size_t len, size_t *written,
			    uint64_t deadline_us, int until_event, mbx_error **err)
{
	const uint8_t *d = data;
	struct mbx_frame f;
	int rc;

	*written = 0;
	p->credit_wanted = 0;
	while (*written < len) {
		uint64_t now = mbx__now_us(), until = deadline_us;
		mbx_error *tmp = NULL;

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
			if (rc < 0) {
				c->broken = 1;
				return rc;
			}
			p->stdin_credit -= n;
			*written += n;
			continue;
		}
		/* The program has not taken what it was sent: wait for credit. */
		if (deadline_us == 0 || now >= deadline_us) {
			if (c->tr.ops == NULL || !readable_now(c)) {
				p->credit_wanted = 1;
				return MBX_OK;
			}
			until = now + 100000u;
		}
		rc = pump_one(c, &f, until, &tmp);
		if (rc == MBX_ETIMEDOUT) {
			mbx_error_free(tmp);
			if (deadline_us == 0 || mbx__now_us() >= deadline_us) {
				p->credit_wanted = 1;
				return MBX_OK;
			}
			continue;
		}
		if (rc < 0) {
			mbx__error_move(err, &tmp);
			return rc;
		}
		if (rc == 1 && keep_error(c, &f) < 0) {
			c->broken = 1;
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "unexpected message type %u from the sandbox agent", f.type);
		}
		if (until_event && p->head != NULL && p->stdin_credit == 0)
			return MBX_OK;
	}
	return MBX_OK;
}

int mbx__client_next_event(struct mbx_client *c, struct mbx_cproc *p, uint64_t deadline_us, struct mbx_event **out,
			   mbx_error **err)
{
	struct mbx_frame f;
	int rc;

	*out = NULL;
	while (p->head == NULL) {
		uint64_t now = mbx__now_us(), until = deadline_us;
		mbx_error *tmp = NULL;

		if (p->taken_last)
			return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended and its last event was taken", p->id);
		if (deadline_us == 0 || now >= deadline_us) {
			/* No time left to wait: take what has arrived, and finish a
			 * frame already on its way. */
			if (c->tr.ops == NULL || !readable_now(c))
				return MBX_OK;
			until = now + 100000u;
		}
		rc = pump_one(c, &f, until, &tmp);
		if (rc == MBX_ETIMEDOUT) {
			/* Nothing complete in time: not an error of the call. */
			mbx_error_free(tmp);
			return MBX_OK;
		}
		if (rc < 0) {
			mbx__error_move(err, &tmp);
			return rc;
		}
		if (c->credit_news && p->head == NULL) {
			/* A waiting stdin write may go on. */
			c->credit_news = 0;
			return MBX_OK;
		}
		if (rc == 1) {
			/* Only process events arrive unasked; an error for a
			 * fire-and-forget message of a known process is kept
			 * for the next call on that process. */
			if (keep_error(c, &f) == 0)
				continue;
			c->broken = 1;
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "unexpected message type %u from the sandbox agent", f.type);
		}
	}
	*out = p->head;
	p->head = p->head->next;
	if (p->head == NULL)
		p->tail = NULL;
	(*out)->next = NULL;
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
			c->broken = 1;
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
	if (p->ended) {
		cproc_unlink(c, p);
		return;
	}
	/* Still running: keep the entry so its exit is recognised, and drop
	 * its queued output. */
	p->claimed = 0;
	while (p->head) {
		struct mbx_event *ev = p->head;

		p->head = ev->next;
		mbx__event_free(ev);
	}
	p->tail = NULL;
}

/* Keeps up to `limit` bytes of a stream in the result and hands every
 * delivered chunk to the callback. */
static int take_output(const struct mbx_exec_req *req, mbx_result *res, mbx_stream_t stream, const uint8_t *data, size_t len)
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
	if (keep && req->output_fn)
		req->output_fn(stream, data, keep, req->output_userdata);
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
		rc = take_output(req, res, ev->kind == MBX_EVENT_STDOUT ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, ev->data, ev->len);
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
			c->broken = 1;
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
				c->broken = 1;
				return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not report the end of the execute in time");
			}
			continue;
		}
		if (ev->kind == MBX_EVENT_STDOUT || ev->kind == MBX_EVENT_STDERR) {
			rc = take_output(req, res, ev->kind == MBX_EVENT_STDOUT ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, ev->data, ev->len);
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

int mbx__client_exec(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct mbx_spawn_req sr = { .exec = req, .window = EXEC_WINDOW, .flags = MBX_XF_ONESHOT };
	uint64_t deadline = mbx__now_us() + req->timeout_ms * 1000u + HOST_GRACE_US;
	struct mbx_cproc *p = NULL;
	int rc;

	if (req->stdin_data)
		sr.flags |= MBX_XF_STDIN;
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
