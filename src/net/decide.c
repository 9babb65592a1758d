/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One policy decision for one host, shared by the proxy and HTTP requests:
 * policy, allow list, resolution, address checks. The addresses it returns
 * are the only ones the caller may connect to, which is what defeats DNS
 * rebinding: the answer that was checked is the answer that is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

static int default_resolve(void *ud, const char *name, struct mbx_netaddr *out, size_t max, size_t *n)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	(void)ud;
	*n = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc != 0)
		return rc;
	for (ai = res; ai && *n < max; ai = ai->ai_next) {
		struct mbx_netaddr a = { 0 };

		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
			a.family = AF_INET;
			a.a.v4 = ((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
		} else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			a.family = AF_INET6;
			a.a.v6 = ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		} else {
			continue;
		}
		/* getaddrinfo lists an address once per socket type at most,
		 * but /etc/hosts may repeat one. */
		int dup = 0;

		for (size_t i = 0; i < *n; i++)
			if (out[i].family == a.family && memcmp(&out[i].a, &a.a, sizeof(a.a)) == 0)
				dup = 1;
		if (!dup)
			out[(*n)++] = a;
	}
	freeaddrinfo(res);
	return *n ? 0 : EAI_NONAME;
}

/* A non-blocking connect with a deadline; stop_fd readable aborts it. */
static int default_connect(void *ud, const struct mbx_netaddr *a, uint16_t port, int timeout_ms, int stop_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct pollfd p[2];
	int fd, e = 0;
	socklen_t el = sizeof(e);

	(void)ud;
	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = a->a.v4;
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = a->a.v6;
		sl = sizeof(*s6);
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	p[0].fd = fd;
	p[0].events = POLLOUT;
	p[1].fd = stop_fd;
	p[1].events = POLLIN;
	for (;;) {
		int r = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		if (r < 0 || (stop_fd >= 0 && p[1].revents)) {
			close(fd);
			return -ECANCELED;
		}
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e) {
		close(fd);
		return -e;
	}
	return fd;
}

const struct mbx_net_hooks mbx__net_default_hooks = { default_resolve, default_connect, NULL };

/* Keeps the addresses the policy admits; describes the first refusal. */
static size_t filter_addrs(const mbx_config *cfg, struct mbx_netaddr *a, size_t n, struct mbx_net_decision *d)
{
	int allow_private = mbx__net_allow_private(cfg);
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		const char *what;
		enum mbx_addr_class c = mbx__net_classify(&a[i], &what);

		if (c == MBX_ADDR_PUBLIC || (c == MBX_ADDR_PRIVATE && allow_private)) {
			a[kept++] = a[i];
			continue;
		}
		if (d->address[0] == '\0') {
			char s[48];

			mbx__netaddr_str(&a[i], s, sizeof(s));
			snprintf(d->address, sizeof(d->address), "%s", s);
			snprintf(d->reason, sizeof(d->reason), "%s %s%s", what, s,
				 c == MBX_ADDR_PRIVATE ? " (private destinations are not admitted)" : "");
		}
	}
	return kept;
}

enum mbx_net_verdict_internal mbx__net_decide(const mbx_config *cfg, const struct mbx_net_hooks *hooks,
					      const struct mbx_host *host, uint16_t port, struct mbx_net_decision *d)
{
	const struct mbx_netaddr *ovr;
	const char *rule = NULL;
	size_t n = 0;
	int port_refused = 0;

	memset(d, 0, sizeof(*d));
	if (hooks == NULL)
		hooks = &mbx__net_default_hooks;
	switch (cfg->network) {
	case MBX_NETWORK_ALLOW_ALL:
		break;
	case MBX_NETWORK_ALLOW_DOMAINS:
		if (!mbx__net_host_allowed(cfg, host, port, &rule, &port_refused)) {
			if (port_refused)
				snprintf(d->reason, sizeof(d->reason), "port %u of `%.120s` is not in the allow list",
					 (unsigned)port, host->name);
			else
				snprintf(d->reason, sizeof(d->reason), "%s `%.120s` is not in the allow list",
					 host->kind == MBX_HOST_NAME ? "host" : "IP literal", host->name);
			return MBX_NETV_DENIED;
		}
		break;
	case MBX_NETWORK_DENY_ALL:
	default:
		snprintf(d->reason, sizeof(d->reason), "the network policy denies all destinations");
		return MBX_NETV_DENIED;
	}

	if (host->kind != MBX_HOST_NAME) {
		d->addrs[0] = host->addr;
		n = 1;
	} else if ((ovr = mbx__net_override(cfg, host->name)) != NULL) {
		d->addrs[0] = *ovr;
		n = 1;
	} else {
		int rc = hooks->resolve(hooks->ud, host->name, d->addrs, MBX_NET_MAX_ADDRS, &n);

		if (rc != 0 || n == 0) {
			snprintf(d->reason, sizeof(d->reason), "cannot resolve `%.120s`: %s", host->name,
				 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc ? rc : EAI_NONAME));
			return MBX_NETV_UNRESOLVED;
		}
	}
	d->naddrs = filter_addrs(cfg, d->addrs, n, d);
	if (d->naddrs == 0)
		return MBX_NETV_DENIED;
	d->address[0] = '\0';
	if (rule)
		snprintf(d->reason, sizeof(d->reason), "allowed by `%s`", rule);
	else
		snprintf(d->reason, sizeof(d->reason), "allowed: the network policy admits all destinations");
	return MBX_NETV_OK;
}
