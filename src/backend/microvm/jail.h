/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU's jail (docs/microvm.md, "QEMU's jail"): QEMU runs as the only
 * process of an os-backend sandbox of its own, built through the library's
 * internal API, on top of QEMU's own `-sandbox on`:
 *
 *	namespaces      user, pid, mount, network (no interface but loopback),
 *	                IPC, UTS, cgroup: the os backend's
 *	file view       the os backend's read-only system directories (/usr,
 *	                /lib*, /bin, /sbin, a generated /etc), the given
 *	                read-only paths (the asset directory) and the run
 *	                directory read-write, each at its host path so QEMU's
 *	                argv needs no rewriting; nothing else of the host
 *	payload layers  seccomp (the VMM program: untrusted, io_uring EPERM),
 *	                Landlock with the untrusted scopes,
 *	                no_new_privs, every capability dropped
 *	limits          memory = memory_bytes (guest RAM + QEMU's own),
 *	                CPU quota from millicpus, a process (thread) cap
 *
 * Internal only: not exported from libmimobox.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Threads QEMU may have (the pids limit of the jail): the main loop, RCU,
 * one per vCPU, and its block I/O thread pool (at most 64 workers). */
#define MBX_VM_JAIL_MAX_TASKS 128u

/* Smallest memory_bytes accepted: below it TCG cannot even start. */
#define MBX_VM_JAIL_MEMORY_MIN (64ull << 20)

/* What QEMU needs beyond guest RAM (measured under TCG, docs/microvm.md):
 * with a cgroup about 65 MiB resident after boot; on the rlimit rung (the
 * limit is RLIMIT_DATA: private writable mappings, touched or not) 160 MiB
 * failed and 192 MiB worked with a 64 MiB translation buffer. So:
 * memory_bytes = guest RAM + MBX_VM_JAIL_OVERHEAD, and under TCG the argv
 * carries `-accel tcg,tb-size=MBX_VM_JAIL_TB_SIZE_MIB` (required on the
 * rlimit rung: QEMU's default buffer is 1 GiB). */
#define MBX_VM_JAIL_OVERHEAD (192ull << 20)
/* A restored guest's RAM is a private (copy-on-write) mapping, which
 * RLIMIT_DATA counts whole from the start (a booted guest's is a shared
 * file, counted by the storage size instead): measured 647 MiB of data for
 * a restored 512 MiB guest at rest, and a snapshot of it (QEMU's migration
 * thread) then failed to start a thread under guest RAM + 192 MiB. So a
 * restored guest's jail gets this much more. */
#define MBX_VM_JAIL_PRIVATE_RAM_EXTRA (128ull << 20)
#define MBX_VM_JAIL_TB_SIZE_MIB 64u
/* Private memory QEMU needs besides the translation buffer, rlimit rung. */
#define MBX_VM_JAIL_TB_HEADROOM (96ull << 20)

struct mbx_vm_jail_spec {
	char *const *argv;             /* QEMU's argv (mbx__vm_qemu_argv()); argv[0] absolute */
	const char *const *ro_paths;   /* host paths QEMU reads (the asset directory), absolute */
	size_t nro;
	const char *run_dir;           /* host directory for sockets, console log, RAM file; absolute,
	                                * an existing directory owned by the caller */
	const char *run_view;          /* where QEMU sees run_dir (a short path keeps socket paths within
	                                * sun_path whatever the state directory); NULL: at run_dir */
	uint64_t memory_bytes;         /* memory limit of the whole jail: guest RAM + QEMU's overhead */
	uint32_t millicpus;            /* CPU quota; 0: none */
	const mbx_config *cfg;         /* the caller's config: log callback, allow_degraded; may be NULL */
	int pass_fd;                   /* -1, or a descriptor QEMU gets as its fd 3 (a snapshot's memory,
	                                * sealed: QEMU maps it copy-on-write and can never write it) */
};

struct mbx_vm_jail;

/*
 * Starts QEMU in a new jail. The paths are mounted at their host paths, so
 * `argv` works unchanged inside. Returns when QEMU was executed (not when
 * the guest is up). On failure nothing is left behind and the error names
 * the layer that failed ("vm-jail" for the jail's own checks, the os
 * backend's layer names for the sandbox, QEMU's stderr when it exited at
 * once).
 */
int mbx__vm_jail_start(struct mbx_vm_jail **out, const struct mbx_vm_jail_spec *spec, mbx_error **err);

/* A descriptor (a pidfd of QEMU's process) that polls readable once QEMU
 * has ended, for whatever reason (exit, SIGKILL, the jail torn down), and
 * stays readable. Owned by the jail. -1 for a NULL jail. */
int mbx__vm_jail_poll_fd(struct mbx_vm_jail *j);

/* 1 when QEMU has ended (*wstatus, if not NULL, gets a waitpid-style status:
 * WIFEXITED/WEXITSTATUS or WIFSIGNALED/WTERMSIG; a status the jail could no
 * longer learn reads as killed by SIGKILL), 0 while it runs. Does not block
 * while QEMU runs. */
int mbx__vm_jail_exited(struct mbx_vm_jail *j, int *wstatus);

/* What QEMU wrote to stderr (at most the last 4 KiB), once it has ended and
 * mbx__vm_jail_exited() returned 1; "" before. Borrowed from the jail. */
const char *mbx__vm_jail_stderr(const struct mbx_vm_jail *j);

/* QEMU's process id on the host (for measurements and tests). */
pid_t mbx__vm_jail_pid(const struct mbx_vm_jail *j);

/* Kills QEMU, tears the jail down (its processes, cgroups and state
 * directory), removes the sockets QEMU left in the run directory, frees the
 * jail. The run directory itself and other files in it (the console log)
 * are the caller's. NULL is a no-op. */
/* The layers the jail's own sandbox skipped under allow-degraded (e.g. the
 * CPU quota without a cgroup), with the reason of each by bit index. */
uint32_t mbx__vm_jail_skipped(const struct mbx_vm_jail *j, const char *const **reasons);
void mbx__vm_jail_stop(struct mbx_vm_jail *j);
