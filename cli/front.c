/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `mimobox` program: a small front that does the most frequent calls of
 * an agent platform itself, `mimobox run [--json] -- PROGRAM [ARG...]` and
 * `mimobox exec NAME [--json] -- PROGRAM [ARG...]` through a running
 * server, and hands every other command line, unchanged, to the whole CLI
 * (`mimobox-full`, main.c) with execv().
 *
 * Why a front: on the virtual machines this runs on, a program linked with
 * glibc spends about 0.7 ms of its start in glibc's CPU probing (`cpuid`
 * for the cache sizes, which the hypervisor traps), and the whole CLI loads
 * libmimobox besides. Built statically with musl (meson.build; with the
 * system's compiler when musl-gcc is missing), the front starts in a few
 * tens of microseconds, and a run through a server is the front, one HTTP
 * exchange and the sandbox's own work.
 *
 * The front shares the CLI's code for everything it does (remote_conn.c:
 * which server, the exchange, the server's errors and the run's outcome;
 * outcome.c: the words and exit statuses), so a run gives the same output,
 * messages and exit status whichever program served it. Whatever it does
 * not take exactly (any option but --json, no server, a Wasm program, a
 * name the whole CLI would refuse) goes to the whole CLI before anything
 * was sent.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "remote.h"

#if !defined(MBX_FULL_CLI_INSTALLED) || !defined(MBX_BINDIR) || !defined(MBX_LIBEXECDIR)
#error "meson.build defines where the whole CLI is installed"
#endif

#define FULL_CLI_NAME "mimobox-full"

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* execv() of dir/tail; errno stays for the caller. */
static void exec_in(const char *dir, size_t dirlen, const char *tail, char **argv)
{
	char path[PATH_MAX];

	if (dirlen + strlen(tail) < sizeof(path)) {
		memcpy(path, dir, dirlen);
		strcpy(path + dirlen, tail);
		execv(path, argv);
	}
}

/*
 * Hands the command line to the whole CLI: beside this program (a build
 * tree), else in the installed tree this program is in (PREFIX/BINDIR/mimobox
 * gives PREFIX/LIBEXECDIR/mimobox/mimobox-full, also under a DESTDIR or a
 * moved prefix), else where meson installs it.
 */
static int exec_full(char **argv)
{
	static const char bin_tail[] = "/" MBX_BINDIR "/mimobox";
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int e = ENOENT;

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			exec_in(self, (size_t)(slash - self), "/" FULL_CLI_NAME, argv);
			e = errno;
		}
		if ((size_t)n > strlen(bin_tail) && strcmp(self + n - strlen(bin_tail), bin_tail) == 0) {
			exec_in(self, (size_t)n - strlen(bin_tail), "/" MBX_LIBEXECDIR "/mimobox/" FULL_CLI_NAME, argv);
			if (errno != ENOENT)
				e = errno;
		}
	}
	execv(MBX_FULL_CLI_INSTALLED, argv);
	if (errno != ENOENT)
		e = errno;
	fprintf(stderr, "mimobox: error: cannot start the CLI's main program (%s beside this one, or %s): %s\n"
		"mimobox: hint: reinstall mimobox (`meson install`)\n", FULL_CLI_NAME, MBX_FULL_CLI_INSTALLED,
		strerror(e));
	return CLI_EXIT_FAILED;
}

/* The JSON body of an execute of operands[0, n): {"argv": [...]}; -1 when it cannot be made or is over the server's limit. */
static int argv_body(struct cli_buf *body, char **operands, int n)
{
	cli_buf_puts(body, "{\"argv\": [");
	for (int i = 0; i < n; i++) {
		cli_buf_puts(body, i ? ", " : "");
		cli_json_cstring(body, operands[i]);
	}
	cli_buf_puts(body, "]}");
	return body->failed || body->len > CLI_REMOTE_JSON_BODY_MAX ? -1 : 0;
}

/*
 * `run` (name NULL) or `exec NAME` through the server, when a server was
 * picked: the exit status; -1 when the whole CLI should do it (nothing was
 * sent: no server, or a request the whole CLI words its own refusal of).
 */
static int fast(int json, const char *name, char **operands, int n)
{
	struct cli_remote rem;
	struct cli_remote_answer a;
	struct cli_buf body = CLI_BUF_INIT, target = CLI_BUF_INIT;
	char *exit_text = NULL;
	size_t exit_len = 0;
	int status = CLI_EXIT_FAILED;

	switch (cli_remote_pick(&rem, json)) {
	case -1:
		return CLI_EXIT_FAILED;
	case 1:
		break;
	default:
		return -1;
	}
	if (name)
		cli_remote_sandbox_target(&target, name, json ? "/exec" : "/exec?stream=1");
	if (argv_body(&body, operands, n) < 0 || target.failed) {
		status = -1;
	} else if (!name) {
		if (cli_remote_call(&rem, json, "POST", "/v1/run", "application/json", body.data, body.len,
				    CLI_REMOTE_JSON_ANSWER_MAX, &a) == 0) {
			status = a.status == 200 ? cli_remote_outcome(a.body.data, a.body.len, json, 0, NULL)
						 : cli_remote_report(&rem, json, &a);
			cli_buf_free(&a.body);
		}
	} else if (json) {
		if (cli_remote_call(&rem, json, "POST", target.data, "application/json", body.data, body.len,
				    CLI_REMOTE_JSON_ANSWER_MAX, &a) == 0) {
			status = a.status == 200 ? cli_remote_outcome(a.body.data, a.body.len, 1, 0, NULL)
						 : cli_remote_exec_failed(&rem, 1, name, &a);
			cli_buf_free(&a.body);
		}
	} else {
		status = cli_remote_exec_stream(&rem, name, target.data, body.data, body.len, &exit_text, &exit_len);
		if (status == 0)
			status = cli_remote_outcome(exit_text, exit_len, 0, 1, NULL);
		free(exit_text);
	}
	cli_buf_free(&target);
	cli_buf_free(&body);
	cli_remote_close(&rem);
	return status;
}

/* A sandbox name the whole CLI takes (cli_check_name's rule); others get its words. */
static int plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CLI_NAME_MAX || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static void on_sigpipe(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	int i, json = 0;

	if (argc < 4 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "exec") != 0))
		return exec_full(argv);
	i = 2;
	if (strcmp(argv[1], "exec") == 0) {
		if (!plain_name(argv[2]))
			return exec_full(argv);
		name = argv[i++];
	}
	if (i < argc && strcmp(argv[i], "--json") == 0) {
		json = 1;
		i++;
	}
	/* `... -- PROGRAM...`; for run, PROGRAM not a Wasm file of the host (the whole CLI refuses it through a server). */
	if (i + 1 < argc && strcmp(argv[i], "--") == 0 && argv[i + 1][0] != '\0' &&
	    (name || (!ends_with(argv[i + 1], ".wasm") && !ends_with(argv[i + 1], ".wat")))) {
		struct sigaction sa;
		int status;

		/* As main.c: a closed stdout gives EPIPE, not death. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigpipe;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGPIPE, &sa, NULL);
		status = fast(json, name, argv + i + 1, argc - i - 1);
		if (status >= 0)
			return status;
	}
	return exec_full(argv);
}
