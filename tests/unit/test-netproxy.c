/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy end to end, without any network: clients are unix socket
 * pairs handed to mbx__netproxy_serve() (as the microVM channel would be),
 * names resolve through a fake resolver, and "connecting" hands the proxy
 * one end of another socket pair whose other end the test plays as the
 * destination. So every byte a destination receives is visible here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "net/net.h"

struct world {
	pthread_mutex_t lock;
	int resolves;
	const char *answers[2];     /* first lookup, later lookups */
	int connects;
	char connected_to[48];      /* address of the last connect */
	int upstream;               /* the test's end of the last connection */
};

static struct world W;

static int fake_resolve(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n)
{
	const char *ans;

	(void)ud;
	(void)name;
	(void)max;
	pthread_mutex_lock(&W.lock);
	ans = W.answers[W.resolves ? 1 : 0];
	W.resolves++;
	pthread_mutex_unlock(&W.lock);
	memset(out, 0, sizeof(*out));
	*n = 0;
	if (ans == NULL)
		return EAI_NONAME;
	out->family = strchr(ans, ':') ? AF_INET6 : AF_INET;
	inet_pton(out->family, ans, out->family == AF_INET ? (void *)&out->a.v4 : (void *)&out->a.v6);
	*n = 1;
	return 0;
}

static int fake_connect(void *ud, const struct mbx_netaddr *a, uint16_t port, int timeout_ms, int stop_fd)
{
	int sv[2];

	(void)ud;
	(void)port;
	(void)timeout_ms;
	(void)stop_fd;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	pthread_mutex_lock(&W.lock);
	W.connects++;
	mbx__netaddr_str(a, W.connected_to, sizeof(W.connected_to));
	if (W.upstream >= 0)
		close(W.upstream);
	W.upstream = sv[1];
	pthread_mutex_unlock(&W.lock);
	return sv[0];
}

static const struct mbx_net_hooks hooks = { fake_resolve, fake_connect, NULL };

/* A lookup that takes its time, as a resolver timing out does. */
static int slow_resolve(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n)
{
	usleep(1500 * 1000);
	return fake_resolve(ud, name, out, max, n);
}

static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads until `want` appears, EOF or the timeout; returns bytes read. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want, int timeout_ms)
{
	uint64_t end = ms() + (uint64_t)timeout_ms;
	size_t n = 0;

	buf[0] = '\0';
	while (n + 1 < cap) {
		struct pollfd pf = { fd, POLLIN, 0 };
		uint64_t now = ms();
		ssize_t r;

		if (want && strstr(buf, want))
			break;
		if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
			break;
		r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
	}
	return n;
}

/* Waits until the fake destination has been connected. */
static int upstream_fd(int timeout_ms)
{
	uint64_t end = ms() + (uint64_t)timeout_ms;
	int fd = -1;

	while (ms() < end) {
		pthread_mutex_lock(&W.lock);
		fd = W.upstream;
		pthread_mutex_unlock(&W.lock);
		if (fd >= 0)
			return fd;
		usleep(1000);
	}
	return -1;
}

struct env {
	mbx_config *cfg;
	struct mbx_netlog *log;
	struct mbx_netproxy *p;
};

static void setup(struct env *e, uint64_t idle_ms, uint64_t max_down, uint64_t max_up, uint64_t conns)
{
	memset(&W, 0, sizeof(W));
	pthread_mutex_init(&W.lock, NULL);
	W.upstream = -1;
	W.answers[0] = "93.184.216.34";
	W.answers[1] = "127.0.0.1";
	mbx_config_new(&e->cfg, NULL);
	mbx_config_set_network(e->cfg, MBX_NETWORK_ALLOW_DOMAINS, NULL);
	mbx_config_add_allowed_domain(e->cfg, "api.example.com", NULL);
	if (idle_ms)
		mbx_config_set_network_limit(e->cfg, MBX_NET_LIMIT_IDLE_MS, idle_ms, NULL);
	if (max_down)
		mbx_config_set_network_limit(e->cfg, MBX_NET_LIMIT_RESPONSE_BYTES, max_down, NULL);
	if (max_up)
		mbx_config_set_network_limit(e->cfg, MBX_NET_LIMIT_REQUEST_BYTES, max_up, NULL);
	if (conns)
		mbx_config_set_network_limit(e->cfg, MBX_NET_LIMIT_CONNECTIONS, conns, NULL);
	TAP_CHECK_INT(mbx__netlog_new(&e->log), MBX_OK);
	TAP_CHECK_INT(mbx__netproxy_new(&e->p, e->cfg, e->log, &hooks, NULL), MBX_OK);
}

static void teardown(struct env *e)
{
	mbx__netproxy_free(e->p);
	mbx__netlog_free(e->log);
	mbx_config_free(e->cfg);
	if (W.upstream >= 0)
		close(W.upstream);
	pthread_mutex_destroy(&W.lock);
}

/* A new client connection served by the proxy; returns the client's end. */
static int client(struct env *e)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	TAP_CHECK_INT(mbx__netproxy_serve(e->p, sv[0], NULL), MBX_OK);
	return sv[1];
}

static void sends(int fd, const char *s)
{
	TAP_CHECK(send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s));
}

/* Takes a log copy through a fake sandbox. */
static mbx_net_log *log_copy(struct env *e)
{
	struct mbx_net net = { e->log };
	mbx_sandbox sb;
	mbx_net_log *l = NULL;

	memset(&sb, 0, sizeof(sb));
	sb.net = &net;
	TAP_CHECK_INT(mbx_sandbox_net_log(&sb, &l, NULL), MBX_OK);
	return l;
}

static void test_rebinding(void)
{
	struct env e;
	char buf[4096];
	int c;

	setup(&e, 0, 0, 0, 0);
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	/* One lookup, and the connection went to its (public) answer, not to
	 * the loopback address a second lookup would have given. */
	TAP_CHECK_INT(W.resolves, 1);
	TAP_CHECK_INT(W.connects, 1);
	TAP_CHECK_STR(W.connected_to, "93.184.216.34");
	close(c);
	teardown(&e);
}

static void test_relayed_connect(void)
{
	struct env e;
	char buf[4096];
	int c, up;
	mbx_net_log *l;

	setup(&e, 0, 0, 0, 0);
	c = client(&e);
	/* The second CONNECT rides in the same write as the first. */
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\nCONNECT evil.com:443 HTTP/1.1\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	up = upstream_fd(3000);
	TAP_CHECK(up >= 0);
	read_until(up, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK_STR(buf, "CONNECT evil.com:443 HTTP/1.1\r\n\r\n");
	/* A third, sent into the established tunnel. */
	sends(c, "CONNECT other.com:80 HTTP/1.1\r\n\r\nGET http://evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n");
	read_until(up, buf, sizeof(buf), "evil.com\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "CONNECT other.com:80", 20) == 0);
	/* Answers come back through the tunnel unchanged. */
	sends(up, "HTTP/1.1 501 no\r\n\r\n");
	read_until(c, buf, sizeof(buf), "no\r\n\r\n", 3000);
	TAP_CHECK_STR(buf, "HTTP/1.1 501 no\r\n\r\n");
	TAP_CHECK_INT(W.connects, 1);
	TAP_CHECK_INT(W.resolves, 1);
	close(c);
	close(up);
	W.upstream = -1;
	usleep(50000);
	l = log_copy(&e);
	TAP_CHECK_INT(mbx_net_log_count(l), 1);
	TAP_CHECK_STR(mbx_net_log_host(l, 0), "api.example.com");
	TAP_CHECK_INT(mbx_net_log_verdict(l, 0), MBX_NET_ALLOWED);
	mbx_net_log_free(l);
	teardown(&e);
}

static void test_forward_one_request(void)
{
	struct env e;
	char buf[4096], got[4096];
	int c, up;

	setup(&e, 0, 0, 0, 0);
	c = client(&e);
	sends(c, "POST http://api.example.com/submit?x=1 HTTP/1.1\r\nHost: api.example.com\r\n"
		 "Proxy-Authorization: secret\r\nConnection: keep-alive, X-Hop, Host, Content-Length\r\nX-Hop: 1\r\nX-Keep: 2\r\n"
		 "Content-Length: 5\r\n\r\nhello"
		 "GET http://evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n");
	up = upstream_fd(3000);
	TAP_CHECK(up >= 0);
	read_until(up, got, sizeof(got), "hello", 3000);
	memcpy(buf, got, sizeof(buf));
	TAP_CHECK(strncmp(buf, "POST /submit?x=1 HTTP/1.1\r\n", 27) == 0);
	TAP_CHECK(strstr(buf, "Host: api.example.com\r\n") != NULL);
	TAP_CHECK(strstr(buf, "Content-Length: 5\r\n") != NULL);
	TAP_CHECK(strstr(buf, "X-Keep: 2\r\n") != NULL);
	TAP_CHECK(strstr(buf, "Connection: close\r\n") != NULL);
	TAP_CHECK(strstr(buf, "Proxy-Authorization") == NULL);
	TAP_CHECK(strstr(buf, "X-Hop") == NULL);
	TAP_CHECK(strstr(buf, "keep-alive") == NULL);
	/* The pipelined request never reaches the destination. */
	sends(up, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	shutdown(up, SHUT_WR);
	read_until(c, buf, sizeof(buf), NULL, 3000);
	TAP_CHECK_STR(buf, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	memcpy(buf, got, sizeof(buf));
	{
		char rest[256];

		read_until(up, rest, sizeof(rest), NULL, 300);
		TAP_CHECK(strstr(rest, "evil") == NULL);
	}
	/* Everything the destination got: the checked request only. */
	TAP_CHECK(strstr(buf, "evil") == NULL);
	TAP_CHECK_INT(W.connects, 1);
	close(c);
	teardown(&e);
}

static void test_denials_are_immediate(void)
{
	static const char *const reqs[] = {
		"CONNECT evil.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 2130706433:443 HTTP/1.1\r\n\r\n",
		"CONNECT 0177.0.0.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 0x7f.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
		"CONNECT [::ffff:127.0.0.1]:443 HTTP/1.1\r\n\r\n",
		"GET http://evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n",
		"GET http://api.example.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	};
	struct env e;
	char buf[4096];

	setup(&e, 0, 0, 0, 0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		uint64_t t0 = ms();
		int c = client(&e);

		sends(c, reqs[i]);
		read_until(c, buf, sizeof(buf), NULL, 3000);
		if (strncmp(buf, "HTTP/1.1 4", 10) != 0 || ms() - t0 > 1500 || strstr(buf, "X-Mimobox-Reason: ") == NULL) {
			printf("#   request %zu: %.80s (%llu ms)\n", i, buf, (unsigned long long)(ms() - t0));
			tap_failed_now = 1;
		}
		close(c);
	}
	TAP_CHECK_INT(W.connects, 0);
	TAP_CHECK_INT(W.resolves, 0);
	teardown(&e);
}

static void test_slow_client(void)
{
	struct env e;
	char buf[1024];
	uint64_t t0;
	int c;

	setup(&e, 300, 0, 0, 0);
	c = client(&e);
	t0 = ms();
	sends(c, "CONNECT api.exa");
	read_until(c, buf, sizeof(buf), NULL, 5000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
	TAP_CHECK(ms() - t0 >= 250 && ms() - t0 < 2500);
	close(c);
	/* An idle tunnel is cut as well. */
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	t0 = ms();
	read_until(c, buf, sizeof(buf), NULL, 5000);
	TAP_CHECK(ms() - t0 < 2500);
	close(c);
	teardown(&e);
}

static void test_size_caps(void)
{
	struct env e;
	char buf[8192], big[5000];
	mbx_net_log *l;
	size_t n;
	int c, up;

	setup(&e, 0, 1000, 500, 0);
	W.answers[1] = W.answers[0];
	/* A declared body over the limit: 413 before any connection. */
	c = client(&e);
	sends(c, "POST http://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 100000\r\n\r\n");
	read_until(c, buf, sizeof(buf), NULL, 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
	TAP_CHECK_INT(W.connects, 0);
	close(c);
	/* A tunnel sending down more than the limit is cut. */
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	up = upstream_fd(3000);
	memset(big, 'x', sizeof(big));
	(void)!send(up, big, sizeof(big), MSG_NOSIGNAL);
	n = read_until(c, buf, sizeof(buf), NULL, 3000);
	TAP_CHECK(n <= 1000);
	/* ...and so is one sending up more. */
	close(c);
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
	(void)!send(c, big, sizeof(big), MSG_NOSIGNAL);
	up = upstream_fd(3000);
	n = read_until(up, buf, sizeof(buf), NULL, 3000);
	TAP_CHECK(n <= 500);
	close(c);
	usleep(100000);
	l = log_copy(&e);
	TAP_CHECK_INT(mbx_net_log_count(l), 3);
	TAP_CHECK_INT(mbx_net_log_verdict(l, 0), MBX_NET_FAILED);
	TAP_CHECK_INT(mbx_net_log_status(l, 0), 413);
	TAP_CHECK_INT(mbx_net_log_verdict(l, 1), MBX_NET_FAILED);
	TAP_CHECK(strstr(mbx_net_log_reason(l, 1), "response larger") != NULL);
	TAP_CHECK_INT(mbx_net_log_verdict(l, 2), MBX_NET_FAILED);
	TAP_CHECK(strstr(mbx_net_log_reason(l, 2), "request larger") != NULL);
	mbx_net_log_free(l);
	teardown(&e);
}

static void test_connection_limit(void)
{
	struct env e;
	char buf[1024];
	uint64_t t0;
	int c1, c2, c3;

	setup(&e, 0, 0, 0, 2);
	c1 = client(&e);
	c2 = client(&e);
	usleep(50000);
	t0 = ms();
	c3 = client(&e);
	read_until(c3, buf, sizeof(buf), NULL, 3000);
	TAP_CHECK(strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
	TAP_CHECK(ms() - t0 < 1500);
	close(c1);
	close(c2);
	close(c3);
	teardown(&e);
}

static void test_free_cuts_tunnels(void)
{
	struct env e;
	char buf[1024];
	uint64_t t0;
	int c, c2;

	setup(&e, 0, 0, 0, 0);
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
	read_until(c, buf, sizeof(buf), "\r\n\r\n", 3000);
	c2 = client(&e); /* one still sending its head */
	sends(c2, "CONNECT api");
	t0 = ms();
	mbx__netproxy_free(e.p);
	e.p = NULL;
	TAP_CHECK(ms() - t0 < 1500);
	/* The client sees the end. */
	TAP_CHECK_INT(read_until(c, buf, sizeof(buf), NULL, 2000), 0);
	close(c);
	close(c2);
	teardown(&e);
}

static void test_free_during_lookup(void)
{
	static const struct mbx_net_hooks slow = { slow_resolve, fake_connect, NULL };
	struct env e;
	uint64_t t0;
	int c;

	setup(&e, 0, 0, 0, 0);
	mbx__netproxy_free(e.p);
	TAP_CHECK_INT(mbx__netproxy_new(&e.p, e.cfg, e.log, &slow, NULL), MBX_OK);
	c = client(&e);
	sends(c, "CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
	usleep(100000); /* the thread is in the lookup now */
	t0 = ms();
	mbx__netproxy_free(e.p);
	e.p = NULL;
	/* free() does not wait out the lookup... */
	TAP_CHECK(ms() - t0 < 1200);
	/* ...and the thread, once back, connects nowhere and cleans up. */
	usleep(2000 * 1000);
	TAP_CHECK_INT(W.connects, 0);
	close(c);
	teardown(&e);
}

static const struct tap_case cases[] = {
	{ "netproxy/rebinding", test_rebinding },
	{ "netproxy/relayed-connect", test_relayed_connect },
	{ "netproxy/forward-one-request", test_forward_one_request },
	{ "netproxy/denials-are-immediate", test_denials_are_immediate },
	{ "netproxy/slow-client", test_slow_client },
	{ "netproxy/size-caps", test_size_caps },
	{ "netproxy/connection-limit", test_connection_limit },
	{ "netproxy/free-cuts-tunnels", test_free_cuts_tunnels },
	{ "netproxy/free-during-lookup", test_free_during_lookup },
};

TAP_MAIN(cases)
