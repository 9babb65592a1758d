/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files of a snapshot (snapshot.h): the writable storage of a sandbox,
 * /workspace, /tmp and /dev/shm, walked and recreated through the file API,
 * so every path is resolved inside the sandbox by its agent and symlinks
 * are read as links, never followed. The payload is untrusted input once it
 * has been in a file: mbx__snapfiles_check() bounds and checks every record
 * before mbx__snapfiles_apply() runs.
 */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static const char *const roots[] = { "/workspace", "/tmp", "/dev/shm" };
#define NROOTS (sizeof(roots) / sizeof(roots[0]))
/* Directories deeper than this are not followed (a path is at most 4095
 * bytes anyway). */
#define MAX_DEPTH 256

/* ==== capture ==== */

struct walk {
	mbx_sandbox *sb;
	struct mbx_buf *out;
	size_t entries;
};

static int put_head(struct mbx_buf *b, uint8_t kind, uint32_t mode, const char *path)
{
	uint8_t h[7];
	size_t n = strlen(path);

	h[0] = kind;
	h[1] = (uint8_t)mode;
	h[2] = (uint8_t)(mode >> 8);
	for (int i = 0; i < 4; i++)
		h[3 + i] = (uint8_t)(n >> (8 * i));
	return mbx__buf_append(b, h, sizeof(h)) < 0 || mbx__buf_append(b, path, n) < 0 ? -1 : 0;
}

static int put_len(struct mbx_buf *b, uint64_t v, int bytes)
{
	uint8_t p[8];

	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return mbx__buf_append(b, p, (size_t)bytes);
}

/* 1 when `path` is the sandbox side of one of the config's mounts. */
static int is_mount(const mbx_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->nmounts; i++)
		if (strcmp(cfg->mounts[i].sandbox, path) == 0)
			return 1;
	return 0;
}

static int walk_dir(struct walk *w, const char *dir, int depth, mbx_error **err);

/* A path removed while the walk ran (the sandbox keeps running): skipped. */
static int gone(mbx_error **err)
{
	if (err) {
		mbx_error_free(*err);
		*err = NULL;
	}
	return MBX_OK;
}

static int walk_entry(struct walk *w, const mbx_dir *d, size_t i, const char *path, int depth, mbx_error **err)
{
	mbx_file_type_t type = mbx_dir_type(d, i);
	mbx_stat *st = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	uint32_t mode;
	int rc;

	if (strlen(path) > MBX_SNAPF_PATH_MAX)
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "snapshot: the path `%.64s...` is too long", path);
	if (++w->entries > MBX_SNAPF_MAX_ENTRIES)
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "snapshot: more than %u files", MBX_SNAPF_MAX_ENTRIES);
	if (is_mount(w->sb->cfg, path))
		return MBX_OK;
	if (mbx_dir_is_symlink(d, i)) {
		const char *target = mbx_dir_symlink_target(d, i);

		if (target == NULL || target[0] == '\0')
			return MBX_OK; /* unreadable link: nothing to keep */
		if (put_head(w->out, MBX_SNAPF_SYMLINK, 0777, path) < 0 || put_len(w->out, strlen(target), 4) < 0 ||
		    mbx__buf_append(w->out, target, strlen(target)) < 0)
			return mbx__error_oom(err);
		return MBX_OK;
	}
	if (type != MBX_FILE_REGULAR && type != MBX_FILE_DIRECTORY)
		return MBX_OK; /* devices, FIFOs, sockets are left out */
	rc = mbx_sandbox_stat(w->sb, path, &st, err);
	if (rc == MBX_ENOTFOUND)
		return gone(err);
	if (rc < 0)
		return rc;
	mode = mbx_stat_mode(st) & 01777; /* no set-id bits */
	type = mbx_stat_type(st);
	mbx_stat_free(st);
	if (type == MBX_FILE_DIRECTORY) {
		if (depth >= MAX_DEPTH)
			return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "snapshot: directories nested deeper than %d", MAX_DEPTH);
		if (put_head(w->out, MBX_SNAPF_DIR, mode, path) < 0)
			return mbx__error_oom(err);
		return walk_dir(w, path, depth + 1, err);
	}
	if (type != MBX_FILE_REGULAR)
		return MBX_OK;
	rc = mbx_sandbox_read_file(w->sb, path, &data, &len, err);
	if (rc == MBX_ENOTFOUND)
		return gone(err);
	if (rc < 0) {
		mbx__error_wrap(err, "save `%s`", path);
		return rc;
	}
	rc = put_head(w->out, MBX_SNAPF_FILE, mode, path) < 0 || put_len(w->out, len, 8) < 0 ||
	     mbx__buf_append(w->out, data, len) < 0 ? mbx__error_oom(err) : MBX_OK;
	mbx_buffer_free(data);
	return rc;
}

static int walk_dir(struct walk *w, const char *dir, int depth, mbx_error **err)
{
	mbx_dir *d = NULL;
	int rc = mbx_sandbox_list_dir(w->sb, dir, &d, err);

	if (rc == MBX_ENOTFOUND && depth > 0)
		return gone(err);

	for (size_t i = 0; rc == MBX_OK && i < mbx_dir_count(d); i++) {
		const char *name = mbx_dir_name(d, i);
		char *path = malloc(strlen(dir) + strlen(name) + 2);

		if (path == NULL) {
			rc = mbx__error_oom(err);
			break;
		}
		strcpy(path, dir);
		strcat(path, "/");
		strcat(path, name);
		rc = walk_entry(w, d, i, path, depth, err);
		free(path);
	}
	mbx_dir_free(d);
	return rc;
}

int mbx__snapfiles_capture(mbx_sandbox *sb, int workspace_only, struct mbx_buf *payload, mbx_error **err)
{
	struct walk w = { sb, payload, 0 };
	int rc = MBX_OK;

	for (size_t r = 0; rc == MBX_OK && r < (workspace_only ? 1 : NROOTS); r++) {
		if (is_mount(sb->cfg, roots[r]))
			continue;
		rc = walk_dir(&w, roots[r], 0, err);
	}
	if (rc == MBX_OK && mbx__buf_append(payload, "\0", 1) < 0)
		rc = mbx__error_oom(err);
	return rc;
}

/* ==== reading a payload ==== */

struct rec {
	uint8_t kind;
	uint32_t mode;
	const char *path; /* not NUL-terminated: path_len bytes */
	uint32_t path_len;
	const uint8_t *data; /* file bytes or symlink target */
	uint64_t data_len;
};

static int malformed(mbx_error **err, const char *what)
{
	mbx__error_set(err, MBX_EINVAL, 0, NULL, "snapshot: the saved files are malformed: %s", what);
	mbx__error_suggest(err, "use a snapshot file written by mbx_snapshot_save() or `mimobox snapshot`, whole and unchanged");
	return MBX_EINVAL;
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A path under one of the roots (roots[0], /workspace, alone with
 * `workspace_only`), with no empty, `.` or `..` component. */
static int path_ok(const char *p, uint32_t n, int workspace_only)
{
	size_t i, r, nroots = workspace_only ? 1 : NROOTS;

	if (n == 0 || n > MBX_SNAPF_PATH_MAX || memchr(p, '\0', n) != NULL)
		return 0;
	for (r = 0; r < nroots; r++) {
		size_t rl = strlen(roots[r]);

		if (n > rl + 1 && memcmp(p, roots[r], rl) == 0 && p[rl] == '/')
			break;
	}
	if (r == nroots)
		return 0;
	for (i = 0; i < n;) {
		size_t j;

		if (p[i] != '/')
			return 0;
		for (j = i + 1; j < n && p[j] != '/'; j++)
			;
		if (j == i + 1 || (j == i + 2 && p[i + 1] == '.') || (j == i + 3 && p[i + 1] == '.' && p[i + 2] == '.'))
			return 0;
		i = j;
	}
	return 1;
}

/* Reads the record at *off; 1 for a record, 0 at the end, <0 on error. */
static int next_rec(const uint8_t *p, size_t len, int workspace_only, size_t *off, struct rec *r, mbx_error **err)
{
	size_t o = *off;

	if (o >= len)
		return malformed(err, "it ends without its end record");
	r->kind = p[o];
	if (r->kind == MBX_SNAPF_END) {
		if (o + 1 != len)
			return malformed(err, "bytes after the end record");
		*off = len;
		return 0;
	}
	if (r->kind != MBX_SNAPF_DIR && r->kind != MBX_SNAPF_FILE && r->kind != MBX_SNAPF_SYMLINK)
		return malformed(err, "unknown record kind");
	if (len - o < 7)
		return malformed(err, "a record is cut short");
	r->mode = (uint32_t)get_le(p + o + 1, 2);
	r->path_len = (uint32_t)get_le(p + o + 3, 4);
	o += 7;
	if (r->path_len > len - o)
		return malformed(err, "a path runs past the end");
	r->path = (const char *)p + o;
	if (!path_ok(r->path, r->path_len, workspace_only))
		return malformed(err, workspace_only ? "a path outside /workspace, or not normalised"
						     : "a path outside /workspace, /tmp and /dev/shm, or not normalised");
	o += r->path_len;
	if (r->kind == MBX_SNAPF_DIR) {
		r->data = NULL;
		r->data_len = 0;
		if (r->mode & ~01777u)
			return malformed(err, "a directory with set-id or unknown mode bits");
	} else {
		int lb = r->kind == MBX_SNAPF_FILE ? 8 : 4;

		if (len - o < (size_t)lb)
			return malformed(err, "a record is cut short");
		r->data_len = get_le(p + o, lb);
		o += (size_t)lb;
		if (r->data_len > len - o)
			return malformed(err, "file content runs past the end");
		r->data = p + o;
		o += (size_t)r->data_len;
		if (r->kind == MBX_SNAPF_FILE && (r->mode & ~01777u))
			return malformed(err, "a file with set-id or unknown mode bits");
		if (r->kind == MBX_SNAPF_SYMLINK &&
		    (r->mode != 0777 || r->data_len == 0 || r->data_len > MBX_SNAPF_PATH_MAX || memchr(r->data, '\0', (size_t)r->data_len)))
			return malformed(err, "a bad symlink target");
	}
	*off = o;
	return 1;
}

int mbx__snapfiles_check(const uint8_t *p, size_t len, int workspace_only, mbx_error **err)
{
	struct rec r;
	size_t off = 0, n = 0;
	int rc;

	while ((rc = next_rec(p, len, workspace_only, &off, &r, err)) == 1)
		if (++n > MBX_SNAPF_MAX_ENTRIES)
			return malformed(err, "too many entries");
	return rc;
}

int mbx__snapfiles_apply(mbx_sandbox *sb, const uint8_t *p, size_t len, mbx_error **err)
{
	struct rec r;
	size_t off = 0;
	int rc;

	/* Checked already (mbx__snapfiles_check): any root is fine here. */
	while ((rc = next_rec(p, len, 0, &off, &r, err)) == 1) {
		char *path = malloc((size_t)r.path_len + 1);
		char *target = NULL;

		if (path == NULL)
			return mbx__error_oom(err);
		memcpy(path, r.path, r.path_len);
		path[r.path_len] = '\0';
		switch (r.kind) {
		case MBX_SNAPF_DIR:
			rc = mbx_sandbox_mkdir(sb, path, r.mode, 0, err);
			break;
		case MBX_SNAPF_FILE:
			rc = mbx_sandbox_write_file(sb, path, r.data, (size_t)r.data_len, r.mode, 0, err);
			break;
		default:
			target = malloc((size_t)r.data_len + 1);
			if (target == NULL) {
				rc = mbx__error_oom(err);
				break;
			}
			memcpy(target, r.data, (size_t)r.data_len);
			target[r.data_len] = '\0';
			rc = mbx_sandbox_symlink(sb, target, path, err);
			free(target);
			break;
		}
		if (rc < 0) {
			mbx__error_wrap(err, "restore `%s`", path);
			free(path);
			return rc;
		}
		free(path);
	}
	return rc;
}
