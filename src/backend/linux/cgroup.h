/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource limits of a sandbox through a fallback ladder: cgroup v2 when this
 * process's cgroup has the controllers delegated and writable, else cgroup v1
 * (memory, pids, cpu hierarchies), else rlimits applied by the agent to each
 * payload process.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <mbx/error.h>

struct mbx_limits {
	uint64_t memory_bytes; /* 0: none */
	uint32_t max_procs;    /* 0: none */
	uint32_t millicpus;    /* 0: no quota */
};

enum mbx_limits_mech {
	MBX_LIMITS_NONE = 0,
	MBX_LIMITS_CGROUP_V2 = 1,
	MBX_LIMITS_CGROUP_V1 = 2,
	MBX_LIMITS_RLIMIT = 3,
};

struct mbx_cgroup {
	enum mbx_limits_mech mech;
	char *v2_dir;   /* cgroup v2 directory of the sandbox, or NULL */
	char *v1_dir[3];/* memory, pids, cpu directories under cgroup v1, or NULL */
	/* memory.events (v2) or memory.oom_control (v1), open for pread: read
	 * before every execute, where an open of a cgroup file costs more than
	 * the read. Valid when has_oom_fd; mbx__cgroup_destroy closes it. */
	int oom_fd;
	int has_oom_fd;
};

/* Stable name of a mechanism: "cgroup-v2", "cgroup-v1", "rlimit", "none". */
const char *mbx__limits_mech_name(enum mbx_limits_mech mech);

/*
 * Creates the sandbox's cgroup on the highest rung that works and writes the
 * limits. When no cgroup rung works, returns MBX_OK with cg->mech set to
 * MBX_LIMITS_RLIMIT (the agent then applies rlimits). `why`, when not NULL,
 * receives a malloc'd sentence saying why the higher rungs were not used.
 */
int mbx__cgroup_create(struct mbx_cgroup *cg, const char *id, const struct mbx_limits *lim, char **why, mbx_error **err);

/*
 * cgroup v1 only: opens the `tasks` file of each of the sandbox's
 * hierarchies for the sandbox's first process to join by itself (writing
 * "0", see cgroup.c). Returns MBX_OK with *n = 0 for other mechanisms. The
 * caller closes the fds.
 */
int mbx__cgroup_open_self_join(const struct mbx_cgroup *cg, int fds[3], size_t *n, mbx_error **err);

/* Moves a process into the sandbox's cgroup(s). */
int mbx__cgroup_attach(const struct mbx_cgroup *cg, pid_t pid, mbx_error **err);

/* Number of OOM kills seen in the sandbox's memory cgroup so far (0 for rlimits). */
uint64_t mbx__cgroup_oom_kills(const struct mbx_cgroup *cg);

/* Kills what is left in the cgroup(s) and removes them. Safe to call twice
 * and on a zeroed struct. */
void mbx__cgroup_destroy(struct mbx_cgroup *cg);

/*
 * What each cgroup rung can do on this host for the calling user, for
 * `mimobox doctor`. Creates a test cgroup on each rung and removes it again
 * (controllers it had to enable in a parent's cgroup.subtree_control are
 * disabled again).
 *
 * *v2_ok and *v1_ok: 0 unusable, 1 memory, pids and cpu limits work, 2 memory
 * and pids work but cpu quotas do not. *detail_v2 and *detail_v1 receive
 * malloc'd sentences saying where the limits would go, or why the rung is not
 * usable. Returns MBX_OK, or MBX_ENOMEM (then both details are NULL).
 */
int mbx__cgroup_probe(char **detail_v2, char **detail_v1, int *v2_ok, int *v1_ok);

/* ---- pure parsing helpers, exposed for the unit tests ---- */

/* One line of /proc/self/mountinfo, split in place: the fields point into
 * the line given to mbx__mountinfo_parse_line(). */
struct mbx_mountinfo {
	char *root;       /* root of the mount within its filesystem */
	char *mountpoint; /* octal escapes (\040) undone */
	char *fstype;
	char *source;
	char *super_opts; /* e.g. "rw,memory" for a cgroup v1 hierarchy */
};

/* Splits one mountinfo line (a trailing newline is allowed). Returns 0, or -1
 * when the line is malformed. */
int mbx__mountinfo_parse_line(char *line, struct mbx_mountinfo *out);

/* 1 when `list`, separated by commas, spaces or newlines (mount options,
 * cgroup.controllers, cgroup.subtree_control), holds the token `name`. */
int mbx__cgroup_list_has(const char *list, const char *name);

/*
 * Finds a cgroup mount in the text of /proc/self/mountinfo: the first cgroup2
 * mount when `controller` is NULL, else the first cgroup v1 mount whose
 * options name that controller. Copies its mount point and root. Returns 0,
 * -ENOENT when there is none, -ENAMETOOLONG or -ENOMEM.
 */
int mbx__cgroup_find_mount(const char *mountinfo, const char *controller, char *mnt, size_t mntlen,
			   char *root, size_t rootlen);

/*
 * Finds this process's cgroup in the text of /proc/self/cgroup: the v2 line
 * "0::/path" when `controller` is NULL, else the v1 line listing that
 * controller ("4:memory:/path", "3:cpu,cpuacct:/path"). Returns 0, -ENOENT or
 * -ENAMETOOLONG.
 */
int mbx__cgroup_find_own(const char *proc_cgroup, const char *controller, char *out, size_t len);

/*
 * The directory of cgroup `own` (a path as in /proc/self/cgroup) under a
 * mount of that hierarchy whose root within the hierarchy is `root`.
 * Returns 0, -ENOENT when the cgroup is outside the mount (or has a ".."
 * component, as under a foreign cgroup namespace), -ENAMETOOLONG.
 */
int mbx__cgroup_join(const char *mnt, const char *root, const char *own, char *out, size_t len);

/* Reads the value of the line "key N" in a flat keyed file (memory.events,
 * memory.oom_control, cgroup.events). Returns 0, or -1 when absent. */
int mbx__cgroup_parse_key(const char *text, const char *key, uint64_t *out);

/* CPU quota in microseconds per 100000 us period for `millicpus` (1000 = one
 * CPU), at least the kernel's 1000 us minimum. */
uint64_t mbx__cgroup_cpu_quota_us(uint32_t millicpus);

/* Formats cgroup v2 cpu.max: "quota 100000", or "max 100000" for 0. Returns
 * 0, or -1 when buf is too small. */
int mbx__cgroup_cpu_max(uint32_t millicpus, char *buf, size_t len);
