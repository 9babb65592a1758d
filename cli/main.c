/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mimobox: the command-line front end of libmimobox. This file holds the
 * verb table and dispatch, the `version` verb, and the helpers every verb
 * shares. It uses the public API only.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "remote.h"
#include "wire.h"
#include "json.h"
#include "session.h"

static int cmd_version(int argc, char **argv);

/* Add a verb here and it shows up in `mimobox --help`. */
static const struct cli_verb verbs[] = {
	{ "run", cli_cmd_run, "run a program in a new sandbox" },
	{ "create", cli_cmd_create, "create a named sandbox that lives on" },
	{ "exec", cli_cmd_exec, "run a program in a named sandbox" },
	{ "shell", cli_cmd_shell, "open an interactive terminal in a named sandbox" },
	{ "ps", cli_cmd_ps, "list the live named sandboxes, or the processes of one" },
	{ "logs", cli_cmd_logs, "print the output of a background process of a named sandbox" },
	{ "kill", cli_cmd_kill, "signal a process of a named sandbox" },
	{ "inspect", cli_cmd_inspect, "show the settings and layers of a named sandbox" },
	{ "cat", cli_cmd_cat, "print a file of a named sandbox" },
	{ "write", cli_cmd_write, "write stdin to a file of a named sandbox" },
	{ "ls", cli_cmd_ls, "list a directory of a named sandbox" },
	{ "stat", cli_cmd_stat, "show the metadata of a path in a named sandbox" },
	{ "cp", cli_cmd_cp, "copy files and directories between the host and a named sandbox" },
	{ "mkdir", cli_cmd_mkdir, "make a directory in a named sandbox" },
	{ "http", cli_cmd_http, "make an HTTP request under a named sandbox's network policy" },
	{ "snapshot", cli_cmd_snapshot, "save a named sandbox's files and settings to a file" },
	{ "restore", cli_cmd_restore, "create a named sandbox from a snapshot file" },
	{ "fork", cli_cmd_fork, "create named sandboxes with the files and settings of one" },
	{ "rm", cli_cmd_rm, "destroy a named sandbox, or remove a path in one (NAME:PATH)" },
	{ "doctor", cli_cmd_doctor, "check what this host supports" },
	{ "serve", cli_cmd_serve, "serve the sandbox API over HTTP (docs/server.md)" },
	{ "setup", cli_cmd_setup, "build or check the microvm guest assets (setup vm)" },
	{ "version", cmd_version, "print the version" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: mimobox COMMAND [OPTIONS] [ARG...]\n\n"
		   "Run untrusted commands and code in sandboxes.\n\nCommands:\n");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
	fprintf(f, "\nRun `mimobox COMMAND --help` for the options of a command.\n"
		   "\nThrough a server: when `mimobox serve` answers on serve.sock in the state\n"
		   "directory, or MIMOBOX_HOST names one (unix:PATH, or http://ADDR:PORT with\n"
		   "its token in MIMOBOX_TOKEN), the verbs of sandboxes go through it, all\n"
		   "of them; MIMOBOX_HOST=local never uses a server (docs/server.md).\n");
}

/* ---- shared helpers ---- */

size_t cli_output_fit(uint64_t *sent, int *cut, uint64_t limit, size_t len)
{
	if (*sent >= limit) {
		*cut |= len > 0;
		return 0;
	}
	if (len > limit - *sent) {
		len = (size_t)(limit - *sent);
		*cut = 1;
	}
	*sent += len;
	return len;
}

void cli_report_mbx(int json, int rc, const mbx_error *err)
{
	if (!err) {
		cli_report(json, rc, mbx_error_code_name(rc), NULL, NULL, 0);
		return;
	}
	cli_report(json, mbx_error_code(err), mbx_error_message(err), mbx_error_suggestion(err),
		   mbx_error_layer(err), mbx_error_errno(err));
}

void cli_usage_error(int json, const char *verb, const char *fmt, ...)
{
	char message[CLI_WHY_MAX], hint[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	snprintf(hint, sizeof(hint), "see `mimobox %s --help`", verb);
	cli_report(json, MBX_EINVAL, message, hint, NULL, 0);
}

/* Where log messages go; see cli_set_log_fd(). */
static int log_fd = STDERR_FILENO;

void cli_set_log_fd(int fd)
{
	log_fd = fd;
}

static void log_to_stderr(mbx_log_level_t level, const char *message, void *userdata)
{
	const char *tag;

	if (log_fd < 0)
		return;
	switch (level) {
	case MBX_LOG_ERROR:
		tag = "error";
		break;
	case MBX_LOG_WARN:
		tag = "warning";
		break;
	case MBX_LOG_INFO:
		tag = "info";
		break;
	case MBX_LOG_DEBUG:
		tag = "debug";
		break;
	default:
		tag = "log";
		break;
	}
	(void)dprintf(log_fd, "mimobox: %s: %s\n", tag, message);
}

/* The level asked for in $MIMOBOX_LOG; -1 for "off". */
static int log_level(void)
{
	const char *s = getenv("MIMOBOX_LOG");

	if (!s || !*s || strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return MBX_LOG_WARN;
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0)
		return -1;
	if (strcasecmp(s, "error") == 0)
		return MBX_LOG_ERROR;
	if (strcasecmp(s, "info") == 0)
		return MBX_LOG_INFO;
	if (strcasecmp(s, "debug") == 0)
		return MBX_LOG_DEBUG;
	return MBX_LOG_WARN;
}

/* Writes the option being applied to `what`, for the error message. */
static void set_what(char *what, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_what(char *what, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, len, fmt, ap);
	va_end(ap);
}

int cli_build_config(const struct cli_sandbox_opts *o, mbx_config **out, char *what,
		     size_t whatlen, mbx_error **err)
{
	mbx_config *cfg = NULL;
	int rc, level;
	size_t i;

	*out = NULL;
	set_what(what, whatlen, "create config");
	rc = mbx_config_new(&cfg, err);
	if (rc != MBX_OK)
		return rc;
	level = log_level();
	if (level >= 0)
		mbx_config_set_log(cfg, (mbx_log_level_t)level, log_to_stderr, NULL);

	if (o->set & CLI_SET_ISOLATION) {
		set_what(what, whatlen, "--isolation");
		if ((rc = mbx_config_set_isolation(cfg, o->isolation, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_TRUST) {
		set_what(what, whatlen, "--trust");
		if ((rc = mbx_config_set_trust(cfg, o->trust, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_NETWORK) {
		set_what(what, whatlen, "--network");
		rc = mbx_config_set_network(cfg, o->network.policy, err);
		for (i = 0; rc == MBX_OK && i < o->network.n_domains; i++) {
			set_what(what, whatlen, "--network: domain `%s`", o->network.domains[i]);
			rc = mbx_config_add_allowed_domain(cfg, o->network.domains[i], err);
		}
		if (rc != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_TIMEOUT) {
		set_what(what, whatlen, "--timeout");
		if ((rc = mbx_config_set_timeout_ms(cfg, o->timeout_ms, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_MEMORY) {
		set_what(what, whatlen, "--memory");
		if ((rc = mbx_config_set_memory_limit(cfg, o->memory_bytes, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_DISK) {
		set_what(what, whatlen, "--disk");
		if ((rc = mbx_config_set_disk_limit(cfg, o->disk_bytes, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_CPU) {
		set_what(what, whatlen, "--cpu");
		if ((rc = mbx_config_set_cpu_limit(cfg, o->millicpus, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_MAX_PROCS) {
		set_what(what, whatlen, "--max-procs");
		if ((rc = mbx_config_set_max_processes(cfg, o->max_procs, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_OUTPUT_LIMIT) {
		set_what(what, whatlen, "--output-limit");
		if ((rc = mbx_config_set_output_limit(cfg, o->output_limit, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_WORKDIR) {
		set_what(what, whatlen, "--workdir `%s`", o->workdir);
		if ((rc = mbx_config_set_workdir(cfg, o->workdir, err)) != MBX_OK)
			goto fail;
	}
	if (o->set & CLI_SET_HOSTNAME) {
		set_what(what, whatlen, "--hostname `%s`", o->hostname);
		if ((rc = mbx_config_set_hostname(cfg, o->hostname, err)) != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_env; i++) {
		set_what(what, whatlen, "--env %s", o->env[i].name);
		rc = mbx_config_set_env(cfg, o->env[i].name, o->env[i].value, err);
		if (rc != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_mounts; i++) {
		set_what(what, whatlen, "--mount `%s:%s`", o->mounts[i].host, o->mounts[i].sandbox);
		rc = mbx_config_add_mount(cfg, o->mounts[i].host, o->mounts[i].sandbox,
					  o->mounts[i].flags, err);
		if (rc != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_hosts; i++) {
		set_what(what, whatlen, "--add-host `%s:%s`", o->hosts[i].name, o->hosts[i].address);
		rc = mbx_config_add_host_override(cfg, o->hosts[i].name, o->hosts[i].address, err);
		if (rc != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_ca_files; i++) {
		set_what(what, whatlen, "--ca-file `%s`", o->ca_files[i]);
		if ((rc = mbx_config_add_ca_file(cfg, o->ca_files[i], err)) != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_limits; i++) {
		set_what(what, whatlen, "--net-limit");
		rc = mbx_config_set_network_limit(cfg, o->limits[i].limit, o->limits[i].value, err);
		if (rc != MBX_OK)
			goto fail;
	}
	for (i = 0; i < o->n_http_rules; i++) {
		set_what(what, whatlen, "--http-rule");
		if ((rc = mbx_config_add_http_rule(cfg, o->http_rules[i], err)) != MBX_OK)
			goto fail;
	}
	if (o->allow_private)
		mbx_config_set_network_allow_private(cfg, 1);
	if (o->allow_degraded)
		mbx_config_set_allow_degraded(cfg, 1);
	what[0] = '\0';
	*out = cfg;
	return MBX_OK;

fail:
	mbx_config_free(cfg);
	return rc;
}

void cli_report_config(int json, const char *verb, int rc, const mbx_error *err, const char *what)
{
	char message[CLI_WHY_MAX + 256], hint[64];
	const char *suggestion = err ? mbx_error_suggestion(err) : NULL;

	snprintf(message, sizeof(message), "%s: %s", what,
		 err ? mbx_error_message(err) : mbx_error_code_name(rc));
	if (!suggestion) {
		snprintf(hint, sizeof(hint), "see `mimobox %s --help`", verb);
		suggestion = hint;
	}
	cli_report(json, err ? mbx_error_code(err) : rc, message, suggestion,
		   err ? mbx_error_layer(err) : NULL, err ? mbx_error_errno(err) : 0);
}

void cli_net_entry_report(struct cli_buf *b, int json, size_t index, const struct cli_net_entry *e)
{
	if (!json) {
		fprintf(stderr, "mimobox: net: %s %s %s %s:%u status %d: %s\n", e->source, e->verdict, e->method,
			e->host, e->port, e->status, e->reason);
		return;
	}
	cli_buf_puts(b, index ? ", {\"source\": " : "{\"source\": ");
	cli_json_cstring(b, e->source);
	cli_buf_printf(b, ", \"time_us\": %llu, \"method\": ", (unsigned long long)e->time_us);
	cli_json_cstring(b, e->method);
	cli_buf_puts(b, ", \"host\": ");
	cli_json_cstring(b, e->host);
	cli_buf_printf(b, ", \"port\": %u, \"address\": ", e->port);
	cli_json_cstring(b, e->address);
	cli_buf_puts(b, ", \"verdict\": ");
	cli_json_cstring(b, e->verdict);
	cli_buf_printf(b, ", \"status\": %d, \"reason\": ", e->status);
	cli_json_cstring(b, e->reason);
	cli_buf_printf(b, ", \"bytes_up\": %llu, \"bytes_down\": %llu}", (unsigned long long)e->bytes_up,
		       (unsigned long long)e->bytes_down);
}

/* ---- version ---- */

static int cmd_version(int argc, char **argv)
{
	static const struct cli_option options[] = {
		{ "json", 0, 0, CLI_OPT_VERB },
		CLI_HELP_OPTION,
		{ NULL, 0, 0, 0 }
	};
	struct cli_args a = { argc, argv, 1 };
	struct cli_buf b = CLI_BUF_INIT;
	char why[CLI_WHY_MAX];
	const char *value;
	int id, json = 0, rc;

	while ((id = cli_next_option(&a, options, &value, why, sizeof(why))) != CLI_OPT_END) {
		if (id == CLI_OPT_BAD) {
			cli_usage_error(json, "version", "%s", why);
			return CLI_EXIT_USAGE;
		}
		if (id == CLI_OPT_VERB) {
			json = 1;
			continue;
		}
		printf("Usage: mimobox version [--json]\n\nPrint the version of libmimobox"
		       " (also `mimobox --version`, `mimobox -V`).\n"
		       "  --json   one JSON object: {\"ok\": true, \"version\": ...}\n");
		return 0;
	}
	if (a.next < argc) {
		cli_usage_error(json, "version", "unexpected argument `%s`", argv[a.next]);
		return CLI_EXIT_USAGE;
	}
	if (!json) {
		printf("mimobox %s\n", mbx_version());
		return 0;
	}
	cli_buf_puts(&b, "{\"ok\": true, \"version\": ");
	cli_json_cstring(&b, mbx_version());
	cli_buf_puts(&b, "}\n");
	rc = b.failed || cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 ? 1 : 0;
	cli_buf_free(&b);
	return rc;
}

/* ---- dispatch ---- */

static void on_sigpipe(int sig)
{
	(void)sig;
}

/* The program's own argument strings, as the kernel laid them out: one
 * contiguous area that /proc/<pid>/cmdline shows to every user. */
static char *args_start;
static size_t args_len;

void cli_hide_argv(const char *title)
{
	size_t n;

	if (args_start == NULL || args_len == 0)
		return;
	n = strlen(title);
	if (n >= args_len)
		n = args_len - 1;
	memcpy(args_start, title, n);
	memset(args_start + n, 0, args_len - n);
}

/* Remembers the area of argv's strings for cli_hide_argv(): the strings
 * follow each other, argv[0] first; anything else leaves it unknown. */
static void keep_argv(int argc, char **argv)
{
	char *end;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++) {
		if (argv[i] != end)
			return;
		end += strlen(argv[i]) + 1;
	}
	args_start = argv[0];
	args_len = (size_t)(end - argv[0]);
}

/*
 * Whether `verb` may go through a server (docs/cli.md): the verbs of
 * sandboxes, not asked for their help.
 */
static int goes_remote(const char *verb, int argc, char **argv)
{
	static const char *const local_only[] = { "doctor", "serve", "setup", "version", NULL };

	for (size_t i = 0; local_only[i]; i++)
		if (strcmp(verb, local_only[i]) == 0)
			return 0;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 0;
	return 1;
}

static int has_json(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char *help_argv[] = { NULL, NULL, (char *)"--help", NULL };
	struct sigaction sa;
	const char *verb;
	size_t i;

	/*
	 * A closed stdout must not kill us while a sandbox is up: writes fail
	 * with EPIPE instead. A handler rather than SIG_IGN, because an ignored
	 * SIGPIPE survives execve() into the payload, where `yes | head` would
	 * then spin on EPIPE; a handler is reset to the default by execve().
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);

	keep_argv(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	verb = argv[1];
	if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(verb, "--version") == 0 || strcmp(verb, "-V") == 0)
		verb = "version";
	if (strcmp(verb, "help") == 0) {
		/* `mimobox help VERB` is `mimobox VERB --help`. */
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		verb = help_argv[1] = argv[2];
		argc = 3;
		argv = help_argv;
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, verb) == 0) {
			if (goes_remote(verb, argc - 1, argv + 1)) {
				struct cli_remote rem;
				int json = has_json(argc - 1, argv + 1), status;

				switch (cli_remote_pick(&rem, json)) {
				case -1:
					return CLI_EXIT_FAILED;
				case 1:
					status = cli_remote_verb(&rem, argc - 1, argv + 1);
					cli_remote_close(&rem);
					return status;
				default:
					break;
				}
			}
			return verbs[i].fn(argc - 1, argv + 1);
		}

	{
		const char *names[sizeof(verbs) / sizeof(verbs[0]) + 1];
		const char *pick;

		for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
			names[i] = verbs[i].name;
		names[i] = NULL;
		pick = cli_closest(verb, names);
		if (pick)
			fprintf(stderr, "mimobox: error: unknown command `%s`\n"
					"mimobox: hint: did you mean `mimobox %s`? see `mimobox --help`\n", verb, pick);
		else
			fprintf(stderr, "mimobox: error: unknown command `%s`\n"
					"mimobox: hint: see `mimobox --help`\n", verb);
	}
	return CLI_EXIT_USAGE;
}
