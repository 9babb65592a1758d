/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drives QEMU's jail (src/backend/microvm/jail.h) for the integration tests
 * (tests/integration/test_vm_jail.py) and the start-cost measurement
 * (docs/microvm.md). Not installed.
 *
 *   vm-jail boot  --assets DIR --run DIR [options]
 *       Starts QEMU through the jail (console to RUN/console.log, guest RAM in
 *       the jail's /dev/shm, init=/bin/sh) and reports on stdout, one line
 *       each:
 *         pid N                  QEMU's host pid, once started
 *         booted MS              the guest shell's prompt is on the console
 *         qmp OK|ERROR           a QMP greeting read from the socket QEMU made
 *         rss KIB SHMEM_KIB      QEMU's VmRSS and RssShmem (guest RAM pages)
 *         exited STATUS MS       the poll fd fired: wait status, ms since
 *                                it was armed
 *         stderr TEXT            QEMU's stderr, if any
 *         stopped                mbx__vm_jail_stop() returned
 *       and waits for QEMU to end (--wait-exit SECONDS, default 30) before it
 *       stops the jail; the test kills QEMU from outside. With --no-wait it
 *       stops the jail after the prompt.
 *       Options: --kernel PATH, --rootfs PATH (instead of the assets'),
 *       --ro PATH (more read-only paths; repeatable), --memory MIB (jail
 *       limit, default 384), --guest MIB (default 256), --tb-size MIB,
 *       --plain-tcg (`-accel tcg` without the builder's tb-size=),
 *       --cpu MILLICPUS, --boot-timeout SECONDS (default 30), --kvm (the KVM
 *       accelerator: /dev/kvm bound into the jail).
 *   vm-jail kvm --assets DIR --run DIR [options]
 *       Starts QEMU with the KVM accelerator and `-S` (vCPUs stopped: KVM is
 *       set up, the guest never runs) and asks QMP `query-kvm`; prints
 *         pid N
 *         query-kvm JSON         QMP's answer
 *       or, when QEMU ended first, the `exited` and `stderr` lines.
 *   vm-jail bench --assets DIR --run DIR [--runs N]
 *       N times: start the jail (QEMU exec'd), stop it; prints the start and
 *       stop times in ms per run and their P50/P99.
 * Exit status: 0 when the requested steps worked, 1 otherwise (the reason on
 * stderr), 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "qemu-cmdline.h"
#include "jail.h"

#define MAX_RO 8

struct opts {
	const char *assets, *run, *kernel, *rootfs;
	const char *ro[MAX_RO];
	size_t nro;
	unsigned memory_mib, guest_mib, tb_size, millicpus, runs;
	int boot_timeout, wait_exit, no_wait, kvm, stopped_cpus, plain_tcg;
	char kernel_buf[4096], rootfs_buf[4096], console[4096], agent[4096], qmp[4096];
};

static uint64_t now_ms(void)
{
	return mbx__now_us() / 1000u;
}

static int die_usage(const char *msg)
{
	fprintf(stderr, "vm-jail: %s\n", msg);
	return 2;
}

static void report_error(const char *what, mbx_error *e)
{
	fprintf(stderr, "vm-jail: %s: [%s] %s\n", what, e && mbx_error_layer(e) ? mbx_error_layer(e) : "-",
		e ? mbx_error_message(e) : "?");
	if (e && mbx_error_suggestion(e))
		fprintf(stderr, "vm-jail: hint: %s\n", mbx_error_suggestion(e));
	mbx_error_free(e);
}

static int parse(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->memory_mib = 384;
	o->guest_mib = 256;
	o->boot_timeout = 30;
	o->wait_exit = 30;
	o->runs = 20;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--plain-tcg") == 0) {
			o->plain_tcg = 1;
			continue;
		}
		if (strcmp(a, "--no-wait") == 0 || strcmp(a, "--kvm") == 0) {
			if (a[2] == 'n')
				o->no_wait = 1;
			else
				o->kvm = 1;
			continue;
		}
		if (v == NULL)
			return -1;
		i++;
		if (strcmp(a, "--assets") == 0)
			o->assets = v;
		else if (strcmp(a, "--run") == 0)
			o->run = v;
		else if (strcmp(a, "--kernel") == 0)
			o->kernel = v;
		else if (strcmp(a, "--rootfs") == 0)
			o->rootfs = v;
		else if (strcmp(a, "--ro") == 0 && o->nro < MAX_RO)
			o->ro[o->nro++] = v;
		else if (strcmp(a, "--memory") == 0)
			o->memory_mib = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--guest") == 0)
			o->guest_mib = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--tb-size") == 0)
			o->tb_size = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--cpu") == 0)
			o->millicpus = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--boot-timeout") == 0)
			o->boot_timeout = atoi(v);
		else if (strcmp(a, "--wait-exit") == 0)
			o->wait_exit = atoi(v);
		else if (strcmp(a, "--runs") == 0)
			o->runs = (unsigned)strtoul(v, NULL, 10);
		else
			return -1;
	}
	if (o->assets == NULL || o->run == NULL)
		return -1;
	if (o->kernel == NULL) {
		snprintf(o->kernel_buf, sizeof(o->kernel_buf), "%s/vmlinuz", o->assets);
		o->kernel = o->kernel_buf;
	}
	if (o->rootfs == NULL) {
		snprintf(o->rootfs_buf, sizeof(o->rootfs_buf), "%s/rootfs.squashfs", o->assets);
		o->rootfs = o->rootfs_buf;
	}
	snprintf(o->console, sizeof(o->console), "%s/console.log", o->run);
	snprintf(o->agent, sizeof(o->agent), "%s/agent.sock", o->run);
	snprintf(o->qmp, sizeof(o->qmp), "%s/qmp.sock", o->run);
	return 0;
}

/* QEMU's argv from the real builder (which sizes TCG's buffer itself);
 * --tb-size sets another size, --plain-tcg drops it (`-accel tcg`). */
static int make_argv(const struct opts *o, char ***argv)
{
	struct mbx__vm_spec s = {
		.qemu = "/usr/bin/qemu-system-x86_64",
		.accel = o->kvm ? MBX_VM_ACCEL_KVM : MBX_VM_ACCEL_TCG,
		.memory_mib = o->guest_mib,
		.cpus = 1,
		.kernel = o->kernel,
		.rootfs = o->rootfs,
		.cmdline_extra = "init=/bin/sh",
		.ram_file = "/dev/shm/mbx-ram",
		.agent_socket = o->agent,
		.qmp_socket = o->qmp,
		.serial = MBX_VM_SERIAL_FILE,
		.serial_file = o->console,
	};
	mbx_error *e = NULL;

	if (mbx__vm_qemu_argv(argv, &s, &e) < 0) {
		report_error("QEMU's argv", e);
		return -1;
	}
	if (o->stopped_cpus) {
		size_t n = 0;
		char **nv;

		while ((*argv)[n])
			n++;
		nv = realloc(*argv, (n + 2) * sizeof(*nv));
		if (nv == NULL || (nv[n] = strdup("-S")) == NULL) {
			if (nv)
				*argv = nv;
			return -1;
		}
		nv[n + 1] = NULL;
		*argv = nv;
	}
	if (o->tb_size || o->plain_tcg) {
		for (size_t i = 1; (*argv)[i]; i++) {
			if (strcmp((*argv)[i - 1], "-accel") == 0 && strncmp((*argv)[i], "tcg", 3) == 0 &&
			    ((*argv)[i][3] == '\0' || (*argv)[i][3] == ',')) {
				char *n = malloc(64);

				if (n == NULL)
					return -1;
				if (o->plain_tcg)
					snprintf(n, 64, "tcg");
				else
					snprintf(n, 64, "tcg,tb-size=%u", o->tb_size);
				free((*argv)[i]);
				(*argv)[i] = n;
			}
		}
	}
	return 0;
}

static int start(const struct opts *o, char **argv, struct mbx_vm_jail **j)
{
	const char *ro[MAX_RO + 1];
	size_t n = 0;
	mbx_error *e = NULL;
	struct mbx_vm_jail_spec spec;

	ro[n++] = o->assets;
	for (size_t i = 0; i < o->nro; i++)
		ro[n++] = o->ro[i];
	memset(&spec, 0, sizeof(spec));
	spec.argv = argv;
	spec.pass_fd = -1;
	spec.ro_paths = ro;
	spec.nro = n;
	spec.run_dir = o->run;
	spec.memory_bytes = (uint64_t)o->memory_mib << 20;
	spec.millicpus = o->millicpus;
	if (mbx__vm_jail_start(j, &spec, &e) < 0) {
		report_error("start", e);
		return -1;
	}
	return 0;
}

/* Whether the console log holds the guest shell's prompt. */
static int console_has_prompt(const char *path)
{
	static char buf[1 << 16];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, "Run /bin/sh as init process") != NULL && strstr(buf, "\n# ") != NULL;
}

/* Reads QMP's greeting from the socket QEMU created in the run directory. */
static int qmp_greeting(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct pollfd p;
	char buf[512];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0;

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 5000) == 1) {
			n = read(fd, buf, sizeof(buf) - 1);
			if (n > 0) {
				buf[n] = '\0';
				ok = strstr(buf, "\"QMP\"") != NULL;
			}
		}
	} else {
		fprintf(stderr, "vm-jail: connect %s: %s\n", path, strerror(errno));
	}
	close(fd);
	return ok;
}

static void print_rss(pid_t pid)
{
	char path[64], line[256];
	long rss = -1, shmem = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", &rss);
		sscanf(line, "RssShmem: %ld", &shmem);
	}
	fclose(f);
	printf("rss %ld %ld\n", rss, shmem);
}

static int cmd_boot(const struct opts *o)
{
	struct mbx_vm_jail *j = NULL;
	char **argv = NULL;
	uint64_t t0, armed;
	int status = 0, rc = 1, booted = 0;

	if (make_argv(o, &argv) < 0)
		return 1;
	unlink(o->console); /* a prompt in an old log would count */
	t0 = now_ms();
	if (start(o, argv, &j) < 0)
		goto out;
	printf("pid %d\n", (int)mbx__vm_jail_pid(j));
	fflush(stdout);
	while (now_ms() - t0 < (uint64_t)o->boot_timeout * 1000u && !mbx__vm_jail_exited(j, NULL)) {
		struct pollfd p = { .fd = mbx__vm_jail_poll_fd(j), .events = POLLIN };

		if (console_has_prompt(o->console)) {
			booted = 1;
			break;
		}
		poll(&p, 1, 20);
	}
	if (booted) {
		printf("booted %llu\n", (unsigned long long)(now_ms() - t0));
		printf("qmp %s\n", qmp_greeting(o->qmp) ? "OK" : "ERROR");
		print_rss(mbx__vm_jail_pid(j));
		fflush(stdout);
	}
	if (!o->no_wait || !booted) {
		struct pollfd p = { .fd = mbx__vm_jail_poll_fd(j), .events = POLLIN };

		armed = now_ms();
		if (poll(&p, 1, o->wait_exit * 1000) == 1 && mbx__vm_jail_exited(j, &status)) {
			printf("exited %d %llu\n", status, (unsigned long long)(now_ms() - armed));
			if (mbx__vm_jail_stderr(j)[0])
				printf("stderr %s\n", mbx__vm_jail_stderr(j));
			rc = 0;
		} else {
			fprintf(stderr, "vm-jail: QEMU did not end within %d s\n", o->wait_exit);
		}
	} else {
		rc = 0;
	}
	mbx__vm_jail_stop(j);
	printf("stopped\n");
out:
	fflush(stdout);
	mbx__vm_argv_free(argv);
	return rc;
}

/* Reads from fd until a line holding `want` arrives (5 s at most); the
 * line, NUL-terminated, in buf. QMP answers one JSON object a line. */
static int qmp_line(int fd, const char *want, char *buf, size_t cap)
{
	size_t len = 0;
	uint64_t end = now_ms() + 5000;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t n;

		buf[len] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (strstr(buf, want))
				return 0;
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len + 1 >= cap || now_ms() >= end || poll(&p, 1, (int)(end - now_ms())) != 1)
			return -1;
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
}

static int cmd_kvm(struct opts *o)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
	static const char query[] = "{\"execute\":\"query-kvm\"}\n";
	struct mbx_vm_jail *j = NULL;
	char **argv = NULL, buf[4096];
	int fd = -1, rc = 1, status;

	o->kvm = 1;
	o->stopped_cpus = 1;
	if (strlen(o->qmp) >= sizeof(a.sun_path)) {
		fprintf(stderr, "vm-jail: the QMP socket path %s is too long\n", o->qmp);
		return 1;
	}
	if (make_argv(o, &argv) < 0)
		return 1;
	if (start(o, argv, &j) < 0)
		goto out;
	printf("pid %d\n", (int)mbx__vm_jail_pid(j));
	fflush(stdout);
	memcpy(a.sun_path, o->qmp, strlen(o->qmp) + 1);
	for (uint64_t end = now_ms() + 10000; now_ms() < end && !mbx__vm_jail_exited(j, NULL);) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
		usleep(10000);
	}
	if (fd >= 0 && qmp_line(fd, "\"QMP\"", buf, sizeof(buf)) == 0 &&
	    write(fd, caps, sizeof(caps) - 1) == (ssize_t)sizeof(caps) - 1 &&
	    qmp_line(fd, "\"return\"", buf, sizeof(buf)) == 0 &&
	    write(fd, query, sizeof(query) - 1) == (ssize_t)sizeof(query) - 1 &&
	    qmp_line(fd, "\"return\"", buf, sizeof(buf)) == 0) {
		printf("query-kvm %s\n", buf);
		rc = 0;
	} else {
		struct pollfd p = { .fd = mbx__vm_jail_poll_fd(j), .events = POLLIN };

		if (poll(&p, 1, 5000) == 1 && mbx__vm_jail_exited(j, &status)) {
			printf("exited %d\n", status);
			if (mbx__vm_jail_stderr(j)[0])
				printf("stderr %s\n", mbx__vm_jail_stderr(j));
		}
		fprintf(stderr, "vm-jail: no answer to query-kvm from QMP\n");
	}
	if (fd >= 0)
		close(fd);
	mbx__vm_jail_stop(j);
	printf("stopped\n");
out:
	fflush(stdout);
	mbx__vm_argv_free(argv);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, unsigned n, unsigned p)
{
	unsigned i = (n * p + 99) / 100;

	return v[i ? i - 1 : 0];
}

static int cmd_bench(const struct opts *o)
{
	uint64_t *st = calloc(o->runs, sizeof(*st)), *sp = calloc(o->runs, sizeof(*sp));
	char **argv = NULL;
	int rc = 1;

	if (st == NULL || sp == NULL || o->runs == 0 || make_argv(o, &argv) < 0)
		goto out;
	for (unsigned i = 0; i < o->runs; i++) {
		struct mbx_vm_jail *j = NULL;
		uint64_t t0 = mbx__now_us(), t1;

		if (start(o, argv, &j) < 0)
			goto out;
		t1 = mbx__now_us();
		mbx__vm_jail_stop(j);
		st[i] = t1 - t0;
		sp[i] = mbx__now_us() - t1;
		printf("run %u start %.1f ms stop %.1f ms\n", i, st[i] / 1000.0, sp[i] / 1000.0);
	}
	qsort(st, o->runs, sizeof(*st), cmp_u64);
	qsort(sp, o->runs, sizeof(*sp), cmp_u64);
	printf("start P50 %.1f ms P99 %.1f ms; stop P50 %.1f ms P99 %.1f ms (%u runs)\n", pct(st, o->runs, 50) / 1000.0,
	       pct(st, o->runs, 99) / 1000.0, pct(sp, o->runs, 50) / 1000.0, pct(sp, o->runs, 99) / 1000.0, o->runs);
	rc = 0;
out:
	free(st);
	free(sp);
	mbx__vm_argv_free(argv);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || parse(&o, argc, argv) < 0)
		return die_usage("usage: vm-jail boot|bench|kvm --assets DIR --run DIR [options] (see the source)");
	if (strcmp(argv[1], "boot") == 0)
		return cmd_boot(&o);
	if (strcmp(argv[1], "bench") == 0)
		return cmd_bench(&o);
	if (strcmp(argv[1], "kvm") == 0)
		return cmd_kvm(&o);
	return die_usage("unknown command (boot, bench or kvm)");
}
