/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's end of a microVM's network channel (src/backend/microvm/vmnet.c)
 * against a hostile guest: the test plays the guest on one end of a
 * socketpair. Every broken rule must cut the channel (the guest's end
 * reads end of file, the stats say why), and what the host holds must stay
 * within its bound whatever the guest sends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netmux.h"
#include "vmnet.h"
#include "tap.h"

#define MAX_PEERS 128

struct harness {
	int g;                  /* the guest's end of the channel */
	struct mbx_vmnet *v;
	int peers[MAX_PEERS];   /* what `open` received, in order */
	size_t npeers;
	int refuse;             /* `open` refuses */
};

static int on_open(void *ud, int fd)
{
	struct harness *h = ud;

	if (h->refuse || h->npeers == MAX_PEERS) {
		close(fd);
		return -1;
	}
	h->peers[h->npeers++] = fd;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static void start(struct harness *h)
{
	int sv[2];
	mbx_error *err = NULL;

	memset(h, 0, sizeof(*h));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	h->g = sv[0];
	TAP_CHECK_INT(mbx__vmnet_start(&h->v, sv[1], on_open, h, NULL, &err), MBX_OK);
	mbx_error_free(err);
}

static void finish(struct harness *h)
{
	mbx__vmnet_stop(h->v);
	/* Stopped: `open` runs no more, the peers are the test's to close. */
	for (size_t i = 0; i < h->npeers; i++)
		close(h->peers[i]);
	close(h->g);
}

static void send_raw(struct harness *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(h->g, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* cut already */
		p += n;
		len -= (size_t)n;
	}
}

static void send_frame(struct harness *h, uint8_t type, uint32_t id, const void *data, uint16_t len)
{
	uint8_t buf[MBX_NETMUX_MAX_FRAME];

	mbx_netmux_header(buf, type, id, len);
	if (len)
		memcpy(buf + MBX_NETMUX_HEADER, data, len);
	send_raw(h, buf, MBX_NETMUX_HEADER + len);
}

static void send_credit(struct harness *h, uint32_t id, uint32_t n)
{
	uint8_t b[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	send_frame(h, MBX_NETMUX_CREDIT, id, b, 4);
}

/* Reads one frame from the host within `ms`; 1, 0 on timeout, -1 at end of file. */
static int read_frame(struct harness *h, struct mbx_netmux_frame *f, uint8_t *buf, int ms)
{
	size_t have = 0, want = MBX_NETMUX_HEADER;

	while (have < want) {
		struct pollfd p = { h->g, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return 0;
		n = recv(h->g, buf + have, want - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		if (have == MBX_NETMUX_HEADER) {
			const char *why;

			want = MBX_NETMUX_HEADER + ((size_t)buf[2] << 8 | buf[3]);
			if (want > MBX_NETMUX_MAX_FRAME)
				return -1;
			(void)why;
		}
	}
	{
		const char *why = NULL;

		return mbx_netmux_parse(buf, have, f, &why) > 0 ? 1 : -1;
	}
}

/* Waits until the host cut the channel: stats say so, why contains
 * `needle`, and the guest's end reads end of file. */
static void expect_cut(struct harness *h, const char *needle)
{
	struct mbx_vmnet_stats st;
	uint8_t buf[MBX_NETMUX_MAX_FRAME];
	struct mbx_netmux_frame f;
	int rc = 1;

	for (int i = 0; i < 500; i++) {
		mbx__vmnet_stats(h->v, &st);
		if (st.ended)
			break;
		sleep_ms(10);
	}
	TAP_CHECK(st.ended);
	TAP_CHECK(st.cut);
	if (!strstr(st.why, needle)) {
		printf("#   cut because \"%s\", expected \"%s\"\n", st.why, needle);
		TAP_CHECK(0);
	}
	TAP_CHECK_INT(st.streams, 0);
	while (rc == 1)
		rc = read_frame(h, &f, buf, 2000);
	TAP_CHECK_INT(rc, -1);
	/* Every peer saw its stream end. */
	for (size_t i = 0; i < h->npeers; i++) {
		char c[4096];
		ssize_t n = 1;

		/* What was delivered, then the end. */
		while (n > 0) {
			struct pollfd p = { h->peers[i], POLLIN, 0 };

			if (poll(&p, 1, 2000) != 1)
				break;
			n = recv(h->peers[i], c, sizeof(c), MSG_DONTWAIT);
		}
		TAP_CHECK(n <= 0);
	}
}

static void expect_alive(struct harness *h)
{
	struct mbx_vmnet_stats st;

	sleep_ms(50);
	mbx__vmnet_stats(h->v, &st);
	TAP_CHECK(!st.ended);
	if (st.ended)
		printf("#   cut: %s\n", st.why);
}

static int read_all(int fd, char *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 3000) <= 0)
			return -1;
		n = recv(fd, buf + have, len - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

/* An honest guest: a stream both ways, credits, half-closes, the end. */
static void test_relay(void)
{
	struct harness h;
	struct mbx_netmux_frame f;
	uint8_t buf[MBX_NETMUX_MAX_FRAME];
	char got[16];
	int fds = count_fds(), closes = 0, credited = 0;
	struct mbx_vmnet_stats st;

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_DATA, 1, "hello", 5);
	for (int i = 0; i < 300 && h.npeers == 0; i++)
		sleep_ms(10);
	TAP_CHECK_INT(h.npeers, 1);
	if (h.npeers != 1)
		goto out;
	TAP_CHECK_INT(read_all(h.peers[0], got, 5), 0);
	TAP_CHECK(memcmp(got, "hello", 5) == 0);
	TAP_CHECK_INT(send(h.peers[0], "world!", 6, MSG_NOSIGNAL), 6);
	shutdown(h.peers[0], SHUT_WR);
	/* DATA "world!", a CREDIT of 5 and a CLOSE, in some order. */
	for (int i = 0; i < 10 && !(closes && credited); i++) {
		if (read_frame(&h, &f, buf, 3000) != 1)
			break;
		TAP_CHECK_INT(f.id, 1);
		if (f.type == MBX_NETMUX_DATA) {
			TAP_CHECK_INT(f.len, 6);
			TAP_CHECK(memcmp(f.data, "world!", 6) == 0);
		} else if (f.type == MBX_NETMUX_CREDIT) {
			credited += (int)mbx_netmux_u32(f.data);
		} else if (f.type == MBX_NETMUX_CLOSE) {
			closes++;
		}
	}
	TAP_CHECK_INT(credited, 5);
	TAP_CHECK_INT(closes, 1);
	send_credit(&h, 1, 6);
	send_frame(&h, MBX_NETMUX_CLOSE, 1, NULL, 0);
	/* The peer reads end of file, and the stream is gone. */
	{
		struct pollfd p = { h.peers[0], POLLIN, 0 };

		TAP_CHECK(poll(&p, 1, 3000) == 1);
		TAP_CHECK_INT(recv(h.peers[0], got, 1, 0), 0);
	}
	for (int i = 0; i < 300; i++) {
		mbx__vmnet_stats(h.v, &st);
		if (st.streams == 0)
			break;
		sleep_ms(10);
	}
	TAP_CHECK_INT(st.streams, 0);
	TAP_CHECK_INT(st.opened, 1);
	/* Late frames of the ended stream are harmless. */
	send_credit(&h, 1, 1);
	send_frame(&h, MBX_NETMUX_DATA, 1, "x", 1);
	expect_alive(&h);
out:
	finish(&h);
	TAP_CHECK_INT(count_fds(), fds);
}

/* Each malformed frame on a fresh channel. */
static void test_malformed(void)
{
	static const struct {
		uint8_t raw[12];
		size_t len;
		const char *why;
	} cases[] = {
		{ { MBX_NETMUX_OPEN, 1, 0, 0, 0, 0, 0, 1 }, 8, "reserved byte" },
		{ { MBX_NETMUX_OPEN, 0, 0, 0, 0, 0, 0, 0 }, 8, "stream 0" },
		{ { 9, 0, 0, 0, 0, 0, 0, 1 }, 8, "unknown type" },
		{ { 0, 0, 0, 0, 0, 0, 0, 1 }, 8, "unknown type" },
		{ { MBX_NETMUX_OPEN, 0, 0, 4, 0, 0, 0, 1, 1, 2, 3, 4 }, 12, "carries data" },
		{ { MBX_NETMUX_DATA, 0, 0, 0, 0, 0, 0, 1 }, 8, "empty or over" },
		{ { MBX_NETMUX_DATA, 0, 0xff, 0xff, 0, 0, 0, 1 }, 8, "empty or over" },
		{ { MBX_NETMUX_CREDIT, 0, 0, 3, 0, 0, 0, 1, 0, 0, 1 }, 11, "not 4 bytes" },
		{ { MBX_NETMUX_RESET, 0, 0, 1, 0, 0, 0, 1, 0 }, 9, "carries data" },
	};
	int fds = count_fds();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct harness h;

		start(&h);
		send_raw(&h, cases[i].raw, cases[i].len);
		expect_cut(&h, cases[i].why);
		finish(&h);
	}
	TAP_CHECK_INT(count_fds(), fds);
}

/* Frames naming ids that were never opened, and ids that go back. */
static void test_ids(void)
{
	struct harness h;
	int fds = count_fds();

	start(&h);
	send_frame(&h, MBX_NETMUX_DATA, 7, "x", 1);
	expect_cut(&h, "never opened");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 3, NULL, 0);
	send_frame(&h, MBX_NETMUX_CLOSE, 4, NULL, 0);
	expect_cut(&h, "never opened");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 3, NULL, 0);
	send_frame(&h, MBX_NETMUX_OPEN, 3, NULL, 0);
	expect_cut(&h, "already used");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 5, NULL, 0);
	send_frame(&h, MBX_NETMUX_OPEN, 2, NULL, 0);
	expect_cut(&h, "already used");
	finish(&h);

	/* Stream rules: DATA after CLOSE, CLOSE twice, credit above the window. */
	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_CLOSE, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_DATA, 1, "x", 1);
	expect_cut(&h, "DATA after");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_CLOSE, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_CLOSE, 1, NULL, 0);
	expect_cut(&h, "CLOSE of a stream twice");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	send_credit(&h, 1, 1);
	expect_cut(&h, "above the window");
	finish(&h);

	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	send_credit(&h, 1, 0);
	expect_cut(&h, "CREDIT of zero");
	finish(&h);
	TAP_CHECK_INT(count_fds(), fds);
}

/*
 * A guest that sends past its credit to a peer that never reads: first
 * everything the credit allows (the host takes what the peer's socket
 * holds and credits it back), until no credit comes any more; then one
 * byte more is a cut, and the host held no more than its bound meanwhile.
 */
static void test_credit_overrun(void)
{
	struct harness h;
	static uint8_t chunk[MBX_NETMUX_MAX_DATA];
	uint64_t allowed = MBX_NETMUX_WINDOW, sent = 0;
	struct mbx_vmnet_stats st;
	int quiet = 0;

	memset(chunk, 'a', sizeof(chunk));
	start(&h);
	send_frame(&h, MBX_NETMUX_OPEN, 1, NULL, 0);
	while (quiet < 3) {
		struct mbx_netmux_frame f;
		uint8_t buf[MBX_NETMUX_MAX_FRAME];
		int got = 0;

		while (sent < allowed) {
			uint16_t n = (uint16_t)(allowed - sent < sizeof(chunk) ? allowed - sent : sizeof(chunk));

			send_frame(&h, MBX_NETMUX_DATA, 1, chunk, n);
			sent += n;
		}
		while (read_frame(&h, &f, buf, 100) == 1)
			if (f.type == MBX_NETMUX_CREDIT && f.id == 1) {
				allowed += mbx_netmux_u32(f.data);
				got = 1;
			}
		quiet = got ? 0 : quiet + 1;
		if (sent > (64u << 20))
			break; /* the peer's socket never filled: should not happen */
	}
	TAP_CHECK(sent <= (64u << 20));
	expect_alive(&h);
	mbx__vmnet_stats(h.v, &st);
	TAP_CHECK(st.held_max <= mbx__vmnet_held_bound());
	TAP_CHECK(st.held <= MBX_NETMUX_WINDOW + 4096);
	send_frame(&h, MBX_NETMUX_DATA, 1, "z", 1);
	expect_cut(&h, "beyond the stream's credit");
	mbx__vmnet_stats(h.v, &st);
	TAP_CHECK(st.held_max <= mbx__vmnet_held_bound());
	finish(&h);
}

/* More streams than the host serves: the extra ones are reset, not cut;
 * a stream the guest resets frees its place; a refused open is a reset. */
static void test_stream_limit(void)
{
	struct harness h;
	struct mbx_netmux_frame f;
	uint8_t buf[MBX_NETMUX_MAX_FRAME];
	struct mbx_vmnet_stats st;
	int resets = 0, fds = count_fds();

	start(&h);
	for (uint32_t id = 1; id <= MBX_NETMUX_MAX_STREAMS + 6; id++)
		send_frame(&h, MBX_NETMUX_OPEN, id, NULL, 0);
	while (read_frame(&h, &f, buf, 300) == 1) {
		TAP_CHECK_INT(f.type, MBX_NETMUX_RESET);
		TAP_CHECK(f.id > MBX_NETMUX_MAX_STREAMS);
		resets++;
	}
	TAP_CHECK_INT(resets, 6);
	mbx__vmnet_stats(h.v, &st);
	TAP_CHECK_INT(st.streams, MBX_NETMUX_MAX_STREAMS);
	TAP_CHECK_INT(st.opened, MBX_NETMUX_MAX_STREAMS);
	/* Late frames for the reset ids are ignored. */
	send_frame(&h, MBX_NETMUX_DATA, MBX_NETMUX_MAX_STREAMS + 1, "x", 1);
	send_frame(&h, MBX_NETMUX_RESET, 1, NULL, 0);
	send_frame(&h, MBX_NETMUX_OPEN, 100, NULL, 0);
	TAP_CHECK_INT(read_frame(&h, &f, buf, 300), 0);
	mbx__vmnet_stats(h.v, &st);
	TAP_CHECK_INT(st.opened, MBX_NETMUX_MAX_STREAMS + 1);
	TAP_CHECK_INT(st.streams, MBX_NETMUX_MAX_STREAMS);
	h.refuse = 1;
	send_frame(&h, MBX_NETMUX_RESET, 2, NULL, 0);
	send_frame(&h, MBX_NETMUX_OPEN, 101, NULL, 0);
	TAP_CHECK_INT(read_frame(&h, &f, buf, 2000), 1);
	TAP_CHECK_INT(f.type, MBX_NETMUX_RESET);
	TAP_CHECK_INT(f.id, 101);
	expect_alive(&h);
	/* Stopping with every stream open leaves nothing behind. */
	finish(&h);
	TAP_CHECK_INT(count_fds(), fds);
}

/* Garbage in bulk: cut at the first bad header, no matter what follows. */
static void test_garbage(void)
{
	struct harness h;
	uint8_t junk[70000];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	start(&h);
	send_raw(&h, junk, sizeof(junk));
	expect_cut(&h, "");
	finish(&h);
}

static const struct tap_case cases[] = {
	{ "vmnet/relay", test_relay },
	{ "vmnet/malformed", test_malformed },
	{ "vmnet/ids", test_ids },
	{ "vmnet/credit-overrun", test_credit_overrun },
	{ "vmnet/stream-limit", test_stream_limit },
	{ "vmnet/garbage", test_garbage },
};

TAP_MAIN(cases)
