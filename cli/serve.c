/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP API of `mimobox serve`: routes, the table of sandboxes, executes
 * (whole or streamed as server-sent events), background processes, files,
 * one-shot runs through warm pools, health and metrics. docs/server.md says what each endpoint
 * does; docs/server-openapi.json is the contract the tests check.
 *
 * Threads: libmicrohttpd runs one thread per connection, so a long execute
 * in one sandbox does not hold up the others. The library lets several
 * threads call one sandbox at once (docs/api.md, "Threads"), except that
 * destroying, snapshotting and forking need it to themselves. So each
 * entry has a read-write lock, `use`: executes, files, streams and
 * terminals hold it shared for their library calls; destroy, snapshot and
 * fork hold it exclusive. The entry's mutex, `lock`, orders what the server
 * keeps itself (background processes and their drain thread) and is taken
 * before `use` by those that take both; nobody takes the mutex while
 * holding `use` shared. A streamed execute or a terminal waits for output
 * on the sandbox's event descriptor (mbx_sandbox_event_fd) with no lock
 * held, together with its client's socket and the entry's wake_fd, which
 * a destroy makes readable.
 *
 * Lifetime of a table entry: the table holds one reference while the
 * sandbox is listed, and each request using it holds one more. Removing it
 * (DELETE, expiry, shutdown) unlists it, destroys the sandbox (holding its
 * mutex and `use` exclusive) and drops the table's reference; the handle is
 * freed with the last reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "serve.h"
#include "serve_dl.h"
#include "serve_pty.h"

/* After a wakeup of the event descriptor that brought nothing for us (another
 * process's events wait), the next wait on it is this much later, doubling. */
#define STREAM_BACKOFF_MIN_MS 1
#define STREAM_BACKOFF_MAX_MS 32
#define STREAM_HEARTBEAT_MS 5000
#define STREAM_BUFFER ((uint64_t)2 << 20)
#define MAX_POOLS 8
#define ID_MAX 64
#define IDEM_KEY_MAX 255
#define MAX_PROCS 32	/* background processes kept per sandbox, running or ended */

/* Buckets of the request duration histogram, in seconds. */
static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct bgproc;

struct sbent {
	struct sbent *next;
	char id[ID_MAX + 1];
	char name[ID_MAX + 1];	/* "" when unnamed; immutable */
	char *idem_key;		/* the create's Idempotency-Key, or NULL; immutable */
	mbx_sandbox *sb;
	pthread_mutex_t lock;	/* the server's own state of sb (background processes) */
	pthread_rwlock_t use;	/* shared: a library call on sb; exclusive: destroy, snapshot, fork */
	int wake_fd;		/* an eventfd, readable once sb was destroyed */
	int destroyed;		/* set under lock and use (exclusive): either lock reads it */
	int draining;		/* under lock: its background processes' drain thread runs */
	/* Background processes (POST .../processes): the list changes under
	 * both `lock` and `procs_lock`, so either lock lets one read it; a
	 * process's handle is used under `lock`, its kept output and state
	 * under `procs_lock`, whose cond is signalled when they change. */
	pthread_mutex_t procs_lock;
	pthread_cond_t procs_cond;
	struct bgproc *procs[MAX_PROCS];
	size_t n_procs;
	int gone;		/* under procs_lock: the sandbox was destroyed */
	unsigned refs;		/* under the table lock */
	unsigned bg_refs;	/* under the table lock: those of refs held by drain threads */
	int listed;		/* under the table lock */
	uint64_t ttl_ms;	/* idle time before expiry; 0: none */
	atomic_ullong last_used_ms;	/* when a call in it last ended (inspecting is no use) */
	json_object *info;	/* what GET shows; immutable after creation */
	uint64_t output_limit;	/* bytes a streamed execute delivers per stream (its output_limit) */
	size_t client;		/* whose it is: only that client's requests find it; its quota counts it */
	uint64_t mem_mb;	/* what it counts there */
	uint32_t millicpus;
	uint64_t disk_mb;
	uint64_t max_procs;	/* its max_procs, counted in --quota-procs */
	char *note;		/* its options as a snapshot keeps them (cli_sandbox_opts_note) */
	size_t note_len;
};

/* A client (a token's name, or the unix socket's uid) and what its live sandboxes use. */
struct client {
	char *name;
	char *token;		/* NULL on the unix socket */
	size_t token_len;
	unsigned sandboxes;	/* under the table lock, as the next three */
	uint64_t mem_mb;
	uint64_t millicpus;
	uint64_t disk_mb;
	uint64_t procs;
	unsigned snapshots;	/* under the snapshot lock: those it keeps */
};

/* A kept snapshot (docs/server.md, "Snapshots, restores and forks"). */
struct snapent {
	struct snapent *next;
	char id[ID_MAX + 1];
	mbx_snapshot *snap;
	pthread_mutex_t lock;	/* one use of snap at a time */
	unsigned refs;		/* under the snapshot lock */
	uint64_t bytes;
	size_t client;		/* who took or uploaded it: only that client's requests find it */
	json_object *info;	/* immutable */
};

/* A create under way with a name or an idempotency key, so that a second one waits or is refused. */
struct pending {
	struct pending *next;
	size_t client;		/* names and keys are per client */
	const char *name;	/* NULL, or borrowed from the request */
	const char *key;	/* NULL, or borrowed from the request */
};

/* A one-shot run's sandbox, to be freed by the expiry thread after the response. */
struct spent {
	struct spent *next;
	mbx_sandbox *sb;
};

struct pool_slot {
	char *key;
	mbx_pool *pool;
	unsigned users;		/* runs taking from it now or whose sandbox is out; under the pool lock */
	uint64_t last_ms;	/* when a run last took from it */
	int reuse;		/* its sandboxes are given back and reset (os) */
};

struct serve_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	int is_unix;
	struct client *clients;
	size_t n_clients;
	unsigned pool_size;
	uint64_t pool_idle_ms;
	unsigned max_sandboxes, quota_sandboxes;
	uint64_t quota_memory_mb;
	uint32_t quota_millicpus;
	uint64_t quota_disk_mb;
	uint64_t quota_procs;
	unsigned quota_snapshots;
	unsigned held;		/* live sandboxes and those being made; under the table lock */

	pthread_mutex_t snap_lock;
	struct snapent *snaps;
	unsigned n_snaps, max_snapshots;
	uint64_t snap_bytes, max_snapshot_bytes;

	pthread_mutex_t table_lock;
	pthread_cond_t reaper_cond;
	struct sbent *head;
	struct spent *spent;	/* under the table lock */
	struct pending *pending;	/* under the table lock */
	pthread_cond_t pending_cond;	/* a pending create ended */
	atomic_uint drainers;	/* drain threads alive */
	atomic_int stopping;
	atomic_int draining;	/* serve_drain(): no new sandboxes, health answers 503 */
	pthread_t reaper;
	int reaper_started;

	pthread_mutex_t pool_lock;
	struct pool_slot pools[MAX_POOLS];
	size_t n_pools;

	struct serve_pty_table *ptys;	/* sessions of /pty (serve_pty.c) */
	int upgrade_ok;		/* libmicrohttpd can upgrade connections (WebSocket) */

	atomic_ullong live, created, destroyed, expired, executes, errors, disconnects, requests;
	atomic_ullong quota_refusals, snapshots_taken, pools_freed_idle;
	/* Slow clients (--request-timeout-ms): every connection, under conns_lock. */
	uint64_t request_timeout_ms;
	pthread_mutex_t conns_lock;
	struct sconn *conns;
	atomic_ullong slow_clients;
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
	R_STAT,
	R_SYMLINK,
	R_PROCS,
	R_PROC,
	R_PROC_SIGNAL,
	R_PROC_STDIN,
	R_PROC_OUTPUT,
	R_SNAP_TAKE,
	R_FORK,
	R_AUDIT,
	R_HTTP,
	R_SNAPSHOTS,
	R_SNAPSHOT,
	R_SNAP_DATA,
	R_SNAP_RESTORE,
	R_PTY,
};

/*
 * A connection, for the bounds on slow clients: the time its next request's
 * head is due from, or how its body comes. `fd` is a duplicate of the
 * connection's socket, ours to shut down (a number MHD cannot reuse
 * meanwhile); it is closed when MHD says the connection closed.
 */
enum sconn_state { SC_HEAD, SC_BODY, SC_BUSY, SC_UPGRADED, SC_CUT };

struct sconn {
	struct sconn *next, *prev;
	int fd;
	enum sconn_state state;
	uint64_t since_ms;	/* SC_HEAD: from when; SC_BODY: the body's start */
	uint64_t body_bytes;
	int answered;		/* a request was answered: it is a kept-alive connection */
};

struct req {
	uint64_t start_us;
	struct sconn *sc;	/* its connection's, or NULL */
	enum route route;
	char id[ID_MAX + 1];	/* a sandbox's id or name */
	uint32_t pid;		/* a background process's id (R_PROC...) */
	size_t client;		/* index in the server's clients */
	char *body;
	size_t len, cap, limit;
	int too_big;
	unsigned status;
	void *pty;		/* a /pty session waiting for its upgrade (serve_pty.c) */
	/* A run's sandbox, given back (or retired) once its answer is sent: run_sandbox_done(). */
	mbx_sandbox *run_sb;
	mbx_pool *run_pool;	/* its pool when it is reused, else NULL */
	int run_reuse;
};

static void pools_reap(struct serve_server *s);

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

	if (given)
		*given = 0;
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
 * memory_mb, disk_mb, cpus, max_procs, hostname, output_limit, network, and
 * with `with_exec_fields` timeout_ms, env, workdir).
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
	/* The storage limit (/workspace, /tmp, /dev/shm together), as `--disk`: 1 MiB to 1 TiB. */
	if (get_u64(o, "disk_mb", 1, (uint64_t)1 << 20, &mb, &given, why, whylen) < 0)
		return -1;
	if (given) {
		so->disk_bytes = mb << 20;
		so->set |= CLI_SET_DISK;
	}
	if (json_object_object_get_ex(o, "cpus", &v) && v) {
		double x = json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double) ?
			   json_object_get_double(v) : -1;

		if (!(x >= 0.01 && x <= 1024)) {
			snprintf(why, whylen, "`cpus` must be a number of CPUs from 0.01 to 1024, e.g. 0.5");
			return -1;
		}
		so->millicpus = (uint32_t)(x * 1000 + 0.5);
		so->set |= CLI_SET_CPU;
	}
	/* As `--max-procs`, `--hostname` and `--output-limit`. */
	if (get_u64(o, "max_procs", 1, UINT32_MAX, &mb, &given, why, whylen) < 0)
		return -1;
	if (given) {
		so->max_procs = (uint32_t)mb;
		so->set |= CLI_SET_MAX_PROCS;
	}
	s = NULL;
	if (get_str(o, "hostname", &s, why, whylen) < 0)
		return -1;
	if (s) {
		so->hostname = s;	/* borrowed from the request's JSON; checked by the library */
		so->set |= CLI_SET_HOSTNAME;
	}
	if (get_u64(o, "output_limit", 0, (uint64_t)1 << 62, &so->output_limit, &given, why, whylen) < 0)
		return -1;
	if (given)
		so->set |= CLI_SET_OUTPUT_LIMIT;
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
	json_object_object_add(o, "name", NULL);	/* a named create sets it */
	json_object_object_add(o, "isolation", json_object_new_string(isolation_name(mbx_sandbox_isolation(sb))));
	json_object_object_add(o, "trust", json_object_new_string(trust_name(so->trust)));
	json_object_object_add(o, "memory_mb", json_object_new_int64((int64_t)((so->set & CLI_SET_MEMORY ?
		so->memory_bytes : CLI_DEFAULT_MEMORY) >> 20)));
	json_object_object_add(o, "disk_mb", json_object_new_int64((int64_t)((so->set & CLI_SET_DISK ?
		so->disk_bytes : CLI_DEFAULT_DISK) >> 20)));
	if (so->set & CLI_SET_CPU) {
		/* As written: 0.5, not 0.50000000000000000 */
		char t[32];
		size_t n = (size_t)snprintf(t, sizeof(t), "%u.%03u", so->millicpus / 1000, so->millicpus % 1000);

		while (t[n - 1] == '0')
			t[--n] = '\0';
		if (t[n - 1] == '.')
			t[n - 1] = '\0';
		json_object_object_add(o, "cpus", json_object_new_double_s(so->millicpus / 1000.0, t));
	} else {
		json_object_object_add(o, "cpus", NULL);
	}
	json_object_object_add(o, "max_procs", json_object_new_int64((int64_t)(so->set & CLI_SET_MAX_PROCS ?
		so->max_procs : CLI_DEFAULT_MAX_PROCS)));
	json_object_object_add(o, "hostname", json_object_new_string(so->set & CLI_SET_HOSTNAME ? so->hostname : "mimobox"));
	json_object_object_add(o, "output_limit", json_object_new_int64((int64_t)(so->set & CLI_SET_OUTPUT_LIMIT ?
		so->output_limit : CLI_DEFAULT_OUTPUT_LIMIT)));
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

static void procs_on_destroy(struct sbent *e);
static void procs_free_all(struct sbent *e);

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
	procs_free_all(e);
	mbx_sandbox_free(e->sb);
	pthread_mutex_destroy(&e->lock);
	pthread_rwlock_destroy(&e->use);
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	pthread_cond_destroy(&e->procs_cond);
	pthread_mutex_destroy(&e->procs_lock);
	json_object_put(e->info);
	free(e->idem_key);
	free(e->note);
	free(e);
}

/*
 * The listed entry of `client` whose id, else whose name, is `ref`. Another
 * client's sandboxes are not there for it: their ids and names answer as
 * unknown ones do (docs/server.md, "Several clients").
 */
static struct sbent *entry_find_locked(struct serve_server *s, size_t client, const char *ref)
{
	struct sbent *e;

	for (e = s->head; e; e = e->next)
		if (e->client == client && strcmp(e->id, ref) == 0)
			return e;
	for (e = s->head; e; e = e->next)
		if (e->client == client && e->name[0] && strcmp(e->name, ref) == 0)
			return e;
	return NULL;
}

/* The request's sandbox (its path's id or name, of its client) with a reference, or NULL. */
static struct sbent *entry_lookup(struct serve_server *s, const struct req *r)
{
	struct sbent *e;

	pthread_mutex_lock(&s->table_lock);
	e = entry_find_locked(s, r->client, r->id);
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

/* Gives back what a destroyed entry counted in its client's quota. */
static void entry_unquota(struct serve_server *s, struct sbent *e)
{
	struct client *cl = &s->clients[e->client];

	pthread_mutex_lock(&s->table_lock);
	s->held--;
	cl->sandboxes--;
	cl->mem_mb -= e->mem_mb;
	cl->millicpus -= e->millicpus;
	cl->disk_mb -= e->disk_mb;
	cl->procs -= e->max_procs;
	pthread_mutex_unlock(&s->table_lock);
}

/* Destroys an unlisted entry's sandbox and drops the table's reference. */
static void entry_destroy(struct serve_server *s, struct sbent *e)
{
	pthread_mutex_lock(&e->lock);
	pthread_rwlock_wrlock(&e->use);
	if (!e->destroyed) {
		uint64_t one = 1;

		mbx_sandbox_destroy(e->sb, NULL);
		e->destroyed = 1;
		if (e->wake_fd >= 0)
			(void)!write(e->wake_fd, &one, sizeof(one));	/* streams and terminals stop waiting */
		procs_on_destroy(e);
	}
	pthread_rwlock_unlock(&e->use);
	pthread_mutex_unlock(&e->lock);
	atomic_fetch_add(&s->destroyed, 1);
	atomic_fetch_sub(&s->live, 1);
	entry_unquota(s, e);
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

/* Whether a body that started `elapsed` ms ago with `bytes` so far is too slow. */
static int body_too_slow(const struct serve_server *s, uint64_t elapsed, uint64_t bytes)
{
	return s->request_timeout_ms && elapsed > s->request_timeout_ms &&
	       bytes < (elapsed - s->request_timeout_ms) * SERVE_MIN_BODY_RATE / 1000u;
}

/* Cuts off the connections that are too slow with their request (reaper thread). */
static void conns_reap(struct serve_server *s)
{
	/* A kept-alive connection may idle as long as MHD lets it (no byte at
	 * all for SERVE_IDLE_TIMEOUT_S) before its next head. */
	uint64_t keep = s->request_timeout_ms > SERVE_IDLE_TIMEOUT_S * 1000u ? s->request_timeout_ms
									      : SERVE_IDLE_TIMEOUT_S * 1000u;
	uint64_t now = now_ms();
	struct sconn *sc;

	if (!s->request_timeout_ms)
		return;
	pthread_mutex_lock(&s->conns_lock);
	for (sc = s->conns; sc; sc = sc->next)
		if ((sc->state == SC_HEAD && now - sc->since_ms > (sc->answered ? keep : s->request_timeout_ms)) ||
		    (sc->state == SC_BODY && body_too_slow(s, now - sc->since_ms, sc->body_bytes))) {
			/* MHD's thread of the connection then reads the end and closes it. */
			shutdown(sc->fd, SHUT_RDWR);
			sc->state = SC_CUT;
			atomic_fetch_add(&s->slow_clients, 1);
		}
	pthread_mutex_unlock(&s->conns_lock);
}

static void conn_set(struct serve_server *s, struct sconn *sc, enum sconn_state state)
{
	if (!sc)
		return;
	pthread_mutex_lock(&s->conns_lock);
	if (sc->state != SC_CUT) {
		sc->answered |= state == SC_HEAD;
		sc->state = state;
		sc->since_ms = now_ms();
		sc->body_bytes = 0;
	}
	pthread_mutex_unlock(&s->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct serve_server *s = cls;
	struct sconn *sc = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		sc = calloc(1, sizeof(*sc));
		if (!sc)
			return;
		sc->fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 3) : -1;
		if (sc->fd < 0) {
			free(sc);
			return;
		}
		sc->state = SC_HEAD;
		sc->since_ms = now_ms();
		if (!s->is_unix) {
			/* A peer that vanished without a FIN (a stream or a terminal
			 * waiting for output) is found in about a minute. */
			int on = 1, idle = 30, intvl = 10, cnt = 3;

			setsockopt(sc->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
			setsockopt(sc->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
			setsockopt(sc->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
			setsockopt(sc->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		}
		pthread_mutex_lock(&s->conns_lock);
		sc->next = s->conns;
		if (s->conns)
			s->conns->prev = sc;
		s->conns = sc;
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = sc;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !sc)
		return;
	pthread_mutex_lock(&s->conns_lock);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		s->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	pthread_mutex_unlock(&s->conns_lock);
	close(sc->fd);
	free(sc);
	*socket_context = NULL;
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
			if (e->ttl_ms && e->refs - e->bg_refs == 1 && idle_ms(e, now) >= e->ttl_ms) {
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
		pthread_mutex_unlock(&s->table_lock);
		pools_reap(s);
		conns_reap(s);
		pthread_mutex_lock(&s->table_lock);
		if (s->stopping)
			break;
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

/* The request's live entry with its mutex held, or NULL (none, or destroyed
 * meanwhile); give it back with entry_done(). */
static struct sbent *entry_use(struct serve_server *s, const struct req *r)
{
	struct sbent *e = entry_lookup(s, r);

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

/* Holds e's `use` shared for library calls that touch no state of the
 * server's; -1 (not held) when it was destroyed meanwhile. */
static int entry_share(struct sbent *e)
{
	pthread_rwlock_rdlock(&e->use);
	if (e->destroyed) {
		pthread_rwlock_unlock(&e->use);
		return -1;
	}
	return 0;
}

static void entry_unshare(struct sbent *e)
{
	atomic_store(&e->last_used_ms, now_ms());
	pthread_rwlock_unlock(&e->use);
}

/* As entry_use(), with `use` shared instead of the mutex; give it back with entry_done_shared(). */
static struct sbent *entry_use_shared(struct serve_server *s, const struct req *r)
{
	struct sbent *e = entry_lookup(s, r);

	if (e && entry_share(e) < 0) {
		entry_release(s, e);
		e = NULL;
	}
	return e;
}

static void entry_done_shared(struct serve_server *s, struct sbent *e)
{
	entry_unshare(e);
	entry_release(s, e);
}

/* A descriptor of our own for the sandbox's event descriptor (a dup: a
 * waiter's lifetime is its own, not the entry's, whose free closes the
 * library's), or -1 and *err. */
static int entry_event_fd(struct sbent *e, mbx_error **err)
{
	int fd, rc;

	if (entry_share(e) < 0)
		return -1;
	rc = mbx_sandbox_event_fd(e->sb, err);
	fd = rc >= 0 ? fcntl(rc, F_DUPFD_CLOEXEC, 3) : -1;
	entry_unshare(e);
	return fd;
}

static enum MHD_Result send_no_sandbox(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 64];

	snprintf(why, sizeof(why), "no sandbox `%s` on this server", r->id);
	return send_error(c, r, 404, "not_found", why, "list the sandboxes with GET /v1/sandboxes");
}

/* ---- quotas and the cap on live sandboxes ---- */

/* What one sandbox counts in its client's quota. */
struct usage {
	uint64_t mem_mb;
	uint32_t millicpus;
	uint64_t disk_mb;
	uint64_t procs;
};

/* Under a CPU quota every sandbox made here gets a CPU limit: 1 CPU when it asks for none. */
static void apply_cpu_default(const struct serve_server *s, struct cli_sandbox_opts *so)
{
	if (s->quota_millicpus && !(so->set & CLI_SET_CPU)) {
		so->millicpus = 1000;
		so->set |= CLI_SET_CPU;
	}
}

static struct usage usage_of(const struct serve_server *s, const struct cli_sandbox_opts *so)
{
	struct usage u;

	u.mem_mb = (so->set & CLI_SET_MEMORY ? so->memory_bytes : CLI_DEFAULT_MEMORY) >> 20;
	u.millicpus = so->set & CLI_SET_CPU ? so->millicpus : s->quota_millicpus ? 1000 : 0;
	u.disk_mb = (so->set & CLI_SET_DISK ? so->disk_bytes : CLI_DEFAULT_DISK) >> 20;
	u.procs = so->set & CLI_SET_MAX_PROCS ? so->max_procs : CLI_DEFAULT_MAX_PROCS;
	return u;
}

static void cpus_text(char *out, size_t len, uint64_t millicpus)
{
	snprintf(out, len, "%" PRIu64 ".%03" PRIu64, millicpus / 1000, millicpus % 1000);
}

/* Reserves n sandboxes using u each for `client`: 0, or -1 with `why` naming the cap and the use. */
static int quota_take(struct serve_server *s, size_t client, unsigned n, struct usage u, char *why, size_t whylen)
{
	struct client *cl = &s->clients[client];
	char have[32], want[32], cap[32];
	int rc = -1;

	pthread_mutex_lock(&s->table_lock);
	if (s->max_sandboxes && s->held + n > s->max_sandboxes) {
		snprintf(why, whylen, "the server runs at most %u sandboxes at once (--max-sandboxes): %u are live or "
			 "being made, this asks for %u more", s->max_sandboxes, s->held, n);
	} else if (s->quota_sandboxes && cl->sandboxes + n > s->quota_sandboxes) {
		snprintf(why, whylen, "quota of client `%s`: at most %u sandboxes (--quota-sandboxes); it has %u, this "
			 "asks for %u more", cl->name, s->quota_sandboxes, cl->sandboxes, n);
	} else if (s->quota_memory_mb && cl->mem_mb + n * u.mem_mb > s->quota_memory_mb) {
		snprintf(why, whylen, "quota of client `%s`: at most %" PRIu64 " MiB of sandbox memory (--quota-memory-mb); "
			 "its sandboxes have %" PRIu64 " MiB, this asks for %" PRIu64 " MiB more", cl->name,
			 s->quota_memory_mb, cl->mem_mb, n * u.mem_mb);
	} else if (s->quota_millicpus && cl->millicpus + n * u.millicpus > s->quota_millicpus) {
		cpus_text(cap, sizeof(cap), s->quota_millicpus);
		cpus_text(have, sizeof(have), cl->millicpus);
		cpus_text(want, sizeof(want), n * u.millicpus);
		snprintf(why, whylen, "quota of client `%s`: at most %s CPUs (--quota-cpus); its sandboxes have %s, this "
			 "asks for %s more", cl->name, cap, have, want);
	} else if (s->quota_disk_mb && cl->disk_mb + n * u.disk_mb > s->quota_disk_mb) {
		snprintf(why, whylen, "quota of client `%s`: at most %" PRIu64 " MiB of sandbox storage (--quota-disk-mb); "
			 "its sandboxes have %" PRIu64 " MiB, this asks for %" PRIu64 " MiB more (disk_mb, default "
			 "%" PRIu64 ")", cl->name, s->quota_disk_mb, cl->disk_mb, n * u.disk_mb, CLI_DEFAULT_DISK >> 20);
	} else if (s->quota_procs && cl->procs + n * u.procs > s->quota_procs) {
		snprintf(why, whylen, "quota of client `%s`: at most %" PRIu64 " processes in its sandboxes (--quota-procs); "
			 "its sandboxes may hold %" PRIu64 ", this asks for %" PRIu64 " more (max_procs, default %u)",
			 cl->name, s->quota_procs, cl->procs, n * u.procs, CLI_DEFAULT_MAX_PROCS);
	} else {
		s->held += n;
		cl->sandboxes += n;
		cl->mem_mb += n * u.mem_mb;
		cl->millicpus += n * u.millicpus;
		cl->disk_mb += n * u.disk_mb;
		cl->procs += n * u.procs;
		rc = 0;
	}
	pthread_mutex_unlock(&s->table_lock);
	if (rc < 0)
		atomic_fetch_add(&s->quota_refusals, 1);
	return rc;
}

static void quota_put(struct serve_server *s, size_t client, unsigned n, struct usage u)
{
	struct client *cl = &s->clients[client];

	pthread_mutex_lock(&s->table_lock);
	s->held -= n;
	cl->sandboxes -= n;
	cl->mem_mb -= n * u.mem_mb;
	cl->millicpus -= n * u.millicpus;
	cl->disk_mb -= n * u.disk_mb;
	cl->procs -= n * u.procs;
	pthread_mutex_unlock(&s->table_lock);
}

static enum MHD_Result send_quota(struct MHD_Connection *c, struct req *r, const char *why)
{
	return send_error(c, r, 429, "quota_exceeded", why,
			  "delete sandboxes no longer needed (DELETE /v1/sandboxes/{id}) or ask for less");
}

/*
 * The note a snapshot keeps of the options `so` (cli_sandbox_opts_note(),
 * as the CLI's snapshots have it, so that either restores the other's):
 * the options are given again as command-line words. 0, or -1 (no memory).
 * Options the command line would not take (a value beyond its range) make
 * no note: a sandbox restored from the snapshot is then described with
 * the defaults.
 */
static int opts_note(const struct cli_sandbox_opts *so, char **note, size_t *len)
{
	struct cli_sandbox_opts t;
	struct cli_buf net = CLI_BUF_INIT, kv;
	char v[64], why[CLI_WHY_MAX];
	size_t i;
	int rc = 0, kv_failed = 0;

	*note = NULL;
	*len = 0;
	cli_sandbox_opts_init(&t);
	if (so->set & CLI_SET_ISOLATION)
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_ISOLATION, isolation_name(so->isolation), why, sizeof(why));
	if (so->set & CLI_SET_TRUST)
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_TRUST, trust_name(so->trust), why, sizeof(why));
	if (so->set & CLI_SET_MEMORY) {
		snprintf(v, sizeof(v), "%" PRIu64 "b", so->memory_bytes);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_MEMORY, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_CPU) {
		cpus_text(v, sizeof(v), so->millicpus);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_CPU, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_DISK) {
		snprintf(v, sizeof(v), "%" PRIu64, so->disk_bytes >> 20);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_DISK, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_MAX_PROCS) {
		snprintf(v, sizeof(v), "%" PRIu32, so->max_procs);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_MAX_PROCS, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_HOSTNAME)
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_HOSTNAME, so->hostname, why, sizeof(why));
	if (so->set & CLI_SET_OUTPUT_LIMIT) {
		snprintf(v, sizeof(v), "%" PRIu64, so->output_limit);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_OUTPUT_LIMIT, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_TIMEOUT) {
		snprintf(v, sizeof(v), "%" PRIu64 ".%03" PRIu64, so->timeout_ms / 1000, so->timeout_ms % 1000);
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_TIMEOUT, v, why, sizeof(why));
	}
	if (so->set & CLI_SET_WORKDIR)
		rc |= cli_sandbox_opts_set(&t, CLI_OPT_WORKDIR, so->workdir, why, sizeof(why));
	if (so->set & CLI_SET_NETWORK) {
		if (so->network.policy == MBX_NETWORK_ALLOW_DOMAINS) {
			cli_buf_puts(&net, "allow:");
			for (i = 0; i < so->network.n_domains; i++)
				cli_buf_printf(&net, "%s%s", i ? "," : "", so->network.domains[i]);
		} else {
			cli_buf_puts(&net, "deny");
		}
		if (!net.failed)
			rc |= cli_sandbox_opts_set(&t, CLI_OPT_NETWORK, net.data, why, sizeof(why));
	}
	for (i = 0; i < so->n_env && rc == 0 && !kv_failed; i++) {
		kv = (struct cli_buf)CLI_BUF_INIT;
		cli_buf_printf(&kv, "%s=%s", so->env[i].name, so->env[i].value);
		kv_failed = kv.failed;
		if (!kv_failed)
			rc |= cli_sandbox_opts_set(&t, CLI_OPT_ENV, kv.data, why, sizeof(why));
		cli_buf_free(&kv);
	}
	if (net.failed || kv_failed)
		rc = -1;	/* out of memory */
	else if (rc != 0)
		rc = 0;		/* no note */
	else
		rc = cli_sandbox_opts_note(&t, note, len);
	cli_sandbox_opts_free(&t);
	cli_buf_free(&net);
	return rc < 0 ? -1 : 0;
}

/* The options a note records (defaults when there is none, or it does not read). */
static void opts_of_note(struct cli_sandbox_opts *so, const void *note, size_t len)
{
	char why[CLI_WHY_MAX];

	cli_sandbox_opts_init(so);
	if (note && len && cli_sandbox_opts_from_note(so, note, len, why, sizeof(why)) < 0) {
		cli_sandbox_opts_free(so);
		cli_sandbox_opts_init(so);
	}
}

/*
 * Lists a new sandbox whose quota is reserved; takes sb and note. Returns a
 * copy of its description for the answer, or NULL with *status (503: the
 * server is stopping, 500: out of memory); the sandbox is then freed and
 * the quota given back.
 */
static json_object *entry_add(struct serve_server *s, mbx_sandbox *sb, const struct cli_sandbox_opts *so,
			      uint64_t ttl, size_t client, struct usage u, char *note, size_t note_len,
			      const char *name, const char *key, unsigned *status)
{
	struct sbent *e = calloc(1, sizeof(*e));
	json_object *answer = NULL;

	if (e && key && !(e->idem_key = strdup(key))) {
		free(e);
		e = NULL;
	}
	if (!e) {
		mbx_sandbox_free(sb);
		free(note);
		quota_put(s, client, 1, u);
		*status = 500;
		return NULL;
	}
	snprintf(e->id, sizeof(e->id), "%s", mbx_sandbox_id(sb));
	if (name)
		snprintf(e->name, sizeof(e->name), "%s", name);
	e->sb = sb;
	pthread_mutex_init(&e->lock, NULL);
	{
		/* A destroy, snapshot or fork waiting stops new shared calls, so that
		 * a steady flow of executes cannot keep it out (nobody takes `use`
		 * shared twice in one thread, which this kind would deadlock). */
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&e->use, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);	/* -1: waits end by their timeouts */
	pthread_mutex_init(&e->procs_lock, NULL);
	pthread_cond_init(&e->procs_cond, NULL);
	e->ttl_ms = ttl;
	e->info = describe(sb, so, ttl);
	e->output_limit = so->set & CLI_SET_OUTPUT_LIMIT ? so->output_limit : CLI_DEFAULT_OUTPUT_LIMIT;
	if (name)
		json_object_object_add(e->info, "name", json_object_new_string(name));
	e->client = client;
	e->mem_mb = u.mem_mb;
	e->millicpus = u.millicpus;
	e->disk_mb = u.disk_mb;
	e->max_procs = u.procs;
	e->note = note;
	e->note_len = note_len;
	/* The answer is a copy: once listed, e->info is read by other threads,
	 * and json-c caches an object's text in the object when it prints it. */
	if (json_object_deep_copy(e->info, &answer, NULL) != 0)
		answer = NULL;
	e->refs = 1;	/* the table's */
	e->listed = 1;
	atomic_store(&e->last_used_ms, now_ms());
	pthread_mutex_lock(&s->table_lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->table_lock);
		e->listed = 0;
		quota_put(s, client, 1, u);
		entry_release(s, e);
		json_object_put(answer);
		*status = 503;
		return NULL;
	}
	e->next = s->head;
	s->head = e;
	pthread_mutex_unlock(&s->table_lock);
	atomic_fetch_add(&s->created, 1);
	atomic_fetch_add(&s->live, 1);
	*status = answer ? 201 : 500;
	return answer;
}

static enum MHD_Result send_add_failure(struct MHD_Connection *c, struct req *r, unsigned status)
{
	if (status == 503)
		return send_error(c, r, 503, "unavailable", "the server is shutting down", "try again once it runs");
	return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
}

/* ---- for the other parts of the server (serve_int.h) ---- */

struct sbent *serve_entry_get(struct serve_server *s, const struct req *r)
{
	return entry_lookup(s, r);
}

void serve_entry_put(struct serve_server *s, struct sbent *e)
{
	entry_release(s, e);
}

int serve_entry_enter(struct sbent *e)
{
	return entry_enter(e);
}

void serve_entry_leave(struct sbent *e)
{
	entry_leave(e);
}

void serve_entry_lock(struct sbent *e)
{
	pthread_mutex_lock(&e->lock);
}

void serve_entry_unlock(struct sbent *e)
{
	pthread_mutex_unlock(&e->lock);
}

int serve_entry_share(struct sbent *e)
{
	return entry_share(e);
}

void serve_entry_unshare(struct sbent *e)
{
	entry_unshare(e);
}

void serve_entry_free_process(struct sbent *e, mbx_process *proc)
{
	pthread_rwlock_rdlock(&e->use);
	mbx_process_free(proc);
	pthread_rwlock_unlock(&e->use);
}

int serve_entry_event_fd(struct sbent *e, mbx_error **err)
{
	return entry_event_fd(e, err);
}

int serve_entry_wake_fd(struct sbent *e)
{
	return e->wake_fd;
}

mbx_sandbox *serve_entry_sandbox(struct sbent *e)
{
	return e->sb;
}

int serve_stopping(struct serve_server *s)
{
	return atomic_load(&s->stopping);
}

void serve_count_execute(struct serve_server *s)
{
	atomic_fetch_add(&s->executes, 1);
}

void serve_count_disconnect(struct serve_server *s)
{
	atomic_fetch_add(&s->disconnects, 1);
}

enum MHD_Result serve_queue(struct MHD_Connection *c, struct req *r, unsigned status, struct MHD_Response *resp)
{
	return queue(c, r, status, resp);
}

enum MHD_Result serve_send_error(struct MHD_Connection *c, struct req *r, unsigned status, const char *code,
				 const char *message, const char *suggestion)
{
	return send_error(c, r, status, code, message, suggestion);
}

enum MHD_Result serve_send_mbx_error(struct MHD_Connection *c, struct req *r, int rc, mbx_error *err,
				     const char *context)
{
	return send_mbx_error(c, r, rc, err, context);
}

const char *serve_req_id(const struct req *r)
{
	return r->id;
}

void serve_req_set_pty(struct req *r, void *pty)
{
	r->pty = pty;
}

/* ---- handlers: sandboxes ---- */

static const char *const config_keys[] = { "isolation", "trust", "memory_mb", "disk_mb", "cpus", "max_procs",
					   "hostname", "output_limit", "timeout_ms", "env", "workdir", "network",
					   "ttl_ms", "name", NULL };

static json_object *entry_json_locked(struct sbent *e, unsigned own);

static struct pending *pending_find_locked(struct serve_server *s, size_t client, const char *name,
					   const char *key)
{
	struct pending *p;

	for (p = s->pending; p; p = p->next)
		if (p->client == client && ((name && p->name && strcmp(p->name, name) == 0) ||
					    (key && p->key && strcmp(p->key, key) == 0)))
			return p;
	return NULL;
}

static void pending_end(struct serve_server *s, struct pending *pend)
{
	struct pending **p;

	pthread_mutex_lock(&s->table_lock);
	for (p = &s->pending; *p; p = &(*p)->next)
		if (*p == pend) {
			*p = pend->next;
			break;
		}
	pthread_cond_broadcast(&s->pending_cond);
	pthread_mutex_unlock(&s->table_lock);
}

/* The Idempotency-Key header: NULL when absent; -1 when malformed. */
static int idem_key(struct MHD_Connection *c, const char **out)
{
	const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	size_t i, n;

	*out = k;
	if (!k)
		return 0;
	n = strlen(k);
	if (n == 0 || n > IDEM_KEY_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return -1;
	return 0;
}

/*
 * Claims `name` and `key` for a create of `client` (under the table lock):
 * 0 when claimed (pend is listed); 1 when a live sandbox of the client was
 * made with `key` (*found holds a reference to it); -1 when the client has
 * a sandbox of that name. A create with the same key under way is waited
 * for. Names and keys are the client's own: other clients' do not count.
 */
static int claim_locked(struct serve_server *s, size_t client, const char *name, const char *key,
			struct pending *pend, struct sbent **found)
{
	struct sbent *e;

	for (;;) {
		if (key) {
			for (e = s->head; e; e = e->next)
				if (e->client == client && e->idem_key && strcmp(e->idem_key, key) == 0) {
					e->refs++;
					*found = e;
					return 1;
				}
			if (pending_find_locked(s, client, NULL, key) && !s->stopping) {
				pthread_cond_wait(&s->pending_cond, &s->table_lock);
				continue;
			}
		}
		if (name && (entry_find_locked(s, client, name) || pending_find_locked(s, client, name, NULL)))
			return -1;
		pend->client = client;
		pend->name = name;
		pend->key = key;
		pend->next = s->pending;
		s->pending = pend;
		return 0;
	}
}

static enum MHD_Result h_create(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	struct cli_sandbox_opts so;
	char why[CLI_WHY_MAX], what[256];
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	struct sbent *e = NULL;
	struct pending pend;
	json_object *answer = NULL;
	const char *name = NULL, *key = NULL;
	struct usage u;
	char *note = NULL;
	size_t note_len = 0;
	uint64_t ttl = 0;
	unsigned status;
	int rc;

	cli_sandbox_opts_init(&so);
	if (check_keys(body, config_keys, why, sizeof(why)) < 0 ||
	    opts_from_json(body, &so, 1, why, sizeof(why)) < 0 ||
	    get_u64(body, "ttl_ms", 0, (uint64_t)1 << 40, &ttl, NULL, why, sizeof(why)) < 0 ||
	    get_str(body, "name", &name, why, sizeof(why)) < 0 || (name && cli_check_name(name, why, sizeof(why)) < 0)) {
		cli_sandbox_opts_free(&so);
		return send_bad_request(c, r, why);
	}
	if (idem_key(c, &key) < 0) {
		cli_sandbox_opts_free(&so);
		return send_bad_request(c, r, "the Idempotency-Key header must be 1 to 255 printable ASCII characters "
				       "without blanks");
	}
	pthread_mutex_lock(&s->table_lock);
	rc = claim_locked(s, r->client, name, key, &pend, &e);
	if (rc == 1) {
		/* Made before with this key: that sandbox again. */
		answer = entry_json_locked(e, 1);
		pthread_mutex_unlock(&s->table_lock);
		entry_release(s, e);
		cli_sandbox_opts_free(&so);
		if (!answer)
			return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
		{
			struct cli_buf b = CLI_BUF_INIT;
			struct MHD_Response *resp;

			cli_buf_puts(&b, json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
			cli_buf_add(&b, "\n", 1);
			json_object_put(answer);
			resp = b.failed ? NULL : MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
			cli_buf_free(&b);
			if (resp) {
				MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
				MHD_add_response_header(resp, "Idempotent-Replayed", "true");
			}
			return queue(c, r, 200, resp);
		}
	}
	pthread_mutex_unlock(&s->table_lock);
	if (rc < 0) {
		cli_sandbox_opts_free(&so);
		snprintf(why, sizeof(why), "a sandbox named `%s` already exists on this server", name);
		return send_error(c, r, 409, "already_exists", why,
				  "pick another name, or delete the other one with DELETE /v1/sandboxes/NAME");
	}
	apply_cpu_default(s, &so);
	u = usage_of(s, &so);
	if (opts_note(&so, &note, &note_len) < 0) {
		pending_end(s, &pend);
		cli_sandbox_opts_free(&so);
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	rc = cli_build_config(&so, &cfg, what, sizeof(what), &err);
	if (rc != MBX_OK) {
		pending_end(s, &pend);
		free(note);
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, what);
	}
	if (quota_take(s, r->client, 1, u, why, sizeof(why)) < 0) {
		pending_end(s, &pend);
		mbx_config_free(cfg);
		free(note);
		cli_sandbox_opts_free(&so);
		return send_quota(c, r, why);
	}
	rc = mbx_sandbox_new(&sb, cfg, &err);
	mbx_config_free(cfg);
	if (rc != MBX_OK) {
		pending_end(s, &pend);
		quota_put(s, r->client, 1, u);
		free(note);
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, "create sandbox");
	}
	answer = entry_add(s, sb, &so, ttl, r->client, u, note, note_len, name, key, &status);
	pending_end(s, &pend);
	cli_sandbox_opts_free(&so);
	if (!answer)
		return send_add_failure(c, r, status);
	return send_json(c, r, 201, answer);
}

/* A copy of e's description with the live fields; `own` references are the caller's. */
static json_object *entry_json_locked(struct sbent *e, unsigned own)
{
	json_object *o = NULL;
	int busy = e->refs - e->bg_refs > 1 + own;

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
		if (e->client == r->client && (x = entry_json_locked(e, 0)) != NULL)
			json_object_array_add(a, x);
	pthread_mutex_unlock(&s->table_lock);
	json_object_object_add(o, "sandboxes", a);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_inspect(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct sbent *e = entry_lookup(s, r);
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
	e = entry_find_locked(s, r->client, r->id);
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

/*
 * What an execute used and how it was bounded, as the CLI's --json says it:
 * the exact elapsed time, the CPU time and peak memory of its process tree,
 * the backend, how limits were enforced and what they leave unbounded.
 */
static void usage_json(json_object *o, uint64_t elapsed_us, uint64_t cpu_us, uint64_t peak, const char *isolation,
		       const char *limits, const char *partial)
{
	json_object_object_add(o, "elapsed_us", json_object_new_int64((int64_t)elapsed_us));
	json_object_object_add(o, "cpu_time_us", json_object_new_int64((int64_t)cpu_us));
	json_object_object_add(o, "peak_memory_bytes", json_object_new_int64((int64_t)peak));
	json_object_object_add(o, "isolation", json_object_new_string(isolation));
	if (limits) {
		json_object_object_add(o, "limits", json_object_new_string(limits));
		json_object_object_add(o, "limits_partial", partial ? json_object_new_string(partial) : NULL);
	}
}

/* The layers skipped under allow_degraded, as [{"layer", "reason"}]. */
static void skipped_json(json_object *o, const mbx_result *res)
{
	struct cli_skip skips[32];
	size_t n = cli_skipped_of(res, NULL, skips);
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		json_object *l = json_object_new_object();

		json_object_object_add(l, "layer", json_object_new_string(skips[i].layer));
		json_object_object_add(l, "reason",
				       json_object_new_string(skips[i].reason ? skips[i].reason : "not available on this host"));
		json_object_array_add(a, l);
	}
	json_object_object_add(o, "skipped_layers", a);
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
	usage_json(o, mbx_result_elapsed_us(res), mbx_result_cpu_time_us(res), mbx_result_peak_memory_bytes(res),
		   isolation_name(mbx_result_isolation(res)), mbx_result_limits_mechanism(res),
		   mbx_result_limits_partial(res));
	skipped_json(o, res);
	return o;
}

/* A streamed execute: the response body's state. */
struct stream {
	struct serve_server *s;
	struct sbent *e;
	mbx_process *proc;
	int evfd;		/* ours: a dup of the sandbox's event descriptor */
	int sock;		/* the client's socket (polled for its going away), or -1 */
	unsigned backoff_ms;	/* after wakeups that brought nothing for us */
	int woke;		/* the last wait ended with the event descriptor readable */
	struct cli_buf out;
	size_t off;
	int done;		/* the last event is in `out` */
	uint64_t last_ms;	/* when something was last put in `out` */
	/* The sandbox's, for the exit event (static strings). */
	const char *isolation, *limits, *limits_partial;
	struct bgproc *fg;	/* its record in the sandbox's process list, or NULL */
	/* The sandbox's output limit, as an execute's result keeps it: bytes
	 * past it are not delivered, and the exit event says so. */
	uint64_t limit, sent[2];
	int truncated[2];
};

static struct bgproc *fg_register(struct sbent *e, mbx_process *proc, const char *const *argv);
static void fg_ended(struct sbent *e, struct bgproc *bg, mbx_event *ev);
static void fg_unregister(struct sbent *e, struct bgproc *bg);

/*
 * Waits until the event descriptor may have something (1), the client's
 * socket `sock` (or -1) went away (-1), the sandbox was destroyed or
 * `timeout_ms` passed (0); no lock held. With `backoff_ms` > 0 the event
 * descriptor is not looked at, and the wait lasts at most that long: after
 * a wakeup that brought nothing for the caller, since the descriptor stays
 * readable while events of other processes of the sandbox wait for their
 * readers. (serve_pty.c waits likewise, on its socket for more.)
 */
static int entry_wait(struct sbent *e, int evfd, int sock, unsigned backoff_ms, int timeout_ms)
{
	struct pollfd p[3];
	nfds_t n = 0, i;
	int rc;

	if (backoff_ms) {
		if (timeout_ms < 0 || (int)backoff_ms < timeout_ms)
			timeout_ms = (int)backoff_ms;
	} else {
		p[n++] = (struct pollfd){ .fd = evfd, .events = POLLIN };
	}
	if (sock >= 0)
		p[n++] = (struct pollfd){ .fd = sock, .events = POLLRDHUP };
	if (e->wake_fd >= 0)
		p[n++] = (struct pollfd){ .fd = e->wake_fd, .events = POLLIN };
	do
		rc = poll(p, n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	for (i = 0; rc > 0 && i < n; i++)
		if (p[i].fd == sock && (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -1;
	return rc > 0 && !backoff_ms && p[0].revents != 0;
}

/* The next backoff after a wakeup that brought nothing. */
static unsigned backoff_next(unsigned ms)
{
	return ms == 0 ? STREAM_BACKOFF_MIN_MS : ms * 2 > STREAM_BACKOFF_MAX_MS ? STREAM_BACKOFF_MAX_MS : ms * 2;
}

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
		int k = kind == MBX_EVENT_STDERR;

		d = mbx_event_data(ev, &len);
		if (len > st->limit - st->sent[k]) {
			len = (size_t)(st->limit - st->sent[k]);
			st->truncated[k] = 1;
		}
		st->sent[k] += len;
		if (len == 0) {
			json_object_put(o);
			return;
		}
		add_bytes(o, "data", d, len);
		sse_event(st, k ? "stderr" : "stdout", o);
		return;
	}
	json_object_object_add(o, "exit_code", json_object_new_int(kind == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -1));
	json_object_object_add(o, "signal", json_object_new_int(mbx_event_signal(ev)));
	json_object_object_add(o, "timed_out", json_object_new_boolean(kind == MBX_EVENT_TIMED_OUT));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)(mbx_event_elapsed_us(ev) / 1000)));
	json_object_object_add(o, "stdout_truncated", json_object_new_boolean(st->truncated[0]));
	json_object_object_add(o, "stderr_truncated", json_object_new_boolean(st->truncated[1]));
	usage_json(o, mbx_event_elapsed_us(ev), mbx_event_cpu_time_us(ev), mbx_event_peak_memory_bytes(ev), st->isolation,
		   st->limits, st->limits_partial);
	sse_event(st, "exit", o);
	st->done = 1;
	if (st->fg)
		fg_ended(st->e, st->fg, ev);
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
		if (entry_share(st->e) < 0) {
			stream_fail(st, MBX_ESTATE, NULL, "the sandbox was destroyed");
			continue;
		}
		rc = mbx_process_next_event(st->proc, 0, &ev, &err);
		entry_unshare(st->e);
		if (rc != MBX_OK) {
			stream_fail(st, rc, err, "process");
			continue;
		}
		if (ev) {
			st->backoff_ms = 0;
			stream_event(st, ev);
			mbx_event_free(ev);
		} else if (now_ms() - st->last_ms >= STREAM_HEARTBEAT_MS) {
			/* A comment line: keeps proxies from timing out. */
			cli_buf_puts(&st->out, ": keep-alive\n\n");
			st->last_ms = now_ms();
		} else {
			uint64_t idle = now_ms() - st->last_ms;
			unsigned pause = 0;
			int w;

			if (st->woke)	/* readable, yet nothing for us */
				pause = st->backoff_ms = backoff_next(st->backoff_ms);
			w = entry_wait(st->e, st->evfd, st->sock, pause, (int)(STREAM_HEARTBEAT_MS - idle));
			if (w < 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;	/* the client went away */
			st->woke = w;
			if (!w && !pause)
				st->backoff_ms = 0;	/* a quiet wait */
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
		if (entry_share(st->e) == 0) {
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
			entry_unshare(st->e);
		}
	}
	/* Out of the list before its handle goes (a signal takes it under the sandbox's lock). */
	if (st->fg)
		fg_unregister(st->e, st->fg);
	/* Any call on a process may run beside other calls (a destroy waits for it). */
	pthread_rwlock_rdlock(&st->e->use);
	mbx_process_free(st->proc);
	pthread_rwlock_unlock(&st->e->use);
	if (st->evfd >= 0)
		close(st->evfd);
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
	int rc, evfd = -1;

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
	what = "the event descriptor";
	if ((evfd = entry_event_fd(e, &err)) < 0) {
		rc = err ? mbx_error_code(err) : MBX_ESTATE;
		if (!err) {
			mbx_spawn_options_free(so);
			entry_release(s, e);
			return send_no_sandbox(c, r);
		}
		goto fail;
	}
	what = "start the process";
	if (entry_share(e) < 0) {
		mbx_spawn_options_free(so);
		close(evfd);
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
	entry_unshare(e);
	mbx_spawn_options_free(so);
	so = NULL;
	if (rc != MBX_OK)
		goto fail;
	atomic_fetch_add(&s->executes, 1);
	st = calloc(1, sizeof(*st));
	if (!st) {
		pthread_rwlock_rdlock(&e->use);
		mbx_process_kill(proc, NULL);
		mbx_process_free(proc);
		pthread_rwlock_unlock(&e->use);
		close(evfd);
		entry_release(s, e);
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	st->s = s;
	st->e = e;	/* our reference moves to the stream */
	st->isolation = isolation_name(mbx_sandbox_isolation(e->sb));
	st->limits = mbx_sandbox_limits_mechanism(e->sb);
	st->limits_partial = mbx_sandbox_limits_partial(e->sb);
	st->limit = e->output_limit;
	st->proc = proc;
	st->evfd = evfd;	/* and the descriptor */
	evfd = -1;
	/* Listed with the sandbox's processes, to be signalled (not when the list is full). */
	st->fg = fg_register(e, proc, (const char *const *)x->argv);
	{
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		st->sock = ci ? ci->connect_fd : -1;
	}
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
	if (evfd >= 0)
		close(evfd);
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
	e = entry_lookup(s, r);
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
	if (entry_share(e) < 0) {
		mbx_exec_options_free(opts);
		exec_req_free(&x);
		entry_release(s, e);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_exec(e->sb, x.argv, opts, &res, &err);
	entry_unshare(e);
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
					"trust", "memory_mb", "disk_mb", "cpus", "max_procs", "hostname", "output_limit",
					"network", NULL };
/* run_keys[RUN_CONFIG_FIRST...] configure the sandbox: they make the pool key. */
#define RUN_CONFIG_FIRST 6

/*
 * Gives a run's sandbox back to the pool it came from: reset and reused after
 * a run that ended normally (`reuse`), else destroyed; the pool is no longer
 * counted as used. sb NULL: only the count.
 */
static void give_back_sandbox(struct serve_server *s, mbx_pool *pool, mbx_sandbox *sb, int reuse)
{
	size_t i;

	if (sb != NULL) {
		mbx_pool_give_back(pool, sb, reuse ? 0 : MBX_POOL_DISCARD, NULL);
		/* Its run is over: counted as destroyed, as a reused one was counted as created. */
		atomic_fetch_add(&s->destroyed, 1);
	}
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++)
		if (s->pools[i].pool == pool) {
			s->pools[i].users--;
			s->pools[i].last_ms = now_ms();
		}
	pthread_mutex_unlock(&s->pool_lock);
}

/* Uses of one sandbox of a run's pool: each reset in between (mbx_pool_set_reuse()). */
#define RUN_POOL_REUSE 1000u

/*
 * A ready sandbox for `cfg` from the pool of `key`, making the pool when there is room; else a new one.
 * *from: the pool it came from when it reuses sandboxes (counted as used until give_back_sandbox()), or NULL.
 */
static int take_sandbox(struct serve_server *s, const char *key, const mbx_config *cfg, mbx_sandbox **out,
			mbx_pool **from, mbx_error **err)
{
	mbx_pool *pool = NULL;
	size_t i;
	int rc, reuse = 0;

	*from = NULL;
	if (s->pool_size == 0)
		return mbx_sandbox_new(out, cfg, err);
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++)
		if (strcmp(s->pools[i].key, key) == 0)
			break;
	if (i < s->n_pools) {
		pool = s->pools[i].pool;
		s->pools[i].users++;
		reuse = s->pools[i].reuse;
	} else if (s->n_pools < MAX_POOLS && !s->stopping) {
		char *k = strdup(key);

		rc = k ? mbx_pool_new(&pool, cfg, s->pool_size, err) : MBX_ENOMEM;
		if (rc != MBX_OK) {
			free(k);
			pthread_mutex_unlock(&s->pool_lock);
			return rc;
		}
		s->pools[s->n_pools].key = k;
		s->pools[s->n_pools].pool = pool;
		s->pools[s->n_pools].users = 1;
		s->pools[s->n_pools].last_ms = now_ms();
		/* os sandboxes are reset and reused; the library refuses reuse for other backends. */
		s->pools[s->n_pools].reuse = reuse = mbx_pool_set_reuse(pool, RUN_POOL_REUSE, NULL) == MBX_OK;
		s->n_pools++;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (!pool)
		return mbx_sandbox_new(out, cfg, err);
	/* A pool with users is not freed for idleness: `pool` stays valid
	 * until the sandbox is given back. */
	rc = mbx_pool_take(pool, out, err);
	if (rc == MBX_OK && reuse)
		*from = pool;
	else
		give_back_sandbox(s, pool, NULL, 0);
	return rc;
}

/* Frees the pools without a run for --pool-idle-ms (by the expiry thread). */
static void pools_reap(struct serve_server *s)
{
	struct pool_slot idle[MAX_POOLS];
	uint64_t now = now_ms();
	size_t i, j = 0, n = 0;

	if (!s->pool_idle_ms)
		return;
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++) {
		if (s->pools[i].users == 0 && now > s->pools[i].last_ms && now - s->pools[i].last_ms >= s->pool_idle_ms)
			idle[n++] = s->pools[i];
		else
			s->pools[j++] = s->pools[i];
	}
	s->n_pools = j;
	pthread_mutex_unlock(&s->pool_lock);
	for (i = 0; i < n; i++) {
		mbx_pool_free(idle[i].pool);
		free(idle[i].key);
		atomic_fetch_add(&s->pools_freed_idle, 1);
	}
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

/*
 * The end of a run's request (on_completed): its sandbox goes back to its
 * pool, or to the expiry thread. Not before its answer is sent: the reset
 * that a give-back starts (in the pool's thread) and the wake-ups it makes
 * would otherwise compete with the answer on the way.
 */
static void run_sandbox_done(struct serve_server *s, struct req *r)
{
	if (r->run_sb == NULL)
		return;
	if (r->run_pool)
		give_back_sandbox(s, r->run_pool, r->run_sb, r->run_reuse);
	else
		retire(s, r->run_sb);
	r->run_sb = NULL;
}

static enum MHD_Result h_run(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	mbx_pool *from = NULL;
	struct cli_sandbox_opts so;
	struct exec_req x;
	char why[CLI_WHY_MAX], what[256];
	mbx_exec_options *opts = NULL;
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	json_object *key, *v, *o;
	struct usage u;
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
	apply_cpu_default(s, &so);
	u = usage_of(s, &so);
	rc = cli_build_config(&so, &cfg, what, sizeof(what), &err);
	cli_sandbox_opts_free(&so);
	if (rc != MBX_OK) {
		exec_req_free(&x);
		return send_mbx_error(c, r, rc, err, what);
	}
	/* A run's sandbox counts in the quotas while it runs. */
	if (quota_take(s, r->client, 1, u, why, sizeof(why)) < 0) {
		mbx_config_free(cfg);
		exec_req_free(&x);
		return send_quota(c, r, why);
	}
	/* The pool key: the configuration fields as given, in a fixed order. */
	key = json_object_new_object();
	for (i = 0; run_keys[i]; i++)
		if (i >= RUN_CONFIG_FIRST && json_object_object_get_ex(body, run_keys[i], &v))
			json_object_object_add(key, run_keys[i], json_object_get(v));
	rc = exec_options(&x, &opts, &ewhat, &err);
	if (rc == MBX_OK) {
		/* The run's sandbox is reset or destroyed after it: its
		 * mini-init need not stay for another execute. */
		mbx_exec_options_set_last(opts, 1);
		ewhat = "create sandbox";
		rc = take_sandbox(s, json_object_to_json_string_ext(key, JSON_C_TO_STRING_PLAIN), cfg, &sb, &from, &err);
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
		/* Back to its pool once the answer is sent (run_sandbox_done()), reset there for the next
		 * run when this one ended normally (no timeout, no signal, no out-of-memory kill); else
		 * freed by the expiry thread. */
		r->run_sb = sb;
		r->run_pool = from;
		r->run_reuse = rc == MBX_OK && !mbx_result_timed_out(res) && !mbx_result_oom_killed(res) &&
			       mbx_result_signal(res) == 0;
		quota_put(s, r->client, 1, u);
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
	} else {
		quota_put(s, r->client, 1, u);
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
	if (!(e = entry_lookup(s, r)))
		return send_no_sandbox(c, r);
	/* The file is read into memory first; the response then sends any range of it. */
	fd = memfd_create("mimobox-serve-file", MFD_CLOEXEC);
	if (fd < 0) {
		entry_release(s, e);
		return send_error(c, r, 500, "system_error", "memfd_create failed", NULL);
	}
	if (entry_share(e) < 0) {
		close(fd);
		entry_release(s, e);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_read_file_to_fd(e->sb, path, fd, &err);
	entry_unshare(e);
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

/*
 * The query's `mode` (permission bits as octal text, 0 to 0777) into *mode,
 * else `def`. -1 when it is malformed.
 */
static int mode_arg(struct MHD_Connection *c, uint32_t def, uint32_t *mode)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
	unsigned long v = 0;
	size_t i;

	*mode = def;
	if (q == NULL)
		return 0;
	for (i = 0; q[i]; i++) {
		if (q[i] < '0' || q[i] > '7' || i >= 4)
			return -1;
		v = v * 8 + (unsigned long)(q[i] - '0');
	}
	if (i == 0 || v > 0777)
		return -1;
	*mode = (uint32_t)v;
	return 0;
}

static enum MHD_Result send_bad_mode(struct MHD_Connection *c, struct req *r)
{
	return send_bad_request(c, r, "`mode` must be permission bits in octal, 0 to 0777 (e.g. mode=0755)");
}

static enum MHD_Result h_file_put(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path;
	struct sbent *e;
	mbx_error *err = NULL;
	json_object *o;
	uint32_t mode;
	int rc;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (mode_arg(c, 0644, &mode) < 0)
		return send_bad_mode(c, r);
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_write_file(e->sb, path, r->body ? r->body : "", r->len, mode, 0, &err);
	entry_done_shared(s, e);
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
	if (cli_path_is_root(path)) {
		char why[512];

		snprintf(why, sizeof(why), "`%.400s` is the sandbox's root; to destroy the sandbox, DELETE "
			 "/v1/sandboxes/{id}", path);
		return send_error(c, r, 403, "permission_denied", why, NULL);
	}
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_remove(e->sb, path, rec && (strcmp(rec, "1") == 0 || strcmp(rec, "true") == 0), &err);
	entry_done_shared(s, e);
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
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_list_dir(e->sb, path, &dir, &err);
	entry_done_shared(s, e);
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

/* GET .../stat?path=P: the path's metadata (a final symlink not followed), as `mimobox stat --json`. */
static enum MHD_Result h_stat(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path, *target;
	struct sbent *e;
	mbx_error *err = NULL;
	mbx_stat *st = NULL;
	json_object *o;
	char when[80], mode[16];
	int rc, link;

	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_stat(e->sb, path, &st, &err);
	entry_done_shared(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "stat");
	link = mbx_stat_type(st) == MBX_FILE_SYMLINK;
	target = link ? mbx_stat_symlink_target(st) : NULL;
	cli_format_time_ns(when, sizeof(when), mbx_stat_mtime_ns(st));
	snprintf(mode, sizeof(mode), "%04o", (unsigned)mbx_stat_mode(st));
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "type", json_object_new_string(type_name(mbx_stat_type(st))));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)mbx_stat_size(st)));
	json_object_object_add(o, "mode", json_object_new_string(mode));
	json_object_object_add(o, "mtime_ns", json_object_new_int64(mbx_stat_mtime_ns(st)));
	json_object_object_add(o, "mtime", json_object_new_string(when));
	json_object_object_add(o, "uid", json_object_new_int64(mbx_stat_uid(st)));
	json_object_object_add(o, "gid", json_object_new_int64(mbx_stat_gid(st)));
	json_object_object_add(o, "symlink", json_object_new_boolean(link));
	json_object_object_add(o, "target", target ? json_object_new_string(target) : NULL);
	mbx_stat_free(st);
	return send_json(c, r, 200, o);
}

/* POST .../dir?path=P[&parents=1][&mode=M]: makes a directory, mode M or 0755 (parents: the missing ones above too). */
static enum MHD_Result h_mkdir(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path, *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "parents");
	int parents = q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
	struct sbent *e;
	mbx_error *err = NULL;
	json_object *o;
	uint32_t mode;
	int rc;

	if (q && !parents && strcmp(q, "0") != 0 && strcmp(q, "false") != 0)
		return send_bad_request(c, r, "`parents` must be 1 (make the missing directories above it too) or 0");
	if (r->len)
		return send_bad_request(c, r, "POST .../dir takes no body: the path and parents go in the query");
	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (mode_arg(c, 0755, &mode) < 0)
		return send_bad_mode(c, r);
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_mkdir(e->sb, path, mode, parents, &err);
	entry_done_shared(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "make directory");
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	return send_json(c, r, 201, o);
}

/*
 * POST .../symlink?path=P&target=T: makes P a symlink to T
 * (mbx_sandbox_symlink: the target is stored as given, never followed or
 * checked; P must not exist).
 */
static enum MHD_Result h_symlink(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *path, *target = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target");
	struct sbent *e;
	mbx_error *err = NULL;
	json_object *o;
	int rc;

	if (r->len)
		return send_bad_request(c, r, "POST .../symlink takes no body: the path and target go in the query");
	if (path_arg(c, &path) < 0)
		return send_no_path(c, r);
	if (target == NULL || target[0] == '\0')
		return send_bad_request(c, r, "`target` is required: what the symlink points to (e.g. target=../lib)");
	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_symlink(e->sb, target, path, &err);
	entry_done_shared(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "make symlink");
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "target", json_object_new_string(target));
	return send_json(c, r, 201, o);
}

/* ---- background processes ----
 *
 * POST .../processes spawns a program and answers at once. The server
 * keeps what it prints: a drain thread per sandbox (started with its first
 * background process, ended when none runs) takes every running process's
 * events each PROC_DRAIN_MS, under the sandbox's mutex only for that
 * look, so a program never blocks on a full pipe and other calls on the
 * sandbox get in between. Each stream keeps its last PROC_KEEP bytes; older
 * bytes are dropped and counted.
 */

#define PROC_KEEP ((size_t)1 << 20)
#define PROC_DRAIN_MS 25
#define PROC_EVENTS_PER_LOOK 256
#define PROC_KILL_WAIT_MS 5000
#define PROC_STDIN_WAIT_MS 30000
#define PROC_CHUNK ((size_t)64 << 10)
#define PROC_COMMAND_SHOWN 256

struct outbuf {
	uint8_t *data;
	size_t len, cap;
	uint64_t dropped;	/* bytes let go from the front */
};

struct bgproc {
	uint32_t id;
	mbx_process *proc;	/* under the sandbox's lock; NULL once it ended */
	char *program;
	char *command;		/* argv joined with spaces, at most PROC_COMMAND_SHOWN bytes */
	uint64_t started_ms, ended_ms;
	/* The rest under procs_lock. */
	int running;
	int stdin_open;
	int deleting;		/* DELETE is killing it: followers get `not_found`, not its exit */
	/* The program of a streamed execute (listed and signalled as the
	 * others): `proc` is its stream's, which removes the record before it
	 * frees the handle; no output is kept here, no drain takes its events. */
	int foreground;
	int exit_code, sig, timed_out;
	uint64_t elapsed_ms;
	struct outbuf out[2];	/* stdout, stderr */
};

static void outbuf_add(struct outbuf *b, const uint8_t *data, size_t len)
{
	if (len >= PROC_KEEP) {
		b->dropped += b->len + (len - PROC_KEEP);
		data += len - PROC_KEEP;
		len = PROC_KEEP;
		b->len = 0;
	} else if (b->len + len > PROC_KEEP) {
		size_t drop = b->len + len - PROC_KEEP;

		memmove(b->data, b->data + drop, b->len - drop);
		b->len -= drop;
		b->dropped += drop;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		if (cap > PROC_KEEP)
			cap = PROC_KEEP;
		p = realloc(b->data, cap);
		if (!p) {	/* out of memory: these bytes are dropped */
			b->dropped += len;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* argv joined with spaces, cut to PROC_COMMAND_SHOWN bytes ending in "..."; NULL when out of memory. */
static char *join_command(const char *const *argv)
{
	struct cli_buf b = CLI_BUF_INIT;

	for (size_t i = 0; argv[i] && b.len <= PROC_COMMAND_SHOWN; i++) {
		if (i)
			cli_buf_puts(&b, " ");
		cli_buf_puts(&b, argv[i]);
	}
	if (b.len > PROC_COMMAND_SHOWN) {
		b.len = PROC_COMMAND_SHOWN - 3;
		cli_buf_puts(&b, "...");
	}
	cli_buf_add(&b, "", 1);
	if (b.failed) {
		cli_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static void bgproc_free(struct bgproc *bg)
{
	if (!bg)
		return;
	if (!bg->foreground)
		mbx_process_free(bg->proc);
	free(bg->out[0].data);
	free(bg->out[1].data);
	free(bg->program);
	free(bg->command);
	free(bg);
}

/* The process's state as it ended (procs_lock held). */
static void bgproc_ended_locked(struct bgproc *bg, int code, int sig, int timed_out, uint64_t elapsed_ms)
{
	bg->running = 0;
	bg->stdin_open = 0;
	bg->exit_code = code;
	bg->sig = sig;
	bg->timed_out = timed_out;
	bg->elapsed_ms = elapsed_ms;
	bg->ended_ms = now_ms();
}

/* The sandbox was destroyed (its lock held): its processes ended with it. */
static void procs_on_destroy(struct sbent *e)
{
	size_t i;

	pthread_mutex_lock(&e->procs_lock);
	for (i = 0; i < e->n_procs; i++) {
		struct bgproc *bg = e->procs[i];

		if (!bg->foreground)	/* a stream's handle is its stream's to free */
			mbx_process_free(bg->proc);
		bg->proc = NULL;
		if (bg->running)
			bgproc_ended_locked(bg, -1, 0, 0, now_ms() - bg->started_ms);
	}
	e->gone = 1;
	pthread_cond_broadcast(&e->procs_cond);
	pthread_mutex_unlock(&e->procs_lock);
}

static void procs_free_all(struct sbent *e)
{
	size_t i;

	for (i = 0; i < e->n_procs; i++)
		bgproc_free(e->procs[i]);
	e->n_procs = 0;
}

/* Under either lock. */
static struct bgproc *bgproc_find(struct sbent *e, uint32_t id)
{
	size_t i;

	for (i = 0; i < e->n_procs; i++)
		if (e->procs[i]->id == id)
			return e->procs[i];
	return NULL;
}

/* Takes bg out of e's list (both locks held, or the only user); not freed. */
static void procs_remove_locked(struct sbent *e, struct bgproc *bg)
{
	size_t i;

	for (i = 0; i < e->n_procs && e->procs[i] != bg; i++)
		;
	if (i < e->n_procs) {
		memmove(&e->procs[i], &e->procs[i + 1], (e->n_procs - i - 1) * sizeof(e->procs[0]));
		e->n_procs--;
	}
}

/*
 * Makes room in a full list (both locks held) by forgetting the oldest
 * ended background process; never a foreground one, whose record is its
 * stream's to take out. 0 when there is room, -1 when every place holds a
 * running process or a stream's.
 */
static int procs_make_room_locked(struct sbent *e)
{
	struct bgproc *old;
	size_t i;

	if (e->n_procs < MAX_PROCS)
		return 0;
	for (i = 0; i < e->n_procs && (e->procs[i]->running || e->procs[i]->foreground); i++)
		;
	if (i == e->n_procs)
		return -1;
	old = e->procs[i];
	procs_remove_locked(e, old);
	bgproc_free(old);
	return 0;
}

/*
 * The program of a streamed execute in e's process list (foreground), so
 * that GET .../processes lists it and .../signal and DELETE reach it; NULL
 * when it cannot be listed (out of memory, the list full of running
 * processes, the sandbox gone): the stream goes on unlisted.
 */
static struct bgproc *fg_register(struct sbent *e, mbx_process *proc, const char *const *argv)
{
	struct bgproc *bg = calloc(1, sizeof(*bg));
	int kept = 0;

	if (!bg)
		return NULL;
	bg->foreground = 1;
	bg->id = mbx_process_id(proc);
	bg->proc = proc;
	bg->program = strdup(argv[0]);
	bg->command = join_command(argv);
	bg->started_ms = now_ms();
	bg->running = 1;
	if (bg->program && bg->command) {
		/* The list changes under both locks (struct sbent). */
		pthread_mutex_lock(&e->lock);
		pthread_mutex_lock(&e->procs_lock);
		if (!e->destroyed && !e->gone && procs_make_room_locked(e) == 0) {
			e->procs[e->n_procs++] = bg;
			kept = 1;
		}
		pthread_mutex_unlock(&e->procs_lock);
		pthread_mutex_unlock(&e->lock);
	}
	if (!kept) {
		bgproc_free(bg);	/* not the handle: it is the stream's */
		return NULL;
	}
	return bg;
}

/* A foreground process's end, as its stream saw it. */
static void fg_ended(struct sbent *e, struct bgproc *bg, mbx_event *ev)
{
	mbx_event_kind_t kind = mbx_event_kind(ev);

	pthread_mutex_lock(&e->procs_lock);
	bgproc_ended_locked(bg, kind == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -1, mbx_event_signal(ev),
			    kind == MBX_EVENT_TIMED_OUT, mbx_event_elapsed_us(ev) / 1000);
	pthread_cond_broadcast(&e->procs_cond);
	pthread_mutex_unlock(&e->procs_lock);
}

/* Takes a foreground process out of e's list and frees its record (not its handle). */
static void fg_unregister(struct sbent *e, struct bgproc *bg)
{
	pthread_mutex_lock(&e->lock);
	pthread_mutex_lock(&e->procs_lock);
	procs_remove_locked(e, bg);
	pthread_cond_broadcast(&e->procs_cond);
	pthread_mutex_unlock(&e->procs_lock);
	pthread_mutex_unlock(&e->lock);
	bgproc_free(bg);
}

static enum MHD_Result send_foreground(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 160];

	snprintf(why, sizeof(why), "process %" PRIu32 " in sandbox `%s` is the program of a running execute: its "
		 "input and output go through that execute's stream", r->pid, r->id);
	return send_error(c, r, 409, "bad_state", why, "signal it with POST .../signal, or end it with DELETE");
}

/*
 * Takes the events bg has (the sandbox's lock held), waiting up to wait_ms
 * for the first; keeps the output and notes the end. Returns how many.
 */
static int bgproc_pump(struct sbent *e, struct bgproc *bg, int wait_ms)
{
	int n;

	if (bg->foreground)	/* its stream takes its events */
		return 0;
	for (n = 0; bg->proc && n < PROC_EVENTS_PER_LOOK; n++) {
		mbx_event *ev = NULL;
		mbx_error *err = NULL;
		mbx_event_kind_t kind;
		const uint8_t *d;
		size_t len;
		int rc = mbx_process_next_event(bg->proc, n == 0 ? wait_ms : 0, &ev, &err);

		mbx_error_free(err);
		if (rc == MBX_OK && !ev)
			return n;
		pthread_mutex_lock(&e->procs_lock);
		if (rc != MBX_OK) {
			/* The sandbox broke under it: the process is lost. */
			bgproc_ended_locked(bg, -1, 0, 0, now_ms() - bg->started_ms);
		} else {
			kind = mbx_event_kind(ev);
			if (kind == MBX_EVENT_STDOUT || kind == MBX_EVENT_STDERR) {
				d = mbx_event_data(ev, &len);
				if (d && len)
					outbuf_add(&bg->out[kind == MBX_EVENT_STDERR], d, len);
			} else {
				bgproc_ended_locked(bg, kind == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -1,
						    mbx_event_signal(ev), kind == MBX_EVENT_TIMED_OUT,
						    mbx_event_elapsed_us(ev) / 1000);
			}
		}
		pthread_cond_broadcast(&e->procs_cond);
		pthread_mutex_unlock(&e->procs_lock);
		mbx_event_free(ev);
		if (rc != MBX_OK || !bg->running) {
			mbx_process_free(bg->proc);
			bg->proc = NULL;
		}
	}
	return n;
}

static void release_bg_ref(struct serve_server *s, struct sbent *e)
{
	pthread_mutex_lock(&s->table_lock);
	e->bg_refs--;
	pthread_mutex_unlock(&s->table_lock);
	entry_release(s, e);
}

struct drain_arg {
	struct serve_server *s;
	struct sbent *e;
};

static void *drain_main(void *arg)
{
	struct serve_server *s = ((struct drain_arg *)arg)->s;
	struct sbent *e = ((struct drain_arg *)arg)->e;
	struct timespec ts = { 0, PROC_DRAIN_MS * 1000000L };
	/* Waits on the event descriptor; without one, looks each PROC_DRAIN_MS. */
	int evfd = entry_event_fd(e, NULL), woke = 0;
	unsigned backoff = 0, pause;

	free(arg);

	for (;;) {
		int running = 0, took = 0;
		size_t i;

		pthread_mutex_lock(&e->lock);
		if (!e->destroyed) {
			for (i = 0; i < e->n_procs; i++) {
				took |= bgproc_pump(e, e->procs[i], 0) > 0;
				running |= e->procs[i]->proc != NULL && !e->procs[i]->foreground;
			}
		}
		if (!running) {
			/* Decided under the lock a spawn takes: a later spawn starts a new thread. */
			e->draining = 0;
			pthread_mutex_unlock(&e->lock);
			break;
		}
		/* Not entry_leave(): draining is no use of the sandbox (ttl_ms). */
		pthread_mutex_unlock(&e->lock);
		if (evfd < 0) {
			nanosleep(&ts, NULL);
			continue;
		}
		pause = 0;
		if (took)
			backoff = 0;
		else if (woke)	/* readable, yet nothing of ours came: other processes' events wait there */
			pause = backoff = backoff_next(backoff);
		woke = entry_wait(e, evfd, -1, pause, e->wake_fd >= 0 ? -1 : 1000);
		if (!woke && !pause)
			backoff = 0;
	}
	if (evfd >= 0)
		close(evfd);
	release_bg_ref(s, e);
	atomic_fetch_sub(&s->drainers, 1);
	return NULL;
}

/* Starts e's drain thread unless it runs (e's lock held); -1 when it cannot start. */
static int drain_start_locked(struct serve_server *s, struct sbent *e)
{
	struct drain_arg *arg;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (e->draining)
		return 0;
	if (!(arg = malloc(sizeof(*arg))))
		return -1;
	arg->s = s;
	arg->e = e;
	pthread_mutex_lock(&s->table_lock);
	e->refs++;
	e->bg_refs++;
	pthread_mutex_unlock(&s->table_lock);
	atomic_fetch_add(&s->drainers, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, drain_main, arg);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(arg);
		atomic_fetch_sub(&s->drainers, 1);
		pthread_mutex_lock(&s->table_lock);
		e->refs--;	/* the caller holds one more: never the last */
		e->bg_refs--;
		pthread_mutex_unlock(&s->table_lock);
		return -1;
	}
	e->draining = 1;
	return 0;
}

/* What GET .../processes/{pid} shows (procs_lock held). */
static json_object *bgproc_json_locked(const struct bgproc *bg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64(bg->id));
	json_object_object_add(o, "program", json_object_new_string(bg->program));
	json_object_object_add(o, "command", json_object_new_string(bg->command));
	json_object_object_add(o, "running", json_object_new_boolean(bg->running));
	json_object_object_add(o, "foreground", json_object_new_boolean(bg->foreground));
	json_object_object_add(o, "age_ms", json_object_new_int64((int64_t)(now_ms() - bg->started_ms)));
	json_object_object_add(o, "stdin", json_object_new_boolean(bg->stdin_open));
	json_object_object_add(o, "stdout_bytes", json_object_new_int64((int64_t)(bg->out[0].dropped + bg->out[0].len)));
	json_object_object_add(o, "stderr_bytes", json_object_new_int64((int64_t)(bg->out[1].dropped + bg->out[1].len)));
	if (!bg->running) {
		json_object_object_add(o, "exit_code", json_object_new_int(bg->exit_code));
		json_object_object_add(o, "signal", json_object_new_int(bg->sig));
		json_object_object_add(o, "timed_out", json_object_new_boolean(bg->timed_out));
		json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)bg->elapsed_ms));
	}
	return o;
}

static enum MHD_Result send_no_process(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 96];

	snprintf(why, sizeof(why), "no process %" PRIu32 " in sandbox `%s`", r->pid, r->id);
	return send_error(c, r, 404, "not_found", why, "list its processes with GET /v1/sandboxes/ID/processes");
}

static enum MHD_Result send_proc_ended(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 96];

	snprintf(why, sizeof(why), "process %" PRIu32 " in sandbox `%s` has ended", r->pid, r->id);
	return send_error(c, r, 409, "bad_state", why, "GET its output and exit status, or DELETE it");
}

static const char *const spawn_keys[] = { "argv", "env", "workdir", "timeout_ms", "stdin", NULL };

static enum MHD_Result h_proc_spawn(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	char why[CLI_WHY_MAX];
	json_object *body, *copy = NULL, *v;
	struct exec_req x;
	mbx_spawn_options *so = NULL;
	mbx_process *proc = NULL;
	mbx_error *err = NULL;
	struct bgproc *bg = NULL;
	struct sbent *e;
	const char *what = "spawn options";
	uint64_t timeout = 0;
	int want_stdin = 0, rc;

	memset(&x, 0, sizeof(x));
	body = parse_body(r, why, sizeof(why));
	if (!body)
		return send_bad_request(c, r, why);
	if (check_keys(body, spawn_keys, why, sizeof(why)) < 0 ||
	    get_u64(body, "timeout_ms", 0, (uint64_t)1 << 40, &timeout, NULL, why, sizeof(why)) < 0)
		goto bad;
	if (json_object_object_get_ex(body, "stdin", &v) && v) {
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(why, sizeof(why), "`stdin` must be true (keep a stdin pipe: POST .../stdin) or false");
			goto bad;
		}
		want_stdin = json_object_get_int64(v) != 0;	/* a boolean's value */
	}
	/* argv, env and workdir as an execute's; stdin and timeout_ms differ. */
	copy = json_object_new_object();
	json_object_object_foreach(body, field, fv) {
		if (strcmp(field, "stdin") != 0 && strcmp(field, "timeout_ms") != 0)
			json_object_object_add(copy, field, json_object_get(fv));
	}
	if (exec_req_parse(copy, &x, 0, why, sizeof(why)) < 0)
		goto bad;
	if ((rc = mbx_spawn_options_new(&so, &err)) != MBX_OK)
		goto fail;
	if (x.env) {
		json_object_object_foreach(x.env, name, val) {
			what = "`env`";
			if ((rc = mbx_spawn_options_set_env(so, name, json_object_get_string(val), &err)) != MBX_OK)
				goto fail;
		}
	}
	what = "`workdir`";
	if (x.workdir && (rc = mbx_spawn_options_set_workdir(so, x.workdir, &err)) != MBX_OK)
		goto fail;
	mbx_spawn_options_set_timeout_ms(so, timeout);
	mbx_spawn_options_set_stdin(so, want_stdin);
	bg = calloc(1, sizeof(*bg));
	if (!bg || !(bg->program = strdup(x.argv[0])) || !(bg->command = join_command(x.argv))) {
		rc = MBX_ENOMEM;
		what = "out of memory";
		goto fail;
	}
	if (!(e = entry_use(s, r))) {
		bgproc_free(bg);
		mbx_spawn_options_free(so);
		exec_req_free(&x);
		json_object_put(copy);
		json_object_put(body);
		return send_no_sandbox(c, r);
	}
	{
		int full;

		pthread_mutex_lock(&e->procs_lock);
		full = procs_make_room_locked(e) < 0;
		pthread_mutex_unlock(&e->procs_lock);
		if (full) {
			entry_done(s, e);
			bgproc_free(bg);
			mbx_spawn_options_free(so);
			exec_req_free(&x);
			json_object_put(copy);
			json_object_put(body);
			snprintf(why, sizeof(why), "the sandbox runs %d background processes already", MAX_PROCS);
			return send_error(c, r, 409, "bad_state", why, "DELETE one of them first");
		}
	}
	what = "start the process";
	rc = mbx_sandbox_spawn(e->sb, x.argv, so, &proc, &err);
	if (rc == MBX_OK) {
		json_object *answer;

		bg->id = mbx_process_id(proc);
		bg->proc = proc;
		bg->started_ms = now_ms();
		bg->running = 1;
		bg->stdin_open = want_stdin;
		if (drain_start_locked(s, e) < 0) {
			mbx_process_kill(proc, NULL);
			bgproc_free(bg);
			bg = NULL;
			entry_done(s, e);
			rc = MBX_ESYS;
			what = "cannot start the thread that keeps its output";
			goto fail;
		}
		pthread_mutex_lock(&e->procs_lock);
		e->procs[e->n_procs++] = bg;
		answer = bgproc_json_locked(bg);
		pthread_mutex_unlock(&e->procs_lock);
		entry_done(s, e);
		atomic_fetch_add(&s->executes, 1);
		mbx_spawn_options_free(so);
		exec_req_free(&x);
		json_object_put(copy);
		json_object_put(body);
		return send_json(c, r, 201, answer);
	}
	entry_done(s, e);
fail:
	if (bg && !bg->proc)
		bgproc_free(bg);
	mbx_spawn_options_free(so);
	exec_req_free(&x);
	json_object_put(copy);
	json_object_put(body);
	return send_mbx_error(c, r, rc, err, what);
bad:
	exec_req_free(&x);
	json_object_put(copy);
	json_object_put(body);
	return send_bad_request(c, r, why);
}

static enum MHD_Result h_proc_list(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct sbent *e = entry_lookup(s, r);
	json_object *o, *a;
	size_t i;

	if (!e)
		return send_no_sandbox(c, r);
	o = json_object_new_object();
	a = json_object_new_array();
	pthread_mutex_lock(&e->procs_lock);
	for (i = 0; i < e->n_procs; i++)
		json_object_array_add(a, bgproc_json_locked(e->procs[i]));
	pthread_mutex_unlock(&e->procs_lock);
	entry_release(s, e);
	json_object_object_add(o, "processes", a);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_proc_get(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct sbent *e = entry_lookup(s, r);
	struct bgproc *bg;
	json_object *o = NULL;

	if (!e)
		return send_no_sandbox(c, r);
	pthread_mutex_lock(&e->procs_lock);
	if ((bg = bgproc_find(e, r->pid)) != NULL)
		o = bgproc_json_locked(bg);
	pthread_mutex_unlock(&e->procs_lock);
	entry_release(s, e);
	if (!o)
		return send_no_process(c, r);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_proc_signal(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	static const char *const keys[] = { "signal", "tree", NULL };
	char why[CLI_WHY_MAX];
	json_object *body, *v, *t = NULL;
	mbx_error *err = NULL;
	struct bgproc *bg;
	struct sbent *e;
	int sig = 0, tree = 0, rc;

	body = parse_body(r, why, sizeof(why));
	if (!body)
		return send_bad_request(c, r, why);
	if (check_keys(body, keys, why, sizeof(why)) < 0) {
		json_object_put(body);
		return send_bad_request(c, r, why);
	}
	if (json_object_object_get_ex(body, "tree", &t) && t) {
		if (!json_object_is_type(t, json_type_boolean)) {
			json_object_put(body);
			return send_bad_request(c, r, "`tree` must be true (SIGKILL to the process and everything it "
						"started) or false");
		}
		tree = json_object_get_int64(t) != 0;	/* a boolean's value */
	}
	if (tree) {
		if (json_object_object_get_ex(body, "signal", &v) && v) {
			json_object_put(body);
			return send_bad_request(c, r, "`tree` kills with SIGKILL: leave `signal` out");
		}
	} else if (!json_object_object_get_ex(body, "signal", &v) || !v) {
		json_object_put(body);
		return send_bad_request(c, r, "`signal` is required: a name (\"TERM\", \"SIGINT\") or a number from 1 to 64 "
					"(or \"tree\": true to kill the process and everything it started)");
	}
	if (tree) {
		/* SIGKILL to the whole tree: below. */
	} else if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		if (n < 1 || n > 64) {
			json_object_put(body);
			return send_bad_request(c, r, "`signal`: a number from 1 to 64, or a name (\"TERM\", \"KILL\")");
		}
		sig = (int)n;
	} else if (!json_object_is_type(v, json_type_string) ||
		   cli_parse_signal(json_object_get_string(v), &sig, why, sizeof(why)) < 0) {
		char msg[CLI_WHY_MAX + 16];

		if (!json_object_is_type(v, json_type_string))
			snprintf(msg, sizeof(msg), "`signal` must be a name (\"TERM\") or a number");
		else
			snprintf(msg, sizeof(msg), "`signal`: %s", why);
		json_object_put(body);
		return send_bad_request(c, r, msg);
	}
	json_object_put(body);
	if (!(e = entry_use(s, r)))
		return send_no_sandbox(c, r);
	bg = bgproc_find(e, r->pid);
	if (bg && bg->foreground) {
		int running;

		pthread_mutex_lock(&e->procs_lock);
		running = bg->running;
		pthread_mutex_unlock(&e->procs_lock);
		if (!running) {
			entry_done(s, e);
			return send_proc_ended(c, r);
		}
	}
	if (!bg || !bg->proc) {
		entry_done(s, e);
		return bg ? send_proc_ended(c, r) : send_no_process(c, r);
	}
	rc = tree ? mbx_process_kill(bg->proc, &err) : mbx_process_signal(bg->proc, sig, &err);
	entry_done(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "signal");
	return send_bytes(c, r, 204, NULL, "", 0);
}

/* Kills, waits for and forgets a background process. */
static enum MHD_Result h_proc_delete(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct bgproc *bg;
	struct sbent *e;

	if (!(e = entry_use(s, r)))
		return send_no_sandbox(c, r);
	bg = bgproc_find(e, r->pid);
	if (!bg) {
		entry_done(s, e);
		return send_no_process(c, r);
	}
	if (bg->foreground) {
		/* Killed with everything it started; its stream ends and takes it out of the list. */
		if (bg->proc)
			mbx_process_kill(bg->proc, NULL);
		entry_done(s, e);
		return send_bytes(c, r, 204, NULL, "", 0);
	}
	pthread_mutex_lock(&e->procs_lock);
	bg->deleting = 1;
	pthread_cond_broadcast(&e->procs_cond);
	pthread_mutex_unlock(&e->procs_lock);
	if (bg->proc && mbx_process_kill(bg->proc, NULL) == MBX_OK) {
		uint64_t deadline = now_ms() + PROC_KILL_WAIT_MS;

		while (bg->proc && now_ms() < deadline)
			bgproc_pump(e, bg, 100);
	}
	pthread_mutex_lock(&e->procs_lock);
	procs_remove_locked(e, bg);
	pthread_cond_broadcast(&e->procs_cond);
	pthread_mutex_unlock(&e->procs_lock);
	bgproc_free(bg);	/* its handle under the sandbox's lock */
	entry_done(s, e);
	return send_bytes(c, r, 204, NULL, "", 0);
}

/*
 * Writes the body to the process's stdin. The sandbox takes a bounded
 * window at a time: between windows the lock is let go, and the process's
 * output is taken meanwhile so that it can go on to read.
 */
static enum MHD_Result h_proc_stdin(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "close");
	int close_after = q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
	uint64_t deadline = now_ms() + PROC_STDIN_WAIT_MS;
	mbx_error *err = NULL;
	struct bgproc *bg;
	struct sbent *e;
	size_t done = 0;
	json_object *o;
	int rc = MBX_OK;

	if (q && !close_after && strcmp(q, "0") != 0 && strcmp(q, "false") != 0)
		return send_bad_request(c, r, "`close` must be 1 (close stdin after the bytes) or 0");
	if (!(e = entry_lookup(s, r)))
		return send_no_sandbox(c, r);
	for (;;) {
		size_t n = 0;

		if (entry_enter(e) < 0) {
			entry_release(s, e);
			return send_no_sandbox(c, r);
		}
		bg = bgproc_find(e, r->pid);
		if (bg && bg->foreground) {
			entry_done(s, e);
			return send_foreground(c, r);
		}
		if (!bg || !bg->proc || !bg->stdin_open) {
			entry_done(s, e);
			if (!bg)
				return send_no_process(c, r);
			if (bg->proc || done > 0) {
				char why[ID_MAX + 160];

				snprintf(why, sizeof(why), "process %" PRIu32 " has %s (%zu of %zu bytes were written)",
					 r->pid, bg->proc ? "no open stdin" : "ended", done, r->len);
				return send_error(c, r, 409, "bad_state", why,
						  bg->proc ? "spawn it with \"stdin\": true to write to it" : NULL);
			}
			return send_proc_ended(c, r);
		}
		if (done < r->len) {
			rc = mbx_process_write_stdin_some(bg->proc, r->body + done, r->len - done, &n, &err);
			done += n;
			if (rc == MBX_OK && n == 0)
				bgproc_pump(e, bg, 50);	/* output taken lets it read on; credit comes */
		}
		if (rc == MBX_OK && done == r->len && close_after) {
			rc = mbx_process_close_stdin(bg->proc, &err);
			if (rc == MBX_OK) {
				pthread_mutex_lock(&e->procs_lock);
				bg->stdin_open = 0;
				pthread_mutex_unlock(&e->procs_lock);
			}
		}
		entry_leave(e);
		if (rc != MBX_OK || done == r->len)
			break;
		if (now_ms() >= deadline) {
			char why[160];

			entry_release(s, e);
			snprintf(why, sizeof(why), "the program took %zu of %zu bytes in %d s", done, r->len,
				 PROC_STDIN_WAIT_MS / 1000);
			return send_error(c, r, 504, "timed_out", why, "send the rest once it reads on");
		}
	}
	entry_release(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "write stdin");
	o = json_object_new_object();
	json_object_object_add(o, "written", json_object_new_int64((int64_t)done));
	json_object_object_add(o, "closed", json_object_new_boolean(close_after));
	return send_json(c, r, 200, o);
}

/* A follow of a process's output: the response body's state. */
struct follow {
	struct serve_server *s;
	struct sbent *e;
	uint32_t pid;
	uint64_t pos[2];
	struct cli_buf out;
	size_t off;
	int done;
	int sock;		/* the client's socket (looked at for its going away), or -1 */
	uint64_t last_ms;
};

static void follow_event(struct follow *f, const char *name, json_object *data)
{
	cli_buf_printf(&f->out, "event: %s\ndata: %s\n\n", name,
		       json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(data);
	f->last_ms = now_ms();
}

/* New output of bg since f's positions, at most PROC_CHUNK per stream (procs_lock held); 1 when any. */
static int follow_take_locked(struct follow *f, const struct bgproc *bg)
{
	int k, any = 0;

	for (k = 0; k < 2; k++) {
		const struct outbuf *b = &bg->out[k];
		uint64_t total = b->dropped + b->len;
		json_object *o;
		size_t n, at;

		if (f->pos[k] < b->dropped) {
			o = json_object_new_object();
			json_object_object_add(o, "stream", json_object_new_string(k ? "stderr" : "stdout"));
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)(b->dropped - f->pos[k])));
			follow_event(f, "dropped", o);
			f->pos[k] = b->dropped;
			any = 1;
		}
		if (f->pos[k] >= total)
			continue;
		at = (size_t)(f->pos[k] - b->dropped);
		n = b->len - at < PROC_CHUNK ? b->len - at : PROC_CHUNK;
		o = json_object_new_object();
		add_bytes(o, "data", b->data + at, n);
		follow_event(f, k ? "stderr" : "stdout", o);
		f->pos[k] += n;
		any = 1;
	}
	return any;
}

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct follow *f = cls;
	struct sbent *e = f->e;

	(void)pos;
	for (;;) {
		struct bgproc *bg;

		if (f->out.failed)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (f->off < f->out.len) {
			size_t n = f->out.len - f->off;

			if (n > max)
				n = max;
			memcpy(buf, f->out.data + f->off, n);
			f->off += n;
			if (f->off == f->out.len)
				f->off = f->out.len = 0;
			return (ssize_t)n;
		}
		if (f->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&e->procs_lock);
		bg = e->gone ? NULL : bgproc_find(e, f->pid);
		if (!bg || bg->deleting) {
			pthread_mutex_unlock(&e->procs_lock);
			follow_event(f, "error", error_object(e->gone ? "bad_state" : "not_found",
							      e->gone ? "the sandbox was destroyed" :
							      "the process was deleted", NULL, NULL));
			f->done = 1;
			continue;
		}
		if (!follow_take_locked(f, bg)) {
			if (!bg->running) {
				json_object *o = json_object_new_object();

				json_object_object_add(o, "exit_code", json_object_new_int(bg->exit_code));
				json_object_object_add(o, "signal", json_object_new_int(bg->sig));
				json_object_object_add(o, "timed_out", json_object_new_boolean(bg->timed_out));
				json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)bg->elapsed_ms));
				follow_event(f, "exit", o);
				f->done = 1;
			} else if (now_ms() - f->last_ms >= STREAM_HEARTBEAT_MS) {
				cli_buf_puts(&f->out, ": keep-alive\n\n");
				f->last_ms = now_ms();
			} else {
				struct pollfd p = { .fd = f->sock, .events = POLLRDHUP };
				struct timespec ts;

				/* Woken by the drain thread as output comes; each second, is the client still there? */
				if (f->sock >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
					pthread_mutex_unlock(&e->procs_lock);
					return MHD_CONTENT_READER_END_WITH_ERROR;
				}
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				pthread_cond_timedwait(&e->procs_cond, &e->procs_lock, &ts);
			}
		}
		pthread_mutex_unlock(&e->procs_lock);
	}
}

static void follow_free(void *cls)
{
	struct follow *f = cls;

	entry_release(f->s, f->e);
	cli_buf_free(&f->out);
	free(f);
}

static enum MHD_Result h_proc_output(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "follow");
	int follow = q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
	struct sbent *e = entry_lookup(s, r);
	struct bgproc *bg;
	json_object *o = NULL;
	int k;

	if (!e)
		return send_no_sandbox(c, r);
	pthread_mutex_lock(&e->procs_lock);
	bg = bgproc_find(e, r->pid);
	if (bg && bg->foreground) {
		pthread_mutex_unlock(&e->procs_lock);
		entry_release(s, e);
		return send_foreground(c, r);
	}
	if (bg && !follow) {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_int64(bg->id));
		json_object_object_add(o, "running", json_object_new_boolean(bg->running));
		for (k = 0; k < 2; k++) {
			add_bytes(o, k ? "stderr" : "stdout", bg->out[k].data, bg->out[k].len);
			json_object_object_add(o, k ? "stderr_dropped" : "stdout_dropped",
					       json_object_new_int64((int64_t)bg->out[k].dropped));
		}
	}
	pthread_mutex_unlock(&e->procs_lock);
	if (!bg) {
		entry_release(s, e);
		return send_no_process(c, r);
	}
	if (!follow) {
		entry_release(s, e);
		return send_json(c, r, 200, o);
	}
	{
		struct follow *f = calloc(1, sizeof(*f));
		struct MHD_Response *resp;

		if (!f) {
			entry_release(s, e);
			return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
		}
		f->s = s;
		f->e = e;	/* our reference moves to the follow */
		f->pid = r->pid;
		f->last_ms = now_ms();
		{
			const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

			f->sock = ci ? ci->connect_fd : -1;
		}
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, follow_read, f, follow_free);
		if (!resp) {
			follow_free(f);
			return MHD_NO;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		return queue(c, r, 200, resp);
	}
}

static enum MHD_Result h_procs(struct serve_server *s, struct MHD_Connection *c, struct req *r, const char *method)
{
	int post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;

	switch (r->route) {
	case R_PROCS:
		return post ? h_proc_spawn(s, c, r) : h_proc_list(s, c, r);
	case R_PROC:
		return del ? h_proc_delete(s, c, r) : h_proc_get(s, c, r);
	case R_PROC_SIGNAL:
		return h_proc_signal(s, c, r);
	case R_PROC_STDIN:
		return h_proc_stdin(s, c, r);
	default:
		return h_proc_output(s, c, r);
	}
}

/* ---- snapshots, restores and forks ---- */

/*
 * The server keeps snapshots in memory, as the library's handles: they
 * live as long as the server (as its sandboxes do), a crash leaves no file
 * behind to collect, and a microVM snapshot's memory stays the sealed memfd
 * its clones map. --max-snapshots and --max-snapshot-mb bound them.
 */

static void snap_release(struct serve_server *s, struct snapent *p)
{
	int last;

	pthread_mutex_lock(&s->snap_lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&s->snap_lock);
	if (!last)
		return;
	mbx_snapshot_free(p->snap);
	pthread_mutex_destroy(&p->lock);
	json_object_put(p->info);
	free(p);
}

/* The request's snapshot (its path's id, of its client: another client's is not there) with a reference, or NULL. */
static struct snapent *snap_lookup(struct serve_server *s, const struct req *r)
{
	struct snapent *p;

	pthread_mutex_lock(&s->snap_lock);
	for (p = s->snaps; p; p = p->next)
		if (p->client == r->client && strcmp(p->id, r->id) == 0)
			break;
	if (p)
		p->refs++;
	pthread_mutex_unlock(&s->snap_lock);
	return p;
}

static enum MHD_Result send_no_snapshot(struct MHD_Connection *c, struct req *r)
{
	char why[ID_MAX + 64];

	snprintf(why, sizeof(why), "no snapshot `%s` on this server", r->id);
	return send_error(c, r, 404, "not_found", why, "list the snapshots with GET /v1/snapshots");
}

static json_object *contents_names(uint32_t bits)
{
	json_object *a = json_object_new_array();

	if (bits & MBX_SNAPSHOT_FILES)
		json_object_array_add(a, json_object_new_string("files"));
	if (bits & MBX_SNAPSHOT_PROCESSES)
		json_object_array_add(a, json_object_new_string("processes"));
	if (bits & MBX_SNAPSHOT_MEMORY)
		json_object_array_add(a, json_object_new_string("memory"));
	return a;
}

/* Keeps `snap` (taken here, or uploaded) under a new id and answers 201; frees it when it cannot. */
static enum MHD_Result snap_keep(struct serve_server *s, struct MHD_Connection *c, struct req *r, mbx_snapshot *snap,
				 const char *from)
{
	struct snapent *p = calloc(1, sizeof(*p));
	uint64_t bytes = mbx_snapshot_size(snap) + mbx_snapshot_memory_size(snap, NULL);
	json_object *o, *answer = NULL;
	char why[512];
	uint8_t raw[8];
	size_t i;

	if (!p || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		free(p);
		mbx_snapshot_free(snap);
		return send_error(c, r, 500, "system_error", "cannot make a snapshot id", NULL);
	}
	for (i = 0; i < sizeof(raw); i++)
		sprintf(p->id + 2 * i, "%02x", raw[i]);
	p->snap = snap;
	p->bytes = bytes;
	p->client = r->client;
	p->refs = 1;
	pthread_mutex_init(&p->lock, NULL);
	o = json_object_new_object();
	json_object_object_add(o, "snapshot_id", json_object_new_string(p->id));
	json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(o, "contents", contents_names(mbx_snapshot_contents(snap)));
	json_object_object_add(o, "isolation", json_object_new_string(isolation_name(mbx_snapshot_isolation(snap))));
	json_object_object_add(o, "created_at_ms", json_object_new_int64((int64_t)wall_ms()));
	json_object_object_add(o, "sandbox_id", from ? json_object_new_string(from) : NULL);
	p->info = o;
	if (json_object_deep_copy(o, &answer, NULL) != 0)
		answer = NULL;
	pthread_mutex_lock(&s->snap_lock);
	if (s->quota_snapshots && s->clients[r->client].snapshots >= s->quota_snapshots) {
		snprintf(why, sizeof(why), "quota of client `%s`: at most %u snapshots kept (--quota-snapshots); it keeps %u",
			 s->clients[r->client].name, s->quota_snapshots, s->clients[r->client].snapshots);
		pthread_mutex_unlock(&s->snap_lock);
		snap_release(s, p);
		json_object_put(answer);
		atomic_fetch_add(&s->quota_refusals, 1);
		return send_error(c, r, 429, "quota_exceeded", why,
				  "download snapshots to keep (GET /v1/snapshots/{sid}/data) and delete them "
				  "(DELETE /v1/snapshots/{sid})");
	}
	if (s->n_snaps >= s->max_snapshots || bytes > s->max_snapshot_bytes - s->snap_bytes) {
		snprintf(why, sizeof(why), "the server keeps at most %u snapshots of %" PRIu64 " bytes together "
			 "(--max-snapshots, --max-snapshot-mb): it keeps %u of %" PRIu64 " bytes, this one has %" PRIu64
			 " bytes", s->max_snapshots, s->max_snapshot_bytes, s->n_snaps, s->snap_bytes, bytes);
		pthread_mutex_unlock(&s->snap_lock);
		snap_release(s, p);
		json_object_put(answer);
		return send_error(c, r, 507, "quota_exceeded", why,
				  "download snapshots to keep (GET /v1/snapshots/{sid}/data) and delete them "
				  "(DELETE /v1/snapshots/{sid})");
	}
	p->next = s->snaps;
	s->snaps = p;
	s->n_snaps++;
	s->snap_bytes += bytes;
	s->clients[p->client].snapshots++;
	pthread_mutex_unlock(&s->snap_lock);
	if (!answer)
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	return send_json(c, r, 201, answer);
}

static enum MHD_Result h_snap_take(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	static const char *const keys[] = { NULL };
	mbx_snapshot *snap = NULL;
	mbx_error *err = NULL;
	char why[CLI_WHY_MAX], id[ID_MAX + 1];
	struct sbent *e;
	int rc;

	if (check_keys(body, keys, why, sizeof(why)) < 0)
		return send_bad_request(c, r, why);
	if (!(e = entry_use(s, r)))
		return send_no_sandbox(c, r);
	pthread_rwlock_wrlock(&e->use);	/* it needs the sandbox to itself */
	rc = mbx_sandbox_snapshot(&snap, e->sb, &err);
	pthread_rwlock_unlock(&e->use);
	/* The options it was made with, so that a restored one is described (and counted) as it. */
	if (rc == MBX_OK && e->note_len && e->note_len <= MBX_SNAPSHOT_NOTE_MAX)
		rc = mbx_snapshot_set_note(snap, e->note, e->note_len, &err);
	snprintf(id, sizeof(id), "%s", e->id);
	entry_done(s, e);
	if (rc != MBX_OK) {
		mbx_snapshot_free(snap);
		return send_mbx_error(c, r, rc, err, "snapshot");
	}
	atomic_fetch_add(&s->snapshots_taken, 1);
	return snap_keep(s, c, r, snap, id);
}

static enum MHD_Result h_snap_upload(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	mbx_snapshot *snap = NULL;
	mbx_error *err = NULL;
	int rc;

	if (r->len == 0)
		return send_bad_request(c, r, "the body must be a snapshot's bytes, as GET /v1/snapshots/{sid}/data gives them");
	/* Checked whole (format, backend, MAC under this user's key) before it is kept. */
	rc = mbx_snapshot_from_bytes(&snap, (const uint8_t *)r->body, r->len, &err);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "the uploaded snapshot");
	return snap_keep(s, c, r, snap, NULL);
}

static enum MHD_Result h_snap_list(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array(), *x;
	struct snapent *p;

	pthread_mutex_lock(&s->snap_lock);
	for (p = s->snaps; p; p = p->next) {
		x = NULL;
		if (p->client == r->client && json_object_deep_copy(p->info, &x, NULL) == 0)
			json_object_array_add(a, x);
	}
	pthread_mutex_unlock(&s->snap_lock);
	json_object_object_add(o, "snapshots", a);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_snap_get(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct snapent *p = snap_lookup(s, r);
	json_object *o = NULL;
	int ok;

	if (!p)
		return send_no_snapshot(c, r);
	ok = json_object_deep_copy(p->info, &o, NULL) == 0;
	snap_release(s, p);
	if (!ok)
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	return send_json(c, r, 200, o);
}

static enum MHD_Result h_snap_delete(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct snapent **pp, *p = NULL;

	pthread_mutex_lock(&s->snap_lock);
	for (pp = &s->snaps; *pp; pp = &(*pp)->next) {
		if ((*pp)->client == r->client && strcmp((*pp)->id, r->id) == 0) {
			p = *pp;
			*pp = p->next;
			p->next = NULL;
			s->n_snaps--;
			s->snap_bytes -= p->bytes;
			s->clients[p->client].snapshots--;
			break;
		}
	}
	pthread_mutex_unlock(&s->snap_lock);
	if (!p)
		return send_no_snapshot(c, r);
	snap_release(s, p);	/* the store's reference; a restore or download using it keeps it until it ends */
	return send_bytes(c, r, 204, NULL, "", 0);
}

static enum MHD_Result h_snap_data(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct snapent *p = snap_lookup(s, r);
	mbx_error *err = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	enum MHD_Result ret;
	int rc;

	if (!p)
		return send_no_snapshot(c, r);
	pthread_mutex_lock(&p->lock);
	rc = mbx_snapshot_to_bytes(p->snap, &data, &len, &err);
	pthread_mutex_unlock(&p->lock);
	snap_release(s, p);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "snapshot bytes");
	ret = send_bytes(c, r, 200, "application/octet-stream", data, len);
	mbx_buffer_free(data);
	return ret;
}

static enum MHD_Result h_restore(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	static const char *const keys[] = { "ttl_ms", "name", NULL };
	struct cli_sandbox_opts so;
	struct snapent *p;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	const uint8_t *note;
	char why[CLI_WHY_MAX], *copy = NULL;
	const char *name = NULL;
	json_object *answer;
	struct pending pend;
	struct sbent *found = NULL;
	struct usage u;
	uint64_t ttl = 0;
	size_t len = 0;
	unsigned status;
	int rc;

	if (check_keys(body, keys, why, sizeof(why)) < 0 ||
	    get_u64(body, "ttl_ms", 0, (uint64_t)1 << 40, &ttl, NULL, why, sizeof(why)) < 0 ||
	    get_str(body, "name", &name, why, sizeof(why)) < 0 || (name && cli_check_name(name, why, sizeof(why)) < 0))
		return send_bad_request(c, r, why);
	if (!(p = snap_lookup(s, r)))
		return send_no_snapshot(c, r);
	/* The name as a create's: held from here until the sandbox is listed. */
	pthread_mutex_lock(&s->table_lock);
	rc = claim_locked(s, r->client, name, NULL, &pend, &found);
	pthread_mutex_unlock(&s->table_lock);
	if (rc < 0) {
		snap_release(s, p);
		snprintf(why, sizeof(why), "a sandbox named `%s` already exists on this server", name);
		return send_error(c, r, 409, "already_exists", why,
				  "pick another name, or delete the other one with DELETE /v1/sandboxes/NAME");
	}
	/* The note is set before the snapshot is kept and never after: readable without its lock. */
	note = mbx_snapshot_note(p->snap, &len);
	opts_of_note(&so, note, len);
	u = usage_of(s, &so);
	if (len && !(copy = malloc(len))) {
		pending_end(s, &pend);
		snap_release(s, p);
		cli_sandbox_opts_free(&so);
		return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
	}
	if (len)
		memcpy(copy, note, len);
	if (quota_take(s, r->client, 1, u, why, sizeof(why)) < 0) {
		pending_end(s, &pend);
		snap_release(s, p);
		free(copy);
		cli_sandbox_opts_free(&so);
		return send_quota(c, r, why);
	}
	pthread_mutex_lock(&p->lock);
	rc = mbx_sandbox_from_snapshot(&sb, p->snap, NULL, &err);
	pthread_mutex_unlock(&p->lock);
	snap_release(s, p);
	if (rc != MBX_OK) {
		pending_end(s, &pend);
		quota_put(s, r->client, 1, u);
		free(copy);
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, "restore");
	}
	answer = entry_add(s, sb, &so, ttl, r->client, u, copy, len, name, NULL, &status);
	pending_end(s, &pend);
	cli_sandbox_opts_free(&so);
	if (!answer)
		return send_add_failure(c, r, status);
	return send_json(c, r, 201, answer);
}

#define FORK_MAX 16u

static enum MHD_Result h_fork(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	static const char *const keys[] = { "count", "ttl_ms", "names", NULL };
	struct cli_sandbox_opts so;
	mbx_sandbox *kids[FORK_MAX];
	mbx_error *err = NULL;
	char why[CLI_WHY_MAX], *note = NULL;
	json_object *o, *a, *answer, *jn = NULL;
	const char *names[FORK_MAX];
	struct pending pends[FORK_MAX];
	struct sbent *e, *found = NULL;
	struct usage u;
	uint64_t count = 1, ttl = 0;
	size_t i, k, n = 0, note_len = 0, n_names = 0, n_claimed = 0;
	unsigned status = 201;
	int ttl_given = 0, count_given = 0, rc = MBX_OK;

	if (check_keys(body, keys, why, sizeof(why)) < 0 ||
	    get_u64(body, "count", 1, FORK_MAX, &count, &count_given, why, sizeof(why)) < 0 ||
	    get_u64(body, "ttl_ms", 0, (uint64_t)1 << 40, &ttl, &ttl_given, why, sizeof(why)) < 0)
		return send_bad_request(c, r, why);
	if (json_object_object_get_ex(body, "names", &jn) && jn) {
		/* A name for each child, with a create's rules: then `count` is their number. */
		if (!json_object_is_type(jn, json_type_array) || json_object_array_length(jn) < 1 ||
		    json_object_array_length(jn) > FORK_MAX) {
			snprintf(why, sizeof(why), "`names` must be an array of 1 to %u sandbox names", FORK_MAX);
			return send_bad_request(c, r, why);
		}
		n_names = json_object_array_length(jn);
		for (i = 0; i < n_names; i++) {
			json_object *v = json_object_array_get_idx(jn, i);
			char sub[256];

			if (!json_object_is_type(v, json_type_string))
				return send_bad_request(c, r, "`names` must hold strings");
			names[i] = json_object_get_string(v);
			if (cli_check_name(names[i], sub, sizeof(sub)) < 0) {
				snprintf(why, sizeof(why), "`names`: %s", sub);
				return send_bad_request(c, r, why);
			}
			for (k = 0; k < i; k++)
				if (strcmp(names[k], names[i]) == 0) {
					snprintf(why, sizeof(why), "`names`: `%s` is there twice", names[i]);
					return send_bad_request(c, r, why);
				}
		}
		if (count_given && count != n_names) {
			snprintf(why, sizeof(why), "`count` is %" PRIu64 " but `names` has %zu name%s: leave `count` out",
				 count, n_names, n_names == 1 ? "" : "s");
			return send_bad_request(c, r, why);
		}
		count = n_names;
		pthread_mutex_lock(&s->table_lock);
		for (n_claimed = 0; n_claimed < n_names; n_claimed++)
			if (claim_locked(s, r->client, names[n_claimed], NULL, &pends[n_claimed], &found) < 0)
				break;
		pthread_mutex_unlock(&s->table_lock);
		if (n_claimed < n_names) {
			snprintf(why, sizeof(why), "a sandbox named `%s` already exists on this server", names[n_claimed]);
			for (i = 0; i < n_claimed; i++)
				pending_end(s, &pends[i]);
			return send_error(c, r, 409, "already_exists", why,
					  "pick other names, or delete the other one with DELETE /v1/sandboxes/NAME");
		}
	}
	if (!(e = entry_use(s, r))) {
		for (i = 0; i < n_claimed; i++)
			pending_end(s, &pends[i]);
		return send_no_sandbox(c, r);
	}
	if (!ttl_given)
		ttl = e->ttl_ms;
	/* The children have the parent's config: they are described and counted as it. */
	opts_of_note(&so, e->note, e->note_len);
	u = usage_of(s, &so);
	if (quota_take(s, r->client, (unsigned)count, u, why, sizeof(why)) < 0) {
		entry_done(s, e);
		for (i = 0; i < n_claimed; i++)
			pending_end(s, &pends[i]);
		cli_sandbox_opts_free(&so);
		return send_quota(c, r, why);
	}
	pthread_rwlock_wrlock(&e->use);	/* it needs the sandbox to itself */
	for (n = 0; n < count && rc == MBX_OK; n++)
		if ((rc = mbx_sandbox_fork(&kids[n], e->sb, &err)) != MBX_OK)
			break;
	pthread_rwlock_unlock(&e->use);
	if (rc == MBX_OK && e->note_len && !(note = malloc(e->note_len * count)))
		rc = MBX_ENOMEM;
	if (note) {
		note_len = e->note_len;
		for (i = 0; i < count; i++)
			memcpy(note + i * note_len, e->note, note_len);
	}
	entry_done(s, e);
	if (rc != MBX_OK) {
		for (i = 0; i < n; i++)
			mbx_sandbox_free(kids[i]);
		quota_put(s, r->client, (unsigned)count, u);
		for (i = 0; i < n_claimed; i++)
			pending_end(s, &pends[i]);
		cli_sandbox_opts_free(&so);
		return send_mbx_error(c, r, rc, err, "fork");
	}
	o = json_object_new_object();
	a = json_object_new_array();
	for (i = 0; i < count; i++) {
		char *mine = NULL;

		if (status != 201) {	/* stopping, or no memory: the rest are not kept */
			mbx_sandbox_free(kids[i]);
			quota_put(s, r->client, 1, u);
			continue;
		}
		if (note_len && (mine = malloc(note_len)))
			memcpy(mine, note + i * note_len, note_len);
		answer = entry_add(s, kids[i], &so, ttl, r->client, u, mine, mine ? note_len : 0,
				   n_names ? names[i] : NULL, NULL, &status);
		if (answer)
			json_object_array_add(a, answer);
	}
	for (i = 0; i < n_claimed; i++)
		pending_end(s, &pends[i]);
	free(note);
	cli_sandbox_opts_free(&so);
	json_object_object_add(o, "sandboxes", a);
	if (status != 201) {
		json_object_put(o);
		return send_add_failure(c, r, status);
	}
	return send_json(c, r, 201, o);
}

/* ---- the network audit log ---- */

static enum MHD_Result h_audit(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	mbx_net_log *log = NULL;
	mbx_error *err = NULL;
	json_object *o, *a;
	struct sbent *e;
	size_t i, n;
	int rc;

	if (!(e = entry_use_shared(s, r)))
		return send_no_sandbox(c, r);
	rc = mbx_sandbox_net_log(e->sb, &log, &err);
	entry_done_shared(s, e);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "network log");
	o = json_object_new_object();
	a = json_object_new_array();
	n = mbx_net_log_count(log);
	for (i = 0; i < n; i++) {
		json_object *x = json_object_new_object();
		const char *verdict = mbx_net_verdict_name(mbx_net_log_verdict(log, i));

		json_object_object_add(x, "time_us", json_object_new_int64((int64_t)mbx_net_log_time_us(log, i)));
		json_object_object_add(x, "source", json_object_new_string(mbx_net_log_source(log, i)));
		json_object_object_add(x, "method", json_object_new_string(mbx_net_log_method(log, i)));
		json_object_object_add(x, "host", json_object_new_string(mbx_net_log_host(log, i)));
		json_object_object_add(x, "port", json_object_new_int(mbx_net_log_port(log, i)));
		json_object_object_add(x, "address", json_object_new_string(mbx_net_log_address(log, i)));
		json_object_object_add(x, "verdict", json_object_new_string(verdict ? verdict : "denied"));
		json_object_object_add(x, "status", json_object_new_int(mbx_net_log_status(log, i)));
		json_object_object_add(x, "reason", json_object_new_string(mbx_net_log_reason(log, i)));
		json_object_object_add(x, "bytes_up", json_object_new_int64((int64_t)mbx_net_log_bytes_up(log, i)));
		json_object_object_add(x, "bytes_down", json_object_new_int64((int64_t)mbx_net_log_bytes_down(log, i)));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "records", a);
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)mbx_net_log_dropped(log)));
	mbx_net_log_free(log);
	return send_json(c, r, 200, o);
}

/* ---- an HTTP request under the sandbox's network policy ---- */

static const char *const http_keys[] = { "method", "url", "headers", "body", "body_b64", NULL };

/*
 * POST .../http: {"method", "url", "headers": ["Name: value"...], "body" or
 * "body_b64"} made by mbx_sandbox_http_request() (the proxy's checks, each
 * hop of a redirect checked again and logged); answers {"status", "url",
 * "headers": [{"name", "value"}...], "body"[, "body_b64"]}.
 */
static enum MHD_Result h_http(struct serve_server *s, struct MHD_Connection *c, struct req *r, json_object *body)
{
	const char *method = NULL, *url = NULL, *text = NULL, *b64 = NULL, **headers = NULL;
	json_object *hs = NULL, *o, *a;
	mbx_http_response *resp = NULL;
	mbx_error *err = NULL;
	uint8_t *data = NULL;
	const uint8_t *got;
	size_t n_headers = 0, len = 0, i;
	char why[CLI_WHY_MAX];
	struct sbent *e;
	int rc;

	if (check_keys(body, http_keys, why, sizeof(why)) < 0 || get_str(body, "method", &method, why, sizeof(why)) < 0 ||
	    get_str(body, "url", &url, why, sizeof(why)) < 0 || get_str(body, "body", &text, why, sizeof(why)) < 0 ||
	    get_str(body, "body_b64", &b64, why, sizeof(why)) < 0)
		return send_bad_request(c, r, why);
	if (!url)
		return send_bad_request(c, r, "`url` is required: an absolute http:// or https:// URL");
	if (text && b64)
		return send_bad_request(c, r, "give `body` or `body_b64`, not both");
	if (method && !*method)
		return send_bad_request(c, r, "`method` is empty");
	if (json_object_object_get_ex(body, "headers", &hs) && hs) {
		if (!json_object_is_type(hs, json_type_array))
			return send_bad_request(c, r, "`headers` must be an array of \"Name: value\" strings");
		n_headers = json_object_array_length(hs);
		if (n_headers > 256)
			return send_bad_request(c, r, "`headers` has more than 256 fields");
		headers = calloc(n_headers + 1, sizeof(*headers));
		if (!headers)
			return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
		for (i = 0; i < n_headers; i++) {
			json_object *v = json_object_array_get_idx(hs, i);

			if (!v || !json_object_is_type(v, json_type_string) ||
			    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
				free(headers);
				return send_bad_request(c, r, "`headers` must be an array of \"Name: value\" strings");
			}
			headers[i] = json_object_get_string(v);
		}
	}
	if (b64 && b64_decode(b64, strlen(b64), &data, &len) < 0) {
		free(headers);
		return send_bad_request(c, r, "`body_b64` is not base64");
	}
	if (text) {
		data = (uint8_t *)strdup(text);
		len = strlen(text);
		if (!data) {
			free(headers);
			return send_error(c, r, 500, "out_of_memory", "out of memory", NULL);
		}
	}
	if (!method)
		method = text || b64 ? "POST" : "GET";
	if (!(e = entry_use(s, r))) {
		free(headers);
		free(data);
		return send_no_sandbox(c, r);
	}
	rc = mbx_sandbox_http_request(e->sb, method, url, headers, data, len, &resp, &err);
	entry_done(s, e);
	free(headers);
	free(data);
	if (rc != MBX_OK)
		return send_mbx_error(c, r, rc, err, "http");
	o = json_object_new_object();
	a = json_object_new_array();
	json_object_object_add(o, "status", json_object_new_int(mbx_http_response_status(resp)));
	json_object_object_add(o, "url", json_object_new_string(mbx_http_response_url(resp) ? mbx_http_response_url(resp)
												 : url));
	for (i = 0; i < mbx_http_response_header_count(resp); i++) {
		json_object *x = json_object_new_object();

		json_object_object_add(x, "name", json_object_new_string(mbx_http_response_header_name(resp, i)));
		json_object_object_add(x, "value", json_object_new_string(mbx_http_response_header_value(resp, i)));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "headers", a);
	got = mbx_http_response_body(resp, &len);
	add_bytes(o, "body", got, len);
	mbx_http_response_free(resp);
	return send_json(c, r, 200, o);
}

/* ---- health and metrics ---- */

static enum MHD_Result h_health(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	json_object *o = json_object_new_object();
	int draining = atomic_load(&s->draining);

	json_object_object_add(o, "ok", json_object_new_boolean(!draining));
	json_object_object_add(o, "version", json_object_new_string(mbx_version()));
	if (draining)
		json_object_object_add(o, "draining", json_object_new_boolean(1));
	return send_json(c, r, draining ? 503 : 200, o);
}

void serve_drain(struct serve_server *s)
{
	atomic_store(&s->draining, 1);
}

static enum MHD_Result h_metrics(struct serve_server *s, struct MHD_Connection *c, struct req *r)
{
	struct cli_buf b = CLI_BUF_INIT;
	unsigned long long cum = 0;
	uint64_t n_snaps, snap_bytes, n_pools;
	enum MHD_Result ret;
	size_t i;

#define METRIC(name, type, help, value) \
	cli_buf_printf(&b, "# HELP mimobox_" name " " help "\n# TYPE mimobox_" name " " type "\nmimobox_" name " %llu\n", \
		       (unsigned long long)(value))
	METRIC("sandboxes_live", "gauge", "Sandboxes in the table now.", atomic_load(&s->live));
	METRIC("draining", "gauge", "1 once SIGUSR1 put the server in draining mode.", atomic_load(&s->draining));
	METRIC("sandboxes_created_total", "counter", "Sandboxes made, one-shot runs included.", atomic_load(&s->created));
	METRIC("sandboxes_destroyed_total", "counter", "Sandboxes destroyed, one-shot runs included.",
	       atomic_load(&s->destroyed));
	METRIC("sandboxes_expired_total", "counter", "Sandboxes destroyed after their ttl_ms of idleness.",
	       atomic_load(&s->expired));
	METRIC("executes_total", "counter", "Executes started (whole, streamed, one-shot, background and on terminals).",
	       atomic_load(&s->executes));
	METRIC("errors_total", "counter", "Responses with a status of 400 or more.", atomic_load(&s->errors));
	METRIC("stream_disconnects_total", "counter", "Streamed executes and terminal sessions whose client went away before the end.",
	       atomic_load(&s->disconnects));
	METRIC("slow_clients_total", "counter", "Connections cut off for a request head or body slower than --request-timeout-ms allows.",
	       atomic_load(&s->slow_clients));
	METRIC("quota_refusals_total", "counter", "Sandboxes refused by a quota or by --max-sandboxes.",
	       atomic_load(&s->quota_refusals));
	METRIC("snapshots_taken_total", "counter", "Snapshots taken of sandboxes.", atomic_load(&s->snapshots_taken));
	pthread_mutex_lock(&s->snap_lock);
	n_snaps = s->n_snaps;
	snap_bytes = s->snap_bytes;
	pthread_mutex_unlock(&s->snap_lock);
	METRIC("snapshots_kept", "gauge", "Snapshots the server keeps now.", n_snaps);
	METRIC("snapshots_kept_bytes", "gauge", "Their sizes added up.", snap_bytes);
	pthread_mutex_lock(&s->pool_lock);
	n_pools = s->n_pools;
	pthread_mutex_unlock(&s->pool_lock);
	METRIC("pools", "gauge", "Warm pools of POST /v1/run now.", n_pools);
	METRIC("pools_freed_idle_total", "counter", "Warm pools freed after --pool-idle-ms without a run.",
	       atomic_load(&s->pools_freed_idle));
#undef METRIC
	cli_buf_puts(&b, "# HELP mimobox_client_sandboxes Live sandboxes of each client.\n"
			 "# TYPE mimobox_client_sandboxes gauge\n");
	pthread_mutex_lock(&s->table_lock);
	for (i = 0; i < s->n_clients; i++)
		cli_buf_printf(&b, "mimobox_client_sandboxes{client=\"%s\"} %u\n", s->clients[i].name,
			       s->clients[i].sandboxes);
	/* What each client's quotas count (struct client's sums). */
	{
		static const struct {
			const char *name, *help;
			size_t off;
		} sums[] = {
			{ "memory_mb", "Sum of memory_mb of each client's live sandboxes.", offsetof(struct client, mem_mb) },
			{ "millicpus", "Sum of cpus (in thousandths) of each client's live sandboxes.",
			  offsetof(struct client, millicpus) },
			{ "disk_mb", "Sum of disk_mb of each client's live sandboxes.", offsetof(struct client, disk_mb) },
			{ "procs", "Sum of max_procs of each client's live sandboxes.", offsetof(struct client, procs) },
		};

		for (size_t k = 0; k < sizeof(sums) / sizeof(sums[0]); k++) {
			cli_buf_printf(&b, "# HELP mimobox_client_%s %s\n# TYPE mimobox_client_%s gauge\n", sums[k].name,
				       sums[k].help, sums[k].name);
			for (i = 0; i < s->n_clients; i++)
				cli_buf_printf(&b, "mimobox_client_%s{client=\"%s\"} %" PRIu64 "\n", sums[k].name,
					       s->clients[i].name,
					       *(const uint64_t *)(const void *)((const char *)&s->clients[i] + sums[k].off));
		}
	}
	pthread_mutex_unlock(&s->table_lock);
	cli_buf_puts(&b, "# HELP mimobox_client_snapshots Snapshots each client keeps.\n"
			 "# TYPE mimobox_client_snapshots gauge\n");
	pthread_mutex_lock(&s->snap_lock);
	for (i = 0; i < s->n_clients; i++)
		cli_buf_printf(&b, "mimobox_client_snapshots{client=\"%s\"} %u\n", s->clients[i].name,
			       s->clients[i].snapshots);
	pthread_mutex_unlock(&s->snap_lock);
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
	       ch == '_' || ch == '.';	/* ids and names (cli_check_name) */
}

/* "/processes", "/processes/PID" and "/processes/PID/(signal|stdin|output)" after a sandbox. */
static enum route proc_route_of(const char *p, uint32_t *pid)
{
	unsigned long long v = 0;
	const char *q;

	if (strncmp(p, "/processes", 10) != 0)
		return R_NONE;
	p += 10;
	if (*p == '\0')
		return R_PROCS;
	if (*p++ != '/' || *p < '1' || *p > '9')
		return R_NONE;
	for (q = p; *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (unsigned)(*q - '0');
		if (v > UINT32_MAX)
			return R_NONE;
	}
	*pid = (uint32_t)v;
	if (*q == '\0')
		return R_PROC;
	if (strcmp(q, "/signal") == 0)
		return R_PROC_SIGNAL;
	if (strcmp(q, "/stdin") == 0)
		return R_PROC_STDIN;
	if (strcmp(q, "/output") == 0)
		return R_PROC_OUTPUT;
	return R_NONE;
}


/* /v1/snapshots/{sid}[/data|/restore], given what follows /v1/snapshots/. */
static enum route route_of_snapshot(const char *p, char id[ID_MAX + 1])
{
	const char *slash = strchr(p, '/');
	size_t i, n = slash ? (size_t)(slash - p) : strlen(p);

	if (n == 0 || n > ID_MAX)
		return R_NONE;
	for (i = 0; i < n; i++)
		if (!is_id_char(p[i]))
			return R_NONE;
	memcpy(id, p, n);
	id[n] = '\0';
	if (!slash)
		return R_SNAPSHOT;
	if (strcmp(slash, "/data") == 0)
		return R_SNAP_DATA;
	if (strcmp(slash, "/restore") == 0)
		return R_SNAP_RESTORE;
	return R_NONE;
}


static enum route route_of(const char *url, char id[ID_MAX + 1], uint32_t *pid)
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
	if (strcmp(url, "/v1/snapshots") == 0)
		return R_SNAPSHOTS;
	if (strncmp(url, "/v1/snapshots/", 14) == 0)
		return route_of_snapshot(url + 14, id);
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
	if (strcmp(slash, "/stat") == 0)
		return R_STAT;
	if (strcmp(slash, "/symlink") == 0)
		return R_SYMLINK;
	if (strcmp(slash, "/snapshots") == 0)
		return R_SNAP_TAKE;
	if (strcmp(slash, "/fork") == 0)
		return R_FORK;
	if (strcmp(slash, "/network/audit") == 0)
		return R_AUDIT;
	if (strcmp(slash, "/http") == 0)
		return R_HTTP;
	if (strcmp(slash, "/pty") == 0)
		return R_PTY;
	return proc_route_of(slash, pid);
}

/* Methods of each route, for 405 and its Allow header. */
static const char *allowed_methods(enum route rt)
{
	switch (rt) {
	case R_HEALTH:
	case R_METRICS:
	case R_STAT:
	case R_PROC_OUTPUT:
	case R_AUDIT:
	case R_SNAP_DATA:
	case R_PTY:
		return "GET";
	case R_RUN:
	case R_EXEC:
	case R_PROC_SIGNAL:
	case R_PROC_STDIN:
	case R_SNAP_TAKE:
	case R_FORK:
	case R_SNAP_RESTORE:
	case R_HTTP:
	case R_SYMLINK:
		return "POST";
	case R_SANDBOXES:
	case R_DIR:
	case R_PROCS:
	case R_SNAPSHOTS:
		return "GET, POST";
	case R_SANDBOX:
	case R_PROC:
	case R_SNAPSHOT:
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

/* The client whose token the request carries, or -1. */
static int client_of_token(const struct serve_server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	int found = -1;
	size_t i, k, len;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return -1;
	h += 7;
	while (*h == ' ')
		h++;
	len = strlen(h);
	/* Constant time in each token: every byte of every token is compared, whatever came. */
	for (k = 0; k < s->n_clients; k++) {
		const struct client *cl = &s->clients[k];
		volatile unsigned char diff = len != cl->token_len;

		for (i = 0; i < cl->token_len; i++)
			diff |= (unsigned char)(cl->token[i] ^ (i < len ? h[i] : 0));
		if (diff == 0)
			found = (int)k;
	}
	return found;
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
		return h_health(s, c, r);
	case R_METRICS:
		return h_metrics(s, c, r);
	case R_SANDBOX:
		return strcmp(method, "DELETE") == 0 ? h_delete(s, c, r) : h_inspect(s, c, r);
	case R_DIR:
		return strcmp(method, "POST") == 0 ? h_mkdir(s, c, r) : h_dir(s, c, r);
	case R_STAT:
		return h_stat(s, c, r);
	case R_SYMLINK:
		return h_symlink(s, c, r);
	case R_PTY:
		return serve_pty_handle(s, s->ptys, s->upgrade_ok, c, r);
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
	case R_AUDIT:
		return h_audit(s, c, r);
	case R_SNAPSHOTS:
		return strcmp(method, "POST") == 0 ? h_snap_upload(s, c, r) : h_snap_list(s, c, r);
	case R_SNAPSHOT:
		return strcmp(method, "DELETE") == 0 ? h_snap_delete(s, c, r) : h_snap_get(s, c, r);
	case R_SNAP_DATA:
		return h_snap_data(s, c, r);
	case R_RUN:
	case R_EXEC:
	case R_SNAP_TAKE:
	case R_FORK:
	case R_SNAP_RESTORE:
	case R_HTTP:
		break;
	case R_PROCS:
	case R_PROC:
	case R_PROC_SIGNAL:
	case R_PROC_STDIN:
	case R_PROC_OUTPUT:
		return h_procs(s, c, r, method);
	case R_NONE:
	default:
		return send_error(c, r, 404, "not_found", "no such endpoint", "see docs/server.md for the API");
	}
	/* A draining server makes no new sandboxes; calls on the ones it has go on. */
	if (atomic_load(&s->draining) &&
	    (r->route == R_SANDBOXES || r->route == R_RUN || r->route == R_FORK || r->route == R_SNAP_RESTORE))
		return send_error(c, r, 503, "unavailable", "the server is draining: it makes no new sandboxes",
				  "create the sandbox on another server; calls on this one's sandboxes go on");
	body = parse_body(r, why, sizeof(why));
	if (!body)
		return send_bad_request(c, r, why);
	if (r->route == R_SANDBOXES)
		ret = h_create(s, c, r, body);
	else if (r->route == R_RUN)
		ret = h_run(s, c, r, body);
	else if (r->route == R_SNAP_TAKE)
		ret = h_snap_take(s, c, r, body);
	else if (r->route == R_FORK)
		ret = h_fork(s, c, r, body);
	else if (r->route == R_SNAP_RESTORE)
		ret = h_restore(s, c, r, body);
	else if (r->route == R_HTTP)
		ret = h_http(s, c, r, body);
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
	int client = -1;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		r->start_us = now_us();
		{
			const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

			r->sc = ci ? ci->socket_context : NULL;
		}
		conn_set(s, r->sc, SC_BODY);
		r->route = route_of(url, r->id, &r->pid);
		r->limit = r->route == R_FILES && strcmp(method, "PUT") == 0 ? SERVE_FILE_MAX : SERVE_JSON_MAX;
		if (r->route == R_SNAPSHOTS && strcmp(method, "POST") == 0)
			r->limit = (size_t)s->max_snapshot_bytes;
		/* Refusals come before the body is read: MHD then closes the connection. */
		if (s->is_unix && !peer_ok(c))
			return send_error(c, r, 403, "permission_denied",
					  "this server serves only its own user (uid of the caller differs)",
					  "run the client as the server's user, or start a server of your own");
		if (!s->is_unix && (client = client_of_token(s, c)) < 0) {
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
		r->client = client < 0 ? 0 : (size_t)client;
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
					  r->limit == SERVE_FILE_MAX ? "split the file, or copy it in with an execute" :
					  r->route == R_SNAPSHOTS ? "the server's --max-snapshot-mb bounds an upload" : NULL);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (r->sc) {
			int slow;

			pthread_mutex_lock(&s->conns_lock);
			r->sc->body_bytes += *upload_size;
			slow = r->sc->state == SC_BODY && body_too_slow(s, now_ms() - r->sc->since_ms, r->sc->body_bytes);
			pthread_mutex_unlock(&s->conns_lock);
			if (slow) {
				/* Cut off: MHD closes the connection. */
				atomic_fetch_add(&s->slow_clients, 1);
				return MHD_NO;
			}
		}
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
	conn_set(s, r->sc, SC_BUSY);
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
	if (r->pty)
		serve_pty_request_done(r->pty);
	run_sandbox_done(s, r);
	/* The next request's head is due from now; a terminal is no longer HTTP. */
	conn_set(s, r->sc, r->status == 101 ? SC_UPGRADED : SC_HEAD);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* ---- start and stop ---- */

static void clients_free(struct serve_server *s)
{
	size_t i;

	for (i = 0; i < s->n_clients; i++) {
		if (s->clients[i].token)
			explicit_bzero(s->clients[i].token, s->clients[i].token_len);
		free(s->clients[i].token);
		free(s->clients[i].name);
	}
	free(s->clients);
	s->clients = NULL;
	s->n_clients = 0;
}

/* TCP: the configured clients; the unix socket: one, the server's uid. 0 or -1 (no memory). */
static int clients_copy(struct serve_server *s, const struct serve_config *cfg)
{
	size_t i, n = cfg->is_unix ? 1 : cfg->n_clients;

	s->clients = calloc(n ? n : 1, sizeof(*s->clients));
	if (!s->clients)
		return -1;
	s->n_clients = n;
	if (cfg->is_unix)
		return asprintf(&s->clients[0].name, "uid:%u", (unsigned)geteuid()) < 0 ? (s->clients[0].name = NULL, -1) : 0;
	for (i = 0; i < n; i++) {
		s->clients[i].name = strdup(cfg->clients[i].name);
		s->clients[i].token = strdup(cfg->clients[i].token);
		if (!s->clients[i].name || !s->clients[i].token)
			return -1;
		s->clients[i].token_len = strlen(s->clients[i].token);
	}
	return 0;
}

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
	s->pool_idle_ms = cfg->pool_idle_ms;
	s->max_sandboxes = cfg->max_sandboxes;
	s->quota_sandboxes = cfg->quota_sandboxes;
	s->quota_memory_mb = cfg->quota_memory_mb;
	s->quota_millicpus = cfg->quota_millicpus;
	s->quota_disk_mb = cfg->quota_disk_mb;
	s->quota_procs = cfg->quota_procs;
	s->quota_snapshots = cfg->quota_snapshots;
	s->max_snapshots = cfg->max_snapshots;
	s->max_snapshot_bytes = cfg->max_snapshot_bytes;
	s->request_timeout_ms = cfg->request_timeout_ms;
	if (clients_copy(s, cfg) < 0) {
		close(cfg->listen_fd);
		clients_free(s);
		free(s);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->table_lock, NULL);
	pthread_mutex_init(&s->snap_lock, NULL);
	pthread_mutex_init(&s->conns_lock, NULL);
	{
		/* The expiry thread's deadlines are CLOCK_MONOTONIC: so must be
		 * its condition variable's clock, or every wait returns at once. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->reaper_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&s->pending_cond, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		snprintf(why, whylen, "cannot start the expiry thread: %s", strerror(errno));
		goto fail;
	}
	s->reaper_started = 1;
	s->upgrade_ok = MHD_is_feature_supported(MHD_FEATURE_UPGRADE) == MHD_YES;
	s->ptys = serve_pty_table_new(cfg->ws_ping_ms);
	s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
				     MHD_USE_ITC | (s->upgrade_ok ? MHD_ALLOW_UPGRADE : 0),
				     0, NULL, NULL, on_request, s,
				     MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
				     MHD_OPTION_CONNECTION_LIMIT, SERVE_MAX_CONNECTIONS,
				     MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)(s->is_unix ? 0 : SERVE_MAX_PER_ADDRESS),
				     MHD_OPTION_CONNECTION_TIMEOUT, SERVE_IDLE_TIMEOUT_S,
				     MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
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
	serve_pty_table_stop(s->ptys);
	serve_pty_table_free(s->ptys);
	clients_free(s);
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
	/* PTY sessions end (and are joined) before their connections go. */
	serve_pty_table_stop(s->ptys);
	/* Streams end once their sandbox is destroyed; executes of /v1/run end by their timeout. */
	MHD_stop_daemon(s->daemon);
	/* Drain threads end once their sandbox is destroyed (within PROC_DRAIN_MS). */
	while (atomic_load(&s->drainers) > 0) {
		struct timespec ts = { 0, 5 * 1000000L };

		nanosleep(&ts, NULL);
	}
	serve_pty_table_free(s->ptys);
	/* What runs retired after the expiry thread stopped. */
	free_spent(s, s->spent);
	s->spent = NULL;
	pthread_mutex_lock(&s->pool_lock);
	for (i = 0; i < s->n_pools; i++) {
		mbx_pool_free(s->pools[i].pool);
		free(s->pools[i].key);
	}
	pthread_mutex_unlock(&s->pool_lock);
	/* Every connection ended: nothing uses a snapshot any more. */
	while (s->snaps) {
		struct snapent *p = s->snaps;

		s->snaps = p->next;
		snap_release(s, p);
	}
	pthread_mutex_destroy(&s->snap_lock);
	pthread_mutex_destroy(&s->conns_lock);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->reaper_cond);
	pthread_cond_destroy(&s->pending_cond);
	pthread_mutex_destroy(&s->table_lock);
	clients_free(s);
	free(s);
	return n;
}
