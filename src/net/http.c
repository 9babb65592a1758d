/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mbx_sandbox_http_request(): an HTTP(S) request made on the host under
 * the sandbox's policy, on libcurl (loaded on the first request:
 * curl-api.h).
 *
 * Each hop goes through mbx__net_decide(), as the proxy's requests do: the
 * host must be allowed, its name is resolved once and every address
 * checked. libcurl then gets exactly those addresses (CURLOPT_RESOLVE),
 * and the socket callback refuses any other, so libcurl's own resolver
 * never decides where a connection goes. Redirects are not left to
 * libcurl: each Location is decided again as a new hop. The host
 * process's proxy variables are ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "net.h"

struct mbx_http_response {
	int status;
	char **names;
	char **values;
	size_t nh;
	struct mbx_buf body;
	char *url;
};

int mbx_http_response_status(const mbx_http_response *r)
{
	return r ? r->status : 0;
}

size_t mbx_http_response_header_count(const mbx_http_response *r)
{
	return r ? r->nh : 0;
}

const char *mbx_http_response_header_name(const mbx_http_response *r, size_t i)
{
	return (r && i < r->nh) ? r->names[i] : NULL;
}

const char *mbx_http_response_header_value(const mbx_http_response *r, size_t i)
{
	return (r && i < r->nh) ? r->values[i] : NULL;
}

const char *mbx_http_response_header(const mbx_http_response *r, const char *name)
{
	for (size_t i = 0; r && name && i < r->nh; i++)
		if (strcasecmp(r->names[i], name) == 0)
			return r->values[i];
	return NULL;
}

const uint8_t *mbx_http_response_body(const mbx_http_response *r, size_t *len)
{
	static const uint8_t empty[1];

	if (len)
		*len = r ? r->body.len : 0;
	return (r && r->body.data) ? r->body.data : empty;
}

const char *mbx_http_response_url(const mbx_http_response *r)
{
	return r ? r->url : NULL;
}

static void headers_clear(mbx_http_response *r)
{
	for (size_t i = 0; i < r->nh; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
	free(r->names);
	free(r->values);
	r->names = r->values = NULL;
	r->nh = 0;
}

void mbx_http_response_free(mbx_http_response *r)
{
	if (r == NULL)
		return;
	headers_clear(r);
	mbx__buf_release(&r->body);
	free(r->url);
	free(r);
}

#if MBX_HAVE_CURL

#include "curl-api.h"

/* One hop in progress. */
struct hop {
	const struct mbx_net_decision *d;
	mbx_http_response *resp;
	uint64_t max_down;
	int too_big;       /* the body went over the limit */
	int refused;       /* libcurl tried a socket the decision did not allow */
	int oom;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct hop *h = ud;
	size_t len = size * n;

	if (h->resp->body.len + len > h->max_down) {
		h->too_big = 1;
		return 0;
	}
	if (mbx__buf_append(&h->resp->body, data, len) < 0) {
		h->oom = 1;
		return 0;
	}
	return len;
}

/* Header lines of the last response only (a 100 Continue or a redirect
 * before it starts over). */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct hop *h = ud;
	mbx_http_response *r = h->resp;
	size_t len = size * n;
	const char *colon, *v, *end = data + len;
	char **nn, **nv;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		headers_clear(r);
		return len;
	}
	colon = memchr(data, ':', len);
	if (colon == NULL || colon == data)
		return len;
	while (end > colon + 1 && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	nn = realloc(r->names, (r->nh + 1) * sizeof(char *));
	if (nn)
		r->names = nn;
	nv = realloc(r->values, (r->nh + 1) * sizeof(char *));
	if (nv)
		r->values = nv;
	if (nn == NULL || nv == NULL) {
		h->oom = 1;
		return 0;
	}
	r->names[r->nh] = strndup(data, (size_t)(colon - data));
	r->values[r->nh] = strndup(v, (size_t)(end - v));
	if (r->names[r->nh] == NULL || r->values[r->nh] == NULL) {
		free(r->names[r->nh]);
		free(r->values[r->nh]);
		h->oom = 1;
		return 0;
	}
	r->nh++;
	return len;
}

/* Only sockets to an address the decision checked. */
static curl_socket_t on_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct hop *h = ud;
	struct mbx_netaddr x = { 0 };

	if (purpose != CURLSOCKTYPE_IPCXN)
		goto refuse;
	if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
		x.family = AF_INET;
		x.a.v4 = ((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr;
	} else if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
		x.family = AF_INET6;
		x.a.v6 = ((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr;
	} else {
		goto refuse;
	}
	for (size_t i = 0; i < h->d->naddrs; i++)
		if (h->d->addrs[i].family == x.family && memcmp(&h->d->addrs[i].a, &x.a, sizeof(x.a)) == 0)
			return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
refuse:
	h->refused = 1;
	return CURL_SOCKET_BAD;
}

static int is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr("!#$%&'*+-.^_`|~", c))))
			return 0;
	}
	return 1;
}

static int map_curl_error(CURLcode cc, const struct hop *h)
{
	if (h->refused)
		return MBX_EDENIED;
	if (h->too_big)
		return MBX_ETOOBIG;
	if (h->oom)
		return MBX_ENOMEM;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return MBX_ETIMEDOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return MBX_ETOOBIG;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return MBX_EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return MBX_ENOMEM;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return MBX_ETLS;
	default:
		return MBX_ENETWORK;
	}
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The URL's host, port and scheme, refusing what the policy cannot check
 * (user information, zone ids, other schemes). */
static int url_parts(CURLU *u, struct mbx_host *host, uint16_t *port, int *https, char **norm, mbx_error **err)
{
	char *scheme = NULL, *h = NULL, *p = NULL, *user = NULL, *zone = NULL;
	const char *why = NULL;
	int rc = MBX_OK;
	long portnum;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "only http:// and https:// URLs are supported");
		goto out;
	}
	*https = strcasecmp(scheme, "https") == 0;
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &user, 0) == CURLUE_OK) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "URLs with user information are not supported: send an Authorization header");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "IPv6 zone identifiers are not supported");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "the URL has no host");
		goto out;
	}
	if (mbx__host_parse(h, strlen(h), 0, host, &why) < 0) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid host `%s` in the URL: %s", h, why);
		goto out;
	}
	portnum = strtol(p, NULL, 10);
	if (portnum <= 0 || portnum > 65535) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid port in the URL");
		goto out;
	}
	*port = (uint16_t)portnum;
	if (curl_url_get(u, CURLUPART_URL, norm, 0) != CURLUE_OK)
		rc = mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid URL");
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_free(user);
	curl_free(zone);
	return rc;
}

static void log_hop(mbx_sandbox *sb, const char *method, const struct mbx_host *host, uint16_t port,
		    const char *address, uint8_t verdict, int status, const char *reason, uint64_t up, uint64_t down)
{
	struct mbx_netlog_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.source, sizeof(e.source), "api");
	snprintf(e.method, sizeof(e.method), "%s", method);
	snprintf(e.host, sizeof(e.host), "%s", host->name);
	e.port = port;
	snprintf(e.address, sizeof(e.address), "%s", address ? address : "");
	e.verdict = verdict;
	e.status = status;
	snprintf(e.reason, sizeof(e.reason), "%s", reason);
	e.up = up;
	e.down = down;
	mbx__netlog_add(sb->net ? sb->net->log : NULL, &e);
	mbx__log(sb->cfg, verdict == MBX_NET_ALLOWED ? MBX_LOG_DEBUG : MBX_LOG_INFO, "network: api %s %s %s:%u (%s)",
		 mbx_net_verdict_name(verdict), method, host->name, port, reason);
}

/* Performs one hop; on success *resp holds the response (and *next the
 * redirect target, when there is one to follow). */
static int one_hop(mbx_sandbox *sb, const char *method, const char *url, struct curl_slist *hdrs,
		   const uint8_t *body, size_t body_len, uint64_t deadline, int want_redirect,
		   mbx_http_response **resp, char **next, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	struct mbx_net_decision d;
	struct mbx_host host;
	struct hop h = { 0 };
	struct curl_slist *resolve = NULL;
	char *norm = NULL, *redirect = NULL, entry[512], errbuf[CURL_ERROR_SIZE] = "";
	char *ip = NULL, *ca = NULL;
	uint16_t port = 0;
	int https = 0, rc;
	size_t ca_len = 0;
	CURLU *u;
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	long up = 0;
	uint64_t left = deadline > mono_ms() ? deadline - mono_ms() : 0;

	*resp = NULL;
	*next = NULL;
	u = curl_url();
	if (u == NULL)
		return mbx__error_oom(err);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid URL `%s`", url);
	}
	rc = url_parts(u, &host, &port, &https, &norm, err);
	curl_url_cleanup(u);
	if (rc < 0)
		return rc;

	switch (mbx__net_decide(cfg, NULL, &host, port, &d)) {
	case MBX_NETV_OK:
		break;
	case MBX_NETV_UNRESOLVED:
		log_hop(sb, method, &host, port, NULL, MBX_NET_FAILED, 0, d.reason, 0, 0);
		rc = mbx__error_set(err, MBX_ENETWORK, 0, "network", "%s", d.reason);
		goto out;
	case MBX_NETV_DENIED:
	default:
		log_hop(sb, method, &host, port, d.address, MBX_NET_DENIED, 0, d.reason, 0, 0);
		rc = mbx__error_set(err, MBX_EDENIED, 0, "network", "%s %s denied: %s", method, norm, d.reason);
		goto out;
	}
	{
		/* HTTP rules see the origin-form target of the normalized URL. */
		const char *t = strstr(norm, "://"), *frag;
		char why[192];

		t = t ? strchr(t + 3, '/') : NULL;
		if (t == NULL)
			t = "/";
		frag = strchr(t, '#');
		if (mbx__net_http_check(cfg, &host, port, 0, method, strlen(method), t,
					frag ? (size_t)(frag - t) : strlen(t), why, sizeof(why)) < 0) {
			log_hop(sb, method, &host, port, NULL, MBX_NET_DENIED, 0, why, 0, 0);
			rc = mbx__error_set(err, MBX_EDENIED, 0, "network", "%s %s denied: %s", method, norm, why);
			goto out;
		}
	}
	if (left == 0) {
		rc = mbx__error_set(err, MBX_ETIMEDOUT, 0, "network", "%s %s: time limit reached", method, norm);
		goto out;
	}

	*resp = calloc(1, sizeof(**resp));
	c = curl_easy_init();
	if (*resp == NULL || c == NULL) {
		rc = mbx__error_oom(err);
		goto out;
	}
	h.d = &d;
	h.resp = *resp;
	h.max_down = mbx__net_limit(cfg, MBX_NET_LIMIT_RESPONSE_BYTES);
	if (host.kind == MBX_HOST_NAME) {
		/* The checked addresses, and only they, for this name. */
		size_t o = (size_t)snprintf(entry, sizeof(entry), "%s:%u:", host.name, port);

		for (size_t i = 0; i < d.naddrs && o < sizeof(entry) - 50; i++) {
			char a[48];

			mbx__netaddr_str(&d.addrs[i], a, sizeof(a));
			o += (size_t)snprintf(entry + o, sizeof(entry) - o, "%s%s%s%s", i ? "," : "",
					      d.addrs[i].family == AF_INET6 ? "[" : "", a,
					      d.addrs[i].family == AF_INET6 ? "]" : "");
		}
		resolve = curl_slist_append(NULL, entry);
		if (resolve == NULL) {
			rc = mbx__error_oom(err);
			goto out;
		}
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	}
	curl_easy_setopt(c, CURLOPT_URL, norm);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(left > 0x7fffffff ? 0x7fffffff : left));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(left < 10000 ? left : 10000));
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h.max_down);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (https && mbx__net_ca_pem(cfg, NULL)) {
		struct curl_blob blob;

		if (mbx__net_ca_bundle(cfg, &ca, &ca_len) < 0) {
			rc = mbx__error_oom(err);
			goto out;
		}
		blob.data = ca;
		blob.len = ca_len;
		blob.flags = CURL_BLOB_NOCOPY;
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}

	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &ip);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &up);
	if (cc != CURLE_OK) {
		const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
		char reason[192];

		rc = map_curl_error(cc, &h);
		if (rc == MBX_EDENIED)
			snprintf(reason, sizeof(reason), "the connection went to an address that was not checked");
		else if (rc == MBX_ETOOBIG)
			snprintf(reason, sizeof(reason), "response larger than the limit of %llu bytes: cut off",
				 (unsigned long long)h.max_down);
		else
			snprintf(reason, sizeof(reason), "%s", what);
		log_hop(sb, method, &host, port, ip, rc == MBX_EDENIED ? MBX_NET_DENIED : MBX_NET_FAILED, (int)status,
			reason, (uint64_t)up, (*resp)->body.len);
		rc = mbx__error_set(err, rc, 0, "network", "%s %s: %s", method, norm, reason);
		goto out;
	}
	log_hop(sb, method, &host, port, ip, MBX_NET_ALLOWED, (int)status, d.reason, (uint64_t)up, (*resp)->body.len);
	(*resp)->status = (int)status;
	(*resp)->url = strdup(norm);
	if ((*resp)->url == NULL) {
		rc = mbx__error_oom(err);
		goto out;
	}
	if (want_redirect && (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) &&
	    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect) {
		*next = strdup(redirect);
		if (*next == NULL) {
			rc = mbx__error_oom(err);
			goto out;
		}
	}
	rc = MBX_OK;
out:
	if (rc < 0) {
		mbx_http_response_free(*resp);
		*resp = NULL;
	}
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	curl_free(norm);
	free(ca);
	return rc;
}

/* The caller's headers, checked: "Name: value" with a token name, no line
 * breaks, and no Host naming another host than the URL's. Expect is
 * emptied so bodies go without a 1 s wait for "100 Continue". */
static int build_headers(const char *const *headers, struct curl_slist **out, int drop_host, mbx_error **err)
{
	struct curl_slist *l = NULL, *nl;
	int have_expect = 0;

	*out = NULL;
	for (size_t i = 0; headers && headers[i]; i++) {
		const char *hd = headers[i], *colon = strchr(hd, ':');

		if (colon == NULL || !is_token(hd, (size_t)(colon - hd)) || strpbrk(hd, "\r\n")) {
			curl_slist_free_all(l);
			return mbx__error_set(err, MBX_EINVAL, 0, "network", "header `%.60s` is not `Name: value`", hd);
		}
		if ((size_t)(colon - hd) == 4 && strncasecmp(hd, "Host", 4) == 0 && drop_host)
			continue;
		if ((size_t)(colon - hd) == 6 && strncasecmp(hd, "Expect", 6) == 0)
			have_expect = 1;
		nl = curl_slist_append(l, hd);
		if (nl == NULL) {
			curl_slist_free_all(l);
			return mbx__error_oom(err);
		}
		l = nl;
	}
	if (!have_expect) {
		nl = curl_slist_append(l, "Expect:");
		if (nl == NULL) {
			curl_slist_free_all(l);
			return mbx__error_oom(err);
		}
		l = nl;
	}
	*out = l;
	return MBX_OK;
}

/* A Host header the caller gave must name the URL's host and port. */
static int check_host_header(const char *const *headers, const char *url, mbx_error **err)
{
	struct mbx_host uh, hh;
	uint16_t up = 0, hp = 0;
	char *norm = NULL;
	const char *why = NULL;
	int https = 0, rc = MBX_OK;
	CURLU *u;

	for (size_t i = 0; headers && headers[i]; i++) {
		const char *hd = headers[i], *v;

		if (strncasecmp(hd, "Host:", 5) != 0)
			continue;
		u = curl_url();
		if (u == NULL)
			return mbx__error_oom(err);
		if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
			curl_url_cleanup(u);
			return mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid URL `%s`", url);
		}
		rc = url_parts(u, &uh, &up, &https, &norm, err);
		curl_url_cleanup(u);
		curl_free(norm);
		norm = NULL;
		if (rc < 0)
			return rc;
		for (v = hd + 5; *v == ' ' || *v == '\t'; v++)
			;
		if (mbx__authority_parse(v, strlen(v), https ? 443 : 80, &hh, &hp, &why) < 0 ||
		    hh.kind != uh.kind || strcmp(hh.name, uh.name) != 0 || hp != up)
			return mbx__error_set(err, MBX_EDENIED, 0, "network",
					      "the Host header `%s` does not name the URL's host: the policy checks the URL", v);
	}
	return MBX_OK;
}

int mbx_sandbox_http_request(mbx_sandbox *sb, const char *method, const char *url, const char *const *headers,
			     const uint8_t *body, size_t body_len, mbx_http_response **out, mbx_error **err)
{
	uint64_t deadline, max_up;
	unsigned redirects;
	struct curl_slist *hdrs = NULL;
	char *cur = NULL, *next = NULL;
	char meth[33];
	const char *why = NULL;
	mbx_http_response *resp = NULL;
	int rc, dropped_host = 0;

	MBX_CHECK_ARG(out != NULL, err);
	*out = NULL;
	MBX_CHECK_ARG(sb != NULL, err);
	if (sb->destroyed)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
	if (method == NULL || strlen(method) > 32 || !is_token(method, strlen(method)))
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "invalid HTTP method");
	if (url == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "no URL given");
	if (body == NULL && body_len)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "body is NULL but body_len is %zu", body_len);
	max_up = mbx__net_limit(sb->cfg, MBX_NET_LIMIT_REQUEST_BYTES);
	if (body_len > max_up)
		return mbx__error_set(err, MBX_ETOOBIG, 0, "network", "request body of %zu bytes is over the limit of %llu",
				      body_len, (unsigned long long)max_up);
	/* libcurl is loaded here, on the first request (curl-api.h). */
	rc = mbx__curl_load(&why);
	if (rc < 0) {
		mbx__error_set(err, rc, 0, "network", "%s", why);
		if (rc == MBX_ENOTSUP)
			mbx__error_suggest(err, "install it (apt-get install " MBX_CURL_PACKAGE ")");
		return rc;
	}
	rc = check_host_header(headers, url, err);
	if (rc < 0)
		return rc;
	rc = build_headers(headers, &hdrs, 0, err);
	if (rc < 0)
		return rc;
	snprintf(meth, sizeof(meth), "%s", method);
	cur = strdup(url);
	if (cur == NULL) {
		curl_slist_free_all(hdrs);
		return mbx__error_oom(err);
	}
	deadline = mono_ms() + mbx__net_limit(sb->cfg, MBX_NET_LIMIT_TIMEOUT_MS);
	redirects = (unsigned)mbx__net_limit(sb->cfg, MBX_NET_LIMIT_REDIRECTS);
	for (;;) {
		rc = one_hop(sb, meth, cur, hdrs, body, body_len, deadline, redirects > 0, &resp, &next, err);
		if (rc < 0 || next == NULL)
			break;
		/* Another hop: decided again from scratch. */
		if (resp->status == 303 || ((resp->status == 301 || resp->status == 302) && strcmp(meth, "POST") == 0)) {
			if (strcmp(meth, "HEAD") != 0)
				snprintf(meth, sizeof(meth), "GET");
			body = NULL;
			body_len = 0;
		}
		mbx_http_response_free(resp);
		resp = NULL;
		free(cur);
		cur = next;
		next = NULL;
		redirects--;
		/* The caller's Host header named the first URL's host. */
		if (!dropped_host) {
			curl_slist_free_all(hdrs);
			hdrs = NULL;
			rc = build_headers(headers, &hdrs, 1, err);
			if (rc < 0)
				break;
			dropped_host = 1;
		}
	}
	free(cur);
	free(next);
	curl_slist_free_all(hdrs);
	if (rc < 0) {
		mbx_http_response_free(resp);
		return rc;
	}
	if (resp->body.data == NULL && mbx__buf_append(&resp->body, "", 0) < 0) {
		mbx_http_response_free(resp);
		return mbx__error_oom(err);
	}
	*out = resp;
	return MBX_OK;
}

#else /* !MBX_HAVE_CURL */

int mbx_sandbox_http_request(mbx_sandbox *sb, const char *method, const char *url, const char *const *headers,
			     const uint8_t *body, size_t body_len, mbx_http_response **out, mbx_error **err)
{
	(void)sb;
	(void)method;
	(void)url;
	(void)headers;
	(void)body;
	(void)body_len;
	if (out)
		*out = NULL;
	mbx__error_set(err, MBX_ENOTSUP, 0, "network", "this build has no HTTP client (libcurl)");
	mbx__error_suggest(err, "install libcurl4-openssl-dev and rebuild");
	return MBX_ENOTSUP;
}

#endif
