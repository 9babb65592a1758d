/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host state directories of sandboxes, shared by the backends: where they
 * live, the lock a live sandbox holds on its own, and the collection of
 * directories whose owner died without destroying them.
 */
#pragma once

#include "internal.h"

/*
 * One sandbox's host state, locked for the sandbox's life: either the
 * directory <base>/<id> with its lock <base>/<id>/lock, for a sandbox that
 * keeps files on the host, or only the lock file <base>/<id>.lock, for one
 * that keeps none (an os sandbox without a CA bundle or pasta: one file to
 * make and remove instead of a directory and its entries). Either way the
 * backend's record for a later collector (the cgroups) goes with the lock:
 * in <dir>/cgroups, or in the lock file itself.
 */
struct mbx_statedir {
	char *dir;      /* <base>/<id>, or NULL for a lock file only; owned */
	int made;       /* we created `dir` (so release removes it) */
	int lockfd;     /* flock on the lock held while the sandbox lives; owned */
	char *lockfile; /* <base>/<id>.lock of a sandbox without a directory, else NULL; owned */
};

#define MBX_STATEDIR_INIT { NULL, 0, -1, NULL }

/* Where sandbox directories live: $MIMOBOX_STATE_DIR, /run/mimobox for root,
 * $XDG_RUNTIME_DIR/mimobox, or /tmp/mimobox-<uid>; created 0700 and checked
 * to be a private directory of the caller (statebase.h). *out is malloc'd. */
int mbx__statedir_base(char **out, mbx_error **err);

/* Removes the directories and lock files of dead sandboxes under `base`
 * (all but `self`). `release`, when not NULL, is called on each before it
 * is removed, to drop what a backend recorded (cgroups): with the directory
 * (NULL for a lock file alone) and the file holding the record. Never
 * fails. */
void mbx__statedir_collect(const char *base, const char *self, void (*release)(const char *dir, const char *record));

/* Creates <base>/<id> with `mode` and takes its lock. On failure `sd` holds
 * what was made so far: call mbx__statedir_release(). */
int mbx__statedir_create(struct mbx_statedir *sd, const char *base, const char *id, mode_t mode, mbx_error **err);

/* A new sandbox's directory <base>/<id> (0700, locked), after collecting
 * the directories of dead sandboxes of every backend with the cgroups they
 * recorded: what every backend does first. */
int mbx__statedir_new_sandbox(struct mbx_statedir *sd, const char *id, mbx_error **err);

/* A new sandbox's lock file <base>/<id>.lock (0600, locked, no
 * directory), after the same collection. */
int mbx__statedir_new_lock(struct mbx_statedir *sd, const char *id, mbx_error **err);

/* Writes the backend's record for a collector (see the struct): `text`
 * replaces what was recorded. 0, or -1 with errno set. */
int mbx__statedir_record(const struct mbx_statedir *sd, const char *text);

/* Removes the directory (when we made it) or the lock file, drops the
 * lock, frees. */
void mbx__statedir_release(struct mbx_statedir *sd);
