/* SPDX-License-Identifier: Apache-2.0 */
/* The network policies of the os backend (see netns.c). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

/* Creates a TCP listener on 127.0.0.1:port inside the network namespace of
 * the sandbox whose agent is `agent`, through a helper process that joins
 * the sandbox's user and network namespaces. *out is owned by the caller. */
int mbx__netns_listen(pid_t agent, uint16_t port, int *out, mbx_error **err);

/* A running pasta attached to a sandbox (it daemonizes: not our child). */
struct mbx_pasta {
	pid_t pid;
	int pidfd; /* owned, or -1 */
};

/* Starts pasta for the sandbox of `agent`, its pid file in `statedir`.
 * `map_host_loopback` lets the gateway address reach the host's loopback.
 * MBX_ENOTSUP (layer "network") when pasta is missing or cannot work. */
int mbx__pasta_start(struct mbx_pasta *ps, pid_t agent, const char *statedir, int map_host_loopback, mbx_error **err);
void mbx__pasta_stop(struct mbx_pasta *ps);

/* With extra CAs: writes the host's bundle plus them to <statedir>/ca.pem
 * (0644, for the agent to copy into /etc); *path_out is malloc'd, NULL
 * without extra CAs. */
int mbx__linux_write_ca(const mbx_config *cfg, const char *statedir, char **path_out, mbx_error **err);

/* The network of one os sandbox, by policy. */
struct mbx_linux_net {
	struct mbx_netproxy *proxy; /* allow-domains, or NULL */
	struct mbx_pasta pasta;     /* allow-all */
};

#define MBX_LINUX_NET_INIT { NULL, { -1, -1 } }

/* 1 when the network of `cfg` keeps files in the sandbox's state directory
 * (the CA bundle the agent copies, pasta's pid file); 0: the sandbox needs
 * only a lock file (statedir.h). */
int mbx__linux_net_needs_statedir(const mbx_config *cfg);
/* Before the agent starts: the environment, and the certificate bundle
 * copied into /etc by the mount plan. */
struct mbx_mountplan;
int mbx__linux_net_prepare(mbx_sandbox *sb, const char *statedir, struct mbx_mountplan *plan, mbx_error **err);
/* Once the agent set the sandbox up: the proxy listener or pasta. */
int mbx__linux_net_start(struct mbx_linux_net *n, mbx_sandbox *sb, pid_t agent, const char *statedir, mbx_error **err);
/* Stops the proxy (cutting its connections) and pasta; idempotent. */
void mbx__linux_net_stop(struct mbx_linux_net *n);

/* Kills the pasta a dead sandbox left running (its pid file in `dir`). */
void mbx__pasta_collect(const char *dir);
