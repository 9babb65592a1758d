/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP API of `mimobox serve` (docs/server.md): a table of sandboxes
 * behind libmicrohttpd, JSON through json-c. cmd_serve.c makes the
 * listening socket, the token and the signal handling; this part serves.
 */
#ifndef MBX_CLI_SERVE_H
#define MBX_CLI_SERVE_H

#include <stddef.h>

struct serve_server;

struct serve_config {
	int listen_fd;		/* a bound, listening socket; the server owns it from serve_start() on */
	int is_unix;		/* 1: callers of another uid are refused (SO_PEERCRED) */
	const char *token;	/* NULL, or the bearer token every request needs (copied) */
	unsigned pool_size;	/* ready sandboxes per configuration for POST /v1/run; 0: none */
};

/* Most connections served at once. */
#define SERVE_MAX_CONNECTIONS 256u
/* Seconds a connection may stay idle (no bytes either way) before it is closed. */
#define SERVE_IDLE_TIMEOUT_S 60u
/* Largest JSON request body, and largest file upload. */
#define SERVE_JSON_MAX ((size_t)1 << 20)
#define SERVE_FILE_MAX ((size_t)16 << 20)

/*
 * Starts serving on cfg->listen_fd with threads of its own. Returns the
 * server, or NULL with the reason in `why` (the socket is then closed).
 */
struct serve_server *serve_start(const struct serve_config *cfg, char *why, size_t whylen);

/*
 * Stops accepting, destroys every sandbox the server made (waiting for the
 * calls running in them to end), closes every connection and frees the
 * server. Returns how many sandboxes it destroyed.
 */
size_t serve_stop(struct serve_server *s);

#endif /* MBX_CLI_SERVE_H */
