/* SPDX-License-Identifier: Apache-2.0 */
/* Host-side client of the agent protocol. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"

/* Extra time the host grants an agent beyond the execute's own timeout
 * before it declares the sandbox dead: the agent enforces the timeout
 * itself, this only catches a wedged agent. */
#define HOST_GRACE_US (10u * 1000000u)

void mbx__client_init(struct mbx_client *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->next_id = 1;
	mbx_rbuf_init(&c->rb);
	mbx_wbuf_init(&c->wb);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void mbx__client_close(struct mbx_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	mbx_rbuf_release(&c->rb);
	mbx_wbuf_release(&c->wb);
}

static int wait_fd(int fd, short events, uint64_t deadline_us, mbx_error **err)
{
	for (;;) {
		uint64_t now = mbx__now_us();
		struct pollfd p = { .fd = fd, .events = events };
		int ms, rc;

		if (now >= deadline_us)
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "the sandbox agent did not answer in time");
		ms = (int)((deadline_us - now + 999) / 1000);
		rc = poll(&p, 1, ms > 60000 ? 60000 : ms);
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

	if (c->wb.failed) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "request is too large for the agent protocol (over %u bytes)",
				      MBX_PROTO_MAX_BODY);
	}
	while (off < c->wb.len) {
		ssize_t n;

		if (off == 0 && nfds > 0) {
			/* The descriptors ride on the first byte sent. */
			union {
				char buf[CMSG_SPACE(sizeof(int) * MBX_PROTO_MAX_FDS)];
				struct cmsghdr align;
			} ctl;
			struct iovec iov = { c->wb.buf, c->wb.len };
			struct msghdr msg = { 0 };
			struct cmsghdr *cm;

			memset(&ctl, 0, sizeof(ctl));
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			msg.msg_control = ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		} else {
			n = send(c->fd, c->wb.buf + off, c->wb.len - off, MSG_NOSIGNAL);
		}

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			rc = wait_fd(c->fd, POLLOUT, deadline_us, err);
			if (rc < 0)
				break;
			continue;
		}
		rc = mbx__error_set(err, MBX_EPROTO, errno, NULL, "send to the sandbox agent (it has exited)");
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
		space = mbx_rbuf_space(&c->rb, 65536);
		if (space == NULL)
			return mbx__error_oom(err);
		n = read(c->fd, space, 65536);
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
		rc = wait_fd(c->fd, POLLIN, deadline_us, err);
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

int mbx__client_hello(struct mbx_client *c, uint64_t deadline_us, mbx_error **err)
{
	struct mbx_frame f;
	uint32_t version = 0;
	int rc = mbx__client_recv(c, &f, deadline_us, err);

	if (rc < 0)
		return rc;
	if (f.type != MBX_MSG_HELLO || mbx_proto_decode_hello(&f, &version) < 0)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent did not greet (message type %u)", f.type);
	if (version != MBX_PROTO_VERSION)
		return mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent speaks protocol %u, the library %u",
				      version, MBX_PROTO_VERSION);
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

/* Keeps up to `limit` bytes of a stream in the result and hands every
 * delivered chunk to the callback. */
static int take_output(const struct mbx_exec_req *req, mbx_result *res, mbx_stream_t stream, const uint8_t *data, uint32_t len)
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

int mbx__client_exec(struct mbx_client *c, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	uint32_t id = c->next_id++;
	uint64_t deadline = mbx__now_us() + req->timeout_ms * 1000u + HOST_GRACE_US;
	struct mbx_frame f;
	int rc;

	mbx_proto_begin(&c->wb, MBX_MSG_EXEC, id);
	for (size_t i = 0; req->argv[i]; i++)
		mbx_proto_put_str(&c->wb, MBX_F_ARG, req->argv[i]);
	for (size_t i = 0; req->envp[i]; i++)
		mbx_proto_put_str(&c->wb, MBX_F_ENV, req->envp[i]);
	mbx_proto_put_str(&c->wb, MBX_F_CWD, req->cwd);
	mbx_proto_put_u64(&c->wb, MBX_F_TIMEOUT_MS, req->timeout_ms);
	mbx_proto_put_u64(&c->wb, MBX_F_OUTPUT_LIMIT, req->output_limit);
	if (mbx_proto_end(&c->wb) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "arguments and environment are too large (over %u bytes in all)", MBX_PROTO_MAX_BODY);
	}
	rc = mbx__client_send(c, deadline, err);
	if (rc < 0) {
		c->broken = 1;
		return rc;
	}
	for (;;) {
		const uint8_t *data;
		uint32_t len;
		struct mbx_exit_info ex;

		rc = mbx__client_recv(c, &f, deadline, err);
		if (rc < 0) {
			c->broken = 1;
			return rc;
		}
		if (f.id != id)
			return c->broken = 1, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered for execute %u, not %u", f.id, id);
		switch (f.type) {
		case MBX_MSG_STDOUT:
		case MBX_MSG_STDERR:
			if (mbx_proto_decode_data(&f, &data, &len) < 0)
				return c->broken = 1, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent malformed output");
			if (take_output(req, res, f.type == MBX_MSG_STDOUT ? MBX_STREAM_STDOUT : MBX_STREAM_STDERR, data, len) < 0)
				return c->broken = 1, mbx__error_oom(err);
			break;
		case MBX_MSG_EXIT:
			if (mbx_proto_decode_exit(&f, &ex) < 0)
				return c->broken = 1, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed exit status");
			res->exit_code = ex.exit_code;
			res->signal = (int)ex.signal;
			res->timed_out = (ex.flags & MBX_EXIT_TIMED_OUT) != 0;
			res->out_truncated |= (ex.flags & MBX_EXIT_STDOUT_TRUNCATED) != 0;
			res->err_truncated |= (ex.flags & MBX_EXIT_STDERR_TRUNCATED) != 0;
			res->cpu_us = ex.cpu_us;
			res->peak_memory = ex.maxrss;
			return MBX_OK;
		case MBX_MSG_ERROR:
			/* The agent refused or failed this execute; it is still fine. */
			return mbx__client_error_from(&f, NULL, err);
		default:
			c->broken = 1;
			return mbx__error_set(err, MBX_EPROTO, 0, NULL, "unexpected message type %u during an execute", f.type);
		}
	}
}

void mbx__client_shutdown(struct mbx_client *c)
{
	if (c->fd < 0)
		return;
	mbx_wbuf_reset(&c->wb);
	mbx_proto_begin(&c->wb, MBX_MSG_SHUTDOWN, 0);
	mbx_proto_end(&c->wb);
	(void)!send(c->fd, c->wb.buf, c->wb.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	mbx_wbuf_reset(&c->wb);
}
