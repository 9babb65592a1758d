/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the mount plan, against a fake host tree. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/linux/etcfiles.h"
#include "backend/linux/mountplan.h"
#include "tap.h"

static char root[] = "/tmp/mbx-plan-XXXXXX";

static void touch(const char *rel)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s%s", root, rel);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0)
		close(fd);
}

static void mkd(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	mkdir(p, 0755);
}

static void make_tree(void)
{
	char p[512];

	if (mkdtemp(root) == NULL)
		abort();
	mkd("/usr");
	mkd("/usr/bin");
	mkd("/etc");
	mkd("/etc/ssl");
	mkd("/etc/ssl/certs");
	mkd("/etc/ssl/private");
	touch("/etc/shadow");
	touch("/etc/gshadow");
	touch("/etc/sudoers");
	touch("/etc/passwd");
	touch("/etc/ld.so.cache");
	snprintf(p, sizeof(p), "%s/bin", root);
	symlink("usr/bin", p);
	snprintf(p, sizeof(p), "%s/etc/localtime", root);
	symlink("/usr/share/zoneinfo/Etc/UTC", p);
}

static const struct mbx_plan_entry *find(const struct mbx_mountplan *p, const char *dst, size_t *idx)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].dst, dst) == 0) {
			if (idx)
				*idx = i;
			return &p->e[i];
		}
	return NULL;
}

static void test_layout(void)
{
	mbx_config *cfg = NULL;
	struct mbx_mountplan p;
	const struct mbx_plan_entry *e;
	size_t ws = 0, user = 0, etc_ro = 0;

	mbx_config_new(&cfg, NULL);
	mbx_config_add_mount(cfg, "/tmp", "/workspace/data", 0, NULL);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);

	e = find(&p, "/usr", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && (e->flags & MBX_MF_RO));
	e = find(&p, "/bin", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_SYMLINK && strcmp(e->src, "usr/bin") == 0);
	/* Absent on the fake host: not in the plan. */
	TAP_CHECK(find(&p, "/lib64", NULL) == NULL);
	/* Secrets never appear; the host's passwd is replaced. */
	TAP_CHECK(find(&p, "/etc/shadow", NULL) == NULL);
	TAP_CHECK(find(&p, "/etc/gshadow", NULL) == NULL);
	TAP_CHECK(find(&p, "/etc/sudoers", NULL) == NULL);
	TAP_CHECK(find(&p, "/etc/ssl/private", NULL) == NULL);
	e = find(&p, "/etc/passwd", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_WRITE && strstr(e->data, "root:x:0:0") != NULL);
	/* Small files are copied, directories bound read-only. */
	e = find(&p, "/etc/ld.so.cache", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_COPY && strcmp(e->src + strlen(root), "/etc/ld.so.cache") == 0);
	e = find(&p, "/etc/ssl/certs", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && (e->flags & MBX_MF_RO) && !(e->flags & MBX_MF_FILE));
	e = find(&p, "/etc/localtime", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_SYMLINK);
	e = find(&p, "/etc/hosts", NULL);
	TAP_CHECK(e && strstr(e->data, "mimobox") != NULL);
	/* One storage tmpfs, sized and with an inode limit, comes before the
	 * three writable places, which are its directories: one budget. */
	size_t st = 0, tmp = 0, shm = 0;
	e = find(&p, "/storage", &st);
	TAP_CHECK(e && e->op == MBX_MOP_STORAGE && e->data &&
		  strstr(e->data, "size=67108864,nr_inodes=2048") != NULL);
	e = find(&p, "/workspace", &ws);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && (e->flags & MBX_MF_STORAGE) && !(e->flags & MBX_MF_RO) &&
		  strcmp(e->src, "workspace") == 0 && ws > st);
	e = find(&p, "/tmp", &tmp);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && (e->flags & MBX_MF_STORAGE) && strcmp(e->src, "tmp") == 0 &&
		  e->mode == 01777 && tmp > st);
	e = find(&p, "/dev/shm", &shm);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && (e->flags & MBX_MF_STORAGE) && strcmp(e->src, "shm") == 0 &&
		  e->mode == 01777 && shm > st);
	/* No other tmpfs is writable by the payload or sized by the memory. */
	for (size_t i = 0; i < p.n; i++)
		if (p.e[i].op == MBX_MOP_TMPFS)
			TAP_CHECK(strcmp(p.e[i].dst, "/etc") == 0 || strcmp(p.e[i].dst, "/dev") == 0);
	/* User mounts come after /workspace, read-only by default. */
	e = find(&p, "/workspace/data", &user);
	TAP_CHECK(e && (e->flags & MBX_MF_RO) && user > ws);
	/* /etc is made read-only after it is filled. */
	for (size_t i = 0; i < p.n; i++)
		if (p.e[i].op == MBX_MOP_REMOUNT_RO && strcmp(p.e[i].dst, "/etc") == 0)
			etc_ro = i;
	TAP_CHECK(etc_ro > 0);
	TAP_CHECK(find(&p, "/proc", NULL) && find(&p, "/dev/null", NULL) && find(&p, "/dev/pts", NULL));
	/* Landlock: write only to the writable places; the user mount is ro. */
	int writable = 0;
	for (size_t i = 0; i < p.nll; i++)
		if (p.ll[i].class == MBX_LL_WRITE) {
			writable++;
			TAP_CHECK(strcmp(p.ll[i].path, "/workspace/data") != 0);
		}
	TAP_CHECK_INT(writable, 3);
	mbx__mountplan_release(&p);
	mbx_config_free(cfg);
}

static void test_rw_mount_landlock(void)
{
	mbx_config *cfg = NULL;
	struct mbx_mountplan p;
	int found = 0;

	mbx_config_new(&cfg, NULL);
	mbx_config_add_mount(cfg, "/tmp", "/mnt/out", MBX_MOUNT_RW, NULL);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	for (size_t i = 0; i < p.nll; i++)
		found += p.ll[i].class == MBX_LL_WRITE && strcmp(p.ll[i].path, "/mnt/out") == 0;
	TAP_CHECK_INT(found, 1);
	TAP_CHECK(!(find(&p, "/mnt/out", NULL)->flags & MBX_MF_RO));
	mbx__mountplan_release(&p);
	mbx_config_free(cfg);
}

static void test_encode(void)
{
	mbx_config *cfg = NULL;
	struct mbx_mountplan p;
	struct mbx_wbuf w;
	struct mbx_frame f;
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	size_t used, mounts = 0, ll = 0;

	mbx_config_new(&cfg, NULL);
	mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL);
	mbx_wbuf_init(&w);
	mbx_proto_begin(&w, MBX_MSG_INIT, 0);
	mbx__mountplan_encode(&p, &w);
	TAP_CHECK_INT(mbx_proto_end(&w), 0);
	TAP_CHECK_INT(mbx_proto_parse(w.buf, w.len, &f, &used), 1);
	mbx_field_iter_init(&it, f.body, f.len);
	while (mbx_field_next(&it, &tag, &v, &n) == 1) {
		mounts += tag == MBX_F_MOUNT;
		ll += tag == MBX_F_LL_PATH;
	}
	TAP_CHECK_INT(mounts, p.n);
	TAP_CHECK_INT(ll, p.nll);
	mbx_wbuf_release(&w);
	mbx__mountplan_release(&p);
	mbx_config_free(cfg);
}

/* /dev/kvm only for QEMU's jail under KVM: a required bind (not optional)
 * into /dev before /dev turns read-only, under Landlock's device rule. */
static void test_vmm_kvm(void)
{
	mbx_config *cfg = NULL;
	struct mbx_mountplan p;
	const struct mbx_plan_entry *e;
	size_t kvm = 0, dev_ro = 0, dev_rule = 0;

	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	TAP_CHECK(find(&p, "/dev/kvm", NULL) == NULL);
	mbx__mountplan_release(&p);
	cfg->vmm_kvm = 1;
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	e = find(&p, "/dev/kvm", &kvm);
	TAP_CHECK(e && e->op == MBX_MOP_BIND && strcmp(e->src, "/dev/kvm") == 0);
	TAP_CHECK(e && (e->flags & MBX_MF_FILE) && !(e->flags & (MBX_MF_OPTIONAL | MBX_MF_RO)));
	for (size_t i = 0; i < p.n; i++)
		if (p.e[i].op == MBX_MOP_REMOUNT_RO && strcmp(p.e[i].dst, "/dev") == 0)
			dev_ro = i;
	TAP_CHECK(kvm > 0 && dev_ro > kvm);
	for (size_t i = 0; i < p.nll; i++)
		dev_rule += p.ll[i].class == MBX_LL_DEV && strcmp(p.ll[i].path, "/dev") == 0;
	TAP_CHECK_INT((int)dev_rule, 1);
	mbx__mountplan_release(&p);
	mbx_config_free(cfg);
}

static void put(const char *rel, const char *text, mode_t mode)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s%s", root, rel);
	unlink(p);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd >= 0) {
		(void)!write(fd, text, strlen(text));
		fchmod(fd, mode);
		close(fd);
	}
}

/* The bytes a plan entry copies from the /etc memfd. */
static int blob_text(int fd, const struct mbx_plan_entry *e, char *buf, size_t len)
{
	if (e == NULL || !e->in_blob || e->size >= len)
		return -1;
	if (pread(fd, buf, (size_t)e->size, (off_t)e->offset) != (ssize_t)e->size)
		return -1;
	buf[e->size] = '\0';
	return 0;
}

/* Small /etc files go to the agent from one sealed memfd, when others may
 * read them (the agent could not read anything else by name either), and
 * a change of a file is seen at the next plan. */
static void test_etc_memfd(void)
{
	mbx_config *cfg = NULL;
	struct mbx_mountplan p;
	const struct mbx_plan_entry *e;
	char buf[256];
	int fd, fd2;

	/* mkdtemp made the tree's top 0700: nothing below it qualifies. */
	chmod(root, 0755);
	put("/etc/ld.so.cache", "cache one", 0644);
	put("/etc/services", "secret", 0640);
	mbx_config_new(&cfg, NULL);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	fd = mbx__etcfiles_apply(&p);
	TAP_CHECK(fd >= 0);
	e = find(&p, "/etc/ld.so.cache", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_COPY && blob_text(fd, e, buf, sizeof(buf)) == 0 && strcmp(buf, "cache one") == 0);
	TAP_CHECK(e && e->mode == 0644);
	/* Not readable by others: still a copy by name (the agent's own read). */
	e = find(&p, "/etc/services", NULL);
	TAP_CHECK(e && e->op == MBX_MOP_COPY && !e->in_blob && e->src != NULL);
	/* Sealed: nobody writes the copies of later sandboxes. */
	TAP_CHECK(pwrite(fd, "x", 1, 0) < 0);
	TAP_CHECK((fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) ==
		  (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK));
	mbx__mountplan_release(&p);

	/* A changed file (another size, another time) is read again. */
	put("/etc/ld.so.cache", "cache number two", 0644);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	fd2 = mbx__etcfiles_apply(&p);
	e = find(&p, "/etc/ld.so.cache", NULL);
	TAP_CHECK(fd2 >= 0 && blob_text(fd2, e, buf, sizeof(buf)) == 0 && strcmp(buf, "cache number two") == 0);
	/* The earlier descriptor still holds what it held. */
	TAP_CHECK(pread(fd, buf, 9, 0) == 9 && memcmp(buf, "cache one", 9) == 0);
	/* Others may no longer read it: back to a copy by name. */
	put("/etc/ld.so.cache", "cache number two", 0600);
	mbx__mountplan_release(&p);
	TAP_CHECK_INT(mbx__mountplan_build(&p, cfg, 64ull << 20, root, NULL), MBX_OK);
	close(fd2);
	fd2 = mbx__etcfiles_apply(&p);
	e = find(&p, "/etc/ld.so.cache", NULL);
	TAP_CHECK(fd2 < 0 && e && !e->in_blob);
	if (fd2 >= 0)
		close(fd2);
	close(fd);
	mbx__mountplan_release(&p);
	mbx_config_free(cfg);
	put("/etc/ld.so.cache", "", 0644);
	put("/etc/services", "", 0644);
}

static void cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	(void)!system(cmd);
}

static const struct tap_case cases[] = {
	{ "mountplan/layout", test_layout },
	{ "mountplan/rw-mount-landlock", test_rw_mount_landlock },
	{ "mountplan/encode", test_encode },
	{ "mountplan/vmm-kvm", test_vmm_kvm },
	{ "mountplan/etc-memfd", test_etc_memfd },
};

int main(int argc, char **argv)
{
	int rc;

	make_tree();
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	cleanup();
	return rc;
}
