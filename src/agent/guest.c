/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest mode: the agent as the init of a microvm guest (docs/microvm.md,
 * "The guest agent"). The kernel runs it as /init of the initramfs the
 * library writes (src/backend/microvm/initramfs.c) with the console on fds
 * 0-2 and nothing else open; that, with PID 1, tells guest mode apart from
 * the os backend, which always passes the channel as fd 3.
 *
 * Boot, before HELLO:
 *  1. devtmpfs on /dev, proc on /proc, sysfs on /sys (in the initramfs);
 *  2. the virtio-serial port whose name `mimobox.port=` in /proc/cmdline gives
 *     is found in /sys/class/virtio-ports/<dev>/name and /dev/<dev> opened as
 *     fd 3 (the port and its name arrive from the host a little after the
 *     device: looked for until PORT_WAIT_MS);
 *  3. the root: the read-only squashfs /dev/vda as the lower layer of an
 *     overlay whose upper and work directories live in one "storage" tmpfs
 *     (INIT's MBX_F_DISK sizes it), /workspace and /tmp (1777) in it; /dev,
 *     /proc, /sys moved in, devpts on /dev/pts, tmpfs on /dev/shm and /run;
 *  4. the overlay becomes / by mount --move and chroot (pivot_root cannot
 *     leave an initramfs);
 *  5. the host's end of the port is waited for (POLLHUP clears once it is
 *     connected), then main() sends HELLO.
 *
 * A failure before the channel exists is printed on the console and the
 * guest powers off; one after it is kept and answers the host's first
 * request (so the host reads it where it expects INIT's answer), then the
 * guest powers off. The end of the guest is always reboot(RB_AUTOBOOT):
 * QEMU runs with -no-reboot, so it exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbx/error.h>
#include "agent.h"

#define PORT_PARAM "mimobox.port="
#define PORT_WAIT_MS 10000u   /* the port and its name appear */
#define HOST_WAIT_MS 60000u   /* the host connects to the port's socket */
#define FAIL_WAIT_MS 30000u   /* the host's first request after a failed boot */
#define LOWER "/lower"       /* in the initramfs: the read-only root image */
#define STORAGE "/storage"   /* in the initramfs: the writable storage tmpfs */
#define NEWROOT "/newroot"
#define CGROUP_DIR "/sys/fs/cgroup"
#define PAYLOAD_CGROUP CGROUP_DIR "/payloads"

/* <linux/random.h>, which the static (musl) build has no copy of. */
struct mbx_rand_pool_info {
	int entropy_count; /* bits credited */
	int buf_size;      /* bytes */
	uint8_t buf[MBX_SEED_MAX];
};
#define MBX_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define MBX_RNDRESEEDCRNG _IO('R', 0x07)

int agent_guest_detect(void)
{
	return getpid() == 1 && fcntl(AGENT_FD, F_GETFD) < 0 && errno == EBADF;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Records why the boot failed (first failure wins); errno is kept. */
static void boot_fail(struct agent_state *st, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void boot_fail(struct agent_state *st, const char *layer, const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	if (st->boot_failed)
		return;
	st->boot_failed = 1;
	st->boot_errno = e;
	snprintf(st->boot_layer, sizeof(st->boot_layer), "%s", layer);
	va_start(ap, fmt);
	vsnprintf(st->boot_msg, sizeof(st->boot_msg), fmt, ap);
	va_end(ap);
	/* The console is the guest's log (the host may keep it in a file). */
	dprintf(2, "mimobox-agent: %s: %s (%s)\n", layer, st->boot_msg, strerror(e));
	errno = e;
}

void agent_guest_poweroff(void)
{
	sigset_t all;

	/* Everything else in the guest, then the disks' data, then the end.
	 * As the guest's PID 1, kill(-1) reaches every other process. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	sync();
	reboot(RB_AUTOBOOT);
	/* Only when reboot itself failed: init exiting panics the kernel,
	 * which (panic=-1, -no-reboot) ends QEMU all the same. */
	_exit(1);
}

static int mount_early(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		return -1;
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		return -1;
	return 0;
}

/* The value of `mimobox.port=` on the kernel command line, into name. */
static int port_name(char *name, size_t cap)
{
	char line[4096];
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	line[n] = '\0';
	for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
		size_t len;

		if (strncmp(tok, PORT_PARAM, strlen(PORT_PARAM)) != 0)
			continue;
		tok += strlen(PORT_PARAM);
		len = strlen(tok);
		if (len == 0 || len >= cap || strchr(tok, '/') != NULL) {
			errno = EINVAL;
			return -1;
		}
		memcpy(name, tok, len + 1);
		return 0;
	}
	errno = ENOENT;
	return -1;
}

/* Looks the port named `want` up in sysfs once; opens its device. Returns
 * the descriptor, or -1 (errno ENOENT while it is not there yet). */
static int open_port_once(const char *want)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *de;
	int fd = -1;

	if (d == NULL)
		return -1;
	errno = ENOENT;
	while ((de = readdir(d)) != NULL) {
		char path[300], name[256];
		ssize_t n;
		int nf;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		nf = open(path, O_RDONLY | O_CLOEXEC);
		if (nf < 0)
			continue;
		n = read(nf, name, sizeof(name) - 1);
		close(nf);
		if (n <= 0)
			continue;
		name[n] = '\0';
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, want) != 0)
			continue;
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		break;
	}
	{
		int e = errno;

		closedir(d);
		errno = e;
	}
	return fd;
}

int agent_guest_open_port(const char *name)
{
	unsigned waited = 0;
	int fd;

	while ((fd = open_port_once(name)) < 0) {
		if (errno != ENOENT || waited >= PORT_WAIT_MS)
			return -1;
		sleep_ms(10);
		waited += 10;
	}
	return fd;
}

/* Step 2: the channel as fd 3. */
static int open_channel(struct agent_state *st)
{
	char want[128];
	unsigned waited = 0;
	int fd;

	if (port_name(want, sizeof(want)) < 0) {
		boot_fail(st, "microvm-guest", "the kernel command line names no agent port (" PORT_PARAM "NAME)");
		return -1;
	}
	while ((fd = open_port_once(want)) < 0) {
		if (errno != ENOENT || waited >= PORT_WAIT_MS) {
			boot_fail(st, "microvm-guest", "open the agent port `%s`", want);
			return -1;
		}
		sleep_ms(10);
		waited += 10;
	}
	if (fd != AGENT_FD) {
		if (dup3(fd, AGENT_FD, O_CLOEXEC) < 0) {
			boot_fail(st, "microvm-guest", "move the agent port to fd 3");
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Step 3 and 4: the overlay root, then switch into it. */
static int build_root(struct agent_state *st)
{
	const char *what;

	what = "mount the root image /dev/vda (squashfs, read-only)";
	if (mkdir(LOWER, 0755) < 0 && errno != EEXIST)
		goto fail;
	if (mount("/dev/vda", LOWER, "squashfs", MS_RDONLY, NULL) < 0)
		goto fail;
	/* Sized by INIT (MBX_F_DISK); until then the tmpfs default. */
	what = "mount the storage tmpfs";
	if (mkdir(STORAGE, 0755) < 0 && errno != EEXIST)
		goto fail;
	if (mount("tmpfs", STORAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		goto fail;
	st->storage_fd = open(STORAGE, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->storage_fd < 0)
		goto fail;
	what = "mount the overlay root";
	if (mkdir(STORAGE "/upper", 0755) < 0 || mkdir(STORAGE "/work", 0755) < 0)
		goto fail;
	if (mount("overlay", NEWROOT, "overlay", 0,
		  "lowerdir=" LOWER ",upperdir=" STORAGE "/upper,workdir=" STORAGE "/work") < 0)
		goto fail;
	what = "make /workspace and /tmp";
	if ((mkdir(NEWROOT "/workspace", 0755) < 0 && errno != EEXIST) || chmod(NEWROOT "/workspace", 0755) < 0)
		goto fail;
	if ((mkdir(NEWROOT "/tmp", 01777) < 0 && errno != EEXIST) || chmod(NEWROOT "/tmp", 01777) < 0)
		goto fail;
	what = "move /dev, /proc and /sys into the root";
	if ((mkdir(NEWROOT "/dev", 0755) < 0 && errno != EEXIST) || (mkdir(NEWROOT "/proc", 0555) < 0 && errno != EEXIST) ||
	    (mkdir(NEWROOT "/sys", 0555) < 0 && errno != EEXIST))
		goto fail;
	if (mount("/dev", NEWROOT "/dev", NULL, MS_MOVE, NULL) < 0 || mount("/proc", NEWROOT "/proc", NULL, MS_MOVE, NULL) < 0 ||
	    mount("/sys", NEWROOT "/sys", NULL, MS_MOVE, NULL) < 0)
		goto fail;
	/* Terminals: the devtmpfs /dev/ptmx opens the devpts instance at
	 * /dev/pts beside it (what posix_openpt uses). */
	what = "mount devpts on /dev/pts";
	if (mount_early("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620") < 0)
		goto fail;
	what = "mount tmpfs on /dev/shm";
	if (mount_early("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		goto fail;
	what = "mount tmpfs on /run";
	if (mount_early("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		goto fail;
	what = "switch to the new root";
	if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		goto fail;
	return 0;
fail:
	boot_fail(st, "mount-namespace", "%s", what);
	return -1;
}

/* Step 5: the host's end of the port. virtio_console reports POLLHUP while
 * the host side is not connected, and reads then give end of file. */
int agent_guest_host_connected(struct agent_state *st)
{
	struct pollfd p = { .fd = st->chan, .events = POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return 0;
	return !(p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static int wait_host(struct agent_state *st)
{
	unsigned waited = 0;

	for (;;) {
		if (agent_guest_host_connected(st))
			return 0;
		if (waited >= HOST_WAIT_MS) {
			errno = ETIMEDOUT;
			boot_fail(st, "microvm-guest", "the host did not connect to the agent port");
			return -1;
		}
		sleep_ms(2);
		waited += 2;
	}
}

void agent_guest_boot(struct agent_state *st)
{
	/* The initramfs has /dev/console (the kernel opened it for us), /dev,
	 * /proc, /sys and /newroot: the rest is made here. */
	if (mount_early("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0) {
		boot_fail(st, "microvm-guest", "mount devtmpfs on /dev");
		agent_guest_poweroff();
	}
	if (mount_early("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    mount_early("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		boot_fail(st, "microvm-guest", "mount /proc and /sys");
		agent_guest_poweroff();
	}
	if (open_channel(st) < 0)
		agent_guest_poweroff();
	/* From here a failure is reported on the channel (agent_guest_failed). */
	build_root(st);
	if (wait_host(st) < 0)
		agent_guest_poweroff();
}

void agent_guest_failed(struct agent_state *st)
{
	unsigned waited = 0;

	/* The host sends INIT right after HELLO: answer it (or whatever comes
	 * first) with the boot failure, so it reads the error where it waits
	 * for READY. */
	while (waited < FAIL_WAIT_MS) {
		struct pollfd p = { .fd = st->chan, .events = POLLIN };
		struct mbx_frame f;
		uint8_t *buf;
		ssize_t n;
		int rc;

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		waited += 100;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		buf = mbx_rbuf_space(&st->in, 65536);
		if (buf == NULL)
			break;
		n = read(st->chan, buf, 65536);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		mbx_rbuf_commit(&st->in, (size_t)n);
		rc = mbx_rbuf_next(&st->in, &f);
		if (rc < 0)
			break;
		if (rc == 0)
			continue;
		agent_send_error(st, f.type == MBX_MSG_INIT ? 0 : f.id, MBX_ESYS, st->boot_errno, st->boot_layer,
				 "the microvm guest did not start: %s: %s", st->boot_msg, strerror(st->boot_errno));
		agent_flush(st, 1);
		break;
	}
	agent_guest_poweroff();
}

/* INIT's MBX_F_DISK: the storage tmpfs gets its size and inode count. */
static int resize_storage(struct agent_state *st, uint64_t bytes)
{
	uint64_t inodes = bytes / MBX_GUEST_DISK_BYTES_PER_INODE;
	char opts[96], path[64];

	if (inodes < MBX_GUEST_DISK_MIN_INODES)
		inodes = MBX_GUEST_DISK_MIN_INODES;
	snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=%llu", (unsigned long long)bytes, (unsigned long long)inodes);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", st->storage_fd);
	if (st->storage_fd < 0 || mount(NULL, path, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0) {
		agent_send_error(st, 0, MBX_ESYS, errno, "limits", "size the guest's storage (%s)", opts);
		return -1;
	}
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n, len = (ssize_t)strlen(text);

	if (fd < 0)
		return -1;
	n = write(fd, text, (size_t)len);
	if (n != len) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/*
 * INIT's MBX_F_MAX_PROCS: a pids cgroup every mini-init enters before it
 * forks its program (payload.c), so all payloads together stay within the
 * limit. The agent keeps the cgroup's cgroup.procs open and unmounts the
 * hierarchy again: a payload (uid 0 without capabilities, which file
 * permissions alone would let write pids.max) cannot reach it.
 */
/* Guest RAM kept from the payloads: the agent, the kernel's own needs. */
#define GUEST_RESERVE (24ull << 20)

static int limit_processes(struct agent_state *st, uint32_t max_procs)
{
	char text[32];
	const char *what = "mount cgroup2 on " CGROUP_DIR;

	if (mount("cgroup2", CGROUP_DIR, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		goto fail;
	what = "enable the pids controller";
	if (write_text(CGROUP_DIR "/cgroup.subtree_control", "+pids") < 0)
		goto fail_mounted;
	/* The memory controller only counts: guest RAM is the limit. Its
	 * memory.events tells an out-of-memory kill of a payload from a plain
	 * SIGKILL (best effort: without it the flag is never set). */
	(void)!write_text(CGROUP_DIR "/cgroup.subtree_control", "+memory");
	what = "make the payload cgroup";
	if (mkdir(PAYLOAD_CGROUP, 0755) < 0 && errno != EEXIST)
		goto fail_mounted;
	what = "set pids.max";
	snprintf(text, sizeof(text), "%u", max_procs);
	if (write_text(PAYLOAD_CGROUP "/pids.max", text) < 0)
		goto fail_mounted;
	/* Payloads together get the guest's RAM less a reserve for the agent
	 * and the kernel: past it the cgroup's own OOM killer ends the
	 * biggest payload at once, where the whole guest would first thrash
	 * on its page cache (the root image's programs) for minutes. */
	{
		long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
		unsigned long long total = pages > 0 && psize > 0 ? (unsigned long long)pages * (unsigned long long)psize : 0;

		if (total > 2 * GUEST_RESERVE) {
			snprintf(text, sizeof(text), "%llu", total - GUEST_RESERVE);
			(void)!write_text(PAYLOAD_CGROUP "/memory.max", text);
		}
	}
	what = "open the payload cgroup";
	st->cgroup_procs_fd = open(PAYLOAD_CGROUP "/cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (st->cgroup_procs_fd < 0)
		goto fail_mounted;
	st->oom_events_fd = open(PAYLOAD_CGROUP "/memory.events", O_RDONLY | O_CLOEXEC);
	what = "unmount " CGROUP_DIR;
	if (umount2(CGROUP_DIR, MNT_DETACH) < 0)
		goto fail;
	return 0;
fail_mounted:
	{
		int e = errno;

		umount2(CGROUP_DIR, MNT_DETACH);
		errno = e;
	}
fail:
	agent_send_error(st, 0, MBX_ENOTSUP, errno, "limits", "limit the guest's processes to %u: %s", max_procs, what);
	return -1;
}

/* Host randomness credited to the guest's pool, the kernel's generator
 * reseeded from it at once. -1 with errno when the kernel refused. */
static int seed_pool(const uint8_t *seed, uint32_t len)
{
	struct mbx_rand_pool_info req;
	int fd, rc, e = 0;

	memset(&req, 0, sizeof(req));
	req.entropy_count = (int)(len * 8);
	req.buf_size = (int)len;
	memcpy(req.buf, seed, len);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	rc = fd < 0 ? -1 : ioctl(fd, MBX_RNDADDENTROPY, &req);
	if (rc == 0)
		rc = ioctl(fd, MBX_RNDRESEEDCRNG);
	if (rc < 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	explicit_bzero(&req, sizeof(req));
	errno = e;
	return rc;
}

/* INIT's MBX_F_SEED: so a guest never starts from the same state. */
static int add_seed(struct agent_state *st, const uint8_t *seed, uint32_t len)
{
	int rc = seed_pool(seed, len);

	if (rc < 0)
		agent_send_error(st, 0, MBX_ESYS, errno, "microvm-guest", "add the host's seed to the guest's random pool");
	return rc;
}

/* Replaces a small file's content (created 0644 when missing). */
static int replace_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	size_t len = strlen(text);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, len);
	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* /etc/hostname and /etc/hosts name the sandbox, as in the os backend's
 * root (the guest's root is writable: its overlay). -1 with errno. */
static int write_host_files(void)
{
	char name[256], text[600];

	if (gethostname(name, sizeof(name)) < 0)
		return 0;
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), "%s\n", name);
	if (replace_text("/etc/hostname", text) < 0)
		return -1;
	snprintf(text, sizeof(text), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
		 name);
	return replace_text("/etc/hosts", text);
}

static int name_host(struct agent_state *st)
{
	if (write_host_files() == 0)
		return 0;
	agent_send_error(st, 0, MBX_ESYS, errno, "uts-namespace", "write /etc/hostname and /etc/hosts");
	return -1;
}

/* A new /etc/machine-id: 32 hex digits from the (reseeded) kernel. */
static int new_machine_id(void)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[16];
	char text[34];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		text[2 * i] = hex[raw[i] >> 4];
		text[2 * i + 1] = hex[raw[i] & 15];
	}
	text[32] = '\n';
	text[33] = '\0';
	return replace_text("/etc/machine-id", text);
}

void agent_guest_identity(struct agent_state *st, const struct mbx_frame *f)
{
	struct mbx_field_iter it;
	const uint8_t *v, *seed = NULL;
	uint32_t n, seed_len = 0;
	uint64_t now_ns = 0;
	char name[65] = "";
	uint16_t tag;
	int rc;

	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		if (tag == MBX_F_SEED && n >= MBX_SEED_MIN && n <= MBX_SEED_MAX) {
			seed = v;
			seed_len = n;
		} else if (tag == MBX_F_HOSTNAME && n >= 1 && n < sizeof(name) && memchr(v, '\0', n) == NULL) {
			memcpy(name, v, n);
			name[n] = '\0';
		} else if (tag == MBX_F_MTIME_NS && mbx_field_u64(v, n, &now_ns) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc < 0 || seed == NULL || name[0] == '\0') {
		agent_send_error(st, f->id, MBX_EPROTO, 0, NULL, "malformed IDENTITY message");
		return;
	}
	/* The clone's processes belong to the snapshot's host: they run on,
	 * nobody here reads their output. */
	agent_proc_detach_all(st);
	if (seed_pool(seed, seed_len) < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "microvm-guest", "reseed the guest's random generator");
		return;
	}
	if (now_ns) {
		struct timespec ts = { (time_t)(now_ns / 1000000000u), (long)(now_ns % 1000000000u) };

		/* The guest's clock stood still while it was saved. */
		if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
			agent_send_error(st, f->id, MBX_ESYS, errno, "microvm-guest", "set the guest's clock");
			return;
		}
	}
	if (sethostname(name, strlen(name)) < 0 || write_host_files() < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "uts-namespace", "give the clone its host name");
		return;
	}
	if (new_machine_id() < 0) {
		agent_send_error(st, f->id, MBX_ESYS, errno, "microvm-guest", "write a new /etc/machine-id");
		return;
	}
	mbx_proto_begin(&st->out, MBX_MSG_OK, f->id);
	mbx_proto_end(&st->out);
}

/*
 * INIT's MBX_F_NET_CA: the certificate bundle at /etc/ssl/mimobox-ca.pem
 * (0644), then bound read-only onto itself, as the os backend's copy is:
 * programs read it, none can change what the others trust.
 */
#define CA_PATH "/etc/ssl/mimobox-ca.pem"
static int install_ca(struct agent_state *st, const uint8_t *pem, uint32_t len)
{
	const char *what = "make /etc/ssl";
	size_t off = 0;
	int fd;

	if ((mkdir("/etc", 0755) < 0 && errno != EEXIST) || (mkdir("/etc/ssl", 0755) < 0 && errno != EEXIST))
		goto fail;
	what = "write " CA_PATH;
	fd = open(CA_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, pem + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			close(fd);
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) < 0 || close(fd) < 0)
		goto fail;
	what = "make " CA_PATH " read-only";
	if (mount(CA_PATH, CA_PATH, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, CA_PATH, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		goto fail;
	return 0;
fail:
	agent_send_error(st, 0, MBX_ESYS, errno, "network", "install the certificate bundle: %s", what);
	return -1;
}

int agent_guest_setup(struct agent_state *st, const struct agent_guest_init *g)
{
	if (name_host(st) < 0)
		return -1;
	if (g->ca && install_ca(st, g->ca, g->ca_len) < 0)
		return -1;
	if (g->disk && resize_storage(st, g->disk) < 0)
		return -1;
	if (g->max_procs && limit_processes(st, g->max_procs) < 0)
		return -1;
	if (g->seed && add_seed(st, g->seed, g->seed_len) < 0)
		return -1;
	return 0;
}
