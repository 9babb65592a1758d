/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP API of `mimobox serve` (docs/server.md): a table of sandboxes
 * behind libmicrohttpd, JSON through json-c. cmd_serve.c makes the
 * listening socket, the token and the signal handling; this part serves.
 */
#ifndef MBX_CLI_SERVE_H
#define MBX_CLI_SERVE_H

#include <stddef.h>
#include <stdint.h>

struct serve_server;

/* A client of a TCP server: a name (for quotas and metrics) and its bearer token. */
struct serve_client {
	const char *name;
	const char *token;
};

struct serve_config {
	int listen_fd;		/* a bound, listening socket; the server owns it from serve_start() on */
	int is_unix;		/* 1: callers of another uid are refused (SO_PEERCRED) */
	/* TCP: the clients (copied); every request needs one's token. Unix: none
	 * (the one client is the server's own uid). */
	const struct serve_client *clients;
	size_t n_clients;
	unsigned pool_size;	/* ready sandboxes per configuration for POST /v1/run; 0: none */
	uint64_t pool_idle_ms;	/* a pool without a run for this long is freed; 0: never */
	unsigned max_sandboxes;	/* live sandboxes of the whole server; 0: no cap */
	unsigned quota_sandboxes;	/* per client; 0: none */
	uint64_t quota_memory_mb;	/* per client, the sum of memory_mb; 0: none */
	uint32_t quota_millicpus;	/* per client, the sum of cpus (thousandths); 0: none */
	uint64_t quota_disk_mb;		/* per client, the sum of disk_mb; 0: none */
	uint64_t quota_procs;		/* per client, the sum of max_procs; 0: none */
	unsigned quota_snapshots;	/* per client, snapshots kept; 0: none */
	unsigned max_snapshots;		/* snapshots kept at once */
	uint64_t max_snapshot_bytes;	/* their sizes added up; also the largest upload */
	uint64_t ws_ping_ms;		/* a terminal's WebSocket quiet this long is pinged; 0: never */
	uint64_t request_timeout_ms;	/* a request's head within this, its body at SERVE_MIN_BODY_RATE; 0: no limit */
};

/* Name and token of a client: names are 1 to 32 of [A-Za-z0-9_.-]. */
#define SERVE_CLIENT_NAME_MAX 32u
#define SERVE_MAX_CLIENTS 64u

/* Most connections served at once, and from one address over TCP. */
#define SERVE_MAX_CONNECTIONS 256u
#define SERVE_MAX_PER_ADDRESS 64u
/* Seconds a connection may stay idle (no bytes either way) before it is closed. */
#define SERVE_IDLE_TIMEOUT_S 60u
/* Bytes per second a request body must average once request_timeout_ms has passed. */
#define SERVE_MIN_BODY_RATE ((uint64_t)16 << 10)
/* Largest JSON request body, and largest file upload. */
#define SERVE_JSON_MAX ((size_t)1 << 20)
#define SERVE_FILE_MAX ((size_t)16 << 20)

/*
 * Starts serving on cfg->listen_fd with threads of its own. Returns the
 * server, or NULL with the reason in `why` (the socket is then closed).
 */
struct serve_server *serve_start(const struct serve_config *cfg, char *why, size_t whylen);

/*
 * Puts the server in draining mode (SIGUSR1 of `mimobox serve`): from now on
 * it refuses to make sandboxes (create, run, fork, restore: 503) and its
 * health check answers 503 with "draining": true, while every call on the
 * sandboxes it has goes on. There is no way back: stop it once it is empty.
 */
void serve_drain(struct serve_server *s);

/*
 * Stops accepting, destroys every sandbox the server made (waiting for the
 * calls running in them to end), closes every connection and frees the
 * server. Returns how many sandboxes it destroyed.
 */
size_t serve_stop(struct serve_server *s);

#endif /* MBX_CLI_SERVE_H */
