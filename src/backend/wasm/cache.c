/* SPDX-License-Identifier: Apache-2.0 */
/* The on-disk cache of compiled Wasm modules: see cache.h for the rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"
#include "sha256.h"

#include "cache.h"

/* Entry layout: header, payload, HMAC-SHA256 of header and payload. Version
 * 1 had a plain SHA-256 there: such entries fail the version check. */
#define ENTRY_MAGIC "MBXCWASM"
#define ENTRY_VERSION 2u
#define HEADER_LEN (8 + 4 + 4 + MBX_WASM_KEY_LEN + 8)
#define DIGEST_LEN 32

void mbx__wasm_cache_key(const uint8_t *module, size_t len, const char *fingerprint, uint8_t key[MBX_WASM_KEY_LEN])
{
	struct mbx_sha256 s;

	mbx__sha256_init(&s);
	mbx__sha256_update(&s, fingerprint, strlen(fingerprint) + 1);
	mbx__sha256_update(&s, module, len);
	mbx__sha256_final(&s, key);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void mbx__wasm_cache_path(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char name[2 * MBX_WASM_KEY_LEN + 1];

	for (int i = 0; i < MBX_WASM_KEY_LEN; i++) {
		name[2 * i] = hex[key[i] >> 4];
		name[2 * i + 1] = hex[key[i] & 15];
	}
	name[2 * MBX_WASM_KEY_LEN] = '\0';
	snprintf(out, size, "%s/%s.cwasm", c->dir, name);
}


int mbx__wasm_cache_key_load(const char *path, uint8_t key[MBX_WASM_MAC_KEY_LEN], mbx_error **err)
{
	return mbx__keyfile_load(path, key, "module cache key", "wasm", "cached modules are compiled again", err);
}

/* 1 when `path`'s directory is `dir` itself (the key would sit among the
 * entries, writable by whoever writes them). */
static int key_inside(const char *dir, const char *path)
{
	char *copy = strdup(path), *slash;
	struct stat a, b;
	int inside;

	if (copy == NULL)
		return 1;
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(copy, ".");
	inside = stat(copy, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	free(copy);
	return inside;
}

int mbx__wasm_cache_open(struct mbx_wasm_cache *c, const char *dir, const char *key_path, mbx_error **err)
{
	struct stat st;
	int rc;

	c->dir = NULL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return mbx__error_set(err, MBX_ESYS, errno, "wasm", "create the module cache `%s`", dir);
	if (lstat(dir, &st) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "wasm", "module cache `%s`", dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		mbx__error_set(err, MBX_EPERM, 0, "wasm", "module cache `%s` is not a directory owned by uid %u", dir,
			       (unsigned)geteuid());
		mbx__error_suggest(err, "remove it; the cache is only used when nobody else can write to it");
		return MBX_EPERM;
	}
	/* Nobody else may plant or swap entries: 0700, whatever umask made. */
	if ((st.st_mode & 077) != 0 && chmod(dir, 0700) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "wasm", "make the module cache `%s` private", dir);
	if (key_path == NULL || key_inside(dir, key_path)) {
		mbx__error_set(err, MBX_EPERM, 0, "wasm", "the module cache key `%s` would sit in the cache `%s`",
			       key_path ? key_path : "(none)", dir);
		mbx__error_suggest(err, "point MIMOBOX_WASM_CACHE_DIR somewhere other than the state directory");
		return MBX_EPERM;
	}
	rc = mbx__wasm_cache_key_load(key_path, c->mac_key, err);
	if (rc < 0)
		return rc;
	c->dir = strdup(dir);
	if (c->dir == NULL)
		return mbx__error_oom(err);
	return MBX_OK;
}

void mbx__wasm_cache_close(struct mbx_wasm_cache *c)
{
	free(c->dir);
	c->dir = NULL;
	memset(c->mac_key, 0, sizeof(c->mac_key));
}

/* Checks an entry held in memory; NULL when it is sound, else why not. */
static const char *verify(const struct mbx_wasm_cache *c, const uint8_t *buf, size_t size,
			  const uint8_t key[MBX_WASM_KEY_LEN])
{
	uint8_t digest[DIGEST_LEN];
	uint64_t len;

	if (size < HEADER_LEN + DIGEST_LEN)
		return "truncated";
	if (memcmp(buf, ENTRY_MAGIC, 8) != 0)
		return "bad magic";
	if (get_le(buf + 8, 4) != ENTRY_VERSION)
		return "unknown format version";
	if (memcmp(buf + 16, key, MBX_WASM_KEY_LEN) != 0)
		return "key mismatch";
	len = get_le(buf + 16 + MBX_WASM_KEY_LEN, 8);
	if (len != size - HEADER_LEN - DIGEST_LEN)
		return "length mismatch";
	mbx__hmac_sha256(c->mac_key, sizeof(c->mac_key), buf, HEADER_LEN + (size_t)len, digest);
	if (!mbx__digest_equal(digest, buf + HEADER_LEN + len, DIGEST_LEN))
		return "MAC mismatch (not written with this user's key)";
	return NULL;
}

int mbx__wasm_cache_load(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], uint8_t **buf, size_t *off,
			 size_t *len, const char **why)
{
	char path[4200];
	const char *bad = NULL;
	struct stat st;
	uint8_t *data;
	int fd;

	*buf = NULL;
	if (why)
		*why = NULL;
	if (c == NULL || c->dir == NULL)
		return MBX_WASM_CACHE_MISS;
	mbx__wasm_cache_path(c, key, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return MBX_WASM_CACHE_MISS;
		bad = errno == ELOOP ? "a symbolic link" : "unreadable";
		goto invalid;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		bad = "not a regular file";
	} else if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		bad = "owned or writable by someone else";
	} else if ((uint64_t)st.st_size < HEADER_LEN + DIGEST_LEN ||
		   (uint64_t)st.st_size > MBX_WASM_CACHE_MAX + HEADER_LEN + DIGEST_LEN) {
		bad = "bad size";
	}
	if (bad) {
		close(fd);
		goto invalid;
	}
	data = malloc((size_t)st.st_size);
	if (data == NULL) {
		close(fd);
		return MBX_WASM_CACHE_MISS;
	}
	if (mbx__read_exact(fd, data, (size_t)st.st_size) < 0) {
		close(fd);
		free(data);
		bad = "unreadable";
		goto invalid;
	}
	close(fd);
	bad = verify(c, data, (size_t)st.st_size, key);
	if (bad) {
		free(data);
		goto invalid;
	}
	*buf = data;
	*off = HEADER_LEN;
	*len = (size_t)st.st_size - HEADER_LEN - DIGEST_LEN;
	return MBX_WASM_CACHE_HIT;
invalid:
	/* Never trusted again: the caller recompiles and writes a new one. */
	unlink(path);
	if (why)
		*why = bad;
	return MBX_WASM_CACHE_INVALID;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mbx__wasm_cache_store(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], const uint8_t *payload,
			  size_t len, mbx_error **err)
{
	char path[4200], tmp[4300];
	uint8_t header[HEADER_LEN], digest[DIGEST_LEN];
	uint64_t r = 0;
	struct mbx_hmac_sha256 mac;
	int fd, rc;

	if (c == NULL || c->dir == NULL)
		return MBX_OK;
	if (len > MBX_WASM_CACHE_MAX)
		return mbx__error_set(err, MBX_ETOOBIG, 0, "wasm", "compiled module too large to cache (%zu bytes)", len);
	memcpy(header, ENTRY_MAGIC, 8);
	put_le(header + 8, ENTRY_VERSION, 4);
	put_le(header + 12, 0, 4);
	memcpy(header + 16, key, MBX_WASM_KEY_LEN);
	put_le(header + 16 + MBX_WASM_KEY_LEN, len, 8);
	mbx__hmac_sha256_init(&mac, c->mac_key, sizeof(c->mac_key));
	mbx__hmac_sha256_update(&mac, header, sizeof(header));
	mbx__hmac_sha256_update(&mac, payload, len);
	mbx__hmac_sha256_final(&mac, digest);

	mbx__wasm_cache_path(c, key, path, sizeof(path));
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) < 0)
		r = (uint64_t)mbx__now_us();
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d-%016llx", path, (int)getpid(), (unsigned long long)r);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mbx__error_set(err, MBX_ESYS, errno, "wasm", "create cache entry `%s`", tmp);
	rc = write_all(fd, header, sizeof(header)) < 0 || write_all(fd, payload, len) < 0 ||
	     write_all(fd, digest, sizeof(digest)) < 0;
	if (close(fd) < 0)
		rc = 1;
	if (rc == 0 && rename(tmp, path) == 0)
		return MBX_OK;
	rc = mbx__error_set(err, MBX_ESYS, errno, "wasm", "write cache entry `%s`", path);
	unlink(tmp);
	return rc;
}

void mbx__wasm_cache_remove(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN])
{
	char path[4200];

	if (c == NULL || c->dir == NULL)
		return;
	mbx__wasm_cache_path(c, key, path, sizeof(path));
	unlink(path);
}
