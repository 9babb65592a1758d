/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local terminal of the verbs that put a program on a sandbox's
 * terminal (`run -t`, `exec -t`, `shell`): raw mode restored on every way
 * out (return, exit, the signals that end us), the size, and SIGWINCH as
 * a descriptor to poll.
 */
#ifndef MBX_CLI_TERM_H
#define MBX_CLI_TERM_H

#include <stdint.h>

/* The local terminal's size (stdin's, else stdout's), or 24x80 without a terminal. */
void cli_term_size(uint16_t *rows, uint16_t *cols);

/*
 * Raw mode on a terminal stdin (nothing without one), restored by
 * cli_term_restore(), at exit and by SIGTERM, SIGHUP, SIGINT and SIGQUIT
 * before they end us. 0, or -1 with errno.
 */
int cli_term_raw(void);

/* Back to the mode cli_term_raw() found; safe to call at any time and again. */
void cli_term_restore(void);

/*
 * Starts watching SIGWINCH: returns a descriptor that becomes readable when
 * the terminal's size changed (drain it with cli_term_winch_drain()), or -1
 * with errno.
 */
int cli_term_watch_winch(void);

/* Empties the SIGWINCH descriptor. */
void cli_term_winch_drain(void);

#endif /* MBX_CLI_TERM_H */
