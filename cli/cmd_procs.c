/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verbs about what runs in a named sandbox and how it is set up:
 * `logs` (the output a background process of `exec -d` left with the
 * supervisor), `kill` (a signal to one of its processes), `ps NAME` (its
 * processes) and `inspect` (its settings and achieved layers). Each is one
 * request to the sandbox's supervisor (cli/supervisor_procs.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session.h"

enum { P_JSON = CLI_OPT_VERB, P_FOLLOW, P_SIGNAL };

static const struct cli_option logs_options[] = {
	{ "follow", 'f', 0, P_FOLLOW },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option kill_options[] = {
	{ "signal", 0, 1, P_SIGNAL },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option inspect_options[] = {
	{ "json", 0, 0, P_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/* The words of one verb: options anywhere, up to `max` operands. */
struct verb_args {
	const char *operands[2];
	int n;
	int json, follow, help;
	const char *signal;
};

/* Parses argv; 0, or -1 after reporting a usage error. */
static int parse_verb(const char *verb, int argc, char **argv, const struct cli_option *options, int max,
		      struct verb_args *v)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id;

	memset(v, 0, sizeof(*v));
	v->json = cli_wants_json(argc, argv, options, max);
	for (;;) {
		while ((id = cli_next_option(&a, options, &value, why, sizeof(why))) != CLI_OPT_END) {
			switch (id) {
			case CLI_OPT_BAD:
				cli_usage_error(v->json, verb, "%s", why);
				return -1;
			case CLI_OPT_HELP:
				v->help = 1;
				return 0;
			case P_JSON:
				v->json = 1;
				break;
			case P_FOLLOW:
				v->follow = 1;
				break;
			case P_SIGNAL:
				v->signal = value;
				break;
			default:
				break;
			}
		}
		if (a.next >= argc)
			break;
		if (v->n == max) {
			cli_usage_error(v->json, verb, "unexpected argument `%s`", argv[a.next]);
			return -1;
		}
		v->operands[v->n++] = argv[a.next++];
	}
	return 0;
}

int cli_parse_proc_id(const char *verb, int json, const char *s, uint32_t *id)
{
	char why[CLI_WHY_MAX];
	uint64_t v;

	if (cli_parse_uint(s, 1, UINT32_MAX, &v, why, sizeof(why)) < 0) {
		cli_usage_error(json, verb, "invalid process id `%s`: %s (see `mimobox ps NAME`)", s, why);
		return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

/*
 * Connects to `name` and sends the one frame in `b`; 0 with the connection
 * open, or an exit status after reporting.
 */
static int send_request(const char *verb, const char *name, int json, struct wire_conn *conn, struct cli_buf *b)
{
	int rc = cli_session_open(verb, name, json, conn, NULL);

	if (rc != 0) {
		cli_buf_free(b);
		return rc;
	}
	if (b->failed || cli_session_send(conn, b) < 0) {
		rc = errno;
		cli_buf_free(b);
		wire_conn_close(conn);
		return cli_session_lost(json, name, rc);
	}
	cli_buf_free(b);
	return 0;
}

/* Waits for the answer to a request; 0 with *f, or an exit status after reporting (and closing). */
static int recv_answer(const char *name, int json, struct wire_conn *conn, struct wire_frame *f, uint8_t want)
{
	int rc = wire_conn_recv(conn, f, -1), status;

	if (rc == 1 && f->type == want)
		return 0;
	if (rc == 1 && f->type == WIRE_ERROR)
		status = cli_session_file_status(cli_session_report_error(json, &f->r));
	else
		status = cli_session_lost(json, name, rc < 0 ? errno : rc == 0 ? 0 : EPROTO);
	wire_conn_close(conn);
	return status;
}

/* ---- logs ---- */

int cli_cmd_logs(int argc, char **argv)
{
	struct verb_args v;
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	const uint8_t *data;
	uint32_t id = 0;
	size_t start, len;
	int rc, status = 0;

	if (parse_verb("logs", argc, argv, logs_options, 2, &v) < 0)
		return CLI_EXIT_FAILED;
	if (v.help) {
		printf("Usage: mimobox logs NAME [ID] [-f]\n"
		       "\n"
		       "Print the output of a background process of the named sandbox (started\n"
		       "with `mimobox exec -d`): its stdout and stderr as they came, the last\n"
		       "1 MiB of them (the supervisor keeps that much per process; older output\n"
		       "is dropped). ID is the process id `exec -d` printed (see `mimobox ps\n"
		       "NAME`); it may be left out when the sandbox has one background process.\n"
		       "\n"
		       "Options:\n"
		       "  -f, --follow        keep printing new output until the process ends\n"
		       "                      (or this command is interrupted; the process stays)\n"
		       "  -h, --help          show this help\n"
		       "\n"
		       "Exit status: 0; 1 when there is no such process; 125 when the arguments\n"
		       "are wrong or the sandbox is unknown.\n");
		return 0;
	}
	if (v.n == 0) {
		cli_usage_error(0, "logs", "no sandbox name given (expected `mimobox logs NAME [ID]`)");
		return CLI_EXIT_FAILED;
	}
	if (v.n == 2 && cli_parse_proc_id("logs", 0, v.operands[1], &id) < 0)
		return CLI_EXIT_FAILED;
	start = wire_begin(&b, WIRE_LOGS);
	wire_u32(&b, id);
	wire_u8(&b, (uint8_t)v.follow);
	(void)wire_end(&b, start);
	rc = send_request("logs", v.operands[0], 0, &conn, &b);
	if (rc != 0)
		return rc;
	for (;;) {
		rc = wire_conn_recv(&conn, &f, -1);
		if (rc == 1 && f.type == WIRE_DATA) {
			len = wire_get_bytes(&f.r, &data);
			if (wire_done(&f.r) < 0) {
				status = cli_session_lost(0, v.operands[0], EPROTO);
				break;
			}
			if (cli_write_all(STDOUT_FILENO, data, len) < 0) {
				/* Nobody reads us any more (`logs -f | head`): done. */
				if (errno != EPIPE)
					fprintf(stderr, "mimobox: error: cannot write the output: %s\n", strerror(errno));
				status = errno == EPIPE ? 0 : CLI_EXIT_FAILED;
				break;
			}
			continue;
		}
		if (rc == 1 && f.type == WIRE_END)
			break;
		if (rc == 1 && f.type == WIRE_ERROR)
			status = cli_session_file_status(cli_session_report_error(0, &f.r));
		else
			status = cli_session_lost(0, v.operands[0], rc < 0 ? errno : rc == 0 ? 0 : EPROTO);
		break;
	}
	wire_conn_close(&conn);
	return status;
}

/* ---- kill ---- */

int cli_cmd_kill(int argc, char **argv)
{
	struct verb_args v;
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	char why[CLI_WHY_MAX];
	uint32_t id;
	size_t start;
	int sig = 0, rc;

	if (parse_verb("kill", argc, argv, kill_options, 2, &v) < 0)
		return CLI_EXIT_FAILED;
	if (v.help) {
		printf("Usage: mimobox kill NAME ID [--signal SIGNAL]\n"
		       "\n"
		       "End a process of the named sandbox: a background process of `exec -d`,\n"
		       "or the program of a running `exec` (see `mimobox ps NAME` for the ids).\n"
		       "Without --signal the process and everything it started are killed\n"
		       "(SIGKILL to its whole process tree).\n"
		       "\n"
		       "Options:\n"
		       "  --signal SIGNAL     send only this signal to the process, by name (TERM,\n"
		       "                      SIGTERM, INT, HUP, USR1...) or number (15)\n"
		       "  -h, --help          show this help\n"
		       "\n"
		       "Exit status: 0 when the signal was sent; 1 when there is no such process\n"
		       "or it has ended; 125 when the arguments are wrong or the sandbox is unknown.\n");
		return 0;
	}
	if (v.n < 2) {
		cli_usage_error(0, "kill", v.n == 0 ? "no sandbox name given (expected `mimobox kill NAME ID`)" :
				"no process id given (expected `mimobox kill NAME ID`; see `mimobox ps NAME`)");
		return CLI_EXIT_FAILED;
	}
	if (cli_parse_proc_id("kill", 0, v.operands[1], &id) < 0)
		return CLI_EXIT_FAILED;
	if (v.signal && cli_parse_signal(v.signal, &sig, why, sizeof(why)) < 0) {
		cli_usage_error(0, "kill", "invalid value `%s` for --signal: %s", v.signal, why);
		return CLI_EXIT_FAILED;
	}
	start = wire_begin(&b, WIRE_KILL);
	wire_u32(&b, id);
	wire_u32(&b, (uint32_t)sig);
	(void)wire_end(&b, start);
	rc = send_request("kill", v.operands[0], 0, &conn, &b);
	if (rc != 0)
		return rc;
	rc = recv_answer(v.operands[0], 0, &conn, &f, WIRE_OK);
	if (rc != 0)
		return rc;
	wire_conn_close(&conn);
	return 0;
}

/* ---- inspect ---- */

int cli_cmd_inspect(int argc, char **argv)
{
	struct verb_args v;
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	const char *json_text, *text;
	int rc;

	if (parse_verb("inspect", argc, argv, inspect_options, 1, &v) < 0)
		return CLI_EXIT_FAILED;
	if (v.help) {
		printf("Usage: mimobox inspect NAME [--json]\n"
		       "\n"
		       "Show how the named sandbox is set up: isolation, trust, network policy,\n"
		       "limits (and how they are enforced), mounts, the names of its environment\n"
		       "variables (never their values), working directory, host name, creation\n"
		       "time, idle expiry (--ttl), and the isolation layers in force and skipped.\n"
		       "Inspecting does not count as use for --ttl.\n"
		       "\n"
		       "Options:\n"
		       "  --json              print one JSON object\n"
		       "  -h, --help          show this help\n"
		       "\n"
		       "Exit status: 0; 125 when the arguments are wrong or the sandbox is unknown.\n");
		return 0;
	}
	if (v.n == 0) {
		cli_usage_error(v.json, "inspect", "no sandbox name given (expected `mimobox inspect NAME`)");
		return CLI_EXIT_FAILED;
	}
	(void)wire_end(&b, wire_begin(&b, WIRE_INSPECT));
	rc = send_request("inspect", v.operands[0], v.json, &conn, &b);
	if (rc != 0)
		return rc;
	rc = recv_answer(v.operands[0], v.json, &conn, &f, WIRE_INSPECT_REPLY);
	if (rc != 0)
		return rc;
	json_text = wire_get_str(&f.r);
	text = wire_get_str(&f.r);
	if (wire_done(&f.r) < 0) {
		rc = cli_session_lost(v.json, v.operands[0], EPROTO);
	} else {
		const char *out = v.json ? json_text : text;

		if (cli_write_all(STDOUT_FILENO, out, strlen(out)) < 0 && errno != EPIPE)
			rc = CLI_EXIT_FAILED;
	}
	wire_conn_close(&conn);
	return rc;
}

/* ---- ps NAME ---- */

struct proc_row {
	uint32_t id;
	int background, running, code, sig, timed_out, oom;
	uint64_t age_ms, output;
	const char *command;
};

/* "running", "exited 0", "killed (signal 15)", "timed out", "out of memory". */
static void state_of(const struct proc_row *p, char *out, size_t len)
{
	if (p->running)
		snprintf(out, len, "running");
	else if (p->timed_out)
		snprintf(out, len, "timed out");
	else if (p->oom)
		snprintf(out, len, "out of memory");
	else if (p->sig > 0)
		snprintf(out, len, "killed (signal %d)", p->sig);
	else if (p->code >= 0)
		snprintf(out, len, "exited %d", p->code);
	else
		snprintf(out, len, "lost");
}

int cli_ps_processes(const char *name, int json)
{
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT, out = CLI_BUF_INIT;
	struct proc_row *rows = NULL;
	char state[48], age[32], size[32];
	uint32_t n, i;
	int rc;

	(void)wire_end(&b, wire_begin(&b, WIRE_PROCS));
	rc = send_request("ps", name, json, &conn, &b);
	if (rc != 0)
		return rc;
	rc = recv_answer(name, json, &conn, &f, WIRE_PROCS_REPLY);
	if (rc != 0)
		return rc;
	n = wire_get_u32(&f.r);
	if (f.r.bad || n > 65536 || (rows = calloc((size_t)n + 1, sizeof(*rows))) == NULL) {
		rc = cli_session_lost(json, name, EPROTO);
		goto out;
	}
	for (i = 0; i < n; i++) {
		rows[i].id = wire_get_u32(&f.r);
		rows[i].background = wire_get_u8(&f.r);
		rows[i].running = wire_get_u8(&f.r);
		rows[i].code = (int)(int32_t)wire_get_u32(&f.r);
		rows[i].sig = (int)(int32_t)wire_get_u32(&f.r);
		rows[i].timed_out = wire_get_u8(&f.r);
		rows[i].oom = wire_get_u8(&f.r);
		rows[i].age_ms = wire_get_u64(&f.r);
		rows[i].output = wire_get_u64(&f.r);
		rows[i].command = wire_get_str(&f.r);
	}
	if (wire_done(&f.r) < 0) {
		rc = cli_session_lost(json, name, EPROTO);
		goto out;
	}
	if (json) {
		cli_buf_puts(&out, "{\"ok\": true, \"name\": ");
		cli_json_cstring(&out, name);
		cli_buf_puts(&out, ", \"processes\": [");
	} else {
		cli_buf_printf(&out, "%-6s  %-4s  %-18s  %-7s  %-9s  %s\n", "ID", "KIND", "STATE", "AGE", "OUTPUT",
			       "COMMAND");
	}
	for (i = 0; i < n; i++) {
		const struct proc_row *p = &rows[i];

		state_of(p, state, sizeof(state));
		if (json) {
			cli_buf_printf(&out, "%s{\"id\": %u, \"background\": ", i ? ", " : "", (unsigned)p->id);
			cli_json_bool(&out, p->background);
			cli_buf_puts(&out, ", \"running\": ");
			cli_json_bool(&out, p->running);
			cli_buf_puts(&out, ", \"state\": ");
			cli_json_cstring(&out, state);
			cli_buf_puts(&out, ", \"exit_code\": ");
			if (p->running || p->sig > 0 || p->code < 0)
				cli_buf_puts(&out, "null");
			else
				cli_buf_printf(&out, "%d", p->code);
			cli_buf_printf(&out, ", \"signal\": %d, \"timed_out\": ", p->running ? 0 : p->sig);
			cli_json_bool(&out, p->timed_out);
			cli_buf_puts(&out, ", \"oom_killed\": ");
			cli_json_bool(&out, p->oom);
			cli_buf_printf(&out, ", \"age_s\": %llu, \"output_bytes\": %llu, \"command\": ",
				       (unsigned long long)(p->age_ms / 1000), (unsigned long long)p->output);
			cli_json_cstring(&out, p->command);
			cli_buf_puts(&out, "}");
		} else {
			cli_format_duration(age, sizeof(age), p->age_ms / 1000);
			cli_format_bytes(size, sizeof(size), p->output);
			cli_buf_printf(&out, "%-6u  %-4s  %-18s  %-7s  %-9s  %s\n", (unsigned)p->id,
				       p->background ? "bg" : "exec", state, age, size, p->command);
		}
	}
	if (json)
		cli_buf_puts(&out, "]}\n");
	if (out.failed || (cli_write_all(STDOUT_FILENO, out.data, out.len) < 0 && errno != EPIPE))
		rc = CLI_EXIT_FAILED;
out:
	free(rows);
	cli_buf_free(&out);
	wire_conn_close(&conn);
	return rc;
}
