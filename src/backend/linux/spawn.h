/* SPDX-License-Identifier: Apache-2.0 */
/* Starting the agent as PID 1 of fresh namespaces (see spawn.c). */
#pragma once

#include <sys/types.h>

#include "internal.h"
#include "cgroup.h"

struct mbx_spawn {
	/* in */
	uid_t map_uid;   /* host uid that becomes uid 0 inside */
	gid_t map_gid;
	int privileged;  /* the caller is root: setgroups allowed and cleared */
	const struct mbx_cgroup *cg;
	/* Called, when set, once the agent is released and while it sets up
	 * and execs: host work that does not depend on it overlaps with its
	 * start. An error from it ends the spawn (the agent is killed). */
	int (*meanwhile)(void *arg, mbx_error **err);
	void *meanwhile_arg;
	/* out */
	pid_t pid;
	int pidfd;       /* owned by the caller */
	int chan;        /* host end of the agent channel, owned by the caller */
};

/* Clones the agent into new user, pid, mount, net, ipc, uts and (after
 * joining the sandbox cgroup) cgroup namespaces and execs it. On failure
 * nothing is left running. */
int mbx__linux_spawn_agent(struct mbx_spawn *sp, mbx_error **err);

/* Kills and reaps the agent (and so every process of its pid namespace). */
void mbx__linux_kill_agent(pid_t pid, int pidfd);
