/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU command line of a microvm sandbox; see qemu-cmdline.h and
 * docs/microvm.md for the choices, measured on QEMU 7.2 (Debian 12).
 */
#include "qemu-cmdline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What every guest gets on its kernel command line, before the caller's
 * extras. The root is the squashfs on the first virtio-blk device; a panic
 * reboots at once and -no-reboot turns that into QEMU exiting. */
static const char base_cmdline[] = "root=/dev/vda rootfstype=squashfs ro panic=-1 reboot=t";

/* QEMU's seccomp filter: no obsolete syscalls, no setuid/setgid, no fork/exec,
 * no scheduler or affinity changes. */
static const char sandbox_opts[] = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

struct argv_builder {
	char **v;
	size_t n, cap;
	int oom;
};

static void push_owned(struct argv_builder *b, char *s)
{
	if (b->oom || !s) {
		b->oom = 1;
		free(s);
		return;
	}
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char **v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->oom = 1;
			free(s);
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

static void push(struct argv_builder *b, const char *s)
{
	push_owned(b, strdup(s));
}

MBX_PRINTF(2, 3)
static void pushf(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	push_owned(b, r < 0 ? NULL : s);
}

/* `s` with every comma doubled, as QEMU's option parsers (QemuOpts and
 * keyval) read ",," as a literal comma inside a value. NULL on OOM. */
static char *escape_commas(const char *s)
{
	size_t n = 0, i, j;
	char *out;

	for (i = 0; s[i]; i++)
		n += s[i] == ',' ? 2 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (i = 0, j = 0; s[i]; i++) {
		out[j++] = s[i];
		if (s[i] == ',')
			out[j++] = ',';
	}
	out[j] = '\0';
	return out;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/* An absolute path without control characters (a newline in a path makes
 * logs lie and is never a real guest asset). `max` is 0 for no limit. */
static int check_path(const char *field, const char *p, size_t max, mbx_error **err)
{
	if (!p || !p[0])
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: %s: a path is required", field);
	if (p[0] != '/')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: %s `%s` is not an absolute path: give it from /",
				      field, p);
	if (has_control(p))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm: %s contains a control character (newline, tab, ...): rename it", field);
	if (max && strlen(p) > max)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm: %s `%s` is %zu bytes, over the %zu a unix socket path can hold: use a shorter directory",
				      field, p, strlen(p), max);
	return MBX_OK;
}

static int check_spec(const struct mbx__vm_spec *s, mbx_error **err)
{
	int rc;

	if (!s)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: no VM description given");
	if ((rc = check_path("QEMU binary", s->qemu, 0, err)) ||
	    (rc = check_path("kernel", s->kernel, 0, err)) ||
	    (rc = check_path("root file system", s->rootfs, 0, err)) ||
	    (s->initrd && (rc = check_path("initramfs", s->initrd, 0, err))) ||
	    (rc = check_path("RAM file", s->ram_file, 0, err)) ||
	    (rc = check_path("agent socket", s->agent_socket, MBX_VM_SOCKET_PATH_MAX, err)) ||
	    (rc = check_path("QMP socket", s->qmp_socket, MBX_VM_SOCKET_PATH_MAX, err)) ||
	    (s->net_socket && (rc = check_path("network socket", s->net_socket, MBX_VM_SOCKET_PATH_MAX, err))))
		return rc;
	if (strcmp(s->agent_socket, s->qmp_socket) == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm: the agent socket and the QMP socket are the same path `%s`: give two",
				      s->agent_socket);
	if (s->net_socket && (strcmp(s->net_socket, s->agent_socket) == 0 || strcmp(s->net_socket, s->qmp_socket) == 0))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "microvm: the network socket `%s` is also the agent's or QMP's: give a path of its own",
				      s->net_socket);
	if (s->accel != MBX_VM_ACCEL_TCG && s->accel != MBX_VM_ACCEL_KVM)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: unknown accelerator %d (kvm or tcg)",
				      (int)s->accel);
	if (s->memory_mib < MBX_VM_MEMORY_MIB_MIN || s->memory_mib > MBX_VM_MEMORY_MIB_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: memory %u MiB is out of range (%u..%u MiB)",
				      s->memory_mib, MBX_VM_MEMORY_MIB_MIN, MBX_VM_MEMORY_MIB_MAX);
	if (s->cpus < 1 || s->cpus > MBX_VM_CPUS_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: %u vCPUs is out of range (1..%u)", s->cpus,
				      MBX_VM_CPUS_MAX);
	switch (s->serial) {
	case MBX_VM_SERIAL_NONE:
	case MBX_VM_SERIAL_STDIO:
		if (s->serial_file)
			return mbx__error_set(err, MBX_EINVAL, 0, NULL,
					      "microvm: a serial console file was given but the console does not go to a file");
		break;
	case MBX_VM_SERIAL_FILE:
		if ((rc = check_path("serial console file", s->serial_file, 0, err)))
			return rc;
		break;
	default:
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: unknown serial console mode %d",
				      (int)s->serial);
	}
	if (s->cmdline_extra) {
		size_t len = sizeof(base_cmdline) - 1 + strlen(" console=ttyS0") + 1 + strlen(s->cmdline_extra);

		if (has_control(s->cmdline_extra))
			return mbx__error_set(err, MBX_EINVAL, 0, NULL,
					      "microvm: the kernel command line extras contain a control character (newline, tab, ...)");
		if (len > MBX_VM_KERNEL_CMDLINE_MAX)
			return mbx__error_set(err, MBX_EINVAL, 0, NULL,
					      "microvm: the kernel command line would be %zu bytes, over the kernel's %u",
					      len, MBX_VM_KERNEL_CMDLINE_MAX);
	}
	return MBX_OK;
}

int mbx__vm_qemu_argv(char ***out, const struct mbx__vm_spec *s, mbx_error **err)
{
	struct argv_builder b = {0};
	char *rootfs = NULL, *ram = NULL, *agent = NULL, *qmp = NULL, *serial = NULL, *net = NULL;
	int rc;

	if (!out)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "microvm: no place for the command line given");
	*out = NULL;
	if ((rc = check_spec(s, err)))
		return rc;

	rootfs = escape_commas(s->rootfs);
	ram = escape_commas(s->ram_file);
	agent = escape_commas(s->agent_socket);
	qmp = escape_commas(s->qmp_socket);
	if (s->serial == MBX_VM_SERIAL_FILE)
		serial = escape_commas(s->serial_file);
	if (s->net_socket)
		net = escape_commas(s->net_socket);
	if (!rootfs || !ram || !agent || !qmp || (s->serial == MBX_VM_SERIAL_FILE && !serial) || (s->net_socket && !net)) {
		b.oom = 1;
		goto done;
	}

	push(&b, s->qemu);
	push(&b, "-nodefaults");
	push(&b, "-no-user-config");
	push(&b, "-nographic");
	push(&b, "-no-reboot");
	push(&b, "-sandbox");
	push(&b, sandbox_opts);
	push(&b, "-machine");
	push(&b, "microvm,acpi=off,memory-backend=mem0");
	push(&b, "-accel");
	if (s->accel == MBX_VM_ACCEL_TCG)
		pushf(&b, "tcg,tb-size=%u", MBX_VM_TCG_TB_MIB);
	else
		push(&b, mbx__vm_accel_name(s->accel));
	if (s->accel == MBX_VM_ACCEL_KVM) {
		push(&b, "-cpu");
		push(&b, "host");
	}
	push(&b, "-smp");
	pushf(&b, "%u", s->cpus);
	push(&b, "-m");
	pushf(&b, "%uM", s->memory_mib);
	push(&b, "-object");
	pushf(&b, "memory-backend-file,id=mem0,size=%uM,mem-path=%s,share=%s", s->memory_mib, ram, s->ram_private ? "off" : "on");
	push(&b, "-kernel");
	push(&b, s->kernel);
	if (s->initrd) {
		push(&b, "-initrd");
		push(&b, s->initrd);
	}
	push(&b, "-append");
	pushf(&b, "%s%s%s%s", base_cmdline, s->serial != MBX_VM_SERIAL_NONE ? " console=ttyS0" : "",
	      s->cmdline_extra && s->cmdline_extra[0] ? " " : "", s->cmdline_extra ? s->cmdline_extra : "");
	push(&b, "-drive");
	pushf(&b, "if=none,id=root,format=raw,readonly=on,file=%s", rootfs);
	push(&b, "-device");
	push(&b, "virtio-blk-device,drive=root");
	push(&b, "-device");
	push(&b, "virtio-rng-device");
	push(&b, "-device");
	push(&b, "virtio-serial-device");
	push(&b, "-chardev");
	pushf(&b, "socket,id=agent,path=%s,server=on,wait=off", agent);
	push(&b, "-device");
	push(&b, "virtserialport,chardev=agent,name=" MBX_VM_AGENT_PORT);
	if (net) {
		push(&b, "-chardev");
		pushf(&b, "socket,id=net,path=%s,server=on,wait=off", net);
		push(&b, "-device");
		push(&b, "virtserialport,chardev=net,name=" MBX_VM_NET_PORT);
	}
	push(&b, "-chardev");
	pushf(&b, "socket,id=qmp,path=%s,server=on,wait=off", qmp);
	push(&b, "-mon");
	push(&b, "chardev=qmp,mode=control");
	push(&b, "-nic");
	push(&b, "none");
	switch (s->serial) {
	case MBX_VM_SERIAL_FILE:
		push(&b, "-chardev");
		pushf(&b, "file,id=console,path=%s", serial);
		push(&b, "-serial");
		push(&b, "chardev:console");
		break;
	case MBX_VM_SERIAL_STDIO:
		push(&b, "-chardev");
		push(&b, "stdio,id=console,signal=off");
		push(&b, "-serial");
		push(&b, "chardev:console");
		break;
	case MBX_VM_SERIAL_NONE:
	default:
		push(&b, "-serial");
		push(&b, "none");
		break;
	}
	if (s->incoming_defer) {
		push(&b, "-incoming");
		push(&b, "defer");
	}

done:
	free(rootfs);
	free(ram);
	free(agent);
	free(qmp);
	free(serial);
	free(net);
	if (b.oom) {
		mbx__vm_argv_free(b.v);
		return mbx__error_oom(err);
	}
	*out = b.v;
	return MBX_OK;
}

void mbx__vm_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

const char *mbx__vm_accel_name(enum mbx__vm_accel accel)
{
	return accel == MBX_VM_ACCEL_KVM ? "kvm" : "tcg";
}

/* True when the whitespace-separated words of [p, end) include `word`. */
static bool has_word(const char *p, const char *end, const char *word)
{
	size_t wl = strlen(word);

	while (p < end) {
		const char *q;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		q = p;
		while (q < end && *q != ' ' && *q != '\t')
			q++;
		if ((size_t)(q - p) == wl && memcmp(p, word, wl) == 0)
			return true;
		p = q;
	}
	return false;
}

bool mbx__vm_cpuinfo_has_virt(const char *text)
{
	const char *line = text;

	if (!text)
		return false;
	while (*line) {
		const char *eol = strchr(line, '\n'), *colon, *k;

		if (!eol)
			eol = line + strlen(line);
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon) {
			/* The key, without the tabs and spaces before the colon:
			 * exactly "flags" (not "vmx flags", which newer kernels
			 * print with the VMX sub-features). */
			k = colon;
			while (k > line && (k[-1] == ' ' || k[-1] == '\t'))
				k--;
			if (k - line == 5 && memcmp(line, "flags", 5) == 0 &&
			    (has_word(colon + 1, eol, "vmx") || has_word(colon + 1, eol, "svm")))
				return true;
		}
		line = *eol ? eol + 1 : eol;
	}
	return false;
}

enum mbx__vm_accel mbx__vm_accel_decide(const char *cpuinfo, bool kvm_opens_rw)
{
	return kvm_opens_rw && mbx__vm_cpuinfo_has_virt(cpuinfo) ? MBX_VM_ACCEL_KVM : MBX_VM_ACCEL_TCG;
}

/* The whole of a (proc) file as a string, or NULL. /proc files report size 0,
 * so read until EOF; 16 MiB is far beyond any real cpuinfo. */
static char *read_text(const char *path)
{
	size_t len = 0, cap = 0, max = 16u << 20;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb;

			if (cap >= max)
				goto fail;
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb)
				goto fail;
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

enum mbx__vm_accel mbx__vm_accel_at(const char *cpuinfo_path, const char *kvm_path)
{
	char *cpuinfo = read_text(cpuinfo_path);
	bool rw = false;
	enum mbx__vm_accel a;

	/* No need to try the device when the CPU flags already say no. */
	if (cpuinfo && mbx__vm_cpuinfo_has_virt(cpuinfo)) {
		int fd = open(kvm_path, O_RDWR | O_CLOEXEC | O_NOCTTY);

		if (fd >= 0) {
			rw = true;
			close(fd);
		}
	}
	a = mbx__vm_accel_decide(cpuinfo, rw);
	free(cpuinfo);
	return a;
}

enum mbx__vm_accel mbx__vm_accel(void)
{
	return mbx__vm_accel_at("/proc/cpuinfo", "/dev/kvm");
}
