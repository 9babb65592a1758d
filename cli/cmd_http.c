/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox http`: an HTTP(S) request made on the host under a named
 * sandbox's network policy (mbx_sandbox_http_request(), in its
 * supervisor), as a program in the sandbox would be allowed to make it.
 * The response body goes to stdout as it arrives from the supervisor.
 *
 * Exit status: 0 for any response (22 with --fail for a status of 400 or
 * more, as curl); 1 when the request failed (refused by the policy, no
 * connection, TLS, timeout, a limit); 125 for wrong arguments or an
 * unknown sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpc.h"
#include "remote.h"
#include "serve_dl.h"
#include "session.h"

#define CLI_EXIT_HTTP_FAIL 22

enum { HTTP_JSON = CLI_OPT_VERB, HTTP_METHOD, HTTP_HEADER, HTTP_DATA, HTTP_DATA_FILE, HTTP_INCLUDE, HTTP_FAIL,
       HTTP_DATA_RAW };

static const struct cli_option http_options[] = {
	{ "json", 0, 0, HTTP_JSON },
	{ "method", 'X', 1, HTTP_METHOD },
	{ "header", 'H', 1, HTTP_HEADER },
	{ "data", 'd', 1, HTTP_DATA },
	{ "data-file", 0, 1, HTTP_DATA_FILE },
	{ "data-raw", 0, 1, HTTP_DATA_RAW },
	{ "include", 'i', 0, HTTP_INCLUDE },
	{ "fail", 'f', 0, HTTP_FAIL },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static void usage(void)
{
	printf("Usage: mimobox http NAME [OPTIONS] URL\n"
	       "\n"
	       "Make an HTTP(S) request under the network policy of a named sandbox\n"
	       "(`create --network ...`): only what the sandbox may reach is reached, and\n"
	       "every hop of a redirect is checked again. The request is made on the host;\n"
	       "the response body goes to stdout.\n"
	       "\n"
	       "Options:\n"
	       "  -X, --method METHOD   GET by default, POST when a body is given\n"
	       "  -H, --header 'NAME: VALUE'\n"
	       "                        add a header field (repeatable)\n"
	       "  -d, --data TEXT|@PATH request body; @PATH reads it from a file (@- stdin),\n"
	       "                        as curl does\n"
	       "  --data-raw TEXT       request body taken as is, even when it starts with @\n"
	       "  --data-file PATH      request body from a file, or stdin for -\n"
	       "  -i, --include         print the status and the header fields first\n"
	       "  -f, --fail            exit 22 when the status is 400 or more\n"
	       "  --json                one JSON object: status, url, headers, body (and\n"
	       "                        body_b64, the exact bytes, when it is not UTF-8)\n"
	       "  -h, --help            show this help\n"
	       "\n"
	       "Exit status: 0 for any response (22 with --fail for an HTTP error); 1 when\n"
	       "the request failed (the policy refused it, no connection, TLS, timeout,\n"
	       "a limit); 125 for wrong arguments or an unknown sandbox.\n");
}

struct http_request {
	int json, include, fail, help;
	const char *method;
	const char **headers;	/* borrowed from argv */
	size_t n_headers;
	const char *data;	/* --data, borrowed */
	const char *data_file;	/* --data-file, borrowed */
	const char *name, *url;
};

/* 0, or -1 after reporting. */
/* The response body as --json has it: "body" (as text), "body_b64" when it is
 * not UTF-8, "body_bytes", and the object's end. */
static void body_json(struct cli_buf *out, const struct cli_buf *body)
{
	cli_json_string(out, (const uint8_t *)body->data, body->len);
	if (!cli_utf8_valid((const uint8_t *)(body->data ? body->data : ""), body->len)) {
		cli_buf_puts(out, ", \"body_b64\": ");
		cli_json_base64(out, (const uint8_t *)body->data, body->len);
	}
	cli_buf_printf(out, ", \"body_bytes\": %zu}\n", body->len);
}

static int parse(struct http_request *r, int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	const char *ops[2], *value, **grown;
	char why[CLI_WHY_MAX];
	int id, n_ops = 0, dashdash = 0;

	r->json = cli_wants_json(argc, argv, http_options, 2);
	while (a.next < argc) {
		if (!dashdash) {
			dashdash = strcmp(argv[a.next], "--") == 0;
			id = cli_next_option(&a, http_options, &value, why, sizeof(why));
			switch (id) {
			case CLI_OPT_BAD:
				cli_usage_error(r->json, "http", "%s", why);
				return -1;
			case CLI_OPT_END:
				break;
			case HTTP_JSON:
				r->json = 1;
				continue;
			case HTTP_METHOD:
				r->method = value;
				continue;
			case HTTP_HEADER:
				grown = realloc(r->headers, (r->n_headers + 2) * sizeof(*grown));
				if (!grown) {
					cli_report(r->json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
					return -1;
				}
				r->headers = grown;
				r->headers[r->n_headers++] = value;
				r->headers[r->n_headers] = NULL;
				continue;
			case HTTP_DATA:
				/* curl's form: -d @FILE reads the body from FILE. */
				if (value[0] == '@') {
					if (r->data_file) {
						cli_usage_error(r->json, "http", "more than one request body given");
						return -1;
					}
					r->data_file = value + 1;
				} else {
					r->data = value;
				}
				continue;
			case HTTP_DATA_RAW:
				r->data = value;
				continue;
			case HTTP_DATA_FILE:
				r->data_file = value;
				continue;
			case HTTP_INCLUDE:
				r->include = 1;
				continue;
			case HTTP_FAIL:
				r->fail = 1;
				continue;
			case CLI_OPT_HELP:
				r->help = 1;
				return 0;
			default:
				cli_usage_error(r->json, "http", "internal error: option %d", id);
				return -1;
			}
			if (dashdash || a.next >= argc)
				continue;
		}
		if (n_ops >= 2) {
			cli_usage_error(r->json, "http", "unexpected argument `%s` (expected `mimobox http NAME "
					"[OPTIONS] URL`)", argv[a.next]);
			return -1;
		}
		ops[n_ops++] = argv[a.next++];
	}
	if (n_ops < 2) {
		cli_usage_error(r->json, "http", "missing %s (expected `mimobox http NAME [OPTIONS] URL`)",
				n_ops ? "the URL" : "the sandbox name");
		return -1;
	}
	r->name = ops[0];
	r->url = ops[1];
	if (r->data && r->data_file) {
		cli_usage_error(r->json, "http", "--data TEXT and --data @FILE (--data-file) cannot be combined");
		return -1;
	}
	if (!r->method)
		r->method = r->data || r->data_file ? "POST" : "GET";
	return 0;
}

/*
 * The body source: --data, or --data-file opened (stdin for -). Its size
 * must be known before the request goes out, so a pipe is read through
 * into memory first (up to the limit). Returns 0, or -1 after reporting.
 */
static int open_body(struct http_request *r, int *fd, uint64_t *len, struct cli_buf *mem)
{
	char message[CLI_WHY_MAX + 64], chunk[65536];
	struct stat st;
	ssize_t n;

	*fd = -1;
	*len = 0;
	if (r->data) {
		cli_buf_puts(mem, r->data);
		*len = mem->len;
		return 0;
	}
	if (!r->data_file)
		return 0;
	*fd = strcmp(r->data_file, "-") == 0 ? STDIN_FILENO : open(r->data_file, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) < 0) {
		snprintf(message, sizeof(message), "cannot read `%s`: %s", r->data_file, strerror(errno));
		cli_report(r->json, MBX_ESYS, message, NULL, NULL, errno);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		*len = (uint64_t)st.st_size;
		return 0;
	}
	for (;;) {
		n = read(*fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cli_buf_add(mem, chunk, (size_t)n);
		if (mem->len > WIRE_HTTP_BODY_MAX)
			break;
	}
	if (n < 0 || mem->failed) {
		snprintf(message, sizeof(message), "cannot read `%s`: %s", r->data_file,
			 n < 0 ? strerror(errno) : "out of memory");
		cli_report(r->json, MBX_ESYS, message, NULL, NULL, n < 0 ? errno : ENOMEM);
		return -1;
	}
	if (*fd != STDIN_FILENO)
		close(*fd);
	*fd = -1;
	*len = mem->len;
	return 0;
}

/* Sends the request and its body; 0, or the exit status after reporting. */
static int send_request(struct http_request *r, struct wire_conn *conn)
{
	struct cli_buf b = CLI_BUF_INIT, mem = CLI_BUF_INIT;
	static uint8_t chunk[WIRE_CHUNK];
	uint64_t len, sent = 0;
	size_t start, i, n;
	ssize_t got;
	int fd, rc = 0;

	if (open_body(r, &fd, &len, &mem) < 0) {
		cli_buf_free(&mem);
		return 1;
	}
	if (len > WIRE_HTTP_BODY_MAX) {
		cli_report(r->json, MBX_ETOOBIG, "the request body is over 64 MiB", NULL, NULL, 0);
		rc = 1;
		goto out;
	}
	start = wire_begin(&b, WIRE_HTTP);
	wire_str(&b, r->method);
	wire_str(&b, r->url);
	wire_u32(&b, (uint32_t)r->n_headers);
	for (i = 0; i < r->n_headers; i++)
		wire_str(&b, r->headers[i]);
	wire_u64(&b, len);
	if (wire_end(&b, start) < 0) {
		cli_usage_error(r->json, "http", "the URL and header fields are too long");
		rc = CLI_EXIT_FAILED;
		goto out;
	}
	/* The body in pieces; the supervisor collects it (the library takes a buffer). */
	while (rc == 0 && sent < len) {
		if (fd < 0) {
			n = len - sent < WIRE_CHUNK ? (size_t)(len - sent) : WIRE_CHUNK;
			memcpy(chunk, mem.data + sent, n);
		} else {
			do
				got = read(fd, chunk, len - sent < WIRE_CHUNK ? (size_t)(len - sent) : WIRE_CHUNK);
			while (got < 0 && errno == EINTR);
			if (got <= 0) {
				cli_report(r->json, MBX_ESYS, "the request body file changed while it was read",
					   NULL, NULL, got < 0 ? errno : 0);
				rc = 1;
				break;
			}
			n = (size_t)got;
		}
		start = wire_begin(&b, WIRE_DATA);
		wire_bytes(&b, chunk, n);
		(void)wire_end(&b, start);
		sent += n;
		if (b.len >= WIRE_CHUNK * 4 && cli_session_send(conn, &b) < 0)
			rc = cli_session_lost(r->json, r->name, errno);
	}
	if (rc == 0 && cli_session_send(conn, &b) < 0)
		rc = cli_session_lost(r->json, r->name, errno);
out:
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	cli_buf_free(&b);
	cli_buf_free(&mem);
	return rc;
}

/* Prints the status line and header fields (--include) or starts the JSON object. */
static void head_out(struct http_request *r, struct wire_reader *rd, struct cli_buf *out, int *status)
{
	const char *url, *name, *value;
	uint32_t n, i;

	*status = (int)wire_get_u32(rd);
	url = wire_get_str(rd);
	n = wire_get_u32(rd);
	if (r->json) {
		cli_buf_printf(out, "{\"ok\": true, \"status\": %d, \"url\": ", *status);
		cli_json_cstring(out, url);
		cli_buf_puts(out, ", \"headers\": [");
	} else if (r->include) {
		cli_buf_printf(out, "HTTP %d\r\n", *status);
	}
	for (i = 0; i < n && !rd->bad; i++) {
		name = wire_get_str(rd);
		value = wire_get_str(rd);
		if (r->json) {
			cli_buf_puts(out, i ? ", {\"name\": " : "{\"name\": ");
			cli_json_cstring(out, name);
			cli_buf_puts(out, ", \"value\": ");
			cli_json_cstring(out, value);
			cli_buf_puts(out, "}");
		} else if (r->include) {
			cli_buf_printf(out, "%s: %s\r\n", name, value);
		}
	}
	if (r->json)
		cli_buf_puts(out, "]");
	else if (r->include)
		cli_buf_puts(out, "\r\n");
}

int cli_cmd_http(int argc, char **argv)
{
	struct http_request r;
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf out = CLI_BUF_INIT, body = CLI_BUF_INIT;
	const uint8_t *data;
	size_t len;
	int rc, status = 0, ret = CLI_EXIT_FAILED, broken = 0;

	memset(&r, 0, sizeof(r));
	wire_conn_init(&conn, -1);
	if (parse(&r, argc, argv) < 0)
		goto done;
	if (r.help) {
		usage();
		ret = 0;
		goto done;
	}
	rc = cli_session_open("http", r.name, r.json, &conn, NULL);
	if (rc) {
		ret = rc;
		goto done;
	}
	rc = send_request(&r, &conn);
	if (rc) {
		ret = rc;
		goto done;
	}
	rc = wire_conn_recv(&conn, &f, -1);
	if (rc != 1) {
		ret = cli_session_lost(r.json, r.name, rc < 0 ? errno : 0);
		goto done;
	}
	if (f.type == WIRE_ERROR) {
		rc = cli_session_report_error(r.json, &f.r);
		/* A URL, method or header the library refuses is a wrong argument. */
		ret = rc == MBX_EINVAL ? CLI_EXIT_FAILED : cli_session_file_status(rc);
		goto done;
	}
	if (f.type != WIRE_HTTP_REPLY) {
		ret = cli_session_lost(r.json, r.name, EPROTO);
		goto done;
	}
	head_out(&r, &f.r, &out, &status);
	if (wire_done(&f.r) < 0) {
		ret = cli_session_lost(r.json, r.name, EPROTO);
		goto done;
	}
	if (!r.json && out.len && cli_write_all(STDOUT_FILENO, out.data, out.len) < 0)
		broken = 1;
	/* The body: streamed out, or kept for the JSON object. */
	for (;;) {
		rc = wire_conn_recv(&conn, &f, -1);
		if (rc != 1 || (f.type != WIRE_DATA && f.type != WIRE_END && f.type != WIRE_ERROR)) {
			ret = cli_session_lost(r.json, r.name, rc < 0 ? errno : EPROTO);
			goto done;
		}
		if (f.type == WIRE_ERROR) {
			ret = cli_session_file_status(cli_session_report_error(r.json, &f.r));
			goto done;
		}
		if (f.type == WIRE_END)
			break;
		len = wire_get_bytes(&f.r, &data);
		if (r.json)
			cli_buf_add(&body, data, len);
		else if (!broken && cli_write_all(STDOUT_FILENO, data, len) < 0)
			broken = 1;	/* a reader that went away: the status still counts */
	}
	if (r.json) {
		cli_buf_puts(&out, ", \"body\": ");
		body_json(&out, &body);
		if (out.failed) {
			cli_report(1, MBX_ENOMEM, "out of memory formatting the response", NULL, NULL, ENOMEM);
			goto done;
		}
		(void)cli_write_all(STDOUT_FILENO, out.data, out.len);
	}
	ret = r.fail && status >= 400 ? CLI_EXIT_HTTP_FAIL : 0;
done:
	cli_buf_free(&out);
	cli_buf_free(&body);
	wire_conn_close(&conn);
	free(r.headers);
	return ret;
}

/* ---- through a server: POST /v1/sandboxes/NAME/http (docs/server.md) ---- */

/* The request body a server takes whole in its 1 MiB of JSON, base64 included. */
#define REMOTE_BODY_MAX ((size_t)640 << 10)
#define REMOTE_ANSWER_MAX ((size_t)256 << 20)

/* The exit status of a failed answer, reported: as the local verb's (125 for a wrong argument or sandbox, else 1). */
static int remote_failed(struct cli_remote *rem, int json, const struct cli_remote_answer *a)
{
	json_object *o = cli_remote_json_parse(a->body.data, a->body.len);
	const char *code = cli_remote_jstr(cli_remote_jget(o, "error"), "code");
	int invalid = code && strcmp(code, "invalid_argument") == 0;
	int status = cli_remote_report_file(rem, json, a);

	if (o)
		json_object_put(o);
	return invalid ? CLI_EXIT_FAILED : status;
}

/* Decodes the answer's body: body_b64 when present (exact), else body. 0, or -1 when malformed. */
static int answer_body(json_object *o, struct cli_buf *out)
{
	const char *b64 = cli_remote_jstr(o, "body_b64"), *text = cli_remote_jstr(o, "body");
	json_object *t = cli_remote_jget(o, "body");

	if (b64) {
		size_t n = strlen(b64), got = 0;
		uint8_t *bytes = malloc(n / 4 * 3 + 4);

		if (!bytes || httpc_b64_decode(b64, n, bytes, &got) < 0) {
			free(bytes);
			return -1;
		}
		cli_buf_add(out, bytes, got);
		free(bytes);
		return out->failed ? -1 : 0;
	}
	if (!text)
		return -1;
	cli_buf_add(out, text, (size_t)json_object_get_string_len(t));
	return out->failed ? -1 : 0;
}

int cli_cmd_http_remote(struct cli_remote *rem, int argc, char **argv)
{
	static const char hex[] = "0123456789ABCDEF";
	struct http_request r;
	struct cli_buf req = CLI_BUF_INIT, mem = CLI_BUF_INIT, t = CLI_BUF_INIT, out = CLI_BUF_INIT, body = CLI_BUF_INIT;
	struct cli_remote_answer a;
	json_object *o = NULL, *hs;
	char why[CLI_WHY_MAX];
	uint64_t len = 0;
	int fd = -1, status, ret = CLI_EXIT_FAILED;

	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	if (parse(&r, argc, argv) < 0)
		goto done;
	if (r.help) {
		usage();
		ret = 0;
		goto done;
	}
	if (cli_check_name(r.name, why, sizeof(why)) < 0) {
		cli_usage_error(r.json, "http", "%s", why);
		goto done;
	}
	if (open_body(&r, &fd, &len, &mem) < 0) {
		ret = 1;
		goto done;
	}
	if (fd >= 0 && len <= REMOTE_BODY_MAX) {
		/* A regular file: read whole, within what the server takes. */
		char chunk[65536];
		ssize_t n;

		for (;;) {
			n = read(fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			cli_buf_add(&mem, chunk, (size_t)n);
			if (mem.len > REMOTE_BODY_MAX)
				break;
		}
		len = mem.len;
	}
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	if (len > REMOTE_BODY_MAX || mem.len > REMOTE_BODY_MAX) {
		cli_report(r.json, MBX_ETOOBIG, "http through the server takes a request body of at most 640 KiB",
			   "set MIMOBOX_HOST=local to send a larger body", NULL, 0);
		ret = 1;
		goto done;
	}
	cli_buf_puts(&req, "{\"method\": ");
	cli_json_cstring(&req, r.method);
	cli_buf_puts(&req, ", \"url\": ");
	cli_json_cstring(&req, r.url);
	cli_buf_puts(&req, ", \"headers\": [");
	for (size_t i = 0; i < r.n_headers; i++) {
		cli_buf_puts(&req, i ? ", " : "");
		cli_json_cstring(&req, r.headers[i]);
	}
	cli_buf_puts(&req, "]");
	if (r.data || r.data_file) {
		cli_buf_puts(&req, ", \"body_b64\": ");
		cli_json_base64(&req, (const uint8_t *)(mem.data ? mem.data : ""), mem.len);
	}
	cli_buf_puts(&req, "}");
	cli_buf_puts(&t, "/v1/sandboxes/");
	for (const unsigned char *p = (const unsigned char *)r.name; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.')
			cli_buf_add(&t, p, 1);
		else
			cli_buf_printf(&t, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	cli_buf_puts(&t, "/http");
	if (req.failed || t.failed) {
		cli_report(r.json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		goto done;
	}
	if (cli_remote_json_load(r.json) < 0 ||
	    cli_remote_call(rem, r.json, "POST", t.data, "application/json", req.data, req.len, REMOTE_ANSWER_MAX, &a) < 0)
		goto done;
	if (a.status != 200) {
		ret = remote_failed(rem, r.json, &a);
		goto done;
	}
	o = cli_remote_json_parse(a.body.data, a.body.len);
	hs = cli_remote_jget(o, "headers");
	if (!o || !cli_remote_jget(o, "status") || !json_object_is_type(cli_remote_jget(o, "status"), json_type_int) ||
	    !hs || !json_object_is_type(hs, json_type_array) || answer_body(o, &body) < 0) {
		cli_report(r.json, MBX_EPROTO, "the server's answer to an http request is malformed", NULL, NULL, 0);
		goto done;
	}
	status = (int)json_object_get_int64(cli_remote_jget(o, "status"));
	/* As the local verb prints it (head_out()). */
	if (r.json) {
		cli_buf_printf(&out, "{\"ok\": true, \"status\": %d, \"url\": ", status);
		cli_json_cstring(&out, cli_remote_jstr(o, "url") ? cli_remote_jstr(o, "url") : r.url);
		cli_buf_puts(&out, ", \"headers\": [");
	} else if (r.include) {
		cli_buf_printf(&out, "HTTP %d\r\n", status);
	}
	for (size_t i = 0; i < json_object_array_length(hs); i++) {
		json_object *h = json_object_array_get_idx(hs, i);
		const char *name = cli_remote_jstr(h, "name") ? cli_remote_jstr(h, "name") : "", *value = cli_remote_jstr(h, "value") ? cli_remote_jstr(h, "value") : "";

		if (r.json) {
			cli_buf_puts(&out, i ? ", {\"name\": " : "{\"name\": ");
			cli_json_cstring(&out, name);
			cli_buf_puts(&out, ", \"value\": ");
			cli_json_cstring(&out, value);
			cli_buf_puts(&out, "}");
		} else if (r.include) {
			cli_buf_printf(&out, "%s: %s\r\n", name, value);
		}
	}
	if (r.json) {
		cli_buf_puts(&out, "], \"body\": ");
		body_json(&out, &body);
	} else {
		if (r.include)
			cli_buf_puts(&out, "\r\n");
		if (body.len)
			cli_buf_add(&out, body.data, body.len);
	}
	if (out.failed) {
		cli_report(r.json, MBX_ENOMEM, "out of memory formatting the response", NULL, NULL, ENOMEM);
		goto done;
	}
	if (out.len)
		(void)cli_write_all(STDOUT_FILENO, out.data, out.len);	/* a reader that went away: the status still counts */
	ret = r.fail && status >= 400 ? CLI_EXIT_HTTP_FAIL : 0;
done:
	if (o)
		json_object_put(o);
	cli_buf_free(&a.body);
	cli_buf_free(&req);
	cli_buf_free(&mem);
	cli_buf_free(&t);
	cli_buf_free(&out);
	cli_buf_free(&body);
	free(r.headers);
	return ret;
}
