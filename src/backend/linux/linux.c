/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The os backend: a sandbox is the agent running as PID 1 of fresh
 * namespaces, with the sandbox's own root (mountplan.c), limits from the
 * cgroup ladder (cgroup.c) and payload layers (seccomp.c, Landlock in the
 * agent). State on the host: one directory per sandbox holding its
 * /workspace, and possibly cgroup directories; destroy removes both. This
 * file is the launcher; talking to the agent once it runs is
 * src/backend/agenthost.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "backend/agenthost.h"
#include "cgroup.h"
#include "etcfiles.h"
#include "memguard.h"
#include "mountplan.h"
#include "netns.h"
#include "seccomp.h"
#include "spawn.h"
#include "platform/linux/safeopen.h"
#include "platform/linux/syscalls.h"
#include "statedir.h"
#include "snapshot.h"

/* Host uids that become root inside sandboxes of a root caller: a block no
 * distribution hands to users, so sandbox files and processes belong to
 * nobody real on the host, and each sandbox gets its own. */
#define MAPPED_UID_BASE 0x40000000u
#define MAPPED_UID_SPAN 0x01000000u

/* Start-up budget: clone, mounts and the first answer of the agent. */
#define CREATE_DEADLINE_US (15u * 1000000u)

/*
 * Phase times of creation and destruction for bench/bench-os --trace: with
 * a log function at MBX_LOG_DEBUG each phase is logged as
 * "phase NAME NS ns", the agent's own steps (MBX_INIT_TRACE) as
 * "phase new.agent.STEP NS ns". Nothing is timed otherwise.
 */
struct phase_trace {
	const mbx_config *cfg; /* NULL: off */
	uint64_t last;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void phase_start(struct phase_trace *t, const mbx_config *cfg)
{
	t->cfg = cfg != NULL && cfg->log_fn != NULL && cfg->log_level >= MBX_LOG_DEBUG ? cfg : NULL;
	if (t->cfg)
		t->last = mono_ns();
}

/* Logs the time since the last mark as phase `name`; the logging itself is
 * not counted. */
static void phase(struct phase_trace *t, const char *name)
{
	if (t->cfg == NULL)
		return;
	mbx__log(t->cfg, MBX_LOG_DEBUG, "phase %s %llu ns", name, (unsigned long long)(mono_ns() - t->last));
	t->last = mono_ns();
}

static void phase_agent(struct phase_trace *t, const struct mbx_ready_info *r)
{
	static const char *const steps[MBX_TRACE_MOP] = {
		[MBX_TRACE_PARSE] = "parse", [MBX_TRACE_HOSTNAME] = "hostname", [MBX_TRACE_LOOPBACK] = "loopback",
		[MBX_TRACE_SCRATCH] = "scratch-root", [MBX_TRACE_SYSV] = "sysv-ipc", [MBX_TRACE_CLOSE_FDS] = "close-fds",
		[MBX_TRACE_NEW_ROOT] = "new-root", [MBX_TRACE_LANDLOCK] = "landlock", [MBX_TRACE_SECCOMP] = "seccomp",
		[MBX_TRACE_TOTAL] = "total", [MBX_TRACE_NETNS] = "netns-join",
	};
	static const char *const mops[] = {
		[MBX_MOP_BIND] = "bind", [MBX_MOP_TMPFS] = "tmpfs", [MBX_MOP_PROC] = "proc",
		[MBX_MOP_DEVPTS] = "devpts", [MBX_MOP_SYMLINK] = "symlink", [MBX_MOP_WRITE] = "write",
		[MBX_MOP_MKDIR] = "mkdir", [MBX_MOP_REMOUNT_RO] = "remount-ro", [MBX_MOP_COPY] = "copy",
		[MBX_MOP_ATTACH] = "attach", [MBX_MOP_STORAGE] = "storage",
	};

	if (t->cfg == NULL)
		return;
	for (unsigned int i = 1; i < MBX_TRACE_MAX; i++) {
		const char *name = i < MBX_TRACE_MOP ? steps[i] :
				   i - MBX_TRACE_MOP < sizeof(mops) / sizeof(mops[0]) ? mops[i - MBX_TRACE_MOP] : NULL;

		if (r->trace_ns[i] == 0)
			continue;
		mbx__log(t->cfg, MBX_LOG_DEBUG, "phase new.agent.%s%s%s %llu ns", i < MBX_TRACE_MOP ? "" : "mount-",
			 name ? name : "step", name ? "" : "?", (unsigned long long)r->trace_ns[i]);
	}
	t->last = mono_ns();
}

struct linux_sb {
	struct mbx_agenthost host; /* the agent on a socketpair */
	pid_t pid;
	int pidfd;
	struct mbx_statedir sd; /* host directory of the sandbox, locked */
	struct mbx_cgroup cg;
	struct mbx_linux_net net; /* the proxy or pasta (netns.c) */
	uid_t uid;                /* the host identity of sandbox root */
	gid_t gid;
	struct phase_trace trace;
	uint64_t oom_base;        /* the cgroup's OOM kills at the last reset */
};

/* Records the sandbox's cgroup directories with its lock (statedir.h) so a
 * later process can remove them if this one dies without destroying it. */
static int record_cgroups(const struct linux_sb *l)
{
	char text[4 * 4200] = "";
	size_t off = 0;

	if (l->cg.v2_dir)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "v2 %s\n", l->cg.v2_dir);
	for (int i = 0; i < 3 && off < sizeof(text); i++)
		if (l->cg.v1_dir[i])
			off += (size_t)snprintf(text + off, sizeof(text) - off, "v1 %s\n", l->cg.v1_dir[i]);
	if (off >= sizeof(text)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mbx__statedir_record(&l->sd, text);
}

/* Removes the cgroups recorded for a dead sandbox (see record_cgroups). */
void mbx__linux_remove_recorded_cgroups(const char *dir, const char *record)
{
	struct mbx_cgroup cg = { 0 };
	char line[4096];
	int n1 = 0;
	FILE *f;

	/* pasta outlives a sandbox whose owner died (it daemonized). */
	if (dir)
		mbx__pasta_collect(dir);
	f = fopen(record, "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		/* Only directories the library creates: below a cgroup mount and
		 * named after the sandbox. */
		if (strncmp(line + 3, "/sys/fs/cgroup/", 15) != 0 || strstr(line, "/../"))
			continue;
		if (strncmp(line, "v2 ", 3) == 0 && cg.v2_dir == NULL)
			cg.v2_dir = strdup(line + 3);
		else if (strncmp(line, "v1 ", 3) == 0 && n1 < 3)
			cg.v1_dir[n1++] = strdup(line + 3);
	}
	fclose(f);
	cg.mech = cg.v2_dir ? MBX_LIMITS_CGROUP_V2 : n1 ? MBX_LIMITS_CGROUP_V1 : MBX_LIMITS_RLIMIT;
	mbx__cgroup_destroy(&cg);
}

static void linux_cleanup(struct linux_sb *l)
{
	struct phase_trace *t;

	if (l == NULL)
		return;
	t = &l->trace;
	if (t->cfg)
		t->last = mono_ns();
	mbx__linux_net_stop(&l->net);
	phase(t, "free.net");
	mbx__agenthost_shutdown(&l->host);
	phase(t, "free.shutdown");
	mbx__linux_kill_agent(l->pid, l->pidfd);
	if (l->pidfd >= 0)
		close(l->pidfd);
	l->pid = -1;
	l->pidfd = -1;
	phase(t, "free.kill");
	mbx__agenthost_release(&l->host);
	mbx__cgroup_destroy(&l->cg);
	phase(t, "free.cgroup");
	mbx__statedir_release(&l->sd);
	phase(t, "free.statedir");
	free(l);
}

/* What the rlimit rung leaves unbounded (mbx_sandbox_limits_partial()). */
#define RLIMIT_PARTIAL \
	"no cgroup here: the memory limit holds per process (RLIMIT_DATA), not for the sandbox as a whole; " \
	"files in /workspace, /tmp and /dev/shm together and SysV IPC (shared memory, message queues, " \
	"semaphores) are each capped at it, memfd_create and shared anonymous mappings are denied; " \
	"the sum over processes and kernel memory (pipes, sockets, page tables) are not bounded"

/*
 * Size of the sandbox's writable storage (a tmpfs: RAM). With a cgroup its
 * pages are charged to the sandbox's memory limit, so the disk limit alone
 * sizes it; on the rlimit rung nothing charges them, so it is capped at the
 * memory limit too.
 */
static uint64_t storage_bytes(const mbx_config *cfg, const struct mbx_cgroup *cg)
{
	if (cg->mech == MBX_LIMITS_RLIMIT && cfg->memory_bytes < cfg->disk_bytes)
		return cfg->memory_bytes;
	return cfg->disk_bytes;
}

/* Prepares the host side: the state directory and the cgroup. */
static int prepare_host(mbx_sandbox *sb, struct linux_sb *l, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	struct mbx_limits lim = { cfg->memory_bytes, cfg->max_procs, cfg->millicpus };
	char *why = NULL;
	int rc;

	/* Host files (the proxy's CA bundle, pasta's pid file) need a
	 * directory; without them a lock file is all (statedir.h). */
	if (mbx__linux_net_needs_statedir(cfg))
		rc = mbx__statedir_new_sandbox(&l->sd, sb->id, err);
	else
		rc = mbx__statedir_new_lock(&l->sd, sb->id, err);
	if (rc < 0)
		return rc;
	phase(&l->trace, "new.statedir");

	rc = mbx__cgroup_create(&l->cg, sb->id, &lim, &why, err);
	if (rc < 0) {
		free(why);
		return rc;
	}
	if (why)
		mbx__log(cfg, MBX_LOG_INFO, "limits through %s: %s", mbx__limits_mech_name(l->cg.mech), why);
	if (record_cgroups(l) < 0) {
		free(why);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "record the cgroups of `%s`",
				      l->sd.dir ? l->sd.dir : l->sd.lockfile);
	}
	free(why);
	phase(&l->trace, "new.cgroup");
	sb->limits_mech = mbx__limits_mech_name(l->cg.mech);
	if (l->cg.mech == MBX_LIMITS_RLIMIT)
		sb->limits_partial = RLIMIT_PARTIAL;
	if (l->cg.mech == MBX_LIMITS_RLIMIT && cfg->millicpus) {
		if (!cfg->allow_degraded) {
			mbx__error_set(err, MBX_ENOTSUP, 0, "limits",
				       "a CPU quota needs a cgroup with the cpu controller, and none is available to this user here");
			mbx__error_suggest(err, "drop the CPU limit, run where cgroups are delegated (see `mimobox doctor`), or allow degradation");
			return MBX_ENOTSUP;
		}
		sb->skipped |= MBX_LAYER_LIMITS;
		sb->skip_reason[mbx__layer_index(MBX_LAYER_LIMITS)] =
			"CPU quota: no cgroup with the cpu controller is available (limits fell back to rlimits)";
	}
	return MBX_OK;
}

/*
 * What the agent needs from the sandbox's state directory, handed over as
 * descriptors so the directory stays private to the caller (0700): the
 * agent runs as the sandbox's host identity, which for a root caller is an
 * unprivileged uid that cannot walk root's tree. Files the plan copies from
 * the state directory (the CA bundle) go as open read-only files. (The
 * workspace is not on the host: it lives in the sandbox's storage tmpfs.)
 * Appends to fds[*nfds].
 */
static int pass_state_files(const struct linux_sb *l, struct mbx_mountplan *plan, int *fds, size_t *nfds,
			    mbx_error **err)
{
	size_t dlen;

	if (l->sd.dir == NULL)
		return MBX_OK;
	dlen = strlen(l->sd.dir);
	for (size_t i = 0; i < plan->n; i++) {
		struct mbx_plan_entry *e = &plan->e[i];
		int fd;

		if (e->op != MBX_MOP_COPY || e->src == NULL || strncmp(e->src, l->sd.dir, dlen) != 0 ||
		    e->src[dlen] != '/')
			continue;
		if (*nfds >= MBX_PROTO_MAX_FDS)
			return mbx__error_set(err, MBX_EINVAL, 0, NULL, "more than %d mounts", MBX_PROTO_MAX_FDS);
		fd = open(e->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "open `%s`", e->src);
		e->fd_index = (int)*nfds;
		fds[(*nfds)++] = fd;
	}
	return MBX_OK;
}

/*
 * Opens the source of a user mount again, without following symbolic links
 * (src/platform/linux/safeopen.h), and checks it is still what was
 * configured: the same device and inode, a directory or not as planned. A
 * sandbox with write access to a parent directory could have swapped a
 * component for a link since; that fails here, closed. Returns an O_PATH
 * descriptor or an error naming the source.
 */
static int open_user_source(const struct mbx_plan_entry *e, mbx_error **err)
{
	struct stat st;
	int fd, rc;

	fd = mbx_open_nofollow(AT_FDCWD, e->src, 0);
	if (fd < 0) {
		int e2 = errno;

		rc = mbx__error_set(err, e2 == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, e2, "mount-namespace",
				    e2 == ELOOP ? "mount source `%s` now goes through a symbolic link; mount sources are never followed through links"
						: "open mount source `%s`", e->src);
		if (e2 == ELOOP || e2 == ENOENT)
			mbx__error_suggest(err, "something replaced a part of the path since the mount was configured: check who can write its parent directories");
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, "mount-namespace", "stat mount source `%s`", e->src);
		close(fd);
		return rc;
	}
	if ((e->dev != 0 || e->ino != 0) && (st.st_dev != e->dev || st.st_ino != e->ino)) {
		close(fd);
		mbx__error_set(err, MBX_EINVAL, ESTALE, "mount-namespace",
			       "mount source `%s` is no longer the file or directory that was configured (it was replaced)", e->src);
		mbx__error_suggest(err, "configure the mount again if the new one is meant; check who can write its parent directories");
		return MBX_EINVAL;
	}
	if (!S_ISDIR(st.st_mode) != !!(e->flags & MBX_MF_FILE)) {
		close(fd);
		return mbx__error_set(err, MBX_EINVAL, 0, "mount-namespace",
				      "mount source `%s` changed between a directory and a file while the sandbox was created", e->src);
	}
	return fd;
}

/*
 * Prepares the caller's mounts on the host. Each source is opened once,
 * without following links (open_user_source), and only that descriptor is
 * used from then on; the descriptors go to the agent with INIT.
 *
 * A root caller: sandbox root is an unprivileged host uid, so a plain bind
 * of the caller's directory would be read-only to it at best. The tree is
 * cloned from the descriptor (open_tree) and id-mapped through the sandbox's
 * user namespace: files owned by host root appear owned by sandbox root, and
 * files the sandbox creates land on the host owned by root, as they would
 * for a root caller without a sandbox. Only the trees the caller named are
 * mapped. File systems without id-mapping support keep the unmapped clone
 * (logged). The agent attaches the clones (MBX_MOP_ATTACH).
 *
 * Other callers cannot clone the host's mounts: the agent binds the source
 * inside its own mount namespace, opening it again the same way, and checks
 * against the descriptor passed here that it got the same file.
 */
static int prepare_user_mounts(const mbx_sandbox *sb, pid_t agent, int privileged, struct mbx_mountplan *plan,
			       int *fds, size_t *nfds, mbx_error **err)
{
	char path[64];
	int userns = -1, rc = MBX_OK;

	if (privileged) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)agent);
		userns = open(path, O_RDONLY | O_CLOEXEC);
		if (userns < 0)
			return mbx__error_set(err, MBX_ESYS, errno, "user-namespace", "open `%s`", path);
	}
	for (size_t i = 0; i < plan->n; i++) {
		struct mbx_plan_entry *e = &plan->e[i];
		struct mbx_mount_attr attr = { 0 };
		unsigned int rec = (e->flags & MBX_MF_REC) ? AT_RECURSIVE : 0;
		int src, fd;

		if (!(e->flags & MBX_MF_USER) || e->op != MBX_MOP_BIND)
			continue;
		if (*nfds >= MBX_PROTO_MAX_FDS) {
			rc = mbx__error_set(err, MBX_EINVAL, 0, NULL, "more than %d mounts", MBX_PROTO_MAX_FDS);
			break;
		}
		src = open_user_source(e, err);
		if (src < 0) {
			rc = src;
			break;
		}
		fd = -1;
		if (privileged) {
			fd = mbx_sys_open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
			if (fd < 0 && errno != ENOSYS) {
				rc = mbx__error_set(err, MBX_ESYS, errno, "mount-namespace", "clone mount source `%s`", e->src);
				close(src);
				break;
			}
		}
		if (fd >= 0) {
			attr.attr_set = MOUNT_ATTR_IDMAP | ((e->flags & MBX_MF_RO) ? MOUNT_ATTR_RDONLY : 0);
			attr.userns_fd = (uint64_t)userns;
			if (mbx_sys_mount_setattr(fd, "", AT_EMPTY_PATH | rec, &attr) < 0) {
				int e2 = errno;

				mbx__log(sb->cfg, MBX_LOG_WARN, "mount `%s`: no id-mapping here (%s); the sandbox sees it with its unprivileged host identity",
					 e->src, strerror(e2));
				attr.attr_set = MOUNT_ATTR_RDONLY;
				attr.userns_fd = 0;
				if (e2 == ENOSYS) {
					/* No mount_setattr (before 5.12): the agent binds. */
					close(fd);
					fd = -1;
				} else if ((e->flags & MBX_MF_RO) && mbx_sys_mount_setattr(fd, "", AT_EMPTY_PATH | rec, &attr) < 0) {
					rc = mbx__error_set(err, MBX_ESYS, errno, "mount-namespace", "make mount `%s` read-only", e->src);
					close(fd);
					close(src);
					break;
				}
			}
		}
		if (fd < 0) {
			/* The agent binds it and checks it against `src`. */
			e->fd_index = (int)*nfds;
			fds[(*nfds)++] = src;
			continue;
		}
		close(src);
		e->op = MBX_MOP_ATTACH;
		e->fd_index = (int)*nfds;
		fds[(*nfds)++] = fd;
	}
	if (userns >= 0)
		close(userns);
	return rc;
}

struct plan_args {
	mbx_sandbox *sb;
	struct linux_sb *l;
	struct mbx_mountplan *plan;
	int etc_fd; /* the /etc memfd (etcfiles.h), -1 */
};

/* The host's part of the file-system plan (mountplan.c) and of the network
 * (netns.c); run while the agent starts (mbx_spawn.meanwhile). */
static int build_plan(void *arg, mbx_error **err)
{
	struct plan_args *a = arg;
	int rc;

	phase(&a->l->trace, "new.clone");
	rc = mbx__mountplan_build(a->plan, a->sb->cfg, storage_bytes(a->sb->cfg, &a->l->cg), "", err);
	if (rc == MBX_OK)
		a->etc_fd = mbx__etcfiles_apply(a->plan);
	phase(&a->l->trace, "new.plan");
	if (rc == MBX_OK)
		rc = mbx__linux_net_prepare(a->sb, a->l->sd.dir, a->plan, err);
	phase(&a->l->trace, "new.net-prepare");
	return rc;
}

/* Builds an os sandbox; `same_as` (NULL: a new identity) gives the host
 * identity of its root (a copy-on-write fork shares its parent's). */
static int create_as(mbx_sandbox *sb, const struct linux_sb *same_as, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	int privileged = geteuid() == 0;
	struct mbx_mountplan plan = { 0 };
	struct mbx_transport chan;
	struct mbx_wbuf *w;
	struct mbx_spawn sp = { 0 };
	struct plan_args pa = { .etc_fd = -1 };
	int mount_fds[MBX_PROTO_MAX_FDS];
	size_t nmount_fds = 0;
	struct linux_sb *l;
	uint64_t deadline = mbx__now_us() + CREATE_DEADLINE_US;
	uint32_t r32 = 0;
	uid_t uid;
	gid_t gid;
	int rc;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return mbx__error_oom(err);
	l->net = (struct mbx_linux_net)MBX_LINUX_NET_INIT;
	l->pid = -1;
	l->pidfd = -1;
	l->sd.lockfd = -1;
	mbx__agenthost_init(&l->host);
	phase_start(&l->trace, cfg);

	if (same_as != NULL) {
		uid = same_as->uid;
		gid = same_as->gid;
	} else if (privileged) {
		if (getrandom(&r32, sizeof(r32), 0) != sizeof(r32)) {
			free(l);
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "getrandom");
		}
		uid = (uid_t)(MAPPED_UID_BASE + r32 % MAPPED_UID_SPAN);
		gid = (gid_t)uid;
	} else {
		uid = geteuid();
		gid = getegid();
	}

	rc = prepare_host(sb, l, err);
	if (rc < 0)
		goto fail;

	l->uid = uid;
	l->gid = gid;
	sp.map_uid = uid;
	sp.map_gid = gid;
	sp.privileged = privileged;
	sp.cg = &l->cg;
	/* The plan does not depend on the agent: built while it starts up. */
	pa.sb = sb;
	pa.l = l;
	pa.plan = &plan;
	sp.meanwhile = build_plan;
	sp.meanwhile_arg = &pa;
	rc = mbx__linux_spawn_agent(&sp, err);
	if (rc < 0)
		goto fail;
	l->pid = sp.pid;
	l->pidfd = sp.pidfd;
	phase(&l->trace, "new.spawn");
	mbx__transport_socket(&chan, sp.chan);
	rc = mbx__agenthost_attach(&l->host, &chan, deadline, err);
	if (rc < 0)
		goto fail;
	phase(&l->trace, "new.hello");
	if (pa.etc_fd >= 0) {
		for (size_t i = 0; i < plan.n; i++)
			if (plan.e[i].in_blob)
				plan.e[i].fd_index = (int)nmount_fds;
		mount_fds[nmount_fds++] = pa.etc_fd;
		pa.etc_fd = -1;
	}
	rc = pass_state_files(l, &plan, mount_fds, &nmount_fds, err);
	if (rc < 0)
		goto fail;
	if (cfg->nmounts) {
		rc = prepare_user_mounts(sb, l->pid, privileged, &plan, mount_fds, &nmount_fds, err);
		if (rc < 0)
			goto fail;
	}
	phase(&l->trace, "new.pass-fds");
	rc = mbx__agenthost_init_begin(&l->host, cfg,
				       MBX_INIT_SETUP_ROOT | MBX_INIT_LOOPBACK | (l->trace.cfg ? MBX_INIT_TRACE : 0), err);
	if (rc < 0)
		goto fail;
	w = &l->host.client.wb;
	if (l->cg.mech == MBX_LIMITS_RLIMIT) {
		const uint8_t *guard;
		size_t guard_len;

		/* RLIMIT_DATA rather than RLIMIT_AS: runtimes that reserve large
		 * address ranges without using them (V8, Go) still start. What
		 * RLIMIT_DATA does not count is closed or capped: shmem objects
		 * (memguard.h), SysV IPC (MBX_F_SHM_LIMIT), files (the storage
		 * size, storage_bytes()). */
		mbx__agenthost_put_rlimit(w, RLIMIT_DATA, cfg->memory_bytes);
		/* RLIMIT_NPROC counts every task of the user, in every sandbox
		 * and outside them: QEMU's jail (a handful of threads per VM,
		 * one more for each migration) keeps the caller's own limit, or
		 * a user with a few VMs and a busy session could not start a
		 * thread in any of them (docs/microvm.md, "The jail"). */
		if (!cfg->vmm_seccomp)
			mbx__agenthost_put_rlimit(w, RLIMIT_NPROC, cfg->max_procs);
		mbx__memguard_filter(&guard, &guard_len);
		mbx_proto_put(w, MBX_F_SECCOMP_EXTRA, guard, guard_len);
		mbx_proto_put_u64(w, MBX_F_SHM_LIMIT, cfg->memory_bytes);
	}
	mbx__mountplan_encode(&plan, w);
	rc = mbx__agenthost_setup(sb, &l->host, mount_fds, nmount_fds, deadline, err);
	if (rc < 0)
		goto fail;
	phase(&l->trace, "new.init");
	phase_agent(&l->trace, &l->host.ready);
	for (size_t i = 0; i < nmount_fds; i++)
		close(mount_fds[i]);
	nmount_fds = 0;
	rc = mbx__linux_net_start(&l->net, sb, l->pid, l->sd.dir, err);
	if (rc < 0)
		goto fail;
	phase(&l->trace, "new.net-start");

	/* The agent's layers are on sb (mbx__agenthost_setup); these are the launcher's. */
	sb->layers |= MBX_LAYER_USER_NS | MBX_LAYER_PID_NS | MBX_LAYER_MOUNT_NS | MBX_LAYER_NET_NS | MBX_LAYER_IPC_NS |
		      MBX_LAYER_UTS_NS | MBX_LAYER_CGROUP_NS;
	if (!(sb->skipped & MBX_LAYER_LIMITS))
		sb->layers |= MBX_LAYER_LIMITS;
	sb->priv = l;
	mbx__mountplan_release(&plan);
	return MBX_OK;
fail:
	for (size_t i = 0; i < nmount_fds; i++)
		close(mount_fds[i]);
	if (pa.etc_fd >= 0)
		close(pa.etc_fd);
	mbx__mountplan_release(&plan);
	linux_cleanup(l);
	return rc;
}

static int linux_create(mbx_sandbox *sb, mbx_error **err)
{
	return create_as(sb, NULL, err);
}

static int linux_exec(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct linux_sb *l = sb->priv;
	uint64_t ooms = mbx__cgroup_oom_kills(&l->cg);
	/* A broken channel destroys the sandbox, l with it. */
	int rc = mbx__agenthost_exec(sb, &l->host, req, res, err);

	if (rc == MBX_OK && res->signal == SIGKILL && mbx__cgroup_oom_kills(&l->cg) > ooms)
		res->oom_killed = 1;
	return rc;
}

static uint64_t linux_oom_kills(mbx_sandbox *sb)
{
	struct linux_sb *l = sb->priv;

	uint64_t n = l ? mbx__cgroup_oom_kills(&l->cg) : 0;

	return l && n >= l->oom_base ? n - l->oom_base : 0;
}

static int linux_destroy(mbx_sandbox *sb, mbx_error **err)
{
	linux_cleanup(sb->priv);
	sb->priv = NULL;
	(void)err;
	return MBX_OK;
}

pid_t mbx__linux_agent_pid(mbx_sandbox *sb)
{
	struct linux_sb *l = sb && sb->ops == &mbx__linux_backend && !sb->destroyed ? sb->priv : NULL;

	return l ? l->pid : -1;
}

static struct mbx_client *linux_client(mbx_sandbox *sb)
{
	struct linux_sb *l = sb->priv;

	return l ? mbx__agenthost_client(&l->host) : NULL;
}

/*
 * Snapshots of the os backend: the files of the writable storage
 * (/workspace, /tmp, /dev/shm), read and written through the agent's file
 * service like any file call (src/core/snapfiles.c). Processes are not
 * saved.
 */
static int linux_snapshot(mbx_sandbox *sb, struct mbx_snapshot *snap, mbx_error **err)
{
	return mbx__snapfiles_capture(sb, 0, &snap->payload, err);
}

/* Fills a sandbox just made with the files of a payload; on failure the
 * sandbox is destroyed. */
static int apply_files(mbx_sandbox *sb, const uint8_t *payload, size_t len, mbx_error **err)
{
	int rc = mbx__snapfiles_apply(sb, payload, len, err);

	if (rc < 0 && !sb->destroyed) {
		sb->destroyed = 1;
		linux_destroy(sb, NULL);
	}
	return rc;
}

static int linux_restore(mbx_sandbox *sb, const uint8_t *payload, size_t len, mbx_error **err)
{
	int rc = linux_create(sb, err);

	return rc < 0 ? rc : apply_files(sb, payload, len, err);
}

/* The copying fork: the parent's files through its agent into the child's. */
static int fork_copy(mbx_sandbox *sb, mbx_sandbox *child, int created, mbx_error **err)
{
	struct mbx_buf payload = { 0 };
	int rc = mbx__snapfiles_capture(sb, 0, &payload, err);

	if (rc == MBX_OK)
		rc = created ? apply_files(child, payload.data, payload.len, err)
			     : linux_restore(child, payload.data, payload.len, err);
	else if (created && !child->destroyed) {
		child->destroyed = 1;
		linux_destroy(child, NULL);
	}
	mbx__buf_release(&payload);
	return rc;
}

#define LAYERS_DEADLINE_US (10u * 1000000u)

/*
 * One LAYERS request (src/agent/layers.c) with `sock` passed along. Returns
 * MBX_OK, 1 when the agent cannot share layers now (MBX_ENOTSUP: processes
 * running, a file open for writing, too many layers, a kernel without the
 * calls; logged, *err untouched: the caller copies), or an error.
 */
static int layers_request(mbx_sandbox *sb, uint32_t op, int sock, mbx_error **err)
{
	struct linux_sb *l = sb->priv;
	struct mbx_client *c = mbx__agenthost_client(&l->host);
	mbx_error *e = NULL;
	struct mbx_frame f;
	uint32_t id = c->next_id++;
	int rc;

	mbx_proto_begin(&c->wb, MBX_MSG_LAYERS, id);
	mbx_proto_put_u32(&c->wb, MBX_F_OP, op);
	mbx_proto_put_u32(&c->wb, MBX_F_FD, 0);
	mbx_proto_end(&c->wb);
	rc = mbx__client_request_fds(c, &sock, 1, id, mbx__now_us() + LAYERS_DEADLINE_US, &f, &e);
	if (rc == MBX_OK && f.type != MBX_MSG_OK) {
		c->broken = 1;
		rc = mbx__error_set(&e, MBX_EPROTO, 0, NULL, "the sandbox agent answered LAYERS with message type %u", f.type);
	}
	if (rc == MBX_ENOTSUP && !c->broken) {
		mbx__log(sb->cfg, MBX_LOG_INFO, "sandbox %s: fork copies the files: %s", sb->id, mbx_error_message(e));
		mbx_error_free(e);
		return 1;
	}
	mbx__error_move(err, &e);
	return rc;
}

/*
 * A fork shares the parent's storage copy-on-write when it can: the parent's
 * agent freezes its storage into a read-only layer under a fresh overlay and
 * sends its layers straight to the child's agent, which stacks them below a
 * fresh upper of its own (src/agent/layers.c, docs/snapshots.md). The child
 * gets the parent's host identity: the frozen files keep their owners, which
 * must mean the same users in both. When layers cannot be shared now the
 * fork copies the files, as a restore does.
 */
static int linux_fork(mbx_sandbox *sb, mbx_sandbox *child, mbx_error **err)
{
	int sp[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "socketpair");
	rc = layers_request(sb, MBX_LOP_FREEZE, sp[0], err);
	close(sp[0]);
	if (rc == 1 || rc < 0) {
		close(sp[1]);
		return rc == 1 ? fork_copy(sb, child, 0, err) : rc;
	}
	/* The parent runs on its new overlay whatever happens next. */
	rc = create_as(child, sb->priv, err);
	if (rc == MBX_OK)
		rc = layers_request(child, MBX_LOP_ADOPT, sp[1], err);
	close(sp[1]);
	if (rc == 1)
		return fork_copy(sb, child, 1, err);
	if (rc < 0 && child->priv != NULL && !child->destroyed) {
		child->destroyed = 1;
		linux_destroy(child, NULL);
	}
	return rc;
}

#define RESET_DEADLINE_US (10u * 1000000u)

/*
 * RESET (src/agent/reset.c): the agent kills every process, empties the
 * storage, moves to a fresh ipc namespace and sets the host name again; here
 * the cgroup's OOM count the API reports starts again from 0. Refused for
 * what a reset cannot make new: the caller's mounts (host directories keep
 * what was written to them), a network other than none (the proxy's or
 * pasta's state and the network log live on the host), a sandbox whose
 * seccomp program was skipped (keyrings, which only seccomp keeps payloads
 * from, are not reset). Processes the host
 * tracked are killed with the rest and forgotten. The core destroys the
 * sandbox when this fails.
 */
static int linux_reset(mbx_sandbox *sb, mbx_error **err)
{
	struct linux_sb *l = sb->priv;
	struct mbx_client *c = mbx__agenthost_client(&l->host);
	struct mbx_frame f;
	uint32_t id;
	int rc;

	if (sb->cfg->nmounts > 0)
		return mbx__error_set(err, MBX_ENOTSUP, 0, "reset",
				      "a sandbox with mounts of host paths is never reset: what was written to them stays");
	if (sb->cfg->network != MBX_NETWORK_DENY_ALL)
		return mbx__error_set(err, MBX_ENOTSUP, 0, "reset",
				      "only a sandbox without network (deny-all) is reset: the network's state lives on the host");
	if (sb->skipped & MBX_LAYER_SECCOMP)
		return mbx__error_set(err, MBX_ENOTSUP, 0, "reset",
				      "a sandbox without its seccomp program (degraded) is never reset: its payloads may "
				      "have left keys in the kernel's keyrings, which a reset does not clear");
	if (c == NULL || c->broken)
		return mbx__error_set(err, MBX_ESTATE, 0, "reset", "the channel to the sandbox's agent is broken");
	/* The agent kills them all; what they still send is dropped. */
	mbx__client_forget_all(c);
	id = c->next_id++;
	mbx_proto_begin(&c->wb, MBX_MSG_RESET, id);
	mbx_proto_put_str(&c->wb, MBX_F_HOSTNAME, sb->cfg->hostname);
	mbx_proto_end(&c->wb);
	rc = mbx__client_request(c, id, mbx__now_us() + RESET_DEADLINE_US, &f, err);
	if (rc == MBX_OK && f.type != MBX_MSG_OK) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered RESET with message type %u", f.type);
	}
	if (rc < 0)
		return rc;
	l->oom_base = mbx__cgroup_oom_kills(&l->cg);
	return MBX_OK;
}

const struct mbx_backend_ops mbx__linux_backend = {
	.name = "os",
	.isolation = MBX_ISOLATION_OS,
	.caps = MBX_BACKEND_CAP_EXEC | MBX_BACKEND_CAP_PROCESSES | MBX_BACKEND_CAP_PTY | MBX_BACKEND_CAP_FILES |
		MBX_BACKEND_CAP_STATE | MBX_BACKEND_CAP_OOM_COUNT | MBX_BACKEND_CAP_SNAPSHOT | MBX_BACKEND_CAP_FORK,
	.create = linux_create,
	.exec = linux_exec,
	.destroy = linux_destroy,
	.client = linux_client,
	.oom_kills = linux_oom_kills,
	.snapshot = linux_snapshot,
	.restore = linux_restore,
	.fork = linux_fork,
	.reset = linux_reset,
};
