/* SPDX-License-Identifier: Apache-2.0 */
/* Frame and field codec of the agent protocol (see proto.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <mbx/error.h>
#include "proto.h"

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ==== writing ==== */

void mbx_wbuf_init(struct mbx_wbuf *w)
{
	memset(w, 0, sizeof(*w));
}

void mbx_wbuf_release(struct mbx_wbuf *w)
{
	free(w->buf);
	mbx_wbuf_init(w);
}

void mbx_wbuf_reset(struct mbx_wbuf *w)
{
	w->len = 0;
	w->failed = 0;
	w->frame_at = 0;
}

/* Makes room for n more bytes; marks the buffer failed when it cannot. */
static uint8_t *wbuf_grow(struct mbx_wbuf *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (n > MBX_PROTO_MAX_BODY + MBX_PROTO_HEADER || w->len + n > 64u * MBX_PROTO_MAX_BODY) {
		w->failed = 1;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *nb;

		while (cap < w->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (nb == NULL) {
			w->failed = 1;
			return NULL;
		}
		w->buf = nb;
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

void mbx_proto_begin(struct mbx_wbuf *w, uint16_t type, uint32_t id)
{
	uint8_t *p;

	w->frame_at = w->len;
	p = wbuf_grow(w, MBX_PROTO_HEADER);
	if (p == NULL)
		return;
	put_le32(p, 0);
	put_le16(p + 4, type);
	put_le16(p + 6, 0);
	put_le32(p + 8, id);
}

void mbx_proto_put(struct mbx_wbuf *w, uint16_t tag, const void *data, size_t len)
{
	uint8_t *p;

	if (len > MBX_PROTO_MAX_BODY) {
		w->failed = 1;
		return;
	}
	p = wbuf_grow(w, 6 + len);
	if (p == NULL)
		return;
	put_le16(p, tag);
	put_le32(p + 2, (uint32_t)len);
	if (len)
		memcpy(p + 6, data, len);
}

void mbx_proto_put_u32(struct mbx_wbuf *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	mbx_proto_put(w, tag, b, sizeof(b));
}

void mbx_proto_put_u64(struct mbx_wbuf *w, uint16_t tag, uint64_t v)
{
	uint8_t b[8];

	put_le32(b, (uint32_t)v);
	put_le32(b + 4, (uint32_t)(v >> 32));
	mbx_proto_put(w, tag, b, sizeof(b));
}

void mbx_proto_put_str(struct mbx_wbuf *w, uint16_t tag, const char *s)
{
	mbx_proto_put(w, tag, s, strlen(s));
}

size_t mbx_proto_nest_begin(struct mbx_wbuf *w, uint16_t tag)
{
	size_t at = w->len;

	mbx_proto_put(w, tag, NULL, 0);
	return at;
}

void mbx_proto_nest_end(struct mbx_wbuf *w, size_t at)
{
	if (w->failed)
		return;
	put_le32(w->buf + at + 2, (uint32_t)(w->len - at - 6));
}

int mbx_proto_end(struct mbx_wbuf *w)
{
	size_t body;

	if (w->failed)
		return -1;
	body = w->len - w->frame_at - MBX_PROTO_HEADER;
	if (body > MBX_PROTO_MAX_BODY) {
		w->failed = 1;
		return -1;
	}
	put_le32(w->buf + w->frame_at, (uint32_t)body);
	return 0;
}

/* ==== reading ==== */

int mbx_proto_parse(const uint8_t *buf, size_t len, struct mbx_frame *f, size_t *used)
{
	uint32_t body;

	if (len < MBX_PROTO_HEADER)
		return 0;
	body = get_le32(buf);
	if (body > MBX_PROTO_MAX_BODY || get_le16(buf + 6) != 0)
		return -1;
	if (len - MBX_PROTO_HEADER < body)
		return 0;
	f->len = body;
	f->type = get_le16(buf + 4);
	f->flags = 0;
	f->id = get_le32(buf + 8);
	f->body = buf + MBX_PROTO_HEADER;
	*used = MBX_PROTO_HEADER + (size_t)body;
	return 1;
}

void mbx_rbuf_init(struct mbx_rbuf *r)
{
	memset(r, 0, sizeof(*r));
}

void mbx_rbuf_release(struct mbx_rbuf *r)
{
	free(r->buf);
	mbx_rbuf_init(r);
}

uint8_t *mbx_rbuf_space(struct mbx_rbuf *r, size_t want)
{
	/* Drop consumed bytes first so the buffer never exceeds one maximal
	 * frame plus one read. */
	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len + want > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		uint8_t *nb;

		while (cap < r->len + want)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (nb == NULL)
			return NULL;
		r->buf = nb;
		r->cap = cap;
	}
	return r->buf + r->len;
}

size_t mbx_rbuf_pending(const struct mbx_rbuf *r)
{
	return r->len - r->off;
}

void mbx_rbuf_commit(struct mbx_rbuf *r, size_t n)
{
	r->len += n;
}

int mbx_rbuf_push(struct mbx_rbuf *r, const void *data, size_t len)
{
	uint8_t *p = mbx_rbuf_space(r, len);

	if (p == NULL)
		return -1;
	memcpy(p, data, len);
	mbx_rbuf_commit(r, len);
	return 0;
}

int mbx_rbuf_next(struct mbx_rbuf *r, struct mbx_frame *f)
{
	size_t used = 0;
	int rc;

	if (r->buf == NULL)
		return 0; /* nothing read yet (and no pointer to offset) */
	rc = mbx_proto_parse(r->buf + r->off, r->len - r->off, f, &used);
	if (rc == 1)
		r->off += used;
	return rc;
}

void mbx_field_iter_init(struct mbx_field_iter *it, const uint8_t *body, uint32_t len)
{
	it->p = body;
	it->end = body + len;
}

int mbx_field_next(struct mbx_field_iter *it, uint16_t *tag, const uint8_t **val, uint32_t *len)
{
	size_t left = (size_t)(it->end - it->p);
	uint32_t n;

	if (left == 0)
		return 0;
	if (left < 6)
		return -1;
	n = get_le32(it->p + 2);
	if (n > left - 6)
		return -1;
	*tag = get_le16(it->p);
	*len = n;
	*val = it->p + 6;
	it->p += 6 + (size_t)n;
	return 1;
}

int mbx_field_u32(const uint8_t *val, uint32_t len, uint32_t *out)
{
	if (len != 4)
		return -1;
	*out = get_le32(val);
	return 0;
}

int mbx_field_u64(const uint8_t *val, uint32_t len, uint64_t *out)
{
	if (len != 8)
		return -1;
	*out = (uint64_t)get_le32(val) | ((uint64_t)get_le32(val + 4) << 32);
	return 0;
}

/* ==== message decoders (host side, untrusted input) ==== */

/* Copies a string field into a fixed buffer, cutting it and replacing NUL
 * and control bytes so the text is safe to show. */
static void copy_text(char *dst, size_t cap, const uint8_t *val, uint32_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;

	for (size_t i = 0; i < n; i++)
		dst[i] = (val[i] < 0x20 || val[i] == 0x7f) ? '?' : (char)val[i];
	dst[n] = '\0';
}

int mbx_proto_decode_hello(const struct mbx_frame *f, uint32_t *version)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc, found = 0;

	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		if (tag == MBX_F_VERSION) {
			if (mbx_field_u32(v, n, version) < 0)
				return -1;
			found = 1;
		}
	}
	return (rc < 0 || !found) ? -1 : 0;
}

int mbx_proto_decode_hello_info(const struct mbx_frame *f, struct mbx_hello_info *out)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc, have_max = 0, have_min = 0, have_session = 0;

	memset(out, 0, sizeof(*out));
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_VERSION:
			if (mbx_field_u32(v, n, &out->version_max) < 0)
				return -1;
			have_max = 1;
			break;
		case MBX_F_VERSION_MIN:
			if (mbx_field_u32(v, n, &out->version_min) < 0)
				return -1;
			have_min = 1;
			break;
		case MBX_F_FEATURES:
			if (mbx_field_u64(v, n, &out->features) < 0)
				return -1;
			break;
		case MBX_F_SESSION:
			if (mbx_field_u64(v, n, &out->session) < 0)
				return -1;
			have_session = 1;
			break;
		default:
			break;
		}
	}
	if (rc < 0 || !have_max || !have_session)
		return -1;
	if (!have_min)
		out->version_min = out->version_max;
	return out->version_min <= out->version_max ? 0 : -1;
}

int mbx_proto_negotiate(uint32_t min_a, uint32_t max_a, uint64_t feat_a, uint32_t min_b, uint32_t max_b,
			uint64_t feat_b, uint32_t *version, uint64_t *features)
{
	uint32_t lo = min_a > min_b ? min_a : min_b;
	uint32_t hi = max_a < max_b ? max_a : max_b;

	if (min_a > max_a || min_b > max_b || lo > hi)
		return -1;
	*version = hi;
	*features = feat_a & feat_b;
	return 0;
}

int mbx_proto_decode_ready(const struct mbx_frame *f, struct mbx_ready_info *out)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc;

	memset(out, 0, sizeof(*out));
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		uint32_t *dst = tag == MBX_F_LAYERS ? &out->layers :
				tag == MBX_F_SKIPPED ? &out->skipped :
				tag == MBX_F_LANDLOCK_ABI ? &out->landlock_abi : NULL;

		if (dst != NULL && mbx_field_u32(v, n, dst) < 0)
			return -1;
		if (tag == MBX_F_TRACE) {
			uint32_t step;
			uint64_t ns;

			if (n != 12)
				return -1;
			mbx_field_u32(v, 4, &step);
			mbx_field_u64(v + 4, 8, &ns);
			if (step < MBX_TRACE_MAX)
				out->trace_ns[step] = ns;
		}
	}
	return rc < 0 ? -1 : 0;
}

int mbx_proto_decode_error(const struct mbx_frame *f, struct mbx_error_info *out)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n, code = 0;
	uint16_t tag;
	int rc, have_code = 0;

	memset(out, 0, sizeof(*out));
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_CODE:
			if (mbx_field_u32(v, n, &code) < 0)
				return -1;
			have_code = 1;
			break;
		case MBX_F_ERRNO:
			if (mbx_field_u32(v, n, &out->errnum) < 0 || out->errnum > 4095)
				return -1;
			break;
		case MBX_F_LAYER:
			copy_text(out->layer, sizeof(out->layer), v, n);
			break;
		case MBX_F_MESSAGE:
			copy_text(out->message, sizeof(out->message), v, n);
			break;
		default:
			break;
		}
	}
	/* Only the documented negative codes may cross; anything else from an
	 * agent is a protocol violation. */
	out->code = (int32_t)code;
	if (rc < 0 || !have_code || out->code >= 0 || out->code < -64)
		return -1;
	return 0;
}

int mbx_proto_decode_exit(const struct mbx_frame *f, struct mbx_exit_info *out)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n, u;
	uint16_t tag;
	int rc, have_code = 0;

	memset(out, 0, sizeof(*out));
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		switch (tag) {
		case MBX_F_EXIT_CODE:
			if (mbx_field_u32(v, n, &u) < 0)
				return -1;
			out->exit_code = (int32_t)u;
			have_code = 1;
			break;
		case MBX_F_SIGNAL:
			if (mbx_field_u32(v, n, &out->signal) < 0 || out->signal > 64)
				return -1;
			break;
		case MBX_F_FLAGS:
			if (mbx_field_u32(v, n, &out->flags) < 0)
				return -1;
			break;
		case MBX_F_CPU_US:
			if (mbx_field_u64(v, n, &out->cpu_us) < 0)
				return -1;
			break;
		case MBX_F_MAXRSS:
			if (mbx_field_u64(v, n, &out->maxrss) < 0)
				return -1;
			break;
		case MBX_F_ELAPSED_US:
			if (mbx_field_u64(v, n, &out->elapsed_us) < 0)
				return -1;
			break;
		default:
			break;
		}
	}
	if (rc < 0 || !have_code)
		return -1;
	/* Either an exit status (0..255) or a signal, never both. */
	if (out->signal != 0 ? out->exit_code != -1 : (out->exit_code < 0 || out->exit_code > 255))
		return -1;
	return 0;
}

int mbx_proto_decode_data(const struct mbx_frame *f, const uint8_t **data, uint32_t *len)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc, found = 0;

	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		if (tag == MBX_F_DATA && !found) {
			*data = v;
			*len = n;
			found = 1;
		}
	}
	return (rc < 0 || !found) ? -1 : 0;
}

/* The first field `tag` of a frame: 0 with *v and *n set, -1 when absent. */
static int find_field(const struct mbx_frame *f, uint16_t tag, const uint8_t **v, uint32_t *n)
{
	struct mbx_field_iter it;
	uint16_t t;

	mbx_field_iter_init(&it, f->body, f->len);
	while (mbx_field_next(&it, &t, v, n) == 1)
		if (t == tag)
			return 0;
	return -1;
}

int mbx_proto_find_u32(const struct mbx_frame *f, uint16_t tag, uint32_t *out)
{
	const uint8_t *v;
	uint32_t n;

	return find_field(f, tag, &v, &n) < 0 ? -1 : mbx_field_u32(v, n, out);
}

int mbx_proto_find_u64(const struct mbx_frame *f, uint16_t tag, uint64_t *out)
{
	const uint8_t *v;
	uint32_t n;

	return find_field(f, tag, &v, &n) < 0 ? -1 : mbx_field_u64(v, n, out);
}

int mbx_proto_decode_window(const struct mbx_frame *f, uint64_t *window)
{
	*window = 0;
	if (f->type != MBX_MSG_CREDIT && f->type != MBX_MSG_STARTED)
		return -1;
	return mbx_proto_find_u64(f, MBX_F_WINDOW, window);
}

/* Reads the fields of a FILE_STAT body or of one FILE_DIR entry. */
static int decode_file_fields(const uint8_t *body, uint32_t len, struct mbx_file_info *out)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	uint64_t mt = 0;
	int rc, have_type = 0;

	memset(out, 0, sizeof(*out));
	mbx_field_iter_init(&it, body, len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		int bad = 0;

		switch (tag) {
		case MBX_F_FTYPE:
			bad = mbx_field_u32(v, n, &out->ftype) < 0 || out->ftype < 1 || out->ftype > 4;
			have_type = 1;
			break;
		case MBX_F_MODE:
			bad = mbx_field_u32(v, n, &out->mode) < 0 || out->mode > 07777;
			break;
		case MBX_F_UID:
			bad = mbx_field_u32(v, n, &out->uid) < 0;
			break;
		case MBX_F_GID:
			bad = mbx_field_u32(v, n, &out->gid) < 0;
			break;
		case MBX_F_FLAGS:
			bad = mbx_field_u32(v, n, &out->flags) < 0;
			break;
		case MBX_F_SIZE:
			bad = mbx_field_u64(v, n, &out->size) < 0;
			break;
		case MBX_F_MTIME_NS:
			bad = mbx_field_u64(v, n, &mt) < 0;
			out->mtime_ns = (int64_t)mt;
			break;
		case MBX_F_NAME:
			/* A listing can only name entries of the directory. */
			bad = n == 0 || n > 255 || memchr(v, '/', n) != NULL || memchr(v, '\0', n) != NULL ||
			      (n == 1 && v[0] == '.') || (n == 2 && v[0] == '.' && v[1] == '.');
			out->name = v;
			out->name_len = n;
			break;
		case MBX_F_TARGET:
			bad = n == 0 || n > MBX_PROTO_TARGET_MAX || memchr(v, '\0', n) != NULL;
			out->target = v;
			out->target_len = n;
			break;
		default:
			break;
		}
		if (bad)
			return -1;
	}
	return (rc < 0 || !have_type) ? -1 : 0;
}

int mbx_proto_decode_stat(const struct mbx_frame *f, struct mbx_file_info *out)
{
	return decode_file_fields(f->body, f->len, out);
}

int mbx_proto_decode_dir(const struct mbx_frame *f, int (*fn)(const struct mbx_file_info *, void *), void *arg,
			 uint32_t *more)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc;

	*more = 0;
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		struct mbx_file_info info;

		if (tag == MBX_F_MORE) {
			if (mbx_field_u32(v, n, more) < 0)
				return -1;
			continue;
		}
		if (tag != MBX_F_ENTRY)
			continue;
		if (decode_file_fields(v, n, &info) < 0 || info.name == NULL)
			return -1;
		rc = fn(&info, arg);
		if (rc != 0)
			return rc;
	}
	return rc < 0 ? -1 : 0;
}

int mbx_proto_decode_proc_list(const struct mbx_frame *f, int (*fn)(const struct mbx_proc_info *, void *), void *arg)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc;

	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		struct mbx_field_iter sub;
		struct mbx_proc_info info;
		const uint8_t *sv;
		uint32_t sn;
		uint16_t stag;
		int src, have_id = 0;

		if (tag != MBX_F_ENTRY)
			continue;
		memset(&info, 0, sizeof(info));
		mbx_field_iter_init(&sub, v, n);
		while ((src = mbx_field_next(&sub, &stag, &sv, &sn)) == 1) {
			if (stag == MBX_F_PROC_ID) {
				if (mbx_field_u32(sv, sn, &info.id) < 0)
					return -1;
				have_id = 1;
			} else if (stag == MBX_F_AGE_MS) {
				if (mbx_field_u64(sv, sn, &info.age_ms) < 0)
					return -1;
			} else if (stag == MBX_F_ARG) {
				if (sn > 4096 || memchr(sv, '\0', sn) != NULL)
					return -1;
				info.program = sv;
				info.program_len = sn;
			}
		}
		if (src < 0 || !have_id)
			return -1;
		rc = fn(&info, arg);
		if (rc != 0)
			return rc;
	}
	return rc < 0 ? -1 : 0;
}

void mbx_proto_attach_fds(struct msghdr *msg, void *ctl, const int *fds, size_t n)
{
	struct cmsghdr *cm;

	if (n == 0)
		return;
	msg->msg_control = ctl;
	msg->msg_controllen = CMSG_SPACE(sizeof(int) * n);
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
}

void mbx_proto_exit_of(int valid, int32_t wstatus, int32_t *code, uint32_t *sig)
{
	if (!valid) {
		*code = -1;
		*sig = SIGKILL;
	} else if (WIFSIGNALED(wstatus)) {
		*code = -1;
		*sig = (uint32_t)WTERMSIG(wstatus);
	} else {
		*code = WEXITSTATUS(wstatus);
		*sig = 0;
	}
}

/* The start steps that are a layer of the sandbox (or of a guest's): what
 * failed is the host's, and says which. */
static const struct {
	int32_t stage;
	int code;
	const char *layer;
	const char *what;
} start_layers[] = {
	{ MBX_STAGE_RLIMIT, MBX_ENOTSUP, "limits", "apply resource limits" },
	{ MBX_STAGE_CAPS, MBX_ENOTSUP, "capabilities", "drop capabilities" },
	{ MBX_STAGE_NNP, MBX_ENOTSUP, "no-new-privs", "set no_new_privs" },
	{ MBX_STAGE_LANDLOCK, MBX_ENOTSUP, "landlock", "enforce the Landlock ruleset" },
	{ MBX_STAGE_SECCOMP, MBX_ENOTSUP, "seccomp", "install the seccomp filter" },
	{ MBX_STAGE_CGROUP, MBX_ESYS, "limits", "place the process in the guest's process-limit cgroup" },
};

int mbx_proto_start_error(int32_t stage, int32_t errnum, const char *program, const char *cwd, char *msg, size_t len,
			  const char **layer)
{
	int e = errnum;

	*layer = NULL;
	if (stage == MBX_STAGE_CHDIR) {
		/* A bad working directory is a bad argument of the call (the CLI
		 * exits 125), not a missing program (127). */
		snprintf(msg, len, "working directory `%s` cannot be entered in the sandbox", cwd ? cwd : "/");
		return e == EACCES || e == EPERM ? MBX_EPERM : MBX_EINVAL;
	}
	if (stage == MBX_STAGE_EXEC) {
		if (e == ENOENT) {
			snprintf(msg, len, "program `%s` not found in the sandbox", program);
			return MBX_ENOTFOUND;
		}
		if (e == EACCES || e == ENOEXEC || e == EISDIR || e == ENOTDIR || e == EPERM) {
			snprintf(msg, len, "program `%s` cannot be executed", program);
			return MBX_ENOEXEC;
		}
		snprintf(msg, len, "execute `%s`", program);
		return MBX_ESYS;
	}
	for (size_t i = 0; i < sizeof(start_layers) / sizeof(start_layers[0]); i++)
		if (start_layers[i].stage == stage) {
			*layer = start_layers[i].layer;
			snprintf(msg, len, "%s", start_layers[i].what);
			return start_layers[i].code;
		}
	snprintf(msg, len, "prepare the payload process");
	return MBX_ESYS;
}
