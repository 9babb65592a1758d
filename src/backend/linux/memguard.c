/* SPDX-License-Identifier: Apache-2.0 */
/* The memory guard filter; see memguard.h. Hand-written BPF: the library
 * does not link libseccomp, and the program is a dozen instructions. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "memguard.h"

#if defined(__x86_64__)
#define GUARD_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GUARD_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define GUARD_ARCH AUDIT_ARCH_RISCV64
#else
#error "memguard: add the AUDIT_ARCH of this architecture"
#endif

/* memfd_secret is 447 wherever it exists; older headers lack the name. */
#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

/* The low 32 bits of argument 3 (mmap's flags, an int). */
#if __BYTE_ORDER == __LITTLE_ENDIAN
#define ARG3_LO offsetof(struct seccomp_data, args[3])
#else
#define ARG3_LO (offsetof(struct seccomp_data, args[3]) + 4)
#endif

/* MAP_SHARED (1) or MAP_SHARED_VALIDATE (3) together with MAP_ANONYMOUS. */
#define SHARED_MASK (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS)

static const struct sock_filter guard[] = {
	/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, 1, 0),
	/* 2 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* the main filter kills foreign ABIs */
	/* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_create, 8, 0),
	/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_secret, 7, 0),
	/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 4),
	/* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG3_LO),
	/* 8 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SHARED_MASK),
	/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAP_SHARED | MAP_ANONYMOUS, 2, 0),
	/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, 1, 0),
	/* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	/* 12 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOMEM & SECCOMP_RET_DATA)),
	/* 13 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
};

void mbx__memguard_filter(const uint8_t **prog, size_t *len)
{
	*prog = (const uint8_t *)guard;
	*len = sizeof(guard);
}
