/* SPDX-License-Identifier: Apache-2.0 */
/* The microvm guest assets: find, verify, remember what was verified (assets.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "sha256.h"
#include "statedir.h"
#include "platform/linux/syscalls.h"

#include "assets.h"

#ifndef MBX_VM_DEFAULT_DIR
#error "MBX_VM_DEFAULT_DIR must name the build's default asset directory (meson.build)"
#endif

#define LAYER "microvm"
/* The script writes two lines of 64 + 2 + a short name: anything near this
 * size is not a manifest. */
#define MANIFEST_MAX 4096
#define STAMP_FILE_MAX 4096
#define STAMP_SLOTS 8
#define STAMP_HEADER "mimobox vm-assets stamp 1\n"
#define READ_CHUNK (256u * 1024u)

enum { A_KERNEL, A_ROOTFS, N_ASSETS };
static const char *const asset_names[N_ASSETS] = { "vmlinuz", "rootfs.squashfs" };

#define SETUP_HINT "run `mimobox setup vm` to build them (minutes; as root), or set MIMOBOX_VM_DIR to a directory that holds them"

/* What identifies one state of a file: any write changes its ctime. */
struct file_key {
	uint64_t dev, ino, size;
	int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
};

struct stamp {
	int used;
	struct file_key key;
	uint8_t digest[32]; /* the SHA-256 the file had in that state */
};

static pthread_mutex_t stamp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stamp stamps[STAMP_SLOTS];
static unsigned stamp_next;
static unsigned long hash_count;

static void key_of(const struct stat *st, struct file_key *k)
{
	memset(k, 0, sizeof(*k));
	k->dev = (uint64_t)st->st_dev;
	k->ino = (uint64_t)st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime_s = (int64_t)st->st_mtim.tv_sec;
	k->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
	k->ctime_s = (int64_t)st->st_ctim.tv_sec;
	k->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

static int key_equal(const struct file_key *a, const struct file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
	       a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

static void to_hex(const uint8_t d[32], char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

/* 64 lowercase hex digits (sha256sum's spelling) to 32 bytes; -1 otherwise. */
static int from_hex(const char *s, uint8_t out[32])
{
	for (int i = 0; i < 64; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

/* A name from an untrusted file, fit for a message: at most 48 bytes,
 * anything but printable ASCII as '?'. */
static void sanitize(const char *s, size_t len, char out[49])
{
	size_t i;

	for (i = 0; i < len && i < 48; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* ---- the in-process stamps (caller holds stamp_lock) ---- */

static const uint8_t *stamp_find(const struct file_key *k)
{
	for (size_t i = 0; i < STAMP_SLOTS; i++)
		if (stamps[i].used && key_equal(&stamps[i].key, k))
			return stamps[i].digest;
	return NULL;
}

static void stamp_put(const struct file_key *k, const uint8_t digest[32])
{
	struct stamp *s = NULL;

	for (size_t i = 0; i < STAMP_SLOTS && s == NULL; i++)
		if (stamps[i].used && key_equal(&stamps[i].key, k))
			s = &stamps[i];
	if (s == NULL) {
		s = &stamps[stamp_next];
		stamp_next = (stamp_next + 1) % STAMP_SLOTS;
	}
	s->used = 1;
	s->key = *k;
	memcpy(s->digest, digest, 32);
}

/* ---- the stamp file: a cache, so every problem with it means "no stamp" ---- */

/* Reads up to max bytes of fd (which must hold fewer); -1 on error or when
 * it holds more. */
static ssize_t read_small(int fd, char *buf, size_t max)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = MBX_RETRY_EINTR(read(fd, buf + got, max - got));

		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)got;
		got += (size_t)n;
		if (got == max)
			return -1;
	}
}

/* Adds the stamps of the file at `path` to the in-process table when the
 * file is a regular file of the caller that nobody else can write (else it
 * could claim any digest for any file). */
static void stamp_file_load(const char *path)
{
	char buf[STAMP_FILE_MAX + 1], *line, *save = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0 ||
	    st.st_size > STAMP_FILE_MAX) {
		close(fd);
		return;
	}
	n = read_small(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	if (strncmp(buf, STAMP_HEADER, strlen(STAMP_HEADER)) != 0)
		return;
	for (line = strtok_r(buf + strlen(STAMP_HEADER), "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long dev, ino, size;
		long long ms, mns, cs, cns;
		char hex[65];
		struct file_key k;
		uint8_t d[32];
		int used = 0;

		if (sscanf(line, "%llu %llu %llu %lld %lld %lld %lld %64s%n", &dev, &ino, &size, &ms, &mns, &cs, &cns,
			   hex, &used) != 8 || line[used] != '\0' || strlen(hex) != 64 || from_hex(hex, d) < 0)
			return; /* garbage: trust none of it */
		k = (struct file_key){ dev, ino, size, ms, mns, cs, cns };
		stamp_put(&k, d);
	}
}

/* Writes the in-process stamps to `path` (a private file, replaced whole). */
static void stamp_file_save(const char *path)
{
	char *text = NULL, *tmp = NULL, rnd[17];
	size_t len = 0;
	FILE *f;
	int fd, ok;

	f = open_memstream(&text, &len);
	if (f == NULL)
		return;
	fputs(STAMP_HEADER, f);
	for (size_t i = 0; i < STAMP_SLOTS; i++) {
		const struct file_key *k = &stamps[i].key;
		char hex[65];

		if (!stamps[i].used)
			continue;
		to_hex(stamps[i].digest, hex);
		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %s\n",
			k->dev, k->ino, k->size, k->mtime_s, k->mtime_ns, k->ctime_s, k->ctime_ns, hex);
	}
	ok = fclose(f) == 0;
	rnd[16] = '\0';
	if (!ok || mbx__random_hex(rnd, 8) < 0 || asprintf(&tmp, "%s.tmp-%d-%s", path, (int)getpid(), rnd) < 0) {
		free(text);
		return;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		ok = write(fd, text, len) == (ssize_t)len;
		if (close(fd) < 0)
			ok = 0;
		if (!ok || rename(tmp, path) < 0)
			unlink(tmp);
	}
	free(tmp);
	free(text);
}

/* ---- checks ---- */

/* The directory, the manifest and the assets: owned by root or the caller,
 * writable by nobody else (who could otherwise swap the guest's kernel
 * between the check and QEMU's open). */
static int check_owner(const struct stat *st, const char *path, mbx_error **err)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		mbx__error_set(err, MBX_EPERM, 0, LAYER,
			       "the microvm guest assets: `%s` is owned by uid %u, neither root nor the caller (uid %u)",
			       path, (unsigned)st->st_uid, (unsigned)geteuid());
		mbx__error_suggest(err, "use assets that root or you own (build them with `mimobox setup vm`, or point MIMOBOX_VM_DIR at them)");
		return MBX_EPERM;
	}
	if ((st->st_mode & 022) != 0) {
		mbx__error_set(err, MBX_EPERM, 0, LAYER,
			       "the microvm guest assets: `%s` is writable by other users (mode %04o)", path,
			       (unsigned)(st->st_mode & 07777));
		mbx__error_suggest(err, "chmod go-w '%s'", path);
		return MBX_EPERM;
	}
	return MBX_OK;
}

static int missing(mbx_error **err, const char *dir, const char *what)
{
	mbx__error_set(err, MBX_ENOTFOUND, 0, LAYER,
		       "the microvm backend needs its guest assets (a Linux kernel and a root image) in `%s`: %s",
		       dir, what);
	mbx__error_suggest(err, SETUP_HINT);
	return MBX_ENOTFOUND;
}

static int MBX_PRINTF(3, 4) damaged(mbx_error **err, const char *dir, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mbx__error_set(err, MBX_EBACKEND, 0, LAYER, "%s", msg);
	mbx__error_suggest(err, "remove the directory (rm -rf '%s') and run `mimobox setup vm` to build the assets again", dir);
	return MBX_EBACKEND;
}

/* Opens `name` in the directory: a regular file of root or the caller,
 * not writable by others, not a symlink. Returns the fd, or -1 with *rc set
 * (ENOENT gives *rc = 0 and errno ENOENT, for the caller to word). */
static int open_checked(int dfd, const char *dir, const char *name, struct stat *st, int *rc, mbx_error **err)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT) {
			*rc = MBX_OK;
		} else if (e == ELOOP) {
			*rc = mbx__error_set(err, MBX_EPERM, 0, LAYER,
					     "the microvm guest assets: `%s` is a symbolic link (refused)", path);
			mbx__error_suggest(err, "remove the directory (rm -rf '%s') and run `mimobox setup vm`", dir);
		} else {
			*rc = mbx__error_set(err, e == EACCES ? MBX_EPERM : MBX_ESYS, e, LAYER,
					     "the microvm guest assets: open `%s`: %s", path, strerror(e));
			if (e == EACCES)
				mbx__error_suggest(err, "set MIMOBOX_VM_DIR to a copy of the assets this user can read");
		}
		errno = e;
		return -1;
	}
	if (fstat(fd, st) < 0) {
		*rc = mbx__error_set(err, MBX_ESYS, errno, LAYER, "the microvm guest assets: fstat `%s`", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		*rc = damaged(err, dir, "the microvm guest assets: `%s/%s` is not a regular file", dir, name);
		close(fd);
		return -1;
	}
	*rc = check_owner(st, path, err);
	if (*rc != MBX_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Parses the manifest: every line exactly "<64 lowercase hex>  <name>",
 * each name one of the known assets, at most once. Fills want[] and seen[].
 */
static int parse_manifest(const char *dir, const char *text, size_t len, uint8_t want[N_ASSETS][32],
			  int seen[N_ASSETS], mbx_error **err)
{
	char path[4200], num[24], shown[49];
	size_t pos = 0, lineno = 0;

	snprintf(path, sizeof(path), "%s/manifest", dir);
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos), *name;
		size_t n = nl ? (size_t)(nl - line) : len - pos, namelen, i;
		int idx = -1;
		uint8_t d[32];

		lineno++;
		pos += n + (nl != NULL);
		snprintf(num, sizeof(num), "%zu", lineno);
		if (n < 67 || line[64] != ' ' || line[65] != ' ' || from_hex(line, d) < 0)
			return damaged(err, dir, "the microvm guest assets: `%s` is damaged: line %s is not `<sha256>  <file>`",
				       path, num);
		name = line + 66;
		namelen = n - 66;
		sanitize(name, namelen, shown);
		if (memchr(name, '/', namelen) != NULL)
			return damaged(err, dir, "the microvm guest assets: `%s` is damaged: line %s names a path (`%s`), not a file in the directory",
				       path, num, shown);
		for (i = 0; i < namelen; i++)
			if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
				return damaged(err, dir, "the microvm guest assets: `%s` is damaged: line %s has a control character in its file name",
					       path, num);
		for (i = 0; i < N_ASSETS; i++)
			if (strlen(asset_names[i]) == namelen && memcmp(asset_names[i], name, namelen) == 0)
				idx = (int)i;
		if (idx < 0)
			return damaged(err, dir, "the microvm guest assets: `%s` is damaged: line %s names `%s`, which is no guest asset (vmlinuz, rootfs.squashfs)",
				       path, num, shown);
		if (seen[idx])
			return damaged(err, dir, "the microvm guest assets: `%s` is damaged: line %s names `%s` a second time",
				       path, num, shown);
		seen[idx] = 1;
		memcpy(want[idx], d, 32);
	}
	return MBX_OK;
}

/* SHA-256 of what fd holds from its start. */
static int hash_fd(int fd, const char *path, uint8_t out[32], mbx_error **err)
{
	struct mbx_sha256 s;
	uint8_t *buf = malloc(READ_CHUNK);
	off_t off = 0;

	if (buf == NULL)
		return mbx__error_oom(err);
	mbx__sha256_init(&s);
	for (;;) {
		ssize_t n = MBX_RETRY_EINTR(pread(fd, buf, READ_CHUNK, off));

		if (n < 0) {
			int e = errno;

			free(buf);
			return mbx__error_set(err, MBX_ESYS, e, LAYER, "the microvm guest assets: read `%s`", path);
		}
		if (n == 0)
			break;
		mbx__sha256_update(&s, buf, (size_t)n);
		off += n;
	}
	free(buf);
	mbx__sha256_final(&s, out);
	hash_count++;
	return MBX_OK;
}

/* Verifies one asset against its manifest digest; stamp_lock is held. */
static int verify_asset(int dfd, const char *dir, const char *name, const uint8_t want[32], const char *stamp_path,
			int *loaded, int *dirty, mbx_error **err)
{
	char path[4200], got_hex[65], want_hex[65];
	struct file_key k, after;
	const uint8_t *stamped;
	uint8_t got[32];
	struct stat st;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open_checked(dfd, dir, name, &st, &rc, err);
	if (fd < 0) {
		if (errno == ENOENT && rc == MBX_OK) {
			char what[128];

			snprintf(what, sizeof(what), "`%s` is recorded in the manifest but missing", name);
			return missing(err, dir, what);
		}
		return rc;
	}
	key_of(&st, &k);
	stamped = stamp_find(&k);
	if (stamped == NULL && stamp_path != NULL && !*loaded) {
		stamp_file_load(stamp_path);
		*loaded = 1;
		stamped = stamp_find(&k);
	}
	/* A stamp only ever says "this state of the file was verified": one
	 * that disagrees with the manifest is checked against the bytes. */
	if (stamped != NULL && mbx__digest_equal(stamped, want, 32)) {
		close(fd);
		return MBX_OK;
	}
	rc = hash_fd(fd, path, got, err);
	if (rc == MBX_OK && fstat(fd, &st) < 0)
		rc = mbx__error_set(err, MBX_ESYS, errno, LAYER, "the microvm guest assets: fstat `%s`", path);
	close(fd);
	if (rc != MBX_OK)
		return rc;
	key_of(&st, &after);
	if (!mbx__digest_equal(got, want, 32)) {
		to_hex(got, got_hex);
		to_hex(want, want_hex);
		return damaged(err, dir, "the microvm guest asset `%s` is damaged: its SHA-256 is %s, the manifest says %s",
			       path, got_hex, want_hex);
	}
	if (key_equal(&k, &after)) { /* not changed while it was read */
		stamp_put(&k, got);
		*dirty = 1;
	}
	return MBX_OK;
}

/* "<dir>/<name>" (or a copy of dir for name NULL); NULL on ENOMEM. */
static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + (name ? strlen(name) + 1 : 0) + 1;
	char *s = malloc(n);

	if (s != NULL && name != NULL)
		snprintf(s, n, "%s/%s", dir, name);
	else if (s != NULL)
		snprintf(s, n, "%s", dir);
	return s;
}

static int find_locked(struct mbx_vm_assets *a, const char *dir, const char *stamp_path, mbx_error **err)
{
	char text[MANIFEST_MAX + 1], path[4200];
	uint8_t want[N_ASSETS][32];
	int seen[N_ASSETS] = { 0 }, dfd, fd, rc, loaded = 0, dirty = 0;
	struct stat st;
	ssize_t n;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		int e = errno;

		if (e == ENOENT)
			return missing(err, dir, "the directory does not exist");
		if (e == ELOOP || e == ENOTDIR) {
			struct stat lst;

			if (lstat(dir, &lst) == 0 && S_ISLNK(lst.st_mode)) {
				mbx__error_set(err, MBX_EPERM, 0, LAYER,
					       "the microvm guest assets: `%s` is a symbolic link (refused)", dir);
				mbx__error_suggest(err, "set MIMOBOX_VM_DIR to the directory it points to");
				return MBX_EPERM;
			}
			return missing(err, dir, "it is not a directory");
		}
		rc = mbx__error_set(err, e == EACCES ? MBX_EPERM : MBX_ESYS, e, LAYER,
				    "the microvm guest assets: open `%s`: %s", dir, strerror(e));
		if (e == EACCES)
			mbx__error_suggest(err, "set MIMOBOX_VM_DIR to a copy of the assets this user can read");
		return rc;
	}
	if (fstat(dfd, &st) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, LAYER, "the microvm guest assets: fstat `%s`", dir);
		goto out;
	}
	if ((rc = check_owner(&st, dir, err)) != MBX_OK)
		goto out;

	fd = open_checked(dfd, dir, "manifest", &st, &rc, err);
	if (fd < 0) {
		if (errno == ENOENT && rc == MBX_OK)
			rc = missing(err, dir, "it has no `manifest` (the assets were never built there, or the build did not finish)");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/manifest", dir);
	n = st.st_size > MANIFEST_MAX ? -1 : read_small(fd, text, sizeof(text));
	close(fd);
	if (n < 0) {
		rc = damaged(err, dir, "the microvm guest assets: `%s` is damaged: not a readable file of at most %d bytes",
			     path, MANIFEST_MAX);
		goto out;
	}
	if ((rc = parse_manifest(dir, text, (size_t)n, want, seen, err)) != MBX_OK)
		goto out;
	for (int i = 0; i < N_ASSETS; i++) {
		char what[160];

		if (seen[i])
			continue;
		/* An asset file the manifest does not know is what an
		 * interrupted build leaves: never use it. */
		if (fstatat(dfd, asset_names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, asset_names[i]);
			rc = damaged(err, dir, "the microvm guest assets: `%s` exists but the manifest does not record it (an interrupted build?)",
				     path);
		} else {
			snprintf(what, sizeof(what), "the manifest does not record `%s` (the build did not finish)", asset_names[i]);
			rc = missing(err, dir, what);
		}
		goto out;
	}
	for (int i = 0; i < N_ASSETS; i++) {
		rc = verify_asset(dfd, dir, asset_names[i], want[i], stamp_path, &loaded, &dirty, err);
		if (rc != MBX_OK)
			goto out;
	}
	if (dirty && stamp_path != NULL)
		stamp_file_save(stamp_path);
	{
		struct mbx_sha256 h;

		mbx__sha256_init(&h);
		for (int i = 0; i < N_ASSETS; i++)
			mbx__sha256_update(&h, want[i], 32);
		mbx__sha256_final(&h, a->id);
	}
	a->dir = join(dir, NULL);
	a->kernel = join(dir, asset_names[A_KERNEL]);
	a->rootfs = join(dir, asset_names[A_ROOTFS]);
	if (a->dir == NULL || a->kernel == NULL || a->rootfs == NULL)
		rc = mbx__error_oom(err);
out:
	close(dfd);
	return rc;
}

void mbx__vm_assets_release(struct mbx_vm_assets *a)
{
	if (a == NULL)
		return;
	free(a->dir);
	free(a->kernel);
	free(a->rootfs);
	a->dir = a->kernel = a->rootfs = NULL;
}

int mbx__vm_assets_find_in(struct mbx_vm_assets *a, const char *dir, const char *stamp_path, mbx_error **err)
{
	char *clean;
	size_t len;
	int rc;

	MBX_CHECK_ARG(a != NULL && dir != NULL, err);
	a->dir = a->kernel = a->rootfs = NULL;
	if (dir[0] != '/' || strlen(dir) > 4000) {
		mbx__error_set(err, MBX_EINVAL, 0, LAYER,
			       "the microvm guest asset directory must be an absolute path of at most 4000 bytes, not `%.200s`", dir);
		mbx__error_suggest(err, "set MIMOBOX_VM_DIR to an absolute path");
		return MBX_EINVAL;
	}
	clean = strdup(dir);
	if (clean == NULL)
		return mbx__error_oom(err);
	for (len = strlen(clean); len > 1 && clean[len - 1] == '/'; len--)
		clean[len - 1] = '\0';
	pthread_mutex_lock(&stamp_lock);
	rc = find_locked(a, clean, stamp_path, err);
	pthread_mutex_unlock(&stamp_lock);
	free(clean);
	if (rc != MBX_OK)
		mbx__vm_assets_release(a);
	return rc;
}

const char *mbx__vm_assets_dir(void)
{
	const char *env = getenv("MIMOBOX_VM_DIR");

	return env && *env ? env : MBX_VM_DEFAULT_DIR;
}

int mbx__vm_assets_find(struct mbx_vm_assets *a, mbx_error **err)
{
	char *base = NULL, *stamp = NULL;
	mbx_error *e = NULL;
	int rc;

	MBX_CHECK_ARG(a != NULL, err);
	/* The stamp file is an optimization: without a usable state
	 * directory every start hashes. */
	if (mbx__statedir_base(&base, &e) == MBX_OK && asprintf(&stamp, "%s/vm-assets.stamp", base) < 0)
		stamp = NULL;
	mbx_error_free(e);
	free(base);
	rc = mbx__vm_assets_find_in(a, mbx__vm_assets_dir(), stamp, err);
	free(stamp);
	return rc;
}

void mbx__vm_assets_forget(void)
{
	pthread_mutex_lock(&stamp_lock);
	memset(stamps, 0, sizeof(stamps));
	stamp_next = 0;
	pthread_mutex_unlock(&stamp_lock);
}

unsigned long mbx__vm_assets_hash_count(void)
{
	unsigned long n;

	pthread_mutex_lock(&stamp_lock);
	n = hash_count;
	pthread_mutex_unlock(&stamp_lock);
	return n;
}
