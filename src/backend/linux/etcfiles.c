/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's small /etc files of the mount plan, kept in one sealed memfd
 * per process (see etcfiles.h).
 *
 * A copy by name costs the agent seven system calls and a walk through the
 * host's tree under /oldroot per file (about 20 us); from this memfd it is
 * an open, one sendfile at an offset and a close. The memfd is built once
 * and checked against the files' identity and times at every creation (the
 * plan's own lstat of each, taken while the agent starts), and built again
 * when one changed.
 *
 * Only what the agent could have read by name goes in: a regular file that
 * others may read, below directories others may search. The agent runs as
 * the sandbox's unprivileged host identity, the host may be root: anything
 * else stays a copy by name, with the result it had before.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcfiles.h"

/* What one memfd holds at most; files past it are copied by name. */
#define ETC_BLOB_MAX (1u << 20)
#define ETC_MAX_FILES 64
#define ETC_MAX_DIRS 8

struct etc_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	mode_t mode;
	struct timespec mtim, ctim;
};

struct etc_file {
	char *path;
	struct etc_stamp st;
	uint64_t offset;
};

struct etc_blob {
	int fd;                 /* sealed memfd, -1: none */
	struct etc_file f[ETC_MAX_FILES];
	size_t n;
	char *dir[ETC_MAX_DIRS]; /* the parents checked for search permission */
	struct etc_stamp dir_st[ETC_MAX_DIRS];
	size_t ndirs;
};

static pthread_mutex_t blob_lock = PTHREAD_MUTEX_INITIALIZER;
static struct etc_blob blob = { .fd = -1 };

static void stamp_of(const struct stat *st, struct etc_stamp *s)
{
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mode = st->st_mode;
	s->mtim = st->st_mtim;
	s->ctim = st->st_ctim;
}

static int stamp_same(const struct etc_stamp *a, const struct etc_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* A copy of a host file by name whose lstat the plan took (mountplan.c). */
static int copies_by_name(const struct mbx_plan_entry *e)
{
	return e->op == MBX_MOP_COPY && e->has_stat && e->src != NULL && e->fd_index < 0 && !e->in_blob;
}

static void blob_clear(struct etc_blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	for (size_t i = 0; i < b->n; i++)
		free(b->f[i].path);
	for (size_t i = 0; i < b->ndirs; i++)
		free(b->dir[i]);
	b->n = 0;
	b->ndirs = 0;
}

/* 1 when every directory above `path` may be searched by others (their
 * stamps are added to b->dir), 0 when one may not or there are too many. */
static int parents_searchable(struct etc_blob *b, const char *path)
{
	char dir[4096];
	size_t len = strlen(path);

	if (len >= sizeof(dir))
		return 0;
	memcpy(dir, path, len + 1);
	for (char *slash = strrchr(dir, '/'); slash != NULL && slash != dir; slash = strrchr(dir, '/')) {
		struct stat st;
		size_t i;

		*slash = '\0';
		for (i = 0; i < b->ndirs; i++)
			if (strcmp(b->dir[i], dir) == 0)
				break;
		if (i < b->ndirs)
			continue;
		if (b->ndirs == ETC_MAX_DIRS || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || !(st.st_mode & S_IXOTH))
			return 0;
		b->dir[b->ndirs] = strdup(dir);
		if (b->dir[b->ndirs] == NULL)
			return 0;
		stamp_of(&st, &b->dir_st[b->ndirs++]);
	}
	return 1;
}

/* Appends the file `path` to the memfd being built; 0, or -1 when it does
 * not qualify or cannot be read (it stays a copy by name). */
static int blob_add(struct etc_blob *b, const char *path, uint64_t *end)
{
	struct stat st, st2;
	struct etc_file *f;
	off_t off;
	int fd;

	if (b->n == ETC_MAX_FILES || lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH) ||
	    *end + (uint64_t)st.st_size > ETC_BLOB_MAX || !parents_searchable(b, path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino || st2.st_size != st.st_size) {
		close(fd);
		return -1;
	}
	off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(b->fd, fd, &off, (size_t)(st.st_size - off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	f = &b->f[b->n];
	f->path = strdup(path);
	if (f->path == NULL)
		return -1;
	stamp_of(&st, &f->st);
	f->offset = *end;
	*end += (uint64_t)st.st_size;
	b->n++;
	return 0;
}

/* Builds b from the plan's copies by name; b->fd stays -1 when none
 * qualified or the memfd could not be made. */
static void blob_build(struct etc_blob *b, const struct mbx_mountplan *plan)
{
	uint64_t end = 0;

	blob_clear(b);
	b->fd = memfd_create("mimobox-etc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (b->fd < 0)
		return;
	for (size_t i = 0; i < plan->n; i++)
		if (copies_by_name(&plan->e[i]) && blob_add(b, plan->e[i].src, &end) < 0 &&
		    lseek(b->fd, (off_t)end, SEEK_SET) < 0)
			break;
	/* Nobody writes it again: the sandboxes of this process share it. */
	if (b->n == 0 || ftruncate(b->fd, (off_t)end) < 0 ||
	    fcntl(b->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		blob_clear(b);
}

/* 1 when b still holds every copy by name of the plan that qualified when
 * it was built, and nothing it holds has changed. */
static int blob_current(const struct etc_blob *b, const struct mbx_mountplan *plan)
{
	struct stat st;
	struct etc_stamp s;
	size_t want = 0;

	if (b->fd < 0)
		return 0;
	for (size_t i = 0; i < b->ndirs; i++) {
		if (stat(b->dir[i], &st) < 0)
			return 0;
		stamp_of(&st, &s);
		if (!stamp_same(&s, &b->dir_st[i]))
			return 0;
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct mbx_plan_entry *e = &plan->e[i];
		size_t j;

		if (!copies_by_name(e))
			continue;
		for (j = 0; j < b->n; j++)
			if (strcmp(b->f[j].path, e->src) == 0)
				break;
		if (j == b->n)
			continue; /* did not qualify: copied by name */
		/* The plan's own lstat of the file, a moment ago. */
		s.dev = e->dev;
		s.ino = e->ino;
		s.size = e->st_size;
		s.mode = e->st_mode;
		s.mtim = e->st_mtim;
		s.ctim = e->st_ctim;
		if (!stamp_same(&s, &b->f[j].st))
			return 0;
		want++;
	}
	return want == b->n;
}

int mbx__etcfiles_apply(struct mbx_mountplan *plan)
{
	int fd = -1;

	pthread_mutex_lock(&blob_lock);
	if (!blob_current(&blob, plan))
		blob_build(&blob, plan);
	if (blob.fd >= 0)
		fd = fcntl(blob.fd, F_DUPFD_CLOEXEC, 0);
	if (fd >= 0) {
		for (size_t i = 0; i < plan->n; i++) {
			struct mbx_plan_entry *e = &plan->e[i];

			if (!copies_by_name(e))
				continue;
			for (size_t j = 0; j < blob.n; j++)
				if (strcmp(blob.f[j].path, e->src) == 0) {
					e->in_blob = 1;
					e->offset = blob.f[j].offset;
					e->size = (uint64_t)blob.f[j].st.size;
					e->mode = blob.f[j].st.mode & 0755;
					break;
				}
		}
	}
	pthread_mutex_unlock(&blob_lock);
	return fd;
}
