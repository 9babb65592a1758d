/* SPDX-License-Identifier: Apache-2.0 */
/* The network settings of a config (mbx/net.h): host overrides, private
 * destinations, extra certificate authorities and limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

/* The host's bundle of trusted certificate authorities (Debian's path). */
#define HOST_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define CA_FILE_MAX (1u << 20)

void mbx__netcfg_free(struct mbx_netcfg *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->novr; i++)
		free(n->ovr[i].name);
	free(n->ovr);
	for (size_t i = 0; i < n->nrules; i++)
		mbx__http_rule_free(&n->rules[i]);
	free(n->rules);
	free(n->ca_pem);
	free(n);
}

int mbx__netcfg_dup(const struct mbx_netcfg *src, struct mbx_netcfg **out)
{
	struct mbx_netcfg *n;

	*out = NULL;
	if (src == NULL)
		return MBX_OK;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return MBX_ENOMEM;
	*n = *src;
	n->ovr = NULL;
	n->novr = 0;
	n->ca_pem = NULL;
	n->rules = NULL;
	n->nrules = 0;
	if (src->nrules) {
		n->rules = calloc(src->nrules, sizeof(*n->rules));
		if (n->rules == NULL)
			goto oom;
		for (; n->nrules < src->nrules; n->nrules++)
			if (mbx__http_rule_dup(&src->rules[n->nrules], &n->rules[n->nrules]) != MBX_OK)
				goto oom;
	}
	if (src->novr) {
		n->ovr = calloc(src->novr, sizeof(*n->ovr));
		if (n->ovr == NULL)
			goto oom;
		for (; n->novr < src->novr; n->novr++) {
			n->ovr[n->novr].addr = src->ovr[n->novr].addr;
			n->ovr[n->novr].name = strdup(src->ovr[n->novr].name);
			if (n->ovr[n->novr].name == NULL)
				goto oom;
		}
	}
	if (src->ca_pem) {
		n->ca_pem = malloc(src->ca_len + 1);
		if (n->ca_pem == NULL)
			goto oom;
		memcpy(n->ca_pem, src->ca_pem, src->ca_len + 1);
	}
	*out = n;
	return MBX_OK;
oom:
	mbx__netcfg_free(n);
	return MBX_ENOMEM;
}

/* The config's network settings, created on first use. */
static struct mbx_netcfg *netcfg(mbx_config *cfg)
{
	if (cfg->net == NULL)
		cfg->net = calloc(1, sizeof(*cfg->net));
	return cfg->net;
}

int mbx_config_add_host_override(mbx_config *cfg, const char *name, const char *address, mbx_error **err)
{
	struct mbx_host h, a;
	struct mbx_host_override *no;
	struct mbx_netcfg *n;
	const char *why = NULL;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (name == NULL || mbx__host_parse(name, strlen(name), 0, &h, &why) < 0 || h.kind != MBX_HOST_NAME)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "host override: `%s` is not a host name%s%s",
				      name ? name : "(null)", why ? ": " : "", why ? why : "");
	if (address == NULL || mbx__host_parse(address, strlen(address), 1, &a, &why) < 0 || a.kind == MBX_HOST_NAME ||
	    (a.kind == MBX_HOST_IPV4 && inet_pton(AF_INET, address, &a.addr.a.v4) != 1))
		return mbx__error_set(err, MBX_EINVAL, 0, "network",
				      "host override for `%s`: `%s` is not an IPv4 or IPv6 address", name,
				      address ? address : "(null)");
	n = netcfg(cfg);
	if (n == NULL)
		return mbx__error_oom(err);
	for (size_t i = 0; i < n->novr; i++)
		if (strcmp(n->ovr[i].name, h.name) == 0) {
			n->ovr[i].addr = a.addr;
			return MBX_OK;
		}
	no = realloc(n->ovr, (n->novr + 1) * sizeof(*no));
	if (no == NULL)
		return mbx__error_oom(err);
	n->ovr = no;
	n->ovr[n->novr].name = strdup(h.name);
	if (n->ovr[n->novr].name == NULL)
		return mbx__error_oom(err);
	n->ovr[n->novr].addr = a.addr;
	n->novr++;
	return MBX_OK;
}

void mbx_config_set_network_allow_private(mbx_config *cfg, int allow)
{
	if (cfg && netcfg(cfg))
		cfg->net->allow_private = allow != 0;
}

/* Reads a whole file of at most `max` bytes; *out is NUL-terminated. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
}

int mbx_config_add_ca_file(mbx_config *cfg, const char *pem_path, mbx_error **err)
{
	struct mbx_netcfg *n;
	char *pem = NULL, *all;
	size_t len = 0;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (pem_path == NULL || pem_path[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "CA file: no path given");
	if (read_file(pem_path, CA_FILE_MAX, &pem, &len) < 0) {
		int e = errno;

		if (e == ENOMEM)
			return mbx__error_oom(err);
		return mbx__error_set(err, e == ENOENT || e == ENOTDIR ? MBX_ENOTFOUND : e == EFBIG ? MBX_ETOOBIG : MBX_EINVAL,
				      e, "network", "CA file `%s`", pem_path);
	}
	if (strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL || strlen(pem) != len) {
		free(pem);
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "CA file `%s` holds no PEM certificate", pem_path);
	}
	n = netcfg(cfg);
	if (n == NULL || (n->ca_len + len + 2) > 16 * CA_FILE_MAX) {
		free(pem);
		return n ? mbx__error_set(err, MBX_ETOOBIG, 0, "network", "more than 16 MiB of CA certificates")
			 : mbx__error_oom(err);
	}
	all = realloc(n->ca_pem, n->ca_len + len + 2);
	if (all == NULL) {
		free(pem);
		return mbx__error_oom(err);
	}
	memcpy(all + n->ca_len, pem, len);
	n->ca_len += len;
	if (len && pem[len - 1] != '\n')
		all[n->ca_len++] = '\n';
	all[n->ca_len] = '\0';
	n->ca_pem = all;
	free(pem);
	return MBX_OK;
}

int mbx_config_set_network_limit(mbx_config *cfg, mbx_net_limit_t limit, uint64_t value, mbx_error **err)
{
	MBX_CHECK_ARG(cfg != NULL, err);
	if (limit < 1 || limit > MBX_NET_LIMIT_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "unknown network limit %u", limit);
	if (value == 0 && limit != MBX_NET_LIMIT_REDIRECTS)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "network limit %u must be greater than zero", limit);
	if ((limit == MBX_NET_LIMIT_TIMEOUT_MS || limit == MBX_NET_LIMIT_IDLE_MS) && value > 86400000ull)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "network time limits above one day are not supported");
	if ((limit == MBX_NET_LIMIT_CONNECTIONS && value > 4096) || (limit == MBX_NET_LIMIT_REDIRECTS && value > 50))
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "network limit %u: %llu is too large", limit,
				      (unsigned long long)value);
	if (netcfg(cfg) == NULL)
		return mbx__error_oom(err);
	/* Zero means "the default" inside: keep an explicit zero (no
	 * redirects) apart with a marker value. */
	cfg->net->limit[limit] = (limit == MBX_NET_LIMIT_REDIRECTS && value == 0) ? UINT64_MAX : value;
	return MBX_OK;
}

uint64_t mbx__net_limit(const mbx_config *cfg, mbx_net_limit_t which)
{
	uint64_t v = (cfg->net && which <= MBX_NET_LIMIT_MAX) ? cfg->net->limit[which] : 0;

	if (which == MBX_NET_LIMIT_REDIRECTS && v == UINT64_MAX)
		return 0;
	if (v)
		return v;
	switch (which) {
	case MBX_NET_LIMIT_REQUEST_BYTES: return MBX_NET_DEFAULT_REQUEST_BYTES;
	case MBX_NET_LIMIT_RESPONSE_BYTES: return MBX_NET_DEFAULT_RESPONSE_BYTES;
	case MBX_NET_LIMIT_TIMEOUT_MS: return MBX_NET_DEFAULT_TIMEOUT_MS;
	case MBX_NET_LIMIT_IDLE_MS: return MBX_NET_DEFAULT_IDLE_MS;
	case MBX_NET_LIMIT_CONNECTIONS: return MBX_NET_DEFAULT_CONNECTIONS;
	case MBX_NET_LIMIT_REDIRECTS: return MBX_NET_DEFAULT_REDIRECTS;
	default: return 0;
	}
}

int mbx__net_allow_private(const mbx_config *cfg)
{
	return cfg->net && cfg->net->allow_private;
}

const struct mbx_netaddr *mbx__net_override(const mbx_config *cfg, const char *name)
{
	for (size_t i = 0; cfg->net && i < cfg->net->novr; i++)
		if (strcmp(cfg->net->ovr[i].name, name) == 0)
			return &cfg->net->ovr[i].addr;
	return NULL;
}

const char *mbx__net_ca_pem(const mbx_config *cfg, size_t *len)
{
	if (cfg->net == NULL || cfg->net->ca_pem == NULL)
		return NULL;
	if (len)
		*len = cfg->net->ca_len;
	return cfg->net->ca_pem;
}

int mbx__net_ca_bundle(const mbx_config *cfg, char **out, size_t *len)
{
	size_t extra_len = 0, host_len = 0;
	const char *extra = mbx__net_ca_pem(cfg, &extra_len);
	char *host = NULL, *all;

	*out = NULL;
	*len = 0;
	if (read_file(HOST_CA_BUNDLE, 64u << 20, &host, &host_len) < 0) {
		host = NULL;
		host_len = 0;
	}
	all = malloc(host_len + extra_len + 2);
	if (all == NULL) {
		free(host);
		return MBX_ENOMEM;
	}
	if (host_len)
		memcpy(all, host, host_len);
	free(host);
	if (host_len && all[host_len - 1] != '\n')
		all[host_len++] = '\n';
	if (extra_len)
		memcpy(all + host_len, extra, extra_len);
	all[host_len + extra_len] = '\0';
	*out = all;
	*len = host_len + extra_len;
	return MBX_OK;
}

/* ==== what a sandbox's environment gets (every backend with a proxy) ==== */

static int env_has(const struct mbx_env *env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->kv[i], name, n) == 0 && env->kv[i][n] == '=')
			return 1;
	return 0;
}

int mbx__net_env(mbx_config *cfg, mbx_error **err)
{
	static const char *const proxy_vars[] = { "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
						  "ALL_PROXY", "all_proxy", NULL };
	static const char *const ca_vars[] = { "SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
					       "NODE_EXTRA_CA_CERTS", NULL };
	int rc = MBX_OK;

	/* The caller's own settings win: they can only make the proxy
	 * unreachable, never widen what the sandbox reaches. */
	if (cfg->network == MBX_NETWORK_ALLOW_DOMAINS) {
		for (size_t i = 0; proxy_vars[i] && rc == MBX_OK; i++)
			if (!env_has(&cfg->env, proxy_vars[i]))
				rc = mbx__env_set(&cfg->env, proxy_vars[i], MBX_NET_PROXY_URL, err);
		if (rc == MBX_OK && !env_has(&cfg->env, "NO_PROXY"))
			rc = mbx__env_set(&cfg->env, "NO_PROXY", "localhost,127.0.0.1,::1", err);
		if (rc == MBX_OK && !env_has(&cfg->env, "no_proxy"))
			rc = mbx__env_set(&cfg->env, "no_proxy", "localhost,127.0.0.1,::1", err);
	}
	if (mbx__net_ca_pem(cfg, NULL))
		for (size_t i = 0; ca_vars[i] && rc == MBX_OK; i++)
			if (!env_has(&cfg->env, ca_vars[i]))
				rc = mbx__env_set(&cfg->env, ca_vars[i], MBX_NET_CA_PATH, err);
	return rc;
}
