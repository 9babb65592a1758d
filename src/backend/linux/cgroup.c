/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource limits through a fallback ladder: cgroup v2, then cgroup v1, then
 * rlimits (applied by the agent). Mounts come from /proc/self/mountinfo and
 * the caller's cgroup from /proc/self/cgroup, never from hard-coded paths:
 * hosts differ (systemd user slices with delegated v2 controllers, hybrid
 * layouts with every controller bound to a v1 hierarchy, containers).
 *
 * Layout. v2: <base>/mimobox/mimobox-<id>, where <base> is the caller's own
 * cgroup or its parent; the sandbox sits in a leaf because a v2 cgroup with
 * controllers enabled for its children may not hold processes itself.
 * v1: <hierarchy>/mimobox/<id> in the memory, pids and cpu hierarchies.
 *
 * A rung is used only when every requested limit can be set on it; a rung
 * that fails half-way removes the directories it made.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error-internal.h"
#include "backend/linux/cgroup.h"
#include "platform/linux/syscalls.h"

#define CG_PERIOD_US    100000ULL
#define CG_MIN_QUOTA_US 1000ULL
#define CG_WAIT_MS      2000U
#define CG_READ_MAX     (16U << 20)
#define CG_GROUP        "mimobox"
#define CG_WHY_LEN      1024

/* Order of struct mbx_cgroup.v1_dir. */
static const char *const ctl_names[3] = { "memory", "pids", "cpu" };

/* State of one attempt at a rung. */
struct cg_try {
	const struct mbx_limits *lim;
	int want_cpu;
	char why[CG_WHY_LEN];
	/* v2: the directory whose cgroup.subtree_control we changed, and what
	 * we enabled there ("+memory +pids "), so that the probe can undo it. */
	char base[PATH_MAX];
	char enabled[64];
	/* /proc/self/mountinfo read once for all the hierarchies one creation
	 * looks up (NULL: read it at every look-up). */
	char **mountinfo;
};

const char *mbx__limits_mech_name(enum mbx_limits_mech mech)
{
	switch (mech) {
	case MBX_LIMITS_CGROUP_V2: return "cgroup-v2";
	case MBX_LIMITS_CGROUP_V1: return "cgroup-v1";
	case MBX_LIMITS_RLIMIT: return "rlimit";
	case MBX_LIMITS_NONE: return "none";
	default: return "none";
	}
}

static void MBX_PRINTF(3, 4) say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* snprintf into a path buffer; -ENAMETOOLONG when it does not fit. */
static int MBX_PRINTF(3, 4) path_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* -errno of the last failed call, never 0 (callers test for < 0). */
static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Reads a whole (pseudo-)file into a malloc'd NUL-terminated string.
 * Returns 0 or -errno (-ENOMEM, -EFBIG beyond CG_READ_MAX). */
static int read_text(const char *path, char **out)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return neg_errno();
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nbuf;

			if (ncap > CG_READ_MAX) {
				close(fd);
				free(buf);
				return -EFBIG;
			}
			nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				close(fd);
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = MBX_RETRY_EINTR(read(fd, buf + len, cap - len - 1));
		if (n < 0) {
			int e = neg_errno();

			close(fd);
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* Writes `s` to an existing cgroup file in one write(2), as the kernel
 * wants. Returns 0 or -errno (the kernel reports a refused value on write). */
static int write_text(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, e;

	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return neg_errno();
	n = MBX_RETRY_EINTR(write(fd, s, len));
	e = neg_errno();
	close(fd);
	if (n < 0)
		return e;
	return (size_t)n == len ? 0 : -EIO;
}

static int write_at(const char *dir, const char *file, const char *s)
{
	char path[PATH_MAX];
	int rc = path_fmt(path, sizeof(path), "%s/%s", dir, file);

	return rc < 0 ? rc : write_text(path, s);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- pure helpers ---- */

/* Cuts the next space-separated field out of *p (NUL-terminating it). */
static char *next_field(char **p)
{
	char *s = *p, *start;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '\n')
		return NULL;
	start = s;
	while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n')
		s++;
	if (*s == '\n')
		*s = '\0'; /* the line ends here: the next call finds nothing */
	else if (*s != '\0')
		*s++ = '\0';
	*p = s;
	return start;
}

/* Undoes the \ooo escapes the kernel puts in mountinfo paths, in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

int mbx__mountinfo_parse_line(char *line, struct mbx_mountinfo *out)
{
	char *p = line, *f;
	int i;

	memset(out, 0, sizeof(*out));
	/* mount id, parent id, major:minor */
	for (i = 0; i < 3; i++)
		if (next_field(&p) == NULL)
			return -1;
	out->root = next_field(&p);
	out->mountpoint = next_field(&p);
	if (out->root == NULL || out->mountpoint == NULL || next_field(&p) == NULL)
		return -1;
	/* optional fields, up to the "-" separator */
	for (;;) {
		f = next_field(&p);
		if (f == NULL)
			return -1;
		if (strcmp(f, "-") == 0)
			break;
	}
	out->fstype = next_field(&p);
	out->source = next_field(&p);
	out->super_opts = next_field(&p);
	if (out->fstype == NULL || out->source == NULL || out->super_opts == NULL)
		return -1;
	unescape_octal(out->root);
	unescape_octal(out->mountpoint);
	return 0;
}

int mbx__cgroup_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	if (list == NULL || n == 0)
		return 0;
	while (*p != '\0') {
		size_t k = strcspn(p, ", \t\n");

		if (k == n && memcmp(p, name, n) == 0)
			return 1;
		p += k;
		if (*p != '\0')
			p++;
	}
	return 0;
}

static int copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}

int mbx__cgroup_find_mount(const char *mountinfo, const char *controller, char *mnt, size_t mntlen,
			   char *root, size_t rootlen)
{
	char *copy, *line, *next;
	int rc = -ENOENT;

	copy = strdup(mountinfo);
	if (copy == NULL)
		return -ENOMEM;
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		struct mbx_mountinfo mi;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (mbx__mountinfo_parse_line(line, &mi) < 0)
			continue;
		if (controller == NULL) {
			if (strcmp(mi.fstype, "cgroup2") != 0)
				continue;
		} else if (strcmp(mi.fstype, "cgroup") != 0 || !mbx__cgroup_list_has(mi.super_opts, controller)) {
			continue;
		}
		rc = copy_str(mnt, mntlen, mi.mountpoint);
		if (rc == 0)
			rc = copy_str(root, rootlen, mi.root);
		break;
	}
	free(copy);
	return rc;
}

int mbx__cgroup_find_own(const char *proc_cgroup, const char *controller, char *out, size_t len)
{
	const char *line = proc_cgroup;

	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *c1 = strchr(line, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		size_t llen = eol ? (size_t)(eol - line) : strlen(line);

		if (c1 != NULL && c2 != NULL && c2 < line + llen) {
			size_t clen = (size_t)(c2 - c1 - 1);
			int match;

			if (controller == NULL) {
				match = c1 - line == 1 && line[0] == '0' && clen == 0;
			} else {
				char ctl[256];

				match = 0;
				if (clen < sizeof(ctl)) {
					memcpy(ctl, c1 + 1, clen);
					ctl[clen] = '\0';
					match = mbx__cgroup_list_has(ctl, controller);
				}
			}
			if (match) {
				size_t plen = llen - (size_t)(c2 + 1 - line);

				if (plen == 0)
					return -ENOENT;
				if (plen >= len)
					return -ENAMETOOLONG;
				memcpy(out, c2 + 1, plen);
				out[plen] = '\0';
				return 0;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

/* 1 when path has a ".." component. */
static int has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, "..")) != NULL) {
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
		p += 2;
	}
	return 0;
}

int mbx__cgroup_join(const char *mnt, const char *root, const char *own, char *out, size_t len)
{
	const char *rel = own;
	size_t rl = strlen(root);

	if (own[0] != '/' || has_dotdot(own))
		return -ENOENT;
	if (strcmp(root, "/") != 0) {
		if (strncmp(own, root, rl) != 0 || (own[rl] != '\0' && own[rl] != '/'))
			return -ENOENT;
		rel = own + rl;
	}
	if (rel[0] == '\0' || strcmp(rel, "/") == 0)
		return copy_str(out, len, mnt);
	/* a mount point of "/" would give "//x" */
	return path_fmt(out, len, "%s%s", strcmp(mnt, "/") == 0 ? "" : mnt, rel);
}

int mbx__cgroup_parse_key(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line != NULL && *line != '\0') {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			const char *v = line + klen + 1;
			char *end;
			unsigned long long n;

			if (*v < '0' || *v > '9')
				return -1;
			errno = 0;
			n = strtoull(v, &end, 10);
			if (errno != 0 || (*end != '\0' && *end != '\n'))
				return -1;
			*out = n;
			return 0;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -1;
}

uint64_t mbx__cgroup_cpu_quota_us(uint32_t millicpus)
{
	uint64_t q = (uint64_t)millicpus * CG_PERIOD_US / 1000;

	return q < CG_MIN_QUOTA_US ? CG_MIN_QUOTA_US : q;
}

int mbx__cgroup_cpu_max(uint32_t millicpus, char *buf, size_t len)
{
	int n;

	if (millicpus == 0)
		n = snprintf(buf, len, "max %llu", CG_PERIOD_US);
	else
		n = snprintf(buf, len, "%llu %llu", (unsigned long long)mbx__cgroup_cpu_quota_us(millicpus),
			     CG_PERIOD_US);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* ---- shared steps ---- */

/* A sandbox id becomes a directory name: keep it to [A-Za-z0-9_.-]. */
static int id_ok(const char *id)
{
	size_t i, n;

	if (id == NULL)
		return 0;
	n = strlen(id);
	if (n == 0 || n > 64 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Reads /proc/self/mountinfo and finds a mount (see mbx__cgroup_find_mount).
 * Returns 0, 1 with t->why set, or MBX_ENOMEM. */
static int locate_mount(struct cg_try *t, const char *controller, char *mnt, char *root)
{
	char *mi = t->mountinfo ? *t->mountinfo : NULL;
	int rc = 0;

	if (mi == NULL)
		rc = read_text("/proc/self/mountinfo", &mi);
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc < 0) {
		say(t->why, sizeof(t->why), "cannot read /proc/self/mountinfo (%s)", strerror(-rc));
		return 1;
	}
	rc = mbx__cgroup_find_mount(mi, controller, mnt, PATH_MAX, root, PATH_MAX);
	if (t->mountinfo)
		*t->mountinfo = mi;
	else
		free(mi);
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc < 0) {
		if (controller == NULL)
			say(t->why, sizeof(t->why), "no cgroup2 filesystem mounted");
		else
			say(t->why, sizeof(t->why), "no %s hierarchy mounted", controller);
		return 1;
	}
	return 0;
}

/* Removes `dir`, then its parent when that is our shared "mimobox" group and
 * is empty (the kernel refuses with EBUSY/ENOTEMPTY while other sandboxes
 * live there, which is what we want). */
static void remove_dir_and_group(const char *dir)
{
	char parent[PATH_MAX];
	char *slash;

	rmdir(dir);
	if (copy_str(parent, sizeof(parent), dir) < 0)
		return;
	slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent)
		return;
	*slash = '\0';
	slash = strrchr(parent, '/');
	if (slash != NULL && strcmp(slash + 1, CG_GROUP) == 0)
		rmdir(parent);
}

/*
 * Makes <group>/<leaf>, creating <group> when needed and calling `prep` on it
 * (v2 enables controllers there). Another sandbox's teardown may remove an
 * empty group between our mkdir calls, so ENOENT is retried a few times.
 * Returns 0 or -errno; *failed_at names the directory that failed.
 */
static int make_leaf(const char *group, const char *leaf, int (*prep)(const char *group, struct cg_try *t),
		     struct cg_try *t, const char **failed_at)
{
	int attempt, rc;

	for (attempt = 0; attempt < 5; attempt++) {
		*failed_at = group;
		if (mkdir(group, 0755) < 0 && errno != EEXIST)
			return neg_errno();
		if (prep != NULL) {
			rc = prep(group, t);
			if (rc == -ENOENT)
				continue;
			if (rc < 0) {
				rmdir(group);
				return rc;
			}
		}
		*failed_at = leaf;
		if (mkdir(leaf, 0755) == 0)
			return 0;
		rc = neg_errno();
		if (rc == -ENOENT)
			continue;
		if (rc != -EEXIST)
			rmdir(group);
		return rc;
	}
	return -ENOENT;
}

/* ---- cgroup v2 ---- */

/* Controllers the sandbox needs: the first 2 or all 3 of ctl_names. */
static int v2_nctl(const struct cg_try *t)
{
	return t->want_cpu ? 3 : 2;
}

/*
 * Enables the controllers the sandbox needs in dir/cgroup.subtree_control,
 * in one write. `added` (may be NULL) receives what was enabled. Returns 0
 * or -errno (EBUSY: dir holds processes, the "no internal processes" rule).
 */
static int v2_enable(const char *dir, const struct cg_try *t, char *added, size_t addedlen)
{
	char path[PATH_MAX], req[64] = "";
	char *cur = NULL;
	int i, rc;

	if (added != NULL && addedlen > 0)
		added[0] = '\0';
	rc = path_fmt(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (rc < 0)
		return rc;
	rc = read_text(path, &cur);
	if (rc < 0)
		return rc;
	for (i = 0; i < v2_nctl(t); i++) {
		if (!mbx__cgroup_list_has(cur, ctl_names[i])) {
			strcat(req, "+");
			strcat(req, ctl_names[i]);
			strcat(req, " ");
		}
	}
	free(cur);
	if (req[0] == '\0')
		return 0;
	rc = write_text(path, req);
	if (rc == 0 && added != NULL)
		snprintf(added, addedlen, "%s", req);
	return rc;
}

static int v2_prep_group(const char *group, struct cg_try *t)
{
	return v2_enable(group, t, NULL, 0);
}

/* Writes the limits into a v2 leaf. Returns 0, or 1 with t->why set. */
static int v2_write_limits(struct cg_try *t, const char *leaf)
{
	const struct mbx_limits *lim = t->lim;
	char val[64];
	const char *file;
	int rc;

	file = "memory.max";
	if (lim->memory_bytes)
		snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory_bytes);
	else
		snprintf(val, sizeof(val), "max");
	rc = write_at(leaf, file, val);
	if (rc == 0 && lim->memory_bytes) {
		/* Without this, swap would let the payload exceed its limit. The
		 * file is absent when swap accounting is off. */
		file = "memory.swap.max";
		rc = write_at(leaf, file, "0");
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc == 0) {
		file = "pids.max";
		if (lim->max_procs)
			snprintf(val, sizeof(val), "%u", lim->max_procs);
		else
			snprintf(val, sizeof(val), "max");
		rc = write_at(leaf, file, val);
	}
	if (rc == 0 && t->want_cpu) {
		file = "cpu.max";
		mbx__cgroup_cpu_max(lim->millicpus, val, sizeof(val));
		rc = write_at(leaf, file, val);
	}
	if (rc < 0) {
		say(t->why, sizeof(t->why), "cannot write %s/%s (%s)", leaf, file, strerror(-rc));
		return 1;
	}
	return 0;
}

/*
 * Tries to put the sandbox under `base`: the controllers must be available
 * there (cgroup.controllers), base must be writable, and they must be (or
 * become) enabled in base's cgroup.subtree_control. Returns 0 (cg->v2_dir
 * set), 1 with `why` set, or MBX_ENOMEM.
 */
static int v2_try_base(struct cg_try *t, const char *base, const char *id, struct mbx_cgroup *cg, char *why,
		       size_t whylen)
{
	char path[PATH_MAX], group[PATH_MAX], leaf[PATH_MAX], missing[64] = "";
	const char *failed_at;
	char *text = NULL;
	int i, rc, nctl = v2_nctl(t);

	if (path_fmt(path, sizeof(path), "%s/cgroup.controllers", base) < 0 ||
	    path_fmt(group, sizeof(group), "%s/" CG_GROUP, base) < 0 ||
	    path_fmt(leaf, sizeof(leaf), "%s/" CG_GROUP "-%s", group, id) < 0) {
		say(why, whylen, "path too long under %s", base);
		return 1;
	}
	rc = read_text(path, &text);
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc < 0) {
		say(why, whylen, "cannot read %s (%s)", path, strerror(-rc));
		return 1;
	}
	for (i = 0; i < nctl && i < 3; i++) {
		if (!mbx__cgroup_list_has(text, ctl_names[i])) {
			if (missing[0] != '\0')
				strcat(missing, "/");
			strcat(missing, ctl_names[i]);
		}
	}
	free(text);
	if (missing[0] != '\0') {
		say(why, whylen, "no %s controller delegated at %s", missing, base);
		return 1;
	}
	if (faccessat(AT_FDCWD, base, W_OK, AT_EACCESS) < 0) {
		say(why, whylen, "%s not writable (%s)", base, strerror(errno));
		return 1;
	}
	rc = v2_enable(base, t, t->enabled, sizeof(t->enabled));
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc < 0) {
		say(why, whylen, "cannot enable the controllers in %s/cgroup.subtree_control (%s%s)", base,
		    strerror(-rc), rc == -EBUSY ? ": it holds processes" : "");
		return 1;
	}
	copy_str(t->base, sizeof(t->base), base);
	rc = make_leaf(group, leaf, v2_prep_group, t, &failed_at);
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc < 0) {
		say(why, whylen, "cannot create %s (%s)", failed_at, strerror(-rc));
		return 1;
	}
	if (v2_write_limits(t, leaf) != 0) {
		snprintf(why, whylen, "%s", t->why);
		remove_dir_and_group(leaf);
		return 1;
	}
	cg->v2_dir = strdup(leaf);
	if (cg->v2_dir == NULL) {
		remove_dir_and_group(leaf);
		return MBX_ENOMEM;
	}
	return 0;
}

/* The cgroup v2 rung: 0 (cg->v2_dir set), 1 with t->why set, or MBX_ENOMEM. */
static int v2_try(struct cg_try *t, struct mbx_cgroup *cg, const char *id)
{
	char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX] = "", self[PATH_MAX], parent[PATH_MAX];
	char why_self[CG_WHY_LEN], why_parent[CG_WHY_LEN];
	char *text = NULL, *slash;
	int rc;

	rc = locate_mount(t, NULL, mnt, root);
	if (rc != 0)
		return rc;
	rc = read_text("/proc/self/cgroup", &text);
	if (rc == -ENOMEM)
		return MBX_ENOMEM;
	if (rc == 0) {
		rc = mbx__cgroup_find_own(text, NULL, own, sizeof(own));
		free(text);
	}
	if (rc < 0) {
		say(t->why, sizeof(t->why), "no cgroup v2 entry for this process in /proc/self/cgroup");
		return 1;
	}
	if (mbx__cgroup_join(mnt, root, own, self, sizeof(self)) < 0) {
		say(t->why, sizeof(t->why), "own cgroup %s is not visible under %s", own, mnt);
		return 1;
	}
	rc = v2_try_base(t, self, id, cg, why_self, sizeof(why_self));
	if (rc != 1)
		return rc;
	/*
	 * Our own cgroup holds processes (us), so unless it is the root it
	 * cannot enable controllers for children. The usual delegated layout
	 * (systemd: a scope inside a user-owned slice) lets us use the parent.
	 */
	copy_str(parent, sizeof(parent), self);
	slash = strrchr(parent, '/');
	if (strcmp(self, mnt) == 0 || slash == NULL || (size_t)(slash - parent) < strlen(mnt)) {
		snprintf(t->why, sizeof(t->why), "%s", why_self);
		return 1;
	}
	*slash = '\0';
	rc = v2_try_base(t, parent, id, cg, why_parent, sizeof(why_parent));
	if (rc != 1)
		return rc;
	say(t->why, sizeof(t->why), "%s; parent: %s", why_self, why_parent);
	return 1;
}

/* ---- cgroup v1 ---- */

static void v1_release(struct mbx_cgroup *cg, int remove)
{
	int i, j;

	for (i = 0; i < 3; i++) {
		int dup = 0;

		if (cg->v1_dir[i] == NULL)
			continue;
		for (j = 0; j < i; j++)
			if (cg->v1_dir[j] != NULL && strcmp(cg->v1_dir[j], cg->v1_dir[i]) == 0)
				dup = 1;
		if (remove && !dup)
			remove_dir_and_group(cg->v1_dir[i]);
		free(cg->v1_dir[i]);
		cg->v1_dir[i] = NULL;
	}
}

/* Writes the limits into the v1 directories. Returns 0, or 1 with t->why. */
static int v1_write_limits(struct cg_try *t, struct mbx_cgroup *cg)
{
	const struct mbx_limits *lim = t->lim;
	const char *dir = cg->v1_dir[0], *file = "memory.limit_in_bytes";
	char val[64];
	int rc = 0;

	if (lim->memory_bytes) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory_bytes);
		rc = write_at(dir, file, val);
		if (rc == 0) {
			/* memory+swap at the same value: swap cannot extend the
			 * limit. Without swap accounting (no memsw files) or when
			 * the kernel refuses, at least stop this group swapping. */
			file = "memory.memsw.limit_in_bytes";
			rc = write_at(dir, file, val);
			if (rc == -ENOENT || rc == -EINVAL) {
				write_at(dir, "memory.swappiness", "0");
				rc = 0;
			}
		}
	}
	if (rc == 0) {
		dir = cg->v1_dir[1];
		file = "pids.max";
		if (lim->max_procs)
			snprintf(val, sizeof(val), "%u", lim->max_procs);
		else
			snprintf(val, sizeof(val), "max");
		rc = write_at(dir, file, val);
	}
	if (rc == 0 && t->want_cpu) {
		dir = cg->v1_dir[2];
		file = "cpu.cfs_period_us";
		snprintf(val, sizeof(val), "%llu", CG_PERIOD_US);
		rc = write_at(dir, file, val);
		if (rc == 0) {
			file = "cpu.cfs_quota_us";
			snprintf(val, sizeof(val), "%llu", (unsigned long long)mbx__cgroup_cpu_quota_us(lim->millicpus));
			rc = write_at(dir, file, val);
		}
	}
	if (rc < 0) {
		say(t->why, sizeof(t->why), "cannot write %s/%s (%s)", dir, file, strerror(-rc));
		return 1;
	}
	return 0;
}

/* The cgroup v1 rung: 0 (cg->v1_dir[] set), 1 with t->why, or MBX_ENOMEM. */
static int v1_try(struct cg_try *t, struct mbx_cgroup *cg, const char *id)
{
	char mnt[3][PATH_MAX], root[PATH_MAX], group[PATH_MAX], leaf[PATH_MAX];
	int n = t->want_cpu ? 3 : 2, i, j, rc;
	const char *failed_at;

	for (i = 0; i < n; i++) {
		rc = locate_mount(t, ctl_names[i], mnt[i], root);
		if (rc != 0)
			return rc;
	}
	for (i = 0; i < n; i++) {
		/* Controllers may share a hierarchy ("cpu,cpuacct", or all in
		 * one): then they share the directory. */
		for (j = 0; j < i; j++)
			if (strcmp(mnt[j], mnt[i]) == 0)
				break;
		if (j < i) {
			cg->v1_dir[i] = strdup(cg->v1_dir[j]);
			if (cg->v1_dir[i] == NULL)
				goto oom;
			continue;
		}
		if (path_fmt(group, sizeof(group), "%s/" CG_GROUP, mnt[i]) < 0 ||
		    path_fmt(leaf, sizeof(leaf), "%s/%s", group, id) < 0) {
			say(t->why, sizeof(t->why), "path too long under %s", mnt[i]);
			goto fail;
		}
		rc = make_leaf(group, leaf, NULL, t, &failed_at);
		if (rc < 0) {
			if (rc == -EACCES || rc == -EPERM || rc == -EROFS)
				say(t->why, sizeof(t->why), "%s not writable (%s)",
				    failed_at == group ? mnt[i] : group, strerror(-rc));
			else
				say(t->why, sizeof(t->why), "cannot create %s (%s)", failed_at, strerror(-rc));
			goto fail;
		}
		cg->v1_dir[i] = strdup(leaf);
		if (cg->v1_dir[i] == NULL) {
			remove_dir_and_group(leaf);
			goto oom;
		}
	}
	if (v1_write_limits(t, cg) != 0)
		goto fail;
	return 0;
fail:
	v1_release(cg, 1);
	return 1;
oom:
	v1_release(cg, 1);
	return MBX_ENOMEM;
}

/* ---- public (internal) API ---- */

static void oom_open(struct mbx_cgroup *cg);

int mbx__cgroup_create(struct mbx_cgroup *cg, const char *id, const struct mbx_limits *lim, char **why, mbx_error **err)
{
	static const struct mbx_limits none;
	struct cg_try t2, t1;
	char *mountinfo = NULL;
	int rc;

	if (why != NULL)
		*why = NULL;
	MBX_CHECK_ARG(cg != NULL, err);
	memset(cg, 0, sizeof(*cg));
	if (!id_ok(id))
		return mbx__error_set(err, MBX_EINVAL, 0, "cgroup", "invalid sandbox id `%s` for a cgroup name",
				      id ? id : "(null)");
	if (lim == NULL)
		lim = &none;

	memset(&t2, 0, sizeof(t2));
	t2.lim = lim;
	t2.want_cpu = lim->millicpus > 0;
	t2.mountinfo = &mountinfo;
	rc = v2_try(&t2, cg, id);
	if (rc == 0) {
		free(mountinfo);
		cg->mech = MBX_LIMITS_CGROUP_V2;
		oom_open(cg);
		return MBX_OK;
	}
	if (rc < 0) {
		free(mountinfo);
		return mbx__error_oom(err);
	}

	t1 = t2;
	t1.why[0] = '\0';
	rc = v1_try(&t1, cg, id);
	free(mountinfo);
	if (rc < 0)
		return mbx__error_oom(err);
	cg->mech = rc == 0 ? MBX_LIMITS_CGROUP_V1 : MBX_LIMITS_RLIMIT;
	if (rc == 0)
		oom_open(cg);
	if (why != NULL) {
		int n;

		if (rc == 0)
			n = asprintf(why, "cgroup v2: %s", t2.why);
		else
			n = asprintf(why, "cgroup v2: %s; cgroup v1: %s", t2.why, t1.why);
		if (n < 0) {
			*why = NULL;
			mbx__cgroup_destroy(cg);
			return mbx__error_oom(err);
		}
	}
	return MBX_OK;
}

/* Writes pid into dir/cgroup.procs (v1 also accepts `tasks`, which moves
 * one thread only: used when cgroup.procs is missing). */
static int attach_dir(const char *dir, pid_t pid, int v1, mbx_error **err)
{
	char val[32];
	int rc;

	snprintf(val, sizeof(val), "%d", (int)pid);
	rc = write_at(dir, "cgroup.procs", val);
	if (rc == -ENOENT && v1)
		rc = write_at(dir, "tasks", val);
	if (rc == 0)
		return MBX_OK;
	return mbx__error_set(err, (rc == -EACCES || rc == -EPERM) ? MBX_EPERM : MBX_ESYS, -rc, "cgroup",
			      "move pid %d into `%s`", (int)pid, dir);
}

/*
 * Moving a process between cgroups normally takes the global
 * cgroup_threadgroup_rwsem for writing, whose percpu down_write waits for an
 * RCU grace period: 5-20 ms on this kind of host, in a tenth or more of all
 * sandbox creations. A single-threaded process that moves itself through
 * the v1 `tasks` file ("0", one thread) skips that lock (kernel
 * cgroup_procs_write_start: no pid, no threadgroup). The file is opened
 * here, by the host, whose credentials the kernel checks for the write
 * (f_cred); the sandbox's first process writes "0" before it leaves the
 * host's identity. Duplicated hierarchies are opened once.
 */
int mbx__cgroup_open_self_join(const struct mbx_cgroup *cg, int fds[3], size_t *n, mbx_error **err)
{
	*n = 0;
	if (cg == NULL || cg->mech != MBX_LIMITS_CGROUP_V1)
		return MBX_OK;
	for (int i = 0; i < 3; i++) {
		char path[4200];
		int dup = 0;

		if (cg->v1_dir[i] == NULL)
			continue;
		for (int j = 0; j < i; j++)
			dup |= cg->v1_dir[j] != NULL && strcmp(cg->v1_dir[j], cg->v1_dir[i]) == 0;
		if (dup)
			continue;
		snprintf(path, sizeof(path), "%s/tasks", cg->v1_dir[i]);
		fds[*n] = open(path, O_WRONLY | O_CLOEXEC);
		if (fds[*n] < 0) {
			int e = errno;

			while (*n > 0)
				close(fds[--*n]);
			return mbx__error_set(err, MBX_ESYS, e, "limits", "open `%s`", path);
		}
		(*n)++;
	}
	return MBX_OK;
}

int mbx__cgroup_attach(const struct mbx_cgroup *cg, pid_t pid, mbx_error **err)
{
	int i, rc;

	MBX_CHECK_ARG(cg != NULL, err);
	MBX_CHECK_ARG(pid > 0, err);
	switch (cg->mech) {
	case MBX_LIMITS_CGROUP_V2:
		if (cg->v2_dir == NULL)
			return mbx__error_set(err, MBX_ESTATE, 0, "cgroup", "cgroup already destroyed");
		return attach_dir(cg->v2_dir, pid, 0, err);
	case MBX_LIMITS_CGROUP_V1:
		for (i = 0; i < 3; i++) {
			if (cg->v1_dir[i] == NULL)
				continue;
			rc = attach_dir(cg->v1_dir[i], pid, 1, err);
			if (rc != MBX_OK)
				return rc;
		}
		return MBX_OK;
	case MBX_LIMITS_NONE:
	case MBX_LIMITS_RLIMIT:
		return MBX_OK;
	default:
		return mbx__error_set(err, MBX_EINVAL, 0, "cgroup", "unknown limits mechanism %d", (int)cg->mech);
	}
}

/* The file that counts a cgroup's OOM kills, as dir/file; 0, or -1 when it has none. */
static int oom_file(const struct mbx_cgroup *cg, char *path, size_t len)
{
	if (cg->mech == MBX_LIMITS_CGROUP_V2 && cg->v2_dir != NULL)
		return path_fmt(path, len, "%s/memory.events", cg->v2_dir);
	if (cg->mech == MBX_LIMITS_CGROUP_V1 && cg->v1_dir[0] != NULL)
		return path_fmt(path, len, "%s/memory.oom_control", cg->v1_dir[0]);
	return -1;
}

/* Opens the OOM counter for mbx__cgroup_oom_kills; without it, each read opens the file. */
static void oom_open(struct mbx_cgroup *cg)
{
	char path[PATH_MAX];
	int fd;

	if (oom_file(cg, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	cg->oom_fd = fd;
	cg->has_oom_fd = 1;
}

uint64_t mbx__cgroup_oom_kills(const struct mbx_cgroup *cg)
{
	char path[PATH_MAX];
	char *text = NULL;
	uint64_t n = 0;

	if (cg == NULL)
		return 0;
	if (cg->has_oom_fd) {
		/* Both files are a few short lines: kernfs regenerates them at offset 0. */
		char buf[1024];
		ssize_t got = pread(cg->oom_fd, buf, sizeof(buf) - 1, 0);

		if (got <= 0)
			return 0;
		buf[got] = '\0';
		return mbx__cgroup_parse_key(buf, "oom_kill", &n) < 0 ? 0 : n;
	}
	if (oom_file(cg, path, sizeof(path)) < 0 || read_text(path, &text) < 0)
		return 0;
	if (mbx__cgroup_parse_key(text, "oom_kill", &n) < 0)
		n = 0;
	free(text);
	return n;
}

/*
 * SIGKILLs pid if it is still in the cgroup whose path ends in `tail`. The
 * pidfd pins the process, so a pid recycled since cgroup.procs was read is
 * never hit: if the pid was reused after pidfd_open, the membership check
 * looks at the new process and the signal goes to the old one (ESRCH).
 */
static void kill_member(pid_t pid, const char *tail)
{
	char path[64], *text = NULL, *line, *save = NULL;
	size_t tl = strlen(tail);
	int fd, member = 0;

	fd = mbx_sys_pidfd_open(pid, 0);
	if (fd < 0) {
		if (errno == ENOSYS) /* before Linux 5.3 */
			kill(pid, SIGKILL);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (read_text(path, &text) == 0) {
		for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
			size_t ll = strlen(line);

			if (ll > tl && line[ll - tl - 1] == '/' && strcmp(line + ll - tl, tail) == 0)
				member = 1;
		}
		free(text);
	}
	if (member)
		mbx_sys_pidfd_send_signal(fd, SIGKILL, NULL, 0);
	close(fd);
}

/*
 * Kills everything in a sandbox cgroup directory and removes it (and the
 * shared group above it when empty). v2 uses cgroup.kill (Linux 5.14), which
 * also catches processes forking meanwhile; otherwise each member gets
 * SIGKILL until cgroup.procs stays empty. Waits at most CG_WAIT_MS.
 */
static void teardown_dir(const char *dir, int v2)
{
	uint64_t deadline = now_ms() + CG_WAIT_MS;
	char procs[PATH_MAX], tail[PATH_MAX];
	const char *p;
	unsigned int nap = 1;
	int have_kill = 0, slashes = 0;

	/* The usual case, the agent reaped already: an empty cgroup, which
	 * rmdir removes (it refuses one with members, EBUSY). */
	if (rmdir(dir) == 0 || errno == ENOENT) {
		remove_dir_and_group(dir);
		return;
	}
	if (path_fmt(procs, sizeof(procs), "%s/cgroup.procs", dir) < 0)
		return;
	/* the last two components, "mimobox/<leaf>" */
	for (p = dir + strlen(dir); p > dir; p--)
		if (p[-1] == '/' && ++slashes == 2)
			break;
	copy_str(tail, sizeof(tail), p);
	if (v2)
		have_kill = write_at(dir, "cgroup.kill", "1") == 0;
	for (;;) {
		char *text = NULL, *line, *save = NULL;
		int rc = read_text(procs, &text), any = 0;

		if (rc == -ENOENT)
			return; /* already gone */
		if (rc < 0)
			break;
		for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
			long pid = strtol(line, NULL, 10);

			if (pid <= 0)
				continue;
			any = 1;
			if (!have_kill)
				kill_member((pid_t)pid, tail);
		}
		free(text);
		if (!any || now_ms() >= deadline)
			break;
		sleep_ms(nap);
		if (nap < 16)
			nap *= 2;
	}
	/* rmdir fails with EBUSY while the last members are still exiting */
	while (rmdir(dir) < 0 && errno == EBUSY && now_ms() < deadline)
		sleep_ms(2);
	remove_dir_and_group(dir);
}

void mbx__cgroup_destroy(struct mbx_cgroup *cg)
{
	int i, j;

	if (cg == NULL)
		return;
	if (cg->has_oom_fd) {
		close(cg->oom_fd);
		cg->has_oom_fd = 0;
	}
	if (cg->v2_dir != NULL) {
		teardown_dir(cg->v2_dir, 1);
		free(cg->v2_dir);
		cg->v2_dir = NULL;
	}
	for (i = 0; i < 3; i++) {
		if (cg->v1_dir[i] == NULL)
			continue;
		for (j = 0; j < i; j++)
			if (cg->v1_dir[j] != NULL && strcmp(cg->v1_dir[j], cg->v1_dir[i]) == 0)
				break;
		if (j == i)
			teardown_dir(cg->v1_dir[i], 0);
	}
	v1_release(cg, 0);
	cg->mech = MBX_LIMITS_NONE;
}

/* ---- probe ---- */

/* Undoes what a probe enabled in a parent's cgroup.subtree_control. */
static void v2_restore(const struct cg_try *t)
{
	char req[64];
	size_t i;

	if (t->enabled[0] == '\0' || t->base[0] == '\0')
		return;
	snprintf(req, sizeof(req), "%s", t->enabled);
	for (i = 0; req[i] != '\0'; i++)
		if (req[i] == '+')
			req[i] = '-';
	write_at(t->base, "cgroup.subtree_control", req);
}

/* The group directory (parent of the leaf) of a created cgroup dir. */
static void group_of(const char *dir, char *out, size_t len)
{
	const char *slash = strrchr(dir, '/');
	size_t n = slash ? (size_t)(slash - dir) : strlen(dir);

	if (n >= len)
		n = len - 1;
	memcpy(out, dir, n);
	out[n] = '\0';
}

/* One probe of one rung: 0 ok, 1 not usable (t->why), MBX_ENOMEM. *where
 * receives the group directory the limits went under. */
static int probe_rung(int v2, int want_cpu, char *why, size_t whylen, char *where, size_t wherelen)
{
	static unsigned int seq;
	struct mbx_limits lim = { 64ULL << 20, 16, 1000 };
	struct mbx_cgroup cg;
	struct cg_try t;
	char id[64];
	int rc;

	memset(&cg, 0, sizeof(cg));
	memset(&t, 0, sizeof(t));
	t.lim = &lim;
	t.want_cpu = want_cpu;
	snprintf(id, sizeof(id), "probe-%d-%u", (int)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	rc = v2 ? v2_try(&t, &cg, id) : v1_try(&t, &cg, id);
	if (rc == 0) {
		group_of(v2 ? cg.v2_dir : cg.v1_dir[0], where, wherelen);
		cg.mech = v2 ? MBX_LIMITS_CGROUP_V2 : MBX_LIMITS_CGROUP_V1;
		mbx__cgroup_destroy(&cg);
	}
	if (v2)
		v2_restore(&t);
	snprintf(why, whylen, "%s", t.why);
	return rc;
}

/* Probes one rung with and without cpu; fills *detail and *ok. */
static int probe_one(int v2, char **detail, int *ok)
{
	char why_cpu[CG_WHY_LEN], why[CG_WHY_LEN], where[PATH_MAX];
	int rc, n;

	*detail = NULL;
	*ok = 0;
	rc = probe_rung(v2, 1, why_cpu, sizeof(why_cpu), where, sizeof(where));
	if (rc < 0)
		return rc;
	if (rc == 0) {
		*ok = 1;
		n = asprintf(detail, "memory, pids and cpu limits under %s", where);
	} else {
		rc = probe_rung(v2, 0, why, sizeof(why), where, sizeof(where));
		if (rc < 0)
			return rc;
		if (rc == 0) {
			*ok = 2;
			n = asprintf(detail, "memory and pids limits under %s; no cpu quota: %s", where, why_cpu);
		} else {
			n = asprintf(detail, "%s", why);
		}
	}
	if (n < 0) {
		*detail = NULL;
		return MBX_ENOMEM;
	}
	return MBX_OK;
}

int mbx__cgroup_probe(char **detail_v2, char **detail_v1, int *v2_ok, int *v1_ok)
{
	int rc;

	*detail_v1 = NULL;
	rc = probe_one(1, detail_v2, v2_ok);
	if (rc == MBX_OK)
		rc = probe_one(0, detail_v1, v1_ok);
	if (rc != MBX_OK) {
		free(*detail_v2);
		free(*detail_v1);
		*detail_v2 = NULL;
		*detail_v1 = NULL;
		*v2_ok = 0;
		*v1_ok = 0;
		return MBX_ENOMEM;
	}
	return MBX_OK;
}
