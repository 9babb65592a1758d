/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host state directories of sandboxes, shared by the backends: where they
 * live, the lock a live sandbox holds on its own, and the collection of
 * directories whose owner died without destroying them.
 */
#pragma once

#include "internal.h"

/* One sandbox's directory <base>/<id>, locked for the sandbox's life. */
struct mbx_statedir {
	char *dir;  /* owned */
	int made;   /* we created `dir` (so release removes it) */
	int lockfd; /* flock on <dir>/lock held while the sandbox lives; owned */
};

#define MBX_STATEDIR_INIT { NULL, 0, -1 }

/* Where sandbox directories live: $MIMOBOX_STATE_DIR, /run/mimobox for root,
 * $XDG_RUNTIME_DIR/mimobox, or /tmp/mimobox-<uid>; created 0700 and checked
 * to be a private directory of the caller (statebase.h). *out is malloc'd. */
int mbx__statedir_base(char **out, mbx_error **err);

/* Removes the directories of dead sandboxes under `base` (all but `self`).
 * `release`, when not NULL, is called on each before it is removed, to drop
 * what a backend recorded there (cgroups). Never fails. */
void mbx__statedir_collect(const char *base, const char *self, void (*release)(const char *dir));

/* Creates <base>/<id> with `mode` and takes its lock. On failure `sd` holds
 * what was made so far: call mbx__statedir_release(). */
int mbx__statedir_create(struct mbx_statedir *sd, const char *base, const char *id, mode_t mode, mbx_error **err);

/* A new sandbox's directory <base>/<id> (0700, locked), after collecting
 * the directories of dead sandboxes of every backend with the cgroups they
 * recorded: what every backend does first. */
int mbx__statedir_new_sandbox(struct mbx_statedir *sd, const char *id, mbx_error **err);

/* Removes the directory (when we made it), drops the lock, frees. */
void mbx__statedir_release(struct mbx_statedir *sd);
