/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm guest assets: finding, verifying, the stamps (assets.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sha256.h"
#include "assets.h"
#include "tap.h"

static char top[64], dir[128], stamp[128];

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	chmod(path, mode);
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void hex_of(const void *data, size_t len, char out[65])
{
	uint8_t d[32];

	mbx__sha256(data, len, d);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static uint8_t kernel_bytes[70000], rootfs_bytes[150000];
static char kernel_hex[65], rootfs_hex[65];

static void write_manifest(const char *text)
{
	char p[256];

	path_of(p, sizeof(p), "manifest");
	write_file(p, text, strlen(text), 0644);
}

static void good_manifest(void)
{
	char m[256];

	snprintf(m, sizeof(m), "%s  vmlinuz\n%s  rootfs.squashfs\n", kernel_hex, rootfs_hex);
	write_manifest(m);
}

/* A fresh, good asset directory (and no stamps anywhere). */
static void make_assets(void)
{
	char p[256], cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/vm' '%s/state'", top, top);
	if (system(cmd) != 0)
		exit(1);
	snprintf(dir, sizeof(dir), "%s/vm", top);
	snprintf(p, sizeof(p), "%s/state", top);
	if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0 || mkdir(p, 0700) < 0)
		exit(1);
	snprintf(stamp, sizeof(stamp), "%s/state/vm-assets.stamp", top);
	path_of(p, sizeof(p), "vmlinuz");
	write_file(p, kernel_bytes, sizeof(kernel_bytes), 0644);
	path_of(p, sizeof(p), "rootfs.squashfs");
	write_file(p, rootfs_bytes, sizeof(rootfs_bytes), 0644);
	good_manifest();
	mbx__vm_assets_forget();
}

/* find_in on the directory; the error (if any) is kept for the checks. */
static int find(mbx_error **err)
{
	struct mbx_vm_assets a = { NULL, NULL, NULL };
	int rc;

	mbx_error_free(*err);
	*err = NULL;
	rc = mbx__vm_assets_find_in(&a, dir, stamp, err);
	if (rc == MBX_OK) {
		char want[256];

		TAP_CHECK_STR(a.dir, dir);
		path_of(want, sizeof(want), "vmlinuz");
		TAP_CHECK_STR(a.kernel, want);
		path_of(want, sizeof(want), "rootfs.squashfs");
		TAP_CHECK_STR(a.rootfs, want);
	} else {
		TAP_CHECK(a.dir == NULL && a.kernel == NULL && a.rootfs == NULL);
		TAP_CHECK(*err != NULL);
		if (*err)
			printf("#   (%s: %s | %s)\n", mbx_error_code_name(rc), mbx_error_message(*err),
			       mbx_error_suggestion(*err) ? mbx_error_suggestion(*err) : "");
	}
	mbx__vm_assets_release(&a);
	mbx__vm_assets_release(&a); /* twice: releasing an empty one is fine */
	return rc;
}

static int has(const mbx_error *err, const char *word)
{
	const char *m = err ? mbx_error_message(err) : NULL;

	return m && strstr(m, word) != NULL;
}

static int hint_has(const mbx_error *err, const char *word)
{
	const char *s = err ? mbx_error_suggestion(err) : NULL;

	return s && strstr(s, word) != NULL;
}

static void test_good(void)
{
	mbx_error *err = NULL;
	unsigned long before;
	char p[256];

	make_assets();
	before = mbx__vm_assets_hash_count();
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - before, 2);
	/* files the manifest does not name (the script's recipe, locks, a
	 * stray note) are not assets and do not matter */
	path_of(p, sizeof(p), "notes.txt");
	write_file(p, "x", 1, 0644);
	path_of(p, sizeof(p), ".lock.vmlinuz");
	write_file(p, "", 0, 0644);
	TAP_CHECK_INT(find(&err), MBX_OK);
	/* a trailing slash names the same directory */
	{
		struct mbx_vm_assets a = { NULL, NULL, NULL };
		char slashed[160];

		snprintf(slashed, sizeof(slashed), "%s//", dir);
		TAP_CHECK_INT(mbx__vm_assets_find_in(&a, slashed, NULL, &err), MBX_OK);
		TAP_CHECK_STR(a.dir, dir);
		mbx__vm_assets_release(&a);
	}
	mbx_error_free(err);
}

static void test_missing(void)
{
	mbx_error *err = NULL;
	char p[256];

	make_assets();
	path_of(p, sizeof(p), "rootfs.squashfs");
	unlink(p);
	TAP_CHECK_INT(find(&err), MBX_ENOTFOUND);
	TAP_CHECK(has(err, "needs its guest assets") && has(err, "rootfs.squashfs") && has(err, dir));
	TAP_CHECK(hint_has(err, "mimobox setup vm"));

	make_assets();
	path_of(p, sizeof(p), "manifest");
	unlink(p);
	TAP_CHECK_INT(find(&err), MBX_ENOTFOUND);
	TAP_CHECK(has(err, "manifest") && hint_has(err, "mimobox setup vm"));

	/* recorded nowhere and absent: a build that did not finish */
	make_assets();
	path_of(p, sizeof(p), "vmlinuz");
	unlink(p);
	snprintf(p, sizeof(p), "%s  rootfs.squashfs\n", rootfs_hex);
	write_manifest(p);
	TAP_CHECK_INT(find(&err), MBX_ENOTFOUND);
	TAP_CHECK(has(err, "vmlinuz") && hint_has(err, "mimobox setup vm"));

	make_assets();
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	TAP_CHECK_INT(system(p), 0);
	TAP_CHECK_INT(find(&err), MBX_ENOTFOUND);
	TAP_CHECK(has(err, "does not exist") && has(err, dir) && hint_has(err, "mimobox setup vm"));
	mbx_error_free(err);
}

static void test_extra_file(void)
{
	mbx_error *err = NULL;
	char m[512], p[256];

	/* the manifest names a file that is no asset, present in the directory */
	make_assets();
	path_of(p, sizeof(p), "initrd");
	write_file(p, "x", 1, 0644);
	snprintf(m, sizeof(m), "%s  vmlinuz\n%s  rootfs.squashfs\n%s  initrd\n", kernel_hex, rootfs_hex, kernel_hex);
	write_manifest(m);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "initrd") && has(err, "line 3"));
	TAP_CHECK(hint_has(err, "rm -rf") && hint_has(err, "mimobox setup vm"));

	/* an asset file the manifest does not record: an interrupted build */
	make_assets();
	snprintf(m, sizeof(m), "%s  vmlinuz\n", kernel_hex);
	write_manifest(m);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "rootfs.squashfs") && has(err, "does not record"));
	mbx_error_free(err);
}

static void test_bad_hash(void)
{
	mbx_error *err = NULL;
	char p[256], got[65];

	make_assets();
	rootfs_bytes[1000] ^= 1;
	hex_of(rootfs_bytes, sizeof(rootfs_bytes), got);
	path_of(p, sizeof(p), "rootfs.squashfs");
	write_file(p, rootfs_bytes, sizeof(rootfs_bytes), 0644);
	rootfs_bytes[1000] ^= 1;
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, p) && has(err, "damaged"));
	TAP_CHECK(has(err, got) && has(err, rootfs_hex));
	TAP_CHECK(hint_has(err, "rm -rf") && hint_has(err, dir) && hint_has(err, "mimobox setup vm"));

	/* a truncated kernel */
	make_assets();
	path_of(p, sizeof(p), "vmlinuz");
	TAP_CHECK_INT(truncate(p, 100), 0);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "vmlinuz") && has(err, kernel_hex));
	mbx_error_free(err);
}

static void test_manifest_garbage(void)
{
	mbx_error *err = NULL;
	char upper[65], big[5000], m[600];
	size_t i;
	/* the first line after the kernel's hash, then the root's line */
	const struct { const char *sep, *first, *second_name; int cut; } bad[] = {
		{ " ", "vmlinuz\n", "rootfs.squashfs", 0 },       /* one space */
		{ " *", "vmlinuz\n", "rootfs.squashfs", 0 },      /* sha256sum's binary mode */
		{ "  ", "./vmlinuz\n", "rootfs.squashfs", 0 },    /* a path */
		{ "  ", "../vm/vmlinuz\n", "rootfs.squashfs", 0 },
		{ "  ", "vmlinuz\r\n", "rootfs.squashfs", 0 },    /* CR */
		{ "  ", "vmlinuz\n\n", "rootfs.squashfs", 0 },    /* an empty line */
		{ "  ", "vmlinuz \n", "rootfs.squashfs", 0 },     /* a trailing blank */
		{ "  ", "vmlinuz\n", "vmlinuz", 0 },              /* twice */
		{ "  ", "vmlinuz\n", "rootfs.squashfs", 1 },      /* a short hash */
		{ "0  ", "vmlinuz\n", "rootfs.squashfs", 0 },     /* a long hash */
	};

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_assets();
		snprintf(m, sizeof(m), "%.*s%s%s%s  %s\n", bad[i].cut ? 63 : 64, kernel_hex, bad[i].sep, bad[i].first,
			 rootfs_hex, bad[i].second_name);
		write_manifest(m);
		TAP_CHECK_INT(find(&err), MBX_EBACKEND);
		TAP_CHECK(has(err, "manifest") && has(err, "damaged"));
		if (i == 2 || i == 3)
			TAP_CHECK(has(err, "path"));
	}
	/* uppercase hex: not what sha256sum writes */
	for (i = 0; i < 64; i++)
		upper[i] = (char)(kernel_hex[i] >= 'a' ? kernel_hex[i] - 32 : kernel_hex[i]);
	upper[64] = '\0';
	make_assets();
	snprintf(m, sizeof(m), "%s  vmlinuz\n%s  rootfs.squashfs\n", upper, rootfs_hex);
	write_manifest(m);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	/* a NUL byte in a name */
	make_assets();
	{
		char p[256];
		int n = snprintf(m, sizeof(m), "%s  vmlinuz\n%s  rootfs.squashfs", kernel_hex, rootfs_hex);

		m[n++] = '\0';
		m[n++] = 'x';
		m[n++] = '\n';
		path_of(p, sizeof(p), "manifest");
		write_file(p, m, (size_t)n, 0644);
	}
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	/* oversized */
	make_assets();
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_manifest(big);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "4096"));
	/* the last line without its newline is still a line */
	make_assets();
	snprintf(m, sizeof(m), "%s  vmlinuz\n%s  rootfs.squashfs", kernel_hex, rootfs_hex);
	write_manifest(m);
	TAP_CHECK_INT(find(&err), MBX_OK);
	mbx_error_free(err);
}

static void test_links_and_modes(void)
{
	mbx_error *err = NULL;
	char p[256], real[256], link_dir[160];

	make_assets();
	path_of(p, sizeof(p), "vmlinuz");
	path_of(real, sizeof(real), "vmlinuz.real");
	TAP_CHECK_INT(rename(p, real), 0);
	TAP_CHECK_INT(symlink("vmlinuz.real", p), 0);
	TAP_CHECK_INT(find(&err), MBX_EPERM);
	TAP_CHECK(has(err, "symbolic link") && has(err, "vmlinuz"));

	make_assets();
	snprintf(link_dir, sizeof(link_dir), "%s/link", top);
	unlink(link_dir);
	TAP_CHECK_INT(symlink(dir, link_dir), 0);
	{
		struct mbx_vm_assets a = { NULL, NULL, NULL };

		TAP_CHECK_INT(mbx__vm_assets_find_in(&a, link_dir, NULL, &err), MBX_EPERM);
		TAP_CHECK(has(err, "symbolic link"));
	}
	unlink(link_dir);

	make_assets();
	TAP_CHECK_INT(chmod(dir, 0775), 0);
	TAP_CHECK_INT(find(&err), MBX_EPERM);
	TAP_CHECK(has(err, "writable by other users") && hint_has(err, "chmod go-w"));

	make_assets();
	path_of(p, sizeof(p), "rootfs.squashfs");
	TAP_CHECK_INT(chmod(p, 0646), 0);
	TAP_CHECK_INT(find(&err), MBX_EPERM);
	TAP_CHECK(has(err, "rootfs.squashfs") && has(err, "writable by other users"));

	make_assets();
	path_of(p, sizeof(p), "manifest");
	TAP_CHECK_INT(chmod(p, 0664), 0);
	TAP_CHECK_INT(find(&err), MBX_EPERM);

	/* a directory where an asset should be */
	make_assets();
	path_of(p, sizeof(p), "vmlinuz");
	TAP_CHECK_INT(unlink(p), 0);
	TAP_CHECK_INT(mkdir(p, 0755), 0);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "not a regular file"));
	mbx_error_free(err);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_stamps(void)
{
	mbx_error *err = NULL;
	unsigned long n0;
	struct stat st;
	char p[256];

	make_assets();
	n0 = mbx__vm_assets_hash_count();
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 2);
	/* the stamp file: private */
	TAP_CHECK_INT(stat(stamp, &st), 0);
	TAP_CHECK_INT(st.st_mode & 0777, 0600);
	/* the same process: no hashing */
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 2);
	/* another process (the in-process stamps forgotten): the file's stamps */
	mbx__vm_assets_forget();
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 2);
	/* a touch: that asset is hashed again, the other not */
	path_of(p, sizeof(p), "vmlinuz");
	{
		struct timespec t[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

		TAP_CHECK_INT(utimensat(AT_FDCWD, p, t, 0), 0);
	}
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 3);
	mbx__vm_assets_forget();
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 3);
	/* changed bytes of the same size with the old mtime put back: ctime
	 * still moves, so the change is found */
	path_of(p, sizeof(p), "rootfs.squashfs");
	TAP_CHECK_INT(stat(p, &st), 0);
	sleep_ms(30);
	rootfs_bytes[5] ^= 0x40;
	write_file(p, rootfs_bytes, sizeof(rootfs_bytes), 0644);
	rootfs_bytes[5] ^= 0x40;
	{
		struct timespec t[2] = { st.st_atim, st.st_mtim };

		TAP_CHECK_INT(utimensat(AT_FDCWD, p, t, 0), 0);
	}
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "damaged") && has(err, "rootfs.squashfs"));
	mbx__vm_assets_forget();
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	/* put right again (a new write): verified again */
	write_file(p, rootfs_bytes, sizeof(rootfs_bytes), 0644);
	TAP_CHECK_INT(find(&err), MBX_OK);
	/* a garbled stamp file is ignored (and rewritten) */
	mbx__vm_assets_forget();
	n0 = mbx__vm_assets_hash_count();
	write_file(stamp, "mimobox vm-assets stamp 1\n1 2 x\n", 32, 0600);
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 2);
	mbx__vm_assets_forget();
	TAP_CHECK_INT(find(&err), MBX_OK);
	TAP_CHECK_INT(mbx__vm_assets_hash_count() - n0, 2);
	mbx_error_free(err);
}

/* A stamp file others can write could vouch for any file: it is ignored. */
static void test_stamp_untrusted(void)
{
	mbx_error *err = NULL;
	char p[256], line[512];
	struct stat st;

	make_assets();
	path_of(p, sizeof(p), "rootfs.squashfs");
	rootfs_bytes[7] ^= 1;
	write_file(p, rootfs_bytes, sizeof(rootfs_bytes), 0644);
	rootfs_bytes[7] ^= 1;
	TAP_CHECK_INT(stat(p, &st), 0);
	/* a stamp claiming the manifest's digest for the damaged file's state */
	snprintf(line, sizeof(line), "mimobox vm-assets stamp 1\n%llu %llu %llu %lld %lld %lld %lld %s\n",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
		 (long long)st.st_ctim.tv_nsec, rootfs_hex);
	write_file(stamp, line, strlen(line), 0622);
	TAP_CHECK_INT(find(&err), MBX_EBACKEND);
	TAP_CHECK(has(err, "damaged"));
	/* the same stamp in a private file is believed: that is what the
	 * stamp is for (and why the state directory must be private) */
	mbx__vm_assets_forget();
	write_file(stamp, line, strlen(line), 0600);
	TAP_CHECK_INT(find(&err), MBX_OK);
	mbx_error_free(err);
}

static void test_environment(void)
{
	struct mbx_vm_assets a = { NULL, NULL, NULL };
	mbx_error *err = NULL;
	char state[128], p[256];
	struct stat st;

	make_assets();
	snprintf(state, sizeof(state), "%s/state", top);
	setenv("MIMOBOX_STATE_DIR", state, 1);
	setenv("MIMOBOX_VM_DIR", dir, 1);
	TAP_CHECK_STR(mbx__vm_assets_dir(), dir);
	TAP_CHECK_INT(mbx__vm_assets_find(&a, &err), MBX_OK);
	TAP_CHECK_STR(a.dir, dir);
	mbx__vm_assets_release(&a);
	snprintf(p, sizeof(p), "%s/vm-assets.stamp", state);
	TAP_CHECK_INT(stat(p, &st), 0);
	TAP_CHECK(st.st_uid == geteuid() && (st.st_mode & 0777) == 0600);

	setenv("MIMOBOX_VM_DIR", "relative/vm", 1);
	TAP_CHECK_INT(mbx__vm_assets_find(&a, &err), MBX_EINVAL);
	TAP_CHECK(has(err, "absolute") && hint_has(err, "MIMOBOX_VM_DIR"));
	mbx_error_free(err);
	err = NULL;

	/* unset or empty: the build's default */
	setenv("MIMOBOX_VM_DIR", "", 1);
	TAP_CHECK_STR(mbx__vm_assets_dir(), MBX_VM_DEFAULT_DIR);
	unsetenv("MIMOBOX_VM_DIR");
	TAP_CHECK_STR(mbx__vm_assets_dir(), MBX_VM_DEFAULT_DIR);
	TAP_CHECK(MBX_VM_DEFAULT_DIR[0] == '/');
	unsetenv("MIMOBOX_STATE_DIR");
}

int main(int argc, char **argv)
{
	static const struct tap_case cases[] = {
		{ "vm-assets/good", test_good },
		{ "vm-assets/missing", test_missing },
		{ "vm-assets/extra-file", test_extra_file },
		{ "vm-assets/bad-hash", test_bad_hash },
		{ "vm-assets/manifest-garbage", test_manifest_garbage },
		{ "vm-assets/links-and-modes", test_links_and_modes },
		{ "vm-assets/stamps", test_stamps },
		{ "vm-assets/stamp-untrusted", test_stamp_untrusted },
		{ "vm-assets/environment", test_environment },
	};
	char cmd[128];
	int rc;

	umask(022);
	for (size_t i = 0; i < sizeof(kernel_bytes); i++)
		kernel_bytes[i] = (uint8_t)(i * 7 + (i >> 8));
	for (size_t i = 0; i < sizeof(rootfs_bytes); i++)
		rootfs_bytes[i] = (uint8_t)(i * 13 + (i >> 9));
	hex_of(kernel_bytes, sizeof(kernel_bytes), kernel_hex);
	hex_of(rootfs_bytes, sizeof(rootfs_bytes), rootfs_hex);
	snprintf(top, sizeof(top), "/tmp/mbx-vm-assets-XXXXXX");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
