/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microvm backend: a sandbox is a Linux guest under QEMU whose PID 1 is
 * the same agent as in the os backend, in guest mode, speaking the same
 * protocol over a virtio-serial port (docs/microvm.md). The host side: the
 * verified guest assets (assets.c), a private run directory holding the
 * initramfs (the agent, initramfs.c), the console log and QEMU's sockets,
 * guest RAM in a memory-backend-file on a tmpfs, QEMU started in its jail
 * (jail.c), and the agent client (src/backend/client.c) over the chardev
 * socket. Everything after READY (executes, processes, PTYs, files) is the
 * client's and works as on the os backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "backend/agenthost.h"
#include "backend/backend.h"
#include "assets.h"
#include "initramfs.h"
#include "jail.h"
#include "microvm.h"
#include "qemu-cmdline.h"
#include "qmp.h"
#include "snapshot.h"
#include "statedir.h"
#include "vmsnap.h"
#include "vmnet.h"
#include "net/net.h"

/* Boot to the agent's HELLO. Under TCG a boot takes about 2 s on an idle
 * host; a loaded host (sanitizers, parallel builds) can take many times
 * that. */
#define BOOT_DEADLINE_US (120u * 1000000u)
#define QEMU_PATH "/usr/bin/qemu-system-x86_64"
/* The guest's share of the entropy it starts with (MBX_F_SEED). */
#define SEED_BYTES 64u
/* Where QEMU sees the run directory inside its jail: short, so that its
 * socket paths fit sun_path whatever the state directory is. */
#define RUN_VIEW "/vm"
/* How much of the console log an error quotes. */
#define CONSOLE_TAIL 1200
/* A fresh guest's RAM: a file QEMU creates in its jail's /dev/shm (a
 * tmpfs charged to the jail), named so that a snapshot can read it. A
 * restored guest maps the snapshot's memory, passed as QEMU's fd 3. */
#define RAM_FILE "/dev/shm/guest-ram"
#define RAM_SNAPSHOT "/proc/self/fd/3"
/* Snapshot and restore steps, QEMU's migration included. */
#define SNAP_DEADLINE_US (120u * 1000000u)

struct microvm_sb {
	struct mbx_agenthost host;
	struct mbx_statedir sd;   /* run directory: initrd, sockets, console log */
	struct mbx_vm_assets assets;
	struct mbx_vm_jail *jail; /* QEMU, jailed */
	enum mbx__vm_accel accel;
	/* allow-domains: the network channel's host end and the proxy it
	 * hands each stream to (docs/microvm.md, "Network") */
	struct mbx_netproxy *proxy;
	struct mbx_vmnet *vmnet;
	uint64_t dropped_us;      /* when the channel was last closed (CLOCK_MONOTONIC us) */
	int ram_private;          /* restored: guest RAM is a copy-on-write map of a snapshot's */
};

static void microvm_cleanup(struct microvm_sb *m)
{
	if (m == NULL)
		return;
	mbx__agenthost_shutdown(&m->host);
	mbx__agenthost_release(&m->host);
	/* The channel's thread first (it hands streams to the proxy), then
	 * the proxy, which cuts every connection it still serves. */
	mbx__vmnet_stop(m->vmnet);
	m->vmnet = NULL;
	mbx__netproxy_free(m->proxy);
	m->proxy = NULL;
	if (m->jail)
		mbx__vm_jail_stop(m->jail);
	m->jail = NULL;
	mbx__vm_assets_release(&m->assets);
	mbx__statedir_release(&m->sd);
	free(m);
}

/* The console log's last lines, for an error that says why the guest did
 * not come up (a kernel panic, a missing device). */
static void add_console_tail(const struct microvm_sb *m, mbx_error **err)
{
	char path[4200], buf[CONSOLE_TAIL + 1];
	ssize_t n;
	off_t size;
	int fd;

	snprintf(path, sizeof(path), "%s/console.log", m->sd.dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > 0 && lseek(fd, size > CONSOLE_TAIL ? size - CONSOLE_TAIL : 0, SEEK_SET) >= 0 &&
	    (n = read(fd, buf, CONSOLE_TAIL)) > 0) {
		buf[n] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] < 0x20 && buf[i] != '\n')
				buf[i] = ' ';
		mbx__error_wrap(err, "the guest's console ended with:\n%s", buf);
	}
	close(fd);
}

/* Refuses what this backend cannot give, naming the layer: never a silent
 * downgrade. */
static int check_config(const mbx_config *cfg, mbx_error **err)
{
	if (cfg->network == MBX_NETWORK_ALLOW_ALL) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "network",
			       "the microvm backend gives its guest no network interface, so it cannot allow all network access");
		mbx__error_suggest(err, "use an allow-list of domains (reached through the host's proxy), or the os backend for full network access");
		return MBX_ENOTSUP;
	}
	if (cfg->nmounts > 0) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "mount-namespace",
			       "the microvm backend cannot share host directories with its guest yet (mount `%s`)",
			       cfg->mounts[0].host);
		mbx__error_suggest(err, "copy files in with the file API (`mimobox cp`), or use the os backend for --mount");
		return MBX_ENOTSUP;
	}
	if (cfg->memory_bytes < ((uint64_t)MBX_VM_MEMORY_MIB_MIN << 20) ||
	    cfg->memory_bytes > ((uint64_t)MBX_VM_MEMORY_MIB_MAX << 20)) {
		mbx__error_set(err, MBX_EINVAL, 0, "limits", "a microVM needs between %u MiB and %u MiB of memory, not %llu bytes",
			       MBX_VM_MEMORY_MIB_MIN, MBX_VM_MEMORY_MIB_MAX, (unsigned long long)cfg->memory_bytes);
		return MBX_EINVAL;
	}
	return MBX_OK;
}

/* Writes the initramfs (the agent as /init) into the run directory. */
static int write_initrd(const struct microvm_sb *m, char *path, size_t cap, mbx_error **err)
{
	struct mbx_buf cpio = { 0 };
	const uint8_t *agent;
	size_t agent_len, off = 0;
	int fd, rc;

	mbx__agent_image(&agent, &agent_len);
	rc = mbx__vm_initramfs_build(&cpio, agent, agent_len, err);
	if (rc < 0)
		return rc;
	snprintf(path, cap, "%s/initrd", m->sd.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "create the guest's initramfs `%s`", path);
		mbx__buf_release(&cpio);
		return rc;
	}
	while (off < cpio.len) {
		ssize_t n = write(fd, cpio.data + off, cpio.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = mbx__error_set(err, MBX_ESYS, n < 0 ? errno : ENOSPC, NULL, "write the guest's initramfs `%s`", path);
			break;
		}
		off += (size_t)n;
	}
	mbx__buf_release(&cpio);
	if (close(fd) < 0 && rc == MBX_OK)
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "write the guest's initramfs `%s`", path);
	return rc;
}

/*
 * Connects to one of QEMU's chardev sockets (`what` names it in errors).
 * QEMU creates them while it starts; until then connect() fails with
 * ENOENT or ECONNREFUSED. A QEMU that ends first is an error at once.
 */
static int connect_chardev(struct microvm_sb *m, const char *path, const char *what, int *out, uint64_t deadline,
			   mbx_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, wstatus;

	if (strlen(path) >= sizeof(sa.sun_path))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "%s socket path `%s` is too long", what, path);
	strcpy(sa.sun_path, path);
	for (;;) {
		struct pollfd p = { .fd = mbx__vm_jail_poll_fd(m->jail), .events = POLLIN };

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "create a socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != ENOENT && errno != ECONNREFUSED && errno != EINTR) {
			int e = errno;

			close(fd);
			return mbx__error_set(err, MBX_ESYS, e, NULL, "connect to the %s socket `%s`", what, path);
		}
		close(fd);
		if (mbx__vm_jail_exited(m->jail, &wstatus) == 1) {
			mbx__error_set(err, MBX_ESYS, 0, "vmm", "QEMU ended before it took the %s connection (%s %d)", what,
				       WIFSIGNALED(wstatus) ? "signal" : "exit status",
				       WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
			return MBX_ESYS;
		}
		if (mbx__now_us() >= deadline)
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, "vmm", "QEMU did not open the %s socket in time", what);
		poll(p.fd >= 0 ? &p : NULL, p.fd >= 0 ? 1 : 0, 2);
	}
	*out = fd;
	return MBX_OK;
}

/* The agent's socket as a byte stream in *t: no descriptors can pass. */
static int connect_socket(struct microvm_sb *m, const char *path, uint64_t deadline, struct mbx_transport *t,
			  mbx_error **err)
{
	int fd, rc = connect_chardev(m, path, "guest agent's", &fd, deadline, err);

	if (rc < 0)
		return rc;
	mbx__transport_stream(t, fd);
	return MBX_OK;
}

/* Connects to the agent's socket at `path` and greets it. */
static int connect_agent(struct microvm_sb *m, const char *path, uint64_t deadline, mbx_error **err)
{
	struct mbx_transport t;
	int rc = connect_socket(m, path, deadline, &t, err);

	if (rc < 0)
		return rc;
	return mbx__agenthost_attach(&m->host, &t, deadline, err);
}

/* A stream the guest opened: the proxy serves it (one of its threads). */
static int serve_stream(void *ud, int fd)
{
	struct microvm_sb *m = ud;

	return mbx__netproxy_serve(m->proxy, fd, NULL) == MBX_OK ? 0 : -1;
}

/*
 * allow-domains: the proxy (the os backend's, with the same policy, limits
 * and audit log) and the network channel's thread, connected to QEMU's
 * socket for the port org.mimobox.net before the guest opens it. The
 * guest's agent listens on 127.0.0.1:3128 once INIT says so.
 */
/* Connects the network channel's thread to QEMU's socket for the port
 * org.mimobox.net, the streams going to m->proxy. */
static int connect_vmnet(mbx_sandbox *sb, struct microvm_sb *m, uint64_t deadline, mbx_error **err)
{
	char path[64];
	int dirfd, fd, rc;

	/* Through the directory's descriptor, as the agent's socket. */
	dirfd = open(m->sd.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "open the run directory `%s`", m->sd.dir);
	snprintf(path, sizeof(path), "/proc/self/fd/%d/net.sock", dirfd);
	rc = connect_chardev(m, path, "network channel's", &fd, deadline, err);
	close(dirfd);
	if (rc < 0)
		return rc;
	rc = mbx__vmnet_start(&m->vmnet, fd, serve_stream, m, sb->cfg, err);
	if (rc < 0)
		mbx__error_wrap(err, "network: the guest's channel to the proxy");
	return rc;
}

static int start_network(mbx_sandbox *sb, struct microvm_sb *m, uint64_t deadline, mbx_error **err)
{
	int rc = mbx__netproxy_new(&m->proxy, sb->cfg, sb->net ? sb->net->log : NULL, NULL, err);

	return rc < 0 ? rc : connect_vmnet(sb, m, deadline, err);
}

/* Starts QEMU in its jail: booting, or (mem_fd >= 0) waiting for a
 * snapshot's device state with the snapshot's memory mapped copy-on-write. */
static int start_qemu(mbx_sandbox *sb, struct microvm_sb *m, int mem_fd, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	char initrd[4200], agent_sock[4200], qmp_sock[4200], console[4200], net_sock[4200];
	const char *ro[2];
	struct mbx__vm_spec spec = { 0 };
	struct mbx_vm_jail_spec js = { 0 };
	char **argv = NULL;
	int rc;

	rc = write_initrd(m, initrd, sizeof(initrd), err);
	if (rc < 0)
		return rc;
	snprintf(initrd, sizeof(initrd), RUN_VIEW "/initrd");
	snprintf(agent_sock, sizeof(agent_sock), RUN_VIEW "/agent.sock");
	snprintf(qmp_sock, sizeof(qmp_sock), RUN_VIEW "/qmp.sock");
	snprintf(console, sizeof(console), RUN_VIEW "/console.log");
	snprintf(net_sock, sizeof(net_sock), RUN_VIEW "/net.sock");
	spec.qemu = QEMU_PATH;
	spec.accel = m->accel;
	spec.memory_mib = (unsigned)(cfg->memory_bytes >> 20);
	spec.cpus = 1;
	spec.kernel = m->assets.kernel;
	spec.rootfs = m->assets.rootfs;
	spec.initrd = initrd;
	spec.cmdline_extra = "quiet rdinit=/init mimobox.port=" MBX_VM_AGENT_PORT;
	spec.ram_file = mem_fd >= 0 ? RAM_SNAPSHOT : RAM_FILE;
	spec.ram_private = mem_fd >= 0;
	spec.incoming_defer = mem_fd >= 0;
	spec.agent_socket = agent_sock;
	spec.qmp_socket = qmp_sock;
	spec.net_socket = cfg->network == MBX_NETWORK_ALLOW_DOMAINS ? net_sock : NULL;
	spec.serial = MBX_VM_SERIAL_FILE;
	spec.serial_file = console;
	rc = mbx__vm_qemu_argv(&argv, &spec, err);
	if (rc < 0)
		return rc;
	ro[0] = m->assets.dir;
	js.argv = argv;
	js.ro_paths = ro;
	js.nro = 1;
	js.run_dir = m->sd.dir;
	js.run_view = RUN_VIEW;
	js.memory_bytes = cfg->memory_bytes + MBX_VM_JAIL_OVERHEAD + (mem_fd >= 0 ? MBX_VM_JAIL_PRIVATE_RAM_EXTRA : 0);
	js.millicpus = cfg->millicpus;
	js.cfg = cfg;
	js.pass_fd = mem_fd;
	rc = mbx__vm_jail_start(&m->jail, &js, err);
	mbx__vm_argv_free(argv);
	return rc;
}

/* What QEMU's jail could not apply under allow-degraded (a CPU quota
 * without a cgroup) is the sandbox's to report. */
static void take_jail_skips(mbx_sandbox *sb, struct microvm_sb *m)
{
	const char *const *why = NULL;
	uint32_t skipped = mbx__vm_jail_skipped(m->jail, &why) & MBX_LAYER_LIMITS;

	if (skipped) {
		sb->skipped |= skipped;
		sb->layers &= ~skipped;
		sb->skip_reason[mbx__layer_index(MBX_LAYER_LIMITS)] = why[mbx__layer_index(MBX_LAYER_LIMITS)];
	}
}

/* The layers of a running guest (after READY, or after a restore). */
static void set_vm_layers(mbx_sandbox *sb)
{
	/* The VM is the boundary; inside it each execute runs in pid and mount
	 * namespaces of its own (the agent's mini-init) with the payload layers
	 * the agent reports; the guest has no network interface but loopback. */
	sb->layers |= MBX_LAYER_VM | MBX_LAYER_VMM_JAIL | MBX_LAYER_PID_NS | MBX_LAYER_MOUNT_NS | MBX_LAYER_NET_NS |
		      MBX_LAYER_LIMITS;
	/* Memory: guest RAM; processes: a pids cgroup in the guest; QEMU
	 * itself under its jail's limits. */
	sb->limits_mech = "vm";
}

/* Sends INIT (guest mode) and waits for READY. */
static int init_guest(mbx_sandbox *sb, struct microvm_sb *m, uint64_t deadline, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	struct mbx_wbuf *w = &m->host.client.wb;
	uint8_t seed[SEED_BYTES];
	char *bundle = NULL;
	size_t bundle_len = 0;
	int rc;

	if (mbx__net_ca_pem(cfg, NULL)) {
		/* Extra CAs: the host's bundle plus them, as the os backend's. */
		if (mbx__net_ca_bundle(cfg, &bundle, &bundle_len) < 0)
			return mbx__error_oom(err);
		if (bundle_len == 0 || bundle_len > MBX_NET_CA_MAX) {
			free(bundle);
			mbx__error_set(err, MBX_EINVAL, 0, "network",
				       "the certificate bundle (the host's and the extra CA files) is %zu bytes; a guest takes 1 to %u",
				       bundle_len, MBX_NET_CA_MAX);
			mbx__error_suggest(err, "give fewer or smaller CA files");
			return MBX_EINVAL;
		}
	}
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		free(bundle);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "getrandom");
	}
	rc = mbx__agenthost_init_begin(&m->host, cfg,
				       MBX_INIT_GUEST | MBX_INIT_LOOPBACK |
					       (m->vmnet ? MBX_INIT_NET_PROXY : 0u),
				       err);
	if (rc < 0) {
		explicit_bzero(seed, sizeof(seed));
		free(bundle);
		return rc;
	}
	mbx_proto_put_u64(w, MBX_F_DISK, cfg->disk_bytes);
	mbx_proto_put(w, MBX_F_SEED, seed, sizeof(seed));
	mbx_proto_put_u32(w, MBX_F_MAX_PROCS, cfg->max_procs);
	explicit_bzero(seed, sizeof(seed));
	if (bundle)
		mbx_proto_put(w, MBX_F_NET_CA, bundle, bundle_len);
	free(bundle);
	rc = mbx__agenthost_setup(sb, &m->host, NULL, 0, deadline, err);
	/* The seed went out: no copy stays in the write buffer. */
	if (w->buf)
		explicit_bzero(w->buf, w->cap);
	if (rc < 0)
		return rc;
	set_vm_layers(sb);
	return MBX_OK;
}

static int microvm_create(mbx_sandbox *sb, mbx_error **err)
{
	uint64_t deadline = mbx__now_us() + BOOT_DEADLINE_US;
	struct microvm_sb *m;
	char sock[64];
	int dirfd = -1, rc;

	rc = check_config(sb->cfg, err);
	if (rc < 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return mbx__error_oom(err);
	mbx__agenthost_init(&m->host);
	m->sd.lockfd = -1;
	m->accel = mbx__vm_accel();
	rc = mbx__vm_assets_find(&m->assets, err);
	if (rc < 0)
		goto fail;
	/* Collects dead sandboxes' directories, QEMU's jails (os sandboxes with
	 * directories of their own) and their cgroups included. */
	rc = mbx__statedir_new_sandbox(&m->sd, sb->id, err);
	if (rc < 0)
		goto fail;
	rc = start_qemu(sb, m, -1, err);
	if (rc < 0)
		goto fail;
	/* Through the directory's descriptor: the host path may be longer
	 * than a socket address can hold. */
	dirfd = open(m->sd.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "open the run directory `%s`", m->sd.dir);
		goto fail;
	}
	snprintf(sock, sizeof(sock), "/proc/self/fd/%d/agent.sock", dirfd);
	rc = connect_agent(m, sock, deadline, err);
	close(dirfd);
	if (rc < 0) {
		mbx__error_wrap(err, "the microVM did not start");
		add_console_tail(m, err);
		goto fail;
	}
	/* The programs' environment names the proxy (HTTP_PROXY...) and the
	 * certificate bundle, exactly as on the os backend. */
	rc = mbx__net_env(sb->cfg, err);
	if (rc == MBX_OK && sb->cfg->network == MBX_NETWORK_ALLOW_DOMAINS)
		rc = start_network(sb, m, deadline, err);
	if (rc < 0)
		goto fail;
	rc = init_guest(sb, m, deadline, err);
	if (rc < 0) {
		add_console_tail(m, err);
		goto fail;
	}
	take_jail_skips(sb, m);
	sb->priv = m;
	return MBX_OK;
fail:
	microvm_cleanup(m);
	return rc;
}

/* ---- dropping and resuming the channel (microvm.h) ---- */

static struct microvm_sb *microvm_of(mbx_sandbox *sb, mbx_error **err)
{
	if (sb == NULL || sb->ops != &mbx__microvm_backend || sb->priv == NULL || sb->destroyed) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "not a live microvm sandbox");
		return NULL;
	}
	return sb->priv;
}

/* Closes the transport, keeping the client's processes: the channel is
 * broken until a reconnect. */
static void close_channel(struct microvm_sb *m)
{
	struct mbx_client *c = &m->host.client;

	if (c->tr.ops != NULL) {
		c->tr.ops->close(&c->tr);
		m->dropped_us = mbx__now_us();
	}
	c->tr.ops = NULL;
	c->fd = -1;
	c->broken = 1;
}

int mbx__microvm_drop_channel(mbx_sandbox *sb, mbx_error **err)
{
	struct microvm_sb *m = microvm_of(sb, err);

	if (m == NULL)
		return MBX_EINVAL;
	close_channel(m);
	return MBX_OK;
}

/*
 * The agent learns of a reset from POLLHUP on its port, which lasts from
 * QEMU's "host closed" to its "host connected" control message. A new
 * connection made at once can end that window before the guest ran: the
 * agent then never saw the old channel go and does not greet the new one.
 * So the host leaves the port closed for a while (RESUME_GAP_US) before it
 * connects, and a connection that stays silent for an attempt is closed
 * again (a longer window) and retried, until the deadline.
 */
#define RESUME_GAP_US 50000u
#define RESUME_ATTEMPT_US 1000000u

int mbx__microvm_reconnect(mbx_sandbox *sb, const char *run_dir, int timeout_ms, mbx_error **err)
{
	struct microvm_sb *m = microvm_of(sb, err);
	uint64_t deadline = mbx__now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
	uint64_t gap = RESUME_GAP_US, attempt = RESUME_ATTEMPT_US;
	int dirfd, rc;

	if (m == NULL)
		return MBX_EINVAL;
	/* QEMU's chardev serves one connection at a time: the old one goes
	 * first, and the agent sees the end of its channel. */
	close_channel(m);
	if (run_dir == NULL)
		run_dir = m->sd.dir;
	dirfd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "open the run directory `%s`", run_dir);
	for (;;) {
		struct mbx_transport t;
		mbx_error *tmp = NULL;
		uint64_t now = mbx__now_us(), until;
		char sock[64];

		if (now < m->dropped_us + gap) {
			uint64_t wait = m->dropped_us + gap - now;
			struct timespec ts = { (time_t)(wait / 1000000u), (long)(wait % 1000000u) * 1000L };

			nanosleep(&ts, NULL);
		}
		snprintf(sock, sizeof(sock), "/proc/self/fd/%d/agent.sock", dirfd);
		rc = connect_socket(m, sock, deadline, &t, &tmp);
		if (rc == MBX_OK) {
			until = mbx__now_us() + attempt;
			rc = mbx__agenthost_reconnect(&m->host, &t, until < deadline ? until : deadline, &tmp);
		}
		if (rc == MBX_OK)
			break;
		/* Silence on a connection: the agent may have missed the reset. */
		if (rc != MBX_ETIMEDOUT || mbx__now_us() >= deadline) {
			mbx__error_move(err, &tmp);
			break;
		}
		mbx_error_free(tmp);
		close_channel(m);
		gap *= 2;
		attempt *= 2;
	}
	close(dirfd);
	if (rc < 0) {
		/* Another session's agent must be free to greet its own host. */
		close_channel(m);
		mbx__error_wrap(err, "reconnect to the guest agent of sandbox %s", sb->id);
	}
	return rc;
}

uint64_t mbx__microvm_session(mbx_sandbox *sb)
{
	struct microvm_sb *m = microvm_of(sb, NULL);

	return m ? m->host.client.session : 0;
}

pid_t mbx__microvm_vmm_pid(mbx_sandbox *sb)
{
	struct microvm_sb *m = microvm_of(sb, NULL);

	return (m && m->jail) ? mbx__vm_jail_pid(m->jail) : -1;
}

const char *mbx__microvm_run_dir(mbx_sandbox *sb)
{
	struct microvm_sb *m = microvm_of(sb, NULL);

	return m ? m->sd.dir : NULL;
}

/* What the host knows of a VM whose channel broke: how QEMU ended, and the
 * end of the guest's console (a kernel panic says why there). */
static void microvm_explain_broken(mbx_sandbox *sb, mbx_error **err)
{
	struct microvm_sb *m = sb->priv;
	int wstatus;

	if (m == NULL)
		return;
	if (m->jail && mbx__vm_jail_exited(m->jail, &wstatus) == 1)
		mbx__error_wrap(err, "QEMU ended (%s %d)", WIFSIGNALED(wstatus) ? "signal" : "exit status",
				WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
	add_console_tail(m, err);
}

/* ---- snapshots (docs/snapshots.md, "microvm") ---- */

/* After QEMU's control socket failed: how QEMU ended (it is given half a
 * second to be reaped) and what it and the guest's console said. */
static void explain_qemu_end(struct microvm_sb *m, mbx_error **err)
{
	int wstatus, ended = 0;

	if (m->jail == NULL)
		return;
	for (int i = 0; i < 50 && !(ended = mbx__vm_jail_exited(m->jail, &wstatus) == 1); i++)
		usleep(10000);
	if (ended)
		mbx__error_wrap(err, "QEMU ended (%s %d): %s", WIFSIGNALED(wstatus) ? "signal" : "exit status",
				WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus), mbx__vm_jail_stderr(m->jail));
	add_console_tail(m, err);
}

static int open_qmp(struct microvm_sb *m, struct mbx_qmp *q, uint64_t deadline, mbx_error **err)
{
	char path[64];
	int dirfd = open(m->sd.dir, O_PATH | O_DIRECTORY | O_CLOEXEC), rc;

	if (dirfd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "open the run directory `%s`", m->sd.dir);
	snprintf(path, sizeof(path), "/proc/self/fd/%d/qmp.sock", dirfd);
	rc = mbx__qmp_open(q, path, deadline, err);
	close(dirfd);
	return rc;
}

/* Waits for QEMU's migration (either way) to end; an error unless it
 * completed. */
static int wait_migration(struct mbx_qmp *q, uint64_t deadline, mbx_error **err)
{
	char reply[2048], status[64];

	for (;;) {
		int rc = mbx__qmp_command(q, "{\"execute\":\"query-migrate\"}", -1, reply, sizeof(reply), deadline, err);

		if (rc < 0)
			return rc;
		if (mbx__qmp_string_field(reply, strlen(reply), "status", status, sizeof(status)) == 0) {
			if (strcmp(status, "completed") == 0)
				return MBX_OK;
			if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
				char desc[256];

				if (mbx__qmp_string_field(reply, strlen(reply), "error-desc", desc, sizeof(desc)) < 0)
					snprintf(desc, sizeof(desc), "no reason given");
				return mbx__error_set(err, MBX_ESYS, 0, "vmm", "QEMU's migration %s: %s", status, desc);
			}
		}
		if (mbx__now_us() >= deadline)
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, "vmm", "QEMU's migration did not end in time");
		usleep(2000);
	}
}

#define CAPS_CMD                                                                                                      \
	"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"x-ignore-shared\"," \
	"\"state\":true}]}}"

/*
 * Starts a migration through a socket pair (not a pipe: a QEMU that dies
 * while the host writes must not raise SIGPIPE in the caller's process):
 * x-ignore-shared on, QEMU's end passed under the name "mbxmig" (getfd,
 * SCM_RIGHTS) and closed here, then "migrate" or "migrate-incoming" with
 * the uri fd:mbxmig. *ours is the host's end.
 */
static int start_migration(struct mbx_qmp *q, int incoming, int *ours, uint64_t deadline, mbx_error **err)
{
	int p[2], give, rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "socketpair");
	give = p[0];
	*ours = p[1];
	rc = mbx__qmp_command(q, CAPS_CMD, -1, NULL, 0, deadline, err);
	if (rc == MBX_OK)
		rc = mbx__qmp_command(q, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"mbxmig\"}}", give, NULL, 0,
				      deadline, err);
	close(give);
	if (rc == MBX_OK)
		rc = mbx__qmp_command(q,
				      incoming ? "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:mbxmig\"}}"
					       : "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:mbxmig\"}}",
				      -1, NULL, 0, deadline, err);
	if (rc < 0) {
		close(*ours);
		*ours = -1;
	}
	return rc;
}

/* The device state of a stopped guest (and its RAM when that is not the
 * shared file) into `stream`, at most `max` bytes. */
static int migrate_out(struct mbx_qmp *q, struct mbx_buf *stream, uint64_t max, uint64_t deadline, mbx_error **err)
{
	int fd, rc = start_migration(q, 0, &fd, deadline, err);

	while (rc == MBX_OK) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint8_t chunk[65536];
		ssize_t n;

		if (mbx__now_us() >= deadline) {
			rc = mbx__error_set(err, MBX_ETIMEDOUT, 0, "vmm", "QEMU did not write the guest's state in time");
			break;
		}
		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "read the guest's state from QEMU");
			break;
		}
		if (n == 0)
			break;
		if (stream->len + (size_t)n > max) {
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, "vmm", "QEMU's state of the guest is over %llu bytes",
					    (unsigned long long)max);
			break;
		}
		if (mbx__buf_append(stream, chunk, (size_t)n) < 0)
			rc = mbx__error_oom(err);
	}
	if (fd >= 0)
		close(fd);
	if (rc == MBX_OK)
		rc = wait_migration(q, deadline, err);
	return rc;
}

/* Feeds a saved state to a QEMU started with -incoming defer. */
static int migrate_in(struct mbx_qmp *q, const uint8_t *stream, size_t len, uint64_t deadline, mbx_error **err)
{
	size_t off = 0;
	int fd, rc = start_migration(q, 1, &fd, deadline, err);

	while (rc == MBX_OK && off < len) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t n;

		if (mbx__now_us() >= deadline) {
			rc = mbx__error_set(err, MBX_ETIMEDOUT, 0, "vmm", "QEMU did not read the guest's state in time");
			break;
		}
		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = send(fd, stream + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, "vmm", "QEMU stopped reading the guest's state");
			break;
		}
		off += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (rc == MBX_OK)
		rc = wait_migration(q, deadline, err);
	return rc;
}

/* A copy of a fresh guest's RAM file into a sealed memfd (holes kept). */
static int copy_ram(struct microvm_sb *m, uint64_t size, int *out, mbx_error **err)
{
	char path[96];
	int src, rc;

	snprintf(path, sizeof(path), "/proc/%d/root" RAM_FILE, (int)mbx__vm_jail_pid(m->jail));
	src = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (src < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "vmm", "open the guest's memory `%s`", path);
	rc = mbx__snapshot_new_memory(size, out, err);
	if (rc == MBX_OK)
		rc = mbx__snapshot_copy_memory(src, *out, size, err);
	if (rc == MBX_OK)
		rc = mbx__snapshot_seal_memory(*out, err);
	close(src);
	if (rc < 0 && *out >= 0) {
		close(*out);
		*out = -1;
	}
	return rc;
}

/*
 * A snapshot of a running guest: the host's channel closes first (the
 * saved agent then waits for a host, and greets whoever connects), QEMU
 * stops, its device state comes through a pipe (x-ignore-shared: a fresh
 * guest's RAM file stays out of it and is copied, holes kept, into a sealed
 * memfd; a restored guest's private RAM goes in the stream), QEMU runs on
 * and the host reconnects to its agent's session.
 */
static int microvm_snapshot(mbx_sandbox *sb, struct mbx_snapshot *snap, mbx_error **err)
{
	struct microvm_sb *m = sb->priv;
	struct mbx_client *c = &m->host.client;
	uint64_t deadline = mbx__now_us() + SNAP_DEADLINE_US, now;
	struct mbx_buf stream = { 0 };
	struct mbx_vmsnap v = { 0 };
	struct mbx_qmp q = { .fd = -1 };
	int rc, stopped = 0, rrc;

	v.memory_mib = (uint32_t)(sb->cfg->memory_bytes >> 20);
	v.proto_version = c->version;
	v.features = c->features;
	v.session = c->session;
	v.next_id = c->next_id;
	v.flags = (m->ram_private ? 0 : MBX_VMSNAP_F_BASE_RAM) | (m->vmnet ? MBX_VMSNAP_F_NET_PORT : 0);
	memcpy(v.assets, m->assets.id, sizeof(v.assets));
	rc = open_qmp(m, &q, deadline, err);
	if (rc < 0)
		return rc;
	close_channel(m);
	/* The network channel too: its streams end, the guest's port waits for
	 * a host (the parent's comes back below, a clone's at its restore). */
	if (m->vmnet) {
		mbx__vmnet_stop(m->vmnet);
		m->vmnet = NULL;
	}
	/* The agent must see its channels go before the guest stops. */
	now = mbx__now_us();
	if (now < m->dropped_us + RESUME_GAP_US)
		usleep((useconds_t)(m->dropped_us + RESUME_GAP_US - now));
	rc = mbx__qmp_command(&q, "{\"execute\":\"stop\"}", -1, NULL, 0, deadline, err);
	if (rc == MBX_OK) {
		stopped = 1;
		rc = migrate_out(&q, &stream, sb->cfg->memory_bytes + (64u << 20), deadline, err);
	}
	if (rc < 0 && stopped)
		explain_qemu_end(m, err);
	if (rc == MBX_OK && !m->ram_private) {
		rc = copy_ram(m, sb->cfg->memory_bytes, &snap->mem_fd, err);
		snap->mem_size = sb->cfg->memory_bytes;
	}
	if (rc == MBX_OK) {
		v.stream = stream.data;
		v.stream_len = stream.len;
		if (mbx__vmsnap_encode(&snap->payload, &v) < 0)
			rc = mbx__error_oom(err);
	}
	mbx__buf_release(&stream);
	if (stopped) {
		mbx_error *tmp = NULL;
		int crc = mbx__qmp_command(&q, "{\"execute\":\"cont\"}", -1, NULL, 0, deadline, &tmp);

		if (crc < 0 && rc == MBX_OK) {
			mbx__error_move(err, &tmp);
			rc = crc;
		}
		mbx_error_free(tmp);
	}
	mbx__qmp_close(&q);
	{
		mbx_error *tmp = NULL;

		rrc = mbx__microvm_reconnect(sb, NULL, (int)(SNAP_DEADLINE_US / 1000u), &tmp);
		if (rrc == MBX_OK && (v.flags & MBX_VMSNAP_F_NET_PORT))
			rrc = connect_vmnet(sb, m, deadline, &tmp);
		if (rrc < 0 && rc == MBX_OK) {
			mbx__error_move(err, &tmp);
			rc = rrc;
		}
		mbx_error_free(tmp);
	}
	if (rc < 0 && snap->mem_fd >= 0) {
		close(snap->mem_fd);
		snap->mem_fd = -1;
	}
	return rc;
}

/* Tells a restored guest it is a clone: new entropy, name, clock, machine
 * id; the snapshot's processes run on detached. */
static int send_identity(mbx_sandbox *sb, struct microvm_sb *m, uint64_t deadline, mbx_error **err)
{
	struct mbx_client *c = &m->host.client;
	uint8_t seed[SEED_BYTES];
	struct mbx_frame f;
	struct timespec ts;
	char name[80];
	uint32_t id = c->next_id++;
	int rc;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "getrandom");
	/* The default name gets the sandbox's id, so that clones differ; a
	 * name the caller chose is kept. */
	if (strcmp(sb->cfg->hostname, MBX_DEFAULT_HOSTNAME) == 0)
		snprintf(name, sizeof(name), "%s-%.8s", MBX_DEFAULT_HOSTNAME, sb->id);
	else
		snprintf(name, sizeof(name), "%s", sb->cfg->hostname);
	clock_gettime(CLOCK_REALTIME, &ts);
	mbx_proto_begin(&c->wb, MBX_MSG_IDENTITY, id);
	mbx_proto_put(&c->wb, MBX_F_SEED, seed, sizeof(seed));
	mbx_proto_put_str(&c->wb, MBX_F_HOSTNAME, name);
	mbx_proto_put_u64(&c->wb, MBX_F_MTIME_NS, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	mbx_proto_end(&c->wb);
	explicit_bzero(seed, sizeof(seed));
	rc = mbx__client_request(c, id, deadline, &f, err);
	if (c->wb.buf)
		explicit_bzero(c->wb.buf, c->wb.cap);
	if (rc == MBX_OK && f.type != MBX_MSG_OK) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the guest agent answered IDENTITY with message type %u", f.type);
	}
	if (rc < 0)
		mbx__error_wrap(err, "give the restored guest a new identity");
	return rc;
}

/*
 * A new sandbox from a snapshot: QEMU starts in a new jail with -incoming
 * defer and guest RAM mapped copy-on-write from the snapshot's sealed
 * memory (every clone shares its pages; an empty one when the stream
 * carries the RAM), takes the device state, runs; the host resumes the
 * saved agent's session and gives the clone its identity.
 */
static int microvm_restore(mbx_sandbox *sb, const uint8_t *payload, size_t len, mbx_error **err)
{
	const struct mbx_snapshot *snap = sb->restoring;
	uint64_t deadline = mbx__now_us() + SNAP_DEADLINE_US;
	struct mbx_qmp q = { .fd = -1 };
	struct microvm_sb *m;
	struct mbx_vmsnap v;
	int mem_fd = -1, rc;

	if (snap == NULL || mbx__vmsnap_parse(payload, len, &v) < 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "restore: not a microVM snapshot");
	rc = check_config(sb->cfg, err);
	if (rc < 0)
		return rc;
	if (!!(v.flags & MBX_VMSNAP_F_NET_PORT) != (sb->cfg->network == MBX_NETWORK_ALLOW_DOMAINS)) {
		mbx__error_set(err, MBX_EINVAL, 0, "network",
			       "the snapshot's guest %s a network channel; a restore's config must %s domains",
			       (v.flags & MBX_VMSNAP_F_NET_PORT) ? "has" : "has no",
			       (v.flags & MBX_VMSNAP_F_NET_PORT) ? "allow" : "not allow");
		mbx__error_suggest(err, "restore with the snapshot's network policy (the allowed domains may differ)");
		return MBX_EINVAL;
	}
	if (((uint64_t)v.memory_mib << 20) != sb->cfg->memory_bytes) {
		mbx__error_set(err, MBX_EINVAL, 0, "limits", "a microVM restored from a snapshot has its memory (%u MiB), not %llu bytes",
			       v.memory_mib, (unsigned long long)sb->cfg->memory_bytes);
		mbx__error_suggest(err, "give the restore the snapshot's memory size");
		return MBX_EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return mbx__error_oom(err);
	mbx__agenthost_init(&m->host);
	m->sd.lockfd = -1;
	m->accel = mbx__vm_accel();
	m->ram_private = 1;
	rc = mbx__vm_assets_find(&m->assets, err);
	/* The saved guest runs its kernel from RAM and reads its root image
	 * from the disk QEMU gives it: other assets would be another disk
	 * under a running kernel. */
	if (rc == MBX_OK && memcmp(m->assets.id, v.assets, sizeof(v.assets)) != 0) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "microvm",
				    "the snapshot's guest was booted from other guest assets (kernel and root image) than `%s`",
				    m->assets.dir);
		mbx__error_suggest(err, "restore it where the assets it was made with are (MIMOBOX_VM_DIR), or make the snapshot again");
	}
	if (rc == MBX_OK)
		rc = mbx__statedir_new_sandbox(&m->sd, sb->id, err);
	if (rc == MBX_OK && (v.flags & MBX_VMSNAP_F_BASE_RAM)) {
		mem_fd = dup(snap->mem_fd);
		if (mem_fd < 0)
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "dup");
	} else if (rc == MBX_OK) {
		rc = mbx__snapshot_new_memory(sb->cfg->memory_bytes, &mem_fd, err);
	}
	if (rc == MBX_OK)
		rc = start_qemu(sb, m, mem_fd, err);
	if (mem_fd >= 0)
		close(mem_fd);
	if (rc == MBX_OK)
		rc = open_qmp(m, &q, deadline, err);
	if (rc == MBX_OK)
		rc = migrate_in(&q, v.stream, (size_t)v.stream_len, deadline, err);
	if (rc == MBX_OK)
		rc = mbx__qmp_command(&q, "{\"execute\":\"cont\"}", -1, NULL, 0, deadline, err);
	mbx__qmp_close(&q);
	if (rc < 0) {
		mbx__error_wrap(err, "QEMU did not take the snapshot");
		explain_qemu_end(m, err);
		goto fail;
	}
	/* The saved agent waits for a host: resume its session. */
	m->host.client.version = v.proto_version;
	m->host.client.features = v.features;
	m->host.client.session = v.session;
	m->host.client.next_id = v.next_id;
	m->dropped_us = 0;
	sb->priv = m;
	rc = mbx__microvm_reconnect(sb, NULL, (int)(SNAP_DEADLINE_US / 1000u), err);
	if (rc == MBX_OK)
		rc = send_identity(sb, m, deadline, err);
	/* The clone's own proxy, under the restore's config (its allow list). */
	if (rc == MBX_OK && sb->cfg->network == MBX_NETWORK_ALLOW_DOMAINS) {
		rc = mbx__net_env(sb->cfg, err);
		if (rc == MBX_OK)
			rc = start_network(sb, m, deadline, err);
	}
	if (rc < 0) {
		sb->priv = NULL;
		add_console_tail(m, err);
		goto fail;
	}
	set_vm_layers(sb);
	take_jail_skips(sb, m);
	return MBX_OK;
fail:
	microvm_cleanup(m);
	return rc;
}

/* A snapshot restored at once: the child shares the parent's memory as it
 * was (a fresh parent's pages; a restored parent's go through the stream). */
static int microvm_fork(mbx_sandbox *sb, mbx_sandbox *child, mbx_error **err)
{
	struct mbx_snapshot tmp = { .mem_fd = -1 };
	int rc = microvm_snapshot(sb, &tmp, err);

	if (rc == MBX_OK) {
		child->restoring = &tmp;
		rc = microvm_restore(child, tmp.payload.data, tmp.payload.len, err);
		child->restoring = NULL;
	}
	if (tmp.mem_fd >= 0)
		close(tmp.mem_fd);
	mbx__buf_release(&tmp.payload);
	return rc;
}

static int microvm_exec(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct microvm_sb *m = sb->priv;

	return mbx__agenthost_exec(sb, &m->host, req, res, err);
}

static int microvm_destroy(mbx_sandbox *sb, mbx_error **err)
{
	microvm_cleanup(sb->priv);
	sb->priv = NULL;
	(void)err;
	return MBX_OK;
}

/* The guest's agent flags an out-of-memory kill in the EXIT it sends (its
 * payload cgroup's memory.events): the count of those so far. */
static uint64_t microvm_oom_kills(mbx_sandbox *sb)
{
	struct microvm_sb *m = sb->priv;

	return m ? m->host.client.oom_exits : 0;
}

static struct mbx_client *microvm_client(mbx_sandbox *sb)
{
	struct microvm_sb *m = sb->priv;

	return m ? mbx__agenthost_client(&m->host) : NULL;
}

const struct mbx_backend_ops mbx__microvm_backend = {
	.name = "microvm",
	.isolation = MBX_ISOLATION_MICROVM,
	.caps = MBX_BACKEND_CAP_EXEC | MBX_BACKEND_CAP_PROCESSES | MBX_BACKEND_CAP_PTY | MBX_BACKEND_CAP_FILES |
		MBX_BACKEND_CAP_STATE | MBX_BACKEND_CAP_OOM_COUNT | MBX_BACKEND_CAP_SNAPSHOT | MBX_BACKEND_CAP_FORK,
	.create = microvm_create,
	.exec = microvm_exec,
	.destroy = microvm_destroy,
	.client = microvm_client,
	.oom_kills = microvm_oom_kills,
	.explain_broken = microvm_explain_broken,
	.snapshot = microvm_snapshot,
	.restore = microvm_restore,
	.fork = microvm_fork,
};
