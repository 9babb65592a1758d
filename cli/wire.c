/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The framing of the CLI's supervisor protocol; see wire.h. Pure C plus
 * read/write/poll, so the unit test links this file alone.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

/* ---- writing ---- */

static void put_be(struct cli_buf *b, uint64_t v, int n)
{
	uint8_t tmp[8];
	int i;

	for (i = n - 1; i >= 0; i--) {
		tmp[i] = (uint8_t)v;
		v >>= 8;
	}
	cli_buf_add(b, tmp, (size_t)n);
}

size_t wire_begin(struct cli_buf *b, uint8_t type)
{
	size_t start = b->len;

	put_be(b, 0, 4);	/* the length, filled in by wire_end() */
	put_be(b, type, 1);
	return start;
}

void wire_u8(struct cli_buf *b, uint8_t v)
{
	put_be(b, v, 1);
}

void wire_u16(struct cli_buf *b, uint16_t v)
{
	put_be(b, v, 2);
}

void wire_u32(struct cli_buf *b, uint32_t v)
{
	put_be(b, v, 4);
}

void wire_u64(struct cli_buf *b, uint64_t v)
{
	put_be(b, v, 8);
}

void wire_bytes(struct cli_buf *b, const void *data, size_t len)
{
	if (len > WIRE_MAX_BODY) {
		/* Cannot fit: grow the body past the limit, so wire_end() refuses the frame. */
		put_be(b, UINT32_MAX, 4);
		if (cli_buf_reserve(b, (size_t)WIRE_MAX_BODY + 1) == 0) {
			memset(b->data + b->len, 0, (size_t)WIRE_MAX_BODY + 1);
			b->len += (size_t)WIRE_MAX_BODY + 1;
		}
		return;
	}
	put_be(b, len, 4);
	cli_buf_add(b, data, len);
}

void wire_str(struct cli_buf *b, const char *s)
{
	if (!s)
		s = "";
	wire_bytes(b, s, strlen(s));
	put_be(b, 0, 1);
}

int wire_end(struct cli_buf *b, size_t start)
{
	size_t body;
	int i;

	if (b->failed) {
		errno = ENOMEM;
		return -1;
	}
	body = b->len - start - 4;
	if (body > WIRE_MAX_BODY) {
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
		errno = EMSGSIZE;
		return -1;
	}
	for (i = 3; i >= 0; i--) {
		b->data[start + (size_t)i] = (char)(uint8_t)body;
		body >>= 8;
	}
	return 0;
}

/* ---- reading fields ---- */

static uint64_t get_be(struct wire_reader *r, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		v = (v << 8) | r->p[i];
	r->p += n;
	r->left -= n;
	return v;
}

uint8_t wire_get_u8(struct wire_reader *r)
{
	return (uint8_t)get_be(r, 1);
}

uint16_t wire_get_u16(struct wire_reader *r)
{
	return (uint16_t)get_be(r, 2);
}

uint32_t wire_get_u32(struct wire_reader *r)
{
	return (uint32_t)get_be(r, 4);
}

uint64_t wire_get_u64(struct wire_reader *r)
{
	return get_be(r, 8);
}

size_t wire_get_bytes(struct wire_reader *r, const uint8_t **data)
{
	uint32_t len = wire_get_u32(r);

	*data = (const uint8_t *)"";
	if (r->bad || len > r->left) {
		r->bad = 1;
		return 0;
	}
	*data = r->p;
	r->p += len;
	r->left -= len;
	return len;
}

const char *wire_get_str(struct wire_reader *r)
{
	const uint8_t *s;
	size_t len = wire_get_bytes(r, &s);

	/* The terminator must be there and be the only NUL. */
	if (r->bad || r->left < 1 || r->p[0] != 0 || memchr(s, 0, len) != NULL) {
		r->bad = 1;
		return "";
	}
	r->p++;
	r->left--;
	return (const char *)s;
}

int wire_done(const struct wire_reader *r)
{
	return r->bad || r->left != 0 ? -1 : 0;
}

/* ---- connections ---- */

void wire_conn_init(struct wire_conn *c, int fd)
{
	struct cli_buf empty = CLI_BUF_INIT;

	c->fd = fd;
	c->in = empty;
	c->off = 0;
}

void wire_conn_close(struct wire_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	cli_buf_free(&c->in);
	c->off = 0;
}

long wire_conn_fill(struct wire_conn *c)
{
	ssize_t n;

	/* Drop what was taken, so the buffer holds at most one frame plus a read. */
	if (c->off > 0) {
		memmove(c->in.data, c->in.data + c->off, c->in.len - c->off);
		c->in.len -= c->off;
		c->off = 0;
	}
	if (cli_buf_reserve(&c->in, 65536) < 0) {
		errno = ENOMEM;
		return -1;
	}
	do
		n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
	}
	return (long)n;
}

int wire_conn_next(struct wire_conn *c, struct wire_frame *f)
{
	const uint8_t *p = (const uint8_t *)c->in.data + c->off;
	size_t have = c->in.len - c->off;
	uint32_t len;

	if (have < 4)
		return 0;
	len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (len == 0 || len > WIRE_MAX_BODY) {
		errno = EPROTO;
		return -1;
	}
	if (have - 4 < len)
		return 0;
	f->type = p[4];
	f->r.p = p + 5;
	f->r.left = len - 1;
	f->r.bad = 0;
	c->off += 4 + (size_t)len;
	return 1;
}

int wire_conn_partial(const struct wire_conn *c)
{
	return c->in.len > c->off;
}

int64_t wire_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wire_conn_recv(struct wire_conn *c, struct wire_frame *f, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? 0 : wire_now_ms() + timeout_ms;
	struct pollfd pfd;
	long n;
	int rc, wait;

	for (;;) {
		rc = wire_conn_next(c, f);
		if (rc != 0)
			return rc;
		wait = -1;
		if (timeout_ms >= 0) {
			int64_t left = deadline - wire_now_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			wait = (int)left;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, wait);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc <= 0)
			continue;
		n = wire_conn_fill(c);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (wire_conn_partial(c)) {
				errno = EPROTO;
				return -1;
			}
			return 0;
		}
	}
}

int wire_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

int wire_send(int fd, struct cli_buf *b)
{
	int rc;

	if (b->failed) {
		cli_buf_free(b);
		errno = ENOMEM;
		return -1;
	}
	rc = wire_write_all(fd, b->data, b->len);
	b->len = 0;
	return rc;
}
