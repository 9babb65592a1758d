/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file API (mbx/file.h) over the sandbox's agent channel. Transfers go
 * chunk by chunk (MBX_PROTO_FILE_CHUNK): the host asks for each chunk, so
 * neither side buffers more than one, and a transfer over the sandbox's file
 * limit stops with MBX_ETOOBIG. Everything read from the agent is checked:
 * sizes against the limit, names against '/' and NUL (proto.c).
 *
 * When the channel passes descriptors (the os backend), the contents move
 * through a transfer pipe instead (proto.h, MBX_PROTO_PIPE_CHUNK): a pipe
 * of about 1 MiB made here per transfer, one end given to the agent with
 * the open, which splices between it and the file inside the sandbox. The
 * agent still opens and checks every path; only the bytes take another
 * way, without the copies into frames and through the socket. Here they
 * are spliced from or to the caller's descriptor when it allows, read or
 * written otherwise. The agent's counts are checked against what the pipe
 * holds (FIONREAD), so it cannot make this side wait or read past a chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* The host's end of a transfer pipe (see the top). */
struct xpipe {
	int host;      /* our end, non-blocking; -1: no pipe, DATA frames */
	int agent;     /* the agent's end until it was sent */
	size_t chunk;  /* bytes per READ or WRITE */
};

/* Makes the transfer pipe when the channel can pass it; without one (or
 * without a pipe at all) the transfer goes in DATA frames as ever. */
static void xpipe_open(struct mbx_client *c, int reading, struct xpipe *x)
{
	int p[2];
	int cap;

	x->host = x->agent = -1;
	x->chunk = 0;
	if (c->tr.ops == NULL || !c->tr.ops->can_pass_fds || pipe2(p, O_CLOEXEC) < 0)
		return;
	(void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* may be refused: the size it has then */
	cap = fcntl(p[0], F_GETPIPE_SZ);
	if (cap < (64 << 10) || fcntl(reading ? p[0] : p[1], F_SETFL, O_NONBLOCK) < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	x->host = reading ? p[0] : p[1];
	x->agent = reading ? p[1] : p[0];
	x->chunk = (size_t)cap - 8192 < MBX_PROTO_PIPE_CHUNK ? (size_t)cap - 8192 : MBX_PROTO_PIPE_CHUNK;
	/* A write keeps one chunk in flight while it puts in the next. */
	if (!reading)
		x->chunk = (x->chunk / 2) & ~(size_t)4095;
}

static void xpipe_close(struct xpipe *x)
{
	if (x->host >= 0)
		close(x->host);
	if (x->agent >= 0)
		close(x->agent);
	x->host = x->agent = -1;
}

/* Bytes waiting in our end of the pipe, or -1. */
static long xpipe_held(const struct xpipe *x)
{
	int n = 0;

	return ioctl(x->host, FIONREAD, &n) < 0 ? -1 : n;
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
static int finish_fds(mbx_sandbox *sb, struct mbx_client *c, const int *fds, size_t nfds, uint32_t id, uint16_t want,
		      struct mbx_frame *f, mbx_error **err)
{
	int rc;

	if (mbx_proto_end(&c->wb) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "file request too large");
	}
	rc = mbx__client_request_fds(c, fds, nfds, id, mbx__now_us() + FILE_DEADLINE_US, f, err);
	if (rc == MBX_OK && f->type != want) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered a file request with message type %u", f->type);
	}
	return mbx__sandbox_after(sb, c, rc, err);
}

static int finish(mbx_sandbox *sb, struct mbx_client *c, uint32_t id, uint16_t want, struct mbx_frame *f, mbx_error **err)
{
	return finish_fds(sb, c, NULL, 0, id, want, f, err);
}

static int await_ok(mbx_sandbox *sb, struct mbx_client *c, uint32_t id, struct mbx_frame *f, mbx_error **err);

/*
 * Sends the request without waiting: *pending = id, and await_ok takes its
 * answer later. When the client expects too many answers already (many
 * threads writing at once), its answer is awaited now and *pending = 0.
 */
static int send_only(mbx_sandbox *sb, struct mbx_client *c, uint32_t id, uint32_t *pending, mbx_error **err)
{
	struct mbx_frame f;
	int rc;

	*pending = 0;
	if (mbx_proto_end(&c->wb) < 0) {
		mbx_wbuf_reset(&c->wb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "file request too large");
	}
	rc = mbx__client_send(c, mbx__now_us() + FILE_DEADLINE_US, err);
	if (rc < 0) {
		c->broken = 1;
		return mbx__sandbox_after(sb, c, rc, err);
	}
	if (mbx__client_expect(c, id) < 0)
		return await_ok(sb, c, id, &f, err);
	*pending = id;
	return MBX_OK;
}

/* The OK answer of a request sent with send_only. */
static int await_ok(mbx_sandbox *sb, struct mbx_client *c, uint32_t id, struct mbx_frame *f, mbx_error **err)
{
	int rc = mbx__client_await(c, id, mbx__now_us() + FILE_DEADLINE_US, f, err);

	if (rc == MBX_OK && f->type != MBX_MSG_OK) {
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

static int sink_fd(void *arg, const uint8_t *data, size_t len);

/* Waits until fd is ready for `events`; 0, or -errno. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Hands the n bytes the agent put in the transfer pipe to the sink:
 * spliced into the caller's descriptor while it takes that (*direct),
 * through buf otherwise. 0, or -errno. */
static int xpipe_drain(struct xpipe *x, size_t n, int (*sink)(void *, const uint8_t *, size_t), void *arg, uint8_t *buf,
		       int *direct)
{
	while (n > 0) {
		ssize_t k;
		int rc;

		if (*direct) {
			k = splice(x->host, NULL, *(int *)arg, NULL, n, 0);
			if (k > 0) {
				n -= (size_t)k;
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0 && errno == EAGAIN) {
				/* our end is non-blocking, which splice applies to both */
				rc = wait_fd(*(int *)arg, POLLOUT);
				if (rc < 0)
					return rc;
				continue;
			}
			if (k < 0 && errno == EINVAL) {
				*direct = 0; /* a descriptor splice cannot write (O_APPEND, ...) */
				continue;
			}
			return k < 0 ? -errno : -EIO;
		}
		k = read(x->host, buf, n < MBX_PROTO_PIPE_CHUNK ? n : MBX_PROTO_PIPE_CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		rc = sink(arg, buf, (size_t)k);
		if (rc < 0)
			return rc;
		n -= (size_t)k;
	}
	return 0;
}

/* read_chunks through the transfer pipe, after the open. */
static int read_piped(mbx_sandbox *sb, struct mbx_client *c, const char *path, uint32_t handle, struct xpipe *x,
		      int (*sink)(void *, const uint8_t *, size_t), void *arg, mbx_error **err)
{
	uint64_t limit = file_limit(sb), total = 0;
	int direct = sink == sink_fd, rc;
	uint8_t *buf = malloc(MBX_PROTO_PIPE_CHUNK);
	struct mbx_frame f;

	if (buf == NULL) {
		close_handle(sb, c, handle);
		return mbx__error_oom(err);
	}
	for (;;) {
		uint64_t n = 0;
		uint32_t more = 0, id = begin(c, MBX_FOP_READ);

		mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
		mbx_proto_put_u64(&c->wb, MBX_F_SIZE, x->chunk);
		rc = finish(sb, c, id, MBX_MSG_FILE_DATA, &f, err);
		if (rc < 0)
			break;
		if (mbx_proto_find_u64(&f, MBX_F_SIZE, &n) < 0 || n > x->chunk || mbx_proto_find_u32(&f, MBX_F_MORE, &more) < 0 ||
		    xpipe_held(x) != (long)n) {
			c->broken = 1;
			rc = mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL,
								      "the sandbox agent sent a malformed file chunk (its count does not match the transfer pipe)"),
						err);
			break;
		}
		if (n == 0)
			break;
		total += n;
		if (total > limit) {
			/* The file grew while it was read. */
			close_handle(sb, c, handle);
			rc = mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` is over the file limit of %llu bytes", path,
					    (unsigned long long)limit);
			break;
		}
		rc = xpipe_drain(x, (size_t)n, sink, arg, buf, &direct);
		if (rc < 0) {
			close_handle(sb, c, handle);
			rc = mbx__error_set(err, rc == -ENOMEM ? MBX_ENOMEM : MBX_ESYS, -rc, NULL, "store the contents of `%s`", path);
			break;
		}
	}
	if (rc == MBX_OK)
		close_handle(sb, c, handle);
	free(buf);
	return rc;
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
	struct xpipe x;
	int rc;

	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (root)
		return mbx__host_read(root, path, limit, sink, arg, err);
	xpipe_open(c, 1, &x);
	id = begin(c, MBX_FOP_OPEN_READ);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	if (x.agent >= 0)
		mbx_proto_put_u32(&c->wb, MBX_F_FD, 0);
	rc = finish_fds(sb, c, x.agent >= 0 ? &x.agent : NULL, x.agent >= 0 ? 1 : 0, id, MBX_MSG_OK, &f, err);
	if (x.agent >= 0) {
		close(x.agent); /* the agent's now */
		x.agent = -1;
	}
	if (rc < 0) {
		xpipe_close(&x);
		return rc;
	}
	if (mbx_proto_find_u32(&f, MBX_F_HANDLE, &handle) < 0) {
		xpipe_close(&x);
		c->broken = 1;
		return mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent opened a file without a handle"), err);
	}
	mbx_proto_find_u64(&f, MBX_F_SIZE, &size);
	if (size > limit) {
		xpipe_close(&x);
		close_handle(sb, c, handle);
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "`%s` has %llu bytes, over the file limit of %llu",
				      path, (unsigned long long)size, (unsigned long long)limit);
	}
	if (x.host >= 0) {
		rc = read_piped(sb, c, path, handle, &x, sink, arg, err);
		xpipe_close(&x);
		return rc;
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

/* Puts the next bytes for one WRITE in the transfer pipe, at most a chunk:
 * spliced from the caller's descriptor while it gives that (*direct), while
 * the agent may still be taking the chunk before; from src through buf
 * otherwise, into the empty pipe. The count, 0 at the end, -EAGAIN when the
 * pipe is full with the chunk before, or -errno. */
static ssize_t xpipe_fill(struct xpipe *x, source_fn src, void *arg, uint8_t *buf, int *direct)
{
	size_t filled = 0, off = 0;
	ssize_t n;

	while (*direct && filled < x->chunk) {
		int fd = *(int *)arg, rc;

		n = splice(fd, NULL, x->host, NULL, x->chunk - filled, SPLICE_F_NONBLOCK);
		if (n > 0) {
			filled += (size_t)n;
			continue;
		}
		if (n == 0)
			return (ssize_t)filled; /* the end of the source */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			struct pollfd p = { .fd = x->host, .events = POLLOUT };

			/* Our pipe full: send what this chunk has, or, with
			 * nothing yet, the caller first waits for the chunk
			 * before (the agent empties the pipe). Otherwise the
			 * source has nothing yet. */
			if (poll(&p, 1, 0) == 0)
				return filled > 0 ? (ssize_t)filled : -EAGAIN;
			rc = wait_fd(fd, POLLIN);
			if (rc < 0)
				return rc;
			continue;
		}
		if (errno == EINVAL && filled == 0) {
			*direct = 0; /* a source splice cannot read (a terminal, ...) */
			break;
		}
		return -errno;
	}
	if (*direct)
		return (ssize_t)filled;
	n = src(arg, buf, x->chunk);
	if (n <= 0)
		return n;
	/* The pipe is empty and holds a chunk: it takes the bytes at once. */
	while (off < (size_t)n) {
		ssize_t w = write(x->host, buf + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (size_t)w;
	}
	return n;
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
	struct xpipe x;
	uint32_t pending = 0; /* a WRITE through the pipe whose answer is to come */
	int rc, direct = src == source_fd;

	if (check_mode(mode, err) < 0)
		return MBX_EINVAL;

	rc = begin_path(sb, path, &c, &root, err);
	if (rc < 0)
		return rc;
	if (flags & ~(MBX_WRITE_APPEND | MBX_WRITE_EXCLUSIVE))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown write flags 0x%x", flags);
	if (root)
		return mbx__host_write(root, path, mode, flags, limit, src, arg, err);
	xpipe_open(c, 0, &x);
	buf = malloc(x.host >= 0 ? MBX_PROTO_PIPE_CHUNK : MBX_PROTO_FILE_CHUNK);
	if (buf == NULL) {
		xpipe_close(&x);
		return mbx__error_oom(err);
	}
	id = begin(c, MBX_FOP_OPEN_WRITE);
	mbx_proto_put_str(&c->wb, MBX_F_PATH, path);
	mbx_proto_put_u32(&c->wb, MBX_F_MODE, mode & 07777);
	mbx_proto_put_u32(&c->wb, MBX_F_FLAGS, flags);
	if (x.agent >= 0)
		mbx_proto_put_u32(&c->wb, MBX_F_FD, 0);
	rc = finish_fds(sb, c, x.agent >= 0 ? &x.agent : NULL, x.agent >= 0 ? 1 : 0, id, MBX_MSG_OK, &f, err);
	if (rc < 0)
		goto out;
	if (mbx_proto_find_u32(&f, MBX_F_HANDLE, &handle) < 0) {
		c->broken = 1;
		rc = mbx__sandbox_after(sb, c, mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent opened a file without a handle"), err);
		goto out;
	}
	/*
	 * Through the pipe, one WRITE is in flight while the next chunk goes
	 * into the pipe: the agent writes the file while the source is read.
	 * Its answer is awaited before the next WRITE (or before the pipe is
	 * filled through buf, which needs the pipe empty). Our copy of the
	 * agent's end stays open meanwhile: a pipe with a reader never raises
	 * SIGPIPE here, even when the agent dropped the handle.
	 */
	for (;;) {
		ssize_t n;

		if (pending && !direct) {
			rc = await_ok(sb, c, pending, &f, err);
			pending = 0;
			if (rc < 0)
				goto out;
		}
		n = x.host >= 0 ? xpipe_fill(&x, src, arg, buf, &direct) : src(arg, buf, MBX_PROTO_FILE_CHUNK);
		if (pending) {
			rc = await_ok(sb, c, pending, &f, err);
			pending = 0;
			if (rc < 0)
				goto out;
			if (n == -EAGAIN)
				continue; /* the pipe is empty now */
		}
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
		if (x.host >= 0) {
			mbx_proto_put_u64(&c->wb, MBX_F_SIZE, (uint64_t)n); /* the bytes are in the pipe */
			rc = send_only(sb, c, id, &pending, err);
			if (rc < 0)
				goto out;
			continue;
		}
		mbx_proto_put(&c->wb, MBX_F_DATA, buf, (size_t)n);
		rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
		if (rc < 0)
			goto out; /* the agent dropped the handle */
	}
	id = begin(c, MBX_FOP_COMMIT);
	mbx_proto_put_u32(&c->wb, MBX_F_HANDLE, handle);
	rc = finish(sb, c, id, MBX_MSG_OK, &f, err);
out:
	xpipe_close(&x);
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
