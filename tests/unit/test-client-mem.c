/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host client (src/backend/client.c) over the in-memory transport
 * (src/backend/transport.h) against a scripted agent that answers each frame
 * the host writes: the handshake and its version negotiation, INIT/READY,
 * an execute with output and exit, credit enforcement, a malformed frame,
 * the end of the channel in the middle of an execute, a reconnect to the
 * same session, descriptors refused by transports that cannot pass them.
 * Single-threaded and deterministic: frames can be cut at any byte.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/client.h"
#include "tap.h"

/* What the scripted agent does after STARTED. */
enum plot {
	PLOT_EXIT,      /* output on both streams, then EXIT 7 */
	PLOT_OVERRUN,   /* one STDOUT frame of window + 1 bytes */
	PLOT_AT_WINDOW, /* exactly the window, then EXIT 0 */
	PLOT_GARBAGE,   /* a header announcing more than MBX_PROTO_MAX_BODY */
	PLOT_BAD_EVENT, /* a STDOUT frame whose field runs past its end */
	PLOT_EOF,       /* some output, then the channel ends */
};

struct agent {
	struct mbx_mem_agent m;
	struct mbx_wbuf w;
	enum plot plot;
	uint64_t window;         /* of the last EXEC */
	int acks, inits, execs, shutdowns, credits;
	uint32_t ack_version;
	uint64_t ack_features;
	uint64_t credit_granted;
	int ack_before_init;     /* HELLO_ACK came before INIT */
};

static void put_hello(struct agent *a, uint32_t lo, uint32_t hi, uint64_t features, uint64_t session)
{
	mbx_proto_begin(&a->w, MBX_MSG_HELLO, 0);
	mbx_proto_put_u32(&a->w, MBX_F_VERSION, hi);
	mbx_proto_put_u32(&a->w, MBX_F_VERSION_MIN, lo);
	mbx_proto_put_u64(&a->w, MBX_F_FEATURES, features);
	mbx_proto_put_u64(&a->w, MBX_F_SESSION, session);
	mbx_proto_end(&a->w);
	mbx__mem_agent_send(&a->m, &a->w);
}

static void put_out(struct agent *a, uint16_t type, uint32_t id, const void *data, size_t len)
{
	mbx_proto_begin(&a->w, type, id);
	mbx_proto_put(&a->w, MBX_F_DATA, data, len);
	mbx_proto_end(&a->w);
}

static int react(struct mbx_mem_agent *m, const struct mbx_frame *f, size_t nfds, void *userdata)
{
	struct agent *a = userdata;
	static uint8_t big[70000];

	(void)nfds;
	switch (f->type) {
	case MBX_MSG_HELLO_ACK:
		a->acks++;
		mbx_proto_find_u32(f, MBX_F_VERSION, &a->ack_version);
		mbx_proto_find_u64(f, MBX_F_FEATURES, &a->ack_features);
		return 0;
	case MBX_MSG_INIT:
		a->inits++;
		a->ack_before_init = a->acks > 0;
		mbx_proto_begin(&a->w, MBX_MSG_READY, 0);
		mbx_proto_put_u32(&a->w, MBX_F_LAYERS, 0x30);
		mbx_proto_put_u32(&a->w, MBX_F_SKIPPED, 0x40);
		mbx_proto_put_u32(&a->w, MBX_F_LANDLOCK_ABI, 4);
		mbx_proto_end(&a->w);
		break;
	case MBX_MSG_SHUTDOWN:
		a->shutdowns++;
		return 1;
	case MBX_MSG_CREDIT: {
		uint64_t w = 0;

		a->credits++;
		mbx_proto_find_u64(f, MBX_F_WINDOW, &w);
		a->credit_granted += w;
		return 0;
	}
	case MBX_MSG_EXEC:
		a->execs++;
		mbx_proto_find_u64(f, MBX_F_WINDOW, &a->window);
		mbx_proto_begin(&a->w, MBX_MSG_STARTED, f->id);
		mbx_proto_put_u32(&a->w, MBX_F_PID, 42);
		mbx_proto_put_u64(&a->w, MBX_F_WINDOW, 4096);
		mbx_proto_end(&a->w);
		memset(big, 'x', sizeof(big));
		switch (a->plot) {
		case PLOT_EXIT:
			put_out(a, MBX_MSG_STDOUT, f->id, "hello\n", 6);
			put_out(a, MBX_MSG_STDERR, f->id, "warn", 4);
			put_out(a, MBX_MSG_STDOUT, f->id, "world\n", 6);
			mbx_proto_begin(&a->w, MBX_MSG_EXIT, f->id);
			mbx_proto_put_u32(&a->w, MBX_F_EXIT_CODE, 7);
			mbx_proto_put_u64(&a->w, MBX_F_CPU_US, 1234);
			mbx_proto_end(&a->w);
			break;
		case PLOT_OVERRUN:
		case PLOT_AT_WINDOW:
			put_out(a, MBX_MSG_STDOUT, f->id, big, (size_t)a->window + (a->plot == PLOT_OVERRUN));
			mbx_proto_begin(&a->w, MBX_MSG_EXIT, f->id);
			mbx_proto_put_u32(&a->w, MBX_F_EXIT_CODE, 0);
			mbx_proto_end(&a->w);
			break;
		case PLOT_GARBAGE: {
			static const uint8_t h[MBX_PROTO_HEADER] = { 0xff, 0xff, 0xff, 0x7f, MBX_MSG_STDOUT, 0, 0, 0, 1, 0, 0, 0 };

			mbx__mem_agent_send(m, &a->w);
			mbx__mem_agent_push(m, h, sizeof(h));
			return 0;
		}
		case PLOT_BAD_EVENT: {
			/* A DATA field claiming 4 bytes in a body that keeps 2. */
			const uint8_t fr[MBX_PROTO_HEADER + 8] = {
				8, 0, 0, 0, MBX_MSG_STDOUT, 0, 0, 0, (uint8_t)f->id, 0, 0, 0,
				MBX_F_DATA, 0, 4, 0, 0, 0, 'a', 'b',
			};

			mbx__mem_agent_send(m, &a->w);
			mbx__mem_agent_push(m, fr, sizeof(fr));
			return 0;
		}
		case PLOT_EOF:
			put_out(a, MBX_MSG_STDOUT, f->id, "partial", 7);
			mbx__mem_agent_send(m, &a->w);
			return 1;
		default:
			break;
		}
		break;
	default:
		return 0;
	}
	return mbx__mem_agent_send(m, &a->w) < 0;
}

static void agent_init(struct agent *a, enum plot plot)
{
	memset(a, 0, sizeof(*a));
	mbx_wbuf_init(&a->w);
	mbx__mem_agent_init(&a->m, react, a);
	a->plot = plot;
}

static void agent_release(struct agent *a)
{
	mbx_wbuf_release(&a->w);
	mbx__mem_agent_release(&a->m);
}

static void client_on(struct mbx_client *c, struct agent *a)
{
	struct mbx_transport t;

	mbx__transport_mem(&t, &a->m);
	mbx__client_init_transport(c, &t);
}

/* Whether the error's message holds `needle` (printed when not). */
static int says(mbx_error *err, const char *needle)
{
	const char *m = err ? mbx_error_message(err) : "(no error)";

	if (strstr(m, needle))
		return 1;
	printf("#   message \"%s\" lacks \"%s\"\n", m, needle);
	return 0;
}

#define DEADLINE (mbx__now_us() + 2000000u)

/* ---- handshake ---- */

static void test_handshake(void)
{
	struct mbx_client c;
	struct agent a;
	mbx_error *err = NULL;

	agent_init(&a, PLOT_EXIT);
	put_hello(&a, MBX_PROTO_VERSION_MIN, MBX_PROTO_VERSION, MBX_FEAT_RESUME | (1ull << 40), 0xabcdef0123456789ull);
	client_on(&c, &a);
	TAP_CHECK_INT(mbx__client_hello(&c, DEADLINE, &err), MBX_OK);
	TAP_CHECK_INT(c.version, MBX_PROTO_VERSION);
	/* A feature the host does not know is not used. */
	TAP_CHECK_INT(c.features, MBX_FEAT_RESUME);
	TAP_CHECK(c.session == 0xabcdef0123456789ull);
	TAP_CHECK_INT(a.acks, 1);
	TAP_CHECK_INT(a.ack_version, MBX_PROTO_VERSION);
	TAP_CHECK(a.ack_features == MBX_FEAT_RESUME);
	mbx_error_free(err);
	mbx__client_close(&c);
	TAP_CHECK(a.m.host_closed);
	agent_release(&a);
}

/* Runs the handshake against one HELLO; returns its code, *ack whether the
 * host answered. */
static int hello_with(uint32_t lo, uint32_t hi, int v3_style, uint32_t *chosen, int *ack, const char *needle)
{
	struct mbx_client c;
	struct agent a;
	mbx_error *err = NULL;
	int rc;

	agent_init(&a, PLOT_EXIT);
	if (v3_style) {
		mbx_proto_begin(&a.w, MBX_MSG_HELLO, 0);
		mbx_proto_put_u32(&a.w, MBX_F_VERSION, hi);
		mbx_proto_end(&a.w);
		mbx__mem_agent_send(&a.m, &a.w);
	} else {
		put_hello(&a, lo, hi, 0, 1);
	}
	client_on(&c, &a);
	rc = mbx__client_hello(&c, DEADLINE, &err);
	*chosen = c.version;
	*ack = a.acks;
	if (needle)
		TAP_CHECK(says(err, needle));
	if (rc < 0 && err == NULL)
		TAP_CHECK(!"an error without a message");
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
	return rc;
}

static void test_negotiation(void)
{
	uint32_t v;
	int ack;

	/* A newer agent that still speaks ours: ours, the newest in both. */
	TAP_CHECK_INT(hello_with(2, MBX_PROTO_VERSION + 5, 0, &v, &ack, NULL), MBX_OK);
	TAP_CHECK_INT(v, MBX_PROTO_VERSION);
	TAP_CHECK_INT(ack, 1);
	/* Ranges that do not meet: both named, no answer. */
	TAP_CHECK_INT(hello_with(MBX_PROTO_VERSION + 1, MBX_PROTO_VERSION + 3, 0, &v, &ack, "no version in common"), MBX_EPROTO);
	TAP_CHECK_INT(ack, 0);
	TAP_CHECK_INT(hello_with(1, MBX_PROTO_VERSION_MIN - 1, 0, &v, &ack, "the library"), MBX_EPROTO);
	/* An agent from before the version range (one VERSION, no session). */
	TAP_CHECK_INT(hello_with(3, 3, 1, &v, &ack, "speaks protocol 3"), MBX_EPROTO);
	TAP_CHECK_INT(ack, 0);
	/* A range upside down is malformed. */
	TAP_CHECK_INT(hello_with(MBX_PROTO_VERSION + 1, MBX_PROTO_VERSION, 0, &v, &ack, "malformed HELLO"), MBX_EPROTO);

	/* The pure rule. */
	uint64_t f = 0;

	TAP_CHECK_INT(mbx_proto_negotiate(3, 6, 7, 4, 9, 5, &v, &f), 0);
	TAP_CHECK_INT(v, 6);
	TAP_CHECK_INT(f, 5);
	TAP_CHECK_INT(mbx_proto_negotiate(3, 4, 0, 5, 9, 0, &v, &f), -1);
	TAP_CHECK_INT(mbx_proto_negotiate(5, 4, 0, 1, 9, 0, &v, &f), -1);
}

static void test_silent_agent_times_out(void)
{
	struct mbx_client c;
	struct agent a;
	mbx_error *err = NULL;
	uint64_t t0 = mbx__now_us();

	agent_init(&a, PLOT_EXIT);
	client_on(&c, &a);
	TAP_CHECK_INT(mbx__client_hello(&c, mbx__now_us() + 200000u, &err), MBX_ETIMEDOUT);
	TAP_CHECK(mbx__now_us() - t0 >= 190000u);
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
}

/* ---- INIT ---- */

static void test_init_ready(void)
{
	struct mbx_client c;
	struct mbx_ready_info ready;
	struct agent a;
	mbx_error *err = NULL;
	int fds[1] = { 0 };

	agent_init(&a, PLOT_EXIT);
	put_hello(&a, MBX_PROTO_VERSION, MBX_PROTO_VERSION, 0, 9);
	client_on(&c, &a);
	TAP_CHECK_INT(mbx__client_hello(&c, DEADLINE, &err), MBX_OK);
	/* Descriptors cannot cross this transport: refused before a byte goes. */
	mbx_proto_begin(&c.wb, MBX_MSG_INIT, 0);
	mbx_proto_end(&c.wb);
	TAP_CHECK_INT(mbx__client_init_sandbox(&c, fds, 1, &ready, DEADLINE, &err), MBX_ENOTSUP);
	TAP_CHECK(says(err, "cannot pass descriptors"));
	TAP_CHECK_INT(a.inits, 0);
	TAP_CHECK_INT(c.wb.len, 0);
	mbx_error_free(err);
	err = NULL;
	/* Without them it goes, after the ACK. */
	mbx_proto_begin(&c.wb, MBX_MSG_INIT, 0);
	mbx_proto_end(&c.wb);
	TAP_CHECK_INT(mbx__client_init_sandbox(&c, NULL, 0, &ready, DEADLINE, &err), MBX_OK);
	TAP_CHECK_INT(a.inits, 1);
	TAP_CHECK(a.ack_before_init);
	TAP_CHECK_INT(ready.layers, 0x30);
	TAP_CHECK_INT(ready.skipped, 0x40);
	TAP_CHECK_INT(ready.landlock_abi, 4);
	mbx__client_shutdown(&c);
	TAP_CHECK_INT(a.shutdowns, 1);
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
}

/* The stream transport over a real descriptor: frames pass, descriptors
 * do not. */
static void test_stream_transport(void)
{
	struct mbx_client c;
	struct mbx_wbuf w;
	mbx_error *err = NULL;
	int sv[2], fds[1];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		TAP_SKIP("no socketpair");
	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_HELLO, 0);
	mbx_proto_put_u32(&w, MBX_F_VERSION, MBX_PROTO_VERSION);
	mbx_proto_put_u64(&w, MBX_F_SESSION, 77);
	mbx_proto_end(&w);
	TAP_CHECK_INT(write(sv[1], w.buf, w.len), (long long)w.len);
	mbx__client_init_stream(&c, sv[0]);
	TAP_CHECK_STR(c.tr.ops->name, "stream");
	TAP_CHECK(!c.tr.ops->can_pass_fds);
	TAP_CHECK_INT(c.fd, sv[0]);
	TAP_CHECK_INT(mbx__client_hello(&c, DEADLINE, &err), MBX_OK);
	TAP_CHECK(c.session == 77);
	fds[0] = sv[1];
	mbx_proto_begin(&c.wb, MBX_MSG_INIT, 0);
	mbx_proto_end(&c.wb);
	TAP_CHECK_INT(mbx__client_send_fds(&c, fds, 1, DEADLINE, &err), MBX_ENOTSUP);
	TAP_CHECK(says(err, "stream transport"));
	mbx_error_free(err);
	mbx__client_close(&c);
	TAP_CHECK_INT(c.fd, -1);
	/* The host's HELLO_ACK arrived, and nothing after it. */
	{
		uint8_t buf[256];
		struct mbx_frame f;
		size_t used = 0;
		ssize_t n = read(sv[1], buf, sizeof(buf));

		TAP_CHECK(n > 0);
		TAP_CHECK_INT(mbx_proto_parse(buf, n > 0 ? (size_t)n : 0, &f, &used), 1);
		TAP_CHECK_INT(f.type, MBX_MSG_HELLO_ACK);
		TAP_CHECK_INT(used, (size_t)n);
	}
	close(sv[1]);
	mbx_wbuf_release(&w);
}

/* ---- executes ---- */

static char *const argv_prog[] = { "prog", NULL };
static char *const envp_none[] = { NULL };

static int exec_once(struct agent *a, size_t read_max, mbx_result *res, struct mbx_client *c, mbx_error **err)
{
	struct mbx_exec_req req;

	memset(&req, 0, sizeof(req));
	req.argv = argv_prog;
	req.envp = envp_none;
	req.cwd = "/";
	req.timeout_ms = 1000;
	req.output_limit = 1u << 20;
	memset(res, 0, sizeof(*res));
	a->m.read_max = read_max;
	client_on(c, a);
	return mbx__client_exec(c, &req, res, err);
}

static void test_exec_output_and_exit(void)
{
	/* Whole frames, then one byte per read: the same result. */
	static const size_t cuts[] = { 0, 1, 5 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct mbx_client c;
		struct agent a;
		mbx_result res;
		mbx_error *err = NULL;

		agent_init(&a, PLOT_EXIT);
		TAP_CHECK_INT(exec_once(&a, cuts[i], &res, &c, &err), MBX_OK);
		TAP_CHECK_INT(res.exit_code, 7);
		TAP_CHECK_INT(res.cpu_us, 1234);
		TAP_CHECK_INT(res.out.len, 12);
		TAP_CHECK(res.out.len == 12 && memcmp(res.out.data, "hello\nworld\n", 12) == 0);
		TAP_CHECK(res.err.len == 4 && memcmp(res.err.data, "warn", 4) == 0);
		TAP_CHECK(!c.broken);
		TAP_CHECK_INT(a.execs, 1);
		mbx__buf_release(&res.out);
		mbx__buf_release(&res.err);
		mbx_error_free(err);
		mbx__client_close(&c);
		agent_release(&a);
	}
}

/* Spawns with a small window and takes the first event. */
static int spawn_and_take(struct agent *a, uint64_t window, struct mbx_client *c, struct mbx_event **ev, mbx_error **err)
{
	struct mbx_exec_req req;
	struct mbx_spawn_req sr;
	struct mbx_cproc *p = NULL;
	int rc;

	memset(&req, 0, sizeof(req));
	req.argv = argv_prog;
	req.envp = envp_none;
	req.cwd = "/";
	req.output_limit = UINT64_MAX;
	memset(&sr, 0, sizeof(sr));
	sr.exec = &req;
	sr.window = window;
	client_on(c, a);
	*ev = NULL;
	rc = mbx__client_spawn(c, &sr, &p, err);
	if (rc < 0)
		return rc;
	rc = mbx__client_next_event(c, p, DEADLINE, ev, err);
	if (rc == MBX_OK && !c->broken)
		mbx__client_release(c, p);
	return rc;
}

static void test_credit_enforced(void)
{
	struct mbx_client c;
	struct mbx_event *ev = NULL;
	struct agent a;
	mbx_error *err = NULL;

	/* Exactly the window: taken, and credited back. */
	agent_init(&a, PLOT_AT_WINDOW);
	TAP_CHECK_INT(spawn_and_take(&a, 4096, &c, &ev, &err), MBX_OK);
	TAP_CHECK(ev != NULL && ev->kind == MBX_EVENT_STDOUT && ev->len == 4096);
	TAP_CHECK(!c.broken);
	TAP_CHECK_INT(a.credits, 1);
	TAP_CHECK_INT(a.credit_granted, 4096);
	mbx__event_free(ev);
	mbx_error_free(err);
	err = NULL;
	mbx__client_close(&c);
	agent_release(&a);

	/* One byte more: the channel is cut, nothing of it queued. */
	agent_init(&a, PLOT_OVERRUN);
	TAP_CHECK_INT(spawn_and_take(&a, 4096, &c, &ev, &err), MBX_EPROTO);
	TAP_CHECK(ev == NULL);
	TAP_CHECK(c.broken);
	TAP_CHECK(says(err, "more output of process 1 than it was allowed"));
	TAP_CHECK(c.procs == NULL || c.procs->head == NULL);
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
}

static void test_malformed_frames(void)
{
	static const struct {
		enum plot plot;
		const char *needle;
	} cases[] = {
		{ PLOT_GARBAGE, "malformed frame" },
		{ PLOT_BAD_EVENT, "malformed" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mbx_client c;
		struct agent a;
		mbx_result res;
		mbx_error *err = NULL;
		uint64_t t0 = mbx__now_us();

		agent_init(&a, cases[i].plot);
		TAP_CHECK_INT(exec_once(&a, 0, &res, &c, &err), MBX_EPROTO);
		TAP_CHECK(says(err, cases[i].needle));
		TAP_CHECK(c.broken);
		/* Refused at once, not after a timeout. */
		TAP_CHECK(mbx__now_us() - t0 < 1000000u);
		mbx__buf_release(&res.out);
		mbx__buf_release(&res.err);
		mbx_error_free(err);
		mbx__client_close(&c);
		agent_release(&a);
	}
}

static void test_eof_mid_exec(void)
{
	struct mbx_client c;
	struct agent a;
	mbx_result res;
	mbx_error *err = NULL;

	agent_init(&a, PLOT_EOF);
	TAP_CHECK_INT(exec_once(&a, 3, &res, &c, &err), MBX_EPROTO);
	TAP_CHECK(says(err, "closed its channel"));
	TAP_CHECK(c.broken);
	/* A broken channel is not written to again (no KILL, no DETACH). */
	TAP_CHECK_INT(a.m.frames_seen, 1);
	mbx__buf_release(&res.out);
	mbx__buf_release(&res.err);
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
}

/* ---- reconnect ---- */

static int reconnect_to(struct mbx_client *c, struct agent *b, uint64_t session, mbx_error **err)
{
	struct mbx_transport t;

	put_hello(b, MBX_PROTO_VERSION, MBX_PROTO_VERSION, MBX_FEAT_RESUME, session);
	mbx__transport_mem(&t, &b->m);
	return mbx__client_reconnect(c, &t, DEADLINE, err);
}

static void test_reconnect(void)
{
	struct mbx_client c;
	struct agent a, b;
	mbx_error *err = NULL;
	mbx_result res;

	agent_init(&a, PLOT_EXIT);
	put_hello(&a, MBX_PROTO_VERSION, MBX_PROTO_VERSION, MBX_FEAT_RESUME, 1111);
	client_on(&c, &a);
	TAP_CHECK_INT(mbx__client_hello(&c, DEADLINE, &err), MBX_OK);
	c.broken = 1; /* the channel reset */

	/* The same session on the new channel: the client goes on. */
	agent_init(&b, PLOT_EXIT);
	TAP_CHECK_INT(reconnect_to(&c, &b, 1111, &err), MBX_OK);
	TAP_CHECK(a.m.host_closed);
	TAP_CHECK(!c.broken);
	TAP_CHECK_INT(b.acks, 1);
	TAP_CHECK_INT(b.inits, 0);
	{
		struct mbx_exec_req req;

		memset(&req, 0, sizeof(req));
		req.argv = argv_prog;
		req.envp = envp_none;
		req.cwd = "/";
		req.timeout_ms = 1000;
		req.output_limit = 1u << 20;
		memset(&res, 0, sizeof(res));
		TAP_CHECK_INT(mbx__client_exec(&c, &req, &res, &err), MBX_OK);
		TAP_CHECK_INT(res.exit_code, 7);
		mbx__buf_release(&res.out);
		mbx__buf_release(&res.err);
	}
	agent_release(&a);

	/* Another session: the state is gone, the client stays broken. */
	agent_init(&a, PLOT_EXIT);
	TAP_CHECK_INT(reconnect_to(&c, &a, 2222, &err), MBX_EPROTO);
	TAP_CHECK(says(err, "state is gone"));
	TAP_CHECK(c.broken);
	TAP_CHECK_INT(a.acks, 0); /* not ours: no HELLO_ACK */
	mbx_error_free(err);
	err = NULL;
	mbx__client_close(&c);
	agent_release(&a);
	agent_release(&b);

	/* An agent that did not offer MBX_FEAT_RESUME cannot be resumed. */
	agent_init(&a, PLOT_EXIT);
	put_hello(&a, MBX_PROTO_VERSION, MBX_PROTO_VERSION, 0, 3333);
	client_on(&c, &a);
	TAP_CHECK_INT(mbx__client_hello(&c, DEADLINE, &err), MBX_OK);
	agent_init(&b, PLOT_EXIT);
	TAP_CHECK_INT(reconnect_to(&c, &b, 3333, &err), MBX_ENOTSUP);
	TAP_CHECK(c.broken);
	TAP_CHECK_INT(b.acks, 0);
	mbx_error_free(err);
	mbx__client_close(&c);
	agent_release(&a);
	agent_release(&b);
}

static const struct tap_case cases[] = {
	{ "client-mem/handshake", test_handshake },
	{ "client-mem/negotiation", test_negotiation },
	{ "client-mem/silent-agent-times-out", test_silent_agent_times_out },
	{ "client-mem/init-ready", test_init_ready },
	{ "client-mem/stream-transport", test_stream_transport },
	{ "client-mem/exec-output-and-exit", test_exec_output_and_exit },
	{ "client-mem/credit-enforced", test_credit_enforced },
	{ "client-mem/malformed-frames", test_malformed_frames },
	{ "client-mem/eof-mid-exec", test_eof_mid_exec },
	{ "client-mem/reconnect", test_reconnect },
};

TAP_MAIN(cases)
