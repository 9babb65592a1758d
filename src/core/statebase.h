/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the per-user state of mimobox lives (sandbox directories, the
 * registry of named sandboxes, the wasm cache key) and the checks that make
 * it private to the caller. Plain POSIX and no libmimobox types: the CLI
 * compiles this file too, so the library and the CLI always agree on the
 * place and the rules.
 *
 * The place: $MIMOBOX_STATE_DIR when absolute, /run/mimobox for root,
 * $XDG_RUNTIME_DIR/mimobox when that is writable, else /tmp/mimobox-<uid>.
 * The last one sits in a world-writable directory where another user may
 * have made it first (to read what we put there, to plant files, or just to
 * stop us): it is only used when it is a real directory (not a symlink)
 * owned by the caller that nobody else can write.
 */
#pragma once

#include <stddef.h>

/* The base path by the rules above (not checked); malloc'd, NULL on ENOMEM. */
char *mbx__statebase_path(void);

/*
 * Makes `dir` a private directory of the caller: creates it 0700 when it is
 * missing (its parent must exist), refuses a symlink, a non-directory, a
 * directory owned by another uid and one writable by group or others (files
 * may have been planted in it), and takes any remaining group/other bits
 * away (0700). Returns 0, or -1 with errno set and a message in why[whylen]
 * naming the path, what is wrong and what to do.
 */
int mbx__statebase_check(const char *dir, char *why, size_t whylen);
