/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/sandboxes/{id}/pty: a program on a terminal, over a WebSocket
 * (docs/server.md says what goes over it). The handshake and the query are
 * checked and the program is started before the answer, so that errors
 * (no such sandbox or program, a bad size) are ordinary JSON answers; the
 * 101 follows, and libmicrohttpd hands the socket over.
 *
 * Each session then runs in a thread of its own, which waits in one poll()
 * on the socket, the sandbox's event descriptor (mbx_sandbox_event_fd), the
 * entry's wake descriptor (the sandbox was destroyed) and the table's (the
 * server stops), and then takes the process's events without waiting. It
 * holds the sandbox (serve_entry_share) only around library calls, never
 * while it waits, and other calls on the sandbox run beside its own. An
 * idle connection is pinged every ping_ms, and closed when nothing came
 * within ping_ms of a ping. A session whose client goes away, stops
 * answering, breaks the protocol or closes early kills its process (with
 * everything it started), waits for it and frees it; the sandbox lives on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "serve_pty.h"
#include "ws.h"

/* Largest message a client may send (keystrokes or a control message); 1009 beyond. */
#define PTY_MAX_MESSAGE ((size_t)1 << 20)
/* Output waiting for the client beyond which no more events are taken (the program then waits). */
#define PTY_OUT_HIGH ((size_t)256 << 10)
/* After a wakeup of the event descriptor that brought us nothing (other
 * processes' events wait there), it is looked at again this much later, doubling. */
#define PTY_BACKOFF_MIN_MS 1
#define PTY_BACKOFF_MAX_MS 32
/* After our close frame, how long the client has to answer with its own. */
#define PTY_CLOSE_WAIT_MS 2000
#define PTY_KILL_WAIT_MS 5000
#define PTY_BUFFER ((uint64_t)1 << 20)
#define PTY_MAX_WORDS 256

struct pty_session {
	struct pty_session *next;	/* in the table, under its lock */
	struct serve_pty_table *t;
	struct serve_server *s;
	struct sbent *e;		/* a reference of ours */
	mbx_process *proc;		/* used while e is shared */
	int evfd;			/* ours: a dup of the sandbox's event descriptor */
	unsigned backoff_ms;		/* after wakeups that brought nothing for us */
	int woke;			/* the last wait ended with evfd readable */

	pthread_mutex_t hand_lock;	/* between the request and the upgrade */
	int handed, abandoned;

	pthread_t thread;
	int finished;			/* under the table's lock */

	int fd;				/* the upgraded socket; closed through urh */
	struct MHD_UpgradeResponseHandle *urh;
	struct ws_reader rd;
	uint8_t *in;			/* bytes from the client: in[0, in_len) */
	size_t in_len, in_cap;
	struct cli_buf out;		/* frames for the client: out[out_off, out.len) */
	size_t out_off;
	struct cli_buf keys;		/* keystrokes the sandbox did not take yet: keys[keys_off, keys.len) */
	size_t keys_off;

	int exited;			/* the process's last event came */
	int close_sent;			/* our close frame is in `out` */
	int peer_closed;		/* the client sent its close frame, or went away */
	int gone;			/* the socket broke: nothing more can be sent */
	int ping_out;			/* our ping waits for an answer since ping_ms */
	uint64_t close_deadline;
	uint64_t heard_ms;		/* when a frame from the client last came */
	uint64_t ping_ms;
};

struct serve_pty_table {
	pthread_mutex_t lock;
	struct pty_session *head;
	int stopping;
	int wake_fd;			/* an eventfd, readable once stopping */
	uint64_t ping_ms;		/* 0: no pings */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the table ---- */

struct serve_pty_table *serve_pty_table_new(uint64_t ping_ms)
{
	struct serve_pty_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->wake_fd < 0) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->ping_ms = ping_ms;
	return t;
}

static void session_free(struct pty_session *ps)
{
	if (ps->evfd >= 0)
		close(ps->evfd);
	ws_reader_free(&ps->rd);
	free(ps->in);
	cli_buf_free(&ps->out);
	cli_buf_free(&ps->keys);
	pthread_mutex_destroy(&ps->hand_lock);
	free(ps);
}

/* Joins and frees the sessions that ended (under the table's lock). */
static void reap_locked(struct serve_pty_table *t)
{
	struct pty_session **p = &t->head, *ps;

	while ((ps = *p) != NULL) {
		if (!ps->finished) {
			p = &ps->next;
			continue;
		}
		*p = ps->next;
		pthread_join(ps->thread, NULL);
		session_free(ps);
	}
}

void serve_pty_table_stop(struct serve_pty_table *t)
{
	struct pty_session *ps, *next;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = 1;
	ps = t->head;
	t->head = NULL;
	pthread_mutex_unlock(&t->lock);
	{
		uint64_t one = 1;

		(void)!write(t->wake_fd, &one, sizeof(one));
	}
	/* Each wakes up, sees `stopping`, says goodbye and ends. */
	for (; ps; ps = next) {
		next = ps->next;
		pthread_join(ps->thread, NULL);
		session_free(ps);
	}
}

void serve_pty_table_free(struct serve_pty_table *t)
{
	if (!t)
		return;
	/* Upgrades after serve_pty_table_stop() ended at once, without a thread: the list stays empty. */
	pthread_mutex_lock(&t->lock);
	reap_locked(t);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_destroy(&t->lock);
	close(t->wake_fd);
	free(t);
}

static int table_stopping(struct serve_pty_table *t)
{
	int stopping;

	pthread_mutex_lock(&t->lock);
	stopping = t->stopping;
	pthread_mutex_unlock(&t->lock);
	return stopping;
}

/* ---- the process ---- */

/*
 * Ends the process when it still runs: kills it (and everything it
 * started), waits up to PTY_KILL_WAIT_MS for its end; then frees the handle
 * and gives the sandbox's reference back.
 */
static void session_end_process(struct pty_session *ps)
{
	if (!ps->exited && serve_entry_share(ps->e) == 0) {
		uint64_t deadline = mono_ms() + PTY_KILL_WAIT_MS;

		if (mbx_process_kill(ps->proc, NULL) == MBX_OK) {
			while (mono_ms() < deadline) {
				mbx_event *ev = NULL;
				int kind;

				if (mbx_process_next_event(ps->proc, 100, &ev, NULL) != MBX_OK)
					break;
				kind = ev ? mbx_event_kind(ev) : 0;
				mbx_event_free(ev);
				if (kind == MBX_EVENT_EXIT || kind == MBX_EVENT_TIMED_OUT)
					break;
			}
		}
		serve_entry_unshare(ps->e);
	}
	serve_entry_free_process(ps->e, ps->proc);
	ps->proc = NULL;
	serve_entry_put(ps->s, ps->e);
	ps->e = NULL;
}

/* ---- frames to the client ---- */

static void send_frame(struct pty_session *ps, uint8_t opcode, const void *data, size_t len)
{
	uint8_t h[10];

	if (ps->close_sent)
		return;	/* nothing may follow a close frame */
	cli_buf_add(&ps->out, h, ws_frame_header(h, opcode, len));
	if (len)
		cli_buf_add(&ps->out, data, len);
	if (opcode == WS_OP_CLOSE) {
		ps->close_sent = 1;
		ps->close_deadline = mono_ms() + PTY_CLOSE_WAIT_MS;
	}
}

static void send_close(struct pty_session *ps, uint16_t code, const char *reason)
{
	uint8_t p[125];

	send_frame(ps, WS_OP_CLOSE, p, ws_close_payload(p, code, reason));
}

/* A text frame of JSON (drops the reference). */
static void send_json_frame(struct pty_session *ps, json_object *o)
{
	size_t len;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
							     &len);

	if (text)
		send_frame(ps, WS_OP_TEXT, text, len);
	json_object_put(o);
}

/* {"type": "error", "message": ...}: a control message the server could not act on. */
static void send_error_frame(struct pty_session *ps, const char *message)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string("error"));
	json_object_object_add(o, "message", json_object_new_string(message));
	send_json_frame(ps, o);
}

/* ---- messages from the client ---- */

/* Passes keystrokes on as far as the sandbox's stdin window goes; the rest waits in ps->keys. */
static void flush_keys(struct pty_session *ps)
{
	size_t n = 0;
	int rc;

	if (ps->exited)
		ps->keys_off = ps->keys.len = 0;	/* nobody reads them any more */
	if (ps->keys_off >= ps->keys.len)
		return;
	if (serve_entry_share(ps->e) < 0)
		return;	/* the loop finds out and ends */
	rc = mbx_process_write_stdin_some(ps->proc, ps->keys.data + ps->keys_off, ps->keys.len - ps->keys_off, &n, NULL);
	serve_entry_unshare(ps->e);
	if (rc != MBX_OK)
		n = ps->keys.len - ps->keys_off;	/* it ended: its exit is on the way; the keys are dropped */
	ps->keys_off += n;
	if (n > 0)
		ps->backoff_ms = 0;	/* an echo may come at once */
	if (ps->keys_off == ps->keys.len)
		ps->keys_off = ps->keys.len = 0;
}

/* 1 (and an error frame) when o has a field not in `known`. */
static int unknown_field(struct pty_session *ps, json_object *o, const char *type, const char *const *known)
{
	char text[256];

	json_object_object_foreach(o, key, val) {
		size_t i;

		(void)val;
		for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (!known[i]) {
			const char *pick = cli_closest(key, known);

			snprintf(text, sizeof(text), "%s: unknown field `%.64s`%s%s%s", type, key,
				 pick ? " (did you mean `" : "", pick ? pick : "", pick ? "`?)" : "");
			send_error_frame(ps, text);
			return 1;
		}
	}
	return 0;
}

static void control_message(struct pty_session *ps, const uint8_t *data, size_t len)
{
	static const char *const resize_keys[] = { "type", "rows", "cols", NULL };
	static const char *const signal_keys[] = { "type", "signal", NULL };
	char why[CLI_WHY_MAX], text[CLI_WHY_MAX + 64];
	struct json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *v;
	const char *type;
	mbx_error *err = NULL;
	int rc = MBX_OK;

	if (tok) {
		o = json_tokener_parse_ex(tok, (const char *)data, (int)len);
		if (o && json_tokener_get_parse_end(tok) != len) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "type", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		send_error_frame(ps, "a text message must be a JSON object with a `type`: "
				     "{\"type\":\"resize\",\"rows\":R,\"cols\":C} or {\"type\":\"signal\",\"signal\":\"INT\"}");
		json_object_put(o);
		return;
	}
	type = json_object_get_string(v);
	if (strcmp(type, "resize") == 0) {
		json_object *r = NULL, *c = NULL;
		int64_t rows, cols;

		json_object_object_get_ex(o, "rows", &r);
		json_object_object_get_ex(o, "cols", &c);
		if (!r || !c || !json_object_is_type(r, json_type_int) || !json_object_is_type(c, json_type_int) ||
		    (rows = json_object_get_int64(r)) < 1 || rows > 65535 || (cols = json_object_get_int64(c)) < 1 ||
		    cols > 65535) {
			send_error_frame(ps, "resize: `rows` and `cols` must be integers from 1 to 65535");
			goto out;
		}
		if (unknown_field(ps, o, "resize", resize_keys))
			goto out;
		if (serve_entry_share(ps->e) == 0) {
			rc = mbx_process_resize(ps->proc, (uint16_t)rows, (uint16_t)cols, &err);
			serve_entry_unshare(ps->e);
		}
		if (rc != MBX_OK && rc != MBX_ESTATE) {
			snprintf(text, sizeof(text), "resize: %s", err ? mbx_error_message(err) : mbx_error_code_name(rc));
			send_error_frame(ps, text);
		}
	} else if (strcmp(type, "signal") == 0) {
		int sig = 0;

		if (unknown_field(ps, o, "signal", signal_keys))
			goto out;
		if (!json_object_object_get_ex(o, "signal", &v) || !v ||
		    !(json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int)) ||
		    cli_parse_signal(json_object_get_string(v), &sig, why, sizeof(why)) < 0) {
			send_error_frame(ps, "signal: `signal` must be a signal's name (\"INT\", \"TERM\", \"HUP\"...) "
					     "or number");
			goto out;
		}
		if (serve_entry_share(ps->e) == 0) {
			rc = mbx_process_signal(ps->proc, sig, &err);
			serve_entry_unshare(ps->e);
		}
		if (rc != MBX_OK && rc != MBX_ESTATE) {
			snprintf(text, sizeof(text), "signal: %s", err ? mbx_error_message(err) : mbx_error_code_name(rc));
			send_error_frame(ps, text);
		}
	} else {
		snprintf(text, sizeof(text), "unknown control message type `%.64s` (expected resize or signal)", type);
		send_error_frame(ps, text);
	}
out:
	mbx_error_free(err);
	json_object_put(o);
}

/* Takes the whole frames read so far; stops at keystrokes the sandbox has no room for yet. */
static void take_frames(struct pty_session *ps)
{
	struct ws_event ev;
	size_t used = 0, n;

	if (ps->rd.failed) {
		/* After a protocol error, what comes is dropped until the client
		 * closes (or the close wait ends): closing a socket with unread
		 * bytes would reset it, and our close frame might be lost. */
		ps->in_len = 0;
		return;
	}
	while (!ps->peer_closed && ps->keys_off == ps->keys.len) {
		n = ws_reader_next(&ps->rd, ps->in + used, ps->in_len - used, &ev);
		if (ev.kind == WS_EV_ERROR) {
			/* The close code says what was wrong. */
			send_close(ps, ev.code, ev.why);
			ps->in_len = 0;
			return;
		}
		if (n == 0)
			break;
		switch (ev.kind) {
		case WS_EV_BINARY:
			if (!ps->close_sent && ev.len) {
				cli_buf_add(&ps->keys, ev.data, ev.len);
				flush_keys(ps);
			}
			break;
		case WS_EV_TEXT:
			if (!ps->close_sent)
				control_message(ps, ev.data, ev.len);
			break;
		case WS_EV_PING:
			send_frame(ps, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_CLOSE:
			/* The client ends the session: the answer echoes its code. */
			send_close(ps, ev.code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.code, NULL);
			ps->peer_closed = 1;
			break;
		case WS_EV_PONG:
		case WS_EV_NONE:
		case WS_EV_ERROR:
		default:
			break;
		}
		used += n;
		ps->heard_ms = mono_ms();	/* any frame answers a ping */
		ps->ping_out = 0;
	}
	if (used) {
		memmove(ps->in, ps->in + used, ps->in_len - used);
		ps->in_len -= used;
	}
}

/* ---- the process's events ---- */

/* Takes the events that came, without waiting, while the client keeps up; 1 when there was one. */
static int take_events(struct pty_session *ps)
{
	int i, rc = MBX_OK, any = 0;

	if (ps->exited)
		return 0;
	if (serve_entry_share(ps->e) < 0) {
		send_close(ps, WS_CLOSE_GOING_AWAY, "the sandbox was destroyed");
		ps->exited = 1;	/* with its sandbox */
		return 0;
	}
	for (i = 0; i < 64 && ps->out.len - ps->out_off < PTY_OUT_HIGH; i++) {
		mbx_event *ev = NULL;
		mbx_event_kind_t kind;
		mbx_error *err = NULL;

		rc = mbx_process_next_event(ps->proc, 0, &ev, &err);
		if (rc != MBX_OK) {
			char text[CLI_WHY_MAX + 32];

			snprintf(text, sizeof(text), "process: %s", err ? mbx_error_message(err) : mbx_error_code_name(rc));
			mbx_error_free(err);
			send_error_frame(ps, text);
			send_close(ps, WS_CLOSE_INTERNAL, "the process's events broke");
			ps->exited = 1;
			break;
		}
		mbx_error_free(err);
		if (!ev)
			break;
		any = 1;
		kind = mbx_event_kind(ev);
		if (kind == MBX_EVENT_STDOUT || kind == MBX_EVENT_STDERR) {
			size_t len;
			const uint8_t *d = mbx_event_data(ev, &len);

			if (d && len)
				send_frame(ps, WS_OP_BINARY, d, len);
		} else if (kind == MBX_EVENT_EXIT || kind == MBX_EVENT_TIMED_OUT) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "type", json_object_new_string("exit"));
			json_object_object_add(o, "exit_code",
					       json_object_new_int(kind == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -1));
			json_object_object_add(o, "signal", json_object_new_int(mbx_event_signal(ev)));
			json_object_object_add(o, "timed_out", json_object_new_boolean(kind == MBX_EVENT_TIMED_OUT));
			json_object_object_add(o, "elapsed_ms",
					       json_object_new_int64((int64_t)(mbx_event_elapsed_us(ev) / 1000)));
			send_json_frame(ps, o);
			send_close(ps, WS_CLOSE_NORMAL, NULL);
			ps->exited = 1;
			mbx_event_free(ev);
			break;
		}
		mbx_event_free(ev);
	}
	serve_entry_unshare(ps->e);
	return any;
}

/* ---- the socket ---- */

static void read_socket(struct pty_session *ps)
{
	ssize_t n;

	if (ps->in_cap - ps->in_len < 16384 && ps->in_cap < PTY_MAX_MESSAGE + 14) {
		size_t cap = ps->in_cap * 2 > 65536 ? ps->in_cap * 2 : 65536;
		uint8_t *p;

		if (cap > PTY_MAX_MESSAGE + 14)
			cap = PTY_MAX_MESSAGE + 14;
		p = realloc(ps->in, cap);
		if (!p) {
			send_close(ps, WS_CLOSE_INTERNAL, "out of memory");
			ps->peer_closed = 1;
			return;
		}
		ps->in = p;
		ps->in_cap = cap;
	}
	if (ps->in_len == ps->in_cap)
		return;	/* a whole frame is in: take_frames() takes it */
	do
		n = recv(ps->fd, ps->in + ps->in_len, ps->in_cap - ps->in_len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* The client went away (or half-closed: it will not send its close frame). */
		ps->peer_closed = 1;
		if (!ps->close_sent)
			ps->gone = 1;
		return;
	}
	ps->in_len += (size_t)n;
	ps->heard_ms = mono_ms();	/* any bytes answer a ping, a frame's part too */
	ps->ping_out = 0;
}

static void write_socket(struct pty_session *ps)
{
	ssize_t n;

	while (ps->out_off < ps->out.len) {
		n = send(ps->fd, ps->out.data + ps->out_off, ps->out.len - ps->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			ps->gone = 1;
			ps->peer_closed = 1;
			return;
		}
		ps->out_off += (size_t)n;
	}
	ps->out_off = ps->out.len = 0;
}

/* ---- the session's thread ---- */

/* How long the session may wait from now: until a close or ping deadline, else for ever (-1). */
static int wait_ms(struct pty_session *ps, uint64_t now)
{
	uint64_t until = UINT64_MAX;

	if (ps->close_sent)
		until = ps->close_deadline;
	else if (ps->ping_ms && !ps->peer_closed)
		until = ps->heard_ms + ps->ping_ms * (ps->ping_out ? 2 : 1);
	if (until == UINT64_MAX)
		return -1;
	return until <= now ? 0 : until - now > INT32_MAX ? INT32_MAX : (int)(until - now);
}

/* Pings a client from which nothing came for ping_ms; 1 when nothing came
 * for ping_ms after the ping either: the session ends. */
static int ping_check(struct pty_session *ps, uint64_t now)
{
	if (!ps->ping_ms || ps->close_sent || ps->peer_closed)
		return 0;
	if (ps->keys_off < ps->keys.len) {
		/* We are the ones not reading (the sandbox takes no keystrokes yet). */
		ps->heard_ms = now;
		ps->ping_out = 0;
		return 0;
	}
	if (ps->ping_out && now >= ps->heard_ms + 2 * ps->ping_ms) {
		/* Said, though it may never arrive: the client no longer reads. */
		send_close(ps, WS_CLOSE_GOING_AWAY, "no answer to ping");
		write_socket(ps);
		return 1;
	}
	if (!ps->ping_out && now >= ps->heard_ms + ps->ping_ms) {
		send_frame(ps, WS_OP_PING, "mimobox", 7);
		ps->ping_out = 1;
	}
	return 0;
}

static void *session_main(void *arg)
{
	struct pty_session *ps = arg;
	struct pollfd pfd[4];
	int stop_seen = 0, entry_wake = serve_entry_wake_fd(ps->e);

	ps->heard_ms = mono_ms();
	ps->ping_ms = ps->t->ping_ms;
	for (;;) {
		uint64_t now;
		nfds_t n = 1;
		int ev_slot = -1, pause = 0;

		if (!stop_seen && table_stopping(ps->t)) {
			stop_seen = 1;
			send_close(ps, WS_CLOSE_GOING_AWAY, "the server is shutting down");
			ps->close_deadline = mono_ms() + 200;
		}
		if (ps->out.failed) {
			ps->gone = 1;	/* out of memory: nothing sensible can be sent */
			break;
		}
		take_frames(ps);
		flush_keys(ps);
		if (take_events(ps))
			ps->backoff_ms = 0;
		else if (ps->woke)	/* readable, yet nothing for us */
			pause = (int)(ps->backoff_ms = ps->backoff_ms ? ps->backoff_ms * 2 : PTY_BACKOFF_MIN_MS);
		if (ps->backoff_ms > PTY_BACKOFF_MAX_MS)
			pause = (int)(ps->backoff_ms = PTY_BACKOFF_MAX_MS);
		if (ps->out_off < ps->out.len)
			write_socket(ps);
		now = mono_ms();
		if (ping_check(ps, now)) {
			ps->gone = 1;
			break;
		}
		if (ps->gone)
			break;
		if (ps->close_sent && ps->out_off == ps->out.len &&
		    (ps->peer_closed || now >= ps->close_deadline))
			break;
		pfd[0] = (struct pollfd){ .fd = ps->fd };
		/* Read while the sandbox takes keystrokes and a frame can still come. */
		if (!ps->peer_closed && ps->keys_off == ps->keys.len)
			pfd[0].events |= POLLIN;
		if (ps->out_off < ps->out.len)
			pfd[0].events |= POLLOUT;
		/* Events are taken while the client keeps up (and credit lets keys in). */
		if (!ps->exited && !pause && ps->out.len - ps->out_off < PTY_OUT_HIGH) {
			ev_slot = (int)n;
			pfd[n++] = (struct pollfd){ .fd = ps->evfd, .events = POLLIN };
		}
		if (!stop_seen)
			pfd[n++] = (struct pollfd){ .fd = ps->t->wake_fd, .events = POLLIN };
		if (entry_wake >= 0 && !ps->exited)
			pfd[n++] = (struct pollfd){ .fd = entry_wake, .events = POLLIN };
		{
			int timeout = wait_ms(ps, now);

			if (pause && (timeout < 0 || pause < timeout))
				timeout = pause;
			if (poll(pfd, n, timeout) < 0 && errno != EINTR)
				break;
		}
		ps->woke = ev_slot >= 0 && pfd[ev_slot].revents != 0;
		if (!ps->woke && !pause)
			ps->backoff_ms = 0;
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			read_socket(ps);
			take_frames(ps);	/* keystrokes in before the events are taken */
		}
		if (pfd[0].revents & POLLOUT)
			write_socket(ps);
		if (ps->gone)
			break;
	}
	if (!ps->exited)
		serve_count_disconnect(ps->s);
	session_end_process(ps);
	MHD_upgrade_action(ps->urh, MHD_UPGRADE_ACTION_CLOSE);
	pthread_mutex_lock(&ps->t->lock);
	ps->finished = 1;
	pthread_mutex_unlock(&ps->t->lock);
	return NULL;
}

/* libmicrohttpd sent the 101: the socket is ours (closed through urh). */
static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in, size_t extra_in_size,
		       MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct pty_session *ps = cls;
	struct serve_pty_table *t = ps->t;
	int flags;

	(void)c;
	(void)con_cls;
	pthread_mutex_lock(&ps->hand_lock);
	ps->handed = 1;
	pthread_mutex_unlock(&ps->hand_lock);
	ps->fd = sock;
	ps->urh = urh;
	flags = fcntl(sock, F_GETFL);
	if (flags >= 0)
		fcntl(sock, F_SETFL, flags | O_NONBLOCK);
	if (extra_in_size > 0) {
		ps->in = malloc(extra_in_size);
		if (ps->in) {
			memcpy(ps->in, extra_in, extra_in_size);
			ps->in_len = ps->in_cap = extra_in_size;
		}
	}
	pthread_mutex_lock(&t->lock);
	reap_locked(t);
	if ((extra_in_size > 0 && !ps->in) || t->stopping ||
	    pthread_create(&ps->thread, NULL, session_main, ps) != 0) {
		pthread_mutex_unlock(&t->lock);
		/* No thread for it: it ends here, its process with it. */
		serve_count_disconnect(ps->s);
		session_end_process(ps);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		session_free(ps);
		return;
	}
	ps->next = t->head;
	t->head = ps;
	pthread_mutex_unlock(&t->lock);
}

void serve_pty_request_done(void *pty)
{
	struct pty_session *ps = pty;
	int handed;

	pthread_mutex_lock(&ps->hand_lock);
	handed = ps->handed;
	ps->abandoned = !handed;
	pthread_mutex_unlock(&ps->hand_lock);
	if (handed)
		return;
	/* The connection ended before the upgrade: on_upgrade() never runs. */
	serve_count_disconnect(ps->s);
	session_end_process(ps);
	session_free(ps);
}

/* ---- the request ---- */

struct pty_query {
	const char *argv[PTY_MAX_WORDS + 1];
	size_t argc;
	const char *env[PTY_MAX_WORDS];	/* NAME=VALUE */
	size_t n_env;
	const char *workdir;
	uint64_t rows, cols, timeout_ms;
	char why[CLI_WHY_MAX];
	int bad;
};

static int query_uint(struct pty_query *q, const char *key, const char *value, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = value && *value >= '0' && *value <= '9' ? strtoull(value, &end, 10) : 0;
	if (!value || *value < '0' || *value > '9' || errno || *end || v < 1 || v > max) {
		snprintf(q->why, sizeof(q->why), "`%s` must be an integer from 1 to %" PRIu64, key, max);
		return -1;
	}
	*out = v;
	return 0;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	static const char *const keys[] = { "rows", "cols", "cmd", "env", "workdir", "timeout_ms", NULL };
	struct pty_query *q = cls;

	(void)kind;
	if (strcmp(key, "cmd") == 0) {
		if (q->argc == PTY_MAX_WORDS) {
			snprintf(q->why, sizeof(q->why), "more than %d `cmd` words", PTY_MAX_WORDS);
			goto bad;
		}
		q->argv[q->argc++] = value ? value : "";
	} else if (strcmp(key, "env") == 0) {
		if (!value || !strchr(value, '=') || value[0] == '=') {
			snprintf(q->why, sizeof(q->why), "`env` must be NAME=VALUE, not `%.64s`", value ? value : "");
			goto bad;
		}
		if (q->n_env == PTY_MAX_WORDS) {
			snprintf(q->why, sizeof(q->why), "more than %d `env` variables", PTY_MAX_WORDS);
			goto bad;
		}
		q->env[q->n_env++] = value;
	} else if (strcmp(key, "workdir") == 0) {
		if (!value || !*value) {
			snprintf(q->why, sizeof(q->why), "`workdir` must not be empty");
			goto bad;
		}
		q->workdir = value;
	} else if (strcmp(key, "rows") == 0) {
		if (query_uint(q, key, value, 65535, &q->rows) < 0)
			goto bad;
	} else if (strcmp(key, "cols") == 0) {
		if (query_uint(q, key, value, 65535, &q->cols) < 0)
			goto bad;
	} else if (strcmp(key, "timeout_ms") == 0) {
		if (query_uint(q, key, value, (uint64_t)1 << 40, &q->timeout_ms) < 0)
			goto bad;
	} else {
		const char *pick = cli_closest(key, keys);

		snprintf(q->why, sizeof(q->why), "unknown query parameter `%.64s`%s%s%s", key, pick ? " (did you mean `" : "",
			 pick ? pick : "", pick ? "`?)" : "");
		goto bad;
	}
	return MHD_YES;
bad:
	q->bad = 1;
	return MHD_NO;
}

static enum MHD_Result send_handshake_error(struct MHD_Connection *c, struct req *r, const char *why)
{
	return serve_send_error(c, r, 400, "invalid_argument", why,
				"connect with a WebSocket client (RFC 6455, version 13); see docs/server.md");
}

/* Starts argv on a terminal in e's sandbox. */
static int spawn(struct sbent *e, const struct pty_query *q, mbx_process **out, const char **what, mbx_error **err)
{
	mbx_spawn_options *so = NULL;
	int rc, has_term = 0;
	size_t i;

	*what = "spawn options";
	if ((rc = mbx_spawn_options_new(&so, err)) != MBX_OK)
		return rc;
	*what = "terminal size";
	if ((rc = mbx_spawn_options_set_pty(so, (uint16_t)q->rows, (uint16_t)q->cols, err)) != MBX_OK)
		goto out;
	for (i = 0; i < q->n_env; i++) {
		const char *eq = strchr(q->env[i], '=');
		size_t n = (size_t)(eq - q->env[i]);
		char *name = strndup(q->env[i], n);

		*what = "`env`";
		if (!name) {
			rc = MBX_ENOMEM;
			goto out;
		}
		has_term |= strcmp(name, "TERM") == 0;
		rc = mbx_spawn_options_set_env(so, name, eq + 1, err);
		free(name);
		if (rc != MBX_OK)
			goto out;
	}
	/* What a browser's terminal (xterm.js) emulates, unless the client says otherwise. */
	if (!has_term && (rc = mbx_spawn_options_set_env(so, "TERM", "xterm-256color", err)) != MBX_OK)
		goto out;
	*what = "`workdir`";
	if (q->workdir && (rc = mbx_spawn_options_set_workdir(so, q->workdir, err)) != MBX_OK)
		goto out;
	/* A terminal has no timeout unless one is asked for (like `mimobox shell`). */
	mbx_spawn_options_set_timeout_ms(so, q->timeout_ms);
	*what = "buffer";
	if ((rc = mbx_spawn_options_set_buffer(so, PTY_BUFFER, err)) != MBX_OK)
		goto out;
	*what = "start the program";
	if (serve_entry_share(e) < 0) {
		rc = MBX_ENOTFOUND;
		goto out;
	}
	rc = mbx_sandbox_spawn(serve_entry_sandbox(e), q->argv, so, out, err);
	serve_entry_unshare(e);
out:
	mbx_spawn_options_free(so);
	return rc;
}

enum MHD_Result serve_pty_handle(struct serve_server *s, struct serve_pty_table *t, int upgrade_ok,
				 struct MHD_Connection *c, struct req *r)
{
	const char *upgrade = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
	const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
	const char *version = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	struct pty_query *q;
	struct pty_session *ps;
	struct MHD_Response *resp;
	mbx_process *proc = NULL;
	mbx_error *err = NULL;
	const char *what;
	struct sbent *e;
	char accept[29];
	int rc, evfd = -1;

	if (!t)
		return serve_send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	if (!upgrade_ok)
		return serve_send_error(c, r, 501, "unsupported", "this libmicrohttpd cannot upgrade connections to WebSocket",
					"install Debian's libmicrohttpd12 (0.9.75 or later)");
	if (!ws_header_has_token(upgrade, "websocket") || !ws_header_has_token(conn, "upgrade"))
		return send_handshake_error(c, r, "this endpoint is a WebSocket: the request needs `Upgrade: websocket` "
						  "and `Connection: Upgrade`");
	if (!version || strcmp(version, "13") != 0) {
		json_object *o = json_object_new_object(), *er = json_object_new_object();
		const char *text;

		json_object_object_add(er, "code", json_object_new_string("invalid_argument"));
		json_object_object_add(er, "message", json_object_new_string(
			"`Sec-WebSocket-Version` must be 13 (RFC 6455), the only version served"));
		json_object_object_add(er, "suggestion", json_object_new_string("send Sec-WebSocket-Version: 13"));
		json_object_object_add(o, "error", er);
		text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
		json_object_put(o);
		if (resp) {
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
			MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
		}
		return serve_queue(c, r, 400, resp);
	}
	if (!ws_key_valid(key))
		return send_handshake_error(c, r, "`Sec-WebSocket-Key` must be the base64 of 16 random bytes");
	q = calloc(1, sizeof(*q));
	if (!q)
		return serve_send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	q->rows = 24;
	q->cols = 80;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, q);
	if (!q->bad && q->argc > 0 && q->argv[0][0] == '\0') {
		snprintf(q->why, sizeof(q->why), "the first `cmd` (the program) must not be empty");
		q->bad = 1;
	}
	if (q->bad) {
		enum MHD_Result ret = serve_send_error(c, r, 400, "invalid_argument", q->why,
						       "see docs/server.md for the query parameters of /pty");

		free(q);
		return ret;
	}
	if (q->argc == 0)
		q->argv[q->argc++] = "/bin/sh";
	q->argv[q->argc] = NULL;
	if (serve_stopping(s)) {
		free(q);
		return serve_send_error(c, r, 503, "unavailable", "the server is shutting down", "try again once it runs");
	}
	e = serve_entry_get(s, r);
	if (!e) {
		char why[128];

		free(q);
		snprintf(why, sizeof(why), "no sandbox `%s` on this server", serve_req_id(r));
		return serve_send_error(c, r, 404, "not_found", why, "list the sandboxes with GET /v1/sandboxes");
	}
	what = "the event descriptor";
	if ((evfd = serve_entry_event_fd(e, &err)) < 0)
		rc = err ? mbx_error_code(err) : MBX_ENOTFOUND;
	else
		rc = spawn(e, q, &proc, &what, &err);
	free(q);
	if (rc != MBX_OK) {
		if (evfd >= 0)
			close(evfd);
		serve_entry_put(s, e);
		return serve_send_mbx_error(c, r, rc, err, what);
	}
	serve_count_execute(s);
	ps = calloc(1, sizeof(*ps));
	resp = ps ? MHD_create_response_for_upgrade(on_upgrade, ps) : NULL;
	if (!resp) {
		free(ps);
		if (serve_entry_share(e) == 0) {
			mbx_process_kill(proc, NULL);
			serve_entry_unshare(e);
		}
		serve_entry_free_process(e, proc);
		close(evfd);
		serve_entry_put(s, e);
		return serve_send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	ps->t = t;
	ps->s = s;
	ps->e = e;	/* our reference moves to the session */
	ps->proc = proc;
	ps->evfd = evfd;	/* and the descriptor */
	ps->fd = -1;
	pthread_mutex_init(&ps->hand_lock, NULL);
	ws_reader_init(&ps->rd, PTY_MAX_MESSAGE);
	ws_accept(key, accept);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	/* From here the request's end frees the session when the upgrade does not happen. */
	serve_req_set_pty(r, ps);
	return serve_queue(c, r, 101, resp);
}
