/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FILE: the file API, served inside the sandbox. The agent's root is the
 * sandbox's root, so every path, symlink and `..` resolves within the
 * sandbox's view; nothing here can reach the host's files. Relative paths
 * are relative to /workspace. Reads and writes go through handles, one
 * chunk per request, so the host paces the transfer and neither side holds
 * more than a chunk.
 *
 * The agent is one thread serving every request of the sandbox, and the
 * payload controls what a path names. So nothing here may block on an
 * object the payload made: every open is O_NONBLOCK (a FIFO opens at once,
 * with no writer or reader), and the descriptor is checked with fstat
 * before any read or write. Only regular files are read or written, and
 * only directories are listed; a FIFO, socket or device node (/dev/zero,
 * /dev/tty) is refused with MBX_EINVAL "not a regular file".
 *
 * The transfer pipe (os backend: its channel passes descriptors). OPEN_READ
 * or OPEN_WRITE may come with a pipe (MBX_F_FD): the host's end of it stays
 * with the host, ours belongs to the handle. The contents then move through
 * the pipe instead of DATA fields, spliced between it and the file without
 * a copy through our memory or the channel. Pacing stays the host's, one
 * chunk per request, and nothing here waits on the pipe: READ splices at
 * most SIZE bytes (the host drained the pipe before it asked, and asks for
 * less than it holds) and answers with their count; WRITE comes after the
 * host put its SIZE bytes in the pipe, and fewer there is an error, not a
 * wait. Paths, opens and checks are the same as for DATA transfers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbx/error.h>
#include <mbx/file.h>
#include "agent.h"
#include "platform/linux/rmtree.h"

/* Entries per FILE_DIR frame: far below the frame limit even for 255-byte names. */
#define DIR_BATCH 1024
/* Bytes of a FILE_DIR frame after which the batch ends (symlink targets make entries up to ~4.4 KiB). */
#define DIR_BATCH_BYTES (MBX_PROTO_MAX_BODY / 2)

/* Adds the target of the symlink `name` below `dirfd` (AT_FDCWD: a path) as MBX_F_TARGET; nothing when unreadable. */
static void put_target(struct mbx_wbuf *out, int dirfd, const char *name)
{
	char target[MBX_PROTO_TARGET_MAX + 1];
	ssize_t n = readlinkat(dirfd, name, target, sizeof(target));

	if (n > 0 && (size_t)n <= MBX_PROTO_TARGET_MAX)
		mbx_proto_put(out, MBX_F_TARGET, target, (size_t)n);
}

struct file_req {
	uint32_t fop;
	char path[4096];
	char path2[4096];
	char target[MBX_PROTO_TARGET_MAX + 1];
	uint32_t mode;
	uint32_t flags;
	uint32_t handle;
	uint64_t size;
	uint64_t offset;
	const uint8_t *data;
	uint32_t data_len;
	int have_handle;
	uint32_t fd_index;      /* MBX_F_FD: a transfer pipe passed with the request */
	int have_fd;
};

/* Copies a path field: relative paths go under /workspace. */
static int take_path(char *dst, size_t cap, const uint8_t *v, uint32_t n)
{
	const char *prefix = (n > 0 && v[0] == '/') ? "" : "/workspace/";
	size_t plen = strlen(prefix);

	if (n == 0 || memchr(v, '\0', n) != NULL || plen + n >= cap)
		return -1;
	memcpy(dst, prefix, plen);
	memcpy(dst + plen, v, n);
	dst[plen + n] = '\0';
	return 0;
}

static int parse(const struct mbx_frame *f, struct file_req *r)
{
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;
	int rc;

	memset(r, 0, sizeof(*r));
	mbx_field_iter_init(&it, f->body, f->len);
	while ((rc = mbx_field_next(&it, &tag, &v, &n)) == 1) {
		int bad = 0;

		switch (tag) {
		case MBX_F_FOP: bad = mbx_field_u32(v, n, &r->fop); break;
		case MBX_F_PATH: bad = take_path(r->path, sizeof(r->path), v, n); break;
		case MBX_F_PATH2: bad = take_path(r->path2, sizeof(r->path2), v, n); break;
		case MBX_F_TARGET:
			/* Taken as is: a relative target is relative to the link, not to /workspace. */
			bad = n == 0 || n > MBX_PROTO_TARGET_MAX || memchr(v, '\0', n) != NULL;
			if (!bad) {
				memcpy(r->target, v, n);
				r->target[n] = '\0';
			}
			break;
		case MBX_F_MODE: bad = mbx_field_u32(v, n, &r->mode); break;
		case MBX_F_FLAGS: bad = mbx_field_u32(v, n, &r->flags); break;
		case MBX_F_HANDLE: bad = mbx_field_u32(v, n, &r->handle); r->have_handle = 1; break;
		case MBX_F_SIZE: bad = mbx_field_u64(v, n, &r->size); break;
		case MBX_F_OFFSET: bad = mbx_field_u64(v, n, &r->offset); break;
		case MBX_F_DATA: r->data = v; r->data_len = n; break;
		case MBX_F_FD: bad = mbx_field_u32(v, n, &r->fd_index); r->have_fd = 1; break;
		default: break;
		}
		if (bad)
			return -1;
	}
	return rc < 0 ? -1 : 0;
}

/* The error code the host sees for an errno of a file operation. */
static int code_of(int e)
{
	switch (e) {
	case ENOENT: return MBX_ENOTFOUND;
	case EACCES: case EPERM: case EROFS: return MBX_EPERM;
	case ENOTDIR: return MBX_ENOTDIR;
	case EEXIST: case ENOTEMPTY: return MBX_EEXIST;
	case EFBIG: case ENOSPC: case EDQUOT: return MBX_ETOOBIG;
	default: return MBX_ESYS;
	}
}

static void fail(struct agent_state *st, uint32_t id, const char *what, const char *path)
{
	int e = errno;

	agent_send_error(st, id, code_of(e), e, NULL, "%s `%s`", what, path);
}

static void ok(struct agent_state *st, uint32_t id, int handle, uint64_t size, int have_size)
{
	mbx_proto_begin(&st->out, MBX_MSG_OK, id);
	if (handle >= 0)
		mbx_proto_put_u32(&st->out, MBX_F_HANDLE, (uint32_t)handle);
	if (have_size)
		mbx_proto_put_u64(&st->out, MBX_F_SIZE, size);
	mbx_proto_end(&st->out);
}

static uint32_t type_of(mode_t m)
{
	return S_ISREG(m) ? MBX_FILE_REGULAR : S_ISDIR(m) ? MBX_FILE_DIRECTORY : S_ISLNK(m) ? MBX_FILE_SYMLINK : MBX_FILE_OTHER;
}

static int new_handle(struct agent_state *st)
{
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (st->files[i].fd < 0)
			return i;
	return -1;
}

static struct agent_file *get_handle(struct agent_state *st, const struct file_req *r)
{
	if (!r->have_handle || r->handle >= AGENT_MAX_FILES || st->files[r->handle].fd < 0)
		return NULL;
	return &st->files[r->handle];
}

static void drop_handle(struct agent_file *h)
{
	if (h->fd >= 0)
		close(h->fd);
	if (h->pipe >= 0)
		close(h->pipe);
	h->pipe = -1;
	if (h->tmp)
		unlink(h->tmp);
	free(h->tmp);
	free(h->path);
	h->fd = -1;
	h->tmp = NULL;
	h->path = NULL;
	h->writing = 0;
}

/*
 * Opens `path` with `flags` (plus O_NONBLOCK, O_CLOEXEC, O_NOCTTY) and keeps
 * the descriptor only if it is a regular file. A FIFO, socket or device is
 * never read or written: a FIFO opened non-blocking returns at once, and the
 * check follows on the descriptor itself, so a rename between the check and
 * the use cannot swap the object. Returns the fd, or -1 with errno set:
 * EISDIR for a directory, EINVAL for other non-regular files.
 */
static int open_regular(const char *path, int flags, mode_t mode, struct stat *sb)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);

	if (fd < 0)
		return -1;
	if (fstat(fd, sb) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		errno = S_ISDIR(sb->st_mode) ? EISDIR : EINVAL;
		return -1;
	}
	return fd;
}

/* The error for a failed open_regular(). */
static void fail_open(struct agent_state *st, uint32_t id, const char *what, const char *path)
{
	if (errno == EISDIR)
		agent_send_error(st, id, MBX_EINVAL, EISDIR, NULL, "%s `%s`: it is a directory", what, path);
	else if (errno == EINVAL)
		agent_send_error(st, id, MBX_EINVAL, EINVAL, NULL,
				 "%s `%s`: not a regular file (a FIFO, socket or device); only regular files can be transferred",
				 what, path);
	else if (errno == ENXIO)
		/* A FIFO without a reader, or a socket: open(2) refuses those
		 * non-blocking writes before fstat can. */
		agent_send_error(st, id, MBX_EINVAL, ENXIO, NULL,
				 "%s `%s`: not a regular file (a FIFO, socket or device); only regular files can be transferred",
				 what, path);
	else
		fail(st, id, what, path);
}

static int mkdir_parents(char *path, mode_t mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static void do_list(struct agent_state *st, uint32_t id, const struct file_req *r)
{
	/* O_DIRECTORY fails on anything else before the open can block. */
	int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t index = 0, sent = 0;
	int more = 0;

	if (d == NULL) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		errno = e;
		fail(st, id, "list", r->path);
		return;
	}
	mbx_proto_begin(&st->out, MBX_MSG_FILE_DIR, id);
	size_t start = st->out.len;

	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		size_t at;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (index++ < r->offset)
			continue;
		if (sent == DIR_BATCH || st->out.len - start > DIR_BATCH_BYTES) {
			more = 1;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		at = mbx_proto_nest_begin(&st->out, MBX_F_ENTRY);
		mbx_proto_put_str(&st->out, MBX_F_NAME, de->d_name);
		mbx_proto_put_u32(&st->out, MBX_F_FTYPE, type_of(sb.st_mode));
		mbx_proto_put_u64(&st->out, MBX_F_SIZE, (uint64_t)sb.st_size);
		mbx_proto_put_u32(&st->out, MBX_F_MODE, sb.st_mode & 07777);
		if (S_ISLNK(sb.st_mode)) {
			mbx_proto_put_u32(&st->out, MBX_F_FLAGS, 1);
			put_target(&st->out, dirfd(d), de->d_name);
		}
		mbx_proto_nest_end(&st->out, at);
		sent++;
	}
	closedir(d);
	mbx_proto_put_u32(&st->out, MBX_F_MORE, (uint32_t)more);
	mbx_proto_end(&st->out);
}

/* The transfer pipe of a request (see the top): checks it is a pipe and
 * takes it out of the received descriptors. -2 when none came, -1 (ERROR
 * sent) when the field names no pipe. */
static int take_pipe(struct agent_state *st, uint32_t id, const struct file_req *r)
{
	struct stat sb;
	int fd;

	if (!r->have_fd)
		return -2;
	if (r->fd_index >= st->nfds || st->fds[r->fd_index] < 0 || fstat(st->fds[r->fd_index], &sb) < 0 ||
	    !S_ISFIFO(sb.st_mode)) {
		agent_send_error(st, id, MBX_EPROTO, 0, NULL, "the transfer pipe of a file request is missing or not a pipe");
		return -1;
	}
	fd = st->fds[r->fd_index];
	st->fds[r->fd_index] = -1;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		agent_send_error(st, id, MBX_ESYS, errno, NULL, "set up the transfer pipe");
		return -1;
	}
	return fd;
}

/* READ through the pipe: at most `want` bytes of the file into it, never
 * waiting. The count, or -1 with errno set. */
static ssize_t file_to_pipe(struct agent_file *h, size_t want)
{
	static uint8_t buf[MBX_PROTO_FILE_CHUNK];
	size_t got = 0;

	while (got < want) {
		ssize_t n = splice(h->fd, NULL, h->pipe, NULL, want - got, SPLICE_F_NONBLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == EAGAIN && got > 0))
			break; /* end of the file, or the pipe took what it can */
		if (n < 0 && (errno == EINVAL || errno == EAGAIN)) {
			/* A file system without splice (or a pipe that could not
			 * take a page at once): through a buffer, a write the
			 * empty pipe takes whole. */
			size_t room = want - got < sizeof(buf) ? want - got : sizeof(buf);
			ssize_t w;

			do
				n = read(h->fd, buf, room);
			while (n < 0 && errno == EINTR);
			if (n <= 0)
				return n < 0 ? -1 : (ssize_t)got;
			w = write(h->pipe, buf, (size_t)n);
			if (w != n) {
				if (w >= 0)
					errno = EAGAIN;
				return -1;
			}
			got += (size_t)n;
			break;
		}
		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

#define PIPE_PIECE (64u << 10)

/* WRITE through the pipe: exactly `len` bytes from it into the file. 0, or
 * -1 with errno set (EPIPE: the pipe holds fewer than `len`). */
static int pipe_to_file(struct agent_file *h, uint64_t len)
{
	static uint8_t buf[MBX_PROTO_FILE_CHUNK];
	int spliced = 1;

	while (len > 0) {
		/* In pieces: a splice holds the pipe's lock throughout, and the
		 * host puts the next chunk into the pipe meanwhile. */
		size_t want = len < PIPE_PIECE ? (size_t)len : PIPE_PIECE;
		ssize_t n;

		if (spliced) {
			n = splice(h->pipe, NULL, h->fd, NULL, want, SPLICE_F_NONBLOCK);
			if (n < 0 && errno == EINVAL) {
				spliced = 0; /* a file system without splice */
				continue;
			}
		} else {
			do
				n = read(h->pipe, buf, want < sizeof(buf) ? want : sizeof(buf));
			while (n < 0 && errno == EINTR);
			if (n > 0) {
				size_t off = 0;

				while (off < (size_t)n) {
					ssize_t w = write(h->fd, buf + off, (size_t)n - off);

					if (w < 0 && errno == EINTR)
						continue;
					if (w <= 0)
						return -1;
					off += (size_t)w;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == EAGAIN)) {
			errno = EPIPE;
			return -1;
		}
		if (n < 0)
			return -1;
		len -= (uint64_t)n;
	}
	return 0;
}

void agent_file(struct agent_state *st, const struct mbx_frame *f)
{
	uint32_t id = f->id;
	struct file_req *r = malloc(sizeof(*r));
	struct agent_file *h;
	struct stat sb;
	int k, pipe_fd;

	if (r == NULL) {
		agent_send_error(st, id, MBX_ENOMEM, ENOMEM, NULL, "out of memory");
		return;
	}
	if (parse(f, r) < 0) {
		agent_send_error(st, id, MBX_EINVAL, 0, NULL, "malformed file request (a path must be non-empty, without NUL)");
		goto out;
	}
	switch (r->fop) {
	case MBX_FOP_OPEN_READ:
		k = new_handle(st);
		if (k < 0) {
			agent_send_error(st, id, MBX_ETOOBIG, 0, NULL, "too many open transfers");
			break;
		}
		pipe_fd = take_pipe(st, id, r);
		if (pipe_fd == -1)
			break;
		st->files[k].fd = open_regular(r->path, O_RDONLY, 0, &sb);
		if (st->files[k].fd < 0) {
			fail_open(st, id, "read", r->path);
			if (pipe_fd >= 0)
				close(pipe_fd);
			break;
		}
		st->files[k].pipe = pipe_fd >= 0 ? pipe_fd : -1;
		ok(st, id, k, (uint64_t)sb.st_size, 1);
		break;
	case MBX_FOP_READ: {
		static uint8_t buf[MBX_PROTO_FILE_CHUNK];
		size_t want = r->size && r->size < sizeof(buf) ? (size_t)r->size : sizeof(buf);
		ssize_t n;

		h = get_handle(st, r);
		if (h == NULL || h->writing) {
			agent_send_error(st, id, MBX_ESTATE, 0, NULL, "no such read handle");
			break;
		}
		if (h->pipe >= 0) {
			n = file_to_pipe(h, r->size && r->size < MBX_PROTO_PIPE_CHUNK ? (size_t)r->size : MBX_PROTO_PIPE_CHUNK);
			if (n < 0) {
				fail(st, id, "read", "(open file)");
				break;
			}
			mbx_proto_begin(&st->out, MBX_MSG_FILE_DATA, id);
			mbx_proto_put_u64(&st->out, MBX_F_SIZE, (uint64_t)n);
			mbx_proto_put_u32(&st->out, MBX_F_MORE, n > 0);
			mbx_proto_end(&st->out);
			break;
		}
		do
			n = read(h->fd, buf, want);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			fail(st, id, "read", "(open file)");
			break;
		}
		mbx_proto_begin(&st->out, MBX_MSG_FILE_DATA, id);
		mbx_proto_put(&st->out, MBX_F_DATA, buf, (size_t)n);
		mbx_proto_put_u32(&st->out, MBX_F_MORE, n > 0);
		mbx_proto_end(&st->out);
		break;
	}
	case MBX_FOP_OPEN_WRITE: {
		char *slash;

		k = new_handle(st);
		if (k < 0) {
			agent_send_error(st, id, MBX_ETOOBIG, 0, NULL, "too many open transfers");
			break;
		}
		h = &st->files[k];
		pipe_fd = take_pipe(st, id, r);
		if (pipe_fd == -1)
			break;
		if (pipe_fd >= 0)
			h->pipe = pipe_fd; /* closed with the handle, or below if none opens */
		if (r->flags & MBX_WRITE_APPEND) {
			h->fd = open_regular(r->path, O_WRONLY | O_APPEND | O_CREAT, r->mode & 01777, &sb);
			if (h->fd < 0) {
				fail_open(st, id, "append to", r->path);
				break;
			}
			h->writing = 1;
			ok(st, id, k, 0, 0);
			break;
		}
		if ((r->flags & MBX_WRITE_EXCLUSIVE) && lstat(r->path, &sb) == 0) {
			errno = EEXIST;
			fail(st, id, "create", r->path);
			break;
		}
		if (lstat(r->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			agent_send_error(st, id, MBX_EINVAL, EISDIR, NULL, "write `%s`: it is a directory", r->path);
			break;
		}
		/* A new file beside the target, renamed over it on commit: readers
		 * see the old or the new content, never a half-written file. */
		h->path = strdup(r->path);
		if (h->path == NULL || asprintf(&h->tmp, "%s", r->path) < 0) {
			h->tmp = NULL;
			drop_handle(h);
			agent_send_error(st, id, MBX_ENOMEM, ENOMEM, NULL, "out of memory");
			break;
		}
		free(h->tmp);
		h->tmp = NULL;
		slash = strrchr(h->path, '/');
		if (asprintf(&h->tmp, "%.*s/.mbx-write-%u-%d", (int)(slash - h->path), h->path, id, k) < 0) {
			h->tmp = NULL;
			drop_handle(h);
			agent_send_error(st, id, MBX_ENOMEM, ENOMEM, NULL, "out of memory");
			break;
		}
		/* O_EXCL|O_NOFOLLOW: always a new regular file, never an object
		 * the payload placed under that name. */
		h->fd = open(h->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, r->mode & 01777);
		if (h->fd < 0) {
			fail(st, id, "create", r->path);
			free(h->tmp);
			h->tmp = NULL;
			drop_handle(h);
			break;
		}
		fchmod(h->fd, r->mode & 01777);
		h->writing = 1;
		ok(st, id, k, 0, 0);
		break;
	}
	case MBX_FOP_WRITE: {
		size_t off = 0;

		h = get_handle(st, r);
		if (h == NULL || !h->writing) {
			agent_send_error(st, id, MBX_ESTATE, 0, NULL, "no such write handle");
			break;
		}
		if (h->pipe >= 0) {
			if (r->data_len > 0 || r->size > MBX_PROTO_PIPE_CHUNK) {
				agent_send_error(st, id, MBX_EPROTO, 0, NULL, "a write through the transfer pipe with data or over %u bytes",
						 MBX_PROTO_PIPE_CHUNK);
				drop_handle(h);
				break;
			}
			if (pipe_to_file(h, r->size) < 0) {
				if (errno == EPIPE)
					agent_send_error(st, id, MBX_EPROTO, 0, NULL,
							 "the transfer pipe holds fewer bytes than the write announced");
				else
					fail(st, id, "write", h->path ? h->path : "(file)");
				drop_handle(h);
				break;
			}
			ok(st, id, -1, 0, 0);
			break;
		}
		while (off < r->data_len) {
			ssize_t n = write(h->fd, r->data + off, r->data_len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (off < r->data_len) {
			fail(st, id, "write", h->path ? h->path : "(file)");
			drop_handle(h);
			break;
		}
		ok(st, id, -1, 0, 0);
		break;
	}
	case MBX_FOP_COMMIT:
		h = get_handle(st, r);
		if (h == NULL || !h->writing) {
			agent_send_error(st, id, MBX_ESTATE, 0, NULL, "no such write handle");
			break;
		}
		if (close(h->fd) < 0 || (h->tmp && rename(h->tmp, h->path) < 0)) {
			h->fd = -1;
			fail(st, id, "replace", h->path ? h->path : "(file)");
			drop_handle(h);
			break;
		}
		h->fd = -1;
		free(h->tmp);
		h->tmp = NULL;
		drop_handle(h);
		ok(st, id, -1, 0, 0);
		break;
	case MBX_FOP_CLOSE:
		h = get_handle(st, r);
		if (h != NULL)
			drop_handle(h);
		ok(st, id, -1, 0, 0);
		break;
	case MBX_FOP_STAT:
		if (lstat(r->path, &sb) < 0) {
			fail(st, id, "stat", r->path);
			break;
		}
		mbx_proto_begin(&st->out, MBX_MSG_FILE_STAT, id);
		mbx_proto_put_u32(&st->out, MBX_F_FTYPE, type_of(sb.st_mode));
		mbx_proto_put_u64(&st->out, MBX_F_SIZE, (uint64_t)sb.st_size);
		mbx_proto_put_u32(&st->out, MBX_F_MODE, sb.st_mode & 07777);
		mbx_proto_put_u64(&st->out, MBX_F_MTIME_NS,
				  (uint64_t)((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec));
		mbx_proto_put_u32(&st->out, MBX_F_UID, sb.st_uid);
		mbx_proto_put_u32(&st->out, MBX_F_GID, sb.st_gid);
		if (S_ISLNK(sb.st_mode))
			put_target(&st->out, AT_FDCWD, r->path);
		mbx_proto_end(&st->out);
		break;
	case MBX_FOP_LIST:
		do_list(st, id, r);
		break;
	case MBX_FOP_MKDIR:
		if ((r->flags & 1) ? mkdir_parents(r->path, r->mode & 01777) < 0 : mkdir(r->path, r->mode & 01777) < 0) {
			fail(st, id, "make directory", r->path);
			break;
		}
		if (!(r->flags & 1)) {
			/* The mode as asked, not cut by the umask (a restored
			 * snapshot's directories keep theirs); never through a
			 * symlink planted under the new name. */
			int dfd = open(r->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (dfd >= 0) {
				fchmod(dfd, r->mode & 01777);
				close(dfd);
			}
		}
		ok(st, id, -1, 0, 0);
		break;
	case MBX_FOP_REMOVE:
		if (lstat(r->path, &sb) < 0) {
			fail(st, id, "remove", r->path);
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			/* The root and /workspace, however spelt ("/workspace/..", "/a/../"). */
			char *real = realpath(r->path, NULL);
			int needed = real && (strcmp(real, "/") == 0 || strcmp(real, "/workspace") == 0);

			free(real);
			if (needed) {
				agent_send_error(st, id, MBX_EPERM, 0, NULL, "remove `%s`: the sandbox needs it", r->path);
				break;
			}
			if (r->flags & 1) {
				int dfd = open(r->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

				if (dfd < 0 || mbx_rm_below(dfd) < 0 || rmdir(r->path) < 0) {
					fail(st, id, "remove", r->path);
					break;
				}
			} else if (rmdir(r->path) < 0) {
				fail(st, id, "remove", r->path);
				break;
			}
		} else if (unlink(r->path) < 0) {
			fail(st, id, "remove", r->path);
			break;
		}
		ok(st, id, -1, 0, 0);
		break;
	case MBX_FOP_SYMLINK:
		if (r->target[0] == '\0') {
			agent_send_error(st, id, MBX_EINVAL, 0, NULL, "symlink `%s`: no target", r->path);
			break;
		}
		if (symlink(r->target, r->path) < 0) {
			fail(st, id, "make the symlink", r->path);
			break;
		}
		ok(st, id, -1, 0, 0);
		break;
	case MBX_FOP_RENAME:
		if (r->path2[0] == '\0' || rename(r->path, r->path2) < 0) {
			fail(st, id, "rename", r->path);
			break;
		}
		ok(st, id, -1, 0, 0);
		break;
	default:
		agent_send_error(st, id, MBX_EINVAL, 0, NULL, "unknown file operation %u", r->fop);
		break;
	}
out:
	/* A transfer pipe of an open that failed goes with it. */
	for (int i = 0; i < AGENT_MAX_FILES; i++) {
		if (st->files[i].fd < 0 && st->files[i].pipe >= 0) {
			close(st->files[i].pipe);
			st->files[i].pipe = -1;
		}
	}
	free(r);
}
