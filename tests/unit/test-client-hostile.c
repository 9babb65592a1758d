/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host client (src/backend/client.c) against a hostile agent. A thread
 * plays the agent on the other end of the socketpair the client reads: it
 * writes a scripted byte stream (malformed, out of order, oversized, lying
 * frames), then closes, holds the channel open, or floods output. Every
 * case checks that the client returns a clear error (or a sane result),
 * within a bounded time; ASan and valgrind runs of this program check that
 * nothing leaks and no byte outside a buffer is touched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/client.h"
#include "tap.h"

/* What the fake agent does once its script is written. */
enum after {
	AFTER_CLOSE,	/* close its end: the host sees EOF */
	AFTER_HOLD,	/* read and drop what the host sends until the host closes */
	AFTER_FLOOD,	/* send STDOUT frames of flood_id until the host closes */
};

struct fake_agent {
	int fd;
	pthread_t thread;
	struct mbx_wbuf script;
	enum after after;
	uint32_t flood_id;
	uint64_t flooded;	/* output bytes sent by the flood */
	int requests;		/* AFTER_CLOSE: reads this many times before it closes (the first
				 * one before it writes), so the host's requests never meet a
				 * closed socket, whatever the timing (valgrind) */
};

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* the host closed: the script ends here */
		p += k;
		n -= (size_t)k;
	}
}

static void *agent_main(void *arg)
{
	struct fake_agent *a = arg;
	uint8_t buf[4096];

	if (a->requests > 0)
		(void)!read(a->fd, buf, sizeof(buf));
	write_all(a->fd, a->script.buf, a->script.len);
	if (a->after == AFTER_CLOSE) {
		for (int i = 1; i < a->requests; i++)
			(void)!read(a->fd, buf, sizeof(buf));
	} else if (a->after == AFTER_HOLD) {
		while (read(a->fd, buf, sizeof(buf)) > 0)
			;
	} else if (a->after == AFTER_FLOOD) {
		struct mbx_wbuf w;
		static uint8_t chunk[MBX_PROTO_CHUNK];

		mbx_wbuf_init(&w);
		memset(chunk, 'A', sizeof(chunk));
		mbx_proto_begin(&w, MBX_MSG_STDOUT, a->flood_id);
		mbx_proto_put(&w, MBX_F_DATA, chunk, sizeof(chunk));
		mbx_proto_end(&w);
		for (;;) {
			ssize_t k = send(a->fd, w.buf, w.len, MSG_NOSIGNAL);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			if ((size_t)k < w.len) {
				write_all(a->fd, w.buf + k, w.len - (size_t)k);
			}
			a->flooded += sizeof(chunk);
			if (a->flooded > (256u << 20))
				break; /* a client that never stops it fails its check */
		}
		mbx_wbuf_release(&w);
	}
	close(a->fd);
	return NULL;
}

/* A client over one end of a fresh socketpair, the agent on the other. */
static void setup(struct mbx_client *c, struct fake_agent *a)
{
	int sv[2];

	memset(a, 0, sizeof(*a));
	mbx_wbuf_init(&a->script);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	mbx__client_init(c, sv[0]);
	a->fd = sv[1];
}

static void start(struct fake_agent *a, enum after after)
{
	a->after = after;
	if (pthread_create(&a->thread, NULL, agent_main, a) != 0) {
		perror("pthread_create");
		exit(1);
	}
}

/* Closes the client first (so a holding or flooding agent sees EOF), then
 * joins the agent. */
static void finish(struct mbx_client *c, struct fake_agent *a)
{
	mbx__client_close(c);
	pthread_join(a->thread, NULL);
	mbx_wbuf_release(&a->script);
}

/* ---- script building ---- */

static void frame_hello(struct mbx_wbuf *w, uint32_t version)
{
	mbx_proto_begin(w, MBX_MSG_HELLO, 0);
	mbx_proto_put_u32(w, MBX_F_VERSION, version);
	mbx_proto_put_u32(w, MBX_F_VERSION_MIN, version);
	mbx_proto_put_u64(w, MBX_F_SESSION, 0x5e55);
	mbx_proto_end(w);
}

static void frame_empty(struct mbx_wbuf *w, uint16_t type, uint32_t id)
{
	mbx_proto_begin(w, type, id);
	mbx_proto_end(w);
}

static void frame_started(struct mbx_wbuf *w, uint32_t id)
{
	mbx_proto_begin(w, MBX_MSG_STARTED, id);
	mbx_proto_put_u32(w, MBX_F_PID, 42);
	mbx_proto_end(w);
}

static void frame_exit(struct mbx_wbuf *w, uint32_t id, uint32_t code, uint32_t sig)
{
	mbx_proto_begin(w, MBX_MSG_EXIT, id);
	mbx_proto_put_u32(w, MBX_F_EXIT_CODE, code);
	if (sig)
		mbx_proto_put_u32(w, MBX_F_SIGNAL, sig);
	mbx_proto_end(w);
}

static void frame_out(struct mbx_wbuf *w, uint16_t type, uint32_t id, const void *data, size_t len)
{
	mbx_proto_begin(w, type, id);
	mbx_proto_put(w, MBX_F_DATA, data, len);
	mbx_proto_end(w);
}

static void frame_error(struct mbx_wbuf *w, uint32_t id, uint32_t code, const char *layer, const char *msg)
{
	mbx_proto_begin(w, MBX_MSG_ERROR, id);
	mbx_proto_put_u32(w, MBX_F_CODE, code);
	mbx_proto_put_u32(w, MBX_F_ERRNO, 0);
	if (layer)
		mbx_proto_put_str(w, MBX_F_LAYER, layer);
	mbx_proto_put_str(w, MBX_F_MESSAGE, msg);
	mbx_proto_end(w);
}

/* Appends raw bytes (through the writer, so the buffer grows its way). */
static void raw_bytes(struct mbx_wbuf *w, const void *data, size_t len)
{
	size_t at = w->len;

	mbx_proto_put(w, 0, data, len); /* 6 bytes of field header, then data */
	if (w->failed)
		return;
	memmove(w->buf + at, w->buf + at + 6, len);
	w->len = at + len;
}

/* A raw header: any length, type and id. */
static void raw_header(struct mbx_wbuf *w, uint32_t len, uint16_t type, uint32_t id)
{
	const uint8_t h[MBX_PROTO_HEADER] = {
		(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24),
		(uint8_t)type, (uint8_t)(type >> 8), 0, 0,
		(uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24),
	};

	raw_bytes(w, h, sizeof(h));
}

/* ---- running the client ---- */

static char *const exec_argv[] = { "prog", NULL };
static char *const exec_envp[] = { NULL };

static void exec_req(struct mbx_exec_req *req, uint64_t limit)
{
	memset(req, 0, sizeof(*req));
	req->argv = exec_argv;
	req->envp = exec_envp;
	req->cwd = "/";
	req->timeout_ms = 1000;
	req->output_limit = limit;
}

static void result_release(mbx_result *res)
{
	mbx__buf_release(&res->out);
	mbx__buf_release(&res->err);
	free(res->trap);
}

/* Runs one execute against the script; returns its code, sets *res. The
 * error message, if any, is copied into msg. */
static int run_exec(struct mbx_client *c, mbx_result *res, uint64_t limit, char *msg, size_t msglen)
{
	struct mbx_exec_req req;
	mbx_error *err = NULL;
	int rc;

	exec_req(&req, limit);
	memset(res, 0, sizeof(*res));
	rc = mbx__client_exec(c, &req, res, &err);
	msg[0] = '\0';
	if (err)
		snprintf(msg, msglen, "%s", mbx_error_message(err));
	if (rc < 0 && err == NULL) {
		printf("#   error code %d without an error object\n", rc);
		tap_failed_now = 1;
	}
	mbx_error_free(err);
	return rc;
}

/* Whether s holds one of the '|'-separated alternatives of `needles`. */
static int contains(const char *s, const char *needles)
{
	const char *n = needles;

	while (*n) {
		size_t len = strcspn(n, "|");
		char one[128];

		snprintf(one, sizeof(one), "%.*s", (int)len, n);
		if (strstr(s, one))
			return 1;
		n += len + (n[len] == '|');
	}
	printf("#   message \"%s\" lacks \"%s\"\n", s, needles);
	return 0;
}

/* What a dead agent looks like: EOF, or a reset when it left our last
 * message unread. */
#define GONE "closed its channel|read from the sandbox agent: Connection reset|has exited"

#define SECONDS(us) ((us) / 1000000u)

/* ---- HELLO ---- */

static int run_hello(void (*script)(struct mbx_wbuf *), enum after after, uint64_t wait_us, char *msg, size_t msglen)
{
	struct mbx_client c;
	struct fake_agent a;
	mbx_error *err = NULL;
	int rc;

	setup(&c, &a);
	script(&a.script);
	start(&a, after);
	rc = mbx__client_hello(&c, mbx__now_us() + wait_us, &err);
	snprintf(msg, msglen, "%s", err ? mbx_error_message(err) : "");
	mbx_error_free(err);
	finish(&c, &a);
	return rc;
}

static void s_wrong_type(struct mbx_wbuf *w) { frame_empty(w, MBX_MSG_READY, 0); }
static void s_wrong_version(struct mbx_wbuf *w) { frame_hello(w, MBX_PROTO_VERSION + 7); }
static void s_huge_length(struct mbx_wbuf *w) { raw_header(w, 0xffffffffu, MBX_MSG_HELLO, 0); }
static void s_over_max(struct mbx_wbuf *w) { raw_header(w, MBX_PROTO_MAX_BODY + 1, MBX_MSG_HELLO, 0); }
static void s_nothing(struct mbx_wbuf *w) { (void)w; }

static void s_half_header(struct mbx_wbuf *w)
{
	frame_hello(w, MBX_PROTO_VERSION);
	w->len = 5;
}

/* A VERSION field announcing more bytes than the frame has. */
static void s_lying_field(struct mbx_wbuf *w)
{
	static const uint8_t body[] = { MBX_F_VERSION, 0, 0xff, 0xff, 0, 0, 2, 0, 0, 0 };

	raw_header(w, sizeof(body), MBX_MSG_HELLO, 0);
	raw_bytes(w, body, sizeof(body));
}

static void test_hello_violations(void)
{
	char msg[512];

	TAP_CHECK_INT(run_hello(s_wrong_type, AFTER_HOLD, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(contains(msg, "did not greet"));
	TAP_CHECK_INT(run_hello(s_wrong_version, AFTER_HOLD, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(contains(msg, "protocol"));
	TAP_CHECK_INT(run_hello(s_lying_field, AFTER_HOLD, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
}

static void test_hello_huge_lengths_allocate_nothing(void)
{
	char msg[512];

	/* A 4 GiB announcement is refused from the header alone: the agent
	 * holds the channel open and the answer still comes at once. */
	uint64_t t0 = mbx__now_us();

	TAP_CHECK_INT(run_hello(s_huge_length, AFTER_HOLD, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(contains(msg, "malformed"));
	TAP_CHECK_INT(run_hello(s_over_max, AFTER_HOLD, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(SECONDS(mbx__now_us() - t0) < 4);
}

static void test_hello_truncated_and_closed(void)
{
	char msg[512];

	TAP_CHECK_INT(run_hello(s_half_header, AFTER_CLOSE, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(contains(msg, GONE));
	TAP_CHECK_INT(run_hello(s_nothing, AFTER_CLOSE, 5000000u, msg, sizeof(msg)), MBX_EPROTO);
}

static void test_hello_silent_agent_times_out(void)
{
	char msg[512];
	uint64_t t0 = mbx__now_us();

	TAP_CHECK_INT(run_hello(s_nothing, AFTER_HOLD, 300000u, msg, sizeof(msg)), MBX_ETIMEDOUT);
	TAP_CHECK(contains(msg, "in time"));
	TAP_CHECK(SECONDS(mbx__now_us() - t0) < 3);
	/* Half a header, then silence: still bounded. */
	TAP_CHECK_INT(run_hello(s_half_header, AFTER_HOLD, 300000u, msg, sizeof(msg)), MBX_ETIMEDOUT);
}

/* ---- INIT ---- */

static int run_init(void (*script)(struct mbx_wbuf *), char *msg, size_t msglen)
{
	struct mbx_client c;
	struct fake_agent a;
	struct mbx_ready_info ready;
	mbx_error *err = NULL;
	int rc;

	setup(&c, &a);
	script(&a.script);
	start(&a, AFTER_HOLD);
	mbx_proto_begin(&c.wb, MBX_MSG_INIT, 0);
	mbx_proto_end(&c.wb);
	rc = mbx__client_init_sandbox(&c, NULL, 0, &ready, mbx__now_us() + 5000000u, &err);
	snprintf(msg, msglen, "%s", err ? mbx_error_message(err) : "");
	if (rc < 0 && err == NULL)
		tap_failed_now = 1;
	mbx_error_free(err);
	finish(&c, &a);
	return rc;
}

static void s_init_error(struct mbx_wbuf *w)
{
	frame_error(w, 0, (uint32_t)MBX_ENOTSUP, "landlock", "no landlock here");
}

/* An ERROR whose CODE field is two bytes: malformed. */
static void s_init_bad_error(struct mbx_wbuf *w)
{
	mbx_proto_begin(w, MBX_MSG_ERROR, 0);
	mbx_proto_put(w, MBX_F_CODE, "\1\0", 2);
	mbx_proto_put_str(w, MBX_F_MESSAGE, "x");
	mbx_proto_end(w);
}

/* A message far longer than the decoder's buffer, without a NUL. */
static void s_init_long_error(struct mbx_wbuf *w)
{
	static char big[8192];

	memset(big, 'M', sizeof(big));
	mbx_proto_begin(w, MBX_MSG_ERROR, 0);
	mbx_proto_put_u32(w, MBX_F_CODE, (uint32_t)MBX_EPERM);
	mbx_proto_put(w, MBX_F_LAYER, big, 100);
	mbx_proto_put(w, MBX_F_MESSAGE, big, sizeof(big));
	mbx_proto_end(w);
}

static void s_init_started(struct mbx_wbuf *w) { frame_started(w, 0); }

static void test_init_answers(void)
{
	char msg[512];

	/* An ERROR is relayed as the agent's error... */
	TAP_CHECK_INT(run_init(s_init_error, msg, sizeof(msg)), MBX_ENOTSUP);
	TAP_CHECK(contains(msg, "no landlock here"));
	/* ...a malformed one is a protocol error, a long one is cut. */
	TAP_CHECK_INT(run_init(s_init_bad_error, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK_INT(run_init(s_init_long_error, msg, sizeof(msg)), MBX_EPERM);
	TAP_CHECK(strlen(msg) < 1024);
	/* Anything but READY is refused. */
	TAP_CHECK_INT(run_init(s_init_started, msg, sizeof(msg)), MBX_EPROTO);
	TAP_CHECK(contains(msg, "answered INIT"));
}

/* ---- executes (the first request of a fresh client has id 1) ---- */

static int exec_script(void (*script)(struct mbx_wbuf *), enum after after, mbx_result *res, uint64_t limit,
		       char *msg, size_t msglen, int *broken)
{
	struct mbx_client c;
	struct fake_agent a;
	int rc;

	setup(&c, &a);
	script(&a.script);
	a.requests = 1; /* the EXEC */
	start(&a, after);
	rc = run_exec(&c, res, limit, msg, msglen);
	*broken = c.broken;
	/* A finished execute leaves no process entry behind. */
	if (rc == MBX_OK)
		TAP_CHECK(c.procs == NULL);
	finish(&c, &a);
	return rc;
}

static void s_wrong_id(struct mbx_wbuf *w) { frame_started(w, 7); }

static void s_exit_before_started(struct mbx_wbuf *w)
{
	frame_exit(w, 1, 3, 0);
}

static void s_exit_then_started(struct mbx_wbuf *w)
{
	frame_out(w, MBX_MSG_STDOUT, 1, "early", 5);
	frame_exit(w, 1, 3, 0);
	frame_started(w, 1);
}

static void s_foreign_output(struct mbx_wbuf *w)
{
	frame_out(w, MBX_MSG_STDOUT, 999, "other", 5);
	frame_started(w, 1);
	frame_out(w, MBX_MSG_STDERR, 12345, "other", 5);
	frame_out(w, MBX_MSG_STDOUT, 1, "mine", 4);
	frame_exit(w, 1, 0, 0);
}

static void s_truncated_output(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	raw_header(w, 100, MBX_MSG_STDOUT, 1);
	mbx_proto_put(w, MBX_F_DATA, "0123", 4);
}

static void s_bad_signal(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_exit(w, 1, 0, 200);
}

static void s_exit_without_code(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_empty(w, MBX_MSG_EXIT, 1);
}

static void s_unexpected_type(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_hello(w, MBX_PROTO_VERSION);
}

static void s_error_out_of_turn(struct mbx_wbuf *w)
{
	frame_error(w, 42, (uint32_t)MBX_EINVAL, NULL, "for somebody else");
}

static void s_output_without_data(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_empty(w, MBX_MSG_STDOUT, 1);
}

static void s_started_then_silence(struct mbx_wbuf *w) { frame_started(w, 1); }

static void test_exec_protocol_violations(void)
{
	static const struct {
		const char *what;
		void (*script)(struct mbx_wbuf *);
		enum after after;
		const char *needle;
	} cases[] = {
		{ "wrong id", s_wrong_id, AFTER_HOLD, "answered request 7, not 1" },
		{ "exit before started, then close", s_exit_before_started, AFTER_CLOSE, GONE },
		{ "truncated output frame, then close", s_truncated_output, AFTER_CLOSE, GONE },
		{ "signal 200", s_bad_signal, AFTER_HOLD, "malformed" },
		{ "exit without a code", s_exit_without_code, AFTER_HOLD, "malformed" },
		{ "hello in the middle", s_unexpected_type, AFTER_HOLD, "unexpected message type" },
		{ "error for an unknown id", s_error_out_of_turn, AFTER_HOLD, "answered request 42" },
		{ "output without data", s_output_without_data, AFTER_HOLD, "malformed" },
		{ "started, then the agent dies", s_started_then_silence, AFTER_CLOSE, GONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mbx_result res;
		char msg[512];
		int broken = 0, rc;
		uint64_t t0 = mbx__now_us();

		rc = exec_script(cases[i].script, cases[i].after, &res, 1u << 20, msg, sizeof(msg), &broken);
		printf("# %s: %d %s\n", cases[i].what, rc, msg);
		TAP_CHECK_INT(rc, MBX_EPROTO);
		TAP_CHECK(broken);
		TAP_CHECK(contains(msg, cases[i].needle));
		TAP_CHECK(SECONDS(mbx__now_us() - t0) < 5);
		result_release(&res);
	}
}

static void test_exec_lies_that_stay_harmless(void)
{
	mbx_result res;
	char msg[512];
	int broken = 0;

	/* Output and exit before STARTED belong to the id being started:
	 * queued, then reported in order. */
	TAP_CHECK_INT(exec_script(s_exit_then_started, AFTER_HOLD, &res, 1u << 20, msg, sizeof(msg), &broken), MBX_OK);
	TAP_CHECK_INT(res.exit_code, 3);
	TAP_CHECK(res.out.len == 5 && memcmp(res.out.data, "early", 5) == 0);
	TAP_CHECK(!broken);
	result_release(&res);

	/* Output for ids nobody started is dropped, not attributed. */
	TAP_CHECK_INT(exec_script(s_foreign_output, AFTER_HOLD, &res, 1u << 20, msg, sizeof(msg), &broken), MBX_OK);
	TAP_CHECK(res.out.len == 4 && memcmp(res.out.data, "mine", 4) == 0);
	TAP_CHECK_INT(res.err.len, 0);
	TAP_CHECK_INT(res.exit_code, 0);
	result_release(&res);
}

/* 8 MiB of output for a 4 KiB limit: the result keeps 4 KiB, the rest is
 * dropped as it comes (the client credits what it takes). */
static void s_big_output(struct mbx_wbuf *w)
{
	static uint8_t chunk[MBX_PROTO_CHUNK];

	memset(chunk, 'B', sizeof(chunk));
	frame_started(w, 1);
	for (int i = 0; i < 8 * 16; i++)
		frame_out(w, (i & 1) ? MBX_MSG_STDERR : MBX_MSG_STDOUT, 1, chunk, sizeof(chunk));
	frame_exit(w, 1, 0, 0);
}

static void test_exec_output_beyond_the_limit(void)
{
	mbx_result res;
	char msg[512];
	int broken = 0;

	TAP_CHECK_INT(exec_script(s_big_output, AFTER_HOLD, &res, 4096, msg, sizeof(msg), &broken), MBX_OK);
	TAP_CHECK_INT(res.out.len, 4096);
	TAP_CHECK_INT(res.err.len, 4096);
	TAP_CHECK(res.out_truncated && res.err_truncated);
	result_release(&res);
}

/* Two exits for one process: the second is a violation. */
static void s_double_exit(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_exit(w, 1, 0, 0);
	frame_exit(w, 1, 0, 0);
	frame_out(w, MBX_MSG_OK, 2, NULL, 0);
}

/* Output after the exit. */
static void s_output_after_exit(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	frame_exit(w, 1, 0, 0);
	frame_out(w, MBX_MSG_STDOUT, 1, "late", 4);
	frame_out(w, MBX_MSG_OK, 2, NULL, 0);
}

/* Spawns process 1 with `window`, takes one event, then makes request 2
 * (a LIST) and returns its code. */
static int spawn_then_request(void (*script)(struct mbx_wbuf *), enum after after, uint64_t window,
			      uint64_t request_wait_us, char *msg, size_t msglen, uint64_t *flooded)
{
	static const char *const argv[] = { "prog", NULL };
	struct mbx_exec_req req;
	struct mbx_spawn_req sr;
	struct mbx_client c;
	struct fake_agent a;
	struct mbx_cproc *p = NULL;
	struct mbx_frame reply;
	mbx_error *err = NULL;
	int rc;

	setup(&c, &a);
	script(&a.script);
	a.flood_id = 1;
	a.requests = 2; /* the EXEC, then the LIST */
	start(&a, after);
	exec_req(&req, 1u << 20);
	req.argv = (char *const *)argv;
	memset(&sr, 0, sizeof(sr));
	sr.exec = &req;
	sr.window = window;
	rc = mbx__client_spawn(&c, &sr, &p, &err);
	TAP_CHECK_INT(rc, MBX_OK);
	if (rc == MBX_OK) {
		mbx_proto_begin(&c.wb, MBX_MSG_LIST, c.next_id++);
		mbx_proto_end(&c.wb);
		rc = mbx__client_request(&c, 2, mbx__now_us() + request_wait_us, &reply, &err);
	}
	snprintf(msg, msglen, "%s", err ? mbx_error_message(err) : "");
	mbx_error_free(err);
	finish(&c, &a);
	if (flooded)
		*flooded = a.flooded;
	return rc;
}

static void test_exit_twice_and_output_after_exit(void)
{
	char msg[512];

	TAP_CHECK_INT(spawn_then_request(s_double_exit, AFTER_HOLD, 1u << 16, 5000000u, msg, sizeof(msg), NULL),
		      MBX_EPROTO);
	TAP_CHECK(contains(msg, "malformed process event"));
	TAP_CHECK_INT(spawn_then_request(s_output_after_exit, AFTER_HOLD, 1u << 16, 5000000u, msg, sizeof(msg), NULL),
		      MBX_EPROTO);
}

/* The agent ignores its credit and floods a process nobody reads while the
 * host waits for another answer: the client stops at the window instead of
 * queueing without end. */
static void test_flood_ignoring_credit_is_refused(void)
{
	char msg[512];
	uint64_t flooded = 0, t0 = mbx__now_us();

	TAP_CHECK_INT(spawn_then_request(s_started_then_silence, AFTER_FLOOD, 1u << 16, 20000000u, msg, sizeof(msg),
					 &flooded),
		      MBX_EPROTO);
	TAP_CHECK(contains(msg, "more output"));
	TAP_CHECK(flooded < (64u << 20));
	TAP_CHECK(SECONDS(mbx__now_us() - t0) < 10);
}

/* Within the window the same unread output is fine and stays queued. */
static void s_output_within_window(struct mbx_wbuf *w)
{
	static uint8_t chunk[1u << 14];

	frame_started(w, 1);
	for (int i = 0; i < 4; i++)
		frame_out(w, MBX_MSG_STDOUT, 1, chunk, sizeof(chunk));
	frame_out(w, MBX_MSG_OK, 2, NULL, 0);
}

static void test_output_within_the_window_is_kept(void)
{
	char msg[512];

	TAP_CHECK_INT(spawn_then_request(s_output_within_window, AFTER_HOLD, 1u << 16, 5000000u, msg, sizeof(msg), NULL),
		      MBX_OK);
}

/* The agent dies in the middle of a frame of a request's answer. */
static void s_close_mid_answer(struct mbx_wbuf *w)
{
	frame_started(w, 1);
	raw_header(w, 64, MBX_MSG_OK, 2);
}

static void test_close_mid_answer(void)
{
	char msg[512];

	TAP_CHECK_INT(spawn_then_request(s_close_mid_answer, AFTER_CLOSE, 1u << 16, 5000000u, msg, sizeof(msg), NULL),
		      MBX_EPROTO);
	TAP_CHECK(contains(msg, GONE));
}

static void test_silent_request_times_out(void)
{
	char msg[512];
	uint64_t t0 = mbx__now_us();

	TAP_CHECK_INT(spawn_then_request(s_started_then_silence, AFTER_HOLD, 1u << 16, 300000u, msg, sizeof(msg), NULL),
		      MBX_ETIMEDOUT);
	TAP_CHECK(SECONDS(mbx__now_us() - t0) < 3);
}

/* ---- a hostile spare (direct executes, proto.h) ----
 *
 * The client is given a lent socket as if the agent had put a spare on it
 * (c->dsock, MBX_FEAT_DIRECT); a thread plays that spare: it answers the
 * request with a scripted status, or lies, or goes. The fake agent on the
 * channel holds (it only sees a KILL, or an EXEC when the client falls
 * back to it, which it answers from its script). */

enum spare_act {
	SPARE_STATUS,		/* ready, then the status below once the request came */
	SPARE_LONG,		/* ready, then a message longer than a status */
	SPARE_WITH_FDS,		/* ready, then the status with descriptors attached */
	SPARE_GO,		/* ready, then it closes its socket and the pipes: no status */
	SPARE_KEEP_PIPES,	/* ready, then it closes its socket but keeps the pipes' write ends */
	SPARE_NOT_READY,	/* its preparation failed: stage 5 instead of ready */
};

struct fake_spare {
	int fd;
	pthread_t thread;
	enum spare_act act;
	struct mbx_exec_status st;
	int kept[2];		/* SPARE_KEEP_PIPES: the write ends it holds */
};

static void *spare_main(void *arg)
{
	struct fake_spare *sp = arg;
	struct mbx_start_report ready = { sp->act == SPARE_NOT_READY ? 5 : 0, 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	uint8_t req[4096], big[100];
	struct iovec iov = { req, sizeof(req) };
	struct msghdr msg = { 0 };
	int fds[8];
	size_t nfd = 0;

	(void)!send(sp->fd, &ready, sizeof(ready), MSG_NOSIGNAL);
	if (sp->act == SPARE_NOT_READY) {
		close(sp->fd);
		return NULL;
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	if (recvmsg(sp->fd, &msg, MSG_CMSG_CLOEXEC) <= 0) {
		close(sp->fd);
		return NULL;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfd < 8; i++)
			memcpy(&fds[nfd++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	if (sp->act == SPARE_STATUS || sp->act == SPARE_LONG || sp->act == SPARE_WITH_FDS) {
		/* The program wrote a line, its tree is gone. */
		if (nfd >= 1)
			(void)!write(fds[0], "hi\n", 3);
		for (size_t i = 0; i < nfd; i++)
			close(fds[i]);
		nfd = 0;
	}
	if (sp->act == SPARE_STATUS) {
		(void)!send(sp->fd, &sp->st, sizeof(sp->st), MSG_NOSIGNAL);
	} else if (sp->act == SPARE_LONG) {
		memset(big, 0xff, sizeof(big));
		memcpy(big, &sp->st, sizeof(sp->st));
		(void)!send(sp->fd, big, sizeof(big), MSG_NOSIGNAL);
	} else if (sp->act == SPARE_WITH_FDS) {
		int extra[2] = { dup(sp->fd), dup(sp->fd) };
		struct iovec one = { &sp->st, sizeof(sp->st) };
		struct msghdr m = { 0 };

		memset(&ctl, 0, sizeof(ctl));
		m.msg_iov = &one;
		m.msg_iovlen = 1;
		mbx_proto_attach_fds(&m, ctl.buf, extra, 2);
		(void)!sendmsg(sp->fd, &m, MSG_NOSIGNAL);
		close(extra[0]);
		close(extra[1]);
	} else if (sp->act == SPARE_KEEP_PIPES) {
		sp->kept[0] = nfd > 0 ? fds[0] : -1;
		sp->kept[1] = nfd > 1 ? fds[1] : -1;
		nfd = 0;
	}
	for (size_t i = 0; i < nfd; i++)
		close(fds[i]);
	if (sp->act == SPARE_STATUS || sp->act == SPARE_LONG || sp->act == SPARE_WITH_FDS) {
		/* Waits as a spare would, until the client lets it go. */
		while (recv(sp->fd, req, sizeof(req), 0) > 0)
			;
	}
	close(sp->fd);
	return NULL;
}

/* Open descriptors of this process. */
static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* One execute of a client whose lent spare does `act`; the fake agent
 * answers an EXEC (the fall-back) with STARTED and EXIT 7. */
static int run_spare(enum spare_act act, const struct mbx_exec_status *st, uint64_t timeout_ms, mbx_result *res,
		     char *msg, size_t msglen)
{
	struct mbx_client c;
	struct fake_agent a;
	struct fake_spare sp = { .act = act, .kept = { -1, -1 } };
	struct mbx_exec_req req;
	mbx_error *err = NULL;
	int sv[2], rc;

	setup(&c, &a);
	frame_started(&a.script, 1);
	frame_exit(&a.script, 1, 7, 0);
	a.requests = 1;
	c.features = MBX_FEAT_DIRECT;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	c.dsock = sv[0];
	c.dsock_id = 99;
	c.next_id = 1;
	sp.fd = sv[1];
	if (st)
		sp.st = *st;
	start(&a, act == SPARE_NOT_READY ? AFTER_CLOSE : AFTER_HOLD);
	if (pthread_create(&sp.thread, NULL, spare_main, &sp) != 0) {
		perror("pthread_create");
		exit(1);
	}
	/* The ready is there before the execute, as with a spare made ahead. */
	usleep(20000);
	exec_req(&req, 1u << 16);
	req.timeout_ms = timeout_ms;
	memset(res, 0, sizeof(*res));
	rc = mbx__client_exec(&c, &req, res, &err);
	msg[0] = '\0';
	if (err)
		snprintf(msg, msglen, "%s", mbx_error_message(err));
	mbx_error_free(err);
	finish(&c, &a);
	pthread_join(sp.thread, NULL);
	if (sp.kept[0] >= 0)
		close(sp.kept[0]);
	if (sp.kept[1] >= 0)
		close(sp.kept[1]);
	return rc;
}

static void test_spare_answers(void)
{
	struct mbx_exec_status st = { 0 };
	mbx_result res;
	char msg[512];
	int before = open_fds();

	/* A plain exit: its code and its output. */
	st.wstatus = 3 << 8;
	st.flags = MBX_XS_EMPTY | MBX_XS_SPARE | MBX_XS_READY;
	st.cpu_us = 1234;
	TAP_CHECK_INT(run_spare(SPARE_STATUS, &st, 1000, &res, msg, sizeof(msg)), MBX_OK);
	TAP_CHECK_INT(res.exit_code, 3);
	TAP_CHECK(res.cpu_us == 1234 && res.out.len == 3 && memcmp(res.out.data, "hi\n", 3) == 0);
	result_release(&res);
	/* A start stage nobody knows: a system error, in words. */
	st.start_stage = 999;
	st.start_errno = 5;
	TAP_CHECK_INT(run_spare(SPARE_STATUS, &st, 1000, &res, msg, sizeof(msg)), MBX_ESYS);
	TAP_CHECK(contains(msg, "prepare the payload process"));
	result_release(&res);
	st.start_stage = 0;
	/* A message longer than a status, one with descriptors: the status
	 * part is read, the rest and the descriptors dropped. */
	TAP_CHECK_INT(run_spare(SPARE_LONG, &st, 1000, &res, msg, sizeof(msg)), MBX_OK);
	TAP_CHECK_INT(res.exit_code, 3);
	result_release(&res);
	TAP_CHECK_INT(run_spare(SPARE_WITH_FDS, &st, 1000, &res, msg, sizeof(msg)), MBX_OK);
	TAP_CHECK_INT(res.exit_code, 3);
	result_release(&res);
	/* Gone without a status: killed, as through the agent. */
	TAP_CHECK_INT(run_spare(SPARE_GO, NULL, 1000, &res, msg, sizeof(msg)), MBX_OK);
	TAP_CHECK(res.exit_code == -1 && res.signal == SIGKILL && !res.timed_out);
	result_release(&res);
	/* Not ready (its preparation failed): the agent runs the execute. */
	TAP_CHECK_INT(run_spare(SPARE_NOT_READY, NULL, 1000, &res, msg, sizeof(msg)), MBX_OK);
	TAP_CHECK_INT(res.exit_code, 7);
	result_release(&res);
	/* Nothing of it stays open in the library. */
	TAP_CHECK_INT(open_fds(), before);
}

static void test_spare_that_holds_the_pipes_times_out(void)
{
	mbx_result res;
	char msg[512];
	uint64_t t0 = mbx__now_us();

	/* Its socket gone but the output never ending: the execute's timeout
	 * sends KILL (the fake agent does nothing with it), and the host's
	 * grace after it ends the wait with an error, in bounded time. */
	TAP_CHECK_INT(run_spare(SPARE_KEEP_PIPES, NULL, 200, &res, msg, sizeof(msg)), MBX_ETIMEDOUT);
	TAP_CHECK(contains(msg, "timed-out execute"));
	TAP_CHECK(SECONDS(mbx__now_us() - t0) < 15);
	result_release(&res);
}

static const struct tap_case cases[] = {
	{ "client-hostile/spare-answers", test_spare_answers },
	{ "client-hostile/spare-holds-pipes", test_spare_that_holds_the_pipes_times_out },
	{ "client-hostile/hello-violations", test_hello_violations },
	{ "client-hostile/hello-huge-lengths", test_hello_huge_lengths_allocate_nothing },
	{ "client-hostile/hello-truncated-closed", test_hello_truncated_and_closed },
	{ "client-hostile/hello-silent-times-out", test_hello_silent_agent_times_out },
	{ "client-hostile/init-answers", test_init_answers },
	{ "client-hostile/exec-violations", test_exec_protocol_violations },
	{ "client-hostile/exec-harmless-lies", test_exec_lies_that_stay_harmless },
	{ "client-hostile/exec-output-beyond-limit", test_exec_output_beyond_the_limit },
	{ "client-hostile/exit-twice", test_exit_twice_and_output_after_exit },
	{ "client-hostile/flood-ignoring-credit", test_flood_ignoring_credit_is_refused },
	{ "client-hostile/output-within-window", test_output_within_the_window_is_kept },
	{ "client-hostile/close-mid-answer", test_close_mid_answer },
	{ "client-hostile/silent-request-times-out", test_silent_request_times_out },
};

TAP_MAIN(cases)
