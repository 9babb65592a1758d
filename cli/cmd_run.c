/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox run`: make a sandbox, run one program (or command line, or piece
 * of source code) in it, destroy it. Output streams through as it comes, or
 * with --json is reported as one JSON object at the end. The exit status is
 * the payload's own; see the usage text for the rest.
 *
 * With -i or -t the program is a process of the sandbox (mbx/process.h):
 * our stdin goes to it as it comes, paced by the sandbox's stdin credit
 * (mbx_process_write_stdin_some), on a terminal of our terminal's size with -t
 * (raw mode, resizes; term.c, shared with exec -t and shell).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "remote.h"
#include "term.h"

enum {
	OPT_JSON = CLI_OPT_VERB,
	OPT_COMMAND,
	OPT_CODE,
	OPT_AUDIT,
	OPT_INTERACTIVE,
	OPT_TTY,
};

static const struct cli_option run_options[] = {
	CLI_SANDBOX_OPTIONS,
	{ "json", 0, 0, OPT_JSON },
	{ "command", 0, 1, OPT_COMMAND },
	{ "code", 0, 1, OPT_CODE },
	{ "audit", 0, 0, OPT_AUDIT },
	{ "interactive", 'i', 0, OPT_INTERACTIVE },
	{ "tty", 't', 0, OPT_TTY },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static void usage(void)
{
	printf("Usage: mimobox run [OPTIONS] -- PROGRAM [ARG...]\n"
	       "       mimobox run [OPTIONS] --command 'COMMAND LINE'\n"
	       "       mimobox run [OPTIONS] --code LANGUAGE [SOURCE | -]\n"
	       "\n"
	       "Run one program in a new sandbox, then destroy the sandbox. A program\n"
	       "ending in .wasm or .wat runs on the wasm backend under --isolation auto.\n"
	       "\n%s\n"
	       "Run options:\n"
	       "  --command STRING    split STRING with shell-like quoting and run it;\n"
	       "                      no shell is involved, so `|` and `>` are plain words\n"
	       "  --code LANGUAGE     run source code (sh, bash, python3, node) given as the\n"
	       "                      argument, or read from stdin when it is - or missing\n"
	       "  --json              print one JSON object with the result instead of\n"
	       "                      streaming the output; output that is not UTF-8 is\n"
	       "                      also given exactly, as stdout_b64 / stderr_b64\n"
	       "  --audit             report the network log: every request the proxy saw\n"
	       "                      and its verdict (--json: a network_log array; else\n"
	       "                      one `mimobox: net:` line each on stderr)\n"
	       "  -i, --interactive   give this command's stdin to the program as it comes,\n"
	       "                      end of file included (without it: no stdin at all)\n"
	       "  -t, --tty           run the program on a terminal of this terminal's size\n"
	       "                      (stdin must be one): keys go to it, Ctrl-C included,\n"
	       "                      it follows resizes, stdout and stderr are merged;\n"
	       "                      -t implies -i, and -it is accepted as in docker\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "-i and -t take a program (not --command or --code), not a Wasm one, and\n"
	       "keep the --timeout of every run; the local terminal is restored however\n"
	       "the run ends.\n"
	       "\n"
	       "Without --json, a timeout, an out-of-memory kill and each isolation layer\n"
	       "skipped under --allow-degraded are said in one line on stderr; --json has\n"
	       "them as \"timed_out\", \"oom_killed\" and \"skipped_layers\".\n"
	       "\n"
	       "Exit status: the program's own; 128+N when killed by signal N; 124 on\n"
	       "timeout; 125 when the arguments are wrong or the sandbox cannot be made;\n"
	       "126 when the program cannot be executed; 127 when it is not found;\n"
	       "134 when a Wasm program trapped.\n",
	       cli_sandbox_options_help);
}

struct run_request {
	struct cli_sandbox_opts sb;
	int json;
	int help;
	int audit;
	int interactive;	/* -i: our stdin streams to the program */
	int tty;		/* -t: the program runs on a terminal of ours */
	const char *command;	/* --command, borrowed */
	const char *language;	/* --code, borrowed */
	char **operands;	/* program and arguments, or the source: borrowed */
	int n_operands;
};

/* Delivery state of the streamed output, per fd (1 and 2). */
struct stream_sink {
	int broken[3];
};

/*
 * Output callback: copies payload bytes to our stdout or stderr at once.
 * A reader that went away (EPIPE) silences that stream; the payload keeps
 * running and its result still counts.
 */
static void on_output(mbx_stream_t stream, const uint8_t *data, size_t len, void *userdata)
{
	struct stream_sink *sink = userdata;
	int fd = stream == MBX_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO;

	if (sink->broken[fd])
		return;
	if (cli_write_all(fd, data, len) < 0) {
		sink->broken[fd] = 1;
		if (errno != EPIPE && fd == STDOUT_FILENO)
			fprintf(stderr, "mimobox: warning: cannot write the output: %s\n",
				strerror(errno));
	}
}

/*
 * Whether --json appears among the options, so that usage errors found
 * before it (or instead of it) are reported as JSON too. Unknown words are
 * stepped over.
 */
static int wants_json(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	const char *value;
	int id;

	while ((id = cli_next_option(&a, run_options, &value, NULL, 0)) != CLI_OPT_END) {
		if (id == OPT_JSON)
			return 1;
		if (id == CLI_OPT_BAD)
			a.next++;
	}
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether the program of `r` runs on the wasm backend (as the library routes it). */
static int on_wasm(const struct run_request *r)
{
	if (r->sb.isolation == MBX_ISOLATION_WASM)
		return 1;
	return r->sb.isolation == MBX_ISOLATION_AUTO && r->n_operands > 0 && !r->command && !r->language &&
	       (ends_with(r->operands[0], ".wasm") || ends_with(r->operands[0], ".wat"));
}

/* Parses the command line into `r`; 0, or -1 after reporting a usage error. */
static int parse(struct run_request *r, int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id;

	r->json = wants_json(argc, argv);
	while ((id = cli_next_option(&a, run_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		if (id == CLI_OPT_BAD) {
			cli_usage_error(r->json, "run", "%s", why);
			return -1;
		}
		if (id < CLI_OPT_SANDBOX_END) {
			if (cli_sandbox_opts_set(&r->sb, id, value, why, sizeof(why)) < 0) {
				cli_usage_error(r->json, "run", "%s", why);
				return -1;
			}
			continue;
		}
		switch (id) {
		case OPT_JSON:
			r->json = 1;
			break;
		case OPT_COMMAND:
			r->command = value;
			break;
		case OPT_CODE:
			r->language = value;
			break;
		case OPT_AUDIT:
			r->audit = 1;
			break;
		case OPT_INTERACTIVE:
			r->interactive = 1;
			break;
		case OPT_TTY:
			r->tty = 1;
			break;
		case CLI_OPT_HELP:
			r->help = 1;
			return 0;
		default:
			cli_usage_error(r->json, "run", "internal error: option %d", id);
			return -1;
		}
	}
	r->operands = argv + a.next;
	r->n_operands = argc - a.next;

	if (r->command && r->language) {
		cli_usage_error(r->json, "run", "--command and --code cannot be combined");
		return -1;
	}
	if (r->command && r->n_operands > 0) {
		cli_usage_error(r->json, "run", "--command takes the whole command line; "
				"unexpected argument `%s`", r->operands[0]);
		return -1;
	}
	if (r->command && r->command[0] == '\0') {
		cli_usage_error(r->json, "run", "--command needs a non-empty command line");
		return -1;
	}
	if (r->language && r->n_operands > 1) {
		cli_usage_error(r->json, "run", "--code takes at most one argument, the source "
				"code; unexpected `%s`", r->operands[1]);
		return -1;
	}
	if (!r->command && !r->language && r->n_operands == 0) {
		cli_usage_error(r->json, "run", "no program given "
				"(expected `mimobox run [OPTIONS] -- PROGRAM [ARG...]`)");
		return -1;
	}
	if (!r->command && !r->language && r->operands[0][0] == '\0') {
		cli_usage_error(r->json, "run", "the program name is empty");
		return -1;
	}
	if (r->tty && r->json) {
		cli_usage_error(r->json, "run", "-t cannot go with --json: a terminal merges stdout and stderr");
		return -1;
	}
	if ((r->interactive || r->tty) && (r->command || r->language)) {
		cli_usage_error(r->json, "run", "%s takes a program (`-- PROGRAM [ARG...]`), not %s",
				r->tty ? "-t" : "-i", r->command ? "--command" : "--code");
		return -1;
	}
	if ((r->interactive || r->tty) && on_wasm(r)) {
		cli_usage_error(r->json, "run", "%s is not available on the wasm backend: a Wasm program %s; "
				"run it without -i/-t (its stdin is then empty)", r->tty ? "-t" : "-i",
				r->tty ? "has no terminal" : "gets no streamed stdin");
		return -1;
	}
	if (r->tty && !isatty(STDIN_FILENO)) {
		cli_usage_error(r->json, "run", "-t needs a terminal on stdin; to give the program "
				"a pipe or a file, use -i alone");
		return -1;
	}
	return 0;
}

/*
 * Reads all of stdin into a new NUL-terminated string. Returns it (the
 * caller frees it), or NULL after reporting the problem.
 */
static char *read_stdin(int json)
{
	struct cli_buf b = CLI_BUF_INIT;
	char chunk[65536];
	ssize_t n;

	cli_buf_add(&b, "", 0);
	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_report(json, MBX_ESYS, "cannot read the source code from stdin",
				   NULL, NULL, errno);
			cli_buf_free(&b);
			return NULL;
		}
		cli_buf_add(&b, chunk, (size_t)n);
	}
	if (b.failed) {
		cli_report(json, MBX_ENOMEM, "out of memory reading the source code", NULL, NULL, ENOMEM);
		cli_buf_free(&b);
		return NULL;
	}
	if (strlen(b.data) != b.len) {
		cli_report(json, MBX_EINVAL, "the source code on stdin contains a NUL byte", NULL, NULL, 0);
		cli_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/*
 * The layers a result (or, without one, a sandbox) says were skipped, into
 * skips[] (32 at most); their count.
 */
size_t cli_skipped_of(const mbx_result *res, const mbx_sandbox *sb, struct cli_skip *skips)
{
	uint32_t bits = res ? mbx_result_skipped(res) : mbx_sandbox_skipped(sb), bit;
	size_t n = 0;
	int i;

	for (i = 0; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if (!(bits & bit))
			continue;
		skips[n].layer = mbx_layer_name(bit) ? mbx_layer_name(bit) : "unknown";
		skips[n].reason = res ? mbx_result_skip_reason(res, bit) : mbx_sandbox_skip_reason(sb, bit);
		n++;
	}
	return n;
}

/* What every outcome of `run` has: the limits that applied and the skipped layers. */
static void outcome_base(const mbx_result *res, const mbx_sandbox *box, const struct cli_sandbox_opts *sb,
			 struct cli_skip *skips, struct cli_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = (sb->set & CLI_SET_TIMEOUT) ? sb->timeout_ms : CLI_DEFAULT_TIMEOUT_MS;
	o->timeout_opt = "--timeout";
	o->memory_limit = (sb->set & CLI_SET_MEMORY) ? sb->memory_bytes : CLI_DEFAULT_MEMORY;
	o->memory_opt = "--memory";
	o->skipped = skips;
	o->n_skipped = cli_skipped_of(res, box, skips);
}

/* The outcome of a finished run. */
static void outcome_of(const mbx_result *res, const struct cli_sandbox_opts *sb, struct cli_skip *skips,
		       struct cli_outcome *o)
{
	outcome_base(res, NULL, sb, skips, o);
	o->exit_code = mbx_result_exit_code(res);
	o->signal = mbx_result_signal(res);
	o->timed_out = mbx_result_timed_out(res);
	o->oom_killed = mbx_result_oom_killed(res);
	o->out = mbx_result_stdout(res, &o->out_len);
	o->err = mbx_result_stderr(res, &o->err_len);
	o->out_truncated = mbx_result_stdout_truncated(res);
	o->err_truncated = mbx_result_stderr_truncated(res);
	o->elapsed_us = mbx_result_elapsed_us(res);
	o->peak_memory_bytes = mbx_result_peak_memory_bytes(res);
	o->cpu_time_us = mbx_result_cpu_time_us(res);
	o->trap = mbx_result_trap(res);
	o->isolation = mbx_isolation_name(mbx_result_isolation(res));
	o->limits = mbx_result_limits_mechanism(res);
	o->limits_partial = mbx_result_limits_partial(res);
}

/*
 * The network log of `sb` as JSON (`, "network_log": [...]`) into `b`, or
 * as lines on stderr. Returns 0, or -1 when the log cannot be had.
 */
static int print_net_log(const mbx_sandbox *sb, int json, struct cli_buf *b, mbx_error **err)
{
	mbx_net_log *log = NULL;
	size_t i, n;
	int rc;

	rc = mbx_sandbox_net_log(sb, &log, err);
	if (rc != MBX_OK)
		return rc;
	n = mbx_net_log_count(log);
	if (json)
		cli_buf_puts(b, ", \"network_log\": [");
	for (i = 0; i < n; i++) {
		struct cli_net_entry e = {
			mbx_net_log_source(log, i), mbx_net_log_method(log, i), mbx_net_log_host(log, i),
			mbx_net_log_address(log, i), mbx_net_verdict_name(mbx_net_log_verdict(log, i)),
			mbx_net_log_reason(log, i), mbx_net_log_time_us(log, i), mbx_net_log_bytes_up(log, i),
			mbx_net_log_bytes_down(log, i), mbx_net_log_port(log, i), mbx_net_log_status(log, i)
		};

		cli_net_entry_report(b, json, i, &e);
	}
	if (json)
		cli_buf_printf(b, "], \"network_log_dropped\": %llu", (unsigned long long)mbx_net_log_dropped(log));
	else if (mbx_net_log_dropped(log))
		fprintf(stderr, "mimobox: net: %llu older entries were not kept\n",
			(unsigned long long)mbx_net_log_dropped(log));
	mbx_net_log_free(log);
	return MBX_OK;
}

/*
 * Runs --command, --code or a program with --audit: these need a sandbox
 * handle, as the library has no one-shot form of them. With --audit the
 * network log goes into `audit` (JSON) or to stderr. Returns the library
 * status.
 */
static int run_in_sandbox(const struct run_request *r, const mbx_config *cfg, const char *code,
			  const mbx_exec_options *opts, mbx_result **res, struct cli_buf *audit, mbx_error **err)
{
	mbx_sandbox *sb = NULL;
	int rc;

	rc = mbx_sandbox_new(&sb, cfg, err);
	if (rc != MBX_OK)
		return rc;
	if (r->command)
		rc = mbx_sandbox_exec_command(sb, r->command, opts, res, err);
	else if (r->language)
		rc = mbx_sandbox_exec_code(sb, r->language, code, opts, res, err);
	else
		rc = mbx_sandbox_exec(sb, (const char *const *)r->operands, opts, res, err);
	if (rc == MBX_OK && r->audit)
		rc = print_net_log(sb, r->json, audit, err);
	mbx_sandbox_free(sb);
	return rc;
}

/* ---- -i and -t: the program as a process of the sandbox, fed as we go ---- */

/* How long one wait for stdin or for the program's events lasts (ms). */
#define LIVE_SLICE_MS 10
#define LIVE_IDLE_MS 100

/* A signal that asks us to end (SIGTERM, SIGHUP, SIGINT, SIGQUIT), or 0. */
static volatile sig_atomic_t live_signal;

static void on_live_signal(int sig)
{
	cli_term_restore();
	live_signal = sig;
}

/*
 * While a program runs with -i/-t, the signals that would end us end it
 * first: the loop sees the flag, the sandbox is destroyed as on any other
 * way out, and the signal is raised again at the end (live_reraise()).
 */
static void live_catch_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_live_signal;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Ends us with the signal that came during the run, if one did. */
static void live_reraise(void)
{
	int sig = live_signal;

	if (!sig)
		return;
	signal(sig, SIG_DFL);
	raise(sig);
}

struct live_run {
	const struct run_request *r;
	mbx_sandbox *sb;
	mbx_process *proc;
	int in_fd;		/* our stdin while it goes to the program, else -1 */
	uint8_t in[65536];	/* read from it, not yet taken by the sandbox: in[in_off, in_len) */
	size_t in_off, in_len;
	int winch_fd;		/* readable on SIGWINCH (-t), else -1 */
	uint64_t limit;		/* output kept or shown per stream (--output-limit) */
	uint64_t sent[3];	/* per fd 1 and 2 */
	int cut[3];
	struct stream_sink sink;
	struct cli_buf out, err;	/* --json: the output */
	mbx_event *last;	/* the EXIT or TIMED_OUT event */
	uint64_t ooms_at_start;
};

/* Output of the program: to our stdout/stderr, or kept for --json, up to the output limit. */
static void live_output(struct live_run *lv, mbx_event_kind_t kind, const uint8_t *data, size_t len)
{
	int fd = kind == MBX_EVENT_STDERR ? STDERR_FILENO : STDOUT_FILENO;

	len = cli_output_fit(&lv->sent[fd], &lv->cut[fd], lv->limit, len);
	if (len == 0)
		return;
	if (lv->r->json)
		cli_buf_add(fd == STDERR_FILENO ? &lv->err : &lv->out, data, len);
	else
		on_output(fd == STDERR_FILENO ? MBX_STREAM_STDERR : MBX_STREAM_STDOUT, data, len, &lv->sink);
}

/* Stops forwarding our stdin; the program sees end of file. */
static int live_close_stdin(struct live_run *lv, mbx_error **err)
{
	int rc;

	lv->in_fd = -1;
	rc = mbx_process_close_stdin(lv->proc, err);
	if (rc == MBX_ESTATE) {
		/* It ended already: its exit is on the way. */
		mbx_error_free(*err);
		*err = NULL;
		return MBX_OK;
	}
	return rc;
}

/*
 * Passes what we read and the sandbox did not take yet on, as far as its
 * stdin window goes (the rest waits for credit: mbx_process_next_event()
 * returns early when it comes).
 */
static int live_flush_input(struct live_run *lv, mbx_error **err)
{
	size_t n = 0;
	int rc;

	rc = mbx_process_write_stdin_some(lv->proc, lv->in + lv->in_off, lv->in_len - lv->in_off, &n, err);
	if (rc == MBX_ESTATE) {
		/* It ended, or closed its stdin: what is left stays unread. */
		mbx_error_free(*err);
		*err = NULL;
		lv->in_fd = -1;
		lv->in_off = lv->in_len = 0;
		return MBX_OK;
	}
	lv->in_off += n;
	if (lv->in_off == lv->in_len)
		lv->in_off = lv->in_len = 0;
	return rc;
}

/* Our stdin is readable: reads a piece and passes it on. */
static int live_forward(struct live_run *lv, mbx_error **err)
{
	ssize_t n;

	do
		n = read(lv->in_fd, lv->in, sizeof(lv->in));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return MBX_OK;
	if (n <= 0)
		return live_close_stdin(lv, err);	/* end of file, or a stdin that broke (hangup) */
	lv->in_off = 0;
	lv->in_len = (size_t)n;
	return live_flush_input(lv, err);
}

/* Moves bytes between us and the program until its last event (lv->last). */
static int live_pump(struct live_run *lv, mbx_error **err)
{
	struct pollfd pfd[2];
	const uint8_t *data;
	mbx_event *ev;
	size_t len;
	uint16_t rows, cols;
	int rc, i, n, wait_ms, want_input;

	while (!lv->last) {
		if (live_signal) {
			(void)mbx_process_kill(lv->proc, NULL);
			return MBX_OK;
		}
		if (lv->in_len > lv->in_off) {
			rc = live_flush_input(lv, err);
			if (rc != MBX_OK)
				return rc;
		}
		/* Our stdin is read only once the sandbox took what came before. */
		want_input = lv->in_fd >= 0 && lv->in_len == 0;
		n = 0;
		if (want_input) {
			pfd[n].fd = lv->in_fd;
			pfd[n++].events = POLLIN;
		}
		if (lv->winch_fd >= 0) {
			pfd[n].fd = lv->winch_fd;
			pfd[n++].events = POLLIN;
		}
		/* Waiting for stdin, take the events that came meanwhile at once. */
		if (poll(pfd, (nfds_t)n, want_input ? LIVE_SLICE_MS : 0) > 0) {
			for (i = 0; i < n; i++) {
				if (!pfd[i].revents)
					continue;
				if (pfd[i].fd == lv->winch_fd) {
					cli_term_winch_drain();
					cli_term_size(&rows, &cols);
					rc = mbx_process_resize(lv->proc, rows, cols, err);
				} else {
					rc = live_forward(lv, err);
				}
				if (rc != MBX_OK && rc != MBX_ESTATE)
					return rc;
				mbx_error_free(*err);
				*err = NULL;
			}
		}
		/* Without stdin to wait for, the wait is for the program (or for stdin credit). */
		wait_ms = want_input ? 0 : lv->in_fd >= 0 ? LIVE_SLICE_MS : LIVE_IDLE_MS;
		for (i = 0; i < 64 && !lv->last; i++) {
			ev = NULL;
			rc = mbx_process_next_event(lv->proc, i == 0 ? wait_ms : 0, &ev, err);
			if (rc != MBX_OK)
				return rc;
			mbx_error_free(*err);	/* a wait that ran out may leave one */
			*err = NULL;
			if (!ev)
				break;
			if (mbx_event_kind(ev) == MBX_EVENT_EXIT || mbx_event_kind(ev) == MBX_EVENT_TIMED_OUT) {
				lv->last = ev;
				break;
			}
			data = mbx_event_data(ev, &len);
			if (data && len)
				live_output(lv, mbx_event_kind(ev), data, len);
			mbx_event_free(ev);
		}
	}
	return MBX_OK;
}

/*
 * Starts the program of `r` with a stdin pipe (-i) or on a terminal of our
 * terminal's size (-t), with the local TERM unless --env sets one.
 */
static int live_spawn(struct live_run *lv, mbx_error **err)
{
	const struct run_request *r = lv->r;
	mbx_spawn_options *so = NULL;
	const char *term = getenv("TERM");
	uint16_t rows, cols;
	size_t i;
	int rc;

	rc = mbx_spawn_options_new(&so, err);
	if (rc != MBX_OK)
		return rc;
	if (r->tty) {
		cli_term_size(&rows, &cols);
		rc = mbx_spawn_options_set_pty(so, rows, cols, err);
		for (i = 0; i < r->sb.n_env && term; i++)
			if (strcmp(r->sb.env[i].name, "TERM") == 0)
				term = NULL;
		if (rc == MBX_OK && term && term[0])
			rc = mbx_spawn_options_set_env(so, "TERM", term, err);
	} else {
		mbx_spawn_options_set_stdin(so, 1);
	}
	if (rc == MBX_OK) {
		lv->ooms_at_start = mbx_sandbox_oom_kills(lv->sb);
		rc = mbx_sandbox_spawn(lv->sb, (const char *const *)r->operands, so, &lv->proc, err);
	}
	mbx_spawn_options_free(so);
	return rc;
}

/* The outcome of a program run with -i/-t: its last event and the sandbox. */
static void live_outcome(struct live_run *lv, struct cli_skip *skips, struct cli_outcome *o)
{
	const mbx_event *ev = lv->last;

	outcome_base(NULL, lv->sb, &lv->r->sb, skips, o);
	o->timed_out = mbx_event_kind(ev) == MBX_EVENT_TIMED_OUT;
	o->exit_code = o->timed_out ? -1 : mbx_event_exit_code(ev);
	o->signal = mbx_event_signal(ev);
	/* A SIGKILL while the sandbox's OOM count grew: the memory limit's. */
	o->oom_killed = !o->timed_out && o->signal == SIGKILL && mbx_sandbox_oom_kills(lv->sb) > lv->ooms_at_start;
	o->out = (const uint8_t *)lv->out.data;
	o->out_len = lv->out.len;
	o->err = (const uint8_t *)lv->err.data;
	o->err_len = lv->err.len;
	o->out_truncated = lv->cut[STDOUT_FILENO];
	o->err_truncated = lv->cut[STDERR_FILENO];
	o->elapsed_us = mbx_event_elapsed_us(ev);
	o->peak_memory_bytes = mbx_event_peak_memory_bytes(ev);
	o->cpu_time_us = mbx_event_cpu_time_us(ev);
	o->isolation = mbx_isolation_name(mbx_sandbox_isolation(lv->sb));
	o->limits = mbx_sandbox_limits_mechanism(lv->sb);
	o->limits_partial = mbx_sandbox_limits_partial(lv->sb);
}

/*
 * -i / -t: makes the sandbox, runs the program fed from our stdin (on a
 * terminal of ours, raw while it runs, with -t), and fills `o` once it
 * ended. Returns the library status; MBX_ENOTSUP (reported here, *err
 * unset) on a backend that cannot do it.
 */
static int run_live(struct live_run *lv, const mbx_config *cfg, struct cli_skip *skips, struct cli_outcome *o,
		    struct cli_buf *audit, mbx_error **err)
{
	const struct run_request *r = lv->r;
	int rc;

	rc = mbx_sandbox_new(&lv->sb, cfg, err);
	if (rc != MBX_OK)
		return rc;
	lv->limit = (r->sb.set & CLI_SET_OUTPUT_LIMIT) ? r->sb.output_limit : CLI_DEFAULT_OUTPUT_LIMIT;
	if (r->tty) {
		lv->winch_fd = cli_term_watch_winch();
		if (lv->winch_fd < 0) {
			cli_report(0, MBX_ESYS, "cannot watch the terminal's size", NULL, NULL, errno);
			return MBX_ENOTSUP;
		}
		/* Raw from now on: keys typed while the program starts are its, not echoed here. */
		if (cli_term_raw() < 0) {
			cli_term_restore();
			cli_report(0, MBX_ESYS, "cannot put the terminal in raw mode", NULL, NULL, errno);
			return MBX_ENOTSUP;
		}
	}
	live_catch_signals();	/* after cli_term_raw(), whose handlers it replaces */
	rc = live_spawn(lv, err);
	if (rc == MBX_OK) {
		lv->in_fd = STDIN_FILENO;
		rc = live_pump(lv, err);
	}
	cli_term_restore();
	if (rc == MBX_OK && (lv->out.failed || lv->err.failed)) {
		cli_report(r->json, MBX_ENOMEM, "out of memory collecting the output", NULL, NULL, ENOMEM);
		return MBX_ENOTSUP;
	}
	if (rc == MBX_OK && !lv->last)
		return MBX_OK;	/* a signal ended the run */
	if (rc == MBX_OK)
		live_outcome(lv, skips, o);
	if (rc == MBX_OK && r->audit)
		rc = print_net_log(lv->sb, r->json, audit, err);
	return rc;
}

int cli_cmd_run(int argc, char **argv)
{
	struct run_request r;
	struct stream_sink sink = { { 0, 0, 0 } };
	struct cli_outcome outcome;
	struct cli_skip skips[32];
	struct cli_buf audit = CLI_BUF_INIT;
	struct live_run lv;
	mbx_config *cfg = NULL;
	mbx_exec_options *opts = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	char *code = NULL;
	const char *source = NULL;
	char what[CLI_WHY_MAX];
	int rc, status = CLI_EXIT_FAILED;

	memset(&r, 0, sizeof(r));
	memset(&lv, 0, sizeof(lv));
	lv.r = &r;
	lv.in_fd = lv.winch_fd = -1;
	cli_sandbox_opts_init(&r.sb);
	if (parse(&r, argc, argv) < 0)
		goto out;
	if (r.help) {
		usage();
		status = 0;
		goto out;
	}

	if (r.language) {
		if (r.n_operands == 1 && strcmp(r.operands[0], "-") != 0) {
			source = r.operands[0];
		} else {
			code = read_stdin(r.json);
			if (!code)
				goto out;
			source = code;
		}
	}

	/* Failures up to the run come from the arguments: 125, never 126/127. */
	rc = cli_build_config(&r.sb, &cfg, what, sizeof(what), &err);
	if (rc != MBX_OK) {
		cli_report_config(r.json, "run", rc, err, what);
		goto out;
	}
	rc = mbx_exec_options_new(&opts, &err);
	if (rc != MBX_OK) {
		cli_report_mbx(r.json, rc, err);
		goto out;
	}
	if (!r.json)
		mbx_exec_options_set_output_cb(opts, on_output, &sink);
	/* One execute, then the sandbox goes: its mini-init need not stay. */
	mbx_exec_options_set_last(opts, 1);

	if (r.interactive || r.tty)
		rc = run_live(&lv, cfg, skips, &outcome, &audit, &err);
	else if (r.command || r.language || r.audit)
		rc = run_in_sandbox(&r, cfg, source, opts, &res, &audit, &err);
	else
		rc = mbx_run(cfg, (const char *const *)r.operands, opts, &res, &err);

	if (rc != MBX_OK) {
		if (err || !(r.interactive || r.tty))
			cli_report_mbx(r.json, rc, err);	/* else reported already */
		status = cli_failure_status(rc);
		goto out;
	}
	if (res)
		outcome_of(res, &r.sb, skips, &outcome);
	else if (!lv.last) {
		status = 128 + live_signal;	/* when the signal does not end us after all */
		goto out;
	}
	if (audit.failed) {
		cli_report(r.json, MBX_ENOMEM, "out of memory formatting the network log", NULL, NULL, ENOMEM);
		goto out;
	}
	outcome.extra_json = audit.data;
	status = cli_outcome_status(&outcome);
	/* A limit the caller asked for that holds only in part: one line. */
	if ((r.sb.set & (CLI_SET_MEMORY | CLI_SET_DISK)) && outcome.limits_partial)
		fprintf(stderr, "mimobox: warning: limits only partly enforced (%s): %s\n", outcome.limits,
			outcome.limits_partial);
	if (r.json) {
		if (cli_outcome_print_json(&outcome) < 0)
			status = CLI_EXIT_FAILED;
	} else {
		/* The output went by already; say what it cannot show. */
		if (outcome.out_truncated || outcome.err_truncated)
			fprintf(stderr, "\nmimobox: warning: output beyond the output limit "
					"was dropped (see --output-limit)\n");
		if (outcome.trap)
			fprintf(stderr, "mimobox: %s\n", outcome.trap);
		cli_outcome_explain(&outcome);
	}

out:
	cli_term_restore();
	mbx_event_free(lv.last);
	mbx_process_free(lv.proc);
	mbx_sandbox_free(lv.sb);
	cli_buf_free(&lv.out);
	cli_buf_free(&lv.err);
	mbx_result_free(res);
	mbx_error_free(err);
	mbx_exec_options_free(opts);
	mbx_config_free(cfg);
	free(code);
	cli_buf_free(&audit);
	cli_sandbox_opts_free(&r.sb);
	live_reraise();
	return status;
}

/* ---- through a server: POST /v1/run (docs/cli.md) ---- */

/* What -i gives the program through the server: stdin read whole, up to this. */
#define REMOTE_STDIN_MAX ((size_t)640 << 10)

int cli_cmd_run_remote(struct cli_remote *rem, int argc, char **argv)
{
	struct run_request r;
	struct cli_buf body = CLI_BUF_INIT, create = CLI_BUF_INIT;
	uint8_t *in = NULL;
	size_t in_len = 0;
	int status = CLI_EXIT_FAILED;

	memset(&r, 0, sizeof(r));
	cli_sandbox_opts_init(&r.sb);
	if (parse(&r, argc, argv) < 0)
		goto out;
	if (r.help) {
		usage();
		status = 0;
		goto out;
	}
	if (r.tty && !r.command && !r.language && !r.audit && !on_wasm(&r)) {
		/* A sandbox of its own and the program on its terminal, over the server's WebSocket (remote_pty.c). */
		status = cli_remote_run_tty(rem, &r.sb, r.operands, r.n_operands);
		goto out;
	}
	if (r.tty || r.command || r.language || on_wasm(&r)) {
		status = cli_remote_unavailable(rem, r.json, r.tty ? "run -t" : r.command ? "run --command" :
						r.language ? "run --code" : "a Wasm program (a host file)",
						NULL);
		goto out;
	}
	cli_buf_puts(&body, "{\"argv\": [");
	for (int i = 0; i < r.n_operands; i++) {
		cli_buf_puts(&body, i ? ", " : "");
		cli_json_cstring(&body, r.operands[i]);
	}
	cli_buf_puts(&body, "]");
	/* --audit: the options make a sandbox of the run's own (cli_remote_run_audit()). */
	cli_buf_puts(&create, "{\"ttl_ms\": 60000");
	if (cli_remote_opts_json(rem, r.json, &r.sb, r.audit ? &create : &body) < 0) {
		status = CLI_EXIT_USAGE;
		goto out;
	}
	cli_buf_puts(&create, "}");
	if (r.interactive) {
		/* The API takes stdin whole: read it to its end, within the request's limit. */
		in = malloc(REMOTE_STDIN_MAX + 1);
		if (!in) {
			cli_report(r.json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
			goto out;
		}
		for (;;) {
			ssize_t n = read(STDIN_FILENO, in + in_len, REMOTE_STDIN_MAX + 1 - in_len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				cli_report(r.json, MBX_ESYS, "cannot read stdin", NULL, NULL, errno);
				goto out;
			}
			if (n == 0)
				break;
			in_len += (size_t)n;
			if (in_len > REMOTE_STDIN_MAX) {
				cli_report(r.json, MBX_ETOOBIG, "run -i through the server takes at most 640 KiB of stdin",
					   "set MIMOBOX_HOST=local to stream larger input to the program", NULL, 0);
				goto out;
			}
		}
		cli_buf_puts(&body, ", \"stdin_b64\": ");
		cli_json_base64(&body, in, in_len);
	}
	cli_buf_puts(&body, "}");
	if (r.audit)
		status = cli_remote_run_audit(rem, r.json, &create, &body);
	else
		status = cli_remote_run_body(rem, r.json, &body);
out:
	free(in);
	cli_buf_free(&create);
	cli_buf_free(&body);
	cli_sandbox_opts_free(&r.sb);
	return status;
}
