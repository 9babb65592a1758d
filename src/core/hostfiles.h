/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file API for sandboxes without an agent (wasm): served on the host,
 * inside the sandbox's workspace directory only, with every path resolved by
 * openat2(RESOLVE_IN_ROOT) so that symlinks and `..` stay inside it.
 */
#pragma once

#include "internal.h"

struct mbx_file_info;

/* A sandbox path as a path relative to the workspace root ("." for
 * /workspace). MBX_ENOTFOUND for paths outside /workspace. Malloc'd. */
int mbx__host_rel(const char *path, char **out, mbx_error **err);

int mbx__host_read(const char *root, const char *path, uint64_t limit, int (*sink)(void *, const uint8_t *, size_t),
		   void *arg, mbx_error **err);
int mbx__host_write(const char *root, const char *path, uint32_t mode, uint32_t flags, uint64_t limit,
		    ssize_t (*src)(void *, uint8_t *, size_t), void *arg, mbx_error **err);
int mbx__host_stat(const char *root, const char *path, struct mbx_file_info *out, mbx_error **err);
/* Calls fn(name, info, arg) for each entry. */
int mbx__host_list(const char *root, const char *path, int (*fn)(const struct mbx_file_info *, void *), void *arg,
		   mbx_error **err);
int mbx__host_mkdir(const char *root, const char *path, uint32_t mode, int parents, mbx_error **err);
int mbx__host_remove(const char *root, const char *path, int recursive, mbx_error **err);
int mbx__host_rename(const char *root, const char *from, const char *to, mbx_error **err);
/* The target of the symlink `path` (not followed): *out malloc'd. */
int mbx__host_readlink(const char *root, const char *path, char **out, mbx_error **err);
/* Makes the symlink `path` pointing at `target`, taken as is. */
int mbx__host_symlink(const char *root, const char *target, const char *path, mbx_error **err);
