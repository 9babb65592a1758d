/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry of named sandboxes and the client side of a connection to
 * their supervisors; see session.h for the layout and the locking rules.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "session.h"
#include "core/statebase.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- the directory ---- */

/* A directory of ours, reached without a symlink. */
static int check_dir(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid();
}

int cli_registry_open(struct cli_registry *reg, int create, char *why, size_t whylen)
{
	/* The library's state directory, by the same code (src/core/statebase.c). */
	char *base = mbx__statebase_path();
	struct stat st;
	int fd;

	reg->path = NULL;
	reg->dirfd = -1;
	if (!base || asprintf(&reg->path, "%s/named", base) < 0) {
		reg->path = NULL;
		free(base);
		set_why(why, whylen, "out of memory");
		return -1;
	}
	/* Private as the library makes it (it may create it first or after
	 * us); checked before anything below it is trusted, also to read. */
	if (mbx__statebase_check(base, why, whylen) < 0)
		goto fail;
	if (create) {
		if (mkdir(reg->path, 0700) < 0 && errno != EEXIST) {
			set_why(why, whylen, "cannot create the registry directory `%s`: %s", reg->path,
				strerror(errno));
			goto fail;
		}
	}
	fd = open(reg->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !create) {
		free(base);
		return 1;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !check_dir(&st)) {
		if (fd >= 0)
			close(fd);
		set_why(why, whylen, "the registry directory `%s` is not a directory owned by uid %u",
			reg->path, (unsigned)geteuid());
		goto fail;
	}
	if ((st.st_mode & 07777) != 0700)
		(void)fchmod(fd, 0700);
	reg->dirfd = fd;
	free(base);
	return 0;

fail:
	free(base);
	free(reg->path);
	reg->path = NULL;
	return -1;
}

void cli_registry_close(struct cli_registry *reg)
{
	if (reg->dirfd >= 0)
		close(reg->dirfd);
	reg->dirfd = -1;
	free(reg->path);
	reg->path = NULL;
}

int cli_registry_lock(struct cli_registry *reg, int create)
{
	char why[CLI_WHY_MAX];
	struct stat st;
	char *path;
	int tries, rc;

	for (tries = 0; tries < 100; tries++) {
		if (reg->dirfd < 0) {
			/* Reopen by the same rules (the environment has not changed). */
			path = reg->path;
			reg->path = NULL;
			rc = cli_registry_open(reg, create, why, sizeof(why));
			free(path);
			if (rc != 0) {
				errno = rc == 1 ? ENOENT : EACCES;
				return rc == 1 ? 1 : -1;
			}
		}
		while (flock(reg->dirfd, LOCK_EX) < 0) {
			if (errno != EINTR)
				return -1;
		}
		if (fstat(reg->dirfd, &st) < 0)
			return -1;
		if (st.st_nlink > 0)
			return 0;
		/* Another process removed it as empty before we got the lock. */
		close(reg->dirfd);
		reg->dirfd = -1;
	}
	errno = EAGAIN;
	return -1;
}

/*
 * 1 when the directory holds no entry. The caller holds the lock, so a
 * ".NAME.info.new" is what a supervisor that died mid-write left: removed.
 */
static int dir_empty(struct cli_registry *reg)
{
	int fd = openat(reg->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int empty = 1;

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.' && len > 9 && strcmp(de->d_name + len - 9, ".info.new") == 0 &&
		    unlinkat(reg->dirfd, de->d_name, 0) == 0)
			continue;
		empty = 0;
		break;
	}
	closedir(d);
	return empty;
}

void cli_registry_unlock(struct cli_registry *reg, int prune)
{
	struct stat a, b;

	if (reg->dirfd < 0)
		return;
	/* Nothing is left behind: not even the emptied directory. */
	if (prune && dir_empty(reg) && fstat(reg->dirfd, &a) == 0 && lstat(reg->path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		(void)rmdir(reg->path);
	(void)flock(reg->dirfd, LOCK_UN);
}

/* ---- entries ---- */

/*
 * The socket address of `name`: its path, or a path through the directory
 * descriptor when the path is too long for sun_path (108 bytes).
 */
static int entry_addr(struct cli_registry *reg, const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.sock", reg->path, name);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s.sock", reg->dirfd, name);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

static void file_name(char *out, size_t len, const char *name, const char *suffix)
{
	snprintf(out, len, "%s.%s", name, suffix);
}

/* 1 when a process with this pid exists (or might: EPERM). */
static int pid_alive(uint32_t pid)
{
	if (pid == 0 || pid > INT32_MAX)
		return 1;	/* unknown: let the socket decide */
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static int probe(struct cli_registry *reg, const char *name, int *fd_out, int nonblock);

int cli_registry_probe(struct cli_registry *reg, const char *name, int *fd_out)
{
	return probe(reg, name, fd_out, 0);
}

int cli_registry_probe_nb(struct cli_registry *reg, const char *name, int *fd_out)
{
	return probe(reg, name, fd_out, 1);
}

static int probe(struct cli_registry *reg, const char *name, int *fd_out, int nonblock)
{
	struct cli_entry_info info;
	char sock[CLI_NAME_MAX + 8], meta[CLI_NAME_MAX + 8];
	struct sockaddr_un sa;
	socklen_t len;
	int fd, have_sock, have_info, rc;

	if (fd_out)
		*fd_out = -1;
	file_name(sock, sizeof(sock), name, "sock");
	file_name(meta, sizeof(meta), name, "info");
	have_sock = faccessat(reg->dirfd, sock, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	have_info = cli_registry_read_info(reg, name, &info) == 0;
	if (!have_sock)
		return have_info || faccessat(reg->dirfd, meta, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ?
			CLI_ENTRY_DEAD : CLI_ENTRY_NONE;
	if (entry_addr(reg, name, &sa, &len) < 0)
		return CLI_ENTRY_NONE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return CLI_ENTRY_NONE;
	do
		rc = connect(fd, (struct sockaddr *)&sa, len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int e = errno;

		close(fd);
		/* Nobody listens on it: its supervisor died. */
		if (e == ECONNREFUSED)
			return CLI_ENTRY_DEAD;
		errno = e;
		return e == ENOENT ? CLI_ENTRY_NONE : CLI_ENTRY_LIVE;
	}
	if (have_info && !pid_alive(info.pid)) {
		/* Someone else holds the socket; the supervisor is gone. */
		close(fd);
		return CLI_ENTRY_DEAD;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return CLI_ENTRY_LIVE;
}

void cli_registry_remove(struct cli_registry *reg, const char *name)
{
	char path[CLI_NAME_MAX + 8];

	file_name(path, sizeof(path), name, "sock");
	(void)unlinkat(reg->dirfd, path, 0);
	file_name(path, sizeof(path), name, "info");
	(void)unlinkat(reg->dirfd, path, 0);
}

int cli_registry_reap(struct cli_registry *reg, const char *name)
{
	int removed = 0;

	if (cli_registry_lock(reg, 0) != 0)
		return 0;
	if (cli_registry_probe(reg, name, NULL) == CLI_ENTRY_DEAD) {
		cli_registry_remove(reg, name);
		removed = 1;
	}
	cli_registry_unlock(reg, 1);
	return removed;
}

int cli_registry_listen(struct cli_registry *reg, const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	mode_t old;
	int fd, rc, e;

	if (entry_addr(reg, name, &sa, &len) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* The socket file is 0600 from the start (the directory is 0700 anyway). */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, len);
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int cli_registry_write_info(struct cli_registry *reg, const struct cli_entry_info *info)
{
	char tmp[CLI_NAME_MAX + 16], path[CLI_NAME_MAX + 8], text[512];
	int fd, n, e;

	n = snprintf(text, sizeof(text), "version=%d\nname=%s\nid=%s\nisolation=%s\ncreated=%llu\npid=%u\n",
		     WIRE_VERSION, info->name, info->id, info->isolation,
		     (unsigned long long)info->created, (unsigned)info->pid);
	snprintf(tmp, sizeof(tmp), ".%s.info.new", info->name);
	file_name(path, sizeof(path), info->name, "info");
	fd = openat(reg->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (wire_write_all(fd, text, (size_t)n) < 0 || close(fd) < 0 ||
	    renameat(reg->dirfd, tmp, reg->dirfd, path) < 0) {
		e = errno;
		(void)unlinkat(reg->dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	return 0;
}

/* Copies the value of "key=" at the start of a line of `text` into out[len]; 0 or -1. */
static int info_field(const char *text, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key), vlen;
	const char *p = text, *end;

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			p += klen + 1;
			end = strchr(p, '\n');
			vlen = end ? (size_t)(end - p) : strlen(p);
			if (vlen >= len)
				return -1;
			memcpy(out, p, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int cli_registry_read_info(struct cli_registry *reg, const char *name, struct cli_entry_info *info)
{
	char path[CLI_NAME_MAX + 8], text[1024], num[32];
	ssize_t n;
	int fd;

	memset(info, 0, sizeof(*info));
	file_name(path, sizeof(path), name, "info");
	fd = openat(reg->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	if (info_field(text, "name", info->name, sizeof(info->name)) < 0 ||
	    info_field(text, "id", info->id, sizeof(info->id)) < 0 ||
	    info_field(text, "isolation", info->isolation, sizeof(info->isolation)) < 0)
		return -1;
	if (info_field(text, "created", num, sizeof(num)) == 0)
		info->created = strtoull(num, NULL, 10);
	if (info_field(text, "pid", num, sizeof(num)) == 0)
		info->pid = (uint32_t)strtoul(num, NULL, 10);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

long cli_registry_names(struct cli_registry *reg, char ***out)
{
	char **names = NULL, **grown, *dot;
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;
	int fd;

	*out = NULL;
	fd = openat(reg->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char name[CLI_NAME_MAX + 8];

		dot = strrchr(de->d_name, '.');
		if (!dot || (strcmp(dot, ".sock") != 0 && strcmp(dot, ".info") != 0) ||
		    (size_t)(dot - de->d_name) > CLI_NAME_MAX)
			continue;
		memcpy(name, de->d_name, (size_t)(dot - de->d_name));
		name[dot - de->d_name] = '\0';
		if (cli_check_name(name, NULL, 0) < 0)
			continue;
		for (i = 0; i < n && strcmp(names[i], name) != 0; i++)
			;
		if (i < n)
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(name))) {
			names = grown ? grown : names;
			goto oom;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return (long)n;

oom:
	closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	errno = ENOMEM;
	return -1;
}

/* ---- the client side ---- */

int cli_wants_json(int argc, char **argv, const struct cli_option *options, int operands)
{
	struct cli_args a = { argc, argv, 1 };
	const char *value;
	int id;

	for (;;) {
		id = cli_next_option(&a, options, &value, NULL, 0);
		if (id == CLI_OPT_END) {
			/* Options may follow an operand, but not "--". */
			if (a.next < argc && operands-- > 0 && strcmp(argv[a.next - 1], "--") != 0) {
				a.next++;
				continue;
			}
			return 0;
		}
		if (id == CLI_OPT_BAD)
			a.next++;
		else if (id == CLI_OPT_VERB)
			return 1;
	}
}

int cli_session_send(struct wire_conn *conn, struct cli_buf *b)
{
	return wire_send(conn->fd, b);
}

int cli_session_parse_info(struct wire_reader *r, struct cli_session_info *info)
{
	const char *name, *id, *iso;

	memset(info, 0, sizeof(*info));
	(void)wire_get_u32(r);	/* version: the same program on both sides */
	name = wire_get_str(r);
	id = wire_get_str(r);
	iso = wire_get_str(r);
	info->entry.created = wire_get_u64(r);
	info->entry.pid = wire_get_u32(r);
	info->clients = wire_get_u32(r);
	info->running = wire_get_u32(r);
	info->ttl_ms = wire_get_u64(r);
	info->ttl_left_ms = wire_get_u64(r);
	if (wire_done(r) < 0)
		return -1;
	snprintf(info->entry.name, sizeof(info->entry.name), "%s", name);
	snprintf(info->entry.id, sizeof(info->entry.id), "%s", id);
	snprintf(info->entry.isolation, sizeof(info->entry.isolation), "%s", iso);
	return 0;
}

int cli_session_report_error(int json, struct wire_reader *r)
{
	int code = (int)(int32_t)wire_get_u32(r);
	int errnum = (int)(int32_t)wire_get_u32(r);
	const char *message = wire_get_str(r);
	const char *suggestion = wire_get_str(r);
	const char *layer = wire_get_str(r);

	if (wire_done(r) < 0) {
		cli_report(json, MBX_EPROTO, "the sandbox's supervisor sent a malformed error", NULL, NULL, 0);
		return MBX_EPROTO;
	}
	cli_report(json, code, message, suggestion[0] ? suggestion : NULL, layer[0] ? layer : NULL, errnum);
	return code;
}

int cli_session_lost(int json, const char *name, int errnum)
{
	char message[CLI_WHY_MAX];

	snprintf(message, sizeof(message), "lost the connection to sandbox `%s`%s%s", name,
		 errnum ? ": " : "", errnum ? strerror(errnum) : "");
	cli_report(json, MBX_EPROTO, message, "see `mimobox ps`", NULL, errnum);
	return CLI_EXIT_FAILED;
}

int cli_session_file_status(int code)
{
	return code == MBX_EPROTO || code == MBX_ESTATE ? CLI_EXIT_FAILED : 1;
}

int cli_session_open(const char *verb, const char *name, int json, struct wire_conn *conn,
		     struct cli_session_info *info)
{
	struct cli_session_info local;
	struct cli_registry reg;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	char why[CLI_WHY_MAX], message[CLI_WHY_MAX + 64];
	int64_t deadline, now;
	size_t start;
	int rc, fd = -1, state;

	wire_conn_init(conn, -1);
	if (cli_check_name(name, why, sizeof(why)) < 0) {
		cli_usage_error(json, verb, "%s", why);
		return CLI_EXIT_FAILED;
	}
	rc = cli_registry_open(&reg, 0, why, sizeof(why));
	if (rc < 0) {
		cli_report(json, MBX_EPERM, why, "remove it or set MIMOBOX_STATE_DIR to a directory you own",
			   NULL, 0);
		return CLI_EXIT_FAILED;
	}
	/*
	 * A wedged supervisor (stopped, or its listen backlog full) must not
	 * hold this command forever: connect without blocking, retrying while
	 * the backlog is full, and wait for its INFO at most
	 * CLI_SESSION_WAIT_MS.
	 */
	deadline = wire_now_ms() + CLI_SESSION_WAIT_MS;
	for (;;) {
		state = rc == 1 ? CLI_ENTRY_NONE : cli_registry_probe_nb(&reg, name, &fd);
		rc = errno;
		if (state != CLI_ENTRY_LIVE || fd >= 0 || rc != EAGAIN || wire_now_ms() >= deadline)
			break;
		(void)poll(NULL, 0, 10);
	}
	if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		rc = errno;
		close(fd);
		fd = -1;
	}
	if (state == CLI_ENTRY_LIVE && fd < 0 && rc == EAGAIN) {
		snprintf(message, sizeof(message), "sandbox `%s` does not answer: its supervisor accepts no "
			 "connection (stopped or overloaded)", name);
		cli_report(json, MBX_ETIMEDOUT, message, "see `mimobox ps`; `mimobox rm NAME` destroys it", NULL, rc);
		cli_registry_close(&reg);
		return CLI_EXIT_FAILED;
	}
	if (state == CLI_ENTRY_LIVE && fd < 0) {
		snprintf(message, sizeof(message), "cannot connect to sandbox `%s`: %s", name, strerror(rc));
		cli_report(json, MBX_ESYS, message, "see `mimobox ps`", NULL, rc);
		cli_registry_close(&reg);
		return CLI_EXIT_FAILED;
	}
	if (state == CLI_ENTRY_DEAD && cli_registry_reap(&reg, name)) {
		snprintf(message, sizeof(message), "sandbox `%s` is gone: its supervisor died "
			 "(its entry was removed)", name);
		cli_report(json, MBX_ENOTFOUND, message, "create it again with `mimobox create`", NULL, 0);
		cli_registry_close(&reg);
		return CLI_EXIT_FAILED;
	}
	cli_registry_close(&reg);
	if (state != CLI_ENTRY_LIVE) {
		snprintf(message, sizeof(message), "no sandbox named `%s`", name);
		cli_report(json, MBX_ENOTFOUND, message, "see `mimobox ps` for the live ones", NULL, 0);
		return CLI_EXIT_FAILED;
	}

	wire_conn_init(conn, fd);
	start = wire_begin(&b, WIRE_HELLO);
	wire_u32(&b, WIRE_VERSION);
	if (wire_end(&b, start) < 0 || cli_session_send(conn, &b) < 0) {
		rc = errno;
		goto lost;
	}
	now = wire_now_ms();
	rc = wire_conn_recv(conn, &f, now >= deadline ? 1 : (int)(deadline - now));
	if (rc < 0 && errno == ETIMEDOUT) {
		snprintf(message, sizeof(message), "sandbox `%s` does not answer: its supervisor did not reply "
			 "within %d s (stopped or overloaded)", name, CLI_SESSION_WAIT_MS / 1000);
		cli_report(json, MBX_ETIMEDOUT, message, "see `mimobox ps`; `mimobox rm NAME` destroys it", NULL,
			   ETIMEDOUT);
		goto fail;
	}
	if (rc <= 0 || (f.type != WIRE_INFO && f.type != WIRE_ERROR)) {
		rc = rc < 0 ? errno : 0;
		goto lost;
	}
	if (f.type == WIRE_ERROR) {
		(void)cli_session_report_error(json, &f.r);
		goto fail;
	}
	if (cli_session_parse_info(&f.r, info ? info : &local) < 0) {
		rc = EPROTO;
		goto lost;
	}
	cli_buf_free(&b);
	return 0;

lost:
	(void)cli_session_lost(json, name, rc);
fail:
	cli_buf_free(&b);
	wire_conn_close(conn);
	return CLI_EXIT_FAILED;
}
