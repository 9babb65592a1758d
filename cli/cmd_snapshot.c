/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox snapshot`, `restore` and `fork`: snapshots of named sandboxes
 * (include/mbx/snapshot.h). `snapshot` asks the sandbox's supervisor to
 * save one to a host file; `restore` starts a new named sandbox (a
 * supervisor of its own, as `create` does) from such a file; `fork` is a
 * snapshot into a private temporary file restored COUNT times.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "files.h"
#include "session.h"

#define FORK_MAX_COUNT 64

enum { SNAP_JSON = CLI_OPT_VERB, SNAP_NAME, SNAP_TTL, SNAP_COUNT };

static const struct cli_option snapshot_options[] = {
	{ "json", 0, 0, SNAP_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option restore_options[] = {
	{ "json", 0, 0, SNAP_JSON },
	{ "name", 0, 1, SNAP_NAME },
	{ "ttl", 0, 1, SNAP_TTL },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const struct cli_option fork_options[] = {
	{ "json", 0, 0, SNAP_JSON },
	{ "name", 0, 1, SNAP_NAME },
	{ "count", 0, 1, SNAP_COUNT },
	{ "ttl", 0, 1, SNAP_TTL },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const char snapshot_help[] =
	"Usage: mimobox snapshot NAME FILE [--json]\n"
	"\n"
	"Save the state of named sandbox NAME to the host file FILE (created 0600,\n"
	"replaced whole): its settings and the files of /workspace, /tmp and\n"
	"/dev/shm (wasm: /workspace; os and wasm: running processes are not\n"
	"saved); a microvm sandbox's whole guest: memory, processes, files. Mounts\n"
	"are neither kept nor saved. The file is authenticated with a key of yours\n"
	"on this host: only you, here, can restore it.\n"
	"  --json          print {\"ok\": true, \"name\": ..., \"file\": ...}\n"
	"  -h, --help      show this help\n";

static const char restore_help[] =
	"Usage: mimobox restore FILE [--name NEW] [--ttl DURATION] [--json]\n"
	"\n"
	"Create a named sandbox from a snapshot FILE made by `mimobox snapshot`,\n"
	"with the settings and files saved in it (no processes; a microvm's guest\n"
	"goes on with its processes, under a new host name). Prints its name.\n"
	"  --name NEW      the new sandbox's name (default: its id)\n"
	"  --ttl DURATION  destroy it once unused for DURATION (as `create --ttl`)\n"
	"  --json          print {\"ok\": true, \"name\": ..., \"id\": ...}\n"
	"  -h, --help      show this help\n";

static const char fork_help[] =
	"Usage: mimobox fork NAME [--name NEW] [--count N] [--ttl DURATION] [--json]\n"
	"\n"
	"Create named sandboxes with the settings and files of named sandbox NAME\n"
	"(a snapshot restored: no processes, no mounts; microvm: the whole guest,\n"
	"its memory shared copy-on-write). Writes in one are not seen by the\n"
	"others. Prints one name per line.\n"
	"  --name NEW      the new sandbox's name; with --count, NEW-1 ... NEW-N\n"
	"                  (default: their ids)\n"
	"  --count N       make N sandboxes, 1 to 64 (default 1)\n"
	"  --ttl DURATION  destroy each once unused for DURATION (as `create --ttl`)\n"
	"  --json          print one {\"ok\": true, \"name\": ..., \"id\": ...} per sandbox\n"
	"  -h, --help      show this help\n";

/* Options anywhere; `nops` operands. Returns 0, 1 for --help, -1 after a usage error. */
static int parse(struct cli_snap_args *s, int argc, char **argv, const struct cli_option *options, int nops,
		 const char *synopsis, const char *help)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	int id;

	s->json = cli_wants_json(argc, argv, options, nops);
	s->count = 1;
	while (a.next < argc) {
		id = cli_next_option(&a, options, &value, why, sizeof(why));
		if (id == CLI_OPT_BAD) {
			cli_usage_error(s->json, s->verb, "%s", why);
			return -1;
		}
		if (id == CLI_OPT_HELP) {
			fputs(help, stdout);
			return 1;
		}
		if (id == SNAP_JSON) {
			s->json = 1;
		} else if (id == SNAP_NAME) {
			if (cli_check_name(value, why, sizeof(why)) < 0) {
				cli_usage_error(s->json, s->verb, "%s", why);
				return -1;
			}
			s->name = value;
		} else if (id == SNAP_TTL) {
			if (cli_parse_duration(value, &s->ttl_ms, why, sizeof(why)) < 0) {
				cli_usage_error(s->json, s->verb, "invalid value `%s` for --ttl: %s", value, why);
				return -1;
			}
		} else if (id == SNAP_COUNT) {
			char *end;
			unsigned long n = strtoul(value, &end, 10);

			if (value[0] < '0' || value[0] > '9' || *end != '\0' || n < 1 || n > FORK_MAX_COUNT) {
				cli_usage_error(s->json, s->verb, "invalid value `%s` for --count: give 1 to %d", value,
						FORK_MAX_COUNT);
				return -1;
			}
			s->count = (unsigned)n;
		} else if (id == CLI_OPT_END && a.next < argc) {
			/* an operand (options may come before and after it) */
			if (s->n_ops >= nops) {
				cli_usage_error(s->json, s->verb, "unexpected argument `%s` (expected `mimobox %s`)",
						argv[a.next], synopsis);
				return -1;
			}
			s->ops[s->n_ops++] = argv[a.next++];
		}
	}
	if (s->n_ops < nops) {
		cli_usage_error(s->json, s->verb, "missing %s (expected `mimobox %s`)",
				s->n_ops == 0 && strcmp(s->verb, "restore") != 0 ? "the sandbox name" : "the snapshot file",
				synopsis);
		return -1;
	}
	return 0;
}

int cli_snap_parse(struct cli_snap_args *s, enum cli_snap_verb verb, int argc, char **argv)
{
	switch (verb) {
	case CLI_SNAP_SNAPSHOT:
		s->verb = "snapshot";
		return parse(s, argc, argv, snapshot_options, 2, "snapshot NAME FILE [--json]", snapshot_help);
	case CLI_SNAP_RESTORE:
		s->verb = "restore";
		return parse(s, argc, argv, restore_options, 1, "restore FILE [--name NEW] [--ttl DURATION] [--json]",
			     restore_help);
	case CLI_SNAP_FORK:
	default:
		s->verb = "fork";
		return parse(s, argc, argv, fork_options, 1,
			     "fork NAME [--name NEW] [--count N] [--ttl DURATION] [--json]", fork_help);
	}
}

/* Asks the supervisor of `name` to save a snapshot to the absolute `path`; the exit status. */
static int ask_snapshot(const char *verb, const char *name, const char *path, int json)
{
	struct wire_conn conn;
	int rc = cli_session_open(verb, name, json, &conn, NULL);

	if (rc)
		return rc;
	rc = files_send_path(&conn, WIRE_SNAPSHOT, path, name, json);
	if (rc == 0)
		rc = files_write_answer(&conn, name, json);
	wire_conn_close(&conn);
	return rc;
}

/* `file` made absolute against the working directory; malloc'd, or NULL. */
static char *absolute(const char *file)
{
	char *cwd, *out = NULL;

	if (file[0] == '/')
		return strdup(file);
	cwd = getcwd(NULL, 0);
	if (cwd && asprintf(&out, "%s/%s", cwd, file) < 0)
		out = NULL;
	free(cwd);
	return out;
}

int cli_cmd_snapshot(int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	struct cli_buf b = CLI_BUF_INIT;
	char *path;
	int rc = cli_snap_parse(&s, CLI_SNAP_SNAPSHOT, argc, argv);

	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	if (s.ops[1][0] == '\0') {
		cli_usage_error(s.json, "snapshot", "the snapshot file's name is empty");
		return CLI_EXIT_FAILED;
	}
	path = absolute(s.ops[1]);
	if (path == NULL) {
		cli_report(s.json, MBX_ESYS, "cannot tell the working directory", NULL, NULL, errno);
		return CLI_EXIT_FAILED;
	}
	rc = ask_snapshot("snapshot", s.ops[0], path, s.json);
	if (rc == 0 && s.json) {
		cli_buf_puts(&b, "{\"ok\": true, \"name\": ");
		cli_json_cstring(&b, s.ops[0]);
		cli_buf_puts(&b, ", \"file\": ");
		cli_json_cstring(&b, path);
		cli_buf_puts(&b, "}\n");
		rc = files_print_buf(&b);
	}
	free(path);
	return rc;
}

/*
 * Loads a snapshot file, reporting what is wrong with it (NULL after
 * reporting), and the options its sandbox was made with into `o` (from the
 * note `mimobox snapshot` leaves; without one, or with one it cannot read,
 * the defaults, with a warning for the latter).
 */
static mbx_snapshot *load(const char *path, int json, struct cli_sandbox_opts *o)
{
	mbx_snapshot *snap = NULL;
	mbx_error *err = NULL;
	const uint8_t *note;
	char why[CLI_WHY_MAX];
	size_t len = 0;
	int rc = mbx_snapshot_load(&snap, path, &err);

	if (rc != MBX_OK) {
		cli_report_mbx(json, rc, err);
		mbx_error_free(err);
		return NULL;
	}
	note = mbx_snapshot_note(snap, &len);
	if (note && cli_sandbox_opts_from_note(o, note, len, why, sizeof(why)) < 0) {
		fprintf(stderr, "mimobox: warning: %s: `inspect` shows default settings for the new sandbox\n", why);
		cli_sandbox_opts_free(o);
		cli_sandbox_opts_init(o);
	}
	return snap;
}

int cli_cmd_restore(int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	struct cli_sandbox_opts o;
	mbx_snapshot *snap;
	int rc = cli_snap_parse(&s, CLI_SNAP_RESTORE, argc, argv);

	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	cli_sandbox_opts_init(&o);
	snap = load(s.ops[0], s.json, &o);
	if (snap == NULL) {
		cli_sandbox_opts_free(&o);
		return CLI_EXIT_FAILED;
	}
	rc = cli_start_supervisor(s.json, s.name, NULL, snap, &o, s.ttl_ms);
	cli_sandbox_opts_free(&o);
	mbx_snapshot_free(snap);
	return rc;
}

int cli_cmd_fork(int argc, char **argv)
{
	struct cli_snap_args s = { 0 };
	struct cli_registry reg;
	struct cli_sandbox_opts o;
	mbx_snapshot *snap;
	char why[CLI_WHY_MAX], name[CLI_NAME_MAX + 16], *tmp = NULL;
	struct cli_pending_supervisor pending[FORK_MAX_COUNT];
	uint64_t r = 0;
	unsigned i, started;
	int rc = cli_snap_parse(&s, CLI_SNAP_FORK, argc, argv);

	if (rc)
		return rc > 0 ? 0 : CLI_EXIT_FAILED;
	if (s.name && s.count > 1) {
		snprintf(name, sizeof(name), "%s-%u", s.name, s.count);
		if (cli_check_name(name, why, sizeof(why)) < 0) {
			cli_usage_error(s.json, "fork", "--name with --count: %s", why);
			return CLI_EXIT_FAILED;
		}
	}
	/* The snapshot passes through a file of the private registry directory. */
	rc = cli_registry_open(&reg, 1, why, sizeof(why));
	if (rc < 0) {
		cli_report(s.json, MBX_EPERM, why, "remove it or set MIMOBOX_STATE_DIR to a directory you own", NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r) ||
	    asprintf(&tmp, "%s/.fork-%016llx.snap", reg.path, (unsigned long long)r) < 0) {
		cli_registry_close(&reg);
		cli_report(s.json, MBX_ESYS, "cannot name a temporary snapshot file", NULL, NULL, errno);
		return CLI_EXIT_FAILED;
	}
	cli_registry_close(&reg);
	rc = ask_snapshot("fork", s.ops[0], tmp, s.json);
	cli_sandbox_opts_init(&o);
	snap = rc == 0 ? load(tmp, s.json, &o) : NULL;
	unlink(tmp);
	free(tmp);
	if (snap == NULL) {
		cli_sandbox_opts_free(&o);
		return rc ? rc : CLI_EXIT_FAILED;
	}
	/* Every copy's supervisor starts before the first is waited for: the
	 * restores run at once (a microVM's takes a good part of a second
	 * under TCG); the names come out in order. */
	for (i = 0, rc = 0; rc == 0 && i < s.count; i++) {
		if (s.name && s.count > 1)
			snprintf(name, sizeof(name), "%s-%u", s.name, i + 1);
		else if (s.name)
			snprintf(name, sizeof(name), "%s", s.name);
		rc = cli_supervisor_begin(s.json, s.name ? name : NULL, NULL, snap, &o, s.ttl_ms, &pending[i]);
	}
	started = rc == 0 ? s.count : i - 1;
	for (i = 0; i < started; i++) {
		int erc = cli_supervisor_end(s.json, &o, &pending[i]);

		if (rc == 0)
			rc = erc;
	}
	cli_sandbox_opts_free(&o);
	mbx_snapshot_free(snap);
	return rc;
}
