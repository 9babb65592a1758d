/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP rules (mbx_config_add_http_rule()): which methods and paths of a
 * host the proxy forwards and mbx_sandbox_http_request() sends. The allow
 * list still decides which hosts are reachable at all; rules narrow what
 * may be done there. Only plain HTTP and the library's own requests can be
 * inspected: a CONNECT tunnel is opaque, so a host with rules is not
 * reachable through one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

/* Longest rule text. */
#define RULE_MAX 2048

void mbx__http_rule_free(struct mbx_http_rule *r)
{
	if (r == NULL)
		return;
	free(r->methods);
	free(r->host);
	free(r->path);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

int mbx__http_rule_dup(const struct mbx_http_rule *src, struct mbx_http_rule *out)
{
	memset(out, 0, sizeof(*out));
	out->deny = src->deny;
	out->methods = strdup(src->methods);
	out->host = strdup(src->host);
	out->path = strdup(src->path);
	out->text = strdup(src->text);
	if (!out->methods || !out->host || !out->path || !out->text) {
		mbx__http_rule_free(out);
		return MBX_ENOMEM;
	}
	return MBX_OK;
}

/* An HTTP method token: letters (upper case by custom, any tchar allowed). */
static int method_ok(const char *s, size_t n)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (n == 0 || n > 20)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] != '*' && strchr(tchar, s[i]) != NULL)))
			return 0;
	return 1;
}

/* Splits off the next word of s at blanks; *s moves past it. */
static const char *word(const char **s, size_t *n)
{
	const char *w;

	while (**s == ' ' || **s == '\t')
		(*s)++;
	w = *s;
	while (**s && **s != ' ' && **s != '\t')
		(*s)++;
	*n = (size_t)(*s - w);
	return *n ? w : NULL;
}

int mbx_config_add_http_rule(mbx_config *cfg, const char *rule, mbx_error **err)
{
	struct mbx_http_rule r = { 0 }, *nr;
	struct mbx_netcfg *net;
	const char *p = rule, *w, *slash, *m, *comma;
	char *hostpart = NULL;
	size_t n, i, len;

	MBX_CHECK_ARG(cfg != NULL, err);
	if (rule == NULL || (len = strlen(rule)) == 0 || len > RULE_MAX)
		return mbx__error_set(err, MBX_EINVAL, 0, "network", "an HTTP rule must be 1 to %d characters", RULE_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)rule[i] < 0x20 && rule[i] != '\t')
			goto bad;
	w = word(&p, &n);
	if (w && ((n == 5 && strncmp(w, "allow", 5) == 0) || (n == 4 && strncmp(w, "deny", 4) == 0))) {
		r.deny = n == 4;
		w = word(&p, &n);
	}
	if (w == NULL)
		goto bad;
	/* Methods: "*" or a comma-separated list of tokens. */
	if (!(n == 1 && w[0] == '*')) {
		for (m = w; m < w + n; m = comma + 1) {
			comma = memchr(m, ',', (size_t)(w + n - m));
			if (comma == NULL)
				comma = w + n;
			if (!method_ok(m, (size_t)(comma - m)))
				goto bad;
		}
	}
	r.methods = strndup(w, n);
	w = word(&p, &n);
	if (w == NULL || word(&p, &i) != NULL)
		goto bad;
	/* HOST[:PORT][/PATH]: the path starts at the first '/' (none: any path). */
	slash = memchr(w, '/', n);
	hostpart = strndup(w, slash ? (size_t)(slash - w) : n);
	r.path = slash ? strndup(slash, (size_t)(w + n - slash)) : strdup("/*");
	r.text = strdup(rule);
	if (!r.methods || !hostpart || !r.path || !r.text) {
		free(hostpart);
		mbx__http_rule_free(&r);
		return mbx__error_oom(err);
	}
	if (!mbx__net_allow_entry_ok(hostpart)) {
		free(hostpart);
		goto bad;
	}
	r.host = hostpart;
	net = cfg->net ? cfg->net : (cfg->net = calloc(1, sizeof(*cfg->net)));
	if (net == NULL) {
		mbx__http_rule_free(&r);
		return mbx__error_oom(err);
	}
	nr = realloc(net->rules, (net->nrules + 1) * sizeof(*nr));
	if (nr == NULL) {
		mbx__http_rule_free(&r);
		return mbx__error_oom(err);
	}
	net->rules = nr;
	net->rules[net->nrules++] = r;
	return MBX_OK;
bad:
	mbx__http_rule_free(&r);
	return mbx__error_set(err, MBX_EINVAL, 0, "network",
			      "HTTP rule `%.200s` is not `[allow|deny] METHOD[,METHOD...]|* HOST[:PORT][/PATH]`, "
			      "e.g. `GET api.example.com/v1/*` or `deny * api.example.com/admin/*`", rule ? rule : "");
}

/* `*` matches any run of characters (slashes included); everything else itself. */
static int glob(const char *pat, const char *s, size_t n)
{
	const char *star = NULL, *back = NULL, *end = s + n;

	while (s < end) {
		if (*pat == '*') {
			star = pat++;
			back = s;
		} else if (*pat && *pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++back;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static int method_matches(const char *methods, const char *m, size_t n)
{
	const char *p = methods, *comma;

	if (strcmp(methods, "*") == 0)
		return 1;
	for (;; p = comma + 1) {
		comma = strchr(p, ',');
		if ((size_t)((comma ? comma : p + strlen(p)) - p) == n && strncmp(p, m, n) == 0)
			return 1;
		if (comma == NULL)
			return 0;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The path as the server will take it, into out[] (NUL-terminated, at most
 * as long as the input): percent escapes decoded, so that `%61dmin` cannot
 * slip past a rule for `admin`. A path the rules could still be fooled by
 * is refused (NULL is returned and *why says why): no leading slash, a `.`
 * or `..` segment, a backslash, an escaped `/`, `.`, `\`, `%` or control
 * character, or a malformed escape.
 */
static const char *canonical_path(const char *path, size_t n, char *out, const char **why)
{
	size_t i, o = 0, seg = 0;

	if (n == 0 || path[0] != '/') {
		*why = "the request target is not a path";
		return NULL;
	}
	for (i = 0; i < n; i++) {
		char c = path[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(path[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(path[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				*why = "the path has a malformed escape";
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			if (c == '/' || c == '.' || c == '\\' || c == '%' || (unsigned char)c < 0x20 || c == 0x7f) {
				*why = "the path has an escaped `/`, `.`, `\\`, `%` or control character";
				return NULL;
			}
			i += 2;
		} else if (c == '\\' || (unsigned char)c < 0x20 || c == 0x7f) {
			*why = "the path has a backslash or a control character";
			return NULL;
		}
		out[o++] = c;
		if (c == '/' || i + 1 == n) {
			/* A segment ended at out[seg, o) (without its slash). */
			size_t end = c == '/' ? o - 1 : o, len = end - seg;

			if ((len == 1 && out[seg] == '.') || (len == 2 && out[seg] == '.' && out[seg + 1] == '.')) {
				*why = "the path has a `.` or `..` segment";
				return NULL;
			}
			seg = o;
		}
	}
	out[o] = '\0';
	return out;
}

int mbx__net_has_http_rules(const mbx_config *cfg, const struct mbx_host *h, uint16_t port)
{
	const struct mbx_netcfg *net = cfg->net;

	for (size_t i = 0; net && i < net->nrules; i++)
		if (mbx__net_entry_matches(net->rules[i].host, h, port, NULL))
			return 1;
	return 0;
}

int mbx__net_http_check(const mbx_config *cfg, const struct mbx_host *h, uint16_t port, int connect,
			const char *method, size_t method_len, const char *target, size_t target_len, char *why,
			size_t whylen)
{
	const struct mbx_netcfg *net = cfg->net;
	const char *q, *bad = NULL;
	char *path;
	size_t plen, i;
	int rc = -1;

	if (!mbx__net_has_http_rules(cfg, h, port))
		return 0;
	if (connect) {
		snprintf(why, whylen, "`%.120s` has HTTP rules, which a CONNECT tunnel would bypass: reach it by "
			 "plain HTTP or the library's HTTP requests", h->name);
		return -1;
	}
	/* The path without the query. */
	q = memchr(target, '?', target_len);
	plen = q ? (size_t)(q - target) : target_len;
	path = malloc(plen + 1);
	if (path == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (canonical_path(target, plen, path, &bad) == NULL) {
		snprintf(why, whylen, "%s, which HTTP rules cannot judge", bad);
		free(path);
		return -1;
	}
	plen = strlen(path);
	for (int pass = 0; pass < 2 && rc < 0 && !bad; pass++) {
		/* Deny rules first, then allow rules. */
		for (i = 0; i < net->nrules; i++) {
			const struct mbx_http_rule *r = &net->rules[i];

			if (r->deny != (pass == 0) || !mbx__net_entry_matches(r->host, h, port, NULL) ||
			    !method_matches(r->methods, method, method_len) || !glob(r->path, path, plen))
				continue;
			if (r->deny) {
				snprintf(why, whylen, "denied by HTTP rule `%.150s`", r->text);
				bad = why;
			} else {
				snprintf(why, whylen, "allowed by HTTP rule `%.150s`", r->text);
				rc = 0;
			}
			break;
		}
	}
	if (rc < 0 && !bad)
		snprintf(why, whylen, "no HTTP rule allows %.*s %.*s on `%.80s`", (int)(method_len > 20 ? 20 : method_len),
			 method, (int)(plen > 80 ? 80 : plen), path, h->name);
	free(path);
	return rc;
}
