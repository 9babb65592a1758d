/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI through a running `mimobox serve` (docs/cli.md, "Through a
 * server"): which server (MIMOBOX_HOST, MIMOBOX_TOKEN, the default socket),
 * a small HTTP/1.1 client over a unix or TCP socket (httpc.c reads the
 * answers), JSON through json-c loaded with dlopen() (serve_dl.c), and the
 * verbs that go through the server.
 */
#ifndef MBX_CLI_REMOTE_H
#define MBX_CLI_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* The most a JSON answer may be (a run's output comes inside it, in base64). */
#define CLI_REMOTE_JSON_ANSWER_MAX ((size_t)64 << 20)
/* The server's limit on a JSON request body. */
#define CLI_REMOTE_JSON_BODY_MAX ((size_t)1 << 20)

struct cli_remote {
	int fd;			/* the connection, or -1 */
	int is_unix;
	int explicit;		/* named by MIMOBOX_HOST */
	char where[160];	/* for messages: "unix:/run/mimobox/serve.sock", "http://127.0.0.1:8700" */
	char path[108];		/* unix */
	char host[80], port[8];	/* TCP */
	const char *token;	/* MIMOBOX_TOKEN, borrowed from the environment */
};

/* An answer: its status and its body (bounded by the caller's limit). */
struct cli_remote_answer {
	unsigned status;
	struct cli_buf body;
	char content_type[128];
};

/*
 * Which way the verb goes: 0 locally (no server, or MIMOBOX_HOST=local),
 * 1 through the server `r` (connected), -1 after reporting why not (an
 * explicit MIMOBOX_HOST that cannot be reached or is malformed).
 */
int cli_remote_pick(struct cli_remote *r, int json);

void cli_remote_close(struct cli_remote *r);

/* Connects `r` when it is not connected; 0, or -1 with what failed in `why`. */
int cli_remote_connect(struct cli_remote *r, char *why, size_t whylen);

/*
 * Sends one request and reads its answer whole (at most `limit` bytes of
 * body) into `a` (cli_buf_free() its body). `ctype` is the request's
 * Content-Type or NULL. Returns 0, or -1 after reporting (connection,
 * protocol, size).
 */
int cli_remote_call(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		    const void *body, size_t len, size_t limit, struct cli_remote_answer *a);

/* Reports the server's error answer `a` (its error object, or the status); returns the exit status for it. */
int cli_remote_report(struct cli_remote *r, int json, const struct cli_remote_answer *a);

/*
 * Tells the outcome of an execute that the server answered with the JSON
 * object text[0, len) (`POST /v1/run`, `.../exec`; the `result` event of a
 * stream, whose output was `streamed` already) as the local verbs do,
 * with `extra_json` (", \"k\": v...", or NULL) added to a --json line;
 * returns the exit status.
 */
int cli_remote_outcome(const char *text, size_t len, int json, int streamed, const char *extra_json);

/* A body callback of cli_remote_stream() that feeds the struct httpc_sse `ud`. */
int cli_remote_sse_feed(void *ud, const uint8_t *data, size_t len);

/*
 * Reports a failed answer `a` to an execute in sandbox `name` (which is
 * asked for when the answer is 404: an unknown sandbox is a bad argument,
 * 125; a missing program keeps its 127). Returns the exit status.
 */
int cli_remote_exec_failed(struct cli_remote *r, int json, const char *name, const struct cli_remote_answer *a);

/*
 * An execute in sandbox `name` streamed as it runs (`target` is its
 * .../exec?stream=1): output events are written to stdout and stderr as
 * they come. Returns 0 with the exit event's JSON text in *exit_text
 * (malloc'd, *exit_len bytes; tell it with cli_remote_outcome(), streamed),
 * or the exit status after reporting.
 */
int cli_remote_exec_stream(struct cli_remote *r, const char *name, const char *target, const void *body, size_t len,
			   char **exit_text, size_t *exit_len);

/* The MBX_E* code of an error code name of the API ("not_found"); MBX_EPROTO when unknown. */
int cli_remote_code(const char *name);

/*
 * As cli_remote_report(), for the answer of a file or process operation:
 * the exit status of the local file verbs (1 for a refused operation; 125
 * for an unknown sandbox, a broken one or a protocol error).
 */
int cli_remote_report_file(struct cli_remote *r, int json, const struct cli_remote_answer *a);

/* Loads json-c; 0, or -1 after reporting. */
int cli_remote_json_load(int json);

/* json-c, loaded: the JSON object that is all of data[0, len), or NULL. */
struct json_object *cli_remote_json_parse(const char *data, size_t len);

/* Members of a json-c object (o may be NULL): the value or NULL; a string or NULL; an integer or 0. */
struct json_object *cli_remote_jget(struct json_object *o, const char *key);
const char *cli_remote_jstr(struct json_object *o, const char *key);
int64_t cli_remote_jint(struct json_object *o, const char *key);

/* Writes all of data[0, len) to the socket fd (MSG_NOSIGNAL, through EINTR); 0, or -1 with errno. */
int cli_remote_send_all(int fd, const void *data, size_t len);

/* Appends "/v1/sandboxes/NAME" (NAME percent-encoded but for letters, digits, - _ .) and `tail`. */
void cli_remote_sandbox_target(struct cli_buf *t, const char *name, const char *tail);

/* Appends s percent-encoded for a query value or a path segment. */
void cli_remote_urlencode(struct cli_buf *b, const char *s);

/*
 * Says that `what` (a verb, or a flag of one) cannot go through the server
 * and what to do; returns CLI_EXIT_USAGE.
 */
int cli_remote_unavailable(struct cli_remote *r, int json, const char *what, const char *why);

/* The verbs that go through the server: the same words as their local forms. */
int cli_remote_verb(struct cli_remote *r, int argc, char **argv);

/* `run` through the server (cmd_run.c: it shares the local parser). */
int cli_cmd_run_remote(struct cli_remote *r, int argc, char **argv);

/*
 * POST /v1/run with `body` (JSON) and prints the outcome as `run` does
 * (output bytes to stdout and stderr, or --json); returns the exit status.
 */
int cli_remote_run_body(struct cli_remote *r, int json, const struct cli_buf *body);

struct cli_sandbox_opts;
struct json_object;

/*
 * POST `target` (GET when `body` is NULL) and hands a 2xx text/event-stream answer's body to `fn` as
 * it comes; any other answer is collected in `a` as cli_remote_call() does.
 */
int cli_remote_stream(struct cli_remote *r, int json, const char *target, const void *body, size_t len,
		      int (*fn)(void *ud, const uint8_t *data, size_t len), void *ud, struct cli_remote_answer *a);

/*
 * Prints an execute's outcome (an answer of exec or run, or an exit event's
 * data when `streamed`: the output went by already) as `run` does; the exit status.
 */
int cli_remote_print_outcome(struct json_object *o, int json, int streamed);

/*
 * Appends the API's fields for the sandbox options `so` (`, "memory_mb": 256`
 * ...) to `b`; -1 after reporting the first option the API does not offer.
 */
int cli_remote_opts_json(struct cli_remote *r, int json, const struct cli_sandbox_opts *so, struct cli_buf *b);

/*
 * cp NAME:PATH HOST when PATH is a directory (remote_files.c): with
 * `recursive` the tree, as the local verb copies it. -2 when PATH is not a
 * directory (the caller copies the file), else the exit status.
 */
int cli_remote_cp_down(struct cli_remote *r, int json, int recursive, const char *name, const char *path,
		       const char *host);

/* cp HOST NAME:PATH of the host directory `host`, open as `fd`; the exit status. */
int cli_remote_cp_up(struct cli_remote *r, int json, int recursive, const char *host, int fd, const char *name,
		     const char *path);

/* As cli_remote_print_outcome(), with `extra_json` (NULL, or members) added to --json's object. */
int cli_remote_print_outcome_extra(struct json_object *o, int json, int streamed, const char *extra_json);

/*
 * --audit (remote_audit.c). A mark of the network log of `name`: how many
 * records it ever had, in *mark; 0, or the exit status after reporting.
 */
int cli_remote_audit_mark(struct cli_remote *r, int json, const char *name, uint64_t *mark);

/*
 * Reports the records of the network log of `name` from `mark` on as the
 * local verbs do: the `network_log` and `network_log_dropped` members
 * appended to `b` with `json`, else lines on stderr. 0, or the exit status.
 */
int cli_remote_audit_report(struct cli_remote *r, int json, const char *name, uint64_t mark, struct cli_buf *b);

/*
 * run --audit: a sandbox made with `create` (POST /v1/sandboxes), `exec`
 * run in it, its log reported with the outcome, the sandbox removed. The
 * exit status.
 */
int cli_remote_run_audit(struct cli_remote *r, int json, const struct cli_buf *create, const struct cli_buf *exec);

/* `http` through the server (cmd_http.c: it shares the local parser): POST .../http. */
int cli_cmd_http_remote(struct cli_remote *r, int argc, char **argv);
/* ---- terminals (remote_pty.c) ---- */

struct cli_env;

/* A program on a terminal of a sandbox of the server: what `shell`, `exec -t` and `run -t` ask for. */
struct cli_remote_pty {
	const char *verb;		/* for messages: "shell", "exec", "run" */
	const char *sandbox;		/* its name or id */
	char **argv;			/* the program and its arguments */
	int argc;			/* 0: the sandbox's shell (/bin/bash when it has one, else /bin/sh) */
	const struct cli_env *env;	/* TERM is passed on from ours unless set here */
	size_t n_env;
	const char *workdir;		/* or NULL */
	uint64_t timeout_ms;		/* 0: none, or the sandbox's when `sandbox_timeout` */
	int sandbox_timeout;		/* without timeout_ms, the sandbox's timeout applies (exec -t) */
};

/*
 * Runs p's program on a terminal of the sandbox over the server's WebSocket
 * (GET /v1/sandboxes/{id}/pty): our terminal raw meanwhile (restored on
 * every way out), stdin to the program (at its end, the terminal's
 * end-of-file character), its output to stdout, our size changes after it.
 * Returns the program's exit status as the local verbs give it, or 125
 * after reporting why there was none.
 */
int cli_remote_pty_run(struct cli_remote *r, const struct cli_remote_pty *p);

/*
 * `run -t` through the server: a sandbox of `so` made for it (with a ttl,
 * in case we die first), argv on its terminal, and the sandbox deleted.
 */
int cli_remote_run_tty(struct cli_remote *r, const struct cli_sandbox_opts *so, char **argv, int argc);

/* `shell` through the server: the local verb's words. */
int cli_remote_shell(struct cli_remote *r, int argc, char **argv);

#endif /* MBX_CLI_REMOTE_H */
