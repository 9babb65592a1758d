/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The os backend: a sandbox is the agent running as PID 1 of fresh
 * namespaces, with the sandbox's own root (mountplan.c), limits from the
 * cgroup ladder (cgroup.c) and payload layers (seccomp.c, Landlock in the
 * agent). State on the host: one directory per sandbox holding its
 * /workspace, and possibly cgroup directories; destroy removes both.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "backend/client.h"
#include "cgroup.h"
#include "mountplan.h"
#include "netns.h"
#include "seccomp.h"
#include "spawn.h"
#include "platform/linux/syscalls.h"
#include "statedir.h"

/* Host uids that become root inside sandboxes of a root caller: a block no
 * distribution hands to users, so sandbox files and processes belong to
 * nobody real on the host, and each sandbox gets its own. */
#define MAPPED_UID_BASE 0x40000000u
#define MAPPED_UID_SPAN 0x01000000u

/* Start-up budget: clone, mounts and the first answer of the agent. */
#define CREATE_DEADLINE_US (15u * 1000000u)

struct linux_sb {
	struct mbx_client client;
	pid_t pid;
	int pidfd;
	struct mbx_statedir sd; /* host directory of the sandbox, locked */
	char *workspace;        /* host directory behind /workspace */
	struct mbx_cgroup cg;
	struct mbx_linux_net net; /* the proxy or pasta (netns.c) */
};

/* Records the sandbox's cgroup directories next to its workspace so a
 * later process can remove them if this one dies without destroying it. */
static int record_cgroups(const struct linux_sb *l)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroups", l->sd.dir);
	f = fopen(path, "we");
	if (f == NULL)
		return -1;
	if (l->cg.v2_dir)
		fprintf(f, "v2 %s\n", l->cg.v2_dir);
	for (int i = 0; i < 3; i++)
		if (l->cg.v1_dir[i])
			fprintf(f, "v1 %s\n", l->cg.v1_dir[i]);
	return fclose(f);
}

/* Removes the cgroups recorded for a dead sandbox (see record_cgroups). */
void mbx__linux_remove_recorded_cgroups(const char *dir)
{
	struct mbx_cgroup cg = { 0 };
	char path[4200], line[4096];
	int n1 = 0;
	FILE *f;

	/* pasta outlives a sandbox whose owner died (it daemonized). */
	mbx__pasta_collect(dir);
	snprintf(path, sizeof(path), "%s/cgroups", dir);
	f = fopen(path, "re");
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
	if (l == NULL)
		return;
	mbx__linux_net_stop(&l->net);
	mbx__client_shutdown(&l->client);
	mbx__linux_kill_agent(l->pid, l->pidfd);
	if (l->pidfd >= 0)
		close(l->pidfd);
	l->pid = -1;
	l->pidfd = -1;
	mbx__client_close(&l->client);
	mbx__cgroup_destroy(&l->cg);
	mbx__statedir_release(&l->sd);
	free(l->workspace);
	free(l);
}

static void put_rlimit(struct mbx_wbuf *w, uint32_t resource, uint64_t value)
{
	uint8_t b[12];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(resource >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[4 + i] = (uint8_t)(value >> (8 * i));
	mbx_proto_put(w, MBX_F_RLIMIT, b, sizeof(b));
}

/* Prepares the host side: directories and cgroup. */
static int prepare_host(mbx_sandbox *sb, struct linux_sb *l, uid_t uid, gid_t gid, int privileged, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	struct mbx_limits lim = { cfg->memory_bytes, cfg->max_procs, cfg->millicpus };
	char *base = NULL, *why = NULL;
	int rc;

	rc = mbx__statedir_base(&base, err);
	if (rc < 0)
		return rc;
	mbx__statedir_collect(base, sb->id, mbx__linux_remove_recorded_cgroups);
	rc = mbx__statedir_create(&l->sd, base, sb->id, 0711, err);
	free(base);
	if (rc < 0)
		return rc;
	if (asprintf(&l->workspace, "%s/workspace", l->sd.dir) < 0)
		return mbx__error_oom(err);
	if (mkdir(l->workspace, 0755) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "create workspace `%s`", l->workspace);
	if (privileged && chown(l->workspace, uid, gid) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "hand workspace `%s` to uid %u", l->workspace, (unsigned)uid);

	rc = mbx__cgroup_create(&l->cg, sb->id, &lim, &why, err);
	if (rc < 0) {
		free(why);
		return rc;
	}
	if (why)
		mbx__log(cfg, MBX_LOG_INFO, "limits through %s: %s", mbx__limits_mech_name(l->cg.mech), why);
	if (record_cgroups(l) < 0) {
		free(why);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "record the cgroups of `%s`", l->sd.dir);
	}
	free(why);
	sb->limits_mech = mbx__limits_mech_name(l->cg.mech);
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
 * For a root caller, sandbox root is an unprivileged host uid, so a plain
 * bind of the caller's directory would be read-only to it at best. Each
 * mount the caller asked for is instead cloned here and id-mapped through
 * the sandbox's user namespace: files owned by host root appear owned by
 * sandbox root, and files the sandbox creates land on the host owned by root,
 * as they would for a root caller without a sandbox. Only the trees the
 * caller named are mapped. File systems without id-mapping support keep the
 * plain bind (logged). The descriptors go to the agent with INIT.
 */
static int idmap_user_mounts(const mbx_sandbox *sb, pid_t agent, struct mbx_mountplan *plan, int *fds, size_t *nfds,
			     mbx_error **err)
{
	char path[64];
	int userns;

	*nfds = 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)agent);
	userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "user-namespace", "open `%s`", path);
	for (size_t i = 0; i < plan->n; i++) {
		struct mbx_plan_entry *e = &plan->e[i];
		struct mbx_mount_attr attr = { 0 };
		int fd;

		if (!(e->flags & MBX_MF_USER) || e->op != MBX_MOP_BIND)
			continue;
		if (*nfds >= MBX_PROTO_MAX_FDS) {
			close(userns);
			return mbx__error_set(err, MBX_EINVAL, 0, NULL, "more than %d mounts", MBX_PROTO_MAX_FDS);
		}
		fd = mbx_sys_open_tree(AT_FDCWD, e->src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				       ((e->flags & MBX_MF_REC) ? AT_RECURSIVE : 0));
		if (fd < 0) {
			int e2 = errno;

			close(userns);
			return mbx__error_set(err, MBX_ESYS, e2, "mount-namespace", "clone mount source `%s`", e->src);
		}
		attr.attr_set = MOUNT_ATTR_IDMAP | ((e->flags & MBX_MF_RO) ? MOUNT_ATTR_RDONLY : 0);
		attr.userns_fd = (uint64_t)userns;
		if (mbx_sys_mount_setattr(fd, "", AT_EMPTY_PATH | ((e->flags & MBX_MF_REC) ? AT_RECURSIVE : 0), &attr) < 0) {
			mbx__log(sb->cfg, MBX_LOG_WARN, "mount `%s`: no id-mapping here (%s); the sandbox sees it with its unprivileged host identity",
				 e->src, strerror(errno));
			close(fd);
			continue;
		}
		e->op = MBX_MOP_ATTACH;
		e->fd_index = (int)*nfds;
		fds[(*nfds)++] = fd;
	}
	close(userns);
	return MBX_OK;
}

static int linux_create(mbx_sandbox *sb, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	int privileged = geteuid() == 0;
	struct mbx_mountplan plan = { 0 };
	struct mbx_ready_info ready;
	struct mbx_spawn sp = { 0 };
	int mount_fds[MBX_PROTO_MAX_FDS];
	size_t nmount_fds = 0;
	struct linux_sb *l;
	const uint8_t *bpf = NULL;
	size_t bpf_len = 0;
	uint64_t deadline = mbx__now_us() + CREATE_DEADLINE_US;
	uint32_t flags, r32 = 0;
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
	l->client.fd = -1;

	if (privileged) {
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

	rc = prepare_host(sb, l, uid, gid, privileged, err);
	if (rc < 0)
		goto fail;
	if (mbx__seccomp_program(cfg->trust, &bpf, &bpf_len) < 0) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "seccomp", "no seccomp program for trust level %u", cfg->trust);
		goto fail;
	}
	rc = mbx__mountplan_build(&plan, cfg, l->workspace, "", err);
	if (rc == MBX_OK)
		rc = mbx__linux_net_prepare(sb, l->sd.dir, &plan, err);
	if (rc < 0)
		goto fail;

	sp.map_uid = uid;
	sp.map_gid = gid;
	sp.privileged = privileged;
	sp.cg = &l->cg;
	rc = mbx__linux_spawn_agent(&sp, err);
	if (rc < 0)
		goto fail;
	l->pid = sp.pid;
	l->pidfd = sp.pidfd;
	mbx__client_init(&l->client, sp.chan);

	rc = mbx__client_hello(&l->client, deadline, err);
	if (rc < 0)
		goto fail;
	if (privileged && cfg->nmounts) {
		rc = idmap_user_mounts(sb, l->pid, &plan, mount_fds, &nmount_fds, err);
		if (rc < 0)
			goto fail;
	}
	flags = MBX_INIT_SETUP_ROOT | MBX_INIT_LOOPBACK;
	if (cfg->allow_degraded)
		flags |= MBX_INIT_ALLOW_DEGRADED;
	if (cfg->trust == MBX_TRUST_UNTRUSTED)
		flags |= MBX_INIT_UNTRUSTED;
	mbx_proto_begin(&l->client.wb, MBX_MSG_INIT, 0);
	mbx_proto_put_u32(&l->client.wb, MBX_F_INIT_FLAGS, flags);
	mbx_proto_put_str(&l->client.wb, MBX_F_HOSTNAME, cfg->hostname);
	if (bpf)
		mbx_proto_put(&l->client.wb, MBX_F_SECCOMP, bpf, bpf_len);
	put_rlimit(&l->client.wb, RLIMIT_CORE, 0);
	if (l->cg.mech == MBX_LIMITS_RLIMIT) {
		/* RLIMIT_DATA rather than RLIMIT_AS: runtimes that reserve large
		 * address ranges without using them (V8, Go) still start. */
		put_rlimit(&l->client.wb, RLIMIT_DATA, cfg->memory_bytes);
		put_rlimit(&l->client.wb, RLIMIT_NPROC, cfg->max_procs);
	}
	mbx__mountplan_encode(&plan, &l->client.wb);
	if (mbx_proto_end(&l->client.wb) < 0) {
		rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "sandbox setup message too large (too many mounts?)");
		goto fail;
	}
	rc = mbx__client_init_sandbox(&l->client, mount_fds, nmount_fds, &ready, deadline, err);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < nmount_fds; i++)
		close(mount_fds[i]);
	nmount_fds = 0;
	rc = mbx__linux_net_start(&l->net, sb, l->pid, l->sd.dir, err);
	if (rc < 0)
		goto fail;

	sb->layers = MBX_LAYER_USER_NS | MBX_LAYER_PID_NS | MBX_LAYER_MOUNT_NS | MBX_LAYER_NET_NS | MBX_LAYER_IPC_NS |
		     MBX_LAYER_UTS_NS | MBX_LAYER_CGROUP_NS | ready.layers;
	if (!(sb->skipped & MBX_LAYER_LIMITS))
		sb->layers |= MBX_LAYER_LIMITS;
	sb->skipped |= ready.skipped;
	if (ready.skipped & MBX_LAYER_LANDLOCK)
		sb->skip_reason[mbx__layer_index(MBX_LAYER_LANDLOCK)] = ready.landlock_abi > 0 ?
			"the kernel's Landlock refused the sandbox's ruleset" : "the kernel has no usable Landlock";
	if (ready.skipped & MBX_LAYER_SECCOMP)
		sb->skip_reason[mbx__layer_index(MBX_LAYER_SECCOMP)] = "the kernel has no seccomp filter support";
	sb->priv = l;
	mbx__mountplan_release(&plan);
	return MBX_OK;
fail:
	for (size_t i = 0; i < nmount_fds; i++)
		close(mount_fds[i]);
	mbx__mountplan_release(&plan);
	linux_cleanup(l);
	return rc;
}

static int linux_exec(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct linux_sb *l = sb->priv;
	uint64_t ooms = mbx__cgroup_oom_kills(&l->cg);
	int rc = mbx__client_exec(&l->client, req, res, err);

	if (rc < 0 && l->client.broken) {
		mbx__error_wrap(err, "sandbox %s stopped working and was destroyed", sb->id);
		sb->destroyed = 1;
		sb->priv = NULL;
		linux_cleanup(l);
		return rc;
	}
	if (rc == MBX_OK && res->signal == SIGKILL && mbx__cgroup_oom_kills(&l->cg) > ooms)
		res->oom_killed = 1;
	return rc;
}

static uint64_t linux_oom_kills(mbx_sandbox *sb)
{
	struct linux_sb *l = sb->priv;

	return l ? mbx__cgroup_oom_kills(&l->cg) : 0;
}

static int linux_destroy(mbx_sandbox *sb, mbx_error **err)
{
	linux_cleanup(sb->priv);
	sb->priv = NULL;
	(void)err;
	return MBX_OK;
}

static struct mbx_client *linux_client(mbx_sandbox *sb)
{
	struct linux_sb *l = sb->priv;

	return l ? &l->client : NULL;
}

const struct mbx_backend_ops mbx__linux_backend = {
	.name = "os",
	.isolation = MBX_ISOLATION_OS,
	.create = linux_create,
	.exec = linux_exec,
	.destroy = linux_destroy,
	.client = linux_client,
	.oom_kills = linux_oom_kills,
};
