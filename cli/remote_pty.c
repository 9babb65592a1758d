/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Terminals through a running `mimobox serve` (remote.h): `shell`,
 * `exec -t` and `run -t` as a WebSocket client of
 * GET /v1/sandboxes/{id}/pty (docs/server.md, "Terminals over WebSocket").
 *
 * The handshake sends a fresh random Sec-WebSocket-Key and checks the
 * server's Sec-WebSocket-Accept; the answer's head is read with httpc.c
 * (bounded), the frames with ws.c's reader of server frames (bounded: a
 * message over PTY_MAX_MESSAGE closes the session with 1009). Our frames
 * are masked with a new key each. Our terminal is raw while the program
 * runs (term.c) and restored on every way out; without a terminal, stdin
 * goes to the program as it is and its end is the terminal's end-of-file
 * character (Ctrl-D), as the local verbs do.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "httpc.h"
#include "remote.h"
#include "serve_dl.h"
#include "term.h"
#include "ws.h"

/* Largest message the server may send us (its output comes in pieces far smaller). */
#define PTY_MAX_MESSAGE ((size_t)4 << 20)
/* Largest error answer to the handshake we keep. */
#define PTY_ANSWER_MAX ((size_t)1 << 20)
/* Frames waiting for the server beyond which our stdin is not read. */
#define PTY_OUT_HIGH ((size_t)64 << 10)
/* After our close frame, how long the server has to take it. */
#define PTY_FLUSH_MS 2000

struct pty_client {
	struct cli_remote *r;
	struct ws_reader rd;
	uint8_t *in;			/* bytes from the server: in[0, in_len) */
	size_t in_len, in_cap;
	struct cli_buf out;		/* frames for the server: out[out_off, out.len) */
	size_t out_off;
	int in_fd;			/* our stdin, until its end */
	int winch_fd;
	int broken_out;			/* our stdout went away */
	int close_sent, peer_closed, gone;
	uint16_t close_code;		/* the server's close frame's code, 0 without one */
	char close_reason[128];
	char why[256];			/* a protocol error of the server's */
	json_object *exit;		/* the exit message */
};

/* "/v1/sandboxes/NAME" and `tail`. */
static void sandbox_path(struct cli_buf *b, const char *sandbox, const char *tail)
{
	cli_buf_puts(b, "/v1/sandboxes/");
	cli_remote_urlencode(b, sandbox);
	cli_buf_puts(b, tail);
}

/* ---- before the terminal: the shell and the timeout ---- */

/* /bin/bash when the sandbox has it (a symlink too: the sandbox resolves it), else /bin/sh. */
static const char *default_shell(struct cli_remote *r, const char *sandbox)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	const char *shell = "/bin/sh";

	sandbox_path(&t, sandbox, "/stat?path=/bin/bash");
	if (!t.failed && cli_remote_call(r, 0, "GET", t.data, NULL, NULL, 0, PTY_ANSWER_MAX, &a) == 0) {
		json_object *o = a.status == 200 ? cli_remote_json_parse(a.body.data, a.body.len) : NULL;
		const char *type = cli_remote_jstr(o, "type");

		if (type && (strcmp(type, "file") == 0 || strcmp(type, "regular") == 0 || strcmp(type, "symlink") == 0))
			shell = "/bin/bash";
		if (o)
			json_object_put(o);
		cli_buf_free(&a.body);
	}
	cli_buf_free(&t);
	return shell;
}

/* The sandbox's timeout (GET /v1/sandboxes/NAME); 0, or the exit status after reporting. */
static int sandbox_timeout(struct cli_remote *r, const char *sandbox, uint64_t *timeout_ms)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	json_object *o, *v = NULL;
	int status = 0;

	sandbox_path(&t, sandbox, "");
	if (t.failed || cli_remote_call(r, 0, "GET", t.data, NULL, NULL, 0, PTY_ANSWER_MAX, &a) < 0) {
		cli_buf_free(&t);
		return CLI_EXIT_FAILED;
	}
	cli_buf_free(&t);
	if (a.status != 200) {
		status = cli_remote_report(r, 0, &a);
		cli_buf_free(&a.body);
		return status ? status : CLI_EXIT_FAILED;
	}
	o = cli_remote_json_parse(a.body.data, a.body.len);
	if (o && json_object_object_get_ex(o, "timeout_ms", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0)
		*timeout_ms = (uint64_t)json_object_get_int64(v);
	if (o)
		json_object_put(o);
	cli_buf_free(&a.body);
	return 0;
}

/* The target of the handshake: the program, its environment, the size. */
static void pty_target(struct cli_buf *t, const struct cli_remote_pty *p, char **argv, int argc, uint64_t timeout_ms)
{
	const char *term = getenv("TERM");
	uint16_t rows, cols;
	int have_term = 0;

	cli_term_size(&rows, &cols);
	sandbox_path(t, p->sandbox, "/pty");
	cli_buf_printf(t, "?rows=%u&cols=%u", (unsigned)rows, (unsigned)cols);
	for (int i = 0; i < argc; i++) {
		cli_buf_puts(t, "&cmd=");
		cli_remote_urlencode(t, argv[i]);
	}
	for (size_t i = 0; i < p->n_env; i++) {
		have_term |= strcmp(p->env[i].name, "TERM") == 0;
		cli_buf_puts(t, "&env=");
		cli_remote_urlencode(t, p->env[i].name);
		cli_buf_puts(t, "%3D");
		cli_remote_urlencode(t, p->env[i].value);
	}
	/* The program draws on our terminal: it should know which one. */
	if (!have_term && term && term[0]) {
		cli_buf_puts(t, "&env=TERM%3D");
		cli_remote_urlencode(t, term);
	}
	if (p->workdir) {
		cli_buf_puts(t, "&workdir=");
		cli_remote_urlencode(t, p->workdir);
	}
	if (timeout_ms)
		cli_buf_printf(t, "&timeout_ms=%llu", (unsigned long long)timeout_ms);
}

/* ---- the handshake ---- */

static int on_answer_body(void *ud, const uint8_t *data, size_t len)
{
	struct cli_remote_answer *a = ud;

	if (len > PTY_ANSWER_MAX - a->body.len)
		return -1;
	cli_buf_add(&a->body, data, len);
	return a->body.failed ? -1 : 0;
}

/*
 * Sends the upgrade request and reads its answer. 0 with the connection
 * upgraded (bytes that came after the head are in c->in), or the exit
 * status after reporting (a refusal in the server's words).
 */
static int handshake(struct pty_client *c, const char *target)
{
	struct cli_remote *r = c->r;
	struct cli_buf head = CLI_BUF_INIT;
	struct cli_remote_answer a;
	struct httpc_resp resp;
	uint8_t nonce[16], buf[16384];
	char key[25], accept[29], why[256], msg[768];
	int rc = 0;

	memset(&a, 0, sizeof(a));
	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
		cli_term_restore();
		cli_report(0, MBX_ESYS, "cannot get random bytes for the WebSocket key", NULL, NULL, errno);
		return CLI_EXIT_FAILED;
	}
	ws_key_make(nonce, key);
	ws_accept(key, accept);
	if (cli_remote_connect(r, why, sizeof(why)) < 0)
		goto failed;
	cli_buf_printf(&head, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n", target,
		       r->is_unix ? "localhost" : r->where + 7, key);
	if (r->token)
		cli_buf_printf(&head, "Authorization: Bearer %s\r\n", r->token);
	cli_buf_puts(&head, "\r\n");
	if (head.failed) {
		snprintf(why, sizeof(why), "out of memory");
		goto failed;
	}
	if (cli_remote_send_all(r->fd, head.data, head.len) < 0) {
		/* A kept-alive connection the server had closed: once more on a new one. */
		cli_remote_close(r);
		if (cli_remote_connect(r, why, sizeof(why)) < 0)
			goto failed;
		if (cli_remote_send_all(r->fd, head.data, head.len) < 0) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			goto failed;
		}
	}
	memset(&resp, 0, sizeof(resp));
	resp.upgrade = 1;
	resp.on_body = on_answer_body;
	resp.ud = &a;
	httpc_resp_init(&resp);
	for (;;) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
		size_t used = 0;
		int f;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			goto failed;
		}
		if (n == 0) {
			if (httpc_eof(&resp) != 1) {
				snprintf(why, sizeof(why), "%s", resp.why);
				goto failed;
			}
			break;
		}
		f = httpc_feed(&resp, buf, (size_t)n, &used);
		if (f < 0) {
			snprintf(why, sizeof(why), "%s", resp.why[0] ? resp.why : "the answer is too large");
			goto failed;
		}
		if (f == 1) {
			/* What came after the head is the first of the WebSocket's bytes. */
			if (resp.status == 101 && used < (size_t)n) {
				c->in = malloc((size_t)n - used);
				if (!c->in) {
					snprintf(why, sizeof(why), "out of memory");
					goto failed;
				}
				memcpy(c->in, buf + used, (size_t)n - used);
				c->in_len = c->in_cap = (size_t)n - used;
			}
			break;
		}
	}
	if (resp.status != 101) {
		cli_term_restore();
		a.status = resp.status;
		snprintf(a.content_type, sizeof(a.content_type), "%s", resp.content_type);
		rc = cli_remote_report(r, 0, &a);
		cli_remote_close(r);
		cli_buf_free(&a.body);
		cli_buf_free(&head);
		return rc ? rc : CLI_EXIT_FAILED;
	}
	if (!resp.upgrade_websocket || !resp.conn_upgrade || strcmp(resp.ws_accept, accept) != 0) {
		snprintf(why, sizeof(why), "the answer to the WebSocket handshake has %s",
			 !resp.upgrade_websocket ? "no `Upgrade: websocket`" : !resp.conn_upgrade ? "no `Connection: Upgrade`"
			 : "a Sec-WebSocket-Accept that does not match our key");
		goto failed;
	}
	cli_buf_free(&a.body);
	cli_buf_free(&head);
	return 0;
failed:
	cli_term_restore();
	cli_remote_close(r);
	snprintf(msg, sizeof(msg), "the mimobox server at %s: the terminal (GET %s) failed: %s", r->where, target, why);
	cli_report(0, MBX_EPROTO, msg, "check that the server runs (`mimobox serve`), or set MIMOBOX_HOST=local to "
		   "run sandboxes without it", NULL, 0);
	cli_buf_free(&a.body);
	cli_buf_free(&head);
	return CLI_EXIT_FAILED;
}

/* ---- the session ---- */

/* Queues a masked frame of ours; -1 when out of memory or random bytes. */
static int queue_frame(struct pty_client *c, uint8_t op, const void *data, size_t len)
{
	uint8_t h[14], mask[4];
	size_t n, at;

	if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
		return -1;
	n = ws_client_frame_header(h, op, len, mask);
	cli_buf_add(&c->out, h, n);
	at = c->out.len;
	cli_buf_add(&c->out, data, len);
	if (c->out.failed)
		return -1;
	ws_unmask((uint8_t *)c->out.data + at, len, mask, 0);
	return 0;
}

static void queue_close(struct pty_client *c, uint16_t code, const char *reason)
{
	uint8_t p[125];
	size_t n = 0;

	if (c->close_sent)
		return;
	c->close_sent = 1;
	if (code != WS_CLOSE_NO_STATUS)
		n = ws_close_payload(p, code, reason);
	(void)queue_frame(c, WS_OP_CLOSE, p, n);
}

/* Sends what is queued without blocking; -1 when the connection broke. */
static int flush_out(struct pty_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->r->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			c->gone = 1;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
	return 0;
}

static size_t out_pending(const struct pty_client *c)
{
	return c->out.len - c->out_off;
}

/* Our stdin: its bytes as keystrokes; at its end, the terminal's end-of-file character. */
static void forward_input(struct pty_client *c)
{
	uint8_t buf[16384];
	ssize_t n;

	do
		n = read(c->in_fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n > 0) {
		if (queue_frame(c, WS_OP_BINARY, buf, (size_t)n) < 0)
			c->in_fd = -1;
		return;
	}
	c->in_fd = -1;
	(void)queue_frame(c, WS_OP_BINARY, "\004", 1);
}

/* SIGWINCH came: the protocol's resize message with our new size. */
static void send_resize(struct pty_client *c)
{
	char msg[64];
	uint16_t rows, cols;
	int n;

	cli_term_winch_drain();
	cli_term_size(&rows, &cols);
	n = snprintf(msg, sizeof(msg), "{\"type\": \"resize\", \"rows\": %u, \"cols\": %u}", (unsigned)rows, (unsigned)cols);
	(void)queue_frame(c, WS_OP_TEXT, msg, (size_t)n);
}

/* A control message of the server's: the exit, or an error that leaves the session going. */
static void take_text(struct pty_client *c, const uint8_t *data, size_t len)
{
	json_object *o = cli_remote_json_parse((const char *)data, len);
	const char *type = cli_remote_jstr(o, "type");

	if (type && strcmp(type, "exit") == 0 && !c->exit) {
		c->exit = o;
		return;
	}
	if (type && strcmp(type, "error") == 0) {
		const char *m = cli_remote_jstr(o, "message");

		/* On a raw terminal a line feed does not go back to the line's start. */
		fprintf(stderr, "\r\nmimobox: warning: the server: %s\r\n", m ? m : "an error without a message");
	}
	if (o)
		json_object_put(o);
}

/* Takes the whole frames in c->in; 1 when the session is over (the server closed or broke the protocol). */
static int take_frames(struct pty_client *c)
{
	size_t off = 0;
	int over = 0;

	while (!over) {
		struct ws_event ev;
		size_t n = ws_reader_next(&c->rd, c->in + off, c->in_len - off, &ev);

		switch (ev.kind) {
		case WS_EV_BINARY:
			if (!c->broken_out && cli_write_all(STDOUT_FILENO, ev.data, ev.len) < 0)
				c->broken_out = 1;	/* a reader that went away: the rest is dropped */
			break;
		case WS_EV_TEXT:
			take_text(c, ev.data, ev.len);
			break;
		case WS_EV_PING:
			(void)queue_frame(c, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_CLOSE:
			c->peer_closed = 1;
			c->close_code = ev.code;
			snprintf(c->close_reason, sizeof(c->close_reason), "%.*s", (int)(ev.len < 120 ? ev.len : 120),
				 ev.data ? (const char *)ev.data : "");
			queue_close(c, ev.code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.code, NULL);
			over = 1;
			break;
		case WS_EV_ERROR:
			snprintf(c->why, sizeof(c->why), "the server broke the WebSocket protocol: %s", ev.why);
			queue_close(c, ev.code, ev.why);
			over = 1;
			break;
		default:
			break;
		}
		if (n == 0 && ev.kind == WS_EV_NONE)
			break;
		off += n;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return over;
}

/* Reads what the socket has; 1 when the session is over. */
static int read_socket(struct pty_client *c)
{
	ssize_t n;

	if (c->in_cap - c->in_len < 16384 && c->in_cap < PTY_MAX_MESSAGE + 14) {
		size_t cap = c->in_cap * 2 > 65536 ? c->in_cap * 2 : 65536;
		uint8_t *p;

		if (cap > PTY_MAX_MESSAGE + 14)
			cap = PTY_MAX_MESSAGE + 14;
		p = realloc(c->in, cap);
		if (!p) {
			snprintf(c->why, sizeof(c->why), "out of memory");
			queue_close(c, WS_CLOSE_INTERNAL, "out of memory");
			return 1;
		}
		c->in = p;
		c->in_cap = cap;
	}
	do
		n = recv(c->r->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		c->gone = 1;
		return 1;
	}
	c->in_len += (size_t)n;
	return take_frames(c);
}

/* Moves bytes between us and the program until the server closes. */
static void pump(struct pty_client *c)
{
	struct pollfd pfd[3];

	/* Bytes that came with the handshake's answer. */
	if (c->in_len && take_frames(c))
		return;
	for (;;) {
		pfd[0].fd = c->r->fd;
		pfd[0].events = POLLIN | (out_pending(c) ? POLLOUT : 0);
		pfd[1].fd = out_pending(c) < PTY_OUT_HIGH ? c->in_fd : -1;
		pfd[1].events = POLLIN;
		pfd[2].fd = c->winch_fd;
		pfd[2].events = POLLIN;
		pfd[0].revents = pfd[1].revents = pfd[2].revents = 0;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(c->why, sizeof(c->why), "poll: %s", strerror(errno));
			return;
		}
		if (pfd[2].revents)
			send_resize(c);
		if (pfd[1].revents)
			forward_input(c);
		if (out_pending(c) && flush_out(c) < 0)
			return;
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_socket(c))
			return;
	}
}

/* After the session: our close frame out, within PTY_FLUSH_MS. */
static void finish(struct pty_client *c)
{
	int waited = 0;

	if (c->gone)
		return;
	queue_close(c, WS_CLOSE_NORMAL, NULL);
	while (out_pending(c) && waited < PTY_FLUSH_MS) {
		struct pollfd pfd = { c->r->fd, POLLOUT, 0 };

		if (flush_out(c) < 0 || !out_pending(c))
			break;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		waited += 100;
	}
	(void)shutdown(c->r->fd, SHUT_WR);
}

int cli_remote_pty_run(struct cli_remote *r, const struct cli_remote_pty *p)
{
	struct pty_client c;
	struct cli_buf target = CLI_BUF_INIT;
	char *shell_argv[2] = { NULL, NULL };
	char **argv = p->argv;
	int argc = p->argc, status;
	uint64_t timeout_ms = p->timeout_ms;

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.in_fd = STDIN_FILENO;
	c.winch_fd = -1;
	ws_reader_init_client(&c.rd, PTY_MAX_MESSAGE);
	status = CLI_EXIT_FAILED;
	if (cli_remote_json_load(0) < 0)
		goto out;
	if (argc == 0) {
		shell_argv[0] = (char *)default_shell(r, p->sandbox);
		argv = shell_argv;
		argc = 1;
	}
	if (p->sandbox_timeout && !timeout_ms && (status = sandbox_timeout(r, p->sandbox, &timeout_ms)) != 0)
		goto out;
	status = CLI_EXIT_FAILED;
	pty_target(&target, p, argv, argc, timeout_ms);
	if (target.failed) {
		cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		goto out;
	}
	c.winch_fd = cli_term_watch_winch();
	if (c.winch_fd < 0) {
		cli_report(0, MBX_ESYS, "cannot watch the terminal's size", NULL, NULL, errno);
		goto out;
	}
	/* Raw from now on: keys typed while the program starts are its, not echoed here. */
	if (cli_term_raw() < 0) {
		cli_term_restore();
		cli_report(0, MBX_ESYS, "cannot put the terminal in raw mode", NULL, NULL, errno);
		goto out;
	}
	status = handshake(&c, target.data);
	if (status != 0)
		goto out;
	pump(&c);
	finish(&c);
	cli_term_restore();
	if (c.exit) {
		status = cli_remote_print_outcome(c.exit, 0, 1);
	} else {
		char msg[512];

		if (c.why[0])
			snprintf(msg, sizeof(msg), "the terminal of `%s` on the mimobox server at %s: %s", p->sandbox,
				 r->where, c.why);
		else if (c.close_code && c.close_code != WS_CLOSE_NORMAL)
			snprintf(msg, sizeof(msg), "the mimobox server at %s ended the terminal before its program "
				 "(close code %u%s%s)", r->where, (unsigned)c.close_code, c.close_reason[0] ? ": " : "",
				 c.close_reason);
		else
			snprintf(msg, sizeof(msg), "the connection to the mimobox server at %s ended before the program "
				 "on the terminal did", r->where);
		cli_report(0, c.why[0] ? MBX_EPROTO : MBX_ESYS, msg, NULL, NULL, 0);
		status = CLI_EXIT_FAILED;
	}
	cli_remote_close(r);
out:
	cli_term_restore();
	if (c.exit)
		json_object_put(c.exit);
	ws_reader_free(&c.rd);
	free(c.in);
	cli_buf_free(&c.out);
	cli_buf_free(&target);
	return status;
}

/* ---- run -t ---- */

/* How long a sandbox of `run -t` outlives a CLI that died without deleting it (its terminal keeps it meanwhile). */
#define RUN_TTY_TTL_MS 60000

int cli_remote_run_tty(struct cli_remote *r, const struct cli_sandbox_opts *so, char **argv, int argc)
{
	struct cli_buf body = CLI_BUF_INIT, t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	struct cli_remote_pty p;
	json_object *o = NULL;
	char id[64];
	int status = CLI_EXIT_FAILED;

	/* A sandbox of its own, as `create` makes it, with a ttl in case we die before deleting it. */
	cli_buf_printf(&body, "{\"ttl_ms\": %u", (unsigned)RUN_TTY_TTL_MS);
	if (cli_remote_opts_json(r, 0, so, &body) < 0)
		goto out;
	cli_buf_puts(&body, "}");
	if (body.failed) {
		cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		goto out;
	}
	if (cli_remote_json_load(0) < 0 ||
	    cli_remote_call(r, 0, "POST", "/v1/sandboxes", "application/json", body.data, body.len, PTY_ANSWER_MAX, &a) < 0)
		goto out;
	if (a.status != 201) {
		status = cli_remote_report(r, 0, &a);
		cli_buf_free(&a.body);
		goto out;
	}
	o = cli_remote_json_parse(a.body.data, a.body.len);
	cli_buf_free(&a.body);
	if (!cli_remote_jstr(o, "id") || strlen(cli_remote_jstr(o, "id")) >= sizeof(id)) {
		cli_report(0, MBX_EPROTO, "the server's answer to creating a sandbox has no `id`", NULL, NULL, 0);
		goto out;
	}
	snprintf(id, sizeof(id), "%s", cli_remote_jstr(o, "id"));
	memset(&p, 0, sizeof(p));
	p.verb = "run";
	p.sandbox = id;
	p.argv = argv;
	p.argc = argc;
	p.sandbox_timeout = 1;	/* run's --timeout, or its default, is the sandbox's */
	status = cli_remote_pty_run(r, &p);
	/* Deleted whatever happened (a failure to is said, the status stays the program's). */
	sandbox_path(&t, id, "");
	if (!t.failed && cli_remote_call(r, 0, "DELETE", t.data, NULL, NULL, 0, PTY_ANSWER_MAX, &a) == 0) {
		if (a.status / 100 != 2)
			(void)cli_remote_report(r, 0, &a);
		cli_buf_free(&a.body);
	}
out:
	if (o)
		json_object_put(o);
	cli_buf_free(&body);
	cli_buf_free(&t);
	return status;
}

/* ---- shell ---- */

enum { SH_ENV = CLI_OPT_VERB + 80, SH_WORKDIR };

int cli_remote_shell(struct cli_remote *r, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ "env", 'e', 1, SH_ENV }, { "workdir", 'w', 1, SH_WORKDIR }, CLI_HELP_OPTION, { NULL, 0, 0, 0 }
	};
	struct cli_args a = { argc, argv, 1 };
	struct cli_remote_pty p;
	struct cli_env *env = NULL, e, *grown;
	size_t n_env = 0;
	char why[CLI_WHY_MAX];
	const char *value;
	int id, status = CLI_EXIT_USAGE;

	memset(&p, 0, sizeof(p));
	p.verb = "shell";
	/* `shell [OPTIONS] NAME [OPTIONS] [--] [PROGRAM [ARG...]]`, as the local verb. */
	for (int phase = 0; phase < 2; phase++) {
		while ((id = cli_next_option(&a, opts, &value, why, sizeof(why))) != CLI_OPT_END) {
			if (id == CLI_OPT_BAD) {
				cli_usage_error(0, "shell", "%s", why);
				goto out;
			}
			if (id == SH_WORKDIR) {
				p.workdir = value;
			} else if (id == SH_ENV) {
				if (cli_parse_env(value, &e, why, sizeof(why)) < 0) {
					cli_usage_error(0, "shell", "invalid value `%s` for --env: %s", value, why);
					goto out;
				}
				grown = realloc(env, (n_env + 1) * sizeof(*grown));
				if (!grown) {
					cli_env_free(&e);
					cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
					goto out;
				}
				env = grown;
				env[n_env++] = e;
			}
		}
		if (phase == 0) {
			if (a.next >= argc) {
				cli_usage_error(0, "shell", "no sandbox name given (expected `mimobox shell NAME`)");
				goto out;
			}
			p.sandbox = argv[a.next++];
		}
	}
	p.argv = argv + a.next;
	p.argc = argc - a.next;
	if (p.argc > 0 && p.argv[0][0] == '\0') {
		cli_usage_error(0, "shell", "the program name is empty");
		goto out;
	}
	if (cli_check_name(p.sandbox, why, sizeof(why)) < 0) {
		cli_usage_error(0, "shell", "%s", why);
		goto out;
	}
	p.env = env;
	p.n_env = n_env;
	status = cli_remote_pty_run(r, &p);
out:
	for (size_t i = 0; i < n_env; i++)
		cli_env_free(&env[i]);
	free(env);
	return status;
}
