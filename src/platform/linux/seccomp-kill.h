/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kill action of the embedded seccomp programs, chosen on the running
 * host. tools/gen-seccomp.c always compiles SECCOMP_RET_KILL_PROCESS (Linux
 * 4.14); whoever installs a program asks the running kernel whether it knows
 * that action (seccomp(SECCOMP_GET_ACTION_AVAIL)) and, where it does not,
 * rewrites every "return KILL_PROCESS" into "return KILL_THREAD", which every
 * seccomp kernel knows. Only the immediate of return instructions changes,
 * so jump offsets and program length stay as they are. Used by the agent
 * (which installs the programs) and the unit tests; needs nothing but libc.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MBX_SECCOMP_RET_KILL_PROCESS 0x80000000U
#define MBX_SECCOMP_RET_KILL_THREAD 0x00000000U
#define MBX_SECCOMP_GET_ACTION_AVAIL 2U
#define MBX_BPF_RET_K 0x06U /* BPF_RET | BPF_K */

/* SECCOMP_RET_KILL_PROCESS when the running kernel supports it, else
 * SECCOMP_RET_KILL_THREAD. */
static inline uint32_t mbx_seccomp_host_kill_action(void)
{
#ifdef __NR_seccomp
	uint32_t action = MBX_SECCOMP_RET_KILL_PROCESS;

	if (syscall(__NR_seccomp, MBX_SECCOMP_GET_ACTION_AVAIL, 0U, &action) == 0)
		return MBX_SECCOMP_RET_KILL_PROCESS;
#endif
	return MBX_SECCOMP_RET_KILL_THREAD;
}

/*
 * Rewrites the kill returns of `prog` (`len` bytes of struct sock_filter) to
 * `kill_action`. Returns how many instructions were rewritten.
 */
static inline size_t mbx_seccomp_set_kill_action(uint8_t *prog, size_t len, uint32_t kill_action)
{
	size_t n = 0;

	if (kill_action == MBX_SECCOMP_RET_KILL_PROCESS)
		return 0;
	for (size_t off = 0; off + 8 <= len; off += 8) {
		uint16_t code;
		uint32_t k;

		memcpy(&code, prog + off, sizeof(code));
		memcpy(&k, prog + off + 4, sizeof(k));
		if (code == MBX_BPF_RET_K && k == MBX_SECCOMP_RET_KILL_PROCESS) {
			memcpy(prog + off + 4, &kill_action, sizeof(kill_action));
			n++;
		}
	}
	return n;
}
