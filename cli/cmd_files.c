/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file verbs of named sandboxes: `cat`, `write`, `mkdir`, `ls`, `stat`
 * and `rm NAME:PATH` (`cp` is in cmd_cp.c).
 * Paths are sandbox paths (absolute, or relative to /workspace), resolved
 * inside the sandbox. Data streams through in pieces both ways: nothing
 * here holds a whole file. A file is replaced only once all of it arrived.
 *
 * Exit status: 0; 1 when the sandbox refused the file operation (the
 * library's message is printed); 125 for wrong arguments, an unknown
 * sandbox, or one that broke.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "files.h"

static const struct cli_option json_options[] = {
	{ "json", 0, 0, FILE_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option parents_options[] = {
	{ "json", 0, 0, FILE_JSON },
	{ "parents", 'p', 0, FILE_PARENTS },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/*
 * Collects between min_ops and max_ops operands. Returns 0, 1 for --help
 * (printed), or -1 after reporting a usage error.
 */
int files_parse_args(struct file_args *fa, int argc, char **argv, const struct cli_option *options,
			   int min_ops, int max_ops, const char *synopsis, const char *help)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id, dashdash = 0;

	fa->json = cli_wants_json(argc, argv, options, max_ops);
	while (a.next < argc) {
		if (!dashdash) {
			dashdash = strcmp(argv[a.next], "--") == 0;
			id = cli_next_option(&a, options, &value, why, sizeof(why));
			if (id == CLI_OPT_BAD) {
				cli_usage_error(fa->json, fa->verb, "%s", why);
				return -1;
			}
			if (id == CLI_OPT_HELP) {
				printf("Usage: mimobox %s\n\n%s", synopsis, help);
				return 1;
			}
			if (id == FILE_JSON) {
				fa->json = 1;
				continue;
			}
			if (id == FILE_PARENTS) {
				fa->parents = 1;
				continue;
			}
			if (id == FILE_RECURSIVE) {
				fa->recursive = 1;
				continue;
			}
			if (dashdash || a.next >= argc)
				continue;
		}
		if (fa->n_ops >= max_ops) {
			cli_usage_error(fa->json, fa->verb, "unexpected argument `%s` (expected `mimobox %s`)",
					argv[a.next], synopsis);
			return -1;
		}
		fa->ops[fa->n_ops++] = argv[a.next++];
	}
	if (fa->n_ops < min_ops) {
		cli_usage_error(fa->json, fa->verb, "missing %s (expected `mimobox %s`)",
				fa->n_ops == 0 ? "the sandbox name" : "the path", synopsis);
		return -1;
	}
	return 0;
}

/* Prints a JSON result line held in `b` (and frees it); 0, or 1 when it cannot be written. */
int files_print_buf(struct cli_buf *b)
{
	int rc = b->failed || (cli_write_all(STDOUT_FILENO, b->data, b->len) < 0 && errno != EPIPE) ? 1 : 0;

	cli_buf_free(b);
	return rc;
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case MBX_FILE_REGULAR:
		return "file";
	case MBX_FILE_DIRECTORY:
		return "directory";
	case MBX_FILE_SYMLINK:
		return "symlink";
	default:
		return "other";
	}
}

/* Sends one request frame with a path (READ, STAT, LIST); 0, or the exit status after reporting. */
int files_send_path(struct wire_conn *conn, uint8_t type, const char *path, const char *name, int json)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t start = wire_begin(&b, type);
	int rc;

	wire_str(&b, path);
	rc = wire_end(&b, start) == 0 && cli_session_send(conn, &b) == 0 ? 0 : -1;
	cli_buf_free(&b);
	return rc == 0 ? 0 : cli_session_lost(json, name, errno);
}

/* Waits for the next frame: -1 with it in *f, or else the exit status (after reporting). */
int files_next_frame(struct wire_conn *conn, struct wire_frame *f, const char *name, int json)
{
	int rc = wire_conn_recv(conn, f, -1);

	if (rc == 1)
		return -1;
	return cli_session_lost(json, name, rc < 0 ? errno : 0);
}

/* ---- downloads: cat, cp NAME:PATH HOST ---- */

/*
 * Opens the sink on the first data (so a failed read creates nothing): a
 * temporary file beside host_path with the sink's mode. 0, or -1 after
 * reporting.
 */
static int sink_open(struct sink *k, int json)
{
	char *dir_copy, *base_copy;
	int e, rc;

	if (k->fd >= 0)
		return 0;
	dir_copy = strdup(k->host_path);
	base_copy = strdup(k->host_path);
	if (!dir_copy || !base_copy ||
		 asprintf(&k->tmp, "%s/.%s.mimobox-XXXXXX", dirname(dir_copy), basename(base_copy)) < 0)
		rc = -2;
	else
		rc = 1;
	free(dir_copy);
	free(base_copy);
	if (rc <= 0) {
		if (rc == -2) {
			k->tmp = NULL;
			cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		}
		return rc == 0 ? 0 : -1;
	}
	/*
	 * Written beside the target and renamed over it at the end: never half
	 * a file. Where the file system has O_TMPFILE the data has no name
	 * until it is complete, so a copy killed on the way leaves nothing.
	 */
	dir_copy = strdup(k->tmp);
	k->anonymous = 0;
	k->fd = dir_copy ? open(dirname(dir_copy), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600) : -1;
	free(dir_copy);
	if (k->fd >= 0)
		k->anonymous = 1;
	else
		k->fd = mkostemp(k->tmp, O_CLOEXEC);
	if (k->fd < 0 || fchmod(k->fd, k->mode) < 0) {
		char message[CLI_WHY_MAX + 64];

		e = errno;
		snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(e));
		cli_report(json, MBX_ESYS, message, NULL, NULL, e);
		if (k->fd >= 0) {
			close(k->fd);
			if (!k->anonymous)
				unlink(k->tmp);
			k->fd = -1;
		}
		free(k->tmp);
		k->tmp = NULL;
		return -1;
	}
	return 0;
}

/*
 * Gives a complete O_TMPFILE its temporary name (k->tmp, whose XXXXXX is
 * filled with random letters until a free name is found), ready for the
 * rename over the target. 0, or -1 with errno.
 */
static int name_anonymous(struct sink *k)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char proc[64];
	size_t n = strlen(k->tmp);

	if (n < 6 || strcmp(k->tmp + n - 6, "XXXXXX") != 0) {
		errno = EINVAL;
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", k->fd);
	for (int tries = 0; tries < 100; tries++) {
		unsigned char rnd[6];

		if (getentropy(rnd, sizeof(rnd)) < 0)
			return -1;
		for (size_t i = 0; i < 6; i++)
			k->tmp[n - 6 + i] = letters[rnd[i] % (sizeof(letters) - 1)];
		if (linkat(AT_FDCWD, proc, AT_FDCWD, k->tmp, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* Ends a download: renames the host file into place (ok) or removes it. 0 or -1 after reporting. */
static int sink_close(struct sink *k, int ok, int json)
{
	char message[CLI_WHY_MAX + 64];
	int rc = 0;

	if (!k->tmp)
		return 0;
	if (ok && k->anonymous && name_anonymous(k) < 0) {
		snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(errno));
		cli_report(json, MBX_ESYS, message, NULL, NULL, errno);
		close(k->fd);
		k->fd = -1;
		free(k->tmp);
		k->tmp = NULL;
		return -1;
	}
	if (ok && (close(k->fd) < 0 || rename(k->tmp, k->host_path) < 0)) {
		snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(errno));
		cli_report(json, MBX_ESYS, message, NULL, NULL, errno);
		ok = 0;
		rc = -1;
	} else if (!ok) {
		close(k->fd);
	}
	if (!ok && !k->anonymous)
		unlink(k->tmp);
	k->fd = -1;
	free(k->tmp);
	k->tmp = NULL;
	return rc;
}

/* READ `path` of `name` into the sink; returns the exit status. */
int files_download(struct wire_conn *conn, const char *name, const char *path, struct sink *k, int json)
{
	char message[CLI_WHY_MAX + 64];
	struct wire_frame f;
	const uint8_t *data;
	size_t len;
	int rc, e;

	rc = files_send_path(conn, WIRE_READ, path, name, json);
	if (rc)
		return rc;
	for (;;) {
		rc = files_next_frame(conn, &f, name, json);
		if (rc >= 0) {
			(void)sink_close(k, 0, json);
			return rc;
		}
		if (f.type == WIRE_ERROR) {
			(void)sink_close(k, 0, json);
			return cli_session_file_status(cli_session_report_error(json, &f.r));
		}
		if (f.type == WIRE_END) {
			if (k->collect)
				return 0;
			/* An empty file still makes its copy. */
			if (sink_open(k, json) < 0)
				return 1;
			return sink_close(k, 1, json) < 0 ? 1 : 0;
		}
		len = wire_get_bytes(&f.r, &data);
		if (f.type != WIRE_DATA || wire_done(&f.r) < 0) {
			(void)sink_close(k, 0, json);
			return cli_session_lost(json, name, EPROTO);
		}
		k->bytes += len;
		if (k->collect) {
			cli_buf_add(k->collect, data, len);
			if (k->collect->failed) {
				cli_report(json, MBX_ENOMEM, "out of memory holding the file for --json", NULL, NULL,
					   ENOMEM);
				return 1;
			}
			continue;
		}
		if (sink_open(k, json) < 0)
			return 1;
		if (cli_write_all(k->fd, data, len) < 0) {
			e = errno;
			if (e == EPIPE && !k->tmp)
				return 0;	/* `cat | head`: the reader has what it wanted */
			if (k->tmp)
				snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(e));
			else
				snprintf(message, sizeof(message), "cannot write the output: %s", strerror(e));
			cli_report(json, MBX_ESYS, message, NULL, NULL, e);
			(void)sink_close(k, 0, json);
			return 1;
		}
	}
}

int cli_cmd_cat(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("cat");
	struct sink k = { STDOUT_FILENO, NULL, NULL, 0, NULL, 0 };
	struct cli_buf data = CLI_BUF_INIT, b = CLI_BUF_INIT;
	struct wire_conn conn;
	int rc;

	rc = files_parse_args(&fa, argc, argv, json_options, 2, 2, "cat NAME PATH [--json]",
			     "Print a file of a named sandbox on stdout, streamed as it comes.\n"
			     "  --json   one JSON object: path, bytes, content (the text; bytes that\n"
			     "           are not UTF-8 become U+FFFD) and, when the file is not valid\n"
			     "           UTF-8, content_b64 with its exact bytes in base64. The file is\n"
			     "           held in memory for this.\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("cat", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	if (fa.json)
		k.collect = &data;
	rc = files_download(&conn, fa.ops[0], fa.ops[1], &k, fa.json);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_printf(&b, ", \"bytes\": %llu", (unsigned long long)k.bytes);
		cli_json_bytes_field(&b, "content", (const uint8_t *)(data.data ? data.data : ""), data.len);
		cli_buf_puts(&b, "}\n");
		rc = files_print_buf(&b);
	}
	cli_buf_free(&data);
	return rc;
}

/* ---- uploads: write, cp HOST NAME:PATH ---- */

/* Waits for the answer to WRITE or WRITE_END; the exit status, 0 for OK. */
int files_write_answer(struct wire_conn *conn, const char *name, int json)
{
	struct wire_frame f;
	int rc = files_next_frame(conn, &f, name, json);

	if (rc >= 0)
		return rc;
	if (f.type == WIRE_OK)
		return 0;
	if (f.type == WIRE_ERROR)
		return cli_session_file_status(cli_session_report_error(json, &f.r));
	return cli_session_lost(json, name, EPROTO);
}

/*
 * Streams `fd` to its end into `path` of `name` (mode for a new file).
 * An error the supervisor reports while we send ends the transfer at once.
 * Returns the exit status.
 */
int files_upload(struct wire_conn *conn, const char *name, const char *path, int fd, uint32_t mode,
		  const char *what, int json, uint64_t *sent)
{
	static uint8_t chunk[WIRE_CHUNK];
	struct cli_buf b = CLI_BUF_INIT;
	struct pollfd pfd[2];
	char message[CLI_WHY_MAX + 64];
	size_t start;
	ssize_t n;
	int rc;

	start = wire_begin(&b, WIRE_WRITE);
	wire_str(&b, path);
	wire_u32(&b, mode);
	if (wire_end(&b, start) < 0 || cli_session_send(conn, &b) < 0) {
		cli_buf_free(&b);
		return cli_session_lost(json, name, errno);
	}
	rc = files_write_answer(conn, name, json);
	if (rc)
		goto out;
	pfd[0].fd = conn->fd;
	pfd[1].fd = fd;
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		/* Bytes already buffered count as readable: poll() cannot see them. */
		pfd[0].revents = pfd[1].revents = 0;
		if (!wire_conn_partial(conn) && poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = cli_session_lost(json, name, errno);
			goto out;
		}
		if (pfd[0].revents || wire_conn_partial(conn)) {
			/* Only an early ERROR (or the end) can come now. */
			rc = files_write_answer(conn, name, json);
			if (rc == 0)
				rc = cli_session_lost(json, name, EPROTO);
			goto out;
		}
		if (!pfd[1].revents)
			continue;
		do
			n = read(fd, chunk, sizeof(chunk));
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0) {
			snprintf(message, sizeof(message), "cannot read %s: %s", what, strerror(errno));
			cli_report(json, MBX_ESYS, message, NULL, NULL, errno);
			rc = 1;	/* the connection closes: the supervisor drops the unfinished file */
			goto out;
		}
		start = wire_begin(&b, n > 0 ? WIRE_DATA : WIRE_WRITE_END);
		if (n > 0) {
			wire_bytes(&b, chunk, (size_t)n);
			*sent += (uint64_t)n;
		}
		if (wire_end(&b, start) < 0 || cli_session_send(conn, &b) < 0) {
			/* The supervisor may have said why before it hung up. */
			rc = files_write_answer(conn, name, json);
			if (rc == 0)
				rc = cli_session_lost(json, name, EPIPE);
			goto out;
		}
		if (n == 0) {
			rc = files_write_answer(conn, name, json);
			goto out;
		}
	}
out:
	cli_buf_free(&b);
	return rc;
}

/* Sends MKDIR or UNLINK and waits for its answer; the exit status (0 for OK). */
int files_path_request(struct wire_conn *conn, const char *name, uint8_t type, const char *path, uint32_t mode,
			int flag, int json)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t start = wire_begin(&b, type);
	int rc;

	wire_str(&b, path);
	if (type == WIRE_MKDIR)
		wire_u32(&b, mode);
	wire_u8(&b, (uint8_t)(flag != 0));
	rc = wire_end(&b, start) == 0 && cli_session_send(conn, &b) == 0 ? 0 : -1;
	cli_buf_free(&b);
	if (rc < 0)
		return cli_session_lost(json, name, errno);
	return files_write_answer(conn, name, json);
}

/* write -p: makes the directories above `path` (nothing to do for a plain name or "/x"). */
static int make_parents(struct wire_conn *conn, const char *name, const char *path, int json)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int rc;

	if (!slash || slash == path)
		return 0;
	dir = strndup(path, (size_t)(slash - path));
	if (!dir) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	rc = files_path_request(conn, name, WIRE_MKDIR, dir, 0755, 1, json);
	free(dir);
	return rc;
}

int cli_cmd_write(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("write");
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn conn;
	uint64_t sent = 0;
	int rc;

	rc = files_parse_args(&fa, argc, argv, parents_options, 2, 2, "write NAME PATH [-p] [--json]",
			     "Write stdin, to its end, to a file of a named sandbox. The file is\n"
			     "replaced only once all of it arrived; a file made new gets mode 0644,\n"
			     "a replaced one keeps its mode.\n"
			     "  -p, --parents   make the missing directories above PATH first (0755)\n"
			     "  --json          print {\"ok\": true, \"path\": ..., \"bytes\": N}\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("write", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	if (fa.parents)
		rc = make_parents(&conn, fa.ops[0], fa.ops[1], fa.json);
	if (rc == 0)
		rc = files_upload(&conn, fa.ops[0], fa.ops[1], STDIN_FILENO, 0644, "stdin", fa.json, &sent);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_printf(&b, ", \"bytes\": %llu}\n", (unsigned long long)sent);
		rc = files_print_buf(&b);
	}
	return rc;
}

int cli_cmd_mkdir(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("mkdir");
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn conn;
	int rc;

	rc = files_parse_args(&fa, argc, argv, parents_options, 2, 2, "mkdir NAME PATH [-p] [--json]",
			     "Make a directory in a named sandbox, mode 0755.\n"
			     "  -p, --parents   make the missing directories above it too; an existing\n"
			     "                  directory is then no error\n"
			     "  --json          print {\"ok\": true, \"path\": ...}\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("mkdir", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	rc = files_path_request(&conn, fa.ops[0], WIRE_MKDIR, fa.ops[1], 0755, fa.parents, fa.json);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_puts(&b, "}\n");
		rc = files_print_buf(&b);
	}
	return rc;
}

/* `rm NAME:PATH`: see session.h. */
int cli_remove_path(const char *name, const char *path, int recursive, int force, int json, int *absent)
{
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	size_t start;
	int rc, code;

	*absent = 0;
	if (!path[0]) {
		cli_usage_error(json, "rm", "no path after `%s:` (to destroy the sandbox, write `mimobox rm %s`)",
				name, name);
		return CLI_EXIT_USAGE;
	}
	rc = cli_session_open("rm", name, json, &conn, NULL);
	if (rc)
		return rc;
	start = wire_begin(&b, WIRE_UNLINK);
	wire_str(&b, path);
	wire_u8(&b, (uint8_t)(recursive != 0));
	if (wire_end(&b, start) < 0 || cli_session_send(&conn, &b) < 0) {
		rc = cli_session_lost(json, name, errno);
		goto out;
	}
	rc = files_next_frame(&conn, &f, name, json);
	if (rc >= 0)
		goto out;
	if (f.type == WIRE_OK) {
		rc = 0;
	} else if (f.type == WIRE_ERROR) {
		/* -f: a path that is not there is no error, as rm -f. */
		struct wire_reader peek = f.r;

		code = (int)(int32_t)wire_get_u32(&peek);
		if (force && code == MBX_ENOTFOUND) {
			*absent = 1;
			rc = 0;
		} else {
			rc = cli_session_file_status(cli_session_report_error(json, &f.r));
		}
	} else {
		rc = cli_session_lost(json, name, EPROTO);
	}
out:
	cli_buf_free(&b);
	wire_conn_close(&conn);
	return rc;
}

/* ---- stat and ls ---- */

/* STAT of `path`: 0 with *st, or -1 with *status set (after reporting unless quiet). */
int files_remote_stat(struct wire_conn *conn, const char *name, const char *path, struct stat_reply *st,
		       int quiet, int json, int *status)
{
	struct wire_frame f;
	int rc;

	rc = files_send_path(conn, WIRE_STAT, path, name, json);
	if (rc) {
		*status = rc;
		return -1;
	}
	rc = files_next_frame(conn, &f, name, json);
	if (rc >= 0) {
		*status = rc;
		return -1;
	}
	if (f.type == WIRE_ERROR) {
		if (quiet) {
			*status = (int)(int32_t)wire_get_u32(&f.r);
			return -1;
		}
		*status = cli_session_file_status(cli_session_report_error(json, &f.r));
		return -1;
	}
	if (f.type == WIRE_STAT_REPLY) {
		st->type = wire_get_u8(&f.r);
		st->size = wire_get_u64(&f.r);
		st->mode = wire_get_u32(&f.r);
		st->mtime_ns = (int64_t)wire_get_u64(&f.r);
		st->uid = wire_get_u32(&f.r);
		st->gid = wire_get_u32(&f.r);
		snprintf(st->target, sizeof(st->target), "%s", wire_get_str(&f.r));
		if (wire_done(&f.r) == 0)
			return 0;
	}
	*status = cli_session_lost(json, name, EPROTO);
	return -1;
}

/* A name or target of the sandbox's, with control characters shown as '?'. */
static void print_name(struct cli_buf *b, const char *name)
{
	for (; *name; name++)
		cli_buf_add(b, (unsigned char)*name < 0x20 || *name == 0x7f ? "?" : name, 1);
}

void cli_format_time_ns(char *out, size_t len, int64_t ns)
{
	time_t s = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	struct tm tm;
	char day[64];

	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	if (!gmtime_r(&s, &tm) || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(day, sizeof(day), "@%lld", (long long)s);
	snprintf(out, len, "%s.%09ldZ", day, frac);
}

int cli_cmd_stat(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("stat");
	struct cli_buf b = CLI_BUF_INIT;
	struct stat_reply st;
	struct wire_conn conn;
	char when[80];
	int rc, status;

	rc = files_parse_args(&fa, argc, argv, json_options, 2, 2, "stat NAME PATH [--json]",
			     "Show the metadata of a path in a named sandbox (a final symlink is\n"
			     "not followed): type, size, mode, modification time, owner.\n"
			     "  --json   one JSON object: path, type (file, directory, symlink, other),\n"
			     "           size, mode (octal text), mtime_ns, mtime, uid, gid, symlink,\n"
			     "           target (where a symlink points, else null)\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("stat", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	if (files_remote_stat(&conn, fa.ops[0], fa.ops[1], &st, 0, fa.json, &status) < 0) {
		wire_conn_close(&conn);
		return status;
	}
	wire_conn_close(&conn);
	cli_format_time_ns(when, sizeof(when), st.mtime_ns);
	if (fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_puts(&b, ", \"type\": ");
		cli_json_cstring(&b, type_name(st.type));
		cli_buf_printf(&b, ", \"size\": %llu, \"mode\": \"%04o\", \"mtime_ns\": %lld, \"mtime\": \"%s\", "
			       "\"uid\": %u, \"gid\": %u, \"symlink\": ", (unsigned long long)st.size,
			       (unsigned)st.mode, (long long)st.mtime_ns, when, (unsigned)st.uid, (unsigned)st.gid);
		cli_json_bool(&b, st.type == MBX_FILE_SYMLINK);
		cli_buf_puts(&b, ", \"target\": ");
		cli_json_cstring(&b, st.type == MBX_FILE_SYMLINK ? st.target : NULL);
		cli_buf_puts(&b, "}\n");
	} else {
		cli_buf_puts(&b, "path:  ");
		cli_buf_puts(&b, fa.ops[1]);
		cli_buf_printf(&b, "\ntype:  %s\nsize:  %llu\nmode:  %04o\nmtime: %s\nuid:   %u\ngid:   %u\n",
			       type_name(st.type), (unsigned long long)st.size, (unsigned)st.mode, when,
			       (unsigned)st.uid, (unsigned)st.gid);
		if (st.type == MBX_FILE_SYMLINK) {
			cli_buf_puts(&b, "target: ");
			print_name(&b, st.target);
			cli_buf_puts(&b, "\n");
		}
	}
	rc = b.failed || (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE) ? 1 : 0;
	cli_buf_free(&b);
	return rc;
}

int cli_cmd_ls(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("ls");
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn conn;
	struct wire_frame f;
	const char *path, *name, *target;
	uint32_t n, i;
	uint64_t size;
	uint8_t type, link;
	size_t count = 0;
	int rc;

	rc = files_parse_args(&fa, argc, argv, json_options, 1, 2, "ls NAME [PATH] [--json]",
			     "List a directory of a named sandbox (default /workspace), sorted by\n"
			     "name: type, size and name of each entry, `name -> target` for a symlink.\n"
			     "  --json   one JSON object: path and entries, each with name, type (file,\n"
			     "           directory, symlink, other), size, symlink and target (where\n"
			     "           a symlink points, else null)\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	path = fa.n_ops > 1 ? fa.ops[1] : "/workspace";
	rc = cli_session_open("ls", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	rc = files_send_path(&conn, WIRE_LIST, path, fa.ops[0], fa.json);
	if (rc)
		goto out;
	if (fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, path);
		cli_buf_puts(&b, ", \"entries\": [");
	}
	for (;;) {
		rc = files_next_frame(&conn, &f, fa.ops[0], fa.json);
		if (rc >= 0)
			goto out;
		if (f.type == WIRE_ERROR) {
			rc = cli_session_file_status(cli_session_report_error(fa.json, &f.r));
			goto out;
		}
		if (f.type == WIRE_END)
			break;
		if (f.type != WIRE_ENTRIES) {
			rc = cli_session_lost(fa.json, fa.ops[0], EPROTO);
			goto out;
		}
		n = wire_get_u32(&f.r);
		for (i = 0; i < n && !f.r.bad; i++, count++) {
			name = wire_get_str(&f.r);
			type = wire_get_u8(&f.r);
			size = wire_get_u64(&f.r);
			link = wire_get_u8(&f.r);
			target = wire_get_str(&f.r);
			if (f.r.bad)
				break;
			if (fa.json) {
				cli_buf_puts(&b, count ? ", {\"name\": " : "{\"name\": ");
				cli_json_cstring(&b, name);
				cli_buf_puts(&b, ", \"type\": ");
				cli_json_cstring(&b, type_name(type));
				cli_buf_printf(&b, ", \"size\": %llu, \"symlink\": %s, \"target\": ", (unsigned long long)size,
					       link ? "true" : "false");
				cli_json_cstring(&b, link && target[0] ? target : NULL);
				cli_buf_puts(&b, "}");
			} else {
				/* Names are the sandbox's: show control characters as '?'. */
				cli_buf_printf(&b, "%-9s %12llu  ", type_name(type), (unsigned long long)size);
				print_name(&b, name);
				if (link && target[0]) {
					cli_buf_puts(&b, " -> ");
					print_name(&b, target);
				}
				cli_buf_puts(&b, type == MBX_FILE_DIRECTORY ? "/\n" : "\n");
			}
		}
		if (wire_done(&f.r) < 0) {
			rc = cli_session_lost(fa.json, fa.ops[0], EPROTO);
			goto out;
		}
	}
	if (fa.json)
		cli_buf_puts(&b, "]}\n");
	rc = b.failed || (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE) ? 1 : 0;
out:
	cli_buf_free(&b);
	wire_conn_close(&conn);
	return rc;
}
