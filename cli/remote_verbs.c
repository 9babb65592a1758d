/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The named-sandbox verbs through a running `mimobox serve` (remote.h):
 * create, exec (in the foreground, streamed), ps, inspect, rm, cat, write,
 * ls, cp (directories: remote_files.c) and http (cmd_http.c). The words
 * are those of the local verbs; what the API does not offer is an error
 * naming it (cli_remote_unavailable()).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "httpc.h"
#include "remote.h"
#include "serve_dl.h"
#include "session.h"

#define ANSWER_MAX ((size_t)64 << 20)
#define UPLOAD_MAX ((size_t)16 << 20)
#define DOWNLOAD_MAX ((size_t)1 << 30)

enum { R_JSON = CLI_OPT_VERB + 40, R_NAME, R_TTL, R_TIMEOUT, R_ENV, R_ENV_FILE, R_WORKDIR, R_STDIN, R_DETACH, R_TTY,
       R_AUDIT, R_FORCE, R_RECURSIVE, R_PARENTS, R_FOLLOW, R_SIGNAL };

static const struct cli_option create_opts[] = {
	{ "json", 0, 0, R_JSON }, { "name", 0, 1, R_NAME }, { "ttl", 0, 1, R_TTL }, CLI_SANDBOX_OPTIONS,
	CLI_HELP_OPTION, { NULL, 0, 0, 0 }
};
static const struct cli_option exec_opts[] = {
	{ "json", 0, 0, R_JSON }, { "timeout", 0, 1, R_TIMEOUT }, { "env", 'e', 1, R_ENV },
	{ "env-file", 0, 1, R_ENV_FILE }, { "workdir", 'w', 1, R_WORKDIR }, { "stdin", 'i', 0, R_STDIN },
	{ "detach", 'd', 0, R_DETACH }, { "tty", 't', 0, R_TTY }, { "audit", 0, 0, R_AUDIT }, CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};
static const struct cli_option plain_opts[] = {
	{ "json", 0, 0, R_JSON }, { "force", 'f', 0, R_FORCE }, { "recursive", 'r', 0, R_RECURSIVE },
	{ "parents", 'p', 0, R_PARENTS }, CLI_HELP_OPTION, { NULL, 0, 0, 0 }
};

struct words {
	const char *verb;
	int json, force, recursive, parents, help;
	const char *ops[64];
	int n_ops;
	char **rest;		/* exec: the program and its arguments */
	int n_rest;
};

/* Options anywhere among the operands (exec: up to the program). 0, or -1 after a usage error. */
static int words_parse(struct words *w, int argc, char **argv, const struct cli_option *opts, int max_ops,
		       int (*other)(void *ud, int id, const char *value), void *ud)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id;

	w->json = cli_wants_json(argc, argv, opts, 0);
	for (;;) {
		while ((id = cli_next_option(&a, opts, &value, why, sizeof(why))) != CLI_OPT_END) {
			if (id == CLI_OPT_BAD) {
				cli_usage_error(w->json, w->verb, "%s", why);
				return -1;
			}
			if (id == R_JSON)
				w->json = 1;
			else if (id == R_FORCE)
				w->force = 1;
			else if (id == R_RECURSIVE)
				w->recursive = 1;
			else if (id == R_PARENTS)
				w->parents = 1;
			else if (id == CLI_OPT_HELP)
				w->help = 1;
			else if (!other || other(ud, id, value) < 0)
				return -1;
		}
		if (a.next >= argc)
			return 0;
		if (strcmp(argv[a.next - 1], "--") == 0 || w->n_ops == max_ops) {
			w->rest = argv + a.next;
			w->n_rest = argc - a.next;
			if (max_ops < 0 || w->n_ops < max_ops || !other) {
				cli_usage_error(w->json, w->verb, "unexpected argument `%s`", argv[a.next]);
				return -1;
			}
			return 0;
		}
		w->ops[w->n_ops++] = argv[a.next++];
	}
}

/* json_object_put() of an object that may be NULL (json-c may not be loaded then). */
static void jput(json_object *o)
{
	if (o)
		json_object_put(o);
}

static void json_load_or_exit(int json, int *status)
{
	*status = cli_remote_json_load(json) < 0 ? CLI_EXIT_FAILED : 0;
}

/* The JSON object of an answer, or NULL after reporting. */
static json_object *answer_json(int json, const struct cli_remote_answer *a)
{
	json_object *o = cli_remote_json_parse(a->body.data, a->body.len);

	if (!o)
		cli_report(json, MBX_EPROTO, "the server's answer is not a JSON object", NULL, NULL, 0);
	return o;
}

/* A sandbox name as the local verbs take it; 0, or -1 after a usage error. */
static int name_ok(int json, const char *verb, const char *name)
{
	char why[CLI_WHY_MAX];

	if (cli_check_name(name, why, sizeof(why)) == 0)
		return 0;
	cli_usage_error(json, verb, "%s", why);
	return -1;
}

static int print_buf(struct cli_buf *b)
{
	int rc = b->failed || (cli_write_all(STDOUT_FILENO, b->data, b->len) < 0 && errno != EPIPE) ? 1 : 0;

	cli_buf_free(b);
	return rc;
}

/*
 * One request whose success is status `want` (0: any 2xx); the answer's
 * JSON in *out when wanted. The exit status: of the file verbs when `file`
 * (1 for a refused operation), else 125 for any failure.
 */
static int request(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		   const void *body, size_t len, unsigned want, json_object **out, struct cli_buf *raw, int file)
{
	struct cli_remote_answer a;
	int status = 0;

	if (cli_remote_call(r, json, method, target, ctype, body, len, raw ? DOWNLOAD_MAX : ANSWER_MAX, &a) < 0)
		return CLI_EXIT_FAILED;
	if (want ? a.status != want : a.status / 100 != 2) {
		if (file) {
			status = cli_remote_report_file(r, json, &a);
		} else {
			status = cli_remote_report(r, json, &a);
			if (status == CLI_EXIT_NOTFOUND || status == CLI_EXIT_NOEXEC)
				status = CLI_EXIT_FAILED;	/* not a program's */
		}
	} else if (out) {
		*out = answer_json(json, &a);
		if (!*out)
			status = CLI_EXIT_FAILED;
	} else if (raw) {
		*raw = a.body;
		a.body.data = NULL;
	}
	cli_buf_free(&a.body);
	return status;
}

static int simple(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		  const void *body, size_t len, unsigned want, json_object **out, struct cli_buf *raw)
{
	return request(r, json, method, target, ctype, body, len, want, out, raw, 0);
}

/* As simple(), for a file operation. */
static int simple_file(struct cli_remote *r, int json, const char *method, const char *target, const char *ctype,
		       const void *body, size_t len, unsigned want, json_object **out, struct cli_buf *raw)
{
	return request(r, json, method, target, ctype, body, len, want, out, raw, 1);
}

static int r_ps_processes(struct cli_remote *r, int json, const char *name);
static int exec_detached(struct cli_remote *r, int json, const char *name, struct cli_buf *body);
static int remote_mkdir(struct cli_remote *r, int json, const char *name, const char *path, int parents);

/* Whether a 404 answer is the server's "no sandbox `NAME`" (not a missing path or process). */
static int no_sandbox_answer(const struct cli_remote_answer *a)
{
	static const char key[] = "\"message\":\"no sandbox `";

	return a->body.data && memmem(a->body.data, a->body.len, key, sizeof(key) - 1) != NULL;
}

/* ---- create ---- */

struct create_ud {
	struct cli_sandbox_opts *so;
	const char *name;
	uint64_t ttl_ms;
	int json;
};

static int create_other(void *ud, int id, const char *value)
{
	struct create_ud *c = ud;
	char why[CLI_WHY_MAX];

	if (id == R_NAME) {
		c->name = value;
		return 0;
	}
	if (id == R_TTL) {
		if (cli_parse_duration(value, &c->ttl_ms, why, sizeof(why)) < 0) {
			cli_usage_error(c->json, "create", "invalid value `%s` for --ttl: %s", value, why);
			return -1;
		}
		return 0;
	}
	if (id < CLI_OPT_SANDBOX_END && cli_sandbox_opts_set(c->so, id, value, why, sizeof(why)) == 0)
		return 0;
	cli_usage_error(c->json, "create", "%s", why);
	return -1;
}

static int r_create(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "create" };
	struct cli_sandbox_opts so;
	struct create_ud c = { &so, NULL, 0, 0 };
	struct cli_buf body = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL;
	char why[CLI_WHY_MAX];
	int status = CLI_EXIT_USAGE;

	cli_sandbox_opts_init(&so);
	c.json = cli_wants_json(argc, argv, create_opts, 0);
	if (words_parse(&w, argc, argv, create_opts, 0, create_other, &c) < 0)
		goto out;
	if (w.n_rest > 0) {
		/* As the local verb: a name goes with --name, a program with exec. */
		cli_usage_error(w.json, "create", "unexpected argument `%s` (`create` runs no program: "
				"use `mimobox exec NAME -- PROGRAM` once it is up)", w.rest[0]);
		goto out;
	}
	if (c.name && cli_check_name(c.name, why, sizeof(why)) < 0) {
		cli_usage_error(w.json, "create", "%s", why);
		goto out;
	}
	cli_buf_puts(&body, "{\"ttl_ms\": ");
	cli_buf_printf(&body, "%llu", (unsigned long long)c.ttl_ms);
	if (c.name) {
		cli_buf_puts(&body, ", \"name\": ");
		cli_json_cstring(&body, c.name);
	}
	if (cli_remote_opts_json(r, w.json, &so, &body) < 0)
		goto out;
	cli_buf_puts(&body, "}");
	json_load_or_exit(w.json, &status);
	if (status)
		goto out;
	status = simple(r, w.json, "POST", "/v1/sandboxes", "application/json", body.data, body.len, 201, &o, NULL);
	if (status)
		goto out;
	{
		const char *name = cli_remote_jstr(o, "name") ? cli_remote_jstr(o, "name") : cli_remote_jstr(o, "id");

		if (w.json) {
			cli_buf_puts(&out, "{\"ok\": true, \"name\": ");
			cli_json_cstring(&out, name);
			cli_buf_puts(&out, ", \"id\": ");
			cli_json_cstring(&out, cli_remote_jstr(o, "id"));
			cli_buf_puts(&out, ", \"isolation\": ");
			cli_json_cstring(&out, cli_remote_jstr(o, "isolation"));
			cli_buf_puts(&out, ", \"limits\": ");
			cli_json_cstring(&out, cli_remote_jstr(o, "limits"));
			cli_buf_puts(&out, "}\n");
		} else {
			cli_buf_printf(&out, "%s\n", name ? name : "");
		}
		status = print_buf(&out);
	}
out:
	jput(o);
	cli_buf_free(&body);
	cli_buf_free(&out);
	cli_sandbox_opts_free(&so);
	return status;
}

/* ---- ps, inspect ---- */

static int r_ps(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "ps" };
	struct cli_buf out = CLI_BUF_INIT;
	json_object *o = NULL, *list = NULL;
	struct timespec ts;
	uint64_t now;
	size_t width = 4, n;
	int status;

	if (words_parse(&w, argc, argv, plain_opts, 1, NULL, NULL) < 0)
		return CLI_EXIT_USAGE;
	json_load_or_exit(w.json, &status);
	if (status)
		return status;
	if (w.n_ops)
		return r_ps_processes(r, w.json, w.ops[0]);
	status = simple(r, w.json, "GET", "/v1/sandboxes", NULL, NULL, 0, 200, &o, NULL);
	if (status)
		return status;
	if (!json_object_object_get_ex(o, "sandboxes", &list) || !json_object_is_type(list, json_type_array)) {
		jput(o);
		cli_report(w.json, MBX_EPROTO, "the server's list of sandboxes is malformed", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec;
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);
		const char *name = cli_remote_jstr(e, "name") ? cli_remote_jstr(e, "name") : cli_remote_jstr(e, "id");

		if (name && strlen(name) > width)
			width = strlen(name);
	}
	/* The columns of the local `ps`; EXPIRES is the idle time left under a ttl. */
	if (w.json)
		cli_buf_puts(&out, "{\"ok\": true, \"sandboxes\": [");
	else
		cli_buf_printf(&out, "%-*s  %-9s  %-7s  %-9s  %s\n", (int)width, "NAME", "ISOLATION", "AGE", "EXPIRES",
			       "STATE");
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i), *busy = NULL;
		const char *name = cli_remote_jstr(e, "name") ? cli_remote_jstr(e, "name") : cli_remote_jstr(e, "id");
		uint64_t created = (uint64_t)cli_remote_jint(e, "created_at_ms") / 1000, age = now > created ? now - created : 0;
		uint64_t ttl_ms = (uint64_t)cli_remote_jint(e, "ttl_ms"), idle_ms = (uint64_t)cli_remote_jint(e, "idle_ms");
		uint64_t left_s = ttl_ms > idle_ms ? (ttl_ms - idle_ms + 999) / 1000 : 0;
		int is_busy = json_object_object_get_ex(e, "busy", &busy) && json_object_is_type(busy, json_type_boolean) &&
			      strcmp(json_object_get_string(busy), "true") == 0;
		char agebuf[32], ttlbuf[40];

		if (w.json) {
			cli_buf_puts(&out, i ? ", {\"name\": " : "{\"name\": ");
			cli_json_cstring(&out, name);
			cli_buf_puts(&out, ", \"id\": ");
			cli_json_cstring(&out, cli_remote_jstr(e, "id"));
			cli_buf_puts(&out, ", \"isolation\": ");
			cli_json_cstring(&out, cli_remote_jstr(e, "isolation"));
			cli_buf_printf(&out, ", \"created\": %llu, \"age_s\": %llu, \"state\": \"%s\", \"ttl_s\": ",
				       (unsigned long long)created, (unsigned long long)age, is_busy ? "busy" : "ready");
			if (ttl_ms)
				cli_buf_printf(&out, "%llu, \"expires_in_s\": %llu}", (unsigned long long)(ttl_ms / 1000),
					       (unsigned long long)left_s);
			else
				cli_buf_puts(&out, "null, \"expires_in_s\": null}");
		} else {
			cli_format_duration(agebuf, sizeof(agebuf), age);
			if (ttl_ms) {
				snprintf(ttlbuf, sizeof(ttlbuf), "in ");
				cli_format_duration(ttlbuf + 3, sizeof(ttlbuf) - 3, left_s);
			} else {
				snprintf(ttlbuf, sizeof(ttlbuf), "-");
			}
			cli_buf_printf(&out, "%-*s  %-9s  %-7s  %-9s  %s\n", (int)width, name ? name : "?",
				       cli_remote_jstr(e, "isolation") ? cli_remote_jstr(e, "isolation") : "-", agebuf, ttlbuf,
				       is_busy ? "busy" : "ready");
		}
	}
	if (w.json)
		cli_buf_puts(&out, "]}\n");
	jput(o);
	return print_buf(&out);
}

static int r_inspect(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "inspect" };
	struct cli_buf t = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL;
	int status;

	if (words_parse(&w, argc, argv, plain_opts, 1, NULL, NULL) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_ops != 1) {
		cli_usage_error(w.json, "inspect", "no sandbox name given (expected `mimobox inspect NAME`)");
		return CLI_EXIT_USAGE;
	}
	if (name_ok(w.json, "inspect", w.ops[0]) < 0)
		return CLI_EXIT_USAGE;
	json_load_or_exit(w.json, &status);
	if (status)
		return status;
	cli_remote_sandbox_target(&t, w.ops[0], "");
	status = simple(r, w.json, "GET", t.data, NULL, NULL, 0, 200, &o, NULL);
	cli_buf_free(&t);
	if (status)
		return status;
	if (w.json) {
		const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

		/* {"ok": true, ...the server's description} */
		cli_buf_puts(&out, "{\"ok\": true");
		if (s && strlen(s) > 2)
			cli_buf_printf(&out, ", %s\n", s + 1);
		else
			cli_buf_puts(&out, "}\n");
	} else {
		json_object_object_foreach(o, key, val) {
			cli_buf_printf(&out, "%-14s ", key);
			if (json_object_is_type(val, json_type_string))
				cli_buf_printf(&out, "%s\n", json_object_get_string(val));
			else
				cli_buf_printf(&out, "%s\n", json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
		}
	}
	jput(o);
	return print_buf(&out);
}

/* ---- rm ---- */

static int r_rm(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "rm" };
	struct cli_buf out = CLI_BUF_INIT, removed = CLI_BUF_INIT, absent = CLI_BUF_INIT;
	int status = 0;

	if (words_parse(&w, argc, argv, plain_opts, 64, NULL, NULL) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_ops == 0) {
		cli_usage_error(w.json, "rm", "expected `mimobox rm [-f] NAME...` or `mimobox rm [-r] NAME:PATH`");
		return CLI_EXIT_USAGE;
	}
	/* The local verb's refusals first, in its words. */
	for (int i = 0; i < w.n_ops; i++) {
		const char *colon = strchr(w.ops[i], ':');

		if (w.recursive && !colon) {
			cli_usage_error(w.json, "rm", "-r removes paths inside a sandbox (NAME:PATH), and `%s` is a "
					"sandbox name; to destroy the sandbox, drop -r", w.ops[i]);
			return CLI_EXIT_USAGE;
		}
		if (colon && !colon[1]) {
			cli_usage_error(w.json, "rm", "no path after `%s` (to destroy the sandbox, write `mimobox rm %.*s`)",
					w.ops[i], (int)(colon - w.ops[i]), w.ops[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	for (int i = 0; i < w.n_ops && status == 0; i++) {
		const char *colon = strchr(w.ops[i], ':');
		struct cli_buf t = CLI_BUF_INIT;
		struct cli_remote_answer a;
		char *name = strndup(w.ops[i], colon ? (size_t)(colon - w.ops[i]) : strlen(w.ops[i]));

		if (!name) {
			cli_report(w.json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
			return CLI_EXIT_FAILED;
		}
		if (name_ok(w.json, "rm", name) < 0) {
			free(name);
			return CLI_EXIT_USAGE;
		}
		cli_remote_sandbox_target(&t, name, colon ? "/files?path=" : "");
		if (colon) {
			cli_remote_urlencode(&t, colon + 1);
			if (w.recursive)
				cli_buf_puts(&t, "&recursive=1");
		}
		if (cli_remote_call(r, w.json, "DELETE", t.data, NULL, NULL, 0, ANSWER_MAX, &a) < 0) {
			status = CLI_EXIT_FAILED;
		} else if (a.status == 204 || a.status == 200) {
			cli_buf_puts(&removed, removed.len ? ", " : "");
			cli_json_cstring(&removed, w.ops[i]);
		} else if (a.status == 404 && w.force && (!colon || !no_sandbox_answer(&a))) {
			cli_buf_puts(&absent, absent.len ? ", " : "");
			cli_json_cstring(&absent, w.ops[i]);
		} else if (colon) {
			status = cli_remote_report_file(r, w.json, &a);
		} else {
			status = cli_remote_report(r, w.json, &a);
			if (status == CLI_EXIT_NOTFOUND || status == CLI_EXIT_NOEXEC)
				status = CLI_EXIT_FAILED;
		}
		cli_buf_free(&a.body);
		cli_buf_free(&t);
		free(name);
	}
	if (status == 0 && w.json) {
		cli_buf_printf(&out, "{\"ok\": true, \"removed\": [%s], \"absent\": [%s]}\n",
			       removed.data ? removed.data : "", absent.data ? absent.data : "");
		status = print_buf(&out);
	}
	cli_buf_free(&removed);
	cli_buf_free(&absent);
	cli_buf_free(&out);
	return status;
}

/* ---- cat, write, ls ---- */

/* The operands NAME PATH of a file verb (w->verb), checked as the local
 * verb checks them; 0, or -1 after a usage error. */
static int name_path_words(struct words *w, int argc, char **argv, const char *synopsis)
{
	if (words_parse(w, argc, argv, plain_opts, 2, NULL, NULL) < 0)
		return -1;
	if (w->n_ops != 2) {
		cli_usage_error(w->json, w->verb, "expected `mimobox %s`", synopsis);
		return -1;
	}
	return name_ok(w->json, w->verb, w->ops[0]);
}

static int r_cat(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "cat" };
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT, out = CLI_BUF_INIT;
	int status;

	if (name_path_words(&w, argc, argv, "cat NAME PATH [--json]") < 0)
		return CLI_EXIT_USAGE;
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	cli_remote_sandbox_target(&t, w.ops[0], "/files?path=");
	cli_remote_urlencode(&t, w.ops[1]);
	status = simple_file(r, w.json, "GET", t.data, NULL, NULL, 0, 200, NULL, &data);
	cli_buf_free(&t);
	if (status == 0) {
		if (w.json) {
			cli_buf_puts(&out, "{\"ok\": true, \"path\": ");
			cli_json_cstring(&out, w.ops[1]);
			cli_buf_printf(&out, ", \"bytes\": %zu", data.len);
			cli_json_bytes_field(&out, "content", (const uint8_t *)(data.data ? data.data : ""), data.len);
			cli_buf_puts(&out, "}\n");
			status = print_buf(&out);
		} else if (data.len && cli_write_all(STDOUT_FILENO, data.data, data.len) < 0 && errno != EPIPE) {
			status = 1;
		}
	}
	cli_buf_free(&data);
	return status;
}

static int r_write(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "write" };
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT, out = CLI_BUF_INIT;
	char buf[65536];
	int status;

	if (name_path_words(&w, argc, argv, "write NAME PATH [-p] [--json]") < 0)
		return CLI_EXIT_USAGE;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_report(w.json, MBX_ESYS, "cannot read stdin", NULL, NULL, errno);
			cli_buf_free(&data);
			return CLI_EXIT_FAILED;
		}
		if (n == 0)
			break;
		if (data.len + (size_t)n > UPLOAD_MAX) {
			cli_report(w.json, MBX_ETOOBIG, "the server takes files of at most 16 MiB",
				   "set MIMOBOX_HOST=local to write larger files", NULL, 0);
			cli_buf_free(&data);
			return CLI_EXIT_FAILED;
		}
		cli_buf_add(&data, buf, (size_t)n);
	}
	if (data.failed || cli_remote_json_load(w.json) < 0) {
		cli_buf_free(&data);
		return CLI_EXIT_FAILED;
	}
	status = 0;
	if (w.parents) {
		/* -p: the directories above the path first (nothing to make for "f" or "/f"), 0755. */
		const char *slash = strrchr(w.ops[1], '/');

		if (slash && slash != w.ops[1]) {
			char *dir = strndup(w.ops[1], (size_t)(slash - w.ops[1]));

			status = dir ? remote_mkdir(r, w.json, w.ops[0], dir, 1) : CLI_EXIT_FAILED;
			free(dir);
		}
	}
	if (status == 0) {
		cli_remote_sandbox_target(&t, w.ops[0], "/files?path=");
		cli_remote_urlencode(&t, w.ops[1]);
		status = simple_file(r, w.json, "PUT", t.data, "application/octet-stream", data.data, data.len, 0, NULL,
				     NULL);
		cli_buf_free(&t);
	}
	if (status == 0 && w.json) {
		cli_buf_puts(&out, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&out, w.ops[1]);
		cli_buf_printf(&out, ", \"bytes\": %zu}\n", data.len);
		status = print_buf(&out);
	}
	cli_buf_free(&data);
	return status;
}

static int r_ls(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "ls" };
	struct cli_buf t = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL, *list = NULL;
	const char *path;
	int status;

	if (words_parse(&w, argc, argv, plain_opts, 2, NULL, NULL) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_ops < 1) {
		cli_usage_error(w.json, "ls", "expected `mimobox ls NAME [PATH] [--json]`");
		return CLI_EXIT_USAGE;
	}
	if (name_ok(w.json, "ls", w.ops[0]) < 0)
		return CLI_EXIT_USAGE;
	path = w.n_ops > 1 ? w.ops[1] : "/workspace";
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	cli_remote_sandbox_target(&t, w.ops[0], "/dir?path=");
	cli_remote_urlencode(&t, path);
	status = simple_file(r, w.json, "GET", t.data, NULL, NULL, 0, 200, &o, NULL);
	cli_buf_free(&t);
	if (status)
		return status;
	if (!json_object_object_get_ex(o, "entries", &list) || !json_object_is_type(list, json_type_array)) {
		jput(o);
		cli_report(w.json, MBX_EPROTO, "the server's directory listing is malformed", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (w.json) {
		cli_buf_puts(&out, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&out, path);
		cli_buf_puts(&out, ", \"entries\": [");
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i);
		const char *name = cli_remote_jstr(e, "name") ? cli_remote_jstr(e, "name") : "", *type = cli_remote_jstr(e, "type") ? cli_remote_jstr(e, "type") : "other";
		const char *target = cli_remote_jstr(e, "symlink_target");

		if (w.json) {
			cli_buf_puts(&out, i ? ", {\"name\": " : "{\"name\": ");
			cli_json_cstring(&out, name);
			cli_buf_puts(&out, ", \"type\": ");
			cli_json_cstring(&out, type);
			cli_buf_printf(&out, ", \"size\": %lld, \"symlink\": %s, \"target\": ", (long long)cli_remote_jint(e, "size"),
				       target ? "true" : "false");
			cli_json_cstring(&out, target);
			cli_buf_puts(&out, "}");
		} else {
			cli_buf_printf(&out, "%-9s %12lld  ", type, (long long)cli_remote_jint(e, "size"));
			for (const char *p = name; *p; p++)
				cli_buf_add(&out, (unsigned char)*p < 0x20 || *p == 0x7f ? "?" : p, 1);
			if (target) {
				cli_buf_puts(&out, " -> ");
				for (const char *p = target; *p; p++)
					cli_buf_add(&out, (unsigned char)*p < 0x20 || *p == 0x7f ? "?" : p, 1);
			}
			cli_buf_puts(&out, strcmp(type, "directory") == 0 ? "/\n" : "\n");
		}
	}
	if (w.json)
		cli_buf_puts(&out, "]}\n");
	jput(o);
	return print_buf(&out);
}

/* ---- cp (regular files) ---- */

/* Whether `path` of `name` is a directory on the server: 1, 0, or -1 after reporting. */
static int remote_is_dir(struct cli_remote *r, int json, const char *name, const char *path)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	int rc;

	cli_remote_sandbox_target(&t, name, "/dir?path=");
	cli_remote_urlencode(&t, path);
	rc = cli_remote_call(r, json, "GET", t.data, NULL, NULL, 0, ANSWER_MAX, &a);
	cli_buf_free(&t);
	if (rc < 0)
		return -1;
	rc = a.status == 200;
	if (a.status != 200 && a.status != 400 && a.status != 404) {
		cli_remote_report(r, json, &a);
		rc = -1;
	}
	cli_buf_free(&a.body);
	return rc;
}

static int host_fail(int json, const char *what, const char *path, int e)
{
	char msg[CLI_WHY_MAX + 64];

	snprintf(msg, sizeof(msg), "cannot %s `%s`: %s", what, path, strerror(e));
	cli_report(json, MBX_ESYS, msg, NULL, NULL, e);
	return 1;
}

/* Writes data to `host` (a directory: under `base`) through a temporary file renamed over it. */
static int host_write(int json, const char *host, const char *base, const struct cli_buf *data)
{
	struct stat st;
	char *target = NULL, *tmp = NULL;
	int fd, rc = 0;

	if (strcmp(host, "-") == 0)
		return data->len && cli_write_all(STDOUT_FILENO, data->data, data->len) < 0 && errno != EPIPE;
	if (stat(host, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (asprintf(&target, "%s/%s", host, base) < 0)
			return host_fail(json, "write", host, ENOMEM);
		host = target;
	}
	if (asprintf(&tmp, "%s.mimobox-%d.tmp", host, (int)getpid()) < 0) {
		free(target);
		return host_fail(json, "write", host, ENOMEM);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = host_fail(json, "write", host, errno);
	} else {
		if ((data->len && cli_write_all(fd, data->data, data->len) < 0) || fsync(fd) < 0)
			rc = host_fail(json, "write", host, errno);
		close(fd);
		if (rc == 0 && rename(tmp, host) < 0)
			rc = host_fail(json, "write", host, errno);
		if (rc)
			unlink(tmp);
	}
	free(tmp);
	free(target);
	return rc;
}

static int r_cp(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "cp" };
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT, out = CLI_BUF_INIT;
	char src_name[CLI_NAME_MAX + 1], dst_name[CLI_NAME_MAX + 1], *pathcopy = NULL;
	const char *src_path, *dst_path;
	int src_ref, dst_ref, status = CLI_EXIT_FAILED;

	if (words_parse(&w, argc, argv, plain_opts, 2, NULL, NULL) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_ops != 2) {
		cli_usage_error(w.json, "cp", "expected `mimobox cp HOST_PATH|- NAME:PATH` or `mimobox cp NAME:PATH HOST_PATH|-`");
		return CLI_EXIT_USAGE;
	}
	src_ref = cli_parse_sandbox_ref(w.ops[0], src_name, &src_path);
	dst_ref = cli_parse_sandbox_ref(w.ops[1], dst_name, &dst_path);
	/* The local verb's refusals, in its words. */
	if (src_ref && dst_ref) {
		cli_usage_error(w.json, "cp", "both `%s` and `%s` are in sandboxes: copy through the host", w.ops[0],
				w.ops[1]);
		return CLI_EXIT_USAGE;
	}
	if (!src_ref && !dst_ref) {
		cli_usage_error(w.json, "cp", "neither `%s` nor `%s` is a sandbox path (NAME:PATH)", w.ops[0], w.ops[1]);
		return CLI_EXIT_USAGE;
	}
	if (src_ref && !src_path[0]) {
		cli_usage_error(w.json, "cp", "no path after `%s:`", src_name);
		return CLI_EXIT_USAGE;
	}
	if (dst_ref && !dst_path[0])
		dst_path = "/workspace";	/* NAME: is the workspace, as locally */
	if (!w.ops[src_ref ? 1 : 0][0]) {
		cli_usage_error(w.json, "cp", "the host path is empty");
		return CLI_EXIT_USAGE;
	}
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	if (src_ref) {
		/* A directory: the tree with -r (remote_files.c), else the local verb's refusal. */
		status = cli_remote_cp_down(r, w.json, w.recursive, src_name, src_path, w.ops[1]);
		if (status != -2)
			goto out;
		cli_remote_sandbox_target(&t, src_name, "/files?path=");
		cli_remote_urlencode(&t, src_path);
		status = simple_file(r, w.json, "GET", t.data, NULL, NULL, 0, 200, NULL, &data);
		if (status == 0) {
			pathcopy = strdup(src_path);
			status = pathcopy ? host_write(w.json, w.ops[1], basename(pathcopy), &data)
					  : host_fail(w.json, "write", w.ops[1], ENOMEM);
		}
	} else {
		char buf[65536];
		int fd = strcmp(w.ops[0], "-") == 0 ? STDIN_FILENO : open(w.ops[0], O_RDONLY | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0) {
			status = host_fail(w.json, "read", w.ops[0], errno);
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			status = cli_remote_cp_up(r, w.json, w.recursive, w.ops[0], fd, dst_name, dst_path);
			close(fd);
			goto out;
		}
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				status = host_fail(w.json, "read", w.ops[0], errno);
				break;
			}
			if (n == 0) {
				status = 0;
				break;
			}
			if (data.len + (size_t)n > UPLOAD_MAX) {
				cli_report(w.json, MBX_ETOOBIG, "the server takes files of at most 16 MiB",
					   "set MIMOBOX_HOST=local to copy larger files", NULL, 0);
				break;
			}
			cli_buf_add(&data, buf, (size_t)n);
		}
		if (fd != STDIN_FILENO)
			close(fd);
		if (status || data.failed) {
			status = CLI_EXIT_FAILED;
			goto out;
		}
		switch (remote_is_dir(r, w.json, dst_name, dst_path)) {
		case 1:
			pathcopy = strdup(w.ops[0]);
			cli_remote_sandbox_target(&t, dst_name, "/files?path=");
			cli_remote_urlencode(&t, dst_path);
			cli_buf_puts(&t, "%2F");
			cli_remote_urlencode(&t, strcmp(w.ops[0], "-") && pathcopy ? basename(pathcopy) : "stdin");
			break;
		case 0:
			cli_remote_sandbox_target(&t, dst_name, "/files?path=");
			cli_remote_urlencode(&t, dst_path);
			break;
		default:
			goto out;
		}
		/* The host file's permission bits (stdin: 0644), as the local verb. */
		cli_buf_printf(&t, "&mode=%04o", strcmp(w.ops[0], "-") == 0 ? 0644u : (unsigned)(st.st_mode & 0777));
		status = simple_file(r, w.json, "PUT", t.data, "application/octet-stream", data.data, data.len, 0, NULL, NULL);
	}
	if (status == 0 && w.json) {
		cli_buf_printf(&out, "{\"ok\": true, \"files\": 1, \"directories\": 0, \"symlinks\": 0, "
			       "\"bytes\": %zu, \"skipped\": []}\n", data.len);
		status = print_buf(&out);
	}
out:
	free(pathcopy);
	cli_buf_free(&t);
	cli_buf_free(&data);
	cli_buf_free(&out);
	return status;
}

/* ---- exec ---- */

struct exec_ud {
	struct cli_sandbox_opts so;	/* --env, --workdir (exec's) */
	uint64_t timeout_ms;
	int use_stdin, detach, tty, audit, json;
};

static int exec_other(void *ud, int id, const char *value)
{
	struct exec_ud *x = ud;
	char why[CLI_WHY_MAX];
	int sid = id == R_ENV ? CLI_OPT_ENV : id == R_ENV_FILE ? CLI_OPT_ENV_FILE : id == R_WORKDIR ? CLI_OPT_WORKDIR : 0;

	switch (id) {
	case R_TIMEOUT:
		if (cli_parse_timeout(value, &x->timeout_ms, why, sizeof(why)) < 0) {
			cli_usage_error(x->json, "exec", "invalid value `%s` for --timeout: %s", value, why);
			return -1;
		}
		return 0;
	case R_STDIN:
		x->use_stdin = 1;
		return 0;
	case R_DETACH:
		x->detach = 1;
		return 0;
	case R_TTY:
		x->tty = 1;
		return 0;
	case R_AUDIT:
		x->audit = 1;
		return 0;
	default:
		break;
	}
	if (sid && cli_sandbox_opts_set(&x->so, sid, value, why, sizeof(why)) == 0)
		return 0;
	cli_usage_error(x->json, "exec", "%s", sid ? why : "internal error: an option");
	return -1;
}

static int r_exec(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "exec" };
	struct exec_ud x;
	struct cli_buf body = CLI_BUF_INIT, t = CLI_BUF_INIT, audit = CLI_BUF_INIT;
	struct cli_remote_answer a;
	char *exit_text = NULL;
	size_t exit_len = 0;
	uint64_t audit_mark = 0;
	int status = CLI_EXIT_USAGE;

	memset(&x, 0, sizeof(x));
	cli_sandbox_opts_init(&x.so);
	x.json = cli_wants_json(argc, argv, exec_opts, 0);
	if (words_parse(&w, argc, argv, exec_opts, 1, exec_other, &x) < 0)
		goto out;
	if (w.n_ops != 1 || w.n_rest == 0) {
		cli_usage_error(w.json, "exec", "expected `mimobox exec NAME [OPTIONS] [--] PROGRAM [ARG...]`");
		goto out;
	}
	if (name_ok(w.json, "exec", w.ops[0]) < 0)
		goto out;
	/* The local verb's refusals first, in its words. */
	if (x.detach && (w.json || x.use_stdin)) {
		cli_usage_error(w.json, "exec", "--detach cannot be combined with %s: a background process "
				"has no stdin and its output goes to `mimobox logs`", w.json ? "--json" : "--stdin");
		goto out;
	}
	if (x.tty && w.json) {
		cli_usage_error(w.json, "exec", "-t cannot go with --json: a terminal merges stdout and stderr");
		goto out;
	}
	if (x.detach && (x.tty || x.audit)) {
		cli_usage_error(w.json, "exec", "--detach cannot be combined with %s: a background process has "
				"no terminal and its output goes to `mimobox logs`", x.tty ? "-t" : "--audit");
		goto out;
	}
	if (x.tty && !x.audit) {
		/* On a terminal over the server's WebSocket (remote_pty.c), with exec's timeout. */
		struct cli_remote_pty p = { .verb = "exec", .sandbox = w.ops[0], .argv = w.rest, .argc = w.n_rest,
					    .env = x.so.env, .n_env = x.so.n_env, .workdir = x.so.workdir,
					    .timeout_ms = x.timeout_ms, .sandbox_timeout = 1 };

		status = cli_remote_pty_run(r, &p);
		goto out;
	}
	if (x.tty) {
		status = cli_remote_unavailable(r, w.json, "exec -t --audit", NULL);
		goto out;
	}
	cli_buf_puts(&body, "{\"argv\": [");
	for (int i = 0; i < w.n_rest; i++) {
		cli_buf_puts(&body, i ? ", " : "");
		cli_json_cstring(&body, w.rest[i]);
	}
	cli_buf_puts(&body, "]");
	if (x.timeout_ms)
		cli_buf_printf(&body, ", \"timeout_ms\": %llu", (unsigned long long)x.timeout_ms);
	if (cli_remote_opts_json(r, w.json, &x.so, &body) < 0)
		goto out;
	if (x.use_stdin) {
		struct cli_buf in = CLI_BUF_INIT;
		char buf[65536];

		for (;;) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (in.len + (size_t)n > ((size_t)640 << 10)) {
				cli_buf_free(&in);
				cli_report(w.json, MBX_ETOOBIG, "exec -i through the server takes at most 640 KiB of stdin",
					   "set MIMOBOX_HOST=local to stream larger input", NULL, 0);
				status = CLI_EXIT_FAILED;
				goto out;
			}
			cli_buf_add(&in, buf, (size_t)n);
		}
		cli_buf_puts(&body, ", \"stdin_b64\": ");
		cli_json_base64(&body, (const uint8_t *)(in.data ? in.data : ""), in.len);
		cli_buf_free(&in);
	}
	cli_buf_puts(&body, "}");
	status = CLI_EXIT_FAILED;
	if (body.failed || cli_remote_json_load(w.json) < 0)
		goto out;
	if (x.detach) {
		status = exec_detached(r, w.json, w.ops[0], &body);
		goto out;
	}
	/* --audit: the log's records from here on (remote_audit.c). */
	if (x.audit && (status = cli_remote_audit_mark(r, w.json, w.ops[0], &audit_mark)) != 0)
		goto out;
	status = CLI_EXIT_FAILED;
	cli_remote_sandbox_target(&t, w.ops[0], w.json ? "/exec" : "/exec?stream=1");
	if (w.json) {
		json_object *o = NULL;

		/* As simple(), but a program that cannot run keeps its 126 or 127. */
		if (cli_remote_call(r, w.json, "POST", t.data, "application/json", body.data, body.len, ANSWER_MAX, &a) < 0)
			goto out;
		if (a.status != 200)
			status = cli_remote_exec_failed(r, w.json, w.ops[0], &a);
		else if ((o = answer_json(w.json, &a)) != NULL &&
			 (!x.audit || (status = cli_remote_audit_report(r, 1, w.ops[0], audit_mark, &audit)) == 0))
			status = cli_remote_print_outcome_extra(o, 1, 0, audit.data);
		jput(o);
		cli_buf_free(&a.body);
		goto out;
	}
	status = cli_remote_exec_stream(r, w.ops[0], t.data, body.data, body.len, &exit_text, &exit_len);
	if (status == 0 && (!x.audit || (status = cli_remote_audit_report(r, 0, w.ops[0], audit_mark, &audit)) == 0))
		status = cli_remote_outcome(exit_text, exit_len, 0, 1, NULL);
out:
	cli_buf_free(&audit);
	free(exit_text);
	cli_buf_free(&body);
	cli_buf_free(&t);
	cli_sandbox_opts_free(&x.so);
	return status;
}

/* ---- stat, mkdir ---- */

static int r_stat(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "stat" };
	struct cli_buf t = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL;
	const char *type, *target;
	int status;

	if (name_path_words(&w, argc, argv, "stat NAME PATH [--json]") < 0)
		return CLI_EXIT_USAGE;
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	cli_remote_sandbox_target(&t, w.ops[0], "/stat?path=");
	cli_remote_urlencode(&t, w.ops[1]);
	status = simple_file(r, w.json, "GET", t.data, NULL, NULL, 0, 200, &o, NULL);
	cli_buf_free(&t);
	if (status)
		return status;
	type = cli_remote_jstr(o, "type") ? cli_remote_jstr(o, "type") : "other";
	target = strcmp(type, "symlink") == 0 ? cli_remote_jstr(o, "target") : NULL;
	if (w.json) {
		/* The local verb's object: the operand as given, then the server's fields. */
		cli_buf_puts(&out, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&out, w.ops[1]);
		cli_buf_puts(&out, ", \"type\": ");
		cli_json_cstring(&out, type);
		cli_buf_printf(&out, ", \"size\": %lld, \"mode\": ", (long long)cli_remote_jint(o, "size"));
		cli_json_cstring(&out, cli_remote_jstr(o, "mode") ? cli_remote_jstr(o, "mode") : "0000");
		cli_buf_printf(&out, ", \"mtime_ns\": %lld, \"mtime\": ", (long long)cli_remote_jint(o, "mtime_ns"));
		cli_json_cstring(&out, cli_remote_jstr(o, "mtime") ? cli_remote_jstr(o, "mtime") : "");
		cli_buf_printf(&out, ", \"uid\": %lld, \"gid\": %lld, \"symlink\": %s, \"target\": ",
			       (long long)cli_remote_jint(o, "uid"), (long long)cli_remote_jint(o, "gid"), target ? "true" : "false");
		cli_json_cstring(&out, target);
		cli_buf_puts(&out, "}\n");
	} else {
		cli_buf_puts(&out, "path:  ");
		cli_buf_puts(&out, w.ops[1]);
		cli_buf_printf(&out, "\ntype:  %s\nsize:  %lld\nmode:  %s\nmtime: %s\nuid:   %lld\ngid:   %lld\n", type,
			       (long long)cli_remote_jint(o, "size"), cli_remote_jstr(o, "mode") ? cli_remote_jstr(o, "mode") : "0000",
			       cli_remote_jstr(o, "mtime") ? cli_remote_jstr(o, "mtime") : "", (long long)cli_remote_jint(o, "uid"), (long long)cli_remote_jint(o, "gid"));
		if (target) {
			cli_buf_puts(&out, "target: ");
			for (const char *p = target; *p; p++)
				cli_buf_add(&out, (unsigned char)*p < 0x20 || *p == 0x7f ? "?" : p, 1);
			cli_buf_puts(&out, "\n");
		}
	}
	jput(o);
	return print_buf(&out);
}

/* POST .../dir of `path` (parents: -p); the exit status. */
static int remote_mkdir(struct cli_remote *r, int json, const char *name, const char *path, int parents)
{
	struct cli_buf t = CLI_BUF_INIT;
	int status;

	cli_remote_sandbox_target(&t, name, "/dir?path=");
	cli_remote_urlencode(&t, path);
	if (parents)
		cli_buf_puts(&t, "&parents=1");
	status = t.failed ? CLI_EXIT_FAILED : simple_file(r, json, "POST", t.data, NULL, NULL, 0, 201, NULL, NULL);
	cli_buf_free(&t);
	return status;
}

static int r_mkdir(struct cli_remote *r, int argc, char **argv)
{
	struct words w = { "mkdir" };
	struct cli_buf out = CLI_BUF_INIT;
	int status;

	if (name_path_words(&w, argc, argv, "mkdir NAME PATH [-p] [--json]") < 0)
		return CLI_EXIT_USAGE;
	if (cli_remote_json_load(w.json) < 0)
		return CLI_EXIT_FAILED;
	status = remote_mkdir(r, w.json, w.ops[0], w.ops[1], w.parents);
	if (status == 0 && w.json) {
		cli_buf_puts(&out, "{\"ok\": true, \"path\": ");
		cli_json_cstring(&out, w.ops[1]);
		cli_buf_puts(&out, "}\n");
		status = print_buf(&out);
	}
	return status;
}

/* ---- background processes: exec -d, ps NAME, logs, kill ---- */

/* The server's list of the background processes of `name` in *out (its "processes" array in *list). */
static int proc_list(struct cli_remote *r, int json, const char *name, json_object **out, json_object **list)
{
	struct cli_buf t = CLI_BUF_INIT;
	int status;

	cli_remote_sandbox_target(&t, name, "/processes");
	status = simple(r, json, "GET", t.data, NULL, NULL, 0, 200, out, NULL);
	cli_buf_free(&t);
	if (status)
		return status;
	if (!json_object_object_get_ex(*out, "processes", list) || !json_object_is_type(*list, json_type_array)) {
		jput(*out);
		*out = NULL;
		cli_report(json, MBX_EPROTO, "the server's list of processes is malformed", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	return 0;
}

static int jbool(json_object *o, const char *key)
{
	json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       strcmp(json_object_get_string(v), "true") == 0;
}

/* `mimobox ps NAME`: the sandbox's processes (background ones and the programs of running execs), in the local verb's columns. */
static int r_ps_processes(struct cli_remote *r, int json, const char *name)
{
	struct cli_buf out = CLI_BUF_INIT;
	json_object *o = NULL, *list = NULL;
	char state[48], age[32], size[32];
	size_t n;
	int status;

	if (name_ok(json, "ps", name) < 0)
		return CLI_EXIT_USAGE;
	status = proc_list(r, json, name, &o, &list);
	if (status)
		return status;
	n = json_object_array_length(list);
	if (json) {
		cli_buf_puts(&out, "{\"ok\": true, \"name\": ");
		cli_json_cstring(&out, name);
		cli_buf_puts(&out, ", \"processes\": [");
	} else {
		cli_buf_printf(&out, "%-6s  %-4s  %-18s  %-7s  %-9s  %s\n", "ID", "KIND", "STATE", "AGE", "OUTPUT",
			       "COMMAND");
	}
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(list, i);
		int running = jbool(p, "running"), sig = running ? 0 : (int)cli_remote_jint(p, "signal");
		int code = running ? 0 : (int)cli_remote_jint(p, "exit_code"), timed_out = jbool(p, "timed_out");
		int background = !jbool(p, "foreground");
		uint64_t output = (uint64_t)cli_remote_jint(p, "stdout_bytes") + (uint64_t)cli_remote_jint(p, "stderr_bytes");
		const char *command = cli_remote_jstr(p, "command") ? cli_remote_jstr(p, "command") : cli_remote_jstr(p, "program");

		if (running)
			snprintf(state, sizeof(state), "running");
		else if (timed_out)
			snprintf(state, sizeof(state), "timed out");
		else if (sig > 0)
			snprintf(state, sizeof(state), "killed (signal %d)", sig);
		else if (code >= 0)
			snprintf(state, sizeof(state), "exited %d", code);
		else
			snprintf(state, sizeof(state), "lost");
		if (json) {
			cli_buf_printf(&out, "%s{\"id\": %lld, \"background\": %s, \"running\": %s, \"state\": ", i ? ", " : "",
				       (long long)cli_remote_jint(p, "id"), background ? "true" : "false",
				       running ? "true" : "false");
			cli_json_cstring(&out, state);
			if (running || sig > 0 || code < 0)
				cli_buf_puts(&out, ", \"exit_code\": null");
			else
				cli_buf_printf(&out, ", \"exit_code\": %d", code);
			cli_buf_printf(&out, ", \"signal\": %d, \"timed_out\": %s, \"oom_killed\": false, \"age_s\": %llu, "
				       "\"output_bytes\": %llu, \"command\": ", sig, timed_out ? "true" : "false",
				       (unsigned long long)(cli_remote_jint(p, "age_ms") / 1000), (unsigned long long)output);
			cli_json_cstring(&out, command ? command : "?");
			cli_buf_puts(&out, "}");
		} else {
			cli_format_duration(age, sizeof(age), (uint64_t)cli_remote_jint(p, "age_ms") / 1000);
			cli_format_bytes(size, sizeof(size), output);
			cli_buf_printf(&out, "%-6lld  %-4s  %-18s  %-7s  %-9s  ", (long long)cli_remote_jint(p, "id"),
				       background ? "bg" : "exec", state, age, size);
			for (const char *c = command ? command : "?"; *c; c++)
				cli_buf_add(&out, (unsigned char)*c < 0x20 || *c == 0x7f ? "?" : c, 1);
			cli_buf_puts(&out, "\n");
		}
	}
	if (json)
		cli_buf_puts(&out, "]}\n");
	jput(o);
	return print_buf(&out);
}

/*
 * The process a verb names: `given`, or the sandbox's only background
 * process (the local verbs' rule); 0 with *id, or the exit status.
 */
static int only_process(struct cli_remote *r, int json, const char *name, uint32_t *id)
{
	json_object *o = NULL, *list = NULL;
	char ids[256], msg[320];
	size_t n, used = 0;
	int status = proc_list(r, json, name, &o, &list);
	json_object *only = NULL;

	if (status)
		return status;
	/* Background processes only: the programs of running execs are named by id. */
	n = 0;
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if (!jbool(json_object_array_get_idx(list, i), "foreground") && n++ == 0)
			only = json_object_array_get_idx(list, i);
	if (n == 1) {
		*id = (uint32_t)cli_remote_jint(only, "id");
	} else if (n == 0) {
		cli_report(json, MBX_ENOTFOUND, "the sandbox has no background processes",
			   "start one with `mimobox exec -d NAME -- PROGRAM`", NULL, 0);
		status = 1;
	} else {
		ids[0] = '\0';
		for (size_t i = 0; i < json_object_array_length(list) && used + 16 < sizeof(ids); i++) {
			json_object *p = json_object_array_get_idx(list, i);

			if (!jbool(p, "foreground"))
				used += (size_t)snprintf(ids + used, sizeof(ids) - used, "%s%lld", used ? ", " : "",
							 (long long)cli_remote_jint(p, "id"));
		}
		snprintf(msg, sizeof(msg), "the sandbox has %zu background processes (ids %s): say which", n, ids);
		cli_report(json, MBX_EINVAL, msg, NULL, NULL, 0);
		status = 1;
	}
	jput(o);
	return status;
}

/*
 * Reports a failed answer about a process in the local verbs' words
 * (`missing`: what a 404 of the process means, `ended`: a 409); the exit status.
 */
static int proc_failed(struct cli_remote *r, int json, const struct cli_remote_answer *a, const char *missing,
		       const char *ended)
{
	json_object *o = NULL, *e = NULL;
	const char *message = NULL;
	int status;

	if (a->status == 404 || a->status == 409) {
		struct json_tokener *tok = json_tokener_new();

		if (tok && a->body.len && a->body.len < INT32_MAX)
			o = json_tokener_parse_ex(tok, a->body.data, (int)a->body.len);
		if (tok)
			json_tokener_free(tok);
		if (o && json_object_is_type(o, json_type_object))
			json_object_object_get_ex(o, "error", &e);
		message = cli_remote_jstr(e, "message");
	}
	if (a->status == 409 && ended) {
		cli_report(json, MBX_ENOTFOUND, ended, "see `mimobox ps NAME` for the running ones", NULL, 0);
		status = 1;
	} else if (a->status == 404 && message && strncmp(message, "no process ", 11) == 0) {
		cli_report(json, MBX_ENOTFOUND, missing, "see `mimobox ps NAME` for its processes", NULL, 0);
		status = 1;
	} else {
		status = cli_remote_report_file(r, json, a);
	}
	jput(o);
	return status;
}

struct logs_ud {
	int broken;		/* stdout is gone (`logs -f | head`) */
	int ended;		/* the exit event came */
	char why[256];		/* an error event's message */
};

static int logs_event(void *ud, const char *event, const char *data, size_t len)
{
	struct logs_ud *l = ud;
	struct json_tokener *tok;
	json_object *o = NULL;
	int rc = 0;

	if (strcmp(event, "exit") == 0) {
		l->ended = 1;
		return 0;
	}
	if (strcmp(event, "stdout") && strcmp(event, "stderr") && strcmp(event, "error"))
		return 0;	/* `dropped`: the local verb too loses what a slow reader missed, silently */
	tok = json_tokener_new();
	if (tok && len < INT32_MAX)
		o = json_tokener_parse_ex(tok, data, (int)len);
	if (tok)
		json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		jput(o);
		snprintf(l->why, sizeof(l->why), "a `%s` event that is not a JSON object", event);
		return -1;
	}
	if (strcmp(event, "error") == 0) {
		json_object *e = NULL;

		json_object_object_get_ex(o, "error", &e);
		snprintf(l->why, sizeof(l->why), "%s", cli_remote_jstr(e, "message") ? cli_remote_jstr(e, "message") : "the stream broke");
		rc = -1;
	} else if (!l->broken) {
		/* Both streams to stdout, as the local verb prints them. */
		const char *b64 = cli_remote_jstr(o, "data_b64"), *text = cli_remote_jstr(o, "data");
		uint8_t *bytes = NULL;
		size_t n = 0;

		if (b64) {
			bytes = malloc(strlen(b64) / 4 * 3 + 4);
			if (!bytes || httpc_b64_decode(b64, strlen(b64), bytes, &n) < 0) {
				free(bytes);
				jput(o);
				snprintf(l->why, sizeof(l->why), "an output event with bad base64");
				return -1;
			}
			if (cli_write_all(STDOUT_FILENO, bytes, n) < 0)
				l->broken = 1;
			free(bytes);
		} else if (text && cli_write_all(STDOUT_FILENO, text, strlen(text)) < 0) {
			l->broken = 1;
		}
		if (l->broken) {
			snprintf(l->why, sizeof(l->why), "stdout is closed");
			rc = -1;	/* nobody reads us any more: done */
		}
	}
	jput(o);
	return rc;
}

/* Writes field KEY (KEY_b64 when present) of `o` to stdout; -1 when bad. */
static int write_bytes_field(json_object *o, const char *key)
{
	char k[32];
	const char *s;
	uint8_t *bytes;
	size_t n = 0;
	int rc = 0;

	snprintf(k, sizeof(k), "%s_b64", key);
	if ((s = cli_remote_jstr(o, k)) != NULL) {
		bytes = malloc(strlen(s) / 4 * 3 + 4);
		if (!bytes || httpc_b64_decode(s, strlen(s), bytes, &n) < 0) {
			free(bytes);
			return -1;
		}
		if (n && cli_write_all(STDOUT_FILENO, bytes, n) < 0 && errno != EPIPE)
			rc = 1;
		free(bytes);
	} else if ((s = cli_remote_jstr(o, key)) != NULL && *s && cli_write_all(STDOUT_FILENO, s, strlen(s)) < 0 && errno != EPIPE) {
		rc = 1;
	}
	return rc;
}

static int logs_other(void *ud, int id, const char *value)
{
	(void)value;
	if (id != R_FOLLOW)
		return -1;
	*(int *)ud = 1;
	return 0;
}

static int r_logs(struct cli_remote *r, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ "follow", 'f', 0, R_FOLLOW }, CLI_HELP_OPTION, { NULL, 0, 0, 0 }
	};
	struct words w = { "logs" };
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	int follow = 0, status;
	uint32_t id = 0;

	if (words_parse(&w, argc, argv, opts, 2, logs_other, &follow) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_rest) {
		cli_usage_error(0, "logs", "unexpected argument `%s`", w.rest[0]);
		return CLI_EXIT_USAGE;
	}
	if (w.n_ops == 0) {
		cli_usage_error(0, "logs", "no sandbox name given (expected `mimobox logs NAME [ID]`)");
		return CLI_EXIT_USAGE;
	}
	if (name_ok(0, "logs", w.ops[0]) < 0 || (w.n_ops == 2 && cli_parse_proc_id("logs", 0, w.ops[1], &id) < 0))
		return CLI_EXIT_USAGE;
	if (cli_remote_json_load(0) < 0)
		return CLI_EXIT_FAILED;
	if (!id && (status = only_process(r, 0, w.ops[0], &id)) != 0)
		return status;
	cli_remote_sandbox_target(&t, w.ops[0], "/processes/");
	cli_buf_printf(&t, "%u/output%s", (unsigned)id, follow ? "?follow=1" : "");
	if (t.failed) {
		cli_buf_free(&t);
		return CLI_EXIT_FAILED;
	}
	if (follow) {
		struct logs_ud l;
		struct httpc_sse sse;

		memset(&l, 0, sizeof(l));
		httpc_sse_init(&sse, logs_event, &l);
		status = CLI_EXIT_FAILED;
		if (cli_remote_stream(r, 0, t.data, NULL, 0, cli_remote_sse_feed, &sse, &a) == 0) {
			if (a.status != 200)
				status = proc_failed(r, 0, &a, "no background process with that id in this sandbox", NULL);
			else if (l.ended || l.broken)
				status = 0;
			else
				cli_report(0, MBX_EPROTO, l.why[0] ? l.why : sse.why[0] ? sse.why :
					   "the server's stream ended before the process", NULL, NULL, 0);
			cli_buf_free(&a.body);
		} else if (l.broken) {
			status = 0;
		}
		httpc_sse_free(&sse);
	} else {
		json_object *o = NULL;

		status = CLI_EXIT_FAILED;
		if (cli_remote_call(r, 0, "GET", t.data, NULL, NULL, 0, ANSWER_MAX, &a) == 0) {
			if (a.status != 200) {
				status = proc_failed(r, 0, &a, "no background process with that id in this sandbox", NULL);
			} else if ((o = answer_json(0, &a)) != NULL) {
				/* The server keeps the two apart: stdout's bytes, then stderr's. */
				int w1 = write_bytes_field(o, "stdout"), w2 = w1 < 0 ? 0 : write_bytes_field(o, "stderr");

				if (w1 < 0 || w2 < 0)
					cli_report(0, MBX_EPROTO, "the server's answer has bad base64 output", NULL, NULL, 0);
				else
					status = w1 || w2 ? CLI_EXIT_FAILED : 0;
			}
			jput(o);
			cli_buf_free(&a.body);
		}
	}
	cli_buf_free(&t);
	return status;
}

static int kill_other(void *ud, int id, const char *value)
{
	if (id != R_SIGNAL)
		return -1;
	*(const char **)ud = value;
	return 0;
}

static int r_kill(struct cli_remote *r, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ "signal", 0, 1, R_SIGNAL }, CLI_HELP_OPTION, { NULL, 0, 0, 0 }
	};
	struct words w = { "kill" };
	struct cli_buf t = CLI_BUF_INIT, body = CLI_BUF_INIT;
	struct cli_remote_answer a;
	const char *signame = NULL;
	char why[CLI_WHY_MAX];
	uint32_t id;
	int sig = 0, status = CLI_EXIT_FAILED;

	if (words_parse(&w, argc, argv, opts, 2, kill_other, &signame) < 0)
		return CLI_EXIT_USAGE;
	if (w.n_rest) {
		cli_usage_error(0, "kill", "unexpected argument `%s`", w.rest[0]);
		return CLI_EXIT_USAGE;
	}
	if (w.n_ops < 2) {
		cli_usage_error(0, "kill", w.n_ops == 0 ? "no sandbox name given (expected `mimobox kill NAME ID`)" :
				"no process id given (expected `mimobox kill NAME ID`; see `mimobox ps NAME`)");
		return CLI_EXIT_USAGE;
	}
	if (name_ok(0, "kill", w.ops[0]) < 0 || cli_parse_proc_id("kill", 0, w.ops[1], &id) < 0)
		return CLI_EXIT_USAGE;
	if (signame && cli_parse_signal(signame, &sig, why, sizeof(why)) < 0) {
		cli_usage_error(0, "kill", "invalid value `%s` for --signal: %s", signame, why);
		return CLI_EXIT_USAGE;
	}
	if (cli_remote_json_load(0) < 0)
		return CLI_EXIT_FAILED;
	/* Without --signal: SIGKILL to its whole tree, as locally. */
	if (sig)
		cli_buf_printf(&body, "{\"signal\": %d}", sig);
	else
		cli_buf_puts(&body, "{\"tree\": true}");
	cli_remote_sandbox_target(&t, w.ops[0], "/processes/");
	cli_buf_printf(&t, "%u/signal", (unsigned)id);
	if (!t.failed && !body.failed &&
	    cli_remote_call(r, 0, "POST", t.data, "application/json", body.data, body.len, ANSWER_MAX, &a) == 0) {
		if (a.status == 204)
			status = 0;
		else
			status = proc_failed(r, 0, &a, "no process with that id in this sandbox",
					     "that process has ended already");
		cli_buf_free(&a.body);
	}
	cli_buf_free(&t);
	cli_buf_free(&body);
	return status;
}

/* exec -d: POST .../processes; prints the new process's id. */
static int exec_detached(struct cli_remote *r, int json, const char *name, struct cli_buf *body)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	json_object *o = NULL;
	int status = CLI_EXIT_FAILED;

	cli_remote_sandbox_target(&t, name, "/processes");
	if (!t.failed && cli_remote_call(r, json, "POST", t.data, "application/json", body->data, body->len, ANSWER_MAX,
					 &a) == 0) {
		if (a.status == 409) {
			/* The table of 32 is full of running processes: in the local verb's words. */
			struct json_tokener *tok = json_tokener_new();
			json_object *e = NULL, *x = NULL;

			if (tok && a.body.len && a.body.len < INT32_MAX)
				x = json_tokener_parse_ex(tok, a.body.data, (int)a.body.len);
			if (tok)
				json_tokener_free(tok);
			if (x && json_object_is_type(x, json_type_object))
				json_object_object_get_ex(x, "error", &e);
			cli_report(json, MBX_ESTATE, cli_remote_jstr(e, "message") ? cli_remote_jstr(e, "message") : "the sandbox runs too many "
				   "background processes", "end one with `mimobox kill NAME ID` (an ended one makes room)",
				   NULL, 0);
			jput(x);
		} else if (a.status != 201) {
			status = cli_remote_exec_failed(r, json, name, &a);
		} else if ((o = answer_json(json, &a)) != NULL && cli_remote_jint(o, "id") > 0) {
			printf("%lld\n", (long long)cli_remote_jint(o, "id"));
			status = fflush(stdout) == 0 || errno == EPIPE ? 0 : CLI_EXIT_FAILED;
		} else if (o) {
			cli_report(json, MBX_EPROTO, "the server's answer has no process id", NULL, NULL, 0);
		}
		jput(o);
		cli_buf_free(&a.body);
	}
	cli_buf_free(&t);
	return status;
}

/* ---- snapshot, restore, fork ---- */

#define FORK_MAX_COUNT 64	/* the local verb's */
#define SERVER_FORK_MAX 16	/* per POST .../fork */

/* Prints a sandbox the server made (create, restore, fork) as `create` does. */
static void print_made(struct cli_buf *out, int json, json_object *o)
{
	const char *name = cli_remote_jstr(o, "name") ? cli_remote_jstr(o, "name") : cli_remote_jstr(o, "id");

	if (json) {
		cli_buf_puts(out, "{\"ok\": true, \"name\": ");
		cli_json_cstring(out, name);
		cli_buf_puts(out, ", \"id\": ");
		cli_json_cstring(out, cli_remote_jstr(o, "id"));
		cli_buf_puts(out, ", \"isolation\": ");
		cli_json_cstring(out, cli_remote_jstr(o, "isolation"));
		cli_buf_puts(out, ", \"limits\": ");
		cli_json_cstring(out, cli_remote_jstr(o, "limits"));
		cli_buf_puts(out, "}\n");
	} else {
		cli_buf_printf(out, "%s\n", name ? name : "");
	}
}

/* Forgets the server's snapshot `sid` (quietly: it is ours, made for this command). */
static void snap_forget(struct cli_remote *r, int json, const char *sid)
{
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;

	cli_buf_puts(&t, "/v1/snapshots/");
	cli_remote_urlencode(&t, sid);
	if (!t.failed && cli_remote_call(r, json, "DELETE", t.data, NULL, NULL, 0, ANSWER_MAX, &a) == 0)
		cli_buf_free(&a.body);
	cli_buf_free(&t);
}

/* Writes `data` to the host file `path` (0600) through a temporary file renamed over it; the exit status. */
static int host_write_private(int json, const char *path, const struct cli_buf *data)
{
	char *tmp = NULL;
	int fd, rc = 0;

	if (asprintf(&tmp, "%s.mimobox-%d.tmp", path, (int)getpid()) < 0) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = host_fail(json, "write", path, errno);
	} else {
		if ((data->len && cli_write_all(fd, data->data, data->len) < 0) || fsync(fd) < 0)
			rc = host_fail(json, "write", path, errno);
		close(fd);
		if (rc == 0 && rename(tmp, path) < 0)
			rc = host_fail(json, "write", path, errno);
		if (rc)
			unlink(tmp);
	}
	free(tmp);
	return rc ? CLI_EXIT_FAILED : 0;
}

static int r_snapshot(struct cli_remote *r, int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL;
	char *path = NULL, *cwd = NULL, sid[64];
	int status;

	if (cli_snap_parse(&s, CLI_SNAP_SNAPSHOT, argc, argv) != 0)
		return CLI_EXIT_USAGE;
	if (s.ops[1][0] == '\0') {
		cli_usage_error(s.json, "snapshot", "the snapshot file's name is empty");
		return CLI_EXIT_USAGE;
	}
	if (name_ok(s.json, "snapshot", s.ops[0]) < 0)
		return CLI_EXIT_USAGE;
	if (s.ops[1][0] == '/') {
		path = strdup(s.ops[1]);
	} else if ((cwd = getcwd(NULL, 0)) != NULL && asprintf(&path, "%s/%s", cwd, s.ops[1]) < 0) {
		path = NULL;
	}
	free(cwd);
	if (!path) {
		cli_report(s.json, MBX_ESYS, "cannot tell the working directory", NULL, NULL, errno);
		return CLI_EXIT_FAILED;
	}
	if (cli_remote_json_load(s.json) < 0) {
		free(path);
		return CLI_EXIT_FAILED;
	}
	/* Taken on the server, downloaded, then forgotten there: the file is the only copy. */
	cli_remote_sandbox_target(&t, s.ops[0], "/snapshots");
	status = simple_file(r, s.json, "POST", t.data, "application/json", "{}", 2, 201, &o, NULL);
	cli_buf_free(&t);
	if (status) {
		free(path);
		return status;
	}
	snprintf(sid, sizeof(sid), "%s", cli_remote_jstr(o, "snapshot_id") ? cli_remote_jstr(o, "snapshot_id") : "");
	jput(o);
	if (!sid[0]) {
		cli_report(s.json, MBX_EPROTO, "the server's answer has no snapshot_id", NULL, NULL, 0);
		free(path);
		return CLI_EXIT_FAILED;
	}
	cli_buf_puts(&t, "/v1/snapshots/");
	cli_remote_urlencode(&t, sid);
	cli_buf_puts(&t, "/data");
	status = simple_file(r, s.json, "GET", t.data, NULL, NULL, 0, 200, NULL, &data);
	cli_buf_free(&t);
	snap_forget(r, s.json, sid);
	if (status == 0)
		status = host_write_private(s.json, path, &data);
	if (status == 0 && s.json) {
		cli_buf_puts(&out, "{\"ok\": true, \"name\": ");
		cli_json_cstring(&out, s.ops[0]);
		cli_buf_puts(&out, ", \"file\": ");
		cli_json_cstring(&out, path);
		cli_buf_puts(&out, "}\n");
		status = print_buf(&out);
	}
	cli_buf_free(&data);
	free(path);
	return status;
}

static int r_restore(struct cli_remote *r, int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	struct cli_buf t = CLI_BUF_INIT, data = CLI_BUF_INIT, body = CLI_BUF_INIT, out = CLI_BUF_INIT;
	json_object *o = NULL;
	char buf[65536], sid[64], msg[CLI_WHY_MAX + 64];
	int fd, status = CLI_EXIT_FAILED;

	if (cli_snap_parse(&s, CLI_SNAP_RESTORE, argc, argv) != 0)
		return CLI_EXIT_USAGE;
	fd = open(s.ops[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(msg, sizeof(msg), "cannot read the snapshot file `%s`: %s", s.ops[0], strerror(e));
		cli_report(s.json, e == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, msg, NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(msg, sizeof(msg), "cannot read the snapshot file `%s`: %s", s.ops[0], strerror(errno));
			cli_report(s.json, MBX_ESYS, msg, NULL, NULL, 0);
			close(fd);
			cli_buf_free(&data);
			return CLI_EXIT_FAILED;
		}
		if (n == 0)
			break;
		cli_buf_add(&data, buf, (size_t)n);
	}
	close(fd);
	if (data.failed || cli_remote_json_load(s.json) < 0) {
		if (data.failed)
			cli_report(s.json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		cli_buf_free(&data);
		return CLI_EXIT_FAILED;
	}
	/* Uploaded (checked whole by the server), restored, then forgotten there. */
	status = simple(r, s.json, "POST", "/v1/snapshots", "application/octet-stream", data.data, data.len, 201, &o,
			NULL);
	cli_buf_free(&data);
	if (status)
		return status;
	snprintf(sid, sizeof(sid), "%s", cli_remote_jstr(o, "snapshot_id") ? cli_remote_jstr(o, "snapshot_id") : "");
	jput(o);
	o = NULL;
	if (!sid[0]) {
		cli_report(s.json, MBX_EPROTO, "the server's answer has no snapshot_id", NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	cli_buf_printf(&body, "{\"ttl_ms\": %llu", (unsigned long long)s.ttl_ms);
	if (s.name) {
		cli_buf_puts(&body, ", \"name\": ");
		cli_json_cstring(&body, s.name);
	}
	cli_buf_puts(&body, "}");
	cli_buf_puts(&t, "/v1/snapshots/");
	cli_remote_urlencode(&t, sid);
	cli_buf_puts(&t, "/restore");
	status = simple(r, s.json, "POST", t.data, "application/json", body.data, body.len, 201, &o, NULL);
	snap_forget(r, s.json, sid);
	if (status == 0) {
		print_made(&out, s.json, o);
		status = print_buf(&out);
	}
	jput(o);
	cli_buf_free(&t);
	cli_buf_free(&body);
	return status;
}

/*
 * One POST .../fork of `n` children (named names[0..n) when names); the
 * children printed into `out`. The answer in *a (its body freed) when it
 * failed; -1 after reporting a broken exchange, 0, or the answer's status.
 */
static int fork_call(struct cli_remote *r, const struct cli_snap_args *s, unsigned n, char (*names)[CLI_NAME_MAX + 16],
		     struct cli_buf *out, struct cli_remote_answer *a)
{
	struct cli_buf t = CLI_BUF_INIT, body = CLI_BUF_INIT;
	json_object *o = NULL, *list = NULL;
	int rc;

	/* ttl_ms always: without --ttl the children have none, as locally (the API's default is the parent's). */
	cli_buf_printf(&body, "{\"count\": %u, \"ttl_ms\": %llu", n, (unsigned long long)s->ttl_ms);
	if (names) {
		cli_buf_puts(&body, ", \"names\": [");
		for (unsigned i = 0; i < n; i++) {
			cli_buf_puts(&body, i ? ", " : "");
			cli_json_cstring(&body, names[i]);
		}
		cli_buf_puts(&body, "]");
	}
	cli_buf_puts(&body, "}");
	cli_remote_sandbox_target(&t, s->ops[0], "/fork");
	rc = t.failed || body.failed ? -1 : cli_remote_call(r, s->json, "POST", t.data, "application/json", body.data,
							     body.len, ANSWER_MAX, a);
	cli_buf_free(&t);
	cli_buf_free(&body);
	if (rc < 0)
		return -1;
	if (a->status != 201)
		return (int)a->status;
	o = answer_json(s->json, a);
	cli_buf_free(&a->body);
	if (!o)
		return -1;
	if (!json_object_object_get_ex(o, "sandboxes", &list) || !json_object_is_type(list, json_type_array) ||
	    json_object_array_length(list) != n) {
		jput(o);
		cli_report(s->json, MBX_EPROTO, "the server's answer to a fork is malformed", NULL, NULL, 0);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		print_made(out, s->json, json_object_array_get_idx(list, i));
	jput(o);
	return 0;
}

static int r_fork(struct cli_remote *r, int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	char why[CLI_WHY_MAX], names[SERVER_FORK_MAX][CLI_NAME_MAX + 16];
	unsigned done = 0;
	int status = 0;

	if (cli_snap_parse(&s, CLI_SNAP_FORK, argc, argv) != 0)
		return CLI_EXIT_USAGE;
	if (s.name && s.count > 1) {
		snprintf(names[0], sizeof(names[0]), "%s-%u", s.name, s.count);
		if (cli_check_name(names[0], why, sizeof(why)) < 0) {
			cli_usage_error(s.json, "fork", "--name with --count: %s", why);
			return CLI_EXIT_USAGE;
		}
	}
	if (name_ok(s.json, "fork", s.ops[0]) < 0)
		return CLI_EXIT_USAGE;
	if (cli_remote_json_load(s.json) < 0)
		return CLI_EXIT_FAILED;
	/* The server makes at most 16 per call; the names are the local verb's: NEW, or NEW-1 ... NEW-N. */
	while (status == 0 && done < s.count) {
		unsigned n = s.count - done < SERVER_FORK_MAX ? s.count - done : SERVER_FORK_MAX, taken = n;
		struct cli_buf out = CLI_BUF_INIT;
		struct cli_remote_answer a;
		int rc;

		for (unsigned i = 0; s.name && i < n; i++) {
			if (s.count > 1)
				snprintf(names[i], sizeof(names[i]), "%s-%u", s.name, done + i + 1);
			else
				snprintf(names[i], sizeof(names[i]), "%s", s.name);
		}
		rc = fork_call(r, &s, n, s.name ? names : NULL, &out, &a);
		if (rc == 409 && s.name) {
			/* A taken name: the ones before it are made (as locally), then the error. */
			for (taken = 0; taken < n; taken++) {
				char quoted[sizeof(names[0]) + 2];

				snprintf(quoted, sizeof(quoted), "`%.*s`", (int)sizeof(names[0]) - 1, names[taken]);
				if (a.body.data && memmem(a.body.data, a.body.len, quoted, strlen(quoted)))
					break;
			}
			if (taken > 0 && taken < n) {
				struct cli_remote_answer b;

				memset(&b, 0, sizeof(b));
				if (fork_call(r, &s, taken, names, &out, &b) != 0)
					cli_buf_free(&b.body);
			}
		}
		if (rc > 0) {
			if (out.len)
				(void)print_buf(&out);
			status = cli_remote_report(r, s.json, &a);
			if (status == CLI_EXIT_NOTFOUND || status == CLI_EXIT_NOEXEC)
				status = CLI_EXIT_FAILED;
			cli_buf_free(&a.body);
		} else if (rc < 0) {
			status = CLI_EXIT_FAILED;
		} else {
			status = print_buf(&out);
		}
		cli_buf_free(&out);
		done += n;
	}
	return status;
}

/* ---- dispatch ---- */

int cli_remote_verb(struct cli_remote *r, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(struct cli_remote *r, int argc, char **argv);
	} verbs[] = {
		{ "run", cli_cmd_run_remote }, { "create", r_create }, { "exec", r_exec }, { "ps", r_ps },
		{ "inspect", r_inspect }, { "rm", r_rm }, { "cat", r_cat }, { "write", r_write }, { "ls", r_ls }, { "cp", r_cp },
		{ "stat", r_stat }, { "mkdir", r_mkdir }, { "logs", r_logs }, { "kill", r_kill },
		{ "snapshot", r_snapshot }, { "restore", r_restore }, { "fork", r_fork },
		{ "http", cli_cmd_http_remote },
		{ "shell", cli_remote_shell },
	};
	int json = 0;

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[0], verbs[i].verb) == 0)
			return verbs[i].fn(r, argc, argv);
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		json |= strcmp(argv[i], "--json") == 0;
	return cli_remote_unavailable(r, json, argv[0], NULL);
}
