/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What `mimobox cp` does on the host side, the same whether the sandbox is
 * reached through its supervisor (cmd_cp.c) or through a server
 * (remote_files.c): the counts and skips of a tree copy, its --json line,
 * the host directories and symlinks it makes, and its errors.
 */
#ifndef MBX_CLI_CP_TREE_H
#define MBX_CLI_CP_TREE_H

#include <stdint.h>

#include "json.h"

/* Directories a tree copy goes down at most, either way. */
#define CP_MAX_DEPTH 128

extern const char cp_special_reason[];	/* why a special file is skipped */
extern const char cp_symlink_reason[];	/* why an unreadable symlink is skipped */

/* What a copy did: counted for its --json line. */
struct cp_stats {
	int json;
	uint64_t files, dirs, links, bytes;
	struct cli_buf skipped;	/* JSON objects, comma-separated */
	size_t n_skipped;
};

/* A file cp -r leaves out (a special file, a symlink): said on stderr, or listed in --json. */
void cp_skip(struct cp_stats *cs, const char *path, const char *reason);

/*
 * Ends a copy whose status is `rc`: with --json and success, its line
 * ({"ok": true, "files": ..., "skipped": [...]}) on stdout. Frees the skip
 * list; returns the exit status (1 when the line cannot be written).
 */
int cp_done(struct cp_stats *cs, int rc);

/* Reports running out of memory; returns CLI_EXIT_FAILED. */
int cp_oom(int json);

/* Reports a host call that failed on `path`; returns 1. */
int cp_host_error(int json, const char *what, const char *path, int e);

/* Reports a tree deeper than CP_MAX_DEPTH at `dir`; returns 1. */
int cp_too_deep(int json, const char *dir);

/* "DIR/BASE": `base_of`'s last component under `dir`. NULL when out of memory. */
char *cp_join(const char *dir, const char *base_of);

/*
 * Makes the host directory `hpath` for a copy, or takes an existing real
 * directory (never a symlink to one: nothing is written outside the tree
 * being made). 0, or 1 after reporting.
 */
int cp_host_dir(const char *hpath, int json);

/*
 * Makes the host symlink `hpath` -> `target` (replacing a file or link of
 * that name, never a directory), counted in cs. The target is stored as it
 * is, not followed, here or later by cp. 0, or 1 after reporting.
 */
int cp_host_symlink(struct cp_stats *cs, const char *target, const char *hpath);

#endif
