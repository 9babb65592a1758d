/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the CLI says of an execute's outcome and of an error: the exit
 * status, the words on stderr, the `--json` line. Plain C library only
 * (no libmimobox), so that the CLI's front (front.c) shares it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "wire.h"

int cli_write_all(int fd, const void *data, size_t len)
{
	/* Full writes through EINTR and a non-blocking pipe shared with others. */
	return wire_write_all(fd, data, len);
}

void cli_report(int json, int code, const char *message, const char *suggestion,
		const char *layer, int errnum)
{
	struct cli_buf b = CLI_BUF_INIT;

	if (!json) {
		fprintf(stderr, "mimobox: error: %s\n", message);
		if (suggestion)
			fprintf(stderr, "mimobox: hint: %s\n", suggestion);
		return;
	}
	cli_buf_puts(&b, "{\"ok\": false, \"error\": {\"code\": ");
	cli_json_cstring(&b, mbx_error_code_name(code));
	cli_buf_puts(&b, ", \"message\": ");
	cli_json_cstring(&b, message);
	cli_buf_puts(&b, ", \"suggestion\": ");
	cli_json_cstring(&b, suggestion);
	cli_buf_puts(&b, ", \"layer\": ");
	cli_json_cstring(&b, layer);
	cli_buf_printf(&b, ", \"errno\": %d}}\n", errnum);
	if (b.failed)
		fprintf(stderr, "mimobox: error: %s\n", message);
	else
		(void)cli_write_all(STDOUT_FILENO, b.data, b.len);
	cli_buf_free(&b);
}

void cli_format_bytes(char *out, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	uint64_t scale = 1;
	size_t u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= scale * 1024) {
		scale *= 1024;
		u++;
	}
	if (bytes % scale == 0)
		snprintf(out, len, "%llu %s", (unsigned long long)(bytes / scale), units[u]);
	else
		snprintf(out, len, "%.1f %s", (double)bytes / (double)scale, units[u]);
}

void cli_outcome_explain(const struct cli_outcome *o)
{
	char mem[32];
	size_t i;

	for (i = 0; i < o->n_skipped; i++)
		fprintf(stderr, "mimobox: warning: layer skipped (--allow-degraded): %s (%s)\n", o->skipped[i].layer,
			o->skipped[i].reason ? o->skipped[i].reason : "not available on this host");
	if (o->timed_out) {
		double s = (double)(o->timeout_ms ? o->timeout_ms * 1000 : o->elapsed_us) / 1e6;

		fprintf(stderr, "mimobox: timed out after %.1f s (%s); killed the process tree\n", s,
			o->timeout_opt ? o->timeout_opt : "--timeout");
	}
	if (o->oom_killed) {
		if (o->memory_limit) {
			cli_format_bytes(mem, sizeof(mem), o->memory_limit);
			fprintf(stderr, "mimobox: killed: out of memory (limit %s, %s)\n", mem,
				o->memory_opt ? o->memory_opt : "--memory");
		} else {
			fprintf(stderr, "mimobox: killed: out of memory (see --memory)\n");
		}
	}
}

int cli_outcome_status(const struct cli_outcome *o)
{
	if (o->timed_out)
		return CLI_EXIT_TIMEOUT;
	if (o->trap)
		return CLI_EXIT_TRAP;
	if (o->signal > 0)
		return 128 + o->signal;
	if (o->exit_code < 0)
		return CLI_EXIT_FAILED;
	return o->exit_code & 0xff;
}

int cli_failure_status(int rc)
{
	if (rc == MBX_ENOTFOUND)
		return CLI_EXIT_NOTFOUND;
	if (rc == MBX_ENOEXEC)
		return CLI_EXIT_NOEXEC;
	return CLI_EXIT_FAILED;
}

int cli_outcome_print_json(const struct cli_outcome *o)
{
	struct cli_buf b = CLI_BUF_INIT;
	int rc = 0;

	cli_buf_puts(&b, "{\"ok\": true, \"exit_code\": ");
	if (o->signal > 0 || o->exit_code < 0)
		cli_buf_puts(&b, "null");
	else
		cli_buf_printf(&b, "%d", o->exit_code);
	cli_buf_printf(&b, ", \"signal\": %d, \"timed_out\": ", o->signal);
	cli_json_bool(&b, o->timed_out);
	cli_buf_puts(&b, ", \"oom_killed\": ");
	cli_json_bool(&b, o->oom_killed);
	/* Output that is not UTF-8 also comes exactly, as stdout_b64 / stderr_b64. */
	cli_json_bytes_field(&b, "stdout", o->out, o->out_len);
	cli_json_bytes_field(&b, "stderr", o->err, o->err_len);
	cli_buf_puts(&b, ", \"stdout_truncated\": ");
	cli_json_bool(&b, o->out_truncated);
	cli_buf_puts(&b, ", \"stderr_truncated\": ");
	cli_json_bool(&b, o->err_truncated);
	cli_buf_printf(&b, ", \"elapsed_ms\": %.3f, \"peak_memory_bytes\": %llu, \"cpu_time_ms\": %.3f",
		       (double)o->elapsed_us / 1000.0, (unsigned long long)o->peak_memory_bytes,
		       (double)o->cpu_time_us / 1000.0);
	cli_buf_puts(&b, ", \"trap\": ");
	cli_json_cstring(&b, o->trap);
	cli_buf_puts(&b, ", \"isolation\": ");
	cli_json_cstring(&b, o->isolation);
	if (o->limits) {
		cli_buf_puts(&b, ", \"limits\": ");
		cli_json_cstring(&b, o->limits);
		cli_buf_puts(&b, ", \"limits_partial\": ");
		cli_json_cstring(&b, o->limits_partial);
	}
	cli_buf_puts(&b, ", \"skipped_layers\": [");
	for (size_t i = 0; i < o->n_skipped; i++) {
		cli_buf_puts(&b, i ? ", {\"layer\": " : "{\"layer\": ");
		cli_json_cstring(&b, o->skipped[i].layer);
		cli_buf_puts(&b, ", \"reason\": ");
		cli_json_cstring(&b, o->skipped[i].reason);
		cli_buf_puts(&b, "}");
	}
	cli_buf_puts(&b, "]");
	if (o->extra_json)
		cli_buf_puts(&b, o->extra_json);
	cli_buf_puts(&b, "}\n");

	if (b.failed) {
		cli_report(1, MBX_ENOMEM, "out of memory formatting the result", NULL, NULL, ENOMEM);
		rc = -1;
	} else if (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE) {
		fprintf(stderr, "mimobox: error: cannot write the result: %s\n", strerror(errno));
		rc = -1;
	}
	cli_buf_free(&b);
	return rc;
}

int cli_outcome_report(struct cli_outcome *o, int json, int streamed)
{
	int status;

	if (o->signal > 0 || o->timed_out)
		o->exit_code = -1;
	status = cli_outcome_status(o);
	if (json)
		return cli_outcome_print_json(o) < 0 ? CLI_EXIT_FAILED : status;
	if (!streamed) {
		if (o->out_len && cli_write_all(STDOUT_FILENO, o->out, o->out_len) < 0 && errno != EPIPE)
			fprintf(stderr, "mimobox: warning: cannot write the output: %s\n", strerror(errno));
		if (o->err_len)
			(void)cli_write_all(STDERR_FILENO, o->err, o->err_len);
	}
	if (o->out_truncated || o->err_truncated)
		fprintf(stderr, "\nmimobox: warning: output beyond the output limit was dropped\n");
	if (o->trap)
		fprintf(stderr, "mimobox: %s\n", o->trap);
	cli_outcome_explain(o);
	return status;
}
