/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PTYs over WebSocket for `mimobox serve`: GET /v1/sandboxes/{id}/pty
 * (docs/server.md). Each session runs in a thread of its own once the
 * connection is upgraded; the table of sessions lets the server end and
 * join them all before it stops.
 */
#ifndef MBX_CLI_SERVE_PTY_H
#define MBX_CLI_SERVE_PTY_H

#include "serve_int.h"

struct serve_pty_table;

/* A table of sessions, whose WebSockets are pinged after ping_ms without a frame (0: never); NULL when out of memory. */
struct serve_pty_table *serve_pty_table_new(uint64_t ping_ms);

/*
 * Ends every session (close code 1001; their processes are killed) and
 * joins their threads; a connection upgraded later is closed at once. Call
 * it after the sandboxes were destroyed and before MHD_stop_daemon(): a
 * session uses its connection's upgrade handle until it ends.
 */
void serve_pty_table_stop(struct serve_pty_table *t);

/* Frees the table, after serve_pty_table_stop() and MHD_stop_daemon() (no upgrade can come any more). */
void serve_pty_table_free(struct serve_pty_table *t);

/*
 * Handles GET /v1/sandboxes/{id}/pty: checks the handshake and the query,
 * starts the program on a terminal and answers 101, or answers an error.
 * `upgrade_ok` is 0 when this libmicrohttpd cannot upgrade connections.
 */
enum MHD_Result serve_pty_handle(struct serve_server *s, struct serve_pty_table *t, int upgrade_ok,
				 struct MHD_Connection *c, struct req *r);

/* The request of a session ended: a session never handed its connection (the client went away first) is freed. */
void serve_pty_request_done(void *pty);

#endif /* MBX_CLI_SERVE_PTY_H */
