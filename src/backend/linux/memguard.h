/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory guard: a second seccomp filter for sandboxes whose memory
 * limit is enforced by rlimits only (no usable cgroup). RLIMIT_DATA counts a
 * process's private writable mappings; memory that lives in shmem objects
 * outside any file system the sandbox sees would escape it. The guard closes
 * the system calls that make such objects:
 *
 *   memfd_create, memfd_secret       ENOSYS (programs fall back to a file,
 *                                    e.g. in /tmp, whose size is bounded)
 *   mmap(MAP_SHARED|MAP_ANONYMOUS)   ENOMEM (as when memory runs out)
 *
 * SysV shared memory is bounded separately, through the sandbox's own ipc
 * namespace (the agent's MBX_F_SHM_LIMIT), and files by the storage tmpfs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The raw filter (struct sock_filter array) as borrowed static data. */
void mbx__memguard_filter(const uint8_t **prog, size_t *len);
