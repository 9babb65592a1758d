/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's connection to a running `mimobox serve` (remote.h): which
 * server, one request and its answer, the server's errors in the CLI's
 * words, the outcome of a run. Plain C library only (no libmimobox, no
 * json-c: answers are read with jsonr.c): the CLI's front (front.c) is
 * built from it too.
 *
 * One connection per command, kept alive across its requests and made
 * again when the server closes it. Requests are written whole (a body is
 * bounded by the server's limits: 1 MiB of JSON, 16 MiB of file); answers
 * are read by httpc.c, bounded by what each caller keeps.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "core/statebase.h"
#include "httpc.h"
#include "jsonr.h"
#include "remote.h"

/* ---- which server ---- */

static int connect_unix(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *host, const char *port, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, e = 0, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "%s", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(e ? e : ECONNREFUSED));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int reconnect(struct cli_remote *r, char *why, size_t whylen)
{
	if (r->fd >= 0)
		return 0;
	if (r->is_unix) {
		r->fd = connect_unix(r->path);
		if (r->fd < 0)
			snprintf(why, whylen, "%s", strerror(errno));
	} else {
		r->fd = connect_tcp(r->host, r->port, why, whylen);
	}
	return r->fd < 0 ? -1 : 0;
}

/* Splits "http://ADDR:PORT[/]" (ADDR may be [v6]) into r->host and r->port; -1 when malformed. */
static int parse_http(struct cli_remote *r, const char *v)
{
	const char *p = v + 7, *hend, *port;
	size_t hl, pl;

	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend || hend[1] != ':')
			return -1;
		p++;
		port = hend + 2;
	} else {
		hend = strrchr(p, ':');
		if (!hend)
			return -1;
		port = hend + 1;
	}
	hl = (size_t)(hend - p);
	pl = strcspn(port, "/");
	if (hl == 0 || hl >= sizeof(r->host) || pl == 0 || pl >= sizeof(r->port) || (port[pl] && strcmp(port + pl, "/")))
		return -1;
	for (size_t i = 0; i < pl; i++)
		if (port[i] < '0' || port[i] > '9')
			return -1;
	memcpy(r->host, p, hl);
	r->host[hl] = '\0';
	memcpy(r->port, port, pl);
	r->port[pl] = '\0';
	return 0;
}

int cli_remote_pick(struct cli_remote *r, int json)
{
	const char *host = getenv("MIMOBOX_HOST");
	char why[256], msg[512];
	char *base;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (!host || !*host) {
		/* The default socket: used when a server answers on it, else not (a stale one after a crash). */
		struct stat st;

		base = mbx__statebase_path();
		if (!base)
			return 0;
		if (snprintf(r->path, sizeof(r->path), "%s/serve.sock", base) >= (int)sizeof(r->path) ||
		    lstat(r->path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
			free(base);
			return 0;
		}
		free(base);
		r->fd = connect_unix(r->path);
		if (r->fd < 0)
			return 0;
		r->is_unix = 1;
		snprintf(r->where, sizeof(r->where), "unix:%s", r->path);
		return 1;
	}
	r->explicit = 1;
	if (strcmp(host, "local") == 0)
		return 0;
	if (strncmp(host, "unix:", 5) == 0) {
		const char *path = host + 5;

		if (path[0] != '/' || strlen(path) >= sizeof(r->path)) {
			cli_report(json, MBX_EINVAL, "MIMOBOX_HOST=unix:PATH needs an absolute PATH of at most 107 bytes",
				   "e.g. MIMOBOX_HOST=unix:/run/mimobox/serve.sock; MIMOBOX_HOST=local never uses a server",
				   NULL, 0);
			return -1;
		}
		snprintf(r->path, sizeof(r->path), "%s", path);
		snprintf(r->where, sizeof(r->where), "unix:%s", r->path);
		r->is_unix = 1;
	} else if (strncmp(host, "http://", 7) == 0) {
		if (parse_http(r, host) < 0) {
			cli_report(json, MBX_EINVAL, "MIMOBOX_HOST: expected http://ADDR:PORT",
				   "e.g. MIMOBOX_HOST=http://127.0.0.1:8700 (and the token in MIMOBOX_TOKEN)", NULL, 0);
			return -1;
		}
		r->token = getenv("MIMOBOX_TOKEN");
		if (!r->token || !*r->token) {
			snprintf(msg, sizeof(msg), "MIMOBOX_HOST=%.160s is a TCP server, which needs a token, and "
				 "MIMOBOX_TOKEN is not set", host);
			cli_report(json, MBX_EINVAL, msg, "set MIMOBOX_TOKEN to the contents of the server's "
				   "--token-file, or MIMOBOX_HOST=local to run sandboxes here", NULL, 0);
			return -1;
		}
		for (const char *p = r->token; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || p - r->token > 4096) {
				cli_report(json, MBX_EINVAL, "MIMOBOX_TOKEN must be 1 to 4096 printable characters "
					   "without spaces", "copy it from the server's --token-file", NULL, 0);
				return -1;
			}
		snprintf(r->where, sizeof(r->where), "http://%s%s%s:%s", strchr(r->host, ':') ? "[" : "", r->host,
			 strchr(r->host, ':') ? "]" : "", r->port);
	} else {
		snprintf(msg, sizeof(msg), "MIMOBOX_HOST=%.160s is not understood", host);
		cli_report(json, MBX_EINVAL, msg, "expected unix:PATH, http://ADDR:PORT or local", NULL, 0);
		return -1;
	}
	if (reconnect(r, why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "cannot reach the mimobox server at %s (MIMOBOX_HOST): %s", r->where, why);
		cli_report(json, MBX_ESYS, msg, "start it with `mimobox serve`, or set MIMOBOX_HOST=local to run "
			   "sandboxes without a server", NULL, 0);
		return -1;
	}
	return 1;
}

int cli_remote_connect(struct cli_remote *r, char *why, size_t whylen)
{
	return reconnect(r, why, whylen);
}

void cli_remote_close(struct cli_remote *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* ---- one request ---- */

int cli_remote_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct collect {
	struct httpc_resp *resp;	/* during the exchange only */
	unsigned status;		/* the answer's, after it */
	char content_type[HTTPC_CTYPE_MAX];
	struct cli_buf *body;
	size_t limit;
	/* Streaming: a 2xx answer of this type goes to `stream` instead. */
	const char *stream_type;
	int (*stream)(void *ud, const uint8_t *data, size_t len);
	void *stream_ud;
};

static int on_body(void *ud, const uint8_t *data, size_t len)
{
	struct collect *c = ud;

	if (c->stream && c->resp->status / 100 == 2 && strcmp(c->resp->content_type, c->stream_type) == 0)
		return c->stream(c->stream_ud, data, len);
	if (len > c->limit - c->body->len) {
		snprintf(c->resp->why, sizeof(c->resp->why), "the server's answer is larger than %zu MiB",
			 c->limit >> 20);
		return -1;
	}
	cli_buf_add(c->body, data, len);
	if (c->body->failed) {
		snprintf(c->resp->why, sizeof(c->resp->why), "out of memory");
		return -1;
	}
	return 0;
}

static int exchange(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		    const void *body, size_t len, struct collect *c)
{
	struct cli_buf head = CLI_BUF_INIT;
	struct httpc_resp resp;
	uint8_t buf[65536];
	char why[256], msg[640];
	int attempt, rc = -1;

	c->resp = &resp;
	for (attempt = 0; attempt < 2; attempt++) {
		int fresh = r->fd < 0;

		if (reconnect(r, why, sizeof(why)) < 0)
			break;
		cli_buf_free(&head);
		cli_buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n", method, target,
			       r->is_unix ? "localhost" : r->where + 7, len);
		if (r->token)
			cli_buf_printf(&head, "Authorization: Bearer %s\r\n", r->token);
		if (ctype)
			cli_buf_printf(&head, "Content-Type: %s\r\n", ctype);
		cli_buf_puts(&head, "\r\n");
		/* A small body goes with the head, in one write (and one segment). */
		if (len && len <= 65536)
			cli_buf_add(&head, body, len);
		if (head.failed) {
			snprintf(why, sizeof(why), "out of memory");
			break;
		}
		if (cli_remote_send_all(r->fd, head.data, head.len) < 0 || (len > 65536 && cli_remote_send_all(r->fd, body, len) < 0)) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			cli_remote_close(r);
			if (!fresh)
				continue;	/* a kept-alive connection the server had closed: once more */
			break;
		}
		memset(&resp, 0, sizeof(resp));
		resp.head_only = strcmp(method, "HEAD") == 0;
		resp.on_body = on_body;
		resp.ud = c;
		httpc_resp_init(&resp);
		c->body->len = 0;
		for (;;) {
			ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
			size_t used = 0;
			int f;

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				snprintf(why, sizeof(why), "%s", strerror(errno));
				rc = -2;
				break;
			}
			if (n == 0) {
				rc = httpc_eof(&resp) == 1 ? 0 : -2;
				if (rc < 0)
					snprintf(why, sizeof(why), "%s", resp.why);
				cli_remote_close(r);
				break;
			}
			f = httpc_feed(&resp, buf, (size_t)n, &used);
			if (f < 0) {
				snprintf(why, sizeof(why), "%s", resp.why);
				rc = -1;
				break;
			}
			if (f == 1) {
				rc = 0;
				if (used != (size_t)n || resp.conn_close)
					cli_remote_close(r);
				break;
			}
		}
		if (rc == -2 && !fresh && resp.head_len == 0) {
			/* Closed before any answer on a kept-alive connection: try once more. */
			cli_remote_close(r);
			continue;
		}
		break;
	}
	cli_buf_free(&head);
	c->resp = NULL;
	if (rc == 0) {
		c->status = resp.status;
		snprintf(c->content_type, sizeof(c->content_type), "%s", resp.content_type);
	}
	if (rc != 0) {
		cli_remote_close(r);
		snprintf(msg, sizeof(msg), "the mimobox server at %s: %s %s failed: %s", r->where, method, target, why);
		cli_report(json, MBX_EPROTO, msg, "check that the server runs (`mimobox serve`), or set "
			   "MIMOBOX_HOST=local to run sandboxes without it", NULL, 0);
		return -1;
	}
	return 0;
}

int cli_remote_call(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		    const void *body, size_t len, size_t limit, struct cli_remote_answer *a)
{
	struct collect c = { .body = &a->body, .limit = limit };
	int rc;

	memset(a, 0, sizeof(*a));
	rc = exchange(r, json, method, target, ctype, body, len, &c);
	if (rc == 0) {
		a->status = c.status;
		snprintf(a->content_type, sizeof(a->content_type), "%s", c.content_type);
	}
	return rc;
}

int cli_remote_stream(struct cli_remote *r, int json, const char *target, const void *body, size_t len,
		      int (*fn)(void *ud, const uint8_t *data, size_t len), void *ud, struct cli_remote_answer *a)
{
	struct collect c = { .body = &a->body, .limit = CLI_REMOTE_JSON_ANSWER_MAX, .stream_type = "text/event-stream",
			     .stream = fn, .stream_ud = ud };
	int rc;

	memset(a, 0, sizeof(*a));
	rc = exchange(r, json, body ? "POST" : "GET", target, body ? "application/json" : NULL, body, len, &c);
	if (rc == 0) {
		a->status = c.status;
		snprintf(a->content_type, sizeof(a->content_type), "%s", c.content_type);
	}
	return rc;
}


/* ---- errors ---- */

int cli_remote_code(const char *name)
{
	for (int c = -1; c >= -17; c--)
		if (name && strcmp(mbx_error_code_name(c), name) == 0)
			return c;
	return MBX_EPROTO;
}

/* The server's error object, already read: see cli_remote_report(). */
static int report_error(struct cli_remote *r, int json, unsigned status, const char *code_name,
			const char *message, const char *suggestion, const char *layer)
{
	char msg[1024];
	int code = cli_remote_code(code_name);

	if (status == 401) {
		snprintf(msg, sizeof(msg), "the mimobox server at %s refused the token (MIMOBOX_TOKEN)", r->where);
		cli_report(json, MBX_EPERM, msg, "set MIMOBOX_TOKEN to the contents of the server's --token-file", NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (!message) {
		snprintf(msg, sizeof(msg), "the mimobox server at %s answered with status %u", r->where, status);
		cli_report(json, MBX_EPROTO, msg, NULL, NULL, 0);
	} else if (code == MBX_ENOTFOUND && strncmp(message, "no sandbox `", 12) == 0 && strchr(message + 12, '`')) {
		/* In the CLI's words: the sandbox is a name of `mimobox ps`. */
		snprintf(msg, sizeof(msg), "no sandbox named `%.*s` on the mimobox server at %s",
			 (int)(strchr(message + 12, '`') - (message + 12)), message + 12, r->where);
		cli_report(json, code, msg, "see the sandboxes with `mimobox ps`", NULL, 0);
		code = MBX_EINVAL;	/* the exit status of an unknown sandbox: 125 */
	} else {
		cli_report(json, code, message, suggestion, layer, 0);
	}
	return cli_failure_status(code);
}

int cli_remote_unavailable(struct cli_remote *r, int json, const char *what, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s is not available through the mimobox server at %s%s%s", what, r->where,
		 why ? ": " : " yet", why ? why : "");
	cli_report(json, MBX_ENOTSUP, msg, "set MIMOBOX_HOST=local to run it without the server", NULL, 0);
	return CLI_EXIT_USAGE;
}

void cli_remote_sandbox_target(struct cli_buf *t, const char *name, const char *tail)
{
	static const char hex[] = "0123456789ABCDEF";

	/* Every byte but letters, digits, '-', '_' and '.' percent-encoded: a
	 * name the server refuses still makes a well-formed request line. */
	cli_buf_puts(t, "/v1/sandboxes/");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.')
			cli_buf_add(t, p, 1);
		else
			cli_buf_printf(t, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	cli_buf_puts(t, tail);
}

void cli_remote_urlencode(struct cli_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~' || c == '/')
			cli_buf_add(b, s, 1);
		else
			cli_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
}

/* ---- answers ---- */

/* The string member `key` of obj, decoded into a new buffer, or NULL (absent, not a string, no memory). */
static char *jr_str(const struct jsonr_val *obj, const char *key)
{
	struct jsonr_val v;
	char *s = NULL;
	size_t n;

	if (!jsonr_get(obj, key, &v) || jsonr_string(&v, &s, &n) < 0)
		return NULL;
	return s;
}

static int64_t jr_int(const struct jsonr_val *obj, const char *key, int64_t dflt)
{
	struct jsonr_val v;
	int64_t n;

	return jsonr_get(obj, key, &v) && jsonr_int64(&v, &n) == 0 ? n : dflt;
}

static int jr_bool(const struct jsonr_val *obj, const char *key)
{
	struct jsonr_val v;

	return jsonr_get(obj, key, &v) && jsonr_true(&v);
}

/*
 * A bytes member: KEY_b64 decoded when present (exact), else KEY as text;
 * malloc'd into *out (NULL and 0 when absent). -1 on bad base64 or no memory.
 */
static int jr_bytes(const struct jsonr_val *obj, const char *key, uint8_t **out, size_t *outlen)
{
	struct jsonr_val v;
	char k[64], *s = NULL;
	size_t n;

	*out = NULL;
	*outlen = 0;
	snprintf(k, sizeof(k), "%s_b64", key);
	if (jsonr_get(obj, k, &v) && v.type == JSONR_STRING) {
		if (jsonr_string(&v, &s, &n) < 0)
			return -1;
		*out = malloc(n / 4 * 3 + 4);
		if (!*out || httpc_b64_decode(s, n, *out, outlen) < 0) {
			free(s);
			free(*out);
			*out = NULL;
			*outlen = 0;
			return -1;
		}
		free(s);
		return 0;
	}
	if (!jsonr_get(obj, key, &v) || v.type != JSONR_STRING)
		return 0;
	if (jsonr_string(&v, &s, outlen) < 0)
		return -1;
	*out = (uint8_t *)s;
	return 0;
}

/* The error object of an error answer, with its members decoded (each may be NULL). */
struct answer_error {
	char *code, *message, *suggestion, *layer;
};

static void answer_error_read(const struct cli_remote_answer *a, struct answer_error *ae)
{
	struct jsonr_val root, e;

	memset(ae, 0, sizeof(*ae));
	if (jsonr_parse(a->body.data, a->body.len, &root) < 0 || !jsonr_get(&root, "error", &e))
		return;
	ae->code = jr_str(&e, "code");
	ae->message = jr_str(&e, "message");
	ae->suggestion = jr_str(&e, "suggestion");
	ae->layer = jr_str(&e, "layer");
}

static void answer_error_free(struct answer_error *ae)
{
	free(ae->code);
	free(ae->message);
	free(ae->suggestion);
	free(ae->layer);
}

int cli_remote_report(struct cli_remote *r, int json, const struct cli_remote_answer *a)
{
	struct answer_error ae;
	int status;

	answer_error_read(a, &ae);
	status = report_error(r, json, a->status, ae.code, ae.message, ae.suggestion, ae.layer);
	answer_error_free(&ae);
	return status;
}

int cli_remote_report_file(struct cli_remote *r, int json, const struct cli_remote_answer *a)
{
	struct answer_error ae;
	int code, unknown, status, plain;

	answer_error_read(a, &ae);
	code = cli_remote_code(ae.code);
	unknown = code == MBX_ENOTFOUND && ae.message && strncmp(ae.message, "no sandbox `", 12) == 0;
	status = report_error(r, json, a->status, ae.code, ae.message, ae.suggestion, ae.layer);
	plain = a->status == 401 || !ae.message || unknown || code == MBX_EPROTO || code == MBX_ESTATE;
	answer_error_free(&ae);
	if (plain)
		return status == CLI_EXIT_NOTFOUND || status == CLI_EXIT_NOEXEC ? CLI_EXIT_FAILED : status;
	return 1;
}

/* At most this many skipped layers are read from an answer (there are fewer layers). */
#define MAX_SKIPPED 32

/* The answer's skipped_layers into skip[] (strings malloc'd); how many. */
static size_t jr_skipped(const struct jsonr_val *o, struct cli_skip *skip)
{
	struct jsonr_val a, e;
	size_t n = 0;

	if (!jsonr_get(o, "skipped_layers", &a))
		return 0;
	for (size_t i = 0; n < MAX_SKIPPED && jsonr_at(&a, i, &e); i++) {
		char *layer = jr_str(&e, "layer");

		if (layer == NULL)
			continue;
		skip[n].layer = layer;
		skip[n].reason = jr_str(&e, "reason");
		n++;
	}
	return n;
}

int cli_remote_outcome(const char *text, size_t len, int json, int streamed, const char *extra_json)
{
	struct cli_outcome out;
	struct cli_skip skip[MAX_SKIPPED];
	struct jsonr_val o, v;
	uint8_t *sout = NULL, *serr = NULL;
	char *isolation, *trap, *limits, *partial;
	size_t nout = 0, nerr = 0, nskip;
	int64_t code;
	int status;

	if (jsonr_parse(text, len, &o) < 0 || o.type != JSONR_OBJECT) {
		cli_report(json, MBX_EPROTO, "the server's answer to an execute is not a JSON object", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (!streamed && (jr_bytes(&o, "stdout", &sout, &nout) < 0 || jr_bytes(&o, "stderr", &serr, &nerr) < 0)) {
		free(sout);
		cli_report(json, MBX_EPROTO, "the server's answer has bad base64 output", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	memset(&out, 0, sizeof(out));
	out.exit_code = jsonr_get(&o, "exit_code", &v) && jsonr_int64(&v, &code) == 0 ? (int)code : -1;
	out.signal = (int)jr_int(&o, "signal", 0);
	out.timed_out = jr_bool(&o, "timed_out");
	out.oom_killed = jr_bool(&o, "oom_killed");
	out.out = sout;
	out.out_len = nout;
	out.err = serr;
	out.err_len = nerr;
	out.out_truncated = jr_bool(&o, "stdout_truncated");
	out.err_truncated = jr_bool(&o, "stderr_truncated");
	/* elapsed_us, cpu_time_us, peak_memory_bytes, limits: servers before
	 * them gave elapsed_ms only. */
	out.elapsed_us = (uint64_t)jr_int(&o, "elapsed_us", jr_int(&o, "elapsed_ms", 0) * 1000);
	out.cpu_time_us = (uint64_t)jr_int(&o, "cpu_time_us", 0);
	out.peak_memory_bytes = (uint64_t)jr_int(&o, "peak_memory_bytes", 0);
	out.isolation = isolation = jr_str(&o, "isolation");
	out.trap = trap = jr_str(&o, "trap");
	out.limits = limits = jr_str(&o, "limits");
	out.limits_partial = partial = jr_str(&o, "limits_partial");
	nskip = jr_skipped(&o, skip);
	out.skipped = skip;
	out.n_skipped = nskip;
	out.timeout_opt = "--timeout";
	out.memory_opt = "--memory";
	out.extra_json = extra_json;
	status = cli_outcome_report(&out, json, streamed);
	free(sout);
	free(serr);
	free(isolation);
	free(trap);
	free(limits);
	free(partial);
	for (size_t i = 0; i < nskip; i++) {
		free((char *)skip[i].layer);
		free((char *)skip[i].reason);
	}
	return status;
}

/* ---- an execute streamed as it runs ---- */

struct exec_stream {
	char *exit;		/* the exit event's data */
	size_t exit_len;
	char why[256];
	int broken_out;		/* stdout was closed: its output is dropped */
};

static int exec_event(void *ud, const char *event, const char *data, size_t len)
{
	struct exec_stream *s = ud;
	struct jsonr_val o, e;
	int fd = strcmp(event, "stderr") == 0 ? STDERR_FILENO : STDOUT_FILENO;
	uint8_t *bytes = NULL;
	size_t n = 0;

	if (strcmp(event, "start") == 0)
		return 0;
	if (jsonr_parse(data, len, &o) < 0 || o.type != JSONR_OBJECT) {
		snprintf(s->why, sizeof(s->why), "a `%s` event that is not a JSON object", event);
		return -1;
	}
	if (strcmp(event, "exit") == 0) {
		free(s->exit);
		if (!(s->exit = malloc(len + 1))) {
			snprintf(s->why, sizeof(s->why), "out of memory");
			return -1;
		}
		memcpy(s->exit, data, len);
		s->exit[len] = '\0';
		s->exit_len = len;
		return 0;
	}
	if (strcmp(event, "error") == 0) {
		char *message = jsonr_get(&o, "error", &e) ? jr_str(&e, "message") : NULL;

		snprintf(s->why, sizeof(s->why), "%s", message ? message : "the stream broke");
		free(message);
		return -1;
	}
	if (strcmp(event, "stdout") != 0 && strcmp(event, "stderr") != 0)
		return 0;
	if (jr_bytes(&o, "data", &bytes, &n) < 0) {
		snprintf(s->why, sizeof(s->why), "an output event with bad base64");
		return -1;
	}
	if (n && (!s->broken_out || fd != STDOUT_FILENO) && cli_write_all(fd, bytes, n) < 0 && fd == STDOUT_FILENO)
		s->broken_out = 1;
	free(bytes);
	return 0;
}

int cli_remote_sse_feed(void *ud, const uint8_t *data, size_t len)
{
	return httpc_sse_feed(ud, data, len);
}

int cli_remote_exec_failed(struct cli_remote *r, int json, const char *name, const struct cli_remote_answer *a)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer s;
	int status = cli_remote_report(r, json, a);

	if (a->status != 404)
		return status;
	/* A 404 of a sandbox that exists is the program's (127); of one that does not, a bad argument (125). */
	cli_remote_sandbox_target(&t, name, "");
	if (cli_remote_call(r, json, "GET", t.data, NULL, NULL, 0, CLI_REMOTE_JSON_ANSWER_MAX, &s) == 0) {
		if (s.status == 404)
			status = CLI_EXIT_FAILED;
		cli_buf_free(&s.body);
	}
	cli_buf_free(&t);
	return status;
}

int cli_remote_exec_stream(struct cli_remote *r, const char *name, const char *target, const void *body, size_t len,
			   char **exit_text, size_t *exit_len)
{
	struct exec_stream st;
	struct httpc_sse sse;
	struct cli_remote_answer a;
	int status = CLI_EXIT_FAILED;

	memset(&st, 0, sizeof(st));
	*exit_text = NULL;
	*exit_len = 0;
	httpc_sse_init(&sse, exec_event, &st);
	if (cli_remote_stream(r, 0, target, body, len, cli_remote_sse_feed, &sse, &a) < 0)
		goto out;
	if (a.status != 200) {
		status = cli_remote_exec_failed(r, 0, name, &a);
	} else if (!st.exit) {
		cli_report(0, MBX_EPROTO, st.why[0] ? st.why : sse.why[0] ? sse.why : "the stream ended without an exit event",
			   NULL, NULL, 0);
	} else {
		*exit_text = st.exit;
		*exit_len = st.exit_len;
		st.exit = NULL;
		status = 0;
	}
	cli_buf_free(&a.body);
out:
	free(st.exit);
	httpc_sse_free(&sse);
	return status;
}
