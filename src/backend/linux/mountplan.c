/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's file-system view (see mountplan.h):
 *
 *	/usr /bin /sbin /lib*  read-only binds of the host's (or the same
 *	                       symlinks, on merged-/usr systems)
 *	/etc                   a tmpfs with generated passwd, group, hosts,
 *	                       hostname, resolv.conf, nsswitch.conf, copies of
 *	                       the small files programs need to load
 *	                       (ld.so.cache...) and read-only binds of the
 *	                       directories (alternatives, certificates...);
 *	                       never shadow, gshadow, sudoers or host keys
 *	/workspace /tmp        directories of the sandbox's storage: one tmpfs
 *	/dev/shm               of the disk limit's size and inode count,
 *	                       mounted outside the new root, shared by the three
 *	                       (one budget; nothing reaches the host's disk)
 *	/proc                  a new proc for the sandbox's pid namespace
 *	/dev                   null zero full random urandom tty, a private devpts
 *	                       (and kvm, for QEMU's jail under KVM only)
 *	user mounts            read-only unless asked otherwise
 *	/                      read-only in the end
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mountplan.h"

/* System directories bound read-only when the host has them. */
static const char *const system_dirs[] = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL };

/* /etc entries programs need, bound read-only when present. Anything not
 * listed (shadow, gshadow, sudoers, ssh host keys, machine-id, the host's
 * passwd and group...) does not exist in the sandbox. */
static const char *const etc_entries[] = {
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
	"os-release", "debian_version", "lsb-release", "mime.types", "protocols", "services",
	"ethertypes", "bash.bashrc", "profile", "profile.d", "inputrc", "ssl/certs", "ssl/openssl.cnf",
	"ca-certificates", "ca-certificates.conf", "python3", "python3.11", "perl", "gai.conf",
	"host.conf", "magic", "magic.mime", "locale.alias", "terminfo", "environment", NULL,
};

/* Largest /etc file copied rather than bound. */
#define COPY_MAX (256 * 1024)

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };

static int push(struct mbx_mountplan *p, uint32_t op, uint32_t flags, uint32_t mode, const char *src, const char *dst,
		const char *data, size_t data_len)
{
	struct mbx_plan_entry *ne = realloc(p->e, (p->n + 1) * sizeof(*ne));
	struct mbx_plan_entry *e;

	if (ne == NULL)
		return -1;
	p->e = ne;
	e = &p->e[p->n];
	memset(e, 0, sizeof(*e));
	e->op = op;
	e->flags = flags;
	e->fd_index = -1;
	e->mode = mode;
	e->src = src ? strdup(src) : NULL;
	e->dst = strdup(dst);
	if (data) {
		e->data = malloc(data_len + 1);
		if (e->data) {
			memcpy(e->data, data, data_len);
			e->data[data_len] = '\0';
			e->data_len = data_len;
		}
	}
	p->n++;
	if ((src && e->src == NULL) || e->dst == NULL || (data && e->data == NULL))
		return -1;
	return 0;
}

static int push_ll(struct mbx_mountplan *p, const char *path, uint32_t class)
{
	struct mbx_ll_rule *nl = realloc(p->ll, (p->nll + 1) * sizeof(*nl));

	if (nl == NULL)
		return -1;
	p->ll = nl;
	p->ll[p->nll].path = strdup(path);
	p->ll[p->nll].class = class;
	p->nll++;
	return p->ll[p->nll - 1].path ? 0 : -1;
}

static int push_text(struct mbx_mountplan *p, const char *dst, const char *text)
{
	return push(p, MBX_MOP_WRITE, 0, 0644, NULL, dst, text, strlen(text));
}

/* The host's resolv.conf without loopback name servers (the sandbox's
 * loopback is its own) and without anything but nameserver, search and
 * options lines. */
static int push_resolv_conf(struct mbx_mountplan *p, const char *host_root)
{
	char path[PATH_MAX], line[512], out[2048];
	size_t o = 0;
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", host_root);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char addr[256];

		if (sscanf(line, "nameserver %255s", addr) == 1) {
			if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0)
				continue;
		} else if (strncmp(line, "search ", 7) != 0 && strncmp(line, "options ", 8) != 0) {
			continue;
		}
		if (o + strlen(line) + 2 < sizeof(out))
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", line,
					      line[strlen(line) - 1] == '\n' ? "" : "\n");
	}
	if (f)
		fclose(f);
	return push_text(p, "/etc/resolv.conf", out);
}

/* Adds the host entry `path` (looked up under host_root) as the same
 * symlink or as a read-only bind; missing entries are skipped. */
static int mirror(struct mbx_mountplan *p, const char *host_root, const char *path)
{
	char host[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(host, sizeof(host), "%s%s", host_root, path);
	if (lstat(host, &st) < 0)
		return 0;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(host, target, sizeof(target) - 1);
		if (n < 0)
			return 0;
		target[n] = '\0';
		return push(p, MBX_MOP_SYMLINK, 0, 0, target, path, NULL, 0);
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;
	/* Small files are copied: a copy costs a few system calls, a bind a
	 * mount, and /etc ends up read-only either way. */
	if (S_ISREG(st.st_mode) && st.st_size <= COPY_MAX) {
		struct mbx_plan_entry *e;

		if (push(p, MBX_MOP_COPY, MBX_MF_OPTIONAL, 0, host, path, NULL, 0) < 0)
			return -1;
		/* What the /etc memfd checks its copy against (etcfiles.c). */
		e = &p->e[p->n - 1];
		e->has_stat = 1;
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		e->st_size = st.st_size;
		e->st_mode = st.st_mode;
		e->st_mtim = st.st_mtim;
		e->st_ctim = st.st_ctim;
		return 0;
	}
	return push(p, MBX_MOP_BIND, MBX_MF_RO | MBX_MF_OPTIONAL | (S_ISDIR(st.st_mode) ? MBX_MF_REC : MBX_MF_FILE), 0,
		    host, path, NULL, 0);
}

int mbx__mountplan_build(struct mbx_mountplan *p, const mbx_config *cfg, uint64_t storage_bytes, const char *host_root,
			 mbx_error **err)
{
	char buf[1024], opts[128];
	size_t i;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	for (i = 0; system_dirs[i]; i++)
		rc |= mirror(p, host_root, system_dirs[i]);

	/* /etc */
	rc |= push(p, MBX_MOP_TMPFS, 0, 0755, NULL, "/etc", "mode=0755,size=4m", 17);
	for (i = 0; etc_entries[i]; i++) {
		snprintf(buf, sizeof(buf), "/etc/%s", etc_entries[i]);
		rc |= mirror(p, host_root, buf);
	}
	rc |= push_text(p, "/etc/passwd",
			"root:x:0:0:root:/workspace:/bin/sh\n"
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
	rc |= push_text(p, "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
	snprintf(buf, sizeof(buf),
		 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", cfg->hostname);
	rc |= push_text(p, "/etc/hosts", buf);
	snprintf(buf, sizeof(buf), "%s\n", cfg->hostname);
	rc |= push_text(p, "/etc/hostname", buf);
	/* Name servers only where there is a route to them (network `all`). */
	if (cfg->network == MBX_NETWORK_ALLOW_ALL)
		rc |= push_resolv_conf(p, host_root);
	else
		rc |= push_text(p, "/etc/resolv.conf", "");
	rc |= push_text(p, "/etc/nsswitch.conf",
			"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
			"protocols: files\nservices: files\nethers: files\nrpc: files\n");
	rc |= push(p, MBX_MOP_REMOUNT_RO, 0, 0, NULL, "/etc", NULL, 0);

	/* The writable storage, then /tmp and /workspace from it. */
	snprintf(opts, sizeof(opts), "mode=0755,size=%llu,nr_inodes=%llu", (unsigned long long)storage_bytes,
		 (unsigned long long)mbx__disk_inodes(storage_bytes));
	rc |= push(p, MBX_MOP_STORAGE, 0, 0, NULL, "/storage", opts, strlen(opts));
	rc |= push(p, MBX_MOP_BIND, MBX_MF_STORAGE, 01777, "tmp", "/tmp", NULL, 0);
	rc |= push(p, MBX_MOP_BIND, MBX_MF_STORAGE, 0755, "workspace", "/workspace", NULL, 0);

	/* /proc and /dev */
	rc |= push(p, MBX_MOP_PROC, 0, 0, NULL, "/proc", NULL, 0);
	rc |= push(p, MBX_MOP_TMPFS, 0, 0755, NULL, "/dev", "mode=0755,size=64k", 18);
	for (i = 0; dev_nodes[i]; i++) {
		char host[64], dst[64];

		snprintf(host, sizeof(host), "/dev/%s", dev_nodes[i]);
		snprintf(dst, sizeof(dst), "/dev/%s", dev_nodes[i]);
		rc |= push(p, MBX_MOP_BIND, MBX_MF_FILE | MBX_MF_OPTIONAL, 0, host, dst, NULL, 0);
	}
	/* QEMU's jail under KVM: the host's /dev/kvm, not optional (the jail
	 * asked for it; a missing node fails the sandbox). Landlock's /dev rule
	 * below lets it be opened read-write and take ioctls. */
	if (cfg->vmm_kvm)
		rc |= push(p, MBX_MOP_BIND, MBX_MF_FILE, 0, "/dev/kvm", "/dev/kvm", NULL, 0);
	rc |= push(p, MBX_MOP_SYMLINK, 0, 0, "/proc/self/fd", "/dev/fd", NULL, 0);
	rc |= push(p, MBX_MOP_SYMLINK, 0, 0, "/proc/self/fd/0", "/dev/stdin", NULL, 0);
	rc |= push(p, MBX_MOP_SYMLINK, 0, 0, "/proc/self/fd/1", "/dev/stdout", NULL, 0);
	rc |= push(p, MBX_MOP_SYMLINK, 0, 0, "/proc/self/fd/2", "/dev/stderr", NULL, 0);
	rc |= push(p, MBX_MOP_SYMLINK, 0, 0, "pts/ptmx", "/dev/ptmx", NULL, 0);
	rc |= push(p, MBX_MOP_DEVPTS, 0, 0, NULL, "/dev/pts", NULL, 0);
	rc |= push(p, MBX_MOP_BIND, MBX_MF_STORAGE, 01777, "shm", "/dev/shm", NULL, 0);
	rc |= push(p, MBX_MOP_REMOUNT_RO, 0, 0, NULL, "/dev", NULL, 0);

	/* User mounts last, so they may sit below /workspace or /tmp. */
	for (i = 0; i < cfg->nmounts; i++) {
		const struct mbx_mount_spec *m = &cfg->mounts[i];
		struct stat st;
		uint32_t flags = MBX_MF_REC;
		size_t at;

		if (stat(m->host, &st) < 0) {
			mbx__mountplan_release(p);
			return mbx__error_set(err, MBX_ENOTFOUND, errno, NULL, "mount source `%s`", m->host);
		}
		if (!S_ISDIR(st.st_mode))
			flags |= MBX_MF_FILE;
		if (!(m->flags & MBX_MOUNT_RW))
			flags |= MBX_MF_RO;
		at = p->n;
		rc |= push(p, MBX_MOP_BIND, flags | MBX_MF_USER, 0, m->host, m->sandbox, NULL, 0);
		if (p->n > at) {
			p->e[at].dev = m->dev;
			p->e[at].ino = m->ino;
		}
	}

	/* Landlock: read and execute everywhere in the view (which holds only
	 * what the plan put there), write only where the plan mounted writable
	 * file systems, device access only below /dev. */
	rc |= push_ll(p, "/", MBX_LL_READ);
	rc |= push_ll(p, "/workspace", MBX_LL_WRITE);
	rc |= push_ll(p, "/tmp", MBX_LL_WRITE);
	rc |= push_ll(p, "/dev/shm", MBX_LL_WRITE);
	rc |= push_ll(p, "/dev", MBX_LL_DEV);
	for (i = 0; i < cfg->nmounts; i++)
		if (cfg->mounts[i].flags & MBX_MOUNT_RW)
			rc |= push_ll(p, cfg->mounts[i].sandbox, MBX_LL_WRITE);
	if (rc) {
		mbx__mountplan_release(p);
		return mbx__error_oom(err);
	}
	return MBX_OK;
}

void mbx__mountplan_encode(const struct mbx_mountplan *p, struct mbx_wbuf *w)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct mbx_plan_entry *e = &p->e[i];
		size_t at = mbx_proto_nest_begin(w, MBX_F_MOUNT);

		mbx_proto_put_u32(w, MBX_F_OP, e->op);
		if (e->flags)
			mbx_proto_put_u32(w, MBX_F_FLAGS, e->flags);
		if (e->mode)
			mbx_proto_put_u32(w, MBX_F_MODE, e->mode);
		if (e->src)
			mbx_proto_put_str(w, MBX_F_SRC, e->src);
		mbx_proto_put_str(w, MBX_F_DST, e->dst);
		if (e->data)
			mbx_proto_put(w, MBX_F_DATA, e->data, e->data_len);
		if (e->fd_index >= 0)
			mbx_proto_put_u32(w, MBX_F_FD, (uint32_t)e->fd_index);
		if (e->in_blob) {
			mbx_proto_put_u64(w, MBX_F_OFFSET, e->offset);
			mbx_proto_put_u64(w, MBX_F_SIZE, e->size);
		}
		mbx_proto_nest_end(w, at);
	}
	for (size_t i = 0; i < p->nll; i++) {
		size_t at = mbx_proto_nest_begin(w, MBX_F_LL_PATH);

		mbx_proto_put_str(w, MBX_F_DST, p->ll[i].path);
		mbx_proto_put_u32(w, MBX_F_MODE, p->ll[i].class);
		mbx_proto_nest_end(w, at);
	}
}

int mbx__mountplan_add_etc_copy(struct mbx_mountplan *p, const char *host, const char *dst)
{
	struct mbx_plan_entry e;
	size_t at;

	/* Before /etc turns read-only. */
	for (at = 0; at < p->n; at++)
		if (p->e[at].op == MBX_MOP_REMOUNT_RO && strcmp(p->e[at].dst, "/etc") == 0)
			break;
	if (at == p->n || push(p, MBX_MOP_COPY, 0, 0, host, dst, NULL, 0) < 0)
		return -1;
	e = p->e[p->n - 1];
	memmove(&p->e[at + 1], &p->e[at], (p->n - 1 - at) * sizeof(e));
	p->e[at] = e;
	return 0;
}

void mbx__mountplan_release(struct mbx_mountplan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].src);
		free(p->e[i].dst);
		free(p->e[i].data);
	}
	free(p->e);
	for (size_t i = 0; i < p->nll; i++)
		free(p->ll[i].path);
	free(p->ll);
	memset(p, 0, sizeof(*p));
}
