/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent protocol: framed, versioned, length-prefixed messages between the
 * host-side client and the in-sandbox agent. Compiled into both; it uses only
 * libc so the static agent can carry it.
 *
 * A frame is a 12-byte little-endian header followed by a body:
 *
 *	u32 body_len   at most MBX_PROTO_MAX_BODY
 *	u16 type       MBX_MSG_*
 *	u16 flags      0 (reserved)
 *	u32 id         the execute a message belongs to, 0 otherwise
 *
 * The body is a sequence of fields, each `u16 tag, u32 len, len bytes`. Fields
 * a reader does not know are skipped, so either side may add fields without a
 * version bump; a change of meaning bumps MBX_PROTO_VERSION.
 *
 * The handshake. A guest image may be older or newer than the library that
 * starts it, so the versions are negotiated:
 *
 *	agent -> host  HELLO      VERSION (newest it speaks), VERSION_MIN (oldest),
 *	                          FEATURES (MBX_FEAT_* it offers), SESSION
 *	host -> agent  HELLO_ACK  VERSION (the one chosen), FEATURES (those used)
 *
 * The host picks the newest version in both ranges, and the features both
 * know (mbx_proto_negotiate()); with none in common it says so and closes.
 * The agent takes nothing but HELLO_ACK (and SHUTDOWN) before it. SESSION
 * is a random 64-bit number the agent draws once when it starts: an
 * identifier, not a secret. When the channel resets under a running agent
 * (a microVM restored from a snapshot) and both use MBX_FEAT_RESUME, the
 * agent greets again on the new channel with the same SESSION; the host
 * checks it before it answers HELLO_ACK (another session gets none, and the
 * host closes) and goes on where it was (mbx__client_reconnect), without
 * INIT. Only a guest's agent offers it (its processes run on while the host
 * is away; an os-mode agent ends with its channel). Frames cut by the reset:
 * each side drops a partial frame it was reading; the agent's first frame on
 * the new channel is HELLO, then its process frames (STDOUT, STDERR, EXIT,
 * CREDIT) from the first one not completely written, resent whole; answers
 * to requests of the old channel are not resent (the host's call failed).
 * Bytes already written when the reset came may be lost below the protocol
 * (QEMU discards them): a host resets between requests (docs/microvm.md,
 * "Resuming").
 *
 * Everything the host reads from an agent is untrusted: every length is
 * checked against what is left in the frame and against fixed maxima, and
 * the decoders below never read outside the frame (fuzz/fuzz-proto.c).
 */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The newest and the oldest protocol version this build speaks. */
#define MBX_PROTO_VERSION 4
#define MBX_PROTO_VERSION_MIN 4
#define MBX_PROTO_HEADER 12
/* A frame body is at most 1 MiB: output is sent in chunks far below it, and a
 * larger announcement from an agent is a protocol error, never an allocation. */
#define MBX_PROTO_MAX_BODY (1u << 20)
/* Output chunk size the agent uses. */
#define MBX_PROTO_CHUNK 65536

enum mbx_msg_type {
	MBX_MSG_HELLO = 1,    /* agent -> host: VERSION, VERSION_MIN, FEATURES, SESSION */
	MBX_MSG_INIT = 2,     /* host -> agent: sandbox setup (see agent.c) */
	MBX_MSG_READY = 3,    /* agent -> host: LAYERS, SKIPPED, LANDLOCK_ABI */
	MBX_MSG_ERROR = 4,    /* agent -> host: CODE, ERRNO, LAYER, MESSAGE */
	MBX_MSG_EXEC = 5,     /* host -> agent: ARG*, ENV*, CWD, TIMEOUT_MS, OUTPUT_LIMIT */
	MBX_MSG_STDOUT = 6,   /* agent -> host: DATA */
	MBX_MSG_STDERR = 7,   /* agent -> host: DATA */
	MBX_MSG_EXIT = 8,     /* agent -> host: the mbx_exit_info fields */
	MBX_MSG_SHUTDOWN = 9, /* host -> agent: kill everything and exit */
	MBX_MSG_STARTED = 10, /* agent -> host: the EXEC of this id runs (PID; WINDOW: initial stdin credit) */
	MBX_MSG_STDIN = 11,   /* host -> agent: DATA for the process's stdin, within the stdin credit */
	MBX_MSG_STDIN_CLOSE = 12,
	MBX_MSG_SIGNAL = 13,  /* host -> agent: SIGNAL to the program */
	MBX_MSG_KILL = 14,    /* host -> agent: kill the process tree */
	MBX_MSG_RESIZE = 15,  /* host -> agent: ROWS, COLS of a PTY */
	MBX_MSG_CREDIT = 16,  /* host -> agent: WINDOW more output bytes may come;
			       * agent -> host: WINDOW more stdin bytes may be sent */
	MBX_MSG_DETACH = 17,  /* host -> agent: nobody reads: discard the output */
	MBX_MSG_LIST = 18,    /* host -> agent: list processes */
	MBX_MSG_PROC_LIST = 19, /* agent -> host: ENTRY* (PROC_ID, ARG, AGE_MS) */
	MBX_MSG_OK = 20,      /* agent -> host: a request succeeded (HANDLE, SIZE when relevant) */
	MBX_MSG_FILE = 21,    /* host -> agent: a file operation (FOP, PATH, ...) */
	MBX_MSG_FILE_DATA = 22, /* agent -> host: DATA read from a file; MORE while not at its end */
	MBX_MSG_FILE_STAT = 23, /* agent -> host: FTYPE, SIZE, MODE, MTIME_NS, UID, GID */
	MBX_MSG_FILE_DIR = 24,  /* agent -> host: ENTRY* (NAME, FTYPE, SIZE, FLAGS), MORE */
	MBX_MSG_HELLO_ACK = 25, /* host -> agent: VERSION and FEATURES chosen */
	MBX_MSG_LAYERS = 26,  /* host -> agent: OP (MBX_LOP_*), FD (a socket passed with it) -> OK(SIZE) */
	MBX_MSG_IDENTITY = 27,  /* host -> agent (guest mode): this guest is a clone restored from a
				 * snapshot: SEED (new entropy, the kernel's pool reseeded), HOSTNAME,
				 * MTIME_NS (the host's wall clock); a new machine id; the processes
				 * of the snapshot run on, detached (their output is discarded).
				 * OK, or ERROR. */
	MBX_MSG_RESET = 28,     /* host -> agent (os mode): HOSTNAME; make the sandbox as good as new for
				 * its next user: every process killed, /workspace, /tmp and /dev/shm
				 * emptied, a fresh ipc namespace, the host name set again
				 * (src/agent/reset.c). OK, or ERROR (the host destroys it). */
	MBX_MSG_SPARE = 29,     /* host -> agent (os mode, MBX_FEAT_DIRECT): FD, one end of a
				 * SOCK_SEQPACKET socketpair: the agent's next spare mini-init serves
				 * the host's executes on it, without the agent (see "direct
				 * executes" below). No answer; KILL with this message's id kills
				 * that spare and the execute it runs. */
};

enum mbx_field_tag {
	MBX_F_VERSION = 1,
	MBX_F_CODE = 2,
	MBX_F_ERRNO = 3,
	MBX_F_LAYER = 4,
	MBX_F_MESSAGE = 5,
	MBX_F_ARG = 6,
	MBX_F_ENV = 7,
	MBX_F_CWD = 8,
	MBX_F_TIMEOUT_MS = 9,
	MBX_F_OUTPUT_LIMIT = 10,
	MBX_F_DATA = 11,
	MBX_F_EXIT_CODE = 12,
	MBX_F_SIGNAL = 13,
	MBX_F_FLAGS = 14,     /* MBX_EXIT_* bits */
	MBX_F_CPU_US = 15,
	MBX_F_MAXRSS = 16,    /* bytes */
	MBX_F_ELAPSED_US = 17,
	MBX_F_LAYERS = 18,
	MBX_F_SKIPPED = 19,
	MBX_F_LANDLOCK_ABI = 20,
	MBX_F_HOSTNAME = 21,
	MBX_F_MOUNT = 22,     /* nested: MBX_F_OP, MBX_F_SRC, MBX_F_DST, MBX_F_MODE, MBX_F_DATA */
	MBX_F_OP = 23,
	MBX_F_SRC = 24,
	MBX_F_DST = 25,
	MBX_F_MODE = 26,
	MBX_F_SECCOMP = 27,   /* raw struct sock_filter array */
	MBX_F_LL_PATH = 28,   /* nested: MBX_F_DST, MBX_F_MODE (MBX_LL_*) */
	MBX_F_RLIMIT = 29,    /* 12 bytes: u32 resource, u64 value */
	MBX_F_INIT_FLAGS = 30,/* MBX_INIT_* bits */
	MBX_F_FD = 31,        /* index of a descriptor passed with the message (INIT: mount sources;
	                       * EXEC: the program's fd 3) */
	MBX_F_ROWS = 32,
	MBX_F_COLS = 33,
	MBX_F_WINDOW = 34,    /* u64 */
	MBX_F_EXEC_FLAGS = 35,/* MBX_XF_* */
	MBX_F_PATH = 36,
	MBX_F_PATH2 = 37,
	MBX_F_FOP = 38,       /* MBX_FOP_* */
	MBX_F_HANDLE = 39,
	MBX_F_SIZE = 40,      /* u64 */
	MBX_F_MTIME_NS = 41,  /* u64 (two's complement of an int64) */
	MBX_F_UID = 42,
	MBX_F_GID = 43,
	MBX_F_FTYPE = 44,     /* mbx_file_type_t */
	MBX_F_ENTRY = 45,     /* nested */
	MBX_F_NAME = 46,
	MBX_F_MORE = 47,      /* u32 1: more follows */
	MBX_F_PROC_ID = 48,
	MBX_F_AGE_MS = 49,    /* u64 */
	MBX_F_PID = 50,
	MBX_F_OFFSET = 51,    /* u64 */
	MBX_F_SECCOMP_EXTRA = 52, /* raw struct sock_filter array, installed before MBX_F_SECCOMP */
	MBX_F_SHM_LIMIT = 53, /* u64 bytes: SysV IPC sysctls of the sandbox's ipc namespace */
	MBX_F_TARGET = 54,    /* a symlink's target: 1..MBX_PROTO_TARGET_MAX bytes, no NUL */
	/* INIT of a microvm guest (MBX_INIT_GUEST), docs/microvm.md: */
	MBX_F_DISK = 55,      /* u64 bytes > 0: size of the guest's storage tmpfs (its inodes follow
			       * the mbx__disk_inodes rule, MBX_GUEST_DISK_* below) */
	MBX_F_SEED = 56,      /* MBX_SEED_MIN..MBX_SEED_MAX bytes from the host's getrandom, added to the
			       * guest's entropy pool before READY */
	MBX_F_MAX_PROCS = 57, /* u32 > 0: processes of all payloads together (a pids cgroup in the guest) */
	MBX_F_VERSION_MIN = 58, /* u32: the oldest protocol version the agent speaks */
	MBX_F_FEATURES = 59,  /* u64: MBX_FEAT_* bits */
	MBX_F_SESSION = 60,   /* u64: the agent's session (see the handshake above) */
	MBX_F_NET_CA = 61,    /* guest INIT: 1..MBX_NET_CA_MAX bytes of PEM, the certificate bundle the
			       * guest gets read-only at /etc/ssl/mimobox-ca.pem */
	MBX_F_TRACE = 62,     /* READY, when INIT asked with MBX_INIT_TRACE: u32 MBX_TRACE_* step then u64
			       * nanoseconds the agent spent in it (12 bytes), once per step taken */
	MBX_F_SPARE_FD = 63,  /* EXEC (MBX_FEAT_DIRECT): u32 index of the last descriptor of the message,
			       * the host's end of the socket it was lent a spare on: the spare, ready
			       * and idle, is the agent's again (for this execute, say a spawn) */
};

/* Steps of the agent's set-up timed for MBX_F_TRACE (bench/bench-os --trace).
 * A mount step is MBX_TRACE_MOP + its MBX_MOP_* op, summed over the plan's
 * entries of that op. */
enum {
	MBX_TRACE_PARSE = 1,     /* pass 1 over INIT's scalars */
	MBX_TRACE_HOSTNAME = 2,
	MBX_TRACE_LOOPBACK = 3,  /* a guest's loopback up */
	MBX_TRACE_SCRATCH = 4,   /* the scratch root: tmpfs, pivot_root into it */
	MBX_TRACE_SYSV = 5,      /* SysV IPC sysctls, /proc/sys read-only */
	MBX_TRACE_CLOSE_FDS = 6,
	MBX_TRACE_NEW_ROOT = 7,  /* drop the host tree, pivot_root into the new root, root read-only */
	MBX_TRACE_LANDLOCK = 8,  /* probe and build the ruleset */
	MBX_TRACE_SECCOMP = 9,   /* check the filter can be applied */
	MBX_TRACE_TOTAL = 10,    /* INIT received to READY queued */
	MBX_TRACE_NETNS = 11,    /* os: wait for the helper's network namespace and join it */
	MBX_TRACE_MOP = 32,      /* + MBX_MOP_* */
	MBX_TRACE_MAX = 64,
};

/* MBX_F_FEATURES bits: what a side can do beyond its protocol version. */
#define MBX_FEAT_RESUME (1ull << 0) /* the agent keeps its sandbox when the channel resets
                                     * and greets again with the same SESSION */
#define MBX_FEAT_DIRECT (1ull << 1) /* os mode: the agent lends spare mini-inits to the host
                                     * (MBX_MSG_SPARE, "direct executes" below) */
/* The features the host side of this build knows. */
#define MBX_PROTO_HOST_FEATURES (MBX_FEAT_RESUME | MBX_FEAT_DIRECT)

/* MBX_F_FLAGS bits of an EXIT message. */
#define MBX_EXIT_TIMED_OUT        (1u << 0)
#define MBX_EXIT_STDOUT_TRUNCATED (1u << 1)
#define MBX_EXIT_STDERR_TRUNCATED (1u << 2)
#define MBX_EXIT_OOM_KILLED       (1u << 3)

/* MBX_F_EXEC_FLAGS bits. */
#define MBX_XF_STDIN  (1u << 0) /* a stdin pipe instead of /dev/null */
#define MBX_XF_PTY    (1u << 1) /* a pseudo-terminal of ROWS x COLS */
#define MBX_XF_ONESHOT (1u << 2) /* the host waits for it (an execute); runs under a mini-init like any other;
                                  * its STARTED may carry PID 0 (the host does not use it). Without STDIN
                                  * or PTY, STARTED may come late: with its first output, or right before
                                  * its EXIT (the host waits for it until the execute's deadline) */
#define MBX_XF_LAST   (1u << 3) /* the sandbox is reset or destroyed after it: its mini-init exits when it
                                  * ends, not kept as the next spare (src/agent/payload.c, recycling) */
/* An EXEC whose STARTED may come late (see MBX_XF_ONESHOT): the agent holds
 * it back, the host waits for it as long as for the execute. */
#define MBX_XF_LATE_START(flags) \
	(((flags) & MBX_XF_ONESHOT) && !((flags) & (MBX_XF_STDIN | MBX_XF_PTY)))

/*
 * Copy-on-write fork of an os sandbox (MBX_MSG_LAYERS, MBX_F_OP; the agent's
 * src/agent/layers.c, docs/snapshots.md). FD indexes a unix socket passed
 * with the message: the host gives one end to the parent's agent and the
 * other to the child's, so the layers go from agent to agent.
 */
enum mbx_layers_op {
	MBX_LOP_FREEZE = 1, /* parent: freeze the writable storage, put a fresh overlay on it and send
			     * every frozen layer on the socket -> OK(SIZE: layers sent) */
	MBX_LOP_ADOPT = 2,  /* child: take the layers from the socket as the lowers of an overlay
			     * on its storage -> OK(SIZE: layers taken) */
};
/* Layers of one sandbox at most (each fork of it adds one). */
#define MBX_LAYERS_MAX 32

/* File operations (MBX_F_FOP). */
enum mbx_fop {
	MBX_FOP_OPEN_READ = 1,  /* PATH -> OK(HANDLE, SIZE) */
	MBX_FOP_READ = 2,       /* HANDLE, SIZE (max) -> FILE_DATA(DATA, MORE);
	                         * with a transfer pipe FILE_DATA(SIZE, MORE), the bytes in the pipe */
	MBX_FOP_OPEN_WRITE = 3, /* PATH, MODE, FLAGS (MBX_WRITE_*) -> OK(HANDLE) */
	MBX_FOP_WRITE = 4,      /* HANDLE, DATA -> OK; with a transfer pipe HANDLE, SIZE (the bytes
	                         * the host put in the pipe, at most MBX_PROTO_PIPE_CHUNK) -> OK */
	MBX_FOP_COMMIT = 5,     /* HANDLE -> OK (rename into place) */
	MBX_FOP_CLOSE = 6,      /* HANDLE -> OK (drops a write, closes a read) */
	MBX_FOP_STAT = 7,       /* PATH -> FILE_STAT */
	MBX_FOP_LIST = 8,       /* PATH, OFFSET -> FILE_DIR */
	MBX_FOP_MKDIR = 9,      /* PATH, MODE, FLAGS (1: parents) -> OK */
	MBX_FOP_REMOVE = 10,    /* PATH, FLAGS (1: recursive) -> OK */
	MBX_FOP_RENAME = 11,    /* PATH, PATH2 -> OK */
	MBX_FOP_SYMLINK = 12,   /* PATH (the link to make), TARGET (as is, not resolved) -> OK */
};

/* Largest DATA of one FILE_DATA or FOP_WRITE frame. */
#define MBX_PROTO_FILE_CHUNK (512u * 1024u)

/* The transfer pipe: OPEN_READ and OPEN_WRITE may carry MBX_F_FD, a pipe
 * (read: its write end; write: its read end) through which the contents
 * move instead of DATA fields, when the channel passes descriptors (the os
 * backend). Largest SIZE of one READ or WRITE through it: below the 1 MiB
 * pipe the host makes, with room for a page split by the file offset. */
#define MBX_PROTO_PIPE_CHUNK (1024u * 1024u - 8192u)

/* Longest symlink target a FILE_STAT, FILE_DIR entry or FOP_SYMLINK carries (PATH_MAX less the NUL). */
#define MBX_PROTO_TARGET_MAX 4095u

/* MBX_F_INIT_FLAGS bits. */
#define MBX_INIT_ALLOW_DEGRADED (1u << 0)
#define MBX_INIT_SETUP_ROOT     (1u << 1) /* build the mount plan and pivot_root */
#define MBX_INIT_LOOPBACK       (1u << 2) /* bring up lo in the network namespace */
#define MBX_INIT_UNTRUSTED      (1u << 3) /* stricter Landlock scopes */
#define MBX_INIT_GUEST          (1u << 4) /* the agent is the init of a microvm guest: no mount plan,
					   * no descriptors; MBX_F_DISK, MBX_F_SEED, MBX_F_MAX_PROCS apply */
#define MBX_INIT_NET_PROXY      (1u << 5) /* guest only: listen on 127.0.0.1:3128 and carry its connections
					   * to the host's proxy over the port org.mimobox.net (netmux.h) */
#define MBX_INIT_TRACE          (1u << 6) /* answer READY with MBX_F_TRACE (the set-up's step times) */

/* MBX_F_NET_CA's bound. */
#define MBX_NET_CA_MAX (768u * 1024u)

/* MBX_F_SEED length bounds. */
#define MBX_SEED_MIN 32u
#define MBX_SEED_MAX 512u
/* The guest's copy of mbx__disk_inodes() (src/core/config.c): one inode per
 * this many bytes of MBX_F_DISK, at least the minimum. */
#define MBX_GUEST_DISK_BYTES_PER_INODE (32u * 1024u)
#define MBX_GUEST_DISK_MIN_INODES 1024u

/* Landlock access classes of an MBX_F_LL_PATH. */
#define MBX_LL_READ  1 /* read and execute */
#define MBX_LL_WRITE 2 /* read, write, create, remove */
#define MBX_LL_DEV   3 /* read, write and ioctl on device files */

/* ---- writing ---- */

struct mbx_wbuf {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int failed;       /* an allocation failed or a limit was passed */
	size_t frame_at;  /* offset of the open frame's header */
};

void mbx_wbuf_init(struct mbx_wbuf *w);
void mbx_wbuf_release(struct mbx_wbuf *w);
void mbx_wbuf_reset(struct mbx_wbuf *w);
/* Starts a frame at the end of the buffer. */
void mbx_proto_begin(struct mbx_wbuf *w, uint16_t type, uint32_t id);
void mbx_proto_put(struct mbx_wbuf *w, uint16_t tag, const void *data, size_t len);
void mbx_proto_put_u32(struct mbx_wbuf *w, uint16_t tag, uint32_t v);
void mbx_proto_put_u64(struct mbx_wbuf *w, uint16_t tag, uint64_t v);
void mbx_proto_put_str(struct mbx_wbuf *w, uint16_t tag, const char *s);
/* Opens a nested field; returns its offset for mbx_proto_nest_end(). */
size_t mbx_proto_nest_begin(struct mbx_wbuf *w, uint16_t tag);
void mbx_proto_nest_end(struct mbx_wbuf *w, size_t at);
/* Closes the frame (fills in its length). Returns 0, or -1 when the frame is
 * too large or an allocation failed. */
int mbx_proto_end(struct mbx_wbuf *w);

/* ---- reading ---- */

struct mbx_frame {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	const uint8_t *body;
	uint32_t len;
};

/* Incremental reader over a stream of frames with a bounded buffer. */
struct mbx_rbuf {
	uint8_t *buf;
	size_t len;    /* bytes held */
	size_t off;    /* bytes already consumed */
	size_t cap;
};

void mbx_rbuf_init(struct mbx_rbuf *r);
void mbx_rbuf_release(struct mbx_rbuf *r);
/* Appends bytes (at most what fits one maximal frame beyond the held data).
 * Returns 0 or -1 on allocation failure. */
int mbx_rbuf_push(struct mbx_rbuf *r, const void *data, size_t len);
/* Room the reader wants to read into directly: returns a pointer to at least
 * `want` free bytes, or NULL on allocation failure; then mbx_rbuf_commit(). */
uint8_t *mbx_rbuf_space(struct mbx_rbuf *r, size_t want);
void mbx_rbuf_commit(struct mbx_rbuf *r, size_t n);
/* Bytes received but not yet consumed as frames. */
size_t mbx_rbuf_pending(const struct mbx_rbuf *r);
/* Takes the next complete frame. Returns 1 with *f set (valid until the next
 * call), 0 when more bytes are needed, -1 when the stream is malformed (bad
 * length or flags): the connection must then be dropped. */
int mbx_rbuf_next(struct mbx_rbuf *r, struct mbx_frame *f);

/* Parses one frame from a flat buffer; same returns as mbx_rbuf_next(), and
 * *used gets the bytes it spans. */
int mbx_proto_parse(const uint8_t *buf, size_t len, struct mbx_frame *f, size_t *used);

struct mbx_field_iter {
	const uint8_t *p;
	const uint8_t *end;
};

void mbx_field_iter_init(struct mbx_field_iter *it, const uint8_t *body, uint32_t len);
/* Next field: 1 with tag/val/len set, 0 at the end, -1 when a field runs past
 * the end of the body. */
int mbx_field_next(struct mbx_field_iter *it, uint16_t *tag, const uint8_t **val, uint32_t *len);

/* Fixed-size field values: 0 on success, -1 when the length is wrong. */
int mbx_field_u32(const uint8_t *val, uint32_t len, uint32_t *out);
int mbx_field_u64(const uint8_t *val, uint32_t len, uint64_t *out);

/* ---- decoded messages the host reads (all untrusted input) ---- */

struct mbx_exit_info {
	int32_t exit_code;
	uint32_t signal;
	uint32_t flags;       /* MBX_EXIT_* */
	uint64_t cpu_us;
	uint64_t maxrss;
	uint64_t elapsed_us;
};

struct mbx_ready_info {
	uint32_t layers;
	uint32_t skipped;
	uint32_t landlock_abi;
	uint64_t trace_ns[MBX_TRACE_MAX]; /* MBX_F_TRACE per step; 0: not reported */
};

/* An ERROR message. Strings point into a caller buffer and are
 * NUL-terminated, cut at the buffer's size. */
struct mbx_error_info {
	int32_t code;
	uint32_t errnum;
	char layer[32];
	char message[512];
};

/* Each decoder returns 0, or -1 when a field is malformed or a required one
 * is missing. Unknown fields are ignored. */
/* The newest version a HELLO announces (VERSION): what every version's
 * HELLO carries. */
int mbx_proto_decode_hello(const struct mbx_frame *f, uint32_t *version);

struct mbx_hello_info {
	uint32_t version_min; /* VERSION_MIN, or VERSION when absent */
	uint32_t version_max; /* VERSION */
	uint64_t features;    /* FEATURES, 0 when absent */
	uint64_t session;     /* SESSION */
};

/* A whole HELLO: VERSION and SESSION required, VERSION_MIN <= VERSION. */
int mbx_proto_decode_hello_info(const struct mbx_frame *f, struct mbx_hello_info *out);

/* The version both sides speak (the newest in both ranges) and the features
 * both know: 0, or -1 when the ranges do not meet. */
int mbx_proto_negotiate(uint32_t min_a, uint32_t max_a, uint64_t feat_a, uint32_t min_b, uint32_t max_b,
			uint64_t feat_b, uint32_t *version, uint64_t *features);
int mbx_proto_decode_ready(const struct mbx_frame *f, struct mbx_ready_info *out);
int mbx_proto_decode_error(const struct mbx_frame *f, struct mbx_error_info *out);
int mbx_proto_decode_exit(const struct mbx_frame *f, struct mbx_exit_info *out);
/* Output data of a STDOUT/STDERR frame: borrowed from the frame. */
int mbx_proto_decode_data(const struct mbx_frame *f, const uint8_t **data, uint32_t *len);
/* The stdin credit of a CREDIT (agent -> host) or STARTED frame: its
 * WINDOW field. -1 for another type, or when WINDOW is absent or malformed
 * (*window is then 0). */
int mbx_proto_decode_window(const struct mbx_frame *f, uint64_t *window);

/* FILE_STAT, and one ENTRY of FILE_DIR / PROC_LIST. Strings are borrowed
 * from the frame (not NUL-terminated) and checked: a NAME holds no '/' and no
 * NUL and is not "." or "..". */
struct mbx_file_info {
	uint32_t ftype;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t flags;      /* FILE_DIR: 1 = symlink */
	uint64_t size;
	int64_t mtime_ns;
	const uint8_t *name; /* FILE_DIR entries only */
	uint32_t name_len;
	const uint8_t *target; /* a symlink's target, or NULL; no NUL inside */
	uint32_t target_len;
};

struct mbx_proc_info {
	uint32_t id;
	uint64_t age_ms;
	const uint8_t *program;
	uint32_t program_len;
};

int mbx_proto_decode_stat(const struct mbx_frame *f, struct mbx_file_info *out);
/* Calls fn for each entry of a FILE_DIR frame; *more tells if a later
 * frame continues the listing. Stops at the first malformed entry (-1) or
 * when fn returns non-zero (its value is returned). */
int mbx_proto_decode_dir(const struct mbx_frame *f, int (*fn)(const struct mbx_file_info *, void *), void *arg,
			 uint32_t *more);
int mbx_proto_decode_proc_list(const struct mbx_frame *f, int (*fn)(const struct mbx_proc_info *, void *), void *arg);
/* A u32 / u64 field of any frame; -1 when absent or malformed. */
int mbx_proto_find_u32(const struct mbx_frame *f, uint16_t tag, uint32_t *out);
int mbx_proto_find_u64(const struct mbx_frame *f, uint16_t tag, uint64_t *out);

/* ---- the INIT message's mount plan (MBX_F_MOUNT entries, in order) ---- */

enum mbx_mount_op {
	MBX_MOP_BIND = 1,       /* SRC (host path) onto DST */
	MBX_MOP_TMPFS = 2,      /* DST, MODE, DATA (mount options) */
	MBX_MOP_PROC = 3,       /* DST */
	MBX_MOP_DEVPTS = 4,     /* DST */
	MBX_MOP_SYMLINK = 5,    /* SRC (link target) at DST */
	MBX_MOP_WRITE = 6,      /* DATA into the new file DST with MODE */
	MBX_MOP_MKDIR = 7,      /* DST with MODE */
	MBX_MOP_REMOUNT_RO = 8, /* DST made read-only */
	MBX_MOP_COPY = 9,       /* the host file SRC copied into the new file DST */
	MBX_MOP_ATTACH = 10,    /* the detached mount passed as descriptor FD, attached at DST */
	MBX_MOP_STORAGE = 11,   /* the sandbox's writable storage: a tmpfs with DATA (options),
	                         * outside the new root; MBX_MF_STORAGE binds show parts of it */
};

/* MBX_F_FLAGS bits of a mount entry. */
#define MBX_MF_RO       (1u << 0) /* bind read-only at once */
#define MBX_MF_FILE     (1u << 1) /* the source is not a directory */
#define MBX_MF_OPTIONAL (1u << 2) /* skip when the source is missing */
#define MBX_MF_REC      (1u << 3) /* recursive (submounts too) */
#define MBX_MF_USER     (1u << 4) /* a mount the caller asked for */
#define MBX_MF_STORAGE  (1u << 5) /* bind: SRC names a directory of the storage (made with MODE) */

/* Most descriptors one message may carry. */
#define MBX_PROTO_MAX_FDS 64

/* Attaches fds[0..n) to msg as one SCM_RIGHTS message in ctl, a zeroed
 * buffer of at least CMSG_SPACE(n * sizeof(int)) bytes, aligned for a
 * struct cmsghdr; with n 0, none (msg->msg_control stays NULL). */
void mbx_proto_attach_fds(struct msghdr *msg, void *ctl, const int *fds, size_t n);

/* The parent-death signal of an agent made off the host's main thread
 * (src/backend/linux/spawn.c sets it, the agent handles it). */
#define MBX_AGENT_PDEATH_SIG SIGUSR1

/* ---- direct executes (MBX_FEAT_DIRECT) ----
 *
 * A one-shot execute in a live os sandbox takes four wake-ups more than a
 * posix_spawn when it goes through the agent: the EXEC to the agent and
 * on to its spare mini-init, the status back to the agent and the EXIT to
 * the host. With MBX_FEAT_DIRECT the host lends the agent one end of a
 * socketpair (MBX_MSG_SPARE); the agent's next spare mini-init (payload.c,
 * "the spare"), which has taken every payload layer of the sandbox
 * already, waits on it instead of on a socket of the agent's, and the host
 * talks to it on the other end, one SOCK_SEQPACKET message each way:
 *
 *	spare -> host  struct mbx_start_report {0, 0}: ready (or the step of
 *	               its preparation that failed, and it exits)
 *	host -> spare  struct mbx_spare_req, then the body of an EXEC frame
 *	               (its fields), with descriptors (SCM_RIGHTS) in the
 *	               order of the has_* flags: stdout and stderr pipes
 *	spare -> host  struct mbx_exec_status when the program's tree has
 *	               ended; with MBX_XS_SPARE | MBX_XS_READY it waits for
 *	               the next request, else it exits (end of file)
 *
 * The host lends the socket right behind its second request to the agent
 * (an EXEC; a sandbox that runs one execute and goes lends nothing), so
 * the agent's spare serves that request first and moves to the socket when
 * it is over (mbx_spare_req.move, before the EXIT goes): the agent puts the
 * spare's ready on the socket itself, and the host's next execute finds it.
 * Without a spare of its own the agent makes the next one on the socket.
 *
 * The agent takes no part in the executes: it only reaps the spare when it
 * exits, kills it on KILL with the MBX_MSG_SPARE's id (the host's timeout)
 * and on whatever discards spares (RESET, LAYERS), and makes no other while
 * it lives. An execute the host sends to the agent (a spawn, one with
 * stdin) takes the lent spare back when it is ready and idle: the host's
 * end of its socket goes with the EXEC (MBX_F_SPARE_FD), and the host lends
 * another socket behind it. What the spare sends is untrusted like
 * everything from the sandbox: fixed sizes, checked by the host. The agent
 * speaks the same messages to its own spares (with keep 0 the status goes
 * on a pipe passed second, after the start report's).
 */
struct mbx_start_report {
	int32_t stage;          /* MBX_STAGE_*, 0: started (or ready) */
	int32_t errnum;
};

/* The step of a program's start (or of a spare's preparation) that failed. */
enum mbx_start_stage {
	MBX_STAGE_SETUP = 1,
	MBX_STAGE_CHDIR,
	MBX_STAGE_RLIMIT,
	MBX_STAGE_CAPS,
	MBX_STAGE_NNP,
	MBX_STAGE_LANDLOCK,
	MBX_STAGE_SECCOMP,
	MBX_STAGE_EXEC,
	MBX_STAGE_CGROUP,
};

/* The largest EXEC body a spare takes (its buffer); larger ones go
 * through the agent. */
#define MBX_SPARE_MAX_BODY (64u << 10)

struct mbx_spare_req {
	uint32_t id;            /* the execute's id */
	uint32_t body_len;      /* bytes of the EXEC body after this header */
	uint32_t nmsg_fds;      /* descriptors of the message (MBX_F_FD), after the io ones */
	uint8_t has_rep, has_in, has_out, has_err, has_pty;
	uint8_t keep;           /* it may wait as a spare again after this execute: the
				 * status goes on the socket then, else on a pipe passed
				 * second (after the report's, if any) */
	uint8_t move;           /* the agent to its own spare, no request (body_len 0): wait
				 * on the one descriptor passed instead (the host's lent
				 * socket), where the agent put its ready */
	uint8_t pad;
};

/* What a mini-init reports when its program's tree has ended. */
/* It found its namespace empty and itself as it was prepared: it waits on
 * its socket as a spare. */
#define MBX_XS_SPARE 1u
/* Nothing of the execute is left, and the mini-init held its copies of the
 * output pipes until this report: what they hold is all there is, read to
 * the end without waiting for their end of file. */
#define MBX_XS_EMPTY 2u
/* With MBX_XS_SPARE: it was a spare already (its layers taken, its check
 * done before this report), so this report is also its ready, and none
 * follows. */
#define MBX_XS_READY 4u
struct mbx_exec_status {
	int32_t wstatus;
	uint32_t flags;         /* MBX_XS_* */
	uint64_t cpu_us;        /* of every process of the execute's tree */
	uint64_t maxrss;        /* bytes, the largest of them */
	/* An execute without a start report (one the host waits for the end
	 * of only): the step at which its start failed (MBX_STAGE_*) and its
	 * errno; 0 when the program ran. */
	int32_t start_stage;
	int32_t start_errno;
};

/* The exit code and signal an execute reports for a mini-init's status:
 * its program's wait status when one came (`valid`), else killed (-1,
 * SIGKILL: it went with its mini-init). *sig is 0 for a program that
 * exited. Used by the agent (EXIT) and the host (a direct execute). */
void mbx_proto_exit_of(int valid, int32_t wstatus, int32_t *code, uint32_t *sig);

/* What a failed start step (MBX_STAGE_*, errno) means to the caller: returns
 * the MBX_E* code and writes the message (naming `program` or `cwd`) to
 * msg, the layer it concerns (or NULL) to *layer. Used by the agent and by
 * the host for a direct execute, so both say the same. */
int mbx_proto_start_error(int32_t stage, int32_t errnum, const char *program, const char *cwd, char *msg, size_t len,
			  const char **layer);
