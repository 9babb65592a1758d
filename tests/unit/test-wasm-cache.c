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
/* The MAC key of the cases: in a private "state" directory beside the cache. */
static char keyfile[340];

/* A fresh cache directory (and key) for each case. */
static void fresh(struct mbx_wasm_cache *c)
{
	char tmpl[] = "/tmp/mbx-wasm-cache-test.XXXXXX", state[64];

	if (dir[0])
		mbx__rm_rf(dir);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(state, sizeof(state), "%s/state", tmpl);
	mkdir(state, 0700);
	snprintf(keyfile, sizeof(keyfile), "%s/wasm-cache.key", state);
	snprintf(dir, sizeof(dir), "%s/cache", tmpl);
	if (mbx__wasm_cache_open(c, dir, keyfile, NULL) != MBX_OK) {
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
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, c.dir, keyfile, NULL), MBX_OK);
	TAP_CHECK(stat(c.dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	mbx__wasm_cache_close(&c2);
	/* A symlink instead of the directory. */
	snprintf(link, sizeof(link), "%s/link", dir);
	TAP_CHECK(symlink(c.dir, link) == 0);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, link, keyfile, &err), MBX_EPERM);
	TAP_CHECK_STR(mbx_error_layer(err), "wasm");
	mbx_error_free(err);
	err = NULL;
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/theirs", dir);
		mkdir(path, 0700);
		TAP_CHECK(chown(path, 65534, 65534) == 0);
		TAP_CHECK_INT(mbx__wasm_cache_open(&c2, path, keyfile, &err), MBX_EPERM);
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

/* Writes an entry for `key` the way someone without the MAC key could: the
 * right header and a plain SHA-256 of header and payload where the MAC goes
 * (what version 1 checked). */
static void forge(const char *path, const uint8_t key[32], const uint8_t *body, size_t len, uint32_t version)
{
	uint8_t header[8 + 4 + 4 + 32 + 8], digest[32];
	struct mbx_sha256 s;
	FILE *f;

	memcpy(header, "MBXCWASM", 8);
	for (int i = 0; i < 4; i++)
		header[8 + i] = (uint8_t)(version >> (8 * i));
	memset(header + 12, 0, 4);
	memcpy(header + 16, key, 32);
	for (int i = 0; i < 8; i++)
		header[48 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	mbx__sha256_init(&s);
	mbx__sha256_update(&s, header, sizeof(header));
	mbx__sha256_update(&s, body, len);
	mbx__sha256_final(&s, digest);
	f = fopen(path, "wb");
	fwrite(header, 1, sizeof(header), f);
	fwrite(body, 1, len, f);
	fwrite(digest, 1, sizeof(digest), f);
	fclose(f);
	chmod(path, 0600);
}

/* An entry whose digest is a valid plain SHA-256, as anyone who can write
 * the cache directory can make, is refused, removed and so compiled again;
 * the sound entry written after it is a hit. */
static void test_unkeyed_digest(void)
{
	static const uint8_t evil[] = "native code the attacker wants loaded";
	struct mbx_wasm_cache c;
	const char *why = NULL;
	uint8_t key[32];
	char path[4200];

	fresh(&c);
	key_of("module", key);
	mbx__wasm_cache_path(&c, key, path, sizeof(path));
	forge(path, key, evil, sizeof(evil), 2);
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK(why != NULL && strstr(why, "MAC") != NULL);
	TAP_CHECK(access(path, F_OK) != 0);
	/* The caller compiles and stores: a hit with its own bytes. */
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	TAP_CHECK_INT(load(&c, key, NULL), MBX_WASM_CACHE_HIT);
	/* The old format (version 1, plain SHA-256) is not taken either. */
	forge(path, key, payload, sizeof(payload), 1);
	TAP_CHECK_INT(load(&c, key, &why), MBX_WASM_CACHE_INVALID);
	mbx__wasm_cache_close(&c);
}

/* An entry made with another key (another user's, or a key that was
 * replaced) is refused; the key file is reused while it stays. */
static void test_wrong_key(void)
{
	struct mbx_wasm_cache c, c2;
	const char *why = NULL;
	char other_state[320], other_key[340], cache_dir[300];
	uint8_t key[32], k1[32], k2[32];

	fresh(&c);
	key_of("module", key);
	TAP_CHECK_INT(mbx__wasm_cache_store(&c, key, payload, sizeof(payload), NULL), MBX_OK);
	/* The same key file again: the same key, a hit. */
	snprintf(cache_dir, sizeof(cache_dir), "%s", c.dir);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, cache_dir, keyfile, NULL), MBX_OK);
	TAP_CHECK(memcmp(c.mac_key, c2.mac_key, 32) == 0);
	TAP_CHECK_INT(load(&c2, key, NULL), MBX_WASM_CACHE_HIT);
	mbx__wasm_cache_close(&c2);
	/* Another key file: another key, the entry is refused and removed. */
	snprintf(other_state, sizeof(other_state), "%s/other", dir);
	mkdir(other_state, 0700);
	snprintf(other_key, sizeof(other_key), "%s/wasm-cache.key", other_state);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, cache_dir, other_key, NULL), MBX_OK);
	TAP_CHECK(memcmp(c.mac_key, c2.mac_key, 32) != 0);
	TAP_CHECK_INT(load(&c2, key, &why), MBX_WASM_CACHE_INVALID);
	TAP_CHECK(why != NULL && strstr(why, "MAC") != NULL);
	mbx__wasm_cache_close(&c2);
	/* Loading twice gives the same bytes; the file is 0600 and 32 bytes. */
	TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k1, NULL), MBX_OK);
	TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k2, NULL), MBX_OK);
	TAP_CHECK(memcmp(k1, k2, 32) == 0 && memcmp(k1, c.mac_key, 32) == 0);
	{
		struct stat st;

		TAP_CHECK(stat(keyfile, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
	}
	mbx__wasm_cache_close(&c);
}

/* The key file is refused when others could read or write it, when it is
 * a symlink, has the wrong size or sits inside the cache directory. */
static void test_key_file_checks(void)
{
	struct mbx_wasm_cache c, c2;
	mbx_error *err = NULL;
	uint8_t k[32];
	char path[400], target[400], cache_dir[300];

	fresh(&c);
	snprintf(cache_dir, sizeof(cache_dir), "%s", c.dir);
	chmod(keyfile, 0644);
	TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k, &err), MBX_EPERM);
	TAP_CHECK(err && strstr(mbx_error_message(err), keyfile) != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, cache_dir, keyfile, NULL), MBX_EPERM);
	chmod(keyfile, 0600);
	TAP_CHECK(truncate(keyfile, 16) == 0);
	TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k, NULL), MBX_EPERM);
	/* A symlink to a key elsewhere. */
	snprintf(target, sizeof(target), "%s/elsewhere.key", dir);
	TAP_CHECK(rename(keyfile, target) == 0);
	TAP_CHECK(truncate(target, 32) == 0);
	TAP_CHECK(symlink(target, keyfile) == 0);
	TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k, &err), MBX_EPERM);
	TAP_CHECK(err && strstr(mbx_error_message(err), "symbolic link") != NULL);
	mbx_error_free(err);
	err = NULL;
	/* Inside the cache directory. */
	snprintf(path, sizeof(path), "%s/wasm-cache.key", cache_dir);
	TAP_CHECK_INT(mbx__wasm_cache_open(&c2, cache_dir, path, NULL), MBX_EPERM);
	TAP_CHECK(access(path, F_OK) != 0);
	if (geteuid() == 0) {
		unlink(keyfile);
		TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k, NULL), MBX_OK);
		TAP_CHECK(chown(keyfile, 65534, 65534) == 0);
		TAP_CHECK_INT(mbx__wasm_cache_key_load(keyfile, k, NULL), MBX_EPERM);
	}
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
	{ "wasm-cache/unkeyed-digest", test_unkeyed_digest },
	{ "wasm-cache/wrong-key", test_wrong_key },
	{ "wasm-cache/key-file-checks", test_key_file_checks },
};

int main(int argc, char **argv)
{
	int rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);

	if (dir[0])
		mbx__rm_rf(dir);
	return rc;
}
