/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration objects and per-execute options: setters copy and check
 * their input, mbx__config_validate() checks the whole. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "proto.h"
#include "platform/linux/safeopen.h"

int mbx_config_new(mbx_config **out, mbx_error **err)
{
	mbx_config *cfg;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_config_new: out is NULL");
	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return mbx__error_oom(err);
	cfg->isolation = MBX_ISOLATION_AUTO;
	cfg->trust = MBX_TRUST_SEMI_TRUSTED;
	cfg->network = MBX_NETWORK_DENY_ALL;
	cfg->timeout_ms = MBX_DEFAULT_TIMEOUT_MS;
	cfg->memory_bytes = MBX_DEFAULT_MEMORY;
	cfg->disk_bytes = MBX_DEFAULT_DISK;
	cfg->max_procs = MBX_DEFAULT_MAX_PROCS;
	cfg->output_limit = MBX_DEFAULT_OUTPUT_LIMIT;
	cfg->workdir = strdup(MBX_DEFAULT_WORKDIR);
	cfg->hostname = strdup(MBX_DEFAULT_HOSTNAME);
	if (cfg->workdir == NULL || cfg->hostname == NULL) {
		mbx_config_free(cfg);
		return mbx__error_oom(err);
	}
	*out = cfg;
	return MBX_OK;
}

void mbx_config_free(mbx_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->ndomains; i++)
		free(cfg->domains[i]);
	free(cfg->domains);
	mbx__netcfg_free(cfg->net);
	for (size_t i = 0; i < cfg->nmounts; i++) {
		free(cfg->mounts[i].host);
		free(cfg->mounts[i].sandbox);
	}
	free(cfg->mounts);
	mbx__env_release(&cfg->env);
	free(cfg->workdir);
	free(cfg->hostname);
	free(cfg);
}

int mbx__config_copy(const mbx_config *src, mbx_config **out, mbx_error **err)
{
	mbx_config *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return mbx__error_oom(err);
	*c = *src;
	c->domains = NULL;
	c->ndomains = 0;
	c->net = NULL;
	c->mounts = NULL;
	c->nmounts = 0;
	c->env.kv = NULL;
	c->env.n = 0;
	c->workdir = strdup(src->workdir);
	c->hostname = strdup(src->hostname);
	if (c->workdir == NULL || c->hostname == NULL || mbx__env_copy(&c->env, &src->env) < 0 ||
	    mbx__netcfg_dup(src->net, &c->net) < 0)
		goto oom;
	if (src->ndomains) {
		c->domains = calloc(src->ndomains, sizeof(char *));
		if (c->domains == NULL)
			goto oom;
		for (; c->ndomains < src->ndomains; c->ndomains++) {
			c->domains[c->ndomains] = strdup(src->domains[c->ndomains]);
			if (c->domains[c->ndomains] == NULL)
				goto oom;
		}
	}
	if (src->nmounts) {
		c->mounts = calloc(src->nmounts, sizeof(*c->mounts));
		if (c->mounts == NULL)
			goto oom;
		for (; c->nmounts < src->nmounts; c->nmounts++) {
			struct mbx_mount_spec *m = &c->mounts[c->nmounts];

			m->flags = src->mounts[c->nmounts].flags;
			m->dev = src->mounts[c->nmounts].dev;
			m->ino = src->mounts[c->nmounts].ino;
			m->host = strdup(src->mounts[c->nmounts].host);
			m->sandbox = strdup(src->mounts[c->nmounts].sandbox);
			if (m->host == NULL || m->sandbox == NULL) {
				c->nmounts++;
				goto oom;
			}
		}
	}
	*out = c;
	return MBX_OK;
oom:
	mbx_config_free(c);
	return mbx__error_oom(err);
}

int mbx_config_set_isolation(mbx_config *cfg, mbx_isolation_t isolation, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (mbx_isolation_name(isolation) == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown isolation level %u: use auto, os, wasm or microvm", isolation);
	cfg->isolation = isolation;
	return MBX_OK;
}

int mbx_config_set_trust(mbx_config *cfg, mbx_trust_t trust, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (mbx_trust_name(trust) == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown trust level %u: use trusted, semi or untrusted", trust);
	cfg->trust = trust;
	return MBX_OK;
}

int mbx_config_set_network(mbx_config *cfg, mbx_network_t network, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (mbx_network_name(network) == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown network policy %u: use deny, allow-domains or all", network);
	cfg->network = network;
	return MBX_OK;
}

/* A host name label: letters, digits and inner hyphens, 1..63 bytes. */
static int label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/* A DNS name made of valid labels, at most 253 bytes. */
static int dns_name_ok(const char *name)
{
	size_t len = strlen(name), start = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (name[i] == '.' || name[i] == '\0') {
			if (!label_ok(name + start, i - start))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

int mbx_config_add_allowed_domain(mbx_config *cfg, const char *domain, mbx_error **err)
{
	char **nd;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (domain == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "allowed domain is NULL");
	if (!mbx__net_allow_entry_ok(domain))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "allowed domain `%s` is not a host name or IP address with an optional port: use `example.com`, `*.example.com`, `192.0.2.1` or `example.com:443`",
				      domain);
	nd = realloc(cfg->domains, (cfg->ndomains + 1) * sizeof(char *));
	if (nd == NULL)
		return mbx__error_oom(err);
	cfg->domains = nd;
	cfg->domains[cfg->ndomains] = strdup(domain);
	if (cfg->domains[cfg->ndomains] == NULL)
		return mbx__error_oom(err);
	cfg->ndomains++;
	return MBX_OK;
}

int mbx_config_set_timeout_ms(mbx_config *cfg, uint64_t timeout_ms, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (timeout_ms == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "timeout must be greater than zero");
	cfg->timeout_ms = timeout_ms;
	return MBX_OK;
}

int mbx_config_set_memory_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (bytes < (1u << 20))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "memory limit of %llu bytes is too small: give at least 1 MiB", (unsigned long long)bytes);
	cfg->memory_bytes = bytes;
	return MBX_OK;
}

int mbx_config_set_disk_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (bytes < MBX_MIN_DISK || bytes > MBX_MAX_DISK) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "disk limit of %llu bytes is out of range: give 1 MiB to 1 TiB",
			       (unsigned long long)bytes);
		mbx__error_suggest(err, "e.g. 2048 MiB, the default");
		return MBX_EINVAL;
	}
	cfg->disk_bytes = bytes;
	cfg->disk_explicit = 1;
	return MBX_OK;
}

/* The microvm guest agent applies the same rule to MBX_F_DISK. */
_Static_assert(MBX_DISK_BYTES_PER_INODE == MBX_GUEST_DISK_BYTES_PER_INODE && MBX_DISK_MIN_INODES == MBX_GUEST_DISK_MIN_INODES,
	       "the guest's inode rule (proto.h) differs from mbx__disk_inodes");

uint64_t mbx__disk_inodes(uint64_t bytes)
{
	uint64_t n = bytes / MBX_DISK_BYTES_PER_INODE;

	return n < MBX_DISK_MIN_INODES ? MBX_DISK_MIN_INODES : n;
}

int mbx_config_set_cpu_limit(mbx_config *cfg, uint32_t millicpus, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (millicpus != 0 && millicpus < 10)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "CPU limit of %u thousandths is too small: give at least 10 (1%% of a core), or 0 for none", millicpus);
	cfg->millicpus = millicpus;
	return MBX_OK;
}

int mbx_config_set_max_processes(mbx_config *cfg, uint32_t count, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (count == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "process limit must be at least 1");
	cfg->max_procs = count;
	return MBX_OK;
}

int mbx_config_set_output_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (bytes > (1ull << 32))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "output limit above 4 GiB per stream is not supported");
	cfg->output_limit = bytes;
	return MBX_OK;
}

int mbx_config_set_env(mbx_config *cfg, const char *name, const char *value, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	return mbx__env_set(&cfg->env, name, value, err);
}

/* Checks and normalises a sandbox path; relative paths are under /workspace. */
static int sandbox_path(const char *path, const char *what, char **out, mbx_error **err)
{
	const char *given = path;
	char *full = NULL, *norm;
	int rc;

	if (path == NULL || path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "%s is empty", what);
	if (strlen(path) >= PATH_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "%s is longer than %d bytes", what, PATH_MAX - 1);
	if (path[0] != '/') {
		if (asprintf(&full, "/workspace/%s", path) < 0)
			return mbx__error_oom(err);
		path = full;
	}
	norm = mbx__path_normalize(path);
	if (norm != NULL) {
		free(full);
		*out = norm;
		return MBX_OK;
	}
	/* The message names what the caller gave, and `full` is freed only
	 * after it is written (`path` may point into it). */
	if (errno == ENOMEM)
		rc = mbx__error_oom(err);
	else
		rc = mbx__error_set(err, MBX_EINVAL, 0, NULL,
				    "%s `%s` contains `..`: give a path without `..` (absolute, or relative to /workspace)",
				    what, given);
	free(full);
	return rc;
}

int mbx_config_set_workdir(mbx_config *cfg, const char *path, mbx_error **err)
{
	char *p = NULL;
	int rc;

	MBX_CHECK_ARG(cfg != NULL, err);
	rc = sandbox_path(path, "working directory", &p, err);
	if (rc < 0)
		return rc;
	free(cfg->workdir);
	cfg->workdir = p;
	return MBX_OK;
}

int mbx_config_set_hostname(mbx_config *cfg, const char *hostname, mbx_error **err)
{
	char *h;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (hostname == NULL || !dns_name_ok(hostname) || strlen(hostname) > 64)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "host name `%s` is not valid: use letters, digits, `-` and `.`, at most 64 bytes",
				      hostname ? hostname : "(null)");
	h = strdup(hostname);
	if (h == NULL)
		return mbx__error_oom(err);
	free(cfg->hostname);
	cfg->hostname = h;
	return MBX_OK;
}

/*
 * `path` made absolute (against the working directory) and lexically
 * normalised: no empty, `.` or `..` components. With no symlink on the way,
 * which mount_source then requires, this is the physical path. Returns a
 * malloc'd string, or NULL (ENOMEM, or getcwd's errno).
 */
static char *absolute_lexical(const char *path)
{
	char *cwd = NULL, *full, *out;
	size_t n = 0;

	if (path[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (cwd == NULL)
			return NULL;
	}
	if (asprintf(&full, "%s/%s", cwd ? cwd : "", path) < 0) {
		free(cwd);
		errno = ENOMEM;
		return NULL;
	}
	free(cwd);
	out = malloc(strlen(full) + 2);
	if (out == NULL) {
		free(full);
		return NULL;
	}
	for (char *c = full, *next; c != NULL; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		if (*c == '\0' || strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, c, strlen(c));
		n += strlen(c);
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	free(full);
	return out;
}

/*
 * Resolves a mount source once, at configuration time: the absolute path,
 * opened without following a symbolic link in any component. A link is
 * refused, not followed: a sandbox with write access to a parent directory
 * could have planted it (or swap it later, which creating the sandbox
 * catches by reopening the same way and comparing device and inode).
 * On success *out is the path and *st what it names.
 */
static int mount_source(const char *host_path, char **out, struct stat *st, mbx_error **err)
{
	char *host = absolute_lexical(host_path);
	int fd, rc, e;

	if (host == NULL) {
		if (errno == ENOMEM)
			return mbx__error_oom(err);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "mount source `%s`: no working directory", host_path);
	}
	fd = mbx_open_nofollow(AT_FDCWD, host, 0);
	if (fd < 0 || fstat(fd, st) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		if (e == ELOOP) {
			char *real = realpath(host, NULL);

			rc = mbx__error_set(err, MBX_EINVAL, e, NULL,
					    "mount source `%s` goes through a symbolic link, and mount sources are not followed "
					    "through links (a sandbox that can write a parent directory could plant one)",
					    host_path);
			if (real)
				mbx__error_suggest(err, "if the link is yours, name its target: `%s`", real);
			else
				mbx__error_suggest(err, "name the path the link points to");
			free(real);
		} else {
			rc = mbx__error_set(err, e == ENOENT || e == ENOTDIR ? MBX_ENOTFOUND : MBX_EINVAL, e, NULL,
					    "mount source `%s`", host_path);
			mbx__error_suggest(err, "give an existing host file or directory");
		}
		free(host);
		return rc;
	}
	close(fd);
	*out = host;
	return MBX_OK;
}

/* Sandbox paths a user mount may not cover: they are the sandbox's own. */
static const char *const reserved_targets[] = { "/", "/proc", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/workspace", "/tmp", NULL };

int mbx_config_add_mount(mbx_config *cfg, const char *host_path, const char *sandbox_path_, uint32_t flags, mbx_error **err)
{
	struct mbx_mount_spec *nm;
	char *host = NULL, *dst = NULL;
	struct stat st;
	int rc;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (flags & ~MBX_MOUNT_RW)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown mount flags 0x%x", flags);
	if (host_path == NULL || host_path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mount source is empty: give an existing host path");
	if (sandbox_path_ == NULL || sandbox_path_[0] != '/')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mount target `%s` must be an absolute sandbox path",
				      sandbox_path_ ? sandbox_path_ : "(null)");
	rc = mount_source(host_path, &host, &st, err);
	if (rc < 0)
		return rc;
	rc = sandbox_path(sandbox_path_, "mount target", &dst, err);
	if (rc < 0) {
		free(host);
		return rc;
	}
	for (size_t i = 0; reserved_targets[i]; i++) {
		if (strcmp(dst, reserved_targets[i]) == 0 ||
		    (strcmp(reserved_targets[i], "/workspace") != 0 && strcmp(reserved_targets[i], "/tmp") != 0 &&
		     strcmp(reserved_targets[i], "/") != 0 &&
		     strncmp(dst, reserved_targets[i], strlen(reserved_targets[i])) == 0 &&
		     dst[strlen(reserved_targets[i])] == '/')) {
			rc = mbx__error_set(err, MBX_EINVAL, 0, NULL,
					    "mount target `%s` is reserved by the sandbox: mount below /workspace, /tmp, /mnt or /opt", dst);
			free(host);
			free(dst);
			return rc;
		}
	}
	nm = realloc(cfg->mounts, (cfg->nmounts + 1) * sizeof(*nm));
	if (nm == NULL) {
		free(host);
		free(dst);
		return mbx__error_oom(err);
	}
	cfg->mounts = nm;
	cfg->mounts[cfg->nmounts].host = host;
	cfg->mounts[cfg->nmounts].sandbox = dst;
	cfg->mounts[cfg->nmounts].flags = flags;
	cfg->mounts[cfg->nmounts].dev = st.st_dev;
	cfg->mounts[cfg->nmounts].ino = st.st_ino;
	cfg->nmounts++;
	return MBX_OK;
}

void mbx_config_set_allow_degraded(mbx_config *cfg, int allow)
{
	if (cfg)
		cfg->allow_degraded = allow != 0;
}

void mbx_config_set_log(mbx_config *cfg, mbx_log_level_t level, mbx_log_fn fn, void *userdata)
{
	if (cfg == NULL)
		return;
	cfg->log_level = level;
	cfg->log_fn = fn;
	cfg->log_userdata = userdata;
}

int mbx__config_validate(const mbx_config *cfg, mbx_error **err)
{
	struct stat st;

	if (cfg->network == MBX_NETWORK_ALLOW_DOMAINS && cfg->ndomains == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "network policy allow-domains has an empty list: add domains or use deny");
	for (size_t i = 0; i < cfg->nmounts; i++) {
		if (stat(cfg->mounts[i].host, &st) < 0)
			return mbx__error_set(err, MBX_ENOTFOUND, errno, NULL, "mount source `%s`", cfg->mounts[i].host);
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->mounts[i].sandbox, cfg->mounts[j].sandbox) == 0)
				return mbx__error_set(err, MBX_EINVAL, 0, NULL, "two mounts target `%s`", cfg->mounts[i].sandbox);
	}
	return MBX_OK;
}

/* ==== per-execute options ==== */

int mbx_exec_options_new(mbx_exec_options **out, mbx_error **err)
{
	MBX_CHECK_ARG(out != NULL, err);
	*out = calloc(1, sizeof(**out));
	return *out ? MBX_OK : mbx__error_oom(err);
}

void mbx_exec_options_free(mbx_exec_options *opts)
{
	if (opts == NULL)
		return;
	mbx__env_release(&opts->env);
	free(opts->stdin_data);
	free(opts->workdir);
	free(opts);
}

int mbx_exec_options_set_env(mbx_exec_options *opts, const char *name, const char *value, mbx_error **err)
{
	MBX_CHECK_ARG(opts != NULL, err);
	return mbx__env_set(&opts->env, name, value, err);
}

int mbx_exec_options_set_workdir(mbx_exec_options *opts, const char *path, mbx_error **err)
{
	char *p = NULL;
	int rc;

	MBX_CHECK_ARG(opts != NULL, err);
	rc = sandbox_path(path, "working directory", &p, err);
	if (rc < 0)
		return rc;
	free(opts->workdir);
	opts->workdir = p;
	return MBX_OK;
}

int mbx_exec_options_set_timeout_ms(mbx_exec_options *opts, uint64_t timeout_ms, mbx_error **err)
{
	MBX_CHECK_ARG(opts != NULL, err);
	if (timeout_ms == 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "timeout must be greater than zero");
	opts->timeout_ms = timeout_ms;
	return MBX_OK;
}

void mbx_exec_options_set_last(mbx_exec_options *opts, int last)
{
	if (opts != NULL)
		opts->last = last != 0;
}

int mbx_exec_options_set_stdin(mbx_exec_options *opts, const void *data, size_t len, mbx_error **err)
{
	uint8_t *copy;

	MBX_CHECK_ARG(opts != NULL, err);
	if (data == NULL && len > 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "stdin data is NULL");
	if (len > (64u << 20))
		return mbx__error_set(err, MBX_ETOOBIG, 0, NULL, "stdin of %zu bytes is over 64 MiB: stream it with mbx_sandbox_spawn()", len);
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		return mbx__error_oom(err);
	if (len)
		memcpy(copy, data, len);
	free(opts->stdin_data);
	opts->stdin_data = copy;
	opts->stdin_len = len;
	return MBX_OK;
}

void mbx_exec_options_set_output_cb(mbx_exec_options *opts, mbx_output_fn fn, void *userdata)
{
	if (opts == NULL)
		return;
	opts->output_fn = fn;
	opts->output_userdata = userdata;
}
