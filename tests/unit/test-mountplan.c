/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the mount plan, against a fake host tree. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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
};

int main(int argc, char **argv)
{
	int rc;

	make_tree();
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	cleanup();
	return rc;
}
