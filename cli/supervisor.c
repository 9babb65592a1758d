/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor of a named sandbox: the daemon `mimobox create` leaves
 * behind. It owns the library handle and serves the CLI's requests on the
 * sandbox's registry socket (the protocol is in wire.h).
 *
 * A sandbox handle is used by one thread at a time, so everything runs on
 * one thread, but several clients are served at once: an open `shell` must
 * not lock `ps`, `cat` or another `exec` out. The loop polls the client
 * sockets and, while processes run, takes their events; the library gives
 * no descriptor to poll for events, so while a process runs the loop
 * alternates a short wait for its events (SV_SLICE_MS) with a look at the
 * sockets. Requests that are one library call (stat, list, one piece of a
 * write) run to completion in between. Output goes to each client through
 * its own queue; a process whose client reads slowly is not asked for more
 * events, so the library's flow control stops the process instead of our
 * memory growing. Reads are spooled to an unnamed temporary file first, so
 * a slow reader never holds the sandbox. An HTTP request is one blocking
 * library call: the other clients wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

static int sig_pipe[2] = { -1, -1 };

static void on_stop_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	(void)!write(sig_pipe[1], &c, 1);
	errno = saved;
}

static void on_ignored_signal(int sig)
{
	(void)sig;
}

int64_t sv_now_ms(void)
{
	return wire_now_ms();
}

/* ---- sending ---- */

size_t sv_queued(const struct sv_client *c)
{
	return c->out.len - c->out_off;
}

int sv_attached(const struct sv_client *c)
{
	return c->conn.fd >= 0;
}

/* Finishes a frame begun in c->out; a frame that cannot be built ends the client. */
void sv_end_frame(struct sv_client *c, size_t start)
{
	if (wire_end(&c->out, start) < 0)
		c->closing = 1;
}

void sv_send_simple(struct sv_client *c, uint8_t type)
{
	if (sv_attached(c))
		sv_end_frame(c, wire_begin(&c->out, type));
}

/*
 * Replaces every `from` in `s` by `to` (the temporary name of a write by
 * the name the user gave). Returns a new string, or NULL.
 */
static char *replace_all(const char *s, const char *from, const char *to)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t flen = strlen(from);
	const char *hit;

	while (flen && (hit = strstr(s, from)) != NULL) {
		cli_buf_add(&b, s, (size_t)(hit - s));
		cli_buf_puts(&b, to);
		s = hit + flen;
	}
	cli_buf_puts(&b, s);
	if (b.failed) {
		cli_buf_free(&b);
		return NULL;
	}
	return b.data;
}

void sv_send_error_fields(struct sv_client *c, int code, int errnum, const char *message,
			      const char *suggestion, const char *layer)
{
	size_t start;

	if (!sv_attached(c))
		return;
	start = wire_begin(&c->out, WIRE_ERROR);
	wire_u32(&c->out, (uint32_t)code);
	wire_u32(&c->out, (uint32_t)errnum);
	wire_str(&c->out, message);
	wire_str(&c->out, suggestion);
	wire_str(&c->out, layer);
	sv_end_frame(c, start);
}

/* An ERROR frame for a library failure; the temporary name `tmp` is shown as `path`. */
void sv_send_mbx_error(struct sv_client *c, int rc, const mbx_error *err, const char *tmp, const char *path)
{
	char *fixed = NULL;
	const char *message;

	if (!err) {
		sv_send_error_fields(c, rc, 0, mbx_error_code_name(rc), NULL, NULL);
		return;
	}
	message = mbx_error_message(err);
	if (tmp && path && (fixed = replace_all(message, tmp, path)) != NULL)
		message = fixed;
	sv_send_error_fields(c, mbx_error_code(err), mbx_error_errno(err), message, mbx_error_suggestion(err),
			  mbx_error_layer(err));
	free(fixed);
}

void sv_send_fail(struct sv_client *c, int code, const char *fmt, ...)
{
	char message[CLI_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	sv_send_error_fields(c, code, 0, message, NULL, NULL);
}

/* A request the protocol does not allow here: answer and hang up. */
void sv_protocol_error(struct sv_client *c, const char *what)
{
	sv_send_fail(c, MBX_EPROTO, "protocol error: %s", what);
	c->closing = 1;
}

/* Sends what the socket takes now. */
static void flush(struct sv_client *c)
{
	ssize_t n;

	while (sv_attached(c) && sv_queued(c) > 0) {
		n = send(c->conn.fd, c->out.data + c->out_off, sv_queued(c), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* The client is gone; the loop notices on its next read. */
		c->out.len = c->out_off = 0;
		c->closing = 1;
		return;
	}
	if (sv_queued(c) == 0) {
		c->out.len = c->out_off = 0;
	} else if (c->out_off >= SV_OUT_HIGH) {
		/* A producer that keeps up must not grow the buffer: drop what went out. */
		memmove(c->out.data, c->out.data + c->out_off, sv_queued(c));
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
}

/* ---- the sandbox ---- */

/* Notes a library status that means the sandbox itself broke. */
void sv_note_status(struct sv *sv, int rc)
{
	if (rc == MBX_EPROTO || rc == MBX_ESTATE)
		sv->stop = SV_STOP_BROKEN;
}

/* ---- exec ---- */

static void forward_output(struct sv_client *c, mbx_event_kind_t kind, const uint8_t *data, size_t len)
{
	int stream = kind == MBX_EVENT_STDERR ? MBX_STREAM_STDERR : MBX_STREAM_STDOUT;
	size_t start, n;

	if (!sv_attached(c))
		return;
	/* As `run`: bytes past the output limit are not delivered. */
	len = cli_output_fit(&c->sent[stream], &c->cut[stream], c->limit, len);
	while (len > 0) {
		n = len < WIRE_CHUNK ? len : WIRE_CHUNK;
		start = wire_begin(&c->out, WIRE_OUTPUT);
		wire_u8(&c->out, (uint8_t)stream);
		wire_bytes(&c->out, data, n);
		sv_end_frame(c, start);
		data += n;
		len -= n;
	}
}

/* How the sandbox's limits hold (borrowed static strings of the library),
 * sent with every exit so `exec --json` reports what `run --json` does. */
static const char *sv_limits_mech = "none";
static const char *sv_limits_partial;

/*
 * Queues the EXIT frame that ends an exec, with the truncation flags this
 * client's forwarding kept, the measurements when there are any, and what
 * explains the end: the timeout and memory limit that applied and the
 * layers the sandbox skipped.
 */
void sv_send_exit(struct sv *sv, struct sv_client *c, int code, int sig, int timed_out, int oom,
		  uint64_t elapsed_us, uint64_t peak, uint64_t cpu_us, const char *trap)
{
	const struct cli_sandbox_opts *o = sv->opts;
	uint32_t skipped = mbx_sandbox_skipped(sv->sb), bit, n = 0;
	uint64_t timeout_ms;
	size_t start;
	int i;

	if (!sv_attached(c))
		return;
	start = wire_begin(&c->out, WIRE_EXIT);
	wire_u32(&c->out, (uint32_t)code);
	wire_u32(&c->out, (uint32_t)sig);
	wire_u8(&c->out, (uint8_t)timed_out);
	wire_u8(&c->out, (uint8_t)oom);
	wire_u8(&c->out, (uint8_t)c->cut[MBX_STREAM_STDOUT]);
	wire_u8(&c->out, (uint8_t)c->cut[MBX_STREAM_STDERR]);
	wire_u64(&c->out, elapsed_us);
	wire_u64(&c->out, peak);
	wire_u64(&c->out, cpu_us);
	wire_str(&c->out, trap);
	wire_str(&c->out, sv_limits_mech);
	wire_str(&c->out, sv_limits_partial);
	timeout_ms = c->timeout_ms ? c->timeout_ms :
		     o && (o->set & CLI_SET_TIMEOUT) ? o->timeout_ms : CLI_DEFAULT_TIMEOUT_MS;
	wire_u64(&c->out, timeout_ms);
	wire_u8(&c->out, c->timeout_ms == 0);
	wire_u64(&c->out, o && (o->set & CLI_SET_MEMORY) ? o->memory_bytes : CLI_DEFAULT_MEMORY);
	for (i = 0; i < 32; i++)
		n += (skipped >> i) & 1;
	wire_u32(&c->out, n);
	for (i = 0; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if (!(skipped & bit))
			continue;
		wire_str(&c->out, mbx_layer_name(bit) ? mbx_layer_name(bit) : "unknown");
		wire_str(&c->out, mbx_sandbox_skip_reason(sv->sb, bit));
	}
	sv_end_frame(c, start);
}

char *sv_join_command(const char *const *argv)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t i;

	for (i = 0; argv[i]; i++) {
		if (i)
			cli_buf_puts(&b, " ");
		cli_buf_puts(&b, argv[i]);
	}
	cli_buf_add(&b, "", 1);
	if (b.failed) {
		cli_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Forgets stdin the process did not take. */
static void drop_input(struct sv_client *c)
{
	free(c->in_buf);
	c->in_buf = NULL;
	c->in_len = 0;
}

/*
 * Gives the process as much of `data` as its stdin window takes now and
 * keeps the rest (a copy) for later rounds (retry_input). Stdin is
 * flow-controlled from the program back to the client: while input is
 * kept, the client's frames are not read, so the client stops sending,
 * and neither we nor the agent hold more than a window of it.
 */
static int feed_input(struct sv_client *c, const uint8_t *data, size_t len, mbx_error **err)
{
	size_t n = 0;
	int rc = mbx_process_write_stdin_some(c->proc, data, len, &n, err);

	if (rc != MBX_OK || n == len)
		return rc;
	c->in_buf = malloc(len - n);
	if (c->in_buf == NULL)
		return MBX_ENOMEM;	/* without an error object: ours, not the library's */
	memcpy(c->in_buf, data + n, len - n);
	c->in_len = len - n;
	return MBX_OK;
}

/* Ends the exec of `c`: kills what the program left running and frees the process. */
static void end_exec(struct sv_client *c)
{
	drop_input(c);
	if (c->proc) {
		/* `exec` leaves nothing behind: background children die with it. */
		(void)mbx_process_kill(c->proc, NULL);
		mbx_process_free(c->proc);
	}
	c->proc = NULL;
	free(c->command);
	c->command = NULL;
	c->state = SV_IDLE;
	if (!sv_attached(c))
		c->dead = 1;
}

/* The last event of a streamed process. */
static void finish_exec(struct sv *sv, struct sv_client *c, const mbx_event *ev)
{
	int timed_out = mbx_event_kind(ev) == MBX_EVENT_TIMED_OUT;
	/* A SIGKILL while the sandbox's OOM count grew: the memory limit's. */
	int oom = !timed_out && mbx_event_signal(ev) == SIGKILL &&
		  mbx_sandbox_oom_kills(sv->sb) > c->ooms_at_start;

	/* The exit event has no measurements (only mbx_process_wait() gives them). */
	sv_send_exit(sv, c, timed_out ? -1 : mbx_event_exit_code(ev), mbx_event_signal(ev), timed_out, oom,
		     (uint64_t)(sv_now_ms() - c->started_ms) * 1000, 0, 0, NULL);
	end_exec(c);
}

/* Sends a whole result: its output, then its exit with the measurements. */
static void send_result(struct sv *sv, struct sv_client *c, const mbx_result *res)
{
	const uint8_t *data;
	size_t len;

	data = mbx_result_stdout(res, &len);
	forward_output(c, MBX_EVENT_STDOUT, data, len);
	data = mbx_result_stderr(res, &len);
	forward_output(c, MBX_EVENT_STDERR, data, len);
	c->cut[MBX_STREAM_STDOUT] |= mbx_result_stdout_truncated(res);
	c->cut[MBX_STREAM_STDERR] |= mbx_result_stderr_truncated(res);
	sv_send_exit(sv, c, mbx_result_exit_code(res), mbx_result_signal(res), mbx_result_timed_out(res),
		     mbx_result_oom_killed(res) ||
		     (mbx_result_signal(res) == SIGKILL && mbx_sandbox_oom_kills(sv->sb) > c->ooms_at_start),
		     mbx_result_elapsed_us(res), mbx_result_peak_memory_bytes(res), mbx_result_cpu_time_us(res),
		     mbx_result_trap(res));
}

/*
 * --json: the library collects the output (up to the output limit) and
 * measures the process; a wait that times out keeps what it collected.
 */
static int collect_proc(struct sv *sv, struct sv_client *c, int timeout_ms)
{
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	int rc;

	rc = mbx_process_wait(c->proc, timeout_ms, &res, &err);
	if (rc == MBX_ETIMEDOUT) {
		mbx_error_free(err);
		return 0;
	}
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
	} else {
		send_result(sv, c, res);
	}
	mbx_result_free(res);
	mbx_error_free(err);
	end_exec(c);
	return 1;
}

/*
 * Takes the events of c's process that are there (waiting up to timeout_ms
 * for the first) while c's queue has room. Returns 1 if any came.
 */
static int pump_proc(struct sv *sv, struct sv_client *c, int timeout_ms)
{
	const uint8_t *data;
	mbx_event_kind_t kind;
	mbx_error *err = NULL;
	mbx_event *ev;
	size_t len;
	int rc, got = 0;

	if (c->collect)
		return collect_proc(sv, c, timeout_ms);
	while (c->proc && (!sv_attached(c) || sv_queued(c) < SV_OUT_HIGH)) {
		ev = NULL;
		rc = mbx_process_next_event(c->proc, got ? 0 : timeout_ms, &ev, &err);
		if (rc != MBX_OK) {
			sv_send_mbx_error(c, rc, err, NULL, NULL);
			mbx_error_free(err);
			sv_note_status(sv, rc);
			end_exec(c);
			return 1;
		}
		/* A wait that ran out may leave an error behind even on success. */
		mbx_error_free(err);
		err = NULL;
		if (!ev)
			break;
		got = 1;
		kind = mbx_event_kind(ev);
		if (kind == MBX_EVENT_STDOUT || kind == MBX_EVENT_STDERR) {
			data = mbx_event_data(ev, &len);
			if (data && len)
				forward_output(c, kind, data, len);
		} else if (kind == MBX_EVENT_EXIT || kind == MBX_EVENT_TIMED_OUT) {
			finish_exec(sv, c, ev);
		}
		mbx_event_free(ev);
	}
	return got;
}

/* Output callback of the blocking fallback below. */
static void on_exec_output(mbx_stream_t stream, const uint8_t *data, size_t len, void *userdata)
{
	struct sv_client *c = userdata;

	forward_output(c, stream == MBX_STREAM_STDERR ? MBX_EVENT_STDERR : MBX_EVENT_STDOUT, data, len);
	flush(c);
}

/*
 * A backend that cannot spawn (wasm) still executes: the whole call runs
 * here, holding the loop for its duration (bounded by its timeout).
 */
static void exec_blocking(struct sv *sv, struct sv_client *c, const char *const *argv, const char **env,
			  uint32_t n_env, const char *workdir, uint64_t timeout_ms)
{
	mbx_exec_options *opts = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	uint32_t i;
	size_t start;
	int rc;

	rc = mbx_exec_options_new(&opts, &err);
	for (i = 0; rc == MBX_OK && i < n_env; i++)
		rc = mbx_exec_options_set_env(opts, env[2 * i], env[2 * i + 1], &err);
	if (rc == MBX_OK && workdir[0])
		rc = mbx_exec_options_set_workdir(opts, workdir, &err);
	if (rc == MBX_OK && timeout_ms)
		rc = mbx_exec_options_set_timeout_ms(opts, timeout_ms, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		goto out;
	}
	/* STARTED goes first: streamed output follows it through the callback. */
	start = wire_begin(&c->out, WIRE_STARTED);
	wire_u32(&c->out, 0);
	sv_end_frame(c, start);
	if (!c->collect)
		mbx_exec_options_set_output_cb(opts, on_exec_output, c);
	rc = mbx_sandbox_exec(sv->sb, argv, opts, &res, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
	} else if (c->collect) {
		send_result(sv, c, res);
	} else {
		c->cut[MBX_STREAM_STDOUT] |= mbx_result_stdout_truncated(res);
		c->cut[MBX_STREAM_STDERR] |= mbx_result_stderr_truncated(res);
		sv_send_exit(sv, c, mbx_result_exit_code(res), mbx_result_signal(res), mbx_result_timed_out(res),
			     mbx_result_oom_killed(res), mbx_result_elapsed_us(res),
			     mbx_result_peak_memory_bytes(res), mbx_result_cpu_time_us(res), mbx_result_trap(res));
	}
out:
	mbx_result_free(res);
	mbx_error_free(err);
	mbx_exec_options_free(opts);
}

/*
 * EXEC: spawns the program with the request's options (state SV_EXEC,
 * answered with STARTED) or reports why not. A backend that cannot spawn
 * gets the blocking fallback when no stdin or terminal was asked for.
 * The request's strings point into the frame: used before it goes.
 */
static void start_exec(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char **argv = NULL, **env = NULL, *workdir;
	mbx_spawn_options *opts = NULL;
	mbx_error *err = NULL;
	uint32_t n_env, argc, i;
	uint64_t timeout_ms;
	uint16_t rows, cols;
	uint8_t flags;
	size_t start;
	int rc;

	flags = wire_get_u8(r);
	timeout_ms = wire_get_u64(r);
	rows = wire_get_u16(r);
	cols = wire_get_u16(r);
	workdir = wire_get_str(r);
	n_env = wire_get_u32(r);
	if (r->bad || n_env > 4096)
		goto bad;
	env = calloc((size_t)n_env * 2 + 1, sizeof(*env));
	if (!env)
		goto oom;
	for (i = 0; i < 2 * n_env; i++)
		env[i] = wire_get_str(r);
	argc = wire_get_u32(r);
	if (r->bad || argc == 0 || argc > 65536)
		goto bad;
	argv = calloc((size_t)argc + 1, sizeof(*argv));
	if (!argv)
		goto oom;
	for (i = 0; i < argc; i++)
		argv[i] = wire_get_str(r);
	if (wire_done(r) < 0)
		goto bad;

	if ((flags & WIRE_EXEC_DETACH) && (flags & (WIRE_EXEC_PTY | WIRE_EXEC_STDIN | WIRE_EXEC_COLLECT)))
		goto bad;
	c->timeout_ms = timeout_ms;
	c->ooms_at_start = mbx_sandbox_oom_kills(sv->sb);
	rc = mbx_spawn_options_new(&opts, &err);
	for (i = 0; rc == MBX_OK && i < n_env; i++)
		rc = mbx_spawn_options_set_env(opts, env[2 * i], env[2 * i + 1], &err);
	if (rc == MBX_OK && workdir[0])
		rc = mbx_spawn_options_set_workdir(opts, workdir, &err);
	if (rc == MBX_OK && (flags & WIRE_EXEC_PTY))
		rc = mbx_spawn_options_set_pty(opts, rows, cols, &err);
	if (rc == MBX_OK) {
		/* A background process is a server: no timeout unless asked for. */
		if ((flags & WIRE_EXEC_NO_TIMEOUT) || ((flags & WIRE_EXEC_DETACH) && !timeout_ms))
			mbx_spawn_options_set_timeout_ms(opts, 0);
		else if (timeout_ms)
			mbx_spawn_options_set_timeout_ms(opts, timeout_ms);
		if (flags & WIRE_EXEC_STDIN)
			mbx_spawn_options_set_stdin(opts, 1);
		memset(c->sent, 0, sizeof(c->sent));
		memset(c->cut, 0, sizeof(c->cut));
		c->collect = (flags & WIRE_EXEC_COLLECT) != 0;
		/* A terminal is a conversation, not a result: it has no limit. With
		 * --json the library keeps the output within the limit itself. */
		c->limit = (flags & (WIRE_EXEC_PTY | WIRE_EXEC_COLLECT)) ? UINT64_MAX : sv->output_limit;
		c->started_ms = sv_now_ms();
		rc = mbx_sandbox_spawn(sv->sb, (const char *const *)argv, opts, &c->proc, &err);
	}
	if (rc == MBX_OK && (flags & WIRE_EXEC_DETACH)) {
		rc = sv_bg_add(sv, c->proc, (const char *const *)argv);
		if (rc < 0) {
			(void)mbx_process_kill(c->proc, NULL);
			mbx_process_free(c->proc);
			if (rc == -2)
				sv_send_fail(c, MBX_ENOMEM, "out of memory keeping a background process");
			else
				sv_send_fail(c, MBX_EBACKEND, "sandbox `%s` keeps %d background processes already, "
					     "all running: end one with `mimobox kill %s ID`", sv->info.name,
					     SV_MAX_BG, sv->info.name);
		} else {
			start = wire_begin(&c->out, WIRE_STARTED);
			wire_u32(&c->out, mbx_process_id(c->proc));
			sv_end_frame(c, start);
		}
		c->proc = NULL;
	} else if (rc == MBX_ENOTSUP && !(flags & (WIRE_EXEC_PTY | WIRE_EXEC_STDIN | WIRE_EXEC_DETACH)) &&
		   c->proc == NULL) {
		mbx_error_free(err);
		err = NULL;
		exec_blocking(sv, c, argv, env, n_env, workdir, timeout_ms);
	} else if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
	} else {
		c->state = SV_EXEC;
		c->command = sv_join_command((const char *const *)argv);
		start = wire_begin(&c->out, WIRE_STARTED);
		wire_u32(&c->out, mbx_process_id(c->proc));
		sv_end_frame(c, start);
	}
	mbx_error_free(err);
	mbx_spawn_options_free(opts);
	free(argv);
	free(env);
	return;

bad:
	free(argv);
	free(env);
	sv_protocol_error(c, "malformed exec request");
	return;
oom:
	free(argv);
	free(env);
	sv_send_fail(c, MBX_ENOMEM, "out of memory");
}

/* A frame from the client of a running exec. */
static void exec_input(struct sv *sv, struct sv_client *c, struct wire_frame *f)
{
	mbx_error *err = NULL;
	const uint8_t *data;
	uint16_t rows, cols;
	uint32_t sig;
	size_t len;
	int rc = MBX_OK;

	switch (f->type) {
	case WIRE_STDIN:
		len = wire_get_bytes(&f->r, &data);
		if (wire_done(&f->r) < 0)
			break;
		if (len)
			rc = feed_input(c, data, len, &err);
		break;
	case WIRE_STDIN_EOF:
		rc = mbx_process_close_stdin(c->proc, &err);
		break;
	case WIRE_RESIZE:
		rows = wire_get_u16(&f->r);
		cols = wire_get_u16(&f->r);
		if (wire_done(&f->r) == 0 && rows && cols)
			rc = mbx_process_resize(c->proc, rows, cols, &err);
		break;
	case WIRE_SIGNAL:
		sig = wire_get_u32(&f->r);
		if (wire_done(&f->r) == 0 && sig > 0 && sig < 65)
			rc = mbx_process_signal(c->proc, (int)sig, &err);
		break;
	default:
		sv_protocol_error(c, "unexpected request during an exec");
		return;
	}
	if (f->r.bad) {
		sv_protocol_error(c, "malformed frame during an exec");
		return;
	}
	if (rc == MBX_ENOMEM && err == NULL) {
		sv_send_fail(c, MBX_ENOMEM, "out of memory keeping the program's stdin");
		end_exec(c);
		return;
	}
	/* Input to a process that just ended, or has no stdin, is not an error worth a word. */
	if (rc == MBX_EPROTO) {
		sv_note_status(sv, rc);
		sv_send_mbx_error(c, rc, err, NULL, NULL);
	}
	mbx_error_free(err);
}

/* ---- requests ---- */

static size_t count_running(const struct sv *sv)
{
	size_t i, n = 0;

	for (i = 0; i < sv->n_clients; i++)
		n += sv->clients[i]->proc != NULL;
	return n + sv_bg_running(sv);
}

/* How long until an idle sandbox expires (0 without a TTL). */
static uint64_t ttl_left_ms(const struct sv *sv)
{
	int64_t idle = sv_now_ms() - sv->last_use_ms;

	if (!sv->ttl_ms)
		return 0;
	return idle >= (int64_t)sv->ttl_ms ? 0 : sv->ttl_ms - (uint64_t)idle;
}

/* INFO: who we are and how busy, for `ps` and every client's HELLO. */
static void send_info(struct sv *sv, struct sv_client *c)
{
	size_t i, n = 0, start;

	for (i = 0; i < sv->n_clients; i++)
		n += sv_attached(sv->clients[i]);
	start = wire_begin(&c->out, WIRE_INFO);
	wire_u32(&c->out, WIRE_VERSION);
	wire_str(&c->out, sv->info.name);
	wire_str(&c->out, sv->info.id);
	wire_str(&c->out, sv->info.isolation);
	wire_u64(&c->out, sv->info.created);
	wire_u32(&c->out, sv->info.pid);
	wire_u32(&c->out, (uint32_t)n);
	wire_u32(&c->out, (uint32_t)count_running(sv));
	wire_u64(&c->out, sv->ttl_ms);
	wire_u64(&c->out, ttl_left_ms(sv));
	sv_end_frame(c, start);
}

/*
 * One frame of a client: input of what it is doing (exec, write, http
 * body), or a new request when it is idle. Anything else is a protocol
 * error, which ends the client.
 */
static void handle_frame(struct sv *sv, struct sv_client *c, struct wire_frame *f)
{
	switch (c->state) {
	case SV_EXEC:
		exec_input(sv, c, f);
		return;
	case SV_WRITE:
		sv_write_input(sv, c, f);
		return;
	case SV_READ:
		sv_protocol_error(c, "request during a read");
		return;
	case SV_HTTP:
		sv_http_input(sv, c, f);
		return;
	case SV_LOGS:
		sv_protocol_error(c, "request while logs are sent");
		return;
	default:
		break;
	}
	/* Looking (ps, inspect, the listing of processes) is not using: it keeps no sandbox alive. */
	if (f->type != WIRE_HELLO && f->type != WIRE_INSPECT && f->type != WIRE_PROCS)
		sv->last_use_ms = sv_now_ms();
	switch (f->type) {
	case WIRE_INSPECT:
		sv_do_inspect(sv, c, &f->r);
		break;
	case WIRE_PROCS:
		sv_do_procs(sv, c, &f->r);
		break;
	case WIRE_LOGS:
		sv_begin_logs(sv, c, &f->r);
		break;
	case WIRE_KILL:
		sv_do_kill(sv, c, &f->r);
		break;
	case WIRE_HELLO:
		(void)wire_get_u32(&f->r);
		if (wire_done(&f->r) < 0)
			sv_protocol_error(c, "malformed hello");
		else
			send_info(sv, c);
		break;
	case WIRE_EXEC:
		start_exec(sv, c, &f->r);
		break;
	case WIRE_READ:
		sv_begin_read(sv, c, &f->r);
		break;
	case WIRE_WRITE:
		sv_begin_write(sv, c, &f->r);
		break;
	case WIRE_STAT:
		sv_do_stat(sv, c, &f->r);
		break;
	case WIRE_LIST:
		sv_do_list(sv, c, &f->r);
		break;
	case WIRE_HTTP:
		sv_begin_http(sv, c, &f->r);
		break;
	case WIRE_MKDIR:
		sv_do_mkdir(sv, c, &f->r);
		break;
	case WIRE_UNLINK:
		sv_do_unlink(sv, c, &f->r);
		break;
	case WIRE_SYMLINK:
		sv_do_symlink(sv, c, &f->r);
		break;
	case WIRE_NETLOG:
		sv_do_netlog(sv, c, &f->r);
		break;
	case WIRE_SNAPSHOT:
		sv_do_snapshot(sv, c, &f->r);
		break;
	case WIRE_REMOVE:
		if (wire_done(&f->r) < 0) {
			sv_protocol_error(c, "malformed remove request");
			break;
		}
		sv->stop = SV_STOP_REMOVE;
		sv->remover = c;
		break;
	case WIRE_STDIN:
	case WIRE_STDIN_EOF:
	case WIRE_RESIZE:
	case WIRE_SIGNAL:
		/* Input that raced with the end of an exec. */
		break;
	default:
		sv_protocol_error(c, "unknown request");
		break;
	}
}

/* ---- clients ---- */

static void accept_clients(struct sv *sv)
{
	struct sv_client *c;
	struct ucred cred;
	socklen_t len;
	int fd;

	for (;;) {
		fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* The socket is 0600 in a 0700 directory; root could still come in. */
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
			close(fd);
			continue;
		}
		if (sv->n_clients >= SV_MAX_CLIENTS) {
			struct sv_client full = { .spool = -1 };

			/* Say why, if the socket takes it now; then hang up. */
			wire_conn_init(&full.conn, fd);
			sv_send_fail(&full, MBX_EBACKEND, "sandbox `%s` has %d clients already", sv->info.name,
				  SV_MAX_CLIENTS);
			flush(&full);
			cli_buf_free(&full.out);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		wire_conn_init(&c->conn, fd);
		c->spool = -1;
		sv->clients[sv->n_clients++] = c;
	}
}

/* The client went away (or must): whatever it was doing is undone. */
static void drop_client(struct sv *sv, struct sv_client *c)
{
	wire_conn_close(&c->conn);
	cli_buf_free(&c->out);
	c->out_off = 0;
	if (c->state == SV_WRITE)
		sv_abort_write(sv, c);
	if (c->spool >= 0)
		close(c->spool);
	c->spool = -1;
	sv_clear_http(c);
	mbx_http_response_free(c->resp);
	c->resp = NULL;
	if (c->proc) {
		/* Its process must not outlive it; its last event is still to come. */
		(void)mbx_process_kill(c->proc, NULL);
		c->detached_ms = sv_now_ms();
		return;
	}
	c->dead = 1;
}

/* Reads what a client sent and handles every complete frame; its end drops it. */
/* Handles the complete frames c sent, until one leaves stdin waiting. */
static void parse_client(struct sv *sv, struct sv_client *c)
{
	struct wire_frame f;
	int rc;

	while (sv_attached(c) && !c->closing && !sv->stop && c->in_len == 0 && (rc = wire_conn_next(&c->conn, &f)) != 0) {
		if (rc < 0) {
			drop_client(sv, c);
			return;
		}
		handle_frame(sv, c, &f);
	}
}

static void read_client(struct sv *sv, struct sv_client *c)
{
	long n;

	n = wire_conn_fill(&c->conn);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		drop_client(sv, c);
		return;
	}
	parse_client(sv, c);
}

/* Offers kept stdin again (the process read some, or ended); once it is
 * all taken, the client's next frames are handled. */
static void retry_input(struct sv *sv, struct sv_client *c)
{
	mbx_error *err = NULL;
	size_t n = 0;
	int rc;

	if (c->in_len == 0)
		return;
	if (c->proc == NULL) {
		drop_input(c);
	} else {
		rc = mbx_process_write_stdin_some(c->proc, c->in_buf, c->in_len, &n, &err);
		if (rc == MBX_EPROTO) {
			sv_note_status(sv, rc);
			sv_send_mbx_error(c, rc, err, NULL, NULL);
		}
		mbx_error_free(err);
		if (rc != MBX_OK) {
			/* As with any input to an ended process: not worth a word. */
			drop_input(c);
		} else if (n == c->in_len) {
			drop_input(c);
		} else if (n > 0) {
			memmove(c->in_buf, c->in_buf + n, c->in_len - n);
			c->in_len -= n;
		}
	}
	if (c->in_len == 0 && sv_attached(c))
		parse_client(sv, c);
}

/* Frees a client and everything it holds (its process handle too: kill it first). */
static void free_client(struct sv_client *c)
{
	drop_input(c);
	wire_conn_close(&c->conn);
	cli_buf_free(&c->out);
	sv_clear_http(c);
	mbx_http_response_free(c->resp);
	if (c->spool >= 0)
		close(c->spool);
	mbx_process_free(c->proc);
	free(c->command);
	free(c->path);
	free(c->tmp);
	free(c);
}

/* Frees the clients marked dead and those done closing. */
static void sweep(struct sv *sv)
{
	size_t i, j;
	struct sv_client *c;

	for (i = j = 0; i < sv->n_clients; i++) {
		c = sv->clients[i];
		if (sv_attached(c) && c->closing && sv_queued(c) == 0 && c != sv->remover)
			drop_client(sv, c);
		if (c->proc && !sv_attached(c) && sv_now_ms() - c->detached_ms > SV_DETACH_MS) {
			/* Killed long ago and still no last event: give up on it. */
			mbx_process_free(c->proc);
			c->proc = NULL;
			c->dead = 1;
		}
		if (c->dead && c != sv->remover) {
			free_client(c);
			continue;
		}
		sv->clients[j++] = c;
	}
	sv->n_clients = j;
}

/* An idle sandbox is asked for its processes now and then: a dead agent ends the supervisor. */
static void health_check(struct sv *sv)
{
	mbx_proc_list *list = NULL;
	int rc;

	if (sv_now_ms() - sv->last_check_ms < SV_CHECK_MS || count_running(sv) > 0)
		return;
	sv->last_check_ms = sv_now_ms();
	rc = mbx_sandbox_list_processes(sv->sb, &list, NULL);
	mbx_proc_list_free(list);
	sv_note_status(sv, rc);
}

/*
 * The loop: until `rm`, a stop signal or a broken sandbox (sv->stop).
 * Each round polls the listening socket, the signal pipe and the clients,
 * handles what came, takes process events, refills read transfers, sends
 * what the sockets take and frees finished clients; an idle sandbox is
 * checked every SV_CHECK_MS.
 */
static void serve(struct sv *sv)
{
	struct pollfd pfds[2 + SV_MAX_CLIENTS];
	struct sv_client *who[2 + SV_MAX_CLIENTS];
	struct sv_client *c;
	size_t i, k;
	int busy, fd_work, n, waited, wait_ms;
	int64_t now;
	char drain[16];

	while (!sv->stop) {
		k = 0;
		pfds[k].fd = sv->listen_fd;
		pfds[k++].events = POLLIN;
		pfds[k].fd = sig_pipe[0];
		pfds[k++].events = POLLIN;
		busy = sv_bg_running(sv) > 0;
		fd_work = 0;
		now = sv_now_ms();
		for (i = 0; i < sv->n_clients; i++) {
			c = sv->clients[i];
			if (c->proc && (!sv_attached(c) || sv_queued(c) < SV_OUT_HIGH))
				busy = 1;
			/* A client in the middle of something is a use: the idle clock waits. */
			if (sv_attached(c) && c->state != SV_IDLE)
				sv->last_use_ms = now;
			if (!sv_attached(c))
				continue;
			fd_work |= sv_queued(c) > 0;
			pfds[k].fd = c->conn.fd;
			/* Kept stdin: the client's next frames wait in its socket. */
			pfds[k].events = (short)((c->closing || c->in_len ? 0 : POLLIN) | (sv_queued(c) ? POLLOUT : 0));
			who[k++] = c;
		}
		/*
		 * Where to wait: for the sockets while output waits for a client
		 * (a transfer must not crawl at one socket buffer per slice),
		 * else, while processes run, for their events (below).
		 */
		wait_ms = !busy ? SV_CHECK_MS : fd_work ? SV_SLICE_MS : 0;
		if (sv->ttl_ms && wait_ms > 0 && (uint64_t)wait_ms > ttl_left_ms(sv))
			wait_ms = (int)ttl_left_ms(sv);
		n = poll(pfds, k, wait_ms);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && pfds[1].revents) {
			while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
				;
			sv->stop = SV_STOP_SIGNAL;
			break;
		}
		if (n > 0 && pfds[0].revents)
			accept_clients(sv);
		for (i = 2; n > 0 && i < k; i++) {
			c = who[i];
			if (pfds[i].revents & POLLOUT)
				flush(c);
			if (sv_attached(c) && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				read_client(sv, c);
		}
		/*
		 * Process events. Only a wait reads the sandbox's channel (a
		 * zero timeout returns what earlier reads queued), so the first
		 * process that may take events always waits a little, the whole
		 * slice when nothing else is going on; events of the others
		 * arrive meanwhile and are taken without waiting.
		 */
		waited = 0;
		for (i = 0; i < sv->n_clients && !sv->stop; i++) {
			c = sv->clients[i];
			if (!c->proc || (sv_attached(c) && sv_queued(c) >= SV_OUT_HIGH))
				continue;	/* its client must read first */
			(void)pump_proc(sv, c, waited ? 0 : !fd_work && n == 0 ? SV_SLICE_MS : 1);
			waited = 1;
		}
		if (!sv->stop && sv_bg_running(sv) > 0)
			(void)sv_bg_pump(sv, waited ? 0 : !fd_work && n == 0 ? SV_SLICE_MS : 1);
		for (i = 0; i < sv->n_clients && !sv->stop; i++)
			retry_input(sv, sv->clients[i]);
		for (i = 0; i < sv->n_clients; i++) {
			c = sv->clients[i];
			/* Until the socket is full: an empty queue gets no POLLOUT to refill it. */
			do {
				sv_pump_spool(c);
				sv_pump_logs(sv, c);
				flush(c);
			} while ((c->state == SV_READ || (c->state == SV_LOGS && !c->follow)) && sv_attached(c) &&
				 !c->closing && sv_queued(c) == 0);
		}
		sweep(sv);
		if (!sv->stop)
			health_check(sv);
		if (!sv->stop && sv->ttl_ms && ttl_left_ms(sv) == 0)
			sv->stop = SV_STOP_EXPIRED;
	}
}

/* ---- start and end ---- */

/* Writes one status frame for `create` and closes the descriptor; 0, or -1 when it did not arrive. */
static int report_status(int fd, struct cli_buf *b)
{
	int rc = b->failed ? -1 : wire_write_all(fd, b->data, b->len);

	cli_buf_free(b);
	close(fd);
	return rc;
}

/* Reports a failure to start as one ERROR frame for `create`. */
static void report_failure(int fd, int code, int errnum, const char *message, const char *suggestion,
			   const char *layer)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t start = wire_begin(&b, WIRE_ERROR);

	wire_u32(&b, (uint32_t)code);
	wire_u32(&b, (uint32_t)errnum);
	wire_str(&b, message);
	wire_str(&b, suggestion);
	wire_str(&b, layer);
	(void)wire_end(&b, start);
	(void)report_status(fd, &b);
}

/*
 * Takes the name in the registry: under the lock, a live entry wins, a
 * dead one is removed, and the socket and info file are made. 0, or -1
 * after reporting on status_fd.
 */
static int claim_name(struct sv *sv, int status_fd)
{
	char why[CLI_WHY_MAX], message[CLI_WHY_MAX];
	int rc, e;

	if (cli_registry_open(&sv->reg, 1, why, sizeof(why)) < 0) {
		report_failure(status_fd, MBX_EPERM, 0, why,
			       "remove it or set MIMOBOX_STATE_DIR to a directory you own", NULL);
		return -1;
	}
	if (cli_registry_lock(&sv->reg, 1) != 0) {
		e = errno;
		report_failure(status_fd, MBX_ESYS, e, "cannot lock the registry of named sandboxes", NULL, NULL);
		return -1;
	}
	rc = cli_registry_probe(&sv->reg, sv->info.name, NULL);
	if (rc == CLI_ENTRY_LIVE) {
		cli_registry_unlock(&sv->reg, 0);
		snprintf(message, sizeof(message), "a sandbox named `%s` already exists", sv->info.name);
		report_failure(status_fd, MBX_EEXIST, EEXIST, message,
			       "pick another --name, or remove it with `mimobox rm`", NULL);
		return -1;
	}
	if (rc == CLI_ENTRY_DEAD)
		cli_registry_remove(&sv->reg, sv->info.name);
	sv->listen_fd = cli_registry_listen(&sv->reg, sv->info.name);
	if (sv->listen_fd < 0 || cli_registry_write_info(&sv->reg, &sv->info) < 0) {
		e = errno;
		if (sv->listen_fd >= 0)
			cli_registry_remove(&sv->reg, sv->info.name);
		cli_registry_unlock(&sv->reg, 1);
		snprintf(message, sizeof(message), "cannot register sandbox `%s` in `%s`: %s", sv->info.name,
			 sv->reg.path, strerror(e));
		report_failure(status_fd, MBX_ESYS, e, message, NULL, NULL);
		return -1;
	}
	cli_registry_unlock(&sv->reg, 0);
	return 0;
}

/* Removes our registry entry (under the lock) and stops listening: new clients find no sandbox. */
static void unregister(struct sv *sv)
{
	if (sv->listen_fd >= 0) {
		if (cli_registry_lock(&sv->reg, 0) == 0) {
			cli_registry_remove(&sv->reg, sv->info.name);
			cli_registry_unlock(&sv->reg, 1);
		}
		close(sv->listen_fd);
		sv->listen_fd = -1;
	}
}

/* Ends every client: processes are killed, the clients told why. */
static void close_clients(struct sv *sv, const char *why)
{
	struct sv_client *c;
	size_t i;

	for (i = 0; i < sv->n_clients; i++) {
		c = sv->clients[i];
		if (c->proc) {
			(void)mbx_process_kill(c->proc, NULL);
			mbx_process_free(c->proc);
			c->proc = NULL;
		}
		if (c == sv->remover)
			continue;
		sv_send_fail(c, MBX_ESTATE, "sandbox `%s` %s", sv->info.name, why);
		flush(c);
		free_client(c);
		sv->clients[i] = NULL;
	}
	sv->n_clients = 0;
	sv_bg_free_all(sv);
}

/* SIGTERM and SIGINT stop the loop through the signal pipe; SIGHUP and SIGPIPE are no-ops. */
static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/*
	 * A handler, not SIG_IGN, for signals we do not want: an ignored
	 * signal would stay ignored in the agent the library executes.
	 */
	sa.sa_handler = on_ignored_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

int cli_supervise(const mbx_config *cfg, mbx_snapshot *snap, const char *name,
		  const struct cli_sandbox_opts *opts, uint64_t ttl_ms, int status_fd, int log_fd)
{
	struct sv sv;
	struct cli_buf b = CLI_BUF_INIT;
	mbx_error *err = NULL;
	const char *why;
	size_t start;
	int rc;

	memset(&sv, 0, sizeof(sv));
	sv.listen_fd = -1;
	sv.reg.dirfd = -1;
	sv.opts = opts;
	sv.ttl_ms = ttl_ms;
	sv.output_limit = (opts->set & CLI_SET_OUTPUT_LIMIT) ? opts->output_limit : CLI_DEFAULT_OUTPUT_LIMIT;
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		report_failure(status_fd, MBX_ESYS, errno, "cannot make the supervisor's signal pipe", NULL, NULL);
		mbx_snapshot_free(snap);
		return 1;
	}
	install_signals();

	rc = snap ? mbx_sandbox_from_snapshot(&sv.sb, snap, cfg, &err) : mbx_sandbox_new(&sv.sb, cfg, &err);
	mbx_snapshot_free(snap);	/* the saved files are in the sandbox now: not kept twice */
	if (rc != MBX_OK) {
		report_failure(status_fd, err ? mbx_error_code(err) : rc, err ? mbx_error_errno(err) : 0,
			       err ? mbx_error_message(err) : mbx_error_code_name(rc),
			       err ? mbx_error_suggestion(err) : NULL, err ? mbx_error_layer(err) : NULL);
		mbx_error_free(err);
		return 1;
	}
	sv_limits_mech = mbx_sandbox_limits_mechanism(sv.sb);
	sv_limits_partial = mbx_sandbox_limits_partial(sv.sb);
	snprintf(sv.info.id, sizeof(sv.info.id), "%s", mbx_sandbox_id(sv.sb));
	snprintf(sv.info.name, sizeof(sv.info.name), "%s", name ? name : sv.info.id);
	snprintf(sv.info.isolation, sizeof(sv.info.isolation), "%s",
		 mbx_isolation_name(mbx_sandbox_isolation(sv.sb)));
	sv.info.created = (uint64_t)time(NULL);
	sv.info.pid = (uint32_t)getpid();
	if (claim_name(&sv, status_fd) < 0) {
		mbx_sandbox_free(sv.sb);
		cli_registry_close(&sv.reg);
		return 1;
	}

	start = wire_begin(&b, WIRE_OK);
	wire_str(&b, sv.info.name);
	wire_str(&b, sv.info.id);
	wire_str(&b, sv.info.isolation);
	wire_str(&b, sv_limits_mech);
	wire_str(&b, sv_limits_partial);
	(void)wire_end(&b, start);
	if (report_status(status_fd, &b) < 0) {
		/* `create` was interrupted: nobody learnt of this sandbox, so it goes. */
		unregister(&sv);
		mbx_sandbox_free(sv.sb);
		cli_registry_close(&sv.reg);
		return 1;
	}
	/* Detached for good: `create` returns, and no directory is kept busy. */
	cli_set_log_fd(-1);
	close(log_fd);
	if (chdir("/") < 0) {
		/* Harmless: the old working directory merely stays busy. */
	}
	sv.last_check_ms = sv.last_use_ms = sv_now_ms();

	serve(&sv);

	why = sv.stop == SV_STOP_BROKEN ? "broke and was destroyed" :
	      sv.stop == SV_STOP_REMOVE ? "was removed" :
	      sv.stop == SV_STOP_EXPIRED ? "expired (idle longer than its --ttl) and was destroyed" : "was stopped";
	unregister(&sv);
	close_clients(&sv, why);
	rc = mbx_sandbox_destroy(sv.sb, &err);
	if (sv.remover) {
		struct sv_client *c = sv.remover;

		if (rc != MBX_OK && sv.stop == SV_STOP_REMOVE)
			sv_send_mbx_error(c, rc, err, NULL, NULL);
		else
			sv_send_simple(c, WIRE_OK);
		/* The client waits for the answer: give it all, blocking. */
		if (sv_attached(c)) {
			(void)fcntl(c->conn.fd, F_SETFL, fcntl(c->conn.fd, F_GETFL) & ~O_NONBLOCK);
			if (!c->out.failed)
				(void)wire_write_all(c->conn.fd, c->out.data + c->out_off, sv_queued(c));
		}
		free_client(c);
	}
	mbx_error_free(err);
	mbx_sandbox_free(sv.sb);
	cli_registry_close(&sv.reg);
	return sv.stop == SV_STOP_BROKEN ? 1 : 0;
}
