/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared declarations of the mimobox CLI: the verb table entry, exit
 * statuses, and the helpers in main.c that every verb uses (error reports,
 * full writes, logging, building an mbx_config from the sandbox options).
 */
#ifndef MBX_CLI_CLI_H
#define MBX_CLI_CLI_H

#include <stddef.h>

#include <mbx/mbx.h>

#include "args.h"
#include "json.h"

/*
 * One verb. `fn` gets the words from the verb on (argv[0] is the verb's
 * name, argv[argc] is NULL) and returns the process exit status.
 */
struct cli_verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;	/* one line for `mimobox --help` */
};

/* Exit statuses, as timeout(1) and env(1) use them. */
#define CLI_EXIT_USAGE    125	/* bad arguments, the same for every verb */
#define CLI_EXIT_TIMEOUT  124	/* the payload ran into its timeout */
#define CLI_EXIT_FAILED   125	/* bad arguments, or no sandbox could be made */
#define CLI_EXIT_NOEXEC   126	/* the program cannot be executed */
#define CLI_EXIT_NOTFOUND 127	/* the program does not exist */

/* Exit status of a Wasm payload that trapped: as a program that aborted. */
#define CLI_EXIT_TRAP 134

int cli_cmd_run(int argc, char **argv);
int cli_cmd_doctor(int argc, char **argv);
int cli_cmd_setup(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);

/* The library's defaults, for messages and `inspect` (src/core/internal.h). */
#define CLI_DEFAULT_TIMEOUT_MS 30000u
#define CLI_DEFAULT_MEMORY ((uint64_t)512 << 20)
/* The library's default storage limit (mbx_config_set_disk_limit), as the server counts it in --quota-disk-mb. */
#define CLI_DEFAULT_DISK ((uint64_t)2048 << 20)
#define CLI_DEFAULT_MAX_PROCS 64u
#define CLI_DEFAULT_OUTPUT_LIMIT ((uint64_t)16 << 20)

/* One isolation layer skipped under --allow-degraded. */
struct cli_skip {
	const char *layer;	/* mbx_layer_name() */
	const char *reason;
};

/*
 * How a payload ended, from an mbx_result (`run`) or from what a named
 * sandbox's supervisor reported (`exec`), for the shared exit status and
 * JSON form. The pointers are borrowed.
 */
struct cli_outcome {
	int exit_code;		/* -1 when killed, timed out or trapped */
	int signal;
	int timed_out;
	int oom_killed;
	const uint8_t *out, *err;
	size_t out_len, err_len;
	int out_truncated, err_truncated;
	uint64_t elapsed_us, peak_memory_bytes, cpu_time_us;
	const char *trap;	/* or NULL */
	const char *isolation;	/* or NULL */
	const char *limits;	/* how limits were enforced, or NULL (not known: no JSON keys) */
	const char *limits_partial; /* what they do not bound, or NULL */
	/* For the words on stderr (cli_outcome_explain()) and --json. */
	uint64_t timeout_ms;	/* the timeout that applied, or 0 when unknown */
	const char *timeout_opt;	/* the option that set it: "--timeout" */
	uint64_t memory_limit;	/* bytes, or 0 when unknown */
	const char *memory_opt;	/* "--memory" */
	const struct cli_skip *skipped;	/* layers skipped under --allow-degraded */
	size_t n_skipped;
	const char *extra_json;	/* more members (", \"k\": v..."), or NULL */
};

/*
 * Says on stderr, one line each, what the exit status alone cannot: the
 * layers skipped under --allow-degraded, a timeout and an out-of-memory
 * kill (both otherwise a bare 124 or 137).
 */
void cli_outcome_explain(const struct cli_outcome *o);

/*
 * The layers a result (or, without one, a sandbox) says were skipped, into
 * skips[] (32 at most; reasons may be NULL); their count (cmd_run.c).
 */
size_t cli_skipped_of(const mbx_result *res, const mbx_sandbox *sb, struct cli_skip *skips);

/* Formats a byte count for people: "64 MiB", "1.5 GiB", "300 KiB", "12 B". */
void cli_format_bytes(char *out, size_t len, uint64_t bytes);

/* One entry of a sandbox's network log (--audit); the strings are borrowed. */
struct cli_net_entry {
	const char *source, *method, *host, *address, *verdict, *reason;
	uint64_t time_us, bytes_up, bytes_down;
	unsigned port;
	int status;
};

/*
 * Reports entry number `index` of a network log: with `json` appended to
 * `b` as an object of the "network_log" array (a comma first unless index
 * is 0), else as a "mimobox: net: ..." line on stderr.
 */
void cli_net_entry_report(struct cli_buf *b, int json, size_t index, const struct cli_net_entry *e);

/* The exit status standing for the outcome: the program's own, 128+N, 124, 134. */
int cli_outcome_status(const struct cli_outcome *o);

/* Prints the outcome as `run --json` does, one line on stdout; 0, or -1 after reporting. */
int cli_outcome_print_json(const struct cli_outcome *o);

/*
 * An outcome that came from a server, told as the local verbs tell theirs:
 * the output (unless `streamed`: it was written as it came), the warnings
 * and explanations, or the --json line. Returns the exit status.
 */
int cli_outcome_report(struct cli_outcome *o, int json, int streamed);

/* The exit status of a payload that could not start with `rc`: 127, 126 or 125. */
int cli_failure_status(int rc);

/*
 * Of `len` more bytes of an output stream that had *sent bytes delivered,
 * how many fit under `limit` (--output-limit): counts them in *sent and
 * sets *cut when some do not fit.
 */
size_t cli_output_fit(uint64_t *sent, int *cut, uint64_t limit, size_t len);

/* Writes all of data[0, len) to fd, through EINTR and EAGAIN; 0 or -1 with errno. */
int cli_write_all(int fd, const void *data, size_t len);

/*
 * Reports an error: on stderr as "mimobox: error: MESSAGE" plus a
 * "mimobox: hint: SUGGESTION" line, or with `json` as one
 * {"ok": false, "error": {...}} line on stdout. `code` is an MBX_E* code;
 * suggestion and layer may be NULL.
 */
void cli_report(int json, int code, const char *message, const char *suggestion,
		const char *layer, int errnum);

/* cli_report() for a library failure: `rc` is the status, `err` may be NULL. */
void cli_report_mbx(int json, int rc, const mbx_error *err);

/* A usage error of `verb`, pointing at `mimobox VERB --help`. */
void cli_usage_error(int json, const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Sends the library's log messages (of configs made by cli_build_config())
 * to fd instead of stderr; -1 drops them. The supervisor of a named
 * sandbox uses it: its stderr is inherited by the sandbox's agent.
 */
void cli_set_log_fd(int fd);

/*
 * Overwrites this process's command line, as /proc/<pid>/cmdline shows it
 * to every user, with `title` (cut to the original length) followed by
 * NULs. A process that outlives the command which started it (the
 * supervisor of a named sandbox) calls it so that the values given on that
 * command line (--env ...) do not stay on display. Strings borrowed from
 * argv are cleared too: copy what is still needed first.
 */
void cli_hide_argv(const char *title);

/*
 * Creates a config from the sandbox options: only the options that were
 * given are set, and log messages go to stderr (level from $MIMOBOX_LOG:
 * off, error, warn (the default), info or debug).
 * Returns MBX_OK with *out owned by the caller, or an MBX_E* code with *err
 * and, in `what`, the option that was refused ("--mount `/a:/b`").
 */
int cli_build_config(const struct cli_sandbox_opts *o, mbx_config **out, char *what,
		     size_t whatlen, mbx_error **err);

/*
 * Reports a failure of cli_build_config() as "WHAT: MESSAGE", with the
 * library's suggestion or else a pointer at `mimobox VERB --help`.
 */
void cli_report_config(int json, const char *verb, int rc, const mbx_error *err, const char *what);

#endif /* MBX_CLI_CLI_H */
