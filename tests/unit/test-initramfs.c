/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm initramfs writer: the newc bytes, read back field by field, and
 * GNU cpio's reading of them when cpio is installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbx/error.h>
#include "initramfs.h"
#include "tap.h"

/* One entry as the test reads it back. */
struct rd {
	char name[64];
	unsigned long f[13]; /* ino mode uid gid nlink mtime size devmaj devmin rdevmaj rdevmin namesize check */
	size_t data_at;
};

enum { F_INO, F_MODE, F_UID, F_GID, F_NLINK, F_MTIME, F_SIZE, F_DMAJ, F_DMIN, F_RMAJ, F_RMIN, F_NAMESIZE, F_CHECK };

/* Reads the entry at *off (relative to the archive start); -1 when
 * malformed. Checks the magic, that every field is 8 upper-case hex digits,
 * the name's NUL, and that the padding bytes are zeros. */
static int read_entry(const uint8_t *a, size_t len, size_t *off, struct rd *e)
{
	const uint8_t *h = a + *off;
	size_t name_end, data_end;

	if (*off % 4 != 0 || len - *off < 110 || memcmp(h, "070701", 6) != 0)
		return -1;
	for (int i = 0; i < 13; i++) {
		char hex[9];

		memcpy(hex, h + 6 + 8 * i, 8);
		hex[8] = '\0';
		if (strspn(hex, "0123456789ABCDEF") != 8)
			return -1;
		e->f[i] = strtoul(hex, NULL, 16);
	}
	if (e->f[F_NAMESIZE] == 0 || e->f[F_NAMESIZE] > sizeof(e->name) || *off + 110 + e->f[F_NAMESIZE] > len)
		return -1;
	memcpy(e->name, h + 110, e->f[F_NAMESIZE]);
	if (e->name[e->f[F_NAMESIZE] - 1] != '\0' || strlen(e->name) + 1 != e->f[F_NAMESIZE])
		return -1;
	name_end = *off + 110 + e->f[F_NAMESIZE];
	e->data_at = (name_end + 3) & ~(size_t)3;
	data_end = e->data_at + e->f[F_SIZE];
	if (data_end > len)
		return -1;
	for (size_t i = name_end; i < e->data_at; i++)
		if (a[i] != 0)
			return -1;
	*off = (data_end + 3) & ~(size_t)3;
	if (*off > len)
		return -1;
	for (size_t i = data_end; i < *off; i++)
		if (a[i] != 0)
			return -1;
	return 0;
}

static const uint8_t agent5[] = { 0x7f, 'E', 'L', 'F', '!' };

static void test_layout(void)
{
	struct mbx_buf b = { 0 };
	mbx_error *err = NULL;
	static const struct { const char *name; unsigned mode; unsigned rmaj, rmin; } want[] = {
		{ "dev", S_IFDIR | 0755, 0, 0 },     { "dev/console", S_IFCHR | 0600, 5, 1 },
		{ "proc", S_IFDIR | 0755, 0, 0 },    { "sys", S_IFDIR | 0755, 0, 0 },
		{ "newroot", S_IFDIR | 0755, 0, 0 }, { "init", S_IFREG | 0755, 0, 0 },
		{ "TRAILER!!!", 0, 0, 0 },
	};
	size_t off = 0, i;

	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, agent5, sizeof(agent5), &err), MBX_OK);
	TAP_CHECK(err == NULL);
	TAP_CHECK(b.len % 4 == 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct rd e;

		if (read_entry(b.data, b.len, &off, &e) < 0) {
			printf("#   entry %zu is malformed\n", i);
			TAP_CHECK(0);
			break;
		}
		TAP_CHECK_STR(e.name, want[i].name);
		TAP_CHECK_INT(e.f[F_MODE], want[i].mode);
		TAP_CHECK_INT(e.f[F_UID], 0);
		TAP_CHECK_INT(e.f[F_GID], 0);
		TAP_CHECK_INT(e.f[F_MTIME], 0);
		TAP_CHECK_INT(e.f[F_RMAJ], want[i].rmaj);
		TAP_CHECK_INT(e.f[F_RMIN], want[i].rmin);
		TAP_CHECK_INT(e.f[F_CHECK], 0);
		TAP_CHECK_INT(e.f[F_NLINK], S_ISDIR(want[i].mode) ? 2 : 1);
		if (strcmp(e.name, "init") == 0) {
			TAP_CHECK_INT(e.f[F_SIZE], sizeof(agent5));
			TAP_CHECK(memcmp(b.data + e.data_at, agent5, sizeof(agent5)) == 0);
		} else {
			TAP_CHECK_INT(e.f[F_SIZE], 0);
		}
		if (want[i].mode)
			TAP_CHECK_INT(e.f[F_INO], i + 1); /* distinct inodes */
	}
	TAP_CHECK_INT(off, b.len); /* nothing after the trailer */
	/* The first header, byte for byte: /dev, inode 1, 0755 directory. */
	TAP_CHECK(b.len > 116 && memcmp(b.data,
		"070701" "00000001" "000041ED" "00000000" "00000000" "00000002" "00000000" "00000000"
		"00000000" "00000000" "00000000" "00000000" "00000004" "00000000" "dev\0", 114) == 0);
	/* 110 + 4 ("dev\0") = 114, padded to 116. */
	TAP_CHECK(b.data[114] == 0 && b.data[115] == 0 && memcmp(b.data + 116, "070701", 6) == 0);
	mbx__buf_release(&b);
}

/* Appending after bytes already held: padding counts from the archive's
 * start, and the same agent always gives the same archive. */
static void test_append_and_deterministic(void)
{
	struct mbx_buf a = { 0 }, b = { 0 };
	mbx_error *err = NULL;
	static uint8_t big[4099];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	TAP_CHECK_INT(mbx__vm_initramfs_build(&a, big, sizeof(big), &err), MBX_OK);
	TAP_CHECK_INT(mbx__buf_append(&b, "xyz", 3), 0);
	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, big, sizeof(big), &err), MBX_OK);
	TAP_CHECK_INT(b.len, a.len + 3);
	TAP_CHECK(b.len == a.len + 3 && memcmp(b.data + 3, a.data, a.len) == 0);
	{
		struct mbx_buf c = { 0 };

		TAP_CHECK_INT(mbx__vm_initramfs_build(&c, big, sizeof(big), &err), MBX_OK);
		TAP_CHECK(c.len == a.len && memcmp(c.data, a.data, a.len) == 0);
		mbx__buf_release(&c);
	}
	/* 4099 data bytes end 1 past a multiple of 4: three bytes of padding,
	 * then the trailer. */
	{
		size_t off = 0;
		struct rd e;
		int n = 0;

		while (off < a.len && read_entry(a.data, a.len, &off, &e) == 0) {
			n++;
			if (strcmp(e.name, "init") == 0) {
				TAP_CHECK_INT(e.f[F_SIZE], sizeof(big));
				TAP_CHECK(memcmp(a.data + e.data_at, big, sizeof(big)) == 0);
				TAP_CHECK_INT(off - (e.data_at + sizeof(big)), 1);
			}
		}
		TAP_CHECK_INT(n, 7);
		TAP_CHECK_INT(off, a.len);
	}
	mbx__buf_release(&a);
	mbx__buf_release(&b);
	(void)err;
}

static void test_refusals(void)
{
	struct mbx_buf b = { 0 };
	mbx_error *err = NULL;

	TAP_CHECK_INT(mbx__buf_append(&b, "keep", 4), 0);
	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, NULL, 5, &err), MBX_EINVAL);
	TAP_CHECK(err != NULL && strstr(mbx_error_message(err), "agent") != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, agent5, 0, &err), MBX_EINVAL);
	TAP_CHECK(err != NULL && strstr(mbx_error_message(err), "empty") != NULL);
	mbx_error_free(err);
	err = NULL;
#if SIZE_MAX > 0xffffffffu
	/* Refused on the length alone: nothing is read. */
	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, agent5, (size_t)MBX_VM_INITRAMFS_MAX_AGENT + 1, &err), MBX_EINVAL);
	TAP_CHECK(err != NULL && strstr(mbx_error_message(err), "at most") != NULL);
	mbx_error_free(err);
	err = NULL;
#endif
	TAP_CHECK_INT(b.len, 4); /* untouched */
	mbx__buf_release(&b);
}

/* Runs `sh -c cmd` with the archive on stdin; returns its stdout (owned). */
static char *run_cpio(const char *cmd, const char *archive)
{
	char full[512];
	char *out = NULL;
	size_t len = 0, cap = 0;
	char chunk[4096];
	size_t n;
	FILE *p;

	snprintf(full, sizeof(full), "%s < '%s' 2>/dev/null", cmd, archive);
	p = popen(full, "r");
	if (p == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = realloc(out, cap);
			if (out == NULL)
				break;
		}
		memcpy(out + len, chunk, n);
		len += n;
	}
	if (pclose(p) != 0) {
		free(out);
		return NULL;
	}
	if (out)
		out[len] = '\0';
	return out ? out : strdup("");
}

/* GNU cpio (not a build dependency: skipped without it) lists the entries
 * with their types, modes and owners, and extracts /init unchanged. */
static void test_gnu_cpio_reads_it(void)
{
	struct mbx_buf b = { 0 };
	mbx_error *err = NULL;
	char path[] = "/tmp/mbx-test-initramfs-XXXXXX";
	static const char agent[] = "#!/bin/sh\necho guest agent\n";
	char *list, *init;
	int fd;

	if (access("/usr/bin/cpio", X_OK) != 0 && access("/bin/cpio", X_OK) != 0)
		TAP_NOT_APPLICABLE("GNU cpio is not installed");
	TAP_CHECK_INT(mbx__vm_initramfs_build(&b, (const uint8_t *)agent, strlen(agent), &err), MBX_OK);
	fd = mkstemp(path);
	TAP_CHECK(fd >= 0);
	if (fd < 0) {
		mbx__buf_release(&b);
		return;
	}
	TAP_CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
	close(fd);
	list = run_cpio("cpio -t --quiet", path);
	TAP_CHECK(list != NULL);
	if (list)
		TAP_CHECK_STR(list, "dev\ndev/console\nproc\nsys\nnewroot\ninit\n");
	free(list);
	/* -tv: "crw-------   1 root     root       5,   1 Jan  1  1970 dev/console" */
	list = run_cpio("cpio -tv --quiet --numeric-uid-gid", path);
	TAP_CHECK(list != NULL);
	if (list) {
		TAP_CHECK(strstr(list, "drwxr-xr-x   2 0        0               0 Jan  1  1970 dev\n") != NULL);
		TAP_CHECK(strstr(list, "crw-------   1 0        0          5,   1 Jan  1  1970 dev/console\n") != NULL);
		TAP_CHECK(strstr(list, "-rwxr-xr-x   1 0        0              27 Jan  1  1970 init\n") != NULL);
		if (tap_failed_now)
			printf("#   cpio -tv said:\n%s", list);
	}
	free(list);
	init = run_cpio("cpio -i --quiet --to-stdout init", path);
	TAP_CHECK(init != NULL);
	if (init)
		TAP_CHECK_STR(init, agent);
	free(init);
	unlink(path);
	mbx__buf_release(&b);
}

static const struct tap_case cases[] = {
	{"initramfs/layout", test_layout},
	{"initramfs/append-and-deterministic", test_append_and_deterministic},
	{"initramfs/refusals", test_refusals},
	{"initramfs/gnu-cpio-reads-it", test_gnu_cpio_reads_it},
};

TAP_MAIN(cases)
