/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cp`: files and directory trees between the host and a named sandbox,
 * streamed, `-` for stdin and stdout. Links are copied as links and never
 * followed; special files are skipped with a warning. Host-side entries are
 * opened below the directory being walked with O_NOFOLLOW, and a copy never
 * writes through a symlink in the target tree.
 *
 * Exit status as for the other file verbs (cli/cmd_files.c).
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

#include "cp_tree.h"
#include "files.h"

static const struct cli_option cp_options[] = {
	{ "json", 0, 0, FILE_JSON },
	{ "recursive", 'r', 0, FILE_RECURSIVE },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/* ---- cp ---- */

/* Deepest directory tree cp -r walks. */


/* ---- cp from a sandbox ---- */

/* One entry of a sandbox directory, kept while the listing is read. */
struct remote_entry {
	char *name;
	char *target;	/* a symlink's, or NULL */
	uint8_t type;
	uint8_t link;
};

static void free_entries(struct remote_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].target);
	}
	free(e);
}

/* LIST of `path` into *out; 0, or the exit status after reporting. */
static int remote_list(struct wire_conn *conn, const char *name, const char *path, struct remote_entry **out,
		       size_t *n_out, int json)
{
	struct remote_entry *e = NULL, *ne;
	struct wire_frame f;
	size_t n = 0;
	uint32_t count, i;
	int rc;

	*out = NULL;
	*n_out = 0;
	rc = files_send_path(conn, WIRE_LIST, path, name, json);
	if (rc)
		return rc;
	for (;;) {
		rc = files_next_frame(conn, &f, name, json);
		if (rc >= 0)
			goto fail;
		if (f.type == WIRE_ERROR) {
			rc = cli_session_file_status(cli_session_report_error(json, &f.r));
			goto fail;
		}
		if (f.type == WIRE_END)
			break;
		if (f.type != WIRE_ENTRIES)
			goto proto;
		count = wire_get_u32(&f.r);
		for (i = 0; i < count && !f.r.bad; i++) {
			const char *entry = wire_get_str(&f.r);
			uint8_t type = wire_get_u8(&f.r);

			(void)wire_get_u64(&f.r);
			uint8_t link = wire_get_u8(&f.r);
			const char *target = wire_get_str(&f.r);

			if (f.r.bad)
				break;
			ne = realloc(e, (n + 1) * sizeof(*e));
			if (ne)
				ne[n].target = NULL;
			if (!ne || !(ne[n].name = strdup(entry)) ||
			    (target[0] && !(ne[n].target = strdup(target)))) {
				if (ne && ne[n].name)
					free(ne[n].name);
				e = ne ? ne : e;
				cp_oom(json);
				rc = CLI_EXIT_FAILED;
				goto fail;
			}
			e = ne;
			e[n].type = type;
			e[n].link = link;
			n++;
		}
		if (wire_done(&f.r) < 0)
			goto proto;
	}
	*out = e;
	*n_out = n;
	return 0;
proto:
	rc = cli_session_lost(json, name, EPROTO);
fail:
	free_entries(e, n);
	return rc;
}

/* Copies one sandbox file to `hpath` with mode `mode` exactly. */
static int file_down(struct wire_conn *conn, const char *name, const char *rpath, const char *hpath, mode_t mode,
		     struct cp_stats *cs)
{
	struct sink k = { -1, hpath, NULL, mode, NULL, 0 };
	struct stat hst;
	int rc;

	if (lstat(hpath, &hst) == 0 && S_ISDIR(hst.st_mode))
		return cp_host_error(cs->json, "replace", hpath, EISDIR);
	rc = files_download(conn, name, rpath, &k, cs->json);
	if (rc == 0) {
		cs->files++;
		cs->bytes += k.bytes;
	}
	return rc;
}

/* cp -r from a sandbox: the entries of `rdir` into the host directory `hdir`. */
static int tree_down(struct wire_conn *conn, const char *name, const char *rdir, const char *hdir, int depth,
		     struct cp_stats *cs)
{
	struct remote_entry *e;
	struct stat_reply st;
	size_t n, i;
	char *rpath = NULL, *hpath = NULL;
	int rc, status;

	if (depth > CP_MAX_DEPTH)
		return cp_too_deep(cs->json, rdir);
	rc = remote_list(conn, name, rdir, &e, &n, cs->json);
	if (rc)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		free(rpath);
		free(hpath);
		rpath = hpath = NULL;
		if (asprintf(&rpath, "%s%s%s", rdir, rdir[strlen(rdir) - 1] == '/' ? "" : "/", e[i].name) < 0 ||
		    asprintf(&hpath, "%s/%s", hdir, e[i].name) < 0) {
			rpath = hpath = NULL;
			cp_oom(cs->json);
			rc = CLI_EXIT_FAILED;
			break;
		}
		if (e[i].link || e[i].type == MBX_FILE_SYMLINK) {
			/* Copied as a link, never followed. */
			if (!e[i].target)
				cp_skip(cs, rpath, cp_symlink_reason);
			else
				rc = cp_host_symlink(cs, e[i].target, hpath);
			continue;
		}
		if (e[i].type != MBX_FILE_DIRECTORY && e[i].type != MBX_FILE_REGULAR) {
			cp_skip(cs, rpath, cp_special_reason);
			continue;
		}
		if (files_remote_stat(conn, name, rpath, &st, 0, cs->json, &status) < 0) {
			rc = status;
			break;
		}
		if (st.type == MBX_FILE_REGULAR) {
			rc = file_down(conn, name, rpath, hpath, (mode_t)(st.mode & 0777), cs);
		} else if (st.type == MBX_FILE_DIRECTORY) {
			rc = cp_host_dir(hpath, cs->json);
			if (rc == 0)
				rc = tree_down(conn, name, rpath, hpath, depth + 1, cs);
			/* The mode last, so a read-only directory could still be filled. */
			if (rc == 0 && chmod(hpath, (mode_t)(st.mode & 0777)) < 0)
				rc = cp_host_error(cs->json, "set the mode of", hpath, errno);
			if (rc == 0)
				cs->dirs++;
		} else {
			/* Changed since the listing. */
			cp_skip(cs, rpath, st.type == MBX_FILE_SYMLINK ? cp_symlink_reason : cp_special_reason);
		}
	}
	free(rpath);
	free(hpath);
	free_entries(e, n);
	return rc;
}

/*
 * cp NAME:PATH HOST: a file (a host directory as the target gets it under
 * its own name; `-` is stdout), or with -r a directory tree. Returns the
 * exit status.
 */
static int cp_from_sandbox(const char *name, const char *path, const char *host, int recursive,
			   struct cp_stats *cs)
{
	struct sink k = { -1, host, NULL, 0644, NULL, 0 };
	struct stat_reply st;
	struct stat hst;
	struct wire_conn conn;
	char *target = NULL, message[CLI_WHY_MAX + 64];
	mode_t mask;
	int rc, status, json = cs->json;

	rc = cli_session_open("cp", name, json, &conn, NULL);
	if (rc)
		return rc;
	if (files_remote_stat(&conn, name, path, &st, 0, json, &status) < 0) {
		rc = status;
		goto out;
	}
	if (st.type == MBX_FILE_DIRECTORY) {
		if (!recursive || strcmp(host, "-") == 0) {
			snprintf(message, sizeof(message), "`%s:%s` is a directory (%s)", name, path,
				 recursive ? "a directory cannot go to stdout" : "use cp -r to copy a directory");
			cli_report(json, MBX_EINVAL, message, NULL, NULL, EISDIR);
			rc = 1;
			goto out;
		}
		/* Into an existing host directory under its own name, else as `host`, as cp -r. */
		if (stat(host, &hst) == 0) {
			if (!S_ISDIR(hst.st_mode)) {
				rc = cp_host_error(json, "copy a directory to", host, ENOTDIR);
				goto out;
			}
			target = cp_join(host, path);
			if (!target) {
				cp_oom(json);
				rc = CLI_EXIT_FAILED;
				goto out;
			}
		}
		rc = cp_host_dir(target ? target : host, json);
		if (rc == 0)
			rc = tree_down(&conn, name, path, target ? target : host, 1, cs);
		if (rc == 0 && chmod(target ? target : host, (mode_t)(st.mode & 0777)) < 0)
			rc = cp_host_error(json, "set the mode of", target ? target : host, errno);
		if (rc == 0)
			cs->dirs++;
		goto out;
	}
	if (strcmp(host, "-") == 0) {
		/* To stdout, as cat. */
		k.fd = STDOUT_FILENO;
		k.host_path = NULL;
		if (json) {
			cli_usage_error(json, "cp", "--json cannot go with `-` as the target: the file takes stdout "
					"(use `mimobox cat NAME PATH --json`)");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		rc = files_download(&conn, name, path, &k, json);
		cs->files += rc == 0;
		cs->bytes += k.bytes;
		goto out;
	}
	/* Into a host directory, under the file's own name, as cp(1). */
	if (stat(host, &hst) == 0 && S_ISDIR(hst.st_mode)) {
		target = cp_join(host, path);
		if (!target) {
			cp_oom(json);
			rc = CLI_EXIT_FAILED;
			goto out;
		}
		k.host_path = target;
	}
	/* A file made new gets the sandbox file's mode less the umask; a replaced
	 * one keeps its own permission bits, never set-id bits: the new content
	 * comes from the sandbox. */
	mask = umask(0);
	umask(mask);
	if (stat(k.host_path, &hst) == 0 && S_ISREG(hst.st_mode))
		k.mode = hst.st_mode & 0777;
	else
		k.mode = (mode_t)(st.mode & 0777) & ~mask;
	rc = files_download(&conn, name, path, &k, json);
	cs->files += rc == 0;
	cs->bytes += k.bytes;
out:
	free(target);
	wire_conn_close(&conn);
	return rc;
}

/* ---- cp to a sandbox ---- */

/* Copies the open host file `fd` to `rpath` (mode of a new file `mode`). */
static int file_up(struct wire_conn *conn, const char *name, const char *hpath, int fd, const char *rpath,
		   uint32_t mode, struct cp_stats *cs)
{
	char what[CLI_WHY_MAX];
	uint64_t sent = 0;
	int rc;

	snprintf(what, sizeof(what), "`%s`", hpath);
	rc = files_upload(conn, name, rpath, fd, mode, what, cs->json, &sent);
	if (rc == 0) {
		cs->files++;
		cs->bytes += sent;
	}
	return rc;
}

/* Makes the sandbox directory `rpath`, or takes an existing one. */
static int remote_dir(struct wire_conn *conn, const char *name, const char *rpath, uint32_t mode, int json)
{
	struct stat_reply st;
	int status;

	if (files_remote_stat(conn, name, rpath, &st, 1, json, &status) == 0) {
		if (st.type == MBX_FILE_DIRECTORY)
			return 0;
		char message[CLI_WHY_MAX + 64];

		snprintf(message, sizeof(message), "`%s:%s` exists and is not a directory", name, rpath);
		cli_report(json, MBX_EEXIST, message, NULL, NULL, ENOTDIR);
		return 1;
	}
	if (status != MBX_ENOTFOUND && status > 0)
		return status;	/* the connection broke: reported */
	return files_path_request(conn, name, WIRE_MKDIR, rpath, mode, 0, json);
}

/*
 * Copies the host symlink `entry` below `dirfd` as a symlink to `rpath`
 * (replacing a file or link there, never a directory). 0, or the exit
 * status after reporting.
 */
static int link_up(struct wire_conn *conn, const char *name, int dirfd, const char *entry, const char *hpath,
		   const char *rpath, struct cp_stats *cs)
{
	char target[4096];
	struct stat_reply st;
	struct cli_buf b = CLI_BUF_INIT;
	size_t start;
	ssize_t n = readlinkat(dirfd, entry, target, sizeof(target) - 1);
	int rc, status;

	if (n <= 0) {
		cp_skip(cs, hpath, cp_symlink_reason);
		return 0;
	}
	target[n] = '\0';
	if (files_remote_stat(conn, name, rpath, &st, 1, cs->json, &status) == 0) {
		if (st.type == MBX_FILE_DIRECTORY) {
			char message[CLI_WHY_MAX + 64];

			snprintf(message, sizeof(message), "cannot replace the directory `%s:%s` with a symlink", name,
				 rpath);
			cli_report(cs->json, MBX_EEXIST, message, NULL, NULL, EISDIR);
			return 1;
		}
		rc = files_path_request(conn, name, WIRE_UNLINK, rpath, 0, 0, cs->json);
		if (rc)
			return rc;
	} else if (status != MBX_ENOTFOUND && status > 0) {
		return status;
	}
	start = wire_begin(&b, WIRE_SYMLINK);
	wire_str(&b, target);
	wire_str(&b, rpath);
	rc = wire_end(&b, start) == 0 && cli_session_send(conn, &b) == 0 ? 0 : -1;
	cli_buf_free(&b);
	if (rc < 0)
		return cli_session_lost(cs->json, name, errno);
	rc = files_write_answer(conn, name, cs->json);
	if (rc == 0)
		cs->links++;
	return rc;
}

/*
 * cp -r to a sandbox: the entries of the open host directory `dirfd`
 * (shown as `hdir`) into `rdir`. Nothing is followed: symlinks and special
 * files are skipped, directories are opened with O_NOFOLLOW below `dirfd`.
 */
static int tree_up(struct wire_conn *conn, const char *name, int dirfd, const char *hdir, const char *rdir,
		   int depth, struct cp_stats *cs)
{
	struct dirent *de;
	struct stat hst;
	DIR *d;
	char *rpath = NULL, *hpath = NULL;
	int rc = 0, fd, e;

	if (depth > CP_MAX_DEPTH)
		return cp_too_deep(cs->json, hdir);
	fd = dup(dirfd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return cp_host_error(cs->json, "read the directory", hdir, errno);
	}
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = cp_host_error(cs->json, "read the directory", hdir, errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		free(rpath);
		free(hpath);
		rpath = hpath = NULL;
		if (asprintf(&rpath, "%s%s%s", rdir, rdir[strlen(rdir) - 1] == '/' ? "" : "/", de->d_name) < 0 ||
		    asprintf(&hpath, "%s/%s", hdir, de->d_name) < 0) {
			rpath = hpath = NULL;
			cp_oom(cs->json);
			rc = CLI_EXIT_FAILED;
			break;
		}
		if (fstatat(dirfd, de->d_name, &hst, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cp_host_error(cs->json, "read", hpath, errno);
			break;
		}
		if (S_ISLNK(hst.st_mode)) {
			rc = link_up(conn, name, dirfd, de->d_name, hpath, rpath, cs);
			continue;
		}
		if (!S_ISDIR(hst.st_mode) && !S_ISREG(hst.st_mode)) {
			cp_skip(cs, hpath, cp_special_reason);
			continue;
		}
		/* O_NOFOLLOW and a second look: an entry swapped for a link meanwhile is not followed. */
		fd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
			    (S_ISDIR(hst.st_mode) ? O_DIRECTORY : 0));
		if (fd < 0 || fstat(fd, &hst) < 0) {
			e = errno;
			if (fd >= 0)
				close(fd);
			if (e == ELOOP) {
				cp_skip(cs, hpath, cp_symlink_reason);
				continue;
			}
			rc = cp_host_error(cs->json, "open", hpath, e);
			break;
		}
		if (S_ISREG(hst.st_mode)) {
			rc = file_up(conn, name, hpath, fd, rpath, (uint32_t)(hst.st_mode & 0777), cs);
		} else if (S_ISDIR(hst.st_mode)) {
			/* Owner rwx added, so the sandbox side can fill it (there is no chmod to do it later). */
			rc = remote_dir(conn, name, rpath, (uint32_t)(hst.st_mode & 0777) | 0700, cs->json);
			if (rc == 0)
				rc = tree_up(conn, name, fd, hpath, rpath, depth + 1, cs);
			if (rc == 0)
				cs->dirs++;
		} else {
			cp_skip(cs, hpath, cp_special_reason);
		}
		close(fd);
	}
	free(rpath);
	free(hpath);
	closedir(d);
	return rc;
}

/*
 * cp HOST NAME:PATH: the host file (`-`: stdin) streams into the sandbox
 * with its permission bits as the mode of a new file; a sandbox directory
 * (or a path ending in '/') as the target gets it under its own name. With
 * -r a host directory is copied as a tree. Returns the exit status.
 */
static int cp_to_sandbox(const char *host, const char *name, const char *path, int recursive, struct cp_stats *cs)
{
	struct stat_reply st;
	struct stat hst;
	struct wire_conn conn;
	char *target = NULL, message[CLI_WHY_MAX + 64];
	int rc, status, fd, from_stdin = strcmp(host, "-") == 0, json = cs->json, target_is_dir;

	if (from_stdin) {
		fd = STDIN_FILENO;
		hst.st_mode = S_IFREG | 0644;
	} else {
		fd = open(host, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &hst) < 0 || (S_ISDIR(hst.st_mode) && !recursive) ||
		    (!S_ISDIR(hst.st_mode) && !S_ISREG(hst.st_mode))) {
			int e = fd < 0 ? errno : S_ISDIR(hst.st_mode) ? EISDIR : EINVAL;

			snprintf(message, sizeof(message), "cannot copy `%s`: %s", host,
				 e == EISDIR ? "it is a directory (use cp -r to copy a directory)" :
				 e == EINVAL ? cp_special_reason : strerror(e));
			cli_report(json, e == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, message, NULL, NULL, e);
			if (fd >= 0)
				close(fd);
			return 1;
		}
	}
	rc = cli_session_open("cp", name, json, &conn, NULL);
	if (rc) {
		if (!from_stdin)
			close(fd);
		return rc;
	}
	target_is_dir = path[0] == '\0' ||
		(files_remote_stat(&conn, name, path, &st, 1, json, &status) == 0 && st.type == MBX_FILE_DIRECTORY);
	if (from_stdin && (target_is_dir || path[strlen(path) - 1] == '/')) {
		cli_usage_error(json, "cp", "stdin has no file name: give the file's path after `%s:`", name);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (S_ISDIR(hst.st_mode)) {
		/* Into an existing directory under its own name, else as PATH, as cp -r. */
		if (target_is_dir) {
			target = cp_join(path[0] ? path : "/workspace", host);
			if (!target) {
				cp_oom(json);
				rc = CLI_EXIT_FAILED;
				goto out;
			}
			path = target;
		}
		rc = remote_dir(&conn, name, path, (uint32_t)(hst.st_mode & 0777) | 0700, json);
		if (rc == 0)
			rc = tree_up(&conn, name, fd, host, path, 1, cs);
		if (rc == 0)
			cs->dirs++;
		goto out;
	}
	/* Into a sandbox directory, under the file's own name. */
	if (target_is_dir || path[strlen(path) - 1] == '/') {
		target = cp_join(path[0] ? path : "/workspace", host);
		if (!target) {
			cp_oom(json);
			rc = CLI_EXIT_FAILED;
			goto out;
		}
		path = target;
	}
	rc = file_up(&conn, name, from_stdin ? "stdin" : host, fd, path, (uint32_t)(hst.st_mode & 0777), cs);
out:
	free(target);
	if (!from_stdin)
		close(fd);
	wire_conn_close(&conn);
	return rc;
}

int cli_cmd_cp(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("cp");
	struct cp_stats cs = { 0, 0, 0, 0, 0, CLI_BUF_INIT, 0 };
	char src_name[CLI_NAME_MAX + 1], dst_name[CLI_NAME_MAX + 1];
	const char *src_path, *dst_path;
	int src_ref, dst_ref, rc;

	rc = files_parse_args(&fa, argc, argv, cp_options, 2, 2,
			     "cp [-r] [--json] HOST_PATH|- NAME:PATH | NAME:PATH HOST_PATH|-",
			     "Copy between the host and a named sandbox, streamed. A directory as\n"
			     "the target gets the copy under its own name. A file is replaced only\n"
			     "once all of it arrived. `-` is stdin (to NAME:PATH) or stdout (from\n"
			     "NAME:PATH). Write a host path that has a `:` as ./PATH.\n"
			     "  -r, --recursive   copy a directory tree. Files keep their permission\n"
			     "                    bits; directories too, except that in a sandbox\n"
			     "                    the owner's rwx is added. Symlinks are copied as\n"
			     "                    symlinks with the same target, never followed;\n"
			     "                    special files (devices, fifos, sockets) are skipped\n"
			     "                    with a warning\n"
			     "  --json            print {\"ok\": true, \"files\": N, \"directories\": N,\n"
			     "                    \"symlinks\": N, \"bytes\": N,\n"
			     "                    \"skipped\": [{\"path\", \"reason\"}...]}\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	cs.json = fa.json;
	src_ref = cli_parse_sandbox_ref(fa.ops[0], src_name, &src_path);
	dst_ref = cli_parse_sandbox_ref(fa.ops[1], dst_name, &dst_path);
	if (src_ref && dst_ref) {
		cli_usage_error(fa.json, "cp", "both `%s` and `%s` are in sandboxes: copy through the host",
				fa.ops[0], fa.ops[1]);
		return CLI_EXIT_FAILED;
	}
	if (!src_ref && !dst_ref) {
		cli_usage_error(fa.json, "cp", "neither `%s` nor `%s` is a sandbox path (NAME:PATH)", fa.ops[0],
				fa.ops[1]);
		return CLI_EXIT_FAILED;
	}
	if (src_ref) {
		if (!src_path[0]) {
			cli_usage_error(fa.json, "cp", "no path after `%s:`", src_name);
			return CLI_EXIT_FAILED;
		}
		if (!fa.ops[1][0]) {
			cli_usage_error(fa.json, "cp", "the host path is empty");
			return CLI_EXIT_FAILED;
		}
		rc = cp_from_sandbox(src_name, src_path, fa.ops[1], fa.recursive, &cs);
	} else {
		if (!fa.ops[0][0]) {
			cli_usage_error(fa.json, "cp", "the host path is empty");
			return CLI_EXIT_FAILED;
		}
		rc = cp_to_sandbox(fa.ops[0], dst_name, dst_path, fa.recursive, &cs);
	}
	return cp_done(&cs, rc);
}
