/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the file verbs share (cli/cmd_files.c: cat, write, mkdir, ls, stat,
 * rm NAME:PATH; cli/cmd_cp.c: cp): argument parsing and the requests to a
 * named sandbox's supervisor. Each request helper returns 0, or else the
 * exit status after reporting the problem.
 */
#ifndef MBX_CLI_FILES_H
#define MBX_CLI_FILES_H

#include <sys/types.h>

#include "session.h"

enum { FILE_JSON = CLI_OPT_VERB, FILE_PARENTS, FILE_RECURSIVE };

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
int files_parse_args(struct file_args *fa, int argc, char **argv, const struct cli_option *options, int min_ops,
		     int max_ops, const char *synopsis, const char *help);

/* Prints a JSON result line held in `b` (and frees it); 0, or 1 when it cannot be written. */
int files_print_buf(struct cli_buf *b);

/* Sends one request frame with a path (READ, STAT, LIST). */
int files_send_path(struct wire_conn *conn, uint8_t type, const char *path, const char *name, int json);

/* Waits for the next frame: -1 with it in *f, or else the exit status (after reporting). */
int files_next_frame(struct wire_conn *conn, struct wire_frame *f, const char *name, int json);

/* Where a download goes: an open descriptor, or a host file made once the data starts. */
struct sink {
	int fd;
	const char *host_path;	/* cp: the target; written through tmp and renamed */
	char *tmp;		/* the name the data takes before the rename */
	mode_t mode;
	struct cli_buf *collect;	/* cat --json: the data is gathered here instead */
	uint64_t bytes;		/* received so far */
	int anonymous;		/* fd is an O_TMPFILE: no name on disk until the end */
};

/* READ `path` of `name` into the sink; returns the exit status. */
int files_download(struct wire_conn *conn, const char *name, const char *path, struct sink *k, int json);

/* Waits for the answer to a request answered by OK or ERROR; the exit status, 0 for OK. */
int files_write_answer(struct wire_conn *conn, const char *name, int json);

/*
 * Streams `fd` to its end into `path` of `name` (mode for a new file),
 * adding the bytes sent to *sent; `what` names the source in messages.
 */
int files_upload(struct wire_conn *conn, const char *name, const char *path, int fd, uint32_t mode, const char *what,
		 int json, uint64_t *sent);

/* MKDIR (mode, flag: parents) or UNLINK (flag: recursive) of `path`, and its answer. */
int files_path_request(struct wire_conn *conn, const char *name, uint8_t type, const char *path, uint32_t mode,
		       int flag, int json);

struct stat_reply {
	uint8_t type;
	uint64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	uint32_t uid, gid;
	char target[4096];	/* a symlink's target, or "" */
};

/* STAT of `path`: 0 with *st, or -1 with *status set (after reporting, unless quiet: the MBX_E* code then). */
int files_remote_stat(struct wire_conn *conn, const char *name, const char *path, struct stat_reply *st, int quiet,
		      int json, int *status);

#endif /* MBX_CLI_FILES_H */
