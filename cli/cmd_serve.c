/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox serve`: the sandbox server in the foreground (docs/server.md).
 * This file makes the listening socket (a private unix socket by default,
 * TCP with --listen), reads or makes the bearer token, and waits for
 * SIGTERM or SIGINT; serve.c serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"
#include "serve_dl.h"
#include "core/statebase.h"

enum {
	OPT_SOCKET = CLI_OPT_VERB,
	OPT_LISTEN,
	OPT_TOKEN_FILE,
	OPT_POOL_SIZE,
	OPT_POOL_IDLE_MS,
	OPT_MAX_SANDBOXES,
	OPT_QUOTA_SANDBOXES,
	OPT_QUOTA_MEMORY_MB,
	OPT_QUOTA_CPUS,
	OPT_QUOTA_DISK_MB,
	OPT_QUOTA_SNAPSHOTS,
	OPT_MAX_SNAPSHOTS,
	OPT_MAX_SNAPSHOT_MB,
	OPT_WS_PING_MS,
	OPT_REQUEST_TIMEOUT_MS,
	OPT_QUOTA_PROCS,
};

static const struct cli_option serve_options[] = {
	{ "socket", 0, 1, OPT_SOCKET },
	{ "listen", 0, 1, OPT_LISTEN },
	{ "token-file", 0, 1, OPT_TOKEN_FILE },
	{ "pool-size", 0, 1, OPT_POOL_SIZE },
	{ "pool-idle-ms", 0, 1, OPT_POOL_IDLE_MS },
	{ "max-sandboxes", 0, 1, OPT_MAX_SANDBOXES },
	{ "quota-sandboxes", 0, 1, OPT_QUOTA_SANDBOXES },
	{ "quota-memory-mb", 0, 1, OPT_QUOTA_MEMORY_MB },
	{ "quota-cpus", 0, 1, OPT_QUOTA_CPUS },
	{ "quota-disk-mb", 0, 1, OPT_QUOTA_DISK_MB },
	{ "quota-procs", 0, 1, OPT_QUOTA_PROCS },
	{ "quota-snapshots", 0, 1, OPT_QUOTA_SNAPSHOTS },
	{ "max-snapshots", 0, 1, OPT_MAX_SNAPSHOTS },
	{ "max-snapshot-mb", 0, 1, OPT_MAX_SNAPSHOT_MB },
	{ "ws-ping-ms", 0, 1, OPT_WS_PING_MS },
	{ "request-timeout-ms", 0, 1, OPT_REQUEST_TIMEOUT_MS },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

#define POOL_SIZE_DEFAULT 2u
#define POOL_SIZE_MAX 16u
#define POOL_IDLE_MS_DEFAULT 300000u
#define MAX_SNAPSHOTS_DEFAULT 32u
#define MAX_SNAPSHOT_MB_DEFAULT 1024u
#define WS_PING_MS_DEFAULT 30000u
#define REQUEST_TIMEOUT_MS_DEFAULT 60000u

static void usage(void)
{
	printf("Usage: mimobox serve [--socket PATH | --listen ADDR:PORT --token-file FILE] [--pool-size N]\n"
	       "                     [--pool-idle-ms MS] [--max-sandboxes N] [--quota-sandboxes N]\n"
	       "                     [--quota-memory-mb MB] [--quota-cpus CPUS] [--quota-disk-mb MB]\n"
	       "                     [--quota-procs N] [--quota-snapshots N] [--max-snapshots N]\n"
	       "                     [--max-snapshot-mb MB] [--ws-ping-ms MS] [--request-timeout-ms MS]\n"
	       "\n"
	       "Serve the sandbox API over HTTP in the foreground until SIGTERM or SIGINT, then\n"
	       "destroy every sandbox made through it. The API: docs/server.md. Started by\n"
	       "systemd's socket activation (LISTEN_FDS), it serves on the unix socket it got.\n"
	       "SIGUSR1 makes it drain: it makes no new sandboxes and /v1/health answers 503.\n"
	       "\n"
	       "  --socket PATH        the unix socket to serve on, made 0600 (default: serve.sock\n"
	       "                       in the state directory); only the server's own uid is served\n"
	       "  --listen ADDR:PORT   serve on TCP instead (e.g. 127.0.0.1:8700, [::1]:8700)\n"
	       "  --token-file FILE    with --listen: every request needs `Authorization: Bearer`\n"
	       "                       and a token of FILE, which is made (0600, random) if missing;\n"
	       "                       a line `NAME TOKEN` each gives several clients, each of\n"
	       "                       which sees only its own sandboxes and snapshots\n"
	       "  --pool-size N        sandboxes kept ready per configuration for POST /v1/run\n"
	       "                       (0 to 16, default 2; 0: a new sandbox for each run)\n"
	       "  --pool-idle-ms MS    free a pool after MS without a run (default 300000; 0: never)\n"
	       "  --max-sandboxes N    live sandboxes of the whole server (default: no cap)\n"
	       "  --quota-sandboxes N  live sandboxes per client (default: none)\n"
	       "  --quota-memory-mb MB sum of memory_mb of a client's live sandboxes (default: none)\n"
	       "  --quota-cpus CPUS    sum of cpus of a client's live sandboxes; each sandbox then\n"
	       "                       gets a CPU limit, 1 CPU when it asks for none (default: none)\n"
	       "  --quota-disk-mb MB   sum of disk_mb of a client's live sandboxes (default: none)\n"
	       "  --quota-procs N      sum of max_procs of a client's live sandboxes (64 each by\n"
	       "                       default): the processes they may hold (default: none)\n"
	       "  --quota-snapshots N  snapshots a client keeps at once (default: none)\n"
	       "  --max-snapshots N    snapshots kept at once (default 32)\n"
	       "  --max-snapshot-mb MB their sizes added up, and the largest upload (default 1024)\n"
	       "  --ws-ping-ms MS      ping a terminal's WebSocket after MS with nothing from its\n"
	       "                       client, and end the session when nothing came MS after\n"
	       "                       the ping (default 30000; 0: no pings)\n"
	       "  --request-timeout-ms MS  cut off a client whose request head is not whole MS\n"
	       "                       after it connected (60 s after its previous answer, or\n"
	       "                       MS if longer), or whose body comes at less than 16 KiB/s\n"
	       "                       after the first MS (default 60000; 0: no limit)\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit status: 0 after a signal stopped it, 125 when it could not start.\n");
}

/* ---- the stop signal ---- */

static int stop_pipe[2] = { -1, -1 };

static void on_stop(int sig)
{
	int e = errno;
	char c = (char)sig;

	if (write(stop_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a stop is pending already */
	}
	errno = e;
}

/* ---- sockets ---- */

static int unix_listen(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, probe;

	if (!path || !*path) {
		snprintf(why, whylen, "the socket path is empty");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "the socket path `%s` is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(why, whylen, "`%s` exists and is not a socket; remove it or choose another --socket", path);
			return -1;
		}
		/* A live server answers; a socket nobody listens on is a crashed server's. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			snprintf(why, whylen, "socket: %s", strerror(errno));
			return -1;
		}
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(why, whylen, "a server already runs on `%s`", path);
			return -1;
		}
		close(probe);
		if (errno != ECONNREFUSED && errno != ENOENT) {
			snprintf(why, whylen, "cannot tell whether a server runs on `%s`: %s", path, strerror(errno));
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(why, whylen, "cannot remove the stale socket `%s`: %s", path, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Private from the start: never a moment with a wider mode. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		snprintf(why, whylen, "cannot bind `%s`: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		snprintf(why, whylen, "cannot serve on `%s`: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

/* ADDR:PORT, with [ADDR] for IPv6; writes where it listens into `where`. */
static int tcp_listen(const char *spec, char *where, size_t wherelen, char *why, size_t whylen)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256], port[16], h[NI_MAXHOST], p[NI_MAXSERV];
	const char *colon;
	size_t hl;
	int fd, one = 1, rc;

	if (spec[0] == '[') {
		const char *close_br = strchr(spec, ']');

		if (!close_br || close_br[1] != ':')
			goto bad;
		hl = (size_t)(close_br - spec - 1);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, hl);
		colon = close_br + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - spec);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, spec, hl);
	}
	host[hl] = '\0';
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port) || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(why, whylen, "--listen `%s`: %s (give a numeric address, e.g. 127.0.0.1:8700)", spec,
			 gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		snprintf(why, whylen, "cannot listen on `%s`: %s", spec, strerror(errno));
		freeaddrinfo(ai);
		close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(where, wherelen, ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", h, p);
	else
		snprintf(where, wherelen, "http://%s", spec);
	return fd;

bad:
	snprintf(why, whylen, "--listen `%s`: expected ADDR:PORT, e.g. 127.0.0.1:8700 or [::1]:8700", spec);
	return -1;
}

/* ---- the tokens ---- */

#define TOKEN_MAX 4096
#define TOKEN_FILE_MAX ((size_t)256 << 10)

/* The clients of a token file; names and tokens point into `buf`. */
struct tokens {
	char *buf;
	size_t buf_len;
	struct serve_client clients[SERVE_MAX_CLIENTS];
	size_t n;
};

static void tokens_free(struct tokens *t)
{
	if (t->buf)
		explicit_bzero(t->buf, t->buf_len);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

static int token_ok(const char *tok)
{
	size_t i, len = strlen(tok);

	for (i = 0; i < len; i++)
		if (tok[i] <= ' ' || tok[i] > '~')
			return 0;
	return len >= 16 && len <= TOKEN_MAX;
}

static int name_ok(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= SERVE_CLIENT_NAME_MAX &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

/*
 * Splits a token file's text (NUL-terminated, in t->buf): one token alone
 * (client "default"), or a line `NAME TOKEN` per client; empty lines and
 * lines starting with # are skipped. 0, or -1 with `why` (never a token).
 */
static int tokens_parse(struct tokens *t, const char *path, char *why, size_t whylen)
{
	char *line = t->buf, *next, *a, *b, *rest;
	unsigned lineno = 0;
	size_t i, j, words_lines = 0, plain_lines = 0;

	for (; line; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		a = line + strspn(line, " \t\r");
		if (*a == '\0' || *a == '#')
			continue;
		b = a + strcspn(a, " \t\r");
		rest = b + strspn(b, " \t\r");
		if (*b)
			*b = '\0';
		if (*rest == '\0') {	/* one word: a lone token */
			plain_lines++;
			if (t->n < SERVE_MAX_CLIENTS) {
				t->clients[t->n].name = "default";
				t->clients[t->n].token = a;
			}
		} else {
			char *c = rest + strcspn(rest, " \t\r"), *after = c + strspn(c, " \t\r");

			if (*after) {
				snprintf(why, whylen, "the token file `%s`, line %u: expected `NAME TOKEN` or one token alone",
					 path, lineno);
				return -1;
			}
			*c = '\0';
			words_lines++;
			if (!name_ok(a)) {
				snprintf(why, whylen, "the token file `%s`, line %u: a client's name is 1 to %u of "
					 "A-Z a-z 0-9 _ . -", path, lineno, SERVE_CLIENT_NAME_MAX);
				return -1;
			}
			if (t->n < SERVE_MAX_CLIENTS) {
				t->clients[t->n].name = a;
				t->clients[t->n].token = rest;
			}
		}
		if (++t->n > SERVE_MAX_CLIENTS) {
			snprintf(why, whylen, "the token file `%s` has more than %u clients", path, SERVE_MAX_CLIENTS);
			return -1;
		}
		if (!token_ok(t->clients[t->n - 1].token)) {
			snprintf(why, whylen, "the token file `%s`, line %u: a token must be 16 to %d printable characters "
				 "without spaces (remove the file to have one made)", path, lineno, TOKEN_MAX);
			return -1;
		}
	}
	if (t->n == 0) {
		snprintf(why, whylen, "the token file `%s` holds no token (remove the file to have one made)", path);
		return -1;
	}
	if (plain_lines && (plain_lines > 1 || words_lines)) {
		snprintf(why, whylen, "the token file `%s`: a token alone must be the file's only line; give several "
			 "clients as `NAME TOKEN` lines", path);
		return -1;
	}
	for (i = 0; i < t->n; i++)
		for (j = i + 1; j < t->n; j++) {
			if (strcmp(t->clients[i].name, t->clients[j].name) == 0) {
				snprintf(why, whylen, "the token file `%s` names client `%s` twice", path, t->clients[i].name);
				return -1;
			}
			if (strcmp(t->clients[i].token, t->clients[j].token) == 0) {
				snprintf(why, whylen, "the token file `%s` gives clients `%s` and `%s` the same token", path,
					 t->clients[i].name, t->clients[j].name);
				return -1;
			}
		}
	return 0;
}

/* Reads the clients from `path`, or makes the file with a new token (client "default"). 0, or -1 with `why`. */
static int load_tokens(const char *path, struct tokens *t, char *why, size_t whylen)
{
	unsigned char raw[32];
	struct stat st;
	ssize_t n;
	size_t len, i;
	int fd;

	memset(t, 0, sizeof(*t));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		t->buf_len = 2 * sizeof(raw) + 2;
		t->buf = malloc(t->buf_len);
		if (!t->buf || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
			snprintf(why, whylen, "cannot make a token: %s", t->buf ? strerror(errno) : "out of memory");
			tokens_free(t);
			close(fd);
			unlink(path);
			return -1;
		}
		for (i = 0; i < sizeof(raw); i++)
			sprintf(t->buf + 2 * i, "%02x", raw[i]);
		explicit_bzero(raw, sizeof(raw));
		t->buf[2 * sizeof(raw)] = '\n';
		if (cli_write_all(fd, t->buf, 2 * sizeof(raw) + 1) < 0 || fsync(fd) < 0) {
			snprintf(why, whylen, "cannot write the token file `%s`: %s", path, strerror(errno));
			tokens_free(t);
			close(fd);
			unlink(path);
			return -1;
		}
		close(fd);
		t->buf[2 * sizeof(raw)] = '\0';
		t->clients[0].name = "default";
		t->clients[0].token = t->buf;
		t->n = 1;
		return 0;
	}
	if (errno != EEXIST) {
		snprintf(why, whylen, "cannot create the token file `%s`: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open the token file `%s`: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "the token file `%s` is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, whylen, "the token file `%s` must be yours and private (mode 0600), not mode %04o of uid %u",
			 path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	t->buf_len = TOKEN_FILE_MAX + 1;
	t->buf = malloc(t->buf_len);
	if (!t->buf) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	len = 0;
	while (len < TOKEN_FILE_MAX && (n = read(fd, t->buf + len, TOKEN_FILE_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "cannot read the token file `%s`: %s", path, strerror(errno));
			close(fd);
			tokens_free(t);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	t->buf[len] = '\0';
	if (len == TOKEN_FILE_MAX || strlen(t->buf) != len) {
		snprintf(why, whylen, "the token file `%s` is larger than %zu bytes or holds a NUL byte", path,
			 TOKEN_FILE_MAX - 1);
		tokens_free(t);
		return -1;
	}
	if (tokens_parse(t, path, why, whylen) < 0) {
		tokens_free(t);
		return -1;
	}
	return 0;
}

/* ---- socket activation ---- */

/*
 * The listening socket systemd passed (LISTEN_PID is ours, LISTEN_FDS=1:
 * descriptor 3), with where it listens in `where`; -1 when the server was
 * not started so; -2 with `why` when it was, with something it cannot serve on.
 */
static int activated_socket(char *where, size_t wherelen, char *why, size_t whylen)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	struct sockaddr_un sa;
	socklen_t len = sizeof(int);
	int type = 0, domain = 0, listening = 0, fds_one;
	char *end;
	unsigned long pid;

	if (!pid_s || !fds_s)
		return -1;
	errno = 0;
	pid = strtoul(pid_s, &end, 10);
	if (errno || *end || pid != (unsigned long)getpid())
		return -1;	/* meant for another process */
	fds_one = strcmp(fds_s, "1") == 0;
	/* Not for the sandboxes' programs. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!fds_one) {
		snprintf(why, whylen, "socket activation passed other than one socket (LISTEN_FDS); mimobox serve takes "
			 "exactly one: give the .socket unit one ListenStream=");
		return -2;
	}
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (len = sizeof(int), getsockopt(3, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0 ||
	    (len = sizeof(int), getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) < 0 ||
	    type != SOCK_STREAM || domain != AF_UNIX || !listening) {
		snprintf(why, whylen, "socket activation passed a descriptor that is not a listening unix stream socket; "
			 "mimobox serve takes one ListenStream=/path (use --listen for TCP)");
		return -2;
	}
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(why, whylen, "socket activation: fcntl: %s", strerror(errno));
		return -2;
	}
	len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (getsockname(3, (struct sockaddr *)&sa, &len) == 0 && sa.sun_path[0])
		snprintf(where, wherelen, "unix:%.*s (socket activation)", (int)sizeof(sa.sun_path), sa.sun_path);
	else
		snprintf(where, wherelen, "the socket of socket activation");
	return 3;
}

/* ---- the verb ---- */

int cli_cmd_serve(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1, 0 };
	const char *socket_path = NULL, *listen_spec = NULL, *token_file = NULL, *value;
	char why[CLI_WHY_MAX], where[512];
	char *def_socket = NULL;
	struct tokens tokens;
	struct serve_config cfg;
	struct serve_server *server;
	struct sigaction sa;
	struct pollfd pfd;
	uint64_t pool = POOL_SIZE_DEFAULT, pool_idle = POOL_IDLE_MS_DEFAULT, max_sb = 0, q_sb = 0, q_mem = 0;
	uint64_t q_disk = 0, q_snaps = 0, q_procs = 0;
	uint64_t max_snaps = MAX_SNAPSHOTS_DEFAULT, max_snap_mb = MAX_SNAPSHOT_MB_DEFAULT;
	uint64_t ws_ping = WS_PING_MS_DEFAULT;
	uint64_t req_timeout = REQUEST_TIMEOUT_MS_DEFAULT;
	uint32_t q_cpus = 0;
	size_t destroyed;
	char sig = 0;
	int id, fd, activated, bound = 0;

	memset(&tokens, 0, sizeof(tokens));

	while ((id = cli_next_option(&a, serve_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		switch (id) {
		case OPT_SOCKET:
			socket_path = value;
			break;
		case OPT_LISTEN:
			listen_spec = value;
			break;
		case OPT_TOKEN_FILE:
			token_file = value;
			break;
		case OPT_POOL_SIZE:
			if (cli_parse_uint(value, 0, POOL_SIZE_MAX, &pool, why, sizeof(why)) < 0) {
				cli_usage_error(0, "serve", "--pool-size: %s", why);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_POOL_IDLE_MS:
		case OPT_MAX_SANDBOXES:
		case OPT_QUOTA_SANDBOXES:
		case OPT_QUOTA_MEMORY_MB:
		case OPT_QUOTA_DISK_MB:
		case OPT_QUOTA_PROCS:
		case OPT_QUOTA_SNAPSHOTS:
		case OPT_MAX_SNAPSHOTS:
		case OPT_MAX_SNAPSHOT_MB:
		case OPT_WS_PING_MS:
		case OPT_REQUEST_TIMEOUT_MS: {
			const struct {
				int id;
				const char *name;
				uint64_t min, max;
				uint64_t *dst;
			} num[] = {
				{ OPT_POOL_IDLE_MS, "--pool-idle-ms", 0, (uint64_t)1 << 40, &pool_idle },
				{ OPT_MAX_SANDBOXES, "--max-sandboxes", 1, 1u << 20, &max_sb },
				{ OPT_QUOTA_SANDBOXES, "--quota-sandboxes", 1, 1u << 20, &q_sb },
				{ OPT_QUOTA_MEMORY_MB, "--quota-memory-mb", 1, (uint64_t)1 << 40, &q_mem },
				{ OPT_QUOTA_DISK_MB, "--quota-disk-mb", 1, (uint64_t)1 << 40, &q_disk },
				{ OPT_QUOTA_PROCS, "--quota-procs", 1, (uint64_t)1 << 40, &q_procs },
				{ OPT_QUOTA_SNAPSHOTS, "--quota-snapshots", 1, 4096, &q_snaps },
				{ OPT_MAX_SNAPSHOTS, "--max-snapshots", 1, 4096, &max_snaps },
				{ OPT_MAX_SNAPSHOT_MB, "--max-snapshot-mb", 1, 1u << 20, &max_snap_mb },
				{ OPT_WS_PING_MS, "--ws-ping-ms", 0, (uint64_t)1 << 30, &ws_ping },
				{ OPT_REQUEST_TIMEOUT_MS, "--request-timeout-ms", 0, (uint64_t)1 << 30, &req_timeout },
			};
			size_t k;

			for (k = 0; num[k].id != id; k++)
				;
			if (cli_parse_uint(value, num[k].min, num[k].max, num[k].dst, why, sizeof(why)) < 0) {
				cli_usage_error(0, "serve", "%s: %s", num[k].name, why);
				return CLI_EXIT_USAGE;
			}
			break;
		}
		case OPT_QUOTA_CPUS:
			if (cli_parse_cpus(value, &q_cpus, why, sizeof(why)) < 0) {
				cli_usage_error(0, "serve", "--quota-cpus: %s", why);
				return CLI_EXIT_USAGE;
			}
			break;
		case CLI_OPT_HELP:
			usage();
			return 0;
		case CLI_OPT_BAD:
			cli_usage_error(0, "serve", "%s", why);
			return CLI_EXIT_USAGE;
		default:	/* an option of the table without its case here */
			cli_usage_error(0, "serve", "option `%s` is not handled by this build", argv[a.next - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (a.next < argc) {
		cli_usage_error(0, "serve", "unexpected argument `%s`", argv[a.next]);
		return CLI_EXIT_USAGE;
	}
	if (socket_path && listen_spec) {
		cli_usage_error(0, "serve", "give --socket or --listen, not both");
		return CLI_EXIT_USAGE;
	}
	if (listen_spec && !token_file) {
		cli_report(0, MBX_EINVAL, "--listen needs --token-file: a TCP server without a token would serve anyone "
			   "who can reach the port", "add --token-file FILE (made with a new token when missing)", NULL, 0);
		return CLI_EXIT_USAGE;
	}
	if (token_file && !listen_spec) {
		cli_usage_error(0, "serve", "--token-file goes with --listen (the unix socket is guarded by its owner)");
		return CLI_EXIT_USAGE;
	}
	activated = activated_socket(where, sizeof(where), why, sizeof(why));
	if (activated == -2) {
		cli_report(0, MBX_EINVAL, why, NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (activated >= 0 && (socket_path || listen_spec)) {
		cli_usage_error(0, "serve", "socket activation gave the socket: drop --socket and --listen");
		return CLI_EXIT_USAGE;
	}
	if (serve_dl_load(why, sizeof(why)) < 0) {
		cli_report(0, MBX_ENOTSUP, why, NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}

	if (activated >= 0) {
		fd = activated;
	} else if (listen_spec) {
		fd = tcp_listen(listen_spec, where, sizeof(where), why, sizeof(why));
	} else {
		if (!socket_path) {
			char *base = mbx__statebase_path();

			if (!base || mbx__statebase_check(base, why, sizeof(why)) < 0 ||
			    asprintf(&def_socket, "%s/serve.sock", base) < 0) {
				if (!base)
					snprintf(why, sizeof(why), "out of memory");
				free(base);
				cli_report(0, MBX_EPERM, why, NULL, NULL, 0);
				return CLI_EXIT_FAILED;
			}
			free(base);
			socket_path = def_socket;
		}
		fd = unix_listen(socket_path, why, sizeof(why));
		snprintf(where, sizeof(where), "unix:%s", socket_path);
		bound = fd >= 0;
	}
	if (fd < 0) {
		cli_report(0, MBX_ESYS, why, NULL, NULL, 0);
		goto fail;
	}
	/* After the address is known good: a typo there makes no token file. */
	if (token_file && load_tokens(token_file, &tokens, why, sizeof(why)) < 0) {
		cli_report(0, MBX_EINVAL, why, NULL, NULL, 0);
		close(fd);
		goto fail_unlink;
	}

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		cli_report(0, MBX_ESYS, "pipe failed", NULL, NULL, errno);
		close(fd);
		goto fail_unlink;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	memset(&cfg, 0, sizeof(cfg));
	cfg.listen_fd = fd;
	cfg.is_unix = listen_spec == NULL;
	cfg.clients = tokens.clients;
	cfg.n_clients = tokens.n;
	cfg.pool_size = (unsigned)pool;
	cfg.pool_idle_ms = pool_idle;
	cfg.max_sandboxes = (unsigned)max_sb;
	cfg.quota_sandboxes = (unsigned)q_sb;
	cfg.quota_memory_mb = q_mem;
	cfg.quota_millicpus = q_cpus;
	cfg.quota_disk_mb = q_disk;
	cfg.quota_procs = q_procs;
	cfg.quota_snapshots = (unsigned)q_snaps;
	cfg.max_snapshots = (unsigned)max_snaps;
	cfg.max_snapshot_bytes = max_snap_mb << 20;
	cfg.ws_ping_ms = ws_ping;
	cfg.request_timeout_ms = req_timeout;
	server = serve_start(&cfg, why, sizeof(why));
	tokens_free(&tokens);
	if (!server) {
		cli_report(0, MBX_ESYS, why, NULL, NULL, 0);
		goto fail_unlink;
	}
	fprintf(stderr, "mimobox: serve: listening on %s\n", where);
	fflush(stderr);

	pfd.fd = stop_pipe[0];
	pfd.events = POLLIN;
	for (;;) {
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
		if (read(stop_pipe[0], &sig, 1) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			sig = 0;
		}
		if (sig != SIGUSR1)
			break;
		/* Draining: no new sandboxes, health says so; stop later with SIGTERM. */
		serve_drain(server);
		fprintf(stderr, "mimobox: serve: draining (SIGUSR1): no new sandboxes; stop it with SIGTERM\n");
		fflush(stderr);
	}
	fprintf(stderr, "mimobox: serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	/* An activated socket is systemd's: it stays. */
	if (bound)
		unlink(socket_path);
	destroyed = serve_stop(server);
	fprintf(stderr, "mimobox: serve: stopped; destroyed %zu sandbox%s\n", destroyed, destroyed == 1 ? "" : "es");
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	free(def_socket);
	return 0;

fail_unlink:
	if (bound)
		unlink(socket_path);
fail:
	tokens_free(&tokens);
	free(def_socket);
	return CLI_EXIT_FAILED;
}
