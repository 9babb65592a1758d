/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cp` of directories through a running `mimobox serve` (remote.h): the
 * local verb's semantics (cli/cmd_cp.c) over the server's file routes,
 * GET/POST .../dir, GET/PUT .../files and GET .../stat.
 *
 * What comes from the server is checked as the library checks what comes
 * from a sandbox's agent: an entry of a listing must be one name within its
 * directory (never empty, `.`, `..`, or with a `/`), so a copy to the host
 * writes below the target only. Host directories are made new or taken when
 * they are real directories (never through a symlink), files are written
 * beside their target and renamed over it (a symlink there is replaced, not
 * followed), and symlinks from the sandbox are made as symlinks, never
 * followed. Host trees are walked below open directories with O_NOFOLLOW.
 *
 * Into a sandbox, files keep their permission bits (PUT .../files with
 * `mode`), directories theirs with the owner's rwx added so the copy can
 * fill them (POST .../dir with `mode`, as the local verb: there is no chmod
 * to do it after), and host symlinks are made as symlinks with the same
 * target (POST .../symlink), replacing a file or symlink there, never a
 * directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cp_tree.h"
#include "remote.h"
#include "serve_dl.h"
#include "session.h"

#define ANSWER_MAX ((size_t)64 << 20)
#define UPLOAD_MAX ((size_t)16 << 20)		/* the server's limit on an upload */
#define DOWNLOAD_MAX ((size_t)1 << 30)		/* the sandbox's default file limit */


struct rcp {
	struct cli_remote *r;
	const char *name;	/* the sandbox */
	struct cp_stats s;
};

/* "RDIR/ENTRY" of a sandbox path. NULL when out of memory. */
static char *child(const char *rdir, const char *entry)
{
	char *out = NULL;

	if (asprintf(&out, "%s%s%s", rdir, rdir[0] && rdir[strlen(rdir) - 1] == '/' ? "" : "/", entry) < 0)
		return NULL;
	return out;
}

/* "/v1/sandboxes/NAME" TAIL PATH (PATH percent-encoded). */
static void target(struct cli_buf *t, const char *name, const char *tail, const char *path)
{
	cli_remote_sandbox_target(t, name, tail);
	cli_remote_urlencode(t, path);
}

/* Whether a 404 answer is the server's "no sandbox `NAME`" (not a missing path). */
static int no_sandbox(const struct cli_remote_answer *a)
{
	static const char key[] = "\"message\":\"no sandbox `";

	return a->body.data && memmem(a->body.data, a->body.len, key, sizeof(key) - 1) != NULL;
}

/*
 * One request of a file operation; a 2xx answer's body in *body when
 * wanted. 0; -2 for a 404 of the path when `quiet_404`; else the exit
 * status after reporting (1 for a refused operation, as the file verbs).
 */
static int call(struct rcp *c, const char *method, const struct cli_buf *t, const void *data, size_t len, size_t limit,
		int quiet_404, struct cli_buf *body)
{
	struct cli_remote_answer a;
	int status = 0;

	if (t->failed)
		return cp_oom(c->s.json);
	if (cli_remote_call(c->r, c->s.json, method, t->data, data ? "application/octet-stream" : NULL, data, len, limit,
			    &a) < 0)
		return CLI_EXIT_FAILED;
	if (a.status / 100 != 2) {
		if (a.status == 404 && quiet_404 && !no_sandbox(&a))
			status = -2;
		else
			status = cli_remote_report_file(c->r, c->s.json, &a);
	} else if (body) {
		*body = a.body;
		a.body.data = NULL;
		a.body.len = 0;
	}
	cli_buf_free(&a.body);
	return status;
}

/*
 * GET .../stat of `path`: its type ("file", "directory", "symlink",
 * "other": *type, a static string) and permission bits. 0, -2 when it does
 * not exist and `quiet_404`, else the exit status after reporting.
 */
static int rstat(struct rcp *c, const char *path, const char **type, mode_t *mode, int quiet_404)
{
	static const char *const types[] = { "file", "directory", "symlink", "other" };
	struct cli_buf t = CLI_BUF_INIT, body = CLI_BUF_INIT;
	json_object *o;
	const char *ty, *m;
	char *end = NULL;
	unsigned long bits = 0;
	int status, ok;

	target(&t, c->name, "/stat?path=", path);
	status = call(c, "GET", &t, NULL, 0, ANSWER_MAX, quiet_404, &body);
	cli_buf_free(&t);
	if (status)
		return status;
	o = cli_remote_json_parse(body.data, body.len);
	cli_buf_free(&body);
	ty = cli_remote_jstr(o, "type");
	m = cli_remote_jstr(o, "mode");
	if (m)
		bits = strtoul(m, &end, 8);
	ok = m && *m && !*end && bits <= 07777;
	*type = NULL;
	for (size_t i = 0; ty && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(ty, types[i]) == 0)
			*type = types[i];
	if (o)
		json_object_put(o);	/* ty and m are gone with it */
	if (!*type || !ok) {
		cli_report(c->s.json, MBX_EPROTO, "the server's answer to GET .../stat is malformed", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	*mode = (mode_t)(bits & 0777);
	return 0;
}

/* ---- from a sandbox ---- */

struct entry {
	char *name;
	char *link;		/* a symlink's target, or NULL */
	char type;		/* 'f', 'd', 'l', 'o' */
};

static void free_entries(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].link);
	}
	free(e);
}

/* An entry of a listing names one thing within its directory, as the library requires of an agent. */
static int entry_name_ok(json_object *v)
{
	const char *s;
	size_t n;

	if (!v || !json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	return n > 0 && n <= 255 && strlen(s) == n && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

/* GET .../dir of `path` into *out; 0, or the exit status after reporting. */
static int rlist(struct rcp *c, const char *path, struct entry **out, size_t *n_out)
{
	struct cli_buf t = CLI_BUF_INIT, body = CLI_BUF_INIT;
	json_object *o, *list = NULL;
	struct entry *e = NULL;
	size_t n = 0, count;
	int status;

	*out = NULL;
	*n_out = 0;
	target(&t, c->name, "/dir?path=", path);
	status = call(c, "GET", &t, NULL, 0, ANSWER_MAX, 0, &body);
	cli_buf_free(&t);
	if (status)
		return status;
	o = cli_remote_json_parse(body.data, body.len);
	cli_buf_free(&body);
	if (!o || !json_object_object_get_ex(o, "entries", &list) || !json_object_is_type(list, json_type_array))
		goto malformed;
	count = json_object_array_length(list);
	e = calloc(count ? count : 1, sizeof(*e));
	if (!e) {
		json_object_put(o);
		return cp_oom(c->s.json);
	}
	for (n = 0; n < count; n++) {
		json_object *x = json_object_array_get_idx(list, n), *v = NULL;
		const char *type = cli_remote_jstr(x, "type"), *link = cli_remote_jstr(x, "symlink_target");

		if (!x || !json_object_object_get_ex(x, "name", &v) || !entry_name_ok(v) || !type) {
			char message[CLI_WHY_MAX + 96];

			snprintf(message, sizeof(message), "the server's listing of `%s:%s` has an entry that is not "
				 "a name within the directory", c->name, path);
			cli_report(c->s.json, MBX_EPROTO, message, NULL, NULL, 0);
			json_object_put(o);
			free_entries(e, n);
			return CLI_EXIT_FAILED;
		}
		e[n].type = strcmp(type, "file") == 0 ? 'f' : strcmp(type, "directory") == 0 ? 'd' :
			    strcmp(type, "symlink") == 0 ? 'l' : 'o';
		e[n].name = strdup(json_object_get_string(v));
		e[n].link = link ? strdup(link) : NULL;
		if (!e[n].name || (link && !e[n].link)) {
			json_object_put(o);
			free_entries(e, n + 1);
			return cp_oom(c->s.json);
		}
	}
	json_object_put(o);
	*out = e;
	*n_out = n;
	return 0;
malformed:
	if (o)
		json_object_put(o);
	cli_report(c->s.json, MBX_EPROTO, "the server's directory listing is malformed", NULL, NULL, 0);
	return CLI_EXIT_FAILED;
}

/*
 * The sandbox file `rpath` to `hdir`/`entry` with mode `mode` exactly:
 * written beside it under a temporary name and renamed over it.
 */
static int file_down(struct rcp *c, const char *rpath, const char *hdir, const char *entry, mode_t mode)
{
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT;
	struct stat hst;
	char *hpath = NULL, *tmp = NULL;
	int fd, rc;

	if (asprintf(&hpath, "%s/%s", hdir, entry) < 0 || asprintf(&tmp, "%s/.%s.mimobox-XXXXXX", hdir, entry) < 0) {
		free(hpath);
		return cp_oom(c->s.json);
	}
	if (lstat(hpath, &hst) == 0 && S_ISDIR(hst.st_mode)) {
		rc = cp_host_error(c->s.json, "replace", hpath, EISDIR);
		goto out;
	}
	target(&t, c->name, "/files?path=", rpath);
	rc = call(c, "GET", &t, NULL, 0, DOWNLOAD_MAX, 0, &data);
	if (rc)
		goto out;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = cp_host_error(c->s.json, "write", hpath, errno);
		goto out;
	}
	if (fchmod(fd, mode) < 0 || (data.len && cli_write_all(fd, data.data, data.len) < 0) || close(fd) < 0 ||
	    rename(tmp, hpath) < 0) {
		rc = cp_host_error(c->s.json, "write", hpath, errno);
		unlink(tmp);
		goto out;
	}
	c->s.files++;
	c->s.bytes += data.len;
out:
	cli_buf_free(&t);
	cli_buf_free(&data);
	free(hpath);
	free(tmp);
	return rc;
}

/* cp -r from a sandbox: the entries of `rdir` into the host directory `hdir`. */
static int tree_down(struct rcp *c, const char *rdir, const char *hdir, int depth)
{
	struct entry *e;
	size_t n, i;
	char *rpath = NULL, *hpath = NULL;
	int rc;

	if (depth > CP_MAX_DEPTH)
		return cp_too_deep(c->s.json, rdir);
	rc = rlist(c, rdir, &e, &n);
	if (rc)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		const char *type = NULL;
		mode_t mode = 0;

		free(rpath);
		free(hpath);
		rpath = child(rdir, e[i].name);
		hpath = NULL;
		if (!rpath || asprintf(&hpath, "%s/%s", hdir, e[i].name) < 0) {
			hpath = NULL;
			rc = cp_oom(c->s.json);
			break;
		}
		if (e[i].type == 'l') {
			/* Copied as a link, never followed. */
			if (!e[i].link)
				cp_skip(&c->s, rpath, cp_symlink_reason);
			else
				rc = cp_host_symlink(&c->s, e[i].link, hpath);
			continue;
		}
		if (e[i].type != 'd' && e[i].type != 'f') {
			cp_skip(&c->s, rpath, cp_special_reason);
			continue;
		}
		rc = rstat(c, rpath, &type, &mode, 0);
		if (rc)
			break;
		if (strcmp(type, "file") == 0) {
			rc = file_down(c, rpath, hdir, e[i].name, mode);
		} else if (strcmp(type, "directory") == 0) {
			rc = cp_host_dir(hpath, c->s.json);
			if (rc == 0)
				rc = tree_down(c, rpath, hpath, depth + 1);
			/* The mode last, so a read-only directory could still be filled. */
			if (rc == 0 && chmod(hpath, mode) < 0)
				rc = cp_host_error(c->s.json, "set the mode of", hpath, errno);
			if (rc == 0)
				c->s.dirs++;
		} else {
			/* Changed since the listing. */
			cp_skip(&c->s, rpath, strcmp(type, "symlink") == 0 ? cp_symlink_reason : cp_special_reason);
		}
	}
	free(rpath);
	free(hpath);
	free_entries(e, n);
	return rc;
}

int cli_remote_cp_down(struct cli_remote *r, int json, int recursive, const char *name, const char *path,
		       const char *host)
{
	struct rcp c = { .r = r, .name = name, .s = { .json = json, .skipped = CLI_BUF_INIT } };
	const char *type = NULL;
	struct stat hst;
	char *into = NULL, message[CLI_WHY_MAX + 64];
	mode_t mode = 0;
	int rc;

	rc = rstat(&c, path, &type, &mode, 0);
	if (rc)
		return rc;
	if (strcmp(type, "directory") != 0)
		return -2;
	if (!recursive || strcmp(host, "-") == 0) {
		snprintf(message, sizeof(message), "`%s:%s` is a directory (%s)", name, path,
			 recursive ? "a directory cannot go to stdout" : "use cp -r to copy a directory");
		cli_report(json, MBX_EINVAL, message, NULL, NULL, EISDIR);
		return 1;
	}
	/* Into an existing host directory under its own name, else as `host`, as cp -r. */
	if (stat(host, &hst) == 0) {
		if (!S_ISDIR(hst.st_mode))
			return cp_host_error(json, "copy a directory to", host, ENOTDIR);
		if (!(into = cp_join(host, path)))
			return cp_oom(json);
		host = into;
	}
	rc = cp_host_dir(host, json);
	if (rc == 0)
		rc = tree_down(&c, path, host, 1);
	if (rc == 0 && chmod(host, mode) < 0)
		rc = cp_host_error(json, "set the mode of", host, errno);
	if (rc == 0)
		c.s.dirs++;
	free(into);
	return cp_done(&c.s, rc);
}

/* ---- to a sandbox ---- */

/* Makes the sandbox directory `rpath` with `mode`, or takes an existing one. */
static int rdir_make(struct rcp *c, const char *rpath, mode_t mode)
{
	struct cli_buf t = CLI_BUF_INIT;
	const char *type = NULL;
	mode_t had;
	int rc = rstat(c, rpath, &type, &had, 1);

	if (rc == 0) {
		char message[CLI_WHY_MAX + 64];

		if (strcmp(type, "directory") == 0)
			return 0;
		snprintf(message, sizeof(message), "`%s:%s` exists and is not a directory", c->name, rpath);
		cli_report(c->s.json, MBX_EEXIST, message, NULL, NULL, ENOTDIR);
		return 1;
	}
	if (rc != -2)
		return rc;
	target(&t, c->name, "/dir?path=", rpath);
	cli_buf_printf(&t, "&mode=%04o", (unsigned)(mode & 0777));
	rc = call(c, "POST", &t, NULL, 0, ANSWER_MAX, 0, NULL);
	cli_buf_free(&t);
	return rc;
}

/*
 * The host symlink `entry` below `dirfd` (shown as `hpath`) as a symlink
 * with the same target at `rpath`, replacing a file or symlink there,
 * never a directory. 0, or the exit status after reporting.
 */
static int link_up(struct rcp *c, int dirfd, const char *entry, const char *hpath, const char *rpath)
{
	struct cli_buf t = CLI_BUF_INIT;
	char link[4096], message[CLI_WHY_MAX + 64];
	const char *type = NULL;
	ssize_t n = readlinkat(dirfd, entry, link, sizeof(link) - 1);
	mode_t had;
	int rc;

	if (n <= 0) {
		cp_skip(&c->s, hpath, cp_symlink_reason);
		return 0;
	}
	link[n] = '\0';
	rc = rstat(c, rpath, &type, &had, 1);
	if (rc == 0 && strcmp(type, "directory") == 0) {
		snprintf(message, sizeof(message), "cannot replace the directory `%s:%s` with a symlink", c->name, rpath);
		cli_report(c->s.json, MBX_EEXIST, message, NULL, NULL, EISDIR);
		return 1;
	}
	if (rc == 0) {
		target(&t, c->name, "/files?path=", rpath);
		rc = call(c, "DELETE", &t, NULL, 0, ANSWER_MAX, 0, NULL);
		cli_buf_free(&t);
	} else if (rc == -2) {
		rc = 0;
	}
	if (rc != 0)
		return rc;
	target(&t, c->name, "/symlink?path=", rpath);
	cli_buf_puts(&t, "&target=");
	cli_remote_urlencode(&t, link);
	rc = call(c, "POST", &t, NULL, 0, ANSWER_MAX, 0, NULL);
	cli_buf_free(&t);
	if (rc == 0)
		c->s.links++;
	return rc;
}

/* The open host file `fd` (shown as `hpath`) to `rpath` with `mode`, at most 16 MiB. */
static int file_up(struct rcp *c, int fd, const char *hpath, const char *rpath, mode_t mode)
{
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT;
	char buf[65536];
	int rc = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = cp_host_error(c->s.json, "read", hpath, errno);
			break;
		}
		if (n == 0)
			break;
		if (data.len + (size_t)n > UPLOAD_MAX) {
			char message[CLI_WHY_MAX + 64];

			snprintf(message, sizeof(message), "`%s` is larger than the 16 MiB the server takes in a file",
				 hpath);
			cli_report(c->s.json, MBX_ETOOBIG, message, "set MIMOBOX_HOST=local to copy larger files", NULL, 0);
			rc = CLI_EXIT_FAILED;
			break;
		}
		cli_buf_add(&data, buf, (size_t)n);
	}
	if (rc == 0 && data.failed)
		rc = cp_oom(c->s.json);
	if (rc == 0) {
		target(&t, c->name, "/files?path=", rpath);
		cli_buf_printf(&t, "&mode=%04o", (unsigned)(mode & 0777));
		rc = call(c, "PUT", &t, data.data ? data.data : "", data.len, ANSWER_MAX, 0, NULL);
	}
	if (rc == 0) {
		c->s.files++;
		c->s.bytes += data.len;
	}
	cli_buf_free(&t);
	cli_buf_free(&data);
	return rc;
}

/*
 * cp -r to a sandbox: the entries of the open host directory `dirfd`
 * (shown as `hdir`) into `rdir`. Nothing is followed: entries are opened
 * with O_NOFOLLOW below `dirfd` and looked at again once open.
 */
static int tree_up(struct rcp *c, int dirfd, const char *hdir, const char *rdir, int depth)
{
	struct dirent *de;
	struct stat hst;
	DIR *d;
	char *rpath = NULL, *hpath = NULL;
	int rc = 0, fd, e;

	if (depth > CP_MAX_DEPTH)
		return cp_too_deep(c->s.json, hdir);
	fd = dup(dirfd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		e = errno;
		if (fd >= 0)
			close(fd);
		return cp_host_error(c->s.json, "read the directory", hdir, e);
	}
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = cp_host_error(c->s.json, "read the directory", hdir, errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		free(rpath);
		free(hpath);
		rpath = child(rdir, de->d_name);
		hpath = NULL;
		if (!rpath || asprintf(&hpath, "%s/%s", hdir, de->d_name) < 0) {
			hpath = NULL;
			rc = cp_oom(c->s.json);
			break;
		}
		if (fstatat(dirfd, de->d_name, &hst, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cp_host_error(c->s.json, "read", hpath, errno);
			break;
		}
		if (S_ISLNK(hst.st_mode)) {
			rc = link_up(c, dirfd, de->d_name, hpath, rpath);
			continue;
		}
		if (!S_ISDIR(hst.st_mode) && !S_ISREG(hst.st_mode)) {
			cp_skip(&c->s, hpath, cp_special_reason);
			continue;
		}
		fd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
			    (S_ISDIR(hst.st_mode) ? O_DIRECTORY : 0));
		if (fd < 0 || fstat(fd, &hst) < 0) {
			e = errno;
			if (fd >= 0)
				close(fd);
			if (e == ELOOP) {
				/* It became a symlink since: not followed. */
				rc = link_up(c, dirfd, de->d_name, hpath, rpath);
				continue;
			}
			rc = cp_host_error(c->s.json, "open", hpath, e);
			break;
		}
		if (S_ISREG(hst.st_mode)) {
			rc = file_up(c, fd, hpath, rpath, hst.st_mode);
		} else if (S_ISDIR(hst.st_mode)) {
			/* Owner rwx added, so the copy can fill it (the local verb's rule). */
			rc = rdir_make(c, rpath, (hst.st_mode & 0777) | 0700);
			if (rc == 0)
				rc = tree_up(c, fd, hpath, rpath, depth + 1);
			if (rc == 0)
				c->s.dirs++;
		} else {
			cp_skip(&c->s, hpath, cp_special_reason);
		}
		close(fd);
	}
	free(rpath);
	free(hpath);
	closedir(d);
	return rc;
}

int cli_remote_cp_up(struct cli_remote *r, int json, int recursive, const char *host, int fd, const char *name,
		     const char *path)
{
	struct rcp c = { .r = r, .name = name, .s = { .json = json, .skipped = CLI_BUF_INIT } };
	const char *type = NULL;
	char *into = NULL, message[CLI_WHY_MAX + 64];
	mode_t mode;
	int rc;

	if (!recursive) {
		snprintf(message, sizeof(message), "cannot copy `%s`: it is a directory (use cp -r to copy a directory)",
			 host);
		cli_report(json, MBX_ESYS, message, NULL, NULL, EISDIR);
		return 1;
	}
	/* Into an existing directory under its own name, else as PATH, as cp -r. */
	rc = path[0] ? rstat(&c, path, &type, &mode, 1) : 0;
	if (rc > 0)
		return rc;
	if (!path[0] || (rc == 0 && strcmp(type, "directory") == 0)) {
		if (!(into = cp_join(path[0] ? path : "/workspace", host)))
			return cp_oom(json);
		path = into;
	}
	{
		struct stat hst;

		/* Its mode, owner rwx added, as the directories below. */
		rc = fstat(fd, &hst) < 0 ? cp_host_error(json, "read", host, errno) :
					   rdir_make(&c, path, (hst.st_mode & 0777) | 0700);
	}
	if (rc == 0)
		rc = tree_up(&c, fd, host, path, 1);
	if (rc == 0)
		c.s.dirs++;
	free(into);
	return cp_done(&c.s, rc);
}
