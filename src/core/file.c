/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file API (mbx/file.h) over the sandbox's agent channel. Transfers go
 * chunk by chunk (MBX_PROTO_FILE_CHUNK): the host asks for each chunk, so
 * neither side buffers more than one, and a transfer over the sandbox's file
 * limit stops with MBX_ETOOBIG. Everything read from the agent is checked:
 * sizes against the limit, names against '/' and NUL (proto.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "backend/client.h"
#include "hostfiles.h"

#define DEFAULT_FILE_LIMIT (1ull << 30)
#define FILE_DEADLINE_US (60u * 1000000u)

struct mbx_stat {
	struct mbx_file_info info;	/* info.target is not used: see target */
	char *target;			/* a symlink's target, or NULL */
};

struct mbx_dir_entry {
	char *name;
	mbx_file_type_t type;
	uint64_t size;
	int symlink;
	char *target;	/* or NULL */
};

struct mbx_dir {
	struct mbx_dir_entry *e;
	size_t n;
};

int mbx_config_set_file_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (bytes == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "file limit must be greater than zero");
	cfg->file_limit = bytes;
	return MBX_OK;
}

static uint64_t file_limit(const mbx_sandbox *sb)
{
	return sb->cfg->file_limit ? sb->cfg->file_limit : DEFAULT_FILE_LIMIT;
}

/*
 * Where a file operation goes: the agent (c set), or, for a backend without
 * one, the host directory behind /workspace (*root set).
 */
static int target(mbx_sandbox *sb, struct mbx_client **c, const char **root, mbx_error **err)
{
	*c = NULL;
	*root = NULL;
	if (sb != NULL && !sb->destroyed && mbx__backend_has(sb, MBX_BACKEND_CAP_FILES) && sb->ops->client == NULL &&
	    sb->ops->workspace != NULL)
		return sb->ops->workspace(sb, root, err);
	return mbx__sandbox_client(sb, MBX_BACKEND_CAP_FILES, "the file API", c, err);
}

static int check_path(const char *path, mbx_error **err);

/* The checks every path operation starts with: a usable path, then where
 * the operation goes (see target()). */
static int begin_path(mbx_sandbox *sb, const char *path, struct mbx_client **c, const char **root, mbx_error **err)
{
	int rc = check_path(path, err);

	return rc < 0 ? rc : target(sb, c, root, err);
}

static int check_path(const char *path, mbx_error **err)
{
	if (path == NULL || path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "path is empty: give an absolute path or one relative to /workspace");
	if (strlen(path) >= 4000)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "path is too long");
	return MBX_OK;
}

/* Starts a FILE request: returns its id. */
static uint32_t begin(struct mbx_client *c, uint32_t fop)
{
	uint32_t id = c->next_id++;

	mbx_proto_begin(&c->wb, MBX_MSG_FILE, id);
	mbx_proto_put_u32(&c->wb, MBX_F_FOP, fop);
	return id;
}

/* Sends the request and waits for an answer of type `want`. */
static int finish(mbx_sandbox *sb, struct mbx_client *c, uint32_t id, uint16_t want, struct mbx_frame *f, mbx_error **err)
{
	int rc;

	if (mbx_proto_end(&c->wb) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "file request too large");
	}
	rc = mbx__client_request(c, id, mbx__now_us() + FILE_DEADLINE_US, f, err);
	if (rc == MBX_OK && f->type != want) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered a file request with message type %u", f->type);
	}
	return mbx__sandbox_after(sb, c, rc, err);
}

static int simple(mbx_sandbox *sb, uint32_t fop, const char *path, const char *path2, uint32_t mode, uint32_t flags,
		  const char *what, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	uint32_t id;
	int rc;

	const char *root;

	rc = check_path(path, err);
	if (rc == MBX_OK && path2)
		rc = check_path(path2, err);
	if (rc == MBX_OK)
		rc = target(sb, &c, &root, err);
	if (rc < 0)
		return rc;
	if (root) {
		switch (fop) {
		case MBX_FOP_MKDIR: return mbx__host_mkdir(root, path, mode, (int)flags, err);
		case MBX_FOP_REMOVE: return mbx__host_remove(root, path, (int)flags, err);
		default: return mbx__host_rename(root, path, path2, err);
		}
	}
	(void)what;
	id = begin(c, fop);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	if (path2)
		mbx_proto_put_str(&c->wb, MBX_F_PATH2, path2);
	mbx_proto_put_u32(&c->wb, MBX_F_MODE, mode);
	mbx_proto_put_u32(&c->wb, MBX_F_FLAGS, flags);
	return finish(sb, c, id, MBX_MSG_OK, &f, err);
}

/*
 * Files a sandbox holds never carry privilege: set-user-id and set-group-id
 * bits are refused (a caller may forward a mode a model chose, and a
 * writable mount reaches the host). The agent drops them as well.
 */
static int check_mode(uint32_t mode, mbx_error **err)
{
	if (mode & (S_ISUID | S_ISGID)) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "mode %04o has set-user-id or set-group-id bits", mode & 07777);
		mbx__error_suggest(err, "drop them (mode & 01777): files in a sandbox never carry privilege");
		return MBX_EINVAL;
	}
	return MBX_OK;
}

static int do_mkdir(mbx_sandbox *sb, const char *path, uint32_t mode, int parents, mbx_error **err)
{
	if (check_mode(mode, err) < 0)
		return MBX_EINVAL;
	return simple(sb, MBX_FOP_MKDIR, path, NULL, mode & 07777, parents ? 1 : 0, "the file API", err);
}

static int do_remove(mbx_sandbox *sb, const char *path, int recursive, mbx_error **err)
{
	return simple(sb, MBX_FOP_REMOVE, path, NULL, 0, recursive ? 1 : 0, "the file API", err);
}

static int do_symlink(mbx_sandbox *sb, const char *target, const char *path, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	const char *root;
	uint32_t id;
	int rc;

	MBX_CHECK_ARG(target != NULL, err);
	if (target[0] == '\0' || strlen(target) > MBX_PROTO_TARGET_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "a symlink target must be 1 to %u bytes",
				      MBX_PROTO_TARGET_MAX);
	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (root)
		return mbx__host_symlink(root, target, path, err);
	id = begin(c, MBX_FOP_SYMLINK);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	mbx_proto_put_str(&c->wb, MBX_F_TARGET, target);
	return finish(sb, c, id, MBX_MSG_OK, &f, err);
}

static int do_rename(mbx_sandbox *sb, const char *from, const char *to, mbx_error **err)
{
	return simple(sb, MBX_FOP_RENAME, from, to, 0, 0, "the file API", err);
}

/* Closes a transfer handle; best effort. */
static void close_handle(mbx_sandbox *sb, struct mbx_client *c, uint32_t handle)
{
	struct mbx_frame f;
	uint32_t id;

	if (c->broken || sb->destroyed)
		return;
	id = begin(c, MBX_FOP_CLOSE);
	mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
	finish(sb, c, id, MBX_MSG_OK, &f, NULL);
}

/* Reads a file chunk by chunk, handing each to sink. */
static int read_chunks(mbx_sandbox *sb, const char *path, int (*sink)(void *, const uint8_t *, size_t), void *arg,
		       mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	uint64_t limit = file_limit(sb), total = 0, size = 0;
	uint32_t id, handle, more = 1;
	const char *root;
	int rc;

	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (root)
		return mbx__host_read(root, path, limit, sink, arg, err);
	id = begin(c, MBX_FOP_OPEN_READ);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
	if (rc < 0)
		return rc;
	if (mbx_proto_find_u32(&f, MBX_F_HANDLE, &handle) < 0) {
		c->broken = 1;
		return mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent opened a file without a handle"), err);
	}
	mbx_proto_find_u64(&f, MBX_F_SIZE, &size);
	if (size > limit) {
		close_handle(sb, c, handle);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` has %llu bytes, over the file limit of %llu",
				      path, (unsigned long long)size, (unsigned long long)limit);
	}
	while (more) {
		const uint8_t *data;
		uint32_t len;

		id = begin(c, MBX_FOP_READ);
		mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
		rc = finish(sb, c, id, MBX_MSG_FILE_DATA, &f, err);
		if (rc < 0)
			return rc;
		if (mbx_proto_decode_data(&f, &data, &len) < 0 || len > MBX_PROTO_FILE_CHUNK ||
		    mbx_proto_find_u32(&f, MBX_F_MORE, &more) < 0) {
			c->broken = 1;
			return mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed file chunk"), err);
		}
		if (len == 0)
			break;
		total += len;
		if (total > limit) {
			/* The file grew while it was read. */
			close_handle(sb, c, handle);
			return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` is over the file limit of %llu bytes",
					      path, (unsigned long long)limit);
		}
		rc = sink(arg, data, len);
		if (rc < 0) {
			close_handle(sb, c, handle);
			return mbx__error_set(err, rc == -ENOMEM ? MBX_ENOMEM : MBX_ESYS, -rc, NULL, "store the contents of `%s`", path);
		}
	}
	close_handle(sb, c, handle);
	return MBX_OK;
}

static int sink_buf(void *arg, const uint8_t *data, size_t len)
{
	return mbx__buf_append(arg, data, len) < 0 ? -ENOMEM : 0;
}

static int sink_fd(void *arg, const uint8_t *data, size_t len)
{
	int fd = *(int *)arg;

	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int do_read_file(mbx_sandbox *sb, const char *path, uint8_t **data, size_t *len, mbx_error **err)
{
	struct mbx_buf b = { 0 };
	int rc;

	if (data == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_read_file: data is NULL");
	*data = NULL;
	if (len)
		*len = 0;
	rc = read_chunks(sb, path, sink_buf, &b, err);
	if (rc == MBX_OK && b.data == NULL && mbx__buf_append(&b, "", 0) < 0)
		rc = mbx__error_oom(err);
	if (rc < 0) {
		mbx__buf_release(&b);
		return rc;
	}
	*data = b.data;
	if (len)
		*len = b.len;
	return MBX_OK;
}

static int do_read_file_to_fd(mbx_sandbox *sb, const char *path, int fd, mbx_error **err)
{
	if (fd < 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "bad file descriptor %d", fd);
	return read_chunks(sb, path, sink_fd, &fd, err);
}

void mbx_buffer_free(uint8_t *data)
{
	free(data);
}

/* A source of bytes for write_chunks: returns bytes placed in buf, 0 at
 * the end, or -errno. */
typedef ssize_t (*source_fn)(void *arg, uint8_t *buf, size_t room);

struct mem_source {
	const uint8_t *p;
	size_t left;
};

static ssize_t source_mem(void *arg, uint8_t *buf, size_t room)
{
	struct mem_source *m = arg;
	size_t n = m->left < room ? m->left : room;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

static ssize_t source_fd(void *arg, uint8_t *buf, size_t room)
{
	int fd = *(int *)arg;
	size_t got = 0;

	/* Fill the chunk: a pipe hands out a page at a time. */
	while (got < room) {
		ssize_t n = read(fd, buf + got, room - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return got ? (ssize_t)got : -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_chunks(mbx_sandbox *sb, const char *path, uint32_t mode, uint32_t flags, source_fn src, void *arg,
			mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	uint64_t limit = file_limit(sb), total = 0;
	uint32_t id, handle;
	uint8_t *buf;
	const char *root;
	int rc;

	if (check_mode(mode, err) < 0)
		return MBX_EINVAL;

	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (flags & ~(MBX_WRITE_APPEND | MBX_WRITE_EXCLUSIVE))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown write flags 0x%x", flags);
	if (root)
		return mbx__host_write(root, path, mode, flags, limit, src, arg, err);
	buf = malloc(MBX_PROTO_FILE_CHUNK);
	if (buf == NULL)
		return mbx__error_oom(err);
	id = begin(c, MBX_FOP_OPEN_WRITE);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	mbx_proto_put_u32(&c->wb, MBX_F_MODE, mode & 07777);
	mbx_proto_put_u32(&c->wb, MBX_F_FLAGS, flags);
	rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
	if (rc < 0)
		goto out;
	if (mbx_proto_find_u32(&f, MBX_F_HANDLE, &handle) < 0) {
		c->broken = 1;
		rc = mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent opened a file without a handle"), err);
		goto out;
	}
	for (;;) {
		ssize_t n = src(arg, buf, MBX_PROTO_FILE_CHUNK);

		if (n < 0) {
			rc = mbx__error_set(err, MBX_ESYS, (int)-n, NULL, "read the data for `%s`", path);
			close_handle(sb, c, handle);
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > limit) {
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "data for `%s` is over the file limit of %llu bytes",
					    path, (unsigned long long)limit);
			close_handle(sb, c, handle);
			goto out;
		}
		id = begin(c, MBX_FOP_WRITE);
		mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
		mbx_proto_put(&c->wb, MBX_F_DATA, buf, (size_t)n);
		rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
		if (rc < 0)
			goto out; /* the agent dropped the handle */
	}
	id = begin(c, MBX_FOP_COMMIT);
	mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
	rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
out:
	free(buf);
	return rc;
}

static int do_write_file(mbx_sandbox *sb, const char *path, const void *data, size_t len, uint32_t mode, uint32_t flags,
			   mbx_error **err)
{
	struct mem_source m = { data, len };

	if (data == NULL && len > 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "data is NULL");
	return write_chunks(sb, path, mode, flags, source_mem, &m, err);
}

static int do_write_file_from_fd(mbx_sandbox *sb, const char *path, int fd, uint32_t mode, mbx_error **err)
{
	if (fd < 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "bad file descriptor %d", fd);
	return write_chunks(sb, path, mode, 0, source_fd, &fd, err);
}

static int do_stat(mbx_sandbox *sb, const char *path, mbx_stat **out, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	mbx_stat *st;
	const char *root;
	uint32_t id;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_stat: out is NULL");
	*out = NULL;
	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (root) {
		st = calloc(1, sizeof(*st));
		if (st == NULL)
			return mbx__error_oom(err);
		rc = mbx__host_stat(root, path, &st->info, err);
		if (rc == MBX_OK && st->info.ftype == MBX_FILE_SYMLINK)
			rc = mbx__host_readlink(root, path, &st->target, err);
		if (rc < 0) {
			free(st);
			return rc;
		}
		st->info.target = NULL;
		*out = st;
		return MBX_OK;
	}
	id = begin(c, MBX_FOP_STAT);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	rc = finish(sb, c, id, MBX_MSG_FILE_STAT, &f, err);
	if (rc < 0)
		return rc;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return mbx__error_oom(err);
	if (mbx_proto_decode_stat(&f, &st->info) < 0) {
		free(st);
		c->broken = 1;
		return mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed stat"), err);
	}
	/* The target points into the frame: keep a copy. */
	if (st->info.target != NULL) {
		st->target = strndup((const char *)st->info.target, st->info.target_len);
		st->info.target = NULL;
		if (st->target == NULL) {
			free(st);
			return mbx__error_oom(err);
		}
	}
	*out = st;
	return MBX_OK;
}

mbx_file_type_t mbx_stat_type(const mbx_stat *st) { return st ? (mbx_file_type_t)st->info.ftype : 0; }
uint64_t mbx_stat_size(const mbx_stat *st) { return st ? st->info.size : 0; }
uint32_t mbx_stat_mode(const mbx_stat *st) { return st ? st->info.mode : 0; }
int64_t mbx_stat_mtime_ns(const mbx_stat *st) { return st ? st->info.mtime_ns : 0; }
uint32_t mbx_stat_uid(const mbx_stat *st) { return st ? st->info.uid : 0; }
uint32_t mbx_stat_gid(const mbx_stat *st) { return st ? st->info.gid : 0; }
const char *mbx_stat_symlink_target(const mbx_stat *st) { return st ? st->target : NULL; }

void mbx_stat_free(mbx_stat *st)
{
	if (st == NULL)
		return;
	free(st->target);
	free(st);
}

/* Listings larger than this many entries are refused rather than held. */
#define DIR_MAX_ENTRIES 1000000u

static int dir_add(const struct mbx_file_info *info, void *arg)
{
	mbx_dir *d = arg;
	struct mbx_dir_entry *ne;

	if (d->n >= DIR_MAX_ENTRIES)
		return -3;
	ne = realloc(d->e, (d->n + 1) * sizeof(*ne));
	if (ne == NULL)
		return -2;
	d->e = ne;
	d->e[d->n].name = strndup((const char *)info->name, info->name_len);
	if (d->e[d->n].name == NULL)
		return -2;
	d->e[d->n].type = (mbx_file_type_t)info->ftype;
	d->e[d->n].size = info->size;
	d->e[d->n].symlink = (info->flags & 1) != 0;
	d->e[d->n].target = NULL;
	if (info->target != NULL) {
		d->e[d->n].target = strndup((const char *)info->target, info->target_len);
		if (d->e[d->n].target == NULL) {
			free(d->e[d->n].name);
			return -2;
		}
	}
	d->n++;
	return 0;
}

static int dir_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mbx_dir_entry *)a)->name, ((const struct mbx_dir_entry *)b)->name);
}

static int do_list_dir(mbx_sandbox *sb, const char *path, mbx_dir **out, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	mbx_dir *d;
	const char *root;
	uint32_t id, more = 1;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_list_dir: out is NULL");
	*out = NULL;
	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return mbx__error_oom(err);
	if (root) {
		rc = mbx__host_list(root, path, dir_add, d, err);
		more = 0;
	}
	while (more) {
		int drc;

		id = begin(c, MBX_FOP_LIST);
		mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
		mbx_proto_put_u64(&c->wb, MBX_F_OFFSET, d->n);
		rc = finish(sb, c, id, MBX_MSG_FILE_DIR, &f, err);
		if (rc < 0)
			break;
		drc = mbx_proto_decode_dir(&f, dir_add, d, &more);
		if (drc == -2) {
			rc = mbx__error_oom(err);
		} else if (drc == -3) {
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` has more than %u entries", path, DIR_MAX_ENTRIES);
		} else if (drc < 0) {
			c->broken = 1;
			rc = mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed listing"), err);
		}
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		mbx_dir_free(d);
		return rc;
	}
	if (d->n > 1)
		qsort(d->e, d->n, sizeof(*d->e), dir_cmp);
	*out = d;
	return MBX_OK;
}

size_t mbx_dir_count(const mbx_dir *d) { return d ? d->n : 0; }
const char *mbx_dir_name(const mbx_dir *d, size_t i) { return (d && i < d->n) ? d->e[i].name : NULL; }
mbx_file_type_t mbx_dir_type(const mbx_dir *d, size_t i) { return (d && i < d->n) ? d->e[i].type : 0; }
uint64_t mbx_dir_size(const mbx_dir *d, size_t i) { return (d && i < d->n) ? d->e[i].size : 0; }
int mbx_dir_is_symlink(const mbx_dir *d, size_t i) { return (d && i < d->n) ? d->e[i].symlink : 0; }
const char *mbx_dir_symlink_target(const mbx_dir *d, size_t i) { return (d && i < d->n) ? d->e[i].target : NULL; }

void mbx_dir_free(mbx_dir *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->e[i].name);
		free(d->e[i].target);
	}
	free(d->e);
	free(d);
}

/* ---- the public calls: each runs inside the sandbox (mbx__sandbox_enter()),
 * so that several threads may use one sandbox; a backend without an agent
 * needs no lock (see the top of src/core/sandbox.c) ---- */

int mbx_sandbox_mkdir(mbx_sandbox *sb, const char *path, uint32_t mode, int parents, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_mkdir(sb, path, mode, parents, err);
	mbx__sandbox_enter(sb);
	rc = do_mkdir(sb, path, mode, parents, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_remove(mbx_sandbox *sb, const char *path, int recursive, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_remove(sb, path, recursive, err);
	mbx__sandbox_enter(sb);
	rc = do_remove(sb, path, recursive, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_symlink(mbx_sandbox *sb, const char *target, const char *path, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_symlink(sb, target, path, err);
	mbx__sandbox_enter(sb);
	rc = do_symlink(sb, target, path, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_rename(mbx_sandbox *sb, const char *from, const char *to, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_rename(sb, from, to, err);
	mbx__sandbox_enter(sb);
	rc = do_rename(sb, from, to, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_read_file(mbx_sandbox *sb, const char *path, uint8_t **data, size_t *len, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_read_file(sb, path, data, len, err);
	mbx__sandbox_enter(sb);
	rc = do_read_file(sb, path, data, len, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_read_file_to_fd(mbx_sandbox *sb, const char *path, int fd, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_read_file_to_fd(sb, path, fd, err);
	mbx__sandbox_enter(sb);
	rc = do_read_file_to_fd(sb, path, fd, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_write_file(mbx_sandbox *sb, const char *path, const void *data, size_t len, uint32_t mode, uint32_t flags,
			   mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_write_file(sb, path, data, len, mode, flags, err);
	mbx__sandbox_enter(sb);
	rc = do_write_file(sb, path, data, len, mode, flags, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_write_file_from_fd(mbx_sandbox *sb, const char *path, int fd, uint32_t mode, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_write_file_from_fd(sb, path, fd, mode, err);
	mbx__sandbox_enter(sb);
	rc = do_write_file_from_fd(sb, path, fd, mode, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_stat(mbx_sandbox *sb, const char *path, mbx_stat **out, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_stat(sb, path, out, err);
	mbx__sandbox_enter(sb);
	rc = do_stat(sb, path, out, err);
	mbx__sandbox_leave(sb);
	return rc;
}

int mbx_sandbox_list_dir(mbx_sandbox *sb, const char *path, mbx_dir **out, mbx_error **err)
{
	int rc;

	if (sb == NULL || !mbx__sandbox_locks(sb))
		return do_list_dir(sb, path, out, err);
	mbx__sandbox_enter(sb);
	rc = do_list_dir(sb, path, out, err);
	mbx__sandbox_leave(sb);
	return rc;
}
