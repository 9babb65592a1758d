/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's own protocol between the commands that use a named sandbox
 * (exec, cat, ls, shell, rm, ...) and the sandbox's supervisor, the daemon
 * `mimobox create` leaves behind (cli/supervisor.c). It runs over a unix
 * stream socket that only the owner's uid can open and the supervisor
 * checks again (SO_PEERCRED), so it is a private interface of one program;
 * its lengths are still checked, as any reader's should be.
 *
 * A frame is a 4-byte big-endian body length (at most WIRE_MAX_BODY) and a
 * body: one type byte, then the type's fields in order:
 *   u8, u16, u32, u64    big-endian; i32/i64 travel as their u32/u64 bits
 *   str                  u32 length, the bytes, a NUL (no NUL inside)
 *   bytes                u32 length, the bytes
 * A frame with fields left over or missing is a protocol error.
 *
 * A connection starts with HELLO (the client) and INFO (the answer); then
 * the client sends one request at a time:
 *
 *   HELLO u32 version                  -> INFO u32 version, str name, str id,
 *                                         str isolation, u64 created (unix s),
 *                                         u32 supervisor pid, u32 clients,
 *                                         u32 running processes, u64 ttl ms
 *                                         (0: none), u64 ms left before the
 *                                         idle sandbox expires
 *   EXEC  u8 flags, u64 timeout_ms (0: the sandbox's default), u16 rows,
 *         u16 cols, str workdir ("" default), u32 n, n x (str name, str
 *         value), u32 argc, argc x str
 *                                      -> ERROR, or STARTED u32 id, then
 *                                         OUTPUT u8 stream, bytes ... and
 *                                         EXIT (the last frame of the exec);
 *         meanwhile the client may send STDIN bytes, STDIN_EOF, RESIZE
 *         u16 rows, u16 cols and SIGNAL u32 signal. A client that goes away
 *         during an exec gets its process killed.
 *   EXIT  i32 exit code, i32 signal, u8 timed out, u8 oom killed,
 *         u8 stdout truncated, u8 stderr truncated, u64 elapsed us,
 *         u64 peak memory bytes, u64 cpu us, str trap ("" for none),
 *         str limits mechanism, str what the limits leave unbounded ("" for
 *         nothing)
 *         u64 timeout ms that applied, u8 1 when it was the sandbox's,
 *         u64 memory limit bytes, u32 n, n x (str layer, str reason) of
 *         the layers skipped under --allow-degraded
 *   READ  str path                     -> DATA bytes ... END, or ERROR
 *   WRITE str path, u32 mode of a new file
 *                                      -> OK or ERROR; after OK the client
 *         sends DATA bytes ... and WRITE_END, and gets one more OK or ERROR
 *         (an ERROR may come early, after which DATA is ignored); the file
 *         is replaced at WRITE_END only, so a client that goes away changes
 *         nothing
 *   STAT  str path                     -> STAT_REPLY u8 type, u64 size,
 *                                         u32 mode, i64 mtime ns, u32 uid,
 *                                         u32 gid, str symlink target ("" for
 *                                         none); or ERROR
 *   LIST  str path                     -> ENTRIES u32 n, n x (str name, u8
 *                                         type, u64 size, u8 symlink, str
 *                                         symlink target) ... END, or ERROR
 *   HTTP  str method, str url, u32 n, n x str header ("Name: value"),
 *         u64 body length; then DATA bytes ... carrying the body
 *                                      -> HTTP_REPLY u32 status, str url,
 *                                         u32 n, n x (str name, str value),
 *                                         then DATA bytes ... END (the
 *                                         response body); or ERROR. The
 *                                         request is made on the host under
 *                                         the sandbox's network policy.
 *   INSPECT                            -> INSPECT_REPLY str JSON object,
 *                                         str text (the sandbox's settings)
 *   PROCS                              -> PROCS_REPLY u32 n, n x (u32 id,
 *                                         u8 background, u8 running, i32
 *                                         exit code, i32 signal, u8 timed
 *                                         out, u8 oom killed, u64 age ms,
 *                                         u64 output bytes, str command)
 *   LOGS  u32 id (0: the only background process), u8 follow
 *                                      -> DATA bytes ... END, or ERROR; with
 *                                         follow, DATA keeps coming until
 *                                         the process ends
 *   KILL  u32 id, u32 signal (0: kill the process tree)
 *                                      -> OK or ERROR
 *   MKDIR str path, u32 mode, u8 parents
 *                                      -> OK or ERROR (with parents, an
 *                                         existing directory is no error)
 *   UNLINK str path, u8 recursive      -> OK or ERROR: removes a file, an
 *                                         empty directory, or with
 *                                         recursive a whole tree
 *   SYMLINK str target, str path       -> OK or ERROR: makes the symlink
 *                                         `path` pointing at `target`
 *   NETLOG u64 since (unix us)         -> NET_ENTRIES u64 dropped, u32 n,
 *                                         n x (str source, u64 time us,
 *                                         str method, str host, u16 port,
 *                                         str address, str verdict, i32
 *                                         status, str reason, u64 bytes up,
 *                                         u64 bytes down) ... END: the
 *                                         network log's entries from
 *                                         `since` on
 *   SNAPSHOT str path                  -> OK or ERROR: saves a snapshot of
 *                                         the sandbox (mbx_sandbox_snapshot)
 *                                         to the absolute host path `path`,
 *                                         written by the supervisor (the
 *                                         same user as the client)
 *   REMOVE                             -> OK once the sandbox is destroyed
 *                                         and its entry removed; then the
 *                                         supervisor exits
 *
 *   ERROR i32 MBX_E* code, i32 errno, str message, str suggestion ("" for
 *         none), str layer ("" for none)
 *
 * Nothing here calls libmimobox, so tests/unit/test-cli-args.c links it.
 */
#ifndef MBX_CLI_WIRE_H
#define MBX_CLI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define WIRE_VERSION 2 /* 2: EXIT and create's OK carry the limits mechanism and what it leaves unbounded */

/* Largest frame body; WIRE_CHUNK bytes of data fit with room to spare. */
#define WIRE_MAX_BODY ((uint32_t)1 << 20)
/* Size of the data pieces of OUTPUT, STDIN and DATA frames. */
#define WIRE_CHUNK ((size_t)128 * 1024)

/* Frame types; never renumbered. */
#define WIRE_HELLO       1
#define WIRE_INFO        2
#define WIRE_OK          3
#define WIRE_ERROR       4
#define WIRE_EXEC        5
#define WIRE_STARTED     6
#define WIRE_OUTPUT      7
#define WIRE_EXIT        8
#define WIRE_STDIN       9
#define WIRE_STDIN_EOF   10
#define WIRE_RESIZE      11
#define WIRE_SIGNAL      12
#define WIRE_READ        13
#define WIRE_DATA        14
#define WIRE_END         15
#define WIRE_WRITE       16
#define WIRE_WRITE_END   17
#define WIRE_STAT        18
#define WIRE_STAT_REPLY  19
#define WIRE_LIST        20
#define WIRE_ENTRIES     21
#define WIRE_REMOVE      22
#define WIRE_HTTP        23
#define WIRE_HTTP_REPLY  24
#define WIRE_INSPECT     25
#define WIRE_INSPECT_REPLY 26
#define WIRE_PROCS       27
#define WIRE_PROCS_REPLY 28
#define WIRE_LOGS        29
#define WIRE_KILL        30
/* 25..39 are left for process requests. */
#define WIRE_MKDIR       40
#define WIRE_UNLINK      41
#define WIRE_SYMLINK     42
#define WIRE_NETLOG      43
#define WIRE_NET_ENTRIES 44
#define WIRE_SNAPSHOT    45

/* Largest request body of HTTP: the library's default request limit. */
#define WIRE_HTTP_BODY_MAX ((uint64_t)64 << 20)

/* Flags of EXEC. */
#define WIRE_EXEC_STDIN      1u	/* give the process a stdin pipe */
#define WIRE_EXEC_PTY        2u	/* run it on a terminal of rows x cols */
#define WIRE_EXEC_NO_TIMEOUT 4u	/* no timeout at all (shells) */
#define WIRE_EXEC_COLLECT    8u	/* send the output at the exit, with the measurements (--json) */
#define WIRE_EXEC_DETACH     16u	/* a background process: STARTED, then nothing (exec -d) */

/* ---- writing frames into a buffer ---- */

/*
 * Starts a frame of `type` at the end of `b` and returns its offset, to
 * give to wire_end() once the fields are in. Errors are remembered in
 * b->failed, as with every cli_buf.
 */
size_t wire_begin(struct cli_buf *b, uint8_t type);
void wire_u8(struct cli_buf *b, uint8_t v);
void wire_u16(struct cli_buf *b, uint16_t v);
void wire_u32(struct cli_buf *b, uint32_t v);
void wire_u64(struct cli_buf *b, uint64_t v);
void wire_bytes(struct cli_buf *b, const void *data, size_t len);
/* A NUL-terminated string; NULL is sent as "". */
void wire_str(struct cli_buf *b, const char *s);
/*
 * Finishes the frame started at `start`. Returns 0, or -1 when the body is
 * over WIRE_MAX_BODY (the frame is then dropped from `b`, errno EMSGSIZE)
 * or an allocation failed (errno ENOMEM).
 */
int wire_end(struct cli_buf *b, size_t start);

/* ---- reading the fields of a frame ---- */

struct wire_reader {
	const uint8_t *p;
	size_t left;
	int bad;	/* 1 once a read ran past the end or met a malformed field */
};

struct wire_frame {
	uint8_t type;
	struct wire_reader r;	/* the fields; points into the connection's buffer */
};

/* Each returns 0 (and sets r->bad) when the field is missing or malformed. */
uint8_t wire_get_u8(struct wire_reader *r);
uint16_t wire_get_u16(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
/* Points *data into the frame; returns its length. */
size_t wire_get_bytes(struct wire_reader *r, const uint8_t **data);
/* A string of the frame, NUL-terminated in place; "" when malformed. */
const char *wire_get_str(struct wire_reader *r);
/* 0 when every field was read and nothing is left over, else -1. */
int wire_done(const struct wire_reader *r);

/* ---- a connection: buffered reads of whole frames ---- */

struct wire_conn {
	int fd;
	struct cli_buf in;	/* bytes read and not yet taken */
	size_t off;		/* start of the first byte not taken */
};

void wire_conn_init(struct wire_conn *c, int fd);
/* Frees the buffer and closes the descriptor (if >= 0). */
void wire_conn_close(struct wire_conn *c);

/*
 * One read() into the buffer. Returns the number of bytes read, 0 at end of
 * file, or -1 with errno (EAGAIN when a non-blocking socket has nothing).
 * Frames taken earlier become invalid.
 */
long wire_conn_fill(struct wire_conn *c);

/*
 * Takes the next complete frame out of the buffer. Returns 1 with *f
 * (valid until the next wire_conn_fill()), 0 when more bytes are needed, or
 * -1 for a length over WIRE_MAX_BODY or an empty body (errno EPROTO).
 */
int wire_conn_next(struct wire_conn *c, struct wire_frame *f);

/* 1 when bytes of an unfinished frame are buffered. */
int wire_conn_partial(const struct wire_conn *c);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t wire_now_ms(void);

/*
 * Waits for the next frame on a blocking or non-blocking descriptor, up to
 * timeout_ms (-1: no limit). Returns 1 with *f, 0 at a clean end of file,
 * or -1 with errno (ETIMEDOUT, EPROTO for a bad frame or an end of file in
 * the middle of one, or the read's error).
 */
int wire_conn_recv(struct wire_conn *c, struct wire_frame *f, int timeout_ms);

/* Writes all of data[0, len) to fd (blocking or not), through EINTR; 0 or -1 with errno. */
int wire_write_all(int fd, const void *data, size_t len);

/* Writes the frames in `b` to fd and empties `b`; 0, or -1 with errno. */
int wire_send(int fd, struct cli_buf *b);

#endif /* MBX_CLI_WIRE_H */
