/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mimobox doctor`: probe the host and say which isolation layers and
 * backends work here, and what to do about the ones that do not. Exit 0 when
 * the os backend can run, 1 otherwise (2 for bad arguments).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

enum {
	OPT_JSON = CLI_OPT_VERB,
};

static const struct cli_option doctor_options[] = {
	{ "json", 0, 0, OPT_JSON },
	CLI_HELP_OPTION,
	{ NULL, 0, 0, 0 }
};

static const mbx_isolation_t backends[] = {
	MBX_ISOLATION_OS,
	MBX_ISOLATION_WASM,
	MBX_ISOLATION_MICROVM,
};

#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

static void usage(void)
{
	printf("Usage: mimobox doctor [--json]\n"
	       "\n"
	       "Check which isolation layers and backends work on this host.\n"
	       "\n"
	       "  --json       print one JSON object: {\"checks\": [...], \"backends\": {...}}\n"
	       "  -h, --help   show this help\n"
	       "\n"
	       "Exit status: 0 when the os backend is available, 1 otherwise.\n");
}

static const char *status_word(mbx_probe_status_t s)
{
	switch (s) {
	case MBX_PROBE_OK:
		return "OK";
	case MBX_PROBE_PARTIAL:
		return "PARTIAL";
	case MBX_PROBE_UNAVAILABLE:
		return "UNAVAILABLE";
	default:
		return "UNKNOWN";
	}
}

static const char *status_json(mbx_probe_status_t s)
{
	switch (s) {
	case MBX_PROBE_OK:
		return "ok";
	case MBX_PROBE_PARTIAL:
		return "partial";
	case MBX_PROBE_UNAVAILABLE:
		return "unavailable";
	default:
		return "unknown";
	}
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* "KVM" or "TCG", from the vm-accelerator check's detail. */
static const char *vm_accel_word(const mbx_probe *probe)
{
	size_t i, n = mbx_probe_count(probe);

	for (i = 0; i < n; i++)
		if (strcmp(or_empty(mbx_probe_name(probe, i)), "vm-accelerator") == 0)
			return strncmp(or_empty(mbx_probe_detail(probe, i)), "KVM", 3) == 0 ? "KVM" : "TCG";
	return "TCG";
}

static void print_text(const mbx_probe *probe)
{
	size_t i, n = mbx_probe_count(probe), width = 7;
	const char *name, *hint, *reason;

	for (i = 0; i < n; i++) {
		name = or_empty(mbx_probe_name(probe, i));
		if (strlen(name) > width)
			width = strlen(name);
	}
	for (i = 0; i < n; i++) {
		printf("%-*s  %-11s  %s\n", (int)width, or_empty(mbx_probe_name(probe, i)),
		       status_word(mbx_probe_status(probe, i)), or_empty(mbx_probe_detail(probe, i)));
		hint = mbx_probe_hint(probe, i);
		if (hint && mbx_probe_status(probe, i) != MBX_PROBE_OK)
			printf("%-*s  hint: %s\n", (int)width, "", hint);
	}
	printf("\n");
	for (i = 0; i < N_BACKENDS; i++) {
		char label[32];

		reason = NULL;
		snprintf(label, sizeof(label), "%s:", or_empty(mbx_isolation_name(backends[i])));
		if (mbx_probe_backend(probe, backends[i], &reason) && backends[i] == MBX_ISOLATION_MICROVM)
			printf("backend %-8s available (%s)\n", label, vm_accel_word(probe));
		else if (mbx_probe_backend(probe, backends[i], &reason))
			printf("backend %-8s available\n", label);
		else
			printf("backend %-8s unavailable: %s\n", label, reason ? reason : "no reason given");
	}
}

/* Prints the JSON report; 0, or -1 when it could not be built. */
static int print_json(const mbx_probe *probe)
{
	struct cli_buf b = CLI_BUF_INIT;
	size_t i, n = mbx_probe_count(probe);
	const char *reason;
	int available, rc = 0;

	cli_buf_puts(&b, "{\"checks\": [");
	for (i = 0; i < n; i++) {
		cli_buf_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
		cli_json_cstring(&b, mbx_probe_name(probe, i));
		cli_buf_puts(&b, ", \"status\": ");
		cli_json_cstring(&b, status_json(mbx_probe_status(probe, i)));
		cli_buf_puts(&b, ", \"detail\": ");
		cli_json_cstring(&b, mbx_probe_detail(probe, i));
		cli_buf_puts(&b, ", \"hint\": ");
		cli_json_cstring(&b, mbx_probe_hint(probe, i));
		cli_buf_puts(&b, "}");
	}
	cli_buf_puts(&b, "], \"backends\": {");
	for (i = 0; i < N_BACKENDS; i++) {
		reason = NULL;
		available = mbx_probe_backend(probe, backends[i], &reason);
		if (i)
			cli_buf_puts(&b, ", ");
		cli_json_cstring(&b, mbx_isolation_name(backends[i]));
		cli_buf_puts(&b, ": {\"available\": ");
		cli_json_bool(&b, available);
		cli_buf_puts(&b, ", \"reason\": ");
		cli_json_cstring(&b, available ? NULL : reason);
		cli_buf_puts(&b, "}");
	}
	cli_buf_puts(&b, "}, \"version\": ");
	cli_json_cstring(&b, mbx_version());
	cli_buf_puts(&b, "}\n");

	if (b.failed) {
		cli_report(1, MBX_ENOMEM, "out of memory formatting the report", NULL, NULL, 0);
		rc = -1;
	} else {
		(void)cli_write_all(STDOUT_FILENO, b.data, b.len);
	}
	cli_buf_free(&b);
	return rc;
}

int cli_cmd_doctor(int argc, char **argv)
{
	struct cli_args a = { argc, argv, 1 };
	char why[CLI_WHY_MAX];
	const char *value;
	mbx_probe *probe = NULL;
	mbx_error *err = NULL;
	int id, json = 0, rc, status;

	while ((id = cli_next_option(&a, doctor_options, &value, why, sizeof(why))) != CLI_OPT_END) {
		switch (id) {
		case OPT_JSON:
			json = 1;
			break;
		case CLI_OPT_HELP:
			usage();
			return 0;
		case CLI_OPT_BAD:
		default:
			cli_usage_error(json, "doctor", "%s", why);
			return CLI_EXIT_USAGE;
		}
	}
	if (a.next < argc) {
		cli_usage_error(json, "doctor", "unexpected argument `%s`", argv[a.next]);
		return CLI_EXIT_USAGE;
	}

	rc = mbx_probe_run(&probe, &err);
	if (rc != MBX_OK) {
		cli_report_mbx(json, rc, err);
		mbx_error_free(err);
		return 1;
	}
	if (json) {
		status = print_json(probe) < 0;
	} else {
		print_text(probe);
		status = 0;
	}
	if (!mbx_probe_backend(probe, MBX_ISOLATION_OS, NULL))
		status = 1;
	mbx_probe_free(probe);
	return status;
}
