/* SPDX-License-Identifier: Apache-2.0 */
/* Internal types shared by the core and the backends. Never installed. */
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <mbx/mbx.h>

#include "error-internal.h"

#define MBX_DEFAULT_TIMEOUT_MS 30000u
#define MBX_DEFAULT_MEMORY (512ull << 20)
#define MBX_DEFAULT_DISK (2048ull << 20)
#define MBX_MIN_DISK (1ull << 20)
#define MBX_MAX_DISK (1ull << 40)
#define MBX_DEFAULT_MAX_PROCS 64u
#define MBX_DEFAULT_OUTPUT_LIMIT (16ull << 20)
#define MBX_DEFAULT_WORKDIR "/workspace"
#define MBX_DEFAULT_HOSTNAME "mimobox"

/* A list of "NAME=value" strings in which a name appears at most once. */
struct mbx_env {
	char **kv;
	size_t n;
};

struct mbx_mount_spec {
	char *host;    /* absolute host path without symlinks or `..` */
	char *sandbox; /* normalised absolute sandbox path */
	uint32_t flags;
	dev_t dev;     /* what `host` was when the mount was added: creating */
	ino_t ino;     /* a sandbox fails if it is something else by then */
};

struct mbx_config {
	mbx_isolation_t isolation;
	mbx_trust_t trust;
	mbx_network_t network;
	char **domains;
	size_t ndomains;
	struct mbx_netcfg *net; /* network settings (src/net/netcfg.c); NULL: defaults; owned */
	uint64_t timeout_ms;
	uint64_t memory_bytes;
	uint64_t disk_bytes;   /* writable storage: size of the storage tmpfs */
	int disk_explicit;     /* disk_bytes came from mbx_config_set_disk_limit() */
	uint64_t output_limit;
	uint64_t file_limit;   /* 0: the default */
	uint32_t millicpus;
	uint32_t max_procs;
	struct mbx_env env;
	char *workdir;
	char *hostname;
	struct mbx_mount_spec *mounts;
	size_t nmounts;
	int allow_degraded;
	int vmm_seccomp;       /* internal (QEMU's jail): the MBX_SECCOMP_VMM program, not the trust level's */
	int vmm_kvm;           /* internal (QEMU's jail): the host's /dev/kvm bound into the view's /dev */
	mbx_log_level_t log_level;
	mbx_log_fn log_fn;
	void *log_userdata;
};

struct mbx_exec_options {
	struct mbx_env env;
	char *workdir;
	uint8_t *stdin_data;   /* NULL: no stdin */
	size_t stdin_len;
	uint64_t timeout_ms; /* 0: the sandbox's default */
	mbx_output_fn output_fn;
	void *output_userdata;
	int last;            /* mbx_exec_options_set_last() */
};

struct mbx_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

struct mbx_result {
	int exit_code;
	int signal;
	int timed_out;
	int oom_killed;
	struct mbx_buf out;
	struct mbx_buf err;
	int out_truncated;
	int err_truncated;
	uint64_t elapsed_us;
	uint64_t peak_memory;
	uint64_t cpu_us;
	mbx_isolation_t isolation;
	const char *limits_mech;    /* static */
	const char *limits_partial; /* static, or NULL */
	char *trap; /* Wasm trap message, or NULL; owned */
	uint32_t layers;  /* of the sandbox that ran it */
	uint32_t skipped;
	const char *skip_reason[32]; /* static strings, by bit of `skipped` */
};

/* One execute, fully resolved by the core: the backend needs nothing else. */
struct mbx_exec_req {
	char *const *argv;
	char *const *envp;     /* merged: baseline, config, call */
	const char *cwd;       /* absolute */
	uint64_t timeout_ms;
	uint64_t output_limit; /* per stream */
	mbx_output_fn output_fn;
	void *output_userdata;
	const uint8_t *stdin_data; /* NULL: empty stdin */
	size_t stdin_len;
	int last;              /* mbx_exec_options_set_last(), or mbx_run() */
};

struct mbx_backend_ops; /* src/backend/backend.h */

struct mbx_sandbox {
	char id[17];
	const struct mbx_backend_ops *ops;
	mbx_config *cfg; /* private copy */
	void *priv;      /* backend state */
	const struct mbx_snapshot *restoring; /* during ops->restore only: the snapshot */
	int destroyed;
	int oneshot;     /* made by mbx_run(): its one execute is the last */
	uint32_t layers;
	uint32_t skipped;
	const char *skip_reason[32]; /* why each bit of `skipped` was skipped; static strings */
	const char *limits_mech;
	const char *limits_partial; /* static text: what the limits do not bound, or NULL */
	struct mbx_net *net; /* network log (src/net/net.h); owned */
	mbx_process *procs;  /* live process handles (process.c) */
	unsigned uses;       /* times a pool handed it out (pool.c) */
	const void *pool;    /* the pool that handed it out, or NULL (pool.c) */
	int pool_discard;    /* given back to be destroyed by the pool's thread (pool.c) */
	/* The event descriptor (mbx_sandbox_event_fd) and its eventfd, kept
	 * from the destroy to mbx_sandbox_free() as documented, readable so
	 * that waiters wake up and meet MBX_ESTATE. Valid when ev_kept. */
	int ev_kept, ev_epfd, ev_evfd;

	/* Threads (see the top of src/core/sandbox.c): */
	pthread_mutex_t mu;  /* guards the agent channel, procs, calls, doomed, excl */
	pthread_cond_t cv;   /* an exclusive call (snapshot, fork) ended */
	unsigned calls;      /* calls inside mbx__sandbox_enter() now */
	int doomed;          /* the channel broke: destroyed when the last call leaves */
	int excl;            /* a snapshot or fork runs, holding mu: other threads' calls wait
	                      * (set and cleared under mu, read with __atomic_load_n by enter) */
	pthread_t excl_owner; /* its thread (written before excl is set) */
};

/*
 * Every public call on a sandbox with an agent channel, or on one of its
 * processes, runs between these two: enter takes the sandbox's lock (waiting
 * while another thread's snapshot or fork runs) and counts the call; leave
 * destroys a sandbox whose channel broke once no call is inside, and gives
 * the lock back. The client releases the lock while it sleeps
 * (src/backend/client.c).
 */
void mbx__sandbox_enter(mbx_sandbox *sb);
void mbx__sandbox_leave(mbx_sandbox *sb);
/* Starts and ends a call that needs the sandbox to itself (snapshot, fork):
 * MBX_ESTATE while other calls run; other threads' calls wait meanwhile. */
int mbx__sandbox_exclusive_begin(mbx_sandbox *sb, const char *what, mbx_error **err);
void mbx__sandbox_exclusive_end(mbx_sandbox *sb);
/* Whether the sandbox has an agent channel (calls on it take its lock). */
int mbx__sandbox_locks(const mbx_sandbox *sb);

/* Detaches the sandbox's live process handles before it is freed: later
 * calls on them answer MBX_ESTATE, mbx_process_free() only frees. */
void mbx__sandbox_orphan_processes(mbx_sandbox *sb);

/* ---- src/net: the network state of configs and sandboxes (net.h) ---- */
struct mbx_netcfg;
struct mbx_net;
int mbx__netcfg_dup(const struct mbx_netcfg *src, struct mbx_netcfg **out);
void mbx__netcfg_free(struct mbx_netcfg *n);
int mbx__net_new(struct mbx_net **out);
void mbx__net_free(struct mbx_net *n);
/* Whether an allow-list entry is valid: a host name, "*." and a name, or an IP literal. */
int mbx__net_allow_entry_ok(const char *entry);

/* ---- config.c ---- */
int mbx__config_copy(const mbx_config *src, mbx_config **out, mbx_error **err);
/* Inode limit of a sandbox's writable storage of `bytes`: one inode per
 * MBX_DISK_BYTES_PER_INODE, at least MBX_DISK_MIN_INODES. */
#define MBX_DISK_BYTES_PER_INODE (32u * 1024u)
#define MBX_DISK_MIN_INODES 1024u
uint64_t mbx__disk_inodes(uint64_t bytes);
/* Checks the whole config; names the first problem. */
int mbx__config_validate(const mbx_config *cfg, mbx_error **err);

/* ---- envcheck.c ---- */
void mbx__env_release(struct mbx_env *env);
int mbx__env_copy(struct mbx_env *dst, const struct mbx_env *src);
/* Validates the name and sets (replaces) the variable. */
int mbx__env_set(struct mbx_env *env, const char *name, const char *value, mbx_error **err);
int mbx__env_check_name(const char *name, mbx_error **err);
/* Builds the NULL-terminated environment of an execute: baseline, then cfg,
 * then call. The array and its strings are one allocation group freed with
 * mbx__strv_free(). */
int mbx__env_merge(const struct mbx_env *cfg, const struct mbx_env *call, char ***out, mbx_error **err);

/* ---- cmdline.c ---- */
/* Splits a command line with shell-like quoting into a NULL-terminated
 * vector (free with mbx__strv_free). */
int mbx__cmdline_split(const char *line, char ***out, mbx_error **err);

/* ---- util.c ---- */
void mbx__strv_free(char **v);
size_t mbx__strv_len(char *const *v);
char **mbx__strv_dup(const char *const *v);
/* Normalises an absolute path: collapses '//' and '.', refuses '..'.
 * Returns a malloc'd string or NULL (errno EINVAL or ENOMEM). */
char *mbx__path_normalize(const char *path);
int mbx__buf_append(struct mbx_buf *b, const void *data, size_t len);
/* Room for `len` more bytes (and the NUL kept after them) without moving. */
int mbx__buf_reserve(struct mbx_buf *b, size_t len);
void mbx__buf_release(struct mbx_buf *b);
uint64_t mbx__now_us(void);
int mbx__random_hex(char *out, size_t nbytes);
/* Sends a log message through the config's callback, if its level allows. */
void mbx__log(const mbx_config *cfg, mbx_log_level_t level, const char *fmt, ...) MBX_PRINTF(3, 4);
/* Recursively removes a directory tree without following symlinks. */
int mbx__rm_rf(const char *path);

/* ---- sandbox.c, for process.c and file.c ---- */
struct mbx_client;
/* The sandbox's agent channel, or an error (destroyed sandbox, a backend
 * without the capabilities `need`, MBX_BACKEND_CAP_* of backend/backend.h,
 * or without an agent). */
int mbx__sandbox_client(mbx_sandbox *sb, uint32_t need, const char *what, struct mbx_client **out, mbx_error **err);
/* After a failed call: when the channel broke, the sandbox is destroyed
 * (when the last call leaves, see mbx__sandbox_leave()) and the error says
 * so. Returns rc. */
int mbx__sandbox_after(mbx_sandbox *sb, struct mbx_client *c, int rc, mbx_error **err);
/* The environment of a call: baseline, config, then `call` (may be NULL). */
/* The bit index of a single-bit MBX_LAYER_* value, or -1. */
int mbx__layer_index(uint32_t layer);
/* Fills a result's layer fields from the sandbox that ran it. */
void mbx__sandbox_result_layers(const mbx_sandbox *sb, mbx_result *res);
int mbx__sandbox_env(mbx_sandbox *sb, const struct mbx_env *call, char ***out, mbx_error **err);
/* Internal spawn option: the program gets `fd` (the caller's, still the
 * caller's to close) as its descriptor 3. Only an os sandbox's channel
 * passes descriptors (QEMU's jail uses it for a snapshot's memory). */
void mbx__spawn_options_pass_fd(mbx_spawn_options *o, int fd);

/* The backends and their interface: src/backend/backend.h. */
