/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU's jail (see jail.h and docs/microvm.md). The jail is an os-backend
 * sandbox made through the library's own API, so its namespaces, mount
 * view, payload layers, cgroup ladder, parent-death handling and clean-up
 * are exactly those of every os sandbox; QEMU is its one background
 * process. What this file adds: the config (mounts at their host paths, no
 * network, the limits), the checks of the run directory, a pidfd of QEMU's
 * host process (the poll descriptor), its exit status, and removing the
 * sockets a killed QEMU leaves behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"
#include "backend/backend.h"
#include "platform/linux/syscalls.h"

#define LAYER "vm-jail"

/* How long exited() waits for the jail's report of a QEMU whose pidfd
 * already said it ended (the mini-init reaps, then the agent reports). */
#define STATUS_WAIT_MS 5000
/* The tail of QEMU's stderr kept for error messages. */
#define STDERR_KEEP 4096
/* Hostname inside the jail. */
#define JAIL_HOSTNAME "mimobox-vmm"
#define KVM_PATH "/dev/kvm"

struct mbx_vm_jail {
	mbx_sandbox *sb;
	mbx_process *proc;
	char *run_dir;
	pid_t pid;     /* QEMU on the host; -1 when it ended before we saw it */
	int poll_fd;   /* pidfd of QEMU, or the read end of a closed pipe */
	int ended;     /* status known */
	int wstatus;
	char err_tail[STDERR_KEEP + 1];
};

uint32_t mbx__vm_jail_skipped(const struct mbx_vm_jail *j, const char *const **reasons)
{
	if (j == NULL || j->sb == NULL)
		return 0;
	*reasons = j->sb->skip_reason;
	return j->sb->skipped;
}

/* ---- checks ---- */

static int check_abs(const char *what, const char *path, mbx_error **err)
{
	if (path == NULL || path[0] != '/')
		return mbx__error_set(err, MBX_EINVAL, 0, LAYER, "%s `%s` must be an absolute path", what,
				      path ? path : "(null)");
	return MBX_OK;
}

/*
 * The run directory: a real directory (no link) owned by the caller and not
 * writable by others, since QEMU's sockets in it are the VM's control
 * channels. For a root caller the jail sees it through an id-mapped mount
 * (the os backend's user mounts), so QEMU, root of the jail's user
 * namespace, writes as host root there; an unprivileged caller's jail
 * writes as the caller.
 */
static int check_run_dir(const char *dir, mbx_error **err)
{
	struct stat st;
	int rc = check_abs("run directory", dir, err);

	if (rc < 0)
		return rc;
	if (lstat(dir, &st) < 0)
		return mbx__error_set(err, errno == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, errno, LAYER,
				      "run directory `%s`", dir);
	if (!S_ISDIR(st.st_mode))
		return mbx__error_set(err, MBX_ENOTDIR, 0, LAYER, "run directory `%s` is not a directory%s", dir,
				      S_ISLNK(st.st_mode) ? " (a symbolic link: give the real path)" : "");
	if (st.st_uid != geteuid()) {
		mbx__error_set(err, MBX_EPERM, 0, LAYER, "run directory `%s` belongs to uid %u, not to the caller (uid %u)",
			       dir, (unsigned)st.st_uid, (unsigned)geteuid());
		mbx__error_suggest(err, "make a fresh directory of your own (mode 0700) for each VM");
		return MBX_EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		mbx__error_set(err, MBX_EPERM, 0, LAYER, "run directory `%s` is writable by others (mode %04o)", dir,
			       (unsigned)(st.st_mode & 07777));
		mbx__error_suggest(err, "chmod 0700 it: others could replace QEMU's sockets");
		return MBX_EPERM;
	}
	return MBX_OK;
}

/* Whether QEMU's argv asks for KVM: `-accel kvm[,...]` or `-enable-kvm`. */
static int argv_wants_kvm(char *const *argv)
{
	for (size_t i = 1; argv[i]; i++)
		if ((strcmp(argv[i - 1], "-accel") == 0 && strncmp(argv[i], "kvm", 3) == 0 &&
		     (argv[i][3] == '\0' || argv[i][3] == ',')) ||
		    strcmp(argv[i], "-enable-kvm") == 0)
			return 1;
	return 0;
}

static int check_argv(char *const *argv, mbx_error **err)
{
	if (argv == NULL || argv[0] == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, LAYER, "QEMU's argv is empty");
	return check_abs("QEMU binary", argv[0], err);
}

/* KVM asked for: the host must have a /dev/kvm character device to bind
 * into the jail's view. Whether the jail's credentials may open it is
 * checked inside the jail (check_kvm_in_jail). */
static int check_kvm_host(mbx_error **err)
{
	struct stat st;

	if (stat(KVM_PATH, &st) < 0 || !S_ISCHR(st.st_mode)) {
		mbx__error_set(err, MBX_ENOTSUP, errno, LAYER,
			       "QEMU's argv asks for KVM, but this host has no /dev/kvm character device to give its jail");
		mbx__error_suggest(err, "use the TCG accelerator (the library chooses it where KVM is missing)");
		return MBX_ENOTSUP;
	}
	return MBX_OK;
}

/*
 * Opens /dev/kvm read-write inside the jail with QEMU's own credentials and
 * layers (its uid in the jail's user namespace, Landlock, seccomp), through
 * the view's /bin/sh, before QEMU starts. The device's owner and mode are
 * the host's: for a root caller the jail runs as an unmapped uid, so only
 * the device's "others" bits can grant it; for an unprivileged caller the
 * caller's own uid and groups. A jail that cannot
 * open it fails here, naming the device, rather than with QEMU's exit.
 */
static int check_kvm_in_jail(mbx_sandbox *sb, mbx_error **err)
{
	static const char *const probe[] = { "/bin/sh", "-c", "exec 3<>" KVM_PATH, NULL };
	mbx_result *res = NULL;
	mbx_error *e = NULL;
	const uint8_t *out;
	size_t len = 0;
	char why[256] = "";
	struct stat st;
	int rc;

	rc = mbx_sandbox_exec(sb, probe, NULL, &res, &e);
	if (rc == MBX_OK && mbx_result_exit_code(res) == 0 && !mbx_result_signal(res)) {
		mbx_result_free(res);
		return MBX_OK;
	}
	if (rc == MBX_OK) {
		out = mbx_result_stderr(res, &len);
		if (len >= sizeof(why))
			len = sizeof(why) - 1;
		if (out)
			memcpy(why, out, len);
		why[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)why[i] < 0x20)
				why[i] = ' ';
	} else {
		snprintf(why, sizeof(why), "the check could not run: %s", mbx_error_message(e));
	}
	mbx_result_free(res);
	mbx_error_free(e);
	if (stat(KVM_PATH, &st) < 0)
		memset(&st, 0, sizeof(st));
	mbx__error_set(err, MBX_EPERM, 0, LAYER,
		       "QEMU's jail cannot open /dev/kvm read-write (host mode %04o, owner %u:%u; the jail runs as %s): %s",
		       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid,
		       geteuid() == 0 ? "an unmapped uid, so only the mode's \"others\" bits count" : "the caller's uid and groups",
		       why);
	mbx__error_suggest(err, "give /dev/kvm mode 0666 (systemd's default udev rule), or use the TCG accelerator");
	return MBX_EPERM;
}

/*
 * On the rlimit rung (no cgroup for this caller) the memory limit is
 * RLIMIT_DATA, which counts every private writable mapping whether touched
 * or not; TCG's translation buffer is one (1 GiB by default in QEMU 7.2, and
 * mapped before anything else), so the argv must size it: `-accel
 * tcg,tb-size=MIB`, well below the memory limit.
 */
static int check_tcg_rlimit(const mbx_sandbox *sb, char *const *argv, uint64_t memory_bytes, mbx_error **err)
{
	if (strcmp(mbx_sandbox_limits_mechanism(sb), "rlimit") != 0)
		return MBX_OK;
	for (size_t i = 1; argv[i]; i++) {
		const char *tb;

		if (strcmp(argv[i - 1], "-accel") != 0 || strncmp(argv[i], "tcg", 3) != 0)
			continue;
		tb = strstr(argv[i], "tb-size=");
		if (tb == NULL || ((uint64_t)strtoull(tb + 8, NULL, 10) << 20) + MBX_VM_JAIL_TB_HEADROOM > memory_bytes) {
			mbx__error_set(err, MBX_EINVAL, 0, "limits",
				       "QEMU's jail has only rlimits here (no cgroup), and TCG's translation buffer (`%s`) "
				       "would not fit the memory limit of %llu MiB", argv[i],
				       (unsigned long long)(memory_bytes >> 20));
			mbx__error_suggest(err, "pass `-accel tcg,tb-size=%u` (MiB) and a memory limit of guest RAM + %llu MiB",
					   MBX_VM_JAIL_TB_SIZE_MIB, (unsigned long long)(MBX_VM_JAIL_OVERHEAD >> 20));
			return MBX_EINVAL;
		}
	}
	return MBX_OK;
}

/* ---- the sandbox ---- */

static int build_config(const struct mbx_vm_jail_spec *spec, int kvm, mbx_config **out, mbx_error **err)
{
	mbx_config *cfg = NULL;
	int rc;

	rc = mbx_config_new(&cfg, err);
	if (rc < 0)
		return rc;
	/* Untrusted (its Landlock scopes too), with the VMM seccomp program
	 * set below; the os backend named explicitly (untrusted under auto
	 * isolation would mean a VM). QEMU's `-sandbox on` comes on top. */
	if ((rc = mbx_config_set_isolation(cfg, MBX_ISOLATION_OS, err)) < 0 ||
	    (rc = mbx_config_set_trust(cfg, MBX_TRUST_UNTRUSTED, err)) < 0 ||
	    (rc = mbx_config_set_network(cfg, MBX_NETWORK_DENY_ALL, err)) < 0 ||
	    (rc = mbx_config_set_memory_limit(cfg, spec->memory_bytes, err)) < 0 ||
	    /* Room for a RAM file in the jail's /dev/shm; with a cgroup it is
	     * charged to the memory limit as well. */
	    (rc = mbx_config_set_disk_limit(cfg, spec->memory_bytes, err)) < 0 ||
	    (rc = mbx_config_set_cpu_limit(cfg, spec->millicpus, err)) < 0 ||
	    (rc = mbx_config_set_max_processes(cfg, MBX_VM_JAIL_MAX_TASKS, err)) < 0 ||
	    (rc = mbx_config_set_hostname(cfg, JAIL_HOSTNAME, err)) < 0)
		goto fail;
	/* The untrusted program with io_uring refused instead of killing:
	 * QEMU probes io_uring_setup at start and falls back to epoll
	 * (MBX_SECCOMP_VMM, src/backend/linux/seccomp.h). */
	cfg->vmm_seccomp = 1;
	/* KVM: /dev/kvm bound into the view's /dev (mountplan.c), where
	 * Landlock's device rule allows read, write and ioctl. */
	cfg->vmm_kvm = kvm;
	if (spec->cfg) {
		mbx_config_set_allow_degraded(cfg, spec->cfg->allow_degraded);
		/* The jail is the VM's business: its own sandbox's routine lines
		 * (created, limits chosen) would read as a second sandbox of the
		 * caller's; warnings and errors still come through. */
		mbx_config_set_log(cfg, spec->cfg->log_level > MBX_LOG_WARN ? MBX_LOG_WARN : spec->cfg->log_level,
				   spec->cfg->log_fn, spec->cfg->log_userdata);
	}
	for (size_t i = 0; i < spec->nro; i++) {
		rc = check_abs("read-only path", spec->ro_paths[i], err);
		if (rc == MBX_OK)
			rc = mbx_config_add_mount(cfg, spec->ro_paths[i], spec->ro_paths[i], 0, err);
		if (rc < 0)
			goto fail;
	}
	rc = mbx_config_add_mount(cfg, spec->run_dir, spec->run_view ? spec->run_view : spec->run_dir, MBX_MOUNT_RW, err);
	if (rc < 0)
		goto fail;
	*out = cfg;
	return MBX_OK;
fail:
	mbx_config_free(cfg);
	return rc;
}

/* ---- finding QEMU on the host ---- */

/* The pids in /proc/<pid>/task/<pid>/children, up to `max`; -1 on error. */
static int children_of(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[256], *p, *end;
	ssize_t n;
	int fd, count = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; count < max;) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		out[count++] = (pid_t)v;
		p = end;
	}
	return count;
}

/* The parent of `pid` as /proc says, or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	int fd, ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/*
 * QEMU's pidfd. The jail's process tree on the host is agent -> mini-init
 * (PID 1 of QEMU's own pid namespace) -> QEMU. QEMU is the only process
 * the jail starts besides, under KVM, the /dev/kvm check before it, whose
 * mini-init reports only after it killed and reaped everything below it and
 * may still be ending (its namespaces' teardown) when QEMU starts: so
 * QEMU's mini-init is the one child of the agent that has exactly one
 * child, and there must be exactly one such. The pidfd is opened first and
 * the parents checked after, so a pid reused in between cannot be taken
 * for QEMU. Returns the pidfd and sets *pid, or -1 when QEMU (or its
 * mini-init) is already gone; errno ENOSYS when the kernel has no
 * pidfd_open (before Linux 5.3).
 */
static int open_qemu_pidfd(pid_t agent, pid_t *pid)
{
	pid_t inits[4], below[2], init = -1, qemu = -1;
	int fd, n;

	errno = ESRCH;
	if (agent <= 0 || (n = children_of(agent, inits, 4)) < 1)
		return -1;
	for (int i = 0; i < n; i++) {
		if (children_of(inits[i], below, 2) != 1)
			continue;
		if (qemu > 0)
			return -1; /* two candidates: not the tree the jail made */
		init = inits[i];
		qemu = below[0];
	}
	if (qemu <= 0)
		return -1;
	fd = mbx_sys_pidfd_open(qemu, 0);
	if (fd < 0)
		return -1;
	if (parent_of(qemu) != init || parent_of(init) != agent) {
		close(fd);
		return -1;
	}
	*pid = qemu;
	return fd;
}

/* A descriptor that is readable for ever: the read end of a pipe whose
 * write end is closed. For a QEMU that ended before its pidfd was open. */
static int ended_fd(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	close(p[1]);
	return p[0];
}

/* Takes QEMU's final status from the jail's report (waiting up to
 * timeout_ms), keeps the tail of its stderr. */
static void collect_status(struct mbx_vm_jail *j, int timeout_ms)
{
	mbx_result *res = NULL;
	const uint8_t *e;
	size_t len = 0;

	if (j->ended)
		return;
	j->ended = 1;
	j->wstatus = SIGKILL; /* unknown: reads as killed */
	if (mbx_process_wait(j->proc, timeout_ms, &res, NULL) < 0 || res == NULL)
		return;
	if (mbx_result_signal(res))
		j->wstatus = mbx_result_signal(res) & 0x7f;
	else
		j->wstatus = (mbx_result_exit_code(res) & 0xff) << 8;
	e = mbx_result_stderr(res, &len);
	if (e && len) {
		if (len > STDERR_KEEP) {
			e += len - STDERR_KEEP;
			len = STDERR_KEEP;
		}
		memcpy(j->err_tail, e, len);
		j->err_tail[len] = '\0';
		/* One line of text for messages: control bytes become spaces. */
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)j->err_tail[i] < 0x20 || j->err_tail[i] == 0x7f)
				j->err_tail[i] = ' ';
	}
	mbx_result_free(res);
}

/* Removes the unix sockets QEMU left in the run directory (a killed QEMU
 * never unlinks them). Only sockets, only at the top, never following
 * links. */
static void remove_sockets(const char *dir)
{
	struct dirent *d;
	struct stat st;
	int dfd;
	DIR *dp;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	dp = fdopendir(dfd);
	if (dp == NULL) {
		close(dfd);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
			unlinkat(dfd, d->d_name, 0);
	}
	closedir(dp);
}

/* ---- the interface ---- */

int mbx__vm_jail_start(struct mbx_vm_jail **out, const struct mbx_vm_jail_spec *spec, mbx_error **err)
{
	struct mbx_vm_jail *j;
	mbx_spawn_options *opts = NULL;
	mbx_config *cfg = NULL;
	int rc, kvm;

	MBX_CHECK_ARG(out != NULL && spec != NULL, err);
	*out = NULL;
	rc = check_argv(spec->argv, err);
	if (rc < 0)
		return rc;
	kvm = argv_wants_kvm(spec->argv);
	if (kvm && (rc = check_kvm_host(err)) < 0)
		return rc;
	if (spec->memory_bytes < MBX_VM_JAIL_MEMORY_MIN)
		return mbx__error_set(err, MBX_EINVAL, 0, LAYER,
				      "memory for QEMU's jail is %llu bytes; at least %llu MiB is needed (guest RAM and QEMU's own)",
				      (unsigned long long)spec->memory_bytes,
				      (unsigned long long)(MBX_VM_JAIL_MEMORY_MIN >> 20));
	if (spec->nro && spec->ro_paths == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, LAYER, "%zu read-only paths announced but none given", spec->nro);
	rc = check_run_dir(spec->run_dir, err);
	if (rc < 0)
		return rc;

	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return mbx__error_oom(err);
	j->pid = -1;
	j->poll_fd = -1;
	j->run_dir = strdup(spec->run_dir);
	if (j->run_dir == NULL) {
		rc = mbx__error_oom(err);
		goto fail;
	}

	rc = build_config(spec, kvm, &cfg, err);
	if (rc < 0)
		goto fail;
	rc = mbx_sandbox_new(&j->sb, cfg, err);
	mbx_config_free(cfg);
	if (rc < 0) {
		mbx__error_wrap(err, "QEMU's jail");
		goto fail;
	}

	rc = check_tcg_rlimit(j->sb, spec->argv, spec->memory_bytes, err);
	if (rc < 0)
		goto fail;
	if (kvm && (rc = check_kvm_in_jail(j->sb, err)) < 0)
		goto fail;
	rc = mbx_spawn_options_new(&opts, err);
	if (rc < 0)
		goto fail;
	mbx_spawn_options_set_timeout_ms(opts, 0); /* runs until stopped */
	if (spec->pass_fd >= 0)
		mbx__spawn_options_pass_fd(opts, spec->pass_fd);
	rc = mbx_spawn_options_set_workdir(opts, spec->run_view ? spec->run_view : spec->run_dir, err);
	if (rc == MBX_OK)
		rc = mbx_sandbox_spawn(j->sb, (const char *const *)spec->argv, opts, &j->proc, err);
	mbx_spawn_options_free(opts);
	if (rc < 0) {
		mbx__error_wrap(err, "start QEMU (`%s`) in its jail", spec->argv[0]);
		goto fail;
	}

	j->poll_fd = open_qemu_pidfd(mbx__linux_agent_pid(j->sb), &j->pid);
	if (j->poll_fd < 0 && errno == ENOSYS) {
		rc = mbx__error_set(err, MBX_ENOTSUP, ENOSYS, LAYER,
				    "the kernel has no pidfd_open (Linux 5.3): QEMU's end could not be watched");
		goto fail;
	}
	if (j->poll_fd < 0) {
		/* Gone already (a bad argument makes QEMU exit at once), or the
		 * tree is not what the jail made. Either way it must end now. */
		mbx_process_kill(j->proc, NULL);
		collect_status(j, STATUS_WAIT_MS);
		j->poll_fd = ended_fd();
		if (j->poll_fd < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, LAYER, "pipe");
			goto fail;
		}
	}
	*out = j;
	return MBX_OK;
fail:
	mbx__vm_jail_stop(j);
	return rc;
}

int mbx__vm_jail_poll_fd(struct mbx_vm_jail *j)
{
	return j ? j->poll_fd : -1;
}

int mbx__vm_jail_exited(struct mbx_vm_jail *j, int *wstatus)
{
	struct pollfd p;

	if (j == NULL)
		return 1;
	if (!j->ended) {
		p.fd = j->poll_fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
			return 0;
		collect_status(j, STATUS_WAIT_MS);
	}
	if (wstatus)
		*wstatus = j->wstatus;
	return 1;
}

const char *mbx__vm_jail_stderr(const struct mbx_vm_jail *j)
{
	return j && j->ended ? j->err_tail : "";
}

pid_t mbx__vm_jail_pid(const struct mbx_vm_jail *j)
{
	return j ? j->pid : -1;
}

void mbx__vm_jail_stop(struct mbx_vm_jail *j)
{
	if (j == NULL)
		return;
	/* SIGKILL through the pidfd first: it cannot hit another process, and
	 * QEMU is gone before the jail's tear-down begins. */
	if (j->poll_fd >= 0 && j->pid > 0 && !j->ended)
		mbx_sys_pidfd_send_signal(j->poll_fd, SIGKILL, NULL, 0);
	mbx_process_free(j->proc);
	/* Destroying the sandbox kills its agent and so every process of its
	 * pid namespace, removes its cgroups and its state directory. */
	mbx_sandbox_free(j->sb);
	if (j->poll_fd >= 0)
		close(j->poll_fd);
	if (j->run_dir)
		remove_sockets(j->run_dir);
	free(j->run_dir);
	free(j);
}
