/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox exec` and `mimobox shell`: a program in a named sandbox, its
 * output streamed back as it comes (or collected for --json), with the
 * exit status rules of `run`. `shell` runs it on a terminal of the local
 * terminal's size: the local terminal goes to raw mode (and back on every
 * way out), keystrokes go through as bytes (Ctrl-C is 0x03, delivered by
 * the sandbox's terminal), and SIGWINCH becomes a resize.
 *
 * If this process dies, the supervisor sees the connection close and kills
 * the program: nothing keeps running unattended.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "session.h"
#include "term.h"

enum { EXEC_JSON = CLI_OPT_VERB, EXEC_TIMEOUT, EXEC_ENV, EXEC_WORKDIR, EXEC_STDIN, EXEC_ENV_FILE, EXEC_DETACH,
       EXEC_TTY, EXEC_AUDIT };

static const struct cli_option exec_options[] = {
	{ "json", 0, 0, EXEC_JSON },
	{ "timeout", 0, 1, EXEC_TIMEOUT },
	{ "env", 'e', 1, EXEC_ENV },
	{ "env-file", 0, 1, EXEC_ENV_FILE },
	{ "workdir", 'w', 1, EXEC_WORKDIR },
	{ "stdin", 'i', 0, EXEC_STDIN },
	{ "detach", 'd', 0, EXEC_DETACH },
	{ "tty", 't', 0, EXEC_TTY },
	{ "audit", 0, 0, EXEC_AUDIT },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option shell_options[] = {
	{ "env", 'e', 1, EXEC_ENV },
	{ "workdir", 'w', 1, EXEC_WORKDIR },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

struct exec_request {
	const char *verb;
	int shell;
	int json;
	int help;
	int use_stdin;
	int detach;
	int tty;		/* exec -t: a terminal, as shell, but with exec's timeout */
	int audit;		/* --audit */
	uint64_t timeout_ms;	/* 0: the sandbox's */
	const char *workdir;	/* borrowed, or NULL */
	struct cli_env *env;
	size_t n_env;
	const char *name;	/* borrowed */
	char **argv;		/* borrowed; NULL-terminated, argc words */
	int argc;
};

static void exec_usage(void)
{
	printf("Usage: mimobox exec NAME [OPTIONS] [--] PROGRAM [ARG...]\n"
	       "\n"
	       "Run a program in the named sandbox (see `mimobox create`). Its output\n"
	       "streams through as it comes; the sandbox and its files stay. When this\n"
	       "command is interrupted the program is killed, and so is anything it left\n"
	       "running when it exits; a program meant to stay (a server) takes --detach.\n"
	       "\n"
	       "Options:\n"
	       "  --json              print one JSON object with the result, as `run --json`\n"
	       "  --timeout SECONDS   limit of this program (default: the sandbox's timeout)\n"
	       "  -e, --env KEY=VALUE set a variable for this program (repeatable)\n"
	       "  --env-file FILE     set the variables of FILE: KEY=VALUE lines, `#` comments,\n"
	       "                      no quoting or expansion (repeatable)\n"
	       "  -w, --workdir PATH  working directory (default: the sandbox's)\n"
	       "  -i, --stdin         give this command's stdin to the program (default: none)\n"
	       "  -d, --detach        run the program in the background and print its id:\n"
	       "                      it outlives this command (no timeout unless --timeout),\n"
	       "                      `mimobox logs NAME ID` shows its output, `mimobox ps\n"
	       "                      NAME` lists it, `mimobox kill NAME ID` ends it\n"
	       "  -t, --tty           run it on a terminal of this terminal's size, as `shell`\n"
	       "                      does (stdin goes to it), with the timeout of exec\n"
	       "  --audit             report the network log from this program's start, as\n"
	       "                      `run --audit` (--json: a network_log array)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "A timeout, an out-of-memory kill and isolation layers the sandbox skipped\n"
	       "(create --allow-degraded) are each said in one line on stderr.\n"
	       "\n"
	       "Exit status: the program's own; 128+N when killed by signal N; 124 on\n"
	       "timeout; 125 when the arguments are wrong, the sandbox is unknown or\n"
	       "broke; 126 when the program cannot be executed; 127 when it is not found.\n"
	       "With --detach: 0 once the program started.\n");
}

static void shell_usage(void)
{
	printf("Usage: mimobox shell NAME [OPTIONS] [-- PROGRAM [ARG...]]\n"
	       "\n"
	       "Open an interactive terminal in the named sandbox: /bin/bash when the\n"
	       "sandbox has it, else /bin/sh, or PROGRAM. It follows this terminal's size\n"
	       "and has no timeout; leave it as the program lets you (`exit`, Ctrl-D).\n"
	       "\n"
	       "Options:\n"
	       "  -e, --env KEY=VALUE set a variable (repeatable; TERM is passed on)\n"
	       "  -w, --workdir PATH  working directory (default: the sandbox's)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "Exit status: the program's, as for `mimobox exec`.\n");
}

static void free_request(struct exec_request *r)
{
	size_t i;

	for (i = 0; i < r->n_env; i++)
		cli_env_free(&r->env[i]);
	free(r->env);
}

/* One option of exec or shell; 0, or -1 after reporting. */
static int take_option(struct exec_request *r, int id, const char *value, char *why, size_t whylen)
{
	struct cli_env e, *grown;

	switch (id) {
	case EXEC_JSON:
		r->json = 1;
		return 0;
	case EXEC_TTY:
		r->tty = 1;
		return 0;
	case EXEC_AUDIT:
		r->audit = 1;
		return 0;
	case EXEC_TIMEOUT:
		if (cli_parse_timeout(value, &r->timeout_ms, why, whylen) < 0) {
			cli_usage_error(r->json, r->verb, "invalid value `%s` for --timeout: %s", value, why);
			return -1;
		}
		return 0;
	case EXEC_ENV:
		if (cli_parse_env(value, &e, why, whylen) < 0) {
			cli_usage_error(r->json, r->verb, "invalid value `%s` for --env: %s", value, why);
			return -1;
		}
		grown = realloc(r->env, (r->n_env + 1) * sizeof(*grown));
		if (!grown) {
			cli_env_free(&e);
			cli_report(r->json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
			return -1;
		}
		r->env = grown;
		r->env[r->n_env++] = e;
		return 0;
	case EXEC_ENV_FILE:
		if (cli_parse_env_file(value, &r->env, &r->n_env, why, whylen) < 0) {
			cli_usage_error(r->json, r->verb, "--env-file `%s`: %s", value, why);
			return -1;
		}
		return 0;
	case EXEC_WORKDIR:
		r->workdir = value;
		return 0;
	case EXEC_STDIN:
		r->use_stdin = 1;
		return 0;
	case EXEC_DETACH:
		r->detach = 1;
		return 0;
	case CLI_OPT_HELP:
		r->help = 1;
		return 0;
	default:
		cli_usage_error(r->json, r->verb, "internal error: option %d", id);
		return -1;
	}
}

/*
 * `VERB [OPTIONS] NAME [OPTIONS] [--] PROGRAM [ARG...]`: options may come
 * before and after the name; the program starts at "--" or at the first
 * word that is not an option. 0, or -1 after reporting.
 */
static int parse(struct exec_request *r, int argc, char **argv)
{
	const struct cli_option *options = r->shell ? shell_options : exec_options;
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id, phase;

	r->json = cli_wants_json(argc, argv, options, 1);
	for (phase = 0; phase < 2; phase++) {
		while ((id = cli_next_option(&a, options, &value, why, sizeof(why))) != CLI_OPT_END) {
			if (id == CLI_OPT_BAD) {
				cli_usage_error(r->json, r->verb, "%s", why);
				return -1;
			}
			if (take_option(r, id, value, why, sizeof(why)) < 0)
				return -1;
			if (r->help)
				return 0;
		}
		if (phase == 0) {
			if (a.next >= argc) {
				cli_usage_error(r->json, r->verb, "no sandbox name given (expected `mimobox %s "
						"NAME%s`)", r->verb, r->shell ? "" : " -- PROGRAM [ARG...]");
				return -1;
			}
			r->name = argv[a.next++];
		}
	}
	r->argv = argv + a.next;
	r->argc = argc - a.next;
	if (!r->shell && r->argc == 0) {
		cli_usage_error(r->json, r->verb, "no program given (expected `mimobox exec %s -- PROGRAM "
				"[ARG...]`)", r->name);
		return -1;
	}
	if (r->detach && (r->json || r->use_stdin)) {
		cli_usage_error(r->json, r->verb, "--detach cannot be combined with %s: a background process "
				"has no stdin and its output goes to `mimobox logs`", r->json ? "--json" : "--stdin");
		return -1;
	}
	if (r->tty && r->json) {
		cli_usage_error(r->json, r->verb, "-t cannot go with --json: a terminal merges stdout and stderr");
		return -1;
	}
	if (r->detach && (r->tty || r->audit)) {
		cli_usage_error(r->json, r->verb, "--detach cannot be combined with %s: a background process has "
				"no terminal and its output goes to `mimobox logs`", r->tty ? "-t" : "--audit");
		return -1;
	}
	if (r->argc > 0 && r->argv[0][0] == '\0') {
		cli_usage_error(r->json, r->verb, "the program name is empty");
		return -1;
	}
	if (cli_check_name(r->name, why, sizeof(why)) < 0) {
		cli_usage_error(r->json, r->verb, "%s", why);
		return -1;
	}
	return 0;
}

/* ---- the session ---- */

struct exec_state {
	struct exec_request *r;
	struct wire_conn conn;
	struct cli_session_info info;
	int in_fd;		/* forwarded to the program, or -1 */
	struct cli_buf inq;	/* input frames the supervisor has not taken yet, from inq_off on */
	size_t inq_off;
	int winch_fd;		/* readable on SIGWINCH (-t, shell), or -1 */
	int broken[3];		/* our stdout/stderr went away */
	struct cli_buf out, err;	/* collected for --json */
	struct cli_outcome outcome;
	char trap[512];		/* the outcome's trap text */
	char limits[32];	/* the outcome's limits mechanism */
	char limits_partial[1024]; /* what the limits leave unbounded, or "" */
	struct cli_skip skips[32];	/* the outcome's skipped layers */
	char skip_text[32][2][256];
	int done;
	int status;
	struct cli_buf audit;	/* --audit --json: the network_log members */
};

/* Microseconds since the epoch, as the network log counts. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * --audit: asks for the network log from `since` on and reports it (into
 * s->audit for --json, else on stderr). 0, or -1 after reporting.
 */
static int fetch_audit(struct exec_state *s, uint64_t since)
{
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_frame f;
	uint64_t dropped = 0;
	size_t start, index = 0;
	uint32_t n, i;
	int rc, json = s->r->json;

	start = wire_begin(&b, WIRE_NETLOG);
	wire_u64(&b, since);
	rc = wire_end(&b, start) == 0 && cli_session_send(&s->conn, &b) == 0 ? 0 : -1;
	cli_buf_free(&b);
	if (rc < 0) {
		s->status = cli_session_lost(json, s->r->name, errno);
		return -1;
	}
	if (json)
		cli_buf_puts(&s->audit, ", \"network_log\": [");
	for (;;) {
		rc = wire_conn_recv(&s->conn, &f, -1);
		if (rc != 1) {
			s->status = cli_session_lost(json, s->r->name, rc < 0 ? errno : 0);
			return -1;
		}
		if (f.type == WIRE_ERROR) {
			s->status = cli_session_file_status(cli_session_report_error(json, &f.r));
			return -1;
		}
		if (f.type == WIRE_END)
			break;
		if (f.type != WIRE_NET_ENTRIES)
			goto proto;
		dropped = wire_get_u64(&f.r);
		n = wire_get_u32(&f.r);
		for (i = 0; i < n && !f.r.bad; i++) {
			struct cli_net_entry e;

			e.source = wire_get_str(&f.r);
			e.time_us = wire_get_u64(&f.r);
			e.method = wire_get_str(&f.r);
			e.host = wire_get_str(&f.r);
			e.port = wire_get_u16(&f.r);
			e.address = wire_get_str(&f.r);
			e.verdict = wire_get_str(&f.r);
			e.status = (int)(int32_t)wire_get_u32(&f.r);
			e.reason = wire_get_str(&f.r);
			e.bytes_up = wire_get_u64(&f.r);
			e.bytes_down = wire_get_u64(&f.r);
			if (f.r.bad)
				break;
			cli_net_entry_report(&s->audit, json, index++, &e);
		}
		if (wire_done(&f.r) < 0)
			goto proto;
	}
	if (json)
		cli_buf_printf(&s->audit, "], \"network_log_dropped\": %llu", (unsigned long long)dropped);
	if (s->audit.failed) {
		cli_report(json, MBX_ENOMEM, "out of memory formatting the network log", NULL, NULL, ENOMEM);
		s->status = CLI_EXIT_FAILED;
		return -1;
	}
	return 0;
proto:
	s->status = cli_session_lost(json, s->r->name, EPROTO);
	return -1;
}

/* Asks the sandbox whether it has bash; /bin/sh otherwise. */
static const char *default_shell(struct exec_state *s)
{
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_frame f;
	size_t start;
	uint8_t type = 0;

	start = wire_begin(&b, WIRE_STAT);
	wire_str(&b, "/bin/bash");
	if (wire_end(&b, start) == 0 && cli_session_send(&s->conn, &b) == 0 &&
	    wire_conn_recv(&s->conn, &f, -1) == 1 && f.type == WIRE_STAT_REPLY)
		type = wire_get_u8(&f.r);
	cli_buf_free(&b);
	/* A symlink too: the sandbox resolves it when it executes. */
	return type == MBX_FILE_REGULAR || type == MBX_FILE_SYMLINK ? "/bin/bash" : "/bin/sh";
}

/*
 * Sends EXEC: the options, the program and, for a shell, the local TERM
 * (unless --env sets one). 0, or -1 with s->status set after reporting.
 */
static int send_exec(struct exec_state *s, const char *const *argv, int argc, uint16_t rows, uint16_t cols)
{
	struct exec_request *r = s->r;
	struct cli_buf b = CLI_BUF_INIT;
	const char *term = getenv("TERM");
	uint32_t n_env = (uint32_t)r->n_env;
	uint8_t flags = 0;
	size_t start, i;
	int have_term = 0, rc;

	if (r->shell)
		flags = WIRE_EXEC_PTY | WIRE_EXEC_STDIN | WIRE_EXEC_NO_TIMEOUT;
	if (r->tty)
		flags = WIRE_EXEC_PTY | WIRE_EXEC_STDIN;
	if (r->use_stdin)
		flags |= WIRE_EXEC_STDIN;
	if (r->json)
		flags |= WIRE_EXEC_COLLECT;
	if (r->detach)
		flags |= WIRE_EXEC_DETACH;
	for (i = 0; i < r->n_env; i++)
		have_term |= strcmp(r->env[i].name, "TERM") == 0;
	/* The program draws on our terminal: it should know which one. */
	if ((r->shell || r->tty) && !have_term && term && term[0])
		n_env++;
	else
		term = NULL;
	start = wire_begin(&b, WIRE_EXEC);
	wire_u8(&b, flags);
	wire_u64(&b, r->timeout_ms);
	wire_u16(&b, rows);
	wire_u16(&b, cols);
	wire_str(&b, r->workdir);
	wire_u32(&b, n_env);
	for (i = 0; i < r->n_env; i++) {
		wire_str(&b, r->env[i].name);
		wire_str(&b, r->env[i].value);
	}
	if (term) {
		wire_str(&b, "TERM");
		wire_str(&b, term);
	}
	wire_u32(&b, (uint32_t)argc);
	for (i = 0; i < (size_t)argc; i++)
		wire_str(&b, argv[i]);
	rc = wire_end(&b, start) < 0 ? errno : 0;
	if (rc)
		cli_term_restore();
	if (rc == EMSGSIZE) {
		cli_usage_error(r->json, r->verb, "the program's arguments and environment are too long");
		cli_buf_free(&b);
		return -1;
	}
	if (rc || cli_session_send(&s->conn, &b) < 0) {
		rc = rc ? rc : errno;
		cli_term_restore();
		cli_buf_free(&b);
		s->status = cli_session_lost(r->json, r->name, rc);
		return -1;
	}
	cli_buf_free(&b);
	return 0;
}

/* Delivers output to our stdout/stderr, or keeps it for --json. */
static void take_output(struct exec_state *s, struct wire_reader *rd)
{
	uint8_t stream = wire_get_u8(rd);
	const uint8_t *data;
	size_t len = wire_get_bytes(rd, &data);
	int fd = stream == MBX_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO;

	if (wire_done(rd) < 0)
		return;
	if (s->r->json) {
		cli_buf_add(fd == STDERR_FILENO ? &s->err : &s->out, data, len);
		return;
	}
	if (s->broken[fd])
		return;
	if (cli_write_all(fd, data, len) < 0) {
		/* A reader that went away silences that stream, as in `run`. */
		s->broken[fd] = 1;
		if (errno != EPIPE && fd == STDOUT_FILENO)
			fprintf(stderr, "mimobox: warning: cannot write the output: %s\n", strerror(errno));
	}
}

/* The EXIT frame: the outcome, and the exit status that stands for it. */
static void take_exit(struct exec_state *s, struct wire_reader *rd)
{
	struct cli_outcome *o = &s->outcome;
	const char *trap;
	uint32_t n, i;

	memset(o, 0, sizeof(*o));
	o->exit_code = (int)(int32_t)wire_get_u32(rd);
	o->signal = (int)(int32_t)wire_get_u32(rd);
	o->timed_out = wire_get_u8(rd);
	o->oom_killed = wire_get_u8(rd);
	o->out_truncated = wire_get_u8(rd);
	o->err_truncated = wire_get_u8(rd);
	o->elapsed_us = wire_get_u64(rd);
	o->peak_memory_bytes = wire_get_u64(rd);
	o->cpu_time_us = wire_get_u64(rd);
	trap = wire_get_str(rd);
	/* Kept: the frame's buffer is reused by the next read. */
	snprintf(s->trap, sizeof(s->trap), "%s", trap);
	o->trap = s->trap[0] ? s->trap : NULL;
	o->isolation = s->info.entry.isolation;
	snprintf(s->limits, sizeof(s->limits), "%s", wire_get_str(rd));
	snprintf(s->limits_partial, sizeof(s->limits_partial), "%s", wire_get_str(rd));
	o->limits = s->limits;
	o->limits_partial = s->limits_partial[0] ? s->limits_partial : NULL;
	o->timeout_ms = wire_get_u64(rd);
	o->timeout_opt = wire_get_u8(rd) ? "create --timeout" : "--timeout";
	o->memory_limit = wire_get_u64(rd);
	o->memory_opt = "create --memory";
	n = wire_get_u32(rd);
	for (i = 0; i < n && !rd->bad; i++) {
		const char *layer = wire_get_str(rd), *reason = wire_get_str(rd);

		if (i >= 32)
			continue;
		snprintf(s->skip_text[i][0], sizeof(s->skip_text[i][0]), "%s", layer);
		snprintf(s->skip_text[i][1], sizeof(s->skip_text[i][1]), "%s", reason);
		s->skips[i].layer = s->skip_text[i][0];
		s->skips[i].reason = s->skip_text[i][1];
	}
	o->skipped = s->skips;
	o->n_skipped = n < 32 ? n : 32;
	if (wire_done(rd) < 0) {
		s->status = cli_session_lost(s->r->json, s->r->name, EPROTO);
		s->done = 1;
		return;
	}
	s->status = cli_outcome_status(o);
	s->done = 2;	/* a real exit */
}

/* A frame from the supervisor during the exec. */
static void take_frame(struct exec_state *s, struct wire_frame *f)
{
	switch (f->type) {
	case WIRE_OUTPUT:
		take_output(s, &f->r);
		break;
	case WIRE_EXIT:
		take_exit(s, &f->r);
		break;
	case WIRE_ERROR:
		cli_term_restore();
		s->status = cli_failure_status(cli_session_report_error(s->r->json, &f->r));
		s->done = 1;
		break;
	default:
		cli_term_restore();
		s->status = cli_session_lost(s->r->json, s->r->name, EPROTO);
		s->done = 1;
		break;
	}
}

/*
 * Sends queued input frames without blocking. Input is flow-controlled end
 * to end: the program takes it as it reads, the supervisor takes it from us
 * as the program does, and we read our stdin only once the queue is out.
 * A blocking send here could wait on a supervisor that waits on us to read
 * the program's output. Returns -1 when the connection failed.
 */
static int send_input(struct exec_state *s)
{
	while (s->inq_off < s->inq.len) {
		ssize_t n = send(s->conn.fd, s->inq.data + s->inq_off, s->inq.len - s->inq_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		s->inq_off += (size_t)n;
	}
	s->inq.len = 0;
	s->inq_off = 0;
	return 0;
}

/* Forwards what our stdin has to the program; at its end, closes the program's. */
static void forward_input(struct exec_state *s)
{
	static uint8_t chunk[WIRE_CHUNK];
	struct cli_buf *b = &s->inq;
	size_t start;
	ssize_t n;

	do
		n = read(s->in_fd, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n > 0) {
		start = wire_begin(b, WIRE_STDIN);
		wire_bytes(b, chunk, (size_t)n);
	} else {
		start = wire_begin(b, WIRE_STDIN_EOF);
		s->in_fd = -1;
	}
	if (wire_end(b, start) < 0 || b->failed) {
		/* Out of memory: the program's stdin ends here. */
		b->len = 0;
		b->failed = 0;
		s->inq_off = 0;
		s->in_fd = -1;
		return;
	}
	(void)send_input(s);	/* a failure shows as the connection's end */
}

/* SIGWINCH came: tells the program's terminal our new size. */
static void send_resize(struct exec_state *s)
{
	struct cli_buf b = CLI_BUF_INIT;
	uint16_t rows, cols;
	size_t start;

	cli_term_winch_drain();
	cli_term_size(&rows, &cols);
	/* Behind queued input, whose frames must stay whole. */
	if (s->inq.len > s->inq_off) {
		start = wire_begin(&s->inq, WIRE_RESIZE);
		wire_u16(&s->inq, rows);
		wire_u16(&s->inq, cols);
		if (wire_end(&s->inq, start) == 0)
			(void)send_input(s);
		cli_buf_free(&b);
		return;
	}
	start = wire_begin(&b, WIRE_RESIZE);
	wire_u16(&b, rows);
	wire_u16(&b, cols);
	if (wire_end(&b, start) == 0)
		(void)cli_session_send(&s->conn, &b);
	cli_buf_free(&b);
}

/* Moves bytes between us and the program until its EXIT. */
static void pump(struct exec_state *s)
{
	struct pollfd pfd[3];
	struct wire_frame f;
	long n;
	int rc;

	while (!s->done) {
		/* Frames that came in with earlier ones first: poll() cannot see them. */
		while (!s->done && (rc = wire_conn_next(&s->conn, &f)) != 0) {
			if (rc < 0) {
				cli_term_restore();
				s->status = cli_session_lost(s->r->json, s->r->name, EPROTO);
				return;
			}
			take_frame(s, &f);
		}
		if (s->done)
			return;
		pfd[0].fd = s->conn.fd;
		pfd[0].events = POLLIN | (s->inq.len > s->inq_off ? POLLOUT : 0);
		/* Our stdin waits until the supervisor took what we sent. */
		pfd[1].fd = s->inq.len > s->inq_off ? -1 : s->in_fd;
		pfd[1].events = POLLIN;
		pfd[2].fd = s->winch_fd;
		pfd[2].events = POLLIN;
		pfd[0].revents = pfd[1].revents = pfd[2].revents = 0;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			s->status = cli_session_lost(s->r->json, s->r->name, errno);
			return;
		}
		if (pfd[2].revents)
			send_resize(s);
		if ((pfd[0].revents & POLLOUT) && send_input(s) < 0)
			pfd[0].revents |= POLLIN;	/* the read below sees the end */
		if (pfd[1].revents)
			forward_input(s);
		if (!(pfd[0].revents & ~POLLOUT))
			continue;
		n = wire_conn_fill(&s->conn);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			cli_term_restore();
			s->status = cli_session_lost(s->r->json, s->r->name, n < 0 ? errno : 0);
			return;
		}
	}
}

/*
 * exec and shell after parsing: connects, picks the shell, sends the
 * request and moves bytes until the program ends. Returns the exit status.
 */
static int run_session(struct exec_request *r)
{
	struct exec_state s;
	const char *shell_argv[2] = { NULL, NULL };
	const char *const *argv = (const char *const *)r->argv;
	struct wire_frame f;
	uint16_t rows = 0, cols = 0;
	uint64_t since;
	int argc = r->argc, rc;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.in_fd = -1;
	s.winch_fd = -1;
	s.status = CLI_EXIT_FAILED;
	rc = cli_session_open(r->verb, r->name, r->json, &s.conn, &s.info);
	if (rc != 0)
		return rc;
	if (r->shell && argc == 0) {
		shell_argv[0] = default_shell(&s);
		argv = shell_argv;
		argc = 1;
	}
	if (r->shell || r->tty) {
		cli_term_size(&rows, &cols);
		s.winch_fd = cli_term_watch_winch();
		if (s.winch_fd < 0) {
			cli_report(0, MBX_ESYS, "cannot watch the terminal's size", NULL, NULL, errno);
			goto out;
		}
	}
	/* Raw from now on: keys typed while the program starts are its, not echoed here. */
	if ((r->shell || r->tty) && cli_term_raw() < 0) {
		cli_term_restore();
		cli_report(0, MBX_ESYS, "cannot put the terminal in raw mode", NULL, NULL, errno);
		goto out;
	}
	since = now_us();
	if (send_exec(&s, argv, argc, rows, cols) < 0)
		goto out;
	rc = wire_conn_recv(&s.conn, &f, -1);
	if (rc != 1 || f.type != WIRE_STARTED)
		cli_term_restore();	/* before any message */
	if (rc != 1) {
		s.status = cli_session_lost(r->json, r->name, rc < 0 ? errno : 0);
		goto out;
	}
	if (f.type == WIRE_ERROR) {
		s.status = cli_failure_status(cli_session_report_error(r->json, &f.r));
		goto out;
	}
	if (f.type != WIRE_STARTED) {
		s.status = cli_session_lost(r->json, r->name, EPROTO);
		goto out;
	}
	if (r->detach) {
		/* Started in the background: its id is the whole answer. */
		uint32_t id = wire_get_u32(&f.r);

		if (wire_done(&f.r) < 0) {
			s.status = cli_session_lost(r->json, r->name, EPROTO);
			goto out;
		}
		printf("%u\n", (unsigned)id);
		s.status = fflush(stdout) == 0 || errno == EPIPE ? 0 : CLI_EXIT_FAILED;
		goto out;
	}
	if (r->shell || r->tty || r->use_stdin)
		s.in_fd = STDIN_FILENO;
	pump(&s);
	cli_term_restore();
	if (s.done == 2 && r->audit && fetch_audit(&s, since) < 0)
		goto out;
	if (s.done == 2) {
		if (r->json) {
			s.outcome.out = (const uint8_t *)s.out.data;
			s.outcome.out_len = s.out.len;
			s.outcome.err = (const uint8_t *)s.err.data;
			s.outcome.err_len = s.err.len;
			s.outcome.extra_json = s.audit.data;
			if (s.out.failed || s.err.failed) {
				cli_report(1, MBX_ENOMEM, "out of memory collecting the output", NULL, NULL, ENOMEM);
				s.status = CLI_EXIT_FAILED;
			} else if (cli_outcome_print_json(&s.outcome) < 0) {
				s.status = CLI_EXIT_FAILED;
			}
		} else {
			/* The output went by already; say what it cannot show, as `run` does. */
			if (s.outcome.out_truncated || s.outcome.err_truncated)
				fprintf(stderr, "\nmimobox: warning: output beyond the output limit was dropped "
						"(see `create --output-limit`)\n");
			if (s.outcome.trap)
				fprintf(stderr, "mimobox: %s\n", s.outcome.trap);
			cli_outcome_explain(&s.outcome);
		}
	}
out:
	cli_term_restore();
	cli_buf_free(&s.out);
	cli_buf_free(&s.err);
	cli_buf_free(&s.audit);
	cli_buf_free(&s.inq);
	wire_conn_close(&s.conn);
	return s.status;
}

static int exec_or_shell(int argc, char **argv, int shell)
{
	struct exec_request r;
	int status;

	memset(&r, 0, sizeof(r));
	r.verb = shell ? "shell" : "exec";
	r.shell = shell;
	if (parse(&r, argc, argv) < 0) {
		free_request(&r);
		return CLI_EXIT_FAILED;
	}
	if (r.help) {
		if (shell)
			shell_usage();
		else
			exec_usage();
		free_request(&r);
		return 0;
	}
	status = run_session(&r);
	free_request(&r);
	return status;
}

int cli_cmd_exec(int argc, char **argv)
{
	return exec_or_shell(argc, argv, 0);
}

int cli_cmd_shell(int argc, char **argv)
{
	return exec_or_shell(argc, argv, 1);
}
