/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mount plan: the list of steps that turn an empty tmpfs into the
 * sandbox's root, computed on the host (pure apart from looking at which
 * system directories exist) and carried out by the agent (src/agent/setup.c).
 * The same input gives the Landlock rules for payloads.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "internal.h"
#include "proto.h"

struct mbx_plan_entry {
	uint32_t op;    /* MBX_MOP_* */
	uint32_t flags; /* MBX_MF_* */
	uint32_t mode;
	char *src;
	char *dst;
	char *data;
	size_t data_len;
	int fd_index;   /* MBX_MOP_ATTACH, MBX_MOP_COPY from a descriptor: which passed one, else -1 */
	int in_blob;    /* MBX_MOP_COPY: `size` bytes at `offset` of the /etc memfd (etcfiles.h) */
	uint64_t offset;
	uint64_t size;
	dev_t dev;      /* MBX_MF_USER: the source as configured; a host file copied: its lstat */
	ino_t ino;
	int has_stat;   /* a host file copied: the rest of its lstat when the plan was built */
	off_t st_size;
	mode_t st_mode;
	struct timespec st_mtim, st_ctim;
};

struct mbx_ll_rule {
	char *path;
	uint32_t class; /* MBX_LL_* */
};

struct mbx_mountplan {
	struct mbx_plan_entry *e;
	size_t n;
	struct mbx_ll_rule *ll;
	size_t nll;
};

/*
 * Builds the plan for a config. `storage_bytes` sizes the tmpfs that holds
 * /workspace, /tmp and /dev/shm (its inode limit follows, mbx__disk_inodes);
 * `host_root` is where the host's system directories are looked up ("" for
 * the real root; tests pass a fake tree).
 */
int mbx__mountplan_build(struct mbx_mountplan *plan, const mbx_config *cfg, uint64_t storage_bytes,
			 const char *host_root, mbx_error **err);
/* Appends the plan's MBX_F_MOUNT and MBX_F_LL_PATH fields to an open frame. */
void mbx__mountplan_encode(const struct mbx_mountplan *plan, struct mbx_wbuf *w);
/* Adds a copy of the host file `host` at `dst` below /etc (where it turns
 * read-only with the rest of /etc). Returns 0, or -1 (no /etc, no memory). */
int mbx__mountplan_add_etc_copy(struct mbx_mountplan *plan, const char *host, const char *dst);
void mbx__mountplan_release(struct mbx_mountplan *plan);
