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
};

static const struct cli_option serve_options[] = {
	{ "socket", 0, 1, OPT_SOCKET },
	{ "listen", 0, 1, OPT_LISTEN },
	{ "token-file", 0, 1, OPT_TOKEN_FILE },
	{ "pool-size", 0, 1, OPT_POOL_SIZE },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

#define POOL_SIZE_DEFAULT 2u
#define POOL_SIZE_MAX 16u

static void usage(void)
{
	printf("Usage: mimobox serve [--socket PATH | --listen ADDR:PORT --token-file FILE] [--pool-size N]\n"
	       "\n"
	       "Serve the sandbox API over HTTP in the foreground until SIGTERM or SIGINT, then\n"
	       "destroy every sandbox made through it. The API: docs/server.md.\n"
	       "\n"
	       "  --socket PATH        the unix socket to serve on, made 0600 (default: serve.sock\n"
	       "                       in the state directory); only the server's own uid is served\n"
	       "  --listen ADDR:PORT   serve on TCP instead (e.g. 127.0.0.1:8700, [::1]:8700)\n"
	       "  --token-file FILE    with --listen: every request needs `Authorization: Bearer`\n"
	       "                       and the token in FILE, which is made (0600, random) if missing\n"
	       "  --pool-size N        sandboxes kept ready per configuration for POST /v1/run\n"
	       "                       (0 to 16, default 2; 0: a new sandbox for each run)\n"
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

/* ---- the token ---- */

#define TOKEN_MAX 4096

/* Reads the token from `path`, or makes the file with a new one. malloc'd, or NULL with `why`. */
static char *load_token(const char *path, char *why, size_t whylen)
{
	unsigned char raw[32];
	char *tok;
	struct stat st;
	ssize_t n;
	size_t len, i;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		tok = malloc(2 * sizeof(raw) + 2);
		if (!tok || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
			snprintf(why, whylen, "cannot make a token: %s", tok ? strerror(errno) : "out of memory");
			free(tok);
			close(fd);
			unlink(path);
			return NULL;
		}
		for (i = 0; i < sizeof(raw); i++)
			sprintf(tok + 2 * i, "%02x", raw[i]);
		explicit_bzero(raw, sizeof(raw));
		tok[2 * sizeof(raw)] = '\n';
		if (cli_write_all(fd, tok, 2 * sizeof(raw) + 1) < 0 || fsync(fd) < 0) {
			snprintf(why, whylen, "cannot write the token file `%s`: %s", path, strerror(errno));
			explicit_bzero(tok, 2 * sizeof(raw) + 2);
			free(tok);
			close(fd);
			unlink(path);
			return NULL;
		}
		close(fd);
		tok[2 * sizeof(raw)] = '\0';
		return tok;
	}
	if (errno != EEXIST) {
		snprintf(why, whylen, "cannot create the token file `%s`: %s", path, strerror(errno));
		return NULL;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open the token file `%s`: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "the token file `%s` is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, whylen, "the token file `%s` must be yours and private (mode 0600), not mode %04o of uid %u",
			 path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		close(fd);
		return NULL;
	}
	tok = malloc(TOKEN_MAX + 1);
	if (!tok) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	len = 0;
	while (len < TOKEN_MAX && (n = read(fd, tok + len, TOKEN_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "cannot read the token file `%s`: %s", path, strerror(errno));
			close(fd);
			free(tok);
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	tok[len] = '\0';
	for (i = 0; i < len; i++)
		if (tok[i] <= ' ' || tok[i] > '~')
			break;
	if (len < 16 || i < len) {
		snprintf(why, whylen, "the token in `%s` must be 16 to %d printable characters without spaces "
			 "(remove the file to have one made)", path, TOKEN_MAX);
		explicit_bzero(tok, TOKEN_MAX + 1);
		free(tok);
		return NULL;
	}
	return tok;
}

/* ---- the verb ---- */

int cli_cmd_serve(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1, 0 };
	const char *socket_path = NULL, *listen_spec = NULL, *token_file = NULL, *value;
	char why[CLI_WHY_MAX], where[512];
	char *def_socket = NULL, *token = NULL;
	struct serve_config cfg;
	struct serve_server *server;
	struct sigaction sa;
	struct pollfd pfd;
	uint64_t pool = POOL_SIZE_DEFAULT;
	size_t destroyed;
	char sig = 0;
	int id, fd;

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
		case CLI_OPT_HELP:
			usage();
			return 0;
		case CLI_OPT_BAD:
		default:
			cli_usage_error(0, "serve", "%s", why);
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
	if (serve_dl_load(why, sizeof(why)) < 0) {
		cli_report(0, MBX_ENOTSUP, why, NULL, NULL, 0);
		return CLI_EXIT_FAILED;
	}

	if (listen_spec) {
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
	}
	if (fd < 0) {
		cli_report(0, MBX_ESYS, why, NULL, NULL, 0);
		goto fail;
	}
	/* After the address is known good: a typo there makes no token file. */
	if (token_file) {
		token = load_token(token_file, why, sizeof(why));
		if (!token) {
			cli_report(0, MBX_EINVAL, why, NULL, NULL, 0);
			close(fd);
			goto fail;
		}
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

	memset(&cfg, 0, sizeof(cfg));
	cfg.listen_fd = fd;
	cfg.is_unix = listen_spec == NULL;
	cfg.token = token;
	cfg.pool_size = (unsigned)pool;
	server = serve_start(&cfg, why, sizeof(why));
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
		token = NULL;
	}
	if (!server) {
		cli_report(0, MBX_ESYS, why, NULL, NULL, 0);
		goto fail_unlink;
	}
	fprintf(stderr, "mimobox: serve: listening on %s\n", where);
	fflush(stderr);

	pfd.fd = stop_pipe[0];
	pfd.events = POLLIN;
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	if (read(stop_pipe[0], &sig, 1) < 0)
		sig = 0;
	fprintf(stderr, "mimobox: serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	if (!listen_spec)
		unlink(socket_path);
	destroyed = serve_stop(server);
	fprintf(stderr, "mimobox: serve: stopped; destroyed %zu sandbox%s\n", destroyed, destroyed == 1 ? "" : "es");
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	free(def_socket);
	return 0;

fail_unlink:
	if (!listen_spec && socket_path)
		unlink(socket_path);
fail:
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	free(def_socket);
	return CLI_EXIT_FAILED;
}
