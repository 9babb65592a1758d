/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-sandbox agent: PID 1 of the sandbox. It is a small static program
 * that speaks the agent protocol on fd 3, builds the sandbox's view of the
 * file system when asked (os backend), and runs each execute as a child
 * process with the payload layers applied (capabilities dropped,
 * no_new_privs, Landlock, seccomp). It trusts the host; the host does not
 * trust it.
 */
#pragma once

#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "proto.h"

#define AGENT_FD 3

struct agent_rlimit {
	uint32_t resource;
	uint64_t value;
};

#define AGENT_MAX_PROCS 64
/* Stdin bytes the host may have on their way to a process or held by the
 * agent: the host starts with this much credit (STARTED) and gets back
 * what the program took (CREDIT). */
#define STDIN_WINDOW (256u << 10)
#define AGENT_MAX_FILES 16

/* The pipes of one execute, each [0] the agent's end and [1] its
 * mini-init's: the program's start report (for an execute whose STARTED
 * waits for the exec) and the mini-init's status (both ends non-blocking),
 * the program's stdout and stderr (the agent's ends non-blocking). */
struct agent_pipes {
	int rep[2];
	int status[2];
	int out[2];
	int err[2];
};
#define AGENT_PIPES_NONE ((struct agent_pipes){ { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } })

/* One spawned process: a mini-init (PID 1 of a nested pid namespace) and
 * the program it runs (PID 2 there, or the next free pid when the
 * mini-init was recycled). */
struct agent_proc {
	uint32_t id;            /* the host's id (the EXEC frame's id) */
	pid_t init;             /* the mini-init, in the sandbox's pid namespace */
	pid_t program;          /* the program, in the sandbox's pid namespace (0 if unknown) */
	int program_fd;         /* pidfd of the program, -1 if none */
	int out_fd;             /* stdout (or the PTY master), -1 at EOF */
	int err_fd;             /* stderr, -1 at EOF or with a PTY */
	int in_fd;              /* stdin pipe or PTY master (dup), -1 when none */
	int status_fd;          /* the mini-init's report (a pipe, or spare_sock itself), -1 once read */
	int spent[3];           /* pipes at their end, closed with the process after its EXIT went (-1) */
	int start_pending;      /* STARTED not sent yet (a one-shot execute's, see agent_exec) */
	char *cwd;              /* while start_pending: the working directory asked for, for a failure's message */
	uint8_t *inbuf;         /* stdin bytes not yet written (STDIN_WINDOW bytes) */
	size_t inlen;
	uint64_t in_uncredited; /* stdin bytes written or dropped, not yet credited to the host */
	int in_close;           /* close stdin once inbuf is written */
	uint64_t credit;        /* output bytes the host may still receive */
	uint64_t limit;         /* per stream; beyond it output is dropped */
	uint64_t sent[2];
	int truncated[2];
	int detached;           /* nobody reads: drop the output */
	int pty;
	uint64_t start_ms;
	uint64_t oom_at_start;   /* the guest's out-of-memory kills when it started (guest mode) */
	uint64_t deadline_ms;   /* 0: none */
	int timed_out;
	int init_done;          /* the mini-init was reaped */
	int status_valid;
	struct mbx_exec_status status;
	char *program_name;
	int spare_sock;         /* the agent's end of the mini-init's socketpair (a spare after), -1 */
	uint64_t spare_gen;     /* agent_state.spare_gen when the mini-init was prepared */
};

struct agent_file {
	int fd;                 /* -1: free slot */
	int writing;
	char *tmp;              /* write: the temporary name, renamed on commit */
	char *path;             /* write: the final name */
	int pipe;               /* the transfer pipe the host passed (files.c), or -1 */
};

struct agent_state {
	int chan;               /* the protocol channel (fd 3) */
	struct mbx_rbuf in;
	struct mbx_wbuf out;    /* frames waiting to be written */
	size_t out_sent;        /* bytes of `out` already written */
	int chan_down;          /* guest mode: the host's end is gone, the agent waits
				 * for it to come back (agent.c, "resuming") */
	int sigfd;              /* signalfd for SIGCHLD */

	uint32_t init_flags;
	uint8_t *seccomp;       /* raw sock_filter array, or NULL */
	size_t seccomp_len;
	uint8_t *seccomp_extra; /* a second filter (memory guard), or NULL */
	size_t seccomp_extra_len;
	int landlock_fd;        /* ruleset to enforce on payloads, or -1 */
	int landlock_abi;
	struct agent_rlimit rlimits[8];
	size_t nrlimits;
	uint32_t layers;        /* MBX_LAYER_* achieved for payloads */
	uint32_t skipped;
	int fds[MBX_PROTO_MAX_FDS]; /* descriptors of the message being handled */
	size_t nfds;
	/* Descriptors received and not yet handed to their message: a set
	 * belongs to the message holding byte `at` of the stream (the last
	 * byte of the recvmsg() they came with; see agent_recv()). */
	struct agent_fdset {
		uint64_t at;
		size_t n;
		int fds[MBX_PROTO_MAX_FDS];
	} fdq[8];
	size_t nfdq;
	uint64_t in_total;      /* bytes read from the channel */
	uint64_t in_next;       /* stream offset of the next message to handle */

	struct agent_proc *procs[AGENT_MAX_PROCS];
	struct agent_file files[AGENT_MAX_FILES];

	/* Guest mode (guest.c): the init of a microvm guest. */
	int guest;
	int storage_fd;         /* O_PATH of the storage tmpfs, -1 */
	int cgroup_procs_fd;    /* cgroup.procs of the payloads' pids cgroup, -1: none */
	int oom_events_fd;      /* memory.events of that cgroup, -1: none */
	int boot_failed;        /* the guest's root could not be built: */
	int boot_errno;
	char boot_layer[32];
	char boot_msg[200];
	struct agent_net *net;  /* the network channel (netmux.c), or NULL */
	/* The helper making the sandbox's network namespace (setup.c,
	 * agent_netns_begin), os mode: 0 when none runs. */
	pid_t netns_helper;
	int netns_pidfd;        /* its pidfd, -1 */
	int netns_sock;         /* reports its result, end of file releases it; -1 */
	int netns_errno;        /* why it could not be started, 0 */

	/* The spare mini-init (payload.c, "the spare"), os mode only. */
	int spare_on;           /* spares are made (set by INIT) */
	int spare_pause;        /* making one failed, or one died unused: none before the next EXEC */
	pid_t spare;            /* the prepared mini-init, 0: none */
	int spare_ready;        /* its ready came with its last status (MBX_XS_READY) */
	uint64_t idle_us;       /* since when a spare could be made, 0: not idle */
	int spare_sock;         /* the agent's end of its socketpair, -1 */
	uint64_t spare_gen;     /* counts discards: a mini-init prepared before the last one is not kept */
	/* Direct executes (proto.h, MBX_FEAT_DIRECT): a socket the host lent
	 * (MBX_MSG_SPARE) for the next spare, which then serves the host on it. */
	int lend_sock;          /* lent, no spare on it yet; -1 */
	uint32_t lend_id;       /* the MBX_MSG_SPARE's id */
	pid_t lent;             /* the spare serving the host, 0: none */
	uint32_t lent_id;       /* its MBX_MSG_SPARE's id (KILL with it kills it) */
	uint64_t execs;         /* executes since INIT or the last RESET (recycling starts at the second) */
	/* The next execute's pipes, made after an EXIT or the READY
	 * (agent_pipes_ahead), os mode only: a pair is -1 when not made, or
	 * taken by an execute that needed it. */
	struct agent_pipes next_pipes;
	int pipes_pause;        /* making them failed: not again before the next EXEC */

	/* Copy-on-write fork (layers.c), os mode only. */
	struct agent_layers *cow; /* NULL: no storage tmpfs to share */
	struct mbx_wbuf ll_frame; /* the Landlock paths of INIT (a frame), empty: none */
};

/* What INIT asks of a guest beyond the os mode's layers. */
struct agent_guest_init {
	uint64_t disk;          /* MBX_F_DISK, 0: not given */
	const uint8_t *seed;    /* MBX_F_SEED (borrowed from the frame), or NULL */
	uint32_t seed_len;
	uint32_t max_procs;     /* MBX_F_MAX_PROCS, 0: not given */
	const uint8_t *ca;      /* MBX_F_NET_CA (borrowed), or NULL */
	uint32_t ca_len;
};

/* agent.c */
void agent_send_error(struct agent_state *st, uint32_t id, int code, int errnum, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Writes as much queued output as the channel takes; with `block` waits
 * until everything is written. Returns -1 when the host is gone. */
int agent_flush(struct agent_state *st, int block);
/* Reads from the channel into buf, collecting passed descriptors into
 * st->fds. Returns what read(2) would. */
ssize_t agent_recv(struct agent_state *st, void *buf, size_t len);
/* Closes the descriptors received so far. */
void agent_close_fds(struct agent_state *st);
/* Gives the message at stream offset st->in_next, `len` bytes long, the
 * descriptors that came with it (st->fds) and moves in_next past it. */
void agent_take_fds(struct agent_state *st, size_t len);
/* Appends the descriptors a received message carried (SCM_RIGHTS) to
 * fds[n, max), closing those beyond; returns the new count. */
size_t agent_cmsg_fds(struct msghdr *msg, int *fds, size_t n, size_t max);
uint64_t agent_now_ms(void);

/* layers.c: the storage tmpfs of INIT (opts: its mount options), mounted at
 * `path` in the scratch root; returns 0 or -1 with errno set. */
int agent_layers_storage(struct agent_state *st, const char *path, const char *opts);
/* layers.c: a directory `name` of the storage is bound at `dst`. */
int agent_layers_bound(struct agent_state *st, const char *name, const char *dst);
/* setup.c: builds the payloads' Landlock ruleset again from the paths of
 * INIT (after the overlays of a fork); 0, or -1 with the old one kept. */
int agent_landlock_refresh(struct agent_state *st);
/* layers.c: MBX_MSG_LAYERS. */
void agent_layers(struct agent_state *st, const struct mbx_frame *f);

/* setup.c: starts the helper that makes the sandbox's network namespace
 * while the agent does the rest (os mode, right after HELLO); a failure is kept
 * and reported by INIT, which cannot succeed without the namespace. */
void agent_netns_begin(struct agent_state *st);
/* setup.c: the INIT message. Returns 0 (READY sent) or -1 (ERROR sent). */
int agent_setup(struct agent_state *st, const struct mbx_frame *f);

/* payload.c: processes. */
void agent_exec(struct agent_state *st, const struct mbx_frame *f);
/* STDIN, STDIN_CLOSE, SIGNAL, KILL, RESIZE, CREDIT, DETACH, LIST. */
void agent_proc_message(struct agent_state *st, const struct mbx_frame *f);
/* Adds the fds of every process to the poll set; returns the count added.
 * *timeout_ms is lowered to the nearest deadline. */
size_t agent_proc_poll(struct agent_state *st, struct pollfd *p, size_t room, int *timeout_ms);
/* Handles what poll reported for the fds agent_proc_poll added, reaps
 * exited mini-inits (`sigchld`: SIGCHLD came since the last call),
 * enforces deadlines and sends EXIT for finished processes. */
void agent_proc_service(struct agent_state *st, const struct pollfd *p, size_t n, int sigchld);
void agent_proc_reap(struct agent_state *st);
/* Makes the next execute's pipes, when there are none (os mode); called
 * once an answer has gone out. */
void agent_pipes_ahead(struct agent_state *st);
/* Makes a spare mini-init once the agent has been idle (no process,
 * output written, spares on) for SPARE_IDLE_US; until then lowers
 * *timeout_ms to that moment. Nothing when it cannot. */
void agent_spare_make(struct agent_state *st, int *timeout_ms);
/* Kills and reaps the spare, if any: first thing of every request that
 * changes the mounts or the state a spare copied (RESET, LAYERS, IDENTITY). */
void agent_spare_discard(struct agent_state *st);
/* MBX_MSG_SPARE: takes the socket the host lends for the next spare
 * (proto.h, "direct executes"). */
void agent_spare_lend(struct agent_state *st, const struct mbx_frame *f);
/* Kills every process (shutdown). */
void agent_proc_kill_all(struct agent_state *st);
/* Forgets a process's record: closes its descriptors and frees it (the process is not signalled). */
void agent_proc_free(struct agent_state *st, struct agent_proc *p);

/* netmux.c: the guest's end of the network channel (MBX_INIT_NET_PROXY).
 * Start: 0, or -1 with ERROR sent. Poll: fills up to `cap` entries (it
 * needs AGENT_NET_POLL) and returns how many; service handles them. */
#define AGENT_NET_POLL (2 + 64)
struct pollfd;
int agent_net_start(struct agent_state *st);
size_t agent_net_poll(struct agent_state *st, struct pollfd *p, size_t cap);
void agent_net_service(struct agent_state *st, const struct pollfd *p, size_t n);
/* The network port waits for its host to come back (agent.c then wakes
 * every RESUME_POLL_MS to look). */
int agent_net_waiting(const struct agent_state *st);

/* guest.c: guest mode. */
/* Opens the virtio-serial port named `name` (looked for a few seconds);
 * the descriptor, or -1 with errno. */
int agent_guest_open_port(const char *name);
/* 1 when the agent is a guest's init: PID 1 with no fd 3. */
int agent_guest_detect(void);
/* Mounts, the channel as fd 3, the root, the wait for the host. Powers the
 * guest off when there is no channel to report on; a later failure is kept
 * in st->boot_* for agent_guest_failed. */
void agent_guest_boot(struct agent_state *st);
/* Whether the host's end of the port is connected now (POLLHUP clear). */
int agent_guest_host_connected(struct agent_state *st);
/* After HELLO: answers the host's first request with the boot failure,
 * then powers off. */
__attribute__((noreturn)) void agent_guest_failed(struct agent_state *st);
/* INIT's guest part (storage size, process limit, seed). 0, or -1 with
 * ERROR sent. */
int agent_guest_setup(struct agent_state *st, const struct agent_guest_init *g);
/* Kills everything, syncs, reboots (QEMU's -no-reboot ends the VM). */
__attribute__((noreturn)) void agent_guest_poweroff(void);
/* IDENTITY (proto.h): a restored clone's new entropy, name, clock and
 * machine id; its processes are detached. Answers OK or ERROR. */
void agent_guest_identity(struct agent_state *st, const struct mbx_frame *f);
/* Every process's output is discarded from now on (DETACH for all). */
void agent_proc_detach_all(struct agent_state *st);

/* reset.c: RESET (proto.h): OK, or ERROR when the sandbox must not be reused. */
void agent_reset(struct agent_state *st, const struct mbx_frame *f);

/* files.c: FILE messages. */
void agent_file(struct agent_state *st, const struct mbx_frame *f);
