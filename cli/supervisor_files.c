/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file and HTTP requests of a named sandbox's supervisor: WRITE, READ,
 * STAT, LIST, MKDIR, UNLINK, SYMLINK and HTTP (wire.h). Each library call runs to completion on
 * the supervisor's one thread; data moves through the client's queue in
 * pieces, so neither side holds a whole file: a write is appended piece by
 * piece to a temporary file that is renamed over the target at the end, a
 * read is spooled to an unnamed host file and sent as the client takes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "supervisor.h"

/* A path a file can be written to: not empty, not ending in '/'. */
static int file_path_ok(struct sv_client *c, const char *path)
{
	size_t len = strlen(path);

	if (len == 0) {
		sv_send_fail(c, MBX_EINVAL, "the sandbox path is empty");
		return 0;
	}
	if (path[len - 1] == '/') {
		sv_send_fail(c, MBX_EINVAL, "`%s` names a directory, not a file", path);
		return 0;
	}
	return 1;
}

/* "<dir>/.<base>.mimobox-<random>": a temporary name beside `path`. */
static char *temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	unsigned long long rnd = 0;
	char *out = NULL;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (unsigned long long)sv_now_ms() ^ ((unsigned long long)getpid() << 32);
	if (asprintf(&out, "%.*s.%s.mimobox-%016llx", (int)(slash ? base - path : 0), path, base, rnd) < 0)
		return NULL;
	return out;
}

/* Forgets the write in progress (the temporary file is the caller's business). */
static void clear_write(struct sv_client *c)
{
	free(c->path);
	free(c->tmp);
	c->path = c->tmp = NULL;
	c->write_failed = 0;
	c->state = SV_IDLE;
}

/* Removes the temporary file of an unfinished write. */
void sv_abort_write(struct sv *sv, struct sv_client *c)
{
	if (c->tmp)
		(void)mbx_sandbox_remove(sv->sb, c->tmp, 0, NULL);
	clear_write(c);
}

/*
 * WRITE: the data goes to a temporary file beside the target, appended a
 * piece at a time, and is renamed over the target at WRITE_END. So the
 * client streams any size through here without either side holding the
 * whole file, other clients are served between the pieces, and a client
 * that goes away mid-way leaves the target as it was.
 */
void sv_begin_write(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	uint32_t mode = wire_get_u32(r) & 07777;
	mbx_error *err = NULL;
	mbx_stat *st = NULL;
	int rc, tries;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed write request");
		return;
	}
	if (!file_path_ok(c, path))
		return;
	if (mode == 0)
		mode = 0644;
	rc = mbx_sandbox_stat(sv->sb, path, &st, &err);
	if (rc == MBX_OK) {
		if (mbx_stat_type(st) == MBX_FILE_DIRECTORY) {
			sv_send_fail(c, MBX_EINVAL, "`%s` is a directory", path);
			goto out;
		}
		/* Replacing a file keeps its permissions, as writing into it would. */
		if (mbx_stat_type(st) == MBX_FILE_REGULAR)
			mode = mbx_stat_mode(st);
	} else if (rc != MBX_ENOTFOUND) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
		goto out;
	}
	mbx_error_free(err);
	err = NULL;
	c->path = strdup(path);
	if (!c->path) {
		sv_send_fail(c, MBX_ENOMEM, "out of memory");
		goto out;
	}
	for (tries = 0; tries < 5; tries++) {
		free(c->tmp);
		c->tmp = temp_name(path);
		if (!c->tmp) {
			rc = MBX_ENOMEM;
			break;
		}
		mbx_error_free(err);
		err = NULL;
		rc = mbx_sandbox_write_file(sv->sb, c->tmp, "", 0, mode, MBX_WRITE_EXCLUSIVE, &err);
		if (rc != MBX_EEXIST)
			break;
	}
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, c->tmp, c->path);
		sv_note_status(sv, rc);
		free(c->tmp);
		c->tmp = NULL;
		clear_write(c);
		goto out;
	}
	c->mode = mode;
	c->state = SV_WRITE;
	sv_send_simple(c, WIRE_OK);
out:
	mbx_stat_free(st);
	mbx_error_free(err);
}

void sv_write_input(struct sv *sv, struct sv_client *c, struct wire_frame *f)
{
	mbx_error *err = NULL;
	const uint8_t *data;
	size_t len;
	int rc;

	if (f->type == WIRE_DATA) {
		len = wire_get_bytes(&f->r, &data);
		if (wire_done(&f->r) < 0) {
			sv_abort_write(sv, c);
			sv_protocol_error(c, "malformed data frame");
			return;
		}
		if (c->write_failed || len == 0)
			return;
		rc = mbx_sandbox_write_file(sv->sb, c->tmp, data, len, c->mode, MBX_WRITE_APPEND, &err);
		if (rc != MBX_OK) {
			/* Answer now; the client stops sending, the rest is ignored. */
			sv_send_mbx_error(c, rc, err, c->tmp, c->path);
			sv_note_status(sv, rc);
			(void)mbx_sandbox_remove(sv->sb, c->tmp, 0, NULL);
			free(c->tmp);
			c->tmp = NULL;
			c->write_failed = 1;
		}
	} else if (f->type == WIRE_WRITE_END) {
		if (c->write_failed) {
			clear_write(c);
			return;
		}
		rc = mbx_sandbox_rename(sv->sb, c->tmp, c->path, &err);
		if (rc != MBX_OK) {
			sv_send_mbx_error(c, rc, err, c->tmp, c->path);
			sv_note_status(sv, rc);
			sv_abort_write(sv, c);
		} else {
			sv_send_simple(c, WIRE_OK);
			clear_write(c);
		}
	} else {
		sv_abort_write(sv, c);
		sv_protocol_error(c, "unexpected request during a write");
	}
	mbx_error_free(err);
}

/* An unnamed temporary file, on disk when there is one, else in memory. */
static int open_spool(void)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	size_t i;
	int fd;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i] || dirs[i][0] != '/')
			continue;
		fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
	}
	return memfd_create("mimobox-read", MFD_CLOEXEC);
}

void sv_begin_read(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	mbx_error *err = NULL;
	int rc, fd;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed read request");
		return;
	}
	fd = open_spool();
	if (fd < 0) {
		sv_send_error_fields(c, MBX_ESYS, errno, "cannot make a temporary file for the transfer", NULL, NULL);
		return;
	}
	rc = mbx_sandbox_read_file_to_fd(sv->sb, path, fd, &err);
	if (rc != MBX_OK || lseek(fd, 0, SEEK_SET) < 0) {
		if (rc != MBX_OK)
			sv_send_mbx_error(c, rc, err, NULL, NULL);
		else
			sv_send_error_fields(c, MBX_ESYS, errno, "cannot read back the transferred file", NULL, NULL);
		sv_note_status(sv, rc);
		mbx_error_free(err);
		close(fd);
		return;
	}
	c->spool = fd;
	c->state = SV_READ;
}

/* Moves spooled file data (or a response body) into c's queue while it has room. */
void sv_pump_spool(struct sv_client *c)
{
	static uint8_t chunk[WIRE_CHUNK];
	const uint8_t *data;
	size_t start, len;
	ssize_t n;

	while (c->state == SV_READ && sv_attached(c) && !c->closing && sv_queued(c) < SV_OUT_HIGH) {
		if (c->resp) {
			data = mbx_http_response_body(c->resp, &len);
			n = (ssize_t)(len - c->resp_off < WIRE_CHUNK ? len - c->resp_off : WIRE_CHUNK);
			memcpy(chunk, data + c->resp_off, (size_t)n);
			c->resp_off += (size_t)n;
		} else {
			do
				n = read(c->spool, chunk, sizeof(chunk));
			while (n < 0 && errno == EINTR);
		}
		if (n > 0) {
			start = wire_begin(&c->out, WIRE_DATA);
			wire_bytes(&c->out, chunk, (size_t)n);
			sv_end_frame(c, start);
			continue;
		}
		if (n < 0)
			sv_send_error_fields(c, MBX_ESYS, errno, "cannot read back the transferred file", NULL, NULL);
		else
			sv_send_simple(c, WIRE_END);
		if (c->spool >= 0)
			close(c->spool);
		c->spool = -1;
		mbx_http_response_free(c->resp);
		c->resp = NULL;
		c->state = SV_IDLE;
	}
}

/* ---- HTTP ---- */

void sv_clear_http(struct sv_client *c)
{
	uint32_t i;

	free(c->method);
	free(c->url);
	for (i = 0; c->headers && c->headers[i]; i++)
		free(c->headers[i]);
	free(c->headers);
	cli_buf_free(&c->body);
	c->method = c->url = NULL;
	c->headers = NULL;
	c->body_len = 0;
}

/*
 * Makes the request once its body is in. The library call blocks, so the
 * other clients wait for it (the sandbox handle is one thread's); the
 * response body then goes out piece by piece like a file.
 */
static void perform_http(struct sv *sv, struct sv_client *c)
{
	mbx_http_response *resp = NULL;
	mbx_error *err = NULL;
	size_t i, n, start;
	int rc;

	rc = mbx_sandbox_http_request(sv->sb, c->method, c->url, (const char *const *)c->headers,
				      (const uint8_t *)c->body.data, c->body.len, &resp, &err);
	sv_clear_http(c);
	c->state = SV_IDLE;
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		if (rc == MBX_ESTATE)
			sv_note_status(sv, rc);
		mbx_error_free(err);
		return;
	}
	start = wire_begin(&c->out, WIRE_HTTP_REPLY);
	wire_u32(&c->out, (uint32_t)mbx_http_response_status(resp));
	wire_str(&c->out, mbx_http_response_url(resp));
	n = mbx_http_response_header_count(resp);
	wire_u32(&c->out, (uint32_t)n);
	for (i = 0; i < n; i++) {
		wire_str(&c->out, mbx_http_response_header_name(resp, i));
		wire_str(&c->out, mbx_http_response_header_value(resp, i));
	}
	if (wire_end(&c->out, start) < 0) {
		sv_send_fail(c, MBX_ETOOBIG, "the response's header fields are too large to pass on");
		mbx_http_response_free(resp);
		return;
	}
	c->resp = resp;
	c->resp_off = 0;
	c->state = SV_READ;
}

void sv_begin_http(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *method = wire_get_str(r), *url = wire_get_str(r);
	uint32_t n = wire_get_u32(r), i;

	if (r->bad || n > 4096) {
		sv_protocol_error(c, "malformed http request");
		return;
	}
	c->headers = calloc((size_t)n + 1, sizeof(*c->headers));
	c->method = strdup(method);
	c->url = strdup(url);
	for (i = 0; c->headers && i < n; i++)
		c->headers[i] = strdup(wire_get_str(r));
	c->body_len = wire_get_u64(r);
	if (wire_done(r) < 0) {
		sv_clear_http(c);
		sv_protocol_error(c, "malformed http request");
		return;
	}
	for (i = 0; c->headers && i < n && c->headers[i]; i++)
		;
	if (!c->headers || !c->method || !c->url || i < n) {
		sv_clear_http(c);
		sv_send_fail(c, MBX_ENOMEM, "out of memory");
		return;
	}
	if (c->body_len > WIRE_HTTP_BODY_MAX) {
		sv_clear_http(c);
		sv_send_fail(c, MBX_ETOOBIG, "the request body is over %llu MiB",
			  (unsigned long long)(WIRE_HTTP_BODY_MAX >> 20));
		c->closing = 1;
		return;
	}
	c->state = SV_HTTP;
	if (c->body_len == 0)
		perform_http(sv, c);
}

void sv_http_input(struct sv *sv, struct sv_client *c, struct wire_frame *f)
{
	const uint8_t *data;
	size_t len;

	if (f->type != WIRE_DATA) {
		sv_clear_http(c);
		sv_protocol_error(c, "unexpected request during an http request");
		return;
	}
	len = wire_get_bytes(&f->r, &data);
	if (wire_done(&f->r) < 0 || len > c->body_len - c->body.len) {
		sv_clear_http(c);
		sv_protocol_error(c, "malformed http request body");
		return;
	}
	cli_buf_add(&c->body, data, len);
	if (c->body.failed) {
		sv_clear_http(c);
		sv_send_fail(c, MBX_ENOMEM, "out of memory");
		c->closing = 1;
		return;
	}
	if (c->body.len == c->body_len)
		perform_http(sv, c);
}

void sv_do_stat(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	mbx_error *err = NULL;
	mbx_stat *st = NULL;
	size_t start;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed stat request");
		return;
	}
	rc = mbx_sandbox_stat(sv->sb, path, &st, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
		mbx_error_free(err);
		return;
	}
	start = wire_begin(&c->out, WIRE_STAT_REPLY);
	wire_u8(&c->out, mbx_stat_type(st));
	wire_u64(&c->out, mbx_stat_size(st));
	wire_u32(&c->out, mbx_stat_mode(st));
	wire_u64(&c->out, (uint64_t)mbx_stat_mtime_ns(st));
	wire_u32(&c->out, mbx_stat_uid(st));
	wire_u32(&c->out, mbx_stat_gid(st));
	wire_str(&c->out, mbx_stat_symlink_target(st));
	sv_end_frame(c, start);
	mbx_stat_free(st);
}

void sv_do_list(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r), *name;
	mbx_error *err = NULL;
	mbx_dir *dir = NULL;
	size_t i, n, count, start, count_at, batch;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed list request");
		return;
	}
	rc = mbx_sandbox_list_dir(sv->sb, path, &dir, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
		mbx_error_free(err);
		return;
	}
	n = mbx_dir_count(dir);
	for (i = 0; i < n;) {
		/* A frame per batch, so a huge directory never makes an oversized frame. */
		start = wire_begin(&c->out, WIRE_ENTRIES);
		count_at = c->out.len;
		wire_u32(&c->out, 0);
		for (count = 0, batch = 0; i < n && batch < SV_LIST_BATCH; i++, count++) {
			name = mbx_dir_name(dir, i);
			wire_str(&c->out, name);
			wire_u8(&c->out, mbx_dir_type(dir, i));
			wire_u64(&c->out, mbx_dir_size(dir, i));
			wire_u8(&c->out, (uint8_t)(mbx_dir_is_symlink(dir, i) != 0));
			wire_str(&c->out, mbx_dir_symlink_target(dir, i));
			batch += strlen(name ? name : "") + 32;
			if (mbx_dir_symlink_target(dir, i))
				batch += strlen(mbx_dir_symlink_target(dir, i));
		}
		if (!c->out.failed) {
			c->out.data[count_at] = (char)(count >> 24);
			c->out.data[count_at + 1] = (char)(count >> 16);
			c->out.data[count_at + 2] = (char)(count >> 8);
			c->out.data[count_at + 3] = (char)count;
		}
		sv_end_frame(c, start);
	}
	sv_send_simple(c, WIRE_END);
	mbx_dir_free(dir);
}

/* Answers a one-call file request: OK, or the library's error. */
static void answer(struct sv *sv, struct sv_client *c, int rc, mbx_error *err)
{
	if (rc == MBX_OK) {
		sv_send_simple(c, WIRE_OK);
	} else {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
	}
	mbx_error_free(err);
}

void sv_do_mkdir(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	uint32_t mode = wire_get_u32(r) & 07777;
	uint8_t parents = wire_get_u8(r);
	mbx_error *err = NULL;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed mkdir request");
		return;
	}
	if (path[0] == '\0') {
		sv_send_fail(c, MBX_EINVAL, "the sandbox path is empty");
		return;
	}
	rc = mbx_sandbox_mkdir(sv->sb, path, mode ? mode : 0755, parents != 0, &err);
	answer(sv, c, rc, err);
}

/*
 * 1 when `path` names the sandbox's root: "/" or "/workspace/.." or "."
 * climbed up, taken by its text (relative paths start at /workspace).
 * Removing the root would take the sandbox's whole tree; the rest of the
 * checks are the agent's, which resolves the path inside the sandbox.
 */
int cli_path_is_root(const char *path)
{
	const char *p = path, *end;
	int depth = path[0] == '/' ? 0 : 1;	/* /workspace is one down */
	size_t len;

	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			depth = depth > 0 ? depth - 1 : 0;
		else if (!(len == 1 && p[0] == '.'))
			depth++;
		p += len;
	}
	return depth == 0;
}

void sv_do_unlink(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	uint8_t recursive = wire_get_u8(r);
	mbx_error *err = NULL;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed unlink request");
		return;
	}
	if (path[0] == '\0') {
		sv_send_fail(c, MBX_EINVAL, "the sandbox path is empty");
		return;
	}
	if (cli_path_is_root(path)) {
		sv_send_fail(c, MBX_EPERM, "`%s` is the sandbox's root; to destroy the sandbox, use `mimobox rm NAME`",
			     path);
		return;
	}
	rc = mbx_sandbox_remove(sv->sb, path, recursive != 0, &err);
	answer(sv, c, rc, err);
}

void sv_do_symlink(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *target = wire_get_str(r), *path = wire_get_str(r);
	mbx_error *err = NULL;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed symlink request");
		return;
	}
	if (path[0] == '\0' || target[0] == '\0') {
		sv_send_fail(c, MBX_EINVAL, "the symlink's path or target is empty");
		return;
	}
	rc = mbx_sandbox_symlink(sv->sb, target, path, &err);
	answer(sv, c, rc, err);
}

/* Saves a snapshot of the sandbox to a host file (`mimobox snapshot`). */
void sv_do_snapshot(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const char *path = wire_get_str(r);
	mbx_snapshot *snap = NULL;
	mbx_error *err = NULL;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed snapshot request");
		return;
	}
	if (path[0] != '/') {
		sv_send_fail(c, MBX_EINVAL, "the snapshot file's path is not absolute");
		return;
	}
	rc = mbx_sandbox_snapshot(&snap, sv->sb, &err);
	if (rc == MBX_OK) {
		/* The options the sandbox was made with, for the one restored
		 * from it (`inspect`, the limits messages name). */
		char *note = NULL;
		size_t len = 0;

		if (cli_sandbox_opts_note(sv->opts, &note, &len) < 0)
			rc = MBX_ENOMEM;
		else if (len > MBX_SNAPSHOT_NOTE_MAX)
			len = 0;	/* too many options to keep: the restored one shows defaults */
		if (rc == MBX_OK)
			rc = mbx_snapshot_set_note(snap, note, len, &err);
		free(note);
	}
	if (rc == MBX_OK)
		rc = mbx_snapshot_save(snap, path, &err);
	mbx_snapshot_free(snap);
	answer(sv, c, rc, err);
}

void sv_do_netlog(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	uint64_t since = wire_get_u64(r), dropped;
	mbx_net_log *log = NULL;
	mbx_error *err = NULL;
	size_t i, n, start, count_at, count, batch;
	int rc;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed netlog request");
		return;
	}
	rc = mbx_sandbox_net_log(sv->sb, &log, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		mbx_error_free(err);
		return;
	}
	n = mbx_net_log_count(log);
	dropped = mbx_net_log_dropped(log);
	for (i = 0; i < n || i == 0;) {
		/* A frame per batch, as LIST does. */
		start = wire_begin(&c->out, WIRE_NET_ENTRIES);
		wire_u64(&c->out, dropped);
		count_at = c->out.len;
		wire_u32(&c->out, 0);
		for (count = 0, batch = 0; i < n && batch < SV_LIST_BATCH; i++) {
			if (mbx_net_log_time_us(log, i) < since)
				continue;
			wire_str(&c->out, mbx_net_log_source(log, i));
			wire_u64(&c->out, mbx_net_log_time_us(log, i));
			wire_str(&c->out, mbx_net_log_method(log, i));
			wire_str(&c->out, mbx_net_log_host(log, i));
			wire_u16(&c->out, mbx_net_log_port(log, i));
			wire_str(&c->out, mbx_net_log_address(log, i));
			wire_str(&c->out, mbx_net_verdict_name(mbx_net_log_verdict(log, i)));
			wire_u32(&c->out, (uint32_t)mbx_net_log_status(log, i));
			wire_str(&c->out, mbx_net_log_reason(log, i));
			wire_u64(&c->out, mbx_net_log_bytes_up(log, i));
			wire_u64(&c->out, mbx_net_log_bytes_down(log, i));
			batch += strlen(mbx_net_log_host(log, i)) + strlen(mbx_net_log_reason(log, i)) + 128;
			count++;
		}
		if (!c->out.failed) {
			c->out.data[count_at] = (char)(count >> 24);
			c->out.data[count_at + 1] = (char)(count >> 16);
			c->out.data[count_at + 2] = (char)(count >> 8);
			c->out.data[count_at + 3] = (char)count;
		}
		sv_end_frame(c, start);
		if (n == 0)
			break;
	}
	sv_send_simple(c, WIRE_END);
	mbx_net_log_free(log);
}
