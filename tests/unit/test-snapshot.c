/* SPDX-License-Identifier: Apache-2.0 */
/* The snapshot format (src/core/snapshot.h): round trip, and every kind of
 * bad snapshot refused before anything is restored. */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "tap.h"

#include "internal.h"
#include "net/net.h"
#include "sha256.h"
#include "snapshot.h"
#include "backend/microvm/vmsnap.h"
#include "proto/proto.h"

static const uint8_t key1[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t key2[32] = { 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

/* ---- payload records ---- */
static void rec(struct mbx_buf *b, uint8_t kind, uint16_t mode, const char *path, const void *data, uint64_t len)
{
	uint8_t h[7] = { kind, (uint8_t)mode, (uint8_t)(mode >> 8) };
	uint32_t n = (uint32_t)strlen(path);

	memcpy(h + 3, &n, 4); /* little-endian host (x86-64, aarch64) */
	mbx__buf_append(b, h, 7);
	mbx__buf_append(b, path, n);
	if (kind == MBX_SNAPF_FILE) {
		mbx__buf_append(b, &len, 8);
		mbx__buf_append(b, data, (size_t)len);
	} else if (kind == MBX_SNAPF_SYMLINK) {
		uint32_t l = (uint32_t)len;

		mbx__buf_append(b, &l, 4);
		mbx__buf_append(b, data, (size_t)len);
	}
}

static void good_payload(struct mbx_buf *b)
{
	rec(b, MBX_SNAPF_DIR, 0755, "/workspace/a", NULL, 0);
	rec(b, MBX_SNAPF_FILE, 0644, "/workspace/a/f", "hello", 5);
	rec(b, MBX_SNAPF_FILE, 0600, "/workspace/empty", "", 0);
	rec(b, MBX_SNAPF_SYMLINK, 0777, "/workspace/l", "a/f", 3);
	rec(b, MBX_SNAPF_DIR, 01777, "/tmp/t", NULL, 0);
	rec(b, MBX_SNAPF_FILE, 0644, "/dev/shm/s", "x", 1);
	mbx__buf_append(b, "\0", 1);
}

static struct mbx_snapshot *new_snap(void)
{
	struct mbx_snapshot *s = calloc(1, sizeof(*s));

	s->mem_fd = -1;
	s->isolation = MBX_ISOLATION_OS;
	mbx_config_new(&s->cfg, NULL);
	mbx_config_set_isolation(s->cfg, MBX_ISOLATION_OS, NULL);
	mbx_config_set_env(s->cfg, "A", "1=2", NULL);
	mbx_config_set_env(s->cfg, "B", "", NULL);
	mbx_config_set_hostname(s->cfg, "box", NULL);
	mbx_config_set_workdir(s->cfg, "/tmp", NULL);
	mbx_config_set_memory_limit(s->cfg, 300ull << 20, NULL);
	mbx_config_set_disk_limit(s->cfg, 100ull << 20, NULL);
	mbx_config_set_timeout_ms(s->cfg, 1234, NULL);
	mbx_config_set_max_processes(s->cfg, 17, NULL);
	mbx_config_set_network(s->cfg, MBX_NETWORK_ALLOW_DOMAINS, NULL);
	mbx_config_add_allowed_domain(s->cfg, "example.invalid", NULL);
	mbx_config_add_allowed_domain(s->cfg, "*.test.invalid", NULL);
	mbx_config_add_host_override(s->cfg, "api.invalid", "127.0.0.1", NULL);
	mbx_config_add_http_rule(s->cfg, "allow GET example.invalid/v1/*", NULL);
	mbx_config_set_network_limit(s->cfg, MBX_NET_LIMIT_REDIRECTS, 0, NULL);
	mbx_config_set_trust(s->cfg, MBX_TRUST_SEMI_TRUSTED, NULL);
	good_payload(&s->payload);
	mbx_snapshot_set_note(s, "--timeout\0" "7\0", 12, NULL);
	return s;
}

static void encode(const struct mbx_snapshot *s, const uint8_t *key, struct mbx_buf *out)
{
	TAP_CHECK_INT(mbx__snapshot_encode(s, key, out, NULL), MBX_OK);
}

/* Decodes and expects `code`; returns the message (static copy). */
static const char *refused(const uint8_t *data, size_t len, const uint8_t *key, int code)
{
	static char msg[512];
	struct mbx_snapshot *out = (void *)1;
	mbx_error *e = NULL;
	int rc = mbx__snapshot_decode(&out, data, len, key, &e);

	TAP_CHECK_INT(rc, code);
	TAP_CHECK(out == NULL);
	snprintf(msg, sizeof(msg), "%s", e ? mbx_error_message(e) : "(none)");
	mbx_error_free(e);
	if (rc == MBX_OK)
		mbx_snapshot_free(out);
	return msg;
}

static void test_round_trip(void)
{
	struct mbx_snapshot *s = new_snap(), *back = NULL;
	struct mbx_buf b = { 0 };
	mbx_error *e = NULL;

	encode(s, key1, &b);
	TAP_CHECK_INT(mbx__snapshot_decode(&back, b.data, b.len, key1, &e), MBX_OK);
	if (e)
		printf("#   %s\n", mbx_error_message(e));
	mbx_error_free(e);
	if (back) {
		mbx_config *c = back->cfg;

		TAP_CHECK_INT(back->isolation, MBX_ISOLATION_OS);
		TAP_CHECK_INT(back->payload.len, s->payload.len);
		TAP_CHECK(memcmp(back->payload.data, s->payload.data, s->payload.len) == 0);
		TAP_CHECK_INT(c->isolation, MBX_ISOLATION_OS);
		TAP_CHECK_INT(c->trust, MBX_TRUST_SEMI_TRUSTED);
		TAP_CHECK_INT(c->network, MBX_NETWORK_ALLOW_DOMAINS);
		TAP_CHECK_INT(c->ndomains, 2);
		TAP_CHECK_STR(c->domains[1], "*.test.invalid");
		TAP_CHECK_STR(c->hostname, "box");
		TAP_CHECK_STR(c->workdir, "/tmp");
		TAP_CHECK_INT(c->memory_bytes, 300ull << 20);
		TAP_CHECK_INT(c->disk_bytes, 100ull << 20);
		TAP_CHECK(c->disk_explicit);
		TAP_CHECK_INT(c->timeout_ms, 1234);
		TAP_CHECK_INT(c->max_procs, 17);
		TAP_CHECK_INT(c->env.n, 2);
		TAP_CHECK(c->net != NULL && c->net->novr == 1 && c->net->nrules == 1);
		TAP_CHECK(c->net != NULL && c->net->limit[MBX_NET_LIMIT_REDIRECTS] == UINT64_MAX);
		TAP_CHECK_INT(c->nmounts, 0);
		size_t nlen = 0;
		const uint8_t *note = mbx_snapshot_note(back, &nlen);

		TAP_CHECK(nlen == 12 && note && memcmp(note, "--timeout\0" "7\0", 12) == 0);
		/* Encoding the decoded snapshot gives the same bytes. */
		struct mbx_buf again = { 0 };

		encode(back, key1, &again);
		TAP_CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
		mbx__buf_release(&again);
	}
	mbx_snapshot_free(back);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void test_header_fields(void)
{
	struct mbx_snapshot *s = new_snap();
	struct mbx_buf b = { 0 };

	encode(s, key1, &b);
	uint8_t *d = malloc(b.len);

	memcpy(d, b.data, b.len);
	d[0] = 'X';
	TAP_CHECK(strstr(refused(d, b.len, key1, MBX_EINVAL), "not a mimobox snapshot") != NULL);
	memcpy(d, b.data, b.len);
	d[8] = 2; /* version 2 */
	TAP_CHECK(strstr(refused(d, b.len, key1, MBX_EINVAL), "format version 2 is not supported") != NULL);
	memcpy(d, b.data, b.len);
	d[12] = 9; /* backend 9 */
	TAP_CHECK(strstr(refused(d, b.len, key1, MBX_EINVAL), "unknown backend 9") != NULL);
	memcpy(d, b.data, b.len);
	d[16] = 1; /* flags */
	TAP_CHECK(strstr(refused(d, b.len, key1, MBX_EINVAL), "unknown flags") != NULL);
	/* A microVM snapshot with a files payload: authentic but refused. */
	s->isolation = MBX_ISOLATION_MICROVM;
	mbx_config_set_isolation(s->cfg, MBX_ISOLATION_MICROVM, NULL);
	b.len = 0;
	encode(s, key1, &b);
	TAP_CHECK(strstr(refused(b.data, b.len, key1, MBX_EINVAL), "microVM payload is malformed") != NULL);
	/* wasm saves /workspace only: /tmp in its payload is refused. */
	s->isolation = MBX_ISOLATION_WASM;
	mbx_config_set_isolation(s->cfg, MBX_ISOLATION_WASM, NULL);
	mbx_config_set_network(s->cfg, MBX_NETWORK_DENY_ALL, NULL);
	b.len = 0;
	encode(s, key1, &b);
	TAP_CHECK(strstr(refused(b.data, b.len, key1, MBX_EINVAL), "a path outside /workspace, or not normalised") != NULL);
	/* The header's backend and the config's isolation must agree. */
	s->isolation = MBX_ISOLATION_OS;
	b.len = 0;
	encode(s, key1, &b);
	TAP_CHECK(strstr(refused(b.data, b.len, key1, MBX_EINVAL), "isolation is not the snapshot's backend") != NULL);
	free(d);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void test_note(void)
{
	struct mbx_snapshot *s = new_snap();
	static uint8_t big[MBX_SNAPSHOT_NOTE_MAX + 1];
	size_t len = 1;

	TAP_CHECK_INT(mbx_snapshot_set_note(s, big, sizeof(big), NULL), MBX_ETOOBIG);
	TAP_CHECK_INT(mbx_snapshot_set_note(s, big, sizeof(big) - 1, NULL), MBX_OK);
	TAP_CHECK(mbx_snapshot_note(s, &len) != NULL && len == MBX_SNAPSHOT_NOTE_MAX);
	TAP_CHECK_INT(mbx_snapshot_set_note(s, NULL, 0, NULL), MBX_OK);
	TAP_CHECK(mbx_snapshot_note(s, &len) == NULL && len == 0);
	mbx_snapshot_free(s);
}

static void test_wasm_workspace_round_trip(void)
{
	struct mbx_snapshot *s = calloc(1, sizeof(*s)), *back = NULL;
	struct mbx_buf b = { 0 };

	s->mem_fd = -1;
	s->isolation = MBX_ISOLATION_WASM;
	mbx_config_new(&s->cfg, NULL);
	mbx_config_set_isolation(s->cfg, MBX_ISOLATION_WASM, NULL);
	rec(&s->payload, MBX_SNAPF_DIR, 0700, "/workspace/d", NULL, 0);
	rec(&s->payload, MBX_SNAPF_FILE, 0644, "/workspace/d/f", "wasm", 4);
	mbx__buf_append(&s->payload, "\0", 1);
	encode(s, key1, &b);
	TAP_CHECK_INT(mbx__snapshot_decode(&back, b.data, b.len, key1, NULL), MBX_OK);
	TAP_CHECK(back != NULL && back->isolation == MBX_ISOLATION_WASM && back->payload.len == s->payload.len);
	TAP_CHECK(mbx_snapshot_contents(back) == MBX_SNAPSHOT_FILES);
	TAP_CHECK(mbx_snapshot_memory_size(back, NULL) == 0);
	mbx_snapshot_free(back);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void test_truncated_at_every_length(void)
{
	struct mbx_snapshot *s = new_snap();
	struct mbx_buf b = { 0 };

	encode(s, key1, &b);
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *d = malloc(n ? n : 1);

		memcpy(d, b.data, n);
		refused(d, n, key1, MBX_EINVAL);
		free(d);
	}
	/* and one byte too many */
	mbx__buf_append(&b, "", 1);
	TAP_CHECK(strstr(refused(b.data, b.len, key1, MBX_EINVAL), "trailing bytes") != NULL);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void test_flipped_bytes(void)
{
	struct mbx_snapshot *s = new_snap();
	struct mbx_buf b = { 0 };

	encode(s, key1, &b);
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			b.data[i] ^= (uint8_t)(1u << bit);
			struct mbx_snapshot *out = NULL;
			int rc = mbx__snapshot_decode(&out, b.data, b.len, key1, NULL);

			if (rc == MBX_OK)
				printf("#   flipping bit %d of byte %zu was not noticed\n", bit, i);
			TAP_CHECK(rc == MBX_EINVAL || rc == MBX_EPERM);
			mbx_snapshot_free(out);
			b.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void test_wrong_key(void)
{
	struct mbx_snapshot *s = new_snap();
	struct mbx_buf b = { 0 };

	encode(s, key1, &b);
	TAP_CHECK(strstr(refused(b.data, b.len, key2, MBX_EPERM), "another user's or host's key") != NULL);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

/* Authentic (our key) but malformed payloads: the structure check refuses
 * them before anything is restored. */
static void payload_refused(void (*make)(struct mbx_buf *), const char *why)
{
	struct mbx_snapshot *s = new_snap();
	struct mbx_buf b = { 0 };
	const char *msg;

	s->payload.len = 0;
	make(&s->payload);
	encode(s, key1, &b);
	msg = refused(b.data, b.len, key1, MBX_EINVAL);
	if (strstr(msg, why) == NULL)
		printf("#   expected `%s` in: %s\n", why, msg);
	TAP_CHECK(strstr(msg, why) != NULL);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

static void p_outside(struct mbx_buf *b) { rec(b, MBX_SNAPF_FILE, 0644, "/etc/passwd", "x", 1); mbx__buf_append(b, "\0", 1); }
static void p_dotdot(struct mbx_buf *b) { rec(b, MBX_SNAPF_FILE, 0644, "/workspace/../etc/x", "x", 1); mbx__buf_append(b, "\0", 1); }
static void p_dot(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspace/./a", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_double(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspace//a", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_root(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspace", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_prefix(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspacex/a", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_trailing(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspace/a/", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_setuid(struct mbx_buf *b) { rec(b, MBX_SNAPF_FILE, 04755, "/workspace/s", "x", 1); mbx__buf_append(b, "\0", 1); }
static void p_setgid_dir(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 02755, "/workspace/d", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_kind(struct mbx_buf *b) { rec(b, 7, 0644, "/workspace/s", NULL, 0); mbx__buf_append(b, "\0", 1); }
static void p_noend(struct mbx_buf *b) { rec(b, MBX_SNAPF_FILE, 0644, "/workspace/s", "x", 1); }
static void p_afterend(struct mbx_buf *b) { mbx__buf_append(b, "\0\0", 2); }
static void p_empty_link(struct mbx_buf *b) { rec(b, MBX_SNAPF_SYMLINK, 0777, "/workspace/l", "", 0); mbx__buf_append(b, "\0", 1); }
static void p_nul_link(struct mbx_buf *b) { rec(b, MBX_SNAPF_SYMLINK, 0777, "/workspace/l", "a\0b", 3); mbx__buf_append(b, "\0", 1); }
static void p_nul_path(struct mbx_buf *b) { rec(b, MBX_SNAPF_DIR, 0755, "/workspace/a", NULL, 0); b->data[b->len - 1] = '\0'; mbx__buf_append(b, "\0", 1); }
static void p_long(struct mbx_buf *b)
{
	char p[5000];

	memset(p, 'a', sizeof(p) - 1);
	p[sizeof(p) - 1] = '\0';
	memcpy(p, "/workspace/", 11);
	rec(b, MBX_SNAPF_DIR, 0755, p, NULL, 0);
	mbx__buf_append(b, "\0", 1);
}
static void p_huge_file(struct mbx_buf *b)
{
	rec(b, MBX_SNAPF_FILE, 0644, "/workspace/s", "xy", 2);
	memset(b->data + b->len - 10, 0xff, 8); /* size: 2^64-1 */
	mbx__buf_append(b, "\0", 1);
}

static void test_payload_checks(void)
{
	payload_refused(p_outside, "outside /workspace");
	payload_refused(p_dotdot, "not normalised");
	payload_refused(p_dot, "not normalised");
	payload_refused(p_double, "not normalised");
	payload_refused(p_root, "outside /workspace");
	payload_refused(p_prefix, "outside /workspace");
	payload_refused(p_trailing, "not normalised");
	payload_refused(p_setuid, "set-id");
	payload_refused(p_setgid_dir, "set-id");
	payload_refused(p_kind, "unknown record kind");
	payload_refused(p_noend, "without its end record");
	payload_refused(p_afterend, "bytes after the end record");
	payload_refused(p_empty_link, "bad symlink target");
	payload_refused(p_nul_link, "bad symlink target");
	payload_refused(p_nul_path, "not normalised");
	payload_refused(p_long, "not normalised");
	payload_refused(p_huge_file, "runs past the end");
}

/* A config section crafted by hand, authenticated with our key. */
static const char *config_refused(const uint8_t *cfg, size_t clen)
{
	uint8_t h[MBX_SNAP_HEADER_LEN] = "MBXSNAP";
	struct mbx_buf b = { 0 };
	uint64_t c = clen, p = 1;
	uint32_t v = MBX_SNAP_VERSION, be = MBX_ISOLATION_OS, hl = MBX_SNAP_HEADER_LEN;
	uint8_t mac[32];
	const char *msg;

	memcpy(h + 8, &v, 4);
	memcpy(h + 12, &be, 4);
	memcpy(h + 20, &hl, 4);
	memcpy(h + 24, &c, 8);
	memcpy(h + 32, &p, 8);
	mbx__buf_append(&b, h, sizeof(h));
	mbx__buf_append(&b, cfg, clen);
	mbx__buf_append(&b, "\0", 1);
	mbx__hmac_sha256(key1, 32, b.data, b.len, mac);
	mbx__buf_append(&b, mac, 32);
	msg = refused(b.data, b.len, key1, MBX_EINVAL);
	mbx__buf_release(&b);
	return msg;
}

static void test_config_checks(void)
{
	/* isolation os, then an unknown tag 99 */
	static const uint8_t unknown[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0 };
	/* a number record of 4 bytes */
	static const uint8_t shortnum[] = { 1, 0, 4, 0, 0, 0, 1, 0, 0, 0 };
	/* a record longer than the section */
	static const uint8_t overrun[] = { 13, 0, 200, 0, 0, 0, '/', 't' };
	/* a record header cut short */
	static const uint8_t cut[] = { 13, 0, 1 };
	/* isolation os, then a hostname with a NUL */
	static const uint8_t nul[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 14, 0, 3, 0, 0, 0, 'a', 0, 'b' };
	/* isolation os, then an environment entry without `=` */
	static const uint8_t noeq[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 0, 3, 0, 0, 0, 'A', 'B', 'C' };
	/* isolation os, then a host name the setter refuses (its own check) */
	static const uint8_t rel[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 14, 0, 3, 0, 0, 0, '-', 'a', 'b' };
	/* no isolation record: the config says auto, the header os */
	static const uint8_t none[] = { 14, 0, 1, 0, 0, 0, 'h' };

	TAP_CHECK(strstr(config_refused(unknown, sizeof(unknown)), "unknown config record") != NULL);
	TAP_CHECK(strstr(config_refused(shortnum, sizeof(shortnum)), "wrong length") != NULL);
	TAP_CHECK(strstr(config_refused(overrun, sizeof(overrun)), "runs past the config") != NULL);
	TAP_CHECK(strstr(config_refused(cut, sizeof(cut)), "ends inside a record") != NULL);
	TAP_CHECK(strstr(config_refused(nul, sizeof(nul)), "malformed") != NULL);
	TAP_CHECK(strstr(config_refused(noeq, sizeof(noeq)), "no `=`") != NULL);
	TAP_CHECK(strstr(config_refused(rel, sizeof(rel)), "snapshot config") != NULL);
	TAP_CHECK(strstr(config_refused(none, sizeof(none)), "isolation is not the snapshot's backend") != NULL);
	/* isolation os, then two notes */
	static const uint8_t twonotes[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 21, 0, 1, 0, 0, 0, 'a', 21, 0, 1, 0, 0, 0, 'b' };
	static const uint8_t emptynote[] = { 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0, 0, 0 };

	TAP_CHECK(strstr(config_refused(twonotes, sizeof(twonotes)), "given twice") != NULL);
	TAP_CHECK(strstr(config_refused(emptynote, sizeof(emptynote)), "note is empty") != NULL);
}

/* ---- a microVM snapshot: payload and memory section ---- */

#define VM_MIB 64u

static struct mbx_snapshot *new_vm_snap(void)
{
	static const uint8_t stream[] = "QEVM device state";
	struct mbx_snapshot *s = calloc(1, sizeof(*s));
	struct mbx_vmsnap v = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB, .proto_version = MBX_PROTO_VERSION,
				.features = MBX_FEAT_RESUME, .session = 0x1234, .next_id = 9, .stream = stream,
				.stream_len = sizeof(stream) };
	char page[MBX_SNAP_PAGE];

	s->isolation = MBX_ISOLATION_MICROVM;
	mbx_config_new(&s->cfg, NULL);
	mbx_config_set_isolation(s->cfg, MBX_ISOLATION_MICROVM, NULL);
	mbx_config_set_memory_limit(s->cfg, (uint64_t)VM_MIB << 20, NULL);
	TAP_CHECK(mbx__vmsnap_encode(&s->payload, &v) == 0);
	TAP_CHECK_INT(mbx__snapshot_new_memory((uint64_t)VM_MIB << 20, &s->mem_fd, NULL), MBX_OK);
	memset(page, 'a', sizeof(page));
	TAP_CHECK(pwrite(s->mem_fd, page, sizeof(page), 0) == (ssize_t)sizeof(page));
	memset(page, 'z', sizeof(page));
	TAP_CHECK(pwrite(s->mem_fd, page, sizeof(page), 40 * MBX_SNAP_PAGE) == (ssize_t)sizeof(page));
	TAP_CHECK_INT(mbx__snapshot_seal_memory(s->mem_fd, NULL), MBX_OK);
	s->mem_size = (uint64_t)VM_MIB << 20;
	return s;
}

static void test_vm_memory_round_trip(void)
{
	struct mbx_snapshot *s = new_vm_snap(), *t = NULL;
	struct mbx_buf b = { 0 };
	char page[MBX_SNAP_PAGE];
	struct mbx_vmsnap v;
	off_t data;

	/* Sealed: nobody writes a snapshot's memory any more. */
	TAP_CHECK(pwrite(s->mem_fd, "x", 1, 0) < 0);
	encode(s, key1, &b);
	/* Two pages of data: two extents, the rest holes. */
	TAP_CHECK(b.len < 3 * MBX_SNAP_PAGE + 1024);
	TAP_CHECK_INT(mbx__snapshot_decode(&t, b.data, b.len, key1, NULL), MBX_OK);
	TAP_CHECK(t != NULL && t->mem_fd >= 0 && t->mem_size == (uint64_t)VM_MIB << 20);
	TAP_CHECK(pread(t->mem_fd, page, sizeof(page), 40 * MBX_SNAP_PAGE) == (ssize_t)sizeof(page) && page[0] == 'z' &&
		  page[MBX_SNAP_PAGE - 1] == 'z');
	TAP_CHECK(pread(t->mem_fd, page, sizeof(page), 20 * MBX_SNAP_PAGE) == (ssize_t)sizeof(page) && page[0] == 0);
	data = lseek(t->mem_fd, MBX_SNAP_PAGE, SEEK_DATA);
	TAP_CHECK(data == 40 * MBX_SNAP_PAGE);
	TAP_CHECK(pwrite(t->mem_fd, "x", 1, 0) < 0);
	TAP_CHECK(mbx__vmsnap_parse(t->payload.data, t->payload.len, &v) == 0 && v.session == 0x1234 && v.next_id == 9);
	TAP_CHECK(mbx_snapshot_memory_size(t, NULL) == (uint64_t)VM_MIB << 20);
	TAP_CHECK(mbx_snapshot_contents(t) == (MBX_SNAPSHOT_FILES | MBX_SNAPSHOT_PROCESSES | MBX_SNAPSHOT_MEMORY));
	TAP_CHECK(mbx_snapshot_contents(NULL) == 0);
	mbx_snapshot_free(t);
	mbx_snapshot_free(s);
	mbx__buf_release(&b);
}

/* Bytes of a snapshot whose memory section is `mem` (a valid MAC). */
static void with_memory(struct mbx_buf *out, const uint8_t *mem, size_t mlen)
{
	struct mbx_snapshot *s = new_vm_snap();
	uint8_t mac[32];
	size_t mstart;

	encode(s, key1, out);
	out->len -= 32; /* the MAC */
	mstart = out->len - (size_t)(out->data[40] | (uint64_t)out->data[41] << 8 | (uint64_t)out->data[42] << 16 |
				     (uint64_t)out->data[43] << 24);
	out->len = mstart;
	mbx__buf_append(out, mem, mlen);
	for (int i = 0; i < 8; i++)
		out->data[40 + i] = (uint8_t)((uint64_t)mlen >> (8 * i));
	mbx__hmac_sha256(key1, 32, out->data, out->len, mac);
	mbx__buf_append(out, mac, sizeof(mac));
	mbx_snapshot_free(s);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static const char *memory_refused(uint64_t size, const uint64_t *ext, size_t next, size_t extra)
{
	static char msg[512];
	size_t len = 8, off = 8;
	uint8_t *m;
	struct mbx_buf b = { 0 };

	for (size_t i = 0; i < next; i++)
		len += 16 + (size_t)(ext[2 * i + 1] < (1u << 20) ? ext[2 * i + 1] : 0);
	len += extra;
	m = calloc(1, len);
	put64(m, size);
	for (size_t i = 0; i < next; i++) {
		put64(m + off, ext[2 * i]);
		put64(m + off + 8, ext[2 * i + 1]);
		off += 16 + (size_t)(ext[2 * i + 1] < (1u << 20) ? ext[2 * i + 1] : 0);
	}
	with_memory(&b, m, len);
	snprintf(msg, sizeof(msg), "%s", refused(b.data, b.len, key1, MBX_EINVAL));
	free(m);
	mbx__buf_release(&b);
	return msg;
}

static void test_vm_memory_checks(void)
{
	const uint64_t P = MBX_SNAP_PAGE, M = (uint64_t)VM_MIB << 20;
	const uint64_t unaligned[] = { 100, P };
	const uint64_t short_len[] = { 0, 100 };
	const uint64_t overlap[] = { 0, 2 * P, P, P };
	const uint64_t backwards[] = { 4 * P, P, 0, P };
	const uint64_t outside[] = { M, P };
	const uint64_t past_end[] = { M - P, 2 * P };
	const uint64_t empty[] = { 0, 0 };
	const uint64_t huge[] = { 0, 1ull << 40 };

	TAP_CHECK(strstr(memory_refused(M, unaligned, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, short_len, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, overlap, 2, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, backwards, 2, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, outside, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, past_end, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, empty, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, huge, 1, 0), "memory extent is malformed") != NULL);
	TAP_CHECK(strstr(memory_refused(M, NULL, 0, 5), "memory extent is truncated") != NULL);
	TAP_CHECK(strstr(memory_refused(M + 1, NULL, 0, 0), "whole number of pages") != NULL);
	TAP_CHECK(strstr(memory_refused(0, NULL, 0, 0), "whole number of pages") != NULL);
	TAP_CHECK(strstr(memory_refused(2 * M, NULL, 0, 0), "not the config's") != NULL);
}

static void test_vm_payload_checks(void)
{
	struct mbx_snapshot *s = new_vm_snap();
	struct mbx_buf b = { 0 };
	struct mbx_vmsnap v;
	mbx_config *cfg = s->cfg;
	const uint8_t st[] = "x";
	struct mbx_vmsnap bad_version = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB, .proto_version = 1, .features = MBX_FEAT_RESUME,
				     .session = 1, .next_id = 1, .stream = st, .stream_len = 1 };
	struct mbx_vmsnap no_session = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB, .proto_version = MBX_PROTO_VERSION, .features = MBX_FEAT_RESUME,
				     .session = 0, .next_id = 1, .stream = st, .stream_len = 1 };
	struct mbx_vmsnap no_resume = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB, .proto_version = MBX_PROTO_VERSION, .features = 0,
				     .session = 1, .next_id = 1, .stream = st, .stream_len = 1 };
	struct mbx_vmsnap other_mib = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB * 2, .proto_version = MBX_PROTO_VERSION, .features = MBX_FEAT_RESUME,
				     .session = 1, .next_id = 1, .stream = st, .stream_len = 1 };
	struct mbx_vmsnap good = { .flags = MBX_VMSNAP_F_BASE_RAM, .memory_mib = VM_MIB, .proto_version = MBX_PROTO_VERSION, .features = MBX_FEAT_RESUME,
				     .session = 1, .next_id = 1, .stream = st, .stream_len = 1 };

	TAP_CHECK_INT(mbx__vmsnap_check(s->payload.data, s->payload.len, 1, cfg, NULL), MBX_OK);
	/* Flags against the memory section. */
	TAP_CHECK_INT(mbx__vmsnap_check(s->payload.data, s->payload.len, 0, cfg, NULL), MBX_EINVAL);
	/* Every truncation, a trailing byte. */
	for (size_t n = 0; n < s->payload.len; n++)
		TAP_CHECK(mbx__vmsnap_parse(s->payload.data, n, &v) < 0);
	mbx__buf_append(&b, s->payload.data, s->payload.len);
	mbx__buf_append(&b, "x", 1);
	TAP_CHECK(mbx__vmsnap_parse(b.data, b.len, &v) < 0);
	b.len = 0;
#define CHECK_BAD(x)                                                                      \
	do {                                                                              \
		b.len = 0;                                                                \
		TAP_CHECK(mbx__vmsnap_encode(&b, &(x)) == 0);                             \
		TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_EINVAL); \
	} while (0)
	CHECK_BAD(bad_version);
	CHECK_BAD(no_session);
	CHECK_BAD(no_resume);
	CHECK_BAD(other_mib);
#undef CHECK_BAD
	b.len = 0;
	TAP_CHECK(mbx__vmsnap_encode(&b, &good) == 0);
	TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_OK);
	b.data[4] = 5; /* unknown flag */
	TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_EINVAL);
	/* The network port must be there exactly when the config allows domains. */
	b.data[4] = MBX_VMSNAP_F_BASE_RAM | MBX_VMSNAP_F_NET_PORT;
	TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_EINVAL);
	mbx_config_set_network(cfg, MBX_NETWORK_ALLOW_DOMAINS, NULL);
	mbx_config_add_allowed_domain(cfg, "example.invalid", NULL);
	TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_OK);
	b.data[4] = MBX_VMSNAP_F_BASE_RAM;
	TAP_CHECK_INT(mbx__vmsnap_check(b.data, b.len, 1, cfg, NULL), MBX_EINVAL);
	mbx__buf_release(&b);
	mbx_snapshot_free(s);
}

static const struct tap_case cases[] = {
	{ "snapshot/round-trip", test_round_trip },
	{ "snapshot/header-fields", test_header_fields },
	{ "snapshot/wasm-workspace-round-trip", test_wasm_workspace_round_trip },
	{ "snapshot/note", test_note },
	{ "snapshot/truncated-at-every-length", test_truncated_at_every_length },
	{ "snapshot/flipped-bytes", test_flipped_bytes },
	{ "snapshot/wrong-key", test_wrong_key },
	{ "snapshot/payload-checks", test_payload_checks },
	{ "snapshot/config-checks", test_config_checks },
	{ "snapshot/vm-memory-round-trip", test_vm_memory_round_trip },
	{ "snapshot/vm-memory-checks", test_vm_memory_checks },
	{ "snapshot/vm-payload-checks", test_vm_payload_checks },
};

TAP_MAIN(cases)
