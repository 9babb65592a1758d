/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host-side HTTP(S) proxy of a sandbox (docs/network.md).
 *
 * One thread accepts; each connection gets a thread of its own (at most
 * MBX_NET_LIMIT_CONNECTIONS, plus as many short-lived ones that only answer
 * 503), so a slow name lookup or a slow peer holds up nobody else. A
 * connection carries exactly one request:
 *
 *   CONNECT host:port      checked, resolved, connected to the checked
 *                          address, answered 200, then relayed as opaque
 *                          bytes both ways: a CONNECT sent inside the
 *                          tunnel goes to the allowed host as data, never
 *                          to this proxy's parser
 *   GET http://host/path   checked the same way (target and Host header),
 *                          forwarded in origin form with "Connection:
 *                          close", the body limited to its Content-Length;
 *                          anything the client pipelines after it is
 *                          dropped, so every request the proxy forwards is
 *                          one it checked
 *
 * Refusals are answered at once with a status and the reason (in the
 * status line, an X-Mimobox-Reason header and the body). Every socket is
 * non-blocking and every wait has a deadline: the request head must arrive
 * within the idle limit, a connection may stay silent that long, and one
 * request or tunnel lasts at most the time limit. Bytes are capped per
 * direction. A pipe whose write end is closed on free() wakes every
 * thread at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define RELAY_BUF (64u * 1024)
#define CONNECT_TIMEOUT_MS 10000
#define LINGER_MS 1000
#define THREAD_STACK (512u * 1024)
#define FREE_WAIT_MS 500

struct mbx_netproxy {
	mbx_config *cfg;         /* a private copy of the policy */
	struct mbx_netlog *log;  /* a reference */
	struct mbx_net_hooks hooks;
	int listen_fd;           /* owned, or -1 */
	int stop_r, stop_w;      /* owned; closing stop_w stops everything */
	pthread_t acceptor;
	int acceptor_running;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	size_t nconn;            /* connection threads alive */
	int stopping;
	int orphaned;            /* free() returned: the last thread frees */
	uint64_t max_up, max_down, timeout_ms, idle_ms;
	size_t max_conn;
};

struct conn {
	struct mbx_netproxy *p;
	int cfd;                 /* client, owned */
	int ufd;                 /* upstream, owned, or -1 */
	int busy;                /* over the connection limit: answer 503 */
	uint64_t start, deadline;
	struct mbx_netlog_entry le;
	uint64_t seq;
	char head[MBX_HTTP_MAX_HEAD];
	size_t hlen;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > 0x7fffffff ? 0x7fffffff : (int)(deadline - now);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "Connection established";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Writes everything or gives up at the deadline. */
static int send_all(int fd, const void *data, size_t len, uint64_t deadline, int stop_fd)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf[2] = { { fd, POLLOUT, 0 }, { stop_fd, POLLIN, 0 } };
			int r = poll(pf, 2, ms_left(deadline));

			if (r <= 0 || pf[1].revents)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* Half-closes and reads what the peer still sends, briefly, so closing
 * does not reset a connection whose answer the peer has not read yet. */
static void linger_close(int fd, int stop_fd)
{
	uint64_t deadline = now_ms() + LINGER_MS;
	char buf[4096];
	size_t total = 0;

	shutdown(fd, SHUT_WR);
	while (total < (1u << 20)) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };
		ssize_t n;

		if (poll(pf, 2, ms_left(deadline)) <= 0 || pf[1].revents)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	close(fd);
}

/* Replaces what cannot go into a header line or a log. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* The proxy's own answer: status, reason in the status line, a header and
 * the body; then the connection ends. */
static void respond(struct conn *c, int status, const char *reason)
{
	char r[256], msg[1024];
	int n;

	snprintf(r, sizeof(r), "%s", reason ? reason : "");
	sanitize(r);
	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 %d %s (%s)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\nX-Mimobox-Reason: %s\r\n\r\nmimobox proxy: %s\n",
		     status, status_text(status), r, strlen(r) + 16, r, r);
	if (n > 0)
		(void)send_all(c->cfd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, now_ms() + 2000,
			       c->p->stop_r);
}

static void log_message(struct conn *c)
{
	const char *v = mbx_net_verdict_name(c->le.verdict);

	mbx__log(c->p->cfg, c->le.verdict == MBX_NET_ALLOWED ? MBX_LOG_DEBUG : MBX_LOG_INFO,
		 "network: %s %s %s%s%s:%u (%s)", v ? v : "?", c->le.method[0] ? c->le.method : "request",
		 c->le.host[0] ? c->le.host : "?", c->le.address[0] ? " at " : "", c->le.address, c->le.port,
		 c->le.reason);
}

/* Records the decision and, for a refusal, answers it. */
static void decide_log(struct conn *c, uint8_t verdict, int status, const char *reason)
{
	c->le.verdict = verdict;
	c->le.status = status;
	snprintf(c->le.reason, sizeof(c->le.reason), "%s", reason ? reason : "");
	sanitize(c->le.reason);
	c->seq = mbx__netlog_add(c->p->log, &c->le);
	log_message(c);
	if (verdict != MBX_NET_ALLOWED)
		respond(c, status, c->le.reason);
}

/*
 * Reads the request head. Returns 1 with h filled, 0 when the client went
 * away without sending anything, -1 after the error was answered.
 */
static int read_head(struct conn *c, struct mbx_http_head *h)
{
	uint64_t deadline = c->start + c->p->idle_ms;
	const char *why = NULL;
	int status = 0, rc;

	if (deadline > c->deadline)
		deadline = c->deadline;
	for (;;) {
		struct pollfd pf[2] = { { c->cfd, POLLIN, 0 }, { c->p->stop_r, POLLIN, 0 } };
		ssize_t n;
		int r;

		r = poll(pf, 2, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || pf[1].revents)
			return 0;
		if (r == 0) {
			char why2[96];

			snprintf(why2, sizeof(why2), "request head not received within %llu ms",
				 (unsigned long long)c->p->idle_ms);
			decide_log(c, MBX_NET_DENIED, 408, why2);
			return -1;
		}
		n = recv(c->cfd, c->head + c->hlen, sizeof(c->head) - c->hlen, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			if (c->hlen == 0)
				return 0;
			decide_log(c, MBX_NET_DENIED, 400, "connection closed in the middle of the request head");
			return -1;
		}
		/* Parse again only when a line may have ended (or the method
		 * is still arriving): the head is re-read from its start. */
		if (!memchr(c->head + c->hlen, '\n', (size_t)n) && c->hlen + (size_t)n > 40 &&
		    c->hlen + (size_t)n < sizeof(c->head)) {
			c->hlen += (size_t)n;
			continue;
		}
		c->hlen += (size_t)n;
		rc = mbx__http_parse_head(c->head, c->hlen, h, &status, &why);
		if (rc == 1)
			return 1;
		if (rc < 0) {
			decide_log(c, MBX_NET_DENIED, status, why);
			return -1;
		}
		if (c->hlen == sizeof(c->head)) {
			decide_log(c, MBX_NET_DENIED, 431, "request head too large");
			return -1;
		}
	}
}

/* Connects to the checked addresses in order. Returns the socket, or -1
 * after the failure was logged and answered. */
static int connect_upstream(struct conn *c, const struct mbx_net_decision *d, uint16_t port)
{
	char why[224], a[48] = "";
	int e = 0;

	for (size_t i = 0; i < d->naddrs; i++) {
		struct pollfd stop = { c->p->stop_r, POLLIN, 0 };
		int left = ms_left(c->deadline), fd;

		/* A lookup may outlast the sandbox: connect nowhere then. */
		if (poll(&stop, 1, 0) != 0)
			return -1;
		if (left == 0) {
			e = ETIMEDOUT;
			break;
		}
		mbx__netaddr_str(&d->addrs[i], a, sizeof(a));
		fd = c->p->hooks.connect(c->p->hooks.ud, &d->addrs[i], port,
					 left < CONNECT_TIMEOUT_MS ? left : CONNECT_TIMEOUT_MS, c->p->stop_r);
		if (fd >= 0) {
			snprintf(c->le.address, sizeof(c->le.address), "%s", a);
			return fd;
		}
		e = -fd;
		if (e == ECANCELED)
			return -1;
	}
	snprintf(c->le.address, sizeof(c->le.address), "%s", a);
	snprintf(why, sizeof(why), "connect to %s port %u: %s", a, port, strerror(e));
	decide_log(c, MBX_NET_FAILED, e == ETIMEDOUT ? 504 : 502, why);
	return -1;
}

/* One direction of a relay. */
struct dir {
	int from, to;
	char *buf;
	size_t off, len;
	uint64_t total, cap;   /* bytes moved, and the most allowed */
	uint64_t readable;     /* bytes still to read from `from` (forward bodies) */
	int eof;               /* nothing more to read */
	int shut;              /* `to` was half-closed */
};

/* Moves bytes both ways until both sides are done (a tunnel) or the
 * response ended (forwarding). Returns NULL, or why it cut the relay. */
static const char *relay(struct conn *c, struct dir *up, struct dir *down, int forward, int *status)
{
	uint64_t idle_at = now_ms() + c->p->idle_ms;

	for (;;) {
		struct pollfd pf[3];
		struct dir *ds[2] = { up, down };
		int timeout, r;

		if (down->eof && down->len == 0 && (forward || (up->eof && up->len == 0)))
			return NULL;
		pf[0].fd = c->cfd;
		pf[0].events = (short)((!up->eof && up->len == 0 ? POLLIN : 0) | (down->len ? POLLOUT : 0));
		pf[1].fd = c->ufd;
		pf[1].events = (short)((!down->eof && down->len == 0 ? POLLIN : 0) | (up->len ? POLLOUT : 0));
		pf[2].fd = c->p->stop_r;
		pf[2].events = POLLIN;
		pf[0].revents = pf[1].revents = pf[2].revents = 0;
		timeout = ms_left(idle_at < c->deadline ? idle_at : c->deadline);
		r = poll(pf, 3, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return "poll failed";
		if (pf[2].revents)
			return "the sandbox was destroyed";
		if (r == 0) {
			*status = 504;
			return now_ms() >= c->deadline ? "time limit reached: cut off" : "idle for too long: cut off";
		}
		for (int k = 0; k < 2; k++) {
			struct dir *d = ds[k];
			short rev_from = pf[d->from == c->cfd ? 0 : 1].revents;
			short rev_to = pf[d->to == c->cfd ? 0 : 1].revents;

			if (!d->eof && d->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
				size_t want = RELAY_BUF;
				ssize_t n;

				if (d->readable < want)
					want = (size_t)d->readable;
				n = want ? recv(d->from, d->buf, want, 0) : 0;
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n <= 0) {
					d->eof = 1;
				} else {
					if (d->total + (uint64_t)n > d->cap) {
						*status = d == up ? 413 : 502;
						return d == up ? "request larger than the limit: cut off"
							       : "response larger than the limit: cut off";
					}
					d->total += (uint64_t)n;
					d->readable -= (uint64_t)n;
					d->off = 0;
					d->len = (size_t)n;
					idle_at = now_ms() + c->p->idle_ms;
					/* The first bytes of a forwarded response carry its status. */
					if (forward && d == down && c->le.status == 0 && n >= 12 &&
					    memcmp(d->buf, "HTTP/1.", 7) == 0 && d->buf[8] == ' ' &&
					    d->buf[9] >= '1' && d->buf[9] <= '5' && d->buf[10] >= '0' && d->buf[10] <= '9' &&
					    d->buf[11] >= '0' && d->buf[11] <= '9')
						c->le.status = (d->buf[9] - '0') * 100 + (d->buf[10] - '0') * 10 + (d->buf[11] - '0');
					/* The log has what the peers can have seen before they
					 * see it: a read of it as soon as the client is done
					 * (an execute's --audit) finds the status and the bytes,
					 * not the entry as it was when the relay began. */
					mbx__netlog_update(c->p->log, c->seq, MBX_NET_ALLOWED, c->le.status, NULL, up->total,
							   down->total);
				}
				if (d->readable == 0 && d == up && forward)
					d->eof = 1; /* the body is complete: read nothing more */
			}
			if (d->len && (rev_to & (POLLOUT | POLLERR | POLLHUP))) {
				ssize_t n = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL);

				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n <= 0)
					return d == up ? "the destination closed the connection" : "the client closed the connection";
				d->off += (size_t)n;
				d->len -= (size_t)n;
				idle_at = now_ms() + c->p->idle_ms;
			}
			if (d->eof && d->len == 0 && !d->shut && !(forward && d == up)) {
				shutdown(d->to, SHUT_WR);
				d->shut = 1;
			}
		}
		/* poll() reports errors and hang-ups whether asked or not: a peer
		 * that is gone, with nothing left to move to or from it, ends
		 * the relay, as an ordinary end (or the loop would spin). */
		if ((pf[0].revents | pf[1].revents) & (POLLERR | POLLNVAL))
			return NULL;
		if ((pf[0].revents & POLLHUP) && up->eof && down->len == 0)
			return NULL;
		if ((pf[1].revents & POLLHUP) && down->eof && up->len == 0)
			return NULL;
	}
}

/* Writes the head of a forwarded request: origin form, the client's
 * fields minus the hop-by-hop ones, "Connection: close". */
static int forward_head(const struct mbx_http_head *h, const struct mbx_proxy_req *r, char *out, size_t cap)
{
	static const char *const hop[] = { "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization",
					   "Proxy-Authenticate", "TE", "Trailer", "Upgrade", NULL };
	const struct mbx_http_field *conn_f = NULL;
	size_t o = 0;
	int n;

	for (size_t i = 0; i < h->nf; i++)
		if (mbx__http_name_is(&h->f[i], "Connection"))
			conn_f = &h->f[i];
	n = snprintf(out, cap, "%.*s %s%.*s HTTP/1.%d\r\n", (int)h->method_len, h->method,
		     (r->path_len && r->path[0] == '/') ? "" : "/", (int)r->path_len, r->path, h->minor);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	for (size_t i = 0; i < h->nf; i++) {
		const struct mbx_http_field *f = &h->f[i];
		int skip = 0;

		for (size_t k = 0; hop[k]; k++)
			if (mbx__http_name_is(f, hop[k]))
				skip = 1;
		/* Fields the client named in Connection are hop-by-hop too,
		 * except the two the proxy checked and relies on: without Host
		 * the destination would pick a site of its own choosing. */
		if (conn_f && !skip && !mbx__http_name_is(f, "Host") && !mbx__http_name_is(f, "Content-Length")) {
			const char *v = conn_f->value, *end = v + conn_f->value_len;

			while (v < end && !skip) {
				const char *tok_end = v;

				while (tok_end < end && *tok_end != ',')
					tok_end++;
				const char *a = v, *b = tok_end;

				while (a < b && (*a == ' ' || *a == '\t'))
					a++;
				while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
					b--;
				if ((size_t)(b - a) == f->name_len && strncasecmp(a, f->name, f->name_len) == 0)
					skip = 1;
				v = tok_end < end ? tok_end + 1 : end;
			}
		}
		if (skip)
			continue;
		n = snprintf(out + o, cap - o, "%.*s: %.*s\r\n", (int)f->name_len, f->name, (int)f->value_len, f->value);
		if (n < 0 || (size_t)n >= cap - o)
			return -1;
		o += (size_t)n;
	}
	if (h->minor == 0) {
		int has_host = 0;

		for (size_t i = 0; i < h->nf; i++)
			has_host |= mbx__http_name_is(&h->f[i], "Host");
		if (!has_host) {
			n = snprintf(out + o, cap - o, "Host: %s%s%s:%u\r\n", r->host.kind == MBX_HOST_IPV6 ? "[" : "",
				     r->host.name, r->host.kind == MBX_HOST_IPV6 ? "]" : "", r->port);
			if (n < 0 || (size_t)n >= cap - o)
				return -1;
			o += (size_t)n;
		}
	}
	n = snprintf(out + o, cap - o, "Connection: close\r\n\r\n");
	if (n < 0 || (size_t)n >= cap - o)
		return -1;
	return (int)(o + (size_t)n);
}

static void serve(struct conn *c)
{
	struct mbx_netproxy *p = c->p;
	struct mbx_http_head h;
	struct mbx_proxy_req r;
	struct mbx_net_decision d;
	struct dir up = { 0 }, down = { 0 };
	const char *why = NULL, *cut;
	int status = 0;
	char *fwd = NULL, rule_why[192];

	snprintf(c->le.source, sizeof(c->le.source), "proxy");
	if (c->busy) {
		char msg[96];

		snprintf(msg, sizeof(msg), "too many connections at once (limit %zu)", p->max_conn);
		decide_log(c, MBX_NET_DENIED, 503, msg);
		return;
	}
	if (read_head(c, &h) <= 0)
		return;
	snprintf(c->le.method, sizeof(c->le.method), "%.*s", (int)h.method_len, h.method);
	sanitize(c->le.method);
	if (mbx__http_proxy_req(&h, &r, &status, &why) < 0) {
		decide_log(c, MBX_NET_DENIED, status, why);
		return;
	}
	snprintf(c->le.host, sizeof(c->le.host), "%s", r.host.name);
	c->le.port = r.port;

	switch (mbx__net_decide(p->cfg, &p->hooks, &r.host, r.port, &d)) {
	case MBX_NETV_OK:
		break;
	case MBX_NETV_UNRESOLVED:
		decide_log(c, MBX_NET_FAILED, 502, d.reason);
		return;
	case MBX_NETV_DENIED:
	default:
		snprintf(c->le.address, sizeof(c->le.address), "%s", d.address);
		decide_log(c, MBX_NET_DENIED, 403, d.reason);
		return;
	}
	/* HTTP rules: by method and path for plain HTTP; a host with rules gets no tunnel. */
	if (mbx__net_http_check(p->cfg, &r.host, r.port, r.connect, h.method, h.method_len, r.path, r.path_len,
				rule_why, sizeof(rule_why)) < 0) {
		decide_log(c, MBX_NET_DENIED, 403, rule_why);
		return;
	}
	if (!r.connect && h.head_len + r.content_length > p->max_up) {
		char msg[96];

		snprintf(msg, sizeof(msg), "request body of %llu bytes is over the limit of %llu",
			 (unsigned long long)r.content_length, (unsigned long long)p->max_up);
		decide_log(c, MBX_NET_FAILED, 413, msg);
		return;
	}
	c->ufd = connect_upstream(c, &d, r.port);
	if (c->ufd < 0)
		return;
	decide_log(c, MBX_NET_ALLOWED, r.connect ? 200 : 0, d.reason);

	up.buf = malloc(RELAY_BUF);
	down.buf = malloc(RELAY_BUF);
	fwd = r.connect ? NULL : malloc(MBX_HTTP_MAX_HEAD + 64);
	if (up.buf == NULL || down.buf == NULL || (!r.connect && fwd == NULL)) {
		respond(c, 502, "out of memory");
		mbx__netlog_update(p->log, c->seq, MBX_NET_FAILED, 502, "out of memory", 0, 0);
		goto out;
	}
	up.from = c->cfd;
	up.to = c->ufd;
	up.cap = p->max_up;
	up.readable = UINT64_MAX;
	down.from = c->ufd;
	down.to = c->cfd;
	down.cap = p->max_down;
	down.readable = UINT64_MAX;

	if (r.connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		size_t extra = c->hlen - h.head_len;

		if (send_all(c->cfd, ok, sizeof(ok) - 1, c->deadline, p->stop_r) < 0)
			goto out;
		/* Bytes the client sent after the head (a TLS hello, often)
		 * belong to the tunnel. */
		if (extra) {
			if (extra > up.cap) {
				cut = "request larger than the limit: cut off";
				status = 413;
				goto cut_off;
			}
			memcpy(up.buf, c->head + h.head_len, extra);
			up.len = extra;
			up.total = extra;
		}
	} else {
		size_t extra = c->hlen - h.head_len;
		int n = forward_head(&h, &r, fwd, MBX_HTTP_MAX_HEAD + 64);

		if (n < 0) {
			respond(c, 431, "request head too large to forward");
			mbx__netlog_update(p->log, c->seq, MBX_NET_FAILED, 431, "request head too large to forward", 0, 0);
			goto out;
		}
		if (send_all(c->ufd, fwd, (size_t)n, c->deadline, p->stop_r) < 0) {
			cut = "the destination closed the connection";
			status = 502;
			goto cut_off;
		}
		up.total = (uint64_t)n;
		/* Only the declared body goes on; bytes after it (a pipelined
		 * second request) are never forwarded unchecked. */
		if (extra > r.content_length)
			extra = (size_t)r.content_length;
		memcpy(up.buf, c->head + h.head_len, extra);
		up.len = extra;
		up.total += extra;
		up.readable = r.content_length - extra;
		if (up.readable == 0)
			up.eof = 1;
	}
	status = 0;
	cut = relay(c, &up, &down, !r.connect, &status);
	if (cut == NULL) {
		mbx__netlog_update(p->log, c->seq, MBX_NET_ALLOWED, c->le.status, NULL, up.total, down.total);
		goto out;
	}
cut_off:
	c->le.verdict = MBX_NET_FAILED;
	snprintf(c->le.reason, sizeof(c->le.reason), "%s", cut);
	log_message(c);
	/* Nothing of the response went out yet: the client gets a reason. */
	if (down.total == 0 && status && !r.connect)
		respond(c, status, cut);
	mbx__netlog_update(p->log, c->seq, MBX_NET_FAILED, status, cut, up.total, down.total);
	shutdown(c->cfd, SHUT_RDWR);
out:
	free(up.buf);
	free(down.buf);
	free(fwd);
}

static void proxy_destroy(struct mbx_netproxy *p)
{
	close(p->stop_r);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	mbx_config_free(p->cfg);
	mbx__netlog_free(p->log);
	free(p);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct mbx_netproxy *p = c->p;
	int last;

	c->start = now_ms();
	c->deadline = c->start + p->timeout_ms;
	serve(c);
	if (c->ufd >= 0)
		close(c->ufd);
	linger_close(c->cfd, p->stop_r);
	free(c);
	/* Last touch of the proxy: free() waits for nconn to reach zero, or
	 * left the proxy to the last thread. */
	pthread_mutex_lock(&p->lock);
	last = --p->nconn == 0 && p->orphaned;
	if (p->nconn == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	if (last)
		proxy_destroy(p);
	return NULL;
}

/* Starts a thread for a connection (taking fd over). */
static int start_conn(struct mbx_netproxy *p, int fd)
{
	pthread_attr_t attr;
	pthread_t t;
	struct conn *c;
	int busy, rc;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->nconn >= 2 * p->max_conn) {
		pthread_mutex_unlock(&p->lock);
		close(fd);
		return -1;
	}
	busy = p->nconn >= p->max_conn;
	p->nconn++;
	pthread_mutex_unlock(&p->lock);

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->p = p;
	c->cfd = fd;
	c->ufd = -1;
	c->busy = busy;
	c->seq = UINT64_MAX;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return 0;
	free(c);
fail:
	close(fd);
	pthread_mutex_lock(&p->lock);
	if (--p->nconn == 0)
		pthread_cond_broadcast(&p->idle); /* not orphaned: free() is not running */
	pthread_mutex_unlock(&p->lock);
	return -1;
}

static void *accept_main(void *arg)
{
	struct mbx_netproxy *p = arg;

	for (;;) {
		struct pollfd pf[2] = { { p->listen_fd, POLLIN, 0 }, { p->stop_r, POLLIN, 0 } };
		int fd, r = poll(pf, 2, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || pf[1].revents)
			break;
		fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				poll(pf + 1, 1, 50); /* out of descriptors: let connections end */
			continue;
		}
		start_conn(p, fd);
	}
	return NULL;
}

int mbx__netproxy_new(struct mbx_netproxy **out, const mbx_config *cfg, struct mbx_netlog *log,
		      const struct mbx_net_hooks *hooks, mbx_error **err)
{
	struct mbx_netproxy *p;
	int sp[2];

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mbx__error_oom(err);
	if (pipe2(sp, O_CLOEXEC) < 0) {
		free(p);
		return mbx__error_set(err, MBX_ESYS, errno, "network", "create the proxy's stop pipe");
	}
	p->stop_r = sp[0];
	p->stop_w = sp[1];
	p->listen_fd = -1;
	if (mbx__config_copy(cfg, &p->cfg, err) < 0) {
		close(sp[0]);
		close(sp[1]);
		free(p);
		return MBX_ENOMEM;
	}
	p->log = mbx__netlog_ref(log);
	p->hooks = hooks ? *hooks : mbx__net_default_hooks;
	p->max_up = mbx__net_limit(cfg, MBX_NET_LIMIT_REQUEST_BYTES);
	p->max_down = mbx__net_limit(cfg, MBX_NET_LIMIT_RESPONSE_BYTES);
	p->timeout_ms = mbx__net_limit(cfg, MBX_NET_LIMIT_TIMEOUT_MS);
	p->idle_ms = mbx__net_limit(cfg, MBX_NET_LIMIT_IDLE_MS);
	p->max_conn = (size_t)mbx__net_limit(cfg, MBX_NET_LIMIT_CONNECTIONS);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	*out = p;
	return MBX_OK;
}

int mbx__netproxy_listen(struct mbx_netproxy *p, int listen_fd, mbx_error **err)
{
	int rc;

	if (p->acceptor_running) {
		close(listen_fd);
		return mbx__error_set(err, MBX_ESTATE, 0, "network", "the proxy already has a listener");
	}
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	p->listen_fd = listen_fd;
	rc = pthread_create(&p->acceptor, NULL, accept_main, p);
	if (rc != 0)
		return mbx__error_set(err, MBX_ESYS, rc, "network", "start the proxy thread");
	p->acceptor_running = 1;
	return MBX_OK;
}

int mbx__netproxy_serve(struct mbx_netproxy *p, int fd, mbx_error **err)
{
	if (start_conn(p, fd) < 0)
		return mbx__error_set(err, MBX_ESYS, EAGAIN, "network", "the proxy cannot take another connection");
	return MBX_OK;
}

void mbx__netproxy_free(struct mbx_netproxy *p)
{
	struct timespec until;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_mutex_unlock(&p->lock);
	/* Every poll of every thread includes stop_r: this wakes them all. */
	close(p->stop_w);
	if (p->acceptor_running)
		pthread_join(p->acceptor, NULL);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	p->listen_fd = -1;
	/* Threads wake at once, except one inside getaddrinfo(): give them a
	 * moment, then leave the proxy to the last one. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += FREE_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&p->lock);
	while (p->nconn > 0)
		if (pthread_cond_timedwait(&p->idle, &p->lock, &until) == ETIMEDOUT)
			break;
	if (p->nconn > 0) {
		p->orphaned = 1;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_unlock(&p->lock);
	proxy_destroy(p);
}
