/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU command line of a microvm sandbox, and the choice of accelerator
 * (docs/microvm.md). Pure functions: nothing here starts QEMU, so all of it is
 * unit-tested (tests/unit/test-qemu-cmdline.c).
 *
 * The guest is `-M microvm,acpi=off` (QEMU then appends the virtio_mmio.device=
 * entries to the kernel command line): the kernel and a read-only squashfs root
 * on virtio-blk, the agent channel on a virtio-serial port backed by a unix
 * socket QEMU listens on, QMP on a second socket, virtio-rng, guest RAM in a
 * shared memory-backend-file (what a snapshot saves), no NIC, no defaults, QEMU's
 * own seccomp sandbox on. Internal only: not exported from libmimobox.
 */
#pragma once

#include <stdbool.h>

#include "error-internal.h"

enum mbx__vm_accel {
	MBX_VM_ACCEL_TCG = 0, /* the portable emulator */
	MBX_VM_ACCEL_KVM = 1, /* hardware virtualization through /dev/kvm */
};

/* Where the guest's serial console (ttyS0, kernel messages) goes. */
enum mbx__vm_serial {
	MBX_VM_SERIAL_NONE = 0,  /* no console at all */
	MBX_VM_SERIAL_FILE = 1,  /* appended to serial_file (a log for debugging) */
	MBX_VM_SERIAL_STDIO = 2, /* QEMU's stdin/stdout (manual runs only) */
};

/* TCG's translation cache, MiB. QEMU's default (1 GiB) is address space
 * that RLIMIT_DATA counts (a jail without a cgroup) and resident memory
 * a busy guest grows into; 64 MiB holds what a sandbox's programs need. */
#define MBX_VM_TCG_TB_MIB 64u

/* Limits the builder enforces. */
#define MBX_VM_MEMORY_MIB_MIN 32u
#define MBX_VM_MEMORY_MIB_MAX (1024u * 1024u)
#define MBX_VM_CPUS_MAX 255u
/* sun_path holds 108 bytes including the terminating NUL. */
#define MBX_VM_SOCKET_PATH_MAX 107u
/* x86's COMMAND_LINE_SIZE is 2048 including the NUL. */
#define MBX_VM_KERNEL_CMDLINE_MAX 2047u

/* The inputs. Every path must be absolute and free of control characters;
 * commas in paths that QEMU reads inside its own "key=value,..." option
 * syntax are escaped by doubling. Borrowed: the builder copies what it uses. */
struct mbx__vm_spec {
	const char *qemu;          /* qemu-system-x86_64, absolute; becomes argv[0] */
	enum mbx__vm_accel accel;
	unsigned memory_mib;       /* guest RAM, MBX_VM_MEMORY_MIB_MIN..MAX */
	unsigned cpus;             /* 1..MBX_VM_CPUS_MAX */
	const char *kernel;        /* bzImage */
	const char *rootfs;        /* squashfs image, attached read-only as /dev/vda */
	const char *initrd;        /* initramfs (-initrd); may be NULL */
	const char *cmdline_extra; /* appended to the kernel command line; may be NULL */
	const char *ram_file;      /* memory-backend-file mem-path (share=on); created by QEMU if absent */
	bool ram_private;          /* map ram_file copy-on-write (share=off): a snapshot's memory that
	                            * clones share; the file is never written */
	const char *agent_socket;  /* unix socket QEMU listens on for the agent's virtio-serial port */
	const char *qmp_socket;    /* unix socket QEMU listens on for QMP */
	const char *net_socket;    /* unix socket QEMU listens on for the network port
	                            * (MBX_VM_NET_PORT, the proxy channel); NULL: no such port */
	enum mbx__vm_serial serial;
	const char *serial_file;   /* MBX_VM_SERIAL_FILE only */
	bool incoming_defer;       /* -incoming defer: wait for a migration stream (restore) */
};

/* The name of the virtio-serial port the agent opens in the guest
 * (/dev/virtio-ports/<name>). */
#define MBX_VM_AGENT_PORT "org.mimobox.agent"
/* The port of the network channel (src/proto/netmux.h): present only when
 * the sandbox's policy lets the guest reach the host's proxy. */
#define MBX_VM_NET_PORT "org.mimobox.net"

/* Builds QEMU's argv for `spec` into *out: a NULL-terminated array that the
 * caller owns and frees with mbx__vm_argv_free. On bad input returns
 * MBX_EINVAL with a message naming the field, and *out is left NULL. */
int mbx__vm_qemu_argv(char ***out, const struct mbx__vm_spec *spec, mbx_error **err);

/* Frees an argv from mbx__vm_qemu_argv; NULL is a no-op. */
void mbx__vm_argv_free(char **argv);

/* True when a "flags" line of /proc/cpuinfo text lists vmx (Intel VT-x) or
 * svm (AMD-V) as a whole word. Pure. */
bool mbx__vm_cpuinfo_has_virt(const char *cpuinfo);

/* The decision on given facts: KVM only with vmx/svm in cpuinfo AND a
 * /dev/kvm that opened read-write (a paravirtual /dev/kvm without the CPU
 * flags cannot boot a stock guest kernel). Pure. */
enum mbx__vm_accel mbx__vm_accel_decide(const char *cpuinfo, bool kvm_opens_rw);

/* The decision on this host, from the files given (for tests) ... */
enum mbx__vm_accel mbx__vm_accel_at(const char *cpuinfo_path, const char *kvm_path);

/* ... and from /proc/cpuinfo and /dev/kvm. A file that cannot be read counts
 * as "no": TCG. */
enum mbx__vm_accel mbx__vm_accel(void);

/* "kvm" or "tcg". */
const char *mbx__vm_accel_name(enum mbx__vm_accel accel);
