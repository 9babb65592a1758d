/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP API of `mimobox serve`: routes, the table of sandboxes, executes
 * (whole or streamed as server-sent events), files, one-shot runs through
 * warm pools, health and metrics. docs/server.md says what each endpoint
 * does; docs/server-openapi.json is the contract the tests check.
 *
 * Threads: libmicrohttpd runs one thread per connection, so a long execute
 * in one sandbox does not hold up the others. A sandbox handle is used by
 * one thread at a time (docs/api.md): every call on one goes under that
 * sandbox's mutex, held for the call. A streamed execute takes the mutex
 * for each wait of at most STREAM_SLICE_MS, so other calls on the same
 * sandbox get in between.
 *
 * Lifetime of a table entry: the table holds one reference while the
 * sandbox is listed, and each request using it holds one more. Removing it
 * (DELETE, expiry, shutdown) unlists it, destroys the sandbox under its
 * mutex and drops the table's reference; the handle is freed with the last
 * reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "serve.h"
#include "serve_dl.h"

#define STREAM_SLICE_MS 200
#define STREAM_HEARTBEAT_MS 5000
#define STREAM_BUFFER ((uint64_t)2 << 20)
#define MAX_POOLS 8
#define ID_MAX 64

/* Buckets of the request duration histogram, in seconds. */
static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct sbent {
	struct sbent *next;
	char id[ID_MAX + 1];
	char name[ID_MAX + 1];	/* "" when none */
	mbx_sandbox *sb;
	pthread_mutex_t lock;	/* serialises every call on sb */
	int destroyed;		/* under lock */
	unsigned refs;		/* under the table lock */
	int listed;		/* under the table lock */
	uint64_t ttl_ms;	/* idle time before expiry; 0: none */
	atomic_ullong last_used_ms;	/* when a call in it last ended (inspecting is no use) */
	json_object *info;	/* what GET shows; immutable after creation */
};

/* A one-shot run's sandbox, to be freed by the expiry thread after the response. */
struct spent {
	struct spent *next;
	mbx_sandbox *sb;
};

struct pool_slot {
	char *key;
	mbx_pool *pool;
};

struct serve_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	int is_unix;
	char *token;
	size_t token_len;
	unsigned pool_size;

	pthread_mutex_t table_lock;
	pthread_cond_t reaper_cond;
	struct sbent *head;
	struct spent *spent;	/* under the table lock */
	atomic_int stopping;
	pthread_t reaper;
	int reaper_started;

	pthread_mutex_t pool_lock;
	struct pool_slot pools[MAX_POOLS];
	size_t n_pools;

	atomic_ullong live, created, destroyed, expired, executes, errors, disconnects, requests;
	atomic_ullong hist[N_BUCKETS];
	atomic_ullong dur_sum_us;
};

enum route {
	R_NONE,
	R_HEALTH,
	R_METRICS,
	R_RUN,
	R_SANDBOXES,
	R_SANDBOX,
	R_EXEC,
	R_FILES,
	R_DIR,
};

struct req {
	uint64_t start_us;
	enum route route;
	char id[ID_MAX + 1];
	char *body;
	size_t len, cap, limit;
	int too_big;
	unsigned status;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000u;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- bytes as JSON ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; malloc'd, NULL when out of memory. */
static char *b64_encode(const uint8_t *s, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*p++ = b64chars[v >> 18];
		*p++ = b64chars[(v >> 12) & 63];
		*p++ = b64chars[(v >> 6) & 63];
		*p++ = b64chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
		*p++ = b64chars[v >> 18];
		*p++ = b64chars[(v >> 12) & 63];
		*p++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

/* Decodes standard base64 (padding optional); 0, or -1 for bad input or no memory. */
static int b64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0;

	while (len > 0 && s[len - 1] == '=')
		len--;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64_value(s[i]);

		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6) {	/* a lone sixth of a byte: not base64 */
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/*
 * Adds bytes under `key` as text: valid UTF-8 as is; otherwise the text
 * with U+FFFD for each bad byte, and the exact bytes under KEY_b64.
 */
static void add_bytes(json_object *o, const char *key, const uint8_t *s, size_t len)
{
	struct cli_buf t = CLI_BUF_INIT;
	char k[64];
	size_t i = 0, n;

	if (!s)
		s = (const uint8_t *)"";
	if (cli_utf8_valid(s, len)) {
		json_object_object_add(o, key, json_object_new_string_len((const char *)s, (int)len));
		return;
	}
	while (i < len) {
		n = cli_utf8_sequence(s + i, len - i, NULL);
		if (n == 0) {
			cli_buf_add(&t, "\xef\xbf\xbd", 3);
			i++;
		} else {
			cli_buf_add(&t, s + i, n);
			i += n;
		}
	}
	json_object_object_add(o, key, json_object_new_string_len(t.data ? t.data : "", (int)t.len));
	cli_buf_free(&t);
	snprintf(k, sizeof(k), "%s_b64", key);
	{
		char *b = b64_encode(s, len);

		json_object_object_add(o, k, json_object_new_string(b ? b : ""));
		free(b);
	}
}

/* ---- responses ---- */

static enum MHD_Result queue(struct MHD_Connection *c, struct req *r, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	r->status = status;
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, struct req *r, unsigned status, const char *ctype,
				  const void *data, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);

	if (resp && ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	return queue(c, r, status, resp);
}

/* Sends obj (and drops the reference). */
static enum MHD_Result send_json(struct MHD_Connection *c, struct req *r, unsigned status, json_object *obj)
{
	size_t len;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
							     &len);
	struct cli_buf b = CLI_BUF_INIT;
	enum MHD_Result ret;

	cli_buf_add(&b, text, len);
	cli_buf_add(&b, "\n", 1);
	json_object_put(obj);
	if (b.failed) {
		cli_buf_free(&b);
		return MHD_NO;
	}
	ret = send_bytes(c, r, status, "application/json", b.data, b.len);
	cli_buf_free(&b);
	return ret;
}

static json_object *error_object(const char *code, const char *message, const char *suggestion, const char *layer)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(e, "suggestion", suggestion ? json_object_new_string(suggestion) : NULL);
	if (layer)
		json_object_object_add(e, "layer", json_object_new_string(layer));
	json_object_object_add(o, "error", e);
	return o;
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, unsigned status, const char *code,
				  const char *message, const char *suggestion)
{
	return send_json(c, r, status, error_object(code, message, suggestion, NULL));
}

/* The HTTP status of a library error code. */
static unsigned status_of(int rc)
{
	switch (rc) {
	case MBX_EINVAL:
	case MBX_ENOEXEC:
	case MBX_ENOTDIR:
		return 400;
	case MBX_EPERM:
	case MBX_EDENIED:
		return 403;
	case MBX_ENOTFOUND:
		return 404;
	case MBX_ESTATE:
	case MBX_EEXIST:
		return 409;
	case MBX_ETOOBIG:
		return 413;
	case MBX_ENOTSUP:
		return 501;
	case MBX_ETIMEDOUT:
		return 504;
	default:
		return 500;
	}
}

/* A library failure, as "CONTEXT: MESSAGE"; frees err. */
static enum MHD_Result send_mbx_error(struct MHD_Connection *c, struct req *r, int rc, mbx_error *err,
				      const char *context)
{
	char message[CLI_WHY_MAX + 256];
	json_object *o;

	snprintf(message, sizeof(message), "%s: %s", context, err ? mbx_error_message(err) : mbx_error_code_name(rc));
	o = error_object(mbx_error_code_name(err ? mbx_error_code(err) : rc), message,
			 err ? mbx_error_suggestion(err) : NULL, err ? mbx_error_layer(err) : NULL);
	mbx_error_free(err);
	return send_json(c, r, status_of(rc), o);
}

static enum MHD_Result send_bad_request(struct MHD_Connection *c, struct req *r, const char *why)
{
	return send_error(c, r, 400, "invalid_argument", why, "see docs/server.md for the request's fields");
}

/* ---- request bodies ---- */

/* The body as a JSON object (an empty body is {}); NULL with `why`. */
static json_object *parse_body(struct req *r, char *why, size_t whylen)
{
	struct json_tokener *tok;
	json_object *obj;
	size_t end;

	if (r->len == 0)
		return json_object_new_object();
	tok = json_tokener_new();
	if (!tok) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, r->body, (int)r->len);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(why, whylen, "the body is not valid JSON: %s",
			 json_tokener_error_desc(obj ? json_tokener_success : json_tokener_get_error(tok)));
		if (json_tokener_get_error(tok) == json_tokener_continue)
			snprintf(why, whylen, "the body is not valid JSON: it ends too early");
		json_object_put(obj);
		json_tokener_free(tok);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (end < r->len && strchr(" \t\r\n", r->body[end]))
		end++;
	if (end < r->len) {
		snprintf(why, whylen, "the body is not valid JSON: text after the value, at byte %zu", end);
		json_object_put(obj);
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(why, whylen, "the body must be a JSON object");
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* 0 when every key of o is in `allowed` (NULL-terminated), else -1 with `why`. */
static int check_keys(json_object *o, const char *const *allowed, char *why, size_t whylen)
{
	json_object_object_foreach(o, key, val) {
		size_t i;

		(void)val;
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (!allowed[i]) {
			const char *pick = cli_closest(key, allowed);

			if (pick)
				snprintf(why, whylen, "unknown field `%s` (did you mean `%s`?)", key, pick);
			else
				snprintf(why, whylen, "unknown field `%s`", key);
			return -1;
		}
	}
	return 0;
}

/* A string field; absent or null leaves *out. 0 or -1 with `why`. */
static int get_str(json_object *o, const char *key, const char **out, char *why, size_t whylen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(why, whylen, "`%s` must be a string", key);
		return -1;
	}
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v)) {
		snprintf(why, whylen, "`%s` must not hold a NUL character", key);
		return -1;
	}
	return 0;
}

/* An integer field in [min, max]; absent or null leaves *out and *given. */
static int get_u64(json_object *o, const char *key, uint64_t min, uint64_t max, uint64_t *out, int *given,
		   char *why, size_t whylen)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(why, whylen, "`%s` must be an integer", key);
		return -1;
	}
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max) {
		snprintf(why, whylen, "`%s` must be between %" PRIu64 " and %" PRIu64, key, min, max);
		return -1;
	}
	*out = (uint64_t)x;
	if (given)
		*given = 1;
	return 0;
}

/* An object of string values ("env"); NULL when absent. */
static int get_env(json_object *o, const char *key, json_object **out, char *why, size_t whylen)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_object)) {
		snprintf(why, whylen, "`%s` must be an object of strings", key);
		return -1;
	}
	json_object_object_foreach(v, name, val) {
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(why, whylen, "`%s.%s` must be a string", key, name);
			return -1;
		}
	}
	*out = v;
	return 0;
}

/* ---- sandbox configuration from JSON ---- */

static const char *isolation_name(mbx_isolation_t i)
{
	switch (i) {
	case MBX_ISOLATION_OS:
		return "os";
	case MBX_ISOLATION_WASM:
		return "wasm";
	case MBX_ISOLATION_MICROVM:
		return "microvm";
	default:
		return "auto";
	}
}

static const char *trust_name(mbx_trust_t t)
{
	switch (t) {
	case MBX_TRUST_TRUSTED:
		return "trusted";
	case MBX_TRUST_UNTRUSTED:
		return "untrusted";
	default:
		return "semi-trusted";
	}
}

/*
 * Fills `so` from the configuration fields of a request (isolation, trust,
 * memory_mb, network, and with `with_exec_fields` timeout_ms, env, workdir).
 */
static int opts_from_json(json_object *o, struct cli_sandbox_opts *so, int with_exec_fields, char *why, size_t whylen)
{
	const char *s = NULL;
	uint64_t mb = 0;
	int given = 0;
	json_object *v;

	if (get_str(o, "isolation", &s, why, whylen) < 0)
		return -1;
	if (s) {
		if (cli_parse_isolation(s, &so->isolation) < 0) {
			snprintf(why, whylen, "`isolation`: expected auto, os, wasm or microvm, not `%s`", s);
			return -1;
		}
		so->set |= CLI_SET_ISOLATION;
	}
	s = NULL;
	if (get_str(o, "trust", &s, why, whylen) < 0)
		return -1;
	if (s) {
		if (cli_parse_trust(s, &so->trust) < 0) {
			snprintf(why, whylen, "`trust`: expected trusted, semi-trusted or untrusted, not `%s`", s);
			return -1;
		}
		so->set |= CLI_SET_TRUST;
	}
	if (get_u64(o, "memory_mb", 1, (uint64_t)1 << 30, &mb, &given, why, whylen) < 0)
		return -1;
	if (given) {
		so->memory_bytes = mb << 20;
		so->set |= CLI_SET_MEMORY;
	}
	if (json_object_object_get_ex(o, "network", &v) && v) {
		if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "deny") == 0) {
			so->network.policy = MBX_NETWORK_DENY_ALL;
		} else if (json_object_is_type(v, json_type_array)) {
			size_t i, n = json_object_array_length(v);

			if (n == 0 || n > 256) {
				snprintf(why, whylen, "`network`: a list of 1 to 256 domains, or \"deny\"");
				return -1;
			}
			so->network.domains = calloc(n, sizeof(char *));
			if (!so->network.domains) {
				snprintf(why, whylen, "out of memory");
				return -1;
			}
			for (i = 0; i < n; i++) {
				json_object *d = json_object_array_get_idx(v, i);

				if (!json_object_is_type(d, json_type_string)) {
					snprintf(why, whylen, "`network[%zu]` must be a domain name string", i);
					return -1;
				}
				so->network.domains[i] = strdup(json_object_get_string(d));
				if (!so->network.domains[i]) {
					snprintf(why, whylen, "out of memory");
					return -1;
				}
				so->network.n_domains = i + 1;
			}
			so->network.policy = MBX_NETWORK_ALLOW_DOMAINS;
		} else {
			snprintf(why, whylen, "`network`: expected \"deny\" or a list of domains");
			return -1;
		}
		so->set |= CLI_SET_NETWORK;
	}
	if (!with_exec_fields)
		return 0;
	given = 0;
	if (get_u64(o, "timeout_ms", 1, (uint64_t)1 << 40, &so->timeout_ms, &given, why, whylen) < 0)
		return -1;
	if (given)
		so->set |= CLI_SET_TIMEOUT;
	s = NULL;
	if (get_str(o, "workdir", &s, why, whylen) < 0)
		return -1;
	if (s) {
		so->workdir = s;	/* borrowed from the request's JSON */
		so->set |= CLI_SET_WORKDIR;
	}
	if (get_env(o, "env", &v, why, whylen) < 0)
		return -1;
	if (v) {
		size_t n = (size_t)json_object_object_length(v);

		so->env = calloc(n ? n : 1, sizeof(*so->env));
		if (!so->env) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		json_object_object_foreach(v, name, val) {
			struct cli_env *e = &so->env[so->n_env];

			e->name = strdup(name);
			e->value = strdup(json_object_get_string(val));
			so->n_env++;
			if (!e->name || !e->value) {
				snprintf(why, whylen, "out of memory");
				return -1;
			}
		}
	}
	return 0;
}

static json_object *layer_names(uint32_t bits)
{
	json_object *a = json_object_new_array();
	uint32_t b;

	for (b = 1; b != 0; b <<= 1)
		if ((bits & b) && mbx_layer_name(b))
			json_object_array_add(a, json_object_new_string(mbx_layer_name(b)));
	return a;
}

/* What GET /v1/sandboxes/{id} shows of a new sandbox. */
static json_object *describe(mbx_sandbox *sb, const struct cli_sandbox_opts *so, uint64_t ttl_ms)
{
	json_object *o = json_object_new_object(), *net, *env;
	size_t i;

	json_object_object_add(o, "id", json_object_new_string(mbx_sandbox_id(sb)));
	json_object_object_add(o, "isolation", json_object_new_string(isolation_name(mbx_sandbox_isolation(sb))));
	json_object_object_add(o, "trust", json_object_new_string(trust_name(so->trust)));
	json_object_object_add(o, "memory_mb", json_object_new_int64((int64_t)((so->set & CLI_SET_MEMORY ?
		so->memory_bytes : CLI_DEFAULT_MEMORY) >> 20)));
	json_object_object_add(o, "timeout_ms", json_object_new_int64((int64_t)(so->set & CLI_SET_TIMEOUT ?
		so->timeout_ms : CLI_DEFAULT_TIMEOUT_MS)));
	json_object_object_add(o, "workdir", json_object_new_string(so->workdir ? so->workdir : "/workspace"));
	if (so->network.policy == MBX_NETWORK_ALLOW_DOMAINS) {
		net = json_object_new_array();
		for (i = 0; i < so->network.n_domains; i++)
			json_object_array_add(net, json_object_new_string(so->network.domains[i]));
	} else {
		net = json_object_new_string("deny");
	}
	json_object_object_add(o, "network", net);
	/* The names only: values may be secrets. */
	env = json_object_new_array();
	for (i = 0; i < so->n_env; i++)
		json_object_array_add(env, json_object_new_string(so->env[i].name));
	json_object_object_add(o, "env", env);
	json_object_object_add(o, "ttl_ms", json_object_new_int64((int64_t)ttl_ms));
	json_object_object_add(o, "created_at_ms", json_object_new_int64((int64_t)wall_ms()));
	json_object_object_add(o, "layers", layer_names(mbx_sandbox_layers(sb)));
	json_object_object_add(o, "skipped", layer_names(mbx_sandbox_skipped(sb)));
	json_object_object_add(o, "limits", json_object_new_string(mbx_sandbox_limits_mechanism(sb)));
	return o;
}

/* ---- the table ---- */

/* How long e has been idle at `now` (0 when a call ended after it). */
static uint64_t idle_ms(struct sbent *e, uint64_t now)
{
	uint64_t last = atomic_load(&e->last_used_ms);

	return now > last ? now - last : 0;
}

static void entry_release(struct serve_server *s, struct sbent *e)
{
	int last;

	pthread_mutex_lock(&s->table_lock);
	last = --e->refs == 0;
	pthread_mutex_unlock(&s->table_lock);
	if (!last)
		return;
	mbx_sandbox_free(e->sb);
	pthread_mutex_destroy(&e->lock);
	json_object_put(e->info);
	free(e);
}

static struct sbent *entry_lookup(struct serve_server *s, const char *id)
{
	struct sbent *e;

	pthread_mutex_lock(&s->table_lock);
	for (e = s->head; e; e = e->next)
		if (strcmp(e->id, id) == 0 || (e->name[0] && strcmp(e->name, id) == 0))
			break;
	if (e)
		e->refs++;
	pthread_mutex_unlock(&s->table_lock);
	return e;
}

/* Unlists e (the caller then owns the table's reference); 0, or -1 when it was gone already. */
static int entry_unlist_locked(struct serve_server *s, struct sbent *e)
{
	struct sbent **p;

	for (p = &s->head; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			e->next = NULL;
			e->listed = 0;
			return 0;
		}
	}
	return -1;
}

/* Destroys an unlisted entry's sandbox and drops the table's reference. */
static void entry_destroy(struct serve_server *s, struct sbent *e)
{
	pthread_mutex_lock(&e->lock);
	if (!e->destroyed) {
		mbx_sandbox_destroy(e->sb, NULL);
		e->destroyed = 1;
	}
	pthread_mutex_unlock(&e->lock);
	atomic_fetch_add(&s->destroyed, 1);
	atomic_fetch_sub(&s->live, 1);
	entry_release(s, e);
}

/* Frees a list of spent sandboxes. */
static void free_spent(struct serve_server *s, struct spent *list)
{
	struct spent *next;

	for (; list; list = next) {
		next = list->next;
		mbx_sandbox_free(list->sb);
		free(list);
		atomic_fetch_add(&s->destroyed, 1);
	}
}

static void *reaper_main(void *arg)
{
	struct serve_server *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->table_lock);
	while (!s->stopping) {
		struct sbent *e, *next, *expired = NULL;
		uint64_t now = now_ms();

		if (s->spent) {
			struct spent *list = s->spent;

			s->spent = NULL;
			pthread_mutex_unlock(&s->table_lock);
			free_spent(s, list);
			pthread_mutex_lock(&s->table_lock);
			continue;
		}

		for (e = s->head; e; e = next) {
			next = e->next;
			/* Idle: only the table's reference, and no use for ttl_ms. */
			if (e->ttl_ms && e->refs == 1 && idle_ms(e, now) >= e->ttl_ms) {
				entry_unlist_locked(s, e);
				e->next = expired;
				expired = e;
			}
		}
		if (expired) {
			pthread_mutex_unlock(&s->table_lock);
			for (e = expired; e; e = next) {
				next = e->next;
				atomic_fetch_add(&s->expired, 1);
				entry_destroy(s, e);
			}
			pthread_mutex_lock(&s->table_lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->reaper_cond, &s->table_lock, &ts);
	}
	pthread_mutex_unlock(&s->table_lock);
	return NULL;
}

/* Takes e's mutex for a call; -1 (mutex not held) when it was destroyed meanwhile. */
static int entry_enter(struct sbent *e)
{
	pthread_mutex_lock(&e->lock);
	if (e->destroyed) {
		pthread_mutex_unlock(&e->lock);
		return -1;
	}
	return 0;
}

static void entry_leave(struct sbent *e)
{
	atomic_store(&e->last_used_ms, now_ms());
	pthread_mutex_unlock(&e->lock);
}

/* The live entry `id` with its mutex held, or NULL (none, or destroyed
 * meanwhile); give it back with entry_done(). */
static struct sbent *entry_use(struct serve_server *s, const char *id)
{
	struct sbent *e = entry_lookup(s, id);

	if (e && entry_enter(e) < 0) {
		entry_release(s, e);
		e = NULL;
	}
	return e;
}

static void entry_done(struct serve_server *s, struct sbent *e)
{
	entry_leave(e);
	entry_release(s, e);
}

static enum MHD_Result send_no_sandbox(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 64];

	snprintf(why, sizeof(why), "no sandbox `%s` on this server", r->id);
	return send_error(c, r, 404, "not_found", why, "list the sandboxes with GET /v1/sandboxes");
}

/* ---- handlers: sandboxes ---- */

static const char *const config_keys[] = { "isolation", "trust", "memory_mb", "timeout_ms", "env", "workdir",
					   "network", "ttl_ms", "name", NULL };

/* Whether `name` is the id or name of a listed sandbox; under the table lock. */
static int name_taken_locked(struct serve_server *s, const char *name)
{
	for (struct sbent *e = s->head; e; e = e->next)
		if (strcmp(e->id, name) == 0 || strcmp(e->name, name) == 0)
			return 1;
	return 0;
}

static enum MHD_Result h_create(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	struct cli_sandbox_opts so;
	char why[CLI_WHY_MAX], what[256];
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	struct sbent *e;
	json_object *answer = NULL;
	const char *name = NULL;
	uint64_t ttl = 0;
	int rc;

	cli_sandbox_opts_init(&so);
	if (check_keys(body, config_keys, why, sizeof(why)) < 0 ||
	    opts_from_json(body, &so, 1, why, sizeof(why)) < 0 ||
	    get_u64(body, "ttl_ms", 0, (uint64_t)1 << 40, &ttl, NULL, why, sizeof(why)) < 0 ||
	    get_str(body, "name", &name, why, sizeof(why)) < 0 ||
	    (name && cli_check_name(name, why, sizeof(why)) < 0)) {
		cli_sandbox_opts_free(&so);
		return send_bad_request(c, r, why);
	}
	rc = cli_build_config(&so, &cfg, what, sizeof(what), &err);
	if (rc != MBX_OK) {
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, what);
	}
	rc = mbx_sandbox_new(&sb, cfg, &err);
	mbx_config_free(cfg);
	if (rc != MBX_OK) {
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, "create sandbox");
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		mbx_sandbox_free(sb);
		cli_sandbox_opts_free(&so);
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	snprintf(e->id, sizeof(e->id), "%s", mbx_sandbox_id(sb));
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
	e->sb = sb;
	pthread_mutex_init(&e->lock, NULL);
	e->ttl_ms = ttl;
	e->info = describe(sb, &so, ttl);
	if (name)
		json_object_object_add(e->info, "name", json_object_new_string(name));
	cli_sandbox_opts_free(&so);
	/* The answer is a copy: once listed, e->info is read by other threads,
	 * and json-c caches an object's text in the object when it prints it. */
	if (json_object_deep_copy(e->info, &answer, NULL) != 0)
		answer = NULL;
	e->refs = 2;	/* the table's and ours */
	e->listed = 1;
	atomic_store(&e->last_used_ms, now_ms());
	pthread_mutex_lock(&s->table_lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->table_lock);
		e->refs = 1;
		e->listed = 0;
		entry_release(s, e);
		json_object_put(answer);
		return send_error(c, r, 503, "unavailable", "the server is shutting down", "try again once it runs");
	}
	if (name && name_taken_locked(s, name)) {
		pthread_mutex_unlock(&s->table_lock);
		e->refs = 1;
		e->listed = 0;
		entry_release(s, e);
		json_object_put(answer);
		snprintf(why, sizeof(why), "a sandbox named `%s` already exists on this server", name);
		return send_error(c, r, 409, "already_exists", why, "pick another name, or remove it first");
	}
	e->next = s->head;
	s->head = e;
	pthread_mutex_unlock(&s->table_lock);
	atomic_fetch_add(&s->created, 1);
	atomic_fetch_add(&s->live, 1);
	entry_release(s, e);
	if (!answer)
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	return send_json(c, r, 201, answer);
}

/* A copy of e's description with the live fields; `own` references are the caller's. */
static json_object *entry_json_locked(struct sbent *e, unsigned own)
{
	json_object *o = NULL;
	int busy = e->refs > 1 + own;

	if (json_object_deep_copy(e->info, &o, NULL) != 0)
		return NULL;
	json_object_object_add(o, "idle_ms", json_object_new_int64((int64_t)(busy ? 0 : idle_ms(e, now_ms()))));
	json_object_object_add(o, "busy", json_object_new_boolean(busy));
	return o;
}

static enum MHD_Result h_list(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array(), *x;
	struct sbent *e;

	pthread_mutex_lock(&s->table_lock);
	for (e = s->head; e; e = e->next)
		if ((x = entry_json_locked(e, 0)) != NULL)
			json_object_array_add(a, x);
	pthread_mutex_unlock(&s->table_lock);
	json_object_object_add(o, "sandboxes", a);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_inspect(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct sbent *e = entry_lookup(s, r->id);
	json_object *o;

	if (!e)
		return send_no_sandbox(c, r);
	pthread_mutex_lock(&s->table_lock);
	o = entry_json_locked(e, 1);
	pthread_mutex_unlock(&s->table_lock);
	entry_release(s, e);
	if (!o)
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_delete(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct sbent *e;
	int unlisted;

	pthread_mutex_lock(&s->table_lock);
	for (e = s->head; e; e = e->next)
		if (strcmp(e->id, r->id) == 0 || (e->name[0] && strcmp(e->name, r->id) == 0))
			break;
	unlisted = e ? entry_unlist_locked(s, e) == 0 : 0;
	pthread_mutex_unlock(&s->table_lock);
	if (!unlisted)
		return send_no_sandbox(c, r);
	entry_destroy(s, e);
	return send_bytes(c, r, 204, NULL, "", 0);
}

/* ---- executes ---- */

struct exec_req {
	const char **argv;	/* NULL-terminated; strings borrowed from the JSON */
	json_object *env;	/* borrowed, or NULL */
	const char *workdir;
	uint64_t timeout_ms;	/* 0: the sandbox's */
	uint8_t *stdin_data;	/* owned */
	size_t stdin_len;
	int has_stdin;
};

static void exec_req_free(struct exec_req *x)
{
	free(x->argv);
	free(x->stdin_data);
	memset(x, 0, sizeof(*x));
}

static int exec_req_parse(json_object *o, struct exec_req *x, int with_config, char *why, size_t whylen)
{
	json_object *v;
	const char *s = NULL;
	size_t i, n;

	memset(x, 0, sizeof(*x));
	if (!json_object_object_get_ex(o, "argv", &v) || !json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0) {
		snprintf(why, whylen, "`argv` is required: a non-empty list of strings, the program first");
		return -1;
	}
	if (n > 4096) {
		snprintf(why, whylen, "`argv` has more than 4096 words");
		return -1;
	}
	x->argv = calloc(n + 1, sizeof(char *));
	if (!x->argv) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		json_object *w = json_object_array_get_idx(v, i);

		if (!json_object_is_type(w, json_type_string) ||
		    strlen(json_object_get_string(w)) != (size_t)json_object_get_string_len(w)) {
			snprintf(why, whylen, "`argv[%zu]` must be a string without NUL characters", i);
			return -1;
		}
		x->argv[i] = json_object_get_string(w);
	}
	if (x->argv[0][0] == '\0') {
		snprintf(why, whylen, "`argv[0]` (the program) must not be empty");
		return -1;
	}
	if (!with_config) {
		if (get_env(o, "env", &x->env, why, whylen) < 0 || get_str(o, "workdir", &x->workdir, why, whylen) < 0 ||
		    get_u64(o, "timeout_ms", 1, (uint64_t)1 << 40, &x->timeout_ms, NULL, why, whylen) < 0)
			return -1;
	}
	if (get_str(o, "stdin", &s, why, whylen) < 0)
		return -1;
	if (s) {
		x->stdin_len = strlen(s);
		x->stdin_data = (uint8_t *)strdup(s);
		if (!x->stdin_data) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		x->has_stdin = 1;
	}
	s = NULL;
	if (get_str(o, "stdin_b64", &s, why, whylen) < 0)
		return -1;
	if (s) {
		if (x->has_stdin) {
			snprintf(why, whylen, "give `stdin` or `stdin_b64`, not both");
			return -1;
		}
		if (b64_decode(s, strlen(s), &x->stdin_data, &x->stdin_len) < 0) {
			snprintf(why, whylen, "`stdin_b64` is not base64");
			return -1;
		}
		x->has_stdin = 1;
	}
	return 0;
}

static int exec_options(const struct exec_req *x, mbx_exec_options **out, const char **what, mbx_error **err)
{
	mbx_exec_options *opts = NULL;
	int rc;

	*what = "exec options";
	if ((rc = mbx_exec_options_new(&opts, err)) != MBX_OK)
		return rc;
	if (x->env) {
		json_object_object_foreach(x->env, name, val) {
			*what = "`env`";
			if ((rc = mbx_exec_options_set_env(opts, name, json_object_get_string(val), err)) != MBX_OK)
				goto fail;
		}
	}
	*what = "`workdir`";
	if (x->workdir && (rc = mbx_exec_options_set_workdir(opts, x->workdir, err)) != MBX_OK)
		goto fail;
	*what = "`timeout_ms`";
	if (x->timeout_ms && (rc = mbx_exec_options_set_timeout_ms(opts, x->timeout_ms, err)) != MBX_OK)
		goto fail;
	*what = "`stdin`";
	if (x->has_stdin && (rc = mbx_exec_options_set_stdin(opts, x->stdin_data, x->stdin_len, err)) != MBX_OK)
		goto fail;
	*out = opts;
	return MBX_OK;
fail:
	mbx_exec_options_free(opts);
	return rc;
}

static json_object *result_json(const mbx_result *res)
{
	json_object *o = json_object_new_object();
	const uint8_t *d;
	size_t len;

	json_object_object_add(o, "exit_code", json_object_new_int(mbx_result_exit_code(res)));
	json_object_object_add(o, "signal", json_object_new_int(mbx_result_signal(res)));
	json_object_object_add(o, "timed_out", json_object_new_boolean(mbx_result_timed_out(res)));
	json_object_object_add(o, "oom_killed", json_object_new_boolean(mbx_result_oom_killed(res)));
	d = mbx_result_stdout(res, &len);
	add_bytes(o, "stdout", d, len);
	d = mbx_result_stderr(res, &len);
	add_bytes(o, "stderr", d, len);
	json_object_object_add(o, "stdout_truncated", json_object_new_boolean(mbx_result_stdout_truncated(res)));
	json_object_object_add(o, "stderr_truncated", json_object_new_boolean(mbx_result_stderr_truncated(res)));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)(mbx_result_elapsed_us(res) / 1000)));
	if (mbx_result_trap(res))
		json_object_object_add(o, "trap", json_object_new_string(mbx_result_trap(res)));
	return o;
}

/* A streamed execute: the response body's state. */
struct stream {
	struct serve_server *s;
	struct sbent *e;
	mbx_process *proc;
	struct cli_buf out;
	size_t off;
	int done;		/* the last event is in `out` */
	uint64_t last_ms;	/* when something was last put in `out` */
};

static void sse_event(struct stream *st, const char *name, json_object *data)
{
	cli_buf_printf(&st->out, "event: %s\ndata: %s\n\n", name,
		       json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(data);
	st->last_ms = now_ms();
}

/* Turns one process event into SSE; marks the end. */
static void stream_event(struct stream *st, mbx_event *ev)
{
	mbx_event_kind_t kind = mbx_event_kind(ev);
	json_object *o = json_object_new_object();
	const uint8_t *d;
	size_t len;

	if (kind == MBX_EVENT_STDOUT || kind == MBX_EVENT_STDERR) {
		d = mbx_event_data(ev, &len);
		add_bytes(o, "data", d, len);
		sse_event(st, kind == MBX_EVENT_STDOUT ? "stdout" : "stderr", o);
		return;
	}
	json_object_object_add(o, "exit_code", json_object_new_int(kind == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -1));
	json_object_object_add(o, "signal", json_object_new_int(mbx_event_signal(ev)));
	json_object_object_add(o, "timed_out", json_object_new_boolean(kind == MBX_EVENT_TIMED_OUT));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)(mbx_event_elapsed_us(ev) / 1000)));
	sse_event(st, "exit", o);
	st->done = 1;
}

static void stream_fail(struct stream *st, int rc, mbx_error *err, const char *what)
{
	char message[CLI_WHY_MAX + 64];

	snprintf(message, sizeof(message), "%s: %s", what, err ? mbx_error_message(err) : mbx_error_code_name(rc));
	sse_event(st, "error", error_object(mbx_error_code_name(err ? mbx_error_code(err) : rc), message, NULL, NULL));
	mbx_error_free(err);
	st->done = 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;

	(void)pos;
	for (;;) {
		mbx_event *ev = NULL;
		mbx_error *err = NULL;
		int rc;

		if (st->out.failed)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (st->off < st->out.len) {
			size_t n = st->out.len - st->off;

			if (n > max)
				n = max;
			memcpy(buf, st->out.data + st->off, n);
			st->off += n;
			if (st->off == st->out.len)
				st->off = st->out.len = 0;
			return (ssize_t)n;
		}
		if (st->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (entry_enter(st->e) < 0) {
			stream_fail(st, MBX_ESTATE, NULL, "the sandbox was destroyed");
			continue;
		}
		rc = mbx_process_next_event(st->proc, STREAM_SLICE_MS, &ev, &err);
		entry_leave(st->e);
		if (rc != MBX_OK) {
			stream_fail(st, rc, err, "process");
			continue;
		}
		if (ev) {
			stream_event(st, ev);
			mbx_event_free(ev);
		} else if (now_ms() - st->last_ms >= STREAM_HEARTBEAT_MS) {
			/* A comment line: keeps proxies from timing out and finds a gone client. */
			cli_buf_puts(&st->out, ": keep-alive\n\n");
			st->last_ms = now_ms();
		}
	}
}

/*
 * The response ended: normally after the exit event, or early when the
 * client went away. Then the process is killed (with everything it
 * started) and waited for, so nothing of it outlives the request.
 */
static void stream_free(void *cls)
{
	struct stream *st = cls;

	if (!st->done) {
		atomic_fetch_add(&st->s->disconnects, 1);
		if (entry_enter(st->e) == 0) {
			uint64_t deadline = now_ms() + 5000;

			if (mbx_process_kill(st->proc, NULL) == MBX_OK) {
				while (now_ms() < deadline) {
					mbx_event *ev = NULL;
					int kind;

					if (mbx_process_next_event(st->proc, 100, &ev, NULL) != MBX_OK)
						break;
					kind = ev ? mbx_event_kind(ev) : 0;
					mbx_event_free(ev);
					if (kind == MBX_EVENT_EXIT || kind == MBX_EVENT_TIMED_OUT)
						break;
				}
			}
			entry_leave(st->e);
		}
	}
	pthread_mutex_lock(&st->e->lock);
	mbx_process_free(st->proc);
	pthread_mutex_unlock(&st->e->lock);
	entry_release(st->s, st->e);
	cli_buf_free(&st->out);
	free(st);
}

static int wants_stream(struct MHD_Connection *c)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "stream");
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);

	if (q)
		return strcmp(q, "1") == 0 || strcmp(q, "true") == 0;
	return accept && strstr(accept, "text/event-stream") != NULL;
}

static enum MHD_Result start_stream(struct serve_server *s, struct MHD_Connection *c, struct req *r,
				    struct sbent *e, const struct exec_req *x)
{
	mbx_spawn_options *so = NULL;
	mbx_process *proc = NULL;
	mbx_error *err = NULL;
	struct MHD_Response *resp;
	struct stream *st;
	const char *what = "spawn options";
	int rc;

	if ((rc = mbx_spawn_options_new(&so, &err)) != MBX_OK)
		goto fail;
	if (x->env) {
		json_object_object_foreach(x->env, name, val) {
			what = "`env`";
			if ((rc = mbx_spawn_options_set_env(so, name, json_object_get_string(val), &err)) != MBX_OK)
				goto fail;
		}
	}
	what = "`workdir`";
	if (x->workdir && (rc = mbx_spawn_options_set_workdir(so, x->workdir, &err)) != MBX_OK)
		goto fail;
	if (x->timeout_ms)
		mbx_spawn_options_set_timeout_ms(so, x->timeout_ms);
	mbx_spawn_options_set_stdin(so, x->has_stdin);
	what = "buffer";
	if ((rc = mbx_spawn_options_set_buffer(so, STREAM_BUFFER, &err)) != MBX_OK)
		goto fail;
	what = "start the process";
	if (entry_enter(e) < 0) {
		mbx_spawn_options_free(so);
		entry_release(s, e);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_spawn(e->sb, x->argv, so, &proc, &err);
	if (rc == MBX_OK && x->has_stdin) {
		what = "write stdin";
		rc = mbx_process_write_stdin(proc, x->stdin_data, x->stdin_len, &err);
		if (rc == MBX_OK)
			rc = mbx_process_close_stdin(proc, &err);
		if (rc != MBX_OK) {
			mbx_process_kill(proc, NULL);
			mbx_process_free(proc);
			proc = NULL;
		}
	}
	entry_leave(e);
	mbx_spawn_options_free(so);
	so = NULL;
	if (rc != MBX_OK)
		goto fail;
	atomic_fetch_add(&s->executes, 1);
	st = calloc(1, sizeof(*st));
	if (!st) {
		pthread_mutex_lock(&e->lock);
		mbx_process_kill(proc, NULL);
		mbx_process_free(proc);
		pthread_mutex_unlock(&e->lock);
		entry_release(s, e);
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	st->s = s;
	st->e = e;	/* our reference moves to the stream */
	st->proc = proc;
	{
		json_object *o = json_object_new_object();

		json_object_object_add(o, "process_id", json_object_new_int64(mbx_process_id(proc)));
		sse_event(st, "start", o);
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
	if (!resp) {
		stream_free(st);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	return queue(c, r, 200, resp);

fail:
	mbx_spawn_options_free(so);
	entry_release(s, e);
	return send_mbx_error(c, r, rc, err, what);
}

static const char *const exec_keys[] = { "argv", "env", "workdir", "timeout_ms", "stdin", "stdin_b64", NULL };

static enum MHD_Result h_exec(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	struct exec_req x;
	char why[CLI_WHY_MAX];
	mbx_exec_options *opts = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	const char *what;
	struct sbent *e;
	enum MHD_Result ret;
	int rc;

	if (check_keys(body, exec_keys, why, sizeof(why)) < 0 || exec_req_parse(body, &x, 0, why, sizeof(why)) < 0) {
		exec_req_free(&x);
		return send_bad_request(c, r, why);
	}
	e = entry_lookup(s, r->id);
	if (!e) {
		exec_req_free(&x);
		return send_no_sandbox(c, r);
	}
	if (wants_stream(c)) {
		ret = start_stream(s, c, r, e, &x);
		exec_req_free(&x);
		return ret;
	}
	rc = exec_options(&x, &opts, &what, &err);
	if (rc != MBX_OK) {
		exec_req_free(&x);
		entry_release(s, e);
		return send_mbx_error(c, r, rc, err, what);
	}
	if (entry_enter(e) < 0) {
		mbx_exec_options_free(opts);
		exec_req_free(&x);
		entry_release(s, e);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_exec(e->sb, x.argv, opts, &res, &err);
	entry_leave(e);
	entry_release(s, e);
	mbx_exec_options_free(opts);
	exec_req_free(&x);
	atomic_fetch_add(&s->executes, 1);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "exec");
	ret = send_json(c, r, 200, result_json(res));
	mbx_result_free(res);
	return ret;
}

/* ---- one-shot runs ---- */

static const char *const run_keys[] = { "argv", "env", "workdir", "timeout_ms", "stdin", "stdin_b64", "isolation",
					"trust", "memory_mb", "network", NULL };
/* run_keys[RUN_CONFIG_FIRST...] configure the sandbox: they make the pool key. */
#define RUN_CONFIG_FIRST 6

/* A ready sandbox for `cfg` from the pool of `key`, making the pool when there is room; else a new one. */
static int take_sandbox(struct serve_server *s, const char *key, const mbx_config *cfg, mbx_sandbox **out,
			mbx_error **err)
{
	mbx_pool *pool = NULL;
	size_t i;
	int rc;

	if (s->pool_size == 0)
		return mbx_sandbox_new(out, cfg, err);
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++)
		if (strcmp(s->pools[i].key, key) == 0)
			pool = s->pools[i].pool;
	if (!pool && s->n_pools < MAX_POOLS && !s->stopping) {
		char *k = strdup(key);

		rc = k ? mbx_pool_new(&pool, cfg, s->pool_size, err) : MBX_ENOMEM;
		if (rc != MBX_OK) {
			free(k);
			pthread_mutex_unlock(&s->pool_lock);
			return rc;
		}
		s->pools[s->n_pools].key = k;
		s->pools[s->n_pools].pool = pool;
		s->n_pools++;
	}
	pthread_mutex_unlock(&s->pool_lock);
	/* Pools are freed only after every connection ended: `pool` stays valid. */
	if (pool)
		return mbx_pool_take(pool, out, err);
	return mbx_sandbox_new(out, cfg, err);
}

/* Hands a one-shot run's sandbox to the expiry thread to free (at once when out of memory). */
static void retire(struct serve_server *s, mbx_sandbox *sb)
{
	struct spent *d = malloc(sizeof(*d));

	if (!d) {
		mbx_sandbox_free(sb);
		atomic_fetch_add(&s->destroyed, 1);
		return;
	}
	d->sb = sb;
	pthread_mutex_lock(&s->table_lock);
	d->next = s->spent;
	s->spent = d;
	pthread_cond_signal(&s->reaper_cond);
	pthread_mutex_unlock(&s->table_lock);
}

static enum MHD_Result h_run(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	struct cli_sandbox_opts so;
	struct exec_req x;
	char why[CLI_WHY_MAX], what[256];
	mbx_exec_options *opts = NULL;
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	json_object *key, *v, *o;
	const char *ewhat;
	enum MHD_Result ret;
	size_t i;
	int rc;

	cli_sandbox_opts_init(&so);
	memset(&x, 0, sizeof(x));
	if (check_keys(body, run_keys, why, sizeof(why)) < 0 || opts_from_json(body, &so, 0, why, sizeof(why)) < 0 ||
	    exec_req_parse(body, &x, 0, why, sizeof(why)) < 0) {
		cli_sandbox_opts_free(&so);
		exec_req_free(&x);
		return send_bad_request(c, r, why);
	}
	if (s->stopping) {
		cli_sandbox_opts_free(&so);
		exec_req_free(&x);
		return send_error(c, r, 503, "unavailable", "the server is shutting down", "try again once it runs");
	}
	rc = cli_build_config(&so, &cfg, what, sizeof(what), &err);
	cli_sandbox_opts_free(&so);
	if (rc != MBX_OK) {
		exec_req_free(&x);
		return send_mbx_error(c, r, rc, err, what);
	}
	/* The pool key: the configuration fields as given, in a fixed order. */
	key = json_object_new_object();
	for (i = 0; run_keys[i]; i++)
		if (i >= RUN_CONFIG_FIRST && json_object_object_get_ex(body, run_keys[i], &v))
			json_object_object_add(key, run_keys[i], json_object_get(v));
	rc = exec_options(&x, &opts, &ewhat, &err);
	if (rc == MBX_OK) {
		ewhat = "create sandbox";
		rc = take_sandbox(s, json_object_to_json_string_ext(key, JSON_C_TO_STRING_PLAIN), cfg, &sb, &err);
	}
	json_object_put(key);
	mbx_config_free(cfg);
	if (rc == MBX_OK) {
		atomic_fetch_add(&s->created, 1);
		ewhat = "exec";
		rc = mbx_sandbox_exec(sb, x.argv, opts, &res, &err);
		atomic_fetch_add(&s->executes, 1);
		o = json_object_new_object();
		json_object_object_add(o, "sandbox_id", json_object_new_string(mbx_sandbox_id(sb)));
		json_object_object_add(o, "isolation", json_object_new_string(isolation_name(mbx_sandbox_isolation(sb))));
		/* Freed by the expiry thread, so the answer need not wait for it. */
		retire(s, sb);
		if (rc == MBX_OK) {
			json_object *rj = result_json(res);

			json_object_object_foreach(rj, k, val)
				json_object_object_add(o, k, json_object_get(val));
			json_object_put(rj);
			mbx_result_free(res);
			mbx_exec_options_free(opts);
			exec_req_free(&x);
			return send_json(c, r, 200, o);
		}
		json_object_put(o);
	}
	mbx_exec_options_free(opts);
	exec_req_free(&x);
	ret = send_mbx_error(c, r, rc, err, ewhat);
	return ret;
}

/* ---- files ---- */

static int path_arg(struct MHD_Connection *c, const char **path)
{
	*path = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "path");
	return *path && **path ? 0 : -1;
}

static enum MHD_Result send_no_path(struct MHD_Connection *c, struct req *r)
{
	return send_bad_request(c, r, "the query parameter `path` is required, e.g. ?path=/workspace/out.txt");
}

/*
 * A `Range: bytes=A-B` header against a file of `size` bytes: 0 with the
 * range (inclusive), 1 when there is none to honour (absent, malformed or
 * several ranges: the whole file is sent), -1 when unsatisfiable.
 */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	unsigned long long a = 0, b = 0;
	const char *p;
	char *end;

	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	p = h + 6;
	if (*p == '-') {	/* the last N bytes */
		errno = 0;
		b = strtoull(p + 1, &end, 10);
		if (errno || end == p + 1 || *end)
			return 1;
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return 1;
	errno = 0;
	a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 1;
	p = end + 1;
	if (*p == '\0') {
		b = size ? size - 1 : 0;
	} else {
		if (*p < '0' || *p > '9')
			return 1;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 1;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 0;
}

static enum MHD_Result h_file_get(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path;
	struct sbent *e;
	mbx_error *err = NULL;
	struct MHD_Response *resp;
	struct stat st;
	uint64_t first = 0, last = 0;
	char cr[96];
	int fd, rc, range;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (!(e = entry_lookup(s, r->id)))
		return send_no_sandbox(c, r);
	/* The file is read into memory first; the response then sends any range of it. */
	fd = memfd_create("mimobox-serve-file", MFD_CLOEXEC);
	if (fd < 0) {
		entry_release(s, e);
		return send_error(c, r, 500, "system_error", "memfd_create failed", NULL);
	}
	if (entry_enter(e) < 0) {
		close(fd);
		entry_release(s, e);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_read_file_to_fd(e->sb, path, fd, &err);
	entry_leave(e);
	entry_release(s, e);
	if (rc != MBX_OK) {
		close(fd);
		return send_mbx_error(c, r, rc, err, "read file");
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return send_error(c, r, 500, "system_error", "fstat failed", NULL);
	}
	range = parse_range(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE),
			    (uint64_t)st.st_size, &first, &last);
	if (range < 0) {
		close(fd);
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)st.st_size);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		return queue(c, r, 416, resp);
	}
	if (range > 0) {
		first = 0;
		last = st.st_size ? (uint64_t)st.st_size - 1 : 0;
	}
	resp = MHD_create_response_from_fd_at_offset64(st.st_size ? last - first + 1 : 0, fd, first);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (range == 0) {
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
			 (unsigned long long)st.st_size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	return queue(c, r, range == 0 ? 206 : 200, resp);
}

static enum MHD_Result h_file_put(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path;
	struct sbent *e;
	mbx_error *err = NULL;
	json_object *o;
	int rc;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (!(e = entry_use(s, r->id)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_write_file(e->sb, path, r->body ? r->body : "", r->len, 0644, 0, &err);
	entry_done(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "write file");
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)r->len));
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_file_delete(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path, *rec = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "recursive");
	struct sbent *e;
	mbx_error *err = NULL;
	int rc;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (!(e = entry_use(s, r->id)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_remove(e->sb, path, rec && (strcmp(rec, "1") == 0 || strcmp(rec, "true") == 0), &err);
	entry_done(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "remove");
	return send_bytes(c, r, 204, NULL, "", 0);
}

static const char *type_name(mbx_file_type_t t)
{
	switch (t) {
	case MBX_FILE_REGULAR:
		return "file";
	case MBX_FILE_DIRECTORY:
		return "directory";
	case MBX_FILE_SYMLINK:
		return "symlink";
	default:
		return "other";
	}
}

static enum MHD_Result h_dir(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path;
	struct sbent *e;
	mbx_error *err = NULL;
	mbx_dir *dir = NULL;
	json_object *o, *a;
	size_t i;
	int rc;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (!(e = entry_use(s, r->id)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_list_dir(e->sb, path, &dir, &err);
	entry_done(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "list directory");
	o = json_object_new_object();
	a = json_object_new_array();
	for (i = 0; i < mbx_dir_count(dir); i++) {
		json_object *x = json_object_new_object();

		json_object_object_add(x, "name", json_object_new_string(mbx_dir_name(dir, i)));
		json_object_object_add(x, "type", json_object_new_string(type_name(mbx_dir_type(dir, i))));
		json_object_object_add(x, "size", json_object_new_int64((int64_t)mbx_dir_size(dir, i)));
		if (mbx_dir_symlink_target(dir, i))
			json_object_object_add(x, "symlink_target", json_object_new_string(mbx_dir_symlink_target(dir, i)));
		json_object_array_add(a, x);
	}
	mbx_dir_free(dir);
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "entries", a);
	return send_json(c, r, 200, o);
}

/* ---- health and metrics ---- */

static enum MHD_Result h_health(struct MHD_Connection *c, struct req *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "version", json_object_new_string(mbx_version()));
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_metrics(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct cli_buf b = CLI_BUF_INIT;
	unsigned long long cum = 0;
	enum MHD_Result ret;
	size_t i;

#define METRIC(name, type, help, value) \
	cli_buf_printf(&b, "# HELP mimobox_" name " " help "\n# TYPE mimobox_" name " " type "\nmimobox_" name " %llu\n", \
		       (unsigned long long)(value))
	METRIC("sandboxes_live", "gauge", "Sandboxes in the table now.", atomic_load(&s->live));
	METRIC("sandboxes_created_total", "counter", "Sandboxes made, one-shot runs included.", atomic_load(&s->created));
	METRIC("sandboxes_destroyed_total", "counter", "Sandboxes destroyed, one-shot runs included.",
	       atomic_load(&s->destroyed));
	METRIC("sandboxes_expired_total", "counter", "Sandboxes destroyed after their ttl_ms of idleness.",
	       atomic_load(&s->expired));
	METRIC("executes_total", "counter", "Executes started (whole, streamed and one-shot).", atomic_load(&s->executes));
	METRIC("errors_total", "counter", "Responses with a status of 400 or more.", atomic_load(&s->errors));
	METRIC("stream_disconnects_total", "counter", "Streamed executes whose client went away before the end.",
	       atomic_load(&s->disconnects));
#undef METRIC
	cli_buf_puts(&b, "# HELP mimobox_request_duration_seconds Time from a request's first byte to its response's last.\n"
			 "# TYPE mimobox_request_duration_seconds histogram\n");
	for (i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load(&s->hist[i]);
		cli_buf_printf(&b, "mimobox_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i], cum);
	}
	cli_buf_printf(&b, "mimobox_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		       (unsigned long long)atomic_load(&s->requests));
	cli_buf_printf(&b, "mimobox_request_duration_seconds_sum %.6f\n", (double)atomic_load(&s->dur_sum_us) / 1e6);
	cli_buf_printf(&b, "mimobox_request_duration_seconds_count %llu\n", (unsigned long long)atomic_load(&s->requests));
	if (b.failed) {
		cli_buf_free(&b);
		return MHD_NO;
	}
	ret = send_bytes(c, r, 200, "text/plain; version=0.0.4", b.data, b.len);
	cli_buf_free(&b);
	return ret;
}

/* ---- routing ---- */

static int is_id_char(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
	       ch == '_' || ch == '.';
}

static enum route route_of(const char *url, char id[ID_MAX + 1])
{
	const char *p, *slash;
	size_t n;

	id[0] = '\0';
	if (strcmp(url, "/v1/health") == 0)
		return R_HEALTH;
	if (strcmp(url, "/v1/metrics") == 0)
		return R_METRICS;
	if (strcmp(url, "/v1/run") == 0)
		return R_RUN;
	if (strcmp(url, "/v1/sandboxes") == 0)
		return R_SANDBOXES;
	if (strncmp(url, "/v1/sandboxes/", 14) != 0)
		return R_NONE;
	p = url + 14;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n > ID_MAX)
		return R_NONE;
	for (size_t i = 0; i < n; i++)
		if (!is_id_char(p[i]))
			return R_NONE;
	memcpy(id, p, n);
	id[n] = '\0';
	if (!slash)
		return R_SANDBOX;
	if (strcmp(slash, "/exec") == 0)
		return R_EXEC;
	if (strcmp(slash, "/files") == 0)
		return R_FILES;
	if (strcmp(slash, "/dir") == 0)
		return R_DIR;
	return R_NONE;
}

/* Methods of each route, for 405 and its Allow header. */
static const char *allowed_methods(enum route rt)
{
	switch (rt) {
	case R_HEALTH:
	case R_METRICS:
	case R_DIR:
		return "GET";
	case R_RUN:
	case R_EXEC:
		return "POST";
	case R_SANDBOXES:
		return "GET, POST";
	case R_SANDBOX:
		return "GET, DELETE";
	case R_FILES:
		return "GET, PUT, DELETE";
	default:
		return "";
	}
}

static int method_allowed(enum route rt, const char *method)
{
	const char *list = allowed_methods(rt), *p = list;
	size_t n = strlen(method);

	if (strcmp(method, "HEAD") == 0)
		method = "GET", n = 3;
	while ((p = strstr(p, method)) != NULL) {
		if ((p == list || p[-2] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

static int token_ok(const struct serve_server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	volatile unsigned char diff;
	size_t i, len;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	len = strlen(h);
	/* Constant time in the token: every byte of it is compared, whatever came. */
	diff = len != s->token_len;
	for (i = 0; i < s->token_len; i++)
		diff |= (unsigned char)(s->token[i] ^ (i < len ? h[i] : 0));
	return diff == 0;
}

/* 1 when the peer of a unix-socket connection is our own uid. */
static int peer_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return 0;
	return cred.uid == geteuid();
}

static enum MHD_Result dispatch(struct serve_server *s, struct MHD_Connection *c, struct req *r, const char *method)
{
	char why[CLI_WHY_MAX];
	json_object *body;
	enum MHD_Result ret;

	switch (r->route) {
	case R_HEALTH:
		return h_health(c, r);
	case R_METRICS:
		return h_metrics(s, c, r);
	case R_SANDBOX:
		return strcmp(method, "DELETE") == 0 ? h_delete(s, c, r) : h_inspect(s, c, r);
	case R_DIR:
		return h_dir(s, c, r);
	case R_FILES:
		if (strcmp(method, "PUT") == 0)
			return h_file_put(s, c, r);
		if (strcmp(method, "DELETE") == 0)
			return h_file_delete(s, c, r);
		return h_file_get(s, c, r);
	case R_SANDBOXES:
		if (strcmp(method, "POST") != 0)
			return h_list(s, c, r);
		break;
	case R_RUN:
	case R_EXEC:
		break;
	case R_NONE:
	default:
		return send_error(c, r, 404, "not_found", "no such endpoint", "see docs/server.md for the API");
	}
	body = parse_body(r, why, sizeof(why));
	if (!body)
		return send_bad_request(c, r, why);
	if (r->route == R_SANDBOXES)
		ret = h_create(s, c, r, body);
	else if (r->route == R_RUN)
		ret = h_run(s, c, r, body);
	else
		ret = h_exec(s, c, r, body);
	json_object_put(body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct serve_server *s = cls;
	struct req *r = *con_cls;
	enum MHD_Result ret;
	const char *cl;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		r->start_us = now_us();
		r->route = route_of(url, r->id);
		r->limit = r->route == R_FILES && strcmp(method, "PUT") == 0 ? SERVE_FILE_MAX : SERVE_JSON_MAX;
		/* Refusals come before the body is read: MHD then closes the connection. */
		if (s->is_unix && !peer_ok(c))
			return send_error(c, r, 403, "permission_denied",
					  "this server serves only its own user (uid of the caller differs)",
					  "run the client as the server's user, or start a server of your own");
		if (s->token && !token_ok(s, c)) {
			struct MHD_Response *resp;
			json_object *o = error_object("unauthorized", "a valid `Authorization: Bearer TOKEN` header is required",
						      "send the token of the server's --token-file", NULL);
			const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

			resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
			json_object_put(o);
			if (resp) {
				MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
				MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
			}
			return queue(c, r, 401, resp);
		}
		if (r->route != R_NONE && !method_allowed(r->route, method)) {
			struct MHD_Response *resp;
			char why[96];
			json_object *o;
			const char *text;

			snprintf(why, sizeof(why), "method %s is not allowed here (allowed: %s)", method,
				 allowed_methods(r->route));
			o = error_object("method_not_allowed", why, NULL, NULL);
			text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
			resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
			json_object_put(o);
			if (resp) {
				MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
				MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allowed_methods(r->route));
			}
			return queue(c, r, 405, resp);
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > r->limit) {
			char why[128];

			snprintf(why, sizeof(why), "the body is larger than the limit of %zu bytes for this request", r->limit);
			return send_error(c, r, 413, "too_large", why,
					  r->limit == SERVE_FILE_MAX ? "split the file, or copy it in with an execute" : NULL);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_big && r->len + *upload_size > r->limit) {
			r->too_big = 1;
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
		}
		if (!r->too_big) {
			if (r->len + *upload_size > r->cap) {
				size_t cap = r->cap ? r->cap : 8192;
				char *p;

				while (cap < r->len + *upload_size)
					cap *= 2;
				if (cap > r->limit)
					cap = r->limit;
				p = realloc(r->body, cap);
				if (!p)
					return MHD_NO;
				r->body = p;
				r->cap = cap;
			}
			memcpy(r->body + r->len, upload, *upload_size);
			r->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big) {
		char why[128];

		snprintf(why, sizeof(why), "the body is larger than the limit of %zu bytes for this request", r->limit);
		return send_error(c, r, 413, "too_large", why, NULL);
	}
	/* A sandbox call may take long (an execute up to its timeout): no idle timeout meanwhile. */
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	ret = dispatch(s, c, r, method);
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, SERVE_IDLE_TIMEOUT_S);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
	struct serve_server *s = cls;
	struct req *r = *con_cls;
	double secs;
	size_t i;

	(void)c;
	(void)why;
	if (!r)
		return;
	secs = (double)(now_us() - r->start_us) / 1e6;
	for (i = 0; i < N_BUCKETS; i++)
		if (secs <= buckets[i]) {
			atomic_fetch_add(&s->hist[i], 1);
			break;
		}
	atomic_fetch_add(&s->requests, 1);
	atomic_fetch_add(&s->dur_sum_us, now_us() - r->start_us);
	if (r->status >= 400)
		atomic_fetch_add(&s->errors, 1);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* ---- start and stop ---- */

struct serve_server *serve_start(const struct serve_config *cfg, char *why, size_t whylen)
{
	struct serve_server *s = calloc(1, sizeof(*s));

	if (!s) {
		close(cfg->listen_fd);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	s->listen_fd = cfg->listen_fd;
	s->is_unix = cfg->is_unix;
	s->pool_size = cfg->pool_size;
	if (cfg->token) {
		s->token = strdup(cfg->token);
		s->token_len = s->token ? strlen(s->token) : 0;
		if (!s->token) {
			close(cfg->listen_fd);
			free(s);
			snprintf(why, whylen, "out of memory");
			return NULL;
		}
	}
	pthread_mutex_init(&s->table_lock, NULL);
	pthread_cond_init(&s->reaper_cond, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		snprintf(why, whylen, "cannot start the expiry thread: %s", strerror(errno));
		goto fail;
	}
	s->reaper_started = 1;
	s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
				     MHD_USE_ITC,
				     0, NULL, NULL, on_request, s,
				     MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
				     MHD_OPTION_CONNECTION_LIMIT, SERVE_MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, SERVE_IDLE_TIMEOUT_S,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(why, whylen, "libmicrohttpd could not start serving on the socket");
		goto fail;
	}
	return s;

fail:
	close(cfg->listen_fd);
	if (s->reaper_started) {
		pthread_mutex_lock(&s->table_lock);
		s->stopping = 1;
		pthread_cond_signal(&s->reaper_cond);
		pthread_mutex_unlock(&s->table_lock);
		pthread_join(s->reaper, NULL);
	}
	free(s->token);
	free(s);
	return NULL;
}

size_t serve_stop(struct serve_server *s)
{
	struct sbent *all, *e, *next;
	size_t n = 0, i;
	int fd;

	fd = MHD_quiesce_daemon(s->daemon);
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&s->table_lock);
	s->stopping = 1;
	all = s->head;
	s->head = NULL;
	for (e = all; e; e = e->next)
		e->listed = 0;
	pthread_cond_signal(&s->reaper_cond);
	pthread_mutex_unlock(&s->table_lock);
	pthread_join(s->reaper, NULL);
	for (e = all; e; e = next) {
		next = e->next;
		e->next = NULL;
		entry_destroy(s, e);
		n++;
	}
	/* Streams end once their sandbox is destroyed; executes of /v1/run end by their timeout. */
	MHD_stop_daemon(s->daemon);
	/* What runs retired after the expiry thread stopped. */
	free_spent(s, s->spent);
	s->spent = NULL;
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++) {
		mbx_pool_free(s->pools[i].pool);
		free(s->pools[i].key);
	}
	pthread_mutex_unlock(&s->pool_lock);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->reaper_cond);
	pthread_mutex_destroy(&s->table_lock);
	if (s->token)
		explicit_bzero(s->token, s->token_len);
	free(s->token);
	free(s);
	return n;
}
