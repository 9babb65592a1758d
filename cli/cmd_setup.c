/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox setup vm [--check]`: builds (or only verifies) the microvm
 * backend's guest assets by running scripts/vm-assets.sh, whose progress goes
 * straight to our stderr. The assets go where the library looks for them:
 * $MIMOBOX_VM_DIR, else the directory this build was configured with, which
 * is handed to the script as MIMOBOX_VM_DIR so both always agree.
 *
 * The script: $MIMOBOX_VM_SCRIPT when set; the checkout's copy when this is
 * the build tree's CLI; else the installed copy under <datadir>/mimobox/.
 * Exit 0 when the assets are there and verified, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#if !defined(MBX_VM_DEFAULT_DIR) || !defined(MBX_VM_SCRIPT_SOURCE) || !defined(MBX_VM_SCRIPT_INSTALLED) || \
	!defined(MBX_BUILD_CLI)
#error "meson.build defines where the guest assets and their script are"
#endif

enum {
	OPT_CHECK = CLI_OPT_VERB,
};

static const struct cli_option setup_options[] = {
	{ "check", 0, 0, OPT_CHECK },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static void usage(void)
{
	printf("Usage: mimobox setup vm [--check]\n"
	       "\n"
	       "Build the microvm backend's guest assets (a Linux kernel and a root\n"
	       "image) where the library looks for them, or check them. Building takes\n"
	       "minutes, needs root (apt-get, debootstrap) and happens once: assets\n"
	       "already there are only verified. Progress goes to stderr; the last line\n"
	       "says where the assets are.\n"
	       "\n"
	       "  --check      verify only (the SHA-256 of each asset against its\n"
	       "               manifest); build nothing\n"
	       "  -h, --help   show this help\n"
	       "\n"
	       "The directory: $MIMOBOX_VM_DIR when set, else the one this build was\n"
	       "configured with.\n"
	       "\n"
	       "Exit status: 0 when the assets are there and verified, 1 when not,\n"
	       "125 for bad arguments.\n");
}

/* The guest asset script this CLI runs (see the top). */
static const char *script_path(void)
{
	const char *env = getenv("MIMOBOX_VM_SCRIPT");
	struct stat self, built;

	if (env && *env)
		return env;
	if (stat("/proc/self/exe", &self) == 0 && stat(MBX_BUILD_CLI, &built) == 0 && self.st_dev == built.st_dev &&
	    self.st_ino == built.st_ino)
		return MBX_VM_SCRIPT_SOURCE;
	return MBX_VM_SCRIPT_INSTALLED;
}

/*
 * Runs `/bin/sh script MODE` with MIMOBOX_VM_DIR=dir, stdin on /dev/null,
 * stderr shared, stdout into out[len] (the directory it prints). Returns its
 * wait status, or -1 with errno when it could not be run.
 */
static int run_script(const char *script, const char *mode, char *out, size_t len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_int, old_quit;
	int fds[2], status = -1, e = 0;
	size_t got = 0;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	/* As system(3): a ^C reaches the script (same process group), which
	 * cleans up and exits; we wait for it and report how it ended. */
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(fds[0]);
		close(fds[1]);
		goto out;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(fds[1], 1) < 0)
			_exit(127);
		execl("/bin/sh", "sh", script, mode, (char *)NULL);
		fprintf(stderr, "mimobox: error: cannot run /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], out + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == len - 1) {
			/* more than a directory name: drain the rest */
			char sink[512];
			ssize_t m;

			do
				m = read(fds[0], sink, sizeof(sink));
			while (m > 0 || (m < 0 && errno == EINTR));
			break;
		}
	}
	out[got] = '\0';
	out[strcspn(out, "\n")] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			e = errno;
			status = -1;
			break;
		}
	}
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (status == -1)
		errno = e;
	return status;
}

/* Takes the options at a->next (`--check`, `--help`), allowed before and
 * after `vm`. -1 to go on, else the exit status (help shown, usage error). */
static int setup_options_at(struct cli_args *a, int *check)
{
	char why[CLI_WHY_MAX];
	const char *value;
	int id;

	while ((id = cli_next_option(a, setup_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		if (id == CLI_OPT_HELP) {
			usage();
			return 0;
		}
		if (id == OPT_CHECK) {
			*check = 1;
			continue;
		}
		cli_usage_error(0, "setup", "%s", why);
		return CLI_EXIT_USAGE;
	}
	return -1;
}

int cli_cmd_setup(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1, 0 };
	char why[CLI_WHY_MAX], printed[4200];
	const char *script, *env_dir, *dir, *mode;
	int rc, check = 0, status;
	struct stat st;

	/* `setup [--help] vm [--check] [--help]` */
	if ((rc = setup_options_at(&a, &check)) >= 0)
		return rc;
	if (a.next >= argc) {
		cli_usage_error(0, "setup", "say what to set up: `mimobox setup vm`");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[a.next], "vm") != 0) {
		cli_usage_error(0, "setup", "unknown thing to set up `%s`: the only one is `vm`", argv[a.next]);
		return CLI_EXIT_USAGE;
	}
	a.next++;
	if ((rc = setup_options_at(&a, &check)) >= 0)
		return rc;
	if (a.next < argc) {
		cli_usage_error(0, "setup", "unexpected argument `%s`", argv[a.next]);
		return CLI_EXIT_USAGE;
	}

	env_dir = getenv("MIMOBOX_VM_DIR");
	dir = env_dir && *env_dir ? env_dir : MBX_VM_DEFAULT_DIR;
	if (dir[0] != '/') {
		cli_report(0, MBX_EINVAL, "MIMOBOX_VM_DIR must be an absolute path", "set it to an absolute path, or unset it for the build's default", NULL, 0);
		return CLI_EXIT_USAGE;
	}
	script = script_path();
	errno = 0;
	if (stat(script, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, sizeof(why), "the guest asset script `%s` is missing: %s", script,
			 errno ? strerror(errno) : "not a file");
		cli_report(0, MBX_ENOTFOUND, why,
			   "reinstall mimobox, or set MIMOBOX_VM_SCRIPT to scripts/vm-assets.sh of a mimobox checkout "
			   "(with its tools/vm/kernel.config)", NULL, 0);
		return 1;
	}
	if (setenv("MIMOBOX_VM_DIR", dir, 1) < 0) {
		cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, 0);
		return 1;
	}
	mode = check ? "verify" : "build";
	fprintf(stderr, "mimobox: %s the microvm guest assets in %s (%s %s)\n",
		check ? "checking" : "building or checking", dir, script, mode);
	status = run_script(script, mode, printed, sizeof(printed));
	if (status == -1) {
		snprintf(why, sizeof(why), "cannot run `%s`: %s", script, strerror(errno));
		cli_report(0, MBX_ESYS, why, NULL, NULL, 0);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, sizeof(why), "`%s %s` was killed by signal %d: the assets in %s are not ready", script,
			 mode, WTERMSIG(status), dir);
		cli_report(0, MBX_ESYS, why, "run `mimobox setup vm` again (an interrupted build leaves nothing behind)",
			   NULL, 0);
		return 1;
	}
	if (WEXITSTATUS(status) != 0) {
		snprintf(why, sizeof(why), "the microvm guest assets in %s are %s (`%s %s` exited with status %d; its "
			 "messages are above)", dir, check ? "not usable" : "not ready", script, mode, WEXITSTATUS(status));
		cli_report(0, check ? MBX_ENOTFOUND : MBX_ESYS, why,
			   check ? "run `mimobox setup vm` to build them (as root), after removing the directory if "
				   "the messages above call it damaged"
				 : NULL,
			   NULL, 0);
		return 1;
	}
	if (strcmp(printed, dir) != 0) {
		snprintf(why, sizeof(why), "`%s %s` reported the directory `%s`, not %s", script, mode, printed, dir);
		cli_report(0, MBX_ESYS, why, "use the script of this mimobox build (MIMOBOX_VM_SCRIPT)", NULL, 0);
		return 1;
	}
	printf("microvm guest assets %s in %s\n", check ? "verified" : "ready and verified", dir);
	return 0;
}
