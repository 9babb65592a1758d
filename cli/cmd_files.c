/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file verbs of named sandboxes: `cat`, `write`, `ls`, `stat` and `cp`.
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
#include <dirent.h>

#include "session.h"

enum { FILE_JSON = CLI_OPT_VERB, FILE_PARENTS, FILE_RECURSIVE };

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

static const struct cli_option cp_options[] = {
	{ "json", 0, 0, FILE_JSON },
	{ "recursive", 'r', 0, FILE_RECURSIVE },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/* The words of a file verb: options anywhere before "--", then operands. */
struct file_args {
	const char *verb;
	int json;
	int parents;
	int recursive;
	const char *ops[3];
	int n_ops;
};

#define FILE_ARGS(verb) { verb, 0, 0, 0, { NULL, NULL, NULL }, 0 }

/*
 * Collects between min_ops and max_ops operands. Returns 0, 1 for --help
 * (printed), or -1 after reporting a usage error.
 */
static int parse_file_args(struct file_args *fa, int argc, char **argv, const struct cli_option *options,
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
static int print_buf(struct cli_buf *b)
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
static int send_path(struct wire_conn *conn, uint8_t type, const char *path, const char *name, int json)
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
static int next_frame(struct wire_conn *conn, struct wire_frame *f, const char *name, int json)
{
	int rc = wire_conn_recv(conn, f, -1);

	if (rc == 1)
		return -1;
	return cli_session_lost(json, name, rc < 0 ? errno : 0);
}

/* ---- downloads: cat, cp NAME:PATH HOST ---- */

/* Where a download goes: an open descriptor, or a host file made once the data starts. */
struct sink {
	int fd;
	const char *host_path;	/* cp: the target; written through tmp and renamed */
	char *tmp;
	mode_t mode;
	struct cli_buf *collect;	/* cat --json: the data is gathered here instead */
	uint64_t bytes;		/* received so far */
};

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
	/* Written beside the target and renamed over it at the end: never half a file. */
	k->fd = mkostemp(k->tmp, O_CLOEXEC);
	if (k->fd < 0 || fchmod(k->fd, k->mode) < 0) {
		char message[CLI_WHY_MAX + 64];

		e = errno;
		snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(e));
		cli_report(json, MBX_ESYS, message, NULL, NULL, e);
		if (k->fd >= 0) {
			close(k->fd);
			unlink(k->tmp);
			k->fd = -1;
		}
		free(k->tmp);
		k->tmp = NULL;
		return -1;
	}
	return 0;
}

/* Ends a download: renames the host file into place (ok) or removes it. 0 or -1 after reporting. */
static int sink_close(struct sink *k, int ok, int json)
{
	char message[CLI_WHY_MAX + 64];
	int rc = 0;

	if (!k->tmp)
		return 0;
	if (ok && (close(k->fd) < 0 || rename(k->tmp, k->host_path) < 0)) {
		snprintf(message, sizeof(message), "cannot write `%s`: %s", k->host_path, strerror(errno));
		cli_report(json, MBX_ESYS, message, NULL, NULL, errno);
		ok = 0;
		rc = -1;
	} else if (!ok) {
		close(k->fd);
	}
	if (!ok)
		unlink(k->tmp);
	k->fd = -1;
	free(k->tmp);
	k->tmp = NULL;
	return rc;
}

/* READ `path` of `name` into the sink; returns the exit status. */
static int download(struct wire_conn *conn, const char *name, const char *path, struct sink *k, int json)
{
	char message[CLI_WHY_MAX + 64];
	struct wire_frame f;
	const uint8_t *data;
	size_t len;
	int rc, e;

	rc = send_path(conn, WIRE_READ, path, name, json);
	if (rc)
		return rc;
	for (;;) {
		rc = next_frame(conn, &f, name, json);
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

	rc = parse_file_args(&fa, argc, argv, json_options, 2, 2, "cat NAME PATH [--json]",
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
	rc = download(&conn, fa.ops[0], fa.ops[1], &k, fa.json);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_printf(&b, ", \"bytes\": %llu", (unsigned long long)k.bytes);
		cli_json_bytes_field(&b, "content", (const uint8_t *)(data.data ? data.data : ""), data.len);
		cli_buf_puts(&b, "}\n");
		rc = print_buf(&b);
	}
	cli_buf_free(&data);
	return rc;
}

/* ---- uploads: write, cp HOST NAME:PATH ---- */

/* Waits for the answer to WRITE or WRITE_END; the exit status, 0 for OK. */
static int write_answer(struct wire_conn *conn, const char *name, int json)
{
	struct wire_frame f;
	int rc = next_frame(conn, &f, name, json);

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
static int upload(struct wire_conn *conn, const char *name, const char *path, int fd, uint32_t mode,
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
	rc = write_answer(conn, name, json);
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
			rc = write_answer(conn, name, json);
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
			rc = write_answer(conn, name, json);
			if (rc == 0)
				rc = cli_session_lost(json, name, EPIPE);
			goto out;
		}
		if (n == 0) {
			rc = write_answer(conn, name, json);
			goto out;
		}
	}
out:
	cli_buf_free(&b);
	return rc;
}

/* Sends MKDIR or UNLINK and waits for its answer; the exit status (0 for OK). */
static int path_request(struct wire_conn *conn, const char *name, uint8_t type, const char *path, uint32_t mode,
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
	return write_answer(conn, name, json);
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
	rc = path_request(conn, name, WIRE_MKDIR, dir, 0755, 1, json);
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

	rc = parse_file_args(&fa, argc, argv, parents_options, 2, 2, "write NAME PATH [-p] [--json]",
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
		rc = upload(&conn, fa.ops[0], fa.ops[1], STDIN_FILENO, 0644, "stdin", fa.json, &sent);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_printf(&b, ", \"bytes\": %llu}\n", (unsigned long long)sent);
		rc = print_buf(&b);
	}
	return rc;
}

int cli_cmd_mkdir(int argc, char **argv)
{
	struct file_args fa = FILE_ARGS("mkdir");
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn conn;
	int rc;

	rc = parse_file_args(&fa, argc, argv, parents_options, 2, 2, "mkdir NAME PATH [-p] [--json]",
			     "Make a directory in a named sandbox, mode 0755.\n"
			     "  -p, --parents   make the missing directories above it too; an existing\n"
			     "                  directory is then no error\n"
			     "  --json          print {\"ok\": true, \"path\": ...}\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("mkdir", fa.ops[0], fa.json, &conn, NULL);
	if (rc)
		return rc;
	rc = path_request(&conn, fa.ops[0], WIRE_MKDIR, fa.ops[1], 0755, fa.parents, fa.json);
	wire_conn_close(&conn);
	if (rc == 0 && fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, fa.ops[1]);
		cli_buf_puts(&b, "}\n");
		rc = print_buf(&b);
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
	rc = next_frame(&conn, &f, name, json);
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

struct stat_reply {
	uint8_t type;
	uint64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	uint32_t uid, gid;
	char target[4096];	/* a symlink's target, or "" */
};

/* STAT of `path`: 0 with *st, or -1 with *status set (after reporting unless quiet). */
static int remote_stat(struct wire_conn *conn, const char *name, const char *path, struct stat_reply *st,
		       int quiet, int json, int *status)
{
	struct wire_frame f;
	int rc;

	rc = send_path(conn, WIRE_STAT, path, name, json);
	if (rc) {
		*status = rc;
		return -1;
	}
	rc = next_frame(conn, &f, name, json);
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

/* "2024-05-01T12:34:56.123456789Z" */
static void format_time(char *out, size_t len, int64_t ns)
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

	rc = parse_file_args(&fa, argc, argv, json_options, 2, 2, "stat NAME PATH [--json]",
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
	if (remote_stat(&conn, fa.ops[0], fa.ops[1], &st, 0, fa.json, &status) < 0) {
		wire_conn_close(&conn);
		return status;
	}
	wire_conn_close(&conn);
	format_time(when, sizeof(when), st.mtime_ns);
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

	rc = parse_file_args(&fa, argc, argv, json_options, 1, 2, "ls NAME [PATH] [--json]",
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
	rc = send_path(&conn, WIRE_LIST, path, fa.ops[0], fa.json);
	if (rc)
		goto out;
	if (fa.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&b, path);
		cli_buf_puts(&b, ", \"entries\": [");
	}
	for (;;) {
		rc = next_frame(&conn, &f, fa.ops[0], fa.json);
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

/* ---- cp ---- */

/* Deepest directory tree cp -r walks. */
#define CP_MAX_DEPTH 128

/* What a cp did, for --json and the skip messages. */
struct cp_stats {
	int json;
	uint64_t files, dirs, links, bytes;
	struct cli_buf skipped;	/* JSON objects, comma-separated */
	size_t n_skipped;
};

/* A file cp -r leaves out (a special file, a symlink): said on stderr, or listed in --json. */
static void cp_skip(struct cp_stats *cs, const char *path, const char *reason)
{
	if (!cs->json) {
		fprintf(stderr, "mimobox: warning: skipped `%s`: %s\n", path, reason);
		return;
	}
	cli_buf_puts(&cs->skipped, cs->n_skipped++ ? ", {\"path\": " : "{\"path\": ");
	cli_json_cstring(&cs->skipped, path);
	cli_buf_puts(&cs->skipped, ", \"reason\": ");
	cli_json_cstring(&cs->skipped, reason);
	cli_buf_puts(&cs->skipped, "}");
}

static void cp_oom(int json)
{
	cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
}

/* "DIR/BASE": `base_of`'s last component under `dir`. NULL on error. */
static char *join(const char *dir, const char *base_of)
{
	char *copy = strdup(base_of), *out = NULL;
	size_t len = strlen(dir);

	if (!copy)
		return NULL;
	if (asprintf(&out, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", basename(copy)) < 0)
		out = NULL;
	free(copy);
	return out;
}

static const char special_reason[] = "not a regular file, directory or symlink";
static const char symlink_reason[] = "a symlink whose target cannot be read";

/* Reports a host call that failed on `path`; returns 1. */
static int host_error(int json, const char *what, const char *path, int e)
{
	char message[CLI_WHY_MAX + 64];

	snprintf(message, sizeof(message), "cannot %s `%s`: %s", what, path, strerror(e));
	cli_report(json, e == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, message, NULL, NULL, e);
	return 1;
}

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
	rc = send_path(conn, WIRE_LIST, path, name, json);
	if (rc)
		return rc;
	for (;;) {
		rc = next_frame(conn, &f, name, json);
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

/*
 * Makes the host directory `hpath` for a copy, or takes an existing real
 * directory (never a symlink to one: nothing is written outside the tree
 * being made). 0, or 1 after reporting.
 */
static int host_dir(const char *hpath, int json)
{
	struct stat hst;

	if (mkdir(hpath, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return host_error(json, "make the directory", hpath, errno);
	if (lstat(hpath, &hst) < 0)
		return host_error(json, "make the directory", hpath, errno);
	if (!S_ISDIR(hst.st_mode))
		return host_error(json, "copy a directory to", hpath, S_ISLNK(hst.st_mode) ? ELOOP : ENOTDIR);
	return 0;
}

/*
 * Makes the host symlink `hpath` -> `target` (replacing a file or link of
 * that name, never a directory). The target is stored as it is, not
 * followed, here or later by cp. 0, or 1 after reporting.
 */
static int host_symlink(const char *target, const char *hpath, struct cp_stats *cs)
{
	struct stat hst;

	if (lstat(hpath, &hst) == 0) {
		if (S_ISDIR(hst.st_mode))
			return host_error(cs->json, "replace", hpath, EISDIR);
		if (unlink(hpath) < 0)
			return host_error(cs->json, "replace", hpath, errno);
	}
	if (symlink(target, hpath) < 0)
		return host_error(cs->json, "make the symlink", hpath, errno);
	cs->links++;
	return 0;
}

/* Copies one sandbox file to `hpath` with mode `mode` exactly. */
static int file_down(struct wire_conn *conn, const char *name, const char *rpath, const char *hpath, mode_t mode,
		     struct cp_stats *cs)
{
	struct sink k = { -1, hpath, NULL, mode, NULL, 0 };
	struct stat hst;
	int rc;

	if (lstat(hpath, &hst) == 0 && S_ISDIR(hst.st_mode))
		return host_error(cs->json, "replace", hpath, EISDIR);
	rc = download(conn, name, rpath, &k, cs->json);
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

	if (depth > CP_MAX_DEPTH) {
		char message[CLI_WHY_MAX + 64];

		snprintf(message, sizeof(message), "`%s` is more than %d directories deep", rdir, CP_MAX_DEPTH);
		cli_report(cs->json, MBX_ETOOBIG, message, NULL, NULL, 0);
		return 1;
	}
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
				cp_skip(cs, rpath, symlink_reason);
			else
				rc = host_symlink(e[i].target, hpath, cs);
			continue;
		}
		if (e[i].type != MBX_FILE_DIRECTORY && e[i].type != MBX_FILE_REGULAR) {
			cp_skip(cs, rpath, special_reason);
			continue;
		}
		if (remote_stat(conn, name, rpath, &st, 0, cs->json, &status) < 0) {
			rc = status;
			break;
		}
		if (st.type == MBX_FILE_REGULAR) {
			rc = file_down(conn, name, rpath, hpath, (mode_t)(st.mode & 0777), cs);
		} else if (st.type == MBX_FILE_DIRECTORY) {
			rc = host_dir(hpath, cs->json);
			if (rc == 0)
				rc = tree_down(conn, name, rpath, hpath, depth + 1, cs);
			/* The mode last, so a read-only directory could still be filled. */
			if (rc == 0 && chmod(hpath, (mode_t)(st.mode & 0777)) < 0)
				rc = host_error(cs->json, "set the mode of", hpath, errno);
			if (rc == 0)
				cs->dirs++;
		} else {
			/* Changed since the listing. */
			cp_skip(cs, rpath, st.type == MBX_FILE_SYMLINK ? symlink_reason : special_reason);
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
	if (remote_stat(&conn, name, path, &st, 0, json, &status) < 0) {
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
				rc = host_error(json, "copy a directory to", host, ENOTDIR);
				goto out;
			}
			target = join(host, path);
			if (!target) {
				cp_oom(json);
				rc = CLI_EXIT_FAILED;
				goto out;
			}
		}
		rc = host_dir(target ? target : host, json);
		if (rc == 0)
			rc = tree_down(&conn, name, path, target ? target : host, 1, cs);
		if (rc == 0 && chmod(target ? target : host, (mode_t)(st.mode & 0777)) < 0)
			rc = host_error(json, "set the mode of", target ? target : host, errno);
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
		rc = download(&conn, name, path, &k, json);
		cs->files += rc == 0;
		cs->bytes += k.bytes;
		goto out;
	}
	/* Into a host directory, under the file's own name, as cp(1). */
	if (stat(host, &hst) == 0 && S_ISDIR(hst.st_mode)) {
		target = join(host, path);
		if (!target) {
			cp_oom(json);
			rc = CLI_EXIT_FAILED;
			goto out;
		}
		k.host_path = target;
	}
	/* A file made new gets the sandbox file's mode less the umask; a replaced one keeps its own. */
	mask = umask(0);
	umask(mask);
	if (stat(k.host_path, &hst) == 0 && S_ISREG(hst.st_mode))
		k.mode = hst.st_mode & 07777;
	else
		k.mode = (mode_t)(st.mode & 0777) & ~mask;
	rc = download(&conn, name, path, &k, json);
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
	rc = upload(conn, name, rpath, fd, mode, what, cs->json, &sent);
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

	if (remote_stat(conn, name, rpath, &st, 1, json, &status) == 0) {
		if (st.type == MBX_FILE_DIRECTORY)
			return 0;
		char message[CLI_WHY_MAX + 64];

		snprintf(message, sizeof(message), "`%s:%s` exists and is not a directory", name, rpath);
		cli_report(json, MBX_EEXIST, message, NULL, NULL, ENOTDIR);
		return 1;
	}
	if (status != MBX_ENOTFOUND && status > 0)
		return status;	/* the connection broke: reported */
	return path_request(conn, name, WIRE_MKDIR, rpath, mode, 0, json);
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
		cp_skip(cs, hpath, symlink_reason);
		return 0;
	}
	target[n] = '\0';
	if (remote_stat(conn, name, rpath, &st, 1, cs->json, &status) == 0) {
		if (st.type == MBX_FILE_DIRECTORY) {
			char message[CLI_WHY_MAX + 64];

			snprintf(message, sizeof(message), "cannot replace the directory `%s:%s` with a symlink", name,
				 rpath);
			cli_report(cs->json, MBX_EEXIST, message, NULL, NULL, EISDIR);
			return 1;
		}
		rc = path_request(conn, name, WIRE_UNLINK, rpath, 0, 0, cs->json);
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
	rc = write_answer(conn, name, cs->json);
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

	if (depth > CP_MAX_DEPTH) {
		char message[CLI_WHY_MAX + 64];

		snprintf(message, sizeof(message), "`%s` is more than %d directories deep", hdir, CP_MAX_DEPTH);
		cli_report(cs->json, MBX_ETOOBIG, message, NULL, NULL, 0);
		return 1;
	}
	fd = dup(dirfd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return host_error(cs->json, "read the directory", hdir, errno);
	}
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = host_error(cs->json, "read the directory", hdir, errno);
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
			rc = host_error(cs->json, "read", hpath, errno);
			break;
		}
		if (S_ISLNK(hst.st_mode)) {
			rc = link_up(conn, name, dirfd, de->d_name, hpath, rpath, cs);
			continue;
		}
		if (!S_ISDIR(hst.st_mode) && !S_ISREG(hst.st_mode)) {
			cp_skip(cs, hpath, special_reason);
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
				cp_skip(cs, hpath, symlink_reason);
				continue;
			}
			rc = host_error(cs->json, "open", hpath, e);
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
			cp_skip(cs, hpath, special_reason);
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
				 e == EINVAL ? special_reason : strerror(e));
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
		(remote_stat(&conn, name, path, &st, 1, json, &status) == 0 && st.type == MBX_FILE_DIRECTORY);
	if (from_stdin && (target_is_dir || path[strlen(path) - 1] == '/')) {
		cli_usage_error(json, "cp", "stdin has no file name: give the file's path after `%s:`", name);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (S_ISDIR(hst.st_mode)) {
		/* Into an existing directory under its own name, else as PATH, as cp -r. */
		if (target_is_dir) {
			target = join(path[0] ? path : "/workspace", host);
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
		target = join(path[0] ? path : "/workspace", host);
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
	struct cli_buf b = CLI_BUF_INIT;
	char src_name[CLI_NAME_MAX + 1], dst_name[CLI_NAME_MAX + 1];
	const char *src_path, *dst_path;
	int src_ref, dst_ref, rc;

	rc = parse_file_args(&fa, argc, argv, cp_options, 2, 2,
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
	if (rc == 0 && fa.json) {
		cli_buf_printf(&b, "{\"ok\": true, \"files\": %llu, \"directories\": %llu, \"symlinks\": %llu, "
			       "\"bytes\": %llu, \"skipped\": [", (unsigned long long)cs.files,
			       (unsigned long long)cs.dirs, (unsigned long long)cs.links, (unsigned long long)cs.bytes);
		if (cs.skipped.data)
			cli_buf_add(&b, cs.skipped.data, cs.skipped.len);
		cli_buf_puts(&b, "]}\n");
		rc = print_buf(&b) || cs.skipped.failed;
	}
	cli_buf_free(&cs.skipped);
	return rc;
}
