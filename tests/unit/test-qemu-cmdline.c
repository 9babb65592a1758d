/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm QEMU command line and the accelerator choice (pure logic). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu-cmdline.h"
#include "tap.h"

static struct mbx__vm_spec typical(void)
{
	struct mbx__vm_spec s = {
		.qemu = "/usr/bin/qemu-system-x86_64",
		.accel = MBX_VM_ACCEL_TCG,
		.memory_mib = 256,
		.cpus = 1,
		.kernel = "/c/vm/abc/vmlinuz",
		.rootfs = "/c/vm/abc/rootfs.squashfs",
		.cmdline_extra = NULL,
		.ram_file = "/run/mbx/sb1/ram",
		.agent_socket = "/run/mbx/sb1/agent.sock",
		.qmp_socket = "/run/mbx/sb1/qmp.sock",
		.serial = MBX_VM_SERIAL_NONE,
		.serial_file = NULL,
		.incoming_defer = false,
	};
	return s;
}

/* Compares argv with the expected NULL-terminated list, element by element. */
static void check_argv(char **got, const char *const *want)
{
	size_t i;

	TAP_CHECK(got != NULL);
	if (!got)
		return;
	for (i = 0; want[i] && got[i]; i++)
		TAP_CHECK_STR(got[i], want[i]);
	if (want[i] || got[i])
		printf("#   argv length differs at %zu: got %s, expected %s\n", i, got[i] ? got[i] : "(end)",
		       want[i] ? want[i] : "(end)");
	TAP_CHECK(!want[i] && !got[i]);
}

/* The arguments between the machine and the accelerator-specific part never
 * change; spelled out once for the cases below. */
#define HEAD \
	"/usr/bin/qemu-system-x86_64", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", \
	"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", \
	"-machine", "microvm,acpi=off,memory-backend=mem0"

static void test_typical_tcg(void)
{
	struct mbx__vm_spec s = typical();
	char **argv = NULL;
	mbx_error *err = NULL;
	static const char *const want[] = {
		HEAD,
		"-accel", "tcg,tb-size=64",
		"-smp", "1",
		"-m", "256M",
		"-object", "memory-backend-file,id=mem0,size=256M,mem-path=/run/mbx/sb1/ram,share=on",
		"-kernel", "/c/vm/abc/vmlinuz",
		"-append", "root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t",
		"-drive", "if=none,id=root,format=raw,readonly=on,file=/c/vm/abc/rootfs.squashfs",
		"-device", "virtio-blk-device,drive=root",
		"-device", "virtio-rng-device",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path=/run/mbx/sb1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.mimobox.agent",
		"-chardev", "socket,id=qmp,path=/run/mbx/sb1/qmp.sock,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-nic", "none",
		"-serial", "none",
		NULL,
	};

	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, &err), MBX_OK);
	TAP_CHECK(err == NULL);
	check_argv(argv, want);
	mbx__vm_argv_free(argv);
}

static void test_kvm_console_file_restore(void)
{
	struct mbx__vm_spec s = typical();
	char **argv = NULL;
	static const char *const want[] = {
		HEAD,
		"-accel", "kvm",
		"-cpu", "host",
		"-smp", "2",
		"-m", "1024M",
		"-object", "memory-backend-file,id=mem0,size=1024M,mem-path=/run/mbx/sb1/ram,share=on",
		"-kernel", "/c/vm/abc/vmlinuz",
		"-initrd", "/run/mbx/sb1/initrd,x",
		"-append", "root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t console=ttyS0 init=/sbin/mbx-init quiet",
		"-drive", "if=none,id=root,format=raw,readonly=on,file=/c/vm/abc/rootfs.squashfs",
		"-device", "virtio-blk-device,drive=root",
		"-device", "virtio-rng-device",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path=/run/mbx/sb1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.mimobox.agent",
		"-chardev", "socket,id=qmp,path=/run/mbx/sb1/qmp.sock,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-nic", "none",
		"-chardev", "file,id=console,path=/run/mbx/sb1/console.log",
		"-serial", "chardev:console",
		"-incoming", "defer",
		NULL,
	};

	s.accel = MBX_VM_ACCEL_KVM;
	s.cpus = 2;
	s.memory_mib = 1024;
	s.cmdline_extra = "init=/sbin/mbx-init quiet";
	/* A plain argument: its comma stays single. */
	s.initrd = "/run/mbx/sb1/initrd,x";
	s.serial = MBX_VM_SERIAL_FILE;
	s.serial_file = "/run/mbx/sb1/console.log";
	s.incoming_defer = true;
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	check_argv(argv, want);
	mbx__vm_argv_free(argv);
}

static const char *find_after(char **argv, const char *opt, int nth)
{
	for (size_t i = 0; argv && argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], opt) == 0 && nth-- == 0)
			return argv[i + 1];
	return NULL;
}

static void test_stdio_console(void)
{
	struct mbx__vm_spec s = typical();
	char **argv = NULL;

	s.serial = MBX_VM_SERIAL_STDIO;
	s.cmdline_extra = "";
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	TAP_CHECK_STR(find_after(argv, "-chardev", 2), "stdio,id=console,signal=off");
	TAP_CHECK_STR(find_after(argv, "-serial", 0), "chardev:console");
	/* An empty extra adds no trailing space. */
	TAP_CHECK_STR(find_after(argv, "-append", 0), "root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t console=ttyS0");
	TAP_CHECK(find_after(argv, "-incoming", 0) == NULL);
	mbx__vm_argv_free(argv);
}

/* A comma inside a value would start a new QEMU option ("a,share=off"
 * smuggled through a path): doubled, every time, in every path QEMU parses
 * as key=value; the kernel path is a plain argument and stays as it is. */
static void test_commas_doubled(void)
{
	struct mbx__vm_spec s = typical();
	char **argv = NULL;

	s.kernel = "/c/vm,x/vmlinuz";
	s.rootfs = "/c/vm,x/rootfs.squashfs,readonly=off";
	s.ram_file = "/r,,am,share=off";
	s.agent_socket = "/s/a,gent";
	s.qmp_socket = "/s/q,mp";
	s.serial = MBX_VM_SERIAL_FILE;
	s.serial_file = "/s/con,sole";
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	TAP_CHECK_STR(find_after(argv, "-kernel", 0), "/c/vm,x/vmlinuz");
	TAP_CHECK_STR(find_after(argv, "-drive", 0),
		      "if=none,id=root,format=raw,readonly=on,file=/c/vm,,x/rootfs.squashfs,,readonly=off");
	TAP_CHECK_STR(find_after(argv, "-object", 0),
		      "memory-backend-file,id=mem0,size=256M,mem-path=/r,,,,am,,share=off,share=on");
	TAP_CHECK_STR(find_after(argv, "-chardev", 0), "socket,id=agent,path=/s/a,,gent,server=on,wait=off");
	TAP_CHECK_STR(find_after(argv, "-chardev", 1), "socket,id=qmp,path=/s/q,,mp,server=on,wait=off");
	TAP_CHECK_STR(find_after(argv, "-chardev", 2), "file,id=console,path=/s/con,,sole");
	mbx__vm_argv_free(argv);
}

/* Expects MBX_EINVAL, no argv, and a message containing `needle`. */
static void expect_refused(const struct mbx__vm_spec *s, const char *needle)
{
	char **argv = (char **)1;
	mbx_error *err = NULL;

	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, s, &err), MBX_EINVAL);
	TAP_CHECK(argv == NULL);
	TAP_CHECK(err != NULL);
	if (err) {
		if (!strstr(mbx_error_message(err), needle)) {
			printf("#   message \"%s\" lacks \"%s\"\n", mbx_error_message(err), needle);
			TAP_CHECK(0);
		}
		mbx_error_free(err);
	}
}

static void test_bad_paths(void)
{
	struct mbx__vm_spec s;

	s = typical(); s.qemu = "qemu-system-x86_64";
	expect_refused(&s, "QEMU binary `qemu-system-x86_64` is not an absolute path");
	s = typical(); s.kernel = NULL;
	expect_refused(&s, "kernel: a path is required");
	s = typical(); s.rootfs = "";
	expect_refused(&s, "root file system: a path is required");
	s = typical(); s.rootfs = "rootfs.squashfs";
	expect_refused(&s, "root file system `rootfs.squashfs` is not an absolute path");
	s = typical(); s.initrd = "initrd";
	expect_refused(&s, "initramfs `initrd` is not an absolute path");
	s = typical(); s.ram_file = "/run/ram\nfile";
	expect_refused(&s, "RAM file contains a control character");
	s = typical(); s.agent_socket = "/tmp/a\tb";
	expect_refused(&s, "agent socket contains a control character");
	s = typical(); s.qmp_socket = NULL;
	expect_refused(&s, "QMP socket: a path is required");
	s = typical(); s.qmp_socket = s.agent_socket;
	expect_refused(&s, "the agent socket and the QMP socket are the same path");
	s = typical(); s.serial = MBX_VM_SERIAL_FILE;
	expect_refused(&s, "serial console file: a path is required");
	s = typical(); s.serial_file = "/tmp/console";
	expect_refused(&s, "the console does not go to a file");
}

/* The network port: present only with net_socket, right after the agent's
 * port, its socket path checked like the others. */
static void test_net_port(void)
{
	struct mbx__vm_spec s = typical();
	char **argv = NULL, path[200];
	mbx_error *err = NULL;
	static const char *const want[] = {
		HEAD,
		"-accel", "tcg,tb-size=64",
		"-smp", "1",
		"-m", "256M",
		"-object", "memory-backend-file,id=mem0,size=256M,mem-path=/run/mbx/sb1/ram,share=on",
		"-kernel", "/c/vm/abc/vmlinuz",
		"-append", "root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t",
		"-drive", "if=none,id=root,format=raw,readonly=on,file=/c/vm/abc/rootfs.squashfs",
		"-device", "virtio-blk-device,drive=root",
		"-device", "virtio-rng-device",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path=/run/mbx/sb1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.mimobox.agent",
		"-chardev", "socket,id=net,path=/run/mbx/sb1/n,,et.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=net,name=org.mimobox.net",
		"-chardev", "socket,id=qmp,path=/run/mbx/sb1/qmp.sock,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-nic", "none",
		"-serial", "none",
		NULL,
	};

	s.net_socket = "/run/mbx/sb1/n,et.sock";
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, &err), MBX_OK);
	TAP_CHECK(err == NULL);
	check_argv(argv, want);
	mbx__vm_argv_free(argv);

	s = typical(); s.net_socket = "net.sock";
	expect_refused(&s, "network socket `net.sock` is not an absolute path");
	s = typical(); s.net_socket = "/tmp/n\nx";
	expect_refused(&s, "network socket contains a control character");
	s = typical(); s.net_socket = s.agent_socket;
	expect_refused(&s, "is also the agent's or QMP's");
	s = typical(); s.net_socket = s.qmp_socket;
	expect_refused(&s, "is also the agent's or QMP's");
	s = typical();
	memset(path, 'n', sizeof(path));
	path[0] = '/';
	path[MBX_VM_SOCKET_PATH_MAX + 1] = '\0';
	s.net_socket = path;
	expect_refused(&s, "over the 107 a unix socket path can hold");
}

static void test_socket_path_length(void)
{
	struct mbx__vm_spec s = typical();
	char path[200], **argv = NULL;

	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[MBX_VM_SOCKET_PATH_MAX] = '\0'; /* 107 bytes: fits sun_path */
	s.agent_socket = path;
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	mbx__vm_argv_free(argv);
	path[MBX_VM_SOCKET_PATH_MAX] = 'a';
	path[MBX_VM_SOCKET_PATH_MAX + 1] = '\0'; /* 108: does not */
	expect_refused(&s, "over the 107 a unix socket path can hold");
	s = typical();
	s.qmp_socket = path;
	expect_refused(&s, "QMP socket");
}

static void test_bad_numbers(void)
{
	struct mbx__vm_spec s;
	char **argv = NULL;

	s = typical(); s.memory_mib = 31;
	expect_refused(&s, "memory 31 MiB is out of range");
	s = typical(); s.memory_mib = MBX_VM_MEMORY_MIB_MAX + 1;
	expect_refused(&s, "is out of range");
	s = typical(); s.memory_mib = MBX_VM_MEMORY_MIB_MIN;
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	mbx__vm_argv_free(argv);
	s = typical(); s.cpus = 0;
	expect_refused(&s, "0 vCPUs is out of range");
	s = typical(); s.cpus = MBX_VM_CPUS_MAX + 1;
	expect_refused(&s, "vCPUs is out of range");
	s = typical(); s.accel = (enum mbx__vm_accel)7;
	expect_refused(&s, "unknown accelerator 7");
	s = typical(); s.serial = (enum mbx__vm_serial)9;
	expect_refused(&s, "unknown serial console mode 9");
}

static void test_bad_kernel_cmdline(void)
{
	struct mbx__vm_spec s = typical();
	char *longer = malloc(MBX_VM_KERNEL_CMDLINE_MAX + 1), **argv = NULL;
	size_t fixed = strlen("root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t console=ttyS0 ");

	s.cmdline_extra = "quiet\ninit=/bin/evil";
	expect_refused(&s, "kernel command line extras contain a control character");
	/* Exactly at the limit (counting the console= the file mode adds) is fine;
	 * one byte more is refused. */
	memset(longer, 'x', MBX_VM_KERNEL_CMDLINE_MAX);
	longer[MBX_VM_KERNEL_CMDLINE_MAX - fixed] = '\0';
	s.cmdline_extra = longer;
	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, &s, NULL), MBX_OK);
	mbx__vm_argv_free(argv);
	longer[MBX_VM_KERNEL_CMDLINE_MAX - fixed] = 'x';
	longer[MBX_VM_KERNEL_CMDLINE_MAX - fixed + 1] = '\0';
	expect_refused(&s, "over the kernel's 2047");
	free(longer);
}

static void test_null_inputs(void)
{
	char **argv = NULL;
	mbx_error *err = NULL;
	struct mbx__vm_spec s = typical();

	TAP_CHECK_INT(mbx__vm_qemu_argv(&argv, NULL, &err), MBX_EINVAL);
	TAP_CHECK(argv == NULL && err != NULL);
	mbx_error_free(err);
	TAP_CHECK_INT(mbx__vm_qemu_argv(NULL, &s, NULL), MBX_EINVAL);
	mbx__vm_argv_free(NULL);
}

/* Trimmed from real /proc/cpuinfo texts. */
static const char cpuinfo_intel_vmx[] =
	"processor\t: 0\n"
	"vendor_id\t: GenuineIntel\n"
	"model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16\n"
	"vmx flags\t: vnmi preemption_timer invvpid ept_x_only ept_ad ept_1gb flexpriority tsc_offset vtpr mtf vapic ept vpid unrestricted_guest\n"
	"bugs\t\t: spectre_v1 spectre_v2\n"
	"\n";
static const char cpuinfo_amd_svm[] =
	"processor\t: 0\n"
	"vendor_id\t: AuthenticAMD\n"
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov lm svm extapic cr8_legacy abm\n";
/* This machine's kind: a guest without nested virtualization. */
static const char cpuinfo_no_virt[] =
	"processor\t: 0\n"
	"vendor_id\t: AuthenticAMD\n"
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat hypervisor lahf_lm svm_lock cmp_legacy vmxon_like\n"
	"processor\t: 1\n"
	"flags\t\t: fpu vme de pse tsc hypervisor\n";
/* vmx only outside the flags line: a "vmx flags" line alone, a model name. */
static const char cpuinfo_vmx_elsewhere[] =
	"model name\t: vmx svm special edition\n"
	"vmx flags\t: vnmi vmx\n"
	"flags\t\t: fpu sse2\n";

static void test_cpuinfo_parser(void)
{
	TAP_CHECK(mbx__vm_cpuinfo_has_virt(cpuinfo_intel_vmx));
	TAP_CHECK(mbx__vm_cpuinfo_has_virt(cpuinfo_amd_svm));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt(cpuinfo_no_virt));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt(cpuinfo_vmx_elsewhere));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt(""));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt(NULL));
	/* Last line without a newline, word at the very end. */
	TAP_CHECK(mbx__vm_cpuinfo_has_virt("flags : fpu svm"));
	TAP_CHECK(mbx__vm_cpuinfo_has_virt("flags:vmx"));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt("flags : fpu svmx"));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt("xflags : vmx"));
	TAP_CHECK(!mbx__vm_cpuinfo_has_virt("flags\n vmx"));
}

static void test_accel_decide(void)
{
	TAP_CHECK_INT(mbx__vm_accel_decide(cpuinfo_intel_vmx, true), MBX_VM_ACCEL_KVM);
	TAP_CHECK_INT(mbx__vm_accel_decide(cpuinfo_amd_svm, true), MBX_VM_ACCEL_KVM);
	/* The flags without a usable /dev/kvm, a /dev/kvm without the flags. */
	TAP_CHECK_INT(mbx__vm_accel_decide(cpuinfo_intel_vmx, false), MBX_VM_ACCEL_TCG);
	TAP_CHECK_INT(mbx__vm_accel_decide(cpuinfo_no_virt, true), MBX_VM_ACCEL_TCG);
	TAP_CHECK_INT(mbx__vm_accel_decide(NULL, true), MBX_VM_ACCEL_TCG);
	TAP_CHECK_STR(mbx__vm_accel_name(MBX_VM_ACCEL_KVM), "kvm");
	TAP_CHECK_STR(mbx__vm_accel_name(MBX_VM_ACCEL_TCG), "tcg");
}

static int write_temp(char *tmpl, const char *text)
{
	int fd = mkstemp(tmpl);

	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The file-reading half: the cpuinfo file and the device path are given, so
 * a regular temporary file stands for a /dev/kvm that opens read-write. */
static void test_accel_at_files(void)
{
	char info[] = "/tmp/mbx-cpuinfo-XXXXXX", none[] = "/tmp/mbx-cpuinfo-XXXXXX", dev[] = "/tmp/mbx-kvm-XXXXXX";

	if (write_temp(info, cpuinfo_intel_vmx) || write_temp(none, cpuinfo_no_virt) || write_temp(dev, "")) {
		TAP_CHECK(0);
		return;
	}
	TAP_CHECK_INT(mbx__vm_accel_at(info, dev), MBX_VM_ACCEL_KVM);
	TAP_CHECK_INT(mbx__vm_accel_at(none, dev), MBX_VM_ACCEL_TCG);
	TAP_CHECK_INT(mbx__vm_accel_at(info, "/nonexistent/kvm"), MBX_VM_ACCEL_TCG);
	TAP_CHECK_INT(mbx__vm_accel_at("/nonexistent/cpuinfo", dev), MBX_VM_ACCEL_TCG);
	/* A directory cannot be opened read-write, whoever we are. */
	TAP_CHECK_INT(mbx__vm_accel_at(info, "/tmp"), MBX_VM_ACCEL_TCG);
	unlink(info);
	unlink(none);
	unlink(dev);
	/* This host: whatever it is, the answer is one of the two. */
	TAP_CHECK(mbx__vm_accel() == MBX_VM_ACCEL_TCG || mbx__vm_accel() == MBX_VM_ACCEL_KVM);
}

static const struct tap_case cases[] = {
	{"qemu-cmdline/typical-tcg", test_typical_tcg},
	{"qemu-cmdline/kvm-console-file-restore", test_kvm_console_file_restore},
	{"qemu-cmdline/stdio-console", test_stdio_console},
	{"qemu-cmdline/commas-doubled", test_commas_doubled},
	{"qemu-cmdline/net-port", test_net_port},
	{"qemu-cmdline/bad-paths", test_bad_paths},
	{"qemu-cmdline/socket-path-length", test_socket_path_length},
	{"qemu-cmdline/bad-numbers", test_bad_numbers},
	{"qemu-cmdline/bad-kernel-cmdline", test_bad_kernel_cmdline},
	{"qemu-cmdline/null-inputs", test_null_inputs},
	{"vm-accel/cpuinfo-parser", test_cpuinfo_parser},
	{"vm-accel/decide", test_accel_decide},
	{"vm-accel/files", test_accel_at_files},
};

TAP_MAIN(cases)
