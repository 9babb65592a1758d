/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox create`, `ps` and `rm`: the life of named sandboxes. `create`
 * forks the sandbox's supervisor (cli/supervisor.c) as a daemon and waits
 * until it says whether the sandbox is up; `ps` lists the registry and
 * removes the entries of dead supervisors; `rm` asks a supervisor to
 * destroy its sandbox and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

/*
 * How long `ps` waits for the supervisors' answers. They are asked all at
 * once, so this bounds the whole listing: one wedged supervisor is shown as
 * `unresponsive` instead of holding up the others.
 */
#define PS_PROBE_MS 500
/* How long `rm` waits for a supervisor to destroy its sandbox. */
#define RM_WAIT_MS 60000

/* ---- create ---- */

enum { CREATE_JSON = CLI_OPT_VERB, CREATE_NAME, CREATE_TTL };

static const struct cli_option create_options[] = {
	{ "json", 0, 0, CREATE_JSON },
	{ "name", 0, 1, CREATE_NAME },
	{ "ttl", 0, 1, CREATE_TTL },
	CLI_SANDBOX_OPTIONS,
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static void create_usage(void)
{
	printf("Usage: mimobox create [OPTIONS] [--name NAME]\n"
	       "\n"
	       "Create a sandbox that lives on after this command returns, for `exec`,\n"
	       "`shell`, `cat`, `write`, `ls`, `stat`, `cp` and `http`, until\n"
	       "`mimobox rm NAME`.\n"
	       "Prints its name: NAME, or the sandbox id without --name. A supervisor\n"
	       "process keeps it; `mimobox ps` lists the live ones.\n"
	       "\n%s\n"
	       "Create options:\n"
	       "  --name NAME         1 to 64 letters, digits, `_`, `.` or `-`, starting\n"
	       "                      with a letter or digit (default: the sandbox id)\n"
	       "  --ttl DURATION      destroy the sandbox once no command has used it for\n"
	       "                      DURATION (30s, 10m, 2h, 1h30m; `ps` and `inspect`\n"
	       "                      do not count as use); default: live until `rm`\n"
	       "  --json              print {\"ok\": true, \"name\": ..., \"id\": ...}\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "Exit status: 0 when the sandbox is up; 125 when the arguments are wrong,\n"
	       "the name is taken or the sandbox cannot be made.\n",
	       cli_sandbox_options_help);
}

/* Closes every descriptor from `from` on but `keep` (-1: none). */
static void close_from_except(int from, int keep)
{
	if (keep >= from) {
		if (keep > from && close_range((unsigned)from, (unsigned)keep - 1, 0) < 0)
			for (int fd = from; fd < keep; fd++)
				close(fd);
		from = keep + 1;
	}
	if (close_range((unsigned)from, ~0U, 0) < 0)
		for (int fd = from; fd < 1024; fd++)
			close(fd);
}

/*
 * The daemon's side of the fork: detaches from everything `create` had
 * open except the two pipes, and runs the supervisor. Never returns.
 */
static void __attribute__((noreturn)) become_supervisor(mbx_config *cfg, mbx_snapshot *snap,
							 const char *name, struct cli_sandbox_opts *o,
							 uint64_t ttl_ms, int status_fd, int log_fd)
{
	char *own_name = NULL, *own_workdir = NULL, *own_hostname = NULL, title[128];
	int devnull, rc, keep = -1;

	setsid();
	if (fork() != 0)
		_exit(0);	/* the intermediate child; the daemon is its orphan */
	/*
	 * The daemon lives as long as the sandbox, and its command line is
	 * create's, which every user can read in /proc/<pid>/cmdline: it may
	 * hold --env values. The config holds copies of everything, so the
	 * argument strings are overwritten (`name` may point into them).
	 */
	if (name && (own_name = strdup(name)) == NULL)
		_exit(1);
	/* The options borrow these two from argv; `inspect` shows them. */
	if ((o->workdir && (own_workdir = strdup(o->workdir)) == NULL) ||
	    (o->hostname && (own_hostname = strdup(o->hostname)) == NULL))
		_exit(1);
	o->workdir = own_workdir;
	o->hostname = own_hostname;
	snprintf(title, sizeof(title), "mimobox supervisor %s", own_name ? own_name : "");
	cli_hide_argv(title);
	/*
	 * No terminal or pipe of the caller stays open: the library's agent
	 * inherits stdio, so the creation's log messages go to a descriptor of
	 * their own (close on exec), which the supervisor closes once ready.
	 */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0 ||
	    dup2(devnull, STDERR_FILENO) < 0 || dup3(status_fd, 3, O_CLOEXEC) < 0 ||
	    dup3(log_fd, 4, O_CLOEXEC) < 0)
		_exit(1);
	/* Everything else closes, but a microVM snapshot's memory, which the
	 * restore maps (the library keeps it above the low descriptors). */
	mbx_snapshot_memory_size(snap, &keep);
	close_from_except(5, keep);
	cli_set_log_fd(4);
	rc = cli_supervise(cfg, snap, own_name, o, ttl_ms, 3, 4);
	mbx_config_free(cfg);
	cli_sandbox_opts_free(o);
	free(own_name);
	free(own_workdir);
	free(own_hostname);
	exit(rc);
}

/* Copies what arrives on log_fd to stderr and collects status_fd, until both end. */
static void wait_supervisor(int status_fd, int log_fd, struct wire_conn *status)
{
	struct pollfd pfd[2];
	char chunk[4096];
	ssize_t n;
	int open_fds = 2, i;

	wire_conn_init(status, status_fd);
	pfd[0].fd = status_fd;
	pfd[1].fd = log_fd;
	pfd[0].events = pfd[1].events = POLLIN;
	while (open_fds > 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			if (i == 0) {
				n = wire_conn_fill(status);
			} else {
				n = read(log_fd, chunk, sizeof(chunk));
				if (n > 0)
					(void)cli_write_all(STDERR_FILENO, chunk, (size_t)n);
			}
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
				pfd[i].fd = -1;
				open_fds--;
			}
		}
	}
}

/*
 * Prints what the supervisor's WIRE_OK says (str name, str id, str
 * isolation, str limits mechanism, str what the limits leave unbounded);
 * an exit status. `asked_limits`: the caller gave --memory or --disk, so a
 * limit that holds only in part is worth a warning.
 */
static int print_created(int json, int asked_limits, struct wire_reader *r)
{
	const char *name = wire_get_str(r), *id = wire_get_str(r), *isolation = wire_get_str(r);
	const char *limits = wire_get_str(r), *partial = wire_get_str(r);
	struct cli_buf b = CLI_BUF_INIT;
	int rc = 0;

	if (wire_done(r) < 0) {
		cli_report(json, MBX_EPROTO, "the supervisor of the new sandbox sent a malformed answer", NULL,
			   NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (json) {
		cli_buf_puts(&b, "{\"ok\": true, \"name\": ");
		cli_json_cstring(&b, name);
		cli_buf_puts(&b, ", \"id\": ");
		cli_json_cstring(&b, id);
		cli_buf_puts(&b, ", \"isolation\": ");
		cli_json_cstring(&b, isolation);
		cli_buf_puts(&b, ", \"limits\": ");
		cli_json_cstring(&b, limits);
		cli_buf_puts(&b, ", \"limits_partial\": ");
		cli_json_cstring(&b, partial[0] ? partial : NULL);
		cli_buf_puts(&b, "}\n");
	} else {
		cli_buf_printf(&b, "%s\n", name);
	}
	if (asked_limits && partial[0])
		fprintf(stderr, "mimobox: warning: limits only partly enforced (%s): %s\n", limits, partial);
	/* The sandbox is up either way; a lost name is still worth a status. */
	if (b.failed || cli_write_all(STDOUT_FILENO, b.data, b.len) < 0)
		rc = CLI_EXIT_FAILED;
	cli_buf_free(&b);
	return rc;
}

int cli_supervisor_begin(int json, const char *name, mbx_config *cfg, mbx_snapshot *snap, struct cli_sandbox_opts *o,
			 uint64_t ttl_ms, struct cli_pending_supervisor *p)
{
	struct cli_registry reg;
	char why[CLI_WHY_MAX], message[CLI_WHY_MAX + 64];
	int rc, status_pipe[2] = { -1, -1 }, log_pipe[2] = { -1, -1 };
	pid_t pid;

	p->status_fd = p->log_fd = -1;
	/*
	 * A taken name is refused before any sandbox is made (the supervisor
	 * checks again under the lock). Nothing is created for the check.
	 */
	rc = cli_registry_open(&reg, 0, why, sizeof(why));
	if (rc < 0) {
		cli_report(json, MBX_EPERM, why, "remove it or set MIMOBOX_STATE_DIR to a directory you own",
			   NULL, 0);
		return CLI_EXIT_FAILED;
	}
	rc = rc == 0 && name ? cli_registry_probe(&reg, name, NULL) : CLI_ENTRY_NONE;
	if (rc == CLI_ENTRY_DEAD)
		(void)cli_registry_reap(&reg, name);
	cli_registry_close(&reg);
	if (rc == CLI_ENTRY_LIVE) {
		snprintf(message, sizeof(message), "a sandbox named `%s` already exists", name);
		cli_report(json, MBX_EEXIST, message, "pick another --name, or remove it with `mimobox rm`",
			   NULL, EEXIST);
		return CLI_EXIT_FAILED;
	}

	if (pipe2(status_pipe, O_CLOEXEC) < 0 || pipe2(log_pipe, O_CLOEXEC) < 0) {
		cli_report(json, MBX_ESYS, "cannot make a pipe to the supervisor", NULL, NULL, errno);
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		cli_report(json, MBX_ESYS, "cannot fork the supervisor", NULL, NULL, errno);
		goto fail;
	}
	if (pid == 0)
		become_supervisor(cfg, snap, name, o, ttl_ms, status_pipe[1], log_pipe[1]);
	close(status_pipe[1]);
	close(log_pipe[1]);
	/* The intermediate child exits at once: the daemon is its orphan. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	p->status_fd = status_pipe[0];
	p->log_fd = log_pipe[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (status_pipe[i] >= 0)
			close(status_pipe[i]);
		if (log_pipe[i] >= 0)
			close(log_pipe[i]);
	}
	return CLI_EXIT_FAILED;
}

int cli_supervisor_end(int json, const struct cli_sandbox_opts *o, struct cli_pending_supervisor *p)
{
	struct wire_conn status;
	struct wire_frame f;
	int rc, ret = CLI_EXIT_FAILED;

	wait_supervisor(p->status_fd, p->log_fd, &status);
	p->status_fd = -1;	/* owned by `status` now */
	rc = wire_conn_next(&status, &f);
	if (rc != 1 || (f.type != WIRE_OK && f.type != WIRE_ERROR))
		cli_report(json, MBX_ESYS, "the supervisor of the new sandbox exited before it was ready", NULL, NULL, 0);
	else if (f.type == WIRE_ERROR)
		(void)cli_session_report_error(json, &f.r);
	else
		ret = print_created(json, (o->set & (CLI_SET_MEMORY | CLI_SET_DISK)) != 0, &f.r);
	wire_conn_close(&status);
	if (p->log_fd >= 0)
		close(p->log_fd);
	p->log_fd = -1;
	return ret;
}

int cli_start_supervisor(int json, const char *name, mbx_config *cfg, mbx_snapshot *snap,
			 struct cli_sandbox_opts *o, uint64_t ttl_ms)
{
	struct cli_pending_supervisor p;
	int rc = cli_supervisor_begin(json, name, cfg, snap, o, ttl_ms, &p);

	return rc ? rc : cli_supervisor_end(json, o, &p);
}

int cli_cmd_create(int argc, char **argv)
{
	struct cli_sandbox_opts o;
	struct cli_args a = { argc, argv, 1 };
	mbx_config *cfg = NULL;
	mbx_error *err = NULL;
	const char *name = NULL, *value;
	char why[CLI_WHY_MAX], what[CLI_WHY_MAX];
	int json, id, rc, ret = CLI_EXIT_FAILED;
	uint64_t ttl_ms = 0;

	cli_sandbox_opts_init(&o);
	json = cli_wants_json(argc, argv, create_options, 0);
	while ((id = cli_next_option(&a, create_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		if (id == CLI_OPT_BAD) {
			cli_usage_error(json, "create", "%s", why);
			goto out;
		}
		if (id < CLI_OPT_SANDBOX_END) {
			if (cli_sandbox_opts_set(&o, id, value, why, sizeof(why)) < 0) {
				cli_usage_error(json, "create", "%s", why);
				goto out;
			}
		} else if (id == CREATE_NAME) {
			name = value;
		} else if (id == CREATE_TTL) {
			if (cli_parse_duration(value, &ttl_ms, why, sizeof(why)) < 0) {
				cli_usage_error(json, "create", "invalid value `%s` for --ttl: %s", value, why);
				goto out;
			}
		} else if (id == CLI_OPT_HELP) {
			create_usage();
			ret = 0;
			goto out;
		}
	}
	if (a.next < argc) {
		cli_usage_error(json, "create", "unexpected argument `%s` (`create` runs no program: "
				"use `mimobox exec NAME -- PROGRAM` once it is up)", argv[a.next]);
		goto out;
	}
	if (name && cli_check_name(name, why, sizeof(why)) < 0) {
		cli_usage_error(json, "create", "%s", why);
		goto out;
	}
	rc = cli_build_config(&o, &cfg, what, sizeof(what), &err);
	if (rc != MBX_OK) {
		cli_report_config(json, "create", rc, err, what);
		goto out;
	}
	ret = cli_start_supervisor(json, name, cfg, NULL, &o, ttl_ms);

out:
	mbx_error_free(err);
	mbx_config_free(cfg);
	cli_sandbox_opts_free(&o);
	return ret;
}

/* ---- ps ---- */

enum { PS_JSON = CLI_OPT_VERB };

static const struct cli_option ps_options[] = {
	{ "json", 0, 0, PS_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

struct ps_row {
	struct cli_session_info info;
	const char *state;	/* "ready", "busy", "starting", "unresponsive" */
	char name[CLI_NAME_MAX + 1];
	struct wire_conn conn;	/* the question to its supervisor, until answered */
	int answered;
};

/* Sends HELLO on a row's connection; 0, or -1 (the row is then unresponsive). */
static int send_hello(struct ps_row *row)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t start = wire_begin(&b, WIRE_HELLO);
	int rc;

	wire_u32(&b, WIRE_VERSION);
	/* A fresh socket's buffer takes these few bytes at once, even if nobody reads. */
	rc = wire_end(&b, start) == 0 && !b.failed ? wire_write_all(row->conn.fd, b.data, b.len) : -1;
	cli_buf_free(&b);
	return rc;
}

/* Reads what arrived for a row; 1 once its INFO is in (or the answer failed), else 0. */
static int take_answer(struct ps_row *row)
{
	struct wire_frame f;
	long n;
	int rc;

	n = wire_conn_fill(&row->conn);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return 1;	/* it hung up: unresponsive */
	rc = wire_conn_next(&row->conn, &f);
	if (rc == 0)
		return 0;
	if (rc == 1 && f.type == WIRE_INFO && cli_session_parse_info(&f.r, &row->info) == 0) {
		row->answered = 1;
		row->state = row->info.running ? "busy" : "ready";
	}
	return 1;
}

/*
 * Asks every live supervisor at once and waits for the answers up to
 * PS_PROBE_MS in all: a wedged (stopped, stuck) supervisor costs the
 * listing at most that, whatever the number of sandboxes.
 */
static void probe_rows(struct cli_registry *reg, struct ps_row *rows, size_t n)
{
	struct pollfd *pfds = calloc(n + 1, sizeof(*pfds));
	size_t *who = calloc(n + 1, sizeof(*who));
	struct timespec ts;
	int64_t deadline, now;
	size_t i, k;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + PS_PROBE_MS;
	for (i = 0; i < n; i++)
		if (rows[i].conn.fd >= 0 && send_hello(&rows[i]) < 0)
			wire_conn_close(&rows[i].conn);
	while (pfds && who) {
		for (i = k = 0; i < n; i++) {
			if (rows[i].conn.fd < 0)
				continue;
			pfds[k].fd = rows[i].conn.fd;
			pfds[k].events = POLLIN;
			pfds[k].revents = 0;
			who[k++] = i;
		}
		if (k == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (now >= deadline)
			break;
		rc = poll(pfds, k, (int)(deadline - now));
		if (rc < 0 && errno != EINTR)
			break;
		for (i = 0; rc > 0 && i < k; i++)
			if (pfds[i].revents && take_answer(&rows[who[i]]))
				wire_conn_close(&rows[who[i]].conn);
	}
	for (i = 0; i < n; i++) {
		wire_conn_close(&rows[i].conn);
		if (rows[i].answered)
			continue;
		if (cli_registry_read_info(reg, rows[i].name, &rows[i].info.entry) == 0) {
			rows[i].state = "unresponsive";
		} else {
			snprintf(rows[i].info.entry.name, sizeof(rows[i].info.entry.name), "%s", rows[i].name);
			rows[i].state = "starting";
		}
	}
	free(pfds);
	free(who);
}

/* Prints the table (or JSON) of the live sandboxes; 0 or -1. */
static int print_rows(int json, const struct ps_row *rows, size_t n)
{
	struct cli_buf b = CLI_BUF_INIT;
	uint64_t now = (uint64_t)time(NULL), age;
	size_t i, width = 4;
	char agebuf[32], ttlbuf[40];
	int rc = 0;

	for (i = 0; i < n; i++)
		if (strlen(rows[i].info.entry.name) > width)
			width = strlen(rows[i].info.entry.name);
	if (json)
		cli_buf_puts(&b, "{\"ok\": true, \"sandboxes\": [");
	else
		cli_buf_printf(&b, "%-*s  %-9s  %-7s  %-9s  %s\n", (int)width, "NAME", "ISOLATION", "AGE", "EXPIRES",
			       "STATE");
	for (i = 0; i < n; i++) {
		const struct cli_entry_info *e = &rows[i].info.entry;
		const struct cli_session_info *in = &rows[i].info;

		age = e->created && now > e->created ? now - e->created : 0;
		if (json) {
			cli_buf_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
			cli_json_cstring(&b, e->name);
			cli_buf_puts(&b, ", \"id\": ");
			cli_json_cstring(&b, e->id[0] ? e->id : NULL);
			cli_buf_puts(&b, ", \"isolation\": ");
			cli_json_cstring(&b, e->isolation[0] ? e->isolation : NULL);
			cli_buf_printf(&b, ", \"created\": %llu, \"age_s\": %llu, \"state\": ",
				       (unsigned long long)e->created, (unsigned long long)age);
			cli_json_cstring(&b, rows[i].state);
			cli_buf_printf(&b, ", \"pid\": %u, \"clients\": %u, \"running\": %u, \"ttl_s\": ", (unsigned)e->pid,
				       (unsigned)in->clients, (unsigned)in->running);
			if (in->ttl_ms)
				cli_buf_printf(&b, "%llu, \"expires_in_s\": %llu}", (unsigned long long)(in->ttl_ms / 1000),
					       (unsigned long long)((in->ttl_left_ms + 999) / 1000));
			else
				cli_buf_puts(&b, "null, \"expires_in_s\": null}");
		} else {
			cli_format_duration(agebuf, sizeof(agebuf), age);
			if (in->ttl_ms) {
				snprintf(ttlbuf, sizeof(ttlbuf), "in ");
				cli_format_duration(ttlbuf + 3, sizeof(ttlbuf) - 3, (in->ttl_left_ms + 999) / 1000);
			} else {
				snprintf(ttlbuf, sizeof(ttlbuf), "-");
			}
			cli_buf_printf(&b, "%-*s  %-9s  %-7s  %-9s  %s", (int)width, e->name,
				       e->isolation[0] ? e->isolation : "-", e->created ? agebuf : "-", ttlbuf,
				       rows[i].state);
			if (rows[i].info.running)
				cli_buf_printf(&b, " (%u running)", (unsigned)rows[i].info.running);
			cli_buf_puts(&b, "\n");
		}
	}
	if (json)
		cli_buf_puts(&b, "]}\n");
	if (b.failed || (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE))
		rc = -1;
	cli_buf_free(&b);
	return rc;
}

int cli_cmd_ps(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	struct cli_registry reg;
	struct ps_row *rows = NULL;
	char why[CLI_WHY_MAX], **names = NULL;
	const char *value;
	long n = 0, i;
	size_t count = 0;
	int json = cli_wants_json(argc, argv, ps_options, 1), id, rc, fd, ret = CLI_EXIT_FAILED;

	while ((id = cli_next_option(&a, ps_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		if (id == CLI_OPT_BAD) {
			cli_usage_error(json, "ps", "%s", why);
			return CLI_EXIT_FAILED;
		}
		if (id == CLI_OPT_HELP) {
			printf("Usage: mimobox ps [--json]\n"
			       "       mimobox ps NAME [--json]\n\n"
			       "List the live named sandboxes: name, isolation, age, when an idle one\n"
			       "expires (create --ttl) and state (ready, busy while programs run,\n"
			       "starting, or unresponsive when its supervisor does not answer within\n"
			       "%d ms). Entries whose supervisor died are removed, with a note on\n"
			       "stderr.\n\n"
			       "With NAME, list the processes of that sandbox instead: the programs of\n"
			       "running `exec`s and the background processes of `exec -d` (running or\n"
			       "ended, with their exit), with id, age, output and command.\n", PS_PROBE_MS);
			return 0;
		}
	}
	if (a.next < argc) {
		const char *name = argv[a.next++];

		while ((id = cli_next_option(&a, ps_options, &value, why, sizeof(why))) != CLI_OPT_END) {
			if (id == CLI_OPT_BAD) {
				cli_usage_error(json, "ps", "%s", why);
				return CLI_EXIT_FAILED;
			}
		}
		if (a.next < argc) {
			cli_usage_error(json, "ps", "unexpected argument `%s`", argv[a.next]);
			return CLI_EXIT_FAILED;
		}
		return cli_ps_processes(name, json);
	}
	rc = cli_registry_open(&reg, 0, why, sizeof(why));
	if (rc < 0) {
		cli_report(json, MBX_EPERM, why, "remove it or set MIMOBOX_STATE_DIR to a directory you own",
			   NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (rc == 0) {
		n = cli_registry_names(&reg, &names);
		if (n < 0) {
			cli_report(json, MBX_ESYS, "cannot list the registry of named sandboxes", NULL, NULL, errno);
			goto out;
		}
	}
	rows = calloc((size_t)n + 1, sizeof(*rows));
	if (!rows) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		goto out;
	}
	for (i = 0; i < n; i++) {
		switch (cli_registry_probe_nb(&reg, names[i], &fd)) {
		case CLI_ENTRY_LIVE:
			/* fd -1: it does not even accept: unresponsive. */
			snprintf(rows[count].name, sizeof(rows[count].name), "%s", names[i]);
			wire_conn_init(&rows[count].conn, fd);
			count++;
			break;
		case CLI_ENTRY_DEAD:
			if (cli_registry_reap(&reg, names[i]))
				fprintf(stderr, "mimobox: note: removed sandbox `%s`: its supervisor had died\n",
					names[i]);
			break;
		default:
			break;	/* removed meanwhile */
		}
	}
	probe_rows(&reg, rows, count);
	ret = print_rows(json, rows, count) < 0 ? CLI_EXIT_FAILED : 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(rows);
	cli_registry_close(&reg);
	return ret;
}

/* ---- rm ---- */

enum { RM_JSON = CLI_OPT_VERB, RM_FORCE, RM_RECURSIVE };

static const struct cli_option rm_options[] = {
	{ "json", 0, 0, RM_JSON },
	{ "force", 'f', 0, RM_FORCE },
	{ "recursive", 'r', 0, RM_RECURSIVE },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

/* A descriptor that becomes readable when `pid` exits, or -1 (pidfd_open, Linux 5.3). */
static int watch_pid(uint32_t pid)
{
#ifdef SYS_pidfd_open
	if (pid > 0 && pid <= INT32_MAX)
		return (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
#endif
	(void)pid;
	return -1;
}

/*
 * Removes one sandbox; returns an exit status. With `force` a sandbox that
 * does not exist is no error (*absent is set).
 */
static int remove_one(const char *name, int json, int force, int *absent)
{
	struct cli_registry reg;
	struct cli_session_info info;
	struct wire_conn conn;
	struct wire_frame f;
	struct cli_buf b = CLI_BUF_INIT;
	struct pollfd pfd;
	char why[CLI_WHY_MAX], message[CLI_WHY_MAX + 64];
	size_t start;
	int rc, fd = -1, pidfd = -1, ret = CLI_EXIT_FAILED;

	*absent = 0;
	if (cli_check_name(name, why, sizeof(why)) < 0) {
		cli_usage_error(json, "rm", "%s", why);
		return CLI_EXIT_FAILED;
	}
	rc = cli_registry_open(&reg, 0, why, sizeof(why));
	if (rc < 0) {
		cli_report(json, MBX_EPERM, why, "remove it or set MIMOBOX_STATE_DIR to a directory you own", NULL, 0);
		return CLI_EXIT_FAILED;
	}
	rc = rc == 1 ? CLI_ENTRY_NONE : cli_registry_probe(&reg, name, &fd);
	if (rc == CLI_ENTRY_DEAD) {
		/* Gone already; what is left of it is its entry. */
		if (cli_registry_reap(&reg, name))
			fprintf(stderr, "mimobox: warning: sandbox `%s` had died; its entry was removed\n", name);
		cli_registry_close(&reg);
		return 0;
	}
	cli_registry_close(&reg);
	if (rc != CLI_ENTRY_LIVE || fd < 0) {
		if (force) {
			*absent = 1;
			return 0;
		}
		snprintf(message, sizeof(message), "no sandbox named `%s`", name);
		cli_report(json, MBX_ENOTFOUND, message, "see `mimobox ps` for the live ones", NULL, 0);
		return CLI_EXIT_FAILED;
	}
	wire_conn_init(&conn, fd);
	/* HELLO first, for the supervisor's pid: rm returns once it is gone. */
	start = wire_begin(&b, WIRE_HELLO);
	wire_u32(&b, WIRE_VERSION);
	(void)wire_end(&b, start);
	(void)wire_end(&b, wire_begin(&b, WIRE_REMOVE));
	if (cli_session_send(&conn, &b) < 0 || (rc = wire_conn_recv(&conn, &f, RM_WAIT_MS)) != 1 ||
	    f.type != WIRE_INFO || cli_session_parse_info(&f.r, &info) < 0) {
		ret = cli_session_lost(json, name, rc < 0 ? errno : EPROTO);
		goto out;
	}
	pidfd = watch_pid(info.entry.pid);
	if ((rc = wire_conn_recv(&conn, &f, RM_WAIT_MS)) != 1) {
		ret = cli_session_lost(json, name, rc < 0 ? errno : 0);
		goto out;
	}
	if (f.type == WIRE_ERROR) {
		(void)cli_session_report_error(json, &f.r);
		goto out;
	}
	if (f.type != WIRE_OK) {
		ret = cli_session_lost(json, name, EPROTO);
		goto out;
	}
	/* The supervisor exits right after its answer: wait for that. */
	(void)wire_conn_recv(&conn, &f, RM_WAIT_MS);
	if (pidfd >= 0) {
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		while (poll(&pfd, 1, RM_WAIT_MS) < 0 && errno == EINTR)
			;
	}
	ret = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	cli_buf_free(&b);
	wire_conn_close(&conn);
	return ret;
}

int cli_cmd_rm(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	struct cli_buf done = CLI_BUF_INIT, gone = CLI_BUF_INIT, b = CLI_BUF_INIT;
	char why[CLI_WHY_MAX], name[CLI_NAME_MAX + 1];
	const char *value, *path, *ops[256];
	int id, ret = 0, rc, json, force = 0, recursive = 0, n_ops = 0, i, absent, dashdash = 0;
	size_t n_done = 0, n_gone = 0;

	json = cli_wants_json(argc, argv, rm_options, argc);
	/* Options may come before, between and after the operands, up to "--". */
	while (a.next < argc) {
		if (!dashdash) {
			dashdash = strcmp(argv[a.next], "--") == 0;
			id = cli_next_option(&a, rm_options, &value, why, sizeof(why));
			if (id == CLI_OPT_BAD) {
				cli_usage_error(json, "rm", "%s", why);
				return CLI_EXIT_USAGE;
			}
			if (id == CLI_OPT_HELP) {
				printf("Usage: mimobox rm [-f] [--json] NAME...\n"
				       "       mimobox rm [-r] [-f] [--json] NAME:PATH...\n\n"
				       "Destroy named sandboxes: their processes are killed, their files and\n"
				       "registry entries removed, their supervisors exit. An operand with a\n"
				       "`:` is a path inside a sandbox instead, which is removed (a file, an\n"
				       "empty directory, or with -r a whole tree); the sandbox lives on.\n"
				       "  -f, --force       no error for a sandbox or a path that does not\n"
				       "                    exist (a sandbox is destroyed even when busy,\n"
				       "                    with or without -f)\n"
				       "  -r, --recursive   remove a directory inside a sandbox with all it\n"
				       "                    holds; only with NAME:PATH, never with a bare NAME\n"
				       "  --json            print {\"ok\": true, \"removed\": [...], \"absent\": [...]}\n"
				       "Exit status: 0; 1 when the sandbox refused to remove a path; 125 when\n"
				       "a name is wrong or unknown.\n");
				return 0;
			}
			if (id == RM_JSON)
				json = 1;
			else if (id == RM_FORCE)
				force = 1;
			else if (id == RM_RECURSIVE)
				recursive = 1;
			if (id != CLI_OPT_END || dashdash || a.next >= argc)
				continue;
		}
		if (n_ops >= (int)(sizeof(ops) / sizeof(ops[0]))) {
			cli_usage_error(json, "rm", "more than %d operands", (int)(sizeof(ops) / sizeof(ops[0])));
			return CLI_EXIT_USAGE;
		}
		ops[n_ops++] = argv[a.next++];
	}
	if (n_ops == 0) {
		cli_usage_error(json, "rm", "no sandbox name given (expected `mimobox rm NAME...` or "
				"`mimobox rm NAME:PATH...`)");
		return CLI_EXIT_USAGE;
	}
	/* -r with a bare NAME would read as "remove the sandbox recursively": refuse it first. */
	for (i = 0; recursive && i < n_ops; i++) {
		if (!cli_parse_sandbox_ref(ops[i], name, &path)) {
			cli_usage_error(json, "rm", "-r removes paths inside a sandbox (NAME:PATH), and `%s` is a "
					"sandbox name; to destroy the sandbox, drop -r", ops[i]);
			return CLI_EXIT_USAGE;
		}
	}
	for (i = 0; i < n_ops; i++) {
		if (cli_parse_sandbox_ref(ops[i], name, &path))
			rc = cli_remove_path(name, path, recursive, force, json, &absent);
		else
			rc = remove_one(ops[i], json, force, &absent);
		if (rc != 0) {
			ret = rc;
			continue;
		}
		if (absent) {
			cli_buf_puts(&gone, n_gone++ ? ", " : "");
			cli_json_cstring(&gone, ops[i]);
		} else {
			cli_buf_puts(&done, n_done++ ? ", " : "");
			cli_json_cstring(&done, ops[i]);
		}
	}
	if (ret == 0 && json) {
		cli_buf_puts(&b, "{\"ok\": true, \"removed\": [");
		cli_buf_add(&b, done.data ? done.data : "", done.len);
		cli_buf_puts(&b, "], \"absent\": [");
		cli_buf_add(&b, gone.data ? gone.data : "", gone.len);
		cli_buf_puts(&b, "]}\n");
		if (b.failed || done.failed || gone.failed || cli_write_all(STDOUT_FILENO, b.data, b.len) < 0)
			ret = 1;
	}
	cli_buf_free(&b);
	cli_buf_free(&done);
	cli_buf_free(&gone);
	return ret;
}
