/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the wasm module cache (src/backend/wasm/cache.c): entries
 * are handed out only when sound, anything else is removed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "cache.h"
#include "sha256.h"

static char dir[256];

/* A fresh cache directory for each case. */
static void fresh(struct mbx_wasm_cache *c)
{
	char tmpl[] = "/tmp/mbx-wasm-cache-test.XXXXXX";

	if (dir[0])
		mbx__rm_rf(dir);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(dir, sizeof(dir), "%s/cache", tmpl);
	if (mbx__wasm_cache_open(c, dir, NULL) != MBX_OK) {
		printf("# cannot open the cache in %s\n", dir);
		exit(1);
	}
	/* mbx__rm_rf of the parent at the end: remember it */
	snprintf(dir, sizeof(dir), "%s", tmpl);
}

static void key_of(const char *s, uint8_t key[MBX_WASM_KEY_LEN])
{
	mbx__wasm_cache_key((const uint8_t *)s, strlen(s), "test engine", key);
}

static const uint8_t payload[] = "serialized module bytes, as Wasmtime would produce them";

static int load(struct mbx_wasm_cache *c, const uint8_t *key, const char **why)
{
	uint8_t *buf = NULL;
	size_t off = 0, len = 0;
	int r = mbx__wasm_cache_load(c, key, &buf, &off, &len, why);

	if (r == MBX_WASM_CACHE_HIT && (len != sizeof(payload) || memcmp(buf + off, payload, len) != 0))
		r = -100; /* a hit with the wrong bytes: the worst outcome */
	free(buf);
	return r;
}

static void test_sha256(void)
{
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t out[32], k1[32], k2[32];

	mbx__sha256("abc", 3, out);
	TAP_CHECK(memcmp(out, abc, 32) == 0);
	/* The key depends on the bytes and on the engine fingerprint. */
	mbx__wasm_cache_key((const uint8_t *)"m", 1, "engine a", k1);
	mbx__wasm_cache_key((const uint8_t *)"m", 1, "engine b", k2);
	TAP_CHECK(memcmp(k1, k2, 32) != 0);
	mbx__wasm_cache_key((const uint8_t *)"n", 1, "engine a", k2);
	TAP_CHECK(memcmp(k1, k2, 32) != 0);
}

static void test_roundtrip(void)
{
	struct mbx_wasm_cache c;
	uint8_t key[32];
	struct stat st;
	char path[4200];

	fresh(&c);
	key_of("module", key);
	TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_MISS);
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_HIT);
	mbx__wasm_cache_path(&c, key, path, sizeof(path));
	TAP_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	TAP_CHECK(stat(c.dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	/* Another key misses. */
	key_of("other", key);
	TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_MISS);
	mbx__wasm_cache_close(&c);
}

/* Changes one byte of the entry file at `at` (negative: from the end). */
static void poke(const char *path, long at)
{
	int fd = open(path, O_RDWR);
	struct stat st;
	unsigned char b;

	fstat(fd, &st);
	if (at < 0)
		at += st.st_size;
	pread(fd, &b, 1, at);
	b ^= 0x5a;
	pwrite(fd, &b, 1, at);
	close(fd);
}

static void test_corrupted(void)
{
	struct mbx_wasm_cache c;
	const char *why = NULL;
	uint8_t key[32];
	char path[4200];
	long where[] = { 0, 10, 20, 60, 70, -1 };

	fresh(&c);
	key_of("module", key);
	mbx__wasm_cache_path(&c, key, path, sizeof(path));
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
		poke(path, where[i]);
		TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
		TAP_CHECK(why != NULL);
		/* Removed: never trusted again. */
		TAP_CHECK(access(path, F_OK) != 0);
		TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_MISS);
	}
	/* Truncated (a torn write) and grown. */
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	TAP_CHECK(truncate(path, 70) == 0);
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	{
		FILE *f = fopen(path, "a");

		fputs("x", f);
		fclose(f);
	}
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK_STR(why, "length mismatch");
	/* Empty. */
	close(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	mbx__wasm_cache_close(&c);
}

/* A sound entry under another key's name (a swapped file) is refused. */
static void test_swapped(void)
{
	struct mbx_wasm_cache c;
	const char *why = NULL;
	uint8_t a[32], b[32];
	char pa[4200], pb[4200];

	fresh(&c);
	key_of("a", a);
	key_of("b", b);
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, a, payload, sizeof(payload), NULL), MBX_OK);
	mbx__wasm_cache_path(&c, a, pa, sizeof(pa));
	mbx__wasm_cache_path(&c, b, pb, sizeof(pb));
	TAP_CHECK(rename(pa, pb) == 0);
	TAP_CHECK_INT(load(&c, b, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK_STR(why, "key mismatch");
	mbx__wasm_cache_close(&c);
}

/* Entries others could have written, or that point elsewhere, are refused. */
static void test_untrusted_files(void)
{
	struct mbx_wasm_cache c;
	const char *why = NULL;
	uint8_t key[32];
	char path[4200], other[4300];

	fresh(&c);
	key_of("module", key);
	mbx__wasm_cache_path(&c, key, path, sizeof(path));
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	chmod(path, 0666);
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK_STR(why, "owned or writable by someone else");

	/* A symlink to a sound entry elsewhere. */
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	snprintf(other, sizeof(other), "%s.elsewhere", path);
	TAP_CHECK(rename(path, other) == 0);
	TAP_CHECK(symlink(other, path) == 0);
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK_STR(why, "a symbolic link");
	TAP_CHECK(access(other, F_OK) == 0); /* the link went, not its target */

	if (geteuid() == 0) {
		TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
		TAP_CHECK(chown(path, 65534, 65534) == 0);
		TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	}
	mbx__wasm_cache_close(&c);
}

/* The directory: made private when ours, refused when not. */
static void test_directory(void)
{
	struct mbx_wasm_cache c, c2;
	mbx_error *err = NULL;
	char path[300], link[320];
	struct stat st;

	fresh(&c);
	chmod(c.dir, 0755);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, c.dir, NULL), MBX_OK);
	TAP_CHECK(stat(c.dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	mbx__wasm_cache_close(&c2);
	/* A symlink instead of the directory. */
	snprintf(link, sizeof(link), "%s/link", dir);
	TAP_CHECK(symlink(c.dir, link) == 0);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, link, &err), MBX_EPERM);
	TAP_CHECK_STR(mbx_error_layer(err), "wasm");
	mbx_error_free(err);
	err = NULL;
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/theirs", dir);
		mkdir(path, 0700);
		TAP_CHECK(chown(path, 65534, 65534) == 0);
		TAP_CHECK_INT(mbx__wasm_cache_open(&c2, path, &err), MBX_EPERM);
		mbx_error_free(err);
	}
	mbx__wasm_cache_close(&c);
}

/* Writers and readers at once: a reader sees a whole entry or none, and no
 * temporary file is left behind. */
static void test_concurrent(void)
{
	struct mbx_wasm_cache c;
	uint8_t key[32];
	pid_t pids[6];
	int bad = 0, status;
	DIR *d;
	struct dirent *de;
	int files = 0;

	fresh(&c);
	key_of("module", key);
	fflush(stdout); /* nothing buffered may be written twice */
	for (int i = 0; i < 6; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			for (int k = 0; k < 300; k++) {
				if (i % 2 == 0) {
					if (mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL) != MBX_OK)
						_exit(2);
				} else {
					int r = load(&c, key, NULL);

					if (r != MBX_WASM_CACHE_HIT && r != MBX_WASM_CACHE_MISS)
						_exit(3);
				}
			}
			_exit(0);
		}
	}
	for (int i = 0; i < 6; i++) {
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	}
	TAP_CHECK_INT(bad, 0);
	TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_HIT);
	d = opendir(c.dir);
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			files++;
	if (d)
		closedir(d);
	TAP_CHECK_INT(files, 1);
	mbx__wasm_cache_close(&c);
}

static const struct tap_case cases[] = {
	{ "wasm-cache/sha256-and-key", test_sha256 },
	{ "wasm-cache/roundtrip", test_roundtrip },
	{ "wasm-cache/corrupted", test_corrupted },
	{ "wasm-cache/swapped", test_swapped },
	{ "wasm-cache/untrusted-files", test_untrusted_files },
	{ "wasm-cache/directory", test_directory },
	{ "wasm-cache/concurrent", test_concurrent },
};

int main(int argc, char **argv)
{
	int rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);

	if (dir[0])
		mbx__rm_rf(dir);
	return rc;
}
