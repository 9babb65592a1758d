/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the format (snapshot.h), the user's key and the public API. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/microvm/vmsnap.h"
#include "keyfile.h"
#include "net/net.h"
#include "sha256.h"
#include "le.h"
#include "snapshot.h"
#include "statedir.h"

/* Config records. Unknown tags are refused: a new one needs a new format
 * version. */
enum {
	T_ISOLATION = 1, T_TRUST = 2, T_NETWORK = 3, T_DOMAIN = 4, T_TIMEOUT = 5, T_MEMORY = 6, T_DISK = 7,
	T_OUTPUT = 8, T_FILE_LIMIT = 9, T_CPU = 10, T_MAX_PROCS = 11, T_ENV = 12, T_WORKDIR = 13, T_HOSTNAME = 14,
	T_DEGRADED = 15, T_HOST_OVERRIDE = 16, T_ALLOW_PRIVATE = 17, T_CA_PEM = 18, T_NET_LIMIT = 19,
	T_HTTP_RULE = 20, T_NOTE = 21,
};
#define MAX_RECORDS 100000u
#define MAX_STRING (1u << 20)

/* ==== writing the config ==== */

static int put_rec(struct mbx_buf *b, uint16_t tag, const void *v, size_t len)
{
	uint8_t h[6];

	h[0] = (uint8_t)tag;
	h[1] = (uint8_t)(tag >> 8);
	mbx__le32(h + 2, (uint32_t)len);
	return mbx__buf_append(b, h, 6) < 0 || mbx__buf_append(b, v, len) < 0 ? -1 : 0;
}

static int put_u64(struct mbx_buf *b, uint16_t tag, uint64_t v)
{
	uint8_t p[8];

	mbx__le64(p, v);
	return put_rec(b, tag, p, 8);
}

static int put_str(struct mbx_buf *b, uint16_t tag, const char *s)
{
	return put_rec(b, tag, s, strlen(s));
}

static int put_config(struct mbx_buf *b, const mbx_config *c, const struct mbx_buf *note)
{
	const struct mbx_netcfg *n = c->net;
	int r = 0;

	r |= put_u64(b, T_ISOLATION, c->isolation);
	r |= put_u64(b, T_TRUST, c->trust);
	r |= put_u64(b, T_NETWORK, c->network);
	for (size_t i = 0; i < c->ndomains; i++)
		r |= put_str(b, T_DOMAIN, c->domains[i]);
	r |= put_u64(b, T_TIMEOUT, c->timeout_ms);
	r |= put_u64(b, T_MEMORY, c->memory_bytes);
	if (c->disk_explicit)
		r |= put_u64(b, T_DISK, c->disk_bytes);
	r |= put_u64(b, T_OUTPUT, c->output_limit);
	if (c->file_limit)
		r |= put_u64(b, T_FILE_LIMIT, c->file_limit);
	if (c->millicpus)
		r |= put_u64(b, T_CPU, c->millicpus);
	r |= put_u64(b, T_MAX_PROCS, c->max_procs);
	for (size_t i = 0; i < c->env.n; i++)
		r |= put_str(b, T_ENV, c->env.kv[i]);
	if (c->workdir)
		r |= put_str(b, T_WORKDIR, c->workdir);
	if (c->hostname)
		r |= put_str(b, T_HOSTNAME, c->hostname);
	r |= put_u64(b, T_DEGRADED, c->allow_degraded ? 1 : 0);
	if (n) {
		for (size_t i = 0; i < n->novr; i++) {
			char addr[64], *v = NULL;

			mbx__netaddr_str(&n->ovr[i].addr, addr, sizeof(addr));
			if (asprintf(&v, "%s=%s", n->ovr[i].name, addr) < 0)
				return -1;
			r |= put_str(b, T_HOST_OVERRIDE, v);
			free(v);
		}
		r |= put_u64(b, T_ALLOW_PRIVATE, n->allow_private ? 1 : 0);
		if (n->ca_pem)
			r |= put_rec(b, T_CA_PEM, n->ca_pem, n->ca_len);
		for (uint32_t i = 1; i <= MBX_NET_LIMIT_MAX; i++) {
			uint8_t p[12];

			if (n->limit[i] == 0)
				continue;
			mbx__le32(p, i);
			mbx__le64(p + 4, n->limit[i] == UINT64_MAX ? 0 : n->limit[i]);
			r |= put_rec(b, T_NET_LIMIT, p, sizeof(p));
		}
		for (size_t i = 0; i < n->nrules; i++)
			r |= put_str(b, T_HTTP_RULE, n->rules[i].text);
	}
	if (note->len)
		r |= put_rec(b, T_NOTE, note->data, note->len);
	return r ? -1 : 0;
}

/* The memory section (snapshot.h): the data extents of snap->mem_fd. */
static int put_memory(struct mbx_buf *out, const struct mbx_snapshot *snap, mbx_error **err)
{
	uint8_t rec[16];
	off_t pos = 0;

	mbx__le64(rec, snap->mem_size);
	if (mbx__buf_append(out, rec, 8) < 0)
		return mbx__error_oom(err);
	while ((uint64_t)pos < snap->mem_size) {
		off_t data = lseek(snap->mem_fd, pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "read a snapshot's memory");
		hole = lseek(snap->mem_fd, data, SEEK_HOLE);
		if (hole < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "read a snapshot's memory");
		if ((uint64_t)hole > snap->mem_size)
			hole = (off_t)snap->mem_size;
		/* Extents on page boundaries (tmpfs keeps whole pages). */
		data &= ~(off_t)(MBX_SNAP_PAGE - 1);
		hole = (hole + MBX_SNAP_PAGE - 1) & ~(off_t)(MBX_SNAP_PAGE - 1);
		mbx__le64(rec, (uint64_t)data);
		mbx__le64(rec + 8, (uint64_t)(hole - data));
		if (mbx__buf_append(out, rec, 16) < 0 || mbx__buf_reserve(out, (size_t)(hole - data)) < 0)
			return mbx__error_oom(err);
		for (off_t o = data; o < hole;) {
			ssize_t n = pread(snap->mem_fd, out->data + out->len, (size_t)(hole - o), o);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return mbx__error_set(err, MBX_ESYS, n < 0 ? errno : EIO, NULL, "read a snapshot's memory");
			out->len += (size_t)n;
			o += n;
		}
		pos = hole;
	}
	return MBX_OK;
}

int mbx__snapshot_encode(const struct mbx_snapshot *snap, const uint8_t key[MBX_SNAP_KEY_LEN], struct mbx_buf *out,
			 mbx_error **err)
{
	struct mbx_buf cfg = { 0 };
	struct mbx_hmac_sha256 mac;
	uint8_t h[MBX_SNAP_HEADER_LEN] = { 0 }, digest[MBX_SNAP_MAC_LEN];
	size_t start = out->len, mstart;
	int rc;

	if (put_config(&cfg, snap->cfg, &snap->note) < 0) {
		mbx__buf_release(&cfg);
		return mbx__error_oom(err);
	}
	memcpy(h, MBX_SNAP_MAGIC, 8);
	mbx__le32(h + 8, MBX_SNAP_VERSION);
	mbx__le32(h + 12, snap->isolation);
	mbx__le32(h + 16, snap->mem_fd >= 0 ? MBX_SNAP_F_MEMORY : 0);
	mbx__le32(h + 20, MBX_SNAP_HEADER_LEN);
	mbx__le64(h + 24, cfg.len);
	mbx__le64(h + 32, snap->payload.len);
	if (mbx__buf_append(out, h, sizeof(h)) < 0 || mbx__buf_append(out, cfg.data, cfg.len) < 0 ||
	    mbx__buf_append(out, snap->payload.data, snap->payload.len) < 0) {
		mbx__buf_release(&cfg);
		out->len = start;
		return mbx__error_oom(err);
	}
	mbx__buf_release(&cfg);
	mstart = out->len;
	if (snap->mem_fd >= 0) {
		rc = put_memory(out, snap, err);
		if (rc < 0) {
			out->len = start;
			return rc;
		}
		mbx__le64(out->data + start + 40, (uint64_t)(out->len - mstart));
	}
	mbx__hmac_sha256_init(&mac, key, MBX_SNAP_KEY_LEN);
	mbx__hmac_sha256_update(&mac, out->data + start, out->len - start);
	mbx__hmac_sha256_final(&mac, digest);
	if (mbx__buf_append(out, digest, sizeof(digest)) < 0) {
		out->len = start;
		return mbx__error_oom(err);
	}
	return MBX_OK;
}

/* ==== a snapshot's memory ==== */

int mbx__snapshot_new_memory(uint64_t size, int *fd, mbx_error **err)
{
	int low = memfd_create("mimobox-snapshot-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (low < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "create the memory of a snapshot (memfd_create)");
	/* Above the low numbers a program rearranges after fork() (stdio and
	 * the few it passes on), where it can keep it open. */
	*fd = fcntl(low, F_DUPFD_CLOEXEC, 64);
	if (*fd < 0)
		*fd = low;
	else
		close(low);
	if (ftruncate(*fd, (off_t)size) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		return mbx__error_set(err, e == ENOSPC || e == ENOMEM ? MBX_ENOMEM : MBX_ESYS, e, NULL,
				      "size the memory of a snapshot (%llu bytes)", (unsigned long long)size);
	}
	return MBX_OK;
}

int mbx__snapshot_seal_memory(int fd, mbx_error **err)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "seal the memory of a snapshot");
	return MBX_OK;
}

int mbx__snapshot_copy_memory(int src, int dst, uint64_t size, mbx_error **err)
{
	static const size_t chunk = 1u << 20;
	char *buf = malloc(chunk);
	off_t pos = 0;
	int rc = MBX_OK;

	if (buf == NULL)
		return mbx__error_oom(err);
	while ((uint64_t)pos < size && rc == MBX_OK) {
		off_t data = lseek(src, pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 || (hole = lseek(src, data, SEEK_HOLE)) < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "read a VM's memory");
			break;
		}
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		while (data < hole) {
			size_t want = (size_t)(hole - data) < chunk ? (size_t)(hole - data) : chunk;
			ssize_t n = pread(src, buf, want, data);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = mbx__error_set(err, MBX_ESYS, n < 0 ? errno : EIO, NULL, "read a VM's memory");
				break;
			}
			/* Pages of zeros stay holes: they cost nothing then. */
			for (ssize_t o = 0; o < n; o += MBX_SNAP_PAGE) {
				size_t len = (size_t)(n - o) < MBX_SNAP_PAGE ? (size_t)(n - o) : MBX_SNAP_PAGE;
				static const char zero[MBX_SNAP_PAGE];

				if (memcmp(buf + o, zero, len) == 0)
					continue;
				if (pwrite(dst, buf + o, len, data + o) != (ssize_t)len) {
					rc = mbx__error_set(err, errno == ENOSPC || errno == ENOMEM ? MBX_ENOMEM : MBX_ESYS, errno,
							    NULL, "write the memory of a snapshot");
					break;
				}
			}
			data += n;
			if (rc < 0)
				break;
		}
		pos = hole;
	}
	free(buf);
	return rc;
}

/* ==== reading ==== */

#define SUGGEST_WHOLE "use a snapshot file written by mbx_snapshot_save() or `mimobox snapshot`, whole and unchanged"
/* An MBX_EINVAL error about a malformed snapshot; `fmt` is a literal. */
#define bad(err, fmt, what) \
	(mbx__error_set((err), MBX_EINVAL, 0, NULL, fmt, what), mbx__error_suggest((err), SUGGEST_WHOLE), MBX_EINVAL)

static int as_u64(const uint8_t *v, uint32_t len, uint64_t *out)
{
	if (len != 8)
		return -1;
	*out = mbx__get_le64(v);
	return 0;
}

/* A string value: no NUL inside, bounded; malloc'd copy. */
static char *as_str(const uint8_t *v, uint32_t len)
{
	char *s;

	if (len > MAX_STRING || memchr(v, '\0', len) != NULL)
		return NULL;
	s = malloc((size_t)len + 1);
	if (s) {
		memcpy(s, v, len);
		s[len] = '\0';
	}
	return s;
}

static int set_ca_pem(mbx_config *c, const uint8_t *v, uint32_t len, mbx_error **err)
{
	char *pem;

	if (len == 0 || len > (16u << 20) || memchr(v, '\0', len) != NULL)
		return bad(err, "snapshot: the %s is malformed", "CA certificates record");
	if (c->net == NULL && (c->net = calloc(1, sizeof(*c->net))) == NULL)
		return mbx__error_oom(err);
	if (c->net->ca_pem)
		return bad(err, "snapshot: %s given twice", "the CA certificates");
	pem = malloc((size_t)len + 1);
	if (pem == NULL)
		return mbx__error_oom(err);
	memcpy(pem, v, len);
	pem[len] = '\0';
	if (strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL) {
		free(pem);
		return bad(err, "snapshot: the %s holds no PEM certificate", "CA certificates record");
	}
	c->net->ca_pem = pem;
	c->net->ca_len = len;
	return MBX_OK;
}

/* Applies one record through the public setters. */
static int apply_rec(mbx_config *c, uint16_t tag, const uint8_t *v, uint32_t len, mbx_error **err)
{
	uint64_t x = 0;
	char *s = NULL, *eq;
	int rc;

	switch (tag) {
	case T_ISOLATION: case T_TRUST: case T_NETWORK: case T_TIMEOUT: case T_MEMORY: case T_DISK: case T_OUTPUT:
	case T_FILE_LIMIT: case T_CPU: case T_MAX_PROCS: case T_DEGRADED: case T_ALLOW_PRIVATE:
		if (as_u64(v, len, &x) < 0)
			return bad(err, "snapshot: a config record (%s) has the wrong length", "number");
		break;
	case T_CA_PEM:
		return set_ca_pem(c, v, len, err);
	case T_NET_LIMIT:
		if (len != 12)
			return bad(err, "snapshot: a config record (%s) has the wrong length", "network limit");
		return mbx_config_set_network_limit(c, mbx__get_le32(v), mbx__get_le64(v + 4), err);
	case T_DOMAIN: case T_ENV: case T_WORKDIR: case T_HOSTNAME: case T_HOST_OVERRIDE: case T_HTTP_RULE:
		s = as_str(v, len);
		if (s == NULL)
			return len > MAX_STRING || memchr(v, '\0', len) ? bad(err, "snapshot: a config record (%s) is malformed", "text")
									 : mbx__error_oom(err);
		break;
	default:
		return bad(err, "snapshot: unknown config record (%s)", "written by a newer mimobox?");
	}
	switch (tag) {
	case T_ISOLATION:
		rc = x > 0xffu ? bad(err, "snapshot: bad %s", "isolation") : mbx_config_set_isolation(c, (mbx_isolation_t)x, err);
		break;
	case T_TRUST:
		rc = x > 0xffu ? bad(err, "snapshot: bad %s", "trust level") : mbx_config_set_trust(c, (mbx_trust_t)x, err);
		break;
	case T_NETWORK:
		rc = x > 0xffu ? bad(err, "snapshot: bad %s", "network policy") : mbx_config_set_network(c, (mbx_network_t)x, err);
		break;
	case T_TIMEOUT: rc = mbx_config_set_timeout_ms(c, x, err); break;
	case T_MEMORY: rc = mbx_config_set_memory_limit(c, x, err); break;
	case T_DISK: rc = mbx_config_set_disk_limit(c, x, err); break;
	case T_OUTPUT: rc = mbx_config_set_output_limit(c, x, err); break;
	case T_FILE_LIMIT: rc = mbx_config_set_file_limit(c, x, err); break;
	case T_CPU:
		rc = x > UINT32_MAX ? bad(err, "snapshot: bad %s", "CPU limit") : mbx_config_set_cpu_limit(c, (uint32_t)x, err);
		break;
	case T_MAX_PROCS:
		rc = x > UINT32_MAX ? bad(err, "snapshot: bad %s", "process limit")
				    : mbx_config_set_max_processes(c, (uint32_t)x, err);
		break;
	case T_DEGRADED:
		rc = x > 1 ? bad(err, "snapshot: bad %s", "degraded flag") : MBX_OK;
		if (rc == MBX_OK)
			mbx_config_set_allow_degraded(c, (int)x);
		break;
	case T_ALLOW_PRIVATE:
		rc = x > 1 ? bad(err, "snapshot: bad %s", "private-network flag") : MBX_OK;
		if (rc == MBX_OK)
			mbx_config_set_network_allow_private(c, (int)x);
		break;
	case T_DOMAIN: rc = mbx_config_add_allowed_domain(c, s, err); break;
	case T_WORKDIR: rc = mbx_config_set_workdir(c, s, err); break;
	case T_HOSTNAME: rc = mbx_config_set_hostname(c, s, err); break;
	case T_HTTP_RULE: rc = mbx_config_add_http_rule(c, s, err); break;
	case T_ENV:
	case T_HOST_OVERRIDE:
		eq = strchr(s, '=');
		if (eq == NULL) {
			rc = bad(err, "snapshot: a config record (%s) has no `=`", tag == T_ENV ? "environment" : "host override");
			break;
		}
		*eq = '\0';
		rc = tag == T_ENV ? mbx_config_set_env(c, s, eq + 1, err) : mbx_config_add_host_override(c, s, eq + 1, err);
		break;
	default:
		rc = MBX_OK;
		break;
	}
	free(s);
	return rc;
}

static int parse_config(struct mbx_snapshot *snap, const uint8_t *p, size_t len, mbx_error **err)
{
	mbx_config *c = snap->cfg;
	size_t off = 0, n = 0;
	int rc;

	while (off < len) {
		uint16_t tag;
		uint32_t vlen;

		if (++n > MAX_RECORDS)
			return bad(err, "snapshot: %s", "too many config records");
		if (len - off < 6)
			return bad(err, "snapshot: %s", "the config ends inside a record");
		tag = (uint16_t)(p[off] | p[off + 1] << 8);
		vlen = mbx__get_le32(p + off + 2);
		off += 6;
		if (vlen > len - off)
			return bad(err, "snapshot: %s", "a config record runs past the config");
		if (tag == T_NOTE) {
			if (vlen == 0 || vlen > MBX_SNAPSHOT_NOTE_MAX || snap->note.len)
				return bad(err, "snapshot: %s", "the caller's note is empty, too long or given twice");
			rc = mbx__buf_append(&snap->note, p + off, vlen) < 0 ? mbx__error_oom(err) : MBX_OK;
		} else {
			rc = apply_rec(c, tag, p + off, vlen, err);
		}
		if (rc < 0) {
			mbx__error_wrap(err, "snapshot config");
			return rc;
		}
		off += vlen;
	}
	return MBX_OK;
}

/* Checks the memory section and builds the sealed memfd it describes. */
static int load_memory(struct mbx_snapshot *snap, const uint8_t *p, size_t len, mbx_error **err)
{
	uint64_t size, end = 0;
	size_t off = 8;
	int rc;

	if (len < 8)
		return bad(err, "snapshot: %s", "the memory section is truncated");
	size = mbx__get_le64(p);
	if (size == 0 || size % MBX_SNAP_PAGE || size > (1ull << 40))
		return bad(err, "snapshot: %s", "the memory size is not a whole number of pages up to 1 TiB");
	/* Every extent checked before anything is written. */
	while (off < len) {
		uint64_t o, l;

		if (len - off < 16)
			return bad(err, "snapshot: %s", "a memory extent is truncated");
		o = mbx__get_le64(p + off);
		l = mbx__get_le64(p + off + 8);
		if (o % MBX_SNAP_PAGE || l % MBX_SNAP_PAGE || l == 0 || o < end || o > size || l > size - o ||
		    l > len - off - 16)
			return bad(err, "snapshot: %s", "a memory extent is malformed (unaligned, overlapping, outside the memory or truncated)");
		end = o + l;
		off += 16 + (size_t)l;
	}
	rc = mbx__snapshot_new_memory(size, &snap->mem_fd, err);
	for (off = 8; rc == MBX_OK && off < len;) {
		uint64_t o = mbx__get_le64(p + off), l = mbx__get_le64(p + off + 8);

		for (uint64_t done = 0; done < l;) {
			ssize_t n = pwrite(snap->mem_fd, p + off + 16 + done, (size_t)(l - done), (off_t)(o + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = mbx__error_set(err, errno == ENOSPC || errno == ENOMEM ? MBX_ENOMEM : MBX_ESYS, errno, NULL,
						    "write the memory of a snapshot");
				break;
			}
			done += (uint64_t)n;
		}
		off += 16 + (size_t)l;
	}
	if (rc == MBX_OK)
		rc = mbx__snapshot_seal_memory(snap->mem_fd, err);
	snap->mem_size = size;
	return rc;
}

int mbx__snapshot_decode(struct mbx_snapshot **out, const uint8_t *data, size_t len, const uint8_t key[MBX_SNAP_KEY_LEN],
			 mbx_error **err)
{
	struct mbx_snapshot *snap;
	uint8_t digest[MBX_SNAP_MAC_LEN];
	uint64_t clen, plen, mlen;
	uint32_t version, backend, flags;
	int rc;

	*out = NULL;
	if (data == NULL && len)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot: data is NULL");
	if (len < 8 || memcmp(data, MBX_SNAP_MAGIC, 8) != 0)
		return bad(err, "not a mimobox snapshot (%s)", len < 8 ? "too short" : "wrong magic");
	if (len < MBX_SNAP_HEADER_LEN + MBX_SNAP_MAC_LEN)
		return bad(err, "snapshot: %s", "truncated (shorter than its header and MAC)");
	version = mbx__get_le32(data + 8);
	backend = mbx__get_le32(data + 12);
	flags = mbx__get_le32(data + 16);
	if (version != MBX_SNAP_VERSION) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot: format version %u is not supported (this mimobox reads version %u)",
			       version, MBX_SNAP_VERSION);
		mbx__error_suggest(err, "make the snapshot again with this version of mimobox");
		return MBX_EINVAL;
	}
	if (backend != MBX_ISOLATION_OS && backend != MBX_ISOLATION_WASM && backend != MBX_ISOLATION_MICROVM) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot: unknown backend %u", backend);
		mbx__error_suggest(err, SUGGEST_WHOLE);
		return MBX_EINVAL;
	}
	mlen = mbx__get_le64(data + 40);
	if ((flags & ~MBX_SNAP_F_MEMORY) != 0 || mbx__get_le32(data + 20) != MBX_SNAP_HEADER_LEN ||
	    (!(flags & MBX_SNAP_F_MEMORY) && mlen != 0) || ((flags & MBX_SNAP_F_MEMORY) && backend != MBX_ISOLATION_MICROVM))
		return bad(err, "snapshot: %s", "unknown flags or header layout");
	clen = mbx__get_le64(data + 24);
	plen = mbx__get_le64(data + 32);
	if (clen > MBX_SNAP_MAX_CONFIG)
		return bad(err, "snapshot: %s", "the config is too large");
	if (plen > len || mlen > len || clen + plen + mlen != len - MBX_SNAP_HEADER_LEN - MBX_SNAP_MAC_LEN)
		return bad(err, "snapshot: %s", clen + plen + mlen > len - MBX_SNAP_HEADER_LEN - MBX_SNAP_MAC_LEN
					       ? "truncated (shorter than its header says)" : "trailing bytes after the MAC");
	mbx__hmac_sha256(key, MBX_SNAP_KEY_LEN, data, len - MBX_SNAP_MAC_LEN, digest);
	if (!mbx__digest_equal(digest, data + len - MBX_SNAP_MAC_LEN, MBX_SNAP_MAC_LEN)) {
		mbx__error_set(err, MBX_EPERM, 0, NULL,
			       "snapshot: the MAC does not check out: it was altered or made under another user's or host's key");
		mbx__error_suggest(err, "restore snapshots only where they were made, by the user who made them");
		return MBX_EPERM;
	}
	snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return mbx__error_oom(err);
	snap->isolation = (mbx_isolation_t)backend;
	snap->mem_fd = -1;
	rc = mbx_config_new(&snap->cfg, err);
	if (rc == MBX_OK)
		rc = parse_config(snap, data + MBX_SNAP_HEADER_LEN, (size_t)clen, err);
	if (rc == MBX_OK && snap->cfg->isolation != snap->isolation)
		rc = bad(err, "snapshot: %s", "the config's isolation is not the snapshot's backend");
	if (rc == MBX_OK)
		rc = mbx__config_validate(snap->cfg, err);
	if (rc == MBX_OK && (backend == MBX_ISOLATION_OS || backend == MBX_ISOLATION_WASM))
		rc = mbx__snapfiles_check(data + MBX_SNAP_HEADER_LEN + clen, (size_t)plen, backend == MBX_ISOLATION_WASM, err);
	else if (rc == MBX_OK && backend == MBX_ISOLATION_MICROVM)
		rc = mbx__vmsnap_check(data + MBX_SNAP_HEADER_LEN + clen, (size_t)plen, (flags & MBX_SNAP_F_MEMORY) != 0,
				       snap->cfg, err);
	if (rc == MBX_OK && (flags & MBX_SNAP_F_MEMORY)) {
		rc = load_memory(snap, data + MBX_SNAP_HEADER_LEN + clen + plen, (size_t)mlen, err);
		if (rc == MBX_OK && snap->mem_size != snap->cfg->memory_bytes)
			rc = bad(err, "snapshot: %s", "the memory's size is not the config's");
	}
	if (rc == MBX_OK && plen && mbx__buf_append(&snap->payload, data + MBX_SNAP_HEADER_LEN + clen, (size_t)plen) < 0)
		rc = mbx__error_oom(err);
	if (rc < 0) {
		mbx_snapshot_free(snap);
		return rc;
	}
	*out = snap;
	return MBX_OK;
}

/* ==== the user's key ==== */

int mbx__snapshot_key(uint8_t key[MBX_SNAP_KEY_LEN], mbx_error **err)
{
	char *base = NULL, *path = NULL;
	int rc;

	rc = mbx__statedir_base(&base, err);
	if (rc < 0)
		return rc;
	if (asprintf(&path, "%s/snapshot.key", base) < 0) {
		free(base);
		return mbx__error_oom(err);
	}
	rc = mbx__keyfile_load(path, key, "snapshot key", NULL, "snapshots made so far can no longer be restored", err);
	free(base);
	free(path);
	return rc;
}

/* ==== the public API ==== */

void mbx_snapshot_free(mbx_snapshot *snap)
{
	if (snap == NULL)
		return;
	mbx_config_free(snap->cfg);
	if (snap->mem_fd >= 0)
		close(snap->mem_fd);
	mbx__buf_release(&snap->payload);
	mbx__buf_release(&snap->note);
	free(snap);
}

int mbx_snapshot_set_note(mbx_snapshot *snap, const void *data, size_t len, mbx_error **err)
{
	if (snap == NULL || (data == NULL && len))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_set_note: snapshot or data is NULL");
	if (len > MBX_SNAPSHOT_NOTE_MAX)
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "a snapshot's note holds at most %zu bytes, not %zu",
				      MBX_SNAPSHOT_NOTE_MAX, len);
	snap->note.len = 0;
	if (len && mbx__buf_append(&snap->note, data, len) < 0)
		return mbx__error_oom(err);
	return MBX_OK;
}

const uint8_t *mbx_snapshot_note(const mbx_snapshot *snap, size_t *len)
{
	if (len)
		*len = snap ? snap->note.len : 0;
	return snap && snap->note.len ? snap->note.data : NULL;
}

mbx_isolation_t mbx_snapshot_isolation(const mbx_snapshot *snap)
{
	return snap ? snap->isolation : MBX_ISOLATION_AUTO;
}

uint32_t mbx_snapshot_contents(const mbx_snapshot *snap)
{
	if (snap == NULL)
		return 0;
	/* A microVM snapshot is its running guest; the others, files. */
	if (snap->isolation == MBX_ISOLATION_MICROVM)
		return MBX_SNAPSHOT_FILES | MBX_SNAPSHOT_PROCESSES | MBX_SNAPSHOT_MEMORY;
	return MBX_SNAPSHOT_FILES;
}

uint64_t mbx_snapshot_memory_size(const mbx_snapshot *snap, int *fd)
{
	if (fd)
		*fd = snap ? snap->mem_fd : -1;
	return (snap && snap->mem_fd >= 0) ? snap->mem_size : 0;
}

uint64_t mbx_snapshot_size(const mbx_snapshot *snap)
{
	return snap ? snap->payload.len : 0;
}

static int encode_user(const mbx_snapshot *snap, struct mbx_buf *out, mbx_error **err)
{
	uint8_t key[MBX_SNAP_KEY_LEN];
	int rc;

	if (snap == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot is NULL");
	rc = mbx__snapshot_key(key, err);
	if (rc == MBX_OK)
		rc = mbx__snapshot_encode(snap, key, out, err);
	memset(key, 0, sizeof(key));
	return rc;
}

int mbx_snapshot_to_bytes(const mbx_snapshot *snap, uint8_t **data, size_t *len, mbx_error **err)
{
	struct mbx_buf b = { 0 };
	int rc;

	if (data == NULL || len == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_to_bytes: data or len is NULL");
	*data = NULL;
	*len = 0;
	rc = encode_user(snap, &b, err);
	if (rc < 0) {
		mbx__buf_release(&b);
		return rc;
	}
	*data = b.data;
	*len = b.len;
	return MBX_OK;
}

int mbx_snapshot_from_bytes(mbx_snapshot **out, const uint8_t *data, size_t len, mbx_error **err)
{
	uint8_t key[MBX_SNAP_KEY_LEN];
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_from_bytes: out is NULL");
	*out = NULL;
	rc = mbx__snapshot_key(key, err);
	if (rc == MBX_OK)
		rc = mbx__snapshot_decode(out, data, len, key, err);
	memset(key, 0, sizeof(key));
	return rc;
}

int mbx_snapshot_save(const mbx_snapshot *snap, const char *path, mbx_error **err)
{
	struct mbx_buf b = { 0 };
	char *tmp = NULL;
	uint64_t r = 0;
	size_t off = 0;
	int fd, rc;

	if (path == NULL || path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_save: no path given");
	rc = encode_user(snap, &b, err);
	if (rc < 0) {
		mbx__buf_release(&b);
		return rc;
	}
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r) || asprintf(&tmp, "%s.tmp-%016llx", path, (unsigned long long)r) < 0) {
		mbx__buf_release(&b);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "save snapshot `%s`", path);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = mbx__error_set(err, errno == ENOENT || errno == ENOTDIR ? MBX_ENOTFOUND : errno == EACCES ? MBX_EPERM : MBX_ESYS,
				    errno, NULL, "save snapshot: create `%s`", tmp);
		goto out;
	}
	while (off < b.len) {
		ssize_t n = write(fd, b.data + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < b.len || fsync(fd) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "save snapshot: write `%s`", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "save snapshot `%s`", path);
		unlink(tmp);
	}
out:
	free(tmp);
	mbx__buf_release(&b);
	return rc;
}

int mbx_snapshot_load(mbx_snapshot **out, const char *path, mbx_error **err)
{
	struct mbx_buf b = { 0 };
	struct stat st;
	uint8_t chunk[65536];
	int fd, rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_load: out is NULL");
	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_snapshot_load: no path given");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return mbx__error_set(err, errno == ENOENT || errno == ENOTDIR ? MBX_ENOTFOUND : errno == EACCES ? MBX_EPERM : MBX_ESYS,
				      errno, NULL, "load snapshot `%s`", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "load snapshot: `%s` is not a regular file", path);
	}
	/* One allocation of the size the file has; it may still change under
	 * us, so the reads decide (the format checks the length anyway). */
	if (st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX / 2 && (b.data = malloc((size_t)st.st_size + 1)) != NULL)
		b.cap = (size_t)st.st_size + 1;
	for (;;) {
		ssize_t n;

		if (b.len < b.cap)
			n = read(fd, b.data + b.len, b.cap - b.len);
		else
			n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "load snapshot: read `%s`", path);
			close(fd);
			mbx__buf_release(&b);
			return rc;
		}
		if (n == 0)
			break;
		if (b.len < b.cap)
			b.len += (size_t)n;
		else if (mbx__buf_append(&b, chunk, (size_t)n) < 0) {
			close(fd);
			mbx__buf_release(&b);
			return mbx__error_oom(err);
		}
	}
	close(fd);
	rc = mbx_snapshot_from_bytes(out, b.data, b.len, err);
	mbx__buf_release(&b);
	if (rc < 0)
		mbx__error_wrap(err, "load snapshot `%s`", path);
	return rc;
}

/* The core side of snapshot, restore and fork: capability checks and the
 * config. Building the sandbox itself is sandbox.c's (mbx__sandbox_build). */

int mbx_sandbox_snapshot(mbx_snapshot **out, mbx_sandbox *sb, mbx_error **err)
{
	struct mbx_snapshot *snap;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_snapshot: out is NULL");
	*out = NULL;
	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_snapshot: sandbox is NULL");
	if (sb->destroyed)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
	if (!mbx__backend_has(sb, MBX_BACKEND_CAP_SNAPSHOT) || sb->ops->snapshot == NULL)
		return mbx__error_set(err, MBX_ENOTSUP, 0, sb->ops->name, "snapshots are not available on the %s backend",
				      sb->ops->name);
	snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return mbx__error_oom(err);
	snap->isolation = sb->ops->isolation;
	snap->mem_fd = -1;
	rc = mbx__config_copy(sb->cfg, &snap->cfg, err);
	if (rc == MBX_OK) {
		/* Mounts are host paths: never part of a snapshot. */
		for (size_t i = 0; i < snap->cfg->nmounts; i++) {
			free(snap->cfg->mounts[i].host);
			free(snap->cfg->mounts[i].sandbox);
		}
		free(snap->cfg->mounts);
		snap->cfg->mounts = NULL;
		snap->cfg->nmounts = 0;
		snap->cfg->isolation = sb->ops->isolation;
		rc = mbx__sandbox_exclusive_begin(sb, "a snapshot", err);
		if (rc == MBX_OK) {
			rc = sb->ops->snapshot(sb, snap, err);
			rc = mbx__sandbox_after(sb, sb->ops->client ? sb->ops->client(sb) : NULL, rc, err);
			mbx__sandbox_exclusive_end(sb);
		}
	}
	if (rc < 0) {
		mbx__error_wrap(err, "snapshot of sandbox %s", sb->id);
		mbx_snapshot_free(snap);
		return rc;
	}
	*out = snap;
	return MBX_OK;
}
