/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the supervisor of a named sandbox, shared by its event loop
 * and exec handling (cli/supervisor.c) and its file and HTTP requests
 * (cli/supervisor_files.c). See supervisor.c for how the loop works and
 * wire.h for the protocol.
 */
#ifndef MBX_CLI_SUPERVISOR_H
#define MBX_CLI_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

#define SV_MAX_CLIENTS   64
#define SV_OUT_HIGH      ((size_t)1 << 20)	/* queued bytes that pause a client's producer */
#define SV_SLICE_MS      10	/* wait for process events between looks at the sockets */
#define SV_CHECK_MS      5000	/* health check of an idle sandbox */
#define SV_DETACH_MS     10000	/* longest wait for a killed process's last event */
#define SV_LIST_BATCH    ((size_t)256 * 1024)
#define SV_MAX_BG        32	/* background processes kept, running or ended */
#define SV_LOG_RING      ((size_t)1 << 20)	/* output kept per background process */

/* What a client is doing. */
enum { SV_IDLE, SV_EXEC, SV_WRITE, SV_READ, SV_HTTP, SV_LOGS };

/* Why the loop stops. */
enum { SV_RUN, SV_STOP_REMOVE, SV_STOP_SIGNAL, SV_STOP_BROKEN, SV_STOP_EXPIRED };

/*
 * A background process (`exec -d`): it belongs to the supervisor, not to a
 * client. Its output goes into a ring of the last SV_LOG_RING bytes
 * (stdout and stderr as they came), read by LOGS. An ended one is kept,
 * with its exit, until SV_MAX_BG newer ones push it out.
 */
struct sv_bg {
	uint32_t id;
	mbx_process *proc;	/* NULL once it ended */
	char *command;		/* owned */
	int64_t started_ms, ended_ms;
	int exit_code, sig, timed_out, oom;
	uint64_t ooms_at_start;
	uint8_t *ring;		/* SV_LOG_RING bytes; owned */
	uint64_t total;		/* output bytes ever taken */
};

struct sv_client {
	struct wire_conn conn;	/* conn.fd is -1 once the client is gone */
	struct cli_buf out;	/* frames not sent yet, from out_off on */
	size_t out_off;
	int state;
	int closing;		/* drop the client once `out` is sent */
	int dead;		/* free it at the end of this round */
	/* SV_EXEC */
	mbx_process *proc;
	int64_t started_ms;
	int64_t detached_ms;	/* when the client went away, or 0 */
	int collect;		/* WIRE_EXEC_COLLECT: the output comes with the result */
	uint64_t limit;		/* output forwarded per stream */
	uint64_t sent[3];
	int cut[3];
	uint64_t timeout_ms;	/* the request's, 0: the sandbox's */
	uint64_t ooms_at_start;	/* mbx_sandbox_oom_kills() when it started */
	char *command;		/* for PROCS; owned */
	/* SV_LOGS */
	uint32_t logs_id;
	uint64_t logs_pos;	/* next output byte to send, in sv_bg.total terms */
	int follow;
	uint8_t *in_buf;	/* stdin the process has not taken yet: the client's */
	size_t in_len;		/* frames wait (unparsed) until it has */
	/* SV_WRITE */
	char *path, *tmp;
	uint32_t mode;
	int write_failed;
	/* SV_READ: a file spooled here, or an HTTP response body */
	int spool;
	mbx_http_response *resp;
	size_t resp_off;
	/* SV_HTTP: the request, until its body is in */
	char *method, *url;
	char **headers;		/* NULL-terminated */
	struct cli_buf body;
	uint64_t body_len;
};

struct sv {
	mbx_sandbox *sb;
	struct cli_entry_info info;
	struct cli_registry reg;
	int listen_fd;
	struct sv_client *clients[SV_MAX_CLIENTS];
	size_t n_clients;
	uint64_t output_limit;
	int stop;
	struct sv_client *remover;
	int64_t last_check_ms;
	const struct cli_sandbox_opts *opts;	/* as `create` was given them */
	uint64_t ttl_ms;	/* idle expiry, or 0 */
	int64_t last_use_ms;	/* the last request that used the sandbox */
	struct sv_bg *bg[SV_MAX_BG];
	size_t n_bg;
};

/* ---- sending (supervisor.c) ---- */

int64_t sv_now_ms(void);
/* Bytes of c's queue not sent yet. */
size_t sv_queued(const struct sv_client *c);
/* 1 while the client is connected. */
int sv_attached(const struct sv_client *c);
/* Finishes a frame begun in c->out; a frame that cannot be built ends the client. */
void sv_end_frame(struct sv_client *c, size_t start);
/* Queues a frame without fields (OK, END). */
void sv_send_simple(struct sv_client *c, uint8_t type);
/* Queues an ERROR frame. suggestion and layer may be NULL. */
void sv_send_error_fields(struct sv_client *c, int code, int errnum, const char *message,
			  const char *suggestion, const char *layer);
/* An ERROR for a library failure; a temporary name `tmp` in its message is shown as `path`. */
void sv_send_mbx_error(struct sv_client *c, int rc, const mbx_error *err, const char *tmp, const char *path);
/* An ERROR with our own message. */
void sv_send_fail(struct sv_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answers a request the protocol does not allow there, and hangs up. */
void sv_protocol_error(struct sv_client *c, const char *what);
/* Notes a library status that means the sandbox itself broke: the loop then stops. */
void sv_note_status(struct sv *sv, int rc);

/* Queues an EXIT frame for `c` (see wire.h). */
void sv_send_exit(struct sv *sv, struct sv_client *c, int code, int sig, int timed_out, int oom,
		  uint64_t elapsed_us, uint64_t peak, uint64_t cpu_us, const char *trap);
/* "prog arg ..." of an argv, for listings; NULL when out of memory. */
char *sv_join_command(const char *const *argv);

/* ---- background processes, logs, inspect (supervisor_procs.c) ---- */

/* Takes a spawned process into the background; 0, or -1 (all SV_MAX_BG running) or -2 (out of memory) with proc untouched. */
int sv_bg_add(struct sv *sv, mbx_process *proc, const char *const *argv);
/* Takes the events of every running background process; 1 if any came. */
int sv_bg_pump(struct sv *sv, int timeout_ms);
/* The number of background processes that run. */
size_t sv_bg_running(const struct sv *sv);
/* Kills and frees every background process. */
void sv_bg_free_all(struct sv *sv);
/* LOGS, PROCS, KILL, INSPECT requests. */
void sv_begin_logs(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_pump_logs(struct sv *sv, struct sv_client *c);
void sv_do_procs(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_kill(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_inspect(struct sv *sv, struct sv_client *c, struct wire_reader *r);

/* ---- files and HTTP (supervisor_files.c) ---- */

/* WRITE: begins a file transfer (state SV_WRITE); then DATA and WRITE_END go to sv_write_input(). */
void sv_begin_write(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_write_input(struct sv *sv, struct sv_client *c, struct wire_frame *f);
/* Ends an unfinished write: its temporary file goes, the target stays as it was. */
void sv_abort_write(struct sv *sv, struct sv_client *c);
/* READ: spools the file (state SV_READ); sv_pump_spool() then sends it as the queue has room. */
void sv_begin_read(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_pump_spool(struct sv_client *c);
/* STAT and LIST: answered at once. */
void sv_do_stat(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_list(struct sv *sv, struct sv_client *c, struct wire_reader *r);
/* MKDIR and UNLINK: one library call each, answered with OK or ERROR. */
void sv_do_mkdir(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_unlink(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_symlink(struct sv *sv, struct sv_client *c, struct wire_reader *r);
/* NETLOG: the network log's entries, in batches. */
void sv_do_netlog(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_do_snapshot(struct sv *sv, struct sv_client *c, struct wire_reader *r);
/* HTTP: collects the body (state SV_HTTP), makes the request, sends the response like a read. */
void sv_begin_http(struct sv *sv, struct sv_client *c, struct wire_reader *r);
void sv_http_input(struct sv *sv, struct sv_client *c, struct wire_frame *f);
/* Frees what an unfinished HTTP request holds. */
void sv_clear_http(struct sv_client *c);

#endif /* MBX_CLI_SUPERVISOR_H */
