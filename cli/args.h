/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line parsing for the mimobox CLI: the option scanner shared by every
 * verb, the sandbox options shared by `run` (and later `create`), and pure
 * parsers for option values. Nothing here calls libmimobox, so the unit test
 * links this file alone.
 *
 * Every parser returns 0 on success, or -1 with a short reason written to
 * `why` ("not a number", "out of memory", ...); the caller adds the option
 * name. On failure the output is left empty (nothing to free).
 */
#ifndef MBX_CLI_ARGS_H
#define MBX_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include <mbx/common.h>

/* Room for a reason or a usage message. */
#define CLI_WHY_MAX 512

/* ---- the option scanner ---- */

struct cli_option {
	const char *name;	/* long name without the leading "--" */
	char short_name;	/* single-letter alias ("-h"), or 0 */
	int has_arg;		/* 1: takes a value, as "--x V" or "--x=V" */
	int id;			/* > 0, returned by cli_next_option() */
};

/* Scans argv[next..argc); argv[argc] must be NULL, as main() gets it. */
struct cli_args {
	int argc;
	char **argv;
	int next;
	int sub;	/* in a bundle of short flags ("-it"): the next letter's index, else 0 */
};

#define CLI_OPT_END 0	/* no more options: argv[next] is the first operand */
#define CLI_OPT_BAD (-1)	/* usage error, described in `why` */

/*
 * Returns the id of the next option in `a` and, for an option with a value,
 * points *value at it (borrowed from argv). Options end at "--" (consumed),
 * at "-" or at the first word that does not start with '-' (not consumed),
 * so a program's own options are never taken for ours. Short flags that
 * take no value may be bundled as docker's are ("-it" is "-i -t"), when
 * every letter is one. Long names match
 * exactly; there are no abbreviations, so new options never break scripts.
 * `opts` ends with an entry whose name is NULL.
 */
int cli_next_option(struct cli_args *a, const struct cli_option *opts, const char **value,
		    char *why, size_t whylen);

/* ---- the sandbox options shared by the verbs that make a sandbox ---- */

enum {
	CLI_OPT_ISOLATION = 1,
	CLI_OPT_TRUST,
	CLI_OPT_TIMEOUT,
	CLI_OPT_MEMORY,
	CLI_OPT_CPU,
	CLI_OPT_MAX_PROCS,
	CLI_OPT_NETWORK,
	CLI_OPT_ENV,
	CLI_OPT_WORKDIR,
	CLI_OPT_MOUNT,
	CLI_OPT_HOSTNAME,
	CLI_OPT_OUTPUT_LIMIT,
	CLI_OPT_ALLOW_DEGRADED,
	CLI_OPT_ADD_HOST,
	CLI_OPT_ALLOW_PRIVATE,
	CLI_OPT_CA_FILE,
	CLI_OPT_NET_LIMIT,
	CLI_OPT_HTTP_RULE,
	CLI_OPT_ENV_FILE,
	CLI_OPT_DISK,
	CLI_OPT_SANDBOX_END,	/* ids below this one are sandbox options */
	CLI_OPT_HELP = 50,
	CLI_OPT_VERB = 100	/* first id free for a verb's own options */
};

/* Table entries for the shared options: put them in a verb's table. */
#define CLI_SANDBOX_OPTIONS \
	{ "isolation", 0, 1, CLI_OPT_ISOLATION }, \
	{ "trust", 0, 1, CLI_OPT_TRUST }, \
	{ "timeout", 0, 1, CLI_OPT_TIMEOUT }, \
	{ "memory", 'm', 1, CLI_OPT_MEMORY }, \
	{ "disk", 0, 1, CLI_OPT_DISK }, \
	{ "cpu", 0, 1, CLI_OPT_CPU }, \
	{ "cpus", 0, 1, CLI_OPT_CPU }, \
	{ "max-procs", 0, 1, CLI_OPT_MAX_PROCS }, \
	{ "network", 0, 1, CLI_OPT_NETWORK }, \
	{ "env", 'e', 1, CLI_OPT_ENV }, \
	{ "env-file", 0, 1, CLI_OPT_ENV_FILE }, \
	{ "workdir", 'w', 1, CLI_OPT_WORKDIR }, \
	{ "mount", 'v', 1, CLI_OPT_MOUNT }, \
	{ "hostname", 0, 1, CLI_OPT_HOSTNAME }, \
	{ "output-limit", 0, 1, CLI_OPT_OUTPUT_LIMIT }, \
	{ "allow-degraded", 0, 0, CLI_OPT_ALLOW_DEGRADED }, \
	{ "add-host", 0, 1, CLI_OPT_ADD_HOST }, \
	{ "allow-private", 0, 0, CLI_OPT_ALLOW_PRIVATE }, \
	{ "ca-file", 0, 1, CLI_OPT_CA_FILE }, \
	{ "net-limit", 0, 1, CLI_OPT_NET_LIMIT }, \
	{ "http-rule", 0, 1, CLI_OPT_HTTP_RULE }

#define CLI_HELP_OPTION { "help", 'h', 0, CLI_OPT_HELP }

/* Help text describing CLI_SANDBOX_OPTIONS, for a verb's usage. */
extern const char cli_sandbox_options_help[];

struct cli_mount {
	char *host;		/* owned */
	char *sandbox;		/* owned */
	uint32_t flags;		/* 0 (read-only) or MBX_MOUNT_RW */
};

struct cli_env {
	char *name;		/* owned */
	char *value;		/* owned */
};

/* --add-host NAME:ADDRESS */
struct cli_host {
	char *name;		/* owned */
	char *address;		/* owned */
};

/* --net-limit NAME=VALUE: an MBX_NET_LIMIT_* and its value. */
struct cli_net_limit {
	uint8_t limit;
	uint64_t value;
};

struct cli_network {
	mbx_network_t policy;
	char **domains;		/* owned; only for MBX_NETWORK_ALLOW_DOMAINS */
	size_t n_domains;
};

/* Which fields of cli_sandbox_opts were given, as bits. */
#define CLI_SET_ISOLATION    (1u << 0)
#define CLI_SET_TRUST        (1u << 1)
#define CLI_SET_TIMEOUT      (1u << 2)
#define CLI_SET_MEMORY       (1u << 3)
#define CLI_SET_CPU          (1u << 4)
#define CLI_SET_MAX_PROCS    (1u << 5)
#define CLI_SET_NETWORK      (1u << 6)
#define CLI_SET_WORKDIR      (1u << 7)
#define CLI_SET_HOSTNAME     (1u << 8)
#define CLI_SET_OUTPUT_LIMIT (1u << 9)
#define CLI_SET_DISK         (1u << 10)

/*
 * The sandbox options as given. Only the fields flagged in `set` (and the
 * lists) are meant to reach the config: the library keeps its own defaults,
 * which are the CLI's documented ones.
 */
struct cli_sandbox_opts {
	unsigned int set;
	mbx_isolation_t isolation;
	mbx_trust_t trust;
	uint64_t timeout_ms;
	uint64_t memory_bytes;
	uint64_t disk_bytes;
	uint32_t millicpus;
	uint32_t max_procs;
	uint64_t output_limit;
	int allow_degraded;
	const char *workdir;	/* borrowed from argv */
	const char *hostname;	/* borrowed from argv */
	struct cli_network network;
	struct cli_env *env;
	size_t n_env;
	struct cli_mount *mounts;
	size_t n_mounts;
	struct cli_host *hosts;
	size_t n_hosts;
	const char **ca_files;	/* borrowed from argv */
	size_t n_ca_files;
	const char **http_rules;	/* borrowed from argv; checked by the library */
	size_t n_http_rules;
	struct cli_net_limit *limits;
	size_t n_limits;
	int allow_private;
	/* The options as given, "--name\0[value\0]" each, without --env,
	 * --env-file (the environment is taken from `env`), --mount and
	 * --ca-file (host files): a snapshot keeps them (cli_sandbox_opts_note)
	 * so that the sandbox restored from it is described as it was made. */
	char *words;		/* owned */
	size_t words_len;
	char *note_copy;	/* owned: what borrowed values of a note point into */
};

void cli_sandbox_opts_init(struct cli_sandbox_opts *o);
void cli_sandbox_opts_free(struct cli_sandbox_opts *o);

/*
 * Stores sandbox option `id` (< CLI_OPT_SANDBOX_END) with its value (NULL for
 * a flag). A repeated option replaces the earlier value, except --env,
 * --mount, --add-host, --ca-file, --net-limit and --http-rule, which add up. Returns 0, or -1 with a complete message in `why`
 * naming the option.
 */
int cli_sandbox_opts_set(struct cli_sandbox_opts *o, int id, const char *value, char *why, size_t whylen);

/*
 * The note a snapshot of a sandbox made with `o` keeps: o->words, then
 * "--env\0NAME=VALUE\0" for each variable. malloc'd into *out (*len
 * bytes); 0, or -1 on ENOMEM.
 */
int cli_sandbox_opts_note(const struct cli_sandbox_opts *o, char **out, size_t *len);

/*
 * Fills `o` (initialised) from a note of cli_sandbox_opts_note(): each
 * option goes through cli_sandbox_opts_set() again, so a note is checked
 * as command-line words are; only options a note may hold are taken.
 * Returns 0, or -1 with a message in `why`.
 */
int cli_sandbox_opts_from_note(struct cli_sandbox_opts *o, const void *note, size_t len, char *why, size_t whylen);

/* ---- value parsers ---- */

/*
 * A decimal number of seconds ("30", "0.5", ".25") to milliseconds, rounded
 * up so that a positive value never becomes 0. No sign, exponent or blanks.
 * Zero, negative and out-of-range values are refused.
 */
int cli_parse_timeout(const char *s, uint64_t *ms_out, char *why, size_t whylen);

/*
 * A duration such as "30s", "10m", "2h", "1d" or "1h30m" (whole numbers,
 * each with a unit s, m, h or d; units in decreasing order, each at most
 * once), or a bare whole number of seconds, to milliseconds. From 1 s to
 * 365 days.
 */
int cli_parse_duration(const char *s, uint64_t *ms_out, char *why, size_t whylen);

/* Seconds for people: "45s", "3m12s", "2h05m", "3d04h". */
void cli_format_duration(char *out, size_t len, uint64_t s);

/* A time in nanoseconds since the epoch as "2024-05-01T12:34:56.123456789Z" (cmd_files.c). */
void cli_format_time_ns(char *out, size_t len, int64_t ns);

/*
 * 1 when the sandbox path `path` names the sandbox's root ("/", "/workspace/..",
 * "a/../.."), taken by its text (supervisor_files.c): `rm` refuses it.
 */
int cli_path_is_root(const char *path);

/*
 * A signal by name or number: "TERM", "SIGTERM", "term", "15". The
 * signals one sends to a program (HUP INT QUIT ILL TRAP ABRT BUS FPE KILL
 * USR1 SEGV USR2 PIPE ALRM TERM CHLD CONT STOP TSTP TTIN TTOU URG XCPU
 * XFSZ VTALRM PROF WINCH IO SYS) or a number from 1 to 64.
 */
int cli_parse_signal(const char *s, int *sig_out, char *why, size_t whylen);

/* A decimal number of CPUs ("2", "0.5") to thousandths of a CPU, positive. */
int cli_parse_cpus(const char *s, uint32_t *millicpus_out, char *why, size_t whylen);

/*
 * A memory size to bytes: a positive whole number of MiB ("512"), or a
 * number with a unit as docker takes it ("512m", "1g", "1.5g", "256MiB",
 * "64kb", "1048576b"; b, k, m, g, t as powers of 1024, case-insensitive).
 */
int cli_parse_memory_mb(const char *s, uint64_t *bytes_out, char *why, size_t whylen);

/* A whole number of MiB from 1 to 1048576 (1 TiB) to bytes. */
int cli_parse_disk_mb(const char *s, uint64_t *bytes_out, char *why, size_t whylen);

/* A whole decimal number in [min, max]. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen);

/*
 * "HOST_PATH:SANDBOX_PATH[:ro|:rw]". Split from the right: the sandbox path
 * may not contain ':' and must be absolute, the host path may contain ':'.
 * Without a mode the mount is read-only. Free with cli_mount_free().
 */
int cli_parse_mount(const char *spec, struct cli_mount *out, char *why, size_t whylen);
void cli_mount_free(struct cli_mount *m);

/* "deny" (or "none"), "all" or "allow:DOMAIN[,DOMAIN...]". Free with cli_network_free(). */
int cli_parse_network(const char *spec, struct cli_network *out, char *why, size_t whylen);
void cli_network_free(struct cli_network *n);

/*
 * "NAME:ADDRESS" (docker's --add-host), split at the first ':' so that an
 * IPv6 address may follow ("db.test:::1"); both non-empty. The address is
 * checked by the library. Free with cli_host_free().
 */
int cli_parse_host(const char *spec, struct cli_host *out, char *why, size_t whylen);
void cli_host_free(struct cli_host *h);

/*
 * "NAME=VALUE" for --net-limit: request-bytes, response-bytes (sizes with
 * an optional k, m, g unit), timeout, idle (seconds, decimals allowed),
 * connections, redirects (whole numbers).
 */
int cli_parse_net_limit(const char *spec, struct cli_net_limit *out, char *why, size_t whylen);

/* "KEY=VALUE", split at the first '='; KEY non-empty, VALUE may be empty. */
int cli_parse_env(const char *spec, struct cli_env *out, char *why, size_t whylen);
void cli_env_free(struct cli_env *e);

/*
 * The variables of an env file (see docs/security-model.md, "Secrets"):
 * one KEY=VALUE per line, split at the first '='; KEY is letters, digits
 * and '_' and does not start with a digit; VALUE is the rest of the line,
 * as is (no quotes, escapes or `$` expansion; a CR before the LF is
 * dropped). Blank lines and lines whose first non-blank character is '#'
 * are skipped. `text` is the file's content; the variables are appended to
 * (*env, *n). On a bad line, -1 with "line N: ..." in `why`; the line's
 * value is never quoted in it (it may be a secret). What was appended
 * before the failure stays, owned by the caller as the rest.
 */
int cli_parse_env_text(const char *text, size_t len, struct cli_env **env, size_t *n, char *why, size_t whylen);

/* Reads FILE (at most CLI_ENV_FILE_MAX bytes) and parses it as above; 0,
 * or -1 with the reason in `why` (a read error or "line N: ..."). */
int cli_parse_env_file(const char *path, struct cli_env **env, size_t *n, char *why, size_t whylen);

#define CLI_ENV_FILE_MAX (1u << 20)

/* "auto", "os", "wasm" or "microvm"; 0 or -1. */
int cli_parse_isolation(const char *s, mbx_isolation_t *out);

/* "trusted", "semi" (or "semi-trusted") or "untrusted"; 0 or -1. */
int cli_parse_trust(const char *s, mbx_trust_t *out);

/* ---- names of sandboxes that outlive the CLI (create, exec, ...) ---- */

/* Longest sandbox name, without the NUL. */
#define CLI_NAME_MAX 64

/*
 * A sandbox name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}. Names become file names
 * in the registry directory, so no '/', no leading '.' or '-', no blanks.
 */
int cli_check_name(const char *name, char *why, size_t whylen);

/*
 * Tells a sandbox reference "NAME:PATH" from a host path, as `cp` needs:
 * returns 1 when the text before the first ':' is a valid name (the name is
 * copied to name[CLI_NAME_MAX + 1] and *path points into `arg`, possibly at
 * an empty string), and 0 for a host path ("./a:b", "/x:y", "file").
 */
int cli_parse_sandbox_ref(const char *arg, char name[CLI_NAME_MAX + 1], const char **path);

/* ---- "did you mean" ---- */

/*
 * The candidate closest to `word` by edit distance (insertions, deletions,
 * substitutions and swaps of neighbours), or NULL when none is close enough
 * to be a likely typo: at most 1 edit for words up to 4 letters, else 2.
 * `candidates` ends with NULL.
 */
const char *cli_closest(const char *word, const char *const *candidates);

#endif /* MBX_CLI_ARGS_H */
