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

#include "session.h"

enum { FILE_JSON = CLI_OPT_VERB };

static const struct cli_option json_options[] = {
	{ "json", 0, 0, FILE_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option plain_options[] = {
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/* The words of a file verb: options anywhere before "--", then operands. */
struct file_args {
	const char *verb;
	int json;
	int help;
	const char *ops[3];
	int n_ops;
};

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
	struct file_args fa = { "cat", 0, 0, { NULL, NULL, NULL }, 0 };
	struct sink k = { STDOUT_FILENO, NULL, NULL, 0 };
	struct wire_conn conn;
	int rc;

	rc = parse_file_args(&fa, argc, argv, plain_options, 2, 2, "cat NAME PATH",
			     "Print a file of a named sandbox on stdout, streamed as it comes.\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("cat", fa.ops[0], 0, &conn, NULL);
	if (rc)
		return rc;
	rc = download(&conn, fa.ops[0], fa.ops[1], &k, 0);
	wire_conn_close(&conn);
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
		  const char *what, int json)
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
		if (n > 0)
			wire_bytes(&b, chunk, (size_t)n);
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

int cli_cmd_write(int argc, char **argv)
{
	struct file_args fa = { "write", 0, 0, { NULL, NULL, NULL }, 0 };
	struct wire_conn conn;
	int rc;

	rc = parse_file_args(&fa, argc, argv, plain_options, 2, 2, "write NAME PATH",
			     "Write stdin, to its end, to a file of a named sandbox. The file is\n"
			     "replaced only once all of it arrived; a file made new gets mode 0644,\n"
			     "a replaced one keeps its mode.\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	rc = cli_session_open("write", fa.ops[0], 0, &conn, NULL);
	if (rc)
		return rc;
	rc = upload(&conn, fa.ops[0], fa.ops[1], STDIN_FILENO, 0644, "stdin", 0);
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
		if (wire_done(&f.r) == 0)
			return 0;
	}
	*status = cli_session_lost(json, name, EPROTO);
	return -1;
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
	struct file_args fa = { "stat", 0, 0, { NULL, NULL, NULL }, 0 };
	struct cli_buf b = CLI_BUF_INIT;
	struct stat_reply st;
	struct wire_conn conn;
	char when[80];
	int rc, status;

	rc = parse_file_args(&fa, argc, argv, json_options, 2, 2, "stat NAME PATH [--json]",
			     "Show the metadata of a path in a named sandbox (a final symlink is\n"
			     "not followed): type, size, mode, modification time, owner.\n"
			     "  --json   one JSON object: path, type (file, directory, symlink, other),\n"
			     "           size, mode (octal text), mtime_ns, mtime, uid, gid, symlink\n");
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
		cli_buf_puts(&b, "}\n");
	} else {
		cli_buf_puts(&b, "path:  ");
		cli_buf_puts(&b, fa.ops[1]);
		cli_buf_printf(&b, "\ntype:  %s\nsize:  %llu\nmode:  %04o\nmtime: %s\nuid:   %u\ngid:   %u\n",
			       type_name(st.type), (unsigned long long)st.size, (unsigned)st.mode, when,
			       (unsigned)st.uid, (unsigned)st.gid);
	}
	rc = b.failed || (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE) ? 1 : 0;
	cli_buf_free(&b);
	return rc;
}

int cli_cmd_ls(int argc, char **argv)
{
	struct file_args fa = { "ls", 0, 0, { NULL, NULL, NULL }, 0 };
	struct cli_buf b = CLI_BUF_INIT;
	struct wire_conn conn;
	struct wire_frame f;
	const char *path, *name;
	uint32_t n, i;
	uint64_t size;
	uint8_t type, link;
	size_t count = 0;
	int rc;

	rc = parse_file_args(&fa, argc, argv, json_options, 1, 2, "ls NAME [PATH] [--json]",
			     "List a directory of a named sandbox (default /workspace), sorted by\n"
			     "name: type, size and name of each entry.\n"
			     "  --json   one JSON object: path and entries, each with name, type (file,\n"
			     "           directory, symlink, other), size and symlink\n");
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
			if (f.r.bad)
				break;
			if (fa.json) {
				cli_buf_puts(&b, count ? ", {\"name\": " : "{\"name\": ");
				cli_json_cstring(&b, name);
				cli_buf_puts(&b, ", \"type\": ");
				cli_json_cstring(&b, type_name(type));
				cli_buf_printf(&b, ", \"size\": %llu, \"symlink\": %s}", (unsigned long long)size,
					       link ? "true" : "false");
			} else {
				/* Names are the sandbox's: show control characters as '?'. */
				cli_buf_printf(&b, "%-9s %12llu  ", type_name(type), (unsigned long long)size);
				for (; *name; name++)
					cli_buf_add(&b, (unsigned char)*name < 0x20 || *name == 0x7f ? "?" : name, 1);
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

/* "DIR/BASE" when `dir` is a directory: where a copy into it lands. NULL on error. */
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

/*
 * cp NAME:PATH HOST: a directory is refused, a host directory as the
 * target gets the file under its own name; the copy is renamed into place
 * at the end. Returns the exit status.
 */
static int cp_from_sandbox(const char *name, const char *path, const char *host)
{
	struct sink k = { -1, host, NULL, 0644 };
	struct stat_reply st;
	struct stat hst;
	struct wire_conn conn;
	char *target = NULL, message[CLI_WHY_MAX + 64];
	mode_t mask;
	int rc, status;

	rc = cli_session_open("cp", name, 0, &conn, NULL);
	if (rc)
		return rc;
	if (remote_stat(&conn, name, path, &st, 0, 0, &status) < 0) {
		rc = status;
		goto out;
	}
	if (st.type == MBX_FILE_DIRECTORY) {
		snprintf(message, sizeof(message), "`%s:%s` is a directory (cp copies one file)", name, path);
		cli_report(0, MBX_EINVAL, message, NULL, NULL, EISDIR);
		rc = 1;
		goto out;
	}
	/* Into a host directory, under the file's own name, as cp(1). */
	if (stat(host, &hst) == 0 && S_ISDIR(hst.st_mode)) {
		target = join(host, path);
		if (!target) {
			cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
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
	rc = download(&conn, name, path, &k, 0);
out:
	free(target);
	wire_conn_close(&conn);
	return rc;
}

/*
 * cp HOST NAME:PATH: the host file streams into the sandbox with its
 * permission bits as the mode of a new file; a sandbox directory (or a
 * path ending in '/') as the target gets it under its own name. Returns the
 * exit status.
 */
static int cp_to_sandbox(const char *host, const char *name, const char *path)
{
	struct stat_reply st;
	struct stat hst;
	struct wire_conn conn;
	char *target = NULL, message[CLI_WHY_MAX + 64], what[CLI_WHY_MAX];
	int rc, status, fd;

	fd = open(host, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &hst) < 0 || S_ISDIR(hst.st_mode)) {
		int e = fd < 0 ? errno : EISDIR;

		snprintf(message, sizeof(message), "cannot copy `%s`: %s", host,
			 e == EISDIR ? "it is a directory (cp copies one file)" : strerror(e));
		cli_report(0, e == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, message, NULL, NULL, e);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	rc = cli_session_open("cp", name, 0, &conn, NULL);
	if (rc) {
		close(fd);
		return rc;
	}
	/* Into a sandbox directory, under the file's own name. */
	if (path[0] == '\0' || path[strlen(path) - 1] == '/' ||
	    (remote_stat(&conn, name, path, &st, 1, 0, &status) == 0 && st.type == MBX_FILE_DIRECTORY)) {
		target = join(path[0] ? path : "/workspace", host);
		if (!target) {
			cli_report(0, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
			rc = CLI_EXIT_FAILED;
			goto out;
		}
		path = target;
	}
	snprintf(what, sizeof(what), "`%s`", host);
	rc = upload(&conn, name, path, fd, (uint32_t)(hst.st_mode & 0777), what, 0);
out:
	free(target);
	close(fd);
	wire_conn_close(&conn);
	return rc;
}

int cli_cmd_cp(int argc, char **argv)
{
	struct file_args fa = { "cp", 0, 0, { NULL, NULL, NULL }, 0 };
	char src_name[CLI_NAME_MAX + 1], dst_name[CLI_NAME_MAX + 1];
	const char *src_path, *dst_path;
	int src_ref, dst_ref, rc;

	rc = parse_file_args(&fa, argc, argv, plain_options, 2, 2, "cp HOST_PATH NAME:PATH | NAME:PATH HOST_PATH",
			     "Copy one file between the host and a named sandbox, streamed. A\n"
			     "directory as the target gets the file under its own name. The target\n"
			     "is replaced only once all of it arrived. Write a host path that has a\n"
			     "`:` as ./PATH.\n");
	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	src_ref = cli_parse_sandbox_ref(fa.ops[0], src_name, &src_path);
	dst_ref = cli_parse_sandbox_ref(fa.ops[1], dst_name, &dst_path);
	if (src_ref && dst_ref) {
		cli_usage_error(0, "cp", "both `%s` and `%s` are in sandboxes: copy through the host",
				fa.ops[0], fa.ops[1]);
		return CLI_EXIT_FAILED;
	}
	if (!src_ref && !dst_ref) {
		cli_usage_error(0, "cp", "neither `%s` nor `%s` is a sandbox path (NAME:PATH)", fa.ops[0],
				fa.ops[1]);
		return CLI_EXIT_FAILED;
	}
	if (src_ref) {
		if (!src_path[0]) {
			cli_usage_error(0, "cp", "no path after `%s:`", src_name);
			return CLI_EXIT_FAILED;
		}
		if (!fa.ops[1][0]) {
			cli_usage_error(0, "cp", "the host path is empty");
			return CLI_EXIT_FAILED;
		}
		return cp_from_sandbox(src_name, src_path, fa.ops[1]);
	}
	if (!fa.ops[0][0]) {
		cli_usage_error(0, "cp", "the host path is empty");
		return CLI_EXIT_FAILED;
	}
	return cp_to_sandbox(fa.ops[0], dst_name, dst_path);
}
