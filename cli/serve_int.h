/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What serve.c shares with the other parts of the server (serve_pty.c):
 * the table's entries (a reference, the sandbox's mutex), error answers and
 * counters. serve.c keeps its structs to itself; these are the calls.
 */
#ifndef MBX_CLI_SERVE_INT_H
#define MBX_CLI_SERVE_INT_H

#include <mbx/mbx.h>

#include "serve_dl.h"

struct serve_server;
struct sbent;
struct req;

/* The request's sandbox (its path's id or name, among its client's: another client's is not found) with a
 * reference of the caller's (no mutex), or NULL; give it back with serve_entry_put(). */
struct sbent *serve_entry_get(struct serve_server *s, const struct req *r);
void serve_entry_put(struct serve_server *s, struct sbent *e);
/* Takes the entry's mutex for library calls; -1 (mutex not held) once the sandbox was destroyed. */
int serve_entry_enter(struct sbent *e);
/* Gives the mutex back (and counts the sandbox as used now). */
void serve_entry_leave(struct sbent *e);
/* Takes the mutex whether or not the sandbox was destroyed (to free a process of it); give it back with serve_entry_unlock(). */
void serve_entry_lock(struct sbent *e);
void serve_entry_unlock(struct sbent *e);
/* The entry's sandbox: only under its mutex or shared use. */
mbx_sandbox *serve_entry_sandbox(struct sbent *e);
/* Holds the sandbox for library calls beside other calls (a destroy,
 * snapshot or fork waits); -1 (not held) once it was destroyed. */
int serve_entry_share(struct sbent *e);
/* Gives it back (and counts the sandbox as used now). */
void serve_entry_unshare(struct sbent *e);
/* Frees a process of the entry's sandbox, destroyed or not. */
void serve_entry_free_process(struct sbent *e, mbx_process *proc);
/* A dup of the sandbox's event descriptor (the caller closes it), or -1 and *err (NULL: destroyed). */
int serve_entry_event_fd(struct sbent *e, mbx_error **err);
/* A descriptor readable once the sandbox was destroyed, or -1. */
int serve_entry_wake_fd(struct sbent *e);

/* 1 once the server is stopping. */
int serve_stopping(struct serve_server *s);
void serve_count_execute(struct serve_server *s);
void serve_count_disconnect(struct serve_server *s);

/* Answers (also recorded for the metrics). */
enum MHD_Result serve_queue(struct MHD_Connection *c, struct req *r, unsigned status, struct MHD_Response *resp);
enum MHD_Result serve_send_error(struct MHD_Connection *c, struct req *r, unsigned status, const char *code,
				 const char *message, const char *suggestion);
/* A library failure as "CONTEXT: MESSAGE" with the status of its code; frees err. */
enum MHD_Result serve_send_mbx_error(struct MHD_Connection *c, struct req *r, int rc, mbx_error *err,
				     const char *context);
/* The request's sandbox id (from its path). */
const char *serve_req_id(const struct req *r);
/* Gives the request a PTY session that waits for its upgrade (serve_pty_request_done() at its end). */
void serve_req_set_pty(struct req *r, void *pty);

#endif /* MBX_CLI_SERVE_INT_H */
