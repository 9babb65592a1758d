/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local terminal (term.h): raw mode and its restoration, the size, and
 * SIGWINCH through a self-pipe, for `run -t`, `exec -t` and `shell`.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;
static int winch_pipe[2] = { -1, -1 };

void cli_term_restore(void)
{
	if (tio_saved)
		(void)tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
	tio_saved = 0;
}

/* A signal that ends us: the terminal must not stay raw. */
static void on_fatal_signal(int sig)
{
	cli_term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_winch(int sig)
{
	int saved = errno;
	char c = (char)sig;

	(void)!write(winch_pipe[1], &c, 1);
	errno = saved;
}

void cli_term_size(uint16_t *rows, uint16_t *cols)
{
	struct winsize ws;

	if ((ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) &&
	    ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	} else {
		*rows = 24;
		*cols = 80;
	}
}

int cli_term_raw(void)
{
	static const int fatal[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT };
	static int at_exit;
	struct sigaction sa;
	struct termios raw;
	size_t i;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_fatal_signal;
	for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	tio_saved = 1;
	if (!at_exit && atexit(cli_term_restore) == 0)
		at_exit = 1;
	raw = saved_tio;
	cfmakeraw(&raw);
	return tcsetattr(STDIN_FILENO, TCSADRAIN, &raw);
}

int cli_term_watch_winch(void)
{
	struct sigaction sa;

	if (winch_pipe[0] < 0 && pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGWINCH, &sa, NULL) < 0)
		return -1;
	return winch_pipe[0];
}

void cli_term_winch_drain(void)
{
	char drain[64];

	while (winch_pipe[0] >= 0 && read(winch_pipe[0], drain, sizeof(drain)) > 0)
		;
}
