/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named sandboxes that outlive the CLI: the registry of their supervisors
 * (cli/registry.c), the supervisor itself (cli/supervisor.c) and what the
 * client verbs share.
 *
 * `mimobox create` forks a supervisor daemon that owns the sandbox (a
 * library handle is one process's) and serves it on a unix socket, the
 * registry entry <registry>/<name>.sock, next to <name>.info (key=value
 * lines: name, id, isolation, created, pid). The registry directory is
 * $MIMOBOX_STATE_DIR/named when that is set, else /run/mimobox/named for
 * root, $XDG_RUNTIME_DIR/mimobox/named, or /tmp/mimobox-<uid>/named: the
 * library's state directory rules, one level down. It is 0700 and must
 * belong to the caller; sockets are 0600, and the supervisor also checks
 * each client's uid.
 *
 * Entries change only under an flock of the registry directory (claiming a
 * name, removing an entry, removing the emptied directory), so a dead
 * entry found by one process can never be mistaken for a new one another
 * process is making. An entry is dead when its socket refuses connections
 * (nobody listens: the supervisor died) or its supervisor pid is gone.
 */
#ifndef MBX_CLI_SESSION_H
#define MBX_CLI_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "cli.h"
#include "wire.h"

/* ---- the registry ---- */

struct cli_registry {
	char *path;	/* the directory; owned */
	int dirfd;	/* open on it, or -1; owned */
};

/* What cli_registry_probe() found. */
#define CLI_ENTRY_NONE 0	/* no such entry */
#define CLI_ENTRY_LIVE 1	/* a supervisor accepted the connection */
#define CLI_ENTRY_DEAD 2	/* the files of a supervisor that is gone */

/* The metadata of an entry (<name>.info) and of INFO frames. */
struct cli_entry_info {
	char name[CLI_NAME_MAX + 1];
	char id[40];
	char isolation[16];
	uint64_t created;	/* unix seconds */
	uint32_t pid;		/* of the supervisor */
};

/*
 * Opens the registry directory, making it (and the state directory above
 * it) when `create` is set. Returns 0; 1 when it does not exist and
 * `create` is not set (reg->dirfd is then -1); or -1 with a message in why.
 */
int cli_registry_open(struct cli_registry *reg, int create, char *why, size_t whylen);
void cli_registry_close(struct cli_registry *reg);

/*
 * Takes the registry lock (blocking). Should the directory have been
 * removed meanwhile, it is made again (`create`) or 1 is returned. 0 on
 * success, -1 with errno.
 */
int cli_registry_lock(struct cli_registry *reg, int create);
/* Drops the lock; with `prune`, first removes the directory if it is empty. */
void cli_registry_unlock(struct cli_registry *reg, int prune);

/*
 * Finds out whether `name` has a live supervisor. With fd_out not NULL a
 * live supervisor's connected socket is returned there (blocking, close on
 * exec); otherwise it is closed.
 */
int cli_registry_probe(struct cli_registry *reg, const char *name, int *fd_out);

/*
 * As cli_registry_probe(), but the socket is non-blocking from the start,
 * so that a supervisor that stopped accepting (a full backlog) cannot hold
 * the caller in connect(): that is CLI_ENTRY_LIVE with *fd_out -1 and
 * errno EAGAIN.
 */
int cli_registry_probe_nb(struct cli_registry *reg, const char *name, int *fd_out);

/* Under the lock: probes `name` again and removes it when dead. 1 when removed. */
int cli_registry_reap(struct cli_registry *reg, const char *name);

/* Removes both files of `name` (the caller holds the lock). */
void cli_registry_remove(struct cli_registry *reg, const char *name);

/* Creates the listening socket of `name` (0600, close on exec); the caller holds the lock. fd or -1 with errno. */
int cli_registry_listen(struct cli_registry *reg, const char *name);

/* Writes <name>.info atomically; 0 or -1 with errno. */
int cli_registry_write_info(struct cli_registry *reg, const struct cli_entry_info *info);
/* Reads <name>.info; 0 or -1. */
int cli_registry_read_info(struct cli_registry *reg, const char *name, struct cli_entry_info *info);

/*
 * Lists the names with an entry (a .sock or .info file), sorted. Returns
 * the count and a malloc'd array of malloc'd names in *out, or -1.
 */
long cli_registry_names(struct cli_registry *reg, char ***out);

/* ---- talking to a supervisor ---- */

/* What INFO says about a live sandbox. */
struct cli_session_info {
	struct cli_entry_info entry;
	uint32_t clients;	/* connections, this one included */
	uint32_t running;	/* processes started by exec/shell that still run */
	uint64_t ttl_ms;	/* idle expiry (create --ttl), or 0 */
	uint64_t ttl_left_ms;	/* until it expires, while idle */
};

/* How long a command waits for a supervisor to accept it and say INFO. */
#define CLI_SESSION_WAIT_MS 15000

/*
 * Connects to the supervisor of `name` for `verb` and exchanges HELLO and
 * INFO; a supervisor that accepts no connection or says nothing within
 * CLI_SESSION_WAIT_MS is reported as not answering. Returns 0 with the connection in *conn (and *info when not NULL);
 * otherwise it has reported the problem (a bad name, no such sandbox, a
 * dead supervisor, whose entry it then removes) and returns the exit
 * status, CLI_EXIT_FAILED.
 */
int cli_session_open(const char *verb, const char *name, int json, struct wire_conn *conn,
		     struct cli_session_info *info);

/* Reads an INFO frame's fields; 0, or -1 when malformed. */
int cli_session_parse_info(struct wire_reader *r, struct cli_session_info *info);

/*
 * Reports an ERROR frame (its fields in `r`) and returns its MBX_E* code
 * (MBX_EPROTO when it is malformed).
 */
int cli_session_report_error(int json, struct wire_reader *r);

/* Reports a broken connection to the supervisor of `name`; returns CLI_EXIT_FAILED. */
int cli_session_lost(int json, const char *name, int errnum);

/* The exit status of a file verb that got an MBX_E* error from the sandbox: 1, or 125 when the sandbox broke. */
int cli_session_file_status(int code);

/*
 * Whether --json (option id CLI_OPT_VERB in every session verb's table) is
 * among the options of argv, looking past at most `operands` operands, so
 * that usage errors can be reported as JSON too.
 */
int cli_wants_json(int argc, char **argv, const struct cli_option *options, int operands);

/* Sends the frames in `b` on the connection; 0 or -1 with errno. */
int cli_session_send(struct wire_conn *conn, struct cli_buf *b);

/* ---- the supervisor ---- */

/*
 * Runs in the daemon process `create` forked: creates the sandbox from
 * `cfg`, claims the name (`name`, or the sandbox id when NULL), reports
 * the outcome as one WIRE_OK (str name, str id, str isolation) or
 * WIRE_ERROR frame on status_fd and closes it and log_fd (where the
 * creation's log messages went: see cli_set_log_fd()), then serves clients
 * until `rm`, SIGTERM/SIGINT, the sandbox breaks, or it was idle for
 * `ttl_ms` (when not 0). `opts` are the options `create` was given, for
 * `inspect` and the limits the messages name. With `snap` (restore, fork)
 * the sandbox is made from that snapshot, with its config (`cfg` NULL);
 * the snapshot is consumed (freed once the sandbox is made).
 * Returns the process exit status.
 */
int cli_supervise(const mbx_config *cfg, mbx_snapshot *snap, const char *name,
		  const struct cli_sandbox_opts *opts, uint64_t ttl_ms, int status_fd, int log_fd);

/*
 * Forks the supervisor of a new named sandbox (`name`, or its id when
 * NULL) made from `cfg` or, with `snap`, from that snapshot; waits until it
 * says whether the sandbox is up and prints its name (or JSON). `o` is
 * handed to the supervisor (its strings copied there). The caller keeps
 * `cfg` and `snap` (the supervisor has its copies). Returns the exit
 * status, after reporting.
 */
int cli_start_supervisor(int json, const char *name, mbx_config *cfg, mbx_snapshot *snap,
			 struct cli_sandbox_opts *o, uint64_t ttl_ms);

/*
 * The same in two halves, so that several supervisors make their sandboxes
 * at once (`fork --count`): begin forks the supervisor (0, or the exit
 * status after reporting), end waits for it and prints (the exit status).
 */
struct cli_pending_supervisor {
	int status_fd, log_fd;
};
int cli_supervisor_begin(int json, const char *name, mbx_config *cfg, mbx_snapshot *snap, struct cli_sandbox_opts *o,
			 uint64_t ttl_ms, struct cli_pending_supervisor *p);
int cli_supervisor_end(int json, const struct cli_sandbox_opts *o, struct cli_pending_supervisor *p);

/* ---- the verbs ---- */

int cli_cmd_create(int argc, char **argv);
int cli_cmd_ps(int argc, char **argv);
int cli_cmd_rm(int argc, char **argv);
int cli_cmd_exec(int argc, char **argv);
int cli_cmd_shell(int argc, char **argv);
int cli_cmd_cat(int argc, char **argv);
int cli_cmd_write(int argc, char **argv);
int cli_cmd_ls(int argc, char **argv);
int cli_cmd_stat(int argc, char **argv);
int cli_cmd_cp(int argc, char **argv);
int cli_cmd_mkdir(int argc, char **argv);
int cli_cmd_snapshot(int argc, char **argv);
int cli_cmd_restore(int argc, char **argv);
int cli_cmd_fork(int argc, char **argv);

/* The operands and options of `snapshot`, `restore` and `fork`. */
struct cli_snap_args {
	const char *verb;
	int json;
	const char *name;
	uint64_t ttl_ms;
	unsigned count;
	const char *ops[2];
	int n_ops;
};

enum cli_snap_verb { CLI_SNAP_SNAPSHOT, CLI_SNAP_RESTORE, CLI_SNAP_FORK };

/*
 * Parses the arguments of one of those verbs (argv[0] is the verb), with
 * the same words on both paths (a local sandbox or one of a server).
 * Returns 0; 1 after printing --help; -1 after a usage error.
 */
int cli_snap_parse(struct cli_snap_args *s, enum cli_snap_verb verb, int argc, char **argv);

/*
 * `rm NAME:PATH`: removes `path` inside sandbox `name` (a whole tree with
 * `recursive`). With `force` a path that does not exist is no error
 * (*absent is then set). Returns the exit status, after reporting.
 */
int cli_remove_path(const char *name, const char *path, int recursive, int force, int json, int *absent);
int cli_cmd_http(int argc, char **argv);
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_kill(int argc, char **argv);
/* A process id operand of `logs` or `kill` (local or through a server); 0, or -1 after a usage error. */
int cli_parse_proc_id(const char *verb, int json, const char *s, uint32_t *id);
int cli_cmd_inspect(int argc, char **argv);
/* `ps NAME`: the processes of one sandbox; an exit status. */
int cli_ps_processes(const char *name, int json);

#endif /* MBX_CLI_SESSION_H */
